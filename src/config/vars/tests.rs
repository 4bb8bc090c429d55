//! Variables loaded as a whole: a value from each source, converted to its
//! type, `nullable`, `validation {}`, and where each mistake is reported.

use std::path::PathBuf;

use serde_json::{json, Value as Json};

use super::super::model::Config;
use super::super::{load_str, VarInputs};

/// Inputs for one load, with var files in a directory of their own.
pub(super) struct Case {
    dir: tempfile::TempDir,
    inputs: VarInputs,
}

impl Case {
    pub(super) fn new() -> Self {
        Case {
            dir: tempfile::tempdir().unwrap(),
            inputs: VarInputs::default(),
        }
    }

    pub(super) fn var(mut self, name: &str, value: &str) -> Self {
        self.inputs.cli.push((name.into(), value.into()));
        self
    }

    pub(super) fn env(mut self, name: &str, value: &str) -> Self {
        self.inputs.env.insert(name.into(), value.into());
        self
    }

    pub(super) fn file(mut self, name: &str, text: &str) -> Self {
        let path: PathBuf = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        self.inputs.files.push(path);
        self
    }

    pub(super) fn config(&self, text: &str) -> Config {
        match load_str(text, &self.inputs) {
            Ok(l) => l.config,
            Err(e) => panic!("{e}"),
        }
    }

    pub(super) fn value(&self, text: &str, name: &str) -> Json {
        self.config(text).variables[name].value.clone()
    }

    /// Each problem: `FILE:LINE:COLUMN: MESSAGE [help: HELP]`, a var file
    /// named without its directory.
    pub(super) fn problems(&self, text: &str) -> Vec<String> {
        let err = load_str(text, &self.inputs).expect_err("a mistake");
        let dir = format!("{}/", self.dir.path().display());
        err.0
            .iter()
            .map(|d| {
                let at = d.span.as_ref().map_or(String::new(), |s| {
                    format!("{}:{}:{}: ", s.file.display(), s.line, s.column)
                });
                let help = d
                    .help
                    .as_ref()
                    .map_or(String::new(), |h| format!(" [help: {h}]"));
                format!("{at}{}{help}", d.message).replace(&dir, "")
            })
            .collect()
    }
}

/// `text` with `  default = DEFAULT` after its first line that ends `after`.
pub(super) fn with_default(text: &str, after: &str, default: &str) -> String {
    text.replacen(after, &format!("{after}  default = {default}\n"), 1)
}

const VARS: &str = r#"variable "a" {
  type    = string
  default = "default"
}
variable "n" {
  type    = number
  default = 1
}
variable "l" {
  type    = list
  default = []
}
variable "m" {
  type    = map
  default = {}
}
variable "b" {
  type    = bool
  default = false
}
"#;

#[test]
fn variable_precedence_cli_file_env_default() {
    let values = |c: &Case, names: &[&str]| -> Vec<Json> {
        let config = c.config(VARS);
        names
            .iter()
            .map(|n| config.variables[*n].value.clone())
            .collect()
    };
    let case = Case::new();
    assert_eq!(
        values(&case, &["a", "n", "b"]),
        [json!("default"), json!(1), json!(false)]
    );
    let case = case.env("a", "env").env("n", "3").env("b", "true");
    assert_eq!(
        values(&case, &["a", "n", "b"]),
        [json!("env"), json!(3), json!(true)]
    );
    let case = case
        .file("one.hcl", "a = \"file\"\nl = [\"x\", upper(\"y\")]\n")
        .file("two.json", r#"{"n": 7, "m": {"k": "v"}}"#);
    assert_eq!(
        values(&case, &["a", "n", "l", "m"]),
        [
            json!("file"),
            json!(7),
            json!(["x", "Y"]),
            json!({"k": "v"})
        ]
    );
    let case = case
        .var("a", "first")
        .var("a", "cli")
        .var("l", "[1, 2]")
        .var("n", "2.5");
    assert_eq!(
        values(&case, &["a", "n", "l"]),
        [json!("cli"), json!(2.5), json!([1, 2])]
    );
}

#[test]
fn a_string_from_outside_is_the_value_for_a_primitive_type_and_hcl_for_others() {
    let text = "variable \"s\" {\n  type = string\n}\nvariable \"u\" {}\nvariable \"y\" {\n  type = any\n}\nvariable \"b\" {\n  type = bool\n}\nvariable \"o\" {\n  type = object({ port = number })\n}\n";
    // s, u, y and b from --var, o from the environment.
    let case = |s: &str, u: &str, y: &str, b: &str, o: &str| {
        let case = Case::new().var("s", s).var("u", u).var("y", y);
        case.var("b", b).env("o", o)
    };
    let c = case("[1]", "[1]", "[1]", "0", "{ port = \"9101\" }").config(text);
    let value = |n: &str| c.variables[n].value.clone();
    assert_eq!(
        [value("s"), value("u"), value("y"), value("b"), value("o")],
        [
            json!("[1]"),
            json!("[1]"),
            json!([1]),
            json!(false),
            json!({"port": 9101})
        ]
    );
    let case = case("x", "x", "hello", "x", "{ port = true }");
    let hint = "the value of a variable whose type is not string, number or bool is an HCL expression: [\"a\", \"b\"], { key = \"value\" }, strings in quotes";
    assert_eq!(
        case.problems(text),
        [
            "--var b=x: a bool is required [help: the type of variable \"b\" is at main.hcl:9:10]".to_owned(),
            "CUTOVER_VAR_o: port: number required, but have bool [help: the type of variable \"o\" is at main.hcl:12:10]".to_owned(),
            format!("--var y=hello: cannot evaluate it: undefined variable `hello` in expression `hello` [help: {hint}]"),
        ]
    );
    let any = "variable \"y\" {\n  type = any\n}\n";
    assert_eq!(
        Case::new().var("y", "\"hello\"").value(any, "y"),
        json!("hello")
    );
}

#[test]
fn variable_input_mistakes() {
    let case = Case::new()
        .var("nope", "1")
        .var("n", "abc")
        .var("l", "[1,")
        .env("b", "yes");
    let problems = case.problems(VARS);
    assert_eq!(
        problems[0],
        "--var nope=...: no variable \"nope\" is declared"
    );
    assert_eq!(
        problems[1],
        "CUTOVER_VAR_b: a bool is required [help: the type of variable \"b\" is at main.hcl:18:13]"
    );
    assert!(
        problems[2].starts_with("--var l=[1,: not a valid HCL value: "),
        "{problems:?}"
    );
    assert_eq!(
        problems[3],
        "--var n=abc: a number is required [help: the type of variable \"n\" is at main.hcl:6:13]"
    );
    assert_eq!(problems.len(), 4, "{problems:?}");
    assert_eq!(
        Case::new().var("b", "True").problems(VARS),
        ["--var b=True: a bool is required; to convert from string, use lowercase \"true\" [help: the type of variable \"b\" is at main.hcl:18:13]"]
    );
}

#[test]
fn variable_declaration_mistakes() {
    let problems = Case::new().problems(
        "variable \"a\" {}\nvariable \"b\" {\n  type    = number\n  default = \"x\"\n}\nvariable \"c\" {\n  default = var.b\n}\nvariable \"d\" {\n  type = text\n}\nvariable \"e\" {\n  nulable = false\n}\n",
    );
    assert_eq!(
        problems,
        [
            "main.hcl:1:1: variable \"a\" has no value [help: give it a value with --var a=VALUE, a --var-file, CUTOVER_VAR_a, or a default]",
            "main.hcl:4:13: invalid default for variable \"b\": a number is required",
            "main.hcl:7:13: a variable's default cannot refer to other values",
            "main.hcl:10:10: unknown type `text` [help: a type is string, number, bool, any, list(T), set(T), map(T), object({ NAME = T, ... }) or tuple([T, ...])]",
            "main.hcl:12:1: variable \"e\" has no value [help: give it a value with --var e=VALUE, a --var-file, CUTOVER_VAR_e, or a default]",
            "main.hcl:13:3: unknown argument `nulable` in variable \"e\" [help: did you mean `nullable`?]",
        ]
    );
}

const SERVERS: &str =
    "variable \"servers\" {\n  type = list(object({ name = string, port = number }))\n}\n";

#[test]
fn a_wrong_value_is_reported_where_it_came_from() {
    let wrong = "[{ name = \"a\", port = 1 }, { name = \"b\", port = \"x\" }]";
    let help = " [help: the type of variable \"servers\" is at main.hcl:2:10]";
    assert_eq!(
        Case::new().var("servers", wrong).problems(SERVERS),
        [format!(
            "--var servers={wrong}: [1].port: a number is required{help}"
        )]
    );
    assert_eq!(
        Case::new()
            .env("servers", "[{ name = \"a\" }]")
            .problems(SERVERS),
        [format!(
            "CUTOVER_VAR_servers: [0]: attribute \"port\" is required{help}"
        )]
    );
    assert_eq!(
        Case::new()
            .file("v.tfvars", &format!("# the servers\nservers = {wrong}\n"))
            .problems(SERVERS),
        [format!("v.tfvars:2:59: invalid value for variable \"servers\": [1].port: a number is required{help}")]
    );
    assert_eq!(
        Case::new()
            .file("v.tfvars", "servers = [\n  { name = \"a\", port = 1 },\n  ({ name = \"b\" }),\n]\n")
            .problems(SERVERS),
        [format!("v.tfvars:3:3: invalid value for variable \"servers\": [1]: attribute \"port\" is required{help}")],
        "at the part of the value that is wrong"
    );
    assert_eq!(
        Case::new()
            .file("v.tfvars", "servers = concat([{ name = \"a\", port = \"x\" }])\n")
            .problems(SERVERS),
        [format!("v.tfvars:1:11: invalid value for variable \"servers\": [0].port: a number is required{help}")],
        "at the whole, when the part is not written out"
    );
    assert_eq!(
        Case::new()
            .file("v.json", r#"{"servers": [{"name": "a", "port": 1, "prot": 2}]}"#)
            .problems(SERVERS),
        [format!("--var-file v.json: invalid value for variable \"servers\": [0]: attribute \"prot\" is not expected; did you mean `port`?{help}")]
    );
    let default = with_default(SERVERS, "}))\n", "[{ name = 1, port = true }]");
    assert_eq!(
        Case::new().problems(&default),
        ["main.hcl:3:33: invalid default for variable \"servers\": [0].port: number required, but have bool"]
    );
}

#[test]
fn a_var_file_line_is_never_quoted() {
    let case = Case::new().file("vars.hcl", "a = \"ok\"\nnope = 1\nn = \"x\"\n");
    let err = load_str(VARS, &case.inputs).unwrap_err();
    assert_eq!(
        case.problems(VARS),
        [
            "vars.hcl:2:1: no variable \"nope\" is declared",
            "vars.hcl:3:5: invalid value for variable \"n\": a number is required [help: the type of variable \"n\" is at main.hcl:6:13]",
        ]
    );
    assert!(err.0.iter().all(|d| d.source_line.is_none()), "{err}");
}

#[test]
fn terraforms_nested_optional_defaults_example() {
    // The "Nested Structures with Optional Attributes and Defaults" example
    // of Terraform's "Type Constraints" page, as a var file.
    let text = r#"variable "buckets" {
  type = list(object({
    name    = string
    enabled = optional(bool, true)
    website = optional(object({
      index_document = optional(string, "index.html")
      error_document = optional(string, "error.html")
      routing_rules  = optional(string)
    }), {})
  }))
}
"#;
    let tfvars = r#"buckets = [
  {
    name = "production"
    website = {
      routing_rules = <<-EOT
      [
        {
          "Condition" = { "KeyPrefixEquals": "img/" },
          "Redirect"  = { "ReplaceKeyPrefixWith": "images/" }
        }
      ]
      EOT
    }
  },
  {
    name = "archived"
    enabled = false
  },
  {
    name = "docs"
    website = {
      index_document = "index.txt"
      error_document = "error.txt"
    }
  },
]
"#;
    let rules = "[\n  {\n    \"Condition\" = { \"KeyPrefixEquals\": \"img/\" },\n    \"Redirect\"  = { \"ReplaceKeyPrefixWith\": \"images/\" }\n  }\n]\n";
    let value = Case::new()
        .file("terraform.tfvars", tfvars)
        .value(text, "buckets");
    assert_eq!(
        value,
        json!([
            {
                "enabled": true,
                "name": "production",
                "website": {
                    "error_document": "error.html",
                    "index_document": "index.html",
                    "routing_rules": rules,
                }
            },
            {
                "enabled": false,
                "name": "archived",
                "website": {
                    "error_document": "error.html",
                    "index_document": "index.html",
                    "routing_rules": null,
                }
            },
            {
                "enabled": true,
                "name": "docs",
                "website": {
                    "error_document": "error.txt",
                    "index_document": "index.txt",
                    "routing_rules": null,
                }
            },
        ])
    );
}

const PORT: &str =
    "variable \"port\" {\n  type     = number\n  nullable = false\n  default  = 9101\n}\n";

#[test]
fn a_null_for_a_variable_that_is_not_nullable_takes_its_default() {
    assert_eq!(
        Case::new()
            .file("v.tfvars", "port = null\n")
            .value(PORT, "port"),
        json!(9101)
    );
    assert_eq!(
        Case::new()
            .file("v.json", r#"{"port": null}"#)
            .value(PORT, "port"),
        json!(9101)
    );
    let nullable = PORT.replace("  nullable = false\n", "");
    assert_eq!(
        Case::new()
            .file("v.tfvars", "port = null\n")
            .value(&nullable, "port"),
        Json::Null,
        "a nullable variable is null when given null, default or not (as in Terraform)"
    );
    assert_eq!(
        Case::new().var("port", "null").problems(PORT),
        ["--var port=null: a number is required [help: the type of variable \"port\" is at main.hcl:2:14]"],
        "a number from --var is the string itself, as in Terraform"
    );
}

#[test]
fn a_null_for_a_variable_that_is_not_nullable_and_has_no_default_is_an_error() {
    let text = "variable \"ports\" {\n  type     = list(number)\n  nullable = false\n}\n";
    let help = " [help: give it a value other than null, or a default (which a null then takes)]";
    let message = "the value is null, and the variable is declared `nullable = false`";
    assert_eq!(
        Case::new().var("ports", "null").problems(text),
        [format!("--var ports=null: {message}{help}")]
    );
    assert_eq!(
        Case::new()
            .file("v.tfvars", "\nports = null\n")
            .problems(text),
        [format!(
            "v.tfvars:2:9: invalid value for variable \"ports\": {message}{help}"
        )]
    );
    assert_eq!(
        Case::new().problems(&text.replace("false\n", "false\n  default  = null\n")),
        ["main.hcl:4:14: a null default is not valid when the variable is declared `nullable = false` [help: remove the default (a value must then be given) or give one other than null]"]
    );
    assert_eq!(
        Case::new().problems("variable \"x\" {\n  nullable = \"no\"\n  default  = 1\n}\n"),
        ["main.hcl:2:14: `nullable` must be true or false, not a string"]
    );
}

#[test]
fn a_sensitive_value_is_not_shown_in_a_conversion_error() {
    let text = "variable \"tokens\" {\n  type      = map(object({ value = string }))\n  sensitive = true\n}\n";
    let help = " [help: the type of variable \"tokens\" is at main.hcl:2:15]";
    assert_eq!(
        Case::new()
            .var("tokens", "{ s3cret-name = { value = [\"s3cret\"] } }")
            .problems(text),
        [format!(
            "--var tokens=...: [...].value: string required, but have tuple{help}"
        )]
    );
    assert_eq!(
        Case::new().env("tokens", "{ a = { valeu = \"s3cret\" } }").problems(text),
        [format!("CUTOVER_VAR_tokens: [...]: an attribute that the type does not have (its name is not shown: the variable is sensitive){help}")]
    );
    let problems = Case::new().var("tokens", "{ a = s3cret }").problems(text);
    assert_eq!(
        problems,
        ["--var tokens=...: cannot evaluate it (not shown: the variable is sensitive) [help: the value of a variable whose type is not string, number or bool is an HCL expression: [\"a\", \"b\"], { key = \"value\" }, strings in quotes]"]
    );
}

#[test]
fn a_list_given_in_hcl_is_evaluated_as_the_configuration_is() {
    let text = "variable \"l\" {\n  type = list(number)\n}\n";
    assert_eq!(
        Case::new()
            .var("l", "[try(1 / 0, 9101), \"9\" + 1]")
            .value(text, "l"),
        json!([9101, 10])
    );
    let problems = Case::new().var("l", "[1 / 0]").problems(text);
    assert!(
        problems[0].starts_with("--var l=[1 / 0]: cannot evaluate it: ")
            && problems[0].contains("division by zero"),
        "{problems:?}"
    );
}
