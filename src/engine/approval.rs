//! Waiting for approval before a switch (`approve.ROUTER` steps).
//!
//! The steps run as tasks that cannot hold the state backend (the apply's
//! driver owns it and its lock), so they meet the driver on a [`Board`]: a
//! step puts its router on it and waits; the driver, while any router
//! waits, publishes who waits through the backend (a file beside a local
//! state, a row in PostgreSQL, a ref in git) every poll, reads the
//! approvals `cutover approve` wrote there, and hands them to the board;
//! the step ends when its router is approved, or fails at its timeout
//! (nothing switches then).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use super::error::{ErrorKind, StepError};
use super::observer::{Event, Observer};
use crate::config::checks::duration;
use crate::state::approval::Pause;
use crate::state::backend::{Backend, Lock};
use crate::state::StateError;

/// Who waits, and who approved, between the approval steps and the driver.
#[derive(Debug)]
pub struct Board {
    /// Router -> its deadline, in ms since the Unix epoch.
    waiting: Mutex<BTreeMap<String, u64>>,
    /// What the driver last read from the state backend.
    heard: watch::Sender<Heard>,
    /// A router joined or left: the driver publishes at once.
    changed: tokio::sync::Notify,
}

/// What the driver last read from the state backend.
#[derive(Debug, Clone, Default, PartialEq)]
struct Heard {
    /// Router -> who approved it.
    approved: BTreeMap<String, String>,
    /// The routers of the pause as published: a step says it waits only
    /// once `cutover approve` can find it.
    published: std::collections::BTreeSet<String>,
    /// Why the pause can no longer be published or read: the waiting steps
    /// fail at once rather than at their timeout.
    error: Option<String>,
}

impl Default for Board {
    fn default() -> Self {
        Board {
            waiting: Mutex::new(BTreeMap::new()),
            heard: watch::Sender::new(Heard::default()),
            changed: tokio::sync::Notify::new(),
        }
    }
}

/// Milliseconds since the Unix epoch, `after` from now.
pub fn unix_ms(after: Duration) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from((now + after).as_millis()).unwrap_or(u64::MAX)
}

/// Takes a router off the board when its step ends, however it ends.
struct Waiting<'a>(&'a Board, &'a str);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.lock().remove(self.1);
        self.0.changed.notify_one();
    }
}

impl Board {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, u64>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The routers waiting now, with the latest deadline among them.
    pub fn waiting(&self) -> Option<(Vec<String>, u64)> {
        let w = self.lock();
        let deadline = w.values().copied().max()?;
        Some((w.keys().cloned().collect(), deadline))
    }

    /// What the driver read: router -> who approved it, and the routers
    /// the published pause names.
    pub fn set_heard(
        &self,
        approved: BTreeMap<String, String>,
        published: std::collections::BTreeSet<String>,
    ) {
        self.heard.send_if_modified(|now| {
            let changed = now.approved != approved || now.published != published;
            now.approved = approved;
            now.published = published;
            changed
        });
    }

    /// Resolves when a router joined or left the board.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// The pause cannot be published or read (`why`): every waiting step
    /// fails now.
    pub fn set_error(&self, why: String) {
        self.heard.send_modify(|now| now.error = Some(why));
    }

    /// Wait until `router`'s switch is approved, at most `timeout`: who
    /// approved it.
    pub async fn wait(
        &self,
        router: &str,
        to: &str,
        timeout: Duration,
        observer: &dyn Observer,
    ) -> Result<String, StepError> {
        let mut heard = self.heard.subscribe();
        self.lock().insert(router.to_owned(), unix_ms(timeout));
        let _waiting = Waiting(self, router);
        self.changed.notify_one();
        let by = tokio::time::timeout(timeout, async {
            // Said once `cutover approve` can find it.
            loop {
                {
                    let now = heard.borrow_and_update();
                    if let Some(why) = &now.error {
                        return Err(why.clone());
                    }
                    if now.published.contains(router) {
                        break;
                    }
                }
                if heard.changed().await.is_err() {
                    return Err("the apply stopped listening for approvals".to_owned());
                }
            }
            observer.event(&Event::AwaitingApproval {
                router: router.to_owned(),
                to: to.to_owned(),
                timeout,
            });
            loop {
                {
                    let now = heard.borrow_and_update();
                    if let Some(by) = now.approved.get(router) {
                        return Ok(by.clone());
                    }
                    if let Some(why) = &now.error {
                        return Err(why.clone());
                    }
                }
                if heard.changed().await.is_err() {
                    return Err("the apply stopped listening for approvals".to_owned());
                }
            }
        })
        .await;
        match by {
            Ok(Ok(by)) => {
                observer.event(&Event::Approved {
                    router: router.to_owned(),
                    by: by.clone(),
                });
                Ok(by)
            }
            Ok(Err(why)) => Err(StepError::new(
                ErrorKind::Failed,
                format!("the approval of router.{router}'s switch cannot be waited for: {why}; nothing switched"),
            )),
            Err(_) => Err(StepError::new(
                ErrorKind::NotApproved,
                format!(
                    "nobody approved the switch of router.{router} to {to} within {}; nothing switched ({to} stays deployed, `cutover apply` asks again)",
                    duration(timeout)
                ),
            )),
        }
    }
}

/// The driver's side: publishes who waits on the board through the state
/// backend the apply holds the lock of, and hands the board what approvers
/// wrote there.
pub struct Publisher<'a> {
    backend: &'a dyn Backend,
    lock: &'a Lock,
    /// The pause as last published and read.
    published: Option<Pause>,
}

impl<'a> Publisher<'a> {
    /// For the apply holding `lock` on `backend`.
    pub fn new(backend: &'a dyn Backend, lock: &'a Lock) -> Self {
        Publisher {
            backend,
            lock,
            published: None,
        }
    }

    /// How long the driver waits between two [`Publisher::sync`]s, when
    /// there is anything to sync (`None`: nothing waits, nothing is
    /// published).
    pub fn due(&self, board: &Board) -> Option<Duration> {
        (self.published.is_some() || board.waiting().is_some())
            .then(|| self.backend.approval_poll())
    }

    /// Publish who waits now (when that changed), read the approvals, and
    /// hand them to the board; a pause that cannot be published or read
    /// fails the waiting steps.
    pub fn sync(&mut self, board: &Board) {
        if let Err(e) = self.try_sync(board) {
            board.set_error(format!("{e:#}"));
        }
    }

    fn try_sync(&mut self, board: &Board) -> Result<(), StateError> {
        let Some((routers, deadline)) = board.waiting() else {
            return self.clear();
        };
        let same = self
            .published
            .as_ref()
            .is_some_and(|p| p.routers == routers && p.deadline_unix_ms == deadline);
        if !same {
            let mut pause = Pause::new(
                self.lock,
                routers,
                UNIX_EPOCH + Duration::from_millis(deadline),
            );
            // Approvals already given stay given (a second router joined).
            if let Some(old) = &self.published {
                pause.approved = old
                    .approved
                    .iter()
                    .filter(|(r, _)| pause.routers.contains(r))
                    .map(|(r, a)| (r.clone(), a.clone()))
                    .collect();
            }
            self.backend.publish_pause(self.lock, &pause)?;
            self.published = Some(pause);
        }
        let Some(published) = &self.published else {
            return Ok(());
        };
        let now = crate::state::approval::poll(self.backend, self.lock, published)?;
        board.set_heard(
            now.approved
                .iter()
                .map(|(r, a)| (r.clone(), a.by.clone()))
                .collect(),
            now.routers.iter().cloned().collect(),
        );
        self.published = Some(now);
        Ok(())
    }

    /// Remove the pause, if one is published (before the lock goes).
    pub fn clear(&mut self) -> Result<(), StateError> {
        if self.published.take().is_some() {
            self.backend.clear_pause(self.lock)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::observer::Silent;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_step_waits_on_the_board_until_its_router_is_approved() {
        let board = Arc::new(Board::default());
        let waiter = {
            let board = board.clone();
            tokio::spawn(async move {
                board
                    .wait("public", "green", Duration::from_secs(30), &Silent)
                    .await
            })
        };
        // The driver sees it waiting, then reads an approval of another
        // router (it keeps waiting), then of its own.
        let (routers, deadline) = loop {
            if let Some(w) = board.waiting() {
                break w;
            }
            tokio::task::yield_now().await;
        };
        assert_eq!(routers, vec!["public".to_owned()]);
        assert!(deadline > unix_ms(Duration::from_secs(25)));
        let published: std::collections::BTreeSet<String> = ["public".to_owned()].into();
        board.set_heard(
            [("other".to_owned(), "ann".to_owned())].into(),
            published.clone(),
        );
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        board.set_heard(
            [("public".to_owned(), "bob@ci".to_owned())].into(),
            published,
        );
        assert_eq!(waiter.await.unwrap().unwrap(), "bob@ci");
        assert_eq!(board.waiting(), None, "off the board once approved");
    }

    #[tokio::test]
    async fn at_its_timeout_nothing_is_approved_and_the_router_leaves_the_board() {
        let board = Board::default();
        let e = board
            .wait("public", "green", Duration::from_millis(200), &Silent)
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotApproved);
        assert!(
            e.message.contains("within 0.2s; nothing switched"),
            "{}",
            e.message
        );
        assert_eq!(board.waiting(), None);
    }
}
