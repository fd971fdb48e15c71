//! The object seam: the controller's [`Cluster`] calls answered by the simulated store, and its
//! [`Observer`] reports recorded in the timeline. `docs/simulation.md` says why the simulator plugs in here
//! rather than at the HTTP level.

use super::store::{Origin, PatchKind, Store};
use super::timeline::EntryKind;
use crate::cache::WatchedPod;
use crate::cluster::{
    Cluster, ObjectVersion, Result, WatchStream, conditions_patch, labels_patch, taints_patch,
};
use crate::controller::Observer;
use crate::logic::actions::EventRecord;
use crate::logic::zones::ZoneState;
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, PodCondition, Taint};
use std::collections::BTreeMap;

/// The controller's view of the simulated API server: every call goes through the store's
/// semantics, waits through an API hang, fails during an API outage or restart, and is
/// recorded in the timeline when it applies.
#[derive(Clone)]
pub struct SimCluster {
    store: Store,
}

impl SimCluster {
    pub fn new(store: Store) -> Self {
        SimCluster { store }
    }

    /// The controller's PATCH of a node (or its status), held or refused like any call.
    async fn controller_patch(
        &self,
        name: &str,
        patch: &serde_json::Value,
        kind: PatchKind,
        status: bool,
    ) -> Result<()> {
        self.store.answer().await?;
        self.store
            .patch_node(name, patch, kind, status, Origin::Controller)?;
        Ok(())
    }
}

impl Cluster for SimCluster {
    async fn get_node(&self, name: &str) -> Result<Node> {
        self.store.answer().await?;
        self.store.get_node(name)
    }

    async fn list_node_versions(&self) -> Result<Vec<ObjectVersion>> {
        self.store.answer().await?;
        let versions = self.store.node_versions();
        self.store.version_list_delay().await;
        Ok(versions)
    }

    async fn patch_node_taints(
        &self,
        name: &str,
        resource_version: &str,
        taints: &[Taint],
    ) -> Result<()> {
        self.controller_patch(
            name,
            &taints_patch(resource_version, taints),
            PatchKind::Merge,
            false,
        )
        .await
    }

    async fn patch_node_labels(
        &self,
        name: &str,
        resource_version: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<()> {
        self.controller_patch(
            name,
            &labels_patch(resource_version, labels),
            PatchKind::Merge,
            false,
        )
        .await
    }

    async fn patch_node_conditions(
        &self,
        name: &str,
        resource_version: &str,
        conditions: &[NodeCondition],
    ) -> Result<()> {
        let patch = conditions_patch(resource_version, conditions);
        self.controller_patch(name, &patch, PatchKind::Strategic, true)
            .await
    }

    async fn get_pod(&self, namespace: &str, name: &str) -> Result<Pod> {
        self.store.answer().await?;
        self.store.get_pod(namespace, name)
    }

    async fn patch_pod_conditions(
        &self,
        namespace: &str,
        name: &str,
        resource_version: &str,
        conditions: &[PodCondition],
    ) -> Result<()> {
        self.store.answer().await?;
        let patch = conditions_patch(resource_version, conditions);
        self.store.patch_pod_status(
            namespace,
            name,
            &patch,
            PatchKind::Strategic,
            Origin::Controller,
        )?;
        Ok(())
    }

    async fn delete_pod(&self, namespace: &str, name: &str, uid: &str) -> Result<()> {
        self.store.answer().await?;
        self.store
            .delete_pod(namespace, name, uid, Origin::Controller)
    }

    async fn evict_pod(&self, namespace: &str, name: &str, uid: &str) -> Result<()> {
        self.store.answer().await?;
        self.store.evict_pod(namespace, name, uid)
    }

    async fn list_lease_versions(&self, namespace: &str) -> Result<Vec<ObjectVersion>> {
        self.store.answer().await?;
        let versions = self.store.lease_versions(namespace);
        self.store.version_list_delay().await;
        Ok(versions)
    }

    async fn get_lease(&self, namespace: &str, name: &str) -> Result<Lease> {
        self.store.answer().await?;
        self.store.get_lease(namespace, name)
    }

    async fn create_lease(&self, lease: &Lease) -> Result<Lease> {
        self.store.answer().await?;
        self.store.create_lease(lease)
    }

    async fn replace_lease(&self, lease: &Lease) -> Result<Lease> {
        self.store.answer().await?;
        self.store.replace_lease(lease)
    }

    async fn create_event(&self, event: &EventRecord, _now: Timestamp) -> Result<()> {
        self.store.answer().await?;
        self.store.create_event(event);
        Ok(())
    }

    fn watch_nodes(&self) -> WatchStream<Node> {
        self.store.watch_nodes()
    }

    fn watch_leases(&self, namespace: &str) -> WatchStream<Lease> {
        self.store.watch_leases(namespace)
    }

    fn watch_pods(&self) -> WatchStream<WatchedPod> {
        self.store.watch_pods_as(|p| WatchedPod::from(p.to_pod()))
    }

    /// Lets every task woken at this virtual instant run first: the world writes at the very
    /// instant a controller timer fires, and the watch forwarders pass those writes on. Four
    /// scheduler rounds: world step, forwarders, and a chained write and its forwarding (the
    /// golden timelines depend on it).
    async fn caught_up(&self) {
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
    }
}

/// Records the controller's zone state changes in the timeline.
pub struct SimHooks {
    store: Store,
}

impl SimHooks {
    pub fn new(store: Store) -> Self {
        SimHooks { store }
    }
}

impl Observer for SimHooks {
    fn zone_state(&self, zone: &str, state: ZoneState) {
        if state != ZoneState::Initial {
            self.store.record(EntryKind::ZoneState {
                zone: zone.to_string(),
                state: state.as_str().to_string(),
            });
        }
    }

    fn suspicion(&self, check: &'static str, detail: Option<&str>) {
        self.store.record(EntryKind::SuspectedMisconfiguration {
            check: check.to_string(),
            detail: detail.unwrap_or_default().to_string(),
        });
    }

    fn watch_stale(&self, resource: &'static str, stale: bool) {
        self.store.watch_judged(resource, stale);
    }
}
