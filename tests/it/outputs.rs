//! The outputs people read, snapshotted whole (insta, after uv's
//! `uv_snapshot!`): apply, a failed apply, rollback, refusals. Temporary
//! paths, ports, pids, lineages and durations are filtered, so a snapshot
//! changes only when what people read changes.

use crate::signals::{colour, haproxy, router};
use crate::support::{Case, ProcessReaper, Run};

/// Exit status, stdout and stderr of `run`, filtered and snapshotted.
macro_rules! output_snapshot {
    ($name:expr, $case:expr, $run:expr) => {{
        let run: &Run = &$run;
        let text = format!(
            "exit: {}\n--- stdout\n{}\n--- stderr\n{}",
            run.code, run.stdout, run.stderr
        );
        let dir = $case.path().display().to_string();
        let mut settings = insta::Settings::clone_current();
        // The most particular first: the checkout may itself be under /tmp.
        let demo = crate::support::demo_app_bin().display().to_string();
        settings.add_filter(&regex_escape(&demo), "[DEMO-APP]");
        settings.add_filter(&regex_escape(&dir), "[DIR]");
        settings.add_filter(r"/tmp/[A-Za-z0-9_.-]+", "[TMP]");
        settings.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]");
        settings.add_filter(r"\b\d+\.\d+s\b", "[T]");
        settings.add_filter(
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "[LINEAGE]",
        );
        settings.add_filter(r"\b\d+:\d+\b", "[PID:START]");
        settings.add_filter(r"--port \d+", "--port [PORT]");
        // How many checks a colour's log shows depends on timing.
        settings.add_filter(r#"(?m)^127\.0\.0\.1:\[PORT\] "GET .*\n"#, "");
        settings.add_filter(r#""\d{4,5}""#, r#""[PORT]""#);

        // A gate that passes at once does not wait; one that waits says so
        // every few seconds: neither is what the snapshot is about.
        settings.add_filter(r"(?m)^health\.\w+: still waiting for .*\n", "");
        settings.bind(|| insta::assert_snapshot!($name, text));
    }};
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == '_' || c == '-' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

#[test]
fn apply_rollback_and_a_failed_apply_read_as_people_see_them() {
    let (h, blue, green) = haproxy();
    let config = |blue_release: &str, blue_flags: &str, live: &str| {
        format!(
            "{}{}{}",
            colour("blue", blue, blue_release, blue_flags, "5s"),
            colour("green", green, "1", "", "5s"),
            router(&h, live)
        )
    };
    let case = Case::with_main(&config("1", "", "blue"));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    case.run(&["apply", "--auto-approve"]).code(0);

    case.write("main.hcl", &config("1", "", "green"));
    let apply = case.run(&["apply", "--auto-approve"]).code(0);
    output_snapshot!("apply_cutover", case, apply);

    let rollback = case.run(&["rollback", "--auto-approve"]).code(0);
    output_snapshot!("rollback", case, rollback);

    // Back on green, then blue gets a release that exits at once while
    // green goes live: the cut-over stands, the way back is broken.
    case.write("main.hcl", &config("1", "", "blue"));
    case.run(&["apply", "--auto-approve"]).code(0);
    // demo-app refuses a flag it does not know and exits at once.
    let exits = r#", "--no-such-flag""#;
    case.write("main.hcl", &config("2", exits, "green"));
    let failed = case
        .run_unchecked(&["apply", "--auto-approve"], &[])
        .code(1);
    output_snapshot!("apply_drained_change_fails", case, failed);
}

#[test]
fn refusals_read_as_people_see_them() {
    let (h, blue, green) = haproxy();
    let config = |live: &str| {
        format!(
            "{}{}{}",
            colour("blue", blue, "1", "", "5s"),
            colour("green", green, "1", "", "5s"),
            router(&h, live)
        )
    };
    let case = Case::with_main(&config("blue"));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    case.run(&["apply", "--auto-approve"]).code(0);
    case.write("main.hcl", &config("green"));
    let plan_file = case.path().join("p.json");
    let plan_file = plan_file.to_str().unwrap();
    case.run(&["plan", "--out", plan_file]).code(0);
    let mut saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(plan_file).unwrap()).unwrap();
    for step in saved["document"]["steps"].as_array_mut().unwrap() {
        if step["id"] == "cutover.public" {
            step["depends_on"] = serde_json::json!([]);
        }
    }
    std::fs::write(plan_file, serde_json::to_vec_pretty(&saved).unwrap()).unwrap();
    let refused = case.run(&["apply", plan_file]).code(1);
    output_snapshot!("saved_plan_without_its_gate", case, refused);
}
