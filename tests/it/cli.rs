//! The small commands end to end.

use crate::support::Case;

#[test]
fn version_and_help() {
    let case = Case::new();
    case.run(&["--version"])
        .code(0)
        .stdout_has(env!("CARGO_PKG_VERSION"));
    case.run(&["--help"]).code(0).stdout_has("plan");
}

#[test]
fn completions_for_bash() {
    Case::new()
        .run(&["completions", "bash"])
        .code(0)
        .stdout_has("cutover");
}

#[test]
fn validate_and_outputs() {
    let case = Case::with_main(
        "variable \"release\" {\n  default = \"1.2.3\"\n}\nvariable \"token\" {\n  default   = \"hunter2\"\n  sensitive = true\n}\nlocals {\n  tag = upper(\"v${var.release}\")\n}\noutput \"tag\" {\n  value = local.tag\n}\noutput \"token\" {\n  value = var.token\n}\n",
    );
    case.run(&["validate"]).code(0).stdout_has("valid");
    let out = case
        .run(&["output"])
        .code(0)
        .stdout_has("tag = \"V1.2.3\"")
        .stdout_has(&format!(
            "token = \"{}\"",
            cutover::plan::sensitive::marker("hunter2")
        ));
    assert!(!out.stdout.contains("hunter2"), "{}", out.stdout);
    case.run(&["output", "tag", "--var", "release=2.0"])
        .code(0)
        .stdout_has("V2.0");
    case.run_env(&["output", "tag"], &[("CUTOVER_VAR_release", "9.9")])
        .code(0)
        .stdout_has("V9.9");
}

#[test]
fn init_creates_state_and_lock_is_named() {
    let case = Case::with_main(
        "environment \"blue\" {\n  release  = \"1\"\n  endpoint = \"127.0.0.1:1\"\n}\n",
    );
    case.run(&["init"]).code(0).stdout_has("Created state");
    let state: serde_json::Value = serde_json::from_slice(&case.state_bytes().unwrap()).unwrap();
    assert_eq!(state["serial"], 0);
    assert!(state["lineage"].as_str().unwrap().len() >= 32);
    case.run(&["init"]).code(0).stdout_has("exists");
    case.run(&["state", "list"]).code(0);
}

#[test]
fn terraform_s_single_dash_flags_work_or_get_a_one_line_hint() {
    let case = Case::with_main(
        "variable \"release\" {\n  default = \"1\"\n}\noutput \"release\" {\n  value = var.release\n}\n",
    );
    // Read as Terraform reads them: the plan lands in plan.bin (clap alone
    // read `-out=plan.bin` as `-o ut=plan.bin`).
    let out = format!("-out={}", case.dir.path().join("plan.bin").display());
    case.run(&[
        "plan",
        &out,
        "-var",
        "release=2",
        "-detailed-exitcode",
        "-no-color",
    ])
    .code(0)
    .stdout_has("plan.bin");
    assert!(case.dir.path().join("plan.bin").exists());
    assert!(!case.dir.path().join("ut=plan.bin").exists());
    let json = case.run(&["plan", "-json", "-var=release=3"]).code(0);
    serde_json::from_str::<serde_json::Value>(&json.stdout).expect("-json gives the JSON plan");
    case.run(&["apply", "-auto-approve", "-lock-timeout=1s"])
        .code(0);
    let var_file = case.dir.path().join("v.tfvars");
    std::fs::write(&var_file, "release = \"7\"\n").unwrap();
    case.run(&["output", "release", "-var-file", var_file.to_str().unwrap()])
        .code(0)
        .stdout_has("7");
    // Terraform flags cutover has no equivalent of, and typos: one line.
    for (args, hint) in [
        (
            &["apply", "-input=false"][..],
            "-input: cutover never asks for input",
        ),
        (
            &["plan", "-target=router.public"][..],
            "-target: cutover has no -target",
        ),
        (&["plan", "-outt=x"][..], "did you mean --out?"),
    ] {
        let run = case.run(args).code(1).stderr_has(hint);
        assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
    }
}
