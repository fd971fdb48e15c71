//! `simulate --from-cluster` against a served scenario (`simulate --serve`) standing in for a
//! real cluster: the snapshot, the failure from flags, `--save-scenario` and its replay, and the
//! usage errors. The binary is run as a user runs it.

use node_lifecycle_controller::sim::scenario;
use node_lifecycle_controller::sim::serve::{self, ServeOptions};
use node_lifecycle_controller::sim::{Entry, write_jsonl};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// The "real" cluster: two zones, owners, a DaemonSet, a budget, a node excluded from the
/// disruption count, a node already down (Ready Unknown, tainted).
const CLUSTER: &str = r#"
duration: 10m
admission:
  default-toleration-seconds: 300
nodes:
  - name: a-{0..2}
    zone: zone-a
  - name: b-{0..2}
    zone: zone-b
  - name: b-3
    zone: zone-b
    labels: {node.kubernetes.io/exclude-disruption: ""}
  - name: c-0
    zone: zone-c
    ready: Unknown
    heartbeat: none
    taints:
      - {key: node.kubernetes.io/unreachable, effect: NoExecute, timeAdded: -10m}
pods:
  - name: web-{0..5}
    node: b-{0..2}
    owner: ReplicaSet/web-7d9f
    labels: {app: web, pod-template-hash: 7d9f}
  - name: api-{0..2}
    namespace: shop
    node: a-{0..2}
    owner: ReplicaSet/api-55c
    labels: {app: api}
  - name: slow-0
    node: b-1
    owner: StatefulSet/slow
    tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 900}
  - name: agent-{0..3}
    namespace: kube-system
    node: b-{0..3}
    daemonset: true
    owner: DaemonSet/agent
pdbs:
  - name: web
    selector: {app: web}
    maxUnavailable: 1
"#;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_node-lifecycle-controller"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nlc-what-if-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Serves CLUSTER on a free port in a thread of its own; returns the kubeconfig's path and
/// the served cluster's timeline once the `stop` sender is dropped or the scenario ends.
struct Served {
    kubeconfig: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<std::thread::JoinHandle<Vec<Entry>>>,
}

impl Served {
    fn start(dir: &Path) -> Served {
        Served::start_for(dir, "10m")
    }

    fn start_for(dir: &Path, duration: &str) -> Served {
        let yaml = CLUSTER.replace("duration: 10m", &format!("duration: {duration}"));
        let kubeconfig = dir.join("kubeconfig");
        let path = kubeconfig.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let done = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let scenario = scenario::parse(&yaml, "cluster").expect("scenario parses");
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                let options = ServeOptions::default();
                let server = serve::serve_on(listener, &scenario, 0, Some(&path), None, &options);
                tokio::select! {
                    entries = server => entries.expect("serve"),
                    _ = stopped => Vec::new(),
                }
            })
        });
        for _ in 0..500 {
            if kubeconfig.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Served {
            kubeconfig,
            stop: Some(stop),
            done: Some(done),
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(done) = self.done.take() {
            let _ = done.join();
        }
    }
}

fn from_cluster(kubeconfig: &Path, args: &[&str]) -> Output {
    bin()
        .args(["simulate", "--from-cluster", "--kubeconfig"])
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("binary runs")
}

fn lines(jsonl: &str) -> Vec<serde_json::Value> {
    jsonl
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[test]
fn a_zone_failure_played_on_a_snapshot_deletes_what_it_should_and_the_saved_scenario_replays_it_identically()
 {
    let dir = scratch("round-trip");
    let served = Served::start(&dir);
    let saved = dir.join("saved.yaml");
    let out = from_cluster(
        &served.kubeconfig,
        &[
            "--fail",
            "zone=zone-b",
            "at=20s",
            "--duration",
            "8m",
            "--save-scenario",
            saved.to_str().unwrap(),
            "--output",
            "jsonl",
        ],
    );
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("read-only") && err.contains("nothing is written to the cluster"),
        "{err}"
    );
    assert!(
        err.contains("read 8 node(s), 14 pod(s), 1 PodDisruptionBudget(s)"),
        "{err}"
    );
    let live = text(&out.stdout);
    let timeline = lines(&live);
    let stopped = timeline
        .iter()
        .find(|e| e["type"] == "Action" && e["action"] == "stop-heartbeat")
        .expect("the failure is played");
    assert_eq!(stopped["t"], 20.0);
    assert_eq!(
        stopped["nodes"],
        serde_json::json!(["b-0", "b-1", "b-2", "b-3"])
    );
    let deleted: Vec<&str> = timeline
        .iter()
        .filter(|e| e["type"] == "PodDeleted")
        .filter_map(|e| e["pod"].as_str())
        .collect();
    // The web pods (default 300s tolerations) go; the 900s toleration, the DaemonSet's pods and
    // the healthy zone's pods stay within 8 minutes.
    for i in 0..6 {
        assert!(
            deleted.contains(&format!("default/web-{i}").as_str()),
            "{deleted:?}"
        );
    }
    assert!(
        !deleted
            .iter()
            .any(|p| p.contains("slow") || p.contains("agent") || p.contains("api")),
        "{deleted:?}"
    );

    let yaml = std::fs::read_to_string(&saved).expect("the scenario is saved");
    for expected in [
        "owner: ReplicaSet/web-7d9f",
        "owner: DaemonSet/agent",
        "daemonset: true",
        "maxUnavailable: 1",
        "node.kubernetes.io/exclude-disruption",
        "heartbeat: none",
        "timeAdded: -10m",
    ] {
        assert!(
            yaml.contains(expected),
            "saved scenario lacks {expected:?}:\n{yaml}"
        );
    }
    let replay = bin()
        .arg("simulate")
        .arg(&saved)
        .args(["--output", "jsonl"])
        .output()
        .expect("binary runs");
    assert!(replay.status.success(), "{}", text(&replay.stderr));
    assert_eq!(
        text(&replay.stdout),
        live,
        "the replay differs from the live run"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_snapshot_writes_nothing_to_the_cluster() {
    let dir = scratch("no-writes");
    // A short-lived cluster: its timeline (every write a client made) is read when it ends.
    let mut served = Served::start_for(&dir, "6s");
    let out = from_cluster(
        &served.kubeconfig,
        &["--fail", "nodes=a-1", "--duration", "10m"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let entries = served
        .done
        .take()
        .expect("server")
        .join()
        .expect("server ends");
    let served_timeline = lines(&json(&entries));
    assert_eq!(
        served_timeline.last().unwrap()["type"],
        "Summary",
        "the scenario ran to its end"
    );
    let writes: Vec<&serde_json::Value> = served_timeline
        .iter()
        .filter(|e| e["type"] != "Summary" && e["type"] != "Action")
        .collect();
    assert!(
        writes.is_empty(),
        "the snapshot wrote to the cluster: {writes:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_zone_or_node_the_cluster_does_not_have_is_a_usage_error_naming_it() {
    let dir = scratch("unknown");
    let served = Served::start(&dir);
    let out = from_cluster(&served.kubeconfig, &["--fail", "zone=zone-x"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("--fail \"zone=zone-x\": no node of the cluster is in zone \"zone-x\" (its zones: zone-a, zone-b, zone-c)"), "{err}");
    let out = from_cluster(&served.kubeconfig, &["--recover", "nodes=z-9", "at=1m"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("the cluster has no node named \"z-9\""));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_fail_or_recover_is_a_usage_error_before_the_cluster_is_read() {
    let out = bin()
        .args(["simulate", "--from-cluster", "--kubeconfig", "/nonexistent"])
        .args(["--recover", "zone=b"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--recover \"zone=b\": `at=` is missing"),
        "{}",
        text(&out.stderr)
    );
    let out = bin()
        .args(["simulate", "--fail", "zone=b"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "--fail needs --from-cluster");
}

#[test]
fn an_events_file_adds_its_events_and_may_not_bring_nodes() {
    let dir = scratch("events");
    let served = Served::start(&dir);
    let events = dir.join("events.yaml");
    std::fs::write(
        &events,
        "duration: 3m\nevents:\n  - {at: 10s, action: set-condition, nodes: [a-0], type: Ready, status: \"False\"}\n",
    )
    .unwrap();
    let out = bin()
        .arg("simulate")
        .arg(&events)
        .args(["--from-cluster", "--kubeconfig"])
        .arg(&served.kubeconfig)
        .args(["--output", "jsonl"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let timeline = lines(&text(&out.stdout));
    assert!(
        timeline
            .iter()
            .any(|e| e["action"] == "set-condition" && e["t"] == 10.0)
    );
    assert_eq!(timeline.last().unwrap()["t"], 180.0, "the file's duration");
    std::fs::write(&events, "duration: 3m\nnodes: [{name: x}]\n").unwrap();
    let out = bin()
        .arg("simulate")
        .arg(&events)
        .args(["--from-cluster", "--kubeconfig"])
        .arg(&served.kubeconfig)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("`nodes` cannot be used with --from-cluster"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn json(entries: &[Entry]) -> String {
    let mut out = Vec::new();
    write_jsonl(entries, &mut out).expect("jsonl");
    text(&out)
}

#[test]
fn compare_set_reports_both_runs_side_by_side_and_how_much_earlier_the_deletions_come() {
    let out = bin()
        .args(["simulate", "--compare-set", "node-monitor-grace-period=20s"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(
        table.contains("as is") && table.contains("with node-monitor-grace-period=20s"),
        "{table}"
    );
    // 20 s less grace, the NoExecute taint one tainting pass (0.1 s) after the mark lands.
    assert!(table.contains("first deletion  375.0s  345.1s"), "{table}");
    assert!(table.contains("go 29.9s earlier on average"), "{table}");

    let out = bin()
        .args([
            "simulate",
            "--compare-set",
            "node-monitor-grace-period=20s",
            "--output",
            "jsonl",
        ])
        .output()
        .unwrap();
    let timeline = lines(&text(&out.stdout));
    let summaries: Vec<&serde_json::Value> =
        timeline.iter().filter(|e| e["type"] == "Summary").collect();
    assert_eq!(summaries.len(), 2);
    assert_eq!(summaries[0]["run"], "as is");
    assert_eq!(summaries[1]["run"], "with node-monitor-grace-period=20s");
    assert_eq!(summaries[1]["firstPodDeletedAt"], 345.1);

    let out = bin()
        .args([
            "simulate",
            "--compare-set",
            "node-monitor-grace-period=20s",
            "--output",
            "html",
        ])
        .output()
        .unwrap();
    let html = text(&out.stdout);
    assert!(html.contains("<h2>Comparison</h2>") && html.contains("<h2>as is</h2>"));
    assert!(html.contains("<h2>with node-monitor-grace-period=20s</h2>"));
}

#[test]
fn a_compare_set_the_controller_would_refuse_is_a_usage_error_naming_it() {
    let out = bin()
        .args(["simulate", "--compare-set", "node-eviction-rate=-1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("--compare-set") && err.contains("node-eviction-rate"),
        "{err}"
    );
}
