//! The control loop: one task owns the caches and the decision state, and dispatches, in a
//! fixed priority order, shutdown, leadership changes, its timers and the watch deliveries.
//! Every decision is a call into `logic`; the writer applies the actions in tasks of its own.

use super::fresh_reads::{self, InFlight};
use super::leader_election::Contact;
use super::leadership::Leadership;
use super::lean_node::lean_node;
use super::observer::Observer;
use super::questions::{self, Inbox, Question};
use super::reflector::{Cache, Listing, Reflector};
use super::tasks::Tasks;
use super::watch::{self, Resource, ResourceEvent, StampedEvent};
use super::writer::{Cached, Writer};
use crate::cache::{CachedPod, PodCache, WatchedPod};
use crate::clock::Clock;
use crate::cluster::Cluster;
use crate::logic::actions::Action;
use crate::logic::eviction::TaintManager;
use crate::logic::explain::Role;
use crate::logic::freshness::{Check, Finding, Guard, Heartbeats};
use crate::logic::monitor::Monitor;
use crate::logic::sanity::LeaseCheck;
use crate::logic::view::{self, ClusterView, PodKey};
use crate::logic::zones::{self, ZoneState};
use crate::logic::{conditions, taints, time};
use crate::metrics::Metrics;
use crate::settings::{NODE_EVICTION_PERIOD, Settings};
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use std::collections::BTreeSet;
use std::mem::take;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch as tokio_watch};
use tokio::time::Instant;
use tracing::{error, info, warn};

/// Watch events waiting for the control loop at most. A full inbox holds the watch tasks back,
/// and so the reading of their responses (an unbounded one held every decoded pod of a fast
/// streaming list).
const INBOX: usize = 4096;

/// The next question, or never without a question channel.
async fn next_question(inbox: &mut Option<Inbox>) -> Option<Question> {
    match inbox {
        Some(inbox) => inbox.questions.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The watched resources.
struct Watches {
    nodes: Reflector<Node, String>,
    leases: Reflector<Lease, String>,
    pods: Reflector<WatchedPod, PodKey>,
}

impl Watches {
    fn synced(&self) -> bool {
        self.nodes.synced && self.leases.synced && self.pods.synced
    }

    fn generation(&self, r: Resource) -> u64 {
        match r {
            Resource::Nodes => self.nodes.generation,
            Resource::Leases => self.leases.generation,
            Resource::Pods => self.pods.generation,
        }
    }
}

/// Everything the loop decides with: the caches and the decision state.
struct State<C: Cluster> {
    clock: Arc<dyn Clock>,
    settings: Settings,
    observer: Arc<dyn Observer>,
    metrics: Arc<Metrics>,
    writer: Writer<C>,
    view: ClusterView<PodCache>,
    monitor: Monitor,
    taint_manager: TaintManager,
    leadership: Leadership,
    /// The staleness guard's view of the Lease and Node watches.
    guard: Guard,
    /// The staleness guard's last verdict.
    fresh: bool,
    /// The leader election's last word was that the API server did not answer it: an outage
    /// is not over, whatever a monitor pass read, until the election is answered again.
    election_away: bool,
    breaker_open: bool,
    /// The "no node has a Lease" check (a wrong `--node-lease-namespace`).
    lease_check: LeaseCheck,
}

pub struct EventLoop<C: Cluster> {
    cluster: C,
    tasks: Tasks,
    inbox_tx: mpsc::Sender<StampedEvent>,
    inbox: mpsc::Receiver<StampedEvent>,
    watches: Watches,
    state: State<C>,
    next_monitor: Option<Instant>,
    next_taint: Option<Instant>,
    /// The staleness guard's reads afresh, when a monitor pass waits for them.
    fresh_reads: Option<InFlight>,
    /// The leader election's news of the API server's answers.
    contact: mpsc::UnboundedReceiver<Contact>,
    /// `status` and `explain` questions from the admin port, when it serves them.
    questions: Option<Inbox>,
}

impl<C: Cluster> EventLoop<C> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cluster: C,
        clock: Arc<dyn Clock>,
        settings: Settings,
        observer: Arc<dyn Observer>,
        metrics: Arc<Metrics>,
        writer: Writer<C>,
        tasks: Tasks,
        (leader, contact): (tokio_watch::Receiver<u64>, mpsc::UnboundedReceiver<Contact>),
    ) -> Self {
        let (inbox_tx, inbox) = mpsc::channel(INBOX);
        let mut event_loop = EventLoop {
            cluster,
            tasks,
            inbox_tx,
            inbox,
            watches: Watches {
                nodes: Reflector::new(Listing::Buffered),
                leases: Reflector::new(Listing::Buffered),
                pods: Reflector::new(Listing::AsTheyArrive),
            },
            state: State {
                clock,
                settings,
                observer,
                metrics,
                writer,
                view: ClusterView::default(),
                monitor: Monitor::new(),
                taint_manager: TaintManager::new(),
                leadership: Leadership::new(leader),
                guard: Guard::default(),
                fresh: true,
                election_away: false,
                breaker_open: false,
                lease_check: LeaseCheck::default(),
            },
            next_monitor: None,
            next_taint: None,
            fresh_reads: None,
            contact,
            questions: None,
        };
        for r in [Resource::Nodes, Resource::Leases, Resource::Pods] {
            event_loop.start_watch(r);
        }
        event_loop
    }

    /// Answers `status` and `explain` questions from now on.
    pub fn answer_questions(&mut self, inbox: Inbox) {
        self.questions = Some(inbox);
    }

    /// (Re)starts the watch of `r`; events of its previous stream are ignored from now on.
    fn start_watch(&mut self, r: Resource) {
        let (cluster, tasks, tx) = (&self.cluster, &self.tasks, self.inbox_tx.clone());
        let spawn = |handle: tokio::task::JoinHandle<()>| {
            let abort = handle.abort_handle();
            tasks.track(abort.clone());
            abort
        };
        // Objects are stripped before queueing, so a burst waiting in the inbox holds lean copies.
        match r {
            Resource::Nodes => self.watches.nodes.restart(|generation| {
                spawn(watch::forward(
                    cluster.watch_nodes(),
                    generation,
                    tx,
                    r,
                    |e| {
                        ResourceEvent::Node(Box::new(
                            e.modify(|node| *node = lean_node(take(node))),
                        ))
                    },
                ))
            }),
            Resource::Leases => {
                let namespace = &self.state.settings.node_lease_namespace;
                self.watches.leases.restart(|generation| {
                    let stream = cluster.watch_leases(namespace);
                    spawn(watch::forward(stream, generation, tx, r, |e| {
                        ResourceEvent::Lease(Box::new(
                            e.modify(|lease| lease.metadata.managed_fields = None),
                        ))
                    }))
                })
            }
            Resource::Pods => self.watches.pods.restart(|generation| {
                spawn(watch::forward(
                    cluster.watch_pods(),
                    generation,
                    tx,
                    r,
                    |e| ResourceEvent::Pod(Box::new(e)),
                ))
            }),
        };
        if let Some(w) = heartbeats(r) {
            self.state
                .guard
                .watch_mut(w)
                .restarted(self.state.clock.now());
        }
    }

    /// Runs until `shutdown` turns true (or its sender goes).
    pub async fn run(&mut self, mut shutdown: tokio_watch::Receiver<bool>) {
        let period = self.state.settings.node_monitor_period;
        loop {
            if *shutdown.borrow() {
                info!("shutting down: no new work");
                return;
            }
            let next_due = self.next_eviction();
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
                Some(contact) = self.contact.recv() => self.state.election_heard(contact),
                _ = self.state.leadership.changed() => self.leadership_changed(),
                _ = sleep_until_opt(self.next_monitor) => {
                    self.catch_up().await;
                    self.next_monitor = None;
                    // `None`: the pass runs when the reads are answered (the branch below).
                    if let Some(fresh) = self.check_heartbeats() {
                        self.state.monitor_pass(fresh);
                        self.next_monitor = Some(Instant::now() + period);
                    }
                }
                (span, answers) = fresh_reads::answers(&mut self.fresh_reads, &*self.state.clock) => {
                    self.fresh_reads = None;
                    self.catch_up().await;
                    self.reads_answered(span, answers);
                }
                _ = sleep_until_opt(self.next_taint) => {
                    self.catch_up().await;
                    // Once more: the writes the events just applied called for (a freshly
                    // marked node's NoSchedule taints) may land first, and a zone taint then
                    // need not wait behind them (`Monitor::tainting_pass`).
                    self.catch_up().await;
                    self.take_answered_reads();
                    let reading = self.fresh_reads.is_some();
                    self.state.tainting_pass(reading);
                    self.next_taint = Some(Instant::now() + NODE_EVICTION_PERIOD);
                }
                _ = sleep_until_opt(next_due) => {
                    self.catch_up().await;
                    let actions = self.state.taint_manager.fire_due(self.state.clock.now());
                    self.state.act(actions);
                }
                // Last: a steady stream of watch events (Lease renewals) must not hold back a
                // due timer; each timer drains the inbox first anyway.
                Some(delivery) = self.inbox.recv() => {
                    self.deliver(delivery);
                    if self.state.leadership.can_start(self.watches.synced()) {
                        self.start_acting();
                    }
                }
                // After everything, watch events included: questions (at most 16 waiting)
                // can never hold the controller's own work back, only wait for a lull.
                Some(question) = next_question(&mut self.questions) => self.answer(question),
            }
        }
    }

    /// Answers a question from the state decisions are made with (`controller::questions`).
    fn answer(&self, question: Question) {
        let state = &self.state;
        let role = if state.leadership.acting() {
            Role::Leader
        } else if state.leadership.leading() {
            Role::Starting
        } else {
            let leader = self
                .questions
                .as_ref()
                .and_then(|q| q.holder.borrow().clone());
            Role::Standby { leader }
        };
        let memory = questions::Memory {
            view: &state.view,
            monitor: &state.monitor,
            taint_manager: &state.taint_manager,
            settings: &state.settings,
            guard: &state.guard,
            trusted: state.fresh,
            role,
        };
        let answer = questions::answer(&question.ask, &memory, state.clock.now());
        let _ = question.reply.send(answer);
    }

    /// When the next eviction falls due.
    fn next_eviction(&self) -> Option<Instant> {
        if !self.state.leadership.acting() {
            return None;
        }
        let next = self.state.taint_manager.next_due()?;
        Some(self.state.clock.instant_at(next))
    }

    /// Before a timed pass: every watch event already waiting is applied first.
    async fn catch_up(&mut self) {
        self.cluster.caught_up().await;
        while let Ok(delivery) = self.inbox.try_recv() {
            self.deliver(delivery);
        }
    }

    fn leadership_changed(&mut self) {
        let stepped_down = self.state.leadership.stepped_down();
        self.state
            .observer
            .readiness(self.watches.synced(), self.state.leadership.leading());
        if stepped_down {
            // What was decided in the old term, and dropped by the writer meanwhile, is void.
            // Observations are kept.
            warn!("lost leadership: stopped acting");
            self.drop_fresh_reads();
            self.next_monitor = None;
            self.next_taint = None;
            self.state.stand_down();
        }
        if self.state.leadership.can_start(self.watches.synced()) {
            self.start_acting();
        }
    }

    /// Leader with synced caches: start the passes and schedule every pod on a tainted node.
    fn start_acting(&mut self) {
        let state = &mut self.state;
        info!(
            nodes = state.view.nodes.len(),
            pods = state.view.pods.len(),
            "caches synced and leading: acting"
        );
        state.leadership.start();
        self.drop_fresh_reads();
        self.state.monitor.restart_passes();
        let now = Instant::now();
        self.next_monitor = Some(now);
        self.next_taint = Some(now);
        self.state.reconcile_all();
        self.state.reconcile_node_updates();
    }

    fn deliver(&mut self, delivery: StampedEvent) {
        let now = self.state.clock.now();
        let resource = delivery.event.resource();
        if delivery.generation != self.watches.generation(resource) {
            return;
        }
        let update = &mut CacheUpdate {
            state: &mut self.state,
            now,
        };
        match delivery.event {
            ResourceEvent::Error(r, e) => {
                warn!(resource = r.name(), error = %e, "watch failed; it will re-list");
                // A heartbeat watch cut or refused: renewals may be missed until it is back. An
                // answer (410 Gone after a restart, 403) is not an outage.
                if let Some(w) = heartbeats(r) {
                    let unanswered = matches!(e, crate::cluster::ApiError::Unavailable(_));
                    self.state.guard.watch_failed(w, now, unanswered);
                }
                return;
            }
            ResourceEvent::Node(ev) => self.watches.nodes.handle(*ev, update),
            ResourceEvent::Lease(ev) => self.watches.leases.handle(*ev, update),
            ResourceEvent::Pod(ev) => self.watches.pods.handle(*ev, update),
        }
        if let Some(w) = heartbeats(resource) {
            self.state.guard.delivered(w, now);
        }
        let state = &self.state;
        state.metrics.watches.event(resource.name());
        state
            .observer
            .readiness(self.watches.synced(), state.leadership.leading());
        let cached = match resource {
            Resource::Nodes => state.view.nodes.len(),
            Resource::Leases => state.view.leases.len(),
            Resource::Pods => state.view.pods.len(),
        };
        state
            .metrics
            .watches
            .set_cache_size(resource.name(), cached);
    }

    /// The staleness guard before a monitor pass: its verdict, or `None` when it started reads
    /// afresh (judged by `judge_fresh_reads` when answered, so the loop never waits on the API).
    fn check_heartbeats(&mut self) -> Option<bool> {
        let state = &mut self.state;
        if !state.leadership.acting() {
            return Some(state.fresh);
        }
        let now = state.clock.now();
        let grace = state.settings.node_monitor_grace_period;
        let period = state.settings.node_monitor_period;
        let what = match state.guard.check(now, grace, period) {
            Check::Verdict(fresh) => return Some(fresh),
            Check::Read(what) => what,
        };
        let limit = (grace / 2).min(Duration::from_secs(10));
        let reads = fresh_reads::read(
            &self.cluster,
            &state.settings.node_lease_namespace,
            what.clone(),
            limit,
        );
        self.fresh_reads = Some(InFlight::spawn(state.clock.clone(), what, reads));
        None
    }

    /// The monitor pass waiting for reads that were answered by now (a tainting pass that
    /// coincides with the monitor pass then has its verdict, not the doubt of reads in flight).
    fn take_answered_reads(&mut self) {
        let Some((span, answers)) =
            fresh_reads::answered(&mut self.fresh_reads, &*self.state.clock)
        else {
            return;
        };
        self.fresh_reads = None;
        self.reads_answered(span, answers);
    }

    /// The monitor pass that waited for the staleness guard's reads, with their verdict.
    fn reads_answered(&mut self, span: fresh_reads::Span, answers: fresh_reads::Answers) {
        let fresh = self.judge_fresh_reads(span, answers);
        self.state.monitor_pass(fresh);
        self.next_monitor = Some(Instant::now() + self.state.settings.node_monitor_period);
    }

    /// Judges the reads afresh sent and answered at `span`: whether the heartbeat data can be
    /// trusted; a watch whose objects moved on is restarted.
    fn judge_fresh_reads(
        &mut self,
        span: fresh_reads::Span,
        answers: fresh_reads::Answers,
    ) -> bool {
        let view = &self.state.view;
        let grace = self.state.settings.node_monitor_grace_period;
        let (fresh, findings) = self
            .state
            .guard
            .judge(span, grace, answers, |w, listed| match w {
                Heartbeats::Leases => view::moved_on(&view.leases, listed),
                Heartbeats::Nodes => view::moved_on(&view.nodes, listed),
            });
        for (w, finding) in findings {
            let r = resource(w);
            let report = |stale| self.state.observer.watch_stale(r.name(), stale);
            match finding {
                Finding::Relisting => {}
                Finding::Fresh => report(false),
                Finding::MovedOn => {
                    warn!(
                        resource = r.name(),
                        "watch is stale: the API server has moved on; restarting it and holding back"
                    );
                    report(true);
                    self.state.metrics.watches.restarted(r.name());
                    self.start_watch(r);
                }
                Finding::Unconfirmed(e) => {
                    warn!(resource = r.name(), error = %e, "cannot confirm the watch is fresh: holding back");
                    report(true);
                }
            }
        }
        fresh
    }

    /// Drops the staleness guard's reads in flight, whose verdict is not needed any more.
    fn drop_fresh_reads(&mut self) {
        if let Some(reads) = self.fresh_reads.take() {
            self.state.guard.forget_reads(&reads.what);
        }
    }
}

/// The staleness guard's name for a watch it checks.
fn heartbeats(r: Resource) -> Option<Heartbeats> {
    match r {
        Resource::Nodes => Some(Heartbeats::Nodes),
        Resource::Leases => Some(Heartbeats::Leases),
        Resource::Pods => None,
    }
}

fn resource(w: Heartbeats) -> Resource {
    match w {
        Heartbeats::Nodes => Resource::Nodes,
        Heartbeats::Leases => Resource::Leases,
    }
}

/// The writer starts from the copies the passes decided on.
impl Cached for ClusterView<PodCache> {
    fn node(&self, name: &str) -> Option<Node> {
        self.nodes.get(name).cloned()
    }
    fn pod(&self, namespace: &str, name: &str) -> Option<Pod> {
        let pod = self
            .pods
            .get(&crate::logic::pod::key_of(Some(namespace), name))?;
        Some(pod.to_pod())
    }
    fn leases(&self) -> usize {
        self.leases.len()
    }
}

impl<C: Cluster> State<C> {
    fn acting(&self) -> bool {
        self.leadership.acting()
    }

    fn act(&self, actions: Vec<Action>) {
        if self.acting() && !actions.is_empty() {
            self.writer.submit_seen(actions, &self.view);
        }
    }

    /// Acting stopped: forget what only the leader's passes keep, and let a standby show none
    /// of it (alerts take the maximum over replicas).
    fn stand_down(&mut self) {
        self.observer.stood_down();
        for w in [Heartbeats::Nodes, Heartbeats::Leases] {
            self.clear_stale(w);
        }
        if self.breaker_open {
            self.observer.breaker(false);
            self.breaker_open = false;
        }
        if self.lease_check.reported() {
            self.observer.suspicion("node_leases", None);
        }
        self.lease_check = LeaseCheck::default();
        self.taint_manager = TaintManager::new();
        let now = self.clock.now();
        for node in self.view.nodes.values() {
            self.taint_manager.node_seen(None, node, now, true);
        }
        for pod in self.view.pods.values() {
            self.taint_manager.pod_seen(None, &pod.facts(), now, true);
        }
    }

    /// What the leader election heard: evidence of an outage, or answers again. An outage ends
    /// at the first trusted monitor pass while the election is answered, or at the election's
    /// first prompt answer (a standby has only the election). The election reports changes
    /// only: after an outage a trusted pass ended while the election still went unanswered
    /// (one outage running into another, say a refused connection, then a restart), its next
    /// word is the answer that ends the second.
    fn election_heard(&mut self, contact: Contact) {
        match contact {
            Contact::Unanswered(at) => {
                self.election_away = true;
                self.guard.api_away(at);
            }
            Contact::Answered(at) => {
                self.election_away = false;
                self.api_answered(at);
            }
        }
    }

    /// Fresh answers at `now` end an outage in progress: no node's silence before `now` counts
    /// (docs/differences.md#control-plane-outages).
    fn api_answered(&mut self, now: Timestamp) {
        if let Some(since) = self.guard.api_answered() {
            let away = time::since(now, since);
            warn!(
                away_seconds = away.as_secs_f64(),
                "the API server answers again after an outage: every node's grace period counts from now"
            );
            self.metrics.watches.outage_ended();
            self.monitor.api_answered(now);
        }
    }

    /// A watch re-listing by itself (after an error) is as stale as a restarted one.
    fn relist_started(&mut self, w: Heartbeats) {
        self.guard.watch_mut(w).relisting = true;
    }

    /// A watch's complete list arrived: whatever the guard said of it, its cache is as fresh
    /// as the server's. Without this, a restarted watch that is busy again (Lease renewals) is
    /// never quiet long enough to be checked, and its stale flag would stay up for good.
    fn relisted(&mut self, w: Heartbeats) {
        if self.guard.watch_mut(w).listed() {
            self.observer.watch_stale(resource(w).name(), false);
        }
    }

    fn clear_stale(&mut self, w: Heartbeats) {
        if take(&mut self.guard.watch_mut(w).stale) {
            self.observer.watch_stale(resource(w).name(), false);
        }
    }

    /// The condition taints and beta labels of every node, as on a node update. Node updates
    /// seen while not acting changed nothing, and a kubelet with a Lease posts its status only
    /// every few minutes: without this, a Ready node could keep admission's `not-ready`
    /// NoSchedule taint for minutes after a start or a takeover.
    fn reconcile_node_updates(&mut self) {
        let now = self.clock.now();
        let actions: Vec<Action> = self
            .view
            .nodes
            .values()
            .flat_map(|node| self.monitor.node_updated(node, now))
            .collect();
        self.act(actions);
    }

    /// Reconciles the evictions of every node that can have some: those with NoExecute taints
    /// or with pods whose deletion is scheduled or issued (for the others it is a no-op, and
    /// rebuilding their pods is most of the cost of a first sync).
    fn reconcile_all(&mut self) {
        if !self.acting() {
            return;
        }
        let now = self.clock.now();
        let mut actions = Vec::new();
        let busy: BTreeSet<&str> = self
            .taint_manager
            .pods_with_deletions()
            .filter_map(|key| self.view.pods.get(key)?.node())
            .collect();
        let nodes: Vec<String> = self
            .view
            .pods
            .nodes()
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

    fn node_deleted(&mut self, name: &str) {
        self.view.nodes.remove(name);
        self.taint_manager.node_gone(name);
        if self.acting() {
            let now = self.clock.now();
            let pods = self.view.pods_on(name);
            let actions = self.taint_manager.reconcile(name, None, &pods, now);
            self.act(actions);
        }
    }

    fn pod_deleted(&mut self, key: &str) {
        self.writer.pod_gone(key);
        let Some(pod) = self.view.pods.remove(key) else {
            return;
        };
        let actions = self.taint_manager.pod_gone(pod.namespace(), pod.name());
        self.act(actions);
    }

    /// The monitor pass, with the staleness guard's verdict.
    fn monitor_pass(&mut self, fresh: bool) {
        if !self.acting() {
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
                self.observer.suspicion("node_leases", Some(detail));
            }
            Some(false) => {
                info!("node Leases are seen again: Unknown marking resumes");
                self.observer.suspicion("node_leases", None);
            }
            None => {}
        }
        if fresh && !self.election_away {
            self.api_answered(now);
        }
        // No node with a Lease: the heartbeat data is not to be trusted, as with a stale watch.
        // Nor while the election goes unanswered: the outage is not over.
        let fresh = fresh && !leases.hold && !self.election_away;
        self.fresh = fresh;
        let started = std::time::Instant::now();
        let mut last = started;
        let metrics = &self.metrics.monitor;
        let mut node_done = || {
            let t = std::time::Instant::now();
            metrics.observe_node_health_duration((t - last).as_secs_f64());
            last = t;
        };
        let report =
            self.monitor
                .monitor_pass_timed(&self.view, now, &self.settings, fresh, &mut node_done);
        self.metrics
            .monitor
            .observe_all_nodes_health_duration(started.elapsed().as_secs_f64());
        for zone in &report.new_zones {
            self.metrics.monitor.init_zone_evictions(zone);
        }
        for zone in &report.vanished_zones {
            self.metrics.monitor.set_zone_health(zone, 0, 0);
        }
        for (zone, size, unhealthy) in &report.zone_health {
            self.metrics
                .monitor
                .set_zone_health(zone, *size, *unhealthy);
        }
        for (zone, state) in &report.zone_changes {
            if *state != ZoneState::Initial {
                info!(zone = %zones::display(zone), state = state.as_str(), "zone state changed");
                self.observer.zone_state(&zones::display(zone), *state);
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
            self.observer.breaker(report.breaker_open);
        }
        self.act(report.actions);
    }

    /// The NoExecute tainting pass; `reading`: the guard has doubts and reads afresh.
    fn tainting_pass(&mut self, reading: bool) {
        if !self.acting() {
            return;
        }
        let now = self.clock.now();
        // The last monitor pass's verdict holds until the next one; while the guard reads
        // afresh, no NoExecute taint is added (as when the loop waited for that read).
        let fresh = self.fresh && !reading;
        let started = std::time::Instant::now();
        let dry_run = self.settings.dry_run;
        let actions = self.monitor.tainting_pass(&self.view, now, fresh, dry_run);
        self.metrics
            .monitor
            .observe_tainting_pass_duration(started.elapsed().as_secs_f64());
        for a in &actions {
            if let Action::Event(e) = a
                && e.reason == "NoExecuteTaintingPaused"
            {
                self.metrics.monitor.breaker_held_node();
            }
        }
        self.act(actions);
    }
}

/// A watch event's update of the caches and the decision state, at `now` (one `Cache` per
/// resource).
struct CacheUpdate<'a, C: Cluster> {
    state: &'a mut State<C>,
    now: Timestamp,
}

/// The Node watch's cache.
impl<C: Cluster> Cache<Node> for CacheUpdate<'_, C> {
    type Key = String;

    fn apply(&mut self, node: Node, listing: bool) -> Option<String> {
        let (state, now) = (&mut *self.state, self.now);
        let name = node.metadata.name.clone()?;
        state.monitor.observe_node(&node, now, &state.settings);
        let old = state.view.nodes.insert(name.clone(), node);
        let node = &state.view.nodes[&name];
        state
            .writer
            .node_changed(&name, conditions::ready_heartbeat(node));
        state
            .taint_manager
            .node_seen(old.as_ref(), node, now, listing);
        if !state.acting() {
            return Some(name);
        }
        let mut actions = state.monitor.node_updated(node, now);
        let taints_changed =
            old.as_ref().map(taints::no_execute_taints) != Some(taints::no_execute_taints(node));
        if taints_changed && !listing {
            let pods = state.view.pods_on(&name);
            actions.extend(state.taint_manager.reconcile(&name, Some(node), &pods, now));
        }
        state.act(actions);
        Some(name)
    }

    fn key_of(node: &Node) -> Option<String> {
        node.metadata.name.clone()
    }

    fn delete(&mut self, name: &str) {
        self.state.node_deleted(name);
    }

    fn vanished(&self, listed: &BTreeSet<String>) -> Vec<String> {
        view::vanished(&self.state.view.nodes, listed)
    }

    fn list_started(&mut self) {
        self.state.relist_started(Heartbeats::Nodes);
    }

    fn listed(&mut self) {
        self.state.relisted(Heartbeats::Nodes);
        self.state.reconcile_all();
    }
}

/// The Lease watch's cache.
impl<C: Cluster> Cache<Lease> for CacheUpdate<'_, C> {
    type Key = String;

    fn apply(&mut self, lease: Lease, _listing: bool) -> Option<String> {
        self.state.monitor.observe_lease(&lease, self.now);
        let name = lease.metadata.name.clone()?;
        self.state.writer.lease_changed(&name);
        self.state.view.leases.insert(name.clone(), lease);
        Some(name)
    }

    fn key_of(lease: &Lease) -> Option<String> {
        lease.metadata.name.clone()
    }

    fn delete(&mut self, name: &str) {
        self.state.view.leases.remove(name);
    }

    fn vanished(&self, listed: &BTreeSet<String>) -> Vec<String> {
        view::vanished(&self.state.view.leases, listed)
    }

    fn list_started(&mut self) {
        self.state.relist_started(Heartbeats::Leases);
    }

    fn listed(&mut self) {
        self.state.relisted(Heartbeats::Leases);
    }
}

/// The Pod watch's cache.
impl<C: Cluster> Cache<WatchedPod> for CacheUpdate<'_, C> {
    type Key = PodKey;

    /// Caches a pod and schedules what it calls for.
    fn apply(&mut self, pod: WatchedPod, listing: bool) -> Option<PodKey> {
        let (state, now) = (&mut *self.state, self.now);
        let (key, old) = state.view.pods.put(pod);
        let pod = &state.view.pods[&key];
        if !listing {
            state.writer.pod_changed(&key, || pod.to_pod());
        }
        let seen_before = old.as_ref().map(CachedPod::facts);
        state
            .taint_manager
            .pod_seen(seen_before.as_ref(), &pod.facts(), now, listing);
        if !state.acting() || listing || old.is_some_and(|old| !old.schedule_differs(pod)) {
            return Some(key);
        }
        if let Some(node_name) = pod.node() {
            let actions = state.taint_manager.reconcile(
                node_name,
                state.view.nodes.get(node_name),
                &[pod.facts()],
                now,
            );
            state.act(actions);
        }
        Some(key)
    }

    fn key_of(pod: &WatchedPod) -> Option<PodKey> {
        Some(pod.key().into())
    }

    fn delete(&mut self, key: &str) {
        self.state.pod_deleted(key);
    }

    fn vanished(&self, listed: &BTreeSet<PodKey>) -> Vec<String> {
        view::vanished(self.state.view.pods.by_key(), listed)
    }

    fn listed(&mut self) {
        // Strings and toleration lists only the vanished pods used.
        self.state.view.pods.prune();
        self.state.reconcile_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::TokioClock;
    use crate::logic::taints::NOT_READY;
    use crate::sim::kubelet::NODE_LEASE_NAMESPACE as NODE_LEASE;
    use crate::sim::{SimCluster, Store, world};
    use k8s_openapi::api::core::v1::{NodeCondition, NodeSpec, NodeStatus, Taint};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};

    /// A Ready node still carrying admission's `not-ready` NoSchedule taint: the first thing
    /// an acting controller writes is that taint's removal.
    fn ready_node_with_not_ready_taint(store: &Store) {
        let mut node = Node::default();
        node.metadata.name = Some("n".into());
        node.spec = Some(NodeSpec {
            taints: Some(vec![Taint {
                key: NOT_READY.into(),
                effect: "NoSchedule".into(),
                ..Default::default()
            }]),
            ..Default::default()
        });
        node.status = Some(NodeStatus {
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: "True".into(),
                last_heartbeat_time: Some(Time(store.now())),
                ..Default::default()
            }]),
            ..Default::default()
        });
        store.create_node(&node).unwrap();
    }

    fn tainted(store: &Store) -> bool {
        let node = store.get_node("n").unwrap();
        let taints = node.spec.and_then(|s| s.taints).unwrap_or_default();
        taints.iter().any(|t| t.key == NOT_READY)
    }

    /// A store holding `ready_node_with_not_ready_taint`, and a control loop on it, leading
    /// while its term (the sender) is not 0; the loop's tasks end with the guard.
    fn start(
        term: u64,
    ) -> (
        Store,
        tokio_watch::Sender<u64>,
        super::super::tasks::AbortOnDrop,
        EventLoop<SimCluster>,
    ) {
        let store = Store::new(TokioClock::starting_at(world::epoch()));
        ready_node_with_not_ready_taint(&store);
        let (term_tx, term) = tokio_watch::channel(term);
        let tasks = Tasks::default();
        let guard = tasks.abort_on_drop();
        let cluster = SimCluster::new(store.clone());
        let clock: Arc<dyn Clock> = Arc::new(store.clock());
        let settings = Settings::default();
        let metrics = Arc::new(Metrics::new());
        let writer = Writer::new(
            cluster.clone(),
            clock.clone(),
            metrics.clone(),
            &settings,
            term.clone(),
            tasks.clone(),
        );
        let observer = Arc::new(crate::controller::NoObserver);
        let (_, contact) = mpsc::unbounded_channel();
        let event_loop = EventLoop::new(
            cluster,
            clock,
            settings,
            observer,
            metrics,
            writer,
            tasks,
            (term, contact),
        );
        (store, term_tx, guard, event_loop)
    }

    /// Runs `event_loop` for `seconds` of virtual time.
    async fn run_for(event_loop: &mut EventLoop<SimCluster>, seconds: u64) {
        run_until(event_loop, Duration::from_secs(seconds)).await;
    }

    /// Runs `event_loop` for `time` of virtual time.
    async fn run_until(event_loop: &mut EventLoop<SimCluster>, time: Duration) {
        let (_stop, shutdown) = tokio_watch::channel(false);
        let _ = tokio::time::timeout(time, event_loop.run(shutdown)).await;
    }

    /// Ready node `name` (no taints) with its Lease, both renewed now.
    fn node_with_lease(store: &Store, name: &str) {
        let mut node = Node::default();
        node.metadata.name = Some(name.into());
        node.status = Some(NodeStatus {
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: "True".into(),
                last_heartbeat_time: Some(Time(store.now())),
                ..Default::default()
            }]),
            ..Default::default()
        });
        store.create_node(&node).unwrap();
        let lease = crate::sim::kubelet::node_lease(name, store, store.now());
        store.create_lease(&lease).unwrap();
    }

    fn no_execute_taints(store: &Store, name: &str) -> Vec<String> {
        let node = store.get_node(name).unwrap();
        let taints = node.spec.and_then(|s| s.taints).unwrap_or_default();
        taints
            .into_iter()
            .filter(|t| t.effect == crate::logic::taints::NO_EXECUTE)
            .map(|t| t.key)
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_found_silent_by_a_pass_that_reads_afresh_is_tainted_at_that_instant() {
        let (store, _term, _guard, mut event_loop) = start(1);
        node_with_lease(&store, "silent");
        node_with_lease(&store, "alive");
        run_for(&mut event_loop, 30).await;
        // "alive" keeps its zone from looking fully disrupted when "silent" goes Unknown.
        let mut lease = store.get_lease(NODE_LEASE, "alive").unwrap();
        lease.spec.as_mut().unwrap().renew_time = Some(MicroTime(store.now()));
        store.replace_lease(&lease).unwrap();
        run_for(&mut event_loop, 32).await;
        // "silent" is marked Unknown at 55 s (past its 50 s grace) and its NoExecute taint is
        // due at 65 s; the pass at 65 s must read afresh first.
        for w in [Heartbeats::Leases, Heartbeats::Nodes] {
            let watch = event_loop.state.guard.watch_mut(w);
            (watch.last_delivery, watch.last_check) = (None, None);
        }
        run_until(&mut event_loop, Duration::from_millis(3_050)).await;
        assert_eq!(
            no_execute_taints(&store, "silent"),
            [crate::logic::taints::UNREACHABLE],
            "tainted in the instant of the pass, not by the tainting pass after it"
        );
        assert!(no_execute_taints(&store, "alive").is_empty());
    }

    /// The kubelet of `name` renews its Lease now.
    fn renew(store: &Store, name: &str) {
        let mut lease = store.get_lease(NODE_LEASE, name).unwrap();
        lease.spec.as_mut().unwrap().renew_time = Some(MicroTime(store.now()));
        store.replace_lease(&lease).unwrap();
    }

    fn ready(store: &Store, name: &str) -> String {
        let node = store.get_node(name).unwrap();
        conditions::condition(&node, "Ready")
            .map(|c| c.status.clone())
            .unwrap_or_default()
    }

    /// Nodes `alive-0`, `alive-1` (renewing until the outage, and 5 s after it, as a
    /// kubelet's backoff has it) and `dead` (silent from the start); an outage from 20 s to
    /// 80 s, longer than the 50 s grace period.
    async fn through_an_outage(event_loop: &mut EventLoop<SimCluster>, store: &Store) {
        for name in ["alive-0", "alive-1", "dead"] {
            node_with_lease(store, name);
        }
        run_for(event_loop, 20).await;
        renew(store, "alive-0");
        renew(store, "alive-1");
        store.begin_outage();
        run_for(event_loop, 60).await;
        store.end_outage();
        run_for(event_loop, 5).await;
        renew(store, "alive-0");
        renew(store, "alive-1");
    }

    #[tokio::test(start_paused = true)]
    async fn time_the_api_was_away_marks_no_node_but_a_dead_one_is_marked_a_grace_period_after() {
        let (store, _term, _guard, mut event_loop) = start(1);
        through_an_outage(&mut event_loop, &store).await;
        // 85 s: the renewals that the outage held back have landed; 129 s: just short of a
        // full grace period after the outage ended (80 s + 50 s).
        run_for(&mut event_loop, 44).await;
        for name in ["alive-0", "alive-1"] {
            assert_eq!(ready(&store, name), "True", "{name} marked");
        }
        assert_eq!(
            ready(&store, "dead"),
            "True",
            "marked before 50 s after the outage"
        );
        // A pass every 5 s: marked within a period (and a second) of its grace.
        run_for(&mut event_loop, 7).await;
        assert_eq!(ready(&store, "dead"), "Unknown", "dead not marked by 136 s");
        assert_eq!(ready(&store, "alive-0"), "True");
    }

    #[tokio::test(start_paused = true)]
    async fn a_standby_whose_election_went_unanswered_counts_silence_from_the_answers() {
        let (store, term, _guard, mut event_loop) = start(0);
        let (contact_tx, contact) = mpsc::unbounded_channel();
        event_loop.contact = contact;
        let at = |s: i64| time::add_secs(world::epoch(), s);
        for name in ["alive-0", "alive-1"] {
            node_with_lease(&store, name);
        }
        run_for(&mut event_loop, 20).await;
        renew(&store, "alive-0");
        renew(&store, "alive-1");
        // A hang from 21 s to 80 s: the watches stay open and quiet, the kubelets' renewals
        // are held back; only the election's requests tell the standby.
        contact_tx.send(Contact::Unanswered(at(21))).unwrap();
        run_for(&mut event_loop, 60).await;
        contact_tx.send(Contact::Answered(at(80))).unwrap();
        run_for(&mut event_loop, 2).await;
        term.send(1).unwrap();
        // It leads from 82 s; the held-back renewals land at 85 s.
        run_for(&mut event_loop, 3).await;
        renew(&store, "alive-0");
        renew(&store, "alive-1");
        run_for(&mut event_loop, 30).await;
        assert!(event_loop.state.leadership.acting());
        for name in ["alive-0", "alive-1"] {
            assert_eq!(ready(&store, name), "True", "{name} marked at the takeover");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_standby_writes_nothing_and_acts_once_it_leads() {
        let (store, term, _guard, mut event_loop) = start(0);
        run_for(&mut event_loop, 10).await;
        assert!(event_loop.watches.synced());
        assert!(tainted(&store), "a standby writes nothing");
        term.send(1).unwrap();
        run_for(&mut event_loop, 10).await;
        assert!(!tainted(&store), "the leader removes the taint");
    }

    #[tokio::test(start_paused = true)]
    async fn stepping_down_stops_acting_and_clears_the_leaders_verdicts() {
        let (_store, term, _guard, mut event_loop) = start(1);
        run_for(&mut event_loop, 10).await;
        assert!(event_loop.state.leadership.acting());
        event_loop.state.guard.nodes.stale = true;
        term.send(0).unwrap();
        run_for(&mut event_loop, 1).await;
        assert!(!event_loop.state.leadership.acting());
        assert!(!event_loop.state.guard.nodes.stale);
        assert!(event_loop.next_monitor.is_none() && event_loop.next_taint.is_none());
    }

    /// A question channel into `event_loop`; `holder` says who holds the election Lease.
    fn questions(
        event_loop: &mut EventLoop<SimCluster>,
        holder: Option<&str>,
    ) -> questions::Questions {
        let (asking, inbox) = questions::channel();
        let (_, holder) = tokio_watch::channel(holder.map(str::to_string));
        event_loop.answer_questions(Inbox {
            questions: inbox,
            holder,
        });
        asking
    }

    /// Asks `ask` while the loop runs for a moment.
    async fn ask(
        event_loop: &mut EventLoop<SimCluster>,
        asking: &questions::Questions,
        ask: questions::Ask,
    ) -> questions::Answer {
        let asking = asking.clone();
        let answer = tokio::spawn(async move { asking.ask(ask).await });
        run_until(event_loop, Duration::from_millis(10)).await;
        answer.await.unwrap().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn the_leader_explains_a_lost_nodes_pod_with_the_due_time_it_is_deleted_at() {
        let (store, _term, _guard, mut event_loop) = start(1);
        let asking = questions(&mut event_loop, None);
        for name in ["lost", "alive-0", "alive-1"] {
            node_with_lease(&store, name);
        }
        let pod = crate::testing::pod("p", "lost")
            .tolerating(crate::logic::taints::UNREACHABLE, Some(30))
            .build();
        store.create_pod(&pod).unwrap();
        // The kubelets of alive-* renew every 10 s; lost's never does.
        for _ in 0..7 {
            run_for(&mut event_loop, 10).await;
            renew(&store, "alive-0");
            renew(&store, "alive-1");
        }
        let ask_pod = questions::Ask::Pod {
            namespace: "default".into(),
            name: "p".into(),
        };
        let questions::Answer::Pod(answer) = ask(&mut event_loop, &asking, ask_pod).await else {
            panic!("not a pod answer");
        };
        assert_eq!(answer.controller.role, Role::Leader);
        let explained = answer.answer.pod.expect("the pod is cached");
        let crate::logic::explain::PodOutcome::DeletionDue {
            due_at, scheduled, ..
        } = explained.outcome
        else {
            panic!("no deletion ahead: {explained:?}");
        };
        assert!(scheduled);
        // Step in 100 ms until the pod is deleted (or marked so).
        let mut deleted_at = None;
        for _ in 0..600 {
            run_until(&mut event_loop, Duration::from_millis(100)).await;
            let gone = store
                .get_pod("default", "p")
                .map_or(true, |p| p.metadata.deletion_timestamp.is_some());
            if gone {
                deleted_at = Some(store.now());
                break;
            }
        }
        let deleted_at = deleted_at.expect("deleted within a minute");
        let off = time::since(deleted_at, due_at).max(time::since(due_at, deleted_at));
        assert!(
            off <= Duration::from_millis(200),
            "explained {due_at}, deleted {deleted_at}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_standby_answers_that_it_is_one_and_who_leads() {
        let (_store, _term, _guard, mut event_loop) = start(0);
        let asking = questions(&mut event_loop, Some("replica-1"));
        run_for(&mut event_loop, 5).await;
        let status = questions::Ask::Status {
            horizon: Duration::from_secs(600),
        };
        let questions::Answer::Status(answer) = ask(&mut event_loop, &asking, status).await else {
            panic!("not a status answer");
        };
        assert_eq!(
            answer.controller.role,
            Role::Standby {
                leader: Some("replica-1".into())
            }
        );
        let (json, _) = questions::Answer::Status(answer).to_json();
        assert!(json.contains("\"leader\": \"replica-1\""), "{json}");
    }
}
