//! The trait an environment backend implements (`process {}`, `exec {}`).

use serde_json::Value;

use crate::{Deployed, EnvironmentSpec, LiveEnvironment, ProviderError};

/// A backend that runs environments: `process {}`, `exec {}`.
///
/// All four methods are required. `private` is what the last
/// [`deploy`](EnvironmentProvider::deploy) returned, as the state keeps it,
/// or `Value::Null` when cutover never deployed the environment; a provider
/// must accept a `private` it wrote in an older version, or say plainly that
/// it cannot read it.
///
/// The engine calls these methods concurrently for different environments
/// (at most its parallelism at a time), never for the same environment.
#[async_trait::async_trait]
pub trait EnvironmentProvider: Send + Sync {
    /// Check a backend block's settings. **Required.**
    ///
    /// Guarantees:
    /// - touches nothing live and does no I/O: it runs for `validate` and
    ///   before every plan, also with no network;
    /// - a wrong setting is an [`ErrorKind::Settings`](crate::ErrorKind::Settings)
    ///   error naming the attribute ([`crate::parse_settings`] does that).
    fn validate(&self, settings: &Value) -> Result<(), ProviderError>;

    /// Read what runs now. **Required.**
    ///
    /// Guarantees:
    /// - changes nothing;
    /// - bounded in time by the backend's settings (`exec`: `timeout` per
    ///   command);
    /// - something cutover deployed that no longer runs, or runs replaced,
    ///   is `exists: false` / a different `identity`, with an
    ///   [`EnvironmentDrift`](crate::EnvironmentDrift) of the right kind;
    ///   `private` in the result is what to keep in the state (the input's,
    ///   when nothing changed).
    async fn read(
        &self,
        spec: &EnvironmentSpec,
        private: &Value,
    ) -> Result<LiveEnvironment, ProviderError>;

    /// Make the environment run `spec`: create it, or replace what runs.
    /// **Required.** The engine calls it only for an environment that takes
    /// no live traffic (DESIGN.md §3), and then gates it on its health check.
    ///
    /// Guarantees:
    /// - converges: run again after a failed or interrupted apply (with the
    ///   same or an older `private`), it leaves `spec` running and nothing
    ///   else of this environment (`process` also stops a process it
    ///   started but never recorded);
    /// - bounded in time by the backend's settings (`process`: `grace` to
    ///   stop what ran, then a short start-up check; `exec`: `timeout`);
    /// - returns what identifies the new deployment and what to keep in the
    ///   state; on an error, says what was left running.
    async fn deploy(
        &self,
        spec: &EnvironmentSpec,
        private: &Value,
    ) -> Result<Deployed, ProviderError>;

    /// Remove the environment; `spec` is the last one deployed (its settings
    /// may no longer be valid). **Required.**
    ///
    /// Guarantees:
    /// - an environment already gone (or never deployed: `private` is null)
    ///   is a success, so that a destroy can be run again;
    /// - stops only what cutover deployed (`process` leaves alone a pid that
    ///   another process has taken);
    /// - bounded in time as [`deploy`](EnvironmentProvider::deploy) is.
    async fn destroy(&self, spec: &EnvironmentSpec, private: &Value) -> Result<(), ProviderError>;
}
