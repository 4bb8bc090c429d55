//! Bad input: every mistake is reported at its file, line and column, in one
//! run, with exit status 1 and no panic.

use crate::support::Case;

#[track_caller]
fn fails_at(text: &str, needles: &[&str]) -> String {
    let case = Case::with_main(text);
    let run = case.run(&["validate"]).code(1);
    for n in needles {
        assert!(
            run.stderr.contains(n),
            "stderr lacks {n:?}:\n{}",
            run.stderr
        );
    }
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run.stderr
}

#[test]
fn syntax_error_points_at_its_place() {
    fails_at(
        "environment \"blue\" {\n  release = \"1\"\n  endpoint = \n}\n",
        &["main.hcl:3:"],
    );
}

#[test]
fn unknown_block_and_argument() {
    let text = "enviroment \"blue\" {\n}\n\nenvironment \"green\" {\n  relase   = \"1\"\n  endpoint = \"127.0.0.1:1\"\n}\n";
    let err = fails_at(text, &["main.hcl:1:1", "main.hcl:5:3"]);
    assert!(err.contains("relase"), "{err}");
}

#[test]
fn undefined_reference_and_division_by_zero_in_one_run() {
    let text = "locals {\n  a = 1 / 0\n}\n\nenvironment \"blue\" {\n  release  = var.nope\n  endpoint = \"127.0.0.1:1\"\n}\n";
    fails_at(
        text,
        &[
            "main.hcl:2:",
            "division by zero",
            "main.hcl:6:14",
            "var.nope",
        ],
    );
}

#[test]
fn arithmetic_is_checked_and_located_in_the_binary_too() {
    // hcl-rs's own operators gave [null, 10] and null in a release build.
    let text =
        "locals {\n  a = [for x in [0, 1] : 10 / x]\n  b = 1e308 * 10\n  c = true ? 1 : 1 / 0\n}\n";
    let err = fails_at(
        text,
        &[
            "error: division by zero\n --> main.hcl:2:31",
            "error: the result of `*` is out of range",
            " --> main.hcl:3:7",
            "2 errors found",
        ],
    );
    assert!(!err.contains("main.hcl:4:"), "{err}");
}

#[test]
fn dependency_cycle_is_named_in_full() {
    let text = "locals {\n  a = local.b\n  b = local.a\n}\n";
    fails_at(text, &["local.a -> local.b -> local.a"]);
}

#[test]
fn router_to_unknown_environment() {
    let text = "router \"public\" {\n  live = environment.purple\n  haproxy {\n    socket = \"/tmp/x.sock\"\n    map    = \"/tmp/x.map\"\n  }\n}\n";
    fails_at(text, &["main.hcl:2:10", "purple"]);
}

#[test]
fn backend_setting_error_points_at_the_attribute() {
    let text = "environment \"blue\" {\n  release  = \"1\"\n  endpoint = \"127.0.0.1:1\"\n}\n\nrouter \"public\" {\n  live = environment.blue\n  haproxy {\n    sockt = \"/tmp/x.sock\"\n    map   = \"/tmp/x.map\"\n  }\n}\n";
    fails_at(text, &["main.hcl:9:5", "sockt"]);
}

#[test]
fn bad_var_flag_names_the_flag() {
    let case = Case::with_main("variable \"x\" {\n  default = \"a\"\n}\n");
    case.run(&["validate", "--var", "nope=1"])
        .code(1)
        .stderr_has("--var nope=...: no variable \"nope\" is declared");
    case.run(&["validate", "--var", "novalue"])
        .code(1)
        .stderr_has("--var novalue");
}

#[test]
fn a_typo_in_a_provider_setting_gets_did_you_mean_at_its_place() {
    let router = |body: &str| {
        format!("environment \"blue\" {{\n  release  = \"1\"\n  endpoint = \"127.0.0.1:1\"\n}}\n\nrouter \"public\" {{\n  live = environment.blue\n  haproxy {{\n{body}  }}\n}}\n")
    };
    let err = fails_at(
        &router("    sockett = \"/tmp/x.sock\"\n    map     = \"/tmp/x.map\"\n"),
        &[
            "main.hcl:9:5",
            "unknown field `sockett`",
            "did you mean `socket`?",
        ],
    );
    assert_eq!(
        err.matches("sockett").count(),
        2,
        "said once (message and source line):\n{err}"
    );
    fails_at(
        &router("    socket = \"/tmp/x.sock\"\n    map    = \"/tmp/x.map\"\n    kye    = \"k\"\n"),
        &["main.hcl:11:5", "did you mean `key`?"],
    );
    // A wrong type points at the attribute too.
    fails_at(
        &router("    socket  = \"/tmp/x.sock\"\n    map     = \"/tmp/x.map\"\n    timeout = 5\n"),
        &["main.hcl:11:5", "timeout", "expected a string"],
    );
}

#[test]
fn an_unreachable_router_says_its_cause_once() {
    let case = Case::with_main(
        "environment \"blue\" {\n  release  = \"1\"\n  endpoint = \"127.0.0.1:1\"\n}\n\nrouter \"public\" {\n  live = environment.blue\n  haproxy {\n    address = \"127.0.0.1:1\"\n    map     = \"/tmp/cutover-test-unused.map\"\n  }\n}\n",
    );
    let run = case.run(&["plan"]).code(1);
    assert_eq!(
        run.stderr.matches("Connection refused").count(),
        1,
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr.matches("unreachable").count(),
        1,
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("router.public"), "{}", run.stderr);
}

#[test]
fn a_var_file_error_points_at_its_line() {
    let case =
        Case::with_main("variable \"a\" {\n  default = 1\n}\nvariable \"b\" {\n  default = 2\n}\n");
    let file = case.dir.path().join("vars.tfvars");
    std::fs::write(&file, "a = 1\n\nb = \n").unwrap();
    let run = case
        .run(&["validate", "--var-file", file.to_str().unwrap()])
        .code(1);
    assert!(run.stderr.contains("vars.tfvars:3:"), "{}", run.stderr);
    let json = case.dir.path().join("vars.json");
    std::fs::write(&json, "{\"a\": 1,\n \"b\": }\n").unwrap();
    case.run(&["validate", "--var-file", json.to_str().unwrap()])
        .code(1)
        .stderr_has("line 2 column 7");
}

#[test]
fn a_pg_connection_string_that_cannot_be_read_is_found_by_validate_without_showing_it() {
    let err = fails_at(
        "cutover {\n  backend \"pg\" {\n    conn_str = \"postgres://u:hunter2@db/cutover?sslmode=bogus\"\n  }\n}\n",
        &["main.hcl:2:3", "`conn_str` of this block", "invalid value for option `sslmode`"],
    );
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn a_preview_on_a_router_backend_without_one_is_refused_at_validate() {
    let text = "environment \"blue\" {\n  release  = \"1\"\n  endpoint = \"127.0.0.1:1\"\n}\n\nenvironment \"green\" {\n  release  = \"1\"\n  endpoint = \"127.0.0.1:2\"\n}\n\nrouter \"lb\" {\n  live    = environment.blue\n  preview = environment.green\n  exec {\n    read   = [\"./read.sh\"]\n    switch = [\"./switch.sh\"]\n  }\n}\n";
    fails_at(
        text,
        &[
            "main.hcl:13:13",
            "`exec` backend has no preview listener",
            "remove `preview`",
        ],
    );
}

/// A router block of several instances (`instances = [...]`): a mistake in
/// one instance is reported at that instance's attribute (or at the
/// instance, for an attribute it lacks), one beside `instances` at itself.
#[test]
fn fleet_settings_errors_point_into_the_instance() {
    let router = |body: &str| {
        format!("environment \"blue\" {{\n  release  = \"1\"\n  endpoint = \"127.0.0.1:1\"\n}}\n\nrouter \"public\" {{\n  live = environment.blue\n{body}}}\n")
    };
    // Line 8 opens the backend block.
    let shared = "  haproxy {\n    socket = \"/tmp/a.sock\"\n    instances = [\n      { socket = \"/tmp/a.sock\", map = \"/tmp/a.map\" },\n    ]\n  }\n";
    fails_at(
        &router(shared),
        &[
            "main.hcl:9:5",
            "`socket` belongs to each instance when `instances` is set",
        ],
    );
    let stray = "  haproxy {\n    instances = [\n      { socket = \"/tmp/a.sock\", map = \"/tmp/a.map\" },\n      { socket = \"/tmp/b.sock\", map = \"/tmp/b.map\", key = \"k\" },\n    ]\n  }\n";
    fails_at(
        &router(stray),
        &[
            "main.hcl:11:53",
            "`key` is not one of them",
            "`haproxy` block itself",
        ],
    );
    let missing = "  haproxy {\n    instances = [\n      { socket = \"/tmp/a.sock\", map = \"/tmp/a.map\" },\n      { name = \"edge-b\", socket = \"/tmp/b.sock\" },\n    ]\n  }\n";
    fails_at(
        &router(missing),
        &[
            "main.hcl:11:7",
            "instance `edge-b`: in `haproxy` block: missing field `map`",
        ],
    );
    let twice = "  caddy {\n    instances = [\n      { admin = \"127.0.0.1:2019\" },\n      { admin = \"127.0.0.1:2019\" },\n    ]\n  }\n";
    fails_at(
        &router(twice),
        &[
            "main.hcl:11:7",
            "instances[0] and instances[1] are both named `127.0.0.1:2019`",
        ],
    );
    let typo = "  nginx {\n    marker = \"127.0.0.1:8099\"\n    instances = [{ pid_file = \"/run/a.pid\", includ = \"/etc/a.conf\" }]\n  }\n";
    fails_at(
        &router(typo),
        &["main.hcl:9:5", "`marker` belongs to each instance"],
    );
    let typo = "  nginx {\n    instances = [{ pid_file = \"/run/a.pid\", includ = \"/etc/a.conf\" }]\n  }\n";
    fails_at(&router(typo), &["main.hcl:9:45", "did you mean `include`?"]);
}

#[test]
fn two_routers_of_one_haproxy_key_are_refused_at_validate() {
    // A literal router and an instance of a `for_each` one, on one map and
    // one key: each switch would move the other's traffic.
    let text = "environment \"blue\" {\n  release  = \"1\"\n  endpoint = \"127.0.0.1:1\"\n}\n\n\
                router \"public\" {\n  live = environment.blue\n  haproxy {\n    socket = \"/tmp/a.sock\"\n    map    = \"/tmp/a.map\"\n  }\n}\n\n\
                router \"svc\" {\n  for_each = toset([\"api\", \"web\"])\n  live     = environment.blue\n  haproxy {\n    socket = \"/tmp/a.sock\"\n    map    = \"/tmp/a.map\"\n    key    = each.key == \"web\" ? \"public\" : \"svc.api\"\n  }\n}\n";
    let stderr = fails_at(
        text,
        &[
            "main.hcl:17:3",
            "router.public and router.svc[\"web\"] both switch the key `public` of the map /tmp/a.map",
            "give each router its own `key`",
        ],
    );
    assert!(!stderr.contains("svc[\"api\"]"), "{stderr}");
    // Apart, they are fine.
    let apart = text.replace("\"public\" : \"svc.api\"", "\"svc.web\" : \"svc.api\"");
    Case::with_main(&apart).run(&["validate"]).code(0);
}
