//! A sensitive variable traced through every output and file: it must appear
//! in none, while the steps still run with the real value.

use crate::haproxy_support::{free_port, HaproxyGuard, HaproxySetup};
use crate::support::{demo_app_bin, Case, ProcessReaper};

const TOKEN: &str = "tok-5ecr3t-XYZ";
const BUILD: &str = "b-s3cr3t-77";

/// A `process` colour running the demo app on `port`: `release` is the
/// release attribute's HCL, `args` added to its command, `lines` to its
/// `process {}` block.
fn process_env(
    name: &str,
    port: u16,
    release: &str,
    shown: &str,
    args: &str,
    lines: &str,
) -> String {
    format!(
        r#"
environment "{name}" {{
  release  = {release}
  endpoint = "127.0.0.1:{port}"
  process {{
    command = ["{demo}", "--port", "{port}", "--release", "{shown}"{args}]
{lines}  }}
  health {{
    path     = "/healthz"
    interval = "100ms"
  }}
}}
"#,
        demo = demo_app_bin().display()
    )
}

fn config(h: &HaproxyGuard, blue: u16, green: u16, token: &str, green_release: &str) -> String {
    let env = |name: &str, port: u16, release: &str| {
        let expr = format!("\"{release}+${{var.build}}\"");
        process_env(
            name,
            port,
            &expr,
            release,
            "",
            "    env     = { TOKEN = var.token }\n",
        )
    };
    format!(
        r#"
variable "token" {{
  default   = "{token}"
  sensitive = true
}}
variable "build" {{
  default   = "{BUILD}"
  sensitive = true
}}
locals {{
  header = "Bearer ${{var.token}}"
}}
output "header" {{
  value = local.header
}}
{blue_env}{green_env}
router "public" {{
  live = environment.blue
  haproxy {{
    socket = "{socket}"
    map    = "{map}"
  }}
}}
"#,
        blue_env = env("blue", blue, "1.0"),
        green_env = env("green", green, green_release),
        socket = h.socket().display(),
        map = h.map_path().display()
    )
}

#[track_caller]
fn clean(what: &str, text: &str) {
    for secret in [TOKEN, BUILD, "tok-rotated-999"] {
        assert!(
            !text.contains(secret),
            "{what} shows the secret {secret}:\n{text}"
        );
    }
}

#[test]
fn a_secret_appears_in_no_output_and_no_file() {
    let (blue, green) = (free_port(), free_port());
    let mut setup = HaproxySetup::blue_green(
        &format!("127.0.0.1:{blue}"),
        &format!("127.0.0.1:{green}"),
        "blue",
    );
    setup.map = String::new();
    let h = HaproxyGuard::start(&setup);
    let case = Case::with_main(&config(&h, blue, green, TOKEN, "1.0"));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    let plan_file = case.path().join("plan.cutover");
    let plan_path = plan_file.to_str().unwrap();

    for args in [
        vec!["validate"],
        vec!["plan"],
        vec!["plan", "--json"],
        vec!["plan", "--markdown"],
        vec!["plan", "--out", plan_path],
        vec!["show", plan_path],
        vec!["show", "--json", plan_path],
        vec!["show", "--markdown", plan_path],
        vec!["output"],
        vec!["output", "--json"],
        vec!["graph"],
    ] {
        let run = case.run(&args).code(0);
        clean(&format!("{args:?} stdout"), &run.stdout);
        clean(&format!("{args:?} stderr"), &run.stderr);
    }
    clean(
        "the saved plan",
        &std::fs::read_to_string(&plan_file).unwrap(),
    );

    // The saved plan applies, with the real values put back from the config.
    let run = case.run(&["apply", plan_path]).code(0);
    clean("apply", &format!("{}{}", run.stdout, run.stderr));
    let state_text = String::from_utf8(case.state_bytes().unwrap()).unwrap();
    clean("the state file", &state_text);
    for args in [
        vec!["show"],
        vec!["show", "--json"],
        vec!["state", "show", "environment.blue"],
    ] {
        let run = case.run(&args).code(0);
        clean(
            &format!("{args:?}"),
            &format!("{}{}", run.stdout, run.stderr),
        );
    }
    // ... the process really got the secret.
    let state: serde_json::Value = serde_json::from_str(&state_text).unwrap();
    let pid = state["environments"]["blue"]["private"]["pid"]
        .as_i64()
        .unwrap();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(String::from_utf8_lossy(&environ).contains(&format!("TOKEN={TOKEN}")));

    // Nothing changed: a hidden secret is not a change.
    case.run(&["plan", "--detailed-exitcode"]).code(0);

    // A rotated secret is a change, still shown only as a marker, and a plan
    // saved before the rotation is refused.
    case.write("main.hcl", &config(&h, blue, green, TOKEN, "2.0"));
    case.run(&["plan", "--out", plan_path]).code(0);
    case.write(
        "main.hcl",
        &config(&h, blue, green, "tok-rotated-999", "2.0"),
    );
    let run = case
        .run(&["plan", "--detailed-exitcode", "--allow-live-changes"])
        .code(2);
    clean("plan after rotation", &run.stdout);
    assert!(run.stdout.contains("(sensitive"), "{}", run.stdout);
    let run = case.run(&["apply", plan_path]).code(1);
    assert!(
        run.stderr.contains("changed since the plan was made"),
        "{}",
        run.stderr
    );
    clean("stale apply", &format!("{}{}", run.stdout, run.stderr));
}

// ------------------------------------------------ marks, not text search ---

/// Two `process` colours behind a real HAProxy; `green_extra` is HCL added
/// to green's `process {}` block, `blue_extra` to blue's, and `live` the
/// router's colour.
struct Marked {
    h: HaproxyGuard,
    case: Case,
    blue: u16,
    green: u16,
}

impl Marked {
    fn start() -> (Marked, ProcessReaper) {
        let (blue, green) = (free_port(), free_port());
        let setup = HaproxySetup::blue_green(
            &format!("127.0.0.1:{blue}"),
            &format!("127.0.0.1:{green}"),
            "blue",
        );
        let h = HaproxyGuard::start(&setup);
        let case = Case::new();
        let reaper = ProcessReaper(case.path().join("cutover.state.json"));
        (
            Marked {
                h,
                case,
                blue,
                green,
            },
            reaper,
        )
    }

    fn config(&self, vars: &str, blue: (&str, &str), green: (&str, &str), live: &str) -> String {
        let env = |name: &str, port: u16, (release, args): (&str, &str)| {
            process_env(name, port, &format!("\"{release}\""), release, args, "")
        };
        self.with(
            vars,
            &env("blue", self.blue, blue),
            &env("green", self.green, green),
            live,
        )
    }

    /// `vars`, the two colours' blocks and the router sending `live` traffic.
    fn with(&self, vars: &str, blue: &str, green: &str, live: &str) -> String {
        format!(
            "{vars}{blue}{green}\nrouter \"public\" {{\n  live = environment.{live}\n  haproxy {{\n    socket = \"{}\"\n    map    = \"{}\"\n  }}\n}}\n",
            self.h.socket().display(),
            self.h.map_path().display()
        )
    }
}

/// Every file under `dir` (the configuration directory: the state, saved
/// plans, the process logs, the lock) holds none of `secrets`.
#[track_caller]
fn no_file_holds(dir: &std::path::Path, secrets: &[&str]) {
    let mut stack = vec![dir.to_path_buf()];
    let mut seen = 0;
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            seen += 1;
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            for s in secrets {
                assert!(
                    !text.contains(s),
                    "{} holds the secret {s}:\n{text}",
                    path.display()
                );
            }
        }
    }
    assert!(seen >= 3, "only {seen} files under {}", dir.display());
}

const API_TOKEN: &str = "tkn-Qz81-private";

fn token_var() -> String {
    "variable \"api_token\" {\n  sensitive = true\n}\n".to_string()
}

#[test]
fn a_secret_in_one_command_element_marks_that_element_and_nothing_else() {
    let (m, _reaper) = Marked::start();
    let env = [("CUTOVER_VAR_api_token", API_TOKEN)];
    let secret_arg = r#", "--secret", var.api_token"#;
    m.case.write(
        "main.hcl",
        &m.config(&token_var(), ("1.0", ""), ("6.10.0", secret_arg), "blue"),
    );
    m.case.run_env(&["apply", "--auto-approve"], &env).code(0);

    // Green gets a new release and the traffic.
    m.case.write(
        "main.hcl",
        &m.config(&token_var(), ("1.0", ""), ("6.11.0", secret_arg), "green"),
    );
    let plan_file = m.case.path().join("p.plan");
    let plan_path = plan_file.to_str().unwrap();
    let run = m.case.run_env(&["plan", "--out", plan_path], &env).code(0);
    clean_of(&run.stdout, &[API_TOKEN]);
    let marker = cutover::plan::sensitive::marker(API_TOKEN);
    // The siblings of the secret are shown as they are: the release, the
    // port in the gate's URL; blue, which does not use it, is not changed.
    for shown in [
        "6.11.0".to_string(),
        format!("127.0.0.1:{}", m.green),
        "environment.green".to_string(),
    ] {
        assert!(
            run.stdout.contains(&shown),
            "{shown} is not shown:\n{}",
            run.stdout
        );
    }
    assert!(
        !run.stdout.contains("environment.blue will"),
        "{}",
        run.stdout
    );
    let json = m.case.run_env(&["plan", "--json"], &env).code(0).stdout;
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let steps = doc["steps"].as_array().unwrap();
    let green = steps
        .iter()
        .find(|s| s["id"] == "environment.green")
        .unwrap();
    let command = &green["spec"]["settings"]["command"];
    assert_eq!(command[2], m.green.to_string(), "{command}");
    assert_eq!(command[4], "6.11.0", "{command}");
    assert_eq!(command[6], marker.as_str(), "{command}");
    assert_eq!(green["spec"]["release"], "6.11.0");
    let gate = steps.iter().find(|s| s["id"] == "health.green").unwrap();
    assert_eq!(gate["endpoints"][0], format!("127.0.0.1:{}", m.green));

    // The saved plan applies: the gate checks the real endpoint.
    let run = m.case.run_env(&["apply", plan_path], &env).code(0);
    clean_of(&format!("{}{}", run.stdout, run.stderr), &[API_TOKEN]);
    assert_eq!(m.h.get("/").1.trim(), "demo-app release 6.11.0");
    let state = m.case.state();
    assert_eq!(state["environments"]["green"]["release"], "6.11.0");
    assert_eq!(
        state["environments"]["green"]["endpoints"][0],
        format!("127.0.0.1:{}", m.green)
    );
    assert_eq!(
        state["environments"]["green"]["settings"]["command"][6],
        marker.as_str()
    );
    // The process has the real value; no file cutover wrote has it.
    let pid = state["environments"]["green"]["private"]["pid"]
        .as_i64()
        .unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(String::from_utf8_lossy(&cmdline).contains(API_TOKEN));
    no_file_holds(m.case.path(), &[API_TOKEN]);
    // (`run_env` checked that the next plan finds nothing to do.)
}

#[test]
fn a_secret_in_a_process_env_leaves_the_colour_name_shown_and_saved_plans_apply() {
    let (m, _reaper) = Marked::start();
    let env = [("CUTOVER_VAR_api_token", API_TOKEN)];
    let with_env = |colour: &str, port: u16, release: &str| {
        let env = format!("    env     = {{ API_TOKEN = var.api_token, COLOUR = \"{colour}\" }}\n");
        process_env(colour, port, &format!("\"{release}\""), release, "", &env)
    };
    let config = |green_release: &str, live: &str| {
        let (blue, green) = (
            with_env("blue", m.blue, "1.0"),
            with_env("green", m.green, green_release),
        );
        m.with(&token_var(), &blue, &green, live)
    };
    m.case.write("main.hcl", &config("1.0", "blue"));
    let plan_file = m.case.path().join("first.plan");
    let plan_path = plan_file.to_str().unwrap();
    let run = m.case.run_env(&["plan", "--out", plan_path], &env).code(0);
    assert!(
        run.stdout.contains("environment.blue will be created"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("environment.green will be created"),
        "{}",
        run.stdout
    );
    m.case.run_env(&["apply", plan_path], &env).code(0);

    m.case.write("main.hcl", &config("2.0", "green"));
    m.case.run_env(&["plan", "--out", plan_path], &env).code(0);
    let saved = std::fs::read_to_string(&plan_file).unwrap();
    assert!(
        saved.contains(r#""COLOUR": "green""#) || saved.contains(r#""COLOUR":"green""#),
        "{saved}"
    );
    let run = m.case.run_env(&["apply", plan_path], &env).code(0);
    clean_of(&format!("{}{}", run.stdout, run.stderr), &[API_TOKEN]);
    assert_eq!(m.h.get("/").1.trim(), "demo-app release 2.0");
    no_file_holds(m.case.path(), &[API_TOKEN]);

    // A secret rotated since the plan was made is refused, naming it.
    m.case.write("main.hcl", &config("3.0", "green"));
    let run = m
        .case
        .run_env(&["plan", "--out", plan_path, "--allow-live-changes"], &env)
        .code(0);
    clean_of(&run.stdout, &[API_TOKEN]);
    let run = m
        .case
        .run_env(
            &["apply", plan_path],
            &[("CUTOVER_VAR_api_token", "tkn-rotated")],
        )
        .code(1);
    assert!(
        run.stderr
            .contains("the sensitive value of var.api_token changed since the plan was made"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_secret_equal_to_a_port_or_a_colour_masks_only_the_values_from_it() {
    let (m, _reaper) = Marked::start();
    let port = m.green.to_string();
    let vars = "variable \"port_secret\" {\n  sensitive = true\n}\nvariable \"colour_secret\" {\n  sensitive = true\n}\n";
    let env = [
        ("CUTOVER_VAR_port_secret", port.as_str()),
        ("CUTOVER_VAR_colour_secret", "green"),
    ];
    let blue_extra = r#", "--secret", var.port_secret, "--secret", var.colour_secret"#;
    m.case.write(
        "main.hcl",
        &m.config(vars, ("1.0", blue_extra), ("1.0", ""), "blue"),
    );
    let run = m.case.run_env(&["plan"], &env).code(0);
    // Green's endpoint, port and name come from no secret: shown.
    for shown in [
        format!("127.0.0.1:{port}"),
        "environment.green will be created".into(),
    ] {
        assert!(
            run.stdout.contains(&shown),
            "{shown} is hidden:\n{}",
            run.stdout
        );
    }
    let json = m.case.run_env(&["plan", "--json"], &env).code(0).stdout;
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let steps = doc["steps"].as_array().unwrap();
    let blue = steps
        .iter()
        .find(|s| s["id"] == "environment.blue")
        .unwrap();
    let green = steps
        .iter()
        .find(|s| s["id"] == "environment.green")
        .unwrap();
    let marker = cutover::plan::sensitive::marker;
    assert_eq!(blue["spec"]["settings"]["command"][6], marker(&port));
    assert_eq!(blue["spec"]["settings"]["command"][8], marker("green"));
    assert_eq!(green["spec"]["settings"]["command"][2], port.as_str());
    assert_eq!(green["name"], "green");
    m.case.run_env(&["apply", "--auto-approve"], &env).code(0);
    let state = m.case.state();
    assert_eq!(
        state["environments"]["green"]["settings"]["command"][2],
        port.as_str()
    );
    assert_eq!(
        state["environments"]["blue"]["settings"]["command"][6],
        marker(&port)
    );
    // What the process backend writes itself goes by the marks too: green's
    // port is shown in its record and log header, blue's secret is not.
    let green_cmd = &state["environments"]["green"]["private"]["command"];
    assert_eq!(green_cmd[2], port.as_str(), "{green_cmd}");
    let blue_cmd = &state["environments"]["blue"]["private"]["command"];
    assert_eq!(blue_cmd[6], marker(&port), "{blue_cmd}");
    assert_eq!(blue_cmd[8], marker("green"), "{blue_cmd}");
    let log = std::fs::read_to_string(m.case.path().join(".cutover/logs/green.log")).unwrap();
    assert!(
        log.contains(&format!("--port {port} --release 1.0")),
        "{log}"
    );
    // A drift message names green's log as it is ("green" is a colour's
    // name, shown anyway, not a text to hide).
    let pid = state["environments"]["green"]["private"]["pid"]
        .as_i64()
        .unwrap();
    crate::crash::kill_group(pid as i32);
    let run = m.case.run_env(&["plan"], &env).code(0);
    assert!(run.stdout.contains("logs/green.log"), "{}", run.stdout);
}

#[test]
fn a_secret_equal_to_the_release_leaves_the_plans_converging() {
    let (m, _reaper) = Marked::start();
    let vars = "variable \"build\" {\n  sensitive = true\n}\n";
    let env = [("CUTOVER_VAR_build", "1.0")];
    let blue_extra = r#", "--secret", var.build"#;
    m.case.write(
        "main.hcl",
        &m.config(vars, ("1.0", blue_extra), ("1.0", ""), "blue"),
    );
    // `run_env` checks that the plan after the apply finds nothing to do.
    m.case.run_env(&["apply", "--auto-approve"], &env).code(0);
    let state = m.case.state();
    assert_eq!(state["environments"]["blue"]["release"], "1.0");
    assert_eq!(state["environments"]["blue"]["private"]["release"], "1.0");
    let run = m
        .case
        .run_env(&["plan", "--detailed-exitcode"], &env)
        .code(0);
    assert!(!run.stdout.contains("(sensitive:"), "{}", run.stdout);
}

#[test]
fn a_check_with_a_sensitive_path_names_its_endpoint_as_it_is() {
    let (m, _reaper) = Marked::start();
    let env = [("CUTOVER_VAR_api_token", API_TOKEN)];
    // Healthy well after its start, however long the start takes on a
    // loaded machine: the gate waits, and says so.
    let slow = r#", "--healthy-after", "2.5""#;
    let config = m.config(&token_var(), ("1.0", ""), ("1.0", slow), "green");
    // Green's check asks for the token in its query.
    let plain = r#"path     = "/healthz""#;
    let at = config.rfind(plain).unwrap();
    let config = format!(
        "{}{}{}",
        &config[..at],
        r#"path     = "/healthz?token=${var.api_token}""#,
        &config[at + plain.len()..]
    );
    m.case.write("main.hcl", &config);
    let run = m.case.run_env(&["apply", "--auto-approve"], &env).code(0);
    clean_of(&format!("{}{}", run.stdout, run.stderr), &[API_TOKEN]);
    let marker = cutover::plan::sensitive::marker(&format!("/healthz?token={API_TOKEN}"));
    let waiting = run
        .stdout
        .lines()
        .find(|l| l.contains("health.green") && l.contains("still waiting"))
        .unwrap_or_else(|| panic!("no waiting line:\n{}", run.stdout));
    assert!(
        waiting.contains(&format!("GET http://127.0.0.1:{}/{marker}", m.green)),
        "{waiting}"
    );
}

#[test]
fn the_lock_and_its_holder_message_hold_no_var_value() {
    let (m, _reaper) = Marked::start();
    let secret_arg = r#", "--secret", var.api_token"#;
    let slow = r#", "--healthy-after", "1.5""#;
    let var = format!("api_token={API_TOKEN}");
    m.case.write(
        "main.hcl",
        &m.config(&token_var(), ("1.0", slow), ("1.0", secret_arg), "blue"),
    );
    let mut apply = m
        .case
        .spawn(&["apply", "--auto-approve", "--var", &var, "--json"]);
    apply.wait_for_line("health.blue", std::time::Duration::from_secs(20));
    let lock = std::fs::read_to_string(m.case.path().join("cutover.state.json.lock")).unwrap();
    assert!(!lock.contains(API_TOKEN), "{lock}");
    assert!(lock.contains("api_token=..."), "{lock}");
    let run = m
        .case
        .run(&["apply", "--auto-approve", "--var", &var])
        .code(1);
    assert!(run.stderr.contains("api_token=..."), "{}", run.stderr);
    clean_of(&run.stderr, &[API_TOKEN]);
    let done = apply.finish(std::time::Duration::from_secs(60));
    assert_eq!(done.code, 0, "{}\n{}", done.stdout, done.stderr);
    clean_of(&format!("{}{}", done.stdout, done.stderr), &[API_TOKEN]);
    no_file_holds(m.case.path(), &[API_TOKEN]);
}

#[track_caller]
fn clean_of(text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!text.contains(s), "the secret {s} is shown:\n{text}");
    }
}

#[test]
fn a_value_marked_sensitive_after_it_was_applied_is_hidden_by_the_next_apply() {
    let (m, _reaper) = Marked::start();
    let env = [("CUTOVER_VAR_rel", "REL-SECRET-9")];
    let release = r#"var.rel"#;
    let config = |sensitive: bool| {
        let vars = format!(
            "variable \"rel\" {{\n{}}}\n",
            if sensitive {
                "  sensitive = true\n"
            } else {
                ""
            }
        );
        let green = process_env(
            "green",
            m.green,
            release,
            "2",
            r#", "--secret", var.rel"#,
            "",
        );
        let blue = process_env("blue", m.blue, release, "1", "", "");
        m.with(&vars, &blue, &green, "blue")
    };
    m.case.write("main.hcl", &config(false));
    m.case.run_env(&["apply", "--auto-approve"], &env).code(0);
    assert!(String::from_utf8(m.case.state_bytes().unwrap())
        .unwrap()
        .contains("REL-SECRET-9"));

    // Marked now: not a change, but the state is rewritten with markers.
    m.case.write("main.hcl", &config(true));
    let run = m
        .case
        .run_env(&["plan", "--detailed-exitcode"], &env)
        .code(2);
    clean_of(&format!("{}{}", run.stdout, run.stderr), &["REL-SECRET-9"]);
    assert!(
        run.stdout
            .contains("rewrite the state's record of environment.green"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("will be updated"), "{}", run.stdout);
    let run = m.case.run_env(&["apply", "--auto-approve"], &env).code(0);
    clean_of(&format!("{}{}", run.stdout, run.stderr), &["REL-SECRET-9"]);
    // The state (the provider's own record included) holds markers now; the
    // logs written while the value was not sensitive are the logs' matter.
    let state = String::from_utf8(m.case.state_bytes().unwrap()).unwrap();
    clean_of(&state, &["REL-SECRET-9"]);
    let run = m
        .case
        .run_env(&["state", "show", "environment.green"], &env)
        .code(0);
    clean_of(&run.stdout, &["REL-SECRET-9"]);
}
