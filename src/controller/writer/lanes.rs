//! The lanes writes travel in, and the priority of node writes and evictions over the rest.

use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{Notify, Semaphore, SemaphorePermit};

/// The lanes writes travel in, each with its own bound on attempts in flight, so that a burst
/// of one kind never queues another behind it. When a zone loses 250 nodes in one monitor pass,
/// the pass also marks 7 500 pods NotReady and records as many Events; sharing one queue (or
/// an unbounded free-for-all on one connection pool), the nodes' Unknown conditions and taints
/// waited seconds behind those pod writes. Node writes are few and decide everything after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Lane {
    /// NoExecute taints (and the NoSchedule taint a zone's next NoExecute taint waits for):
    /// few (a zone releases them at its rate), and each decides what follows; in a lane of
    /// their own so that they never wait for a permit behind a mass failure's other node
    /// writes, which would put them back in line behind writes of a lower priority.
    Taints,
    /// Node conditions (Unknown marks) and labels.
    Nodes,
    /// The other NoSchedule condition taints: one per Unknown mark that lands, so as many as
    /// the marks, and after them; in a lane of their own for the same reason (with the
    /// NoExecute taints, they held the lane's 16 permits while they waited for tokens behind
    /// the marks, and a zone's first taint waited 2 s behind them at 1 000 nodes).
    ConditionTaints,
    /// Pod deletions and evictions: each is due at a precise time.
    Evictions,
    /// Pods' Ready=False.
    PodStatus,
    /// Kubernetes Events: best effort.
    Events,
}

impl Lane {
    pub(super) const ALL: [Lane; 6] = [
        Lane::Taints,
        Lane::Nodes,
        Lane::ConditionTaints,
        Lane::Evictions,
        Lane::PodStatus,
        Lane::Events,
    ];

    /// Attempts in flight at most (an attempt is two to four requests).
    pub(super) fn width(self) -> usize {
        match self {
            Lane::Taints => 16,
            Lane::Nodes => 16,
            Lane::ConditionTaints => 16,
            Lane::Evictions => 32,
            Lane::PodStatus => 16,
            Lane::Events => 8,
        }
    }

    /// The lane's `name` in the `workqueue_*` metrics.
    pub(super) fn queue_name(self) -> &'static str {
        match self {
            Lane::Taints => "writer_taints",
            Lane::Nodes => "writer_nodes",
            Lane::ConditionTaints => "writer_condition_taints",
            Lane::Evictions => "writer_evictions",
            Lane::PodStatus => "writer_pod_status",
            Lane::Events => "writer_events",
        }
    }

    /// Whether the other lanes yield to this one (see `Priority`).
    pub(super) fn is_primary(self) -> bool {
        matches!(
            self,
            Lane::Taints | Lane::Nodes | Lane::ConditionTaints | Lane::Evictions
        )
    }

    /// Attempts that may start while a primary lane is busy; the rest of the width waits for
    /// the primary lanes to go idle. Pod marks keep a quarter: they take endpoints out of
    /// service, so they must not stall behind a long eviction wave; Events, best effort, one.
    pub(super) fn width_while_yielding(self) -> usize {
        match self {
            Lane::Taints | Lane::Nodes | Lane::ConditionTaints | Lane::Evictions => self.width(),
            Lane::PodStatus => 4,
            Lane::Events => 1,
        }
    }
}

/// Lets the secondary lanes (pod NotReady marks, Events) yield to the primary ones (node writes,
/// evictions). Node writes decide everything after them (taints, then evictions) and evictions
/// are due at precise times, but all lanes share one API server, and a zone outage's pod marks
/// and Events delayed its node writes by seconds without this (BENCHMARKS.md).
///
/// While any primary attempt is waiting for its lane or in flight, a secondary attempt that
/// holds its lane's permit starts only if it also gets one of its lane's few yielding slots
/// (`Lane::width_while_yielding`); otherwise it waits until the primary lanes go idle. A primary
/// attempt sleeping in a backoff does not count: nothing of it is on the server then.
///
/// Why a small width rather than "wait for idle, at most N seconds": the slots are always there,
/// so the secondary lanes progress however long the primary ones stay busy (no starvation, with
/// no timer to tune or to test), and the priority does not run out when the pressure lasts,
/// which is exactly when it matters (7 500 evictions due together keep the eviction lane busy
/// for seconds, and a 1 s cap would then put every pod mark and Event back on the server).
/// Attempts already in flight when a primary one arrives finish their few requests.
pub(super) struct Priority {
    /// Primary-lane attempts waiting for their lane's permit or in flight.
    busy: AtomicUsize,
    /// Notified when `busy` drops to zero.
    idle: Notify,
    /// Per lane (indexed by `Lane`), the slots a secondary lane may use while a primary one is
    /// busy.
    yielding: [Semaphore; Lane::ALL.len()],
}

/// A primary-lane attempt counted in `Priority::busy` until dropped.
pub(super) struct PrimaryBusy<'a>(&'a Priority);

impl Drop for PrimaryBusy<'_> {
    fn drop(&mut self) {
        if self.0.busy.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Priority {
    pub(super) fn new() -> Self {
        Priority {
            busy: AtomicUsize::new(0),
            idle: Notify::new(),
            yielding: Lane::ALL.map(|l| Semaphore::new(l.width_while_yielding())),
        }
    }

    pub(super) fn busy(&self) -> PrimaryBusy<'_> {
        self.busy.fetch_add(1, Ordering::SeqCst);
        PrimaryBusy(self)
    }

    /// Waits until a secondary-lane attempt may start: at once when no primary attempt is
    /// waiting or in flight, else when they all are done or a yielding slot of `lane` is free.
    /// The slot, if one was needed, is held for the attempt.
    pub(super) async fn turn(&self, lane: Lane) -> Option<SemaphorePermit<'_>> {
        loop {
            // Created before the check, so an idle notification in between is not missed.
            let idle = self.idle.notified();
            if self.busy.load(Ordering::SeqCst) == 0 {
                return None;
            }
            tokio::select! {
                _ = idle => {}
                // Never closed; should it be, the attempt goes ahead.
                slot = self.yielding[lane as usize].acquire() => return slot.ok(),
            }
        }
    }
}
