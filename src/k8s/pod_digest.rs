//! Pods as the pod watch decodes them: straight into the cache's shape.
//!
//! Decoding a list page into `k8s_openapi`'s `Pod` allocates every container, volume, env var
//! and managed field, then the cache throws them away. At 300 000 pods that decoding was most
//! of the first sync's CPU, and after it, allocating and freeing the kept strings was most of
//! the rest. So `PodDigest` reads the kept fields into a [`WatchedPod`] while `serde` parses
//! them: the values most pods repeat (phase, condition statuses, toleration operators and
//! effects) are borrowed statics (`cache::Text`), canonical UUIDs become their 16 bytes,
//! conditions other than Ready and PodScheduled are parsed and dropped without allocating, and
//! everything else is skipped. The pod cache interns the rest when it keeps the pod: decoding
//! runs inside kube, where no table of the cache's can be reached. It is the pods
//! resource (`/api/v1/pods`) to kube, so the watcher, list paging and watch protocol are
//! kube's own.

use crate::cache::{Text, Uid, WatchedCondition, WatchedPod, WatchedToleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::Deserialize;
use serde::de::{Deserializer, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// A pod as the cache keeps it, with the resourceVersion kube's watcher tracks.
#[derive(Clone, Debug, Deserialize)]
#[serde(from = "WirePod")]
pub struct PodDigest {
    /// Only `resourceVersion` is set: it is all kube reads of a watched object.
    metadata: ObjectMeta,
    pod: WatchedPod,
}

impl PodDigest {
    pub fn into_watched(self) -> WatchedPod {
        self.pod
    }
}

/// The kept fields of a pod as they come over the wire. Missing or null fields are taken as
/// k8s-openapi's `Pod` takes them (empty), so that a pod decodes whenever it would decode in
/// full: one pod that failed would fail its whole list page.
#[derive(Deserialize)]
struct WirePod {
    metadata: Option<WireMeta>,
    spec: Option<WireSpec>,
    status: Option<WireStatus>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireMeta {
    name: Option<Box<str>>,
    namespace: Option<WireText>,
    uid: Option<WireUid>,
    resource_version: Option<String>,
    creation_timestamp: Option<Time>,
    deletion_timestamp: Option<Time>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireSpec {
    node_name: Option<WireText>,
    tolerations: Option<Vec<WireToleration>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireToleration {
    key: Option<WireText>,
    operator: Option<WireText>,
    value: Option<WireText>,
    effect: Option<WireText>,
    toleration_seconds: Option<i64>,
}

#[derive(Deserialize)]
struct WireStatus {
    phase: Option<WireText>,
    #[serde(default)]
    conditions: Option<KeptConditions>,
}

/// Reads a JSON string through `f` from the parsed text, so that what `f` makes of it is the
/// only allocation (if any).
fn from_text<'de, D: Deserializer<'de>, T>(d: D, f: fn(&str) -> T) -> Result<T, D::Error> {
    struct Text<T>(fn(&str) -> T);
    impl<T> Visitor<'_> for Text<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
            Ok((self.0)(v))
        }
    }
    d.deserialize_str(Text(f))
}

/// A string read from the parsed text as a [`Text`] (a common value allocates nothing).
struct WireText(Text);

impl<'de> Deserialize<'de> for WireText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_text(d, |v| WireText(crate::cache::text(v)))
    }
}

/// A UID read as [`Uid`] from the parsed text (a canonical UUID allocates nothing).
struct WireUid(Uid);

impl<'de> Deserialize<'de> for WireUid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_text(d, |v| WireUid(Uid::parse(v)))
    }
}

/// The condition types the cache keeps; the others are parsed and dropped.
enum ConditionType {
    Ready,
    PodScheduled,
    Other,
}

impl<'de> Deserialize<'de> for ConditionType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_text(d, |v| match v {
            "Ready" => ConditionType::Ready,
            "PodScheduled" => ConditionType::PodScheduled,
            _ => ConditionType::Other,
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireCondition {
    /// Missing or null is `""` to k8s-openapi: a type the cache does not keep.
    #[serde(rename = "type")]
    type_: Option<ConditionType>,
    status: Option<WireText>,
    last_transition_time: Option<Time>,
}

impl WireCondition {
    fn kept(self) -> WatchedCondition {
        WatchedCondition {
            status: self.status.map_or(Text::Borrowed(""), |s| s.0),
            last_transition: self.last_transition_time.map(|t| t.0),
        }
    }
}

/// The first Ready and PodScheduled conditions of a pod's list (as `WatchedPod::from` keeps
/// them), read without collecting the list.
#[derive(Default)]
struct KeptConditions {
    ready: Option<WatchedCondition>,
    scheduled: Option<WatchedCondition>,
}

impl<'de> Deserialize<'de> for KeptConditions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeptConditions;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of pod conditions")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeptConditions, A::Error> {
                let mut kept = KeptConditions::default();
                while let Some(c) = seq.next_element::<WireCondition>()? {
                    let slot = match c.type_ {
                        Some(ConditionType::Ready) => &mut kept.ready,
                        Some(ConditionType::PodScheduled) => &mut kept.scheduled,
                        Some(ConditionType::Other) | None => continue,
                    };
                    if slot.is_none() {
                        *slot = Some(c.kept());
                    }
                }
                Ok(kept)
            }
        }
        d.deserialize_seq(V)
    }
}

impl From<WirePod> for PodDigest {
    fn from(wire: WirePod) -> Self {
        let WirePod {
            metadata: meta,
            spec,
            status,
        } = wire;
        let (node_name, tolerations) = spec.map_or((None, None), |s| (s.node_name, s.tolerations));
        let (phase, conditions) = status.map_or((None, None), |s| (s.phase, s.conditions));
        let conditions = conditions.unwrap_or_default();
        let meta = meta.unwrap_or_default();
        let tolerations = tolerations.map(|list| {
            list.into_iter()
                .map(|t| WatchedToleration {
                    key: t.key.map(|s| s.0),
                    operator: t.operator.map(|s| s.0),
                    value: t.value.map(|s| s.0),
                    effect: t.effect.map(|s| s.0),
                    seconds: t.toleration_seconds,
                })
                .collect()
        });
        PodDigest {
            pod: WatchedPod {
                namespace: meta.namespace.map(|s| s.0),
                name: meta.name.unwrap_or_default(),
                uid: meta.uid.map(|u| u.0),
                version: crate::cache::version_of(meta.resource_version.as_deref()),
                created: meta.creation_timestamp.map(|t| t.0),
                deleting: meta.deletion_timestamp.map(|t| t.0),
                node_name: node_name.map(|s| s.0),
                tolerations,
                phase: phase.map(|s| s.0),
                ready: conditions.ready,
                scheduled: conditions.scheduled,
            },
            metadata: ObjectMeta {
                resource_version: meta.resource_version,
                ..Default::default()
            },
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
    use crate::cache::{CachedPod, Interner};
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;
    use std::sync::Arc;

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

    fn watched(json: serde_json::Value) -> WatchedPod {
        serde_json::from_value::<PodDigest>(json)
            .unwrap()
            .into_watched()
    }

    /// As a cache of its own keeps it.
    fn cached(json: serde_json::Value) -> CachedPod {
        Interner::default().intern(watched(json))
    }

    /// A full pod as a cache of its own keeps it.
    fn cached_pod(pod: Pod) -> CachedPod {
        Interner::default().intern(pod.into())
    }

    #[test]
    fn a_digest_caches_exactly_what_the_full_pod_caches() {
        let json = full_pod_json();
        let full: Pod = serde_json::from_value(json.clone()).unwrap();
        let digest: PodDigest = serde_json::from_value(json).unwrap();
        assert_eq!(digest.metadata.resource_version.as_deref(), Some("42"));
        assert!(digest.metadata.labels.is_none() && digest.metadata.name.is_none());
        assert_eq!(
            Interner::default().intern(digest.into_watched()),
            cached_pod(full)
        );
    }

    #[test]
    fn conditions_are_kept_in_any_order_and_the_first_of_a_type_wins() {
        let json = json!({
            "metadata": {"name": "p", "uid": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"},
            "status": {"conditions": [
                {"status": "False", "lastTransitionTime": "2025-01-01T00:00:02Z", "type": "Ready"},
                {"type": "ContainersReady", "status": "False"},
                {"type": "Ready", "status": "True"},
                {"lastTransitionTime": null, "type": "PodScheduled", "status": "True"}
            ]}
        });
        let pod = cached(json.clone());
        assert_eq!(
            pod,
            cached_pod(serde_json::from_value::<Pod>(json).unwrap())
        );
        let status = pod.to_pod().status.unwrap();
        let conditions = status.conditions.unwrap();
        assert_eq!(
            (conditions[0].type_.as_str(), conditions[0].status.as_str()),
            ("Ready", "False")
        );
        assert_eq!(
            conditions[0].last_transition_time,
            Some(Time("2025-01-01T00:00:02Z".parse().unwrap()))
        );
        assert_eq!(conditions[1].type_, "PodScheduled");
        assert_eq!(
            pod.uid().as_deref(),
            Some("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")
        );
    }

    #[test]
    fn decoded_pods_kept_by_one_cache_share_their_node_name_and_toleration_list() {
        let mut table = Interner::default();
        let mut cached = |json| table.intern(watched(json));
        let a = cached(full_pod_json());
        let mut other = full_pod_json();
        other["metadata"]["name"] = json!("web-1");
        let b = cached(other);
        assert!(Arc::ptr_eq(
            a.node_name.as_ref().unwrap(),
            b.node_name.as_ref().unwrap()
        ));
        assert!(Arc::ptr_eq(
            a.tolerations.as_ref().unwrap(),
            b.tolerations.as_ref().unwrap()
        ));
        let mut longer = full_pod_json();
        longer["spec"]["tolerations"][0]["tolerationSeconds"] = json!(301);
        let c = cached(longer);
        assert_ne!(a.tolerations, c.tolerations);
        assert_eq!(
            c.tolerations.unwrap()[0].toleration_seconds,
            Some(301),
            "a list differing in one field is a list of its own"
        );
    }

    #[test]
    fn a_pod_with_only_a_name_decodes() {
        let pod = cached(json!({"metadata": {"name": "p"}, "spec": null, "status": null}));
        assert_eq!(pod.key(), "default/p");
        let rebuilt = pod.to_pod();
        assert!(rebuilt.status.is_none());
        assert!(rebuilt.spec.unwrap().node_name.is_none());
    }

    #[test]
    fn what_the_full_decode_takes_as_empty_the_digest_takes_as_empty_too() {
        for json in [
            json!({"metadata": null, "spec": {"nodeName": "n"}}),
            json!({"metadata": {"name": "p"}, "status": {"conditions": [
                {"status": "True"},
                {"type": null, "status": "True"},
                {"type": "Ready", "status": "False"}
            ]}}),
        ] {
            let full: Pod = serde_json::from_value(json.clone()).unwrap();
            assert_eq!(cached(json), cached_pod(full));
        }
    }

    #[test]
    fn a_field_of_the_wrong_type_is_an_error() {
        let json = json!({"metadata": {"name": "p"}, "spec": {"nodeName": 5}});
        let e = serde_json::from_value::<PodDigest>(json).unwrap_err();
        assert!(e.to_string().contains("expected a string"), "{e}");
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
