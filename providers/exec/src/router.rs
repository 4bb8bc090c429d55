//! `exec { ... }` for a router: the operator's commands read and switch the
//! live colour of any load balancer cutover has no built-in backend for
//! (a cloud target group, a Kubernetes Service selector).
//!
//! A switch is never trusted on its word: after the `switch` command succeeds
//! the provider runs `read` and fails unless the router now reports the
//! target colour.

use std::collections::BTreeMap;

use cutover_provider::{Colour, ErrorKind, LiveRouter, ProviderError, RouterProvider, RouterSpec};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::run::Invocation;
use crate::settings::RouterSettings;
use crate::PROTOCOL;

/// The `exec { ... }` router backend.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExecRouter;

/// The reply to `read`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadReply {
    live: Option<String>,
    raw: Option<String>,
}

/// The reply to `switch`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SwitchReply {
    live: String,
}

/// The reply to `check`. A non-zero exit refuses the switch; `ready: false`
/// says the load balancer will take it once its own health check has seen
/// the target (an AWS target in state `initial`), so the engine asks again.
#[derive(Debug, Deserialize)]
struct CheckReply {
    #[serde(default = "ready_by_default")]
    ready: bool,
    /// What the load balancer waits for, when not ready.
    reason: Option<String>,
}

fn ready_by_default() -> bool {
    true
}

/// Every router reply decoded from `stdout` (the fuzz target's entry,
/// `crate::fuzzing`).
pub(crate) fn decode_replies(invocation: &Invocation<'_>, stdout: &[u8]) {
    let _ = invocation
        .decode::<ReadReply>(stdout)
        .map_err(|e| e.to_string());
    let _ = invocation
        .decode::<SwitchReply>(stdout)
        .map_err(|e| e.to_string());
    let _ = invocation
        .decode::<CheckReply>(stdout)
        .map_err(|e| e.to_string());
}

/// Run `action` of router `spec` with `command`.
async fn run<T: serde::de::DeserializeOwned>(
    spec: &RouterSpec,
    command: &[String],
    action: &str,
    target: Option<&Colour>,
) -> Result<T, ProviderError> {
    let (settings, timeout) = RouterSettings::parse(spec.settings())?;
    let mut env: BTreeMap<String, String> = settings.env.clone();
    env.insert("CUTOVER_ACTION".into(), action.into());
    env.insert("CUTOVER_ROUTER".into(), spec.name().to_string());
    if let Some(key) = cutover_provider::name::key_of(spec.name()) {
        env.insert("CUTOVER_ROUTER_KEY".into(), key.to_string());
    }
    let names: Vec<&str> = spec.colours().iter().map(|c| c.name.as_str()).collect();
    env.insert("CUTOVER_COLOURS".into(), names.join(" "));
    let mut input = json!({
        "protocol": PROTOCOL,
        "action": action,
        "router": { "name": spec.name() },
        "colours": spec.colours(),
        "settings": spec.settings(),
    });
    if let Some(target) = target {
        env.insert("CUTOVER_TARGET".into(), target.name.clone());
        // An instance's key (`api` of `green["api"]`), for scripts that
        // switch many services with one program.
        if let Some((block, key)) = cutover_provider::name::split(&target.name) {
            env.insert("CUTOVER_TARGET_BLOCK".into(), block.to_owned());
            if let Some(key) = key {
                env.insert("CUTOVER_TARGET_KEY".into(), key.to_string());
            }
        }
        env.insert(
            "CUTOVER_TARGET_ENDPOINTS".into(),
            target.endpoints.join(" "),
        );
        input["target"] = json!(target);
    }
    let invocation = Invocation {
        command,
        workdir: spec.workdir(),
        env,
        timeout,
        purpose: format!("{action} of router \"{}\"", spec.name()),
        // A failing check says the switch could not work.
        exit_means: if action == "check" {
            ErrorKind::Refused
        } else {
            ErrorKind::Failed
        },
    };
    invocation.run(&input).await
}

#[async_trait::async_trait]
impl RouterProvider for ExecRouter {
    fn validate(&self, settings: &Value) -> Result<(), ProviderError> {
        RouterSettings::parse(settings).map(drop)
    }

    async fn read(&self, spec: &RouterSpec) -> Result<LiveRouter, ProviderError> {
        let (settings, _) = RouterSettings::parse(spec.settings())?;
        let reply: ReadReply = run(spec, &settings.read, "read", None).await?;
        // A name that is no colour of the configuration is shown, not routed to.
        Ok(match reply.live {
            Some(live) if spec.colour(&live).is_some() => LiveRouter {
                live: Some(live),
                raw: reply.raw,
                ..Default::default()
            },
            Some(other) => LiveRouter {
                live: None,
                raw: reply.raw.or(Some(other)),
                ..Default::default()
            },
            None => LiveRouter {
                live: None,
                raw: reply.raw,
                ..Default::default()
            },
        })
    }

    async fn preflight(&self, spec: &RouterSpec, target: &Colour) -> Result<(), ProviderError> {
        let (settings, _) = RouterSettings::parse(spec.settings())?;
        match &settings.check {
            Some(check) => {
                let reply: CheckReply = run(spec, check, "check", Some(target)).await?;
                if reply.ready {
                    return Ok(());
                }
                Err(ProviderError::not_ready(format!(
                    "the `check` command of router \"{}\" says it is not ready for \"{}\" yet: {}",
                    spec.name(),
                    target.name,
                    reply.reason.as_deref().unwrap_or("(no reason given)")
                )))
            }
            // Without a check, at least make sure the router answers.
            None => self.read(spec).await.map(drop),
        }
    }

    async fn switch(&self, spec: &RouterSpec, target: &Colour) -> Result<(), ProviderError> {
        let (settings, _) = RouterSettings::parse(spec.settings())?;
        let reply: SwitchReply = run(spec, &settings.switch, "switch", Some(target)).await?;
        if reply.live != target.name {
            return Err(ProviderError::failed(format!(
                "switch of router \"{}\" to \"{}\": the `switch` command reports live = \"{}\"",
                spec.name(),
                target.name,
                reply.live
            )));
        }
        let now = self.read(spec).await?;
        if now.live.as_deref() != Some(target.name.as_str()) {
            let seen = now.live.or(now.raw).unwrap_or_else(|| "nothing".into());
            return Err(ProviderError::failed(format!(
                "switch of router \"{}\" to \"{}\" did not take: the `switch` command \
                 succeeded, but `read` reports live = \"{seen}\"",
                spec.name(),
                target.name
            )));
        }
        Ok(())
    }
}
