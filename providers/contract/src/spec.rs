//! What the core hands a provider: the description of one environment or
//! one router as the configuration wants it, and what a deploy gives back.

use std::path::{Path, PathBuf};

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
