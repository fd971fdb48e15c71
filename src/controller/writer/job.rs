//! The writer's own work items: what the core decided, reshaped for applying.

use super::lanes::Lane;
use super::reads::Batch;
use crate::cluster::Priority;
use crate::logic::actions::{
    Action, EventRecord, PodId, SeenConditions, TaintChange, TaintPurpose,
};
use crate::logic::recheck::SilenceSeen;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Pod};
use std::collections::BTreeMap;

/// The controller's cached copies, which decisions were taken on: a write's first attempt
/// starts from them instead of reading the object, guarded by their resourceVersion.
pub trait Cached {
    fn node(&self, name: &str) -> Option<Node>;
    fn pod(&self, namespace: &str, name: &str) -> Option<Pod>;
    /// How many node Leases are cached (what a list of their versions costs).
    fn leases(&self) -> usize {
        0
    }
}

/// No cached copies: every write reads its object first.
pub struct NothingCached;

impl Cached for NothingCached {
    fn node(&self, _: &str) -> Option<Node> {
        None
    }
    fn pod(&self, _: &str, _: &str) -> Option<Pod> {
        None
    }
}

/// What a per-object queue holds.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Job {
    /// One write, applied by attempts until it is done or no longer needed.
    Write(Write),
    /// The NotReady marks of a node's pods, decided together: applied as one
    /// `Write::PodNotReady` per pod, all started at once (`WriterState::work`).
    PodMarks {
        node: String,
        pods: Vec<PodId>,
        /// The cached pods the decision was taken on, in the order of `pods` (see `Cached`).
        seen: Vec<Option<Box<Pod>>>,
        /// The decision's place among the writer's reads (see `Writer::submit_seen`).
        batch: Option<Batch>,
        seen_alive: SilenceSeen,
        /// The Lease's resourceVersion the decision saw, when the pass's Unknown marks share a
        /// list of Lease versions: the marks' first attempts confirm it by that list.
        lease_listed: Option<String>,
        decided: Timestamp,
    },
}

/// One write on one object: what an attempt applies.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Write {
    /// The node's heartbeat-loss conditions Unknown, if it is still silent.
    NodeUnknown {
        node: String,
        seen_alive: SilenceSeen,
        /// When it was decided (the Unknown write delay runs from here).
        decided: Timestamp,
        /// The conditions the decision saw, for the first attempt to patch without a read.
        seen: Option<SeenConditions>,
        /// The marks decided together; set when they are many (`Writer::submit_seen`): their
        /// first attempts then confirm their Leases unchanged by one shared list of Lease
        /// versions instead of a GET each.
        batch: Option<Batch>,
    },
    Taints {
        node: String,
        change: TaintChange,
        purpose: TaintPurpose,
        /// The cached node the decision was taken on, for the first attempt to write from
        /// without a read (the patch is guarded by its resourceVersion).
        seen: Option<Box<Node>>,
    },
    Labels {
        node: String,
        labels: BTreeMap<String, String>,
    },
    /// One pod's Ready=False, if its node is still silent; records its Event after the write.
    PodNotReady {
        pod: PodId,
        node: String,
        seen_alive: SilenceSeen,
        /// The cached pod the decision was taken on (see `Cached`).
        seen: Option<Box<Pod>>,
        /// See `Job::PodMarks`.
        batch: Option<Batch>,
        /// See `Job::PodMarks`.
        lease_listed: Option<String>,
    },
    Evict {
        pod: PodId,
        node: String,
        /// The cached pod the decision was taken on, for the first attempt to write from
        /// without a read (its writes are guarded by its resourceVersion).
        seen: Option<Box<Pod>>,
        /// See `Job::PodMarks`.
        batch: Option<Batch>,
    },
    Event(EventRecord),
}

impl From<Action> for Job {
    fn from(action: Action) -> Self {
        let write = match action {
            Action::MarkNodeUnknown {
                node,
                ready_heartbeat,
                lease_renew,
                now,
                seen,
            } => Write::NodeUnknown {
                node,
                seen_alive: SilenceSeen {
                    heartbeat: ready_heartbeat,
                    lease_renew,
                },
                decided: now,
                seen,
                batch: None,
            },
            Action::ChangeTaints {
                node,
                change,
                purpose,
            } => Write::Taints {
                node,
                change,
                purpose,
                seen: None,
            },
            Action::SetLabels { node, labels } => Write::Labels { node, labels },
            Action::MarkPodsNotReady {
                node,
                pods,
                node_heartbeat,
                lease_renew,
                lease_version,
                now,
            } => {
                return Job::PodMarks {
                    node,
                    seen: Vec::new(),
                    batch: None,
                    pods,
                    seen_alive: SilenceSeen {
                        heartbeat: node_heartbeat,
                        lease_renew,
                    },
                    // Kept only if the marks share a list (`with_seen`).
                    lease_listed: lease_version,
                    decided: now,
                };
            }
            Action::EvictPod {
                namespace,
                name,
                uid,
                node,
            } => Write::Evict {
                pod: PodId {
                    namespace,
                    name,
                    uid,
                },
                node,
                seen: None,
                batch: None,
            },
            Action::Event(record) => Write::Event(record),
        };
        Job::Write(write)
    }
}

impl Job {
    /// Gives a taint change, an eviction or pod marks the cached objects their decision was
    /// taken on.
    /// Pod writes also get `decided`, the batch of decisions they were handed over in, and so
    /// do Unknown marks when `marks_share_a_lease_list`.
    pub(super) fn with_seen(
        mut self,
        cached: &dyn Cached,
        decided: &Batch,
        marks_share_a_lease_list: bool,
    ) -> Self {
        match &mut self {
            Job::Write(Write::NodeUnknown { batch, .. }) if marks_share_a_lease_list => {
                *batch = Some(decided.clone());
            }
            Job::Write(Write::Taints { node, seen, .. }) => {
                *seen = cached.node(node).map(Box::new);
            }
            Job::Write(Write::Evict {
                pod, seen, batch, ..
            }) => {
                *seen = cached.pod(&pod.namespace, &pod.name).map(Box::new);
                *batch = Some(decided.clone());
            }
            Job::PodMarks {
                pods,
                seen,
                batch,
                lease_listed,
                ..
            } => {
                if !marks_share_a_lease_list {
                    *lease_listed = None;
                }
                *batch = Some(decided.clone());
                *seen = pods
                    .iter()
                    .map(|p| cached.pod(&p.namespace, &p.name).map(Box::new))
                    .collect();
            }
            _ => {}
        }
        self
    }

    pub(super) fn lane(&self) -> Lane {
        match self {
            Job::Write(write) => write.lane(),
            Job::PodMarks { .. } => Lane::PodStatus,
        }
    }

    /// A static label for the kind of write (metrics, logs).
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Job::Write(write) => write.kind(),
            Job::PodMarks { .. } => "pod_status",
        }
    }

    /// How many objects the job would write.
    pub(super) fn writes(&self) -> usize {
        match self {
            Job::Write(_) => 1,
            Job::PodMarks { pods, .. } => pods.len(),
        }
    }

    /// The object the job is about; the jobs of one object are applied in order.
    pub(super) fn object_key(&self) -> String {
        match self {
            Job::Write(write) => write.object_key(),
            // Not the node's own key: its taints must not wait behind the marks of its pods. And
            // one key per decision: a pod whose mark keeps failing must not hold up the marks
            // decided the next time the node goes silent (the older marks give up by themselves
            // once they find the node back, or write what the newer ones would).
            Job::PodMarks { node, decided, .. } => format!("pods-on/{node}/{decided}"),
        }
    }
}

impl Write {
    /// The batch a pod write's first attempt shares reads with, taken: later attempts read
    /// for themselves.
    pub(super) fn take_batch(&mut self) -> Option<Batch> {
        match self {
            Write::Evict { batch, .. } | Write::PodNotReady { batch, .. } => batch.take(),
            _ => None,
        }
    }

    pub(super) fn lane(&self) -> Lane {
        match self {
            Write::Taints {
                purpose:
                    TaintPurpose::Conditions {
                        next_in_zone: false,
                    },
                ..
            } => Lane::ConditionTaints,
            Write::Taints { .. } => Lane::Taints,
            Write::NodeUnknown { .. } | Write::Labels { .. } => Lane::Nodes,
            Write::Evict { .. } => Lane::Evictions,
            Write::PodNotReady { .. } => Lane::PodStatus,
            Write::Event(_) => Lane::Events,
        }
    }

    /// What the write's requests are sent at: NoExecute taints first (with the NoSchedule
    /// taints of a node its zone taints next, which that taint waits for), Unknown marks and
    /// labels, the other NoSchedule taints, evictions, pod marks, Events (`cluster::Priority`):
    /// one priority per lane, so that a lane never holds writes of two.
    pub(super) fn priority(&self) -> Priority {
        match self.lane() {
            Lane::Taints => Priority::NoExecute,
            Lane::Nodes => Priority::NodeMarks,
            Lane::ConditionTaints => Priority::ConditionTaints,
            Lane::Evictions => Priority::Evictions,
            Lane::PodStatus => Priority::PodMarks,
            Lane::Events => Priority::Events,
        }
    }

    pub(super) fn kind(&self) -> &'static str {
        match self {
            Write::NodeUnknown { .. } => "node_status",
            Write::Taints { .. } => "node_taints",
            Write::Labels { .. } => "node_labels",
            Write::PodNotReady { .. } => "pod_status",
            Write::Evict { .. } => "pod_delete",
            Write::Event(_) => "event",
        }
    }

    pub(super) fn object_key(&self) -> String {
        match self {
            Write::NodeUnknown { node, .. }
            | Write::Taints { node, .. }
            | Write::Labels { node, .. } => format!("node/{node}"),
            Write::PodNotReady { pod, .. } | Write::Evict { pod, .. } => {
                format!("pod/{}/{}", pod.namespace, pod.name)
            }
            Write::Event(e) => format!(
                "event/{}/{}/{}",
                e.object.kind, e.object.namespace, e.object.name
            ),
        }
    }
}
