//! Per-node health from locally observed heartbeats.
//!
//! A heartbeat is a change of the node's Ready `lastHeartbeatTime` or of its Lease's
//! `renewTime` (any change, also backwards: docs/differences.md#clock-safety). Its observation time is when
//! the watch delivered it (`now` as handed in), never the kubelet's own timestamp, so kubelet
//! clock skew does not matter.

use super::conditions::{self, ConditionStatus};
use super::taints::{self, NOT_READY, UNREACHABLE};
use super::time;
use super::zones;
use crate::settings::Settings;
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use std::collections::BTreeMap;
use std::time::Duration;

/// What the monitor pass reads of a node on every pass, worked out once per node update: the
/// pass then need not walk every cached node's conditions and taints.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NodeSummary {
    /// The Ready condition's status (`None`: no Ready condition).
    pub ready: Option<ConditionStatus>,
    /// The Ready condition's `lastHeartbeatTime`.
    pub ready_heartbeat: Option<Timestamp>,
    /// Whether the node carries our NoExecute taints (not-ready, unreachable).
    no_execute_not_ready: bool,
    no_execute_unreachable: bool,
}

impl NodeSummary {
    pub fn of(node: &Node) -> Self {
        let ready = conditions::condition(node, "Ready");
        NodeSummary {
            ready: ready.map(|c| ConditionStatus::of(&c.status)),
            ready_heartbeat: ready
                .and_then(|c| c.last_heartbeat_time.as_ref())
                .map(|t| t.0),
            no_execute_not_ready: taints::has_no_execute(node, NOT_READY),
            no_execute_unreachable: taints::has_no_execute(node, UNREACHABLE),
        }
    }

    /// Whether the node carries our NoExecute taint `key` (`false` for any other key).
    pub fn has_no_execute(&self, key: &str) -> bool {
        match key {
            NOT_READY => self.no_execute_not_ready,
            UNREACHABLE => self.no_execute_unreachable,
            _ => false,
        }
    }

    /// The Ready heartbeat as the probe compares it: `None` without a Ready condition.
    fn heartbeat(&self) -> Option<Option<Timestamp>> {
        self.ready.map(|_| self.ready_heartbeat)
    }
}

/// What the controller remembers of one node's heartbeats.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeHealth {
    /// When the controller last observed a sign of life.
    pub probe: Timestamp,
    /// The node object as last observed; `None` while only its Lease was seen.
    pub summary: Option<NodeSummary>,
    /// The Lease renewTime as last observed.
    lease_renew: Option<Timestamp>,
    /// The node's zone key and exclusion label, worked out once per node update rather than on
    /// every pass over every node.
    pub zone_key: String,
    pub excluded: bool,
    /// The grace period that applies (the startup grace while the node has no Ready condition).
    grace: Duration,
}

/// Heartbeat observations of every node.
#[derive(Clone, Debug, Default)]
pub struct HealthTracker {
    nodes: BTreeMap<String, NodeHealth>,
}

fn node_name(node: &Node) -> &str {
    node.metadata.name.as_deref().unwrap_or("")
}

impl HealthTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a node as delivered by the watch at `now`.
    ///
    /// First sight of a node with a Ready condition grants a full grace period from `now` (a
    /// process that starts with empty memory must); a node without one counts from its
    /// creation, as upstream does, unless its Lease was already seen.
    pub fn observe_node(&mut self, node: &Node, now: Timestamp, settings: &Settings) {
        let summary = NodeSummary::of(node);
        let name = node_name(node).to_string();
        match self.nodes.get_mut(&name) {
            None => {
                let probe = match summary.ready {
                    Some(_) => now,
                    None => node
                        .metadata
                        .creation_timestamp
                        .as_ref()
                        .map(|t| t.0)
                        .unwrap_or(now),
                };
                self.nodes.insert(
                    name,
                    NodeHealth {
                        probe,
                        summary: Some(summary),
                        lease_renew: None,
                        zone_key: zones::zone_key(node),
                        excluded: zones::excluded(node),
                        grace: Self::grace_for(node, settings),
                    },
                );
            }
            Some(h) => {
                // Only the lease was seen before: the lease already set the probe.
                if h.summary
                    .is_some_and(|seen| seen.heartbeat() != summary.heartbeat())
                {
                    h.probe = now;
                }
                h.summary = Some(summary);
                h.zone_key = zones::zone_key(node);
                h.excluded = zones::excluded(node);
                h.grace = Self::grace_for(node, settings);
            }
        }
    }

    /// Records a node Lease as delivered by the watch at `now`: any change of renewTime is a
    /// heartbeat, also one that goes backwards.
    pub fn observe_lease(&mut self, lease: &Lease, now: Timestamp) {
        let Some(name) = lease.metadata.name.as_deref() else {
            return;
        };
        let renew = lease
            .spec
            .as_ref()
            .and_then(|s| s.renew_time.as_ref())
            .map(|t| t.0);
        match self.nodes.get_mut(name) {
            None => {
                self.nodes.insert(
                    name.to_string(),
                    NodeHealth {
                        probe: now,
                        summary: None,
                        lease_renew: renew,
                        zone_key: String::new(),
                        excluded: false,
                        grace: Duration::ZERO,
                    },
                );
            }
            Some(h) => {
                if renew.is_some() && h.lease_renew != renew {
                    h.probe = now;
                }
                h.lease_renew = renew;
            }
        }
    }

    /// Drops what is known of a deleted node (upstream leaks it; docs/differences.md#deleted-nodes-forgotten).
    pub fn forget(&mut self, name: &str) {
        self.nodes.remove(name);
    }

    /// Grants every node a fresh grace period from `at` (leaving the all-zones-down mode, the
    /// end of an API outage); a heartbeat observed after `at` keeps its later time.
    pub fn reset_all(&mut self, at: Timestamp) {
        for h in self.nodes.values_mut() {
            h.probe = h.probe.max(at);
        }
    }

    pub fn get(&self, name: &str) -> Option<&NodeHealth> {
        self.nodes.get(name)
    }

    /// Every node's health in name order, so a pass over the (also name-ordered) cached nodes
    /// can walk both in step instead of looking each node up.
    pub fn by_name(&self) -> impl Iterator<Item = (&String, &NodeHealth)> {
        self.nodes.iter()
    }

    /// The grace period that applies: the startup grace for a node that never reported Ready.
    fn grace_for(node: &Node, settings: &Settings) -> Duration {
        if conditions::condition(node, "Ready").is_some() {
            settings.node_monitor_grace_period
        } else {
            settings.node_startup_grace_period
        }
    }
}

impl NodeHealth {
    /// Whether the grace period ran out before `now` (strictly).
    pub fn expired(&self, now: Timestamp) -> bool {
        now > time::add(self.probe, self.grace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the grace period of `node` ran out before `now` (strictly).
    fn expired(h: &HealthTracker, node: &Node, now: Timestamp) -> bool {
        h.get(node.metadata.name.as_deref().unwrap())
            .is_some_and(|x| x.expired(now))
    }

    fn s() -> Settings {
        Settings::default()
    }
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::api::core::v1::{NodeCondition, NodeStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};

    fn at(secs: i64) -> Timestamp {
        time::add_secs("2025-01-01T00:00:00Z".parse().unwrap(), secs)
    }

    fn node(name: &str, heartbeat: Option<i64>) -> Node {
        let mut n = Node::default();
        n.metadata.name = Some(name.into());
        n.metadata.creation_timestamp = Some(Time(at(-3600)));
        if let Some(hb) = heartbeat {
            n.status = Some(NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    last_heartbeat_time: Some(Time(at(hb))),
                    ..Default::default()
                }]),
                ..Default::default()
            });
        }
        n
    }

    fn lease(name: &str, renew: i64) -> Lease {
        let mut l = Lease::default();
        l.metadata.name = Some(name.into());
        l.spec = Some(LeaseSpec {
            renew_time: Some(MicroTime(at(renew))),
            ..Default::default()
        });
        l
    }

    #[test]
    fn a_node_first_seen_gets_a_full_grace_period_from_now_whatever_its_heartbeat_age() {
        let mut h = HealthTracker::new();
        let n = node("a", Some(-7200));
        h.observe_node(&n, at(0), &s());
        assert!(!expired(&h, &n, at(50)));
        assert!(expired(&h, &n, at(51)));
    }

    #[test]
    fn grace_expires_strictly_after_the_grace_period() {
        let mut h = HealthTracker::new();
        let n = node("a", Some(0));
        h.observe_node(&n, at(10), &s());
        assert!(!expired(&h, &n, at(60)));
        assert!(expired(&h, &n, time::add(at(60), Duration::from_millis(1))));
    }

    #[test]
    fn a_new_ready_heartbeat_moves_the_probe_but_the_same_one_does_not() {
        let mut h = HealthTracker::new();
        h.observe_node(&node("a", Some(0)), at(0), &s());
        h.observe_node(&node("a", Some(0)), at(30), &s());
        assert_eq!(h.get("a").unwrap().probe, at(0));
        h.observe_node(&node("a", Some(40)), at(41), &s());
        assert_eq!(h.get("a").unwrap().probe, at(41));
        assert!(!expired(&h, &node("a", Some(40)), at(91)));
    }

    #[test]
    fn any_lease_renewal_change_counts_as_a_heartbeat_even_backwards() {
        let mut h = HealthTracker::new();
        h.observe_node(&node("a", Some(0)), at(0), &s());
        h.observe_lease(&lease("a", 100), at(20));
        assert_eq!(h.get("a").unwrap().probe, at(20));
        h.observe_lease(&lease("a", 50), at(30));
        assert_eq!(h.get("a").unwrap().probe, at(30));
        h.observe_lease(&lease("a", 50), at(40));
        assert_eq!(h.get("a").unwrap().probe, at(30));
    }

    #[test]
    fn a_node_without_ready_counts_its_startup_grace_from_creation() {
        let mut h = HealthTracker::new();
        let mut n = node("a", None);
        n.metadata.creation_timestamp = Some(Time(at(0)));
        h.observe_node(&n, at(30), &s());
        assert!(!expired(&h, &n, at(60)));
        assert!(expired(&h, &n, at(61)));
    }

    #[test]
    fn a_lease_seen_before_its_node_keeps_the_node_alive() {
        let mut h = HealthTracker::new();
        h.observe_lease(&lease("a", 0), at(100));
        let n = node("a", None);
        h.observe_node(&n, at(100), &s());
        assert!(!expired(&h, &n, at(150)));
    }

    #[test]
    fn gaining_a_ready_condition_resets_the_probe() {
        let mut h = HealthTracker::new();
        h.observe_node(&node("a", None), at(0), &s());
        h.observe_node(&node("a", Some(5)), at(7), &s());
        assert_eq!(h.get("a").unwrap().probe, at(7));
    }

    fn summary(h: &HealthTracker, name: &str) -> NodeSummary {
        h.get(name).unwrap().summary.unwrap()
    }

    fn with_status(mut n: Node, status: &str) -> Node {
        let conditions = n.status.as_mut().unwrap().conditions.as_mut().unwrap();
        conditions[0].status = status.into();
        n
    }

    fn with_no_execute(mut n: Node, keys: &[&str]) -> Node {
        n.spec.get_or_insert_with(Default::default).taints = Some(
            keys.iter()
                .map(|k| k8s_openapi::api::core::v1::Taint {
                    key: k.to_string(),
                    effect: taints::NO_EXECUTE.into(),
                    ..Default::default()
                })
                .collect(),
        );
        n
    }

    #[test]
    fn the_summary_follows_a_ready_node_that_becomes_not_ready_and_ready_again() {
        let mut h = HealthTracker::new();
        h.observe_node(&node("a", Some(0)), at(0), &s());
        assert_eq!(summary(&h, "a").ready, Some(ConditionStatus::True));
        assert_eq!(summary(&h, "a").ready_heartbeat, Some(at(0)));
        h.observe_node(&with_status(node("a", Some(10)), "False"), at(10), &s());
        assert_eq!(summary(&h, "a").ready, Some(ConditionStatus::False));
        assert_eq!(summary(&h, "a").ready_heartbeat, Some(at(10)));
        h.observe_node(&with_status(node("a", Some(20)), "Unknown"), at(20), &s());
        assert_eq!(summary(&h, "a").ready, Some(ConditionStatus::Unknown));
        h.observe_node(&with_status(node("a", Some(30)), "Bogus"), at(30), &s());
        assert_eq!(summary(&h, "a").ready, Some(ConditionStatus::Other));
        h.observe_node(&node("a", Some(40)), at(40), &s());
        assert_eq!(summary(&h, "a").ready, Some(ConditionStatus::True));
        h.observe_node(&node("a", None), at(50), &s());
        assert_eq!(summary(&h, "a").ready, None);
        assert_eq!(summary(&h, "a").ready_heartbeat, None);
    }

    #[test]
    fn the_summary_follows_our_no_execute_taints_added_and_removed_by_anyone() {
        let mut h = HealthTracker::new();
        let ours = |h: &HealthTracker| {
            let s = summary(h, "a");
            (s.has_no_execute(NOT_READY), s.has_no_execute(UNREACHABLE))
        };
        h.observe_node(&node("a", Some(0)), at(0), &s());
        assert_eq!(ours(&h), (false, false));
        h.observe_node(
            &with_no_execute(node("a", Some(0)), &[UNREACHABLE]),
            at(1),
            &s(),
        );
        assert_eq!(ours(&h), (false, true));
        h.observe_node(
            &with_no_execute(node("a", Some(0)), &[NOT_READY, "example.com/other"]),
            at(2),
            &s(),
        );
        assert_eq!(ours(&h), (true, false));
        assert!(!summary(&h, "a").has_no_execute("example.com/other"));
        h.observe_node(&with_no_execute(node("a", Some(0)), &[]), at(3), &s());
        assert_eq!(ours(&h), (false, false));
        // A NoSchedule taint with our key is not ours to count.
        let mut n = node("a", Some(0));
        n.spec.get_or_insert_with(Default::default).taints =
            Some(vec![k8s_openapi::api::core::v1::Taint {
                key: NOT_READY.into(),
                effect: taints::NO_SCHEDULE.into(),
                ..Default::default()
            }]);
        h.observe_node(&n, at(4), &s());
        assert_eq!(ours(&h), (false, false));
    }

    #[test]
    fn the_zone_key_and_exclusion_follow_label_changes() {
        let mut h = HealthTracker::new();
        let mut n = node("a", Some(0));
        h.observe_node(&n, at(0), &s());
        assert_eq!(h.get("a").unwrap().zone_key, "");
        n.metadata.labels = Some(
            [
                (zones::ZONE_GA.to_string(), "z1".to_string()),
                (zones::EXCLUDE_DISRUPTION.to_string(), String::new()),
            ]
            .into(),
        );
        h.observe_node(&n, at(1), &s());
        assert_eq!(h.get("a").unwrap().zone_key, ":\0:z1");
        assert!(h.get("a").unwrap().excluded);
        n.metadata.labels = Some([(zones::ZONE_GA.to_string(), "z2".to_string())].into());
        h.observe_node(&n, at(2), &s());
        assert_eq!(h.get("a").unwrap().zone_key, ":\0:z2");
        assert!(!h.get("a").unwrap().excluded);
    }

    #[test]
    fn a_node_known_only_by_its_lease_has_no_summary_until_the_node_is_seen() {
        let mut h = HealthTracker::new();
        h.observe_lease(&lease("a", 0), at(0));
        assert_eq!(h.get("a").unwrap().summary, None);
        h.observe_node(&node("a", Some(0)), at(1), &s());
        assert_eq!(summary(&h, "a").ready, Some(ConditionStatus::True));
    }

    #[test]
    fn health_is_listed_in_name_order() {
        let mut h = HealthTracker::new();
        for name in ["c", "a", "b"] {
            h.observe_node(&node(name, Some(0)), at(0), &s());
        }
        let names: Vec<&str> = h.by_name().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn a_reset_grants_a_full_grace_period_from_then_but_never_moves_a_later_heartbeat_back() {
        let mut h = HealthTracker::new();
        h.observe_node(&node("a", Some(0)), at(0), &s());
        h.observe_node(&node("b", Some(0)), at(0), &s());
        h.observe_lease(&lease("b", 30), at(30));
        h.reset_all(at(20));
        assert_eq!(h.get("a").unwrap().probe, at(20));
        assert_eq!(h.get("b").unwrap().probe, at(30));
    }

    #[test]
    fn forgetting_a_node_drops_its_health() {
        let mut h = HealthTracker::new();
        h.observe_node(&node("a", Some(0)), at(0), &s());
        h.forget("a");
        assert!(h.get("a").is_none());
    }
}
