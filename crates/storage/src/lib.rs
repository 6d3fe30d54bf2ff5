//! # storage
//!
//! Owns how digibank talks to its database, so the domain crates only write SQL:
//!
//! * [`Database::connect`] picks the backend from a URL: `sqlite://path` (the embedded default,
//!   one file, WAL mode, `synchronous=FULL` so a commit is durable) or `postgres://...`.
//! * Migrations live in `migrations/sqlite` and `migrations/postgres` at the repository root and
//!   are applied on connect. The two folders hold the same schema in each dialect.
//! * SQLite allows one writer at a time, so the SQLite backend keeps one dedicated writer
//!   connection behind an async mutex (no `SQLITE_BUSY` storms under load) and a pool of
//!   readers that WAL lets run concurrently with the writer.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::Mutex;

pub mod audit;
mod statement;
mod unit_of_work;
pub use statement::{check_rows, Arg, RowCountMismatch, SqliteStatementError, Statement};
pub use unit_of_work::{execute_all, open_sqlite_connection, UnitOfWorkError, SQLITE_PRAGMAS};

/// Errors opening or migrating the database.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot create data directory {0}: {1}")]
    DataDir(String, std::io::Error),
}

/// How long any SQLite connection waits for another writer before giving up.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The default database when nothing is configured: one SQLite file under `./data`.
pub const DEFAULT_URL: &str = "sqlite://data/digibank.db";

/// A connected, migrated database.
#[derive(Clone)]
pub enum Database {
    Sqlite(SqliteDb),
    Postgres(PgPool),
}

/// The SQLite backend: one writer connection, many readers.
#[derive(Clone)]
pub struct SqliteDb {
    pub writer: Arc<Mutex<SqliteConnection>>,
    pub readers: SqlitePool,
    pub path: String,
}

impl Database {
    /// Connects to `url` and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Database, StorageError> {
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.trim_start_matches("//");
            let path = path.split('?').next().unwrap_or(path).to_string();
            Self::connect_sqlite(&path).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url)?.log_statements(tracing::log::LevelFilter::Trace);
            Self::connect_postgres(options).await
        } else {
            Err(StorageError::UnsupportedUrl(url.to_string()))
        }
    }

    /// Opens (creating if needed) an SQLite database file.
    pub async fn connect_sqlite(path: &str) -> Result<Database, StorageError> {
        if let Some(parent) = Path::new(path).parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|e| StorageError::DataDir(parent.display().to_string(), e))?;
            }
        }
        // The settings of [`SQLITE_PRAGMAS`], as sqlx options (rusqlite connections run the text).
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: the WAL is fsynced at every commit, so an acknowledged write survives power loss.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(false)
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory")
            .log_statements(tracing::log::LevelFilter::Trace);
        let mut writer = SqliteConnection::connect_with(&options).await?;
        sqlx::migrate!("../../migrations/sqlite").run(&mut writer).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Database::Sqlite(SqliteDb { writer: Arc::new(Mutex::new(writer)), readers, path: path.to_string() }))
    }

    /// Connects to PostgreSQL with the given options.
    pub async fn connect_postgres(options: PgConnectOptions) -> Result<Database, StorageError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        sqlx::migrate!("../../migrations/postgres").run(&pool).await?;
        Ok(Database::Postgres(pool))
    }

    /// A short name for logs and benchmark output.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => "sqlite",
            Database::Postgres(_) => "postgres",
        }
    }

    /// SQLite: rewrites the file without free pages and empties the WAL (`VACUUM`, checkpoints),
    /// so values overwritten in place (e.g. personal data just encrypted) do not linger in
    /// unused pages. PostgreSQL: nothing (old row versions go with its own `VACUUM`).
    pub async fn compact(&self) -> Result<(), StorageError> {
        if let Database::Sqlite(s) = self {
            let mut writer = s.writer.lock().await;
            for sql in ["PRAGMA wal_checkpoint(TRUNCATE)", "VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"] {
                sqlx::query(sql).execute(&mut *writer).await?;
            }
        }
        Ok(())
    }

    /// Whether [`Database::close`] was called: background loops end instead of retrying.
    pub fn is_closed(&self) -> bool {
        match self {
            Database::Sqlite(db) => db.readers.is_closed(),
            Database::Postgres(pool) => pool.is_closed(),
        }
    }

    /// Closes all connections (used by tests and the CLI before exit).
    pub async fn close(&self) {
        match self {
            Database::Sqlite(db) => db.readers.close().await,
            Database::Postgres(pool) => pool.close().await,
        }
    }
}

/// Runs `$body` once per backend with `$conn` bound to a reader (the SQLite reader pool or the
/// PostgreSQL pool), so one SQL text serves both dialects.
///
/// Write the SQL with `$1, $2, ...` placeholders: PostgreSQL requires them and SQLite accepts
/// them (sqlx binds `$N` by its number). The body is type-checked once per backend, which is
/// what lets `sqlx::query(..).bind(..)` work with both executors without a generic bound soup.
///
/// ```ignore
/// let n: i64 = storage::read!(&db, |conn| sqlx::query_scalar("SELECT COUNT(*) FROM customers").fetch_one(conn).await)?;
/// ```
#[macro_export]
macro_rules! read {
    ($db:expr, |$conn:ident| $body:expr) => {
        match $db {
            $crate::Database::Sqlite(sqlite) => {
                let $conn = &sqlite.readers;
                $body
            }
            $crate::Database::Postgres(pool) => {
                let $conn = pool;
                $body
            }
        }
    };
}

/// Like [`read!`] but `$conn` is a writer: SQLite's single writer connection (locked for the
/// duration of the body) or the PostgreSQL pool. Inside an audit scope ([`audit`]) the body runs
/// in a transaction that also commits the scope's audit entry (`$conn` is then the transaction's
/// connection), so a write is never committed without its entry.
#[macro_export]
macro_rules! write {
    ($db:expr, |$conn:ident| $body:expr) => {
        if $crate::audit::active() {
            // Inside an audit scope the write and its entry commit together. An async block so
            // `?` converts into the body's own error type (the caller may not return a Result).
            match $db {
                $crate::Database::Sqlite(sqlite) => {
                    let mut guard = sqlite.writer.lock().await;
                    async {
                        let mut audited = sqlx::Connection::begin(&mut *guard).await?;
                        let value = {
                            let $conn = &mut *audited;
                            $body
                        }?;
                        if let Some(entry) = $crate::audit::next_entry() {
                            entry.query().execute(&mut *audited).await?;
                        }
                        audited.commit().await?;
                        Ok(value)
                    }
                    .await
                }
                $crate::Database::Postgres(pool) => {
                    async {
                        let mut audited = pool.begin().await?;
                        let value = {
                            let $conn = &mut *audited;
                            $body
                        }?;
                        if let Some(entry) = $crate::audit::next_entry() {
                            entry.query().execute(&mut *audited).await?;
                        }
                        audited.commit().await?;
                        Ok(value)
                    }
                    .await
                }
            }
        } else {
            match $db {
                $crate::Database::Sqlite(sqlite) => {
                    let mut guard = sqlite.writer.lock().await;
                    let $conn = &mut *guard;
                    $body
                }
                $crate::Database::Postgres(pool) => {
                    let $conn = pool;
                    $body
                }
            }
        }
    };
}

/// Runs `$body` inside one database transaction on the writer; `$tx` is the open transaction
/// (use it as `&mut *$tx`). The body evaluates to `Result<T, E>` with `E: From<sqlx::Error>`;
/// on `Ok` the transaction commits, on `Err` it rolls back (dropped) and nothing is written.
/// Inside an audit scope ([`audit`]) the scope's entry is inserted just before the commit.
#[macro_export]
macro_rules! transaction {
    ($db:expr, |$tx:ident| $body:expr) => {
        match $db {
            $crate::Database::Sqlite(sqlite) => {
                let mut guard = sqlite.writer.lock().await;
                let mut $tx = sqlx::Connection::begin(&mut *guard).await?;
                match $body {
                    Ok(value) => {
                        if let Some(entry) = $crate::audit::next_entry() {
                            entry.query().execute(&mut *$tx).await?;
                        }
                        $tx.commit().await?;
                        Ok(value)
                    }
                    Err(e) => Err(e),
                }
            }
            $crate::Database::Postgres(pool) => {
                let mut $tx = pool.begin().await?;
                match $body {
                    Ok(value) => {
                        if let Some(entry) = $crate::audit::next_entry() {
                            entry.query().execute(&mut *$tx).await?;
                        }
                        $tx.commit().await?;
                        Ok(value)
                    }
                    Err(e) => Err(e),
                }
            }
        }
    };
}

/// Makes a PostgreSQL URL that confines every connection to `schema` (created if missing), so
/// tests and benchmarks can share one server without seeing each other's rows.
pub async fn postgres_url_with_schema(base_url: &str, schema: &str) -> Result<String, StorageError> {
    let mut conn = sqlx::PgConnection::connect(base_url).await?;
    sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"")).execute(&mut conn).await?;
    conn.close().await?;
    let separator = if base_url.contains('?') { '&' } else { '?' };
    Ok(format!("{base_url}{separator}options=-c%20search_path%3D{schema}"))
}

/// Drops a schema made by [`postgres_url_with_schema`].
pub async fn drop_postgres_schema(base_url: &str, schema: &str) -> Result<(), StorageError> {
    let mut conn = sqlx::PgConnection::connect(base_url).await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE")).execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

/// Microseconds since the Unix epoch: the one timestamp format in storage, identical in both
/// backends and stable inside journal hashes.
pub type Micros = i64;

/// Isolated databases for tests: a fresh SQLite file always, and a fresh PostgreSQL schema when
/// `DATABASE_URL` points at a server (CI sets it), so every test runs on both backends.
pub mod testing {
    use super::*;

    /// A database made for one test.
    pub struct TestDb {
        pub db: Database,
        pub url: String,
        sqlite_dir: Option<std::path::PathBuf>,
    }

    impl TestDb {
        pub fn backend(&self) -> &'static str {
            self.db.backend_name()
        }
    }

    impl Drop for TestDb {
        fn drop(&mut self) {
            if let Some(dir) = &self.sqlite_dir {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    /// A unique, empty SQLite database file under the system temp directory.
    pub async fn sqlite() -> TestDb {
        let dir = std::env::temp_dir().join(format!("digibank-test-{}", uuid::Uuid::now_v7().simple()));
        let path = dir.join("test.db");
        let url = format!("sqlite://{}", path.display());
        let db = Database::connect(&url).await.expect("open test sqlite");
        TestDb { db, url, sqlite_dir: Some(dir) }
    }

    /// A unique, empty PostgreSQL schema, when `DATABASE_URL` is set.
    pub async fn postgres() -> Option<TestDb> {
        let base = std::env::var("DATABASE_URL").ok().filter(|u| u.starts_with("postgres"))?;
        let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
        let url = postgres_url_with_schema(&base, &schema).await.expect("create test schema");
        let db = Database::connect(&url).await.expect("open test postgres");
        Some(TestDb { db, url, sqlite_dir: None })
    }

    /// SQLite always, plus PostgreSQL when configured.
    pub async fn all() -> Vec<TestDb> {
        let mut out = vec![sqlite().await];
        out.extend(postgres().await);
        out
    }
}
