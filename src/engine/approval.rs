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

/// Who waits, and who approved, between the approval steps and the driver.
#[derive(Debug)]
pub struct Board {
    /// Router -> its deadline, in ms since the Unix epoch.
    waiting: Mutex<BTreeMap<String, u64>>,
    /// Router -> who approved it, as the driver last read it.
    approved: watch::Sender<BTreeMap<String, String>>,
}

impl Default for Board {
    fn default() -> Self {
        Board {
            waiting: Mutex::new(BTreeMap::new()),
            approved: watch::Sender::new(BTreeMap::new()),
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

    /// What the driver read: router -> who approved it.
    pub fn set_approved(&self, approved: BTreeMap<String, String>) {
        self.approved.send_if_modified(|now| {
            let changed = *now != approved;
            *now = approved;
            changed
        });
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
        let mut approved = self.approved.subscribe();
        self.lock().insert(router.to_owned(), unix_ms(timeout));
        let _waiting = Waiting(self, router);
        observer.event(&Event::AwaitingApproval {
            router: router.to_owned(),
            to: to.to_owned(),
            timeout,
        });
        let by = tokio::time::timeout(timeout, async {
            loop {
                if let Some(by) = approved.borrow_and_update().get(router) {
                    return Some(by.clone());
                }
                if approved.changed().await.is_err() {
                    return None;
                }
            }
        })
        .await;
        match by {
            Ok(Some(by)) => {
                observer.event(&Event::Approved {
                    router: router.to_owned(),
                    by: by.clone(),
                });
                Ok(by)
            }
            Ok(None) => Err(StepError::new(
                ErrorKind::Failed,
                "the apply stopped listening for approvals".to_owned(),
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
        board.set_approved([("other".to_owned(), "ann".to_owned())].into());
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        board.set_approved([("public".to_owned(), "bob@ci".to_owned())].into());
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
