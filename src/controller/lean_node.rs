//! What the controller keeps of a node: only the fields its decisions read (pods are kept as
//! `cache::CachedPod`). A write that starts from such a copy sends only the fields it changes
//! (a patch guarded by the copy's resourceVersion), so nothing dropped here can be lost.

use k8s_openapi::api::core::v1::{Node, NodeSpec, NodeStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Strips a node down to name, UID, resourceVersion, labels, creation and deletion times,
/// taints, `unschedulable` and conditions. A real node's status is mostly its image list,
/// addresses and capacity (often tens of kilobytes), none of which a decision reads.
pub fn lean_node(node: Node) -> Node {
    let Node {
        metadata,
        spec,
        status,
    } = node;
    Node {
        metadata: ObjectMeta {
            name: metadata.name,
            uid: metadata.uid,
            resource_version: metadata.resource_version,
            labels: metadata.labels,
            creation_timestamp: metadata.creation_timestamp,
            deletion_timestamp: metadata.deletion_timestamp,
            ..Default::default()
        },
        spec: spec.map(|s| NodeSpec {
            taints: s.taints,
            unschedulable: s.unschedulable,
            ..Default::default()
        }),
        status: status.map(|s| NodeStatus {
            conditions: s.conditions,
            ..Default::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerImage, NodeCondition, Taint};
    use std::collections::BTreeMap;

    #[test]
    fn a_lean_node_keeps_labels_taints_and_conditions_and_drops_images() {
        let node = Node {
            metadata: ObjectMeta {
                name: Some("n".into()),
                uid: Some("u".into()),
                labels: Some(BTreeMap::from([(
                    "topology.kubernetes.io/zone".into(),
                    "z".into(),
                )])),
                annotations: Some(BTreeMap::from([("a".into(), "b".into())])),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                taints: Some(vec![Taint {
                    key: "k".into(),
                    effect: "NoExecute".into(),
                    ..Default::default()
                }]),
                unschedulable: Some(true),
                provider_id: Some("p".into()),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    ..Default::default()
                }]),
                images: Some(vec![ContainerImage {
                    names: Some(vec!["x".repeat(100)]),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        };
        let lean = lean_node(node);
        assert_eq!(lean.metadata.uid.as_deref(), Some("u"));
        assert_eq!(lean.metadata.labels.unwrap().len(), 1);
        assert!(lean.metadata.annotations.is_none());
        let spec = lean.spec.unwrap();
        assert_eq!(spec.taints.unwrap()[0].key, "k");
        assert_eq!(spec.unschedulable, Some(true));
        assert!(spec.provider_id.is_none());
        let status = lean.status.unwrap();
        assert_eq!(status.conditions.unwrap()[0].status, "True");
        assert!(status.images.is_none());
    }
}
