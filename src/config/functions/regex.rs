//! `regex`, `regexall` and the patterns of `replace`, as Terraform's.
//!
//! Terraform's patterns are Go's RE2 syntax; the `regex` crate's is RE2's
//! too, but for a few escapes, which [`compile`] translates: `\d`, `\s`,
//! `\w` and `\b` are ASCII classes in Go (Unicode ones in the crate), and
//! `\Q...\E` quotes a literal text (which the crate does not know).

use hcl::eval::FuncArgs;
use hcl::{Map, Value};
use regex::Regex;

use super::str_arg;

/// The pattern compiled with Go's meaning.
pub(super) fn compile(pattern: &str) -> Result<Regex, String> {
    Regex::new(&translate(pattern))
        .map_err(|e| format!("invalid regexp pattern `{pattern}`: {}", short(&e)))
}

/// The crate's message without the pattern it repeats.
fn short(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .map_or(text.clone(), |l| l.trim_start_matches("error: ").to_owned())
}

/// Go's escapes in the crate's syntax.
fn translate(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars().peekable();
    // Depth of `[...]`: inside, `\d` is written as a range.
    let mut class = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(e) = chars.next() else {
                    out.push('\\');
                    break;
                };
                match (e, class > 0) {
                    ('Q', _) => {
                        let mut literal = String::new();
                        while let Some(c) = chars.next() {
                            if c == '\\' && chars.peek() == Some(&'E') {
                                chars.next();
                                break;
                            }
                            literal.push(c);
                        }
                        out.push_str(&regex::escape(&literal));
                    }
                    ('d', false) => out.push_str("[0-9]"),
                    ('D', false) => out.push_str("[^0-9]"),
                    ('s', false) => out.push_str(r"[\t\n\f\r ]"),
                    ('S', false) => out.push_str(r"[^\t\n\f\r ]"),
                    ('w', false) => out.push_str("[0-9A-Za-z_]"),
                    ('W', false) => out.push_str("[^0-9A-Za-z_]"),
                    ('b', false) => out.push_str(r"(?-u:\b)"),
                    ('B', false) => out.push_str(r"(?-u:\B)"),
                    ('d', true) => out.push_str("0-9"),
                    ('s', true) => out.push_str(r"\t\n\f\r "),
                    ('w', true) => out.push_str("0-9A-Za-z_"),
                    (e, _) => {
                        out.push('\\');
                        out.push(e);
                    }
                }
            }
            '[' => {
                // `[:alpha:]` inside a class opens no class of its own.
                if class > 0 && chars.peek() == Some(&':') {
                    out.push('[');
                    for c in chars.by_ref() {
                        out.push(c);
                        if c == ']' {
                            break;
                        }
                    }
                    continue;
                }
                class += 1;
                out.push('[');
                // A `]` first in a class (after an optional `^`) is literal.
                if chars.peek() == Some(&'^') {
                    out.push(chars.next().unwrap_or('^'));
                }
                if chars.peek() == Some(&']') {
                    chars.next();
                    out.push_str(r"\]");
                }
            }
            ']' if class > 0 => {
                class -= 1;
                out.push(']');
            }
            c => out.push(c),
        }
    }
    out
}

/// What one match gives, by the pattern's capture groups: the matched text
/// (no groups), a list of the groups (unnamed ones) or a map of them (named
/// ones); a group that did not take part is null.
fn result(re: &Regex, captures: &regex::Captures<'_>) -> Value {
    let text = |i: usize| {
        captures
            .get(i)
            .map_or(Value::Null, |m| Value::String(m.as_str().to_owned()))
    };
    if re.captures_len() == 1 {
        return text(0);
    }
    let names: Vec<Option<&str>> = re.capture_names().skip(1).collect();
    if names.iter().all(Option::is_none) {
        return Value::Array((1..re.captures_len()).map(text).collect());
    }
    let mut map: Map<String, Value> = names
        .iter()
        .enumerate()
        .filter_map(|(i, n)| n.map(|n| (n.to_owned(), text(i + 1))))
        .collect();
    map.sort_keys();
    Value::Object(map)
}

fn pattern(args: &FuncArgs) -> Result<Regex, String> {
    let re = compile(&str_arg(args, 0))?;
    let names: Vec<Option<&str>> = re.capture_names().skip(1).collect();
    if names.iter().any(Option::is_some) && names.iter().any(Option::is_none) {
        return Err(
            "invalid regexp pattern: cannot mix both named and unnamed capture groups".into(),
        );
    }
    Ok(re)
}

pub(super) fn regex(args: FuncArgs) -> Result<Value, String> {
    let re = pattern(&args)?;
    let text = str_arg(&args, 1);
    let captures = re
        .captures(&text)
        .ok_or("pattern did not match any part of the given string")?;
    Ok(result(&re, &captures))
}

pub(super) fn regexall(args: FuncArgs) -> Result<Value, String> {
    let re = pattern(&args)?;
    Ok(Value::Array(
        re.captures_iter(&str_arg(&args, 1))
            .map(|c| result(&re, &c))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_escapes_are_translated() {
        assert_eq!(translate(r"\d+\.\w"), r"[0-9]+\.[0-9A-Za-z_]");
        assert_eq!(translate(r"[\d\s]x"), r"[0-9\t\n\f\r ]x");
        assert_eq!(translate(r"[[:alpha:]\d]"), r"[[:alpha:]0-9]");
        assert_eq!(translate(r"[]\d]"), r"[\]0-9]");
        assert_eq!(translate(r"\Qa.b\E+"), r"a\.b+");
        assert!(compile("٣").unwrap().is_match("٣"));
        assert!(!compile(r"\d").unwrap().is_match("٣"));
        // An ASCII word boundary, as Go's: none between a space and é.
        assert!(!compile(r"\bé").unwrap().is_match(" é"));
        assert!(compile(r"\bx").unwrap().is_match(" x"));
    }
}
