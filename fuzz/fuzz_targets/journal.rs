//! The journal a killed apply leaves beside the state (docs/state.md), on
//! arbitrary text, compared with a fixed state and with none: never a panic;
//! a journal that unfolds moves the serial forward, and the state it gives
//! writes and loads again unchanged; every problem is a message.
#![no_main]

use std::path::Path;

use cutover::state::journal::{compare_for_fuzzing, Found};
use cutover::state::{from_bytes, to_bytes};
use libfuzzer_sys::fuzz_target;

/// The state the journal extends: lineage `l`, serial 3, one environment
/// and one router (fuzz/journal-base.json; corpus/journal holds journals with its header).
const BASE: &str = include_str!("../journal-base.json");

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let path = Path::new("cutover.state.json");
    let base = from_bytes(path, BASE.as_bytes()).expect("the base state loads");
    for state in [Some(&base), None] {
        match compare_for_fuzzing(&text, state) {
            Found::Unfolded(u) => {
                assert!(
                    u.to_serial > u.from_serial,
                    "an unfolded journal moves the serial on"
                );
                assert_eq!(u.state.serial, u.to_serial);
                assert_eq!(
                    u.state.lineage, base.lineage,
                    "a fold never changes the lineage"
                );
                let bytes = to_bytes(&u.state);
                let again = from_bytes(path, &bytes).expect("a folded state loads again");
                assert_eq!(again, u.state, "folded state changed across a round trip");
            }
            found => {
                if let Some(problem) = found.problem() {
                    let _ = problem.to_string();
                }
            }
        }
    }
});
