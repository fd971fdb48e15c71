//! Scenario files (SIMULATION.md, a public interface): parsing, validation and expansion.
//!
//! Parsing rejects unknown fields and names the file, the line, the field and what was expected.
//! After parsing, every `{i..j}` pattern is expanded, pods are spread round-robin over their node
//! pattern, and relative times are signed offsets from the start.

use jiff::SignedDuration;
use k8s_openapi::api::core::v1::Toleration;
use std::collections::BTreeMap;
use std::time::Duration;

/// A scenario that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {field}: {message}")]
pub struct ScenarioError {
    pub file: String,
    /// 1-based; 0 when unknown (e.g. empty input).
    pub line: usize,
    /// Dotted path of the offending field (`nodes[2].ready`), or `<document>`.
    pub field: String,
    /// What was wrong and what was expected.
    pub message: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    pub description: Option<String>,
    pub duration: Duration,
    /// `controller:` entries as (long flag name without `--`, value as text), in file order.
    pub controller: Vec<(String, String)>,
    pub kubelet: KubeletConfig,
    /// `admission.default-toleration-seconds`; `None` when disabled with `null`.
    pub default_toleration_seconds: Option<i64>,
    pub nodes: Vec<NodeSpec>,
    pub pods: Vec<PodSpec>,
    pub pdbs: Vec<PdbSpec>,
    /// Sorted by `at` (stable: file order within an instant).
    pub events: Vec<ScenarioEvent>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct KubeletConfig {
    pub lease_renew_interval: Duration,
    pub status_update_frequency: Duration,
    pub status_report_frequency: Duration,
}

impl Default for KubeletConfig {
    fn default() -> Self {
        KubeletConfig {
            lease_renew_interval: Duration::from_secs(10),
            status_update_frequency: Duration::from_secs(10),
            status_report_frequency: Duration::from_secs(300),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heartbeat {
    Lease,
    Status,
    None,
}

/// A taint as written in a scenario; `time_added` is relative to the start.
#[derive(Clone, Debug, PartialEq)]
pub struct TaintSpec {
    pub key: String,
    pub value: Option<String>,
    pub effect: String,
    pub time_added: Option<SignedDuration>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NodeSpec {
    pub name: String,
    pub zone: Option<String>,
    pub region: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Initial Ready status (`"True"`, `"False"`, `"Unknown"`); `None` for `ready: none`
    /// (the node has no Ready condition).
    pub ready: Option<String>,
    pub heartbeat: Heartbeat,
    /// Relative to the start (default -1h).
    pub created: SignedDuration,
    pub taints: Vec<TaintSpec>,
    pub unschedulable: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PodSpec {
    pub name: String,
    pub namespace: String,
    /// The one node this pod is on (after round-robin expansion).
    pub node: String,
    pub tolerations: Vec<Toleration>,
    pub daemonset: bool,
    /// Relative to the start; `None`: the start (or, for `add-pods`, the moment they are added).
    pub bound: Option<SignedDuration>,
    pub labels: BTreeMap<String, String>,
    pub ready: bool,
}

/// `maxUnavailable` / `minAvailable`: an integer or a percentage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntOrPercent {
    Int(i32),
    Percent(u32),
}

#[derive(Clone, Debug, PartialEq)]
pub struct PdbSpec {
    pub name: String,
    pub namespace: String,
    pub selector: BTreeMap<String, String>,
    pub max_unavailable: Option<IntOrPercent>,
    pub min_available: Option<IntOrPercent>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchResource {
    Leases,
    Nodes,
    Pods,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioEvent {
    /// Relative to the start, never negative.
    pub at: Duration,
    pub action: EventAction,
    /// The event as the timeline's `Action` entry shows it: `action` plus the action's own
    /// fields, with names expanded (`nodes: [a-0, a-1]`) and set-condition's `type` written as
    /// `conditionType`. Has no `at`/`t`.
    pub timeline_fields: serde_json::Map<String, serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum EventAction {
    StopHeartbeat { nodes: Vec<String> },
    ResumeHeartbeat { nodes: Vec<String> },
    SetCondition { nodes: Vec<String>, condition_type: String, status: String },
    AddTaint { nodes: Vec<String>, taint: TaintSpec },
    RemoveTaint { nodes: Vec<String>, taint: TaintSpec },
    DeleteNode { nodes: Vec<String> },
    AddNodes { nodes: Vec<NodeSpec> },
    AddPods { pods: Vec<PodSpec> },
    /// `namespace/name` keys.
    DeletePods { pods: Vec<String> },
    SetTolerations { pods: Vec<String>, tolerations: Vec<Toleration> },
    RestartController,
    ApiOutage { duration: Duration },
    StallWatch { resource: WatchResource, duration: Duration },
}

/// Parses and expands a scenario. `file` names the source in errors (`-` for stdin).
pub fn parse(text: &str, file: &str) -> Result<Scenario, ScenarioError> {
    todo!("{text} {file}")
}

/// The built-in demo `simulate` runs without a file: a small two-zone cluster that loses a node
/// and gets it back.
pub const DEMO: &str = include_str!("demo.yaml");
