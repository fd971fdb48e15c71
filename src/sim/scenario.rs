//! Scenario files (docs/simulation.md, a public interface): parsing, validation and expansion.
//!
//! Parsing rejects unknown fields and names the file, the line, the field and what was expected.
//! After parsing, every `{i..j}` pattern is expanded, pods are spread round-robin over their node
//! pattern, and relative times are signed offsets from the start.

use jiff::SignedDuration;
use k8s_openapi::api::core::v1::Toleration;
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, Visitor};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::marker::PhantomData;
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
    /// The controlling owner as `Kind/name` (`ReplicaSet/web-5d8f`); `None`: none, or for a
    /// DaemonSet pod a DaemonSet named after the pod.
    pub owner: Option<String>,
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
    StopHeartbeat {
        nodes: Vec<String>,
    },
    ResumeHeartbeat {
        nodes: Vec<String>,
    },
    SetCondition {
        nodes: Vec<String>,
        condition_type: String,
        status: String,
    },
    AddTaint {
        nodes: Vec<String>,
        taint: TaintSpec,
    },
    RemoveTaint {
        nodes: Vec<String>,
        taint: TaintSpec,
    },
    DeleteNode {
        nodes: Vec<String>,
    },
    AddNodes {
        nodes: Vec<NodeSpec>,
    },
    AddPods {
        pods: Vec<PodSpec>,
    },
    /// `namespace/name` keys.
    DeletePods {
        pods: Vec<String>,
    },
    SetTolerations {
        pods: Vec<String>,
        tolerations: Vec<Toleration>,
    },
    RestartController,
    /// The controller's connection fails (kubelets still reach the API server).
    ApiOutage {
        duration: Duration,
    },
    /// Every request and watch stalls, unanswered, then all complete at once.
    ApiHang {
        duration: Duration,
    },
    /// The API server goes away for everyone, then a fresh one answers (410 on resumed watches).
    ApiRestart {
        duration: Duration,
    },
    StallWatch {
        resource: WatchResource,
        duration: Duration,
    },
}

/// Parses and expands a scenario. `file` names the source in errors (`-` for stdin).
pub fn parse(text: &str, file: &str) -> Result<Scenario, ScenarioError> {
    let raw: RawScenario = serde_yaml_ng::from_str(text).map_err(|e| yaml_error(&e, text, file))?;
    Builder { text, file }.build(raw)
}

/// The built-in demo `simulate` runs without a file: a small two-zone cluster that loses a node
/// and gets it back.
pub const DEMO: &str = include_str!("demo.yaml");

// ---------------------------------------------------------------------------------------------
// Raw (as written) types. Values are checked while they are deserialized, so that serde_yaml_ng
// attaches the line and the field path; cross-entry checks run afterwards (see `Builder`).
// ---------------------------------------------------------------------------------------------

/// Top-level keys; a serde path must start with one of them.
const TOP_LEVEL_FIELDS: &[&str] = &[
    "description",
    "duration",
    "controller",
    "kubelet",
    "admission",
    "nodes",
    "pods",
    "pdbs",
    "events",
];

/// Marks a sub-field in an error raised after a whole mapping was read: `<SUB>field<SUB>message`.
const SUB: char = '\u{1f}';

/// Most names one `{i..j}` pattern may expand to.
const MAX_EXPANSION: u64 = 100_000;

const ACTIONS: &str = "stop-heartbeat, resume-heartbeat, set-condition, add-taint, remove-taint, \
                       delete-node, add-nodes, add-pods, delete-pods, set-tolerations, \
                       restart-controller, api-outage, api-hang, api-restart, stall-watch";

fn default_namespace() -> String {
    "default".to_string()
}

fn yes() -> bool {
    true
}

/// A problem found after a whole mapping was read: the sub-field (relative path) and the message.
struct Problem {
    field: String,
    message: String,
}

impl Problem {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A mapping that is read as `T` and then checked (and converted) by [`Validate::validate`];
/// a failed check is reported at the mapping's line with the sub-field's path.
trait Validate: DeserializeOwned {
    type Output;
    const EXPECTING: &'static str;
    fn validate(self) -> Result<Self::Output, Problem>;
}

struct Checked<T: Validate>(T::Output);

impl<T: Validate> fmt::Debug for Checked<T> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("Checked(..)")
    }
}

impl<'de, T: Validate> Deserialize<'de> for Checked<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CheckedVisitor<T>(PhantomData<T>);
        impl<'de, T: Validate> Visitor<'de> for CheckedVisitor<T> {
            type Value = Checked<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(T::EXPECTING)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let raw = T::deserialize(de::value::MapAccessDeserializer::new(map))?;
                raw.validate()
                    .map(Checked)
                    .map_err(|p| de::Error::custom(format!("{SUB}{}{SUB}{}", p.field, p.message)))
            }
        }
        deserializer.deserialize_map(CheckedVisitor::<T>(PhantomData))
    }
}

/// A duration that is never negative, with the text it was written as.
#[derive(Clone, Debug)]
struct Dur {
    value: Duration,
    text: String,
}

/// A duration that must be longer than zero.
#[derive(Clone, Debug)]
struct PositiveDur(Dur);

struct DurVisitor {
    positive: bool,
}

impl<'de> Visitor<'de> for DurVisitor {
    type Value = Dur;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.positive {
            f.write_str("a duration longer than 0s, such as 30s, 5m or 1m30s")
        } else {
            f.write_str("a duration such as 30s, 5m or 1m30s")
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Dur, E> {
        let text = v.trim();
        if text.starts_with('-') {
            return Err(E::custom(format!(
                "negative duration `{text}` is not allowed here; expected 0s or more, e.g. 30s"
            )));
        }
        let value = humantime::parse_duration(text).map_err(|e| {
            E::custom(format!(
                "`{text}` is not a duration ({e}); expected e.g. 30s, 5m or 1m30s"
            ))
        })?;
        if self.positive && value.is_zero() {
            return Err(E::custom(format!("`{text}` must be longer than 0s")));
        }
        Ok(Dur {
            value,
            text: text.to_string(),
        })
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dur, E> {
        if v == 0 {
            self.visit_str("0s")
        } else {
            Err(E::custom(format!(
                "a duration needs a unit: write `{v}s` for {v} seconds"
            )))
        }
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dur, E> {
        if v < 0 {
            Err(E::custom(format!(
                "negative duration `{v}` is not allowed here; expected 0s or more, e.g. 30s"
            )))
        } else {
            self.visit_u64(v.unsigned_abs())
        }
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DurVisitor { positive: false })
    }
}

impl<'de> Deserialize<'de> for PositiveDur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DurVisitor { positive: true })
            .map(PositiveDur)
    }
}

/// A time relative to the start: a duration, `-` meaning before the start.
#[derive(Clone, Debug)]
struct RelTime {
    value: SignedDuration,
    text: String,
}

impl<'de> Deserialize<'de> for RelTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RelVisitor;
        impl<'de> Visitor<'de> for RelVisitor {
            type Value = RelTime;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a time relative to the start, such as -1h, -5m or 30s")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RelTime, E> {
                let text = v.trim();
                let (negative, rest) = match text.strip_prefix('-') {
                    Some(rest) => (true, rest),
                    None => (false, text.strip_prefix('+').unwrap_or(text)),
                };
                let bad = |e: &dyn fmt::Display| {
                    E::custom(format!(
                        "`{text}` is not a relative time ({e}); expected e.g. -1h, -5m or 30s"
                    ))
                };
                let d = humantime::parse_duration(rest.trim()).map_err(|e| bad(&e))?;
                let d = SignedDuration::try_from(d).map_err(|e| bad(&e))?;
                Ok(RelTime {
                    value: if negative { -d } else { d },
                    text: text.to_string(),
                })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RelTime, E> {
                if v == 0 {
                    self.visit_str("0s")
                } else {
                    Err(E::custom(format!(
                        "a duration needs a unit: write `{v}s` for {v} seconds"
                    )))
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RelTime, E> {
                if v == 0 {
                    self.visit_str("0s")
                } else {
                    Err(E::custom(format!(
                        "a duration needs a unit: write `{v}s` for {v} seconds"
                    )))
                }
            }
        }
        d.deserialize_any(RelVisitor)
    }
}

/// A scalar kept as text: strings as they are, numbers and booleans as written by Rust
/// (`0.1`, `50`, `true`).
#[derive(Clone, Debug)]
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        d.deserialize_any(TextVisitor)
    }
}

fn texts(map: BTreeMap<String, Text>) -> BTreeMap<String, String> {
    map.into_iter().map(|(k, v)| (k, v.0)).collect()
}

/// A name or a `{i..j}` pattern, expanded.
#[derive(Clone, Debug)]
struct Pattern(Vec<String>);

struct PatternVisitor;

impl<'de> Visitor<'de> for PatternVisitor {
    type Value = Pattern;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a name or a pattern such as a-{0..9}")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Pattern, E> {
        expand(v).map(Pattern).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(PatternVisitor)
    }
}

/// Expands every `{i..j}` (inclusive, i <= j, no padding) in `pattern`; several ranges give every
/// combination, the first range varying slowest.
fn expand(pattern: &str) -> Result<Vec<String>, String> {
    enum Part {
        Literal(String),
        Range(u64, u64),
    }
    let bad = |why: &str| {
        format!(
            "bad pattern `{pattern}`: {why}; expected a name, or `{{i..j}}` ranges with i <= j as in a-{{0..9}}"
        )
    };
    if pattern.trim().is_empty() {
        return Err("a name must not be empty".to_string());
    }
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut rest = pattern;
    while let Some(c) = rest.chars().next() {
        match c {
            '{' => {
                let close = rest
                    .find('}')
                    .ok_or_else(|| bad("a `{` has no closing `}`"))?;
                let inner = &rest[1..close];
                let number = |s: &str| -> Option<u64> {
                    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                        s.parse().ok()
                    } else {
                        None
                    }
                };
                let (first, last) = inner
                    .split_once("..")
                    .and_then(|(a, b)| Some((number(a)?, number(b)?)))
                    .ok_or_else(|| bad(&format!("`{{{inner}}}` is not a range of numbers")))?;
                if first > last {
                    return Err(bad(&format!(
                        "in `{{{inner}}}` the first number is greater than the last"
                    )));
                }
                parts.push(Part::Literal(std::mem::take(&mut literal)));
                parts.push(Part::Range(first, last));
                rest = &rest[close + 1..];
            }
            '}' => return Err(bad("a `}` has no opening `{`")),
            _ => {
                literal.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    parts.push(Part::Literal(literal));

    let mut total: u64 = 1;
    for part in &parts {
        if let Part::Range(first, last) = part {
            total = (last - first)
                .checked_add(1)
                .and_then(|n| total.checked_mul(n))
                .filter(|&n| n <= MAX_EXPANSION)
                .ok_or_else(|| bad(&format!("it expands to more than {MAX_EXPANSION} names")))?;
        }
    }
    let mut names = vec![String::new()];
    for part in parts {
        match part {
            Part::Literal(text) => names.iter_mut().for_each(|n| n.push_str(&text)),
            Part::Range(first, last) => {
                names = names
                    .iter()
                    .flat_map(|prefix| (first..=last).map(move |i| format!("{prefix}{i}")))
                    .collect();
            }
        }
    }
    Ok(names)
}

/// A condition status: `"True"`, `"False"`, `"Unknown"` (booleans accepted); with `allow_none`,
/// also `none`/null for "no condition".
struct StatusVisitor {
    allow_none: bool,
}

impl<'de> Visitor<'de> for StatusVisitor {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.allow_none {
            f.write_str(r#""True", "False", "Unknown" or none"#)
        } else {
            f.write_str(r#""True", "False" or "Unknown""#)
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        match v {
            "True" | "true" => Ok(Some("True".to_string())),
            "False" | "false" => Ok(Some("False".to_string())),
            "Unknown" | "unknown" => Ok(Some("Unknown".to_string())),
            "none" | "None" if self.allow_none => Ok(None),
            _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
        }
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        self.visit_str(if v { "True" } else { "False" })
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        if self.allow_none {
            Ok(None)
        } else {
            Err(E::invalid_type(de::Unexpected::Unit, &self))
        }
    }
}

/// A node's initial Ready status (`None`: no Ready condition).
#[derive(Clone, Debug)]
struct ReadyStatus(Option<String>);

impl Default for ReadyStatus {
    fn default() -> Self {
        ReadyStatus(Some("True".to_string()))
    }
}

impl<'de> Deserialize<'de> for ReadyStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StatusVisitor { allow_none: true })
            .map(ReadyStatus)
    }
}

/// set-condition's status.
#[derive(Clone, Debug)]
struct ConditionStatus(String);

impl<'de> Deserialize<'de> for ConditionStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StatusVisitor { allow_none: false })?
            .map(ConditionStatus)
            .ok_or_else(|| de::Error::custom(r#"expected "True", "False" or "Unknown""#))
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawHeartbeat {
    #[default]
    Lease,
    Status,
    None,
}

#[derive(Clone, Copy, Debug, Deserialize)]
enum Effect {
    NoSchedule,
    PreferNoSchedule,
    NoExecute,
}

impl Effect {
    fn as_str(self) -> &'static str {
        match self {
            Effect::NoSchedule => "NoSchedule",
            Effect::PreferNoSchedule => "PreferNoSchedule",
            Effect::NoExecute => "NoExecute",
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize)]
enum Operator {
    Exists,
    Equal,
    /// Numeric comparisons (KEP-5471): the taint's value, an integer, less or greater.
    Lt,
    Gt,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawWatchResource {
    Leases,
    Nodes,
    Pods,
}

/// `default-toleration-seconds`: a number of seconds, or null (disabled).
#[derive(Clone, Copy, Debug)]
struct OptSeconds(Option<i64>);

impl<'de> Deserialize<'de> for OptSeconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SecondsVisitor;
        impl<'de> Visitor<'de> for SecondsVisitor {
            type Value = OptSeconds;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a whole number of seconds (0 or more), or null to disable")
            }
            fn visit_unit<E: de::Error>(self) -> Result<OptSeconds, E> {
                Ok(OptSeconds(None))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<OptSeconds, E> {
                i64::try_from(v)
                    .map(|v| OptSeconds(Some(v)))
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<OptSeconds, E> {
                if v < 0 {
                    Err(E::invalid_value(de::Unexpected::Signed(v), &self))
                } else {
                    Ok(OptSeconds(Some(v)))
                }
            }
        }
        d.deserialize_any(SecondsVisitor)
    }
}

/// `maxUnavailable` / `minAvailable`.
#[derive(Clone, Debug)]
struct RawIntOrPercent(IntOrPercent);

impl<'de> Deserialize<'de> for RawIntOrPercent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct IopVisitor;
        impl<'de> Visitor<'de> for IopVisitor {
            type Value = RawIntOrPercent;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a whole number (0 or more) or a percentage such as \"50%\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawIntOrPercent, E> {
                i32::try_from(v)
                    .map(|v| RawIntOrPercent(IntOrPercent::Int(v)))
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawIntOrPercent, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawIntOrPercent, E> {
                v.trim()
                    .strip_suffix('%')
                    .and_then(|n| n.trim().parse::<u32>().ok())
                    .filter(|&n| n <= 100)
                    .map(|n| RawIntOrPercent(IntOrPercent::Percent(n)))
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(IopVisitor)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawScenario {
    description: Option<String>,
    duration: PositiveDur,
    #[serde(default)]
    controller: ControllerBlock,
    #[serde(default)]
    kubelet: RawKubelet,
    #[serde(default)]
    admission: RawAdmission,
    #[serde(default)]
    nodes: Vec<RawNode>,
    #[serde(default)]
    pods: Vec<RawPod>,
    #[serde(default)]
    pdbs: Vec<Checked<RawPdb>>,
    #[serde(default)]
    events: Vec<Checked<RawEvent>>,
}

/// `controller:` entries in file order.
#[derive(Debug, Default)]
struct ControllerBlock(Vec<(String, String)>);

impl<'de> Deserialize<'de> for ControllerBlock {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct BlockVisitor;
        impl<'de> Visitor<'de> for BlockVisitor {
            type Value = ControllerBlock;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of controller flag names (without --) to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ControllerBlock, A::Error> {
                let mut entries = Vec::new();
                while let Some((name, value)) = map.next_entry::<String, Text>()? {
                    entries.push((name, value.0));
                }
                Ok(ControllerBlock(entries))
            }
        }
        d.deserialize_map(BlockVisitor)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawKubelet {
    lease_renew_interval: Option<PositiveDur>,
    status_update_frequency: Option<PositiveDur>,
    status_report_frequency: Option<PositiveDur>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawAdmission {
    #[serde(default = "RawAdmission::default_seconds")]
    default_toleration_seconds: OptSeconds,
}

impl RawAdmission {
    fn default_seconds() -> OptSeconds {
        OptSeconds(Some(300))
    }
}

impl Default for RawAdmission {
    fn default() -> Self {
        RawAdmission {
            default_toleration_seconds: RawAdmission::default_seconds(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawNode {
    name: Pattern,
    zone: Option<String>,
    region: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, Text>,
    #[serde(default)]
    ready: ReadyStatus,
    #[serde(default)]
    heartbeat: RawHeartbeat,
    created: Option<RelTime>,
    #[serde(default)]
    taints: Vec<Checked<RawTaint>>,
    #[serde(default)]
    unschedulable: bool,
}

impl RawNode {
    /// One spec per expanded name; `created` defaults to `default_created`.
    fn expand(&self, default_created: SignedDuration) -> Vec<NodeSpec> {
        self.name
            .0
            .iter()
            .map(|name| NodeSpec {
                name: name.clone(),
                zone: self.zone.clone(),
                region: self.region.clone(),
                labels: texts(self.labels.clone()),
                ready: self.ready.0.clone(),
                heartbeat: match self.heartbeat {
                    RawHeartbeat::Lease => Heartbeat::Lease,
                    RawHeartbeat::Status => Heartbeat::Status,
                    RawHeartbeat::None => Heartbeat::None,
                },
                created: self.created.as_ref().map_or(default_created, |c| c.value),
                taints: self.taints.iter().map(|t| t.0.spec.clone()).collect(),
                unschedulable: self.unschedulable,
            })
            .collect()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawTaint {
    key: String,
    value: Option<Text>,
    effect: Effect,
    time_added: Option<RelTime>,
}

/// A checked taint and how its `timeAdded` was written.
struct ParsedTaint {
    spec: TaintSpec,
    time_added_text: Option<String>,
}

impl Validate for RawTaint {
    type Output = ParsedTaint;
    const EXPECTING: &'static str =
        "a taint: {key: ..., effect: NoSchedule|PreferNoSchedule|NoExecute}";
    fn validate(self) -> Result<ParsedTaint, Problem> {
        if self.key.trim().is_empty() {
            return Err(Problem::new("key", "a taint's key must not be empty"));
        }
        Ok(ParsedTaint {
            spec: TaintSpec {
                key: self.key,
                value: self.value.map(|v| v.0),
                effect: self.effect.as_str().to_string(),
                time_added: self.time_added.as_ref().map(|t| t.value),
            },
            time_added_text: self.time_added.map(|t| t.text),
        })
    }
}

/// The taint as the timeline shows it: the fields as written.
fn taint_json(taint: &TaintSpec, time_added: Option<&str>) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    map.insert("key".into(), taint.key.clone().into());
    if let Some(value) = &taint.value {
        map.insert("value".into(), value.clone().into());
    }
    map.insert("effect".into(), taint.effect.clone().into());
    if let Some(text) = time_added {
        map.insert("timeAdded".into(), text.into());
    }
    serde_json::Value::Object(map)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawToleration {
    key: Option<String>,
    operator: Option<Operator>,
    value: Option<Text>,
    effect: Option<Effect>,
    toleration_seconds: Option<i64>,
}

impl Validate for RawToleration {
    type Output = Toleration;
    const EXPECTING: &'static str =
        "a toleration: {key, operator: Exists|Equal|Lt|Gt, value, effect, tolerationSeconds}";
    fn validate(self) -> Result<Toleration, Problem> {
        let key = self.key.filter(|k| !k.is_empty());
        let exists = matches!(self.operator, Some(Operator::Exists));
        if key.is_none() && !exists {
            return Err(Problem::new(
                "operator",
                "a toleration without a key must have operator Exists",
            ));
        }
        if exists && self.value.as_ref().is_some_and(|v| !v.0.is_empty()) {
            return Err(Problem::new(
                "value",
                "a toleration with operator Exists must not have a value",
            ));
        }
        if self.toleration_seconds.is_some() && !matches!(self.effect, Some(Effect::NoExecute)) {
            return Err(Problem::new(
                "tolerationSeconds",
                "tolerationSeconds is only allowed with effect NoExecute",
            ));
        }
        Ok(Toleration {
            key,
            operator: self.operator.map(|o| {
                match o {
                    Operator::Exists => "Exists",
                    Operator::Equal => "Equal",
                    Operator::Lt => "Lt",
                    Operator::Gt => "Gt",
                }
                .to_string()
            }),
            value: self.value.map(|v| v.0),
            effect: self.effect.map(|e| e.as_str().to_string()),
            toleration_seconds: self.toleration_seconds,
        })
    }
}

/// A pod's owner, `Kind/name`.
#[derive(Clone, Debug)]
struct Owner(String);

impl<'de> Deserialize<'de> for Owner {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.split_once('/') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok(Owner(text))
            }
            _ => Err(de::Error::custom(format!(
                "`{text}` is not an owner; expected Kind/name, e.g. ReplicaSet/web-5d8f"
            ))),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPod {
    name: Pattern,
    #[serde(default = "default_namespace")]
    namespace: String,
    node: Pattern,
    #[serde(default)]
    tolerations: Vec<Checked<RawToleration>>,
    #[serde(default)]
    daemonset: bool,
    owner: Option<Owner>,
    bound: Option<RelTime>,
    #[serde(default)]
    labels: BTreeMap<String, Text>,
    #[serde(default = "yes")]
    ready: bool,
}

impl RawPod {
    /// One spec per expanded name; pod k goes to node k mod n of the node pattern.
    fn expand(&self) -> Vec<PodSpec> {
        self.name
            .0
            .iter()
            .zip(self.node.0.iter().cycle())
            .map(|(name, node)| PodSpec {
                name: name.clone(),
                namespace: self.namespace.clone(),
                node: node.clone(),
                tolerations: self.tolerations.iter().map(|t| t.0.clone()).collect(),
                daemonset: self.daemonset,
                owner: self.owner.as_ref().map(|o| o.0.clone()),
                bound: self.bound.as_ref().map(|b| b.value),
                labels: texts(self.labels.clone()),
                ready: self.ready,
            })
            .collect()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPdb {
    name: String,
    #[serde(default = "default_namespace")]
    namespace: String,
    #[serde(default)]
    selector: BTreeMap<String, Text>,
    #[serde(rename = "maxUnavailable")]
    max_unavailable: Option<RawIntOrPercent>,
    #[serde(rename = "minAvailable")]
    min_available: Option<RawIntOrPercent>,
}

impl Validate for RawPdb {
    type Output = PdbSpec;
    const EXPECTING: &'static str =
        "a PodDisruptionBudget: {name, selector, maxUnavailable or minAvailable}";
    fn validate(self) -> Result<PdbSpec, Problem> {
        if self.name.trim().is_empty() {
            return Err(Problem::new("name", "must not be empty"));
        }
        if self.max_unavailable.is_some() && self.min_available.is_some() {
            return Err(Problem::new(
                "minAvailable",
                "give either maxUnavailable or minAvailable, not both",
            ));
        }
        if self.max_unavailable.is_none() && self.min_available.is_none() {
            return Err(Problem::new(
                "maxUnavailable",
                "missing: give maxUnavailable or minAvailable",
            ));
        }
        Ok(PdbSpec {
            name: self.name,
            namespace: self.namespace,
            selector: texts(self.selector),
            max_unavailable: self.max_unavailable.map(|v| v.0),
            min_available: self.min_available.map(|v| v.0),
        })
    }
}

/// An entry of an event's `nodes:`: a name (pattern) or, for add-nodes, a node object.
#[derive(Debug)]
enum NodeRef {
    Names(Pattern),
    Node(Box<RawNode>),
}

impl<'de> Deserialize<'de> for NodeRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RefVisitor;
        impl<'de> Visitor<'de> for RefVisitor {
            type Value = NodeRef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a node name (or pattern), or for add-nodes a node object")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<NodeRef, E> {
                PatternVisitor.visit_str(v).map(NodeRef::Names)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<NodeRef, A::Error> {
                RawNode::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|n| NodeRef::Node(Box::new(n)))
            }
        }
        d.deserialize_any(RefVisitor)
    }
}

/// An entry of an event's `pods:`: a `namespace/name` key (pattern) or, for add-pods, a pod.
#[derive(Debug)]
enum PodRef {
    Keys(Pattern),
    Pod(Box<RawPod>),
}

impl<'de> Deserialize<'de> for PodRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RefVisitor;
        impl<'de> Visitor<'de> for RefVisitor {
            type Value = PodRef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a pod key namespace/name (or pattern), or for add-pods a pod object")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PodRef, E> {
                PatternVisitor.visit_str(v).map(PodRef::Keys)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<PodRef, A::Error> {
                RawPod::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|p| PodRef::Pod(Box::new(p)))
            }
        }
        d.deserialize_any(RefVisitor)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    at: Dur,
    action: String,
    nodes: Option<Vec<NodeRef>>,
    pods: Option<Vec<PodRef>>,
    #[serde(rename = "type")]
    condition_type: Option<String>,
    status: Option<ConditionStatus>,
    taint: Option<Checked<RawTaint>>,
    tolerations: Option<Vec<Checked<RawToleration>>>,
    duration: Option<PositiveDur>,
    resource: Option<RawWatchResource>,
}

/// An event after its own checks; names are expanded, cross-entry checks are still to come.
struct ParsedEvent {
    at: Duration,
    action: EventAction,
    timeline_fields: serde_json::Map<String, serde_json::Value>,
    /// For add-nodes / add-pods: how many specs each written entry expanded to.
    item_sizes: Vec<usize>,
}

fn need<T>(value: Option<T>, field: &str, action: &str) -> Result<T, Problem> {
    value.ok_or_else(|| Problem::new(field, format!("missing: action {action} needs `{field}`")))
}

fn json_strings(names: &[String]) -> serde_json::Value {
    serde_json::Value::Array(names.iter().map(|n| n.clone().into()).collect())
}

/// Expanded node names of a non-add-nodes event.
fn node_names(refs: Vec<NodeRef>, action: &str) -> Result<Vec<String>, Problem> {
    if refs.is_empty() {
        return Err(Problem::new("nodes", "must list at least one node"));
    }
    let mut names = Vec::new();
    for (j, r) in refs.into_iter().enumerate() {
        match r {
            NodeRef::Names(p) => names.extend(p.0),
            NodeRef::Node(_) => {
                return Err(Problem::new(
                    format!("nodes[{j}]"),
                    format!(
                        "expected a node name: action {action} takes names (only add-nodes takes node objects)"
                    ),
                ));
            }
        }
    }
    Ok(names)
}

/// Expanded `namespace/name` keys (a key without `/` is in namespace default).
fn pod_keys(refs: Vec<PodRef>, action: &str) -> Result<Vec<String>, Problem> {
    if refs.is_empty() {
        return Err(Problem::new("pods", "must list at least one pod"));
    }
    let mut keys = Vec::new();
    for (j, r) in refs.into_iter().enumerate() {
        match r {
            PodRef::Keys(p) => keys.extend(p.0.into_iter().map(|k| {
                if k.contains('/') {
                    k
                } else {
                    format!("default/{k}")
                }
            })),
            PodRef::Pod(_) => {
                return Err(Problem::new(
                    format!("pods[{j}]"),
                    format!(
                        "expected a pod key namespace/name: action {action} takes keys (only add-pods takes pod objects)"
                    ),
                ));
            }
        }
    }
    Ok(keys)
}

impl Validate for RawEvent {
    type Output = ParsedEvent;
    const EXPECTING: &'static str = "an event: {at: 30s, action: ..., ...}";
    fn validate(self) -> Result<ParsedEvent, Problem> {
        let RawEvent {
            at,
            action,
            nodes,
            pods,
            condition_type,
            status,
            taint,
            tolerations,
            duration,
            resource,
        } = self;
        let allowed: &[&str] = match action.as_str() {
            "stop-heartbeat" | "resume-heartbeat" | "delete-node" | "add-nodes" => &["nodes"],
            "set-condition" => &["nodes", "type", "status"],
            "add-taint" | "remove-taint" => &["nodes", "taint"],
            "add-pods" | "delete-pods" => &["pods"],
            "set-tolerations" => &["pods", "tolerations"],
            "restart-controller" => &[],
            "api-outage" | "api-hang" | "api-restart" => &["duration"],
            "stall-watch" => &["resource", "duration"],
            other => {
                return Err(Problem::new(
                    "action",
                    format!("unknown action `{other}`; expected one of {ACTIONS}"),
                ));
            }
        };
        let present = [
            ("nodes", nodes.is_some()),
            ("pods", pods.is_some()),
            ("type", condition_type.is_some()),
            ("status", status.is_some()),
            ("taint", taint.is_some()),
            ("tolerations", tolerations.is_some()),
            ("duration", duration.is_some()),
            ("resource", resource.is_some()),
        ];
        for (name, is_present) in present {
            if is_present && !allowed.contains(&name) {
                let takes = if allowed.is_empty() {
                    "no other fields".to_string()
                } else {
                    allowed.join(", ")
                };
                return Err(Problem::new(
                    name,
                    format!("`{name}` does not apply to action {action} (it takes: {takes})"),
                ));
            }
        }

        let mut fields = serde_json::Map::new();
        fields.insert("action".into(), action.clone().into());
        let mut item_sizes = Vec::new();
        let act = action.as_str();
        let event_action = match act {
            "stop-heartbeat" | "resume-heartbeat" | "delete-node" => {
                let nodes = node_names(need(nodes, "nodes", act)?, act)?;
                fields.insert("nodes".into(), json_strings(&nodes));
                match act {
                    "stop-heartbeat" => EventAction::StopHeartbeat { nodes },
                    "resume-heartbeat" => EventAction::ResumeHeartbeat { nodes },
                    _ => EventAction::DeleteNode { nodes },
                }
            }
            "set-condition" => {
                let nodes = node_names(need(nodes, "nodes", act)?, act)?;
                let condition_type = need(condition_type, "type", act)?;
                if condition_type.trim().is_empty() {
                    return Err(Problem::new(
                        "type",
                        "must name a condition type, e.g. Ready",
                    ));
                }
                let status = need(status, "status", act)?.0;
                fields.insert("nodes".into(), json_strings(&nodes));
                fields.insert("conditionType".into(), condition_type.clone().into());
                fields.insert("status".into(), status.clone().into());
                EventAction::SetCondition {
                    nodes,
                    condition_type,
                    status,
                }
            }
            "add-taint" | "remove-taint" => {
                let nodes = node_names(need(nodes, "nodes", act)?, act)?;
                let ParsedTaint {
                    spec: taint,
                    time_added_text,
                } = need(taint, "taint", act)?.0;
                fields.insert("nodes".into(), json_strings(&nodes));
                fields.insert(
                    "taint".into(),
                    taint_json(&taint, time_added_text.as_deref()),
                );
                if act == "add-taint" {
                    EventAction::AddTaint { nodes, taint }
                } else {
                    EventAction::RemoveTaint { nodes, taint }
                }
            }
            "add-nodes" => {
                let refs = need(nodes, "nodes", act)?;
                if refs.is_empty() {
                    return Err(Problem::new("nodes", "must list at least one node"));
                }
                let created = SignedDuration::try_from(at.value).map_err(|e| {
                    Problem::new("at", format!("`{}` is too far in the future: {e}", at.text))
                })?;
                let mut specs = Vec::new();
                for (j, r) in refs.into_iter().enumerate() {
                    match r {
                        NodeRef::Node(raw) => {
                            let expanded = raw.expand(created);
                            item_sizes.push(expanded.len());
                            specs.extend(expanded);
                        }
                        NodeRef::Names(_) => {
                            return Err(Problem::new(
                                format!("nodes[{j}]"),
                                "expected a node object ({name: ..., zone: ...}), as under `nodes:`",
                            ));
                        }
                    }
                }
                let names: Vec<String> = specs.iter().map(|n| n.name.clone()).collect();
                fields.insert("nodes".into(), json_strings(&names));
                EventAction::AddNodes { nodes: specs }
            }
            "add-pods" => {
                let refs = need(pods, "pods", act)?;
                if refs.is_empty() {
                    return Err(Problem::new("pods", "must list at least one pod"));
                }
                let mut specs = Vec::new();
                for (j, r) in refs.into_iter().enumerate() {
                    match r {
                        PodRef::Pod(raw) => {
                            let expanded = raw.expand();
                            item_sizes.push(expanded.len());
                            specs.extend(expanded);
                        }
                        PodRef::Keys(_) => {
                            return Err(Problem::new(
                                format!("pods[{j}]"),
                                "expected a pod object ({name: ..., node: ...}), as under `pods:`",
                            ));
                        }
                    }
                }
                let keys: Vec<String> = specs
                    .iter()
                    .map(|p| format!("{}/{}", p.namespace, p.name))
                    .collect();
                fields.insert("pods".into(), json_strings(&keys));
                EventAction::AddPods { pods: specs }
            }
            "delete-pods" => {
                let pods = pod_keys(need(pods, "pods", act)?, act)?;
                fields.insert("pods".into(), json_strings(&pods));
                EventAction::DeletePods { pods }
            }
            "set-tolerations" => {
                let pods = pod_keys(need(pods, "pods", act)?, act)?;
                let tolerations: Vec<Toleration> = need(tolerations, "tolerations", act)?
                    .into_iter()
                    .map(|t| t.0)
                    .collect();
                fields.insert("pods".into(), json_strings(&pods));
                fields.insert(
                    "tolerations".into(),
                    serde_json::to_value(&tolerations).unwrap_or_default(),
                );
                EventAction::SetTolerations { pods, tolerations }
            }
            "restart-controller" => EventAction::RestartController,
            "api-outage" | "api-hang" | "api-restart" => {
                let duration = need(duration, "duration", act)?.0;
                fields.insert("duration".into(), duration.text.into());
                let duration = duration.value;
                match act {
                    "api-outage" => EventAction::ApiOutage { duration },
                    "api-hang" => EventAction::ApiHang { duration },
                    _ => EventAction::ApiRestart { duration },
                }
            }
            _ => {
                // stall-watch (the only action left after the check above).
                let resource = need(resource, "resource", act)?;
                let duration = need(duration, "duration", act)?.0;
                let (resource, name) = match resource {
                    RawWatchResource::Leases => (WatchResource::Leases, "leases"),
                    RawWatchResource::Nodes => (WatchResource::Nodes, "nodes"),
                    RawWatchResource::Pods => (WatchResource::Pods, "pods"),
                };
                fields.insert("resource".into(), name.into());
                fields.insert("duration".into(), duration.text.into());
                EventAction::StallWatch {
                    resource,
                    duration: duration.value,
                }
            }
        };
        Ok(ParsedEvent {
            at: at.value,
            action: event_action,
            timeline_fields: fields,
            item_sizes,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Errors: serde_yaml_ng's, and a best-effort line locator for checks made after reading.
// ---------------------------------------------------------------------------------------------

/// One step of a field path.
#[derive(Clone, Debug, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn key(name: &str) -> Seg {
    Seg::Key(name.to_string())
}

fn path_string(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Splits `events[2].nodes[0].name` into steps (best effort: keys containing dots split).
fn segments(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (name, mut rest) = part.find('[').map_or((part, ""), |i| part.split_at(i));
        if !name.is_empty() {
            out.push(key(name));
        }
        while let Some(r) = rest.strip_prefix('[') {
            let Some((n, after)) = r.split_once(']') else {
                break;
            };
            let Ok(i) = n.parse() else { break };
            out.push(Seg::Index(i));
            rest = after;
        }
    }
    out
}

/// Whether `head` (text before the first `": "` of a serde_yaml_ng message) is a field path.
fn is_field_path(head: &str) -> bool {
    let first = head.split(['.', '[']).next().unwrap_or_default();
    TOP_LEVEL_FIELDS.contains(&first)
}

fn join_path(base: &str, sub: &str) -> String {
    match (base.is_empty(), sub.starts_with('[')) {
        (true, _) => sub.to_string(),
        (false, true) => format!("{base}{sub}"),
        (false, false) => format!("{base}.{sub}"),
    }
}

fn yaml_error(err: &serde_yaml_ng::Error, text: &str, file: &str) -> ScenarioError {
    let location = err.location();
    let mut line = location.as_ref().map_or(0, |l| l.line());
    let mut message = err.to_string();
    if let Some(loc) = &location {
        let suffix = format!(" at line {} column {}", loc.line(), loc.column());
        if let Some(stripped) = message.strip_suffix(&suffix) {
            message = stripped.to_string();
        }
    }
    let mut field = String::new();
    if let Some((head, rest)) = message.split_once(": ")
        && is_field_path(head)
    {
        field = head.to_string();
        message = rest.to_string();
    }
    // A sub-field named by a check made after its mapping was read, or by serde's messages about
    // unknown and missing fields (which serde_yaml_ng places at the mapping): point at it.
    let mut sub = None;
    if let Some(rest) = message.strip_prefix(SUB)
        && let Some((name, msg)) = rest.split_once(SUB)
    {
        sub = Some(name.to_string());
        message = msg.to_string();
    } else if let Some(rest) = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("duplicate field `"))
        && let Some((name, _)) = rest.split_once('`')
    {
        sub = Some(name.to_string());
    } else if let Some(rest) = message.strip_prefix("missing field `")
        && let Some((name, _)) = rest.split_once('`')
    {
        field = join_path(&field, name);
    }
    if let Some(sub) = sub {
        field = join_path(&field, &sub);
        let found = locate(text, &segments(&field));
        if found > line {
            line = found;
        }
    }
    if field.is_empty() {
        field = "<document>".to_string();
    }
    ScenarioError {
        file: file.to_string(),
        line,
        field,
        message,
    }
}

/// A line of YAML as the locator sees it.
struct YamlLine<'a> {
    /// Leading spaces.
    indent: usize,
    /// Column of the content after any `- ` sequence markers.
    content_col: usize,
    /// Starts with a `- ` sequence marker.
    dash: bool,
    /// Content after the markers.
    body: &'a str,
    /// Blank or comment.
    blank: bool,
}

fn classify(line: &str) -> YamlLine<'_> {
    let rest = line.trim_start_matches(' ');
    let indent = line.len() - rest.len();
    let mut body = rest;
    let mut content_col = indent;
    let mut dash = false;
    loop {
        if body == "-" {
            dash = true;
            body = "";
            break;
        }
        let Some(after) = body.strip_prefix("- ") else {
            break;
        };
        dash = true;
        let trimmed = after.trim_start_matches(' ');
        content_col += body.len() - trimmed.len();
        body = trimmed;
    }
    YamlLine {
        indent,
        content_col,
        dash,
        body,
        blank: rest.is_empty() || rest.starts_with('#') || (indent == 0 && rest.starts_with("---")),
    }
}

fn key_matches(body: &str, name: &str) -> bool {
    [name.to_string(), format!("\"{name}\""), format!("'{name}'")]
        .iter()
        .any(|k| {
            body.strip_prefix(k.as_str())
                .and_then(|r| r.trim_start_matches(' ').strip_prefix(':'))
                .is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t']))
        })
}

/// Best-effort 1-based line of the field at `path` in block-style YAML: the deepest step found
/// (0 when not even the first is found). Flow-style parts resolve to the line they start on.
fn locate(text: &str, path: &[Seg]) -> usize {
    let lines: Vec<YamlLine> = text.lines().map(classify).collect();
    let (mut start, mut end) = (0, lines.len());
    let mut found = 0;
    for seg in path {
        match seg {
            Seg::Key(name) => {
                let Some(level) = lines[start..end]
                    .iter()
                    .find(|l| !l.blank)
                    .map(|l| l.content_col)
                else {
                    return found;
                };
                let Some(i) = (start..end).find(|&i| {
                    let l = &lines[i];
                    !l.blank && l.content_col == level && key_matches(l.body, name)
                }) else {
                    return found;
                };
                found = i + 1;
                let col = lines[i].content_col;
                let mut j = i + 1;
                while j < end {
                    let l = &lines[j];
                    if l.blank || l.indent > col || (l.indent == col && l.dash) {
                        j += 1;
                    } else {
                        break;
                    }
                }
                (start, end) = (i + 1, j);
            }
            Seg::Index(n) => {
                let Some(first) = (start..end).find(|&i| !lines[i].blank) else {
                    return found;
                };
                if !lines[first].dash {
                    return found;
                }
                let item_indent = lines[first].indent;
                let items: Vec<usize> = (start..end)
                    .filter(|&i| !lines[i].blank && lines[i].dash && lines[i].indent == item_indent)
                    .collect();
                let Some(&i) = items.get(*n) else {
                    return found;
                };
                found = i + 1;
                let next = items.get(n + 1).copied().unwrap_or(end);
                (start, end) = (i, next);
            }
        }
    }
    found
}

// ---------------------------------------------------------------------------------------------
// Building the scenario: cross-entry checks.
// ---------------------------------------------------------------------------------------------

struct Builder<'a> {
    text: &'a str,
    file: &'a str,
}

impl Builder<'_> {
    fn error(&self, path: &[Seg], message: impl Into<String>) -> ScenarioError {
        ScenarioError {
            file: self.file.to_string(),
            line: locate(self.text, path),
            field: path_string(path),
            message: message.into(),
        }
    }

    fn build(&self, raw: RawScenario) -> Result<Scenario, ScenarioError> {
        let RawScenario {
            description,
            duration,
            controller,
            kubelet,
            admission,
            nodes: raw_nodes,
            pods: raw_pods,
            pdbs,
            events: raw_events,
        } = raw;

        for (name, value) in &controller.0 {
            crate::config::check_override(name, value)
                .map_err(|e| self.error(&[key("controller"), key(name)], e.to_string()))?;
        }

        let defaults = KubeletConfig::default();
        let pick = |d: Option<PositiveDur>, default: Duration| d.map_or(default, |d| d.0.value);
        let kubelet = KubeletConfig {
            lease_renew_interval: pick(kubelet.lease_renew_interval, defaults.lease_renew_interval),
            status_update_frequency: pick(
                kubelet.status_update_frequency,
                defaults.status_update_frequency,
            ),
            status_report_frequency: pick(
                kubelet.status_report_frequency,
                defaults.status_report_frequency,
            ),
        };

        // Nodes, each with the index of the entry it came from.
        let mut nodes = Vec::new();
        let mut first_entry: BTreeMap<String, usize> = BTreeMap::new();
        for (i, raw) in raw_nodes.iter().enumerate() {
            for spec in raw.expand(SignedDuration::from_hours(-1)) {
                if let Some(&k) = first_entry.get(&spec.name) {
                    return Err(self.error(
                        &[key("nodes"), Seg::Index(i), key("name")],
                        format!(
                            "duplicate node name `{}` (already in nodes[{k}])",
                            spec.name
                        ),
                    ));
                }
                first_entry.insert(spec.name.clone(), i);
                nodes.push(spec);
            }
        }

        let mut pods = Vec::new();
        let mut pod_entries = Vec::new();
        let mut first_pod: BTreeMap<String, usize> = BTreeMap::new();
        for (i, raw) in raw_pods.iter().enumerate() {
            for spec in raw.expand() {
                let pod_key = format!("{}/{}", spec.namespace, spec.name);
                if let Some(&k) = first_pod.get(&pod_key) {
                    return Err(self.error(
                        &[key("pods"), Seg::Index(i), key("name")],
                        format!("duplicate pod `{pod_key}` (already in pods[{k}])"),
                    ));
                }
                first_pod.insert(pod_key, i);
                pod_entries.push(i);
                pods.push(spec);
            }
        }

        let events: Vec<ParsedEvent> = raw_events.into_iter().map(|e| e.0).collect();

        // Every node that ever exists, and every pod.
        let mut all_nodes: BTreeSet<String> = nodes.iter().map(|n| n.name.clone()).collect();
        let mut all_pods: BTreeSet<String> = first_pod.keys().cloned().collect();
        for event in &events {
            match &event.action {
                EventAction::AddNodes { nodes } => {
                    all_nodes.extend(nodes.iter().map(|n| n.name.clone()));
                }
                EventAction::AddPods { pods } => {
                    all_pods.extend(pods.iter().map(|p| format!("{}/{}", p.namespace, p.name)));
                }
                _ => {}
            }
        }

        let unknown_node = |pod: &PodSpec| {
            format!(
                "pod {}/{} is on node `{}`, which is neither under `nodes:` nor added by an \
                 add-nodes event",
                pod.namespace, pod.name, pod.node
            )
        };
        for (pod, &i) in pods.iter().zip(&pod_entries) {
            if !all_nodes.contains(&pod.node) {
                return Err(self.error(
                    &[key("pods"), Seg::Index(i), key("node")],
                    unknown_node(pod),
                ));
            }
        }

        // Per event, in file order: references; then node lifetimes in time order.
        for (e, event) in events.iter().enumerate() {
            let at = [key("events"), Seg::Index(e)];
            let with = |tail: &[Seg]| [at.as_slice(), tail].concat();
            // An event the run never reaches is a mistake in the file, not a no-op.
            if event.at > duration.0.value {
                return Err(self.error(
                    &with(&[key("at")]),
                    format!(
                        "at {} is after the scenario's duration ({}): it would never happen; \
                         lengthen `duration` or move the event",
                        humantime::format_duration(event.at),
                        duration.0.text
                    ),
                ));
            }
            let entry_of = |j: usize| {
                let mut total = 0;
                event
                    .item_sizes
                    .iter()
                    .position(|&n| {
                        total += n;
                        j < total
                    })
                    .unwrap_or(0)
            };
            match &event.action {
                EventAction::StopHeartbeat { nodes }
                | EventAction::ResumeHeartbeat { nodes }
                | EventAction::SetCondition { nodes, .. }
                | EventAction::AddTaint { nodes, .. }
                | EventAction::RemoveTaint { nodes, .. }
                | EventAction::DeleteNode { nodes } => {
                    if let Some(name) = nodes.iter().find(|n| !all_nodes.contains(*n)) {
                        return Err(self.error(
                            &with(&[key("nodes")]),
                            format!(
                                "unknown node `{name}`: not under `nodes:` nor added by add-nodes"
                            ),
                        ));
                    }
                }
                EventAction::DeletePods { pods } | EventAction::SetTolerations { pods, .. } => {
                    if let Some(name) = pods.iter().find(|p| !all_pods.contains(*p)) {
                        return Err(self.error(
                            &with(&[key("pods")]),
                            format!(
                                "unknown pod `{name}`: not under `pods:` nor added by add-pods"
                            ),
                        ));
                    }
                }
                EventAction::AddPods { pods } => {
                    let mut seen = BTreeSet::new();
                    for (j, pod) in pods.iter().enumerate() {
                        let entry = [key("pods"), Seg::Index(entry_of(j))];
                        if !all_nodes.contains(&pod.node) {
                            return Err(self.error(
                                &with(&[entry.as_slice(), &[key("node")]].concat()),
                                unknown_node(pod),
                            ));
                        }
                        if !seen.insert(format!("{}/{}", pod.namespace, pod.name)) {
                            return Err(self.error(
                                &with(&[entry.as_slice(), &[key("name")]].concat()),
                                format!(
                                    "duplicate pod `{}/{}` in this event",
                                    pod.namespace, pod.name
                                ),
                            ));
                        }
                    }
                }
                EventAction::AddNodes { .. }
                | EventAction::RestartController
                | EventAction::ApiOutage { .. }
                | EventAction::ApiHang { .. }
                | EventAction::ApiRestart { .. }
                | EventAction::StallWatch { .. } => {}
            }
        }

        let mut order: Vec<usize> = (0..events.len()).collect();
        order.sort_by_key(|&e| events[e].at);
        let mut live: BTreeSet<String> = nodes.iter().map(|n| n.name.clone()).collect();
        for &e in &order {
            let event = &events[e];
            match &event.action {
                EventAction::AddNodes { nodes } => {
                    let mut total = 0;
                    let mut entry = 0;
                    for (j, node) in nodes.iter().enumerate() {
                        while entry < event.item_sizes.len() && j >= total + event.item_sizes[entry]
                        {
                            total += event.item_sizes[entry];
                            entry += 1;
                        }
                        if !live.insert(node.name.clone()) {
                            return Err(self.error(
                                &[
                                    key("events"),
                                    Seg::Index(e),
                                    key("nodes"),
                                    Seg::Index(entry),
                                    key("name"),
                                ],
                                format!(
                                    "node `{}` already exists at {}",
                                    node.name,
                                    humantime::format_duration(event.at)
                                ),
                            ));
                        }
                    }
                }
                EventAction::DeleteNode { nodes } => {
                    for name in nodes {
                        live.remove(name);
                    }
                }
                _ => {}
            }
        }

        let mut events: Vec<ScenarioEvent> = events
            .into_iter()
            .map(|e| ScenarioEvent {
                at: e.at,
                action: e.action,
                timeline_fields: e.timeline_fields,
            })
            .collect();
        events.sort_by_key(|e| e.at);

        Ok(Scenario {
            description,
            duration: duration.0.value,
            controller: controller.0,
            kubelet,
            default_toleration_seconds: admission.default_toleration_seconds.0,
            nodes,
            pods,
            pdbs: pdbs.into_iter().map(|p| p.0).collect(),
            events,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The example of docs/simulation.md, as written there.
    const DOC_EXAMPLE: &str = r#"
description: one zone loses three nodes      # optional, echoed in the summary
duration: 15m                                # virtual time to run (required)
controller:                                  # any flag of `run`, by its long name without --
  node-monitor-grace-period: 50s
  node-eviction-rate: 0.1
kubelet:                                     # optional; these are the defaults
  lease-renew-interval: 10s                  # kubelet renews its Lease this often
  status-update-frequency: 10s               # kubelet checks its status this often...
  status-report-frequency: 5m                # ...and writes it when changed or this often
admission:
  default-toleration-seconds: 300
nodes:
  - name: a-{0..9}           # {i..j} expands to one entry per number (inclusive)
    zone: zone-a             # label topology.kubernetes.io/zone (optional)
    region: r1               # label topology.kubernetes.io/region (optional)
    labels: {tier: edge}     # extra labels (optional)
    ready: "True"            # initial Ready condition
    heartbeat: lease
    created: -2h             # creation time relative to the start (default -1h)
    taints: []               # initial taints
    unschedulable: false
pods:
  - name: web-{0..29}        # expands like nodes
    namespace: default       # default "default"
    node: a-{0..9}           # a node name or an expandable pattern: pods go round-robin over it
    tolerations: []          # Kubernetes Toleration objects (operators Exists, Equal, Lt, Gt)
    owner: ReplicaSet/web-5d8f   # the controlling owner, Kind/name (optional; the what-if report groups by it)
    daemonset: false
    bound: -1h               # when the pod was bound to its node, relative (default: start)
    labels: {app: web}       # pod labels (optional), for PodDisruptionBudgets
    ready: true              # pods run with condition Ready=True unless false
pdbs:
  - name: web
    namespace: default
    selector: {app: web}     # matchLabels
    maxUnavailable: 1        # or minAvailable; integer or percentage string, as in Kubernetes
events:
  - {at: 30s, action: stop-heartbeat, nodes: [a-3, a-4]}
  - {at: 8m, action: resume-heartbeat, nodes: [a-3]}
  - {at: 40s, action: set-condition, nodes: [a-5], type: Ready, status: "False"}
  - {at: 1m, action: add-taint, nodes: [a-6], taint: {key: example.com/drain, effect: NoExecute}}
  - {at: 2m, action: remove-taint, nodes: [a-6], taint: {key: example.com/drain, effect: NoExecute}}
  - {at: 2m, action: delete-node, nodes: [a-7]}
  - {at: 2m, action: add-nodes, nodes: [{name: b-0, zone: zone-b}]}
  - {at: 3m, action: add-pods, pods: [{name: late-0, node: a-3}]}
  - {at: 3m, action: delete-pods, pods: [default/web-1]}
  - {at: 4m, action: set-tolerations, pods: [default/web-2], tolerations: []}
  - {at: 5m, action: restart-controller}
  - {at: 6m, action: api-outage, duration: 30s}
  - {at: 7m, action: stall-watch, resource: leases, duration: 2m}
  - {at: 10m, action: api-hang, duration: 45s}
  - {at: 12m, action: api-restart, duration: 45s}
"#;

    #[test]
    fn the_example_in_docs_simulation_md_is_the_one_these_tests_parse() {
        let doc = include_str!("../../docs/simulation.md");
        let block = doc
            .split("```yaml\n")
            .nth(1)
            .and_then(|rest| rest.split("\n```").next())
            .expect("a yaml block in docs/simulation.md");
        assert_eq!(block.trim(), DOC_EXAMPLE.trim());
    }

    const MINIMAL: &str =
        "duration: 10m\nnodes:\n  - name: n-0\npods:\n  - name: p-0\n    node: n-0\n";

    fn ok(text: &str) -> Scenario {
        parse(text, "test.yaml").unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(text: &str) -> ScenarioError {
        match parse(text, "test.yaml") {
            Ok(s) => panic!("parsed: {s:?}"),
            Err(e) => e,
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn names(nodes: &[NodeSpec]) -> Vec<&str> {
        nodes.iter().map(|n| n.name.as_str()).collect()
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn with_events(events: &str) -> String {
        format!(
            "duration: 10m\nnodes:\n  - name: a-{{0..3}}\npods:\n  - name: web-{{0..3}}\n    node: a-{{0..3}}\nevents:\n{events}"
        )
    }

    #[test]
    fn the_documented_example_parses_with_every_action() {
        let s = ok(DOC_EXAMPLE);
        assert_eq!(s.description.as_deref(), Some("one zone loses three nodes"));
        assert_eq!(s.duration, secs(900));
        assert_eq!(names(&s.nodes).len(), 10);
        assert_eq!(s.pods.len(), 30);
        assert_eq!(s.pdbs.len(), 1);
        let actions: Vec<&EventAction> = s.events.iter().map(|e| &e.action).collect();
        let t = |n: &str| TaintSpec {
            key: n.to_string(),
            value: None,
            effect: "NoExecute".to_string(),
            time_added: None,
        };
        assert_eq!(
            actions,
            [
                &EventAction::StopHeartbeat {
                    nodes: strings(&["a-3", "a-4"])
                },
                &EventAction::SetCondition {
                    nodes: strings(&["a-5"]),
                    condition_type: "Ready".into(),
                    status: "False".into()
                },
                &EventAction::AddTaint {
                    nodes: strings(&["a-6"]),
                    taint: t("example.com/drain")
                },
                &EventAction::RemoveTaint {
                    nodes: strings(&["a-6"]),
                    taint: t("example.com/drain")
                },
                &EventAction::DeleteNode {
                    nodes: strings(&["a-7"])
                },
                &EventAction::AddNodes {
                    nodes: vec![NodeSpec {
                        name: "b-0".into(),
                        zone: Some("zone-b".into()),
                        region: None,
                        labels: BTreeMap::new(),
                        ready: Some("True".into()),
                        heartbeat: Heartbeat::Lease,
                        created: SignedDuration::from_secs(120),
                        taints: vec![],
                        unschedulable: false,
                    }]
                },
                &EventAction::AddPods {
                    pods: vec![PodSpec {
                        name: "late-0".into(),
                        namespace: "default".into(),
                        node: "a-3".into(),
                        tolerations: vec![],
                        daemonset: false,
                        owner: None,
                        bound: None,
                        labels: BTreeMap::new(),
                        ready: true,
                    }]
                },
                &EventAction::DeletePods {
                    pods: strings(&["default/web-1"])
                },
                &EventAction::SetTolerations {
                    pods: strings(&["default/web-2"]),
                    tolerations: vec![]
                },
                &EventAction::RestartController,
                &EventAction::ApiOutage { duration: secs(30) },
                &EventAction::StallWatch {
                    resource: WatchResource::Leases,
                    duration: secs(120)
                },
                &EventAction::ResumeHeartbeat {
                    nodes: strings(&["a-3"])
                },
                &EventAction::ApiHang { duration: secs(45) },
                &EventAction::ApiRestart { duration: secs(45) },
            ]
        );
    }

    #[test]
    fn events_are_sorted_by_time_keeping_file_order_within_an_instant() {
        let s = ok(DOC_EXAMPLE);
        let at: Vec<u64> = s.events.iter().map(|e| e.at.as_secs()).collect();
        assert_eq!(
            at,
            [
                30, 40, 60, 120, 120, 120, 180, 180, 240, 300, 360, 420, 480, 600, 720
            ]
        );
        let actions: Vec<&str> = s.events[3..6]
            .iter()
            .map(|e| e.timeline_fields["action"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(actions, ["remove-taint", "delete-node", "add-nodes"]);
    }

    #[test]
    fn timeline_fields_show_the_action_and_its_expanded_fields() {
        let s = ok(DOC_EXAMPLE);
        let fields: Vec<serde_json::Value> = s
            .events
            .iter()
            .map(|e| serde_json::Value::Object(e.timeline_fields.clone()))
            .collect();
        assert_eq!(
            fields[0],
            json!({"action": "stop-heartbeat", "nodes": ["a-3", "a-4"]})
        );
        assert_eq!(
            fields[1],
            json!({"action": "set-condition", "nodes": ["a-5"], "conditionType": "Ready", "status": "False"})
        );
        assert_eq!(
            fields[2],
            json!({"action": "add-taint", "nodes": ["a-6"], "taint": {"key": "example.com/drain", "effect": "NoExecute"}})
        );
        assert_eq!(fields[5], json!({"action": "add-nodes", "nodes": ["b-0"]}));
        assert_eq!(
            fields[6],
            json!({"action": "add-pods", "pods": ["default/late-0"]})
        );
        assert_eq!(
            fields[8],
            json!({"action": "set-tolerations", "pods": ["default/web-2"], "tolerations": []})
        );
        assert_eq!(fields[9], json!({"action": "restart-controller"}));
        assert_eq!(
            fields[10],
            json!({"action": "api-outage", "duration": "30s"})
        );
        assert_eq!(
            fields[11],
            json!({"action": "stall-watch", "resource": "leases", "duration": "2m"})
        );
        assert_eq!(fields[13], json!({"action": "api-hang", "duration": "45s"}));
        assert_eq!(
            fields[14],
            json!({"action": "api-restart", "duration": "45s"})
        );
        assert!(
            s.events
                .iter()
                .all(|e| !e.timeline_fields.contains_key("at"))
        );
    }

    #[test]
    fn timeline_fields_keep_durations_as_written() {
        let s = ok(&with_events(
            "  - {at: 1m, action: add-taint, nodes: ['a-{0..1}'], taint: {key: k, value: v, effect: NoSchedule, timeAdded: -5m}}\n  - {at: 2m, action: api-outage, duration: 1m30s}\n",
        ));
        assert_eq!(
            serde_json::Value::Object(s.events[0].timeline_fields.clone()),
            json!({"action": "add-taint", "nodes": ["a-0", "a-1"],
                   "taint": {"key": "k", "value": "v", "effect": "NoSchedule", "timeAdded": "-5m"}})
        );
        assert_eq!(s.events[1].timeline_fields["duration"], json!("1m30s"));
        let EventAction::AddTaint { taint, .. } = &s.events[0].action else {
            panic!("not add-taint")
        };
        assert_eq!(taint.time_added, Some(SignedDuration::from_mins(-5)));
    }

    #[test]
    fn the_documented_example_expands_nodes_with_their_fields() {
        let s = ok(DOC_EXAMPLE);
        let a3 = &s.nodes[3];
        assert_eq!(a3.name, "a-3");
        assert_eq!(a3.zone.as_deref(), Some("zone-a"));
        assert_eq!(a3.region.as_deref(), Some("r1"));
        assert_eq!(a3.labels.get("tier").map(String::as_str), Some("edge"));
        assert_eq!(a3.created, SignedDuration::from_hours(-2));
        assert_eq!(s.pods[12].bound, Some(SignedDuration::from_hours(-1)));
        assert_eq!(
            s.pods[12].labels.get("app").map(String::as_str),
            Some("web")
        );
        assert_eq!(
            s.controller,
            vec![
                ("node-monitor-grace-period".to_string(), "50s".to_string()),
                ("node-eviction-rate".to_string(), "0.1".to_string()),
            ]
        );
        assert_eq!(
            s.pdbs[0],
            PdbSpec {
                name: "web".into(),
                namespace: "default".into(),
                selector: [("app".to_string(), "web".to_string())].into(),
                max_unavailable: Some(IntOrPercent::Int(1)),
                min_available: None,
            }
        );
    }

    #[test]
    fn omitted_fields_take_their_documented_defaults() {
        let s = ok(MINIMAL);
        assert_eq!(s.description, None);
        assert!(s.controller.is_empty());
        assert_eq!(s.kubelet, KubeletConfig::default());
        assert_eq!(s.default_toleration_seconds, Some(300));
        assert_eq!(
            s.nodes,
            vec![NodeSpec {
                name: "n-0".into(),
                zone: None,
                region: None,
                labels: BTreeMap::new(),
                ready: Some("True".into()),
                heartbeat: Heartbeat::Lease,
                created: SignedDuration::from_hours(-1),
                taints: vec![],
                unschedulable: false,
            }]
        );
        assert_eq!(
            s.pods,
            vec![PodSpec {
                name: "p-0".into(),
                namespace: "default".into(),
                node: "n-0".into(),
                tolerations: vec![],
                daemonset: false,
                owner: None,
                bound: None,
                labels: BTreeMap::new(),
                ready: true,
            }]
        );
        assert!(s.pdbs.is_empty() && s.events.is_empty());
    }

    #[test]
    fn kubelet_intervals_can_be_set() {
        let s = ok(
            "duration: 1m\nkubelet:\n  lease-renew-interval: 5s\n  status-report-frequency: 1m\n",
        );
        assert_eq!(s.kubelet.lease_renew_interval, secs(5));
        assert_eq!(s.kubelet.status_update_frequency, secs(10));
        assert_eq!(s.kubelet.status_report_frequency, secs(60));
    }

    #[test]
    fn admission_null_disables_default_tolerations() {
        let s = ok("duration: 1m\nadmission:\n  default-toleration-seconds: null\n");
        assert_eq!(s.default_toleration_seconds, None);
        let s = ok("duration: 1m\nadmission:\n  default-toleration-seconds: 60\n");
        assert_eq!(s.default_toleration_seconds, Some(60));
        let s = ok("duration: 1m\nadmission: {}\n");
        assert_eq!(s.default_toleration_seconds, Some(300));
    }

    #[test]
    fn ready_accepts_each_status_and_none() {
        let s = ok(
            "duration: 1m\nnodes:\n  - {name: a, ready: \"False\"}\n  - {name: b, ready: Unknown}\n  - {name: c, ready: none}\n  - {name: d, ready: true}\n",
        );
        let ready: Vec<Option<&str>> = s.nodes.iter().map(|n| n.ready.as_deref()).collect();
        assert_eq!(ready, [Some("False"), Some("Unknown"), None, Some("True")]);
    }

    #[test]
    fn heartbeat_modes_parse() {
        let s = ok(
            "duration: 1m\nnodes:\n  - {name: a, heartbeat: status}\n  - {name: b, heartbeat: none}\n  - {name: c, heartbeat: lease}\n",
        );
        let modes: Vec<Heartbeat> = s.nodes.iter().map(|n| n.heartbeat).collect();
        assert_eq!(
            modes,
            [Heartbeat::Status, Heartbeat::None, Heartbeat::Lease]
        );
    }

    #[test]
    fn node_taints_are_kubernetes_taints_with_relative_time_added() {
        let s = ok(
            "duration: 1m\nnodes:\n  - name: a\n    unschedulable: true\n    taints:\n      - {key: node.kubernetes.io/unreachable, effect: NoExecute, timeAdded: -5m}\n      - {key: dedicated, value: db, effect: NoSchedule}\n",
        );
        assert!(s.nodes[0].unschedulable);
        assert_eq!(
            s.nodes[0].taints,
            vec![
                TaintSpec {
                    key: "node.kubernetes.io/unreachable".into(),
                    value: None,
                    effect: "NoExecute".into(),
                    time_added: Some(SignedDuration::from_mins(-5)),
                },
                TaintSpec {
                    key: "dedicated".into(),
                    value: Some("db".into()),
                    effect: "NoSchedule".into(),
                    time_added: None,
                },
            ]
        );
    }

    #[test]
    fn pod_tolerations_are_kubernetes_tolerations() {
        let s = ok(
            "duration: 1m\nnodes: [{name: a}]\npods:\n  - name: p\n    node: a\n    daemonset: true\n    ready: false\n    tolerations:\n      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 900}\n      - {operator: Exists}\n      - {key: k, operator: Equal, value: v}\n",
        );
        let pod = &s.pods[0];
        assert!(pod.daemonset);
        assert!(!pod.ready);
        assert_eq!(
            pod.tolerations[0],
            Toleration {
                key: Some("node.kubernetes.io/unreachable".into()),
                operator: Some("Exists".into()),
                value: None,
                effect: Some("NoExecute".into()),
                toleration_seconds: Some(900),
            }
        );
        assert_eq!(pod.tolerations[1].operator.as_deref(), Some("Exists"));
        assert_eq!(pod.tolerations[1].key, None);
        assert_eq!(pod.tolerations[2].value.as_deref(), Some("v"));
    }

    #[test]
    fn patterns_expand_inclusively_without_padding() {
        assert_eq!(expand("a-{8..11}").unwrap(), ["a-8", "a-9", "a-10", "a-11"]);
        assert_eq!(expand("solo").unwrap(), ["solo"]);
        assert_eq!(expand("x{3..3}").unwrap(), ["x3"]);
        assert_eq!(
            expand("r{0..1}-n{0..1}").unwrap(),
            ["r0-n0", "r0-n1", "r1-n0", "r1-n1"]
        );
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in [
            "a-{3..1}",
            "a-{0..}",
            "a-{x..2}",
            "a-{0..2",
            "a-}",
            "a-{0...2}",
            "a-{-1..2}",
            "",
            "a-{0..99999999999999999999}",
            "a-{0..100000}",
        ] {
            assert!(expand(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn pods_go_round_robin_over_their_node_pattern() {
        let s = ok(
            "duration: 1m\nnodes: [{name: 'a-{0..2}'}]\npods:\n  - {name: 'web-{0..6}', node: 'a-{0..2}'}\n",
        );
        let placement: Vec<(&str, &str)> = s
            .pods
            .iter()
            .map(|p| (p.name.as_str(), p.node.as_str()))
            .collect();
        assert_eq!(
            placement,
            [
                ("web-0", "a-0"),
                ("web-1", "a-1"),
                ("web-2", "a-2"),
                ("web-3", "a-0"),
                ("web-4", "a-1"),
                ("web-5", "a-2"),
                ("web-6", "a-0"),
            ]
        );
    }

    #[test]
    fn names_in_actions_are_expanded() {
        let s = ok(&with_events(
            "  - {at: 1m, action: stop-heartbeat, nodes: ['a-{0..2}', a-3]}\n  - {at: 2m, action: delete-pods, pods: ['default/web-{1..2}', web-3]}\n",
        ));
        assert_eq!(
            s.events[0].action,
            EventAction::StopHeartbeat {
                nodes: strings(&["a-0", "a-1", "a-2", "a-3"])
            }
        );
        assert_eq!(
            s.events[1].action,
            EventAction::DeletePods {
                pods: strings(&["default/web-1", "default/web-2", "default/web-3"])
            }
        );
        assert_eq!(
            s.events[1].timeline_fields["pods"],
            json!(["default/web-1", "default/web-2", "default/web-3"])
        );
    }

    #[test]
    fn add_pods_expand_with_round_robin_and_default_to_the_moment_added() {
        let s = ok(&with_events(
            "  - at: 3m\n    action: add-pods\n    pods:\n      - {name: 'late-{0..2}', namespace: batch, node: 'a-{0..1}'}\n",
        ));
        let EventAction::AddPods { pods } = &s.events[0].action else {
            panic!("not add-pods")
        };
        let placement: Vec<(&str, &str, Option<SignedDuration>)> = pods
            .iter()
            .map(|p| (p.name.as_str(), p.node.as_str(), p.bound))
            .collect();
        assert_eq!(
            placement,
            [
                ("late-0", "a-0", None),
                ("late-1", "a-1", None),
                ("late-2", "a-0", None)
            ]
        );
        assert_eq!(
            s.events[0].timeline_fields["pods"],
            json!(["batch/late-0", "batch/late-1", "batch/late-2"])
        );
    }

    #[test]
    fn controller_values_become_text_in_file_order() {
        let s = ok(
            "duration: 1m\ncontroller:\n  node-monitor-period: 2s\n  node-eviction-rate: 0.25\n  large-cluster-size-threshold: 10\n  leader-elect: false\n  dry-run: true\n",
        );
        assert_eq!(
            s.controller,
            vec![
                ("node-monitor-period".into(), "2s".into()),
                ("node-eviction-rate".into(), "0.25".into()),
                ("large-cluster-size-threshold".into(), "10".into()),
                ("leader-elect".into(), "false".into()),
                ("dry-run".into(), "true".into()),
            ]
        );
        let settings = crate::config::settings_from_overrides(&s.controller).unwrap();
        assert!(!settings.leader_elect && settings.dry_run);
    }

    #[test]
    fn pdbs_take_integers_or_percentages() {
        let s = ok(
            "duration: 1m\npdbs:\n  - {name: a, selector: {app: web}, minAvailable: \"50%\"}\n  - {name: b, namespace: ns, maxUnavailable: 0}\n",
        );
        assert_eq!(s.pdbs[0].min_available, Some(IntOrPercent::Percent(50)));
        assert_eq!(s.pdbs[1].max_unavailable, Some(IntOrPercent::Int(0)));
        assert_eq!(s.pdbs[1].namespace, "ns");
    }

    #[test]
    fn nodes_may_be_re_added_after_deletion() {
        let s = ok(&with_events(
            "  - {at: 5m, action: add-nodes, nodes: [{name: a-1}]}\n  - {at: 1m, action: delete-node, nodes: [a-1]}\n",
        ));
        let EventAction::AddNodes { nodes } = &s.events[1].action else {
            panic!("not add-nodes")
        };
        assert_eq!(nodes[0].created, SignedDuration::from_mins(5));
    }

    #[test]
    fn pods_may_be_on_nodes_added_later() {
        let s = ok(
            "duration: 1m\npods: [{name: p, node: late}]\nevents:\n  - {at: 30s, action: add-nodes, nodes: [{name: late}]}\n",
        );
        assert_eq!(s.pods[0].node, "late");
    }

    #[test]
    fn the_demo_shows_a_node_lost_and_recovered() {
        let s = ok(DEMO);
        assert_eq!(names(&s.nodes), ["a-0", "a-1", "a-2", "b-0", "b-1", "b-2"]);
        let zones: BTreeSet<Option<&str>> = s.nodes.iter().map(|n| n.zone.as_deref()).collect();
        assert_eq!(zones.len(), 2);
        assert_eq!(s.default_toleration_seconds, Some(300));
        assert!(
            s.pods
                .iter()
                .filter(|p| p.node == "a-1" && !p.daemonset && p.tolerations.is_empty())
                .count()
                >= 2
        );
        assert_eq!(s.events.len(), 2);
        assert_eq!(s.events[0].at, secs(30));
        assert_eq!(
            s.events[0].action,
            EventAction::StopHeartbeat {
                nodes: strings(&["a-1"])
            }
        );
        // Resumed after the default toleration has run out (grace 50s + 300s), before the end.
        assert!(s.events[1].at > secs(30 + 50 + 300 + 30));
        assert_eq!(
            s.events[1].action,
            EventAction::ResumeHeartbeat {
                nodes: strings(&["a-1"])
            }
        );
        assert!(s.duration > s.events[1].at + secs(60));
        crate::config::settings_from_overrides(&s.controller).unwrap();
    }

    // ---- errors ----

    #[test]
    fn errors_display_file_line_field_and_message() {
        let e = err("duration: 10m\nnodes:\n  - name: a\n    ready: maybe\n");
        assert_eq!(e.line, 4);
        assert_eq!(e.field, "nodes[0].ready");
        assert_eq!(
            e.to_string(),
            r#"test.yaml:4: nodes[0].ready: invalid value: string "maybe", expected "True", "False", "Unknown" or none"#
        );
    }

    #[test]
    fn truncated_yaml_is_an_error_with_a_line() {
        let e = err("duration: 10m\nnodes:\n  - name: \"a-0\n");
        assert_eq!(e.field, "<document>");
        assert!(e.line >= 3, "{e}");
        let e = err("duration: 10m\nevents:\n  - {at: 1m, action: restart-controller\n");
        assert!(e.line >= 3, "{e}");
    }

    #[test]
    fn empty_input_is_an_error() {
        let e = err("");
        assert_eq!(e.field, "duration");
        assert!(e.message.contains("missing field"), "{e}");
    }

    #[test]
    fn wrong_types_are_errors_naming_the_field() {
        let e = err("duration: 10m\nnodes: 5\n");
        assert_eq!((e.line, e.field.as_str()), (2, "nodes"));
        let e = err("duration: 10m\nnodes:\n  - name: a\n    unschedulable: maybe\n");
        assert_eq!((e.line, e.field.as_str()), (4, "nodes[0].unschedulable"));
        let e = err("duration: 10m\nnodes:\n  - name: [a]\n");
        assert_eq!(e.field, "nodes[0].name");
        let e = err("duration: 10m\ncontroller:\n  node-eviction-rate: [1]\n");
        assert_eq!(e.field, "controller.node-eviction-rate");
    }

    #[test]
    fn unknown_fields_are_errors_at_their_line() {
        let e = err("duration: 10m\nnodes:\n  - name: a\n    zone: z\n    colour: red\n");
        assert_eq!((e.line, e.field.as_str()), (5, "nodes[0].colour"));
        assert!(e.message.contains("unknown field `colour`"), "{e}");
        let e = err("duration: 10m\nsurprise: 1\n");
        assert_eq!((e.line, e.field.as_str()), (2, "surprise"));
        let e =
            err("duration: 10m\nevents:\n  - {at: 1m, action: restart-controller, force: true}\n");
        assert_eq!((e.line, e.field.as_str()), (3, "events[0].force"));
        let e = err(
            "duration: 10m\nnodes:\n  - name: a\n    taints:\n      - {key: k, effect: NoExecute, when: 1m}\n",
        );
        assert_eq!(e.field, "nodes[0].taints[0].when");
    }

    #[test]
    fn negative_durations_are_refused_where_times_are_not_relative() {
        let e = err("duration: -10m\n");
        assert_eq!((e.line, e.field.as_str()), (1, "duration"));
        assert!(e.message.contains("negative"), "{e}");
        let e = err("duration: 10m\nevents:\n  - at: -1m\n    action: restart-controller\n");
        assert_eq!((e.line, e.field.as_str()), (3, "events[0].at"));
        let e = err("duration: 10m\nkubelet:\n  lease-renew-interval: -10s\n");
        assert_eq!(
            (e.line, e.field.as_str()),
            (3, "kubelet.lease-renew-interval")
        );
        let e = err(&with_events(
            "  - {at: 1m, action: api-outage, duration: -30s}\n",
        ));
        assert_eq!(e.field, "events[0].duration");
    }

    #[test]
    fn zero_and_unitless_durations_are_refused() {
        assert_eq!(err("duration: 0s\n").field, "duration");
        assert_eq!(
            err("duration: 10m\nkubelet:\n  status-update-frequency: 0s\n").field,
            "kubelet.status-update-frequency"
        );
        let e = err("duration: 600\n");
        assert!(e.message.contains("600s"), "{e}");
        assert_eq!(err("duration: soon\n").field, "duration");
    }

    #[test]
    fn relative_times_accept_a_leading_minus() {
        let s = ok(
            "duration: 1m\nnodes: [{name: a, created: -2h30m}]\npods: [{name: p, node: a, bound: 10s}]\n",
        );
        assert_eq!(s.nodes[0].created, SignedDuration::from_secs(-9000));
        assert_eq!(s.pods[0].bound, Some(SignedDuration::from_secs(10)));
        assert_eq!(
            err("duration: 1m\nnodes: [{name: a, created: yesterday}]\n").field,
            "nodes[0].created"
        );
    }

    #[test]
    fn unknown_actions_are_errors_listing_the_known_ones() {
        let e = err("duration: 10m\nevents:\n  - at: 1m\n    action: explode\n");
        assert_eq!((e.line, e.field.as_str()), (4, "events[0].action"));
        assert!(e.message.contains("unknown action `explode`"), "{e}");
        assert!(e.message.contains("stall-watch"), "{e}");
    }

    #[test]
    fn action_fields_are_required_and_foreign_fields_refused() {
        let e = err(&with_events("  - at: 1m\n    action: stop-heartbeat\n"));
        assert_eq!(e.field, "events[0].nodes");
        assert!(e.message.contains("needs `nodes`"), "{e}");
        let e = err(&with_events(
            "  - at: 1m\n    action: stop-heartbeat\n    nodes: [a-0]\n    duration: 5s\n",
        ));
        assert_eq!((e.line, e.field.as_str()), (11, "events[0].duration"));
        let e = err(&with_events(
            "  - {at: 1m, action: set-condition, nodes: [a-0], status: \"False\"}\n",
        ));
        assert_eq!(e.field, "events[0].type");
        let e = err(&with_events(
            "  - {at: 1m, action: stall-watch, resource: secrets, duration: 1m}\n",
        ));
        assert_eq!(e.field, "events[0].resource");
        let e = err(&with_events(
            "  - {at: 1m, action: stop-heartbeat, nodes: []}\n",
        ));
        assert_eq!(e.field, "events[0].nodes");
        let e = err("duration: 10m\nevents:\n  - {action: restart-controller}\n");
        assert_eq!(e.field, "events[0].at");
    }

    #[test]
    fn node_objects_and_names_are_not_interchangeable_in_events() {
        let e = err(&with_events(
            "  - {at: 1m, action: add-nodes, nodes: [b-0]}\n",
        ));
        assert_eq!(e.field, "events[0].nodes[0]");
        let e = err(&with_events(
            "  - {at: 1m, action: stop-heartbeat, nodes: [{name: a-0}]}\n",
        ));
        assert_eq!(e.field, "events[0].nodes[0]");
        let e = err(&with_events(
            "  - {at: 1m, action: delete-pods, pods: [{name: web-0, node: a-0}]}\n",
        ));
        assert_eq!(e.field, "events[0].pods[0]");
    }

    #[test]
    fn bad_patterns_are_errors_naming_the_field() {
        let e = err("duration: 10m\nnodes:\n  - name: a-{3..1}\n");
        assert_eq!((e.line, e.field.as_str()), (3, "nodes[0].name"));
        assert!(e.message.contains("bad pattern"), "{e}");
        let e = err("duration: 10m\nnodes: [{name: a}]\npods:\n  - name: p\n    node: a-{0..x}\n");
        assert_eq!((e.line, e.field.as_str()), (5, "pods[0].node"));
        let e = err(&with_events(
            "  - {at: 1m, action: stop-heartbeat, nodes: ['a-{1..0}']}\n",
        ));
        assert_eq!(e.field, "events[0].nodes[0]");
    }

    #[test]
    fn duplicate_node_names_are_errors_at_the_second_entry() {
        let e = err("duration: 10m\nnodes:\n  - name: a-{0..2}\n    zone: z\n  - name: a-2\n");
        assert_eq!((e.line, e.field.as_str()), (5, "nodes[1].name"));
        assert!(e.message.contains("duplicate node name `a-2`"), "{e}");
    }

    #[test]
    fn duplicate_pods_are_errors() {
        let e = err(
            "duration: 10m\nnodes: [{name: a}]\npods:\n  - {name: p, node: a}\n  - {name: p, node: a}\n",
        );
        assert_eq!((e.line, e.field.as_str()), (5, "pods[1].name"));
        assert!(ok("duration: 10m\nnodes: [{name: a}]\npods:\n  - {name: p, node: a}\n  - {name: p, namespace: other, node: a}\n").pods.len() == 2);
    }

    #[test]
    fn adding_a_node_that_exists_is_an_error() {
        let e = err(&with_events(
            "  - at: 1m\n    action: add-nodes\n    nodes:\n      - name: b-0\n      - name: a-1\n",
        ));
        assert_eq!(e.field, "events[0].nodes[1].name");
        assert_eq!(e.line, 12);
        assert!(e.message.contains("already exists"), "{e}");
    }

    #[test]
    fn pods_on_unknown_nodes_are_errors_at_their_line() {
        let e = err(
            "duration: 10m\nnodes:\n  - name: a-0\npods:\n  - name: p\n    namespace: x\n    node: b-0\n",
        );
        assert_eq!((e.line, e.field.as_str()), (7, "pods[0].node"));
        assert!(e.message.contains("b-0"), "{e}");
        let e = err(&with_events(
            "  - {at: 1m, action: add-pods, pods: [{name: q, node: nowhere}]}\n",
        ));
        assert_eq!(e.field, "events[0].pods[0].node");
    }

    #[test]
    fn actions_on_unknown_nodes_or_pods_are_errors() {
        let e = err(&with_events(
            "  - {at: 1m, action: stop-heartbeat, nodes: [a-9]}\n",
        ));
        assert_eq!((e.line, e.field.as_str()), (8, "events[0].nodes"));
        assert!(e.message.contains("a-9"), "{e}");
        let e = err(&with_events(
            "  - {at: 1m, action: delete-pods, pods: [other/web-0]}\n",
        ));
        assert_eq!(e.field, "events[0].pods");
        assert!(e.message.contains("other/web-0"), "{e}");
    }

    #[test]
    fn controller_entries_are_checked_by_name_and_value() {
        let e =
            err("duration: 10m\ncontroller:\n  node-monitor-period: 5s\n  kubeconfig: /tmp/x\n");
        assert_eq!((e.line, e.field.as_str()), (4, "controller.kubeconfig"));
        assert!(e.message.contains("does not apply to simulate"), "{e}");
        let e = err("duration: 10m\ncontroller:\n  node-grace: 5s\n");
        assert_eq!((e.line, e.field.as_str()), (3, "controller.node-grace"));
        let e = err("duration: 10m\ncontroller:\n  node-eviction-rate: fast\n");
        assert_eq!(e.field, "controller.node-eviction-rate");
        let e = err("duration: 10m\ncontroller:\n  pod-eviction-timeout: 5m\n");
        assert!(e.message.contains("removed"), "{e}");
    }

    #[test]
    fn invalid_tolerations_taints_and_pdbs_are_errors() {
        let base = "duration: 10m\nnodes: [{name: a}]\npods:\n  - name: p\n    node: a\n    tolerations:\n";
        let e = err(&format!(
            "{base}      - {{key: k, operator: Exists, value: v}}\n"
        ));
        assert_eq!(
            (e.line, e.field.as_str()),
            (7, "pods[0].tolerations[0].value")
        );
        let e = err(&format!("{base}      - {{operator: Equal, value: v}}\n"));
        assert_eq!(e.field, "pods[0].tolerations[0].operator");
        let e = err(&format!("{base}      - {{key: k, operator: Maybe}}\n"));
        assert_eq!(e.field, "pods[0].tolerations[0].operator");
        let e = err(&format!(
            "{base}      - key: k\n        effect: NoSchedule\n        tolerationSeconds: 5\n"
        ));
        assert_eq!(
            (e.line, e.field.as_str()),
            (9, "pods[0].tolerations[0].tolerationSeconds")
        );
        let e =
            err("duration: 10m\nnodes:\n  - name: a\n    taints: [{key: k, effect: Sometimes}]\n");
        assert_eq!(e.field, "nodes[0].taints[0].effect");
        let e = err("duration: 10m\nnodes:\n  - name: a\n    taints: [{effect: NoExecute}]\n");
        assert_eq!(e.field, "nodes[0].taints[0].key");
        let e = err("duration: 10m\npdbs:\n  - {name: a, maxUnavailable: 1, minAvailable: 1}\n");
        assert_eq!(e.field, "pdbs[0].minAvailable");
        let e = err("duration: 10m\npdbs:\n  - {name: a, maxUnavailable: \"150%\"}\n");
        assert_eq!(e.field, "pdbs[0].maxUnavailable");
        let e = err("duration: 10m\nadmission:\n  default-toleration-seconds: -3\n");
        assert_eq!(
            (e.line, e.field.as_str()),
            (3, "admission.default-toleration-seconds")
        );
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            "[",
            "{",
            "- - -",
            "~",
            "null",
            "42",
            "duration: 1e400",
            "duration: [1m]",
            "duration: 10m\nnodes: [[[]]]\n",
            "duration: 10m\nnodes: [{}]\n",
            "duration: 10m\nevents: [{}]\n",
            "duration: 10m\nevents: [5]\n",
            "duration: 10m\nevents:\n  - {at: 1m, action: add-pods, pods: [5]}\n",
            "duration: 10m\nnodes: [{name: 'a-{0..18446744073709551615}'}]\n",
            "duration: 10m\n---\nduration: 5m\n",
            "duration: 10m\n&a x: *a\n",
            "\u{0}",
            "duration: 10m\ncontroller: [a]\n",
            "duration: 10m\ncontroller:\n  ? [a]\n  : b\n",
            "duration: 10m\nnodes:\n- name: a\n  labels: {x: {y: z}}\n",
            "duration: 99999999999999999999999h\n",
            "duration: 10m\nevents:\n  - {at: 1m, action: add-nodes, nodes: [{zone: z}]}\n",
        ] {
            let result = parse(text, "-");
            assert!(result.is_err(), "{text:?} parsed");
        }
    }

    #[test]
    fn locator_finds_block_style_fields() {
        let text = "duration: 1m\n# comment\nnodes:\n- name: a\n  zone: z\n- name: b\n  taints:\n    - key: k\n      effect: NoExecute\n";
        let at = |p: &str| locate(text, &segments(p));
        assert_eq!(at("nodes"), 3);
        assert_eq!(at("nodes[1]"), 6);
        assert_eq!(at("nodes[0].zone"), 5);
        assert_eq!(at("nodes[1].taints[0].effect"), 9);
        assert_eq!(at("nodes[2]"), 3);
        assert_eq!(at("pods"), 0);
    }
}
