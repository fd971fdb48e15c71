//! The box's audit log: what the API server did for whom, with microsecond timestamps.

use jiff::Timestamp;
use serde_json::Value;
use std::path::Path;

/// One request, as far as the scenarios look at it (the ResponseComplete stage).
#[derive(Clone, Debug)]
pub struct Request {
    pub user: String,
    pub verb: String,
    /// The resource's API group ("" for core/v1); read by the head-to-head bench.
    #[allow(dead_code)]
    pub api_group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    pub code: u16,
    /// When the response was complete (the write had been applied).
    pub at: Timestamp,
    /// The request body, for the controller's writes (audit level Request).
    pub body: Value,
}

impl Request {
    pub fn is_write(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        )
    }

    pub fn ok(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// `resource/subresource` (or `resource`).
    pub fn what(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }
}

/// The log's files, oldest first: the API server rotates `audit.log` at 100 MB (its
/// `--audit-log-maxsize` default) into `audit-<time>.log` beside it, which a big fleet reaches.
fn files(path: &Path) -> Vec<std::path::PathBuf> {
    let (Some(dir), Some(stem), Some(ext)) = (
        path.parent(),
        path.file_stem().and_then(|s| s.to_str()),
        path.extension().and_then(|s| s.to_str()),
    ) else {
        return vec![path.to_path_buf()];
    };
    let mut rotated: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with(&format!("{stem}-")) && n.ends_with(&format!(".{ext}"))
            })
        })
        .collect();
    // The backups' names carry their time: sorted by name is sorted by time.
    rotated.sort();
    rotated.push(path.to_path_buf());
    rotated
}

/// Every completed request in the log (its rotated files first).
pub fn read(path: &Path) -> Vec<Request> {
    files(path)
        .iter()
        .flat_map(|f| read_file(f, "ResponseComplete"))
        .collect()
}

/// Every watch the server started answering (ResponseStarted), completed or still open: a
/// streaming list is a watch that may stay open to the end, with no completed entry.
pub fn watches_started(path: &Path) -> Vec<Request> {
    files(path)
        .iter()
        .flat_map(|f| read_file(f, "ResponseStarted"))
        .filter(|r| r.verb == "watch")
        .collect()
}

fn read_file(path: &Path, stage: &str) -> Vec<Request> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["stage"] == stage)
        .map(|e| {
            let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
            Request {
                user: s(&e["user"]["username"]),
                verb: s(&e["verb"]),
                api_group: s(&e["objectRef"]["apiGroup"]),
                resource: s(&e["objectRef"]["resource"]),
                subresource: s(&e["objectRef"]["subresource"]),
                namespace: s(&e["objectRef"]["namespace"]),
                name: s(&e["objectRef"]["name"]),
                code: e["responseStatus"]["code"].as_u64().unwrap_or(0) as u16,
                at: e["stageTimestamp"]
                    .as_str()
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(Timestamp::UNIX_EPOCH),
                body: e["requestObject"].clone(),
            }
        })
        .collect()
}

/// The requests of one user (e.g. the controller's ServiceAccount).
pub fn by(path: &Path, user: &str) -> Vec<Request> {
    read(path).into_iter().filter(|r| r.user == user).collect()
}

/// The NoExecute taint keys a node patch sets (its body's `spec.taints`), if it sets taints.
pub fn no_execute_keys(body: &Value) -> Option<Vec<String>> {
    let taints = body.get("spec")?.get("taints")?;
    Some(
        taints
            .as_array()
            .map(|ts| {
                ts.iter()
                    .filter(|t| t["effect"] == "NoExecute")
                    .filter_map(|t| t["key"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
    )
}
