//! A fake kubelet fleet: Nodes with zone labels and real-looking status, their Leases in
//! `kube-node-lease` renewed every [`RENEW`], pods bound to them and reported Running and Ready.
//! A kubelet can be stopped (no more renewals), resumed (renews and posts Ready at once, as a
//! restarted kubelet does) or made to report `Ready=False` while it keeps renewing.

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

/// Fields a 1.37 API server keeps that the controller's `v1_33` types do not know; planted on
/// every node and pod when the box serves them (see the "no data lost" scenario).
pub const PREEMPTION_OWNER: &str = "example.com/autoscaler";
pub const DECLARED_FEATURE: &str = "ExampleDeclaredFeature";

#[derive(Default)]
struct State {
    stopped: BTreeSet<String>,
    /// The renewTime of each node's last renewal.
    renewed: BTreeMap<String, Timestamp>,
}

pub struct Fleet {
    client: kube::Client,
    state: Arc<Mutex<State>>,
    renewer: Option<tokio::task::JoinHandle<()>>,
    new_fields: bool,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if let Some(r) = &self.renewer {
            r.abort();
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
    /// Creates the nodes (`(name, zone)`), posts their status Ready, creates and starts renewing
    /// their Leases. `new_fields`: plant the fields newer than the controller's types.
    pub async fn start(client: kube::Client, nodes: &[(&str, &str)], new_fields: bool) -> Fleet {
        let nodes: Vec<(String, String)> = nodes
            .iter()
            .map(|(n, z)| (n.to_string(), z.to_string()))
            .collect();
        let mut fleet = Fleet {
            client: client.clone(),
            state: Arc::default(),
            renewer: None,
            new_fields,
        };
        for (name, zone) in &nodes {
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
                .post_status(
                    name,
                    "True",
                    "KubeletReady",
                    "kubelet is posting ready status",
                )
                .await;
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
                .insert(name.clone(), Timestamp::now());
        }
        let state = Arc::clone(&fleet.state);
        let names: Vec<String> = nodes.iter().map(|(n, _)| n.clone()).collect();
        fleet.renewer = Some(tokio::spawn(async move {
            let leases: Api<Lease> = Api::namespaced(client, "kube-node-lease");
            // Each kubelet renews every RENEW, the fleet's kubelets spread over that period.
            let step = RENEW / names.len().max(1) as u32;
            loop {
                for name in &names {
                    tokio::time::sleep(step).await;
                    if state.lock().unwrap().stopped.contains(name) {
                        continue;
                    }
                    renew(&leases, &state, name).await;
                }
            }
        }));
        fleet
    }

    /// The kubelet of `node` stops: no more renewals. Returns its last renewal.
    pub fn stop(&self, node: &str) -> Timestamp {
        let mut state = self.state.lock().unwrap();
        state.stopped.insert(node.to_string());
        state.renewed[node]
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
        futures::future::join_all(nodes.iter().map(|n| renew(&leases, &self.state, n))).await;
    }

    /// The kubelet of `node` comes back: renews its Lease and posts Ready at once.
    pub async fn resume(&self, node: &str) {
        self.state.lock().unwrap().stopped.remove(node);
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), "kube-node-lease");
        renew(&leases, &self.state, node).await;
        self.post_status(
            node,
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
        )
        .await;
    }

    /// The kubelet keeps renewing but reports its node not ready (container runtime down).
    pub async fn report_not_ready(&self, node: &str) {
        self.post_status(
            node,
            "False",
            "KubeletNotReady",
            "container runtime is down",
        )
        .await;
    }

    /// The node's status as its kubelet posts it (a merge patch of nodes/status).
    pub async fn post_status(&self, node: &str, ready: &str, reason: &str, message: &str) {
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
        if self.new_fields {
            status["declaredFeatures"] = json!([DECLARED_FEATURE]);
        }
        let nodes: Api<Node> = Api::all(self.client.clone());
        nodes
            .patch_status(
                node,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
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

async fn renew(leases: &Api<Lease>, state: &Mutex<State>, name: &str) {
    let now = Timestamp::now();
    let patch = json!({"spec": {"renewTime": micro(now)}});
    match leases
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(_) => {
            state.lock().unwrap().renewed.insert(name.to_string(), now);
        }
        Err(e) => eprintln!("fleet: renewing the Lease of {name}: {e}"),
    }
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
