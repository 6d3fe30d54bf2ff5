//! Tokenizer: turns source text into tokens carrying byte spans.

use rust_decimal::Decimal;

use crate::error::{ErrorKind, RawError};
use crate::Span;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    Number(Decimal),
    Str(String),
    True,
    False,
    And,
    Or,
    Not,
    In,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Plus,
    Minus,
    Star,
    Slash,
    EqEq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Eof,
}

impl Tok {
    /// How the token reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Ident(name) => format!("identifier `{name}`"),
            Tok::Number(n) => format!("number `{n}`"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::True => "`true`".into(),
            Tok::False => "`false`".into(),
            Tok::And => "`and`".into(),
            Tok::Or => "`or`".into(),
            Tok::Not => "`not`".into(),
            Tok::In => "`in`".into(),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::LBracket => "`[`".into(),
            Tok::RBracket => "`]`".into(),
            Tok::Comma => "`,`".into(),
            Tok::Plus => "`+`".into(),
            Tok::Minus => "`-`".into(),
            Tok::Star => "`*`".into(),
            Tok::Slash => "`/`".into(),
            Tok::EqEq => "`==`".into(),
            Tok::Ne => "`!=`".into(),
            Tok::Lt => "`<`".into(),
            Tok::Le => "`<=`".into(),
            Tok::Gt => "`>`".into(),
            Tok::Ge => "`>=`".into(),
            Tok::Eof => "end of input".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    pub span: Span,
}

/// Words that cannot be used as field names.
pub(crate) const KEYWORDS: &[&str] = &["and", "or", "not", "in", "true", "false"];

pub(crate) fn lex(src: &str) -> Result<Vec<Token>, RawError> {
    let bytes = src.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let single = |tok: Tok| Token { tok, span: Span::new(start, start + 1) };
        let double = |tok: Tok| Token { tok, span: Span::new(start, start + 2) };
        let next = bytes.get(i + 1).copied();
        let token = match c {
            b'(' => single(Tok::LParen),
            b')' => single(Tok::RParen),
            b'[' => single(Tok::LBracket),
            b']' => single(Tok::RBracket),
            b',' => single(Tok::Comma),
            b'+' => single(Tok::Plus),
            b'-' => single(Tok::Minus),
            b'*' => single(Tok::Star),
            b'/' => single(Tok::Slash),
            b'=' if next == Some(b'=') => double(Tok::EqEq),
            b'=' => {
                return Err(RawError::new(
                    ErrorKind::Syntax,
                    Span::new(start, start + 1),
                    "unexpected `=`; use `==` to compare",
                ))
            }
            b'!' if next == Some(b'=') => double(Tok::Ne),
            b'!' => single(Tok::Not),
            b'<' if next == Some(b'=') => double(Tok::Le),
            b'<' => single(Tok::Lt),
            b'>' if next == Some(b'=') => double(Tok::Ge),
            b'>' => single(Tok::Gt),
            b'&' if next == Some(b'&') => double(Tok::And),
            b'|' if next == Some(b'|') => double(Tok::Or),
            b'"' | b'\'' => lex_string(src, start)?,
            b'0'..=b'9' => lex_number(src, start)?,
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let mut end = start;
                while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
                    end += 1;
                }
                let word = &src[start..end];
                let tok = match word {
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    "not" => Tok::Not,
                    "in" => Tok::In,
                    "true" => Tok::True,
                    "false" => Tok::False,
                    _ => Tok::Ident(word.to_string()),
                };
                Token { tok, span: Span::new(start, end) }
            }
            _ => {
                let ch = src[start..].chars().next().unwrap_or('?');
                return Err(RawError::new(
                    ErrorKind::Syntax,
                    Span::new(start, start + ch.len_utf8()),
                    format!("unexpected character `{ch}`"),
                ));
            }
        };
        i = token.span.end;
        tokens.push(token);
    }
    tokens.push(Token { tok: Tok::Eof, span: Span::new(src.len(), src.len()) });
    Ok(tokens)
}

fn lex_string(src: &str, start: usize) -> Result<Token, RawError> {
    let quote = src.as_bytes()[start] as char;
    let mut out = String::new();
    let mut chars = src[start + 1..].char_indices();
    while let Some((off, ch)) = chars.next() {
        let pos = start + 1 + off;
        match ch {
            c if c == quote => return Ok(Token { tok: Tok::Str(out), span: Span::new(start, pos + 1) }),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, '\\')) => out.push('\\'),
                Some((_, '"')) => out.push('"'),
                Some((_, '\'')) => out.push('\''),
                Some((_, other)) => {
                    return Err(RawError::new(
                        ErrorKind::Syntax,
                        Span::new(pos, pos + 1 + other.len_utf8()),
                        format!("unknown escape `\\{other}` in string"),
                    ))
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    Err(RawError::new(ErrorKind::Syntax, Span::new(start, src.len()), "unterminated string"))
}

fn lex_number(src: &str, start: usize) -> Result<Token, RawError> {
    let bytes = src.as_bytes();
    let mut end = start;
    let mut digits = String::new();
    let mut seen_dot = false;
    while end < bytes.len() {
        let b = bytes[end];
        if b.is_ascii_digit() {
            digits.push(b as char);
        } else if b == b'_' && end > start && bytes[end - 1].is_ascii_digit() {
            // digit separator: 500_000
        } else if b == b'.' && !seen_dot {
            if !bytes.get(end + 1).is_some_and(u8::is_ascii_digit) {
                return Err(RawError::new(
                    ErrorKind::Syntax,
                    Span::new(start, end + 1),
                    "expected digits after the decimal point",
                ));
            }
            seen_dot = true;
            digits.push('.');
        } else {
            break;
        }
        end += 1;
    }
    let span = Span::new(start, end);
    if bytes.get(end).is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_') {
        return Err(RawError::new(ErrorKind::Syntax, span, "a number must not be followed directly by a letter"));
    }
    let value = Decimal::from_str_exact(&digits).map_err(|_| {
        RawError::new(ErrorKind::Literal, span, "number literal out of range (at most 28 significant digits)")
    })?;
    Ok(Token { tok: Tok::Number(value), span })
}
