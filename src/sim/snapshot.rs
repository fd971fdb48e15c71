//! `simulate --from-cluster`: a read-only snapshot of a real cluster (Nodes, Pods,
//! PodDisruptionBudgets) turned into a scenario in the documented format (docs/simulation.md),
//! with the failure to play from `--fail`/`--recover` or a small file of events.
//!
//! The scenario is built as text and then parsed like any other, so that what `--save-scenario`
//! writes is exactly what runs, and `simulate FILE` replays it identically.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{Node, Pod, Toleration};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, ListParams};
use serde_yaml_ng::{Mapping, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Errors of reading a cluster and building a scenario from it.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A list the API server refused or that failed (RBAC, connection).
    #[error("cannot list {what} from the cluster: {source}")]
    List {
        what: &'static str,
        #[source]
        source: kube::Error,
    },
    /// A flag or the events file cannot be used (a usage error: exit 2).
    #[error("{0}")]
    Usage(String),
}

/// Labels of a node the controller reads, besides the zone and region (kept in the scenario).
const KEPT_NODE_LABELS: &[&str] = &[
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "node.kubernetes.io/exclude-disruption",
    "node.kubernetes.io/exclude-from-external-load-balancers",
];
const ZONE: &str = "topology.kubernetes.io/zone";
const REGION: &str = "topology.kubernetes.io/region";
const BETA_ZONE: &str = "failure-domain.beta.kubernetes.io/zone";

/// The objects read, and when.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub nodes: Vec<Node>,
    pub pods: Vec<Pod>,
    pub pdbs: Vec<PodDisruptionBudget>,
    /// Times in the cluster are made relative to this instant (the scenario's start).
    pub taken_at: Timestamp,
}

/// Lists Nodes, Pods and PodDisruptionBudgets (paged, 500 at a time). Only `list` requests.
pub async fn read(client: &kube::Client) -> Result<Snapshot, SnapshotError> {
    let taken_at = Timestamp::now();
    let nodes = list_all(Api::<Node>::all(client.clone()), "nodes").await?;
    let pods = list_all(Api::<Pod>::all(client.clone()), "pods").await?;
    let pdbs = list_all(
        Api::<PodDisruptionBudget>::all(client.clone()),
        "poddisruptionbudgets",
    )
    .await?;
    Ok(Snapshot {
        nodes,
        pods,
        pdbs,
        taken_at,
    })
}

async fn list_all<K>(api: Api<K>, what: &'static str) -> Result<Vec<K>, SnapshotError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut params = ListParams::default().limit(500);
        if let Some(t) = token.take() {
            params = params.continue_token(&t);
        }
        let list = api
            .list(&params)
            .await
            .map_err(|source| SnapshotError::List { what, source })?;
        items.extend(list.items);
        match list.metadata.continue_ {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(items),
        }
    }
}

/// What a `--fail` or `--recover` does to its nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// The kubelets stop (stop-heartbeat): the nodes go silent.
    Fail,
    /// The kubelets come back (resume-heartbeat).
    Recover,
}

impl Change {
    fn flag(self) -> &'static str {
        match self {
            Change::Fail => "--fail",
            Change::Recover => "--recover",
        }
    }
}

/// Which nodes a change is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Zones(Vec<String>),
    Nodes(Vec<String>),
}

/// One `--fail` or `--recover`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeChange {
    pub change: Change,
    pub target: Target,
    pub at: Duration,
    /// As given, for messages and the description.
    pub text: String,
}

/// When a `--fail` without `at=` happens: late enough to see the cluster healthy first.
pub const DEFAULT_FAIL_AT: Duration = Duration::from_secs(30);

/// The values of every `--fail` (or every `--recover`), one group per change: a new group
/// starts at each word that is not `at=...` (clap gives the values of all occurrences as one
/// list; a value may also hold several words separated by spaces).
pub fn group_words(values: &[String]) -> Vec<Vec<String>> {
    let mut groups: Vec<Vec<String>> = Vec::new();
    for word in values.iter().flat_map(|v| v.split_whitespace()) {
        match groups.last_mut() {
            Some(group)
                if word.starts_with("at=") && !group.iter().any(|w| w.starts_with("at=")) =>
            {
                group.push(word.to_string())
            }
            _ => groups.push(vec![word.to_string()]),
        }
    }
    groups
}

/// Parses the words of one `--fail`/`--recover`: `zone=Z[,Z...]` or `nodes=N[,N...]`, and
/// `at=DURATION` (optional for `--fail`, 30s by default; required for `--recover`). Words may
/// come as separate arguments or in one, separated by spaces.
pub fn parse_change(change: Change, words: &[String]) -> Result<NodeChange, SnapshotError> {
    let flag = change.flag();
    let text = words.join(" ");
    let usage = |why: String| {
        SnapshotError::Usage(format!(
            "{flag} {text:?}: {why}; expected `{flag} zone=ZONE[,ZONE...] {at}` or \
             `{flag} nodes=NAME[,NAME...] {at}`",
            at = if change == Change::Fail {
                "[at=DURATION]"
            } else {
                "at=DURATION"
            }
        ))
    };
    let (mut target, mut at) = (None, None);
    for word in text.split_whitespace() {
        let Some((key, value)) = word.split_once('=') else {
            return Err(usage(format!("`{word}` is not KEY=VALUE")));
        };
        let names = || -> Result<Vec<String>, SnapshotError> {
            let names: Vec<String> = value.split(',').map(str::to_string).collect();
            if names.iter().any(String::is_empty) {
                return Err(usage(format!("`{word}` has an empty name")));
            }
            Ok(names)
        };
        let previous = match key {
            "zone" | "zones" => target.replace(Target::Zones(names()?)).is_some(),
            "node" | "nodes" => target.replace(Target::Nodes(names()?)).is_some(),
            "at" => {
                let d = if value.starts_with('-') {
                    Err("a negative time".to_string())
                } else {
                    humantime::parse_duration(value).map_err(|e| e.to_string())
                };
                let d = d.map_err(|e| usage(format!("`at={value}` is not a duration ({e})")))?;
                at.replace(d).is_some()
            }
            _ => return Err(usage(format!("unknown key `{key}`"))),
        };
        if previous {
            return Err(usage(format!(
                "`{key}` is given twice (or both zone= and nodes=)"
            )));
        }
    }
    let target = target.ok_or_else(|| usage("which nodes is missing".to_string()))?;
    let at = match (at, change) {
        (Some(at), _) => at,
        (None, Change::Fail) => DEFAULT_FAIL_AT,
        (None, Change::Recover) => return Err(usage("`at=` is missing".to_string())),
    };
    Ok(NodeChange {
        change,
        target,
        at,
        text,
    })
}

/// Everything besides the snapshot that goes into the scenario.
#[derive(Clone, Debug, Default)]
pub struct WhatIf<'a> {
    pub changes: &'a [NodeChange],
    /// A file of events (`(file name, text)`): may have description, duration, controller,
    /// kubelet and events, not nodes, pods or pdbs (those come from the cluster).
    pub events_file: Option<(&'a str, &'a str)>,
    /// `--duration`; else the file's; else 15m.
    pub duration: Option<Duration>,
    /// `--set` overrides, written into `controller:` so the saved scenario replays the same.
    pub set: &'a [(String, String)],
    /// Where the snapshot came from (the server or context), for the description.
    pub source: &'a str,
}

/// The default `duration` of a what-if.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(15 * 60);

/// What building the scenario left out, to be said on stderr.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notes(pub Vec<String>);

/// The scenario text: the cluster's state at the start, then the events.
pub fn scenario_text(
    snapshot: &Snapshot,
    what_if: &WhatIf,
) -> Result<(String, Notes), SnapshotError> {
    let mut notes = Notes::default();
    let mut file = match what_if.events_file {
        Some((name, text)) => events_file(name, text)?,
        None => Mapping::new(),
    };

    let mut nodes: Vec<&Node> = snapshot.nodes.iter().collect();
    nodes.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let node_zone: BTreeMap<String, Option<String>> = nodes
        .iter()
        .map(|n| (name_of(&n.metadata), zone_of(n)))
        .collect();

    let mut pdbs = Vec::new();
    let mut selector_keys = BTreeSet::new();
    for pdb in &snapshot.pdbs {
        let id = format!(
            "{}/{}",
            pdb.metadata.namespace.as_deref().unwrap_or("default"),
            name_of(&pdb.metadata)
        );
        let spec = pdb.spec.clone().unwrap_or_default();
        let selector = spec.selector.unwrap_or_default();
        if selector
            .match_expressions
            .as_ref()
            .is_some_and(|e| !e.is_empty())
        {
            notes.0.push(format!(
                "PodDisruptionBudget {id} left out: its selector has matchExpressions, which \
                 a scenario cannot express (only matchLabels)"
            ));
            continue;
        }
        let labels = selector.match_labels.unwrap_or_default();
        selector_keys.extend(labels.keys().cloned());
        let mut m = Mapping::new();
        put(&mut m, "name", name_of(&pdb.metadata));
        put(
            &mut m,
            "namespace",
            pdb.metadata.namespace.clone().unwrap_or_default(),
        );
        put(&mut m, "selector", string_map(&labels));
        if let Some(v) = spec.max_unavailable {
            put(&mut m, "maxUnavailable", int_or_string(&v));
        }
        if let Some(v) = spec.min_available {
            put(&mut m, "minAvailable", int_or_string(&v));
        }
        pdbs.push(Value::Mapping(m));
    }

    let node_values: Vec<Value> = nodes
        .iter()
        .map(|n| node_value(n, snapshot.taken_at))
        .collect();

    let mut pods: Vec<&Pod> = snapshot.pods.iter().collect();
    pods.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
    });
    let mut pod_values = Vec::new();
    let mut unbound = 0;
    for pod in pods {
        let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed"))
            || pod.metadata.deletion_timestamp.is_some()
        {
            continue;
        }
        match node {
            Some(node) if node_zone.contains_key(&node) => {
                pod_values.push(pod_value(pod, &node, &selector_keys, snapshot.taken_at));
            }
            _ => unbound += 1,
        }
    }
    if unbound > 0 {
        notes.0.push(format!(
            "{unbound} pod(s) left out: not bound to a node of the cluster (not scheduled yet, or on a \
             node that is gone)"
        ));
    }

    // The failure from the flags, as events after the file's.
    let mut events = match file.remove("events") {
        Some(Value::Sequence(events)) => events,
        Some(Value::Null) | None => Vec::new(),
        Some(_) => {
            return Err(SnapshotError::Usage(format!(
                "{}: events: expected a list of events",
                what_if.events_file.map_or("", |f| f.0)
            )));
        }
    };
    // A zone is named as the command prints it (`region/zone`, the controller's zone key) or
    // by its zone label alone.
    let shown: BTreeMap<&str, String> = nodes
        .iter()
        .map(|n| {
            let key = crate::logic::zones::zone_key(n);
            (
                n.metadata.name.as_deref().unwrap_or_default(),
                crate::logic::zones::display(&key),
            )
        })
        .collect();
    let zones: BTreeSet<&str> = shown
        .values()
        .filter(|z| !z.is_empty())
        .map(String::as_str)
        .collect();
    for change in what_if.changes {
        let names: Vec<String> = match &change.target {
            Target::Zones(wanted) => {
                let mut names = Vec::new();
                for zone in wanted {
                    let before = names.len();
                    names.extend(
                        node_zone
                            .iter()
                            .filter(|(n, z)| {
                                z.as_deref() == Some(zone.as_str())
                                    || shown.get(n.as_str()) == Some(zone)
                            })
                            .map(|(n, _)| n.clone()),
                    );
                    if names.len() == before {
                        return Err(SnapshotError::Usage(format!(
                            "{} {:?}: no node of the cluster is in zone {zone:?} (its zones: {})",
                            change.change.flag(),
                            change.text,
                            zones.iter().copied().collect::<Vec<_>>().join(", ")
                        )));
                    }
                }
                names
            }
            Target::Nodes(wanted) => {
                if let Some(missing) = wanted.iter().find(|n| !node_zone.contains_key(*n)) {
                    return Err(SnapshotError::Usage(format!(
                        "{} {:?}: the cluster has no node named {missing:?}",
                        change.change.flag(),
                        change.text
                    )));
                }
                wanted.clone()
            }
        };
        let mut e = Mapping::new();
        put(&mut e, "at", show(change.at));
        put(
            &mut e,
            "action",
            match change.change {
                Change::Fail => "stop-heartbeat",
                Change::Recover => "resume-heartbeat",
            },
        );
        put(
            &mut e,
            "nodes",
            Value::Sequence(names.into_iter().map(Value::from).collect()),
        );
        events.push(Value::Mapping(e));
    }

    let duration = match (what_if.duration, file.remove("duration")) {
        (Some(d), _) => Value::from(show(d)),
        (None, Some(d)) => d,
        (None, None) => Value::from(show(DEFAULT_DURATION)),
    };
    let description = file.remove("description").unwrap_or_else(|| {
        let changes: Vec<String> = what_if
            .changes
            .iter()
            .map(|c| format!("{} {}", c.change.flag(), c.text))
            .collect();
        Value::from(format!(
            "what-if on {} ({} nodes, {} pods){}",
            what_if.source,
            node_values.len(),
            pod_values.len(),
            if changes.is_empty() {
                String::new()
            } else {
                format!(": {}", changes.join(", "))
            }
        ))
    });
    let mut controller = match file.remove("controller") {
        Some(Value::Mapping(m)) => m,
        Some(Value::Null) | None => Mapping::new(),
        Some(_) => {
            return Err(SnapshotError::Usage(format!(
                "{}: controller: expected a mapping of flag names to values",
                what_if.events_file.map_or("", |f| f.0)
            )));
        }
    };
    for (flag, value) in what_if.set {
        controller.insert(Value::from(flag.clone()), Value::from(value.clone()));
    }

    let mut root = Mapping::new();
    put(&mut root, "description", description);
    put(&mut root, "duration", duration);
    if !controller.is_empty() {
        put(&mut root, "controller", Value::Mapping(controller));
    }
    if let Some(kubelet) = file.remove("kubelet") {
        put(&mut root, "kubelet", kubelet);
    }
    // The pods' tolerations are as the API server admitted them: nothing is to be added.
    let mut admission = Mapping::new();
    put(&mut admission, "default-toleration-seconds", Value::Null);
    put(&mut root, "admission", Value::Mapping(admission));
    put(&mut root, "nodes", Value::Sequence(node_values));
    put(&mut root, "pods", Value::Sequence(pod_values));
    put(&mut root, "pdbs", Value::Sequence(pdbs));
    put(&mut root, "events", Value::Sequence(events));
    let body = serde_yaml_ng::to_string(&Value::Mapping(root))
        .map_err(|e| SnapshotError::Usage(format!("cannot write the scenario as YAML: {e}")))?;
    let header = format!(
        "# Built by `node-lifecycle-controller simulate --from-cluster` from {} at {}.\n\
         # Replay it with `node-lifecycle-controller simulate FILE` (docs/what-if.md).\n",
        what_if.source,
        snapshot
            .taken_at
            .round(jiff::Unit::Second)
            .unwrap_or(snapshot.taken_at)
    );
    Ok((header + &body, notes))
}

/// The keys an events file may have.
const EVENTS_FILE_KEYS: &[&str] = &["description", "duration", "controller", "kubelet", "events"];

fn events_file(name: &str, text: &str) -> Result<Mapping, SnapshotError> {
    let value: Value = serde_yaml_ng::from_str(text)
        .map_err(|e| SnapshotError::Usage(format!("{name}: not a YAML mapping: {e}")))?;
    let map = match value {
        Value::Mapping(m) => m,
        Value::Null => Mapping::new(),
        _ => {
            return Err(SnapshotError::Usage(format!(
                "{name}: expected a mapping with {}",
                EVENTS_FILE_KEYS.join(", ")
            )));
        }
    };
    for key in map.keys() {
        let key = key.as_str().unwrap_or("<not a string>");
        if !EVENTS_FILE_KEYS.contains(&key) {
            return Err(SnapshotError::Usage(format!(
                "{name}: `{key}` cannot be used with --from-cluster (the nodes, pods and \
                 PodDisruptionBudgets come from the cluster); the file may have only {}",
                EVENTS_FILE_KEYS.join(", ")
            )));
        }
    }
    Ok(map)
}

fn put(map: &mut Mapping, key: &str, value: impl Into<Value>) {
    map.insert(Value::from(key), value.into());
}

fn name_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    meta.name.clone().unwrap_or_default()
}

fn zone_of(node: &Node) -> Option<String> {
    let labels = node.metadata.labels.as_ref()?;
    labels.get(ZONE).or_else(|| labels.get(BETA_ZONE)).cloned()
}

fn string_map(map: &BTreeMap<String, String>) -> Value {
    Value::Mapping(
        map.iter()
            .map(|(k, v)| (Value::from(k.clone()), Value::from(v.clone())))
            .collect(),
    )
}

fn int_or_string(v: &IntOrString) -> Value {
    match v {
        IntOrString::Int(i) => Value::from(*i),
        IntOrString::String(s) => Value::from(s.clone()),
    }
}

/// A duration as humantime writes it, without spaces (`1m30s`).
fn show(d: Duration) -> String {
    humantime::format_duration(d).to_string().replace(' ', "")
}

/// `t` relative to `start`, to the second (`-2h5m`, `0s`, `30s`).
fn relative(t: Timestamp, start: Timestamp) -> String {
    let d: SignedDuration = t.duration_since(start);
    let secs = d.as_secs();
    let text = show(Duration::from_secs(secs.unsigned_abs()));
    if secs < 0 { format!("-{text}") } else { text }
}

fn node_value(node: &Node, start: Timestamp) -> Value {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let mut m = Mapping::new();
    put(&mut m, "name", name_of(&node.metadata));
    if let Some(zone) = labels.get(ZONE) {
        put(&mut m, "zone", zone.clone());
    }
    if let Some(region) = labels.get(REGION) {
        put(&mut m, "region", region.clone());
    }
    let kept: BTreeMap<String, String> = labels
        .iter()
        .filter(|(k, _)| {
            KEPT_NODE_LABELS.contains(&k.as_str()) || k.starts_with("node-role.kubernetes.io/")
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !kept.is_empty() {
        put(&mut m, "labels", string_map(&kept));
    }
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.clone());
    // A node whose Ready is Unknown has a silent kubelet: it stays silent in the simulation.
    let heartbeat = match ready.as_deref() {
        Some("Unknown") => "none",
        _ => "lease",
    };
    put(&mut m, "ready", ready.unwrap_or_else(|| "none".to_string()));
    put(&mut m, "heartbeat", heartbeat);
    if let Some(created) = &node.metadata.creation_timestamp {
        put(&mut m, "created", relative(created.0, start));
    }
    let taints: Vec<Value> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .map(|ts| {
            ts.iter()
                .map(|t| {
                    let mut tm = Mapping::new();
                    put(&mut tm, "key", t.key.clone());
                    if let Some(v) = t.value.as_ref().filter(|v| !v.is_empty()) {
                        put(&mut tm, "value", v.clone());
                    }
                    put(&mut tm, "effect", t.effect.clone());
                    if let Some(added) = &t.time_added {
                        put(&mut tm, "timeAdded", relative(added.0, start));
                    }
                    Value::Mapping(tm)
                })
                .collect()
        })
        .unwrap_or_default();
    if !taints.is_empty() {
        put(&mut m, "taints", Value::Sequence(taints));
    }
    if node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false)
    {
        put(&mut m, "unschedulable", true);
    }
    Value::Mapping(m)
}

fn pod_value(pod: &Pod, node: &str, selector_keys: &BTreeSet<String>, start: Timestamp) -> Value {
    let mut m = Mapping::new();
    put(&mut m, "name", name_of(&pod.metadata));
    // When it was bound, as the controller reads it from the API (PodScheduled, else its
    // creation): without it the pod would count as bound at the start, and a NoExecute taint
    // older than the snapshot would count for it from the start instead of its timeAdded.
    let facts = crate::logic::pod::PodFacts::from(pod);
    if let Some(bound) = crate::logic::eviction::bound_at_from_api(&facts).filter(|b| *b <= start) {
        put(&mut m, "bound", relative(bound, start));
    }
    put(
        &mut m,
        "namespace",
        pod.metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
    );
    put(&mut m, "node", node.to_string());
    let owner = pod
        .metadata
        .owner_references
        .as_ref()
        .and_then(|os| os.iter().find(|o| o.controller == Some(true)));
    if let Some(owner) = owner {
        if owner.kind == "DaemonSet" {
            put(&mut m, "daemonset", true);
        }
        put(&mut m, "owner", format!("{}/{}", owner.kind, owner.name));
    }
    let tolerations: Vec<Value> = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_ref())
        .map(|ts| ts.iter().map(toleration_value).collect())
        .unwrap_or_default();
    if !tolerations.is_empty() {
        put(&mut m, "tolerations", Value::Sequence(tolerations));
    }
    let labels: BTreeMap<String, String> = pod
        .metadata
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| selector_keys.contains(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !labels.is_empty() {
        put(&mut m, "labels", string_map(&labels));
    }
    let ready = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True");
    if !ready {
        put(&mut m, "ready", false);
    }
    Value::Mapping(m)
}

fn toleration_value(t: &Toleration) -> Value {
    let mut m = Mapping::new();
    if let Some(key) = t.key.as_ref().filter(|k| !k.is_empty()) {
        put(&mut m, "key", key.clone());
    }
    if let Some(op) = &t.operator {
        put(&mut m, "operator", op.clone());
    }
    if let Some(v) = t.value.as_ref().filter(|v| !v.is_empty()) {
        put(&mut m, "value", v.clone());
    }
    if let Some(effect) = t.effect.as_ref().filter(|e| !e.is_empty()) {
        put(&mut m, "effect", effect.clone());
    }
    if let Some(s) = t.toleration_seconds {
        put(&mut m, "tolerationSeconds", s);
    }
    Value::Mapping(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn a_fail_names_a_zone_or_nodes_and_happens_at_30s_unless_told() {
        let f = parse_change(Change::Fail, &words("zone=zone-b")).unwrap();
        assert_eq!(f.target, Target::Zones(vec!["zone-b".into()]));
        assert_eq!(f.at, Duration::from_secs(30));
        let f = parse_change(Change::Fail, &words("nodes=a-1,a-2 at=1m30s")).unwrap();
        assert_eq!(f.target, Target::Nodes(vec!["a-1".into(), "a-2".into()]));
        assert_eq!(f.at, Duration::from_secs(90));
    }

    #[test]
    fn the_values_of_repeated_flags_group_into_one_change_each() {
        let values = words("zone=a at=10s nodes=x,y zone=c at=1m");
        let groups = group_words(&values);
        assert_eq!(
            groups,
            vec![
                words("zone=a at=10s"),
                words("nodes=x,y"),
                words("zone=c at=1m")
            ]
        );
        assert_eq!(
            group_words(&["zone=a at=5s".to_string()]),
            vec![words("zone=a at=5s")]
        );
    }

    #[test]
    fn a_recover_without_at_or_a_bad_word_is_refused_naming_the_flag_and_value() {
        let e = parse_change(Change::Recover, &words("nodes=a-1")).unwrap_err();
        assert!(e.to_string().contains("--recover \"nodes=a-1\""), "{e}");
        assert!(e.to_string().contains("`at=` is missing"), "{e}");
        let e = parse_change(Change::Fail, &words("zone=b at=soon")).unwrap_err();
        assert!(e.to_string().contains("`at=soon` is not a duration"), "{e}");
        let e = parse_change(Change::Fail, &words("zone=b events.yaml")).unwrap_err();
        assert!(
            e.to_string().contains("`events.yaml` is not KEY=VALUE"),
            "{e}"
        );
        let e = parse_change(Change::Fail, &words("zone=b nodes=a")).unwrap_err();
        assert!(e.to_string().contains("given twice"), "{e}");
    }

    fn node_in(name: &str, region: &str, zone: &str) -> Node {
        serde_json::from_value(serde_json::json!({"metadata": {"name": name, "labels": {
            REGION: region, ZONE: zone}}}))
        .expect("node")
    }

    #[test]
    fn a_zone_is_named_as_the_report_prints_it_or_by_its_label_alone() {
        let snapshot = Snapshot {
            nodes: vec![
                node_in("a-0", "demo", "zone-a"),
                node_in("b-0", "demo", "zone-b"),
            ],
            pods: vec![],
            pdbs: vec![],
            taken_at: Timestamp::UNIX_EPOCH,
        };
        for which in ["zone=demo/zone-a", "zone=zone-a"] {
            let changes = [parse_change(Change::Fail, &words(which)).unwrap()];
            let what_if = WhatIf {
                changes: &changes,
                source: "test",
                ..WhatIf::default()
            };
            let (text, _) =
                scenario_text(&snapshot, &what_if).unwrap_or_else(|e| panic!("{which}: {e}"));
            assert!(
                text.contains("action: stop-heartbeat")
                    && text.contains("- a-0")
                    && !text.contains("- b-0"),
                "{which}: {text}"
            );
        }
        let changes = [parse_change(Change::Fail, &words("zone=zone-x")).unwrap()];
        let what_if = WhatIf {
            changes: &changes,
            source: "test",
            ..WhatIf::default()
        };
        let e = scenario_text(&snapshot, &what_if).unwrap_err().to_string();
        assert!(e.contains("(its zones: demo/zone-a, demo/zone-b)"), "{e}");
    }

    #[test]
    fn a_pending_pod_bound_to_a_node_is_kept_and_an_unbound_one_left_out() {
        let pod = |name: &str, node: Option<&str>| -> Pod {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": "shop"},
                "spec": {"nodeName": node, "containers": []},
                "status": {"phase": "Pending"},
            }))
            .expect("pod")
        };
        let snapshot = Snapshot {
            nodes: vec![node_in("a-0", "demo", "zone-a")],
            pods: vec![pod("bound", Some("a-0")), pod("unbound", None)],
            pdbs: vec![],
            taken_at: Timestamp::UNIX_EPOCH,
        };
        let what_if = WhatIf {
            source: "test",
            ..WhatIf::default()
        };
        let (text, notes) = scenario_text(&snapshot, &what_if).unwrap();
        assert!(
            text.contains("name: bound") && !text.contains("unbound"),
            "{text}"
        );
        assert!(
            notes.0.iter().any(|n| n.starts_with("1 pod(s) left out")),
            "{:?}",
            notes.0
        );
    }

    #[test]
    fn a_pod_keeps_when_it_was_bound_so_an_older_taint_counts_from_its_time_added() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop",
                         "creationTimestamp": "1970-01-01T00:00:00Z"},
            "spec": {"nodeName": "a-0", "containers": []},
            "status": {"conditions": [{"type": "PodScheduled", "status": "True",
                                       "lastTransitionTime": "1970-01-01T00:00:20Z"}]},
        }))
        .expect("pod");
        let snapshot = Snapshot {
            nodes: vec![node_in("a-0", "demo", "zone-a")],
            pods: vec![pod],
            pdbs: vec![],
            taken_at: Timestamp::UNIX_EPOCH + SignedDuration::from_secs(3600),
        };
        let what_if = WhatIf {
            source: "test",
            ..WhatIf::default()
        };
        let (text, _) = scenario_text(&snapshot, &what_if).unwrap();
        // PodScheduled at 20 s, as the controller reads it (the next second: 21 s), 3600 s
        // before the snapshot.
        assert!(text.contains("bound: -59m39s"), "{text}");
    }

    #[test]
    fn an_events_file_with_nodes_is_refused_naming_the_file_and_key() {
        let snapshot = Snapshot {
            nodes: vec![],
            pods: vec![],
            pdbs: vec![],
            taken_at: Timestamp::UNIX_EPOCH,
        };
        let what_if = WhatIf {
            events_file: Some(("f.yaml", "duration: 1m\nnodes: [{name: a}]\n")),
            source: "test",
            ..WhatIf::default()
        };
        let e = scenario_text(&snapshot, &what_if).unwrap_err();
        assert!(
            e.to_string().starts_with("f.yaml: `nodes` cannot be used"),
            "{e}"
        );
    }
}
