//! The one place that writes to the cluster.
//!
//! Every action is decided again before it is written. The first attempt starts from the
//! cached copy the decision was taken on (`Cached`: the node or pod with its resourceVersion)
//! and writes a patch of only what changes, guarded by that resourceVersion, so an object that
//! moved since refuses it (409) and the retry reads the live object; a copy is never trusted to
//! drop a write (when it calls for none, the live object decides). Deletions are guarded by the
//! UID. What no precondition on the written object can answer is read live: whether a pod's
//! node has come back (before its pods' evictions) and whether a kubelet renewed its Lease
//! (before marks: a pod mark asks the Lease, and the node only as the Node watch shows it,
//! `NodeNews`). Never a PUT of a Node or Pod: other components own them, and a PUT
//! would drop every field this build's types do not know. Retried with capped exponential
//! backoff until it is applied or no longer needed, and dropped at once when this process is
//! not the leader (or runs with `--dry-run`). Actions on one object are applied in the order
//! they were decided; different objects proceed independently, so a pod a PodDisruptionBudget
//! protects does not hold up anything else. The NotReady marks of a node's pods, decided
//! together, are one object of their own: they are not ordered with those pods' evictions, two
//! independent decisions (as upstream, where two controllers make them), each guarded by the
//! pod's resourceVersion. A mark waits behind the evictions, so it starts from what the Pod
//! watch showed of its pod since the decision (`Writer::pod_changed`, `pod_gone`): a pod
//! deleted meanwhile is not written, one changed meanwhile is written from the newer copy.
//!
//! Three things keep a burst from burying the writes that matter (250 nodes going silent in one
//! pass means 250 node writes, 7 500 pod status writes and as many Events, all on one server):
//! - **Node writes first.** A batch's node writes are handed over before its pod writes and
//!   Events (`Writer::submit`).
//! - **Shared reads.** Pod writes re-check their node (marks: its Lease) before writing. Attempts
//!   that need the same node at about the same time share one GET of it (`SharedReads`), but only
//!   a GET that started after the attempt itself did, so the answer is as fresh as the one the
//!   attempt would have fetched; 30 evictions of one node's pods read that node once, not 30 times.
//!   Reads that are changed and written back (a node's status, taints, labels) are never shared.
//!   The Unknown marks of one pass, when many, confirm their Leases by one shared list of Lease
//!   versions instead of a GET each.
//! - **Lanes with priority.** Each kind travels in its own lane of bounded width (NoExecute
//!   taints, Unknown marks and the other NoSchedule taints apart, so that a write never waits
//!   for a permit behind writes of a lower priority), and
//!   the secondary lanes (pod NotReady marks, Events) shrink to a trickle while the primary
//!   ones (node writes, evictions) have attempts waiting or in flight; see `Priority`. Every
//!   request of an attempt goes at the write's `cluster::Priority`, for the client-side limit.
//!
//! The modules, by concern: `job` (the writer's own work items, made from the core's actions
//! and the cached copies they were decided on), `queue` (per-object queues, the leader gate,
//! retries with backoff), `lanes` (lanes and their priority), `reads` (shared reads), `writes`
//! (one attempt at each kind of write: read if it must, ask `logic::recheck`, write).

mod job;
mod lanes;
mod queue;
mod reads;
#[cfg(test)]
mod tests;
mod writes;

use super::tasks::Tasks;
use crate::clock::Clock;
use crate::cluster::Cluster;
use crate::logic::actions::{Action, PodId};
use crate::metrics::Metrics;
use crate::settings::{EvictionMode, Settings};
use jiff::Timestamp;
use job::Job;
pub use job::{Cached, NothingCached};
use k8s_openapi::api::core::v1::Pod;
use lanes::{Lane, Priority};
use reads::{Batch, ReadSharing};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::{Semaphore, watch};

/// Hands actions to per-object workers.
pub struct Writer<C: Cluster> {
    state: Arc<WriterState<C>>,
}

impl<C: Cluster> Clone for Writer<C> {
    fn clone(&self) -> Self {
        Writer {
            state: self.state.clone(),
        }
    }
}

/// What the writer's handles and workers share.
struct WriterState<C: Cluster> {
    cluster: C,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    dry_run: bool,
    eviction_mode: EvictionMode,
    node_lease_namespace: String,
    /// The current leader term (0: not leading).
    leader: watch::Receiver<u64>,
    /// Where the per-object workers run (a pod's NotReady mark hands over its Event from one).
    tasks: Tasks,
    /// The jobs waiting per object, with the leader term they were decided in; an object is
    /// here while its worker runs. Plain queues under one lock, not a channel per object: at
    /// start-up every node's RegisteredNode Event is an object of its own (BENCHMARKS.md).
    queues: Mutex<BTreeMap<String, VecDeque<(u64, Job)>>>,
    /// One semaphore per `Lane`, indexed by it.
    lanes: [Semaphore; Lane::ALL.len()],
    priority: Priority,
    reads: Arc<Mutex<ReadSharing>>,
    /// The dry run's decisions already logged.
    dry_run_said: Mutex<HashSet<String>>,
    /// Pods whose NotReady marks wait, with what the watch showed of them since the decision
    /// (`news`).
    pod_news: Mutex<HashMap<String, PodNews>>,
    /// Nodes whose pods' NotReady marks wait, with what the Node watch showed of them since.
    node_news: Mutex<HashMap<String, NodeNews>>,
}

/// The Ready heartbeat the Node watch last showed of a node whose pods' marks wait
/// (`heartbeat`), and how many decisions' marks wait (`waiting`). With the node's Lease read
/// live, it answers "has the node come back?" for the marks without a GET of the node: a
/// kubelet that is back renews its Lease.
#[derive(Debug)]
struct NodeNews {
    waiting: usize,
    heartbeat: Option<Timestamp>,
}

/// What the Pod watch showed of a pod since a mark of it was decided: a mark waits long behind
/// the more urgent writes, and meanwhile an eviction may change the pod (its DisruptionTarget)
/// or delete it, so that the copy the mark was decided on would only earn a refusal (409) and
/// a read.
#[derive(Debug)]
enum PodNews {
    Nothing,
    Changed(Box<Pod>),
    Gone,
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
            state: Arc::new(WriterState {
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
                reads: Arc::new(Mutex::new(ReadSharing::default())),
                dry_run_said: Mutex::new(Default::default()),
                pod_news: Mutex::new(HashMap::new()),
                node_news: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Hands over a batch of decisions; returns at once. Node writes are handed over first: a
    /// pass that loses 250 nodes decides each node's Unknown mark next to its 30 pod marks and
    /// Events, which would otherwise queue the last node's write behind thousands. Only node
    /// objects are moved (their jobs all travel in the node lane), so the jobs on any one object
    /// keep their order.
    /// The node `name` changed (as the Node watch delivered it, with this Ready `heartbeat`):
    /// reads of it that started before serve no attempt any more.
    pub fn node_changed(&self, name: &str, heartbeat: Option<Timestamp>) {
        self.state.lock_reads().node_changed(name);
        if let Some(news) = self.state.lock_node_news().get_mut(name) {
            news.heartbeat = heartbeat;
        }
    }

    /// The Lease `name` changed (a renewal): as `node_changed`.
    pub fn lease_changed(&self, name: &str) {
        self.state.lock_reads().lease_changed(name);
    }

    /// The pod `key` (namespace/name) changed, as the Pod watch delivered it (`copy` makes a
    /// copy of it, asked for only when a mark of that pod waits).
    pub fn pod_changed(&self, key: &str, copy: impl FnOnce() -> Pod) {
        if let Some(news) = self.state.lock_pod_news().get_mut(key) {
            *news = PodNews::Changed(Box::new(copy()));
        }
    }

    /// The pod `key` (namespace/name) was deleted.
    pub fn pod_gone(&self, key: &str) {
        if let Some(news) = self.state.lock_pod_news().get_mut(key) {
            *news = PodNews::Gone;
        }
    }

    pub fn submit(&self, actions: Vec<Action>) {
        self.submit_seen(actions, &NothingCached);
    }

    /// `submit`, with `cached` giving the cached copies the decisions were taken on: a taint
    /// change's or an eviction's first attempt writes from them instead of reading the object.
    ///
    /// The first attempts of the pod writes decided together (the evictions falling due at one
    /// instant, a node's pod marks) share one read of their node (and its Lease) if it started
    /// after the decision and no change of that object was seen on the watch since it started
    /// (`node_changed`, `lease_changed`): under the client-side limit they start one token
    /// apart, and each would otherwise read the node again.
    ///
    /// Unknown marks decided together confirm their nodes' silence by one list of Lease
    /// versions when they outnumber its pages, else by a GET of each Lease.
    pub fn submit_seen(&self, actions: Vec<Action>, cached: &dyn Cached) {
        let decided = Batch::new(&self.state.reads);
        let marks = actions
            .iter()
            .filter(|a| matches!(a, Action::MarkNodeUnknown { .. }))
            .count();
        let pages = cached
            .leases()
            .div_ceil(crate::cluster::VERSION_PAGE as usize);
        let share_a_list = marks > pages.max(1);
        let (nodes, others): (Vec<Job>, Vec<Job>) = actions
            .into_iter()
            .filter_map(|action| self.state.unless_dry_run(action))
            .map(|job| job.with_seen(cached, &decided, share_a_list))
            .partition(|job| {
                matches!(
                    job.lane(),
                    Lane::Taints | Lane::Nodes | Lane::ConditionTaints
                )
            });
        for job in nodes.into_iter().chain(others) {
            self.state.enqueue(job);
        }
    }
}

impl<C: Cluster> WriterState<C> {
    fn lock_reads(&self) -> std::sync::MutexGuard<'_, ReadSharing> {
        self.reads.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_pod_news(&self) -> std::sync::MutexGuard<'_, HashMap<String, PodNews>> {
        self.pod_news.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_node_news(&self) -> std::sync::MutexGuard<'_, HashMap<String, NodeNews>> {
        self.node_news.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// From now on, what the Node watch shows of `node`'s Ready heartbeat is kept for its
    /// pods' marks, starting from the one their decision saw.
    fn await_node_news(&self, node: &str, decided_on: Option<Timestamp>) {
        self.lock_node_news()
            .entry(node.to_owned())
            .or_insert(NodeNews {
                waiting: 0,
                heartbeat: decided_on,
            })
            .waiting += 1;
    }

    /// The Ready heartbeat the Node watch last showed of `node`, while its pods' marks wait.
    fn watched_heartbeat(&self, node: &str) -> Option<Option<Timestamp>> {
        self.lock_node_news().get(node).map(|news| news.heartbeat)
    }

    /// One decision's marks on `node` are done.
    fn forget_node_news(&self, node: &str) {
        let mut news = self.lock_node_news();
        if let Some(entry) = news.get_mut(node) {
            entry.waiting -= 1;
            if entry.waiting == 0 {
                news.remove(node);
            }
        }
    }

    /// From now on, what the watch shows of these pods is kept for their marks.
    fn await_news(&self, pods: &[PodId]) {
        let mut news = self.lock_pod_news();
        for pod in pods {
            news.insert(pod_key(pod), PodNews::Nothing);
        }
    }

    /// What the watch showed of `pod` since its mark was decided (forgotten once asked).
    fn news(&self, pod: &PodId) -> Option<PodNews> {
        self.lock_pod_news().remove(&pod_key(pod))
    }
}

fn pod_key(pod: &PodId) -> String {
    crate::logic::pod::key_of(Some(&pod.namespace), &pod.name)
}
