//! Leader election decisions on a coordination.k8s.io Lease, as client-go's leaderelection does.
//!
//! Expiry is judged by when *this* process observed the lease record change (not by the
//! holder's renewTime), so clock skew between replicas does not matter.

use crate::logic::time;
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
    identity: String,
    lease_duration: Duration,
    /// The record as last read (or written by us), in the form we last saw it.
    observed: Option<LeaseRecord>,
    /// When we first saw `observed` in its current form.
    observed_at: Option<Timestamp>,
}

impl Elector {
    pub fn new(identity: &str, lease_duration: Duration) -> Self {
        Elector {
            identity: identity.to_string(),
            lease_duration,
            observed: None,
            observed_at: None,
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The record last observed and when we first saw it in that form.
    pub fn observed(&self) -> Option<(&LeaseRecord, Timestamp)> {
        self.observed.as_ref().zip(self.observed_at)
    }

    /// Decides from the lease as read now (`None` when it does not exist). A record held by
    /// someone else counts as expired only when it has not changed for `lease_duration` since we
    /// first observed it in that form; an empty holder is free. Taking over increments
    /// `transitions` and sets `acquire_time`; renewing keeps them and moves `renew_time`.
    pub fn decide(&mut self, current: Option<&LeaseRecord>, now: Timestamp) -> Decision {
        let Some(current) = current else {
            return Decision::Write(LeaseRecord {
                holder: Some(self.identity.clone()),
                lease_duration: self.lease_duration,
                acquire_time: Some(now),
                renew_time: Some(now),
                transitions: 0,
            });
        };
        self.observe(current, now);
        match current.holder.as_deref() {
            Some(holder) if holder == self.identity => Decision::Write(LeaseRecord {
                holder: Some(self.identity.clone()),
                lease_duration: self.lease_duration,
                acquire_time: current.acquire_time.or(Some(now)),
                renew_time: Some(now),
                transitions: current.transitions,
            }),
            Some(holder) if !holder.is_empty() => {
                let observed_at = self.observed_at.unwrap_or(now);
                if now < time::add(observed_at, current.lease_duration) {
                    Decision::Follow {
                        holder: holder.to_string(),
                    }
                } else {
                    self.take_over(current, now)
                }
            }
            _ => self.take_over(current, now),
        }
    }

    /// Notes a record we wrote successfully (optional): it becomes the observed form, as of
    /// `now`. Without it the next `decide` observes the written record when it reads it back.
    pub fn wrote(&mut self, record: &LeaseRecord, now: Timestamp) {
        self.observed = Some(record.clone());
        self.observed_at = Some(now);
    }

    /// The record that releases the lease on shutdown (holder cleared, duration 1s), when we hold it.
    pub fn release(&self, current: &LeaseRecord, now: Timestamp) -> Option<LeaseRecord> {
        (current.holder.as_deref() == Some(self.identity.as_str())).then(|| LeaseRecord {
            holder: None,
            lease_duration: Duration::from_secs(1),
            acquire_time: Some(now),
            renew_time: Some(now),
            transitions: current.transitions,
        })
    }

    /// Whether a leader whose last successful renewal was at `last_renew` must stop acting at
    /// `now` (the renew deadline has passed).
    pub fn renew_deadline_passed(
        last_renew: Timestamp,
        now: Timestamp,
        renew_deadline: Duration,
    ) -> bool {
        now >= time::add(last_renew, renew_deadline)
    }

    fn observe(&mut self, current: &LeaseRecord, now: Timestamp) {
        if self.observed.as_ref() != Some(current) {
            self.observed = Some(current.clone());
            self.observed_at = Some(now);
        }
    }

    fn take_over(&self, current: &LeaseRecord, now: Timestamp) -> Decision {
        Decision::Write(LeaseRecord {
            holder: Some(self.identity.clone()),
            lease_duration: self.lease_duration,
            acquire_time: Some(now),
            renew_time: Some(now),
            transitions: current.transitions.saturating_add(1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(15);

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    fn held_by(holder: &str, renew: i64, transitions: i32) -> LeaseRecord {
        LeaseRecord {
            holder: Some(holder.to_string()),
            lease_duration: LEASE,
            acquire_time: Some(t(-100)),
            renew_time: Some(t(renew)),
            transitions,
        }
    }

    fn me() -> Elector {
        Elector::new("me", LEASE)
    }

    fn wrote_holder(d: &Decision) -> Option<&str> {
        match d {
            Decision::Write(r) => r.holder.as_deref(),
            Decision::Follow { .. } => None,
        }
    }

    #[test]
    fn a_missing_lease_is_created_with_us_as_holder() {
        let mut e = me();
        assert_eq!(
            e.decide(None, t(0)),
            Decision::Write(LeaseRecord {
                holder: Some("me".into()),
                lease_duration: LEASE,
                acquire_time: Some(t(0)),
                renew_time: Some(t(0)),
                transitions: 0,
            })
        );
    }

    #[test]
    fn our_own_lease_is_renewed_keeping_acquire_time_and_transitions() {
        let mut e = me();
        let current = held_by("me", 0, 4);
        assert_eq!(
            e.decide(Some(&current), t(2)),
            Decision::Write(LeaseRecord {
                renew_time: Some(t(2)),
                ..current
            })
        );
    }

    #[test]
    fn our_own_lease_is_renewed_even_long_after_its_renew_time() {
        let mut e = me();
        let current = held_by("me", -3600, 1);
        let d = e.decide(Some(&current), t(0));
        assert_eq!(wrote_holder(&d), Some("me"));
    }

    #[test]
    fn a_lease_held_by_another_is_taken_over_only_after_it_stayed_unchanged_for_its_duration() {
        let mut e = me();
        let other = held_by("other", 0, 2);
        let follow = Decision::Follow {
            holder: "other".into(),
        };
        assert_eq!(e.decide(Some(&other), t(0)), follow);
        assert_eq!(e.decide(Some(&other), t(10)), follow);
        assert_eq!(e.decide(Some(&other), t(14)), follow);
        assert_eq!(
            e.decide(Some(&other), t(15)),
            Decision::Write(LeaseRecord {
                holder: Some("me".into()),
                lease_duration: LEASE,
                acquire_time: Some(t(15)),
                renew_time: Some(t(15)),
                transitions: 3,
            })
        );
    }

    #[test]
    fn a_renewal_by_the_holder_restarts_the_wait() {
        let mut e = me();
        let follow = Decision::Follow {
            holder: "other".into(),
        };
        assert_eq!(e.decide(Some(&held_by("other", 0, 0)), t(0)), follow);
        assert_eq!(e.decide(Some(&held_by("other", 10, 0)), t(10)), follow);
        assert_eq!(e.decide(Some(&held_by("other", 10, 0)), t(24)), follow);
        let d = e.decide(Some(&held_by("other", 10, 0)), t(25));
        assert_eq!(wrote_holder(&d), Some("me"));
    }

    #[test]
    fn the_holders_clock_does_not_matter_only_when_we_saw_the_record_change() {
        let mut e = me();
        // Renewed "an hour ago" by the holder's clock: still valid until we saw it unchanged.
        let stale_looking = held_by("other", -3600, 0);
        assert_eq!(
            e.decide(Some(&stale_looking), t(0)),
            Decision::Follow {
                holder: "other".into()
            }
        );
        // Renewed "in the future" by the holder's clock: expires all the same.
        let mut e = me();
        let future_looking = held_by("other", 3600, 0);
        e.decide(Some(&future_looking), t(0));
        let d = e.decide(Some(&future_looking), t(15));
        assert_eq!(wrote_holder(&d), Some("me"));
    }

    #[test]
    fn the_records_own_lease_duration_decides_expiry() {
        let mut e = me();
        let long = LeaseRecord {
            lease_duration: Duration::from_secs(60),
            ..held_by("other", 0, 0)
        };
        e.decide(Some(&long), t(0));
        assert!(matches!(
            e.decide(Some(&long), t(59)),
            Decision::Follow { .. }
        ));
        let d = e.decide(Some(&long), t(60));
        assert_eq!(
            d,
            Decision::Write(LeaseRecord {
                holder: Some("me".into()),
                lease_duration: LEASE,
                acquire_time: Some(t(60)),
                renew_time: Some(t(60)),
                transitions: 1,
            })
        );
    }

    #[test]
    fn a_lease_without_holder_is_taken_at_once() {
        for holder in [None, Some(String::new())] {
            let mut e = me();
            let free = LeaseRecord {
                holder,
                ..held_by("x", 0, 5)
            };
            assert_eq!(
                e.decide(Some(&free), t(0)),
                Decision::Write(LeaseRecord {
                    holder: Some("me".into()),
                    lease_duration: LEASE,
                    acquire_time: Some(t(0)),
                    renew_time: Some(t(0)),
                    transitions: 6,
                })
            );
        }
    }

    #[test]
    fn a_released_lease_is_taken_by_the_next_candidate_at_once() {
        let leader = Elector::new("a", LEASE);
        let held = held_by("a", 0, 1);
        let released = leader.release(&held, t(1)).unwrap();
        let mut next = Elector::new("b", LEASE);
        let d = next.decide(Some(&released), t(1));
        assert_eq!(wrote_holder(&d), Some("b"));
        match d {
            Decision::Write(r) => assert_eq!(r.transitions, 2),
            Decision::Follow { .. } => unreachable!(),
        }
    }

    #[test]
    fn releasing_clears_the_holder_and_shortens_the_lease() {
        let e = me();
        let held = held_by("me", 0, 3);
        assert_eq!(
            e.release(&held, t(7)),
            Some(LeaseRecord {
                holder: None,
                lease_duration: Duration::from_secs(1),
                acquire_time: Some(t(7)),
                renew_time: Some(t(7)),
                transitions: 3,
            })
        );
    }

    #[test]
    fn a_lease_held_by_another_is_not_released() {
        let e = me();
        assert_eq!(e.release(&held_by("other", 0, 3), t(7)), None);
        let free = LeaseRecord {
            holder: None,
            ..held_by("x", 0, 0)
        };
        assert_eq!(e.release(&free, t(7)), None);
    }

    #[test]
    fn a_record_that_changes_back_counts_as_a_change() {
        let mut e = me();
        let a = held_by("other", 0, 0);
        let b = held_by("other", 5, 0);
        e.decide(Some(&a), t(0));
        e.decide(Some(&b), t(5));
        assert!(matches!(e.decide(Some(&a), t(10)), Decision::Follow { .. }));
        assert!(matches!(e.decide(Some(&a), t(24)), Decision::Follow { .. }));
        assert_eq!(wrote_holder(&e.decide(Some(&a), t(25))), Some("me"));
    }

    #[test]
    fn after_losing_the_lease_we_wait_a_full_duration_before_taking_it_back() {
        let mut e = me();
        e.decide(Some(&held_by("me", 0, 0)), t(0));
        let theirs = held_by("other", 3, 1);
        assert!(matches!(
            e.decide(Some(&theirs), t(4)),
            Decision::Follow { .. }
        ));
        assert!(matches!(
            e.decide(Some(&theirs), t(18)),
            Decision::Follow { .. }
        ));
        assert_eq!(wrote_holder(&e.decide(Some(&theirs), t(19))), Some("me"));
    }

    #[test]
    fn a_failed_takeover_is_retried_while_the_record_stays_the_same() {
        let mut e = me();
        let other = held_by("other", 0, 0);
        e.decide(Some(&other), t(0));
        assert_eq!(wrote_holder(&e.decide(Some(&other), t(15))), Some("me"));
        // The write failed; the same record is read again.
        assert_eq!(wrote_holder(&e.decide(Some(&other), t(17))), Some("me"));
    }

    #[test]
    fn the_observed_record_is_remembered_with_when_it_was_first_seen() {
        let mut e = me();
        assert!(e.observed().is_none());
        let other = held_by("other", 0, 0);
        e.decide(Some(&other), t(3));
        e.decide(Some(&other), t(8));
        assert_eq!(e.observed(), Some((&other, t(3))));
        let mine = held_by("me", 9, 1);
        e.wrote(&mine, t(9));
        assert_eq!(e.observed(), Some((&mine, t(9))));
        assert_eq!(e.identity(), "me");
    }

    #[test]
    fn the_renew_deadline_passes_exactly_at_last_renewal_plus_deadline() {
        let deadline = Duration::from_secs(10);
        assert!(!Elector::renew_deadline_passed(t(0), t(0), deadline));
        assert!(!Elector::renew_deadline_passed(t(0), t(9), deadline));
        assert!(Elector::renew_deadline_passed(t(0), t(10), deadline));
        assert!(Elector::renew_deadline_passed(t(0), t(100), deadline));
    }

    #[test]
    fn a_renewal_in_the_future_has_not_passed_its_deadline() {
        assert!(!Elector::renew_deadline_passed(
            t(50),
            t(0),
            Duration::from_secs(10)
        ));
    }
}
