//! `simulate --output html`: one self-contained HTML page (inline CSS and SVG, no script, no
//! network) of a run, or of two runs side by side (`--compare-set`): per zone a swimlane of its
//! nodes over virtual time, the zone's states, the taints and deletions, and summary tables.
//! Hovering an element shows its timeline entry (SVG `<title>`s, HTML `title`s).
//!
//! The node states are read back from the timeline and the scenario: Ready at the start (or as
//! the scenario says), Unknown when the controller marks it, NotReady/Ready when the kubelet
//! reports it (`set-condition`), Ready again when a stopped kubelet resumes, gone when deleted.

use super::scenario::{EventAction, Scenario};
use super::timeline::{Entry, EntryKind, entry_json, format_seconds, summarize, table_line};
use crate::logic::taints::{NO_EXECUTE, NOT_READY, UNREACHABLE};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{self, Write};

/// One run of a scenario: its label (`as is`, `with node-monitor-grace-period=40s`) and timeline.
pub struct Run<'a> {
    pub label: String,
    pub entries: &'a [Entry],
}

/// A zone with more nodes than this is drawn as one aggregated lane (counts per state).
const MAX_LANES_PER_ZONE: usize = 40;
const WIDTH: f64 = 960.0;
const LABEL: f64 = 150.0;
const LANE: f64 = 12.0;
const BUCKETS: usize = 240;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Ready,
    Unknown,
    NotReady,
    Gone,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Ready => "Ready",
            State::Unknown => "Unknown",
            State::NotReady => "NotReady",
            State::Gone => "deleted",
        }
    }
    fn class(self) -> &'static str {
        match self {
            State::Ready => "ready",
            State::Unknown => "unknown",
            State::NotReady => "notready",
            State::Gone => "gone",
        }
    }
}

/// One node over time.
#[derive(Default)]
struct Lane {
    zone: String,
    /// (from ms, state, the entry that set it).
    states: Vec<(u64, State, String)>,
    /// NoExecute taints: (from, to, the entry that added it).
    tainted: Vec<(u64, Option<u64>, String)>,
    deletions: Vec<(u64, String)>,
    /// Scenario actions on this node (kubelet stopped, resumed...).
    actions: Vec<(u64, String)>,
}

impl Lane {
    fn set(&mut self, t: u64, state: State, why: String) {
        if self.states.last().map(|s| s.1) != Some(state) {
            self.states.push((t, state, why));
        }
    }
    fn state_at(&self, t: u64) -> Option<State> {
        self.states
            .iter()
            .take_while(|s| s.0 <= t)
            .last()
            .map(|s| s.1)
    }
    fn tainted_at(&self, t: u64) -> bool {
        self.tainted
            .iter()
            .any(|(from, to, _)| *from <= t && to.is_none_or(|to| t < to))
    }
}

/// The zone as the controller reports it: `zone`, `region/zone`, `region/` or "".
fn zone_display(
    zone: Option<&str>,
    region: Option<&str>,
    labels: &BTreeMap<String, String>,
) -> String {
    let zone = labels
        .get("failure-domain.beta.kubernetes.io/zone")
        .map(String::as_str)
        .or(zone)
        .unwrap_or("");
    let region = labels
        .get("failure-domain.beta.kubernetes.io/region")
        .map(String::as_str)
        .or(region)
        .unwrap_or("");
    match (region, zone) {
        ("", zone) => zone.to_string(),
        (region, "") => format!("{region}/"),
        (region, zone) => format!("{region}/{zone}"),
    }
}

/// What one run looks like, read from its timeline.
struct Picture {
    lanes: BTreeMap<String, Lane>,
    /// zone → (from ms, state, entry).
    bands: BTreeMap<String, Vec<(u64, String, String)>>,
    end_ms: u64,
}

fn picture(scenario: &Scenario, entries: &[Entry]) -> Picture {
    let mut lanes: BTreeMap<String, Lane> = BTreeMap::new();
    let start_state = |ready: Option<&str>| match ready {
        Some("True") => State::Ready,
        Some("False") => State::NotReady,
        _ => State::Unknown,
    };
    for node in &scenario.nodes {
        let mut lane = Lane {
            zone: zone_display(node.zone.as_deref(), node.region.as_deref(), &node.labels),
            ..Lane::default()
        };
        lane.set(0, start_state(node.ready.as_deref()), "at the start".into());
        for taint in node.taints.iter().filter(|t| t.effect == NO_EXECUTE) {
            lane.tainted.push((
                0,
                None,
                format!("{}:{} at the start", taint.key, taint.effect),
            ));
        }
        lanes.insert(node.name.clone(), lane);
    }
    let mut added_zones = BTreeMap::new();
    for event in &scenario.events {
        if let EventAction::AddNodes { nodes } = &event.action {
            for n in nodes {
                added_zones.insert(
                    n.name.clone(),
                    (
                        zone_display(n.zone.as_deref(), n.region.as_deref(), &n.labels),
                        start_state(n.ready.as_deref()),
                    ),
                );
            }
        }
    }
    let mut bands: BTreeMap<String, Vec<(u64, String, String)>> = BTreeMap::new();
    let mut end_ms = 0;
    for entry in entries {
        let t = entry.t_ms;
        end_ms = end_ms.max(t);
        let line = table_line(entry);
        match &entry.kind {
            EntryKind::Action { fields } => {
                let action = fields.get("action").and_then(|a| a.as_str()).unwrap_or("");
                let names: Vec<String> = fields
                    .get("nodes")
                    .and_then(|n| n.as_array())
                    .map(|ns| {
                        ns.iter()
                            .filter_map(|n| n.as_str().or_else(|| n.get("name")?.as_str()))
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                for name in names {
                    if action == "add-nodes" {
                        let (zone, state) = added_zones
                            .get(&name)
                            .cloned()
                            .unwrap_or((String::new(), State::Ready));
                        let lane = lanes.entry(name.clone()).or_default();
                        lane.zone = zone;
                        lane.set(t, state, line.clone());
                    }
                    let Some(lane) = lanes.get_mut(&name) else {
                        continue;
                    };
                    lane.actions.push((t, line.clone()));
                    match action {
                        "resume-heartbeat" => lane.set(t, State::Ready, line.clone()),
                        "delete-node" => lane.set(t, State::Gone, line.clone()),
                        "set-condition"
                            if fields.get("conditionType").and_then(|c| c.as_str())
                                == Some("Ready") =>
                        {
                            let status = fields.get("status").and_then(|s| s.as_str());
                            lane.set(t, start_state(status), line.clone());
                        }
                        "add-taint" | "remove-taint" => {
                            let taint = fields.get("taint");
                            let effect =
                                taint.and_then(|t| t.get("effect")).and_then(|e| e.as_str());
                            if effect == Some(NO_EXECUTE) {
                                if action == "add-taint" {
                                    lane.tainted.push((t, None, line.clone()));
                                } else if let Some(open) =
                                    lane.tainted.iter_mut().find(|x| x.1.is_none())
                                {
                                    open.1 = Some(t);
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            EntryKind::NodeConditionsUnknown { node, conditions } => {
                if conditions.iter().any(|c| c == "Ready")
                    && let Some(lane) = lanes.get_mut(node)
                {
                    lane.set(t, State::Unknown, line);
                }
            }
            EntryKind::TaintAdded { node, taint } if taint.ends_with(NO_EXECUTE) => {
                if let Some(lane) = lanes.get_mut(node) {
                    lane.tainted.push((t, None, line));
                }
            }
            EntryKind::TaintRemoved { node, taint } if taint.ends_with(NO_EXECUTE) => {
                if let Some(lane) = lanes.get_mut(node)
                    && let Some(open) = lane.tainted.iter_mut().find(|x| x.1.is_none())
                {
                    open.1 = Some(t);
                }
            }
            EntryKind::PodDeleted { node, .. } => {
                if let Some(lane) = lanes.get_mut(node) {
                    lane.deletions.push((t, line));
                }
            }
            EntryKind::ZoneState { zone, state } => {
                bands
                    .entry(zone.clone())
                    .or_default()
                    .push((t, state.clone(), line));
            }
            _ => {}
        }
    }
    Picture {
        lanes,
        bands,
        end_ms: end_ms
            .max(u64::try_from(scenario.duration.as_millis()).unwrap_or(u64::MAX))
            .max(1),
    }
}

/// Text for HTML: escaped, and `://` broken so that no address in a name or description reads
/// as a link (the page references nothing outside itself).
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out.replace("://", ":&#47;&#47;")
}

fn secs(ms: u64) -> String {
    format!("{}s", format_seconds(ms))
}

/// A workload: the pod's owner, or for a pod without one its name.
fn workloads(scenario: &Scenario) -> BTreeMap<String, (String, String)> {
    let mut map = BTreeMap::new();
    let mut all = scenario.pods.iter().collect::<Vec<_>>();
    for event in &scenario.events {
        if let EventAction::AddPods { pods } = &event.action {
            all.extend(pods.iter());
        }
    }
    for pod in all {
        let owner = match (&pod.owner, pod.daemonset) {
            (Some(owner), _) => owner.clone(),
            (None, true) => format!("DaemonSet/{}", pod.name),
            // No owner: pods named alike (`web-0`, `web-1`) count as one workload, `web-*`.
            (None, false) => match pod.name.rsplit_once('-') {
                Some((stem, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                    format!("{stem}-*")
                }
                _ => format!("Pod/{}", pod.name),
            },
        };
        map.insert(
            format!("{}/{}", pod.namespace, pod.name),
            (pod.namespace.clone(), owner),
        );
    }
    map
}

/// Numbers of one run for the tables.
#[derive(Default)]
struct Counts {
    deleted: usize,
    first: Option<u64>,
    last: Option<u64>,
    /// (namespace, owner) → (pods, deleted).
    per_workload: BTreeMap<(String, String), (usize, usize)>,
    per_namespace: BTreeMap<String, usize>,
    /// Pod → when deleted.
    deleted_at: BTreeMap<String, u64>,
    /// Nodes that were Unknown or NotReady and never got a NoExecute taint.
    never_tainted: Vec<String>,
}

fn counts(scenario: &Scenario, entries: &[Entry], pic: &Picture) -> Counts {
    let owners = workloads(scenario);
    let mut c = Counts::default();
    for (ns, owner) in owners.values() {
        c.per_workload
            .entry((ns.clone(), owner.clone()))
            .or_default()
            .0 += 1;
    }
    for entry in entries {
        if let EntryKind::PodDeleted { pod, .. } = &entry.kind {
            c.deleted += 1;
            c.first.get_or_insert(entry.t_ms);
            c.last = Some(entry.t_ms);
            c.deleted_at.insert(pod.clone(), entry.t_ms);
            let (ns, owner) = owners.get(pod).cloned().unwrap_or_else(|| {
                let ns = pod.split('/').next().unwrap_or("").to_string();
                (ns, format!("Pod/{pod}"))
            });
            *c.per_namespace.entry(ns.clone()).or_default() += 1;
            c.per_workload.entry((ns, owner)).or_default().1 += 1;
        }
    }
    let ours = |line: &str| line.contains(UNREACHABLE) || line.contains(NOT_READY);
    c.never_tainted = pic
        .lanes
        .iter()
        .filter(|(_, l)| {
            l.states
                .iter()
                .any(|s| matches!(s.1, State::Unknown | State::NotReady))
                && !l.tainted.iter().any(|t| ours(&t.2))
        })
        .map(|(n, _)| n.clone())
        .collect();
    c
}

const CSS: &str = "
body{font:13px/1.4 system-ui,sans-serif;margin:16px;color:#222;background:#fff}
h1{font-size:18px}h2{font-size:15px;margin-top:24px}h3{font-size:13px;margin:12px 0 2px}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}
th{background:#f3f3f3}td.n{text-align:right}.all{background:#fde0dc}
.ready{fill:#66bb6a}.unknown{fill:#bdbdbd}.notready{fill:#ef9a9a}.gone{fill:#fff;stroke:#ddd}
.taint{fill:#6a1b9a}.del{stroke:#000;stroke-width:1.5}.act{fill:#1565c0}
.Normal{fill:#c8e6c9}.PartialDisruption{fill:#ffcc80}.FullDisruption{fill:#e57373}.Initial{fill:#eee}
.axis{stroke:#999}.lbl{font-size:11px;fill:#333}
.key span{display:inline-block;width:12px;height:10px;margin:0 4px 0 12px;vertical-align:middle}
.runs{display:flex;gap:16px;flex-wrap:wrap}
";

/// Writes the page: a run, or two runs compared (`runs[0]` as is, `runs[1]` with the change).
pub fn write_html(
    scenario: &Scenario,
    description: Option<&str>,
    runs: &[Run],
    out: &mut dyn Write,
) -> io::Result<()> {
    write_html_after(scenario, description, "", runs, out)
}

/// [`write_html`] with `before`, HTML drawn with [`html_table`] and [`esc`], placed between the
/// title and the runs (`status --output html` puts the leader's answer there).
pub fn write_html_after(
    scenario: &Scenario,
    description: Option<&str>,
    before: &str,
    runs: &[Run],
    out: &mut dyn Write,
) -> io::Result<()> {
    let pictures: Vec<Picture> = runs.iter().map(|r| picture(scenario, r.entries)).collect();
    let counts: Vec<Counts> = runs
        .iter()
        .zip(&pictures)
        .map(|(r, p)| counts(scenario, r.entries, p))
        .collect();
    let mut h = String::new();
    let title = description.unwrap_or("node-lifecycle-controller simulation");
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{}</title><style>{CSS}</style></head><body>\n\
         <h1>{}</h1>\n{before}<p>{} nodes, {} pods, {}s of virtual time. \
         Hover over a lane, a mark or a row to see its timeline entry.</p>\n\
         <p class=\"key\"><span style=\"background:#66bb6a\"></span>Ready<span style=\"background:#bdbdbd\"></span>Unknown\
         <span style=\"background:#ef9a9a\"></span>NotReady<span style=\"background:#6a1b9a\"></span>NoExecute taint\
         <span style=\"background:#000\"></span>pod deleted<span style=\"background:#1565c0\"></span>scenario action\
         <span style=\"background:#c8e6c9\"></span>Normal<span style=\"background:#ffcc80\"></span>PartialDisruption\
         <span style=\"background:#e57373\"></span>FullDisruption</p>\n",
        esc(title),
        esc(title),
        scenario.nodes.len(),
        scenario.pods.len(),
        format_seconds(pictures.iter().map(|p| p.end_ms).max().unwrap_or(0)),
    );
    if runs.len() == 2 {
        compare_tables(&mut h, runs, &counts);
    }
    h.push_str("<div class=\"runs\">\n");
    for ((run, pic), c) in runs.iter().zip(&pictures).zip(&counts) {
        h.push_str("<section>\n");
        if runs.len() > 1 {
            let _ = writeln!(h, "<h2>{}</h2>", esc(&run.label));
        }
        summary_tables(&mut h, c);
        lanes_svg(&mut h, pic);
        h.push_str("</section>\n");
    }
    h.push_str("</div>\n</body></html>\n");
    out.write_all(h.as_bytes())
}

/// A table of text cells, in the page's style: `head` then `rows`, every cell escaped.
pub fn html_table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut h = String::from("<table><tr>");
    for cell in head {
        let _ = write!(h, "<th>{}</th>", esc(cell));
    }
    h.push_str("</tr>\n");
    for row in rows {
        h.push_str("<tr>");
        for cell in row {
            let _ = write!(h, "<td>{}</td>", esc(cell));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
    h
}

fn summary_tables(h: &mut String, c: &Counts) {
    let _ = writeln!(
        h,
        "<table><tr><th>pods deleted</th><td class=\"n\">{}</td></tr>\
         <tr><th>first deletion</th><td>{}</td></tr><tr><th>last deletion</th><td>{}</td></tr>\
         <tr><th title=\"Unknown or NotReady at some point, never given the controller's NoExecute taint: held back by the zone's rate limit or its disruption state\">nodes unhealthy, never tainted</th><td>{}</td></tr></table>",
        c.deleted,
        c.first.map_or("-".into(), secs),
        c.last.map_or("-".into(), secs),
        if c.never_tainted.is_empty() {
            "none".to_string()
        } else {
            esc(&c.never_tainted.join(", "))
        }
    );
    let lost: Vec<String> = c
        .per_workload
        .iter()
        .filter(|(_, (pods, deleted))| *deleted > 0 && deleted >= pods)
        .map(|((ns, owner), _)| format!("{ns}/{owner}"))
        .collect();
    let _ = writeln!(
        h,
        "<h3>Workloads that lose every replica</h3><p>{}</p>",
        if lost.is_empty() {
            "none".to_string()
        } else {
            esc(&lost.join(", "))
        }
    );
    h.push_str("<h3>Pods deleted per workload</h3><table><tr><th>namespace</th><th>owner</th><th>pods</th><th>deleted</th></tr>\n");
    for ((ns, owner), (pods, deleted)) in c.per_workload.iter().filter(|(_, v)| v.1 > 0) {
        let all = if deleted >= pods {
            " class=\"all\" title=\"loses every replica\""
        } else {
            ""
        };
        let _ = writeln!(
            h,
            "<tr{all}><td>{}</td><td>{}</td><td class=\"n\">{pods}</td><td class=\"n\">{deleted}</td></tr>",
            esc(ns),
            esc(owner)
        );
    }
    h.push_str("</table>\n<h3>Pods deleted per namespace</h3><table><tr><th>namespace</th><th>deleted</th></tr>\n");
    for (ns, n) in &c.per_namespace {
        let _ = writeln!(h, "<tr><td>{}</td><td class=\"n\">{n}</td></tr>", esc(ns));
    }
    h.push_str("</table>\n");
}

/// The delta between two runs: counts, and how much earlier or later the pods both delete go.
fn compare_tables(h: &mut String, runs: &[Run], c: &[Counts]) {
    let (a, b) = (&c[0], &c[1]);
    let d = delta(a, b);
    let opt = |v: Option<u64>| v.map_or("-".to_string(), secs);
    let _ = write!(
        h,
        "<h2>Comparison</h2><table><tr><th></th><th>{}</th><th>{}</th></tr>\
         <tr><th>pods deleted</th><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>\
         <tr><th>first deletion</th><td>{}</td><td>{}</td></tr>\
         <tr><th>last deletion</th><td>{}</td><td>{}</td></tr>\
         <tr><th>nodes unhealthy, never tainted</th><td class=\"n\">{}</td><td class=\"n\">{}</td></tr></table>\n\
         <p>{}</p>\n",
        esc(&runs[0].label),
        esc(&runs[1].label),
        a.deleted,
        b.deleted,
        opt(a.first),
        opt(b.first),
        opt(a.last),
        opt(b.last),
        a.never_tainted.len(),
        b.never_tainted.len(),
        esc(&d.sentence(&runs[1].label)),
    );
    let keys: BTreeSet<&(String, String)> = a
        .per_workload
        .iter()
        .chain(&b.per_workload)
        .filter(|(_, v)| v.1 > 0)
        .map(|(k, _)| k)
        .collect();
    let _ = writeln!(
        h,
        "<h3>Deleted per workload</h3><table><tr><th>namespace</th><th>owner</th><th>{}</th><th>{}</th><th>change</th></tr>",
        esc(&runs[0].label),
        esc(&runs[1].label)
    );
    for key in keys {
        let x = a.per_workload.get(key).map_or(0, |v| v.1);
        let y = b.per_workload.get(key).map_or(0, |v| v.1);
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{x}</td><td class=\"n\">{y}</td><td class=\"n\">{:+}</td></tr>",
            esc(&key.0),
            esc(&key.1),
            y as i64 - x as i64
        );
    }
    h.push_str("</table>\n");
}

/// How the second run's deletions differ from the first's.
pub struct Delta {
    pub only_first: usize,
    pub only_second: usize,
    pub both: usize,
    /// Mean of (second − first) over the pods deleted in both, in ms.
    pub mean_shift_ms: Option<i64>,
    pub first_shift_ms: Option<i64>,
}

impl Delta {
    /// One sentence: "with X: 2 more pods deleted, the common ones 10.0s earlier on average".
    pub fn sentence(&self, label: &str) -> String {
        let mut parts = Vec::new();
        if self.only_second > 0 {
            parts.push(format!("{} pod(s) deleted only {label}", self.only_second));
        }
        if self.only_first > 0 {
            parts.push(format!("{} pod(s) no longer deleted", self.only_first));
        }
        let shift = |ms: i64| match ms.cmp(&0) {
            std::cmp::Ordering::Less => format!("{}s earlier", format_seconds(ms.unsigned_abs())),
            std::cmp::Ordering::Greater => format!("{}s later", format_seconds(ms.unsigned_abs())),
            std::cmp::Ordering::Equal => "at the same time".to_string(),
        };
        if let Some(ms) = self.mean_shift_ms {
            parts.push(format!(
                "the {} pod(s) deleted in both runs go {} on average",
                self.both,
                shift(ms)
            ));
        }
        if let Some(ms) = self.first_shift_ms {
            parts.push(format!("the first deletion comes {}", shift(ms)));
        }
        if parts.is_empty() {
            "No pod is deleted in either run.".to_string()
        } else {
            let mut s = parts.join("; ");
            s.insert_str(0, &format!("{label}: "));
            s.push('.');
            s
        }
    }
}

fn delta(a: &Counts, b: &Counts) -> Delta {
    let both: Vec<i64> = a
        .deleted_at
        .iter()
        .filter_map(|(pod, ta)| b.deleted_at.get(pod).map(|tb| *tb as i64 - *ta as i64))
        .collect();
    Delta {
        only_first: a
            .deleted_at
            .keys()
            .filter(|p| !b.deleted_at.contains_key(*p))
            .count(),
        only_second: b
            .deleted_at
            .keys()
            .filter(|p| !a.deleted_at.contains_key(*p))
            .count(),
        both: both.len(),
        mean_shift_ms: (!both.is_empty()).then(|| both.iter().sum::<i64>() / both.len() as i64),
        first_shift_ms: a.first.zip(b.first).map(|(x, y)| y as i64 - x as i64),
    }
}

/// The delta of two runs' timelines, for the text comparison.
pub fn compare(scenario: &Scenario, first: &[Entry], second: &[Entry]) -> Delta {
    let (pa, pb) = (picture(scenario, first), picture(scenario, second));
    delta(
        &counts(scenario, first, &pa),
        &counts(scenario, second, &pb),
    )
}

/// `--compare-set` as text: the two summaries side by side, then the difference in a sentence.
pub fn write_compare_text(
    scenario: &Scenario,
    runs: &[Run],
    out: &mut dyn Write,
) -> io::Result<()> {
    let (a, b) = (summarize(runs[0].entries), summarize(runs[1].entries));
    let opt = |v: Option<u64>| v.map_or("-".to_string(), secs);
    let mut rows: Vec<(String, String, String)> = vec![
        (String::new(), runs[0].label.clone(), runs[1].label.clone()),
        (
            "nodes tainted".into(),
            a.nodes_tainted.to_string(),
            b.nodes_tainted.to_string(),
        ),
        (
            "pods deleted".into(),
            a.pods_deleted.to_string(),
            b.pods_deleted.to_string(),
        ),
        (
            "first deletion".into(),
            opt(a.first_pod_deleted_ms),
            opt(b.first_pod_deleted_ms),
        ),
        (
            "last deletion".into(),
            opt(a.last_pod_deleted_ms),
            opt(b.last_pod_deleted_ms),
        ),
    ];
    let zones: BTreeSet<&String> = a.zones.keys().chain(b.zones.keys()).collect();
    for zone in zones {
        let states = |s: &super::timeline::Summary| {
            s.zones
                .get(zone)
                .map_or("-".to_string(), |z| z.join(" -> "))
        };
        rows.push((format!("zone {zone}"), states(&a), states(&b)));
    }
    let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let w1 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    if let Some(description) = &scenario.description {
        writeln!(out, "Comparison: {description}")?;
    }
    for (name, x, y) in &rows {
        writeln!(out, "  {name:<w0$}  {x:<w1$}  {y}")?;
    }
    let d = compare(scenario, runs[0].entries, runs[1].entries);
    writeln!(out, "{}", d.sentence(&runs[1].label))
}

/// `--compare-set` as JSON lines: both timelines, each object with `run` after `t`.
pub fn write_compare_jsonl(runs: &[Run], out: &mut dyn Write) -> io::Result<()> {
    for run in runs {
        let label = serde_json::Value::from(run.label.clone()).to_string();
        for entry in run.entries {
            let line = entry_json(entry);
            match line.find(",\"type\"") {
                Some(at) => writeln!(out, "{},\"run\":{label}{}", &line[..at], &line[at..])?,
                None => writeln!(out, "{line}")?,
            }
        }
    }
    Ok(())
}

fn lanes_svg(h: &mut String, pic: &Picture) {
    let scale = (WIDTH - LABEL) / pic.end_ms as f64;
    let x = |t: u64| LABEL + t as f64 * scale;
    let mut zones: BTreeMap<&str, Vec<(&String, &Lane)>> = BTreeMap::new();
    for (name, lane) in &pic.lanes {
        zones
            .entry(lane.zone.as_str())
            .or_default()
            .push((name, lane));
    }
    let step = tick_step(pic.end_ms);
    for (zone, lanes) in zones {
        let aggregated = lanes.len() > MAX_LANES_PER_ZONE;
        let rows = if aggregated { 3 } else { lanes.len() };
        let height = 20.0 + 14.0 + rows as f64 * (LANE + 2.0) + 16.0;
        let shown = if zone.is_empty() { "(no zone)" } else { zone };
        let _ = writeln!(
            h,
            "<h3>zone {} — {} node(s){}</h3>",
            esc(shown),
            lanes.len(),
            if aggregated { ", aggregated" } else { "" }
        );
        let _ = writeln!(
            h,
            "<svg width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\">"
        );
        // The zone's states.
        let _ = writeln!(h, "<text class=\"lbl\" x=\"0\" y=\"12\">zone state</text>");
        let band = pic.bands.get(zone).cloned().unwrap_or_default();
        let mut from = 0;
        let mut state = (
            "Initial".to_string(),
            "before the controller's first report".to_string(),
        );
        for (t, s, line) in
            band.iter()
                .chain(std::iter::once(&(pic.end_ms, String::new(), String::new())))
        {
            if *t > from {
                let _ = writeln!(
                    h,
                    "<rect class=\"{}\" x=\"{:.1}\" y=\"2\" width=\"{:.1}\" height=\"12\"><title>{}: {} from {} ({})</title></rect>",
                    esc(&state.0),
                    x(from),
                    (x(*t) - x(from)).max(0.5),
                    esc(shown),
                    esc(&state.0),
                    secs(from),
                    esc(&state.1)
                );
            }
            from = *t;
            state = (s.clone(), line.clone());
        }
        let top = 20.0;
        if aggregated {
            aggregate_rows(h, &lanes, pic.end_ms, top, &x);
        } else {
            for (i, (name, lane)) in lanes.iter().enumerate() {
                let y = top + i as f64 * (LANE + 2.0);
                lane_row(h, name, lane, pic.end_ms, y, &x);
            }
        }
        // The time axis.
        let axis = top + rows as f64 * (LANE + 2.0) + 4.0;
        let _ = writeln!(
            h,
            "<line class=\"axis\" x1=\"{LABEL}\" y1=\"{axis}\" x2=\"{WIDTH}\" y2=\"{axis}\"/>"
        );
        let mut t = 0;
        while t <= pic.end_ms {
            let _ = writeln!(
                h,
                "<text class=\"lbl\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                x(t).min(WIDTH - 20.0),
                axis + 12.0,
                clock(t)
            );
            t += step;
        }
        h.push_str("</svg>\n");
    }
}

fn lane_row(h: &mut String, name: &str, lane: &Lane, end: u64, y: f64, x: &dyn Fn(u64) -> f64) {
    let _ = writeln!(
        h,
        "<text class=\"lbl\" x=\"0\" y=\"{:.1}\">{}</text>",
        y + LANE - 2.0,
        esc(name)
    );
    for (i, (from, state, why)) in lane.states.iter().enumerate() {
        let to = lane.states.get(i + 1).map_or(end, |s| s.0);
        let _ = writeln!(
            h,
            "<rect class=\"{}\" x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{LANE}\"><title>{}: {} from {} to {}\n{}</title></rect>",
            state.class(),
            x(*from),
            (x(to) - x(*from)).max(0.5),
            esc(name),
            state.name(),
            secs(*from),
            secs(to),
            esc(why)
        );
    }
    for (from, to, why) in &lane.tainted {
        let to = to.unwrap_or(end);
        let _ = writeln!(
            h,
            "<rect class=\"taint\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"4\"><title>{}</title></rect>",
            x(*from),
            y + LANE - 4.0,
            (x(to) - x(*from)).max(1.0),
            esc(why)
        );
    }
    for (t, why) in &lane.actions {
        let _ = writeln!(
            h,
            "<rect class=\"act\" x=\"{:.1}\" y=\"{y:.1}\" width=\"2\" height=\"4\"><title>{}</title></rect>",
            x(*t) - 1.0,
            esc(why)
        );
    }
    for (t, why) in &lane.deletions {
        let _ = writeln!(
            h,
            "<line class=\"del\" x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"><title>{}</title></line>",
            x(*t),
            x(*t),
            y + LANE,
            esc(why)
        );
    }
}

/// A dense zone: per time bucket, the share of nodes in each state (a stacked row), the share
/// NoExecute-tainted, and the pods deleted.
fn aggregate_rows(
    h: &mut String,
    lanes: &[(&String, &Lane)],
    end: u64,
    top: f64,
    x: &dyn Fn(u64) -> f64,
) {
    let n = lanes.len() as f64;
    let labels = ["node states", "NoExecute-tainted", "pods deleted"];
    for (i, label) in labels.iter().enumerate() {
        let _ = writeln!(
            h,
            "<text class=\"lbl\" x=\"0\" y=\"{:.1}\">{label}</text>",
            top + i as f64 * (LANE + 2.0) + LANE - 2.0
        );
    }
    let width = end as f64 / BUCKETS as f64;
    let mut deletions: Vec<(u64, &str)> = lanes
        .iter()
        .flat_map(|(_, l)| l.deletions.iter().map(|(t, w)| (*t, w.as_str())))
        .collect();
    deletions.sort();
    let max_deleted = (0..BUCKETS)
        .map(|b| bucket_count(&deletions, b, width))
        .max()
        .unwrap_or(0)
        .max(1);
    for b in 0..BUCKETS {
        let (from, to) = ((b as f64 * width) as u64, ((b + 1) as f64 * width) as u64);
        let mut by_state = [0usize; 4];
        let mut tainted = 0;
        for (_, lane) in lanes {
            let s = lane.state_at(from).unwrap_or(State::Gone);
            by_state[s as usize] += 1;
            tainted += usize::from(lane.tainted_at(from));
        }
        let (x0, w) = (x(from), (x(to) - x(from)).max(0.5));
        let mut y = top;
        let title = format!(
            "{} to {}: {} Ready, {} Unknown, {} NotReady, {} deleted of {} nodes",
            secs(from),
            secs(to),
            by_state[0],
            by_state[1],
            by_state[2],
            by_state[3],
            lanes.len()
        );
        for (k, state) in [State::Ready, State::Unknown, State::NotReady, State::Gone]
            .iter()
            .enumerate()
        {
            if by_state[k] == 0 {
                continue;
            }
            let hgt = LANE * by_state[k] as f64 / n;
            let _ = writeln!(
                h,
                "<rect class=\"{}\" x=\"{x0:.1}\" y=\"{y:.2}\" width=\"{w:.1}\" height=\"{hgt:.2}\"><title>{title}</title></rect>",
                state.class()
            );
            y += hgt;
        }
        if tainted > 0 {
            let hgt = LANE * tainted as f64 / n;
            let _ = writeln!(
                h,
                "<rect class=\"taint\" x=\"{x0:.1}\" y=\"{:.2}\" width=\"{w:.1}\" height=\"{hgt:.2}\"><title>{} to {}: {tainted} of {} nodes NoExecute-tainted</title></rect>",
                top + 2.0 * LANE + 2.0 - hgt,
                secs(from),
                secs(to),
                lanes.len()
            );
        }
        let count = bucket_count(&deletions, b, width);
        if count > 0 {
            let hgt = (LANE * count as f64 / max_deleted as f64).max(1.0);
            let first: Vec<&str> = deletions
                .iter()
                .filter(|(t, _)| bucket_of(*t, width) == b)
                .take(5)
                .map(|(_, w)| *w)
                .collect();
            let _ = writeln!(
                h,
                "<rect fill=\"#000\" x=\"{x0:.1}\" y=\"{:.2}\" width=\"{w:.1}\" height=\"{hgt:.2}\"><title>{count} pod(s) deleted from {} to {}, e.g.\n{}</title></rect>",
                top + 3.0 * (LANE + 2.0) - 2.0 - hgt,
                secs(from),
                secs(to),
                esc(&first.join("\n"))
            );
        }
    }
}

fn bucket_of(t: u64, width: f64) -> usize {
    ((t as f64 / width) as usize).min(BUCKETS - 1)
}

fn bucket_count(deletions: &[(u64, &str)], b: usize, width: f64) -> usize {
    deletions
        .iter()
        .filter(|(t, _)| bucket_of(*t, width) == b)
        .count()
}

/// An axis step giving at most about 12 ticks.
fn tick_step(end_ms: u64) -> u64 {
    [
        5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400,
    ]
    .iter()
    .map(|s| s * 1000)
    .find(|s| end_ms / s <= 12)
    .unwrap_or(end_ms.max(1))
}

/// `90s` → `1m30s`.
fn clock(ms: u64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(ms / 1000))
        .to_string()
        .replace(' ', "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::scenario;

    fn page(yaml: &str, entries: &[Entry]) -> String {
        let s = scenario::parse(yaml, "t").unwrap();
        let mut out = Vec::new();
        let runs = [Run {
            label: "as is".into(),
            entries,
        }];
        write_html(&s, s.description.as_deref(), &runs, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn e(t_ms: u64, kind: EntryKind) -> Entry {
        Entry { t_ms, kind }
    }

    const TWO: &str = "description: see http://example.test/x\nduration: 10m\nnodes:\n  - {name: a-0, zone: z}\n  - {name: a-1, zone: z}\npods:\n  - {name: web-0, node: a-1, owner: ReplicaSet/web-1}\n  - {name: db-0, node: a-0, owner: StatefulSet/db}\n";

    #[test]
    fn a_node_lane_shows_unknown_and_the_taint_from_the_entries_with_the_entry_on_hover() {
        let entries = vec![
            e(
                75_000,
                EntryKind::NodeConditionsUnknown {
                    node: "a-1".into(),
                    conditions: vec!["Ready".into()],
                },
            ),
            e(
                75_000,
                EntryKind::TaintAdded {
                    node: "a-1".into(),
                    taint: format!("{UNREACHABLE}:NoExecute"),
                },
            ),
            e(
                375_000,
                EntryKind::PodDeleted {
                    pod: "default/web-0".into(),
                    node: "a-1".into(),
                    via: "delete".into(),
                },
            ),
        ];
        let html = page(TWO, &entries);
        assert!(html.contains("a-1: Unknown from 75.0s to 600.0s"), "{html}");
        assert!(html.contains("class=\"taint\""));
        assert!(
            html.contains("<title>375.000s  PodDeleted  default/web-0  on a-1  via delete</title>"),
            "{html}"
        );
        // The workload that loses its only replica is named; the one that keeps it is not.
        assert!(
            html.contains(
                "<h3>Workloads that lose every replica</h3><p>default/ReplicaSet/web-1</p>"
            ),
            "{html}"
        );
        assert!(
            html.contains("a-1</td>") || html.contains("a-1"),
            "never-tainted list"
        );
    }

    #[test]
    fn the_page_references_nothing_outside_itself_even_when_a_name_is_an_address() {
        let html = page(TWO, &[]);
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{html}"
        );
        assert!(!html.contains("<script") && !html.contains("url("));
    }

    #[test]
    fn a_zone_of_thousands_of_nodes_is_drawn_aggregated_in_a_bounded_page() {
        let yaml = "duration: 15m\nnodes:\n  - {name: \"n-{0..4999}\", zone: big}\n";
        let entries: Vec<Entry> = (0..5000)
            .map(|i| {
                e(
                    60_000 + i,
                    EntryKind::NodeConditionsUnknown {
                        node: format!("n-{i}"),
                        conditions: vec!["Ready".into()],
                    },
                )
            })
            .collect();
        let html = page(yaml, &entries);
        assert!(html.contains("zone big — 5000 node(s), aggregated"));
        assert!(!html.contains(">n-4999</text>"), "no lane per node");
        assert!(html.len() < 400_000, "page of {} bytes", html.len());
    }

    #[test]
    fn the_delta_counts_pods_deleted_only_in_one_run_and_the_shift_of_the_others() {
        let s = scenario::parse(TWO, "t").unwrap();
        let del = |t, pod: &str| {
            e(
                t,
                EntryKind::PodDeleted {
                    pod: pod.into(),
                    node: "a-1".into(),
                    via: "delete".into(),
                },
            )
        };
        let a = vec![del(300_000, "default/web-0")];
        let b = vec![del(290_000, "default/web-0"), del(295_000, "default/db-0")];
        let d = compare(&s, &a, &b);
        assert_eq!((d.only_first, d.only_second, d.both), (0, 1, 1));
        assert_eq!(d.mean_shift_ms, Some(-10_000));
        assert!(d.sentence("with x").contains("go 10.0s earlier on average"));
    }
}
