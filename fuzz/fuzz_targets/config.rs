//! Config parsing and evaluation on arbitrary text: every input must end in
//! a `Loaded` or in diagnostics, never in a panic. hcl-rs arithmetic panics
//! that the config layer catches on purpose (its `guarded` evaluation) are
//! silenced there and do not reach libFuzzer; any other panic aborts.
#![no_main]

use std::path::{Path, PathBuf};

use cutover::config::{load_sources, VarInputs};
use libfuzzer_sys::fuzz_target;

// Every input reaches the parser, however deep it nests. Until 6c5be38 the
// target left out inputs nested deeper than 24, then 20: upstream hcl-edit
// backtracked on them for seconds to minutes, each such parse went on on a
// thread of its own after config::parse::PARSE_LIMIT, and two campaigns
// stalled on them (fuzz/README.md). The vendored hcl-edit parses each
// template element once (vendor/hcl-edit/CUTOVER.md); those inputs are now
// regression tests (src/config/backtracking_tests.rs).

fuzz_target!(|data: &[u8]| {
    // Files are read with `read_to_string`, so non-UTF-8 bytes never reach
    // the parser: a lossy conversion keeps the rest of the input useful.
    let text = String::from_utf8_lossy(data).into_owned();
    let files = vec![(PathBuf::from("main.hcl"), text)];
    if let Err(diags) = load_sources(Path::new("fuzz"), files, &VarInputs::default()) {
        // Rendering diagnostics (carets, columns) is part of what users see.
        let _ = diags.to_string();
    }
});
