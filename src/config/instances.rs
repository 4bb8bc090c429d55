//! `for_each` and `count` on `environment` and `router` blocks, as
//! Terraform's meta-arguments: one block makes one instance per key of a
//! map or set of strings (`each.key`, `each.value`), or per index below a
//! number (`count.index`). Each instance is built as a block of its own,
//! named `green["api"]` or `canary[0]` (cutover_provider::name); the
//! block's value for references is a map of its instances by key (with
//! `for_each`) or a list of them (with `count`), so `environment.green["api"]`
//! and `environment.canary[0]` are instances, as in Terraform.

use std::collections::BTreeMap;

use cutover_provider::name::{instance_name, key_problem, InstanceKey};
use hcl::{Map, Value};

use super::blocks::type_name;
use super::eval::Evaluator;
use super::model::{Address, Marks};
use super::refs::RefKey;
use super::schema::{self, Decl};

/// The most instances one `count` may make: a mistyped number must be an
/// error, not an evaluation that fills the memory.
const MAX_COUNT: u64 = 1_000_000;

/// The instance being evaluated: what `each` or `count` is in its
/// expressions.
#[derive(Debug, Clone)]
pub(crate) struct Instance {
    /// Its key.
    pub key: InstanceKey,
    /// `each.value` (null with `count`).
    pub value: Value,
}

impl Instance {
    /// The fields of `each` or `count` for this instance, if it has that
    /// root.
    pub(crate) fn meta(&self, root: &str) -> Option<Map<String, Value>> {
        match (root, &self.key) {
            ("each", InstanceKey::Str(k)) => Some(Map::from_iter([
                ("key".to_owned(), Value::String(k.clone())),
                ("value".to_owned(), self.value.clone()),
            ])),
            ("count", InstanceKey::Index(i)) => Some(Map::from_iter([(
                "index".to_owned(),
                Value::Number((*i).into()),
            )])),
            _ => None,
        }
    }
}

/// The key a literal index names: `["api"]`, `[0]`, or the legacy `.0`
/// (for references, `moved` addresses and a router's static `live`).
pub(crate) fn literal_key(op: &hcl_edit::expr::TraversalOperator) -> Option<InstanceKey> {
    use hcl_edit::expr::{Expression, TraversalOperator};
    match op {
        TraversalOperator::Index(Expression::String(s)) => {
            Some(InstanceKey::Str(s.value().clone()))
        }
        TraversalOperator::Index(Expression::Number(n)) => {
            n.value().as_u64().map(InstanceKey::Index)
        }
        TraversalOperator::LegacyIndex(i) => Some(InstanceKey::Index(*i.value())),
        _ => None,
    }
}

/// What a block makes.
pub(crate) enum Expansion {
    /// One block, of its own name (no `for_each` or `count`).
    Single,
    /// One instance per key, in key order.
    Instances(Vec<Instance>),
    /// `for_each` or `count` failed (reported): nothing is made.
    Failed,
}

/// The keys of the instances of every block with `for_each` or `count`.
pub(crate) type Keys = BTreeMap<Address, Vec<InstanceKey>>;

/// What `decl` makes, from its `for_each` or `count`.
pub(crate) fn expansion(ev: &mut Evaluator<'_>, decl: &Decl<'_>) -> Expansion {
    let body = &decl.block.body;
    let (for_each, count) = (body.get_attribute("for_each"), body.get_attribute("count"));
    let (attr, is_count) = match (for_each, count) {
        (None, None) => return Expansion::Single,
        (Some(_), Some(second)) => {
            let span = schema::key_span(ev.map, decl.file, second);
            ev.error_help(
                &span,
                "a block takes `for_each` or `count`, not both",
                "keep `for_each` to make an instance per key, or `count` for a number of them",
            );
            return Expansion::Failed;
        }
        (Some(a), None) => (a, false),
        (None, Some(a)) => (a, true),
    };
    let span = ev.span_of(decl.file, &attr.value);
    let Some(e) = ev.eval(decl.file, &attr.value) else {
        return Expansion::Failed;
    };
    let what = if is_count { "count" } else { "for_each" };
    if !e.marks.is_clear() {
        ev.error_help(
            &span,
            format!("`{what}` cannot use a sensitive value"),
            "the keys name instances in every plan and in the state: make them from values that are not secret (nonsensitive() if they are not)",
        );
        return Expansion::Failed;
    }
    let made = if is_count {
        count_instances(&e.value)
    } else {
        for_each_instances(e.value)
    };
    match made {
        Ok(list) => Expansion::Instances(list),
        Err((message, help)) => {
            ev.error_help(&span, message, help);
            Expansion::Failed
        }
    }
}

type Refusal = (String, String);

fn count_instances(value: &Value) -> Result<Vec<Instance>, Refusal> {
    let n = match value {
        Value::Number(n) => n,
        other => {
            return Err((
                format!("`count` must be a whole number, not a {}", type_name(other)),
                "write `count = 2`, or `for_each` for instances with keys".into(),
            ))
        }
    };
    let whole = n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0)
            .map(|f| f.min(u64::MAX as f64) as u64)
    });
    let n = match whole {
        Some(n) if n <= MAX_COUNT => n,
        Some(_) => {
            return Err((
                format!("`count` is {n}: at most {MAX_COUNT} instances"),
                "a block of this many instances is most likely a mistake".into(),
            ))
        }
        None => {
            return Err((
                format!("`count` must be a whole number of 0 or more, not {n}"),
                "write `count = 2`".into(),
            ))
        }
    };
    Ok((0..n)
        .map(|i| Instance {
            key: InstanceKey::Index(i),
            value: Value::Null,
        })
        .collect())
}

fn for_each_instances(value: Value) -> Result<Vec<Instance>, Refusal> {
    let help = || {
        "`for_each` takes a map (each.key, each.value) or a set of strings (toset([...]))"
            .to_owned()
    };
    let pairs: Vec<(String, Value)> = match value {
        Value::Object(map) => map.into_iter().collect(),
        Value::Array(items) => {
            let mut keys = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::String(s) => keys.push(s),
                    other => {
                        return Err((
                            format!(
                                "`for_each` must be a map or a set of strings: it holds a {}",
                                type_name(&other)
                            ),
                            help(),
                        ))
                    }
                }
            }
            let mut sorted = keys.clone();
            sorted.sort();
            if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
                return Err((
                    format!(
                        "`for_each` holds \"{}\" twice: a key names one instance",
                        w[0]
                    ),
                    "make it a set: toset([...]) keeps each string once".into(),
                ));
            }
            sorted
                .into_iter()
                .map(|k| (k.clone(), Value::String(k)))
                .collect()
        }
        Value::Null => return Err(("`for_each` must not be null".into(), help())),
        other => {
            return Err((
                format!(
                    "`for_each` must be a map or a set of strings, not a {}",
                    type_name(&other)
                ),
                help(),
            ))
        }
    };
    let mut out = Vec::with_capacity(pairs.len());
    for (key, value) in pairs {
        if let Some(problem) = key_problem(&key) {
            return Err((
                format!("`for_each` key {key:?} cannot name an instance: {problem}"),
                "keys appear in instance names such as environment.green[\"api\"], in the state and on the command line".into(),
            ));
        }
        out.push(Instance {
            key: InstanceKey::Str(key),
            value,
        });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// Build `decl` as its `for_each` or `count` says: `build` once with the
/// block itself, or once per instance (with `decl` named as the instance,
/// and `each` or `count` set), recording the block's value as the map or
/// list of its instances' values, and its instances' keys in
/// `ev.expanded`.
pub(crate) fn build_each(
    ev: &mut Evaluator<'_>,
    decl: &Decl<'_>,
    addr_of: fn(String) -> Address,
    mut build: impl FnMut(&mut Evaluator<'_>, &Decl<'_>),
) {
    let list = match expansion(ev, decl) {
        Expansion::Single => return build(ev, decl),
        Expansion::Failed => {
            ev.expanded.insert(addr_of(decl.name.clone()), Vec::new());
            return;
        }
        Expansion::Instances(list) => list,
    };
    let is_count = list
        .first()
        .is_some_and(|i| matches!(i.key, InstanceKey::Index(_)));
    let mut values: Vec<(InstanceKey, Value)> = Vec::with_capacity(list.len());
    let mut marks: Vec<(InstanceKey, Marks)> = Vec::new();
    let mut complete = true;
    let mut keys = Vec::with_capacity(list.len());
    for instance in list {
        let name = instance_name(&decl.name, &instance.key);
        let addr = addr_of(name.clone());
        ev.declared.insert(addr.clone());
        let one = Decl {
            name,
            ..decl.clone()
        };
        let key = instance.key.clone();
        ev.instance = Some(instance);
        build(ev, &one);
        ev.instance = None;
        match ev.values.remove(&addr) {
            Some(v) => values.push((key.clone(), v)),
            None => complete = false,
        }
        if let Some(m) = ev.marks.remove(&addr) {
            marks.push((key.clone(), m));
        }
        keys.push(key);
    }
    let block = addr_of(decl.name.clone());
    ev.expanded.insert(block.clone(), keys.clone());
    if complete {
        let value = if is_count {
            Value::Array(values.into_iter().map(|(_, v)| v).collect())
        } else {
            Value::Object(
                values
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            )
        };
        ev.values.insert(block.clone(), value);
        if !marks.is_empty() {
            let m = if is_count {
                let mut items = vec![Marks::Clear; keys.len()];
                for (k, m) in marks {
                    if let InstanceKey::Index(i) = k {
                        items[i as usize] = m;
                    }
                }
                Marks::items(items)
            } else {
                Marks::fields(marks.into_iter().map(|(k, m)| (k.to_string(), m)))
            };
            ev.marks_insert(block, m);
        }
    }
}

/// The references between instances that order their changes, from the
/// references between blocks: an instance refers to the instance of its own
/// key (`environment.blue[each.key]`), to one named by a literal, or, when
/// the expression does not say, to every instance of the block. An instance
/// is found by its key, not by a scan of the block's instances: N routers
/// of their own key each over N environments would be O(N²).
pub(crate) fn instance_edges(
    sites: &[(Address, Address, RefKey)],
    keys: &Keys,
) -> Vec<(Address, Address)> {
    let instances = |addr: &Address| -> Vec<(Option<InstanceKey>, Address)> {
        match keys.get(addr) {
            None => vec![(None, addr.clone())],
            Some(list) => list
                .iter()
                .map(|k| {
                    (
                        Some(k.clone()),
                        addr.with_name(instance_name(name_of(addr), k)),
                    )
                })
                .collect(),
        }
    };
    let mut out = Vec::new();
    for (from, to, selector) in sites {
        let targets = instances(to);
        let by_key: BTreeMap<&InstanceKey, &Address> = targets
            .iter()
            .filter_map(|(k, a)| Some((k.as_ref()?, a)))
            .collect();
        for (own, from_addr) in instances(from) {
            // `Some`: the one instance reached (or none, for a key the
            // block does not have); `None`: every target (a block without
            // instances is its own one target).
            let one = match (selector, &own) {
                _ if !keys.contains_key(to) => None,
                (RefKey::Own, Some(k)) | (RefKey::Literal(k), _) => Some(by_key.get(k).copied()),
                (RefKey::Own, None) | (RefKey::Any, _) => None,
            };
            let reached: Vec<&Address> = match one {
                Some(found) => found.into_iter().collect(),
                None => targets.iter().map(|(_, a)| a).collect(),
            };
            for to_addr in reached {
                if from_addr != *to_addr {
                    out.push((from_addr.clone(), to_addr.clone()));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn name_of(addr: &Address) -> &str {
    super::eval::split_address(addr).1
}

#[cfg(test)]
#[path = "instances_tests.rs"]
mod tests;
