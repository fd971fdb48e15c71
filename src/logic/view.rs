//! The controller's picture of the cluster: what the watches delivered, as plain data.

use super::pod::PodFacts;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Nodes and node Leases by name, and the pods in whatever store `P` the caller keeps them
/// (the controller's compact cache lives in `crate::cache`; decisions only ask it for
/// [`PodFacts`]).
#[derive(Clone, Debug, Default)]
pub struct ClusterView<P> {
    pub nodes: BTreeMap<String, Node>,
    /// Node leases by name (= node name).
    pub leases: BTreeMap<String, Lease>,
    pub pods: P,
}

/// A pod's `namespace/name`, allocated once and shared by the pod map and its node index (at
/// 300 000 pods a second copy of every key was ~15 MB).
pub type PodKey = Arc<str>;

/// What decisions ask of a pod store: the pods bound to a node, in key order.
pub trait PodsByNode {
    fn pods_on(&self, node: &str) -> Vec<PodFacts<'_>>;
}

/// Live pods in a list, in the list's order: what tests hand the core.
impl PodsByNode for Vec<Pod> {
    fn pods_on(&self, node: &str) -> Vec<PodFacts<'_>> {
        self.iter()
            .map(PodFacts::from)
            .filter(|pod| pod.node == Some(node))
            .collect()
    }
}

impl<P: PodsByNode> ClusterView<P> {
    /// What decisions read of the pods bound to a node, in key order.
    pub fn pods_on(&self, node: &str) -> Vec<PodFacts<'_>> {
        self.pods.pods_on(node)
    }
}

/// An object's name and resourceVersion, from a metadata-only list: what the staleness guard
/// compares with its cache. Listing whole Nodes for that every half grace period cost the
/// controller ~40 MiB of transient allocations at 10k (small, simulated) nodes, and real Nodes
/// are many times larger (images, addresses, managed fields).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectVersion {
    pub name: String,
    pub resource_version: String,
}

/// Whether a fresh list (names and resourceVersions) shows objects the cache does not have in
/// that version (changed, added or removed): the watch that fills the cache has fallen behind.
pub fn moved_on<K: kube::Resource>(cached: &BTreeMap<String, K>, fresh: &[ObjectVersion]) -> bool {
    if cached.len() != fresh.len() {
        return true;
    }
    fresh.iter().any(|f| {
        cached
            .get(&f.name)
            .map(|c| c.meta().resource_version.as_deref())
            != Some(Some(f.resource_version.as_str()))
    })
}

/// The keys of `cached` that a fresh full list (its keys in `listed`) no longer has: objects
/// deleted while the watch was not looking.
pub fn vanished<K, L, V>(cached: &BTreeMap<K, V>, listed: &BTreeSet<L>) -> Vec<String>
where
    K: Borrow<str> + Ord,
    L: Borrow<str> + Ord,
{
    cached
        .keys()
        .map(|k| k.borrow())
        .filter(|k| !listed.contains(*k))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, rv: &str) -> Node {
        let mut node = Node::default();
        node.metadata.name = Some(name.into());
        node.metadata.resource_version = Some(rv.into());
        node
    }

    fn version(name: &str, rv: &str) -> ObjectVersion {
        ObjectVersion {
            name: name.into(),
            resource_version: rv.into(),
        }
    }

    fn cache(nodes: &[(&str, &str)]) -> BTreeMap<String, Node> {
        nodes
            .iter()
            .map(|(name, rv)| (name.to_string(), node(name, rv)))
            .collect()
    }

    #[test]
    fn a_cache_holding_every_listed_version_has_not_fallen_behind() {
        let cached = cache(&[("a", "1"), ("b", "7")]);
        assert!(!moved_on(&cached, &[version("a", "1"), version("b", "7")]));
    }

    #[test]
    fn a_changed_added_or_removed_object_shows_the_watch_fell_behind() {
        let cached = cache(&[("a", "1"), ("b", "7")]);
        assert!(moved_on(&cached, &[version("a", "1"), version("b", "8")]));
        assert!(moved_on(&cached, &[version("a", "1"), version("c", "7")]));
        assert!(moved_on(
            &cached,
            &[version("a", "1"), version("b", "7"), version("c", "9")]
        ));
        assert!(moved_on(&cached, &[version("a", "1")]));
    }

    #[test]
    fn a_cached_object_without_a_resource_version_never_matches() {
        let mut cached = cache(&[("a", "1")]);
        cached.get_mut("a").unwrap().metadata.resource_version = None;
        assert!(moved_on(&cached, &[version("a", "")]));
    }
}
