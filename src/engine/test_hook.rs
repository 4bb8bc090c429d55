//! Running a router's `test "NAME"` hook: the operator's command, against
//! the colour about to go live, in a process group of its own that is
//! killed whole at the timeout or when the step is dropped (a signal), with
//! the tail of its output kept for the failure message.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;

use super::error::{ErrorKind, StepError};
use crate::addr::StepId;
use crate::config::checks::{command_line, duration, TestSpec};

/// How many lines of a failed test's output its error shows.
pub const TAIL_LINES: usize = 20;
/// The longest line kept (longer ones are cut).
const LINE_BYTES: usize = 500;

/// What a test is run against.
#[derive(Debug, Clone, Copy)]
pub struct Against<'a> {
    /// The router.
    pub router: &'a str,
    /// The colour about to go live.
    pub target: &'a str,
    /// Its endpoints.
    pub endpoints: &'a [String],
    /// The router's preview URL, when the preview shows the target.
    pub preview_url: Option<&'a str>,
    /// Whether it runs read-only at plan time (`plan --gates`): the test
    /// sees `CUTOVER_AT=plan`, else `CUTOVER_AT=apply`.
    pub at_plan: bool,
}

/// How a test ended, for the plan's readiness: `exit 0`, `exit 3`,
/// `killed by a signal`, `timed out`, `not started`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// A signal ended it.
    Signal,
    /// It ran out of time and its group was killed.
    Timeout,
    /// It could not be started or waited for.
    NotRun,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(code) => write!(f, "exit {code}"),
            Exit::Signal => f.write_str("killed by a signal"),
            Exit::Timeout => f.write_str("timed out"),
            Exit::NotRun => f.write_str("not started"),
        }
    }
}

/// Kills the test's process group when dropped, unless it has exited.
struct Group(Option<Pid>);

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            // The group may be gone already: nothing to do then.
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

/// The last lines of a command's output.
#[derive(Default)]
struct Tail(VecDeque<String>);

impl Tail {
    fn push(&mut self, mut line: String) {
        if line.len() > LINE_BYTES {
            let mut cut = LINE_BYTES;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push_str(" ...");
        }
        if self.0.len() == TAIL_LINES {
            self.0.pop_front();
        }
        self.0.push_back(line);
    }

    fn text(&self) -> String {
        if self.0.is_empty() {
            return " (no output)".to_owned();
        }
        let lines: Vec<String> = self.0.iter().map(|l| format!("  | {l}")).collect();
        format!("; its last output:\n{}", lines.join("\n"))
    }
}

async fn collect(stream: impl AsyncRead + Unpin, tail: Arc<Mutex<Tail>>) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tail.lock().unwrap_or_else(|p| p.into_inner()).push(line);
    }
}

/// Run the test `id` with `spec` against `against`: `Ok` when it exits 0
/// within its timeout.
pub async fn run(id: &StepId, spec: &TestSpec, against: Against<'_>) -> Result<(), StepError> {
    execute(id, spec, against).await.map_err(|(e, _)| e)
}

/// Run the plan's `test` step `step` (at plan time with `at_plan`), saying
/// how a test that failed ended; `None` for a step of another kind.
pub async fn run_step(
    step: &crate::plan::document::Step,
    at_plan: bool,
) -> Option<Result<(), (StepError, Exit)>> {
    let crate::plan::document::StepKind::Test {
        router,
        target,
        endpoints,
        preview_url,
        spec,
        ..
    } = &step.kind
    else {
        return None;
    };
    let against = Against {
        router,
        target,
        endpoints,
        preview_url: preview_url.as_deref(),
        at_plan,
    };
    Some(execute(&step.id, spec, against).await)
}

/// [`run`], saying how a test that failed ended.
pub async fn execute(
    id: &StepId,
    spec: &TestSpec,
    against: Against<'_>,
) -> Result<(), (StepError, Exit)> {
    let shown = command_line(&spec.command);
    let mut command = Command::new(&spec.command[0]);
    command
        .args(&spec.command[1..])
        .envs(&spec.env)
        .env("CUTOVER_ROUTER", against.router)
        .env("CUTOVER_TARGET", against.target)
        .env("CUTOVER_TARGET_ENDPOINTS", against.endpoints.join(","))
        .env("CUTOVER_TEST", id.check().unwrap_or_default())
        .env("CUTOVER_AT", if against.at_plan { "plan" } else { "apply" })
        .current_dir(&spec.workdir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    match against.preview_url {
        Some(url) => command.env("CUTOVER_PREVIEW_URL", url),
        None => command.env_remove("CUTOVER_PREVIEW_URL"),
    };
    let mut child = command.spawn().map_err(|e| {
        let error = StepError::new(
            ErrorKind::Failed,
            format!(
                "`{shown}` could not be started in {}: {e}",
                spec.workdir.display()
            ),
        );
        (error, Exit::NotRun)
    })?;
    let mut group = Group(
        child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .map(Pid::from_raw),
    );
    let tail = Arc::new(Mutex::new(Tail::default()));
    let out = child.stdout.take().map(|s| collect(s, tail.clone()));
    let err = child.stderr.take().map(|s| collect(s, tail.clone()));
    let output = async {
        tokio::join!(
            async {
                if let Some(o) = out {
                    o.await
                }
            },
            async {
                if let Some(e) = err {
                    e.await
                }
            }
        )
    };
    let waited = tokio::time::timeout(spec.timeout, async {
        let (status, _) = tokio::join!(child.wait(), output);
        status
    })
    .await;
    let tail_text = || tail.lock().unwrap_or_else(|p| p.into_inner()).text();
    match waited {
        Ok(Ok(status)) if status.success() => {
            // Its children may live on in the group: they go with it.
            drop(group);
            Ok(())
        }
        Ok(Ok(status)) => {
            drop(group);
            let (how, exit) = match status.code() {
                Some(code) => (format!("exited with status {code}"), Exit::Code(code)),
                None => ("was killed by a signal".to_owned(), Exit::Signal),
            };
            let error = StepError::new(
                ErrorKind::TestFailed,
                format!("`{shown}` {how}{}", tail_text()),
            );
            Err((error, exit))
        }
        Ok(Err(e)) => Err((
            StepError::new(
                ErrorKind::Failed,
                format!("waiting for `{shown}` failed: {e}"),
            ),
            Exit::NotRun,
        )),
        Err(_) => {
            // The whole group, not only the command: a test script's
            // children must not outlive it.
            if let Some(pgid) = group.0.take() {
                let _ = killpg(pgid, Signal::SIGKILL);
            }
            let _ = child.wait().await;
            let error = StepError::new(
                ErrorKind::Timeout,
                format!(
                    "`{shown}` did not finish within {} (its process group was killed){}",
                    duration(spec.timeout),
                    tail_text()
                ),
            );
            Err((error, Exit::Timeout))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn spec(script: &str, timeout: Duration) -> TestSpec {
        TestSpec {
            command: vec!["sh".into(), "-c".into(), script.into()],
            env: [("EXTRA".to_owned(), "x".to_owned())].into(),
            timeout,
            workdir: std::env::temp_dir(),
            at_plan: false,
        }
    }

    fn id() -> StepId {
        StepId::Test("public".into(), "smoke".into())
    }

    const AGAINST: Against<'static> = Against {
        router: "public",
        target: "green",
        endpoints: &[],
        preview_url: Some("http://127.0.0.1:1/"),
        at_plan: false,
    };

    #[tokio::test]
    async fn a_passing_test_sees_its_target_in_its_environment() {
        let script = r#"test "$CUTOVER_ROUTER $CUTOVER_TARGET $CUTOVER_TEST $CUTOVER_PREVIEW_URL $EXTRA $CUTOVER_AT" = "public green smoke http://127.0.0.1:1/ x apply""#;
        run(&id(), &spec(script, Duration::from_secs(10)), AGAINST)
            .await
            .unwrap();
        let at_plan = Against {
            at_plan: true,
            ..AGAINST
        };
        let script = r#"test "$CUTOVER_AT" = plan"#;
        run(&id(), &spec(script, Duration::from_secs(10)), at_plan)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn how_a_failed_test_ended_is_said_for_the_plans_readiness() {
        let spec3 = spec("exit 3", Duration::from_secs(10));
        let (_, exit) = execute(&id(), &spec3, AGAINST).await.unwrap_err();
        assert_eq!(
            (exit.clone(), exit.to_string()),
            (Exit::Code(3), "exit 3".to_owned())
        );
        let slow = spec("sleep 30", Duration::from_millis(200));
        let (_, exit) = execute(&id(), &slow, AGAINST).await.unwrap_err();
        assert_eq!(exit, Exit::Timeout);
        let killed = spec("kill -9 $$", Duration::from_secs(10));
        let (_, exit) = execute(&id(), &killed, AGAINST).await.unwrap_err();
        assert_eq!(exit, Exit::Signal);
    }

    #[tokio::test]
    async fn a_failing_test_says_its_status_and_the_tail_of_its_output() {
        let script = "echo oops >&2; for i in $(seq 1 30); do echo line $i; done; exit 3";
        let e = run(&id(), &spec(script, Duration::from_secs(10)), AGAINST)
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::TestFailed);
        assert!(e.message.starts_with("`sh -c"), "{}", e.message);
        assert!(e.message.contains("exited with status 3"), "{}", e.message);
        // The last 20 lines only (stderr and stdout in the order read).
        let shown: Vec<&str> = e
            .message
            .lines()
            .filter(|l| l.starts_with("  | "))
            .collect();
        assert_eq!(shown.len(), TAIL_LINES, "{}", e.message);
        assert_eq!(shown.last(), Some(&"  | line 30"), "{}", e.message);
        assert!(!shown.contains(&"  | line 1"), "{}", e.message);
    }

    #[tokio::test]
    async fn a_test_that_runs_too_long_is_killed_with_its_children() {
        let pidfile = tempfile::NamedTempFile::new().unwrap();
        let script = format!(
            "sleep 300 & echo $! > {}; echo started; wait",
            pidfile.path().display()
        );
        let e = run(&id(), &spec(&script, Duration::from_millis(500)), AGAINST)
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Timeout);
        assert!(
            e.message.contains("did not finish within 0.5s"),
            "{}",
            e.message
        );
        assert!(e.message.contains("  | started"), "{}", e.message);
        let child: i32 = std::fs::read_to_string(pidfile.path())
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The grandchild was killed with the group (a zombie until init
        // reaps it): asked, with a bound, for the kill to land.
        let alive = || {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .map(|s| !s.contains(") Z "))
                .unwrap_or(false)
        };
        let bound = std::time::Instant::now() + Duration::from_secs(5);
        while alive() && std::time::Instant::now() < bound {
            std::thread::yield_now();
        }
        assert!(!alive(), "the test's child {child} outlived it");
    }

    #[tokio::test]
    async fn a_command_that_does_not_exist_is_an_error_naming_it() {
        let mut s = spec("", Duration::from_secs(1));
        s.command = vec!["/nonexistent/smoke".into()];
        let e = run(&id(), &s, AGAINST).await.unwrap_err();
        assert!(
            e.message
                .contains("`/nonexistent/smoke` could not be started"),
            "{}",
            e.message
        );
    }
}
