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
    /// One measurement of an `analysis` block (its Prometheus query) was
    /// taken.
    AnalysisRound {
        /// The analysis step (`analysis.ROUTER.NAME`).
        id: StepId,
        /// Which measurement this is, from 1.
        round: u32,
        /// How many measurements the analysis takes when none fails too
        /// often (`count`).
        count: u32,
        /// The value read; `None` when the query returned no data or
        /// could not be read (see `detail`).
        value: Option<f64>,
        /// Whether this measurement passed.
        passed: bool,
        /// What it saw, for people: `0.031 > 0.01`, `no data`, or why
        /// nothing could be read (Prometheus' error, a refused connection).
        detail: String,
        /// Failed measurements so far, this one included.
        failures: u32,
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
    /// An apply waits for someone to approve a router's switch (`cutover
    /// approve ROUTER`): every check before the switch passed.
    AwaitingApproval {
        /// The router.
        router: String,
        /// The colour it switches to once approved.
        to: String,
        /// How long the apply waits.
        timeout: Duration,
    },
    /// A router's switch was approved.
    Approved {
        /// The router.
        router: String,
        /// Who approved it (as `cutover approve` recorded them).
        by: String,
    },
    /// A state-file write after a step.
    StateSaved {
        /// The new serial.
        serial: u64,
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
