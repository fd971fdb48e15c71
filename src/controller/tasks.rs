//! The tasks one controller process spawned, so that all of them stop together when the
//! controller's future is dropped (a crash in the simulator's `restart-controller`).

use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::task::AbortHandle;

#[derive(Clone, Default)]
pub struct Tasks(Arc<Mutex<Vec<AbortHandle>>>);

impl Tasks {
    pub fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let handle = tokio::spawn(future);
        self.track(handle.abort_handle());
    }

    pub fn track(&self, handle: AbortHandle) {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|h| !h.is_finished());
        all.push(handle);
    }

    /// A guard that aborts every tracked task when dropped.
    pub fn abort_on_drop(&self) -> AbortOnDrop {
        AbortOnDrop(self.clone())
    }
}

pub struct AbortOnDrop(Tasks);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        let all = self.0.0.lock().unwrap_or_else(|p| p.into_inner());
        for h in all.iter() {
            h.abort();
        }
    }
}
