//! The store the apply walk writes its records to ([`super::walk::Store`]):
//! the journal beside the state file (state/journal.rs).

use super::walk::Store;
use crate::plan::sensitive::Secrets;
use crate::state::backend::{Backend, Lock};
use crate::state::journal::{Entry, Journal};
use crate::state::model::State;
use crate::state::StateError;

/// Records go to the journal, synced once per wave of finished steps, and
/// are folded into the state file when the journal has grown as large as
/// the state, and at the end: bytes written grow with the state, not with
/// steps × state.
pub struct JournalStore<'a>(Journal<'a>);

impl<'a> JournalStore<'a> {
    /// Start journaling onto `state` in `backend`, whose `lock` the caller
    /// holds (folding a journal a crash left first).
    pub fn open(
        backend: &'a dyn Backend,
        lock: &'a Lock,
        state: &State,
    ) -> Result<Self, StateError> {
        Ok(JournalStore(Journal::open(backend, lock, state)?))
    }

    /// Sync what is left and fold it into the state file.
    pub fn finish(self, state: &State) -> Result<(), StateError> {
        self.0.finish(state)
    }
}

impl Store for JournalStore<'_> {
    fn record(&mut self, entry: Entry, state: &mut State) -> bool {
        self.0.record(entry, state)
    }

    fn sync(&mut self, state: &mut State) -> Result<bool, StateError> {
        self.0.sync(state)
    }

    fn confirm(&mut self) -> Result<(), StateError> {
        self.0.confirm()
    }
}

/// The store an apply uses: the journal, with every record's sensitive
/// values replaced by their markers first (plan::sensitive), so that
/// neither the journal nor the state ever holds one.
pub struct ApplyStore<'a> {
    journal: JournalStore<'a>,
    secrets: Secrets,
}

impl<'a> ApplyStore<'a> {
    /// Open the store for an apply of `state` in `backend`, whose `lock` the
    /// caller holds.
    pub fn open(
        backend: &'a dyn Backend,
        lock: &'a Lock,
        state: &State,
        secrets: &Secrets,
    ) -> Result<Self, StateError> {
        Ok(ApplyStore {
            journal: JournalStore::open(backend, lock, state)?,
            secrets: secrets.clone(),
        })
    }

    /// Make everything durable in the state file itself.
    pub fn finish(self, state: &State) -> Result<(), StateError> {
        self.journal.finish(state)
    }

    /// The store as the walk sees it.
    pub fn as_store(&mut self) -> &mut (dyn Store + 'a) {
        self
    }
}

impl Store for ApplyStore<'_> {
    fn record(&mut self, entry: Entry, state: &mut State) -> bool {
        self.journal.record(self.secrets.entry(entry), state)
    }

    fn sync(&mut self, state: &mut State) -> Result<bool, StateError> {
        self.journal.sync(state)
    }

    fn confirm(&mut self) -> Result<(), StateError> {
        self.journal.confirm()
    }
}
