//! # rules
//!
//! A small, statically typed expression language for business rules: customer tags, segments
//! and (later) risk rules.
//!
//! ```text
//! kind == "sme" and months_active >= 24 and credit_grade in ["AAA", "AA", "A"]
//! sum_inflow_90d >= 500000.00 or aum >= 500000
//! not is_payroll and days_since_last_login > 90
//! min(balance, 100) * 2 + abs(delta) >= coalesce(limit, 0)
//! ```
//!
//! * Types: `number` (exact [`rust_decimal::Decimal`], never a float), `string`, `bool` and
//!   `list of strings`. A [`Schema`] declares the fields a rule may use and their types.
//! * [`compile`] parses **and** type-checks. Unknown fields, unknown functions, wrong argument
//!   counts and type mismatches are reported as a [`CompileError`] with a byte offset and a
//!   1-based line:column, e.g. ``unknown field `foo` at 1:17``.
//! * Fields are resolved to indices at compile time; a [`Record`] hands out values by index, so
//!   evaluating a rule never hashes a field name and never allocates.
//! * Logic is three-valued: a missing field is `Null`, comparisons with `Null` are unknown,
//!   `false and unknown` is `false`, `true or unknown` is `true`. [`Expr::matches`] is true only
//!   for a definite `true`. Division by zero and overflow also give unknown; evaluation never panics.
//! * [`Expr::explain`] returns the tree of sub-conditions with their outcomes and the field
//!   values they read ("why does this customer carry this tag").
//!
//! ## Operators and functions
//! Loosest to tightest: `or` (`||`), `and` (`&&`), `not` (`!`), comparisons `== != < <= > >=`,
//! `in [..]`, `not in [..]` (not chainable), `+ -`, `* /`, unary `-`. Ordering comparisons are
//! defined on numbers only; strings and bools support `==`/`!=`. `in` takes a list literal
//! (`["AAA", "AA"]`, `[1, 2, 3]`) or a list-of-strings field.
//!
//! Functions: `min(n, n, ..)`, `max(n, n, ..)`, `abs(n)`, `coalesce(x, y, ..)` (first known
//! value, same type), `contains(list, s)` / `contains(text, part)`, `len(list | string)`,
//! `is_null(x)`. `min`/`max` are unknown if any argument is unknown.
//!
//! ## Why a hand-written parser
//! The crates we looked at (`evalexpr`, `rhai`, `cel-interpreter`, `pest`-based grammars) either
//! evaluate numbers as `f64`, are dynamically typed (type errors surface per record at run time
//! instead of when a rule is saved), resolve variables by name on every evaluation, or do not
//! report positions for semantic errors such as unknown fields. The grammar here is a few dozen
//! productions; a Pratt parser plus a type checker is ~1,000 lines that we fully control.

mod error;
mod eval;
mod lexer;
mod parser;
mod print;
mod schema;
mod typed;

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub use error::{CompileError, ErrorKind, RulesError};
pub use schema::{Field, Record, Row, Schema, Type, Value, ValueRef};

use error::RawError;
use typed::{Bool, BoolKind, Checker, List, Num, Str, Typed};

/// A byte range in the rule source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub(crate) fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    pub(crate) fn join(self, other: Span) -> Span {
        Span { start: self.start.min(other.start), end: self.end.max(other.end) }
    }
}

/// A compiled, type-checked expression bound to the field layout of the schema it was compiled
/// against. Evaluate it against records laid out by that same schema.
#[derive(Debug, Clone)]
pub struct Expr {
    source: String,
    root: Typed,
    /// (index, name) of each referenced field, sorted by index.
    fields: Vec<(usize, String)>,
}

/// Parses and type-checks `source` against `schema`. The result may be of any type; use
/// [`compile_condition`] when a boolean is required (tags, segments, rule conditions).
pub fn compile(source: &str, schema: &Schema) -> Result<Expr, CompileError> {
    compile_raw(source, schema).map_err(|raw| CompileError::from_raw(source, raw))
}

/// Like [`compile`] but the expression must be a boolean condition.
pub fn compile_condition(source: &str, schema: &Schema) -> Result<Expr, CompileError> {
    let expr = compile(source, schema)?;
    if expr.ty() != Type::Bool {
        let raw = RawError::new(
            ErrorKind::Type,
            Span::new(0, source.len()),
            format!("expected a condition (bool), got {}", expr.ty()),
        );
        return Err(CompileError::from_raw(source, raw));
    }
    Ok(expr)
}

fn compile_raw(source: &str, schema: &Schema) -> Result<Expr, RawError> {
    let tokens = lexer::lex(source)?;
    let ast = parser::Parser::new(tokens).parse()?;
    let root = Checker { schema }.check(&ast)?;
    let mut indices = Vec::new();
    collect_typed(&root, &mut indices);
    indices.sort_unstable();
    indices.dedup();
    let fields =
        indices.into_iter().map(|i| (i, schema.field(i).map_or_else(String::new, |f| f.name.clone()))).collect();
    Ok(Expr { source: source.to_string(), root, fields })
}

impl Expr {
    /// The text the expression was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The static result type.
    pub fn ty(&self) -> Type {
        self.root.ty()
    }

    /// The fields the expression reads: `(index, name)`, sorted by index.
    pub fn fields(&self) -> &[(usize, String)] {
        &self.fields
    }

    /// True only if the expression is a condition that evaluates to a definite `true`.
    #[inline]
    pub fn matches<R: Record + ?Sized>(&self, record: &R) -> bool {
        self.eval_bool(record) == Some(true)
    }

    /// Three-valued result of a condition (`None` = unknown, or not a condition).
    #[inline]
    pub fn eval_bool<R: Record + ?Sized>(&self, record: &R) -> Option<bool> {
        match &self.root {
            Typed::Bool(b) => b.eval(record),
            _ => None,
        }
    }

    /// Result of a numeric expression (`None` = unknown, or not a number).
    #[inline]
    pub fn eval_number<R: Record + ?Sized>(&self, record: &R) -> Option<Decimal> {
        match &self.root {
            Typed::Num(n) => n.eval(record),
            _ => None,
        }
    }

    /// Evaluates to an owned [`Value`] of the expression's type, or `Null`.
    pub fn eval<R: Record + ?Sized>(&self, record: &R) -> Value {
        eval_typed(&self.root, record)
    }

    /// Evaluates every sub-condition (no short-circuit) and reports which were true or false,
    /// with the field values each leaf condition read.
    pub fn explain<R: Record + ?Sized>(&self, record: &R) -> Explanation {
        match &self.root {
            Typed::Bool(b) => self.explain_bool(b, record),
            other => Explanation {
                condition: self.source.clone(),
                result: None,
                inputs: self.inputs(other, record),
                children: Vec::new(),
            },
        }
    }

    fn explain_bool<R: Record + ?Sized>(&self, b: &Bool, record: &R) -> Explanation {
        let condition = self.source.get(b.span.start..b.span.end).unwrap_or("").trim().to_string();
        let children: Vec<Explanation> = match &b.kind {
            BoolKind::And(items) | BoolKind::Or(items) => items.iter().map(|i| self.explain_bool(i, record)).collect(),
            BoolKind::Not(inner) => vec![self.explain_bool(inner, record)],
            _ => Vec::new(),
        };
        let inputs = if children.is_empty() { self.inputs(&Typed::Bool(b.clone()), record) } else { Vec::new() };
        Explanation { condition, result: b.eval(record), inputs, children }
    }

    fn inputs<R: Record + ?Sized>(&self, node: &Typed, record: &R) -> Vec<Input> {
        let mut indices = Vec::new();
        collect_typed(node, &mut indices);
        indices.sort_unstable();
        indices.dedup();
        indices
            .into_iter()
            .map(|i| {
                let name = self.fields.iter().find(|(j, _)| *j == i).map_or_else(String::new, |(_, n)| n.clone());
                Input { field: name, value: record.get(i).to_owned_value() }
            })
            .collect()
    }
}

/// Canonical text: every operator application parenthesised. Compiling it again yields an
/// equivalent expression that prints the same.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        print::Printer { names: &self.fields }.typed(&self.root, &mut out)?;
        f.write_str(&out)
    }
}

/// A field value read by a leaf condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    pub field: String,
    pub value: Value,
}

/// Outcome of one (sub-)condition for one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    /// The source text of the condition.
    pub condition: String,
    /// `Some(true)`, `Some(false)` or `None` when unknown (missing data).
    pub result: Option<bool>,
    /// Field values read by a leaf condition (empty for `and`/`or`/`not`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<Input>,
    /// Operands of `and` / `or` / `not`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Explanation>,
}

impl Explanation {
    /// Leaf conditions with their outcomes, depth first.
    pub fn leaves(&self) -> Vec<&Explanation> {
        let mut out = Vec::new();
        fn walk<'a>(e: &'a Explanation, out: &mut Vec<&'a Explanation>) {
            if e.children.is_empty() {
                out.push(e);
            }
            for c in &e.children {
                walk(c, out);
            }
        }
        walk(self, &mut out);
        out
    }
}

/// An indented tree: `[true] kind == "sme"  (kind = "sme")`.
impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn walk(e: &Explanation, depth: usize, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let mark = match e.result {
                Some(true) => "true",
                Some(false) => "false",
                None => "unknown",
            };
            write!(f, "{}[{mark}] {}", "  ".repeat(depth), e.condition)?;
            if !e.inputs.is_empty() {
                let parts: Vec<String> = e.inputs.iter().map(|i| format!("{} = {}", i.field, i.value)).collect();
                write!(f, "  ({})", parts.join(", "))?;
            }
            writeln!(f)?;
            e.children.iter().try_for_each(|c| walk(c, depth + 1, f))
        }
        walk(self, 0, f)
    }
}

fn eval_typed<R: Record + ?Sized>(t: &Typed, r: &R) -> Value {
    match t {
        Typed::Num(n) => n.eval(r).map_or(Value::Null, Value::Number),
        Typed::Str(s) => s.eval(r).map_or(Value::Null, |s| Value::String(s.to_string())),
        Typed::List(l) => l.eval(r).map_or(Value::Null, |l| Value::List(l.to_vec())),
        Typed::Bool(b) => b.eval(r).map_or(Value::Null, Value::Bool),
    }
}

fn collect_typed(t: &Typed, out: &mut Vec<usize>) {
    match t {
        Typed::Num(n) => collect_num(n, out),
        Typed::Str(s) => collect_str(s, out),
        Typed::List(l) => collect_list(l, out),
        Typed::Bool(b) => collect_bool(b, out),
    }
}

fn collect_num(n: &Num, out: &mut Vec<usize>) {
    match n {
        Num::Lit(_) => {}
        Num::Field(i) => out.push(*i),
        Num::Neg(a) | Num::Abs(a) => collect_num(a, out),
        Num::Arith(_, a, b) => {
            collect_num(a, out);
            collect_num(b, out);
        }
        Num::Min(items) | Num::Max(items) | Num::Coalesce(items) => items.iter().for_each(|i| collect_num(i, out)),
        Num::LenList(l) => collect_list(l, out),
        Num::LenStr(s) => collect_str(s, out),
    }
}

fn collect_str(s: &Str, out: &mut Vec<usize>) {
    match s {
        Str::Lit(_) => {}
        Str::Field(i) => out.push(*i),
        Str::Coalesce(items) => items.iter().for_each(|i| collect_str(i, out)),
    }
}

fn collect_list(l: &List, out: &mut Vec<usize>) {
    if let List::Field(i) = l {
        out.push(*i);
    }
}

fn collect_bool(b: &Bool, out: &mut Vec<usize>) {
    match &b.kind {
        BoolKind::Lit(_) => {}
        BoolKind::Field(i) => out.push(*i),
        BoolKind::Not(a) => collect_bool(a, out),
        BoolKind::And(items) | BoolKind::Or(items) | BoolKind::Coalesce(items) => {
            items.iter().for_each(|i| collect_bool(i, out))
        }
        BoolKind::CmpNum(_, a, c) => {
            collect_num(a, out);
            collect_num(c, out);
        }
        BoolKind::EqStr(_, a, c) | BoolKind::Substr(a, c) => {
            collect_str(a, out);
            collect_str(c, out);
        }
        BoolKind::EqBool(_, a, c) => {
            collect_bool(a, out);
            collect_bool(c, out);
        }
        BoolKind::InNums(_, a, _) => collect_num(a, out),
        BoolKind::InList(_, a, l) | BoolKind::Contains(l, a) => {
            collect_str(a, out);
            collect_list(l, out);
        }
        BoolKind::IsNull(inner) => collect_typed(inner, out),
    }
}

#[cfg(test)]
mod tests;
