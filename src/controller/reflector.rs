//! One watch's bookkeeping, the same for Nodes, Leases and Pods: which stream is current (its
//! generation), whether its first full list has arrived, and the objects of a re-list in
//! progress, applied to a [`Cache`] so that objects the list no longer has are deleted.

use std::borrow::Borrow;
use std::collections::BTreeSet;
use tokio::task::AbortHandle;

use kube::runtime::watcher::Event;

/// Where a watch's objects go. `listing` marks the objects of a (re-)list.
pub trait Cache<K> {
    /// The key the cache keeps an object under.
    type Key: Borrow<str> + Ord;

    /// Caches an object; returns its key (`None`: it has none and was ignored).
    fn apply(&mut self, object: K, listing: bool) -> Option<Self::Key>;
    /// The key of an object (to delete it, or to find the cached ones a list lacks).
    fn key_of(object: &K) -> Option<Self::Key>;
    fn delete(&mut self, key: &str);
    /// The cached keys a complete list does not have.
    fn vanished(&self, listed: &BTreeSet<Self::Key>) -> Vec<String>;
    /// A (re-)list began: the cache is not up to date until it ends.
    fn list_started(&mut self) {}
    /// A (re-)list ended: the cache is as fresh as the server.
    fn listed(&mut self);
}

/// What a re-list keeps until its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    /// The objects, applied at the end (after the vanished ones are deleted).
    Buffered,
    /// Only the keys; the objects are applied as they arrive (pods: many, and applying them
    /// overlaps with downloading the rest).
    AsTheyArrive,
}

enum InProgress<K, Key> {
    Buffered(Vec<K>),
    Applied(BTreeSet<Key>),
}

/// One watched resource.
pub struct Reflector<K, Key> {
    listing: Listing,
    in_progress: Option<InProgress<K, Key>>,
    /// Its first full list has arrived.
    pub synced: bool,
    /// Bumped at each restart: events of an older stream are ignored.
    pub generation: u64,
    task: Option<AbortHandle>,
}

impl<K, Key: Borrow<str> + Ord> Reflector<K, Key> {
    pub fn new(listing: Listing) -> Self {
        Reflector {
            listing,
            in_progress: None,
            synced: false,
            generation: 0,
            task: None,
        }
    }

    /// Replaces the watch task (aborting the old one); returns the new generation.
    pub fn restart(&mut self, spawn: impl FnOnce(u64) -> AbortHandle) -> u64 {
        if let Some(old) = self.task.take() {
            old.abort();
        }
        self.generation += 1;
        self.task = Some(spawn(self.generation));
        self.generation
    }

    fn empty(&self) -> InProgress<K, Key> {
        match self.listing {
            Listing::Buffered => InProgress::Buffered(Vec::new()),
            Listing::AsTheyArrive => InProgress::Applied(BTreeSet::new()),
        }
    }

    /// Applies one watch event to `cache`.
    pub fn handle<C: Cache<K, Key = Key>>(&mut self, event: Event<K>, cache: &mut C) {
        match event {
            Event::Init => {
                self.in_progress = Some(self.empty());
                cache.list_started();
            }
            Event::InitApply(object) => {
                let empty = self.empty();
                match self.in_progress.get_or_insert(empty) {
                    InProgress::Buffered(objects) => objects.push(object),
                    InProgress::Applied(keys) => {
                        if let Some(key) = cache.apply(object, true) {
                            keys.insert(key);
                        }
                    }
                }
            }
            Event::InitDone => {
                let (objects, keys) = match self.in_progress.take().unwrap_or_else(|| self.empty())
                {
                    InProgress::Buffered(objects) => {
                        let keys = objects.iter().filter_map(|o| C::key_of(o)).collect();
                        (objects, keys)
                    }
                    InProgress::Applied(keys) => (Vec::new(), keys),
                };
                for key in cache.vanished(&keys) {
                    cache.delete(&key);
                }
                for object in objects {
                    cache.apply(object, true);
                }
                self.synced = true;
                cache.listed();
            }
            Event::Apply(object) => {
                cache.apply(object, false);
            }
            Event::Delete(object) => {
                if let Some(key) = C::key_of(&object) {
                    cache.delete(Borrow::<str>::borrow(&key));
                }
            }
        }
    }
}
