//! A fleet's `instances = [...]`: each instance is the single-instance
//! block it would be on its own, the block's other attributes plus its own.
//!
//! The checks here are the fleet's, made before any provider sees an
//! instance: `instances` is a non-empty list of objects; an attribute that
//! belongs to one instance (`socket`, `map`) is set in each instance and
//! never beside `instances`; an instance sets nothing else but its `name`;
//! names are unique. Every error names the attribute at fault as the core's
//! source map knows it (`instances[1].socket`), so that it is located.

use serde_json::{Map, Value};

use crate::{ProviderError, RouterSpec};

/// One instance: its place in the list, its name, and its settings as the
/// single-instance provider reads them.
#[derive(Debug, Clone)]
pub(crate) struct Instance {
    /// Its position in `instances`.
    pub index: usize,
    /// Its `name`, else its first instance attribute as written.
    pub name: String,
    /// The router spec with this instance's settings.
    pub spec: RouterSpec,
}

impl Instance {
    /// `instance \`NAME\``, as every message names it.
    pub fn label(&self) -> String {
        format!("instance `{}`", self.name)
    }
}

/// One instance as the block lists it, before it has a spec.
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    /// Its position in `instances`.
    pub index: usize,
    /// Its name.
    pub name: String,
    /// The block's shared attributes and its own.
    pub settings: Value,
}

/// The settings of each instance, or `None` when the block has no
/// `instances` (one instance: the block).
pub(crate) fn split(
    kind: &str,
    attributes: &[&str],
    settings: &Value,
) -> Result<Option<Vec<Listed>>, ProviderError> {
    let Some(block) = settings.as_object() else {
        return Ok(None);
    };
    let Some(listed) = block.get("instances") else {
        return Ok(None);
    };
    let error = |field: String, message: String| {
        Err(ProviderError::settings(
            Some(field),
            format!("in `{kind}` block: {message}"),
        ))
    };
    let list = match listed.as_array() {
        Some(list) if !list.is_empty() => list,
        _ => {
            return error(
                "instances".into(),
                "`instances` must be a list of at least one instance, e.g. \
                 `instances = [{ ... }, { ... }]`"
                    .into(),
            )
        }
    };
    if let Some(shared) = attributes.iter().find(|a| block.contains_key(**a)) {
        return error(
            (*shared).to_string(),
            format!(
                "`{shared}` belongs to each instance when `instances` is set: move it into every \
                 instance, or remove `instances` for a router of one instance"
            ),
        );
    }
    let common: Map<String, Value> = block
        .iter()
        .filter(|(k, _)| k.as_str() != "instances")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut out: Vec<Listed> = Vec::with_capacity(list.len());
    for (index, item) in list.iter().enumerate() {
        let at = format!("instances[{index}]");
        let Some(own) = item.as_object() else {
            let message = format!("{at} must be an object, e.g. `{{ name = \"a\", ... }}`");
            return error(at, message);
        };
        check_own(kind, attributes, &at, own)?;
        let name = instance_name(kind, attributes, &at, index, own)?;
        if let Some(first) = out.iter().find(|l| l.name == name).map(|l| l.index) {
            let field = if own.contains_key("name") {
                format!("{at}.name")
            } else {
                at.clone()
            };
            return error(
                field,
                format!(
                    "instances[{first}] and {at} are both named `{name}`: give each instance \
                     its own `name`"
                ),
            );
        }
        let mut merged = common.clone();
        merged.extend(
            own.iter()
                .filter(|(k, _)| k.as_str() != "name")
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        out.push(Listed {
            index,
            name,
            settings: Value::Object(merged),
        });
    }
    Ok(Some(out))
}

/// An instance sets only its own attributes and its name.
fn check_own(
    kind: &str,
    attributes: &[&str],
    at: &str,
    own: &Map<String, Value>,
) -> Result<(), ProviderError> {
    let Some(other) = own
        .keys()
        .find(|k| k.as_str() != "name" && !attributes.contains(&k.as_str()))
    else {
        return Ok(());
    };
    let mut allowed = vec!["name"];
    allowed.extend_from_slice(attributes);
    let expected: Vec<String> = allowed.iter().map(|a| format!("`{a}`")).collect();
    let serde_like = format!(
        "unknown field `{other}`, expected one of {}",
        expected.join(", ")
    );
    let hint = crate::did_you_mean(&serde_like).map_or_else(String::new, |h| format!("; {h}"));
    Err(ProviderError::settings(
        Some(format!("{at}.{other}")),
        format!(
            "in `{kind}` block: an instance sets only {}; `{other}` is not one of them (an \
             attribute shared by every instance goes in the `{kind}` block itself){hint}",
            expected.join(", ")
        ),
    ))
}

/// The instance's `name`, else the text of its first instance attribute
/// (its socket, its admin address, its pid file), else `#N`.
fn instance_name(
    kind: &str,
    attributes: &[&str],
    at: &str,
    index: usize,
    own: &Map<String, Value>,
) -> Result<String, ProviderError> {
    match own.get("name") {
        Some(Value::String(name)) if !name.trim().is_empty() => Ok(name.clone()),
        Some(_) => Err(ProviderError::settings(
            Some(format!("{at}.name")),
            format!("in `{kind}` block: an instance's `name` must be a non-empty string"),
        )),
        None => Ok(attributes
            .iter()
            .find_map(|a| own.get(*a).and_then(Value::as_str))
            .map_or_else(|| format!("#{}", index + 1), str::to_string)),
    }
}

/// The instances of `spec`'s router, each with its own spec; `None` for a
/// router of one instance.
pub(crate) fn of(
    kind: &str,
    attributes: &[&str],
    spec: &RouterSpec,
) -> Result<Option<Vec<Instance>>, ProviderError> {
    let Some(split) = split(kind, attributes, spec.settings())? else {
        return Ok(None);
    };
    let instances = split
        .into_iter()
        .map(|listed| Instance {
            index: listed.index,
            name: listed.name,
            spec: RouterSpec::new(
                spec.name(),
                spec.colours().clone(),
                listed.settings,
                spec.workdir(),
            ),
        })
        .collect();
    Ok(Some(instances))
}

/// An error of one instance, said with `prefix` (`instance \`b\``): a
/// settings error about one of the instance's own attributes points at it
/// (`instances[1].socket`); one about a shared attribute is the block's,
/// and is left as it is.
pub(crate) fn named(
    attributes: &[&str],
    index: usize,
    prefix: &str,
    error: ProviderError,
) -> ProviderError {
    let own_field = error.field().filter(|f| {
        let top = f.split(['.', '[']).next().unwrap_or_default();
        attributes.contains(&top)
    });
    match own_field {
        Some(field) => {
            let field = format!("instances[{index}].{field}");
            error.of_instance(prefix, Some(field))
        }
        None if error.kind() == crate::ErrorKind::Settings => error,
        None => error.of_instance(prefix, None),
    }
}
