//! A small builder for CLI cases: a configuration directory in, arguments,
//! and the exit status, stdout and stderr out (after just's `tests/test.rs`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `cutover` binary under test.
pub fn cutover_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cutover"))
}

/// The demo app the examples run.
pub fn demo_app_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_demo-app"))
}

/// A configuration directory and the commands run in it.
pub struct Case {
    pub dir: tempfile::TempDir,
}

/// What one run printed.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Fail with everything printed unless the exit status is `code`.
    #[track_caller]
    pub fn code(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "unexpected exit status\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Fail unless stdout contains `text`.
    #[track_caller]
    pub fn stdout_has(self, text: &str) -> Self {
        assert!(
            self.stdout.contains(text),
            "stdout lacks {text:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Fail unless stderr contains `text`.
    #[track_caller]
    pub fn stderr_has(self, text: &str) -> Self {
        assert!(
            self.stderr.contains(text),
            "stderr lacks {text:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

impl Case {
    /// An empty configuration directory.
    pub fn new() -> Case {
        Case {
            dir: tempfile::Builder::new()
                .prefix("cutover-case")
                .tempdir()
                .expect("tempdir"),
        }
    }

    /// A directory holding one `main.hcl`.
    pub fn with_main(text: &str) -> Case {
        let case = Case::new();
        case.write("main.hcl", text);
        case
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write a file into the directory.
    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join(name), text).expect("write config file");
    }

    /// Run `cutover -C DIR ARGS...` with colour off.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    /// Run with extra environment variables.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(cutover_bin());
        cmd.arg("-C")
            .arg(self.dir.path())
            .args(args)
            .env("NO_COLOR", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let Output {
            status,
            stdout,
            stderr,
        } = cmd.output().expect("run cutover");
        Run {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    /// The state file's bytes, if it exists.
    pub fn state_bytes(&self) -> Option<Vec<u8>> {
        std::fs::read(self.dir.path().join("cutover.state.json")).ok()
    }
}

/// Stops, by process id, the processes the `process` backend started for a
/// case (their pids are in the state file), when dropped.
pub struct ProcessReaper(pub PathBuf);

impl Drop for ProcessReaper {
    fn drop(&mut self) {
        let Ok(text) = std::fs::read_to_string(&self.0) else {
            return;
        };
        let Ok(state) = serde_json::from_str::<serde_json::Value>(&text) else {
            return;
        };
        if let Some(envs) = state.get("environments").and_then(|e| e.as_object()) {
            for env in envs.values() {
                if let Some(pid) = env.pointer("/private/pid").and_then(|p| p.as_i64()) {
                    // Signal the process group the backend created (setsid).
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::Signal::SIGTERM,
                    );
                }
            }
        }
    }
}
