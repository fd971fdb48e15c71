//! The explain views of what the controller holds: the cached objects, the monitor's zones and
//! marks, the taint manager's countdowns. Pure and read-only: an answer costs no API request
//! and changes no decision.

use super::{
    BreakerView, Controller, GuardView, Held, NodeReport, NodeView, PodAnswer, PodOutcome,
    PodReport, Removal, Role, StatusReport, TaintView, Upcoming, ZoneReport, ZoneView, explain_pod,
    tainting_held_by,
};
use crate::logic::conditions::{self, ConditionStatus};
use crate::logic::eviction::TaintManager;
use crate::logic::freshness::Guard;
use crate::logic::monitor::Monitor;
use crate::logic::pod::PodFacts;
use crate::logic::rate_limit::ZoneQueue;
use crate::logic::taints;
use crate::logic::time;
use crate::logic::view::{ClusterView, PodsByNode};
use crate::logic::zones::{self, ZoneState};
use crate::settings::{EvictionMode, Settings};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Node;
use std::time::Duration;

/// What holds for every decision: `role` as the caller knows it, the guard as the last monitor
/// pass judged it (`trusted`).
pub fn controller(
    role: Role,
    settings: &Settings,
    guard: &Guard,
    trusted: bool,
    monitor: &Monitor,
) -> Controller {
    let stale_watches = [("leases", guard.leases), ("nodes", guard.nodes)]
        .into_iter()
        .filter(|(_, w)| w.stale || w.relisting || w.down)
        .map(|(name, _)| name.to_string())
        .collect();
    let (open, not_ready, counted) = monitor.breaker();
    Controller {
        role,
        dry_run: settings.dry_run,
        removal: match settings.eviction_mode {
            EvictionMode::Delete => Removal::Delete,
            EvictionMode::Evict => Removal::Evict,
        },
        guard: GuardView {
            heartbeats_trusted: trusted,
            stale_watches,
            api_unanswered_since: guard.away_since,
        },
        breaker: BreakerView {
            open,
            not_ready,
            counted,
            max_unhealthy_fraction: settings.max_unhealthy_fraction,
        },
        all_zones_fully_disrupted: monitor.all_zones_down(),
    }
}

/// One zone as `status` shows it.
pub fn zone_view(key: &str, state: ZoneState, queue: &ZoneQueue, all_down: bool) -> ZoneView {
    let queued: Vec<String> = queue.waiting().map(|q| q.node.clone()).collect();
    let rate = if all_down { 0.0 } else { queue.qps() };
    // The head of the queue goes at its process time or the next token, whichever is later.
    let next_release = match (queue.waiting().next(), queue.limiter().next_token_at()) {
        (Some(head), Some(token)) if rate > 0.0 => Some(head.process_at.max(token)),
        _ => None,
    };
    ZoneView {
        zone: zones::display(key),
        state: state.as_str().to_string(),
        rate_per_second: rate,
        queued,
        next_release,
    }
}

/// Every zone the monitor knows, in key order.
pub fn zone_views(monitor: &Monitor) -> Vec<ZoneView> {
    let all_down = monitor.all_zones_down();
    monitor
        .zones()
        .map(|(key, state, queue)| zone_view(key, state, queue, all_down))
        .collect()
}

/// A monitor and a taint manager that have just listed `view` at `now` and run one monitor
/// pass on it: what a controller that started at `now` would know (no countdown is held:
/// answers work each due time out, `scheduled: false`). `explain` answers from them when no controller can be reached (the same rules the
/// controller and the simulator run; taints count from their `timeAdded`, and no node's grace
/// period has run out yet, so the Ready statuses are the cluster's own).
pub fn replay<P: PodsByNode>(
    view: &ClusterView<P>,
    now: Timestamp,
    settings: &Settings,
) -> (Monitor, TaintManager) {
    let mut monitor = Monitor::new();
    let mut taint_manager = TaintManager::new();
    for node in view.nodes.values() {
        monitor.observe_node(node, now, settings);
        taint_manager.node_seen(None, node, now, true);
    }
    for lease in view.leases.values() {
        monitor.observe_lease(lease, now);
    }
    let _ = monitor.monitor_pass(view, now, settings, true);
    (monitor, taint_manager)
}

/// What the answers are made from.
pub struct Sources<'a, P> {
    pub view: &'a ClusterView<P>,
    pub monitor: &'a Monitor,
    pub taint_manager: &'a TaintManager,
    pub controller: &'a Controller,
}

impl<P: PodsByNode> Sources<'_, P> {
    fn zone_of(&self, node: &Node) -> Option<ZoneView> {
        let key = zones::zone_key(node);
        let all_down = self.monitor.all_zones_down();
        self.monitor
            .zones()
            .find(|(k, _, _)| *k == key)
            .map(|(k, state, queue)| zone_view(k, state, queue, all_down))
    }

    /// The node as `explain` shows it; `zone`: its zone's view.
    pub fn node_view(&self, node: &Node, zone: Option<&ZoneView>, now: Timestamp) -> NodeView {
        let name = node.metadata.name.clone().unwrap_or_default();
        let ready = self.monitor.decided_ready(node);
        let condition = conditions::condition(node, "Ready");
        let ready_since = condition
            .and_then(|c| c.last_transition_time.as_ref())
            .map(|t| t.0);
        let cached_unknown = condition.is_some_and(|c| c.status == "Unknown");
        let taint_views = taints::node_taints(node)
            .iter()
            .map(|t| {
                let from = (t.effect == taints::NO_EXECUTE)
                    .then(|| self.taint_manager.counting_from(&name, t))
                    .flatten();
                TaintView::of(t, from)
            })
            .collect();
        let pods = self.view.pods_on(&name);
        let pods_not_ready = pods
            .iter()
            .filter(|p| p.ready == Some(ConditionStatus::False))
            .count();
        let held = tainting_held_by(
            &name,
            ready,
            // A dry run writes no taint: only the node's own taints count, not the ones asked for.
            |key| {
                if self.controller.dry_run {
                    taints::has_no_execute(node, key)
                } else {
                    self.monitor.has_no_execute(node, key, now)
                }
            },
            zone,
            self.controller,
        );
        NodeView {
            zone: zones::display(&zones::zone_key(node)),
            ready: ready.map(|r| r.as_str().to_string()),
            ready_since,
            unknown_since: cached_unknown.then_some(ready_since).flatten(),
            taints: taint_views,
            pods: pods.len(),
            pods_not_ready,
            tainting_held_by: held,
            name,
        }
    }

    /// Whether a node belongs in `status`: not Ready, or carrying a NoExecute taint.
    fn notable(&self, node: &Node) -> bool {
        self.monitor.decided_ready(node) != Some(ConditionStatus::True)
            || taints::node_taints(node)
                .iter()
                .any(|t| t.effect == taints::NO_EXECUTE)
    }

    fn answer(&self, pod: &PodFacts, node: Option<&NodeView>, now: Timestamp) -> PodAnswer {
        let key = pod.key();
        let held = Held {
            scheduled: self.taint_manager.scheduled(pod.namespace, pod.name),
            sent: self.taint_manager.issued(&key),
        };
        let bound_at = pod
            .node
            .and_then(|n| self.taint_manager.bound_since(n, pod));
        explain_pod(pod, node, bound_at, held, self.controller, now)
    }

    /// `explain pod`: `pod` as the cache has it (`None`: not there).
    pub fn pod(&self, pod: Option<&PodFacts>, now: Timestamp) -> PodReport {
        let Some(pod) = pod else {
            return PodReport { pod: None };
        };
        let node = pod.node.and_then(|n| self.view.nodes.get(n));
        let node_view = node.map(|n| self.node_view(n, self.zone_of(n).as_ref(), now));
        PodReport {
            pod: Some(self.answer(pod, node_view.as_ref(), now)),
        }
    }

    /// `explain node`: the node, its zone and every pod bound to it.
    pub fn node(&self, name: &str, now: Timestamp) -> NodeReport {
        let Some(node) = self.view.nodes.get(name) else {
            return NodeReport {
                node: None,
                zone: None,
                pods: Vec::new(),
            };
        };
        let zone = self.zone_of(node);
        let view = self.node_view(node, zone.as_ref(), now);
        let pods = self
            .view
            .pods_on(name)
            .iter()
            .map(|p| self.answer(p, Some(&view), now))
            .collect();
        NodeReport {
            node: Some(view),
            zone,
            pods,
        }
    }

    /// `explain zone`: the zone (as `status` names it) and its notable nodes.
    pub fn zone(&self, display: &str, now: Timestamp) -> ZoneReport {
        let all_down = self.monitor.all_zones_down();
        let Some((key, state, queue)) = self
            .monitor
            .zones()
            .find(|(k, _, _)| zones::display(k) == display)
        else {
            return ZoneReport {
                zone: None,
                nodes: Vec::new(),
            };
        };
        let zone = zone_view(key, state, queue, all_down);
        let nodes = self
            .view
            .nodes
            .values()
            .filter(|n| zones::zone_key(n) == key && self.notable(n))
            .map(|n| self.node_view(n, Some(&zone), now))
            .collect();
        ZoneReport {
            zone: Some(zone),
            nodes,
        }
    }

    /// The deletions due within `horizon` of `now` as each pod's own answer dates them: for an
    /// answer worked out from the cluster's objects, whose taint manager holds no countdowns.
    pub fn deletions_by_answers(&self, now: Timestamp, horizon: Duration) -> Vec<Upcoming> {
        let until = time::add(now, horizon);
        let mut due: Vec<Upcoming> = Vec::new();
        for node in self.view.nodes.values().filter(|n| self.notable(n)) {
            let view = self.node_view(node, self.zone_of(node).as_ref(), now);
            for pod in self.view.pods_on(&view.name) {
                if let PodOutcome::DeletionDue { due_at, .. } =
                    self.answer(&pod, Some(&view), now).outcome
                    && due_at <= until
                {
                    due.push(Upcoming {
                        due_at,
                        pod: pod.key(),
                        node: view.name.clone(),
                    });
                }
            }
        }
        due.sort_by(|a, b| (a.due_at, &a.pod).cmp(&(b.due_at, &b.pod)));
        due
    }

    /// `status`: zones, notable nodes and the deletions due within `horizon` of `now`.
    pub fn status(&self, now: Timestamp, horizon: Duration) -> StatusReport {
        let zones = zone_views(self.monitor);
        let nodes = self
            .view
            .nodes
            .values()
            .filter(|n| self.notable(n))
            .map(|n| {
                let key = zones::display(&zones::zone_key(n));
                let zone = zones.iter().find(|z| z.zone == key);
                self.node_view(n, zone, now)
            })
            .collect();
        let until = time::add(now, horizon);
        let deletions = self
            .taint_manager
            .schedule()
            .take_while(|(due, _, _)| *due <= until)
            .map(|(due_at, pod, node)| Upcoming {
                due_at,
                pod: pod.to_string(),
                node: node.to_string(),
            })
            .collect();
        StatusReport {
            zones,
            nodes,
            deletions,
        }
    }
}
