//! The controller's picture of the cluster: what the watches delivered, as plain data.

use super::cached_pod::CachedPod;
use super::pod::PodFacts;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Nodes, node Leases and Pods by name, with an index of pods by node.
#[derive(Clone, Debug, Default)]
pub struct ClusterView {
    pub nodes: BTreeMap<String, Node>,
    /// Node leases by name (= node name).
    pub leases: BTreeMap<String, Lease>,
    /// Pods by `namespace/name`, as the cache keeps them (see `cached_pod`). Boxed: a B-tree
    /// leaf has room for 11 entries, is about half full after the sorted inserts of a list,
    /// and would hold ~230-byte pods inline (~60 MiB of the heap at 5k nodes / 150k pods).
    pub pods: BTreeMap<PodKey, Box<CachedPod>>,
    /// `spec.nodeName` -> pod keys (the same allocations as the keys of `pods`).
    pub pods_by_node: BTreeMap<String, BTreeSet<PodKey>>,
}

/// A pod's `namespace/name`, allocated once and shared by the pod map and its node index (at
/// 300 000 pods a second copy of every key was ~15 MB).
pub type PodKey = Arc<str>;

impl ClusterView {
    /// Inserts or replaces a pod, keeping the node index in step; returns its key and the
    /// previous copy.
    pub fn put_pod(&mut self, pod: impl Into<CachedPod>) -> (PodKey, Option<CachedPod>) {
        let pod = Box::new(pod.into());
        let node = pod.node_name.clone().filter(|n| !n.is_empty());
        let key = pod.key();
        let (key, old) = match self.pods.get_key_value(key.as_str()) {
            Some((existing, _)) => {
                let existing = Arc::clone(existing);
                let old = self.pods.insert(Arc::clone(&existing), pod);
                (existing, old.map(|old| *old))
            }
            None => {
                let key: PodKey = key.into();
                self.pods.insert(Arc::clone(&key), pod);
                (key, None)
            }
        };
        if let Some(old_node) = old.as_ref().and_then(CachedPod::node) {
            self.unindex(old_node, &key);
        }
        if let Some(node) = node {
            // Looked up before inserting, so that only a node's first pod allocates its name.
            match self.pods_by_node.get_mut(&*node) {
                Some(keys) => {
                    keys.insert(Arc::clone(&key));
                }
                None => {
                    let keys = BTreeSet::from([Arc::clone(&key)]);
                    self.pods_by_node.insert(node.to_string(), keys);
                }
            }
        }
        (key, old)
    }

    /// Removes a pod by key; returns it.
    pub fn remove_pod(&mut self, key: &str) -> Option<CachedPod> {
        let old = self.pods.remove(key)?;
        if let Some(node) = old.node() {
            self.unindex(node, key);
        }
        Some(*old)
    }

    fn unindex(&mut self, node: &str, key: &str) {
        if let Some(set) = self.pods_by_node.get_mut(node) {
            set.remove(key);
            if set.is_empty() {
                self.pods_by_node.remove(node);
            }
        }
    }

    /// The pods bound to a node, in key order, as the cache keeps them.
    pub fn cached_pods_on<'a>(&'a self, node: &str) -> impl Iterator<Item = &'a CachedPod> + 'a {
        self.pods_by_node
            .get(node)
            .into_iter()
            .flatten()
            .filter_map(|k| self.pods.get(k).map(|pod| &**pod))
    }

    /// What decisions read of the pods bound to a node, in key order.
    pub fn pods_on(&self, node: &str) -> Vec<PodFacts<'_>> {
        self.cached_pods_on(node).map(CachedPod::facts).collect()
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

    fn pod(name: &str, node: &str) -> k8s_openapi::api::core::v1::Pod {
        let mut pod = k8s_openapi::api::core::v1::Pod::default();
        pod.metadata.namespace = Some("ns".into());
        pod.metadata.name = Some(name.into());
        pod.spec = Some(k8s_openapi::api::core::v1::PodSpec {
            node_name: Some(node.into()),
            ..Default::default()
        });
        pod
    }

    #[test]
    fn a_pod_that_moves_is_indexed_under_its_new_node_only_and_keeps_its_key() {
        let mut view = ClusterView::default();
        let (first, old) = view.put_pod(pod("p", "a"));
        assert!(old.is_none());
        let (second, old) = view.put_pod(pod("p", "b"));
        assert_eq!(
            old.and_then(|o| o.node().map(str::to_string)),
            Some("a".into())
        );
        assert!(Arc::ptr_eq(&first, &second), "one allocation per key");
        assert!(!view.pods_by_node.contains_key("a"));
        assert_eq!(view.pods_on("b").len(), 1);
        assert!(view.remove_pod("ns/p").is_some());
        assert!(view.pods_by_node.is_empty() && view.pods.is_empty());
    }

    #[test]
    fn vanished_keys_are_those_the_fresh_list_lacks() {
        let mut view = ClusterView::default();
        view.put_pod(pod("p", "a"));
        view.put_pod(pod("q", "a"));
        let listed: BTreeSet<PodKey> = [PodKey::from("ns/q")].into();
        assert_eq!(vanished(&view.pods, &listed), ["ns/p"]);
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
