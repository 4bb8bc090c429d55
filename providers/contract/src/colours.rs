//! The colours a router may send traffic to, as one shared, sorted list.
//!
//! A configuration of N routers over N colours hands every router the same
//! list, so the list is shared (`Arc`), sorted once when it is made, and
//! looked up by name with a binary search; a provider that must find a
//! colour by its endpoints (Caddy reads upstream addresses back) uses an
//! index built once per list, on first use. Scanning or sorting the list per
//! router would make N routers cost O(N²).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One colour as a router sees it: its name and where it serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Colour {
    /// The environment's name, e.g. `green`.
    pub name: String,
    /// The addresses (`host:port`) the environment serves on.
    pub endpoints: Vec<String>,
}

/// Every colour a router may send traffic to: sorted by name, each name
/// once, cheap to clone (a reference count).
///
/// Made by [`Colours::new`] (or deserialized, which goes through it), so
/// the order is an invariant, not a convention of whoever built it.
/// Serializes as a JSON array of [`Colour`]s.
#[derive(Clone, Default)]
pub struct Colours(Arc<Inner>);

#[derive(Default)]
struct Inner {
    sorted: Box<[Colour]>,
    /// Endpoint -> positions in `sorted` of the colours serving on it.
    by_endpoint: OnceLock<HashMap<String, Vec<usize>>>,
}

impl Colours {
    /// The colours, sorted by name; of several with one name, the first
    /// given is kept.
    pub fn new(mut colours: Vec<Colour>) -> Self {
        // Stable, and linear on input already in order (the core builds it
        // from a map sorted by name), so keeping the first of equal names.
        colours.sort_by(|a, b| a.name.cmp(&b.name));
        colours.dedup_by(|later, first| later.name == first.name);
        Colours(Arc::new(Inner {
            sorted: colours.into_boxed_slice(),
            by_endpoint: OnceLock::new(),
        }))
    }

    /// The colour named `name`, by binary search.
    pub fn get(&self, name: &str) -> Option<&Colour> {
        let sorted = &self.0.sorted;
        sorted
            .binary_search_by(|c| c.name.as_str().cmp(name))
            .ok()
            .map(|i| &sorted[i])
    }

    /// The instances of block `block` (`blue["api"]`, `blue["web"]` for
    /// `blue`: crate::name), in name order, by binary search.
    pub fn instances_of(&self, block: &str) -> &[Colour] {
        let sorted = &self.0.sorted;
        let prefix = format!("{block}[");
        let start = sorted.partition_point(|c| c.name.as_str() < prefix.as_str());
        let len = sorted[start..].partition_point(|c| c.name.starts_with(&prefix));
        &sorted[start..start + len]
    }

    /// The colour named `name`, or, when `name` is a block with instances,
    /// the instance of key `key` (a router's own key: `blue` for router
    /// `svc["api"]` is `blue["api"]`), else the block's only instance.
    pub fn of_block(&self, name: &str, key: Option<&crate::name::InstanceKey>) -> Option<&Colour> {
        if let Some(c) = self.get(name) {
            return Some(c);
        }
        if let Some(c) = key.and_then(|k| self.get(&crate::name::instance_name(name, k))) {
            return Some(c);
        }
        match self.instances_of(name) {
            [only] => Some(only),
            _ => None,
        }
    }

    /// The colours that serve on `endpoint`, in name order. The index behind
    /// it is built once per list (shared by every clone), on first use.
    pub fn serving_on<'a>(&'a self, endpoint: &str) -> impl Iterator<Item = &'a Colour> + 'a {
        let index = self.0.by_endpoint.get_or_init(|| {
            let mut index: HashMap<String, Vec<usize>> = HashMap::new();
            for (i, colour) in self.0.sorted.iter().enumerate() {
                for endpoint in &colour.endpoints {
                    let at = index.entry(endpoint.clone()).or_default();
                    if at.last() != Some(&i) {
                        at.push(i);
                    }
                }
            }
            index
        });
        index
            .get(endpoint)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .map(|&i| &self.0.sorted[i])
    }

    /// The colours in name order.
    pub fn iter(&self) -> std::slice::Iter<'_, Colour> {
        self.0.sorted.iter()
    }

    /// The colours in name order, as a slice.
    pub fn as_slice(&self) -> &[Colour] {
        &self.0.sorted
    }

    /// How many colours there are.
    pub fn len(&self) -> usize {
        self.0.sorted.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.sorted.is_empty()
    }
}

impl std::fmt::Debug for Colours {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for Colours {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.sorted == other.0.sorted
    }
}

impl Eq for Colours {}

impl From<Vec<Colour>> for Colours {
    fn from(colours: Vec<Colour>) -> Self {
        Colours::new(colours)
    }
}

impl From<&[Colour]> for Colours {
    fn from(colours: &[Colour]) -> Self {
        Colours::new(colours.to_vec())
    }
}

impl FromIterator<Colour> for Colours {
    fn from_iter<I: IntoIterator<Item = Colour>>(iter: I) -> Self {
        Colours::new(iter.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a Colours {
    type Item = &'a Colour;
    type IntoIter = std::slice::Iter<'a, Colour>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl Serialize for Colours {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.as_slice().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Colours {
    /// Sorts and deduplicates as [`Colours::new`] does: a saved plan written
    /// by hand (or by an older cutover) cannot break the lookups.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<Colour>::deserialize(deserializer).map(Colours::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn colour(name: &str, endpoints: &[&str]) -> Colour {
        Colour {
            name: name.into(),
            endpoints: endpoints.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn colours_are_sorted_and_found_by_name() {
        let colours = Colours::new(
            ["green", "blue_2", "a", "blue_10", "blue_1"]
                .map(|n| colour(n, &[]))
                .to_vec(),
        );
        let names: Vec<&str> = colours.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a", "blue_1", "blue_10", "blue_2", "green"]);
        for name in names.clone() {
            assert_eq!(colours.get(name).map(|c| c.name.as_str()), Some(name));
        }
        for name in ["", "blue", "blue_3", "zebra"] {
            assert!(colours.get(name).is_none(), "{name}");
        }
    }

    #[test]
    fn a_name_is_kept_once_the_first_given() {
        let colours = Colours::new(vec![
            colour("green", &["a:1"]),
            colour("blue", &["b:1"]),
            colour("green", &["c:1"]),
        ]);
        assert_eq!(colours.len(), 2);
        assert_eq!(colours.get("green").unwrap().endpoints, ["a:1"]);
    }

    #[test]
    fn deserializing_sorts_too() {
        let colours: Colours = serde_json::from_value(serde_json::json!([
            {"name": "green", "endpoints": []},
            {"name": "blue", "endpoints": []},
        ]))
        .unwrap();
        assert!(colours.get("blue").is_some() && colours.get("green").is_some());
        assert_eq!(
            serde_json::to_value(&colours).unwrap(),
            serde_json::json!([
                {"name": "blue", "endpoints": []},
                {"name": "green", "endpoints": []},
            ])
        );
    }

    #[test]
    fn colours_are_found_by_endpoint() {
        let colours = Colours::new(vec![
            colour("green", &["g:1", "shared:1"]),
            colour("blue", &["b:1", "shared:1", "shared:1"]),
        ]);
        let on =
            |e: &str| -> Vec<String> { colours.serving_on(e).map(|c| c.name.clone()).collect() };
        assert_eq!(on("shared:1"), ["blue", "green"]);
        assert_eq!(on("g:1"), ["green"]);
        assert!(on("nowhere:1").is_empty());
        // Clones share the index.
        let clone = colours.clone();
        assert_eq!(clone.serving_on("b:1").count(), 1);
        assert_eq!(clone, colours);
    }
}
