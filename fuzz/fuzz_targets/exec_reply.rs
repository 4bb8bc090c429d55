//! The exec protocol's replies (docs/exec-protocol.md): arbitrary bytes on a
//! command's stdout, decoded as each reply of environment and router
//! commands. Never a panic; every refusal is a message.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cutover_exec::fuzzing::replies(data);
});
