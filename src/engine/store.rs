//! The store the apply walk writes its records to ([`super::walk::Store`]):
//! the journal beside the state file (state/journal.rs).

use std::path::Path;

use super::walk::Store;
use crate::plan::sensitive::Secrets;
use crate::state::journal::{Entry, Journal};
use crate::state::model::State;
use crate::state::StateError;

/// Records go to the journal, synced once per wave of finished steps, and
/// are folded into the state file when the journal has grown as large as
/// the state, and at the end: bytes written grow with the state, not with
/// steps × state.
pub struct JournalStore(Journal);

impl JournalStore {
    /// Start journaling onto `state` (folding a journal a crash left first).
    pub fn open(path: &Path, state: &State) -> Result<Self, StateError> {
        Ok(JournalStore(Journal::open(path, state)?))
    }

    /// Sync what is left and fold it into the state file.
    pub fn finish(self, state: &State) -> Result<(), StateError> {
        self.0.finish(state)
    }
}

impl Store for JournalStore {
    fn record(&mut self, entry: Entry, state: &mut State) -> bool {
        self.0.record(entry, state)
    }

    fn sync(&mut self, state: &mut State) -> Result<bool, StateError> {
        self.0.sync(state)
    }
}

/// The store an apply uses: the journal, with every record's sensitive
/// values replaced by their markers first (plan::sensitive), so that
/// neither the journal nor the state ever holds one.
pub struct ApplyStore {
    journal: JournalStore,
    secrets: Secrets,
}

impl ApplyStore {
    /// Open the store for an apply of `state` at `path`.
    pub fn open(path: &Path, state: &State, secrets: &Secrets) -> Result<Self, StateError> {
        Ok(ApplyStore {
            journal: JournalStore::open(path, state)?,
            secrets: secrets.clone(),
        })
    }

    /// Make everything durable in the state file itself.
    pub fn finish(self, state: &State) -> Result<(), StateError> {
        self.journal.finish(state)
    }

    /// The store as the walk sees it.
    pub fn as_store(&mut self) -> &mut dyn Store {
        self
    }
}

impl Store for ApplyStore {
    fn record(&mut self, entry: Entry, state: &mut State) -> bool {
        self.journal.record(self.secrets.entry(entry), state)
    }

    fn sync(&mut self, state: &mut State) -> Result<bool, StateError> {
        self.journal.sync(state)
    }
}
