//! The thread the PostgreSQL client runs on.
//!
//! The [`Backend`](crate::state::backend::Backend) trait is synchronous,
//! and is called both from inside the CLI's multi-thread tokio runtime and
//! from plain threads. tokio-postgres is asynchronous; blocking on it from
//! inside a runtime (`block_in_place`, `Handle::block_on`, the `postgres`
//! crate) panics or needs the multi-thread flavour. So the sessions live on
//! a thread of their own, which owns a current-thread runtime: a call hands
//! its future to that runtime and waits on a plain channel for the answer,
//! which blocks the calling thread as a file read would, from anywhere.

use std::future::Future;
use std::sync::mpsc;
use std::thread::{JoinHandle, ThreadId};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// The client's thread and its runtime; dropping it ends both (and with
/// them every session, which closes their connections).
pub(super) struct Worker {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    id: ThreadId,
}

impl Worker {
    /// Start the thread.
    pub(super) fn start() -> std::io::Result<Worker> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("cutover-pg".into())
            .spawn(move || {
                // Runs every task handed over, until the worker is dropped;
                // dropping the runtime then cancels the connections' tasks.
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            })?;
        Ok(Worker {
            handle,
            stop: Some(stop),
            id: thread.thread().id(),
            thread: Some(thread),
        })
    }

    /// Run `job` on the client's thread and wait for its result, for at
    /// most `limit` (`Err`: why there is none).
    pub(super) fn run<T, F>(&self, limit: Duration, job: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, String>> + Send + 'static,
    {
        assert_ne!(
            std::thread::current().id(),
            self.id,
            "the PostgreSQL client's thread cannot wait for itself"
        );
        let (reply, answer) = mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let result = match tokio::time::timeout(limit, job).await {
                Ok(result) => result,
                Err(_) => Err(format!(
                    "PostgreSQL did not answer within {}",
                    humantime::format_duration(limit)
                )),
            };
            let _ = reply.send(result);
        });
        answer
            .recv()
            .unwrap_or_else(|_| Err("the PostgreSQL client's thread has stopped".to_owned()))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            if std::thread::current().id() != self.id {
                let _ = thread.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_from_plain_threads_and_from_inside_a_runtime() {
        let worker = Worker::start().unwrap();
        assert_eq!(
            worker.run(Duration::from_secs(5), async { Ok(41 + 1) }),
            Ok(42)
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let got = runtime.block_on(async {
            worker.run(Duration::from_secs(5), async {
                tokio::time::sleep(Duration::from_millis(10)).await;
                Ok("from a runtime")
            })
        });
        assert_eq!(got, Ok("from a runtime"));
    }

    #[test]
    fn a_job_that_does_not_finish_in_time_is_an_error() {
        let worker = Worker::start().unwrap();
        let got: Result<(), String> = worker.run(Duration::from_millis(50), std::future::pending());
        assert_eq!(got, Err("PostgreSQL did not answer within 50ms".to_owned()));
    }
}
