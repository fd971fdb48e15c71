//! The effects the decision core asks for, as plain data.
//!
//! The writer turns each into API calls with preconditions and retries; the simulator's timeline
//! records what the API server actually applied, not these intentions.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, NodeCondition, NodeStatus, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use std::collections::BTreeMap;

/// Which controller an Event comes from (upstream's reporting components).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Component {
    NodeController,
    TaintEvictionController,
}

impl Component {
    pub fn name(self) -> &'static str {
        match self {
            Component::NodeController => "node-controller",
            Component::TaintEvictionController => "taint-eviction-controller",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// The object an Event is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectRef {
    /// `Node` or `Pod`.
    pub kind: &'static str,
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    pub name: String,
    pub uid: Option<String>,
}

impl ObjectRef {
    pub fn node(name: &str, uid: Option<String>) -> Self {
        ObjectRef {
            kind: "Node",
            namespace: String::new(),
            name: name.to_string(),
            uid,
        }
    }
    pub fn pod(namespace: &str, name: &str, uid: Option<String>) -> Self {
        ObjectRef {
            kind: "Pod",
            namespace: namespace.to_string(),
            name: name.to_string(),
            uid,
        }
    }
}

/// A Kubernetes Event to record, with upstream's reason and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRecord {
    pub component: Component,
    pub object: ObjectRef,
    pub event_type: EventType,
    pub reason: String,
    pub message: String,
}

/// A taint identified the way the controllers compare them: by key and effect.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TaintRef {
    pub key: String,
    pub effect: String,
}

/// A change to a node's taints, applied to the freshest copy of the node.
///
/// Removals match by key and effect; an addition is skipped when a taint with the same key and
/// effect is already there, so a taint that is already in place keeps its `timeAdded`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaintChange {
    pub add: Vec<Taint>,
    pub remove: Vec<TaintRef>,
}

impl TaintChange {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }

    /// The taints added, as `key:Effect` joined by commas (for logs).
    pub fn added(&self) -> String {
        key_effects(self.add.iter().map(|t| (&t.key, &t.effect)))
    }

    /// The taints removed, as `key:Effect` joined by commas (for logs).
    pub fn removed(&self) -> String {
        key_effects(self.remove.iter().map(|t| (&t.key, &t.effect)))
    }
}

fn key_effects<'a>(taints: impl Iterator<Item = (&'a String, &'a String)>) -> String {
    let shown: Vec<String> = taints.map(|(k, e)| format!("{k}:{e}")).collect();
    shown.join(",")
}

impl TaintPurpose {
    /// Why the change is made, in words (for logs).
    pub fn reason(&self) -> String {
        match self {
            TaintPurpose::ZoneEviction { zone } => format!(
                "the node is not Ready and zone {:?}'s rate limiter let it be tainted",
                super::zones::display(zone)
            ),
            TaintPurpose::Swap => {
                "the node's Ready status changed between Unknown and False: the NoExecute taint \
                 follows it, keeping its countdown"
                    .into()
            }
            TaintPurpose::Recovery => {
                "the node is Ready again, or every zone is down (the control plane is suspect)"
                    .into()
            }
            TaintPurpose::Conditions { .. } => {
                "the NoSchedule taints follow the node's conditions".into()
            }
        }
    }
}

/// Why a taint change is made; decides the metrics it counts in and how failures are retried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaintPurpose {
    /// The rate-limited NoExecute tainting pass of a zone (counts in
    /// `node_collector_evictions_total{zone}` on success).
    ZoneEviction { zone: String },
    /// Swapping unreachable <-> not-ready on an already tainted node.
    Swap,
    /// Removing our NoExecute taints from a node that is Ready again, at start, or when every
    /// zone is down.
    Recovery,
    /// Keeping the NoSchedule condition taints in step with the conditions. `next_in_zone`:
    /// the node is the next its zone's queue would taint, and that NoExecute taint waits for
    /// this write to land (so it goes ahead of the other nodes' Unknown marks).
    Conditions { next_in_zone: bool },
}

/// A node's conditions at one resourceVersion, with its creation time (which conditions the
/// kubelet never posted get as their heartbeat). The writer's first attempt at an Unknown mark
/// patches the changed conditions guarded by that version instead of reading the node: one
/// request fewer per silent node, when the marks must land fast (BENCHMARKS.md).
#[derive(Clone, Debug, PartialEq)]
pub struct SeenConditions {
    pub resource_version: String,
    pub created: Option<Timestamp>,
    pub conditions: Vec<NodeCondition>,
    /// The node Lease's resourceVersion as the decision saw it (`None`: no Lease cached): a
    /// list of Lease versions that shows it unchanged confirms the silence without a GET.
    pub lease_version: Option<String>,
}

impl SeenConditions {
    /// The node `name` as far as these conditions show it: what an Unknown mark starts from.
    pub fn as_node(&self, name: &str) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                resource_version: Some(self.resource_version.clone()),
                creation_timestamp: self.created.map(Time),
                ..Default::default()
            },
            spec: None,
            status: Some(NodeStatus {
                conditions: Some(self.conditions.clone()),
                ..Default::default()
            }),
        }
    }
}

/// A pod by namespace, name and UID (the UID guards against a namesake created since).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodId {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Set the node's Ready, MemoryPressure, DiskPressure and PIDPressure conditions Unknown
    /// (PUT nodes/{name}/status), unless the kubelet posted a new Ready heartbeat or renewed
    /// its Lease since the decision.
    MarkNodeUnknown {
        node: String,
        ready_heartbeat: Option<Timestamp>,
        /// The node Lease's renewTime the decision saw (a renewal since then cancels it too).
        lease_renew: Option<Timestamp>,
        now: Timestamp,
        /// The node's conditions as the decision saw them, if it saw their resourceVersion.
        seen: Option<SeenConditions>,
    },
    /// Change the node's taints (guarded by the node's resourceVersion).
    ChangeTaints {
        node: String,
        change: TaintChange,
        purpose: TaintPurpose,
    },
    /// Set these labels on the node (the beta OS/arch labels).
    SetLabels {
        node: String,
        labels: BTreeMap<String, String>,
    },
    /// Set the Ready condition False on these pods of a node whose heartbeats stopped, unless
    /// the node shows a sign of life first (`node_heartbeat`, `lease_renew` as in
    /// `MarkNodeUnknown`), and record a `NodeNotReady` Warning Event on each pod written.
    ///
    /// One action per node, as upstream's `MarkPodsNotReady`, not one per pod: building and
    /// handing over one action per pod cost the control loop CPU in the very milliseconds the
    /// nodes' own Unknown writes needed it (BENCHMARKS.md). The writer applies it pod by pod,
    /// and records each Event after its pod's write (as upstream does, so that the pod still
    /// exists).
    MarkPodsNotReady {
        node: String,
        pods: Vec<PodId>,
        node_heartbeat: Option<Timestamp>,
        lease_renew: Option<Timestamp>,
        /// The node Lease's resourceVersion the decision saw: a list of Lease versions the
        /// pass's Unknown marks share can confirm it unchanged.
        lease_version: Option<String>,
        now: Timestamp,
    },
    /// Remove the pod: its toleration of the node's NoExecute taints ran out (or never was).
    /// The writer re-checks the live pod and node first and deletes with a UID precondition.
    EvictPod {
        namespace: String,
        name: String,
        uid: String,
        node: String,
    },
    /// Record a Kubernetes Event.
    Event(EventRecord),
}

impl Action {
    /// The decision in one sentence (the dry run's log line).
    pub fn describe(&self) -> String {
        match self {
            Action::MarkNodeUnknown { node, .. } => format!(
                "mark node {node}'s conditions Unknown: no heartbeat for longer than the grace period"
            ),
            Action::ChangeTaints {
                node,
                change,
                purpose,
            } => {
                let mut parts = Vec::new();
                if !change.add.is_empty() {
                    parts.push(format!("add {}", change.added()));
                }
                if !change.remove.is_empty() {
                    parts.push(format!("remove {}", change.removed()));
                }
                format!(
                    "{} on node {node}: {}",
                    parts.join(" and "),
                    purpose.reason()
                )
            }
            Action::SetLabels { node, labels } => {
                let keys: Vec<&str> = labels.keys().map(String::as_str).collect();
                format!("set labels {} on node {node}", keys.join(","))
            }
            Action::MarkPodsNotReady { node, pods, .. } => format!(
                "mark {} pod(s) on node {node} NotReady: the node stopped reporting",
                pods.len()
            ),
            Action::EvictPod {
                namespace,
                name,
                node,
                ..
            } => format!(
                "remove pod {namespace}/{name} from node {node}: it does not tolerate the node's \
                 NoExecute taints any longer"
            ),
            Action::Event(e) => format!(
                "record a {} Event {} on {}/{}: {}",
                e.event_type.as_str(),
                e.reason,
                e.object.kind,
                e.object.name,
                e.message
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taint_change_reads_as_key_effect_and_the_reason_in_words() {
        let action = Action::ChangeTaints {
            node: "a-1".into(),
            change: TaintChange {
                add: vec![Taint {
                    key: "node.kubernetes.io/unreachable".into(),
                    effect: "NoExecute".into(),
                    ..Default::default()
                }],
                remove: vec![TaintRef {
                    key: "node.kubernetes.io/not-ready".into(),
                    effect: "NoExecute".into(),
                }],
            },
            purpose: TaintPurpose::Swap,
        };
        let text = action.describe();
        assert!(
            text.starts_with(
                "add node.kubernetes.io/unreachable:NoExecute and remove \
                 node.kubernetes.io/not-ready:NoExecute on node a-1: "
            ),
            "{text}"
        );
        assert!(text.contains("keeping its countdown"), "{text}");
    }

    #[test]
    fn a_pod_removal_names_the_pod_the_node_and_why_without_saying_evicted() {
        let text = Action::EvictPod {
            namespace: "shop".into(),
            name: "web-1".into(),
            uid: "u".into(),
            node: "a-1".into(),
        }
        .describe();
        assert_eq!(
            text,
            "remove pod shop/web-1 from node a-1: it does not tolerate the node's NoExecute \
             taints any longer"
        );
    }
}
