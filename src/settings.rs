//! Validated controller settings as plain data.
//!
//! The decision core and the loops read these; `config.rs` builds them from the command line
//! (or a scenario's `controller:` block) and is the only place that validates them.

use std::time::Duration;

/// How pods are removed once their toleration window is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvictionMode {
    /// DELETE the pod (upstream's behaviour).
    Delete,
    /// POST a policy/v1 Eviction, so PodDisruptionBudgets are honoured.
    Evict,
}

/// How a watch gets the full state it starts from (and re-lists after a 410 Gone).
///
/// A setting of `run`'s connection to the API server, not of the controller's behaviour:
/// `simulate` has no HTTP, so it is not part of [`Settings`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InitialList {
    /// Paginated lists (pages of 500, one request after another), then a watch.
    #[default]
    Paged,
    /// A streaming list (KEP-3157 "WatchList"): one watch that sends the current objects, then
    /// goes on with the changes, so that decoding overlaps with the server's encoding. Falls
    /// back to `Paged` where the API server refuses it.
    Streaming,
}

/// Every behaviour setting of the controller, with upstream's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub node_monitor_period: Duration,
    pub node_monitor_grace_period: Duration,
    pub node_startup_grace_period: Duration,
    pub node_eviction_rate: f64,
    pub secondary_node_eviction_rate: f64,
    pub large_cluster_size_threshold: u32,
    pub unhealthy_zone_threshold: f64,
    pub leader_elect: bool,
    pub leader_elect_lease_duration: Duration,
    pub leader_elect_renew_deadline: Duration,
    pub leader_elect_retry_period: Duration,
    pub leader_elect_resource_name: String,
    pub leader_elect_resource_namespace: String,
    pub node_lease_namespace: String,
    pub dry_run: bool,
    pub eviction_mode: EvictionMode,
    /// `None`: the breaker is off (the default).
    pub max_unhealthy_fraction: Option<f64>,
}

/// Period of the NoExecute tainting pass (upstream's hard-coded `NodeEvictionPeriod`).
pub const NODE_EVICTION_PERIOD: Duration = Duration::from_millis(100);

impl Default for Settings {
    fn default() -> Self {
        Settings {
            node_monitor_period: Duration::from_secs(5),
            node_monitor_grace_period: Duration::from_secs(50),
            node_startup_grace_period: Duration::from_secs(60),
            node_eviction_rate: 0.1,
            secondary_node_eviction_rate: 0.01,
            large_cluster_size_threshold: 50,
            unhealthy_zone_threshold: 0.55,
            leader_elect: true,
            leader_elect_lease_duration: Duration::from_secs(15),
            leader_elect_renew_deadline: Duration::from_secs(10),
            leader_elect_retry_period: Duration::from_secs(2),
            leader_elect_resource_name: "node-lifecycle-controller".to_string(),
            leader_elect_resource_namespace: "kube-system".to_string(),
            node_lease_namespace: "kube-node-lease".to_string(),
            dry_run: false,
            eviction_mode: EvictionMode::Delete,
            max_unhealthy_fraction: None,
        }
    }
}

/// How often a kubelet renews its Lease by default (a quarter of its 40 s lease duration).
pub const KUBELET_LEASE_RENEW: Duration = Duration::from_secs(10);

impl Settings {
    /// Settings that are allowed but unusual enough to say so at start: each would make the
    /// controller do something an operator may not expect. Values that can only be mistakes
    /// are refused by the command line's validation instead.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.node_monitor_grace_period < 2 * KUBELET_LEASE_RENEW {
            w.push(format!(
                "--node-monitor-grace-period={} is shorter than two Lease renewals of a default \
                 kubelet (every 10s): one late renewal marks a healthy node Unknown",
                humantime::format_duration(self.node_monitor_grace_period)
            ));
        }
        if self.node_lease_namespace != "kube-node-lease" {
            w.push(format!(
                "--node-lease-namespace={} is not where kubelets renew their Leases \
                 (kube-node-lease); if no node has a Lease there, nothing is marked Unknown",
                self.node_lease_namespace
            ));
        }
        if self.node_eviction_rate == 0.0 {
            w.push(
                "--node-eviction-rate=0: no node of a healthy zone is ever tainted NoExecute, \
                 so no pod leaves a failed node"
                    .to_string(),
            );
        }
        if self.max_unhealthy_fraction == Some(0.0) {
            w.push(
                "--max-unhealthy-fraction=0: the first node that is not Ready pauses all \
                 NoExecute tainting"
                    .to_string(),
            );
        }
        if self.unhealthy_zone_threshold == 0.0 {
            w.push(
                "--unhealthy-zone-threshold=0: a zone with 3 not-Ready nodes counts as \
                 disrupted, however large it is"
                    .to_string(),
            );
        }
        if !self.leader_elect {
            w.push(
                "--leader-elect=false: run exactly one replica, and switch off the built-in \
                 controllers first; two acting at once double every write"
                    .to_string(),
            );
        }
        w
    }
}

#[cfg(test)]
mod warning_tests {
    use super::*;

    #[test]
    fn the_defaults_raise_no_warning() {
        assert!(Settings::default().warnings().is_empty());
    }

    #[test]
    fn unusual_settings_are_each_named_in_a_warning() {
        let s = Settings {
            node_monitor_grace_period: Duration::from_secs(15),
            node_lease_namespace: "kube-system".into(),
            node_eviction_rate: 0.0,
            max_unhealthy_fraction: Some(0.0),
            unhealthy_zone_threshold: 0.0,
            leader_elect: false,
            ..Settings::default()
        };
        let w = s.warnings().join("\n");
        for flag in [
            "--node-monitor-grace-period=15s",
            "--node-lease-namespace=kube-system",
            "--node-eviction-rate=0",
            "--max-unhealthy-fraction=0",
            "--unhealthy-zone-threshold=0",
            "--leader-elect=false",
        ] {
            assert!(w.contains(flag), "{flag} missing in:\n{w}");
        }
    }
}
