//! `yamldecode`, as Terraform's (go-cty-yaml); `yamlencode` is in
//! yamlencode.rs.
//!
//! yaml-rust2 parses (YAML 1.2 syntax, anchors, tags); what a
//! plain scalar means is resolved here as go-cty-yaml resolves it, which is
//! YAML 1.1's: `yes`, `on`, `off` are bools, `2006-1-2` a timestamp written
//! in RFC 3339, `1_000` a number; a quoted scalar is a string. One document,
//! string keys, no cycles.

use std::collections::{BTreeMap, BTreeSet};

use hcl::eval::FuncArgs;
use hcl::{Map, Value};
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::decimal::number_string;
use super::numbers::{num_arg, Num};
use super::str_arg;

const LONG: &str = "tag:yaml.org,2002:";

pub(super) fn yamldecode(args: FuncArgs) -> Result<Value, String> {
    let text = &*str_arg(&args, 0);
    let mut d = Decoder {
        parser: Parser::new_from_str(text),
        text,
        anchors: BTreeMap::new(),
        pending: BTreeSet::new(),
    };
    d.document()
}

struct Decoder<'a> {
    parser: Parser<std::str::Chars<'a>>,
    /// The text, for the names of anchors (the parser gives numbers).
    text: &'a str,
    anchors: BTreeMap<usize, Value>,
    /// Anchors whose node is being read (an alias to one is a cycle).
    pending: BTreeSet<usize>,
}

fn at(mark: Marker, message: impl std::fmt::Display) -> String {
    format!(
        "on line {}, column {}: {message}",
        mark.line(),
        mark.col() + 1
    )
}

impl Decoder<'_> {
    fn next(&mut self) -> Result<(Event, Marker), String> {
        self.parser
            .next_token()
            .map_err(|e| at(*e.marker(), e.info()))
    }

    fn document(&mut self) -> Result<Value, String> {
        let _stream_start = self.next()?;
        match self.next()? {
            (Event::DocumentStart, _) => {}
            (_, mark) => return Err(at(mark, "missing start of document")),
        }
        let (event, mark) = self.next()?;
        let value = self.node(event, mark)?;
        let _document_end = self.next()?;
        match self.next()? {
            (Event::StreamEnd, _) => Ok(value),
            (Event::DocumentStart, mark) => Err(at(mark, "only a single document is allowed")),
            (_, mark) => Err(at(mark, "unexpected extra content after value")),
        }
    }

    fn node(&mut self, event: Event, mark: Marker) -> Result<Value, String> {
        let (anchor, value) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let value = resolve(&text, style, tag.as_ref()).map_err(|e| at(mark, e))?;
                (anchor, value)
            }
            Event::Alias(id) => {
                if self.pending.contains(&id) {
                    let name = self.alias_name(mark);
                    return Err(at(
                        mark,
                        format!("cannot refer to anchor {name:?} from inside its own definition"),
                    ));
                }
                let value = self.anchors.get(&id).cloned();
                return value.ok_or_else(|| at(mark, "reference to an undefined anchor"));
            }
            Event::SequenceStart(anchor, tag) => {
                collection_tag(tag.as_ref(), "seq").map_err(|e| at(mark, e))?;
                self.pending.insert(anchor);
                let mut items = Vec::new();
                loop {
                    match self.next()? {
                        (Event::SequenceEnd, _) => break,
                        (event, mark) => items.push(self.node(event, mark)?),
                    }
                }
                (anchor, Value::Array(items))
            }
            Event::MappingStart(anchor, tag) => {
                collection_tag(tag.as_ref(), "map").map_err(|e| at(mark, e))?;
                self.pending.insert(anchor);
                let map = self.mapping()?;
                (anchor, Value::Object(map))
            }
            _ => return Err(at(mark, "expecting a value")),
        };
        // Anchor 0 is no anchor.
        if anchor > 0 {
            self.pending.remove(&anchor);
            self.anchors.insert(anchor, value.clone());
        }
        Ok(value)
    }

    /// The name of the alias at `mark` (`*name`).
    fn alias_name(&self, mark: Marker) -> String {
        let rest: String = self.text.chars().skip(mark.index()).collect();
        rest.trim_start_matches('*')
            .chars()
            .take_while(|c| !c.is_whitespace() && !",[]{}".contains(*c))
            .collect()
    }

    fn mapping(&mut self) -> Result<Map<String, Value>, String> {
        let mut map = Map::new();
        loop {
            let key = match self.next()? {
                (Event::MappingEnd, _) => break,
                (Event::Scalar(text, style, _, tag), mark) => {
                    match resolve(&text, style, tag.as_ref()).map_err(|e| at(mark, e))? {
                        Value::Null => return Err(at(mark, "mapping key cannot be null")),
                        Value::String(s) => s,
                        Value::Bool(b) => b.to_string(),
                        Value::Number(n) => number_string(num_of(&n)),
                        _ => return Err(at(mark, "only strings are allowed as mapping keys")),
                    }
                }
                (_, mark) => return Err(at(mark, "only strings are allowed as mapping keys")),
            };
            let (event, mark) = self.next()?;
            let value = self.node(event, mark)?;
            map.insert(key, value);
        }
        map.sort_keys();
        Ok(map)
    }
}

pub(super) fn num_of(n: &hcl::Number) -> Num {
    num_arg(&Value::Number(*n), "").unwrap_or(Num::Int(0))
}

/// The long form of a tag (`tag:yaml.org,2002:str`).
fn long_tag(tag: &Tag) -> String {
    format!("{}{}", tag.handle, tag.suffix)
}

fn collection_tag(tag: Option<&Tag>, kind: &str) -> Result<(), String> {
    match tag.map(long_tag) {
        None => Ok(()),
        Some(t) if t == format!("{LONG}{kind}") => Ok(()),
        Some(t) => Err(format!("can't interpret a {kind} as {t}")),
    }
}

/// What a scalar means, as go-cty-yaml resolves it.
fn resolve(text: &str, style: TScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    let full = tag.map(long_tag);
    let tag = full.as_deref().map(|t| t.strip_prefix(LONG).unwrap_or(t));
    let string = || Ok(Value::String(text.to_owned()));
    match tag {
        None if style != TScalarStyle::Plain => string(),
        None => Ok(implicit(text)?.unwrap_or_else(|| Value::String(text.to_owned()))),
        Some("str") => string(),
        Some("binary") => {
            use base64::Engine;
            let compact: String = text.split_whitespace().collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map_err(|_| format!("cannot parse {text:?} as {LONG}binary: not valid base64"))?;
            string()
        }
        Some("null") => Ok(Value::Null),
        Some("bool") => match keyword(text) {
            Some(b @ Value::Bool(_)) => Ok(b),
            _ => Err(format!("cannot parse {text:?} as {LONG}bool")),
        },
        Some(t @ ("int" | "float")) => {
            tagged_number(text).ok_or_else(|| format!("cannot parse {text:?} as {LONG}{t}"))?
        }
        Some("timestamp") => timestamp(text)
            .map(Value::String)
            .ok_or_else(|| format!("cannot parse {text:?} as {LONG}timestamp")),
        Some(_) => Err(format!("unsupported tag {:?}", full.unwrap_or_default())),
    }
}

/// The bools, nulls and infinities YAML 1.1 spells out.
fn keyword(text: &str) -> Option<Value> {
    Some(match text {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            Value::Bool(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            Value::Bool(false)
        }
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        _ => return None,
    })
}

/// A plain scalar that is not a string; `None` when it is one.
fn implicit(text: &str) -> Result<Option<Value>, String> {
    if let Some(v) = keyword(text) {
        return Ok(Some(v));
    }
    const INFINITE: &[&str] = &[
        ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
        ".NaN", ".NAN",
    ];
    if INFINITE.contains(&text) {
        return Err(format!(
            "{text:?} is not a number cutover can hold (numbers are finite)"
        ));
    }
    match text.chars().next() {
        Some('.') => number(text),
        Some('0'..='9' | '+' | '-') => {
            if let Some(t) = timestamp(text) {
                return Ok(Some(Value::String(t)));
            }
            let plain = text.replace('_', "");
            if let Some(v) = number(&plain)? {
                return Ok(Some(v));
            }
            Ok(binary_int(&plain))
        }
        _ => Ok(None),
    }
}

/// A decimal number (`1`, `-1.5`, `.5`, `1e3`); `None` when it is not one.
fn number(text: &str) -> Result<Option<Value>, String> {
    let body = text.trim_start_matches(['+', '-']);
    let decimal = !body.is_empty()
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || "._eE+-".contains(c))
        && body
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == '.');
    if !decimal {
        return Ok(None);
    }
    let whole = !body.contains(['.', 'e', 'E']);
    match super::parse_number(text) {
        Some(v) => Ok(Some(v)),
        None if whole && body.chars().all(|c| c.is_ascii_digit()) => Err(format!(
            "the integer {text} is too large to be read exactly (at most 64 bits)"
        )),
        None => Ok(None),
    }
}

fn binary_int(text: &str) -> Option<Value> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let n = i128::from_str_radix(digits.strip_prefix("0b")?, 2).ok()?;
    Num::Int(if negative { -n } else { n }).value().ok()
}

/// A number tagged `!!int` or `!!float`: decimal, or `0x`, `0o`, `0b`.
fn tagged_number(text: &str) -> Option<Result<Value, String>> {
    let plain = text.replace('_', "");
    if let Ok(Some(v)) = number(&plain) {
        return Some(Ok(v));
    }
    let (negative, digits) = match plain.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, plain.trim_start_matches('+')),
    };
    let (radix, digits) = match digits.get(..2) {
        Some("0x" | "0X") => (16, &digits[2..]),
        Some("0o" | "0O") => (8, &digits[2..]),
        Some("0b" | "0B") => (2, &digits[2..]),
        _ if digits.len() > 1 && digits.starts_with('0') => (8, &digits[1..]),
        _ => return None,
    };
    let n = i128::from_str_radix(digits, radix).ok()?;
    Some(Num::Int(if negative { -n } else { n }).value())
}

/// A YAML timestamp in RFC 3339, as Go's `time.RFC3339` writes it (no
/// fraction of a second): `2006-1-2`, `2006-1-2T15:4:5Z07:00` (`t` too),
/// `2006-1-2 15:4:5` (UTC).
fn timestamp(text: &str) -> Option<String> {
    use std::sync::OnceLock;
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(
            r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:(?:([Tt])|( ))(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.\d{1,9})?(Z|[+-]\d{2}:\d{2})?)?$",
        )
        .expect("a valid pattern")
    });
    let c = re.captures(text)?;
    let n = |i: usize| {
        c.get(i)
            .map_or(0, |m| m.as_str().parse::<u32>().unwrap_or(99))
    };
    let (year, month, day) = (n(1), n(2), n(3));
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month) || day == 0 || day > days[month as usize - 1] {
        return None;
    }
    let date = format!("{year:04}-{month:02}-{day:02}");
    if c.get(6).is_none() {
        return Some(format!("{date}T00:00:00Z"));
    }
    let (hour, minute, second) = (n(6), n(7), n(8));
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    // A zone goes with `T`, and none with a space.
    let zone = match (c.get(4).is_some(), c.get(9).map(|m| m.as_str())) {
        (true, Some(z)) => z.to_owned(),
        (false, None) => "Z".to_owned(),
        _ => return None,
    };
    let zone = if zone == "+00:00" {
        "Z".to_owned()
    } else {
        zone
    };
    Some(format!("{date}T{hour:02}:{minute:02}:{second:02}{zone}"))
}
