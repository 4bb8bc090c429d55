//! Sensitive values as people see them and as cutover keeps them.
//!
//! The config layer marks values ([`crate::config::marks`]); [`Secrets`]
//! knows, for every environment and router, which of its parts are marked,
//! and replaces exactly those with markers — `(sensitive:1a2b3c4d5e6f)`,
//! the first 12 hex digits of the value's SHA-256, so a rotated secret still
//! shows as a change — in plan documents, state records and reports. What is
//! not marked is never replaced, whatever text it shares with a secret. The
//! engine keeps the real values in memory only, to run the steps.
//!
//! Text that cutover did not build from values carries no marks: a
//! provider's error, a command's output echoed in it, a health probe's
//! error. That text alone is searched for the text of every marked value
//! ([`Secrets::mask`]), as the last line of defence (values shorter than
//! [`MIN_SECRET_LEN`] characters are not searched for: they would match
//! everywhere).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use cutover_provider::{Colour, Colours, EnvironmentSpec, RouterSpec};
use serde_json::{json, Value};

pub use crate::config::marks::{is_marker, marker, Difference, Marks, MARKER_PREFIX};
use crate::config::model::{Config, EnvironmentMarks, Health};
use crate::state::journal::Entry;
use crate::state::model::{EnvironmentState, State};

use super::document::{AttributeChange, PlanDocument, StepKind};

/// Shorter values are not searched for in free text (see the module
/// documentation).
pub const MIN_SECRET_LEN: usize = 4;

/// Which parts of the configuration are sensitive, and how to show them.
/// Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Secrets(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    /// The environments with anything marked.
    environments: BTreeMap<String, EnvSecrets>,
    /// The routers with anything marked.
    routers: BTreeMap<String, RouterSecrets>,
    /// The text of every marked value, longest first (for free text only).
    texts: Vec<String>,
}

#[derive(Debug, Default)]
struct EnvSecrets {
    marks: EnvironmentMarks,
    settings: Marks,
}

#[derive(Debug, Default)]
struct RouterSecrets {
    settings: Marks,
    verify: Marks,
}

static CLEAR: Marks = Marks::Clear;

impl Secrets {
    /// The secrets of `config`.
    pub fn new(config: &Config) -> Secrets {
        let mut inner = Inner::default();
        let mut texts = BTreeSet::new();
        for (name, env) in &config.environments {
            let settings = env.backend.as_ref().map(|b| (&b.marks, &b.body));
            let settings_clear = settings.is_none_or(|(m, _)| m.is_clear());
            if env.marks.is_clear() && settings_clear {
                continue;
            }
            env.marks
                .release
                .texts(&Value::String(env.release.clone()), &mut texts);
            env.marks.endpoints.texts(&json!(env.endpoints), &mut texts);
            env.marks.health.texts(&json!(env.health), &mut texts);
            if let Some((m, body)) = settings {
                m.texts(body, &mut texts);
            }
            inner.environments.insert(
                name.clone(),
                EnvSecrets {
                    marks: env.marks.clone(),
                    settings: settings.map(|(m, _)| m.clone()).unwrap_or_default(),
                },
            );
        }
        for (name, router) in &config.routers {
            let (settings, verify) = (&router.backend.marks, &router.verify_marks);
            if settings.is_clear() && verify.is_clear() {
                continue;
            }
            settings.texts(&router.backend.body, &mut texts);
            if let Some(v) = &router.verify {
                verify.texts(&json!(v), &mut texts);
            }
            inner.routers.insert(
                name.clone(),
                RouterSecrets {
                    settings: settings.clone(),
                    verify: verify.clone(),
                },
            );
        }
        for out in config.outputs.values() {
            out.marks.texts(&out.value, &mut texts);
        }
        for var in config.variables.values().filter(|v| v.sensitive) {
            Marks::sensitive("").texts(&var.value, &mut texts);
        }
        // A text that cutover shows anyway, unmarked (a colour's name, a
        // port in an endpoint, a path), is not searched for: hiding it in a
        // message would hide what is not secret, and protect nothing.
        let shown = if texts.is_empty() {
            Vec::new()
        } else {
            clear_texts(config)
        };
        let mut texts: Vec<String> = texts
            .into_iter()
            .filter(|t| t.chars().count() >= MIN_SECRET_LEN && !is_marker(t))
            .filter(|t| !shown.iter().any(|s| s.contains(t.as_str())))
            .collect();
        texts.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        inner.texts = texts;
        Secrets(Arc::new(inner))
    }

    /// Whether nothing is sensitive.
    pub fn is_empty(&self) -> bool {
        self.0.environments.is_empty() && self.0.routers.is_empty() && self.0.texts.is_empty()
    }

    /// Free text (an error, a command's output) with the text of every
    /// marked value replaced by its marker.
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.0.texts {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), &marker(secret));
            }
        }
        out
    }

    fn env(&self, name: &str) -> Option<&EnvSecrets> {
        self.0.environments.get(name)
    }

    /// The marks of environment `name`'s release.
    pub fn release_marks(&self, name: &str) -> &Marks {
        self.env(name).map_or(&CLEAR, |e| &e.marks.release)
    }

    /// Environment `name`'s release as shown.
    pub fn release(&self, name: &str, release: &str) -> String {
        self.release_marks(name).redact_text(release)
    }

    /// Environment `name`'s endpoints as shown.
    pub fn endpoints(&self, name: &str, endpoints: &[String]) -> Vec<String> {
        self.shown_endpoints(name, endpoints).into_owned()
    }

    /// [`Secrets::endpoints`], borrowed when nothing is marked.
    pub fn shown_endpoints<'a>(
        &self,
        name: &str,
        endpoints: &'a [String],
    ) -> std::borrow::Cow<'a, [String]> {
        match self.env(name) {
            Some(e) if !e.marks.endpoints.is_clear() => {
                std::borrow::Cow::Owned(strings(&e.marks.endpoints, endpoints))
            }
            _ => std::borrow::Cow::Borrowed(endpoints),
        }
    }

    /// Environment `name`'s health check as shown.
    pub fn health(&self, name: &str, health: &Health) -> Health {
        self.env(name)
            .map_or_else(|| health.clone(), |e| shown_health(&e.marks.health, health))
    }

    /// Router `name`'s `verify {}` check as shown.
    pub fn verify(&self, name: &str, verify: &Health) -> Health {
        self.0
            .routers
            .get(name)
            .map_or_else(|| verify.clone(), |r| shown_health(&r.verify, verify))
    }

    /// The marks of environment `name`'s backend settings.
    pub fn settings_marks(&self, name: &str) -> &Marks {
        self.env(name).map_or(&CLEAR, |e| &e.settings)
    }

    /// Environment `name`'s backend settings as shown.
    pub fn settings(&self, name: &str, settings: &Value) -> Value {
        self.settings_marks(name).redact(settings)
    }

    /// [`Secrets::settings`], borrowed when nothing is marked.
    pub fn shown_settings<'a>(
        &self,
        name: &str,
        settings: &'a Value,
    ) -> std::borrow::Cow<'a, Value> {
        match self.settings_marks(name) {
            Marks::Clear => std::borrow::Cow::Borrowed(settings),
            marks => std::borrow::Cow::Owned(marks.redact(settings)),
        }
    }

    /// The marks of an environment spec, shaped as its JSON.
    fn spec_marks(&self, name: &str) -> Marks {
        match self.env(name) {
            None => Marks::Clear,
            Some(e) => Marks::fields([
                ("release".to_owned(), e.marks.release.clone()),
                ("endpoints".to_owned(), e.marks.endpoints.clone()),
                ("settings".to_owned(), e.settings.clone()),
            ]),
        }
    }

    /// An environment spec as shown.
    pub fn env_spec(&self, spec: &EnvironmentSpec) -> EnvironmentSpec {
        if self.env(&spec.name).is_none() {
            return spec.clone();
        }
        EnvironmentSpec {
            name: spec.name.clone(),
            release: self.release(&spec.name, &spec.release),
            endpoints: self.endpoints(&spec.name, &spec.endpoints),
            settings: self.settings(&spec.name, &spec.settings),
            workdir: spec.workdir.clone(),
            sensitive: Default::default(),
        }
    }

    /// A colour as shown.
    pub fn colour(&self, colour: &Colour) -> Colour {
        Colour {
            name: colour.name.clone(),
            endpoints: self.endpoints(&colour.name, &colour.endpoints),
        }
    }

    /// A router spec as shown.
    pub fn router_spec(&self, spec: &RouterSpec) -> RouterSpec {
        let router = self.0.routers.get(spec.name());
        let colours_clear = spec.colours().iter().all(|c| self.env(&c.name).is_none());
        if router.is_none() && colours_clear {
            return spec.clone();
        }
        let colours = if colours_clear {
            spec.colours().clone()
        } else {
            Colours::new(spec.colours().iter().map(|c| self.colour(c)).collect())
        };
        let settings = router.map_or_else(
            || spec.settings().clone(),
            |r| r.settings.redact(spec.settings()),
        );
        RouterSpec::new(spec.name(), colours, settings, spec.workdir())
    }

    /// How a spec saved in a plan compares with the configuration's now.
    pub fn compare_env_spec(&self, saved: &EnvironmentSpec, fresh: &EnvironmentSpec) -> Difference {
        let marks = self.spec_marks(&fresh.name);
        let saved = serde_json::to_value(saved).unwrap_or_default();
        let fresh = serde_json::to_value(fresh).unwrap_or_default();
        marks.difference(&saved, &fresh)
    }

    /// How a router spec saved in a plan compares with the configuration's
    /// now (its settings, and the endpoints of its colours).
    pub fn compare_router_spec(&self, saved: &RouterSpec, fresh: &RouterSpec) -> Difference {
        let colours = fresh
            .colours()
            .iter()
            .map(|c| {
                let endpoints = self
                    .env(&c.name)
                    .map_or(Marks::Clear, |e| e.marks.endpoints.clone());
                Marks::fields([("endpoints".to_owned(), endpoints)])
            })
            .collect();
        let settings = self
            .0
            .routers
            .get(fresh.name())
            .map_or(Marks::Clear, |r| r.settings.clone());
        let marks = Marks::fields([
            ("colours".to_owned(), Marks::items(colours)),
            ("settings".to_owned(), settings),
        ]);
        let saved = serde_json::to_value(saved).unwrap_or_default();
        let fresh = serde_json::to_value(fresh).unwrap_or_default();
        marks.difference(&saved, &fresh)
    }

    /// The marks of router `name`'s `verify {}` check.
    pub fn verify_marks(&self, name: &str) -> &Marks {
        self.0.routers.get(name).map_or(&CLEAR, |r| &r.verify)
    }

    /// How a gate's check saved in a plan (endpoints, check) compares with
    /// environment `name`'s in the configuration now.
    pub fn compare_check(
        &self,
        name: &str,
        (endpoints, health): (&[String], &Health),
        env: &crate::config::model::Environment,
    ) -> Difference {
        let Some(e) = self.env(name) else {
            return Difference::Clear;
        };
        let marks = Marks::fields([
            ("endpoints".to_owned(), e.marks.endpoints.clone()),
            ("health".to_owned(), e.marks.health.clone()),
        ]);
        let saved = json!({ "endpoints": endpoints, "health": health });
        let fresh = json!({ "endpoints": env.endpoints, "health": env.health });
        marks.difference(&saved, &fresh)
    }

    /// A step as shown.
    pub fn step(&self, kind: &StepKind) -> StepKind {
        let mut kind = kind.clone();
        match &mut kind {
            StepKind::Environment {
                name,
                spec,
                changes,
                ..
            } => {
                *spec = self.env_spec(spec);
                for change in changes {
                    self.change(name, change);
                }
            }
            StepKind::HealthGate {
                environment,
                endpoints,
                health,
                release,
            } => {
                *endpoints = self.endpoints(environment, endpoints);
                *health = self.health(environment, health);
                if let Some(r) = release {
                    *r = self.release(environment, r);
                }
            }
            StepKind::Cutover {
                router,
                from,
                to,
                from_release,
                to_release,
                spec,
                target,
                verify,
                ..
            } => {
                if let (Some(f), Some(r)) = (from.as_deref(), from_release.as_mut()) {
                    *r = self.release(f, r);
                }
                if let Some(r) = to_release {
                    *r = self.release(to, r);
                }
                *spec = self.router_spec(spec);
                *target = self.colour(target);
                if let Some(v) = verify {
                    **v = self.verify(router, v);
                }
            }
            StepKind::Preview { spec, target, .. } => {
                *spec = self.router_spec(spec);
                *target = self.colour(target);
            }
            StepKind::RemovePreview { spec, .. } => *spec = self.router_spec(spec),
            StepKind::Test {
                target, endpoints, ..
            } => *endpoints = self.endpoints(target, endpoints),
            StepKind::Drain { spec, .. } => {
                if let Some(spec) = spec {
                    *spec = self.router_spec(spec);
                }
            }
            StepKind::Settle { routers, .. } => {
                for r in routers {
                    r.spec = self.router_spec(&r.spec);
                }
            }
            StepKind::ForgetRouter { .. }
            | StepKind::Analysis { .. }
            | StepKind::Approval { .. } => {}
        }
        kind
    }

    /// The attribute change of environment `env` as shown: marked values
    /// replaced, and the change flagged sensitive.
    fn change(&self, env: &str, change: &mut AttributeChange) {
        let marks = match change.name.split_once('.') {
            None if change.name == "release" => self.release_marks(env).clone(),
            None if change.name == "endpoints" => self
                .env(env)
                .map_or(Marks::Clear, |e| e.marks.endpoints.clone()),
            Some((_, key)) => self.settings_marks(env).attr(key),
            None => Marks::Clear,
        };
        if marks.is_clear() {
            return;
        }
        change.sensitive = true;
        for value in [&mut change.before, &mut change.after]
            .into_iter()
            .flatten()
        {
            *value = marks.redact(value);
        }
    }

    /// A plan document as shown.
    pub fn document(&self, doc: &PlanDocument) -> PlanDocument {
        if self.is_empty() {
            return doc.clone();
        }
        let mut out = doc.clone();
        for step in &mut out.steps {
            step.kind = self.step(&step.kind);
        }
        for hint in &mut out.rollback {
            if let Some(r) = &mut hint.release {
                *r = self.release(&hint.to, r);
            }
        }
        out
    }

    /// A record for the state, as kept: marked values replaced.
    pub fn entry(&self, entry: Entry) -> Entry {
        match entry {
            Entry::Environment(name, Some(rec)) if !self.is_empty() => {
                let rec = self.record(&name, rec);
                Entry::Environment(name, Some(rec))
            }
            other => other,
        }
    }

    fn record(&self, name: &str, rec: EnvironmentState) -> EnvironmentState {
        EnvironmentState {
            release: self.release(name, &rec.release),
            endpoints: self.endpoints(name, &rec.endpoints),
            settings: self.settings(name, &rec.settings),
            // A provider's own data carries no marks: its text is masked
            // (a record written before a value was marked holds it in clear).
            private: self.mask_json(&rec.private),
            ..rec
        }
    }

    /// Every string in `value` masked as free text.
    fn mask_json(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.mask(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.mask_json(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.mask_json(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// The live world as read, as shown: a sensitive release as its marker
    /// (as the state keeps it, so that the two compare), what providers
    /// noticed masked.
    pub fn live(&self, live: &mut super::Live) {
        if self.is_empty() {
            return;
        }
        for (name, env) in &mut live.environments {
            if let Some(r) = &mut env.release {
                *r = self.release(name, r);
            }
            for d in &mut env.drift {
                d.message = self.mask(&d.message);
            }
        }
        for router in live.routers.values_mut() {
            if let Some(raw) = &mut router.raw {
                *raw = self.mask(raw);
            }
            for d in &mut router.drift {
                d.message = self.mask(&d.message);
            }
            // A fleet's instance is named by its address when it has no
            // `name`, which may be sensitive.
            for instance in &mut router.instances {
                instance.name = self.mask(&instance.name);
                if let Some(raw) = &mut instance.raw {
                    *raw = self.mask(raw);
                }
            }
        }
    }

    /// The records of `state` that hold in clear a value the configuration
    /// now marks sensitive (recorded before it was marked), as they are to
    /// be kept instead.
    pub fn hidden_records(&self, state: &State) -> Vec<(String, EnvironmentState)> {
        if self.is_empty() {
            return Vec::new();
        }
        state
            .environments
            .iter()
            .map(|(name, rec)| (name, rec, self.record(name, rec.clone())))
            .filter(|(_, rec, shown)| shown != *rec)
            .map(|(name, _, shown)| (name.clone(), shown))
            .collect()
    }

    /// The names of [`Secrets::hidden_records`].
    pub fn recorded_in_clear(&self, state: Option<&State>) -> Vec<String> {
        state.map_or_else(Vec::new, |s| {
            self.hidden_records(s)
                .into_iter()
                .map(|(name, _)| name)
                .collect()
        })
    }

    /// A state made from the configuration and the live world (by
    /// `--refresh-only`), as kept. Values already shown stay as they are.
    pub fn state(&self, state: &State) -> State {
        if self.is_empty() {
            return state.clone();
        }
        let mut out = state.clone();
        for (name, rec) in &mut out.environments {
            *rec = self.record(name, rec.clone());
        }
        out
    }
}

/// The text of every value of `config` shown as it is: names, and the
/// unmarked parts of releases, endpoints, checks, settings and outputs.
fn clear_texts(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for (name, env) in &config.environments {
        out.push(name.clone());
        let m = &env.marks;
        m.release
            .clear_texts(&Value::String(env.release.clone()), &mut out);
        m.endpoints.clear_texts(&json!(env.endpoints), &mut out);
        m.health.clear_texts(&json!(env.health), &mut out);
        if let Some(b) = &env.backend {
            b.marks.clear_texts(&b.body, &mut out);
        }
    }
    for (name, router) in &config.routers {
        out.push(name.clone());
        router
            .backend
            .marks
            .clear_texts(&router.backend.body, &mut out);
        if let Some(v) = &router.verify {
            router.verify_marks.clear_texts(&json!(v), &mut out);
        }
    }
    for out_value in config.outputs.values() {
        out_value.marks.clear_texts(&out_value.value, &mut out);
    }
    out
}

/// A list of strings with marks, as shown.
fn strings(marks: &Marks, items: &[String]) -> Vec<String> {
    match marks.redact(&json!(items)) {
        Value::Array(shown) => shown
            .into_iter()
            .map(|v| match v {
                Value::String(s) => s,
                other => other.to_string(),
            })
            .collect(),
        // A whole list marked is one marker: keep one item per endpoint so
        // that the count still shows, each the list's marker.
        Value::String(m) => vec![m; items.len()],
        other => vec![other.to_string()],
    }
}

fn shown_health(marks: &Marks, health: &Health) -> Health {
    if marks.is_clear() {
        return health.clone();
    }
    let mut h = health.clone();
    h.path = marks.attr("path").redact_text(&h.path);
    if let Some(u) = &mut h.url {
        *u = marks.attr("url").redact_text(u);
    }
    if let Some(p) = &mut h.release_path {
        *p = marks.attr("release_path").redact_text(p);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load_str, VarInputs};

    fn secrets(text: &str, vars: &[(&str, &str)]) -> (Config, Secrets) {
        let inputs = VarInputs {
            cli: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..VarInputs::default()
        };
        let config = load_str(text, &inputs)
            .unwrap_or_else(|e| panic!("{e}"))
            .config;
        let s = Secrets::new(&config);
        (config, s)
    }

    const TWO: &str = r#"
variable "token" {
  sensitive = true
}
environment "blue" {
  release  = "1.0"
  endpoint = "127.0.0.1:9101"
  process {
    command = ["./app", "--port", "9101", "--token", var.token]
    env     = { API_TOKEN = var.token, COLOUR = "blue" }
  }
}
environment "green" {
  release  = "1.0"
  endpoint = "127.0.0.1:9102"
  process {
    command = ["./app", "--port", "9102"]
  }
}
"#;

    #[test]
    fn only_the_marked_element_and_key_are_replaced() {
        let (config, s) = secrets(TWO, &[("token", "9102")]);
        let blue = crate::plan::specs::environment_spec(&config, &config.environments["blue"]);
        let shown = s.env_spec(&blue);
        assert_eq!(
            shown.settings["command"],
            json!(["./app", "--port", "9101", "--token", marker("9102")])
        );
        assert_eq!(
            shown.settings["env"],
            json!({ "API_TOKEN": marker("9102"), "COLOUR": "blue" })
        );
        assert_eq!(shown.release, "1.0");
        assert_eq!(shown.endpoints, ["127.0.0.1:9101"]);
        // Green shares the secret's text (its port) but not the secret.
        let green = crate::plan::specs::environment_spec(&config, &config.environments["green"]);
        assert_eq!(s.env_spec(&green), green);
    }

    #[test]
    fn a_saved_spec_whose_secret_changed_names_the_variable() {
        let (config, s) = secrets(TWO, &[("token", "old-secret")]);
        let saved = s.env_spec(&crate::plan::specs::environment_spec(
            &config,
            &config.environments["blue"],
        ));
        let (config, s) = secrets(TWO, &[("token", "new-secret")]);
        let fresh = crate::plan::specs::environment_spec(&config, &config.environments["blue"]);
        assert_eq!(
            s.compare_env_spec(&saved, &fresh),
            Difference::Marked(BTreeSet::from(["var.token".to_owned()]))
        );
        let (config, s) = secrets(TWO, &[("token", "old-secret")]);
        let fresh = crate::plan::specs::environment_spec(&config, &config.environments["blue"]);
        assert_eq!(s.compare_env_spec(&saved, &fresh), Difference::Same);
        let mut changed = saved.clone();
        changed.release = "2.0".into();
        assert_eq!(s.compare_env_spec(&changed, &fresh), Difference::Clear);
    }

    #[test]
    fn free_text_is_masked_by_the_marked_texts_only() {
        let (_, s) = secrets(TWO, &[("token", "hunter22")]);
        assert_eq!(
            s.mask("./app --token hunter22 exited 1 on 127.0.0.1:9102"),
            format!(
                "./app --token {} exited 1 on 127.0.0.1:9102",
                marker("hunter22")
            )
        );
    }
}
