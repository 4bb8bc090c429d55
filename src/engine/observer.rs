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
    /// A cut-over (or a preview's repoint) waits for the router's own
    /// health check to see its target up (after cutover's gate passed).
    RouterWaiting {
        /// The step that waits: `cutover.ROUTER` or `preview.ROUTER`.
        step: StepId,
        /// The router.
        router: String,
        /// What the router says it waits for.
        waiting_for: String,
        /// Time left before the cut-over gives up.
        remaining: Duration,
    },
    /// A drain with `drain_until_idle` counted sessions still open to the
    /// colour it drains: sent when the count changes, and about every
    /// second while it does not.
    DrainWaiting {
        /// The step that waits: `drain.ROUTER`, or `settle.NAME` (the wait
        /// before an environment's change).
        step: StepId,
        /// The router whose cut-over drained the colour.
        router: String,
        /// The drained colour.
        colour: String,
        /// The sessions the router holds open to it.
        sessions: u64,
        /// Time left before the drain ends anyway (its `drain`).
        remaining: Duration,
    },
    /// A drain with `drain_until_idle` could not read the count: it asks
    /// again, and at its maximum it ends anyway.
    DrainUnreadable {
        /// The step that waits: `drain.ROUTER`, or `settle.NAME` (the wait
        /// before an environment's change).
        step: StepId,
        /// The router.
        router: String,
        /// The drained colour.
        colour: String,
        /// What the router's provider said.
        error: String,
        /// Time left before the drain ends anyway.
        remaining: Duration,
    },
    /// A drain with `drain_until_idle` ended (just before its step finishes).
    DrainEnded {
        /// The step that waits: `drain.ROUTER`, or `settle.NAME` (the wait
        /// before an environment's change).
        step: StepId,
        /// The router.
        router: String,
        /// The drained colour.
        colour: String,
        /// Why it ended.
        end: DrainEnd,
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
    /// The instances of a fleet router (`instances = [...]`) were all
    /// switched: when each was confirmed, after the first (the cut-over's
    /// skew). Sent before the cut-over's verify; its `step_finished` and
    /// `cutover_done` follow.
    InstancesSwitched {
        /// The router.
        router: String,
        /// The colour every instance now sends traffic to.
        to: String,
        /// Each instance, in the configuration's order.
        instances: Vec<cutover_provider::InstanceSwitch>,
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

/// Why a drain with `drain_until_idle` ended. Every end is a success: a
/// drain runs after the switch, and never sends traffic back (rule 7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrainEnd {
    /// The router counted no open session to the colour.
    Idle,
    /// The maximum (`drain`) came first.
    Maximum {
        /// The sessions still open at the last count; `None` when the last
        /// read of the count failed.
        sessions: Option<u64>,
        /// Why the last read failed, when it did.
        error: Option<String>,
    },
    /// The router cannot count open sessions: the drain waited its whole
    /// `drain`.
    ByTime,
}

impl DrainEnd {
    /// `idle`, `maximum` or `by_time`, as `drain_ended` lines say.
    pub fn as_str(&self) -> &'static str {
        match self {
            DrainEnd::Idle => "idle",
            DrainEnd::Maximum { .. } => "maximum",
            DrainEnd::ByTime => "by_time",
        }
    }

    /// The warning this end deserves, if any: sessions may still have been
    /// open when the drained colour's change began.
    pub fn warning(&self, step: &StepId, colour: &str) -> Option<String> {
        let DrainEnd::Maximum { sessions, error } = self else {
            return None;
        };
        let (max, waited) = match step {
            StepId::Settle(_) => ("wait's maximum", "the wait ended at its maximum"),
            _ => ("drain's maximum", "the drain waited its maximum"),
        };
        Some(match (sessions, error) {
            (Some(n), _) => format!(
                "{n} session{} still open to {colour} at the {max}; going on, so a change of {colour} may cut {}",
                if *n == 1 { " was" } else { "s were" },
                if *n == 1 { "it" } else { "them" },
            ),
            (None, Some(e)) => format!(
                "{colour}'s open sessions could not be counted ({e}); {waited}"
            ),
            (None, None) => {
                format!("{colour}'s open sessions could not be counted before the {max}")
            }
        })
    }
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
