//! The names of instances: a block with `for_each` or `count` makes one
//! environment or router per key, named as Terraform names a resource
//! instance: `green["api"]` (a `for_each` key, always a string) or
//! `canary[0]` (a `count` index). A block without either keeps its plain
//! name, `green`.
//!
//! That text is the name everywhere cutover shows or records one (plans,
//! events, the state, the command line). A load balancer's own names (an
//! HAProxy backend or map key, a Caddy route id, an nginx upstream, a log
//! file) cannot hold quotes and brackets, so a provider derives them from
//! the [`flat`] form, `green.api` / `canary.0`: a dot cannot appear in a
//! block's label, so no plain name is the flat name of an instance.

use std::borrow::Cow;
use std::fmt;

/// The key of one instance.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InstanceKey {
    /// A `for_each` key: `["api"]`.
    Str(String),
    /// A `count` index: `[0]`.
    Index(u64),
}

impl fmt::Display for InstanceKey {
    /// The key alone, as `each.key` or `count.index` gives it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstanceKey::Str(s) => f.write_str(s),
            InstanceKey::Index(i) => write!(f, "{i}"),
        }
    }
}

/// Why a `for_each` key cannot name an instance.
pub fn key_problem(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        return Some("a key must not be empty");
    }
    if key
        .chars()
        .any(|c| c == '"' || c == '\\' || c.is_whitespace() || c.is_control())
    {
        return Some("a key must not hold quotes, backslashes, spaces or control characters");
    }
    None
}

/// The name of instance `key` of block `block`: `green["api"]`, `canary[0]`.
/// `key` must have no [`key_problem`] (the configuration refuses those).
pub fn instance_name(block: &str, key: &InstanceKey) -> String {
    match key {
        InstanceKey::Str(s) => format!("{block}[\"{s}\"]"),
        InstanceKey::Index(i) => format!("{block}[{i}]"),
    }
}

/// `green["api"]` -> (`green`, key `api`); `green` -> (`green`, none).
/// `None` when `name` is neither a plain name nor an instance's.
pub fn split(name: &str) -> Option<(&str, Option<InstanceKey>)> {
    let Some(open) = name.find('[') else {
        return plain(name).then_some((name, None));
    };
    let (block, rest) = name.split_at(open);
    let inner = rest.strip_prefix('[')?.strip_suffix(']')?;
    if !plain(block) || block.is_empty() {
        return None;
    }
    if let Some(quoted) = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        return key_problem(quoted)
            .is_none()
            .then(|| (block, Some(InstanceKey::Str(quoted.to_owned()))));
    }
    let digits = !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_digit());
    let canonical = inner == "0" || !inner.starts_with('0');
    if digits && canonical {
        return inner
            .parse()
            .ok()
            .map(|i| (block, Some(InstanceKey::Index(i))));
    }
    None
}

/// A block's label as a name: no brackets, quotes, dots or spaces.
fn plain(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| matches!(c, '[' | ']' | '"' | '.' | '\\') || c.is_whitespace())
}

/// The block an instance belongs to (`green` for `green["api"]`), or the
/// name itself when it is no instance's.
pub fn block_of(name: &str) -> &str {
    match split(name) {
        Some((block, Some(_))) => block,
        _ => name,
    }
}

/// The key of an instance's name, if it is one.
pub fn key_of(name: &str) -> Option<InstanceKey> {
    split(name).and_then(|(_, key)| key)
}

/// The name as a load balancer's own names can hold it: `green.api` for
/// `green["api"]`, `canary.0` for `canary[0]`, `green` for `green`.
pub fn flat(name: &str) -> Cow<'_, str> {
    match split(name) {
        Some((block, Some(key))) => Cow::Owned(format!("{block}.{key}")),
        _ => Cow::Borrowed(name),
    }
}

/// The entries of `map` (keyed by name) that are instances of block
/// `block`, in name order: a range of the sorted keys, not a scan.
pub fn instances_in<'m, V>(
    map: &'m std::collections::BTreeMap<String, V>,
    block: &str,
) -> impl Iterator<Item = (&'m String, &'m V)> + 'm {
    let prefix = format!("{block}[");
    map.range(prefix.clone()..)
        .take_while(move |(name, _)| name.starts_with(&prefix))
}

/// The names whose [`flat`] form is `flat`: itself, and the instances it
/// can be the flat name of (`green.api` -> `green["api"]`; `canary.0` ->
/// `canary[0]` and `canary["0"]`).
pub fn unflat(flat: &str) -> Vec<String> {
    let mut out = vec![flat.to_owned()];
    if let Some((block, key)) = flat.split_once('.') {
        for key in [
            Some(InstanceKey::Str(key.to_owned())),
            key.parse().ok().map(InstanceKey::Index),
        ]
        .into_iter()
        .flatten()
        {
            let name = instance_name(block, &key);
            if split(&name).is_some() {
                out.push(name);
            }
        }
    }
    out
}

/// A setting keyed by colour (`backends = { ... }`, `target_groups = {
/// ... }`) for colour `name`: its own entry, else its block's (so that
/// `backends = { blue = "${each.key}_blue" }` in a `for_each` router names
/// the backend of whichever instance of `blue` it switches to).
pub fn lookup<'m, V>(map: &'m std::collections::BTreeMap<String, V>, name: &str) -> Option<&'m V> {
    map.get(name).or_else(|| match split(name) {
        Some((block, Some(_))) => map.get(block),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for (block, key, text, flat_text) in [
            (
                "green",
                InstanceKey::Str("api".into()),
                "green[\"api\"]",
                "green.api",
            ),
            ("canary", InstanceKey::Index(0), "canary[0]", "canary.0"),
            ("canary", InstanceKey::Index(12), "canary[12]", "canary.12"),
            (
                "g",
                InstanceKey::Str("a.b-c".into()),
                "g[\"a.b-c\"]",
                "g.a.b-c",
            ),
        ] {
            let name = instance_name(block, &key);
            assert_eq!(name, text);
            assert_eq!(split(&name), Some((block, Some(key.clone()))));
            assert_eq!(block_of(&name), block);
            assert_eq!(key_of(&name), Some(key));
            assert_eq!(flat(&name), flat_text);
        }
        assert_eq!(split("green"), Some(("green", None)));
        assert_eq!(unflat("green.api"), ["green.api", "green[\"api\"]"]);
        assert_eq!(
            unflat("canary.0"),
            ["canary.0", "canary[\"0\"]", "canary[0]"]
        );
        assert_eq!(unflat("green"), ["green"]);
        assert_eq!(flat("green"), "green");
        assert_eq!(block_of("green"), "green");
    }

    #[test]
    fn malformed_names_are_neither() {
        for bad in [
            "",
            "green[",
            "green[]",
            "green[api]",
            "green[\"\"]",
            "green[01]",
            "[\"a\"]",
            "green[\"a b\"]",
            "green.api",
            "green[\"a\"]x",
            "green[-1]",
        ] {
            assert_eq!(split(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_setting_of_the_block_serves_its_instances() {
        let map: std::collections::BTreeMap<String, &str> = [
            ("blue".to_string(), "b"),
            ("green[\"api\"]".to_string(), "own"),
        ]
        .into();
        assert_eq!(lookup(&map, "green[\"api\"]"), Some(&"own"));
        assert_eq!(lookup(&map, "blue[\"api\"]"), Some(&"b"));
        assert_eq!(lookup(&map, "blue"), Some(&"b"));
        assert_eq!(lookup(&map, "green[\"web\"]"), None);
        assert_eq!(lookup(&map, "green"), None);
    }
}
