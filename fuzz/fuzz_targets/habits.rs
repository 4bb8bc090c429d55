//! The rewriting of Terraform's single-dash habits (src/cli/habits.rs) on
//! arbitrary argument lists: never a panic; what it accepts it rewrites
//! once and for all (rewriting the result again changes nothing), and it
//! never adds or drops an argument.
#![no_main]

use std::ffi::OsString;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // NUL separates the arguments; the program name comes first, as in argv.
    let mut args: Vec<OsString> = vec!["cutover".into()];
    args.extend(
        data.split(|b| *b == 0)
            .map(|a| OsString::from(String::from_utf8_lossy(a).into_owned())),
    );
    let Ok(rewritten) = cutover::cli::rewrite_args_for_fuzzing(args.clone()) else {
        return;
    };
    assert_eq!(rewritten.len(), args.len(), "{args:?} -> {rewritten:?}");
    let again = cutover::cli::rewrite_args_for_fuzzing(rewritten.clone());
    assert_eq!(
        again.as_ref(),
        Ok(&rewritten),
        "not stable: {args:?} -> {rewritten:?}"
    );
});
