//! What a provider reports when it fails: a kind the core can act on, a
//! message a person can act on, and the cause underneath.
//!
//! The kind is what the engine decides with (retry a preflight that is
//! [`ErrorKind::NotReady`], point at the attribute of a
//! [`ErrorKind::Settings`] error); the message is what the operator reads;
//! the source is the error that caused it (an `std::io::Error`, a
//! `hyper::Error`), kept as a value so that it is printed once, at the end,
//! and can be inspected. `Display` writes the message only and
//! [`std::error::Error::source`] returns the cause, as the Rust API
//! guidelines ask, so that a chain printer never repeats a cause;
//! [`ProviderError::describe`] is that chain as one line.

use std::fmt;
use std::time::Duration;

/// A boxed error that can cross threads: the cause of a [`ProviderError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What kind of failure a [`ProviderError`] is: what the engine does next
/// depends on it, so a provider picks it with care.
///
/// Deliberately not `#[non_exhaustive]`: a new kind changes what the engine
/// must do, so every `match` on it should have to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The backend block's settings are wrong (an unknown or ill-typed
    /// attribute, a value out of range, a missing file the settings name).
    /// [`ProviderError::field`] names the attribute when it is known.
    /// Found without touching anything live; fixing the configuration is the
    /// only remedy.
    Settings,
    /// The system the provider drives (a router's runtime or admin API, a
    /// master process, a command) could not be reached: connection refused,
    /// no such socket, a program that cannot be started. Nothing was changed.
    Unreachable,
    /// An operation did not finish within its time bound (the settings say
    /// which). What was changed before is said in the message.
    Timeout,
    /// A TLS handshake or certificate check with the system failed.
    Tls,
    /// The system answered and refused, or the provider refuses because the
    /// operation would break traffic, and waiting will not change that:
    /// HAProxy's `Unknown backend`, a server in maintenance, Caddy's 4xx,
    /// `nginx -t` failing, a target endpoint that accepts no connection.
    /// Asking again unchanged gets the same answer.
    Refused,
    /// The router would take the switch, but does not yet serve the target
    /// itself: its own health check has not yet seen it up (HAProxy's
    /// `DOWN 1/2` after cutover's gate passed). Waiting can help: the engine
    /// asks [`RouterProvider::preflight`](crate::RouterProvider::preflight)
    /// again until it is ready or the wait's bound is reached. The message
    /// says what the router waits for. Nothing was changed.
    NotReady,
    /// Someone else changed the system between cutover's read and its
    /// change (Caddy's `If-Match` lost to a concurrent edit). Nothing was
    /// changed; planning again sees the other change.
    Conflict,
    /// Not attempted: another operation of the same
    /// [`switch_batch`](crate::RouterProvider::switch_batch) failed, and the
    /// batch holds the rest back (all or nothing). Nothing was changed; the
    /// message names the one that failed. The engine reports the step as
    /// interrupted, and the other's failure as the apply's.
    Withheld,
    /// Any other failure of the operation, including one that stopped
    /// midway; the message says in what state it left the system.
    Failed,
}

impl ErrorKind {
    /// The kind as one `snake_case` word, as it appears in JSON
    /// (`"not_ready"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Settings => "settings",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Tls => "tls",
            ErrorKind::Refused => "refused",
            ErrorKind::NotReady => "not_ready",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Withheld => "withheld",
            ErrorKind::Failed => "failed",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure reported by a provider.
///
/// Made only through its constructors, one per [`ErrorKind`], which hold its
/// invariants: only a [`ErrorKind::Settings`] error names a field (and never
/// an empty one); an [`ErrorKind::Unreachable`] or [`ErrorKind::Tls`] error
/// always has its cause as [`source`](std::error::Error::source).
///
/// `Display` writes [`ProviderError::message`] only; the cause is the
/// error's `source()`. Print [`ProviderError::describe`] to show both.
#[derive(Debug)]
pub struct ProviderError {
    kind: ErrorKind,
    message: String,
    field: Option<String>,
    source: Option<BoxError>,
}

impl ProviderError {
    fn new(kind: ErrorKind, message: String) -> Self {
        ProviderError {
            kind,
            message,
            field: None,
            source: None,
        }
    }

    /// The backend block's settings are wrong; `field` names the attribute
    /// at fault when it is known (`Some("")` counts as not known), so that
    /// the core can point at it in the source. The message says what is
    /// wrong and what to write instead.
    pub fn settings(field: Option<String>, message: impl Into<String>) -> Self {
        let mut error = Self::new(ErrorKind::Settings, message.into());
        error.field = field.filter(|f| !f.is_empty());
        error
    }

    /// `what` (e.g. `HAProxy runtime API at /run/haproxy/admin.sock`) could
    /// not be reached because of `source`. The message is
    /// "`what` is unreachable"; a hint for the operator belongs in the
    /// source's text (e.g. an `io::Error` of the same kind with the hint
    /// appended), so that it comes right after the cause.
    pub fn unreachable(what: impl fmt::Display, source: impl Into<BoxError>) -> Self {
        Self::new(ErrorKind::Unreachable, format!("{what} is unreachable")).with_source(source)
    }

    /// `what` did not finish within `after`.
    pub fn timeout(what: impl fmt::Display, after: Duration) -> Self {
        Self::new(
            ErrorKind::Timeout,
            format!("{what} timed out after {after:?}"),
        )
    }

    /// A TLS handshake or certificate check with `what` failed because of
    /// `source`.
    pub fn tls(what: impl fmt::Display, source: impl Into<BoxError>) -> Self {
        Self::new(ErrorKind::Tls, format!("TLS with {what} failed")).with_source(source)
    }

    /// The system answered and refused, or the operation would break traffic
    /// and waiting will not help (see [`ErrorKind::Refused`]).
    pub fn refused(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Refused, message.into())
    }

    /// The router does not serve the target yet, and waiting can help (see
    /// [`ErrorKind::NotReady`]). The message says what it waits for, e.g.
    /// "HAProxy's own check has not yet seen backend `green` up: green/green1
    /// is DOWN 1/2 (rise 2)".
    pub fn not_ready(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotReady, message.into())
    }

    /// A concurrent change made elsewhere won; nothing was changed (see
    /// [`ErrorKind::Conflict`]).
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message.into())
    }

    /// Held back by the failure of another operation of the same batch;
    /// nothing was changed (see [`ErrorKind::Withheld`]).
    pub fn withheld(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Withheld, message.into())
    }

    /// Any other failure (see [`ErrorKind::Failed`]).
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Failed, message.into())
    }

    /// This error, caused by `source` (replacing any cause it had).
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// This error, said of one instance of a fleet: its message prefixed
    /// with `prefix` (`instance \`b\``), its kind and cause kept, and its
    /// field (a settings error's) replaced by `field` when that is given.
    pub(crate) fn of_instance(mut self, prefix: &str, field: Option<String>) -> Self {
        self.message = format!("{prefix}: {}", self.message);
        if self.kind == ErrorKind::Settings && field.is_some() {
            self.field = field.filter(|f| !f.is_empty());
        }
        self
    }

    /// An error of `kind` that says what `cause` meant, `cause` its source
    /// (a fleet's, said of one instance's error: a read that broke off
    /// before any instance was switched moved nothing).
    pub(crate) fn caused_by(kind: ErrorKind, message: String, cause: ProviderError) -> Self {
        Self::new(kind, message).with_source(cause)
    }

    /// The same error as another kind (a fleet's switch that moved part of
    /// its instances is [`ErrorKind::Failed`], whatever the first failure).
    pub(crate) fn into_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        if kind != ErrorKind::Settings {
            self.field = None;
        }
        self
    }

    /// The same error again, for another of the operations it struck (a
    /// batch's switches that one broken exchange failed): its kind, message
    /// and field, and its causes as one text.
    pub fn copied(&self) -> Self {
        let causes = self.describe();
        let causes = causes
            .strip_prefix(self.message.as_str())
            .and_then(|rest| rest.strip_prefix(": "))
            .map(str::to_owned);
        ProviderError {
            kind: self.kind,
            message: self.message.clone(),
            field: self.field.clone(),
            source: match (&self.source, causes) {
                (None, _) => None,
                (Some(_), Some(text)) => Some(text.into()),
                (Some(source), None) => Some(source.to_string().into()),
            },
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The attribute of the backend block at fault: only for
    /// [`ErrorKind::Settings`], and only when known.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// What went wrong, without its cause: what `Display` writes.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error with its whole text (message and causes, as
    /// [`ProviderError::describe`] gives it) passed through `mask`: the core
    /// hides the text of sensitive values in what a provider says.
    pub fn masked(self, mask: impl Fn(&str) -> String) -> Self {
        ProviderError {
            kind: self.kind,
            message: mask(&self.describe()),
            field: self.field,
            source: None,
        }
    }

    /// The message, then each cause in the `source()` chain once, joined by
    /// `": "`: `"a: b: c"`. This is what the core prints. A cause whose text
    /// the line already ends with (a wrapper that prints its own cause) is
    /// not repeated.
    pub fn describe(&self) -> String {
        let mut line = self.message.clone();
        let mut next = std::error::Error::source(self);
        while let Some(cause) = next {
            let text = cause.to_string();
            if !text.is_empty() && !line.ends_with(&text) {
                line.push_str(": ");
                line.push_str(&text);
            }
            next = cause.source();
        }
        line
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ProviderError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapper(std::io::Error);

    impl fmt::Display for Wrapper {
        // Prints its cause, and also returns it as `source`: a common habit
        // that `describe` must not turn into a repetition.
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "connecting: {}", self.0)
        }
    }

    impl std::error::Error for Wrapper {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    fn refused_io() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused")
    }

    #[test]
    fn a_cause_is_printed_once() {
        let error = ProviderError::unreachable("HAProxy runtime API at /s", refused_io());
        assert_eq!(
            error.to_string(),
            "HAProxy runtime API at /s is unreachable"
        );
        assert_eq!(
            error.describe(),
            "HAProxy runtime API at /s is unreachable: Connection refused"
        );
        let source = std::error::Error::source(&error).expect("a source");
        assert_eq!(
            source.downcast_ref::<std::io::Error>().map(|e| e.kind()),
            Some(std::io::ErrorKind::ConnectionRefused)
        );
        let wrapped = ProviderError::failed("switch failed").with_source(Wrapper(refused_io()));
        assert_eq!(
            wrapped.describe(),
            "switch failed: connecting: Connection refused"
        );
    }

    #[test]
    fn constructors_hold_the_invariants() {
        let error = ProviderError::settings(Some("socket".into()), "in `haproxy` block: no");
        assert_eq!(
            (error.kind(), error.field()),
            (ErrorKind::Settings, Some("socket"))
        );
        assert_eq!(
            ProviderError::settings(Some(String::new()), "x").field(),
            None
        );
        assert_eq!(ProviderError::failed("x").field(), None);
        let timeout = ProviderError::timeout("`nginx -t`", Duration::from_millis(300));
        assert_eq!(timeout.kind(), ErrorKind::Timeout);
        assert_eq!(timeout.message(), "`nginx -t` timed out after 300ms");
        for (error, kind) in [
            (ProviderError::refused("r"), ErrorKind::Refused),
            (ProviderError::not_ready("n"), ErrorKind::NotReady),
            (ProviderError::conflict("c"), ErrorKind::Conflict),
            (ProviderError::withheld("w"), ErrorKind::Withheld),
            (ProviderError::tls("Caddy", refused_io()), ErrorKind::Tls),
        ] {
            assert_eq!(error.kind(), kind);
        }
    }

    #[test]
    fn kinds_are_snake_case_words() {
        assert_eq!(ErrorKind::NotReady.as_str(), "not_ready");
        assert_eq!(
            serde_json::to_value(ErrorKind::NotReady).unwrap(),
            serde_json::json!("not_ready")
        );
        assert_eq!(ErrorKind::Unreachable.to_string(), "unreachable");
    }
}
