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
    /// The text of the sensitive values among the above: what the provider
    /// writes itself (a log line, an error) must pass through
    /// [`Sensitive::mask`]. Never serialized.
    #[serde(skip)]
    pub sensitive: Sensitive,
}

/// The text of an environment's sensitive values (a token in its command,
/// a release computed from a secret), which a provider must not write in
/// clear. The core hides them in what it shows and stores; what a provider
/// writes itself (a process's log header, a message) it hides with
/// [`Sensitive::mask`].
///
/// Two are always equal: what must be hidden is not part of what a spec
/// asks for, so specs compare as before.
#[derive(Debug, Clone, Default)]
pub struct Sensitive(Arc<[(String, String)]>);

impl Sensitive {
    /// Each sensitive text with the marker that stands for it (the core
    /// makes them: the same markers as in plans and the state, so that a
    /// release a provider keeps and reports back, masked, reads as the one
    /// the state holds).
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut pairs: Vec<(String, String)> =
            pairs.into_iter().filter(|(t, _)| !t.is_empty()).collect();
        // Longest first, so that a secret holding another is replaced whole.
        pairs.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        pairs.dedup();
        Sensitive(pairs.into())
    }

    /// Whether there is nothing to hide.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `text` with each sensitive text replaced by its marker.
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (secret, marker) in self.0.iter() {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), marker);
            }
        }
        out
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
