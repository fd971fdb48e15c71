//! Pods as the simulated API server keeps them.
//!
//! k8s-openapi's `Pod` is over 2 KiB inline before a string is allocated, and a simulated
//! cluster holds hundreds of thousands. The store keeps the fields the simulation's pods have,
//! sharing what many pods repeat (containers, tolerations, conditions, node names), and builds
//! the whole object only when a caller asks for one. A pod with anything else keeps its whole
//! object: nothing is ever lost, only stored differently.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, Pod, PodCondition, PodSpec, PodStatus, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

type Labels = BTreeMap<String, String>;

/// A pod with only the fields the compact form holds.
#[derive(Clone, Debug, PartialEq)]
struct Compact {
    name: Box<str>,
    namespace: Arc<str>,
    uid: Option<Box<str>>,
    resource_version: u64,
    created: Option<Timestamp>,
    labels: Option<Arc<Labels>>,
    owners: Option<Arc<Vec<OwnerReference>>>,
    node_name: Option<Arc<str>>,
    containers: Arc<Vec<Container>>,
    tolerations: Option<Arc<Vec<Toleration>>>,
    phase: Option<Arc<str>>,
    conditions: Option<Arc<Vec<PodCondition>>>,
}

/// A stored pod: compact when it has only the fields the compact form holds, whole otherwise.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredPod(Form);

#[derive(Clone, Debug, PartialEq)]
enum Form {
    Compact(Compact),
    Whole(Box<Pod>),
}

impl StoredPod {
    /// Stores `pod`, sharing what it has in common with pods stored before.
    pub fn new(pod: Pod, shared: &mut Sharing) -> StoredPod {
        match Compact::take(pod, shared) {
            Ok(compact) => StoredPod(Form::Compact(compact)),
            Err(whole) => StoredPod(Form::Whole(whole)),
        }
    }

    /// The pod as the API serves it.
    pub fn to_pod(&self) -> Pod {
        match &self.0 {
            Form::Compact(c) => c.to_pod(),
            Form::Whole(pod) => Pod::clone(pod),
        }
    }

    /// The same pod at another resourceVersion (what a deletion's event carries).
    pub fn at_version(&self, resource_version: u64) -> StoredPod {
        match &self.0 {
            Form::Compact(c) => StoredPod(Form::Compact(Compact {
                resource_version,
                ..c.clone()
            })),
            Form::Whole(pod) => {
                let mut pod = pod.clone();
                pod.metadata.resource_version = Some(resource_version.to_string());
                StoredPod(Form::Whole(pod))
            }
        }
    }

    pub fn uid(&self) -> Option<&str> {
        match &self.0 {
            Form::Compact(c) => c.uid.as_deref(),
            Form::Whole(pod) => pod.metadata.uid.as_deref(),
        }
    }

    /// The resourceVersion as a number (0 when it is not one).
    pub fn resource_version(&self) -> u64 {
        match &self.0 {
            Form::Compact(c) => c.resource_version,
            Form::Whole(pod) => pod
                .metadata
                .resource_version
                .as_deref()
                .and_then(|rv| rv.parse().ok())
                .unwrap_or(0),
        }
    }

    pub fn labels(&self) -> Option<&Labels> {
        match &self.0 {
            Form::Compact(c) => c.labels.as_deref(),
            Form::Whole(pod) => pod.metadata.labels.as_ref(),
        }
    }

    pub fn name(&self) -> &str {
        match &self.0 {
            Form::Compact(c) => &c.name,
            Form::Whole(pod) => pod.metadata.name.as_deref().unwrap_or_default(),
        }
    }

    pub fn namespace(&self) -> Option<&str> {
        match &self.0 {
            Form::Compact(c) => Some(&c.namespace),
            Form::Whole(pod) => pod.metadata.namespace.as_deref(),
        }
    }

    pub fn deleting(&self) -> bool {
        match &self.0 {
            Form::Compact(_) => false,
            Form::Whole(pod) => pod.metadata.deletion_timestamp.is_some(),
        }
    }

    /// The node the pod is bound to ("" when none).
    pub fn node_name(&self) -> &str {
        match &self.0 {
            Form::Compact(c) => c.node_name.as_deref(),
            Form::Whole(pod) => pod.spec.as_ref().and_then(|s| s.node_name.as_deref()),
        }
        .unwrap_or("")
    }

    pub fn phase(&self) -> Option<&str> {
        match &self.0 {
            Form::Compact(c) => c.phase.as_deref(),
            Form::Whole(pod) => pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        }
    }

    /// The status of the pod's condition of this type.
    pub fn condition_status(&self, type_: &str) -> Option<&str> {
        let conditions = match &self.0 {
            Form::Compact(c) => c.conditions.as_deref(),
            Form::Whole(pod) => pod.status.as_ref().and_then(|s| s.conditions.as_ref()),
        };
        conditions
            .into_iter()
            .flatten()
            .find(|c| c.type_ == type_)
            .map(|c| c.status.as_str())
    }
}

impl serde::Serialize for StoredPod {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_pod().serialize(serializer)
    }
}

impl Compact {
    /// The compact form of `pod`, or the pod back when it has a field that form does not hold.
    fn take(mut pod: Pod, shared: &mut Sharing) -> Result<Compact, Box<Pod>> {
        let meta = &pod.metadata;
        let resource_version = match meta.resource_version.as_deref().map(str::parse::<u64>) {
            Some(Ok(rv)) if meta.resource_version == Some(rv.to_string()) => rv,
            _ => return Err(Box::new(pod)),
        };
        if meta.namespace.is_none() || pod.spec.is_none() || pod.status.is_none() {
            return Err(Box::new(pod));
        }
        let meta = &mut pod.metadata;
        let (Some(spec), Some(status)) = (pod.spec.as_mut(), pod.status.as_mut()) else {
            return Err(Box::new(pod));
        };
        let compact = Compact {
            name: meta.name.take().unwrap_or_default().into_boxed_str(),
            namespace: shared.string(meta.namespace.as_deref().unwrap_or_default()),
            uid: meta.uid.take().map(String::into_boxed_str),
            resource_version,
            created: meta.creation_timestamp.take().map(|t| t.0),
            labels: meta.labels.take().map(|l| shared.labels(l)),
            owners: meta.owner_references.take().map(|o| shared.owners(o)),
            node_name: spec.node_name.take().map(|n| shared.string(&n)),
            containers: shared.containers(std::mem::take(&mut spec.containers)),
            tolerations: spec.tolerations.take().map(|t| shared.tolerations(t)),
            phase: status.phase.take().map(|p| shared.string(&p)),
            conditions: status.conditions.take().map(|c| shared.conditions(c)),
        };
        meta.namespace = None;
        meta.resource_version = None;
        let rest_is_empty = pod.metadata == ObjectMeta::default()
            && pod.spec == Some(PodSpec::default())
            && pod.status == Some(PodStatus::default());
        if rest_is_empty {
            Ok(compact)
        } else {
            compact.restore(&mut pod);
            Err(Box::new(pod))
        }
    }

    /// Puts the fields back into `pod` (whose spec and status are present).
    fn restore(&self, pod: &mut Pod) {
        let meta = &mut pod.metadata;
        meta.name = Some(self.name.to_string());
        meta.namespace = Some(self.namespace.to_string());
        meta.uid = self.uid.as_deref().map(str::to_string);
        meta.resource_version = Some(self.resource_version.to_string());
        meta.creation_timestamp = self.created.map(Time);
        meta.labels = self.labels.as_deref().cloned();
        meta.owner_references = self.owners.as_deref().cloned();
        let spec = pod.spec.get_or_insert_with(PodSpec::default);
        spec.node_name = self.node_name.as_deref().map(str::to_string);
        spec.containers = Vec::clone(&self.containers);
        spec.tolerations = self.tolerations.as_deref().cloned();
        let status = pod.status.get_or_insert_with(PodStatus::default);
        status.phase = self.phase.as_deref().map(str::to_string);
        status.conditions = self.conditions.as_deref().cloned();
    }

    fn to_pod(&self) -> Pod {
        let mut pod = Pod {
            metadata: ObjectMeta::default(),
            spec: Some(PodSpec::default()),
            status: Some(PodStatus::default()),
        };
        self.restore(&mut pod);
        pod
    }
}

/// How many distinct lists of a kind are remembered for sharing: pods created together (one
/// workload's) mostly repeat the last few.
const RECENT: usize = 8;

/// One copy of what many pods repeat, owned by the store that shares it. Strings and labels are
/// looked up by hash; lists (whose k8s-openapi types have no `Hash`) among the last few seen.
#[derive(Debug, Default)]
pub struct Sharing {
    strings: HashSet<Arc<str>>,
    labels: HashSet<Arc<Labels>>,
    containers: Vec<Arc<Vec<Container>>>,
    tolerations: Vec<Arc<Vec<Toleration>>>,
    conditions: Vec<Arc<Vec<PodCondition>>>,
    owners: Vec<Arc<Vec<OwnerReference>>>,
}

fn recent<T: PartialEq>(seen: &mut Vec<Arc<T>>, value: T) -> Arc<T> {
    if let Some(i) = seen.iter().position(|s| **s == value) {
        let shared = seen.remove(i);
        seen.insert(0, Arc::clone(&shared));
        return shared;
    }
    let new = Arc::new(value);
    seen.insert(0, Arc::clone(&new));
    seen.truncate(RECENT);
    new
}

impl Sharing {
    fn string(&mut self, s: &str) -> Arc<str> {
        if let Some(shared) = self.strings.get(s) {
            return Arc::clone(shared);
        }
        let new: Arc<str> = s.into();
        self.strings.insert(Arc::clone(&new));
        new
    }

    fn labels(&mut self, labels: Labels) -> Arc<Labels> {
        if let Some(shared) = self.labels.get(&labels) {
            return Arc::clone(shared);
        }
        let new = Arc::new(labels);
        self.labels.insert(Arc::clone(&new));
        new
    }

    fn containers(&mut self, list: Vec<Container>) -> Arc<Vec<Container>> {
        recent(&mut self.containers, list)
    }

    fn tolerations(&mut self, list: Vec<Toleration>) -> Arc<Vec<Toleration>> {
        recent(&mut self.tolerations, list)
    }

    fn conditions(&mut self, list: Vec<PodCondition>) -> Arc<Vec<PodCondition>> {
        recent(&mut self.conditions, list)
    }

    fn owners(&mut self, list: Vec<OwnerReference>) -> Arc<Vec<OwnerReference>> {
        recent(&mut self.owners, list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::scenario::PodSpec as ScenarioPod;
    use crate::sim::world::{build_pod, epoch};

    /// A pod as the store holds it after admission: with a UID and a resourceVersion.
    fn admitted(name: &str, node: &str, owner: Option<&str>) -> Pod {
        let spec = ScenarioPod {
            name: name.to_string(),
            namespace: "default".to_string(),
            node: node.to_string(),
            tolerations: Vec::new(),
            daemonset: false,
            owner: owner.map(str::to_string),
            bound: None,
            labels: BTreeMap::from([("app".to_string(), "web".to_string())]),
            ready: true,
        };
        let mut pod = build_pod(&spec, epoch(), epoch(), Some(300));
        pod.metadata.uid = Some(format!("uid-{name}"));
        pod.metadata.resource_version = Some("42".to_string());
        pod
    }

    fn is_compact(pod: &StoredPod) -> bool {
        matches!(pod.0, Form::Compact(_))
    }

    #[test]
    fn a_pod_the_simulation_builds_is_kept_compact_and_reads_back_unchanged() {
        let mut sharing = Sharing::default();
        let pod = admitted("web-0", "a-0", Some("ReplicaSet/web-5d8f"));
        let stored = StoredPod::new(pod.clone(), &mut sharing);
        assert!(is_compact(&stored));
        assert_eq!(stored.to_pod(), pod);
        assert_eq!(stored.resource_version(), 42);
        assert_eq!(stored.node_name(), "a-0");
        assert_eq!(stored.condition_status("Ready"), Some("True"));
    }

    #[test]
    fn a_pod_with_a_field_the_compact_form_lacks_is_kept_whole_and_reads_back_unchanged() {
        let mut sharing = Sharing::default();
        let mut annotated = admitted("web-0", "a-0", None);
        annotated.metadata.annotations = Some(BTreeMap::from([("a".into(), "b".into())]));
        let mut deleting = admitted("web-1", "a-0", None);
        deleting.metadata.deletion_timestamp = Some(Time(epoch()));
        let mut odd_version = admitted("web-2", "a-0", None);
        odd_version.metadata.resource_version = Some("007".to_string());
        let mut no_status = admitted("web-3", "a-0", None);
        no_status.status = None;
        for pod in [annotated, deleting, odd_version, no_status] {
            let stored = StoredPod::new(pod.clone(), &mut sharing);
            assert!(!is_compact(&stored), "{:?}", pod.metadata.name);
            assert_eq!(stored.to_pod(), pod);
        }
    }

    #[test]
    fn pods_built_alike_share_one_copy_of_their_lists() {
        let mut sharing = Sharing::default();
        let a = StoredPod::new(admitted("web-0", "a-0", None), &mut sharing);
        let b = StoredPod::new(admitted("web-1", "a-1", None), &mut sharing);
        let (Form::Compact(a), Form::Compact(b)) = (&a.0, &b.0) else {
            panic!("both pods are compact");
        };
        assert!(Arc::ptr_eq(&a.containers, &b.containers));
        let (Some(ta), Some(tb)) = (&a.tolerations, &b.tolerations) else {
            panic!("admission gives both pods tolerations");
        };
        assert!(Arc::ptr_eq(ta, tb));
        let (Some(ca), Some(cb)) = (&a.conditions, &b.conditions) else {
            panic!("both pods have conditions");
        };
        assert!(Arc::ptr_eq(ca, cb));
        assert!(Arc::ptr_eq(&a.namespace, &b.namespace));
    }

    #[test]
    fn a_deleted_pods_last_state_carries_the_deletions_resource_version() {
        let mut sharing = Sharing::default();
        let pod = admitted("web-0", "a-0", None);
        let gone = StoredPod::new(pod.clone(), &mut sharing).at_version(43);
        let mut expected = pod;
        expected.metadata.resource_version = Some("43".to_string());
        assert_eq!(gone.to_pod(), expected);
    }
}
