//! A pod as the watch delivers it ([`WatchedPod`]) and as the cache keeps it ([`CachedPod`]).
//!
//! `k8s_openapi`'s `Pod` is over 2 KiB before a single string is allocated (every field of the
//! spec and status is inline), so 300 000 of them cost the better part of a gigabyte even when
//! stripped. The cache keeps only what decisions read, and pods share one copy of each distinct
//! toleration list (admission gives almost every pod the same two) and of the short strings
//! many pods repeat (namespace, node name, phase, condition statuses), through the interner of
//! the cache that holds them. Decisions read it through [`CachedPod::facts`], as they read a
//! live pod.

use crate::logic::conditions::ConditionStatus;
use crate::logic::pod::{PodFacts, key_of};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, PodCondition, PodSpec, PodStatus, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use std::borrow::Cow;
use std::sync::Arc;

/// A pod condition the cache keeps (Ready, PodScheduled): status and last transition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Condition {
    pub(crate) status: Arc<str>,
    pub(crate) last_transition: Option<Timestamp>,
}

/// A pod UID. The API server writes UUIDs in their canonical text (36 characters, lower-case
/// hex): kept as their 16 bytes, which saves ~60 bytes a pod (300 000 pods at 10k nodes) over a
/// heap string. Anything else is kept as it came.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Uid {
    Uuid([u8; 16]),
    Text(Box<str>),
}

/// Where the dashes of a canonical UUID are.
const UUID_DASHES: [usize; 4] = [8, 13, 18, 23];

impl Uid {
    /// The UID `text` names; allocates only for one that is not a canonical UUID.
    pub(crate) fn parse(text: &str) -> Uid {
        match Uid::parse_uuid(text) {
            Some(bytes) => Uid::Uuid(bytes),
            None => Uid::Text(text.into()),
        }
    }

    /// The bytes of a canonical UUID text; `None` for anything that would not print back the
    /// same (upper case, braces, other lengths).
    fn parse_uuid(text: &str) -> Option<[u8; 16]> {
        let bytes = text.as_bytes();
        if bytes.len() != 36 || UUID_DASHES.iter().any(|&i| bytes[i] != b'-') {
            return None;
        }
        let mut digits = bytes.iter().filter(|&&b| b != b'-');
        let mut out = [0u8; 16];
        for byte in &mut out {
            let mut value = 0u8;
            for _ in 0..2 {
                let d = match *digits.next()? {
                    c @ b'0'..=b'9' => c - b'0',
                    c @ b'a'..=b'f' => c - b'a' + 10,
                    _ => return None,
                };
                value = value << 4 | d;
            }
            *byte = value;
        }
        digits.next().is_none().then_some(out)
    }

    fn text(&self) -> String {
        match self {
            Uid::Text(text) => text.to_string(),
            Uid::Uuid(bytes) => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let mut out = String::with_capacity(36);
                for (i, b) in bytes.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        out.push('-');
                    }
                    out.push(HEX[usize::from(b >> 4)] as char);
                    out.push(HEX[usize::from(b & 0xf)] as char);
                }
                out
            }
        }
    }
}

/// The fields of a pod that decisions read.
#[derive(Clone, Debug, PartialEq)]
pub struct CachedPod {
    pub(crate) namespace: Option<Arc<str>>,
    pub(crate) name: Box<str>,
    pub(crate) uid: Option<Uid>,
    /// The resourceVersion, which guards the writes decided on this copy; 0 when it is not a
    /// decimal number (kube-apiserver's always are), and then a write reads the pod first.
    pub(crate) version: u64,
    pub(crate) created: Option<Timestamp>,
    pub(crate) deleting: Option<Timestamp>,
    pub(crate) node_name: Option<Arc<str>>,
    pub(crate) tolerations: Option<Arc<[Toleration]>>,
    pub(crate) phase: Option<Arc<str>>,
    pub(crate) ready: Option<Condition>,
    pub(crate) scheduled: Option<Condition>,
}

/// A resourceVersion as the cache keeps it (`CachedPod::version`).
pub(crate) fn version_of(text: Option<&str>) -> u64 {
    text.and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn pod_condition(type_: &str, c: &Condition) -> PodCondition {
    PodCondition {
        type_: type_.to_string(),
        status: c.status.to_string(),
        last_transition_time: c.last_transition.map(Time),
        ..Default::default()
    }
}

impl CachedPod {
    /// The Kubernetes shape of what is kept (everything else left empty): what the writer
    /// decides a pod's write on, and what the tests compare a decoded pod with.
    pub fn to_pod(&self) -> Pod {
        let mut conditions = Vec::new();
        if let Some(c) = &self.ready {
            conditions.push(pod_condition("Ready", c));
        }
        if let Some(c) = &self.scheduled {
            conditions.push(pod_condition("PodScheduled", c));
        }
        let status = (self.phase.is_some() || !conditions.is_empty()).then(|| PodStatus {
            phase: self.phase.as_deref().map(str::to_string),
            conditions: (!conditions.is_empty()).then_some(conditions),
            ..Default::default()
        });
        Pod {
            metadata: ObjectMeta {
                namespace: self.namespace.as_deref().map(str::to_string),
                name: Some(self.name.to_string()),
                uid: self.uid(),
                resource_version: (self.version != 0).then(|| self.version.to_string()),
                creation_timestamp: self.created.map(Time),
                deletion_timestamp: self.deleting.map(Time),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: self.node_name.as_deref().map(str::to_string),
                tolerations: self.tolerations.as_deref().map(<[Toleration]>::to_vec),
                ..Default::default()
            }),
            status,
        }
    }

    /// `namespace/name`, the key of the pod cache.
    pub fn key(&self) -> String {
        key_of(self.namespace.as_deref(), &self.name)
    }

    /// What decisions read of the pod, borrowed from this copy.
    pub fn facts(&self) -> PodFacts<'_> {
        PodFacts {
            namespace: self.namespace(),
            name: &self.name,
            uid: self.uid().map(Cow::Owned),
            node: self.node(),
            tolerations: self.tolerations.as_deref().unwrap_or_default(),
            created: self.created,
            deleting: self.deleting,
            scheduled_at: self.scheduled.as_ref().and_then(|c| c.last_transition),
            ready: self.ready.as_ref().map(|c| ConditionStatus::of(&c.status)),
        }
    }

    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or("default")
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn uid(&self) -> Option<String> {
        self.uid.as_ref().map(Uid::text)
    }

    /// The node the pod is bound to, if any.
    pub fn node(&self) -> Option<&str> {
        self.node_name.as_deref().filter(|n| !n.is_empty())
    }

    /// Whether a change from `self` to `new` can change the pod's eviction schedule: another
    /// node, other tolerations, a deletion begun, or another pod of the same name.
    pub fn schedule_differs(&self, new: &CachedPod) -> bool {
        self.node() != new.node()
            || self.tolerations != new.tolerations
            || self.deleting != new.deleting
            || self.uid != new.uid
    }
}

/// An owned string of a watched pod. The values most pods repeat are borrowed statics (see
/// [`text`]), so that decoding them allocates nothing before the cache interns them.
pub type Text = Cow<'static, str>;

/// The strings that recur across almost every pod of a cluster, whatever its workloads.
const COMMON: [&str; 15] = [
    "default",
    "True",
    "False",
    "Unknown",
    "Pending",
    "Running",
    "Succeeded",
    "Failed",
    "Exists",
    "Equal",
    "NoExecute",
    "NoSchedule",
    "PreferNoSchedule",
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/unreachable",
];

/// `s` as a [`Text`]: a common value borrowed, anything else copied.
pub fn text(s: &str) -> Text {
    match COMMON.iter().find(|c| **c == s) {
        Some(common) => Cow::Borrowed(common),
        None => Cow::Owned(s.to_owned()),
    }
}

/// A pod condition as watched: status and last transition.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchedCondition {
    pub(crate) status: Text,
    pub(crate) last_transition: Option<Timestamp>,
}

/// A toleration as watched, before its list is looked up in the cache's interner.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WatchedToleration {
    pub(crate) key: Option<Text>,
    pub(crate) operator: Option<Text>,
    pub(crate) value: Option<Text>,
    pub(crate) effect: Option<Text>,
    pub(crate) seconds: Option<i64>,
}

impl WatchedToleration {
    pub(crate) fn matches(&self, t: &Toleration) -> bool {
        self.key.as_deref() == t.key.as_deref()
            && self.operator.as_deref() == t.operator.as_deref()
            && self.value.as_deref() == t.value.as_deref()
            && self.effect.as_deref() == t.effect.as_deref()
            && self.seconds == t.toleration_seconds
    }

    pub(crate) fn to_toleration(&self) -> Toleration {
        let string = |s: &Option<Text>| s.as_deref().map(str::to_string);
        Toleration {
            key: string(&self.key),
            operator: string(&self.operator),
            value: string(&self.value),
            effect: string(&self.effect),
            toleration_seconds: self.seconds,
        }
    }
}

impl From<Toleration> for WatchedToleration {
    fn from(t: Toleration) -> Self {
        WatchedToleration {
            key: t.key.map(Cow::Owned),
            operator: t.operator.map(Cow::Owned),
            value: t.value.map(Cow::Owned),
            effect: t.effect.map(Cow::Owned),
            seconds: t.toleration_seconds,
        }
    }
}

/// The fields of a pod that decisions read, owned and not yet shared: what the pod watch
/// delivers. The cache that keeps it turns it into a [`CachedPod`] with its own interner, so
/// that no table outlives or is shared beyond the cache (see `Interner::intern`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WatchedPod {
    pub(crate) namespace: Option<Text>,
    pub(crate) name: Box<str>,
    pub(crate) uid: Option<Uid>,
    /// See `CachedPod::version`.
    pub(crate) version: u64,
    pub(crate) created: Option<Timestamp>,
    pub(crate) deleting: Option<Timestamp>,
    pub(crate) node_name: Option<Text>,
    pub(crate) tolerations: Option<Vec<WatchedToleration>>,
    pub(crate) phase: Option<Text>,
    pub(crate) ready: Option<WatchedCondition>,
    pub(crate) scheduled: Option<WatchedCondition>,
}

impl WatchedPod {
    /// `namespace/name`, the key of the pod cache.
    pub fn key(&self) -> String {
        key_of(self.namespace.as_deref(), &self.name)
    }
}

impl From<&Pod> for WatchedPod {
    /// A copy of `pod` taken as `From<Pod>` takes it. Only tests and benches start from a
    /// borrowed pod; the pod watch hands its pods over.
    fn from(pod: &Pod) -> Self {
        WatchedPod::from(pod.clone())
    }
}

impl From<Pod> for WatchedPod {
    /// Keeps what decisions read of `pod`, moving its strings. The pod watch of `run` decodes
    /// pods straight into this shape instead (`k8s::pod_digest`); the simulation and tests
    /// come through here.
    fn from(pod: Pod) -> Self {
        let Pod {
            metadata: meta,
            spec,
            status,
        } = pod;
        let (node_name, tolerations) = spec.map_or((None, None), |s| (s.node_name, s.tolerations));
        let (phase, conditions) = status.map_or((None, None), |s| (s.phase, s.conditions));
        let mut conditions = conditions.unwrap_or_default();
        let mut condition = |type_: &str| {
            let i = conditions.iter().position(|c| c.type_ == type_)?;
            let c = conditions.remove(i);
            Some(WatchedCondition {
                status: Cow::Owned(c.status),
                last_transition: c.last_transition_time.map(|t| t.0),
            })
        };
        let (ready, scheduled) = (condition("Ready"), condition("PodScheduled"));
        WatchedPod {
            namespace: meta.namespace.map(Cow::Owned),
            name: meta.name.unwrap_or_default().into_boxed_str(),
            uid: meta.uid.as_deref().map(Uid::parse),
            version: version_of(meta.resource_version.as_deref()),
            created: meta.creation_timestamp.map(|t| t.0),
            deleting: meta.deletion_timestamp.map(|t| t.0),
            node_name: node_name.map(Cow::Owned),
            tolerations: tolerations.map(|list| list.into_iter().map(Into::into).collect()),
            phase: phase.map(Cow::Owned),
            ready,
            scheduled,
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Interner;
    use std::collections::BTreeMap;

    fn cached(pod: &Pod) -> CachedPod {
        Interner::default().intern(pod.into())
    }

    #[test]
    fn a_canonical_uuid_is_kept_as_bytes_and_prints_back_the_same() {
        let text = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
        let uid = Uid::parse(text);
        assert!(matches!(uid, Uid::Uuid(_)), "{uid:?}");
        assert_eq!(uid.text(), text);
        assert_eq!(
            Uid::parse("00000000-0000-4000-8000-000000000001").text(),
            "00000000-0000-4000-8000-000000000001"
        );
    }

    #[test]
    fn a_uid_that_is_not_a_canonical_uuid_is_kept_as_it_came() {
        for text in [
            "u",
            "",
            "0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D",
            "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4",
            "0a1b2c3d04e5f-4a6b-8c7d-9e0f1a2b3c4d",
            "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4g",
            "{a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d}",
        ] {
            let uid = Uid::parse(text);
            assert!(matches!(uid, Uid::Text(_)), "{text:?}: {uid:?}");
            assert_eq!(uid.text(), text);
        }
    }

    #[test]
    fn pods_with_different_uuids_are_told_apart() {
        let a = Uid::parse("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d");
        let b = Uid::parse("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4e");
        assert_ne!(a, b);
    }

    fn toleration(key: &str, seconds: Option<i64>) -> Toleration {
        Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            toleration_seconds: seconds,
            ..Default::default()
        }
    }

    fn full_pod() -> Pod {
        let at = |s: &str| Time(s.parse().unwrap());
        Pod {
            metadata: ObjectMeta {
                namespace: Some("ns".into()),
                name: Some("p".into()),
                uid: Some("u".into()),
                resource_version: Some("7".into()),
                creation_timestamp: Some(at("2025-01-01T00:00:00Z")),
                deletion_timestamp: Some(at("2025-01-01T00:10:00Z")),
                annotations: Some(BTreeMap::from([("a".into(), "b".repeat(100))])),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some("n".into()),
                tolerations: Some(vec![toleration("k", Some(30))]),
                service_account_name: Some("sa".into()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some("Running".into()),
                conditions: Some(vec![
                    PodCondition {
                        type_: "Initialized".into(),
                        status: "True".into(),
                        ..Default::default()
                    },
                    PodCondition {
                        type_: "PodScheduled".into(),
                        status: "True".into(),
                        last_transition_time: Some(at("2025-01-01T00:01:00Z")),
                        reason: Some("r".into()),
                        ..Default::default()
                    },
                    PodCondition {
                        type_: "Ready".into(),
                        status: "False".into(),
                        ..Default::default()
                    },
                ]),
                host_ip: Some("10.0.0.1".into()),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn a_pod_with_a_uuid_keeps_it_through_the_cache() {
        let mut pod = full_pod();
        let uid = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
        pod.metadata.uid = Some(uid.into());
        let cached = cached(&pod);
        assert_eq!(cached.uid().as_deref(), Some(uid));
        assert_eq!(cached.to_pod().metadata.uid.as_deref(), Some(uid));
    }

    #[test]
    fn a_resource_version_that_is_not_a_number_is_not_kept() {
        let mut pod = full_pod();
        pod.metadata.resource_version = Some("abc".into());
        assert_eq!(cached(&pod).to_pod().metadata.resource_version, None);
    }

    #[test]
    fn the_rebuilt_pod_has_every_field_decisions_read_and_nothing_else() {
        let pod = full_pod();
        let rebuilt = cached(&pod).to_pod();
        let meta = &rebuilt.metadata;
        assert_eq!(meta.namespace.as_deref(), Some("ns"));
        assert_eq!(meta.name.as_deref(), Some("p"));
        assert_eq!(meta.uid.as_deref(), Some("u"));
        assert_eq!(meta.creation_timestamp, pod.metadata.creation_timestamp);
        assert_eq!(meta.deletion_timestamp, pod.metadata.deletion_timestamp);
        assert_eq!(meta.resource_version.as_deref(), Some("7"));
        assert!(meta.annotations.is_none());
        let spec = rebuilt.spec.as_ref().unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("n"));
        assert_eq!(spec.tolerations, Some(vec![toleration("k", Some(30))]));
        assert!(spec.service_account_name.is_none());
        let status = rebuilt.status.as_ref().unwrap();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        let conditions = status.conditions.as_ref().unwrap();
        assert_eq!(conditions.len(), 2);
        assert_eq!(
            (conditions[0].type_.as_str(), conditions[0].status.as_str()),
            ("Ready", "False")
        );
        assert_eq!(conditions[1].type_, "PodScheduled");
        assert_eq!(
            conditions[1].last_transition_time,
            Some(Time("2025-01-01T00:01:00Z".parse().unwrap()))
        );
        assert!(status.host_ip.is_none());
    }

    #[test]
    fn an_empty_pod_stays_empty_where_decisions_look() {
        let rebuilt = cached(&Pod::default()).to_pod();
        assert!(rebuilt.status.is_none());
        let spec = rebuilt.spec.unwrap();
        assert!(spec.node_name.is_none() && spec.tolerations.is_none());
        let cached = cached(&Pod::default());
        assert_eq!(cached.key(), "default/");
        assert_eq!(cached.node(), None);
    }

    #[test]
    fn pods_interned_by_one_table_share_one_copy_of_their_strings_and_tolerations() {
        let mut table = Interner::default();
        let a = table.intern(WatchedPod::from(full_pod()));
        let b = table.intern(WatchedPod::from(full_pod()));
        assert!(Arc::ptr_eq(
            a.tolerations.as_ref().unwrap(),
            b.tolerations.as_ref().unwrap()
        ));
        assert!(Arc::ptr_eq(
            a.namespace.as_ref().unwrap(),
            b.namespace.as_ref().unwrap()
        ));
        assert!(Arc::ptr_eq(
            &a.ready.as_ref().unwrap().status,
            &b.ready.as_ref().unwrap().status
        ));
    }

    #[test]
    fn common_strings_are_borrowed_and_others_copied() {
        assert!(matches!(text("True"), Cow::Borrowed("True")));
        assert!(matches!(text("n-1"), Cow::Owned(s) if s == "n-1"));
    }

    #[test]
    fn only_schedule_relevant_changes_differ() {
        let a = cached(&full_pod());
        let mut pod = full_pod();
        pod.status.as_mut().unwrap().phase = Some("Succeeded".into());
        assert!(!a.schedule_differs(&cached(&pod)));
        pod.spec.as_mut().unwrap().node_name = Some("m".into());
        assert!(a.schedule_differs(&cached(&pod)));
        let mut pod = full_pod();
        pod.metadata.uid = Some("v".into());
        assert!(a.schedule_differs(&cached(&pod)));
        let mut pod = full_pod();
        pod.spec.as_mut().unwrap().tolerations = None;
        assert!(a.schedule_differs(&cached(&pod)));
    }
}
