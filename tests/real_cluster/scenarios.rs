//! The scenarios. Each starts its own box, installs the chart, runs the Deployment's pods and a
//! fleet, plays a failure, and asserts on the API server's objects and audit log. Timings are
//! the chart values of `values.yaml`: grace 20s, monitor period 2s, zone rates 0.5 and 0.2/s.
//! Every scenario ends with the checks that hold for all: no 403 for the controller (the
//! chart's RBAC suffices), no full PUT of a Node or Pod, and no verb the start-up RBAC check
//! does not ask for.

use crate::audit::{self, Request};
use crate::deploy::{self, NAMESPACE, RELEASE, Replica};
use crate::fleet::{self, Fleet, NOT_READY, UNREACHABLE, tolerate_both};
use crate::kube_box::KubeBox;
use crate::scrape;
use jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams};
use node_lifecycle_controller::k8s::permissions;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub(crate) const GRACE: f64 = 20.0;
pub(crate) const PERIOD: f64 = 2.0;
const PRIMARY_RATE: f64 = 0.5;
const SECONDARY_RATE: f64 = 0.2;
/// The fleet of most scenarios: one zone of three nodes, a-1 the one that fails.
const ZONE_A: [(&str, &str); 3] = [("a-0", "zone-a"), ("a-1", "zone-a"), ("a-2", "zone-a")];
pub(crate) const CONTROLLER: &str = "system:serviceaccount:kube-system:node-lifecycle-controller";

/// A scenario's run: `Some(reason)` when it could not run here (said as skipped, not passed).
pub type Run = fn(u8) -> Pin<Box<dyn Future<Output = Option<String>> + Send>>;

pub struct Scenario {
    pub name: &'static str,
    pub run: Run,
}

macro_rules! scenario {
    ($name:ident, may_skip) => {
        Scenario {
            name: stringify!($name),
            run: |net| Box::pin($name(net)),
        }
    };
    ($name:ident) => {
        Scenario {
            name: stringify!($name),
            run: |net| {
                Box::pin(async move {
                    $name(net).await;
                    None
                })
            },
        }
    };
}

pub const ALL: &[Scenario] = &[
    scenario!(node_lost),
    scenario!(kubelet_back_before_the_deadline),
    scenario!(kubelet_back_while_its_pods_deletions_wait_for_tokens),
    scenario!(kubelet_reports_not_ready),
    scenario!(zone_rates),
    scenario!(leader_sigterm_mid_countdown),
    scenario!(leader_sigkill_mid_countdown),
    scenario!(evict_mode_honours_the_budget),
    scenario!(dry_run_writes_nothing),
    scenario!(no_data_lost, may_skip),
    scenario!(a_start_clears_stale_condition_taints),
    scenario!(a_wrong_lease_namespace_marks_nothing),
    scenario!(an_empty_lease_namespace_marks_nothing),
    scenario!(metrics_over_https_need_a_token_allowed_to_get_them),
    scenario!(numeric_tolerations_are_honoured, may_skip),
    scenario!(what_if_from_the_real_cluster),
    scenario!(a_lost_nodes_pods_are_explained_by_the_leader),
];

// ---------------------------------------------------------------------------------------------
// Set-up and checks shared by the scenarios.

pub(crate) struct Env {
    pub(crate) kbox: KubeBox,
    pub(crate) client: kube::Client,
    pub(crate) replicas: Vec<Replica>,
    pub(crate) name: &'static str,
}

/// A box with the chart deployed (`Env::deploy`).
pub(crate) async fn deployed(name: &'static str, net: u8, replicas: u8, set: &[&str]) -> Env {
    let mut env = boxed(name).await;
    env.deploy(net, replicas, set).await;
    env
}

/// A box with nothing deployed yet.
pub(crate) async fn boxed(name: &'static str) -> Env {
    let kbox = KubeBox::start(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    let client = kbox.admin().await;
    Env {
        kbox,
        client,
        replicas: Vec::new(),
        name,
    }
}

impl Env {
    /// The chart installed with `set`, `replicas` pods of its Deployment running, one of them
    /// leading (every scenario keeps the chart's leader election).
    pub(crate) async fn deploy(&mut self, net: u8, replicas: u8, set: &[&str]) {
        deploy::helm_install(&self.kbox, set);
        for i in 0..replicas {
            let replica = deploy::start_replica(&self.kbox, &self.client, net, i).await;
            self.replicas.push(replica);
        }
        self.leader(40.0).await;
    }

    /// The pod name holding the leader Lease, waiting up to `seconds` for one.
    pub(crate) async fn leader(&self, seconds: f64) -> String {
        wait(self.name, "a leader", seconds, || self.holder()).await
    }

    /// The replica holding the leader Lease now, if one does.
    pub(crate) async fn holder(&self) -> Option<String> {
        let lease = self
            .get(&format!(
                "/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/{RELEASE}"
            ))
            .await?;
        let holder = lease["spec"]["holderIdentity"].as_str()?.to_string();
        self.replicas
            .iter()
            .any(|r| r.pod == holder)
            .then_some(holder)
    }

    pub(crate) async fn get(&self, path: &str) -> Option<Value> {
        let request = http::Request::get(path).body(Vec::new()).expect("request");
        self.client.request::<Value>(request).await.ok()
    }

    pub(crate) async fn node(&self, name: &str) -> Value {
        self.get(&format!("/api/v1/nodes/{name}"))
            .await
            .unwrap_or_else(|| panic!("{}: node {name} is readable", self.name))
    }

    pub(crate) async fn pod(&self, namespace: &str, name: &str) -> Option<Value> {
        self.get(&format!("/api/v1/namespaces/{namespace}/pods/{name}"))
            .await
    }

    pub(crate) async fn fleet(&self, nodes: &[(&str, &str)], new_fields: bool) -> Fleet {
        let fleet = Fleet::start(self.client.clone(), nodes, new_fields).await;
        // The controller takes every node in: beta labels, and admission's not-ready NoSchedule
        // taint removed once the node is Ready.
        for (node, _) in nodes {
            wait(self.name, &format!("{node} settled"), 30.0, || async {
                let n = self.node(node).await;
                let clean = taints(&n).is_empty();
                let labelled = n["metadata"]["labels"]["beta.kubernetes.io/os"] == "linux";
                (clean && labelled).then_some(())
            })
            .await;
        }
        fleet
    }

    /// Waits up to `seconds` for `node` to carry the NoExecute taint `key`; the node then.
    pub(crate) async fn tainted(&self, node: &str, key: &str, seconds: f64) -> Value {
        wait(
            self.name,
            &format!("{node} tainted {key}:NoExecute"),
            seconds,
            || async {
                let n = self.node(node).await;
                has_taint(&n, key, "NoExecute").then_some(n)
            },
        )
        .await
    }

    /// Waits up to 15 s for `node` to carry no taint at all.
    async fn untainted(&self, node: &str) {
        wait(
            self.name,
            &format!("{node}'s taints removed"),
            15.0,
            || async { taints(&self.node(node).await).is_empty().then_some(()) },
        )
        .await
    }

    pub(crate) fn controller_requests(&self) -> Vec<Request> {
        audit::by(&self.kbox.audit_log, CONTROLLER)
    }

    /// When the NoExecute taint `key` landed on `node` (the controller's patch that added it).
    pub(crate) fn no_execute_added(&self, node: &str, key: &str) -> Vec<Timestamp> {
        let mut had = false;
        let mut added = Vec::new();
        for r in self.controller_requests() {
            let taint_write = r.verb == "patch"
                && r.resource == "nodes"
                && r.subresource.is_empty()
                && r.name == node
                && r.ok();
            if let Some(keys) = audit::no_execute_keys(&r.body).filter(|_| taint_write) {
                let has = keys.iter().any(|k| k == key);
                if has && !had {
                    added.push(r.at);
                }
                had = has;
            }
        }
        added
    }

    /// The controller's successful writes of `what` (`resource[/subresource]`) to `name`.
    pub(crate) fn writes(&self, verb: &str, what: &str, name: &str) -> Vec<Request> {
        self.controller_requests()
            .into_iter()
            .filter(|r| r.verb == verb && r.what() == what && r.name == name && r.ok())
            .collect()
    }

    /// The checks every scenario ends with.
    pub(crate) fn common_checks(&self) {
        self.common_checks_starting(None);
    }

    /// `common_checks`, for a scenario that starts kube-apiserver again: `starting` is from
    /// when it was started to when it was ready. A fresh server refuses requests (403) until
    /// its authorizer has read the RBAC objects; such a refusal is the server's, not the
    /// chart's, when the same user's same verb on the same resource succeeded later (for a
    /// read, any read, a watch the server started answering included: a watch still open at
    /// the end, such as a streaming list's, has no completed entry in the log).
    pub(crate) fn common_checks_starting(&self, starting: Option<(Timestamp, Timestamp)>) {
        let requests = self.controller_requests();
        assert!(
            !requests.is_empty(),
            "{}: the audit log has no request of {CONTROLLER}",
            self.name
        );
        // Everyone's: a replica that lost its credentials would be `system:anonymous`.
        let all = audit::read(&self.kbox.audit_log);
        let watches = audit::watches_started(&self.kbox.audit_log);
        let server_starting = |r: &Request| {
            starting.is_some_and(|(from, ready)| {
                r.code == 403
                    && (from..=ready).contains(&r.at)
                    && all.iter().chain(&watches).any(|later| {
                        let read = |verb: &str| matches!(verb, "get" | "list" | "watch");
                        let same_verb =
                            later.verb == r.verb || (read(&r.verb) && read(&later.verb));
                        later.at > ready
                            && (200..300).contains(&later.code)
                            && (&later.user, &later.resource) == (&r.user, &r.resource)
                            && same_verb
                    })
            })
        };
        let forbidden: Vec<String> = all
            .iter()
            .filter(|r| (r.code == 403 || r.code == 401) && !server_starting(r))
            .map(|r| {
                format!(
                    "{} {} {} {}/{}",
                    r.user,
                    r.verb,
                    r.what(),
                    r.namespace,
                    r.name
                )
            })
            .collect();
        assert!(
            forbidden.is_empty(),
            "{}: the chart's RBAC refused {forbidden:?}",
            self.name
        );
        let puts: Vec<String> = requests
            .iter()
            .filter(|r| r.verb == "update" && matches!(r.resource.as_str(), "nodes" | "pods"))
            .map(|r| format!("PUT {} {}", r.what(), r.name))
            .collect();
        assert!(
            puts.is_empty(),
            "{}: full PUTs of objects we do not own: {puts:?}",
            self.name
        );
        // The start-up RBAC check asks for every verb the controller then uses: a grant
        // missing from the chart shows at start, named, not as 403s later.
        let checked =
            permissions::required("kube-node-lease", Some((NAMESPACE, RELEASE)), true, true);
        let unchecked: BTreeSet<String> = requests
            .iter()
            .filter(|r| r.resource != "selfsubjectaccessreviews")
            // Non-resource URLs (GET /version), open to every authenticated user.
            .filter(|r| !r.resource.is_empty())
            .filter(|r| {
                !checked.iter().any(|p| {
                    p.verb == r.verb
                        && p.resource == r.resource
                        && p.subresource.unwrap_or_default() == r.subresource
                })
            })
            .map(|r| format!("{} {}", r.verb, r.what()))
            .collect();
        assert!(
            unchecked.is_empty(),
            "{}: used but not in the start-up check: {unchecked:?}",
            self.name
        );
    }

    async fn events(&self, namespace: &str) -> Vec<Value> {
        self.get(&format!(
            "/apis/events.k8s.io/v1/namespaces/{namespace}/events"
        ))
        .await
        .and_then(|l| l["items"].as_array().cloned())
        .unwrap_or_default()
    }
}

/// Polls `f` every 200 ms until it gives a value, for at most `seconds`.
pub(crate) async fn wait<T, F, Fut>(scenario: &str, what: &str, seconds: f64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(seconds);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{scenario}: waited {seconds}s for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub(crate) fn taints(node: &Value) -> Vec<(String, String)> {
    node["spec"]["taints"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .map(|t| {
                    (
                        t["key"].as_str().unwrap_or_default().to_string(),
                        t["effect"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn has_taint(node: &Value, key: &str, effect: &str) -> bool {
    taints(node).iter().any(|(k, e)| k == key && e == effect)
}

/// The `timeAdded` of the node's NoExecute taint `key`.
pub(crate) fn time_added(node: &Value, key: &str) -> Option<Timestamp> {
    node["spec"]["taints"]
        .as_array()?
        .iter()
        .find(|t| t["key"] == key && t["effect"] == "NoExecute")?["timeAdded"]
        .as_str()?
        .parse()
        .ok()
}

pub(crate) fn condition<'a>(object: &'a Value, type_: &str) -> Option<&'a Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

fn secs(d: SignedDuration) -> f64 {
    d.as_secs_f64()
}

pub(crate) fn since(later: Timestamp, earlier: Timestamp) -> f64 {
    secs(later.duration_since(earlier))
}

pub(crate) fn report(scenario: &str, line: String) {
    println!("real_cluster: {scenario}: {line}");
}

/// Waits for the controller's deletion of the pod and checks it against its due time (the
/// taint's `timeAdded`, whole seconds, plus the toleration): not before, and within 1.5 s after
/// (the second `timeAdded` drops, plus half a second). Returns the lateness against the due
/// time computed from the taint write itself.
async fn deleted_on_time(
    env: &Env,
    namespace: &str,
    pod: &str,
    taint_added: Timestamp,
    time_added: Timestamp,
    toleration: f64,
    slack: f64,
) -> f64 {
    let deletes = wait(
        env.name,
        &format!("the deletion of {pod}"),
        toleration + 20.0 + slack,
        || async {
            let d = env.writes("delete", "pods", pod);
            (!d.is_empty()).then_some(d)
        },
    )
    .await;
    assert_eq!(deletes.len(), 1, "{}: {pod} deleted once", env.name);
    let at = deletes[0].at;
    let from_time_added = since(at, time_added) - toleration;
    assert!(
        (0.0..=1.5 + slack).contains(&from_time_added),
        "{}: {pod} deleted {from_time_added:.3}s after timeAdded + {toleration}s (allowed: 0 to {:.1})",
        env.name,
        1.5 + slack
    );
    // The Pod is Terminating: its kubelet is gone, so it stays until the node returns.
    let p = env.pod(namespace, pod).await;
    if let Some(p) = &p {
        assert!(
            p["metadata"]["deletionTimestamp"].is_string(),
            "{}: {pod} is terminating",
            env.name
        );
        let target = condition(p, "DisruptionTarget").expect("DisruptionTarget condition");
        assert_eq!(target["status"], "True");
        assert_eq!(target["reason"], "DeletionByTaintManager");
    }
    since(at, taint_added) - toleration
}

// ---------------------------------------------------------------------------------------------
// The scenarios.

/// A kubelet stops: Unknown within grace + period + 1 s of its last renewal, unreachable
/// taints, NodeNotReady Events, pods marked not ready, each pod deleted at taint + toleration,
/// nothing done to a healthy node's pods; the kubelet's return removes the taints.
async fn node_lost(net: u8) {
    let env = deployed("node_lost", net, 1, &[]).await;
    let nodes = [
        ("a-0", "zone-a"),
        ("a-1", "zone-a"),
        ("a-2", "zone-a"),
        ("b-0", "zone-b"),
        ("b-1", "zone-b"),
    ];
    let fleet = env.fleet(&nodes, false).await;
    fleet
        .add_pod("shop", "tol-10", "a-1", tolerate_both(Some(10)))
        .await;
    fleet.add_pod("shop", "tol-default", "a-1", json!([])).await;
    fleet
        .add_pod("shop", "forever", "a-1", tolerate_both(None))
        .await;
    fleet
        .add_pod("shop", "healthy", "b-0", tolerate_both(Some(10)))
        .await;
    // DefaultTolerationSeconds gave the pod without tolerations 300 s of both.
    let p = env.pod("shop", "tol-default").await.expect("pod");
    assert!(
        p["spec"]["tolerations"].to_string().contains("300"),
        "admission's 300s: {p}"
    );

    let last = fleet.stop("a-1");
    let n = env.tainted("a-1", UNREACHABLE, GRACE + 30.0).await;
    let unknown = env.writes("patch", "nodes/status", "a-1");
    assert_eq!(unknown.len(), 1, "one Unknown mark of a-1");
    let to_unknown = since(unknown[0].at, last);
    assert!(
        (GRACE..=GRACE + PERIOD + 1.0).contains(&to_unknown),
        "a-1 marked Unknown {to_unknown:.3}s after its last renewal (allowed {GRACE} to {})",
        GRACE + PERIOD + 1.0
    );
    for c in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] {
        let cond = condition(&n, c).unwrap_or_else(|| panic!("{c} condition"));
        assert_eq!(cond["status"], "Unknown", "{c}: {cond}");
        assert_eq!(cond["reason"], "NodeStatusUnknown", "{c}: {cond}");
    }
    assert!(
        has_taint(&n, UNREACHABLE, "NoSchedule"),
        "unreachable:NoSchedule on a-1"
    );
    let added = env.no_execute_added("a-1", UNREACHABLE);
    assert_eq!(added.len(), 1, "the NoExecute taint written once");
    let time_added = time_added(&n, UNREACHABLE).expect("timeAdded");
    let late = deleted_on_time(&env, "shop", "tol-10", added[0], time_added, 10.0, 0.0).await;
    report(
        env.name,
        format!(
            "Unknown {to_unknown:.2}s after the last renewal (bound {:.0}s); NoExecute {:.3}s after Unknown; tol-10 deleted {late:.3}s after taint + 10s",
            GRACE + PERIOD + 1.0,
            since(added[0], unknown[0].at)
        ),
    );
    let node_events: Vec<Value> = env
        .events("default")
        .await
        .into_iter()
        .filter(|e| e["regarding"]["name"] == "a-1" && e["reason"] == "NodeNotReady")
        .collect();
    assert!(!node_events.is_empty(), "a NodeNotReady Event for a-1");
    let pod_events = env.events("shop").await;
    for pod in ["forever", "tol-default"] {
        let p = env.pod("shop", pod).await.expect("pod stays");
        assert_eq!(
            condition(&p, "Ready").expect("Ready")["status"],
            "False",
            "{pod} marked not ready"
        );
        assert!(
            p["metadata"]["deletionTimestamp"].is_null(),
            "{pod} not deleted"
        );
        assert!(
            pod_events
                .iter()
                .any(|e| e["regarding"]["name"] == pod && e["reason"] == "NodeNotReady"),
            "a NodeNotReady Event for pod {pod}"
        );
    }
    // Pods of healthy nodes: not one write.
    let touched: Vec<_> = env
        .controller_requests()
        .into_iter()
        .filter(|r| r.is_write() && r.resource == "pods" && r.name == "healthy")
        .collect();
    assert!(
        touched.is_empty(),
        "writes to a healthy node's pod: {touched:?}"
    );
    assert!(
        env.no_execute_added("a-0", UNREACHABLE).is_empty()
            && env.no_execute_added("b-0", UNREACHABLE).is_empty()
    );

    fleet.resume("a-1").await;
    env.untainted("a-1").await;
    env.common_checks();
}

/// The kubelet returns before a 60 s toleration runs out: taints removed, the countdown
/// cancelled (an Event says so), nothing deleted after the deadline.
async fn kubelet_back_before_the_deadline(net: u8) {
    let env = deployed("kubelet_back_before_the_deadline", net, 1, &[]).await;
    let fleet = env.fleet(&ZONE_A, false).await;
    fleet
        .add_pod("shop", "tol-30", "a-1", tolerate_both(Some(30)))
        .await;
    fleet.stop("a-1");
    let n = env.tainted("a-1", UNREACHABLE, GRACE + 30.0).await;
    let due = time_added(&n, UNREACHABLE).expect("timeAdded") + SignedDuration::from_secs(30);
    tokio::time::sleep(Duration::from_secs(5)).await;
    fleet.resume("a-1").await;
    env.untainted("a-1").await;
    let wait_past = since(due, Timestamp::now()) + 5.0;
    tokio::time::sleep(Duration::from_secs_f64(wait_past.max(0.0))).await;
    assert!(
        env.writes("delete", "pods", "tol-30").is_empty(),
        "tol-30 not deleted"
    );
    let p = env.pod("shop", "tol-30").await.expect("tol-30 exists");
    assert!(p["metadata"]["deletionTimestamp"].is_null());
    let cancelled = env.events("shop").await.into_iter().any(|e| {
        e["regarding"]["name"] == "tol-30"
            && e["note"]
                .as_str()
                .unwrap_or_default()
                .starts_with("Cancelling deletion")
    });
    assert!(cancelled, "a 'Cancelling deletion' Event for tol-30");
    env.common_checks();
}

/// Issue 25: the kubelet comes back between the decisions to evict its pods and their writes.
/// The controller runs on a budget of 2 requests a second (`kubeApiQps=1` per controller), so
/// the deletions of 30 pods falling due together queue for tokens; the kubelet returns a few
/// seconds into the wave. Its NoExecute taint comes off (that write goes ahead of the queued
/// deletions), and no deletion completes after the untaint did (0.5 s allowed for one already
/// sent); the wave had begun (some pods deleted) and the rest are kept.
async fn kubelet_back_while_its_pods_deletions_wait_for_tokens(net: u8) {
    let name = "kubelet_back_while_its_pods_deletions_wait_for_tokens";
    let env = deployed(name, net, 1, &["kubeApiQps=1", "kubeApiBurst=1"]).await;
    let fleet = env.fleet(&ZONE_A, false).await;
    let pods: Vec<String> = (0..30).map(|i| format!("wave-{i:02}")).collect();
    for pod in &pods {
        fleet
            .add_pod("shop", pod, "a-1", tolerate_both(Some(20)))
            .await;
    }
    fleet.stop("a-1");
    let n = env.tainted("a-1", UNREACHABLE, GRACE + 30.0).await;
    let due = time_added(&n, UNREACHABLE).expect("timeAdded") + SignedDuration::from_secs(20);
    // A few seconds into the wave: at 2 requests a second, a handful of pods are gone.
    let back = due + SignedDuration::from_secs(6);
    tokio::time::sleep(Duration::from_secs_f64(
        since(back, Timestamp::now()).max(0.0),
    ))
    .await;
    fleet.resume("a-1").await;
    env.untainted("a-1").await;
    // Long enough for every queued deletion to have been sent at 2 a second, had it been.
    tokio::time::sleep(Duration::from_secs(20)).await;

    let untaint = env
        .controller_requests()
        .into_iter()
        .filter(|r| r.verb == "patch" && r.what() == "nodes" && r.name == "a-1" && r.ok())
        .filter(|r| {
            audit::no_execute_keys(&r.body)
                .is_some_and(|keys| keys.iter().all(|k| k != UNREACHABLE))
        })
        .map(|r| r.at)
        .find(|at| *at > due)
        .expect("the controller's patch that took the taint off a-1");
    let deleted: Vec<(String, Timestamp)> = pods
        .iter()
        .flat_map(|p| {
            env.writes("delete", "pods", p)
                .into_iter()
                .map(|r| (r.name, r.at))
        })
        .collect();
    let after: Vec<String> = deleted
        .iter()
        .filter(|(_, at)| since(*at, untaint) > 0.5)
        .map(|(p, at)| format!("{p} at +{:.2}s", since(*at, untaint)))
        .collect();
    assert!(
        after.is_empty(),
        "{name}: deletions completed after the untaint: {after:?}"
    );
    assert!(
        !deleted.is_empty(),
        "{name}: the wave had not begun when the kubelet came back (nothing tested)"
    );
    let mut kept = 0;
    for pod in &pods {
        if let Some(p) = env.pod("shop", pod).await
            && p["metadata"]["deletionTimestamp"].is_null()
        {
            kept += 1;
        }
    }
    assert!(
        kept > 0 && kept + deleted.len() == pods.len(),
        "{name}: {kept} kept and {} deleted of {}",
        deleted.len(),
        pods.len()
    );
    report(
        name,
        format!(
            "{} of {} pods deleted before the untaint, {kept} kept",
            deleted.len(),
            pods.len()
        ),
    );
    env.common_checks();
}

/// The kubelet keeps its Lease but reports Ready=False: not-ready taints (not unreachable),
/// the 10 s pod deleted on time, the forever pod kept, no Unknown mark.
async fn kubelet_reports_not_ready(net: u8) {
    let env = deployed("kubelet_reports_not_ready", net, 1, &[]).await;
    let fleet = env.fleet(&ZONE_A, false).await;
    fleet
        .add_pod("shop", "tol-10", "a-1", tolerate_both(Some(10)))
        .await;
    fleet
        .add_pod("shop", "forever", "a-1", tolerate_both(None))
        .await;
    let reported = Timestamp::now();
    fleet.report_not_ready("a-1").await;
    let n = wait(
        env.name,
        "a-1 tainted not-ready:NoExecute",
        20.0,
        || async {
            let n = env.node("a-1").await;
            has_taint(&n, NOT_READY, "NoExecute").then_some(n)
        },
    )
    .await;
    assert!(has_taint(&n, NOT_READY, "NoSchedule"));
    assert!(!has_taint(&n, UNREACHABLE, "NoExecute") && !has_taint(&n, UNREACHABLE, "NoSchedule"));
    let added = env.no_execute_added("a-1", NOT_READY);
    assert_eq!(added.len(), 1);
    assert!(
        env.writes("patch", "nodes/status", "a-1").is_empty(),
        "no Unknown mark of a heartbeating node"
    );
    let ta = time_added(&n, NOT_READY).expect("timeAdded");
    let late = deleted_on_time(&env, "shop", "tol-10", added[0], ta, 10.0, 0.0).await;
    report(
        env.name,
        format!(
            "not-ready:NoExecute {:.2}s after the kubelet reported Ready=False; tol-10 deleted {late:.3}s after taint + 10s",
            since(added[0], reported)
        ),
    );
    assert!(env.writes("delete", "pods", "forever").is_empty());
    env.common_checks();
}

/// zone-a loses all its 3 nodes (FullDisruption, the other zones not: primary rate, 2 s apart),
/// zone-c 3 of its 4 (PartialDisruption of a large zone: secondary rate, 5 s apart), zone-b
/// stays healthy and untouched.
async fn zone_rates(net: u8) {
    let env = deployed("zone_rates", net, 1, &[]).await;
    let mut nodes = Vec::new();
    for (zone, n) in [("a", 3), ("b", 3), ("c", 4)] {
        for i in 0..n {
            nodes.push((format!("{zone}-{i}"), format!("zone-{zone}")));
        }
    }
    let refs: Vec<(&str, &str)> = nodes
        .iter()
        .map(|(n, z)| (n.as_str(), z.as_str()))
        .collect();
    let fleet = env.fleet(&refs, false).await;
    let lost = ["a-0", "a-1", "a-2", "c-0", "c-1", "c-2"];
    fleet.stop_together(&lost).await;
    // Zone c's three taints take at least 2 × 5 s after its first.
    wait(
        env.name,
        "all six lost nodes tainted",
        GRACE + 60.0,
        || async {
            for n in lost {
                if !has_taint(&env.node(n).await, UNREACHABLE, "NoExecute") {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    for (zone, rate) in [("a", PRIMARY_RATE), ("c", SECONDARY_RATE)] {
        let mut times: Vec<Timestamp> = lost
            .iter()
            .filter(|n| n.starts_with(zone))
            .flat_map(|n| env.no_execute_added(n, UNREACHABLE))
            .collect();
        times.sort();
        assert_eq!(times.len(), 3, "zone-{zone}: three taints");
        let gaps: Vec<f64> = times.windows(2).map(|w| since(w[1], w[0])).collect();
        report(
            env.name,
            format!("zone-{zone}: NoExecute taints {gaps:.2?} s apart (rate {rate}/s)"),
        );
        for g in &gaps {
            assert!(
                *g >= 1.0 / rate - 0.25,
                "zone-{zone}: taints {g:.3}s apart, closer than the rate {rate}/s allows"
            );
        }
    }
    for n in ["b-0", "b-1", "b-2", "c-3"] {
        assert!(taints(&env.node(n).await).is_empty(), "{n} untouched");
    }
    env.common_checks();
}

/// Two replicas; the leader is stopped by `signal` in the middle of a 20 s countdown: the
/// other takes over and deletes the pod on time, every write applied once.
async fn leader_stopped_mid_countdown(name: &'static str, net: u8, signal: &str) {
    let mut env = deployed(name, net, 2, &[]).await;
    let fleet = env.fleet(&ZONE_A, false).await;
    fleet
        .add_pod("shop", "tol-20", "a-1", tolerate_both(Some(20)))
        .await;
    fleet.stop("a-1");
    let n = env.tainted("a-1", UNREACHABLE, GRACE + 30.0).await;
    let ta = time_added(&n, UNREACHABLE).expect("timeAdded");
    tokio::time::sleep(Duration::from_secs(6)).await;
    let leader = env.leader(5.0).await;
    let i = env
        .replicas
        .iter()
        .position(|r| r.pod == leader)
        .expect("leader is ours");
    let stopped = Timestamp::now();
    env.replicas[i].signal(signal);
    let exit = env.replicas[i].wait_exit(15);
    assert!(exit.is_some(), "the leader exits on {signal}");
    let other = env.replicas[1 - i].pod.clone();
    let new_leader = wait(env.name, "the other replica leading", 20.0, || async {
        env.holder().await.filter(|l| *l == other)
    })
    .await;
    let took_over = since(Timestamp::now(), stopped);
    let added = env.no_execute_added("a-1", UNREACHABLE);
    let late = deleted_on_time(&env, "shop", "tol-20", added[0], ta, 20.0, 0.0).await;
    report(
        env.name,
        format!(
            "{new_leader} leading within {took_over:.1}s of {signal}; tol-20 deleted {late:.3}s after taint + 20s"
        ),
    );
    // Every write applied once: one Unknown mark, one NoExecute taint, one deletion.
    assert_eq!(
        env.writes("patch", "nodes/status", "a-1").len(),
        1,
        "a-1 marked Unknown once"
    );
    assert_eq!(
        added.len(),
        1,
        "a-1's NoExecute taint written once (its timeAdded kept)"
    );
    assert_eq!(time_added(&env.node("a-1").await, UNREACHABLE), Some(ta));
    assert_eq!(env.writes("delete", "pods", "tol-20").len(), 1);
    env.common_checks();
}

async fn leader_sigterm_mid_countdown(net: u8) {
    leader_stopped_mid_countdown("leader_sigterm_mid_countdown", net, "TERM").await;
}

async fn leader_sigkill_mid_countdown(net: u8) {
    leader_stopped_mid_countdown("leader_sigkill_mid_countdown", net, "KILL").await;
}

/// `--eviction-mode=evict` and a PodDisruptionBudget that allows no disruption: the API
/// server's 429 is honoured (the pod stays past its due time), and once the budget allows it
/// the pod is evicted.
async fn evict_mode_honours_the_budget(net: u8) {
    let env = deployed(
        "evict_mode_honours_the_budget",
        net,
        1,
        &["evictionMode=evict"],
    )
    .await;
    let fleet = env.fleet(&ZONE_A, false).await;
    fleet
        .add_pod("shop", "guarded", "a-1", tolerate_both(Some(5)))
        .await;
    let pdbs: Api<k8s_openapi::api::policy::v1::PodDisruptionBudget> =
        Api::namespaced(env.client.clone(), "shop");
    let pdb = serde_json::from_value(json!({
        "metadata": {"name": "guarded"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "guarded"}}},
    }))
    .expect("pdb");
    let pdb = pdbs
        .create(&Default::default(), &pdb)
        .await
        .expect("create pdb");
    let generation = pdb.metadata.generation.unwrap_or(1);
    // No disruption controller runs in the box: the test plays it.
    let budget = |allowed: i32| {
        json!({"status": {"observedGeneration": generation, "disruptionsAllowed": allowed,
            "currentHealthy": allowed, "desiredHealthy": 1, "expectedPods": 1}})
    };
    pdbs.patch_status("guarded", &PatchParams::default(), &Patch::Merge(budget(0)))
        .await
        .expect("pdb status");
    fleet.stop("a-1");
    let n = env.tainted("a-1", UNREACHABLE, GRACE + 30.0).await;
    let due = time_added(&n, UNREACHABLE).expect("timeAdded") + SignedDuration::from_secs(5);
    let refused = wait(env.name, "a refused eviction", 30.0, || async {
        let r: Vec<Request> = env
            .controller_requests()
            .into_iter()
            .filter(|r| {
                r.verb == "create"
                    && r.what() == "pods/eviction"
                    && r.name == "guarded"
                    && r.code == 429
            })
            .collect();
        (!r.is_empty()).then_some(r)
    })
    .await;
    assert!(
        refused[0].at >= due,
        "no eviction attempt before the pod is due"
    );
    tokio::time::sleep(Duration::from_secs(8)).await;
    let p = env.pod("shop", "guarded").await.expect("guarded stays");
    assert!(
        p["metadata"]["deletionTimestamp"].is_null(),
        "the budget keeps the pod"
    );
    let allowed_at = Timestamp::now();
    pdbs.patch_status("guarded", &PatchParams::default(), &Patch::Merge(budget(1)))
        .await
        .expect("pdb status");
    let evicted = wait(
        env.name,
        "the eviction once the budget allows it",
        60.0,
        || async {
            env.writes("create", "pods/eviction", "guarded")
                .into_iter()
                .next()
        },
    )
    .await;
    assert!(evicted.at > allowed_at);
    let attempts = env
        .controller_requests()
        .into_iter()
        .filter(|r| r.what() == "pods/eviction" && r.code == 429)
        .count();
    report(
        env.name,
        format!(
            "{attempts} evictions refused with 429 (first {:.2}s after due), evicted {:.2}s after the budget allowed it",
            since(refused[0].at, due),
            since(evicted.at, allowed_at)
        ),
    );
    assert!(
        env.writes("delete", "pods", "guarded").is_empty(),
        "evicted, not deleted"
    );
    env.common_checks();
}

/// `--dry-run`: a node is lost long enough for every action, and the controller writes
/// nothing but its own leader Lease.
async fn dry_run_writes_nothing(net: u8) {
    let env = deployed("dry_run_writes_nothing", net, 1, &["dryRun=true"]).await;
    let fleet = Fleet::start(env.client.clone(), &ZONE_A, false).await;
    fleet
        .add_pod("shop", "tol-5", "a-1", tolerate_both(Some(5)))
        .await;
    fleet.stop("a-1");
    tokio::time::sleep(Duration::from_secs_f64(GRACE + PERIOD + 5.0 + 10.0)).await;
    let writes: Vec<String> = env
        .controller_requests()
        .into_iter()
        .filter(|r| r.is_write())
        // Access reviews are questions (nothing is stored); the leader Lease is its own.
        .filter(|r| r.resource != "selfsubjectaccessreviews")
        .filter(|r| !(r.resource == "leases" && r.namespace == NAMESPACE && r.name == RELEASE))
        .map(|r| format!("{} {} {}/{}", r.verb, r.what(), r.namespace, r.name))
        .collect();
    assert!(writes.is_empty(), "dry run wrote {writes:?}");
    let n = env.node("a-1").await;
    assert_eq!(
        condition(&n, "Ready").expect("Ready")["status"],
        "True",
        "a-1 not marked"
    );
    // The controller did see the node go silent: it says what it would have done.
    let log = std::fs::read_to_string(env.kbox.logs.join(format!("{}.log", env.replicas[0].pod)))
        .unwrap_or_default();
    assert!(
        log.contains("a-1"),
        "the dry run's log names the silent node"
    );
    env.common_checks();
}

/// `--node-lease-namespace` pointing at a namespace that exists but holds no node's Lease
/// (kube-system: the chart's own leader Lease is there): the kubelets are alive, only their
/// Leases are out of sight. Nothing is marked Unknown, no pod NotReady, no taint, although
/// every Node's status heartbeat is far older than the grace period; the log says why.
async fn a_wrong_lease_namespace_marks_nothing(net: u8) {
    wrong_lease_namespace("a_wrong_lease_namespace_marks_nothing", net, "kube-system").await;
}

/// The same with a namespace that exists and holds no Lease at all (issue 24, a new user's
/// typo): the real server answers its empty metadata list with `"items": null`, which the
/// client once failed to decode, so the staleness guard held back every 5 s with a serde error
/// instead of only reporting the misconfiguration.
async fn an_empty_lease_namespace_marks_nothing(net: u8) {
    wrong_lease_namespace(
        "an_empty_lease_namespace_marks_nothing",
        net,
        "kube-node-leases",
    )
    .await;
}

async fn wrong_lease_namespace(name: &'static str, net: u8, namespace: &str) {
    let mut env = boxed(name).await;
    // The chart grants reading Leases there with a Role in that namespace: it must exist.
    fleet::ensure_namespace(&env.client, namespace).await;
    env.deploy(net, 1, &[&format!("nodeLeaseNamespace={namespace}")])
        .await;
    let fleet = Fleet::start(env.client.clone(), &ZONE_A, false).await;
    fleet.add_pod("shop", "web", "a-1", json!([])).await;
    // What the server answers for the metadata list the staleness guard reads.
    let request = http::Request::get(format!(
        "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
    ))
    .header(
        "accept",
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
    )
    .body(Vec::new())
    .expect("request");
    let answered: Value = env
        .client
        .request(request)
        .await
        .expect("metadata list of the Lease namespace");
    // Two grace periods and more: the suspicion is reported after one.
    tokio::time::sleep(Duration::from_secs_f64(2.0 * GRACE + PERIOD + 5.0)).await;
    let writes: Vec<String> = env
        .controller_requests()
        .into_iter()
        .filter(|r| r.is_write())
        // Node patches of the chart's start (admission's not-ready NoSchedule taint off a
        // Ready node, beta labels) are not about health; status and pod writes are.
        .filter(|r| r.what() != "nodes")
        .filter(|r| matches!(r.resource.as_str(), "nodes" | "pods"))
        .map(|r| format!("{} {} {}", r.verb, r.what(), r.name))
        .collect();
    assert!(writes.is_empty(), "{name}: wrote {writes:?}");
    for node in ["a-0", "a-1", "a-2"] {
        let n = env.node(node).await;
        assert_eq!(condition(&n, "Ready").expect("Ready")["status"], "True");
        assert!(
            !has_taint(&n, UNREACHABLE, "NoExecute") && !has_taint(&n, UNREACHABLE, "NoSchedule"),
            "{name}: {node} tainted: {:?}",
            taints(&n)
        );
    }
    // The replica says it on /readyz (not ready: only an operator can fix it) and in its log.
    let expected = format!("none of the 3 nodes has a Lease in namespace \"{namespace}\"");
    let addr: std::net::SocketAddr = format!("127.77.{net}.1:10257").parse().expect("addr");
    let (status, body) = scrape::https_get(addr, "/readyz", None)
        .await
        .unwrap_or_else(|e| panic!("{name}: /readyz: {e}"));
    assert!(
        status == 503
            && body.contains("suspected misconfiguration (node_leases)")
            && body.contains(&expected),
        "{name}: /readyz answered {status}: {body}"
    );
    let log = std::fs::read_to_string(env.kbox.logs.join(format!("{}.log", env.replicas[0].pod)))
        .unwrap_or_default();
    assert!(
        log.contains("suspected misconfiguration") && log.contains(&expected),
        "{name}: the log says what is wrong:\n{log}"
    );
    // The guard's reads of the namespace are decoded, empty or not: no read of it failed.
    let failed: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("cannot confirm the watch is fresh") || l.contains("invalid type: null")
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{name}: the staleness guard could not read the Lease namespace ({} times), first:\n{}",
        failed.len(),
        failed[..failed.len().min(2)].join("\n")
    );
    let items = match &answered["items"] {
        Value::Array(a) => format!("{} items", a.len()),
        other => format!("\"items\": {other}"),
    };
    report(
        name,
        format!(
            "the server listed {namespace}'s Lease metadata with {items}; /readyz {status}, nothing marked"
        ),
    );
    env.common_checks();
}

/// The numeric toleration operators (KEP-5471, `TaintTolerationComparisonOperators`, alpha
/// since 1.35; the box turns it on for 1.37): a NoExecute taint `example.com/sla=950` on a-1.
/// The pod tolerating it with `Gt 900` (950 > 900) stays; the one with `Gt 990` and the one
/// with `Lt 900` do not tolerate it and are deleted at once.
async fn numeric_tolerations_are_honoured(net: u8) -> Option<String> {
    let mut env = boxed("numeric_tolerations_are_honoured").await;
    if !env.kbox.is_at_least(37) {
        return Some(format!(
            "{} does not admit the Lt/Gt operators (the box enables them from 1.37)",
            env.kbox.version
        ));
    }
    env.deploy(net, 1, &[]).await;
    let fleet = env.fleet(&ZONE_A, false).await;
    let sla = |op: &str, value: &str| json!([{"key": "example.com/sla", "operator": op, "value": value, "effect": "NoExecute"}]);
    fleet
        .add_pod("shop", "gt-900", "a-1", sla("Gt", "900"))
        .await;
    fleet
        .add_pod("shop", "gt-990", "a-1", sla("Gt", "990"))
        .await;
    fleet
        .add_pod("shop", "lt-900", "a-1", sla("Lt", "900"))
        .await;
    let kept = env.pod("shop", "gt-900").await.expect("pod");
    assert_eq!(
        kept["spec"]["tolerations"][0]["operator"], "Gt",
        "the API server kept the operator"
    );
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(env.client.clone());
    let taint = json!({"spec": {"taints": [
        {"key": "example.com/sla", "value": "950", "effect": "NoExecute"}]}});
    nodes
        .patch("a-1", &PatchParams::default(), &Patch::Merge(taint))
        .await
        .expect("taint a-1");
    for pod in ["gt-990", "lt-900"] {
        wait(
            env.name,
            &format!("the deletion of {pod}"),
            15.0,
            || async { (!env.writes("delete", "pods", pod).is_empty()).then_some(()) },
        )
        .await;
    }
    // Well past the others' deletions: the tolerating pod is still there, not terminating.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(env.writes("delete", "pods", "gt-900").is_empty());
    let kept = env.pod("shop", "gt-900").await.expect("gt-900 kept");
    assert!(kept["metadata"]["deletionTimestamp"].is_null(), "{kept}");
    env.common_checks();
    None
}

/// Fields a 1.37 API server keeps and the controller's types lack (Node
/// `spec.podPreemptionPolicy`, `status.declaredFeatures`; Pod `status.volumeHealth`) survive
/// every kind of write the controller makes to Nodes and Pods.
async fn no_data_lost(net: u8) -> Option<String> {
    let mut env = boxed("no_data_lost").await;
    if !env.kbox.is_at_least(37) {
        return Some(format!("{} has none of the fields", env.kbox.version));
    }
    // The fleet first, so that the fields are seen on the server before the controller writes.
    let nodes = ZONE_A;
    let fleet = Fleet::start(env.client.clone(), &nodes, true).await;
    fleet
        .add_pod("shop", "victim", "a-1", tolerate_both(Some(5)))
        .await;
    fleet
        .add_pod("shop", "marked", "a-1", tolerate_both(None))
        .await;
    let vh = |p: &Value| p["status"]["volumeHealth"][0]["healthConditions"][0]["reason"].clone();
    let n = env.node("a-1").await;
    assert_eq!(
        n["status"]["declaredFeatures"],
        json!([fleet::DECLARED_FEATURE]),
        "the box keeps declaredFeatures: {n}"
    );
    assert_eq!(
        n["spec"]["podPreemptionPolicy"]["disableResizePreemption"],
        json!([fleet::PREEMPTION_OWNER]),
        "the box keeps podPreemptionPolicy: {n}"
    );
    for pod in ["victim", "marked"] {
        let p = env.pod("shop", pod).await.expect("pod");
        assert_eq!(
            vh(&p),
            json!("VolumeDegraded"),
            "the box keeps volumeHealth"
        );
    }
    env.deploy(net, 1, &[]).await;
    fleet.stop("a-1");
    wait(env.name, "victim deleted", GRACE + 40.0, || async {
        let d = env.writes("delete", "pods", "victim");
        (!d.is_empty()).then_some(())
    })
    .await;
    fleet.resume("a-1").await;
    env.untainted("a-1").await;
    let n = env.node("a-1").await;
    assert_eq!(
        n["status"]["declaredFeatures"],
        json!([fleet::DECLARED_FEATURE]),
        "status.declaredFeatures kept: {}",
        n["status"]
    );
    assert_eq!(
        n["spec"]["podPreemptionPolicy"]["disableResizePreemption"],
        json!([fleet::PREEMPTION_OWNER]),
        "spec.podPreemptionPolicy kept: {}",
        n["spec"]
    );
    for pod in ["victim", "marked"] {
        let p = env.pod("shop", pod).await.expect("pod readable");
        assert_eq!(
            vh(&p),
            json!("VolumeDegraded"),
            "{pod}: status.volumeHealth kept: {}",
            p["status"]
        );
    }
    // Every kind of write happened, each applied to the objects carrying the fields.
    for (verb, what, name) in [
        ("patch", "nodes", "a-1"),
        ("patch", "nodes/status", "a-1"),
        ("patch", "pods/status", "victim"),
        ("patch", "pods/status", "marked"),
        ("delete", "pods", "victim"),
    ] {
        assert!(
            !env.writes(verb, what, name).is_empty(),
            "the controller's {verb} of {what} {name}"
        );
    }
    let label_writes = env
        .writes("patch", "nodes", "a-1")
        .iter()
        .filter(|r| r.body["metadata"]["labels"].is_object())
        .count();
    assert!(label_writes >= 1, "the beta labels were written to a-1");
    let marked = env.pod("shop", "marked").await.expect("marked");
    assert_eq!(
        condition(&marked, "Ready").expect("Ready")["status"],
        "False"
    );
    let victim = env.pod("shop", "victim").await.expect("victim");
    assert!(condition(&victim, "DisruptionTarget").is_some());
    report(env.name, "declaredFeatures, podPreemptionPolicy and volumeHealth survived labels, taints, the Unknown mark, pod marks, DisruptionTarget".into());
    env.common_checks();
    None
}

/// Issue 18, defect 2: 30 Ready nodes carry admission's `not-ready` NoSchedule taint when the
/// controller starts (their kubelets post status only every few minutes): the taint goes from
/// all of them within a few monitor periods of the controller leading, with their beta labels.
async fn a_start_clears_stale_condition_taints(net: u8) {
    let mut env = boxed("a_start_clears_stale_condition_taints").await;
    let names: Vec<(String, String)> = (0..30)
        .map(|i| (format!("n-{i}"), format!("zone-{}", i % 3)))
        .collect();
    let nodes: Vec<(&str, &str)> = names
        .iter()
        .map(|(n, z)| (n.as_str(), z.as_str()))
        .collect();
    let _fleet = Fleet::start(env.client.clone(), &nodes, false).await;
    for (n, _) in &nodes {
        let node = env.node(n).await;
        assert!(
            has_taint(&node, NOT_READY, "NoSchedule"),
            "admission tainted {n}"
        );
    }
    env.deploy(net, 1, &[]).await;
    let leading = Timestamp::now();
    wait(
        env.name,
        "every node untainted and labelled",
        4.0 * PERIOD + 5.0,
        || async {
            for (n, _) in &nodes {
                let node = env.node(n).await;
                let labelled = node["metadata"]["labels"]["beta.kubernetes.io/os"] == "linux";
                if !taints(&node).is_empty() || !labelled {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    report(
        env.name,
        format!(
            "30 stale not-ready:NoSchedule taints gone {:.2}s after the controller led",
            since(Timestamp::now(), leading)
        ),
    );
    env.common_checks();
}

/// The chart's default serving: the secure port, with a self-signed certificate. Health is open
/// to anyone; /metrics answers 401 without a token, 403 to a ServiceAccount without the grant,
/// and 200 to one bound to the chart's metrics-reader ClusterRole; the reviews behind those
/// answers are cached (a burst of scrapes costs at most one more of each).
async fn metrics_over_https_need_a_token_allowed_to_get_them(net: u8) {
    let name = "metrics_over_https_need_a_token_allowed_to_get_them";
    let env = deployed(name, net, 1, &[]).await;
    let _fleet = env.fleet(&ZONE_A, false).await;
    let addr: std::net::SocketAddr = format!("127.77.{net}.1:10257").parse().expect("addr");

    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(env.client.clone());
    let ns = serde_json::from_value(json!({"metadata": {"name": "monitoring"}})).expect("ns");
    namespaces
        .create(&Default::default(), &ns)
        .await
        .expect("create namespace monitoring");
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(env.client.clone(), "monitoring");
    for sa in ["outsider", "scraper"] {
        let object = serde_json::from_value(json!({"metadata": {"name": sa}})).expect("sa");
        accounts
            .create(&Default::default(), &object)
            .await
            .expect("create service account");
    }
    let bindings: Api<k8s_openapi::api::rbac::v1::ClusterRoleBinding> =
        Api::all(env.client.clone());
    let binding = serde_json::from_value(json!({
        "metadata": {"name": "scraper-metrics-reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
            "name": format!("{RELEASE}-metrics-reader")},
        "subjects": [{"kind": "ServiceAccount", "name": "scraper", "namespace": "monitoring"}],
    }))
    .expect("binding");
    bindings
        .create(&Default::default(), &binding)
        .await
        .expect("bind scraper to the chart's metrics-reader ClusterRole");
    let token = |sa: &str| {
        let dir = env.kbox.service_account_dir("monitoring", sa);
        std::fs::read_to_string(dir.join("token")).expect("token")
    };
    let (outsider, scraper) = (token("outsider"), token("scraper"));
    let scrape = |path: &'static str, token: Option<String>| async move {
        scrape::https_get(addr, path, token.as_deref())
            .await
            .unwrap_or_else(|e| panic!("{name}: GET https://{addr}{path}: {e}"))
    };

    let (status, body) = scrape("/healthz", None).await;
    assert_eq!((status, body.as_str()), (200, "ok\n"), "{name}: /healthz");
    let (status, _) = scrape("/readyz", None).await;
    assert_eq!(status, 200, "{name}: /readyz of a synced replica");
    let (status, body) = scrape("/metrics", None).await;
    assert_eq!(status, 401, "{name}: /metrics without a token: {body}");
    let (status, body) = scrape("/metrics", Some("not-a-token".into())).await;
    assert_eq!(status, 401, "{name}: /metrics with a made-up token: {body}");
    let (status, body) = scrape("/metrics", Some(outsider.clone())).await;
    assert_eq!(
        status, 403,
        "{name}: /metrics for monitoring/outsider: {body}"
    );
    assert!(
        body.contains("system:serviceaccount:monitoring:outsider"),
        "{body}"
    );
    // The zones appear once the leader's first monitor pass has seen the fleet's nodes.
    wait(
        name,
        "node_collector_zone_health for the scraper",
        30.0,
        || async {
            let (status, body) = scrape("/metrics", Some(scraper.clone())).await;
            assert_eq!(
                status, 200,
                "{name}: /metrics for monitoring/scraper: {body}"
            );
            body.contains("node_collector_zone_health").then_some(())
        },
    )
    .await;

    let reviews = |resource: &str| {
        env.controller_requests()
            .iter()
            .filter(|r| r.verb == "create" && r.resource == resource)
            .count()
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = (reviews("tokenreviews"), reviews("subjectaccessreviews"));
    assert!(
        before.0 >= 2 && before.1 >= 2,
        "{name}: reviews asked: {before:?}"
    );
    for _ in 0..5 {
        assert_eq!(scrape("/metrics", Some(scraper.clone())).await.0, 200);
        assert_eq!(scrape("/metrics", Some(outsider.clone())).await.0, 403);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = (reviews("tokenreviews"), reviews("subjectaccessreviews"));
    // Within the 10 s cache, at most one expiry per token in the burst.
    assert!(
        after.0 - before.0 <= 2 && after.1 - before.1 <= 2,
        "{name}: ten scrapes asked {} TokenReviews and {} SubjectAccessReviews",
        after.0 - before.0,
        after.1 - before.1
    );
    env.common_checks();
}

/// `simulate --from-cluster` against the real API server, as a user bound to the read-only
/// ClusterRole of docs/what-if.md: the fleet's two zones are read, zone-b's failure is played
/// in virtual time (its pods deleted, zone-a's kept), and the audit log shows that user only
/// reading (list/get/watch), of the three kinds. No controller is deployed: nothing else writes.
async fn what_if_from_the_real_cluster(_net: u8) {
    let name = "what_if_from_the_real_cluster";
    let env = boxed(name).await;
    let nodes = [
        ("a-0", "zone-a"),
        ("a-1", "zone-a"),
        ("b-0", "zone-b"),
        ("b-1", "zone-b"),
    ];
    let fleet = Fleet::start(env.client.clone(), &nodes, false).await;
    for (node, _) in &nodes {
        fleet
            .add_pod("shop", &format!("web-{node}"), node, json!([]))
            .await;
    }
    fleet
        .add_pod("shop", "patient-b-0", "b-0", tolerate_both(Some(3600)))
        .await;

    // The user: a ServiceAccount bound to the documented ClusterRole.
    let create = |path: &'static str, body: Value| {
        let client = env.client.clone();
        async move {
            let request = http::Request::post(path)
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&body).expect("json"))
                .expect("request");
            client
                .request::<Value>(request)
                .await
                .unwrap_or_else(|e| panic!("{name}: POST {path}: {e}"))
        }
    };
    create(
        "/api/v1/namespaces/default/serviceaccounts",
        json!({"metadata": {"name": "what-if"}}),
    )
    .await;
    create(
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        json!({
            "metadata": {"name": "node-lifecycle-what-if"},
            "rules": [
                {"apiGroups": [""], "resources": ["nodes", "pods"], "verbs": ["list"]},
                {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": ["list"]},
            ],
        }),
    )
    .await;
    create(
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        json!({
            "metadata": {"name": "what-if"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                "name": "node-lifecycle-what-if"},
            "subjects": [{"kind": "ServiceAccount", "name": "what-if", "namespace": "default"}],
        }),
    )
    .await;
    let account = env.kbox.service_account_dir("default", "what-if");
    let token = std::fs::read_to_string(account.join("token")).expect("token");
    let kubeconfig = env.kbox.dir.join("what-if.kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: box\n  cluster: {{server: \"https://127.0.0.1:{}\", certificate-authority: \"{}\"}}\nusers:\n- name: what-if\n  user: {{token: \"{}\"}}\ncontexts:\n- name: what-if\n  context: {{cluster: box, user: what-if}}\ncurrent-context: what-if\n",
            env.kbox.port,
            account.join("ca.crt").display(),
            token.trim()
        ),
    )
    .expect("write the user's kubeconfig");

    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_node-lifecycle-controller"))
            .args(["simulate", "--from-cluster", "--kubeconfig"])
            .arg(&kubeconfig)
            .args([
                "--fail",
                "zone=zone-b",
                "--duration",
                "10m",
                "--output",
                "jsonl",
            ])
            .output()
            .expect("the binary runs")
    })
    .await
    .expect("join");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{name}: simulate --from-cluster: {stderr}"
    );
    assert!(
        stderr.contains("nothing is written to the cluster"),
        "{name}: {stderr}"
    );
    let timeline: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let deleted: BTreeSet<String> = timeline
        .iter()
        .filter(|e| e["type"] == "PodDeleted")
        .filter_map(|e| e["pod"].as_str().map(str::to_string))
        .collect();
    let expected: BTreeSet<String> = ["shop/web-b-0", "shop/web-b-1"]
        .into_iter()
        .map(str::to_string)
        .collect();
    assert_eq!(
        deleted, expected,
        "{name}: zone-b's pods with the API server's default 300s tolerations go, the others stay"
    );
    report(name, format!("simulated deletions: {deleted:?}"));

    tokio::time::sleep(Duration::from_secs(1)).await;
    let user = "system:serviceaccount:default:what-if";
    let requests = audit::by(&env.kbox.audit_log, user);
    let listed: BTreeSet<String> = requests
        .iter()
        .filter(|r| r.verb == "list" && r.ok())
        .map(|r| r.resource.clone())
        .collect();
    assert_eq!(
        listed,
        ["nodes", "pods", "poddisruptionbudgets"]
            .into_iter()
            .map(str::to_string)
            .collect(),
        "{name}: what {user} listed"
    );
    let other: Vec<String> = requests
        .iter()
        .filter(|r| !matches!(r.verb.as_str(), "list" | "get" | "watch"))
        .map(|r| {
            format!(
                "{} {} {}/{} -> {}",
                r.verb,
                r.what(),
                r.namespace,
                r.name,
                r.code
            )
        })
        .collect();
    assert!(
        other.is_empty(),
        "{name}: {user} did more than read: {other:?}"
    );
    let refused: Vec<String> = requests
        .iter()
        .filter(|r| !r.ok())
        .map(|r| format!("{} {} -> {}", r.verb, r.what(), r.code))
        .collect();
    assert!(
        refused.is_empty(),
        "{name}: the ClusterRole lacks {refused:?}"
    );
    drop(fleet);
}

/// `/debug/explain` on the chart-installed leader (docs/explain.md), asked as a user bound
/// through the chart's `explainer.subjects`: a lost node's pod is explained with the due time it
/// is then deleted at (within 1 s), a pod tolerating forever as such, a zone whose only node is
/// lost as FullDisruption; a user without the grant gets a 403 naming the path; the standby
/// says it is one and who leads; no answer holds a token.
async fn a_lost_nodes_pods_are_explained_by_the_leader(net: u8) {
    let name = "a_lost_nodes_pods_are_explained_by_the_leader";
    let set = [
        "explainer.subjects[0].kind=ServiceAccount",
        "explainer.subjects[0].name=asker",
        "explainer.subjects[0].namespace=monitoring",
    ];
    let env = deployed(name, net, 2, &set).await;
    let leader = env.leader(40.0).await;
    let index = |want_leader: bool| {
        env.replicas
            .iter()
            .position(|r| (r.pod == leader) == want_leader)
            .expect("a leader and a standby")
    };
    let addr_of = |i: usize| -> std::net::SocketAddr {
        format!("127.77.{net}.{}:10257", i + 1)
            .parse()
            .expect("addr")
    };
    let (leader_addr, standby_addr) = (addr_of(index(true)), addr_of(index(false)));

    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(env.client.clone());
    let ns = serde_json::from_value(json!({"metadata": {"name": "monitoring"}})).expect("ns");
    namespaces
        .create(&Default::default(), &ns)
        .await
        .expect("create namespace monitoring");
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(env.client.clone(), "monitoring");
    for sa in ["outsider", "asker"] {
        let object = serde_json::from_value(json!({"metadata": {"name": sa}})).expect("sa");
        accounts
            .create(&Default::default(), &object)
            .await
            .expect("create service account");
    }
    let token = |sa: &str| {
        let dir = env.kbox.service_account_dir("monitoring", sa);
        std::fs::read_to_string(dir.join("token"))
            .expect("token")
            .trim()
            .to_string()
    };
    let (outsider, asker) = (token("outsider"), token("asker"));
    let ask = |addr: std::net::SocketAddr, query: String, token: String| async move {
        let path = format!("/debug/explain?{query}");
        let (status, body) = scrape::https_get(addr, &path, Some(&token))
            .await
            .unwrap_or_else(|e| panic!("{name}: GET https://{addr}{path}: {e}"));
        assert!(
            !body.contains(&token),
            "{name}: the answer to {path} holds the caller's token"
        );
        (status, body)
    };
    let parsed = |body: &str| -> Value {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {body}"))
    };

    let nodes = [
        ("a-0", "zone-a"),
        ("a-1", "zone-a"),
        ("a-2", "zone-a"),
        ("b-0", "zone-b"),
    ];
    let fleet = env.fleet(&nodes, false).await;
    fleet
        .add_pod("shop", "tol-20", "a-1", tolerate_both(Some(20)))
        .await;
    fleet
        .add_pod("shop", "forever", "a-1", tolerate_both(None))
        .await;

    // A user without the grant: 403, and the message names what is missing.
    let (status, body) = ask(leader_addr, "status".into(), outsider.clone()).await;
    assert_eq!(status, 403, "{name}: /debug/explain for outsider: {body}");
    assert!(
        body.contains("system:serviceaccount:monitoring:outsider")
            && body.contains("cannot get path \"/debug/explain\""),
        "{name}: {body}"
    );

    // The standby says it is one, and who leads (once its election has read the Lease: every
    // retry period).
    let standby = wait(name, "the standby naming the leader", 10.0, || async {
        let (status, body) = ask(standby_addr, "status".into(), asker.clone()).await;
        assert_eq!(status, 200, "{name}: the standby's status: {body}");
        let standby = parsed(&body);
        assert_eq!(standby["controller"]["role"]["state"], "Standby", "{body}");
        (standby["controller"]["role"]["leader"] == leader.as_str()).then_some(standby)
    })
    .await;
    assert_eq!(
        standby["zones"],
        json!([]),
        "{name}: a standby runs no pass"
    );

    fleet.stop("a-1");
    fleet.stop("b-0");
    env.tainted("a-1", UNREACHABLE, GRACE + 30.0).await;
    let explained = wait(name, "tol-20 explained with a due time", 10.0, || async {
        let (status, body) = ask(leader_addr, "pod=shop/tol-20".into(), asker.clone()).await;
        assert_eq!(status, 200, "{name}: explain shop/tol-20: {body}");
        let answer = parsed(&body);
        (answer["pod"]["outcome"] == "DeletionDue").then_some(answer)
    })
    .await;
    assert_eq!(explained["controller"]["role"]["state"], "Leader");
    assert_eq!(explained["pod"]["taint"]["key"], UNREACHABLE, "{explained}");
    assert_eq!(explained["pod"]["toleration"]["tolerationSeconds"], 20);
    assert_eq!(explained["pod"]["scheduled"], true);
    let due: Timestamp = explained["pod"]["dueAt"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{name}: dueAt: {explained}"));

    let (_, body) = ask(leader_addr, "pod=shop/forever".into(), asker.clone()).await;
    let forever = parsed(&body);
    assert_eq!(forever["pod"]["outcome"], "NoDeletion", "{body}");
    assert_eq!(
        forever["pod"]["reasons"][0]["reason"], "ToleratesForever",
        "{body}"
    );

    // The zone as `status` names it (region/zone when the nodes have a region label).
    let zone_b = wait(name, "zone-b FullDisruption", 10.0, || async {
        let (_, body) = ask(leader_addr, "status".into(), asker.clone()).await;
        let status = parsed(&body);
        let zones = status["zones"].as_array().cloned().unwrap_or_default();
        let zone = zones
            .iter()
            .find(|z| z["zone"].as_str().is_some_and(|n| n.ends_with("zone-b")))?;
        let display = zone["zone"]
            .as_str()
            .unwrap_or_default()
            .replace('/', "%2F");
        let (status, body) = ask(leader_addr, format!("zone={display}"), asker.clone()).await;
        assert_eq!(status, 200, "{name}: explain zone {display}: {body}");
        let answer = parsed(&body);
        (answer["zone"]["state"] == "FullDisruption").then_some(answer)
    })
    .await;
    assert_eq!(zone_b["nodes"][0]["name"], "b-0", "{zone_b}");

    let deletes = wait(name, "the deletion of tol-20", 60.0, || async {
        let d = env.writes("delete", "pods", "tol-20");
        (!d.is_empty()).then_some(d)
    })
    .await;
    let off = since(deletes[0].at, due);
    report(
        name,
        format!("tol-20 explained due {due}, deleted {off:+.3}s from it"),
    );
    assert!(
        off.abs() <= 1.0,
        "{name}: tol-20 deleted {off:.3}s from the due time explained ({due})"
    );
    env.common_checks();
}
