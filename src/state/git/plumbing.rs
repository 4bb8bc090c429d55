//! The git commands the git backend runs, in a scratch repository of its
//! own.
//!
//! Every command is `git --git-dir=SCRATCH ...`: a bare repository in a
//! temporary directory, removed with the backend, into which the two refs
//! are fetched (shallow: only their tips matter) and in which the commits
//! are built with plumbing (`hash-object`, `mktree`, a temporary index for
//! `read-tree`/`update-index`/`write-tree`, `commit-tree`), so that nothing
//! is ever written into the operator's checkout. The environment is made
//! predictable: no terminal prompt (`GIT_TERMINAL_PROMPT=0`), messages in
//! the C locale, none of the variables that would point git at another
//! repository (a cutover run from a git hook inherits them), and the
//! committer given explicitly rather than read from the user's config.
//!
//! Nothing waits forever: each command is stopped after [`TIMEOUT`]. It runs
//! in a process group of its own, so that stopping it also stops what it
//! started (`ssh`, `git-remote-https`), and so that a Ctrl-C meant for
//! cutover (which lets running steps finish and records them) does not kill
//! a push half-way. (So git cannot ask on the terminal either: an SSH key
//! needs its agent.) A cutover killed with SIGKILL cannot remove its
//! scratch directory; its name, `cutover-git-PID-...`, says whose it was.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::remote::Remote;

/// How long one git command may run before it is stopped.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(60);

/// Variables that would point git at another repository than the scratch
/// one. Configuration given through the environment (`GIT_CONFIG_COUNT`,
/// `GIT_CONFIG_KEY_0`, ...: a CI job's credentials) is kept.
const INHERITED: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_COMMON_DIR",
    "GIT_QUARANTINE_PATH",
];

/// Who makes a commit: its author and committer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Who {
    /// The name (`alice`).
    pub name: String,
    /// The address (`alice@build-01`).
    pub email: String,
}

/// What a finished git command left.
struct Out {
    ok: bool,
    stdout: Vec<u8>,
    stderr: String,
}

/// One ref a push changes: to `new` (`None`: delete it), only if it is
/// `expect` on the remote now (`None`: only if it does not exist).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Update<'a> {
    /// The full ref name (`refs/heads/cutover-state`).
    pub refname: &'a str,
    /// The commit it is to point at.
    pub new: Option<&'a str>,
    /// What it must be now.
    pub expect: Option<&'a str>,
}

/// How a push ended, when git could talk to the remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Every ref was updated.
    Done,
    /// A ref was refused (git's reason: `stale info`, `fetch first`,
    /// `failed to update ref`, a hook's message); with `--atomic`, none
    /// was updated.
    Rejected(String),
}

/// The scratch repository, and the remote it talks to.
pub(crate) struct Git {
    dir: tempfile::TempDir,
    remote: Remote,
}

impl Git {
    /// Create the scratch repository for `remote`.
    pub fn init(remote: Remote) -> Result<Git, String> {
        // The pid in the name says whose it is: a run killed with SIGKILL
        // cannot remove it.
        let dir = tempfile::Builder::new()
            .prefix(&format!("cutover-git-{}-", std::process::id()))
            .tempdir()
            .map_err(|e| format!("cannot create a scratch git repository: {e}"))?;
        let git = Git { dir, remote };
        git.ok(
            "init",
            &["init", "--quiet", "--bare", "--template="],
            None,
            &[],
        )?;
        Ok(git)
    }

    /// Run `git ARGS` with `input` on its stdin and `env` added; `Err` when
    /// it could not be run or did not finish in time.
    fn run(
        &self,
        args: &[&str],
        input: Option<&[u8]>,
        env: &[(&str, &str)],
    ) -> Result<Out, String> {
        let what = args.first().copied().unwrap_or("");
        let mut cmd = Command::new("git");
        cmd.arg("--git-dir")
            .arg(self.dir.path())
            .args(["-c", "gc.auto=0", "-c", "core.logAllRefUpdates=false"])
            .args(args)
            .current_dir(self.dir.path())
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C")
            .env("LANGUAGE", "C")
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        for var in INHERITED {
            cmd.env_remove(var);
        }
        cmd.envs(env.iter().copied());
        let mut child = cmd.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                "the git backend runs the `git` command, which is not installed or not on PATH \
                 (apt-get install git)"
                    .to_owned()
            } else {
                format!("cannot run git {what}: {e}")
            }
        })?;
        let pid = child.id();
        if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
            let bytes = bytes.to_vec();
            // A thread, so that a large input and a large output cannot
            // block each other; a git that stops reading ends it (EPIPE).
            std::thread::spawn(move || {
                let _ = stdin.write_all(&bytes);
            });
        }
        let (send, done) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = send.send(child.wait_with_output());
        });
        match done.recv_timeout(TIMEOUT) {
            Ok(Ok(out)) => Ok(Out {
                ok: out.status.success(),
                stdout: out.stdout,
                stderr: self.remote.scrub(&String::from_utf8_lossy(&out.stderr)),
            }),
            Ok(Err(e)) => Err(format!("git {what}: {e}")),
            Err(_) => {
                // The group is ours (process_group(0) above), and its leader
                // is not reaped until the waiting thread sees it exit.
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
                let _ = done.recv_timeout(Duration::from_secs(5));
                Err(format!(
                    "git {what} did not finish within {}s and was stopped",
                    TIMEOUT.as_secs()
                ))
            }
        }
    }

    /// [`Git::run`], which must succeed; its stdout.
    fn ok(
        &self,
        what: &str,
        args: &[&str],
        input: Option<&[u8]>,
        env: &[(&str, &str)],
    ) -> Result<Vec<u8>, String> {
        let out = self.run(args, input, env)?;
        if out.ok {
            Ok(out.stdout)
        } else {
            Err(failed(what, &out.stderr))
        }
    }

    /// [`Git::ok`], its stdout one trimmed line (an object id).
    fn line(&self, what: &str, args: &[&str], input: Option<&[u8]>) -> Result<String, String> {
        let out = self.ok(what, args, input, &[])?;
        Ok(String::from_utf8_lossy(&out).trim().to_owned())
    }

    /// The commits the remote's `refs` point at now (absent: no such ref).
    pub fn ls_remote(&self, refs: &[&str]) -> Result<BTreeMap<String, String>, String> {
        let mut args = vec!["ls-remote", "--", self.remote.arg.as_str()];
        args.extend_from_slice(refs);
        let out = self.ok("ls-remote", &args, None, &[])?;
        // A pattern matches any ref ending in it: keep the exact names.
        Ok(String::from_utf8_lossy(&out)
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .filter(|(_, name)| refs.contains(name))
            .map(|(sha, name)| (name.to_owned(), sha.to_owned()))
            .collect())
    }

    /// Whether the scratch repository has commit `sha` already.
    pub fn has_commit(&self, sha: &str) -> bool {
        let object = format!("{sha}^{{commit}}");
        self.run(&["cat-file", "-e", &object], None, &[])
            .is_ok_and(|out| out.ok)
    }

    /// Fetch the tip of the remote's `refname` into `local`; the commit.
    pub fn fetch(&self, refname: &str, local: &str) -> Result<String, String> {
        let refspec = format!("+{refname}:{local}");
        let args = [
            "fetch",
            "--quiet",
            "--no-tags",
            "--depth=1",
            "--",
            self.remote.arg.as_str(),
            refspec.as_str(),
        ];
        self.ok("fetch", &args, None, &[])?;
        self.line("rev-parse", &["rev-parse", "--verify", local], None)
    }

    /// The files at `paths` in `commit` (`None`: no such file).
    pub fn files(&self, commit: &str, paths: &[&str]) -> Result<Vec<Option<Vec<u8>>>, String> {
        let input: String = paths.iter().map(|p| format!("{commit}:{p}\n")).collect();
        let out = self.ok(
            "cat-file",
            &["cat-file", "--batch"],
            Some(input.as_bytes()),
            &[],
        )?;
        parse_batch(&out, paths.len())
    }

    /// Store `bytes` as a blob; its id.
    pub fn blob(&self, bytes: &[u8]) -> Result<String, String> {
        self.line(
            "hash-object",
            &["hash-object", "-w", "--stdin"],
            Some(bytes),
        )
    }

    /// A tree of files at its top, `(name, blob)`; its id.
    pub fn flat_tree(&self, files: &[(&str, &str)]) -> Result<String, String> {
        let input: String = files
            .iter()
            .map(|(name, blob)| format!("100644 blob {blob}\t{name}\n"))
            .collect();
        self.line("mktree", &["mktree"], Some(input.as_bytes()))
    }

    /// The tree of `parent` (`None`: an empty tree) with the file at `path`
    /// (which may be in directories) replaced by `blob`; its id.
    pub fn tree_with(
        &self,
        parent: Option<&str>,
        path: &str,
        blob: &str,
    ) -> Result<String, String> {
        let index = self.dir.path().join("cutover.index");
        let _ = std::fs::remove_file(&index);
        let index_str = index.to_string_lossy().into_owned();
        let env = [("GIT_INDEX_FILE", index_str.as_str())];
        let read = match parent {
            Some(commit) => vec!["read-tree", commit],
            None => vec!["read-tree", "--empty"],
        };
        self.ok("read-tree", &read, None, &env)?;
        let info = format!("100644,{blob},{path}");
        let update = ["update-index", "--add", "--cacheinfo", info.as_str()];
        self.ok("update-index", &update, None, &env)?;
        let tree = self.ok("write-tree", &["write-tree"], None, &env);
        let _ = std::fs::remove_file(&index);
        Ok(String::from_utf8_lossy(&tree?).trim().to_owned())
    }

    /// A commit of `tree` on `parent` with `message`, made by `who`; its id.
    pub fn commit(
        &self,
        tree: &str,
        parent: Option<&str>,
        message: &str,
        who: &Who,
    ) -> Result<String, String> {
        let mut args = vec!["commit-tree", tree];
        if let Some(parent) = parent {
            args.extend(["-p", parent]);
        }
        args.extend(["-F", "-"]);
        let env = [
            ("GIT_AUTHOR_NAME", who.name.as_str()),
            ("GIT_AUTHOR_EMAIL", who.email.as_str()),
            ("GIT_COMMITTER_NAME", who.name.as_str()),
            ("GIT_COMMITTER_EMAIL", who.email.as_str()),
        ];
        let out = self.ok("commit-tree", &args, Some(message.as_bytes()), &env)?;
        Ok(String::from_utf8_lossy(&out).trim().to_owned())
    }

    /// Push `updates`, each a compare-and-swap on the remote
    /// (`--force-with-lease=REF:EXPECT`, which the receiving end checks
    /// under its ref lock); `atomic`: all or none.
    pub fn push(&self, updates: &[Update<'_>], atomic: bool) -> Result<Pushed, String> {
        let mut args = vec!["push".to_owned(), "--porcelain".to_owned()];
        if atomic {
            args.push("--atomic".to_owned());
        }
        for u in updates {
            let expect = u.expect.unwrap_or("");
            args.push(format!("--force-with-lease={}:{expect}", u.refname));
        }
        args.push("--".to_owned());
        args.push(self.remote.arg.clone());
        for u in updates {
            args.push(format!("{}:{}", u.new.unwrap_or(""), u.refname));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.run(&args, None, &[])?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        match parse_porcelain(&stdout, updates) {
            Some(Pushed::Done) if out.ok => Ok(Pushed::Done),
            Some(Pushed::Rejected(reason)) => Ok(Pushed::Rejected(self.remote.scrub(&reason))),
            _ => Err(failed("push", &out.stderr)),
        }
    }
}

/// A git command's failure in one line: `git push failed: fatal: ...`.
fn failed(what: &str, stderr: &str) -> String {
    let text = stderr.lines().map(str::trim).filter(|l| !l.is_empty());
    let mut joined = String::new();
    for line in text {
        if !joined.is_empty() {
            // git breaks `unable to connect to HOST:` before the reason.
            joined.push_str(if joined.ends_with(':') { " " } else { "; " });
        }
        joined.push_str(line);
    }
    if joined.is_empty() {
        format!("git {what} failed")
    } else {
        format!("git {what} failed: {joined}")
    }
}

/// The outcome of a push from its `--porcelain` lines (`FLAG \t FROM:TO \t
/// SUMMARY`); `None` when not every ref has a line (git could not talk to
/// the remote).
fn parse_porcelain(stdout: &str, updates: &[Update<'_>]) -> Option<Pushed> {
    let mut seen = 0;
    let mut rejected = None;
    for line in stdout.lines() {
        let mut fields = line.splitn(3, '\t');
        let (Some(flag), Some(refs), summary) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let Some((_, to)) = refs.rsplit_once(':') else {
            continue;
        };
        if !updates.iter().any(|u| u.refname == to) {
            continue;
        }
        seen += 1;
        if flag == "!" {
            rejected.get_or_insert_with(|| format!("{to}: {}", summary.unwrap_or("rejected")));
        }
    }
    match rejected {
        Some(reason) => Some(Pushed::Rejected(reason)),
        None if seen == updates.len() => Some(Pushed::Done),
        None => None,
    }
}

/// The contents `cat-file --batch` printed for `count` requests.
fn parse_batch(mut out: &[u8], count: usize) -> Result<Vec<Option<Vec<u8>>>, String> {
    let bad = || "git cat-file printed something unexpected".to_owned();
    let mut files = Vec::with_capacity(count);
    for _ in 0..count {
        let end = out.iter().position(|&b| b == b'\n').ok_or_else(bad)?;
        let header = String::from_utf8_lossy(&out[..end]).into_owned();
        out = &out[end + 1..];
        if header.ends_with(" missing") {
            files.push(None);
            continue;
        }
        let mut fields = header.split(' ');
        let (_, kind, size) = (fields.next(), fields.next(), fields.next());
        let size: usize = size.and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        if out.len() < size + 1 {
            return Err(bad());
        }
        if kind != Some("blob") {
            return Err(format!("{header}: not a file"));
        }
        files.push(Some(out[..size].to_vec()));
        out = &out[size + 1..];
    }
    Ok(files)
}

/// Whether `name` may be a branch (git's `check-ref-format` rules, which
/// the branch and its `-lock` companion must both pass).
pub(crate) fn branch_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("it is empty");
    }
    if name.starts_with('-') || name.starts_with('/') || name.ends_with('/') {
        return Some("it starts with `-` or `/`, or ends with `/`");
    }
    if name.contains("..") || name.contains("//") || name.contains("@{") {
        return Some("it contains `..`, `//` or `@{`");
    }
    if name
        .chars()
        .any(|c| c.is_control() || c == ' ' || "~^:?*[\\".contains(c))
    {
        return Some("it contains a space, a control character or one of ~ ^ : ? * [ \\");
    }
    if name
        .split('/')
        .any(|part| part.starts_with('.') || part.ends_with(".lock"))
    {
        return Some("a part of it starts with `.` or ends with `.lock`");
    }
    if name.ends_with('.') || name == "@" {
        return Some("it ends with `.` or is `@`");
    }
    None
}

/// Whether `path` may be a file's path in a tree.
pub(crate) fn path_problem(path: &str) -> Option<&'static str> {
    if path.is_empty() || path.starts_with('/') || path.ends_with('/') {
        return Some("it must be a relative file path, such as cutover.state.json");
    }
    if path
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == ".." || part == ".git")
    {
        return Some("no part of it may be empty, `.`, `..` or `.git`");
    }
    if path.chars().any(|c| c.is_control()) {
        return Some("it contains a control character");
    }
    None
}

/// Where the scratch repository is, for tests.
#[cfg(test)]
impl Git {
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Update<'static> = Update {
        refname: "refs/heads/cutover-state-lock",
        new: Some("abc"),
        expect: None,
    };

    #[test]
    fn a_push_is_read_from_its_porcelain_lines() {
        let done = "To /srv/state.git\n*\tabc:refs/heads/cutover-state-lock\t[new branch]\nDone\n";
        assert_eq!(parse_porcelain(done, &[LEASE]), Some(Pushed::Done));
        let stale = "To /srv/state.git\n!\tabc:refs/heads/cutover-state-lock\t[rejected] (stale info)\nDone\n";
        assert_eq!(
            parse_porcelain(stale, &[LEASE]),
            Some(Pushed::Rejected(
                "refs/heads/cutover-state-lock: [rejected] (stale info)".into()
            ))
        );
        let deleted = "-\t:refs/heads/cutover-state-lock\t[deleted]\n";
        assert_eq!(parse_porcelain(deleted, &[LEASE]), Some(Pushed::Done));
        // Nothing said about our ref: git could not reach the remote.
        assert_eq!(parse_porcelain("", &[LEASE]), None);
    }

    #[test]
    fn cat_file_batch_output_is_split_into_files() {
        let out = b"e69de29 blob 3\na\nb\nx:journal missing\ne69 blob 0\n\n";
        assert_eq!(
            parse_batch(out, 3).unwrap(),
            [Some(b"a\nb".to_vec()), None, Some(Vec::new())]
        );
        assert!(parse_batch(b"e69 blob 10\nshort\n", 1).is_err());
        assert!(parse_batch(b"e69 tree 0\n\n", 1).is_err());
    }

    #[test]
    fn branch_and_path_names_are_checked_as_git_would() {
        for ok in ["cutover-state", "deploy/prod", "state_2.x"] {
            assert_eq!(branch_problem(ok), None, "{ok}");
        }
        for bad in [
            "", "-x", "a..b", "a b", "a:b", "x.lock", ".hidden", "a/", "a~1", "@",
        ] {
            assert!(branch_problem(bad).is_some(), "{bad:?}");
        }
        for ok in ["cutover.state.json", "deploy/prod/state.json"] {
            assert_eq!(path_problem(ok), None, "{ok}");
        }
        for bad in ["", "/abs", "a//b", "../x", "dir/", ".git/config"] {
            assert!(path_problem(bad).is_some(), "{bad:?}");
        }
    }
}
