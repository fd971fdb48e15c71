//! Tests of the simulated cluster that act as the controller through `SimCluster`.

use super::kubelet::{NODE_LEASE_NAMESPACE, phase_ms};
use super::scenario::{
    EventAction, Heartbeat, IntOrPercent, KubeletConfig, NodeSpec, PdbSpec, PodSpec, Scenario,
    ScenarioEvent, TaintSpec, WatchResource,
};
use super::seam::{SimCluster, SimHooks};
use super::store::{Observer, Origin, Store};
use super::timeline::{Entry, EntryKind};
use super::world::{World, epoch};
use crate::clock::TokioClock;
use crate::cluster::{ApiError, Cluster, ObjectVersion};
use crate::controller::Observer as _;
use crate::logic::actions::{Component, EventRecord, EventType, ObjectRef};
use crate::logic::zones::ZoneState;
use futures::StreamExt;
use jiff::SignedDuration;
use k8s_openapi::api::core::v1::{Node, NodeSpec as K8sNodeSpec, Pod, PodCondition, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::watcher::Event;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

// ----- builders -----

pub(super) fn node(name: &str) -> NodeSpec {
    NodeSpec {
        name: name.to_string(),
        zone: Some("zone-a".to_string()),
        region: None,
        labels: BTreeMap::new(),
        ready: Some("True".to_string()),
        heartbeat: Heartbeat::Lease,
        created: SignedDuration::from_secs(-3600),
        taints: Vec::new(),
        unschedulable: false,
    }
}

fn pod(name: &str, node: &str) -> PodSpec {
    PodSpec {
        name: name.to_string(),
        namespace: "default".to_string(),
        node: node.to_string(),
        tolerations: Vec::new(),
        daemonset: false,
        owner: None,
        bound: None,
        labels: BTreeMap::from([("app".to_string(), "web".to_string())]),
        ready: true,
    }
}

pub(super) fn scenario(nodes: Vec<NodeSpec>, pods: Vec<PodSpec>) -> Scenario {
    Scenario {
        description: None,
        duration: Duration::from_secs(60),
        controller: Vec::new(),
        kubelet: KubeletConfig::default(),
        default_toleration_seconds: Some(300),
        nodes,
        pods,
        pdbs: Vec::new(),
        events: Vec::new(),
    }
}

pub(super) fn event(at_secs: u64, name: &str, action: EventAction) -> ScenarioEvent {
    let mut fields = serde_json::Map::new();
    fields.insert("action".to_string(), serde_json::json!(name));
    ScenarioEvent {
        at: Duration::from_secs(at_secs),
        action,
        timeline_fields: fields,
    }
}

fn new_store() -> Store {
    Store::new(TokioClock::starting_at(epoch()))
}

/// A store holding the scenario's initial objects, with no kubelet running.
pub(super) fn built(scenario: &Scenario) -> Store {
    let store = new_store();
    let _world = World::new(scenario, 0, store.clone(), None);
    store
}

/// A store whose world (kubelets, scenario events) runs in the background.
pub(super) fn running(scenario: &Scenario, seed: u64) -> Store {
    let store = new_store();
    let world = World::new(scenario, seed, store.clone(), None);
    tokio::spawn(world.run());
    store
}

fn kinds(store: &Store) -> Vec<EntryKind> {
    store.timeline().into_iter().map(|e| e.kind).collect()
}

fn ts(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

pub(super) fn condition_status(node: &Node, type_: &str) -> Option<String> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.clone())
}

fn set_pod_condition(pod: &mut Pod, type_: &str, status: &str) {
    let conditions = pod
        .status
        .as_mut()
        .unwrap()
        .conditions
        .get_or_insert_with(Vec::new);
    conditions.retain(|c| c.type_ != type_);
    conditions.push(PodCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        ..PodCondition::default()
    });
}

pub(super) async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

// ----- store and SimCluster -----

#[tokio::test(start_paused = true)]
async fn a_controller_status_write_records_the_conditions_it_set_unknown_in_node_order() {
    let store = built(&scenario(vec![node("a-0")], vec![]));
    let cluster = SimCluster::new(store.clone());
    tokio::time::advance(Duration::from_millis(85_000)).await;
    let mut n = cluster.get_node("a-0").await.unwrap();
    for c in n.status.as_mut().unwrap().conditions.as_mut().unwrap() {
        if c.type_ != "DiskPressure" {
            c.status = "Unknown".to_string();
        }
    }
    store.replace_node_status(&n, Origin::Controller).unwrap();
    let timeline = store.timeline();
    assert_eq!(
        timeline,
        vec![Entry {
            t_ms: 85_000,
            kind: EntryKind::NodeConditionsUnknown {
                node: "a-0".into(),
                conditions: vec![
                    "Ready".into(),
                    "MemoryPressure".into(),
                    "PIDPressure".into()
                ],
            },
        }]
    );
}

#[test]
fn a_strategic_patch_merges_conditions_by_type_and_keeps_every_other_field() {
    use crate::sim::store::{PatchKind, apply_patch};
    let mut node = serde_json::json!({
        "spec": {"taints": [{"key": "a", "effect": "NoSchedule"}], "newerField": {"x": 1}},
        "status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady", "newerField": 7},
            {"type": "DiskPressure", "status": "False"},
        ], "declaredFeatures": ["F"]},
    });
    let patch = serde_json::json!({
        "spec": {"taints": [{"key": "b", "effect": "NoExecute"}]},
        "status": {"conditions": [
            {"type": "Ready", "status": "Unknown"},
            {"type": "PIDPressure", "status": "Unknown"},
        ]},
    });
    apply_patch(&mut node, &patch, PatchKind::Strategic);
    assert_eq!(
        node,
        serde_json::json!({
            "spec": {"taints": [{"key": "b", "effect": "NoExecute"}], "newerField": {"x": 1}},
            "status": {"conditions": [
                {"type": "Ready", "status": "Unknown", "reason": "KubeletReady", "newerField": 7},
                {"type": "DiskPressure", "status": "False"},
                {"type": "PIDPressure", "status": "Unknown"},
            ], "declaredFeatures": ["F"]},
        })
    );
    // A merge patch replaces the list.
    let mut merged = serde_json::json!({"status": {"conditions": [{"type": "A"}, {"type": "B"}]}});
    apply_patch(
        &mut merged,
        &serde_json::json!({"status": {"conditions": [{"type": "B", "status": "x"}]}}),
        PatchKind::Merge,
    );
    assert_eq!(
        merged["status"]["conditions"],
        serde_json::json!([{"type": "B", "status": "x"}])
    );
}

#[tokio::test(start_paused = true)]
async fn node_and_pod_patches_are_guarded_by_the_resource_version_they_carry() {
    let store = built(&scenario(vec![node("a-0")], vec![pod("p", "a-0")]));
    let cluster = SimCluster::new(store.clone());
    let n = cluster.get_node("a-0").await.unwrap();
    let version = n.metadata.resource_version.clone().unwrap();
    let taint = Taint {
        key: "node.kubernetes.io/unreachable".into(),
        effect: "NoExecute".into(),
        ..Default::default()
    };
    cluster
        .patch_node_taints("a-0", &version, std::slice::from_ref(&taint))
        .await
        .unwrap();
    let labels = [("x".to_string(), "1".to_string())].into();
    assert!(matches!(
        cluster.patch_node_labels("a-0", &version, &labels).await,
        Err(ApiError::Conflict(_))
    ));
    let n = cluster.get_node("a-0").await.unwrap();
    assert_eq!(n.spec.unwrap().taints.unwrap(), vec![taint]);
    let fresh = n.metadata.resource_version.unwrap();
    cluster
        .patch_node_labels("a-0", &fresh, &labels)
        .await
        .unwrap();
    let n = cluster.get_node("a-0").await.unwrap();
    assert_eq!(
        n.metadata.labels.unwrap().get("x").map(String::as_str),
        Some("1")
    );
    assert!(matches!(
        cluster.patch_node_taints("nope", &fresh, &[]).await,
        Err(ApiError::NotFound(_))
    ));

    let p = cluster.get_pod("default", "p").await.unwrap();
    let stale = p.metadata.resource_version.clone().unwrap();
    let ready = PodCondition {
        type_: "Ready".into(),
        status: "False".into(),
        ..Default::default()
    };
    cluster
        .patch_pod_conditions("default", "p", &stale, std::slice::from_ref(&ready))
        .await
        .unwrap();
    assert!(matches!(
        cluster
            .patch_pod_conditions("default", "p", &stale, std::slice::from_ref(&ready))
            .await,
        Err(ApiError::Conflict(_))
    ));
    let p = cluster.get_pod("default", "p").await.unwrap();
    let conditions = p.status.unwrap().conditions.unwrap();
    assert!(
        conditions.len() > 1,
        "the other conditions are kept: {conditions:?}"
    );
    let r = conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(r.status, "False");
}

#[tokio::test(start_paused = true)]
async fn a_replace_with_a_stale_resource_version_is_a_conflict() {
    let store = built(&scenario(vec![node("a-0")], vec![]));
    let cluster = SimCluster::new(store.clone());
    let old = cluster.get_node("a-0").await.unwrap();
    let mut fresh = old.clone();
    fresh
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("x".into(), "1".into());
    let written = store.replace_node(&fresh, Origin::Controller).unwrap();
    let before: u64 = old
        .metadata
        .resource_version
        .as_deref()
        .unwrap()
        .parse()
        .unwrap();
    let after: u64 = written
        .metadata
        .resource_version
        .as_deref()
        .unwrap()
        .parse()
        .unwrap();
    assert!(after > before);
    assert!(matches!(
        store.replace_node(&old, Origin::Controller),
        Err(ApiError::Conflict(_))
    ));
    assert!(matches!(
        store.replace_node_status(&old, Origin::Controller),
        Err(ApiError::Conflict(_))
    ));
    let mut missing = old.clone();
    missing.metadata.name = Some("nope".into());
    assert!(matches!(
        store.replace_node(&missing, Origin::Controller),
        Err(ApiError::NotFound(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn a_node_write_changes_only_the_spec_and_a_status_write_only_the_status() {
    let store = built(&scenario(vec![node("a-0")], vec![]));
    let cluster = SimCluster::new(store.clone());
    let mut n = cluster.get_node("a-0").await.unwrap();
    n.status = None;
    n.spec.as_mut().unwrap().unschedulable = Some(true);
    let written = store.replace_node(&n, Origin::Controller).unwrap();
    assert_eq!(condition_status(&written, "Ready").as_deref(), Some("True"));
    assert_eq!(written.spec.as_ref().unwrap().unschedulable, Some(true));
    let mut n = written.clone();
    n.spec = None;
    n.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].status = "False".into();
    let written = store.replace_node_status(&n, Origin::Controller).unwrap();
    assert_eq!(written.spec.as_ref().unwrap().unschedulable, Some(true));
    assert_eq!(
        condition_status(&written, "Ready").as_deref(),
        Some("False")
    );
}

#[tokio::test(start_paused = true)]
async fn taint_writes_record_additions_then_removals_and_store_whole_seconds() {
    let mut spec = node("a-0");
    spec.taints = vec![TaintSpec {
        key: "old".into(),
        value: Some("v".into()),
        effect: "NoSchedule".into(),
        time_added: None,
    }];
    let store = built(&scenario(vec![spec], vec![]));
    let cluster = SimCluster::new(store.clone());
    tokio::time::advance(Duration::from_millis(85_100)).await;
    let mut n = cluster.get_node("a-0").await.unwrap();
    n.spec.as_mut().unwrap().taints = Some(vec![Taint {
        key: "node.kubernetes.io/unreachable".into(),
        value: None,
        effect: "NoExecute".into(),
        time_added: Some(Time(ts("2025-01-01T00:01:25.1Z"))),
    }]);
    let written = store.replace_node(&n, Origin::Controller).unwrap();
    let taint = &written.spec.as_ref().unwrap().taints.as_ref().unwrap()[0];
    assert_eq!(taint.time_added, Some(Time(ts("2025-01-01T00:01:25Z"))));
    assert_eq!(
        kinds(&store),
        vec![
            EntryKind::TaintAdded {
                node: "a-0".into(),
                taint: "node.kubernetes.io/unreachable:NoExecute".into()
            },
            EntryKind::TaintRemoved {
                node: "a-0".into(),
                taint: "old=v:NoSchedule".into()
            },
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn world_writes_are_not_recorded_as_controller_writes() {
    let store = built(&scenario(vec![node("a-0")], vec![pod("web-0", "a-0")]));
    store
        .update_node("a-0", |n| {
            n.spec.get_or_insert_with(K8sNodeSpec::default).taints = Some(vec![Taint {
                key: "k".into(),
                effect: "NoExecute".into(),
                ..Taint::default()
            }])
        })
        .unwrap();
    store
        .delete_pod("default", "web-0", "", Origin::World)
        .unwrap();
    assert!(store.timeline().is_empty());
}

#[tokio::test(start_paused = true)]
async fn deletes_check_the_uid_and_report_missing_pods() {
    let store = built(&scenario(vec![node("a-0")], vec![pod("web-0", "a-0")]));
    let cluster = SimCluster::new(store.clone());
    let p = cluster.get_pod("default", "web-0").await.unwrap();
    let uid = p.metadata.uid.clone().unwrap();
    assert!(matches!(
        cluster.delete_pod("default", "web-0", "other").await,
        Err(ApiError::Conflict(_))
    ));
    assert!(matches!(
        cluster.evict_pod("default", "web-0", "other").await,
        Err(ApiError::Conflict(_))
    ));
    cluster.delete_pod("default", "web-0", &uid).await.unwrap();
    assert!(matches!(
        cluster.get_pod("default", "web-0").await,
        Err(ApiError::NotFound(_))
    ));
    assert!(matches!(
        cluster.delete_pod("default", "web-0", &uid).await,
        Err(ApiError::NotFound(_))
    ));
    assert_eq!(
        kinds(&store),
        vec![EntryKind::PodDeleted {
            pod: "default/web-0".into(),
            node: "a-0".into(),
            via: "delete".into()
        }]
    );
}

#[tokio::test(start_paused = true)]
async fn uids_are_deterministic_and_distinct() {
    let s = scenario(vec![node("a-0"), node("a-1")], vec![pod("web-0", "a-0")]);
    let first = built(&s);
    let second = built(&s);
    let uid = |store: &Store| {
        store
            .get_pod("default", "web-0")
            .unwrap()
            .metadata
            .uid
            .unwrap()
    };
    assert_eq!(uid(&first), uid(&second));
    let node_uid = first.get_node("a-0").unwrap().metadata.uid.unwrap();
    assert_ne!(node_uid, uid(&first));
}

#[tokio::test(start_paused = true)]
async fn creating_a_lease_that_exists_is_a_conflict_and_replacing_needs_the_current_version() {
    let store = built(&scenario(vec![node("a-0")], vec![]));
    let cluster = SimCluster::new(store.clone());
    let lease = cluster
        .get_lease(NODE_LEASE_NAMESPACE, "a-0")
        .await
        .unwrap();
    assert!(matches!(
        cluster.create_lease(&lease).await,
        Err(ApiError::Conflict(_))
    ));
    let mut renewed = lease.clone();
    renewed.spec.as_mut().unwrap().holder_identity = Some("me".into());
    cluster.replace_lease(&renewed).await.unwrap();
    assert!(matches!(
        cluster.replace_lease(&renewed).await,
        Err(ApiError::Conflict(_))
    ));
    let mut other = lease.clone();
    other.metadata = Default::default();
    other.metadata.name = Some("leader".into());
    other.metadata.namespace = Some("kube-system".into());
    cluster.create_lease(&other).await.unwrap();
    let names = |versions: Vec<ObjectVersion>| -> Vec<String> {
        versions.into_iter().map(|v| v.name).collect()
    };
    assert_eq!(
        names(cluster.list_lease_versions("kube-system").await.unwrap()),
        ["leader"]
    );
    assert_eq!(
        cluster
            .list_lease_versions(NODE_LEASE_NAMESPACE)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn pod_status_writes_record_not_ready_and_disruption_target() {
    let store = built(&scenario(vec![node("a-0")], vec![pod("web-0", "a-0")]));
    let cluster = SimCluster::new(store.clone());
    let mut p = cluster.get_pod("default", "web-0").await.unwrap();
    set_pod_condition(&mut p, "Ready", "False");
    let mut p = store.replace_pod_status(&p, Origin::Controller).unwrap();
    set_pod_condition(&mut p, "DisruptionTarget", "True");
    store.replace_pod_status(&p, Origin::Controller).unwrap();
    assert_eq!(
        kinds(&store),
        vec![
            EntryKind::PodNotReady {
                pod: "default/web-0".into(),
                node: "a-0".into()
            },
            EntryKind::PodDisruptionTarget {
                pod: "default/web-0".into(),
                node: "a-0".into()
            },
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn events_and_zone_states_are_recorded() {
    let store = built(&scenario(vec![node("a-0")], vec![]));
    let cluster = SimCluster::new(store.clone());
    let record = EventRecord {
        component: Component::NodeController,
        object: ObjectRef::node("a-0", None),
        event_type: EventType::Normal,
        reason: "NodeNotReady".into(),
        message: "Node a-0 status is now: NodeNotReady".into(),
    };
    cluster.create_event(&record, store.now()).await.unwrap();
    let record = EventRecord {
        object: ObjectRef::pod("default", "web-0", None),
        ..record
    };
    cluster.create_event(&record, store.now()).await.unwrap();
    let hooks = SimHooks::new(store.clone());
    hooks.zone_state("zone-a", ZoneState::Initial);
    hooks.zone_state("zone-a", ZoneState::Normal);
    let kinds = kinds(&store);
    assert!(matches!(&kinds[0], EntryKind::Event { object, .. } if object == "Node/a-0"));
    assert!(matches!(&kinds[1], EntryKind::Event { object, .. } if object == "Pod/default/web-0"));
    assert_eq!(
        kinds[2],
        EntryKind::ZoneState {
            zone: "zone-a".into(),
            state: "Normal".into()
        }
    );
    assert_eq!(kinds.len(), 3);
}

// ----- watches and faults -----

#[tokio::test(start_paused = true)]
async fn a_watch_lists_in_name_order_then_follows_changes() {
    let store = built(&scenario(vec![node("b-0"), node("a-0")], vec![]));
    let cluster = SimCluster::new(store.clone());
    let mut watch = cluster.watch_nodes();
    assert!(matches!(watch.next().await, Some(Ok(Event::Init))));
    let name = |e: Option<crate::cluster::Result<Event<Node>>>| match e {
        Some(Ok(Event::InitApply(n) | Event::Apply(n) | Event::Delete(n))) => {
            n.metadata.name.unwrap()
        }
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(name(watch.next().await), "a-0");
    assert_eq!(name(watch.next().await), "b-0");
    assert!(matches!(watch.next().await, Some(Ok(Event::InitDone))));
    store
        .update_node("b-0", |n| {
            n.spec
                .get_or_insert_with(K8sNodeSpec::default)
                .unschedulable = Some(true)
        })
        .unwrap();
    assert!(matches!(watch.next().await, Some(Ok(Event::Apply(_)))));
    store.delete_node("a-0", NODE_LEASE_NAMESPACE).unwrap();
    assert!(
        matches!(watch.next().await, Some(Ok(Event::Delete(n))) if n.metadata.name.as_deref() == Some("a-0"))
    );
}

#[tokio::test(start_paused = true)]
async fn an_outage_fails_calls_and_ends_watches_with_one_error_then_they_relist() {
    let store = built(&scenario(vec![node("a-0")], vec![]));
    let cluster = SimCluster::new(store.clone());
    let mut watch = cluster.watch_leases(NODE_LEASE_NAMESPACE);
    for _ in 0..3 {
        watch.next().await;
    }
    store.begin_outage();
    assert!(matches!(
        cluster.get_node("a-0").await,
        Err(ApiError::Unavailable(_))
    ));
    assert!(matches!(
        cluster.list_lease_versions(NODE_LEASE_NAMESPACE).await,
        Err(ApiError::Unavailable(_))
    ));
    assert!(matches!(
        watch.next().await,
        Some(Err(ApiError::Unavailable(_)))
    ));
    // Changes during the outage are not streamed; a watch opened now fails too.
    let mut late = cluster.watch_nodes();
    assert!(matches!(
        late.next().await,
        Some(Err(ApiError::Unavailable(_)))
    ));
    let mut lease = store.get_lease(NODE_LEASE_NAMESPACE, "a-0").unwrap();
    lease.spec.as_mut().unwrap().holder_identity = Some("changed".into());
    store.replace_lease(&lease).unwrap();
    let nothing = tokio::time::timeout(Duration::from_secs(5), watch.next()).await;
    assert!(nothing.is_err());
    store.end_outage();
    assert!(cluster.get_node("a-0").await.is_ok());
    assert!(matches!(watch.next().await, Some(Ok(Event::Init))));
    assert!(matches!(watch.next().await, Some(Ok(Event::InitApply(l)))
        if l.spec.as_ref().unwrap().holder_identity.as_deref() == Some("changed")));
    assert!(matches!(watch.next().await, Some(Ok(Event::InitDone))));
    assert!(matches!(late.next().await, Some(Ok(Event::Init))));
}

#[tokio::test(start_paused = true)]
async fn a_stalled_watch_delivers_nothing_until_the_stall_ends_while_new_watches_work() {
    let store = built(&scenario(vec![node("a-0")], vec![]));
    let cluster = SimCluster::new(store.clone());
    let mut old = cluster.watch_leases(NODE_LEASE_NAMESPACE);
    for _ in 0..3 {
        old.next().await;
    }
    let id = store.begin_stall(WatchResource::Leases);
    let mut fresh = cluster.watch_leases(NODE_LEASE_NAMESPACE);
    for _ in 0..3 {
        fresh.next().await;
    }
    let lease = store.get_lease(NODE_LEASE_NAMESPACE, "a-0").unwrap();
    let mut renewed = lease.clone();
    renewed.spec.as_mut().unwrap().holder_identity = Some("renewed".into());
    store.replace_lease(&renewed).unwrap();
    assert!(matches!(fresh.next().await, Some(Ok(Event::Apply(_)))));
    assert!(
        tokio::time::timeout(Duration::from_secs(120), old.next())
            .await
            .is_err()
    );
    // Reads still work during a stall.
    assert!(cluster.get_lease(NODE_LEASE_NAMESPACE, "a-0").await.is_ok());
    store.end_stall(WatchResource::Leases, id);
    assert!(matches!(old.next().await, Some(Ok(Event::Apply(_)))));
}

// ----- evictions -----

fn pdb(max_unavailable: Option<IntOrPercent>, min_available: Option<IntOrPercent>) -> PdbSpec {
    PdbSpec {
        name: "web".into(),
        namespace: "default".into(),
        selector: BTreeMap::from([("app".to_string(), "web".to_string())]),
        max_unavailable,
        min_available,
    }
}

fn with_pdb(pdb: PdbSpec, pods: usize) -> Store {
    let mut s = scenario(
        vec![node("a-0")],
        (0..pods).map(|i| pod(&format!("web-{i}"), "a-0")).collect(),
    );
    s.pdbs = vec![pdb];
    built(&s)
}

async fn evict(cluster: &SimCluster, name: &str) -> crate::cluster::Result<()> {
    let p = cluster.get_pod("default", name).await?;
    cluster
        .evict_pod("default", name, p.metadata.uid.as_deref().unwrap_or(""))
        .await
}

#[tokio::test(start_paused = true)]
async fn an_eviction_a_budget_refuses_is_a_429_and_is_recorded() {
    let store = with_pdb(pdb(Some(IntOrPercent::Int(1)), None), 3);
    let cluster = SimCluster::new(store.clone());
    evict(&cluster, "web-0").await.unwrap();
    assert!(matches!(
        evict(&cluster, "web-1").await,
        Err(ApiError::TooManyRequests(_))
    ));
    let kinds = kinds(&store);
    assert_eq!(
        kinds[0],
        EntryKind::PodDeleted {
            pod: "default/web-0".into(),
            node: "a-0".into(),
            via: "eviction".into()
        }
    );
    assert!(
        matches!(&kinds[1], EntryKind::PodEvictionRefused { pod, reason, .. }
        if pod == "default/web-1" && reason.starts_with("DisruptionBudget web allows no more disruptions"))
    );
}

#[tokio::test(start_paused = true)]
async fn percentages_round_up_as_kubernetes_does() {
    // maxUnavailable 50% of 3 pods rounds up to 2 unavailable: one healthy pod must stay.
    let store = with_pdb(pdb(Some(IntOrPercent::Percent(50)), None), 3);
    let cluster = SimCluster::new(store.clone());
    evict(&cluster, "web-0").await.unwrap();
    // The evicted pod still counts as expected (its owner would replace it): 2 healthy of 3.
    evict(&cluster, "web-1").await.unwrap();
    assert!(matches!(
        evict(&cluster, "web-2").await,
        Err(ApiError::TooManyRequests(_))
    ));
    // minAvailable 34% of 3 rounds up to 2 healthy pods.
    let store = with_pdb(pdb(None, Some(IntOrPercent::Percent(34))), 3);
    let cluster = SimCluster::new(store.clone());
    evict(&cluster, "web-0").await.unwrap();
    assert!(matches!(
        evict(&cluster, "web-1").await,
        Err(ApiError::TooManyRequests(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn a_not_ready_pod_may_be_evicted_while_the_budget_is_met() {
    let store = with_pdb(pdb(None, Some(IntOrPercent::Int(2))), 3);
    let cluster = SimCluster::new(store.clone());
    let mut p = cluster.get_pod("default", "web-2").await.unwrap();
    set_pod_condition(&mut p, "Ready", "False");
    store.replace_pod_status(&p, Origin::Controller).unwrap();
    evict(&cluster, "web-2").await.unwrap();
    assert!(matches!(
        evict(&cluster, "web-1").await,
        Err(ApiError::TooManyRequests(_))
    ));
}

// ----- admission -----

// ----- world and kubelets -----

#[tokio::test(start_paused = true)]
async fn the_world_builds_nodes_pods_and_leases_at_the_start() {
    let mut spec = node("a-0");
    spec.region = Some("r1".into());
    spec.taints = vec![TaintSpec {
        key: "example.com/x".into(),
        value: None,
        effect: "NoSchedule".into(),
        time_added: Some(SignedDuration::from_secs(-300)),
    }];
    let mut p = pod("web-0", "a-0");
    p.bound = Some(SignedDuration::from_secs(-1800));
    let mut ds = pod("ds-0", "a-0");
    ds.daemonset = true;
    let store = built(&scenario(vec![spec], vec![p, ds]));
    let n = store.get_node("a-0").unwrap();
    let labels = n.metadata.labels.clone().unwrap();
    assert_eq!(labels["topology.kubernetes.io/zone"], "zone-a");
    assert_eq!(labels["topology.kubernetes.io/region"], "r1");
    assert_eq!(labels["beta.kubernetes.io/os"], "linux");
    assert_eq!(labels["kubernetes.io/arch"], "amd64");
    assert_eq!(
        n.metadata.creation_timestamp,
        Some(Time(ts("2024-12-31T23:00:00Z")))
    );
    let ready = &n.status.as_ref().unwrap().conditions.as_ref().unwrap()[0];
    assert_eq!(
        (ready.type_.as_str(), ready.status.as_str()),
        ("Ready", "True")
    );
    assert_eq!(
        ready.last_heartbeat_time,
        Some(Time(ts("2025-01-01T00:00:00Z")))
    );
    assert_eq!(
        ready.last_transition_time,
        Some(Time(ts("2024-12-31T23:00:00Z")))
    );
    let taint = &n.spec.as_ref().unwrap().taints.as_ref().unwrap()[0];
    assert_eq!(taint.time_added, Some(Time(ts("2024-12-31T23:55:00Z"))));
    let web = store.get_pod("default", "web-0").unwrap();
    assert_eq!(
        web.metadata.creation_timestamp,
        Some(Time(ts("2024-12-31T23:30:00Z")))
    );
    let scheduled = web
        .status
        .as_ref()
        .unwrap()
        .conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == "PodScheduled")
        .unwrap();
    assert_eq!(
        scheduled.last_transition_time,
        Some(Time(ts("2024-12-31T23:30:00Z")))
    );
    assert_eq!(
        web.spec
            .as_ref()
            .unwrap()
            .tolerations
            .as_ref()
            .unwrap()
            .len(),
        2
    );
    let ds = store.get_pod("default", "ds-0").unwrap();
    assert_eq!(
        ds.metadata.owner_references.as_ref().unwrap()[0].kind,
        "DaemonSet"
    );
    assert!(store.get_lease(NODE_LEASE_NAMESPACE, "a-0").is_ok());
}

#[tokio::test(start_paused = true)]
async fn kubelets_renew_their_lease_every_interval_at_a_seeded_phase() {
    let store = running(&scenario(vec![node("a-0")], vec![]), 7);
    let phase = phase_ms(7, "a-0", 1, 10_000);
    tokio::time::sleep(Duration::from_millis(phase + 20_000 + 1)).await;
    let lease = store.get_lease(NODE_LEASE_NAMESPACE, "a-0").unwrap();
    let renewed = lease.spec.unwrap().renew_time.unwrap().0;
    assert_eq!(
        renewed,
        epoch() + SignedDuration::from_millis((phase + 20_000) as i64)
    );
    assert_ne!(phase_ms(7, "a-0", 1, 10_000), phase_ms(8, "a-0", 1, 10_000));
}

#[tokio::test(start_paused = true)]
async fn a_kubelet_rewrites_its_status_after_the_controller_set_it_unknown() {
    let store = running(&scenario(vec![node("a-0")], vec![]), 0);
    settle().await;
    let mut n = store.get_node("a-0").unwrap();
    for c in n.status.as_mut().unwrap().conditions.as_mut().unwrap() {
        c.status = "Unknown".into();
    }
    store.replace_node_status(&n, Origin::Controller).unwrap();
    // Without a change, the kubelet writes only every status-report-frequency; the Unknown makes
    // it write at its next status check.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let n = store.get_node("a-0").unwrap();
    assert_eq!(condition_status(&n, "Ready").as_deref(), Some("True"));
    assert_eq!(
        condition_status(&n, "MemoryPressure").as_deref(),
        Some("False")
    );
}

#[tokio::test(start_paused = true)]
async fn a_kubelet_with_an_unchanged_status_writes_it_only_every_report_period() {
    let store = running(&scenario(vec![node("a-0")], vec![]), 0);
    let heartbeat = |store: &Store| {
        crate::logic::conditions::ready_heartbeat(&store.get_node("a-0").unwrap()).unwrap()
    };
    tokio::time::sleep(Duration::from_secs(290)).await;
    assert_eq!(heartbeat(&store), epoch());
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert!(heartbeat(&store) >= epoch() + SignedDuration::from_secs(300));
}

#[tokio::test(start_paused = true)]
async fn stop_and_resume_heartbeat_stop_renewals_then_renew_and_post_ready_at_once() {
    let mut s = scenario(vec![node("a-0")], vec![]);
    s.events = vec![
        event(
            30,
            "stop-heartbeat",
            EventAction::StopHeartbeat {
                nodes: vec!["a-0".into()],
            },
        ),
        event(
            100,
            "resume-heartbeat",
            EventAction::ResumeHeartbeat {
                nodes: vec!["a-0".into()],
            },
        ),
    ];
    let store = running(&s, 0);
    let renew = |store: &Store| {
        store
            .get_lease(NODE_LEASE_NAMESPACE, "a-0")
            .unwrap()
            .spec
            .unwrap()
            .renew_time
            .unwrap()
            .0
    };
    tokio::time::sleep(Duration::from_secs(31)).await;
    let last = renew(&store);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(renew(&store), last);
    let mut n = store.get_node("a-0").unwrap();
    n.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].status = "Unknown".into();
    store.replace_node_status(&n, Origin::Controller).unwrap();
    tokio::time::sleep(Duration::from_secs(9)).await; // t = 100
    settle().await;
    let at_100 = epoch() + SignedDuration::from_secs(100);
    assert_eq!(renew(&store), at_100);
    let n = store.get_node("a-0").unwrap();
    assert_eq!(condition_status(&n, "Ready").as_deref(), Some("True"));
    assert_eq!(crate::logic::conditions::ready_heartbeat(&n), Some(at_100));
    let actions: Vec<EntryKind> = kinds(&store)
        .into_iter()
        .filter(|k| matches!(k, EntryKind::Action { .. }))
        .collect();
    assert_eq!(actions.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn set_condition_posts_at_once_and_keeps_that_status() {
    let mut s = scenario(vec![node("a-0")], vec![]);
    s.events = vec![event(
        40,
        "set-condition",
        EventAction::SetCondition {
            nodes: vec!["a-0".into()],
            condition_type: "Ready".into(),
            status: "False".into(),
        },
    )];
    let store = running(&s, 0);
    tokio::time::sleep(Duration::from_secs(40)).await;
    settle().await;
    let n = store.get_node("a-0").unwrap();
    assert_eq!(condition_status(&n, "Ready").as_deref(), Some("False"));
    let ready = crate::logic::conditions::condition(&n, "Ready").unwrap();
    assert_eq!(
        ready.last_transition_time,
        Some(Time(epoch() + SignedDuration::from_secs(40)))
    );
    tokio::time::sleep(Duration::from_secs(400)).await;
    let n = store.get_node("a-0").unwrap();
    assert_eq!(condition_status(&n, "Ready").as_deref(), Some("False"));
}

#[tokio::test(start_paused = true)]
async fn a_node_without_ready_posts_nothing_until_told() {
    let mut spec = node("a-0");
    spec.ready = None;
    let mut s = scenario(vec![spec], vec![]);
    s.events = vec![event(
        120,
        "set-condition",
        EventAction::SetCondition {
            nodes: vec!["a-0".into()],
            condition_type: "Ready".into(),
            status: "True".into(),
        },
    )];
    let store = running(&s, 0);
    tokio::time::sleep(Duration::from_secs(100)).await;
    assert_eq!(
        condition_status(&store.get_node("a-0").unwrap(), "Ready"),
        None
    );
    tokio::time::sleep(Duration::from_secs(21)).await;
    assert_eq!(
        condition_status(&store.get_node("a-0").unwrap(), "Ready").as_deref(),
        Some("True")
    );
}

#[tokio::test(start_paused = true)]
async fn status_heartbeats_post_a_new_heartbeat_every_update_period_without_a_lease() {
    let mut spec = node("a-0");
    spec.heartbeat = Heartbeat::Status;
    let store = running(&scenario(vec![spec], vec![]), 0);
    assert!(store.get_lease(NODE_LEASE_NAMESPACE, "a-0").is_err());
    tokio::time::sleep(Duration::from_secs(25)).await;
    let hb = crate::logic::conditions::ready_heartbeat(&store.get_node("a-0").unwrap()).unwrap();
    assert!(hb >= epoch() + SignedDuration::from_secs(15));
}

#[tokio::test(start_paused = true)]
async fn scenario_actions_change_the_world_at_their_time() {
    let mut s = scenario(
        vec![node("a-0"), node("a-1")],
        vec![pod("web-0", "a-0"), pod("web-1", "a-0")],
    );
    let taint = TaintSpec {
        key: "example.com/drain".into(),
        value: None,
        effect: "NoExecute".into(),
        time_added: None,
    };
    s.events = vec![
        event(
            60,
            "add-taint",
            EventAction::AddTaint {
                nodes: vec!["a-0".into()],
                taint: taint.clone(),
            },
        ),
        event(
            61,
            "delete-pods",
            EventAction::DeletePods {
                pods: vec!["default/web-0".into()],
            },
        ),
        event(
            62,
            "set-tolerations",
            EventAction::SetTolerations {
                pods: vec!["default/web-1".into()],
                tolerations: vec![],
            },
        ),
        event(
            63,
            "delete-node",
            EventAction::DeleteNode {
                nodes: vec!["a-1".into()],
            },
        ),
        event(
            64,
            "add-pods",
            EventAction::AddPods {
                pods: vec![pod("late-0", "a-0")],
            },
        ),
        event(
            65,
            "remove-taint",
            EventAction::RemoveTaint {
                nodes: vec!["a-0".into()],
                taint,
            },
        ),
    ];
    let store = running(&s, 0);
    tokio::time::sleep(Duration::from_millis(60_500)).await;
    let n = store.get_node("a-0").unwrap();
    let t = &n.spec.as_ref().unwrap().taints.as_ref().unwrap()[0];
    assert_eq!(
        t.time_added,
        Some(Time(epoch() + SignedDuration::from_secs(60)))
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(store.get_pod("default", "web-0").is_err());
    assert!(
        store
            .get_pod("default", "web-1")
            .unwrap()
            .spec
            .unwrap()
            .tolerations
            .is_none()
    );
    assert!(store.get_node("a-1").is_err());
    assert!(store.get_lease(NODE_LEASE_NAMESPACE, "a-1").is_err());
    let late = store.get_pod("default", "late-0").unwrap();
    assert_eq!(
        late.metadata.creation_timestamp,
        Some(Time(epoch() + SignedDuration::from_secs(64)))
    );
    assert!(
        store
            .get_node("a-0")
            .unwrap()
            .spec
            .unwrap()
            .taints
            .is_none()
    );
    let times: Vec<u64> = store.timeline().iter().map(|e| e.t_ms).collect();
    assert_eq!(times, vec![60_000, 61_000, 62_000, 63_000, 64_000, 65_000]);
}

#[tokio::test(start_paused = true)]
async fn an_outage_event_lasts_its_duration() {
    let mut s = scenario(vec![node("a-0")], vec![]);
    s.events = vec![event(
        10,
        "api-outage",
        EventAction::ApiOutage {
            duration: Duration::from_secs(30),
        },
    )];
    let store = running(&s, 0);
    let cluster = SimCluster::new(store.clone());
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert!(cluster.get_node("a-0").await.is_err());
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(cluster.get_node("a-0").await.is_ok());
}

#[test]
fn a_simulation_without_a_controller_is_repeatable_and_ends_with_a_summary() {
    let mut s = scenario(vec![node("a-0"), node("a-1")], vec![pod("web-0", "a-0")]);
    s.events = vec![event(
        30,
        "stop-heartbeat",
        EventAction::StopHeartbeat {
            nodes: vec!["a-0".into()],
        },
    )];
    let first = super::run(&s, 3, None).unwrap();
    let second = super::run(&s, 3, None).unwrap();
    assert_eq!(first, second);
    assert_eq!(first.len(), 2);
    assert_eq!(first[1].t_ms, 60_000);
    assert!(matches!(first[1].kind, EntryKind::Summary(_)));
}

/// Three nodes, a pod on two of them; a-0 stops heartbeating at 30s (of 600s).
fn one_node_lost() -> Scenario {
    let mut s = scenario(
        vec![node("a-0"), node("a-1"), node("a-2")],
        vec![pod("web-0", "a-0"), pod("web-1", "a-1")],
    );
    s.duration = Duration::from_secs(600);
    s.events = vec![event(
        30,
        "stop-heartbeat",
        EventAction::StopHeartbeat {
            nodes: vec!["a-0".into()],
        },
    )];
    s
}

#[test]
fn a_node_that_stops_heartbeating_is_tainted_and_its_pods_deleted_by_the_controller() {
    let s = one_node_lost();
    let settings = crate::settings::Settings::default();
    let entries = super::simulate(&s, settings.clone(), 0).unwrap();
    let again = super::simulate(&s, settings, 0).unwrap();
    assert_eq!(entries, again);
    let summary = match &entries.last().unwrap().kind {
        EntryKind::Summary(summary) => summary.clone(),
        other => panic!("no summary: {other:?}"),
    };
    assert_eq!(summary.nodes_tainted, 1);
    assert_eq!(summary.pods_deleted, 1);
}

#[test]
fn the_controller_evicts_a_pod_from_its_cached_copy_without_reading_it() {
    let s = one_node_lost();
    let settings = crate::settings::Settings::default();
    let observed = Arc::new(Recorder::default());
    let (entries, _) = super::run_keeping_store(&s, 0, Some(settings), |store| {
        store.observe(observed.clone())
    })
    .unwrap();
    let deleted: Vec<(u64, String)> = entries
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::PodDeleted { pod, .. } => Some((e.t_ms, pod.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    let (at, pod) = &deleted[0];
    let reads: Vec<u64> = observed
        .pod_reads()
        .into_iter()
        .filter(|(t, p)| p == pod && *t + 5_000 >= *at)
        .map(|(t, _)| t)
        .collect();
    // (Its NotReady mark read it, long before.)
    assert_eq!(reads, Vec::<u64>::new(), "{pod} deleted at {at} ms");
}

/// What the store told its observer.
#[derive(Default)]
struct Recorder {
    /// Every GET of a pod: (ms since the start, `namespace/name`).
    pod_reads: Mutex<Vec<(u64, String)>>,
    /// The staleness guard's verdicts: (ms since the start, resource, stale).
    stale_verdicts: Mutex<Vec<(u64, String, bool)>>,
}

impl Observer for Recorder {
    fn pod_read(&self, t_ms: u64, pod: &str) {
        let mut reads = self.pod_reads.lock().unwrap();
        reads.push((t_ms, pod.to_string()));
    }

    fn watch_stale(&self, t_ms: u64, resource: &str, stale: bool) {
        let mut verdicts = self.stale_verdicts.lock().unwrap();
        verdicts.push((t_ms, resource.to_string(), stale));
    }
}

impl Recorder {
    fn pod_reads(&self) -> Vec<(u64, String)> {
        self.pod_reads.lock().unwrap().clone()
    }

    fn stale_verdicts(&self) -> Vec<(u64, String, bool)> {
        self.stale_verdicts.lock().unwrap().clone()
    }
}

/// Runs `scenario` with the controller's lists of node and Lease versions (the staleness
/// guard's reads afresh) taking 8 s to arrive; returns the timeline and what was observed.
fn run_with_slow_version_lists(
    scenario: &Scenario,
    settings: crate::settings::Settings,
) -> (Vec<Entry>, Arc<Recorder>) {
    let observed = Arc::new(Recorder::default());
    let (entries, _) = super::run_keeping_store(scenario, 0, Some(settings), |store| {
        store.delay_version_lists(Duration::from_secs(8));
        store.observe(observed.clone());
    })
    .unwrap();
    (entries, observed)
}

#[test]
fn an_eviction_falls_due_on_time_while_the_staleness_guard_waits_for_a_slow_list() {
    // The Node watch is quiet after the taint at 10 s; the first monitor pass more than half
    // the grace period (25 s) later, at 40 s, lists the nodes' versions afresh, and that list
    // takes 8 s to arrive. web-0 falls due at 10 s + 34 s, in the middle of it; a-2 changes at
    // 46 s, after the list was taken.
    let s = super::scenario::parse(
        r#"
duration: 100s
nodes:
  - name: a-{0..2}
    zone: zone-a
pods:
  - name: web-0
    node: a-0
    tolerations: [{key: example.com/drain, operator: Exists, effect: NoExecute, tolerationSeconds: 34}]
events:
  - {at: 10s, action: add-taint, nodes: [a-0], taint: {key: example.com/drain, effect: NoExecute}}
  - {at: 20s, action: stop-heartbeat, nodes: [a-1]}
  - {at: 46s, action: add-taint, nodes: [a-2], taint: {key: example.com/other, effect: NoSchedule}}
"#,
        "slow-list.yaml",
    )
    .unwrap();
    let settings = crate::settings::Settings::default();
    let (entries, observed) = run_with_slow_version_lists(&s, settings);
    // The Node watch delivered a-2's change while the list was on its way: it is not stale,
    // though the list, older than the cache now, does not match it.
    assert_eq!(
        observed.stale_verdicts(),
        [(48_000, "nodes".to_string(), false)]
    );
    let at = |wanted: &dyn Fn(&EntryKind) -> bool| {
        entries
            .iter()
            .filter(|e| wanted(&e.kind))
            .map(|e| e.t_ms)
            .collect::<Vec<_>>()
    };
    let deleted = at(&|k| matches!(k, EntryKind::PodDeleted { pod, .. } if pod == "default/web-0"));
    assert_eq!(deleted, [44_000], "{entries:?}");
    // The pass that asked for the read ran when it was answered (48 s), and the period counts
    // from there: a-1, silent since 20 s, is marked by one of the passes after it.
    let unknown =
        at(&|k| matches!(k, EntryKind::NodeConditionsUnknown { node, .. } if node == "a-1"));
    assert_eq!(unknown.len(), 1, "{entries:?}");
    assert!(
        unknown[0] > 48_000 && (unknown[0] - 48_000) % 5_000 == 0,
        "a-1 marked at {} ms",
        unknown[0]
    );
}

#[test]
fn a_stalled_lease_watch_marks_nothing_unknown_when_the_fresh_read_is_slow_too() {
    let s = super::scenario::parse(
        include_str!("../../examples/stalled-lease-watch.yaml"),
        "stalled-lease-watch.yaml",
    )
    .unwrap();
    let settings = crate::settings::Settings::default();
    let (entries, observed) = run_with_slow_version_lists(&s, settings);
    let verdicts = observed.stale_verdicts();
    assert!(
        verdicts.iter().any(|(_, r, stale)| r == "leases" && *stale),
        "{verdicts:?}"
    );
    // Once the restarted watch has listed everything afresh it is not stale any more, though
    // busy again with renewals it is never quiet long enough to be read afresh.
    let last = verdicts.iter().rev().find(|(_, r, _)| r == "leases");
    assert!(
        last.is_some_and(|(t, _, stale)| !stale && *t < 300_000),
        "{verdicts:?}"
    );
    let written: Vec<&Entry> = entries
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                EntryKind::NodeConditionsUnknown { .. }
                    | EntryKind::TaintAdded { .. }
                    | EntryKind::PodDeleted { .. }
            )
        })
        .collect();
    assert!(written.is_empty(), "{written:?}");
}

#[test]
fn no_noexecute_taint_is_added_while_the_staleness_guard_reads_afresh() {
    const TURN_MS: u64 = 32_000;
    const RATE: f64 = 1000.0 / TURN_MS as f64;
    // a-0 and a-1 go silent together and are marked in one pass (2 of 10 nodes: the zone stays
    // Normal); the zone's rate lets a-0 be tainted at once and a-1 32 s later. The Node watch is
    // quiet after those writes, so a pass 30 s later reads afresh, for 8 s: a-1's turn comes
    // while that read is on its way, and waits for its verdict.
    let s = super::scenario::parse(
        r#"
duration: 200s
nodes:
  - name: a-{0..9}
    zone: zone-a
events:
  - {at: 20s, action: stop-heartbeat, nodes: [a-0, a-1]}
"#,
        "slow-list-taint.yaml",
    )
    .unwrap();
    let settings = crate::settings::Settings {
        node_eviction_rate: RATE,
        ..Default::default()
    };
    let (entries, observed) = run_with_slow_version_lists(&s, settings);
    let tainted = |name: &str| {
        entries
            .iter()
            .find_map(|e| match &e.kind {
                EntryKind::TaintAdded { node, taint }
                    if node == name && taint == "node.kubernetes.io/unreachable:NoExecute" =>
                {
                    Some(e.t_ms)
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("{name} not tainted: {entries:?}"))
    };
    let (first, second) = (tainted("a-0"), tainted("a-1"));
    let verdicts = observed.stale_verdicts();
    // The read that began before a-1's turn and was answered after it.
    let read = verdicts
        .iter()
        .map(|(t, _, _)| *t)
        .find(|t| *t >= first + TURN_MS)
        .unwrap_or_else(|| panic!("no read after a-1's turn: {verdicts:?}"));
    assert!(
        read - 8_000 < first + TURN_MS,
        "the read at {read} ms began after a-1's turn at {} ms: {verdicts:?}",
        first + TURN_MS
    );
    assert!(
        second >= read,
        "a-1 tainted at {second} ms, before the read begun at {} ms was answered at {read} ms",
        read - 8_000
    );
}
