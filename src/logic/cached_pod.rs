//! A pod as the controller's cache keeps it.
//!
//! `k8s_openapi`'s `Pod` is over 2 KiB before a single string is allocated (every field of the
//! spec and status is inline), so 300 000 of them cost the better part of a gigabyte even when
//! stripped. The cache keeps only what decisions read, and pods share one copy of each distinct
//! toleration list (admission gives almost every pod the same two) and of the short strings
//! many pods repeat (namespace, node name, phase, condition statuses). Decisions read it
//! through [`CachedPod::facts`], as they read a live pod.

use super::conditions::ConditionStatus;
use super::pod::{PodFacts, key_of};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, Toleration};
#[cfg(test)]
use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};
#[cfg(test)]
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};

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
    pub(crate) created: Option<Timestamp>,
    pub(crate) deleting: Option<Timestamp>,
    pub(crate) node_name: Option<Arc<str>>,
    pub(crate) tolerations: Option<Arc<[Toleration]>>,
    pub(crate) phase: Option<Arc<str>>,
    pub(crate) ready: Option<Condition>,
    pub(crate) scheduled: Option<Condition>,
}

#[cfg(test)]
fn pod_condition(type_: &str, c: &Condition) -> PodCondition {
    PodCondition {
        type_: type_.to_string(),
        status: c.status.to_string(),
        last_transition_time: c.last_transition.map(Time),
        ..Default::default()
    }
}

impl CachedPod {
    /// The Kubernetes shape of what is kept (everything else left empty): what the tests
    /// compare a decoded pod with.
    #[cfg(test)]
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

impl From<&Pod> for CachedPod {
    /// A copy of `pod` taken as `From<Pod>` takes it. Only tests and benches start from a
    /// borrowed pod; the pod watch hands its pods over.
    fn from(pod: &Pod) -> Self {
        CachedPod::from(pod.clone())
    }
}

impl From<Pod> for CachedPod {
    /// Keeps what decisions read of `pod`, sharing its strings and toleration list through
    /// [`shared`]. The pod watch of `run` decodes pods straight into this shape instead
    /// (`k8s::pod_digest`); the simulation and tests come through here.
    fn from(pod: Pod) -> Self {
        let Pod {
            metadata: meta,
            spec,
            status,
        } = pod;
        let (node_name, tolerations) = spec.map_or((None, None), |s| (s.node_name, s.tolerations));
        let (phase, conditions) = status.map_or((None, None), |s| (s.phase, s.conditions));
        let conditions = conditions.unwrap_or_default();
        let mut shared = shared();
        let mut condition = |type_: &str| {
            conditions
                .iter()
                .find(|c| c.type_ == type_)
                .map(|c| Condition {
                    status: shared.string(&c.status),
                    last_transition: c.last_transition_time.as_ref().map(|t| t.0),
                })
        };
        let (ready, scheduled) = (condition("Ready"), condition("PodScheduled"));
        let list = tolerations.map(|list| {
            let refs: Vec<TolerationRef> = list.iter().map(TolerationRef::from).collect();
            shared.tolerations(&refs)
        });
        CachedPod {
            namespace: meta.namespace.as_deref().map(|s| shared.string(s)),
            name: meta.name.unwrap_or_default().into_boxed_str(),
            uid: meta.uid.as_deref().map(Uid::parse),
            created: meta.creation_timestamp.map(|t| t.0),
            deleting: meta.deletion_timestamp.map(|t| t.0),
            node_name: node_name.as_deref().map(|s| shared.string(s)),
            tolerations: list,
            phase: phase.as_deref().map(|s| shared.string(s)),
            ready,
            scheduled,
        }
    }
}

/// A toleration's fields, borrowed: what a shared list is looked up by, so that a decoded pod
/// whose list is already shared allocates nothing for it.
#[derive(Clone, Copy, Debug, Default)]
pub struct TolerationRef<'a> {
    pub key: Option<&'a str>,
    pub operator: Option<&'a str>,
    pub value: Option<&'a str>,
    pub effect: Option<&'a str>,
    pub seconds: Option<i64>,
}

impl<'a> From<&'a Toleration> for TolerationRef<'a> {
    fn from(t: &'a Toleration) -> Self {
        TolerationRef {
            key: t.key.as_deref(),
            operator: t.operator.as_deref(),
            value: t.value.as_deref(),
            effect: t.effect.as_deref(),
            seconds: t.toleration_seconds,
        }
    }
}

impl TolerationRef<'_> {
    fn matches(&self, t: &Toleration) -> bool {
        self.key == t.key.as_deref()
            && self.operator == t.operator.as_deref()
            && self.value == t.value.as_deref()
            && self.effect == t.effect.as_deref()
            && self.seconds == t.toleration_seconds
    }

    fn to_toleration(self) -> Toleration {
        Toleration {
            key: self.key.map(str::to_string),
            operator: self.operator.map(str::to_string),
            value: self.value.map(str::to_string),
            effect: self.effect.map(str::to_string),
            toleration_seconds: self.seconds,
        }
    }
}

/// One shared copy of each distinct toleration list and of each repeated string.
#[derive(Debug, Default)]
pub struct Shared {
    /// Toleration lists by a hash of their content; equal hashes are told apart by comparing.
    lists: BTreeMap<u64, Vec<Arc<[Toleration]>>>,
    /// Only looked up, never iterated for a decision, so its order does not matter.
    strings: HashSet<Arc<str>>,
}

/// A hash of a toleration list's content (`Toleration` itself does not implement `Hash`).
fn content_hash(list: &[TolerationRef]) -> u64 {
    let mut h = DefaultHasher::new();
    for t in list {
        (t.key, t.operator, t.value, t.effect, t.seconds).hash(&mut h);
    }
    h.finish()
}

/// The table every cached pod shares its strings and toleration lists through. It is one for
/// the process because pods are made where no state can be passed in: inside `serde`'s
/// decoding of a list page, which kube drives (`k8s::pod_digest`). Sharing changes no value,
/// only how many copies of it exist, so decisions stay functions of their inputs.
static SHARED: LazyLock<Mutex<Shared>> = LazyLock::new(Mutex::default);

/// The process's shared table (see [`SHARED`]); a panic elsewhere while holding it cannot
/// leave it inconsistent (each call is a single insert or look-up), so poisoning is ignored.
pub fn shared() -> MutexGuard<'static, Shared> {
    SHARED.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// The shared copy of `s` (added if new).
    pub fn string(&mut self, s: &str) -> Arc<str> {
        if let Some(shared) = self.strings.get(s) {
            return Arc::clone(shared);
        }
        let new: Arc<str> = s.into();
        self.strings.insert(Arc::clone(&new));
        new
    }

    /// The shared copy of the toleration list `list` describes (added if new).
    pub fn tolerations(&mut self, list: &[TolerationRef]) -> Arc<[Toleration]> {
        let bucket = self.lists.entry(content_hash(list)).or_default();
        let same = |shared: &&Arc<[Toleration]>| {
            shared.len() == list.len() && list.iter().zip(shared.iter()).all(|(r, t)| r.matches(t))
        };
        if let Some(shared) = bucket.iter().find(same) {
            return Arc::clone(shared);
        }
        let new: Arc<[Toleration]> = list.iter().map(|t| t.to_toleration()).collect();
        bucket.push(Arc::clone(&new));
        new
    }

    /// Forgets what no pod uses any more (its only holder is this table).
    pub fn prune(&mut self) {
        self.lists.retain(|_, bucket| {
            bucket.retain(|list| Arc::strong_count(list) > 1);
            !bucket.is_empty()
        });
        self.strings.retain(|s| Arc::strong_count(s) > 1);
    }

    /// How many distinct toleration lists and strings are kept.
    pub fn len(&self) -> usize {
        self.lists.values().map(Vec::len).sum::<usize>() + self.strings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let cached = CachedPod::from(pod);
        assert_eq!(cached.uid().as_deref(), Some(uid));
        assert_eq!(cached.to_pod().metadata.uid.as_deref(), Some(uid));
    }

    #[test]
    fn the_rebuilt_pod_has_every_field_decisions_read_and_nothing_else() {
        let pod = full_pod();
        let rebuilt = CachedPod::from(&pod).to_pod();
        let meta = &rebuilt.metadata;
        assert_eq!(meta.namespace.as_deref(), Some("ns"));
        assert_eq!(meta.name.as_deref(), Some("p"));
        assert_eq!(meta.uid.as_deref(), Some("u"));
        assert_eq!(meta.creation_timestamp, pod.metadata.creation_timestamp);
        assert_eq!(meta.deletion_timestamp, pod.metadata.deletion_timestamp);
        assert!(meta.annotations.is_none() && meta.resource_version.is_none());
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
        let rebuilt = CachedPod::from(&Pod::default()).to_pod();
        assert!(rebuilt.status.is_none());
        let spec = rebuilt.spec.unwrap();
        assert!(spec.node_name.is_none() && spec.tolerations.is_none());
        let cached = CachedPod::from(&Pod::default());
        assert_eq!(cached.key(), "default/");
        assert_eq!(cached.node(), None);
    }

    #[test]
    fn equal_toleration_lists_and_strings_are_shared_and_unused_ones_pruned() {
        let mut table = Shared::default();
        let list = [toleration("k", Some(30))];
        let refs: Vec<TolerationRef> = list.iter().map(TolerationRef::from).collect();
        let (a, b) = (table.tolerations(&refs), table.tolerations(&refs));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(&a[..], &list[..]);
        let (x, y) = (table.string("n"), table.string("n"));
        assert!(Arc::ptr_eq(&x, &y));
        let other = [toleration("k", Some(31))];
        let c = table.tolerations(&other.iter().map(TolerationRef::from).collect::<Vec<_>>());
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(table.len(), 3);
        drop(c);
        table.prune();
        assert_eq!(table.len(), 2);
        drop((a, b, x, y));
        table.prune();
        assert!(table.is_empty());
    }

    #[test]
    fn pods_converted_anywhere_share_one_copy_of_their_strings_and_tolerations() {
        let (a, b) = (CachedPod::from(&full_pod()), CachedPod::from(&full_pod()));
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
    fn only_schedule_relevant_changes_differ() {
        let a = CachedPod::from(&full_pod());
        let mut pod = full_pod();
        pod.status.as_mut().unwrap().phase = Some("Succeeded".into());
        assert!(!a.schedule_differs(&CachedPod::from(&pod)));
        pod.spec.as_mut().unwrap().node_name = Some("m".into());
        assert!(a.schedule_differs(&CachedPod::from(&pod)));
        let mut pod = full_pod();
        pod.metadata.uid = Some("v".into());
        assert!(a.schedule_differs(&CachedPod::from(&pod)));
        let mut pod = full_pod();
        pod.spec.as_mut().unwrap().tolerations = None;
        assert!(a.schedule_differs(&CachedPod::from(&pod)));
    }
}
