//! The approval channel: how an apply that waits for approval before its
//! cut-over says so, how `cutover approve` — another process, perhaps on
//! another machine — finds it and releases it, and how the apply learns of
//! it.
//!
//! The waiting apply holds the state lock. It publishes a [`Pause`] in the
//! state backend, beside the lock ([`Backend::publish_pause`]): the id of
//! its lock, the routers it waits for, its deadline and who it is. An
//! approver takes no lock (the apply holds it); it changes the pause by a
//! compare-and-swap read-modify-write ([`approve_with`], used by every
//! backend's [`Backend::approve`]), so that two approvers racing both land
//! and none is lost. The apply polls the pause ([`poll`]) until every router
//! it waits for is approved or its deadline passes, then clears it
//! ([`Backend::clear_pause`]) before it releases its lock.
//!
//! Approval is refused, changing nothing, unless the pause's lock is the
//! lock held now by a live holder: a pause left by an apply that was killed
//! (its lock released, broken with `force-unlock`, or held by a process
//! that is gone) will never switch anything, and approving it would only
//! mislead. Each backend keeps the pause where it keeps its lock
//! (docs/backends.md): a file beside the local state, a row of
//! `cutover_approvals` in PostgreSQL, a branch beside the git lock branch.

pub(crate) mod local;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::backend::{Backend, Lock};
use super::lock::{LockError, LockInfo};
use super::{named, StateError};

/// What a waiting apply publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    /// The id of the lock the waiting apply holds.
    pub lock_id: String,
    /// The names of the routers awaiting approval, sorted.
    pub routers: Vec<String>,
    /// When the apply gives up, in milliseconds since the Unix epoch.
    pub deadline_unix_ms: u64,
    /// Who waits, as [`LockInfo::who`] shows a holder (`alice@build-01 pid 4242`).
    pub holder: String,
    /// Router name -> who approved it (the first approver is kept).
    pub approved: BTreeMap<String, Approval>,
}

/// One router's approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// Who approved it (`bob@laptop`).
    pub by: String,
    /// When, in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
}

impl Pause {
    /// The pause of the apply holding `lock`, waiting for `routers` (sorted
    /// and deduplicated here) until `deadline`.
    pub fn new(
        lock: &Lock,
        routers: impl IntoIterator<Item = String>,
        deadline: SystemTime,
    ) -> Pause {
        let mut routers: Vec<String> = routers.into_iter().collect();
        routers.sort();
        routers.dedup();
        Pause {
            lock_id: lock.info().id.clone(),
            routers,
            deadline_unix_ms: unix_ms(deadline),
            holder: lock.info().who(),
            approved: BTreeMap::new(),
        }
    }

    /// The routers not approved yet, sorted.
    pub fn awaiting(&self) -> Vec<&str> {
        self.routers
            .iter()
            .filter(|r| !self.approved.contains_key(*r))
            .map(String::as_str)
            .collect()
    }

    /// Whether every router it waits for is approved.
    pub fn is_approved(&self) -> bool {
        self.awaiting().is_empty()
    }

    /// The deadline as a time.
    pub fn deadline(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.deadline_unix_ms)
    }

    /// The deadline in messages, RFC 3339 in UTC.
    pub fn deadline_text(&self) -> String {
        humantime::format_rfc3339_seconds(self.deadline()).to_string()
    }

    /// The routers it waits for, as addresses (`router.a, router.b`).
    pub fn routers_text(&self) -> String {
        addresses(self.routers.iter())
    }

    /// Its stored form: JSON, two-space indent, final newline (the same
    /// bytes for the same pause).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("a Pause always serializes");
        bytes.push(b'\n');
        bytes
    }

    /// A stored pause; `place` names where it was read, in the error.
    pub fn from_bytes(place: &str, bytes: &[u8]) -> Result<Pause, StateError> {
        serde_json::from_slice(bytes).map_err(|e| StateError::Backend {
            state: place.to_owned(),
            message: format!(
                "the pause published for approval cannot be read (line {}, column {}): {e}",
                e.line(),
                e.column()
            ),
        })
    }
}

/// What [`Backend::approve`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approved {
    /// The pause as it is now, with every approval.
    pub pause: Pause,
    /// The routers the call named (every awaited one, when it named none).
    pub requested: Vec<String>,
    /// Those of them this call approved; the others were approved before.
    pub now: Vec<String>,
}

/// Why `cutover approve` approved nothing. Each message says what to do.
#[derive(Debug, Error)]
pub enum ApproveError {
    /// No apply has published a pause.
    #[error("{}", not_waiting(state, holder.as_deref()))]
    NotWaiting {
        /// The state, as its backend names it.
        state: String,
        /// Who holds the lock, if anyone.
        holder: Option<Box<LockInfo>>,
    },
    /// The pause was published under a lock that is not held any more.
    #[error("{}", stale(state, pause, holder.as_deref()))]
    Stale {
        /// The state, as its backend names it.
        state: String,
        /// The pause found.
        pause: Box<Pause>,
        /// Who holds the lock now, if anyone.
        holder: Option<Box<LockInfo>>,
    },
    /// The pause's lock is still there, but its holder's process is gone
    /// (it ran on this host): a killed apply.
    #[error(
        "the apply that waits for approval on {} ({}) is gone: its process no longer runs on \
         this host, though its lock remains; nothing was approved. Check that nothing else is \
         applying, then remove the lock with `cutover force-unlock {}` and run the apply again",
        named(state), pause.holder, pause.lock_id
    )]
    Gone {
        /// The state, as its backend names it.
        state: String,
        /// The pause found.
        pause: Box<Pause>,
    },
    /// A router named is not one the apply waits for.
    #[error(
        "{} {} not waiting for approval on {}: the apply of {} waits for {}; nothing was \
         approved. Name routers from that list, or none to approve them all",
        addresses(unknown.iter()),
        if unknown.len() == 1 { "is" } else { "are" },
        named(state), pause.holder, pause.routers_text()
    )]
    NotAwaited {
        /// The state, as its backend names it.
        state: String,
        /// The routers named that it does not wait for.
        unknown: Vec<String>,
        /// The pause found.
        pause: Box<Pause>,
    },
    /// The apply's deadline passed: it switches nothing.
    #[error(
        "the apply of {} on {} stopped waiting for approval at {} (its timeout passed), so it \
         switches nothing; nothing was approved. Run the apply again",
        pause.holder, named(state), pause.deadline_text()
    )]
    Expired {
        /// The state, as its backend names it.
        state: String,
        /// The pause found.
        pause: Box<Pause>,
    },
    /// The pause kept changing under the compare-and-swap.
    #[error(
        "the pause on {} changed {attempts} times while this approval was written; nothing was \
         approved. Run `cutover approve` again",
        named(state)
    )]
    Contended {
        /// The state, as its backend names it.
        state: String,
        /// How many times the write was tried.
        attempts: usize,
    },
    /// The backend could not read or write the pause.
    #[error(transparent)]
    State(#[from] StateError),
    /// The backend could not tell who holds the lock.
    #[error(transparent)]
    Lock(#[from] LockError),
}

fn not_waiting(state: &str, holder: Option<&LockInfo>) -> String {
    let who = match holder {
        Some(h) => format!(
            "its lock is held by {} (lock id {}), which does not wait for approval",
            h.describe(),
            h.id
        ),
        None => "nobody holds its lock".to_owned(),
    };
    format!(
        "no apply is waiting for approval on {}: {who}. `cutover approve` releases an apply \
         that printed that it waits for approval: run it while that apply waits",
        named(state)
    )
}

fn stale(state: &str, pause: &Pause, holder: Option<&LockInfo>) -> String {
    let now = match holder {
        Some(h) => format!("the lock is held by {} now", h.describe()),
        None => "nobody holds the lock now".to_owned(),
    };
    format!(
        "the pause on {} (for {}, published by {}) was left by an apply that no longer holds \
         its lock {} ({now}): that apply will not switch anything, so nothing was approved. Run \
         the apply again: it waits for approval anew",
        named(state),
        pause.routers_text(),
        pause.holder,
        pause.lock_id
    )
}

/// `router.a, router.b`.
fn addresses<'a>(names: impl Iterator<Item = &'a String>) -> String {
    names
        .map(|n| format!("router.{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Who approves, as approvals record it: `user@host`.
pub fn approver() -> String {
    format!("{}@{}", super::lock::username(), super::lock::hostname())
}

/// A router as `cutover approve` takes it: `public` or `router.public`
/// (an instance's key quoted or not: `svc["api"]`, `svc[api]`).
pub fn router_name(arg: &str) -> String {
    crate::addr::name_arg(arg.strip_prefix("router.").unwrap_or(arg))
}

/// The pause `found` with `routers` approved by `by` at `now_ms`, given
/// who holds the lock now; refused as [`ApproveError`] says. Written once,
/// for every backend.
pub fn decide(
    state: &str,
    found: Option<Pause>,
    holder: Option<LockInfo>,
    routers: &[String],
    by: &str,
    now_ms: u64,
) -> Result<Approved, ApproveError> {
    let Some(mut pause) = found else {
        return Err(ApproveError::NotWaiting {
            state: state.to_owned(),
            holder: holder.map(Box::new),
        });
    };
    let state = state.to_owned();
    match holder {
        Some(h) if h.id == pause.lock_id => {
            if h.is_stale() {
                let pause = Box::new(pause);
                return Err(ApproveError::Gone { state, pause });
            }
        }
        other => {
            return Err(ApproveError::Stale {
                state,
                pause: Box::new(pause),
                holder: other.map(Box::new),
            })
        }
    }
    if now_ms > pause.deadline_unix_ms {
        return Err(ApproveError::Expired {
            state,
            pause: Box::new(pause),
        });
    }
    let mut requested: Vec<String> = routers.iter().map(|r| router_name(r).to_owned()).collect();
    requested.sort();
    requested.dedup();
    let unknown: Vec<String> = requested
        .iter()
        .filter(|r| !pause.routers.contains(r))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        let pause = Box::new(pause);
        return Err(ApproveError::NotAwaited {
            state,
            unknown,
            pause,
        });
    }
    if requested.is_empty() {
        requested = pause.routers.clone();
    }
    let mut now = Vec::new();
    for router in &requested {
        if !pause.approved.contains_key(router) {
            let approval = Approval {
                by: by.to_owned(),
                at_unix_ms: now_ms,
            };
            pause.approved.insert(router.clone(), approval);
            now.push(router.clone());
        }
    }
    Ok(Approved {
        pause,
        requested,
        now,
    })
}

/// How many times [`approve_with`] tries its compare-and-swap.
pub const CAS_ATTEMPTS: usize = 20;

/// The read-modify-write of every backend's [`Backend::approve`]: `read`
/// the pause with what the swap compares against (a row version, a commit,
/// a held file lock: `V`), ask `holder` who holds the lock, [`decide`], and
/// `swap` the new pause (`Approved::pause`) in if it is still `V`
/// (`Ok(false)`: it moved; read again). Nothing is written when nothing
/// changes (approving twice).
pub fn approve_with<V>(
    state: &str,
    routers: &[String],
    by: &str,
    mut read: impl FnMut() -> Result<(Option<Pause>, V), ApproveError>,
    mut holder: impl FnMut() -> Result<Option<LockInfo>, ApproveError>,
    mut swap: impl FnMut(V, &Approved) -> Result<bool, ApproveError>,
) -> Result<Approved, ApproveError> {
    for _ in 0..CAS_ATTEMPTS {
        // The pause first: a lock that changed hands since is then seen.
        let (found, version) = read()?;
        let approved = decide(
            state,
            found,
            holder()?,
            routers,
            by,
            unix_ms(SystemTime::now()),
        )?;
        if approved.now.is_empty() || swap(version, &approved)? {
            return Ok(approved);
        }
    }
    Err(ApproveError::Contended {
        state: state.to_owned(),
        attempts: CAS_ATTEMPTS,
    })
}

/// The pause the apply holding `lock` published (`pause`), as it is now,
/// with its approvals: what the approval step polls, at
/// [`Backend::approval_poll`], until it is approved or its own deadline
/// passes. An error when the lock is known lost or the pause is gone
/// (removed or replaced by another run): the apply must not switch then.
pub fn poll(backend: &dyn Backend, lock: &Lock, pause: &Pause) -> Result<Pause, StateError> {
    let lost = |message: String| StateError::Backend {
        state: backend.describe(),
        message,
    };
    if let Some(why) = lock.lost() {
        return Err(lost(format!(
            "the lock was lost while waiting for approval: {why}"
        )));
    }
    match backend.read_pause()? {
        Some(now) if now.lock_id == pause.lock_id => Ok(now),
        Some(other) => Err(lost(format!(
            "the pause this apply published for approval was replaced by another run's \
             (lock {}, {}): this apply no longer holds the lock",
            other.lock_id, other.holder
        ))),
        None => Err(lost(
            "the pause this apply published for approval is gone (removed by another run, or \
             by hand)"
                .to_owned(),
        )),
    }
}

/// [`Backend::publish_pause`]'s check that `pause` is the pause of `lock`.
pub(crate) fn check_own(
    backend: &dyn Backend,
    lock: &Lock,
    pause: &Pause,
) -> Result<(), StateError> {
    if pause.lock_id == lock.info().id {
        return Ok(());
    }
    Err(StateError::Backend {
        state: backend.describe(),
        message: format!(
            "a pause is published by the holder of its lock: this run holds lock {}, the pause \
             names lock {}",
            lock.info().id,
            pause.lock_id
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(id: &str) -> LockInfo {
        LockInfo {
            id: id.into(),
            ..LockInfo::ours("apply")
        }
    }

    fn pause(routers: &[&str], deadline_unix_ms: u64) -> Pause {
        Pause {
            lock_id: "L1".into(),
            routers: routers.iter().map(|r| r.to_string()).collect(),
            deadline_unix_ms,
            holder: "alice@build-01 pid 4242".into(),
            approved: BTreeMap::new(),
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|r| r.to_string()).collect()
    }

    #[test]
    fn empty_routers_approve_every_awaited_one_and_a_second_approval_keeps_the_first() {
        let p = pause(&["admin", "public"], 10_000);
        let first = decide("s", Some(p), Some(holder("L1")), &[], "bob@a", 5).unwrap();
        assert_eq!(first.requested, names(&["admin", "public"]));
        assert_eq!(first.now, first.requested);
        assert!(first.pause.is_approved());
        let again = decide(
            "s",
            Some(first.pause.clone()),
            Some(holder("L1")),
            &names(&["router.public"]),
            "carol@b",
            6,
        )
        .unwrap();
        assert!(again.now.is_empty(), "approving twice changes nothing");
        assert_eq!(again.pause, first.pause, "the first approver is kept");
        assert_eq!(again.pause.approved["public"].by, "bob@a");
    }

    #[test]
    fn a_subset_leaves_the_others_awaited_and_names_are_taken_with_or_without_router() {
        let p = pause(&["admin", "public"], 10_000);
        let got = decide(
            "s",
            Some(p),
            Some(holder("L1")),
            &names(&["router.public", "public"]),
            "bob@a",
            5,
        )
        .unwrap();
        assert_eq!(got.now, names(&["public"]));
        assert_eq!(got.pause.awaiting(), ["admin"]);
        assert!(!got.pause.is_approved());
    }

    #[test]
    fn each_refusal_names_what_to_do() {
        let p = || Some(pause(&["admin", "public"], 10_000));
        let h = || Some(holder("L1"));
        let none = decide("/x/s.json", None, None, &[], "b", 5).unwrap_err();
        assert!(matches!(none, ApproveError::NotWaiting { .. }), "{none:?}");
        assert!(
            none.to_string().starts_with(
                "no apply is waiting for approval on the state /x/s.json: nobody holds its lock"
            ),
            "{none}"
        );
        let busy = decide("s", None, h(), &[], "b", 5).unwrap_err().to_string();
        assert!(busy.contains("lock id L1), which does not wait"), "{busy}");

        let stale = decide("s", p(), Some(holder("L2")), &[], "b", 5).unwrap_err();
        assert!(matches!(stale, ApproveError::Stale { .. }), "{stale:?}");
        let text = stale.to_string();
        assert!(text.contains("no longer holds its lock L1"), "{text}");
        assert!(text.contains("nothing was approved"), "{text}");
        let released = decide("s", p(), None, &[], "b", 5).unwrap_err();
        assert!(
            released.to_string().contains("nobody holds the lock now"),
            "{released}"
        );

        let unknown = decide("s", p(), h(), &names(&["nope", "public"]), "b", 5).unwrap_err();
        assert_eq!(
            unknown.to_string(),
            "router.nope is not waiting for approval on s: the apply of alice@build-01 pid 4242 \
             waits for router.admin, router.public; nothing was approved. Name routers from \
             that list, or none to approve them all"
        );

        let late = decide("s", p(), h(), &[], "b", 10_001).unwrap_err();
        assert!(matches!(late, ApproveError::Expired { .. }), "{late:?}");
        assert!(late.to_string().contains("1970-01-01T00:00:10Z"), "{late}");
    }

    #[test]
    fn a_pause_whose_holder_process_is_gone_is_refused() {
        // No process has the largest pid: on this host, it is gone.
        let gone = LockInfo {
            pid: u32::MAX,
            ..holder("L1")
        };
        let err = decide("s", Some(pause(&["a"], 10)), Some(gone), &[], "b", 5).unwrap_err();
        assert!(matches!(err, ApproveError::Gone { .. }), "{err:?}");
        assert!(err.to_string().contains("cutover force-unlock L1"), "{err}");
    }

    #[test]
    fn the_swap_is_retried_until_it_lands_and_gives_up_when_it_never_does() {
        let mut stored = pause(&["a", "b"], u64::MAX);
        stored.approved.insert(
            "a".into(),
            Approval {
                by: "x".into(),
                at_unix_ms: 1,
            },
        );
        let mut reads = 0;
        let mut swaps = Vec::new();
        let got = approve_with(
            "s",
            &names(&["b"]),
            "bob@a",
            || {
                reads += 1;
                Ok((Some(stored.clone()), reads))
            },
            || Ok(Some(holder("L1"))),
            |version, new| {
                swaps.push(version);
                assert!(
                    new.pause.approved.contains_key("a"),
                    "the other's approval kept"
                );
                Ok(version == 3)
            },
        )
        .unwrap();
        assert_eq!(swaps, [1, 2, 3], "read again after each failed swap");
        assert_eq!(got.now, names(&["b"]));

        let err = approve_with(
            "s",
            &[],
            "b",
            || Ok((Some(pause(&["a"], u64::MAX)), ())),
            || Ok(Some(holder("L1"))),
            |_, _| Ok(false),
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                ApproveError::Contended {
                    attempts: CAS_ATTEMPTS,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn the_stored_form_round_trips() {
        let mut p = pause(&["a"], 1_700_000_000_000);
        p.approved.insert(
            "a".into(),
            Approval {
                by: "bob@laptop".into(),
                at_unix_ms: 1_699_999_999_000,
            },
        );
        let bytes = p.to_bytes();
        assert!(bytes.ends_with(b"}\n"));
        assert_eq!(Pause::from_bytes("s", &bytes).unwrap(), p);
        let err = Pause::from_bytes("s", b"{\n  \"lock_id\": 3\n}").unwrap_err();
        assert!(err.to_string().contains("cannot be read (line 2"), "{err}");
    }
}
