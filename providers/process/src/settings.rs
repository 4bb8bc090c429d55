//! The settings of a `process { ... }` block, and how their relative paths and
//! durations are resolved.
//!
//! Everything here is checked by `validate` before anything is started, so a
//! typo in the configuration is reported with the attribute's name instead of
//! surfacing as a failed deploy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cutover_provider::{name as instance, parse_settings, ProviderError};
use serde::Deserialize;
use serde_json::Value;

/// The grace period between SIGTERM and SIGKILL when `grace` is not set.
const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// The body of a `process { ... }` block, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    #[serde(deserialize_with = "cutover_provider::lenient::strings")]
    command: Vec<String>,
    #[serde(default, deserialize_with = "cutover_provider::lenient::string_map")]
    env: BTreeMap<String, String>,
    log: Option<String>,
    grace: Option<String>,
    workdir: Option<String>,
}

/// The settings of a `process { ... }` block, checked and resolved.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Settings {
    /// The program and its arguments, as written.
    pub command: Vec<String>,
    /// Extra environment variables for the process.
    pub env: BTreeMap<String, String>,
    /// The log file the process's stdout and stderr are appended to.
    pub log: PathBuf,
    /// How long to wait after SIGTERM before SIGKILL.
    pub grace: Duration,
    /// The process's working directory.
    pub workdir: PathBuf,
}

impl Settings {
    /// Parse and resolve the settings of environment `name`, whose relative
    /// paths are relative to `base` (the configuration directory).
    pub fn parse(body: &Value, name: &str, base: &Path) -> Result<Settings, ProviderError> {
        let raw: RawSettings = parse_settings("process", body)?;
        if raw.command.is_empty() || raw.command[0].is_empty() {
            return Err(settings_error(
                "command",
                "`command` must name a program, e.g. [\"./demo-app\", \"--port\", \"9101\"]",
            ));
        }
        let grace = match &raw.grace {
            Some(text) => parse_duration(text).map_err(|e| settings_error("grace", &e))?,
            None => DEFAULT_GRACE,
        };
        let log = match &raw.log {
            Some(path) => base.join(path),
            None => base
                .join(".cutover")
                .join("logs")
                .join(format!("{}.log", instance::flat(name))),
        };
        let workdir = raw
            .workdir
            .as_ref()
            .map_or_else(|| base.to_path_buf(), |w| base.join(w));
        Ok(Settings {
            command: raw.command,
            env: raw.env,
            log,
            grace,
            workdir,
        })
    }
}

/// A settings error about `field` of the `process` block.
fn settings_error(field: &str, message: &str) -> ProviderError {
    ProviderError::settings(
        Some(field.to_string()),
        format!("in `process` block: {message}"),
    )
}

/// Parse a duration such as `10s`, `500ms`, `2m` or `1m30s`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    cutover_provider::parse_duration(text)
}

/// Find the program to run: a path with a `/` is relative to `base` (the
/// configuration directory), a bare name is looked up in `PATH`.
pub(crate) fn resolve_program(program: &str, base: &Path) -> Result<PathBuf, String> {
    if program.contains('/') {
        let path = base.join(program);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("program `{}` does not exist", path.display()))
        };
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_var)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| format!("program `{program}` was not found in PATH"))
}

/// Whether `path` is a file with an execute bit.
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        for bad in ["", "10", "s", "ten s", "10 s", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn defaults_resolve_against_the_configuration_directory() {
        let s = Settings::parse(&json!({"command": ["./app"]}), "blue", Path::new("/cfg")).unwrap();
        assert_eq!(s.log, PathBuf::from("/cfg/.cutover/logs/blue.log"));
        assert_eq!(s.workdir, PathBuf::from("/cfg"));
        assert_eq!(s.grace, DEFAULT_GRACE);
    }

    #[test]
    fn errors_name_the_field() {
        let field = |body: Value| match Settings::parse(&body, "b", Path::new("/")) {
            Err(e) if e.kind() == cutover_provider::ErrorKind::Settings => {
                e.field().map(str::to_string)
            }
            other => panic!("expected a settings error, got {other:?}"),
        };
        assert_eq!(field(json!({})).as_deref(), Some("command"));
        assert_eq!(field(json!({"command": []})).as_deref(), Some("command"));
        assert_eq!(
            field(json!({"command": ["x"], "comand": 1})).as_deref(),
            Some("comand")
        );
        assert_eq!(
            field(json!({"command": ["x"], "grace": "soon"})).as_deref(),
            Some("grace")
        );
        // A number is its text, as Terraform's string arguments take it;
        // a list is no string.
        let s = Settings::parse(
            &json!({"command": ["x", 9101], "env": {"A": 1}}),
            "b",
            Path::new("/"),
        )
        .unwrap();
        assert_eq!((s.command[1].as_str(), s.env["A"].as_str()), ("9101", "1"));
        assert_eq!(
            field(json!({"command": ["x"], "env": {"A": [1]}})).as_deref(),
            Some("env")
        );
    }

    #[test]
    fn an_instance_logs_under_its_flat_name() {
        let s = Settings::parse(
            &json!({"command": ["./app"]}),
            r#"green["api"]"#,
            Path::new("/cfg"),
        )
        .unwrap();
        assert_eq!(s.log, PathBuf::from("/cfg/.cutover/logs/green.api.log"));
    }

    #[test]
    fn programs_are_found() {
        assert!(resolve_program("sh", Path::new("/")).is_ok());
        assert!(resolve_program("no-such-program-here", Path::new("/")).is_err());
        assert!(resolve_program("./missing", Path::new("/tmp")).is_err());
        assert_eq!(
            resolve_program("bin/sh", Path::new("/")),
            Ok(PathBuf::from("/bin/sh"))
        );
    }
}
