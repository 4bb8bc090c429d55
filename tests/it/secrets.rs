//! A sensitive variable traced through every output and file: it must appear
//! in none, while the steps still run with the real value.

use crate::haproxy_support::{free_port, HaproxyGuard, HaproxySetup};
use crate::support::{demo_app_bin, Case, ProcessReaper};

const TOKEN: &str = "tok-5ecr3t-XYZ";
const BUILD: &str = "b-s3cr3t-77";

fn config(h: &HaproxyGuard, blue: u16, green: u16, token: &str, green_release: &str) -> String {
    let demo = demo_app_bin();
    let env = |name: &str, port: u16, release: &str| {
        format!(
            r#"
environment "{name}" {{
  release  = "{release}+${{var.build}}"
  endpoint = "127.0.0.1:{port}"
  process {{
    command = ["{demo}", "--port", "{port}", "--release", "{release}"]
    env     = {{ TOKEN = var.token }}
  }}
  health {{
    path     = "/healthz"
    interval = "100ms"
  }}
}}
"#,
            demo = demo.display()
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
