//! Number functions. Whole numbers are computed exactly (as i128) and a
//! result outside what a number holds (i64 or u64) is an error; fractions are
//! f64, and a result that is not finite is an error.

use hcl::eval::FuncArgs;
use hcl::{Number, Value};

use super::{parse_number, str_arg, type_name};

/// A number to compute with.
#[derive(Clone, Copy)]
pub(super) enum Num {
    Int(i128),
    Float(f64),
}

impl Num {
    fn of(n: &Number) -> Num {
        match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Num::Int(i.into()),
            (_, Some(u)) => Num::Int(u.into()),
            _ => Num::Float(n.as_f64().unwrap_or_default()),
        }
    }

    pub(super) fn f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    fn less(self, other: Num) -> bool {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => a < b,
            (a, b) => a.f64() < b.f64(),
        }
    }

    fn add(self, other: Num) -> Result<Num, String> {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => a
                .checked_add(b)
                .map(Num::Int)
                .ok_or_else(|| "the result is out of range".to_string()),
            (a, b) => Ok(Num::Float(a.f64() + b.f64())),
        }
    }

    pub(super) fn value(self) -> Result<Value, String> {
        let n = match self {
            Num::Int(i) => i64::try_from(i)
                .map(Number::from)
                .or_else(|_| u64::try_from(i).map(Number::from))
                .map_err(|_| format!("the result {i} is out of range"))?,
            Num::Float(f) => {
                Number::from_f64(f).ok_or_else(|| "the result is out of range".to_string())?
            }
        };
        Ok(Value::Number(n))
    }
}

/// A number argument; a string holding a number is converted, as Terraform
/// does.
pub(super) fn num_arg(v: &Value, what: &str) -> Result<Num, String> {
    match v {
        Value::Number(n) => Ok(Num::of(n)),
        Value::String(s) => match parse_number(s) {
            Some(Value::Number(n)) => Ok(Num::of(&n)),
            _ => Err(format!("{what} must be a number, got \"{s}\"")),
        },
        other => Err(format!("{what} must be a number, got {}", type_name(other))),
    }
}

/// A whole-number argument that fits an i64.
pub(super) fn int_arg(v: &Value, what: &str) -> Result<i64, String> {
    match num_arg(v, what)? {
        Num::Int(i) => i64::try_from(i).map_err(|_| format!("{what} {i} is out of range")),
        Num::Float(f) if f.fract() == 0.0 => Err(format!("{what} {f} is out of range")),
        Num::Float(f) => Err(format!("{what} must be a whole number, got {f}")),
    }
}

/// A whole-number argument that is not negative.
pub(super) fn index_arg(v: &Value, what: &str) -> Result<usize, String> {
    let i = int_arg(v, what)?;
    usize::try_from(i).map_err(|_| format!("{what} must not be negative, got {i}"))
}

pub(super) fn abs(args: FuncArgs) -> Result<Value, String> {
    match num_arg(&args[0], "the argument")? {
        Num::Int(i) => Num::Int(i.abs()),
        Num::Float(f) => Num::Float(f.abs()),
    }
    .value()
}

pub(super) fn ceil(args: FuncArgs) -> Result<Value, String> {
    match num_arg(&args[0], "the argument")? {
        Num::Float(f) => Num::Float(f.ceil()),
        int => int,
    }
    .value()
}

pub(super) fn floor(args: FuncArgs) -> Result<Value, String> {
    match num_arg(&args[0], "the argument")? {
        Num::Float(f) => Num::Float(f.floor()),
        int => int,
    }
    .value()
}

fn extreme(args: FuncArgs, want_less: bool) -> Result<Value, String> {
    let mut best: Option<Num> = None;
    for (i, v) in args.iter().enumerate() {
        let n = num_arg(v, &format!("argument {}", i + 1))?;
        if best.is_none_or(|b| if want_less { n.less(b) } else { b.less(n) }) {
            best = Some(n);
        }
    }
    best.ok_or("needs at least one number")?.value()
}

pub(super) fn min(args: FuncArgs) -> Result<Value, String> {
    extreme(args, true)
}

pub(super) fn max(args: FuncArgs) -> Result<Value, String> {
    extreme(args, false)
}

pub(super) fn sum(args: FuncArgs) -> Result<Value, String> {
    let list = args[0].as_array().map(Vec::as_slice).unwrap_or_default();
    let (first, rest) = list.split_first().ok_or("cannot sum an empty list")?;
    let mut total = num_arg(first, "element 0")?;
    for (i, v) in rest.iter().enumerate() {
        total = total.add(num_arg(v, &format!("element {}", i + 1))?)?;
    }
    total.value()
}

/// An integer in a base from 2 to 62: digits, then `a`–`z`, then `A`–`Z`
/// (letters are either case up to base 36), an optional sign first.
pub(super) fn parseint(args: FuncArgs) -> Result<Value, String> {
    let s = &*str_arg(&args, 0);
    let base = int_arg(&args[1], "the base")?;
    if !(2..=62).contains(&base) {
        return Err(format!("the base must be from 2 to 62, got {base}"));
    }
    let bad = || format!("cannot parse \"{s}\" as a base {base} integer");
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return Err(bad());
    }
    let mut n: i128 = 0;
    for c in digits.chars() {
        let d = match c {
            '0'..='9' => c as i128 - '0' as i128,
            'a'..='z' => c as i128 - 'a' as i128 + 10,
            'A'..='Z' if base <= 36 => c as i128 - 'A' as i128 + 10,
            'A'..='Z' => c as i128 - 'A' as i128 + 36,
            _ => return Err(bad()),
        };
        if d >= i128::from(base) {
            return Err(bad());
        }
        n = n
            .checked_mul(base.into())
            .and_then(|n| n.checked_add(d))
            .ok_or_else(|| format!("\"{s}\" is out of range"))?;
    }
    Num::Int(if negative { -n } else { n })
        .value()
        .map_err(|_| format!("\"{s}\" is out of range"))
}
