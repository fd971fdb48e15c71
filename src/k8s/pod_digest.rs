//! Pods as the pod watch decodes them: only the fields the controller's cache keeps.
//!
//! Decoding a list page into `k8s_openapi`'s `Pod` allocates every container, volume, env var
//! and managed field, then the cache throws them away. At 300 000 pods that decoding (and
//! moving 2 KiB structs through the watcher) was most of the first sync's CPU. `PodDigest`
//! names the kept fields; serde skips the rest while parsing. It is the pods resource
//! (`/api/v1/pods`) to kube, so the watcher, list paging and watch protocol are kube's own.

use k8s_openapi::api::core::v1::{Pod, PodCondition, PodSpec, PodStatus, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::{Deserialize, Deserializer};
use std::borrow::Cow;

/// The kept fields of a pod.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct PodDigest {
    #[serde(default, deserialize_with = "meta_digest")]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: Option<SpecDigest>,
    #[serde(default)]
    status: Option<StatusDigest>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetaDigest {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    creation_timestamp: Option<Time>,
    deletion_timestamp: Option<Time>,
}

/// Reads `metadata` as a [`MetaDigest`] (skipping labels, annotations, owner references and
/// managed fields) into the `ObjectMeta` kube needs for resourceVersion bookkeeping.
fn meta_digest<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    let m = MetaDigest::deserialize(d)?;
    Ok(ObjectMeta {
        name: m.name,
        namespace: m.namespace,
        uid: m.uid,
        resource_version: m.resource_version,
        creation_timestamp: m.creation_timestamp,
        deletion_timestamp: m.deletion_timestamp,
        ..Default::default()
    })
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpecDigest {
    node_name: Option<String>,
    tolerations: Option<Vec<Toleration>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct StatusDigest {
    phase: Option<String>,
    conditions: Option<Vec<ConditionDigest>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConditionDigest {
    #[serde(rename = "type")]
    type_: String,
    status: String,
    last_transition_time: Option<Time>,
}

impl PodDigest {
    /// The digest as a `Pod` with only the kept fields set.
    pub fn into_pod(self) -> Pod {
        let spec = self.spec.map(|s| PodSpec {
            node_name: s.node_name,
            tolerations: s.tolerations,
            ..Default::default()
        });
        let status = self.status.map(|s| PodStatus {
            phase: s.phase,
            conditions: s.conditions.map(|cs| {
                cs.into_iter()
                    .map(|c| PodCondition {
                        type_: c.type_,
                        status: c.status,
                        last_transition_time: c.last_transition_time,
                        ..Default::default()
                    })
                    .collect()
            }),
            ..Default::default()
        });
        Pod {
            metadata: self.metadata,
            spec,
            status,
        }
    }
}

impl kube::Resource for PodDigest {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("Pod")
    }
    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("v1")
    }
    fn api_version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("v1")
    }
    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("pods")
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logic::cached_pod::CachedPod;
    use serde_json::json;

    fn full_pod_json() -> serde_json::Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": "web-0", "namespace": "shop", "uid": "u-1", "resourceVersion": "42",
                "creationTimestamp": "2025-01-01T00:00:00Z",
                "deletionTimestamp": "2025-01-01T00:05:00Z",
                "labels": {"app": "web"},
                "managedFields": [{"manager": "kubelet", "operation": "Update"}]
            },
            "spec": {
                "nodeName": "n-1",
                "containers": [{"name": "c", "image": "nginx", "env": [{"name": "A", "value": "b"}]}],
                "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                                 "effect": "NoExecute", "tolerationSeconds": 300}]
            },
            "status": {
                "phase": "Running",
                "hostIP": "10.0.0.1",
                "conditions": [
                    {"type": "PodScheduled", "status": "True",
                     "lastTransitionTime": "2025-01-01T00:00:01Z", "reason": "r"},
                    {"type": "Ready", "status": "True"}
                ],
                "containerStatuses": [{"name": "c", "ready": true, "restartCount": 0,
                                       "image": "nginx", "imageID": "x"}]
            }
        })
    }

    #[test]
    fn a_digest_caches_exactly_what_the_full_pod_caches() {
        let json = full_pod_json();
        let full: Pod = serde_json::from_value(json.clone()).unwrap();
        let digest: PodDigest = serde_json::from_value(json).unwrap();
        assert_eq!(
            CachedPod::from(digest.clone().into_pod()),
            CachedPod::from(&full)
        );
        assert_eq!(digest.metadata.resource_version.as_deref(), Some("42"));
        assert!(digest.metadata.labels.is_none() && digest.metadata.managed_fields.is_none());
    }

    #[test]
    fn a_pod_with_only_a_name_decodes() {
        let digest: PodDigest = serde_json::from_value(json!({"metadata": {"name": "p"}})).unwrap();
        let pod = digest.into_pod();
        assert_eq!(pod.metadata.name.as_deref(), Some("p"));
        assert!(pod.spec.is_none() && pod.status.is_none());
    }

    #[test]
    fn the_digest_is_the_pods_resource_to_kube() {
        use kube::Resource;
        assert_eq!(PodDigest::url_path(&(), None), "/api/v1/pods");
        assert_eq!(
            PodDigest::url_path(&(), Some("ns")),
            "/api/v1/namespaces/ns/pods"
        );
    }
}
