//! Helpers shared by the scenario tests: run a scenario through the simulator and read its
//! timeline as JSON values.

#![allow(dead_code)]

use node_lifecycle_controller::config::settings_from_overrides;
use node_lifecycle_controller::sim::{self, scenario};
use serde_json::Value;

/// Runs a scenario (YAML text) with seed 0 and returns its JSONL timeline as text.
pub fn jsonl(yaml: &str) -> String {
    jsonl_with(yaml, &[], 0)
}

pub fn jsonl_with(yaml: &str, set: &[(&str, &str)], seed: u64) -> String {
    let scenario = scenario::parse(yaml, "test.yaml").expect("scenario parses");
    let overrides: Vec<(String, String)> = scenario
        .controller
        .iter()
        .cloned()
        .chain(set.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    let settings = settings_from_overrides(&overrides).expect("settings are valid");
    let entries = sim::simulate(&scenario, settings, seed).expect("simulation runs");
    let mut out = Vec::new();
    sim::write_jsonl(&entries, &mut out).expect("timeline is written");
    String::from_utf8(out).expect("utf-8")
}

/// Runs a scenario and returns its timeline entries.
pub fn timeline(yaml: &str) -> Vec<Value> {
    parse(&jsonl(yaml))
}

pub fn timeline_with(yaml: &str, set: &[(&str, &str)]) -> Vec<Value> {
    parse(&jsonl_with(yaml, set, 0))
}

pub fn parse(jsonl: &str) -> Vec<Value> {
    jsonl
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

/// Entries of one type.
pub fn of<'a>(entries: &'a [Value], type_: &str) -> Vec<&'a Value> {
    entries.iter().filter(|e| e["type"] == type_).collect()
}

pub fn t(e: &Value) -> f64 {
    e["t"].as_f64().expect("t is a number")
}

/// Times at which `taint` was added to `node` by the controller.
pub fn taint_added(entries: &[Value], node: &str, taint: &str) -> Vec<f64> {
    of(entries, "TaintAdded")
        .into_iter()
        .filter(|e| e["node"] == node && e["taint"] == taint)
        .map(t)
        .collect()
}

/// Time the pod was deleted, if it was.
pub fn deleted_at(entries: &[Value], pod: &str) -> Option<f64> {
    of(entries, "PodDeleted")
        .into_iter()
        .find(|e| e["pod"] == pod)
        .map(t)
}

pub fn unknown_at(entries: &[Value], node: &str) -> Vec<f64> {
    of(entries, "NodeConditionsUnknown")
        .into_iter()
        .filter(|e| e["node"] == node)
        .map(t)
        .collect()
}

pub const UNREACHABLE_NE: &str = "node.kubernetes.io/unreachable:NoExecute";
pub const NOT_READY_NE: &str = "node.kubernetes.io/not-ready:NoExecute";
