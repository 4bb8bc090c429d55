//! The generic state code (open, the journal, compare-and-swap) against an
//! in-memory backend shared by two "runners": what holds for the local file
//! holds for every backend, since none of it knows which one it runs on.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{check_expected, Backend, Held, Lock, Stamp};
use crate::state::approval::{self, ApproveError, Approved, Pause};
use crate::state::journal::{Entry, Journal};
use crate::state::lock::{LockError, LockInfo};
use crate::state::model::{RouterState, State};
use crate::state::{new_state, open, to_bytes, Access, Note, StateError};

/// What an approver runs between its read of the pause and its swap (a
/// racing approver), once.
type Race = Box<dyn FnOnce(&Memory) + Send>;

#[derive(Default)]
struct Store {
    state: Option<State>,
    journal: Option<String>,
    lock: Option<LockInfo>,
    pause: Option<Pause>,
    /// Bumped by every change of `pause`: what an approval's swap compares.
    pause_version: u64,
    /// How many swaps found the pause moved.
    swaps_refused: usize,
    race: Option<Race>,
}

/// A backend in memory; clones share it.
#[derive(Clone, Default)]
struct Memory(Arc<Mutex<Store>>);

struct MemoryHeld(Memory, String);

impl Held for MemoryHeld {
    fn release(&mut self) -> Result<(), LockError> {
        let mut store = self.0 .0.lock().unwrap();
        if store.lock.as_ref().map(|l| &l.id) == Some(&self.1) {
            store.lock = None;
        }
        Ok(())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl Memory {
    fn holds(&self, lock: &Lock) -> bool {
        self.0.lock().unwrap().lock.as_ref().map(|l| &l.id) == Some(&lock.info().id)
    }
}

impl Backend for Memory {
    fn kind(&self) -> &'static str {
        "memory"
    }
    fn describe(&self) -> String {
        "memory state".into()
    }
    fn journal_name(&self) -> String {
        "memory journal".into()
    }
    fn read_state(&self) -> Result<Option<State>, StateError> {
        Ok(self.0.lock().unwrap().state.clone())
    }
    fn read_journal(&self) -> Result<Option<String>, StateError> {
        Ok(self.0.lock().unwrap().journal.clone())
    }
    fn write_state(
        &self,
        lock: &Lock,
        expected: Option<&Stamp>,
        state: &State,
    ) -> Result<(), StateError> {
        assert!(self.holds(lock), "a write without the lock");
        let mut store = self.0.lock().unwrap();
        check_expected("memory state", expected, store.state.as_ref(), state)?;
        store.state = Some(state.clone());
        Ok(())
    }
    fn stored_size(&self) -> u64 {
        let store = self.0.lock().unwrap();
        store.state.as_ref().map_or(0, |s| to_bytes(s).len() as u64)
    }
    fn append_journal(&self, lock: &Lock, bytes: &[u8], fresh: bool) -> Result<(), StateError> {
        assert!(self.holds(lock), "a journal write without the lock");
        let mut store = self.0.lock().unwrap();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        match (&mut store.journal, fresh) {
            (Some(journal), false) => journal.push_str(&text),
            _ => store.journal = Some(text),
        }
        Ok(())
    }
    fn discard_journal(&self, lock: &Lock) -> Result<(), StateError> {
        assert!(self.holds(lock), "a journal removal without the lock");
        self.0.lock().unwrap().journal = None;
        Ok(())
    }
    fn check_writable(&self, _lock: &Lock) -> Result<(), String> {
        Ok(())
    }
    fn publish_pause(&self, lock: &Lock, pause: &Pause) -> Result<(), StateError> {
        assert!(self.holds(lock), "a pause published without the lock");
        approval::check_own(self, lock, pause)?;
        let mut store = self.0.lock().unwrap();
        store.pause = Some(pause.clone());
        store.pause_version += 1;
        Ok(())
    }
    fn read_pause(&self) -> Result<Option<Pause>, StateError> {
        Ok(self.0.lock().unwrap().pause.clone())
    }
    fn approve(&self, routers: &[String], by: &str) -> Result<Approved, ApproveError> {
        approval::approve_with(
            "memory state",
            routers,
            by,
            || {
                let store = self.0.lock().unwrap();
                Ok((store.pause.clone(), store.pause_version))
            },
            || Ok(self.0.lock().unwrap().lock.clone()),
            |version, approved| {
                let race = self.0.lock().unwrap().race.take();
                if let Some(race) = race {
                    race(self);
                }
                let mut store = self.0.lock().unwrap();
                if store.pause_version != version {
                    store.swaps_refused += 1;
                    return Ok(false);
                }
                store.pause = Some(approved.pause.clone());
                store.pause_version += 1;
                Ok(true)
            },
        )
    }
    fn clear_pause(&self, lock: &Lock) -> Result<(), StateError> {
        let mut store = self.0.lock().unwrap();
        if store.pause.as_ref().map(|p| &p.lock_id) == Some(&lock.info().id) {
            store.pause = None;
            store.pause_version += 1;
        }
        Ok(())
    }
    fn approval_poll(&self) -> Duration {
        Duration::from_millis(1)
    }
    fn lock(
        &self,
        operation: &str,
        _timeout: Duration,
        _waiting: &mut dyn FnMut(&LockInfo),
    ) -> Result<Lock, LockError> {
        let mut store = self.0.lock().unwrap();
        if let Some(holder) = &store.lock {
            return Err(LockError::Held {
                state: "memory state".into(),
                holder: Box::new(holder.clone()),
                stale: false,
            });
        }
        let info = LockInfo::ours(operation);
        store.lock = Some(info.clone());
        drop(store);
        let held = MemoryHeld(self.clone(), info.id.clone());
        Ok(Lock::new(self, info, Box::new(held)))
    }
    fn read_lock(&self) -> Result<Option<LockInfo>, LockError> {
        Ok(self.0.lock().unwrap().lock.clone())
    }
    fn force_unlock(&self, id: &str) -> Result<LockInfo, LockError> {
        let mut store = self.0.lock().unwrap();
        match store.lock.take() {
            Some(l) if l.id == id => Ok(l),
            Some(l) => {
                store.lock = Some(l.clone());
                Err(LockError::IdMismatch {
                    state: "memory state".into(),
                    given: id.into(),
                    actual: Box::new(l),
                })
            }
            None => Err(LockError::NotLocked {
                state: "memory state".into(),
            }),
        }
    }
}

fn switched(live: &str) -> Entry {
    Entry::Router(
        "public".into(),
        Some(RouterState {
            backend: "haproxy".into(),
            live: Some(live.into()),
            previous: None,
            preview: None,
            rolled_back: false,
        }),
    )
}

/// A runner killed after one synced step: its lock and journal stay.
fn killed_after_one_step(shared: &Memory) -> State {
    let lock = shared.lock("apply", Duration::ZERO, &mut |_| {}).unwrap();
    let mut state = new_state();
    let mut journal = Journal::open(shared, &lock, &state).unwrap();
    assert!(journal.record(switched("green"), &mut state));
    assert!(journal.sync(&state).unwrap());
    // SIGKILL: nothing more runs; the lock is not released.
    std::mem::forget(journal);
    std::mem::forget(lock);
    state
}

#[test]
fn a_journal_a_killed_runner_left_is_read_then_folded_by_another_runner() {
    let shared = Memory::default();
    let done = killed_after_one_step(&shared);
    let other = shared.clone();
    // The stored state is the one before the step; the journal holds it.
    assert_eq!(other.read_state().unwrap().unwrap().serial, 0);
    assert!(other.read_journal().unwrap().is_some());

    // While the lock is held, a read sees the step in memory, changes
    // nothing, and says who holds the lock.
    let read = open(&other, Access::Read).unwrap();
    assert_eq!(read.state.as_ref(), Some(&done));
    assert!(
        matches!(read.note, Some(Note::NotLocked { .. })),
        "{read:?}"
    );
    assert!(other.read_journal().unwrap().is_some(), "left alone");

    // Once the lock is cleared, the next command folds it.
    let holder = other.read_lock().unwrap().unwrap();
    other.force_unlock(&holder.id).unwrap();
    let opened = open(&other, Access::Read).unwrap();
    let folded = opened.folded.expect("folded");
    assert_eq!((folded.from_serial, folded.to_serial), (0, 1));
    assert_eq!(folded.after, None, "a shared backend has no file to commit");
    assert_eq!(other.read_state().unwrap().as_ref(), Some(&done));
    assert_eq!(other.read_journal().unwrap(), None);
    assert_eq!(other.read_lock().unwrap(), None, "the fold's lock released");
}

#[test]
fn a_write_that_expects_another_state_is_refused_and_writes_nothing() {
    let shared = Memory::default();
    let lock = shared.lock("apply", Duration::ZERO, &mut |_| {}).unwrap();
    let first = new_state();
    shared.write_state(&lock, None, &first).unwrap();
    // Another runner moved it on (a lock broken with force-unlock).
    let mut moved = first.clone();
    moved.serial = 7;
    shared.0.lock().unwrap().state = Some(moved.clone());

    let mut mine = first.clone();
    switched("green").apply_to(&mut mine);
    let err = shared
        .write_state(&lock, Some(&Stamp::of(&first)), &mine)
        .unwrap_err();
    let StateError::Conflict {
        expected, found, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(expected.as_ref(), Some(&Stamp::of(&first)));
    assert_eq!(found.as_ref(), Some(&Stamp::of(&moved)));
    assert!(err.to_string().contains("changed by another run"), "{err}");
    assert_eq!(shared.read_state().unwrap(), Some(moved), "nothing written");
    // A state there where none was expected is refused too.
    assert!(matches!(
        shared.write_state(&lock, None, &mine),
        Err(StateError::Conflict { .. })
    ));
}

#[test]
fn an_apply_journal_folds_into_the_stored_state_with_one_compare_and_swap() {
    let shared = Memory::default();
    let lock = shared.lock("apply", Duration::ZERO, &mut |_| {}).unwrap();
    let mut state = new_state();
    let mut journal = Journal::open(&shared, &lock, &state).unwrap();
    assert_eq!(shared.read_state().unwrap().unwrap().serial, 0, "created");
    journal.record(switched("green"), &mut state);
    journal.sync(&state).unwrap();
    journal.record(switched("blue"), &mut state);
    journal.sync(&state).unwrap();
    journal.finish(&state).unwrap();
    assert_eq!(shared.read_state().unwrap().unwrap().serial, 2);
    assert_eq!(shared.read_journal().unwrap(), None);
}

#[test]
fn a_journal_of_another_lineage_is_never_folded_nor_dropped() {
    let shared = Memory::default();
    killed_after_one_step(&shared);
    let holder = shared.read_lock().unwrap().unwrap();
    shared.force_unlock(&holder.id).unwrap();
    // The stored state was replaced by another configuration's since.
    let mut other = new_state();
    other.lineage = "another".into();
    shared.0.lock().unwrap().state = Some(other.clone());

    let lock = shared.lock("apply", Duration::ZERO, &mut |_| {}).unwrap();
    let err = open(&shared, Access::Locked(&lock)).unwrap_err();
    assert!(matches!(err, StateError::Journal { .. }), "{err:?}");
    let Err(err) = Journal::open(&shared, &lock, &other) else {
        panic!("the apply's journal accepted a foreign journal")
    };
    assert!(matches!(err, StateError::Journal { .. }), "{err:?}");
    assert!(shared.read_journal().unwrap().is_some(), "kept");
    assert_eq!(shared.read_state().unwrap(), Some(other));
}

/// A pause of `lock` for `routers`, a minute from now.
fn pause_of(lock: &Lock, routers: &[&str]) -> Pause {
    let deadline = std::time::SystemTime::now() + Duration::from_secs(60);
    Pause::new(lock, routers.iter().map(|r| r.to_string()), deadline)
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|r| r.to_string()).collect()
}

#[test]
fn a_published_pause_is_read_approved_router_by_router_polled_and_cleared() {
    let shared = Memory::default();
    let lock = shared.lock("apply", Duration::ZERO, &mut |_| {}).unwrap();
    let pause = pause_of(&lock, &["public", "admin", "public"]);
    assert_eq!(
        pause.routers,
        names(&["admin", "public"]),
        "sorted, once each"
    );
    assert_eq!(pause.holder, lock.info().who());
    shared.publish_pause(&lock, &pause).unwrap();

    let approver = shared.clone();
    assert_eq!(approver.read_pause().unwrap().as_ref(), Some(&pause));
    let first = approver
        .approve(&names(&["router.public"]), "bob@laptop")
        .unwrap();
    assert_eq!(
        (first.requested.clone(), first.now.clone()),
        (names(&["public"]), names(&["public"]))
    );
    let seen = approval::poll(&shared, &lock, &pause).unwrap();
    assert_eq!(seen.approved["public"].by, "bob@laptop");
    assert_eq!(seen.awaiting(), ["admin"], "the apply keeps waiting");

    // None named: every router still awaited; the first approver is kept.
    let rest = approver.approve(&[], "carol@ci").unwrap();
    assert_eq!(rest.now, names(&["admin"]));
    let seen = approval::poll(&shared, &lock, &pause).unwrap();
    assert!(seen.is_approved());
    assert_eq!(seen.approved["public"].by, "bob@laptop");
    assert_eq!(seen.approved["admin"].by, "carol@ci");
    // Approving twice writes nothing.
    let version = shared.0.lock().unwrap().pause_version;
    assert!(approver.approve(&[], "dave@x").unwrap().now.is_empty());
    assert_eq!(shared.0.lock().unwrap().pause_version, version);

    shared.clear_pause(&lock).unwrap();
    assert_eq!(approver.read_pause().unwrap(), None);
    let gone = approval::poll(&shared, &lock, &pause).unwrap_err();
    assert!(gone.to_string().contains("is gone"), "{gone}");
}

#[test]
fn a_cleared_pause_cannot_be_approved_and_the_refusal_names_the_holder() {
    let shared = Memory::default();
    let lock = shared.lock("apply", Duration::ZERO, &mut |_| {}).unwrap();
    shared
        .publish_pause(&lock, &pause_of(&lock, &["public"]))
        .unwrap();
    shared.clear_pause(&lock).unwrap();
    let err = shared.approve(&[], "bob").unwrap_err();
    let ApproveError::NotWaiting { holder, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(holder.as_ref().map(|h| &h.id), Some(&lock.info().id));
    assert!(err.to_string().contains(&lock.info().id), "{err}");
    assert_eq!(shared.read_pause().unwrap(), None, "nothing written");
}

#[test]
fn a_pause_left_by_an_apply_that_lost_its_lock_is_never_approved_nor_cleared_by_another() {
    let shared = Memory::default();
    let killed = shared.lock("apply", Duration::ZERO, &mut |_| {}).unwrap();
    let pause = pause_of(&killed, &["public"]);
    shared.publish_pause(&killed, &pause).unwrap();
    // Released without clearing its pause (SIGKILL, then force-unlock).
    shared.force_unlock(&killed.info().id).unwrap();
    std::mem::forget(killed);
    let err = shared.approve(&[], "bob").unwrap_err();
    assert!(
        matches!(&err, ApproveError::Stale { holder: None, .. }),
        "{err:?}"
    );

    // Another run holds the lock now: still stale, and it is named.
    let next = shared.lock("apply", Duration::ZERO, &mut |_| {}).unwrap();
    let err = shared.approve(&names(&["public"]), "bob").unwrap_err();
    let ApproveError::Stale {
        holder: Some(h), ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(h.id, next.info().id);
    assert!(err.to_string().contains("nothing was approved"), "{err}");
    // The other run's clear leaves what is not its own alone.
    shared.clear_pause(&next).unwrap();
    assert_eq!(shared.read_pause().unwrap(), Some(pause), "untouched");
}

#[test]
fn a_router_not_awaited_or_a_deadline_passed_approves_nothing() {
    let shared = Memory::default();
    let lock = shared.lock("apply", Duration::ZERO, &mut |_| {}).unwrap();
    let pause = pause_of(&lock, &["admin", "public"]);
    shared.publish_pause(&lock, &pause).unwrap();
    let version = shared.0.lock().unwrap().pause_version;
    let err = shared
        .approve(&names(&["public", "router.nope"]), "bob")
        .unwrap_err();
    let ApproveError::NotAwaited { unknown, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(unknown, &names(&["nope"]));
    assert!(
        err.to_string()
            .contains("waits for router.admin, router.public"),
        "{err}"
    );
    assert_eq!(
        shared.0.lock().unwrap().pause_version,
        version,
        "nothing written"
    );
    assert_eq!(shared.read_pause().unwrap(), Some(pause.clone()));

    let late = Pause {
        deadline_unix_ms: 1,
        ..pause
    };
    shared.publish_pause(&lock, &late).unwrap();
    let err = shared.approve(&[], "bob").unwrap_err();
    assert!(matches!(err, ApproveError::Expired { .. }), "{err:?}");
    assert!(shared.read_pause().unwrap().unwrap().approved.is_empty());
}

#[test]
fn racing_approvals_both_land() {
    let shared = Memory::default();
    let lock = shared.lock("apply", Duration::ZERO, &mut |_| {}).unwrap();
    let routers = ["a", "b", "c", "d", "e", "f"];
    let pause = pause_of(&lock, &routers);
    shared.publish_pause(&lock, &pause).unwrap();

    // Between the first approver's read and its swap, another approves:
    // the first swap is refused, read again, and both are kept.
    shared.0.lock().unwrap().race = Some(Box::new(|other: &Memory| {
        assert_eq!(
            other.approve(&names(&["b"]), "second").unwrap().now,
            names(&["b"])
        );
    }));
    let first = shared.approve(&names(&["a"]), "first").unwrap();
    assert_eq!(first.now, names(&["a"]));
    assert_eq!(
        shared.0.lock().unwrap().swaps_refused,
        1,
        "the race happened"
    );
    let now = shared.read_pause().unwrap().unwrap();
    assert_eq!(now.approved["a"].by, "first");
    assert_eq!(now.approved["b"].by, "second");

    // And approvers on threads of their own, all at once.
    let threads: Vec<_> = ["c", "d", "e", "f"]
        .into_iter()
        .map(|r| {
            let approver = shared.clone();
            std::thread::spawn(move || approver.approve(&names(&[r]), r).unwrap())
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let seen = approval::poll(&shared, &lock, &pause).unwrap();
    assert!(seen.is_approved(), "{seen:?}");
    for r in ["c", "d", "e", "f"] {
        assert_eq!(seen.approved[r].by, r);
    }
}

#[test]
fn a_pause_is_published_only_by_its_own_lock() {
    let shared = Memory::default();
    let lock = shared.lock("apply", Duration::ZERO, &mut |_| {}).unwrap();
    let mut pause = pause_of(&lock, &["public"]);
    pause.lock_id = "another".into();
    let err = shared.publish_pause(&lock, &pause).unwrap_err();
    assert!(err.to_string().contains("names lock another"), "{err}");
    assert_eq!(shared.read_pause().unwrap(), None);
}
