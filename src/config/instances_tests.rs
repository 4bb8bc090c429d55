//! Tests of `for_each` and `count`: whole configurations in, instances or
//! located errors out.

use crate::addr::Address;
use crate::config::{load_str, VarInputs};

fn ok(text: &str) -> crate::config::Config {
    match load_str(text, &VarInputs::default()) {
        Ok(l) => l.config,
        Err(e) => panic!("unexpected diagnostics:\n{e}"),
    }
}

fn errors(text: &str) -> String {
    match load_str(text, &VarInputs::default()) {
        Ok(_) => panic!("expected diagnostics"),
        Err(e) => e.to_string(),
    }
}

const FLEET: &str = r#"
locals {
  services = { web = 9202, api = 9201 }
}
environment "blue" {
  for_each = local.services
  release  = "1.0-${each.key}"
  endpoint = "127.0.0.1:${each.value}"
}
environment "green" {
  for_each = local.services
  release  = "1.1"
  endpoint = "127.0.0.1:${each.value + 100}"
  health {
    path = "/healthz/${environment.blue[each.key].release}"
  }
}
router "svc" {
  for_each = local.services
  live     = environment.green[each.key]
  preview  = environment.blue[each.key]
  haproxy {
    socket   = "/run/haproxy.sock"
    map      = "/etc/haproxy/live.map"
    backends = { blue = "${each.key}_blue" }
  }
}
output "names" {
  value = [for k, e in environment.green : e.name]
}
output "one" {
  value = router.svc["web"].name
}
"#;

#[test]
fn for_each_makes_an_instance_per_key_named_as_terraform_does() {
    let config = ok(FLEET);
    let envs: Vec<&str> = config.environments.keys().map(String::as_str).collect();
    assert_eq!(
        envs,
        [
            r#"blue["api"]"#,
            r#"blue["web"]"#,
            r#"green["api"]"#,
            r#"green["web"]"#
        ]
    );
    let api = &config.environments[r#"blue["api"]"#];
    assert_eq!(api.name, r#"blue["api"]"#);
    assert_eq!(api.release, "1.0-api");
    assert_eq!(api.endpoints, ["127.0.0.1:9201"]);
    assert_eq!(
        config.environments[r#"green["web"]"#].endpoints,
        ["127.0.0.1:9302"]
    );
    let routers: Vec<&str> = config.routers.keys().map(String::as_str).collect();
    assert_eq!(routers, [r#"svc["api"]"#, r#"svc["web"]"#]);
    let web = &config.routers[r#"svc["web"]"#];
    assert_eq!(web.live, r#"green["web"]"#);
    assert_eq!(web.preview.as_deref(), Some(r#"blue["web"]"#));
    // The backend block is evaluated per instance.
    assert_eq!(
        web.backend.body["backends"],
        serde_json::json!({ "blue": "web_blue" })
    );
    assert_eq!(
        config.outputs["names"].value,
        serde_json::json!([r#"green["api"]"#, r#"green["web"]"#])
    );
    assert_eq!(
        config.outputs["one"].value,
        serde_json::json!(r#"svc["web"]"#)
    );
}

#[test]
fn an_instance_is_ordered_after_the_instance_of_its_own_key_only() {
    let config = ok(FLEET);
    let env_edges: Vec<(String, String)> = config
        .references
        .iter()
        .filter(|(f, t)| matches!((f, t), (Address::Environment(_), Address::Environment(_))))
        .map(|(f, t)| (f.to_string(), t.to_string()))
        .collect();
    assert_eq!(
        env_edges,
        [
            (
                r#"environment.green["api"]"#.to_owned(),
                r#"environment.blue["api"]"#.to_owned()
            ),
            (
                r#"environment.green["web"]"#.to_owned(),
                r#"environment.blue["web"]"#.to_owned()
            ),
        ]
    );
}

#[test]
fn a_reference_the_expression_does_not_pin_reaches_every_instance() {
    let config = ok(r#"
environment "blue" {
  for_each = toset(["a", "b"])
  release  = "1"
  endpoint = "127.0.0.1:1"
}
environment "one" {
  release  = join(",", [for e in environment.blue : e.release])
  endpoint = "127.0.0.1:2"
}
environment "two" {
  release  = environment.blue["b"].release
  endpoint = "127.0.0.1:3"
}
"#);
    let edges: Vec<String> = config
        .references
        .iter()
        .map(|(f, t)| format!("{f} -> {t}"))
        .collect();
    assert_eq!(
        edges,
        [
            r#"environment.one -> environment.blue["a"]"#,
            r#"environment.one -> environment.blue["b"]"#,
            r#"environment.two -> environment.blue["b"]"#,
        ]
    );
    // A set of strings: each.value is the key.
    assert_eq!(config.environments[r#"blue["a"]"#].name, r#"blue["a"]"#);
}

#[test]
fn count_makes_indexed_instances_and_a_list() {
    let config = ok(r#"
environment "canary" {
  count    = 3
  release  = "c${count.index}"
  endpoint = "127.0.0.1:${9300 + count.index}"
}
environment "none" {
  count    = 0
  release  = "x"
  endpoint = "127.0.0.1:1"
}
output "last" {
  value = environment.canary[2].endpoint
}
output "how_many" {
  value = length(environment.canary) + length(environment.none)
}
"#);
    let names: Vec<&str> = config.environments.keys().map(String::as_str).collect();
    assert_eq!(names, ["canary[0]", "canary[1]", "canary[2]"]);
    assert_eq!(config.environments["canary[1]"].release, "c1");
    assert_eq!(
        config.outputs["last"].value,
        serde_json::json!("127.0.0.1:9302")
    );
    assert_eq!(config.outputs["how_many"].value, serde_json::json!(3));
}

#[test]
fn mistakes_are_located() {
    let text = r#"environment "blue" {
  for_each = ["a", "b", "a"]
  release  = "1.0"
  endpoint = "127.0.0.1:1"
}
environment "green" {
  for_each = { a = 1 }
  count    = 2
  release  = "1"
  endpoint = "127.0.0.1:2"
}
environment "red" {
  for_each = { x = 1 }
  release  = each.kee
  endpoint = "127.0.0.1:${count.index}"
}
environment "c" {
  count    = 1.5
  release  = "1"
  endpoint = "127.0.0.1:3"
}
environment "d" {
  for_each = { "a b" = 1 }
  release  = "1"
  endpoint = "127.0.0.1:3"
}
environment "e" {
  for_each = { k = 1 }
  release  = "1"
  endpoint = "127.0.0.1:3"
}
environment "f" {
  release  = each.key
  endpoint = "127.0.0.1:3"
}
environment "g" {
  for_each = "abc"
  release  = "1"
  endpoint = "127.0.0.1:3"
}
router "r" {
  live = environment.e
  exec {
    read   = ["true"]
    switch = ["true"]
  }
}
router "s" {
  live = environment.e["q"]
  exec {
    read   = ["true"]
    switch = ["true"]
  }
}
"#;
    let e = errors(text);
    for (message, at) in [
        ("`for_each` holds \"a\" twice", "main.hcl:2:14"),
        (
            "a block takes `for_each` or `count`, not both",
            "main.hcl:8:3",
        ),
        (
            "`each` has only `each.key` and `each.value`",
            "main.hcl:14:14",
        ),
        (
            "`count.index` exists only in a block with `count`",
            "main.hcl:15:27",
        ),
        (
            "`count` must be a whole number of 0 or more, not 1.5",
            "main.hcl:18:14",
        ),
        (
            "`for_each` key \"a b\" cannot name an instance",
            "main.hcl:23:14",
        ),
        (
            "`each.key` and `each.value` exist only in a block with `for_each`",
            "main.hcl:33:14",
        ),
        (
            "`for_each` must be a map or a set of strings, not a string",
            "main.hcl:37:14",
        ),
        (
            "`live` names environment.e, which makes several instances",
            "main.hcl:42:10",
        ),
        (
            "undefined environment `environment.e[\"q\"]`",
            "main.hcl:49:10",
        ),
    ] {
        let Some(pos) = e.find(message) else {
            panic!("missing {message:?} in:\n{e}");
        };
        assert!(
            e[pos..].lines().nth(1).is_some_and(|l| l.contains(at)),
            "{message:?} is not at {at}:\n{e}"
        );
    }
    assert!(
        e.contains("help: did you mean `environment.e[\"k\"]`?"),
        "{e}"
    );
    assert!(
        e.contains("help: name one of them: `live = environment.e[\"k\"]`"),
        "{e}"
    );
}

#[test]
fn a_sensitive_for_each_is_refused() {
    let e = errors(
        r#"variable "keys" {
  default   = { a = 1 }
  sensitive = true
}
environment "blue" {
  for_each = var.keys
  release  = "1"
  endpoint = "127.0.0.1:1"
}
"#,
    );
    assert!(e.contains("`for_each` cannot use a sensitive value"), "{e}");
    assert!(e.contains("main.hcl:6:14"), "{e}");
}

#[test]
fn a_label_that_looks_like_an_instance_is_refused() {
    let e = errors(
        r#"environment "x.y" {
  release  = "1"
  endpoint = "127.0.0.1:3"
}
"#,
    );
    assert!(e.contains("`x.y` cannot name an environment"), "{e}");
    assert!(e.contains("main.hcl:1:13"), "{e}");
}

#[test]
fn moved_blocks_name_old_and_new_addresses() {
    let config = ok(r#"
environment "green" {
  for_each = toset(["api"])
  release  = "1"
  endpoint = "127.0.0.1:1"
}
moved {
  from = environment.green
  to   = environment.green["api"]
}
moved {
  from = environment.old
  to   = environment.green
}
"#);
    let moves: Vec<(String, String)> = config
        .moves
        .iter()
        .map(|m| (m.from.to_string(), m.to.to_string()))
        .collect();
    assert_eq!(
        moves,
        [
            (
                "environment.green".to_owned(),
                r#"environment.green["api"]"#.to_owned()
            ),
            ("environment.old".to_owned(), "environment.green".to_owned()),
        ]
    );
}

#[test]
fn moved_block_mistakes_are_located() {
    let e = errors(
        r#"environment "green" {
  release  = "1"
  endpoint = "127.0.0.1:1"
}
moved {
  from = environment.green
  to   = environment.blue
}
moved {
  from = environment.a
  to   = router.green
}
moved {
  from = "green"
  to   = environment.green
}
moved {
  from = environment.x
  to   = environment.green
}
moved {
  from = environment.x
  to   = environment.green
}
"#,
    );
    for (message, at) in [
        (
            "environment.green is still in the configuration",
            "main.hcl:6:10",
        ),
        (
            "`from` is environment.a and `to` is router.green",
            "main.hcl:11:10",
        ),
        (
            "`from` must be the address of an environment or a router",
            "main.hcl:14:10",
        ),
        (
            "environment.x is moved twice (the first at main.hcl:17:1)",
            "main.hcl:22:10",
        ),
    ] {
        let Some(pos) = e.find(message) else {
            panic!("missing {message:?} in:\n{e}");
        };
        assert!(
            e[pos..].lines().nth(1).is_some_and(|l| l.contains(at)),
            "{message:?} is not at {at}:\n{e}"
        );
    }
}

#[test]
fn an_instance_sees_its_own_key_whole_and_the_block_when_it_asks() {
    // Only the instance of the referring key goes into a context that
    // reaches no other (config::eval); an expression that also reaches the
    // whole block, or whose `each` is a `for` variable, sees all of it.
    let config = ok(r#"
locals {
  services = { a = 1, b = 2, c = 3 }
}
environment "blue" {
  for_each = local.services
  release  = "b-${each.key}"
  endpoint = "127.0.0.1:${each.value}"
}
environment "canary" {
  count    = 3
  release  = "c${count.index}"
  endpoint = "127.0.0.1:${9300 + count.index}"
}
environment "green" {
  for_each = local.services
  release  = "${environment.blue[each.key].release}/${length(environment.blue)}"
  endpoint = environment.blue["c"].endpoints[0]
}
environment "other" {
  count    = 3
  release  = "${environment.canary[count.index].release}+${environment.canary[2].release}"
  endpoint = "127.0.0.1:1"
}
environment "shadowed" {
  for_each = local.services
  release  = join(",", [for each in [{ key = "b" }] : environment.blue[each.key].release])
  endpoint = "127.0.0.1:1"
}
output "own" {
  value = { for k, e in environment.green : k => e.release }
}
"#);
    assert_eq!(
        config.outputs["own"].value,
        serde_json::json!({ "a": "b-a/3", "b": "b-b/3", "c": "b-c/3" })
    );
    assert_eq!(
        config.environments[r#"green["a"]"#].endpoints,
        ["127.0.0.1:3"]
    );
    assert_eq!(config.environments["other[0]"].release, "c0+c2");
    assert_eq!(config.environments["other[1]"].release, "c1+c2");
    assert_eq!(config.environments[r#"shadowed["a"]"#].release, "b-b");
    // The `for`'s `each` is no instance's: each depends on them all.
    let edges: Vec<String> = config
        .references
        .iter()
        .filter(|(f, t)| {
            f.to_string() == r#"environment.shadowed["a"]"# && matches!(t, Address::Environment(_))
        })
        .map(|(_, t)| t.to_string())
        .collect();
    assert_eq!(
        edges,
        [
            r#"environment.blue["a"]"#,
            r#"environment.blue["b"]"#,
            r#"environment.blue["c"]"#
        ]
    );
}

#[test]
fn a_key_an_instance_refers_to_that_the_block_lacks_is_an_error() {
    let e = errors(
        r#"environment "blue" {
  for_each = { a = 1 }
  release  = "1"
  endpoint = "127.0.0.1:1"
}
environment "green" {
  for_each = { a = 1, b = 2 }
  release  = environment.blue[each.key].release
  endpoint = "127.0.0.1:2"
}
"#,
    );
    assert!(e.contains("main.hcl:8:14"), "{e}");
}

#[test]
fn the_marks_of_its_own_instance_reach_an_instance() {
    // With only its own instance in the context (config::eval), the marks
    // are still those of that instance, not another's.
    let config = ok(r#"
variable "secret" {
  sensitive = true
  default   = "s3cret"
}
environment "blue" {
  for_each = { a = 1, b = 2 }
  release  = each.key == "a" ? var.secret : "open"
  endpoint = "127.0.0.1:1"
}
environment "green" {
  for_each = { a = 1, b = 2 }
  release  = "${environment.blue[each.key].release}-g"
  endpoint = "127.0.0.1:2"
}
"#);
    let marked = |name: &str| !config.environments[name].marks.release.is_clear();
    assert!(marked(r#"green["a"]"#));
    assert!(!marked(r#"green["b"]"#));
    assert_eq!(config.environments[r#"green["b"]"#].release, "open-g");
}
