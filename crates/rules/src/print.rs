//! Canonical printing of typed expressions and the explanation tree.
//!
//! The canonical form puts every operator application in parentheses, so printing, compiling
//! the text again and printing once more gives the same text (tested by proptest).

use std::fmt::{self, Write};

use crate::typed::{Arith, Bool, BoolKind, Cmp, List, Num, Str, Typed};

pub(crate) struct Printer<'a> {
    pub names: &'a [(usize, String)],
}

impl Printer<'_> {
    fn name(&self, index: usize) -> &str {
        self.names.binary_search_by_key(&index, |(i, _)| *i).map_or("?", |pos| self.names[pos].1.as_str())
    }

    pub(crate) fn typed(&self, t: &Typed, out: &mut String) -> fmt::Result {
        match t {
            Typed::Num(n) => self.num(n, out),
            Typed::Str(s) => self.str(s, out),
            Typed::List(l) => self.list(l, out),
            Typed::Bool(b) => self.boolean(b, out),
        }
    }

    fn call<T>(
        &self,
        name: &str,
        args: &[T],
        out: &mut String,
        each: impl Fn(&T, &mut String) -> fmt::Result,
    ) -> fmt::Result {
        write!(out, "{name}(")?;
        for (i, a) in args.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            each(a, out)?;
        }
        out.push(')');
        Ok(())
    }

    fn num(&self, n: &Num, out: &mut String) -> fmt::Result {
        match n {
            Num::Lit(d) => write!(out, "{d}"),
            Num::Field(i) => write!(out, "{}", self.name(*i)),
            Num::Neg(a) => {
                out.push_str("(-");
                self.num(a, out)?;
                out.push(')');
                Ok(())
            }
            Num::Arith(op, a, b) => {
                out.push('(');
                self.num(a, out)?;
                out.push_str(match op {
                    Arith::Add => " + ",
                    Arith::Sub => " - ",
                    Arith::Mul => " * ",
                    Arith::Div => " / ",
                });
                self.num(b, out)?;
                out.push(')');
                Ok(())
            }
            Num::Min(items) => self.call("min", items, out, |a, o| self.num(a, o)),
            Num::Max(items) => self.call("max", items, out, |a, o| self.num(a, o)),
            Num::Abs(a) => self.call("abs", std::slice::from_ref(a.as_ref()), out, |a, o| self.num(a, o)),
            Num::Coalesce(items) => self.call("coalesce", items, out, |a, o| self.num(a, o)),
            Num::LenList(l) => self.call("len", std::slice::from_ref(l.as_ref()), out, |a, o| self.list(a, o)),
            Num::LenStr(s) => self.call("len", std::slice::from_ref(s.as_ref()), out, |a, o| self.str(a, o)),
        }
    }

    fn str(&self, s: &Str, out: &mut String) -> fmt::Result {
        match s {
            Str::Lit(text) => quote(text, out),
            Str::Field(i) => write!(out, "{}", self.name(*i)),
            Str::Coalesce(items) => self.call("coalesce", items, out, |a, o| self.str(a, o)),
        }
    }

    fn list(&self, l: &List, out: &mut String) -> fmt::Result {
        match l {
            List::Lit(items) => {
                out.push('[');
                for (i, s) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    quote(s, out)?;
                }
                out.push(']');
                Ok(())
            }
            List::Field(i) => write!(out, "{}", self.name(*i)),
        }
    }

    pub(crate) fn boolean(&self, b: &Bool, out: &mut String) -> fmt::Result {
        match &b.kind {
            BoolKind::Lit(v) => write!(out, "{v}"),
            BoolKind::Field(i) => write!(out, "{}", self.name(*i)),
            BoolKind::Not(a) => {
                out.push_str("(not ");
                self.boolean(a, out)?;
                out.push(')');
                Ok(())
            }
            BoolKind::And(items) | BoolKind::Or(items) => {
                let sep = if matches!(b.kind, BoolKind::And(_)) { " and " } else { " or " };
                out.push('(');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(sep);
                    }
                    self.boolean(item, out)?;
                }
                out.push(')');
                Ok(())
            }
            BoolKind::CmpNum(cmp, x, y) => {
                out.push('(');
                self.num(x, out)?;
                out.push_str(cmp_symbol(*cmp));
                self.num(y, out)?;
                out.push(')');
                Ok(())
            }
            BoolKind::EqStr(eq, x, y) => {
                out.push('(');
                self.str(x, out)?;
                out.push_str(if *eq { " == " } else { " != " });
                self.str(y, out)?;
                out.push(')');
                Ok(())
            }
            BoolKind::EqBool(eq, x, y) => {
                out.push('(');
                self.boolean(x, out)?;
                out.push_str(if *eq { " == " } else { " != " });
                self.boolean(y, out)?;
                out.push(')');
                Ok(())
            }
            BoolKind::InNums(negated, x, items) => {
                out.push('(');
                self.num(x, out)?;
                out.push_str(if *negated { " not in [" } else { " in [" });
                for (i, d) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write!(out, "{d}")?;
                }
                out.push_str("])");
                Ok(())
            }
            BoolKind::InList(negated, x, list) => {
                out.push('(');
                self.str(x, out)?;
                out.push_str(if *negated { " not in " } else { " in " });
                self.list(list, out)?;
                out.push(')');
                Ok(())
            }
            BoolKind::Contains(list, needle) => {
                out.push_str("contains(");
                self.list(list, out)?;
                out.push_str(", ");
                self.str(needle, out)?;
                out.push(')');
                Ok(())
            }
            BoolKind::Substr(text, part) => {
                out.push_str("contains(");
                self.str(text, out)?;
                out.push_str(", ");
                self.str(part, out)?;
                out.push(')');
                Ok(())
            }
            BoolKind::IsNull(inner) => {
                out.push_str("is_null(");
                self.typed(inner, out)?;
                out.push(')');
                Ok(())
            }
            BoolKind::Coalesce(items) => self.call("coalesce", items, out, |a, o| self.boolean(a, o)),
        }
    }
}

fn cmp_symbol(cmp: Cmp) -> &'static str {
    match cmp {
        Cmp::Eq => " == ",
        Cmp::Ne => " != ",
        Cmp::Lt => " < ",
        Cmp::Le => " <= ",
        Cmp::Gt => " > ",
        Cmp::Ge => " >= ",
    }
}

fn quote(s: &str, out: &mut String) -> fmt::Result {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(())
}
