//! The committed history of the state file, read with `git log` and `git
//! show`, for `cutover state check`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::super::from_bytes;
use super::Version;

/// The git work tree holding the state file.
pub(super) struct Git {
    /// The directory holding the state file (where git runs).
    dir: PathBuf,
    /// The file's path from the top of the work tree.
    path: String,
}

impl Git {
    pub(super) fn find(state: &Path) -> Option<Git> {
        let dir = match state.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut git = Git {
            dir,
            path: String::new(),
        };
        let prefix = git.run(&["rev-parse", "--show-prefix"])?;
        let name = state.file_name()?.to_str()?;
        git.path = format!("{}{name}", String::from_utf8_lossy(&prefix).trim());
        Some(git)
    }

    fn run(&self, args: &[&str]) -> Option<Vec<u8>> {
        let out = Command::new("git")
            .arg("-C")
            .arg(&self.dir)
            .args(args)
            .output()
            .ok()?;
        out.status.success().then_some(out.stdout)
    }

    /// The state at `rev`, when it holds one that parses.
    fn version_at(&self, rev: &str, commit: Option<String>) -> Option<(Version, Vec<u8>)> {
        let bytes = self.run(&["show", &format!("{rev}:{}", self.path)])?;
        let state = from_bytes(Path::new(&self.path), &bytes).ok()?;
        let version = Version {
            lineage: state.lineage,
            serial: state.serial,
            commit,
        };
        Some((version, bytes))
    }

    /// Every committed version of the file reachable from HEAD (and from
    /// MERGE_HEAD during a merge), newest first; versions that do not parse
    /// (conflict markers committed by mistake) are left out.
    pub(super) fn versions(&self) -> Vec<(Version, Vec<u8>)> {
        let mut revs = vec!["HEAD"];
        if self
            .run(&["rev-parse", "-q", "--verify", "MERGE_HEAD"])
            .is_some()
        {
            revs.push("MERGE_HEAD");
        }
        let mut args = vec!["log", "--full-history", "--topo-order", "--format=%H %h %s"];
        args.extend(&revs);
        args.extend(["--", &self.path]);
        let Some(log) = self.run(&args) else {
            return Vec::new();
        };
        String::from_utf8_lossy(&log)
            .lines()
            .filter_map(|line| {
                let (full, described) = line.split_once(' ')?;
                self.version_at(full, Some(described.to_string()))
            })
            .collect()
    }

    /// The versions the file was made from: HEAD's (and MERGE_HEAD's) when
    /// the file differs from HEAD, else those in the parents of the newest
    /// commit that holds these bytes.
    pub(super) fn made_from(&self, versions: &[(Version, Vec<u8>)], bytes: &[u8]) -> Vec<Version> {
        let mut revs: Vec<String> = Vec::new();
        match versions.first() {
            Some((v, b)) if b.as_slice() == bytes => {
                let id = v.commit.as_deref().and_then(|c| c.split(' ').next());
                let parents = id.and_then(|id| self.run(&["log", "-1", "--format=%P", id]));
                let parents = parents.map(|p| String::from_utf8_lossy(&p).into_owned());
                revs.extend(
                    parents
                        .unwrap_or_default()
                        .split_whitespace()
                        .map(String::from),
                );
            }
            _ => {
                revs.push("HEAD".into());
                if self
                    .run(&["rev-parse", "-q", "--verify", "MERGE_HEAD"])
                    .is_some()
                {
                    revs.push("MERGE_HEAD".into());
                }
            }
        }
        revs.iter()
            .filter_map(|rev| {
                let described = self.run(&["log", "-1", "--format=%h %s", rev])?;
                let described = String::from_utf8_lossy(&described).trim().to_string();
                self.version_at(rev, Some(described)).map(|(v, _)| v)
            })
            .collect()
    }
}
