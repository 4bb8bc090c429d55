//! What the core hands a provider: the description of one environment or
//! one router as the configuration wants it, and what a deploy gives back.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Colour, Colours};

/// What cutover wants of one environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentSpec {
    /// The environment's name (its colour), e.g. `green`.
    pub name: String,
    /// The release it should run.
    pub release: String,
    /// The addresses (`host:port`) it serves on.
    pub endpoints: Vec<String>,
    /// The evaluated body of the backend block (`process {}`, `exec {}`).
    pub settings: Value,
    /// The directory relative paths in the settings are resolved against
    /// (the configuration directory).
    pub workdir: PathBuf,
    /// The release and settings as the core shows them, sensitive parts as
    /// markers: what the provider writes itself (a log line, its record in
    /// the state) must be built from these. Never serialized.
    #[serde(skip)]
    pub sensitive: Sensitive,
}

/// An environment spec's release and settings as the core shows and stores
/// them: each sensitive part (a token in a command, a release computed from
/// a secret) replaced by its marker, `(sensitive:1a2b3c4d5e6f)`, and nothing
/// else. A provider builds what it writes itself from these, never from the
/// real values: a process's log header, its record in the state (the core
/// cannot tell which parts of a provider's private data came from where).
///
/// Two are always equal: how a spec is shown is not part of what it asks
/// for, so specs compare as before.
#[derive(Debug, Clone, Default)]
pub struct Sensitive(Option<Arc<Shown>>);

#[derive(Debug)]
struct Shown {
    release: String,
    settings: Value,
}

impl Sensitive {
    /// The release and settings as shown (made by the core).
    pub fn new(release: String, settings: Value) -> Self {
        Sensitive(Some(Arc::new(Shown { release, settings })))
    }

    /// Whether nothing is sensitive (the real values are what is shown).
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The release as shown, given the real one.
    pub fn release<'a>(&'a self, real: &'a str) -> &'a str {
        self.0.as_ref().map_or(real, |s| &s.release)
    }

    /// The settings as shown, given the real ones.
    pub fn settings<'a>(&'a self, real: &'a Value) -> &'a Value {
        self.0.as_ref().map_or(real, |s| &s.settings)
    }
}

impl PartialEq for Sensitive {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// The outcome of deploying an environment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Deployed {
    /// The identity of what now runs.
    pub identity: Option<String>,
    /// Provider-private data to keep in the state.
    pub private: Value,
}

/// What cutover wants of one router.
///
/// Its fields are private so that its colours are always a [`Colours`]
/// (sorted, shared): build it with [`RouterSpec::new`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouterSpec {
    name: String,
    colours: Colours,
    settings: Value,
    workdir: PathBuf,
}

impl RouterSpec {
    /// The spec of router `name`: the colours it may send traffic to, the
    /// evaluated body of its backend block, and the directory relative paths
    /// in the settings are resolved against.
    pub fn new(
        name: impl Into<String>,
        colours: Colours,
        settings: Value,
        workdir: impl Into<PathBuf>,
    ) -> Self {
        RouterSpec {
            name: name.into(),
            colours,
            settings,
            workdir: workdir.into(),
        }
    }

    /// The router's name, e.g. `public`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every colour the router may send traffic to, so that a provider can
    /// translate what it reads back into a colour name. Shared by every
    /// router of a refresh: look a colour up ([`Colours::get`],
    /// [`Colours::serving_on`]), never scan it per router.
    pub fn colours(&self) -> &Colours {
        &self.colours
    }

    /// The colour named `name` (a binary search of [`RouterSpec::colours`]).
    pub fn colour(&self, name: &str) -> Option<&Colour> {
        self.colours.get(name)
    }

    /// The evaluated body of the backend block (`haproxy {}`, `exec {}`).
    pub fn settings(&self) -> &Value {
        &self.settings
    }

    /// The directory relative paths in the settings are resolved against
    /// (the configuration directory).
    pub fn workdir(&self) -> &Path {
        &self.workdir
    }
}
