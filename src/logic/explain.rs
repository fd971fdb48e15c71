//! `status` and `explain`: when the controller will delete a pod, or why it will not, worked
//! out from the state it decides with. Plain data and `now` in, an answer out, with the same
//! rule the taint manager follows (`eviction::decide`), so the answer cannot drift from what
//! happens. The answers are a versioned schema ([`SCHEMA`], docs/explain.md): scripts read them.

pub mod gather;

use super::conditions::ConditionStatus;
use super::eviction::{self, Verdict};
use super::pod::PodFacts;
use super::taints::{self, NO_EXECUTE, NOT_READY, UNREACHABLE};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Taint, Toleration};
use serde::{Deserialize, Serialize};

/// The schema of every answer; a change that removes or renames a field takes a new version.
pub const SCHEMA: &str = "nlc.explain/v1";

/// Whether this process acts, and who does when it does not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state")]
pub enum Role {
    /// Leads with synced caches: its decisions are written.
    Leader,
    /// Leads, but its caches have not synced yet: it decides nothing so far.
    Starting,
    /// Does not lead; `leader` is the holder of the election Lease when known.
    Standby { leader: Option<String> },
    /// No controller answered (`leader`: the Lease's holder, if any): the answer was worked out
    /// by the CLI from the cluster's objects, with the controller's default settings.
    NotReached { leader: Option<String> },
}

impl Role {
    /// Whether this answer comes from a process that does not act (a standby, a leader not
    /// synced yet): its due times are worked out, not carried out by it.
    fn idle(&self) -> bool {
        matches!(self, Role::Starting | Role::Standby { .. })
    }
}

/// How pods are removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Removal {
    /// DELETE (upstream's way).
    Delete,
    /// A policy/v1 Eviction: a PodDisruptionBudget may refuse it.
    Evict,
}

/// The staleness guard (docs/differences.md#watch-staleness-guard).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GuardView {
    /// Whether the last monitor pass trusted the heartbeat data (false: no node is marked
    /// Unknown and no NoExecute taint is added).
    pub heartbeats_trusted: bool,
    /// The watches found stale (`leases`, `nodes`).
    pub stale_watches: Vec<String>,
    /// Since when the API server has not answered, in an outage not yet over.
    pub api_unanswered_since: Option<Timestamp>,
}

/// The `--max-unhealthy-fraction` breaker.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BreakerView {
    pub open: bool,
    /// Nodes counted not Ready by the last monitor pass, and all nodes counted.
    pub not_ready: usize,
    pub counted: usize,
    /// `None`: the breaker is off.
    pub max_unhealthy_fraction: Option<f64>,
}

/// What holds for every decision of the process.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Controller {
    pub role: Role,
    pub dry_run: bool,
    pub removal: Removal,
    pub guard: GuardView,
    pub breaker: BreakerView,
    /// Every zone is fully disrupted: no NoExecute taint is added anywhere (upstream's master
    /// disruption mode).
    pub all_zones_fully_disrupted: bool,
}

/// One zone's state and tainting queue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneView {
    /// As people read it: `zone`, `region/zone`, or `""` for nodes without zone labels.
    pub zone: String,
    /// `Initial`, `Normal`, `PartialDisruption` or `FullDisruption`.
    pub state: String,
    /// Nodes tainted NoExecute per second at most; 0: tainting is paused.
    pub rate_per_second: f64,
    /// The nodes waiting for their NoExecute taint, in the order they get it.
    pub queued: Vec<String>,
    /// The earliest time the next queued node can get its taint (`None`: nothing queued, or
    /// paused).
    pub next_release: Option<Timestamp>,
}

/// A taint on a node, and when it counts from for the taint manager.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaintView {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub effect: String,
    pub time_added: Option<Timestamp>,
    /// NoExecute taints only: when tolerationSeconds start counting (`timeAdded` rounded up,
    /// or earlier when this process saw it appear).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts_from: Option<Timestamp>,
}

impl TaintView {
    /// The taint as the API has it, with when it counts from.
    pub fn of(taint: &Taint, counts_from: Option<Timestamp>) -> TaintView {
        TaintView {
            key: taint.key.clone(),
            value: taint.value.clone(),
            effect: taint.effect.clone(),
            time_added: taint.time_added.as_ref().map(|t| t.0),
            counts_from: (taint.effect == NO_EXECUTE)
                .then_some(counts_from)
                .flatten(),
        }
    }

    fn to_taint(&self) -> Taint {
        Taint {
            key: self.key.clone(),
            value: self.value.clone(),
            effect: self.effect.clone(),
            time_added: None,
        }
    }
}

/// A pod's toleration, as the pod spec has it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TolerationView {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
    /// `None`: tolerated forever.
    pub toleration_seconds: Option<i64>,
}

impl From<&Toleration> for TolerationView {
    fn from(t: &Toleration) -> Self {
        TolerationView {
            key: t.key.clone(),
            operator: t.operator.clone(),
            value: t.value.clone(),
            effect: t.effect.clone(),
            toleration_seconds: t.toleration_seconds,
        }
    }
}

/// A node that is not Ready or carries a NoExecute taint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    pub name: String,
    pub zone: String,
    /// The Ready condition's status as the controller decided it (`None`: no Ready condition).
    pub ready: Option<String>,
    /// The Ready condition's lastTransitionTime.
    pub ready_since: Option<Timestamp>,
    /// When it went Unknown (the controller's mark may still be on its way: then `None`).
    pub unknown_since: Option<Timestamp>,
    pub taints: Vec<TaintView>,
    /// Pods bound to it, and those of them whose Ready condition is False.
    pub pods: usize,
    pub pods_not_ready: usize,
    /// Why it has no NoExecute taint of this controller yet, while not Ready (empty otherwise).
    pub tainting_held_by: Vec<Reason>,
}

impl NodeView {
    fn no_execute(&self) -> impl Iterator<Item = &TaintView> {
        self.taints.iter().filter(|t| t.effect == NO_EXECUTE)
    }

    fn ready_status(&self) -> Option<ConditionStatus> {
        self.ready.as_deref().map(ConditionStatus::of)
    }
}

/// A taint and the toleration that lets the pod stay with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tolerated {
    pub taint: TaintView,
    pub toleration: TolerationView,
}

/// Why something does not happen (yet). Each names what it is about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all_fields = "camelCase")]
pub enum Reason {
    /// The pod is bound to no node.
    NotBound,
    /// The pod is being deleted already.
    Terminating { since: Timestamp },
    /// The pod's node is not in the cache (deleted).
    NodeNotFound { node: String },
    /// The node is Ready and has no NoExecute taint.
    NodeHealthy { node: String },
    /// The node has no Ready condition yet (a starting kubelet): it is marked Unknown only
    /// once its startup grace period is over.
    NoReadyCondition { node: String },
    /// Every NoExecute taint on the node is tolerated without `tolerationSeconds`.
    ToleratesForever { tolerated: Vec<Tolerated> },
    /// This process does not act: the leader decides.
    NotActing { role: Role },
    /// The staleness guard does not trust the heartbeat data: no taint is added.
    GuardHolding {
        stale_watches: Vec<String>,
        api_unanswered_since: Option<Timestamp>,
    },
    /// More than `--max-unhealthy-fraction` of all nodes are not Ready: no taint is added.
    BreakerOpen {
        not_ready: usize,
        counted: usize,
        max_unhealthy_fraction: Option<f64>,
    },
    /// The node's zone taints nothing: fully disrupted everywhere, or partially disrupted in a
    /// small cluster.
    ZonePaused {
        zone: String,
        state: String,
        all_zones_fully_disrupted: bool,
    },
    /// The node waits in its zone's rate-limited queue.
    WaitingInZoneQueue {
        zone: String,
        /// 1 for the next node to be tainted.
        position: usize,
        next_release: Option<Timestamp>,
    },
    /// The taint was asked for and has not shown on the node yet.
    TaintOnItsWay { node: String },
    /// `--dry-run`: nothing this controller decides is written.
    DryRun,
    /// `--eviction-mode=evict`: the pod is evicted through the Eviction API, which a
    /// PodDisruptionBudget may refuse (then retried).
    EvictionMayBeRefused,
}

/// What would cancel a deletion that is due.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "if", rename_all_fields = "camelCase")]
pub enum Cancel {
    /// The node turns Ready: the controller removes its not-ready/unreachable taint.
    NodeReady { node: String },
    /// Someone removes this taint from the node.
    TaintRemoved { node: String, key: String },
}

/// What happens to one pod.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all_fields = "camelCase")]
pub enum PodOutcome {
    /// Deleted at `dueAt` (at once when that is not after the answer's `now`).
    DeletionDue {
        due_at: Timestamp,
        /// The taint whose countdown ends first, or the first taint not tolerated at all.
        taint: TaintView,
        /// The toleration whose seconds count; `None`: the taint is not tolerated.
        toleration: Option<TolerationView>,
        /// Whether the live taint manager holds this countdown (false on a standby, or in an
        /// answer computed from the cluster's state).
        scheduled: bool,
        cancelled_by: Vec<Cancel>,
    },
    /// The deletion was sent at (or after) `dueAt` and the pod is not gone yet.
    DeletionSent {
        due_at: Timestamp,
        taint: TaintView,
        toleration: Option<TolerationView>,
    },
    /// No deletion ahead, for these reasons (all that apply, the most basic first).
    NoDeletion { reasons: Vec<Reason> },
}

/// The answer about one pod.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodAnswer {
    /// `namespace/name`.
    pub pod: String,
    pub node: Option<String>,
    #[serde(flatten)]
    pub outcome: PodOutcome,
    /// What keeps a due deletion from being carried out as it says (dry run, standby, PDBs).
    pub caveats: Vec<Reason>,
}

/// Where an answer comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// The running leader's (or standby's) own state.
    Live,
    /// Worked out from the objects in the API server, by the CLI, when no controller answered:
    /// taints count from their `timeAdded` and zones from the nodes' conditions.
    ClusterState,
}

/// Every answer's envelope.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<T> {
    pub schema: String,
    pub source: Source,
    pub now: Timestamp,
    pub controller: Controller,
    #[serde(flatten)]
    pub answer: T,
}

impl<T> Envelope<T> {
    pub fn new(source: Source, now: Timestamp, controller: Controller, answer: T) -> Self {
        Envelope {
            schema: SCHEMA.to_string(),
            source,
            now,
            controller,
            answer,
        }
    }
}

/// `explain pod`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodReport {
    /// `None`: no such pod in the cache.
    pub pod: Option<PodAnswer>,
}

/// `explain node`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeReport {
    /// `None`: no such node in the cache.
    pub node: Option<NodeView>,
    pub zone: Option<ZoneView>,
    pub pods: Vec<PodAnswer>,
}

/// `explain zone`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneReport {
    pub zone: Option<ZoneView>,
    /// Its nodes that are not Ready or carry a NoExecute taint.
    pub nodes: Vec<NodeView>,
}

/// A deletion ahead, for `status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Upcoming {
    pub due_at: Timestamp,
    pub pod: String,
    pub node: String,
}

/// `status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    pub zones: Vec<ZoneView>,
    /// Nodes not Ready or carrying a NoExecute taint.
    pub nodes: Vec<NodeView>,
    /// Deletions due up to the horizon asked for, earliest first.
    pub deletions: Vec<Upcoming>,
}

/// Why a node that is not Ready has no NoExecute taint of this controller (yet): every reason
/// that applies. Empty when it is Ready, or carries the taint its status calls for.
pub fn tainting_held_by(
    name: &str,
    ready: Option<ConditionStatus>,
    has_taint: impl Fn(&str) -> bool,
    zone: Option<&ZoneView>,
    c: &Controller,
) -> Vec<Reason> {
    let Some(key) = ready.and_then(taints::no_execute_key_for) else {
        return Vec::new();
    };
    if has_taint(key) {
        return Vec::new();
    }
    let mut reasons = Vec::new();
    if c.role.idle() {
        reasons.push(Reason::NotActing {
            role: c.role.clone(),
        });
    }
    if !c.guard.heartbeats_trusted {
        reasons.push(Reason::GuardHolding {
            stale_watches: c.guard.stale_watches.clone(),
            api_unanswered_since: c.guard.api_unanswered_since,
        });
    }
    if c.breaker.open {
        reasons.push(breaker(c));
    }
    if let Some(z) = zone {
        if c.all_zones_fully_disrupted || z.rate_per_second <= 0.0 {
            reasons.push(Reason::ZonePaused {
                zone: z.zone.clone(),
                state: z.state.clone(),
                all_zones_fully_disrupted: c.all_zones_fully_disrupted,
            });
        }
        let paused = c.all_zones_fully_disrupted || z.rate_per_second <= 0.0;
        if let Some(i) = z.queued.iter().position(|n| n == name)
            && !paused
        {
            reasons.push(Reason::WaitingInZoneQueue {
                zone: z.zone.clone(),
                position: i + 1,
                next_release: z.next_release,
            });
        }
    }
    if c.dry_run {
        reasons.push(Reason::DryRun);
    }
    if reasons.is_empty() {
        reasons.push(Reason::TaintOnItsWay {
            node: name.to_string(),
        });
    }
    reasons
}

fn breaker(c: &Controller) -> Reason {
    Reason::BreakerOpen {
        not_ready: c.breaker.not_ready,
        counted: c.breaker.counted,
        max_unhealthy_fraction: c.breaker.max_unhealthy_fraction,
    }
}

/// What a pod's deletion depends on besides its countdown.
fn caveats(c: &Controller) -> Vec<Reason> {
    let mut caveats = Vec::new();
    if c.role.idle() {
        caveats.push(Reason::NotActing {
            role: c.role.clone(),
        });
    }
    if c.dry_run {
        caveats.push(Reason::DryRun);
    }
    if c.removal == Removal::Evict {
        caveats.push(Reason::EvictionMayBeRefused);
    }
    caveats
}

/// What the live taint manager holds for a pod.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Held {
    /// Its scheduled due time.
    pub scheduled: Option<Timestamp>,
    /// Its deletion was sent.
    pub sent: bool,
}

/// The answer about `pod`: its node as `node` shows it (`None`: not in the cache), bound since
/// `bound_at` (`None`: the taint manager counts from `now`), `held` what the taint manager
/// holds for it.
pub fn explain_pod(
    pod: &PodFacts,
    node: Option<&NodeView>,
    bound_at: Option<Timestamp>,
    held: Held,
    c: &Controller,
    now: Timestamp,
) -> PodAnswer {
    let answer = |outcome, caveats| PodAnswer {
        pod: pod.key(),
        node: pod.node.map(str::to_string),
        outcome,
        caveats,
    };
    let none = |reason: Reason| PodOutcome::NoDeletion {
        reasons: vec![reason],
    };
    if let Some(since) = pod.deleting {
        return answer(none(Reason::Terminating { since }), Vec::new());
    }
    let Some(node_name) = pod.node else {
        return answer(none(Reason::NotBound), Vec::new());
    };
    let Some(node) = node else {
        let reason = Reason::NodeNotFound {
            node: node_name.to_string(),
        };
        return answer(none(reason), Vec::new());
    };
    let views: Vec<&TaintView> = node.no_execute().collect();
    let started: Vec<(Taint, Timestamp)> = views
        .iter()
        .map(|t| (t.to_taint(), t.counts_from.unwrap_or(now)))
        .collect();
    let decision = eviction::decide(pod, &started, bound_at.unwrap_or(now), now);
    let due_at = match decision.verdict {
        Verdict::At(due) => Some(due),
        Verdict::Now => Some(now),
        Verdict::Keep => None,
    };
    if let (Some(due_at), Some(i)) = (due_at, decision.taint) {
        let taint = views[i].clone();
        let toleration = decision.toleration.map(TolerationView::from);
        if held.sent {
            let outcome = PodOutcome::DeletionSent {
                due_at,
                taint,
                toleration,
            };
            return answer(outcome, caveats(c));
        }
        let mut cancelled_by = Vec::new();
        if [NOT_READY, UNREACHABLE].contains(&taint.key.as_str()) {
            cancelled_by.push(Cancel::NodeReady {
                node: node.name.clone(),
            });
        }
        cancelled_by.push(Cancel::TaintRemoved {
            node: node.name.clone(),
            key: taint.key.clone(),
        });
        let outcome = PodOutcome::DeletionDue {
            due_at,
            taint,
            toleration,
            scheduled: held.scheduled.is_some(),
            cancelled_by,
        };
        return answer(outcome, caveats(c));
    }
    if !started.is_empty() {
        // Kept with NoExecute taints: each is tolerated forever.
        let tolerated = views
            .iter()
            .zip(&started)
            .filter_map(|(view, (taint, _))| {
                let t = pod
                    .tolerations
                    .iter()
                    .find(|t| super::tolerations::tolerates(t, taint))?;
                Some(Tolerated {
                    taint: (*view).clone(),
                    toleration: t.into(),
                })
            })
            .collect();
        return answer(none(Reason::ToleratesForever { tolerated }), Vec::new());
    }
    let reasons = match node.ready_status() {
        Some(ConditionStatus::True) => vec![Reason::NodeHealthy {
            node: node.name.clone(),
        }],
        None | Some(ConditionStatus::Other) => vec![Reason::NoReadyCondition {
            node: node.name.clone(),
        }],
        _ if node.tainting_held_by.is_empty() => vec![Reason::TaintOnItsWay {
            node: node.name.clone(),
        }],
        _ => node.tainting_held_by.clone(),
    };
    answer(PodOutcome::NoDeletion { reasons }, Vec::new())
}

#[cfg(test)]
mod tests;
