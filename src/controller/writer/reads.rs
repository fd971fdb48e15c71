//! Reads shared between attempts.

use super::WriterState;
use crate::cluster::{ApiError, Cluster, Priority};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// A read's position in the order of attempts and reads: a read may serve an attempt only when
/// it started after the attempt did. A sequence number, not a clock reading: under tokio's
/// paused clock (and the simulator's manual one) whole bursts happen in one instant, where
/// "after" could not be told from the time.
pub(super) type Seq = u64;

/// Every node Lease's resourceVersion, by name, as one list showed them.
pub(super) type LeaseVersions = HashMap<String, String>;

/// A GET several attempts may await; the object behind an `Arc` so that joining costs no copy.
type SharedRead<T> = Shared<BoxFuture<'static, Result<Arc<T>, ApiError>>>;

/// The latest read of each object of one kind, for attempts to share.
///
/// Only the latest read of an object is kept: any attempt an older read could serve (one that
/// started before it) started before the latest one too. An entry is forgotten once every
/// attempt still running started after it, since then none can use it and no later one will,
/// or as soon as the watch shows its object changed.
/// So there is at most one entry per object, and entries outlive their readers only while an
/// older attempt still runs (a request that hangs keeps at most one entry per node).
pub(super) struct SharedReads<T> {
    /// Per object: when its latest read started, at what priority, and the read.
    latest: HashMap<String, (Seq, Priority, SharedRead<T>)>,
    /// The same entries by when they started, oldest first.
    by_start: BTreeMap<Seq, String>,
}

impl<T> Default for SharedReads<T> {
    fn default() -> Self {
        SharedReads {
            latest: HashMap::new(),
            by_start: BTreeMap::new(),
        }
    }
}

impl<T> SharedReads<T> {
    /// The latest read of `name` if it started after `since` and was sent at `priority` or a
    /// more urgent one (joining a less urgent read would make the attempt wait at its
    /// priority), in flight or done (failed too: the attempt then meets that error as if it
    /// had read itself, and retries after a backoff).
    pub(super) fn usable(
        &self,
        name: &str,
        since: Seq,
        priority: Priority,
    ) -> Option<(Seq, SharedRead<T>)> {
        match self.latest.get(name) {
            Some((started, sent_at, read)) if *started > since && *sent_at <= priority => {
                Some((*started, read.clone()))
            }
            _ => None,
        }
    }

    pub(super) fn insert(
        &mut self,
        name: &str,
        started: Seq,
        priority: Priority,
        read: SharedRead<T>,
    ) {
        if let Some((old, ..)) = self
            .latest
            .insert(name.to_owned(), (started, priority, read))
        {
            self.by_start.remove(&old);
        }
        self.by_start.insert(started, name.to_owned());
    }

    /// Forgets the read of `name`: the object changed since it started, so it serves no
    /// attempt any more (attempts that joined it already keep their answer).
    pub(super) fn forget(&mut self, name: &str) {
        if let Some((started, ..)) = self.latest.remove(name) {
            self.by_start.remove(&started);
        }
    }

    /// Forgets the reads that started before `seq`.
    pub(super) fn forget_before(&mut self, seq: Seq) {
        while let Some(entry) = self.by_start.first_entry() {
            if *entry.key() >= seq {
                break;
            }
            let name = entry.remove();
            self.latest.remove(&name);
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.latest.len()
    }
}

/// Attempts running and the reads they may share, under one lock so that sequence numbers and
/// entries agree.
pub(super) struct ReadSharing {
    /// The next sequence number.
    pub(super) next: Seq,
    /// From when each running attempt may share reads (its start, or its decision for a first
    /// attempt), with how many attempts share that point.
    pub(super) running: BTreeMap<Seq, usize>,
    pub(super) nodes: SharedReads<Node>,
    pub(super) leases: SharedReads<Lease>,
    /// The latest list of Lease versions, for Unknown marks decided together, and the Leases
    /// the watch showed changed since it started (their listed versions prove nothing).
    pub(super) lease_list: Option<(Seq, Priority, SharedRead<LeaseVersions>)>,
    leases_changed_since_list: HashSet<String>,
    /// The node changes seen on the watch while attempts run, by when they were seen (kept
    /// until no running attempt started before them), and a signal for each.
    node_changes: BTreeMap<Seq, String>,
    node_changed: watch::Sender<Seq>,
}

impl Default for ReadSharing {
    fn default() -> Self {
        ReadSharing {
            next: 0,
            running: BTreeMap::new(),
            nodes: SharedReads::default(),
            leases: SharedReads::default(),
            lease_list: None,
            leases_changed_since_list: HashSet::new(),
            node_changes: BTreeMap::new(),
            node_changed: watch::Sender::new(0),
        }
    }
}

impl ReadSharing {
    pub(super) fn take_seq(&mut self) -> Seq {
        self.next += 1;
        self.next
    }
}

/// A running attempt; forgets the reads no running attempt can use any more when dropped
/// (whether the attempt finished or its task was aborted).
pub(super) struct RunningAttempt<'a> {
    reads: &'a Mutex<ReadSharing>,
    pub(super) since: Seq,
}

impl Drop for RunningAttempt<'_> {
    fn drop(&mut self) {
        let mut reads = self.reads.lock().unwrap_or_else(|p| p.into_inner());
        reads.unregister(self.since);
    }
}

impl ReadSharing {
    /// A change of the node `name` was seen on the watch.
    pub(super) fn node_changed(&mut self, name: &str) {
        self.nodes.forget(name);
        if !self.running.is_empty() {
            let seq = self.take_seq();
            self.node_changes.insert(seq, name.to_owned());
            self.node_changed.send_replace(seq);
        }
    }

    /// Whether a change of the node `name` was seen after `seq`.
    pub(super) fn node_changed_since(&self, name: &str, seq: Seq) -> bool {
        self.node_changes
            .range(seq + 1..)
            .any(|(_, changed)| changed == name)
    }

    /// Signalled at each change `node_changed_since` may report.
    pub(super) fn node_changes(&self) -> watch::Receiver<Seq> {
        self.node_changed.subscribe()
    }

    /// A change of the Lease `name` was seen on the watch.
    pub(super) fn lease_changed(&mut self, name: &str) {
        self.leases.forget(name);
        if self.lease_list.is_some() {
            self.leases_changed_since_list.insert(name.to_owned());
        }
    }

    fn register(&mut self, since: Seq) {
        *self.running.entry(since).or_default() += 1;
    }

    /// Unregisters `since` and forgets the reads no registered attempt or batch can use.
    fn unregister(&mut self, since: Seq) {
        if let Some(count) = self.running.get_mut(&since) {
            *count -= 1;
            if *count == 0 {
                self.running.remove(&since);
            }
        }
        let oldest = self
            .running
            .first_key_value()
            .map(|(seq, _)| *seq)
            .unwrap_or(self.next + 1);
        self.nodes.forget_before(oldest);
        self.leases.forget_before(oldest);
        if self
            .lease_list
            .as_ref()
            .is_some_and(|(started, ..)| *started < oldest)
        {
            self.lease_list = None;
            self.leases_changed_since_list.clear();
        }
        self.node_changes = self.node_changes.split_off(&oldest);
    }
}

/// Pod writes decided together, handed over at one `Writer::submit_seen`: their first attempts
/// may share reads that started after the decision. Registered as running (so such reads are
/// kept) until every job holding it has dropped it, after its first attempt or unattempted.
#[derive(Clone)]
pub(super) struct Batch(Arc<BatchInner>);

struct BatchInner {
    seq: Seq,
    reads: Arc<Mutex<ReadSharing>>,
}

impl Batch {
    pub(super) fn new(reads: &Arc<Mutex<ReadSharing>>) -> Self {
        let mut locked = reads.lock().unwrap_or_else(|p| p.into_inner());
        let seq = locked.take_seq();
        locked.register(seq);
        Batch(Arc::new(BatchInner {
            seq,
            reads: Arc::clone(reads),
        }))
    }

    pub(super) fn seq(&self) -> Seq {
        self.0.seq
    }
}

impl Drop for BatchInner {
    fn drop(&mut self) {
        let mut reads = self.reads.lock().unwrap_or_else(|p| p.into_inner());
        reads.unregister(self.seq);
    }
}

impl PartialEq for Batch {
    fn eq(&self, other: &Self) -> bool {
        self.seq() == other.seq()
    }
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Batch({})", self.seq())
    }
}

impl<C: Cluster> WriterState<C> {
    /// Registers an attempt starting now; reads it may share must start after this, or after
    /// `decided` (a first attempt's decision: see `Writer::submit_seen`).
    pub(super) fn start_attempt(&self, decided: Option<Seq>) -> RunningAttempt<'_> {
        let mut reads = self.reads.lock().unwrap_or_else(|p| p.into_inner());
        let since = match decided {
            Some(seq) => seq,
            None => reads.take_seq(),
        };
        reads.register(since);
        RunningAttempt {
            reads: &self.reads,
            since,
        }
    }

    /// The object `name` of the kind `pick` selects, as read by a GET that started after the
    /// attempt `since` did, at `priority` or a more urgent one: joins such a read in flight or
    /// reuses one done, else starts one with `get`. Never for an object that is changed and
    /// written back (another attempt may hold the same copy).
    async fn shared<T: Send + Sync + 'static>(
        &self,
        pick: fn(&mut ReadSharing) -> &mut SharedReads<T>,
        name: &str,
        since: Seq,
        priority: Priority,
        get: impl FnOnce() -> BoxFuture<'static, Result<T, ApiError>>,
    ) -> Result<(Seq, Arc<T>), ApiError> {
        let (started, read) = {
            let mut reads = self.reads.lock().unwrap_or_else(|p| p.into_inner());
            match pick(&mut reads).usable(name, since, priority) {
                Some(found) => found,
                None => {
                    let started = reads.take_seq();
                    let read = get().map(|r| r.map(Arc::new)).boxed().shared();
                    pick(&mut reads).insert(name, started, priority, read.clone());
                    (started, read)
                }
            }
        };
        Ok((started, read.await?))
    }

    /// Whether the Lease `name` shows no write since the decision that saw it at `seen` (its
    /// resourceVersion; `None`: none was cached), by a list of all Lease versions started
    /// after `since` and no change of it on the watch since the list started: one list
    /// serves all the Unknown marks of a pass. `None`: the list cannot tell (it failed, or
    /// the Lease was seen to change), and the caller reads the Lease itself.
    pub(super) async fn lease_unchanged_by_list(
        &self,
        name: &str,
        seen: Option<&str>,
        since: Seq,
        priority: Priority,
    ) -> Option<bool> {
        let (started, read) = {
            let mut reads = self.reads.lock().unwrap_or_else(|p| p.into_inner());
            match &reads.lease_list {
                Some((started, sent_at, read)) if *started > since && *sent_at <= priority => {
                    (*started, read.clone())
                }
                _ => {
                    let started = reads.take_seq();
                    let (cluster, namespace) =
                        (self.cluster.at(priority), self.node_lease_namespace.clone());
                    let read: SharedRead<LeaseVersions> = async move {
                        let listed = cluster.list_lease_versions(&namespace).await?;
                        Ok(Arc::new(
                            listed
                                .into_iter()
                                .map(|o| (o.name, o.resource_version))
                                .collect(),
                        ))
                    }
                    .boxed()
                    .shared();
                    reads.lease_list = Some((started, priority, read.clone()));
                    reads.leases_changed_since_list.clear();
                    (started, read)
                }
            }
        };
        let listed = read.await.ok()?;
        let reads = self.reads.lock().unwrap_or_else(|p| p.into_inner());
        let still_this_list = reads
            .lease_list
            .as_ref()
            .is_some_and(|(s, ..)| *s == started);
        if !still_this_list || reads.leases_changed_since_list.contains(name) {
            return None;
        }
        Some(listed.get(name).map(String::as_str) == seen)
    }

    /// The node as read after `since` (`shared`), with when that read started.
    pub(super) async fn shared_node(
        &self,
        name: &str,
        since: Seq,
        priority: Priority,
    ) -> Result<(Seq, Arc<Node>), ApiError> {
        let get = || {
            let (cluster, name) = (self.cluster.at(priority), name.to_owned());
            async move { cluster.get_node(&name).await }.boxed()
        };
        self.shared(|r| &mut r.nodes, name, since, priority, get)
            .await
    }

    pub(super) async fn shared_lease(
        &self,
        name: &str,
        since: Seq,
        priority: Priority,
    ) -> Result<Arc<Lease>, ApiError> {
        let get = || {
            let cluster = self.cluster.at(priority);
            let (namespace, name) = (self.node_lease_namespace.clone(), name.to_owned());
            async move { cluster.get_lease(&namespace, &name).await }.boxed()
        };
        let (_, lease) = self
            .shared(|r| &mut r.leases, name, since, priority, get)
            .await?;
        Ok(lease)
    }

    /// `write`, unless the watch shows a change of the node `node` after `read` (when the
    /// node read the write was decided on started) before it is answered: then `None`, the
    /// write abandoned (a request still waiting for a token is never sent) and the decision to
    /// be taken again on the node as it is now. So no eviction decided on a read of the node
    /// from before its taint came off is sent after the watch showed it, however long the
    /// client-side limit held the request.
    pub(super) async fn unless_node_changed<T>(
        &self,
        node: &str,
        read: Seq,
        write: impl Future<Output = T>,
    ) -> Option<T> {
        let mut changes = self.lock_reads().node_changes();
        let mut write = std::pin::pin!(write);
        loop {
            changes.borrow_and_update();
            if self.lock_reads().node_changed_since(node, read) {
                return None;
            }
            tokio::select! {
                biased;
                written = &mut write => return Some(written),
                // Never closed while the writer lives; should it be, the write goes on alone.
                closed = changes.changed() => if closed.is_err() {
                    return Some(write.await);
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_forgotten_oldest_first_and_only_the_latest_of_an_object_is_kept() {
        let mut reads = SharedReads::<Node>::default();
        let read = || async { Ok(Arc::new(Node::default())) }.boxed().shared();
        reads.insert("a", 2, Priority::Evictions, read());
        reads.insert("b", 3, Priority::Evictions, read());
        reads.insert("a", 5, Priority::Evictions, read());
        assert_eq!(reads.len(), 2);
        assert!(
            reads.usable("a", 4, Priority::Evictions).is_some(),
            "started at 5, after 4"
        );
        assert!(
            reads.usable("a", 5, Priority::Evictions).is_none(),
            "not after itself"
        );
        assert!(reads.usable("b", 3, Priority::Evictions).is_none());
        reads.forget_before(4);
        assert!(
            reads.usable("b", 1, Priority::Evictions).is_none(),
            "b (3) forgotten"
        );
        assert!(
            reads.usable("a", 1, Priority::Evictions).is_some(),
            "a (5) kept"
        );
        reads.forget_before(6);
        assert_eq!(reads.len(), 0);
        assert!(reads.by_start.is_empty());
    }

    #[test]
    fn an_attempt_joins_only_a_read_sent_at_its_priority_or_a_more_urgent_one() {
        let mut reads: SharedReads<Node> = SharedReads::default();
        let read = || {
            futures::future::ready(Ok(Arc::new(Node::default())))
                .boxed()
                .shared()
        };
        reads.insert("a", 5, Priority::Evictions, read());
        assert!(reads.usable("a", 4, Priority::Evictions).is_some());
        assert!(
            reads.usable("a", 4, Priority::PodMarks).is_some(),
            "a pod mark joins an eviction's read"
        );
        assert!(
            reads.usable("a", 4, Priority::NoExecute).is_none(),
            "a taint does not wait at an eviction's priority"
        );
    }
}
