//! Tests of the process backend against real processes.
//!
//! Every process these tests start is a child of the test process; the
//! backend's reaper thread collects it when it dies, and `/proc` treats a
//! zombie as gone in any case.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::*;

fn spec(dir: &Path, release: &str, settings: Value) -> EnvironmentSpec {
    EnvironmentSpec {
        name: "blue".to_string(),
        release: release.to_string(),
        endpoints: vec!["127.0.0.1:9101".to_string()],
        settings,
        workdir: dir.to_path_buf(),
        sensitive: Default::default(),
    }
}

fn pid_of(private: &Value) -> i32 {
    private["pid"].as_i64().expect("private records the pid") as i32
}

/// Fields of `/proc/PID/stat` after the command name: (pgrp, session).
fn group_and_session(pid: i32) -> (i32, i32) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = text[text.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .collect();
    (fields[2].parse().unwrap(), fields[3].parse().unwrap())
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn deploy_starts_a_detached_process_that_logs_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(
        dir.path(),
        "1.0.0",
        json!({"command": ["sh", "-c", "echo hello from $CUTOVER_ENVIRONMENT $GREETING; exec sleep 100"],
               "env": {"GREETING": "hi"}}),
    );
    let deployed = Process.deploy(&spec, &Value::Null).await.unwrap();
    let pid = pid_of(&deployed.private);
    assert_eq!(
        group_and_session(pid),
        (pid, pid),
        "own session and process group"
    );
    let start = deployed.private["start_time"].as_u64().unwrap();
    assert_eq!(deployed.identity, Some(format!("{pid}:{start}")));

    let log = dir.path().join(".cutover/logs/blue.log");
    wait_until("the log has the greeting", || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("hello from blue hi")
    });

    let live = Process.read(&spec, &deployed.private).await.unwrap();
    assert!(live.exists);
    assert_eq!(live.release.as_deref(), Some("1.0.0"));
    assert_eq!(live.identity, deployed.identity);
    assert!(live.drift.is_empty());

    Process.destroy(&spec, &deployed.private).await.unwrap();
    assert!(!is_alive(pid, Some(start)));
}

#[tokio::test]
async fn a_relative_program_resolves_against_the_configuration_directory() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("app.sh");
    std::fs::write(&script, "#!/bin/sh\nexec sleep 100\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let spec = spec(
        dir.path(),
        "1",
        json!({"command": ["./app.sh"], "log": "app.log"}),
    );
    let deployed = Process.deploy(&spec, &Value::Null).await.unwrap();
    assert!(dir.path().join("app.log").exists());
    Process.destroy(&spec, &deployed.private).await.unwrap();
}

#[tokio::test]
async fn a_killed_process_shows_as_drift() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), "1", json!({"command": ["sleep", "100"]}));
    let deployed = Process.deploy(&spec, &Value::Null).await.unwrap();
    let pid = pid_of(&deployed.private);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    wait_until("the process is gone", || !is_alive(pid, None));

    let live = Process.read(&spec, &deployed.private).await.unwrap();
    assert!(!live.exists);
    assert_eq!(live.drift.len(), 1);
    assert_eq!(live.drift[0].kind, EnvironmentDriftKind::Gone);
    assert!(
        live.drift[0]
            .message
            .starts_with(&format!("process {pid} is gone")),
        "{:?}",
        live.drift
    );
    // Destroying what is already gone is not an error.
    Process.destroy(&spec, &deployed.private).await.unwrap();
}

#[tokio::test]
async fn a_reused_pid_is_not_mistaken_for_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), "1", json!({"command": ["sleep", "100"]}));
    // The test process itself plays the stranger that took the pid.
    let me = std::process::id() as i32;
    let PidStatus::Running { start_time } = pid_status(me) else {
        unreachable!()
    };
    let private = json!({"pid": me, "start_time": start_time + 1, "command": ["sleep"],
                         "release": "1", "log": "/dev/null"});
    let live = Process.read(&spec, &private).await.unwrap();
    assert!(!live.exists);
    assert_eq!(
        live.drift,
        vec![EnvironmentDrift::new(
            EnvironmentDriftKind::Replaced,
            format!("process {me} was replaced by another process")
        )]
    );
    // ... and destroy must not signal the stranger.
    Process.destroy(&spec, &private).await.unwrap();
    assert!(is_alive(me, Some(start_time)));
}

#[tokio::test]
async fn nothing_deployed_reads_as_absent() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), "1", json!({"command": ["sleep", "100"]}));
    let live = Process.read(&spec, &Value::Null).await.unwrap();
    assert_eq!(live, LiveEnvironment::default());
    Process.destroy(&spec, &Value::Null).await.unwrap();
}

#[tokio::test]
async fn redeploy_replaces_the_running_process() {
    let dir = tempfile::tempdir().unwrap();
    let old_spec = spec(dir.path(), "1.0.0", json!({"command": ["sleep", "100"]}));
    let old = Process.deploy(&old_spec, &Value::Null).await.unwrap();
    let old_pid = pid_of(&old.private);

    let new_spec = spec(dir.path(), "1.1.0", json!({"command": ["sleep", "101"]}));
    let new = Process.deploy(&new_spec, &old.private).await.unwrap();
    let new_pid = pid_of(&new.private);
    assert_ne!(old_pid, new_pid);
    assert!(
        !is_alive(old_pid, old.private["start_time"].as_u64()),
        "the old process was stopped"
    );
    let live = Process.read(&new_spec, &new.private).await.unwrap();
    assert!(live.exists);
    assert_eq!(live.release.as_deref(), Some("1.1.0"));
    Process.destroy(&new_spec, &new.private).await.unwrap();
    assert!(!is_alive(new_pid, None));
}

#[tokio::test]
async fn destroy_stops_with_sigterm_well_within_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(
        dir.path(),
        "1",
        json!({"command": ["sh", "-c", "trap 'echo got TERM; exit 0' TERM; while :; do sleep 0.05; done"],
               "grace": "20s"}),
    );
    let deployed = Process.deploy(&spec, &Value::Null).await.unwrap();
    let pid = pid_of(&deployed.private);
    let started = Instant::now();
    Process.destroy(&spec, &deployed.private).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(!is_alive(pid, None));
    let log = std::fs::read_to_string(dir.path().join(".cutover/logs/blue.log")).unwrap();
    assert!(log.contains("got TERM"), "{log}");
}

#[tokio::test]
async fn a_process_that_ignores_sigterm_is_killed_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(
        dir.path(),
        "1",
        json!({"command": ["sh", "-c", "trap '' TERM; sleep 100"], "grace": "400ms"}),
    );
    let deployed = Process.deploy(&spec, &Value::Null).await.unwrap();
    let pid = pid_of(&deployed.private);
    let started = Instant::now();
    Process.destroy(&spec, &deployed.private).await.unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(400),
        "SIGKILL came before the grace: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(!is_alive(pid, None));
    assert!(
        procfs::group_members(pid).is_empty(),
        "the whole group was killed"
    );
}

/// The error of a deploy of `spec` that must fail its start-up check.
async fn exits_at_once(spec: &EnvironmentSpec) -> String {
    let err = Process
        .deploy(spec, &Value::Null)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("exited at once"), "{err}");
    err
}

#[tokio::test]
async fn a_command_that_exits_at_once_fails_with_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(
        dir.path(),
        "1",
        json!({"command": ["sh", "-c", "echo 'port 9101 already in use' >&2; exit 3"]}),
    );
    let err = exits_at_once(&spec).await;
    assert!(err.contains("exit status: 3"), "{err}");
    assert!(err.contains("port 9101 already in use"), "{err}");
}

#[tokio::test]
async fn a_missing_program_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), "1", json!({"command": ["./demo-app"]}));
    let err = Process
        .deploy(&spec, &Value::Null)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("demo-app") && err.contains("does not exist"),
        "{err}"
    );
}

#[test]
fn validate_names_the_bad_field() {
    let field = |settings: Value| match Process.validate(&settings) {
        Err(e) if e.kind() == cutover_provider::ErrorKind::Settings => {
            e.field().map(str::to_string)
        }
        other => panic!("expected a settings error, got {other:?}"),
    };
    assert_eq!(
        field(json!({"command": ["x"], "grace": "10"})).as_deref(),
        Some("grace")
    );
    assert_eq!(field(json!({"comand": ["x"]})).as_deref(), Some("comand"));
    assert_eq!(field(json!({"log": "x"})).as_deref(), Some("command"));
    assert!(Process
        .validate(&json!({"command": ["./app"], "grace": "1m"}))
        .is_ok());
}

/// A port nothing listens on now (the kernel's pick, released).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn python3() -> &'static str {
    assert!(
        std::process::Command::new("python3")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "this test needs python3: apt-get install python3"
    );
    "python3"
}

#[tokio::test]
async fn the_start_up_check_ends_when_the_process_accepts_on_its_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Listens, and says so in its log when somebody connects: only the
    // start-up probe does (nothing else knows the port). The word is built
    // so that the log's header, which shows the command, does not hold it.
    let script = format!(
        "import socket, time\n\
         s = socket.socket()\n\
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('127.0.0.1', {port}))\n\
         s.listen()\n\
         s.accept()\n\
         print('pro' + 'bed', flush=True)\n\
         time.sleep(100)\n"
    );
    let mut spec = spec(
        dir.path(),
        "1",
        json!({"command": [python3(), "-c", script], "log": "probe.log"}),
    );
    spec.endpoints = vec![format!("127.0.0.1:{port}")];
    let deployed = Process.deploy(&spec, &Value::Null).await.unwrap();
    let log = dir.path().join("probe.log");
    wait_until("the process logs the probe's connection", || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.lines().any(|l| l == "probed"))
    });
    Process.destroy(&spec, &deployed.private).await.unwrap();
}

#[tokio::test]
async fn a_stranger_on_the_endpoint_does_not_make_an_exiting_process_count_as_started() {
    let dir = tempfile::tempdir().unwrap();
    // Somebody else already accepts on the port: the process cannot bind it
    // and exits, a little after the probe would have found the port open.
    let stranger = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut spec = spec(
        dir.path(),
        "1",
        json!({"command": ["sh", "-c", "sleep 0.1; echo 'address already in use' >&2; exit 3"]}),
    );
    spec.endpoints = vec![stranger.local_addr().unwrap().to_string()];
    let err = exits_at_once(&spec).await;
    assert!(err.contains("address already in use"), "{err}");
}

#[test]
fn the_probe_takes_ip_endpoints_only() {
    let probe =
        |e: &[&str]| lifecycle::startup_probe(&e.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(
        probe(&["127.0.0.1:9101", "[::1]:9102"]).map(|a| a.len()),
        Some(2)
    );
    assert_eq!(probe(&["127.0.0.1:9101", "localhost:9102"]), None);
    assert_eq!(probe(&["127.0.0.1"]), None);
    assert_eq!(probe(&[]), None);
}
