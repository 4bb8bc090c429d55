//! Cut-overs switched together: the ready cut-overs of one router backend
//! that [`switches_in_batches`] go to the provider in one
//! [`switch_batch`] call (HAProxy: one conversation and one map-file
//! rewrite for all the keys of a map, instead of one each).
//!
//! Each cut-over stays its own step, with its own task, events, record and
//! [`SwitchSlot`]: the batch only replaces each one's first switch
//! attempt. The first step of the batch (its leader) makes the call for
//! all; the others wait for their result. What follows the switch (waiting
//! for a router that is not ready yet, then switching that one alone; the
//! `verify`) runs at most `parallelism` at a time.
//!
//! Every slot says `attempted` before the call: a step stopped while its
//! batch runs counts as maybe switched, and is switched back (rule 7). If
//! the leader's task ends before the call answered (stopped, panicked),
//! the others learn it and fail the same way.
//!
//! [`switches_in_batches`]: cutover_provider::RouterProvider::switches_in_batches
//! [`switch_batch`]: cutover_provider::RouterProvider::switch_batch

use std::sync::{Arc, Mutex};

use cutover_provider::{Colour, InstanceSwitch, ProviderError, RouterProvider, RouterSpec};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use super::walk::SwitchSlot;

type Switched = Result<Vec<InstanceSwitch>, ProviderError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Pending,
    Given,
    /// The leader's task ended without an answer.
    Abandoned,
}

struct Batch {
    provider: Arc<dyn RouterProvider>,
    switches: Vec<(RouterSpec, Colour)>,
    slots: Vec<SwitchSlot>,
    results: Vec<Mutex<Option<Switched>>>,
    answer: watch::Sender<Answer>,
    after: Arc<Semaphore>,
    /// Set when the apply stops ([`Stopper::stop`]).
    stopped: Arc<watch::Sender<bool>>,
}

/// One cut-over's place in a batch.
pub(super) struct Ticket {
    batch: Arc<Batch>,
    position: usize,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Ticket({} of {})",
            self.position,
            self.batch.switches.len()
        )
    }
}

/// The tickets of a batch of cut-overs through `provider`: one per
/// `(spec, target, slot)`, in order; the first is the leader's.
pub(super) fn tickets(
    provider: Arc<dyn RouterProvider>,
    switches: Vec<(RouterSpec, Colour, SwitchSlot)>,
    parallelism: usize,
) -> Vec<Ticket> {
    let mut specs = Vec::with_capacity(switches.len());
    let mut slots = Vec::with_capacity(switches.len());
    for (spec, target, slot) in switches {
        specs.push((spec, target));
        slots.push(slot);
    }
    let (answer, _) = watch::channel(Answer::Pending);
    let batch = Arc::new(Batch {
        provider,
        results: specs.iter().map(|_| Mutex::new(None)).collect(),
        switches: specs,
        slots,
        answer,
        after: Arc::new(Semaphore::new(parallelism.max(1))),
        stopped: Arc::new(watch::channel(false).0),
    });
    (0..batch.switches.len())
        .map(|position| Ticket {
            batch: batch.clone(),
            position,
        })
        .collect()
}

impl Ticket {
    /// This cut-over's first switch: made by the leader for the whole
    /// batch, waited for by the others.
    pub async fn first_switch(&self) -> Switched {
        let batch = &self.batch;
        if self.position == 0 {
            // Every slot first: traffic may move from here on.
            for slot in &batch.slots {
                slot.lock().unwrap_or_else(|p| p.into_inner()).attempted = true;
            }
            let switches: Vec<(&RouterSpec, &Colour)> =
                batch.switches.iter().map(|(s, c)| (s, c)).collect();
            let results = batch.provider.switch_batch(&switches).await;
            for (cell, result) in batch.results.iter().zip(results) {
                *cell.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
            }
            batch.answer.send_replace(Answer::Given);
        } else {
            let mut answer = batch.answer.subscribe();
            let given = answer.wait_for(|a| *a != Answer::Pending).await.map(|a| *a);
            if !matches!(given, Ok(Answer::Given)) {
                return Err(ProviderError::failed(
                    "the batch of switches this cut-over was in ended before the router answered \
                     (its first step was stopped or failed): the router may have switched",
                ));
            }
        }
        batch.results[self.position]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_else(|| Err(ProviderError::failed("the batch gave no result")))
    }

    /// A turn for what follows the switch (at most `parallelism` of the
    /// batch at once); `None` once the apply stops ([`Stopper::stop`]).
    pub async fn after_switch(&self) -> Option<OwnedSemaphorePermit> {
        self.batch.after.clone().acquire_owned().await.ok()
    }

    /// Resolves once the apply stops: what runs after the switch (a
    /// verify) ends then, as the others of the batch will be switched back.
    pub async fn stopped(&self) {
        let mut stopped = self.batch.stopped.subscribe();
        // The sender lives as long as the batch: no error while we wait.
        let _ = stopped.wait_for(|s| *s).await;
    }

    /// What stops the batch's waits for a turn, and its verifies.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            turns: self.batch.after.clone(),
            stopped: self.batch.stopped.clone(),
        }
    }
}

/// Ends a batch's waits for a turn and its verifies: when the apply stops (a
/// step failed, a signal), its cut-overs still verifying, waiting to verify
/// or waiting for a router that was not ready end at once, interrupted,
/// rather than one by one while traffic sits on the new colour; every router
/// they moved is switched back with the rest.
#[derive(Clone)]
pub(super) struct Stopper {
    turns: Arc<Semaphore>,
    stopped: Arc<watch::Sender<bool>>,
}

impl Stopper {
    pub fn stop(&self) {
        self.turns.close();
        self.stopped.send_replace(true);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.position == 0 {
            // The leader's task ended: if it did not answer, it never will.
            self.batch.answer.send_if_modified(|a| {
                let pending = *a == Answer::Pending;
                if pending {
                    *a = Answer::Abandoned;
                }
                pending
            });
        }
    }
}
