//! Progress events. The engine never prints: it tells an [`Observer`], which
//! the CLI implements (human lines on a terminal, JSON lines later).

use std::time::Duration;

/// Something that happened during an apply.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A step started.
    StepStarted {
        /// Step id.
        id: String,
        /// What it does, for people.
        description: String,
    },
    /// A step finished.
    StepFinished {
        /// Step id.
        id: String,
        /// How long it took.
        elapsed: Duration,
        /// `None` on success, otherwise the error.
        error: Option<String>,
    },
    /// A health gate is still waiting.
    HealthWaiting {
        /// The environment.
        environment: String,
        /// What it waits for (`GET http://... -> 200`).
        waiting_for: String,
        /// What the last attempt saw.
        last: String,
        /// Time left before the gate fails.
        remaining: Duration,
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
