//! Caddy's config JSON (what `GET /config/` and `GET /id/ID` send): any JSON
//! value, searched for cutover's route, and the change that points it at a
//! colour planned from it. Never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(config) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let dials = ["127.0.0.1:9102".to_string()];
    cutover_caddy::fuzzing::config(&config, "cutover-public", &dials);
});
