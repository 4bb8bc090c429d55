//! Saved plans (`plan --out FILE`): the plan document plus what apply needs
//! to record, so `apply FILE` runs exactly what was reviewed and never plans
//! again.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::document::PlanDocument;
use super::sensitive::{Difference, Secrets};

/// The saved plan file's format version.
pub const SAVED_PLAN_VERSION: u32 = 1;

/// The colour a router is on after the plan is applied, recorded into the
/// state even when the router needs no cut-over (so drift and rollback know
/// where it was).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterRecord {
    /// The router.
    pub router: String,
    /// Its backend kind.
    pub backend: String,
    /// The colour it is on after the plan.
    pub live: Option<String>,
}

/// A plan as the engine made it: the document people review, and the router
/// records apply writes into the state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Planned {
    /// The document.
    pub document: PlanDocument,
    /// Routers whose live colour needs recording without a cut-over.
    pub records: Vec<RouterRecord>,
    /// Environments whose record in the state holds, in clear, values the
    /// configuration now marks sensitive: apply rewrites them with markers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hide_in_state: Vec<String>,
    /// The document with its sensitive values in clear, to run the steps;
    /// kept only in memory, never saved (`None` when nothing is sensitive, or
    /// for a plan read back from a file: the CLI fills it from the config).
    #[serde(skip)]
    pub execution: Option<PlanDocument>,
}

impl Planned {
    /// Whether applying the plan writes anything: a step, or a record.
    pub fn writes_anything(&self) -> bool {
        self.document.summary.has_changes()
            || !self.records.is_empty()
            || !self.hide_in_state.is_empty()
    }
}

/// The file `plan --out` writes.
#[derive(Debug, Serialize, Deserialize)]
struct SavedPlan {
    saved_plan_version: u32,
    #[serde(flatten)]
    planned: Planned,
}

/// A saved plan that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    /// The file could not be read or written.
    #[error("cannot access saved plan {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a saved plan of this version.
    #[error("{path} is not a cutover saved plan: {source}")]
    Format {
        /// The file.
        path: String,
        /// The parse error.
        source: serde_json::Error,
    },
    /// Made by another version of the format.
    #[error(
        "{path} is a saved plan of format {found}; this cutover reads format {SAVED_PLAN_VERSION}"
    )]
    Version {
        /// The file.
        path: String,
        /// The version found.
        found: u32,
    },
}

/// Write a saved plan atomically (`state::files::write_atomically`); a new
/// file is readable by its owner only, as it may describe what a team keeps
/// to itself.
pub fn write(path: &Path, planned: &Planned) -> Result<(), SavedPlanError> {
    let saved = SavedPlan {
        saved_plan_version: SAVED_PLAN_VERSION,
        planned: planned.clone(),
    };
    let mut bytes = serde_json::to_vec_pretty(&saved).expect("plan documents always serialize");
    bytes.push(b'\n');
    crate::state::files::write_atomically(path, &bytes, ".cutover-plan-", 0o600).map_err(|source| {
        SavedPlanError::Io {
            path: path.display().to_string(),
            source,
        }
    })
}

/// Read a saved plan.
pub fn read(path: &Path) -> Result<Planned, SavedPlanError> {
    let bytes = std::fs::read(path).map_err(|source| SavedPlanError::Io {
        path: path.display().to_string(),
        source,
    })?;
    from_bytes(path, &bytes)
}

/// Parse a saved plan from its bytes; `path` only names the file in errors.
pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Planned, SavedPlanError> {
    let p = path.display().to_string();
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|source| SavedPlanError::Format {
            path: p.clone(),
            source,
        })?;
    // A version too large for a `u32` is reported as `u32::MAX` rather than
    // truncated: `2^32 + 1` must not pass for version 1.
    let found = value
        .get("saved_plan_version")
        .and_then(|v| v.as_u64())
        .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX));
    if found != SAVED_PLAN_VERSION {
        return Err(SavedPlanError::Version { path: p, found });
    }
    let saved: SavedPlan = serde_json::from_value(value)
        .map_err(|source| SavedPlanError::Format { path: p, source })?;
    Ok(saved.planned)
}

/// Why a saved plan may not be applied (any more).
#[derive(Debug, thiserror::Error)]
pub enum Stale {
    /// It breaks a rule of the cut-over: it was edited, or is corrupt.
    #[error("it breaks a rule of the cut-over: {0}; make a new plan with `cutover plan --out`")]
    Invalid(#[from] super::validate::Invalid),
    /// It was made against another state.
    #[error("it was made against another state (lineage {planned}); this state has lineage {now}. Make a new plan with `cutover plan --out`")]
    OtherLineage {
        /// The plan's lineage.
        planned: String,
        /// The state's.
        now: String,
    },
    /// Its state is gone.
    #[error("it was made against a state (lineage {0}) that no longer exists here")]
    StateGone(String),
    /// The configuration's `moved` blocks rename other records in the
    /// state than the plan's did.
    #[error("the configuration's `moved` blocks now move other records in the state than the plan shows; make a new plan with `cutover plan --out`")]
    Moves,
    /// A state appeared since.
    #[error("it was made before any state existed, but the state now exists (serial {0}); make a new plan")]
    StateAppeared(u64),
    /// The state moved on.
    #[error("it is stale: it was made against state serial {planned}, and the state is now at serial {now}. Run `cutover plan --out` again")]
    Serial {
        /// The plan's serial.
        planned: u64,
        /// The state's.
        now: u64,
    },
    /// A health gate is not the configuration's check of its colour: it was
    /// edited, or the configuration changed it since.
    #[error("its health gate of {0} is not the configuration's check of that colour (the endpoints, URL or check differ); make a new plan with `cutover plan --out`")]
    GateChanged(String),
    /// A sensitive value of a check changed since the plan was made:
    /// (address, the origins of the marks that changed).
    #[error("{0}: the sensitive value of {1} changed since the plan was made; make a new plan with `cutover plan --out`")]
    SensitiveChanged(String, String),
    /// The configuration as loaded now (a `--var`, a var file, an edit)
    /// asks for other changes than the plan makes: the steps that differ.
    #[error("the configuration as loaded now asks for other changes than the plan makes (a --var, a var file or an edit since it was made): {}. Make a new plan with `cutover plan --out` and review it", .0.join("; "))]
    ConfigChanged(Vec<String>),
    /// The live world moved on: (address, what the plan saw, what is there now).
    #[error("the live world has moved on since it was made:\n{}\nRun `cutover plan` again and review the new plan.", moved(.0))]
    LiveMoved(Vec<(String, String, Option<String>)>),
}

fn moved(list: &[(String, String, Option<String>)]) -> String {
    list.iter()
        .map(|(k, was, now)| {
            format!(
                "  {k}: planned against {was}, now {}",
                now.as_deref().unwrap_or("(gone)")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether `planned` may still be applied to `state` in a live world whose
/// fingerprint (scrubbed as the plan's is) is `live_now`: it must follow
/// the rules of the cut-over, have been made against this very state
/// (lineage and serial), and have seen the live values that are there now.
pub fn check_fresh(
    planned: &Planned,
    state: Option<&crate::state::model::State>,
    live_now: &std::collections::BTreeMap<String, String>,
) -> Result<(), Stale> {
    let doc = &planned.document;
    super::validate::validate(doc)?;
    match (doc.lineage.as_deref(), state) {
        (Some(planned), Some(st)) if planned != st.lineage => {
            return Err(Stale::OtherLineage {
                planned: planned.to_owned(),
                now: st.lineage.clone(),
            })
        }
        (Some(planned), None) => return Err(Stale::StateGone(planned.to_owned())),
        (None, Some(st)) => return Err(Stale::StateAppeared(st.serial)),
        _ => {}
    }
    if let Some(st) = state.filter(|st| st.serial != doc.serial) {
        return Err(Stale::Serial {
            planned: doc.serial,
            now: st.serial,
        });
    }
    // Every live value the plan saw is still there, and nothing it did not
    // see has appeared (a key deleted from the file must not switch the
    // check off).
    let mut moved: Vec<(String, String, Option<String>)> = doc
        .fingerprint
        .iter()
        .filter(|(k, v)| live_now.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone(), live_now.get(k).cloned()))
        .collect();
    moved.extend(
        live_now
            .iter()
            .filter(|(k, _)| !doc.fingerprint.contains_key(*k))
            .map(|(k, v)| {
                (
                    k.clone(),
                    "(nothing: not in the plan)".to_owned(),
                    Some(v.clone()),
                )
            }),
    );
    // The routers it records without a cut-over must be where it saw them.
    for rec in &planned.records {
        let key = crate::addr::Address::router(&rec.router).to_string();
        let seen = doc.fingerprint.get(&key).map(String::as_str);
        let cut = doc
            .steps
            .iter()
            .any(|s| s.id == crate::addr::StepId::Cutover(rec.router.clone()));
        if cut || seen != rec.live.as_deref() {
            moved.push((
                key,
                format!("recorded as {}", rec.live.as_deref().unwrap_or("nothing")),
                seen.map(str::to_owned),
            ));
        }
    }
    if moved.is_empty() {
        Ok(())
    } else {
        Err(Stale::LiveMoved(moved))
    }
}

/// Every health gate of a saved plan is exactly the configuration's check of
/// its colour (as shown): a gate edited to check nothing, another colour's
/// endpoints or another URL would otherwise pass for it.
pub fn check_gates(
    planned: &Planned,
    config: &crate::config::model::Config,
    secrets: &Secrets,
) -> Result<(), Stale> {
    for step in &planned.document.steps {
        let super::document::StepKind::HealthGate {
            environment,
            endpoints,
            health,
            ..
        } = &step.kind
        else {
            continue;
        };
        let same = config.environments.get(environment).is_some_and(|env| {
            secrets.endpoints(environment, &env.endpoints) == *endpoints
                && secrets.health(environment, &env.health) == *health
        });
        if !same {
            let env_address = crate::addr::Address::environment(environment).to_string();
            let origins = config
                .environments
                .get(environment)
                .map(|env| secrets.compare_check(environment, (endpoints, health), env));
            return Err(match origins {
                Some(Difference::Marked(o)) => Stale::SensitiveChanged(
                    env_address,
                    o.into_iter().collect::<Vec<_>>().join(", "),
                ),
                _ => Stale::GateChanged(env_address),
            });
        }
    }
    Ok(())
}

/// Give a plan read back from a file its sensitive values again, from the
/// configuration: every value a step runs with (a spec, a gate's endpoints
/// and check, a cut-over's target and verify) is taken from the
/// configuration, after checking that the configuration's, as shown, is
/// exactly what the plan holds. A marked value that changed since the plan
/// was made is refused, naming where it came from; anything else that
/// changed, as a change of settings.
pub fn rehydrate(
    planned: &mut Planned,
    config: &crate::config::model::Config,
) -> Result<(), String> {
    use super::document::StepKind;

    let secrets = Secrets::new(config);
    if secrets.is_empty() && !holds_markers(&planned.document) {
        return Ok(());
    }
    let mut execution = planned.document.clone();
    for step in &mut execution.steps {
        match &mut step.kind {
            StepKind::Environment {
                name, spec, action, ..
            } if *action != super::document::Action::Delete => {
                if let Some(env) = config.environments.get(name.as_str()) {
                    let fresh = super::specs::environment_spec(config, env);
                    let what = crate::addr::Address::environment(name);
                    changed(&what, secrets.compare_env_spec(spec, &fresh))?;
                    *spec = fresh;
                }
            }
            StepKind::HealthGate {
                environment,
                endpoints,
                health,
                release,
            } => {
                // check_gates compared the endpoints and the check.
                if let Some(env) = config.environments.get(environment.as_str()) {
                    if let Some(r) = release {
                        let what = crate::addr::Address::environment(environment);
                        let marks = secrets.release_marks(environment);
                        let fresh = serde_json::Value::String(env.release.clone());
                        changed(&what, marks.difference(&serde_json::json!(r), &fresh))?;
                        *r = env.release.clone();
                    }
                    *endpoints = env.endpoints.clone();
                    *health = env.health.clone();
                }
            }
            StepKind::Cutover {
                router,
                spec,
                from,
                to,
                target,
                verify,
                ..
            } => {
                router_values(config, &secrets, router, spec, from.as_deref(), to, target)?;
                if let (Some(v), Some(r)) = (verify, config.routers.get(router.as_str())) {
                    if let Some(fresh) = &r.verify {
                        if secrets.verify(router, fresh) != **v {
                            let what = crate::addr::Address::router(router);
                            let marks = secrets.verify_marks(router);
                            let saved = serde_json::to_value(&**v).unwrap_or_default();
                            let real = serde_json::to_value(fresh).unwrap_or_default();
                            if let Difference::Marked(_) = marks.difference(&saved, &real) {
                                changed(&what, marks.difference(&saved, &real))?;
                            }
                            return Err(format!(
                                "{what}: its verify check changed since the plan was made"
                            ));
                        }
                        **v = fresh.clone();
                    }
                }
            }
            StepKind::Preview {
                router,
                spec,
                from,
                to,
                target,
                ..
            } => router_values(config, &secrets, router, spec, from.as_deref(), to, target)?,
            // The same test as shown (check_same_changes compared them):
            // run with the real endpoints.
            StepKind::Test {
                target, endpoints, ..
            } => {
                if let Some(env) = config.environments.get(target.as_str()) {
                    *endpoints = env.endpoints.clone();
                }
            }
            StepKind::Drain {
                router,
                colour,
                spec: Some(spec),
                ..
            } => spec_of(config, &secrets, router, colour, spec)?,
            StepKind::Settle {
                environment,
                routers,
                ..
            } => {
                for r in routers {
                    spec_of(config, &secrets, &r.router, environment, &mut r.spec)?;
                }
            }
            StepKind::RemovePreview {
                router, from, spec, ..
            } => spec_of(config, &secrets, router, from, spec)?,
            _ => {}
        }
    }
    planned.execution = Some(execution);
    Ok(())
}

/// The spec and target a cut-over or preview runs with, from the
/// configuration, after checking them against the plan's.
fn router_values(
    config: &crate::config::model::Config,
    secrets: &Secrets,
    router: &str,
    spec: &mut cutover_provider::RouterSpec,
    from: Option<&str>,
    to: &str,
    target: &mut cutover_provider::Colour,
) -> Result<(), String> {
    let Some(fresh) = super::specs::step_spec(config, router, &[from, Some(to)]) else {
        return Ok(());
    };
    changed(
        &crate::addr::Address::router(router),
        secrets.compare_router_spec(spec, &fresh),
    )?;
    if let Some(colour) = fresh.colour(to) {
        if secrets.colour(colour) != *target {
            return Err(format!(
                "{}: the endpoints of {to} changed since the plan was made",
                crate::addr::Address::router(router)
            ));
        }
        *target = colour.clone();
    }
    *spec = fresh;
    Ok(())
}

/// The spec a drain reads its count with, or a preview is removed with
/// (the router's settings, as a switch, and `colour`), from the
/// configuration, after checking it against the plan's.
fn spec_of(
    config: &crate::config::model::Config,
    secrets: &Secrets,
    router: &str,
    colour: &str,
    spec: &mut cutover_provider::RouterSpec,
) -> Result<(), String> {
    if let Some(fresh) = super::specs::step_spec(config, router, &[Some(colour)]) {
        let what = crate::addr::Address::router(router);
        changed(&what, secrets.compare_router_spec(spec, &fresh))?;
        *spec = fresh;
    }
    Ok(())
}

/// The refusal of a value that changed since the plan was made.
fn changed(what: &crate::addr::Address, difference: Difference) -> Result<(), String> {
    match difference {
        Difference::Same => Ok(()),
        Difference::Clear => Err(format!(
            "{what}: its settings changed since the plan was made"
        )),
        Difference::Marked(origins) => Err(format!(
            "{what}: the sensitive value of {} changed since the plan was made",
            origins.into_iter().collect::<Vec<_>>().join(", ")
        )),
    }
}

/// Whether a plan holds any marker (a value made sensitive when it was made).
fn holds_markers(doc: &PlanDocument) -> bool {
    serde_json::to_string(doc).is_ok_and(|t| t.contains(super::sensitive::MARKER_PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan of one drain that reads its count with a secret in the
    /// router's settings, as saved (the secret a marker) and as configured
    /// with `secret` now.
    fn saved_drain(secret: &str) -> (Planned, crate::config::model::Config) {
        use crate::engine::testing::{colour, config};
        let router = "router \"public\" {\n  live = environment.green\n  drain = \"5s\"\n  drain_until_idle = true\n  exec {\n    read   = [\"read\", var.secret]\n    switch = [\"switch\"]\n  }\n}\n";
        let hcl = |value: &str| {
            format!(
                "variable \"secret\" {{\n  sensitive = true\n  default = \"{value}\"\n}}\n{}{}{router}",
                colour("blue", "1", 1),
                colour("green", "1", 1)
            )
        };
        let made = config(&hcl("s3cret"));
        let spec = crate::plan::specs::step_spec(&made, "public", &[Some("blue")]);
        let kind = super::super::document::StepKind::Drain {
            router: "public".into(),
            colour: "blue".into(),
            duration_ms: 5000,
            until_idle: true,
            counts_sessions: true,
            backend: Some("exec".into()),
            spec,
            floor: None,
        };
        let step = super::super::document::Step::new(kind);
        let shown = Secrets::new(&made).document(&crate::plan::document(
            None,
            vec![],
            vec![step],
            vec![],
            Default::default(),
        ));
        let planned = Planned {
            document: shown,
            records: vec![],
            hide_in_state: vec![],
            execution: None,
        };
        (planned, config(&hcl(secret)))
    }

    fn drain_settings(doc: &PlanDocument) -> String {
        match &doc.steps[0].kind {
            super::super::document::StepKind::Drain {
                spec: Some(spec), ..
            } => spec.settings().to_string(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_saved_drain_counts_with_the_real_settings_and_only_those_it_saw() {
        let (mut planned, config) = saved_drain("s3cret");
        let saved = drain_settings(&planned.document);
        assert!(
            !saved.contains("s3cret") && saved.contains("(sensitive:"),
            "{saved}"
        );
        rehydrate(&mut planned, &config).unwrap();
        let running = drain_settings(planned.execution.as_ref().unwrap());
        assert!(running.contains("s3cret"), "{running}");
        // A secret changed since the plan was made is refused.
        let (mut planned, config) = saved_drain("other");
        let e = rehydrate(&mut planned, &config).unwrap_err();
        assert!(
            e.contains("router.public: the sensitive value of var.secret changed"),
            "{e}"
        );
    }

    #[test]
    fn version_is_not_truncated() {
        // 2^32 + 1 is 1 once cast to a u32.
        let bytes = br#"{"saved_plan_version": 4294967297}"#;
        let err = from_bytes(Path::new("plan.out"), bytes).unwrap_err();
        assert!(
            matches!(
                err,
                SavedPlanError::Version {
                    found: u32::MAX,
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
