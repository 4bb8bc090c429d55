//! Keeping the map file on disk in step with HAProxy's runtime map.
//!
//! `set map` changes only HAProxy's memory: a reload reads the map file again
//! and would silently undo the cut-over. So after a switch the file is
//! rewritten so that this router's key holds what HAProxy now holds. Every
//! other line — other keys, comments, blank lines — belongs to the operator
//! and is kept byte for byte, including edits not yet loaded into HAProxy.

use std::path::Path;

/// The key of a map file line, or `None` for a blank line or a comment.
///
/// HAProxy skips leading blanks, ignores lines starting with `#`, and takes the
/// key up to the first blank; the value is the rest of the line.
///
/// Byte by byte: a group of switches runs this on every line of the file.
fn key_of(line: &str) -> Option<&str> {
    let b = line.as_bytes();
    let mut end = b.len();
    while end > 0 && matches!(b[end - 1], b'\r' | b'\n') {
        end -= 1;
    }
    let start = b[..end].iter().position(|c| !matches!(c, b' ' | b'\t'))?;
    if b[start] == b'#' {
        return None;
    }
    let len = b[start..end]
        .iter()
        .position(|c| matches!(c, b' ' | b'\t'))
        .unwrap_or(end - start);
    // Blanks, `\r` and `\n` are ASCII: these are char boundaries.
    Some(&line[start..start + len])
}

/// The values `text` (a map file) holds for `key`, in order (the reference
/// for `index`, which the provider uses).
#[cfg(test)]
pub(crate) fn values_of(text: &str, key: &str) -> Vec<String> {
    text.lines()
        .filter(|line| key_of(line) == Some(key))
        .map(|line| {
            let content = line.trim_start_matches([' ', '\t']).trim_end_matches('\r');
            content[key.len()..].trim_matches([' ', '\t']).to_string()
        })
        .collect()
}

/// Every key of `text` (a map file) with its values, in order: for each key,
/// what `values_of` returns, in one pass over the file.
pub(crate) fn index(text: &str) -> std::collections::HashMap<String, Vec<String>> {
    let mut out: std::collections::HashMap<String, Vec<String>> = Default::default();
    for line in text.lines() {
        let Some(key) = key_of(line) else { continue };
        let content = line.trim_start_matches([' ', '\t']).trim_end_matches('\r');
        out.entry(key.to_string())
            .or_default()
            .push(content[key.len()..].trim_matches([' ', '\t']).to_string());
    }
    out
}

/// `text` (a map file) with the entries of `key` holding `values`, in order.
///
/// Lines of `key` beyond `values` are dropped (HAProxy no longer holds them);
/// values beyond the file's lines of `key` are appended at the end.
#[cfg(test)]
pub(crate) fn with_key_values(text: &str, key: &str, values: &[String]) -> String {
    with_keys_values(text, &[(key, values)])
}

/// `text` with each of `keys` holding its values, in one pass over the text
/// (a group of switches rewrites the file once, not once per key).
///
/// A rewrite is O(size of the file) and a group of switches makes one, so the
/// work per byte is kept small: the lines of the group's keys are found with
/// a vectorised substring search (or, for a large group, one pass over the
/// lines with a binary search among the keys), and the runs of untouched
/// lines between them are copied in one piece.
pub(crate) fn with_keys_values(text: &str, keys: &[(&str, &[String])]) -> String {
    let mut pending: Vec<(&str, std::slice::Iter<'_, String>)> = Vec::with_capacity(keys.len());
    for (k, v) in keys {
        // As a map would: a key given twice holds its last values.
        match pending.iter_mut().find(|(p, _)| p == k) {
            Some(slot) => slot.1 = v.iter(),
            None => pending.push((k, v.iter())),
        }
    }
    pending.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let names: Vec<&str> = pending.iter().map(|(k, _)| *k).collect();
    let lines = if names.len() <= SEARCH_KEYS_UP_TO {
        lines_by_search(text, &names)
    } else {
        lines_by_scan(text, &names)
    };
    let mut out = String::with_capacity(text.len() + 64 * keys.len());
    // text[..copied] has been copied to `out`, or dropped.
    let mut copied = 0;
    for KeyLine { start, end, slot } in lines {
        out.push_str(&text[copied..start]);
        copied = end;
        let Some(value) = pending[slot].1.next() else {
            continue;
        };
        // Keep the line's indentation, separator and line ending.
        let line = &text[start..end];
        let key = names[slot];
        let indent_len = line.len() - line.trim_start_matches([' ', '\t']).len();
        let after_key = &line[indent_len + key.len()..];
        let separator_len = after_key.len() - after_key.trim_start_matches([' ', '\t']).len();
        let separator = match &after_key[..separator_len] {
            "" => " ",
            s => s,
        };
        let ending = if line.ends_with("\r\n") {
            "\r\n"
        } else if line.ends_with('\n') {
            "\n"
        } else {
            ""
        };
        out.push_str(&line[..indent_len]);
        out.push_str(key);
        out.push_str(separator);
        out.push_str(value);
        out.push_str(ending);
    }
    out.push_str(&text[copied..]);
    // Values beyond the file's lines of their key, appended in the given order.
    for (key, _) in keys {
        let Ok(slot) = names.binary_search(key) else {
            continue;
        };
        for value in pending[slot].1.by_ref() {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&format!("{key} {value}\n"));
        }
    }
    out
}

/// Up to this many keys, each key's lines are found by substring search;
/// beyond, one pass over every line is cheaper.
const SEARCH_KEYS_UP_TO: usize = 16;

/// A line of the file whose key is `names[slot]`: `text[start..end]`, its
/// line ending included.
struct KeyLine {
    start: usize,
    end: usize,
    slot: usize,
}

/// The lines whose key is one of `names`, in file order: every occurrence of
/// each name is found with `memchr::memmem`, and kept when it is a line's key
/// (only blanks before it on its line, a blank or the line's end after it).
fn lines_by_search(text: &str, names: &[&str]) -> Vec<KeyLine> {
    let b = text.as_bytes();
    let mut lines = Vec::new();
    for (slot, name) in names.iter().enumerate() {
        if name.is_empty() || name.starts_with('#') || name.contains('\n') {
            continue; // never a key (key_of)
        }
        for at in memchr::memmem::find_iter(b, name.as_bytes()) {
            let mut start = at;
            while start > 0 && matches!(b[start - 1], b' ' | b'\t') {
                start -= 1;
            }
            if start > 0 && b[start - 1] != b'\n' {
                continue;
            }
            let after = at + name.len();
            let end = memchr::memchr(b'\n', &b[after..]).map_or(b.len(), |i| after + i + 1);
            // What key_of takes as the key must be exactly `name`.
            if key_of(&text[start..end]) == Some(name) {
                lines.push(KeyLine { start, end, slot });
            }
        }
    }
    lines.sort_unstable_by_key(|l| l.start);
    lines
}

/// The lines whose key is one of `names` (sorted), in file order, by one
/// pass over every line.
fn lines_by_scan(text: &str, names: &[&str]) -> Vec<KeyLine> {
    let mut lines = Vec::new();
    let mut start = 0;
    // Each line's end, its `\n` included; then the end of a last line
    // without one (empty when the text ends with `\n`, and skipped).
    let ends = memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1);
    for end in ends.chain(std::iter::once(text.len())) {
        if end == start {
            continue;
        }
        if let Some(slot) = key_of(&text[start..end]).and_then(|k| names.binary_search(&k).ok()) {
            lines.push(KeyLine { start, end, slot });
        }
        start = end;
    }
    lines
}

/// Replace the map file with `contents` (cutover_provider::atomic): a crash
/// at any moment leaves the old or the new file. A symlink is followed, so
/// the file HAProxy reads is the one replaced; its mode and owner are kept.
pub(crate) fn write_atomically(path: &Path, contents: &str) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let how = cutover_provider::atomic::Replace {
        temp_prefix: &format!(".{name}.cutover-"),
        new_mode: 0o644,
        follow_symlink: true,
    };
    cutover_provider::atomic::replace(path, contents.as_bytes(), &how)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn values(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn index_agrees_with_values_of_for_every_key() {
        let text = "# live colours\npublic blue\n\n  admin\tblue # not a comment\nother blue\r\npublic  green \n#x y\n";
        let index = index(text);
        for key in ["public", "admin", "other", "missing", "#x"] {
            assert_eq!(
                index.get(key).cloned().unwrap_or_default(),
                values_of(text, key),
                "{key}"
            );
        }
        assert_eq!(index.len(), 3);
    }

    #[test]
    fn replaces_the_key_and_keeps_everything_else() {
        let text = "# live colours\npublic blue\n\n  admin\tblue # not a comment\nother blue\n";
        assert_eq!(
            with_key_values(text, "public", &values(&["green"])),
            "# live colours\npublic green\n\n  admin\tblue # not a comment\nother blue\n"
        );
        assert_eq!(
            with_key_values(text, "admin", &values(&["green"])),
            "# live colours\npublic blue\n\n  admin\tgreen\nother blue\n"
        );
    }

    #[test]
    fn several_keys_in_one_pass_match_one_at_a_time() {
        let text = "# live\npublic blue\nadmin blue\nother green\n";
        let (g, b) = (values(&["green"]), values(&["blue"]));
        let once = with_keys_values(text, &[("admin", &g), ("new", &b), ("public", &g)]);
        let stepwise = with_key_values(
            &with_key_values(&with_key_values(text, "admin", &g), "new", &b),
            "public",
            &g,
        );
        assert_eq!(once, stepwise);
        assert_eq!(
            once,
            "# live\npublic green\nadmin green\nother green\nnew blue\n"
        );
    }

    #[test]
    fn appends_a_missing_key() {
        assert_eq!(
            with_key_values("other blue", "public", &values(&["green"])),
            "other blue\npublic green\n"
        );
        assert_eq!(
            with_key_values("", "public", &values(&["green"])),
            "public green\n"
        );
    }

    #[test]
    fn commented_key_is_not_an_entry() {
        assert_eq!(
            with_key_values("#public blue\n", "public", &values(&["green"])),
            "#public blue\npublic green\n"
        );
    }

    #[test]
    fn keeps_crlf_and_drops_surplus_lines() {
        assert_eq!(
            with_key_values(
                "public blue\r\npublic blue\r\n",
                "public",
                &values(&["green"])
            ),
            "public green\r\n"
        );
    }

    /// The rewrite as first written (a line at a time, hashing every key),
    /// kept as the reference for the faster one.
    fn reference(text: &str, keys: &[(&str, &[String])]) -> String {
        fn key(line: &str) -> Option<&str> {
            let content = line
                .trim_start_matches([' ', '\t'])
                .trim_end_matches(['\r', '\n']);
            if content.is_empty() || content.starts_with('#') {
                return None;
            }
            content.split([' ', '\t']).next()
        }
        let mut pending: std::collections::HashMap<&str, std::slice::Iter<'_, String>> =
            keys.iter().map(|(k, v)| (*k, v.iter())).collect();
        let mut out = String::new();
        for line in text.split_inclusive('\n') {
            let Some((k, values)) = key(line).and_then(|k| pending.get_mut(k).map(|v| (k, v)))
            else {
                out.push_str(line);
                continue;
            };
            let Some(value) = values.next() else { continue };
            let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
            let after = &line[indent + k.len()..];
            let sep_len = after.len() - after.trim_start_matches([' ', '\t']).len();
            let sep = if sep_len == 0 { " " } else { &after[..sep_len] };
            let ending = if line.ends_with("\r\n") {
                "\r\n"
            } else if line.ends_with('\n') {
                "\n"
            } else {
                ""
            };
            out.push_str(&format!("{}{k}{sep}{value}{ending}", &line[..indent]));
        }
        for (k, _) in keys {
            if let Some(values) = pending.get_mut(k) {
                for value in values.by_ref() {
                    if !out.is_empty() && !out.ends_with('\n') {
                        out.push('\n');
                    }
                    out.push_str(&format!("{k} {value}\n"));
                }
            }
        }
        out
    }

    #[test]
    fn the_one_pass_rewrite_agrees_with_the_reference() {
        // Indentation, tabs, CRLF, comments, blank lines, repeated keys, keys
        // that are prefixes of others, and a last line without a newline.
        let mut text = String::from("# live colours\n\n");
        for i in 0..300 {
            match i % 7 {
                0 => text.push_str(&format!("  r_{i}\tblue\n")),
                1 => text.push_str(&format!("r_{i} blue\r\n")),
                2 => text.push_str(&format!("#r_{i} green\n")),
                3 => text.push_str(&format!("r_{i} blue\nr_{i} blue\n")),
                4 => text.push_str(&format!("r_{i}\n")),
                _ => text.push_str(&format!("r_{i} blue\n")),
            }
        }
        text.push_str("r_1 blue");
        let (g, two, none) = (
            values(&["green"]),
            values(&["green", "green2"]),
            values(&[]),
        );
        let groups: Vec<Vec<(&str, &[String])>> = vec![
            vec![("r_0", &g)],
            vec![("r_1", &g), ("r_10", &two), ("r_100", &none)],
            vec![("r_3", &g), ("r_2", &g), ("r_4", &two), ("missing", &two)],
            vec![("r_299", &none), ("r_298", &two), ("r_1", &none)],
            vec![("r_5", &g), ("r_5", &two)],
            vec![
                ("r_4\nr_5", &g),
                ("\nr_8", &g),
                ("r_9 ", &g),
                ("#r_2", &g),
                ("", &g),
            ],
            vec![],
        ];
        // Groups larger than SEARCH_KEYS_UP_TO take the line-by-line path.
        let names: Vec<String> = (0..40).map(|i| format!("r_{}", i * 7 % 300)).collect();
        let mut big: Vec<(&str, &[String])> = names
            .iter()
            .enumerate()
            .map(|(i, k)| (k.as_str(), [&g, &two, &none][i % 3].as_slice()))
            .collect();
        big.push(("missing", &two));
        assert!(big.len() > SEARCH_KEYS_UP_TO);
        let mut groups = groups;
        groups.push(big.clone());
        groups.push(big[..SEARCH_KEYS_UP_TO].to_vec());
        for keys in groups {
            assert_eq!(
                with_keys_values(&text, &keys),
                reference(&text, &keys),
                "{keys:?}"
            );
        }
        assert_eq!(
            with_keys_values("", &[("a", &g)]),
            reference("", &[("a", &g)])
        );
    }

    #[test]
    fn key_prefix_is_another_key() {
        assert_eq!(
            with_key_values("publicity blue\n", "public", &values(&["green"])),
            "publicity blue\npublic green\n"
        );
    }

    #[test]
    fn atomic_write_keeps_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.map");
        fs::write(&path, "public blue\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomically(&path, "public green\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "public green\n");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }
}
