//! What the decision core reads of a pod.
//!
//! The core never needs a whole `Pod`: [`PodFacts`] borrows the few fields decisions read from
//! wherever the pod is kept, the cache's compact copy or a pod just read from the API, so that
//! the taint manager's bookkeeping (`pod_seen`) and its decisions (`reconcile`, `verdict`) take
//! the same type and nothing is rebuilt to ask them.

use super::conditions::ConditionStatus;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, PodCondition, Toleration};
use std::borrow::Cow;

/// The fields of a pod that decisions read.
#[derive(Clone, Debug, PartialEq)]
pub struct PodFacts<'a> {
    /// `default` when the pod names none.
    pub namespace: &'a str,
    pub name: &'a str,
    /// Borrowed from a live pod; the cache keeps UUIDs as bytes and writes them out here.
    pub uid: Option<Cow<'a, str>>,
    /// The node the pod is bound to (`None` when `spec.nodeName` is unset or empty).
    pub node: Option<&'a str>,
    pub tolerations: &'a [Toleration],
    pub created: Option<Timestamp>,
    /// When its deletion began.
    pub deleting: Option<Timestamp>,
    /// The PodScheduled condition's lastTransitionTime: when it was bound, as the API tells.
    pub scheduled_at: Option<Timestamp>,
    /// The Ready condition's status (`None`: no Ready condition).
    pub ready: Option<ConditionStatus>,
}

impl PodFacts<'_> {
    /// `namespace/name`, the key of the pod cache.
    pub fn key(&self) -> String {
        key_of(Some(self.namespace), self.name)
    }

    /// The UID, empty when the pod has none.
    pub fn uid_or_empty(&self) -> &str {
        self.uid.as_deref().unwrap_or_default()
    }
}

/// `namespace/name`, the namespace defaulting to `default`: the key of the pod cache.
pub fn key_of(namespace: Option<&str>, name: &str) -> String {
    format!("{}/{}", namespace.unwrap_or("default"), name)
}

fn condition<'a>(conditions: &'a [PodCondition], type_: &str) -> Option<&'a PodCondition> {
    conditions.iter().find(|c| c.type_ == type_)
}

impl<'a> From<&'a Pod> for PodFacts<'a> {
    fn from(pod: &'a Pod) -> Self {
        let meta = &pod.metadata;
        let spec = pod.spec.as_ref();
        let conditions = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_deref())
            .unwrap_or_default();
        PodFacts {
            namespace: meta.namespace.as_deref().unwrap_or("default"),
            name: meta.name.as_deref().unwrap_or(""),
            uid: meta.uid.as_deref().map(Cow::Borrowed),
            node: spec
                .and_then(|s| s.node_name.as_deref())
                .filter(|n| !n.is_empty()),
            tolerations: spec
                .and_then(|s| s.tolerations.as_deref())
                .unwrap_or_default(),
            created: meta.creation_timestamp.as_ref().map(|t| t.0),
            deleting: meta.deletion_timestamp.as_ref().map(|t| t.0),
            scheduled_at: condition(conditions, "PodScheduled")
                .and_then(|c| c.last_transition_time.as_ref())
                .map(|t| t.0),
            ready: condition(conditions, "Ready").map(|c| ConditionStatus::of(&c.status)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{at, pod};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    #[test]
    fn a_live_pod_gives_the_fields_decisions_read() {
        let mut p = pod("p", "n").tolerating("k", Some(30)).build();
        p.metadata.namespace = None;
        p.metadata.deletion_timestamp = Some(Time(at(5)));
        let facts = PodFacts::from(&p);
        assert_eq!(facts.key(), "default/p");
        assert_eq!(facts.uid_or_empty(), "uid-p");
        assert_eq!(facts.node, Some("n"));
        assert_eq!(facts.tolerations.len(), 1);
        assert_eq!(facts.created, Some(at(-600)));
        assert_eq!(facts.deleting, Some(at(5)));
        assert_eq!(facts.scheduled_at, None);
        assert_eq!(facts.ready, Some(ConditionStatus::True));
    }

    #[test]
    fn an_empty_node_name_is_no_binding() {
        let mut p = pod("p", "").build();
        assert_eq!(PodFacts::from(&p).node, None);
        p.spec = None;
        assert_eq!(PodFacts::from(&p).node, None);
        assert!(PodFacts::from(&p).tolerations.is_empty());
    }
}
