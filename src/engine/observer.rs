//! Progress events. The engine never prints: it tells an [`Observer`], which
//! the CLI implements (human lines on a terminal, JSON lines with `--json`).

use std::time::Duration;

use super::error::StepError;
use crate::addr::{Address, StepId};

/// Something that happened during an apply.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A step started.
    StepStarted {
        /// Step id.
        id: StepId,
        /// What it does, for people.
        description: String,
    },
    /// A step finished.
    StepFinished {
        /// Step id.
        id: StepId,
        /// How long it took.
        elapsed: Duration,
        /// `None` on success, otherwise why it failed.
        error: Option<StepError>,
    },
    /// A health gate (or a router's verify) is still waiting.
    HealthWaiting {
        /// What is checked: `environment.NAME` (its gate) or `router.NAME`
        /// (its verify, after the switch).
        subject: Address,
        /// What it waits for (`GET http://... -> 200`).
        waiting_for: String,
        /// What the last attempt saw.
        last: String,
        /// Time left before the gate fails.
        remaining: Duration,
    },
    /// A cut-over waits for the router's own health check to see its
    /// target up (after cutover's gate passed).
    RouterWaiting {
        /// The router.
        router: String,
        /// What the router says it waits for.
        waiting_for: String,
        /// Time left before the cut-over gives up.
        remaining: Duration,
    },
    /// A router this apply cut over was switched back (rules 4 and 7).
    SwitchedBack {
        /// The router.
        router: String,
        /// The colour it is back on.
        to: String,
    },
    /// A router this apply cut over was NOT switched back, and why (the
    /// colour it came from is no longer what served, or the switch failed).
    SwitchBackRefused {
        /// The router.
        router: String,
        /// The colour it would have gone back to.
        to: String,
        /// Why not.
        why: String,
    },
    /// A signal asked the apply to stop: no new step starts.
    Stopping {
        /// The signal (`SIGINT`, `SIGTERM`).
        signal: &'static str,
        /// The steps still running, which are let finish (read-only ones
        /// are stopped at once).
        running: Vec<StepId>,
        /// A second signal: the running steps are stopped now.
        at_once: bool,
    },
    /// A state-file write after a step.
    StateSaved {
        /// The new serial.
        serial: u64,
    },
    /// A `notify` block's webhook was not sent an event, after its
    /// retries (engine::notify). A warning: it changes nothing else.
    NotifyFailed {
        /// The block's label.
        notify: String,
        /// The event's name (`cutover_done`, ...).
        event: &'static str,
        /// Why, for people: never the URL nor a header value.
        error: String,
        /// How many POSTs were tried (0: never sent).
        attempts: u32,
    },
}

/// Receives progress events.
pub trait Observer: Send + Sync {
    /// Called for every event, from any task.
    fn event(&self, event: &Event);
}

/// An observer that ignores everything (for tests and quiet runs).
#[derive(Debug, Default)]
pub struct Silent;

impl Observer for Silent {
    fn event(&self, _: &Event) {}
}
