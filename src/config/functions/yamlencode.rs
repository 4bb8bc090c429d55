//! `yamlencode`, as Terraform's (go-cty-yaml over libyaml): in the block
//! style Terraform writes, which no YAML crate writes (yaml-rust2's emitter
//! quotes only where YAML needs it and indents sequences): strings
//! double-quoted with libyaml's escapes (a multi-line one as a literal
//! block), keys sorted, a sequence inside a mapping not indented, a plain
//! scalar alone followed by the document end marker `...`.

use hcl::eval::FuncArgs;
use hcl::{Map, Value};

use super::decimal::number_string;
use super::yaml::num_of;

pub(super) fn yamlencode(args: FuncArgs) -> Result<Value, String> {
    let mut out = String::new();
    let v = &args[0];
    match v {
        Value::Array(a) if !a.is_empty() => sequence(a, 0, &mut out),
        Value::Object(m) if !m.is_empty() => mapping(m, 0, &mut out),
        Value::String(s) => string(s, 0, &mut out),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
            // A plain scalar alone is ended with the document end marker.
            if !matches!(other, Value::Array(_) | Value::Object(_)) {
                out.push_str("...\n");
            }
        }
    }
    Ok(Value::String(out))
}

/// A value that fits on the line it starts: a non-string scalar, or an
/// empty collection (in flow style).
fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number_string(num_of(n)),
        Value::String(s) => quoted(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// A string as a value at `indent`: a literal block when it has line
/// breaks and one can hold it, else double-quoted. Ends the line.
fn string(s: &str, indent: usize, out: &mut String) {
    if !s.contains('\n') || !literal_allowed(s) {
        out.push_str(&quoted(s));
        out.push('\n');
        return;
    }
    out.push('|');
    if s.starts_with([' ', '\n']) {
        out.push('2');
    }
    let breaks = s.len() - s.trim_end_matches('\n').len();
    match breaks {
        0 => out.push('-'),
        1 => {}
        _ => out.push('+'),
    }
    out.push('\n');
    let body = s.strip_suffix('\n').unwrap_or(s);
    for line in body.split('\n') {
        if !line.is_empty() {
            out.push_str(&" ".repeat(indent + 2));
            out.push_str(line);
        }
        out.push('\n');
    }
}

/// As libyaml: no literal block for a string with a space at its end, a
/// space before a line break, or a character it cannot print.
fn literal_allowed(s: &str) -> bool {
    !s.ends_with(' ') && !s.contains(" \n") && s.chars().all(|c| c == '\n' || printable(c))
}

fn printable(c: char) -> bool {
    matches!(c as u32, 0x20..=0x7E | 0x85 | 0xA0..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
        && c != '\u{FEFF}'
}

/// A double-quoted string with libyaml's escapes.
fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\x0b' => out.push_str("\\v"),
            '\x0c' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\x1b' => out.push_str("\\e"),
            '\u{85}' => out.push_str("\\N"),
            '\u{A0}' => out.push_str("\\_"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if printable(c) => out.push(c),
            c if (c as u32) <= 0xFF => out.push_str(&format!("\\x{:02X}", c as u32)),
            c if (c as u32) <= 0xFFFF => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push_str(&format!("\\U{:08X}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// A value after `- ` or `key:`, at `indent` (that of its items).
fn value(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Object(m) if !m.is_empty() => mapping(m, indent, out),
        Value::Array(a) if !a.is_empty() => sequence(a, indent, out),
        Value::String(s) => string(s, indent.saturating_sub(2), out),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn mapping(m: &Map<String, Value>, indent: usize, out: &mut String) {
    let mut entries: Vec<(&String, &Value)> = m.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str(&quoted(k));
        out.push(':');
        match v {
            Value::Object(inner) if !inner.is_empty() => {
                out.push('\n');
                out.push_str(&" ".repeat(indent + 2));
                mapping(inner, indent + 2, out);
            }
            // A sequence in a mapping is not indented.
            Value::Array(items) if !items.is_empty() => {
                out.push('\n');
                out.push_str(&" ".repeat(indent));
                sequence(items, indent, out);
            }
            other => {
                out.push(' ');
                value(other, indent + 2, out);
            }
        }
    }
}

fn sequence(items: &[Value], indent: usize, out: &mut String) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str("- ");
        value(item, indent + 2, out);
    }
}
