//! PodDisruptionBudgets, as the eviction subresource applies them.

use super::{Key, Store, StoredPod};
use crate::cluster::ApiError;
use crate::sim::scenario::{IntOrPercent, PdbSpec};
use std::collections::BTreeMap;
use std::sync::Arc;

fn pod_ready(pod: &StoredPod) -> bool {
    pod.condition_status("Ready") == Some("True")
}

/// `ceil(percent × total / 100)`, as Kubernetes scales a percentage with rounding up.
fn scaled_up(value: &IntOrPercent, total: i64) -> i64 {
    match value {
        IntOrPercent::Int(n) => i64::from(*n),
        IntOrPercent::Percent(p) => (i64::from(*p) * total + 99) / 100,
    }
}

/// What a PodDisruptionBudget says about evicting a pod now.
fn pdb_verdict(
    pdb: &PdbSpec,
    pods: &[&StoredPod],
    missing: usize,
    pod: &StoredPod,
) -> std::result::Result<(), String> {
    let expected = (pods.len() + missing) as i64;
    let healthy = pods
        .iter()
        .filter(|p| pod_ready(p) && !p.deleting())
        .count() as i64;
    let desired = match (&pdb.min_available, &pdb.max_unavailable) {
        (Some(min), _) => scaled_up(min, expected),
        (None, Some(max)) => (expected - scaled_up(max, expected)).max(0),
        (None, None) => 0,
    };
    let allowed = (healthy - desired).max(0);
    // policy/v1's default unhealthyPodEvictionPolicy (IfHealthyBudget): a pod that is not
    // Ready may go while the budget is met.
    if !pod_ready(pod) && healthy >= desired && desired > 0 {
        return Ok(());
    }
    if allowed > 0 {
        Ok(())
    } else {
        Err(format!(
            "DisruptionBudget {} allows no more disruptions (needs {desired} healthy pods and has {healthy} currently)",
            pdb.name
        ))
    }
}

/// The budgets, and the pods the controller removed.
#[derive(Debug, Default)]
pub(super) struct Budgets {
    specs: Vec<PdbSpec>,
    /// Pods the controller removed, with their labels: their owners would replace them, so
    /// budgets keep counting them as expected (and unhealthy) until a pod of that name returns.
    disrupted: BTreeMap<Key, BTreeMap<String, String>>,
}

impl Budgets {
    /// The controller removed this pod.
    pub(super) fn disrupted(&mut self, key: Key, pod: &StoredPod) {
        let labels = pod.labels().cloned().unwrap_or_default();
        self.disrupted.insert(key, labels);
    }

    /// A pod of this name exists again.
    pub(super) fn returned(&mut self, key: &Key) {
        self.disrupted.remove(key);
    }

    /// Whether the eviction subresource may evict `pod` (of `namespace`) now, given the pods
    /// stored: the error to answer and the reason for the timeline when not.
    pub(super) fn verdict(
        &self,
        pods: &BTreeMap<Key, Arc<StoredPod>>,
        namespace: &str,
        pod: &StoredPod,
    ) -> Result<(), (ApiError, String)> {
        let phase = pod.phase().unwrap_or("");
        if pod.deleting() || matches!(phase, "Succeeded" | "Failed" | "Pending") {
            return Ok(());
        }
        let labels = pod.labels().cloned().unwrap_or_default();
        let matching: Vec<&PdbSpec> = self
            .specs
            .iter()
            .filter(|pdb| {
                pdb.namespace == namespace
                    && pdb.selector.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
            .collect();
        match matching.as_slice() {
            [] => Ok(()),
            [pdb] => {
                let selected: Vec<&StoredPod> = pods
                    .iter()
                    .filter(|((ns, _), p)| {
                        ns == namespace && {
                            let l = p.labels();
                            pdb.selector.iter().all(|(k, v)| l.and_then(|l| l.get(k)) == Some(v))
                        }
                    })
                    .map(|(_, p)| &**p)
                    .collect();
                let missing = self
                    .disrupted
                    .iter()
                    .filter(|((ns, _), l)| {
                        ns == namespace && pdb.selector.iter().all(|(k, v)| l.get(k) == Some(v))
                    })
                    .count();
                pdb_verdict(pdb, &selected, missing, pod).map_err(|reason| {
                    (
                        ApiError::TooManyRequests(
                            "Cannot evict pod as it would violate the pod's disruption budget."
                                .to_string(),
                        ),
                        reason,
                    )
                })
            }
            _ => Err((
                ApiError::Unavailable(
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
                        .to_string(),
                ),
                "more than one PodDisruptionBudget selects the pod".to_string(),
            )),
        }
    }
}

impl Store {
    pub fn add_pdb(&self, pdb: PdbSpec) {
        self.lock().budgets.specs.push(pdb);
    }

    /// The budgets, as the scenario gave them.
    pub fn pdbs(&self) -> Vec<PdbSpec> {
        self.lock().budgets.specs.clone()
    }
}
