//! The one place that writes to the cluster.
//!
//! Every action is applied to the freshest copy of its object (GET, change, PUT guarded by the
//! resourceVersion; deletions guarded by the UID), retried with capped exponential backoff until
//! it is applied or no longer needed, and dropped at once when this process is not the leader
//! (or runs with `--dry-run`). Actions on one object are applied in the order they were decided;
//! different objects proceed independently, so a pod a PodDisruptionBudget protects does not hold
//! up anything else.

use super::tasks::Tasks;
use crate::clock::Clock;
use crate::cluster::{ApiError, Cluster};
use crate::logic::actions::{Action, TaintPurpose};
use crate::logic::{conditions, eviction, taints};
use crate::metrics::Metrics;
use crate::settings::{EvictionMode, Settings};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, watch};
use tracing::{Instrument, debug, info, warn};

/// First retry delay; doubles up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
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
            Action::MarkPodNotReady { .. } => Lane::PodStatus,
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
        Action::MarkPodNotReady { .. } => "pod_status",
        Action::EvictPod { .. } => "pod_delete",
        Action::Event(_) => "event",
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
    tasks: Tasks,
}

impl<C: Cluster> Clone for Writer<C> {
    fn clone(&self) -> Self {
        Writer {
            inner: self.inner.clone(),
            tasks: self.tasks.clone(),
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
    queues: Mutex<BTreeMap<String, mpsc::UnboundedSender<(u64, Action)>>>,
    /// One semaphore per `Lane`, indexed by it.
    lanes: [Semaphore; 4],
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
            tasks,
            inner: Arc::new(Inner {
                cluster,
                clock,
                metrics,
                dry_run: settings.dry_run,
                eviction_mode: settings.eviction_mode,
                node_lease_namespace: settings.node_lease_namespace.clone(),
                leader,
                queues: Mutex::new(BTreeMap::new()),
                lanes: Lane::ALL.map(|l| Semaphore::new(l.width())),
            }),
        }
    }

    /// Queues actions; returns at once.
    pub fn submit(&self, actions: Vec<Action>) {
        for action in actions {
            self.submit_one(action);
        }
    }

    fn submit_one(&self, action: Action) {
        let inner = &self.inner;
        if inner.dry_run {
            info!(kind = kind(&action), action = ?action, "dry-run: not writing");
            inner.metrics.dropped_write(kind(&action), "dry_run");
            return;
        }
        let term = *inner.leader.borrow();
        if term == 0 {
            debug!(kind = kind(&action), "not the leader: dropping write");
            inner.metrics.dropped_write(kind(&action), "not_leader");
            return;
        }
        let key = object_key(&action);
        let mut queues = inner.queues.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = queues.get(&key)
            && tx.send((term, action.clone())).is_ok()
        {
            return;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send((term, action));
        queues.insert(key.clone(), tx);
        drop(queues);
        let inner = self.inner.clone();
        let span = tracing::info_span!("writer", object = %key);
        self.tasks
            .spawn(async move { inner.work(key, rx).await }.instrument(span));
    }
}

impl<C: Cluster> Inner<C> {
    /// Applies the actions of one object in order; ends when its queue is empty.
    async fn work(self: Arc<Self>, key: String, mut rx: mpsc::UnboundedReceiver<(u64, Action)>) {
        loop {
            let (term, action) = match rx.try_recv() {
                Ok(a) => a,
                Err(_) => {
                    // Nothing left: unregister, unless something arrived meanwhile.
                    let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
                    match rx.try_recv() {
                        Ok(a) => a,
                        Err(_) => {
                            queues.remove(&key);
                            return;
                        }
                    }
                }
            };
            self.apply(&key, term, action).await;
        }
    }

    /// Whether we still lead in the term the action was decided in.
    fn leads_in(&self, term: u64) -> bool {
        *self.leader.borrow() == term
    }

    async fn apply(&self, key: &str, term: u64, action: Action) {
        let kind = kind(&action);
        let mut failures = 0u32;
        let mut conflicts = 0u32;
        loop {
            // The leader gate sits where writes happen: losing the lease stops all acting at once.
            if !self.leads_in(term) {
                self.metrics.dropped_write(kind, "not_leader");
                return;
            }
            let outcome = {
                // Never closed, so acquiring cannot fail; should it, the attempt goes unbounded.
                let _permit = self.lanes[Lane::of(&action) as usize].acquire().await.ok();
                // Boxed: an attempt's future (kube's request futures inside) is ~6 KiB, and
                // unboxed it would be part of every queued object's task from its spawn, while
                // it waits for a permit: 10 000 RegisteredNode Events at start-up, or a failure
                // burst's pod marks and Events, held ~70 MiB that way at 10k nodes.
                Box::pin(self.attempt(&action)).await
            };
            match outcome {
                Attempt::Done => return,
                Attempt::Conflict => {
                    self.metrics.write_retry(kind);
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
                    self.metrics.write_retry(kind);
                    let delay = backoff(failures, key);
                    warn!(object = key, kind, error = %e, retry_in = ?delay, "write failed, will retry");
                    self.back_off(delay).await;
                    failures += 1;
                }
            }
        }
    }

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

    async fn attempt(&self, action: &Action) -> Attempt {
        let r = match action {
            Action::MarkNodeUnknown {
                node,
                ready_heartbeat,
                lease_renew,
                now,
            } => {
                self.mark_node_unknown(node, *ready_heartbeat, *lease_renew, *now)
                    .await
            }
            Action::ChangeTaints {
                node,
                change,
                purpose,
            } => self.change_taints(node, change, purpose).await,
            Action::SetLabels { node, labels } => self.set_labels(node, labels).await,
            Action::MarkPodNotReady {
                namespace,
                name,
                uid,
                node,
                node_heartbeat,
                lease_renew,
                now,
            } => {
                self.mark_pod_not_ready(
                    namespace,
                    name,
                    uid,
                    node,
                    *node_heartbeat,
                    *lease_renew,
                    *now,
                )
                .await
            }
            Action::EvictPod {
                namespace,
                name,
                uid,
                node,
            } => self.evict_pod(namespace, name, uid, node).await,
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

    async fn mark_node_unknown(
        &self,
        name: &str,
        heartbeat: Option<Timestamp>,
        lease_renew: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(), Attempt> {
        let mut node = Self::read(self.cluster.get_node(name).await)?;
        if !self.still_silent(&node, heartbeat, lease_renew).await? {
            debug!(
                node = name,
                "kubelet posted or renewed its lease since the decision: not marking Unknown"
            );
            return Ok(());
        }
        let changed = conditions::mark_unknown(&mut node, now);
        if !changed.iter().any(|c| c == "Ready") {
            return Ok(());
        }
        self.outcome("node_status", self.cluster.replace_node_status(&node).await)?;
        info!(node = name, conditions = ?changed, "marked node conditions Unknown");
        Ok(())
    }

    /// Whether the live node shows no sign of life since a decision that saw this Ready
    /// heartbeat and Lease renewTime (a retried write must still be true when it lands).
    async fn still_silent(
        &self,
        node: &k8s_openapi::api::core::v1::Node,
        heartbeat: Option<Timestamp>,
        lease_renew: Option<Timestamp>,
    ) -> Result<bool, Attempt> {
        if conditions::ready_heartbeat(node) != heartbeat {
            return Ok(false);
        }
        let name = node.metadata.name.as_deref().unwrap_or("");
        let renew = match self
            .cluster
            .get_lease(&self.node_lease_namespace, name)
            .await
        {
            Ok(lease) => lease.spec.and_then(|s| s.renew_time).map(|t| t.0),
            Err(ApiError::NotFound(_)) => None,
            Err(e) => return Err(Attempt::Retry(e)),
        };
        Ok(renew.is_none() || renew == lease_renew)
    }

    async fn change_taints(
        &self,
        name: &str,
        change: &crate::logic::actions::TaintChange,
        purpose: &TaintPurpose,
    ) -> Result<(), Attempt> {
        let mut node = Self::read(self.cluster.get_node(name).await)?;
        // Decisions are made on the cache; a write (maybe retried much later) must still be
        // what the live node calls for.
        let fresh_change;
        let change = match purpose {
            TaintPurpose::Conditions => {
                match taints::condition_taint_change(&node, self.clock.now()) {
                    Some(c) => {
                        fresh_change = c;
                        &fresh_change
                    }
                    None => return Ok(()),
                }
            }
            TaintPurpose::ZoneEviction { .. } | TaintPurpose::Swap => {
                let wanted = conditions::ready_status(&node).and_then(taints::no_execute_key_for);
                if !change.add.iter().all(|t| Some(t.key.as_str()) == wanted) {
                    debug!(
                        node = name,
                        "the node's Ready status changed since the decision: not tainting"
                    );
                    return Ok(());
                }
                change
            }
            TaintPurpose::Recovery => change,
        };
        let mut list = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        if !taints::apply_change(&mut list, change) {
            return Ok(());
        }
        let spec = node.spec.get_or_insert_with(Default::default);
        spec.taints = if list.is_empty() { None } else { Some(list) };
        self.outcome("node_taints", self.cluster.replace_node(&node).await)?;
        info!(node = name, add = ?change.add.iter().map(|t| &t.key).collect::<Vec<_>>(),
            remove = ?change.remove.iter().map(|t| &t.key).collect::<Vec<_>>(), "changed node taints");
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
        let mut node = Self::read(self.cluster.get_node(name).await)?;
        let labels = node.metadata.labels.get_or_insert_with(Default::default);
        let mut changed = false;
        for (k, v) in wanted {
            if labels.get(k) != Some(v) {
                labels.insert(k.clone(), v.clone());
                changed = true;
            }
        }
        if changed {
            self.outcome("node_labels", self.cluster.replace_node(&node).await)?;
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
        let same = pod.metadata.uid.as_deref() == Some(uid)
            && pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node);
        Ok(same.then_some(pod))
    }

    #[allow(clippy::too_many_arguments)]
    async fn mark_pod_not_ready(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        node: &str,
        heartbeat: Option<Timestamp>,
        lease_renew: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(), Attempt> {
        let Some(mut pod) = self.same_pod(namespace, name, uid, node).await? else {
            return Ok(());
        };
        let live = Self::read(self.cluster.get_node(node).await)?;
        if !self.still_silent(&live, heartbeat, lease_renew).await? {
            debug!(
                node,
                "node showed a sign of life since the decision: not marking its pod NotReady"
            );
            return Ok(());
        }
        let Some(cond) = pod
            .status
            .as_mut()
            .and_then(|s| s.conditions.as_mut())
            .and_then(|cs| cs.iter_mut().find(|c| c.type_ == "Ready"))
        else {
            return Ok(());
        };
        if cond.status == "False" {
            return Ok(());
        }
        cond.status = "False".into();
        cond.last_transition_time = Some(Time(now));
        self.outcome("pod_status", self.cluster.replace_pod_status(&pod).await)?;
        Ok(())
    }

    async fn evict_pod(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        node_name: &str,
    ) -> Result<(), Attempt> {
        let started = self.clock.now();
        let Some(mut pod) = self.same_pod(namespace, name, uid, node_name).await? else {
            return Ok(());
        };
        if pod.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        // SPEC Part A item 4: the node must still carry a NoExecute taint the pod does not
        // tolerate forever (kubernetes#139992).
        let node = Self::read(self.cluster.get_node(node_name).await)?;
        let now = self.clock.now();
        let taints: Vec<_> = taints::no_execute_taints(&node)
            .into_iter()
            .map(|t| {
                let start = eviction::taint_start_from_api(&t).unwrap_or(now);
                (t, start)
            })
            .collect();
        let bound = eviction::bound_at_from_api(&pod).unwrap_or(now);
        let not_due = match eviction::verdict(&pod, &taints, bound, now) {
            eviction::Verdict::Keep => true,
            // API timestamps are whole seconds and rounded up here, while the taint manager
            // may know the precise time: allow that one second, no more.
            eviction::Verdict::At(t) => t > crate::logic::time::add_secs(now, 1),
            eviction::Verdict::Now => false,
        };
        if not_due {
            info!(pod = %format!("{namespace}/{name}"), "no longer due for eviction: keeping it");
            return Ok(());
        }
        if add_disruption_target(&mut pod, now) {
            self.outcome("pod_status", self.cluster.replace_pod_status(&pod).await)?;
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
        if let Err(ApiError::TooManyRequests(msg)) = &result {
            self.metrics.eviction_refused();
            info!(pod = %format!("{namespace}/{name}"), reason = %msg, "eviction refused, will retry");
        }
        // A conflict (409) is retried at once like any other: the next attempt reads the live
        // pod again and stops there if its UID precondition failed (a different pod of that
        // name now exists). Taking any 409 as that case would drop a deletion that was only
        // refused because the object was being written concurrently.
        self.outcome(write_kind, result)?;
        self.metrics
            .pod_deleted(crate::logic::time::since(self.clock.now(), started).as_secs_f64());
        info!(pod = %format!("{namespace}/{name}"), node = node_name, "evicted pod");
        Ok(())
    }
}

/// Adds the DisruptionTarget condition the taint manager sets before deleting; false when it is
/// already there.
fn add_disruption_target(pod: &mut Pod, now: Timestamp) -> bool {
    let status = pod.status.get_or_insert_with(Default::default);
    let conds = status.conditions.get_or_insert_with(Vec::new);
    if conds
        .iter()
        .any(|c| c.type_ == "DisruptionTarget" && c.status == "True")
    {
        return false;
    }
    conds.retain(|c| c.type_ != "DisruptionTarget");
    conds.push(PodCondition {
        type_: "DisruptionTarget".into(),
        status: "True".into(),
        reason: Some("DeletionByTaintManager".into()),
        message: Some("Taint manager: deleting due to NoExecute taint".into()),
        last_transition_time: Some(Time(now)),
        ..Default::default()
    });
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    mod lanes {
        use super::*;
        use crate::cluster::{Result, WatchStream};
        use crate::logic::actions::{EventRecord, ObjectRef};
        use k8s_openapi::api::coordination::v1::Lease;
        use k8s_openapi::api::core::v1::{Node, NodeCondition, NodeStatus};
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

        fn ready_node(name: &str) -> Node {
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

        impl Cluster for StuckPods {
            async fn get_node(&self, name: &str) -> Result<Node> {
                Ok(ready_node(name))
            }
            async fn list_node_versions(&self) -> Result<Vec<crate::cluster::ObjectVersion>> {
                unreachable!("the writer does not list")
            }
            async fn replace_node(&self, node: &Node) -> Result<Node> {
                Ok(node.clone())
            }
            async fn replace_node_status(&self, node: &Node) -> Result<Node> {
                self.node_status_writes.fetch_add(1, Ordering::SeqCst);
                Ok(node.clone())
            }
            async fn get_pod(&self, _: &str, _: &str) -> Result<Pod> {
                self.pod_reads.fetch_add(1, Ordering::SeqCst);
                pending().await
            }
            async fn replace_pod_status(&self, _: &Pod) -> Result<Pod> {
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
            fn watch_pods(&self) -> WatchStream<Pod> {
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

    #[test]
    fn disruption_target_is_added_once() {
        let mut pod = Pod::default();
        let now: Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
        assert!(add_disruption_target(&mut pod, now));
        assert!(!add_disruption_target(&mut pod, now));
        let conds = pod.status.unwrap().conditions.unwrap();
        assert_eq!(conds.len(), 1);
        assert_eq!(conds[0].reason.as_deref(), Some("DeletionByTaintManager"));
    }
}
