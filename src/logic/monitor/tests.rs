use super::*;
use crate::logic::actions::TaintChange;
use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::api::core::v1::{NodeCondition, NodeSpec, NodeStatus, Pod, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};

fn at(secs: f64) -> Timestamp {
    let start: Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
    start
        .checked_add(jiff::SignedDuration::from_secs_f64(secs))
        .unwrap()
}

/// A node builder: `node("a-1").zone("a").ready("True")`.
struct NodeB(Node);

fn node(name: &str) -> NodeB {
    let mut n = Node::default();
    n.metadata.name = Some(name.into());
    n.metadata.uid = Some(format!("uid-{name}"));
    n.metadata.creation_timestamp = Some(Time(at(-3600.0)));
    NodeB(n).ready("True", 0.0)
}

impl NodeB {
    fn zone(mut self, zone: &str) -> Self {
        self.0
            .metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(zones::ZONE_GA.into(), zone.into());
        self
    }
    fn label(mut self, k: &str, v: &str) -> Self {
        self.0
            .metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(k.into(), v.into());
        self
    }
    fn ready(mut self, status: &str, heartbeat: f64) -> Self {
        self.0.status = Some(NodeStatus {
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: status.into(),
                last_heartbeat_time: Some(Time(at(heartbeat))),
                last_transition_time: Some(Time(at(-3600.0))),
                ..Default::default()
            }]),
            ..Default::default()
        });
        self
    }
    fn no_ready(mut self) -> Self {
        self.0.status = None;
        self
    }
    fn taint(mut self, key: &str, effect: &str, added: f64) -> Self {
        self.0
            .spec
            .get_or_insert_with(NodeSpec::default)
            .taints
            .get_or_insert_with(Vec::new)
            .push(Taint {
                key: key.into(),
                effect: effect.into(),
                time_added: Some(Time(at(added))),
                value: None,
            });
        self
    }
    fn build(self) -> Node {
        self.0
    }
}

fn pod(name: &str, node: &str) -> Pod {
    crate::testing::pod(name, node).build()
}

fn lease(name: &str, renew: f64) -> Lease {
    let mut l = Lease::default();
    l.metadata.name = Some(name.into());
    l.spec = Some(LeaseSpec {
        renew_time: Some(MicroTime(at(renew))),
        ..Default::default()
    });
    l
}

/// A monitor with a view, fed like the controller feeds it.
struct Harness {
    m: Monitor,
    view: ClusterView<Vec<Pod>>,
    s: Settings,
}

impl Harness {
    fn new(nodes: Vec<Node>) -> Self {
        let mut h = Harness {
            m: Monitor::new(),
            view: ClusterView::default(),
            s: Settings::default(),
        };
        for n in nodes {
            h.put(n, 0.0);
        }
        h
    }
    /// The node as the watch delivers it, once the NoSchedule condition taints its update
    /// calls for have landed too (the writer applies them before a NoExecute taint).
    fn put(&mut self, mut n: Node, t: f64) {
        if let Some(change) = taints::condition_taint_change(&n, at(t)) {
            let mut list = n
                .spec
                .clone()
                .unwrap_or_default()
                .taints
                .unwrap_or_default();
            taints::apply_change(&mut list, &change);
            n.spec.get_or_insert_with(Default::default).taints = Some(list);
        }
        self.m.observe_node(&n, at(t), &self.s);
        self.view.nodes.insert(n.metadata.name.clone().unwrap(), n);
    }
    fn pass(&mut self, t: f64) -> PassReport {
        self.m.monitor_pass(&self.view, at(t), &self.s, true)
    }
    fn taint(&mut self, t: f64) -> Vec<Action> {
        self.m.tainting_pass(&self.view, at(t), true, false)
    }
    /// Applies taint changes to the view, as the API server and the watch would.
    fn apply(&mut self, actions: &[Action], t: f64) {
        for a in actions {
            if let Action::ChangeTaints { node, change, .. } = a {
                let mut n = self.view.nodes[node].clone();
                let mut list = n
                    .spec
                    .clone()
                    .unwrap_or_default()
                    .taints
                    .unwrap_or_default();
                taints::apply_change(&mut list, change);
                n.spec.get_or_insert_with(Default::default).taints = Some(list);
                self.put(n, t);
            }
            if let Action::MarkNodeUnknown { node, now, .. } = a {
                let mut n = self.view.nodes[node].clone();
                conditions::mark_unknown(&mut n, *now);
                self.put(n, t);
            }
        }
    }
}

fn unknown_marks(actions: &[Action]) -> Vec<&str> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::MarkNodeUnknown { node, .. } => Some(node.as_str()),
            _ => None,
        })
        .collect()
}

fn added_no_execute(actions: &[Action]) -> Vec<(String, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::ChangeTaints { node, change, .. } => Some((node, change)),
            _ => None,
        })
        .flat_map(|(node, change): (&String, &TaintChange)| {
            change
                .add
                .iter()
                .filter(|t| t.effect == "NoExecute")
                .map(|t| (node.clone(), t.key.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn events(actions: &[Action], reason: &str) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Event(e) if e.reason == reason => Some(e.object.name.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn every_node_is_registered_with_an_event_on_the_first_pass() {
    let mut h = Harness::new(vec![node("a").build(), node("b").build()]);
    let r = h.pass(0.0);
    assert_eq!(events(&r.actions, "RegisteredNode"), vec!["a", "b"]);
    assert!(events(&h.pass(5.0).actions, "RegisteredNode").is_empty());
}

#[test]
fn a_silent_node_is_marked_unknown_on_the_first_pass_strictly_after_grace() {
    let mut h = Harness::new(vec![node("a").zone("z").build()]);
    for t in (0..=50).step_by(5) {
        assert!(
            unknown_marks(&h.pass(t as f64).actions).is_empty(),
            "marked at {t}"
        );
    }
    let r = h.pass(55.0);
    assert_eq!(unknown_marks(&r.actions), vec!["a"]);
    assert_eq!(events(&r.actions, "NodeNotReady"), vec!["a"]);
}

#[test]
fn lease_renewals_keep_a_node_healthy_without_status_updates() {
    let mut h = Harness::new(vec![node("a").build()]);
    for t in (0..=600).step_by(5) {
        if t % 10 == 0 {
            h.m.observe_lease(&lease("a", t as f64), at(t as f64));
        }
        assert!(unknown_marks(&h.pass(t as f64).actions).is_empty());
    }
}

#[test]
fn the_unknown_flip_marks_pods_not_ready_once() {
    let mut h = Harness::new(vec![node("a").build()]);
    h.view.pods.push(pod("p1", "a"));
    h.view.pods.push(pod("p2", "b"));
    let mut already = pod("p3", "a");
    already
        .status
        .as_mut()
        .unwrap()
        .conditions
        .as_mut()
        .unwrap()[0]
        .status = "False".into();
    h.view.pods.push(already);
    h.pass(0.0);
    let r = h.pass(55.0);
    let marked: Vec<_> = r
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::MarkPodsNotReady {
                node, pods, now, ..
            } => Some((node.as_str(), pods.clone(), *now)),
            _ => None,
        })
        .collect();
    let p1 = PodId {
        namespace: "default".into(),
        name: "p1".into(),
        uid: "uid-p1".into(),
    };
    assert_eq!(marked, vec![("a", vec![p1], at(55.0))]);
    // One action for the node's pods, and no Event on them yet: the writer records each one
    // after its pod's write.
    assert!(
        !r.actions
            .iter()
            .any(|a| matches!(a, Action::Event(e) if e.object.kind == "Pod"))
    );
    // The write has not landed yet: the next pass must not flip (and mark) again.
    let r = h.pass(60.0);
    assert!(unknown_marks(&r.actions).is_empty());
    assert!(events(&r.actions, "NodeNotReady").is_empty());
}

#[test]
fn a_node_reported_not_ready_by_its_kubelet_is_tainted_without_grace_and_without_pod_marking() {
    let mut h = Harness::new(vec![
        node("a").zone("z").build(),
        node("b").zone("z").build(),
    ]);
    h.pass(0.0);
    h.put(node("a").zone("z").ready("False", 3.0).build(), 3.0);
    let r = h.pass(5.0);
    assert!(events(&r.actions, "NodeNotReady").is_empty());
    assert!(
        !r.actions
            .iter()
            .any(|a| matches!(a, Action::MarkPodsNotReady { .. }))
    );
    let t = h.taint(5.0);
    assert_eq!(
        added_no_execute(&t),
        vec![("a".to_string(), NOT_READY.to_string())]
    );
}

#[test]
fn the_flipped_node_is_queued_in_the_same_pass_and_tainted_as_soon_as_its_mark_shows() {
    let mut h = Harness::new(vec![
        node("a").zone("z").build(),
        node("b").zone("z").build(),
        node("c").zone("z").build(),
    ]);
    h.put(node("b").zone("z").ready("True", 50.0).build(), 50.0);
    h.put(node("c").zone("z").ready("True", 50.0).build(), 50.0);
    h.pass(0.0);
    let r = h.pass(55.0);
    assert_eq!(unknown_marks(&r.actions), vec!["a"]);
    assert_eq!(h.m.queued(&zones::zone_key(&h.view.nodes["a"])), 1);
    h.apply(&r.actions, 55.0);
    let t = h.taint(55.0);
    assert_eq!(
        added_no_execute(&t),
        vec![("a".to_string(), UNREACHABLE.to_string())]
    );
}

/// Three nodes of zone z and two healthy ones; a and b go silent and are marked at 55 s.
fn two_marked_in_one_zone() -> (Harness, PassReport) {
    let mut h = Harness::new(
        ["a", "b", "c", "d", "e"]
            .iter()
            .map(|n| node(n).zone("z").build())
            .collect(),
    );
    for n in ["c", "d", "e"] {
        h.put(node(n).zone("z").ready("True", 50.0).build(), 50.0);
    }
    h.pass(0.0);
    let r = h.pass(55.0);
    assert_eq!(unknown_marks(&r.actions), vec!["a", "b"]);
    (h, r)
}

#[test]
fn a_zone_spends_no_token_on_a_node_whose_unknown_mark_the_cache_does_not_show_yet() {
    let (mut h, r) = two_marked_in_one_zone();
    // The marks are held (a hang, an outage): nothing is tainted, and the token stays.
    for i in 0..100 {
        assert!(added_no_execute(&h.taint(55.0 + f64::from(i) * 0.1)).is_empty());
    }
    assert_eq!(h.m.queued(&zones::zone_key(&h.view.nodes["a"])), 2);
    // They land at 65 s: the first taint goes at once, the next a whole 10 s later.
    h.apply(&r.actions, 65.0);
    let first = h.taint(65.0);
    assert_eq!(
        added_no_execute(&first),
        vec![("a".to_string(), UNREACHABLE.to_string())]
    );
    h.apply(&first, 65.0);
    assert!(added_no_execute(&h.taint(74.9)).is_empty());
    assert_eq!(
        added_no_execute(&h.taint(75.0)),
        vec![("b".to_string(), UNREACHABLE.to_string())]
    );
}

#[test]
fn a_node_whose_mark_landed_is_tainted_before_one_queued_ahead_whose_mark_did_not() {
    let (mut h, r) = two_marked_in_one_zone();
    // Only b's mark lands: b takes the token, a waits in its place.
    let b_only: Vec<Action> = r
        .actions
        .iter()
        .filter(|a| matches!(a, Action::MarkNodeUnknown { node, .. } if node == "b"))
        .cloned()
        .collect();
    h.apply(&b_only, 55.0);
    let b = h.taint(55.0);
    assert_eq!(
        added_no_execute(&b),
        vec![("b".to_string(), UNREACHABLE.to_string())]
    );
    h.apply(&b, 55.0);
    h.apply(&r.actions, 56.0);
    assert!(added_no_execute(&h.taint(64.9)).is_empty());
    assert_eq!(
        added_no_execute(&h.taint(65.0)),
        vec![("a".to_string(), UNREACHABLE.to_string())]
    );
}

#[test]
fn a_node_whose_noschedule_taint_the_cache_does_not_show_yet_waits_without_a_token() {
    let (mut h, r) = two_marked_in_one_zone();
    h.apply(&r.actions, 55.0);
    // a's NoSchedule taint is still on its way (retried through an outage, say): the writer
    // would hold a's NoExecute taint behind it, so b takes the token.
    let mut a = h.view.nodes["a"].clone();
    a.spec.get_or_insert_with(Default::default).taints = Some(Vec::new());
    h.m.observe_node(&a, at(55.0), &h.s);
    h.view.nodes.insert("a".into(), a);
    assert_eq!(
        added_no_execute(&h.taint(55.0)),
        vec![("b".to_string(), UNREACHABLE.to_string())]
    );
}

#[test]
fn the_noschedule_taint_of_the_node_its_zone_taints_next_is_marked_to_go_ahead_of_the_others() {
    let (mut h, r) = two_marked_in_one_zone();
    h.apply(&r.actions, 55.0);
    // As the watch shows each node once its mark landed, before its NoSchedule taint did.
    let next_in_zone = |h: &Harness, name: &str| {
        let mut marked = h.view.nodes[name].clone();
        marked.spec.get_or_insert_with(Default::default).taints = Some(Vec::new());
        h.m.node_updated(&marked, at(55.0))
            .into_iter()
            .find_map(|a| match a {
                Action::ChangeTaints {
                    purpose: TaintPurpose::Conditions { next_in_zone },
                    ..
                } => Some(next_in_zone),
                _ => None,
            })
    };
    // Both lack their NoSchedule taint: a heads the zone's queue, b waits behind it.
    assert_eq!(next_in_zone(&h, "a"), Some(true));
    assert_eq!(next_in_zone(&h, "b"), Some(false));
}

#[test]
fn a_zones_next_taint_waits_for_the_last_one_to_land_and_counts_its_token_from_the_landing() {
    let (mut h, r) = two_marked_in_one_zone();
    h.apply(&r.actions, 55.0);
    let a = h.taint(55.0);
    assert_eq!(
        added_no_execute(&a),
        vec![("a".to_string(), UNREACHABLE.to_string())]
    );
    // a's taint waits 5 s at the client's limiter and lands at 60 s: b's token comes 10 s
    // after that, so the two land a token apart, not 5 s.
    assert!(added_no_execute(&h.taint(59.9)).is_empty());
    h.apply(&a, 60.0);
    assert!(added_no_execute(&h.taint(65.0)).is_empty());
    assert!(added_no_execute(&h.taint(69.9)).is_empty());
    assert_eq!(
        added_no_execute(&h.taint(70.0)),
        vec![("b".to_string(), UNREACHABLE.to_string())]
    );
}

#[test]
fn a_zone_taint_whose_write_failed_is_released_again_with_a_new_token() {
    let (mut h, r) = two_marked_in_one_zone();
    h.apply(&r.actions, 55.0);
    // a's taint is released at 55 s and its write fails: the cache never shows it.
    assert_eq!(added_no_execute(&h.taint(55.0)).len(), 1);
    // b takes the next token at 65 s.
    let b = h.taint(65.0);
    assert_eq!(
        added_no_execute(&b),
        vec![("b".to_string(), UNREACHABLE.to_string())]
    );
    h.apply(&b, 65.0);
    // a's taint, no longer assumed on its way, is queued again by the next pass and waits for
    // the token after b's: 75 s, not at once.
    h.pass(70.0);
    assert_eq!(h.m.queued(&zones::zone_key(&h.view.nodes["a"])), 1);
    assert!(added_no_execute(&h.taint(74.9)).is_empty());
    assert_eq!(
        added_no_execute(&h.taint(75.0)),
        vec![("a".to_string(), UNREACHABLE.to_string())]
    );
}

#[test]
fn a_normal_zone_taints_one_node_per_ten_seconds_at_the_default_rate() {
    let nodes: Vec<Node> = (0..10)
        .map(|i| node(&format!("n{i}")).zone("z").build())
        .collect();
    let mut h = Harness::new(nodes);
    h.pass(0.0);
    for i in 0..2 {
        h.put(
            node(&format!("n{i}")).zone("z").ready("False", 1.0).build(),
            1.0,
        );
    }
    h.pass(5.0);
    let mut tainted = Vec::new();
    let mut t = 5.0;
    while t < 30.0 {
        let a = h.taint(t);
        for (n, _) in added_no_execute(&a) {
            tainted.push((n, t));
        }
        h.apply(&a, t);
        t += 0.1;
        t = (t * 10.0f64).round() / 10.0;
    }
    assert_eq!(tainted.len(), 2);
    assert_eq!(tainted[0].1, 5.0);
    assert!(
        (tainted[1].1 - 15.0).abs() < 1e-9,
        "second at {}",
        tainted[1].1
    );
}

#[test]
fn unreachable_swaps_to_not_ready_at_once_keeping_its_time_added() {
    let mut h = Harness::new(vec![
        node("a")
            .zone("z")
            .ready("False", 0.0)
            .taint(UNREACHABLE, "NoExecute", -100.0)
            .build(),
    ]);
    let r = h.pass(0.0);
    let swap = r
        .actions
        .iter()
        .find_map(|a| match a {
            Action::ChangeTaints {
                change,
                purpose: TaintPurpose::Swap,
                ..
            } => Some(change.clone()),
            _ => None,
        })
        .expect("a swap");
    assert_eq!(swap.add[0].key, NOT_READY);
    assert_eq!(swap.add[0].time_added, Some(Time(at(-100.0))));
    assert_eq!(swap.remove[0].key, UNREACHABLE);
}

#[test]
fn at_start_a_node_that_is_still_unknown_keeps_its_taint_and_a_ready_one_loses_it() {
    let mut h = Harness::new(vec![
        node("sick")
            .zone("z")
            .ready("Unknown", 0.0)
            .taint(UNREACHABLE, "NoExecute", -100.0)
            .build(),
        node("well")
            .zone("z")
            .taint(UNREACHABLE, "NoExecute", -100.0)
            .build(),
    ]);
    let r = h.pass(0.0);
    let removed: Vec<&str> = r
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::ChangeTaints { node, change, .. }
                if !change.remove.is_empty() && change.add.is_empty() =>
            {
                Some(node.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(removed, vec!["well"]);
    // The sick node is not re-tainted (its taint and timeAdded stay).
    assert!(added_no_execute(&h.taint(0.0)).is_empty());
}

#[test]
fn a_node_ready_again_loses_its_no_execute_taint() {
    let mut h = Harness::new(vec![node("a").zone("z").ready("True", 0.0).build()]);
    h.pass(0.0);
    h.put(
        node("a")
            .zone("z")
            .ready("True", 10.0)
            .taint(UNREACHABLE, "NoExecute", 5.0)
            .build(),
        10.0,
    );
    let r = h.pass(10.0);
    assert!(r.actions.iter().any(|a| matches!(
        a,
        Action::ChangeTaints {
            purpose: TaintPurpose::Recovery,
            ..
        }
    )));
}

#[test]
fn a_small_zone_in_partial_disruption_stops_tainting() {
    let nodes: Vec<Node> = (0..5)
        .map(|i| node(&format!("n{i}")).zone("z").build())
        .collect();
    let mut h = Harness::new(nodes);
    h.pass(0.0);
    for i in 0..3 {
        h.put(
            node(&format!("n{i}")).zone("z").ready("False", 1.0).build(),
            1.0,
        );
    }
    let r = h.pass(5.0);
    assert_eq!(
        r.zone_changes.last().map(|c| c.1),
        Some(ZoneState::PartialDisruption)
    );
    let mut tainted = 0;
    for k in 0..600 {
        tainted += added_no_execute(&h.taint(5.0 + k as f64 * 0.1)).len();
    }
    assert_eq!(tainted, 0);
}

#[test]
fn when_every_zone_is_fully_disrupted_our_taints_come_off_and_tainting_stops() {
    let mut h = Harness::new(vec![
        node("a").zone("z1").build(),
        node("b")
            .zone("z2")
            .taint(UNREACHABLE, "NoExecute", -10.0)
            .ready("Unknown", 0.0)
            .build(),
    ]);
    h.pass(0.0);
    h.put(node("a").zone("z1").ready("False", 1.0).build(), 1.0);
    let r = h.pass(5.0);
    assert!(r.all_zones_down);
    let removals: Vec<&str> = r
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::ChangeTaints {
                node,
                purpose: TaintPurpose::Recovery,
                ..
            } => Some(node.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(removals, vec!["b"]);
    assert!(added_no_execute(&h.taint(5.0)).is_empty());
    assert!(added_no_execute(&h.taint(30.0)).is_empty());
}

#[test]
fn leaving_the_all_zones_down_mode_grants_every_node_a_fresh_grace_period() {
    let mut h = Harness::new(vec![
        node("a").zone("z1").build(),
        node("b").zone("z2").build(),
    ]);
    h.pass(0.0);
    h.put(node("a").zone("z1").ready("False", 1.0).build(), 1.0);
    h.put(node("b").zone("z2").ready("False", 1.0).build(), 1.0);
    assert!(h.pass(5.0).all_zones_down);
    h.put(node("b").zone("z2").ready("False", 80.0).build(), 80.0);
    h.put(node("a").zone("z1").ready("True", 100.0).build(), 100.0);
    assert!(!h.pass(100.0).all_zones_down);
    // b's last heartbeat was at 80s, but leaving the mode reset its probe to 100s.
    assert!(unknown_marks(&h.pass(150.0).actions).is_empty());
    assert_eq!(unknown_marks(&h.pass(155.0).actions), vec!["a", "b"]);
}

#[test]
fn excluded_nodes_do_not_count_in_zone_health() {
    let mut h = Harness::new(vec![
        node("a")
            .zone("z")
            .label(zones::EXCLUDE_DISRUPTION, "")
            .ready("False", 0.0)
            .build(),
        node("b").zone("z").build(),
    ]);
    let r = h.pass(0.0);
    let z = zones::zone_key(&h.view.nodes["b"]);
    assert_eq!(r.zone_health, vec![(z, 1, 0)]);
}

#[test]
fn a_stale_watch_marks_nothing_unknown_and_queues_no_taint() {
    let mut h = Harness::new(vec![node("a").zone("z").build()]);
    h.pass(0.0);
    let r = h.m.monitor_pass(&h.view, at(60.0), &h.s, false);
    assert!(unknown_marks(&r.actions).is_empty());
    assert!(
        h.m.tainting_pass(&h.view, at(60.0), false, false)
            .is_empty()
    );
    assert_eq!(h.m.queued(&zones::zone_key(&h.view.nodes["a"])), 0);
}

#[test]
fn deleted_nodes_are_announced_and_forgotten() {
    let mut h = Harness::new(vec![node("a").build()]);
    h.pass(0.0);
    h.view.nodes.remove("a");
    let r = h.pass(5.0);
    assert_eq!(events(&r.actions, "RemovingNode"), vec!["a"]);
    assert!(h.m.health().get("a").is_none());
    assert_eq!(r.vanished_zones, vec![String::new()]);
}

#[test]
fn the_breaker_holds_no_execute_taints_back_and_warns_once_per_node() {
    let nodes: Vec<Node> = (0..4)
        .map(|i| node(&format!("n{i}")).zone(&format!("z{i}")).build())
        .collect();
    let mut h = Harness::new(nodes);
    h.s.max_unhealthy_fraction = Some(0.25);
    h.pass(0.0);
    for i in 0..2 {
        h.put(
            node(&format!("n{i}"))
                .zone(&format!("z{i}"))
                .ready("False", 1.0)
                .build(),
            1.0,
        );
    }
    let r = h.pass(5.0);
    assert!(r.breaker_open);
    let a = h.taint(5.0);
    assert!(added_no_execute(&a).is_empty());
    assert_eq!(events(&a, "NoExecuteTaintingPaused"), vec!["n0", "n1"]);
    let message = a
        .iter()
        .find_map(|a| match a {
            Action::Event(e) if e.reason == "NoExecuteTaintingPaused" => Some(e.message.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        message.contains("2 of 4 nodes are not Ready, more than --max-unhealthy-fraction=0.25"),
        "the Event names the numbers: {message}"
    );
    assert!(events(&h.taint(5.1), "NoExecuteTaintingPaused").is_empty());
    // One node recovers: 1 of 4 is not above 0.25, the breaker closes and tainting resumes.
    h.put(node("n1").zone("z1").ready("True", 6.0).build(), 6.0);
    assert!(!h.pass(10.0).breaker_open);
    assert_eq!(
        added_no_execute(&h.taint(10.0)),
        vec![("n0".to_string(), NOT_READY.to_string())]
    );
}

#[test]
fn a_node_without_ready_gets_the_startup_grace_and_never_updated_reason() {
    let mut n = node("a").no_ready().build();
    n.metadata.creation_timestamp = Some(Time(at(0.0)));
    let mut h = Harness::new(vec![n]);
    assert!(unknown_marks(&h.pass(60.0).actions).is_empty());
    let r = h.pass(65.0);
    assert_eq!(unknown_marks(&r.actions), vec!["a"]);
    // No NodeNotReady: the node never was Ready.
    assert!(events(&r.actions, "NodeNotReady").is_empty());
}

#[test]
fn node_updates_keep_condition_taints_and_beta_labels_in_step() {
    let n = node("a")
        .ready("False", 0.0)
        .label("kubernetes.io/os", "linux")
        .build();
    let actions = Monitor::new().node_updated(&n, at(0.0));
    assert!(actions.iter().any(
        |a| matches!(a, Action::ChangeTaints { purpose: TaintPurpose::Conditions { next_in_zone: false }, change, .. }
        if change.add.iter().any(|t| t.key == NOT_READY && t.effect == "NoSchedule"))
    ));
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::SetLabels { labels, .. }
        if labels.get("beta.kubernetes.io/os").map(String::as_str) == Some("linux")))
    );
}

/// Names of the nodes our NoExecute taints are taken off (recovery).
fn recovered(actions: &[Action]) -> Vec<&str> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::ChangeTaints {
                node,
                purpose: TaintPurpose::Recovery,
                ..
            } => Some(node.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_ready_node_that_turns_not_ready_after_quiet_passes_is_queued_and_tainted() {
    let mut h = Harness::new(vec![
        node("a").zone("z").build(),
        node("b").zone("z").build(),
    ]);
    for t in [0.0, 5.0, 10.0] {
        h.pass(t);
    }
    assert_eq!(h.m.queued(&zones::zone_key(&h.view.nodes["a"])), 0);
    h.put(node("a").zone("z").ready("False", 12.0).build(), 12.0);
    h.pass(15.0);
    assert_eq!(h.m.queued(&zones::zone_key(&h.view.nodes["a"])), 1);
    let t = h.taint(15.0);
    assert_eq!(
        added_no_execute(&t),
        vec![("a".to_string(), NOT_READY.to_string())]
    );
    h.apply(&t, 15.0);
    // Ready again (the kubelet's update keeps our taint): the taint comes off.
    h.put(
        node("a")
            .zone("z")
            .ready("True", 16.0)
            .taint(NOT_READY, "NoExecute", 15.0)
            .build(),
        16.0,
    );
    let r = h.pass(20.0);
    assert_eq!(recovered(&r.actions), vec!["a"]);
}

#[test]
fn a_no_execute_taint_someone_adds_to_a_quiet_ready_node_comes_off_on_the_next_pass() {
    let mut h = Harness::new(vec![node("a").zone("z").build()]);
    h.pass(0.0);
    assert!(recovered(&h.pass(5.0).actions).is_empty());
    h.put(
        node("a")
            .zone("z")
            .taint(NOT_READY, "NoExecute", 6.0)
            .build(),
        6.0,
    );
    assert_eq!(recovered(&h.pass(10.0).actions), vec!["a"]);
    // Once the cache shows it gone (after our pending change expires), nothing more to do.
    h.put(node("a").zone("z").build(), 11.0);
    assert!(recovered(&h.pass(25.0).actions).is_empty());
}

#[test]
fn a_no_execute_taint_someone_removes_from_a_not_ready_node_comes_back() {
    let mut h = Harness::new(vec![
        node("a").zone("z").ready("False", 0.0).build(),
        node("b").zone("z").build(),
    ]);
    h.pass(0.0);
    let t = h.taint(0.0);
    assert_eq!(
        added_no_execute(&t),
        vec![("a".to_string(), NOT_READY.to_string())]
    );
    h.apply(&t, 0.0);
    assert!(added_no_execute(&h.taint(5.0)).is_empty());
    // Someone takes it off; once our own change is no longer assumed in flight, the next pass
    // re-queues the node and the taint goes back on.
    h.put(node("a").zone("z").ready("False", 0.0).build(), 20.0);
    h.pass(20.0);
    assert_eq!(
        added_no_execute(&h.taint(20.0)),
        vec![("a".to_string(), NOT_READY.to_string())]
    );
}

#[test]
fn a_node_that_changes_zone_is_counted_in_its_new_zone() {
    let mut h = Harness::new(vec![
        node("a").zone("z1").ready("False", 0.0).build(),
        node("b").zone("z2").build(),
    ]);
    let z1 = zones::zone_key(&h.view.nodes["a"]);
    let z2 = zones::zone_key(&h.view.nodes["b"]);
    let r = h.pass(0.0);
    assert_eq!(r.zone_health, vec![(z1.clone(), 1, 1), (z2.clone(), 1, 0)]);
    h.put(node("a").zone("z2").ready("False", 0.0).build(), 1.0);
    let r = h.pass(5.0);
    assert_eq!(r.zone_health, vec![(z2.clone(), 2, 1)]);
    assert_eq!(r.vanished_zones, vec![z1]);
    assert_eq!(h.m.queued(&z2), 1);
}

#[test]
fn a_deleted_node_created_again_under_its_name_is_registered_and_judged_afresh() {
    let mut h = Harness::new(vec![
        node("a").zone("z").build(),
        node("b").zone("z").build(),
    ]);
    h.pass(0.0);
    h.view.nodes.remove("a");
    h.pass(5.0);
    assert!(h.m.health().get("a").is_none());
    h.put(node("a").zone("z").ready("False", 6.0).build(), 6.0);
    let r = h.pass(10.0);
    assert_eq!(events(&r.actions, "RegisteredNode"), vec!["a"]);
    assert_eq!(r.zone_health[0].1, 2);
    assert_eq!(r.zone_health[0].2, 1);
    assert_eq!(
        added_no_execute(&h.taint(10.0)),
        vec![("a".to_string(), NOT_READY.to_string())]
    );
}

#[test]
fn a_node_in_the_view_that_was_never_observed_is_judged_from_the_view() {
    let mut h = Harness::new(vec![node("b").zone("z").build()]);
    let a = node("a")
        .zone("z")
        .ready("False", 0.0)
        .taint(UNREACHABLE, "NoExecute", 0.0)
        .build();
    h.view.nodes.insert("a".into(), a);
    // Unreachable on a node reported False: swapped at once, whatever the monitor observed.
    let r = h.pass(0.0);
    assert!(r.actions.iter().any(|a| matches!(
        a,
        Action::ChangeTaints {
            node,
            purpose: TaintPurpose::Swap,
            ..
        } if node == "a"
    )));
}
