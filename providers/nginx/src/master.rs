//! The running nginx master: finding it, testing a configuration the way it
//! would load it, reloading it, and watching its workers.
//!
//! `kill -HUP` succeeds even when the master then refuses the new
//! configuration, and old workers keep accepting connections for a moment
//! after a reload; so a reload is only ever sent after `nginx -t` passed, and
//! it is only over once the old workers (listed from /proc before the signal)
//! have exited.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cutover_provider::ProviderError;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::settings::{Invocation, Resolved};

/// The running master process.
#[derive(Debug, Clone)]
pub(crate) struct Master {
    /// Its process id.
    pub pid: i32,
    /// The arguments it was started with (`-p`, `-c`, `-e`, `-g`), reused by
    /// `nginx -t` unless the settings name them.
    args: Vec<OsString>,
}

impl Master {
    /// Find the master through its pid file and check that it runs (file
    /// and /proc reads, on the blocking pool).
    pub async fn find(config: &Resolved) -> Result<Master, ProviderError> {
        let path = config.pid_file.clone();
        crate::blocking(move || Self::find_blocking(&path)).await?
    }

    fn find_blocking(path: &Path) -> Result<Master, ProviderError> {
        let what = format!("the nginx master (pid file {})", path.display());
        let unreachable =
            |cause: cutover_provider::BoxError| ProviderError::unreachable(&what, cause);
        let text = std::fs::read_to_string(path).map_err(|e| {
            let hint = format!("cannot read the pid file: {e}; is nginx running?");
            unreachable(std::io::Error::new(e.kind(), hint).into())
        })?;
        let pid: i32 = text.trim().parse().ok().filter(|p| *p > 0).ok_or_else(|| {
            unreachable(format!("the pid file holds {:?}, not a process id", text.trim()).into())
        })?;
        if let Err(e) = kill(Pid::from_raw(pid), None) {
            if e != nix::errno::Errno::EPERM {
                return Err(unreachable(
                    format!("process {pid} does not run ({e}); the pid file is stale").into(),
                ));
            }
        }
        let args = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|raw| master_args(&raw))
            .unwrap_or_default();
        Ok(Master { pid, args })
    }

    /// The master's children now (its workers, cache manager and loader):
    /// a walk of /proc, on the blocking pool.
    pub async fn children(&self) -> Result<BTreeSet<i32>, ProviderError> {
        let pid = self.pid;
        crate::blocking(move || children_of(pid)).await
    }

    /// Ask the master to reload its configuration.
    pub fn reload(&self) -> Result<(), ProviderError> {
        kill(Pid::from_raw(self.pid), Signal::SIGHUP).map_err(|e| {
            ProviderError::failed(format!("cannot signal the nginx master {}", self.pid))
                .with_source(e)
        })
    }

    /// Run `nginx -t` with the master's prefix, main config and `-g`
    /// directives (or the settings'), and fail with nginx's own words.
    pub async fn test_config(
        &self,
        invocation: &Invocation,
        timeout: Duration,
    ) -> Result<(), ProviderError> {
        let binary = {
            let invocation = invocation.clone();
            crate::blocking(move || find_binary(&invocation)).await??
        };
        let mut command = tokio::process::Command::new(&binary);
        command.arg("-t").args(self.test_args(invocation));
        command
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let output = tokio::time::timeout(timeout, command.output())
            .await
            .map_err(|_| ProviderError::timeout(format!("`{} -t`", binary.display()), timeout))?
            .map_err(|e| ProviderError::unreachable(format!("`{} -t`", binary.display()), e))?;
        if output.status.success() {
            return Ok(());
        }
        let mut said = String::from_utf8_lossy(&output.stderr).trim().to_string();
        if said.is_empty() {
            said = String::from_utf8_lossy(&output.stdout).trim().to_string();
        }
        Err(ProviderError::refused(said))
    }

    fn test_args(&self, invocation: &Invocation) -> Vec<OsString> {
        let mut args = Vec::new();
        let mut inherited = self.args.chunks(2);
        for pair in inherited.by_ref() {
            let [flag, value] = pair else { continue };
            let overridden = (flag == "-c" && invocation.config.is_some())
                || (flag == "-p" && invocation.prefix.is_some());
            if !overridden {
                args.extend([flag.clone(), value.clone()]);
            }
        }
        if let Some(config) = &invocation.config {
            args.extend([OsString::from("-c"), config.clone().into_os_string()]);
        }
        if let Some(prefix) = &invocation.prefix {
            args.extend([OsString::from("-p"), prefix.clone().into_os_string()]);
        }
        args
    }
}

/// The `-p`, `-c`, `-e` and `-g` options of a master's `/proc/<pid>/cmdline`,
/// as flag/value pairs (`-cFILE` becomes `-c`, `FILE`).
///
/// nginx overwrites its arguments with its title, `nginx: master process
/// <command line>`, words joined by spaces; then `-g`'s value (which holds
/// spaces) cannot be told apart and is left out: `nginx -t` does not need it
/// unless the main config relies on it, and then `config` should say so.
fn master_args(raw: &[u8]) -> Vec<OsString> {
    let text = String::from_utf8_lossy(raw);
    let words: Vec<&str> = text.split('\0').filter(|w| !w.is_empty()).collect();
    let (words, globals): (Vec<&str>, bool) = match words.as_slice() {
        [title] => match title.split_once("master process ") {
            Some((_, line)) => (line.split_whitespace().collect(), false),
            None => (Vec::new(), false),
        },
        _ => (words, true),
    };
    let mut args = Vec::new();
    let mut i = 1;
    while i < words.len() {
        let word = words[i];
        i += 1;
        let Some(flag) = ["-p", "-c", "-e", "-g"]
            .into_iter()
            .find(|f| word.starts_with(f))
        else {
            continue;
        };
        let value = if word.len() > 2 {
            &word[2..]
        } else if let Some(next) = words.get(i) {
            i += 1;
            next
        } else {
            continue;
        };
        if flag != "-g" || globals {
            args.push(OsString::from(flag));
            args.push(OsString::from(value));
        }
    }
    args
}

/// The live (not zombie) children of `parent`, from /proc.
pub(crate) fn children_of(parent: i32) -> BTreeSet<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return BTreeSet::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| parent_and_state(&stat))
                .is_some_and(|(ppid, state)| ppid == parent && state != 'Z' && state != 'X')
        })
        .collect()
}

/// The parent pid and state of a `/proc/<pid>/stat` line. The command name
/// sits in parentheses and may hold anything, so fields are counted after the
/// last `)`.
fn parent_and_state(stat: &str) -> Option<(i32, char)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((ppid, state))
}

/// The nginx binary: the settings' (a bare name is looked up in PATH), or
/// `nginx` in PATH, /usr/sbin, /usr/local/sbin or /sbin.
fn find_binary(invocation: &Invocation) -> Result<PathBuf, ProviderError> {
    let name = invocation
        .binary
        .clone()
        .unwrap_or_else(|| PathBuf::from("nginx"));
    if name.components().count() > 1 {
        return Ok(name);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(&name))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| {
            ProviderError::settings(
                Some("binary".to_string()),
                format!(
                    "in `nginx` block: no `{}` in PATH, /usr/sbin, /usr/local/sbin or /sbin; set `binary` to the nginx that runs",
                    name.display()
                ),
            )
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_args_keep_prefix_config_and_globals() {
        let raw = b"nginx: master process /usr/sbin/nginx\0-p\0/srv/\0-c/srv/nginx.conf\0-g\0daemon off;\0-e\0/srv/e.log\0-q\0";
        let args: Vec<String> = master_args(raw)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            args,
            [
                "-p",
                "/srv/",
                "-c",
                "/srv/nginx.conf",
                "-g",
                "daemon off;",
                "-e",
                "/srv/e.log"
            ]
        );
        // nginx rewrites its title: `-g` cannot be split from it.
        let args: Vec<String> = master_args(
            b"nginx: master process /usr/sbin/nginx -p /srv/ -g daemon off; -c /srv/n.conf\0\0\0",
        )
        .into_iter()
        .map(|a| a.into_string().unwrap())
        .collect();
        assert_eq!(args, ["-p", "/srv/", "-c", "/srv/n.conf"]);
    }

    #[test]
    fn settings_override_the_masters_args() {
        let master = Master {
            pid: 1,
            args: ["-p", "/a/", "-c", "/a/n.conf", "-g", "daemon off;"]
                .map(OsString::from)
                .to_vec(),
        };
        let invocation = Invocation {
            binary: None,
            config: Some("/b/n.conf".into()),
            prefix: None,
        };
        let args: Vec<String> = master
            .test_args(&invocation)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(args, ["-p", "/a/", "-g", "daemon off;", "-c", "/b/n.conf"]);
    }

    #[test]
    fn stat_lines() {
        assert_eq!(
            parent_and_state("42 (nginx: worker) S 41 42 42 0"),
            Some((41, 'S'))
        );
        assert_eq!(parent_and_state("42 (a) b) Z 7 1"), Some((7, 'Z')));
        assert_eq!(parent_and_state("garbage"), None);
    }

    #[test]
    fn children_of_this_process() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let me = std::process::id() as i32;
        assert!(children_of(me).contains(&(child.id() as i32)));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!children_of(me).contains(&(child.id() as i32)));
    }
}
