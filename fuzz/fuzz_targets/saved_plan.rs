//! Saved-plan loading (`apply PLANFILE`) on arbitrary bytes: never a panic,
//! and a plan that loads must load again, unchanged, once written back.
#![no_main]

use std::path::Path;

use cutover::plan::saved::{from_bytes, SAVED_PLAN_VERSION};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("plan.out");
    let planned = match from_bytes(path, data) {
        Ok(planned) => planned,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    // The shape `plan::saved::write` gives the file: the plan flattened,
    // beside its format version.
    let mut value = serde_json::to_value(&planned).expect("a plan serializes");
    value["saved_plan_version"] = SAVED_PLAN_VERSION.into();
    let bytes = serde_json::to_vec_pretty(&value).expect("a Value serializes");
    let again = from_bytes(path, &bytes).expect("a written plan must load again");
    assert_eq!(again, planned, "plan changed across a round trip");
});
