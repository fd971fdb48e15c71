//! The staleness guard's rules (docs/differences.md#watch-staleness-guard): nothing is marked
//! Unknown while the Lease or Node watch may have silently stopped delivering.
//!
//! A watch that delivered nothing for half the grace period (and was not checked in that time)
//! is checked by reading its objects' versions afresh; the caller does the reads, these rules
//! decide what to read and what the answers mean.
//!
//! The guard also keeps the outage rule's evidence (docs/differences.md#control-plane-outages):
//! time during which the API server did not answer is no evidence of silence against a node,
//! so when answers come back every node's silence counts afresh from that instant.

use super::time;
use crate::settings::KUBELET_LEASE_RENEW;
use jiff::Timestamp;
use std::time::Duration;

/// The two watches whose data the heartbeat rules trust.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heartbeats {
    Leases,
    Nodes,
}

impl Heartbeats {
    /// In the order they are checked.
    pub const ALL: [Heartbeats; 2] = [Heartbeats::Leases, Heartbeats::Nodes];
}

/// What the guard knows of one watch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WatchFreshness {
    /// A (re)started watch whose first full list has not arrived yet: its data is not fresh.
    pub relisting: bool,
    /// Failed, and neither delivered nor found fresh by a read since: read at every pass until
    /// it is (a watch resumed with nothing to deliver is found fresh by its read).
    pub down: bool,
    /// Flagged stale by the guard, until found fresh or re-listed.
    pub stale: bool,
    /// When it last delivered an object event.
    pub last_delivery: Option<Timestamp>,
    /// When the guard last read its objects afresh.
    pub last_check: Option<Timestamp>,
}

impl WatchFreshness {
    /// A watch just (re)started: not fresh until listed, and given a full period before it can
    /// look quiet.
    pub fn restarted(&mut self, now: Timestamp) {
        self.relisting = true;
        self.last_delivery = Some(now);
    }

    /// Its full list arrived: as fresh as the server. Returns whether a stale flag came down.
    pub fn listed(&mut self) -> bool {
        self.relisting = false;
        std::mem::take(&mut self.stale)
    }
}

/// The Lease and Node watches, as the guard sees them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Guard {
    pub leases: WatchFreshness,
    pub nodes: WatchFreshness,
    /// When the API server was first seen not answering, in an episode not yet over.
    pub away_since: Option<Timestamp>,
}

/// How long a watch may stay quiet before it is read afresh: half the grace period. The Lease
/// watch sooner with a short grace period: a hang from S holds back the renewal of a node that
/// renewed just before S, which looks silent after S + grace - renewal interval; the read must
/// have started (at the first pass, within a `period`, after the limit) early enough to be
/// answered late, more than `slow_answer` after it was sent, by then. Cheap wherever it can
/// happen at all: a Lease watch is quiet for seconds only in a small cluster.
pub fn quiet_limit(w: Heartbeats, grace: Duration, period: Duration) -> Duration {
    let half_grace = grace / 2;
    match w {
        Heartbeats::Nodes => half_grace,
        Heartbeats::Leases => grace
            .saturating_sub(KUBELET_LEASE_RENEW + slow_answer(grace) + period)
            .min(half_grace),
    }
}

/// An answer later than this is no answer: the server was not serving (a hang, a stalled
/// etcd), so what it held back may land right after it. A quarter of the grace period, at most
/// 5 s: a prompt list takes milliseconds, and the kubelets' renewals are due every 10 s.
/// Applied to the Lease list only: the Lease watch is never quiet for half a grace period while
/// a kubelet lives, whereas a quiet Node watch is ordinary, and a slow Node list mere load
/// (counted as an outage, it would restart every countdown at every check).
pub fn slow_answer(grace: Duration) -> Duration {
    (grace / 4).min(Duration::from_secs(5))
}

/// Before a monitor pass: trust the data, or read afresh first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// Whether the heartbeat data can be trusted.
    Verdict(bool),
    /// Read these afresh and `judge` the answers before the pass.
    Read(Vec<Heartbeats>),
}

/// What one read afresh showed of its watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding<E> {
    /// Up to date (or it delivered meanwhile, so it is not stalled).
    Fresh,
    /// The server moved on without it: restart the watch.
    MovedOn,
    /// The read failed: nothing can be confirmed.
    Unconfirmed(E),
    /// It re-lists, which brings it up to date: nothing to judge.
    Relisting,
}

impl Guard {
    pub fn watch(&self, w: Heartbeats) -> &WatchFreshness {
        match w {
            Heartbeats::Leases => &self.leases,
            Heartbeats::Nodes => &self.nodes,
        }
    }

    pub fn watch_mut(&mut self, w: Heartbeats) -> &mut WatchFreshness {
        match w {
            Heartbeats::Leases => &mut self.leases,
            Heartbeats::Nodes => &mut self.nodes,
        }
    }

    fn relisting(&self) -> bool {
        self.leases.relisting || self.nodes.relisting
    }

    /// A heartbeat watch failed at `now`; `unanswered`: it got no answer (cut, refused, 5xx),
    /// which is evidence of an outage (a 410 Gone or a 403 is an answer).
    pub fn watch_failed(&mut self, w: Heartbeats, now: Timestamp, unanswered: bool) {
        self.watch_mut(w).down = true;
        if unanswered {
            self.api_away(now);
        }
    }

    /// A heartbeat watch delivered at `now`: it is up.
    pub fn delivered(&mut self, w: Heartbeats, now: Timestamp) {
        let watch = self.watch_mut(w);
        watch.down = false;
        watch.last_delivery = Some(now);
    }

    /// What to do before a monitor pass at `now` (passes every `period`): a watch quiet for
    /// `quiet_limit` (and unchecked for as long) is read afresh, and counts as checked from
    /// `now`.
    pub fn check(&mut self, now: Timestamp, grace: Duration, period: Duration) -> Check {
        if self.relisting() {
            return Check::Verdict(false);
        }
        let mut to_read = Vec::new();
        for w in Heartbeats::ALL {
            let limit = quiet_limit(w, grace, period);
            let quiet = |t: Option<Timestamp>| t.is_none_or(|t| time::since(now, t) > limit);
            let watch = self.watch_mut(w);
            if watch.down || (quiet(watch.last_delivery) && quiet(watch.last_check)) {
                watch.last_check = Some(now);
                to_read.push(w);
            }
        }
        if to_read.is_empty() {
            Check::Verdict(true)
        } else {
            Check::Read(to_read)
        }
    }

    /// Evidence at `at` that the API server does not answer (a failed or slow request, a cut
    /// or stalled heartbeat watch): an episode begins, or goes on.
    pub fn api_away(&mut self, at: Timestamp) {
        self.away_since.get_or_insert(at);
    }

    /// Fresh answers are back (a trusted verdict, or a prompt answer to a standby): ends the
    /// episode in progress, returning when it began. The caller then counts every node's
    /// silence from now.
    pub fn api_answered(&mut self) -> Option<Timestamp> {
        self.away_since.take()
    }

    /// Judges the reads afresh started at `started` and answered at `answered`: `moved_on`
    /// says whether a listing shows objects the cache does not have. Updates the watches'
    /// flags and returns the verdict and what each read found (the caller restarts the watches
    /// that moved on, and reports). A read that failed or showed a stalled watch, and a Lease
    /// read answered later than `slow_answer`, are also evidence of an outage.
    pub fn judge<L, E>(
        &mut self,
        (started, answered): (Timestamp, Timestamp),
        grace: Duration,
        answers: Vec<(Heartbeats, Result<L, E>)>,
        moved_on: impl Fn(Heartbeats, &L) -> bool,
    ) -> (bool, Vec<(Heartbeats, Finding<E>)>) {
        let slow = time::since(answered, started) > slow_answer(grace);
        // A watch that re-lists (restarted while the reads were in flight) has no full data yet.
        let mut fresh = !self.relisting();
        let mut findings = Vec::with_capacity(answers.len());
        for (w, answer) in answers {
            if slow && w == Heartbeats::Leases {
                self.api_away(started);
            }
            let watch = self.watch_mut(w);
            if watch.relisting {
                // Its re-list brings it up to date; read afresh once it is quiet again.
                watch.last_check = None;
                findings.push((w, Finding::Relisting));
                continue;
            }
            // A watch that delivered while its read was in flight is not stalled, and its cache
            // may now be newer than the read, which would look like a moved-on server.
            let delivered = watch.last_delivery.is_some_and(|t| t >= started);
            let finding = match answer {
                _ if delivered => Finding::Fresh,
                Ok(listed) if moved_on(w, &listed) => Finding::MovedOn,
                Ok(_) => Finding::Fresh,
                Err(e) => Finding::Unconfirmed(e),
            };
            let watch = self.watch_mut(w);
            watch.stale = !matches!(finding, Finding::Fresh);
            watch.down &= watch.stale;
            if watch.stale {
                watch.last_check = None;
                fresh = false;
                self.api_away(started);
            }
            findings.push((w, finding));
        }
        // A watch down and not read this time is no fresher for the others' answers.
        let fresh = fresh && !self.leases.down && !self.nodes.down;
        (fresh, findings)
    }

    /// Reads afresh that will never be judged: the watches they read count as unchecked, so
    /// the next pass that finds them quiet reads them again.
    pub fn forget_reads(&mut self, reads: &[Heartbeats]) {
        for w in reads {
            self.watch_mut(*w).last_check = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(40);
    const PERIOD: Duration = Duration::from_secs(5);

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_000_000 + s).unwrap()
    }

    /// Both watches delivered at `t`, listed.
    fn guard_delivered_at(t: i64) -> Guard {
        let watch = WatchFreshness {
            last_delivery: Some(at(t)),
            ..Default::default()
        };
        Guard {
            leases: watch,
            nodes: watch,
            away_since: None,
        }
    }

    type Answer = Result<bool, &'static str>;

    /// Judges with answers, promptly answered, whose `Ok(moved)` says whether the server moved on.
    fn judge(
        guard: &mut Guard,
        started: i64,
        answers: Vec<(Heartbeats, Answer)>,
    ) -> (bool, Vec<(Heartbeats, Finding<&'static str>)>) {
        guard.judge((at(started), at(started)), GRACE, answers, |_, moved| {
            *moved
        })
    }

    #[test]
    fn a_relisting_watch_makes_the_data_untrusted_without_reading() {
        let mut guard = guard_delivered_at(0);
        guard.nodes.restarted(at(0));
        assert_eq!(guard.check(at(1), GRACE, PERIOD), Check::Verdict(false));
    }

    #[test]
    fn watches_that_delivered_within_half_the_grace_period_are_trusted_without_reading() {
        let mut guard = guard_delivered_at(0);
        assert_eq!(guard.check(at(20), GRACE, PERIOD), Check::Verdict(true));
    }

    #[test]
    fn a_watch_quiet_for_half_the_grace_period_is_read_once_then_trusted_until_quiet_again() {
        let mut guard = guard_delivered_at(0);
        guard.leases.last_delivery = Some(at(20));
        assert_eq!(
            guard.check(at(21), GRACE, PERIOD),
            Check::Read(vec![Heartbeats::Nodes])
        );
        assert_eq!(guard.nodes.last_check, Some(at(21)));
        assert_eq!(guard.check(at(30), GRACE, PERIOD), Check::Verdict(true));
        assert_eq!(
            guard.check(at(42), GRACE, PERIOD),
            Check::Read(vec![Heartbeats::Leases, Heartbeats::Nodes])
        );
    }

    #[test]
    fn a_read_showing_the_server_moved_on_flags_the_watch_stale_and_distrusts_the_data() {
        let mut guard = guard_delivered_at(0);
        let (fresh, findings) = judge(&mut guard, 30, vec![(Heartbeats::Nodes, Ok(true))]);
        assert!(!fresh);
        assert_eq!(findings, vec![(Heartbeats::Nodes, Finding::MovedOn)]);
        assert!(guard.nodes.stale);
        assert_eq!(guard.nodes.last_check, None, "read again at the next pass");
    }

    #[test]
    fn a_failed_read_confirms_nothing_and_distrusts_the_data() {
        let mut guard = guard_delivered_at(0);
        let (fresh, findings) = judge(&mut guard, 30, vec![(Heartbeats::Leases, Err("503"))]);
        assert!(!fresh);
        assert_eq!(
            findings,
            vec![(Heartbeats::Leases, Finding::Unconfirmed("503"))]
        );
        assert!(guard.leases.stale);
    }

    #[test]
    fn a_read_matching_the_cache_takes_the_stale_flag_down() {
        let mut guard = guard_delivered_at(0);
        guard.nodes.stale = true;
        let (fresh, findings) = judge(&mut guard, 30, vec![(Heartbeats::Nodes, Ok(false))]);
        assert!(fresh);
        assert_eq!(findings, vec![(Heartbeats::Nodes, Finding::Fresh)]);
        assert!(!guard.nodes.stale);
    }

    #[test]
    fn a_watch_that_delivered_while_its_read_was_in_flight_is_fresh_whatever_the_read_says() {
        let mut guard = guard_delivered_at(31);
        let (fresh, findings) = judge(
            &mut guard,
            30,
            vec![
                (Heartbeats::Nodes, Ok(true)),
                (Heartbeats::Leases, Err("x")),
            ],
        );
        assert!(fresh);
        assert!(findings.iter().all(|(_, f)| *f == Finding::Fresh));
    }

    #[test]
    fn a_watch_restarted_while_its_read_was_in_flight_is_not_judged_and_the_data_is_untrusted() {
        let mut guard = guard_delivered_at(0);
        guard.nodes.last_check = Some(at(30));
        guard.nodes.restarted(at(31));
        let (fresh, findings) = judge(&mut guard, 30, vec![(Heartbeats::Nodes, Ok(true))]);
        assert!(!fresh);
        assert_eq!(findings, vec![(Heartbeats::Nodes, Finding::Relisting)]);
        assert!(!guard.nodes.stale);
        assert_eq!(guard.nodes.last_check, None);
    }

    #[test]
    fn a_full_list_takes_the_stale_flag_down_and_says_so_once() {
        let mut guard = guard_delivered_at(0);
        guard.leases.stale = true;
        guard.leases.restarted(at(1));
        assert!(guard.leases.listed());
        assert!(!guard.leases.listed());
        assert!(!guard.leases.relisting);
    }

    #[test]
    fn a_prompt_read_matching_the_cache_is_no_evidence_of_an_outage() {
        let mut guard = guard_delivered_at(0);
        let (fresh, _) = judge(&mut guard, 30, vec![(Heartbeats::Leases, Ok(false))]);
        assert!(fresh);
        assert_eq!(guard.api_answered(), None);
    }

    #[test]
    fn a_failed_or_stalled_read_begins_an_outage_at_the_read_and_a_later_one_does_not_move_it() {
        for answer in [Err("503"), Ok(true)] {
            let mut guard = guard_delivered_at(0);
            judge(&mut guard, 30, vec![(Heartbeats::Leases, answer)]);
            judge(&mut guard, 40, vec![(Heartbeats::Leases, Err("503"))]);
            assert_eq!(guard.api_answered(), Some(at(30)));
            assert_eq!(
                guard.api_answered(),
                None,
                "the episode is over once answered"
            );
        }
    }

    #[test]
    fn a_read_answered_later_than_a_quarter_of_the_grace_period_is_an_outage_even_when_fresh() {
        // GRACE is 40 s: a quarter is 10 s, capped at 5 s.
        assert_eq!(slow_answer(GRACE), Duration::from_secs(5));
        assert_eq!(slow_answer(Duration::from_secs(12)), Duration::from_secs(3));
        let mut guard = guard_delivered_at(0);
        let answers = vec![(Heartbeats::Leases, Ok::<bool, &str>(false))];
        let (fresh, _) = guard.judge((at(30), at(35)), GRACE, answers.clone(), |_, m| *m);
        assert!(fresh);
        assert_eq!(guard.api_answered(), None, "5 s is not later than 5 s");
        let (fresh, _) = guard.judge((at(30), at(36)), GRACE, answers, |_, m| *m);
        assert!(fresh, "the data is as fresh as the answer");
        assert_eq!(guard.api_answered(), Some(at(30)));
    }

    #[test]
    fn the_lease_watch_is_read_soon_enough_to_see_a_hang_before_a_renewal_it_holds_looks_late() {
        let period = Duration::from_secs(2);
        let lease = |g| quiet_limit(Heartbeats::Leases, Duration::from_secs(g), period).as_secs();
        let nodes = |g| quiet_limit(Heartbeats::Nodes, Duration::from_secs(g), period).as_secs();
        // Grace 20 s, passes every 2 s: a hang from S is read by S + 5 s and counts once
        // answered after S + 10 s; a node renewing at S - 10 s looks silent only after that.
        assert_eq!(
            (lease(20), slow_answer(Duration::from_secs(20)).as_secs()),
            (3, 5)
        );
        assert_eq!(lease(30), 13);
        for g in [40, 50, 300] {
            assert_eq!(lease(g), g / 2, "half the grace period from {g} s on");
            assert_eq!(nodes(g), g / 2);
        }
        assert_eq!(nodes(20), 10);
        let five = Duration::from_secs(5);
        assert_eq!(
            quiet_limit(Heartbeats::Leases, Duration::from_secs(20), five),
            Duration::ZERO
        );
    }

    #[test]
    fn a_failed_watch_is_read_at_every_pass_and_trusted_once_read_fresh_or_delivering() {
        let mut guard = guard_delivered_at(0);
        guard.watch_failed(Heartbeats::Nodes, at(10), true);
        assert_eq!(
            guard.check(at(11), GRACE, PERIOD),
            Check::Read(vec![Heartbeats::Nodes])
        );
        let (fresh, _) = judge(&mut guard, 11, vec![(Heartbeats::Nodes, Err("refused"))]);
        assert!(!fresh);
        assert_eq!(
            guard.check(at(16), GRACE, PERIOD),
            Check::Read(vec![Heartbeats::Nodes])
        );
        // Resumed with nothing to deliver: its read finds it fresh.
        let (fresh, _) = judge(&mut guard, 16, vec![(Heartbeats::Nodes, Ok(false))]);
        assert!(fresh);
        assert!(!guard.nodes.down);
        assert_eq!(guard.api_answered(), Some(at(10)));
        // One answered 410 Gone: down until it delivers, but no outage.
        guard.watch_failed(Heartbeats::Leases, at(20), false);
        assert!(matches!(guard.check(at(21), GRACE, PERIOD), Check::Read(_)));
        guard.delivered(Heartbeats::Leases, at(22));
        assert!(!guard.leases.down);
        assert_eq!(guard.api_answered(), None);
    }

    #[test]
    fn a_slow_node_list_is_load_not_an_outage() {
        let mut guard = guard_delivered_at(0);
        let answers = vec![(Heartbeats::Nodes, Ok::<bool, &str>(false))];
        let (fresh, _) = guard.judge((at(30), at(38)), GRACE, answers, |_, m| *m);
        assert!(fresh);
        assert_eq!(guard.api_answered(), None);
    }

    #[test]
    fn reads_never_judged_leave_their_watches_unchecked() {
        let mut guard = guard_delivered_at(0);
        assert!(matches!(guard.check(at(30), GRACE, PERIOD), Check::Read(_)));
        guard.forget_reads(&[Heartbeats::Nodes]);
        assert_eq!(guard.nodes.last_check, None);
        assert_eq!(guard.leases.last_check, Some(at(30)));
    }
}
