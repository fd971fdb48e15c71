//! Nodes: create, read, PUT and PATCH (object and status), delete; the controller's taint and
//! condition changes are recorded in the timeline.

use super::patch::{PatchKind, patched};
use super::{
    Origin, State, Store, check_preconditions, merge_metadata, truncate_node_spec,
    truncate_node_status, version_of,
};
use crate::cluster::{ApiError, ObjectVersion, Result};
use crate::logic::time::truncate_to_second;
use crate::sim::timeline::{EntryKind, taint_text};
use k8s_openapi::api::core::v1::{Node, NodeCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::watcher::Event;
use std::sync::Arc;

fn node_condition_status<'a>(conditions: &'a [NodeCondition], type_: &str) -> Option<&'a str> {
    conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.as_str())
}

fn taint_list(node: &Node) -> Vec<(String, Option<String>, String)> {
    node.spec
        .iter()
        .flat_map(|s| s.taints.iter().flatten())
        .map(|t| {
            (
                t.key.clone(),
                t.value.clone().filter(|v| !v.is_empty()),
                t.effect.clone(),
            )
        })
        .collect()
}

/// The stored node `node` names (and its name), if `node`'s preconditions hold for it.
fn checked_stored(state: &State, node: &Node) -> Result<(String, Node)> {
    let name = node.metadata.name.clone().unwrap_or_default();
    let stored = state
        .nodes
        .get(&name)
        .map(|n| Node::clone(n))
        .ok_or_else(|| ApiError::NotFound(format!("nodes \"{name}\" not found")))?;
    check_preconditions(
        &stored.metadata,
        &node.metadata,
        &format!("nodes \"{name}\""),
    )?;
    Ok((name, stored))
}

/// Stores `updated` as the node `name` and tells the watches; returns it.
fn store_changed(state: &mut State, name: String, updated: Node) -> Node {
    let updated = Arc::new(updated);
    state.nodes.insert(name, Arc::clone(&updated));
    state
        .node_watchers
        .deliver(None, Event::Apply(Arc::clone(&updated)));
    Arc::unwrap_or_clone(updated)
}

impl Store {
    /// Creates a node; the server sets uid, resourceVersion and (when missing) creationTimestamp.
    pub fn create_node(&self, node: &Node) -> Result<Node> {
        let mut state = self.lock();
        let name = node.metadata.name.clone().unwrap_or_default();
        if name.is_empty() {
            return Err(ApiError::Other("node name is required".to_string()));
        }
        if state.nodes.contains_key(&name) {
            return Err(ApiError::Conflict(format!(
                "nodes \"{name}\" already exists"
            )));
        }
        let mut node = node.clone();
        node.metadata.uid = Some(state.next_uid());
        node.metadata.resource_version = Some(state.next_resource_version());
        let created = node
            .metadata
            .creation_timestamp
            .take()
            .map_or(self.now(), |Time(t)| t);
        node.metadata.creation_timestamp = Some(Time(truncate_to_second(created)));
        truncate_node_spec(&mut node);
        truncate_node_status(&mut node.status);
        let node = Arc::new(node);
        state.nodes.insert(name, Arc::clone(&node));
        state.node_watchers.deliver_created(None, Arc::clone(&node));
        Ok(Arc::unwrap_or_clone(node))
    }

    /// What `read` makes of the stored node, without copying it.
    pub fn read_node<R>(&self, name: &str, read: impl FnOnce(&Node) -> R) -> Option<R> {
        self.lock().nodes.get(name).map(|n| read(n))
    }

    pub fn get_node(&self, name: &str) -> Result<Node> {
        self.lock()
            .nodes
            .get(name)
            .map(|n| Node::clone(n))
            .ok_or_else(|| ApiError::NotFound(format!("nodes \"{name}\" not found")))
    }

    /// Every node's name and resourceVersion (a metadata-only list).
    pub fn node_versions(&self) -> Vec<ObjectVersion> {
        self.lock()
            .nodes
            .values()
            .map(|n| version_of(&**n))
            .collect()
    }

    /// PUT nodes/{name}: changes metadata and spec only.
    pub fn replace_node(&self, node: &Node, origin: Origin) -> Result<Node> {
        let mut state = self.lock();
        self.write_node(&mut state, node, origin)
    }

    fn write_node(&self, state: &mut State, node: &Node, origin: Origin) -> Result<Node> {
        let (name, stored) = checked_stored(state, node)?;
        let mut updated = stored.clone();
        updated.metadata = merge_metadata(&stored.metadata, &node.metadata);
        updated.spec = node.spec.clone();
        truncate_node_spec(&mut updated);
        if updated == stored {
            return Ok(stored);
        }
        updated.metadata.resource_version = Some(state.next_resource_version());
        if origin == Origin::Controller {
            let before = taint_list(&stored);
            let after = taint_list(&updated);
            for t in after.iter().filter(|t| !before.contains(t)) {
                let kind = EntryKind::TaintAdded {
                    node: name.clone(),
                    taint: taint_text(&t.0, t.1.as_deref(), &t.2),
                };
                self.record_locked(state, kind);
            }
            for t in before.iter().filter(|t| !after.contains(t)) {
                let kind = EntryKind::TaintRemoved {
                    node: name.clone(),
                    taint: taint_text(&t.0, t.1.as_deref(), &t.2),
                };
                self.record_locked(state, kind);
            }
        }
        Ok(store_changed(state, name, updated))
    }

    /// PUT nodes/{name}/status: changes status only.
    pub fn replace_node_status(&self, node: &Node, origin: Origin) -> Result<Node> {
        let mut state = self.lock();
        self.write_node_status(&mut state, node, origin)
    }

    /// PATCH nodes/{name} (or its status), under one hold of the lock as kube-apiserver
    /// applies a patch to the object as it is. A `metadata.resourceVersion` in the patch is a
    /// precondition (the patched object carries it, and must match); a write to the status
    /// takes only the status of the result, one to the node only its metadata and spec.
    pub fn patch_node(
        &self,
        name: &str,
        patch: &serde_json::Value,
        kind: PatchKind,
        status: bool,
        origin: Origin,
    ) -> Result<Node> {
        let mut state = self.lock();
        let stored = state
            .nodes
            .get(name)
            .ok_or_else(|| ApiError::NotFound(format!("nodes \"{name}\" not found")))?;
        let node: Node = patched(&**stored, patch, kind, &format!("nodes \"{name}\""))?;
        if node.metadata.name.as_deref() != Some(name) {
            return Err(ApiError::Other(format!(
                "a patch of nodes \"{name}\" may not change metadata.name"
            )));
        }
        if status {
            self.write_node_status(&mut state, &node, origin)
        } else {
            self.write_node(&mut state, &node, origin)
        }
    }

    fn write_node_status(&self, state: &mut State, node: &Node, origin: Origin) -> Result<Node> {
        let (name, stored) = checked_stored(state, node)?;
        let mut updated = stored.clone();
        updated.status = node.status.clone();
        truncate_node_status(&mut updated.status);
        if updated == stored {
            return Ok(stored);
        }
        updated.metadata.resource_version = Some(state.next_resource_version());
        if origin == Origin::Controller {
            let old: &[NodeCondition] = stored
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_deref())
                .unwrap_or(&[]);
            let new: &[NodeCondition] = updated
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_deref())
                .unwrap_or(&[]);
            let went_unknown: Vec<String> = new
                .iter()
                .filter(|c| {
                    c.status == "Unknown" && node_condition_status(old, &c.type_) != Some("Unknown")
                })
                .map(|c| c.type_.clone())
                .collect();
            if !went_unknown.is_empty() {
                let kind = EntryKind::NodeConditionsUnknown {
                    node: name.clone(),
                    conditions: went_unknown,
                };
                self.record_locked(state, kind);
            }
        }
        Ok(store_changed(state, name, updated))
    }

    /// Applies `change` to the stored node (metadata and spec), unconditionally.
    pub fn update_node(&self, name: &str, change: impl FnOnce(&mut Node)) -> Result<Node> {
        let mut node = self.get_node(name)?;
        change(&mut node);
        node.metadata.resource_version = None;
        self.replace_node(&node, Origin::World)
    }

    /// Applies `change` to the stored node's status, unconditionally.
    pub fn update_node_status(&self, name: &str, change: impl FnOnce(&mut Node)) -> Result<Node> {
        let mut node = self.get_node(name)?;
        change(&mut node);
        node.metadata.resource_version = None;
        self.replace_node_status(&node, Origin::World)
    }

    /// Deletes a node, and its Lease in `lease_namespace` (owned by the node).
    pub fn delete_node(&self, name: &str, lease_namespace: &str) -> Result<()> {
        let mut state = self.lock();
        let mut node = state
            .nodes
            .remove(name)
            .map(Arc::unwrap_or_clone)
            .ok_or_else(|| ApiError::NotFound(format!("nodes \"{name}\" not found")))?;
        node.metadata.resource_version = Some(state.next_resource_version());
        state
            .node_watchers
            .deliver(None, Event::Delete(Arc::new(node)));
        if let Some(mut lease) = state
            .leases
            .remove(&(lease_namespace.to_string(), name.to_string()))
        {
            lease.metadata.resource_version = Some(state.next_resource_version());
            state
                .lease_watchers
                .deliver(Some(lease_namespace), Event::Delete(lease));
        }
        Ok(())
    }
}
