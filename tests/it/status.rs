//! `cutover status` against a real HAProxy and real processes (issue 16,
//! point 2): the live colour read from the router now (not the state), the
//! way back, each colour's release and one health probe, drift, and a
//! router that cannot be read shown with its cause while the rest is shown.

use crate::crash::Rig;

#[test]
fn status_reads_the_router_and_the_colours_now() {
    let rig = Rig::start();
    rig.write(&rig.simple("1", "1", "blue"));
    rig.run(&["apply", "--auto-approve"]).code(0);
    rig.write(&rig.simple("1", "2", "green"));
    rig.run(&["apply", "--auto-approve"]).code(0);

    let table = rig.run(&["status"]).code(0).stdout;
    let line = |start: &str| -> Vec<String> {
        table
            .lines()
            .find(|l| l.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("no {start} line:\n{table}"))
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    assert_eq!(
        line("public"),
        ["public", "haproxy", "green", "green", "blue", "-"]
    );
    assert_eq!(line("blue"), ["blue", "1", "1", "healthy", "-"]);
    assert_eq!(line("green"), ["green", "2", "2", "healthy", "public"]);

    // A switch by hand is read from the router, and is drift.
    rig.h.runtime(&format!(
        "set map {} public blue",
        rig.h.map_path().display()
    ));
    let json = rig.run(&["status", "--json"]).code(0).stdout;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["routers"][0]["live"], "blue", "{v}");
    assert_eq!(v["routers"][0]["configured"], "green", "{v}");
    assert_eq!(v["environments"][0]["live_on"][0], "public", "{v}");
    assert_eq!(v["drift"][0]["address"], "router.public", "{v}");
    // Nothing was changed by looking.
    assert!(rig
        .h
        .runtime(&format!("show map {}", rig.h.map_path().display()))
        .contains("public blue"));

    // The green process dies: down, its release unknown.
    let pid = rig.state_pid("green").unwrap();
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_until_gone(pid);
    let v: serde_json::Value =
        serde_json::from_str(&rig.run(&["status", "--json"]).code(0).stdout).unwrap();
    let green = &v["environments"][1];
    assert_eq!(
        (&green["name"], &green["healthy"], &green["exists"]),
        (&"green".into(), &false.into(), &false.into()),
        "{v}"
    );

    // HAProxy gone: the router is shown unread with its cause, exit 1, and
    // the colours are still shown.
    let haproxy = rig.h.pid() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(haproxy),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_until_gone(haproxy);
    let run = rig.run(&["status"]).code(1);

    assert!(run.stdout.contains("unread"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("router.public: cannot read router.public: HAProxy runtime API at "),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("blue"), "{}", run.stdout);
}

/// Wait (bounded) until process `pid` is gone or a zombie.
fn wait_until_gone(pid: i32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
        if matches!(state, None | Some(Some('Z'))) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "process {pid} still runs"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
