//! Paginated lists (`limit` / `continue`) served from a snapshot, as kube-apiserver serves them
//! from etcd's revision: every page of one list shows the cluster at the first page's
//! resourceVersion, and serving page k costs only page k.
//!
//! A client lists 300 000 pods in 600 pages of 500; copying the whole store for every page (the
//! obvious implementation) is quadratic and took minutes, so the first page takes one snapshot,
//! sorted by key, and later pages find their start by binary search in it.

use std::any::Any;
use std::sync::{Arc, Mutex};

/// How many lists may be paged through at once; an older snapshot is dropped and its continue
/// token answered `410 Expired`, as kube-apiserver does once a revision is compacted.
const KEPT: usize = 8;

/// One list's items at a resourceVersion, sorted by (namespace, name).
struct Snapshot {
    /// The resource and namespace the list was for.
    scope: String,
    resource_version: u64,
    items: Arc<dyn Any + Send + Sync>,
}

/// Snapshots of the lists being paged through.
#[derive(Default)]
pub(super) struct Pages {
    snapshots: Mutex<Vec<Snapshot>>,
}

impl Pages {
    /// Keeps `items` for the continue tokens of the list `scope` at `resource_version`.
    pub(super) fn keep<K: Send + Sync + 'static>(
        &self,
        scope: String,
        resource_version: u64,
        items: Arc<Vec<K>>,
    ) {
        let mut snapshots = self.snapshots.lock().unwrap_or_else(|p| p.into_inner());
        snapshots.retain(|s| !(s.scope == scope && s.resource_version == resource_version));
        if snapshots.len() >= KEPT {
            snapshots.remove(0);
        }
        snapshots.push(Snapshot {
            scope,
            resource_version,
            items,
        });
    }

    /// The snapshot of the list `scope` at `resource_version`, if still kept.
    pub(super) fn find<K: Send + Sync + 'static>(
        &self,
        scope: &str,
        resource_version: u64,
    ) -> Option<Arc<Vec<K>>> {
        let snapshots = self.snapshots.lock().unwrap_or_else(|p| p.into_inner());
        let found = snapshots
            .iter()
            .find(|s| s.scope == scope && s.resource_version == resource_version)?;
        Arc::clone(&found.items).downcast::<Vec<K>>().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_snapshot_is_found_by_scope_and_resource_version_only() {
        let pages = Pages::default();
        pages.keep("pods/".into(), 7, Arc::new(vec![1u32, 2, 3]));
        assert_eq!(
            pages.find::<u32>("pods/", 7).as_deref(),
            Some(&vec![1, 2, 3])
        );
        assert!(pages.find::<u32>("pods/", 8).is_none());
        assert!(pages.find::<u32>("nodes/", 7).is_none());
        assert!(pages.find::<String>("pods/", 7).is_none(), "wrong type");
    }

    #[test]
    fn the_oldest_snapshot_is_dropped_beyond_the_kept_number() {
        let pages = Pages::default();
        for rv in 0..=KEPT as u64 {
            pages.keep("nodes/".into(), rv, Arc::new(vec![rv]));
        }
        assert!(pages.find::<u64>("nodes/", 0).is_none());
        assert!(pages.find::<u64>("nodes/", 1).is_some());
        assert!(pages.find::<u64>("nodes/", KEPT as u64).is_some());
    }
}
