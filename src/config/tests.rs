//! Tests of [`load`](super::load): whole configurations in, a `Config` or
//! rendered diagnostics out.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use super::model::*;
use super::*;

/// Write `files` to a temporary directory and load it.
fn load_files(files: &[(&str, &str)], inputs: &VarInputs) -> Result<Loaded, Diagnostics> {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    load(dir.path(), inputs)
}

fn ok(text: &str) -> Config {
    match load_files(&[("main.hcl", text)], &VarInputs::default()) {
        Ok(l) => l.config,
        Err(e) => panic!("unexpected diagnostics:\n{e}"),
    }
}

/// The rendered diagnostics of a config that must fail.
fn errors(text: &str) -> String {
    errors_with(text, &VarInputs::default())
}

fn errors_with(text: &str, inputs: &VarInputs) -> String {
    match load_files(&[("main.hcl", text)], inputs) {
        Ok(_) => panic!("expected diagnostics"),
        Err(e) => e.to_string(),
    }
}

fn assert_has(rendered: &str, parts: &[&str]) {
    for part in parts {
        assert!(rendered.contains(part), "missing {part:?} in:\n{rendered}");
    }
}

const EXAMPLE: &str = r#"variable "release" {
  default = "1.4.2"
}

environment "blue" {
  release  = "1.4.1"
  endpoint = "127.0.0.1:9101"
  process {
    command = ["./demo-app", "--port", "9101", "--release", "1.4.1"]
  }
  health {
    path = "/healthz"
  }
}

environment "green" {
  release  = var.release
  endpoint = "127.0.0.1:9102"
  process {
    command = ["./demo-app", "--port", "9102", "--release", var.release]
  }
  health {
    path     = "/healthz"
    interval = "500ms"
    timeout  = "1m"
  }
}

router "public" {
  live = environment.green        # the cut-over is this one line
  haproxy {
    socket = "/run/haproxy/admin.sock"
    map    = "/etc/haproxy/live.map"
  }
}

output "live_release" {
  value = "${router.public.live}-${environment.green.release}"
}

cutover {
  state       = "state/cutover.json"
  parallelism = 4
}
"#;

#[test]
fn the_design_example_loads() {
    let c = ok(EXAMPLE);
    assert_eq!(c.variables["release"].value, json!("1.4.2"));
    let green = &c.environments["green"];
    assert_eq!(green.release, "1.4.2");
    assert_eq!(green.endpoints, ["127.0.0.1:9102"]);
    assert_eq!(green.health.path, "/healthz");
    assert_eq!(green.health.interval, Duration::from_millis(500));
    assert_eq!(green.health.timeout, Duration::from_secs(60));
    assert_eq!(green.health.request_timeout, Duration::from_secs(2));
    let backend = green.backend.as_ref().unwrap();
    assert_eq!(backend.kind, "process");
    assert_eq!(
        backend.body,
        json!({"command": ["./demo-app", "--port", "9102", "--release", "1.4.2"]})
    );
    assert_eq!(backend.attribute_spans["command"].line, 20);
    assert_eq!(backend.attribute_spans["command"].column, 5);
    assert_eq!((green.span.line, green.span.column), (16, 1));
    assert!(green.marks.is_clear());
    let router = &c.routers["public"];
    assert_eq!(router.live, "green");
    assert_eq!((router.live_span.line, router.live_span.column), (30, 10));
    assert_eq!(router.backend.kind, "haproxy");
    assert_eq!(
        router.backend.body["socket"],
        json!("/run/haproxy/admin.sock")
    );
    assert_eq!(c.outputs["live_release"].value, json!("green-1.4.2"));
    assert_eq!(c.settings.state_path, PathBuf::from("state/cutover.json"));
    assert_eq!(c.settings.parallelism, 4);
    let refs: Vec<String> = c
        .references
        .iter()
        .map(|(a, b)| format!("{a} -> {b}"))
        .collect();
    for r in [
        "environment.green -> var.release",
        "router.public -> environment.green",
        "output.live_release -> router.public",
        "output.live_release -> environment.green",
    ] {
        assert!(refs.contains(&r.to_string()), "{r} missing from {refs:?}");
    }
}

#[test]
fn files_are_read_in_name_order_with_relative_spans() {
    let files = [
        (
            "b.hcl",
            "environment \"blue\" {\n  release = local.r\n  endpoint = \"h:1\"\n}\n",
        ),
        ("a.hcl", "locals {\n  r = \"1\"\n}\n"),
        ("notes.txt", "not hcl {"),
    ];
    let c = load_files(&files, &VarInputs::default()).unwrap().config;
    assert_eq!(c.environments["blue"].span.file, PathBuf::from("b.hcl"));
    assert_eq!(c.locals["r"], json!("1"));
    let rendered = load_files(
        &[
            ("b.hcl", "environment \"blue\" {\n}\n"),
            ("a.hcl", "bogus {}\n"),
        ],
        &VarInputs::default(),
    )
    .unwrap_err()
    .to_string();
    let a = rendered.find("--> a.hcl:1:1").unwrap();
    let b = rendered.find("--> b.hcl:1:1").unwrap();
    assert!(a < b, "{rendered}");
}

#[test]
fn expressions_templates_and_locals() {
    let c = ok(r#"
locals {
  port  = 9100 + 2
  hosts = [for i in [1, 2] : "10.0.0.${i}:${local.port}"]
  big   = local.port > 9000 ? "big" : "small"
  half  = 10 / 4
}
locals {
  names = { for k, v in { a = 1, b = 2 } : upper(k) => v * 2 }
}
environment "e" {
  release   = 12
  endpoints = local.hosts
}
"#);
    assert_eq!(c.locals["port"], json!(9102));
    assert_eq!(c.locals["big"], json!("big"));
    assert_eq!(c.locals["half"], json!(2.5));
    assert_eq!(c.locals["names"], json!({"A": 2, "B": 4}));
    assert_eq!(
        c.environments["e"].endpoints,
        ["10.0.0.1:9102", "10.0.0.2:9102"]
    );
    assert_eq!(c.environments["e"].release, "12");
    assert!(c.environments["e"].backend.is_none());
}

#[test]
fn live_may_be_a_string_or_an_expression() {
    let c = ok(r#"
variable "green" { default = true }
environment "blue" {
  release  = "1"
  endpoint = "h:1"
}
environment "green" {
  release  = "2"
  endpoint = "h:2"
}
router "a" {
  live = "blue"
  exec {
    switch = ["./switch"]
  }
}
router "b" {
  live = var.green ? environment.green : environment.blue
  exec {}
}
"#);
    assert_eq!(c.routers["a"].live, "blue");
    assert_eq!(c.routers["b"].live, "green");
    assert!(c.references.contains(&(
        Address::Router("a".into()),
        Address::Environment("blue".into())
    )));
}

#[test]
fn nested_backend_blocks_become_objects() {
    let c = ok(r#"
environment "e" {
  release  = "1"
  endpoint = "h:1"
  exec {
    deploy = ["./deploy"]
    env {
      A = "1"
    }
    hook "pre" {
      run = "x"
    }
  }
}
"#);
    let backend = c.environments["e"].backend.as_ref().unwrap();
    assert_eq!(
        backend.body,
        json!({"deploy": ["./deploy"], "env": {"A": "1"}, "hook": {"pre": {"run": "x"}}})
    );
    assert_eq!(backend.attribute_spans["env.A"].line, 8);
    assert_eq!(backend.attribute_spans["hook.pre.run"].line, 11);
}

#[test]
fn syntax_errors_have_a_position() {
    let out = errors("environment \"a\" {\n  release = \n}\n");
    assert_has(
        &out,
        &["syntax error: invalid expression", "--> main.hcl:2:13"],
    );
}

#[test]
fn unknown_block_type_lists_the_valid_ones() {
    let out = errors("enviroment \"a\" {\n}\nwidget {\n}\n");
    assert_has(
        &out,
        &[
            "error: unknown block type `enviroment`\n --> main.hcl:1:1",
            "help: did you mean `environment`?",
            "--> main.hcl:3:1",
            "variable, locals, environment, router, output, notify, cutover",
        ],
    );
}

#[test]
fn unknown_and_missing_arguments() {
    let out = errors("environment \"a\" {\n  relase   = \"1\"\n  endpoint = \"h:1\"\n}\n");
    assert_has(
        &out,
        &[
            "unknown argument `relase` in environment \"a\"\n --> main.hcl:2:3",
            "help: did you mean `release`?",
            "missing required argument `release` in environment \"a\"\n --> main.hcl:1:1",
        ],
    );
    let out = errors("environment \"a\" {\n  release = \"1\"\n}\n");
    assert_has(
        &out,
        &[
            "environment \"a\" needs `endpoint` or `endpoints`",
            "--> main.hcl:1:1",
        ],
    );
    let out = errors("environment \"a\" {\n  release = \"1\"\n  endpoint = \"h:1\"\n  endpoints = [\"h:2\"]\n}\n");
    assert_has(
        &out,
        &["sets both `endpoint` and `endpoints`\n --> main.hcl:4:3"],
    );
}

#[test]
fn wrong_types_are_reported_at_the_value() {
    let out = errors("environment \"a\" {\n  release  = [\"1\"]\n  endpoint = \"nope\"\n  health {\n    interval = \"5\"\n    status = \"x\"\n  }\n}\n");
    assert_has(
        &out,
        &[
            "`release` must be a string, not a list\n --> main.hcl:2:14",
            "invalid endpoint \"nope\"\n --> main.hcl:3:14",
            "`interval` has no unit: \"5\"\n --> main.hcl:5:16",
            "`status` must be a whole number from 100 to 599, not a string\n --> main.hcl:6:14",
        ],
    );
}

#[test]
fn undefined_references_suggest_close_names() {
    let out = errors(
        "variable \"release\" { default = \"1\" }\nenvironment \"blue\" {\n  release  = var.relase\n  endpoint = local.x\n}\nrouter \"r\" {\n  live = environment.bleu\n  haproxy {}\n}\n",
    );
    assert_has(
        &out,
        &[
            "undefined variable `var.relase`\n --> main.hcl:3:14",
            "help: did you mean `var.release`?",
            "undefined local value `local.x`\n --> main.hcl:4:14",
            "undefined environment `environment.bleu`\n --> main.hcl:7:10",
            "help: did you mean `environment.blue`?",
        ],
    );
}

#[test]
fn unknown_functions_and_names() {
    let out = errors("locals {\n  a = uper(\"x\")\n  b = nope.x\n  c = upper([1])\n}\n");
    assert_has(
        &out,
        &[
            "unknown function `uper`\n --> main.hcl:2:7",
            "did you mean `upper`?",
            "unknown name `nope`\n --> main.hcl:3:7",
            "error calling function `upper`",
            "--> main.hcl:4:7",
        ],
    );
}

#[test]
fn duplicates_mention_the_first() {
    let out = errors(
        "environment \"blue\" {\n  release = \"1\"\n  endpoint = \"h:1\"\n}\nenvironment \"blue\" {\n  release = \"2\"\n  endpoint = \"h:2\"\n}\nlocals {\n  a = 1\n}\nlocals {\n  a = 2\n}\n",
    );
    assert_has(
        &out,
        &[
            "duplicate environment \"blue\" (the first is at main.hcl:1:1)\n --> main.hcl:5:1",
            "duplicate local \"a\" (the first is at main.hcl:10:3)\n  --> main.hcl:13:3",
        ],
    );
}

#[test]
fn cycles_are_named_in_full() {
    let out = errors(
        r#"environment "a" {
  release  = router.r.live
  endpoint = "h:1"
}
router "r" {
  live = environment.a
  exec {}
}
locals {
  x = local.y
  y = local.x
  z = local.z
}
"#,
    );
    assert_has(
        &out,
        &[
            "dependency cycle: environment.a -> router.r -> environment.a\n --> main.hcl:1:1",
            "dependency cycle: local.x -> local.y -> local.x\n  --> main.hcl:10:3",
            "dependency cycle: local.z -> local.z\n  --> main.hcl:12:3",
        ],
    );
    assert_eq!(out.matches("error:").count(), 3, "{out}");
}

#[test]
fn division_by_zero_is_a_diagnostic() {
    let out = errors(
        "locals {\n  a = 1 / 0\n  b = 5 % 0\n  c = 5 % (1 - 1)\n  d = [for x in [0] : 1 % x]\n}\n",
    );
    assert_has(
        &out,
        &[
            "division by zero\n --> main.hcl:2:11",
            "division by zero\n --> main.hcl:3:11",
            "division by zero\n --> main.hcl:4:11",
            "division by zero\n --> main.hcl:5:27",
        ],
    );
}

#[test]
fn only_the_branch_taken_is_evaluated() {
    // As Terraform: a division in the branch not taken is never made.
    let c = ok("variable \"w\" {\n  default = 0\n}\nlocals {\n  a = true ? 1 : 1 / 0\n  b = var.w == 0 ? 0 : 100 / var.w\n}\n");
    assert_eq!(c.locals["a"], json!(1));
    assert_eq!(c.locals["b"], json!(0));
    // Taken, it is still an error at the attribute.
    let out = errors("locals {\n  a = false ? 1 : 1 / 0\n}\n");
    assert!(
        out.contains("division by zero\n --> main.hcl:2:23"),
        "{out}"
    );
}

#[test]
fn routers_need_exactly_one_backend() {
    let env = "environment \"e\" {\n  release = \"1\"\n  endpoint = \"h:1\"\n}\n";
    let out = errors(&format!(
        "{env}router \"r\" {{\n  live = environment.e\n}}\n"
    ));
    assert_has(
        &out,
        &["router \"r\" has no backend block\n --> main.hcl:5:1"],
    );
    let out = errors(&format!(
        "{env}router \"r\" {{\n  live = environment.e\n  haproxy {{}}\n  exec {{}}\n}}\n"
    ));
    assert_has(&out, &["router \"r\" has more than one backend block (the first is `haproxy` at main.hcl:7:3)\n --> main.hcl:8:3"]);
    let out = errors(&format!("{env}router \"r\" {{\n  exec {{}}\n}}\n"));
    assert_has(
        &out,
        &["missing required argument `live` in router \"r\"\n --> main.hcl:5:1"],
    );
    let out = errors(&format!(
        "{env}router \"r\" {{\n  live = \"x\"\n  exec {{}}\n}}\n"
    ));
    assert_has(
        &out,
        &["undefined environment `environment.x`\n --> main.hcl:6:10"],
    );
}

#[test]
fn every_mistake_in_one_run() {
    let out = errors(
        r#"variable "v" {
  type = strng
}
environment "a" {
  release  = var.nope
  endpoint = "h:1"
  colour   = "blue"
}
router "r" {
  live = environment.b
  haproxy {}
}
output "o" {
  value = 1 / 0
}
"#,
    );
    assert_has(
        &out,
        &[
            "--> main.hcl:2:10",
            "--> main.hcl:5:14",
            "--> main.hcl:7:3",
            "--> main.hcl:10:10",
            "--> main.hcl:14:15",
            "5 errors found",
        ],
    );
}

/// A sensitive variable, `var.token`.
const TOKEN: &str = r#"
variable "token" {
  default   = "s3cret"
  sensitive = true
}
"#;

#[test]
fn sensitivity_flows_through_locals() {
    let c = ok(&(TOKEN.to_owned()
        + r#"
locals {
  release = "1-${var.token}"
}
environment "e" {
  release  = local.release
  endpoint = "h:1"
}
environment "f" {
  release  = "2"
  endpoint = "h:2"
}
output "a" { value = environment.e.release }
output "b" { value = environment.f.release }
output "c" {
  value     = "x"
  sensitive = true
}
"#));
    assert_eq!(
        c.environments["e"].marks.release,
        Marks::sensitive("var.token")
    );
    assert!(c.environments["f"].marks.is_clear());
    assert!(c.outputs["a"].sensitive);
    assert!(!c.outputs["b"].sensitive);
    assert!(c.outputs["c"].sensitive);
    assert!(c.variables["token"].sensitive);
}

#[test]
fn nothing_panics_on_odd_input() {
    let inputs = VarInputs::default();
    for text in [
        "",
        "locals { a = 9223372036854775807 * 9223372036854775807 }",
        "locals { a = -9223372036854775807 - 10 }",
        "locals { a = [1][5] }",
        "locals { a = \"x\" % 0 }",
        "locals { a = 5 % 0.0 }",
        "locals { a = { for x in [1, 1] : x => x } }",
        "locals { a = format(\"%\") }",
        "environment { }",
        "environment \"a\" \"b\" { }",
        "router \"r\" { live = 3\n exec {} }",
        "variable \"v\" { type = [string] }",
        "output \"o\" { value = var }",
        "cutover { parallelism = -1 }\ncutover {}",
        "x = 1",
        "locals { a = \"${\" }",
        "é = 1",
        "locals { a = try() }",
        "locals { a = can() }",
        "locals { a = try([1]...) }",
        "locals { a = format(\"%[99999999999999999999]d\", 1) }",
        "locals { a = format(\"%.99999999999999999999f\", 1) }",
        "locals { a = format(\"%1000001d\", 1) }",
        "locals { a = format(\"%[\", 1) }",
        "locals { a = yamldecode(\"{a: *x}\") }",
        "locals { a = yamldecode(\"&a [*a]\") }",
        "locals { a = yamldecode(\"\\t- x\") }",
        "locals { a = regex(\"(\", \"x\") }",
        "locals { a = regex(\"a{1000000}\", \"x\") }",
        "locals { a = templatefile(\"/\", {}) }",
        "locals { a = file(\"\") }",
        "locals { a = fileexists(\"~\") }",
        "locals { a = -(-9223372036854775808) * -1 - 1e308 * 1e308 }",
        "locals { a = 5 % -0.0 }",
        "locals { a = \"\" < 1 }",
        "locals { a = [for x in [1] : try(x.y.z, x / 0, can(x[0]))] }",
    ] {
        let _ = load_files(&[("main.hcl", text)], &inputs);
    }
}

#[test]
fn an_error_quotes_a_few_lines_of_a_long_value() {
    let list: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    let err = errors(&format!(
        "locals {{\n  l = [{}]\n}}\noutput \"x\" {{\n  value = keys(local.l)\n}}\n",
        list.join(", ")
    ));
    assert!(err.lines().count() < 20, "{err}");
    assert!(err.contains("  2,\n  ... (997 more elements)\n]`"), "{err}");
    assert!(err.contains("in expression `keys(local.l)`"), "{err}");
    // A long value on one line is cut too.
    let err = errors(&format!(
        "locals {{\n  s = \"{}\"\n}}\noutput \"x\" {{\n  value = keys(local.s)\n}}\n",
        "x".repeat(5000)
    ));
    assert!(err.len() < 1000, "{err}");
    assert!(err.contains("... (4802 more characters)"), "{err}");
}

#[test]
fn a_file_that_is_not_utf8_is_an_error_at_its_first_bad_byte() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("main.hcl"),
        b"locals {\n  a = \"caf\xe9\"\n}\n",
    )
    .unwrap();
    let err = load(dir.path(), &VarInputs::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("main.hcl is not UTF-8 text: byte 0xe9") && err.contains("--> main.hcl:2:11"),
        "{err}"
    );
}

#[test]
fn drain_until_idle_needs_a_drain_and_a_bool() {
    let env = "environment \"e\" {\n  release = \"1\"\n  endpoint = \"h:1\"\n}\n";
    let router = |attrs: &str| {
        format!("{env}router \"r\" {{\n  live = environment.e\n{attrs}  exec {{}}\n}}\n")
    };
    let c = ok(&router("  drain = \"30s\"\n  drain_until_idle = true\n"));
    assert!(c.routers["r"].drain_until_idle);
    assert_eq!(c.routers["r"].drain, Duration::from_secs(30));
    assert!(!ok(&router("  drain = \"30s\"\n")).routers["r"].drain_until_idle);
    // No maximum: an error at the attribute's value, saying what to add.
    for attrs in [
        "  drain_until_idle = true\n",
        "  drain = \"0s\"\n  drain_until_idle = true\n",
    ] {
        let out = errors(&router(attrs));
        let line = 6 + attrs.lines().count();
        assert_has(
            &out,
            &[
                "router \"r\" has `drain_until_idle = true` but no `drain`: the drain needs a maximum",
                &format!("--> main.hcl:{line}:22"),
                "add `drain = \"30s\"`",
            ],
        );
    }
    // `false` needs nothing; a string is no bool.
    ok(&router("  drain_until_idle = false\n"));
    let out = errors(&router("  drain = \"1s\"\n  drain_until_idle = \"yes\"\n"));
    assert_has(
        &out,
        &[
            "`drain_until_idle` must be true or false, not a string",
            "--> main.hcl:8:22",
        ],
    );
}

#[test]
fn maps_iterate_in_key_order_as_terraform() {
    let c = ok(r#"
locals {
  m = { b = 1, a = 2, "c" = 3 }
}
output "literal" { value = [for k, v in { b = 1, a = 2 } : k] }
output "local" { value = [for k, v in local.m : "${k}=${v}"] }
output "template" { value = "%{ for k, v in local.m }${k}%{ endfor }" }
output "merged" { value = keys(merge({ z = 1 }, { y = 2 })) }
output "json" { value = jsonencode({ b = 1, a = { d = 1, c = 2 } }) }
"#);
    let out = |name: &str| c.outputs[name].value.clone();
    assert_eq!(out("literal"), json!(["a", "b"]));
    assert_eq!(out("local"), json!(["a=2", "b=1", "c=3"]));
    assert_eq!(out("template"), json!("abc"));
    assert_eq!(out("merged"), json!(["y", "z"]));
    assert_eq!(out("json"), json!(r#"{"a":{"c":2,"d":1},"b":1}"#));
}

#[test]
fn test_and_analysis_blocks_report_every_mistake_in_one_run() {
    let text = r#"
environment "blue" {
  release  = "1"
  endpoint = "127.0.0.1:1"
}
router "public" {
  live = environment.blue
  exec {
    read   = ["r"]
    switch = ["s"]
  }
  approval_timeout = "0s"
  test "smoke" {
    command = ["./nosuch.sh"]
    timeout = "0s"
    tiemout = "1s"
  }
  test "other" {
    command = ["true"]
    workdir = "nodir"
  }
  analysis "errors" {
    prometheus = "http://127.0.0.1:9090"
    query      = "errors{release=\"{{tagret_release}}\"}"
    max        = 0.01
    interval   = "0s"
    when       = "afterwards"
  }
}
"#;
    let rendered = errors(text);
    assert_has(
        &rendered,
        &[
            "`approval_timeout` must be more than 0s",
            "unknown argument `tiemout` in test \"smoke\" of router \"public\"",
            "did you mean `timeout`?",
            "`timeout` must be more than 0s",
            "is not a directory",
            "`query` has the placeholder `{{tagret_release}}`, which cutover does not know",
            "`interval` must be more than 0s",
            "`when` must be \"before\" or \"after\", not \"afterwards\"",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let files = vec![(dir.path().join("main.hcl"), text.replace("nodir", "."))];
    let missing = match crate::config::load_sources(dir.path(), files, &Default::default()) {
        Ok(_) => panic!("loads"),
        Err(d) => d.to_string(),
    };
    assert!(
        missing.contains("nosuch.sh is not an executable file"),
        "{missing}"
    );
}

#[test]
fn plan_gates_is_true_false_or_ci_and_anything_else_is_located() {
    use crate::config::model::PlanGates;
    for (text, want) in [
        ("true", PlanGates::On),
        ("false", PlanGates::Off),
        ("\"ci\"", PlanGates::InCi),
    ] {
        let c = ok(&format!("cutover {{\n  plan_gates = {text}\n}}\n"));
        assert_eq!(c.settings.plan_gates, want, "{text}");
    }
    assert_eq!(ok("cutover {}\n").settings.plan_gates, PlanGates::Off);
    let e = errors("cutover {\n  plan_gates = \"yes\"\n}\n");
    assert_has(
        &e,
        &[
            "`plan_gates` must be true, false or \"ci\", not \"yes\"",
            "--> main.hcl:2:16",
        ],
    );
    let e = errors("cutover {\n  plan_gates = 1\n}\n");
    assert_has(&e, &["not a number", "--> main.hcl:2:16"]);
    // "ci": when CI is set, as CI services set it.
    for (ci, applies) in [
        (Some("true"), true),
        (Some("1"), true),
        (Some("false"), false),
        (Some("FALSE"), false),
        (Some("0"), false),
        (Some(""), false),
        (None, false),
    ] {
        assert_eq!(PlanGates::InCi.applies(ci), applies, "{ci:?}");
        assert!(PlanGates::On.applies(ci) && !PlanGates::Off.applies(ci));
    }
}

#[test]
fn arithmetic_errors_are_located_at_the_operation() {
    // As Terraform would not give `[null, 10]`; at the divisor in the
    // body of the `for`, not at the whole attribute.
    let out = errors("locals {\n  a = [for x in [0, 1] : 10 / x]\n  b = 1e308 * 10\n  c = 18446744073709551615 + 1\n}\n");
    assert_has(
        &out,
        &[
            "error: division by zero\n --> main.hcl:2:31\n",
            "error: the result of `*` is out of range",
            " --> main.hcl:3:7\n",
            "error: the result of `+` is out of range",
            " --> main.hcl:4:7\n",
            "3 errors found",
        ],
    );
    let out = errors("locals {\n  a = \"x\" * 2\n}\n");
    assert_has(
        &out,
        &[
            "the left operand of `*` must be a number, got a string that does not hold one\n --> main.hcl:2:7",
        ],
    );
}

#[test]
fn an_untyped_var_holding_a_number_is_a_number_in_arithmetic_and_format() {
    // Terraform converts the string "9101" where a number is needed.
    let inputs = VarInputs {
        cli: vec![("port".into(), "9101".into())],
        ..VarInputs::default()
    };
    let text = "variable \"port\" {}\nlocals {\n  next = var.port + 1\n  shown = format(\"%d/%05.1f\", var.port, var.port)\n  big = var.port > 1024\n}\n";
    let c = match load_files(&[("main.hcl", text)], &inputs) {
        Ok(l) => l.config,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(c.locals["next"], json!(9102));
    assert_eq!(c.locals["shown"], json!("9101/9101.0"));
    assert_eq!(c.locals["big"], json!(true));
}

#[test]
fn try_and_can_evaluate_their_arguments_themselves() {
    let c = ok(r#"
variable "settings" {
  default = { port = 9101 }
}
locals {
  port    = try(var.settings.port, 80)
  host    = try(var.settings.host, "127.0.0.1")
  has     = can(var.settings.host)
  ports   = [for p in [9101, "x"] : try(p + 0, null)]
  nested  = try(try(var.settings.a, var.settings.b), "none")
}
"#);
    assert_eq!(c.locals["port"], json!(9101));
    assert_eq!(c.locals["host"], json!("127.0.0.1"));
    assert_eq!(c.locals["has"], json!(false));
    assert_eq!(c.locals["ports"], json!([9101, null]));
    assert_eq!(c.locals["nested"], json!("none"));
    // A reference to something not declared is not caught, as Terraform's.
    let out = errors("locals {\n  a = try(local.nope, 1)\n  b = can(1, 2)\n  c = try()\n}\n");
    assert_has(
        &out,
        &[
            "undefined local value `local.nope`\n --> main.hcl:2:11",
            "`can` takes exactly one expression, not 2\n --> main.hcl:3:7",
            "`try` takes at least one expression\n --> main.hcl:4:7",
        ],
    );
    // Every failure is told when none succeeds.
    let out = errors("locals {\n  a = try({}.x, 1 / 0)\n}\n");
    assert_has(
        &out,
        &[
            "error calling function `try`: no expression succeeded:\n- ",
            "\n- division by zero\n",
            " --> main.hcl:2:7",
        ],
    );
}

#[test]
fn the_marks_of_what_try_chose_from_are_kept() {
    let c = ok(&(TOKEN.to_owned()
        + r#"
environment "e" {
  release  = try(var.token, "none")
  endpoint = "h:1"
}
environment "f" {
  release  = try("1", var.token)
  endpoint = "h:2"
}
"#));
    assert_eq!(
        c.environments["e"].marks.release,
        Marks::sensitive("var.token")
    );
    // Conservative: the fallback that was not chosen marks it too.
    assert!(!c.environments["f"].marks.is_clear());
}

/// Load `main` with the other `files` beside it (templates, data).
fn load_with(main: &str, files: &[(&str, &[u8])]) -> Result<Loaded, Diagnostics> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.hcl"), main).unwrap();
    for (name, bytes) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    load(dir.path(), &VarInputs::default())
}

#[test]
fn file_and_fileexists_read_the_configuration_directory() {
    let main = r#"locals {
  hello   = file("hello.txt")
  nested  = file("data/x.txt")
  there   = fileexists("hello.txt")
  missing = fileexists("nope.txt")
  either  = fileexists("custom.sh") ? file("custom.sh") : "default"
  tried   = try(file("nope.txt"), "fallback")
}
"#;
    let c = load_with(
        main,
        &[("hello.txt", b"Hello World"), ("data/x.txt", b"x\n")],
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .config;
    assert_eq!(c.locals["hello"], json!("Hello World"));
    assert_eq!(c.locals["nested"], json!("x\n"));
    assert_eq!(c.locals["there"], json!(true));
    assert_eq!(c.locals["missing"], json!(false));
    assert_eq!(c.locals["either"], json!("default"));
    assert_eq!(c.locals["tried"], json!("fallback"));
}

#[test]
fn a_file_outside_the_directory_is_read_only_by_an_absolute_path() {
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.txt");
    std::fs::write(&secret, "s").unwrap();
    let main = format!(
        "locals {{\n  a = file(\"../secret.txt\")\n  b = fileexists(\"data/../../x\")\n  c = file({:?})\n  d = file(\"missing.txt\")\n  e = file(\"data\")\n  f = file(\"bad.txt\")\n}}\n",
        secret.display().to_string()
    );
    let err = load_with(&main, &[("data/y", b""), ("bad.txt", b"ok\nca\xe9")])
        .unwrap_err()
        .to_string();
    assert_has(
        &err,
        &[
            "\"../secret.txt\" is outside the configuration directory",
            "a file outside it is read only when its path is absolute",
            " --> main.hcl:2:7",
            "\"data/../../x\" is outside the configuration directory",
            " --> main.hcl:3:7",
            "no file exists at \"missing.txt\"",
            " --> main.hcl:5:7",
            "\"data\" is a directory, not a file",
            " --> main.hcl:6:7",
            "bad.txt:2:3: bad.txt is not UTF-8 text: byte 0xe9",
            " --> main.hcl:7:7",
            "5 errors found",
        ],
    );
    // The absolute path was read (c is not among the errors).
    assert!(!err.contains("main.hcl:4:"), "{err}");
}

#[cfg(unix)]
#[test]
fn a_link_out_of_the_directory_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("s.txt"), "s").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path().join("s.txt"), dir.path().join("link.txt")).unwrap();
    std::fs::write(
        dir.path().join("main.hcl"),
        "locals {\n  a = file(\"link.txt\")\n}\n",
    )
    .unwrap();
    let err = load(dir.path(), &VarInputs::default())
        .unwrap_err()
        .to_string();
    assert_has(
        &err,
        &[
            "\"link.txt\" is outside the configuration directory",
            " --> main.hcl:2:7",
        ],
    );
}

#[test]
fn templatefile_renders_with_its_variables_and_every_function() {
    let main = r#"locals {
  backends = templatefile("backends.tftpl", { port = 8080, ip_addrs = ["10.0.0.1", "10.0.0.2"] })
  config   = templatefile("config.tftpl", { config = { "x" = "y", "foo" = "bar", "key" = "value" } })
  json     = templatefile("json.tftpl", { port = 8080, ip_addrs = ["10.0.0.1", "10.0.0.2"] })
  lazy     = templatefile("lazy.tftpl", { items = [{ a = 1 }, {}] })
}
"#;
    let files: &[(&str, &[u8])] = &[
        // Terraform's examples (its backends example binds the index as
        // `addr`; here the list is iterated by value, as its text intends).
        ("backends.tftpl", b"%{ for addr in ip_addrs ~}\nbackend ${addr}:${port}\n%{ endfor ~}\n"),
        ("config.tftpl", b"%{ for config_key, config_value in config }\nset ${config_key} = ${config_value}\n%{ endfor ~}\n"),
        ("json.tftpl", b"${jsonencode({\n  \"backends\": [for addr in ip_addrs : \"${addr}:${port}\"],\n})}\n"),
        ("lazy.tftpl", b"%{ for i in items }${try(i.a * 10, \"-\")};%{ endfor }"),
    ];
    let c = load_with(main, files)
        .unwrap_or_else(|e| panic!("{e}"))
        .config;
    assert_eq!(
        c.locals["backends"],
        json!("backend 10.0.0.1:8080\nbackend 10.0.0.2:8080\n")
    );
    assert_eq!(
        c.locals["config"],
        json!("\nset foo = bar\n\nset key = value\n\nset x = y\n")
    );
    assert_eq!(
        c.locals["json"],
        json!("{\"backends\":[\"10.0.0.1:8080\",\"10.0.0.2:8080\"]}\n")
    );
    assert_eq!(c.locals["lazy"], json!("10;-;"));
}

#[test]
fn templatefile_errors_name_the_template() {
    let main = r#"locals {
  a = templatefile("t.tftpl", {})
  b = templatefile("self.tftpl", {})
  c = templatefile("syntax.tftpl", {})
  d = templatefile("div.tftpl", { n = 0 })
  e = templatefile("t.tftpl", { "1x" = 1 })
}
"#;
    let files: &[(&str, &[u8])] = &[
        ("t.tftpl", b"port ${port}\n"),
        ("self.tftpl", b"${templatefile(\"t.tftpl\", {port = 1})}"),
        ("syntax.tftpl", b"ok\n${ 1 +\n"),
        ("div.tftpl", b"line\n  ${10 / n}\n"),
    ];
    let err = load_with(main, files).unwrap_err().to_string();
    assert_has(
        &err,
        &[
            "in t.tftpl: the variables have no key \"port\"",
            " --> main.hcl:2:7",
            "cannot recursively call templatefile from inside another template",
            " --> main.hcl:3:7",
            "syntax.tftpl:2:1: ",
            " --> main.hcl:4:7",
            "in div.tftpl:2:10: division by zero",
            " --> main.hcl:5:7",
            "invalid template variable name \"1x\"",
            " --> main.hcl:6:7",
            "5 errors found",
        ],
    );
}

#[test]
fn a_parse_that_does_not_finish_is_an_error_after_its_limit() {
    // The vendored hcl-edit parses every slow input the fuzzer found in
    // milliseconds (backtracking_tests.rs); the limit stays for any shape
    // that still backtracks. A parse that never finishes stands for one.
    fn never_finishes(_: &str) -> Result<hcl_edit::structure::Body, hcl_edit::parser::Error> {
        loop {
            std::thread::park();
        }
    }
    let text = "x = [[[\n".to_string();
    let mut map = super::source::SourceMap::default();
    let mut diags = Vec::new();
    let started = std::time::Instant::now();
    let limit = Duration::from_millis(200);
    let body = super::parse::parse_text_with(
        std::path::Path::new("main.hcl"),
        text,
        &mut map,
        &mut diags,
        limit,
        never_finishes,
    );
    assert!(body.is_none());
    assert!(started.elapsed() < limit * 10, "{:?}", started.elapsed());
    let rendered = Diagnostics(diags).to_string();
    assert_has(
        &rendered,
        &[
            "the HCL parser did not finish within 1s; nothing was read (brackets nest deepest here, 3 deep)",
            "--> main.hcl:1:7",
        ],
    );
    // A real configuration is parsed as before, well within the limit.
    assert!(ok(EXAMPLE).environments.contains_key("green"));
}
