//! What tests watch the store for, told as it happens: nothing is kept for them otherwise.

/// Told of what happens in the store. Called with the store locked: an observer records and
/// returns, and never calls back into the store.
pub trait Observer: Send + Sync + 'static {
    /// The controller read a pod (`namespace/name`), `t_ms` after the start.
    fn pod_read(&self, _t_ms: u64, _pod: &str) {}

    /// The controller's staleness guard judged the watch of `resource` stale (or fresh).
    fn watch_stale(&self, _t_ms: u64, _resource: &str, _stale: bool) {}
}
