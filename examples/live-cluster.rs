//! A small live cluster on a real API server, for trying the controller without real nodes:
//! the real-cluster tier's fake kubelet fleet (`tests/real_cluster/fleet.rs`) made a program.
//! Against the cluster of `KUBECONFIG` (a box from `tests/kube-box/live-cluster.sh`), it
//! creates six Nodes in two zones (`box/zone-a`: a-0..a-2, `box/zone-b`: b-0..b-2) whose
//! kubelets renew their Leases every 10 s, and two pods per node in namespace `shop`, bound
//! and reported Running and Ready. A kubelet is stopped and started on request, with an
//! annotation on its Node (polled every second):
//!
//!   kubectl annotate --overwrite node a-1 live-cluster/kubelet=stopped     # no more renewals
//!   kubectl annotate --overwrite node a-1 live-cluster/kubelet=not-ready   # renews, Ready=False
//!   kubectl annotate --overwrite node a-1 live-cluster/kubelet=running     # back, Ready
//!
//! Runs until SIGINT or SIGTERM. Prints `live-cluster: ready` once everything is there.

#[allow(dead_code)]
#[path = "../tests/real_cluster/fleet.rs"]
mod fleet;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};
use std::collections::BTreeMap;
use std::time::Duration;

const ANNOTATION: &str = "live-cluster/kubelet";
const NODES: [(&str, &str); 6] = [
    ("a-0", "zone-a"),
    ("a-1", "zone-a"),
    ("a-2", "zone-a"),
    ("b-0", "zone-b"),
    ("b-1", "zone-b"),
    ("b-2", "zone-b"),
];

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match live().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("live-cluster: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn live() -> Result<(), String> {
    let client = kube::Client::try_default().await.map_err(|e| {
        format!(
            "no cluster (KUBECONFIG={:?}): {e}",
            std::env::var("KUBECONFIG").unwrap_or_default()
        )
    })?;
    let fleet = fleet::Fleet::start(client.clone(), &NODES, false).await;
    for (node, _) in NODES {
        for i in 0..2 {
            fleet
                .add_pod(
                    "shop",
                    &format!("web-{node}-{i}"),
                    node,
                    serde_json::json!([]),
                )
                .await;
        }
    }
    println!(
        "live-cluster: ready: 6 nodes in zones box/zone-a (a-0..a-2) and box/zone-b (b-0..b-2), \
         kubelets renewing every 10s, 12 pods Running in namespace shop; stop a kubelet with \
         `kubectl annotate --overwrite node a-1 {ANNOTATION}=stopped` (or not-ready, running)"
    );
    let nodes: Api<Node> = Api::all(client);
    let mut state: BTreeMap<String, String> = NODES
        .iter()
        .map(|(n, _)| (n.to_string(), "running".to_string()))
        .collect();
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("SIGTERM handler: {e}"))?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = sigterm.recv() => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let Ok(list) = nodes.list(&ListParams::default()).await else {
            continue;
        };
        for node in list.items {
            let name = node.metadata.name.clone().unwrap_or_default();
            let Some(was) = state.get(&name).cloned() else {
                continue;
            };
            let wanted = node
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ANNOTATION))
                .cloned()
                .unwrap_or_else(|| "running".into());
            if wanted == was {
                continue;
            }
            match wanted.as_str() {
                "stopped" => {
                    fleet.stop(&name);
                }
                "not-ready" => {
                    if was == "stopped" {
                        fleet.resume(&name).await;
                    }
                    fleet.report_not_ready(&name).await;
                }
                "running" => fleet.resume(&name).await,
                other => {
                    eprintln!(
                        "live-cluster: {name}: {ANNOTATION}={other} is not stopped, not-ready or running; ignored"
                    );
                    state.insert(name, other.to_string());
                    continue;
                }
            }
            println!("live-cluster: the kubelet of {name} is {wanted}");
            state.insert(name, wanted);
        }
    }
    println!("live-cluster: stopped");
    Ok(())
}
