//! The per-zone, rate-limited, timed queue of nodes waiting for their NoExecute taint.
//!
//! Mirrors upstream's `RateLimitedTimedQueue` (token bucket with burst 1 that starts full,
//! unique FIFO ordered by process time) without two of its bugs: a token is spent only when the
//! head of the queue is actually due, and a stopped limiter resumes for any positive rate,
//! including exactly 1. An entry may also be not ready yet (`Outcome::NotYet`): it keeps its
//! place and spends no token, and the entries behind it are tried instead.

use crate::logic::time;
use jiff::Timestamp;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// A token bucket with burst 1, driven by `now`. A rate of 0 (or less) never accepts.
///
/// With burst 1 the whole state is the instant the next token is (or was) available: before it
/// the bucket is empty, from it on it holds its one token. Taking the token at `now` empties it
/// until `now + 1/qps`. This is exact: no fractional tokens accumulate, so nothing drifts.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    /// Tokens per second; `0.0` for a stopped bucket (any rate <= 0 or NaN).
    qps: f64,
    /// Time between two tokens (at least 1ns); `None` for a stopped bucket.
    interval: Option<Duration>,
    /// When the bucket holds its token (again).
    available_at: Timestamp,
}

impl TokenBucket {
    /// A full bucket (one token).
    pub fn new(qps: f64, now: Timestamp) -> Self {
        let qps = if qps > 0.0 { qps } else { 0.0 };
        TokenBucket {
            qps,
            interval: interval(qps),
            available_at: now,
        }
    }
    /// An empty bucket: its first token comes `1/qps` after `now`.
    pub fn new_empty(qps: f64, now: Timestamp) -> Self {
        let mut bucket = TokenBucket::new(qps, now);
        bucket.try_accept(now);
        bucket
    }
    /// Tokens per second; `0.0` when stopped (the rate given was <= 0).
    pub fn qps(&self) -> f64 {
        self.qps
    }
    /// Takes a token if one is available at `now`.
    pub fn try_accept(&mut self, now: Timestamp) -> bool {
        match self.interval {
            Some(interval) if now >= self.available_at => {
                self.available_at = time::add(now, interval);
                true
            }
            _ => false,
        }
    }
    /// Whether a token is available at `now`, without taking it.
    pub fn has_token(&self, now: Timestamp) -> bool {
        self.interval.is_some() && now >= self.available_at
    }
    /// When the next token is available (`now` or earlier when one is there); `None` when
    /// stopped.
    pub fn next_token_at(&self) -> Option<Timestamp> {
        self.interval.map(|_| self.available_at)
    }
    /// Counts the next token from `at` (if that is later than it would come): what the token
    /// paid for took effect only then.
    pub fn count_from(&mut self, at: Timestamp) {
        if let Some(interval) = self.interval {
            self.available_at = self.available_at.max(time::add(at, interval));
        }
    }
}

/// `1/qps` rounded to the nanosecond, at least 1ns (so a bucket never hands out two tokens at
/// the same instant); `None` for a stopped rate, `Duration::MAX` when too slow to represent.
fn interval(qps: f64) -> Option<Duration> {
    if qps.is_nan() || qps <= 0.0 {
        return None;
    }
    let nanos = (1e9 / qps).round();
    let nanos = if nanos >= u64::MAX as f64 {
        u64::MAX
    } else {
        nanos as u64
    };
    Some(Duration::from_nanos(nanos.max(1)))
}

/// A node waiting in a zone queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queued {
    pub node: String,
    pub uid: String,
    pub added_at: Timestamp,
    pub process_at: Timestamp,
}

/// What processing a queued node came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done: leaves the queue, but stays remembered until `remove` (so `add` is a no-op).
    Done,
    /// Done by a write that is on its way: as `Done`, and the queue hands out nothing more
    /// until it lands (`ZoneQueue::landed`) or is given up (`ZoneQueue::release`).
    Sent,
    /// Try again after this long (the entry stays, its process time moves).
    RetryAfter(Duration),
    /// Not to be processed yet, and nothing was done: the entry keeps its place, no token is
    /// spent, and the entries behind it are tried; it is tried again at the next pass.
    NotYet,
}

/// Position of a waiting entry: process time, then insertion sequence.
type Slot = (Timestamp, u64);

#[derive(Clone, Debug)]
pub struct ZoneQueue {
    limiter: TokenBucket,
    /// Waiting entries in processing order.
    waiting: BTreeMap<Slot, Queued>,
    /// Every known node: `Some(slot)` while waiting, `None` once done (until `remove`). Only
    /// looked up, never iterated (so its order cannot matter): a hash map, because the monitor
    /// pass asks it about every node on every pass.
    known: HashMap<String, Option<Slot>>,
    next_seq: u64,
    /// The node whose taint was handed out last and has not landed yet: nothing more is handed
    /// out until it lands (`landed`) or is given up (`release`), so that two taints of the
    /// zone, however long each waits on its way, land at least a token apart.
    in_flight: Option<String>,
}

impl ZoneQueue {
    pub fn new(qps: f64, now: Timestamp) -> Self {
        ZoneQueue {
            limiter: TokenBucket::new(qps, now),
            waiting: BTreeMap::new(),
            known: HashMap::new(),
            next_seq: 0,
            in_flight: None,
        }
    }
    /// Queues the node with `added_at = process_at = now`; a no-op returning false when it is
    /// queued or remembered as done.
    pub fn add(&mut self, node: &str, uid: &str, now: Timestamp) -> bool {
        if self.known.contains_key(node) {
            return false;
        }
        self.insert(Queued {
            node: node.to_string(),
            uid: uid.to_string(),
            added_at: now,
            process_at: now,
        });
        true
    }
    /// Queues the node afresh, as `remove` then `add` would (`added_at = process_at = now`,
    /// behind everything queued so far), but reusing a waiting entry instead of allocating a
    /// new one: the monitor pass does this for every untainted not-Ready node on every pass.
    pub fn requeue(&mut self, node: &str, uid: &str, now: Timestamp) {
        if let Some(Some(known)) = self.known.get_mut(node)
            && let Some(mut entry) = self.waiting.remove(known)
        {
            let slot = (now, self.next_seq);
            self.next_seq += 1;
            *known = slot;
            if entry.uid != uid {
                entry.uid = uid.to_string();
            }
            entry.added_at = now;
            entry.process_at = now;
            self.waiting.insert(slot, entry);
            return;
        }
        self.remove(node);
        self.add(node, uid, now);
    }
    /// Forgets the node entirely (queued or done); true when it was known.
    pub fn remove(&mut self, node: &str) -> bool {
        match self.known.remove(node) {
            Some(Some(slot)) => {
                self.waiting.remove(&slot);
                true
            }
            Some(None) => true,
            None => false,
        }
    }
    /// Whether the node is queued or remembered as done.
    pub fn contains(&self, node: &str) -> bool {
        self.known.contains_key(node)
    }
    /// Whether the node was processed to `Done` and is remembered (not waiting any more).
    pub fn is_done(&self, node: &str) -> bool {
        matches!(self.known.get(node), Some(None))
    }
    /// The waiting entry of the node, if it is waiting.
    pub fn get(&self, node: &str) -> Option<&Queued> {
        self.known
            .get(node)
            .copied()
            .flatten()
            .and_then(|slot| self.waiting.get(&slot))
    }
    /// The waiting entries in processing order.
    pub fn waiting(&self) -> impl Iterator<Item = &Queued> {
        self.waiting.values()
    }
    /// Number of nodes waiting (not counting those remembered as done).
    pub fn len(&self) -> usize {
        self.waiting.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn qps(&self) -> f64 {
        self.limiter.qps()
    }
    /// The queue's token bucket.
    pub fn limiter(&self) -> &TokenBucket {
        &self.limiter
    }
    /// Changes the rate. Same rate: no-op. A new bucket for a positive rate starts empty when
    /// the old one had no token at `now`, full otherwise. Rate <= 0 stops the queue.
    pub fn swap_limiter(&mut self, qps: f64, now: Timestamp) {
        let qps = if qps > 0.0 { qps } else { 0.0 };
        if self.limiter.qps() == qps {
            return;
        }
        self.limiter = if self.limiter.has_token(now) {
            TokenBucket::new(qps, now)
        } else {
            TokenBucket::new_empty(qps, now)
        };
    }
    /// The node whose handed-out taint has not landed yet, if any.
    pub fn in_flight(&self) -> Option<&str> {
        self.in_flight.as_deref()
    }
    /// The taint of `node` landed at `at`: the zone's next token counts from then.
    pub fn landed(&mut self, node: &str, at: Timestamp) {
        if self.in_flight.as_deref() == Some(node) {
            self.in_flight = None;
            self.limiter.count_from(at);
        }
    }
    /// The taint of the node in flight will not land (its node is gone, back, or the change
    /// was replaced): the queue goes on, its next token counted from when it was handed out.
    pub fn release(&mut self) {
        self.in_flight = None;
    }
    /// Processes due entries in process-time order (ties: insertion order) while tokens last:
    /// `f` is called only while a token is there, for an entry whose process time has come,
    /// and the token is spent by the call itself (so in the same call as what `f` does with
    /// it), unless `f` answers `NotYet`: then the entry keeps its place and the token, and the
    /// next due entry is tried.
    pub fn try_process(&mut self, now: Timestamp, mut f: impl FnMut(&Queued) -> Outcome) {
        if self.in_flight.is_some() {
            return;
        }
        // The last entry found not ready in this pass: the walk goes on behind it.
        let mut after: Option<Slot> = None;
        loop {
            let next = match after {
                None => self.waiting.iter().next(),
                Some(slot) => self
                    .waiting
                    .range((std::ops::Bound::Excluded(slot), std::ops::Bound::Unbounded))
                    .next(),
            };
            let Some((&slot, head)) = next else {
                return;
            };
            if head.process_at > now || !self.limiter.has_token(now) {
                return;
            }
            let retry = match f(head) {
                Outcome::NotYet => {
                    after = Some(slot);
                    continue;
                }
                Outcome::Sent => {
                    self.in_flight = Some(head.node.clone());
                    None
                }
                Outcome::Done => None,
                Outcome::RetryAfter(wait) => Some(wait),
            };
            self.limiter.try_accept(now);
            let Some(mut entry) = self.waiting.remove(&slot) else {
                return;
            };
            match retry {
                None => {
                    self.known.insert(entry.node, None);
                }
                Some(wait) => {
                    entry.process_at = time::add(now, wait);
                    self.insert(entry);
                }
            }
        }
    }

    fn insert(&mut self, entry: Queued) {
        let slot = (entry.process_at, self.next_seq);
        self.next_seq += 1;
        match self.known.get_mut(&entry.node) {
            Some(known) => *known = Some(slot),
            None => {
                self.known.insert(entry.node.clone(), Some(slot));
            }
        }
        self.waiting.insert(slot, entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: i64 = 1_700_000_000;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(BASE + secs).unwrap()
    }

    fn t_ms(ms: i64) -> Timestamp {
        Timestamp::from_millisecond(BASE * 1000 + ms).unwrap()
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Runs one pass that marks every due node done, returning the nodes processed.
    fn pass(q: &mut ZoneQueue, now: Timestamp) -> Vec<String> {
        let mut seen = Vec::new();
        q.try_process(now, |e| {
            seen.push(e.node.clone());
            Outcome::Done
        });
        seen
    }

    #[test]
    fn a_new_bucket_holds_one_token_at_once() {
        let mut b = TokenBucket::new(0.1, t(0));
        assert!(b.has_token(t(0)));
        assert!(b.try_accept(t(0)));
        assert!(!b.try_accept(t(0)));
    }

    #[test]
    fn after_a_token_is_taken_the_next_comes_exactly_one_interval_later() {
        let mut b = TokenBucket::new(0.1, t(0));
        assert!(b.try_accept(t(3)));
        assert!(!b.try_accept(t_ms(12_999)));
        assert_eq!(b.next_token_at(), Some(t(13)));
        assert!(b.try_accept(t(13)));
        assert_eq!(b.next_token_at(), Some(t(23)));
    }

    #[test]
    fn the_bucket_never_holds_more_than_one_token() {
        let mut b = TokenBucket::new(1.0, t(0));
        assert!(b.try_accept(t(100)));
        assert!(!b.try_accept(t(100)));
        assert!(b.try_accept(t(101)));
        assert!(!b.try_accept(t(101)));
    }

    #[test]
    fn looking_at_the_token_does_not_take_it() {
        let mut b = TokenBucket::new(0.1, t(0));
        assert!(b.has_token(t(0)));
        assert!(b.has_token(t(0)));
        assert!(b.try_accept(t(0)));
        assert!(!b.has_token(t(9)));
        assert!(b.has_token(t(10)));
    }

    #[test]
    fn a_rate_of_zero_or_less_never_accepts() {
        for qps in [0.0, -1.0, f64::NAN, f64::NEG_INFINITY] {
            let mut b = TokenBucket::new(qps, t(0));
            assert!(!b.has_token(t(0)));
            assert!(!b.try_accept(t(0)));
            assert!(!b.try_accept(t(1_000_000)));
            assert_eq!(b.qps(), 0.0);
            assert_eq!(b.next_token_at(), None);
        }
    }

    #[test]
    fn a_bucket_reports_its_rate() {
        assert_eq!(TokenBucket::new(0.01, t(0)).qps(), 0.01);
    }

    #[test]
    fn the_rate_does_not_drift_over_an_hour_of_polling() {
        let mut b = TokenBucket::new(0.1, t(0));
        let mut accepted = Vec::new();
        for step in 0..=36_000 {
            let now = t_ms(step * 100);
            if b.try_accept(now) {
                accepted.push(now);
            }
        }
        assert_eq!(accepted.len(), 361);
        for (i, at) in accepted.iter().enumerate() {
            assert_eq!(*at, t(10 * i as i64));
        }
    }

    #[test]
    fn a_rate_without_an_exact_interval_is_rounded_to_the_nanosecond() {
        let mut b = TokenBucket::new(3.0, t(0));
        assert!(b.try_accept(t(0)));
        let next = b.next_token_at().unwrap();
        assert_eq!(next.duration_since(t(0)).as_nanos(), 333_333_333);
    }

    #[test]
    fn even_a_huge_rate_gives_one_token_per_instant() {
        let mut b = TokenBucket::new(f64::INFINITY, t(0));
        assert!(b.try_accept(t(0)));
        assert!(!b.try_accept(t(0)));
        assert!(b.try_accept(t(1)));
    }

    #[test]
    fn a_tiny_rate_gives_its_first_token_and_then_saturates() {
        let mut b = TokenBucket::new(1e-300, t(0));
        assert!(b.try_accept(t(0)));
        assert!(!b.try_accept(t(1_000_000_000)));
    }

    #[test]
    fn an_empty_bucket_gets_its_first_token_after_one_interval() {
        let mut b = TokenBucket::new_empty(0.5, t(0));
        assert!(!b.try_accept(t_ms(1_999)));
        assert!(b.try_accept(t(2)));
    }

    #[test]
    fn a_new_queue_taints_its_first_node_at_once_then_one_per_ten_seconds() {
        let mut q = ZoneQueue::new(0.1, t(0));
        for n in ["a", "b", "c"] {
            assert!(q.add(n, &format!("uid-{n}"), t(0)));
        }
        assert_eq!(pass(&mut q, t(0)), ["a"]);
        assert!(pass(&mut q, t(5)).is_empty());
        assert!(pass(&mut q, t_ms(9_900)).is_empty());
        assert_eq!(pass(&mut q, t(10)), ["b"]);
        assert_eq!(pass(&mut q, t(20)), ["c"]);
        assert!(pass(&mut q, t(30)).is_empty());
        assert!(q.is_empty());
    }

    #[test]
    fn the_callback_sees_the_queued_entry() {
        let mut q = ZoneQueue::new(0.1, t(0));
        q.add("a", "uid-a", t(2));
        let mut seen = None;
        q.try_process(t(3), |e| {
            seen = Some(e.clone());
            Outcome::Done
        });
        assert_eq!(
            seen,
            Some(Queued {
                node: "a".into(),
                uid: "uid-a".into(),
                added_at: t(2),
                process_at: t(2),
            })
        );
    }

    #[test]
    fn adding_a_queued_node_again_is_a_no_op_and_keeps_its_place() {
        let mut q = ZoneQueue::new(1.0, t(0));
        assert!(q.add("a", "1", t(0)));
        assert!(q.add("b", "2", t(0)));
        assert!(!q.add("a", "other-uid", t(5)));
        assert_eq!(q.len(), 2);
        assert_eq!(q.get("a").unwrap().uid, "1");
        assert_eq!(q.get("a").unwrap().added_at, t(0));
        assert_eq!(pass(&mut q, t(5)), ["a"]);
    }

    /// The waiting entries as (node, uid, added_at, process_at), in processing order.
    fn entries(q: &ZoneQueue) -> Vec<(String, String, Timestamp, Timestamp)> {
        q.waiting()
            .map(|e| (e.node.clone(), e.uid.clone(), e.added_at, e.process_at))
            .collect()
    }

    /// Two queues with the same history, one re-queuing `node` with `requeue`, the other with
    /// `remove` then `add`: they must end up the same.
    fn requeue_matches_remove_then_add(history: impl Fn(&mut ZoneQueue), node: &str, uid: &str) {
        let mut fast = ZoneQueue::new(0.1, t(0));
        let mut slow = ZoneQueue::new(0.1, t(0));
        history(&mut fast);
        history(&mut slow);
        fast.requeue(node, uid, t(30));
        slow.remove(node);
        slow.add(node, uid, t(30));
        assert_eq!(entries(&fast), entries(&slow));
        assert_eq!(fast.contains(node), slow.contains(node));
        assert_eq!(fast.is_done(node), slow.is_done(node));
        assert_eq!(pass(&mut fast, t(40)), pass(&mut slow, t(40)));
        assert_eq!(entries(&fast), entries(&slow));
    }

    #[test]
    fn requeuing_a_waiting_node_moves_it_behind_the_others_with_a_fresh_time() {
        let history = |q: &mut ZoneQueue| {
            q.add("a", "1", t(0));
            q.add("b", "2", t(5));
            q.add("c", "3", t(30));
        };
        let mut q = ZoneQueue::new(0.1, t(0));
        history(&mut q);
        q.requeue("a", "1", t(30));
        assert_eq!(
            entries(&q),
            [
                ("b".into(), "2".into(), t(5), t(5)),
                ("c".into(), "3".into(), t(30), t(30)),
                ("a".into(), "1".into(), t(30), t(30)),
            ]
        );
        requeue_matches_remove_then_add(history, "a", "1");
    }

    #[test]
    fn requeuing_a_node_whose_uid_changed_takes_the_new_uid() {
        let history = |q: &mut ZoneQueue| {
            q.add("a", "old", t(0));
        };
        let mut q = ZoneQueue::new(0.1, t(0));
        history(&mut q);
        q.requeue("a", "new", t(30));
        assert_eq!(q.get("a").unwrap().uid, "new");
        requeue_matches_remove_then_add(history, "a", "new");
    }

    #[test]
    fn requeuing_a_done_node_queues_it_again() {
        let history = |q: &mut ZoneQueue| {
            q.add("a", "1", t(0));
            assert_eq!(pass(q, t(0)), ["a"]);
            q.add("b", "2", t(1));
        };
        let mut q = ZoneQueue::new(0.1, t(0));
        history(&mut q);
        q.requeue("a", "1", t(30));
        assert!(!q.is_done("a"));
        assert_eq!(q.get("a").unwrap().process_at, t(30));
        requeue_matches_remove_then_add(history, "a", "1");
    }

    #[test]
    fn requeuing_an_unknown_node_adds_it() {
        let history = |q: &mut ZoneQueue| {
            q.add("b", "2", t(1));
        };
        let mut q = ZoneQueue::new(0.1, t(0));
        history(&mut q);
        q.requeue("a", "1", t(30));
        assert_eq!(q.len(), 2);
        requeue_matches_remove_then_add(history, "a", "1");
    }

    #[test]
    fn a_retried_node_keeps_its_place_in_the_known_set() {
        let mut q = ZoneQueue::new(1.0, t(0));
        q.add("a", "1", t(0));
        q.try_process(t(0), |_| Outcome::RetryAfter(secs(5)));
        assert!(q.contains("a"));
        assert_eq!(q.get("a").unwrap().process_at, t(5));
        assert!(q.remove("a"));
        assert!(!q.contains("a"));
        assert!(q.is_empty());
    }

    #[test]
    fn a_done_node_stays_remembered_until_removed() {
        let mut q = ZoneQueue::new(0.1, t(0));
        q.add("a", "1", t(0));
        assert_eq!(pass(&mut q, t(0)), ["a"]);
        assert_eq!(q.len(), 0);
        assert!(q.is_empty());
        assert!(q.contains("a"));
        assert!(q.is_done("a"));
        assert_eq!(q.get("a"), None);
        assert!(!q.add("a", "1", t(20)));
        assert!(pass(&mut q, t(20)).is_empty());
        assert!(q.remove("a"));
        assert!(!q.contains("a"));
        assert!(q.add("a", "1", t(30)));
        assert_eq!(pass(&mut q, t(30)), ["a"]);
    }

    #[test]
    fn removing_a_waiting_node_forgets_it() {
        let mut q = ZoneQueue::new(0.1, t(0));
        q.add("a", "1", t(0));
        q.add("b", "2", t(0));
        assert!(q.remove("a"));
        assert!(!q.contains("a"));
        assert_eq!(q.len(), 1);
        assert_eq!(pass(&mut q, t(0)), ["b"]);
    }

    #[test]
    fn removing_an_unknown_node_reports_false() {
        let mut q = ZoneQueue::new(0.1, t(0));
        assert!(!q.remove("nope"));
        q.add("a", "1", t(0));
        assert!(q.remove("a"));
        assert!(!q.remove("a"));
    }

    #[test]
    fn nodes_are_processed_in_process_time_order_with_ties_in_insertion_order() {
        let mut q = ZoneQueue::new(1.0, t(0));
        q.add("late", "", t(3));
        q.add("z", "", t(1));
        q.add("y", "", t(1));
        q.add("x", "", t(2));
        let order: Vec<_> = q.waiting().map(|e| e.node.clone()).collect();
        assert_eq!(order, ["z", "y", "x", "late"]);
        let mut done = Vec::new();
        for s in 10..15 {
            done.extend(pass(&mut q, t(s)));
        }
        assert_eq!(done, ["z", "y", "x", "late"]);
    }

    #[test]
    fn a_token_is_spent_only_when_the_head_is_due() {
        let mut q = ZoneQueue::new(0.1, t(0));
        q.add("a", "", t(0));
        // First token: retried in 30s.
        q.try_process(t(0), |_| Outcome::RetryAfter(secs(30)));
        // Tokens come back at 10s, but the head is not due: they must not be spent.
        assert!(pass(&mut q, t(10)).is_empty());
        assert!(pass(&mut q, t(20)).is_empty());
        assert!(q.limiter().has_token(t(29)));
        assert_eq!(pass(&mut q, t(30)), ["a"]);
    }

    #[test]
    fn an_empty_queue_keeps_its_token() {
        let mut q = ZoneQueue::new(0.1, t(0));
        assert!(pass(&mut q, t(0)).is_empty());
        assert!(pass(&mut q, t(1)).is_empty());
        q.add("a", "", t(2));
        assert_eq!(pass(&mut q, t(2)), ["a"]);
    }

    #[test]
    fn a_node_queued_in_the_future_waits_for_its_time_even_with_a_token() {
        let mut q = ZoneQueue::new(0.1, t(0));
        q.add("a", "", t(5));
        assert!(pass(&mut q, t(4)).is_empty());
        assert_eq!(pass(&mut q, t(5)), ["a"]);
    }

    #[test]
    fn a_retried_node_moves_behind_nodes_due_earlier() {
        let mut q = ZoneQueue::new(0.1, t(0));
        q.add("a", "", t(0));
        q.add("b", "", t(0));
        q.try_process(t(0), |_| Outcome::RetryAfter(secs(5)));
        assert_eq!(q.get("a").unwrap().process_at, t(5));
        assert_eq!(q.get("a").unwrap().added_at, t(0));
        assert!(q.contains("a"));
        assert_eq!(q.len(), 2);
        assert_eq!(pass(&mut q, t(10)), ["b"]);
        assert_eq!(pass(&mut q, t(20)), ["a"]);
    }

    #[test]
    fn a_node_retried_at_once_is_tried_again_with_the_next_token() {
        let mut q = ZoneQueue::new(0.1, t(0));
        q.add("a", "", t(0));
        let mut calls = 0;
        q.try_process(t(0), |_| {
            calls += 1;
            Outcome::RetryAfter(Duration::ZERO)
        });
        assert_eq!(calls, 1);
        assert_eq!(q.get("a").unwrap().process_at, t(0));
        assert!(pass(&mut q, t(9)).is_empty());
        assert_eq!(pass(&mut q, t(10)), ["a"]);
    }

    #[test]
    fn one_pass_spends_at_most_the_one_token_of_the_bucket() {
        let mut q = ZoneQueue::new(1000.0, t(0));
        for n in ["a", "b", "c"] {
            q.add(n, "", t(0));
        }
        assert_eq!(pass(&mut q, t(0)), ["a"]);
        assert_eq!(pass(&mut q, t_ms(1)), ["b"]);
        assert_eq!(pass(&mut q, t_ms(2)), ["c"]);
    }

    #[test]
    fn swapping_to_the_same_rate_changes_nothing() {
        let mut q = ZoneQueue::new(0.1, t(0));
        q.add("a", "", t(0));
        q.add("b", "", t(0));
        assert_eq!(pass(&mut q, t(0)), ["a"]);
        q.swap_limiter(0.1, t(5));
        assert!(pass(&mut q, t(5)).is_empty());
        assert_eq!(pass(&mut q, t(10)), ["b"]);
        // And a full bucket is not drained either.
        let mut q = ZoneQueue::new(0.1, t(0));
        q.swap_limiter(0.1, t(0));
        q.add("a", "", t(0));
        assert_eq!(pass(&mut q, t(0)), ["a"]);
    }

    #[test]
    fn a_new_rate_starts_full_when_the_old_bucket_had_a_token() {
        let mut q = ZoneQueue::new(0.1, t(0));
        q.swap_limiter(0.01, t(1));
        assert_eq!(q.qps(), 0.01);
        q.add("a", "", t(1));
        q.add("b", "", t(1));
        assert_eq!(pass(&mut q, t(1)), ["a"]);
        assert!(pass(&mut q, t(100)).is_empty());
        assert_eq!(pass(&mut q, t(101)), ["b"]);
    }

    #[test]
    fn a_new_rate_starts_empty_when_the_old_bucket_had_no_token() {
        let mut q = ZoneQueue::new(0.1, t(0));
        q.add("a", "", t(0));
        q.add("b", "", t(0));
        assert_eq!(pass(&mut q, t(0)), ["a"]);
        q.swap_limiter(1.0, t(5));
        assert!(pass(&mut q, t(5)).is_empty());
        assert!(pass(&mut q, t_ms(5_999)).is_empty());
        assert_eq!(pass(&mut q, t(6)), ["b"]);
    }

    #[test]
    fn a_rate_of_zero_stops_the_queue_but_keeps_its_nodes() {
        let mut q = ZoneQueue::new(0.1, t(0));
        q.swap_limiter(0.0, t(0));
        assert_eq!(q.qps(), 0.0);
        q.add("a", "", t(0));
        assert!(pass(&mut q, t(0)).is_empty());
        assert!(pass(&mut q, t(100_000)).is_empty());
        assert_eq!(q.len(), 1);
        assert!(q.contains("a"));
    }

    #[test]
    fn a_stopped_limiter_resumes_at_rate_one() {
        let mut q = ZoneQueue::new(1.0, t(0));
        q.swap_limiter(0.0, t(0));
        q.add("a", "", t(0));
        q.add("b", "", t(0));
        assert!(pass(&mut q, t(10)).is_empty());
        q.swap_limiter(1.0, t(10));
        assert_eq!(q.qps(), 1.0);
        // A stopped bucket holds no token, so the resumed one starts empty.
        assert!(pass(&mut q, t(10)).is_empty());
        assert_eq!(pass(&mut q, t(11)), ["a"]);
        assert_eq!(pass(&mut q, t(12)), ["b"]);
    }

    #[test]
    fn a_stopped_limiter_resumes_at_any_positive_rate() {
        for qps in [0.1, 0.5, 2.0] {
            let mut q = ZoneQueue::new(qps, t(0));
            q.swap_limiter(0.0, t(0));
            q.swap_limiter(qps, t(0));
            q.add("a", "", t(0));
            assert!(pass(&mut q, t(20)).len() == 1, "rate {qps}");
        }
    }

    #[test]
    fn stopping_a_stopped_queue_is_harmless() {
        let mut q = ZoneQueue::new(0.0, t(0));
        q.swap_limiter(0.0, t(1));
        q.swap_limiter(-1.0, t(2));
        assert_eq!(q.qps(), 0.0);
        q.add("a", "", t(2));
        assert!(pass(&mut q, t(3)).is_empty());
        q.swap_limiter(0.1, t(3));
        assert!(pass(&mut q, t(12)).is_empty());
        assert_eq!(pass(&mut q, t(13)), ["a"]);
    }

    #[test]
    fn an_entry_not_ready_yet_keeps_its_place_and_the_token_goes_to_the_next() {
        let mut q = ZoneQueue::new(0.1, t(0));
        q.add("a", "", t(0));
        q.add("b", "", t(0));
        let mut seen = Vec::new();
        q.try_process(t(0), |e| {
            seen.push(e.node.clone());
            if e.node == "a" {
                Outcome::NotYet
            } else {
                Outcome::Done
            }
        });
        assert_eq!(seen, ["a", "b"]);
        assert_eq!(q.get("a").unwrap().process_at, t(0));
        assert!(!q.limiter().has_token(t(9)));
        assert_eq!(pass(&mut q, t(10)), ["a"]);
    }

    #[test]
    fn an_entry_not_ready_yet_spends_no_token() {
        let mut q = ZoneQueue::new(0.1, t(0));
        q.add("a", "", t(0));
        for ms in [0, 100, 200] {
            q.try_process(t_ms(ms), |_| Outcome::NotYet);
        }
        assert!(q.limiter().has_token(t_ms(300)));
        assert_eq!(pass(&mut q, t_ms(300)), ["a"]);
        assert!(!q.limiter().has_token(t_ms(300)));
    }

    #[test]
    fn nothing_is_asked_about_an_entry_while_the_bucket_is_empty() {
        let mut q = ZoneQueue::new(0.1, t(0));
        q.add("a", "", t(0));
        q.add("b", "", t(0));
        assert_eq!(pass(&mut q, t(0)), ["a"]);
        let mut asked = 0;
        q.try_process(t(5), |_| {
            asked += 1;
            Outcome::Done
        });
        assert_eq!(asked, 0);
    }

    #[test]
    fn a_queue_made_with_rate_zero_never_processes() {
        let mut q = ZoneQueue::new(0.0, t(0));
        q.add("a", "", t(0));
        assert!(pass(&mut q, t(1_000)).is_empty());
    }
}
