//! The tasks one controller process spawned, so that all of them stop together when the
//! controller's future is dropped (a crash in the simulator's `restart-controller`).

use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::task::{AbortHandle, JoinSet};

#[derive(Clone, Default)]
pub struct Tasks(Arc<Mutex<Spawned>>);

#[derive(Default)]
struct Spawned {
    /// The writer's per-object tasks: thousands in a failure burst. A `JoinSet` reaps a
    /// finished task in O(1), so a burst of spawns stays linear (see BENCHMARKS.md).
    spawned: JoinSet<()>,
    /// Tasks spawned elsewhere (the watches): a handful.
    tracked: Vec<AbortHandle>,
    /// Set when the guard aborted everything: a task that was running then (a writer worker
    /// handing over an Event) must not leave a new one behind.
    aborted: bool,
}

impl Tasks {
    fn inner(&self) -> std::sync::MutexGuard<'_, Spawned> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut inner = self.inner();
        if inner.aborted {
            return;
        }
        // Forget the tasks that ended (a panic there was already reported by the runtime).
        while inner.spawned.try_join_next().is_some() {}
        inner.spawned.spawn(future);
    }

    pub fn track(&self, handle: AbortHandle) {
        let mut inner = self.inner();
        if inner.aborted {
            handle.abort();
            return;
        }
        inner.tracked.retain(|h| !h.is_finished());
        inner.tracked.push(handle);
    }

    /// A guard that aborts every task spawned or tracked when dropped.
    pub fn abort_on_drop(&self) -> AbortOnDrop {
        AbortOnDrop(self.clone())
    }

    /// Tasks spawned and not yet forgotten (ended ones are forgotten at the next spawn).
    #[cfg(test)]
    fn held(&self) -> usize {
        self.inner().spawned.len()
    }
}

pub struct AbortOnDrop(Tasks);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        let mut inner = self.0.inner();
        inner.aborted = true;
        inner.spawned.abort_all();
        for h in &inner.tracked {
            h.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn ended_tasks_are_forgotten_when_the_next_is_spawned() {
        let tasks = Tasks::default();
        for _ in 0..1000 {
            tasks.spawn(async {});
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
        tasks.spawn(std::future::pending());
        assert_eq!(tasks.held(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_guard_aborts_spawned_and_tracked_tasks() {
        let tasks = Tasks::default();
        let guard = tasks.abort_on_drop();
        let (spawned_tx, mut spawned_rx) = tokio::sync::oneshot::channel::<()>();
        tasks.spawn(async move {
            std::future::pending::<()>().await;
            drop(spawned_tx);
        });
        let (tracked_tx, mut tracked_rx) = tokio::sync::oneshot::channel::<()>();
        let tracked = tokio::spawn(async move {
            std::future::pending::<()>().await;
            drop(tracked_tx);
        });
        tasks.track(tracked.abort_handle());
        tokio::time::sleep(Duration::from_millis(1)).await;
        use tokio::sync::oneshot::error::TryRecvError;
        assert_eq!(
            spawned_rx.try_recv(),
            Err(TryRecvError::Empty),
            "still running"
        );
        assert_eq!(
            tracked_rx.try_recv(),
            Err(TryRecvError::Empty),
            "still running"
        );
        drop(guard);
        // An aborted task drops its future: the senders go, the receivers see them closed.
        assert!(spawned_rx.await.is_err());
        assert!(tracked_rx.await.is_err());
        assert!(tracked.await.unwrap_err().is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_spawned_after_the_guard_aborted_everything_runs() {
        let tasks = Tasks::default();
        drop(tasks.abort_on_drop());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tasks.spawn(async move {
            let _ = tx.send(());
        });
        let late = tokio::spawn(std::future::pending::<()>());
        tasks.track(late.abort_handle());
        assert!(rx.await.is_err(), "the late task never ran");
        assert_eq!(tasks.held(), 0);
        assert!(
            late.await.unwrap_err().is_cancelled(),
            "a late tracked task is aborted"
        );
    }
}
