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
    // the ALB's `target_groups`. A name there may be a block with instances
    // (`backends = { blue = "shared_blue" }` in a router with `for_each`).
    let own_key = cutover_provider::name::key_of(&router.name);
    let mut named_blocks: Vec<String> = Vec::new();
    for map in ["backends", "target_groups"] {
        if let Some(named) = router.backend.body.get(map).and_then(Value::as_object) {
            for entry in named.keys() {
                match config.environments.contains_key(entry) {
                    true => {
                        wanted.insert(entry);
                    }
                    false => named_blocks.push(entry.clone()),
                }
            }
        }
    }
    // Look each wanted colour up (the set is small) rather than scanning every
    // environment: a plan makes one spec per step, so a scan is quadratic.
    let mut found: Vec<&Environment> = wanted
        .iter()
        .filter_map(|name| config.environments.get(*name))
        .collect();
    for block in &named_blocks {
        found.extend(block_instance(config, block, own_key.as_ref()));
    }
    let colours: Colours = found.into_iter().map(colour).collect();
    router_spec_with(config, name, &colours)
}

/// The instance of block `block` that a router's backend settings mean by
/// the block's name, as the providers read them (cutover_provider::Colours::of_block):
/// the one of the router's own key (`blue["api"]` for router `svc["api"]`),
/// else the block's only instance. Found by a range of the sorted names,
/// not a scan of every environment.
fn block_instance<'c>(
    config: &'c Config,
    block: &str,
    own_key: Option<&cutover_provider::name::InstanceKey>,
) -> Option<&'c Environment> {
    if let Some(env) = own_key.and_then(|k| {
        config
            .environments
            .get(&cutover_provider::name::instance_name(block, k))
    }) {
        return Some(env);
    }
    let mut instances =
        cutover_provider::name::instances_in(&config.environments, block).map(|(_, env)| env);
    match (instances.next(), instances.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{load_str, VarInputs};

    #[test]
    fn a_step_of_an_instance_carries_the_instances_its_backends_name_by_block() {
        let config = load_str(
            r#"
locals {
  services = { api = 1, web = 2 }
}
environment "blue" {
  for_each = local.services
  release  = "1"
  endpoint = "127.0.0.1:${9000 + each.value}"
}
environment "green" {
  for_each = local.services
  release  = "1"
  endpoint = "127.0.0.1:${9100 + each.value}"
}
environment "solo" {
  count    = 1
  release  = "1"
  endpoint = "127.0.0.1:9200"
}
router "r" {
  for_each = local.services
  live     = environment.blue[each.key]
  haproxy {
    socket   = "/run/haproxy.sock"
    map      = "/etc/haproxy/live.map"
    backends = { blue = "blue", green = "green", solo = "solo" }
  }
}
"#,
            &VarInputs::default(),
        )
        .unwrap()
        .config;
        // The first cut-over of r["web"] (none -> blue["web"]): its own
        // instance of every block its `backends` names, not the other key's.
        let spec =
            super::step_spec(&config, r#"r["web"]"#, &[None, Some(r#"blue["web"]"#)]).unwrap();
        let names: Vec<&str> = spec.colours().iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, [r#"blue["web"]"#, r#"green["web"]"#, "solo[0]"]);
    }
}
