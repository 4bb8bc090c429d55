//! Typed failures of the engine: why a step failed, with a kind that the
//! JSON events carry (`error_kind`), so CI and chat bots can tell a timeout
//! from a refusal without reading sentences.

use cutover_provider::ProviderError;
use serde::Serialize;

/// What kind of failure a step had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// A backend block's settings are wrong.
    Settings,
    /// A live system could not be reached.
    Unreachable,
    /// A connection was refused (a health probe), or the live system
    /// answered and refused the change (no such backend, a server in
    /// maintenance).
    Refused,
    /// Something did not answer or finish in time.
    Timeout,
    /// A TLS handshake or certificate failed.
    Tls,
    /// A name did not resolve.
    Dns,
    /// The router could not yet send traffic to the target, and waiting
    /// for it ran out.
    NotReady,
    /// Someone else changed the router at the same time.
    Conflict,
    /// A health gate did not pass.
    GateFailed,
    /// The check through the router after a cut-over failed.
    VerifyFailed,
    /// A router's `test` hook exited with a failure.
    TestFailed,
    /// Nobody approved a paused cut-over in time.
    NotApproved,
    /// An `analysis` block's measurements failed more often than its
    /// `failure_limit` allows.
    AnalysisFailed,
    /// A provider panicked (a bug in it).
    Panicked,
    /// The step was stopped by a signal before it finished.
    Interrupted,
    /// The plan breaks a rule of the cut-over (a switch without its gate).
    Invalid,
    /// Anything else a live system reported.
    Failed,
}

impl ErrorKind {
    /// The label in JSON, e.g. `gate_failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Settings => "settings",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Refused => "refused",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Tls => "tls",
            ErrorKind::Dns => "dns",
            ErrorKind::NotReady => "not_ready",
            ErrorKind::Conflict => "conflict",
            ErrorKind::GateFailed => "gate_failed",
            ErrorKind::VerifyFailed => "verify_failed",
            ErrorKind::TestFailed => "test_failed",
            ErrorKind::NotApproved => "not_approved",
            ErrorKind::AnalysisFailed => "analysis_failed",
            ErrorKind::Panicked => "panicked",
            ErrorKind::Interrupted => "interrupted",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Failed => "failed",
        }
    }
}

/// Why a step failed: a kind, and a sentence for people that names what
/// failed (`router.public: ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    /// The kind of failure.
    pub kind: ErrorKind,
    /// For a gate or a verify that did not pass: the kind of its last
    /// failed probe (`refused`, `timeout`, `tls`, `status`, ...); for an
    /// analysis, of its last failed measurement (`out_of_bounds`,
    /// `no_data`, `query_error`, `refused`, ...).
    pub cause: Option<&'static str>,
    /// What happened.
    pub message: String,
}

impl StepError {
    /// A failure of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        StepError {
            kind,
            cause: None,
            message: message.into(),
        }
    }

    /// A gate or verify of `kind` that did not pass.
    pub fn gate(kind: ErrorKind, e: &super::health::GateError) -> Self {
        StepError {
            kind,
            cause: Some(e.kind()),
            message: e.to_string(),
        }
    }

    /// A provider's failure, said of `what` (`router.public`), with its
    /// causes, each once.
    pub fn provider(what: &str, e: &ProviderError) -> Self {
        StepError::new(provider_kind(e), format!("{what}: {}", e.describe()))
    }
}

/// The kind of a provider's failure.
pub fn provider_kind(e: &ProviderError) -> ErrorKind {
    use cutover_provider::ErrorKind as Provider;
    match e.kind() {
        Provider::Settings => ErrorKind::Settings,
        Provider::Unreachable => ErrorKind::Unreachable,
        Provider::Timeout => ErrorKind::Timeout,
        Provider::Tls => ErrorKind::Tls,
        Provider::Refused => ErrorKind::Refused,
        Provider::NotReady => ErrorKind::NotReady,
        Provider::Conflict => ErrorKind::Conflict,
        // Held back for another's failure, which is the apply's.
        Provider::Withheld => ErrorKind::Interrupted,
        Provider::Failed => ErrorKind::Failed,
    }
}

/// An error and its causes on one line, each said once: a cause whose words
/// the message already holds (many errors quote their source) is not
/// repeated. The CLI's last word on an error, and `status`'s per address.
pub fn said_once(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let words = cause.to_string();
        if !text.contains(&words) {
            text.push_str(": ");
            text.push_str(&words);
        }
        source = cause.source();
    }
    text
}
