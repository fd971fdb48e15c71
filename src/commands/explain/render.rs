//! The answers as people read them: a few sentences and tables.

use crate::logic::explain::{
    Cancel, Controller, Envelope, NodeReport, NodeView, PodAnswer, PodOutcome, PodReport, Reason,
    Removal, Role, Source, StatusReport, TaintView, TolerationView, Upcoming, ZoneReport, ZoneView,
};
use jiff::Timestamp;
use std::fmt::Write;

/// `t`, and how far from `now` it is (`in 4m 55s`, `3s ago`).
fn when(t: Timestamp, now: Timestamp) -> String {
    let secs = t.as_second() - now.as_second();
    let span = humantime::format_duration(std::time::Duration::from_secs(secs.unsigned_abs()));
    match secs {
        0 => format!("{t} (now)"),
        s if s > 0 => format!("{t} (in {span})"),
        _ => format!("{t} ({span} ago)"),
    }
}

fn opt_time(t: Option<Timestamp>) -> String {
    t.map_or("-".into(), |t| t.to_string())
}

fn taint(t: &TaintView) -> String {
    let value = t
        .value
        .as_deref()
        .map(|v| format!("={v}"))
        .unwrap_or_default();
    format!("{}{value}:{}", t.key, t.effect)
}

fn toleration(t: &TolerationView) -> String {
    let what = match (&t.key, t.operator.as_deref(), &t.value) {
        (None, _, _) => "every taint".to_string(),
        (Some(k), Some("Equal") | None, Some(v)) => format!("{k}={v}"),
        (Some(k), _, _) => k.clone(),
    };
    let effect = t.effect.as_deref().unwrap_or("any effect");
    match t.toleration_seconds {
        Some(s) => format!("tolerates {what} ({effect}) for {s}s"),
        None => format!("tolerates {what} ({effect}) forever"),
    }
}

/// One reason as a sentence.
pub fn reason(r: &Reason) -> String {
    match r {
        Reason::NotBound => "the pod is bound to no node".into(),
        Reason::Terminating { since } => {
            format!("the pod is being deleted already (since {since})")
        }
        Reason::NodeNotFound { node } => format!("its node {node} is not in the cluster any more"),
        Reason::NodeHealthy { node } => format!("node {node} is Ready and has no NoExecute taint"),
        Reason::NoReadyCondition { node } => format!(
            "node {node} has no Ready condition yet: it is marked Unknown only after its startup grace period"
        ),
        Reason::ToleratesForever { tolerated } => {
            let each: Vec<String> = tolerated
                .iter()
                .map(|t| format!("{} ({})", taint(&t.taint), toleration(&t.toleration)))
                .collect();
            format!(
                "it tolerates every NoExecute taint of its node forever: {}",
                each.join("; ")
            )
        }
        Reason::NotActing { role } => format!("this controller does not act: {}", role_text(role)),
        Reason::GuardHolding {
            stale_watches,
            api_unanswered_since,
        } => {
            let mut s =
                "the staleness guard does not trust the heartbeat data, so no node is tainted"
                    .to_string();
            if !stale_watches.is_empty() {
                let _ = write!(s, " (stale watches: {})", stale_watches.join(", "));
            }
            if let Some(t) = api_unanswered_since {
                let _ = write!(s, " (the API server has not answered since {t})");
            }
            s
        }
        Reason::BreakerOpen {
            not_ready,
            counted,
            max_unhealthy_fraction,
        } => format!(
            "NoExecute tainting is paused: {not_ready} of {counted} nodes are not Ready, more than --max-unhealthy-fraction={}",
            max_unhealthy_fraction.map_or("-".into(), |f| f.to_string())
        ),
        Reason::ZonePaused {
            zone,
            state,
            all_zones_fully_disrupted,
        } => {
            if *all_zones_fully_disrupted {
                format!(
                    "zone {zone:?} is {state} like every zone: the controller taints nothing until some node is Ready again"
                )
            } else {
                format!("zone {zone:?} is {state}: its tainting rate is 0")
            }
        }
        Reason::WaitingInZoneQueue {
            zone,
            position,
            next_release,
        } => format!(
            "the node waits in zone {zone:?}'s rate-limited queue (position {position}, next release {})",
            opt_time(*next_release)
        ),
        Reason::TaintOnItsWay { node } => {
            format!("node {node}'s NoExecute taint was asked for and has not shown yet")
        }
        Reason::DryRun => "--dry-run: the controller writes nothing, so nothing is deleted".into(),
        Reason::EvictionMayBeRefused => {
            "--eviction-mode=evict: a PodDisruptionBudget may refuse the eviction (it is retried)"
                .into()
        }
    }
}

fn role_text(role: &Role) -> String {
    match role {
        Role::Leader => "leader".into(),
        Role::Starting => "leader, caches not synced yet".into(),
        Role::Standby { leader: Some(l) } => format!("standby (the leader is {l})"),
        Role::Standby { leader: None } => "standby (no leader known)".into(),
        Role::NotReached { leader } => format!(
            "not reached{} (answer worked out from the cluster's objects, default settings)",
            leader
                .as_deref()
                .map(|l| format!(", the Lease names {l}"))
                .unwrap_or_default()
        ),
    }
}

fn header<T>(e: &Envelope<T>) -> String {
    let c: &Controller = &e.controller;
    let mut s = String::new();
    if e.source == Source::ClusterState {
        s.push_str("Computed from the cluster's state: no controller answered.\n");
    }
    let _ = writeln!(
        s,
        "Controller: {}; removal: {}{}; heartbeats: {}; breaker: {}{}",
        role_text(&c.role),
        match c.removal {
            Removal::Delete => "delete",
            Removal::Evict => "evict (PodDisruptionBudgets honoured)",
        },
        if c.dry_run { "; DRY RUN" } else { "" },
        if c.guard.heartbeats_trusted {
            "trusted"
        } else {
            "NOT trusted (staleness guard holding)"
        },
        if c.breaker.open { "OPEN" } else { "closed" },
        if c.all_zones_fully_disrupted {
            "; every zone fully disrupted: tainting stopped"
        } else {
            ""
        },
    );
    let _ = writeln!(s, "As of {}\n", e.now);
    s
}

/// Columns padded to their widest cell.
fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                let _ = write!(l, "{cell:<w$}  ");
            }
        }
        l.trim_end().to_string() + "\n"
    };
    let mut out = line(head.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

fn zone_rows(zones: &[ZoneView]) -> Vec<Vec<String>> {
    zones
        .iter()
        .map(|z| {
            vec![
                if z.zone.is_empty() {
                    "\"\"".into()
                } else {
                    z.zone.clone()
                },
                z.state.clone(),
                z.rate_per_second.to_string(),
                z.queued.len().to_string(),
                opt_time(z.next_release),
            ]
        })
        .collect()
}

const ZONE_HEAD: [&str; 5] = ["ZONE", "STATE", "RATE/S", "QUEUED", "NEXT RELEASE"];
const NODE_HEAD: [&str; 7] = [
    "NODE",
    "ZONE",
    "READY",
    "UNKNOWN SINCE",
    "NOEXECUTE TAINTS",
    "PODS (NOT READY)",
    "NOT TAINTED BECAUSE",
];

fn node_rows(nodes: &[NodeView]) -> Vec<Vec<String>> {
    nodes
        .iter()
        .map(|n| {
            let taints: Vec<String> = n
                .taints
                .iter()
                .filter(|t| t.effect == "NoExecute")
                .map(|t| format!("{} since {}", t.key, opt_time(t.time_added)))
                .collect();
            let held: Vec<&str> = n
                .tainting_held_by
                .iter()
                .map(|r| match r {
                    Reason::GuardHolding { .. } => "guard",
                    Reason::BreakerOpen { .. } => "breaker",
                    Reason::ZonePaused { .. } => "zone paused",
                    Reason::WaitingInZoneQueue { .. } => "zone queue",
                    Reason::DryRun => "dry run",
                    Reason::NotActing { .. } => "not acting",
                    _ => "on its way",
                })
                .collect();
            vec![
                n.name.clone(),
                n.zone.clone(),
                n.ready.clone().unwrap_or("-".into()),
                opt_time(n.unknown_since),
                if taints.is_empty() {
                    "-".into()
                } else {
                    taints.join(", ")
                },
                format!("{} ({})", n.pods, n.pods_not_ready),
                if held.is_empty() {
                    "-".into()
                } else {
                    held.join(", ")
                },
            ]
        })
        .collect()
}

/// One part of `status`: a table, or a sentence when it has no row and `empty` gives one.
pub(super) struct Part {
    pub title: &'static str,
    pub head: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
    pub empty: Option<&'static str>,
}

/// What `status` shows, in its order, for the terminal and the HTML page alike: the zones,
/// the nodes not Ready or tainted, the deletions ahead.
pub(super) fn status_parts(e: &Envelope<StatusReport>) -> [Part; 3] {
    let deletions = e
        .answer
        .deletions
        .iter()
        .map(|d| vec![when(d.due_at, e.now), d.pod.clone(), d.node.clone()])
        .collect();
    [
        Part {
            title: "Zones",
            head: ZONE_HEAD.to_vec(),
            rows: zone_rows(&e.answer.zones),
            empty: None,
        },
        Part {
            title: "Nodes not Ready or with a NoExecute taint",
            head: NODE_HEAD.to_vec(),
            rows: node_rows(&e.answer.nodes),
            empty: Some("Every node is Ready and without NoExecute taints."),
        },
        Part {
            title: "Deletions ahead, earliest first",
            head: vec!["DUE", "POD", "NODE"],
            rows: deletions,
            empty: Some("No deletion due in the time asked about."),
        },
    ]
}

/// The answer's header lines (role, removal, guard, breaker; its time).
fn header_lines<T>(e: &Envelope<T>) -> Vec<String> {
    header(e)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// `status` as tables.
pub fn status(e: &Envelope<StatusReport>) -> String {
    let mut s = header(e);
    for (i, part) in status_parts(e).iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        match part.empty.filter(|_| part.rows.is_empty()) {
            Some(sentence) => {
                s.push_str(sentence);
                s.push('\n');
            }
            None => s.push_str(&table(&part.head, &part.rows)),
        }
    }
    s
}

/// `status` as the top of the HTML page: the same header and parts as the text, each part
/// under its title and drawn by the what-if report's table; `what_if` gives, for each deletion
/// ahead, when the what-if of the page deletes that pod.
pub(super) fn status_html(
    e: &Envelope<StatusReport>,
    what_if: &dyn Fn(&Upcoming) -> String,
) -> String {
    use crate::sim::report::{esc, html_table};
    let mut h = String::from("<h2>Now: the leader's answer</h2>\n");
    for line in header_lines(e) {
        let _ = writeln!(h, "<p>{}</p>", esc(&line));
    }
    let [zones, nodes, mut deletions] = status_parts(e);
    deletions.head.push("THE WHAT-IF DELETES IT AT");
    for (row, d) in deletions.rows.iter_mut().zip(&e.answer.deletions) {
        row.push(what_if(d));
    }
    for part in [zones, nodes, deletions] {
        let _ = writeln!(h, "<h3>{}</h3>", esc(part.title));
        match part.empty.filter(|_| part.rows.is_empty()) {
            Some(sentence) => {
                let _ = writeln!(h, "<p>{}</p>", esc(sentence));
            }
            None => h.push_str(&html_table(&part.head, &part.rows)),
        }
    }
    h
}

/// One pod's answer as sentences.
fn pod_answer(p: &PodAnswer, now: Timestamp) -> String {
    let mut s = format!(
        "Pod {} on node {}\n",
        p.pod,
        p.node.as_deref().unwrap_or("(none)")
    );
    let decided_by = |s: &mut String, t: &TaintView, tol: &Option<TolerationView>| {
        let _ = writeln!(
            s,
            "  decided by taint {} (timeAdded {}, counting from {})",
            taint(t),
            opt_time(t.time_added),
            opt_time(t.counts_from)
        );
        let _ = match tol {
            Some(tol) => writeln!(s, "  and the toleration that {}", toleration(tol)),
            None => writeln!(s, "  which the pod does not tolerate"),
        };
    };
    match &p.outcome {
        PodOutcome::DeletionDue {
            due_at,
            taint: t,
            toleration: tol,
            scheduled,
            cancelled_by,
        } => {
            let _ = writeln!(s, "Deletion due at {}", when(*due_at, now));
            decided_by(&mut s, t, tol);
            if !scheduled {
                s.push_str("  (worked out, not held by a running countdown)\n");
            }
            let ifs: Vec<String> = cancelled_by
                .iter()
                .map(|c| match c {
                    Cancel::NodeReady { node } => format!("node {node} turns Ready"),
                    Cancel::TaintRemoved { node, key } => format!("taint {key} leaves node {node}"),
                })
                .collect();
            let _ = writeln!(s, "  cancelled if {}", ifs.join(", or "));
        }
        PodOutcome::DeletionSent {
            due_at,
            taint: t,
            toleration: tol,
        } => {
            let _ = writeln!(s, "Deletion sent (due at {})", when(*due_at, now));
            decided_by(&mut s, t, tol);
        }
        PodOutcome::NoDeletion { reasons } => {
            s.push_str("No deletion ahead:\n");
            for r in reasons {
                let _ = writeln!(s, "  - {}", reason(r));
            }
        }
    }
    for c in &p.caveats {
        let _ = writeln!(s, "  but: {}", reason(c));
    }
    s
}

/// `explain pod`.
pub fn pod(e: &Envelope<PodReport>) -> String {
    let mut s = header(e);
    match &e.answer.pod {
        Some(p) => s.push_str(&pod_answer(p, e.now)),
        None => s.push_str("No such pod in the controller's cache.\n"),
    }
    s
}

/// `explain node`.
pub fn node(e: &Envelope<NodeReport>) -> String {
    let mut s = header(e);
    let Some(n) = &e.answer.node else {
        s.push_str("No such node in the controller's cache.\n");
        return s;
    };
    s.push_str(&table(&NODE_HEAD, &node_rows(std::slice::from_ref(n))));
    for r in &n.tainting_held_by {
        let _ = writeln!(s, "Not tainted yet: {}", reason(r));
    }
    if let Some(z) = &e.answer.zone {
        s.push('\n');
        s.push_str(&table(&ZONE_HEAD, &zone_rows(std::slice::from_ref(z))));
    }
    for p in &e.answer.pods {
        s.push('\n');
        s.push_str(&pod_answer(p, e.now));
    }
    s
}

/// `explain zone`.
pub fn zone(e: &Envelope<ZoneReport>) -> String {
    let mut s = header(e);
    let Some(z) = &e.answer.zone else {
        s.push_str("No such zone.\n");
        return s;
    };
    s.push_str(&table(&ZONE_HEAD, &zone_rows(std::slice::from_ref(z))));
    if !z.queued.is_empty() {
        let _ = writeln!(
            s,
            "Queued for their NoExecute taint: {}",
            z.queued.join(", ")
        );
    }
    s.push('\n');
    if e.answer.nodes.is_empty() {
        s.push_str("Every node of the zone is Ready and without NoExecute taints.\n");
    } else {
        s.push_str(&table(&NODE_HEAD, &node_rows(&e.answer.nodes)));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logic::explain::{BreakerView, GuardView, Tolerated};
    use crate::testing::at;

    fn leader() -> Controller {
        Controller {
            role: Role::Leader,
            dry_run: false,
            removal: Removal::Delete,
            guard: GuardView {
                heartbeats_trusted: true,
                ..GuardView::default()
            },
            breaker: BreakerView::default(),
            all_zones_fully_disrupted: false,
        }
    }

    fn unreachable(added: i64) -> TaintView {
        TaintView {
            key: "node.kubernetes.io/unreachable".into(),
            value: None,
            effect: "NoExecute".into(),
            time_added: Some(at(added)),
            counts_from: Some(at(added)),
        }
    }

    #[test]
    fn a_due_deletion_reads_as_when_by_which_taint_and_toleration_and_what_cancels_it() {
        let answer = PodAnswer {
            pod: "default/web".into(),
            node: Some("n1".into()),
            outcome: PodOutcome::DeletionDue {
                due_at: at(355),
                taint: unreachable(55),
                toleration: Some(TolerationView {
                    key: Some("node.kubernetes.io/unreachable".into()),
                    operator: Some("Exists".into()),
                    value: None,
                    effect: Some("NoExecute".into()),
                    toleration_seconds: Some(300),
                }),
                scheduled: true,
                cancelled_by: vec![Cancel::NodeReady { node: "n1".into() }],
            },
            caveats: vec![Reason::DryRun],
        };
        let e = Envelope::new(
            Source::Live,
            at(60),
            leader(),
            PodReport { pod: Some(answer) },
        );
        let text = pod(&e);
        assert!(
            text.contains("Deletion due at 2025-01-01T00:05:55Z (in 4m 55s)"),
            "{text}"
        );
        assert!(
            text.contains("taint node.kubernetes.io/unreachable:NoExecute"),
            "{text}"
        );
        assert!(text.contains("for 300s"), "{text}");
        assert!(text.contains("cancelled if node n1 turns Ready"), "{text}");
        assert!(text.contains("but: --dry-run"), "{text}");
    }

    #[test]
    fn a_pod_tolerating_forever_reads_as_such() {
        let answer = PodAnswer {
            pod: "kube-system/ds".into(),
            node: Some("n1".into()),
            outcome: PodOutcome::NoDeletion {
                reasons: vec![Reason::ToleratesForever {
                    tolerated: vec![Tolerated {
                        taint: unreachable(55),
                        toleration: TolerationView {
                            key: None,
                            operator: Some("Exists".into()),
                            value: None,
                            effect: None,
                            toleration_seconds: None,
                        },
                    }],
                }],
            },
            caveats: vec![],
        };
        let e = Envelope::new(
            Source::Live,
            at(60),
            leader(),
            PodReport { pod: Some(answer) },
        );
        let text = pod(&e);
        assert!(text.contains("No deletion ahead"), "{text}");
        assert!(
            text.contains("tolerates every taint (any effect) forever"),
            "{text}"
        );
    }

    #[test]
    fn status_tables_line_up_their_columns() {
        let e = Envelope::new(
            Source::Live,
            at(0),
            leader(),
            StatusReport {
                zones: vec![ZoneView {
                    zone: "eu-west/a".into(),
                    state: "FullDisruption".into(),
                    rate_per_second: 0.0,
                    queued: vec![],
                    next_release: None,
                }],
                nodes: vec![],
                deletions: vec![],
            },
        );
        let text = status(&e);
        let lines: Vec<&str> = text.lines().collect();
        let head = lines.iter().position(|l| l.starts_with("ZONE")).unwrap();
        assert_eq!(
            lines[head].find("STATE"),
            lines[head + 1].find("FullDisruption")
        );
        assert!(text.contains("Every node is Ready"));
    }
}
