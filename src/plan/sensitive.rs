//! Sensitive values: scrubbed from every view, the state and saved plans.
//!
//! The config layer hands over the text of every value that is or derives
//! from a `sensitive = true` variable ([`crate::config::model::Config::secrets`]).
//! The scrubber replaces each occurrence with a marker that names no part of
//! the secret but changes when the secret changes — `(sensitive:1a2b3c4d5e6f)`,
//! the first 12 hex digits of its SHA-256 — so a rotated secret still shows up
//! as a change in the plan, and the state and saved plans never hold it in
//! clear. The engine keeps the real values only in memory, to run the steps.
//!
//! Values shorter than [`MIN_SECRET_LEN`] characters are not scrubbed: they
//! would match everywhere (a secret of two characters is no secret).

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Shorter values are not scrubbed (see the module documentation).
pub const MIN_SECRET_LEN: usize = 4;

/// Replaces secrets with markers.
#[derive(Debug, Clone, Default)]
pub struct Scrubber {
    /// (secret, marker), longest secret first so that a secret containing
    /// another is replaced whole.
    pairs: Vec<(String, String)>,
}

/// The marker that stands for `secret`.
pub fn marker(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("(sensitive:{hex})")
}

impl Scrubber {
    /// A scrubber for these secrets.
    pub fn new(secrets: &BTreeSet<String>) -> Self {
        let mut pairs: Vec<(String, String)> = secrets
            .iter()
            .filter(|s| s.chars().count() >= MIN_SECRET_LEN)
            .map(|s| (s.clone(), marker(s)))
            .collect();
        pairs.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        Scrubber { pairs }
    }

    /// Whether there is nothing to scrub.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// `text` with every secret replaced.
    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (secret, marker) in &self.pairs {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), marker);
            }
        }
        out
    }

    /// `value` with every secret replaced, in keys and strings.
    pub fn value(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.text(s)),
            Value::Number(n) => {
                let text = n.to_string();
                if self.pairs.iter().any(|(s, _)| *s == text) {
                    Value::String(self.text(&text))
                } else {
                    value.clone()
                }
            }
            Value::Array(items) => Value::Array(items.iter().map(|v| self.value(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (self.text(k), self.value(v)))
                    .collect(),
            ),
            Value::Bool(_) | Value::Null => value.clone(),
        }
    }

    /// Any serializable thing (plan document, state) with every secret
    /// replaced; unchanged when there is nothing to scrub.
    pub fn scrub<T: Serialize + DeserializeOwned + Clone>(&self, thing: &T) -> T {
        if self.is_empty() {
            return thing.clone();
        }
        let value = serde_json::to_value(thing).expect("plan documents and states serialize");
        // Replacing text inside strings keeps every field's type, except a
        // number that is itself a secret: that would not deserialize back, so
        // such a thing is left as it is in that field.
        serde_json::from_value(self.value(&value)).unwrap_or_else(|_| thing.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrubber(list: &[&str]) -> Scrubber {
        Scrubber::new(&list.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn replaces_every_occurrence_with_a_stable_marker() {
        let s = scrubber(&["hunter22"]);
        let out = s.text("TOKEN=hunter22 and again hunter22");
        assert!(!out.contains("hunter22"), "{out}");
        assert_eq!(out.matches(&marker("hunter22")).count(), 2);
        assert_ne!(
            marker("hunter22"),
            marker("hunter23"),
            "a rotated secret must show as a change"
        );
    }

    #[test]
    fn longest_secret_first_and_short_ones_ignored() {
        let s = scrubber(&["abcd", "abcdefgh", "ab"]);
        assert_eq!(s.text("xabcdefghx"), format!("x{}x", marker("abcdefgh")));
        assert_eq!(s.text("ab"), "ab");
    }

    #[test]
    fn values_keep_their_shape() {
        let s = scrubber(&["s3cret-value"]);
        let v = serde_json::json!({"env": {"TOKEN": "s3cret-value"}, "n": 1, "list": ["a", "s3cret-value"]});
        let out = s.value(&v);
        assert!(!out.to_string().contains("s3cret-value"));
        assert_eq!(out["n"], 1);
        assert_eq!(out["list"][0], "a");
    }
}
