//! The simulated world: the initial objects, the API server's admission defaults, the kubelets
//! and the scenario's events, all applied at their virtual instants.

use super::admission::admit_tolerations;
use super::kubelet::{Kubelet, NODE_LEASE_NAMESPACE, millis, node_lease};
use super::scenario::{
    EventAction, Heartbeat, PodSpec, Scenario, ScenarioEvent, TaintSpec, WatchResource,
};
use super::store::Store;
use super::timeline::EntryKind;
use crate::logic::time::add;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{
    Container, Node, NodeSpec as K8sNodeSpec, NodeStatus, Pod, PodCondition, PodSpec as K8sPodSpec,
    PodStatus, Taint,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use std::collections::BTreeMap;
use std::time::Duration;

/// The virtual wall clock's start: 2025-01-01T00:00:00Z.
pub fn epoch() -> Timestamp {
    Timestamp::from_second(1_735_689_600).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn offset(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.checked_add(d).unwrap_or(if d.is_negative() {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// A fault the world must end later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    Outage,
    Hang,
    Restart,
    Stall(WatchResource, u64),
}

/// What restart-controller does; the driver provides it.
pub trait ControllerControl: Send + 'static {
    /// Starts the first controller process.
    fn start(&mut self);
    /// Kills the running controller (it releases nothing) and starts a new one.
    fn restart(&mut self);
}

/// The world: owns the kubelets and plays the scenario against the store.
pub struct World {
    store: Store,
    start: Timestamp,
    seed: u64,
    default_toleration_seconds: Option<i64>,
    kubelet_config: super::scenario::KubeletConfig,
    kubelets: BTreeMap<String, Kubelet>,
    /// When each kubelet next acts, so a step costs O(due kubelets), not O(all kubelets).
    kubelet_due: std::collections::BTreeSet<(u64, String)>,
    events: Vec<ScenarioEvent>,
    next_event: usize,
    /// (due ms, order of scheduling, what)
    pending: Vec<(u64, u64, Pending)>,
    pending_counter: u64,
    controller: Option<Box<dyn ControllerControl>>,
}

impl World {
    /// Builds the initial cluster in the store (at the store's current instant, the start).
    pub fn new(
        scenario: &Scenario,
        seed: u64,
        store: Store,
        controller: Option<Box<dyn ControllerControl>>,
    ) -> Self {
        let mut world = World {
            start: store.now(),
            store,
            seed,
            default_toleration_seconds: scenario.default_toleration_seconds,
            kubelet_config: scenario.kubelet.clone(),
            kubelets: BTreeMap::new(),
            kubelet_due: std::collections::BTreeSet::new(),
            events: scenario.events.clone(),
            next_event: 0,
            pending: Vec::new(),
            pending_counter: 0,
            controller,
        };
        for node in &scenario.nodes {
            world.add_node(node, 0);
        }
        for pod in &scenario.pods {
            world.add_pod(pod, world.start);
        }
        for pdb in &scenario.pdbs {
            world.store.add_pdb(pdb.clone());
        }
        world.reindex_kubelets();
        world
    }

    /// Rebuilds the kubelet schedule index (after scenario actions, which may touch any kubelet).
    fn reindex_kubelets(&mut self) {
        self.kubelet_due = self
            .kubelets
            .iter()
            .filter_map(|(name, k)| k.next_due_ms().map(|due| (due, name.clone())))
            .collect();
    }

    /// Plays the scenario: work due at the start first, then the controller starts, then each
    /// later instant in turn. Never returns; the driver ends it.
    pub async fn run(mut self) {
        let base = tokio::time::Instant::now() - self.store.clock().elapsed();
        if self.next_due_ms() == Some(0) {
            self.step(0);
        }
        if let Some(controller) = self.controller.as_mut() {
            controller.start();
        }
        loop {
            let Some(next) = self.next_due_ms() else {
                std::future::pending::<()>().await;
                return;
            };
            tokio::time::sleep_until(base + Duration::from_millis(next)).await;
            self.step(next);
        }
    }

    fn at_ms(&self, ms: u64) -> Timestamp {
        add(self.start, Duration::from_millis(ms))
    }

    /// When the world next has something to do (ms since the start).
    pub fn next_due_ms(&self) -> Option<u64> {
        let event = self.events.get(self.next_event).map(|e| millis(e.at));
        let pending = self.pending.iter().map(|p| p.0).min();
        let kubelet = self.kubelet_due.first().map(|(due, _)| *due);
        [event, pending, kubelet].into_iter().flatten().min()
    }

    /// Does everything due at `now_ms`, synchronously: fault ends and scenario actions first,
    /// then the kubelets (in node name order).
    pub fn step(&mut self, now_ms: u64) {
        let mut due: Vec<(u64, u64, Pending)> = Vec::new();
        self.pending.retain(|p| {
            if p.0 <= now_ms {
                due.push(*p);
                false
            } else {
                true
            }
        });
        due.sort_by_key(|p| (p.0, p.1));
        let faults_ended = !due.is_empty();
        for (_, _, pending) in due {
            match pending {
                Pending::Outage => self.store.end_outage(),
                Pending::Hang => {
                    if self.store.end_hang() {
                        for kubelet in self.kubelets.values_mut() {
                            kubelet.hang_ended(&self.store, now_ms);
                        }
                    }
                }
                Pending::Restart => self.store.end_restart(),
                Pending::Stall(resource, id) => self.store.end_stall(resource, id),
            }
        }
        if faults_ended {
            self.reindex_kubelets();
        }
        while let Some(event) = self.events.get(self.next_event) {
            if millis(event.at) > now_ms {
                break;
            }
            let event = event.clone();
            self.next_event += 1;
            self.apply(&event, now_ms);
            self.reindex_kubelets();
        }
        let store = self.store.clone();
        let mut due: Vec<String> = Vec::new();
        while let Some((at, _)) = self.kubelet_due.first() {
            if *at > now_ms {
                break;
            }
            if let Some((_, name)) = self.kubelet_due.pop_first() {
                due.push(name);
            }
        }
        // In node name order, as a scan of all kubelets would.
        due.sort();
        for name in due {
            if let Some(kubelet) = self.kubelets.get_mut(&name) {
                kubelet.tick(&store, now_ms);
                if let Some(next) = kubelet.next_due_ms() {
                    self.kubelet_due.insert((next, name));
                }
            }
        }
    }

    fn schedule(&mut self, at_ms: u64, what: Pending) {
        self.pending_counter += 1;
        self.pending.push((at_ms, self.pending_counter, what));
    }

    fn apply(&mut self, event: &ScenarioEvent, now_ms: u64) {
        self.store.record(EntryKind::Action {
            fields: event.timeline_fields.clone(),
        });
        let now = self.at_ms(now_ms);
        match &event.action {
            EventAction::StopHeartbeat { nodes } => {
                for name in nodes {
                    if let Some(k) = self.kubelets.get_mut(name) {
                        k.stop();
                    }
                }
            }
            EventAction::ResumeHeartbeat { nodes } => {
                for name in nodes {
                    if let Some(k) = self.kubelets.get_mut(name) {
                        k.resume(&self.store, now_ms);
                    }
                }
            }
            EventAction::SetCondition {
                nodes,
                condition_type,
                status,
            } => {
                for name in nodes {
                    if let Some(k) = self.kubelets.get_mut(name) {
                        k.set_condition(&self.store, condition_type, status, now_ms);
                    }
                }
            }
            EventAction::AddTaint { nodes, taint } => {
                for name in nodes {
                    let mut t = self.taint(taint);
                    t.time_added = Some(Time(now));
                    let _ = self.store.update_node(name, |node| {
                        let taints = node
                            .spec
                            .get_or_insert_with(K8sNodeSpec::default)
                            .taints
                            .get_or_insert_with(Vec::new);
                        match taints
                            .iter_mut()
                            .find(|x| x.key == t.key && x.effect == t.effect)
                        {
                            Some(existing) => existing.value = t.value.clone(),
                            None => taints.push(t),
                        }
                    });
                }
            }
            EventAction::RemoveTaint { nodes, taint } => {
                for name in nodes {
                    let _ = self.store.update_node(name, |node| {
                        if let Some(spec) = node.spec.as_mut()
                            && let Some(taints) = spec.taints.as_mut()
                        {
                            taints.retain(|x| !(x.key == taint.key && x.effect == taint.effect));
                            if taints.is_empty() {
                                spec.taints = None;
                            }
                        }
                    });
                }
            }
            EventAction::DeleteNode { nodes } => {
                for name in nodes {
                    self.kubelets.remove(name);
                    let _ = self.store.delete_node(name, NODE_LEASE_NAMESPACE);
                }
            }
            EventAction::AddNodes { nodes } => {
                for node in nodes {
                    self.add_node(node, now_ms);
                }
            }
            EventAction::AddPods { pods } => {
                for pod in pods {
                    self.add_pod(pod, now);
                }
            }
            EventAction::DeletePods { pods } => {
                for key in pods {
                    if let Some((ns, name)) = key.split_once('/') {
                        let _ = self
                            .store
                            .delete_pod(ns, name, "", super::store::Origin::World);
                    }
                }
            }
            EventAction::SetTolerations { pods, tolerations } => {
                for key in pods {
                    if let Some((ns, name)) = key.split_once('/') {
                        let _ = self.store.update_pod(ns, name, |pod| {
                            let spec = pod.spec.get_or_insert_with(K8sPodSpec::default);
                            spec.tolerations =
                                (!tolerations.is_empty()).then(|| tolerations.clone());
                        });
                    }
                }
            }
            EventAction::RestartController => {
                if let Some(controller) = self.controller.as_mut() {
                    controller.restart();
                }
            }
            EventAction::ApiOutage { duration } => {
                self.store.begin_outage();
                self.schedule(now_ms.saturating_add(millis(*duration)), Pending::Outage);
            }
            EventAction::ApiHang { duration } => {
                self.store.begin_hang();
                self.schedule(now_ms.saturating_add(millis(*duration)), Pending::Hang);
            }
            EventAction::ApiRestart { duration } => {
                self.store.begin_restart();
                for kubelet in self.kubelets.values_mut() {
                    kubelet.connection_reset(now_ms);
                }
                self.schedule(now_ms.saturating_add(millis(*duration)), Pending::Restart);
            }
            EventAction::StallWatch { resource, duration } => {
                let id = self.store.begin_stall(*resource);
                self.schedule(
                    now_ms.saturating_add(millis(*duration)),
                    Pending::Stall(*resource, id),
                );
            }
        }
    }

    fn taint(&self, spec: &TaintSpec) -> Taint {
        Taint {
            key: spec.key.clone(),
            value: spec.value.clone(),
            effect: spec.effect.clone(),
            time_added: spec.time_added.map(|d| Time(offset(self.start, d))),
        }
    }

    /// Creates a node (and its kubelet, and its Lease for lease heartbeats) at `now_ms`.
    fn add_node(&mut self, spec: &super::scenario::NodeSpec, now_ms: u64) {
        let now = self.at_ms(now_ms);
        let created = offset(self.start, spec.created);
        let kubelet = Kubelet::new(
            &spec.name,
            spec.heartbeat,
            spec.ready.as_deref(),
            &self.kubelet_config,
            self.seed,
            now_ms,
        );
        let mut labels = BTreeMap::new();
        labels.insert("kubernetes.io/hostname".to_string(), spec.name.clone());
        labels.insert("kubernetes.io/os".to_string(), "linux".to_string());
        labels.insert("kubernetes.io/arch".to_string(), "amd64".to_string());
        labels.insert("beta.kubernetes.io/os".to_string(), "linux".to_string());
        labels.insert("beta.kubernetes.io/arch".to_string(), "amd64".to_string());
        if let Some(zone) = &spec.zone {
            labels.insert("topology.kubernetes.io/zone".to_string(), zone.clone());
        }
        if let Some(region) = &spec.region {
            labels.insert("topology.kubernetes.io/region".to_string(), region.clone());
        }
        labels.extend(spec.labels.clone());
        let taints: Vec<Taint> = spec.taints.iter().map(|t| self.taint(t)).collect();
        let conditions = kubelet.initial_conditions(now, created);
        let node = Node {
            metadata: ObjectMeta {
                name: Some(spec.name.clone()),
                labels: Some(labels),
                creation_timestamp: Some(Time(created)),
                ..ObjectMeta::default()
            },
            spec: Some(K8sNodeSpec {
                taints: (!taints.is_empty()).then_some(taints),
                unschedulable: spec.unschedulable.then_some(true),
                ..K8sNodeSpec::default()
            }),
            status: Some(NodeStatus {
                conditions: (!conditions.is_empty()).then_some(conditions),
                ..NodeStatus::default()
            }),
        };
        if self.store.create_node(&node).is_err() {
            return;
        }
        if spec.heartbeat == Heartbeat::Lease {
            let _ = self
                .store
                .create_lease(&node_lease(&spec.name, &self.store, now));
        }
        self.kubelets.insert(spec.name.clone(), kubelet);
    }

    /// Creates a pod bound to its node, through admission; `default_bound` when it has no `bound`.
    fn add_pod(&mut self, spec: &PodSpec, default_bound: Timestamp) {
        let pod = build_pod(
            spec,
            self.start,
            default_bound,
            self.default_toleration_seconds,
        );
        let _ = self.store.create_pod(&pod);
    }
}

/// A pod as the API server stores it after scheduling and admission.
pub fn build_pod(
    spec: &PodSpec,
    start: Timestamp,
    default_bound: Timestamp,
    default_toleration_seconds: Option<i64>,
) -> Pod {
    let bound = spec.bound.map_or(default_bound, |d| offset(start, d));
    let tolerations = admit_tolerations(
        &spec.tolerations,
        spec.daemonset,
        default_toleration_seconds,
    );
    let owner = match spec.owner.as_deref().and_then(|o| o.split_once('/')) {
        Some((kind, name)) => Some(vec![OwnerReference {
            api_version: match kind {
                "ReplicaSet" | "DaemonSet" | "StatefulSet" | "Deployment" => "apps/v1",
                "Job" | "CronJob" => "batch/v1",
                _ => "v1",
            }
            .to_string(),
            kind: kind.to_string(),
            name: name.to_string(),
            uid: format!("{}-{}-{}", kind.to_lowercase(), spec.namespace, name),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]),
        None => spec.daemonset.then(|| {
            vec![OwnerReference {
                api_version: "apps/v1".to_string(),
                kind: "DaemonSet".to_string(),
                name: spec.name.clone(),
                uid: format!("daemonset-{}-{}", spec.namespace, spec.name),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]
        }),
    };
    let ready = if spec.ready { "True" } else { "False" };
    let condition = |type_: &str, status: &str| PodCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        last_transition_time: Some(Time(bound)),
        reason: (status == "False").then(|| "ContainersNotReady".to_string()),
        ..PodCondition::default()
    };
    Pod {
        metadata: ObjectMeta {
            name: Some(spec.name.clone()),
            namespace: Some(spec.namespace.clone()),
            labels: (!spec.labels.is_empty()).then(|| spec.labels.clone()),
            creation_timestamp: Some(Time(bound)),
            owner_references: owner,
            ..ObjectMeta::default()
        },
        spec: Some(K8sPodSpec {
            node_name: Some(spec.node.clone()),
            containers: vec![Container {
                name: "app".to_string(),
                image: Some("registry.k8s.io/pause:3.10".to_string()),
                ..Container::default()
            }],
            tolerations: (!tolerations.is_empty()).then_some(tolerations),
            ..K8sPodSpec::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".to_string()),
            conditions: Some(vec![
                condition("PodScheduled", "True"),
                condition("Initialized", "True"),
                condition("ContainersReady", ready),
                condition("Ready", ready),
            ]),
            ..PodStatus::default()
        }),
    }
}
