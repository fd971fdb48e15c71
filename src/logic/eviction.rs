//! The taint manager's decisions: when each pod on a NoExecute-tainted node must go.
//!
//! docs/differences.md#countdowns-survive-restart and #schedules-follow-the-truth: a pod's due time is the earliest `start_i + tolerationSeconds_i`
//! over the NoExecute taints it tolerates for a limited time, where `start_i` is the later of
//! the taint's start and the pod's binding, never later than now; it is recomputed whenever the
//! pod's tolerations or the node's taints change. An untolerated taint means "now".

use super::actions::{Action, Component, EventRecord, EventType, ObjectRef};
use super::pod::PodFacts;
use super::taints;
use super::time::{add_secs, round_up_next_second};
use super::tolerations::{self, Window};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Taint, Toleration};
use std::collections::{BTreeMap, BTreeSet};

/// The Event reason upstream's taint manager uses for both of its events.
pub const EVICTION_REASON: &str = "TaintManagerEviction";

/// What should happen to one pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No NoExecute taint, or every one is tolerated forever, or the pod is already terminating.
    Keep,
    /// Evict at this time (at once when it is not after `now`).
    At(Timestamp),
    /// A NoExecute taint is not tolerated at all: evict at once.
    Now,
}

/// The verdict for a pod from its tolerations, the node's NoExecute taints with the time each
/// started counting, and the time the pod was bound. Pure; `now` caps every start.
pub fn verdict(
    pod: &PodFacts,
    taints: &[(Taint, Timestamp)],
    bound_at: Timestamp,
    now: Timestamp,
) -> Verdict {
    decide(pod, taints, bound_at, now).verdict
}

/// A verdict with what decided it (what `explain` reports).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decision<'t> {
    pub verdict: Verdict,
    /// The index in `taints` of the taint that decides: the first one not tolerated (`Now`),
    /// or the one whose window ends first (`At`); `None` for `Keep`.
    pub taint: Option<usize>,
    /// The toleration of that taint whose `tolerationSeconds` count (`None` for `Now`).
    pub toleration: Option<&'t Toleration>,
}

/// [`verdict`], saying which taint and toleration decide it: the one rule both the taint
/// manager and `explain` use.
pub fn decide<'t>(
    pod: &PodFacts<'t>,
    taints: &[(Taint, Timestamp)],
    bound_at: Timestamp,
    now: Timestamp,
) -> Decision<'t> {
    let keep = Decision {
        verdict: Verdict::Keep,
        taint: None,
        toleration: None,
    };
    if pod.deleting.is_some() || taints.is_empty() {
        return keep;
    }
    let tolerations: &'t [Toleration] = pod.tolerations;
    let mut used = Vec::with_capacity(taints.len());
    for (i, (taint, _)) in taints.iter().enumerate() {
        match tolerations
            .iter()
            .find(|t| tolerations::tolerates(t, taint))
        {
            Some(t) => used.push(t),
            None => {
                return Decision {
                    verdict: Verdict::Now,
                    taint: Some(i),
                    toleration: None,
                };
            }
        }
    }
    let mut earliest: Option<(Timestamp, usize)> = None;
    for (i, ((_, taint_start), toleration)) in taints.iter().zip(&used).enumerate() {
        let Window::Seconds(seconds) = tolerations::window(toleration) else {
            continue;
        };
        let start = (*taint_start).max(bound_at).min(now);
        let due = add_secs(start, seconds.max(0));
        if earliest.is_none_or(|(e, _)| due < e) {
            earliest = Some((due, i));
        }
    }
    match earliest {
        Some((due, i)) => Decision {
            verdict: Verdict::At(due),
            taint: Some(i),
            toleration: Some(used[i]),
        },
        None => keep,
    }
}

/// When a taint started counting, from API data alone: `timeAdded` rounded up to the next whole
/// second (never early), or `None` when the taint has no `timeAdded`.
pub fn taint_start_from_api(taint: &Taint) -> Option<Timestamp> {
    taint.time_added.as_ref().map(|t| round_up_next_second(t.0))
}

/// When the pod was bound, from API data alone: its `PodScheduled` condition's
/// lastTransitionTime, else its creationTimestamp, rounded up to the next whole second.
pub fn bound_at_from_api(pod: &PodFacts) -> Option<Timestamp> {
    pod.scheduled_at.or(pod.created).map(round_up_next_second)
}

/// A taint as the taint manager tells taints apart: key and effect (value changes do not restart
/// a countdown).
type TaintId = (String, String);

fn taint_id(taint: &Taint) -> TaintId {
    (taint.key.clone(), taint.effect.clone())
}

/// When this process saw a taint: the precise time it saw the taint appear, or (for a taint
/// without `timeAdded`) when it first saw it at all. Valid only while the taint's `timeAdded`
/// stays the one it had then.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TaintSeen {
    at: Timestamp,
    time_added: Option<Timestamp>,
    /// Seen appearing after the second of its `timeAdded` was over, and not a swap: a write
    /// the API server held (a hang) lands stamped with when it was sent, and the taint counts
    /// from when it appeared instead.
    late: bool,
}

/// A binding this process saw happen, with the precise time it saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct BindingSeen {
    node: String,
    uid: Option<String>,
    at: Timestamp,
}

/// A pod's scheduled deletion.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Schedule {
    due: Timestamp,
    namespace: String,
    name: String,
    uid: String,
    node: String,
    /// What decided it, for the marking Event (`deletion_detail`).
    detail: String,
}

/// The taint manager's memory: precise observation times and the current schedule.
#[derive(Debug, Default)]
pub struct TaintManager {
    /// node -> NoExecute taint -> when this process saw it.
    taints_seen: BTreeMap<String, BTreeMap<TaintId, TaintSeen>>,
    /// pod key -> the binding this process saw appear.
    bindings_seen: BTreeMap<String, BindingSeen>,
    /// pod key -> scheduled deletion.
    schedules: BTreeMap<String, Schedule>,
    /// (due, pod key) for every schedule, for due-time order.
    by_due: BTreeSet<(Timestamp, String)>,
    /// pod key -> UID of the pod whose `EvictPod` was issued and which is still due.
    in_flight: BTreeMap<String, String>,
}

fn eviction_event(namespace: &str, name: &str, message: String) -> Action {
    Action::Event(EventRecord {
        component: Component::TaintEvictionController,
        object: ObjectRef::pod(namespace, name, None),
        event_type: EventType::Normal,
        reason: EVICTION_REASON.to_string(),
        message,
    })
}

fn cancel_event(namespace: &str, name: &str) -> Action {
    eviction_event(
        namespace,
        name,
        format!("Cancelling deletion of Pod {namespace}/{name}"),
    )
}

/// What decided a deletion, in the marking Event after upstream's text, so that the Event
/// alone answers "why was my pod deleted" (`explain` reads it for pods already gone):
/// `(taint KEY:NoExecute timeAdded T, toleration tolerationSeconds=S, due D)`.
pub fn deletion_detail(taint: &Taint, toleration: Option<&Toleration>, due: Timestamp) -> String {
    let value = taint
        .value
        .as_deref()
        .map(|v| format!("={v}"))
        .unwrap_or_default();
    let added = taint
        .time_added
        .as_ref()
        .map_or("none".to_string(), |t| t.0.to_string());
    let tolerated = match toleration.and_then(|t| t.toleration_seconds) {
        Some(s) => format!("toleration tolerationSeconds={s}"),
        None => "not tolerated".to_string(),
    };
    format!(
        "(taint {}{value}:{} timeAdded {added}, {tolerated}, due {due})",
        taint.key, taint.effect
    )
}

/// The marking Event's message: upstream's, then what decided it.
pub fn marking_message(namespace: &str, name: &str, detail: &str) -> String {
    let upstream = format!("Marking for deletion Pod {namespace}/{name}");
    if detail.is_empty() {
        upstream
    } else {
        format!("{upstream} {detail}")
    }
}

fn evict_actions(namespace: &str, name: &str, uid: &str, node: &str, detail: &str) -> [Action; 2] {
    [
        eviction_event(namespace, name, marking_message(namespace, name, detail)),
        Action::EvictPod {
            namespace: namespace.to_string(),
            name: name.to_string(),
            uid: uid.to_string(),
            node: node.to_string(),
        },
    ]
}

impl TaintManager {
    pub fn new() -> Self {
        Self::default()
    }

    /// A node arrived through the watch. `listing` is true for objects of a (re)list: their
    /// taints were not seen appearing, so no precise time is recorded for them (but taints
    /// without `timeAdded` get `now` as their first-seen time).
    pub fn node_seen(&mut self, old: Option<&Node>, new: &Node, now: Timestamp, listing: bool) {
        let Some(name) = new.metadata.name.as_deref() else {
            return;
        };
        let new_taints = taints::no_execute_taints(new);
        let old_taints = old.map(taints::no_execute_taints).unwrap_or_default();
        let mut seen = self.taints_seen.remove(name).unwrap_or_default();
        let mut kept = BTreeMap::new();
        for taint in &new_taints {
            let id = taint_id(taint);
            let time_added = taint.time_added.as_ref().map(|t| t.0);
            // Seen appearing: absent before, or back with another timeAdded (re-added between
            // two watch events).
            let appeared = !listing
                && !old_taints
                    .iter()
                    .any(|o| taint_id(o) == id && o.time_added.as_ref().map(|t| t.0) == time_added);
            let record = if appeared {
                // A swap keeps the replaced taint's `timeAdded` on purpose.
                let swapped = old_taints
                    .iter()
                    .any(|o| taint_id(o) != id && o.time_added.as_ref().map(|t| t.0) == time_added);
                let late = !swapped && time_added.is_some_and(|t| now > round_up_next_second(t));
                Some(TaintSeen {
                    at: now,
                    time_added,
                    late,
                })
            } else {
                match seen.remove(&id) {
                    Some(r) if r.time_added == time_added => Some(r),
                    _ if time_added.is_none() => Some(TaintSeen {
                        at: now,
                        time_added,
                        late: false,
                    }),
                    _ => None,
                }
            };
            if let Some(r) = record {
                kept.insert(id, r);
            }
        }
        if !kept.is_empty() {
            self.taints_seen.insert(name.to_string(), kept);
        }
    }

    /// The node is gone from the cache.
    pub fn node_gone(&mut self, name: &str) {
        self.taints_seen.remove(name);
    }

    /// A pod arrived through the watch (`listing` as for nodes: a binding seen appearing, i.e.
    /// `spec.nodeName` going from empty to set while not listing, records a precise time).
    pub fn pod_seen(
        &mut self,
        old: Option<&PodFacts>,
        new: &PodFacts,
        now: Timestamp,
        listing: bool,
    ) {
        let key = new.key();
        if listing && !self.bindings_seen.contains_key(&key) {
            // A listed pod records no binding and has none to forget (every pod of a first
            // list comes through here).
            return;
        }
        let uid = new.uid.as_deref().map(str::to_string);
        let Some(node) = new.node else {
            self.bindings_seen.remove(&key);
            return;
        };
        let same_binding = |b: &BindingSeen| b.node == node && b.uid == uid;
        if self
            .bindings_seen
            .get(&key)
            .is_some_and(|b| !same_binding(b))
        {
            self.bindings_seen.remove(&key);
        }
        let was_bound_here =
            old.is_some_and(|o| o.node == Some(node) && o.uid.as_deref() == uid.as_deref());
        if !listing && !was_bound_here && !self.bindings_seen.contains_key(&key) {
            self.bindings_seen.insert(
                key,
                BindingSeen {
                    node: node.to_string(),
                    uid,
                    at: now,
                },
            );
        }
    }

    /// The pod is gone: forget it; a scheduled deletion is cancelled with upstream's
    /// "Cancelling deletion of Pod <ns>/<name>" event.
    pub fn pod_gone(&mut self, namespace: &str, name: &str) -> Vec<Action> {
        let key = format!("{namespace}/{name}");
        self.bindings_seen.remove(&key);
        self.in_flight.remove(&key);
        match self.unschedule(&key) {
            Some(_) => vec![cancel_event(namespace, name)],
            None => Vec::new(),
        }
    }

    /// Recomputes the schedule of `pods` (all bound to `node_name`; `node` is `None` when the
    /// node is gone). Returns the actions due now: cancellation events for pods no longer
    /// scheduled, and for pods due at once an `EvictPod` preceded by upstream's
    /// "Marking for deletion Pod <ns>/<name>" event.
    pub fn reconcile(
        &mut self,
        node_name: &str,
        node: Option<&Node>,
        pods: &[PodFacts],
        now: Timestamp,
    ) -> Vec<Action> {
        let node_taints = node.map(taints::no_execute_taints).unwrap_or_default();
        let started: Vec<(Taint, Timestamp)> = node_taints
            .into_iter()
            .map(|t| {
                let start = self.taint_start(node_name, &t, now);
                (t, start)
            })
            .collect();
        let mut actions = Vec::new();
        for pod in pods {
            let key = pod.key();
            let (namespace, name) = (pod.namespace, pod.name);
            let uid = pod.uid_or_empty().to_string();
            let bound_at = self.bound_at(&key, node_name, pod).unwrap_or(now);
            let decision = decide(pod, &started, bound_at, now);
            let detail = |due: Timestamp| match decision.taint {
                Some(i) => deletion_detail(&started[i].0, decision.toleration, due),
                None => String::new(),
            };
            match decision.verdict {
                Verdict::Keep => {
                    self.in_flight.remove(&key);
                    if self.unschedule(&key).is_some() {
                        actions.push(cancel_event(namespace, name));
                    }
                }
                Verdict::At(due) if due > now => {
                    self.in_flight.remove(&key);
                    self.unschedule(&key);
                    self.by_due.insert((due, key.clone()));
                    self.schedules.insert(
                        key,
                        Schedule {
                            due,
                            namespace: namespace.to_string(),
                            name: name.to_string(),
                            uid,
                            node: node_name.to_string(),
                            detail: detail(due),
                        },
                    );
                }
                Verdict::At(_) | Verdict::Now => {
                    let due = match decision.verdict {
                        Verdict::At(due) => due,
                        _ => now,
                    };
                    self.unschedule(&key);
                    if self.in_flight.get(&key) != Some(&uid) {
                        let detail = detail(due);
                        actions.extend(evict_actions(namespace, name, &uid, node_name, &detail));
                        self.in_flight.insert(key, uid);
                    }
                }
            }
        }
        actions
    }

    /// The keys of the pods with a scheduled or an issued deletion: for a node without NoExecute
    /// taints, a reconcile changes nothing unless one of its pods is among them.
    pub fn pods_with_deletions(&self) -> impl Iterator<Item = &str> {
        self.schedules
            .keys()
            .chain(self.in_flight.keys())
            .map(String::as_str)
    }

    /// The earliest scheduled due time, for the loop's timer.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.by_due.first().map(|(due, _)| *due)
    }

    /// Fires every schedule that is due at `now` (marking event + `EvictPod`), in due-time
    /// order, then name order.
    pub fn fire_due(&mut self, now: Timestamp) -> Vec<Action> {
        let mut actions = Vec::new();
        while let Some((due, _)) = self.by_due.first() {
            if *due > now {
                break;
            }
            let Some((_, key)) = self.by_due.pop_first() else {
                break;
            };
            let Some(s) = self.schedules.remove(&key) else {
                continue;
            };
            actions.extend(evict_actions(
                &s.namespace,
                &s.name,
                &s.uid,
                &s.node,
                &s.detail,
            ));
            self.in_flight.insert(key, s.uid);
        }
        actions
    }

    /// The due time currently scheduled for the pod, if any (for tests, metrics and logs).
    pub fn scheduled(&self, namespace: &str, name: &str) -> Option<Timestamp> {
        self.schedules
            .get(&format!("{namespace}/{name}"))
            .map(|s| s.due)
    }

    /// Removes a pod's schedule; returns it when there was one.
    fn unschedule(&mut self, key: &str) -> Option<Schedule> {
        let s = self.schedules.remove(key)?;
        self.by_due.remove(&(s.due, key.to_string()));
        Some(s)
    }

    /// When a NoExecute taint on `node` started counting: the earlier of the precise time this
    /// process saw it appear and its rounded-up `timeAdded`; for a taint without `timeAdded`, when
    /// it was first seen (now, recorded, when this is the first sight).
    fn taint_start(&mut self, node: &str, taint: &Taint, now: Timestamp) -> Timestamp {
        if let Some(start) = self.counting_from(node, taint) {
            return start;
        }
        self.taints_seen
            .entry(node.to_string())
            .or_default()
            .insert(
                taint_id(taint),
                TaintSeen {
                    at: now,
                    time_added: None,
                    late: false,
                },
            );
        now
    }

    /// When a NoExecute taint on `node` counts from, as `taint_start` has it, without
    /// recording anything: `None` for a taint without `timeAdded` this process has not seen
    /// (its first sight, "now", starts it).
    pub fn counting_from(&self, node: &str, taint: &Taint) -> Option<Timestamp> {
        let id = taint_id(taint);
        let time_added = taint.time_added.as_ref().map(|t| t.0);
        let seen = self
            .taints_seen
            .get(node)
            .and_then(|m| m.get(&id))
            .filter(|r| r.time_added == time_added)
            .map(|r| (r.at, r.late));
        match (taint_start_from_api(taint), seen) {
            (Some(_), Some((seen, true))) => Some(seen),
            (Some(api), Some((seen, false))) => Some(api.min(seen)),
            (Some(api), None) => Some(api),
            (None, Some((seen, _))) => Some(seen),
            (None, None) => None,
        }
    }

    /// Whether an `EvictPod` was issued for the pod (`namespace/name`) and it is still due.
    pub fn issued(&self, key: &str) -> bool {
        self.in_flight.contains_key(key)
    }

    /// Every scheduled deletion in due-time order: (due, `namespace/name`, node).
    pub fn schedule(&self) -> impl Iterator<Item = (Timestamp, &str, &str)> {
        self.by_due.iter().filter_map(|(due, key)| {
            let s = self.schedules.get(key)?;
            Some((*due, key.as_str(), s.node.as_str()))
        })
    }

    /// When the pod counts as bound to `node`, as `reconcile` has it (`None`: the API says
    /// nothing, and the reconcile counts it from its own `now`).
    pub fn bound_since(&self, node: &str, pod: &PodFacts) -> Option<Timestamp> {
        self.bound_at(&pod.key(), node, pod)
    }

    /// When the pod was bound to `node`: the precise time this process saw the binding appear,
    /// else the API's account of it.
    fn bound_at(&self, key: &str, node: &str, pod: &PodFacts) -> Option<Timestamp> {
        self.bindings_seen
            .get(key)
            .filter(|b| b.node == node && b.uid.as_deref() == pod.uid.as_deref())
            .map(|b| b.at)
            .or_else(|| bound_at_from_api(pod))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeSpec, Pod, PodCondition, PodSpec, PodStatus, Toleration};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
    const NOT_READY: &str = "node.kubernetes.io/not-ready";
    const NODE: &str = "node-a";

    /// `2025-01-01T00:00:00Z` plus `ms` milliseconds.
    fn at_ms(ms: i64) -> Timestamp {
        let base: Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
        base.checked_add(jiff::SignedDuration::from_millis(ms))
            .unwrap()
    }

    /// `2025-01-01T00:00:00Z` plus `s` seconds.
    fn at(s: i64) -> Timestamp {
        at_ms(s * 1000)
    }

    fn taint(key: &str) -> Taint {
        Taint {
            key: key.to_string(),
            value: None,
            effect: "NoExecute".to_string(),
            time_added: None,
        }
    }

    fn taint_added(key: &str, time_added: Timestamp) -> Taint {
        Taint {
            time_added: Some(Time(time_added)),
            ..taint(key)
        }
    }

    fn node_with(taints: Vec<Taint>) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(NODE.to_string()),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                taints: Some(taints),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Tolerates NoExecute taints with `key` (operator Exists) for `seconds`, forever when `None`.
    fn tol(key: &str, seconds: Option<i64>) -> Toleration {
        Toleration {
            key: Some(key.to_string()),
            operator: Some("Exists".to_string()),
            effect: Some("NoExecute".to_string()),
            toleration_seconds: seconds,
            value: None,
        }
    }

    /// A pod on `NODE`, created (and bound) at time 0, with no tolerations.
    struct PodBuilder(Pod);

    fn pod(name: &str) -> PodBuilder {
        PodBuilder(Pod {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some("ns".to_string()),
                uid: Some(format!("uid-{name}")),
                creation_timestamp: Some(Time(at(-100))),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some(NODE.to_string()),
                ..Default::default()
            }),
            status: None,
        })
    }

    impl PodBuilder {
        fn tolerating(mut self, tolerations: Vec<Toleration>) -> Self {
            self.0.spec.as_mut().unwrap().tolerations = Some(tolerations);
            self
        }
        fn unbound(mut self) -> Self {
            self.0.spec.as_mut().unwrap().node_name = None;
            self
        }
        fn uid(mut self, uid: &str) -> Self {
            self.0.metadata.uid = Some(uid.to_string());
            self
        }
        fn created(mut self, t: Timestamp) -> Self {
            self.0.metadata.creation_timestamp = Some(Time(t));
            self
        }
        fn scheduled(mut self, t: Timestamp) -> Self {
            self.0.status = Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "PodScheduled".to_string(),
                    status: "True".to_string(),
                    last_transition_time: Some(Time(t)),
                    ..Default::default()
                }]),
                ..Default::default()
            });
            self
        }
        fn phase(mut self, phase: &str) -> Self {
            self.0.status.get_or_insert_with(Default::default).phase = Some(phase.to_string());
            self
        }
        fn terminating(mut self) -> Self {
            self.0.metadata.deletion_timestamp = Some(Time(at(0)));
            self
        }
        fn build(self) -> Pod {
            self.0
        }
    }

    fn evict(name: &str) -> Action {
        Action::EvictPod {
            namespace: "ns".to_string(),
            name: name.to_string(),
            uid: format!("uid-{name}"),
            node: NODE.to_string(),
        }
    }

    fn event(message: String) -> Action {
        Action::Event(EventRecord {
            component: Component::TaintEvictionController,
            object: ObjectRef::pod("ns", message.rsplit('/').next().unwrap(), None),
            event_type: EventType::Normal,
            reason: "TaintManagerEviction".to_string(),
            message,
        })
    }

    fn marking(name: &str) -> Action {
        event(format!("Marking for deletion Pod ns/{name}"))
    }

    fn cancelling(name: &str) -> Action {
        event(format!("Cancelling deletion of Pod ns/{name}"))
    }

    /// `actions` with the marking Events' message cut to upstream's text (the detail that
    /// follows it has tests of its own).
    fn upstream(actions: Vec<Action>) -> Vec<Action> {
        actions
            .into_iter()
            .map(|a| match a {
                Action::Event(mut e) if e.message.starts_with("Marking for deletion Pod ") => {
                    if let Some(cut) = e.message.find(" (taint ") {
                        e.message.truncate(cut);
                    }
                    Action::Event(e)
                }
                other => other,
            })
            .collect()
    }

    fn evict_pair(name: &str) -> Vec<Action> {
        vec![marking(name), evict(name)]
    }

    fn evictions(actions: &[Action]) -> usize {
        actions
            .iter()
            .filter(|a| matches!(a, Action::EvictPod { .. }))
            .count()
    }

    /// A manager that has listed `node` at time `listed_at`.
    fn manager_with(node: &Node, listed_at: Timestamp) -> TaintManager {
        let mut tm = TaintManager::new();
        tm.node_seen(None, node, listed_at, true);
        tm
    }

    // ---- verdict ----

    #[test]
    fn pod_without_a_matching_toleration_is_due_now() {
        let p = pod("p").tolerating(vec![tol(NOT_READY, Some(300))]).build();
        let v = verdict(
            &PodFacts::from(&p),
            &[(taint(UNREACHABLE), at(0))],
            at(0),
            at(5),
        );
        assert_eq!(v, Verdict::Now);
    }

    #[test]
    fn pod_without_any_toleration_is_due_now() {
        let p = pod("p").build();
        assert_eq!(
            verdict(
                &PodFacts::from(&p),
                &[(taint(UNREACHABLE), at(0))],
                at(0),
                at(5)
            ),
            Verdict::Now
        );
    }

    #[test]
    fn node_without_no_execute_taints_keeps_every_pod() {
        let p = pod("p").build();
        assert_eq!(
            verdict(&PodFacts::from(&p), &[], at(0), at(5)),
            Verdict::Keep
        );
    }

    #[test]
    fn pod_tolerating_0s_is_due_when_the_taint_started() {
        let p = pod("p").tolerating(vec![tol(UNREACHABLE, Some(0))]).build();
        assert_eq!(
            verdict(
                &PodFacts::from(&p),
                &[(taint(UNREACHABLE), at(3))],
                at(0),
                at(5)
            ),
            Verdict::At(at(3))
        );
    }

    #[test]
    fn negative_toleration_seconds_count_as_zero() {
        let p = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(-20))])
            .build();
        assert_eq!(
            verdict(
                &PodFacts::from(&p),
                &[(taint(UNREACHABLE), at(3))],
                at(0),
                at(5)
            ),
            Verdict::At(at(3))
        );
    }

    #[test]
    fn pod_tolerating_30s_is_due_30s_after_the_taint_was_added() {
        let p = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(30))])
            .build();
        assert_eq!(
            verdict(
                &PodFacts::from(&p),
                &[(taint(UNREACHABLE), at(10))],
                at(0),
                at(12)
            ),
            Verdict::At(at(40))
        );
    }

    #[test]
    fn pod_tolerating_forever_is_kept() {
        let p = pod("p").tolerating(vec![tol(UNREACHABLE, None)]).build();
        assert_eq!(
            verdict(
                &PodFacts::from(&p),
                &[(taint(UNREACHABLE), at(10))],
                at(0),
                at(12)
            ),
            Verdict::Keep
        );
    }

    #[test]
    fn daemonset_style_pod_tolerating_both_node_taints_without_seconds_is_kept() {
        let p = pod("ds")
            .tolerating(vec![tol(NOT_READY, None), tol(UNREACHABLE, None)])
            .build();
        let taints = [(taint(UNREACHABLE), at(1)), (taint(NOT_READY), at(2))];
        assert_eq!(
            verdict(&PodFacts::from(&p), &taints, at(0), at(1000)),
            Verdict::Keep
        );
    }

    #[test]
    fn terminating_pod_is_kept_even_when_untolerated() {
        let p = pod("p").terminating().build();
        assert_eq!(
            verdict(
                &PodFacts::from(&p),
                &[(taint(UNREACHABLE), at(0))],
                at(0),
                at(5)
            ),
            Verdict::Keep
        );
    }

    #[test]
    fn with_several_taints_each_counts_from_its_own_start_and_the_earliest_due_wins() {
        let p = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(100)), tol(NOT_READY, Some(30))])
            .build();
        // unreachable: 0 + 100 = 100; not-ready: 80 + 30 = 110.
        let taints = [(taint(UNREACHABLE), at(0)), (taint(NOT_READY), at(80))];
        assert_eq!(
            verdict(&PodFacts::from(&p), &taints, at(-50), at(90)),
            Verdict::At(at(100))
        );
        // not-ready earlier: 50 + 30 = 80.
        let taints = [(taint(UNREACHABLE), at(0)), (taint(NOT_READY), at(50))];
        assert_eq!(
            verdict(&PodFacts::from(&p), &taints, at(-50), at(90)),
            Verdict::At(at(80))
        );
    }

    #[test]
    fn a_taint_tolerated_forever_does_not_hide_another_tolerated_for_a_while() {
        let p = pod("p")
            .tolerating(vec![tol(UNREACHABLE, None), tol(NOT_READY, Some(30))])
            .build();
        let taints = [(taint(UNREACHABLE), at(0)), (taint(NOT_READY), at(10))];
        assert_eq!(
            verdict(&PodFacts::from(&p), &taints, at(-5), at(20)),
            Verdict::At(at(40))
        );
    }

    #[test]
    fn the_first_matching_toleration_counts_even_when_a_later_one_is_shorter() {
        let p = pod("p")
            .tolerating(vec![
                tol(UNREACHABLE, Some(300)),
                tol(UNREACHABLE, Some(10)),
            ])
            .build();
        assert_eq!(
            verdict(
                &PodFacts::from(&p),
                &[(taint(UNREACHABLE), at(0))],
                at(-5),
                at(1)
            ),
            Verdict::At(at(300))
        );
    }

    #[test]
    fn pod_bound_after_the_taint_counts_from_its_binding() {
        let p = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(30))])
            .build();
        assert_eq!(
            verdict(
                &PodFacts::from(&p),
                &[(taint(UNREACHABLE), at(0))],
                at(100),
                at(101)
            ),
            Verdict::At(at(130))
        );
    }

    #[test]
    fn starts_in_the_future_are_capped_at_now() {
        let p = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(30))])
            .build();
        assert_eq!(
            verdict(
                &PodFacts::from(&p),
                &[(taint(UNREACHABLE), at(500))],
                at(400),
                at(10)
            ),
            Verdict::At(at(40))
        );
    }

    // ---- API-derived times ----

    #[test]
    fn time_added_is_rounded_up_to_the_next_whole_second() {
        assert_eq!(
            taint_start_from_api(&taint_added(UNREACHABLE, at(10))),
            Some(at(11))
        );
        assert_eq!(
            taint_start_from_api(&taint_added(UNREACHABLE, at_ms(10_250))),
            Some(at(11))
        );
        assert_eq!(taint_start_from_api(&taint(UNREACHABLE)), None);
    }

    #[test]
    fn binding_time_from_the_api_prefers_the_pod_scheduled_condition_and_rounds_up() {
        let p = pod("p").created(at(1)).scheduled(at(7)).build();
        assert_eq!(bound_at_from_api(&PodFacts::from(&p)), Some(at(8)));
        let p = pod("p").created(at(1)).build();
        assert_eq!(bound_at_from_api(&PodFacts::from(&p)), Some(at(2)));
        let mut p = pod("p").build();
        p.metadata.creation_timestamp = None;
        assert_eq!(bound_at_from_api(&PodFacts::from(&p)), None);
    }

    // ---- TaintManager: taint starts ----

    #[test]
    fn listed_taint_with_time_added_counts_from_the_rounded_up_time_added() {
        let node = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        let mut tm = manager_with(&node, at(15));
        let p = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(30))])
            .build();
        assert!(
            tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(15))
                .is_empty()
        );
        assert_eq!(tm.scheduled("ns", "p"), Some(at(41)));
        assert_eq!(tm.next_due(), Some(at(41)));
    }

    #[test]
    fn taint_seen_appearing_counts_from_the_precise_time_it_was_seen() {
        let mut tm = TaintManager::new();
        let before = node_with(vec![]);
        tm.node_seen(None, &before, at(0), true);
        let after = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        tm.node_seen(Some(&before), &after, at_ms(10_300), false);
        let p = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(30))])
            .build();
        tm.reconcile(NODE, Some(&after), &[PodFacts::from(&p)], at(12));
        assert_eq!(tm.scheduled("ns", "p"), Some(at_ms(40_300)));
    }

    #[test]
    fn a_node_first_seen_outside_a_listing_counts_its_taints_from_then() {
        let mut tm = TaintManager::new();
        let node = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        tm.node_seen(None, &node, at_ms(10_500), false);
        let p = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(30))])
            .build();
        tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(11));
        assert_eq!(tm.scheduled("ns", "p"), Some(at_ms(40_500)));
    }

    #[test]
    fn the_rounded_up_time_added_wins_when_it_is_earlier_than_the_precise_sight() {
        let mut tm = TaintManager::new();
        let before = node_with(vec![]);
        tm.node_seen(None, &before, at(0), true);
        // timeAdded 10.0 (the API's whole second), rounded up to 11; seen at exactly 11.
        let after = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        tm.node_seen(Some(&before), &after, at(11), false);
        let p = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(30))])
            .build();
        tm.reconcile(NODE, Some(&after), &[PodFacts::from(&p)], at(11));
        assert_eq!(tm.scheduled("ns", "p"), Some(at(41)));
    }

    #[test]
    fn taint_without_time_added_counts_from_when_it_was_first_seen() {
        let node = node_with(vec![taint(UNREACHABLE)]);
        let mut tm = manager_with(&node, at(20));
        let p = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(30))])
            .build();
        tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(25));
        assert_eq!(tm.scheduled("ns", "p"), Some(at(50)));
        // Seeing the same node again later does not restart the count.
        tm.node_seen(Some(&node), &node, at(40), false);
        tm.node_seen(None, &node, at(45), true);
        tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(46));
        assert_eq!(tm.scheduled("ns", "p"), Some(at(50)));
    }

    #[test]
    fn taint_without_time_added_first_met_in_reconcile_counts_from_then() {
        let node = node_with(vec![taint(UNREACHABLE)]);
        let mut tm = TaintManager::new();
        let p = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(30))])
            .build();
        tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(5));
        tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(9));
        assert_eq!(tm.scheduled("ns", "p"), Some(at(35)));
    }

    #[test]
    fn a_value_change_does_not_restart_the_count() {
        let node = node_with(vec![taint(UNREACHABLE)]);
        let mut tm = manager_with(&node, at(20));
        let mut changed = taint(UNREACHABLE);
        changed.value = Some("other".to_string());
        let node2 = node_with(vec![changed]);
        tm.node_seen(Some(&node), &node2, at(30), false);
        let p = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(30))])
            .build();
        tm.reconcile(NODE, Some(&node2), &[PodFacts::from(&p)], at(31));
        assert_eq!(tm.scheduled("ns", "p"), Some(at(50)));
    }

    #[test]
    fn a_taint_that_disappears_and_comes_back_counts_afresh() {
        let node = node_with(vec![taint(UNREACHABLE)]);
        let mut tm = manager_with(&node, at(20));
        let bare = node_with(vec![]);
        tm.node_seen(Some(&node), &bare, at(30), false);
        tm.node_seen(Some(&bare), &node, at(40), false);
        let p = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(30))])
            .build();
        tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(41));
        assert_eq!(tm.scheduled("ns", "p"), Some(at(70)));
    }

    #[test]
    fn a_taint_re_added_with_a_new_time_added_between_two_events_counts_afresh() {
        let mut tm = TaintManager::new();
        let bare = node_with(vec![]);
        tm.node_seen(None, &bare, at(0), true);
        let first = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        tm.node_seen(Some(&bare), &first, at_ms(10_200), false);
        let again = node_with(vec![taint_added(UNREACHABLE, at(100))]);
        tm.node_seen(Some(&first), &again, at_ms(100_400), false);
        let p = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(30))])
            .build();
        tm.reconcile(NODE, Some(&again), &[PodFacts::from(&p)], at(101));
        assert_eq!(tm.scheduled("ns", "p"), Some(at_ms(130_400)));
    }

    #[test]
    fn swapping_taints_while_keeping_time_added_keeps_the_due_time() {
        let unreachable = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        let mut tm = manager_with(&unreachable, at(12));
        let p = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(300)), tol(NOT_READY, Some(300))])
            .build();
        tm.reconcile(NODE, Some(&unreachable), &[PodFacts::from(&p)], at(12));
        assert_eq!(tm.scheduled("ns", "p"), Some(at(311)));
        let not_ready = node_with(vec![taint_added(NOT_READY, at(10))]);
        tm.node_seen(Some(&unreachable), &not_ready, at(100), false);
        assert!(
            tm.reconcile(NODE, Some(&not_ready), &[PodFacts::from(&p)], at(100))
                .is_empty()
        );
        assert_eq!(tm.scheduled("ns", "p"), Some(at(311)));
    }

    /// When a pod tolerating `unreachable` for 71 s is due, its node's taint (`timeAdded` 120)
    /// seen appearing at `seen`.
    fn due_when_taint_stamped_120_appears_at(seen: i64) -> Option<Timestamp> {
        let bare = node_with(vec![]);
        let mut tm = manager_with(&bare, at(100));
        let p = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(71))])
            .build();
        let tainted = node_with(vec![taint_added(UNREACHABLE, at(120))]);
        tm.node_seen(Some(&bare), &tainted, at(seen), false);
        tm.reconcile(NODE, Some(&tainted), &[PodFacts::from(&p)], at(seen));
        tm.scheduled("ns", "p")
    }

    /// A taint write held by a hung API server lands stamped with when it was sent.
    #[test]
    fn a_taint_that_appears_long_after_its_time_added_counts_from_when_it_appeared() {
        assert_eq!(due_when_taint_stamped_120_appears_at(166), Some(at(237)));
    }

    #[test]
    fn a_taint_that_appears_seconds_after_its_time_added_counts_from_when_it_appeared() {
        assert_eq!(due_when_taint_stamped_120_appears_at(124), Some(at(195)));
    }

    #[test]
    fn a_taint_listed_at_start_counts_from_time_added_however_old() {
        let tainted = node_with(vec![taint_added(UNREACHABLE, at(120))]);
        let mut tm = manager_with(&tainted, at(166));
        let p = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(71))])
            .build();
        tm.reconcile(NODE, Some(&tainted), &[PodFacts::from(&p)], at(166));
        assert_eq!(tm.scheduled("ns", "p"), Some(at(192)));
    }

    #[test]
    fn node_gone_forgets_its_taints() {
        let node = node_with(vec![taint(UNREACHABLE)]);
        let mut tm = manager_with(&node, at(20));
        tm.node_gone(NODE);
        let p = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(30))])
            .build();
        tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(50));
        assert_eq!(tm.scheduled("ns", "p"), Some(at(80)));
    }

    // ---- TaintManager: binding times ----

    #[test]
    fn pod_bound_after_the_taint_was_added_counts_from_the_api_binding_time() {
        let node = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        let mut tm = manager_with(&node, at(12));
        let p = pod("p")
            .created(at(50))
            .scheduled(at(60))
            .tolerating(vec![tol(UNREACHABLE, Some(30))])
            .build();
        tm.pod_seen(None, &PodFacts::from(&p), at(70), true);
        tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(70));
        assert_eq!(tm.scheduled("ns", "p"), Some(at(91)));
    }

    #[test]
    fn binding_seen_appearing_counts_from_the_precise_time_it_was_seen() {
        let node = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        let mut tm = manager_with(&node, at(12));
        let tolerations = vec![tol(UNREACHABLE, Some(30))];
        let pending = pod("p")
            .created(at(50))
            .unbound()
            .tolerating(tolerations.clone())
            .build();
        tm.pod_seen(None, &PodFacts::from(&pending), at(50), false);
        let bound = pod("p")
            .created(at(50))
            .scheduled(at(60))
            .tolerating(tolerations)
            .build();
        tm.pod_seen(
            Some(&PodFacts::from(&pending)),
            &PodFacts::from(&bound),
            at_ms(60_200),
            false,
        );
        tm.reconcile(NODE, Some(&node), &[PodFacts::from(&bound)], at(61));
        assert_eq!(tm.scheduled("ns", "p"), Some(at_ms(90_200)));
    }

    #[test]
    fn new_pod_arriving_already_bound_outside_a_listing_counts_from_its_arrival() {
        let node = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        let mut tm = manager_with(&node, at(12));
        let p = pod("p")
            .created(at(60))
            .tolerating(vec![tol(UNREACHABLE, Some(30))])
            .build();
        tm.pod_seen(None, &PodFacts::from(&p), at_ms(60_100), false);
        tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(61));
        assert_eq!(tm.scheduled("ns", "p"), Some(at_ms(90_100)));
    }

    #[test]
    fn listed_pod_counts_from_its_api_binding_time_rather_than_the_listing() {
        let node = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        let mut tm = manager_with(&node, at(12));
        let p = pod("p")
            .created(at(60))
            .tolerating(vec![tol(UNREACHABLE, Some(300))])
            .build();
        tm.pod_seen(None, &PodFacts::from(&p), at(200), true);
        tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(200));
        assert_eq!(tm.scheduled("ns", "p"), Some(at(361)));
    }

    #[test]
    fn a_later_update_of_a_bound_pod_does_not_move_its_binding_time() {
        let node = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        let mut tm = manager_with(&node, at(12));
        let p = pod("p")
            .created(at(60))
            .tolerating(vec![tol(UNREACHABLE, Some(300))])
            .build();
        tm.pod_seen(None, &PodFacts::from(&p), at(200), true);
        tm.pod_seen(
            Some(&PodFacts::from(&p)),
            &PodFacts::from(&p),
            at(210),
            false,
        );
        tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(210));
        assert_eq!(tm.scheduled("ns", "p"), Some(at(361)));
    }

    #[test]
    fn pod_without_any_binding_time_counts_from_now() {
        let node = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        let mut tm = manager_with(&node, at(12));
        let mut p = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(30))])
            .build();
        p.metadata.creation_timestamp = None;
        tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(100));
        assert_eq!(tm.scheduled("ns", "p"), Some(at(130)));
    }

    // ---- TaintManager: schedules and actions ----

    #[test]
    fn untolerated_taint_evicts_at_once_with_the_marking_event_first() {
        let node = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        let mut tm = manager_with(&node, at(12));
        let p = pod("p").build();
        assert_eq!(
            upstream(tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(12))),
            evict_pair("p")
        );
        assert_eq!(tm.scheduled("ns", "p"), None);
    }

    #[test]
    fn events_name_the_taint_eviction_controller_and_the_pod_without_uid() {
        let node = node_with(vec![taint(UNREACHABLE)]);
        let mut tm = manager_with(&node, at(12));
        let p = pod("p").build();
        let actions = tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(12));
        let Action::Event(e) = &actions[0] else {
            panic!("expected an event first, got {actions:?}");
        };
        assert_eq!(e.component, Component::TaintEvictionController);
        assert_eq!(e.event_type, EventType::Normal);
        assert_eq!(e.reason, "TaintManagerEviction");
        assert_eq!(
            e.message,
            "Marking for deletion Pod ns/p (taint node.kubernetes.io/unreachable:NoExecute \
             timeAdded none, not tolerated, due 2025-01-01T00:00:12Z)"
        );
        assert_eq!(e.object, ObjectRef::pod("ns", "p", None));
    }

    #[test]
    fn the_marking_event_of_a_countdown_names_its_taint_toleration_and_due_time() {
        let node = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        let mut tm = manager_with(&node, at(12));
        let p = pod("p")
            .tolerating(vec![tol(NOT_READY, None), tol(UNREACHABLE, Some(30))])
            .build();
        assert!(
            tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(12))
                .is_empty()
        );
        let fired = tm.fire_due(at(41));
        let Action::Event(e) = &fired[0] else {
            panic!("expected the marking event first: {fired:?}");
        };
        assert_eq!(
            e.message,
            "Marking for deletion Pod ns/p (taint node.kubernetes.io/unreachable:NoExecute \
             timeAdded 2025-01-01T00:00:10Z, toleration tolerationSeconds=30, due \
             2025-01-01T00:00:41Z)"
        );
    }

    #[test]
    fn toleration_of_0s_evicts_at_once() {
        let node = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        let mut tm = manager_with(&node, at(12));
        let p = pod("p").tolerating(vec![tol(UNREACHABLE, Some(0))]).build();
        assert_eq!(
            upstream(tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(12))),
            evict_pair("p")
        );
    }

    #[test]
    fn expired_toleration_evicts_at_once_on_reconcile() {
        let node = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        let mut tm = manager_with(&node, at(100));
        let p = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(30))])
            .build();
        assert_eq!(
            upstream(tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(100))),
            evict_pair("p")
        );
    }

    #[test]
    fn pod_tolerating_forever_gets_no_schedule() {
        let node = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        let mut tm = manager_with(&node, at(12));
        let p = pod("ds")
            .tolerating(vec![tol(UNREACHABLE, None), tol(NOT_READY, None)])
            .build();
        assert!(
            tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(12))
                .is_empty()
        );
        assert_eq!(tm.scheduled("ns", "ds"), None);
        assert_eq!(tm.next_due(), None);
    }

    #[test]
    fn schedule_fires_when_due_and_not_before() {
        let node = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        let mut tm = manager_with(&node, at(12));
        let p = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(30))])
            .build();
        tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(12));
        assert!(tm.fire_due(at_ms(40_999)).is_empty());
        assert_eq!(upstream(tm.fire_due(at(41))), evict_pair("p"));
        assert_eq!(tm.scheduled("ns", "p"), None);
        assert_eq!(tm.next_due(), None);
        assert!(tm.fire_due(at(42)).is_empty());
    }

    #[test]
    fn due_schedules_fire_in_due_time_then_name_order() {
        let node = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        let mut tm = manager_with(&node, at(12));
        let b = pod("b")
            .tolerating(vec![tol(UNREACHABLE, Some(20))])
            .build();
        let a = pod("a")
            .tolerating(vec![tol(UNREACHABLE, Some(20))])
            .build();
        let c = pod("c")
            .tolerating(vec![tol(UNREACHABLE, Some(10))])
            .build();
        let d = pod("d")
            .tolerating(vec![tol(UNREACHABLE, Some(100))])
            .build();
        tm.reconcile(
            NODE,
            Some(&node),
            &[
                PodFacts::from(&a),
                PodFacts::from(&b),
                PodFacts::from(&c),
                PodFacts::from(&d),
            ],
            at(12),
        );
        assert_eq!(tm.next_due(), Some(at(21)));
        let fired = tm.fire_due(at(50));
        let mut expected = evict_pair("c");
        expected.extend(evict_pair("a"));
        expected.extend(evict_pair("b"));
        assert_eq!(upstream(fired), expected);
        assert_eq!(tm.next_due(), Some(at(111)));
    }

    #[test]
    fn shortening_a_toleration_moves_the_due_time_earlier_silently() {
        let node = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        let mut tm = manager_with(&node, at(12));
        let long = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(300))])
            .build();
        tm.reconcile(NODE, Some(&node), &[PodFacts::from(&long)], at(12));
        assert_eq!(tm.scheduled("ns", "p"), Some(at(311)));
        let short = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(30))])
            .build();
        assert!(
            tm.reconcile(NODE, Some(&node), &[PodFacts::from(&short)], at(20))
                .is_empty()
        );
        assert_eq!(tm.scheduled("ns", "p"), Some(at(41)));
        assert_eq!(tm.next_due(), Some(at(41)));
    }

    #[test]
    fn lengthening_a_toleration_moves_the_due_time_later() {
        let node = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        let mut tm = manager_with(&node, at(12));
        let short = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(30))])
            .build();
        tm.reconcile(NODE, Some(&node), &[PodFacts::from(&short)], at(12));
        let long = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(300))])
            .build();
        assert!(
            tm.reconcile(NODE, Some(&node), &[PodFacts::from(&long)], at(20))
                .is_empty()
        );
        assert_eq!(tm.scheduled("ns", "p"), Some(at(311)));
        assert!(tm.fire_due(at(100)).is_empty());
    }

    #[test]
    fn tolerating_forever_after_a_change_cancels_with_an_event() {
        let node = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        let mut tm = manager_with(&node, at(12));
        let short = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(30))])
            .build();
        tm.reconcile(NODE, Some(&node), &[PodFacts::from(&short)], at(12));
        let forever = pod("p").tolerating(vec![tol(UNREACHABLE, None)]).build();
        assert_eq!(
            tm.reconcile(NODE, Some(&node), &[PodFacts::from(&forever)], at(20)),
            vec![cancelling("p")]
        );
        assert_eq!(tm.scheduled("ns", "p"), None);
    }

    #[test]
    fn dropping_the_toleration_evicts_a_scheduled_pod_at_once_without_a_cancel_event() {
        let node = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        let mut tm = manager_with(&node, at(12));
        let tolerant = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(300))])
            .build();
        tm.reconcile(NODE, Some(&node), &[PodFacts::from(&tolerant)], at(12));
        let intolerant = pod("p").build();
        assert_eq!(
            upstream(tm.reconcile(NODE, Some(&node), &[PodFacts::from(&intolerant)], at(20))),
            evict_pair("p")
        );
        assert_eq!(tm.next_due(), None);
    }

    #[test]
    fn removing_the_taint_cancels_the_schedule_with_an_event() {
        let node = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        let mut tm = manager_with(&node, at(12));
        let p = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(300))])
            .build();
        tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(12));
        let healthy = node_with(vec![]);
        tm.node_seen(Some(&node), &healthy, at(50), false);
        assert_eq!(
            tm.reconcile(NODE, Some(&healthy), &[PodFacts::from(&p)], at(50)),
            vec![cancelling("p")]
        );
        assert_eq!(tm.scheduled("ns", "p"), None);
        assert_eq!(tm.next_due(), None);
        // Nothing left to cancel: no second event.
        assert!(
            tm.reconcile(NODE, Some(&healthy), &[PodFacts::from(&p)], at(51))
                .is_empty()
        );
    }

    #[test]
    fn a_gone_node_cancels_the_schedules_of_its_pods() {
        let node = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        let mut tm = manager_with(&node, at(12));
        let p = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(300))])
            .build();
        tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(12));
        tm.node_gone(NODE);
        assert_eq!(
            tm.reconcile(NODE, None, &[PodFacts::from(&p)], at(50)),
            vec![cancelling("p")]
        );
    }

    #[test]
    fn adding_a_second_taint_with_a_shorter_window_moves_the_due_time_earlier() {
        let node = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        let mut tm = manager_with(&node, at(12));
        let p = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(300)), tol("custom", Some(60))])
            .build();
        tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(12));
        assert_eq!(tm.scheduled("ns", "p"), Some(at(311)));
        let both = node_with(vec![
            taint_added(UNREACHABLE, at(10)),
            taint_added("custom", at(100)),
        ]);
        tm.node_seen(Some(&node), &both, at_ms(100_500), false);
        tm.reconcile(NODE, Some(&both), &[PodFacts::from(&p)], at(101));
        assert_eq!(tm.scheduled("ns", "p"), Some(at_ms(160_500)));
    }

    #[test]
    fn no_second_evict_pod_while_the_first_is_in_flight() {
        let node = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        let mut tm = manager_with(&node, at(12));
        let p = pod("p").build();
        assert_eq!(
            evictions(&tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(12))),
            1
        );
        assert!(
            tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(13))
                .is_empty()
        );
        assert!(
            tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(14))
                .is_empty()
        );
        assert!(tm.fire_due(at(15)).is_empty());
    }

    #[test]
    fn no_second_evict_pod_after_a_fired_schedule_while_in_flight() {
        let node = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        let mut tm = manager_with(&node, at(12));
        let p = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(30))])
            .build();
        tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(12));
        assert_eq!(evictions(&tm.fire_due(at(41))), 1);
        assert!(
            tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(42))
                .is_empty()
        );
    }

    #[test]
    fn a_pod_kept_in_between_is_evicted_again_when_due_again() {
        let node = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        let mut tm = manager_with(&node, at(12));
        let p = pod("p").build();
        assert_eq!(
            evictions(&tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(12))),
            1
        );
        let healthy = node_with(vec![]);
        tm.node_seen(Some(&node), &healthy, at(20), false);
        // Nothing was scheduled, so no cancellation event either.
        assert!(
            tm.reconcile(NODE, Some(&healthy), &[PodFacts::from(&p)], at(20))
                .is_empty()
        );
        tm.node_seen(Some(&healthy), &node, at(30), false);
        assert_eq!(
            upstream(tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(30))),
            evict_pair("p")
        );
    }

    #[test]
    fn a_recreated_pod_with_a_new_uid_is_evicted_despite_the_old_one_in_flight() {
        let node = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        let mut tm = manager_with(&node, at(12));
        let old = pod("p").build();
        assert_eq!(
            evictions(&tm.reconcile(NODE, Some(&node), &[PodFacts::from(&old)], at(12))),
            1
        );
        let new = pod("p").uid("uid-p2").build();
        let actions = tm.reconcile(NODE, Some(&node), &[PodFacts::from(&new)], at(13));
        assert_eq!(actions.len(), 2);
        assert!(matches!(&actions[1], Action::EvictPod { uid, .. } if uid == "uid-p2"));
    }

    #[test]
    fn terminating_pod_is_not_deleted_again_and_its_schedule_is_cancelled() {
        let node = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        let mut tm = manager_with(&node, at(12));
        let p = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(30))])
            .build();
        tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(12));
        let deleting = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(30))])
            .terminating()
            .build();
        assert_eq!(
            tm.reconcile(NODE, Some(&node), &[PodFacts::from(&deleting)], at(20)),
            vec![cancelling("p")]
        );
        let untolerant_deleting = pod("q").terminating().build();
        assert!(
            tm.reconcile(
                NODE,
                Some(&node),
                &[PodFacts::from(&untolerant_deleting)],
                at(20)
            )
            .is_empty()
        );
        assert!(tm.fire_due(at(100)).is_empty());
    }

    #[test]
    fn finished_pods_are_still_evicted() {
        let node = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        let mut tm = manager_with(&node, at(12));
        let done = pod("done").phase("Succeeded").build();
        let failed = pod("failed").phase("Failed").build();
        let actions = tm.reconcile(
            NODE,
            Some(&node),
            &[PodFacts::from(&done), PodFacts::from(&failed)],
            at(12),
        );
        let mut expected = evict_pair("done");
        expected.extend(evict_pair("failed"));
        assert_eq!(upstream(actions), expected);
    }

    #[test]
    fn pod_gone_cancels_its_schedule_with_an_event() {
        let node = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        let mut tm = manager_with(&node, at(12));
        let p = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(30))])
            .build();
        tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(12));
        assert_eq!(tm.pod_gone("ns", "p"), vec![cancelling("p")]);
        assert_eq!(tm.scheduled("ns", "p"), None);
        assert_eq!(tm.next_due(), None);
        assert!(tm.fire_due(at(100)).is_empty());
    }

    #[test]
    fn pod_gone_without_a_schedule_emits_nothing_and_forgets_the_in_flight_mark() {
        let node = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        let mut tm = manager_with(&node, at(12));
        let p = pod("p").build();
        tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(12));
        assert!(tm.pod_gone("ns", "p").is_empty());
        // A pod with the same name and UID seen again is a fresh decision.
        assert_eq!(
            upstream(tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(13))),
            evict_pair("p")
        );
    }

    #[test]
    fn pod_gone_forgets_the_precise_binding_time() {
        let node = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        let mut tm = manager_with(&node, at(12));
        let p = pod("p")
            .created(at(60))
            .tolerating(vec![tol(UNREACHABLE, Some(30))])
            .build();
        tm.pod_seen(None, &PodFacts::from(&p), at_ms(60_100), false);
        tm.pod_gone("ns", "p");
        tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(62));
        assert_eq!(tm.scheduled("ns", "p"), Some(at(91)));
    }

    #[test]
    fn an_in_flight_pod_that_is_no_longer_due_is_rescheduled_and_fires_again_later() {
        let node = node_with(vec![taint_added(UNREACHABLE, at(10))]);
        let mut tm = manager_with(&node, at(12));
        let p = pod("p").build();
        assert_eq!(
            evictions(&tm.reconcile(NODE, Some(&node), &[PodFacts::from(&p)], at(12))),
            1
        );
        let tolerant = pod("p")
            .tolerating(vec![tol(UNREACHABLE, Some(60))])
            .build();
        assert!(
            tm.reconcile(NODE, Some(&node), &[PodFacts::from(&tolerant)], at(20))
                .is_empty()
        );
        assert_eq!(tm.scheduled("ns", "p"), Some(at(71)));
        assert_eq!(upstream(tm.fire_due(at(71))), evict_pair("p"));
    }
}
