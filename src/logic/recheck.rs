//! The re-checks of a decision on the live objects, right before its write.
//!
//! Decisions are made on the cache, and a write may land much later (queued, retried): each
//! write is decided again here on the copy the writer just read, so that what lands is still
//! what the live object calls for (docs/differences.md#writes-are-rechecked). The writer only
//! reads, asks these functions (and `conditions::unknown_mark` for a node's Unknown mark), and
//! writes their answer.

use super::actions::{TaintChange, TaintPurpose};
use super::conditions::{self, ConditionStatus};
use super::eviction::{self, Verdict};
use super::pod::PodFacts;
use super::taints;
use super::time;
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod, PodCondition, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::collections::BTreeMap;

/// What a decision on a silent node saw of its signs of life: the Ready heartbeat and the
/// Lease's renewTime. A change of either since then cancels the write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SilenceSeen {
    pub heartbeat: Option<Timestamp>,
    pub lease_renew: Option<Timestamp>,
}

impl SilenceSeen {
    /// Whether the live node posted a Ready heartbeat since: then the Lease need not be read.
    pub fn heartbeat_posted(&self, node: &Node) -> bool {
        conditions::ready_heartbeat(node) != self.heartbeat
    }

    /// Whether the live node and its live Lease (`None`: there is none) show no sign of life
    /// since the decision. A Lease without a renewTime says nothing either way.
    pub fn still_silent(&self, node: &Node, lease: Option<&Lease>) -> bool {
        if self.heartbeat_posted(node) {
            return false;
        }
        let renew = lease.and_then(lease_renew_time);
        renew.is_none() || renew == self.lease_renew
    }
}

/// A Lease's renewTime.
pub fn lease_renew_time(lease: &Lease) -> Option<Timestamp> {
    lease.spec.as_ref()?.renew_time.as_ref().map(|t| t.0)
}

/// A taint write: the change still wanted and the node's whole taint list after it.
#[derive(Clone, Debug, PartialEq)]
pub struct TaintWrite {
    pub change: TaintChange,
    pub taints: Vec<Taint>,
}

/// The taint write the live `node` calls for at `now`, given a change decided on the cache for
/// `purpose`; `None` when it no longer calls for any.
///
/// Condition taints follow the live conditions. A NoExecute taint (zone eviction, swap) goes on
/// only if the live Ready status still asks for that very taint, and is decided again at `now`:
/// its pods' countdowns start when it lands (a swap keeps the replaced taint's start), not when
/// a write that failed was first decided. A recovery's removal applies as decided.
pub fn taints_to_write(
    node: &Node,
    decided: &TaintChange,
    purpose: &TaintPurpose,
    now: Timestamp,
) -> Option<TaintWrite> {
    let change = match purpose {
        TaintPurpose::Conditions { .. } => taints::condition_taint_change(node, now)?,
        TaintPurpose::ZoneEviction { .. } | TaintPurpose::Swap => {
            let key = conditions::ready_status(node)
                .and_then(taints::no_execute_key_for)
                .filter(|k| decided.add.iter().all(|t| t.key == *k))?;
            if *purpose == TaintPurpose::Swap
                && ![taints::NOT_READY, taints::UNREACHABLE]
                    .iter()
                    .any(|k| *k != key && taints::has_no_execute(node, k))
            {
                // The taint to replace is gone from the live node (a cache that lagged behind
                // its removal, as when every zone went down): a new taint is its zone queue's
                // to give, at its rate, not a swap's.
                return None;
            }
            taints::no_execute_change(node, key, now)?
        }
        TaintPurpose::Recovery => decided.clone(),
    };
    let mut list = taints::node_taints(node).to_vec();
    taints::apply_change(&mut list, &change).then_some(TaintWrite {
        change,
        taints: list,
    })
}

/// The labels of `wanted` the live node does not carry with that value.
pub fn labels_to_set(node: &Node, wanted: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let labels = node.metadata.labels.as_ref();
    wanted
        .iter()
        .filter(|(k, v)| labels.and_then(|l| l.get(*k)) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Whether `pod` is the one a decision was about: the same UID, bound to the same node.
pub fn same_binding(pod: &Pod, uid: &str, node: &str) -> bool {
    pod.metadata.uid.as_deref() == Some(uid)
        && pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node)
}

/// The taints of `added` (just written) whose `timeAdded` second was over when the write was
/// answered at `answered`: the API server held the write (a hang).
pub fn held_stamps(added: &[Taint], answered: Timestamp) -> Vec<&Taint> {
    added
        .iter()
        .filter(|t| {
            t.time_added
                .as_ref()
                .is_some_and(|s| answered > time::round_up_next_second(s.0))
        })
        .collect()
}

/// The live `node`'s taint list with the `held` taints' `timeAdded` moved to `answered`, so
/// that they count from when they took effect; `None` when none of them is there any more
/// with its stamp (the API keeps whole seconds of it).
pub fn restamped(node: &Node, held: &[&Taint], answered: Timestamp) -> Option<Vec<Taint>> {
    let second = |t: &Taint| t.time_added.as_ref().map(|s| s.0.as_second());
    let mut taints = taints::node_taints(node).to_vec();
    let mut changed = false;
    for t in taints.iter_mut() {
        if held
            .iter()
            .any(|h| h.key == t.key && h.effect == t.effect && second(h) == second(t))
        {
            t.time_added = Some(Time(answered));
            changed = true;
        }
    }
    changed.then_some(taints)
}

/// Whether a cached copy of a pod can stand in for a read before a write to it: the write it
/// leads to can be guarded by its resourceVersion, and it is the pod the decision was about.
pub fn can_guard_a_write(copy: &Pod, uid: &str, node: &str) -> bool {
    copy.metadata.resource_version.is_some() && same_binding(copy, uid, node)
}

/// The Ready=False condition to patch on a pod of a still silent node (upstream's
/// MarkPodsNotReady changes the status and the transition time, nothing else); `None` when the
/// pod has no Ready condition or it is False already.
pub fn pod_not_ready_mark(pod: &Pod, now: Timestamp) -> Option<PodCondition> {
    let ready = pod_condition(pod, "Ready")?;
    (ready.status != "False").then(|| PodCondition {
        type_: "Ready".into(),
        status: "False".into(),
        last_transition_time: Some(Time(now)),
        ..Default::default()
    })
}

/// Whether the live `pod` is due for eviction by `now` under the live `node`'s NoExecute
/// taints, both timed from API data alone (`timeAdded`, the binding's transition time).
///
/// A node whose live Ready is True has come back: its `unreachable` and `not-ready` taints
/// are ours to remove and no longer count, even while the Node watch has not shown us the
/// recovery yet (a stalled watch would otherwise let them delete its pods).
pub fn due_on_live_taints(pod: &Pod, node: &Node, now: Timestamp) -> bool {
    let back = conditions::ready_status(node) == Some(ConditionStatus::True);
    let taints: Vec<(Taint, Timestamp)> = taints::no_execute_taints(node)
        .into_iter()
        .filter(|t| !(back && [taints::UNREACHABLE, taints::NOT_READY].contains(&t.key.as_str())))
        .map(|t| {
            let start = eviction::taint_start_from_api(&t).unwrap_or(now);
            (t, start)
        })
        .collect();
    let pod = PodFacts::from(pod);
    let bound = eviction::bound_at_from_api(&pod).unwrap_or(now);
    match eviction::verdict(&pod, &taints, bound, now) {
        Verdict::Keep => false,
        // API timestamps are whole seconds and rounded up here, while the taint manager may
        // know the precise time: allow that one second, no more.
        Verdict::At(t) => t <= time::add_secs(now, 1),
        Verdict::Now => true,
    }
}

/// Whether the pod carries the DisruptionTarget condition the taint manager sets.
pub fn has_disruption_target(pod: &Pod) -> bool {
    pod_condition(pod, "DisruptionTarget").is_some_and(|c| c.status == "True")
}

/// The condition upstream's taint manager adds to a pod before deleting it.
pub fn disruption_target(now: Timestamp) -> PodCondition {
    PodCondition {
        type_: "DisruptionTarget".into(),
        status: "True".into(),
        reason: Some("DeletionByTaintManager".into()),
        message: Some("Taint manager: deleting due to NoExecute taint".into()),
        last_transition_time: Some(Time(now)),
        ..Default::default()
    }
}

fn pod_condition<'a>(pod: &'a Pod, type_: &str) -> Option<&'a PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logic::taints::{NOT_READY, UNREACHABLE};
    use crate::testing::{at, lease, node, pod};

    #[test]
    fn a_held_taint_write_is_restamped_to_its_answer_and_the_other_taints_kept() {
        let sent = Taint {
            key: UNREACHABLE.into(),
            effect: "NoExecute".into(),
            time_added: Some(Time(at(110))),
            value: None,
        };
        assert!(held_stamps(std::slice::from_ref(&sent), at(111)).is_empty());
        let held = held_stamps(std::slice::from_ref(&sent), at(113));
        assert_eq!(held.len(), 1);
        let live = node("n")
            .taint(UNREACHABLE, "NoExecute", Some(110))
            .taint("example.com/maintenance", "NoSchedule", Some(50))
            .build();
        let list = restamped(&live, &held, at(113)).unwrap();
        assert_eq!(list[0].time_added, Some(Time(at(113))));
        assert_eq!(list[1], taints::node_taints(&live)[1]);
        let replaced = node("n").taint(UNREACHABLE, "NoExecute", Some(140)).build();
        assert_eq!(restamped(&replaced, &held, at(113)), None);
    }

    #[test]
    fn a_node_is_still_silent_only_without_a_new_heartbeat_or_lease_renewal() {
        let silent = node("n").ready("Unknown").heartbeat(10).build();
        let seen = SilenceSeen {
            heartbeat: Some(at(10)),
            lease_renew: Some(at(12)),
        };
        assert!(seen.still_silent(&silent, Some(&lease("n", 12))));
        assert!(
            seen.still_silent(&silent, None),
            "no Lease: no sign of life"
        );
        assert!(!seen.still_silent(&silent, Some(&lease("n", 13))));
        let posted = node("n").ready("Unknown").heartbeat(11).build();
        assert!(seen.heartbeat_posted(&posted));
        assert!(!seen.still_silent(&posted, Some(&lease("n", 12))));
    }

    fn zone_taint_decided_at_5() -> TaintChange {
        let silent = node("n").ready("Unknown").build();
        taints::no_execute_change(&silent, UNREACHABLE, at(5)).unwrap()
    }

    #[test]
    fn a_zone_taint_is_not_written_once_the_live_ready_status_asks_for_another() {
        let decided = zone_taint_decided_at_5();
        let purpose = TaintPurpose::ZoneEviction { zone: "z".into() };
        let back = node("n").build();
        assert_eq!(taints_to_write(&back, &decided, &purpose, at(9)), None);
        let not_ready = node("n").ready("False").build();
        assert_eq!(taints_to_write(&not_ready, &decided, &purpose, at(9)), None);
    }

    #[test]
    fn a_zone_taint_decided_earlier_starts_counting_when_it_is_written() {
        let decided = zone_taint_decided_at_5();
        let purpose = TaintPurpose::ZoneEviction { zone: "z".into() };
        let live = node("n").ready("Unknown").build();
        let write = taints_to_write(&live, &decided, &purpose, at(9)).unwrap();
        assert_eq!(write.taints.len(), 1);
        assert_eq!(write.taints[0].key, UNREACHABLE);
        assert_eq!(write.taints[0].time_added, Some(Time(at(9))));
    }

    #[test]
    fn a_swap_keeps_the_countdown_of_the_taint_it_replaces() {
        let live = node("n")
            .ready("Unknown")
            .taint(NOT_READY, "NoExecute", Some(3))
            .build();
        let decided = taints::no_execute_change(&live, UNREACHABLE, at(5)).unwrap();
        let write = taints_to_write(&live, &decided, &TaintPurpose::Swap, at(9)).unwrap();
        assert_eq!(write.change.removed(), format!("{NOT_READY}:NoExecute"));
        assert_eq!(write.taints.len(), 1);
        assert_eq!(write.taints[0].key, UNREACHABLE);
        assert_eq!(write.taints[0].time_added, Some(Time(at(3))));
    }

    #[test]
    fn a_swap_whose_replaced_taint_is_gone_from_the_live_node_writes_nothing() {
        let cached = node("n")
            .ready("Unknown")
            .taint(NOT_READY, "NoExecute", Some(3))
            .build();
        let decided = taints::no_execute_change(&cached, UNREACHABLE, at(5)).unwrap();
        let live = node("n").ready("Unknown").build();
        assert_eq!(
            taints_to_write(&live, &decided, &TaintPurpose::Swap, at(9)),
            None
        );
    }

    #[test]
    fn a_recovery_removes_what_the_live_node_still_carries_and_nothing_when_it_is_clean() {
        let live = node("n").taint(UNREACHABLE, "NoExecute", Some(3)).build();
        let change = taints::remove_no_execute();
        let write = taints_to_write(&live, &change, &TaintPurpose::Recovery, at(9)).unwrap();
        assert!(write.taints.is_empty());
        let clean = node("n").build();
        assert_eq!(
            taints_to_write(&clean, &change, &TaintPurpose::Recovery, at(9)),
            None
        );
    }

    #[test]
    fn condition_taints_follow_the_live_conditions_not_the_decision() {
        let decided = TaintChange::default();
        let not_ready = node("n").ready("False").build();
        let write = taints_to_write(
            &not_ready,
            &decided,
            &TaintPurpose::Conditions {
                next_in_zone: false,
            },
            at(9),
        )
        .unwrap();
        assert_eq!(write.taints[0].key, NOT_READY);
        assert_eq!(write.taints[0].effect, "NoSchedule");
        let ready = node("n").build();
        assert_eq!(
            taints_to_write(
                &ready,
                &decided,
                &TaintPurpose::Conditions {
                    next_in_zone: false
                },
                at(9)
            ),
            None
        );
    }

    #[test]
    fn only_the_labels_the_live_node_lacks_or_differs_on_are_set() {
        let live = node("n").label("a", "1").label("b", "old").build();
        let wanted = BTreeMap::from([
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "new".to_string()),
            ("c".to_string(), "3".to_string()),
        ]);
        let set = labels_to_set(&live, &wanted);
        assert_eq!(set.keys().collect::<Vec<_>>(), ["b", "c"]);
        assert_eq!(set["b"], "new");
    }

    #[test]
    fn a_pod_is_the_same_only_with_its_uid_on_its_node() {
        let p = pod("p", "n").build();
        assert!(same_binding(&p, "uid-p", "n"));
        assert!(!same_binding(&p, "uid-q", "n"));
        assert!(!same_binding(&p, "uid-p", "m"));
    }

    #[test]
    fn a_pod_is_marked_not_ready_only_from_another_ready_status_and_only_that_changes() {
        let mark = pod_not_ready_mark(&pod("p", "n").build(), at(7)).unwrap();
        assert_eq!(
            mark,
            PodCondition {
                type_: "Ready".into(),
                status: "False".into(),
                last_transition_time: Some(Time(at(7))),
                ..Default::default()
            }
        );
        let marked = pod("p", "n").condition("Ready", "False").build();
        assert_eq!(pod_not_ready_mark(&marked, at(8)), None);
        let without = pod("p", "n").without_status().build();
        assert_eq!(pod_not_ready_mark(&without, at(8)), None);
    }

    #[test]
    fn a_pod_is_due_on_live_taints_within_one_second_of_its_countdown_and_not_before() {
        let tainted = node("n")
            .ready("Unknown")
            .taint(UNREACHABLE, "NoExecute", Some(100))
            .build();
        let tolerating = pod("p", "n").tolerating(UNREACHABLE, Some(30)).build();
        // timeAdded 100 counts from 101 (rounded up, never early): due at 131.
        assert!(!due_on_live_taints(&tolerating, &tainted, at(129)));
        assert!(
            due_on_live_taints(&tolerating, &tainted, at(130)),
            "one second of slack"
        );
        assert!(due_on_live_taints(&tolerating, &tainted, at(131)));
        let intolerant = pod("q", "n").build();
        assert!(due_on_live_taints(&intolerant, &tainted, at(100)));
        assert!(!due_on_live_taints(
            &tolerating,
            &node("n").build(),
            at(500)
        ));
    }

    #[test]
    fn a_node_back_to_ready_deletes_nothing_on_its_unreachable_or_not_ready_taints() {
        let intolerant = pod("q", "n").build();
        for key in [UNREACHABLE, NOT_READY] {
            let down = |ready| node("n").ready(ready).taint(key, "NoExecute", Some(100));
            assert!(due_on_live_taints(
                &intolerant,
                &down("Unknown").build(),
                at(200)
            ));
            assert!(due_on_live_taints(
                &intolerant,
                &down("False").build(),
                at(200)
            ));
            let back = down("True").build();
            assert!(!due_on_live_taints(&intolerant, &back, at(200)), "{key}");
        }
        // Someone else's NoExecute taint still counts on a Ready node.
        let drained = node("n")
            .taint("example.com/drain", "NoExecute", Some(100))
            .build();
        assert!(due_on_live_taints(&intolerant, &drained, at(200)));
    }

    #[test]
    fn the_disruption_target_condition_is_upstreams_and_is_recognised() {
        let c = disruption_target(at(0));
        assert_eq!(
            (c.type_.as_str(), c.status.as_str()),
            ("DisruptionTarget", "True")
        );
        assert_eq!(c.reason.as_deref(), Some("DeletionByTaintManager"));
        assert_eq!(c.last_transition_time, Some(Time(at(0))));
        assert!(!has_disruption_target(&pod("p", "n").build()));
        let targeted = pod("p", "n").condition("DisruptionTarget", "True").build();
        assert!(has_disruption_target(&targeted));
    }
}
