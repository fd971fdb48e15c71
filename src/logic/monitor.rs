//! The node lifecycle controller's passes: the monitor pass (every `--node-monitor-period`), the
//! NoExecute tainting pass (every 100ms) and the per-node-update work (NoSchedule condition
//! taints, beta labels). Upstream's rules, with the amendments of docs/differences.md.

use super::actions::{
    Action, Component, EventRecord, EventType, ObjectRef, PodId, SeenConditions, TaintPurpose,
};
use super::conditions::{self, ConditionStatus};
use super::health::{HealthTracker, NodeSummary};
use super::labels;
use super::rate_limit::{Outcome, ZoneQueue};
use super::taints::{self, NOT_READY, UNREACHABLE};
use super::time;
use super::view::{ClusterView, PodsByNode};
use super::zones::{self, ZoneState};
use crate::settings::Settings;
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::iter::Peekable;
use std::time::Duration;

/// How long the tainting pass waits before retrying a node that has no Ready condition.
const NO_READY_RETRY: Duration = Duration::from_millis(50);

/// How long a NoExecute taint change we asked for is assumed to be on its way.
const PENDING_TTL: Duration = Duration::from_secs(10);

struct Zone {
    state: ZoneState,
    queue: ZoneQueue,
}

/// What a monitor pass found besides its actions (for metrics, logs and hooks).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PassReport {
    pub actions: Vec<Action>,
    /// Zones whose state changed this pass (raw zone key, new state), in key order.
    pub zone_changes: Vec<(String, ZoneState)>,
    /// Every zone counted this pass: (raw zone key, size, unhealthy).
    pub zone_health: Vec<(String, usize, usize)>,
    /// Zones seen for the first time (their eviction counters start at 0).
    pub new_zones: Vec<String>,
    /// Zones that vanished (their gauges go to size 0, health 100).
    pub vanished_zones: Vec<String>,
    /// Whether the `--max-unhealthy-fraction` breaker is open after this pass.
    pub breaker_open: bool,
    /// Whether every zone is fully disrupted (upstream's master disruption mode).
    pub all_zones_down: bool,
    /// Nodes that went Unknown this pass.
    pub marked_unknown: Vec<String>,
}

/// The node lifecycle controller's memory, fed by watch events, consulted by the passes.
#[derive(Default)]
pub struct Monitor {
    health: HealthTracker,
    /// Nodes registered so far, with their UIDs.
    known: BTreeMap<String, String>,
    zones: BTreeMap<String, Zone>,
    /// Nodes we decided to mark Unknown, with the Ready heartbeat that decision saw: until the
    /// kubelet posts a new one, the node counts as Unknown even before our write shows in the
    /// cache (so the flip, its event and pod marking happen once).
    marked_unknown: BTreeMap<String, Option<Timestamp>>,
    /// Our NoExecute taint changes the cache does not show yet: the key we asked for (`None`:
    /// both removed) and when. Trusted for `PENDING_TTL` only, so a taint someone else removes
    /// right after ours landed is noticed.
    pending_taint: BTreeMap<String, (Option<&'static str>, Timestamp)>,
    all_zones_down: bool,
    breaker_open: bool,
    /// Nodes warned about while the breaker is open (one Warning Event per node).
    breaker_warned: BTreeSet<String>,
    /// What the last pass counted for the breaker: not Ready, all counted, the fraction.
    breaker_counts: (usize, usize, f64),
}

fn name_of(node: &Node) -> &str {
    node.metadata.name.as_deref().unwrap_or("")
}

fn uid_of(node: &Node) -> String {
    node.metadata.uid.clone().unwrap_or_default()
}

fn node_event(node: &Node, event_type: EventType, reason: &str, message: String) -> Action {
    Action::Event(EventRecord {
        component: Component::NodeController,
        object: ObjectRef::node(name_of(node), node.metadata.uid.clone()),
        event_type,
        reason: reason.to_string(),
        message,
    })
}

/// The cached node's conditions and the resourceVersion they belong to (`None` without one),
/// with its cached Lease's resourceVersion.
fn seen_conditions(node: &Node, lease: Option<&Lease>) -> Option<SeenConditions> {
    Some(SeenConditions {
        lease_version: lease.and_then(|l| l.metadata.resource_version.clone()),
        resource_version: node.metadata.resource_version.clone()?,
        created: node.metadata.creation_timestamp.as_ref().map(|t| t.0),
        conditions: node
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default(),
    })
}

/// The Warning Event a pod gets once the writer has marked it NotReady because its node went
/// silent (upstream's reason and message; upstream records it after the pod's write too).
pub fn pod_not_ready_event(namespace: &str, name: &str, uid: &str) -> Action {
    let uid = (!uid.is_empty()).then(|| uid.to_string());
    Action::Event(EventRecord {
        component: Component::NodeController,
        object: ObjectRef::pod(namespace, name, uid),
        event_type: EventType::Warning,
        reason: "NodeNotReady".into(),
        message: "Node is not ready".into(),
    })
}

/// Moves a walk over a name-ordered map on to `name`, skipping smaller names (`skipped` sees
/// them), and takes the entry for `name` if there is one. A pass over the name-ordered cached
/// nodes walks the monitor's own maps this way instead of looking up each node: one string
/// comparison per step rather than a tree search per node.
fn advance_to<'a, V>(
    walk: &mut Peekable<impl Iterator<Item = (&'a String, V)>>,
    name: &str,
    mut skipped: impl FnMut(&'a String),
) -> Option<V> {
    loop {
        match walk.peek()?.0.as_str().cmp(name) {
            Ordering::Less => skipped(walk.next()?.0),
            Ordering::Equal => return walk.next().map(|(_, v)| v),
            Ordering::Greater => return None,
        }
    }
}

/// The node's Ready status as the controller last decided it: Unknown when we marked it so
/// (`marked`: the heartbeat that decision saw) for its current heartbeat, even before our write
/// shows in the cache.
fn decided_ready(
    marked: Option<&Option<Timestamp>>,
    node: &NodeSummary,
) -> Option<ConditionStatus> {
    if marked.is_some_and(|hb| *hb == node.ready_heartbeat) {
        return Some(ConditionStatus::Unknown);
    }
    node.ready
}

/// The renewTime of the node's Lease as cached.
fn lease_renew<P>(view: &ClusterView<P>, node: &str) -> Option<Timestamp> {
    view.leases
        .get(node)?
        .spec
        .as_ref()?
        .renew_time
        .as_ref()
        .map(|t| t.0)
}

impl Monitor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets everything but the heartbeat observations: a warm standby that becomes leader
    /// starts its passes afresh (it registers every node again) without granting every node a
    /// new grace period.
    pub fn restart_passes(&mut self) {
        let health = std::mem::take(&mut self.health);
        *self = Monitor {
            health,
            ..Monitor::default()
        };
    }

    /// A node arrived through the watch at `now`.
    pub fn observe_node(&mut self, node: &Node, now: Timestamp, settings: &Settings) {
        self.health.observe_node(node, now, settings);
        let name = name_of(node);
        if let Some(seen) = self.marked_unknown.get(name)
            && *seen != conditions::ready_heartbeat(node)
        {
            // The kubelet posted again: our Unknown decision is history.
            self.marked_unknown.remove(name);
        }
        if let Some((want, _)) = self.pending_taint.get(name)
            && [NOT_READY, UNREACHABLE]
                .iter()
                .all(|k| taints::has_no_execute(node, k) == (*want == Some(*k)))
        {
            if want.is_some()
                && let Some(zone) = self.zones.get_mut(&zones::zone_key(node))
            {
                // The zone's next taint counts from this one's landing, not its decision.
                zone.queue.landed(name, now);
            }
            self.pending_taint.remove(name);
        }
    }

    /// The API server answered again at `at` after an outage: nothing seen (or not seen) before
    /// is evidence of silence, so every node's grace period counts from `at` at the earliest
    /// (docs/differences.md#control-plane-outages). Marks already written stay.
    pub fn api_answered(&mut self, at: Timestamp) {
        self.health.reset_all(at);
    }

    /// A node Lease arrived through the watch at `now`.
    pub fn observe_lease(&mut self, lease: &Lease, now: Timestamp) {
        self.health.observe_lease(lease, now);
    }

    /// When the next pass could mark some node Unknown (for tests and diagnostics).
    pub fn health(&self) -> &HealthTracker {
        &self.health
    }

    /// The zone's current state (raw key).
    pub fn zone_state(&self, zone_key: &str) -> Option<ZoneState> {
        self.zones.get(zone_key).map(|z| z.state)
    }

    /// Nodes waiting in a zone's tainting queue.
    pub fn queued(&self, zone_key: &str) -> usize {
        self.zones.get(zone_key).map(|z| z.queue.len()).unwrap_or(0)
    }

    /// Work for one node update event: the NoSchedule condition taints and the beta labels.
    pub fn node_updated(&self, node: &Node, now: Timestamp) -> Vec<Action> {
        let mut actions = Vec::new();
        let name = name_of(node).to_string();
        if let Some(change) = taints::condition_taint_change(node, now) {
            let next_in_zone = self
                .zones
                .get(&zones::zone_key(node))
                .and_then(|z| z.queue.waiting().next())
                .is_some_and(|head| head.node == name);
            actions.push(Action::ChangeTaints {
                node: name.clone(),
                change,
                purpose: TaintPurpose::Conditions { next_in_zone },
            });
        }
        if let Some(labels) = labels::beta_label_updates(node) {
            actions.push(Action::SetLabels { node: name, labels });
        }
        actions
    }

    fn ensure_zone(
        &mut self,
        key: &str,
        settings: &Settings,
        now: Timestamp,
        report: &mut PassReport,
    ) {
        if !self.zones.contains_key(key) {
            let qps = if self.all_zones_down {
                0.0
            } else {
                settings.node_eviction_rate
            };
            self.zones.insert(
                key.to_string(),
                Zone {
                    state: ZoneState::Initial,
                    queue: ZoneQueue::new(qps, now),
                },
            );
            report.new_zones.push(key.to_string());
        }
    }

    /// Whether the node `name` carries our NoExecute taint `key` (as `node` shows it), counting
    /// a change we asked for in the last `PENDING_TTL` as made.
    fn has_taint(&self, name: &str, node: &NodeSummary, key: &str, now: Timestamp) -> bool {
        match self.pending_taint.get(name) {
            Some((want, since)) if !time::since(now, *since).gt(&PENDING_TTL) => *want == Some(key),
            _ => node.has_no_execute(key),
        }
    }

    fn has_any_taint(&self, name: &str, node: &NodeSummary, now: Timestamp) -> bool {
        self.has_taint(name, node, NOT_READY, now) || self.has_taint(name, node, UNREACHABLE, now)
    }

    fn remove_no_execute(&mut self, name: &str, now: Timestamp, actions: &mut Vec<Action>) {
        let change = taints::remove_no_execute();
        self.pending_taint.insert(name.to_string(), (None, now));
        actions.push(Action::ChangeTaints {
            node: name.to_string(),
            change,
            purpose: TaintPurpose::Recovery,
        });
    }

    /// One monitor pass over the cached view at `now`.
    ///
    /// `heartbeats_fresh` is false when the staleness guard found the Lease/Node watch stale:
    /// then nothing is marked Unknown and no NoExecute taint is queued on that data.
    pub fn monitor_pass(
        &mut self,
        view: &ClusterView<impl PodsByNode>,
        now: Timestamp,
        settings: &Settings,
        heartbeats_fresh: bool,
    ) -> PassReport {
        self.monitor_pass_timed(view, now, settings, heartbeats_fresh, &mut || {})
    }

    /// `monitor_pass`, calling `node_done` as each node's health has been worked out, so that
    /// the caller can time the pass per node (upstream's per-node health histogram) without
    /// a clock in here.
    pub fn monitor_pass_timed(
        &mut self,
        view: &ClusterView<impl PodsByNode>,
        now: Timestamp,
        settings: &Settings,
        heartbeats_fresh: bool,
        node_done: &mut dyn FnMut(),
    ) -> PassReport {
        let mut report = PassReport::default();
        let mut actions = Vec::new();

        // Nodes that appeared since the last pass, and nodes that went away: `view.nodes` and
        // `known` are both sorted by name, so one walk over the two finds both without a
        // look-up per node.
        let mut appeared = Vec::new();
        let mut gone = Vec::new();
        let mut known = self.known.iter().peekable();
        for (name, node) in &view.nodes {
            if advance_to(&mut known, name, |k| gone.push(k.clone())).is_none() {
                appeared.push((name, node));
            }
        }
        gone.extend(known.map(|(k, _)| k.clone()));
        for (name, node) in appeared {
            actions.push(node_event(
                node,
                EventType::Normal,
                "RegisteredNode",
                format!("Node {name} event: Registered Node {name} in Controller"),
            ));
            self.known.insert(name.clone(), uid_of(node));
            // docs/differences.md#no-taint-flap-on-start: unlike upstream, registering a node does not strip our NoExecute
            // taints. The per-node step below removes them only from a node that is Ready; one
            // still Unknown/False keeps its taint, so no countdown restarts.
            self.ensure_zone(&zones::zone_key(node), settings, now, &mut report);
        }
        for name in gone {
            let uid = self.known.remove(&name).filter(|u| !u.is_empty());
            actions.push(Action::Event(EventRecord {
                component: Component::NodeController,
                object: ObjectRef::node(&name, uid),
                event_type: EventType::Normal,
                reason: "RemovingNode".into(),
                message: format!("Node {name} event: Removing Node {name} from Controller"),
            }));
            self.health.forget(&name);
            self.marked_unknown.remove(&name);
            self.pending_taint.remove(&name);
            self.breaker_warned.remove(&name);
            for z in self.zones.values_mut() {
                z.queue.remove(&name);
            }
        }

        // Per node: Unknown marking, NoExecute decisions, pod marking, zone health.
        let mut zone_ready: BTreeMap<String, Vec<Option<ConditionStatus>>> = BTreeMap::new();
        let mut counted = 0usize;
        let mut not_ready = 0usize;
        let mut present: BTreeSet<String> = BTreeSet::new();
        // The health entries and our Unknown marks, out of `self` for the loop so they can be
        // borrowed while the rest of the monitor changes, are walked in step with `view.nodes`
        // (all sorted by name) instead of looked up per node. New marks go in after the loop.
        let health = std::mem::take(&mut self.health);
        let mut health_by_name = health.by_name().peekable();
        let marked_before = std::mem::take(&mut self.marked_unknown);
        let mut marked_by_name = marked_before.iter().peekable();
        let mut marked_now = Vec::new();
        for (name, cached) in &view.nodes {
            let health = advance_to(&mut health_by_name, name, |_| {});
            let marked = advance_to(&mut marked_by_name, name, |_| {});
            // Zone key, exclusion and what the pass reads of the node's status and taints were
            // worked out when the node was observed.
            let (key, excluded, expired) = match health {
                Some(h) => (
                    Cow::Borrowed(h.zone_key.as_str()),
                    h.excluded,
                    h.expired(now),
                ),
                None => (
                    Cow::Owned(zones::zone_key(cached)),
                    zones::excluded(cached),
                    false,
                ),
            };
            let key = key.as_ref();
            let node = health
                .and_then(|h| h.summary)
                .unwrap_or_else(|| NodeSummary::of(cached));
            self.ensure_zone(key, settings, now, &mut report);
            if !present.contains(key) {
                present.insert(key.to_string());
            }

            // The Ready status as the controller last decided it (our Unknown write may be in
            // flight). Statuses, not node copies: this loop runs over every node every pass.
            let observed_ready = decided_ready(marked, &node);

            let mut current_ready = observed_ready;
            // Marking Unknown changes Ready unless it is Unknown already (upstream writes only
            // then); a node without Ready gets one appended.
            if heartbeats_fresh && observed_ready != Some(ConditionStatus::Unknown) && expired {
                let heartbeat = node.ready_heartbeat;
                let lease_renew = lease_renew(view, name);
                actions.push(Action::MarkNodeUnknown {
                    node: name.clone(),
                    ready_heartbeat: heartbeat,
                    lease_renew,
                    now,
                    seen: seen_conditions(cached, view.leases.get(name.as_str())),
                });
                marked_now.push((name.clone(), heartbeat));
                report.marked_unknown.push(name.clone());
                current_ready = Some(ConditionStatus::Unknown);
            }

            if !excluded {
                match zone_ready.get_mut(key) {
                    Some(list) => list.push(current_ready),
                    None => {
                        zone_ready.insert(key.to_string(), vec![current_ready]);
                    }
                }
                counted += 1;
                if current_ready != Some(ConditionStatus::True) {
                    not_ready += 1;
                }
            }

            let Some(ready) = current_ready else {
                node_done();
                continue;
            };

            // Controller-detected heartbeat loss: NodeNotReady and the pods' Ready=False.
            if ready != ConditionStatus::True && observed_ready == Some(ConditionStatus::True) {
                let lease_renew = lease_renew(view, name);
                actions.push(node_event(
                    cached,
                    EventType::Normal,
                    "NodeNotReady",
                    format!("Node {name} status is now: NodeNotReady"),
                ));
                // Read from the cache's copies, not rebuilt: a zone outage goes over thousands
                // here. Their Events come from the writer, after each pod's write.
                let pods: Vec<PodId> = view
                    .pods_on(name)
                    .into_iter()
                    .filter(|pod| pod.ready.is_some_and(|s| s != ConditionStatus::False))
                    .map(|pod| PodId {
                        namespace: pod.namespace.to_string(),
                        name: pod.name.to_string(),
                        uid: pod.uid.map(Cow::into_owned).unwrap_or_default(),
                    })
                    .collect();
                if !pods.is_empty() {
                    actions.push(Action::MarkPodsNotReady {
                        node: name.clone(),
                        pods,
                        node_heartbeat: node.ready_heartbeat,
                        lease_renew,
                        lease_version: view
                            .leases
                            .get(name.as_str())
                            .and_then(|l| l.metadata.resource_version.clone()),
                        now,
                    });
                }
            }

            match ready {
                ConditionStatus::False | ConditionStatus::Unknown => {
                    let (want, other) = if ready == ConditionStatus::False {
                        (NOT_READY, UNREACHABLE)
                    } else {
                        (UNREACHABLE, NOT_READY)
                    };
                    if self.has_taint(name, &node, other, now) {
                        // Swap at once, not rate limited; the countdown goes on (docs/differences.md#countdowns-survive-restart).
                        if let Some(change) = taints::no_execute_change(cached, want, now) {
                            actions.push(Action::ChangeTaints {
                                node: name.clone(),
                                change,
                                purpose: TaintPurpose::Swap,
                            });
                            self.pending_taint.insert(name.clone(), (Some(want), now));
                        }
                    } else if !self.has_taint(name, &node, want, now)
                        && heartbeats_fresh
                        && let Some(z) = self.zones.get_mut(key)
                    {
                        // Re-queue with a fresh process time (so a taint someone removed comes back).
                        let uid = cached.metadata.uid.as_deref().unwrap_or_default();
                        z.queue.requeue(name, uid, now);
                    }
                }
                ConditionStatus::True => {
                    if self.has_any_taint(name, &node, now) {
                        self.remove_no_execute(name, now, &mut actions);
                    }
                    if let Some(z) = self.zones.get_mut(key) {
                        z.queue.remove(name);
                    }
                    self.breaker_warned.remove(name);
                }
                _ => {}
            }
            node_done();
        }
        drop(health_by_name);
        self.health = health;
        drop(marked_by_name);
        self.marked_unknown = marked_before;
        self.marked_unknown.extend(marked_now);

        self.handle_disruption(
            view,
            &present,
            zone_ready,
            now,
            settings,
            &mut actions,
            &mut report,
        );

        // docs/differences.md#max-unhealthy-fraction: the breaker over all zones.
        self.breaker_open = settings
            .max_unhealthy_fraction
            .is_some_and(|f| counted > 0 && (not_ready as f64) / (counted as f64) > f);
        self.breaker_counts = (
            not_ready,
            counted,
            settings.max_unhealthy_fraction.unwrap_or(1.0),
        );
        if !self.breaker_open {
            self.breaker_warned.clear();
        }
        report.breaker_open = self.breaker_open;
        report.all_zones_down = self.all_zones_down;
        report.actions = actions;
        report
    }

    #[allow(clippy::too_many_arguments)]
    fn handle_disruption<P>(
        &mut self,
        view: &ClusterView<P>,
        present: &BTreeSet<String>,
        zone_ready: BTreeMap<String, Vec<Option<ConditionStatus>>>,
        now: Timestamp,
        settings: &Settings,
        actions: &mut Vec<Action>,
        report: &mut PassReport,
    ) {
        // Zones with no node at all are gone, all of them in this pass (docs/differences.md#vanished-zones-cleaned-in-one-pass). A zone
        // of excluded nodes only keeps its queue and limiter.
        let vanished: Vec<String> = self
            .zones
            .keys()
            .filter(|k| !present.contains(*k))
            .cloned()
            .collect();
        for key in vanished {
            self.zones.remove(&key);
            report.vanished_zones.push(key);
        }

        let mut new_states = BTreeMap::new();
        for (key, ready) in &zone_ready {
            let (unhealthy, state) =
                zones::compute_zone_state(ready, settings.unhealthy_zone_threshold);
            report
                .zone_health
                .push((key.clone(), ready.len(), unhealthy));
            new_states.insert(key.clone(), state);
        }
        let all_are =
            !new_states.is_empty() && new_states.values().all(|s| *s == ZoneState::FullDisruption);
        let all_were = self.all_zones_down;

        if all_are && all_were {
            return;
        }
        if all_are {
            // Entering upstream's master disruption mode: the control plane, not the nodes, is
            // probably sick. Take our NoExecute taints off every node and stop tainting.
            self.all_zones_down = true;
            for (name, node) in &view.nodes {
                if self.has_any_taint(name, &NodeSummary::of(node), now) {
                    self.remove_no_execute(name, now, actions);
                }
            }
            for (key, zone) in self.zones.iter_mut() {
                for name in view.nodes.keys() {
                    zone.queue.remove(name);
                }
                zone.queue.swap_limiter(0.0, now);
                if new_states.contains_key(key) && zone.state != ZoneState::FullDisruption {
                    zone.state = ZoneState::FullDisruption;
                    report
                        .zone_changes
                        .push((key.clone(), ZoneState::FullDisruption));
                }
            }
            return;
        }
        if all_were {
            // Leaving it: every node gets a fresh grace period.
            self.all_zones_down = false;
            self.health.reset_all(now);
            for (key, zone) in self.zones.iter_mut() {
                if !new_states.contains_key(key) {
                    // A zone of excluded nodes only: no state of its own, the normal rate.
                    zone.queue.swap_limiter(settings.node_eviction_rate, now);
                }
            }
            for (key, state) in &new_states {
                if let Some(zone) = self.zones.get_mut(key) {
                    if let Some(qps) = zones::rate_for(*state, zone_ready[key].len(), settings) {
                        zone.queue.swap_limiter(qps, now);
                    }
                    if zone.state != *state {
                        zone.state = *state;
                        report.zone_changes.push((key.clone(), *state));
                    }
                }
            }
            return;
        }
        for (key, state) in &new_states {
            if let Some(zone) = self.zones.get_mut(key)
                && zone.state != *state
            {
                if let Some(qps) = zones::rate_for(*state, zone_ready[key].len(), settings) {
                    zone.queue.swap_limiter(qps, now);
                }
                zone.state = *state;
                report.zone_changes.push((key.clone(), *state));
            }
        }
    }

    /// One NoExecute tainting pass at `now`: each zone's queue hands out the nodes its rate
    /// allows. `heartbeats_fresh` false (stale watch) adds no taint. `dry_run`: nothing this
    /// controller decides is written, so no node waits for its own writes to land.
    pub fn tainting_pass<P>(
        &mut self,
        view: &ClusterView<P>,
        now: Timestamp,
        heartbeats_fresh: bool,
        dry_run: bool,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        if !heartbeats_fresh {
            return actions;
        }
        if self.breaker_open {
            // Held back: say so once per node while the breaker stays open.
            for (name, node) in &view.nodes {
                let key = zones::zone_key(node);
                let waiting = self.zones.get(&key).is_some_and(|z| z.queue.contains(name))
                    && !self.has_any_taint(name, &NodeSummary::of(node), now);
                if waiting && self.breaker_warned.insert(name.clone()) {
                    actions.push(node_event(
                        node,
                        EventType::Warning,
                        "NoExecuteTaintingPaused",
                        {
                            let (not_ready, counted, limit) = self.breaker_counts;
                            format!(
                                "Node {name} is not ready, but NoExecute tainting is paused: {not_ready} of {counted} nodes are not Ready, more than --max-unhealthy-fraction={limit}"
                            )
                        },
                    ));
                }
            }
            return actions;
        }
        let mut zones = std::mem::take(&mut self.zones);
        for (zone_key, zone) in zones.iter_mut() {
            // The zone's last taint, on its way, no longer waited for: its node is gone or
            // Ready again (the writer drops a taint no longer wanted), another change of ours
            // replaced it, or it has not landed within `PENDING_TTL` (a failed write: the
            // queue goes on as it did before it waited, its token counted from the decision).
            if let Some(name) = zone.queue.in_flight() {
                let expected =
                    view.nodes.get(name).is_some_and(|node| {
                        NodeSummary::of(node).ready != Some(ConditionStatus::True)
                    }) && matches!(self.pending_taint.get(name),
                    Some((Some(_), since)) if time::since(now, *since) < PENDING_TTL);
                if !expected {
                    zone.queue.release();
                }
            }
            zone.queue.try_process(now, |queued| {
                let Some(node) = view.nodes.get(&queued.node) else {
                    return Outcome::Done;
                };
                let summary = NodeSummary::of(node);
                // Our Unknown mark the cache does not show yet (its write is on its way, or
                // retried through an outage): the node waits, without a token, until it lands.
                // Upstream queues a node only once its Unknown write succeeded, and takes the
                // token in the call that writes the taint; a token taken now would be spent
                // while the taint waited behind the mark, and the next taint of the zone could
                // land right behind it (docs/differences.md#zone-token-spent-when-the-taint-is-written).
                let marked = self.marked_unknown.get(&queued.node);
                let decided = decided_ready(marked, &summary);
                if decided != summary.ready && !dry_run {
                    return Outcome::NotYet;
                }
                // The same goes for a write of the node's own that the cache still calls for
                // (its NoSchedule condition taints, its beta labels): the writer applies the
                // node's writes in order, so the taint would wait behind it, retried through
                // an outage, with its token spent.
                if !dry_run
                    && (taints::condition_taint_change(node, now).is_some()
                        || labels::beta_label_updates(node).is_some())
                {
                    return Outcome::NotYet;
                }
                // The status at tainting time as this controller decided it: past the check
                // above, what the cache shows (a dry run writes nothing, so only there may the
                // two differ).
                let Some(ready) = decided else {
                    return Outcome::RetryAfter(NO_READY_RETRY);
                };
                let Some(key) = taints::no_execute_key_for(ready) else {
                    return Outcome::Done;
                };
                if self.has_taint(&queued.node, &summary, key, now) {
                    return Outcome::Done;
                }
                if let Some(change) = taints::no_execute_change(node, key, now) {
                    actions.push(Action::ChangeTaints {
                        node: queued.node.clone(),
                        change,
                        purpose: TaintPurpose::ZoneEviction {
                            zone: zone_key.clone(),
                        },
                    });
                    self.pending_taint
                        .insert(queued.node.clone(), (Some(key), now));
                    if !dry_run {
                        return Outcome::Sent;
                    }
                }
                Outcome::Done
            });
        }
        self.zones = zones;
        actions
    }
}

mod inspect;

#[cfg(test)]
mod tests;
