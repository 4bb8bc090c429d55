//! cutover's `exec { ... }` backend: environments and routers driven by the
//! operator's own commands, speaking JSON.
//!
//! This is the bridge to everything cutover has no built-in backend for:
//! systemd, Docker, kubectl, cloud CLIs, any load balancer. Each action runs
//! one command, which receives one JSON object on stdin and prints one JSON
//! object on stdout; docs/exec-protocol.md is the protocol's reference.
//!
//! ```hcl
//! environment "blue" {
//!   exec {
//!     deploy  = ["./deploy.sh"]     # required
//!     read    = ["./read.sh"]       # required
//!     destroy = ["./destroy.sh"]    # optional
//!     timeout = "60s"               # optional, per command
//!     env     = { REGION = "eu" }   # optional
//!   }
//! }
//! router "lb" {
//!   exec {
//!     read   = ["./router-read.sh"]    # required
//!     switch = ["./router-switch.sh"]  # required
//!     check  = ["./router-check.sh"]   # optional, run before a cut-over
//!   }
//! }
//! ```
#![deny(missing_docs)]

mod environment;
mod router;
mod run;
mod settings;

pub use environment::ExecEnvironment;
pub use router::ExecRouter;

/// The decoding of the commands' replies, for the fuzz target `exec_reply`
/// (fuzz/): not part of the API.
#[doc(hidden)]
pub mod fuzzing {
    /// `stdout` decoded as each reply of the protocol (environment deploy,
    /// read and destroy; router read, switch and check), and every error
    /// made a message.
    pub fn replies(stdout: &[u8]) {
        let invocation = crate::run::Invocation {
            command: &[],
            workdir: std::path::Path::new("."),
            env: Default::default(),
            timeout: std::time::Duration::from_secs(1),
            purpose: "fuzzing".to_string(),
            exit_means: cutover_provider::ErrorKind::Failed,
        };
        crate::environment::decode_replies(&invocation, stdout);
        crate::router::decode_replies(&invocation, stdout);
    }
}

/// The version of the JSON protocol, sent as `"protocol"` in every input.
pub const PROTOCOL: u32 = 1;

#[cfg(test)]
mod tests;
