//! What the controller keeps of a pod: only the fields its decisions read, so a cache of
//! hundreds of thousands of pods stays small.

use k8s_openapi::api::core::v1::{Pod, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Strips a pod down to name, namespace, UID, resourceVersion, creation and deletion times,
/// node name, tolerations, phase and the Ready/PodScheduled conditions.
pub fn lean_pod(pod: Pod) -> Pod {
    let Pod {
        metadata,
        spec,
        status,
    } = pod;
    let spec = spec.map(|s| PodSpec {
        node_name: s.node_name,
        tolerations: s.tolerations,
        ..Default::default()
    });
    let status = status.map(|s| PodStatus {
        phase: s.phase,
        conditions: s.conditions.map(|cs| {
            cs.into_iter()
                .filter(|c| c.type_ == "Ready" || c.type_ == "PodScheduled")
                .collect()
        }),
        ..Default::default()
    });
    Pod {
        metadata: ObjectMeta {
            name: metadata.name,
            namespace: metadata.namespace,
            uid: metadata.uid,
            resource_version: metadata.resource_version,
            creation_timestamp: metadata.creation_timestamp,
            deletion_timestamp: metadata.deletion_timestamp,
            ..Default::default()
        },
        spec,
        status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodCondition, Toleration};
    use std::collections::BTreeMap;

    #[test]
    fn a_lean_pod_keeps_what_decisions_read_and_drops_the_rest() {
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("ns".into()),
                uid: Some("u".into()),
                annotations: Some(BTreeMap::from([("a".into(), "b".repeat(1000))])),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some("n".into()),
                tolerations: Some(vec![Toleration {
                    key: Some("k".into()),
                    ..Default::default()
                }]),
                containers: vec![Container {
                    name: "c".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(PodStatus {
                conditions: Some(vec![
                    PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        ..Default::default()
                    },
                    PodCondition {
                        type_: "Initialized".into(),
                        status: "True".into(),
                        ..Default::default()
                    },
                ]),
                ..Default::default()
            }),
        };
        let lean = lean_pod(pod);
        assert_eq!(lean.metadata.uid.as_deref(), Some("u"));
        assert!(lean.metadata.annotations.is_none());
        let spec = lean.spec.unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("n"));
        assert_eq!(spec.tolerations.unwrap().len(), 1);
        assert!(spec.containers.is_empty());
        let conds = lean.status.unwrap().conditions.unwrap();
        assert_eq!(conds.len(), 1);
        assert_eq!(conds[0].type_, "Ready");
    }
}
