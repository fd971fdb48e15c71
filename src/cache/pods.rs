//! The pod cache: pods by key, an index of them by node, and the interner they share.

use super::interner::Interner;
use super::pod::{CachedPod, WatchedPod};
use crate::logic::pod::PodFacts;
use crate::logic::view::{PodKey, PodsByNode};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Pods by `namespace/name` with an index of them by node, as the loop's view holds them.
#[derive(Debug, Default)]
pub struct PodCache {
    /// Boxed: a B-tree leaf has room for 11 entries, is about half full after the sorted
    /// inserts of a list, and would hold ~230-byte pods inline (~60 MiB of the heap at 5k
    /// nodes / 150k pods).
    pods: BTreeMap<PodKey, Box<CachedPod>>,
    /// `spec.nodeName` -> pod keys (the same allocations as the keys of `pods`).
    by_node: BTreeMap<String, BTreeSet<PodKey>>,
    /// The strings and toleration lists the cached pods share; only this cache uses it.
    interner: Interner,
}

impl PodCache {
    /// Inserts or replaces a pod, interning its strings and keeping the node index in step;
    /// returns its key and the previous copy.
    pub fn put(&mut self, pod: impl Into<WatchedPod>) -> (PodKey, Option<CachedPod>) {
        let pod = Box::new(self.interner.intern(pod.into()));
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
            match self.by_node.get_mut(&*node) {
                Some(keys) => {
                    keys.insert(Arc::clone(&key));
                }
                None => {
                    let keys = BTreeSet::from([Arc::clone(&key)]);
                    self.by_node.insert(node.to_string(), keys);
                }
            }
        }
        (key, old)
    }

    /// Removes a pod by key; returns it.
    pub fn remove(&mut self, key: &str) -> Option<CachedPod> {
        let old = self.pods.remove(key)?;
        if let Some(node) = old.node() {
            self.unindex(node, key);
        }
        Some(*old)
    }

    fn unindex(&mut self, node: &str, key: &str) {
        if let Some(set) = self.by_node.get_mut(node) {
            set.remove(key);
            if set.is_empty() {
                self.by_node.remove(node);
            }
        }
    }

    pub fn get(&self, key: &str) -> Option<&CachedPod> {
        self.pods.get(key).map(|pod| &**pod)
    }

    pub fn len(&self) -> usize {
        self.pods.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    /// The cached pods in key order.
    pub fn values(&self) -> impl Iterator<Item = &CachedPod> {
        self.pods.values().map(|pod| &**pod)
    }

    /// The pods by key, for comparing with a fresh list (`logic::view::vanished`).
    pub fn by_key(&self) -> &BTreeMap<PodKey, Box<CachedPod>> {
        &self.pods
    }

    /// The names of the nodes that have pods, in order.
    pub fn nodes(&self) -> impl Iterator<Item = &String> {
        self.by_node.keys()
    }

    /// The pods bound to a node, in key order.
    pub fn on<'a>(&'a self, node: &str) -> impl Iterator<Item = &'a CachedPod> + 'a {
        self.by_node
            .get(node)
            .into_iter()
            .flatten()
            .filter_map(|k| self.get(k))
    }

    /// Forgets the strings and toleration lists no cached pod uses any more.
    pub fn prune(&mut self) {
        self.interner.prune();
    }

    /// How many distinct strings and toleration lists the cached pods share.
    pub fn shared(&self) -> usize {
        self.interner.len()
    }
}

impl std::ops::Index<&PodKey> for PodCache {
    type Output = CachedPod;

    fn index(&self, key: &PodKey) -> &CachedPod {
        &self.pods[key]
    }
}

impl PodsByNode for PodCache {
    fn pods_on(&self, node: &str) -> Vec<PodFacts<'_>> {
        self.on(node).map(CachedPod::facts).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logic::view::vanished;
    use k8s_openapi::api::core::v1::{Pod, PodSpec};

    fn pod(name: &str, node: &str) -> Pod {
        let mut pod = Pod::default();
        pod.metadata.namespace = Some("ns".into());
        pod.metadata.name = Some(name.into());
        pod.spec = Some(PodSpec {
            node_name: Some(node.into()),
            ..Default::default()
        });
        pod
    }

    #[test]
    fn a_pod_that_moves_is_indexed_under_its_new_node_only_and_keeps_its_key() {
        let mut cache = PodCache::default();
        let (first, old) = cache.put(pod("p", "a"));
        assert!(old.is_none());
        let (second, old) = cache.put(pod("p", "b"));
        assert_eq!(
            old.and_then(|o| o.node().map(str::to_string)),
            Some("a".into())
        );
        assert!(Arc::ptr_eq(&first, &second), "one allocation per key");
        assert_eq!(cache.nodes().collect::<Vec<_>>(), ["b"]);
        assert_eq!(cache.pods_on("b").len(), 1);
        assert!(cache.remove("ns/p").is_some());
        assert!(cache.nodes().next().is_none() && cache.is_empty());
    }

    #[test]
    fn vanished_keys_are_those_the_fresh_list_lacks() {
        let mut cache = PodCache::default();
        cache.put(pod("p", "a"));
        cache.put(pod("q", "a"));
        let listed: BTreeSet<PodKey> = [PodKey::from("ns/q")].into();
        assert_eq!(vanished(cache.by_key(), &listed), ["ns/p"]);
    }

    #[test]
    fn pods_of_one_cache_share_their_strings_and_what_no_pod_uses_is_pruned() {
        let mut cache = PodCache::default();
        let (p, q) = (cache.put(pod("p", "a")).0, cache.put(pod("q", "a")).0);
        assert!(Arc::ptr_eq(
            cache[&p].node_name.as_ref().unwrap(),
            cache[&q].node_name.as_ref().unwrap()
        ));
        let shared = cache.shared();
        cache.put(pod("p", "b"));
        cache.remove("ns/q");
        cache.prune();
        assert_eq!(cache.shared(), shared, "node a gone, node b added");
        cache.remove("ns/p");
        cache.prune();
        assert_eq!(cache.shared(), 0);
    }
}
