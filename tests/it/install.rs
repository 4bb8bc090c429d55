//! scripts/os-packages.sh, the one install path of test.sh, .ci/run and the
//! examples (issue 16, point 3): a failed `apt-get` leaves nothing behind,
//! and a file the script did not create is never changed or removed. Run
//! with an `apt-get` of the test's own on PATH that fails, so nothing is
//! installed for real.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const POLICY: &str = "/usr/sbin/policy-rc.d";

fn snapshot(path: &Path) -> Option<Vec<u8>> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Some(
            std::fs::read_link(path)
                .unwrap()
                .into_os_string()
                .into_encoded_bytes(),
        ),
        Ok(_) => Some(std::fs::read(path).unwrap()),
        Err(_) => None,
    }
}

#[test]
fn a_failed_install_leaves_nothing_behind_and_touches_nothing_it_did_not_create() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/os-packages.sh");
    let bin = tempfile::tempdir().unwrap();
    let calls = bin.path().join("calls");
    let apt = bin.path().join("apt-get");
    // Records what it was asked and what the script had set up by then.
    std::fs::write(
        &apt,
        format!(
            "#!/bin/sh\necho \"$* policy=$(test -e {POLICY} && echo yes || echo no)\" >> {}\nexit 100\n",
            calls.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&apt, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A program no machine has, packaged as nginx: a service the script
    // would mask while it installs.
    let unit = Path::new("/etc/systemd/system/nginx.service");
    let (policy_before, unit_before) = (snapshot(Path::new(POLICY)), snapshot(unit));
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap()
    );
    let out = Command::new("bash")
        .arg(&script)
        .arg("cutover-test-no-such-program=nginx")
        .env("PATH", &path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the failed install fails: {stderr}");
    let uid = Command::new("id").arg("-u").output().unwrap().stdout;
    if uid != b"0\n" {
        assert!(stderr.contains("sudo apt-get install -y nginx"), "{stderr}");
        assert!(!calls.exists(), "apt-get is not run without root");
        return;
    }
    let calls = std::fs::read_to_string(&calls).unwrap();
    assert!(calls.starts_with("update"), "{calls}");
    // While it ran, package scripts were kept from starting services.
    assert!(calls.contains("policy=yes"), "{calls}");
    // Afterwards: exactly what was there before, byte for byte.
    assert_eq!(snapshot(Path::new(POLICY)), policy_before, "policy-rc.d");
    assert_eq!(snapshot(unit), unit_before, "nginx.service");
}

#[test]
fn programs_already_there_are_left_alone() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/os-packages.sh");
    // `sh` is on every machine: nothing to install, no apt-get, exit 0.
    let out = Command::new("bash")
        .arg(&script)
        .arg("sh")
        .arg("sh=some-package")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
}
