//! Every answer here comes from a monitor and a taint manager driven through their real passes
//! at chosen instants (virtual time: `now` is an argument), then asked.

use super::gather::{self, Sources};
use super::*;
use crate::logic::actions::Action;
use crate::logic::eviction::TaintManager;
use crate::logic::freshness::Guard;
use crate::logic::monitor::Monitor;
use crate::logic::view::ClusterView;
use crate::logic::zones::ZONE_GA;
use crate::settings::{EvictionMode, Settings};
use crate::testing::{at, node, pod};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::time::Duration;

/// A controller's memory over a cluster of plain objects.
struct World {
    view: ClusterView<Vec<Pod>>,
    monitor: Monitor,
    taint_manager: TaintManager,
    settings: Settings,
    guard: Guard,
    trusted: bool,
    role: Role,
}

impl World {
    fn new(settings: Settings) -> World {
        World {
            view: ClusterView::default(),
            monitor: Monitor::new(),
            taint_manager: TaintManager::new(),
            settings,
            guard: Guard::default(),
            trusted: true,
            role: Role::Leader,
        }
    }

    /// The watch delivers `node` at `now` (as an update when it was there); what a node update
    /// calls for (its condition taints) is written at once.
    fn node(&mut self, node: Node, now: Timestamp) {
        let name = node.metadata.name.clone().unwrap();
        self.monitor.observe_node(&node, now, &self.settings);
        let old = self.view.nodes.insert(name.clone(), node);
        self.taint_manager
            .node_seen(old.as_ref(), &self.view.nodes[&name], now, old.is_none());
        let updates = self.monitor.node_updated(&self.view.nodes[&name], now);
        self.write(updates, now);
    }

    /// The writer's part, without an API server: the node writes `actions` ask for land at
    /// once (unless this is a dry run).
    fn write(&mut self, actions: Vec<Action>, now: Timestamp) {
        if self.settings.dry_run {
            return;
        }
        for a in actions {
            let changed = match a {
                Action::MarkNodeUnknown { node, .. } => {
                    let mut n = self.view.nodes[&node].clone();
                    crate::logic::conditions::mark_unknown(&mut n, now);
                    n
                }
                Action::ChangeTaints { node, change, .. } => {
                    let mut n = self.view.nodes[&node].clone();
                    let list = n
                        .spec
                        .get_or_insert_with(Default::default)
                        .taints
                        .get_or_insert_with(Vec::new);
                    crate::logic::taints::apply_change(list, &change);
                    n
                }
                _ => continue,
            };
            self.node(changed, now);
        }
    }

    /// The watch lists `pod` at `now`.
    fn pod(&mut self, pod: Pod, now: Timestamp) {
        self.taint_manager
            .pod_seen(None, &PodFacts::from(&pod), now, true);
        self.view.pods.push(pod);
    }

    /// A monitor pass and a tainting pass at `now` (their writes landing at once), then the
    /// taint manager's reconcile of every node, as the control loop runs them.
    fn passes(&mut self, now: Timestamp) {
        let report = self
            .monitor
            .monitor_pass(&self.view, now, &self.settings, self.trusted);
        self.write(report.actions, now);
        let tainting =
            self.monitor
                .tainting_pass(&self.view, now, self.trusted, self.settings.dry_run);
        self.write(tainting, now);
        let names: Vec<String> = self.view.nodes.keys().cloned().collect();
        for name in names {
            let pods = self.view.pods_on(&name);
            let _ = self
                .taint_manager
                .reconcile(&name, self.view.nodes.get(&name), &pods, now);
        }
    }

    fn controller(&self) -> Controller {
        gather::controller(
            self.role.clone(),
            &self.settings,
            &self.guard,
            self.trusted,
            &self.monitor,
        )
    }

    fn explain_pod(&self, name: &str, now: Timestamp) -> PodAnswer {
        let c = self.controller();
        let sources = Sources {
            view: &self.view,
            monitor: &self.monitor,
            taint_manager: &self.taint_manager,
            controller: &c,
        };
        let pod = self
            .view
            .pods
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(name))
            .map(PodFacts::from);
        sources
            .pod(pod.as_ref(), now)
            .pod
            .expect("the pod is cached")
    }

    fn explain_node(&self, name: &str, now: Timestamp) -> NodeReport {
        let c = self.controller();
        Sources {
            view: &self.view,
            monitor: &self.monitor,
            taint_manager: &self.taint_manager,
            controller: &c,
        }
        .node(name, now)
    }

    fn status(&self, now: Timestamp, horizon: Duration) -> StatusReport {
        let c = self.controller();
        Sources {
            view: &self.view,
            monitor: &self.monitor,
            taint_manager: &self.taint_manager,
            controller: &c,
        }
        .status(now, horizon)
    }
}

/// A node in zone `zone` whose kubelet posted Ready=True at `at(0)` and nothing since.
fn silent_from_0(name: &str, zone: &str) -> Node {
    node(name).label(ZONE_GA, zone).heartbeat(0).build()
}

/// A node in zone `zone` that goes on posting: its heartbeat is `at(secs)`.
fn alive_at(name: &str, zone: &str, secs: i64) -> Node {
    node(name).label(ZONE_GA, zone).heartbeat(secs).build()
}

/// `nodes` seen at 0, then kept alive (except `silent`) with passes every 5 s up to `until`.
fn run(world: &mut World, silent: &[&str], until: i64) {
    let mut t = 0;
    while t <= until {
        let names: Vec<String> = world.view.nodes.keys().cloned().collect();
        for name in names {
            if !silent.contains(&name.as_str()) {
                let mut n = world.view.nodes[&name].clone();
                let ready = n
                    .status
                    .as_mut()
                    .and_then(|s| s.conditions.as_mut())
                    .and_then(|c| c.iter_mut().find(|c| c.type_ == "Ready"))
                    .unwrap();
                ready.last_heartbeat_time = Some(Time(at(t)));
                world.node(n, at(t));
            }
        }
        world.passes(at(t));
        t += 5;
    }
}

fn reasons(answer: &PodAnswer) -> Vec<Reason> {
    match &answer.outcome {
        PodOutcome::NoDeletion { reasons } => reasons.clone(),
        other => panic!("expected no deletion, got {other:?}"),
    }
}

fn due(answer: &PodAnswer) -> Timestamp {
    match &answer.outcome {
        PodOutcome::DeletionDue { due_at, .. } | PodOutcome::DeletionSent { due_at, .. } => *due_at,
        other => panic!("expected a deletion, got {other:?}"),
    }
}

/// One zone "a" with `lost` silent from 0 and `alive` nodes posting; pod "p" on the lost node
/// tolerating unreachable for 300 s.
fn lost_node_world(settings: Settings, alive: usize) -> World {
    let mut w = World::new(settings);
    w.node(silent_from_0("lost", "a"), at(0));
    for i in 0..alive {
        w.node(alive_at(&format!("alive-{i}"), "a", 0), at(0));
    }
    w.pod(
        pod("p", "lost")
            .tolerating(crate::logic::taints::UNREACHABLE, Some(300))
            .build(),
        at(0),
    );
    w
}

#[test]
fn a_pod_on_a_lost_node_is_due_its_toleration_after_the_taint_and_the_taint_manager_agrees() {
    let mut w = lost_node_world(Settings::default(), 2);
    // Grace 50 s: marked Unknown by the pass at 55 s, tainted by the same instant's tainting pass.
    run(&mut w, &["lost"], 60);
    let answer = w.explain_pod("p", at(60));
    let PodOutcome::DeletionDue {
        due_at,
        taint,
        toleration,
        scheduled,
        cancelled_by,
    } = &answer.outcome
    else {
        panic!("expected a deletion: {answer:?}");
    };
    assert_eq!(taint.key, crate::logic::taints::UNREACHABLE);
    assert_eq!(taint.time_added, Some(at(55)));
    assert_eq!(*due_at, at(355));
    assert_eq!(toleration.as_ref().unwrap().toleration_seconds, Some(300));
    assert!(*scheduled);
    assert_eq!(w.taint_manager.scheduled("default", "p"), Some(*due_at));
    assert!(cancelled_by.contains(&Cancel::NodeReady {
        node: "lost".into()
    }));
    assert!(answer.caveats.is_empty(), "{:?}", answer.caveats);
}

#[test]
fn a_pod_that_tolerates_no_taint_of_its_node_is_due_at_once() {
    let mut w = lost_node_world(Settings::default(), 2);
    w.pod(pod("bare", "lost").build(), at(0));
    run(&mut w, &["lost"], 55);
    let answer = w.explain_pod("bare", at(55));
    // The taint manager sent its deletion the instant the taint showed.
    let PodOutcome::DeletionSent {
        due_at, toleration, ..
    } = &answer.outcome
    else {
        panic!("{answer:?}");
    };
    assert_eq!(*due_at, at(55));
    assert_eq!(*toleration, None);
}

#[test]
fn a_pod_that_tolerates_the_taint_forever_is_not_deleted_and_the_toleration_is_named() {
    let mut w = lost_node_world(Settings::default(), 2);
    w.pod(
        pod("ds", "lost")
            .tolerating(crate::logic::taints::UNREACHABLE, None)
            .build(),
        at(0),
    );
    run(&mut w, &["lost"], 60);
    let answer = w.explain_pod("ds", at(60));
    let reasons = reasons(&answer);
    let [Reason::ToleratesForever { tolerated }] = reasons.as_slice() else {
        panic!("{answer:?}");
    };
    assert_eq!(tolerated.len(), 1);
    assert_eq!(tolerated[0].taint.key, crate::logic::taints::UNREACHABLE);
    assert_eq!(tolerated[0].toleration.toleration_seconds, None);
}

#[test]
fn a_pod_on_a_healthy_node_is_not_deleted() {
    let mut w = lost_node_world(Settings::default(), 2);
    w.pod(pod("q", "alive-0").build(), at(0));
    run(&mut w, &["lost"], 60);
    assert_eq!(
        reasons(&w.explain_pod("q", at(60))),
        [Reason::NodeHealthy {
            node: "alive-0".into()
        }]
    );
}

#[test]
fn a_pod_in_a_zone_paused_at_full_disruption_is_not_deleted() {
    // Every node of the only zone goes silent: every zone is fully disrupted.
    let mut w = lost_node_world(Settings::default(), 0);
    run(&mut w, &["lost"], 60);
    let answer = w.explain_pod("p", at(60));
    assert_eq!(
        reasons(&answer),
        [Reason::ZonePaused {
            zone: "a".into(),
            state: "FullDisruption".into(),
            all_zones_fully_disrupted: true,
        }]
    );
    let status = w.status(at(60), Duration::from_secs(3600));
    assert_eq!(status.zones[0].rate_per_second, 0.0);
    assert!(status.deletions.is_empty());
}

#[test]
fn a_pod_is_not_deleted_while_the_breaker_is_open() {
    let settings = Settings {
        max_unhealthy_fraction: Some(0.2),
        ..Settings::default()
    };
    // 1 of 3 nodes lost: more than 20 %.
    let mut w = lost_node_world(settings, 2);
    run(&mut w, &["lost"], 60);
    let answer = w.explain_pod("p", at(60));
    let r = reasons(&answer);
    assert!(
        r.contains(&Reason::BreakerOpen {
            not_ready: 1,
            counted: 3,
            max_unhealthy_fraction: Some(0.2),
        }),
        "{r:?}"
    );
    assert!(w.controller().breaker.open);
}

#[test]
fn a_pod_is_not_deleted_while_the_staleness_guard_holds() {
    let mut w = lost_node_world(Settings::default(), 2);
    run(&mut w, &["lost"], 50);
    // From 50 s the guard finds the Lease watch stale: nothing is marked or tainted.
    w.trusted = false;
    w.guard.leases.stale = true;
    // The node said NotReady itself, so it is not Ready whatever the guard says.
    let not_ready = node("lost")
        .label(ZONE_GA, "a")
        .ready("False")
        .heartbeat(50)
        .build();
    w.node(not_ready, at(50));
    run_from(&mut w, 55, 90);
    let answer = w.explain_pod("p", at(90));
    assert_eq!(
        reasons(&answer),
        [Reason::GuardHolding {
            stale_watches: vec!["leases".into()],
            api_unanswered_since: None,
        }]
    );
}

/// Passes every 5 s from `from` to `until`, all nodes but "lost" posting.
fn run_from(w: &mut World, from: i64, until: i64) {
    let mut t = from;
    while t <= until {
        for name in ["alive-0", "alive-1"] {
            if w.view.nodes.contains_key(name) {
                w.node(alive_at(name, "a", t), at(t));
            }
        }
        w.passes(at(t));
        t += 5;
    }
}

#[test]
fn in_a_dry_run_the_node_is_never_tainted_and_the_answer_says_so() {
    let settings = Settings {
        dry_run: true,
        ..Settings::default()
    };
    let mut w = lost_node_world(settings, 2);
    run(&mut w, &["lost"], 60);
    let answer = w.explain_pod("p", at(60));
    assert_eq!(reasons(&answer), [Reason::DryRun]);
}

#[test]
fn in_a_dry_run_a_due_deletion_carries_the_dry_run_caveat() {
    let settings = Settings {
        dry_run: true,
        ..Settings::default()
    };
    let mut w = World::new(settings);
    // Someone else tainted the node.
    let tainted = node("n")
        .ready("Unknown")
        .heartbeat(0)
        .taint(crate::logic::taints::UNREACHABLE, "NoExecute", Some(10))
        .build();
    w.node(tainted, at(0));
    w.pod(
        pod("p", "n")
            .tolerating(crate::logic::taints::UNREACHABLE, Some(30))
            .build(),
        at(0),
    );
    w.passes(at(20));
    let answer = w.explain_pod("p", at(20));
    // timeAdded 10 s counts from the next whole second: the taint was listed, not seen added.
    assert_eq!(due(&answer), at(41));
    assert_eq!(answer.caveats, [Reason::DryRun]);
}

#[test]
fn in_evict_mode_a_due_deletion_says_a_disruption_budget_may_refuse_it() {
    let settings = Settings {
        eviction_mode: EvictionMode::Evict,
        ..Settings::default()
    };
    let mut w = lost_node_world(settings, 2);
    run(&mut w, &["lost"], 60);
    let answer = w.explain_pod("p", at(60));
    assert_eq!(due(&answer), at(355));
    assert_eq!(answer.caveats, [Reason::EvictionMayBeRefused]);
    assert_eq!(w.controller().removal, Removal::Evict);
}

#[test]
fn a_standby_says_it_does_not_act_and_who_leads() {
    let mut w = World::new(Settings::default());
    w.role = Role::Standby {
        leader: Some("replica-0".into()),
    };
    let tainted = node("n")
        .ready("Unknown")
        .heartbeat(0)
        .taint(crate::logic::taints::UNREACHABLE, "NoExecute", Some(10))
        .build();
    w.node(tainted, at(0));
    w.pod(
        pod("p", "n")
            .tolerating(crate::logic::taints::UNREACHABLE, Some(30))
            .build(),
        at(0),
    );
    // A standby runs no pass and schedules nothing, yet knows the due time.
    let answer = w.explain_pod("p", at(20));
    let PodOutcome::DeletionDue {
        due_at, scheduled, ..
    } = &answer.outcome
    else {
        panic!("{answer:?}");
    };
    assert_eq!((*due_at, *scheduled), (at(41), false));
    assert_eq!(
        answer.caveats,
        [Reason::NotActing {
            role: Role::Standby {
                leader: Some("replica-0".into())
            }
        }]
    );
}

#[test]
fn a_second_lost_node_waits_its_turn_in_the_zone_queue() {
    // Rate 0.1/s: one taint every 10 s per zone.
    let mut w = lost_node_world(Settings::default(), 3);
    w.node(silent_from_0("lost-2", "a"), at(0));
    w.pod(pod("r", "lost-2").build(), at(0));
    run(&mut w, &["lost", "lost-2"], 55);
    let tainted_first = w.explain_node("lost", at(55));
    let tainted_second = w.explain_node("lost-2", at(55));
    let (first, second) = (tainted_first.node.unwrap(), tainted_second.node.unwrap());
    assert!(first.tainting_held_by.is_empty(), "{first:?}");
    assert_eq!(
        second.tainting_held_by,
        [Reason::WaitingInZoneQueue {
            zone: "a".into(),
            position: 1,
            next_release: Some(at(65)),
        }]
    );
    assert_eq!(
        reasons(&w.explain_pod("r", at(55))),
        second.tainting_held_by
    );
    // And it is tainted then.
    run_from(&mut w, 60, 65);
    assert_eq!(due(&w.explain_pod("r", at(65))), at(65));
}

#[test]
fn pods_terminating_unbound_or_on_a_deleted_node_are_not_deleted() {
    let mut w = World::new(Settings::default());
    let mut terminating = pod("t", "n").build();
    terminating.metadata.deletion_timestamp = Some(Time(at(3)));
    w.pod(terminating, at(0));
    let mut unbound = pod("u", "n").build();
    unbound.spec.as_mut().unwrap().node_name = None;
    w.pod(unbound, at(0));
    w.pod(pod("g", "gone").build(), at(0));
    w.node(node("n").heartbeat(0).build(), at(0));
    assert_eq!(
        reasons(&w.explain_pod("t", at(5))),
        [Reason::Terminating { since: at(3) }]
    );
    assert_eq!(reasons(&w.explain_pod("u", at(5))), [Reason::NotBound]);
    assert_eq!(
        reasons(&w.explain_pod("g", at(5))),
        [Reason::NodeNotFound {
            node: "gone".into()
        }]
    );
}

#[test]
fn status_lists_the_deletions_due_within_the_horizon_in_due_order() {
    let mut w = lost_node_world(Settings::default(), 2);
    w.pod(
        pod("soon", "lost")
            .tolerating(crate::logic::taints::UNREACHABLE, Some(30))
            .build(),
        at(0),
    );
    run(&mut w, &["lost"], 60);
    let status = w.status(at(60), Duration::from_secs(100));
    let listed: Vec<(&str, Timestamp)> = status
        .deletions
        .iter()
        .map(|d| (d.pod.as_str(), d.due_at))
        .collect();
    assert_eq!(listed, [("default/soon", at(85))], "p at 355 s is beyond");
    let later = w.status(at(60), Duration::from_secs(3600));
    assert_eq!(later.deletions.len(), 2);
    assert_eq!(later.nodes.len(), 1);
    assert_eq!(later.nodes[0].name, "lost");
    assert_eq!(later.nodes[0].ready.as_deref(), Some("Unknown"));
}

#[test]
fn the_answer_is_json_of_the_versioned_schema_and_reads_back() {
    let mut w = lost_node_world(Settings::default(), 2);
    run(&mut w, &["lost"], 60);
    let envelope = Envelope::new(
        Source::Live,
        at(60),
        w.controller(),
        PodReport {
            pod: Some(w.explain_pod("p", at(60))),
        },
    );
    let json = serde_json::to_value(&envelope).unwrap();
    assert_eq!(json["schema"], SCHEMA);
    assert_eq!(json["source"], "Live");
    assert_eq!(json["controller"]["role"]["state"], "Leader");
    assert_eq!(json["pod"]["outcome"], "DeletionDue");
    assert_eq!(json["pod"]["dueAt"], "2025-01-01T00:05:55Z");
    assert_eq!(
        json["pod"]["taint"]["key"],
        crate::logic::taints::UNREACHABLE
    );
    assert_eq!(json["pod"]["toleration"]["tolerationSeconds"], 300);
    let back: Envelope<PodReport> = serde_json::from_value(json).unwrap();
    assert_eq!(back, envelope);
}

/// What the CLI answers when no controller can be reached: the objects alone, replayed.
fn replayed(nodes: Vec<Node>, pods: Vec<Pod>, name: &str, now: Timestamp) -> PodAnswer {
    let mut view: ClusterView<Vec<Pod>> = ClusterView::default();
    for n in nodes {
        view.nodes.insert(n.metadata.name.clone().unwrap(), n);
    }
    view.pods = pods;
    let settings = Settings::default();
    let (monitor, taint_manager) = gather::replay(&view, now, &settings);
    let c = gather::controller(
        Role::NotReached { leader: None },
        &settings,
        &Guard::default(),
        true,
        &monitor,
    );
    let sources = Sources {
        view: &view,
        monitor: &monitor,
        taint_manager: &taint_manager,
        controller: &c,
    };
    let pod = view
        .pods
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(name))
        .map(PodFacts::from);
    sources.pod(pod.as_ref(), now).pod.unwrap()
}

#[test]
fn without_a_controller_the_due_time_is_worked_out_from_the_taints_time_added() {
    let lost = node("lost")
        .label(ZONE_GA, "a")
        .ready("Unknown")
        .heartbeat(0)
        .taint(crate::logic::taints::UNREACHABLE, "NoExecute", Some(55))
        .build();
    let alive = alive_at("alive", "a", 100);
    let p = pod("p", "lost")
        .tolerating(crate::logic::taints::UNREACHABLE, Some(300))
        .build();
    let answer = replayed(vec![lost, alive], vec![p], "p", at(100));
    let PodOutcome::DeletionDue {
        due_at, scheduled, ..
    } = &answer.outcome
    else {
        panic!("{answer:?}");
    };
    // timeAdded 55 s counts from the next whole second, as a controller starting now would.
    assert_eq!((*due_at, *scheduled), (at(356), false));
    assert!(answer.caveats.is_empty(), "{:?}", answer.caveats);
}

#[test]
fn without_a_controller_a_zone_with_no_ready_node_is_found_paused() {
    let lost = node("lost")
        .label(ZONE_GA, "a")
        .ready("Unknown")
        .heartbeat(0)
        .build();
    let p = pod("p", "lost")
        .tolerating(crate::logic::taints::UNREACHABLE, Some(300))
        .build();
    let answer = replayed(vec![lost], vec![p], "p", at(100));
    assert_eq!(
        reasons(&answer),
        [Reason::ZonePaused {
            zone: "a".into(),
            state: "FullDisruption".into(),
            all_zones_fully_disrupted: true,
        }]
    );
}
