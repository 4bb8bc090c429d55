//! List and map functions.

use std::collections::BTreeMap;

use hcl::eval::FuncArgs;
use hcl::{Map, Value};

use super::numbers::{index_arg, num_arg, Num};
use super::{primitive_string, type_name};

/// A list argument already checked by the parameter types.
fn list(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

fn array(items: impl IntoIterator<Item = Value>) -> Result<Value, String> {
    Ok(Value::Array(items.into_iter().collect()))
}

/// A map with its keys in order, as Terraform's.
fn sorted_map(entries: impl IntoIterator<Item = (String, Value)>) -> Value {
    let sorted: BTreeMap<String, Value> = entries.into_iter().collect();
    Value::Object(sorted.into_iter().collect::<Map<_, _>>())
}

/// The string an element converts to, as Terraform's list(string) does.
fn element_string(v: &Value, i: usize) -> Result<String, String> {
    primitive_string(v).ok_or_else(|| format!("element {i} must be a string, got {}", type_name(v)))
}

pub(super) fn flatten(args: FuncArgs) -> Result<Value, String> {
    fn into(items: &[Value], out: &mut Vec<Value>) {
        for v in items {
            match v {
                Value::Array(inner) => into(inner, out),
                other => out.push(other.clone()),
            }
        }
    }
    let mut out = Vec::new();
    into(list(&args[0]), &mut out);
    array(out)
}

pub(super) fn sort(args: FuncArgs) -> Result<Value, String> {
    let mut items = list(&args[0])
        .iter()
        .enumerate()
        .map(|(i, v)| element_string(v, i))
        .collect::<Result<Vec<_>, _>>()?;
    items.sort();
    array(items.into_iter().map(Value::String))
}

fn dedup(items: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for v in items {
        if !out.contains(v) {
            out.push(v.clone());
        }
    }
    out
}

pub(super) fn distinct(args: FuncArgs) -> Result<Value, String> {
    array(dedup(list(&args[0])))
}

pub(super) fn reverse(args: FuncArgs) -> Result<Value, String> {
    array(list(&args[0]).iter().rev().cloned())
}

pub(super) fn zipmap(args: FuncArgs) -> Result<Value, String> {
    let (keys, values) = (list(&args[0]), list(&args[1]));
    if keys.len() != values.len() {
        return Err(format!(
            "{} keys but {} values: the lists must be the same length",
            keys.len(),
            values.len()
        ));
    }
    let keys = keys
        .iter()
        .enumerate()
        .map(|(i, k)| element_string(k, i).map_err(|e| format!("key {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    // A key given twice: the later value wins, as Terraform.
    let mut map = BTreeMap::new();
    map.extend(keys.into_iter().zip(values.iter().cloned()));
    Ok(sorted_map(map))
}

pub(super) fn slice(args: FuncArgs) -> Result<Value, String> {
    let items = list(&args[0]);
    let start = index_arg(&args[1], "the start index")?;
    let end = index_arg(&args[2], "the end index")?;
    if end > items.len() {
        return Err(format!(
            "the end index {end} is beyond the list's length {}",
            items.len()
        ));
    }
    if start > end {
        return Err(format!(
            "the start index {start} is greater than the end index {end}"
        ));
    }
    array(items[start..end].iter().cloned())
}

pub(super) fn element(args: FuncArgs) -> Result<Value, String> {
    let items = list(&args[0]);
    let i = index_arg(&args[1], "the index")?;
    if items.is_empty() {
        return Err("cannot take an element of an empty list".into());
    }
    Ok(items[i % items.len()].clone())
}

pub(super) fn index(args: FuncArgs) -> Result<Value, String> {
    list(&args[0])
        .iter()
        .position(|v| *v == args[1])
        .map(|i| Value::from(i as u64))
        .ok_or_else(|| "the value is not in the list".to_string())
}

/// The list's strings without the empty ones and nulls.
pub(super) fn compact(args: FuncArgs) -> Result<Value, String> {
    let mut out = Vec::new();
    for (i, v) in list(&args[0]).iter().enumerate() {
        if v.is_null() {
            continue;
        }
        let s = element_string(v, i)?;
        if !s.is_empty() {
            out.push(Value::String(s));
        }
    }
    array(out)
}

pub(super) fn chunklist(args: FuncArgs) -> Result<Value, String> {
    let items = list(&args[0]);
    let size = index_arg(&args[1], "the chunk size")?;
    if items.is_empty() {
        return array([]);
    }
    if size == 0 {
        return array([Value::Array(items.to_vec())]);
    }
    array(items.chunks(size).map(|c| Value::Array(c.to_vec())))
}

pub(super) fn one(args: FuncArgs) -> Result<Value, String> {
    match list(&args[0]) {
        [] => Ok(Value::Null),
        [v] => Ok(v.clone()),
        more => Err(format!(
            "the list must have zero or one elements, it has {}",
            more.len()
        )),
    }
}

/// A bool element; the strings "true" and "false" convert, as Terraform.
fn bool_element(v: &Value, i: usize) -> Result<Option<bool>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        Value::String(s) if s == "true" => Ok(Some(true)),
        Value::String(s) if s == "false" => Ok(Some(false)),
        other => Err(format!(
            "element {i} must be a bool, got {}",
            type_name(other)
        )),
    }
}

/// A null element counts as false, as Terraform's.
pub(super) fn alltrue(args: FuncArgs) -> Result<Value, String> {
    let mut all = true;
    for (i, v) in list(&args[0]).iter().enumerate() {
        all &= bool_element(v, i)?.unwrap_or(false);
    }
    Ok(Value::Bool(all))
}

pub(super) fn anytrue(args: FuncArgs) -> Result<Value, String> {
    let mut any = false;
    for (i, v) in list(&args[0]).iter().enumerate() {
        any |= bool_element(v, i)?.unwrap_or(false);
    }
    Ok(Value::Bool(any))
}

/// Terraform's range: 1 to 3 numbers, at most 1024 elements.
pub(super) fn range(args: FuncArgs) -> Result<Value, String> {
    let nums = args
        .iter()
        .enumerate()
        .map(|(i, v)| num_arg(v, &format!("argument {}", i + 1)))
        .collect::<Result<Vec<Num>, _>>()?;
    let (start, limit, step) = match nums.as_slice() {
        [limit] => (Num::Int(0), *limit, None),
        [start, limit] => (*start, *limit, None),
        [start, limit, step] => (*start, *limit, Some(*step)),
        _ => {
            return Err(
                "takes one to three numbers (limit; start, limit; or start, limit, step)".into(),
            )
        }
    };
    range_of(start, limit, step)
}

fn range_of(start: Num, limit: Num, step: Option<Num>) -> Result<Value, String> {
    let f = |n: Num| match n {
        Num::Int(i) => i as f64,
        Num::Float(x) => x,
    };
    let step = step.unwrap_or(Num::Int(if f(limit) < f(start) { -1 } else { 1 }));
    let (s, l, st) = (f(start), f(limit), f(step));
    if st == 0.0 {
        return Err("the step must not be zero".into());
    }
    if (s < l && st < 0.0) || (s > l && st > 0.0) {
        return Err(format!(
            "the step must be {} when the start is {} than the limit",
            if st < 0.0 { "positive" } else { "negative" },
            if s < l { "less" } else { "greater" }
        ));
    }
    let mut out = Vec::new();
    let mut n = start;
    while if st > 0.0 { f(n) < l } else { f(n) > l } {
        if out.len() == 1024 {
            return Err("more than 1024 elements".into());
        }
        out.push(n.value()?);
        n = match (n, step) {
            (Num::Int(a), Num::Int(b)) => Num::Int(a + b),
            (a, b) => Num::Float(f(a) + f(b)),
        };
    }
    array(out)
}

/// The elements as one type: strings, numbers and bools mixed are all
/// converted to strings, as Terraform unifies them.
fn unify(items: Vec<Value>) -> Result<Vec<Value>, String> {
    let kinds: Vec<&str> = items
        .iter()
        .filter(|v| !v.is_null())
        .map(type_name)
        .collect();
    let mixed = kinds.windows(2).any(|w| w[0] != w[1]);
    if !mixed {
        return Ok(items);
    }
    if let Some(k) = kinds.iter().find(|k| matches!(**k, "list" | "map")) {
        return Err(format!(
            "all elements must have one type, got a {k} among other types"
        ));
    }
    Ok(items
        .into_iter()
        .map(|v| primitive_string(&v).map(Value::String).unwrap_or(v))
        .collect())
}

pub(super) fn tolist(args: FuncArgs) -> Result<Value, String> {
    match &args[0] {
        Value::Null => Ok(Value::Null),
        Value::Array(items) => array(unify(items.clone())?),
        other => Err(format!("cannot convert a {} to a list", type_name(other))),
    }
}

/// Distinct and sorted (strings lexically, numbers by value), as Terraform
/// shows a set.
pub(super) fn toset(args: FuncArgs) -> Result<Value, String> {
    let items = match &args[0] {
        Value::Null => return Ok(Value::Null),
        Value::Array(items) => items,
        other => return Err(format!("cannot convert a {} to a set", type_name(other))),
    };
    if items.iter().any(Value::is_null) {
        return Err("a set cannot hold null".into());
    }
    let mut set = dedup(&unify(items.clone())?);
    set.sort_by(|a, b| match (a, b) {
        (Value::String(a), Value::String(b)) => a.cmp(b),
        (Value::Number(a), Value::Number(b)) => a
            .as_f64()
            .partial_cmp(&b.as_f64())
            .unwrap_or(std::cmp::Ordering::Equal),
        (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
        _ => std::cmp::Ordering::Equal,
    });
    array(set)
}

pub(super) fn tomap(args: FuncArgs) -> Result<Value, String> {
    match &args[0] {
        Value::Null => Ok(Value::Null),
        Value::Object(map) => {
            let (keys, values): (Vec<String>, Vec<Value>) =
                map.iter().map(|(k, v)| (k.clone(), v.clone())).unzip();
            Ok(sorted_map(keys.into_iter().zip(unify(values)?)))
        }
        other => Err(format!("cannot convert a {} to a map", type_name(other))),
    }
}
