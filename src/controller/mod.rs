//! The async loops: caches fed by the watches, the monitor pass, the tainting pass, the taint
//! manager's timers, the writer and the leader gate.
//!
//! One task owns all controller state (the cached view, the monitor, the taint manager) and
//! reacts, in a fixed priority order, to watch deliveries and to its timers; it never waits on
//! the API itself. The writer applies the resulting actions in tasks of its own. The watches and
//! the leader election run beside it. All of them stop when `run`'s future is dropped.

mod cache;
mod leader;
pub mod tasks;
mod watch;
pub mod writer;

use crate::clock::Clock;
use crate::cluster::{ApiError, Cluster, ObjectVersion};
use crate::logic::actions::Action;
use crate::logic::cached_pod::CachedPod;
use crate::logic::eviction::TaintManager;
use crate::logic::monitor::Monitor;
use crate::logic::sanity::LeaseCheck;
use crate::logic::view::{self, ClusterView};
use crate::logic::zones::{self, ZoneState};
use crate::logic::{taints, time};
use crate::metrics::Metrics;
use crate::settings::{NODE_EVICTION_PERIOD, Settings};
use futures::FutureExt;
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::runtime::watcher::Event;
use std::collections::BTreeSet;
use std::mem::take;
use std::sync::Arc;
use std::time::Duration;
use tasks::Tasks;
use tokio::sync::{mpsc, watch as tokio_watch};
use tokio::time::Instant;
use tracing::{Instrument, error, info, warn};
use watch::{Delivery, Resource, Tagged};
use writer::Writer;

use cache::lean_node;

/// Watch events waiting for the control loop at most. A full inbox holds the watch tasks back,
/// and so the reading of their responses: with streaming lists (`--initial-list=streaming`)
/// decoding outruns the control loop, and an unbounded inbox held ~60 MiB of decoded pods at
/// 10k nodes.
const INBOX: usize = 4096;

/// Things the controller reports that are not API writes (the simulator records them in its
/// timeline; production only logs and counts them).
pub trait Hooks: Send + Sync + 'static {
    /// A zone changed state (`zone` as `zones::display` shows it). Not called for `Initial`.
    fn zone_state(&self, zone: &str, state: ZoneState);

    /// Readiness facts for `/readyz`: whether every cache has synced, whether this process leads.
    fn readiness(&self, _synced: bool, _leader: bool) {}

    /// A watch was found stale (or fresh again) by the staleness guard.
    fn watch_stale(&self, _resource: &'static str, _stale: bool) {}

    /// The `--max-unhealthy-fraction` breaker opened or closed.
    fn breaker(&self, _open: bool) {}

    /// A check of the controller's inputs suspects a misconfiguration (`Some`: what it found)
    /// or no longer does (`None`); `check` names it (`node_leases`).
    fn suspicion(&self, _check: &'static str, _detail: Option<&str>) {}
}

/// Hooks that do nothing.
pub struct NoHooks;

impl Hooks for NoHooks {
    fn zone_state(&self, _zone: &str, _state: ZoneState) {}
}

/// Everything one controller process needs.
pub struct Context<C: Cluster> {
    pub cluster: C,
    pub clock: Arc<dyn Clock>,
    pub settings: Settings,
    /// Leader-election identity (pod name or hostname).
    pub identity: String,
    pub hooks: Arc<dyn Hooks>,
    pub metrics: Arc<Metrics>,
    /// Becomes `true` on SIGTERM/SIGINT: stop taking work, release the lease, return.
    pub shutdown: tokio_watch::Receiver<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot start: {0}")]
    Startup(String),
}

/// Runs the controller until shutdown. Dropping the future (the simulator's
/// `restart-controller`) stops everything at once and releases nothing.
pub async fn run<C: Cluster>(ctx: Context<C>) -> Result<(), Error> {
    let Context {
        cluster,
        clock,
        settings,
        identity,
        hooks,
        metrics,
        shutdown,
    } = ctx;
    let tasks = Tasks::default();
    let _guard = tasks.abort_on_drop();

    // Leadership term (0: not leading); without leader election this process leads for good.
    let (leader_tx, leader_rx) = tokio_watch::channel(u64::from(!settings.leader_elect));
    metrics.set_leader(!settings.leader_elect);
    let leader_done = if settings.leader_elect {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let leader_loop = leader::LeaderLoop {
            cluster: cluster.clone(),
            clock: clock.clone(),
            settings: settings.clone(),
            identity: identity.clone(),
            metrics: metrics.clone(),
            leader: leader_tx,
            shutdown: shutdown.clone(),
            terms: Default::default(),
        };
        tasks.spawn(
            async move {
                leader_loop.run().await;
                let _ = done_tx.send(());
            }
            .instrument(tracing::info_span!("leader_election", identity = %identity)),
        );
        Some(done_rx)
    } else {
        // Leader for good: keep the sender, so the receiver never reports a closed channel.
        tasks.spawn(async move {
            leader_tx.closed().await;
        });
        None
    };

    let writer = Writer::new(
        cluster.clone(),
        clock.clone(),
        metrics.clone(),
        &settings,
        leader_rx.clone(),
        tasks.clone(),
    );
    let (inbox_tx, inbox) = mpsc::channel(INBOX);
    let mut control = Control {
        cluster,
        clock,
        settings,
        hooks,
        metrics,
        writer,
        tasks,
        inbox_tx,
        view: ClusterView::default(),
        monitor: Monitor::new(),
        taint_manager: TaintManager::new(),
        generation: [0; 3],
        watch_tasks: [None, None, None],
        buffers: Buffers::default(),
        synced: [false; 3],
        relisting: [true; 3],
        stale: [false; 3],
        last_delivery: [None; 3],
        last_check: [None; 3],
        acting: false,
        fresh: true,
        breaker_open: false,
        lease_check: LeaseCheck::default(),
        leader: leader_rx,
        acting_term: 0,
        read_ahead_until: None,
        fresh_reads: None,
    };
    for r in [Resource::Nodes, Resource::Leases, Resource::Pods] {
        control.start_watch(r);
    }
    control
        .run(inbox, shutdown)
        .instrument(tracing::info_span!("controller", identity = %identity))
        .await;
    if let Some(done) = leader_done {
        let _ = done.await;
    }
    Ok(())
}

fn idx(r: Resource) -> usize {
    match r {
        Resource::Nodes => 0,
        Resource::Leases => 1,
        Resource::Pods => 2,
    }
}

/// Objects of a re-list, collected until its `InitDone`. Pods are applied as they arrive (there
/// are many, and applying them overlaps with downloading the rest); only their keys are kept,
/// to find the pods the list no longer has.
#[derive(Default)]
struct Buffers {
    nodes: Option<Vec<Node>>,
    leases: Option<Vec<Lease>>,
    pods: Option<BTreeSet<view::PodKey>>,
}

struct Control<C: Cluster> {
    cluster: C,
    clock: Arc<dyn Clock>,
    settings: Settings,
    hooks: Arc<dyn Hooks>,
    metrics: Arc<Metrics>,
    writer: Writer<C>,
    tasks: Tasks,
    inbox_tx: mpsc::Sender<Tagged>,
    view: ClusterView,
    monitor: Monitor,
    taint_manager: TaintManager,
    generation: [u64; 3],
    watch_tasks: [Option<tokio::task::AbortHandle>; 3],
    buffers: Buffers,
    synced: [bool; 3],
    /// A (re)started watch whose first full list has not arrived yet: its data is not fresh.
    relisting: [bool; 3],
    /// Whether the staleness guard flagged each watch stale (until it is found fresh or re-lists).
    stale: [bool; 3],
    /// When each watch last delivered an object event.
    last_delivery: [Option<Timestamp>; 3],
    /// When the staleness guard last read each resource afresh.
    last_check: [Option<Timestamp>; 3],
    /// Leader with synced caches: the passes run and actions are written.
    acting: bool,
    /// The staleness guard's last verdict (docs/differences.md#watch-staleness-guard).
    fresh: bool,
    breaker_open: bool,
    /// The "no node has a Lease" check (a wrong `--node-lease-namespace`).
    lease_check: LeaseCheck,
    leader: tokio_watch::Receiver<u64>,
    /// The leadership term the current acting state belongs to.
    acting_term: u64,
    /// The pods due for eviction up to this time were handed to the writer to read ahead.
    read_ahead_until: Option<Timestamp>,
    /// The staleness guard's reads afresh, when a monitor pass waits for them.
    fresh_reads: Option<FreshReads>,
}

/// What a read afresh found: each resource read with the versions the API server listed.
type FreshAnswers = Vec<(Resource, Result<Vec<ObjectVersion>, ApiError>)>;

/// The staleness guard's reads afresh (docs/differences.md#watch-staleness-guard) in flight. The monitor pass that
/// asked for them runs once they are answered; the control loop goes on meanwhile. At 10 000
/// nodes, a list of every node's version takes tens of milliseconds on a busy server, and while
/// the loop waited for it, every eviction falling due in that time was late by as much (the
/// worst burst of every benchmark run at 10k came 25 s after the last node write, when the
/// quiet Node watch was first checked).
struct FreshReads {
    /// When they started.
    started: Timestamp,
    /// What was read, for answers that never came (the task ended).
    resources: Vec<Resource>,
    /// The reads, in a task of their own: their pages are decoded there, not in the loop.
    answers: tokio::task::JoinHandle<FreshAnswers>,
}

impl Drop for FreshReads {
    /// Reads nobody waits for any more (leadership lost, the controller stopped) are cut off.
    fn drop(&mut self) {
        self.answers.abort();
    }
}

/// What the staleness guard knows before a monitor pass.
enum Freshness {
    /// The verdict: whether the heartbeat data can be trusted.
    Known(bool),
    /// It must read afresh first.
    Reading(FreshReads),
}

/// The answers of the reads in flight, if any (else never ready), with when they started.
async fn answers_of(reads: &mut Option<FreshReads>) -> (Timestamp, FreshAnswers) {
    match reads {
        Some(reads) => {
            let answers = match (&mut reads.answers).await {
                Ok(answers) => answers,
                Err(ended) => reads
                    .resources
                    .iter()
                    .map(|r| {
                        (
                            *r,
                            Err(ApiError::Other(format!("read afresh ended: {ended}"))),
                        )
                    })
                    .collect(),
            };
            (reads.started, answers)
        }
        None => std::future::pending().await,
    }
}

/// How long before their due time the pods of scheduled evictions are read (see
/// `Writer::read_ahead`): long enough for a burst of reads to be over by then, short enough
/// that the copies are rarely outdated.
const READ_AHEAD: Duration = Duration::from_millis(500);

/// Lets every task woken at this same instant (the simulated world's writes, watch
/// forwarders) run first, so a timer never acts on data older than its own instant.
async fn settle() {
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl<C: Cluster> Control<C> {
    fn start_watch(&mut self, r: Resource) {
        let i = idx(r);
        if let Some(old) = self.watch_tasks[i].take() {
            old.abort();
        }
        self.generation[i] += 1;
        self.relisting[i] = true;
        let generation = self.generation[i];
        let tx = self.inbox_tx.clone();
        let handle = match r {
            // Objects are stripped before queueing, so a burst (a re-list of every pod) waiting
            // in the inbox holds lean copies, not full ones.
            Resource::Nodes => watch::forward(self.cluster.watch_nodes(), generation, tx, r, |e| {
                Delivery::Node(Box::new(e.modify(|node| *node = lean_node(take(node)))))
            }),
            Resource::Leases => watch::forward(
                self.cluster
                    .watch_leases(&self.settings.node_lease_namespace),
                generation,
                tx,
                r,
                |e| {
                    Delivery::Lease(Box::new(
                        e.modify(|lease| lease.metadata.managed_fields = None),
                    ))
                },
            ),
            Resource::Pods => watch::forward(self.cluster.watch_pods(), generation, tx, r, |e| {
                Delivery::Pod(Box::new(e))
            }),
        };
        let abort = handle.abort_handle();
        self.tasks.track(abort.clone());
        self.watch_tasks[i] = Some(abort);
        // A restarted watch gets a full period before it can look stale again.
        self.last_delivery[i] = Some(self.clock.now());
    }

    fn synced(&self) -> bool {
        self.synced.iter().all(|s| *s)
    }

    async fn run(
        &mut self,
        mut inbox: mpsc::Receiver<Tagged>,
        mut shutdown: tokio_watch::Receiver<bool>,
    ) {
        let period = self.settings.node_monitor_period;
        let mut next_monitor: Option<Instant> = None;
        let mut next_taint: Option<Instant> = None;
        loop {
            if *shutdown.borrow() {
                info!("shutting down: no new work");
                return;
            }
            let (next_due, next_read_ahead) = if self.acting {
                let tm = &self.taint_manager;
                (
                    tm.next_due().map(|t| self.clock.instant_at(t)),
                    tm.first_due_after(self.read_ahead_until).map(|t| {
                        let at = self.clock.instant_at(t);
                        at.checked_sub(READ_AHEAD).unwrap_or(at)
                    }),
                )
            } else {
                (None, None)
            };
            tokio::select! {
                biased;
                changed = shutdown.changed() => {
                    // The owner of the shutdown signal is gone: nobody can stop us cleanly any
                    // more, so stop now rather than spin on a closed channel.
                    if changed.is_err() {
                        info!("shutdown signal dropped: stopping");
                        return;
                    }
                }
                _ = self.leader.changed() => self.leadership_changed(&mut next_monitor, &mut next_taint),
                _ = sleep_until_opt(next_monitor) => {
                    settle().await;
                    self.drain(&mut inbox);
                    next_monitor = None;
                    match self.check_heartbeats() {
                        Freshness::Known(fresh) => {
                            self.monitor_pass(fresh);
                            next_monitor = Some(Instant::now() + period);
                        }
                        // The pass runs when the reads are answered (the branch below).
                        Freshness::Reading(reads) => self.fresh_reads = Some(reads),
                    }
                }
                (started, answers) = answers_of(&mut self.fresh_reads) => {
                    self.fresh_reads = None;
                    settle().await;
                    self.drain(&mut inbox);
                    let fresh = self.judge_fresh_reads(started, answers);
                    self.monitor_pass(fresh);
                    next_monitor = Some(Instant::now() + period);
                }
                _ = sleep_until_opt(next_taint) => {
                    settle().await;
                    self.drain(&mut inbox);
                    self.tainting_pass();
                    next_taint = Some(Instant::now() + NODE_EVICTION_PERIOD);
                }
                _ = sleep_until_opt(next_due) => {
                    settle().await;
                    self.drain(&mut inbox);
                    let actions = self.taint_manager.fire_due(self.clock.now());
                    self.act(actions);
                }
                _ = sleep_until_opt(next_read_ahead) => {
                    let until = crate::logic::time::add(self.clock.now(), READ_AHEAD);
                    let pods = self.taint_manager.due_between(self.read_ahead_until, until);
                    self.read_ahead_until = Some(until);
                    self.writer.read_ahead(pods);
                }
                // Last: a steady stream of watch events (a thousand Lease renewals a second at 10k
                // nodes) must not hold back a due timer; each timer drains the inbox first anyway.
                Some(tagged) = inbox.recv() => {
                    self.deliver(tagged);
                    let became = !self.acting && *self.leader.borrow() != 0 && self.synced();
                    if became {
                        self.start_acting(&mut next_monitor, &mut next_taint);
                    }
                }
            }
        }
    }

    fn drain(&mut self, inbox: &mut mpsc::Receiver<Tagged>) {
        while let Ok(tagged) = inbox.try_recv() {
            self.deliver(tagged);
        }
    }

    fn act(&self, actions: Vec<Action>) {
        if self.acting && !actions.is_empty() {
            self.writer.submit(actions);
        }
    }

    fn leadership_changed(
        &mut self,
        next_monitor: &mut Option<Instant>,
        next_taint: &mut Option<Instant>,
    ) {
        let term = *self.leader.borrow_and_update();
        self.hooks.readiness(self.synced(), term != 0);
        if self.acting && term != self.acting_term {
            // Lost the lease (maybe won it back since): what was decided in the old term, and
            // dropped by the writer meanwhile, is void. Observations are kept.
            warn!("lost leadership: stopped acting");
            self.acting = false;
            // A standby judges nothing: what the leader's passes reported is not its to show
            // (alerts take the maximum over replicas).
            self.metrics.stood_down();
            for r in [Resource::Nodes, Resource::Leases] {
                self.clear_stale(r);
            }
            if self.breaker_open {
                self.hooks.breaker(false);
                self.breaker_open = false;
            }
            if self.lease_check.reported() {
                self.hooks.suspicion("node_leases", None);
            }
            self.lease_check = LeaseCheck::default();
            self.writer.forget_read_ahead();
            self.drop_fresh_reads();
            *next_monitor = None;
            *next_taint = None;
            self.taint_manager = TaintManager::new();
            let now = self.clock.now();
            for node in self.view.nodes.values() {
                self.taint_manager.node_seen(None, node, now, true);
            }
            for pod in self.view.pods.values() {
                self.taint_manager.pod_seen(None, &pod.facts(), now, true);
            }
        }
        if term != 0 && !self.acting && self.synced() {
            self.start_acting(next_monitor, next_taint);
        }
    }

    /// Leader with synced caches: start the passes and schedule every pod on a tainted node.
    fn start_acting(
        &mut self,
        next_monitor: &mut Option<Instant>,
        next_taint: &mut Option<Instant>,
    ) {
        info!(
            nodes = self.view.nodes.len(),
            pods = self.view.pods.len(),
            "caches synced and leading: acting"
        );
        self.acting = true;
        self.acting_term = *self.leader.borrow();
        self.read_ahead_until = None;
        self.drop_fresh_reads();
        self.monitor.restart_passes();
        let now = Instant::now();
        *next_monitor = Some(now);
        *next_taint = Some(now);
        self.reconcile_all();
        self.reconcile_node_updates();
    }

    /// The condition taints and beta labels of every node, as on a node update. Node updates
    /// seen while not acting changed nothing, and a kubelet with a Lease posts its status only
    /// every few minutes: without this, a Ready node could keep admission's `not-ready`
    /// NoSchedule taint for minutes after a start or a takeover. Only nodes that are not as
    /// they should be yield writes, and those queue in the writer's node lane.
    fn reconcile_node_updates(&mut self) {
        let now = self.clock.now();
        let actions: Vec<Action> = self
            .view
            .nodes
            .values()
            .flat_map(|node| Monitor::node_updated(node, now))
            .collect();
        self.act(actions);
    }

    fn reconcile_all(&mut self) {
        if !self.acting {
            return;
        }
        let now = self.clock.now();
        let mut actions = Vec::new();
        // Only nodes with NoExecute taints or with pods whose deletion is scheduled or issued:
        // for the others a reconcile is a no-op, and rebuilding all their pods is most of the
        // cost of a first sync.
        let busy: BTreeSet<&str> = self
            .taint_manager
            .pods_with_deletions()
            .filter_map(|key| self.view.pods.get(key)?.node())
            .collect();
        let nodes: Vec<String> = self
            .view
            .pods_by_node
            .keys()
            .filter(|name| {
                busy.contains(name.as_str())
                    || self
                        .view
                        .nodes
                        .get(*name)
                        .is_some_and(|n| !taints::no_execute_taints(n).is_empty())
            })
            .cloned()
            .collect();
        for name in nodes {
            let pods = self.view.pods_on(&name);
            actions.extend(self.taint_manager.reconcile(
                &name,
                self.view.nodes.get(&name),
                &pods,
                now,
            ));
        }
        self.act(actions);
    }

    fn deliver(&mut self, tagged: Tagged) {
        let now = self.clock.now();
        let resource = match &tagged.delivery {
            Delivery::Node(_) => Resource::Nodes,
            Delivery::Lease(_) => Resource::Leases,
            Delivery::Pod(_) => Resource::Pods,
            Delivery::Error(r, _) => *r,
        };
        let i = idx(resource);
        if tagged.generation != self.generation[i] {
            return;
        }
        match tagged.delivery {
            Delivery::Error(r, e) => {
                warn!(resource = r.name(), error = %e, "watch failed; it will re-list");
                return;
            }
            Delivery::Node(ev) => self.node_event(*ev, now),
            Delivery::Lease(ev) => self.lease_event(*ev, now),
            Delivery::Pod(ev) => self.pod_event(*ev, now),
        }
        self.last_delivery[i] = Some(now);
        self.metrics.watch_event(resource.name());
        self.hooks
            .readiness(self.synced(), *self.leader.borrow() != 0);
        self.metrics.set_cache_size(
            resource.name(),
            match resource {
                Resource::Nodes => self.view.nodes.len(),
                Resource::Leases => self.view.leases.len(),
                Resource::Pods => self.view.pods.len(),
            },
        );
    }

    fn node_event(&mut self, ev: Event<Node>, now: Timestamp) {
        match ev {
            Event::Init => {
                // A watch re-listing by itself (after an error) is as stale as a restarted one
                // until its list is complete.
                self.buffers.nodes = Some(Vec::new());
                self.relisting[idx(Resource::Nodes)] = true;
            }
            Event::InitApply(node) => self.buffers.nodes.get_or_insert_with(Vec::new).push(node),
            Event::InitDone => {
                let listed = self.buffers.nodes.take().unwrap_or_default();
                let gone = view::vanished(
                    &self.view.nodes,
                    &listed
                        .iter()
                        .filter_map(|n| n.metadata.name.clone())
                        .collect(),
                );
                for name in gone {
                    self.node_deleted(&name);
                }
                for node in listed {
                    self.node_applied(node, now, true);
                }
                self.relisted(Resource::Nodes);
                self.reconcile_all();
            }
            Event::Apply(node) => self.node_applied(node, now, false),
            Event::Delete(node) => {
                if let Some(name) = node.metadata.name.as_deref() {
                    self.node_deleted(name);
                }
            }
        }
    }

    /// A (re-)list of `r` is complete: its cache is as fresh as the server's, whatever the
    /// staleness guard said of the watch before. Without this, a restarted watch that is busy
    /// again (Lease renewals) is never quiet long enough to be checked, and its stale flag
    /// would stay up for good.
    fn relisted(&mut self, r: Resource) {
        self.synced[idx(r)] = true;
        self.relisting[idx(r)] = false;
        self.clear_stale(r);
    }

    /// Takes down the stale flag of `r`'s watch, if it is up.
    fn clear_stale(&mut self, r: Resource) {
        if std::mem::take(&mut self.stale[idx(r)]) {
            self.metrics.set_watch_stale(r.name(), false);
            self.hooks.watch_stale(r.name(), false);
        }
    }

    fn node_applied(&mut self, node: Node, now: Timestamp, listing: bool) {
        let Some(name) = node.metadata.name.clone() else {
            return;
        };
        self.monitor.observe_node(&node, now, &self.settings);
        let old = self.view.nodes.insert(name.clone(), node);
        let node = &self.view.nodes[&name];
        self.taint_manager
            .node_seen(old.as_ref(), node, now, listing);
        if !self.acting {
            return;
        }
        let mut actions = Monitor::node_updated(node, now);
        let taints_changed =
            old.as_ref().map(taints::no_execute_taints) != Some(taints::no_execute_taints(node));
        if taints_changed && !listing {
            let pods = self.view.pods_on(&name);
            actions.extend(self.taint_manager.reconcile(&name, Some(node), &pods, now));
        }
        self.act(actions);
    }

    fn node_deleted(&mut self, name: &str) {
        self.view.nodes.remove(name);
        self.taint_manager.node_gone(name);
        if self.acting {
            let now = self.clock.now();
            let pods = self.view.pods_on(name);
            let actions = self.taint_manager.reconcile(name, None, &pods, now);
            self.act(actions);
        }
    }

    fn lease_event(&mut self, ev: Event<Lease>, now: Timestamp) {
        match ev {
            Event::Init => {
                // A watch re-listing by itself (after an error) is as stale as a restarted one
                // until its list is complete.
                self.buffers.leases = Some(Vec::new());
                self.relisting[idx(Resource::Leases)] = true;
            }
            Event::InitApply(lease) => self.buffers.leases.get_or_insert_with(Vec::new).push(lease),
            Event::InitDone => {
                let listed = self.buffers.leases.take().unwrap_or_default();
                self.view.leases.clear();
                for lease in listed {
                    self.lease_applied(lease, now);
                }
                self.relisted(Resource::Leases);
            }
            Event::Apply(lease) => self.lease_applied(lease, now),
            Event::Delete(lease) => {
                if let Some(name) = lease.metadata.name.as_deref() {
                    self.view.leases.remove(name);
                }
            }
        }
    }

    fn lease_applied(&mut self, lease: Lease, now: Timestamp) {
        self.monitor.observe_lease(&lease, now);
        if let Some(name) = lease.metadata.name.clone() {
            self.view.leases.insert(name, lease);
        }
    }

    fn pod_event(&mut self, ev: Event<CachedPod>, now: Timestamp) {
        match ev {
            Event::Init => {
                // A watch re-listing by itself (after an error) is as stale as a restarted one
                // until its list is complete.
                self.buffers.pods = Some(BTreeSet::new());
                self.relisting[idx(Resource::Pods)] = true;
            }
            Event::InitApply(pod) => {
                let key = self.pod_applied(pod, now, true);
                self.buffers
                    .pods
                    .get_or_insert_with(BTreeSet::new)
                    .insert(key);
            }
            Event::InitDone => {
                let listed = self.buffers.pods.take().unwrap_or_default();
                for key in view::vanished(&self.view.pods, &listed) {
                    self.pod_deleted(&key);
                }
                // Strings and toleration lists only the vanished pods used.
                crate::logic::cached_pod::shared().prune();
                self.synced[idx(Resource::Pods)] = true;
                self.relisting[idx(Resource::Pods)] = false;
                self.reconcile_all();
            }
            Event::Apply(pod) => {
                self.pod_applied(pod, now, false);
            }
            Event::Delete(pod) => self.pod_deleted(&pod.key()),
        }
    }

    /// Caches a pod and schedules what it calls for; returns its key in the cache.
    fn pod_applied(&mut self, pod: CachedPod, now: Timestamp, listing: bool) -> view::PodKey {
        let (key, old) = self.view.put_pod(pod);
        let pod = &self.view.pods[&key];
        let seen_before = old.as_ref().map(CachedPod::facts);
        self.taint_manager
            .pod_seen(seen_before.as_ref(), &pod.facts(), now, listing);
        if !self.acting || listing || old.is_some_and(|old| !old.schedule_differs(pod)) {
            return key;
        }
        if let Some(node_name) = pod.node() {
            let actions = self.taint_manager.reconcile(
                node_name,
                self.view.nodes.get(node_name),
                &[pod.facts()],
                now,
            );
            self.act(actions);
        }
        key
    }

    fn pod_deleted(&mut self, key: &str) {
        let Some(pod) = self.view.remove_pod(key) else {
            return;
        };
        let actions = self.taint_manager.pod_gone(pod.namespace(), pod.name());
        self.act(actions);
    }

    /// The staleness guard (docs/differences.md#watch-staleness-guard): before anything can be marked Unknown, make sure the Lease and Node
    /// caches are not silently stale. A watch that delivered nothing for half the grace period
    /// (and was not checked in that time) is checked by reading its objects' versions afresh;
    /// those reads are started here and judged by `judge_fresh_reads`, so that the control loop
    /// never waits on the API.
    fn check_heartbeats(&mut self) -> Freshness {
        if !self.acting {
            return Freshness::Known(self.fresh);
        }
        if self.relisting[idx(Resource::Leases)] || self.relisting[idx(Resource::Nodes)] {
            // A restarted watch has not delivered its full list yet.
            return Freshness::Known(false);
        }
        let now = self.clock.now();
        let half_grace = self.settings.node_monitor_grace_period / 2;
        let quiet = |t: Option<Timestamp>| t.is_none_or(|t| time::since(now, t) > half_grace);
        let mut to_read = Vec::new();
        for r in [Resource::Leases, Resource::Nodes] {
            let i = idx(r);
            if quiet(self.last_delivery[i]) && quiet(self.last_check[i]) {
                self.last_check[i] = Some(now);
                to_read.push(r);
            }
        }
        if to_read.is_empty() {
            return Freshness::Known(true);
        }
        // A slow answer counts as stale; bounded so the pass it holds back comes in time.
        let limit = half_grace.min(Duration::from_secs(10));
        let cluster = self.cluster.clone();
        let namespace = self.settings.node_lease_namespace.clone();
        let resources = to_read.clone();
        let mut answers = async move {
            let read = |r: Resource| {
                let (cluster, namespace) = (&cluster, &namespace);
                async move {
                    let list = async {
                        match r {
                            Resource::Leases => cluster.list_lease_versions(namespace).await,
                            _ => cluster.list_node_versions().await,
                        }
                    };
                    let answer = tokio::time::timeout(limit, list).await.unwrap_or_else(|_| {
                        Err(ApiError::Unavailable(format!("no answer within {limit:?}")))
                    });
                    (r, answer)
                }
            };
            futures::future::join_all(to_read.into_iter().map(read)).await
        }
        .boxed();
        // Answered at once (the simulator's store): judged in the same instant.
        match (&mut answers).now_or_never() {
            Some(answers) => Freshness::Known(self.judge_fresh_reads(now, answers)),
            None => Freshness::Reading(FreshReads {
                started: now,
                resources,
                answers: tokio::spawn(answers),
            }),
        }
    }

    /// Judges the staleness guard's reads afresh that started at `started`: returns whether
    /// the heartbeat data can be trusted, and restarts a watch whose objects moved on.
    fn judge_fresh_reads(&mut self, started: Timestamp, answers: FreshAnswers) -> bool {
        // A watch that re-lists (restarted while the reads were in flight) has no full data yet.
        let mut fresh =
            !(self.relisting[idx(Resource::Leases)] || self.relisting[idx(Resource::Nodes)]);
        for (r, answer) in answers {
            let i = idx(r);
            if self.relisting[i] {
                // Its re-list brings it up to date; read afresh once it is quiet again.
                self.last_check[i] = None;
                continue;
            }
            // A watch that delivered while its read was in flight is not stalled, and its
            // cache may now be newer than the read, which would look like a moved-on server.
            let delivered = self.last_delivery[i].is_some_and(|t| t >= started);
            let moved = match answer {
                _ if delivered => Ok(false),
                Ok(listed) if r == Resource::Leases => {
                    Ok(view::moved_on(&self.view.leases, &listed))
                }
                Ok(listed) => Ok(view::moved_on(&self.view.nodes, &listed)),
                Err(e) => Err(e),
            };
            match moved {
                Ok(false) => {
                    self.stale[i] = false;
                    self.metrics.set_watch_stale(r.name(), false);
                    self.hooks.watch_stale(r.name(), false);
                }
                Ok(true) => {
                    warn!(
                        resource = r.name(),
                        "watch is stale: the API server has moved on; restarting it and holding back"
                    );
                    self.stale[i] = true;
                    self.metrics.set_watch_stale(r.name(), true);
                    self.hooks.watch_stale(r.name(), true);
                    self.metrics.watch_restarted(r.name());
                    self.start_watch(r);
                    self.last_check[i] = None;
                    fresh = false;
                }
                Err(e) => {
                    warn!(resource = r.name(), error = %e, "cannot confirm the watch is fresh: holding back");
                    self.stale[i] = true;
                    self.metrics.set_watch_stale(r.name(), true);
                    self.hooks.watch_stale(r.name(), true);
                    self.last_check[i] = None;
                    fresh = false;
                }
            }
        }
        fresh
    }

    /// Drops the staleness guard's reads in flight, whose verdict is not needed any more; the
    /// resources they read count as unchecked, so the next pass that finds them quiet reads
    /// them again rather than trusting them on a check that never came.
    fn drop_fresh_reads(&mut self) {
        if let Some(reads) = self.fresh_reads.take() {
            for r in &reads.resources {
                self.last_check[idx(*r)] = None;
            }
        }
    }

    /// The monitor pass, with the staleness guard's verdict.
    fn monitor_pass(&mut self, fresh: bool) {
        if !self.acting {
            return;
        }
        let now = self.clock.now();
        let leases = self.lease_check.judge(
            &self.view,
            now,
            self.settings.node_monitor_grace_period,
            &self.settings.node_lease_namespace,
        );
        match leases.changed {
            Some(true) => {
                let detail = leases.suspected.as_deref().unwrap_or_default();
                error!("suspected misconfiguration: {detail}");
                self.metrics
                    .set_suspected_misconfiguration("node_leases", true);
                self.hooks.suspicion("node_leases", Some(detail));
            }
            Some(false) => {
                info!("node Leases are seen again: Unknown marking resumes");
                self.metrics
                    .set_suspected_misconfiguration("node_leases", false);
                self.hooks.suspicion("node_leases", None);
            }
            None => {}
        }
        // No node with a Lease: the heartbeat data is not to be trusted, as with a stale watch.
        let fresh = fresh && !leases.hold;
        self.fresh = fresh;
        let started = std::time::Instant::now();
        let mut last = started;
        let metrics = &self.metrics;
        let mut node_done = || {
            let t = std::time::Instant::now();
            metrics.observe_node_health_duration((t - last).as_secs_f64());
            last = t;
        };
        let report =
            self.monitor
                .monitor_pass_timed(&self.view, now, &self.settings, fresh, &mut node_done);
        self.metrics
            .observe_all_nodes_health_duration(started.elapsed().as_secs_f64());
        for zone in &report.new_zones {
            self.metrics.init_zone_evictions(zone);
        }
        for zone in &report.vanished_zones {
            self.metrics.set_zone_health(zone, 0, 0);
        }
        for (zone, size, unhealthy) in &report.zone_health {
            self.metrics.set_zone_health(zone, *size, *unhealthy);
        }
        for (zone, state) in &report.zone_changes {
            if *state != ZoneState::Initial {
                info!(zone = %zones::display(zone), state = state.as_str(), "zone state changed");
                self.hooks.zone_state(&zones::display(zone), *state);
            }
        }
        if report.breaker_open != self.breaker_open {
            if report.breaker_open {
                warn!(
                    "more than --max-unhealthy-fraction of all nodes are not Ready: NoExecute tainting paused"
                );
            } else {
                info!("NoExecute tainting resumed");
            }
            self.breaker_open = report.breaker_open;
            self.hooks.breaker(report.breaker_open);
        }
        self.metrics.set_breaker_open(report.breaker_open);
        self.act(report.actions);
    }

    fn tainting_pass(&mut self) {
        if !self.acting {
            return;
        }
        let now = self.clock.now();
        // The staleness verdict of the last monitor pass holds until the next one; while the
        // guard has doubts and is reading afresh, no NoExecute taint is added (as when the loop
        // waited for that read).
        let fresh = self.fresh && self.fresh_reads.is_none();
        let started = std::time::Instant::now();
        let actions = self.monitor.tainting_pass(&self.view, now, fresh);
        self.metrics
            .observe_tainting_pass_duration(started.elapsed().as_secs_f64());
        for a in &actions {
            if let Action::Event(e) = a
                && e.reason == "NoExecuteTaintingPaused"
            {
                self.metrics.breaker_held_node();
            }
        }
        self.act(actions);
    }
}
