//! Units of work: writes that commit together or not at all.
//!
//! * [`execute_all`] runs [`Statement`]s in one transaction, checking each statement's row
//!   expectation (an optimistic check that found a row moved on rolls everything back).
//! * A ledger batch plus another domain's rows is the other unit of work: the domain hands
//!   `ledger::Ledger::submit_batch_with` a closure that returns its [`Statement`]s once the
//!   batch's outcomes are known, and the ledger runs them inside the batch's own transaction
//!   (lending saves a loan with its disbursement this way; risk closes a case with the post or
//!   void of the transfer it held). Both backends run the same statements.
//!
//! ## SQLite connections
//! sqlx connections are opened by [`crate::Database::connect_sqlite`]; threads that need a
//! plain rusqlite connection (the ledger's journal writer, the decision log, snapshot scans)
//! open it with [`open_sqlite_connection`], so every connection to the file runs with the same
//! [`SQLITE_PRAGMAS`].

use crate::{check_rows, Database, RowCountMismatch, Statement};

/// The settings every SQLite connection runs with: WAL (readers never block the writer),
/// `synchronous = FULL` (the WAL is fsynced at every commit, so an acknowledged write survives
/// power loss), no foreign-key enforcement (the domains check references themselves), a 64 MiB
/// page cache and in-memory temporary tables. Checkpoints stay automatic (every 1,000 WAL
/// pages, inside the commit that crosses the threshold): a background checkpointer was measured
/// and made tails worse (its fsyncs of the database file compete with every commit's WAL fsync;
/// see the README's risk benchmark).
pub const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF; \
     PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;";

/// Opens a rusqlite connection to `path` with [`SQLITE_PRAGMAS`] and the shared busy timeout.
pub fn open_sqlite_connection(path: &str) -> rusqlite::Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(SQLITE_PRAGMAS)?;
    conn.busy_timeout(crate::SQLITE_BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Why a unit of work did not commit.
#[derive(Debug, thiserror::Error)]
pub enum UnitOfWorkError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Conflict(#[from] RowCountMismatch),
}

/// Runs `statements` in one transaction: all commit, or none does.
pub async fn execute_all(db: &Database, statements: &[Statement]) -> Result<(), UnitOfWorkError> {
    crate::transaction!(db, |tx| async {
        for s in statements {
            let changed = s.query().execute(&mut *tx).await?.rows_affected();
            check_rows(s, changed)?;
        }
        Ok::<(), UnitOfWorkError>(())
    }
    .await)
}
