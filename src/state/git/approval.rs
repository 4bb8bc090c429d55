//! The approval channel of the git backend: the branch `BRANCH-approval`,
//! beside the lock branch, whose tip holds `approval.json` (the
//! [`Pause`]).
//!
//! The waiting apply publishes its pause as a new root commit, pushed with
//! a lease on whatever tip the branch had (an older pause is replaced).
//! Each approval is a commit on the tip read, pushed with
//! `--force-with-lease=refs/heads/BRANCH-approval:<the tip read>`: a
//! compare-and-swap the receiving git checks under its ref lock, so of two
//! racing approvers one is refused, reads again, and lands on top of the
//! other; `git log BRANCH-approval` shows the pause and who approved what.
//! An approver never writes to the lock branch: the apply appends its
//! journal there by compare-and-swap, and a commit of another's would make
//! it think it lost its lock. The apply deletes the branch (with a lease,
//! and only while its pause is its own) when it stops waiting.

use super::message::who;
use super::plumbing::{Git, Pushed, Update};
use super::{branches, guard, GitBackend, PUSH_ATTEMPTS};
use crate::state::approval::{self, ApproveError, Approved, Pause};
use crate::state::backend::{Backend, Lock};
use crate::state::lock::LockInfo;
use crate::state::StateError;

/// The pause, in each commit of the approval branch.
const APPROVAL_FILE: &str = "approval.json";
/// Where the scratch repository keeps the approval branch it fetched.
const LOCAL_APPROVAL: &str = "refs/cutover/approval";

impl GitBackend {
    pub(super) fn approval_ref(&self) -> String {
        format!("refs/heads/{}-approval", self.branch)
    }

    /// The pause at the tip of the approval branch, and that tip (`None`:
    /// no branch).
    fn stored_pause(&self, git: &Git) -> Result<(Option<Pause>, Option<String>), StateError> {
        let err = |e| self.state_err(e);
        let tip = branches::tip(git, &self.approval_ref(), LOCAL_APPROVAL).map_err(err)?;
        let Some(commit) = &tip else {
            return Ok((None, None));
        };
        let bytes = git
            .files(commit, &[APPROVAL_FILE])
            .map_err(err)?
            .pop()
            .flatten();
        let place = format!(
            "{} {}-approval:{APPROVAL_FILE}",
            self.remote.shown, self.branch
        );
        let pause = match bytes {
            Some(bytes) => Some(Pause::from_bytes(&place, &bytes)?),
            None => None,
        };
        Ok((pause, tip))
    }

    /// Push a commit holding `pause` on `parent` (`None`: a root commit),
    /// leased on `expect`, made by `by` and saying `subject`.
    fn push_pause(
        &self,
        git: &Git,
        (parent, expect): (Option<&str>, Option<&str>),
        pause: &Pause,
        by: &LockInfo,
        subject: &str,
    ) -> Result<Pushed, String> {
        let blob = git.blob(&pause.to_bytes())?;
        let tree = git.flat_tree(&[(APPROVAL_FILE, blob.as_str())])?;
        let message = format!(
            "{subject}\n\nlock {}, waiting {}, until {}\n",
            pause.lock_id,
            pause.holder,
            pause.deadline_text()
        );
        let commit = git.commit(&tree, parent, &message, &who(by))?;
        let approval_ref = self.approval_ref();
        let update = Update {
            refname: &approval_ref,
            new: Some(&commit),
            expect,
        };
        git.push(&[update], false)
    }

    /// [`Backend::publish_pause`]: once the lock is seen to be still this
    /// run's, a root commit replacing what the branch holds.
    pub(super) fn publish(&self, lock: &Lock, pause: &Pause) -> Result<(), StateError> {
        approval::check_own(self, lock, pause)?;
        self.check_writable(lock).map_err(|e| self.state_err(e))?;
        let held = self.held(lock);
        let git = guard(&held.scratch);
        let subject = format!(
            "cutover {}: waiting for approval of {}",
            held.info.operation,
            pause.routers_text()
        );
        let mut refused = String::new();
        for _ in 0..PUSH_ATTEMPTS {
            let (_, tip) = self.stored_pause(&git)?;
            let pushed = self
                .push_pause(&git, (None, tip.as_deref()), pause, &held.info, &subject)
                .map_err(|e| self.state_err(e))?;
            match pushed {
                Pushed::Done => return Ok(()),
                Pushed::Rejected(reason) => refused = reason,
            }
        }
        Err(self.state_err(format!(
            "the push of the pause to {}-approval was refused {PUSH_ATTEMPTS} times ({refused})",
            self.branch
        )))
    }

    /// [`Backend::read_pause`].
    pub(super) fn pause(&self) -> Result<Option<Pause>, StateError> {
        let scratch = self.scratch().map_err(|e| self.state_err(e))?;
        let git = guard(&scratch);
        Ok(self.stored_pause(&git)?.0)
    }

    /// [`Backend::approve`]: a commit on the tip read, leased on it.
    pub(super) fn approve_pause(
        &self,
        routers: &[String],
        by: &str,
    ) -> Result<Approved, ApproveError> {
        let scratch = self.scratch().map_err(|e| self.state_err(e))?;
        let approver = LockInfo::ours("approve");
        approval::approve_with(
            &self.describe(),
            routers,
            by,
            || Ok(self.stored_pause(&guard(&scratch))?),
            || Ok(self.read_lock()?),
            |tip, approved| {
                let now: Vec<String> = approved.now.iter().map(|r| format!("router.{r}")).collect();
                let subject = format!("cutover approve: {} by {by}", now.join(", "));
                let pause = &approved.pause;
                let tips = (tip.as_deref(), tip.as_deref());
                let git = guard(&scratch);
                match self.push_pause(&git, tips, pause, &approver, &subject) {
                    Ok(pushed) => Ok(pushed == Pushed::Done),
                    Err(e) => Err(self.state_err(e).into()),
                }
            },
        )
    }

    /// [`Backend::clear_pause`]: delete the branch, leased on the tip read,
    /// while it holds this run's pause.
    pub(super) fn clear(&self, lock: &Lock) -> Result<(), StateError> {
        let held = self.held(lock);
        let git = guard(&held.scratch);
        let approval_ref = self.approval_ref();
        let mut refused = String::new();
        for _ in 0..PUSH_ATTEMPTS {
            let (pause, tip) = self.stored_pause(&git)?;
            if pause.is_none_or(|p| p.lock_id != held.info.id) {
                return Ok(());
            }
            let update = Update {
                refname: &approval_ref,
                new: None,
                expect: tip.as_deref(),
            };
            match git.push(&[update], false).map_err(|e| self.state_err(e))? {
                Pushed::Done => return Ok(()),
                // An approval landed in between: read again.
                Pushed::Rejected(reason) => refused = reason,
            }
        }
        Err(self.state_err(format!(
            "the removal of {}-approval was refused {PUSH_ATTEMPTS} times ({refused})",
            self.branch
        )))
    }
}
