//! Variable substitution in step arguments: `${VAR}`, `${VAR:offset:length}`,
//! nested `${${X}}`, and `$[expression]` (see [`crate::expr`]), expanded
//! inside out as Asterisk's `pbx_substitute_variables` does.

use sirius_core::channels::Vars;

/// Sets a channel variable as `Set()` does ([`Vars::store`]: the name keeps
/// its inheritance prefix, `_VAR` or `__VAR`).
pub fn store(vars: &mut Vars, name: &str, value: &str) {
    vars.store(name, value)
}

/// A channel variable by its name without prefix (`${VAR}` finds `__VAR`).
pub fn fetch<'a>(vars: &'a Vars, name: &str) -> Option<&'a str> {
    vars.fetch(name)
}

/// The variables a dialled channel inherits (Asterisk's
/// `ast_channel_inherit_variables`): `_VAR` as `VAR`, `__VAR` as `__VAR`.
pub fn inherited(vars: &Vars) -> Vars {
    vars.iter()
        .filter_map(|(k, v)| match k.strip_prefix('_') {
            Some(rest) if rest.starts_with('_') => Some((k, v)),
            Some(rest) => Some((rest, v)),
            None => None,
        })
        .collect()
}

/// Expands `${VAR}`, `${VAR:offset:length}` and `$[expr]`, innermost first.
/// An expression that cannot be evaluated is logged and expands to nothing,
/// as in Asterisk.
pub fn substitute(s: &str, get: &dyn Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    loop {
        let var = rest.find("${");
        let expr = rest.find("$[");
        let (i, open, close, is_expr) = match (var, expr) {
            (None, None) => break,
            (Some(v), Some(e)) if e < v => (e, b'[', b']', true),
            (Some(v), _) => (v, b'{', b'}', false),
            (None, Some(e)) => (e, b'[', b']', true),
        };
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = matching_close(after.as_bytes(), open, close) else {
            out.push_str(&rest[i..]);
            return out;
        };
        let inner = substitute(&after[..end], get);
        if is_expr {
            match crate::expr::evaluate(&inner) {
                Ok(v) => out.push_str(&v),
                Err(e) => log::warn!("$[{inner}]: {e}"),
            }
        } else {
            out.push_str(&expand_one(&inner, get));
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The index of the `close` that ends a bracket already opened (nesting counted).
fn matching_close(bytes: &[u8], open: u8, close: u8) -> Option<usize> {
    let mut depth = 1;
    for (j, &b) in bytes.iter().enumerate() {
        if b == open {
            depth += 1;
        } else if b == close {
            depth -= 1;
            if depth == 0 {
                return Some(j);
            }
        }
    }
    None
}

fn expand_one(inner: &str, get: &dyn Fn(&str) -> String) -> String {
    // ${NAME:offset[:length]} — but CALLERID(num) style names keep their parentheses.
    let (name, slice) = match inner.find(':') {
        Some(c) if !inner[..c].contains('(') || inner[..c].contains(')') => {
            (&inner[..c], Some(&inner[c + 1..]))
        }
        _ => (inner, None),
    };
    let value = get(name);
    let Some(slice) = slice else { return value };
    let chars: Vec<char> = value.chars().collect();
    let mut parts = slice.splitn(2, ':');
    let off: i64 = parts
        .next()
        .and_then(|o| o.trim().parse().ok())
        .unwrap_or(0);
    let len: Option<i64> = parts.next().and_then(|l| l.trim().parse().ok());
    let n = chars.len() as i64;
    let start = if off < 0 {
        (n + off).max(0)
    } else {
        off.min(n)
    };
    let end = match len {
        None => n,
        Some(l) if l < 0 => (n + l).max(start),
        Some(l) => (start + l).min(n),
    };
    chars[start as usize..end as usize].iter().collect()
}

#[cfg(test)]
mod tests {
    use super::{fetch, inherited, store, substitute};
    use sirius_core::channels::Vars;

    #[test]
    fn inheritance_prefixes_are_kept_and_passed_on_as_asterisk_does() {
        let mut v = Vars::new();
        store(&mut v, "PLAIN", "p");
        store(&mut v, "_ONCE", "1");
        store(&mut v, "__ALWAYS", "2");
        assert_eq!(fetch(&v, "ONCE"), Some("1"));
        assert_eq!(fetch(&v, "ALWAYS"), Some("2"));
        let child = inherited(&v);
        assert_eq!(
            child.iter().collect::<Vec<_>>(),
            vec![("ONCE", "1"), ("__ALWAYS", "2")]
        );
        let grandchild = inherited(&inherited(&v));
        assert_eq!(
            grandchild.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            vec!["__ALWAYS"]
        );
        store(&mut v, "ONCE", "plain now");
        assert_eq!(v.get("_ONCE"), None);
        assert_eq!(fetch(&v, "ONCE"), Some("plain now"));
    }

    #[test]
    fn variables_and_slices() {
        let get = |n: &str| match n {
            "EXTEN" => "6001".to_string(),
            "CALLERID(num)" => "alice".to_string(),
            "X" => "EXTEN".to_string(),
            _ => String::new(),
        };
        assert_eq!(substitute("SIP/${EXTEN:1}", &get), "SIP/001");
        assert_eq!(substitute("${EXTEN:-2}", &get), "01");
        assert_eq!(substitute("${EXTEN:0:2}", &get), "60");
        assert_eq!(substitute("from ${CALLERID(num)}", &get), "from alice");
        assert_eq!(substitute("${${X}}", &get), "6001");
        assert_eq!(substitute("${UNSET}x", &get), "x");
        assert_eq!(substitute("no ${close", &get), "no ${close");
    }

    #[test]
    fn expressions_see_substituted_variables_and_nest() {
        let get = |n: &str| match n {
            "EXTEN" => "6001".to_string(),
            "N" => "4".to_string(),
            _ => String::new(),
        };
        assert_eq!(substitute("$[${N} * 2 + 1]", &get), "9");
        assert_eq!(
            substitute("$[${EXTEN:0:1} = 6]?local:far", &get),
            "1?local:far"
        );
        assert_eq!(substitute("$[$[${N} + 1] > 4]", &get), "1");
        assert_eq!(
            substitute("a$[1 +]b", &get),
            "ab",
            "errors expand to nothing"
        );
        // As in Asterisk, an empty value needs quotes to stay an operand.
        assert_eq!(substitute("$[\"${UNSET}\" = \"\"]", &get), "1");
        assert_eq!(substitute("$[${UNSET} = \"\"]", &get), "");
        assert_eq!(substitute("keep $[ open", &get), "keep $[ open");
    }
}
