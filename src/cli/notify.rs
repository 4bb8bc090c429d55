//! The `notify` blocks during `apply` and `rollback` (docs/notify.md): an
//! observer that gives every event to the view and its progress lines —
//! the very objects `--json` prints — to the engine's
//! [`Notifier`], which posts them in the background.

use std::sync::Arc;

use serde_json::Value;

use super::progress::JsonLines;
use crate::config::model::Notify;
use crate::engine::health::HealthChecker;
use crate::engine::notify::Notifier;
use crate::engine::observer::{Event, Observer};
use crate::engine::StopReceiver;
use crate::plan::document::PlanDocument;

/// The notifications of one command; nothing when it has no `notify` block.
pub struct Notifications(Option<Arc<Notifier>>);

/// The observer for a command that shows its progress with `view`, and
/// its notifications. `what` is `apply` or `rollback`.
pub fn start(
    view: Arc<dyn Observer>,
    doc: &PlanDocument,
    blocks: &[Notify],
    health: &HealthChecker,
    what: &'static str,
) -> (Arc<dyn Observer>, Notifications) {
    if blocks.is_empty() {
        return (view, Notifications(None));
    }
    let client = match health.system_client() {
        Ok(client) => client,
        Err(e) => {
            // A notification never stops a cut-over.
            errln!("warning: no notification will be sent: {e}");
            return (view, Notifications(None));
        }
    };
    let notifier = Arc::new(Notifier::start(blocks, client, what, view.clone()));
    let observer = Notifying {
        view,
        lines: JsonLines::new(doc),
        notifier: notifier.clone(),
    };
    (Arc::new(observer), Notifications(Some(notifier)))
}

impl Notifications {
    /// Queue a line that is not an event (the summary).
    pub fn send(&self, line: &Value) {
        if let Some(n) = &self.0 {
            n.send(line);
        }
    }

    /// Wait for what is still being sent, at most
    /// [`crate::engine::notify::FINISH_BOUND`], or until `stop` sees a
    /// signal it has not seen yet (the caller marks the ones the apply saw
    /// as seen: the apply they stopped still reports how it ended).
    pub async fn finish(&self, stop: &mut StopReceiver) {
        let Some(n) = &self.0 else { return };
        let signal = async {
            loop {
                if stop.changed().await.is_err() {
                    // No signal can come any more.
                    std::future::pending::<()>().await;
                }
                if let Some(signal) = super::signals::requested(stop) {
                    return signal.to_owned();
                }
            }
        };
        n.finish(signal).await;
    }
}

/// Gives every event to the view, then its lines to the notifier.
struct Notifying {
    view: Arc<dyn Observer>,
    /// The `--json` view's own mapping, so that what is posted is what
    /// `--json` prints.
    lines: JsonLines,
    notifier: Arc<Notifier>,
}

impl Observer for Notifying {
    fn event(&self, event: &Event) {
        self.view.event(event);
        for line in self.lines.lines(event) {
            self.notifier.send(&line);
        }
    }
}
