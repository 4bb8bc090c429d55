//! SIGINT and SIGTERM during an apply or rollback: the first asks the walk
//! to stop (no new step starts, running ones finish, their records are
//! written, the lock is released, exit 130 or 143); a second stops the
//! running steps at once (what finished is already durable, so the state
//! stays valid).

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::engine::{StopReceiver, StopRequest};

/// Start listening for SIGINT and SIGTERM; the walk watches the receiver.
/// Without signal handlers (they cannot be installed), an apply cannot be
/// stopped cleanly but still runs.
pub fn listen() -> StopReceiver {
    let (tx, rx) = watch::channel(StopRequest::None);
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return rx;
    };
    tokio::spawn(async move {
        let mut seen = 0;
        loop {
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
                () = tx.closed() => return,
            };
            seen += 1;
            let request = if seen == 1 {
                StopRequest::Finish(name)
            } else {
                StopRequest::Now(name)
            };
            if tx.send(request).is_err() {
                return;
            }
        }
    });
    rx
}

/// `work`, unless a signal asks to stop first: then the signal's name.
pub async fn or_stopped<T>(
    stop: &mut StopReceiver,
    work: impl std::future::Future<Output = T>,
) -> Result<T, &'static str> {
    if let Some(signal) = requested(stop) {
        return Err(signal);
    }
    tokio::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return Ok(done),
            changed = stop.changed() => {
                if changed.is_err() {
                    return Ok(work.await);
                }
                if let Some(signal) = requested(stop) {
                    return Err(signal);
                }
            }
        }
    }
}

/// The signal that asked to stop, if one did.
pub fn requested(stop: &StopReceiver) -> Option<&'static str> {
    match *stop.borrow() {
        StopRequest::None => None,
        StopRequest::Finish(s) | StopRequest::Now(s) => Some(s),
    }
}

/// The exit status of a command stopped by `signal` before anything ran.
pub fn stopped_before_anything_ran(signal: &'static str, what: &str) -> u8 {
    errln!("{what} stopped by {signal} before anything ran: nothing was changed.");
    exit_status(signal)
}

/// 130 for SIGINT, 143 for SIGTERM (128 + the signal's number).
pub fn exit_status(signal: &str) -> u8 {
    if signal == "SIGTERM" {
        143
    } else {
        130
    }
}
