//! The stores the apply walk writes its records to ([`super::walk::Store`]):
//! the journal beside the state file (state/journal.rs), or, while
//! sensitive values must be scrubbed from every write, the state file
//! itself after every wave of steps.

use std::path::{Path, PathBuf};

use super::walk::Store;
use crate::plan::sensitive::Scrubber;
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

/// Records go straight into the state file, scrubbed of every sensitive
/// value, once per wave of finished steps.
pub struct FileStore {
    path: PathBuf,
    scrubber: Scrubber,
    dirty: bool,
}

impl FileStore {
    /// A store writing `path`, scrubbing with `scrubber`.
    pub fn new(path: &Path, scrubber: Scrubber) -> Self {
        FileStore {
            path: path.to_owned(),
            scrubber,
            dirty: false,
        }
    }
}

impl Store for FileStore {
    fn record(&mut self, entry: Entry, state: &mut State) -> bool {
        let changed = entry.apply_to(state);
        self.dirty |= changed;
        changed
    }

    fn sync(&mut self, state: &mut State) -> Result<bool, StateError> {
        if !self.dirty {
            return Ok(false);
        }
        *state = self.scrubber.scrub(state);
        // Still dirty when the write fails: the next sync tries again.
        crate::state::save(&self.path, state)?;
        self.dirty = false;
        Ok(true)
    }
}

/// The store an apply uses: the journal, unless sensitive values must be
/// scrubbed from every write.
pub enum ApplyStore {
    /// See [`JournalStore`].
    Journal(JournalStore),
    /// See [`FileStore`].
    File(FileStore),
}

impl ApplyStore {
    /// Open the store for an apply of `state` at `path`. A state that does
    /// not exist on disk yet is written first, even when the plan changes
    /// nothing, so the lineage is fixed from the first apply.
    pub fn open(path: &Path, state: &mut State, scrubber: &Scrubber) -> Result<Self, StateError> {
        if scrubber.is_empty() {
            return Ok(ApplyStore::Journal(JournalStore::open(path, state)?));
        }
        if !path.exists() {
            *state = scrubber.scrub(state);
            crate::state::save(path, state)?;
        }
        Ok(ApplyStore::File(FileStore::new(path, scrubber.clone())))
    }

    /// Make everything durable in the state file itself.
    pub fn finish(self, state: &mut State) -> Result<(), StateError> {
        match self {
            ApplyStore::Journal(j) => j.finish(state),
            ApplyStore::File(mut f) => f.sync(state).map(drop),
        }
    }

    /// The store as the walk sees it.
    pub fn as_store(&mut self) -> &mut dyn Store {
        match self {
            ApplyStore::Journal(j) => j,
            ApplyStore::File(f) => f,
        }
    }
}
