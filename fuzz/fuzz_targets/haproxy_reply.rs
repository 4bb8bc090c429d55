//! HAProxy's runtime-API replies (`show map`, `get map`, `show backend`,
//! `show stat`, `show map` lists, a pipelined answer's prompts) and its map
//! file, on arbitrary text: never a panic; a key written into a map file
//! reads back with exactly the values written.
#![no_main]

use cutover_haproxy::fuzzing::{map_file, runtime_reply};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // The first byte picks how many replies a pipelined answer holds.
    let count = data.first().map_or(1, |b| usize::from(b % 4) + 1);
    runtime_reply(&text, "green", count);
    // The map file: the input is its text; the key and values written are
    // words taken from the input's last line, as cutover's own are words.
    let words: Vec<String> = text
        .lines()
        .last()
        .unwrap_or("")
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    let (key, values) = match words.split_first() {
        Some((key, values)) => (key.clone(), values.to_vec()),
        None => ("public".to_string(), vec!["green".to_string()]),
    };
    map_file(&text, &key, &values);
});
