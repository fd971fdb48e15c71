//! A fake kubelet fleet: Nodes with zone labels and real-looking status, their Leases in
//! `kube-node-lease`, pods bound to them and reported Running and Ready. Each kubelet is a task
//! of its own that behaves as a kubelet does when the API server hangs or goes away: its Lease
//! renewed every [`RENEW`], each request bounded by [`REQUEST_TIMEOUT`], a failed renewal retried
//! with backoff from [`BACKOFF_START`] doubling to [`BACKOFF_MAX`] (each attempt carries the
//! renewTime it was built with, so one held by a frozen server lands late with an old time), and
//! a status loop every [`STATUS_EVERY`] that restores its own Ready condition when the node shows
//! one it did not write (the controller's Unknown mark). A kubelet can be stopped (no more
//! renewals or status), resumed (renews and posts Ready at once, as a restarted kubelet does) or
//! made to report `Ready=False` while it keeps renewing.

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ServiceAccount};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often a kubelet renews its Lease (kubelet's default).
pub const RENEW: Duration = Duration::from_secs(10);
/// How long a kubelet waits for one request before giving up on it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A failed renewal is retried after this, doubling up to [`BACKOFF_MAX`] (kubelet's lease
/// controller's backoff).
pub const BACKOFF_START: Duration = Duration::from_millis(200);
pub const BACKOFF_MAX: Duration = Duration::from_secs(7);
/// How often a kubelet compares the node's status with its own (`nodeStatusUpdateFrequency`).
pub const STATUS_EVERY: Duration = Duration::from_secs(10);

/// Fields a 1.37 API server keeps that the controller's `v1_33` types do not know; planted on
/// every node and pod when the box serves them (see the "no data lost" scenario).
pub const PREEMPTION_OWNER: &str = "example.com/autoscaler";
pub const DECLARED_FEATURE: &str = "ExampleDeclaredFeature";

/// The Ready condition a kubelet reports: status, reason, message.
type Report = (&'static str, &'static str, &'static str);
const READY: Report = ("True", "KubeletReady", "kubelet is posting ready status");
const NOT_READY_REPORT: Report = ("False", "KubeletNotReady", "container runtime is down");

#[derive(Default)]
struct State {
    stopped: BTreeSet<String>,
    /// The renewTime of each node's last renewal that the server answered.
    renewed: BTreeMap<String, Timestamp>,
    /// The renewTime of a renewal sent and not answered yet.
    in_flight: BTreeMap<String, Timestamp>,
    /// What each kubelet reports as its Ready condition.
    reporting: BTreeMap<String, Report>,
    /// Renewal attempts that failed or timed out, and the last error.
    failed_renewals: u64,
    last_error: Option<String>,
    /// Renewals answered more than a second after they were built (held by a hung server),
    /// and the oldest renewTime such a renewal carried, in seconds before it landed.
    landed_late: u64,
    oldest_landing: f64,
    /// Times a kubelet found a Ready condition it had not written and posted its own.
    restores: Vec<(String, Timestamp)>,
}

pub struct Fleet {
    client: kube::Client,
    state: Arc<Mutex<State>>,
    kubelets: Vec<tokio::task::JoinHandle<()>>,
    new_fields: bool,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for k in &self.kubelets {
            k.abort();
        }
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.failed_renewals > 0 {
            eprintln!(
                "fleet: {} Lease renewals failed or timed out (last: {})",
                state.failed_renewals,
                state.last_error.as_deref().unwrap_or_default()
            );
        }
    }
}

/// RFC 3339 with microseconds, as a MicroTime.
pub fn micro(t: Timestamp) -> String {
    format!("{t:.6}")
}

/// RFC 3339 in whole seconds, as a metav1.Time.
pub fn secs(t: Timestamp) -> String {
    format!("{:.0}", t.round(jiff::Unit::Second).unwrap_or(t))
}

fn ready_conditions(ready: &str, reason: &str, message: &str, now: Timestamp) -> Value {
    let hb = secs(now);
    let cond = |type_: &str, status: &str, reason: &str, message: &str| {
        json!({"type": type_, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": hb, "lastTransitionTime": hb})
    };
    json!([
        cond(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available"
        ),
        cond(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure"
        ),
        cond(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available"
        ),
        cond("Ready", ready, reason, message),
    ])
}

impl Fleet {
    /// Creates the nodes (`(name, zone)`), posts their status Ready, creates their Leases and
    /// starts each one's kubelet, their renewals spread over [`RENEW`].
    /// `new_fields`: plant the fields newer than the controller's types.
    pub async fn start(client: kube::Client, nodes: &[(&str, &str)], new_fields: bool) -> Fleet {
        let mut fleet = Fleet {
            client: client.clone(),
            state: Arc::default(),
            kubelets: Vec::new(),
            new_fields,
        };
        for (i, (name, zone)) in nodes.iter().enumerate() {
            let mut spec = json!({});
            if new_fields {
                spec["podPreemptionPolicy"] =
                    json!({"disableResizePreemption": [PREEMPTION_OWNER]});
            }
            let node: Node = serde_json::from_value(json!({
                "metadata": {"name": name, "labels": {
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "topology.kubernetes.io/zone": zone,
                    "topology.kubernetes.io/region": "box",
                }},
            }))
            .expect("node");
            // Created from JSON so that fields the typed Node lacks reach the server.
            let mut body = serde_json::to_value(&node).expect("node json");
            body["spec"] = spec;
            create_raw(&client, "/api/v1/nodes", &body).await;
            fleet
                .state
                .lock()
                .unwrap()
                .reporting
                .insert(name.to_string(), READY);
            fleet.post(name, READY).await;
            let lease = json!({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": name, "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                         "renewTime": micro(Timestamp::now())},
            });
            create_raw(
                &client,
                "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                &lease,
            )
            .await;
            fleet
                .state
                .lock()
                .unwrap()
                .renewed
                .insert(name.to_string(), Timestamp::now());
            // Started as soon as its node exists, the first renewal within RENEW of the Lease's
            // creation however long the rest of the fleet takes; spread so that the fleet's
            // renewals do not all come at once.
            let offset = RENEW.mul_f64(i as f64 / nodes.len() as f64);
            fleet.kubelets.push(tokio::spawn(kubelet(
                client.clone(),
                Arc::clone(&fleet.state),
                name.to_string(),
                offset,
                new_fields,
            )));
        }
        fleet
    }

    /// The kubelet of `node` stops: no more renewals or status. Returns its last renewal (the
    /// one in flight, if one is: on a healthy server it lands a moment later).
    pub fn stop(&self, node: &str) -> Timestamp {
        let mut state = self.state.lock().unwrap();
        state.stopped.insert(node.to_string());
        let renewed = state.renewed[node];
        state
            .in_flight
            .get(node)
            .map_or(renewed, |&t| t.max(renewed))
    }

    /// The kubelets of `nodes` renew once more, together, then stop: their grace periods end
    /// together, so that they are marked in the same monitor pass.
    pub async fn stop_together(&self, nodes: &[&str]) {
        self.state
            .lock()
            .unwrap()
            .stopped
            .extend(nodes.iter().map(|n| n.to_string()));
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), "kube-node-lease");
        let renewals = nodes.iter().map(|n| renew(&leases, &self.state, n, true));
        for (n, outcome) in nodes.iter().zip(futures::future::join_all(renewals).await) {
            assert!(
                matches!(outcome, Renewal::Renewed),
                "fleet: the last renewal of {n} failed"
            );
        }
    }

    /// The kubelet of `node` comes back: renews its Lease and posts Ready at once.
    pub async fn resume(&self, node: &str) {
        {
            let mut state = self.state.lock().unwrap();
            state.stopped.remove(node);
            state.reporting.insert(node.to_string(), READY);
        }
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), "kube-node-lease");
        renew(&leases, &self.state, node, true).await;
        self.post(node, READY).await;
    }

    /// The kubelet keeps renewing but reports its node not ready (container runtime down).
    pub async fn report_not_ready(&self, node: &str) {
        self.state
            .lock()
            .unwrap()
            .reporting
            .insert(node.to_string(), NOT_READY_REPORT);
        self.post(node, NOT_READY_REPORT).await;
    }

    /// When the kubelet of `node` last renewed its Lease (the renewTime the server took).
    pub fn last_renewal(&self, node: &str) -> Timestamp {
        self.state.lock().unwrap().renewed[node]
    }

    /// Renewal attempts that failed or timed out, fleet-wide.
    pub fn failed_renewals(&self) -> u64 {
        self.state.lock().unwrap().failed_renewals
    }

    /// Renewals that landed more than a second after they were built, and the oldest one's
    /// age when it landed (seconds).
    pub fn late_landings(&self) -> (u64, f64) {
        let s = self.state.lock().unwrap();
        (s.landed_late, s.oldest_landing)
    }

    /// The kubelets that found a Ready condition they had not written and restored their own,
    /// and when.
    pub fn restores(&self) -> Vec<(String, Timestamp)> {
        self.state.lock().unwrap().restores.clone()
    }

    async fn post(&self, node: &str, (ready, reason, message): Report) {
        post_status(&self.client, node, self.new_fields, ready, reason, message)
            .await
            .unwrap_or_else(|e| panic!("posting the status of {node}: {e}"));
    }

    /// Creates a pod bound to `node` and reports it Running and Ready. `tolerations` as JSON.
    pub async fn add_pod(&self, namespace: &str, name: &str, node: &str, tolerations: Value) {
        ensure_namespace(&self.client, namespace).await;
        let mut pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
            "spec": {
                "nodeName": node,
                "automountServiceAccountToken": false,
                "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
                "tolerations": tolerations,
            },
        });
        if self.new_fields {
            pod["spec"]["volumes"] = json!([{"name": "data", "emptyDir": {}}]);
        }
        create_raw(
            &self.client,
            &format!("/api/v1/namespaces/{namespace}/pods"),
            &pod,
        )
        .await;
        let now = secs(Timestamp::now());
        let cond = |t: &str| json!({"type": t, "status": "True", "lastTransitionTime": now});
        let mut status = json!({
            "phase": "Running",
            "conditions": [cond("PodReadyToStartContainers"), cond("Initialized"),
                           cond("ContainersReady"), cond("Ready"), cond("PodScheduled")],
            "hostIP": "10.0.0.1", "podIP": "10.1.0.1", "startTime": now,
            "containerStatuses": [{"name": "app", "ready": true, "started": true,
                "restartCount": 0, "image": "registry.k8s.io/pause:3.10", "imageID": "",
                "state": {"running": {"startedAt": now}}}],
        });
        if self.new_fields {
            status["volumeHealth"] = json!([{"name": "data", "healthConditions": [
                {"status": "Degraded", "reason": "VolumeDegraded", "message": "one replica of three is down"}]}]);
        }
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        pods.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
        .unwrap_or_else(|e| panic!("posting the status of pod {namespace}/{name}: {e}"));
    }
}

/// One kubelet: its Lease loop and its status loop, until the fleet is dropped.
async fn kubelet(
    client: kube::Client,
    state: Arc<Mutex<State>>,
    name: String,
    offset: Duration,
    new_fields: bool,
) {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let lease_loop = async {
        tokio::time::sleep(offset).await;
        loop {
            let mut backoff = BACKOFF_START;
            while let Renewal::Failed = renew(&leases, &state, &name, false).await {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            tokio::time::sleep(RENEW).await;
        }
    };
    let status_loop = async {
        // Half a period after the renewals, so that the two loops do not meet.
        tokio::time::sleep(offset + STATUS_EVERY / 2).await;
        let nodes: Api<Node> = Api::all(client.clone());
        loop {
            restore_ready(&client, &nodes, &state, &name, new_fields).await;
            tokio::time::sleep(STATUS_EVERY).await;
        }
    };
    tokio::join!(lease_loop, status_loop);
}

/// The kubelet's status loop, once: if the node's Ready condition is not the one this kubelet
/// reports (the controller marked it Unknown), it posts its own, as a kubelet's status sync
/// does when the node it reads differs from the status it computes.
async fn restore_ready(
    client: &kube::Client,
    nodes: &Api<Node>,
    state: &Mutex<State>,
    name: &str,
    new_fields: bool,
) {
    let alive = |state: &Mutex<State>| {
        let s = state.lock().unwrap();
        (!s.stopped.contains(name)).then(|| s.reporting[name])
    };
    if alive(state).is_none() {
        return;
    }
    let Ok(Ok(node)) = tokio::time::timeout(REQUEST_TIMEOUT, nodes.get(name)).await else {
        return;
    };
    let shown = node
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.status, c.reason.unwrap_or_default()));
    // Stopped meanwhile (the scenario's doing): a dead kubelet writes nothing.
    let Some((ready, reason, message)) = alive(state) else {
        return;
    };
    if shown.as_ref().map(|(s, r)| (s.as_str(), r.as_str())) == Some((ready, reason)) {
        return;
    }
    let posted = tokio::time::timeout(
        REQUEST_TIMEOUT,
        post_status(client, name, new_fields, ready, reason, message),
    )
    .await;
    if matches!(posted, Ok(Ok(()))) {
        state
            .lock()
            .unwrap()
            .restores
            .push((name.to_string(), Timestamp::now()));
    }
}

enum Renewal {
    Renewed,
    Failed,
    /// The kubelet is stopped: nothing sent.
    Stopped,
}

/// One renewal attempt: the renewTime is the time it is built, bounded by [`REQUEST_TIMEOUT`].
/// `even_if_stopped`: the scenario's own last renewal of a kubelet it stops or resumes.
async fn renew(
    leases: &Api<Lease>,
    state: &Mutex<State>,
    name: &str,
    even_if_stopped: bool,
) -> Renewal {
    let now = Timestamp::now();
    {
        let mut s = state.lock().unwrap();
        if !even_if_stopped && s.stopped.contains(name) {
            return Renewal::Stopped;
        }
        s.in_flight.insert(name.to_string(), now);
    }
    let patch = json!({"spec": {"renewTime": micro(now)}});
    let answer = tokio::time::timeout(
        REQUEST_TIMEOUT,
        leases.patch(name, &PatchParams::default(), &Patch::Merge(patch)),
    )
    .await;
    let mut s = state.lock().unwrap();
    if s.in_flight.get(name) == Some(&now) {
        s.in_flight.remove(name);
    }
    match answer {
        Ok(Ok(_)) => {
            let age = Timestamp::now().duration_since(now).as_secs_f64();
            if age > 1.0 {
                s.landed_late += 1;
                s.oldest_landing = s.oldest_landing.max(age);
            }
            let last = s.renewed.entry(name.to_string()).or_insert(now);
            *last = (*last).max(now);
            Renewal::Renewed
        }
        Ok(Err(e)) => {
            s.failed_renewals += 1;
            s.last_error = Some(format!("{name}: {e}"));
            Renewal::Failed
        }
        Err(_) => {
            s.failed_renewals += 1;
            s.last_error = Some(format!("{name}: no answer within {REQUEST_TIMEOUT:?}"));
            Renewal::Failed
        }
    }
}

/// The node's status as its kubelet posts it (a merge patch of nodes/status).
async fn post_status(
    client: &kube::Client,
    node: &str,
    new_fields: bool,
    ready: &str,
    reason: &str,
    message: &str,
) -> Result<(), kube::Error> {
    let now = Timestamp::now();
    let mut status = json!({
        "conditions": ready_conditions(ready, reason, message, now),
        "addresses": [{"type": "Hostname", "address": node}],
        "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
        "allocatable": {"cpu": "4", "memory": "16Gi", "pods": "110"},
        "nodeInfo": {"machineID": node, "systemUUID": node, "bootID": "boot",
            "kernelVersion": "6.1.0", "osImage": "Debian GNU/Linux 12 (bookworm)",
            "containerRuntimeVersion": "containerd://2.0.0", "kubeletVersion": "v1.37.2",
            "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64"},
    });
    if new_fields {
        status["declaredFeatures"] = json!([DECLARED_FEATURE]);
    }
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .patch_status(
            node,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
        .map(|_| ())
}

/// POSTs `body` as JSON to `path` (so that fields the typed structs lack are sent too).
async fn create_raw(client: &kube::Client, path: &str, body: &Value) {
    let request = http::Request::post(path)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).expect("json"))
        .expect("request");
    client
        .request_text(request)
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
}

/// The namespace and its `default` ServiceAccount (which the ServiceAccount admission plugin
/// requires and kube-controller-manager would create).
pub async fn ensure_namespace(client: &kube::Client, namespace: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if namespaces
        .get_opt(namespace)
        .await
        .expect("get namespace")
        .is_none()
    {
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": namespace}})).expect("ns");
        let _ = namespaces.create(&PostParams::default(), &ns).await;
    }
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    if sas.get_opt("default").await.expect("get sa").is_none() {
        let sa: ServiceAccount =
            serde_json::from_value(json!({"metadata": {"name": "default"}})).expect("sa");
        let _ = sas.create(&PostParams::default(), &sa).await;
    }
}

/// A toleration of `key` for `seconds` (None: forever).
pub fn tolerate(key: &str, seconds: Option<u64>) -> Value {
    let mut t = json!({"key": key, "operator": "Exists", "effect": "NoExecute"});
    if let Some(s) = seconds {
        t["tolerationSeconds"] = json!(s);
    }
    t
}

pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";

/// Tolerating both condition taints for `seconds`.
pub fn tolerate_both(seconds: Option<u64>) -> Value {
    json!([tolerate(UNREACHABLE, seconds), tolerate(NOT_READY, seconds)])
}
