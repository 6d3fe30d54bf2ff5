//! The WAL checkpointer of an SQLite database.
//!
//! Every connection runs with `wal_autocheckpoint = 0` (see [`crate::SQLITE_PRAGMAS`]), so no
//! commit ever pays for a checkpoint. This thread runs `PRAGMA wal_checkpoint(PASSIVE)` a few
//! times a second instead: PASSIVE copies committed WAL frames into the database file without
//! blocking writers or readers, and once everything is copied the next writer starts the WAL
//! from the beginning again, so it stays small. The thread ends when the last handle to the
//! database is dropped.

use std::sync::Weak;
use std::time::Duration;

/// How often the checkpointer looks at the WAL.
const INTERVAL: Duration = Duration::from_millis(250);

/// A WAL this many pages long (about 400 MiB at 4 KiB pages) that checkpoints cannot shrink
/// (a reader holding an old snapshot for a long time) is worth a warning.
const LONG_WAL_PAGES: i64 = 100_000;

pub(crate) fn spawn<T: Send + Sync + 'static>(path: &str, alive: Weak<T>) {
    let path = path.to_string();
    let started = std::thread::Builder::new().name("wal-checkpoint".into()).spawn(move || {
        let mut conn: Option<rusqlite::Connection> = None;
        let mut warned = false;
        while alive.strong_count() > 0 {
            std::thread::sleep(INTERVAL);
            let c = match &conn {
                Some(c) => c,
                None => match crate::open_sqlite_connection(&path) {
                    Ok(c) => conn.insert(c),
                    Err(e) => {
                        tracing::warn!(error = %e, path, "checkpointer cannot open the database");
                        continue;
                    }
                },
            };
            // (busy, frames in the WAL, frames copied into the database)
            match c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
            }) {
                Ok((_, log, copied)) if log - copied > LONG_WAL_PAGES && !warned => {
                    warned = true;
                    tracing::warn!(
                        log,
                        copied,
                        path,
                        "the WAL keeps growing: a long-running reader holds an old snapshot"
                    );
                }
                Ok(_) => warned = false,
                Err(e) => {
                    tracing::warn!(error = %e, path, "checkpoint failed; will retry");
                    conn = None;
                }
            }
        }
    });
    if let Err(e) = started {
        tracing::error!(error = %e, "could not start the WAL checkpointer");
    }
}
