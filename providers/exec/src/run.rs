//! Running one operator command: one JSON object in on stdin, one out on stdout.
//!
//! This is the whole exec protocol's transport (docs/exec-protocol.md). The
//! command runs in a process group of its own so that a timeout kills
//! everything it started, not only the shell at its top; and its stderr is
//! kept only to explain a failure.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use cutover_provider::{ErrorKind, ProviderError};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::task::JoinHandle;

/// How much of the command's stderr goes into an error message.
const STDERR_TAIL_BYTES: usize = 2000;
/// How much of malformed stdout is quoted in an error message.
const STDOUT_QUOTE_CHARS: usize = 200;

/// One command to run, and what it is for.
pub(crate) struct Invocation<'a> {
    /// The program and its arguments, as written in the settings.
    pub command: &'a [String],
    /// The working directory; relative programs resolve against it too.
    pub workdir: &'a Path,
    /// Environment variables added to cutover's own.
    pub env: BTreeMap<String, String>,
    /// How long the command may run.
    pub timeout: Duration,
    /// What the run is for, for messages: `deploy of environment "blue"`.
    pub purpose: String,
    /// The kind of error a non-zero exit is: [`ErrorKind::Refused`] for a
    /// router's `check` (the switch could not work), else
    /// [`ErrorKind::Failed`].
    pub exit_means: ErrorKind,
}

impl Invocation<'_> {
    /// The command as the operator wrote it, for messages.
    fn shown(&self) -> String {
        format!("`{}`", self.command.join(" "))
    }

    /// Run the command with `input` on stdin and parse its stdout as `T`.
    pub async fn run<T: DeserializeOwned>(&self, input: &Value) -> Result<T, ProviderError> {
        let output = self.run_raw(input).await?;
        self.decode(&output)
    }

    /// Parse the command's `stdout` as the reply `T`: exactly one JSON
    /// object, of the shape the protocol gives `T`.
    pub fn decode<T: DeserializeOwned>(&self, stdout: &[u8]) -> Result<T, ProviderError> {
        let value = self.parse_object(stdout)?;
        serde_json::from_value(value).map_err(|e| {
            ProviderError::failed(format!(
                "invalid reply from {} ({}): {e}; see docs/exec-protocol.md",
                self.shown(),
                self.purpose
            ))
        })
    }

    /// Run the command; its stdout when it exits 0 in time.
    async fn run_raw(&self, input: &Value) -> Result<Vec<u8>, ProviderError> {
        let program = &self.command[0];
        // A relative path is resolved here: which directory `Command` would
        // resolve it against once `current_dir` is set is unspecified.
        let program = if program.contains('/') {
            self.workdir.join(program)
        } else {
            program.into()
        };
        let mut child = Command::new(&program)
            .args(&self.command[1..])
            .current_dir(self.workdir)
            .envs(&self.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                let cause = std::io::Error::new(
                    e.kind(),
                    format!("cannot start it in {}: {e}", self.workdir.display()),
                );
                ProviderError::unreachable(
                    format!("command {} ({})", self.shown(), self.purpose),
                    cause,
                )
            })?;
        let pid = child.id().map(|id| id as i32);
        // Stopped half-way (the apply was stopped by a second signal, or its
        // task dropped), the command's whole group goes, not just its first
        // process: kill_on_drop alone would leave what it started running.
        let mut group = GroupGuard(pid);

        let mut body = serde_json::to_vec(input).expect("JSON values serialize");
        body.push(b'\n');
        let mut stdin = child.stdin.take().expect("stdin is piped");
        // A command that does not read its input closes the pipe; that is fine.
        let writer = tokio::spawn(async move {
            let _ = stdin.write_all(&body).await;
        });
        let stdout = collect(child.stdout.take().expect("stdout is piped"));
        let stderr = collect(child.stderr.take().expect("stderr is piped"));

        // The command is done when it has exited and closed its output.
        let finished = async {
            let status = child.wait().await;
            let out = join(stdout).await;
            let err = join(stderr).await;
            (status, out, err)
        };
        let (status, out, err) = match tokio::time::timeout(self.timeout, finished).await {
            Ok(done) => done,
            Err(_) => {
                writer.abort();
                if let Some(pid) = pid {
                    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                }
                // Reap the shell; kill_on_drop covers a wait that fails.
                let _ = child.kill().await;
                return Err(ProviderError::timeout(
                    format!("command {} ({})", self.shown(), self.purpose),
                    self.timeout,
                ));
            }
        };
        // It ran to its end: what it left running in its group is its own.
        group.0 = None;
        let status = status.map_err(|e| {
            ProviderError::failed(format!("cannot wait for {}", self.shown())).with_source(e)
        })?;
        if !status.success() {
            return Err(self.failure(status, &err));
        }
        Ok(out)
    }

    fn failure(&self, status: ExitStatus, stderr: &[u8]) -> ProviderError {
        let text = String::from_utf8_lossy(stderr);
        let text = text.trim_end();
        let tail = if text.len() > STDERR_TAIL_BYTES {
            let mut start = text.len() - STDERR_TAIL_BYTES;
            while !text.is_char_boundary(start) {
                start += 1;
            }
            format!("...{}", &text[start..])
        } else if text.is_empty() {
            "(nothing on stderr)".to_string()
        } else {
            text.to_string()
        };
        let message = format!(
            "{} ({}) failed with {status}:\n{tail}",
            self.shown(),
            self.purpose
        );
        match self.exit_means {
            ErrorKind::Refused => ProviderError::refused(message),
            _ => ProviderError::failed(message),
        }
    }

    /// Parse stdout as exactly one JSON object.
    fn parse_object(&self, stdout: &[u8]) -> Result<Value, ProviderError> {
        let malformed = |why: String| {
            let text = String::from_utf8_lossy(stdout);
            let text = text.trim();
            let quoted = if text.is_empty() {
                "nothing".to_string()
            } else {
                let start: String = text.chars().take(STDOUT_QUOTE_CHARS).collect();
                let more = if start.len() < text.len() { "..." } else { "" };
                format!("`{start}{more}`")
            };
            ProviderError::failed(format!(
                "malformed JSON from {} ({}): {why}; it printed {quoted}, \
                 and must print one JSON object",
                self.shown(),
                self.purpose
            ))
        };
        match serde_json::from_slice::<Value>(stdout) {
            Ok(value @ Value::Object(_)) => Ok(value),
            Ok(_) => Err(malformed("not an object".to_string())),
            Err(e) => Err(malformed(e.to_string())),
        }
    }
}

/// Read a pipe to its end in the background.
fn collect(mut pipe: impl AsyncRead + Unpin + Send + 'static) -> JoinHandle<Vec<u8>> {
    tokio::spawn(async move {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes).await;
        bytes
    })
}

async fn join(handle: JoinHandle<Vec<u8>>) -> Vec<u8> {
    handle.await.unwrap_or_default()
}

/// Kills a command's process group when dropped, unless disarmed (its
/// `Option` taken) once the command ran to its end.
struct GroupGuard(Option<i32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}
