//! Reading the configuration directory: every `*.hcl` file, in name order,
//! parsed with hcl-edit so that every node keeps its byte span.

use std::path::{Path, PathBuf};

use hcl_edit::structure::Body;

use super::diag::Diagnostic;
use super::model::Span;
use super::source::SourceMap;

/// One parsed configuration file.
pub(crate) struct File {
    /// The name relative to the configuration directory, as used in spans.
    pub name: PathBuf,
    /// The parsed body.
    pub body: Body,
}

/// Read every `*.hcl` file in `dir`, in name order, as (name relative to
/// `dir`, text). Files that cannot be read are reported and left out.
pub(crate) fn read_dir(dir: &Path, diags: &mut Vec<Diagnostic>) -> Vec<(PathBuf, String)> {
    let mut names = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "hcl"))
            .collect::<Vec<_>>(),
        Err(e) => {
            diags.push(Diagnostic::new(format!(
                "cannot read the configuration directory {}: {e}",
                dir.display()
            )));
            return Vec::new();
        }
    };
    names.sort();
    if names.is_empty() {
        diags.push(
            Diagnostic::new(format!("no *.hcl files in {}", dir.display()))
                .with_help("write the configuration in a file such as main.hcl, or choose another directory with -C DIR"),
        );
    }
    let mut texts = Vec::new();
    for path in names {
        let name = path.strip_prefix(dir).unwrap_or(&path).to_path_buf();
        match read_text(&path, &name) {
            Ok(text) => texts.push((name, text)),
            Err(d) => diags.push(*d),
        }
    }
    texts
}

/// The text of the file at `path` (shown as `name`): a file that is not
/// UTF-8 is an error at the line and column of its first bad byte.
pub fn read_text(path: &Path, name: &Path) -> Result<String, Box<Diagnostic>> {
    let bytes = std::fs::read(path).map_err(|e| {
        Box::new(Diagnostic::new(format!(
            "cannot read {}: {e}",
            path.display()
        )))
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        let before = &bytes[..at];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = before.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        // The column in characters: what comes before on the line is valid.
        let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
        let mut d = Diagnostic::new(format!(
            "{} is not UTF-8 text: byte 0x{:02x} cannot start or continue a character",
            name.display(),
            bytes[at]
        ))
        .with_help("cutover reads configuration files as UTF-8; convert the file (e.g. iconv -f latin1 -t utf-8)");
        d.span = Some(Span {
            file: name.to_path_buf(),
            line,
            column,
            start: at,
            end: at + 1,
        });
        Box::new(d)
    })
}

/// Parse every (name, text) in order. Files that fail to parse are reported
/// and left out; the others are still checked.
pub(crate) fn parse_all(
    texts: Vec<(PathBuf, String)>,
    map: &mut SourceMap,
    diags: &mut Vec<Diagnostic>,
) -> Vec<File> {
    let mut files = Vec::new();
    for (name, text) in texts {
        if let Some(body) = parse_text(&name, text, map, diags) {
            files.push(File { name, body });
        }
    }
    files
}

/// Parse `text` as the file `name`, recording it in `map`. A syntax error is
/// reported at its position and gives `None`.
pub(crate) fn parse_text(
    name: &Path,
    text: String,
    map: &mut SourceMap,
    diags: &mut Vec<Diagnostic>,
) -> Option<Body> {
    parse_text_with(
        name,
        text,
        map,
        diags,
        PARSE_LIMIT,
        hcl_edit::parser::parse_body,
    )
}

/// How long one file's parse may take. hcl-edit's parser backtracks; on
/// inputs the fuzzer found (a few hundred bytes of nested, unclosed `[`, `{`,
/// `%{` and heredocs) upstream's ran for seconds to minutes. The vendored
/// copy parses each of them in milliseconds (vendor/hcl-edit/CUTOVER.md);
/// the limit stays for whatever shape backtracks still, so that a command
/// ends with a located error instead of hanging. A real configuration
/// parses in milliseconds.
pub(crate) const PARSE_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// What parses a file's text (hcl-edit's `parse_body`; a test gives one
/// that never finishes).
type ParseBody = fn(&str) -> Result<Body, hcl_edit::parser::Error>;

/// [`parse_text`], giving up after `limit`: the parse runs on a thread of
/// its own, left to finish by itself (the command fails at once).
#[cfg(test)]
pub(crate) fn parse_text_within(
    name: &Path,
    text: String,
    map: &mut SourceMap,
    diags: &mut Vec<Diagnostic>,
    limit: std::time::Duration,
) -> Option<Body> {
    parse_text_with(name, text, map, diags, limit, hcl_edit::parser::parse_body)
}

/// [`parse_text_within`] with `parse` for hcl-edit's `parse_body`.
pub(crate) fn parse_text_with(
    name: &Path,
    text: String,
    map: &mut SourceMap,
    diags: &mut Vec<Diagnostic>,
    limit: std::time::Duration,
    parse: ParseBody,
) -> Option<Body> {
    let parsed = bounded(&text, limit, parse);
    let deepest = parsed.is_none().then(|| deepest_nesting(&text));
    map.add(name.to_path_buf(), text);
    let Some(parsed) = parsed else {
        let (offset, depth) = deepest.unwrap_or_default();
        let span = map.span(name, offset..offset + 1);
        diags.push(map.diag(&span, gave_up(limit, depth)));
        return None;
    };
    match parsed {
        Ok(body) => Some(body),
        Err(e) => {
            let loc = e.location();
            let span = Span {
                file: name.to_path_buf(),
                line: loc.line(),
                column: loc.column(),
                start: loc.offset(),
                end: loc.offset() + 1,
            };
            diags.push(map.diag(&span, format!("syntax error: {}", e.message())));
            None
        }
    }
}

/// hcl-edit's `parse_body` of `text` on a thread of its own; `None` when it
/// did not finish within `limit` (the thread is left to finish by itself).
pub(crate) fn parse_body_within(
    text: &str,
    limit: std::time::Duration,
) -> Option<Result<Body, hcl_edit::parser::Error>> {
    bounded(text, limit, hcl_edit::parser::parse_body)
}

/// `parse` of `text` on a thread of its own; `None` when it did not finish
/// within `limit`.
fn bounded(
    text: &str,
    limit: std::time::Duration,
    parse: ParseBody,
) -> Option<Result<Body, hcl_edit::parser::Error>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let owned = text.to_owned();
    let spawned = std::thread::Builder::new()
        .name("hcl-parse".into())
        .spawn(move || {
            let _ = tx.send(parse(&owned));
        });
    match spawned {
        Ok(_) => rx.recv_timeout(limit).ok(),
        // No thread: parse here, unbounded.
        Err(_) => Some(parse(text)),
    }
}

/// The diagnostic's words for a parse that did not finish within `limit`.
pub(crate) fn gave_up(limit: std::time::Duration, depth: usize) -> String {
    format!(
        "the HCL parser did not finish within {}s; nothing was read (brackets nest deepest here, {depth} deep)",
        limit.as_secs().max(1)
    )
}

/// Where brackets (`[`, `{`, `(`) nest deepest in `text`, counted without
/// regard to strings or comments (for a message only): the byte offset and
/// the depth.
pub(crate) fn deepest_nesting(text: &str) -> (usize, usize) {
    let (mut depth, mut best) = (0usize, (0usize, 0usize));
    for (i, c) in text.char_indices() {
        match c {
            '[' | '{' | '(' => {
                depth += 1;
                if depth > best.1 {
                    best = (i, depth);
                }
            }
            ']' | '}' | ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    best
}
