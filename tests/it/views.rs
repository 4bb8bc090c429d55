//! The views a pull-request flow reads, end to end against a real HAProxy:
//! `plan --markdown` and `show --markdown PLANFILE` render the same document,
//! `apply --json` / `rollback --json` print only JSON lines, the outcome label
//! follows the plan; and the CI examples parse and run only real commands.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::haproxy_support::{free_port, HaproxyGuard, HaproxySetup};
use crate::support::{demo_environment, Case, ProcessReaper, Run};

/// Blue and green demo apps behind the router `public`.
fn config(h: &HaproxyGuard, ports: (u16, u16), green_release: &str, live: &str) -> String {
    let env = demo_environment;
    format!(
        r#"{blue}{green}
router "public" {{
  live = environment.{live}
  haproxy {{
    socket = "{socket}"
    map    = "{map}"
  }}
}}
"#,
        blue = env("blue", ports.0, "1.0.0"),
        green = env("green", ports.1, green_release),
        socket = h.socket().display(),
        map = h.map_path().display(),
    )
}

/// Every stdout line as JSON, failing on anything else.
#[track_caller]
fn json_lines(run: &Run) -> Vec<Value> {
    assert!(!run.stdout.is_empty(), "no output; stderr:\n{}", run.stderr);
    run.stdout
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap_or_else(|e| {
                panic!(
                    "not a JSON line ({e}): {line:?}\n--- stdout\n{}",
                    run.stdout
                )
            })
        })
        .inspect(|v| assert!(v["type"].is_string(), "no type: {v}"))
        .collect()
}

fn of_type<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["type"] == kind).collect()
}

fn outcome(case: &Case) -> String {
    let plan = case.run(&["plan", "--json"]).code(0);
    let doc: Value = serde_json::from_str(&plan.stdout).expect("plan --json is JSON");
    doc["summary"]["outcome"].as_str().unwrap().to_owned()
}

#[test]
fn markdown_and_json_views_of_a_cutover() {
    let ports = (free_port(), free_port());
    let setup = HaproxySetup::blue_green(
        &format!("127.0.0.1:{}", ports.0),
        &format!("127.0.0.1:{}", ports.1),
        "blue",
    );
    let h = HaproxyGuard::start(&setup);
    let case = Case::with_main(&config(&h, ports, "1.0.0", "blue"));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    case.run(&["apply", "--auto-approve"]).code(0);
    assert_eq!(outcome(&case), "no_changes");

    // The pull request: a new release on green, and the cut-over to it.
    case.write("main.hcl", &config(&h, ports, "2.0.0", "green"));
    assert_eq!(outcome(&case), "cutover");
    let plan_file = case.path().join("plan.cutover");
    let plan_file = plan_file.to_str().unwrap();
    let md = case
        .run(&[
            "plan",
            "--out",
            plan_file,
            "--markdown",
            "--detailed-exitcode",
        ])
        .code(2)
        .stdout;
    let shown = case.run(&["show", "--markdown", plan_file]).code(0).stdout;
    assert_eq!(md, shown, "plan --markdown and show --markdown disagree");
    assert!(md.starts_with("## cutover plan: 1 cut-over\n"), "{md}");
    let row = md
        .find("| `public` | `blue` → `green` | `1.0.0` → `2.0.0` |")
        .unwrap_or_else(|| panic!("no cut-over row:\n{md}"));
    assert!(row < md.find("<details>").expect("folded details"), "{md}");
    assert!(md.contains("Outcome: `cutover`"), "{md}");
    assert!(md.contains("`cutover rollback router.public`"), "{md}");
    assert!(!md.contains('\x1b'), "{md:?}");
    case.run(&["plan", "--json", "--markdown"])
        .code(1)
        .stderr_has("cannot be used with");

    // apply --json needs no prompt, so it refuses to run without a way to approve.
    let refused = case.run(&["apply", "--json"]).code(1);
    assert_eq!(refused.stdout, "");
    assert!(
        refused.stderr.contains("--auto-approve"),
        "{}",
        refused.stderr
    );

    // The reviewed plan, applied with JSON progress: nothing but JSON lines.
    let run = case.run(&["apply", "--json", plan_file]).code(0);
    let lines = json_lines(&run);
    assert_eq!(lines[0]["type"], "plan", "{}", run.stdout);
    assert_eq!(lines[0]["plan"]["summary"]["outcome"], "cutover");
    let steps: BTreeSet<&str> = lines[0]["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    let ids = |kind: &str| -> BTreeSet<&str> {
        of_type(&lines, kind)
            .iter()
            .map(|l| l["id"].as_str().unwrap())
            .collect()
    };
    assert_eq!(ids("step_started"), steps, "{}", run.stdout);
    assert_eq!(ids("step_finished"), steps, "{}", run.stdout);
    assert!(of_type(&lines, "step_finished")
        .iter()
        .all(|l| l["ok"] == true && l["elapsed_ms"].is_u64()));
    assert_eq!(of_type(&lines, "health_passed")[0]["environment"], "green");
    let cut = of_type(&lines, "cutover_done");
    assert_eq!(cut.len(), 1, "{}", run.stdout);
    assert_eq!(
        (&cut[0]["router"], &cut[0]["from"], &cut[0]["to"]),
        (&"public".into(), &"blue".into(), &"green".into())
    );
    assert!(!of_type(&lines, "state_saved").is_empty());
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary", "{}", run.stdout);
    assert_eq!(summary["ok"], true);
    assert_eq!(summary["done"].as_array().unwrap().len(), steps.len());
    assert!(summary["serial"].as_u64().unwrap() > 0);
    assert_eq!(h.get("/").1.trim().rsplit(' ').next(), Some("2.0.0"));

    // After the apply there is nothing left: the label says so.
    assert_eq!(outcome(&case), "no_changes");
    let noop = case.run(&["apply", "--json", "--auto-approve"]).code(0);
    let lines = json_lines(&noop);
    assert_eq!(
        lines
            .iter()
            .map(|l| l["type"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["plan", "summary"]
    );

    // The state in markdown, and a rollback followed as JSON lines.
    let state = case.run(&["show", "--markdown"]).code(0).stdout;
    assert!(state.starts_with("## cutover state\n"), "{state}");
    assert!(state.contains("| `public` | `green` | `blue` |"), "{state}");
    let back = case.run(&["rollback", "--json", "--auto-approve"]).code(0);
    let lines = json_lines(&back);
    assert_eq!(lines[0]["type"], "plan");
    assert_eq!(of_type(&lines, "cutover_done")[0]["to"], "blue");
    assert_eq!(lines.last().unwrap()["type"], "summary");
}

/// The `cutover ...` commands in a shell script: each as its words, with
/// `\` continuations joined, comments dropped, and the command ending at a
/// pipe, redirection, `;`, `&&`, `||` or `)`.
fn cutover_commands(script: &str) -> Vec<Vec<String>> {
    let joined = script.replace("\\\n", " ");
    let mut out = Vec::new();
    for line in joined.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let words = shell_words(&line.replace("$(", " $( "));
        let mut command_position = true;
        let mut i = 0;
        while i < words.len() {
            let w = words[i].as_str();
            if command_position && w == "cutover" {
                let mut cmd = vec!["cutover".to_owned()];
                i += 1;
                while i < words.len() && !ends_command(&words[i]) {
                    cmd.push(words[i].clone());
                    i += 1;
                }
                out.push(cmd);
                command_position = false;
                continue;
            }
            command_position = ends_command(w)
                || matches!(w, "$(" | "then" | "do" | "if" | "!" | "else")
                || (command_position && w.contains('=') && !w.starts_with('-'));
            i += 1;
        }
    }
    out
}

fn ends_command(word: &str) -> bool {
    matches!(word, "|" | "||" | "&&" | ";" | ")" | "2>&1")
        || word.starts_with('>')
        || word.starts_with("2>")
        || word.ends_with(';')
        || word.ends_with(')')
}

/// Words split on whitespace, keeping quoted strings whole (quotes removed).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut in_word = false;
    for c in line.chars() {
        match (quote, c) {
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (_, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// Every string under a `run:` (GitHub) or `script:`/`after_script:`/
/// `before_script:` (GitLab) key.
fn scripts(yaml: &yaml_rust2::Yaml, out: &mut Vec<String>) {
    use yaml_rust2::Yaml;
    match yaml {
        Yaml::Hash(map) => {
            for (key, value) in map {
                let is_script = matches!(
                    key.as_str(),
                    Some("run" | "script" | "after_script" | "before_script")
                );
                match (is_script, value) {
                    (true, Yaml::String(s)) => out.push(s.clone()),
                    (true, Yaml::Array(items)) => {
                        out.extend(items.iter().filter_map(|i| i.as_str().map(str::to_owned)))
                    }
                    _ => scripts(value, out),
                }
            }
        }
        Yaml::Array(items) => items.iter().for_each(|i| scripts(i, out)),
        _ => {}
    }
}

#[test]
fn ci_examples_parse_and_run_only_real_commands() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci");
    for (file, must_run) in [
        ("github-actions.yml", ["plan", "show", "apply", "validate"]),
        ("gitlab-ci.yml", ["plan", "show", "apply", "validate"]),
    ] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let docs = yaml_rust2::YamlLoader::load_from_str(&text)
            .unwrap_or_else(|e| panic!("{file} is not YAML: {e}"));
        assert_eq!(docs.len(), 1, "{file}");
        let mut found = Vec::new();
        scripts(&docs[0], &mut found);
        let commands: Vec<Vec<String>> = found.iter().flat_map(|s| cutover_commands(s)).collect();
        for cmd in &commands {
            if let Err(e) = cutover::cli::command().try_get_matches_from(cmd) {
                panic!(
                    "{file}: `{}` is not a valid cutover command:\n{e}",
                    cmd.join(" ")
                );
            }
        }
        let subcommands: BTreeSet<&str> = commands
            .iter()
            .filter_map(|c| c.iter().skip(1).find(|w| !w.starts_with('-')))
            .map(String::as_str)
            .collect();
        for sub in must_run {
            assert!(
                subcommands.contains(sub),
                "{file} never runs `cutover {sub}`: {commands:?}"
            );
        }
        let all = commands.iter().map(|c| c.join(" ")).collect::<Vec<_>>();
        assert!(
            all.iter()
                .any(|c| c
                    .contains("plan --gates --out plan.cutover --markdown --detailed-exitcode")),
            "{file}: {all:?}"
        );
        assert!(
            all.iter().any(|c| c.contains("apply --json plan.cutover")),
            "{file}: {all:?}"
        );
    }
    // The checker itself catches a flag that does not exist.
    let bad = cutover_commands("x=$(cutover plan --nope | jq .)");
    assert_eq!(bad, [["cutover", "plan", "--nope"]]);
    assert!(cutover::cli::command()
        .try_get_matches_from(&bad[0])
        .is_err());
}
