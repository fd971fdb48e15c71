//! Leader election decisions on a coordination.k8s.io Lease, as client-go's leaderelection does.
//!
//! Expiry is judged by when *this* process observed the lease record change (not by the
//! holder's renewTime), so clock skew between replicas does not matter.

use jiff::Timestamp;
use std::time::Duration;

/// The fields of a Lease's spec that leader election reads and writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRecord {
    pub holder: Option<String>,
    pub lease_duration: Duration,
    pub acquire_time: Option<Timestamp>,
    pub renew_time: Option<Timestamp>,
    pub transitions: i32,
}

/// What to do after reading the lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Write this record (create when there was none, else replace with the read
    /// resourceVersion): we take or keep the lease.
    Write(LeaseRecord),
    /// Someone else holds a lease that has not expired: stay standby.
    Follow { holder: String },
}

/// Leader-election memory of one candidate.
#[derive(Clone, Debug)]
pub struct Elector {
    // private fields chosen by the implementation
}

impl Elector {
    pub fn new(identity: &str, lease_duration: Duration) -> Self {
        todo!("{identity} {lease_duration:?}")
    }

    /// Decides from the lease as read now (`None` when it does not exist). A record held by
    /// someone else counts as expired only when it has not changed for `lease_duration` since we
    /// first observed it in that form; an empty holder is free. Taking over increments
    /// `transitions` and sets `acquire_time`; renewing keeps them and moves `renew_time`.
    pub fn decide(&mut self, current: Option<&LeaseRecord>, now: Timestamp) -> Decision {
        todo!("{current:?} {now}")
    }

    /// The record that releases the lease on shutdown (holder cleared, duration 1s), when we hold it.
    pub fn release(&self, current: &LeaseRecord, now: Timestamp) -> Option<LeaseRecord> {
        todo!("{current:?} {now}")
    }

    /// Whether a leader whose last successful renewal was at `last_renew` must stop acting at
    /// `now` (the renew deadline has passed).
    pub fn renew_deadline_passed(last_renew: Timestamp, now: Timestamp, renew_deadline: Duration) -> bool {
        todo!("{last_renew} {now} {renew_deadline:?}")
    }
}
