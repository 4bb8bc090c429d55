//! Terraform's single-dash habits (`-out=plan.bin`, `-var x=1`,
//! `-auto-approve`): read as Terraform reads them, or refused with a
//! one-line hint, never misread. clap alone would read `-out=plan.bin` as
//! `-o ut=plan.bin` (a plan saved to `ut=plan.bin`).
//!
//! Before clap sees the arguments, a single-dash word that is one of
//! cutover's own long flags (`-out`, `-var-file`, `-lock-timeout`, ...: every
//! long name of the command line, so the list cannot drift) becomes that
//! long flag. A Terraform flag cutover has no equivalent of (`-input=false`,
//! `-target=...`) is refused with what to do instead, and any other
//! single-dash word is refused with the nearest long flag. What follows
//! `--`, and the value of a flag that takes one (`--var -json`), are
//! left as they are.

use std::collections::BTreeSet;
use std::ffi::OsString;

/// Terraform flags without a cutover equivalent, and what to do instead.
const TERRAFORM_ONLY: &[(&str, &str)] = &[
    (
        "input",
        "cutover never asks for input without a terminal (apply needs --auto-approve or a saved plan); drop it",
    ),
    (
        "lock",
        "cutover always takes the state lock; drop it (--lock-timeout waits for a held one)",
    ),
    (
        "target",
        "cutover has no -target: it always plans the whole configuration (rollback takes router names)",
    ),
    (
        "replace",
        "cutover has no -replace: change the release of the idle colour instead",
    ),
    (
        "refresh",
        "cutover always reads the live world; --refresh-only records it without changing anything",
    ),
    (
        "state",
        "the state's place is set in the configuration: cutover { state = \"...\" } or a backend block",
    ),
    (
        "state-out",
        "the state's place is set in the configuration: cutover { state = \"...\" } or a backend block",
    ),
    (
        "backup",
        "cutover keeps no backup file: the state is written atomically and its journal survives a crash",
    ),
    ("compact-warnings", "cutover has no -compact-warnings; drop it"),
    (
        "destroy",
        "cutover has no -destroy: remove the blocks from the configuration and plan",
    ),
];

/// Why the arguments were refused: a one-line hint.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused(pub String);

/// The arguments with Terraform's single-dash long flags made cutover's
/// (`-out=F` -> `--out=F`), or why they cannot be read.
pub fn rewrite(command: &clap::Command, args: Vec<OsString>) -> Result<Vec<OsString>, Refused> {
    let (longs, with_value) = long_flags(command);
    let mut out = Vec::with_capacity(args.len());
    let mut iter = args.into_iter();
    // The program name.
    out.extend(iter.next());
    let mut value_next = false;
    let mut rest = false;
    for arg in iter {
        let Some(text) = arg.to_str().map(str::to_owned) else {
            out.push(arg);
            value_next = false;
            continue;
        };
        if rest || value_next || text == "-" || !text.starts_with('-') {
            value_next = false;
            out.push(arg);
            continue;
        }
        if text == "--" {
            rest = true;
            out.push(arg);
            continue;
        }
        if let Some(long) = text.strip_prefix("--") {
            value_next = with_value.contains(long);
            out.push(arg);
            continue;
        }
        let word = &text[1..];
        let (name, value) = match word.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (word, None),
        };
        // A short flag, maybe with its value attached (`-C`, `-Cdeploy`,
        // `-o`): clap's own; a word that is not a flag name at all
        // (`-1`, a negative number) too.
        let is_word = name.len() > 1
            && name.chars().all(|c| c.is_ascii_lowercase() || c == '-')
            && !name.starts_with('-');
        if !is_word {
            value_next = value.is_none() && name.len() == 1 && short_takes_value(command, name);
            out.push(arg);
            continue;
        }
        if longs.contains(name) {
            value_next = value.is_none() && with_value.contains(name);
            out.push(OsString::from(format!("-{text}")));
            continue;
        }
        if let Some((_, hint)) = TERRAFORM_ONLY.iter().find(|(n, _)| *n == name) {
            return Err(Refused(format!("-{name}: {hint}")));
        }
        let nearest = longs
            .iter()
            .map(|l| (strsim::jaro_winkler(l, name), l))
            .filter(|(score, _)| *score > 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let hint = match nearest {
            Some((_, long)) => format!("-{name}: not a flag of cutover; did you mean --{long}?"),
            None => format!(
                "-{name}: not a flag of cutover (its long flags take two dashes: `cutover --help` lists them)"
            ),
        };
        return Err(Refused(hint));
    }
    Ok(out)
}

/// Every long flag name of `command` and its subcommands, and those that
/// take a value.
fn long_flags(command: &clap::Command) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut longs = BTreeSet::new();
    let mut with_value = BTreeSet::new();
    let mut stack = vec![command];
    while let Some(cmd) = stack.pop() {
        for arg in cmd.get_arguments() {
            if let Some(long) = arg.get_long() {
                longs.insert(long.to_owned());
                if arg.get_action().takes_values() {
                    with_value.insert(long.to_owned());
                }
            }
        }
        stack.extend(cmd.get_subcommands());
    }
    // Added by clap itself.
    longs.insert("help".to_owned());
    longs.insert("version".to_owned());
    (longs, with_value)
}

/// Whether the short flag `-name` takes a value (`-C DIR`, `-o FILE`).
fn short_takes_value(command: &clap::Command, name: &str) -> bool {
    let mut stack = vec![command];
    while let Some(cmd) = stack.pop() {
        for arg in cmd.get_arguments() {
            if arg.get_short().map(String::from).as_deref() == Some(name) {
                return arg.get_action().takes_values();
            }
        }
        stack.extend(cmd.get_subcommands());
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Vec<String>, String> {
        let args = std::iter::once("cutover")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        rewrite(&super::super::command(), args)
            .map(|v| {
                v.into_iter()
                    .skip(1)
                    .map(|a| a.into_string().unwrap())
                    .collect()
            })
            .map_err(|r| r.0)
    }

    #[test]
    fn terraform_s_single_dash_flags_become_cutover_s() {
        let cases: &[(&[&str], &[&str])] = &[
            (&["plan", "-out=plan.bin"], &["plan", "--out=plan.bin"]),
            (
                &["plan", "-out", "plan.bin"],
                &["plan", "--out", "plan.bin"],
            ),
            (&["plan", "-var", "x=1"], &["plan", "--var", "x=1"]),
            (&["plan", "-var=x=1"], &["plan", "--var=x=1"]),
            (&["plan", "-var-file=a.hcl"], &["plan", "--var-file=a.hcl"]),
            (&["apply", "-auto-approve"], &["apply", "--auto-approve"]),
            (
                &["apply", "-lock-timeout=30s"],
                &["apply", "--lock-timeout=30s"],
            ),
            (
                &["plan", "-detailed-exitcode"],
                &["plan", "--detailed-exitcode"],
            ),
            (&["plan", "-json"], &["plan", "--json"]),
            (&["plan", "-no-color"], &["plan", "--no-color"]),
            (&["-chdir=deploy", "plan"], &["--chdir=deploy", "plan"]),
            (&["plan", "-refresh-only"], &["plan", "--refresh-only"]),
        ];
        for (given, wanted) in cases {
            let wanted: Vec<String> = wanted.iter().map(|w| (*w).to_owned()).collect();
            assert_eq!(run(given), Ok(wanted), "{given:?}");
        }
    }

    #[test]
    fn short_flags_values_and_what_follows_two_dashes_are_left_alone() {
        let same: &[&[&str]] = &[
            &["-C", "deploy", "plan"],
            &["-Cdeploy", "plan"],
            &["plan", "-o", "plan.bin"],
            &["plan", "--var", "-json"],
            &["plan", "-var", "-json"],
            &["plan", "--out", "-out"],
            &["plan", "-h"],
            &["state", "show", "--", "-json"],
        ];
        for args in same {
            let got = run(args).unwrap();
            let want: Vec<String> = args
                .iter()
                .map(|a| {
                    // Only the flags themselves are rewritten.
                    if *a == "-var" {
                        "--var".to_owned()
                    } else {
                        (*a).to_owned()
                    }
                })
                .collect();
            assert_eq!(got, want, "{args:?}");
        }
    }

    #[test]
    fn terraform_only_and_unknown_single_dash_words_get_one_line_hints() {
        let err = run(&["apply", "-input=false"]).unwrap_err();
        assert!(err.starts_with("-input: cutover never asks"), "{err}");
        let err = run(&["plan", "-target=router.public"]).unwrap_err();
        assert!(err.contains("no -target"), "{err}");
        let err = run(&["plan", "-outt=x"]).unwrap_err();
        assert_eq!(err, "-outt: not a flag of cutover; did you mean --out?");
        let err = run(&["plan", "-output"]).unwrap_err();
        assert!(err.contains("did you mean --out"), "{err}");
        let err = run(&["plan", "-zzz"]).unwrap_err();
        assert!(err.contains("two dashes"), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }
}
