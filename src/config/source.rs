//! Byte ranges -> file, line and column.
//!
//! hcl-edit reports positions as byte ranges into one file's text; diagnostics
//! need 1-based lines and character columns. The [`SourceMap`] keeps every
//! file's text and the offsets its lines start at, so that each conversion is
//! a binary search rather than a scan of the file.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::diag::{Diagnostic, Sources};
use super::model::Span;

/// Every file read during one load, with a line index for each.
#[derive(Debug, Default)]
pub(crate) struct SourceMap {
    sources: Sources,
    line_starts: BTreeMap<PathBuf, Vec<usize>>,
    /// Files whose lines a diagnostic never quotes (var files: they hold
    /// the values of sensitive variables).
    unquoted: std::collections::BTreeSet<PathBuf>,
}

impl SourceMap {
    /// Remember `text` as the contents of `file`.
    pub(crate) fn add(&mut self, file: PathBuf, text: String) {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        self.line_starts.insert(file.clone(), starts);
        self.sources.insert(file, text);
    }

    /// The text of `file` (empty when unknown).
    pub(crate) fn text(&self, file: &Path) -> &str {
        self.sources.get(file).map_or("", String::as_str)
    }

    /// The span of `range` in `file`.
    pub(crate) fn span(&self, file: &Path, range: Range<usize>) -> Span {
        let text = self.text(file);
        let start = floor_char_boundary(text, range.start);
        let end = floor_char_boundary(text, range.end.max(start));
        let starts = self.line_starts.get(file).map_or(&[0][..], Vec::as_slice);
        let line_idx = starts.partition_point(|&s| s <= start).saturating_sub(1);
        let line_start = starts.get(line_idx).copied().unwrap_or(0).min(start);
        let column = text[line_start..start].chars().count() + 1;
        Span {
            file: file.to_path_buf(),
            line: line_idx + 1,
            column,
            start,
            end,
        }
    }

    /// A span from an optional range: hcl-edit only has spans for parsed nodes,
    /// so `None` falls back to `fallback`.
    pub(crate) fn span_or(
        &self,
        file: &Path,
        range: Option<Range<usize>>,
        fallback: &Span,
    ) -> Span {
        match range {
            Some(r) => self.span(file, r),
            None => fallback.clone(),
        }
    }

    /// Never quote a line of `file` in a diagnostic (its place is still
    /// given).
    pub(crate) fn unquoted(&mut self, file: PathBuf) {
        self.unquoted.insert(file);
    }

    /// Whether lines of `file` are never quoted (a var file).
    pub(crate) fn is_unquoted(&self, file: &Path) -> bool {
        self.unquoted.contains(file)
    }

    /// A diagnostic at `span`.
    pub(crate) fn diag(&self, span: &Span, message: impl Into<String>) -> Diagnostic {
        let mut d = Diagnostic::at(span, &self.sources, message);
        if self.unquoted.contains(&span.file) {
            d.source_line = None;
        }
        d
    }

    /// Hand the texts over to the caller.
    pub(crate) fn into_sources(self) -> Sources {
        self.sources
    }
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// "did you mean `x`?" for the candidate closest to `name`, if one is close.
pub(crate) fn did_you_mean<'a, I>(name: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        // Optimal string alignment: a swap of two neighbours is one edit, so
        // `bleu` is one edit from `blue`.
        .map(|c| (strsim::osa_distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_count_lines_and_characters() {
        let mut map = SourceMap::default();
        map.add("a.hcl".into(), "x = 1\né = \"y\"\n".into());
        let span = map.span(Path::new("a.hcl"), 12..15);
        assert_eq!((span.line, span.column), (2, 6));
    }

    #[test]
    fn suggests_close_names_only() {
        let names = ["release", "endpoint"];
        assert_eq!(
            did_you_mean("relase", names).as_deref(),
            Some("did you mean `release`?")
        );
        assert_eq!(did_you_mean("zzz", names), None);
        assert_eq!(
            did_you_mean("bleu", ["blue", "green"]).as_deref(),
            Some("did you mean `blue`?")
        );
    }
}
