//! `$[...]` expressions, evaluated as Asterisk's expression parser
//! (`ast_expr2`) does, so a dialplan copied from `extensions.conf` computes
//! the same values:
//!
//! | precedence (low → high) | operators |
//! |---|---|
//! | conditional | `cond ? a :: b` |
//! | or | `a \| b` — `a` unless it is empty or zero, else `b` |
//! | and | `a & b` — `a` when neither is empty or zero, else `0` |
//! | comparison | `=` (`==`), `!=`, `<`, `>`, `<=`, `>=` — numeric when both sides are numbers, else by string; `1` or `0` |
//! | additive | `+`, `-` |
//! | multiplicative | `*`, `/`, `%` |
//! | unary | `-a`, `!a` |
//!
//! Values are strings; arithmetic needs numbers and gives integers when the
//! result is whole (`3/2` is `1.5`, as in Asterisk 1.6+). A string with
//! spaces or operator characters is written in double quotes. The regular
//! expression operators `:` and `=~` are refused with a clear error rather
//! than evaluated wrongly.
//!
//! Written by hand: the grammar is a few lines of recursive descent, and the
//! string/number semantics are Asterisk's own, not any expression crate's.

/// Why an expression could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExprError {
    /// The text is not an expression.
    #[error("syntax error in expression: {0}")]
    Syntax(String),
    /// Arithmetic on something that is not a number.
    #[error("non-numeric argument '{0}'")]
    NotNumber(String),
    /// `/` or `%` by zero.
    #[error("division by zero")]
    DivisionByZero,
    /// An Asterisk operator this evaluator does not implement.
    #[error("operator '{0}' is not supported")]
    Unsupported(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Op(&'static str),
}

const OPS: [&str; 20] = [
    "::", "=~", "==", "!=", "<=", ">=", "|", "&", "=", "<", ">", "+", "-", "*", "/", "%", "!", "(",
    ")", "?",
];

fn tokenize(text: &str) -> Result<Vec<Tok>, ExprError> {
    let mut out = Vec::new();
    let mut rest = text;
    'next: loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(out);
        }
        if let Some(q) = rest.strip_prefix('"') {
            let end = q
                .find('"')
                .ok_or_else(|| ExprError::Syntax(format!("unterminated quote in '{text}'")))?;
            out.push(Tok::Word(q[..end].to_string()));
            rest = &q[end + 1..];
            continue;
        }
        if rest.starts_with(':') && !rest.starts_with("::") {
            return Err(ExprError::Unsupported(":".into()));
        }
        for op in OPS {
            if let Some(r) = rest.strip_prefix(op) {
                if op == "=~" {
                    return Err(ExprError::Unsupported(op.into()));
                }
                out.push(Tok::Op(if op == "==" { "=" } else { op }));
                rest = r;
                continue 'next;
            }
        }
        let end = rest
            .find(|c: char| c.is_whitespace() || "|&=<>+-*/%!()?:\"".contains(c))
            .unwrap_or(rest.len());
        out.push(Tok::Word(rest[..end].to_string()));
        rest = &rest[end..];
    }
}

/// Evaluates the text between `$[` and `]` (variables already substituted).
pub fn evaluate(text: &str) -> Result<String, ExprError> {
    let toks = tokenize(text)?;
    if toks.is_empty() {
        return Ok(String::new());
    }
    let mut p = Parser { toks, pos: 0 };
    let v = p.conditional()?;
    match p.toks.get(p.pos) {
        None => Ok(v),
        Some(t) => Err(ExprError::Syntax(format!("unexpected {t:?} in '{text}'"))),
    }
}

fn number(s: &str) -> Option<f64> {
    let t = s.trim();
    // Only plain decimal numbers: "inf", "nan" and hex are strings to Asterisk.
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit() || b"+-.".contains(&b)) {
        return None;
    }
    t.parse().ok()
}

fn need_number(s: &str) -> Result<f64, ExprError> {
    number(s).ok_or_else(|| ExprError::NotNumber(s.to_string()))
}

/// Asterisk's "zero or null": false in `|`, `&`, `!` and `?`.
fn is_false(s: &str) -> bool {
    s.is_empty() || number(s) == Some(0.0)
}

fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

fn bool_str(b: bool) -> String {
    if b { "1" } else { "0" }.to_string()
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek_op(&self) -> Option<&'static str> {
        match self.toks.get(self.pos) {
            Some(Tok::Op(o)) => Some(o),
            _ => None,
        }
    }

    fn eat(&mut self, ops: &[&'static str]) -> Option<&'static str> {
        let op = self.peek_op().filter(|o| ops.contains(o))?;
        self.pos += 1;
        Some(op)
    }

    fn conditional(&mut self) -> Result<String, ExprError> {
        let cond = self.or()?;
        if self.eat(&["?"]).is_none() {
            return Ok(cond);
        }
        let yes = self.conditional()?;
        if self.eat(&["::"]).is_none() {
            return Err(ExprError::Syntax("'?' without '::'".into()));
        }
        let no = self.conditional()?;
        Ok(if is_false(&cond) { no } else { yes })
    }

    fn or(&mut self) -> Result<String, ExprError> {
        let mut a = self.and()?;
        while self.eat(&["|"]).is_some() {
            let b = self.and()?;
            if is_false(&a) {
                a = b;
            }
        }
        Ok(a)
    }

    fn and(&mut self) -> Result<String, ExprError> {
        let mut a = self.comparison()?;
        while self.eat(&["&"]).is_some() {
            let b = self.comparison()?;
            if is_false(&a) || is_false(&b) {
                a = "0".into();
            }
        }
        Ok(a)
    }

    fn comparison(&mut self) -> Result<String, ExprError> {
        let mut a = self.additive()?;
        while let Some(op) = self.eat(&["=", "!=", "<", ">", "<=", ">="]) {
            let b = self.additive()?;
            let ord = match (number(&a), number(&b)) {
                (Some(x), Some(y)) => x.partial_cmp(&y),
                _ => Some(a.cmp(&b)),
            };
            use std::cmp::Ordering::*;
            let r = match (op, ord) {
                ("=", Some(Equal)) => true,
                ("!=", o) => o != Some(Equal),
                ("<", Some(Less)) => true,
                (">", Some(Greater)) => true,
                ("<=", Some(Less | Equal)) => true,
                (">=", Some(Greater | Equal)) => true,
                _ => false,
            };
            a = bool_str(r);
        }
        Ok(a)
    }

    fn additive(&mut self) -> Result<String, ExprError> {
        let mut a = self.multiplicative()?;
        while let Some(op) = self.eat(&["+", "-"]) {
            let b = self.multiplicative()?;
            let (x, y) = (need_number(&a)?, need_number(&b)?);
            a = format_number(if op == "+" { x + y } else { x - y });
        }
        Ok(a)
    }

    fn multiplicative(&mut self) -> Result<String, ExprError> {
        let mut a = self.unary()?;
        while let Some(op) = self.eat(&["*", "/", "%"]) {
            let b = self.unary()?;
            let (x, y) = (need_number(&a)?, need_number(&b)?);
            let r = match op {
                "*" => x * y,
                _ if y == 0.0 => return Err(ExprError::DivisionByZero),
                "/" => x / y,
                _ => x % y,
            };
            a = format_number(r);
        }
        Ok(a)
    }

    fn unary(&mut self) -> Result<String, ExprError> {
        match self.eat(&["-", "!"]) {
            Some("-") => {
                let v = self.unary()?;
                Ok(format_number(-need_number(&v)?))
            }
            Some(_) => {
                let v = self.unary()?;
                Ok(bool_str(is_false(&v)))
            }
            None => self.primary(),
        }
    }

    fn primary(&mut self) -> Result<String, ExprError> {
        match self.toks.get(self.pos).cloned() {
            Some(Tok::Word(w)) => {
                self.pos += 1;
                Ok(w)
            }
            Some(Tok::Op("(")) => {
                self.pos += 1;
                let v = self.conditional()?;
                if self.eat(&[")"]).is_none() {
                    return Err(ExprError::Syntax("missing ')'".into()));
                }
                Ok(v)
            }
            Some(Tok::Op(o)) => Err(ExprError::Syntax(format!("unexpected '{o}'"))),
            None => Err(ExprError::Syntax("expression ends too early".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{evaluate, ExprError};

    fn ev(s: &str) -> String {
        evaluate(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn arithmetic_follows_asterisk_precedence_and_number_printing() {
        assert_eq!(ev("1 + 2 * 3"), "7");
        assert_eq!(ev("(1 + 2) * 3"), "9");
        assert_eq!(ev("3/2"), "1.5");
        assert_eq!(ev("7 % 4"), "3");
        assert_eq!(ev("-5 + 2"), "-3");
        assert_eq!(ev("10-4-3"), "3");
        assert_eq!(ev("007 + 1"), "8");
        assert_eq!(evaluate("1 / 0"), Err(ExprError::DivisionByZero));
        assert_eq!(evaluate("abc + 1"), Err(ExprError::NotNumber("abc".into())));
    }

    #[test]
    fn comparisons_are_numeric_for_numbers_and_textual_otherwise() {
        assert_eq!(ev("10 > 9"), "1");
        assert_eq!(
            ev("\"10\" < \"9\""),
            "0",
            "quoted numbers are still numbers"
        );
        assert_eq!(ev("abc < abd"), "1");
        assert_eq!(ev("6001 = 6001"), "1");
        assert_eq!(ev("6001 == 6002"), "0");
        assert_eq!(ev("alice != bob"), "1");
        assert_eq!(ev("2 >= 2 & 3 <= 1"), "0");
        assert_eq!(ev("\"\" = \"\""), "1");
    }

    #[test]
    fn logic_returns_operands_as_asterisk_does() {
        assert_eq!(ev("\"\" | fallback"), "fallback");
        assert_eq!(ev("first | second"), "first");
        assert_eq!(ev("0 | 5"), "5");
        assert_eq!(ev("a & b"), "a");
        assert_eq!(ev("a & 0"), "0");
        assert_eq!(ev("!0"), "1");
        assert_eq!(ev("!abc"), "0");
        assert_eq!(ev("1 = 1 ? yes :: no"), "yes");
        assert_eq!(ev("BUSY = ANSWER ? yes :: no"), "no");
        assert_eq!(ev(""), "");
    }

    #[test]
    fn bad_expressions_are_errors_not_guesses() {
        assert!(matches!(evaluate("1 +"), Err(ExprError::Syntax(_))));
        assert!(matches!(evaluate("(1 + 2"), Err(ExprError::Syntax(_))));
        assert!(matches!(evaluate("\"open"), Err(ExprError::Syntax(_))));
        assert!(matches!(evaluate("1 2"), Err(ExprError::Syntax(_))));
        assert_eq!(
            evaluate("${X} =~ ^1"),
            Err(ExprError::Unsupported("=~".into()))
        );
        assert_eq!(evaluate("abc : a"), Err(ExprError::Unsupported(":".into())));
    }
}
