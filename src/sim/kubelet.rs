//! Simulated kubelets: Lease renewals and node status posts, on a per-node phase drawn from the
//! seed, and their recovery from an API server that hangs or restarts: a renewal that fails or
//! times out is retried with a doubling backoff, one in flight when a hang ends lands then.

use super::scenario::{Heartbeat, KubeletConfig};
use super::store::{ApiState, Store};
use crate::cluster::ApiError;
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Node, NodeCondition, NodeStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time};
use std::time::Duration;

/// The namespace of node Leases (the kubelet's, whatever the controller is told to watch).
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
/// The kubelet's default `nodeLeaseDurationSeconds`.
const LEASE_DURATION_SECONDS: i32 = 40;
/// How long a kubelet waits for an answer to a heartbeat (its heartbeat client's timeout:
/// the status update frequency, 10 s, capped by the Lease duration).
pub const REQUEST_TIMEOUT_MS: u64 = 10_000;
/// The Lease controller's retry backoff: 200 ms after the first failure, doubling up to 7 s.
pub const FIRST_RETRY_MS: u64 = 200;
pub const MAX_RETRY_MS: u64 = 7_000;

/// The condition types a kubelet posts, in the order nodes show them.
pub const KUBELET_CONDITIONS: [&str; 4] =
    ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// splitmix64: a small, well-mixed deterministic generator step.
pub fn splitmix64(state: u64) -> u64 {
    let mut z = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a over the name, so a node's phase does not depend on the order nodes are listed.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A phase in `1..=interval_ms`, from the seed, the node's name and a salt.
pub fn phase_ms(seed: u64, name: &str, salt: u64, interval_ms: u64) -> u64 {
    let r = splitmix64(splitmix64(seed ^ name_hash(name)) ^ salt);
    1 + r % interval_ms.max(1)
}

pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Reason and message a kubelet gives a condition of this type and status.
pub fn condition_text(type_: &str, status: &str) -> (&'static str, &'static str) {
    match (type_, status) {
        ("Ready", "True") => ("KubeletReady", "kubelet is posting ready status"),
        ("Ready", "False") => (
            "KubeletNotReady",
            "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady",
        ),
        ("Ready", _) => ("NodeStatusUnknown", "Kubelet stopped posting node status."),
        ("MemoryPressure", "True") => (
            "KubeletHasInsufficientMemory",
            "kubelet has insufficient memory available",
        ),
        ("MemoryPressure", _) => (
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        ("DiskPressure", "True") => ("KubeletHasDiskPressure", "kubelet has disk pressure"),
        ("DiskPressure", _) => ("KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "True") => (
            "KubeletHasInsufficientPID",
            "kubelet has insufficient PID available",
        ),
        ("PIDPressure", _) => (
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
        _ => ("SimulatedCondition", "set by the simulation scenario"),
    }
}

/// One node's kubelet.
#[derive(Clone, Debug)]
pub struct Kubelet {
    name: String,
    mode: Heartbeat,
    /// false after stop-heartbeat.
    running: bool,
    /// false for `ready: none` nodes until a set-condition or resume.
    posting: bool,
    /// (type, status) the kubelet reports, in order.
    conditions: Vec<(String, String)>,
    lease_interval_ms: u64,
    status_interval_ms: u64,
    report_interval_ms: u64,
    /// The next Lease action: a renewal, a retry, or the timeout of the one in flight.
    next_lease_ms: u64,
    next_status_ms: u64,
    last_report_ms: u64,
    /// A renewal held by a hung API server: the `renewTime` it was built with.
    lease_in_flight: Option<Timestamp>,
    /// The wait before the last retry; `None` once a renewal succeeds.
    lease_backoff_ms: Option<u64>,
    /// When a status sync held by a hung API server was sent.
    status_sent_ms: Option<u64>,
}

impl Kubelet {
    /// A kubelet that starts ticking at `now_ms` (ms since the start) with its seeded phases.
    pub fn new(
        name: &str,
        mode: Heartbeat,
        ready: Option<&str>,
        config: &KubeletConfig,
        seed: u64,
        now_ms: u64,
    ) -> Self {
        let lease_interval_ms = millis(config.lease_renew_interval).max(1);
        let status_interval_ms = millis(config.status_update_frequency).max(1);
        let mut conditions = Vec::new();
        if let Some(ready) = ready {
            conditions.push(("Ready".to_string(), ready.to_string()));
        }
        for type_ in &KUBELET_CONDITIONS[1..] {
            conditions.push((type_.to_string(), "False".to_string()));
        }
        Kubelet {
            name: name.to_string(),
            mode,
            running: true,
            posting: ready.is_some(),
            conditions,
            lease_interval_ms,
            status_interval_ms,
            report_interval_ms: millis(config.status_report_frequency).max(1),
            next_lease_ms: now_ms.saturating_add(phase_ms(seed, name, 1, lease_interval_ms)),
            next_status_ms: now_ms.saturating_add(phase_ms(seed, name, 2, status_interval_ms)),
            last_report_ms: now_ms,
            lease_in_flight: None,
            lease_backoff_ms: None,
            status_sent_ms: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The conditions of a node's first status, as this kubelet would post them.
    pub fn initial_conditions(
        &self,
        heartbeat: Timestamp,
        transition: Timestamp,
    ) -> Vec<NodeCondition> {
        if !self.posting {
            return Vec::new();
        }
        self.desired()
            .into_iter()
            .map(|(type_, status, reason, message)| NodeCondition {
                type_,
                status,
                reason: Some(reason.to_string()),
                message: Some(message.to_string()),
                last_heartbeat_time: Some(Time(heartbeat)),
                last_transition_time: Some(Time(transition)),
            })
            .collect()
    }

    /// When this kubelet next has something to do (ms since the start).
    pub fn next_due_ms(&self) -> Option<u64> {
        match self.mode {
            Heartbeat::Lease => Some(self.next_lease_ms.min(self.next_status_ms)),
            Heartbeat::Status => Some(self.next_status_ms),
            Heartbeat::None => None,
        }
    }

    fn desired(&self) -> Vec<(String, String, &'static str, &'static str)> {
        self.conditions
            .iter()
            .map(|(type_, status)| {
                let (reason, message) = condition_text(type_, status);
                (type_.clone(), status.clone(), reason, message)
            })
            .collect()
    }

    /// Does the periodic work due at `now_ms`.
    pub fn tick(&mut self, store: &Store, now_ms: u64) {
        if self.mode == Heartbeat::Lease && self.next_lease_ms <= now_ms {
            if self.lease_in_flight.take().is_some() {
                // Its request timed out, the API server still silent.
                self.retry_lease_later(now_ms);
            } else if self.running {
                self.attempt_lease(store, now_ms, false);
            } else {
                self.next_lease_ms = advance(self.next_lease_ms, self.lease_interval_ms, now_ms);
            }
        }
        if self.mode != Heartbeat::None && self.next_status_ms <= now_ms {
            if self.running && self.posting && !self.status_busy(now_ms) {
                self.sync_status(store, now_ms);
            }
            self.next_status_ms = advance(self.next_status_ms, self.status_interval_ms, now_ms);
        }
    }

    /// One Lease renewal; `out_of_turn` (resume-heartbeat) leaves the schedule alone when it
    /// succeeds.
    fn attempt_lease(&mut self, store: &Store, now_ms: u64, out_of_turn: bool) {
        match store.api_state() {
            ApiState::Up => {
                self.renew_lease(store, store.now());
                if self.lease_backoff_ms.take().is_some() {
                    // The Lease controller's period starts again once a sync succeeds.
                    self.next_lease_ms = now_ms.saturating_add(self.lease_interval_ms);
                } else if !out_of_turn {
                    self.next_lease_ms =
                        advance(self.next_lease_ms, self.lease_interval_ms, now_ms);
                }
            }
            ApiState::Down => self.retry_lease_later(now_ms),
            ApiState::Hung => {
                self.lease_in_flight = Some(store.now());
                self.next_lease_ms = now_ms.saturating_add(REQUEST_TIMEOUT_MS);
            }
        }
    }

    /// A renewal failed: the next attempt after the backoff.
    fn retry_lease_later(&mut self, now_ms: u64) {
        let wait = self
            .lease_backoff_ms
            .map_or(FIRST_RETRY_MS, |b| b.saturating_mul(2).min(MAX_RETRY_MS));
        self.lease_backoff_ms = Some(wait);
        self.next_lease_ms = now_ms.saturating_add(wait);
    }

    /// Whether a status sync is still waiting for its answer.
    fn status_busy(&self, now_ms: u64) -> bool {
        self.status_sent_ms
            .is_some_and(|sent| now_ms < sent.saturating_add(REQUEST_TIMEOUT_MS))
    }

    /// The status loop's work: post when a report is due or the node shows other than what the
    /// kubelet reports (e.g. the controller's Unknown mark); a failed sync waits for the next
    /// turn of the loop, a held one completes when the hang ends.
    fn sync_status(&mut self, store: &Store, now_ms: u64) {
        self.status_sent_ms = None;
        match store.api_state() {
            ApiState::Up => {
                let report_due =
                    now_ms.saturating_sub(self.last_report_ms) >= self.report_interval_ms;
                if self.mode == Heartbeat::Status || report_due || self.differs(store) {
                    self.post_status(store, now_ms);
                }
            }
            ApiState::Down => {}
            ApiState::Hung => self.status_sent_ms = Some(now_ms),
        }
    }

    /// The API server answers again after a hang: the renewal in flight lands with the
    /// `renewTime` it was built with, and a status sync in flight completes now.
    pub fn hang_ended(&mut self, store: &Store, now_ms: u64) {
        if let Some(built) = self.lease_in_flight.take() {
            self.renew_lease(store, built);
            self.lease_backoff_ms = None;
            self.next_lease_ms = now_ms.saturating_add(self.lease_interval_ms);
        }
        if self.status_busy(now_ms) {
            self.sync_status(store, now_ms);
        }
        self.status_sent_ms = None;
    }

    /// The API server went away with requests held (a restart during a hang): they fail now.
    pub fn connection_reset(&mut self, now_ms: u64) {
        if self.lease_in_flight.take().is_some() {
            self.retry_lease_later(now_ms);
        }
        self.status_sent_ms = None;
    }

    /// stop-heartbeat: no more Lease renewals or status posts (nor those in flight).
    pub fn stop(&mut self) {
        self.running = false;
        self.lease_in_flight = None;
        self.lease_backoff_ms = None;
        self.status_sent_ms = None;
    }

    /// resume-heartbeat: renews the Lease and posts Ready=True at once (as far as the API
    /// server answers), then goes on.
    pub fn resume(&mut self, store: &Store, now_ms: u64) {
        self.running = true;
        self.posting = true;
        self.set("Ready", "True");
        if self.mode == Heartbeat::Lease && self.lease_in_flight.is_none() {
            self.attempt_lease(store, now_ms, true);
        }
        self.post_now(store, now_ms);
    }

    /// A post out of the status loop's turn: at once, held, or lost with a refused request.
    fn post_now(&mut self, store: &Store, now_ms: u64) {
        match store.api_state() {
            ApiState::Up => self.post_status(store, now_ms),
            ApiState::Down => {}
            ApiState::Hung => self.status_sent_ms = Some(now_ms),
        }
    }

    /// set-condition: posts it at once and keeps reporting that status.
    pub fn set_condition(&mut self, store: &Store, type_: &str, status: &str, now_ms: u64) {
        self.posting = true;
        self.set(type_, status);
        self.post_now(store, now_ms);
    }

    fn set(&mut self, type_: &str, status: &str) {
        match self.conditions.iter_mut().find(|(t, _)| t == type_) {
            Some(c) => c.1 = status.to_string(),
            None if type_ == "Ready" => self
                .conditions
                .insert(0, (type_.to_string(), status.to_string())),
            None => self
                .conditions
                .push((type_.to_string(), status.to_string())),
        }
    }

    /// Whether the stored status differs from what the kubelet would post (heartbeats aside).
    fn differs(&self, store: &Store) -> bool {
        store
            .read_node(&self.name, |node| {
                let stored: &[NodeCondition] = node
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_deref())
                    .unwrap_or(&[]);
                self.conditions.iter().any(|(type_, status)| {
                    let (reason, message) = condition_text(type_, status);
                    match stored.iter().find(|c| &c.type_ == type_) {
                        None => true,
                        Some(c) => {
                            &c.status != status
                                || c.reason.as_deref() != Some(reason)
                                || c.message.as_deref() != Some(message)
                        }
                    }
                })
            })
            .unwrap_or(false)
    }

    /// Writes the kubelet's conditions with a new heartbeat (others' conditions are kept).
    fn post_status(&mut self, store: &Store, now_ms: u64) {
        let now = store.now();
        let desired = self.desired();
        let written = store.update_node_status(&self.name, |node: &mut Node| {
            let conditions = node
                .status
                .get_or_insert_with(NodeStatus::default)
                .conditions
                .get_or_insert_with(Vec::new);
            for (type_, status, reason, message) in desired {
                let condition = NodeCondition {
                    type_: type_.clone(),
                    status: status.clone(),
                    reason: Some(reason.to_string()),
                    message: Some(message.to_string()),
                    last_heartbeat_time: Some(Time(now)),
                    last_transition_time: Some(Time(now)),
                };
                match conditions.iter_mut().find(|c| c.type_ == type_) {
                    Some(existing) => {
                        let transition = if existing.status == status {
                            existing.last_transition_time.clone()
                        } else {
                            Some(Time(now))
                        };
                        *existing = NodeCondition {
                            last_transition_time: transition,
                            ..condition
                        };
                    }
                    None => conditions.push(condition),
                }
            }
        });
        if written.is_ok() {
            self.last_report_ms = now_ms;
        }
    }

    /// Writes the Lease with `renew_time`, the instant the renewal was built.
    fn renew_lease(&self, store: &Store, renew_time: Timestamp) {
        let now = renew_time;
        // Kubelet renewals are unconditional here: the kubelet owns its Lease.
        let renewed = store.update_lease_spec(NODE_LEASE_NAMESPACE, &self.name, |spec| {
            spec.renew_time = Some(MicroTime(now));
            spec.holder_identity = Some(self.name.clone());
            spec.lease_duration_seconds = Some(LEASE_DURATION_SECONDS);
        });
        if let Err(ApiError::NotFound(_)) = renewed {
            let _ = store.create_lease(&node_lease(&self.name, store, now));
        }
    }
}

/// The next grid point after `now_ms`.
fn advance(mut next: u64, interval: u64, now_ms: u64) -> u64 {
    while next <= now_ms {
        next = next.saturating_add(interval.max(1));
        if next == u64::MAX {
            break;
        }
    }
    next
}

/// A node's Lease as the kubelet creates it (owned by the node).
pub fn node_lease(name: &str, store: &Store, now: Timestamp) -> Lease {
    let owner = store.get_node(name).ok().and_then(|node| {
        node.metadata.uid.map(|uid| OwnerReference {
            api_version: "v1".to_string(),
            kind: "Node".to_string(),
            name: name.to_string(),
            uid,
            ..OwnerReference::default()
        })
    });
    Lease {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(NODE_LEASE_NAMESPACE.to_string()),
            owner_references: owner.map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(name.to_string()),
            lease_duration_seconds: Some(LEASE_DURATION_SECONDS),
            renew_time: Some(MicroTime(now)),
            ..LeaseSpec::default()
        }),
    }
}
