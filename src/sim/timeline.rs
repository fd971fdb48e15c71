//! The simulation's timeline: what the simulated API server applied from the controller, the
//! scenario's own actions and the controller's zone states, with a closing summary.
//!
//! Output formats (docs/simulation.md, a public interface): JSON lines with the fields in a fixed
//! order, or an aligned human-readable table.

use crate::logic::taints::{NO_EXECUTE, NOT_READY, UNREACHABLE};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

/// One timeline entry, at `t_ms` milliseconds of virtual time since the start.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub t_ms: u64,
    pub kind: EntryKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum EntryKind {
    /// A scenario event took effect: `action` plus the action's own fields.
    Action {
        fields: serde_json::Map<String, Value>,
    },
    NodeConditionsUnknown {
        node: String,
        conditions: Vec<String>,
    },
    TaintAdded {
        node: String,
        taint: String,
    },
    TaintRemoved {
        node: String,
        taint: String,
    },
    PodNotReady {
        pod: String,
        node: String,
    },
    PodDisruptionTarget {
        pod: String,
        node: String,
    },
    /// `via` is `delete` or `eviction`.
    PodDeleted {
        pod: String,
        node: String,
        via: String,
    },
    PodEvictionRefused {
        pod: String,
        node: String,
        reason: String,
    },
    Event {
        object: String,
        reason: String,
        event_type: String,
        message: String,
    },
    ZoneState {
        zone: String,
        state: String,
    },
    /// A check of the controller's inputs began (`detail`: what it found) or stopped
    /// (`detail` empty) suspecting a misconfiguration.
    SuspectedMisconfiguration {
        check: String,
        detail: String,
    },
    /// The last entry; its `t` is the duration.
    Summary(Summary),
}

/// The closing summary of a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Distinct nodes that got our NoExecute taint (unreachable or not-ready) from the controller.
    pub nodes_tainted: usize,
    pub pods_deleted: usize,
    pub first_pod_deleted_ms: Option<u64>,
    pub last_pod_deleted_ms: Option<u64>,
    /// Zone → states reached, in order (a repeated report of the same state is not a new one).
    pub zones: BTreeMap<String, Vec<String>>,
}

impl EntryKind {
    /// The `type` field.
    pub fn type_name(&self) -> &'static str {
        match self {
            EntryKind::Action { .. } => "Action",
            EntryKind::NodeConditionsUnknown { .. } => "NodeConditionsUnknown",
            EntryKind::TaintAdded { .. } => "TaintAdded",
            EntryKind::TaintRemoved { .. } => "TaintRemoved",
            EntryKind::PodNotReady { .. } => "PodNotReady",
            EntryKind::PodDisruptionTarget { .. } => "PodDisruptionTarget",
            EntryKind::PodDeleted { .. } => "PodDeleted",
            EntryKind::PodEvictionRefused { .. } => "PodEvictionRefused",
            EntryKind::Event { .. } => "Event",
            EntryKind::ZoneState { .. } => "ZoneState",
            EntryKind::SuspectedMisconfiguration { .. } => "SuspectedMisconfiguration",
            EntryKind::Summary(_) => "Summary",
        }
    }
}

/// Builds the summary of `entries` (any `Summary` among them is ignored).
pub fn summarize(entries: &[Entry]) -> Summary {
    let mut tainted = BTreeSet::new();
    let mut summary = Summary::default();
    for entry in entries {
        match &entry.kind {
            EntryKind::TaintAdded { node, taint } if is_our_no_execute(taint) => {
                tainted.insert(node.clone());
            }
            EntryKind::PodDeleted { .. } => {
                summary.pods_deleted += 1;
                summary.first_pod_deleted_ms.get_or_insert(entry.t_ms);
                summary.last_pod_deleted_ms = Some(entry.t_ms);
            }
            EntryKind::ZoneState { zone, state } => {
                let states = summary.zones.entry(zone.clone()).or_default();
                if states.last() != Some(state) {
                    states.push(state.clone());
                }
            }
            _ => {}
        }
    }
    summary.nodes_tainted = tainted.len();
    summary
}

fn is_our_no_execute(taint: &str) -> bool {
    [UNREACHABLE, NOT_READY]
        .iter()
        .any(|key| taint == format!("{key}:{NO_EXECUTE}"))
}

/// A taint as the timeline shows it: `key:Effect` or `key=value:Effect`.
pub fn taint_text(key: &str, value: Option<&str>, effect: &str) -> String {
    match value {
        Some(v) if !v.is_empty() => format!("{key}={v}:{effect}"),
        _ => format!("{key}:{effect}"),
    }
}

/// Seconds with at most 3 decimals and at least one: 85000 → `85.0`, 85100 → `85.1`.
pub fn format_seconds(ms: u64) -> String {
    let secs = ms / 1000;
    let frac = ms % 1000;
    if frac == 0 {
        return format!("{secs}.0");
    }
    let digits = format!("{frac:03}");
    format!("{secs}.{}", digits.trim_end_matches('0'))
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

fn json_value(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_string())
}

fn json_strings(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| json_string(s)).collect();
    format!("[{}]", inner.join(","))
}

fn json_opt_seconds(ms: Option<u64>) -> String {
    ms.map_or_else(|| "null".to_string(), format_seconds)
}

/// The entry's fields after `t` and `type`, as (name, JSON text), in docs/simulation.md's order.
fn json_fields(kind: &EntryKind) -> Vec<(String, String)> {
    let s = |name: &str, value: &str| (name.to_string(), json_string(value));
    match kind {
        EntryKind::Action { fields } => {
            let mut out = Vec::new();
            if let Some(action) = fields.get("action") {
                out.push(("action".to_string(), json_value(action)));
            }
            for (name, value) in fields {
                if name != "action" {
                    out.push((name.clone(), json_value(value)));
                }
            }
            out
        }
        EntryKind::NodeConditionsUnknown { node, conditions } => vec![
            s("node", node),
            ("conditions".to_string(), json_strings(conditions)),
        ],
        EntryKind::TaintAdded { node, taint } | EntryKind::TaintRemoved { node, taint } => {
            vec![s("node", node), s("taint", taint)]
        }
        EntryKind::PodNotReady { pod, node } | EntryKind::PodDisruptionTarget { pod, node } => {
            vec![s("pod", pod), s("node", node)]
        }
        EntryKind::PodDeleted { pod, node, via } => {
            vec![s("pod", pod), s("node", node), s("via", via)]
        }
        EntryKind::PodEvictionRefused { pod, node, reason } => {
            vec![s("pod", pod), s("node", node), s("reason", reason)]
        }
        EntryKind::Event {
            object,
            reason,
            event_type,
            message,
        } => vec![
            s("object", object),
            s("reason", reason),
            s("eventType", event_type),
            s("message", message),
        ],
        EntryKind::ZoneState { zone, state } => vec![s("zone", zone), s("state", state)],
        EntryKind::SuspectedMisconfiguration { check, detail } => {
            vec![s("check", check), s("detail", detail)]
        }
        EntryKind::Summary(summary) => {
            let zones: Vec<String> = summary
                .zones
                .iter()
                .map(|(zone, states)| format!("{}:{}", json_string(zone), json_strings(states)))
                .collect();
            vec![
                (
                    "nodesTainted".to_string(),
                    summary.nodes_tainted.to_string(),
                ),
                ("podsDeleted".to_string(), summary.pods_deleted.to_string()),
                (
                    "firstPodDeletedAt".to_string(),
                    json_opt_seconds(summary.first_pod_deleted_ms),
                ),
                (
                    "lastPodDeletedAt".to_string(),
                    json_opt_seconds(summary.last_pod_deleted_ms),
                ),
                ("zones".to_string(), format!("{{{}}}", zones.join(","))),
            ]
        }
    }
}

/// One entry as a JSON object: `t`, `type`, then the type's fields.
pub fn entry_json(entry: &Entry) -> String {
    let mut line = format!(
        "{{\"t\":{},\"type\":{}",
        format_seconds(entry.t_ms),
        json_string(entry.kind.type_name())
    );
    for (name, value) in json_fields(&entry.kind) {
        line.push(',');
        line.push_str(&json_string(&name));
        line.push(':');
        line.push_str(&value);
    }
    line.push('}');
    line
}

/// Writes one JSON object per line.
pub fn write_jsonl(entries: &[Entry], out: &mut dyn Write) -> io::Result<()> {
    for entry in entries {
        writeln!(out, "{}", entry_json(entry))?;
    }
    Ok(())
}

fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(compact).collect();
            format!("[{}]", inner.join(", "))
        }
        other => json_value(other),
    }
}

/// The table's detail column of one entry.
fn table_details(kind: &EntryKind) -> String {
    match kind {
        EntryKind::Action { fields } => {
            let mut text = fields.get("action").map(compact).unwrap_or_default();
            for (name, value) in fields {
                if name != "action" {
                    text.push_str(&format!(" {name}={}", compact(value)));
                }
            }
            text
        }
        EntryKind::NodeConditionsUnknown { node, conditions } => {
            format!("{node}  {}", conditions.join(", "))
        }
        EntryKind::TaintAdded { node, taint } => format!("{node}  + {taint}"),
        EntryKind::TaintRemoved { node, taint } => format!("{node}  - {taint}"),
        EntryKind::PodNotReady { pod, node } | EntryKind::PodDisruptionTarget { pod, node } => {
            format!("{pod}  on {node}")
        }
        EntryKind::PodDeleted { pod, node, via } => format!("{pod}  on {node}  via {via}"),
        EntryKind::PodEvictionRefused { pod, node, reason } => {
            format!("{pod}  on {node}  {reason}")
        }
        EntryKind::Event {
            object,
            reason,
            event_type,
            message,
        } => {
            format!("{object}  {event_type} {reason}: {message}")
        }
        EntryKind::ZoneState { zone, state } => {
            let zone = if zone.is_empty() { "\"\"" } else { zone };
            format!("{zone}  {state}")
        }
        EntryKind::SuspectedMisconfiguration { check, detail } if detail.is_empty() => {
            format!("{check}  cleared")
        }
        EntryKind::SuspectedMisconfiguration { check, detail } => format!("{check}  {detail}"),
        EntryKind::Summary(_) => String::new(),
    }
}

fn table_time(ms: u64) -> String {
    format!("{}.{:03}s", ms / 1000, ms % 1000)
}

/// Writes one aligned line per entry (time first), then a summary block. The summary comes from
/// the `Summary` entry when there is one, else it is computed from the entries.
/// One entry as a line of the table (`75.000s  TaintAdded  a-1  + ...`), without alignment.
pub fn table_line(entry: &Entry) -> String {
    format!(
        "{}  {}  {}",
        table_time(entry.t_ms),
        entry.kind.type_name(),
        table_details(&entry.kind)
    )
}

pub fn write_table(
    entries: &[Entry],
    description: Option<&str>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let shown: Vec<&Entry> = entries
        .iter()
        .filter(|e| !matches!(e.kind, EntryKind::Summary(_)))
        .collect();
    let time_width = shown
        .iter()
        .map(|e| table_time(e.t_ms).len())
        .max()
        .unwrap_or(0);
    let type_width = shown
        .iter()
        .map(|e| e.kind.type_name().len())
        .max()
        .unwrap_or(0);
    for entry in &shown {
        writeln!(
            out,
            "{:>tw$}  {:<yw$}  {}",
            table_time(entry.t_ms),
            entry.kind.type_name(),
            table_details(&entry.kind),
            tw = time_width,
            yw = type_width
        )?;
    }
    let (summary, end_ms) = match entries.iter().rev().find_map(|e| match &e.kind {
        EntryKind::Summary(s) => Some((s.clone(), e.t_ms)),
        _ => None,
    }) {
        Some(found) => found,
        None => (summarize(entries), shown.last().map_or(0, |e| e.t_ms)),
    };
    writeln!(out)?;
    writeln!(out, "Summary after {}s", format_seconds(end_ms))?;
    if let Some(description) = description {
        writeln!(out, "  scenario:      {description}")?;
    }
    writeln!(out, "  nodes tainted: {}", summary.nodes_tainted)?;
    match (summary.first_pod_deleted_ms, summary.last_pod_deleted_ms) {
        (Some(first), Some(last)) => writeln!(
            out,
            "  pods deleted:  {} (first at {}s, last at {}s)",
            summary.pods_deleted,
            format_seconds(first),
            format_seconds(last)
        )?,
        _ => writeln!(out, "  pods deleted:  {}", summary.pods_deleted)?,
    }
    if summary.zones.is_empty() {
        writeln!(out, "  zones:         none reported")?;
    } else {
        writeln!(out, "  zones:")?;
        for (zone, states) in &summary.zones {
            let zone = if zone.is_empty() { "\"\"" } else { zone };
            writeln!(out, "    {zone}: {}", states.join(" -> "))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(t_ms: u64, kind: EntryKind) -> Entry {
        Entry { t_ms, kind }
    }

    #[test]
    fn seconds_are_printed_with_at_most_three_decimals_and_at_least_one() {
        assert_eq!(format_seconds(0), "0.0");
        assert_eq!(format_seconds(85_000), "85.0");
        assert_eq!(format_seconds(85_100), "85.1");
        assert_eq!(format_seconds(85_010), "85.01");
        assert_eq!(format_seconds(85_123), "85.123");
    }

    #[test]
    fn jsonl_lines_put_t_and_type_first_then_the_fields_in_table_order() {
        let entries = vec![
            entry(
                85_000,
                EntryKind::NodeConditionsUnknown {
                    node: "a-3".into(),
                    conditions: vec!["Ready".into(), "MemoryPressure".into()],
                },
            ),
            entry(
                85_100,
                EntryKind::TaintAdded {
                    node: "a-3".into(),
                    taint: "node.kubernetes.io/unreachable:NoExecute".into(),
                },
            ),
            entry(
                90_000,
                EntryKind::Event {
                    object: "Pod/default/web-3".into(),
                    reason: "TaintManagerEviction".into(),
                    event_type: "Normal".into(),
                    message: "Marking for deletion Pod default/web-3".into(),
                },
            ),
        ];
        let mut out = Vec::new();
        write_jsonl(&entries, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            r#"{"t":85.0,"type":"NodeConditionsUnknown","node":"a-3","conditions":["Ready","MemoryPressure"]}"#
        );
        assert_eq!(
            lines[1],
            r#"{"t":85.1,"type":"TaintAdded","node":"a-3","taint":"node.kubernetes.io/unreachable:NoExecute"}"#
        );
        assert_eq!(
            lines[2],
            r#"{"t":90.0,"type":"Event","object":"Pod/default/web-3","reason":"TaintManagerEviction","eventType":"Normal","message":"Marking for deletion Pod default/web-3"}"#
        );
    }

    #[test]
    fn action_entries_start_with_the_action_name() {
        let mut fields = serde_json::Map::new();
        fields.insert("nodes".into(), serde_json::json!(["a-3"]));
        fields.insert("action".into(), serde_json::json!("stop-heartbeat"));
        let line = entry_json(&entry(30_000, EntryKind::Action { fields }));
        assert_eq!(
            line,
            r#"{"t":30.0,"type":"Action","action":"stop-heartbeat","nodes":["a-3"]}"#
        );
    }

    #[test]
    fn summary_counts_our_no_execute_taints_deletions_and_zone_states() {
        let zone = |t, state: &str| {
            entry(
                t,
                EntryKind::ZoneState {
                    zone: "zone-a".into(),
                    state: state.into(),
                },
            )
        };
        let taint = |t, node: &str, taint: &str| {
            entry(
                t,
                EntryKind::TaintAdded {
                    node: node.into(),
                    taint: taint.into(),
                },
            )
        };
        let deleted = |t, pod: &str| {
            entry(
                t,
                EntryKind::PodDeleted {
                    pod: pod.into(),
                    node: "a-3".into(),
                    via: "delete".into(),
                },
            )
        };
        let entries = vec![
            zone(0, "Normal"),
            taint(85_000, "a-3", "node.kubernetes.io/unreachable:NoSchedule"),
            taint(85_100, "a-3", "node.kubernetes.io/unreachable:NoExecute"),
            taint(86_000, "a-4", "example.com/drain:NoExecute"),
            taint(90_000, "a-3", "node.kubernetes.io/not-ready:NoExecute"),
            zone(100_000, "PartialDisruption"),
            zone(200_000, "Normal"),
            zone(300_000, "Normal"),
            deleted(385_100, "default/web-3"),
            deleted(390_000, "default/web-4"),
        ];
        let summary = summarize(&entries);
        assert_eq!(summary.nodes_tainted, 1);
        assert_eq!(summary.pods_deleted, 2);
        assert_eq!(summary.first_pod_deleted_ms, Some(385_100));
        assert_eq!(summary.last_pod_deleted_ms, Some(390_000));
        assert_eq!(
            summary.zones["zone-a"],
            vec!["Normal", "PartialDisruption", "Normal"]
        );
        let line = entry_json(&entry(900_000, EntryKind::Summary(summary)));
        assert_eq!(
            line,
            r#"{"t":900.0,"type":"Summary","nodesTainted":1,"podsDeleted":2,"firstPodDeletedAt":385.1,"lastPodDeletedAt":390.0,"zones":{"zone-a":["Normal","PartialDisruption","Normal"]}}"#
        );
    }

    #[test]
    fn summary_without_deletions_writes_null_times() {
        let line = entry_json(&entry(60_000, EntryKind::Summary(Summary::default())));
        assert_eq!(
            line,
            r#"{"t":60.0,"type":"Summary","nodesTainted":0,"podsDeleted":0,"firstPodDeletedAt":null,"lastPodDeletedAt":null,"zones":{}}"#
        );
    }

    #[test]
    fn table_aligns_lines_and_echoes_the_description_in_the_summary() {
        let entries = vec![
            entry(
                0,
                EntryKind::ZoneState {
                    zone: "zone-a".into(),
                    state: "Normal".into(),
                },
            ),
            entry(
                85_100,
                EntryKind::TaintAdded {
                    node: "a-3".into(),
                    taint: "node.kubernetes.io/unreachable:NoExecute".into(),
                },
            ),
            entry(900_000, EntryKind::Summary(summarize(&[]))),
        ];
        let mut out = Vec::new();
        write_table(&entries, Some("one node goes away"), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], " 0.000s  ZoneState   zone-a  Normal");
        assert_eq!(
            lines[1],
            "85.100s  TaintAdded  a-3  + node.kubernetes.io/unreachable:NoExecute"
        );
        assert!(text.contains("Summary after 900.0s"));
        assert!(text.contains("one node goes away"));
    }

    #[test]
    fn taints_are_written_with_their_value_when_they_have_one() {
        assert_eq!(taint_text("k", None, "NoExecute"), "k:NoExecute");
        assert_eq!(taint_text("k", Some(""), "NoExecute"), "k:NoExecute");
        assert_eq!(taint_text("k", Some("v"), "NoSchedule"), "k=v:NoSchedule");
    }
}
