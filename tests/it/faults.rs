//! Faults injected on purpose (issue 5, point 7). Each ends in a clear error
//! (exit 1, naming the cause), no traffic moves to an unhealthy colour (the
//! HAProxy map, in memory and on disk, still says the old colour), and
//! nothing is lost from the state (same lineage, serial not lower, records
//! for what was done).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::crash::{demo_pids, get, is_alive, kill_group, Rig, FAST_HEALTH};

/// Blue live at release 1 and green at 1, applied: the world every fault
/// starts from. Returns the state after it.
fn baseline(rig: &Rig) -> serde_json::Value {
    rig.write(&rig.simple("1", "1", "blue"));
    rig.run(&["apply", "--auto-approve"]).code(0);
    rig.assert_routes_to("blue");
    rig.state()
}

/// Nothing the state knew is lost: same lineage, serial not lower, every
/// environment and router still recorded.
#[track_caller]
fn assert_nothing_lost(rig: &Rig, before: &serde_json::Value) -> serde_json::Value {
    let after = rig.state();
    assert_eq!(after["lineage"], before["lineage"]);
    assert!(
        after["serial"].as_u64() >= before["serial"].as_u64(),
        "serial went back: {} -> {}",
        before["serial"],
        after["serial"]
    );
    for kind in ["environments", "routers"] {
        for name in before[kind].as_object().unwrap().keys() {
            assert!(
                after[kind].get(name).is_some(),
                "{kind}.{name} lost: {after}"
            );
        }
    }
    after
}

/// Kill the rig's HAProxy with SIGKILL (its socket file stays, refusing
/// connections).
fn kill_haproxy(rig: &Rig) {
    let pid = rig.h.pid() as i32;
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while is_alive(pid) {
        assert!(Instant::now() < deadline, "HAProxy {pid} does not die");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Wait until the demo-app on `port` reports `release` (panics after 10s).
fn wait_for_release(port: u16, release: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !get(port, "/version").1.contains(&format!("\"{release}\"")) {
        assert!(
            Instant::now() < deadline,
            "release {release} never answered on {port}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

fn wait_exit(child: &mut std::process::Child, limit: Duration) -> i32 {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("cutover {} still running after {limit:?}", child.id());
        }
        thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------- router ---

#[test]
fn router_unreachable_at_plan_time_changes_nothing() {
    let mut rig = Rig::start();
    let before = baseline(&rig);
    let green_pid = rig.state_pid("green");
    let map_before = std::fs::read(rig.h.map_path()).unwrap();
    kill_haproxy(&rig);

    let next = rig.simple("1", "2", "green");
    rig.write(&next);
    // The socket file is there, nobody listens on it.
    let plan = rig.run(&["plan"]).code(1);
    assert!(
        plan.stderr.contains("router.public") || plan.stderr.contains("router \"public\""),
        "the error names the router:\n{}",
        plan.stderr
    );
    assert!(
        plan.stderr.to_lowercase().contains("refused")
            || plan.stderr.contains(&rig.h.socket().display().to_string()),
        "the error names the cause:\n{}",
        plan.stderr
    );
    let apply = rig.run(&["apply", "--auto-approve"]).code(1);
    assert!(apply.stderr.contains("public"), "{}", apply.stderr);

    // The socket is gone altogether.
    std::fs::remove_file(rig.h.socket()).unwrap();
    let plan = rig.run(&["plan"]).code(1);
    assert!(
        plan.stderr.contains("public")
            && (plan.stderr.contains("No such file") || plan.stderr.contains("not found")),
        "{}",
        plan.stderr
    );
    rig.run(&["apply", "--auto-approve"]).code(1);

    // Nothing was deployed, nothing recorded, the map file untouched.
    let after = assert_nothing_lost(&rig, &before);
    assert_eq!(after, before, "a refused apply records nothing");
    assert_eq!(rig.state_pid("green"), green_pid);
    assert_eq!(demo_pids(rig.green), [green_pid.unwrap()]);
    assert_eq!(std::fs::read(rig.h.map_path()).unwrap(), map_before);

    // HAProxy back: apply converges.
    rig.h.restart();
    rig.run(&["apply", "--auto-approve"]).code(0);
    rig.assert_routes_to("green");
}

#[test]
fn router_killed_during_apply_stops_before_the_cutover_and_keeps_the_deploy() {
    let mut rig = Rig::start();
    let before = baseline(&rig);
    // green 2 takes 1.5s to get healthy: HAProxy dies during its gate.
    rig.write(&format!(
        "{}{}{}",
        rig.process_env("blue", "1", &[], FAST_HEALTH),
        rig.process_env("green", "2", &["--healthy-after", "1.5"], FAST_HEALTH),
        rig.router("green")
    ));
    let mut apply = rig.spawn_apply("apply", &[]);
    wait_for_release(rig.green, "2");
    kill_haproxy(&rig);
    let code = wait_exit(&mut apply, Duration::from_secs(30));
    let (out, err) = rig.output("apply");
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("public"), "the error names the router:\n{err}");

    // What was done (green 2) is recorded; the router is not.
    let after = assert_nothing_lost(&rig, &before);
    assert_eq!(after["environments"]["green"]["release"], "2", "{after}");
    assert_eq!(after["routers"]["public"]["live"], "blue");
    assert_eq!(rig.map_file("public"), "blue");
    assert!(after["serial"].as_u64() > before["serial"].as_u64());

    rig.h.restart();
    rig.assert_routes_to("blue");
    rig.run(&["apply", "--auto-approve"]).code(0);
    rig.assert_routes_to("green");
    assert_eq!(rig.h.get("/").1.trim(), "demo-app release 2");
    rig.run(&["plan", "--detailed-exitcode"]).code(0);
}

// ------------------------------------------------------ the target colour ---

/// Apply `next` (a change that cuts over to green), expect it to fail with
/// every word of `cause` in stderr, and the router still on blue.
#[track_caller]
fn apply_fails_and_blue_stays_live(rig: &Rig, next: &str, cause: &[&str]) -> String {
    rig.write(next);
    let run = rig.run(&["apply", "--auto-approve"]).code(1);
    for word in cause {
        assert!(
            run.stderr.contains(word),
            "stderr lacks {word:?}:\n{}",
            run.stderr
        );
    }
    rig.assert_routes_to("blue");
    assert_eq!(rig.h.get("/").1.trim(), "demo-app release 1");
    assert_eq!(rig.state()["routers"]["public"]["live"], "blue");
    run.stderr
}

#[test]
fn target_colour_killed_after_deploy_fails_its_gate() {
    let rig = Rig::start();
    let before = baseline(&rig);
    rig.write(&format!(
        "{}{}{}",
        rig.process_env("blue", "1", &[], FAST_HEALTH),
        rig.process_env(
            "green",
            "2",
            &["--healthy-after", "2"],
            "path = \"/healthz\"\n    interval = \"50ms\"\n    timeout = \"2s\""
        ),
        rig.router("green")
    ));
    let mut apply = rig.spawn_apply("apply", &[]);
    wait_for_release(rig.green, "2");
    // The deploy has succeeded (past the backend's start-up check) when the
    // gate starts; the gate waits (green is healthy only after 2s).
    rig.wait_for_output(
        &mut apply,
        "apply",
        "out",
        "health.green: health gate: waiting",
        Duration::from_secs(10),
    );
    let pids = demo_pids(rig.green);
    assert_eq!(pids.len(), 1);
    kill_group(pids[0]);
    let code = wait_exit(&mut apply, Duration::from_secs(30));
    let (out, err) = rig.output("apply");
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains("health") && err.contains("green"),
        "the error names the gate:\n{err}"
    );
    rig.assert_routes_to("blue");
    let after = assert_nothing_lost(&rig, &before);
    // The deploy happened and is recorded, with the pid that died.
    assert_eq!(after["environments"]["green"]["release"], "2");
    assert_eq!(rig.state_pid("green"), Some(pids[0]));
    // The next plan sees it gone and would deploy it again.
    rig.run(&["plan"]).code(0).stdout_has("is gone");
}

#[test]
fn target_colour_answering_503_never_gets_traffic() {
    let rig = Rig::start();
    let before = baseline(&rig);
    let next = format!(
        "{}{}{}",
        rig.process_env("blue", "1", &[], FAST_HEALTH),
        rig.process_env(
            "green",
            "2",
            &["--unhealthy"],
            "path = \"/healthz\"\n    interval = \"50ms\"\n    timeout = \"1s\""
        ),
        rig.router("green")
    );
    let err = apply_fails_and_blue_stays_live(&rig, &next, &["green", "503"]);
    assert!(err.contains("health"), "{err}");
    let after = assert_nothing_lost(&rig, &before);
    assert_eq!(after["environments"]["green"]["release"], "2");
}

/// A loopback listener that accepts connections and never answers; stops
/// after `limit`. Returns its port and how many connections it took.
fn black_hole(limit: Duration) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    thread::spawn(move || {
        let deadline = Instant::now() + limit;
        let mut held = Vec::new();
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((stream, _)) => {
                    seen.fetch_add(1, Ordering::SeqCst);
                    held.push(stream);
                }
                Err(_) => thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    (port, count)
}

#[test]
fn target_colour_answering_too_slowly_times_out() {
    let rig = Rig::start();
    let before = baseline(&rig);
    let (slow, connections) = black_hole(Duration::from_secs(30));
    let health = format!(
        "url = \"http://127.0.0.1:{slow}/healthz\"\n    interval = \"50ms\"\n    \
         request_timeout = \"200ms\"\n    timeout = \"1500ms\""
    );
    let next = format!(
        "{}{}{}",
        rig.process_env("blue", "1", &[], FAST_HEALTH),
        rig.process_env("green", "2", &[], &health),
        rig.router("green")
    );
    let t = Instant::now();
    let err = apply_fails_and_blue_stays_live(&rig, &next, &["green"]);
    assert!(
        err.contains("did not answer within 200ms"),
        "the error says the check timed out:\n{err}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "the gate's timeout ends it"
    );
    assert!(
        connections.load(Ordering::SeqCst) >= 2,
        "the gate tried more than once"
    );
    assert_nothing_lost(&rig, &before);
}

/// A loopback HTTP server answering 200 and 503 in turn; stops after
/// `limit`. Returns its port and the number of 200s and 503s it sent.
fn flapping(limit: Duration) -> (u16, Arc<[AtomicUsize; 2]>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let counts = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let seen = counts.clone();
    thread::spawn(move || {
        let deadline = Instant::now() + limit;
        let mut n = 0usize;
        while Instant::now() < deadline {
            let Ok((mut stream, _)) = listener.accept() else {
                thread::sleep(Duration::from_millis(5));
                continue;
            };
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 2048];
            let mut head = Vec::new();
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => head.extend_from_slice(&buf[..k]),
                }
            }
            if head.is_empty() {
                continue;
            }
            let (status, idx) = if n & 1 == 0 {
                ("200 OK", 0)
            } else {
                ("503 Service Unavailable", 1)
            };
            n += 1;
            seen[idx].fetch_add(1, Ordering::SeqCst);
            let _ = stream.write_all(
                format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                    .as_bytes(),
            );
        }
    });
    (port, counts)
}

#[test]
fn flapping_health_never_passes_a_gate_that_needs_consecutive_successes() {
    let rig = Rig::start();
    let before = baseline(&rig);
    let (port, counts) = flapping(Duration::from_secs(30));
    let health = format!(
        "url = \"http://127.0.0.1:{port}/healthz\"\n    interval = \"50ms\"\n    \
         successes = 3\n    timeout = \"1500ms\""
    );
    let next = format!(
        "{}{}{}",
        rig.process_env("blue", "1", &[], FAST_HEALTH),
        rig.process_env("green", "2", &[], &health),
        rig.router("green")
    );
    let t = Instant::now();
    let err = apply_fails_and_blue_stays_live(&rig, &next, &["green", "health"]);
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "the gate's timeout ends it"
    );
    let (ok, bad) = (
        counts[0].load(Ordering::SeqCst),
        counts[1].load(Ordering::SeqCst),
    );
    assert!(
        ok >= 3 && bad >= 3,
        "the gate saw {ok} 200s and {bad} 503s; {err}"
    );
    assert_nothing_lost(&rig, &before);
}

// ----------------------------------------------------------------- exec ---

/// Write an executable shell script into the case directory.
fn script(rig: &Rig, name: &str, body: &str) {
    let path = rig.case.path().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Blue (process) live; green (exec, with `deploy.sh`) to become live.
fn exec_config(rig: &Rig) -> String {
    let green = format!(
        r#"
environment "green" {{
  release  = "2"
  endpoint = "127.0.0.1:{port}"
  exec {{
    deploy  = ["./deploy.sh"]
    read    = ["./read.sh"]
    timeout = "1s"
  }}
  health {{
    {FAST_HEALTH}
  }}
}}
"#,
        port = rig.green
    );
    format!(
        "{}{green}{}",
        rig.process_env("blue", "1", &[], FAST_HEALTH),
        rig.router("green")
    )
}

/// Blue alone, live; then green as an exec environment whose deploy script
/// is `deploy`: the apply must fail naming `cause`, with blue still live.
fn exec_fault(deploy: &str, cause: &[&str]) -> (Rig, String) {
    let rig = Rig::start();
    rig.write(&format!(
        "{}{}",
        rig.process_env("blue", "1", &[], FAST_HEALTH),
        rig.router("blue")
    ));
    rig.run(&["apply", "--auto-approve"]).code(0);
    let before = rig.state();
    script(
        &rig,
        "read.sh",
        "cat >/dev/null\necho '{\"exists\": false}'",
    );
    script(&rig, "deploy.sh", deploy);
    let err = apply_fails_and_blue_stays_live(&rig, &exec_config(&rig), cause);
    let after = assert_nothing_lost(&rig, &before);
    assert!(
        after["environments"].get("green").is_none(),
        "a failed deploy records no green: {after}"
    );
    (rig, err)
}

#[test]
fn exec_deploy_that_fails_stops_the_apply() {
    let (_rig, err) = exec_fault(
        "cat >/dev/null\necho 'image 2 not found' >&2\nexit 3",
        &["./deploy.sh", "exit status: 3", "image 2 not found"],
    );
    assert!(err.contains("green"), "{err}");
}

#[test]
fn exec_deploy_that_hangs_is_killed_at_its_timeout() {
    let t = Instant::now();
    let (rig, err) = exec_fault(
        "cat >/dev/null\necho $$ > deploy.pid\nsleep 31 >/dev/null 2>&1 &\necho $! > child.pid\nexec sleep 30",
        &["./deploy.sh", "timed out after 1s"],
    );
    assert!(t.elapsed() < Duration::from_secs(20), "{err}");
    // The command and what it started in the background were killed.
    for file in ["deploy.pid", "child.pid"] {
        let pid: i32 = std::fs::read_to_string(rig.case.path().join(file))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(3);
        while is_alive(pid) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        if is_alive(pid) {
            kill_group(pid);
            panic!("{file} ({pid}) survived the timeout");
        }
    }
}

#[test]
fn exec_deploy_that_prints_malformed_json_stops_the_apply() {
    exec_fault(
        "cat >/dev/null\necho 'deployed OK'",
        &["malformed JSON", "./deploy.sh", "deployed OK"],
    );
}

// ------------------------------------------------- state cannot be written ---

/// `chattr +i` on a path (root ignores permission bits, not the immutable
/// flag); undone on drop so that the temporary directory can be removed.
struct Immutable(PathBuf);

impl Immutable {
    fn set(path: &Path) -> Immutable {
        let status = std::process::Command::new("chattr")
            .arg("+i")
            .arg(path)
            .status()
            .expect("chattr is installed (e2fsprogs)");
        assert!(status.success(), "chattr +i {} failed", path.display());
        Immutable(path.to_owned())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}

/// The state cannot be written: apply must refuse before it changes
/// anything live.
#[track_caller]
fn refuses_before_anything_live(rig: &Rig, before: &serde_json::Value) -> String {
    let state_bytes = rig.case.state_bytes().unwrap();
    let green_pid = rig.state_pid("green");
    rig.write(&rig.simple("1", "2", "green"));
    let run = rig.run(&["apply", "--auto-approve"]);
    let after_pids = demo_pids(rig.green);
    let map = (rig.map_runtime("public"), rig.map_file("public"));
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("cutover.state.json"),
        "the error names the state file:\n{}",
        run.stderr
    );
    assert_eq!(
        map,
        ("blue".into(), "blue".into()),
        "traffic moved:\n{}\n{}",
        run.stdout,
        run.stderr
    );
    assert_eq!(
        after_pids,
        [green_pid.unwrap()],
        "green was redeployed:\n{}",
        run.stdout
    );
    assert_eq!(rig.case.state_bytes().unwrap(), state_bytes);
    assert_nothing_lost(rig, before);
    run.stderr
}

#[test]
fn state_directory_read_only_refuses_before_anything_live() {
    let rig = Rig::start();
    let before = baseline(&rig);
    let err = {
        let _ro = Immutable::set(rig.case.path());
        // Even root cannot create a file here now.
        assert!(std::fs::write(rig.case.path().join("probe"), "x").is_err());
        refuses_before_anything_live(&rig, &before)
    };
    eprintln!("{err}");
    // Writable again: the same apply goes through.
    rig.run(&["apply", "--auto-approve"]).code(0);
    rig.assert_routes_to("green");
}

#[test]
fn state_file_that_cannot_be_replaced_refuses_before_anything_live() {
    // The directory is writable (lock, temporary files) but the state file
    // itself cannot be replaced: what a read-only bind mount of the file
    // (`-v ./cutover.state.json:/app/cutover.state.json:ro`) or an immutable
    // file does.
    let rig = Rig::start();
    let before = baseline(&rig);
    let err = {
        let _ro = Immutable::set(&rig.state_path());
        refuses_before_anything_live(&rig, &before)
    };
    eprintln!("{err}");
    rig.run(&["apply", "--auto-approve"]).code(0);
    rig.assert_routes_to("green");
}
