//! `simulate --serve` with the production controller: `controller::run` on `KubeCluster` and the
//! system clock, over real HTTP and JSON, against the simulated cluster served in real time.
//! Assertions are on the served cluster's timeline, not on logs. Real time is unavoidable here;
//! bounds are generous.

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::core::WatchEvent;
use node_lifecycle_controller::clock::SystemClock;
use node_lifecycle_controller::cluster::{Cluster, ObjectVersion};
use node_lifecycle_controller::controller::{self, Context, NoObserver};
use node_lifecycle_controller::k8s::KubeCluster;
use node_lifecycle_controller::metrics::Metrics;
use node_lifecycle_controller::settings::Settings;
use node_lifecycle_controller::sim::scenario;
use node_lifecycle_controller::sim::serve::{self, ServeOptions};
use node_lifecycle_controller::sim::{Entry, write_jsonl};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Starts serving `scenario_text` on a free loopback port; returns the server task and a client
/// built from the kubeconfig it wrote.
async fn start(
    scenario_text: &str,
    name: &str,
    options: ServeOptions,
    retry: bool,
) -> (JoinHandle<Vec<Entry>>, kube::Client, tempdir::Dir) {
    let scenario = scenario::parse(scenario_text, name).expect("scenario parses");
    let dir = tempdir::Dir::new(name);
    let kubeconfig = dir.path().join("kubeconfig");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port");
    let path = kubeconfig.clone();
    let server = tokio::spawn(async move {
        serve::serve_on(listener, &scenario, 0, Some(&path), None, &options)
            .await
            .expect("serve")
    });
    let client = client_from(&kubeconfig, retry).await;
    (server, client, dir)
}

/// `retry`: kube's default retries of 429/503/504 (on in production); off to see raw answers.
async fn client_from(path: &Path, retry: bool) -> kube::Client {
    for _ in 0..200 {
        if path.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let kubeconfig = kube::config::Kubeconfig::read_from(path).expect("kubeconfig written");
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("kubeconfig loads");
    config.default_retry = retry;
    kube::Client::try_from(config).expect("client")
}

fn json(entries: &[Entry]) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    write_jsonl(entries, &mut out).expect("jsonl");
    String::from_utf8(out)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

fn times(tl: &[serde_json::Value], type_: &str, field: &str, value: &str) -> Vec<f64> {
    tl.iter()
        .filter(|e| e["type"] == type_ && e[field] == value)
        .map(|e| e["t"].as_f64().unwrap_or(f64::NAN))
        .collect()
}

const NODE_LOSS: &str = r#"
duration: 16s
kubelet:
  lease-renew-interval: 1s
  status-update-frequency: 1s
admission:
  default-toleration-seconds: null
nodes:
  - name: n-{0..2}
    zone: z
pods:
  - name: p-{0..2}
    node: n-{0..2}
    tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 3}
events:
  - {at: 2s, action: stop-heartbeat, nodes: [n-1]}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_production_controller_over_http_marks_taints_and_evicts_on_time() {
    let (server, client, _dir) = start(NODE_LOSS, "node-loss", ServeOptions::default(), true).await;
    let settings = Settings {
        node_monitor_period: Duration::from_secs(1),
        node_monitor_grace_period: Duration::from_secs(4),
        node_startup_grace_period: Duration::from_secs(4),
        leader_elect: true,
        leader_elect_lease_duration: Duration::from_secs(3),
        leader_elect_renew_deadline: Duration::from_secs(2),
        leader_elect_retry_period: Duration::from_millis(500),
        ..Settings::default()
    };
    let (shutdown_tx, shutdown) = tokio::sync::watch::channel(false);
    let cluster = KubeCluster::new(client, &settings.node_lease_namespace);
    let ctx = Context {
        cluster,
        clock: Arc::new(SystemClock),
        settings,
        identity: "serve-test".to_string(),
        observer: Arc::new(NoObserver),
        metrics: Arc::new(Metrics::new()),
        shutdown,
    };
    let controller = tokio::spawn(controller::run(ctx));
    let entries = tokio::time::timeout(Duration::from_secs(25), server)
        .await
        .expect("the scenario ends on time")
        .expect("server task");
    let _ = shutdown_tx.send(true);
    controller.abort();
    let tl = json(&entries);
    let dump = || {
        tl.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };

    let unknown = times(&tl, "NodeConditionsUnknown", "node", "n-1");
    assert_eq!(unknown.len(), 1, "marked Unknown once:\n{}", dump());
    // Last renewal at most 1s before the stop at 2s; grace 4s; monitor period 1s; HTTP slack.
    assert!(
        unknown[0] > 1.0 + 4.0 && unknown[0] <= 2.0 + 4.0 + 1.0 + 2.0,
        "Unknown at {}:\n{}",
        unknown[0],
        dump()
    );
    let tainted: Vec<f64> = tl
        .iter()
        .filter(|e| {
            e["type"] == "TaintAdded"
                && e["node"] == "n-1"
                && e["taint"] == "node.kubernetes.io/unreachable:NoExecute"
        })
        .map(|e| e["t"].as_f64().unwrap_or(f64::NAN))
        .collect();
    assert_eq!(tainted.len(), 1, "tainted once:\n{}", dump());
    let taint = tainted[0];
    assert!(
        taint >= unknown[0] && taint <= unknown[0] + 3.0,
        "taint at {taint}:\n{}",
        dump()
    );
    let deleted = times(&tl, "PodDeleted", "pod", "default/p-1");
    assert_eq!(deleted.len(), 1, "p-1 deleted once:\n{}", dump());
    assert!(
        deleted[0] >= taint + 3.0 && deleted[0] <= taint + 3.0 + 3.0,
        "p-1 deleted at {}, taint at {taint}:\n{}",
        deleted[0],
        dump()
    );
    // Nothing happens to the healthy nodes and their pods.
    for e in &tl {
        let node = e["node"].as_str().unwrap_or("");
        assert!(
            node.is_empty() || node == "n-1",
            "unexpected entry for a healthy node: {e}\n{}",
            dump()
        );
    }
    assert_eq!(tl.iter().filter(|e| e["type"] == "PodDeleted").count(), 1);
    let summary = tl.last().expect("summary");
    assert_eq!(summary["type"], "Summary");
    assert_eq!(summary["nodesTainted"], 1);
}

const HEARTBEATS: &str = r#"
duration: 4s
kubelet:
  lease-renew-interval: 200ms
  status-update-frequency: 200ms
nodes:
  - name: n-{0..2}
events:
  - {at: 2s, action: api-outage, duration: 1s}
"#;

fn get(path: &str) -> http::Request<Vec<u8>> {
    http::Request::get(path).body(Vec::new()).expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_resource_version_gets_410_and_an_outage_503() {
    let options = ServeOptions {
        watch_history: 5,
        ..ServeOptions::default()
    };
    let (server, client, _dir) = start(HEARTBEATS, "faults", options, false).await;

    // A watch from the current resourceVersion delivers the next change.
    let list: serde_json::Value = serde_json::from_str(
        &client
            .request_text(get(
                "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
            ))
            .await
            .expect("list leases"),
    )
    .expect("list json");
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .expect("list resourceVersion")
        .to_string();
    assert_eq!(list["items"].as_array().map(Vec::len), Some(3));
    let url = format!(
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases?watch=true&resourceVersion={rv}&timeoutSeconds=5"
    );
    let mut watch = client
        .request_events::<k8s_openapi::api::coordination::v1::Lease>(get(&url))
        .await
        .expect("watch")
        .boxed();
    let first = tokio::time::timeout(Duration::from_secs(2), watch.next())
        .await
        .expect("an event within 2s");
    assert!(
        matches!(first, Some(Ok(WatchEvent::Modified(_)))),
        "{first:?}"
    );

    // Enough renewals later, resourceVersion 1 is older than the 5 lease changes kept: 410
    // Expired, as an ERROR event (kube-apiserver's way, which makes clients re-list).
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut old = client
        .request_events::<k8s_openapi::api::coordination::v1::Lease>(get(
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases?watch=true&resourceVersion=1",
        ))
        .await
        .expect("watch answers 200 with an ERROR event")
        .boxed();
    match old.next().await {
        Some(Ok(WatchEvent::Error(status))) => {
            assert_eq!(status.code, 410);
            assert_eq!(status.reason, "Expired");
        }
        other => panic!("expected a 410 Expired error event, got {other:?}"),
    }

    // A watch open when the outage begins (at 2s) is cut; requests then answer 503.
    let mut open = client
        .request_events::<Node>(get("/api/v1/nodes?watch=true&timeoutSeconds=30"))
        .await
        .expect("watch")
        .boxed();
    let cut = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = open.next().await {}
    })
    .await;
    assert!(cut.is_ok(), "the open watch ends when the outage begins");
    match client.request_text(get("/api/v1/nodes")).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 503);
            assert_eq!(status.reason, "ServiceUnavailable");
        }
        other => panic!("expected 503 during the outage, got {other:?}"),
    }
    // After it (3s), requests work again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    client
        .request_text(get("/api/v1/nodes/n-0"))
        .await
        .expect("served again after the outage");
    // Unknown objects are 404 Status objects.
    match client.request_text(get("/api/v1/nodes/missing")).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"))
        }
        other => panic!("expected 404, got {other:?}"),
    }
    let entries = server.await.expect("server");
    assert_eq!(
        json(&entries).last().map(|e| e["type"].clone()),
        Some("Summary".into())
    );
}

/// A scratch directory removed on drop (no extra dev-dependency).
mod tempdir {
    use super::*;

    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new(name: &str) -> Self {
            let path = std::env::temp_dir().join(format!(
                "nlc-serve-{name}-{}-{:?}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos()
            ));
            std::fs::create_dir_all(&path).expect("temp dir");
            Dir(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

const STALL: &str = r#"
duration: 3500ms
kubelet:
  lease-renew-interval: 200ms
nodes:
  - name: n-0
events:
  - {at: 1s, action: stall-watch, resource: leases, duration: 1500ms}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_watch_is_silent_until_the_stall_ends_then_catches_up() {
    let started = std::time::Instant::now();
    let (server, client, _dir) = start(STALL, "stall", ServeOptions::default(), false).await;
    let url = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases?watch=true&timeoutSeconds=10";
    let mut watch = client
        .request_events::<k8s_openapi::api::coordination::v1::Lease>(get(url))
        .await
        .expect("watch")
        .boxed();
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(Duration::from_millis(3300), async {
        while let Some(Ok(event)) = watch.next().await {
            if matches!(event, WatchEvent::Modified(_)) {
                seen.push(started.elapsed().as_secs_f64());
            }
        }
    })
    .await;
    let during: Vec<f64> = seen
        .iter()
        .copied()
        .filter(|t| *t > 1.15 && *t < 2.45)
        .collect();
    assert!(during.is_empty(), "delivered during the stall: {seen:?}");
    assert!(seen.iter().any(|t| *t < 1.0), "renewals before: {seen:?}");
    assert!(seen.iter().any(|t| *t >= 2.45), "renewals after: {seen:?}");
    server.await.expect("server");
}

const SHORT: &str = r#"
duration: 3s
nodes:
  - name: n-{0..1}
pods:
  - name: p-0
    node: n-0
"#;

/// Discovery answers as kube-apiserver's (legacy) documents, so that discovery clients such as
/// kubectl or `kube::Discovery` find the served resources and their verbs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_lists_the_served_groups_resources_and_verbs() {
    let (server, client, _dir) = start(SHORT, "discovery", ServeOptions::default(), false).await;
    let discovery = kube::Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery runs without an error");
    let groups: Vec<String> = discovery.groups().map(|g| g.name().to_string()).collect();
    for wanted in [
        "",
        "coordination.k8s.io",
        "policy",
        "events.k8s.io",
        "authorization.k8s.io",
    ] {
        assert!(
            groups.iter().any(|g| g == wanted),
            "{wanted:?} in {groups:?}"
        );
    }
    let verbs = |group: &str, version: &str, kind: &str| {
        let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
        let (resource, caps) = discovery
            .resolve_gvk(&gvk)
            .unwrap_or_else(|| panic!("{gvk:?} is discovered"));
        (resource, caps.operations)
    };
    let (nodes, node_verbs) = verbs("", "v1", "Node");
    assert_eq!(nodes.plural, "nodes");
    for verb in ["get", "list", "watch", "update"] {
        assert!(
            node_verbs.iter().any(|v| v == verb),
            "nodes {verb}: {node_verbs:?}"
        );
    }
    let (_, pod_verbs) = verbs("", "v1", "Pod");
    assert!(pod_verbs.iter().any(|v| v == "delete"), "{pod_verbs:?}");
    let (leases, _) = verbs("coordination.k8s.io", "v1", "Lease");
    assert_eq!(leases.plural, "leases");
    verbs("events.k8s.io", "v1", "Event");

    // The discovered resources are the ones served: a list through the dynamic API works.
    let nodes = kube::Api::<kube::api::DynamicObject>::all_with(client.clone(), &nodes)
        .list(&Default::default())
        .await
        .expect("list nodes through discovery");
    assert_eq!(nodes.items.len(), 2);
    // An unknown group is 404, not 405.
    let unknown = client.request_text(get("/apis/example.com/v1")).await;
    assert!(
        matches!(&unknown, Err(kube::Error::Api(e)) if e.code == 404),
        "{unknown:?}"
    );
    server.await.expect("server");
}

/// The staleness guard's metadata-only lists: `Accept: ...;as=PartialObjectMetadataList` is
/// answered with names, resourceVersions and the rest of the metadata, not whole objects, and
/// they match what a full list shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_only_lists_carry_the_same_names_and_versions_as_full_lists() {
    let (server, client, _dir) = start(SHORT, "metadata", ServeOptions::default(), false).await;
    let cluster = KubeCluster::new(client.clone(), "kube-node-lease");
    let versions = |list: Vec<ObjectVersion>| -> Vec<(String, String)> {
        list.into_iter()
            .map(|v| (v.name, v.resource_version))
            .collect()
    };
    // The kubelets may post a status between two reads: compare reads taken back to back,
    // and retry when the served cluster moved in between.
    let mut matched = false;
    for _ in 0..3 {
        let meta = versions(cluster.list_node_versions().await.expect("node versions"));
        let full = kube::Api::<Node>::all(client.clone())
            .list(&Default::default())
            .await
            .expect("full node list");
        let wanted: Vec<(String, String)> = full
            .items
            .iter()
            .map(|n| {
                (
                    n.metadata.name.clone().unwrap_or_default(),
                    n.metadata.resource_version.clone().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(wanted.len(), 2);
        if meta == wanted {
            matched = true;
            break;
        }
    }
    assert!(matched, "metadata-only and full lists disagree three times");
    let leases = versions(
        cluster
            .list_lease_versions("")
            .await
            .expect("lease versions"),
    );
    assert_eq!(leases.len(), 2, "{leases:?}");

    // What travels is metadata: no spec, no status.
    let mut request = get("/api/v1/nodes");
    request.headers_mut().insert(
        http::header::ACCEPT,
        http::HeaderValue::from_static(
            "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
        ),
    );
    let raw: serde_json::Value =
        serde_json::from_str(&client.request_text(request).await.expect("metadata list"))
            .expect("json");
    assert_eq!(raw["kind"], "PartialObjectMetadataList");
    assert_eq!(raw["items"][0]["kind"], "PartialObjectMetadata");
    assert!(raw["items"][0].get("status").is_none(), "{raw}");
    assert!(raw["items"][0].get("spec").is_none(), "{raw}");
    server.await.expect("server");
}

/// `--inject-conflicts`: the first write of each kind to each Node and Pod is answered 409
/// Conflict (a Status naming the object) and not applied; the next one is served; Lease writes
/// are never refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_conflicts_refuse_the_first_write_of_each_kind_per_object() {
    let options = ServeOptions {
        inject_conflicts: true,
        ..ServeOptions::default()
    };
    let injected = options.injected_conflicts.clone();
    let (server, client, _dir) = start(SHORT, "conflicts", options, false).await;
    let nodes: kube::Api<Node> = kube::Api::all(client.clone());
    let pp = kube::api::PostParams::default();
    let mut node = nodes.get("n-0").await.expect("get n-0");
    node.metadata.resource_version = None;
    let first = nodes.replace("n-0", &pp, &node).await;
    match &first {
        Err(kube::Error::Api(e)) => {
            assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"), "{e:?}");
            assert!(e.message.contains("nodes \"n-0\""), "{e:?}");
        }
        other => panic!("the first PUT of n-0 is a conflict, got {other:?}"),
    }
    nodes
        .replace("n-0", &pp, &node)
        .await
        .expect("the second PUT is served");
    // Another kind of write to the same node, and the same kind to another node: refused once.
    assert!(nodes.replace_status("n-0", &pp, &node).await.is_err());
    nodes
        .replace_status("n-0", &pp, &node)
        .await
        .expect("the second status PUT is served");
    let mut other = nodes.get("n-1").await.expect("get n-1");
    other.metadata.resource_version = None;
    assert!(nodes.replace("n-1", &pp, &other).await.is_err());
    // A write to a missing object is still 404.
    let missing = nodes
        .replace(
            "n-9",
            &pp,
            &Node {
                metadata: kube::api::ObjectMeta {
                    name: Some("n-9".into()),
                    ..Default::default()
                },
                ..Node::default()
            },
        )
        .await;
    assert!(
        matches!(&missing, Err(kube::Error::Api(e)) if e.code == 404),
        "{missing:?}"
    );
    // Pod deletion: refused once, then served.
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(client.clone(), "default");
    let dp = kube::api::DeleteParams::default();
    assert!(pods.delete("p-0", &dp).await.is_err());
    pods.delete("p-0", &dp)
        .await
        .expect("the second DELETE is served");
    // Leases are not affected.
    let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(client.clone(), "kube-node-lease");
    let mut lease = leases.get("n-0").await.expect("get lease");
    lease.metadata.resource_version = None;
    leases
        .replace("n-0", &pp, &lease)
        .await
        .expect("lease PUT served at once");
    assert_eq!(injected.load(std::sync::atomic::Ordering::Relaxed), 4);
    server.await.expect("server");
}

/// A strategic merge patch of nodes/status (what the controller's Unknown mark sends: the
/// changed conditions only) merges them by type and keeps the others, refused with 409 (and
/// nothing changed) when the node moved past the resourceVersion it carries, applied when it is
/// current; a JSON Patch is answered 415.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conditions_patch_is_guarded_by_its_resource_version_and_merges_by_type() {
    let (server, client, _dir) = start(SHORT, "patch", ServeOptions::default(), false).await;
    let cluster = KubeCluster::new(client.clone(), "kube-node-lease");
    let nodes: kube::Api<Node> = kube::Api::all(client.clone());
    let before = nodes.get("n-0").await.expect("get n-0");
    let rv = before
        .metadata
        .resource_version
        .clone()
        .expect("a resourceVersion");
    let conditions = before
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .expect("conditions");
    assert!(conditions.len() > 1, "n-0 has several conditions");
    let mut ready = conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .expect("Ready")
        .clone();
    ready.status = "Unknown".into();
    let marked = [ready.clone()];

    let stale = (resource_version(&before.metadata) - 1).to_string();
    let refused = cluster.patch_node_conditions("n-0", &stale, &marked).await;
    assert!(
        matches!(
            &refused,
            Err(node_lifecycle_controller::cluster::ApiError::Conflict(_))
        ),
        "{refused:?}"
    );
    let unchanged = nodes.get("n-0").await.expect("get n-0");
    assert_eq!(
        unchanged.metadata.resource_version.as_deref(),
        Some(rv.as_str())
    );

    cluster
        .patch_node_conditions("n-0", &rv, &marked)
        .await
        .expect("the patch on the current version is applied");
    let after = nodes.get("n-0").await.expect("get n-0");
    let expected: Vec<_> = conditions
        .iter()
        .map(|c| {
            if c.type_ == "Ready" {
                ready.clone()
            } else {
                c.clone()
            }
        })
        .collect();
    assert_eq!(
        after.status.as_ref().and_then(|s| s.conditions.clone()),
        Some(expected),
        "Ready is the patch's, the other conditions are kept"
    );
    assert_eq!(
        after.spec, before.spec,
        "nothing outside the status changed"
    );
    assert!(resource_version(&after.metadata) > resource_version(&before.metadata));

    let request = http::Request::patch("/api/v1/nodes/n-0/status")
        .header("content-type", "application/json-patch+json")
        .body(b"[]".to_vec())
        .expect("request");
    let json_patch = client.request_text(request).await;
    assert!(
        matches!(&json_patch, Err(kube::Error::Api(e)) if e.code == 415),
        "{json_patch:?}"
    );
    server.abort();
}

/// The controller's other patches over HTTP: taints and labels (merge patches of
/// nodes/{name}) and pod conditions (a strategic merge patch of pods/{name}/status) are refused
/// with 409 and not applied when the object moved past the resourceVersion they carry, and
/// applied otherwise: the taint list whole, the labels sent added to the others, the pod's
/// Ready condition merged into its list by type, the pod's other conditions kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taint_label_and_pod_condition_patches_are_guarded_and_change_only_what_they_send() {
    use k8s_openapi::api::core::v1::{Pod, PodCondition, Taint};
    use node_lifecycle_controller::cluster::ApiError;
    let (server, client, _dir) = start(SHORT, "patches", ServeOptions::default(), false).await;
    let cluster = KubeCluster::new(client.clone(), "kube-node-lease");
    let nodes: kube::Api<Node> = kube::Api::all(client.clone());
    let pods: kube::Api<Pod> = kube::Api::namespaced(client.clone(), "default");

    let before = nodes.get("n-0").await.expect("get n-0");
    let rv = before.metadata.resource_version.clone().expect("rv");
    let stale = (resource_version(&before.metadata) - 1).to_string();
    let taint = Taint {
        key: "node.kubernetes.io/unreachable".into(),
        effect: "NoExecute".into(),
        ..Default::default()
    };
    let taints = std::slice::from_ref(&taint);
    let refused = cluster.patch_node_taints("n-0", &stale, taints).await;
    assert!(
        matches!(&refused, Err(ApiError::Conflict(_))),
        "{refused:?}"
    );
    cluster
        .patch_node_taints("n-0", &rv, taints)
        .await
        .expect("taints patched");
    let tainted = nodes.get("n-0").await.expect("get n-0");
    assert_eq!(
        tainted.spec.as_ref().and_then(|s| s.taints.clone()),
        Some(vec![taint])
    );
    assert_eq!(
        tainted.status, before.status,
        "the status is not a node patch's"
    );

    let labels = [("beta.kubernetes.io/os".to_string(), "linux".to_string())].into();
    let refused = cluster.patch_node_labels("n-0", &rv, &labels).await;
    assert!(
        matches!(&refused, Err(ApiError::Conflict(_))),
        "the taint write moved the node on: {refused:?}"
    );
    let fresh = tainted.metadata.resource_version.clone().expect("rv");
    cluster
        .patch_node_labels("n-0", &fresh, &labels)
        .await
        .expect("labels patched");
    let labelled = nodes.get("n-0").await.expect("get n-0");
    let mut expected = tainted.metadata.labels.clone().unwrap_or_default();
    expected.extend(labels);
    assert_eq!(labelled.metadata.labels, Some(expected));
    assert_eq!(labelled.spec, tainted.spec);
    cluster
        .patch_node_taints("n-0", &labelled.metadata.resource_version.unwrap(), &[])
        .await
        .expect("taints removed");
    let untainted = nodes.get("n-0").await.expect("get n-0");
    assert_eq!(untainted.spec.and_then(|s| s.taints), None);

    let pod = pods.get("p-0").await.expect("get p-0");
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.clone());
    let conditions = conditions.expect("conditions");
    assert!(conditions.len() > 1, "p-0 has several conditions");
    let not_ready = PodCondition {
        type_: "Ready".into(),
        status: "False".into(),
        ..Default::default()
    };
    let pod_rv = pod.metadata.resource_version.clone().expect("rv");
    let pod_stale = (resource_version(&pod.metadata) - 1).to_string();
    let marked = std::slice::from_ref(&not_ready);
    let refused = cluster
        .patch_pod_conditions("default", "p-0", &pod_stale, marked)
        .await;
    assert!(
        matches!(&refused, Err(ApiError::Conflict(_))),
        "{refused:?}"
    );
    cluster
        .patch_pod_conditions("default", "p-0", &pod_rv, marked)
        .await
        .expect("pod conditions patched");
    let after = pods.get("p-0").await.expect("get p-0");
    let expected: Vec<PodCondition> = conditions
        .iter()
        .map(|c| {
            if c.type_ == "Ready" {
                PodCondition {
                    status: "False".into(),
                    ..c.clone()
                }
            } else {
                c.clone()
            }
        })
        .collect();
    assert_eq!(
        after.status.and_then(|s| s.conditions),
        Some(expected),
        "Ready's status is the patch's, its other fields and the other conditions are kept"
    );
    assert_eq!(after.spec, pod.spec);
    server.abort();
}

/// `--inject-conflicts` counts a PATCH as the PUT it took the place of: the first PATCH of a
/// node (its taints or labels) and of a pod's status is refused, and a PUT of the same kind
/// after it is served, as is the PATCH retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_conflict_counts_a_patch_as_the_put_it_replaces() {
    use k8s_openapi::api::core::v1::{Pod, PodCondition};
    use node_lifecycle_controller::cluster::ApiError;
    let options = ServeOptions {
        inject_conflicts: true,
        ..ServeOptions::default()
    };
    let injected = options.injected_conflicts.clone();
    let (server, client, _dir) = start(SHORT, "patch-conflicts", options, false).await;
    let cluster = KubeCluster::new(client.clone(), "kube-node-lease");
    let nodes: kube::Api<Node> = kube::Api::all(client.clone());
    let pods: kube::Api<Pod> = kube::Api::namespaced(client.clone(), "default");
    let labels = [("x".to_string(), "1".to_string())].into();
    let rv = |n: &Node| n.metadata.resource_version.clone().expect("rv");

    let node = nodes.get("n-0").await.expect("get n-0");
    let first = cluster.patch_node_labels("n-0", &rv(&node), &labels).await;
    assert!(matches!(&first, Err(ApiError::Conflict(_))), "{first:?}");
    assert_eq!(
        nodes.get("n-0").await.expect("get n-0"),
        node,
        "not applied"
    );
    cluster
        .patch_node_labels("n-0", &rv(&node), &labels)
        .await
        .expect("the second PATCH is served");
    let mut node = nodes.get("n-0").await.expect("get n-0");
    node.metadata.resource_version = None;
    let pp = kube::api::PostParams::default();
    nodes
        .replace("n-0", &pp, &node)
        .await
        .expect("a PUT after the PATCH is served: the same kind of write");

    let pod = pods.get("p-0").await.expect("get p-0");
    let pod_rv = pod.metadata.resource_version.clone().expect("rv");
    let ready = [PodCondition {
        type_: "Ready".into(),
        status: "False".into(),
        ..Default::default()
    }];
    let first = cluster
        .patch_pod_conditions("default", "p-0", &pod_rv, &ready)
        .await;
    assert!(matches!(&first, Err(ApiError::Conflict(_))), "{first:?}");
    cluster
        .patch_pod_conditions("default", "p-0", &pod_rv, &ready)
        .await
        .expect("the second pod status PATCH is served");
    assert_eq!(injected.load(std::sync::atomic::Ordering::Relaxed), 2);
    server.abort();
}

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases";
const STREAMING_LIST: &str = "watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan\
                              &allowWatchBookmarks=true&resourceVersion=0&timeoutSeconds=10";

fn resource_version(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> u64 {
    meta.resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
        .expect("a numeric resourceVersion")
}

/// A streaming list (KEP-3157) over HTTP: every current object as ADDED, then the bookmark
/// annotated `k8s.io/initial-events-end` with the resourceVersion of that state, then the changes
/// after it, on the same watch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_list_sends_every_object_then_the_end_bookmark_then_later_changes() {
    let options = ServeOptions::default();
    let (server, client, _dir) = start(NODE_LOSS, "streaming-list", options.clone(), false).await;
    let mut watch = client
        .request_events::<k8s_openapi::api::coordination::v1::Lease>(get(&format!(
            "{LEASES}?{STREAMING_LIST}"
        )))
        .await
        .expect("watch")
        .boxed();
    let mut added = Vec::new();
    let end = loop {
        let event = tokio::time::timeout(Duration::from_secs(2), watch.next())
            .await
            .expect("an event within 2s");
        match event {
            Some(Ok(WatchEvent::Added(lease))) => added.push((
                lease.metadata.name.clone().unwrap_or_default(),
                resource_version(&lease.metadata),
            )),
            Some(Ok(WatchEvent::Bookmark(bookmark))) => break bookmark,
            other => panic!("expected ADDED events then a bookmark, got {other:?}"),
        }
    };
    let mut names: Vec<&str> = added.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["n-0", "n-1", "n-2"]);
    assert_eq!(
        end.metadata
            .annotations
            .get("k8s.io/initial-events-end")
            .map(String::as_str),
        Some("true"),
        "{:?}",
        end.metadata.annotations
    );
    let listed_at: u64 = end.metadata.resource_version.parse().expect("numeric");
    assert!(
        added.iter().all(|(_, rv)| *rv <= listed_at),
        "objects newer than the list's resourceVersion {listed_at}: {added:?}"
    );
    // The kubelets renew every second: the next renewal comes on the same watch, after it.
    let next = tokio::time::timeout(Duration::from_secs(3), watch.next())
        .await
        .expect("a change within 3s");
    match next {
        Some(Ok(WatchEvent::Modified(lease))) => {
            assert!(resource_version(&lease.metadata) > listed_at, "{lease:?}")
        }
        other => panic!("expected a MODIFIED lease, got {other:?}"),
    }
    assert_eq!(options.streamed_lists(), 1);
    server.abort();
}

fn status_of(answer: Result<String, kube::Error>) -> kube::core::Status {
    match answer {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Options that do not make a streaming list are refused as kube-apiserver refuses them: 422
/// Invalid, the parameter named in the message and in `details.causes`. With
/// `--no-watch-list` (a 1.33 server's default), `sendInitialEvents` itself is refused; legacy
/// watches are served as always.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_lists_are_refused_with_422_naming_the_parameter() {
    let (server, client, _dir) =
        start(SHORT, "watch-list-422", ServeOptions::default(), false).await;
    let no_match = "watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersion=0";
    let status = status_of(
        client
            .request_text(get(&format!("/api/v1/nodes?{no_match}")))
            .await,
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(
        status.message.contains("resourceVersionMatch"),
        "{status:?}"
    );
    let fields: Vec<_> = status
        .details
        .iter()
        .flat_map(|d| d.causes.iter().map(|c| c.field.clone()))
        .collect();
    assert_eq!(fields, ["resourceVersionMatch"]);
    server.abort();

    let options = ServeOptions {
        watch_list: false,
        ..ServeOptions::default()
    };
    let (server, client, _dir) = start(SHORT, "no-watch-list", options.clone(), false).await;
    let status = status_of(
        client
            .request_text(get(&format!("/api/v1/nodes?{STREAMING_LIST}")))
            .await,
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(status.message.contains("sendInitialEvents"), "{status:?}");
    assert!(status.message.contains("WatchList"), "{status:?}");
    assert_eq!(options.refused_watch_lists(), 1);
    assert_eq!(options.streamed_lists(), 0);
    let mut legacy = client
        .request_events::<Node>(get(
            "/api/v1/nodes?watch=true&resourceVersion=0&timeoutSeconds=5",
        ))
        .await
        .expect("a legacy watch is served")
        .boxed();
    assert!(matches!(
        legacy.next().await,
        Some(Ok(WatchEvent::Added(_)))
    ));
    server.abort();
}

fn event_names(
    events: &[Result<
        kube::runtime::watcher::Event<Node>,
        node_lifecycle_controller::cluster::ApiError,
    >],
) -> Vec<String> {
    use kube::runtime::watcher::Event;
    events
        .iter()
        .map(|e| match e {
            Ok(Event::Init) => "Init".to_string(),
            Ok(Event::InitApply(n)) => n.metadata.name.clone().unwrap_or_default(),
            Ok(Event::InitDone) => "InitDone".to_string(),
            other => format!("{other:?}"),
        })
        .collect()
}

/// `KubeCluster` with streaming lists: kube's watcher syncs from a streaming list where it is
/// served, and falls back to paged lists, without an error reaching the consumer and for every
/// later watch of the resource, where it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_cluster_watches_sync_by_streaming_list_or_fall_back_to_paged_lists() {
    use node_lifecycle_controller::cluster::Cluster;
    use node_lifecycle_controller::settings::InitialList;
    let synced = ["Init", "n-0", "n-1", "InitDone"];

    let options = ServeOptions::default();
    let (server, client, _dir) = start(SHORT, "kube-streaming", options.clone(), false).await;
    let cluster =
        KubeCluster::new(client, "kube-node-lease").with_initial_list(InitialList::Streaming);
    let events: Vec<_> = cluster.watch_nodes().take(4).collect().await;
    assert_eq!(event_names(&events), synced);
    assert_eq!(options.streamed_lists(), 1, "synced by a streaming list");
    server.abort();

    let options = ServeOptions {
        watch_list: false,
        ..ServeOptions::default()
    };
    let (server, client, _dir) = start(SHORT, "kube-fallback", options.clone(), false).await;
    let cluster =
        KubeCluster::new(client, "kube-node-lease").with_initial_list(InitialList::Streaming);
    let events: Vec<_> = cluster.watch_nodes().take(4).collect().await;
    assert_eq!(event_names(&events), synced);
    let again: Vec<_> = cluster.watch_nodes().take(4).collect().await;
    assert_eq!(event_names(&again), synced);
    assert_eq!(
        options.refused_watch_lists(),
        1,
        "asked once, then paged lists"
    );
    assert_eq!(options.streamed_lists(), 0);
    server.abort();
}
