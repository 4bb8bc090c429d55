//! `exec { ... }` for an environment: deploy, read and destroy are the
//! operator's commands (systemd, Docker, kubectl, a cloud CLI).
//!
//! The provider only builds each command's JSON input, runs it through
//! [`crate::run`], and maps the JSON reply onto the contract's types.

use std::collections::BTreeMap;

use cutover_provider::{
    Deployed, EnvironmentDrift, EnvironmentDriftKind, EnvironmentProvider, EnvironmentSpec,
    ErrorKind, LiveEnvironment, ProviderError,
};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::run::Invocation;
use crate::settings::EnvironmentSettings;
use crate::PROTOCOL;

/// The `exec { ... }` environment backend.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExecEnvironment;

/// The reply to `deploy`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeployReply {
    identity: Option<String>,
    #[serde(default)]
    private: Value,
}

/// The reply to `read`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadReply {
    exists: bool,
    release: Option<String>,
    identity: Option<String>,
    /// Absent: the stored private data stays as it is.
    private: Option<Value>,
    #[serde(default)]
    drift: Vec<ReportedDrift>,
}

/// One entry of `drift` in the reply to `read`: a sentence (a change of
/// kind `changed`), or `{"kind": "gone" | "replaced" | "changed", "message": ...}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ReportedDrift {
    Sentence(String),
    Typed(EnvironmentDrift),
}

impl From<ReportedDrift> for EnvironmentDrift {
    fn from(reported: ReportedDrift) -> Self {
        match reported {
            ReportedDrift::Sentence(message) => {
                EnvironmentDrift::new(EnvironmentDriftKind::Changed, message)
            }
            ReportedDrift::Typed(drift) => drift,
        }
    }
}

/// The reply to `destroy`: an object with no defined fields.
#[derive(Debug, Deserialize)]
struct DestroyReply {}

/// Every environment reply decoded from `stdout` (the fuzz target's
/// entry, `crate::fuzzing`), drift turned into what the engine gets.
pub(crate) fn decode_replies(invocation: &Invocation<'_>, stdout: &[u8]) {
    let _ = invocation
        .decode::<DeployReply>(stdout)
        .map_err(|e| e.to_string());
    let _ = invocation
        .decode::<DestroyReply>(stdout)
        .map_err(|e| e.to_string());
    match invocation.decode::<ReadReply>(stdout) {
        Ok(read) => {
            let drift: Vec<EnvironmentDrift> = read.drift.into_iter().map(Into::into).collect();
            let _ = format!("{drift:?} {:?} {:?}", read.release, read.identity);
        }
        Err(e) => drop(e.to_string()),
    }
}

/// Run `action` of environment `spec` with `command`.
async fn run<T: serde::de::DeserializeOwned>(
    spec: &EnvironmentSpec,
    settings: &EnvironmentSettings,
    timeout: std::time::Duration,
    command: &[String],
    action: &str,
    private: &Value,
) -> Result<T, ProviderError> {
    let mut env: BTreeMap<String, String> = settings.env.clone();
    env.insert("CUTOVER_ACTION".into(), action.into());
    env.insert("CUTOVER_ENVIRONMENT".into(), spec.name.clone());
    env.insert("CUTOVER_RELEASE".into(), spec.release.clone());
    env.insert("CUTOVER_ENDPOINTS".into(), spec.endpoints.join(" "));
    let invocation = Invocation {
        command,
        workdir: &spec.workdir,
        env,
        timeout,
        purpose: format!("{action} of environment \"{}\"", spec.name),
        exit_means: ErrorKind::Failed,
    };
    let input = json!({
        "protocol": PROTOCOL,
        "action": action,
        "environment": {
            "name": spec.name,
            "release": spec.release,
            "endpoints": spec.endpoints,
        },
        "settings": spec.settings,
        "private": private,
    });
    invocation.run(&input).await
}

#[async_trait::async_trait]
impl EnvironmentProvider for ExecEnvironment {
    fn validate(&self, settings: &Value) -> Result<(), ProviderError> {
        EnvironmentSettings::parse(settings).map(drop)
    }

    async fn read(
        &self,
        spec: &EnvironmentSpec,
        private: &Value,
    ) -> Result<LiveEnvironment, ProviderError> {
        let (settings, timeout) = EnvironmentSettings::parse(&spec.settings)?;
        let reply: ReadReply =
            run(spec, &settings, timeout, &settings.read, "read", private).await?;
        Ok(LiveEnvironment {
            exists: reply.exists,
            release: reply.release,
            identity: reply.identity,
            drift: reply.drift.into_iter().map(Into::into).collect(),
            private: reply.private.unwrap_or_else(|| private.clone()),
        })
    }

    async fn deploy(
        &self,
        spec: &EnvironmentSpec,
        private: &Value,
    ) -> Result<Deployed, ProviderError> {
        let (settings, timeout) = EnvironmentSettings::parse(&spec.settings)?;
        let reply: DeployReply = run(
            spec,
            &settings,
            timeout,
            &settings.deploy,
            "deploy",
            private,
        )
        .await?;
        Ok(Deployed {
            identity: reply.identity,
            private: reply.private,
        })
    }

    async fn destroy(&self, spec: &EnvironmentSpec, private: &Value) -> Result<(), ProviderError> {
        let (settings, timeout) = EnvironmentSettings::parse(&spec.settings)?;
        let Some(command) = &settings.destroy else {
            return Err(ProviderError::settings(
                Some("destroy".into()),
                format!(
                    "environment \"{}\" is to be destroyed, but its `exec` block has no \
                     `destroy` command: add one, or forget the environment with \
                     `cutover state rm environment.{}`",
                    spec.name, spec.name
                ),
            ));
        };
        let _: DestroyReply = run(spec, &settings, timeout, command, "destroy", private).await?;
        Ok(())
    }
}
