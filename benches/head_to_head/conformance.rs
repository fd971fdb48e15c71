//! The conformance table of the head-to-head bench: the behaviour of the two controllers in
//! one scenario, compared entry by entry and classified by written-down rules.
//!
//! A pure function of the two runs' sets ([`classify`]); unit-tested in
//! `tests/head_to_head_conformance.rs`. Every difference gets `same`, `deliberate difference`
//! (a [`Rule`], each naming its anchor in docs/differences.md) or `unexplained (possible bug)`
//! when no rule covers it. The rules, in the order they are tried for one differing entry:
//!
//! 1. [`RECHECKED`]: a pod deleted, or marked not ready, by upstream only, on a node that came
//!    back (in upstream's run, before that deletion; for marks, in ours' run). Ours decides
//!    every write again on the live node; upstream acts on what it decided earlier.
//! 2. [`ZONE_TIMING`] (zone-outage scenario only): a node of the outage zone tainted by one side
//!    only (or its pods deleted), when both sides kept to the zone's rate (the zone row below is `same`).
//!    Which nodes a disrupted zone's reduced rate reaches, and how many pass at the full rate
//!    before the zone's state changes, follow when each controller sees each heartbeat stop.
//! 3. [`RATE_LIMITED`]: an entry that the side lacking it had not reached by the end of the run,
//!    when that side was at its client-side rate limit (its busiest 10 s reached 90 % of its
//!    QPS). What waits under the limit is each controller's own choice. It explains a missing
//!    entry, never an extra one, nor one on a dead node that side untainted under a fault.
//!
//! A control-plane fault scenario (api-freeze, api-restart, etcd-freeze) adds rows that are not
//! comparisons but checks, each side on its own: a live node (its kubelet renewing throughout)
//! marked Unknown, tainted, or its pods marked not ready or deleted, is `wrong` whichever side
//! did it and whatever the other did; so is the node that died before the fault not marked
//! Unknown within a grace period and a monitor period of the fault's end, never tainted, or
//! untainted while its kubelet is still gone.
//!
//! Outside the sets: the wrong deletions are explained only by rule 1 (and only upstream's);
//! the missing ones only by rule 3; writes to healthy nodes never (under a fault they are wrong
//! for the side that made them); write verbs by
//! [`PATCHES`] (ours patches where upstream updates), or by rule 3 when the other side, at its
//! rate limit, never wrote that resource at all; Event API groups by [`EVENTS_API`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// A written-down rule: what it explains, and where docs/differences.md says so.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rule {
    pub name: &'static str,
    pub anchor: &'static str,
}

pub const RECHECKED: Rule = Rule {
    name: "ours decides each write again on the live node; upstream wrote after the node had come back",
    anchor: "writes-are-rechecked",
};
pub const ZONE_TIMING: Rule = Rule {
    name: "which nodes of a disrupted zone its rate reaches follows when each controller saw each heartbeat stop",
    anchor: "heartbeat-observed-on-arrival",
};
pub const RATE_LIMITED: Rule = Rule {
    name: "not reached by the end: that side was at its client-side rate limit, and what waits is each controller's choice",
    anchor: "no-client-side-rate-limit",
};
pub const PATCHES: Rule = Rule {
    name: "ours patches where upstream updates",
    anchor: "writes-are-guarded-patches",
};
pub const EVENTS_API: Rule = Rule {
    name: "ours writes Events through events.k8s.io/v1",
    anchor: "events-through-events-api",
};
/// Every rule, for the check that their anchors exist.
pub const RULES: [&Rule; 5] = [
    &RECHECKED,
    &ZONE_TIMING,
    &RATE_LIMITED,
    &PATCHES,
    &EVENTS_API,
];

pub fn node_name(i: usize) -> String {
    format!("node-{i:05}")
}

pub fn pod_name(node: usize, k: usize) -> String {
    format!("p-{node:05}-{k:02}")
}

pub fn node_index(name: &str) -> Option<usize> {
    name.strip_prefix("node-")?.parse().ok()
}

pub fn pod_node(name: &str) -> Option<usize> {
    name.strip_prefix("p-")?.split('-').next()?.parse().ok()
}

/// Whether a `pods/status` write (its audit request body) marks the pod not ready: it sets the
/// Ready condition to False. The DisruptionTarget condition written before a deletion does not.
pub fn is_not_ready_mark(body: &serde_json::Value) -> bool {
    body["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "False")
}

/// The node an entry (a node or a pod name) is about.
fn node_of(entry: &str) -> String {
    match pod_node(entry) {
        Some(i) => node_name(i),
        None => entry.to_string(),
    }
}

/// What one controller did in one run. Times are seconds after the fleet went silent.
#[derive(Clone, Debug, Default)]
pub struct Side {
    pub unknown: BTreeMap<String, f64>,
    pub tainted: BTreeMap<String, f64>,
    pub untainted: BTreeSet<String>,
    pub not_ready: BTreeSet<String>,
    pub deleted: BTreeMap<String, f64>,
    /// Recovering nodes: when their kubelet came back in this run.
    pub came_back: BTreeMap<String, f64>,
    pub wrong_deletions: BTreeSet<String>,
    pub missing_deletions: BTreeSet<String>,
    pub writes_to_healthy: u64,
    /// "verb resource/subresource" of its writes to nodes and pods.
    pub write_verbs: BTreeSet<String>,
    /// API groups of its Event writes ("" is core/v1).
    pub event_groups: BTreeSet<String>,
    pub events: u64,
    /// Its busiest 10 s, in requests a second, and its client-side QPS.
    pub peak_rate: f64,
    pub qps: f64,
    /// Fault scenarios: when the fault ended, seconds after the silence.
    pub fault_end: Option<f64>,
    /// What it wrote against live nodes (their kubelets renewing): marks and taints (seconds
    /// after the silence), pods marked not ready, pods deleted.
    pub live_unknown: BTreeMap<String, f64>,
    pub live_tainted: BTreeMap<String, f64>,
    pub live_not_ready: BTreeSet<String>,
    pub live_deleted: BTreeMap<String, f64>,
}

impl Side {
    pub fn saturated(&self) -> bool {
        self.qps > 0.0 && self.peak_rate >= 0.9 * self.qps
    }
}

/// The zone that loses most of its nodes, and the rules its rate follows.
#[derive(Clone, Debug)]
pub struct Outage {
    pub nodes: BTreeSet<String>,
    pub zone_size: usize,
    pub unhealthy: f64,
    pub large: usize,
    pub secondary: f64,
    pub monitor: f64,
    /// End of the run, seconds after the silence.
    pub end: f64,
}

impl Outage {
    /// Upstream's ReducedQPSFunc: the secondary rate for a zone larger than the large-cluster
    /// threshold, none for a smaller one.
    pub fn reduced_rate(&self) -> f64 {
        if self.zone_size > self.large {
            self.secondary
        } else {
            0.0
        }
    }
}

/// A control-plane fault: the nodes that died before it, and the bound on their marks.
#[derive(Clone, Debug)]
pub struct Fault {
    pub dead: BTreeSet<String>,
    pub grace: f64,
    pub monitor: f64,
}

#[derive(Clone, Debug, Default)]
pub struct Scenario {
    pub recovering: BTreeSet<String>,
    pub outage: Option<Outage>,
    pub fault: Option<Fault>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Class {
    Same,
    /// Each rule with how many entries it explains.
    Deliberate(Vec<(&'static Rule, usize)>),
    /// How many entries no rule explains, and the rules that explain the others.
    Unexplained(usize, Vec<(&'static Rule, usize)>),
    /// Wrong on its own, whatever the other side did: the sides that did it.
    Wrong(Vec<&'static str>),
}

#[derive(Clone, Debug)]
pub struct Row {
    pub outcome: String,
    pub class: Class,
    pub detail: String,
}

impl Row {
    /// The row as markdown; a rule shows as its anchor (the report lists what each one says)
    /// with how many entries it explains.
    pub fn markdown(&self) -> String {
        let rules = |rs: &[(&Rule, usize)]| {
            rs.iter()
                .map(|(r, n)| format!("[{}](docs/differences.md#{}) ({n})", r.anchor, r.anchor))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let class = match &self.class {
            Class::Same => "same".to_string(),
            Class::Deliberate(rs) => format!("deliberate difference: {}", rules(rs)),
            Class::Unexplained(n, rs) if rs.is_empty() => {
                format!("**unexplained (possible bug)**: {n} entries")
            }
            Class::Unexplained(n, rs) => format!(
                "**unexplained (possible bug)**: {n} entries; the others: {}",
                rules(rs)
            ),
            Class::Wrong(sides) => format!("**wrong**: {}", sides.join(", ")),
        };
        format!("| {} | {} | {} |", self.outcome, class, self.detail)
    }
}

/// Classifies a list of differing entries: each gets a rule, or none.
fn tally(entries: &[(String, Option<&'static Rule>)]) -> Class {
    if entries.is_empty() {
        return Class::Same;
    }
    let mut by: BTreeMap<&'static Rule, usize> = BTreeMap::new();
    let mut none = 0;
    for (_, r) in entries {
        match r {
            Some(r) => *by.entry(r).or_default() += 1,
            None => none += 1,
        }
    }
    let rules: Vec<_> = by.into_iter().collect();
    if none == 0 {
        Class::Deliberate(rules)
    } else {
        Class::Unexplained(none, rules)
    }
}

/// Entries summed up by node ("node-00003 (24)"), at most eight.
fn by_node<'a>(entries: impl Iterator<Item = &'a String>) -> String {
    let mut n: BTreeMap<String, usize> = BTreeMap::new();
    for e in entries {
        *n.entry(node_of(e)).or_default() += 1;
    }
    let mut parts: Vec<String> = n
        .iter()
        .take(8)
        .map(|(k, c)| {
            if *c > 1 {
                format!("{k} ({c})")
            } else {
                k.clone()
            }
        })
        .collect();
    if n.len() > 8 {
        parts.push(format!("… {} nodes in all", n.len()));
    }
    parts.join(", ")
}

/// The outage zone's taints against its state's rate, for one side: `Ok(text)` when it kept
/// to the rate, `Err((text, too_many))` when not.
fn zone_check(o: &Outage, s: &Side) -> Result<String, (String, bool)> {
    let mut unknown: Vec<f64> = o
        .nodes
        .iter()
        .filter_map(|n| s.unknown.get(n).copied())
        .collect();
    unknown.sort_by(f64::total_cmp);
    let need = (o.unhealthy * o.zone_size as f64).ceil() as usize;
    let taints = |from: f64| {
        o.nodes
            .iter()
            .filter_map(|n| s.tainted.get(n))
            .filter(|t| **t > from)
            .count()
    };
    let Some(&crossed) = unknown.get(need.saturating_sub(1)) else {
        return Err((
            format!(
                "{} of the zone's {} nodes Unknown by the end (the threshold needs {need}); {} tainted",
                unknown.len(),
                o.zone_size,
                taints(f64::NEG_INFINITY)
            ),
            false,
        ));
    };
    // The zone's state is recomputed in the next monitor pass; a limiter may hold one token.
    let from = crossed + o.monitor + 1.0;
    let window = (o.end - from).max(0.0);
    let expected = o.reduced_rate() * window;
    let after = taints(from);
    let text = format!(
        "threshold crossed at {crossed:.1} s; {} tainted before, {after} in the {window:.0} s after (rate {}/s allows {expected:.1})",
        taints(f64::NEG_INFINITY) - after,
        o.reduced_rate()
    );
    if after as f64 > expected.floor() + 2.0 {
        Err((text, true))
    } else if after as f64 + 2.0 < expected.floor() {
        Err((text, false))
    } else {
        Ok(text)
    }
}

/// `Wrong` naming the sides for which `bad` holds, or `Same`.
fn wrong_if(ours: &Side, up: &Side, bad: impl Fn(&Side) -> bool) -> Class {
    let sides: Vec<&'static str> = [("ours", ours), ("upstream", up)]
        .into_iter()
        .filter(|(_, s)| bad(s))
        .map(|(n, _)| n)
        .collect();
    if sides.is_empty() {
        Class::Same
    } else {
        Class::Wrong(sides)
    }
}

/// Times after the fault's end: "node-00003 +1.2 s, …" (at most eight).
fn after_end(side: &Side, m: &BTreeMap<String, f64>) -> String {
    let end = side.fault_end.unwrap_or(0.0);
    let mut parts: Vec<String> = m
        .iter()
        .take(8)
        .map(|(k, t)| format!("{k} {:+.1} s", t - end))
        .collect();
    if m.len() > 8 {
        parts.push(format!("… {} in all", m.len()));
    }
    parts.join(", ")
}

/// The fault's checks: nothing written against live nodes, and the dead node found.
fn fault_rows(f: &Fault, ours: &Side, up: &Side) -> Vec<Row> {
    let mut rows = vec![];
    let nodes = |outcome: &str, m: fn(&Side) -> &BTreeMap<String, f64>| Row {
        outcome: outcome.to_string(),
        class: wrong_if(ours, up, |s| !m(s).is_empty()),
        detail: format!(
            "ours {}{}, upstream {}{} (s after the fault's end)",
            m(ours).len(),
            paren(after_end(ours, m(ours))),
            m(up).len(),
            paren(after_end(up, m(up)))
        ),
    };
    rows.push(nodes("live nodes marked Unknown", |s| &s.live_unknown));
    rows.push(nodes("live nodes tainted unreachable:NoExecute", |s| {
        &s.live_tainted
    }));
    rows.push(Row {
        outcome: "live nodes' pods marked not ready".into(),
        class: wrong_if(ours, up, |s| !s.live_not_ready.is_empty()),
        detail: format!(
            "ours {}{}, upstream {}{}",
            ours.live_not_ready.len(),
            paren(by_node(ours.live_not_ready.iter())),
            up.live_not_ready.len(),
            paren(by_node(up.live_not_ready.iter()))
        ),
    });
    rows.push(Row {
        outcome: "live nodes' pods deleted".into(),
        class: wrong_if(ours, up, |s| !s.live_deleted.is_empty()),
        detail: format!(
            "ours {}{}, upstream {}{}",
            ours.live_deleted.len(),
            paren(by_node(ours.live_deleted.keys())),
            up.live_deleted.len(),
            paren(by_node(up.live_deleted.keys()))
        ),
    });
    let bound = f.grace + f.monitor;
    let dead = |m: fn(&Side) -> &BTreeMap<String, f64>, s: &Side| {
        let found: BTreeMap<String, f64> = f
            .dead
            .iter()
            .filter_map(|n| m(s).get(n).map(|t| (n.clone(), *t)))
            .collect();
        let text = if found.is_empty() {
            "never".to_string()
        } else {
            after_end(s, &found)
        };
        (found, text)
    };
    let late = |s: &Side| {
        let (found, _) = dead(|s| &s.unknown, s);
        let end = s.fault_end.unwrap_or(f64::INFINITY);
        found.len() < f.dead.len() || found.values().any(|t| t - end > bound)
    };
    rows.push(Row {
        outcome: format!(
            "dead node marked Unknown, at most grace + monitor period ({bound:.0} s) after the fault's end"
        ),
        class: wrong_if(ours, up, late),
        detail: format!(
            "ours {}; upstream {} (s after the fault's end)",
            dead(|s| &s.unknown, ours).1,
            dead(|s| &s.unknown, up).1
        ),
    });
    rows.push(Row {
        outcome: "dead node tainted unreachable:NoExecute".into(),
        class: wrong_if(ours, up, |s| dead(|s| &s.tainted, s).0.len() < f.dead.len()),
        detail: format!(
            "ours {}; upstream {} (s after the fault's end)",
            dead(|s| &s.tainted, ours).1,
            dead(|s| &s.tainted, up).1
        ),
    });
    // Its kubelet never comes back: nothing may take the taint off.
    let untainted = |s: &Side| f.dead.iter().filter(|n| s.untainted.contains(*n)).count();
    rows.push(Row {
        outcome: "dead node keeps its taint to the end (its kubelet never came back)".into(),
        class: wrong_if(ours, up, |s| untainted(s) > 0),
        detail: format!(
            "untainted: ours {}, upstream {}",
            untainted(ours),
            untainted(up)
        ),
    });
    rows
}

/// The conformance rows of one scenario.
pub fn classify(s: &Scenario, ours: &Side, up: &Side) -> Vec<Row> {
    let mut rows = vec![];
    if let Some(f) = &s.fault {
        rows.extend(fault_rows(f, ours, up));
    }
    let lacking = |present_in_ours: bool| if present_in_ours { up } else { ours };

    // The outage zone's rate first: the taint sets' rule 2 depends on it.
    let mut zone_ok = false;
    if let Some(o) = &s.outage {
        let (a, b) = (zone_check(o, ours), zone_check(o, up));
        let text = |r: &Result<String, (String, bool)>| match r {
            Ok(t) | Err((t, _)) => t.clone(),
        };
        let mut entries = vec![];
        for (side, r) in [(ours, &a), (up, &b)] {
            if let Err((_, too_many)) = r {
                let rule = (!too_many && side.saturated()).then_some(&RATE_LIMITED);
                entries.push(("zone".to_string(), rule));
            }
        }
        zone_ok = a.is_ok() && b.is_ok();
        rows.push(Row {
            outcome: format!(
                "outage zone ({} nodes, {} silent) tainted at its state's rate ({}/s once ≥ {} are Unknown)",
                o.zone_size,
                o.nodes.len(),
                o.reduced_rate(),
                o.unhealthy
            ),
            class: tally(&entries),
            detail: format!("ours: {}; upstream: {}", text(&a), text(&b)),
        });
    }
    let in_outage = |node: &str| s.outage.as_ref().is_some_and(|o| o.nodes.contains(node));
    let taint_differs =
        |node: &str| ours.tainted.contains_key(node) != up.tainted.contains_key(node);

    #[derive(Clone, Copy, PartialEq)]
    enum Kind {
        Unknown,
        Tainted,
        Untainted,
        NotReady,
        Deleted,
    }
    // A side that untainted a dead node did not fall behind on it: it stopped, wrongly (the
    // fault's row says so), so what it then lacks there is not lateness.
    let gave_up = |side: &Side, node: &str| {
        s.fault.as_ref().is_some_and(|f| f.dead.contains(node)) && side.untainted.contains(node)
    };
    let explain = |kind: Kind, entry: &str, in_ours: bool| -> Option<&'static Rule> {
        let node = node_of(entry);
        if !in_ours && s.recovering.contains(&node) {
            match kind {
                Kind::Deleted => {
                    if let (Some(d), Some(b)) = (up.deleted.get(entry), up.came_back.get(&node))
                        && d > b
                    {
                        return Some(&RECHECKED);
                    }
                }
                Kind::NotReady if ours.came_back.contains_key(&node) => return Some(&RECHECKED),
                _ => {}
            }
        }
        if zone_ok
            && in_outage(&node)
            && (kind == Kind::Tainted || (kind == Kind::Deleted && taint_differs(&node)))
        {
            return Some(&ZONE_TIMING);
        }
        if lacking(in_ours).saturated() && !gave_up(lacking(in_ours), &node) {
            return Some(&RATE_LIMITED);
        }
        None
    };
    let keys = |m: &BTreeMap<String, f64>| m.keys().cloned().collect::<BTreeSet<String>>();
    let sets: [(&str, Kind, BTreeSet<String>, BTreeSet<String>); 5] = [
        (
            "silent nodes marked Unknown",
            Kind::Unknown,
            keys(&ours.unknown),
            keys(&up.unknown),
        ),
        (
            "nodes tainted unreachable:NoExecute",
            Kind::Tainted,
            keys(&ours.tainted),
            keys(&up.tainted),
        ),
        (
            "recovered nodes untainted",
            Kind::Untainted,
            ours.untainted.clone(),
            up.untainted.clone(),
        ),
        (
            "pods marked not ready",
            Kind::NotReady,
            ours.not_ready.clone(),
            up.not_ready.clone(),
        ),
        (
            "pods deleted",
            Kind::Deleted,
            keys(&ours.deleted),
            keys(&up.deleted),
        ),
    ];
    for (outcome, kind, a, b) in sets {
        let only_a: Vec<&String> = a.difference(&b).collect();
        let only_b: Vec<&String> = b.difference(&a).collect();
        let entries: Vec<(String, Option<&'static Rule>)> = only_a
            .iter()
            .map(|e| (e.to_string(), explain(kind, e, true)))
            .chain(
                only_b
                    .iter()
                    .map(|e| (e.to_string(), explain(kind, e, false))),
            )
            .collect();
        let mut detail = format!("ours {}, upstream {}", a.len(), b.len());
        if !only_a.is_empty() {
            write!(detail, "; only ours: {}", by_node(only_a.iter().copied())).unwrap();
        }
        if !only_b.is_empty() {
            write!(
                detail,
                "; only upstream: {}",
                by_node(only_b.iter().copied())
            )
            .unwrap();
        }
        rows.push(Row {
            outcome: outcome.to_string(),
            class: tally(&entries),
            detail,
        });
    }

    // Wrong deletions: only upstream's on a node back before them are explained.
    let mut entries = vec![];
    for e in &ours.wrong_deletions {
        entries.push((e.clone(), None));
    }
    for e in &up.wrong_deletions {
        let node = node_of(e);
        let after_back =
            matches!((up.deleted.get(e), up.came_back.get(&node)), (Some(d), Some(b)) if d > b);
        entries.push((e.clone(), after_back.then_some(&RECHECKED)));
    }
    rows.push(Row {
        outcome: "wrong deletions (after the node came back, or > 1 s before due)".into(),
        class: tally(&entries),
        detail: format!(
            "ours {}{}, upstream {}{}",
            ours.wrong_deletions.len(),
            paren(by_node(ours.wrong_deletions.iter())),
            up.wrong_deletions.len(),
            paren(by_node(up.wrong_deletions.iter()))
        ),
    });
    let mut entries = vec![];
    for side in [ours, up] {
        for e in &side.missing_deletions {
            let late = side.saturated() && !gave_up(side, &node_of(e));
            entries.push((e.clone(), late.then_some(&RATE_LIMITED)));
        }
    }
    rows.push(Row {
        outcome: "missing deletions (due > 5 s before the end, not deleted)".into(),
        class: tally(&entries),
        detail: format!(
            "ours {}{}, upstream {}{}",
            ours.missing_deletions.len(),
            paren(by_node(ours.missing_deletions.iter())),
            up.missing_deletions.len(),
            paren(by_node(up.missing_deletions.iter()))
        ),
    });
    let healthy = ours.writes_to_healthy + up.writes_to_healthy;
    rows.push(Row {
        outcome: "writes to healthy nodes and their pods".into(),
        class: if s.fault.is_some() {
            // Under a fault the rows above say what they were; each is wrong on its own.
            wrong_if(ours, up, |s| s.writes_to_healthy > 0)
        } else if healthy == 0 {
            Class::Same
        } else {
            Class::Unexplained(healthy as usize, vec![])
        },
        detail: format!(
            "ours {}, upstream {}",
            ours.writes_to_healthy, up.writes_to_healthy
        ),
    });
    // A verb one side used on a resource the other, at its rate limit, never wrote at all is
    // work not reached (rule 3); otherwise ours' patches against upstream's updates.
    let verb_rule = |e: &String, other: &Side, own_verb: &str| {
        let what = e.split_once(' ').map_or("", |(_, w)| w);
        let other_wrote = other
            .write_verbs
            .iter()
            .any(|v| v.ends_with(&format!(" {what}")));
        if e.starts_with(own_verb) {
            Some(&PATCHES)
        } else if !other_wrote && other.saturated() {
            Some(&RATE_LIMITED)
        } else {
            None
        }
    };
    let mut entries = vec![];
    for e in ours.write_verbs.difference(&up.write_verbs) {
        entries.push((e.clone(), verb_rule(e, up, "patch ")));
    }
    for e in up.write_verbs.difference(&ours.write_verbs) {
        entries.push((e.clone(), verb_rule(e, ours, "update ")));
    }
    rows.push(Row {
        outcome: "how nodes and pods are written".into(),
        class: tally(&entries),
        detail: format!(
            "ours {}; upstream {}",
            list(&ours.write_verbs),
            list(&up.write_verbs)
        ),
    });
    let group = |g: &String| {
        if g.is_empty() {
            "core/v1".to_string()
        } else {
            g.clone()
        }
    };
    let mut entries = vec![];
    for (e, other) in [
        (&ours.event_groups, &up.event_groups),
        (&up.event_groups, &ours.event_groups),
    ] {
        for g in e.difference(other) {
            let is_ours = std::ptr::eq(e, &ours.event_groups);
            let rule = (is_ours == (g == "events.k8s.io")).then_some(&EVENTS_API);
            entries.push((g.clone(), rule));
        }
    }
    rows.push(Row {
        outcome: "Events: API".into(),
        class: tally(&entries),
        detail: format!(
            "ours {}; upstream {}",
            list(&ours.event_groups.iter().map(group).collect()),
            list(&up.event_groups.iter().map(group).collect())
        ),
    });
    let count_class = if ours.events == up.events {
        Class::Same
    } else {
        let fewer = if ours.events < up.events { ours } else { up };
        tally(&[(String::new(), fewer.saturated().then_some(&RATE_LIMITED))])
    };
    rows.push(Row {
        outcome: "Events: how many".into(),
        class: count_class,
        detail: format!("ours {}, upstream {}", ours.events, up.events),
    });
    rows
}

fn paren(s: String) -> String {
    if s.is_empty() { s } else { format!(" ({s})") }
}

fn list(s: &BTreeSet<String>) -> String {
    if s.is_empty() {
        "none".into()
    } else {
        s.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}
