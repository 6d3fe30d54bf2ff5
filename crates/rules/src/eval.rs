//! Evaluation of typed nodes with three-valued logic (`None` = unknown).
//!
//! Nothing here allocates (strings and lists are borrowed from the record or the expression)
//! and nothing panics: overflow and division by zero yield `None`.

use rust_decimal::Decimal;

use crate::typed::{Arith, Bool, BoolKind, Cmp, List, Num, Str, Typed};
use crate::{Record, ValueRef};

impl Num {
    #[inline]
    pub(crate) fn eval<R: Record + ?Sized>(&self, r: &R) -> Option<Decimal> {
        match self {
            Num::Lit(d) => Some(*d),
            Num::Field(i) => match r.get(*i) {
                ValueRef::Number(d) => Some(d),
                _ => None,
            },
            Num::Neg(a) => Some(-a.eval(r)?),
            Num::Arith(op, a, b) => {
                let (a, b) = (a.eval(r)?, b.eval(r)?);
                match op {
                    Arith::Add => a.checked_add(b),
                    Arith::Sub => a.checked_sub(b),
                    Arith::Mul => a.checked_mul(b),
                    Arith::Div => a.checked_div(b),
                }
            }
            Num::Min(items) => {
                let mut best: Option<Decimal> = None;
                for item in items {
                    let v = item.eval(r)?;
                    best = Some(best.map_or(v, |b| b.min(v)));
                }
                best
            }
            Num::Max(items) => {
                let mut best: Option<Decimal> = None;
                for item in items {
                    let v = item.eval(r)?;
                    best = Some(best.map_or(v, |b| b.max(v)));
                }
                best
            }
            Num::Abs(a) => Some(a.eval(r)?.abs()),
            Num::Coalesce(items) => items.iter().find_map(|i| i.eval(r)),
            Num::LenList(l) => Some(Decimal::from(l.eval(r)?.len() as u64)),
            Num::LenStr(s) => Some(Decimal::from(s.eval(r)?.chars().count() as u64)),
        }
    }
}

impl Str {
    #[inline]
    pub(crate) fn eval<'a, R: Record + ?Sized>(&'a self, r: &'a R) -> Option<&'a str> {
        match self {
            Str::Lit(s) => Some(s),
            Str::Field(i) => match r.get(*i) {
                ValueRef::String(s) => Some(s),
                _ => None,
            },
            Str::Coalesce(items) => items.iter().find_map(|i| i.eval(r)),
        }
    }
}

impl List {
    #[inline]
    pub(crate) fn eval<'a, R: Record + ?Sized>(&'a self, r: &'a R) -> Option<&'a [String]> {
        match self {
            List::Lit(items) => Some(items),
            List::Field(i) => match r.get(*i) {
                ValueRef::List(l) => Some(l),
                _ => None,
            },
        }
    }
}

#[inline]
fn compare(cmp: Cmp, a: Decimal, b: Decimal) -> bool {
    match cmp {
        Cmp::Eq => a == b,
        Cmp::Ne => a != b,
        Cmp::Lt => a < b,
        Cmp::Le => a <= b,
        Cmp::Gt => a > b,
        Cmp::Ge => a >= b,
    }
}

impl Bool {
    pub(crate) fn eval<R: Record + ?Sized>(&self, r: &R) -> Option<bool> {
        match &self.kind {
            BoolKind::Lit(b) => Some(*b),
            BoolKind::Field(i) => match r.get(*i) {
                ValueRef::Bool(b) => Some(b),
                _ => None,
            },
            BoolKind::Not(a) => a.eval(r).map(|b| !b),
            BoolKind::And(items) => {
                let mut unknown = false;
                for item in items {
                    match item.eval(r) {
                        Some(false) => return Some(false),
                        None => unknown = true,
                        Some(true) => {}
                    }
                }
                if unknown {
                    None
                } else {
                    Some(true)
                }
            }
            BoolKind::Or(items) => {
                let mut unknown = false;
                for item in items {
                    match item.eval(r) {
                        Some(true) => return Some(true),
                        None => unknown = true,
                        Some(false) => {}
                    }
                }
                if unknown {
                    None
                } else {
                    Some(false)
                }
            }
            BoolKind::CmpNum(cmp, a, b) => Some(compare(*cmp, a.eval(r)?, b.eval(r)?)),
            BoolKind::EqStr(eq, a, b) => Some((a.eval(r)? == b.eval(r)?) == *eq),
            BoolKind::EqBool(eq, a, b) => Some((a.eval(r)? == b.eval(r)?) == *eq),
            BoolKind::InNums(negated, a, items) => {
                let v = a.eval(r)?;
                Some(items.contains(&v) != *negated)
            }
            BoolKind::InList(negated, a, list) => {
                let v = a.eval(r)?;
                Some(list.eval(r)?.iter().any(|s| s == v) != *negated)
            }
            BoolKind::Contains(list, needle) => {
                let n = needle.eval(r)?;
                Some(list.eval(r)?.iter().any(|s| s == n))
            }
            BoolKind::Substr(text, part) => Some(text.eval(r)?.contains(part.eval(r)?)),
            BoolKind::IsNull(inner) => Some(match inner.as_ref() {
                Typed::Num(n) => n.eval(r).is_none(),
                Typed::Str(s) => s.eval(r).is_none(),
                Typed::List(l) => l.eval(r).is_none(),
                Typed::Bool(b) => b.eval(r).is_none(),
            }),
            BoolKind::Coalesce(items) => items.iter().find_map(|i| i.eval(r)),
        }
    }
}
