//! Permissions, the roles that bundle them, and the authenticated [`Caller`].

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AccessError;

/// What a caller may do. Routes ask for exactly one permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    AccountsRead,
    AccountsWrite,
    TransfersRead,
    TransfersWrite,
    MetricsRead,
    KeysAdmin,
    TagsRead,
    TagsWrite,
    CustomersRead,
    CustomersWrite,
    /// See names, ID numbers and phone numbers in clear; everyone else sees them masked.
    CustomersPii,
    /// Change KYC status, correct identity documents, close customers, merge records.
    CustomersAdmin,
    /// Ask the risk engine for a decision (channel applications, tellers).
    RiskDecide,
    /// Read decisions, rule sets, lists, cases and models; market risk figures.
    RiskRead,
    /// Create and activate rule sets, backtest, edit lists, reload models.
    RiskAdmin,
    /// Resolve review cases (confirm fraud / false positive).
    CasesResolve,
    /// Products, applications, offers, loans, overdue lists, the review queue, receivables.
    LendingRead,
    /// Apply, accept (disburse), repay, draw, prepay; register documents and receivables, finance.
    LendingWrite,
    /// Run end of day; write off loans.
    LendingAdmin,
    /// Approve or decline applications in the manual review queue (lending officers).
    LendingReview,
    /// Read the audit trail and verify its hash chain.
    AuditRead,
    /// Export the audit trail as CSV (auditors).
    AuditExport,
    /// Acknowledge security alerts (admins, or a security officer role made from permissions).
    AlertsAcknowledge,
}

impl Permission {
    /// Every permission, in declaration order.
    pub const ALL: [Permission; 23] = [
        Permission::AccountsRead,
        Permission::AccountsWrite,
        Permission::TransfersRead,
        Permission::TransfersWrite,
        Permission::MetricsRead,
        Permission::KeysAdmin,
        Permission::TagsRead,
        Permission::TagsWrite,
        Permission::CustomersRead,
        Permission::CustomersWrite,
        Permission::CustomersPii,
        Permission::CustomersAdmin,
        Permission::RiskDecide,
        Permission::RiskRead,
        Permission::RiskAdmin,
        Permission::CasesResolve,
        Permission::LendingRead,
        Permission::LendingWrite,
        Permission::LendingAdmin,
        Permission::LendingReview,
        Permission::AuditRead,
        Permission::AuditExport,
        Permission::AlertsAcknowledge,
    ];

    /// The snake_case name used in the API, in role definitions and in error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::AccountsRead => "accounts_read",
            Permission::AccountsWrite => "accounts_write",
            Permission::TransfersRead => "transfers_read",
            Permission::TransfersWrite => "transfers_write",
            Permission::MetricsRead => "metrics_read",
            Permission::KeysAdmin => "keys_admin",
            Permission::TagsRead => "tags_read",
            Permission::TagsWrite => "tags_write",
            Permission::CustomersRead => "customers_read",
            Permission::CustomersWrite => "customers_write",
            Permission::CustomersPii => "customers_pii",
            Permission::CustomersAdmin => "customers_admin",
            Permission::RiskDecide => "risk_decide",
            Permission::RiskRead => "risk_read",
            Permission::RiskAdmin => "risk_admin",
            Permission::CasesResolve => "cases_resolve",
            Permission::LendingRead => "lending_read",
            Permission::LendingWrite => "lending_write",
            Permission::LendingAdmin => "lending_admin",
            Permission::LendingReview => "lending_review",
            Permission::AuditRead => "audit_read",
            Permission::AuditExport => "audit_export",
            Permission::AlertsAcknowledge => "alerts_acknowledge",
        }
    }

    pub fn parse(s: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Roles bundle permissions; least privilege means picking the smallest role that works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including issuing and revoking keys.
    Admin,
    /// Back-office operations: open/freeze/close accounts, move money, read everything.
    Operator,
    /// Channel applications that move money for customers: transfers and reads, no account admin.
    Teller,
    /// Read-only access to accounts, transfers and metrics.
    Auditor,
    /// Prometheus scraping only.
    Monitoring,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Admin, Role::Operator, Role::Teller, Role::Auditor, Role::Monitoring];

    pub fn allows(self, p: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            // Operators do not audit themselves (segregation of duties).
            Role::Operator => !matches!(p, KeysAdmin | AuditRead | AuditExport | AlertsAcknowledge),
            Role::Teller => matches!(
                p,
                AccountsRead
                    | TransfersRead
                    | TransfersWrite
                    | CustomersRead
                    | CustomersWrite
                    | RiskDecide
                    | LendingRead
                    | LendingWrite
            ),
            Role::Auditor => {
                matches!(
                    p,
                    AccountsRead
                        | TransfersRead
                        | MetricsRead
                        | TagsRead
                        | CustomersRead
                        | RiskRead
                        | LendingRead
                        | AuditRead
                        | AuditExport
                )
            }
            Role::Monitoring => p == MetricsRead,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Teller => "teller",
            Role::Auditor => "auditor",
            Role::Monitoring => "monitoring",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: Uuid,
    pub name: String,
    pub role: Role,
}

impl Caller {
    /// Whether the caller may do what `p` covers.
    pub fn allows(&self, p: Permission) -> bool {
        self.role.allows(p)
    }

    /// `Ok` when the caller's role grants `p`, else [`AccessError::Forbidden`].
    pub fn require(&self, p: Permission) -> Result<(), AccessError> {
        if self.allows(p) {
            Ok(())
        } else {
            Err(AccessError::Forbidden { role: self.role, permission: p })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_privilege() {
        assert!(Role::Admin.allows(Permission::KeysAdmin));
        assert!(!Role::Operator.allows(Permission::KeysAdmin));
        assert!(Role::Teller.allows(Permission::TransfersWrite) && !Role::Teller.allows(Permission::RiskAdmin));
        assert!(!Role::Auditor.allows(Permission::TransfersWrite));
        assert!(Role::Monitoring.allows(Permission::MetricsRead) && !Role::Monitoring.allows(Permission::AccountsRead));
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(p));
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str(), "as_str agrees with serde");
        }
    }
}
