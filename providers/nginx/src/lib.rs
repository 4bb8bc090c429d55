//! cutover's nginx router: the `nginx { ... }` block.
//!
//! nginx has no runtime API, so cutover owns an include file: the operator's
//! configuration includes it at http level and sends traffic with
//! `proxy_pass http://cutover_<router>;`. A cut-over rewrites the file
//! atomically, has `nginx -t` check it the way the running master would load
//! it (restoring the old file when nginx refuses), reloads the master, and
//! returns only once the running workers serve the new file (read back through
//! a marker server the include also defines) and the old workers are gone.
#![deny(missing_docs)]

mod include;
mod marker;
mod master;
mod settings;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use cutover_provider::{
    name, Colour, ErrorKind, FleetMember, LiveRouter, ProviderError, RouterDrift, RouterDriftKind,
    RouterProvider, RouterSpec,
};
use serde_json::Value;
use tokio::time::{sleep, Instant};

use crate::include::Routing;
use crate::marker::Answer;
use crate::master::Master;
use crate::settings::{Owned, Resolved};

/// How often the marker and /proc are polled while a reload settles.
const POLL: Duration = Duration::from_millis(50);

/// The nginx router provider, driving nginx through an include file and a
/// validated reload.
#[derive(Debug, Default, Clone)]
pub struct Nginx;

/// A fleet of nginx masters on this host: each has its own pid file,
/// include (and preview include), marker, main config and prefix; the
/// upstream names, binary and timeout are the router's.
impl FleetMember for Nginx {
    const KIND: &'static str = "nginx";
    const INSTANCE_ATTRIBUTES: &'static [&'static str] = &[
        "pid_file",
        "include",
        "marker",
        "config",
        "prefix",
        "preview_include",
    ];
}

#[async_trait::async_trait]
impl RouterProvider for Nginx {
    fn validate(&self, settings: &Value) -> Result<(), ProviderError> {
        settings::parse(settings).map(|_| ())
    }

    async fn read(&self, spec: &RouterSpec) -> Result<LiveRouter, ProviderError> {
        let config = settings::resolve(spec)?;
        let live = observe(spec, &config, &config.live).await?;
        let mut drift = live.drift;
        let mut preview = None;
        if let Some(owned) = &config.preview {
            let seen = observe(spec, &config, owned).await?;
            drift.extend(seen.drift);
            preview = seen.serves.filter(|c| is_colour(spec, c));
        }
        Ok(LiveRouter {
            live: live.serves.clone().filter(|c| is_colour(spec, c)),
            // `none` is cutover's own word for routing nothing.
            raw: live.serves.filter(|s| s != include::NONE),
            preview,
            drift,
            ..Default::default()
        })
    }

    async fn preflight(&self, spec: &RouterSpec, target: &Colour) -> Result<(), ProviderError> {
        let config = settings::resolve(spec)?;
        Master::find(&config).await?;
        check_endpoints(target, config.timeout).await
    }

    async fn switch(&self, spec: &RouterSpec, target: &Colour) -> Result<(), ProviderError> {
        let config = settings::resolve(spec)?;
        check_endpoints(target, config.timeout).await?;
        apply(spec, &config, &config.live, Some(target)).await
    }

    fn has_preview(&self) -> bool {
        true
    }

    async fn set_preview(
        &self,
        spec: &RouterSpec,
        target: Option<&Colour>,
    ) -> Result<(), ProviderError> {
        let config = settings::resolve(spec)?;
        let Some(owned) = &config.preview else {
            return Err(settings::field_error(
                "preview_include",
                "a preview needs `preview_include`: the file cutover owns for the preview upstream",
            ));
        };
        if let Some(target) = target {
            check_endpoints(target, config.timeout).await?;
        }
        apply(spec, &config, owned, target).await
    }
}

/// Run file and /proc I/O on the blocking pool, off the async threads that
/// other routers' reads and switches share.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ProviderError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ProviderError::failed("the nginx provider's file task failed").with_source(e))
}

fn is_colour(spec: &RouterSpec, name: &str) -> bool {
    spec.colour(name).is_some()
}

/// The colour whose flat name nginx holds (or the text itself, when it is
/// no colour's).
fn colour_named(spec: &RouterSpec, flat: String) -> String {
    name::unflat(&flat)
        .into_iter()
        .find(|c| is_colour(spec, c))
        .unwrap_or(flat)
}

/// What the running nginx serves for one include, and how the file on disk
/// differs from it.
struct Observed {
    /// The colour the running workers serve (`none` for a removed preview).
    serves: Option<String>,
    /// Differences between disk and the running nginx.
    drift: Vec<RouterDrift>,
}

async fn observe(
    spec: &RouterSpec,
    config: &Resolved,
    owned: &Owned,
) -> Result<Observed, ProviderError> {
    let path = owned.path.display();
    // The file and the marker hold a colour's flat name (`green.api` for
    // `green["api"]`: cutover_provider::name): read back as the colour's.
    let on_disk = match tokio::fs::read_to_string(&owned.path).await {
        Ok(text) => Ok(include::parse(&text, owned).map(|mut r| {
            r.colour = colour_named(spec, r.colour);
            r
        })),
        Err(e) => Err(e),
    };
    let answer = match marker::ask(config.marker, owned, config.timeout).await {
        Ok(answer) => answer,
        // Before the first switch the operator may have added the `include`
        // line but not the file: nothing is routed yet, and a switch writes it.
        Err(e)
            if e.kind() == ErrorKind::Unreachable
                && matches!(&on_disk, Err(e) if e.kind() == std::io::ErrorKind::NotFound) =>
        {
            return Ok(Observed {
                serves: None,
                drift: vec![RouterDrift::new(
                    RouterDriftKind::Absent,
                    format!(
                        "the include file {path} does not exist yet: cutover writes it at the first switch"
                    ),
                )],
            });
        }
        Err(e) => return Err(e),
    };
    // Old workers keep accepting for a moment after a reload: when the marker
    // disagrees with the file, ask again briefly so that a reload made by
    // hand a moment ago is seen as what the new workers serve.
    let mut answer = answer;
    for _ in 0..5 {
        let disagrees = match (&answer, &on_disk) {
            (Answer::Serves { generation, .. }, Ok(Some(disk))) => disk.generation != *generation,
            _ => false,
        };
        if !disagrees {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        answer = marker::ask(config.marker, owned, config.timeout).await?;
    }
    let (colour, generation) = match answer {
        Answer::Serves { colour, generation } => (colour_named(spec, colour), generation),
        Answer::Other(status) => {
            return Ok(Observed {
                serves: None,
                drift: vec![RouterDrift::new(
                    RouterDriftKind::SwitchLost,
                    format!(
                        "nginx's marker at {} answers {status:?} for {}: the running nginx has not loaded {path} (include it at http level and reload)",
                        config.marker, owned.location
                    ),
                )],
            })
        }
    };
    let mut drift = Vec::new();
    let mut push = |kind, message: String| drift.push(RouterDrift::new(kind, message));
    match on_disk {
        Err(e) => push(RouterDriftKind::PersistedUnreadable, format!(
            "the running nginx serves {colour}, but the include file {path} cannot be read ({e}): a reload would fail"
        )),
        Ok(None) => push(RouterDriftKind::EditedOutside, format!(
            "the running nginx serves {colour}, but the include file {path} no longer holds cutover's marker: it was edited without a reload"
        )),
        Ok(Some(disk)) if disk.colour != colour => push(RouterDriftKind::PersistedDiffers, format!(
            "the include file {path} says {} but the running nginx serves {colour}: it was edited without a reload",
            disk.colour
        )),
        Ok(Some(disk)) if disk.generation != generation => push(RouterDriftKind::PersistedDiffers, format!(
            "the include file {path} was rewritten after the running nginx loaded it (generation {} on disk, {generation} running): it was edited without a reload",
            disk.generation
        )),
        Ok(Some(disk)) => {
            if let Some(message) = endpoint_drift(spec, owned, &colour, &disk) {
                push(RouterDriftKind::StaleEndpoints, message);
            }
        }
    }
    Ok(Observed {
        serves: Some(colour),
        drift,
    })
}

/// A sentence when the upstream does not list the colour's endpoints.
fn endpoint_drift(
    spec: &RouterSpec,
    owned: &Owned,
    colour: &str,
    disk: &Routing,
) -> Option<String> {
    let wanted = spec.colour(colour)?;
    let listed: BTreeSet<&String> = disk.servers.iter().collect();
    let endpoints: BTreeSet<&String> = wanted.endpoints.iter().collect();
    (listed != endpoints).then(|| {
        format!(
            "upstream `{}` lists {:?}, but environment {colour} serves on {:?}",
            owned.upstream, disk.servers, wanted.endpoints
        )
    })
}

/// Preflight: every endpoint of `target` can go into the include and accepts
/// connections now, so nginx would not answer 502.
async fn check_endpoints(target: &Colour, timeout: Duration) -> Result<(), ProviderError> {
    let name = &target.name;
    if !include::is_word(&name::flat(name)) {
        return Err(ProviderError::refused(format!(
            "colour name {name:?} cannot go into an nginx include"
        )));
    }
    if target.endpoints.is_empty() {
        return Err(ProviderError::refused(format!(
            "environment {name} has no endpoint: nginx's upstream needs at least one server"
        )));
    }
    for endpoint in &target.endpoints {
        if !include::is_word(endpoint) {
            return Err(ProviderError::refused(format!(
                "endpoint {endpoint:?} of environment {name} cannot go into an nginx upstream (no spaces, quotes, `;`, `{{`, `}}`, `$` or `#`)"
            )));
        }
        let connect = async {
            match endpoint.strip_prefix("unix:") {
                Some(path) => tokio::net::UnixStream::connect(path).await.map(drop),
                None => tokio::net::TcpStream::connect(endpoint.as_str())
                    .await
                    .map(drop),
            }
        };
        let failure = match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {timeout:?}"),
        };
        return Err(ProviderError::refused(format!(
            "endpoint {endpoint} of environment {name} does not accept connections ({failure}): nginx would answer 502"
        )));
    }
    Ok(())
}

/// Write `target` into `owned`'s include, have nginx check and load it, and
/// wait until only workers serving it remain.
async fn apply(
    spec: &RouterSpec,
    config: &Resolved,
    owned: &Owned,
    target: Option<&Colour>,
) -> Result<(), ProviderError> {
    let master = Master::find(config).await?;
    let colour = target.map_or(include::NONE, |t| t.name.as_str());
    let before = observe(spec, config, owned).await?;
    if before.serves.as_deref() == Some(colour) && before.drift.is_empty() {
        return Ok(());
    }
    let path = &owned.path;
    let previous = match tokio::fs::read(path).await {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(ProviderError::failed(format!(
                "cannot read the include file {}, so nothing was changed",
                path.display()
            ))
            .with_source(e))
        }
    };
    let routing = Routing {
        colour: name::flat(colour).into_owned(),
        generation: include::new_generation(),
        servers: target.map(|t| t.endpoints.clone()).unwrap_or_default(),
    };
    // Written (and fsynced) on the blocking pool: a slow disk must not
    // stall the other routers' switches sharing the runtime.
    let text = include::render(&config.router, owned, config.marker, &routing);
    let written = {
        let path = path.clone();
        blocking(move || include::write_atomically(&path, text.as_bytes())).await?
    };
    written.map_err(|e| {
        ProviderError::failed(format!(
            "cannot write the include file {}, so nothing was changed",
            path.display()
        ))
        .with_source(e)
    })?;
    let was = before.serves.as_deref().unwrap_or("nothing");
    if let Err(refused) = master.test_config(&config.invocation, config.timeout).await {
        let restored = restore_note(path, previous).await;
        return Err(ProviderError::refused(format!(
            "nginx refused the configuration with the new include {} ({restored}; nginx was not reloaded and still serves {was}): {}",
            path.display(),
            refused.describe()
        )));
    }
    let workers = master.children().await?;
    master.reload()?;
    let deadline = Instant::now() + config.timeout;
    if !wait_for_generation(config, owned, &routing.generation, deadline).await {
        let restored = restore_note(path, previous).await;
        let reloaded = match master.reload() {
            Ok(()) => "reloaded nginx again",
            Err(_) => "could not reload nginx again",
        };
        return Err(ProviderError::timeout(
            format!(
                "nginx loading {colour} from {} (its marker never showed generation {}; see nginx's error log; {restored} and {reloaded})",
                path.display(),
                routing.generation
            ),
            config.timeout,
        ));
    }
    wait_for_old_workers(&master, &workers, deadline, colour, config.timeout).await?;
    // Every worker now is a new one: one more read must agree.
    match marker::ask(config.marker, owned, config.timeout).await? {
        Answer::Serves { generation, .. } if generation == routing.generation => Ok(()),
        other => Err(ProviderError::failed(format!(
            "after the reload nginx's marker answers {other:?}, not {colour} generation {}",
            routing.generation
        ))),
    }
}

/// Poll the marker until a worker serves `generation`.
async fn wait_for_generation(
    config: &Resolved,
    owned: &Owned,
    generation: &str,
    deadline: Instant,
) -> bool {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Ok(Answer::Serves { generation: g, .. }) =
            marker::ask(config.marker, owned, left.max(POLL)).await
        {
            if g == generation {
                return true;
            }
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(POLL).await;
    }
}

/// Old workers keep accepting for a moment after a reload and then finish
/// their open requests: the switch is done when none of them is left.
async fn wait_for_old_workers(
    master: &Master,
    workers: &BTreeSet<i32>,
    deadline: Instant,
    colour: &str,
    timeout: Duration,
) -> Result<(), ProviderError> {
    loop {
        let left: Vec<i32> = master
            .children()
            .await?
            .intersection(workers)
            .copied()
            .collect();
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(ProviderError::timeout(
                format!(
                    "nginx's new workers serve {colour}, but waiting for old worker processes {left:?} to exit (they are finishing open connections, see `worker_shutdown_timeout`; raise `timeout` to wait for them)"
                ),
                timeout,
            ));
        }
        sleep(POLL).await;
    }
}

/// Put the previous include back; says what happened, for the error message.
async fn restore_note(path: &Path, previous: Option<Vec<u8>>) -> String {
    let had_file = previous.is_some();
    let restored = {
        let path = path.to_path_buf();
        blocking(move || include::restore(&path, previous.as_deref())).await
    };
    let restored = match restored {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(e) => Err(e.describe()),
    };
    match restored {
        Ok(()) if had_file => format!("{} was restored", path.display()),
        Ok(()) => format!("{} was removed again", path.display()),
        Err(e) => format!(
            "restoring {} FAILED ({e}): fix it before nginx reloads",
            path.display()
        ),
    }
}
