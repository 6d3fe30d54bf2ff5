//! Pratt parser producing an untyped syntax tree with spans.
//!
//! Precedence, loosest first: `or`, `and`, prefix `not`, comparisons (`== != < <= > >= in`,
//! `not in`; not chainable), `+ -`, `* /`, prefix `-`, primaries (literals, fields, calls,
//! parentheses, list literals).

use rust_decimal::Decimal;

use crate::error::{ErrorKind, RawError};
use crate::lexer::{Tok, Token};
use crate::Span;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
    Add,
    Sub,
    Mul,
    Div,
}

impl BinOp {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "or",
            BinOp::And => "and",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::In => "in",
            BinOp::NotIn => "not in",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
        }
    }

    fn binding_power(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And => 2,
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::In | BinOp::NotIn => 4,
            BinOp::Add | BinOp::Sub => 5,
            BinOp::Mul | BinOp::Div => 6,
        }
    }

    fn is_comparison(self) -> bool {
        self.binding_power() == 4
    }
}

const NOT_OPERAND_BP: u8 = 3;
const NEG_OPERAND_BP: u8 = 7;

#[derive(Debug, Clone)]
pub(crate) enum AstKind {
    Number(Decimal),
    Str(String),
    Bool(bool),
    List(Vec<Ast>),
    Field(String),
    Not(Box<Ast>),
    Neg(Box<Ast>),
    Binary(BinOp, Box<Ast>, Box<Ast>),
    Call { name: String, name_span: Span, args: Vec<Ast> },
}

#[derive(Debug, Clone)]
pub(crate) struct Ast {
    pub kind: AstKind,
    pub span: Span,
}

/// Nesting limit so hostile input cannot overflow the stack.
const MAX_DEPTH: usize = 128;

pub(crate) struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser {
    pub(crate) fn new(tokens: Vec<Token>) -> Self {
        Parser { tokens, pos: 0, depth: 0 }
    }

    pub(crate) fn parse(mut self) -> Result<Ast, RawError> {
        if matches!(self.peek().tok, Tok::Eof) {
            return Err(RawError::new(ErrorKind::Syntax, self.peek().span, "empty expression"));
        }
        let ast = self.expr(0)?;
        let next = self.peek();
        if !matches!(next.tok, Tok::Eof) {
            return Err(RawError::new(
                ErrorKind::Syntax,
                next.span,
                format!("unexpected {} after a complete expression", next.tok.describe()),
            ));
        }
        Ok(ast)
    }

    fn peek(&self) -> &Token {
        // The token list always ends with Eof and `pos` never moves past it.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn peek_at(&self, ahead: usize) -> &Tok {
        &self.tokens[(self.pos + ahead).min(self.tokens.len() - 1)].tok
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if !matches!(t.tok, Tok::Eof) {
            self.pos += 1;
        }
        t
    }

    fn expect(&mut self, want: Tok, context: &str) -> Result<Token, RawError> {
        let t = self.peek();
        if t.tok == want {
            Ok(self.bump())
        } else {
            Err(RawError::new(
                ErrorKind::Syntax,
                t.span,
                format!("expected {} {context}, found {}", want.describe(), t.tok.describe()),
            ))
        }
    }

    fn infix_op(&self) -> Option<(BinOp, usize)> {
        let op = match self.peek().tok {
            Tok::Or => BinOp::Or,
            Tok::And => BinOp::And,
            Tok::EqEq => BinOp::Eq,
            Tok::Ne => BinOp::Ne,
            Tok::Lt => BinOp::Lt,
            Tok::Le => BinOp::Le,
            Tok::Gt => BinOp::Gt,
            Tok::Ge => BinOp::Ge,
            Tok::In => BinOp::In,
            Tok::Not if matches!(self.peek_at(1), Tok::In) => return Some((BinOp::NotIn, 2)),
            Tok::Plus => BinOp::Add,
            Tok::Minus => BinOp::Sub,
            Tok::Star => BinOp::Mul,
            Tok::Slash => BinOp::Div,
            _ => return None,
        };
        Some((op, 1))
    }

    fn expr(&mut self, min_bp: u8) -> Result<Ast, RawError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(RawError::new(ErrorKind::Syntax, self.peek().span, "expression nested too deeply"));
        }
        let result = self.expr_inner(min_bp);
        self.depth -= 1;
        result
    }

    fn expr_inner(&mut self, min_bp: u8) -> Result<Ast, RawError> {
        let mut lhs = self.prefix()?;
        let mut last_was_comparison = false;
        while let Some((op, width)) = self.infix_op() {
            let bp = op.binding_power();
            if bp < min_bp {
                break;
            }
            let op_span = Span::new(self.peek().span.start, self.tokens[self.pos + width - 1].span.end);
            if op.is_comparison() && last_was_comparison {
                return Err(RawError::new(
                    ErrorKind::Syntax,
                    op_span,
                    format!("comparisons cannot be chained; combine them with `and` before `{}`", op.symbol()),
                ));
            }
            for _ in 0..width {
                self.bump();
            }
            let rhs = self.expr(bp + 1)?;
            let span = lhs.span.join(rhs.span);
            lhs = Ast { kind: AstKind::Binary(op, Box::new(lhs), Box::new(rhs)), span };
            last_was_comparison = op.is_comparison();
        }
        Ok(lhs)
    }

    fn prefix(&mut self) -> Result<Ast, RawError> {
        let t = self.bump();
        let span = t.span;
        let kind = match t.tok {
            Tok::Number(n) => AstKind::Number(n),
            Tok::Str(s) => AstKind::Str(s),
            Tok::True => AstKind::Bool(true),
            Tok::False => AstKind::Bool(false),
            Tok::Not => {
                let operand = self.expr(NOT_OPERAND_BP)?;
                let span = span.join(operand.span);
                return Ok(Ast { kind: AstKind::Not(Box::new(operand)), span });
            }
            Tok::Minus => {
                let operand = self.expr(NEG_OPERAND_BP)?;
                let span = span.join(operand.span);
                return Ok(Ast { kind: AstKind::Neg(Box::new(operand)), span });
            }
            Tok::LParen => {
                let inner = self.expr(0)?;
                let close = self.expect(Tok::RParen, "to close `(`")?;
                // Keep the inner node but widen its span to include the parentheses.
                return Ok(Ast { kind: inner.kind, span: span.join(close.span) });
            }
            Tok::LBracket => {
                let (items, close) = self.list(Tok::RBracket, "in list")?;
                return Ok(Ast { kind: AstKind::List(items), span: span.join(close) });
            }
            Tok::Ident(name) => {
                if matches!(self.peek().tok, Tok::LParen) {
                    self.bump();
                    let (args, close) = self.list(Tok::RParen, "in argument list")?;
                    return Ok(Ast { kind: AstKind::Call { name, name_span: span, args }, span: span.join(close) });
                }
                AstKind::Field(name)
            }
            Tok::Eof => {
                return Err(RawError::new(ErrorKind::Syntax, span, "unexpected end of input, expected a value"))
            }
            other => {
                return Err(RawError::new(
                    ErrorKind::Syntax,
                    span,
                    format!("unexpected {}, expected a value", other.describe()),
                ))
            }
        };
        Ok(Ast { kind, span })
    }

    /// Comma-separated expressions up to `close` (already past the opening token).
    fn list(&mut self, close: Tok, context: &str) -> Result<(Vec<Ast>, Span), RawError> {
        let mut items = Vec::new();
        if self.peek().tok == close {
            return Ok((items, self.bump().span));
        }
        loop {
            items.push(self.expr(0)?);
            let t = self.peek().clone();
            if t.tok == Tok::Comma {
                self.bump();
                if self.peek().tok == close {
                    return Ok((items, self.bump().span)); // trailing comma
                }
            } else if t.tok == close {
                self.bump();
                return Ok((items, t.span));
            } else {
                return Err(RawError::new(
                    ErrorKind::Syntax,
                    t.span,
                    format!("expected `,` or {} {context}, found {}", close.describe(), t.tok.describe()),
                ));
            }
        }
    }
}
