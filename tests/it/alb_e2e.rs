//! The `aws_alb` router end to end: cutover's CLI, the AWS SDK, and moto's
//! server on loopback standing in for AWS (DESIGN.md, "Real parts"). The
//! colours are real demo-app processes behind their health gates; their
//! target groups live in moto.
//!
//! moto reports every registered target healthy and accepts a forward to a
//! target group that does not exist: the tests of those two refusals check
//! that cutover finds them itself.

use serde_json::Value;

use crate::moto_support::{Alb, Moto, AWS_ENV};
use crate::ports_support::free_port;
use crate::support::{demo_app_bin, Case, ProcessReaper};

/// Two demo-app colours and the router `public` on an ALB in moto.
struct World {
    moto: Moto,
    alb: Alb,
    blue: u16,
    green: u16,
}

impl World {
    fn start(setup: &[&str]) -> World {
        let moto = Moto::start();
        let alb = moto.alb(setup);
        World {
            moto,
            alb,
            blue: free_port(),
            green: free_port(),
        }
    }

    fn envs(&self) -> String {
        self.envs_at("1.0.0")
    }

    /// The colours, blue at `blue_release`.
    fn envs_at(&self, blue_release: &str) -> String {
        let env = |name: &str, port: u16, release: &str| {
            format!(
                r#"
environment "{name}" {{
  release  = "{release}"
  endpoint = "127.0.0.1:{port}"
  process {{
    command = ["{demo}", "--port", "{port}", "--release", "{release}"]
    grace   = "2s"
  }}
  health {{
    path     = "/healthz"
    interval = "100ms"
    timeout  = "10s"
  }}
}}
"#,
                demo = demo_app_bin().display()
            )
        };
        format!(
            "{}{}",
            env("blue", self.blue, blue_release),
            env("green", self.green, "1.0.0")
        )
    }

    /// The router `name` on the ALB: `extra` in the router, `settings` in
    /// its `aws_alb` block.
    fn router(&self, name: &str, live: &str, extra: &str, settings: &str) -> String {
        format!(
            r#"
router "{name}" {{
  live = environment.{live}
  {extra}
  aws_alb {{
    listener_arn  = "{listener}"
    target_groups = {{
      blue  = "{blue}"
      green = "{green}"
    }}
    endpoint_url  = "{url}"
    timeout       = "5s"
    {settings}
  }}
}}
"#,
            listener = self.alb.listener,
            blue = self.alb.tg("blue"),
            green = self.alb.tg("green"),
            url = self.moto.url(),
        )
    }

    fn config(&self, live: &str, extra: &str, settings: &str) -> String {
        format!(
            "{}{}",
            self.envs(),
            self.router("public", live, extra, settings)
        )
    }

    /// The colour the listener's default action forwards to, read from moto.
    fn live(&self) -> String {
        let tg = self.moto.default_target(&self.alb.listener);
        let colour = self
            .alb
            .target_groups
            .iter()
            .find(|(_, arn)| Some(*arn) == tg.as_ref());
        colour.map_or_else(|| format!("{tg:?}"), |(c, _)| c.clone())
    }
}

fn run(case: &Case, args: &[&str]) -> crate::support::Run {
    case.run_env(args, &AWS_ENV)
}

/// The JSON lines of an `apply --json`, each as `type id-or-router`.
fn lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The position of the first line of `kind` whose `id` (or `router`) is `who`.
#[track_caller]
fn at(lines: &[Value], kind: &str, who: &str) -> usize {
    lines
        .iter()
        .position(|l| l["type"] == kind && (l["id"] == who || l["router"] == who))
        .unwrap_or_else(|| panic!("no {kind} for {who} in:\n{lines:#?}"))
}

#[test]
fn plan_apply_noop_cutover_and_rollback() {
    let w = World::start(&["--live", "blue"]);
    let case = Case::with_main(&w.config("blue", "", ""));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));

    // The listener already forwards to blue: the plan reads it from AWS.
    run(&case, &["plan"])
        .code(0)
        .stdout_has("environment \"green\"");
    run(&case, &["apply", "--auto-approve"]).code(0);
    assert_eq!(w.live(), "blue");
    run(&case, &["plan", "--detailed-exitcode"])
        .code(0)
        .stdout_has("No changes");
    let before = case.state_bytes().unwrap();
    run(&case, &["apply", "--auto-approve"]).code(0);
    assert_eq!(
        case.state_bytes().unwrap(),
        before,
        "a no-change apply rewrote the state"
    );

    // The cut-over: green's gate, then one switch, in that order.
    case.write("main.hcl", &w.config("green", "", ""));
    run(&case, &["plan"])
        .code(0)
        .stdout_has("router.public will cut over: blue -> green");
    let apply = run(&case, &["apply", "--auto-approve", "--json"]).code(0);
    let l = lines(&apply.stdout);
    assert!(at(&l, "health_passed", "health.green") < at(&l, "step_started", "cutover.public"));
    let done = at(&l, "cutover_done", "cutover.public");
    assert_eq!(
        (l[done]["from"].as_str(), l[done]["to"].as_str()),
        (Some("blue"), Some("green"))
    );
    assert_eq!(w.live(), "green");
    run(&case, &["plan", "--detailed-exitcode"]).code(0);

    // The way back: one switch to blue, which kept running.
    let back = run(&case, &["rollback", "--auto-approve", "--json"]).code(0);
    let l = lines(&back.stdout);
    assert!(
        at(&l, "step_finished", "health.blue") < at(&l, "step_started", "cutover.public"),
        "{l:#?}"
    );
    at(&l, "cutover_done", "cutover.public");
    assert_eq!(w.live(), "blue");
    assert_eq!(case.state()["routers"]["public"]["live"], "blue");
}

#[test]
fn a_hand_made_switch_a_weighted_forward_and_an_unknown_target_group_are_drift() {
    let w = World::start(&["--colours", "blue,green,canary"]);
    let case = Case::with_main(&w.config("blue", "", ""));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    run(&case, &["apply", "--auto-approve"]).code(0);

    // modify-listener by hand, to green.
    w.moto
        .boto(&["forward", &w.alb.listener, w.alb.tg("green")]);
    run(&case, &["plan", "--detailed-exitcode"])
        .code(2)
        .stdout_has("router.public was switched outside cutover: cutover left it on blue, it now sends traffic to green")
        .stdout_has("router.public will cut over: green -> blue");
    let status = run(&case, &["status"]);
    assert!(status.stdout.contains("green"), "{}", status.stdout);
    run(&case, &["apply", "--auto-approve"]).code(0);
    assert_eq!(w.live(), "blue");

    // A canary set up by hand: neither colour is live, and it says so.
    let weights = [
        format!("{}=90", w.alb.tg("blue")),
        format!("{}=10", w.alb.tg("green")),
    ];
    let mut args = vec!["weighted", w.alb.listener.as_str()];
    args.extend(weights.iter().map(String::as_str));
    w.moto.boto(&args);
    // The switch says where traffic goes now, not "no live colour yet".
    let plan = run(&case, &["plan", "--detailed-exitcode"]).code(2).stdout_has(
        "is a weighted forward between target groups (blue 90, green 10), not cutover's single forward",
    ).stdout_has(
        "  # router.public sends traffic to no colour of cutover's (weighted forward: blue 90, green 10): cutover will send it to blue\n",
    );
    assert!(
        !plan.stdout.contains("no live colour yet"),
        "{}",
        plan.stdout
    );
    run(&case, &["apply", "--auto-approve"]).code(0);
    assert_eq!(w.live(), "blue");
    let default = w
        .moto
        .rules(&w.alb.listener)
        .into_iter()
        .find(|r| r["IsDefault"] == true)
        .unwrap();
    assert_eq!(
        default["Actions"].as_array().map(Vec::len),
        Some(1),
        "{default}"
    );
    assert_eq!(
        default["Actions"][0]["TargetGroupArn"],
        w.alb.tg("blue"),
        "one single forward again"
    );

    // A target group that is no colour's.
    w.moto
        .boto(&["forward", &w.alb.listener, w.alb.tg("canary")]);
    run(&case, &["plan", "--detailed-exitcode"])
        .code(2)
        .stdout_has("which is no colour's target group (blue = targetgroup/web-blue/")
        .stdout_has(
            "  # router.public sends traffic to no colour of cutover's (targetgroup/web-canary/",
        );
    run(&case, &["apply", "--auto-approve"]).code(0);
    assert_eq!(w.live(), "blue");
}

#[test]
fn the_preview_rule_is_made_repointed_and_removed_with_preview() {
    let w = World::start(&["--live", "none"]);
    let case = Case::with_main(&w.config("blue", "preview = environment.green", ""));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    run(&case, &["apply", "--auto-approve"]).code(0);
    assert_eq!(w.live(), "blue", "a fixed response became the first switch");
    let preview = |w: &World| {
        let rules = w.moto.rules(&w.alb.listener);
        let ours: Vec<&Value> = rules.iter().filter(|r| r["IsDefault"] == false).collect();
        assert!(ours.len() <= 1, "{rules:#?}");
        ours.first().map(|r| {
            let header = &r["Conditions"][0]["HttpHeaderConfig"];
            assert_eq!(header["HttpHeaderName"], "X-Cutover-Preview", "{r}");
            assert_eq!(header["Values"], serde_json::json!(["public"]), "{r}");
            let colour = w
                .alb
                .target_groups
                .iter()
                .find(|(_, a)| r["Actions"][0]["TargetGroupArn"] == a.as_str());
            (
                r["RuleArn"].as_str().unwrap().to_string(),
                colour.map(|(c, _)| c.clone()),
            )
        })
    };
    let (rule, colour) = preview(&w).expect("a preview rule");
    assert_eq!(colour.as_deref(), Some("green"));

    // The cut-over to green: the preview shows blue, from the same rule.
    case.write(
        "main.hcl",
        &w.config("green", "preview = environment.blue", ""),
    );
    let apply = run(&case, &["apply", "--auto-approve", "--json"]).code(0);
    let l = lines(&apply.stdout);
    assert!(at(&l, "cutover_done", "cutover.public") < at(&l, "step_started", "preview.public"));
    assert_eq!(w.live(), "green");
    assert_eq!(preview(&w), Some((rule, Some("blue".to_string()))));
    run(&case, &["plan", "--detailed-exitcode"])
        .code(0)
        .stdout_has("No changes");

    // `preview` taken out of the router: the plan deletes the rule, in one
    // step that touches nothing else, and then nothing is left to do.
    case.write("main.hcl", &w.config("green", "", ""));
    run(&case, &["plan", "--detailed-exitcode"])
        .code(2)
        .stdout_has(
            "router.public's preview will be removed: it has no `preview` in the configuration, \
             and still shows blue (live traffic is not touched)",
        )
        .stdout_has("Plan: 0 to add, 0 to change, 0 to destroy, 0 cut-overs, 1 preview to remove.");
    let apply = run(&case, &["apply", "--auto-approve", "--json"]).code(0);
    let l = lines(&apply.stdout);
    let steps: Vec<(&str, &str)> = l
        .iter()
        .filter(|e| e["type"] == "step_started" || e["type"] == "step_finished")
        .map(|e| (e["type"].as_str().unwrap(), e["id"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [
            ("step_started", "preview.public"),
            ("step_finished", "preview.public")
        ]
    );
    let started = &l[at(&l, "step_started", "preview.public")];
    assert_eq!(
        started["description"],
        "removing the preview of router.public (it showed blue)"
    );
    assert_eq!(l[at(&l, "step_finished", "preview.public")]["ok"], true);
    assert_eq!(preview(&w), None, "the preview rule is deleted");
    assert_eq!(w.live(), "green", "live traffic untouched");
    assert_eq!(case.state()["routers"]["public"].get("preview"), None);
    run(&case, &["plan", "--detailed-exitcode"])
        .code(0)
        .stdout_has("No changes");
}

#[test]
fn a_target_group_that_does_not_exist_is_refused_though_moto_would_take_it() {
    let w = World::start(&["--live", "blue"]);
    let case = Case::with_main(&w.config("blue", "", ""));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    run(&case, &["apply", "--auto-approve"]).code(0);
    // A well-formed ARN of a target group that is not there.
    let gone = w.alb.tg("green").replace("web-green", "web-gone");
    let config = w.config("green", "", "").replace(w.alb.tg("green"), &gone);
    case.write("main.hcl", &config);
    let apply = run(&case, &["apply", "--auto-approve", "--json"]).code(1);
    let l = lines(&apply.stdout);
    let failed = &l[at(&l, "step_finished", "cutover.public")];
    assert_eq!(failed["ok"], false);
    assert_eq!(failed["error_kind"], "refused", "{failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains(
            "of colour `green` does not exist (DescribeTargetGroups: TargetGroupNotFound)"
        ),
        "{error}"
    );
    assert!(at(&l, "health_passed", "health.green") < at(&l, "step_finished", "cutover.public"));
    assert_eq!(
        w.live(),
        "blue",
        "moto would have taken the forward: cutover must not send it"
    );
}

/// moto killed by a test hook, after green's gate and before the switch:
/// the switch's first check cannot reach it, the error says so and that
/// nothing was changed, nothing is switched back, and the state is as it
/// was.
#[test]
fn moto_killed_before_the_switch_fails_it_saying_nothing_was_changed() {
    let w = World::start(&["--live", "blue"]);
    let case = Case::with_main(&w.config("blue", "", "max_attempts = 2"));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    run(&case, &["apply", "--auto-approve"]).code(0);
    let state = case.state_bytes().unwrap();
    let pid = w.moto.pid().expect("moto runs");
    let hook = format!(
        "test \"kill-moto\" {{\n    command = [\"sh\", \"-c\", \"kill -9 {pid}; until grep -q '^State:.*Z' /proc/{pid}/status; do sleep 0.02; done\"]\n    timeout = \"10s\"\n  }}"
    );
    case.write("main.hcl", &w.config("green", &hook, "max_attempts = 2"));
    let apply = run(&case, &["apply", "--auto-approve", "--json"]).code(1);
    let l = lines(&apply.stdout);
    assert!(
        at(&l, "step_finished", "test.public.kill-moto") < at(&l, "step_started", "cutover.public")
    );
    let failed = &l[at(&l, "step_finished", "cutover.public")];
    assert_eq!(failed["error_kind"], "unreachable", "{failed}");
    let said = format!(
        "router.public: the Elastic Load Balancing API at {} (DescribeTargetGroups for router `public`, 2 attempt(s); nothing was changed) is unreachable: ",
        w.moto.url()
    );
    assert!(
        failed["error"].as_str().unwrap().starts_with(&said),
        "{failed}"
    );
    assert!(
        !l.iter().any(|e| e["type"] == "cutover_done"
            || e["type"] == "switched_back"
            || e["type"] == "switch_back_refused"),
        "{l:#?}"
    );
    assert_eq!(l.last().unwrap()["failed"]["id"], "cutover.public");
    assert_eq!(case.state_bytes().unwrap(), state, "the state changed");
}

#[test]
fn a_target_group_without_registered_targets_is_refused() {
    let w = World::start(&["--live", "blue", "--empty", "green"]);
    let case = Case::with_main(&w.config("green", "", ""));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    let apply = run(&case, &["apply", "--auto-approve", "--json"]).code(1);
    let l = lines(&apply.stdout);
    let failed = &l[at(&l, "step_finished", "cutover.public")];
    assert_eq!(failed["error_kind"], "refused", "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("of colour `green` has no registered targets"),
        "{failed}"
    );
    assert_eq!(w.live(), "blue");
    let summary = l.last().unwrap();
    assert_eq!(
        (summary["type"].as_str(), summary["ok"].as_bool()),
        (Some("summary"), Some(false))
    );
}

#[test]
fn an_alb_and_an_haproxy_router_move_together_or_not_at_all() {
    use crate::haproxy_support::{HaproxyGuard, HaproxySetup};
    let w = World::start(&["--live", "blue"]);
    let mut setup = HaproxySetup::blue_green(
        &format!("127.0.0.1:{}", w.blue),
        &format!("127.0.0.1:{}", w.green),
        "blue",
    );
    setup.map = "public blue\n".to_string();
    let h = HaproxyGuard::start(&setup);
    let haproxy = |live: &str, settings: &str| {
        format!(
            "\nrouter \"public\" {{\n  live = environment.{live}\n  haproxy {{\n    socket = \"{}\"\n    map    = \"{}\"\n    {settings}\n  }}\n}}\n",
            h.socket().display(),
            h.map_path().display()
        )
    };
    let both = |live: &str, settings: &str| {
        format!(
            "{}{}{}",
            w.envs(),
            w.router("edge", live, "", ""),
            haproxy(live, settings)
        )
    };
    let case = Case::with_main(&both("blue", ""));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    run(&case, &["apply", "--auto-approve"]).code(0);

    // HAProxy has no backend `nope`: its cut-over fails after the ALB's
    // (routers switch in name order with --parallelism 1), so the ALB is
    // switched back.
    case.write(
        "main.hcl",
        &both("green", "backends = { green = \"nope\" }"),
    );
    let apply = case
        .run_env(
            &["apply", "--auto-approve", "--json", "--parallelism", "1"],
            &AWS_ENV,
        )
        .code(1);
    let l = lines(&apply.stdout);
    let edge = at(&l, "cutover_done", "cutover.edge");
    let public = at(&l, "step_finished", "cutover.public");
    assert_eq!(l[public]["ok"], false, "{}", l[public]);
    let back = at(&l, "switched_back", "edge");
    assert!(edge < public && public < back, "{l:#?}");
    assert_eq!(l[back]["to"], "blue");
    assert_eq!(w.live(), "blue", "the ALB is back on blue");
    let map = std::fs::read_to_string(h.map_path()).unwrap();
    assert!(map.contains("public blue"), "{map}");
    assert_eq!(case.state()["routers"]["edge"]["live"], "blue");
}

#[test]
fn a_drain_lasts_the_target_groups_deregistration_delay() {
    let w = World::start(&["--live", "blue"]);
    // 2 seconds instead of AWS's (and moto's) default 300.
    w.moto.boto(&["delay", w.alb.tg("blue"), "2"]);
    let case = Case::with_main(&w.config("blue", "", ""));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    run(&case, &["apply", "--auto-approve"]).code(0);

    // Green goes live and blue, drained, changes after: with no `drain`,
    // the drain is the delay, and the plan says why.
    let next = format!(
        "{}{}",
        w.envs_at("2.0.0"),
        w.router("public", "green", "", "")
    );
    case.write("main.hcl", &next);
    let why = format!(
        "blue keeps serving its open connections for 2s after router.public's cut-over (at least the deregistration delay of target group {}, which is longer than its drain)",
        w.alb.tg("blue").split_once(":targetgroup/").map(|(_, id)| format!("targetgroup/{id}")).unwrap()
    );
    run(&case, &["plan"]).code(0).stdout_has(&why);
    let apply = run(&case, &["apply", "--auto-approve", "--json"]).code(0);
    let l = lines(&apply.stdout);
    let drain = at(&l, "step_finished", "drain.public");
    assert!(at(&l, "cutover_done", "cutover.public") < at(&l, "step_started", "drain.public"));
    assert!(drain < at(&l, "step_started", "environment.blue"), "{l:#?}");
    assert!(
        l[drain]["elapsed_ms"].as_u64().unwrap() >= 2000,
        "{}",
        l[drain]
    );
    assert_eq!(w.live(), "green");
}

#[test]
fn a_missing_permission_is_named_and_nothing_moves() {
    // moto checks IAM after the setup's 9 calls and the user's 3.
    let mut moto = Moto::start_checking_iam_after(Some(12));
    let alb = moto.alb(&["--live", "blue"]);
    let keys = moto.boto(&["iam-user", "elasticloadbalancing:Describe*"]);
    let (key, secret) = keys.trim().split_once(' ').expect("KEY SECRET");
    moto.keys = Some((key.to_string(), secret.to_string()));
    let w = World {
        moto,
        alb,
        blue: free_port(),
        green: free_port(),
    };
    let case = Case::with_main(&w.config("green", "", ""));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    let mut env: Vec<(&str, &str)> = AWS_ENV.to_vec();
    env.retain(|(k, _)| !["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"].contains(k));
    env.extend([
        ("AWS_ACCESS_KEY_ID", key),
        ("AWS_SECRET_ACCESS_KEY", secret),
    ]);
    // Reading is allowed: the plan works.
    case.run_env(&["plan"], &env)
        .code(0)
        .stdout_has("router.public will cut over: blue -> green");
    let apply = case
        .run_env(&["apply", "--auto-approve", "--json"], &env)
        .code(1);
    let l = lines(&apply.stdout);
    let failed = &l[at(&l, "step_finished", "cutover.public")];
    assert_eq!(failed["error_kind"], "refused", "{failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("AWS refused ModifyListener for router `public`: AccessDenied"),
        "{error}"
    );
    assert!(
        error.contains("lack the IAM permission `elasticloadbalancing:ModifyListener`"),
        "{error}"
    );
    assert!(
        error.contains("read back: the default action of listener"),
        "{error}"
    );
    assert!(error.contains("forwards to blue"), "{error}");
    assert_eq!(w.live(), "blue");
}

#[test]
fn throttling_is_retried_with_backoff_and_bounded_and_an_endpoint_that_is_not_there_is_named() {
    use crate::moto_support::Throttling;
    let w = World::start(&["--live", "blue"]);
    let case = Case::new();
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    let through = |url: &str, attempts: u32| {
        w.config("blue", "", &format!("max_attempts = {attempts}"))
            .replace(&w.moto.url(), url)
    };
    // Two throttled answers, then moto's: the plan reads the listener.
    let proxy = Throttling::start(w.moto.port, 2);
    case.write("main.hcl", &through(&proxy.url(), 4));
    run(&case, &["plan"])
        .code(0)
        .stdout_has("environment \"green\"");
    assert_eq!(proxy.throttled(), 2, "both throttled answers were retried");

    // Throttled every time: at most max_attempts, then said so.
    let always = Throttling::start(w.moto.port, u32::MAX);
    case.write("main.hcl", &through(&always.url(), 3));
    let started = std::time::Instant::now();
    let plan = run(&case, &["plan"]).code(1);
    assert!(
        plan.stderr.contains("AWS still throttled DescribeRules for router `public` after 3 attempt(s) with backoff: Throttling (Rate exceeded)"),
        "{}",
        plan.stderr
    );
    assert_eq!(always.throttled(), 3, "{}", plan.stderr);
    assert!(started.elapsed() < std::time::Duration::from_secs(30));

    // Something answers there, but not as AWS (moto's page for a path it
    // does not serve): said so, with the status, not as AWS refusing.
    case.write(
        "main.hcl",
        &through(&format!("{}/nothere", w.moto.url()), 2),
    );
    let plan = run(&case, &["plan"]).code(1);
    let said = format!("cannot read router.public: the Elastic Load Balancing API at {}/nothere answered DescribeRules for router `public` with HTTP 404, which is not an AWS error reply: check `endpoint_url`\n", w.moto.url());
    assert!(plan.stderr.contains(&said), "{}", plan.stderr);

    // Nothing listens there: unreachable, after the attempts, in bound.
    let closed = format!("http://127.0.0.1:{}", free_port());
    case.write("main.hcl", &through(&closed, 2));
    let plan = run(&case, &["plan"]).code(1);
    assert!(
        plan.stderr.contains(&format!("the Elastic Load Balancing API at {closed} (DescribeRules for router `public`, 2 attempt(s)) is unreachable")),
        "{}",
        plan.stderr
    );
}

#[test]
fn a_router_on_one_listener_rule_switches_that_rule_and_previews_only_what_it_matches() {
    let w = World::start(&["--live", "blue"]);
    let rule = w
        .moto
        .boto(&["rule", &w.alb.listener, "10", "api.test", w.alb.tg("blue")]);
    let rule = rule.trim();
    let settings = format!("rule_arn = \"{rule}\"");
    let case = Case::with_main(&w.config("blue", "preview = environment.green", &settings));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    run(&case, &["apply", "--auto-approve"]).code(0);

    case.write(
        "main.hcl",
        &w.config("green", "preview = environment.blue", &settings),
    );
    let apply = run(&case, &["apply", "--auto-approve", "--json"]).code(0);
    let l = lines(&apply.stdout);
    assert!(at(&l, "health_passed", "health.green") < at(&l, "step_started", "cutover.public"));
    let rules = w.moto.rules(&w.alb.listener);
    let by_priority = |p: &str| {
        rules
            .iter()
            .find(|r| r["Priority"] == p)
            .unwrap_or_else(|| panic!("{rules:#?}"))
    };
    assert_eq!(
        by_priority("10")["Actions"][0]["TargetGroupArn"],
        w.alb.tg("green"),
        "the rule switched"
    );
    assert_eq!(
        w.live(),
        "blue",
        "the listener's default action is not this router's"
    );
    // The preview rule: before the switched rule, with its host and the header.
    let preview = by_priority("1");
    assert_eq!(
        preview["Actions"][0]["TargetGroupArn"],
        w.alb.tg("blue"),
        "{preview}"
    );
    let fields: Vec<&str> = preview["Conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["host-header", "http-header"], "{preview}");
    assert_eq!(
        preview["Conditions"][0]["HostHeaderConfig"]["Values"],
        serde_json::json!(["api.test"])
    );
}
