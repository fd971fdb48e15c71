//! Per-object queues, the leader gate, and retries with backoff.

use super::WriterState;
use super::job::{Job, Write};
use crate::cluster::{ApiError, Cluster};
use crate::logic::actions::{Action, TaintPurpose};
use crate::metrics::Metrics;
use crate::settings::EvictionMode;
use futures::StreamExt;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tracing::{Instrument, debug, info, warn};

/// Dry-run decisions remembered as logged; past this many the memory starts afresh.
const DRY_RUN_REMEMBERED: usize = 50_000;

/// First retry delay; doubles up to `MAX_BACKOFF`.
pub(super) const FIRST_BACKOFF: Duration = Duration::from_millis(100);
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The shortest wait before retrying a write the API server answered 429 Too Many Requests
/// (API Priority and Fairness, or max-in-flight): the server is overloaded, and 100 ms is too
/// soon to ask again. The API client already waited out the server's `Retry-After`, when it
/// gave one, a few times before handing the 429 on (`k8s::throttle`). Not for evictions with
/// `--eviction-mode=evict`, whose 429 is a PodDisruptionBudget's refusal, not overload.
pub(super) const TOO_MANY_REQUESTS_BACKOFF: Duration = Duration::from_secs(1);
/// Events are best effort (as upstream's broadcaster): a few tries, then dropped with a log line.
const EVENT_ATTEMPTS: u32 = 5;

/// Why an attempt did not finish the write.
pub(super) enum Attempt {
    /// Applied, or found unnecessary.
    Done,
    /// Try again after a backoff.
    Retry(ApiError),
    /// Try again at once (a conflict: re-read and re-apply).
    Conflict,
}

/// The delay before retry number `attempt` (0-based): capped exponential backoff with a
/// deterministic jitter of up to +25% derived from the object key (no randomness, so the
/// simulator stays reproducible, while replicas of many objects still spread out).
pub(super) fn backoff(attempt: u32, key: &str) -> Duration {
    let base = FIRST_BACKOFF
        .saturating_mul(1u32 << attempt.min(16))
        .min(MAX_BACKOFF);
    let mut h: u32 = 0x811c9dc5;
    for b in key.bytes().chain(attempt.to_le_bytes()) {
        h = (h ^ b as u32).wrapping_mul(0x01000193);
    }
    base + base.mul_f64((h % 1000) as f64 / 4000.0)
}

impl<C: Cluster> WriterState<C> {
    /// The job for `action`, or `None` under `--dry-run`, which only logs what it would do.
    pub(super) fn unless_dry_run(&self, action: Action) -> Option<Job> {
        if !self.dry_run {
            return Some(Job::from(action));
        }
        self.say_dry_run(&action);
        let job = Job::from(action);
        self.metrics
            .writer
            .dropped_writes(job.kind(), "dry_run", job.writes());
        if let Job::PodMarks { .. } = job {
            // And the pods' Events, which the marks would have recorded.
            self.metrics
                .writer
                .dropped_writes("event", "dry_run", job.writes());
        }
        None
    }

    /// Queues the job behind the others on its object, starting the object's worker if it has
    /// none; drops it when this process does not lead.
    pub(super) fn enqueue(self: &Arc<Self>, job: Job) {
        let term = *self.leader.borrow();
        if term == 0 {
            debug!(kind = job.kind(), "not the leader: dropping write");
            self.metrics
                .writer
                .dropped_writes(job.kind(), "not_leader", job.writes());
            if let Job::PodMarks { .. } = job {
                self.metrics
                    .writer
                    .dropped_writes("event", "not_leader", job.writes());
            }
            return;
        }
        if let Job::PodMarks {
            pods,
            node,
            seen_alive,
            ..
        } = &job
        {
            self.await_news(pods);
            self.await_node_news(node, seen_alive.heartbeat);
        }
        let key = job.object_key();
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(queue) = queues.get_mut(&key) {
            queue.push_back((term, job));
            return;
        }
        queues.insert(key.clone(), VecDeque::from([(term, job)]));
        drop(queues);
        let state = self.clone();
        let span = tracing::info_span!("writer", object = %key);
        self.tasks
            .spawn(async move { state.work(key).await }.instrument(span));
    }

    /// Logs what a dry run would do, once per decision: with nothing written, the passes
    /// decide the same again and again (a taint every few seconds, until it would be seen).
    /// Events, one per node at start, only at debug level.
    pub(super) fn say_dry_run(&self, action: &Action) {
        let line = action.describe();
        if matches!(action, Action::Event(_)) {
            debug!("dry-run: would {line}");
            return;
        }
        let mut said = self.dry_run_said.lock().unwrap_or_else(|p| p.into_inner());
        if said.len() >= DRY_RUN_REMEMBERED {
            said.clear();
        }
        if said.insert(line.clone()) {
            info!("dry-run: would {line}");
        }
    }

    /// Applies the jobs of one object in order; ends (and unregisters the object) when its
    /// queue is empty.
    pub(super) async fn work(self: Arc<Self>, key: String) {
        loop {
            let next = {
                let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
                match queues.get_mut(&key).and_then(VecDeque::pop_front) {
                    Some(next) => next,
                    None => {
                        queues.remove(&key);
                        return;
                    }
                }
            };
            match next {
                (
                    term,
                    Job::PodMarks {
                        node,
                        pods,
                        seen,
                        batch,
                        seen_alive,
                        lease_listed,
                        decided: _,
                    },
                ) => {
                    // All the node's pods at once (each still waits for its lane), so that
                    // their attempts start together and share one read of its Lease, as when
                    // they were actions of their own.
                    let _forget = ForgetNodeNews(&self, node.clone());
                    let seen = seen.into_iter().chain(std::iter::repeat_with(|| None));
                    futures::stream::iter(pods.into_iter().zip(seen))
                        .for_each_concurrent(None, |(pod, seen)| {
                            let mark = Write::PodNotReady {
                                pod,
                                node: node.clone(),
                                seen_alive,
                                seen,
                                batch: batch.clone(),
                                lease_listed: lease_listed.clone(),
                            };
                            let key = mark.object_key();
                            let this = &self;
                            async move { this.apply(&key, term, mark).await }
                        })
                        .await;
                }
                (term, Job::Write(write)) => self.apply(&key, term, write).await,
            }
        }
    }

    /// Whether we still lead in the term the action was decided in.
    pub(super) fn leads_in(&self, term: u64) -> bool {
        *self.leader.borrow() == term
    }

    /// Applies one write: attempts under its lane's bound and priority, retried with backoff
    /// until done, while this process leads in the term it was decided in.
    async fn apply(self: &Arc<Self>, key: &str, term: u64, mut write: Write) {
        let _forget = match &write {
            Write::PodNotReady { pod, .. } => Some(ForgetNews(self, pod.clone())),
            _ => None,
        };
        let kind = write.kind();
        let lane = write.lane();
        let mut queued = Queued::new(&self.metrics, lane.queue_name());
        let mut failures = 0u32;
        let mut conflicts = 0u32;
        let mut first = true;
        // A pod mark's Event, once handed over, is not handed over again by a later attempt.
        let mut event_recorded = false;
        loop {
            // The leader gate sits where writes happen: losing the lease stops all acting at once.
            if !self.leads_in(term) {
                self.metrics.writer.dropped_writes(kind, "not_leader", 1);
                return;
            }
            let outcome = {
                // Counted from before the wait for a permit: a primary attempt queued behind
                // its own lane is as much a reason for the others to yield as one in flight.
                let _busy = lane.is_primary().then(|| self.priority.busy());
                // Never closed, so acquiring cannot fail; should it, the attempt goes unbounded.
                let _permit = self.lanes[lane as usize].acquire().await.ok();
                let _slot = if lane.is_primary() {
                    None
                } else {
                    self.priority.turn(lane).await
                };
                // Waiting may have taken long: check the gate again right before acting.
                if !self.leads_in(term) {
                    self.metrics.writer.dropped_writes(kind, "not_leader", 1);
                    return;
                }
                queued.started();
                // Boxed: an attempt's future (kube's request futures inside) is large, and
                // unboxed it would be held by every queued object's task while it waits for a
                // permit (BENCHMARKS.md).
                let first = std::mem::take(&mut first);
                let started = tokio::time::Instant::now();
                let attempt = self.attempt(&write, first, &mut event_recorded);
                let outcome = Box::pin(attempt).await;
                drop(write.take_batch());
                self.metrics
                    .writer
                    .queue_worked(queued.name, started.elapsed().as_secs_f64());
                outcome
            };
            match outcome {
                Attempt::Done => return,
                Attempt::Conflict => {
                    self.metrics.writer.write_retry(kind);
                    self.metrics.writer.queue_retry(queued.name);
                    conflicts += 1;
                    if conflicts > 3 {
                        // Someone keeps changing the object: back off like any other failure.
                        self.back_off(backoff(failures, key)).await;
                        failures += 1;
                    }
                }
                Attempt::Retry(e) => {
                    if matches!(write, Write::Event(_)) && failures + 1 >= EVENT_ATTEMPTS {
                        warn!(object = key, error = %e, "giving up on an event");
                        return;
                    }
                    if let Write::Taints {
                        purpose: TaintPurpose::ZoneEviction { zone },
                        ..
                    } = &write
                    {
                        // Released by its zone's rate limiter for now: a retry later would
                        // taint outside that rate. Back to the zone's queue (the monitor queues
                        // the node again once this attempt's taint is not seen) for a new token.
                        warn!(object = key, zone, error = %e, "zone taint failed: back to its zone's queue");
                        self.metrics.writer.dropped_writes(kind, "requeued", 1);
                        return;
                    }
                    self.metrics.writer.write_retry(kind);
                    self.metrics.writer.queue_retry(queued.name);
                    let refused_by_budget = matches!(write, Write::Evict { .. })
                        && self.eviction_mode == EvictionMode::Evict;
                    let delay = match e {
                        ApiError::TooManyRequests(_) if !refused_by_budget => {
                            backoff(failures, key).max(TOO_MANY_REQUESTS_BACKOFF)
                        }
                        _ => backoff(failures, key),
                    };
                    if refused_by_budget && matches!(e, ApiError::TooManyRequests(_)) {
                        // A PodDisruptionBudget at work: expected, not a failure.
                        info!(object = key, reason = %e, retry_in = ?delay, "eviction refused, will retry");
                    } else {
                        warn!(object = key, kind, error = %e, retry_in = ?delay, "write failed, will retry");
                    }
                    self.back_off(delay).await;
                    failures += 1;
                }
            }
        }
    }

    /// Waits `delay` before a retry, or less when leadership changes meanwhile: the retry then
    /// finds it no longer leads in its term and is dropped at once, instead of holding up the
    /// object's queue (where a new term's actions may wait) for up to the longest backoff.
    pub(super) async fn back_off(&self, delay: Duration) {
        let mut leader = self.leader.clone();
        leader.borrow_and_update();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = leader.changed() => {}
        }
    }
}

/// Forgets what the watch showed of a pod once its mark is done or dropped.
struct ForgetNews<'a, C: Cluster>(&'a WriterState<C>, crate::logic::actions::PodId);

impl<C: Cluster> Drop for ForgetNews<'_, C> {
    fn drop(&mut self) {
        self.0.news(&self.1);
    }
}

/// Forgets what the Node watch showed of a node once one decision's marks of its pods are done.
struct ForgetNodeNews<'a, C: Cluster>(&'a WriterState<C>, String);

impl<C: Cluster> Drop for ForgetNodeNews<'_, C> {
    fn drop(&mut self) {
        self.0.forget_node_news(&self.1);
    }
}

/// An action in its lane's queue, for the `workqueue_*` metrics: counted in the depth from the
/// moment the writer takes it up until its first attempt starts (or it is dropped).
pub(super) struct Queued<'a> {
    metrics: &'a Metrics,
    name: &'static str,
    since: Option<tokio::time::Instant>,
}

impl<'a> Queued<'a> {
    fn new(metrics: &'a Metrics, name: &'static str) -> Self {
        metrics.writer.queue_added(name);
        Queued {
            metrics,
            name,
            since: Some(tokio::time::Instant::now()),
        }
    }

    /// Its first attempt starts now (later attempts are retries, not queued again).
    fn started(&mut self) {
        if let Some(since) = self.since.take() {
            self.metrics
                .writer
                .queue_left(self.name, Some(since.elapsed().as_secs_f64()));
        }
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if self.since.is_some() {
            self.metrics.writer.queue_left(self.name, None);
        }
    }
}
