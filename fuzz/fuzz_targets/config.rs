//! Config parsing and evaluation on arbitrary text: every input must end in
//! a `Loaded` or in diagnostics, never in a panic. hcl-rs arithmetic panics
//! that the config layer catches on purpose (its `guarded` evaluation) are
//! silenced there and do not reach libFuzzer; any other panic aborts.
#![no_main]

use std::path::{Path, PathBuf};

use cutover::config::{load_sources, VarInputs};
use libfuzzer_sys::fuzz_target;

/// Brackets nested deeper than this are left to the parse limit
/// (config::parse::PARSE_LIMIT, 10 s, tested by the regression test of
/// src/config/testdata/slow-parse.hcl): hcl-edit backtracks on deep,
/// unclosed nesting for seconds, each such parse goes on on a thread of its
/// own after the limit, and the fuzzer, drawn to them, made 60 executions a
/// second instead of thousands. No real configuration nests this deep.
/// 24 let through a slow input nested exactly 24 deep (234 bytes of
/// `s =[  f%z[ f%i%{d%i%{dconcat...`), which held two fuzzers at a crawl for
/// their last 40 minutes (fuzz/README.md): 20 now.
const MAX_NESTING: usize = 20;

/// The deepest nesting of `[`, `{` and `(` in `data`.
fn nesting(data: &[u8]) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for b in data {
        match b {
            b'[' | b'{' | b'(' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

fuzz_target!(|data: &[u8]| {
    if nesting(data) > MAX_NESTING {
        return;
    }
    // Files are read with `read_to_string`, so non-UTF-8 bytes never reach
    // the parser: a lossy conversion keeps the rest of the input useful.
    let text = String::from_utf8_lossy(data).into_owned();
    let files = vec![(PathBuf::from("main.hcl"), text)];
    if let Err(diags) = load_sources(Path::new("fuzz"), files, &VarInputs::default()) {
        // Rendering diagnostics (carets, columns) is part of what users see.
        let _ = diags.to_string();
    }
});
