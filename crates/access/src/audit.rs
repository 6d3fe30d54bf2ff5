//! The audit trail: who did what to which object, when, from where, and whether it happened.
//!
//! Entries are written by `storage::audit` inside the transaction of the change they record
//! (so no change commits without its entry), or by the [`AuditRecorder`] for reads of personal
//! data and refused requests (nothing to commit with; written in small batches). This module
//! makes them tamper-evident and answers auditors:
//!
//! * [`AuditTrail::seal_pending`] chains entries in the order it finds them: each gets the next
//!   chain position and `SHA-256(previous hash || position || entry)` in `audit_seals`, and the
//!   head (`audit_chain_head`) moves on in the same transaction. Entries are sealed within a
//!   second or two of their commit ([`spawn_sealer`]); the tables refuse UPDATE and DELETE.
//! * [`AuditTrail::verify`] walks the chain, recomputes every hash and names the first entries
//!   that were edited, deleted or moved, and a truncated chain.
//! * [`AuditTrail::query`] pages entries by actor, resource, action and time.
//!
//! Chain order is seal order, not id order: on PostgreSQL ids are handed out before commit, so
//! a later-committing entry can have a smaller id; the sealer finds such entries with a
//! periodic look below its high-water mark.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};
use storage::audit::AuditContext;
use storage::{Arg, Database, Statement};
use utoipa::ToSchema;

/// The hash before the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Entries sealed per transaction.
const SEAL_BATCH: i64 = 5000;
/// Largest page [`AuditTrail::query`] returns.
pub const MAX_AUDIT_PAGE: u32 = 1000;
/// How long a PostgreSQL transaction may hold an audit id before committing and still be found
/// by the look below the high-water mark (see the module docs).
const LATE_COMMIT_WINDOW: Duration = Duration::from_secs(600);
/// How often the sealer looks below its high-water mark.
const LATE_SCAN_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("audit trail is corrupt: {0}")]
    Corrupt(String),
    #[error("database: {0}")]
    Sqlite(String),
    #[error(transparent)]
    Conflict(#[from] storage::RowCountMismatch),
}

impl From<storage::UnitOfWorkError> for AuditError {
    fn from(e: storage::UnitOfWorkError) -> Self {
        match e {
            storage::UnitOfWorkError::Database(e) => AuditError::Database(e),
            storage::UnitOfWorkError::Conflict(e) => AuditError::Conflict(e),
        }
    }
}

/// One stored entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: i64,
    /// When the request or command started (microseconds since the epoch).
    pub at: i64,
    /// `key`, `user`, `system` or `anonymous`.
    pub actor_kind: String,
    pub actor: String,
    pub role: Option<String>,
    /// `METHOD /path/{template}` for API calls, `cli <command>` for the command line.
    pub action: String,
    /// The object acted on: its id when known, else the route.
    pub resource: String,
    pub request_id: String,
    /// The n-th unit of work of the request (a request may commit several).
    pub step: i64,
    pub ip: Option<String>,
    /// `committed` (a change), `read` (personal data was read), `denied` (403),
    /// `unauthenticated` (401), `sign_in_failed`.
    pub outcome: String,
    /// Why, as the client stated it (`X-Purpose`).
    pub purpose: Option<String>,
    /// Position in the hash chain; `None` until sealed (normally within two seconds).
    #[sqlx(default)]
    pub chain_seq: Option<i64>,
}

const ENTRY_COLUMNS: &str =
    "l.id, l.at, l.actor_kind, l.actor, l.role, l.action, l.resource, l.request_id, l.step, l.ip, l.outcome, l.purpose";

/// `SHA-256(previous || position || entry)`, every variable-length field length-prefixed so no
/// two different entries hash alike.
pub fn entry_hash(previous: &[u8; 32], chain_seq: i64, e: &AuditEntry) -> [u8; 32] {
    fn field(h: &mut Sha256, value: Option<&str>) {
        match value {
            None => h.update([0u8]),
            Some(v) => {
                h.update([1u8]);
                h.update((v.len() as u64).to_be_bytes());
                h.update(v.as_bytes());
            }
        }
    }
    let mut h = Sha256::new();
    h.update(previous);
    h.update(chain_seq.to_be_bytes());
    h.update(e.id.to_be_bytes());
    h.update(e.at.to_be_bytes());
    h.update(e.step.to_be_bytes());
    for value in [
        Some(e.actor_kind.as_str()),
        Some(e.actor.as_str()),
        e.role.as_deref(),
        Some(e.action.as_str()),
        Some(e.resource.as_str()),
        Some(e.request_id.as_str()),
        e.ip.as_deref(),
        Some(e.outcome.as_str()),
        e.purpose.as_deref(),
    ] {
        field(&mut h, value);
    }
    h.finalize().into()
}

fn parse_hash(hex_text: &str, what: &str) -> Result<[u8; 32], AuditError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut out)
        .map_err(|_| AuditError::Corrupt(format!("{what}: bad hash {hex_text:?}")))?;
    Ok(out)
}

/// Filters of [`AuditTrail::query`]; all optional, they intersect.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub resource: Option<String>,
    pub action: Option<String>,
    /// From this instant (inclusive, micros).
    pub from: Option<i64>,
    /// Before this instant (exclusive, micros).
    pub to: Option<i64>,
    /// Entries with an id above this (the previous page's last id).
    pub after: Option<i64>,
    pub limit: u32,
}

/// What [`AuditTrail::verify`] found wrong with one place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AuditProblem {
    /// Chain position (when the problem has one).
    pub chain_seq: Option<i64>,
    /// The entry concerned (when known).
    pub entry_id: Option<i64>,
    /// `edited`, `deleted`, `seal_missing`, `chain_truncated`.
    pub kind: String,
    pub message: String,
}

/// The result of [`AuditTrail::verify`].
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditReport {
    /// Sealed entries checked.
    pub checked: u64,
    /// Entries not sealed yet (sealing runs every second; a large number means no sealer runs).
    pub unsealed: i64,
    /// The first problems found, in chain order (at most 100); empty when the chain holds.
    pub problems: Vec<AuditProblem>,
}

impl AuditReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

#[derive(sqlx::FromRow)]
struct SealRow {
    chain_seq: i64,
    seal_entry_id: i64,
    hash: String,
    id: Option<i64>,
    at: Option<i64>,
    actor_kind: Option<String>,
    actor: Option<String>,
    role: Option<String>,
    action: Option<String>,
    resource: Option<String>,
    request_id: Option<String>,
    step: Option<i64>,
    ip: Option<String>,
    outcome: Option<String>,
    purpose: Option<String>,
}

impl SealRow {
    fn into_entry(self) -> Option<AuditEntry> {
        Some(AuditEntry {
            id: self.id?,
            at: self.at?,
            actor_kind: self.actor_kind?,
            actor: self.actor?,
            role: self.role,
            action: self.action?,
            resource: self.resource?,
            request_id: self.request_id?,
            step: self.step?,
            ip: self.ip,
            outcome: self.outcome?,
            purpose: self.purpose,
            chain_seq: None,
        })
    }

    fn from_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<SealRow> {
        Ok(SealRow {
            chain_seq: r.get(0)?,
            seal_entry_id: r.get(1)?,
            hash: r.get(2)?,
            id: r.get(3)?,
            at: r.get(4)?,
            actor_kind: r.get(5)?,
            actor: r.get(6)?,
            role: r.get(7)?,
            action: r.get(8)?,
            resource: r.get(9)?,
            request_id: r.get(10)?,
            step: r.get(11)?,
            ip: r.get(12)?,
            outcome: r.get(13)?,
            purpose: r.get(14)?,
        })
    }
}

/// The audit trail of one database.
#[derive(Clone)]
pub struct AuditTrail {
    db: Database,
    clock: Arc<dyn clock::Clock>,
}

/// Where the sealer is: entries above `high_water` have not been looked at yet.
struct SealerState {
    high_water: i64,
    /// (when, highest entry id then) after passes that caught up; once older than
    /// [`LATE_COMMIT_WINDOW`], every entry at or below that id is known to be sealed.
    caught_up: VecDeque<(std::time::Instant, i64)>,
    last_late_scan: std::time::Instant,
}

impl AuditTrail {
    pub fn new(db: Database) -> Self {
        Self::with_clock(db, Arc::new(clock::SystemClock))
    }

    pub fn with_clock(db: Database, clock: Arc<dyn clock::Clock>) -> Self {
        AuditTrail { db, clock }
    }

    /// Writes entries that have no change to commit with (reads of personal data, refusals).
    pub async fn record(&self, entries: &[(AuditContext, &str)]) -> Result<(), AuditError> {
        let statements: Vec<Statement> =
            entries.iter().map(|(context, outcome)| storage::audit::entry_statement(context, 1, outcome)).collect();
        // One multi-row INSERT per batch rather than one statement per entry: the recorder keeps
        // up with thousands of partner reads a second (each one an entry). SQLite binds `?N` by
        // position; `$N` would be looked up by name, per value.
        let mut merged = storage::audit::merge_entries(statements);
        if matches!(self.db, Database::Sqlite(_)) {
            for statement in &mut merged {
                statement.sql = statement.sqlite_sql().into();
            }
        }
        storage::audit::unaudited(storage::execute_all(&self.db, &merged)).await?;
        Ok(())
    }

    async fn head(&self) -> Result<(i64, String, i64), AuditError> {
        Ok(storage::read!(&self.db, |conn| sqlx::query_as(
            "SELECT chain_seq, hash, scan_from FROM audit_chain_head WHERE id = 1"
        )
        .fetch_one(conn)
        .await)?)
    }

    /// Seals the entries found above `from` (and not sealed yet), at most [`SEAL_BATCH`], in one
    /// transaction. Returns how many were sealed and the highest id seen.
    async fn seal_pass(&self, from: i64) -> Result<(usize, i64), AuditError> {
        let (head_seq, head_hash, _) = self.head().await?;
        let rows: Vec<AuditEntry> = storage::read!(&self.db, |conn| sqlx::query_as(&format!(
            "SELECT {ENTRY_COLUMNS} FROM audit_log l WHERE l.id > $1 \
             AND NOT EXISTS (SELECT 1 FROM audit_seals s WHERE s.entry_id = l.id) ORDER BY l.id LIMIT $2"
        ))
        .bind(from)
        .bind(SEAL_BATCH)
        .fetch_all(conn)
        .await)?;
        let Some(last) = rows.last() else { return Ok((0, from)) };
        let highest = last.id;
        let now = self.clock.now_micros();
        let mut previous = parse_hash(&head_hash, "chain head")?;
        let mut seq = head_seq;
        let mut statements = Vec::with_capacity(rows.len() / 200 + 2);
        // The head moves first: a concurrent sealer on another node that read the same head
        // changes no row here and rolls back, so two sealers never fork the chain.
        let mut seals: Vec<(i64, i64, String)> = Vec::with_capacity(rows.len());
        for entry in &rows {
            seq += 1;
            previous = entry_hash(&previous, seq, entry);
            seals.push((seq, entry.id, hex::encode(previous)));
        }
        statements.push(
            Statement::new(
                "UPDATE audit_chain_head SET chain_seq = $1, hash = $2 WHERE id = 1 AND chain_seq = $3",
                vec![Arg::Int(seq), Arg::Text(hex::encode(previous)), Arg::Int(head_seq)],
            )
            .expecting(1),
        );
        for chunk in seals.chunks(200) {
            let mut sql = String::from("INSERT INTO audit_seals (chain_seq, entry_id, hash, sealed_at) VALUES ");
            let mut args = Vec::with_capacity(chunk.len() * 4);
            for (i, (seq, id, hash)) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push_str(", ");
                }
                let n = i * 4;
                sql.push_str(&format!("(${}, ${}, ${}, ${})", n + 1, n + 2, n + 3, n + 4));
                args.extend([Arg::Int(*seq), Arg::Int(*id), Arg::Text(hash.clone()), Arg::Int(now)]);
            }
            statements.push(Statement::new(sql, args).expecting(chunk.len() as u64));
        }
        match storage::audit::unaudited(storage::execute_all(&self.db, &statements)).await {
            Ok(()) => Ok((rows.len(), highest)),
            // Another sealer moved the head first: its pass sealed these; look again next time.
            Err(storage::UnitOfWorkError::Conflict(_)) => Ok((0, from)),
            Err(storage::UnitOfWorkError::Database(e)) if is_unique_violation(&e) => Ok((0, from)),
            Err(e) => Err(e.into()),
        }
    }

    /// Seals every entry committed so far (one-shot: commands, tests, benchmarks). Returns the
    /// number sealed.
    pub async fn seal_pending(&self) -> Result<u64, AuditError> {
        let (_, _, scan_from) = self.head().await?;
        let mut from = scan_from;
        let mut total = 0u64;
        loop {
            let (sealed, highest) = self.seal_pass(from).await?;
            total += sealed as u64;
            if sealed == 0 {
                return Ok(total);
            }
            from = highest;
        }
    }

    async fn sealer_tick(&self, state: &mut SealerState) -> Result<u64, AuditError> {
        let mut total = 0u64;
        let late_scan = state.last_late_scan.elapsed() >= LATE_SCAN_EVERY;
        if late_scan {
            // Look below the high-water mark for entries that committed late.
            let (_, _, scan_from) = self.head().await?;
            let mut from = scan_from;
            loop {
                let (sealed, highest) = self.seal_pass(from).await?;
                total += sealed as u64;
                if sealed == 0 || highest >= state.high_water {
                    break;
                }
                from = highest;
            }
            state.last_late_scan = std::time::Instant::now();
        }
        loop {
            let (sealed, highest) = self.seal_pass(state.high_water).await?;
            total += sealed as u64;
            state.high_water = state.high_water.max(highest);
            if sealed < SEAL_BATCH as usize {
                break;
            }
        }
        if late_scan {
            let now = std::time::Instant::now();
            state.caught_up.push_back((now, state.high_water));
            let mut settled = None;
            while let Some((when, id)) = state.caught_up.front().copied() {
                if now.duration_since(when) < LATE_COMMIT_WINDOW && !matches!(self.db, Database::Sqlite(_)) {
                    break;
                }
                settled = Some(id);
                state.caught_up.pop_front();
            }
            if let Some(id) = settled {
                let advance = Statement::new(
                    "UPDATE audit_chain_head SET scan_from = $1 WHERE id = 1 AND scan_from < $1",
                    vec![Arg::Int(id)],
                );
                storage::audit::unaudited(storage::execute_all(&self.db, &[advance])).await?;
            }
        }
        Ok(total)
    }

    /// The seals up to `head_seq` with their entries, in chain order, `page` at a time, read by
    /// a task of their own so the next page is read while this one is hashed. On SQLite the
    /// reader is a rusqlite connection: sqlx's SQLite driver hands each row across threads,
    /// which made reading, not hashing, the cost of a verify.
    fn seal_pages(&self, head_seq: i64, page: i64) -> tokio::sync::mpsc::Receiver<Result<Vec<SealRow>, AuditError>> {
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        match &self.db {
            Database::Sqlite(sqlite) => {
                let path = sqlite.path.clone();
                tokio::task::spawn_blocking(move || {
                    let walk = || -> rusqlite::Result<()> {
                        let conn = storage::open_sqlite_connection(&path)?;
                        let mut statement = conn.prepare(&format!(
                            "SELECT s.chain_seq, s.entry_id, s.hash, {ENTRY_COLUMNS} \
                             FROM audit_seals s LEFT JOIN audit_log l ON l.id = s.entry_id \
                             WHERE s.chain_seq > ?1 AND s.chain_seq <= ?2 ORDER BY s.chain_seq LIMIT ?3"
                        ))?;
                        let mut after = 0i64;
                        loop {
                            let rows = statement
                                .query_map((after, head_seq, page), SealRow::from_sqlite)?
                                .collect::<rusqlite::Result<Vec<SealRow>>>()?;
                            let Some(last) = rows.last() else { return Ok(()) };
                            after = last.chain_seq;
                            if tx.blocking_send(Ok(rows)).is_err() {
                                return Ok(());
                            }
                        }
                    };
                    if let Err(e) = walk() {
                        let _ = tx.blocking_send(Err(AuditError::Sqlite(e.to_string())));
                    }
                });
            }
            Database::Postgres(_) => {
                let db = self.db.clone();
                tokio::spawn(async move {
                    let mut after = 0i64;
                    loop {
                        let rows: Result<Vec<SealRow>, sqlx::Error> =
                            storage::read!(&db, |conn| sqlx::query_as(&format!(
                                "SELECT s.chain_seq, s.entry_id AS seal_entry_id, s.hash, {ENTRY_COLUMNS} \
                             FROM audit_seals s LEFT JOIN audit_log l ON l.id = s.entry_id \
                             WHERE s.chain_seq > $1 AND s.chain_seq <= $2 ORDER BY s.chain_seq LIMIT $3"
                            ))
                            .bind(after)
                            .bind(head_seq)
                            .bind(page)
                            .fetch_all(conn)
                            .await);
                        let rows = match rows {
                            Ok(rows) => rows,
                            Err(e) => {
                                let _ = tx.send(Err(e.into())).await;
                                return;
                            }
                        };
                        let Some(last) = rows.last() else { return };
                        after = last.chain_seq;
                        if tx.send(Ok(rows)).await.is_err() {
                            return;
                        }
                    }
                });
            }
        }
        rx
    }

    /// Walks the whole chain, recomputing every hash; `progress` gets the entries checked so far.
    pub async fn verify(&self, mut progress: impl FnMut(u64) + Send) -> Result<AuditReport, AuditError> {
        const PAGE: i64 = 20_000;
        const MAX_PROBLEMS: usize = 100;
        let (head_seq, head_hash, _) = self.head().await?;
        let mut previous = parse_hash(GENESIS_HASH, "genesis")?;
        let mut expected = 1i64;
        let mut checked = 0u64;
        let mut problems = Vec::new();
        let push = |problems: &mut Vec<AuditProblem>, p: AuditProblem| {
            if problems.len() < MAX_PROBLEMS {
                problems.push(p);
            }
        };
        let mut pages = self.seal_pages(head_seq, PAGE);
        while let Some(rows) = pages.recv().await {
            let rows = rows?;
            for row in rows {
                if row.chain_seq != expected {
                    push(
                        &mut problems,
                        AuditProblem {
                            chain_seq: Some(expected),
                            entry_id: None,
                            kind: "seal_missing".into(),
                            message: format!(
                                "chain positions {expected}..{} are missing: seals were deleted, so entries may have been removed or reordered",
                                row.chain_seq - 1
                            ),
                        },
                    );
                }
                expected = row.chain_seq + 1;
                let stored = parse_hash(&row.hash, "seal")?;
                let (chain_seq, seal_entry_id) = (row.chain_seq, row.seal_entry_id);
                match row.into_entry() {
                    None => push(
                        &mut problems,
                        AuditProblem {
                            chain_seq: Some(chain_seq),
                            entry_id: Some(seal_entry_id),
                            kind: "deleted".into(),
                            message: format!(
                                "audit entry {} (chain position {}) was deleted after it was sealed",
                                seal_entry_id, chain_seq
                            ),
                        },
                    ),
                    Some(entry) => {
                        if entry_hash(&previous, chain_seq, &entry) != stored {
                            push(
                                &mut problems,
                                AuditProblem {
                                    chain_seq: Some(chain_seq),
                                    entry_id: Some(entry.id),
                                    kind: "edited".into(),
                                    message: format!(
                                        "audit entry {} (chain position {}) does not match its seal: it, or its seal, was edited or moved after sealing",
                                        entry.id, chain_seq
                                    ),
                                },
                            );
                        }
                    }
                }
                // Continue from the stored hash so one edit is reported once.
                previous = stored;
                checked += 1;
            }
            progress(checked);
        }
        if expected - 1 != head_seq || (head_seq > 0 && hex::encode(previous) != head_hash) {
            push(
                &mut problems,
                AuditProblem {
                    chain_seq: Some(expected - 1),
                    entry_id: None,
                    kind: "chain_truncated".into(),
                    message: format!(
                        "the chain ends at position {} but its head says {head_seq}: the last seals were removed or the head was edited",
                        expected - 1
                    ),
                },
            );
        }
        // The walk stopped at the head read when it began (the sealer may have chained more since:
        // those are checked by the next run). A seal beyond the head as it stands now means the
        // head was set back: seals and head commit together, and the head only moves forward.
        let (last_seal,): (Option<i64>,) =
            storage::read!(&self.db, |conn| sqlx::query_as("SELECT MAX(chain_seq) FROM audit_seals")
                .fetch_one(conn)
                .await)?;
        let (head_now, _, _) = self.head().await?;
        if let Some(last) = last_seal.filter(|last| *last > head_now) {
            push(
                &mut problems,
                AuditProblem {
                    chain_seq: Some(last),
                    entry_id: None,
                    kind: "chain_truncated".into(),
                    message: format!(
                        "seals reach chain position {last} but the head says {head_now}: the head was set back"
                    ),
                },
            );
        }
        let (entries,): (i64,) =
            storage::read!(&self.db, |conn| sqlx::query_as("SELECT COUNT(*) FROM audit_log").fetch_one(conn).await)?;
        Ok(AuditReport { checked, unsealed: (entries - checked as i64).max(0), problems })
    }

    /// A page of entries, oldest first.
    pub async fn query(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, AuditError> {
        let limit = i64::from(filter.limit.clamp(1, MAX_AUDIT_PAGE));
        let rows: Vec<AuditEntry> = storage::read!(&self.db, |conn| sqlx::query_as(&format!(
            "SELECT {ENTRY_COLUMNS}, s.chain_seq FROM audit_log l LEFT JOIN audit_seals s ON s.entry_id = l.id \
             WHERE l.id > $1 AND ($2 IS NULL OR l.actor = $2) AND ($3 IS NULL OR l.resource = $3) \
             AND ($4 IS NULL OR l.action = $4) AND ($5 IS NULL OR l.at >= $5) AND ($6 IS NULL OR l.at < $6) \
             ORDER BY l.id LIMIT $7"
        ))
        .bind(filter.after.unwrap_or(0))
        .bind(filter.actor.clone())
        .bind(filter.resource.clone())
        .bind(filter.action.clone())
        .bind(filter.from)
        .bind(filter.to)
        .bind(limit)
        .fetch_all(conn)
        .await)?;
        Ok(rows)
    }

    /// Appends `count` synthetic entries (benchmarks only: they record nothing that happened),
    /// 50,000 per transaction; `progress` gets the number written so far.
    pub async fn append_synthetic(&self, count: u64, mut progress: impl FnMut(u64) + Send) -> Result<(), AuditError> {
        const ROWS_PER_STATEMENT: u64 = 100;
        const ROWS_PER_TRANSACTION: u64 = 50_000;
        let now = self.clock.now_micros();
        let mut written = 0u64;
        while written < count {
            let in_transaction = ROWS_PER_TRANSACTION.min(count - written);
            let mut statements = Vec::new();
            let mut done = 0;
            while done < in_transaction {
                let rows = ROWS_PER_STATEMENT.min(in_transaction - done);
                let mut sql = String::from(
                    "INSERT INTO audit_log (at, actor_kind, actor, role, action, resource, request_id, step, ip, outcome) VALUES ",
                );
                let mut args = Vec::with_capacity(rows as usize * 10);
                for r in 0..rows {
                    let n = written + done + r;
                    if r > 0 {
                        sql.push_str(", ");
                    }
                    let b = r as usize * 10;
                    sql.push_str(&format!(
                        "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5,
                        b + 6,
                        b + 7,
                        b + 8,
                        b + 9,
                        b + 10
                    ));
                    args.extend([
                        Arg::Int(now + n as i64),
                        Arg::Text("key".into()),
                        Arg::Text(format!("bench-actor-{}", n % 50)),
                        Arg::OptText(Some("teller".into())),
                        Arg::Text("POST /v1/transfers".into()),
                        Arg::Text(format!("T-{n}")),
                        Arg::Text(format!("bench-{n}")),
                        Arg::Int(1),
                        Arg::OptText(Some("10.0.0.1".into())),
                        Arg::Text("committed".into()),
                    ]);
                }
                statements.push(Statement::new(sql, args).expecting(rows));
                done += rows;
            }
            storage::audit::unaudited(storage::execute_all(&self.db, &statements)).await?;
            written += in_transaction;
            progress(written);
        }
        Ok(())
    }

    /// Starts the background sealer: every second it seals what committed since.
    pub fn spawn_sealer(&self) -> tokio::task::JoinHandle<()> {
        let trail = self.clone();
        tokio::spawn(async move {
            let mut state = SealerState {
                high_water: 0,
                caught_up: VecDeque::new(),
                // The first tick looks at everything above the stored scan mark.
                last_late_scan: std::time::Instant::now() - LATE_SCAN_EVERY,
            };
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if trail.db.is_closed() {
                    break;
                }
                match trail.sealer_tick(&mut state).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(sealed = n, "audit entries sealed"),
                    Err(e) => tracing::warn!(error = %e, "audit sealing failed; retrying"),
                }
            }
        })
    }

    /// Starts the recorder of entries without a change to commit with (see [`AuditRecorder`]).
    pub fn spawn_recorder(&self) -> AuditRecorder {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(AuditContext, &'static str)>(10_000);
        let trail = self.clone();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(500);
            while rx.recv_many(&mut batch, 500).await > 0 {
                if let Err(e) = trail.record(&batch).await {
                    tracing::error!(error = %e, lost = batch.len(), "could not write audit entries");
                }
                batch.clear();
            }
        });
        AuditRecorder { tx }
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Writes reads of personal data and refused requests to the trail in batches, off the request
/// path (a read commits nothing, so there is no transaction to join).
#[derive(Clone)]
pub struct AuditRecorder {
    tx: tokio::sync::mpsc::Sender<(AuditContext, &'static str)>,
}

impl AuditRecorder {
    /// Queues one entry; waits only when thousands are already queued.
    pub async fn record(&self, context: AuditContext, outcome: &'static str) {
        if self.tx.send((context, outcome)).await.is_err() {
            tracing::error!("audit recorder stopped; entry lost");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: i64) -> AuditEntry {
        AuditEntry {
            id,
            at: 1,
            actor_kind: "key".into(),
            actor: "a".into(),
            role: None,
            action: "POST /v1/x".into(),
            resource: "r".into(),
            request_id: "q".into(),
            step: 1,
            ip: None,
            outcome: "committed".into(),
            purpose: None,
            chain_seq: None,
        }
    }

    #[test]
    fn hashes_depend_on_every_field_position_and_predecessor() {
        let genesis = [0u8; 32];
        let base = entry_hash(&genesis, 1, &entry(1));
        assert_ne!(base, entry_hash(&genesis, 2, &entry(1)));
        assert_ne!(base, entry_hash(&[1u8; 32], 1, &entry(1)));
        let mut moved = entry(1);
        moved.actor = "ar".into();
        moved.resource = String::new();
        assert_ne!(base, entry_hash(&genesis, 1, &moved), "length prefixes keep fields apart");
        let mut no_role = entry(1);
        no_role.role = Some(String::new());
        assert_ne!(base, entry_hash(&genesis, 1, &no_role), "absent and empty differ");
    }
}
