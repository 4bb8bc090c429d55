//! Tests of the exec backend with small shell scripts in a temporary directory.
//!
//! Scripts run as `sh ./script.sh`: executing a file this very process has
//! just written can fail with "text file busy" when another test thread forks
//! at the same moment.

use std::path::Path;
use std::time::{Duration, Instant};

use cutover_provider::{
    Colour, EnvironmentDrift, EnvironmentDriftKind, EnvironmentProvider, EnvironmentSpec,
    ErrorKind, RouterProvider, RouterSpec,
};
use serde_json::{json, Value};

use super::*;

fn script(dir: &Path, name: &str, body: &str) -> Vec<String> {
    std::fs::write(dir.join(name), format!("#!/bin/sh\n{body}\n")).unwrap();
    vec!["sh".to_string(), format!("./{name}")]
}

fn env_spec(dir: &Path, settings: Value) -> EnvironmentSpec {
    EnvironmentSpec {
        name: "blue".into(),
        release: "1.4.1".into(),
        endpoints: vec!["127.0.0.1:9201".into(), "127.0.0.1:9202".into()],
        settings,
        workdir: dir.to_path_buf(),
        sensitive: Default::default(),
    }
}

fn colour(name: &str, port: u16) -> Colour {
    Colour {
        name: name.into(),
        endpoints: vec![format!("127.0.0.1:{port}")],
    }
}

fn router_spec(dir: &Path, settings: Value) -> RouterSpec {
    RouterSpec::new(
        "lb",
        vec![colour("blue", 9201), colour("green", 9202)].into(),
        settings,
        dir,
    )
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn environment_deploy_read_destroy() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let settings = json!({
        "deploy": script(d, "deploy.sh", r#"cat > deploy-input.json
    printf '{"identity": "%s@%s", "private": {"slot": 7}}\n' "$CUTOVER_ENVIRONMENT" "$CUTOVER_RELEASE""#),
        "read": script(d, "read.sh", r#"cat > read-input.json
    printf '{"exists": true, "release": "%s", "drift": ["config edited by hand", {"kind": "replaced", "message": "revision 7 replaced 6"}]}' "$CUTOVER_RELEASE""#),
        "destroy": script(d, "destroy.sh", r#"cat > destroy-input.json; echo "$CUTOVER_ACTION $REGION" > destroyed; echo '{}'"#),
        "env": {"REGION": "eu"},
    });
    let spec = env_spec(d, settings.clone());

    let deployed = ExecEnvironment.deploy(&spec, &Value::Null).await.unwrap();
    assert_eq!(deployed.identity.as_deref(), Some("blue@1.4.1"));
    assert_eq!(deployed.private, json!({"slot": 7}));
    assert_eq!(
        read_json(&d.join("deploy-input.json")),
        json!({
            "protocol": 1,
            "action": "deploy",
            "environment": {"name": "blue", "release": "1.4.1",
                            "endpoints": ["127.0.0.1:9201", "127.0.0.1:9202"]},
            "settings": settings,
            "private": null,
        })
    );

    let live = ExecEnvironment
        .read(&spec, &deployed.private)
        .await
        .unwrap();
    assert!(live.exists);
    assert_eq!(live.release.as_deref(), Some("1.4.1"));
    assert_eq!(
        live.drift,
        vec![
            EnvironmentDrift::new(EnvironmentDriftKind::Changed, "config edited by hand"),
            EnvironmentDrift::new(EnvironmentDriftKind::Replaced, "revision 7 replaced 6"),
        ]
    );
    assert_eq!(
        live.private,
        json!({"slot": 7}),
        "no private in the reply keeps the stored one"
    );
    assert_eq!(
        read_json(&d.join("read-input.json"))["private"],
        json!({"slot": 7})
    );

    ExecEnvironment
        .destroy(&spec, &deployed.private)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(d.join("destroyed")).unwrap(),
        "destroy eu\n"
    );
    assert_eq!(
        read_json(&d.join("destroy-input.json"))["action"],
        "destroy"
    );
}

#[tokio::test]
async fn destroy_without_a_command_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let spec = env_spec(dir.path(), json!({"deploy": ["true"], "read": ["true"]}));
    let err = ExecEnvironment
        .destroy(&spec, &Value::Null)
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.field()),
        (ErrorKind::Settings, Some("destroy")),
        "{err:?}"
    );
    assert!(
        err.message().contains("cutover state rm environment.blue"),
        "{err}"
    );
}

#[tokio::test]
async fn a_failing_command_reports_its_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let spec = env_spec(
        d,
        json!({"deploy": script(d, "deploy.sh", "echo 'noise' >&2; echo 'image 1.4.1 not found' >&2; exit 4"),
               "read": ["true"]}),
    );
    let err = ExecEnvironment
        .deploy(&spec, &Value::Null)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("`sh ./deploy.sh` (deploy of environment \"blue\") failed"),
        "{err}"
    );
    assert!(err.contains("exit status: 4"), "{err}");
    assert!(err.contains("image 1.4.1 not found"), "{err}");
}

#[tokio::test]
async fn a_hanging_command_is_killed_at_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The shell starts a child and waits for it: the whole group must die.
    let spec = env_spec(
        d,
        json!({"deploy": ["true"],
               "read": script(d, "read.sh", "sleep 30 & echo $! > sleeper.pid; wait"),
               "timeout": "300ms"}),
    );
    let started = Instant::now();
    let err = ExecEnvironment.read(&spec, &Value::Null).await.unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "returned after {took:?}");
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    assert!(
        err.message().contains("sh ./read.sh") && err.message().ends_with("after 300ms"),
        "{err}"
    );
    let sleeper = std::fs::read_to_string(d.join("sleeper.pid")).unwrap();
    let stat_path = format!("/proc/{}/stat", sleeper.trim());
    let deadline = Instant::now() + Duration::from_secs(3);
    // Killed: gone, or a zombie until its new parent reaps it.
    while std::fs::read_to_string(&stat_path)
        .is_ok_and(|s| !s[s.rfind(')').unwrap() + 1..].trim_start().starts_with('Z'))
    {
        assert!(
            Instant::now() < deadline,
            "the command's child survived the timeout"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait (bounded) until the process whose pid is in `file` is gone (or a
/// zombie until its new parent reaps it).
fn wait_until_killed(file: &Path, what: &str) {
    let pid = std::fs::read_to_string(file).unwrap();
    let stat_path = format!("/proc/{}/stat", pid.trim());
    let deadline = Instant::now() + Duration::from_secs(3);
    while std::fs::read_to_string(&stat_path)
        .is_ok_and(|s| !s[s.rfind(')').unwrap() + 1..].trim_start().starts_with('Z'))
    {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn a_command_stopped_half_way_takes_its_whole_group_with_it() {
    // What a second Ctrl-C does to a running deploy: its task is dropped.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let spec = env_spec(
        d,
        json!({"deploy": script(d, "deploy.sh", "sleep 30 & echo $! > sleeper.pid; wait"),
               "read": ["true"], "timeout": "60s"}),
    );
    let mut deploy = Box::pin(ExecEnvironment.deploy(&spec, &Value::Null));
    let pid_file = d.join("sleeper.pid");
    // Run the deploy until its child has written its pid, then drop it.
    let started = Instant::now();
    while std::fs::read_to_string(&pid_file).map_or(true, |p| !p.ends_with('\n')) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the deploy never started its child"
        );
        let _ = tokio::time::timeout(Duration::from_millis(20), &mut deploy).await;
    }
    drop(deploy); // the future itself, not a pin of it
    wait_until_killed(
        &pid_file,
        "the command's child survived its command being stopped",
    );
}

#[tokio::test]
async fn malformed_json_is_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (body, quoted) in [
        ("echo 'deployed OK'", "`deployed OK`"),
        ("echo '[1, 2]'", "`[1, 2]`"),
        ("echo '{}{}'", "`{}{}`"),
        ("true", "nothing"),
    ] {
        let spec = env_spec(
            d,
            json!({"deploy": script(d, "deploy.sh", body), "read": ["true"]}),
        );
        let err = ExecEnvironment
            .deploy(&spec, &Value::Null)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("malformed JSON from `sh ./deploy.sh`"),
            "{err}"
        );
        assert!(err.contains(quoted), "{body}: {err}");
    }
}

#[tokio::test]
async fn a_reply_of_the_wrong_shape_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let spec = env_spec(
        d,
        json!({"deploy": ["true"], "read": script(d, "read.sh", r#"echo '{"exist": true}'"#)}),
    );
    let err = ExecEnvironment
        .read(&spec, &Value::Null)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("invalid reply from `sh ./read.sh` (read of environment \"blue\")"),
        "{err}"
    );
    assert!(err.contains("exist"), "{err}");
}

#[tokio::test]
async fn a_missing_program_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let spec = env_spec(
        dir.path(),
        json!({"deploy": ["./nope.sh"], "read": ["true"]}),
    );
    let err = ExecEnvironment
        .deploy(&spec, &Value::Null)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unreachable, "{err:?}");
    assert!(err.to_string().contains("./nope.sh"), "{err}");
    assert!(err.describe().contains("cannot start it in"), "{err:?}");
}

#[tokio::test]
async fn an_instance_gets_its_keys_in_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // An instance's name holds quotes: a script escapes it for its JSON.
    let settings = json!({
        "read": script(d, "read.sh", r#"if [ -f live ]; then printf '{"live": "%s"}' "$(sed 's/"/\\"/g' live)"; else echo '{"live": null}'; fi"#),
        "switch": script(d, "switch.sh", r#"printf '%s|%s|%s|%s|%s' "$CUTOVER_ROUTER" "$CUTOVER_ROUTER_KEY" "$CUTOVER_TARGET" "$CUTOVER_TARGET_BLOCK" "$CUTOVER_TARGET_KEY" > seen; printf '%s' "$CUTOVER_TARGET" > live; printf '{"live": "%s"}' "$(sed 's/"/\\"/g' live)""#),
    });
    let target = colour(r#"green["api"]"#, 9202);
    let spec = RouterSpec::new(r#"svc["api"]"#, vec![target.clone()].into(), settings, d);
    ExecRouter.switch(&spec, &target).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(d.join("seen")).unwrap(),
        r#"svc["api"]|api|green["api"]|green|api"#
    );
}

/// A router that keeps its live colour in the file `live`.
fn file_router(d: &Path) -> Value {
    json!({
        "read": script(d, "read.sh", r#"if [ -f live ]; then printf '{"live": "%s"}\n' "$(cat live)"; else echo '{"live": null}'; fi"#),
        "switch": script(d, "switch.sh", r#"cat > switch-input.json; printf '%s' "$CUTOVER_TARGET" > live; printf '{"live": "%s"}\n' "$CUTOVER_TARGET""#),
    })
}

#[tokio::test]
async fn router_read_and_switch() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let spec = router_spec(d, file_router(d));
    assert_eq!(ExecRouter.read(&spec).await.unwrap().live, None);

    let green = colour("green", 9202);
    ExecRouter.preflight(&spec, &green).await.unwrap();
    ExecRouter.switch(&spec, &green).await.unwrap();
    assert_eq!(
        ExecRouter.read(&spec).await.unwrap().live.as_deref(),
        Some("green")
    );
    let input = read_json(&d.join("switch-input.json"));
    assert_eq!(input["action"], "switch");
    assert_eq!(input["router"], json!({"name": "lb"}));
    assert_eq!(
        input["target"],
        json!({"name": "green", "endpoints": ["127.0.0.1:9202"]})
    );
    assert_eq!(input["colours"].as_array().unwrap().len(), 2);

    // A name that is no colour of the configuration is shown raw.
    std::fs::write(d.join("live"), "maintenance").unwrap();
    let live = ExecRouter.read(&spec).await.unwrap();
    assert_eq!(live.live, None);
    assert_eq!(live.raw.as_deref(), Some("maintenance"));
}

#[tokio::test]
async fn a_switch_that_reads_back_otherwise_fails() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let spec = router_spec(
        d,
        json!({"read": script(d, "read.sh", r#"echo '{"live": "blue"}'"#),
               "switch": script(d, "switch.sh", r#"printf '{"live": "%s"}' "$CUTOVER_TARGET""#)}),
    );
    let err = ExecRouter
        .switch(&spec, &colour("green", 9202))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("did not take"), "{err}");
    assert!(err.contains("live = \"blue\""), "{err}");

    // A switch that itself reports another colour fails too.
    let spec = router_spec(
        d,
        json!({"read": ["sh", "./read.sh"], "switch": script(d, "switch2.sh", r#"echo '{"live": "blue"}'"#)}),
    );
    let err = ExecRouter
        .switch(&spec, &colour("green", 9202))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("reports live = \"blue\""), "{err}");
}

#[tokio::test]
async fn preflight_runs_the_check_command() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut settings = file_router(d);
    settings["check"] = json!(script(
        d,
        "check.sh",
        r#"if [ "$CUTOVER_TARGET_ENDPOINTS" = "127.0.0.1:9202" ]; then echo '{}'; else echo "no healthy target in $CUTOVER_TARGET" >&2; exit 1; fi"#
    ));
    let spec = router_spec(d, settings);
    ExecRouter
        .preflight(&spec, &colour("green", 9202))
        .await
        .unwrap();
    let err = ExecRouter
        .preflight(&spec, &colour("blue", 9201))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Refused, "{err:?}");
    let err = err.to_string();
    assert!(err.contains("check of router \"lb\""), "{err}");
    assert!(err.contains("no healthy target in blue"), "{err}");
}

/// A load balancer with a health check of its own (an AWS target group)
/// says "not yet": not ready, until its check has seen the target.
#[tokio::test]
async fn a_check_that_says_not_ready_is_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut settings = file_router(d);
    settings["check"] = json!(script(
        d,
        "check.sh",
        r#"if [ -f healthy ]; then echo '{"ready": true}'; else echo '{"ready": false, "reason": "target 127.0.0.1:9202 is in state initial"}'; fi"#
    ));
    let spec = router_spec(d, settings);
    let err = ExecRouter
        .preflight(&spec, &colour("green", 9202))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotReady, "{err:?}");
    assert_eq!(
        err.message(),
        "the `check` command of router \"lb\" says it is not ready for \"green\" yet: target 127.0.0.1:9202 is in state initial"
    );
    std::fs::write(d.join("healthy"), "").unwrap();
    ExecRouter
        .preflight(&spec, &colour("green", 9202))
        .await
        .unwrap();
}

#[test]
fn validate_names_the_field() {
    let err = ExecRouter
        .validate(&json!({"read": ["r"], "swtich": ["s"]}))
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.field()),
        (ErrorKind::Settings, Some("swtich"))
    );
    let err = ExecEnvironment
        .validate(&json!({"deploy": ["d"], "read": ["r"], "timeout": "soon"}))
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.field()),
        (ErrorKind::Settings, Some("timeout"))
    );
}

/// The scripts of examples/exec, run through the providers.
#[tokio::test]
async fn the_worked_example_scripts_speak_the_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/exec");
    let sh = |name: &str| {
        std::fs::copy(examples.join(name), d.join(name)).unwrap();
        json!(["sh", format!("./{name}")])
    };
    let settings =
        json!({"deploy": sh("deploy.sh"), "read": sh("read.sh"), "destroy": sh("destroy.sh")});
    let spec = env_spec(d, settings);
    assert!(
        !ExecEnvironment
            .read(&spec, &Value::Null)
            .await
            .unwrap()
            .exists
    );
    let deployed = ExecEnvironment.deploy(&spec, &Value::Null).await.unwrap();
    assert_eq!(deployed.identity.as_deref(), Some("blue@1.4.1"));
    let live = ExecEnvironment
        .read(&spec, &deployed.private)
        .await
        .unwrap();
    assert!(live.exists);
    assert_eq!(live.release.as_deref(), Some("1.4.1"));
    ExecEnvironment
        .destroy(&spec, &deployed.private)
        .await
        .unwrap();
    assert!(
        !ExecEnvironment
            .read(&spec, &Value::Null)
            .await
            .unwrap()
            .exists
    );

    let spec = router_spec(
        d,
        json!({"read": sh("router-read.sh"), "switch": sh("router-switch.sh"), "env": {"STATE_DIR": "lb-state"}}),
    );
    assert_eq!(ExecRouter.read(&spec).await.unwrap().live, None);
    ExecRouter
        .switch(&spec, &colour("green", 9202))
        .await
        .unwrap();
    assert_eq!(
        ExecRouter.read(&spec).await.unwrap().live.as_deref(),
        Some("green")
    );
    assert!(d.join("lb-state/router-lb.live").exists());
    let err = ExecRouter
        .switch(&spec, &colour("red", 9203))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown colour 'red'"), "{err}");
}
