//! Diagnostics: what is wrong, where (file, line, column, with the source line
//! and a caret), and what to do about it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use super::model::Span;

/// One problem found in the configuration (or in a flag).
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// What is wrong.
    pub message: String,
    /// Where, when it is in a file.
    pub span: Option<Span>,
    /// The text of the source line the span starts on.
    pub source_line: Option<String>,
    /// What to do about it.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic with no position (e.g. about a flag).
    pub fn new(message: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
            span: None,
            source_line: None,
            help: None,
        }
    }

    /// A diagnostic at `span`, taking the source line from `sources`.
    pub fn at(span: &Span, sources: &Sources, message: impl Into<String>) -> Self {
        let source_line = sources
            .get(&span.file)
            .and_then(|text| text.lines().nth(span.line.saturating_sub(1)))
            .map(str::to_string);
        Diagnostic {
            message: message.into(),
            span: Some(span.clone()),
            source_line,
            help: None,
        }
    }

    /// Add a hint on what to do.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// The text of every loaded file, by the path used in spans.
pub type Sources = BTreeMap<PathBuf, String>;

impl fmt::Display for Diagnostic {
    /// ```text
    /// error: unknown argument `relase`
    ///   --> main.hcl:3:3
    ///    |
    ///  3 |   relase = "1.0"
    ///    |   ^^^^^^
    ///    = help: did you mean `release`?
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        if let Some(span) = &self.span {
            let gutter = span.line.to_string().len();
            let pad = " ".repeat(gutter);
            writeln!(
                f,
                "{pad}--> {}:{}:{}",
                span.file.display(),
                span.line,
                span.column
            )?;
            if let Some(line) = &self.source_line {
                writeln!(f, "{pad} |")?;
                writeln!(f, "{} | {}", span.line, line)?;
                let col = span.column.saturating_sub(1);
                let prefix: String = line
                    .chars()
                    .take(col)
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                let line_rest = line.chars().count().saturating_sub(col).max(1);
                let width = (span.end.saturating_sub(span.start)).clamp(1, line_rest);
                writeln!(f, "{pad} | {prefix}{}", "^".repeat(width))?;
            }
        }
        if let Some(help) = &self.help {
            writeln!(
                f,
                "{} = help: {help}",
                " ".repeat(self.span.as_ref().map_or(0, |s| s.line.to_string().len()))
            )?;
        }
        Ok(())
    }
}

/// Every problem found in one run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        let n = self.0.len();
        if n > 1 {
            writeln!(f, "\n{n} errors found")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}
