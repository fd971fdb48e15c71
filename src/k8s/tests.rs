//! Request-exact tests of [`KubeCluster`] against a mock API server: a `tower::service_fn`
//! that records every request and answers from a script.

use super::KubeCluster;
use crate::cluster::{ApiError, Cluster, Priority};
use crate::logic::actions::{Component, EventRecord, EventType, ObjectRef};
use crate::settings::InitialList;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::client::Body;
use kube::runtime::watcher::Event;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// One request as the API server saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    query: String,
    accept: String,
    content_type: String,
    body: Value,
    /// The priority the request carried (`Cluster::at`).
    priority: Option<Priority>,
}

enum Reply {
    Json(u16, Value),
    Text(u16, &'static str),
    /// The connection fails: no HTTP response at all.
    Broken,
}

fn ok(body: Value) -> Reply {
    Reply::Json(200, body)
}

fn status(code: u16, reason: &str) -> Reply {
    Reply::Json(
        code,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
               "message": format!("{reason} from the mock"), "reason": reason, "code": code}),
    )
}

/// A cluster on a mock API server answering `replies` in order, and what the server saw.
/// A request header's value as text (empty when absent).
fn header<B>(req: &http::Request<B>, name: http::header::HeaderName) -> String {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn cluster(replies: Vec<Reply>) -> (KubeCluster, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let replies = Arc::new(Mutex::new(VecDeque::from(replies)));
    let log = seen.clone();
    let service = tower::service_fn(move |req: http::Request<Body>| {
        let log = log.clone();
        let replies = replies.clone();
        async move {
            let method = req.method().to_string();
            let path = req.uri().path().to_string();
            let query = req.uri().query().unwrap_or_default().to_string();
            let accept = header(&req, http::header::ACCEPT);
            let content_type = header(&req, http::header::CONTENT_TYPE);
            let priority = req.extensions().get::<Priority>().copied();
            let bytes = req.into_body().collect_bytes().await.expect("request body");
            let body = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).expect("request body is JSON")
            };
            log.lock().unwrap().push(Seen {
                method,
                path,
                query,
                accept,
                content_type,
                body,
                priority,
            });
            let reply = replies.lock().unwrap().pop_front();
            let (code, text) = match reply {
                Some(Reply::Json(code, value)) => (code, value.to_string()),
                Some(Reply::Text(code, text)) => (code, text.to_string()),
                Some(Reply::Broken) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "connection reset by mock",
                    ));
                }
                None => (500, "no reply scripted".to_string()),
            };
            let response = http::Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .body(Body::from(text.into_bytes()))
                .expect("response");
            Ok(response)
        }
    });
    let client = kube::Client::new(service, "default");
    (KubeCluster::new(client, "kube-node-lease"), seen)
}

fn only(seen: &Arc<Mutex<Vec<Seen>>>) -> Seen {
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "expected exactly one request, got {seen:#?}");
    seen[0].clone()
}

fn meta(namespace: Option<&str>, name: &str, rv: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        resource_version: Some(rv.to_string()),
        uid: Some(format!("uid-{name}")),
        ..ObjectMeta::default()
    }
}

fn node(name: &str, rv: &str) -> Node {
    Node {
        metadata: meta(None, name, rv),
        ..Node::default()
    }
}

fn pod(namespace: &str, name: &str, rv: &str) -> Pod {
    Pod {
        metadata: meta(Some(namespace), name, rv),
        ..Pod::default()
    }
}

fn lease(namespace: &str, name: &str, rv: &str) -> Lease {
    Lease {
        metadata: meta(Some(namespace), name, rv),
        ..Lease::default()
    }
}

fn to_json<T: serde::Serialize>(object: &T) -> Value {
    serde_json::to_value(object).unwrap()
}

// --- nodes ---

#[tokio::test]
async fn get_node_reads_the_named_node() {
    let (c, seen) = cluster(vec![ok(to_json(&node("n1", "5")))]);
    let got = c.get_node("n1").await.unwrap();
    assert_eq!(got.metadata.resource_version.as_deref(), Some("5"));
    let req = only(&seen);
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("GET", "/api/v1/nodes/n1")
    );
}

#[tokio::test]
async fn each_request_carries_the_priority_its_caller_sent_it_at_and_reads_otherwise() {
    let (c, seen) = cluster(vec![
        ok(to_json(&node("n1", "5"))),
        ok(to_json(&node("n1", "5"))),
        ok(to_json(&pod("ns", "p", "7"))),
        ok(to_json(&node("n1", "6"))),
    ]);
    c.get_node("n1").await.unwrap();
    c.at(Priority::NoExecute).get_node("n1").await.unwrap();
    let evictions = c.at(Priority::Evictions);
    evictions.delete_pod("ns", "p", "uid-1").await.unwrap();
    // A copy made at one priority and moved to another sends at the new one.
    evictions
        .at(Priority::NodeMarks)
        .patch_node_taints("n1", "5", &[])
        .await
        .unwrap();
    let priorities: Vec<_> = seen.lock().unwrap().iter().map(|r| r.priority).collect();
    assert_eq!(
        priorities,
        [
            Some(Priority::Reads),
            Some(Priority::NoExecute),
            Some(Priority::Evictions),
            Some(Priority::NodeMarks),
        ]
    );
}

/// What a metadata-only list of `items` looks like (kind PartialObjectMetadataList).
fn metadata_list(items: &[(&str, &str)]) -> Value {
    let items: Vec<Value> = items
        .iter()
        .map(|(name, rv)| {
            json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                   "metadata": {"name": name, "resourceVersion": rv, "labels": {"zone": "a"},
                                "managedFields": [{"manager": "kubelet"}]}})
        })
        .collect();
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList",
           "metadata": {"resourceVersion": "9"}, "items": items})
}

#[tokio::test]
async fn node_versions_come_from_a_consistent_metadata_only_list() {
    let (c, seen) = cluster(vec![ok(metadata_list(&[("a", "1"), ("b", "2")]))]);
    let versions = c.list_node_versions().await.unwrap();
    let got: Vec<_> = versions
        .iter()
        .map(|v| (v.name.as_str(), v.resource_version.as_str()))
        .collect();
    assert_eq!(got, [("a", "1"), ("b", "2")]);
    let req = only(&seen);
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("GET", "/api/v1/nodes")
    );
    assert!(
        req.accept.contains("as=PartialObjectMetadataList"),
        "asks for metadata only: {:?}",
        req.accept
    );
    assert!(
        !req.query.contains("resourceVersion"),
        "a consistent read, not the watch cache: {:?}",
        req.query
    );
}

#[tokio::test]
async fn an_empty_list_written_as_null_items_is_read_as_empty() {
    // What kube-apiserver 1.37 answers for a namespace without Leases.
    let empty = json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList",
                       "metadata": {"resourceVersion": "9"}, "items": null});
    let (c, _) = cluster(vec![ok(empty.clone()), ok(empty)]);
    assert_eq!(c.list_lease_versions("kube-node-leases").await.unwrap(), []);
    assert_eq!(c.list_node_versions().await.unwrap(), []);
}

#[tokio::test]
async fn node_versions_are_read_in_pages_of_500_following_the_continue_token() {
    let mut first = metadata_list(&[("a", "1")]);
    first["metadata"]["continue"] = json!("page-2");
    let mut last = metadata_list(&[("b", "2")]);
    last["metadata"]["continue"] = json!("");
    let (c, seen) = cluster(vec![ok(first), ok(last)]);
    let versions = c.list_node_versions().await.unwrap();
    let got: Vec<_> = versions.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(got, ["a", "b"]);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "{seen:?}");
    for req in seen.iter() {
        assert_eq!(req.path, "/api/v1/nodes");
        assert!(req.query.contains("limit=500"), "{:?}", req.query);
        assert!(!req.query.contains("resourceVersion"), "{:?}", req.query);
    }
    assert!(!seen[0].query.contains("continue"), "{:?}", seen[0].query);
    assert!(
        seen[1].query.contains("continue=page-2"),
        "{:?}",
        seen[1].query
    );
}

#[tokio::test]
async fn node_taints_are_merge_patched_whole_with_the_version_they_are_based_on() {
    let (c, seen) = cluster(vec![
        ok(to_json(&node("n1", "8"))),
        ok(to_json(&node("n1", "9"))),
    ]);
    let taint = Taint {
        key: "node.kubernetes.io/unreachable".into(),
        effect: "NoExecute".into(),
        ..Default::default()
    };
    c.patch_node_taints("n1", "7", std::slice::from_ref(&taint))
        .await
        .unwrap();
    c.patch_node_taints("n1", "8", &[]).await.unwrap();
    let seen = seen.lock().unwrap();
    for req in seen.iter() {
        assert_eq!(
            (
                req.method.as_str(),
                req.path.as_str(),
                req.content_type.as_str()
            ),
            ("PATCH", "/api/v1/nodes/n1", "application/merge-patch+json")
        );
    }
    assert_eq!(
        seen[0].body,
        json!({
            "metadata": { "resourceVersion": "7" },
            "spec": { "taints": [{ "key": "node.kubernetes.io/unreachable", "effect": "NoExecute" }] },
        })
    );
    // No taints left: null removes the list.
    assert_eq!(
        seen[1].body,
        json!({ "metadata": { "resourceVersion": "8" }, "spec": { "taints": null } })
    );
}

#[tokio::test]
async fn node_labels_are_merge_patched_alone_with_the_version_they_are_based_on() {
    let (c, seen) = cluster(vec![ok(to_json(&node("n1", "8")))]);
    let labels = [("beta.kubernetes.io/os".to_string(), "linux".to_string())].into();
    c.patch_node_labels("n1", "7", &labels).await.unwrap();
    let req = only(&seen);
    assert_eq!(
        (
            req.method.as_str(),
            req.path.as_str(),
            req.content_type.as_str()
        ),
        ("PATCH", "/api/v1/nodes/n1", "application/merge-patch+json")
    );
    assert_eq!(
        req.body,
        json!({ "metadata": { "resourceVersion": "7", "labels": { "beta.kubernetes.io/os": "linux" } } })
    );
}

#[tokio::test]
async fn node_conditions_are_strategic_merge_patched_on_the_status_with_the_version_they_are_based_on()
 {
    let (c, seen) = cluster(vec![ok(to_json(&node("n1", "8"))), status(409, "Conflict")]);
    let conditions = vec![k8s_openapi::api::core::v1::NodeCondition {
        type_: "Ready".into(),
        status: "Unknown".into(),
        ..Default::default()
    }];
    c.patch_node_conditions("n1", "7", &conditions)
        .await
        .unwrap();
    let req = only(&seen);
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("PATCH", "/api/v1/nodes/n1/status")
    );
    assert_eq!(req.content_type, "application/strategic-merge-patch+json");
    assert_eq!(
        req.body,
        serde_json::json!({
            "metadata": { "resourceVersion": "7" },
            "status": { "conditions": [{ "type": "Ready", "status": "Unknown" }] },
        })
    );
    assert!(matches!(
        c.patch_node_conditions("n1", "7", &conditions).await,
        Err(ApiError::Conflict(_))
    ));
}

#[tokio::test]
async fn node_patch_conflicts_and_server_errors_are_told_apart() {
    let (c, _) = cluster(vec![status(409, "Conflict"), status(500, "InternalError")]);
    assert!(matches!(
        c.patch_node_taints("n1", "7", &[]).await,
        Err(ApiError::Conflict(_))
    ));
    assert!(matches!(
        c.patch_node_taints("n1", "7", &[]).await,
        Err(ApiError::Unavailable(_))
    ));
}

// --- pods ---

#[tokio::test]
async fn get_pod_of_a_missing_pod_is_not_found() {
    let (c, seen) = cluster(vec![status(404, "NotFound")]);
    let err = c.get_pod("ns", "p").await.unwrap_err();
    assert_eq!(err, ApiError::NotFound("NotFound from the mock".into()));
    let req = only(&seen);
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("GET", "/api/v1/namespaces/ns/pods/p")
    );
}

#[tokio::test]
async fn pod_conditions_are_strategic_merge_patched_on_the_status_in_the_pods_namespace() {
    let (c, seen) = cluster(vec![
        ok(to_json(&pod("ns", "p", "4"))),
        status(409, "Conflict"),
    ]);
    let ready = vec![k8s_openapi::api::core::v1::PodCondition {
        type_: "Ready".into(),
        status: "False".into(),
        ..Default::default()
    }];
    c.patch_pod_conditions("ns", "p", "3", &ready)
        .await
        .unwrap();
    assert!(matches!(
        c.patch_pod_conditions("ns", "p", "3", &ready).await,
        Err(ApiError::Conflict(_))
    ));
    let req = seen.lock().unwrap()[0].clone();
    assert_eq!(
        (
            req.method.as_str(),
            req.path.as_str(),
            req.content_type.as_str()
        ),
        (
            "PATCH",
            "/api/v1/namespaces/ns/pods/p/status",
            "application/strategic-merge-patch+json"
        )
    );
    assert_eq!(
        req.body,
        json!({
            "metadata": { "resourceVersion": "3" },
            "status": { "conditions": [{ "type": "Ready", "status": "False" }] },
        })
    );
}

#[tokio::test]
async fn delete_pod_sends_a_uid_precondition() {
    let (c, seen) = cluster(vec![ok(to_json(&pod("ns", "p", "4")))]);
    c.delete_pod("ns", "p", "uid-1").await.unwrap();
    let req = only(&seen);
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("DELETE", "/api/v1/namespaces/ns/pods/p")
    );
    assert_eq!(req.body["preconditions"]["uid"], "uid-1");
    assert_eq!(
        req.body.get("gracePeriodSeconds"),
        None,
        "the pod's own grace period applies"
    );
}

#[tokio::test]
async fn delete_pod_accepts_a_status_answer() {
    let done = json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 200});
    let (c, _) = cluster(vec![ok(done)]);
    c.delete_pod("ns", "p", "uid-1").await.unwrap();
}

#[tokio::test]
async fn delete_pod_with_another_uid_is_a_conflict_and_a_gone_pod_not_found() {
    let (c, _) = cluster(vec![status(409, "Conflict"), status(404, "NotFound")]);
    assert!(matches!(
        c.delete_pod("ns", "p", "uid-1").await,
        Err(ApiError::Conflict(_))
    ));
    assert!(matches!(
        c.delete_pod("ns", "p", "uid-1").await,
        Err(ApiError::NotFound(_))
    ));
}

#[tokio::test]
async fn evict_pod_posts_a_policy_v1_eviction_with_a_uid_precondition() {
    let created = json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201});
    let (c, seen) = cluster(vec![Reply::Json(201, created)]);
    c.evict_pod("ns", "p", "uid-1").await.unwrap();
    let req = only(&seen);
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("POST", "/api/v1/namespaces/ns/pods/p/eviction")
    );
    assert_eq!(req.body["apiVersion"], "policy/v1");
    assert_eq!(req.body["kind"], "Eviction");
    assert_eq!(req.body["metadata"]["name"], "p");
    assert_eq!(req.body["metadata"]["namespace"], "ns");
    assert_eq!(req.body["deleteOptions"]["preconditions"]["uid"], "uid-1");
}

#[tokio::test]
async fn evict_pod_refused_by_a_disruption_budget_is_too_many_requests() {
    let (c, _) = cluster(vec![
        status(429, "TooManyRequests"),
        status(409, "Conflict"),
    ]);
    assert_eq!(
        c.evict_pod("ns", "p", "uid-1").await,
        Err(ApiError::TooManyRequests(
            "TooManyRequests from the mock".into()
        ))
    );
    assert!(matches!(
        c.evict_pod("ns", "p", "uid-1").await,
        Err(ApiError::Conflict(_))
    ));
}

// --- leases ---

#[tokio::test]
async fn lease_reads_go_to_the_given_namespace() {
    let (c, seen) = cluster(vec![
        ok(metadata_list(&[("n1", "2")])),
        ok(to_json(&lease("kube-system", "nlc", "1"))),
    ]);
    assert_eq!(
        c.list_lease_versions("kube-node-lease").await.unwrap()[0].name,
        "n1"
    );
    c.get_lease("kube-system", "nlc").await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        (
            "GET",
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
        )
    );
    assert_eq!(
        (seen[1].method.as_str(), seen[1].path.as_str()),
        (
            "GET",
            "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/nlc"
        )
    );
}

#[tokio::test]
async fn an_empty_lease_namespace_means_the_node_lease_namespace() {
    let (c, seen) = cluster(vec![ok(metadata_list(&[]))]);
    c.list_lease_versions("").await.unwrap();
    assert_eq!(
        only(&seen).path,
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
    );
}

#[tokio::test]
async fn create_lease_posts_the_lease_and_an_existing_one_is_a_conflict() {
    let mut new = lease("kube-system", "nlc", "");
    new.metadata.resource_version = None;
    let (c, seen) = cluster(vec![
        ok(to_json(&lease("kube-system", "nlc", "1"))),
        status(409, "AlreadyExists"),
    ]);
    c.create_lease(&new).await.unwrap();
    assert!(matches!(
        c.create_lease(&new).await,
        Err(ApiError::Conflict(_))
    ));
    let req = seen.lock().unwrap()[0].clone();
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        (
            "POST",
            "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"
        )
    );
    assert_eq!(req.body["metadata"]["name"], "nlc");
    assert_eq!(req.body["metadata"].get("resourceVersion"), None);
}

#[tokio::test]
async fn replace_lease_puts_the_lease_with_its_resource_version() {
    let (c, seen) = cluster(vec![
        ok(to_json(&lease("kube-system", "nlc", "6"))),
        status(500, "InternalError"),
    ]);
    c.replace_lease(&lease("kube-system", "nlc", "5"))
        .await
        .unwrap();
    assert!(matches!(
        c.replace_lease(&lease("kube-system", "nlc", "5")).await,
        Err(ApiError::Unavailable(_))
    ));
    let req = seen.lock().unwrap()[0].clone();
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        (
            "PUT",
            "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/nlc"
        )
    );
    assert_eq!(req.body["metadata"]["resourceVersion"], "5");
}

// --- failures below HTTP ---

#[tokio::test]
async fn a_plain_text_server_error_is_unavailable() {
    let (c, _) = cluster(vec![Reply::Text(503, "upstream connect error")]);
    assert_eq!(
        c.get_node("n1").await,
        Err(ApiError::Unavailable("upstream connect error".into()))
    );
}

#[tokio::test]
async fn a_broken_connection_is_unavailable() {
    let (c, _) = cluster(vec![Reply::Broken]);
    assert!(
        matches!(c.get_node("n1").await, Err(ApiError::Unavailable(m)) if m.contains("connection reset"))
    );
}

#[tokio::test]
async fn forbidden_is_reported_as_such() {
    let (c, _) = cluster(vec![status(403, "Forbidden")]);
    assert!(matches!(
        c.list_node_versions().await,
        Err(ApiError::Forbidden(_))
    ));
}

// --- events ---

fn event_reply() -> Reply {
    ok(
        json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "x"},
              "eventTime": "2025-01-01T00:00:00.000000Z"}),
    )
}

#[tokio::test]
async fn a_node_event_is_created_in_default_by_the_node_controller() {
    let (c, seen) = cluster(vec![event_reply()]);
    let event = EventRecord {
        component: Component::NodeController,
        object: ObjectRef::node("n1", Some("uid-n1".into())),
        event_type: EventType::Normal,
        reason: "NodeNotReady".into(),
        message: "Node n1 status is now: NodeNotReady".into(),
    };
    c.create_event(&event, jiff::Timestamp::UNIX_EPOCH)
        .await
        .unwrap();
    let req = only(&seen);
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("POST", "/apis/events.k8s.io/v1/namespaces/default/events")
    );
    let b = &req.body;
    assert_eq!(
        b["regarding"],
        json!({"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "uid-n1"})
    );
    assert_eq!(b["reportingController"], "node-controller");
    assert_eq!(b["reportingInstance"], "node-controller");
    assert_eq!(b["type"], "Normal");
    assert_eq!(b["reason"], "NodeNotReady");
    assert_eq!(b["action"], "NodeNotReady");
    assert_eq!(b["note"], "Node n1 status is now: NodeNotReady");
    assert_eq!(b["metadata"].get("namespace"), None);
}

#[tokio::test]
async fn a_pod_event_is_created_in_the_pods_namespace_by_the_taint_eviction_controller() {
    let (c, seen) = cluster(vec![event_reply()]);
    let c = c.with_reporting_instance("nlc-0");
    let event = EventRecord {
        component: Component::TaintEvictionController,
        object: ObjectRef::pod("ns", "p", Some("uid-p".into())),
        event_type: EventType::Warning,
        reason: "TaintManagerEviction".into(),
        message: "Marking for deletion Pod ns/p".into(),
    };
    c.create_event(&event, jiff::Timestamp::UNIX_EPOCH)
        .await
        .unwrap();
    let req = only(&seen);
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("POST", "/apis/events.k8s.io/v1/namespaces/ns/events")
    );
    let b = &req.body;
    assert_eq!(
        b["regarding"],
        json!({"apiVersion": "v1", "kind": "Pod", "namespace": "ns", "name": "p", "uid": "uid-p"})
    );
    assert_eq!(b["reportingController"], "taint-eviction-controller");
    assert_eq!(b["reportingInstance"], "nlc-0");
    assert_eq!(b["type"], "Warning");
    assert_eq!(b["metadata"]["namespace"], "ns");
}

#[tokio::test]
async fn events_differing_only_in_message_are_each_created_with_their_own_message() {
    let (c, seen) = cluster(vec![event_reply(), event_reply()]);
    for message in [
        "Marking for deletion Pod ns/p",
        "Cancelling deletion of Pod ns/p",
    ] {
        let event = EventRecord {
            component: Component::TaintEvictionController,
            object: ObjectRef::pod("ns", "p", Some("uid-p".into())),
            event_type: EventType::Normal,
            reason: "TaintManagerEviction".into(),
            message: message.into(),
        };
        c.create_event(&event, jiff::Timestamp::UNIX_EPOCH)
            .await
            .unwrap();
    }
    let seen = seen.lock().unwrap();
    let notes: Vec<_> = seen
        .iter()
        .map(|r| (r.method.as_str(), r.body["note"].as_str().unwrap()))
        .collect();
    assert_eq!(
        notes,
        [
            ("POST", "Marking for deletion Pod ns/p"),
            ("POST", "Cancelling deletion of Pod ns/p")
        ]
    );
}

#[tokio::test]
async fn a_refused_event_reports_the_error() {
    let (c, _) = cluster(vec![status(403, "Forbidden")]);
    let event = EventRecord {
        component: Component::NodeController,
        object: ObjectRef::node("n1", None),
        event_type: EventType::Normal,
        reason: "RegisteredNode".into(),
        message: "Node n1 event: Registered Node n1 in Controller".into(),
    };
    assert!(matches!(
        c.create_event(&event, jiff::Timestamp::UNIX_EPOCH).await,
        Err(ApiError::Forbidden(_))
    ));
}

// --- watches ---

#[tokio::test]
async fn watch_nodes_lists_all_nodes_first_and_yields_them_as_init_events() {
    let list = json!({"apiVersion": "v1", "kind": "NodeList", "metadata": {"resourceVersion": "10"},
                      "items": [to_json(&node("a", "1"))]});
    let (c, seen) = cluster(vec![ok(list)]);
    let events: Vec<_> = c.watch_nodes().take(3).collect().await;
    assert!(matches!(events[0], Ok(Event::Init)));
    assert!(
        matches!(&events[1], Ok(Event::InitApply(n)) if n.metadata.name.as_deref() == Some("a"))
    );
    assert!(matches!(events[2], Ok(Event::InitDone)));
    let req = seen.lock().unwrap()[0].clone();
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("GET", "/api/v1/nodes")
    );
}

#[tokio::test]
async fn watch_leases_lists_in_the_given_namespace() {
    let list = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "LeaseList",
                      "metadata": {"resourceVersion": "10"}, "items": []});
    let (c, seen) = cluster(vec![ok(list)]);
    let events: Vec<_> = c.watch_leases("kube-node-lease").take(2).collect().await;
    assert!(matches!(events[..], [Ok(Event::Init), Ok(Event::InitDone)]));
    assert_eq!(
        seen.lock().unwrap()[0].path,
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
    );
}

#[tokio::test]
async fn watch_pods_lists_pods_of_all_namespaces_and_yields_the_servers_refusal() {
    let (c, seen) = cluster(vec![status(403, "Forbidden")]);
    let events: Vec<_> = c.watch_pods().take(2).collect().await;
    assert!(matches!(events[0], Ok(Event::Init)), "{events:?}");
    assert!(
        matches!(&events[1], Err(ApiError::Forbidden(m)) if m.contains("Forbidden from the mock")),
        "{events:?}"
    );
    assert_eq!(seen.lock().unwrap()[0].path, "/api/v1/pods");
}

const STREAMED_NODE_A: &str = concat!(
    r#"{"type":"ADDED","object":{"apiVersion":"v1","kind":"Node","metadata":{"name":"a","resourceVersion":"1"}}}"#,
    "\n",
    r#"{"type":"BOOKMARK","object":{"apiVersion":"v1","kind":"Node","metadata":{"resourceVersion":"10","annotations":{"k8s.io/initial-events-end":"true"}}}}"#,
    "\n",
);

fn node_list() -> Reply {
    ok(
        json!({"apiVersion": "v1", "kind": "NodeList", "metadata": {"resourceVersion": "10"},
              "items": [to_json(&node("a", "1"))]}),
    )
}

fn names_of(events: &[crate::cluster::Result<Event<Node>>]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            Ok(Event::Init) => "Init".to_string(),
            Ok(Event::InitApply(n)) => {
                format!("InitApply({})", n.metadata.name.as_deref().unwrap_or(""))
            }
            Ok(Event::InitDone) => "InitDone".to_string(),
            other => format!("{other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn a_streaming_list_is_one_watch_asking_for_initial_events_and_ends_at_its_bookmark() {
    let (c, seen) = cluster(vec![Reply::Text(200, STREAMED_NODE_A)]);
    let c = c.with_initial_list(InitialList::Streaming);
    let events: Vec<_> = c.watch_nodes().take(3).collect().await;
    assert_eq!(names_of(&events), ["Init", "InitApply(a)", "InitDone"]);
    let req = only(&seen);
    assert_eq!(req.path, "/api/v1/nodes");
    for part in [
        "watch=true",
        "sendInitialEvents=true",
        "resourceVersionMatch=NotOlderThan",
        "allowWatchBookmarks=true",
        "resourceVersion=0",
    ] {
        assert!(
            req.query.split('&').any(|p| p == part),
            "{part} in {}",
            req.query
        );
    }
}

#[tokio::test]
async fn a_refused_streaming_list_falls_back_to_paged_lists_unseen_and_for_good() {
    let (c, seen) = cluster(vec![status(422, "Invalid"), node_list(), node_list()]);
    let c = c.with_initial_list(InitialList::Streaming);
    let events: Vec<_> = c.watch_nodes().take(3).collect().await;
    // The consumer sees a list, not the refusal.
    assert_eq!(names_of(&events), ["Init", "InitApply(a)", "InitDone"]);
    // A later watch of the same resource (a restart) lists at once.
    let again: Vec<_> = c.clone().watch_nodes().take(3).collect().await;
    assert_eq!(names_of(&again), ["Init", "InitApply(a)", "InitDone"]);
    let seen = seen.lock().unwrap().clone();
    let queries: Vec<&str> = seen.iter().map(|s| s.query.as_str()).collect();
    assert_eq!(seen.len(), 3, "{queries:?}");
    assert!(queries[0].contains("sendInitialEvents=true"), "{queries:?}");
    for list in &queries[1..] {
        assert!(!list.contains("watch=true"), "{queries:?}");
        assert!(list.contains("limit=500"), "{queries:?}");
    }
}

#[tokio::test]
async fn a_refused_streaming_list_of_one_resource_leaves_the_others_streaming() {
    let (c, seen) = cluster(vec![
        status(422, "Invalid"),
        node_list(),
        Reply::Text(500, ""),
    ]);
    let c = c.with_initial_list(InitialList::Streaming);
    let _: Vec<_> = c.watch_nodes().take(3).collect().await;
    let _: Vec<_> = c.watch_leases("kube-node-lease").take(1).collect().await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen[2].path,
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
    );
    assert!(
        seen[2].query.contains("sendInitialEvents=true"),
        "{}",
        seen[2].query
    );
}

/// Canary: when kube's own `Api::evict` sends `deleteOptions`, `evict_pod` may go back to it.
#[tokio::test]
async fn kube_api_evict_still_misnames_delete_options_so_evict_pod_builds_its_own_body() {
    let created = json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201});
    let seen_log = Arc::new(Mutex::new(Vec::new()));
    let log = seen_log.clone();
    let service = tower::service_fn(move |req: http::Request<Body>| {
        let log = log.clone();
        let created = created.clone();
        async move {
            let bytes = req.into_body().collect_bytes().await.expect("request body");
            log.lock()
                .unwrap()
                .push(serde_json::from_slice::<Value>(&bytes).expect("JSON"));
            Ok::<_, std::convert::Infallible>(
                http::Response::builder()
                    .status(201)
                    .body(Body::from(created.to_string().into_bytes()))
                    .expect("response"),
            )
        }
    });
    let pods: kube::Api<Pod> = kube::Api::namespaced(kube::Client::new(service, "default"), "ns");
    let params = kube::api::EvictParams {
        delete_options: Some(kube::api::DeleteParams {
            preconditions: Some(kube::api::Preconditions {
                uid: Some("uid-1".into()),
                resource_version: None,
            }),
            ..Default::default()
        }),
        post_options: Default::default(),
    };
    pods.evict("p", &params).await.unwrap();
    let body = seen_log.lock().unwrap()[0].clone();
    assert_eq!(
        body.get("deleteOptions"),
        None,
        "kube fixed Api::evict: {body}"
    );
    assert_eq!(body["delete_options"]["preconditions"]["uid"], "uid-1");
}

// --- the writer on the real adapter: retries as the API server sees them ---

mod writer {
    use super::*;
    use crate::clock::{Clock, TokioClock};
    use crate::controller::tasks::Tasks;
    use crate::controller::writer::Writer;
    use crate::logic::actions::{Action, TaintChange, TaintPurpose, TaintRef};
    use crate::metrics::Metrics;
    use crate::settings::{EvictionMode, Settings};
    use k8s_openapi::api::core::v1::{NodeCondition, NodeStatus, PodSpec, Taint};
    use std::time::Duration;

    fn writer(
        c: KubeCluster,
        settings: Settings,
    ) -> (Writer<KubeCluster>, tokio::sync::watch::Sender<u64>) {
        let (tx, rx) = tokio::sync::watch::channel(1u64);
        let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(
            "2025-01-01T00:00:00Z".parse().unwrap(),
        ));
        let w = Writer::new(
            c,
            clock,
            Arc::new(Metrics::new()),
            &settings,
            rx,
            Tasks::default(),
        );
        (w, tx)
    }

    /// Node n1 reported NotReady, still carrying the `unreachable` NoExecute taint (what a swap
    /// to `not-ready` replaces).
    fn not_ready_node(rv: &str) -> Value {
        let mut n = node("n1", rv);
        n.spec.get_or_insert_with(Default::default).taints = Some(vec![Taint {
            key: "node.kubernetes.io/unreachable".into(),
            effect: "NoExecute".into(),
            ..Default::default()
        }]);
        n.status = Some(NodeStatus {
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: "False".into(),
                ..Default::default()
            }]),
            ..Default::default()
        });
        to_json(&n)
    }

    /// The `not-ready` NoExecute taint in place of `unreachable` (a swap: retried until done).
    fn taint_not_ready() -> Action {
        Action::ChangeTaints {
            node: "n1".into(),
            change: TaintChange {
                add: vec![Taint {
                    key: "node.kubernetes.io/not-ready".into(),
                    effect: "NoExecute".into(),
                    ..Default::default()
                }],
                remove: vec![TaintRef {
                    key: "node.kubernetes.io/unreachable".into(),
                    effect: "NoExecute".into(),
                }],
            },
            purpose: TaintPurpose::Swap,
        }
    }

    fn requests(seen: &Arc<Mutex<Vec<Seen>>>) -> Vec<(String, String)> {
        seen.lock()
            .unwrap()
            .iter()
            .map(|s| (s.method.clone(), s.path.clone()))
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_taint_write_that_meets_a_conflict_is_read_again_and_retried_with_the_new_version() {
        let (c, seen) = cluster(vec![
            ok(not_ready_node("1")),
            status(409, "Conflict"),
            ok(not_ready_node("2")),
            ok(not_ready_node("3")),
        ]);
        let (w, _leader) = writer(c, Settings::default());
        w.submit(vec![taint_not_ready()]);
        tokio::time::sleep(Duration::from_secs(5)).await;
        let seen_now = seen.lock().unwrap().clone();
        let methods: Vec<&str> = seen_now.iter().map(|s| s.method.as_str()).collect();
        assert_eq!(methods, vec!["GET", "PATCH", "GET", "PATCH"]);
        assert_eq!(seen_now[1].body["metadata"]["resourceVersion"], "1");
        assert_eq!(seen_now[3].body["metadata"]["resourceVersion"], "2");
        assert_eq!(
            seen_now[3].body["spec"]["taints"][0]["key"],
            "node.kubernetes.io/not-ready"
        );
    }

    /// Node n1 as the cache holds it: Ready=`ready`, carrying `unreachable:NoExecute`.
    fn cached_node(rv: &str, ready: &str) -> Node {
        let mut n = node("n1", rv);
        n.status = Some(NodeStatus {
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: ready.into(),
                ..Default::default()
            }]),
            ..Default::default()
        });
        n.spec = Some(k8s_openapi::api::core::v1::NodeSpec {
            taints: Some(vec![Taint {
                key: "node.kubernetes.io/unreachable".into(),
                effect: "NoExecute".into(),
                ..Default::default()
            }]),
            ..Default::default()
        });
        n
    }

    /// A cache holding one node.
    struct NodeCopy(Node);

    impl crate::controller::writer::Cached for NodeCopy {
        fn node(&self, _: &str) -> Option<Node> {
            Some(self.0.clone())
        }
        fn pod(&self, _: &str, _: &str) -> Option<Pod> {
            None
        }
    }

    fn methods_and_versions(seen: &Arc<Mutex<Vec<Seen>>>) -> Vec<(String, String)> {
        seen.lock()
            .unwrap()
            .iter()
            .map(|s| {
                let rv = s.body["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default();
                (s.method.clone(), rv.to_string())
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_taint_change_is_written_from_the_cached_node_it_was_decided_on_without_a_read() {
        let (c, seen) = cluster(vec![ok(not_ready_node("5"))]);
        let (w, _leader) = writer(c, Settings::default());
        let cached = cached_node("4", "False");
        w.submit_seen(vec![taint_not_ready()], &NodeCopy(cached));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(
            methods_and_versions(&seen),
            vec![("PATCH".into(), "4".into())]
        );
        let body = seen.lock().unwrap()[0].body.clone();
        assert_eq!(
            body["spec"]["taints"][0]["key"],
            "node.kubernetes.io/not-ready"
        );
        assert_eq!(body["spec"]["taints"].as_array().map(Vec::len), Some(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_taint_change_on_a_cached_node_that_moved_is_refused_then_decided_on_the_live_node() {
        let (c, seen) = cluster(vec![
            status(409, "Conflict"),
            ok(not_ready_node("6")),
            ok(not_ready_node("7")),
        ]);
        let (w, _leader) = writer(c, Settings::default());
        let cached = cached_node("4", "False");
        w.submit_seen(vec![taint_not_ready()], &NodeCopy(cached));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(
            methods_and_versions(&seen),
            vec![
                ("PATCH".into(), "4".into()),
                ("GET".into(), String::new()),
                ("PATCH".into(), "6".into()),
            ]
        );
    }

    /// The cache may lag: a copy can justify a write (its resourceVersion guards it), never the
    /// lack of one.
    #[tokio::test(start_paused = true)]
    async fn a_cached_node_that_calls_for_no_change_is_read_live_before_the_change_is_dropped() {
        let (c, seen) = cluster(vec![ok(not_ready_node("6")), ok(not_ready_node("7"))]);
        let (w, _leader) = writer(c, Settings::default());
        let cached = cached_node("4", "True");
        w.submit_seen(vec![taint_not_ready()], &NodeCopy(cached));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(
            methods_and_versions(&seen),
            vec![("GET".into(), String::new()), ("PATCH".into(), "6".into())]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_error_is_retried_after_a_backoff() {
        let (c, seen) = cluster(vec![
            status(500, "InternalError"),
            ok(not_ready_node("1")),
            ok(not_ready_node("2")),
        ]);
        let (w, _leader) = writer(c, Settings::default());
        w.submit(vec![taint_not_ready()]);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(requests(&seen).len(), 1, "no retry before the backoff");
        tokio::time::sleep(Duration::from_secs(5)).await;
        let methods: Vec<String> = requests(&seen).into_iter().map(|r| r.0).collect();
        assert_eq!(methods, vec!["GET", "GET", "PATCH"]);
    }

    /// A zone's taint was released by the zone's rate limiter for the moment it was decided:
    /// after a failed write it goes back to the zone's queue (the monitor queues the node again)
    /// instead of being retried outside that rate.
    #[tokio::test(start_paused = true)]
    async fn a_zone_taint_that_fails_is_not_retried_by_the_writer() {
        let (c, seen) = cluster(vec![
            ok(not_ready_node("1")),
            status(500, "InternalError"),
            ok(not_ready_node("2")),
            ok(not_ready_node("3")),
        ]);
        let (w, _leader) = writer(c, Settings::default());
        let Action::ChangeTaints { node, change, .. } = taint_not_ready() else {
            unreachable!()
        };
        w.submit(vec![Action::ChangeTaints {
            node,
            change,
            purpose: TaintPurpose::ZoneEviction { zone: "z".into() },
        }]);
        tokio::time::sleep(Duration::from_secs(60)).await;
        let methods: Vec<String> = requests(&seen).into_iter().map(|r| r.0).collect();
        assert_eq!(methods, vec!["GET", "PATCH"]);
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_written_once_leadership_is_lost() {
        let (c, seen) = cluster(vec![
            status(500, "InternalError"),
            ok(not_ready_node("1")),
            ok(not_ready_node("2")),
        ]);
        let (w, leader) = writer(c, Settings::default());
        w.submit(vec![taint_not_ready()]);
        tokio::time::sleep(Duration::from_millis(10)).await;
        leader.send(0).unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(requests(&seen).len(), 1, "the retry is dropped, not sent");
        w.submit(vec![taint_not_ready()]);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(requests(&seen).len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_backing_off_is_dropped_when_leadership_changes_and_the_new_term_goes_at_once()
    {
        let mut replies: Vec<Reply> = (0..6).map(|_| status(500, "InternalError")).collect();
        replies.extend([ok(not_ready_node("1")), ok(not_ready_node("2"))]);
        let (c, seen) = cluster(replies);
        let (w, leader) = writer(c, Settings::default());
        w.submit(vec![taint_not_ready()]);
        // Six failures: the next backoff is over 3 s.
        for _ in 0..100 {
            if requests(&seen).len() == 6 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(requests(&seen).len(), 6);
        leader.send(0).unwrap();
        leader.send(2).unwrap();
        w.submit(vec![taint_not_ready()]);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let methods: Vec<String> = requests(&seen).into_iter().map(|r| r.0).collect();
        assert_eq!(
            methods[6..],
            ["GET".to_string(), "PATCH".to_string()],
            "the new term's write did not wait for the old one's backoff"
        );
    }

    /// n1 (resourceVersion 3) with the `unreachable` NoExecute taint, which no test pod tolerates.
    fn unreachable_n1() -> Node {
        let mut n = node("n1", "3");
        n.spec = Some(k8s_openapi::api::core::v1::NodeSpec {
            taints: Some(vec![Taint {
                key: "node.kubernetes.io/unreachable".into(),
                effect: "NoExecute".into(),
                ..Default::default()
            }]),
            ..Default::default()
        });
        n
    }

    /// A pod status with only the DisruptionTarget condition the taint manager adds.
    fn disruption_target() -> Option<k8s_openapi::api::core::v1::PodStatus> {
        Some(k8s_openapi::api::core::v1::PodStatus {
            conditions: Some(vec![k8s_openapi::api::core::v1::PodCondition {
                type_: "DisruptionTarget".into(),
                status: "True".into(),
                ..Default::default()
            }]),
            ..Default::default()
        })
    }

    /// A pod bound to n1 that already carries DisruptionTarget (no status write), and n1 with
    /// an untolerated NoExecute taint: due now.
    fn due_pod_and_node(uid: &str) -> (Value, Value) {
        let mut p = pod("default", "web", "8");
        p.metadata.uid = Some(uid.into());
        p.spec = Some(PodSpec {
            node_name: Some("n1".into()),
            ..Default::default()
        });
        p.status = disruption_target();
        let n = unreachable_n1();
        (to_json(&p), to_json(&n))
    }

    fn evict_web() -> Action {
        Action::EvictPod {
            namespace: "default".into(),
            name: "web".into(),
            uid: "uid-web".into(),
            node: "n1".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_deletion_that_meets_a_conflict_is_read_again_and_retried() {
        let (p, n) = due_pod_and_node("uid-web");
        let (c, seen) = cluster(vec![
            ok(p.clone()),
            ok(n.clone()),
            status(409, "Conflict"),
            ok(p.clone()),
            ok(n),
            ok(p),
        ]);
        let (w, _leader) = writer(c, Settings::default());
        w.submit(vec![evict_web()]);
        tokio::time::sleep(Duration::from_secs(5)).await;
        let methods: Vec<String> = requests(&seen).into_iter().map(|r| r.0).collect();
        assert_eq!(
            methods,
            vec!["GET", "GET", "DELETE", "GET", "GET", "DELETE"],
            "a 409 on the deletion is not the end of it"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_deletion_conflict_stops_when_the_pod_was_replaced() {
        let (p, n) = due_pod_and_node("uid-web");
        let (replaced, _) = due_pod_and_node("uid-web-2");
        let (c, seen) = cluster(vec![ok(p), ok(n), status(409, "Conflict"), ok(replaced)]);
        let (w, _leader) = writer(c, Settings::default());
        w.submit(vec![evict_web()]);
        tokio::time::sleep(Duration::from_secs(5)).await;
        let methods: Vec<String> = requests(&seen).into_iter().map(|r| r.0).collect();
        assert_eq!(
            methods,
            vec!["GET", "GET", "DELETE", "GET"],
            "the pod of that name is another one now: not deleted"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_eviction_refused_by_a_budget_is_retried_until_it_is_allowed() {
        let mut p = pod("default", "web", "7");
        p.spec = Some(PodSpec {
            node_name: Some("n1".into()),
            ..Default::default()
        });
        let n = unreachable_n1();
        let mut with_target = p.clone();
        with_target.metadata.resource_version = Some("8".into());
        with_target.status = disruption_target();
        // Later rounds read the pod with its DisruptionTarget condition: no second status write.
        let round = |refuse: bool| {
            let mut r = vec![ok(to_json(&with_target)), ok(to_json(&n))];
            if refuse {
                r.push(status(429, "TooManyRequests"));
            } else {
                r.push(ok(
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
                ));
            }
            r
        };
        // First round also writes the DisruptionTarget condition.
        let mut replies = vec![
            ok(to_json(&p)),
            ok(to_json(&n)),
            ok(to_json(&with_target)),
            status(429, "TooManyRequests"),
        ];
        replies.extend(round(true));
        replies.extend(round(false));
        let (c, seen) = cluster(replies);
        let settings = Settings {
            eviction_mode: EvictionMode::Evict,
            ..Settings::default()
        };
        let (w, _leader) = writer(c, settings);
        w.submit(vec![Action::EvictPod {
            namespace: "default".into(),
            name: "web".into(),
            uid: "uid-web".into(),
            node: "n1".into(),
        }]);
        tokio::time::sleep(Duration::from_secs(10)).await;
        let evictions: Vec<(String, String)> = requests(&seen)
            .into_iter()
            .filter(|(_, path)| path.ends_with("/eviction"))
            .collect();
        assert_eq!(
            evictions.len(),
            3,
            "refused twice, then allowed: {:#?}",
            requests(&seen)
        );
        assert!(evictions.iter().all(|(m, _)| m == "POST"));
    }
}
