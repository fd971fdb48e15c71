//! Pods: create, read, status PUT and PATCH, the world's edits, DELETE and the eviction
//! subresource; the controller's marks and removals are recorded in the timeline.

use super::patch::{PatchKind, patched};
use super::{
    Key, Origin, State, Store, StoredPod, admit_create, check_preconditions, merge_metadata,
    truncate_pod_status,
};
use crate::cluster::{ApiError, Result};
use crate::logic::time::truncate_to_second;
use crate::sim::timeline::EntryKind;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::watcher::Event;
use std::sync::Arc;

fn pod_condition_status<'a>(pod: &'a Pod, type_: &str) -> Option<&'a str> {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
        .map(|c| c.status.as_str())
}

fn pod_node(pod: &Pod) -> String {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default()
}

/// The pod stored under `key`.
fn stored<'a>(state: &'a State, key: &Key) -> Result<&'a Arc<StoredPod>> {
    state
        .pods
        .get(key)
        .ok_or_else(|| ApiError::NotFound(format!("pods \"{}\" not found", key.1)))
}

impl Store {
    pub fn create_pod(&self, pod: &Pod) -> Result<Pod> {
        let mut state = self.lock();
        let mut pod = pod.clone();
        let key = admit_create(&mut state, &mut pod.metadata, "pods", |st, k| {
            st.pods.contains_key(k)
        })?;
        let namespace = key.0.clone();
        let created = pod
            .metadata
            .creation_timestamp
            .take()
            .map_or(self.now(), |Time(t)| t);
        pod.metadata.creation_timestamp = Some(Time(truncate_to_second(created)));
        truncate_pod_status(&mut pod);
        state.budgets.returned(&key);
        let stored = Arc::new(StoredPod::new(pod.clone(), &mut state.sharing));
        state.pods.insert(key, Arc::clone(&stored));
        state.pod_watchers.deliver_created(Some(&namespace), stored);
        Ok(pod)
    }

    pub fn get_pod(&self, namespace: &str, name: &str) -> Result<Pod> {
        let t_ms = self.elapsed_ms();
        let state = self.lock();
        if let Some(observer) = &state.observer {
            observer.pod_read(t_ms, &format!("{namespace}/{name}"));
        }
        stored(&state, &(namespace.to_string(), name.to_string())).map(|p| p.to_pod())
    }

    pub fn list_pods(&self) -> Vec<Pod> {
        self.lock().pods.values().map(|p| p.to_pod()).collect()
    }

    /// PUT pods/{name}/status: changes status only.
    pub fn replace_pod_status(&self, pod: &Pod, origin: Origin) -> Result<Pod> {
        let mut state = self.lock();
        self.write_pod_status(&mut state, pod, origin)
    }

    /// PATCH pods/{name}/status, applied like `patch_node`'s.
    pub fn patch_pod_status(
        &self,
        namespace: &str,
        name: &str,
        patch: &serde_json::Value,
        kind: PatchKind,
        origin: Origin,
    ) -> Result<Pod> {
        let mut state = self.lock();
        let key = (namespace.to_string(), name.to_string());
        let stored = stored(&state, &key)?;
        let pod: Pod = patched(&stored.to_pod(), patch, kind, &format!("pods \"{name}\""))?;
        if pod.metadata.name.as_deref() != Some(name)
            || pod.metadata.namespace.as_deref() != Some(namespace)
        {
            return Err(ApiError::Other(format!(
                "a patch of pods \"{name}\" may not change its name or namespace"
            )));
        }
        self.write_pod_status(&mut state, &pod, origin)
    }

    fn write_pod_status(&self, state: &mut State, pod: &Pod, origin: Origin) -> Result<Pod> {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let namespace = pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let key = (namespace.clone(), name.clone());
        let stored = stored(state, &key)?.to_pod();
        check_preconditions(&stored.metadata, &pod.metadata, &format!("pods \"{name}\""))?;
        let mut updated = stored.clone();
        updated.status = pod.status.clone();
        truncate_pod_status(&mut updated);
        if updated == stored {
            return Ok(stored);
        }
        updated.metadata.resource_version = Some(state.next_resource_version());
        if origin == Origin::Controller {
            let pod_key = format!("{namespace}/{name}");
            let node = pod_node(&updated);
            if pod_condition_status(&updated, "Ready") == Some("False")
                && pod_condition_status(&stored, "Ready") != Some("False")
            {
                let kind = EntryKind::PodNotReady {
                    pod: pod_key.clone(),
                    node: node.clone(),
                };
                self.record_locked(state, kind);
            }
            if pod_condition_status(&updated, "DisruptionTarget") == Some("True")
                && pod_condition_status(&stored, "DisruptionTarget") != Some("True")
            {
                let kind = EntryKind::PodDisruptionTarget { pod: pod_key, node };
                self.record_locked(state, kind);
            }
        }
        let stored = Arc::new(StoredPod::new(updated.clone(), &mut state.sharing));
        state.pods.insert(key, Arc::clone(&stored));
        state
            .pod_watchers
            .deliver(Some(&namespace), Event::Apply(stored));
        Ok(updated)
    }

    /// Applies `change` to the stored pod's metadata and spec (the world's edits).
    pub fn update_pod(
        &self,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&mut Pod),
    ) -> Result<Pod> {
        let mut state = self.lock();
        let key = (namespace.to_string(), name.to_string());
        let stored = stored(&state, &key)?.to_pod();
        let mut updated = stored.clone();
        change(&mut updated);
        updated.metadata = merge_metadata(&stored.metadata, &updated.metadata);
        updated.status = stored.status.clone();
        if updated == stored {
            return Ok(stored);
        }
        updated.metadata.resource_version = Some(state.next_resource_version());
        let stored = Arc::new(StoredPod::new(updated.clone(), &mut state.sharing));
        state.pods.insert(key, Arc::clone(&stored));
        state
            .pod_watchers
            .deliver(Some(namespace), Event::Apply(stored));
        Ok(updated)
    }

    fn remove_pod_locked(&self, state: &mut State, key: &Key) {
        let Some(pod) = state.pods.remove(key) else {
            return;
        };
        state.resource_version += 1;
        let gone = Arc::new(pod.at_version(state.resource_version));
        state
            .pod_watchers
            .deliver(Some(&key.0), Event::Delete(gone));
    }

    fn stored_pod_with_uid(state: &State, key: &Key, uid: &str) -> Result<Arc<StoredPod>> {
        let pod = Arc::clone(stored(state, key)?);
        if !uid.is_empty() && pod.uid() != Some(uid) {
            return Err(ApiError::Conflict(format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                pod.uid().unwrap_or("")
            )));
        }
        Ok(pod)
    }

    /// DELETE with a UID precondition (an empty `uid` means none); the pod goes at once.
    pub fn delete_pod(&self, namespace: &str, name: &str, uid: &str, origin: Origin) -> Result<()> {
        let mut state = self.lock();
        let key = (namespace.to_string(), name.to_string());
        let pod = Self::stored_pod_with_uid(&state, &key, uid)?;
        self.remove_pod_locked(&mut state, &key);
        if origin == Origin::Controller {
            state.budgets.disrupted(key.clone(), &pod);
            let kind = EntryKind::PodDeleted {
                pod: format!("{namespace}/{name}"),
                node: pod.node_name().to_string(),
                via: "delete".to_string(),
            };
            self.record_locked(&mut state, kind);
        }
        Ok(())
    }

    /// POST pods/{name}/eviction (policy/v1) with a UID precondition.
    pub fn evict_pod(&self, namespace: &str, name: &str, uid: &str) -> Result<()> {
        let mut state = self.lock();
        let key = (namespace.to_string(), name.to_string());
        let pod = Self::stored_pod_with_uid(&state, &key, uid)?;
        let pod_key = format!("{namespace}/{name}");
        let node = pod.node_name().to_string();
        if let Err((error, reason)) = state.budgets.verdict(&state.pods, namespace, &pod) {
            let kind = EntryKind::PodEvictionRefused {
                pod: pod_key,
                node,
                reason,
            };
            self.record_locked(&mut state, kind);
            return Err(error);
        }
        self.remove_pod_locked(&mut state, &key);
        state.budgets.disrupted(key, &pod);
        let kind = EntryKind::PodDeleted {
            pod: pod_key,
            node,
            via: "eviction".to_string(),
        };
        self.record_locked(&mut state, kind);
        Ok(())
    }
}
