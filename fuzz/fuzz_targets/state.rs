//! State-file loading on arbitrary bytes: never a panic, and a state that
//! loads must survive `to_bytes` -> `from_bytes` unchanged, with the second
//! write byte for byte the same as the first.
#![no_main]

use std::path::Path;

use cutover::state::{from_bytes, to_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("cutover.state.json");
    let state = match from_bytes(path, data) {
        Ok(state) => state,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let bytes = to_bytes(&state);
    let again = from_bytes(path, &bytes).expect("written state must load again");
    assert_eq!(again, state, "state changed across a round trip");
    assert_eq!(to_bytes(&again), bytes, "state bytes are not stable");
});
