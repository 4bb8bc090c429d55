//! `cutover fmt` and `cutover state check`, end to end on temporary
//! directories (the latter in real git repositories).

use std::path::Path;
use std::process::Command;

use crate::support::Case;

const MESSY: &str = "# the release to roll out\nvariable \"release\" {\ndefault=\"1.4.2\" # bumped by CI\n    description = \"what to deploy\"\n}\n\n\n\nenvironment   \"blue\"{\n  /* pinned:\n     do not bump */\n  release = \"1.4.1\"\nendpoint=\"127.0.0.1:9101\"   \n}\n";

const TIDY: &str = "# the release to roll out\nvariable \"release\" {\n  default     = \"1.4.2\" # bumped by CI\n  description = \"what to deploy\"\n}\n\nenvironment \"blue\" {\n  /* pinned:\n     do not bump */\n  release  = \"1.4.1\"\n  endpoint = \"127.0.0.1:9101\"\n}\n";

#[test]
fn fmt_check_lists_then_fmt_rewrites_keeping_comments() {
    let case = Case::with_main(MESSY);
    case.write("other.hcl", "output \"x\" {\n  value = 1\n}\n");
    let out = case.run(&["fmt", "--check"]).code(1).stdout_has("main.hcl");
    assert!(!out.stdout.contains("other.hcl"), "{}", out.stdout);
    assert_eq!(
        read(case.path(), "main.hcl"),
        MESSY,
        "--check changed a file"
    );

    case.run(&["fmt", "--check", "--diff"])
        .code(1)
        .stdout_has("-endpoint=\"127.0.0.1:9101\"")
        .stdout_has("+  endpoint = \"127.0.0.1:9101\"");

    case.run(&["fmt"]).code(0).stdout_has("main.hcl");
    assert_eq!(read(case.path(), "main.hcl"), TIDY);
    let again = case.run(&["fmt", "--check"]).code(0);
    assert_eq!(again.stdout, "");
    case.run(&["validate"]).code(0);
}

#[test]
fn fmt_names_files_and_leaves_broken_ones_alone() {
    let case = Case::new();
    case.write("a.hcl", "x = 1\n");
    case.write("bad.hcl", "locals {\n  y = [1,\n");
    case.write("b.hcl", "yy=2\n");
    case.run(&["fmt", "b.hcl"]).code(0).stdout_has("b.hcl");
    assert_eq!(read(case.path(), "b.hcl"), "yy = 2\n");
    case.run(&["fmt"]).code(1).stderr_has("bad.hcl:");
    assert_eq!(read(case.path(), "bad.hcl"), "locals {\n  y = [1,\n");
}

#[test]
fn fmt_reports_a_file_that_is_not_utf8_at_its_place_and_leaves_it() {
    let case = Case::new();
    let latin1: &[u8] = b"locals {\n  a = \"caf\xe9\"\n}\n";
    std::fs::write(case.path().join("main.hcl"), latin1).unwrap();
    case.run(&["fmt"])
        .code(1)
        .stderr_has("main.hcl is not UTF-8 text: byte 0xe9")
        .stderr_has("--> main.hcl:2:11");
    assert_eq!(std::fs::read(case.path().join("main.hcl")).unwrap(), latin1);
}

#[test]
fn fmt_keeps_crlf_and_heredocs_in_templates_byte_for_byte() {
    let case = Case::new();
    let text = "locals {\r\n  a = \"%{ if true }${<<EOT\r\n  two spaces\r\nEOT\r\n}%{ endif }\"\r\n  bb = \"${ 1 # one\r\n}\"\r\n}\r\n";
    case.write("main.hcl", text);
    case.run(&["fmt", "--check"]).code(0);
    assert_eq!(read(case.path(), "main.hcl"), text);
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

const CONFIG: &str = "environment \"blue\" {\n  release  = \"1\"\n  endpoint = \"127.0.0.1:1\"\n}\n\nenvironment \"green\" {\n  release  = \"1\"\n  endpoint = \"127.0.0.1:2\"\n}\n";

/// A state as `to_bytes` writes it.
fn state(lineage: &str, serial: u64, blue: &str, green: &str) -> String {
    let env = |release: &str, port: u16| {
        format!(
            "{{\n      \"backend\": \"none\",\n      \"endpoints\": [\n        \"127.0.0.1:{port}\"\n      ],\n      \"private\": null,\n      \"release\": \"{release}\",\n      \"settings\": null\n    }}"
        )
    };
    format!(
        "{{\n  \"environments\": {{\n    \"blue\": {},\n    \"green\": {}\n  }},\n  \"lineage\": \"{lineage}\",\n  \"routers\": {{}},\n  \"serial\": {serial},\n  \"version\": 1\n}}\n",
        env(blue, 1),
        env(green, 2)
    )
}

const LINEAGE: &str = "6f1c2b7e-3d4a-4f5e-9a8b-1c2d3e4f5a6b";

/// A git repository holding the configuration.
struct Repo(Case);

const GIT_ENV: [(&str, &str); 6] = [
    ("GIT_AUTHOR_NAME", "cutover tests"),
    ("GIT_AUTHOR_EMAIL", "tests@example.invalid"),
    ("GIT_COMMITTER_NAME", "cutover tests"),
    ("GIT_COMMITTER_EMAIL", "tests@example.invalid"),
    ("GIT_CONFIG_GLOBAL", "/dev/null"),
    ("GIT_CONFIG_NOSYSTEM", "1"),
];

impl Repo {
    fn new() -> Repo {
        let repo = Repo(Case::with_main(CONFIG));
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    fn git(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new("git")
            .arg("-C")
            .arg(self.0.path())
            .args(args)
            .envs(GIT_ENV)
            .output()
            .expect("run git");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    }

    fn commit_state(&self, text: &str, message: &str) {
        self.0.write("cutover.state.json", text);
        assert!(self.git(&["add", "-A"]).0);
        let (ok, out) = self.git(&["commit", "-q", "-m", message]);
        assert!(ok, "{out}");
    }

    fn check(&self) -> crate::support::Run {
        self.0.run_env(&["state", "check"], &GIT_ENV)
    }
}

#[test]
fn healthy_state_passes() {
    let repo = Repo::new();
    repo.commit_state(&state(LINEAGE, 1, "1", "1"), "first apply");
    repo.commit_state(&state(LINEAGE, 2, "2", "1"), "bump blue");
    let out = repo.check().code(0).stdout_has("OK").stdout_has(LINEAGE);
    assert!(out.stdout.contains("serial 2"), "{}", out.stdout);
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
}

#[test]
fn healthy_outside_git_too() {
    let case = Case::with_main(CONFIG);
    case.write("cutover.state.json", &state(LINEAGE, 3, "1", "1"));
    case.run(&["state", "check"])
        .code(0)
        .stdout_has("OK")
        .stdout_has("not in git");
}

#[test]
fn merge_conflict_markers_are_reported_with_lines_and_sides() {
    let repo = Repo::new();
    repo.commit_state(&state(LINEAGE, 1, "1", "1"), "base");
    repo.git(&["checkout", "-q", "-b", "other"]);
    repo.commit_state(&state(LINEAGE, 3, "3", "1"), "other: two applies");
    repo.git(&["checkout", "-q", "main"]);
    repo.commit_state(&state(LINEAGE, 2, "2", "1"), "main: one apply");
    let (merged, text) = repo.git(&["merge", "-q", "other"]);
    assert!(!merged, "expected a conflict: {text}");

    let out = repo
        .check()
        .code(1)
        .stdout_has("conflict markers")
        .stdout_has("<<<<<<< HEAD")
        .stdout_has(">>>>>>> other")
        .stdout_has("--ours (HEAD): lineage 6f1c2b7e-3d4a-4f5e-9a8b-1c2d3e4f5a6b, serial 2")
        .stdout_has("--theirs (other): lineage 6f1c2b7e-3d4a-4f5e-9a8b-1c2d3e4f5a6b, serial 3")
        .stdout_has("git checkout --theirs -- ")
        .stdout_has("cutover plan --refresh-only");
    let conflicted = read(repo.0.path(), "cutover.state.json");
    for (n, line) in conflicted.lines().enumerate() {
        if line.starts_with("<<<<<<<") || line.starts_with(">>>>>>>") {
            assert!(
                out.stdout.contains(&format!("line {}: {line}", n + 1)),
                "{}",
                out.stdout
            );
        }
    }
    // Following the advice gives a healthy state.
    assert!(
        repo.git(&["checkout", "--theirs", "--", "cutover.state.json"])
            .0
    );
    repo.check().code(0);
}

#[test]
fn forked_lineage_is_reported() {
    let repo = Repo::new();
    repo.commit_state(&state(LINEAGE, 5, "1", "1"), "applied five times");
    let other = "0a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d";
    repo.commit_state(&state(other, 0, "1", "1"), "cutover init again");
    repo.check()
        .code(1)
        .stdout_has("forked lineage")
        .stdout_has(LINEAGE)
        .stdout_has(other)
        .stdout_has("applied five times");
}

#[test]
fn serial_going_backwards_is_reported() {
    let repo = Repo::new();
    repo.commit_state(&state(LINEAGE, 5, "5", "1"), "five");
    repo.commit_state(&state(LINEAGE, 3, "3", "1"), "back to three");
    repo.check()
        .code(1)
        .stdout_has("serial went backwards")
        .stdout_has("serial 5 (commit");
}

#[test]
fn a_clean_merge_of_two_applies_is_caught() {
    let repo = Repo::new();
    repo.commit_state(&state(LINEAGE, 1, "1", "1"), "base");
    repo.git(&["checkout", "-q", "-b", "other"]);
    repo.commit_state(&state(LINEAGE, 2, "1", "2"), "other: bump green");
    repo.git(&["checkout", "-q", "main"]);
    repo.commit_state(&state(LINEAGE, 2, "2", "1"), "main: bump blue");
    let (merged, text) = repo.git(&["merge", "-q", "--no-edit", "other"]);
    assert!(merged, "expected git to merge without a conflict: {text}");
    assert_eq!(
        read(repo.0.path(), "cutover.state.json"),
        state(LINEAGE, 2, "2", "2"),
        "git merged the two applies line by line"
    );
    repo.check()
        .code(1)
        .stdout_has("serial reused")
        .stdout_has("main: bump blue")
        .stdout_has("other: bump green");
}

/// A change touches only its own lines: bumping one environment's release
/// (and the serial, as every apply does) changes exactly those two lines of
/// the committed file, so that review diffs and git merges stay small.
#[test]
fn a_change_touches_only_its_own_lines() {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/state/blue-green.json");
    let before_bytes = std::fs::read(&fixture).unwrap();
    let mut state = cutover::state::from_bytes(&fixture, &before_bytes).unwrap();
    assert_eq!(cutover::state::to_bytes(&state), before_bytes);
    state.serial += 1;
    state.environments.get_mut("green").unwrap().release = "1.4.3".into();
    let after_bytes = cutover::state::to_bytes(&state);
    let (before, after) = (
        String::from_utf8(before_bytes).unwrap(),
        String::from_utf8(after_bytes).unwrap(),
    );
    let diff = similar::TextDiff::from_lines(&before, &after);
    let changed = |tag| {
        diff.iter_all_changes()
            .filter(|c| c.tag() == tag)
            .map(|c| c.value().trim().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        changed(similar::ChangeTag::Delete),
        ["\"release\": \"1.4.2\",", "\"serial\": 7,"]
    );
    assert_eq!(
        changed(similar::ChangeTag::Insert),
        ["\"release\": \"1.4.3\",", "\"serial\": 8,"]
    );
}

/// A journal that does not extend the state file (it was replaced since,
/// here by a state of another serial): never folded, never deleted, reported
/// with its records; a command that would write the state refuses.
#[test]
fn a_journal_that_extends_another_state_is_reported_and_kept() {
    let repo = Repo::new();
    repo.commit_state(&state(LINEAGE, 4, "1", "1"), "applied");
    let journal = format!(
        "{{\"lineage\":\"{LINEAGE}\",\"serial\":3}}\n{{\"router\":[\"public\",{{\"backend\":\"haproxy\",\"live\":\"green\",\"previous\":\"blue\"}}]}}\n"
    );
    repo.0.write("cutover.state.json.journal", &journal);
    let check = repo.check().code(1);
    assert!(
        check.stdout.contains("- a journal that cannot be folded: ")
            && check.stdout.contains(&format!(
                "it extends the state of lineage {LINEAGE} at serial 3, but the state file is at serial 4"
            ))
            && check.stdout.contains("router.public"),
        "{}",
        check.stdout
    );
    let list = repo.0.run(&["state", "list"]).code(0);
    assert!(
        list.stderr.contains("was not folded into the state file"),
        "{}",
        list.stderr
    );
    assert_eq!(
        std::fs::read_to_string(repo.0.path().join("cutover.state.json.journal")).unwrap(),
        journal,
        "kept as it was"
    );
    assert_eq!(
        read(repo.0.path(), "cutover.state.json"),
        state(LINEAGE, 4, "1", "1")
    );
    repo.0
        .run(&["apply", "--refresh-only"])
        .code(1)
        .stderr_has("cannot be folded into the state file");
}
