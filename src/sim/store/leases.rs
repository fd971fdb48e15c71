//! Leases: the kubelets' node Leases and the controller's leader Lease.

use super::{State, Store, admit_create, check_preconditions, merge_metadata, version_of};
use crate::cluster::{ApiError, ObjectVersion, Result};
use crate::logic::time::truncate_to_second;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::watcher::Event;

impl Store {
    pub fn create_lease(&self, lease: &Lease) -> Result<Lease> {
        let mut state = self.lock();
        let mut lease = lease.clone();
        let key = admit_create(
            &mut state,
            &mut lease.metadata,
            "leases.coordination.k8s.io",
            |st, k| st.leases.contains_key(k),
        )?;
        let namespace = key.0.clone();
        lease.metadata.creation_timestamp = Some(Time(truncate_to_second(self.now())));
        state.leases.insert(key, lease.clone());
        state
            .lease_watchers
            .deliver_created(Some(&namespace), lease.clone());
        Ok(lease)
    }

    pub fn get_lease(&self, namespace: &str, name: &str) -> Result<Lease> {
        self.lock()
            .leases
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
            .ok_or_else(|| {
                ApiError::NotFound(format!("leases.coordination.k8s.io \"{name}\" not found"))
            })
    }

    /// Every Lease's name and resourceVersion in `namespace` (a metadata-only list).
    pub fn lease_versions(&self, namespace: &str) -> Vec<ObjectVersion> {
        self.lock()
            .leases
            .iter()
            .filter(|((ns, _), _)| ns == namespace)
            .map(|(_, l)| version_of(l))
            .collect()
    }

    /// PUT, guarded by resourceVersion (and UID when given).
    pub fn replace_lease(&self, lease: &Lease) -> Result<Lease> {
        let mut state = self.lock();
        self.write_lease(&mut state, lease)
    }

    /// Applies `change` to the stored Lease's spec, unconditionally (a kubelet renewing its
    /// own): a PUT of the Lease as stored with that change, made in place (at 10 000 nodes,
    /// renewals are a thousand writes a second).
    pub fn update_lease_spec(
        &self,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&mut LeaseSpec),
    ) -> Result<()> {
        let mut state = self.lock();
        let state = &mut *state;
        let key = (namespace.to_string(), name.to_string());
        let lease = state.leases.get_mut(&key).ok_or_else(|| {
            ApiError::NotFound(format!("leases.coordination.k8s.io \"{name}\" not found"))
        })?;
        let before = lease.spec.clone();
        change(lease.spec.get_or_insert_with(LeaseSpec::default));
        if lease.spec == before {
            return Ok(());
        }
        state.resource_version += 1;
        lease.metadata.resource_version = Some(state.resource_version.to_string());
        let updated = lease.clone();
        state
            .lease_watchers
            .deliver(Some(namespace), Event::Apply(updated));
        Ok(())
    }

    fn write_lease(&self, state: &mut State, lease: &Lease) -> Result<Lease> {
        let name = lease.metadata.name.clone().unwrap_or_default();
        let namespace = lease
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let key = (namespace.clone(), name.clone());
        let stored = state.leases.get(&key).ok_or_else(|| {
            ApiError::NotFound(format!("leases.coordination.k8s.io \"{name}\" not found"))
        })?;
        check_preconditions(
            &stored.metadata,
            &lease.metadata,
            &format!("leases.coordination.k8s.io \"{name}\""),
        )?;
        let mut updated = Lease {
            metadata: merge_metadata(&stored.metadata, &lease.metadata),
            spec: lease.spec.clone(),
        };
        if updated == *stored {
            return Ok(stored.clone());
        }
        updated.metadata.resource_version = Some(state.next_resource_version());
        state.leases.insert(key, updated.clone());
        state
            .lease_watchers
            .deliver(Some(&namespace), Event::Apply(updated.clone()));
        Ok(updated)
    }
}
