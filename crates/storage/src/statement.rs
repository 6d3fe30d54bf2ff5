//! [`Statement`]: one write with its bound values, built by one domain and run inside another
//! operation's transaction (a loan's state saved in the same transaction as its ledger batch).
//! The SQL uses `$N` placeholders like every other query here; [`Statement::sqlite_sql`] gives
//! the `?N` form for code that runs it on a raw SQLite connection and binds by position.

use std::borrow::Cow;

/// A write statement with its bound values.
#[derive(Debug, Clone)]
pub struct Statement {
    pub sql: Cow<'static, str>,
    pub args: Vec<Arg>,
    /// When set, the statement must change exactly this many rows or the whole transaction
    /// is rolled back (an optimistic version check that found a row moved on).
    pub expect_rows: Option<u64>,
}

/// A bound value.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Text(String),
    OptText(Option<String>),
    Int(i64),
}

impl Statement {
    pub fn new(sql: impl Into<Cow<'static, str>>, args: Vec<Arg>) -> Self {
        Statement { sql: sql.into(), args, expect_rows: None }
    }

    /// The same statement, required to change exactly `rows` rows.
    pub fn expecting(mut self, rows: u64) -> Self {
        self.expect_rows = Some(rows);
        self
    }

    /// The statement as an sqlx query with its values bound, for either backend.
    pub fn query<DB>(&self) -> sqlx::query::Query<'_, DB, <DB as sqlx::Database>::Arguments<'_>>
    where
        DB: sqlx::Database,
        String: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        Option<String>: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    {
        let mut q = sqlx::query::<DB>(&self.sql);
        for a in &self.args {
            q = match a {
                Arg::Text(s) => q.bind(s.clone()),
                Arg::OptText(s) => q.bind(s.clone()),
                Arg::Int(i) => q.bind(*i),
            };
        }
        q
    }

    /// Runs the statement on a raw SQLite connection (a writer thread's own), binding by
    /// position, and checks its row expectation.
    pub fn execute_sqlite(&self, conn: &rusqlite::Connection) -> Result<u64, SqliteStatementError> {
        let mut stmt = conn.prepare_cached(&self.sqlite_sql())?;
        for (i, arg) in self.args.iter().enumerate() {
            match arg {
                Arg::Text(s) => stmt.raw_bind_parameter(i + 1, s)?,
                Arg::OptText(s) => stmt.raw_bind_parameter(i + 1, s)?,
                Arg::Int(n) => stmt.raw_bind_parameter(i + 1, n)?,
            }
        }
        let changed = stmt.raw_execute()? as u64;
        check_rows(self, changed)?;
        Ok(changed)
    }

    /// The SQL with `$N` placeholders written `?N`. Both mean "parameter N" to SQLite, but a
    /// `$N` is a *named* parameter whose number SQLite has to look up by name on every bind
    /// (a linear scan, so quadratic for a multi-row statement with thousands of values);
    /// `?N` binds straight to position N. Text inside single quotes is left alone.
    pub fn sqlite_sql(&self) -> String {
        let mut out = String::with_capacity(self.sql.len());
        let mut quoted = false;
        let mut chars = self.sql.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\'' {
                quoted = !quoted;
            }
            if c == '$' && !quoted && chars.peek().is_some_and(|n| n.is_ascii_digit()) {
                out.push('?');
            } else {
                out.push(c);
            }
        }
        out
    }
}

/// The outcome of a statement against its expectation.
pub fn check_rows(statement: &Statement, changed: u64) -> Result<(), RowCountMismatch> {
    match statement.expect_rows {
        Some(want) if want != changed => {
            Err(RowCountMismatch { expected: want, changed, sql: statement.sql.chars().take(80).collect() })
        }
        _ => Ok(()),
    }
}

/// Why [`Statement::execute_sqlite`] failed.
#[derive(Debug, thiserror::Error)]
pub enum SqliteStatementError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Conflict(#[from] RowCountMismatch),
}

/// A statement changed another number of rows than it required.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("statement changed {changed} rows, expected {expected}: {sql}...")]
pub struct RowCountMismatch {
    pub expected: u64,
    pub changed: u64,
    pub sql: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_sql_numbers_placeholders_and_skips_literals() {
        let s = Statement::new("UPDATE t SET a = $1, b = '$2 stays' WHERE id = $12 AND c = $", vec![]);
        assert_eq!(s.sqlite_sql(), "UPDATE t SET a = ?1, b = '$2 stays' WHERE id = ?12 AND c = $");
    }

    #[test]
    fn row_expectations() {
        let s = Statement::new("DELETE FROM t", vec![]);
        assert!(check_rows(&s, 7).is_ok());
        let s = s.expecting(2);
        assert!(check_rows(&s, 2).is_ok());
        let e = check_rows(&s, 1).unwrap_err();
        assert_eq!((e.expected, e.changed), (2, 1));
    }
}
