//! Views of the state for `cutover state list` and `cutover state show`.
//!
//! Addresses are the ones used everywhere else (`environment.green`,
//! `router.public`), and `show` prints a resource in the configuration's own
//! HCL shape so that it reads like the block that produced it. Everything the
//! state holds is shown, provider-private data included: the state never holds
//! a sensitive value, and the point of `show` is to see what cutover
//! remembers.

use serde_json::Value;

use super::hcl_value;
use crate::state::model::{EnvironmentState, RouterState, State};

/// Every address in the state, one per line, environments then routers, each
/// sorted by name.
pub fn state_list(state: &State) -> String {
    let environments = state
        .environments
        .keys()
        .map(|n| format!("environment.{n}\n"));
    let routers = state.routers.keys().map(|n| format!("router.{n}\n"));
    environments.chain(routers).collect()
}

/// One resource in HCL form, or `None` when the address is not in the state.
pub fn state_show(state: &State, address: &str) -> Option<String> {
    let (kind, name) = address.split_once('.')?;
    let name = &crate::addr::name_arg(name);
    let attributes = match kind {
        "environment" => environment_attributes(state.environments.get(name)?),
        "router" => router_attributes(state.routers.get(name)?),
        _ => return None,
    };
    let width = attributes.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let label = Value::from(cutover_provider::name::block_of(name));
    let mut out = format!("# {address}\n{kind} {label} {{\n");
    for (key, value) in &attributes {
        out.push_str(&format!("  {key:width$} = {}\n", hcl_value(value, 2)));
    }
    out.push_str("}\n");
    Some(out)
}

fn environment_attributes(env: &EnvironmentState) -> Vec<(&'static str, Value)> {
    let mut attributes = vec![
        ("backend", Value::from(env.backend.clone())),
        ("release", Value::from(env.release.clone())),
        ("endpoints", Value::from(env.endpoints.clone())),
        ("settings", env.settings.clone()),
    ];
    if let Some(identity) = &env.identity {
        attributes.push(("identity", Value::from(identity.clone())));
    }
    attributes.push(("private", env.private.clone()));
    attributes
}

fn router_attributes(router: &RouterState) -> Vec<(&'static str, Value)> {
    let colour = |c: &Option<String>| c.clone().map_or(Value::Null, Value::from);
    vec![
        ("backend", Value::from(router.backend.clone())),
        ("live", colour(&router.live)),
        ("previous", colour(&router.previous)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> State {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/state")
            .join(name);
        crate::state::load(&path).unwrap().unwrap()
    }

    #[test]
    fn list_is_sorted_environments_then_routers() {
        assert_eq!(
            state_list(&fixture("blue-green.json")),
            "environment.blue\nenvironment.green\nrouter.public\n"
        );
        assert_eq!(state_list(&fixture("empty.json")), "");
    }

    #[test]
    fn show_one_resource() {
        let state = fixture("blue-green.json");
        insta::assert_snapshot!(
            "show_environment",
            state_show(&state, "environment.green").unwrap()
        );
        insta::assert_snapshot!("show_router", state_show(&state, "router.public").unwrap());
        let state = fixture("unmanaged-first-apply.json");
        insta::assert_snapshot!(
            "show_environment_without_backend",
            state_show(&state, "environment.legacy").unwrap()
        );
        assert_eq!(state_show(&state, "router.nope"), None);
        assert_eq!(state_show(&state, "environment"), None);
        assert_eq!(state_show(&state, "output.legacy"), None);
    }
}
