//! Canonical formatting of configuration files, for `cutover fmt`.
//!
//! hcl-edit parses the file (so a file that does not parse is reported, never
//! guessed at) and its spans tell where every block, attribute, object item,
//! bracketed expression and heredoc is. The text is then rewritten line by
//! line: indentation from the nesting of blocks and brackets, `=` aligned
//! within runs of single-line attributes, block headers spaced, blank lines
//! collapsed, trailing whitespace removed. Working on lines rather than on
//! printed tree nodes is what keeps every comment exactly where it was:
//! comments are only ever re-indented, never moved or rebuilt. Heredoc bodies
//! and the inside of `/* */` comments are kept as written.
//!
//! Invariant: `format(format(x)) == format(x)`. Every rule is a function of
//! the tree (which formatting does not change) and of the line structure
//! (which formatting changes only by dropping blank lines, which no rule
//! reads except alignment runs, and those are broken by a blank line either
//! way).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use hcl_edit::expr::{Array, Expression, ForExpr, FuncCall, Object, ObjectKey};
use hcl_edit::expr::{ObjectValueAssignment, Parenthesis};
use hcl_edit::structure::{Block, Body, Structure};
use hcl_edit::template::{HeredocTemplate, StringTemplate};
use hcl_edit::visit::{self, Visit};
use hcl_edit::Span as _;

use super::diag::Diagnostic;
use super::model::Span;

/// One indentation level: two spaces, as `terraform fmt`.
const INDENT: &str = "  ";

/// Format the text of the configuration file `name` (`name` only names it in
/// the diagnostic). A file that does not parse gives a diagnostic at the
/// place of the syntax error.
pub fn format_source(name: &Path, text: &str) -> Result<String, Box<Diagnostic>> {
    let limit = super::parse::PARSE_LIMIT;
    let Some(parsed) = super::parse::parse_body_within(text, limit) else {
        let (offset, depth) = super::parse::deepest_nesting(text);
        let line = text[..offset].matches('\n').count() + 1;
        let column = text[..offset]
            .rsplit('\n')
            .next()
            .map_or(0, |l| l.chars().count())
            + 1;
        return Err(Box::new(Diagnostic {
            message: super::parse::gave_up(limit, depth),
            span: Some(Span {
                file: name.to_path_buf(),
                line,
                column,
                start: offset,
                end: offset + 1,
            }),
            source_line: text.lines().nth(line - 1).map(str::to_string),
            help: Some("the file was left as it is".into()),
        }));
    };
    let body = parsed.map_err(|e| {
        let loc = e.location();
        let line = loc.line();
        Box::new(Diagnostic {
            message: format!("syntax error: {}", e.message()),
            span: Some(Span {
                file: name.to_path_buf(),
                line,
                column: loc.column(),
                start: loc.offset(),
                end: loc.offset() + 1,
            }),
            source_line: text.lines().nth(line.saturating_sub(1)).map(str::to_string),
            help: Some("fix the syntax error; the file was left as it is".into()),
        })
    })?;
    let crlf = line_ends(name, text)?;
    let lines = Lines::new(text);
    let mut layout = Layout::default();
    layout.visit_body(&body);
    layout.find_block_comments(text);
    let mut formatted = layout.render(text, &lines);
    if crlf {
        formatted = formatted.replace('\n', "\r\n");
    }
    same_values(name, text, &formatted)?;
    Ok(formatted)
}

/// Whether the file's lines end with CRLF (every one of them); a file that
/// mixes CRLF and LF is an error at its first line that differs, since
/// choosing one would change the value of a heredoc written with the other.
fn line_ends(name: &Path, text: &str) -> Result<bool, Box<Diagnostic>> {
    let ends: Vec<(usize, bool)> = text
        .match_indices('\n')
        .map(|(i, _)| (i, i > 0 && text.as_bytes()[i - 1] == b'\r'))
        .collect();
    let Some(&(_, first)) = ends.first() else {
        return Ok(false);
    };
    match ends.iter().position(|&(_, crlf)| crlf != first) {
        None => Ok(first),
        Some(n) => Err(Box::new(Diagnostic {
            message: format!(
                "{} mixes CRLF and LF line ends; fmt leaves it as it is",
                name.display()
            ),
            span: Some(Span {
                file: name.to_path_buf(),
                line: n + 1,
                column: 1,
                start: ends[n].0,
                end: ends[n].0 + 1,
            }),
            source_line: None,
            help: Some("use one kind of line end in the file (e.g. dos2unix, or unix2dos)".into()),
        })),
    }
}

/// The invariant of fmt, checked: the formatted text has exactly the values
/// of the original (hcl-rs's reading of both, comments and layout aside), and
/// formatting it again changes nothing. A file that would break it is left
/// as it is, with an error (a bug in fmt, not in the file).
fn same_values(name: &Path, text: &str, formatted: &str) -> Result<(), Box<Diagnostic>> {
    let broken = |what: &str| {
        Box::new(Diagnostic {
            message: format!(
                "fmt would {what} of {}; the file was left as it is (a bug in cutover fmt: please report it)",
                name.display()
            ),
            span: None,
            source_line: None,
            help: None,
        })
    };
    let (before, after) = (hcl::parse(text), hcl::parse(formatted));
    match (before, after) {
        (Ok(b), Ok(a)) if a == b => {}
        // hcl-rs cannot read what hcl-edit could: no check is possible.
        (Err(_), _) => return Ok(()),
        _ => return Err(broken("change a value")),
    }
    let Ok(body) = hcl_edit::parser::parse_body(formatted) else {
        return Err(broken("write what it cannot read back"));
    };
    let lines = Lines::new(formatted);
    let mut layout = Layout::default();
    layout.visit_body(&body);
    layout.find_block_comments(formatted);
    let mut again = layout.render(formatted, &lines);
    if formatted.contains("\r\n") {
        again = again.replace('\n', "\r\n");
    }
    if again != formatted {
        return Err(broken("not reach a fixed point (formatting twice differs)"));
    }
    Ok(())
}

/// Byte offsets of line starts, for offset -> line conversions.
struct Lines {
    starts: Vec<usize>,
}

impl Lines {
    fn new(text: &str) -> Lines {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines { starts }
    }

    /// The 0-based line holding byte `offset`.
    fn line_of(&self, offset: usize) -> usize {
        self.starts
            .partition_point(|&s| s <= offset)
            .saturating_sub(1)
    }
}

/// A `key = value` on the line where its key starts.
#[derive(Debug, Clone)]
struct Row {
    key: Range<usize>,
    value_start: usize,
    end: usize,
}

/// What formatting needs to know of the tree, gathered by one visit.
#[derive(Default)]
struct Layout {
    /// Spans of everything whose brackets indent the lines inside them.
    containers: Vec<Range<usize>>,
    /// Spans of string-like text, where `#` or `/*` do not start a comment.
    literals: Vec<Range<usize>>,
    /// Spans whose lines after the first are kept byte for byte.
    verbatim: Vec<Range<usize>>,
    /// Spans whose lines after the first are kept, but for trailing spaces.
    block_comments: Vec<Range<usize>>,
    /// The rows of each body or object, in order; `None` breaks a run.
    runs: Vec<Vec<Option<Row>>>,
    /// Block headers: the block's start, its header parts and its `{`.
    headers: Vec<(Vec<Range<usize>>, usize)>,
}

impl Visit for Layout {
    fn visit_body(&mut self, body: &Body) {
        let rows = body
            .iter()
            .map(|s| match s {
                Structure::Attribute(a) => row(a.key.span(), a.value.span(), a.span()),
                Structure::Block(_) => None,
            })
            .collect();
        self.runs.push(rows);
        visit::visit_body(self, body);
    }

    fn visit_block(&mut self, block: &Block) {
        if let Some(span) = block.span() {
            self.containers.push(span.clone());
            let mut parts: Vec<Range<usize>> = block.ident.span().into_iter().collect();
            parts.extend(block.labels.iter().filter_map(|l| l.span()));
            if parts.len() == 1 + block.labels.len() {
                self.headers.push((parts, span.end));
            }
        }
        for label in &block.labels {
            if let (hcl_edit::structure::BlockLabel::String(_), Some(s)) = (label, label.span()) {
                self.literals.push(s);
            }
        }
        visit::visit_block(self, block);
    }

    fn visit_array(&mut self, array: &Array) {
        self.containers.extend(array.span());
        visit::visit_array(self, array);
    }

    fn visit_object(&mut self, object: &Object) {
        self.containers.extend(object.span());
        let rows = object
            .iter()
            .map(|(k, v)| match v.assignment() {
                ObjectValueAssignment::Equals => row(key_span(k), v.expr().span(), None),
                ObjectValueAssignment::Colon => None,
            })
            .collect();
        self.runs.push(rows);
        visit::visit_object(self, object);
    }

    fn visit_parenthesis(&mut self, p: &Parenthesis) {
        self.containers.extend(p.span());
        visit::visit_parenthesis(self, p);
    }

    fn visit_func_call(&mut self, call: &FuncCall) {
        self.containers.extend(call.span());
        visit::visit_func_call(self, call);
    }

    fn visit_for_expr(&mut self, f: &ForExpr) {
        self.containers.extend(f.span());
        visit::visit_for_expr(self, f);
    }

    fn visit_expr(&mut self, expr: &Expression) {
        if let Expression::String(s) = expr {
            self.literals.extend(s.span());
        }
        visit::visit_expr(self, expr);
    }

    fn visit_string_template(&mut self, t: &StringTemplate) {
        // Not visited further: brackets inside `${}` do not indent lines.
        // A quoted string over several lines (a heredoc inside `${ }`) is
        // kept byte for byte: re-indenting it could change its value.
        if let Some(span) = t.span() {
            self.literals.push(span.clone());
            self.verbatim.push(span);
        }
    }

    fn visit_heredoc_template(&mut self, t: &HeredocTemplate) {
        // A heredoc's text is the value: re-indenting it would change it.
        if let Some(span) = t.span() {
            self.literals.push(span.clone());
            self.verbatim.push(span);
        }
    }
}

fn key_span(key: &ObjectKey) -> Option<Range<usize>> {
    match key {
        ObjectKey::Ident(i) => i.span(),
        ObjectKey::Expression(e) => e.span(),
    }
}

fn row(
    key: Option<Range<usize>>,
    value: Option<Range<usize>>,
    whole: Option<Range<usize>>,
) -> Option<Row> {
    let (key, value) = (key?, value?);
    let end = whole.map_or(value.end, |w| w.end.max(value.end));
    Some(Row {
        key,
        value_start: value.start,
        end,
    })
}

impl Layout {
    /// Find `/* */` comments that span lines: a scan of the text outside the
    /// literals the tree located, so a `#` or `/*` inside a string is never
    /// taken for a comment.
    fn find_block_comments(&mut self, text: &str) {
        let mut literals = self.literals.clone();
        literals.sort_by_key(|r| r.start);
        let bytes = text.as_bytes();
        let mut next_literal = literals.iter().peekable();
        let mut i = 0;
        while i < bytes.len() {
            while next_literal.peek().is_some_and(|r| r.end <= i) {
                next_literal.next();
            }
            if let Some(r) = next_literal.peek().filter(|r| r.start <= i) {
                i = r.end;
                continue;
            }
            let rest = &bytes[i..];
            if rest.starts_with(b"#") || rest.starts_with(b"//") {
                i += rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            } else if rest.starts_with(b"/*") {
                let len = text[i + 2..].find("*/").map_or(rest.len(), |e| e + 4);
                self.block_comments.push(i..i + len);
                i += len;
            } else {
                i += 1;
            }
        }
    }

    fn render(&self, text: &str, lines: &Lines) -> String {
        let raw: Vec<&str> = text.split('\n').collect();
        let kept = self.kept_lines(lines);
        let rewrites = self.rewrites(text, lines);
        let depths = self.depths(lines, raw.len());
        let mut out: Vec<String> = Vec::with_capacity(raw.len());
        for (n, line) in raw.iter().enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            match kept.get(&n) {
                Some(Keep::Bytes) => {
                    out.push(line.to_string());
                    continue;
                }
                Some(Keep::Text) => {
                    out.push(line.trim_end().to_string());
                    continue;
                }
                None => {}
            }
            let content = match rewrites.get(&n) {
                Some(r) => r.trim_end().to_string(),
                None => line.trim().to_string(),
            };
            if content.is_empty() {
                // Collapse blank runs, and drop blank lines that open the file.
                if out.last().is_some_and(|l| !l.is_empty()) {
                    out.push(String::new());
                }
                continue;
            }
            let depth = depths[n];
            out.push(format!("{}{content}", INDENT.repeat(depth)));
        }
        while out.last().is_some_and(String::is_empty) {
            out.pop();
        }
        if out.is_empty() {
            return String::new();
        }
        let mut formatted = out.join("\n");
        formatted.push('\n');
        formatted
    }

    /// The indentation level of each line, as `terraform fmt` computes it:
    /// from each line's net count of brackets opened, so that `foo([` on one
    /// line indents its contents once and `}, {` keeps the level.
    fn depths(&self, lines: &Lines, count: usize) -> Vec<usize> {
        let mut net = vec![0i64; count];
        for r in &self.containers {
            net[lines.line_of(r.start)] += 1;
            net[lines.line_of(r.end.saturating_sub(1))] -= 1;
        }
        let mut open: Vec<i64> = Vec::new();
        let mut depths = Vec::with_capacity(count);
        for change in net {
            if change > 0 {
                depths.push(open.len());
                open.push(change);
                continue;
            }
            let mut closed = -change;
            while closed > 0 {
                let Some(top) = open.last_mut() else { break };
                if closed >= *top {
                    closed -= *top;
                    open.pop();
                } else {
                    *top -= closed;
                    closed = 0;
                }
            }
            depths.push(open.len());
        }
        depths
    }

    /// Lines that are not re-indented: heredoc bodies (kept byte for byte,
    /// trailing spaces are part of the value) and the inside of multi-line
    /// `/* */` comments.
    fn kept_lines(&self, lines: &Lines) -> BTreeMap<usize, Keep> {
        let mut kept = BTreeMap::new();
        let spans = self
            .block_comments
            .iter()
            .map(|r| (r, Keep::Text))
            .chain(self.verbatim.iter().map(|r| (r, Keep::Bytes)));
        for (range, keep) in spans {
            let first = lines.line_of(range.start);
            let last = lines.line_of(range.end.saturating_sub(1));
            for n in first + 1..=last {
                kept.entry(n).or_insert(keep);
            }
        }
        kept
    }

    /// New contents (without indentation) for lines that start with a block
    /// header or an attribute's key.
    fn rewrites(&self, text: &str, lines: &Lines) -> BTreeMap<usize, String> {
        let mut out = BTreeMap::new();
        for (parts, end) in &self.headers {
            if let Some((line, content)) = header(text, lines, parts, *end) {
                out.insert(line, content);
            }
        }
        for run in &self.runs {
            for group in alignment_groups(text, lines, run) {
                let width = group.iter().map(|r| text[r.key.clone()].chars().count());
                let width = width.max().unwrap_or(0);
                for r in group {
                    let key = &text[r.key.clone()];
                    let pad = " ".repeat(width - key.chars().count());
                    let eol = line_end(text, r.value_start);
                    let value = &text[r.value_start..eol];
                    out.insert(lines.line_of(r.key.start), format!("{key}{pad} = {value}"));
                }
            }
        }
        out
    }
}

#[derive(Debug, Clone, Copy)]
enum Keep {
    Bytes,
    Text,
}

fn line_end(text: &str, from: usize) -> usize {
    text[from..].find('\n').map_or(text.len(), |i| from + i)
}

/// Whether `offset` is the first non-blank character of its line.
fn starts_line(text: &str, offset: usize) -> bool {
    text[..offset]
        .rsplit('\n')
        .next()
        .is_some_and(|before| before.trim().is_empty())
}

/// `ident "label" label {` with one space between parts; `None` when the
/// header holds anything but blanks between its parts (a comment, say).
fn header(
    text: &str,
    lines: &Lines,
    parts: &[Range<usize>],
    end: usize,
) -> Option<(usize, String)> {
    let first = parts.first()?;
    let last = parts.last()?;
    let brace = last.end + text.get(last.end..end)?.find('{')?;
    let line = lines.line_of(first.start);
    if !starts_line(text, first.start) || lines.line_of(brace) != line {
        return None;
    }
    let gaps = parts
        .windows(2)
        .map(|w| &text[w[0].end..w[1].start])
        .chain([&text[last.end..brace]]);
    if !gaps.into_iter().all(|g| g.trim().is_empty()) {
        return None;
    }
    let mut content: Vec<&str> = parts.iter().map(|p| &text[p.clone()]).collect();
    content.push("{");
    let rest = &text[brace + 1..line_end(text, brace)];
    Some((line, format!("{}{rest}", content.join(" "))))
}

/// Split a body's (or object's) rows into the groups whose `=` align: rows
/// on consecutive lines, each on one line. A blank line, a comment line, a
/// block or a multi-line attribute ends a group (and a multi-line attribute
/// is a group of its own, so that its `=` is still spaced).
fn alignment_groups<'r>(text: &str, lines: &Lines, run: &'r [Option<Row>]) -> Vec<Vec<&'r Row>> {
    let mut groups: Vec<Vec<&Row>> = Vec::new();
    let mut current: Vec<&Row> = Vec::new();
    let mut last_line = None;
    for slot in run {
        let usable = slot.as_ref().filter(|r| {
            let between = &text[r.key.end..r.value_start];
            starts_line(text, r.key.start)
                && lines.line_of(r.value_start) == lines.line_of(r.key.start)
                && between.trim() == "="
        });
        let Some(r) = usable else {
            groups.extend((!current.is_empty()).then(|| std::mem::take(&mut current)));
            last_line = None;
            continue;
        };
        let line = lines.line_of(r.key.start);
        let one_line = lines.line_of(r.end.saturating_sub(1)) == line;
        if !one_line || last_line != Some(line.wrapping_sub(1)) {
            groups.extend((!current.is_empty()).then(|| std::mem::take(&mut current)));
        }
        current.push(r);
        last_line = one_line.then_some(line);
        if !one_line {
            groups.push(std::mem::take(&mut current));
        }
    }
    groups.extend((!current.is_empty()).then_some(current));
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(text: &str) -> String {
        let once = format_source(Path::new("t.hcl"), text).unwrap();
        let twice = format_source(Path::new("t.hcl"), &once).unwrap();
        assert_eq!(twice, once, "formatting is not idempotent on:\n{text}");
        once
    }

    /// Every comment of `text` is in `formatted`, in the same order.
    fn assert_comments_kept(text: &str, formatted: &str) {
        let mut rest = formatted;
        for marker in ["#", "//", "/*"] {
            assert_eq!(
                text.matches(marker).count(),
                formatted.matches(marker).count(),
                "{marker} comments lost:\n{formatted}"
            );
        }
        for line in text
            .lines()
            .filter_map(|l| l.find('#').map(|i| l[i..].trim()))
        {
            let at = rest
                .find(line)
                .unwrap_or_else(|| panic!("lost {line:?}:\n{formatted}"));
            rest = &rest[at + line.len()..];
        }
    }

    #[test]
    fn aligns_equals_in_runs_and_indents_blocks() {
        let text = "environment   \"blue\"{\nrelease=\"1.0\"\n    endpoints =   [\"a:1\"]\n\n\n\nbackend process {\ncommand=[\"x\"]\n    env = {\n A = \"1\"\n      LONGER = \"2\"\n   }\n  }\n}\n\n\n";
        let want = "environment \"blue\" {\n  release   = \"1.0\"\n  endpoints = [\"a:1\"]\n\n  backend process {\n    command = [\"x\"]\n    env = {\n      A      = \"1\"\n      LONGER = \"2\"\n    }\n  }\n}\n";
        assert_eq!(fmt(text), want);
    }

    #[test]
    fn comments_everywhere_are_kept_and_break_runs() {
        let text = r#"# file header
// another style
/* a block
   comment that spans
     lines */
variable "release" { # after the brace
  default = "1.0" # line end
    # own line, badly indented
  type="string"   // line end too
  description    = "a # in a string is no comment, nor // this, nor /* this"
}

router "public" {
live = "blue"   /* inline block */
  backend haproxy {
  # before
  socket = "/run/haproxy.sock"
  map="/etc/haproxy/colour.map"
  }   # after a closing brace
}
# trailing comment
"#;
        let out = fmt(text);
        assert_comments_kept(text, &out);
        let want = r#"# file header
// another style
/* a block
   comment that spans
     lines */
variable "release" { # after the brace
  default = "1.0" # line end
  # own line, badly indented
  type        = "string" // line end too
  description = "a # in a string is no comment, nor // this, nor /* this"
}

router "public" {
  live = "blue" /* inline block */
  backend haproxy {
    # before
    socket = "/run/haproxy.sock"
    map    = "/etc/haproxy/colour.map"
  } # after a closing brace
}
# trailing comment
"#;
        // Line-end spacing is kept as written except at the end of a line.
        let want = want
            .replace("\"string\" //", "\"string\"   //")
            .replace("\"blue\" /*", "\"blue\"   /*")
            .replace("} # after", "}   # after");
        assert_eq!(out, want);
    }

    #[test]
    fn a_heredoc_inside_a_quoted_string_is_kept_byte_for_byte() {
        let text = "locals {\n  a = \"x${<<EOT\n  two spaces\nEOT\n}y\"\n}\n";
        assert_eq!(fmt(text), text);
    }

    #[test]
    fn heredocs_inside_template_directives_are_kept_byte_for_byte() {
        for text in [
            "locals {\n  a = \"%{ if true }${<<EOT\n  two spaces\nEOT\n}%{ endif }\"\n}\n",
            "locals {\n  a = \"%{ for x in [1] }${<<-EOT\n    x\n  EOT\n}%{ endfor }\"\n}\n",
            "locals {\n  a = <<EOT\n%{ if true }\n${<<EOF\n  in\nEOF\n}\n%{ endif }\nEOT\n}\n",
        ] {
            assert_eq!(fmt(text), text);
        }
    }

    #[test]
    fn comments_inside_interpolations_are_kept() {
        for text in [
            "locals {\n  a = \"${ 1 # one\n}\"\n  bb = 2\n}\n",
            "locals {\n  a = \"${ 1 /* one\n  two */ }\"\n}\n",
            "locals {\n  a = \"${ 1 // one\n    }\"\n}\n",
            "locals {\n  a = <<EOT\n${ 1 # c\n}\nEOT\n}\n",
        ] {
            let out = fmt(text);
            assert_comments_kept(text, &out);
            assert_eq!(out, text);
        }
    }

    #[test]
    fn crlf_line_ends_are_kept_and_mixed_ones_refused() {
        let text = "locals {\r\nc = <<EOT\r\nline\r\nEOT\r\n}\r\n";
        assert_eq!(fmt(text), "locals {\r\n  c = <<EOT\r\nline\r\nEOT\r\n}\r\n");
        // A heredoc inside `${}` in a CRLF file: kept, CR and all.
        let text = "locals {\r\n  a = \"x${<<EOT\r\n  two\r\nEOT\r\n}y\"\r\n}\r\n";
        assert_eq!(fmt(text), text);
        let err = format_source(Path::new("main.hcl"), "locals {\r\nc = 1\n}\r\n").unwrap_err();
        assert_eq!(err.span.as_ref().map(|s| s.line), Some(2), "{err}");
        assert!(err.message.contains("mixes CRLF and LF"), "{err}");
    }

    #[test]
    fn every_example_formats_to_the_same_values_and_a_fixed_point() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut seen = 0;
        for dir in ["examples", "tests/fixtures"] {
            let mut stack = vec![root.join(dir)];
            while let Some(d) = stack.pop() {
                for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                    let path = entry.path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if path.extension().is_some_and(|e| e == "hcl") {
                        let text = std::fs::read_to_string(&path).unwrap();
                        // Files that do not parse are the fixtures of errors.
                        if hcl_edit::parser::parse_body(&text).is_ok() {
                            format_source(&path, &text).unwrap_or_else(|e| panic!("{e}"));
                            seen += 1;
                        }
                    }
                }
            }
        }
        assert!(seen >= 4, "only {seen} files");
    }

    #[test]
    fn heredocs_are_left_alone() {
        let text = "locals {\nscript = <<EOT\n  keep   this   \n\n\n\tand this\nEOT\n    other = <<-EOT\n        indented\n      EOT\n  x = 1\n}\n";
        let out = fmt(text);
        assert!(
            out.contains("<<EOT\n  keep   this   \n\n\n\tand this\nEOT\n"),
            "{out}"
        );
        assert!(
            out.contains("  other = <<-EOT\n        indented\n      EOT\n"),
            "{out}"
        );
        assert!(out.contains("\n  x = 1\n"), "{out}");
    }

    #[test]
    fn multi_line_lists_objects_and_calls_indent_by_line() {
        let text = "locals {\nports = [\n9101,\n      9102, # b\n]\nnested = {\na = [\n1,\n]\nbb = merge({\nx = 1\n}, {\n  y = 2\n})\n}\nshort = 1\n}\n";
        let want = "locals {\n  ports = [\n    9101,\n    9102, # b\n  ]\n  nested = {\n    a = [\n      1,\n    ]\n    bb = merge({\n      x = 1\n      }, {\n      y = 2\n    })\n  }\n  short = 1\n}\n";
        assert_eq!(fmt(text), want);
    }

    #[test]
    fn a_multi_line_attribute_breaks_the_run() {
        let text = "a = 1\nlonger = [\n1,\n]\nb = 2\nccc = 3\n";
        let want = "a = 1\nlonger = [\n  1,\n]\nb   = 2\nccc = 3\n";
        assert_eq!(fmt(text), want);
    }

    #[test]
    fn whitespace_and_final_newline() {
        assert_eq!(fmt("\n\n\na = 1   \t\n\n\n\n"), "a = 1\n");
        assert_eq!(fmt("a = 1"), "a = 1\n");
        assert_eq!(fmt(""), "");
        // CRLF files stay CRLF (a heredoc's value holds its line ends).
        assert_eq!(fmt("a = 1\r\nbb = 2\r\n"), "a  = 1\r\nbb = 2\r\n");
        assert_eq!(fmt("x {\n\ty = 1\n}\n"), "x {\n  y = 1\n}\n");
    }

    #[test]
    fn one_line_blocks_and_empty_blocks_stay() {
        assert_eq!(fmt("cutover {}\n"), "cutover {}\n");
        assert_eq!(fmt("a  \"b\"   { c = 1 }\n"), "a \"b\" { c = 1 }\n");
    }

    #[test]
    fn syntax_errors_name_the_place() {
        let err = format_source(Path::new("main.hcl"), "a = 1\nb = [\n").unwrap_err();
        let span = err.span.clone().unwrap();
        assert_eq!(span.file, Path::new("main.hcl"));
        assert!(span.line >= 2, "{err}");
        assert!(err.to_string().contains("main.hcl:"), "{err}");
    }

    #[test]
    fn examples_are_formatted() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        let mut seen = 0;
        let mut dirs = vec![root];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "hcl") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    let out = fmt(&text);
                    assert_comments_kept(&text, &out);
                    assert_eq!(out, text, "{} is not formatted", path.display());
                    seen += 1;
                }
            }
        }
        assert!(seen >= 2, "expected the examples' *.hcl files");
    }
}
