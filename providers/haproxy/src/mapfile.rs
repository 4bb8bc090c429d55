//! Keeping the map file on disk in step with HAProxy's runtime map.
//!
//! `set map` changes only HAProxy's memory: a reload reads the map file again
//! and would silently undo the cut-over. So after a switch the file is
//! rewritten so that this router's key holds what HAProxy now holds. Every
//! other line — other keys, comments, blank lines — belongs to the operator
//! and is kept byte for byte, including edits not yet loaded into HAProxy.

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The key of a map file line, or `None` for a blank line or a comment.
///
/// HAProxy skips leading blanks, ignores lines starting with `#`, and takes the
/// key up to the first blank; the value is the rest of the line.
fn key_of(line: &str) -> Option<&str> {
    let content = line
        .trim_start_matches([' ', '\t'])
        .trim_end_matches(['\r', '\n']);
    if content.is_empty() || content.starts_with('#') {
        return None;
    }
    content.split([' ', '\t']).next()
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
pub(crate) fn with_keys_values(text: &str, keys: &[(&str, &[String])]) -> String {
    let mut pending: std::collections::HashMap<&str, std::slice::Iter<'_, String>> =
        keys.iter().map(|(k, v)| (*k, v.iter())).collect();
    let mut out = String::with_capacity(text.len() + 64 * keys.len());
    for line in text.split_inclusive('\n') {
        let Some((key, values)) = key_of(line).and_then(|k| pending.get_mut(k).map(|v| (k, v)))
        else {
            out.push_str(line);
            continue;
        };
        let Some(value) = values.next() else {
            continue;
        };
        // Keep the line's indentation, separator and line ending.
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
    // Values beyond the file's lines of their key, appended in the given order.
    for (key, _) in keys {
        let Some(values) = pending.get_mut(key) else {
            continue;
        };
        for value in values.by_ref() {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&format!("{key} {value}\n"));
        }
    }
    out
}

/// Replace the file at `path` with `contents` so that a crash at any moment
/// leaves either the old or the new file: write a temporary file in the same
/// directory, give it the old file's mode and owner, fsync, rename, fsync the
/// directory. A symlink is followed, so the file it points to is replaced.
pub(crate) fn write_atomically(path: &Path, contents: &str) -> std::io::Result<()> {
    let target: PathBuf = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{name}.cutover-"))
        .tempfile_in(dir)?;
    temp.write_all(contents.as_bytes())?;
    if let Ok(old) = fs::metadata(&target) {
        temp.as_file().set_permissions(old.permissions())?;
        // Only root may give a file away; when cutover runs as the file's
        // owner this changes nothing, and when it may not, the new file stays
        // readable by HAProxy through the mode copied above.
        let _ = std::os::unix::fs::fchown(temp.as_file(), Some(old.uid()), Some(old.gid()));
    }
    temp.as_file().sync_all()?;
    temp.persist(&target).map_err(|e| e.error)?;
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

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
