//! PATCH bodies as kube-apiserver applies them to Nodes and Pods: JSON merge patches, and the
//! strategic merge patches of condition lists the controller sends.

use crate::cluster::{ApiError, Result};

/// Applies a JSON merge patch (RFC 7386) to `target`: objects merge key by key, `null` removes
/// a key, anything else (lists included) replaces what was there.
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    use serde_json::Value;
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// `stored` with `patch` applied, decoded again (a result that is not a valid object is an
/// error, 422 on the served API).
pub(super) fn patched<K: serde::Serialize + serde::de::DeserializeOwned>(
    stored: &K,
    patch: &serde_json::Value,
    kind: PatchKind,
    what: &str,
) -> Result<K> {
    let mut value = serde_json::to_value(stored)
        .map_err(|e| ApiError::Other(format!("{what} could not be encoded: {e}")))?;
    apply_patch(&mut value, patch, kind);
    serde_json::from_value(value)
        .map_err(|e| ApiError::Other(format!("the patched {what} is not valid: {e}")))
}

/// How a PATCH's body applies, as its Content-Type says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json` (RFC 7386): objects merge, lists are replaced.
    Merge,
    /// `application/strategic-merge-patch+json`, as far as the controller uses it: a merge
    /// patch, except that a `conditions` list merges with the one it patches element by element
    /// on `type` (the merge key kube-apiserver uses for Node and Pod conditions): an element of
    /// a new type is appended, the fields of an existing one are merged.
    Strategic,
}

/// Applies `patch` to `target` as `kind` says.
pub fn apply_patch(target: &mut serde_json::Value, patch: &serde_json::Value, kind: PatchKind) {
    use serde_json::Value;
    let (Value::Object(patch_map), PatchKind::Strategic) = (patch, kind) else {
        return merge_patch(target, patch);
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    let Value::Object(target) = target else {
        return;
    };
    for (key, value) in patch_map {
        match (key.as_str(), value, target.get_mut(key)) {
            (_, Value::Null, _) => {
                target.remove(key);
            }
            ("conditions", Value::Array(patched), Some(Value::Array(existing))) => {
                for element in patched {
                    let kind_of = |c: &Value| c.get("type").cloned();
                    match existing
                        .iter_mut()
                        .find(|c| kind_of(c).is_some() && kind_of(c) == kind_of(element))
                    {
                        Some(c) => merge_patch(c, element),
                        None => existing.push(element.clone()),
                    }
                }
            }
            _ => apply_patch(
                target.entry(key.clone()).or_insert(Value::Null),
                value,
                PatchKind::Strategic,
            ),
        }
    }
}
