//! Errors of the rules crate.

use serde::{Deserialize, Serialize};

use crate::{Span, Type};

/// What went wrong while compiling a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The text is not a well-formed expression (unexpected token, unterminated string, ...).
    Syntax,
    /// A literal that cannot be represented (number with too many digits).
    Literal,
    /// A name that is not declared in the [`Schema`](crate::Schema).
    UnknownField,
    /// A function name that does not exist.
    UnknownFunction,
    /// A function called with the wrong number of arguments.
    Arity,
    /// Operand or result types do not fit (expected number, got string, ...).
    Type,
}

/// A compile error with a precise position in the source.
///
/// `offset..end` are byte offsets into the source; `line` and `column` are 1-based, the column
/// counts characters (not bytes) so it matches what an editor shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} at {line}:{column}")]
pub struct CompileError {
    pub kind: ErrorKind,
    pub message: String,
    pub offset: usize,
    pub end: usize,
    pub line: u32,
    pub column: u32,
}

impl CompileError {
    pub(crate) fn from_raw(source: &str, raw: RawError) -> Self {
        let offset = floor_char_boundary(source, raw.span.start.min(source.len()));
        let end = raw.span.end.clamp(offset, source.len());
        let (line, column) = line_column(source, offset);
        CompileError { kind: raw.kind, message: raw.message, offset, end, line, column }
    }

    /// A two-line snippet of the offending source line with a caret underline, for CLIs and logs.
    pub fn render(&self, source: &str) -> String {
        let line_text = source.lines().nth(self.line.saturating_sub(1) as usize).unwrap_or("");
        let line_start = source[..self.offset.min(source.len())].rfind('\n').map_or(0, |p| p + 1);
        let line_end = line_start + line_text.len();
        let underline_end = self.end.clamp(self.offset, line_end.max(self.offset));
        let width = source.get(self.offset..underline_end).map_or(0, |s| s.chars().count()).max(1);
        format!(
            "{}\n{}{}  {}",
            line_text,
            " ".repeat(self.column.saturating_sub(1) as usize),
            "^".repeat(width),
            self.message
        )
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_column(source: &str, offset: usize) -> (u32, u32) {
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |p| p + 1);
    let column = before[line_start..].chars().count() + 1;
    (line as u32, column as u32)
}

/// An error before line/column are known.
#[derive(Debug, Clone)]
pub(crate) struct RawError {
    pub kind: ErrorKind,
    pub span: Span,
    pub message: String,
}

impl RawError {
    pub(crate) fn new(kind: ErrorKind, span: Span, message: impl Into<String>) -> Self {
        RawError { kind, span, message: message.into() }
    }
}

/// The crate's error type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    /// A rule failed to parse or type-check.
    #[error(transparent)]
    Compile(#[from] CompileError),
    #[error("duplicate field `{0}` in schema")]
    DuplicateField(String),
    #[error("invalid field name `{0}`: use ASCII letters, digits and `_`, do not start with a digit, avoid keywords")]
    InvalidFieldName(String),
    #[error("unknown field `{0}`")]
    UnknownField(String),
    #[error("field `{field}` is declared as {expected}, got a {got} value")]
    FieldType { field: String, expected: Type, got: &'static str },
}
