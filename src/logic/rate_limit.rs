//! The per-zone, rate-limited, timed queue of nodes waiting for their NoExecute taint.
//!
//! Mirrors upstream's `RateLimitedTimedQueue` (token bucket with burst 1 that starts full,
//! unique FIFO ordered by process time) without two of its bugs: a token is spent only when the
//! head of the queue is actually due, and a stopped limiter resumes for any positive rate,
//! including exactly 1.

use jiff::Timestamp;
use std::time::Duration;

/// A token bucket with burst 1, driven by `now`. A rate of 0 (or less) never accepts.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    // private fields chosen by the implementation
}

impl TokenBucket {
    /// A full bucket (one token).
    pub fn new(qps: f64, now: Timestamp) -> Self {
        todo!("{qps} {now}")
    }
    pub fn qps(&self) -> f64 {
        todo!()
    }
    /// Takes a token if one is available at `now`.
    pub fn try_accept(&mut self, now: Timestamp) -> bool {
        todo!("{now}")
    }
    /// Whether a token is available at `now`, without taking it.
    pub fn has_token(&self, now: Timestamp) -> bool {
        todo!("{now}")
    }
}

/// A node waiting in a zone queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queued {
    pub node: String,
    pub uid: String,
    pub added_at: Timestamp,
    pub process_at: Timestamp,
}

/// What processing a queued node came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done: leaves the queue, but stays remembered until `remove` (so `add` is a no-op).
    Done,
    /// Try again after this long (the entry stays, its process time moves).
    RetryAfter(Duration),
}

#[derive(Clone, Debug)]
pub struct ZoneQueue {
    // private fields chosen by the implementation
}

impl ZoneQueue {
    pub fn new(qps: f64, now: Timestamp) -> Self {
        todo!("{qps} {now}")
    }
    /// Queues the node with `added_at = process_at = now`; a no-op returning false when it is
    /// queued or remembered as done.
    pub fn add(&mut self, node: &str, uid: &str, now: Timestamp) -> bool {
        todo!("{node} {uid} {now}")
    }
    /// Forgets the node entirely (queued or done); true when it was known.
    pub fn remove(&mut self, node: &str) -> bool {
        todo!("{node}")
    }
    /// Whether the node is queued or remembered as done.
    pub fn contains(&self, node: &str) -> bool {
        todo!("{node}")
    }
    /// Number of nodes waiting (not counting those remembered as done).
    pub fn len(&self) -> usize {
        todo!()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn qps(&self) -> f64 {
        todo!()
    }
    /// Changes the rate. Same rate: no-op. A new bucket for a positive rate starts empty when
    /// the old one had no token at `now`, full otherwise. Rate <= 0 stops the queue.
    pub fn swap_limiter(&mut self, qps: f64, now: Timestamp) {
        todo!("{qps} {now}")
    }
    /// Processes due entries in process-time order (ties: insertion order) while tokens last:
    /// a token is spent only for an entry whose process time has come.
    pub fn try_process(&mut self, now: Timestamp, mut f: impl FnMut(&Queued) -> Outcome) {
        let _ = &mut f;
        todo!("{now}")
    }
}
