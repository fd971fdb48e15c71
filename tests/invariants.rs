//! Invariants over random scenarios (issue 18): a seeded generator of scenarios (1–4 zones, up
//! to 60 nodes in a zone, tolerations none / 0 s / 10–120 s / forever / one key only, kubelets
//! that stop and come back or report NotReady, NoSchedule taints put on by hand, toleration
//! changes, controller restarts, API outages, stalled watches, flags varied within their valid
//! ranges, in 40 % of the scenarios one or two API hangs or restarts, issue 24, and in 35 % an
//! outage, hang or restart beginning at an instant the controller may write a mark or a zone
//! taint, issue 25), and for
//! every timeline the properties that must always hold:
//!
//! 1. no pod is deleted before its due time (the start of its node's NoExecute taint plus its
//!    shortest matching toleration, as the pod's tolerations are then), nor with no such taint;
//! 2. a node is marked Unknown only when its kubelet has been silent for the grace period
//!    (less one renew interval, the most its last renewal can precede the stop), and when
//!    nothing disturbs the controller, within grace + one monitor period + 1 s of the stop, or
//!    of the cluster leaving full disruption after the stop (every node's grace period starts
//!    over then, as upstream's does: seed 36611);
//! 3. within a zone, every rate-limited NoExecute taint lands no earlier than the zone's next
//!    token: the checker replays each zone's token bucket (burst 1) from the timeline, through
//!    state changes (a new rate starts full when the old bucket held its token, else empty;
//!    full disruption of every zone stops them all), whatever restarts, outages, hangs or
//!    stalls happen. Two rules only: a term of leadership starts every zone with a full bucket
//!    (a restarted upstream process does too), and a taint that lands as a hang ends, held by
//!    the server, took its token during the hang, at the first instant its zone's replayed
//!    bucket held one (`Pacing`);
//! 4. an `unreachable` taint only on a silent node, a `not-ready` one only on a node reported
//!    NotReady; and a node that is Ready long enough before the end carries neither;
//! 5. the same scenario and seed give byte-identical timelines;
//! 6. no node is marked Unknown, and no pod deleted, because of time the API was away (an
//!    `api-outage`, `api-hang` or `api-restart`): a node whose kubelet never stopped is never
//!    marked and none of its pods deleted; a stopped node is not marked before the lower
//!    bound of 2, counted from the last renewal the server received (a kubelet that stops
//!    while the API hangs or restarts was last heard before that began: a hang too short for
//!    the controller to see is counted as silence of a node that dies in it); and a stopped node is marked no later than max(stop + grace, end of the last
//!    absence of the API that began before the mark was due and ended after the stop's last
//!    renewal + grace) + one monitor period + a slack (one more monitor period + 1 s when the
//!    API was away: the grace period counts from the first pass that trusts its caches again;
//!    `mark_slack`), absences chaining (one that begins before the extended deadline
//!    extends it again). No exemption: only controller restarts and stalled watches near the
//!    stop leave its deadline unchecked, as they did before.
//!
//! `NLC_INVARIANT_SCENARIOS` (default 100, about 45 s unoptimized) sets how many,
//! `NLC_INVARIANT_SEED` (default 1) the first seed; scenario i uses seed + i. A failure prints
//! the seed, the broken property and the scenario reduced to what still breaks it. `.ci/run`
//! adds 2 000 more seeds in release mode (about 75 s); thousands, the same way:
//! `NLC_INVARIANT_SEED=1001 NLC_INVARIANT_SCENARIOS=3000 cargo test --release --test invariants`.

mod common;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
const NOT_READY: &str = "node.kubernetes.io/not-ready";
const RENEW: f64 = 10.0;
/// How long after the API server answers again a running kubelet's sign of life reaches it at
/// the latest: its next Lease retry (at most 7 s) or its next status loop (10 s).
const KUBELET_CATCH_UP: f64 = 10.0;
/// What properties 2 and 6 allow beyond a monitor period after a mark falls due: 1 s for the
/// reads afresh and the write; and when an absence of the API moved the due time, one more
/// monitor period, as the grace period then counts from the first pass that trusts its caches
/// again (up to a monitor period after the absence ends).
fn mark_slack(g: &Gen, extended: bool) -> f64 {
    if extended { g.period + 1.0 } else { 1.0 }
}

/// splitmix64: small, seedable, the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// A pod's tolerations of our two keys: seconds, `None` forever, absent: admission's 300 s.
#[derive(Clone, Debug)]
struct Tolerations {
    unreachable: Option<Option<u64>>,
    not_ready: Option<Option<u64>>,
}

impl Tolerations {
    fn random(rng: &mut Rng) -> Self {
        let secs = |rng: &mut Rng| Some(rng.range(10, 120));
        match rng.below(6) {
            0 => Tolerations {
                unreachable: None,
                not_ready: None,
            },
            1 => Tolerations {
                unreachable: Some(Some(0)),
                not_ready: Some(Some(0)),
            },
            2 => {
                let s = secs(rng);
                Tolerations {
                    unreachable: Some(s),
                    not_ready: Some(s),
                }
            }
            3 => Tolerations {
                unreachable: Some(None),
                not_ready: Some(None),
            },
            4 => Tolerations {
                unreachable: Some(secs(rng)),
                not_ready: None,
            },
            _ => Tolerations {
                unreachable: Some(secs(rng)),
                not_ready: Some(secs(rng)),
            },
        }
    }

    /// Seconds tolerated of `key` after admission (`None`: forever).
    fn of(&self, key: &str) -> Option<u64> {
        let t = if key == UNREACHABLE {
            self.unreachable
        } else {
            self.not_ready
        };
        t.unwrap_or(Some(300))
    }

    fn yaml(&self) -> String {
        let one = |key: &str, t: Option<Option<u64>>| match t {
            None => None,
            Some(None) => Some(format!(
                "{{key: {key}, operator: Exists, effect: NoExecute}}"
            )),
            Some(Some(s)) => Some(format!(
                "{{key: {key}, operator: Exists, effect: NoExecute, tolerationSeconds: {s}}}"
            )),
        };
        let items: Vec<String> = [
            one(UNREACHABLE, self.unreachable),
            one(NOT_READY, self.not_ready),
        ]
        .into_iter()
        .flatten()
        .collect();
        format!("[{}]", items.join(", "))
    }
}

#[derive(Clone, Debug)]
struct Pod {
    name: String,
    node: String,
    tolerations: Tolerations,
}

#[derive(Clone, Debug)]
enum Act {
    Stop(String),
    Resume(String),
    Ready(String, bool),
    ManualTaint(String, bool),
    SetTolerations(String, Tolerations),
    Restart,
    Outage(u64),
    Stall(&'static str, u64),
    /// api-hang: every request and watch of anyone unanswered, then all at once.
    Hang(u64),
    /// api-restart: the API server gone for everyone, then a fresh one.
    ApiRestart(u64),
}

#[derive(Clone, Copy, Debug)]
enum Beat {
    Stop,
    Resume,
    Status,
}

#[derive(Clone, Debug)]
struct Gen {
    duration: u64,
    flags: Vec<(&'static str, String)>,
    grace: f64,
    period: f64,
    rate: f64,
    secondary: f64,
    large: usize,
    nodes: Vec<(String, String)>,
    pods: Vec<Pod>,
    events: Vec<(u64, Act)>,
}

impl Gen {
    fn random(seed: u64) -> Gen {
        Gen::random_with(seed, true)
    }

    /// The scenario of `seed`; `aligned`: with the faults at the controller's write instants
    /// (issue 25), which scenarios found before had not.
    fn random_with(seed: u64, aligned: bool) -> Gen {
        let mut rng = Rng(seed);
        let period = *rng.pick(&[1u64, 2, 5]);
        let grace = rng.range(20, 60).max(period);
        let rate = *rng.pick(&[0.1, 0.2, 0.5, 1.0]);
        let secondary = *rng.pick(&[0.0, 0.01, 0.05, 0.1]);
        let large = *rng.pick(&[2usize, 5, 50]);
        let threshold = *rng.pick(&["0.3", "0.55", "0.8"]);
        let leader = rng.chance(70);
        let flags = vec![
            ("node-monitor-period", format!("{period}s")),
            ("node-monitor-grace-period", format!("{grace}s")),
            ("node-startup-grace-period", format!("{}s", grace + 10)),
            ("node-eviction-rate", rate.to_string()),
            ("secondary-node-eviction-rate", secondary.to_string()),
            ("large-cluster-size-threshold", large.to_string()),
            ("unhealthy-zone-threshold", threshold.to_string()),
            ("leader-elect", leader.to_string()),
        ];
        let duration = rng.range(6, 10) * 60;
        let zones = rng.range(1, 4);
        let mut nodes = Vec::new();
        for z in 0..zones {
            let size = if rng.chance(10) {
                rng.range(10, 60)
            } else {
                rng.range(1, 8)
            };
            for i in 0..size {
                nodes.push((format!("z{z}-{i}"), format!("zone-{z}")));
            }
        }
        let mut pods = Vec::new();
        for (n, _) in &nodes {
            for k in 0..rng.below(3) {
                pods.push(Pod {
                    name: format!("{n}-p{k}"),
                    node: n.clone(),
                    tolerations: Tolerations::random(&mut rng),
                });
            }
        }
        let mut events = Vec::new();
        let names: Vec<String> = nodes.iter().map(|(n, _)| n.clone()).collect();
        let count = rng.range(1, 10);
        for _ in 0..count {
            let at = rng.range(5, duration - 30);
            let node = rng.pick(&names).clone();
            let act = match rng.below(20) {
                0..=6 => {
                    // Sometimes a whole zone at once.
                    if rng.chance(20) {
                        let zone = nodes.iter().find(|(n, _)| *n == node).unwrap().1.clone();
                        for (n, z) in &nodes {
                            if *z == zone {
                                events.push((at, Act::Stop(n.clone())));
                            }
                        }
                        continue;
                    }
                    Act::Stop(node)
                }
                7..=9 => Act::Resume(node),
                10 | 11 => Act::Ready(node, rng.chance(40)),
                12 => Act::ManualTaint(node, rng.chance(70)),
                13 | 14 if !pods.is_empty() => {
                    let pod = rng.pick(&pods).name.clone();
                    // Both keys named, so admission adds nothing later.
                    let s = |rng: &mut Rng| Some(Some(rng.range(0, 120)));
                    let t = Tolerations {
                        unreachable: s(&mut rng),
                        not_ready: s(&mut rng),
                    };
                    Act::SetTolerations(pod, t)
                }
                15 | 16 => Act::Restart,
                17 | 18 => Act::Outage(rng.range(5, 90)),
                _ => {
                    let resource: &'static str = ["leases", "nodes", "pods"][rng.below(3) as usize];
                    Act::Stall(resource, rng.range(10, 120))
                }
            };
            events.push((at, act));
        }
        // API faults of everyone come from a stream of their own, so that the rest of a seed's
        // scenario is what it was before they were drawn.
        let mut faults = Rng(seed ^ 0x00A1_FA17_5EED);
        if faults.chance(40) {
            for _ in 0..faults.range(1, 2) {
                let fault = Self::fault(&mut faults, grace, period, duration, &events);
                events.push(fault);
            }
        }
        // Faults at the instants the controller writes: a third stream, so that the rest of
        // a seed's scenario is what it was before it was drawn.
        let mut aligned_faults = Rng(seed ^ 0x0B1A_2025);
        if aligned
            && aligned_faults.chance(35)
            && let Some(fault) =
                Self::aligned_fault(&mut aligned_faults, grace, period, rate, duration, &events)
        {
            events.push(fault);
        }
        events.sort_by_key(|(at, _)| *at);
        Gen {
            duration,
            flags,
            grace: grace as f64,
            period: period as f64,
            rate,
            secondary,
            large,
            nodes,
            pods,
            events,
        }
    }

    /// An api-hang or api-restart lasting around or beyond the grace period, starting at any
    /// instant, at a monitor pass, or at the instant a stopped node's mark falls due.
    fn fault(
        rng: &mut Rng,
        grace: u64,
        period: u64,
        duration: u64,
        events: &[(u64, Act)],
    ) -> (u64, Act) {
        let length = match rng.below(5) {
            0 => grace.saturating_sub(5).max(1),
            1 => grace,
            2 => grace + 5,
            3 => 45,
            _ => rng.range(5, 3 * grace),
        };
        let stops: Vec<u64> = events
            .iter()
            .filter(|(_, a)| matches!(a, Act::Stop(_)))
            .map(|(at, _)| *at)
            .collect();
        let latest = duration - 30;
        let at = match rng.below(3) {
            0 if !stops.is_empty() => {
                (rng.pick(&stops) + grace + rng.below(period + 1)).min(latest)
            }
            1 => (rng.range(5, latest) / period * period).max(5),
            _ => rng.range(5, latest),
        };
        let act = if rng.chance(50) {
            Act::Hang(length)
        } else {
            Act::ApiRestart(length)
        };
        (at, act)
    }

    /// An api-outage, api-hang or api-restart, often shorter than a zone's token interval,
    /// beginning at an instant the controller may write: a monitor pass at which a stopped
    /// node's mark may fall due (its last renewal, up to a renew interval before the stop, plus
    /// grace), or one or two token intervals of the zone's rate after it, when the next taints
    /// of its zone may fall due (issue 25, B1': a hang as the marks were written).
    fn aligned_fault(
        rng: &mut Rng,
        grace: u64,
        period: u64,
        rate: f64,
        duration: u64,
        events: &[(u64, Act)],
    ) -> Option<(u64, Act)> {
        let stops: Vec<u64> = events
            .iter()
            .filter(|(_, a)| matches!(a, Act::Stop(_)))
            .map(|(at, _)| *at)
            .collect();
        if stops.is_empty() {
            return None;
        }
        let stop = *rng.pick(&stops);
        let first = (stop + grace).saturating_sub(RENEW as u64).div_ceil(period) * period;
        let passes: Vec<u64> = (first..=stop + grace + period)
            .step_by(period as usize)
            .collect();
        let interval = (1.0 / rate).round() as u64;
        let at = *rng.pick(&passes) + rng.below(3) * interval;
        let length = *rng.pick(&[1, 2, 3, 5, 8, interval, interval + 1, grace]);
        let act = match rng.below(3) {
            0 => Act::Outage(length),
            1 => Act::Hang(length),
            _ => Act::ApiRestart(length),
        };
        (at >= 5 && at <= duration - 30).then_some((at, act))
    }

    fn yaml(&self) -> String {
        let mut y = String::new();
        writeln!(y, "duration: {}s", self.duration).unwrap();
        let flags: Vec<String> = self
            .flags
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        writeln!(y, "controller: {{{}}}", flags.join(", ")).unwrap();
        writeln!(y, "nodes:").unwrap();
        for (n, z) in &self.nodes {
            writeln!(y, "- {{name: {n}, zone: {z}}}").unwrap();
        }
        if !self.pods.is_empty() {
            writeln!(y, "pods:").unwrap();
        }
        for p in &self.pods {
            let t = p.tolerations.yaml();
            writeln!(
                y,
                "- {{name: {}, node: {}, tolerations: {t}}}",
                p.name, p.node
            )
            .unwrap();
        }
        if !self.events.is_empty() {
            writeln!(y, "events:").unwrap();
        }
        for (at, act) in &self.events {
            let e = match act {
                Act::Stop(n) => format!("action: stop-heartbeat, nodes: [{n}]"),
                Act::Resume(n) => format!("action: resume-heartbeat, nodes: [{n}]"),
                Act::Ready(n, ready) => {
                    let s = if *ready { "True" } else { "False" };
                    format!("action: set-condition, nodes: [{n}], type: Ready, status: \"{s}\"")
                }
                Act::ManualTaint(n, add) => format!(
                    "action: {}-taint, nodes: [{n}], taint: {{key: example.com/maintenance, effect: NoSchedule}}",
                    if *add { "add" } else { "remove" }
                ),
                Act::SetTolerations(p, t) => {
                    format!(
                        "action: set-tolerations, pods: [default/{p}], tolerations: {}",
                        t.yaml()
                    )
                }
                Act::Restart => "action: restart-controller".to_string(),
                Act::Outage(d) => format!("action: api-outage, duration: {d}s"),
                Act::Stall(r, d) => format!("action: stall-watch, resource: {r}, duration: {d}s"),
                Act::Hang(d) => format!("action: api-hang, duration: {d}s"),
                Act::ApiRestart(d) => format!("action: api-restart, duration: {d}s"),
            };
            writeln!(y, "- {{at: {at}s, {e}}}").unwrap();
        }
        y
    }

    /// Times of restarts, outages and stalls: (start, end).
    fn disturbances(&self) -> Vec<(f64, f64)> {
        self.events
            .iter()
            .filter_map(|(at, act)| {
                let at = *at as f64;
                match act {
                    Act::Restart => Some((at, at + 20.0)),
                    Act::Outage(d) => Some((at, at + *d as f64)),
                    Act::Stall(_, d) => Some((at, at + *d as f64)),
                    Act::Hang(d) | Act::ApiRestart(d) => Some((at, at + *d as f64)),
                    _ => None,
                }
            })
            .collect()
    }

    /// Times the API was away from the controller: outages, hangs, restarts (start, end).
    fn api_away(&self) -> Vec<(f64, f64)> {
        self.events
            .iter()
            .filter_map(|(at, act)| match act {
                Act::Outage(d) | Act::Hang(d) | Act::ApiRestart(d) => {
                    Some((*at as f64, (*at + *d) as f64))
                }
                _ => None,
            })
            .collect()
    }

    /// Disturbances that property 6 does not bound: controller restarts and stalled watches.
    fn unbounded_disturbance(&self, from: f64, to: f64) -> bool {
        self.events.iter().any(|(at, act)| {
            let at = *at as f64;
            let end = match act {
                Act::Restart => at + 20.0,
                Act::Stall(_, d) => at + *d as f64,
                _ => return false,
            };
            at <= to && end >= from
        })
    }

    /// The latest a node stopped at `stop` may be marked (property 6): a grace period after
    /// the stop, or after the end of the last absence of the API that began before the mark
    /// was made (its countdown, the pass that marks, or the write itself held or refused),
    /// whichever is later; then a monitor period for the pass, and the slack. `fresh_starts`
    /// are the instants the cluster left full disruption (every zone down), when every node's
    /// grace period starts over, as upstream's does: one after the stop moves the due time.
    fn mark_deadline(&self, stop: f64, fresh_starts: &[f64]) -> (f64, bool) {
        let latest = |due: f64, extended: bool| due + self.period + mark_slack(self, extended);
        let mut due = stop + self.grace;
        let mut extended = false;
        loop {
            let overlapping: Vec<f64> = self
                .api_away()
                .into_iter()
                .filter(|(a, b)| *a <= latest(due, extended) && *b >= stop - RENEW)
                .map(|(_, b)| b + self.grace)
                .collect();
            let restarted = fresh_starts
                .iter()
                .filter(|x| **x >= stop && **x <= latest(due, extended))
                .map(|x| x + self.grace);
            let later = overlapping
                .iter()
                .copied()
                .chain(restarted)
                .fold(due, f64::max);
            let was = extended;
            extended |= !overlapping.is_empty();
            if later <= due && extended == was {
                break;
            }
            due = later;
        }
        (latest(due, extended), extended)
    }

    /// Whether the node's kubelet never stopped and never reported NotReady up to `t`.
    fn always_healthy(&self, node: &str, t: f64) -> bool {
        !self.events.iter().any(|(at, act)| {
            (*at as f64) <= t
                && match act {
                    Act::Stop(n) => n == node,
                    Act::Ready(n, ready) => n == node && !ready,
                    _ => false,
                }
        })
    }

    fn disturbed(&self, from: f64, to: f64) -> bool {
        self.disturbances()
            .iter()
            .any(|(a, b)| *a <= to && *b >= from)
    }

    fn zone_of(&self, node: &str) -> &str {
        &self.nodes.iter().find(|(n, _)| n == node).expect("node").1
    }

    fn zone_size(&self, zone: &str) -> usize {
        self.nodes.iter().filter(|(_, z)| z == zone).count()
    }

    /// The pod's tolerations at `t`: its own, or the last set-tolerations before `t`.
    fn tolerations_at(&self, pod: &Pod, t: f64) -> Tolerations {
        let mut current = pod.tolerations.clone();
        for (at, act) in &self.events {
            if let Act::SetTolerations(p, tol) = act
                && *p == pod.name
                && (*at as f64) <= t
            {
                current = tol.clone();
            }
        }
        current
    }

    /// The node's kubelet events up to `t`, in order: (time, what). A `set-condition` writes
    /// the node's status, which is a sign of life like a renewal. A sign of life given while
    /// the API server hangs or restarts reaches it only afterwards: it counts from the end of
    /// that absence + `KUBELET_CATCH_UP` (the retry backoff's cap, 7 s, or the next turn of
    /// the 10 s status loop), and not at all when the kubelet stops before then.
    fn heartbeat_changes(&self, node: &str, t: f64) -> Vec<(f64, Beat)> {
        let mine: Vec<(f64, Beat)> = self
            .events
            .iter()
            .filter_map(|(at, act)| match act {
                Act::Stop(n) if n == node => Some((*at as f64, Beat::Stop)),
                Act::Resume(n) if n == node => Some((*at as f64, Beat::Resume)),
                Act::Ready(n, _) if n == node => Some((*at as f64, Beat::Status)),
                _ => None,
            })
            .collect();
        let mut changes: Vec<(f64, Beat)> = Vec::new();
        for (i, (at, beat)) in mine.iter().enumerate() {
            let seen = match beat {
                Beat::Stop => *at,
                Beat::Resume | Beat::Status => self.reaches_the_server(*at),
            };
            let stopped_first = seen > *at
                && mine[i + 1..]
                    .iter()
                    .any(|(s, b)| matches!(b, Beat::Stop) && *s < seen);
            if seen <= t && !stopped_first {
                changes.push((seen, *beat));
            }
        }
        changes.sort_by(|a, b| a.0.total_cmp(&b.0));
        changes
    }

    /// When a kubelet's write made at `at` reaches the API server: at once, or after the
    /// hangs and restarts (chained) in progress then.
    fn reaches_the_server(&self, at: f64) -> f64 {
        let mut seen = at;
        loop {
            let later = self
                .events
                .iter()
                .filter_map(|(a, act)| match act {
                    Act::Hang(d) | Act::ApiRestart(d) => Some((*a as f64, (*a + *d) as f64)),
                    _ => None,
                })
                .filter(|(a, b)| *a <= seen && seen < *b)
                .map(|(_, b)| b + KUBELET_CATCH_UP)
                .fold(seen, f64::max);
            if later <= seen {
                return seen;
            }
            seen = later;
        }
    }

    /// Since when the node has shown no sign of life at `t`, if its kubelet is stopped.
    fn silent_since(&self, node: &str, t: f64) -> Option<f64> {
        let mut since = None;
        for (at, beat) in self.heartbeat_changes(node, t) {
            since = match (since, beat) {
                (_, Beat::Resume) => None,
                (None, Beat::Stop) => Some(at),
                (Some(_), Beat::Status) => Some(at),
                (s, _) => s,
            };
        }
        since
    }

    /// When the server last heard from a kubelet that stopped at `stop`: before the hangs and
    /// restarts in progress then (chained), which held or refused its renewals.
    fn last_heard_before(&self, stop: f64) -> f64 {
        let mut heard = stop;
        loop {
            let earlier = self
                .events
                .iter()
                .filter_map(|(a, act)| match act {
                    Act::Hang(d) | Act::ApiRestart(d) => Some((*a as f64, (*a + *d) as f64)),
                    _ => None,
                })
                .filter(|(a, b)| *a <= heard && heard < *b)
                .map(|(a, _)| a)
                .fold(heard, f64::min);
            if earlier >= heard {
                return heard;
            }
            heard = earlier;
        }
    }

    fn reported_not_ready(&self, node: &str, t: f64) -> bool {
        let mut not_ready = false;
        for (at, act) in &self.events {
            if let Act::Ready(n, ready) = act
                && n == node
                && (*at as f64) <= t
            {
                not_ready = !ready;
            }
        }
        not_ready
    }
}

/// Our NoExecute taints on each node over the timeline.
#[derive(Default)]
struct TaintHistory {
    /// Per node: present keys, start of the current taint period.
    present: BTreeMap<String, (BTreeSet<String>, f64)>,
    /// Per node: (t, start) when the last key went, to tell a swap (same instant) from a gap.
    emptied: BTreeMap<String, (f64, f64)>,
}

impl TaintHistory {
    /// Applies one entry; returns `Some(true)` for an addition that starts a taint period (a
    /// rate-limited zone taint), `Some(false)` for a swap.
    fn apply(&mut self, e: &Value) -> Option<bool> {
        let taint = e["taint"].as_str()?;
        let (key, effect) = taint.rsplit_once(':')?;
        if effect != "NoExecute" || (key != UNREACHABLE && key != NOT_READY) {
            return None;
        }
        let node = e["node"].as_str()?.to_string();
        let t = common::t(e);
        let entry = self
            .present
            .entry(node.clone())
            .or_insert((BTreeSet::new(), t));
        match e["type"].as_str()? {
            "TaintAdded" => {
                let starts = entry.0.is_empty();
                if starts {
                    entry.1 = match self.emptied.get(&node) {
                        Some((when, start)) if *when == t => *start,
                        _ => t,
                    };
                }
                entry.0.insert(key.to_string());
                let swap = starts && self.emptied.get(&node).is_some_and(|(w, _)| *w == t);
                Some(starts && !swap)
            }
            "TaintRemoved" => {
                entry.0.remove(key);
                if entry.0.is_empty() {
                    self.emptied.insert(node, (t, entry.1));
                }
                None
            }
            _ => None,
        }
    }

    fn on(&self, node: &str) -> Option<(&BTreeSet<String>, f64)> {
        self.present
            .get(node)
            .filter(|(keys, _)| !keys.is_empty())
            .map(|(k, s)| (k, *s))
    }
}

/// A zone state's rate (upstream's rules) for a zone of `size` nodes, outside full disruption
/// of every zone (when every zone's rate is 0).
fn rate_for(g: &Gen, state: &str, size: usize) -> f64 {
    match state {
        "PartialDisruption" if size > g.large => g.secondary,
        "PartialDisruption" => 0.0,
        _ => g.rate,
    }
}

/// A zone's token bucket (burst 1) as property 3 models the controller's: its rate, and when
/// its token is there (again; infinite when stopped).
#[derive(Clone, Copy, Debug)]
struct Bucket {
    rate: f64,
    next: f64,
}

impl Bucket {
    /// The rate changes at `at` (the controller's `swap_limiter`): the same rate changes
    /// nothing; a new bucket starts full when the old one held its token then, else empty.
    fn swap(&mut self, rate: f64, at: f64) {
        if rate == self.rate {
            return;
        }
        // Lenient by the timeline's rounding: a token due within 10 ms counts as there.
        let had = self.next <= at + 0.01;
        self.rate = rate;
        self.next = if rate <= 0.0 {
            f64::INFINITY
        } else if had {
            at
        } else {
            at + 1.0 / rate
        };
    }
}

/// What happened to a zone's bucket at an instant: a rate change, or a token taken.
#[derive(Clone, Copy, Debug)]
enum Change {
    Swap(f64),
    Take,
}

/// One zone's bucket in this term: full at the flag's rate at the term's first pass, and what
/// changed it since, in time order.
#[derive(Clone, Debug)]
struct ZoneLog {
    start: Bucket,
    changes: Vec<(f64, Change)>,
}

impl ZoneLog {
    /// The bucket after the changes at or before `t`.
    fn at(&self, t: f64) -> Bucket {
        let mut b = self.start;
        for (at, change) in self.changes.iter().filter(|(at, _)| *at <= t) {
            match change {
                Change::Swap(rate) => b.swap(*rate, *at),
                Change::Take => b.next = at + 1.0 / b.rate,
            }
        }
        b
    }

    fn insert(&mut self, t: f64, change: Change) {
        let i = self.changes.partition_point(|(at, _)| *at <= t);
        self.changes.insert(i, (t, change));
    }

    /// The earliest instant in `[from, to]` at which the bucket holds a token, given every
    /// change but takes after `from` (there are none).
    fn first_token(&self, from: f64, to: f64) -> Option<f64> {
        let mut bounds = vec![from];
        bounds.extend(
            self.changes
                .iter()
                .map(|(at, _)| *at)
                .filter(|at| *at > from && *at <= to),
        );
        bounds.dedup();
        for (i, u) in bounds.iter().enumerate() {
            let b = self.at(*u);
            if b.rate <= 0.0 {
                continue;
            }
            let at = b.next.max(*u);
            let end = bounds.get(i + 1).copied();
            // A change at an instant comes first: the monitor pass before the tainting pass.
            let fits = match end {
                Some(v) => at < v - 0.0005,
                None => at <= to + 0.01,
            };
            if fits {
                return Some(at.min(to));
            }
        }
        None
    }
}

/// Property 3, exact: every zone's token bucket, replayed from the timeline. A zone's token is
/// taken when its taint is written (docs/differences.md#zone-token-spent-when-the-taint-is-written),
/// so a rate-limited taint lands when its zone's bucket holds a token. Two rules, and only
/// they, go beyond the timeline's instants:
/// - a term of leadership (a process that starts, or leads again after losing the lead) starts
///   every zone with a full bucket at the flag's rate, as a restarted upstream process does;
///   the term's first pass is known by its `RegisteredNode` Events (or by a zone reported in
///   the state it was in);
/// - a taint that lands at the instant a hang ends was written during the hang (or then) and
///   held by the server: it took its token at the earliest instant of the hang at which its
///   zone's bucket, replayed with the rate changes reported during the hang, held one.
#[derive(Default)]
struct Pacing {
    zones: BTreeMap<String, ZoneLog>,
    /// The zones' states as last reported in this term.
    states: BTreeMap<String, String>,
    /// The ZoneState entries of one pass (one instant), not applied yet.
    pass: Vec<(f64, String, String)>,
    /// Instants (ms) of a term's first pass: its `RegisteredNode` Events.
    term_starts: BTreeSet<i64>,
    /// Hangs: (start, end).
    hangs: Vec<(f64, f64)>,
    /// Per zone and hang end (ms): when the last taint held by that hang took its token.
    held: BTreeMap<(String, i64), f64>,
}

fn ms(t: f64) -> i64 {
    (t * 1000.0).round() as i64
}

impl Pacing {
    fn new(g: &Gen, entries: &[Value]) -> Pacing {
        Pacing {
            term_starts: entries
                .iter()
                .filter(|e| e["type"] == "Event" && e["reason"] == "RegisteredNode")
                .map(|e| ms(common::t(e)))
                .collect(),
            hangs: g
                .events
                .iter()
                .filter_map(|(at, act)| match act {
                    Act::Hang(d) => Some((*at as f64, (*at + *d) as f64)),
                    _ => None,
                })
                .collect(),
            ..Pacing::default()
        }
    }

    /// A ZoneState entry at `t`.
    fn zone_state(&mut self, g: &Gen, t: f64, zone: &str, state: &str) {
        if self.pass.first().is_some_and(|(at, ..)| ms(*at) != ms(t)) {
            self.flush(g);
        }
        self.pass.push((t, zone.to_string(), state.to_string()));
    }

    /// Applies one pass's zone states as the controller's `handle_disruption` does.
    fn flush(&mut self, g: &Gen) {
        let pass = std::mem::take(&mut self.pass);
        let Some(&(at, ..)) = pass.first() else {
            return;
        };
        let new_term = self.term_starts.contains(&ms(at))
            || pass.iter().any(|(_, z, s)| self.states.get(z) == Some(s));
        if new_term {
            self.zones.clear();
            self.states.clear();
        }
        for (_, zone, _) in &pass {
            // A zone new to the term: a full bucket at the flag's rate.
            self.zones.entry(zone.clone()).or_insert(ZoneLog {
                start: Bucket {
                    rate: g.rate,
                    next: at,
                },
                changes: Vec::new(),
            });
        }
        let all_full = |states: &BTreeMap<String, String>| {
            !states.is_empty() && states.values().all(|s| s == "FullDisruption")
        };
        let were = all_full(&self.states);
        for (_, zone, state) in &pass {
            self.states.insert(zone.clone(), state.clone());
        }
        let are = all_full(&self.states);
        let swaps: Vec<(String, f64)> = match (were, are) {
            (true, true) => Vec::new(),
            (false, true) => self.zones.keys().map(|z| (z.clone(), 0.0)).collect(),
            (true, false) => self
                .states
                .iter()
                .map(|(z, s)| (z.clone(), rate_for(g, s, g.zone_size(z))))
                .collect(),
            (false, false) => pass
                .iter()
                .map(|(_, z, s)| (z.clone(), rate_for(g, s, g.zone_size(z))))
                .collect(),
        };
        for (zone, rate) in swaps {
            if let Some(log) = self.zones.get_mut(&zone) {
                log.insert(at, Change::Swap(rate));
            }
        }
    }

    /// A rate-limited NoExecute taint of `zone` landed at `t`.
    fn taint(&mut self, zone: &str, t: f64, g: &Gen) -> Result<(), String> {
        self.flush(g);
        let state = self.states.get(zone).cloned().unwrap_or_default();
        let Some(log) = self.zones.get_mut(zone) else {
            return Err(format!(
                "3: zone {zone}: a NoExecute taint at {t} before the zone was reported"
            ));
        };
        let hang = self
            .hangs
            .iter()
            .find(|(_, end)| ms(*end) == ms(t))
            .copied();
        let (from, key) = match hang {
            Some((start, end)) => {
                let key = (zone.to_string(), ms(end));
                let from = self.held.get(&key).map_or(start, |s| s + 0.001);
                (from, Some(key))
            }
            None => (t, None),
        };
        let Some(taken) = log.first_token(from, t) else {
            let b = log.at(t);
            return Err(format!(
                "3: zone {zone} ({state}, rate {}/s): a NoExecute taint at {t}, the zone's next token at {}",
                b.rate, b.next
            ));
        };
        log.insert(taken, Change::Take);
        if let Some(key) = key {
            self.held.insert(key, taken);
        }
        Ok(())
    }
}

/// Every property on `g`'s timeline; the first broken one.
fn check(g: &Gen, seed: u64) -> Result<(), String> {
    let yaml = g.yaml();
    let text = common::jsonl_with(&yaml, &[], seed);
    if common::jsonl_with(&yaml, &[], seed) != text {
        return Err("5: the same scenario and seed gave different timelines".into());
    }
    let entries = common::parse(&text);
    let end = g.duration as f64;
    let mut history = TaintHistory::default();
    let mut states: BTreeMap<String, String> = BTreeMap::new();
    let mut pacing = Pacing::new(g, &entries);
    let mut marked: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut fresh_starts: Vec<f64> = Vec::new();
    for e in &entries {
        let t = common::t(e);
        match e["type"].as_str().unwrap_or_default() {
            "ZoneState" => {
                let zone = e["zone"].as_str().unwrap_or_default().to_string();
                let all_full = |states: &BTreeMap<String, String>| {
                    !states.is_empty() && states.values().all(|s| s == "FullDisruption")
                };
                let were = all_full(&states);
                states.insert(zone.clone(), e["state"].as_str().unwrap_or_default().into());
                if were && !all_full(&states) {
                    fresh_starts.push(t);
                }
                pacing.zone_state(g, t, &zone, e["state"].as_str().unwrap_or_default());
            }
            "NodeConditionsUnknown" => {
                let node = e["node"].as_str().unwrap_or_default();
                let Some(since) = g.silent_since(node, t) else {
                    if let Some((a, b)) = g.api_away().into_iter().rfind(|(a, _)| *a <= t) {
                        return Err(format!(
                            "6: {node} marked Unknown at {t} with its kubelet running (the API away {a}-{b})"
                        ));
                    }
                    return Err(format!(
                        "2: {node} marked Unknown at {t} with its kubelet running"
                    ));
                };
                // A kubelet that stops while the API server hangs or restarts gave its last
                // sign of life that reached the server before that began: the controller counts
                // from there (a hang too short for it to see; docs/differences.md, "A sick
                // control plane never looks like dead nodes").
                let since = g.last_heard_before(since);
                if t < since + g.grace - RENEW {
                    let away = g
                        .api_away()
                        .into_iter()
                        .rfind(|(a, b)| *a <= t && *b >= since - g.grace);
                    let property = if away.is_some() { '6' } else { '2' };
                    return Err(format!(
                        "{property}: {node} marked Unknown at {t}, {:.3}s after its kubelet stopped (grace {}s, the API away {away:?})",
                        t - since,
                        g.grace
                    ));
                }
                marked.entry(node.to_string()).or_default().push(t);
            }
            "TaintAdded" | "TaintRemoved" => {
                let added = e["type"] == "TaintAdded";
                let node = e["node"].as_str().unwrap_or_default().to_string();
                let taint = e["taint"].as_str().unwrap_or_default();
                if added && taint == format!("{UNREACHABLE}:NoExecute") {
                    // Lenient by a second: a decision taken just before a resume.
                    if g.silent_since(&node, t).is_none()
                        && g.silent_since(&node, t - 1.0).is_none()
                    {
                        return Err(format!(
                            "4: {taint} added to {node} at {t}, whose kubelet runs"
                        ));
                    }
                }
                if added
                    && taint == format!("{NOT_READY}:NoExecute")
                    && !g.reported_not_ready(&node, t)
                {
                    return Err(format!(
                        "4: {taint} added to {node} at {t}, never reported NotReady"
                    ));
                }
                if history.apply(e) == Some(true) {
                    pacing.taint(g.zone_of(&node), t, g)?;
                }
            }
            "PodDeleted" => {
                let name = e["pod"]
                    .as_str()
                    .unwrap_or_default()
                    .trim_start_matches("default/");
                let Some(pod) = g.pods.iter().find(|p| p.name == name) else {
                    continue;
                };
                if g.always_healthy(&pod.node, t)
                    && let Some((a, b)) = g.api_away().into_iter().rfind(|(a, _)| *a <= t)
                {
                    return Err(format!(
                        "6: {name} deleted at {t}, its node {}'s kubelet never stopped (the API away {a}-{b})",
                        pod.node
                    ));
                }
                let Some((keys, start)) = history.on(&pod.node) else {
                    return Err(format!(
                        "1: {name} deleted at {t} with no NoExecute taint on {}",
                        pod.node
                    ));
                };
                let tol = g.tolerations_at(pod, t);
                let due = keys
                    .iter()
                    .filter_map(|k| tol.of(k))
                    .min()
                    .map(|s| start + s as f64);
                match due {
                    None => {
                        return Err(format!(
                            "1: {name} deleted at {t} but tolerates {keys:?} forever"
                        ));
                    }
                    Some(due) if t < due - 0.001 => {
                        return Err(format!(
                            "1: {name} deleted at {t}, due at {due} (taint since {start})"
                        ));
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    // 2 and 6, timeliness: a stop is marked by its deadline (grace + period + slack after the
    // stop, or after the end of the API's absence that overlapped its countdown).
    for (at, act) in &g.events {
        let Act::Stop(node) = act else { continue };
        let at = *at as f64;
        let (deadline, extended) = g.mark_deadline(at, &fresh_starts);
        let still_silent = g.silent_since(node, deadline) == Some(at);
        if still_silent
            && deadline < end
            && !g.unbounded_disturbance(at - g.grace - 30.0, deadline + 30.0)
        {
            let marks = marked.get(node).cloned().unwrap_or_default();
            if !marks.iter().any(|m| *m >= at && *m <= deadline) {
                let property = if extended { '6' } else { '2' };
                return Err(format!(
                    "{property}: {node} stopped at {at}, not marked by {deadline} (marked at {marks:?})"
                ));
            }
        }
    }
    // 4: a node Ready well before the end, and undisturbed, carries none of our taints.
    for (node, _) in &g.nodes {
        let last_change = g
            .events
            .iter()
            .filter(|(_, a)| match a {
                Act::Stop(n) | Act::Resume(n) | Act::Ready(n, _) => n == node,
                _ => false,
            })
            .map(|(at, _)| *at as f64)
            .fold(0.0, f64::max);
        let ready = g.silent_since(node, end).is_none() && !g.reported_not_ready(node, end);
        if ready
            && last_change + 60.0 < end
            && !g.disturbed(last_change, end)
            && let Some((keys, _)) = history.on(node)
        {
            return Err(format!(
                "4: {node} Ready since {last_change} still tainted {keys:?} at the end"
            ));
        }
    }
    Ok(())
}

/// `g` with as little as still breaks the same property.
fn reduce(mut g: Gen, seed: u64, property: char) -> Gen {
    let breaks = |g: &Gen| matches!(check(g, seed), Err(e) if e.starts_with(property));
    let mut i = 0;
    while i < g.events.len() {
        let mut fewer = g.clone();
        fewer.events.remove(i);
        if breaks(&fewer) { g = fewer } else { i += 1 }
    }
    let mut i = 0;
    while i < g.pods.len() {
        let mut fewer = g.clone();
        fewer.pods.remove(i);
        if breaks(&fewer) { g = fewer } else { i += 1 }
    }
    g
}

#[test]
fn random_scenarios_keep_every_invariant() {
    let count: u64 = std::env::var("NLC_INVARIANT_SCENARIOS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let first: u64 = std::env::var("NLC_INVARIANT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    // NLC_INVARIANT_ALL=1: check every seed and list every failure (unreduced) before failing.
    let all = std::env::var_os("NLC_INVARIANT_ALL").is_some();
    let mut failures: Vec<String> = Vec::new();
    let mut nodes = 0;
    for seed in first..first + count {
        let g = Gen::random(seed);
        nodes += g.nodes.len();
        if all {
            if let Err(e) = check(&g, seed) {
                eprintln!("seed {seed}: {e}");
                failures.push(e);
            }
            continue;
        }
        if let Err(e) = check(&g, seed) {
            let property = e.chars().next().unwrap_or('?');
            let small = reduce(g, seed, property);
            panic!(
                "seed {seed} (NLC_INVARIANT_SEED={seed} NLC_INVARIANT_SCENARIOS=1): {e}\n\
                 reduced scenario (simulate seed {seed}):\n{}",
                small.yaml()
            );
        }
    }
    let mut by_property: BTreeMap<char, usize> = BTreeMap::new();
    for e in &failures {
        *by_property
            .entry(e.chars().next().unwrap_or('?'))
            .or_default() += 1;
    }
    assert!(
        failures.is_empty(),
        "{} of {count} scenarios broke a property (by property: {by_property:?})",
        failures.len()
    );
    eprintln!("invariants: {count} scenarios from seed {first}, {nodes} nodes in all");
}

/// Seeds whose scenarios once broke a property: 213 deleted a pod 45 s early when a zone taint
/// that failed in an outage was retried with its first attempt's `timeAdded` (issue 18,
/// defect 1); 776 landed two taints of a zone 0.95 s apart at 1 node/s, both held back by an
/// outage (the pacing exemption of property 3); 7 and 182 taught the checker that a status
/// write is a sign of life and that a node may be marked more than once; 36611, that a
/// one-zone cluster leaving full disruption gives every node a fresh grace period; 56 deleted
/// a pod 46 s early, its taint written into an API hang and landing stamped with when it was
/// sent (2501: a 4 s hang; 2779: the same, then a controller restart that listed the taint);
/// 4017, 4609, 5767 and 7361 marked healthy nodes Unknown after an outage that ran into an
/// API restart (the leader election, still unanswered, never said so again).
#[test]
fn seeds_that_once_broke_an_invariant_keep_them_all() {
    for seed in [
        7, 56, 182, 213, 776, 2501, 2779, 4017, 4609, 5767, 7361, 36611,
    ] {
        for aligned in [false, true] {
            if let Err(e) = check(&Gen::random_with(seed, aligned), seed) {
                panic!("seed {seed} (aligned faults: {aligned}): {e}");
            }
        }
    }
}
