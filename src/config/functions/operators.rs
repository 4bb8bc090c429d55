//! The arithmetic and comparison operators, which config::rewrite turns
//! into calls of these functions before hcl-rs evaluates an expression.
//!
//! hcl-rs's own operators are wrong for cutover in three ways: a whole-number
//! overflow wraps or panics, a division by zero or a result beyond f64 gives
//! an infinity that is written as `null` (`[for x in [0, 1] : 10 / x]` was
//! `[null, 10]`), and a string holding a number is refused where Terraform
//! converts it (`--var port=9101` then `var.port + 1`). Here whole numbers
//! are exact (i128, a result outside i64/u64 an error), fractions are f64
//! (a result that is not finite an error), and a string that holds a number
//! is that number, as Terraform's.
//!
//! Each call carries the byte ranges of the operation it replaced and of its
//! right operand (its last four arguments), and an error starts with one of
//! them ([`LOCATED`]): the right operand's for a zero divisor or a right
//! operand that is not a number, the operation's otherwise. So it is
//! reported there rather than at the whole attribute.

use std::cmp::Ordering;

use hcl::eval::FuncArgs;
use hcl::Value;

use super::numbers::{num_arg, Num};
use super::type_name;

/// What an operator's error message starts with: `@START..END@`.
pub(crate) const LOCATED: char = '@';

/// The functions, by the operator they stand for.
pub(crate) const OPERATORS: &[(&str, &str)] = &[
    ("__add", "+"),
    ("__sub", "-"),
    ("__mul", "*"),
    ("__div", "/"),
    ("__mod", "%"),
    ("__lt", "<"),
    ("__le", "<="),
    ("__gt", ">"),
    ("__ge", ">="),
    ("__neg", "-"),
];

/// The operator `name` stands for.
pub(crate) fn symbol(name: &str) -> Option<&'static str> {
    OPERATORS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// An operand (`what` names it): a number, or a string that holds one.
fn operand(v: &Value, what: &str) -> Result<Num, String> {
    match v {
        Value::String(_) | Value::Number(_) => num_arg(v, what)
            .map_err(|_| format!("{what} must be a number, got a string that does not hold one")),
        other => Err(format!("{what} must be a number, got {}", type_name(other))),
    }
}

/// Where an error is: the whole operation, or its right operand.
#[derive(Clone, Copy)]
enum At {
    Operation,
    Right,
}

fn operands(args: &FuncArgs, op: &str) -> Result<(Num, Num), (At, String)> {
    let a = operand(&args[0], &format!("the left operand of `{op}`"))
        .map_err(|e| (At::Operation, e))?;
    let b =
        operand(&args[1], &format!("the right operand of `{op}`")).map_err(|e| (At::Right, e))?;
    Ok((a, b))
}

/// `message` prefixed with the byte range `at` names: the operation's is
/// in arguments 2 and 3 (1 and 2 for `-x`), the right operand's after it.
fn located(args: &FuncArgs, at: At, message: String) -> String {
    let first = args.len().saturating_sub(4) + 2 * matches!(at, At::Right) as usize;
    let n = |i: usize| args.get(i).and_then(Value::as_u64).unwrap_or(0);
    let (start, end) = (n(first), n(first + 1));
    format!("{LOCATED}{start}..{end}{LOCATED}{message}")
}

fn binary(
    args: FuncArgs,
    op: &str,
    f: fn(Num, Num) -> Result<Num, (At, String)>,
) -> Result<Value, String> {
    let run = || {
        let (a, b) = operands(&args, op)?;
        f(a, b)?
            .value()
            .map_err(|_| (At::Operation, out_of_range(op)))
    };
    run().map_err(|(at, e)| located(&args, at, e))
}

fn out_of_range(op: &str) -> String {
    format!(
        "the result of `{op}` is out of range (whole numbers are exact from -2^63 to 2^64-1, fractions up to about 1.8e308)"
    )
}

fn float(op: &str, x: f64) -> Result<Num, (At, String)> {
    if x.is_finite() {
        Ok(Num::Float(x))
    } else {
        Err((At::Operation, out_of_range(op)))
    }
}

fn int(op: &str, x: Option<i128>) -> Result<Num, (At, String)> {
    x.map(Num::Int)
        .ok_or_else(|| (At::Operation, out_of_range(op)))
}

pub(super) fn add(args: FuncArgs) -> Result<Value, String> {
    binary(args, "+", |a, b| match (a, b) {
        (Num::Int(a), Num::Int(b)) => int("+", a.checked_add(b)),
        (a, b) => float("+", a.f64() + b.f64()),
    })
}

pub(super) fn sub(args: FuncArgs) -> Result<Value, String> {
    binary(args, "-", |a, b| match (a, b) {
        (Num::Int(a), Num::Int(b)) => int("-", a.checked_sub(b)),
        (a, b) => float("-", a.f64() - b.f64()),
    })
}

pub(super) fn mul(args: FuncArgs) -> Result<Value, String> {
    binary(args, "*", |a, b| match (a, b) {
        (Num::Int(a), Num::Int(b)) => int("*", a.checked_mul(b)),
        (a, b) => float("*", a.f64() * b.f64()),
    })
}

fn zero(n: Num) -> bool {
    n.f64() == 0.0
}

/// A whole quotient stays whole; any other is a fraction.
pub(super) fn div(args: FuncArgs) -> Result<Value, String> {
    binary(args, "/", |a, b| {
        if zero(b) {
            return Err((At::Right, "division by zero".into()));
        }
        match (a, b) {
            (Num::Int(a), Num::Int(b)) if a % b == 0 => int("/", a.checked_div(b)),
            (a, b) => float("/", a.f64() / b.f64()),
        }
    })
}

/// The remainder has the sign of the dividend (`-5 % 3` is -2), as
/// Terraform's.
pub(super) fn rem(args: FuncArgs) -> Result<Value, String> {
    binary(args, "%", |a, b| {
        if zero(b) {
            return Err((At::Right, "division by zero".into()));
        }
        match (a, b) {
            (Num::Int(a), Num::Int(b)) => int("%", a.checked_rem(b)),
            (a, b) => float("%", a.f64() % b.f64()),
        }
    })
}

pub(super) fn neg(args: FuncArgs) -> Result<Value, String> {
    let run = || {
        let n = match operand(&args[0], "the operand of `-`")? {
            Num::Int(i) => Num::Int(-i),
            Num::Float(f) => Num::Float(-f),
        };
        n.value().map_err(|_| out_of_range("-"))
    };
    run().map_err(|e| located(&args, At::Operation, e))
}

fn compare(args: FuncArgs, op: &str, want: fn(Ordering) -> bool) -> Result<Value, String> {
    let run = || {
        let (a, b) = operands(&args, op)?;
        let order = match (a, b) {
            (Num::Int(a), Num::Int(b)) => a.cmp(&b),
            (a, b) => a.f64().partial_cmp(&b.f64()).unwrap_or(Ordering::Equal),
        };
        Ok(Value::Bool(want(order)))
    };
    run().map_err(|(at, e)| located(&args, at, e))
}

pub(super) fn lt(args: FuncArgs) -> Result<Value, String> {
    compare(args, "<", Ordering::is_lt)
}

pub(super) fn le(args: FuncArgs) -> Result<Value, String> {
    compare(args, "<=", Ordering::is_le)
}

pub(super) fn gt(args: FuncArgs) -> Result<Value, String> {
    compare(args, ">", Ordering::is_gt)
}

pub(super) fn ge(args: FuncArgs) -> Result<Value, String> {
    compare(args, ">=", Ordering::is_ge)
}

/// An operator's error message without its range, and the range.
pub(crate) fn split_located(message: &str) -> (Option<std::ops::Range<usize>>, &str) {
    let parse = || {
        let rest = message.strip_prefix(LOCATED)?;
        let (range, text) = rest.split_once(LOCATED)?;
        let (start, end) = range.split_once("..")?;
        Some((start.parse().ok()?..end.parse().ok()?, text))
    };
    match parse() {
        Some((range, text)) => (Some(range), text),
        None => (None, message),
    }
}
