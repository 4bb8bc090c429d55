//! Starting a process so that it outlives cutover, and stopping it again.
//!
//! cutover is a command that runs and exits, while the processes it starts must
//! keep serving. So a process is started detached: in a session (and process
//! group) of its own, with stdin from `/dev/null` and its output appended to a
//! log file, never to cutover's terminal. Stopping signals the whole process
//! group, so that children a start script spawned stop with it.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cutover_provider::ProviderError;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::procfs::{group_is_empty, group_members, pid_status, PidStatus, OWNER_VAR};
use crate::settings::{resolve_program, Settings};

/// How long a new process must stay up for deploy to count it as started,
/// unless it accepts connections on its endpoints sooner.
const STARTUP_CHECK: Duration = Duration::from_millis(300);
/// How long one connection attempt of the start-up probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_millis(20);
/// How often `/proc` is polled while waiting for a process to stop.
const POLL: Duration = Duration::from_millis(50);
/// The first of those waits, doubled up to [`POLL`].
const FIRST_POLL: Duration = Duration::from_millis(2);
/// How long to wait for the kernel to remove a process group after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// How much of the log's end goes into an error message.
const LOG_TAIL_BYTES: u64 = 2048;

/// A process that was started: its pid and start time (its identity).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Started {
    pub pid: i32,
    pub start_time: u64,
}

/// What the environment is told about itself through its environment variables.
pub(crate) struct Context<'a> {
    pub environment: &'a str,
    pub release: &'a str,
    pub base: &'a Path,
    /// The spec, for what the log header may show (its `sensitive`).
    pub spec: &'a cutover_provider::EnvironmentSpec,
}

/// The command as shown: sensitive arguments as their markers.
pub(crate) fn shown_command(
    spec: &cutover_provider::EnvironmentSpec,
    real: &[String],
) -> Vec<String> {
    if spec.sensitive.is_empty() {
        return real.to_vec();
    }
    match spec.sensitive.settings(&spec.settings).get("command") {
        Some(serde_json::Value::Array(args)) => args
            .iter()
            .map(|a| match a {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        // The whole command is sensitive: its one marker.
        Some(serde_json::Value::String(marker)) => vec![marker.clone()],
        Some(other) => vec![other.to_string()],
        None => real.to_vec(),
    }
}

/// The environment entry that marks a process as this environment's, in
/// this configuration directory (`CUTOVER_OWNER=DIR#NAME`).
pub(crate) fn owner_entry(base: &Path, environment: &str) -> String {
    let dir = base.canonicalize().unwrap_or_else(|_| base.to_path_buf());
    format!("{OWNER_VAR}={}#{environment}", dir.display())
}

/// Stop every process marked as this environment's that is not `keep`:
/// what an apply killed between starting a process and recording its pid
/// left running (it would hold the port, and nothing else would stop it).
pub(crate) fn stop_unrecorded(
    base: &Path,
    environment: &str,
    keep: Option<i32>,
    grace: Duration,
) -> Result<(), ProviderError> {
    let entry = owner_entry(base, environment);
    for (pid, start_time) in crate::procfs::leaders_with_env(&entry) {
        if Some(pid) != keep && pid != std::process::id() as i32 {
            stop(pid, start_time, grace)?;
        }
    }
    Ok(())
}

/// Start `settings.command` detached, and check that it stays up.
pub(crate) fn start(settings: &Settings, ctx: &Context<'_>) -> Result<Started, ProviderError> {
    let shown = shown_command(ctx.spec, &settings.command).join(" ");
    // A program that is not there is the `command` setting's fault.
    let program = resolve_program(&settings.command[0], ctx.base).map_err(|e| {
        ProviderError::settings(
            Some("command".to_string()),
            format!("in `process` block: {e}"),
        )
    })?;
    let log = open_log(&settings.log)?;
    let mut header = &log;
    // A marker in the log separates one run from the next; failure is harmless.
    let _ = writeln!(
        header,
        "--- cutover: starting {} release {}: {shown}",
        ctx.environment,
        ctx.spec.sensitive.release(ctx.release)
    );
    let io_error = |e: std::io::Error| {
        ProviderError::failed(format!("cannot give `{shown}` its log file")).with_source(e)
    };
    let mut command = Command::new(&program);
    command
        .args(&settings.command[1..])
        .current_dir(&settings.workdir)
        .envs(&settings.env)
        .env("CUTOVER_ENVIRONMENT", ctx.environment)
        .env(
            OWNER_VAR,
            owner_entry(ctx.base, ctx.environment)
                .trim_start_matches(OWNER_VAR)
                .trim_start_matches('='),
        )
        .env("CUTOVER_RELEASE", ctx.release)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(io_error)?)
        .stderr(log.try_clone().map_err(io_error)?);
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid()
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
    // The start-up check ends early once the new process accepts
    // connections on every endpoint, unless one already did before it
    // started: a stranger on the port must not make a process that exits at
    // once ("address in use") count as started.
    let probe = startup_probe(&ctx.spec.endpoints).filter(|addrs| !addrs.iter().any(accepts));
    let mut child = command.spawn().map_err(|e| {
        ProviderError::failed(format!(
            "cannot start `{shown}` in {}",
            settings.workdir.display()
        ))
        .with_source(e)
    })?;
    let pid = child.id() as i32;
    // The start time is fixed at fork, so it can be read before exec happens.
    let start_time = match pid_status(pid) {
        PidStatus::Running { start_time } => Some(start_time),
        PidStatus::Gone => None,
    };
    let deadline = Instant::now() + STARTUP_CHECK;
    let mut wait = FIRST_POLL;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(ProviderError::failed(format!(
                "`{shown}` exited at once ({status}); the end of its log {}:\n{}",
                settings.log.display(),
                log_tail(&settings.log)
            )));
        }
        let now = Instant::now();
        if now >= deadline
            || probe
                .as_ref()
                .is_some_and(|addrs| addrs.iter().all(accepts))
        {
            break;
        }
        std::thread::sleep(wait.min(deadline - now));
        wait = (wait * 2).min(POLL);
    }
    // Collect the exit status whenever the process ends, so that it never
    // lingers as a zombie of a long-running cutover (or of a test).
    std::thread::spawn(move || child.wait());
    let start_time = start_time.ok_or_else(|| {
        ProviderError::failed(format!("`{shown}` vanished right after it started"))
    })?;
    Ok(Started { pid, start_time })
}

/// The addresses the start-up probe connects to: every endpoint, when each
/// is an IP address and port (`127.0.0.1:9101`, `[::1]:9101`); none
/// (the whole start-up check) when one is a name or has no port.
pub(crate) fn startup_probe(endpoints: &[String]) -> Option<Vec<SocketAddr>> {
    let addrs: Option<Vec<SocketAddr>> = endpoints.iter().map(|e| e.parse().ok()).collect();
    addrs.filter(|a| !a.is_empty())
}

/// Whether something accepts a TCP connection at `addr` (closed at once).
fn accepts(addr: &SocketAddr) -> bool {
    TcpStream::connect_timeout(addr, PROBE_TIMEOUT).is_ok()
}

/// Open the log file for appending, creating its directory.
fn open_log(path: &Path) -> Result<File, ProviderError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| {
            ProviderError::failed(format!("cannot create log directory {}", dir.display()))
                .with_source(e)
        })?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| {
            ProviderError::failed(format!("cannot open log file {}", path.display())).with_source(e)
        })
}

/// The last lines of the log file, for an error message.
pub(crate) fn log_tail(path: &Path) -> String {
    let Ok(mut file) = File::open(path) else {
        return "(the log file cannot be read)".to_string();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let text = if len > LOG_TAIL_BYTES {
        // Drop the partial first line.
        text.split_once('\n').map_or(&*text, |(_, rest)| rest)
    } else {
        &text
    };
    // Only what this start wrote: from its own header line on (earlier
    // releases' output in the same log would read as this one's).
    let own = text
        .rfind("--- cutover: starting ")
        .map_or(text, |at| &text[at..]);
    own.trim_end().to_string()
}

/// Stop the process `pid` started at `start_time`, and everything in its
/// process group: SIGTERM, up to `grace` to exit, then SIGKILL.
///
/// A process that is already gone is not an error. A pid that now belongs to
/// another process (other start time) is left alone: the pid was reused, so
/// the group cutover started no longer exists.
pub(crate) fn stop(pid: i32, start_time: u64, grace: Duration) -> Result<(), ProviderError> {
    if let PidStatus::Running { start_time: actual } = pid_status(pid) {
        if actual != start_time {
            return Ok(());
        }
    }
    // The process leads its own group (setsid at start), so its pid is the
    // group id. Members may remain after the leader has exited.
    let group = Pid::from_raw(pid);
    if group_is_empty(pid) {
        return Ok(());
    }
    let _ = killpg(group, Signal::SIGTERM);
    if wait_for_group(pid, grace) {
        return Ok(());
    }
    let _ = killpg(group, Signal::SIGKILL);
    if wait_for_group(pid, KILL_WAIT) {
        return Ok(());
    }
    Err(ProviderError::failed(format!(
        "process group {pid} is still running after SIGKILL: {:?}",
        group_members(pid)
    )))
}

/// Wait up to `limit` for process group `pgid` to have no live member.
/// The first looks come soon (most processes exit within milliseconds of
/// SIGTERM), then every [`POLL`]: a first wait of the whole 50 ms made every
/// replacement of a process take 50 ms more than its process needed.
fn wait_for_group(pgid: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut pause = FIRST_POLL;
    loop {
        if group_is_empty(pgid) {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(POLL);
    }
}

#[cfg(test)]
mod log_tests {
    use super::log_tail;

    #[test]
    fn the_tail_of_a_log_is_only_what_the_last_start_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("blue.log");
        std::fs::write(
            &log,
            "--- cutover: starting blue release 1: app 1\nlistening\nGET / 200\n\
             --- cutover: starting blue release 2: app 2\nerror: bad flag\n",
        )
        .unwrap();
        assert_eq!(
            log_tail(&log),
            "--- cutover: starting blue release 2: app 2\nerror: bad flag"
        );
    }
}
