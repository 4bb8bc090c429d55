//! What the planner hands providers: environment and router specs, built
//! from the configuration (or, for what left it, from the state).

use std::collections::BTreeSet;

use cutover_provider::{Colour, Colours, EnvironmentSpec, RouterSpec};
use serde_json::Value;

use crate::config::model::{Config, Environment};
use crate::state::model::EnvironmentState;

/// The spec handed to an environment's provider.
pub fn environment_spec(config: &Config, env: &Environment) -> EnvironmentSpec {
    EnvironmentSpec {
        name: env.name.clone(),
        release: env.release.clone(),
        endpoints: env.endpoints.clone(),
        settings: env.backend.as_ref().map_or(Value::Null, |b| b.body.clone()),
        workdir: config.dir.clone(),
        sensitive: shown_values(env),
    }
}

/// The spec of an environment that left the configuration: the last one
/// deployed, from the state.
pub fn recorded_spec(config: &Config, name: &str, rec: &EnvironmentState) -> EnvironmentSpec {
    EnvironmentSpec {
        name: name.to_owned(),
        release: rec.release.clone(),
        endpoints: rec.endpoints.clone(),
        settings: rec.settings.clone(),
        workdir: config.dir.clone(),
        sensitive: Default::default(),
    }
}

/// An environment's release and settings as shown, for its provider to
/// build what it writes itself from.
fn shown_values(env: &Environment) -> cutover_provider::Sensitive {
    let settings = env.backend.as_ref().map(|b| (&b.marks, &b.body));
    if env.marks.release.is_clear() && settings.is_none_or(|(m, _)| m.is_clear()) {
        return Default::default();
    }
    cutover_provider::Sensitive::new(
        env.marks.release.redact_text(&env.release),
        settings.map_or(Value::Null, |(m, body)| m.redact(body)),
    )
}

fn colour(env: &Environment) -> Colour {
    Colour {
        name: env.name.clone(),
        endpoints: env.endpoints.clone(),
    }
}

/// Every colour a router may send traffic to, once, to be shared by every
/// router's spec (see [`router_spec_with`]).
pub fn colours(config: &Config) -> Colours {
    config.environments.values().map(colour).collect()
}

/// The spec handed to a router's provider.
pub fn router_spec(config: &Config, name: &str) -> Option<RouterSpec> {
    router_spec_with(config, name, &colours(config))
}

/// The spec handed to a router's provider, sharing `colours` (from
/// [`colours`]): use this when making specs for many routers, so that each
/// costs O(1) rather than a copy of every environment.
pub fn router_spec_with(config: &Config, name: &str, colours: &Colours) -> Option<RouterSpec> {
    let router = config.routers.get(name)?;
    Some(RouterSpec::new(
        router.name.clone(),
        colours.clone(),
        router.backend.body.clone(),
        config.dir.clone(),
    ))
}

/// The spec a cut-over or preview step carries: only the colours that step
/// can involve (`involved`, the router's `live` and `preview`, and any colour
/// its backend block names in a `backends` or `target_groups` map), so that a plan of N routers
/// over N colours stays O(N) in size instead of carrying every colour in
/// every step. Refresh still gives providers every colour.
pub fn step_spec(config: &Config, name: &str, involved: &[Option<&str>]) -> Option<RouterSpec> {
    let router = config.routers.get(name)?;
    let mut wanted: BTreeSet<&str> = involved.iter().flatten().copied().collect();
    wanted.insert(router.live.as_str());
    if let Some(p) = &router.preview {
        wanted.insert(p.as_str());
    }
    // The maps of a backend block that name colours: HAProxy's `backends`,
    // the ALB's `target_groups`.
    for map in ["backends", "target_groups"] {
        if let Some(named) = router.backend.body.get(map).and_then(Value::as_object) {
            wanted.extend(named.keys().map(String::as_str));
        }
    }
    // Look each wanted colour up (the set is small) rather than scanning every
    // environment: a plan makes one spec per step, so a scan is quadratic.
    let colours: Colours = wanted
        .iter()
        .filter_map(|name| config.environments.get(*name))
        .map(colour)
        .collect();
    router_spec_with(config, name, &colours)
}
