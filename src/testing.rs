//! Builders of the Kubernetes objects tests start from, shared by every test module.

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    Node, NodeCondition, NodeSpec, NodeStatus, Pod, PodCondition, PodSpec, PodStatus, Taint,
    Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};

/// `2025-01-01T00:00:00Z` plus `secs` seconds: the tests' time zero.
pub fn at(secs: i64) -> Timestamp {
    crate::logic::time::add_secs("2025-01-01T00:00:00Z".parse().unwrap(), secs)
}

/// A node builder: `node("n").ready("Unknown").heartbeat(10).build()`.
pub struct NodeBuilder(Node);

/// A node at resourceVersion 1, Ready=True with no heartbeat time, no taints, no labels.
pub fn node(name: &str) -> NodeBuilder {
    let mut n = Node::default();
    n.metadata.name = Some(name.into());
    n.metadata.resource_version = Some("1".into());
    NodeBuilder(n).ready("True")
}

impl NodeBuilder {
    fn ready_condition(&mut self) -> &mut NodeCondition {
        let conditions = self
            .0
            .status
            .get_or_insert_with(NodeStatus::default)
            .conditions
            .get_or_insert_with(Vec::new);
        if !conditions.iter().any(|c| c.type_ == "Ready") {
            conditions.push(NodeCondition {
                type_: "Ready".into(),
                ..Default::default()
            });
        }
        conditions.iter_mut().find(|c| c.type_ == "Ready").unwrap()
    }

    /// The Ready condition's status.
    pub fn ready(mut self, status: &str) -> Self {
        self.ready_condition().status = status.into();
        self
    }

    /// The Ready condition's `lastHeartbeatTime`, at `at(secs)`.
    pub fn heartbeat(mut self, secs: i64) -> Self {
        self.ready_condition().last_heartbeat_time = Some(Time(at(secs)));
        self
    }

    /// Adds a taint, with `timeAdded` at `at(secs)` when given.
    pub fn taint(mut self, key: &str, effect: &str, added: Option<i64>) -> Self {
        self.0
            .spec
            .get_or_insert_with(NodeSpec::default)
            .taints
            .get_or_insert_with(Vec::new)
            .push(Taint {
                key: key.into(),
                effect: effect.into(),
                time_added: added.map(|s| Time(at(s))),
                value: None,
            });
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.0
            .metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(key.into(), value.into());
        self
    }

    pub fn build(self) -> Node {
        self.0
    }
}

/// A pod builder: `pod("p", "n").tolerating("k", Some(30)).build()`.
pub struct PodBuilder(Pod);

/// A pod `default/{name}` with UID `uid-{name}`, created (and bound) at `at(-600)` to `node`,
/// Ready=True, no tolerations.
pub fn pod(name: &str, node: &str) -> PodBuilder {
    let mut p = Pod::default();
    p.metadata.creation_timestamp = Some(Time(at(-600)));
    p.metadata.name = Some(name.into());
    p.metadata.namespace = Some("default".into());
    p.metadata.uid = Some(format!("uid-{name}"));
    p.metadata.resource_version = Some("1".into());
    p.spec = Some(PodSpec {
        node_name: Some(node.into()),
        ..Default::default()
    });
    p.status = Some(PodStatus {
        conditions: Some(vec![PodCondition {
            type_: "Ready".into(),
            status: "True".into(),
            ..Default::default()
        }]),
        ..Default::default()
    });
    PodBuilder(p)
}

impl PodBuilder {
    /// Tolerates NoExecute taints with `key` (operator Exists) for `seconds`, forever when `None`.
    pub fn tolerating(mut self, key: &str, seconds: Option<i64>) -> Self {
        self.0
            .spec
            .get_or_insert_with(PodSpec::default)
            .tolerations
            .get_or_insert_with(Vec::new)
            .push(Toleration {
                key: Some(key.into()),
                operator: Some("Exists".into()),
                effect: Some("NoExecute".into()),
                toleration_seconds: seconds,
                value: None,
            });
        self
    }

    /// Sets (or adds) the condition of this type.
    pub fn condition(mut self, type_: &str, status: &str) -> Self {
        let conditions = self
            .0
            .status
            .get_or_insert_with(PodStatus::default)
            .conditions
            .get_or_insert_with(Vec::new);
        conditions.retain(|c| c.type_ != type_);
        conditions.push(PodCondition {
            type_: type_.into(),
            status: status.into(),
            ..Default::default()
        });
        self
    }

    /// No status at all.
    pub fn without_status(mut self) -> Self {
        self.0.status = None;
        self
    }

    pub fn build(self) -> Pod {
        self.0
    }
}

/// A node Lease renewed at `at(secs)`.
pub fn lease(name: &str, renew: i64) -> Lease {
    let mut l = Lease::default();
    l.metadata.name = Some(name.into());
    l.spec = Some(LeaseSpec {
        renew_time: Some(MicroTime(at(renew))),
        ..Default::default()
    });
    l
}
