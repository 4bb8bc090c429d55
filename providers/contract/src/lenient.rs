//! Settings that take strings as Terraform's `string` attributes do: a
//! number or bool given for one is its text (`"${each.value.port}"` is the
//! number itself, as HCL keeps a lone interpolation's type; Terraform then
//! converts it for a `list(string)` argument).
//!
//! ```ignore
//! #[serde(deserialize_with = "cutover_provider::lenient::strings")]
//! command: Vec<String>,
//! ```

use std::collections::BTreeMap;

use serde::de::{Deserializer, Error};
use serde::Deserialize;
use serde_json::Value;

fn text<E: Error>(v: Value) -> Result<String, E> {
    match v {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(E::custom(format!(
            "invalid type: {}, expected a string",
            match other {
                Value::Null => "null",
                Value::Array(_) => "a list",
                _ => "an object",
            }
        ))),
    }
}

/// A list of strings, numbers and bools, each as its text.
pub fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Vec::<Value>::deserialize(d)?
        .into_iter()
        .map(text)
        .collect()
}

/// A map of strings, numbers and bools, each value as its text.
pub fn string_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    BTreeMap::<String, Value>::deserialize(d)?
        .into_iter()
        .map(|(k, v)| text(v).map(|t| (k, t)))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Deserialize, Debug)]
    struct S {
        #[serde(deserialize_with = "super::strings")]
        command: Vec<String>,
        #[serde(default, deserialize_with = "super::string_map")]
        env: std::collections::BTreeMap<String, String>,
    }

    #[test]
    fn numbers_and_bools_are_their_text_and_nothing_else_is() {
        let s: S = serde_json::from_value(
            json!({"command": ["app", 9101, 1.5, true], "env": {"PORT": 9101}}),
        )
        .unwrap();
        assert_eq!(s.command, ["app", "9101", "1.5", "true"]);
        assert_eq!(s.env["PORT"], "9101");
        let e = serde_json::from_value::<S>(json!({"command": ["app", [1]]})).unwrap_err();
        assert!(
            e.to_string()
                .contains("invalid type: a list, expected a string"),
            "{e}"
        );
    }
}
