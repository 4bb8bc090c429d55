//! A fleet of two real nginx masters (`instances = [...]` in `nginx {}`),
//! each with its own include, preview include, marker and pid file: both
//! cut over together and their previews follow; an instance switched by
//! hand (its include rewritten and reloaded behind cutover's back) is drift
//! naming it, and `cutover status` shows what each instance serves; a
//! preview taken out of the configuration is removed from every instance.
//! Each checked through every master's own traffic, include and marker.

use serde_json::{json, Value};

use crate::fleet::{assert_both_instances, at, lines};
use crate::nginx_support::{
    closed_address, free_port, include_text, nonce, NginxGuard, NginxSetup,
};
use crate::support::{demo_environment, Case, ProcessReaper};

/// Two nginx masters routing `public` and its preview to no colour yet.
fn nginx_pair() -> (NginxGuard, NginxGuard) {
    let setup = NginxSetup::new("none", &closed_address()).with_preview("none", &closed_address());
    (NginxGuard::start(&setup), NginxGuard::start(&setup))
}

/// Blue and green (releases `blue-1`, `green-1`) behind the router
/// `public` on masters `a` and `b`, live on `live`, its preview on
/// `preview` when there is one.
fn config(
    ports: (u16, u16),
    pair: (&NginxGuard, &NginxGuard),
    live: &str,
    preview: Option<&str>,
) -> String {
    let instance = |name: &str, h: &NginxGuard| {
        format!(
            "{{ name = \"{name}\", pid_file = \"{}\", include = \"{}\", marker = \"{}\", preview_include = \"{}\" }}",
            h.pid_file().display(),
            h.include_path().display(),
            h.marker(),
            h.preview_include_path().display(),
        )
    };
    let preview = preview.map_or(String::new(), |p| format!("  preview = environment.{p}\n"));
    format!(
        "{}{}\nrouter \"public\" {{\n  live = environment.{live}\n{preview}  nginx {{\n    timeout   = \"5s\"\n    instances = [\n      {},\n      {},\n    ]\n  }}\n}}\n",
        demo_environment("blue", ports.0, "blue-1"),
        demo_environment("green", ports.1, "green-1"),
        instance("a", pair.0),
        instance("b", pair.1),
    )
}

/// The colour whose release answers at `addr`, or the status when none does.
fn colour_at(addr: std::net::SocketAddr) -> String {
    let (status, body) = crate::nginx_support::http_get(addr, "/");
    if status != 200 {
        return format!("HTTP {status}");
    }
    let release = body.trim().rsplit(' ').next().unwrap_or_default();
    release.strip_suffix("-1").unwrap_or(release).to_string()
}

/// The colour an include file's marker says.
fn said(include: &std::path::Path) -> String {
    let text = std::fs::read_to_string(include).expect("the include");
    let (_, after) = text.split_once("return 200 \"").expect("a marker");
    after.split(' ').next().unwrap_or_default().to_string()
}

/// What a master serves, live and on its preview: through its listeners,
/// and as its include files say.
fn on(h: &NginxGuard) -> [String; 4] {
    [
        colour_at(h.frontend()),
        said(&h.include_path()),
        colour_at(h.preview_frontend().expect("a preview listener")),
        said(&h.preview_include_path()),
    ]
}

fn serving(live: &str, preview: &str, preview_status: &str) -> [String; 4] {
    [live, live, preview_status, preview].map(String::from)
}

#[test]
fn a_pair_of_nginx_masters_cuts_over_together_and_each_is_shown_and_its_preview_removed() {
    let ports = (free_port(), free_port());
    let (a, b) = nginx_pair();
    let case = Case::with_main(&config(ports, (&a, &b), "blue", Some("green")));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    case.run(&["plan"])
        .code(0)
        .stdout_has("on its 2 instances (a, b), all or none");
    let first = case.run(&["apply", "--auto-approve", "--json"]).code(0);
    let first = lines(&first.stdout);
    assert_both_instances(&first[at(&first, "cutover_done", None)]);
    let blue_green = serving("blue", "green", "green");
    assert_eq!((on(&a), on(&b)), (blue_green.clone(), blue_green));

    // The cut-over to green: both masters after green's gate, then the
    // preview moves to blue on both, after the switch.
    case.write("main.hcl", &config(ports, (&a, &b), "green", Some("blue")));
    let cut = case.run(&["apply", "--auto-approve", "--json"]).code(0);
    let cut = lines(&cut.stdout);
    let done = at(&cut, "cutover_done", None);
    assert!(
        at(&cut, "step_finished", Some("health.green"))
            < at(&cut, "step_started", Some("cutover.public"))
    );
    assert!(done < at(&cut, "step_started", Some("preview.public")));
    assert_both_instances(&cut[done]);
    let green_blue = serving("green", "blue", "blue");
    assert_eq!((on(&a), on(&b)), (green_blue.clone(), green_blue.clone()));
    case.run(&["plan", "--detailed-exitcode"]).code(0);

    // `b` pointed back at blue by hand and reloaded: drift naming it, and
    // `status` shows each instance as it serves.
    let hand_written = include_text(
        "cutover_public",
        &[format!("127.0.0.1:{}", ports.0)],
        b.marker_port,
        "cutover-public",
        "/cutover/public",
        "blue",
        &nonce(),
    );
    std::fs::write(b.include_path(), hand_written).expect("rewrite b's include by hand");
    let old_workers = b.workers();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(b.pid() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    wait_for(|| {
        colour_at(b.frontend()) == "blue" && !b.workers().iter().any(|w| old_workers.contains(w))
    });
    case.run(&["plan", "--detailed-exitcode"])
        .code(2)
        .stdout_has(
            "router.public: instance `b` sends traffic to blue while instance `a` sends it to green",
        )
        .stdout_has("router.public will be switched to green again");
    let status = case.run(&["status", "--json"]).code(0);
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    let router = &status["routers"][0];
    assert_eq!(
        router["instances"],
        json!([
            {"name": "a", "live": "green", "raw": "green", "preview": "blue"},
            {"name": "b", "live": "blue", "raw": "blue", "preview": "blue"},
        ]),
        "{status:#}"
    );
    let live_on: Vec<&Value> = status["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["live_on"])
        .collect();
    assert_eq!(
        live_on,
        [&json!(["public"]), &json!(["public"])],
        "{status:#}"
    );
    let table = case.run(&["status"]).code(0).stdout;
    let row = |start: &str| -> Vec<String> {
        let line = table
            .lines()
            .find(|l| l.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("no {start} row:\n{table}"));
        line.split_whitespace().map(String::from).collect()
    };
    assert_eq!(
        row("public "),
        ["public", "nginx", "green", "green", "blue", "blue"]
    );
    assert_eq!(row("a "), ["a", "instance", "green", "blue"]);
    assert_eq!(row("b "), ["b", "instance", "blue", "blue"]);
    case.run(&["apply", "--auto-approve"]).code(0);
    assert_eq!((on(&a), on(&b)), (green_blue.clone(), green_blue));

    // `preview` taken out of the router: the plan removes it, from both
    // masters (their preview listeners answer 502), and nothing is left.
    case.write("main.hcl", &config(ports, (&a, &b), "green", None));
    case.run(&["plan", "--detailed-exitcode"])
        .code(2)
        .stdout_has("router.public's preview will be removed")
        .stdout_has("      - preview = \"blue\"")
        .stdout_has("1 preview to remove");
    let removed = case.run(&["apply", "--auto-approve", "--json"]).code(0);
    let removed = lines(&removed.stdout);
    let events: Vec<(&str, &str)> = removed[1..]
        .iter()
        .filter(|l| l["type"] == "step_started" || l["type"] == "step_finished")
        .map(|l| (l["type"].as_str().unwrap(), l["id"].as_str().unwrap()))
        .collect();
    assert_eq!(
        events,
        [
            ("step_started", "preview.public"),
            ("step_finished", "preview.public")
        ]
    );
    let started = &removed[at(&removed, "step_started", Some("preview.public"))];
    assert_eq!(
        started["description"],
        "removing the preview of router.public (it showed blue)"
    );
    let summary = removed.last().unwrap();
    assert_eq!(
        (&summary["ok"], &summary["done"]),
        (&json!(true), &json!(["preview.public"]))
    );
    let removed = serving("green", "none", "HTTP 502");
    assert_eq!((on(&a), on(&b)), (removed.clone(), removed));
    assert_eq!(case.state()["routers"]["public"].get("preview"), None);
    case.run(&["plan", "--detailed-exitcode"])
        .code(0)
        .stdout_has("No changes");
}

/// Wait, at most 10 s, until `done` (a reload made by hand has shown).
fn wait_for(done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "not done within 10s");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
