//! Drift (what changed outside cutover since the last apply) and the
//! fingerprint of the live values a plan saw.

use std::collections::BTreeMap;

use cutover_provider::{EnvironmentDriftKind, LiveEnvironment};

use super::document::{Drift, DriftKind};
use super::Live;
use crate::addr::Address;
use crate::config::model::Config;
use crate::state::model::State;

/// The fingerprint key of what each instance of a fleet router serves:
/// `instances.router.NAME`, its value a JSON list of `[instance, colour]`.
pub const FLEET_PREFIX: &str = "instances.";

/// The colours the instances of a fleet serve, from its fingerprint value.
pub fn fleet_colours(value: &str) -> Vec<String> {
    serde_json::from_str::<Vec<(String, String)>>(value)
        .map(|each| each.into_iter().map(|(_, colour)| colour).collect())
        .unwrap_or_default()
}

/// Everything changed outside cutover: routers first, then environments,
/// each in name order.
pub fn drift(config: &Config, st: &State, live: &Live) -> Vec<Drift> {
    let mut out = Vec::new();
    router_drift(config, st, live, &mut out);
    for name in config.environments.keys() {
        let observed = live.environments.get(name).cloned().unwrap_or_default();
        environment_drift(name, &observed, st.environments.get(name), &mut out);
    }
    out
}

fn router_drift(config: &Config, st: &State, live: &Live, drift: &mut Vec<Drift>) {
    for (name, observed) in &live.routers {
        // What the provider itself noticed (an include edited without a
        // reload, ...), whatever the state says.
        for noticed in &observed.drift {
            drift.push(Drift {
                address: Address::router(name).to_string(),
                kind: DriftKind::RouterChanged,
                message: format!("router.{name}: {}", noticed.message),
            });
        }
    }
    for (name, rec) in &st.routers {
        let Some(observed) = live.routers.get(name) else {
            continue;
        };
        if !config.routers.contains_key(name) || rec.live == observed.live {
            continue;
        }
        if observed.live.is_none() && observed.raw.is_none() {
            let message = match live.moved_from.get(name) {
                Some(old) => format!(
                    "router.{name} was router.{old} (a `moved` block) and shows no entry of its new name: the router names its entry after the router (HAProxy's map key, Caddy's route, nginx's include), so the entry of the old name, if the router still has it, goes on sending traffic to {} as before: cutover no longer reads it, and counts that colour as live until the router shows it under the new name",
                    rec.live.as_deref().unwrap_or("nothing")
                ),
                None => format!(
                    "router.{name} no longer holds cutover's switch (cutover left it on {}): the router lost it, e.g. it was restarted or reloaded from a config file without it",
                    rec.live.as_deref().unwrap_or("nothing")
                ),
            };
            drift.push(Drift {
                address: Address::router(name).to_string(),
                kind: DriftKind::RouterChanged,
                message,
            });
            continue;
        }
        let now = observed
            .live
            .clone()
            .or_else(|| {
                observed
                    .raw
                    .clone()
                    .map(|r| format!("{r} (not a known colour)"))
            })
            .unwrap_or_else(|| "nothing".into());
        let was = rec.live.clone().unwrap_or_else(|| "nothing".into());
        drift.push(Drift {
            address: Address::router(name).to_string(),
            kind: DriftKind::RouterSwitched,
            message: format!("router.{name} was switched outside cutover: cutover left it on {was}, it now sends traffic to {now}"),
        });
    }
}

fn environment_drift(
    name: &str,
    observed: &LiveEnvironment,
    recorded: Option<&crate::state::model::EnvironmentState>,
    drift: &mut Vec<Drift>,
) {
    let Some(rec) = recorded else { return };
    let address = Address::environment(name).to_string();
    for noticed in &observed.drift {
        let kind = match noticed.kind {
            EnvironmentDriftKind::Gone => DriftKind::EnvironmentGone,
            EnvironmentDriftKind::Replaced => DriftKind::EnvironmentReplaced,
            // Something else changed: replaced if something still runs.
            EnvironmentDriftKind::Changed if observed.exists => DriftKind::EnvironmentReplaced,
            EnvironmentDriftKind::Changed => DriftKind::EnvironmentGone,
        };
        drift.push(Drift {
            address: address.clone(),
            kind,
            message: format!("{address}: {}", noticed.message),
        });
    }
    if observed.exists {
        if let Some(r) = &observed.release {
            if r != &rec.release {
                drift.push(Drift {
                    address: address.clone(),
                    kind: DriftKind::ReleaseChanged,
                    message: format!(
                        "{address} runs release {r}, but cutover deployed {}",
                        rec.release
                    ),
                });
            }
        }
    }
}

/// The live values a plan saw, so a saved plan can tell when they moved.
pub fn fingerprint(live: &Live) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let said = |live: &Option<String>, raw: &Option<String>| {
        live.clone()
            .or_else(|| raw.clone())
            .unwrap_or_else(|| "(none)".into())
    };
    for (name, r) in &live.routers {
        let address = Address::router(name).to_string();
        // A fleet: what each instance serves, so that a saved plan is stale
        // as soon as one moves, and so that `validate` knows every colour
        // it serves (FLEET_PREFIX).
        if !r.instances.is_empty() {
            let each: Vec<(&str, String)> = r
                .instances
                .iter()
                .map(|i| (i.name.as_str(), said(&i.live, &i.raw)))
                .collect();
            let each = serde_json::to_string(&each).unwrap_or_default();
            out.insert(format!("{FLEET_PREFIX}{address}"), each);
        }
        out.insert(address, said(&r.live, &r.raw));
    }
    for (name, e) in &live.environments {
        let value = if e.exists {
            format!(
                "release={} identity={}",
                e.release.as_deref().unwrap_or("?"),
                e.identity.as_deref().unwrap_or("?")
            )
        } else {
            "absent".to_string()
        };
        out.insert(Address::environment(name).to_string(), value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_provider::EnvironmentDrift;
    use serde_json::Value;

    /// The drift's kind decides, never the words of its message.
    #[test]
    fn environment_drift_goes_by_kind() {
        let recorded = crate::state::model::EnvironmentState {
            backend: "exec".into(),
            release: "1".into(),
            endpoints: vec![],
            settings: Value::Null,
            identity: None,
            private: Value::Null,
        };
        let cases = [
            (
                EnvironmentDriftKind::Replaced,
                false,
                DriftKind::EnvironmentReplaced,
            ),
            (
                EnvironmentDriftKind::Gone,
                false,
                DriftKind::EnvironmentGone,
            ),
            (
                EnvironmentDriftKind::Changed,
                true,
                DriftKind::EnvironmentReplaced,
            ),
            (
                EnvironmentDriftKind::Changed,
                false,
                DriftKind::EnvironmentGone,
            ),
        ];
        for (kind, exists, expected) in cases {
            let observed = LiveEnvironment {
                exists,
                drift: vec![EnvironmentDrift::new(kind, "revision 7 took over")],
                ..Default::default()
            };
            let mut drift = Vec::new();
            environment_drift("blue", &observed, Some(&recorded), &mut drift);
            assert_eq!(drift.len(), 1, "{kind:?}");
            assert_eq!(drift[0].kind, expected, "{kind:?} exists={exists}");
            assert_eq!(drift[0].message, "environment.blue: revision 7 took over");
        }
    }
}
