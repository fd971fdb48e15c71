//! One shared copy of each distinct toleration list and of each repeated string of the pods
//! one cache keeps.

use super::pod::{CachedPod, Condition, Text, WatchedCondition, WatchedPod, WatchedToleration};
use k8s_openapi::api::core::v1::Toleration;
use std::collections::{BTreeMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

/// The table a [`super::PodCache`] shares its pods' strings and toleration lists through.
/// Owned by the cache, not the process: sharing changes no value, only how many copies of it
/// exist, and a table per cache leaves nothing behind when the cache goes.
#[derive(Debug, Default)]
pub struct Interner {
    /// Toleration lists by a hash of their content; equal hashes are told apart by comparing.
    lists: BTreeMap<u64, Vec<Arc<[Toleration]>>>,
    /// Only looked up, never iterated for a decision, so its order does not matter.
    strings: HashSet<Arc<str>>,
}

/// A hash of a toleration list's content (`Toleration` itself does not implement `Hash`).
fn content_hash(list: &[WatchedToleration]) -> u64 {
    let mut h = DefaultHasher::new();
    for t in list {
        (
            t.key.as_deref(),
            t.operator.as_deref(),
            t.value.as_deref(),
            t.effect.as_deref(),
            t.seconds,
        )
            .hash(&mut h);
    }
    h.finish()
}

impl Interner {
    /// `pod` as the cache keeps it: its repeated strings and toleration list replaced by the
    /// shared copies (the pod's own copies are dropped).
    pub fn intern(&mut self, pod: WatchedPod) -> CachedPod {
        let WatchedPod {
            namespace,
            name,
            uid,
            version,
            created,
            deleting,
            node_name,
            tolerations,
            phase,
            ready,
            scheduled,
        } = pod;
        let mut condition = |c: WatchedCondition| Condition {
            status: self.string(&c.status),
            last_transition: c.last_transition,
        };
        let (ready, scheduled) = (ready.map(&mut condition), scheduled.map(&mut condition));
        CachedPod {
            namespace: self.text(namespace),
            name,
            uid,
            version,
            created,
            deleting,
            node_name: self.text(node_name),
            tolerations: tolerations.map(|list| self.tolerations(&list)),
            phase: self.text(phase),
            ready,
            scheduled,
        }
    }

    fn text(&mut self, s: Option<Text>) -> Option<Arc<str>> {
        s.map(|s| self.string(&s))
    }

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
    pub fn tolerations(&mut self, list: &[WatchedToleration]) -> Arc<[Toleration]> {
        let bucket = self.lists.entry(content_hash(list)).or_default();
        let same = |shared: &&Arc<[Toleration]>| {
            shared.len() == list.len() && list.iter().zip(shared.iter()).all(|(w, t)| w.matches(t))
        };
        if let Some(shared) = bucket.iter().find(same) {
            return Arc::clone(shared);
        }
        let new: Arc<[Toleration]> = list.iter().map(WatchedToleration::to_toleration).collect();
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

    fn toleration(key: &str, seconds: Option<i64>) -> WatchedToleration {
        WatchedToleration::from(Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            toleration_seconds: seconds,
            ..Default::default()
        })
    }

    #[test]
    fn equal_toleration_lists_and_strings_are_shared_and_unused_ones_pruned() {
        let mut table = Interner::default();
        let list = [toleration("k", Some(30))];
        let (a, b) = (table.tolerations(&list), table.tolerations(&list));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a[0], list[0].to_toleration());
        let (x, y) = (table.string("n"), table.string("n"));
        assert!(Arc::ptr_eq(&x, &y));
        let c = table.tolerations(&[toleration("k", Some(31))]);
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
    fn two_interners_share_nothing() {
        let (mut one, mut other) = (Interner::default(), Interner::default());
        assert!(!Arc::ptr_eq(&one.string("n"), &other.string("n")));
        let list = [toleration("k", None)];
        assert!(!Arc::ptr_eq(
            &one.tolerations(&list),
            &other.tolerations(&list)
        ));
    }
}
