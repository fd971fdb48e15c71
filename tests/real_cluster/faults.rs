//! Control-plane faults (issue 24): the API server frozen, the API server stopped and started
//! again on the same etcd, etcd frozen, each for 45 s (longer than the 20 s grace period) under
//! a fleet of healthy kubelets in two zones that behave as kubelets do (`fleet.rs`: their
//! renewals hang or fail, are retried with backoff and land late). Time the controller could
//! not hear from the API server is no evidence against a node: nothing healthy may be marked,
//! tainted or have a pod touched. Two nodes really die: one 30 s before the fault (marked and
//! tainted before it, and stays so), one 10 s before it (its grace period runs out during the
//! fault: marked one grace period after fresh answers come back, no sooner and no later).

use crate::deploy;
use crate::fleet::{self, Fleet, NOT_READY, UNREACHABLE, tolerate};
use crate::scenarios::{
    Env, GRACE, PERIOD, Scenario, boxed, condition, deployed, has_taint, report, since, taints,
    time_added, wait,
};
use crate::scrape;
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

pub const ALL: &[Scenario] = &[
    Scenario {
        name: "outage_api_server_frozen_two_replicas",
        run: |net| {
            Box::pin(async move {
                outage(Fault::ApiServerFrozen, net).await;
                None
            })
        },
    },
    Scenario {
        name: "outage_api_server_restarted",
        run: |net| {
            Box::pin(async move {
                outage(Fault::ApiServerRestarted, net).await;
                None
            })
        },
    },
    Scenario {
        name: "outage_etcd_frozen",
        run: |net| {
            Box::pin(async move {
                outage(Fault::EtcdFrozen, net).await;
                None
            })
        },
    },
];

/// How long each fault lasts: more than twice the grace period.
const FAULT: Duration = Duration::from_secs(45);
/// Healthy nodes per zone (two zones), ten pods on each.
const HEALTHY_PER_ZONE: usize = 25;
/// Each node's pods tolerate `unreachable` for these seconds (None: forever), two of each.
const TOLERATIONS: [(&str, Option<u64>); 10] = [
    ("t0-a", Some(0)),
    ("t0-b", Some(0)),
    ("t5-a", Some(5)),
    ("t5-b", Some(5)),
    ("t30-a", Some(30)),
    ("t30-b", Some(30)),
    ("t60-a", Some(60)),
    ("t60-b", Some(60)),
    ("forever-a", None),
    ("forever-b", None),
];
/// Its kubelet stops 30 s before the fault: marked and tainted before it.
const LOST_EARLY: &str = "lost-early";
/// Its kubelet stops 10 s before the fault: its grace period runs out during it.
const LOST_LATE: &str = "lost-late";
const SHOP: &str = "shop";

/// A `box.sh` fault verb and the process it acts on, if it names one.
type BoxVerb = (&'static str, Option<&'static str>);

#[derive(Clone, Copy)]
enum Fault {
    /// SIGSTOP/SIGCONT on kube-apiserver: requests and watches hang, then all complete. Two
    /// replicas with the chart's leader election: the leader's lease cannot be renewed.
    ApiServerFrozen,
    /// SIGTERM kube-apiserver, start it again on the same etcd: connections refused, watches
    /// cut, then a fresh server. One replica, leader election on.
    ApiServerRestarted,
    /// SIGSTOP/SIGCONT on etcd: the API server answers from its cache but every write and
    /// consistent read hangs. One replica, leader election off (the outage is seen by the
    /// controller's own reads and watches alone).
    EtcdFrozen,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::ApiServerFrozen => "outage_api_server_frozen_two_replicas",
            Fault::ApiServerRestarted => "outage_api_server_restarted",
            Fault::EtcdFrozen => "outage_etcd_frozen",
        }
    }

    /// `box.sh` verbs that start and end it.
    fn verbs(self) -> (BoxVerb, BoxVerb) {
        match self {
            Fault::ApiServerFrozen => (
                ("freeze", Some("kube-apiserver")),
                ("thaw", Some("kube-apiserver")),
            ),
            Fault::ApiServerRestarted => (("down", None), ("up", None)),
            Fault::EtcdFrozen => (("freeze", Some("etcd")), ("thaw", Some("etcd"))),
        }
    }
}

fn pod_name(node: &str, suffix: &str) -> String {
    format!("{node}-{suffix}")
}

async fn outage(fault: Fault, net: u8) {
    let name = fault.name();
    let env = match fault {
        Fault::ApiServerFrozen => deployed(name, net, 2, &[]).await,
        Fault::ApiServerRestarted => deployed(name, net, 1, &[]).await,
        Fault::EtcdFrozen => without_leader_election(name, net).await,
    };
    let leader_elect = !matches!(fault, Fault::EtcdFrozen);
    let mut names = Vec::new();
    for zone in ["a", "b"] {
        for i in 0..HEALTHY_PER_ZONE {
            names.push((format!("{zone}-{i}"), format!("zone-{zone}")));
        }
    }
    let healthy: Vec<String> = names.iter().map(|(n, _)| n.clone()).collect();
    names.push((LOST_EARLY.into(), "zone-a".into()));
    names.push((LOST_LATE.into(), "zone-a".into()));
    let nodes: Vec<(&str, &str)> = names
        .iter()
        .map(|(n, z)| (n.as_str(), z.as_str()))
        .collect();
    let fleet = env.fleet(&nodes, false).await;
    // Writes before this were the controller taking the new nodes in (beta labels, admission's
    // not-ready NoSchedule taint off a Ready node).
    let settled = Timestamp::now();

    fleet::ensure_namespace(&env.client, SHOP).await;
    for node in [LOST_EARLY, LOST_LATE] {
        add_pods(&fleet, node).await;
    }
    fleet.stop_together(&[LOST_EARLY]).await;
    let early_last = fleet.last_renewal(LOST_EARLY);
    let pods_started = Timestamp::now();
    // A few nodes at a time: the box shares two cores with the others.
    for some in healthy.chunks(6) {
        futures::future::join_all(some.iter().map(|n| add_pods(&fleet, n))).await;
    }
    let pods_took = since(Timestamp::now(), pods_started);
    // LOST_LATE stops 10 s before the fault, right after a renewal: its silence reaches the
    // grace period 10 s into the fault.
    sleep_until(early_last + SignedDuration::from_secs(20)).await;
    fleet.stop_together(&[LOST_LATE]).await;
    let late_last = fleet.last_renewal(LOST_LATE);
    sleep_until(late_last + SignedDuration::from_secs(10)).await;

    let leader_before = if leader_elect {
        Some(env.leader(5.0).await)
    } else {
        None
    };
    let ((start_verb, start_on), (end_verb, end_on)) = fault.verbs();
    let fault_start = Timestamp::now();
    env.kbox.fault(start_verb, start_on).await;
    tokio::time::sleep(FAULT).await;
    // The fault ends between these two: `thaw` at once, `up` once the new server is ready.
    let ending = Timestamp::now();
    env.kbox.fault(end_verb, end_on).await;
    let ended = Timestamp::now();
    let failed_during = fleet.failed_renewals();

    // Every healthy kubelet renews again soon after (backoff of at most 7 s).
    let all_renewed = wait(
        name,
        "every healthy kubelet renewing again",
        30.0,
        || async {
            healthy
                .iter()
                .all(|n| fleet.last_renewal(n) > ending)
                .then(Timestamp::now)
        },
    )
    .await;

    let (landed_late, oldest_landing) = fleet.late_landings();

    // LOST_LATE: silent for a whole grace period counted from the fault's end.
    let bound = GRACE + PERIOD + 1.0;
    let n = wait(
        name,
        &format!("{LOST_LATE} tainted {UNREACHABLE}:NoExecute"),
        bound + 15.0 - since(Timestamp::now(), ended),
        || async {
            let n = env.node(LOST_LATE).await;
            has_taint(&n, UNREACHABLE, "NoExecute").then_some(n)
        },
    )
    .await;
    // Long enough after the fault for any mark its time would have caused to show.
    sleep_until(ended + SignedDuration::from_secs_f64(bound + 8.0)).await;

    // The healthy nodes: no mark, no taint, no write to their pods, in the audit log and in
    // the objects.
    let healthy_set: BTreeSet<&str> = healthy.iter().map(String::as_str).collect();
    let healthy_pods: BTreeSet<String> = healthy
        .iter()
        .flat_map(|n| TOLERATIONS.iter().map(move |(s, _)| pod_name(n, s)))
        .collect();
    let requests = env.controller_requests();
    let node_writes: Vec<String> = requests
        .iter()
        .filter(|r| r.is_write() && r.resource == "nodes" && healthy_set.contains(r.name.as_str()))
        .filter(|r| {
            r.subresource == "status" || (r.at > settled && mentions_condition_taint(&r.body))
        })
        .map(|r| {
            format!(
                "{} {} {} at {} -> {}",
                r.verb,
                r.what(),
                r.name,
                r.at,
                r.code
            )
        })
        .collect();
    let pod_writes: Vec<String> = requests
        .iter()
        .filter(|r| r.is_write() && r.resource == "pods" && healthy_pods.contains(&r.name))
        .map(|r| {
            format!(
                "{} {} {} at {} -> {}",
                r.verb,
                r.what(),
                r.name,
                r.at,
                r.code
            )
        })
        .collect();
    let restores = fleet.restores();
    assert!(
        node_writes.is_empty() && pod_writes.is_empty(),
        "{name}: the fault ({}) counted against healthy nodes: {} node writes {node_writes:#?}, \
         {} pod writes {pod_writes:#?}; kubelets restored their Ready {} times",
        fault_desc(fault),
        node_writes.len(),
        pod_writes.len(),
        restores.len()
    );
    let listed = env.get("/api/v1/nodes").await.expect("list nodes");
    for n in listed["items"].as_array().expect("items") {
        let node = n["metadata"]["name"].as_str().unwrap_or_default();
        if !healthy_set.contains(node) {
            continue;
        }
        let ready = condition(n, "Ready").expect("Ready");
        assert!(
            ready["status"] == "True" && ready["reason"] == "KubeletReady",
            "{name}: healthy {node}'s Ready: {ready}"
        );
        assert!(
            taints(n).is_empty(),
            "{name}: healthy {node} tainted: {:?}",
            taints(n)
        );
    }
    let listed = env
        .get(&format!("/api/v1/namespaces/{SHOP}/pods"))
        .await
        .expect("list pods");
    let mut seen = 0;
    for p in listed["items"].as_array().expect("items") {
        let pod = p["metadata"]["name"].as_str().unwrap_or_default();
        if !healthy_pods.contains(pod) {
            continue;
        }
        seen += 1;
        assert!(
            p["metadata"]["deletionTimestamp"].is_null(),
            "{name}: {pod} of a healthy node is terminating"
        );
        assert_eq!(
            condition(p, "Ready").expect("Ready")["status"],
            "True",
            "{name}: {pod} of a healthy node not ready"
        );
    }
    assert_eq!(
        seen,
        healthy_pods.len(),
        "{name}: every healthy node's pod is there"
    );
    assert!(
        restores.is_empty(),
        "{name}: kubelets found a Ready condition they had not written: {restores:?}"
    );

    let marks = env.writes("patch", "nodes/status", LOST_LATE);
    assert_eq!(marks.len(), 1, "{name}: {LOST_LATE} marked Unknown once");
    let late_mark = since(marks[0].at, ended);
    let late_mark_from_ending = since(marks[0].at, ending);
    assert!(
        late_mark_from_ending >= GRACE && late_mark <= bound,
        "{name}: {LOST_LATE} marked Unknown {late_mark_from_ending:.3}s after the fault began to \
         end and {late_mark:.3}s after it had ended (allowed: a whole grace period of {GRACE}s \
         after fresh answers, within {bound}s of the end)"
    );
    assert_unknown(&env, LOST_LATE, &n);
    let late_added = env.no_execute_added(LOST_LATE, UNREACHABLE);
    assert_eq!(
        late_added.len(),
        1,
        "{name}: {LOST_LATE}'s taint written once"
    );
    let late_ta = time_added(&n, UNREACHABLE).expect("timeAdded");

    // LOST_EARLY: marked and tainted before the fault, once, and still so.
    let n = env.node(LOST_EARLY).await;
    let marks = env.writes("patch", "nodes/status", LOST_EARLY);
    assert_eq!(marks.len(), 1, "{name}: {LOST_EARLY} marked Unknown once");
    let early_mark = since(marks[0].at, early_last);
    assert!(
        (GRACE..=bound).contains(&early_mark),
        "{name}: {LOST_EARLY} marked Unknown {early_mark:.3}s after its last renewal (allowed \
         {GRACE} to {bound})"
    );
    assert_unknown(&env, LOST_EARLY, &n);
    assert!(
        has_taint(&n, UNREACHABLE, "NoExecute"),
        "{name}: {LOST_EARLY} still tainted: {:?}",
        taints(&n)
    );
    let early_added = env.no_execute_added(LOST_EARLY, UNREACHABLE);
    assert_eq!(
        early_added.len(),
        1,
        "{name}: {LOST_EARLY}'s taint written once (timeAdded kept)"
    );
    let early_ta = time_added(&n, UNREACHABLE).expect("timeAdded");
    let mut lateness = lost_pods(&env, LOST_LATE, late_ta, (fault_start, ended)).await;
    lateness.extend(lost_pods(&env, LOST_EARLY, early_ta, (fault_start, ended)).await);

    let leadership = match leader_before {
        Some(before) => {
            let after = env.leader(30.0).await;
            let lease = env
                .get(&format!(
                    "/apis/coordination.k8s.io/v1/namespaces/{}/leases/{}",
                    deploy::NAMESPACE,
                    deploy::RELEASE
                ))
                .await
                .expect("the leader Lease");
            let lost: usize = env
                .replicas
                .iter()
                .map(|r| {
                    std::fs::read_to_string(env.kbox.logs.join(format!("{}.log", r.pod)))
                        .unwrap_or_default()
                        .matches("lost leadership")
                        .count()
                })
                .sum();
            let acquired = lease["spec"]["acquireTime"]
                .as_str()
                .and_then(|t| t.parse::<Timestamp>().ok())
                .map_or("?".into(), |t| format!("{:.1}s", since(t, fault_start)));
            format!(
                "; leader {before} before, {after} after (acquired {acquired} after the fault \
                 began, {} transitions, {lost} step-downs logged)",
                lease["spec"]["leaseTransitions"]
            )
        }
        None => "; leader election off".into(),
    };
    report(
        name,
        format!(
            "{} {:.1}s (ended {:.1}s after it began to end); {} healthy nodes, {} pods created in \
             {pods_took:.0}s; {failed_during} renewals failed or timed out, {landed_late} landed late \
             (oldest renewTime {oldest_landing:.1}s old), every healthy Lease renewed {:.1}s after the end; 0 healthy marks, taints or pod writes; {LOST_LATE} \
             Unknown {late_mark:.2}s after the end (bound {bound:.0}s), {LOST_EARLY} \
             {early_mark:.2}s after its last renewal, before the fault; pods deleted (s after due) \
             {:?}{leadership}",
            fault_desc(fault),
            since(ended, fault_start),
            since(ended, ending),
            healthy.len(),
            healthy_pods.len() + 2 * TOLERATIONS.len(),
            since(all_renewed, ended),
            lateness
        ),
    );
    env.common_checks();
    drop(fleet);
}

/// The pods of a lost node whose NoExecute taint has `time_added`: each one due by now
/// (`time_added` + its toleration) deleted on schedule, the others there and marked not ready.
/// Returns each deletion's lateness.
async fn lost_pods(
    env: &Env,
    node: &str,
    time_added: Timestamp,
    fault: (Timestamp, Timestamp),
) -> Vec<String> {
    let mut lateness = Vec::new();
    for (suffix, seconds) in TOLERATIONS {
        let pod = pod_name(node, suffix);
        let due = seconds.map(|s| time_added + SignedDuration::from_secs(s as i64));
        match (seconds, due) {
            (Some(seconds), Some(due)) if due <= Timestamp::now() => {
                let late = deleted_on_schedule(env, &pod, time_added, seconds as f64, fault).await;
                lateness.push(format!("{pod} {late:.2}"));
            }
            _ => {
                let p = env.pod(SHOP, &pod).await.expect("pod stays");
                assert!(
                    p["metadata"]["deletionTimestamp"].is_null()
                        && env.writes("delete", "pods", &pod).is_empty(),
                    "{}: {pod} deleted before it was due ({due:?})",
                    env.name
                );
                assert_eq!(
                    condition(&p, "Ready").expect("Ready")["status"],
                    "False",
                    "{}: {pod} marked not ready",
                    env.name
                );
            }
        }
    }
    lateness
}

fn fault_desc(fault: Fault) -> &'static str {
    match fault {
        Fault::ApiServerFrozen => "kube-apiserver frozen",
        Fault::ApiServerRestarted => "kube-apiserver down, then up",
        Fault::EtcdFrozen => "etcd frozen",
    }
}

/// Whether a node patch's body sets a condition taint (unreachable or not-ready, any effect).
fn mentions_condition_taint(body: &Value) -> bool {
    body["spec"]["taints"].as_array().is_some_and(|ts| {
        ts.iter()
            .any(|t| t["key"] == UNREACHABLE || t["key"] == NOT_READY)
    })
}

async fn add_pods(fleet: &Fleet, node: &str) {
    for (suffix, seconds) in TOLERATIONS {
        fleet
            .add_pod(
                SHOP,
                &pod_name(node, suffix),
                node,
                Value::Array(vec![tolerate(UNREACHABLE, seconds)]),
            )
            .await;
    }
}

async fn sleep_until(t: Timestamp) {
    let left = since(t, Timestamp::now());
    if left > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(left)).await;
    }
}

/// The node's conditions all Unknown, as the controller marks them.
fn assert_unknown(env: &Env, node: &str, n: &Value) {
    for c in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] {
        let cond = condition(n, c).unwrap_or_else(|| panic!("{c} condition"));
        assert_eq!(
            cond["status"], "Unknown",
            "{}: {node} {c}: {cond}",
            env.name
        );
        assert_eq!(
            cond["reason"], "NodeStatusUnknown",
            "{}: {node} {c}: {cond}",
            env.name
        );
    }
}

/// The pod deleted once, not before the taint's `timeAdded` + `toleration`. Due before the
/// fault (or after it): within 1.5 s of that (`timeAdded` drops its fraction of a second). Due
/// during the fault (or within 1.5 s before it), when no write can land: within 10 s of its end. Returns the lateness.
async fn deleted_on_schedule(
    env: &Env,
    pod: &str,
    time_added: Timestamp,
    toleration: f64,
    (fault_start, fault_end): (Timestamp, Timestamp),
) -> f64 {
    let due = time_added + SignedDuration::from_secs_f64(toleration);
    // Due a moment before the fault, its deletion may be caught by it too.
    let deadline = if due + SignedDuration::from_secs_f64(1.5) > fault_start && due < fault_end {
        fault_end + SignedDuration::from_secs(10)
    } else {
        due + SignedDuration::from_secs_f64(1.5)
    };
    let deletes = wait(
        env.name,
        &format!("the deletion of {pod}"),
        since(deadline, Timestamp::now()).max(0.0) + 5.0,
        || async {
            let d = env.writes("delete", "pods", pod);
            (!d.is_empty()).then_some(d)
        },
    )
    .await;
    assert_eq!(deletes.len(), 1, "{}: {pod} deleted once", env.name);
    let at = deletes[0].at;
    let late = since(at, due);
    assert!(
        late >= 0.0 && at <= deadline,
        "{}: {pod} deleted {late:.3}s after timeAdded + {toleration}s (due {due}, deadline \
         {deadline}; the fault from {fault_start} to {fault_end})",
        env.name
    );
    if let Some(p) = env.pod(SHOP, pod).await {
        assert!(
            p["metadata"]["deletionTimestamp"].is_string(),
            "{}: {pod} is terminating",
            env.name
        );
        let target = condition(&p, "DisruptionTarget").expect("DisruptionTarget condition");
        assert_eq!(target["reason"], "DeletionByTaintManager");
    }
    late
}

/// The chart with `leaderElect=false` and one replica: it acts once its caches are synced,
/// which its `/readyz` says.
async fn without_leader_election(name: &'static str, net: u8) -> Env {
    let mut env = boxed(name).await;
    deploy::helm_install(&env.kbox, &["leaderElect=false", "replicaCount=1"]);
    let replica = deploy::start_replica(&env.kbox, &env.client, net, 0).await;
    env.replicas.push(replica);
    let addr: std::net::SocketAddr = format!("127.77.{net}.1:10257").parse().expect("addr");
    wait(name, "the replica ready", 40.0, || async {
        matches!(scrape::https_get(addr, "/readyz", None).await, Ok((200, _))).then_some(())
    })
    .await;
    env
}
