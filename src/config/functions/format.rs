//! `format` and `formatlist`, as Terraform's (go-cty's `FormatFunc`): the
//! verbs `%v %#v %t %b %d %o %x %X %e %E %f %g %G %s %q`, the flags
//! `+ - # 0` and space, a width, a precision and an argument index
//! (`%[2]s`), with Terraform's conversions (`"9101"` is a number for `%d`,
//! `false` a string for `%s`) and its error messages.

use hcl::eval::FuncArgs;
use hcl::Value;

use super::decimal::Decimal;
use super::numbers::{num_arg, Num};
use super::{json_text, primitive_string, str_arg};

/// One `%...` sequence.
#[derive(Debug, Default)]
struct Verb {
    /// Its text, as error messages quote it.
    raw: String,
    /// Its byte offset in the format.
    offset: usize,
    /// The argument it formats, from 1.
    arg: usize,
    mode: char,
    sharp: bool,
    zero: bool,
    minus: bool,
    plus: bool,
    space: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

pub(super) fn format(args: FuncArgs) -> Result<Value, String> {
    let rest: Vec<&Value> = args.variadic_args().collect();
    format_values(&str_arg(&args, 0), &rest).map(Value::String)
}

/// `format` for each element of the list arguments (all of one length); an
/// argument that is not a list (a null one too) is used for every element.
pub(super) fn formatlist(args: FuncArgs) -> Result<Value, String> {
    let spec = &*str_arg(&args, 0);
    let rest: Vec<&Value> = args.variadic_args().collect();
    let mut len: Option<(usize, usize)> = None;
    for (i, v) in rest.iter().enumerate() {
        if let Value::Array(items) = v {
            match len {
                Some((n, first)) if n != items.len() => {
                    return Err(format!(
                        "argument {} has length {}, which is inconsistent with argument {} of length {n}",
                        i + 2,
                        items.len(),
                        first + 2
                    ))
                }
                None => len = Some((items.len(), i)),
                Some(_) => {}
            }
        }
    }
    let row = |i: usize| -> Vec<&Value> {
        rest.iter()
            .map(|v| match v {
                Value::Array(items) => &items[i],
                other => *other,
            })
            .collect()
    };
    (0..len.map_or(1, |(n, _)| n))
        .map(|i| {
            format_values(spec, &row(i))
                .map(Value::String)
                .map_err(|e| format!("error on format iteration {i}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

/// `spec` with each verb replaced by the argument it names.
fn format_values(spec: &str, args: &[&Value]) -> Result<String, String> {
    let mut out = String::new();
    let mut next = 1;
    let mut used = 0;
    let mut chars = spec.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.next_if(|(_, c)| *c == '%').is_some() {
            out.push('%');
            continue;
        }
        let mut verb = parse_verb(spec, at, &mut chars, next)?;
        let arg = args.get(verb.arg - 1).ok_or_else(|| {
            format!(
                "not enough arguments for {:?} at {at}: need index {} but have {} total",
                verb.raw,
                verb.arg,
                args.len()
            )
        })?;
        out.push_str(&format_one(&mut verb, arg)?);
        used = used.max(verb.arg);
        next = verb.arg + 1;
    }
    if used < args.len() {
        return Err(match used {
            0 => "too many arguments; no verbs in format string".to_string(),
            n => format!("too many arguments; only {n} used by format string"),
        });
    }
    Ok(out)
}

type Chars<'a> = std::iter::Peekable<std::str::CharIndices<'a>>;

/// Read a verb after its `%` (at byte `at`): flags, `[n]`, width,
/// precision, the verb's letter.
fn parse_verb(spec: &str, at: usize, chars: &mut Chars<'_>, next: usize) -> Result<Verb, String> {
    let mut verb = Verb {
        offset: at,
        arg: next,
        ..Verb::default()
    };
    while let Some((_, c)) = chars.next_if(|(_, c)| "0#-+ ".contains(*c)) {
        match c {
            '0' => verb.zero = true,
            '#' => verb.sharp = true,
            '-' => verb.minus = true,
            '+' => verb.plus = true,
            _ => verb.space = true,
        }
    }
    if chars.next_if(|(_, c)| *c == '[').is_some() {
        verb.arg = number(chars, false)?.ok_or_else(|| unexpected(spec, chars))?;
        chars
            .next_if(|(_, c)| *c == ']')
            .ok_or_else(|| unexpected(spec, chars))?;
    }
    verb.width = number(chars, false)?;
    if chars.next_if(|(_, c)| *c == '.').is_some() {
        verb.precision = Some(number(chars, true)?.unwrap_or(0));
    }
    match chars.next() {
        Some((end, c)) if c.is_ascii_alphabetic() => {
            verb.mode = c;
            verb.raw = spec[at..end + 1].to_string();
            Ok(verb)
        }
        Some((i, c)) => Err(format!("unrecognized format character {c:?} at offset {i}")),
        None => Err(format!("invalid format string starting at offset {at}")),
    }
}

/// A decimal number (none when no digit comes); `leading_zero` allows one
/// to start with 0 (a precision may, a width or an index may not).
fn number(chars: &mut Chars<'_>, leading_zero: bool) -> Result<Option<usize>, String> {
    let first = if leading_zero { '0' } else { '1' };
    let Some((_, c)) = chars.next_if(|(_, c)| (first..='9').contains(c)) else {
        return Ok(None);
    };
    let mut n = c as usize - '0' as usize;
    while let Some((i, c)) = chars.next_if(|(_, c)| c.is_ascii_digit()) {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(c as usize - '0' as usize))
            .filter(|n| *n <= 1_000_000)
            .ok_or_else(|| format!("the number at offset {i} is too large"))?;
    }
    Ok(Some(n))
}

fn unexpected(spec: &str, chars: &mut Chars<'_>) -> String {
    match chars.next() {
        Some((i, c)) => format!("unrecognized format character {c:?} at offset {i}"),
        None => format!("invalid format string starting at offset {}", spec.len()),
    }
}

fn format_one(verb: &mut Verb, arg: &Value) -> Result<String, String> {
    let unsupported = |why: &str| {
        format!(
            "unsupported value for {:?} at {}: {why}",
            verb.raw, verb.offset
        )
    };
    if verb.mode != 'v' && arg.is_null() {
        return Err(unsupported("null value cannot be formatted"));
    }
    let text = match verb.mode {
        'v' => return Ok(pad(verb, as_is(verb, arg)?)),
        't' => {
            return match arg {
                Value::Bool(b) => Ok(b.to_string()),
                Value::String(s) if s == "true" || s == "false" => Ok(s.clone()),
                _ => Err(unsupported("bool required")),
            }
        }
        'b' | 'd' | 'o' | 'x' | 'X' => {
            let n = num_arg(arg, "it").map_err(|_| unsupported("number required"))?;
            return match n {
                Num::Int(i) => Ok(integer(verb, i)),
                // A whole number beyond 64 bits is held as a float.
                Num::Float(f) if f.fract() == 0.0 && f.abs() < 1e38 => Ok(integer(verb, f as i128)),
                Num::Float(_) => Err(unsupported("an integer is required")),
            };
        }
        'e' | 'E' | 'f' | 'g' | 'G' => {
            let n = num_arg(arg, "it").map_err(|_| unsupported("number required"))?;
            return Ok(float(verb, n));
        }
        's' | 'q' => {
            let s = primitive_string(arg).ok_or_else(|| unsupported("string required"))?;
            let s = match verb.precision.filter(|p| *p > 0) {
                Some(p) => s.chars().take(p).collect(),
                None => s,
            };
            if verb.mode == 'q' {
                json_text(&Value::String(s))
            } else {
                s
            }
        }
        other => {
            return Err(format!(
                "unsupported format verb {other:?} in {:?} at offset {}",
                verb.raw, verb.offset
            ))
        }
    };
    Ok(pad(verb, text))
}

/// `%v`: a string as it is, a number as `%g`, anything else (and anything
/// with `%#v`) as JSON.
fn as_is(verb: &Verb, arg: &Value) -> Result<String, String> {
    match arg {
        Value::String(s) if !verb.sharp => Ok(s.clone()),
        Value::Number(n) if !verb.sharp => Ok(Decimal::shortest(num(n)).general(None, 'e')),
        other => Ok(json_text(other)),
    }
}

fn num(n: &hcl::Number) -> Num {
    num_arg(&Value::Number(*n), "").unwrap_or(Num::Int(0))
}

/// Pad to the width with spaces (zeros with `0`), on the left (the right
/// with `-`).
fn pad(verb: &Verb, text: String) -> String {
    let len = text.chars().count();
    let Some(width) = verb.width.filter(|w| *w > len) else {
        return text;
    };
    let fill = if verb.zero { "0" } else { " " }.repeat(width - len);
    if verb.minus {
        text + &fill
    } else {
        fill + &text
    }
}

/// The sign a number shows: `-`, or `+` / a space when the flags ask.
fn sign(verb: &Verb, negative: bool) -> &'static str {
    match (negative, verb.plus, verb.space) {
        (true, _, _) => "-",
        (false, true, _) => "+",
        (false, false, true) => " ",
        _ => "",
    }
}

/// `%b %d %o %x %X`, as Go formats a big integer: a precision is the least
/// number of digits, `#` adds the base's prefix, and the padding goes
/// before the sign, between it and the digits (`0`), or after (`-`).
fn integer(verb: &Verb, i: i128) -> String {
    let n = i.unsigned_abs();
    let (digits, prefix) = match verb.mode {
        'b' => (format!("{n:b}"), "0b"),
        'o' => (format!("{n:o}"), "0"),
        'x' => (format!("{n:x}"), "0x"),
        'X' => (format!("{n:X}"), "0X"),
        _ => (n.to_string(), ""),
    };
    let prefix = if verb.sharp { prefix } else { "" };
    let mut zeros = 0;
    if let Some(p) = verb.precision {
        if n == 0 && p == 0 {
            return String::new();
        }
        zeros = p.saturating_sub(digits.len());
    }
    let sign = sign(verb, i < 0);
    let len = sign.len() + prefix.len() + zeros + digits.len();
    let (mut left, mut right) = (0, 0);
    if let Some(d) = verb.width.and_then(|w| w.checked_sub(len)) {
        if verb.minus {
            right = d;
        } else if verb.zero && verb.precision.is_none() {
            zeros = d;
        } else {
            left = d;
        }
    }
    format!(
        "{}{sign}{prefix}{}{digits}{}",
        " ".repeat(left),
        "0".repeat(zeros),
        " ".repeat(right)
    )
}

/// `%e %E %f %g %G`, as Go formats a big float: six places by default for
/// `%e` and `%f`, the shortest digits for `%g`, the precision of `%g`
/// counting significant digits; `0` pads between the sign and the digits
/// (and wins over `-`).
fn float(verb: &Verb, n: Num) -> String {
    let d = Decimal::exact(n);
    let places = Some(verb.precision.unwrap_or(6));
    let text = match verb.mode {
        'e' => d.scientific(places, 'e'),
        'E' => d.scientific(places, 'E'),
        'f' => d.fixed(places),
        'g' => general(n, verb.precision, 'e'),
        _ => general(n, verb.precision, 'E'),
    };
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest.to_string()),
        None => (false, text),
    };
    let sign = sign(verb, negative);
    let pad = verb
        .width
        .and_then(|w| w.checked_sub(sign.len() + digits.len()))
        .unwrap_or(0);
    if verb.zero {
        format!("{sign}{}{digits}", "0".repeat(pad))
    } else if verb.minus {
        format!("{sign}{digits}{}", " ".repeat(pad))
    } else {
        format!("{}{sign}{digits}", " ".repeat(pad))
    }
}

fn general(n: Num, precision: Option<usize>, e: char) -> String {
    match precision {
        None => Decimal::shortest(n).general(None, e),
        p => Decimal::exact(n).general(p, e),
    }
}
