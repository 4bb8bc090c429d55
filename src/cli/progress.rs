//! The terminal's view of apply progress: a line when a step starts and ends
//! (with its elapsed time), and what a waiting health gate waits for.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::engine::observer::{Event, Observer};

/// Prints progress lines to stdout.
#[derive(Default)]
pub struct Lines {
    last_wait: Mutex<BTreeMap<String, Instant>>,
}

/// How often a waiting health gate repeats what it waits for.
const WAIT_EVERY: Duration = Duration::from_secs(5);

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

impl Observer for Lines {
    fn event(&self, event: &Event) {
        match event {
            Event::StepStarted { id, description } => println!("{id}: {description}..."),
            Event::StepFinished {
                id,
                elapsed,
                error: None,
            } => println!("{id}: done after {}", secs(*elapsed)),
            Event::StepFinished {
                id,
                elapsed,
                error: Some(e),
            } => println!("{id}: FAILED after {}: {e}", secs(*elapsed)),
            Event::HealthWaiting {
                environment,
                waiting_for,
                last,
                remaining,
            } => {
                let mut last_wait = self.last_wait.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                let due = last_wait
                    .get(environment)
                    .is_none_or(|t| now.duration_since(*t) >= WAIT_EVERY);
                if due {
                    last_wait.insert(environment.clone(), now);
                    println!(
                        "health.{environment}: still waiting for {waiting_for} ({} left; last: {last})",
                        secs(*remaining)
                    );
                }
            }
            Event::StateSaved { .. } => {}
        }
    }
}
