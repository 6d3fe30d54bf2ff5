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
    /// Create, disable, unlock staff users and reset their second factor.
    UsersAdmin,
    /// Create and change roles.
    RolesAdmin,
    /// See pending and decided maker-checker approvals. Approving or rejecting one also needs
    /// the permission of the operation it holds.
    ApprovalsRead,
    /// See open-banking partners (third-party providers).
    PartnersRead,
    /// Onboard, suspend and reactivate open-banking partners (a production partner waits for a
    /// second person).
    PartnersAdmin,
    /// See the KPI system (the cockpit's indicators and their series, the alert rules and their
    /// history).
    KpisRead,
    /// Manage the bank's own webhook subscriptions, see every delivery and replay dead ones.
    WebhooksAdmin,
    /// Create, change, delete and silence the threshold alert rules on the KPIs.
    KpiAlertsAdmin,
    /// Read, export and mine the process event log and imported logs.
    ProcessRead,
    /// Import logs of other systems for process mining.
    ProcessWrite,
}

impl Permission {
    /// Every permission, in declaration order.
    pub const ALL: [Permission; 33] = [
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
        Permission::UsersAdmin,
        Permission::RolesAdmin,
        Permission::ApprovalsRead,
        Permission::PartnersRead,
        Permission::PartnersAdmin,
        Permission::KpisRead,
        Permission::WebhooksAdmin,
        Permission::KpiAlertsAdmin,
        Permission::ProcessRead,
        Permission::ProcessWrite,
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
            Permission::UsersAdmin => "users_admin",
            Permission::RolesAdmin => "roles_admin",
            Permission::ApprovalsRead => "approvals_read",
            Permission::PartnersRead => "partners_read",
            Permission::PartnersAdmin => "partners_admin",
            Permission::KpisRead => "kpis_read",
            Permission::WebhooksAdmin => "webhooks_admin",
            Permission::KpiAlertsAdmin => "kpi_alerts_admin",
            Permission::ProcessRead => "process_read",
            Permission::ProcessWrite => "process_write",
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
            // Operators administer neither keys, people nor roles, and do not audit themselves
            // (segregation of duties).
            Role::Operator => {
                !matches!(p, KeysAdmin | UsersAdmin | RolesAdmin | AuditRead | AuditExport | AlertsAcknowledge)
            }
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
                        | ApprovalsRead
                        | PartnersRead
                        | KpisRead
                        | ProcessRead
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

    /// The permissions the role grants.
    pub fn permissions(self) -> PermissionSet {
        Permission::ALL.into_iter().filter(|p| self.allows(*p)).collect()
    }
}

/// A set of permissions (one bit each).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PermissionSet(u64);

impl PermissionSet {
    pub const EMPTY: PermissionSet = PermissionSet(0);

    fn bit(p: Permission) -> u64 {
        1 << (p as u32)
    }

    pub fn contains(self, p: Permission) -> bool {
        self.0 & Self::bit(p) != 0
    }

    pub fn insert(&mut self, p: Permission) {
        self.0 |= Self::bit(p);
    }

    /// The permissions in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL.into_iter().filter(move |p| self.contains(*p))
    }

    /// Comma-separated snake_case names, the stored form.
    pub fn to_text(self) -> String {
        self.iter().map(Permission::as_str).collect::<Vec<_>>().join(",")
    }

    /// Parses the stored form; `Err` names the first unknown permission.
    pub fn parse_text(text: &str) -> Result<PermissionSet, String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Permission::parse(s).ok_or_else(|| s.to_string()))
            .collect()
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        let mut set = PermissionSet::EMPTY;
        for p in iter {
            set.insert(p);
        }
        set
    }
}

/// The name of a role (built-in or created by an admin), as keys and users refer to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct RoleName(pub String);

impl RoleName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl PartialEq<Role> for RoleName {
    fn eq(&self, other: &Role) -> bool {
        self.0 == other.as_str()
    }
}

impl std::fmt::Display for RoleName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What kind of identity a caller is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallerKind {
    /// A system holding an API key.
    Key,
    /// A person signed in with a session.
    User,
}

impl CallerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CallerKind::Key => "key",
            CallerKind::User => "user",
        }
    }
}

/// An authenticated caller: an API key or a signed-in user, with its role's permissions as
/// they were when the request was authenticated.
#[derive(Debug, Clone)]
pub struct Caller {
    pub kind: CallerKind,
    /// The key id or the user id (the name is kept for the many `by = caller.key_id` log lines).
    pub key_id: Uuid,
    /// The key's name or the user's display name.
    pub name: String,
    /// The role name; empty when the identity has no role (it may do nothing).
    pub role: RoleName,
    pub permissions: PermissionSet,
    /// The session a user caller came with.
    pub session_id: Option<Uuid>,
}

impl Caller {
    /// The key or user id.
    pub fn id(&self) -> Uuid {
        self.key_id
    }

    /// Whether the caller may do what `p` covers.
    pub fn allows(&self, p: Permission) -> bool {
        self.permissions.contains(p)
    }

    /// `Ok` when the caller's role grants `p`, else [`AccessError::Forbidden`].
    pub fn require(&self, p: Permission) -> Result<(), AccessError> {
        if self.allows(p) {
            Ok(())
        } else {
            Err(AccessError::Forbidden { role: self.role.0.clone(), permission: p })
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
        assert!(!Role::Operator.allows(Permission::UsersAdmin) && !Role::Operator.allows(Permission::RolesAdmin));
    }

    #[test]
    fn permission_sets_round_trip_their_stored_form() {
        for r in Role::ALL {
            let set = r.permissions();
            assert_eq!(PermissionSet::parse_text(&set.to_text()), Ok(set));
            for p in Permission::ALL {
                assert_eq!(set.contains(p), r.allows(p));
            }
        }
        assert_eq!(PermissionSet::parse_text("accounts_read, nope"), Err("nope".to_string()));
        assert_eq!(PermissionSet::parse_text(""), Ok(PermissionSet::EMPTY));
    }
}
