//! The one place that writes to the cluster.
//!
//! Every action is decided again on the freshest copy of its object (GET, decide, then a patch
//! of only what changes, guarded by the resourceVersion read; deletions guarded by the UID; an
//! Unknown mark's first attempt starts from the conditions its decision saw, guarded by their
//! resourceVersion, which is as fresh). Never a PUT of a Node or Pod: other components own
//! them, and a PUT would drop every field this build's types do not know. Retried
//! with capped exponential backoff until it is applied or no longer needed, and dropped at once
//! when this process is not the leader (or runs with `--dry-run`). Actions on one object are
//! applied in the order they were decided; different objects proceed independently, so a pod a
//! PodDisruptionBudget protects does not hold up anything else. The NotReady marks of a node's
//! pods, decided together, are one object of their own: they are not ordered with those pods'
//! evictions, two independent decisions (as upstream, where two controllers make them), each
//! guarded by the pod's resourceVersion.
//!
//! Three things keep a burst from burying the writes that matter (250 nodes going silent in one
//! pass means 250 node writes, 7 500 pod status writes and as many Events, all on one server):
//! - **Node writes first.** A batch's node writes are handed over before its pod writes and
//!   Events (`Writer::submit`).
//! - **Shared reads.** Pod writes re-check their node (and its Lease) before writing. Attempts
//!   that need the same node at about the same time share one GET of it (`SharedReads`), but only
//!   a GET that started after the attempt itself did, so the answer is as fresh as the one the
//!   attempt would have fetched; 30 evictions of one node's pods read that node once, not 30 times.
//!   Reads that are changed and written back (a node's status, taints, labels) are never shared.
//! - **Lanes with priority.** Each kind travels in its own lane of bounded width, and the
//!   secondary lanes (pod NotReady marks, Events) shrink to a trickle while the primary ones
//!   (node writes, evictions) have attempts waiting or in flight; see `Priority`.
//!
//! And evictions falling due together find their pods already read: the pods due within the
//! next 500 ms are read ahead (`Writer::read_ahead`), and the write that follows is guarded by
//! the copy's resourceVersion, so the copy is as good as a read at the due time.

use super::tasks::Tasks;
use crate::clock::Clock;
use crate::cluster::{ApiError, Cluster, Urgency, with_urgency};
use crate::logic::actions::{Action, SeenConditions, TaintPurpose};
use crate::logic::eviction::PodRef;
use crate::logic::recheck::{self, SilenceSeen};
use crate::logic::view::key_of;
use crate::logic::{conditions, monitor};
use crate::metrics::Metrics;
use crate::settings::{EvictionMode, Settings};
use futures::future::{BoxFuture, Shared};
use futures::{FutureExt, StreamExt};
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeStatus, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, SemaphorePermit, watch};
use tracing::{Instrument, debug, info, warn};

/// How long a pod read ahead of its eviction stays usable; older copies are read again.
const READ_AHEAD_MAX_AGE: Duration = Duration::from_secs(5);
/// Reads ahead in flight at most.
const READ_AHEAD_WIDTH: usize = 16;
/// Pods read ahead per window at most. Reads ahead are for bursts the server answers well
/// within the window (300 pods at 10k nodes); a far larger one (a taint put on a thousand
/// nodes by hand) could not be read in time anyway, and would hold thousands of whole pods.
const READ_AHEAD_MAX: usize = 1000;

/// Dry-run decisions remembered as logged; past this many the memory starts afresh.
const DRY_RUN_REMEMBERED: usize = 50_000;

/// First retry delay; doubles up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The shortest wait before retrying a write the API server answered 429 Too Many Requests
/// (API Priority and Fairness, or max-in-flight): the server is overloaded, and 100 ms is too
/// soon to ask again. The API client already waited out the server's `Retry-After`, when it
/// gave one, a few times before handing the 429 on (`k8s::throttle`). Not for evictions with
/// `--eviction-mode=evict`, whose 429 is a PodDisruptionBudget's refusal, not overload.
const TOO_MANY_REQUESTS_BACKOFF: Duration = Duration::from_secs(1);
/// Events are best effort (as upstream's broadcaster): a few tries, then dropped with a log line.
const EVENT_ATTEMPTS: u32 = 5;

/// The lanes writes travel in, each with its own bound on attempts in flight, so that a burst
/// of one kind never queues another behind it. When a zone loses 250 nodes in one monitor pass,
/// the pass also marks 7 500 pods NotReady and records as many Events; sharing one queue (or
/// an unbounded free-for-all on one connection pool), the nodes' Unknown conditions and taints
/// waited seconds behind those pod writes. Node writes are few and decide everything after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lane {
    /// Node conditions, taints and labels.
    Nodes,
    /// Pod deletions and evictions: each is due at a precise time.
    Evictions,
    /// Pods' Ready=False.
    PodStatus,
    /// Kubernetes Events: best effort.
    Events,
}

impl Lane {
    const ALL: [Lane; 4] = [Lane::Nodes, Lane::Evictions, Lane::PodStatus, Lane::Events];

    fn of(action: &Action) -> Lane {
        match action {
            Action::MarkNodeUnknown { .. }
            | Action::ChangeTaints { .. }
            | Action::SetLabels { .. } => Lane::Nodes,
            Action::EvictPod { .. } => Lane::Evictions,
            Action::MarkPodsNotReady { .. } | Action::MarkPodNotReady { .. } => Lane::PodStatus,
            Action::Event(_) => Lane::Events,
        }
    }

    /// Attempts in flight at most (an attempt is two to four requests).
    fn width(self) -> usize {
        match self {
            Lane::Nodes => 16,
            Lane::Evictions => 32,
            Lane::PodStatus => 16,
            Lane::Events => 8,
        }
    }

    /// The lane's `name` in the `workqueue_*` metrics.
    fn queue_name(self) -> &'static str {
        match self {
            Lane::Nodes => "writer_nodes",
            Lane::Evictions => "writer_evictions",
            Lane::PodStatus => "writer_pod_status",
            Lane::Events => "writer_events",
        }
    }

    /// How urgent the reads of this lane's attempts are, for a client that rations requests.
    fn urgency(self) -> Urgency {
        if self.is_primary() {
            Urgency::Urgent
        } else {
            Urgency::Background
        }
    }

    /// Whether the other lanes yield to this one (see `Priority`).
    fn is_primary(self) -> bool {
        matches!(self, Lane::Nodes | Lane::Evictions)
    }

    /// Attempts that may start while a primary lane is busy; the rest of the width waits for
    /// the primary lanes to go idle. Pod marks keep a quarter: they take endpoints out of
    /// service, so they must not stall behind a long eviction wave; Events, best effort, one.
    fn width_while_yielding(self) -> usize {
        match self {
            Lane::Nodes | Lane::Evictions => self.width(),
            Lane::PodStatus => 4,
            Lane::Events => 1,
        }
    }
}

/// Lets the secondary lanes (pod NotReady marks, Events) yield to the primary ones (node writes,
/// evictions). Node writes decide everything after them (taints, then evictions) and evictions
/// are due at precise times, but all lanes share one API server: measured at 10 000 nodes, with
/// 250 nodes going silent in one pass, the 7 500 pod marks and Events that pass also produced
/// delayed its Unknown writes by up to 4.6 s and deletions by 295 ms (p99) past due.
///
/// While any primary attempt is waiting for its lane or in flight, a secondary attempt that
/// holds its lane's permit starts only if it also gets one of its lane's few yielding slots
/// (`Lane::width_while_yielding`); otherwise it waits until the primary lanes go idle. A primary
/// attempt sleeping in a backoff does not count: nothing of it is on the server then.
///
/// Why a small width rather than "wait for idle, at most N seconds": the slots are always there,
/// so the secondary lanes progress however long the primary ones stay busy (no starvation, with
/// no timer to tune or to test), and the priority does not run out when the pressure lasts,
/// which is exactly when it matters (7 500 evictions due together keep the eviction lane busy
/// for seconds, and a 1 s cap would then put every pod mark and Event back on the server).
/// Attempts already in flight when a primary one arrives finish their few requests.
struct Priority {
    /// Primary-lane attempts waiting for their lane's permit or in flight.
    busy: AtomicUsize,
    /// Notified when `busy` drops to zero.
    idle: Notify,
    /// Per lane (indexed by `Lane`), the slots a secondary lane may use while a primary one is
    /// busy.
    yielding: [Semaphore; 4],
}

/// A primary-lane attempt counted in `Priority::busy` until dropped.
struct Busy<'a>(&'a Priority);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if self.0.busy.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Priority {
    fn new() -> Self {
        Priority {
            busy: AtomicUsize::new(0),
            idle: Notify::new(),
            yielding: Lane::ALL.map(|l| Semaphore::new(l.width_while_yielding())),
        }
    }

    fn busy(&self) -> Busy<'_> {
        self.busy.fetch_add(1, Ordering::SeqCst);
        Busy(self)
    }

    /// Waits until a secondary-lane attempt may start: at once when no primary attempt is
    /// waiting or in flight, else when they all are done or a yielding slot of `lane` is free.
    /// The slot, if one was needed, is held for the attempt.
    async fn turn(&self, lane: Lane) -> Option<SemaphorePermit<'_>> {
        loop {
            // Created before the check, so an idle notification in between is not missed.
            let idle = self.idle.notified();
            if self.busy.load(Ordering::SeqCst) == 0 {
                return None;
            }
            tokio::select! {
                _ = idle => {}
                // Never closed; should it be, the attempt goes ahead.
                slot = self.yielding[lane as usize].acquire() => return slot.ok(),
            }
        }
    }
}

/// A read's position in the order of attempts and reads: a read may serve an attempt only when
/// it started after the attempt did. A sequence number, not a clock reading: under tokio's
/// paused clock (and the simulator's manual one) whole bursts happen in one instant, where
/// "after" could not be told from the time.
type Seq = u64;

/// A GET several attempts may await; the object behind an `Arc` so that joining costs no copy.
type SharedRead<T> = Shared<BoxFuture<'static, Result<Arc<T>, ApiError>>>;

/// The latest read of each object of one kind, for attempts to share.
///
/// Only the latest read of an object is kept: any attempt an older read could serve (one that
/// started before it) started before the latest one too. An entry is forgotten once every
/// attempt still running started after it, since then none can use it and no later one will.
/// So there is at most one entry per object, and entries outlive their readers only while an
/// older attempt still runs (a request that hangs keeps at most one entry per node).
struct SharedReads<T> {
    latest: HashMap<String, (Seq, SharedRead<T>)>,
    /// The same entries by when they started, oldest first.
    by_start: BTreeMap<Seq, String>,
}

impl<T> Default for SharedReads<T> {
    fn default() -> Self {
        SharedReads {
            latest: HashMap::new(),
            by_start: BTreeMap::new(),
        }
    }
}

impl<T> SharedReads<T> {
    /// The latest read of `name` if it started after `since`, in flight or done (failed too:
    /// the attempt then meets that error as if it had read itself, and retries after a backoff).
    fn usable(&self, name: &str, since: Seq) -> Option<SharedRead<T>> {
        match self.latest.get(name) {
            Some((started, read)) if *started > since => Some(read.clone()),
            _ => None,
        }
    }

    fn insert(&mut self, name: &str, started: Seq, read: SharedRead<T>) {
        if let Some((old, _)) = self.latest.insert(name.to_owned(), (started, read)) {
            self.by_start.remove(&old);
        }
        self.by_start.insert(started, name.to_owned());
    }

    /// Forgets the reads that started before `seq`.
    fn forget_before(&mut self, seq: Seq) {
        while let Some(entry) = self.by_start.first_entry() {
            if *entry.key() >= seq {
                break;
            }
            let name = entry.remove();
            self.latest.remove(&name);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.latest.len()
    }
}

/// Attempts running and the reads they may share, under one lock so that sequence numbers and
/// entries agree.
#[derive(Default)]
struct Reads {
    /// The next sequence number.
    next: Seq,
    /// When each running attempt started.
    running: BTreeSet<Seq>,
    nodes: SharedReads<Node>,
    leases: SharedReads<Lease>,
}

impl Reads {
    fn take_seq(&mut self) -> Seq {
        self.next += 1;
        self.next
    }
}

/// A running attempt; forgets the reads no running attempt can use any more when dropped
/// (whether the attempt finished or its task was aborted).
struct Running<'a> {
    reads: &'a Mutex<Reads>,
    since: Seq,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut reads = self.reads.lock().unwrap_or_else(|p| p.into_inner());
        reads.running.remove(&self.since);
        let oldest = reads.running.first().copied().unwrap_or(reads.next + 1);
        reads.nodes.forget_before(oldest);
        reads.leases.forget_before(oldest);
    }
}

/// Why an attempt did not finish the action.
enum Attempt {
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
pub fn backoff(attempt: u32, key: &str) -> Duration {
    let base = FIRST_BACKOFF
        .saturating_mul(1u32 << attempt.min(16))
        .min(MAX_BACKOFF);
    let mut h: u32 = 0x811c9dc5;
    for b in key.bytes().chain(attempt.to_le_bytes()) {
        h = (h ^ b as u32).wrapping_mul(0x01000193);
    }
    base + base.mul_f64((h % 1000) as f64 / 4000.0)
}

/// A static label for an action's kind (metrics, logs).
pub fn kind(action: &Action) -> &'static str {
    match action {
        Action::MarkNodeUnknown { .. } => "node_status",
        Action::ChangeTaints { .. } => "node_taints",
        Action::SetLabels { .. } => "node_labels",
        Action::MarkPodsNotReady { .. } | Action::MarkPodNotReady { .. } => "pod_status",
        Action::EvictPod { .. } => "pod_delete",
        Action::Event(_) => "event",
    }
}

/// How many objects the action would write (the pods of a `MarkPodsNotReady`, else one).
fn writes_in(action: &Action) -> usize {
    match action {
        Action::MarkPodsNotReady { pods, .. } => pods.len(),
        _ => 1,
    }
}

/// The object an action is about; actions on one object are applied in order.
fn object_key(action: &Action) -> String {
    match action {
        Action::MarkNodeUnknown { node, .. }
        | Action::ChangeTaints { node, .. }
        | Action::SetLabels { node, .. } => {
            format!("node/{node}")
        }
        // Not the node's own key: its taints must not wait behind the marks of its pods. And one
        // key per decision: a pod whose mark keeps failing must not hold up the marks decided
        // the next time the node goes silent (the older marks give up by themselves once they
        // find the node back, or write what the newer ones would).
        Action::MarkPodsNotReady { node, now, .. } => format!("pods-on/{node}/{now}"),
        Action::MarkPodNotReady {
            namespace, name, ..
        }
        | Action::EvictPod {
            namespace, name, ..
        } => {
            format!("pod/{namespace}/{name}")
        }
        Action::Event(e) => format!(
            "event/{}/{}/{}",
            e.object.kind, e.object.namespace, e.object.name
        ),
    }
}

/// Hands actions to per-object workers.
pub struct Writer<C: Cluster> {
    inner: Arc<Inner<C>>,
}

impl<C: Cluster> Clone for Writer<C> {
    fn clone(&self) -> Self {
        Writer {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<C: Cluster> {
    cluster: C,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    dry_run: bool,
    eviction_mode: EvictionMode,
    node_lease_namespace: String,
    leader: watch::Receiver<u64>,
    /// Where the per-object workers run (a pod's NotReady mark hands over its Event from one).
    tasks: Tasks,
    /// The actions waiting per object, with the leader term they were decided in; an object
    /// is here while its worker runs. Plain queues under one lock: a channel per object
    /// allocated a block of 32 actions (~6 KiB) up front, and at start-up every node's
    /// RegisteredNode Event is an object of its own (~55 MiB at 10k nodes).
    queues: Mutex<BTreeMap<String, VecDeque<(u64, Action)>>>,
    /// One semaphore per `Lane`, indexed by it.
    lanes: [Semaphore; 4],
    priority: Priority,
    reads: Mutex<Reads>,
    /// Pods read ahead of their eviction (`Writer::read_ahead`), by `namespace/name`, with
    /// when they were read.
    read_ahead: Mutex<HashMap<String, (Pod, tokio::time::Instant)>>,
    /// The dry run's decisions already logged.
    dry_run_said: Mutex<std::collections::HashSet<String>>,
}

impl<C: Cluster> Writer<C> {
    pub fn new(
        cluster: C,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        settings: &Settings,
        leader: watch::Receiver<u64>,
        tasks: Tasks,
    ) -> Self {
        Writer {
            inner: Arc::new(Inner {
                tasks,
                cluster,
                clock,
                metrics,
                dry_run: settings.dry_run,
                eviction_mode: settings.eviction_mode,
                node_lease_namespace: settings.node_lease_namespace.clone(),
                leader,
                queues: Mutex::new(BTreeMap::new()),
                lanes: Lane::ALL.map(|l| Semaphore::new(l.width())),
                priority: Priority::new(),
                reads: Mutex::new(Reads::default()),
                read_ahead: Mutex::new(HashMap::new()),
                dry_run_said: Mutex::new(Default::default()),
            }),
        }
    }

    /// Hands over a batch of decisions; returns at once. Node writes are handed over first: a
    /// pass that loses 250 nodes decides each node's Unknown mark next to its 30 pod marks and
    /// Events, and in that order the last node's write was queued behind ~15 000 others. Only
    /// node objects are moved (their actions all travel in the node lane), so the actions on
    /// any one object keep their order.
    pub fn submit(&self, actions: Vec<Action>) {
        let (nodes, others): (Vec<Action>, Vec<Action>) = actions
            .into_iter()
            .partition(|a| Lane::of(a) == Lane::Nodes);
        for action in nodes.into_iter().chain(others) {
            self.inner.submit_one(action);
        }
    }

    /// Reads these pods ahead of their evictions, which are due shortly. An eviction reads its
    /// pod, then its node, then writes the pod's DisruptionTarget condition and deletes it: when
    /// 300 pods fall due at the same instant (10 nodes tainted in the same second), that is
    /// 1 200 requests on the server at once. The first attempt of an eviction takes its pod from
    /// here instead, which is as good as reading it then: the condition is written with the
    /// copy's resourceVersion, so if the pod changed since it was read ahead (a toleration
    /// added, its deletion begun), the write is refused and the retry reads the pod again. A copy
    /// that already carries the condition (no write to guard it) is not used. The node is read
    /// at the time of the eviction as before; nothing here is written. Best effort: a pod that
    /// could not be read ahead is read by its eviction.
    pub fn read_ahead(&self, pods: Vec<PodRef>) {
        let now = tokio::time::Instant::now();
        self.inner
            .read_ahead
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, (_, at)| now.duration_since(*at) <= READ_AHEAD_MAX_AGE);
        let term = *self.inner.leader.borrow();
        if self.inner.dry_run || term == 0 || pods.is_empty() {
            return;
        }
        let mut pods = pods;
        pods.truncate(READ_AHEAD_MAX);
        let inner = self.inner.clone();
        self.inner.tasks.spawn(async move {
            futures::stream::iter(pods)
                .for_each_concurrent(READ_AHEAD_WIDTH, |p| {
                    let inner = &inner;
                    async move {
                        // Too late to help: its eviction reads the pod itself.
                        if !inner.leads_in(term) || inner.clock.now() >= p.due {
                            return;
                        }
                        let read = inner.cluster.get_pod(&p.namespace, &p.name);
                        match with_urgency(Urgency::Urgent, read).await {
                            Ok(pod) if recheck::same_binding(&pod, &p.uid, &p.node) => {
                                let key = key_of(Some(&p.namespace), &p.name);
                                let at = tokio::time::Instant::now();
                                inner
                                    .read_ahead
                                    .lock()
                                    .unwrap_or_else(|p| p.into_inner())
                                    .insert(key, (pod, at));
                            }
                            Ok(_) => {}
                            Err(e) => debug!(pod = %p.name, error = %e, "could not read a pod ahead of its eviction"),
                        }
                    }
                })
                .await;
        });
    }

    /// Drops every pod read ahead (leadership lost: its evictions will not come).
    pub fn forget_read_ahead(&self) {
        self.inner
            .read_ahead
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

impl<C: Cluster> Inner<C> {
    /// Queues the action behind the others on its object, starting the object's worker if it
    /// has none.
    fn submit_one(self: &Arc<Self>, action: Action) {
        let term = *self.leader.borrow();
        let dropped = if self.dry_run {
            self.say_dry_run(&action);
            Some("dry_run")
        } else if term == 0 {
            debug!(kind = kind(&action), "not the leader: dropping write");
            Some("not_leader")
        } else {
            None
        };
        if let Some(reason) = dropped {
            let count = writes_in(&action);
            self.metrics.dropped_writes(kind(&action), reason, count);
            if let Action::MarkPodsNotReady { .. } = action {
                // And the pods' Events, which the marks would have recorded.
                self.metrics.dropped_writes("event", reason, count);
            }
            return;
        }
        let key = object_key(&action);
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(queue) = queues.get_mut(&key) {
            queue.push_back((term, action));
            return;
        }
        queues.insert(key.clone(), VecDeque::from([(term, action)]));
        drop(queues);
        let inner = self.clone();
        let span = tracing::info_span!("writer", object = %key);
        self.tasks
            .spawn(async move { inner.work(key).await }.instrument(span));
    }

    /// Logs what a dry run would do, once per decision: with nothing written, the passes
    /// decide the same again and again (a taint every few seconds, until it would be seen).
    /// Events, one per node at start, only at debug level.
    fn say_dry_run(&self, action: &Action) {
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

    /// Applies the actions of one object in order; ends (and unregisters the object) when its
    /// queue is empty.
    async fn work(self: Arc<Self>, key: String) {
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
                    Action::MarkPodsNotReady {
                        node,
                        pods,
                        node_heartbeat,
                        lease_renew,
                        now,
                    },
                ) => {
                    // All the node's pods at once (each still waits for its lane), so that
                    // their attempts start together and share one read of the node and one of
                    // its Lease, as when they were actions of their own.
                    futures::stream::iter(pods)
                        .for_each_concurrent(None, |pod| {
                            let mark = Action::MarkPodNotReady {
                                namespace: pod.namespace,
                                name: pod.name,
                                uid: pod.uid,
                                node: node.clone(),
                                node_heartbeat,
                                lease_renew,
                                now,
                            };
                            let key = object_key(&mark);
                            let this = &self;
                            async move { this.apply(&key, term, mark).await }
                        })
                        .await;
                }
                (term, action) => self.apply(&key, term, action).await,
            }
        }
    }

    /// Whether we still lead in the term the action was decided in.
    fn leads_in(&self, term: u64) -> bool {
        *self.leader.borrow() == term
    }

    async fn apply(self: &Arc<Self>, key: &str, term: u64, action: Action) {
        let kind = kind(&action);
        let lane = Lane::of(&action);
        let mut queued = Queued::new(&self.metrics, lane.queue_name());
        let mut failures = 0u32;
        let mut conflicts = 0u32;
        let mut first = true;
        // A pod mark's Event, once handed over, is not handed over again by a later attempt.
        let mut event_recorded = false;
        loop {
            // The leader gate sits where writes happen: losing the lease stops all acting at once.
            if !self.leads_in(term) {
                self.metrics.dropped_write(kind, "not_leader");
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
                    self.metrics.dropped_write(kind, "not_leader");
                    return;
                }
                queued.started();
                // Boxed: an attempt's future (kube's request futures inside) is ~6 KiB, and
                // unboxed it would be part of every queued object's task from its spawn, while
                // it waits for a permit: 10 000 RegisteredNode Events at start-up, or a failure
                // burst's pod marks and Events, held ~70 MiB that way at 10k nodes.
                let first = std::mem::take(&mut first);
                let started = tokio::time::Instant::now();
                let attempt = self.attempt(&action, first, &mut event_recorded);
                let outcome = Box::pin(with_urgency(lane.urgency(), attempt)).await;
                self.metrics
                    .queue_worked(queued.name, started.elapsed().as_secs_f64());
                outcome
            };
            match outcome {
                Attempt::Done => return,
                Attempt::Conflict => {
                    self.metrics.write_retry(kind);
                    self.metrics.queue_retry(queued.name);
                    conflicts += 1;
                    if conflicts > 3 {
                        // Someone keeps changing the object: back off like any other failure.
                        self.back_off(backoff(failures, key)).await;
                        failures += 1;
                    }
                }
                Attempt::Retry(e) => {
                    if matches!(action, Action::Event(_)) && failures + 1 >= EVENT_ATTEMPTS {
                        warn!(object = key, error = %e, "giving up on an event");
                        return;
                    }
                    if let Action::ChangeTaints {
                        purpose: TaintPurpose::ZoneEviction { zone },
                        ..
                    } = &action
                    {
                        // Released by its zone's rate limiter for now: a retry later would
                        // taint outside that rate. Back to the zone's queue (the monitor queues
                        // the node again once this attempt's taint is not seen) for a new token.
                        warn!(object = key, zone, error = %e, "zone taint failed: back to its zone's queue");
                        self.metrics.dropped_write(kind, "requeued");
                        return;
                    }
                    self.metrics.write_retry(kind);
                    self.metrics.queue_retry(queued.name);
                    let refused_by_budget = matches!(action, Action::EvictPod { .. })
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
}

/// An action in its lane's queue, for the `workqueue_*` metrics: counted in the depth from the
/// moment the writer takes it up until its first attempt starts (or it is dropped).
struct Queued<'a> {
    metrics: &'a Metrics,
    name: &'static str,
    since: Option<tokio::time::Instant>,
}

impl<'a> Queued<'a> {
    fn new(metrics: &'a Metrics, name: &'static str) -> Self {
        metrics.queue_added(name);
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
                .queue_left(self.name, Some(since.elapsed().as_secs_f64()));
        }
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if self.since.is_some() {
            self.metrics.queue_left(self.name, None);
        }
    }
}

impl<C: Cluster> Inner<C> {
    /// Waits `delay` before a retry, or less when leadership changes meanwhile: the retry then
    /// finds it no longer leads in its term and is dropped at once, instead of holding up the
    /// object's queue (where a new term's actions may wait) for up to the longest backoff.
    async fn back_off(&self, delay: Duration) {
        let mut leader = self.leader.clone();
        leader.borrow_and_update();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = leader.changed() => {}
        }
    }

    /// Records the outcome of one API call and classifies it.
    fn outcome<T>(&self, kind: &'static str, result: Result<T, ApiError>) -> Result<T, Attempt> {
        match result {
            Ok(v) => {
                self.metrics.write(kind, "ok");
                Ok(v)
            }
            Err(e) => {
                self.metrics.write(kind, e.kind());
                Err(match e {
                    ApiError::Conflict(_) => Attempt::Conflict,
                    ApiError::NotFound(_) => Attempt::Done,
                    other => Attempt::Retry(other),
                })
            }
        }
    }

    /// A read; NotFound means the action has nothing left to do.
    fn read<T>(result: Result<T, ApiError>) -> Result<T, Attempt> {
        result.map_err(|e| match e {
            ApiError::NotFound(_) => Attempt::Done,
            other => Attempt::Retry(other),
        })
    }

    /// Registers an attempt starting now; reads it may share must start after this.
    fn start_attempt(&self) -> Running<'_> {
        let mut reads = self.reads.lock().unwrap_or_else(|p| p.into_inner());
        let since = reads.take_seq();
        reads.running.insert(since);
        Running {
            reads: &self.reads,
            since,
        }
    }

    /// The object `name` of the kind `pick` selects, as read by a GET that started after the
    /// attempt `since` did: joins such a read in flight or reuses one done, else starts one with
    /// `get`. Never for an object that is changed and written back (another attempt may hold
    /// the same copy).
    async fn shared<T: Send + Sync + 'static>(
        &self,
        pick: fn(&mut Reads) -> &mut SharedReads<T>,
        name: &str,
        since: Seq,
        get: impl FnOnce() -> BoxFuture<'static, Result<T, ApiError>>,
    ) -> Result<Arc<T>, ApiError> {
        let read = {
            let mut reads = self.reads.lock().unwrap_or_else(|p| p.into_inner());
            match pick(&mut reads).usable(name, since) {
                Some(read) => read,
                None => {
                    let started = reads.take_seq();
                    let read = get().map(|r| r.map(Arc::new)).boxed().shared();
                    pick(&mut reads).insert(name, started, read.clone());
                    read
                }
            }
        };
        read.await
    }

    async fn shared_node(&self, name: &str, since: Seq) -> Result<Arc<Node>, ApiError> {
        let get = || {
            let (cluster, name) = (self.cluster.clone(), name.to_owned());
            async move { cluster.get_node(&name).await }.boxed()
        };
        self.shared(|r| &mut r.nodes, name, since, get).await
    }

    async fn shared_lease(&self, name: &str, since: Seq) -> Result<Arc<Lease>, ApiError> {
        let get = || {
            let cluster = self.cluster.clone();
            let (namespace, name) = (self.node_lease_namespace.clone(), name.to_owned());
            async move { cluster.get_lease(&namespace, &name).await }.boxed()
        };
        self.shared(|r| &mut r.leases, name, since, get).await
    }

    /// One attempt at `action`; `first` when no attempt at it was made before;
    /// `event_recorded` whether an earlier attempt at a pod mark handed over its Event.
    async fn attempt(
        self: &Arc<Self>,
        action: &Action,
        first: bool,
        event_recorded: &mut bool,
    ) -> Attempt {
        let running = self.start_attempt();
        let since = running.since;
        let r = match action {
            Action::MarkNodeUnknown {
                node,
                ready_heartbeat,
                lease_renew,
                now,
                seen,
            } => {
                let seen = seen.as_ref().filter(|_| first);
                self.mark_node_unknown(node, *ready_heartbeat, *lease_renew, *now, seen, since)
                    .await
            }
            Action::ChangeTaints {
                node,
                change,
                purpose,
            } => self.change_taints(node, change, purpose).await,
            Action::SetLabels { node, labels } => self.set_labels(node, labels).await,
            // Applied pod by pod (`work`), never as a whole.
            Action::MarkPodsNotReady { .. } => Ok(()),
            Action::MarkPodNotReady {
                namespace,
                name,
                uid,
                node,
                node_heartbeat,
                lease_renew,
                // The decision's time; the mark is stamped with the attempt's.
                now: _,
            } => {
                self.mark_pod_not_ready(
                    namespace,
                    name,
                    uid,
                    node,
                    *node_heartbeat,
                    *lease_renew,
                    since,
                    event_recorded,
                )
                .await
            }
            Action::EvictPod {
                namespace,
                name,
                uid,
                node,
            } => {
                let ahead = first
                    .then(|| self.take_read_ahead(namespace, name, uid, node))
                    .flatten();
                self.evict_pod(namespace, name, uid, node, ahead, since)
                    .await
            }
            Action::Event(record) => {
                let now = self.clock.now();
                match self.cluster.create_event(record, now).await {
                    Ok(()) => {
                        self.metrics.write("event", "ok");
                        Ok(())
                    }
                    Err(e) => {
                        self.metrics.write("event", e.kind());
                        Err(Attempt::Retry(e))
                    }
                }
            }
        };
        match r {
            Ok(()) => Attempt::Done,
            Err(a) => a,
        }
    }

    /// Marks the node's conditions Unknown. The first attempt starts from the conditions the
    /// decision saw (`seen`) and patches them guarded by their resourceVersion: if the node
    /// changed since, the patch is refused and the retry reads the node (its own read, not a
    /// shared one: its resourceVersion guards the write). Only the marked conditions are sent,
    /// merged by type on the server.
    async fn mark_node_unknown(
        &self,
        name: &str,
        heartbeat: Option<Timestamp>,
        lease_renew: Option<Timestamp>,
        now: Timestamp,
        seen: Option<&SeenConditions>,
        since: Seq,
    ) -> Result<(), Attempt> {
        let node = match seen {
            Some(seen) => Node {
                metadata: ObjectMeta {
                    name: Some(name.to_string()),
                    resource_version: Some(seen.resource_version.clone()),
                    creation_timestamp: seen.created.map(Time),
                    ..Default::default()
                },
                spec: None,
                status: Some(NodeStatus {
                    conditions: Some(seen.conditions.clone()),
                    ..Default::default()
                }),
            },
            None => Self::read(self.cluster.get_node(name).await)?,
        };
        let seen_alive = SilenceSeen {
            heartbeat,
            lease_renew,
        };
        if !self.still_silent(&node, seen_alive, since).await? {
            debug!(
                node = name,
                "kubelet posted or renewed its lease since the decision: not marking Unknown"
            );
            return Ok(());
        }
        let version = resource_version(&node.metadata).to_owned();
        // Stamped at this attempt, not at the decision: a retry that lands after an outage
        // says when the conditions changed on the server.
        let Some(mark) = conditions::unknown_mark(node, self.clock.now()) else {
            return Ok(());
        };
        let written = self
            .cluster
            .patch_node_conditions(name, &version, &mark.conditions)
            .await;
        self.outcome("node_status", written)?;
        self.metrics.observe_unknown_write_delay(
            crate::logic::time::since(self.clock.now(), now).as_secs_f64(),
        );
        info!(
            node = name,
            conditions = mark.changed.join(","),
            reason =
                "no Lease renewal or Ready heartbeat for longer than --node-monitor-grace-period",
            "marked node conditions Unknown"
        );
        Ok(())
    }

    /// Whether the live node shows no sign of life since the decision (`recheck::SilenceSeen`).
    /// The Lease is only read, so one read of it serves every attempt that began before it
    /// started; it is not read at all when the node posted a heartbeat.
    async fn still_silent(
        &self,
        node: &Node,
        seen: SilenceSeen,
        since: Seq,
    ) -> Result<bool, Attempt> {
        if seen.heartbeat_posted(node) {
            return Ok(false);
        }
        let name = node.metadata.name.as_deref().unwrap_or("");
        let lease = match self.shared_lease(name, since).await {
            Ok(lease) => Some(lease),
            Err(ApiError::NotFound(_)) => None,
            Err(e) => return Err(Attempt::Retry(e)),
        };
        Ok(seen.still_silent(node, lease.as_deref()))
    }

    async fn change_taints(
        &self,
        name: &str,
        change: &crate::logic::actions::TaintChange,
        purpose: &TaintPurpose,
    ) -> Result<(), Attempt> {
        let node = Self::read(self.cluster.get_node(name).await)?;
        let Some(write) = recheck::taints_to_write(&node, change, purpose, self.clock.now()) else {
            debug!(
                node = name,
                reason = purpose.reason(),
                "taint change no longer wanted on the live node"
            );
            return Ok(());
        };
        let written = self
            .cluster
            .patch_node_taints(name, resource_version(&node.metadata), &write.taints)
            .await;
        self.outcome("node_taints", written)?;
        info!(
            node = name,
            added = write.change.added(),
            removed = write.change.removed(),
            reason = purpose.reason(),
            "changed node taints"
        );
        if let TaintPurpose::ZoneEviction { zone } = purpose {
            self.metrics.inc_zone_evictions(zone);
        }
        Ok(())
    }

    async fn set_labels(
        &self,
        name: &str,
        wanted: &BTreeMap<String, String>,
    ) -> Result<(), Attempt> {
        let node = Self::read(self.cluster.get_node(name).await)?;
        let changes = recheck::labels_to_set(&node, wanted);
        if !changes.is_empty() {
            let written = self
                .cluster
                .patch_node_labels(name, resource_version(&node.metadata), &changes)
                .await;
            self.outcome("node_labels", written)?;
            let shown: Vec<String> = changes.iter().map(|(k, v)| format!("{k}={v}")).collect();
            info!(
                node = name,
                labels = shown.join(","),
                reason = "the beta OS and architecture labels follow the GA ones",
                "set node labels"
            );
        }
        Ok(())
    }

    /// The live pod, if it is still the one the decision was about (same UID, same node).
    async fn same_pod(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        node: &str,
    ) -> Result<Option<Pod>, Attempt> {
        let pod = Self::read(self.cluster.get_pod(namespace, name).await)?;
        Ok(recheck::same_binding(&pod, uid, node).then_some(pod))
    }

    /// The copy of the pod read ahead of its eviction, if there is one to use: recent, of the
    /// pod the decision was about, and without a DisruptionTarget condition (see
    /// `Writer::read_ahead`). Taken either way: a retry reads the pod itself.
    fn take_read_ahead(&self, namespace: &str, name: &str, uid: &str, node: &str) -> Option<Pod> {
        let (pod, at) = self
            .read_ahead
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key_of(Some(namespace), name))?;
        let usable = at.elapsed() <= READ_AHEAD_MAX_AGE
            && recheck::same_binding(&pod, uid, node)
            && !recheck::has_disruption_target(&pod);
        usable.then_some(pod)
    }

    #[allow(clippy::too_many_arguments)]
    async fn mark_pod_not_ready(
        self: &Arc<Self>,
        namespace: &str,
        name: &str,
        uid: &str,
        node: &str,
        heartbeat: Option<Timestamp>,
        lease_renew: Option<Timestamp>,
        since: Seq,
        event_recorded: &mut bool,
    ) -> Result<(), Attempt> {
        let Some(pod) = self.same_pod(namespace, name, uid, node).await? else {
            return Ok(());
        };
        // Only read, so shared with the other attempts on this node's pods.
        let live = Self::read(self.shared_node(node, since).await)?;
        let seen_alive = SilenceSeen {
            heartbeat,
            lease_renew,
        };
        if !self.still_silent(&live, seen_alive, since).await? {
            debug!(
                node,
                "node showed a sign of life since the decision: not marking its pod NotReady"
            );
            return Ok(());
        }
        // This attempt's time, as for the node's conditions.
        let Some(mark) = recheck::pod_not_ready_mark(&pod, self.clock.now()) else {
            return Ok(());
        };
        let marked = [mark];
        let written = self
            .cluster
            .patch_pod_conditions(namespace, name, resource_version(&pod.metadata), &marked)
            .await;
        // After the write, as upstream (which records it unless the pod is gone): the pod
        // existed and was marked, or may have been (an answer lost on the way still recorded
        // it; the retry would find the pod marked and write nothing). Not after a conflict: the
        // write was refused and its retry records the Event. Once per mark.
        let may_have_landed =
            !matches!(written, Err(ApiError::NotFound(_) | ApiError::Conflict(_)));
        if may_have_landed && !std::mem::replace(event_recorded, true) {
            self.submit_one(monitor::pod_not_ready_event(namespace, name, uid));
        }
        self.outcome("pod_status", written)?;
        info!(
            pod = %format!("{namespace}/{name}"),
            node,
            reason = "its node stopped reporting (heartbeats older than the grace period)",
            "marked pod NotReady"
        );
        Ok(())
    }

    /// Evicts the pod, if it is still due, re-checked on its live node and on the live pod or
    /// (`ahead`) a copy read ahead of time whose write is guarded by its resourceVersion.
    async fn evict_pod(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        node_name: &str,
        ahead: Option<Pod>,
        since: Seq,
    ) -> Result<(), Attempt> {
        let started = self.clock.now();
        let from_ahead = ahead.is_some();
        let mut pod = match ahead {
            Some(pod) => {
                // The node is read next. Evictions falling due together share that read if
                // they began before it started; without a read of the pod first, this one
                // would start it before the others of its batch had begun. Let them begin.
                for _ in 0..2 {
                    tokio::task::yield_now().await;
                }
                pod
            }
            None => match self.same_pod(namespace, name, uid, node_name).await? {
                Some(pod) => pod,
                None => return Ok(()),
            },
        };
        if pod.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        // docs/differences.md#deletions-are-never-dropped: the node must still carry a NoExecute taint the pod does not
        // tolerate forever (kubernetes#139992). Only read, so shared with the other evictions
        // from this node: when its pods fall due together, one GET serves them all.
        let node = Self::read(self.shared_node(node_name, since).await)?;
        let now = self.clock.now();
        let mut due = recheck::due_on_live_taints(&pod, &node, now);
        if !due && from_ahead {
            // A copy read ahead is only as good as a fresh read when a write guarded by its
            // resourceVersion follows; a decision to keep the pod has none, so the pod
            // decides (its tolerations may have been raised and lowered again since).
            pod = match self.same_pod(namespace, name, uid, node_name).await? {
                Some(pod) if pod.metadata.deletion_timestamp.is_none() => pod,
                _ => return Ok(()),
            };
            due = recheck::due_on_live_taints(&pod, &node, now);
        }
        if !due {
            info!(pod = %format!("{namespace}/{name}"), "no longer due for eviction: keeping it");
            return Ok(());
        }
        if !recheck::has_disruption_target(&pod) {
            let target = [recheck::disruption_target(now)];
            let version = resource_version(&pod.metadata);
            let written = self
                .cluster
                .patch_pod_conditions(namespace, name, version, &target)
                .await;
            self.outcome("pod_status", written)?;
        }
        let (write_kind, result) = match self.eviction_mode {
            EvictionMode::Delete => (
                "pod_delete",
                self.cluster.delete_pod(namespace, name, uid).await,
            ),
            EvictionMode::Evict => (
                "pod_evict",
                self.cluster.evict_pod(namespace, name, uid).await,
            ),
        };
        if let Err(ApiError::TooManyRequests(_)) = &result {
            // Logged once, with its retry, by `apply`.
            self.metrics.eviction_refused();
        }
        // A conflict (409) is retried at once like any other: the next attempt reads the live
        // pod again and stops there if its UID precondition failed (a different pod of that
        // name now exists). Taking any 409 as that case would drop a deletion that was only
        // refused because the object was being written concurrently.
        self.outcome(write_kind, result)?;
        self.metrics
            .pod_deleted(crate::logic::time::since(self.clock.now(), started).as_secs_f64());
        let (verb, via) = match self.eviction_mode {
            EvictionMode::Delete => ("deleted pod", "DELETE"),
            EvictionMode::Evict => ("evicted pod", "the Eviction API"),
        };
        info!(
            pod = %format!("{namespace}/{name}"),
            node = node_name,
            via,
            reason = "it does not tolerate its node's NoExecute taints any longer",
            "{verb}"
        );
        Ok(())
    }
}

/// The resourceVersion a patch is guarded by: the one of the object the decision was taken on.
fn resource_version(meta: &ObjectMeta) -> &str {
    meta.resource_version.as_deref().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, Taint};

    /// A node at resourceVersion 1, Ready=True with no heartbeat time.
    fn ready_node(name: &str) -> k8s_openapi::api::core::v1::Node {
        use k8s_openapi::api::core::v1::{Node, NodeCondition, NodeStatus};
        let mut node = Node::default();
        node.metadata.name = Some(name.into());
        node.metadata.resource_version = Some("1".into());
        node.status = Some(NodeStatus {
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: "True".into(),
                ..Default::default()
            }]),
            ..Default::default()
        });
        node
    }

    mod lanes {
        use super::*;
        use crate::cluster::{Result, WatchStream};
        use crate::logic::actions::{EventRecord, ObjectRef};
        use k8s_openapi::api::coordination::v1::Lease;
        use k8s_openapi::api::core::v1::Node;
        use std::future::pending;
        use std::sync::atomic::{AtomicUsize, Ordering};

        /// A cluster whose pod reads and event creations never answer, and whose node writes
        /// succeed at once; it counts calls.
        #[derive(Clone, Default)]
        struct StuckPods {
            pod_reads: Arc<AtomicUsize>,
            events: Arc<AtomicUsize>,
            node_status_writes: Arc<AtomicUsize>,
        }

        impl Cluster for StuckPods {
            async fn get_node(&self, name: &str) -> Result<Node> {
                Ok(ready_node(name))
            }
            async fn list_node_versions(&self) -> Result<Vec<crate::cluster::ObjectVersion>> {
                unreachable!("the writer does not list")
            }
            async fn patch_node_taints(&self, _: &str, _: &str, _: &[Taint]) -> Result<()> {
                Ok(())
            }
            async fn patch_node_labels(
                &self,
                _: &str,
                _: &str,
                _: &BTreeMap<String, String>,
            ) -> Result<()> {
                Ok(())
            }
            async fn patch_node_conditions(
                &self,
                _: &str,
                _: &str,
                _: &[k8s_openapi::api::core::v1::NodeCondition],
            ) -> Result<()> {
                self.node_status_writes.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
            async fn get_pod(&self, _: &str, _: &str) -> Result<Pod> {
                self.pod_reads.fetch_add(1, Ordering::SeqCst);
                pending().await
            }
            async fn patch_pod_conditions(
                &self,
                _: &str,
                _: &str,
                _: &str,
                _: &[PodCondition],
            ) -> Result<()> {
                pending().await
            }
            async fn delete_pod(&self, _: &str, _: &str, _: &str) -> Result<()> {
                pending().await
            }
            async fn evict_pod(&self, _: &str, _: &str, _: &str) -> Result<()> {
                pending().await
            }
            async fn list_lease_versions(
                &self,
                _: &str,
            ) -> Result<Vec<crate::cluster::ObjectVersion>> {
                unreachable!("the writer does not list")
            }
            async fn get_lease(&self, _: &str, name: &str) -> Result<Lease> {
                Err(ApiError::NotFound(name.into()))
            }
            async fn create_lease(&self, lease: &Lease) -> Result<Lease> {
                Ok(lease.clone())
            }
            async fn replace_lease(&self, lease: &Lease) -> Result<Lease> {
                Ok(lease.clone())
            }
            async fn create_event(&self, _: &EventRecord, _: Timestamp) -> Result<()> {
                self.events.fetch_add(1, Ordering::SeqCst);
                pending().await
            }
            fn watch_nodes(&self) -> WatchStream<Node> {
                unreachable!("the writer does not watch")
            }
            fn watch_leases(&self, _: &str) -> WatchStream<Lease> {
                unreachable!("the writer does not watch")
            }
            fn watch_pods(&self) -> WatchStream<crate::logic::cached_pod::CachedPod> {
                unreachable!("the writer does not watch")
            }
        }

        #[tokio::test(start_paused = true)]
        async fn a_flood_of_pod_writes_is_bounded_per_lane_and_node_writes_pass_it() {
            let cluster = StuckPods::default();
            let (_leader_tx, leader) = watch::channel(1u64);
            let clock: Arc<dyn Clock> = Arc::new(crate::clock::TokioClock::starting_at(
                "2025-01-01T00:00:00Z".parse().unwrap(),
            ));
            let writer = Writer::new(
                cluster.clone(),
                Arc::clone(&clock),
                Arc::new(Metrics::new()),
                &Settings::default(),
                leader,
                Tasks::default(),
            );
            let now = clock.now();
            let mut flood = Vec::new();
            for i in 0..100 {
                flood.push(Action::MarkPodNotReady {
                    namespace: "default".into(),
                    name: format!("p-{i}"),
                    uid: format!("uid-{i}"),
                    node: "n".into(),
                    node_heartbeat: None,
                    lease_renew: None,
                    now,
                });
                flood.push(Action::Event(EventRecord {
                    component: crate::logic::actions::Component::NodeController,
                    object: ObjectRef::pod("default", &format!("p-{i}"), None),
                    event_type: crate::logic::actions::EventType::Warning,
                    reason: "NodeNotReady".into(),
                    message: "m".into(),
                }));
            }
            writer.submit(flood);
            writer.submit(vec![Action::MarkNodeUnknown {
                node: "n".into(),
                ready_heartbeat: None,
                lease_renew: None,
                now,
                seen: None,
            }]);
            tokio::time::sleep(Duration::from_secs(1)).await;
            assert_eq!(
                cluster.pod_reads.load(Ordering::SeqCst),
                Lane::PodStatus.width(),
                "pod status attempts in flight are bounded by their lane"
            );
            assert_eq!(
                cluster.events.load(Ordering::SeqCst),
                Lane::Events.width(),
                "event attempts in flight are bounded by their lane"
            );
            assert_eq!(
                cluster.node_status_writes.load(Ordering::SeqCst),
                1,
                "the node's Unknown write did not wait behind the pods"
            );
        }
    }

    /// An API server double for the shared reads and the lanes' priority: objects in maps; each
    /// call sees (or changes) them as they are when it starts and answers `LATENCY` of virtual
    /// time later; every call is logged with when it started and ended.
    mod api {
        use super::*;
        use crate::cluster::{Result, WatchStream};
        use crate::logic::actions::EventRecord;
        use k8s_openapi::api::coordination::v1::LeaseSpec;
        use k8s_openapi::api::core::v1::{NodeSpec, PodSpec, Taint, Toleration};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
        use tokio::time::Instant;

        pub const LATENCY: Duration = Duration::from_millis(10);

        pub fn epoch() -> Timestamp {
            "2025-01-01T00:00:00Z".parse().unwrap()
        }

        /// One request: what (`"GET node"`, `"PATCH pod status"`, ...), on which object, when it
        /// started and ended (time since the double was made).
        #[derive(Clone, Debug)]
        pub struct Call {
            pub what: &'static str,
            pub object: String,
            pub start: Duration,
            pub end: Option<Duration>,
        }

        #[derive(Default)]
        struct Objects {
            nodes: BTreeMap<String, Node>,
            pods: BTreeMap<String, Pod>,
            leases: BTreeMap<String, Lease>,
            calls: Vec<Call>,
            /// Calls (by `what`) that fail with `Unavailable`, and how many more times.
            failing: BTreeMap<&'static str, usize>,
            /// Calls (by `what`) that fail with `TooManyRequests`, and how many more times.
            throttled: BTreeMap<&'static str, usize>,
            /// Calls (by `what`) that answer `NotFound`.
            missing: BTreeSet<&'static str>,
            /// Calls (by `what`) applied whose answer is lost (`Unavailable`), and how many more.
            lost: BTreeMap<&'static str, usize>,
            /// The conditions each conditions patch sent, as JSON, in order.
            conditions_sent: Vec<serde_json::Value>,
        }

        #[derive(Clone)]
        pub struct Api {
            objects: Arc<Mutex<Objects>>,
            start: Instant,
        }

        impl Api {
            pub fn new() -> Self {
                Api {
                    objects: Arc::default(),
                    start: Instant::now(),
                }
            }

            fn objects(&self) -> std::sync::MutexGuard<'_, Objects> {
                self.objects.lock().unwrap()
            }

            /// The conditions every node or pod conditions patch sent so far, as JSON.
            pub fn conditions_sent(&self) -> Vec<serde_json::Value> {
                self.objects().conditions_sent.clone()
            }

            /// Adds a node, Ready=True with no heartbeat time, and its Lease renewed at `epoch()`.
            pub fn add_node(&self, name: &str) {
                let node = crate::controller::writer::tests::ready_node(name);
                let mut lease = Lease::default();
                lease.metadata.name = Some(name.into());
                lease.spec = Some(LeaseSpec {
                    renew_time: Some(MicroTime(epoch())),
                    ..Default::default()
                });
                let mut o = self.objects();
                o.nodes.insert(name.into(), node);
                o.leases.insert(name.into(), lease);
            }

            /// Sets or clears the `unreachable` NoExecute taint, which no test pod tolerates.
            pub fn set_unreachable(&self, name: &str, tainted: bool) {
                let mut o = self.objects();
                let node = o.nodes.get_mut(name).unwrap();
                node.spec = Some(NodeSpec {
                    taints: tainted.then(|| {
                        vec![Taint {
                            key: "node.kubernetes.io/unreachable".into(),
                            effect: "NoExecute".into(),
                            ..Default::default()
                        }]
                    }),
                    ..Default::default()
                });
                bump(&mut node.metadata);
            }

            /// Adds pods p-0, p-1, ... (`count` of them, as `add_pod` makes them) bound to `node`;
            /// returns their names.
            pub fn add_pods(&self, count: usize, node: &str) -> Vec<String> {
                let pods: Vec<String> = (0..count).map(|i| format!("p-{i}")).collect();
                for p in &pods {
                    self.add_pod(p, node);
                }
                pods
            }

            /// Adds pod `default/name` (UID `uid-<name>`) bound to `node`, Ready=True.
            pub fn add_pod(&self, name: &str, node: &str) {
                let mut pod = Pod::default();
                pod.metadata.namespace = Some("default".into());
                pod.metadata.name = Some(name.into());
                pod.metadata.uid = Some(format!("uid-{name}"));
                pod.metadata.resource_version = Some("1".into());
                pod.spec = Some(PodSpec {
                    node_name: Some(node.into()),
                    ..Default::default()
                });
                pod.status = Some(k8s_openapi::api::core::v1::PodStatus {
                    conditions: Some(vec![PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        ..Default::default()
                    }]),
                    ..Default::default()
                });
                self.objects().pods.insert(format!("default/{name}"), pod);
            }

            /// The pod now tolerates every NoExecute taint for good (a write from elsewhere).
            pub fn tolerate_forever(&self, name: &str) {
                let mut o = self.objects();
                let pod = o.pods.get_mut(&format!("default/{name}")).unwrap();
                pod.spec.as_mut().unwrap().tolerations = Some(vec![Toleration {
                    operator: Some("Exists".into()),
                    effect: Some("NoExecute".into()),
                    ..Default::default()
                }]);
                bump(&mut pod.metadata);
            }

            /// The pod tolerates nothing any more (a write from elsewhere).
            pub fn tolerate_nothing(&self, name: &str) {
                let mut o = self.objects();
                let pod = o.pods.get_mut(&format!("default/{name}")).unwrap();
                pod.spec.as_mut().unwrap().tolerations = None;
                bump(&mut pod.metadata);
            }

            /// The kubelet posts its Ready condition with this heartbeat.
            pub fn post_heartbeat(&self, name: &str, at: Timestamp) {
                let mut o = self.objects();
                let node = o.nodes.get_mut(name).unwrap();
                let conds = node.status.as_mut().unwrap().conditions.as_mut().unwrap();
                let ready = conds.iter_mut().find(|c| c.type_ == "Ready").unwrap();
                ready.last_heartbeat_time = Some(Time(at));
                bump(&mut node.metadata);
            }

            /// Sets the pod's Ready condition to `status` (a write from elsewhere).
            pub fn set_ready(&self, name: &str, status: &str) {
                let mut o = self.objects();
                let pod = o.pods.get_mut(&format!("default/{name}")).unwrap();
                let conds = pod.status.as_mut().unwrap().conditions.as_mut().unwrap();
                conds
                    .iter_mut()
                    .find(|c| c.type_ == "Ready")
                    .unwrap()
                    .status = status.into();
                bump(&mut pod.metadata);
            }

            /// The node's kubelet renews its Lease at `at`.
            pub fn renew_lease(&self, node: &str, at: Timestamp) {
                let mut o = self.objects();
                let lease = o.leases.get_mut(node).unwrap();
                lease.spec.as_mut().unwrap().renew_time = Some(MicroTime(at));
                bump(&mut lease.metadata);
            }

            /// The pod carries the taint manager's DisruptionTarget condition already.
            pub fn set_disruption_target(&self, name: &str) {
                let mut o = self.objects();
                let pod = o.pods.get_mut(&format!("default/{name}")).unwrap();
                let conds = pod.status.as_mut().unwrap().conditions.as_mut().unwrap();
                conds.push(PodCondition {
                    type_: "DisruptionTarget".into(),
                    status: "True".into(),
                    ..Default::default()
                });
                bump(&mut pod.metadata);
            }

            /// The next `times` calls of `what` are applied, but answer `Unavailable`.
            pub fn lose_answer(&self, what: &'static str, times: usize) {
                self.objects().lost.insert(what, times);
            }

            pub fn fail(&self, what: &'static str, times: usize) {
                self.objects().failing.insert(what, times);
            }

            /// The next `times` calls of `what` answer 429 Too Many Requests, not applied.
            pub fn throttle(&self, what: &'static str, times: usize) {
                self.objects().throttled.insert(what, times);
            }

            pub fn remove_all(&self, what: &'static str) {
                self.objects().missing.insert(what);
            }

            pub fn node(&self, name: &str) -> Node {
                self.objects().nodes[name].clone()
            }

            pub fn pod(&self, name: &str) -> Option<Pod> {
                self.objects().pods.get(&format!("default/{name}")).cloned()
            }

            pub fn calls(&self) -> Vec<Call> {
                self.objects().calls.clone()
            }

            pub fn count(&self, what: &str) -> usize {
                self.calls().iter().filter(|c| c.what == what).count()
            }

            /// The calls of `what` on each object.
            pub fn count_by_object(&self, what: &str) -> BTreeMap<String, usize> {
                let mut by = BTreeMap::new();
                for c in self.calls().iter().filter(|c| c.what == what) {
                    *by.entry(c.object.clone()).or_default() += 1;
                }
                by
            }

            async fn call<T>(
                &self,
                what: &'static str,
                object: &str,
                f: impl FnOnce(&mut Objects) -> Result<T>,
            ) -> Result<T> {
                let i;
                let result = {
                    let mut o = self.objects();
                    i = o.calls.len();
                    o.calls.push(Call {
                        what,
                        object: object.into(),
                        start: self.start.elapsed(),
                        end: None,
                    });
                    let fail = take_one(&mut o.failing, what);
                    let lost = take_one(&mut o.lost, what);
                    let throttled = take_one(&mut o.throttled, what);
                    if fail {
                        Err(ApiError::Unavailable("injected".into()))
                    } else if throttled {
                        Err(ApiError::TooManyRequests("injected".into()))
                    } else if o.missing.contains(what) {
                        Err(ApiError::NotFound(object.into()))
                    } else if lost {
                        f(&mut o).and(Err(ApiError::Unavailable("answer lost".into())))
                    } else {
                        f(&mut o)
                    }
                };
                tokio::time::sleep(LATENCY).await;
                self.objects().calls[i].end = Some(self.start.elapsed());
                result
            }
        }

        /// Whether `what` has a fault left in `faults`; uses it up.
        fn take_one(faults: &mut BTreeMap<&'static str, usize>, what: &str) -> bool {
            match faults.get_mut(what) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    true
                }
                _ => false,
            }
        }

        fn bump(meta: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) {
            let rv: u64 = meta
                .resource_version
                .as_deref()
                .unwrap_or("0")
                .parse()
                .unwrap();
            meta.resource_version = Some((rv + 1).to_string());
        }

        fn found<T: Clone>(map: &BTreeMap<String, T>, key: &str) -> Result<T> {
            map.get(key)
                .cloned()
                .ok_or_else(|| ApiError::NotFound(key.into()))
        }

        /// Replaces `key` in `map` if `new` carries its current resourceVersion.
        /// `object` with the conditions patch applied as kube-apiserver applies a strategic
        /// merge patch: conditions merged field by field on their type, the patch's
        /// resourceVersion taken (`replace` checks it).
        fn with_conditions<T, C>(object: &T, resource_version: &str, conditions: &[C]) -> T
        where
            T: serde::Serialize + serde::de::DeserializeOwned,
            C: serde::Serialize,
        {
            use crate::sim::store::{PatchKind, apply_patch};
            let mut value = serde_json::to_value(object).unwrap();
            let patch = crate::cluster::conditions_patch(resource_version, conditions);
            apply_patch(&mut value, &patch, PatchKind::Strategic);
            serde_json::from_value(value).unwrap()
        }

        fn replace<T: kube::Resource + Clone>(
            map: &mut BTreeMap<String, T>,
            key: &str,
            new: &T,
        ) -> Result<T> {
            let old = map.get(key).ok_or_else(|| ApiError::NotFound(key.into()))?;
            if old.meta().resource_version != new.meta().resource_version {
                return Err(ApiError::Conflict(key.into()));
            }
            let mut new = new.clone();
            bump(new.meta_mut());
            map.insert(key.into(), new.clone());
            Ok(new)
        }

        impl Cluster for Api {
            async fn get_node(&self, name: &str) -> Result<Node> {
                self.call("GET node", name, |o| found(&o.nodes, name)).await
            }
            async fn list_node_versions(&self) -> Result<Vec<crate::cluster::ObjectVersion>> {
                unreachable!("the writer does not list")
            }
            async fn patch_node_taints(
                &self,
                name: &str,
                resource_version: &str,
                taints: &[Taint],
            ) -> Result<()> {
                self.call("PATCH node", name, |o| {
                    let mut node = found(&o.nodes, name)?;
                    node.metadata.resource_version = Some(resource_version.into());
                    node.spec.get_or_insert_with(Default::default).taints =
                        Some(taints.to_vec()).filter(|t| !t.is_empty());
                    replace(&mut o.nodes, name, &node).map(|_| ())
                })
                .await
            }
            async fn patch_node_labels(
                &self,
                name: &str,
                resource_version: &str,
                labels: &BTreeMap<String, String>,
            ) -> Result<()> {
                self.call("PATCH node", name, |o| {
                    let mut node = found(&o.nodes, name)?;
                    node.metadata.resource_version = Some(resource_version.into());
                    let all = node.metadata.labels.get_or_insert_with(Default::default);
                    all.extend(labels.clone());
                    replace(&mut o.nodes, name, &node).map(|_| ())
                })
                .await
            }
            async fn patch_node_conditions(
                &self,
                name: &str,
                resource_version: &str,
                conditions: &[k8s_openapi::api::core::v1::NodeCondition],
            ) -> Result<()> {
                self.call("PATCH node status", name, |o| {
                    o.conditions_sent.push(serde_json::json!(conditions));
                    let node =
                        with_conditions(&found(&o.nodes, name)?, resource_version, conditions);
                    replace(&mut o.nodes, name, &node).map(|_| ())
                })
                .await
            }
            async fn get_pod(&self, namespace: &str, name: &str) -> Result<Pod> {
                let key = format!("{namespace}/{name}");
                self.call("GET pod", &key, |o| found(&o.pods, &key)).await
            }
            async fn patch_pod_conditions(
                &self,
                namespace: &str,
                name: &str,
                resource_version: &str,
                conditions: &[PodCondition],
            ) -> Result<()> {
                let key = format!("{namespace}/{name}");
                self.call("PATCH pod status", &key, |o| {
                    o.conditions_sent.push(serde_json::json!(conditions));
                    let pod = with_conditions(&found(&o.pods, &key)?, resource_version, conditions);
                    replace(&mut o.pods, &key, &pod).map(|_| ())
                })
                .await
            }
            async fn delete_pod(&self, namespace: &str, name: &str, uid: &str) -> Result<()> {
                let key = format!("{namespace}/{name}");
                self.call("DELETE pod", &key, |o| {
                    let live = found(&o.pods, &key)?;
                    if live.metadata.uid.as_deref() != Some(uid) {
                        return Err(ApiError::Conflict(key.clone()));
                    }
                    o.pods.remove(&key);
                    Ok(())
                })
                .await
            }
            async fn evict_pod(&self, _: &str, _: &str, _: &str) -> Result<()> {
                unreachable!("these tests delete")
            }
            async fn list_lease_versions(
                &self,
                _: &str,
            ) -> Result<Vec<crate::cluster::ObjectVersion>> {
                unreachable!("the writer does not list")
            }
            async fn get_lease(&self, _: &str, name: &str) -> Result<Lease> {
                self.call("GET lease", name, |o| found(&o.leases, name))
                    .await
            }
            async fn create_lease(&self, _: &Lease) -> Result<Lease> {
                unreachable!("the writer does not hold leases")
            }
            async fn replace_lease(&self, _: &Lease) -> Result<Lease> {
                unreachable!("the writer does not hold leases")
            }
            async fn create_event(&self, e: &EventRecord, _: Timestamp) -> Result<()> {
                let about = format!("{}/{}/{}", e.object.namespace, e.object.name, e.reason);
                self.call("POST event", &about, |_| Ok(())).await
            }
            fn watch_nodes(&self) -> WatchStream<Node> {
                unreachable!("the writer does not watch")
            }
            fn watch_leases(&self, _: &str) -> WatchStream<Lease> {
                unreachable!("the writer does not watch")
            }
            fn watch_pods(&self) -> WatchStream<crate::logic::cached_pod::CachedPod> {
                unreachable!("the writer does not watch")
            }
        }

        /// A writer on `api` that leads in term 1, and its metrics.
        pub fn writer(api: &Api) -> (Writer<Api>, Arc<Metrics>, watch::Sender<u64>) {
            let (leader_tx, leader) = watch::channel(1u64);
            let clock: Arc<dyn Clock> = Arc::new(crate::clock::TokioClock::starting_at(epoch()));
            let metrics = Arc::new(Metrics::new());
            let writer = Writer::new(
                api.clone(),
                clock,
                Arc::clone(&metrics),
                &Settings::default(),
                leader,
                Tasks::default(),
            );
            (writer, metrics, leader_tx)
        }

        /// A double with node n1 carrying the unreachable NoExecute taint and `count` pods on
        /// it, p-0, p-1, ...
        pub fn tainted_node_with_pods(count: usize) -> (Api, Vec<String>) {
            let api = Api::new();
            api.add_node("n1");
            api.set_unreachable("n1", true);
            let pods = api.add_pods(count, "n1");
            (api, pods)
        }

        pub fn evict(pod: &str, node: &str) -> Action {
            Action::EvictPod {
                namespace: "default".into(),
                name: pod.into(),
                uid: format!("uid-{pod}"),
                node: node.into(),
            }
        }

        /// Marks a pod NotReady on a decision that saw its node as `add_node` makes it.
        pub fn mark_not_ready(pod: &str, node: &str) -> Action {
            Action::MarkPodNotReady {
                namespace: "default".into(),
                name: pod.into(),
                uid: format!("uid-{pod}"),
                node: node.into(),
                node_heartbeat: None,
                lease_renew: Some(epoch()),
                now: epoch(),
            }
        }

        /// Marks these pods of `node` NotReady, one action for the node, as the monitor decides.
        pub fn mark_pods_not_ready(pods: &[String], node: &str) -> Action {
            Action::MarkPodsNotReady {
                node: node.into(),
                pods: pods
                    .iter()
                    .map(|p| crate::logic::actions::PodId {
                        namespace: "default".into(),
                        name: p.clone(),
                        uid: format!("uid-{p}"),
                    })
                    .collect(),
                node_heartbeat: None,
                lease_renew: Some(epoch()),
                now: epoch(),
            }
        }

        pub fn label(node: &str) -> Action {
            Action::SetLabels {
                node: node.into(),
                labels: BTreeMap::from([("touched".to_string(), "yes".to_string())]),
            }
        }

        pub fn ready_status(pod: &Pod) -> Option<String> {
            let conditions = pod.status.as_ref()?.conditions.as_ref()?;
            let ready = conditions.iter().find(|c| c.type_ == "Ready")?;
            Some(ready.status.clone())
        }

        /// The most attempts on pods in progress at once, an attempt on a pod lasting from the
        /// start of its first call to the end of its last one.
        pub fn most_pod_attempts_at_once(calls: &[Call]) -> usize {
            let mut spans: BTreeMap<&str, (Duration, Duration)> = BTreeMap::new();
            for c in calls
                .iter()
                .filter(|c| c.what.ends_with("pod") || c.what == "PATCH pod status")
            {
                let end = c.end.unwrap_or(Duration::MAX);
                let span = spans.entry(&c.object).or_insert((c.start, end));
                span.0 = span.0.min(c.start);
                span.1 = span.1.max(end);
            }
            let mut edges: Vec<(Duration, i32)> = spans
                .values()
                .flat_map(|&(start, end)| [(start, 1), (end, -1)])
                .collect();
            // Ends before starts at the same instant: back to back is not at once.
            edges.sort();
            let (mut now, mut most) = (0i32, 0i32);
            for (_, d) in edges {
                now += d;
                most = most.max(now);
            }
            most as usize
        }

        /// Nothing left for any attempt to share, and no attempt running.
        pub fn forgot_everything(writer: &Writer<Api>) -> bool {
            let reads = writer.inner.reads.lock().unwrap();
            reads.running.is_empty() && reads.nodes.len() == 0 && reads.leases.len() == 0
        }
    }

    mod shared_reads {
        use super::api::*;
        use super::*;

        fn retries(metrics: &Metrics, kind: &str) -> u64 {
            let series =
                format!("node_lifecycle_controller_write_retries_total{{kind=\"{kind}\"}} ");
            metrics
                .render()
                .lines()
                .find_map(|l| l.strip_prefix(series.as_str())?.parse().ok())
                .unwrap_or(0)
        }

        #[tokio::test(start_paused = true)]
        async fn thirty_evictions_from_one_node_falling_due_together_read_the_node_once() {
            let (api, pods) = tainted_node_with_pods(30);
            let (writer, _, _leader) = writer(&api);
            writer.submit(pods.iter().map(|p| evict(p, "n1")).collect());
            tokio::time::sleep(Duration::from_secs(2)).await;

            assert_eq!(api.count("GET node"), 1, "one read of n1 served all 30");
            for p in &pods {
                assert!(api.pod(p).is_none(), "{p} deleted");
            }
            let key = |p: &String| format!("default/{p}");
            let once: BTreeMap<String, usize> = pods.iter().map(|p| (key(p), 1)).collect();
            assert_eq!(api.count_by_object("GET pod"), once);
            assert_eq!(
                api.count_by_object("PATCH pod status"),
                once,
                "DisruptionTarget once each"
            );
            assert_eq!(
                api.count_by_object("DELETE pod"),
                once,
                "each deleted exactly once"
            );
            assert_eq!(api.calls().len(), 30 * 3 + 1, "down from 30 * 4");
            assert!(
                forgot_everything(&writer),
                "no read is kept once no attempt can use it"
            );
        }

        fn refs(pods: &[String], node: &str) -> Vec<PodRef> {
            pods.iter()
                .map(|p| PodRef {
                    namespace: "default".into(),
                    name: p.clone(),
                    uid: format!("uid-{p}"),
                    node: node.into(),
                    due: crate::logic::time::add_secs(epoch(), 3600),
                })
                .collect()
        }

        #[tokio::test(start_paused = true)]
        async fn evictions_of_pods_read_ahead_do_not_read_them_again_and_still_share_the_node_read()
        {
            let (api, pods) = tainted_node_with_pods(30);
            let (writer, _, _leader) = writer(&api);
            writer.read_ahead(refs(&pods, "n1"));
            tokio::time::sleep(Duration::from_millis(500)).await;
            let due = api.calls().len();
            assert_eq!(due, 30, "30 pods read ahead");
            writer.submit(pods.iter().map(|p| evict(p, "n1")).collect());
            tokio::time::sleep(Duration::from_secs(2)).await;

            let at_due: Vec<&'static str> = api.calls()[due..].iter().map(|c| c.what).collect();
            assert!(!at_due.contains(&"GET pod"), "{at_due:?}");
            assert_eq!(api.count("GET node"), 1, "one read of n1 served all 30");
            for p in &pods {
                assert!(api.pod(p).is_none(), "{p} deleted");
            }
            assert_eq!(at_due.len(), 30 * 2 + 1, "down from 30 * 3 + 1");
            // Two round trips from the due time to the deletion instead of three.
            let first_delete = api
                .calls()
                .iter()
                .find(|c| c.what == "DELETE pod")
                .map(|c| c.start)
                .unwrap();
            let submitted = api.calls()[due].start;
            assert_eq!(first_delete - submitted, LATENCY * 2);
        }

        #[tokio::test(start_paused = true)]
        async fn a_pod_changed_after_it_was_read_ahead_is_read_again_by_its_eviction() {
            let (api, pods) = tainted_node_with_pods(1);
            let (writer, metrics, _leader) = writer(&api);
            writer.read_ahead(refs(&pods, "n1"));
            tokio::time::sleep(Duration::from_millis(500)).await;
            // The pod now tolerates the taint for good: it must be kept.
            api.tolerate_forever(&pods[0]);
            writer.submit(vec![evict(&pods[0], "n1")]);
            tokio::time::sleep(Duration::from_secs(2)).await;
            assert!(api.pod(&pods[0]).is_some(), "kept");
            assert_eq!(
                api.count("GET pod"),
                2,
                "read ahead, then again after the refusal"
            );
            assert_eq!(
                api.count("PATCH pod status"),
                1,
                "refused: the copy was outdated"
            );
            assert_eq!(api.count("DELETE pod"), 0);
            assert_eq!(retries(&metrics, "pod_delete"), 1, "one conflict, retried");
        }

        #[tokio::test(start_paused = true)]
        async fn a_pod_read_ahead_while_it_tolerated_the_taint_is_read_again_and_evicted() {
            let (api, pods) = tainted_node_with_pods(1);
            api.tolerate_forever(&pods[0]);
            let (writer, _, _leader) = writer(&api);
            writer.read_ahead(refs(&pods, "n1"));
            tokio::time::sleep(Duration::from_millis(500)).await;
            // The toleration is gone again by the time the eviction comes: the copy would keep
            // the pod, the live pod is due.
            api.tolerate_nothing(&pods[0]);
            writer.submit(vec![evict(&pods[0], "n1")]);
            tokio::time::sleep(Duration::from_secs(2)).await;
            assert!(api.pod(&pods[0]).is_none(), "deleted");
            assert_eq!(api.count("GET pod"), 2, "read ahead, then read again");
            assert_eq!(api.count("DELETE pod"), 1);
        }

        #[tokio::test(start_paused = true)]
        async fn pods_read_ahead_are_forgotten_on_leadership_loss_and_once_too_old() {
            let (api, pods) = tainted_node_with_pods(2);
            let (writer, _, _leader) = writer(&api);
            writer.read_ahead(refs(&pods[..1], "n1"));
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert_eq!(writer.inner.read_ahead.lock().unwrap().len(), 1);
            writer.forget_read_ahead();
            assert_eq!(writer.inner.read_ahead.lock().unwrap().len(), 0);
            writer.read_ahead(refs(&pods[..1], "n1"));
            tokio::time::sleep(READ_AHEAD_MAX_AGE + Duration::from_secs(1)).await;
            writer.read_ahead(refs(&pods[1..], "n1"));
            tokio::time::sleep(Duration::from_millis(100)).await;
            let kept: Vec<String> = writer
                .inner
                .read_ahead
                .lock()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            assert_eq!(
                kept,
                [format!("default/{}", pods[1])],
                "the old copy is gone"
            );
        }

        #[tokio::test(start_paused = true)]
        async fn a_pod_read_ahead_with_its_disruption_target_already_set_is_read_again() {
            let (api, pods) = tainted_node_with_pods(1);
            api.set_disruption_target(&pods[0]);
            let (writer, _, _leader) = writer(&api);
            writer.read_ahead(refs(&pods, "n1"));
            tokio::time::sleep(Duration::from_millis(500)).await;
            writer.submit(vec![evict(&pods[0], "n1")]);
            tokio::time::sleep(Duration::from_secs(2)).await;
            assert!(api.pod(&pods[0]).is_none(), "deleted");
            assert_eq!(api.count("GET pod"), 2, "the copy was not used");
            assert_eq!(api.count("PATCH pod status"), 0);
        }

        #[tokio::test(start_paused = true)]
        async fn pods_already_due_are_not_read_ahead_and_a_window_reads_a_thousand_at_most() {
            let (api, pods) = tainted_node_with_pods(1001);
            let (writer, _, _leader) = writer(&api);
            let mut late = refs(&pods[..1], "n1");
            late[0].due = epoch();
            writer.read_ahead(late);
            tokio::time::sleep(Duration::from_secs(1)).await;
            assert_eq!(
                api.count("GET pod"),
                0,
                "due already: its eviction reads it"
            );
            writer.read_ahead(refs(&pods, "n1"));
            tokio::time::sleep(Duration::from_secs(5)).await;
            assert_eq!(api.count("GET pod"), READ_AHEAD_MAX);
        }

        #[tokio::test(start_paused = true)]
        async fn nothing_is_read_ahead_by_a_writer_that_does_not_lead() {
            let (api, pods) = tainted_node_with_pods(3);
            let (writer, _, leader) = writer(&api);
            leader.send(0).unwrap();
            writer.read_ahead(refs(&pods, "n1"));
            tokio::time::sleep(Duration::from_secs(1)).await;
            assert_eq!(api.count("GET pod"), 0);
        }

        #[tokio::test(start_paused = true)]
        async fn a_node_read_that_started_before_an_attempt_began_is_not_reused_by_it() {
            let api = Api::new();
            api.add_node("n1");
            api.set_unreachable("n1", true);
            for p in ["a", "b", "c"] {
                api.add_pod(p, "n1");
            }
            let (writer, _, _leader) = writer(&api);
            // a: GET pod at 0 ms, GET n1 at 10 ms (tainted), DELETE at 20 ms.
            writer.submit(vec![evict("a", "n1")]);
            tokio::time::sleep(Duration::from_millis(5)).await;
            // c begins at 5 ms, before a's read of n1 started: it may use that read.
            writer.submit(vec![evict("c", "n1")]);
            tokio::time::sleep(Duration::from_millis(7)).await;
            // At 12 ms the taint is gone; b begins at 15 ms, after a's read of n1 started (and
            // was answered with the taint), so it must read n1 itself and keep its pod.
            api.set_unreachable("n1", false);
            tokio::time::sleep(Duration::from_millis(3)).await;
            writer.submit(vec![evict("b", "n1")]);
            tokio::time::sleep(Duration::from_secs(1)).await;

            assert_eq!(
                api.count("GET node"),
                2,
                "a and c shared one read, b made its own"
            );
            assert!(api.pod("a").is_none());
            assert!(api.pod("c").is_none());
            assert!(
                api.pod("b").is_some(),
                "b saw the node as it was after b began"
            );
            assert_eq!(api.count("DELETE pod"), 2);
            assert!(forgot_everything(&writer));
        }

        #[tokio::test(start_paused = true)]
        async fn a_failed_shared_node_read_is_retried_after_a_backoff_by_each_attempt_that_shared_it()
         {
            let (api, pods) = tainted_node_with_pods(30);
            api.fail("GET node", 1);
            let (writer, metrics, _leader) = writer(&api);
            writer.submit(pods.iter().map(|p| evict(p, "n1")).collect());

            tokio::time::sleep(FIRST_BACKOFF).await;
            assert_eq!(api.count("GET node"), 1, "the failed read was shared");
            assert_eq!(api.count("DELETE pod"), 0);
            assert_eq!(
                retries(&metrics, "pod_delete"),
                30,
                "unavailable: every attempt that shared the read backs off, as if it had read"
            );
            assert_eq!(api.count("GET pod"), 30, "no retry before the backoff");

            tokio::time::sleep(Duration::from_secs(2)).await;
            let once: BTreeMap<String, usize> =
                pods.iter().map(|p| (format!("default/{p}"), 1)).collect();
            assert_eq!(
                api.count_by_object("DELETE pod"),
                once,
                "each deleted exactly once"
            );
            assert_eq!(retries(&metrics, "pod_delete"), 30, "no further retries");
            let first_retry = api
                .calls()
                .iter()
                .filter(|c| c.what == "GET pod")
                .nth(30)
                .unwrap()
                .start;
            assert!(
                first_retry >= FIRST_BACKOFF,
                "retried after the backoff: {first_retry:?}"
            );
            assert!(
                api.count("GET node") < 30,
                "the retries share reads again: {}",
                api.count("GET node")
            );
            assert!(forgot_everything(&writer));
        }

        #[tokio::test(start_paused = true)]
        async fn a_shared_node_read_that_finds_the_node_gone_ends_every_eviction_that_shared_it() {
            let api = Api::new();
            let pods = api.add_pods(30, "n1");
            api.remove_all("GET node");
            let (writer, metrics, _leader) = writer(&api);
            writer.submit(pods.iter().map(|p| evict(p, "n1")).collect());
            tokio::time::sleep(Duration::from_secs(2)).await;

            assert_eq!(api.count("GET node"), 1);
            assert_eq!(
                api.count("DELETE pod"),
                0,
                "no node, no taint: nothing to evict for"
            );
            assert_eq!(
                retries(&metrics, "pod_delete"),
                0,
                "not found is not retried"
            );
            assert!(forgot_everything(&writer));
        }

        #[tokio::test(start_paused = true)]
        async fn each_pod_marked_not_ready_gets_its_warning_event_after_its_write_and_no_other_does()
         {
            let api = Api::new();
            api.add_node("n1");
            let pods: Vec<String> = ["a", "b", "c", "gone"].map(String::from).into();
            for p in &pods[..3] {
                api.add_pod(p, "n1");
            }
            api.set_ready("b", "False");
            let (writer, _, _leader) = writer(&api);
            writer.submit(vec![mark_pods_not_ready(&pods, "n1")]);
            tokio::time::sleep(Duration::from_secs(2)).await;

            let written = api.count_by_object("PATCH pod status");
            assert_eq!(
                written.keys().collect::<Vec<_>>(),
                ["default/a", "default/c"],
                "b was NotReady already, gone is gone"
            );
            let events = api.count_by_object("POST event");
            assert_eq!(
                events.keys().collect::<Vec<_>>(),
                ["default/a/NodeNotReady", "default/c/NodeNotReady"]
            );
            let calls = api.calls();
            for p in ["a", "c"] {
                let end_of_write = calls
                    .iter()
                    .find(|c| c.what == "PATCH pod status" && c.object == format!("default/{p}"))
                    .and_then(|c| c.end)
                    .unwrap();
                let event = calls
                    .iter()
                    .find(|c| {
                        c.what == "POST event" && c.object.starts_with(&format!("default/{p}/"))
                    })
                    .unwrap();
                assert!(
                    event.start >= end_of_write,
                    "{p}'s Event only after its write"
                );
            }
        }

        /// Marks pod `a` of n1 NotReady after `fault` set up the double; asserts that the pod
        /// ends up marked with exactly one NodeNotReady Event.
        async fn mark_one_pod_after(fault: impl FnOnce(&Api)) -> Api {
            let api = Api::new();
            api.add_node("n1");
            api.add_pod("a", "n1");
            fault(&api);
            let (writer, _, _leader) = writer(&api);
            writer.submit(vec![mark_pods_not_ready(&["a".to_string()], "n1")]);
            tokio::time::sleep(Duration::from_secs(2)).await;
            assert_eq!(
                ready_status(&api.pod("a").unwrap()).as_deref(),
                Some("False")
            );
            assert_eq!(
                api.count_by_object("POST event"),
                BTreeMap::from([("default/a/NodeNotReady".to_string(), 1)])
            );
            api
        }

        #[tokio::test(start_paused = true)]
        async fn a_pod_mark_whose_write_failed_records_its_event_once_as_upstream_does() {
            // The first PUT fails (not applied); the retry writes.
            let api = mark_one_pod_after(|api| api.fail("PATCH pod status", 1)).await;
            assert_eq!(api.count("PATCH pod status"), 2);
        }

        #[tokio::test(start_paused = true)]
        async fn a_pod_mark_whose_answer_was_lost_still_records_its_event() {
            // Applied, but the answer is lost: the retry finds the pod marked and writes nothing.
            let api = mark_one_pod_after(|api| api.lose_answer("PATCH pod status", 1)).await;
            assert_eq!(api.count("PATCH pod status"), 1);
            assert_eq!(api.count("GET pod"), 2, "the retry read the pod");
        }

        #[tokio::test(start_paused = true)]
        async fn a_pod_whose_mark_is_retrying_does_not_hold_up_the_marks_of_a_later_decision() {
            let api = Api::new();
            api.add_node("n1");
            api.add_pod("a", "n1");
            api.add_pod("b", "n1");
            api.fail("GET pod", 1);
            let (writer, _, _leader) = writer(&api);
            writer.submit(vec![mark_pods_not_ready(&["a".to_string()], "n1")]);
            tokio::time::sleep(LATENCY * 2).await;
            let mut later = mark_pods_not_ready(&["b".to_string()], "n1");
            if let Action::MarkPodsNotReady { now, .. } = &mut later {
                *now = crate::logic::time::add_secs(epoch(), 1);
            }
            writer.submit(vec![later]);
            tokio::time::sleep(Duration::from_secs(2)).await;

            let calls = api.calls();
            let b_written = calls
                .iter()
                .find(|c| c.what == "PATCH pod status" && c.object == "default/b")
                .and_then(|c| c.end)
                .unwrap();
            let a_read_again = calls
                .iter()
                .filter(|c| c.what == "GET pod" && c.object == "default/a")
                .nth(1)
                .unwrap()
                .start;
            assert!(
                b_written < a_read_again,
                "b written at {b_written:?}, before a's retry at {a_read_again:?}"
            );
            assert_eq!(
                ready_status(&api.pod("a").unwrap()).as_deref(),
                Some("False")
            );
        }

        #[tokio::test(start_paused = true)]
        async fn a_silent_nodes_pods_are_not_marked_and_get_no_event_once_its_lease_is_renewed() {
            let api = Api::new();
            api.add_node("n1");
            let pods = api.add_pods(3, "n1");
            api.renew_lease("n1", crate::logic::time::add_secs(epoch(), 1));
            let (writer, _, _leader) = writer(&api);
            writer.submit(vec![mark_pods_not_ready(&pods, "n1")]);
            tokio::time::sleep(Duration::from_secs(2)).await;

            for p in &pods {
                assert_eq!(ready_status(&api.pod(p).unwrap()).as_deref(), Some("True"));
            }
            assert_eq!(api.count("PATCH pod status"), 0);
            assert_eq!(api.count("POST event"), 0);
        }

        #[tokio::test(start_paused = true)]
        async fn marking_a_nodes_pods_not_ready_reads_the_node_and_its_lease_once_per_lane_full() {
            let api = Api::new();
            api.add_node("n1");
            let pods = api.add_pods(30, "n1");
            let (writer, _, _leader) = writer(&api);
            writer.submit(vec![mark_pods_not_ready(&pods, "n1")]);
            tokio::time::sleep(Duration::from_secs(2)).await;

            for p in &pods {
                assert_eq!(ready_status(&api.pod(p).unwrap()).as_deref(), Some("False"));
            }
            let once: BTreeMap<String, usize> =
                pods.iter().map(|p| (format!("default/{p}"), 1)).collect();
            assert_eq!(
                api.count_by_object("PATCH pod status"),
                once,
                "each marked exactly once"
            );
            // 16 attempts in flight at a time (the lane's width): two rounds of 16 and 14.
            let rounds = pods.len().div_ceil(Lane::PodStatus.width());
            assert_eq!(api.count("GET node"), rounds, "down from one per pod");
            assert_eq!(api.count("GET lease"), rounds, "down from one per pod");
            assert!(forgot_everything(&writer));
        }

        #[tokio::test(start_paused = true)]
        async fn marking_a_node_unknown_reads_the_node_itself_but_shares_a_lease_read_begun_after_it()
         {
            let api = Api::new();
            api.add_node("n1");
            api.add_pod("p", "n1");
            let (writer, _, _leader) = writer(&api);
            // The pod's attempt: GET pod at 0 ms, GET n1 at 10 ms, GET Lease at 20 ms, PUT at
            // 30 ms. The node's attempt begins at 15 ms: it reads n1 itself (that copy is
            // written back) although the pod's read of n1 is in flight, and then uses the
            // pod's read of the Lease, which started at 20 ms, after it began.
            writer.submit(vec![mark_not_ready("p", "n1")]);
            tokio::time::sleep(Duration::from_millis(15)).await;
            writer.submit(vec![Action::MarkNodeUnknown {
                node: "n1".into(),
                ready_heartbeat: None,
                lease_renew: Some(epoch()),
                now: epoch(),
                seen: None,
            }]);
            tokio::time::sleep(Duration::from_secs(1)).await;
            let reads: Vec<(&str, Duration)> = api
                .calls()
                .iter()
                .filter(|c| c.what.starts_with("GET"))
                .map(|c| (c.what, c.start))
                .collect();
            let ms = Duration::from_millis;
            assert_eq!(
                reads,
                [
                    ("GET pod", ms(0)),
                    ("GET node", ms(10)),
                    ("GET node", ms(15)),
                    ("GET lease", ms(20)),
                ]
            );
            assert_eq!(api.count("PATCH node status"), 1);
            assert_eq!(api.count("PATCH pod status"), 1);
            assert!(forgot_everything(&writer));
        }

        /// Issue 18: nothing a decision stamped with its time is sent later unchanged. A mark
        /// whose first write fails lands with the time of the write that lands.
        #[tokio::test(start_paused = true)]
        async fn a_retried_unknown_mark_says_when_it_landed_not_when_it_was_decided() {
            let api = Api::new();
            api.add_node("n1");
            // Four failures: the write that lands comes over a second after the decision (the
            // double keeps times in whole seconds, as the API does).
            api.fail("PATCH node status", 4);
            let (writer, _, _leader) = writer(&api);
            writer.submit(vec![mark_unknown_on("n1")]);
            tokio::time::sleep(Duration::from_secs(30)).await;
            let landed = api
                .calls()
                .into_iter()
                .filter(|c| c.what == "PATCH node status")
                .nth(4)
                .expect("a fifth attempt");
            let node = api.node("n1");
            let ready = node
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
                .expect("Ready");
            assert_eq!(ready.status, "Unknown");
            let stamped = ready.last_transition_time.as_ref().expect("stamped").0;
            let write_start = crate::logic::time::add(epoch(), landed.start);
            assert!(landed.start > Duration::from_secs(1), "{:?}", landed.start);
            assert!(
                stamped > epoch() && stamped <= write_start,
                "stamped {stamped}, decided {}, the landing write started at {write_start}",
                epoch()
            );
        }

        #[tokio::test(start_paused = true)]
        async fn the_unknown_write_delay_runs_from_the_decision_to_the_accepted_write() {
            let api = Api::new();
            api.add_node("n1");
            let (writer, metrics, _leader) = writer(&api);
            // Decided at epoch(), when the writer's clock starts; GET node, GET Lease and the
            // PUT take 10 ms each.
            writer.submit(vec![Action::MarkNodeUnknown {
                node: "n1".into(),
                ready_heartbeat: None,
                lease_renew: Some(epoch()),
                now: epoch(),
                seen: None,
            }]);
            tokio::time::sleep(Duration::from_secs(1)).await;
            assert_eq!(api.count("PATCH node status"), 1);
            let text = metrics.render();
            let value = |name: &str| -> f64 {
                text.lines()
                    .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
                    .unwrap_or_else(|| panic!("{name} in\n{text}"))
            };
            let prefix = "node_lifecycle_controller_unknown_write_delay_seconds";
            assert_eq!(value(&format!("{prefix}_count")), 1.0);
            let sum = value(&format!("{prefix}_sum"));
            assert!((sum - 0.030).abs() < 1e-6, "{sum}");
        }

        #[tokio::test(start_paused = true)]
        async fn node_writes_are_handed_over_before_the_other_writes_of_their_batch() {
            let api = Api::new();
            api.add_node("n1");
            api.add_node("n2");
            api.add_pod("p", "n1");
            let (writer, _, _leader) = writer(&api);
            writer.submit(vec![mark_not_ready("p", "n1"), mark_unknown_on("n2")]);
            tokio::time::sleep(Duration::from_secs(1)).await;
            let calls = api.calls();
            assert_eq!(
                (calls[0].what, calls[0].object.as_str()),
                ("GET node", "n2")
            );
            assert_eq!(api.count("PATCH node status"), 1);
            assert_eq!(api.count("PATCH pod status"), 1);
        }

        /// An Unknown mark decided on `node` as the double holds it now.
        fn mark_unknown_seen(api: &Api, node: &str) -> Action {
            let live = api.node(node);
            Action::MarkNodeUnknown {
                node: node.into(),
                ready_heartbeat: None,
                lease_renew: Some(epoch()),
                now: epoch(),
                seen: Some(SeenConditions {
                    resource_version: live.metadata.resource_version.clone().unwrap(),
                    created: Some(epoch()),
                    conditions: live.status.unwrap().conditions.unwrap(),
                }),
            }
        }

        fn ready_of(node: &Node) -> &str {
            crate::logic::conditions::ready_status(node).unwrap_or("")
        }

        #[tokio::test(start_paused = true)]
        async fn an_unknown_mark_patches_the_conditions_it_was_decided_on_without_reading_the_node()
        {
            let api = Api::new();
            api.add_node("n1");
            let (writer, _, _leader) = writer(&api);
            writer.submit(vec![mark_unknown_seen(&api, "n1")]);
            tokio::time::sleep(Duration::from_secs(1)).await;

            let calls: Vec<&str> = api.calls().iter().map(|c| c.what).collect();
            assert_eq!(calls, ["GET lease", "PATCH node status"]);
            let node = api.node("n1");
            assert_eq!(ready_of(&node), "Unknown");
            let conditions = node.status.unwrap().conditions.unwrap();
            let types: Vec<&str> = conditions.iter().map(|c| c.type_.as_str()).collect();
            assert_eq!(
                types,
                ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"],
                "the conditions the kubelet never posted are added as on a read copy"
            );
            let never_posted = &conditions[1];
            assert_eq!(
                never_posted.last_heartbeat_time,
                Some(Time(epoch())),
                "with the creation time the decision saw as their heartbeat"
            );
        }

        #[tokio::test(start_paused = true)]
        async fn an_unknown_mark_sends_only_the_fields_it_sets_of_the_conditions_it_changes() {
            let api = Api::new();
            api.add_node("n1");
            let heartbeat = crate::logic::time::add_secs(epoch(), -60);
            api.post_heartbeat("n1", heartbeat);
            let Action::MarkNodeUnknown {
                node,
                lease_renew,
                now,
                seen,
                ..
            } = mark_unknown_seen(&api, "n1")
            else {
                unreachable!()
            };
            let mark = Action::MarkNodeUnknown {
                node,
                ready_heartbeat: Some(heartbeat),
                lease_renew,
                now,
                seen,
            };
            let (writer, _, _leader) = writer(&api);
            writer.submit(vec![mark]);
            tokio::time::sleep(Duration::from_secs(1)).await;

            let sent = api.conditions_sent();
            assert_eq!(sent.len(), 1, "{sent:?}");
            let at = serde_json::json!(Time(epoch()));
            assert_eq!(
                sent[0][0],
                serde_json::json!({
                    "type": "Ready",
                    "status": "Unknown",
                    "reason": "NodeStatusUnknown",
                    "message": "Kubelet stopped posting node status.",
                    "lastTransitionTime": at,
                }),
                "an existing condition: no heartbeat, nothing the mark does not set"
            );
            let added: Vec<&serde_json::Value> = sent[0].as_array().unwrap()[1..].iter().collect();
            assert_eq!(added.len(), 3, "{sent:?}");
            for c in added {
                assert_eq!(c["status"], "Unknown");
                assert_eq!(
                    c["lastHeartbeatTime"], at,
                    "an added condition is sent whole"
                );
            }
            let node = api.node("n1");
            let conditions = node.status.unwrap().conditions.unwrap();
            assert_eq!(
                conditions[0].last_heartbeat_time,
                Some(Time(heartbeat)),
                "the server keeps the heartbeat it had"
            );
        }

        #[tokio::test(start_paused = true)]
        async fn a_pod_marked_not_ready_is_sent_only_its_ready_status_and_transition_time() {
            let api = Api::new();
            api.add_node("n1");
            api.add_pod("p", "n1");
            let (writer, _, _leader) = writer(&api);
            writer.submit(vec![mark_not_ready("p", "n1")]);
            tokio::time::sleep(Duration::from_secs(1)).await;

            assert_eq!(
                api.conditions_sent(),
                [serde_json::json!([{
                    "type": "Ready",
                    "status": "False",
                    "lastTransitionTime": Time(epoch()),
                }])]
            );
        }

        #[tokio::test(start_paused = true)]
        async fn a_node_changed_since_its_unknown_mark_was_decided_is_read_again_and_keeps_the_change()
         {
            let api = Api::new();
            api.add_node("n1");
            let mark = mark_unknown_seen(&api, "n1");
            // Written by someone else after the decision: the patch's resourceVersion is stale.
            api.set_unreachable("n1", true);
            let (writer, metrics, _leader) = writer(&api);
            writer.submit(vec![mark]);
            tokio::time::sleep(Duration::from_secs(1)).await;

            let calls: Vec<&str> = api.calls().iter().map(|c| c.what).collect();
            assert_eq!(
                calls,
                [
                    "GET lease",
                    "PATCH node status",
                    "GET node",
                    "GET lease",
                    "PATCH node status"
                ]
            );
            let node = api.node("n1");
            assert_eq!(ready_of(&node), "Unknown");
            assert!(
                node.spec.and_then(|s| s.taints).is_some(),
                "the other write was not undone"
            );
            assert_eq!(retries(&metrics, "node_status"), 1);
        }

        #[tokio::test(start_paused = true)]
        async fn a_node_that_posted_a_heartbeat_since_the_decision_is_not_marked_after_a_refused_patch()
         {
            let api = Api::new();
            api.add_node("n1");
            let mark = mark_unknown_seen(&api, "n1");
            api.post_heartbeat("n1", crate::logic::time::add_secs(epoch(), 1));
            let (writer, _, _leader) = writer(&api);
            writer.submit(vec![mark]);
            tokio::time::sleep(Duration::from_secs(1)).await;

            assert_eq!(ready_of(&api.node("n1")), "True");
            let calls: Vec<&str> = api.calls().iter().map(|c| c.what).collect();
            assert_eq!(
                calls,
                ["GET lease", "PATCH node status", "GET node"],
                "the patch was refused, and the node as read shows the heartbeat"
            );
        }

        #[tokio::test(start_paused = true)]
        async fn a_node_write_answered_429_is_retried_after_a_second_not_the_first_100_ms() {
            let api = Api::new();
            api.add_node("n1");
            api.throttle("PATCH node status", 2);
            let (writer, metrics, _leader) = writer(&api);
            writer.submit(vec![mark_unknown_on("n1")]);
            tokio::time::sleep(Duration::from_secs(10)).await;
            let patches: Vec<Call> = api
                .calls()
                .into_iter()
                .filter(|c| c.what == "PATCH node status")
                .collect();
            assert_eq!(patches.len(), 3, "two 429s, then applied");
            assert_eq!(ready_of(&api.node("n1")), "Unknown");
            assert_eq!(retries(&metrics, "node_status"), 2);
            for pair in patches.windows(2) {
                let gap = pair[1].start - pair[0].start;
                assert!(
                    gap >= TOO_MANY_REQUESTS_BACKOFF,
                    "retried {gap:?} after a 429"
                );
            }
        }

        fn mark_unknown_on(node: &str) -> Action {
            Action::MarkNodeUnknown {
                node: node.into(),
                ready_heartbeat: None,
                lease_renew: Some(epoch()),
                now: epoch(),
                seen: None,
            }
        }

        #[test]
        fn reads_are_forgotten_oldest_first_and_only_the_latest_of_an_object_is_kept() {
            let mut reads = SharedReads::<Node>::default();
            let read = || async { Ok(Arc::new(Node::default())) }.boxed().shared();
            reads.insert("a", 2, read());
            reads.insert("b", 3, read());
            reads.insert("a", 5, read());
            assert_eq!(reads.len(), 2);
            assert!(reads.usable("a", 4).is_some(), "started at 5, after 4");
            assert!(reads.usable("a", 5).is_none(), "not after itself");
            assert!(reads.usable("b", 3).is_none());
            reads.forget_before(4);
            assert!(reads.usable("b", 1).is_none(), "b (3) forgotten");
            assert!(reads.usable("a", 1).is_some(), "a (5) kept");
            reads.forget_before(6);
            assert_eq!(reads.len(), 0);
            assert!(reads.by_start.is_empty());
        }
    }

    mod priority {
        use super::api::*;
        use super::*;

        #[tokio::test(start_paused = true)]
        async fn pod_marks_yield_to_node_writes_and_still_finish_while_node_writes_keep_coming() {
            let api = Api::new();
            let nodes: Vec<String> = (0..400).map(|i| format!("n-{i}")).collect();
            for n in &nodes {
                api.add_node(n);
            }
            api.add_node("m");
            let pods = api.add_pods(40, "m");
            let (writer, _, _leader) = writer(&api);
            // A node write every 5 ms for 2 s, each two calls of 10 ms: the node lane is never
            // idle, though never full either.
            let stream = {
                let writer = writer.clone();
                let nodes = nodes.clone();
                tokio::spawn(async move {
                    for n in &nodes {
                        writer.submit(vec![label(n)]);
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                })
            };
            tokio::time::sleep(Duration::from_millis(1)).await;
            writer.submit(pods.iter().map(|p| mark_not_ready(p, "m")).collect());
            stream.await.unwrap();
            let stream_end = api.calls().last().unwrap().start;

            let calls = api.calls();
            let last_pod_write = calls
                .iter()
                .filter(|c| c.what == "PATCH pod status")
                .map(|c| c.end.unwrap())
                .max()
                .unwrap();
            assert!(
                last_pod_write < stream_end,
                "every pod was marked while node writes kept coming (no starvation): \
                 last at {last_pod_write:?}, node writes until {stream_end:?}"
            );
            for p in &pods {
                assert_eq!(ready_status(&api.pod(p).unwrap()).as_deref(), Some("False"));
            }
            let most = most_pod_attempts_at_once(&calls);
            assert!(
                most <= Lane::PodStatus.width_while_yielding(),
                "pod marks kept to their yielding width: {most} at once"
            );

            tokio::time::sleep(Duration::from_secs(1)).await;
            assert_eq!(
                api.count("PATCH pod status"),
                pods.len(),
                "each pod written once"
            );
            assert_eq!(
                api.count("PATCH node"),
                nodes.len(),
                "each node written once"
            );
        }

        #[tokio::test(start_paused = true)]
        async fn pod_marks_use_their_full_width_while_a_node_write_only_backs_off() {
            let api = Api::new();
            api.add_node("n");
            api.add_node("m");
            let pods = api.add_pods(16, "m");
            api.fail("PATCH node", usize::MAX);
            let (writer, _, _leader) = writer(&api);
            writer.submit(vec![label("n")]);
            // GET and failed PUT by 20 ms; then it sleeps 100 ms or more.
            tokio::time::sleep(Duration::from_millis(30)).await;
            writer.submit(pods.iter().map(|p| mark_not_ready(p, "m")).collect());
            tokio::time::sleep(Duration::from_millis(60)).await;
            assert_eq!(api.count("PATCH node"), 1, "still backing off");
            assert_eq!(
                most_pod_attempts_at_once(&api.calls()),
                Lane::PodStatus.width(),
                "a backoff is not a reason to yield"
            );
            assert_eq!(api.count("PATCH pod status"), pods.len());
        }

        #[tokio::test(start_paused = true)]
        async fn events_wait_for_evictions_in_flight_then_go_at_full_width() {
            let (api, pods) = tainted_node_with_pods(32);
            let (writer, _, _leader) = writer(&api);
            let events: Vec<Action> = (0..16)
                .map(|i| {
                    Action::Event(crate::logic::actions::EventRecord {
                        component: crate::logic::actions::Component::NodeController,
                        object: crate::logic::actions::ObjectRef::pod(
                            "default",
                            &format!("e-{i}"),
                            None,
                        ),
                        event_type: crate::logic::actions::EventType::Normal,
                        reason: "R".into(),
                        message: "m".into(),
                    })
                })
                .collect();
            writer.submit(pods.iter().map(|p| evict(p, "n1")).collect());
            writer.submit(events);
            tokio::time::sleep(Duration::from_secs(1)).await;

            let calls = api.calls();
            let last_delete = calls
                .iter()
                .filter(|c| c.what == "DELETE pod")
                .map(|c| c.end.unwrap())
                .max()
                .unwrap();
            let event_starts: Vec<Duration> = calls
                .iter()
                .filter(|c| c.what == "POST event")
                .map(|c| c.start)
                .collect();
            assert_eq!(event_starts.len(), 16, "every event recorded once");
            let during = event_starts.iter().filter(|t| **t < last_delete).count();
            assert!(
                during <= 4,
                "one event at a time while evictions are in flight (4 rounds of 10 ms): {during}"
            );
            let after: Vec<_> = event_starts.iter().filter(|t| **t >= last_delete).collect();
            assert!(
                after.iter().filter(|t| ***t == *after[0]).count() == Lane::Events.width(),
                "then the lane's full width at once: {after:?}"
            );
        }
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let a = backoff(0, "k");
        let b = backoff(1, "k");
        assert!(a >= FIRST_BACKOFF && a <= FIRST_BACKOFF.mul_f64(1.25));
        assert!(b >= FIRST_BACKOFF * 2 && b <= (FIRST_BACKOFF * 2).mul_f64(1.25));
        let late = backoff(40, "k");
        assert!(late >= MAX_BACKOFF && late <= MAX_BACKOFF.mul_f64(1.25));
    }

    #[test]
    fn backoff_is_the_same_for_the_same_key_and_attempt() {
        assert_eq!(backoff(3, "pod/a/b"), backoff(3, "pod/a/b"));
    }
}
