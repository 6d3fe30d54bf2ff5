//! The audit context of the work in progress, and the audit entry each write commits with.
//!
//! "No change without its entry" is kept where changes are committed, not where requests are
//! handled: the HTTP guard (or a CLI command) opens an audit [`scope`] saying who is acting and
//! on what, and every unit of work that commits inside that scope adds one `audit_log` row to
//! its own transaction ([`crate::transaction!`], [`crate::write!`], [`crate::execute_all`], and
//! the ledger's batches, which carry the entry captured with [`next_entry`] to their writer).
//! A rolled-back change therefore leaves no entry, and a committed one always has its entry.
//!
//! The scope is a tokio task-local, so work spawned onto another task does not inherit it:
//! code that hands work to another task or thread captures the entry first ([`next_entry`]).
//! Entries are hash-chained afterwards by the access crate's sealer; this module only writes.

use std::future::Future;
use std::sync::{Arc, Mutex};

use crate::{Arg, Statement};

/// Who is acting, on what, and why: the fields every entry of one request or command shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditContext {
    /// When the request or command started, in microseconds since the epoch.
    pub at: i64,
    /// `key`, `user`, `system` or `anonymous`.
    pub actor_kind: String,
    /// The API key id, user id or system component.
    pub actor: String,
    /// The actor's role when the action was authorised.
    pub role: Option<String>,
    /// What was done: `POST /v1/customers/{id}/kyc`, `cli lending eod`.
    pub action: String,
    /// What it was done to: the object's id when the path names one, else the path.
    pub resource: String,
    /// Correlates the entries of one request.
    pub request_id: String,
    /// The client address, when known.
    pub ip: Option<String>,
    /// Why the data was used, as the client stated it (`X-Purpose`; open banking puts the
    /// consent id there).
    pub purpose: Option<String>,
}

struct Scope {
    /// `None` inside [`unaudited`].
    context: Option<AuditContext>,
    /// Entries issued in this scope so far (a request may commit several units of work).
    steps: u32,
}

tokio::task_local! {
    static CURRENT: Arc<Mutex<Scope>>;
}

/// Runs `work` with `context` as its audit context.
pub async fn scope<F: Future>(context: AuditContext, work: F) -> F::Output {
    CURRENT.scope(Arc::new(Mutex::new(Scope { context: Some(context), steps: 0 })), work).await
}

/// Runs `work` outside any audit scope: for bookkeeping that is not itself an auditable change
/// (sealing the trail must not write entries of its own, or it would never finish).
pub async fn unaudited<F: Future>(work: F) -> F::Output {
    CURRENT.scope(Arc::new(Mutex::new(Scope { context: None, steps: 0 })), work).await
}

/// Whether the current task runs inside an audit scope.
pub fn active() -> bool {
    CURRENT.try_with(|s| s.lock().expect("audit scope lock").context.is_some()).unwrap_or(false)
}

/// The current audit context, if any.
pub fn current() -> Option<AuditContext> {
    CURRENT.try_with(|s| s.lock().expect("audit scope lock").context.clone()).ok().flatten()
}

/// Names the object the current request acts on once it is known (a registration learns its
/// new customer id only when it writes). Entries issued afterwards carry it.
pub fn set_resource(resource: impl Into<String>) {
    let resource = resource.into();
    let _ = CURRENT.try_with(|s| {
        if let Some(context) = s.lock().expect("audit scope lock").context.as_mut() {
            context.resource = resource;
        }
    });
}

/// Names the actor once a public request has established who it is (a customer who entered
/// the one-time code sent to their phone). Entries issued afterwards carry it.
pub fn set_actor(kind: impl Into<String>, actor: impl Into<String>) {
    let (kind, actor) = (kind.into(), actor.into());
    let _ = CURRENT.try_with(|s| {
        if let Some(context) = s.lock().expect("audit scope lock").context.as_mut() {
            context.actor_kind = kind;
            context.actor = actor;
        }
    });
}

/// States why data is used (open banking: the consent id) once the request knows it.
pub fn set_purpose(purpose: impl Into<String>) {
    let purpose = purpose.into();
    let _ = CURRENT.try_with(|s| {
        if let Some(context) = s.lock().expect("audit scope lock").context.as_mut() {
            context.purpose = Some(purpose);
        }
    });
}

/// Renames what the current request does (a request held for approval records
/// `<action> [approval requested]`). Entries issued afterwards carry it.
pub fn set_action(action: impl Into<String>) {
    let action = action.into();
    let _ = CURRENT.try_with(|s| {
        if let Some(context) = s.lock().expect("audit scope lock").context.as_mut() {
            context.action = action;
        }
    });
}

/// The INSERT of the current scope's next entry, or `None` outside a scope. Run it in the
/// transaction of the change it records.
pub fn next_entry() -> Option<Statement> {
    CURRENT
        .try_with(|s| {
            let mut scope = s.lock().expect("audit scope lock");
            scope.steps += 1;
            let step = scope.steps;
            scope.context.as_ref().map(|context| entry_statement(context, step, "committed"))
        })
        .ok()
        .flatten()
}

/// The INSERT of one audit entry with an explicit outcome (`committed`, `read`, `denied`, ...).
pub fn entry_statement(context: &AuditContext, step: u32, outcome: &str) -> Statement {
    Statement::new(
        format!("{ENTRY_INSERT} ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"),
        vec![
            Arg::Int(context.at),
            Arg::Text(context.actor_kind.clone()),
            Arg::Text(context.actor.clone()),
            Arg::OptText(context.role.clone()),
            Arg::Text(context.action.clone()),
            Arg::Text(context.resource.clone()),
            Arg::Text(context.request_id.clone()),
            Arg::Int(i64::from(step)),
            Arg::OptText(context.ip.clone()),
            Arg::Text(outcome.to_string()),
            Arg::OptText(context.purpose.clone()),
        ],
    )
    .expecting(1)
}

const ENTRY_INSERT: &str =
    "INSERT INTO audit_log (at, actor_kind, actor, role, action, resource, request_id, step, ip, outcome, purpose) VALUES";
const ENTRY_ARGS: usize = 11;
/// Rows per merged INSERT (11 parameters each stays far below either database's limit).
const ENTRIES_PER_INSERT: usize = 1000;

/// The entries of a group commit as few multi-row INSERTs: on PostgreSQL each statement is a
/// round trip inside the journal's critical section, so one INSERT per transfer of a batch
/// would cost more than the transfers. Statements that are not audit entries pass unchanged.
pub fn merge_entries(statements: Vec<Statement>) -> Vec<Statement> {
    let (entries, mut out): (Vec<Statement>, Vec<Statement>) =
        statements.into_iter().partition(|s| s.sql.starts_with(ENTRY_INSERT) && s.args.len() == ENTRY_ARGS);
    for chunk in entries.chunks(ENTRIES_PER_INSERT) {
        let mut sql = String::with_capacity(ENTRY_INSERT.len() + chunk.len() * 60);
        sql.push_str(ENTRY_INSERT);
        let mut args = Vec::with_capacity(chunk.len() * ENTRY_ARGS);
        for (row, entry) in chunk.iter().enumerate() {
            sql.push_str(if row == 0 { " (" } else { ", (" });
            for col in 0..ENTRY_ARGS {
                if col > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("${}", row * ENTRY_ARGS + col + 1));
            }
            sql.push(')');
            args.extend(entry.args.iter().cloned());
        }
        out.push(Statement::new(sql, args).expecting(chunk.len() as u64));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> AuditContext {
        AuditContext {
            at: 1,
            actor_kind: "key".into(),
            actor: "k1".into(),
            role: Some("admin".into()),
            action: "POST /v1/customers".into(),
            resource: "/v1/customers".into(),
            request_id: "r1".into(),
            ip: None,
            purpose: None,
        }
    }

    #[tokio::test]
    async fn entries_exist_only_inside_a_scope_and_count_their_steps() {
        assert!(next_entry().is_none());
        scope(context(), async {
            assert!(active());
            let first = next_entry().unwrap();
            set_resource("C-1");
            let second = next_entry().unwrap();
            assert_eq!(first.args[7], Arg::Int(1));
            assert_eq!(second.args[7], Arg::Int(2));
            assert_eq!(second.args[5], Arg::Text("C-1".into()));
        })
        .await;
        assert!(!active());
        scope(context(), unaudited(async { assert!(next_entry().is_none()) })).await;
    }

    #[tokio::test]
    async fn merged_entries_insert_every_row_with_its_own_values() {
        let dir = std::env::temp_dir().join(format!("digibank-audit-merge-{}", uuid::Uuid::now_v7().simple()));
        let db = crate::Database::connect_sqlite(&dir.join("t.db").to_string_lossy()).await.unwrap();
        let mut statements: Vec<Statement> =
            (1..=3).map(|step| entry_statement(&context(), step, "committed")).collect();
        statements.push(Statement::new("SELECT 1", vec![]));
        let merged = merge_entries(statements);
        assert_eq!(merged.len(), 2, "the SELECT and one INSERT of three rows");
        assert_eq!(merged[1].expect_rows, Some(3));
        assert!(merged[1].sql.ends_with("$31, $32, $33)"), "{}", merged[1].sql);
        crate::execute_all(&db, &merged[1..]).await.unwrap();
        let steps: Vec<(i64,)> =
            crate::read!(&db, |conn| sqlx::query_as("SELECT step FROM audit_log ORDER BY id").fetch_all(conn).await)
                .unwrap();
        assert_eq!(steps, vec![(1,), (2,), (3,)]);
        db.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
