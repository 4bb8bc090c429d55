//! In-memory providers for the unit tests of the planner, the walk and the
//! apply driver: a world of colours and routers kept in memory, whose every
//! call is logged in order, with faults to inject. Registered under the
//! built-in kinds `process` and `exec`, so configurations written in HCL
//! load as they would for real. Health gates are real HTTP checks against a
//! small server of the test's own ([`World::serve`]).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use cutover_provider::{
    Colour, Deployed, EnvironmentProvider, EnvironmentSpec, LiveEnvironment, LiveRouter,
    ProviderError, RouterProvider, RouterSpec,
};
use serde_json::Value;

use super::Engine;
use crate::config::model::Config;
use crate::registry::Providers;

/// One colour as the world runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    /// The release it runs.
    pub release: String,
    /// Bumped on every (re)start.
    pub identity: u64,
}

/// What the world holds, and what the tests make go wrong.
#[derive(Debug, Default)]
pub struct Inner {
    /// Colours that run.
    pub colours: BTreeMap<String, Running>,
    /// Each router's live colour.
    pub routers: BTreeMap<String, String>,
    /// Every call, in order: `deploy green 2`, `switch public green`, ...
    pub log: Vec<String>,
    /// Deploys of these colours fail (after stopping what ran).
    pub fail_deploy: BTreeSet<String>,
    /// Switches of these routers fail (nothing changes).
    pub fail_switch: BTreeSet<String>,
    /// Switches of these routers panic.
    pub panic_switch: BTreeSet<String>,
    /// The next switch of these routers panics after the router has
    /// switched (once).
    pub panic_after_switch: BTreeSet<String>,
    /// Routers whose own health check does not see their target up for
    /// this many more preflights.
    pub not_ready: BTreeMap<String, usize>,
    /// Colours whose health check answers 500.
    pub unhealthy: BTreeSet<String>,
    /// What the routers answer, read after read, when asked for a colour's
    /// open sessions (the last answer stays; none: 0); `Err` is a failed
    /// read with that message.
    pub sessions: BTreeMap<String, VecDeque<Result<u64, String>>>,
    /// The routers cannot count open sessions (the contract's default).
    pub uncounted: bool,
    /// Routers whose persisted copy (HAProxy's map file, say) is out of
    /// step with what they run, until their next switch.
    pub persisted_differs: BTreeSet<String>,
    /// The routers switch in batches (`switch_batch`, logged as `batch R1
    /// R2 ...` before each switch of it).
    pub batches: bool,
    /// Next identity to hand out.
    pub next_identity: u64,
}

/// The shared world.
#[derive(Debug, Clone, Default)]
pub struct World(pub Arc<Mutex<Inner>>);

impl World {
    /// Lock the world (a test's panic must not hide behind a poisoned lock).
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Start `colour` running `release`.
    pub fn run(&self, colour: &str, release: &str) {
        let mut w = self.lock();
        w.next_identity += 1;
        let identity = w.next_identity;
        w.colours.insert(
            colour.into(),
            Running {
                release: release.into(),
                identity,
            },
        );
    }

    /// Point `router` at `colour`.
    pub fn route(&self, router: &str, colour: &str) {
        self.lock().routers.insert(router.into(), colour.into());
    }

    /// Script the open sessions the routers count for `colour`, one answer
    /// per read (the last stays); `ROUTER/COLOUR` scripts one router's.
    pub fn sessions(&self, colour: &str, answers: &[Result<u64, &str>]) {
        let answers = answers.iter().map(|a| a.map_err(str::to_owned)).collect();
        self.lock().sessions.insert(colour.into(), answers);
    }

    /// The log so far.
    pub fn log(&self) -> Vec<String> {
        self.lock().log.clone()
    }

    fn note(&self, line: String) {
        self.lock().log.push(line);
    }

    /// An engine whose `process` environments and `exec` routers are this
    /// world.
    pub fn engine(&self) -> Engine {
        let providers = Providers::default()
            .with_environment("process", Arc::new(Memory(self.clone())))
            .with_router("exec", Arc::new(Memory(self.clone())));
        Engine::with_providers(providers, 10)
    }

    /// Serve health checks on loopback: `GET /COLOUR` answers 200, or 500
    /// for an unhealthy colour or one that does not run. Returns the port.
    pub async fn serve(&self) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let world = self.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let world = world.clone();
                tokio::spawn(async move { world.answer(&mut socket).await });
            }
        });
        port
    }

    async fn answer(&self, socket: &mut tokio::net::TcpStream) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buf = vec![0; 4096];
        let Ok(n) = socket.read(&mut buf).await else {
            return;
        };
        let request = String::from_utf8_lossy(&buf[..n]);
        let colour = request
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .trim_start_matches('/')
            .to_owned();
        let healthy = {
            let w = self.lock();
            w.colours.contains_key(&colour) && !w.unhealthy.contains(&colour)
        };
        let status = if healthy { "200 OK" } else { "500 Oops" };
        let reply = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        let _ = socket.write_all(reply.as_bytes()).await;
    }
}

/// The in-memory provider of both kinds.
struct Memory(World);

#[async_trait::async_trait]
impl EnvironmentProvider for Memory {
    fn validate(&self, _: &Value) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn read(
        &self,
        spec: &EnvironmentSpec,
        _: &Value,
    ) -> Result<LiveEnvironment, ProviderError> {
        let w = self.0.lock();
        Ok(match w.colours.get(&spec.name) {
            Some(r) => LiveEnvironment {
                exists: true,
                release: Some(r.release.clone()),
                identity: Some(r.identity.to_string()),
                ..Default::default()
            },
            None => LiveEnvironment::default(),
        })
    }

    async fn deploy(&self, spec: &EnvironmentSpec, _: &Value) -> Result<Deployed, ProviderError> {
        self.0
            .note(format!("deploy {} {}", spec.name, spec.release));
        let fails = self.0.lock().fail_deploy.contains(&spec.name);
        if fails {
            // Like a process backend whose new release exits at once: the
            // old one was stopped first.
            self.0.lock().colours.remove(&spec.name);
            return Err(ProviderError::failed(format!(
                "release {} of {} exited at once",
                spec.release, spec.name
            )));
        }
        self.0.run(&spec.name, &spec.release);
        let identity = self.0.lock().colours[&spec.name].identity.to_string();
        Ok(Deployed {
            identity: Some(identity),
            private: Value::Null,
        })
    }

    async fn destroy(&self, spec: &EnvironmentSpec, _: &Value) -> Result<(), ProviderError> {
        self.0.note(format!("destroy {}", spec.name));
        self.0.lock().colours.remove(&spec.name);
        Ok(())
    }
}

#[async_trait::async_trait]
impl RouterProvider for Memory {
    fn validate(&self, _: &Value) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn read(&self, spec: &RouterSpec) -> Result<LiveRouter, ProviderError> {
        let w = self.0.lock();
        let live = w.routers.get(spec.name()).cloned();
        let drift = w
            .persisted_differs
            .contains(spec.name())
            .then(|| {
                cutover_provider::RouterDrift::new(
                    cutover_provider::RouterDriftKind::PersistedDiffers,
                    "the persisted copy says another colour".to_owned(),
                )
            })
            .into_iter()
            .collect();
        Ok(LiveRouter {
            raw: live.clone(),
            live,
            drift,
            ..Default::default()
        })
    }

    async fn preflight(&self, spec: &RouterSpec, target: &Colour) -> Result<(), ProviderError> {
        let mut w = self.0.lock();
        w.log
            .push(format!("preflight {} {}", spec.name(), target.name));
        match w.not_ready.get_mut(spec.name()) {
            Some(n) if *n > 0 => {
                *n -= 1;
                Err(ProviderError::not_ready(format!(
                    "{}/s1 is DOWN 1/2",
                    target.name
                )))
            }
            _ => Ok(()),
        }
    }

    fn counts_sessions(&self) -> bool {
        !self.0.lock().uncounted
    }

    fn switches_in_batches(&self) -> bool {
        self.0.lock().batches
    }

    async fn switch_batch(
        &self,
        switches: &[(&RouterSpec, &Colour)],
    ) -> Vec<Result<Vec<cutover_provider::InstanceSwitch>, ProviderError>> {
        let names: Vec<&str> = switches.iter().map(|(s, _)| s.name()).collect();
        self.0.note(format!("batch {}", names.join(" ")));
        let mut results = Vec::new();
        for (spec, target) in switches {
            results.push(self.switch_instances(spec, target).await);
        }
        results
    }

    async fn open_sessions(
        &self,
        spec: &RouterSpec,
        colour: &Colour,
    ) -> Result<Option<u64>, ProviderError> {
        let mut w = self.0.lock();
        if w.uncounted {
            return Ok(None);
        }
        // A script for this router and colour (`ROUTER/COLOUR`), else the
        // colour's, which every router shares.
        let own = format!("{}/{}", spec.name(), colour.name);
        let key = if w.sessions.contains_key(&own) {
            own
        } else {
            colour.name.clone()
        };
        let answers = w.sessions.entry(key).or_default();
        let answer = match answers.len() {
            0 => Ok(0),
            1 => answers[0].clone(),
            _ => answers.pop_front().expect("more than one"),
        };
        let seen = answer.as_ref().map_or_else(|e| e.clone(), u64::to_string);
        w.log
            .push(format!("sessions {} {} {seen}", spec.name(), colour.name));
        answer.map(Some).map_err(ProviderError::failed)
    }

    async fn switch(&self, spec: &RouterSpec, target: &Colour) -> Result<(), ProviderError> {
        // As every router does: the checks of preflight first.
        {
            let mut w = self.0.lock();
            if let Some(n) = w.not_ready.get_mut(spec.name()).filter(|n| **n > 0) {
                *n -= 1;
                w.log
                    .push(format!("not ready: switch {} {}", spec.name(), target.name));
                return Err(ProviderError::not_ready(format!(
                    "{}/s1 is DOWN 1/2",
                    target.name
                )));
            }
        }
        self.0
            .note(format!("switch {} {}", spec.name(), target.name));
        let (fails, panics) = {
            let w = self.0.lock();
            (
                w.fail_switch.contains(spec.name()),
                w.panic_switch.contains(spec.name()),
            )
        };
        if panics {
            panic!("the memory router {} panicked on purpose", spec.name());
        }
        if fails {
            return Err(ProviderError::refused(format!(
                "the router {} refused the switch",
                spec.name()
            )));
        }
        self.0.route(spec.name(), &target.name);
        self.0.lock().persisted_differs.remove(spec.name());
        if self.0.lock().panic_after_switch.remove(spec.name()) {
            panic!("the memory router {} panicked after switching", spec.name());
        }
        Ok(())
    }
}

/// Load a configuration from HCL text, as `cutover` would from `main.hcl`.
pub fn config(hcl: &str) -> Config {
    let files = vec![(PathBuf::from("main.hcl"), hcl.to_owned())];
    match crate::config::load_sources(&PathBuf::from("/nonexistent"), files, &Default::default()) {
        Ok(loaded) => loaded.config,
        Err(diags) => panic!("the test's configuration does not load:\n{diags}"),
    }
}

/// A colour of the configuration language, with a health check on `port`.
pub fn colour(name: &str, release: &str, port: u16) -> String {
    format!(
        r#"
environment "{name}" {{
  release  = "{release}"
  endpoint = "127.0.0.1:{port}"
  process {{
    command = ["app", "{release}"]
  }}
  health {{
    url      = "http://127.0.0.1:{port}/{name}"
    interval = "10ms"
    timeout  = "300ms"
  }}
}}
"#
    )
}

/// A router block sending `name` to `live`.
pub fn router(name: &str, live: &str) -> String {
    format!(
        r#"
router "{name}" {{
  live = environment.{live}
  exec {{
    read   = ["read"]
    switch = ["switch"]
  }}
}}
"#
    )
}

impl Engine {
    /// [`Engine::apply`] onto the local state file at `path`, its lock
    /// taken for the apply.
    pub(crate) async fn apply_at(
        &self,
        planned: &crate::plan::saved::Planned,
        state: crate::state::model::State,
        path: &std::path::Path,
        observer: Arc<dyn super::observer::Observer>,
        stop: super::StopReceiver,
    ) -> Result<super::ApplyReport, super::ApplyError> {
        let backend = crate::state::backend::LocalFile::new(path);
        let lock = crate::state::backend::lock_now(&backend, "apply").expect("the test's lock");
        self.apply(planned, state, &backend, &lock, observer, stop)
            .await
    }
}
