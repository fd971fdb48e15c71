//! Unit tests of the head-to-head bench's conformance classifier
//! (`benches/head_to_head/conformance.rs`, a pure function of the two runs' sets).

// The bench uses the name helpers this test does not.
#[allow(dead_code)]
#[path = "../benches/head_to_head/conformance.rs"]
mod conformance;

use conformance::*;
use std::collections::{BTreeMap, BTreeSet};

fn set(xs: &[&str]) -> BTreeSet<String> {
    xs.iter().map(|x| x.to_string()).collect()
}

fn times(xs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    xs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Three silent nodes, node-00001 comes back at 70 s; both controllers do the same.
fn side() -> Side {
    Side {
        unknown: times(&[
            ("node-00000", 45.0),
            ("node-00001", 46.0),
            ("node-00002", 47.0),
        ]),
        tainted: times(&[
            ("node-00000", 46.0),
            ("node-00001", 60.0),
            ("node-00002", 61.0),
        ]),
        untainted: set(&["node-00001"]),
        not_ready: set(&["p-00000-00", "p-00000-01", "p-00001-00", "p-00001-01"]),
        deleted: times(&[("p-00000-01", 76.1), ("p-00002-01", 91.1)]),
        came_back: times(&[("node-00001", 70.0)]),
        write_verbs: set(&["patch nodes", "patch nodes/status", "patch pods/status"]),
        event_groups: set(&["events.k8s.io"]),
        events: 10,
        peak_rate: 5.0,
        qps: 20.0,
        ..Side::default()
    }
}

fn upstream() -> Side {
    Side {
        write_verbs: set(&["patch nodes", "update nodes/status", "update pods/status"]),
        event_groups: set(&[""]),
        ..side()
    }
}

fn scenario() -> Scenario {
    Scenario {
        recovering: set(&["node-00001"]),
        outage: None,
        fault: None,
    }
}

fn row<'a>(rows: &'a [Row], outcome: &str) -> &'a Row {
    rows.iter()
        .find(|r| r.outcome.starts_with(outcome))
        .unwrap_or_else(|| panic!("no row {outcome}: {rows:?}"))
}

#[test]
fn the_same_behaviour_is_same_in_every_set_row() {
    let rows = classify(&scenario(), &side(), &side());
    assert!(rows.len() >= 10, "{rows:?}");
    assert!(rows.iter().all(|r| r.class == Class::Same), "{rows:?}");
}

#[test]
fn upstream_deleting_pods_of_a_node_after_it_came_back_is_the_recheck_difference() {
    let mut up = upstream();
    up.deleted.insert("p-00001-01".into(), 76.0);
    up.wrong_deletions.insert("p-00001-01".into());
    let rows = classify(&scenario(), &side(), &up);
    assert_eq!(
        row(&rows, "pods deleted").class,
        Class::Deliberate(vec![(&RECHECKED, 1)])
    );
    assert_eq!(
        row(&rows, "wrong deletions").class,
        Class::Deliberate(vec![(&RECHECKED, 1)])
    );
}

#[test]
fn upstream_deleting_pods_of_a_recovering_node_before_it_came_back_is_unexplained() {
    let mut up = upstream();
    up.deleted.insert("p-00001-01".into(), 65.0);
    up.wrong_deletions.insert("p-00001-01".into());
    let rows = classify(&scenario(), &side(), &up);
    assert_eq!(
        row(&rows, "pods deleted").class,
        Class::Unexplained(1, vec![])
    );
    assert_eq!(
        row(&rows, "wrong deletions").class,
        Class::Unexplained(1, vec![])
    );
}

#[test]
fn ours_deleting_pods_of_a_node_that_came_back_is_unexplained_even_when_upstream_is_behind() {
    let mut ours = side();
    ours.deleted.insert("p-00001-01".into(), 76.0);
    ours.wrong_deletions.insert("p-00001-01".into());
    let mut up = upstream();
    up.peak_rate = 20.0;
    let rows = classify(&scenario(), &ours, &up);
    assert_eq!(
        row(&rows, "wrong deletions").class,
        Class::Unexplained(1, vec![])
    );
}

#[test]
fn an_entry_missing_on_a_side_at_its_rate_limit_is_the_rate_limit_difference() {
    let mut up = upstream();
    up.unknown.remove("node-00002");
    up.tainted.remove("node-00002");
    up.deleted.remove("p-00002-01");
    up.missing_deletions.insert("p-00002-01".into());
    up.peak_rate = 19.0;
    let rows = classify(&scenario(), &side(), &up);
    for outcome in [
        "silent nodes marked Unknown",
        "nodes tainted",
        "pods deleted",
    ] {
        assert_eq!(
            row(&rows, outcome).class,
            Class::Deliberate(vec![(&RATE_LIMITED, 1)]),
            "{outcome}"
        );
    }
    assert_eq!(
        row(&rows, "missing deletions").class,
        Class::Deliberate(vec![(&RATE_LIMITED, 1)])
    );
}

#[test]
fn an_entry_missing_on_a_side_well_under_its_rate_limit_is_unexplained() {
    let mut ours = side();
    ours.deleted.remove("p-00002-01");
    ours.missing_deletions.insert("p-00002-01".into());
    ours.peak_rate = 17.0;
    let rows = classify(&scenario(), &ours, &upstream());
    assert_eq!(
        row(&rows, "pods deleted").class,
        Class::Unexplained(1, vec![])
    );
    assert_eq!(
        row(&rows, "missing deletions").class,
        Class::Unexplained(1, vec![])
    );
}

#[test]
fn ours_skipping_the_marks_of_a_node_that_came_back_is_the_recheck_difference() {
    let mut ours = side();
    ours.not_ready.remove("p-00001-00");
    ours.not_ready.remove("p-00001-01");
    let rows = classify(&scenario(), &ours, &upstream());
    assert_eq!(
        row(&rows, "pods marked not ready").class,
        Class::Deliberate(vec![(&RECHECKED, 2)])
    );
    // The same skip on a node that never came back is not explained.
    let mut ours = side();
    ours.not_ready.remove("p-00000-00");
    let rows = classify(&scenario(), &ours, &upstream());
    assert_eq!(
        row(&rows, "pods marked not ready").class,
        Class::Unexplained(1, vec![])
    );
}

#[test]
fn ours_patching_where_upstream_updates_is_the_patches_difference_and_the_reverse_is_not() {
    let rows = classify(&scenario(), &side(), &upstream());
    assert_eq!(
        row(&rows, "how nodes and pods are written").class,
        Class::Deliberate(vec![(&PATCHES, 4)])
    );
    let mut ours = side();
    ours.write_verbs.insert("update nodes".into());
    let rows = classify(&scenario(), &ours, &upstream());
    assert_eq!(
        row(&rows, "how nodes and pods are written").class,
        Class::Unexplained(1, vec![(&PATCHES, 4)])
    );
}

#[test]
fn ours_events_through_events_api_are_documented_and_upstream_ones_there_would_not_be() {
    let rows = classify(&scenario(), &side(), &upstream());
    assert_eq!(
        row(&rows, "Events: API").class,
        Class::Deliberate(vec![(&EVENTS_API, 2)])
    );
    let (mut ours, mut up) = (side(), upstream());
    std::mem::swap(&mut ours.event_groups, &mut up.event_groups);
    let rows = classify(&scenario(), &ours, &up);
    assert_eq!(
        row(&rows, "Events: API").class,
        Class::Unexplained(2, vec![])
    );
}

#[test]
fn a_write_to_a_healthy_node_is_always_unexplained() {
    let mut up = upstream();
    up.writes_to_healthy = 3;
    let rows = classify(&scenario(), &side(), &up);
    assert_eq!(
        row(&rows, "writes to healthy").class,
        Class::Unexplained(3, vec![])
    );
}

/// A zone of 100 nodes, 80 silent, Unknown at 45 + i/10 s: the 55th at 50.4 s; run ends at 170 s.
fn outage_side(taints: &[f64]) -> Side {
    let nodes: Vec<String> = (0..80).map(|i| node_name(i * 4)).collect();
    Side {
        unknown: nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), 45.0 + i as f64 / 10.0))
            .collect(),
        tainted: nodes
            .iter()
            .zip(taints)
            .map(|(n, t)| (n.clone(), *t))
            .collect(),
        peak_rate: 5.0,
        qps: 20.0,
        ..Side::default()
    }
}

fn outage(zone_size: usize) -> Scenario {
    Scenario {
        recovering: BTreeSet::new(),
        outage: Some(Outage {
            nodes: (0..80).map(|i| node_name(i * 4)).collect(),
            zone_size,
            unhealthy: 0.55,
            large: 50,
            secondary: 0.1,
            monitor: 5.0,
            end: 170.0,
        }),
        fault: None,
    }
}

/// Five at 1/s before the zone turns, then one each 10 s from 60 s to the end.
fn at_the_zones_rate() -> Vec<f64> {
    let mut t = vec![45.5, 46.5, 47.5, 48.5, 49.5];
    t.extend((0..11).map(|k| 60.0 + 10.0 * k as f64));
    t
}

#[test]
fn both_keeping_a_partially_disrupted_zone_to_its_secondary_rate_is_same() {
    let (a, b) = (
        outage_side(&at_the_zones_rate()),
        outage_side(&at_the_zones_rate()),
    );
    let rows = classify(&outage(100), &a, &b);
    assert_eq!(row(&rows, "outage zone").class, Class::Same, "{rows:?}");
}

#[test]
fn tainting_a_partially_disrupted_zone_at_the_full_rate_is_unexplained() {
    let full: Vec<f64> = (0..80).map(|k| 45.5 + k as f64).collect();
    let rows = classify(
        &outage(100),
        &outage_side(&full),
        &outage_side(&at_the_zones_rate()),
    );
    assert_eq!(
        row(&rows, "outage zone").class,
        Class::Unexplained(1, vec![])
    );
    // And the taint set's differences are not excused as timing then.
    assert!(matches!(
        row(&rows, "nodes tainted").class,
        Class::Unexplained(..)
    ));
}

#[test]
fn a_small_zone_in_partial_disruption_is_not_tainted_at_all() {
    // 50 nodes is not more than the large-cluster threshold: the reduced rate is 0.
    let rows = classify(
        &outage(50),
        &outage_side(&at_the_zones_rate()),
        &outage_side(&[45.5, 46.5]),
    );
    let zone = row(&rows, "outage zone");
    assert_eq!(zone.class, Class::Unexplained(1, vec![]), "{zone:?}");
}

#[test]
fn which_nodes_of_the_zone_each_side_tainted_at_the_right_rate_is_the_timing_difference() {
    let a = outage_side(&at_the_zones_rate());
    let mut b = outage_side(&at_the_zones_rate());
    // Upstream reached another node first.
    let t = b.tainted.remove(&node_name(0)).unwrap();
    b.tainted.insert(node_name(79 * 4), t);
    let rows = classify(&outage(100), &a, &b);
    assert_eq!(
        row(&rows, "nodes tainted").class,
        Class::Deliberate(vec![(&ZONE_TIMING, 2)])
    );
}

#[test]
fn a_side_that_never_saw_the_zone_cross_the_threshold_is_explained_only_at_its_rate_limit() {
    let mut b = outage_side(&[45.5]);
    b.unknown = b.unknown.into_iter().take(20).collect();
    let rows = classify(&outage(100), &outage_side(&at_the_zones_rate()), &b);
    assert_eq!(
        row(&rows, "outage zone").class,
        Class::Unexplained(1, vec![])
    );
    b.peak_rate = 20.0;
    let rows = classify(&outage(100), &outage_side(&at_the_zones_rate()), &b);
    assert_eq!(
        row(&rows, "outage zone").class,
        Class::Deliberate(vec![(&RATE_LIMITED, 1)])
    );
}

#[test]
fn every_rule_cites_an_anchor_that_docs_differences_md_has() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/differences.md"))
        .unwrap();
    for rule in RULES {
        assert!(
            doc.contains(&format!("<a id=\"{}\"></a>", rule.anchor)),
            "docs/differences.md has no anchor {}",
            rule.anchor
        );
    }
}

#[test]
fn a_row_renders_its_class_and_its_anchors() {
    let mut up = upstream();
    up.deleted.insert("p-00001-01".into(), 76.0);
    let rows = classify(&scenario(), &side(), &up);
    let md = row(&rows, "pods deleted").markdown();
    assert!(md.contains("deliberate difference"), "{md}");
    assert!(
        md.contains("(docs/differences.md#writes-are-rechecked)"),
        "{md}"
    );
    assert!(md.contains("only upstream: node-00001"), "{md}");
}

#[test]
fn only_a_ready_false_condition_counts_as_a_not_ready_mark() {
    use serde_json::json;
    let mark = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}});
    let full = json!({"metadata": {"name": "p"}, "status": {"phase": "Running", "conditions": [
        {"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "False"}]}});
    let disruption = json!({"status": {"conditions": [
        {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager"}]}});
    let ready = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    assert!(is_not_ready_mark(&mark));
    assert!(is_not_ready_mark(&full));
    assert!(!is_not_ready_mark(&disruption));
    assert!(!is_not_ready_mark(&ready));
    assert!(!is_not_ready_mark(&json!(null)));
}

#[test]
fn a_write_verb_the_other_side_never_reached_is_explained_only_at_its_rate_limit() {
    // Ours, at its limit, wrote no pod at all; upstream patched pods/status (DisruptionTarget).
    let mut ours = side();
    ours.write_verbs = set(&["patch nodes", "patch nodes/status"]);
    ours.peak_rate = 20.0;
    let mut up = upstream();
    up.write_verbs.insert("patch pods/status".into());
    let rows = classify(&scenario(), &ours, &up);
    assert_eq!(
        row(&rows, "how nodes and pods are written").class,
        Class::Deliberate(vec![(&RATE_LIMITED, 1), (&PATCHES, 3)])
    );
    // Not at its limit: the same gap is unexplained.
    ours.peak_rate = 5.0;
    let rows = classify(&scenario(), &ours, &up);
    assert_eq!(
        row(&rows, "how nodes and pods are written").class,
        Class::Unexplained(1, vec![(&PATCHES, 3)])
    );
}

/// A 45 s fault ending 75 s after node-00000's kubelet stopped; grace 20 s, period 2 s. The
/// dead node was marked at 25 s and tainted at 26 s (before the fault), its 0 s pod deleted at
/// once; nothing was written against a live node.
fn fault_side() -> Side {
    Side {
        unknown: times(&[("node-00000", 25.0)]),
        tainted: times(&[("node-00000", 26.0)]),
        not_ready: set(&["p-00000-00", "p-00000-01"]),
        deleted: times(&[("p-00000-00", 26.2)]),
        write_verbs: set(&["patch nodes", "patch nodes/status", "patch pods/status"]),
        peak_rate: 2.0,
        qps: 20.0,
        fault_end: Some(75.0),
        ..Side::default()
    }
}

fn fault() -> Scenario {
    Scenario {
        fault: Some(Fault {
            dead: set(&["node-00000"]),
            grace: 20.0,
            monitor: 2.0,
        }),
        ..Scenario::default()
    }
}

const FAULT_ROWS: [&str; 7] = [
    "live nodes marked Unknown",
    "live nodes tainted",
    "live nodes' pods marked not ready",
    "live nodes' pods deleted",
    "dead node marked Unknown",
    "dead node tainted",
    "dead node keeps its taint",
];

#[test]
fn a_fault_that_marks_no_live_node_and_finds_the_dead_one_is_same_in_every_row() {
    let rows = classify(&fault(), &fault_side(), &fault_side());
    for outcome in FAULT_ROWS {
        assert_eq!(row(&rows, outcome).class, Class::Same, "{outcome}");
    }
    assert!(rows.iter().all(|r| r.class == Class::Same), "{rows:?}");
    assert!(
        row(&rows, "dead node marked Unknown")
            .detail
            .contains("node-00000 -50.0 s"),
        "{rows:?}"
    );
}

#[test]
fn a_scenario_without_a_fault_has_no_fault_rows() {
    let rows = classify(&scenario(), &side(), &side());
    assert!(
        rows.iter().all(|r| !r.outcome.starts_with("live nodes")),
        "{rows:?}"
    );
    assert!(
        rows.iter().all(|r| !r.outcome.starts_with("dead node")),
        "{rows:?}"
    );
}

#[test]
fn a_live_node_marked_tainted_and_its_pods_deleted_is_wrong_for_the_side_that_did_it() {
    let mut ours = fault_side();
    ours.live_unknown = times(&[("node-00007", 75.3), ("node-00012", 75.9)]);
    ours.live_tainted = times(&[("node-00007", 76.0)]);
    ours.live_not_ready = set(&["p-00007-00", "p-00007-01", "p-00012-00"]);
    ours.live_deleted = times(&[("p-00007-00", 76.1)]);
    let rows = classify(&fault(), &ours, &fault_side());
    for outcome in &FAULT_ROWS[..4] {
        assert_eq!(
            row(&rows, outcome).class,
            Class::Wrong(vec!["ours"]),
            "{outcome}"
        );
    }
    let marked = row(&rows, "live nodes marked Unknown");
    assert!(
        marked
            .detail
            .contains("ours 2 (node-00007 +0.3 s, node-00012 +0.9 s)"),
        "{marked:?}"
    );
    assert!(marked.markdown().contains("**wrong**: ours"), "{marked:?}");
    // The dead node's rows are untouched by it.
    assert_eq!(row(&rows, "dead node marked Unknown").class, Class::Same);
}

#[test]
fn the_same_live_node_marked_by_both_sides_is_wrong_for_both_not_same() {
    let mut ours = fault_side();
    ours.live_unknown = times(&[("node-00007", 75.3)]);
    let mut up = fault_side();
    up.live_unknown = times(&[("node-00007", 75.1)]);
    let rows = classify(&fault(), &ours, &up);
    assert_eq!(
        row(&rows, "live nodes marked Unknown").class,
        Class::Wrong(vec!["ours", "upstream"])
    );
}

#[test]
fn the_dead_node_marked_within_grace_and_period_of_the_end_is_right_and_later_is_wrong() {
    // Marked only after the fault: at the end + 22 s (the bound) it is in time.
    let mut up = fault_side();
    up.unknown = times(&[("node-00000", 97.0)]);
    up.tainted = times(&[("node-00000", 98.0)]);
    let rows = classify(&fault(), &fault_side(), &up);
    assert_eq!(row(&rows, "dead node marked Unknown").class, Class::Same);
    // At the end + 25 s it is late; never marked and never tainted is wrong too.
    up.unknown = times(&[("node-00000", 100.0)]);
    let mut ours = fault_side();
    ours.unknown.clear();
    ours.tainted.clear();
    let rows = classify(&fault(), &ours, &up);
    assert_eq!(
        row(&rows, "dead node marked Unknown").class,
        Class::Wrong(vec!["ours", "upstream"])
    );
    assert_eq!(
        row(&rows, "dead node tainted").class,
        Class::Wrong(vec!["ours"])
    );
    assert!(
        row(&rows, "dead node marked Unknown")
            .detail
            .starts_with("ours never; upstream node-00000 +25.0 s"),
        "{rows:?}"
    );
}

#[test]
fn the_dead_node_untainted_while_its_kubelet_is_gone_is_wrong_for_that_side() {
    let mut up = fault_side();
    up.untainted = set(&["node-00000"]);
    let rows = classify(&fault(), &fault_side(), &up);
    assert_eq!(
        row(&rows, "dead node keeps its taint").class,
        Class::Wrong(vec!["upstream"])
    );
    assert_eq!(
        row(&rows, "dead node keeps its taint").detail,
        "untainted: ours 0, upstream 1"
    );
}

#[test]
fn under_a_fault_writes_to_live_nodes_are_wrong_for_the_side_that_made_them() {
    let mut up = fault_side();
    up.writes_to_healthy = 77;
    let rows = classify(&fault(), &fault_side(), &up);
    assert_eq!(
        row(&rows, "writes to healthy").class,
        Class::Wrong(vec!["upstream"])
    );
}

#[test]
fn pods_a_side_never_deleted_because_it_untainted_the_dead_node_are_not_rate_limit_lateness() {
    // Upstream, at its limit, untainted the dead node and so never deleted its 60 s pods.
    let mut ours = fault_side();
    ours.deleted.insert("p-00000-03".into(), 76.0);
    let mut up = fault_side();
    up.untainted = set(&["node-00000"]);
    up.missing_deletions = set(&["p-00000-03"]);
    up.peak_rate = 19.0;
    let rows = classify(&fault(), &ours, &up);
    assert_eq!(
        row(&rows, "pods deleted").class,
        Class::Unexplained(1, vec![])
    );
    assert_eq!(
        row(&rows, "missing deletions").class,
        Class::Unexplained(1, vec![])
    );
    // The same gap on a node it kept tainted is lateness at its limit.
    up.untainted.clear();
    let rows = classify(&fault(), &ours, &up);
    assert_eq!(
        row(&rows, "pods deleted").class,
        Class::Deliberate(vec![(&RATE_LIMITED, 1)])
    );
}
