//! `explain` as a person runs it, against `simulate --serve` (real HTTP, no controller running):
//! with no controller to ask, the CLI works the answer out from the cluster's objects and says
//! so; bad input is a usage error. (The path through a port-forward to a live leader needs a
//! kubelet, which neither this nor the real-cluster tier has.)

use node_lifecycle_controller::sim::scenario;
use node_lifecycle_controller::sim::serve::{self, ServeOptions};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_node-lifecycle-controller");

/// `n-0` carries someone's NoExecute drain taint since 5 minutes before the start; `p-0` (bound
/// an hour before) tolerates it for 600 s, `ds` forever; `n-1` is healthy.
const CLUSTER: &str = r#"
duration: 60s
nodes:
  - name: n-0
    zone: z
    taints:
      - {key: example.com/drain, effect: NoExecute, timeAdded: -5m}
  - name: n-1
    zone: z
pods:
  - name: p-0
    node: n-0
    bound: -1h
    tolerations:
      - {key: example.com/drain, operator: Exists, effect: NoExecute, tolerationSeconds: 600}
  - name: ds
    node: n-0
    tolerations:
      - {operator: Exists}
  - name: q
    node: n-1
"#;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nlc-explain-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Serves `CLUSTER` on a free loopback port (until the runtime ends); the kubeconfig's path.
async fn serve_cluster(dir: &Path) -> PathBuf {
    let scenario = scenario::parse(CLUSTER, "explain").expect("scenario parses");
    let kubeconfig = dir.join("kubeconfig");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port");
    let path = kubeconfig.clone();
    tokio::spawn(async move {
        let _ = serve::serve_on(
            listener,
            &scenario,
            0,
            Some(&path),
            None,
            &ServeOptions::default(),
        )
        .await;
    });
    for _ in 0..500 {
        if kubeconfig.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    kubeconfig
}

async fn cli(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(BIN)
            .args(&args)
            .output()
            .expect("the binary runs")
    })
    .await
    .expect("joined")
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn seconds(v: &serde_json::Value) -> i64 {
    v.as_str()
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_second())
        .unwrap_or_else(|| panic!("not a timestamp: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_controller_to_ask_explain_works_the_answer_out_from_the_cluster_and_says_so() {
    let dir = scratch("offline");
    let kubeconfig = serve_cluster(&dir).await;
    let k = kubeconfig.to_str().unwrap();

    let out = cli(&[
        "explain",
        "pod",
        "default/p-0",
        "-o",
        "json",
        "--kubeconfig",
        k,
    ])
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("no controller answered"), "{stderr}");
    let answer = json(&out);
    assert_eq!(answer["schema"], "nlc.explain/v1");
    assert_eq!(answer["source"], "ClusterState");
    assert_eq!(answer["controller"]["role"]["state"], "NotReached");
    let pod = &answer["pod"];
    assert_eq!(pod["outcome"], "DeletionDue", "{pod}");
    assert_eq!(pod["taint"]["key"], "example.com/drain");
    assert_eq!(pod["toleration"]["tolerationSeconds"], 600);
    assert_eq!(pod["scheduled"], false);
    // timeAdded counts from the next whole second, then 600 s.
    assert_eq!(
        seconds(&pod["dueAt"]) - seconds(&pod["taint"]["timeAdded"]),
        601
    );

    let forever = json(
        &cli(&[
            "explain",
            "pod",
            "default/ds",
            "-o",
            "json",
            "--kubeconfig",
            k,
        ])
        .await,
    );
    assert_eq!(forever["pod"]["outcome"], "NoDeletion");
    assert_eq!(forever["pod"]["reasons"][0]["reason"], "ToleratesForever");

    let healthy = cli(&["explain", "pod", "default/q", "--kubeconfig", k]).await;
    let text = String::from_utf8_lossy(&healthy.stdout);
    assert!(healthy.status.success());
    assert!(
        text.contains("node n-1 is Ready and has no NoExecute taint"),
        "{text}"
    );

    let missing = cli(&[
        "explain",
        "pod",
        "default/nowhere",
        "-o",
        "json",
        "--kubeconfig",
        k,
    ])
    .await;
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(json(&missing)["pod"], serde_json::Value::Null);

    let zone = cli(&["explain", "zone", "z", "-o", "json", "--kubeconfig", k]).await;
    let stderr = String::from_utf8_lossy(&zone.stderr);
    assert!(zone.status.success(), "{stderr}");
    assert!(stderr.contains("no controller answered"), "{stderr}");
    let zone = json(&zone);
    assert_eq!(zone["source"], "ClusterState");
    assert_eq!(zone["zone"]["zone"], "z", "{zone}");
    assert_eq!(zone["zone"]["state"], "Normal", "{zone}");
    let no_zone = cli(&[
        "explain",
        "zone",
        "elsewhere",
        "-o",
        "json",
        "--kubeconfig",
        k,
    ])
    .await;
    assert_eq!(no_zone.status.code(), Some(1));
    assert_eq!(json(&no_zone)["zone"], serde_json::Value::Null);

    // The whole status: the zone, and p-0's deletion about five minutes ahead (ds tolerates
    // forever, q's node is healthy).
    let status = cli(&[
        "status",
        "--horizon",
        "10m",
        "-o",
        "json",
        "--kubeconfig",
        k,
    ])
    .await;
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert!(status.status.success(), "{stderr}");
    assert!(stderr.contains("no controller answered"), "{stderr}");
    let status = json(&status);
    assert_eq!(status["source"], "ClusterState");
    assert_eq!(status["zones"][0]["zone"], "z", "{status}");
    let deletions = status["deletions"].as_array().expect("a list of deletions");
    assert_eq!(deletions.len(), 1, "{status}");
    assert_eq!(deletions[0]["pod"], "default/p-0");
    assert_eq!(deletions[0]["node"], "n-0");
    let short = cli(&["status", "--horizon", "1m", "-o", "json", "--kubeconfig", k]).await;
    assert_eq!(
        json(&short)["deletions"],
        serde_json::json!([]),
        "not within a minute"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_pod_not_given_as_namespace_and_name_is_a_usage_error_naming_it() {
    let out = cli(&["explain", "pod", "web-0"]).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("explain pod \"web-0\": expected NAMESPACE/NAME"),
        "{stderr}"
    );
}

#[tokio::test]
async fn an_html_status_over_a_horizon_it_cannot_play_is_a_usage_error_naming_flag_and_value() {
    for horizon in ["0s", "2days"] {
        let out = cli(&["status", "-o", "html", "--horizon", horizon]).await;
        assert_eq!(out.status.code(), Some(2), "--horizon {horizon}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let shown = humantime::format_duration(humantime::parse_duration(horizon).unwrap());
        assert!(
            stderr.contains(&format!("--horizon={shown}: with --output html")),
            "{stderr}"
        );
    }
    // explain answers one pod, node or zone: it has no page.
    let out = cli(&["explain", "pod", "default/web-0", "-o", "html"]).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("'html'") && stderr.contains("--output"),
        "{stderr}"
    );
}
