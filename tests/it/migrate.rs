//! `cutover state migrate` (issue 13, point 4) with a real git remote (a
//! bare repository over file://) and real processes: a local state moved to
//! the git backend and back keeps its lineage and serial byte for byte; a
//! configuration that names a backend while its state is still the local
//! file is refused by every command, with the command that moves it; a
//! target that holds another lineage is refused and left as it was.

use crate::crash::Rig;
use crate::git_remote_support::BareRepo;

fn backend_block(url: &str) -> String {
    format!("cutover {{\n  backend \"git\" {{\n    repo = \"{url}\"\n  }}\n}}\n")
}

#[test]
fn a_local_state_moves_to_git_and_back_keeping_lineage_and_serial() {
    let rig = Rig::start();
    let repo = BareRepo::new();
    let config = rig.simple("1", "1", "blue");
    rig.write(&config);
    rig.run(&["apply", "--auto-approve"]).code(0);
    let local = std::fs::read(rig.state_path()).unwrap();
    let before: serde_json::Value = serde_json::from_slice(&local).unwrap();

    // The backend named, the state not moved: refused, with the way out,
    // and nothing created on the remote.
    rig.write(&format!("{}{config}", backend_block(&repo.file_url())));
    for args in [&["plan"][..], &["apply", "--auto-approve"], &["init"]] {
        rig.run(args)
            .code(1)
            .stderr_has("cutover state migrate --to git")
            .stderr_has(before["lineage"].as_str().unwrap());
    }
    assert_eq!(repo.rev("refs/heads/cutover-state"), None);

    let run = rig.run(&["state", "migrate", "--to", "git"]).code(0);
    assert!(run.stdout.contains("Copied the state"), "{}", run.stdout);
    // Byte for byte on the branch; the file kept aside, not deleted.
    assert_eq!(
        repo.show("refs/heads/cutover-state:cutover.state.json"),
        local
    );
    assert!(!rig.state_path().exists());
    let kept = rig.state_path().with_extension("json.migrated");
    assert_eq!(std::fs::read(&kept).unwrap(), local);
    assert_eq!(repo.rev("refs/heads/cutover-state-lock"), None, "unlocked");
    // From now on the commands use the branch, and it converges.
    rig.run(&["plan", "--detailed-exitcode"]).code(0);
    rig.write(&format!(
        "{}{}",
        backend_block(&repo.file_url()),
        rig.simple("1", "2", "green")
    ));
    rig.run(&["apply", "--auto-approve"]).code(0);
    let on_branch: serde_json::Value =
        serde_json::from_slice(&repo.show("refs/heads/cutover-state:cutover.state.json")).unwrap();
    assert_eq!(on_branch["lineage"], before["lineage"]);
    assert!(on_branch["serial"].as_u64() > before["serial"].as_u64());

    // And back: the file holds exactly what the branch held.
    let branch_bytes = repo.show("refs/heads/cutover-state:cutover.state.json");
    rig.run(&["state", "migrate", "--to", "local"])
        .code(0)
        .stdout_has("left as it was");
    assert_eq!(std::fs::read(rig.state_path()).unwrap(), branch_bytes);
    // Again: the target already holds exactly this state.
    rig.run(&["state", "migrate", "--to", "local"])
        .code(0)
        .stdout_has("nothing to copy");
    // Without the backend block, the file is the state.
    rig.write(&rig.simple("1", "2", "green"));
    rig.run(&["plan", "--detailed-exitcode"]).code(0);
    rig.run(&["state", "migrate", "--to", "local"])
        .code(1)
        .stderr_has("names no shared backend");
}

#[test]
fn a_target_of_another_lineage_is_refused_and_left_alone() {
    let rig = Rig::start();
    let repo = BareRepo::new();
    let config = rig.simple("1", "1", "blue");
    // Another configuration's state on the branch.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(
        other.path().join("main.hcl"),
        format!(
            "{}environment \"x\" {{\n  release  = \"1\"\n  endpoint = \"127.0.0.1:1\"\n}}\n",
            backend_block(&repo.file_url())
        ),
    )
    .unwrap();
    let init = std::process::Command::new(crate::support::cutover_bin())
        .arg("-C")
        .arg(other.path())
        .arg("init")
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let theirs = repo.show("refs/heads/cutover-state:cutover.state.json");

    rig.write(&config);
    rig.run(&["init"]).code(0);
    rig.write(&format!("{}{config}", backend_block(&repo.file_url())));
    // The branch holds a state, so the local file is only a warning here...
    let plan = rig.run(&["plan"]).code(0);
    assert!(plan.stderr.contains("is not used"), "{}", plan.stderr);
    assert!(plan.stderr.contains("another lineage"), "{}", plan.stderr);
    // ...and moving it there is refused: it is another configuration's.
    rig.run(&["state", "migrate", "--to", "git"])
        .code(1)
        .stderr_has("already holds a state")
        .stderr_has("refusing to overwrite it");
    assert_eq!(
        repo.show("refs/heads/cutover-state:cutover.state.json"),
        theirs
    );
    assert!(rig.state_path().exists(), "the local file is kept");
}

#[test]
fn a_second_configuration_on_one_shared_state_is_refused_unless_it_pins_the_lineage() {
    let rig = Rig::start();
    let repo = BareRepo::new();
    rig.write(&format!(
        "{}{}",
        backend_block(&repo.file_url()),
        rig.simple("1", "1", "blue")
    ));
    rig.run(&["apply", "--auto-approve"]).code(0);
    let state = repo.show("refs/heads/cutover-state:cutover.state.json");
    let lineage = serde_json::from_slice::<serde_json::Value>(&state).unwrap()["lineage"]
        .as_str()
        .unwrap()
        .to_owned();

    // Another team's configuration, pointed at the same branch by mistake:
    // none of what the state records is declared there.
    let other = crate::support::Case::with_main(&format!(
        "{}environment \"red\" {{\n  release  = \"1\"\n  endpoint = \"127.0.0.1:1\"\n}}\n",
        backend_block(&repo.file_url())
    ));
    for args in [
        &["plan"][..],
        &["apply", "--auto-approve"],
        &["init"],
        &["status"],
    ] {
        other
            .run(args)
            .code(1)
            .stderr_has("none of which this configuration declares")
            .stderr_has("environment.blue, environment.green, router.public")
            .stderr_has(&format!("lineage = \"{lineage}\""));
    }
    assert_eq!(
        repo.show("refs/heads/cutover-state:cutover.state.json"),
        state,
        "untouched"
    );

    // A pin of another lineage is refused even where names overlap...
    let pinned = |lineage: &str| {
        format!(
            "cutover {{\n  lineage = \"{lineage}\"\n  backend \"git\" {{\n    repo = \"{}\"\n  }}\n}}\n{}",
            repo.file_url(),
            rig.simple("1", "1", "blue")
        )
    };
    rig.write(&pinned("not-this-one"));
    rig.run(&["plan"]).code(1).stderr_has(&format!(
        "has lineage {lineage}, but this configuration manages lineage not-this-one"
    ));
    // ...and the right pin is accepted.
    rig.write(&pinned(&lineage));
    rig.run(&["plan", "--detailed-exitcode"]).code(0);
}
