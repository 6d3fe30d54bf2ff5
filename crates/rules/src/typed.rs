//! Type checking: turns the untyped syntax tree into statically typed nodes.
//!
//! Each result type has its own node enum ([`Num`], [`Str`], [`List`], [`Bool`]), so the
//! evaluator never checks types at run time and cannot meet an ill-typed node.

use rust_decimal::Decimal;

use crate::error::{ErrorKind, RawError};
use crate::parser::{Ast, AstKind, BinOp};
use crate::{Schema, Span, Type};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arith {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone)]
pub(crate) enum Num {
    Lit(Decimal),
    Field(usize),
    Neg(Box<Num>),
    Arith(Arith, Box<Num>, Box<Num>),
    Min(Vec<Num>),
    Max(Vec<Num>),
    Abs(Box<Num>),
    Coalesce(Vec<Num>),
    LenList(Box<List>),
    LenStr(Box<Str>),
}

#[derive(Debug, Clone)]
pub(crate) enum Str {
    Lit(String),
    Field(usize),
    Coalesce(Vec<Str>),
}

#[derive(Debug, Clone)]
pub(crate) enum List {
    Lit(Vec<String>),
    Field(usize),
}

#[derive(Debug, Clone)]
pub(crate) struct Bool {
    pub kind: BoolKind,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub(crate) enum BoolKind {
    Lit(bool),
    Field(usize),
    Not(Box<Bool>),
    /// Flattened: `a and b and c` is one node with three children.
    And(Vec<Bool>),
    Or(Vec<Bool>),
    CmpNum(Cmp, Num, Num),
    /// `==` (true) or `!=` (false) on strings.
    EqStr(bool, Str, Str),
    EqBool(bool, Box<Bool>, Box<Bool>),
    /// `x in [1, 2]`; the flag is true for `not in`.
    InNums(bool, Num, Vec<Decimal>),
    InList(bool, Str, List),
    /// `contains(list, s)`.
    Contains(List, Str),
    /// `contains(text, part)`: substring.
    Substr(Str, Str),
    IsNull(Box<Typed>),
    Coalesce(Vec<Bool>),
}

#[derive(Debug, Clone)]
pub(crate) enum Typed {
    Num(Num),
    Str(Str),
    List(List),
    Bool(Bool),
}

impl Typed {
    pub(crate) fn ty(&self) -> Type {
        match self {
            Typed::Num(_) => Type::Number,
            Typed::Str(_) => Type::String,
            Typed::List(_) => Type::StringList,
            Typed::Bool(_) => Type::Bool,
        }
    }
}

/// The functions the language knows, for error messages.
pub(crate) const FUNCTIONS: &[&str] = &["abs", "coalesce", "contains", "is_null", "len", "max", "min"];

pub(crate) struct Checker<'s> {
    pub schema: &'s Schema,
}

fn type_error(span: Span, message: impl Into<String>) -> RawError {
    RawError::new(ErrorKind::Type, span, message)
}

fn expected(span: Span, want: &str, got: Type) -> RawError {
    type_error(span, format!("expected {want}, got {got}"))
}

impl Checker<'_> {
    pub(crate) fn check(&self, ast: &Ast) -> Result<Typed, RawError> {
        Ok(match &ast.kind {
            AstKind::Number(n) => Typed::Num(Num::Lit(*n)),
            AstKind::Str(s) => Typed::Str(Str::Lit(s.clone())),
            AstKind::Bool(b) => Typed::Bool(Bool { kind: BoolKind::Lit(*b), span: ast.span }),
            AstKind::List(items) => Typed::List(List::Lit(self.string_list(items)?)),
            AstKind::Field(name) => {
                let index = self.schema.index_of(name).ok_or_else(|| {
                    RawError::new(ErrorKind::UnknownField, ast.span, format!("unknown field `{name}`"))
                })?;
                let ty = self.schema.field(index).map_or(Type::Number, |f| f.ty);
                match ty {
                    Type::Number => Typed::Num(Num::Field(index)),
                    Type::String => Typed::Str(Str::Field(index)),
                    Type::StringList => Typed::List(List::Field(index)),
                    Type::Bool => Typed::Bool(Bool { kind: BoolKind::Field(index), span: ast.span }),
                }
            }
            AstKind::Not(inner) => {
                let b = self.boolean(inner, "operand of `not`")?;
                Typed::Bool(Bool { kind: BoolKind::Not(Box::new(b)), span: ast.span })
            }
            AstKind::Neg(inner) => Typed::Num(Num::Neg(Box::new(self.number(inner, "operand of `-`")?))),
            AstKind::Binary(op, l, r) => self.binary(*op, l, r, ast.span)?,
            AstKind::Call { name, name_span, args } => self.call(name, *name_span, args, ast.span)?,
        })
    }

    fn string_list(&self, items: &[Ast]) -> Result<Vec<String>, RawError> {
        items
            .iter()
            .map(|item| match &item.kind {
                AstKind::Str(s) => Ok(s.clone()),
                AstKind::Number(_) => {
                    Err(type_error(item.span, "a list of numbers can only follow `in`; elsewhere lists hold strings"))
                }
                _ => Err(type_error(item.span, "list elements must be string literals")),
            })
            .collect()
    }

    fn number(&self, ast: &Ast, what: &str) -> Result<Num, RawError> {
        match self.check(ast)? {
            Typed::Num(n) => Ok(n),
            other => Err(expected(ast.span, &format!("number as {what}"), other.ty())),
        }
    }

    fn boolean(&self, ast: &Ast, what: &str) -> Result<Bool, RawError> {
        match self.check(ast)? {
            Typed::Bool(b) => Ok(b),
            other => Err(expected(ast.span, &format!("bool as {what}"), other.ty())),
        }
    }

    fn string(&self, ast: &Ast, what: &str) -> Result<Str, RawError> {
        match self.check(ast)? {
            Typed::Str(s) => Ok(s),
            other => Err(expected(ast.span, &format!("string as {what}"), other.ty())),
        }
    }

    fn binary(&self, op: BinOp, l: &Ast, r: &Ast, span: Span) -> Result<Typed, RawError> {
        let sym = op.symbol();
        let arith = |a: Arith| -> Result<Typed, RawError> {
            let left = self.number(l, &format!("left operand of `{sym}`"))?;
            let right = self.number(r, &format!("right operand of `{sym}`"))?;
            Ok(Typed::Num(Num::Arith(a, Box::new(left), Box::new(right))))
        };
        let kind = match op {
            BinOp::Add => return arith(Arith::Add),
            BinOp::Sub => return arith(Arith::Sub),
            BinOp::Mul => return arith(Arith::Mul),
            BinOp::Div => return arith(Arith::Div),
            BinOp::And | BinOp::Or => {
                let left = self.boolean(l, &format!("left operand of `{sym}`"))?;
                let right = self.boolean(r, &format!("right operand of `{sym}`"))?;
                let mut children = Vec::new();
                for child in [left, right] {
                    match child.kind {
                        BoolKind::And(inner) if op == BinOp::And => children.extend(inner),
                        BoolKind::Or(inner) if op == BinOp::Or => children.extend(inner),
                        kind => children.push(Bool { kind, span: child.span }),
                    }
                }
                if op == BinOp::And {
                    BoolKind::And(children)
                } else {
                    BoolKind::Or(children)
                }
            }
            BinOp::In | BinOp::NotIn => self.membership(op == BinOp::NotIn, l, r)?,
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                let cmp = match op {
                    BinOp::Eq => Cmp::Eq,
                    BinOp::Ne => Cmp::Ne,
                    BinOp::Lt => Cmp::Lt,
                    BinOp::Le => Cmp::Le,
                    BinOp::Gt => Cmp::Gt,
                    _ => Cmp::Ge,
                };
                let equality = matches!(cmp, Cmp::Eq | Cmp::Ne);
                match (self.check(l)?, self.check(r)?) {
                    (Typed::Num(a), Typed::Num(b)) => BoolKind::CmpNum(cmp, a, b),
                    (Typed::Str(a), Typed::Str(b)) if equality => BoolKind::EqStr(cmp == Cmp::Eq, a, b),
                    (Typed::Bool(a), Typed::Bool(b)) if equality => {
                        BoolKind::EqBool(cmp == Cmp::Eq, Box::new(a), Box::new(b))
                    }
                    (a, b) if a.ty() != b.ty() => {
                        return Err(type_error(
                            r.span,
                            format!(
                                "cannot compare {} with {}: expected {} on the right of `{sym}`",
                                a.ty(),
                                b.ty(),
                                a.ty()
                            ),
                        ))
                    }
                    (a, _) => {
                        return Err(type_error(
                            span,
                            format!("operator `{sym}` is not defined for {}; only `==` and `!=` are", a.ty()),
                        ))
                    }
                }
            }
        };
        Ok(Typed::Bool(Bool { kind, span }))
    }

    fn membership(&self, negated: bool, l: &Ast, r: &Ast) -> Result<BoolKind, RawError> {
        let left = self.check(l)?;
        match left {
            Typed::Num(n) => match &r.kind {
                AstKind::List(items) => {
                    let nums = items
                        .iter()
                        .map(|item| match &item.kind {
                            AstKind::Number(d) => Ok(*d),
                            AstKind::Neg(inner) => match &inner.kind {
                                AstKind::Number(d) => Ok(-*d),
                                _ => Err(type_error(item.span, "list elements must be number literals")),
                            },
                            _ => Err(type_error(item.span, "expected a number literal in a list after a number")),
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(BoolKind::InNums(negated, n, nums))
                }
                _ => Err(type_error(r.span, "expected a list literal of numbers after `in`")),
            },
            Typed::Str(s) => match self.check(r)? {
                Typed::List(list) => Ok(BoolKind::InList(negated, s, list)),
                other => Err(expected(r.span, "list of strings after `in`", other.ty())),
            },
            other => Err(type_error(l.span, format!("`in` needs a number or string on the left, got {}", other.ty()))),
        }
    }

    fn call(&self, name: &str, name_span: Span, args: &[Ast], span: Span) -> Result<Typed, RawError> {
        let arity = |min: usize, max: Option<usize>| -> Result<(), RawError> {
            let ok = args.len() >= min && max.is_none_or(|m| args.len() <= m);
            if ok {
                return Ok(());
            }
            let want = match max {
                Some(m) if m == min => format!("{min} argument{}", if min == 1 { "" } else { "s" }),
                Some(m) => format!("{min} to {m} arguments"),
                None => format!("at least {min} arguments"),
            };
            Err(RawError::new(ErrorKind::Arity, span, format!("`{name}` takes {want}, got {}", args.len())))
        };
        let nums = |what: &str| -> Result<Vec<Num>, RawError> {
            args.iter().map(|a| self.number(a, &format!("argument of `{what}`"))).collect()
        };
        Ok(match name {
            "min" | "max" => {
                arity(2, None)?;
                let ns = nums(name)?;
                Typed::Num(if name == "min" { Num::Min(ns) } else { Num::Max(ns) })
            }
            "abs" => {
                arity(1, Some(1))?;
                Typed::Num(Num::Abs(Box::new(self.number(&args[0], "argument of `abs`")?)))
            }
            "len" => {
                arity(1, Some(1))?;
                match self.check(&args[0])? {
                    Typed::List(l) => Typed::Num(Num::LenList(Box::new(l))),
                    Typed::Str(s) => Typed::Num(Num::LenStr(Box::new(s))),
                    other => return Err(expected(args[0].span, "list or string as argument of `len`", other.ty())),
                }
            }
            "is_null" => {
                arity(1, Some(1))?;
                let inner = self.check(&args[0])?;
                Typed::Bool(Bool { kind: BoolKind::IsNull(Box::new(inner)), span })
            }
            "contains" => {
                arity(2, Some(2))?;
                let needle = self.string(&args[1], "second argument of `contains`")?;
                let kind = match self.check(&args[0])? {
                    Typed::List(l) => BoolKind::Contains(l, needle),
                    Typed::Str(s) => BoolKind::Substr(s, needle),
                    other => {
                        return Err(expected(
                            args[0].span,
                            "list or string as first argument of `contains`",
                            other.ty(),
                        ))
                    }
                };
                Typed::Bool(Bool { kind, span })
            }
            "coalesce" => {
                arity(1, None)?;
                let first = self.check(&args[0])?;
                let ty = first.ty();
                let mut all = vec![first];
                for a in &args[1..] {
                    let t = self.check(a)?;
                    if t.ty() != ty {
                        return Err(expected(a.span, &format!("{ty} like the first argument of `coalesce`"), t.ty()));
                    }
                    all.push(t);
                }
                match ty {
                    Type::Number => Typed::Num(Num::Coalesce(
                        all.into_iter().filter_map(|t| if let Typed::Num(n) = t { Some(n) } else { None }).collect(),
                    )),
                    Type::String => Typed::Str(Str::Coalesce(
                        all.into_iter().filter_map(|t| if let Typed::Str(s) = t { Some(s) } else { None }).collect(),
                    )),
                    Type::Bool => Typed::Bool(Bool {
                        kind: BoolKind::Coalesce(
                            all.into_iter()
                                .filter_map(|t| if let Typed::Bool(b) = t { Some(b) } else { None })
                                .collect(),
                        ),
                        span,
                    }),
                    Type::StringList => {
                        return Err(type_error(args[0].span, "`coalesce` does not accept lists"));
                    }
                }
            }
            _ => {
                return Err(RawError::new(
                    ErrorKind::UnknownFunction,
                    name_span,
                    format!("unknown function `{name}`; known functions: {}", FUNCTIONS.join(", ")),
                ))
            }
        })
    }
}
