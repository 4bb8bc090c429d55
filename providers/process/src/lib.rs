//! cutover's `process { ... }` backend: environments that are local processes.
//!
//! For single-host deployments cutover itself starts each colour's process,
//! detached so that it outlives cutover, and records in the state which
//! process that is (pid and start time). Reading an environment checks that
//! exactly that process still runs; a process that died or whose pid was taken
//! by another process shows as drift. Deploying replaces the process, and
//! destroying stops it: SIGTERM to its process group, then SIGKILL after a
//! grace period.
//!
//! ```hcl
//! process {
//!   command = ["./demo-app", "--port", "9101", "--release", "1.4.1"]
//!   env     = { RUST_LOG = "info" }       # optional
//!   log     = "logs/blue.log"             # optional, default .cutover/logs/<name>.log
//!   grace   = "10s"                       # optional, SIGTERM -> SIGKILL
//!   workdir = "app"                       # optional, default the configuration directory
//! }
//! ```
#![deny(missing_docs)]

mod lifecycle;
mod procfs;
mod settings;

use std::path::PathBuf;
use std::time::Duration;

use cutover_provider::{
    Deployed, EnvironmentDrift, EnvironmentDriftKind, EnvironmentProvider, EnvironmentSpec,
    LiveEnvironment, ProviderError,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use procfs::{is_alive, pid_status, PidStatus};

use lifecycle::Context;
use settings::Settings;

/// The `process { ... }` environment backend.
#[derive(Debug, Clone, Copy, Default)]
pub struct Process;

/// What the state keeps about a process cutover started (the `private` value).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    pid: i32,
    /// Field 22 of `/proc/PID/stat`: with the pid, the process's identity.
    start_time: u64,
    command: Vec<String>,
    release: String,
    log: PathBuf,
}

impl Record {
    fn identity(&self) -> String {
        format!("{}:{}", self.pid, self.start_time)
    }

    /// The record in `private`, or `None` when cutover never started anything.
    fn from_private(private: &Value) -> Result<Option<Record>, ProviderError> {
        if private.is_null() {
            return Ok(None);
        }
        serde_json::from_value(private.clone())
            .map(Some)
            .map_err(|e| {
                ProviderError::failed(format!(
                    "the state's record of this process is unreadable ({e}); \
                 remove the environment from the state and deploy again"
                ))
            })
    }
}

impl Process {
    fn settings(spec: &EnvironmentSpec) -> Result<Settings, ProviderError> {
        Settings::parse(&spec.settings, &spec.name, &spec.workdir)
    }
}

/// Run blocking work (sleeps, `/proc` polling) off the async runtime.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ProviderError> + Send + 'static,
) -> Result<T, ProviderError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ProviderError::failed("process backend task failed").with_source(e))?
}

#[async_trait::async_trait]
impl EnvironmentProvider for Process {
    fn validate(&self, settings: &Value) -> Result<(), ProviderError> {
        Settings::parse(settings, "validate", std::path::Path::new(".")).map(drop)
    }

    async fn read(
        &self,
        _spec: &EnvironmentSpec,
        private: &Value,
    ) -> Result<LiveEnvironment, ProviderError> {
        let Some(record) = Record::from_private(private)? else {
            return Ok(LiveEnvironment::default());
        };
        let mut live = LiveEnvironment {
            private: private.clone(),
            ..LiveEnvironment::default()
        };
        match pid_status(record.pid) {
            PidStatus::Running { start_time } if start_time == record.start_time => {
                live.exists = true;
                live.release = Some(record.release.clone());
                live.identity = Some(record.identity());
            }
            PidStatus::Running { .. } => live.drift.push(EnvironmentDrift::new(
                EnvironmentDriftKind::Replaced,
                format!("process {} was replaced by another process", record.pid),
            )),
            PidStatus::Gone => live.drift.push(EnvironmentDrift::new(
                EnvironmentDriftKind::Gone,
                format!(
                    "process {} is gone (its log: {})",
                    record.pid,
                    record.log.display()
                ),
            )),
        }
        Ok(live)
    }

    async fn deploy(
        &self,
        spec: &EnvironmentSpec,
        private: &Value,
    ) -> Result<Deployed, ProviderError> {
        let settings = Self::settings(spec)?;
        let old = Record::from_private(private)?;
        let spec = spec.clone();
        blocking(move || {
            if let Some(old) = old {
                lifecycle::stop(old.pid, old.start_time, settings.grace)?;
            }
            lifecycle::stop_unrecorded(&spec.workdir, &spec.name, None, settings.grace)?;
            let ctx = Context {
                environment: &spec.name,
                release: &spec.release,
                base: &spec.workdir,
                spec: &spec,
            };
            let started = lifecycle::start(&settings, &ctx)?;
            // The record goes into the state: sensitive values as markers.
            let record = Record {
                pid: started.pid,
                start_time: started.start_time,
                command: lifecycle::shown_command(&spec, &settings.command),
                release: spec.sensitive.release(&spec.release).to_owned(),
                log: settings.log,
            };
            Ok(Deployed {
                identity: Some(record.identity()),
                private: serde_json::to_value(&record).expect("a record serializes"),
            })
        })
        .await
    }

    async fn destroy(&self, spec: &EnvironmentSpec, private: &Value) -> Result<(), ProviderError> {
        let Some(record) = Record::from_private(private)? else {
            return Ok(());
        };
        // A destroy must work even when the block's settings have become
        // invalid; only the grace period is taken from them.
        let grace = Self::settings(spec)
            .map(|s| s.grace)
            .unwrap_or(Duration::from_secs(10));
        let (workdir, name) = (spec.workdir.clone(), spec.name.clone());
        blocking(move || {
            lifecycle::stop(record.pid, record.start_time, grace)?;
            lifecycle::stop_unrecorded(&workdir, &name, None, grace)
        })
        .await
    }
}

#[cfg(test)]
mod tests;
