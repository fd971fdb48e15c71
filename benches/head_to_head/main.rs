//! Head to head with kube-controller-manager on the same real API server (issue 19).
//!
//! ```sh
//! tests/kube-box/build.sh                     # once: kube-apiserver, kube-controller-manager, etcd
//! cargo bench --bench head_to_head -- --nodes 200 --pods 30
//! cargo bench --bench head_to_head -- --nodes 1000 --pods 30 --out target/head-to-head-1000.md
//! cargo bench --bench head_to_head -- --nodes 1000 --pods 30 --scenario zone-outage
//! cargo bench --bench head_to_head -- --scenario api-freeze     # or api-restart, etcd-freeze
//! ```
//!
//! Runs the same scenario twice, once per controller, each in a fresh cluster in a box
//! (`tests/kube-box/box.sh`: etcd + kube-apiserver on loopback with an audit log), never both
//! at once: upstream `kube-controller-manager --controllers=node-lifecycle-controller,
//! taint-eviction-controller` built from the same release as the API server, then our
//! `node-lifecycle-controller run`. Both get the same flags (grace 40 s, monitor period 5 s,
//! eviction rates 1 and 0.1 node/s, large-cluster threshold 50, unhealthy-zone threshold 0.55),
//! leader election off, and the same credentials: a ServiceAccount `kube-system/h2h-controller`
//! bound to cluster-admin, so that the audit log tells the controller's requests apart.
//!
//! The scenario: a fake kubelet fleet (N nodes in Z zones, their Leases renewed every 10 s
//! spread over the period, each kubelet on its own as a kubelet is: every request bounded by a
//! 10 s timeout, failures retried with backoff from 200 ms doubling to 7 s, each renewal
//! conditional on the Lease's last resourceVersion; K pods per node tolerating the condition taints for: admission's
//! 300 s, 30 s, 60 s, forever) is created and settled first; the controller starts; once it has
//! synced the fleet is steady for `--steady` seconds; then a share of each zone's nodes go silent
//! (stop renewing), and a third of those come back (renew and post Ready) 10 s after their
//! NoExecute taint lands, before any of their pods is due. The run ends 75 s after the last silent node's
//! taint could have come.
//!
//! `--scenario zone-outage` instead silences `--outage` (0.75) of zone 0's nodes and none
//! elsewhere, none coming back: the zone crosses the unhealthy-zone threshold (0.55) and enters
//! PartialDisruption, where upstream's rules slow its taints to the secondary rate (0.1 node/s)
//! for a zone larger than the large-cluster threshold (50 nodes), and stop them for a smaller
//! one. The zone's taints are watched for 120 s after the grace; the run ends 75 s later.
//!
//! `--scenario api-freeze|api-restart|etcd-freeze` (issue 24) is a control-plane fault instead,
//! with its own defaults (50 nodes, 10 pods, 2 zones, grace 20 s, monitor period 2 s, steady
//! 30 s): nobody fails but node-00000, whose kubelet stops `--lead` (30) s before the fault; the
//! fault (`box.sh freeze/thaw kube-apiserver`, `down/up`, `freeze/thaw etcd`) lasts
//! `--fault-seconds` (45); the run ends `--after` (60) s after it. The pods tolerate the
//! condition taints for 0 s, 5 s, 30 s, 60 s and forever, and are all Running and Ready; each
//! kubelet also runs a 10 s status loop that posts Ready again when it finds a condition it did
//! not write. The report adds the fault's table (the dead node against the fault's end, what
//! was written against live nodes, the fleet under the fault), and the conformance table calls
//! any mark, taint, pod mark or deletion of a live node wrong for the side that wrote it.
//!
//! What it measures, from the same run for both: RSS (after sync, steady, peak: VmRSS/VmHWM each
//! second), CPU (utime+stime), API requests by verb and resource (audit log, by user),
//! detection (last renewal → Unknown, Unknown → NoExecute taint, taint spacing within a zone,
//! deletion against each pod's due time) and behaviour (the sets of nodes marked Unknown,
//! tainted, untainted, pods marked not ready, pods deleted, compared entry by entry). The
//! fleet's own lag (renewal completion against its schedule) is reported beside them, with a
//! verdict on whether the fleet was the limit.
//!
//! The conformance table of the report is computed by `conformance.rs` (a pure function of the
//! two runs' sets, unit-tested in `tests/head_to_head_conformance.rs`): each outcome is `same`,
//! a `deliberate difference` that a written-down rule explains (naming its anchor in
//! docs/differences.md), or `unexplained (possible bug)`.
//!
//! Options: `--nodes N` (200) `--pods K` (30) `--zones Z` (4) `--silent F` (0.1, per zone)
//! `--steady S` (60) `--concurrency C` (16, the fleet's requests in flight while creating)
//! `--only ours|upstream` `--out PATH` (target/head-to-head.md) `--keep` (keep the boxes)
//! `--qps Q` (`--kube-api-qps` and `--kube-api-burst` of both controllers; unset: their
//! defaults, 20 and 30, as a default deployment runs them; `--upstream-qps` is the old name)
//! `--scenario spread|zone-outage|api-freeze|api-restart|etcd-freeze` (spread) `--outage F` (0.75,
//! zone-outage's share of zone 0) `--grace S` `--monitor S` (40, 5) `--fault-seconds S` (45)
//! `--lead S` (30) `--after S` (60). The audit log of each run is kept beside the boxes, as
//! `target/head-to-head/SCENARIO-SIDE.audit.log`.

#[allow(dead_code)]
#[path = "../../tests/real_cluster/audit.rs"]
mod audit;
mod conformance;

use conformance::{node_index, node_name, pod_name, pod_node};

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const OURS: &str = env!("CARGO_BIN_EXE_node-lifecycle-controller");
const RENEW: Duration = Duration::from_secs(10);
const USER: &str = "system:serviceaccount:kube-system:h2h-controller";
const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
const NOT_READY: &str = "node.kubernetes.io/not-ready";
const NS: &str = "h2h";
/// Tolerations of the condition taints, by pod index modulo 4 (None: admission's 300 s for the
/// first, forever for the last).
const TOLERATIONS: [Option<u64>; 4] = [Some(300), Some(30), Some(60), None];

#[derive(Clone)]
struct Opts {
    nodes: usize,
    pods: usize,
    zones: usize,
    silent: f64,
    steady: u64,
    concurrency: usize,
    only: Option<String>,
    out: PathBuf,
    keep: bool,
    grace: u64,
    monitor: u64,
    rate: f64,
    secondary_rate: f64,
    large: u32,
    unhealthy: f64,
    qps: Option<f64>,
    /// `spread` (a share of every zone), `zone-outage` (most of zone 0), or a control-plane
    /// fault: `api-freeze`, `api-restart`, `etcd-freeze`.
    scenario: String,
    /// zone-outage: the share of zone 0 that goes silent.
    outage: f64,
    /// Fault scenarios: how long the fault lasts, how long the run goes on after it, and how
    /// long before it the dead node's kubelet stops.
    fault_seconds: u64,
    after: u64,
    lead: u64,
}

/// A control-plane fault: how `box.sh` begins and ends it.
#[derive(Clone, Copy, PartialEq)]
enum Fault {
    /// kube-apiserver SIGSTOPped: requests hang, then all complete at once.
    ApiFreeze,
    /// kube-apiserver SIGTERMed, then started again on the same etcd: connections refused.
    ApiRestart,
    /// etcd SIGSTOPped: the API server up, its storage calls hanging.
    EtcdFreeze,
}

impl Fault {
    fn parse(s: &str) -> Option<Fault> {
        match s {
            "api-freeze" => Some(Fault::ApiFreeze),
            "api-restart" => Some(Fault::ApiRestart),
            "etcd-freeze" => Some(Fault::EtcdFreeze),
            _ => None,
        }
    }

    /// box.sh's arguments (after the verb's DIR) that begin and end it.
    fn begin(self) -> (&'static str, Option<&'static str>) {
        match self {
            Fault::ApiFreeze => ("freeze", Some("kube-apiserver")),
            Fault::ApiRestart => ("down", None),
            Fault::EtcdFreeze => ("freeze", Some("etcd")),
        }
    }

    fn end(self) -> (&'static str, Option<&'static str>) {
        match self {
            Fault::ApiFreeze => ("thaw", Some("kube-apiserver")),
            Fault::ApiRestart => ("up", None),
            Fault::EtcdFreeze => ("thaw", Some("etcd")),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Fault::ApiFreeze => "kube-apiserver frozen (SIGSTOP, then SIGCONT)",
            Fault::ApiRestart => {
                "kube-apiserver stopped (SIGTERM), then started again on the same etcd"
            }
            Fault::EtcdFreeze => "etcd frozen (SIGSTOP, then SIGCONT), kube-apiserver up",
        }
    }
}

impl Opts {
    fn parse() -> Opts {
        let args: Vec<String> = std::env::args().skip(1).collect();
        // A fault scenario has its own defaults (a small fleet, issue 24's grace and period);
        // flags given override them wherever they stand.
        let fault = args
            .iter()
            .position(|a| a == "--scenario")
            .and_then(|i| args.get(i + 1))
            .and_then(|s| Fault::parse(s))
            .is_some();
        let mut o = Opts {
            nodes: if fault { 50 } else { 200 },
            pods: if fault { 10 } else { 30 },
            zones: if fault { 2 } else { 4 },
            silent: 0.1,
            steady: if fault { 30 } else { 60 },
            concurrency: 16,
            only: None,
            out: Path::new(ROOT).join("target/head-to-head.md"),
            keep: false,
            grace: if fault { 20 } else { 40 },
            monitor: if fault { 2 } else { 5 },
            rate: 1.0,
            secondary_rate: 0.1,
            large: 50,
            unhealthy: 0.55,
            qps: None,
            scenario: "spread".into(),
            outage: 0.75,
            fault_seconds: 45,
            after: 60,
            lead: 30,
        };
        let mut args = args.into_iter();
        while let Some(a) = args.next() {
            let mut val = || {
                args.next()
                    .unwrap_or_else(|| usage(&format!("{a} needs a value")))
            };
            match a.as_str() {
                "--nodes" => o.nodes = num(&val()),
                "--pods" => o.pods = num(&val()),
                "--zones" => o.zones = num(&val()),
                "--silent" => o.silent = num(&val()),
                "--steady" => o.steady = num(&val()),
                "--concurrency" => o.concurrency = num(&val()),
                "--only" => o.only = Some(val()),
                "--out" => o.out = val().into(),
                "--keep" => o.keep = true,
                "--qps" | "--upstream-qps" => o.qps = Some(num(&val())),
                "--scenario" => {
                    o.scenario = val();
                    if !matches!(o.scenario.as_str(), "spread" | "zone-outage")
                        && o.fault().is_none()
                    {
                        usage(&format!(
                            "--scenario {}: spread, zone-outage, api-freeze, api-restart or etcd-freeze",
                            o.scenario
                        ));
                    }
                }
                "--outage" => o.outage = num(&val()),
                "--fault-seconds" => o.fault_seconds = num(&val()),
                "--after" => o.after = num(&val()),
                "--lead" => o.lead = num(&val()),
                "--grace" => o.grace = num(&val()),
                "--monitor" => o.monitor = num(&val()),
                "--bench" => {}
                _ => usage(&format!("unknown argument {a}")),
            }
        }
        o
    }

    fn command(&self) -> String {
        if self.fault().is_some() {
            let mut c = format!(
                "cargo bench --bench head_to_head -- --scenario {} --nodes {} --pods {} --zones {} --steady {} --lead {} --fault-seconds {} --after {} --grace {} --monitor {}",
                self.scenario,
                self.nodes,
                self.pods,
                self.zones,
                self.steady,
                self.lead,
                self.fault_seconds,
                self.after,
                self.grace,
                self.monitor
            );
            if let Some(o) = &self.only {
                write!(c, " --only {o}").unwrap();
            }
            if let Some(q) = self.qps {
                write!(c, " --qps {q}").unwrap();
            }
            return c;
        }
        let mut c = format!(
            "cargo bench --bench head_to_head -- --nodes {} --pods {} --zones {} --silent {} --steady {}",
            self.nodes, self.pods, self.zones, self.silent, self.steady
        );
        if (self.grace, self.monitor) != (40, 5) {
            write!(c, " --grace {} --monitor {}", self.grace, self.monitor).unwrap();
        }
        if let Some(o) = &self.only {
            write!(c, " --only {o}").unwrap();
        }
        if let Some(q) = self.qps {
            write!(c, " --qps {q}").unwrap();
        }
        if self.zone_outage() {
            write!(c, " --scenario zone-outage --outage {}", self.outage).unwrap();
        }
        c
    }
}

impl Opts {
    fn zone_outage(&self) -> bool {
        self.scenario == "zone-outage"
    }

    fn fault(&self) -> Option<Fault> {
        Fault::parse(&self.scenario)
    }

    /// The pods' tolerations of the condition taints, by pod index modulo their number (None:
    /// forever; 300: admission's default, written by none). A fault scenario has issue 24's:
    /// 0 s, 5 s, 30 s, 60 s and forever.
    fn tolerations(&self) -> &'static [Option<u64>] {
        if self.fault().is_some() {
            &[Some(0), Some(5), Some(30), Some(60), None]
        } else {
            &TOLERATIONS
        }
    }

    /// The QPS its client-side limit allows (the flag, or both controllers' default 20).
    fn qps_limit(&self) -> f64 {
        self.qps.unwrap_or(20.0)
    }
}

fn num<T: std::str::FromStr>(s: &str) -> T {
    s.parse()
        .unwrap_or_else(|_| usage(&format!("not a number: {s}")))
}

fn usage(why: &str) -> ! {
    eprintln!(
        "head_to_head: {why}\nusage: cargo bench --bench head_to_head -- [--nodes N] [--pods K] [--zones Z] [--silent F] [--steady S] [--concurrency C] [--only ours|upstream] [--qps Q] [--grace S] [--monitor S] [--scenario spread|zone-outage|api-freeze|api-restart|etcd-freeze] [--outage F] [--fault-seconds S] [--after S] [--lead S] [--out PATH] [--keep]"
    );
    std::process::exit(2)
}

fn log(msg: &str) {
    eprintln!("[{}] {msg}", Timestamp::now().strftime("%H:%M:%S"));
}

// ---------------------------------------------------------------------------------------------
// The box

struct KubeBox {
    dir: PathBuf,
    server: String,
    ca: String,
    kubeconfig: PathBuf,
    audit: PathBuf,
    bin: PathBuf,
    keep: bool,
}

fn box_script() -> PathBuf {
    Path::new(ROOT).join("tests/kube-box/box.sh")
}

fn box_bin() -> PathBuf {
    if let Ok(b) = std::env::var("NLC_KUBE_BOX_BIN") {
        return b.into();
    }
    let out = Command::new("bash")
        .arg(Path::new(ROOT).join("tests/kube-box/build.sh"))
        .arg("--cached")
        .output()
        .expect("running build.sh");
    if !out.status.success() {
        eprintln!(
            "head_to_head: no kube-box binaries: run tests/kube-box/build.sh first ({})",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        std::process::exit(1);
    }
    String::from_utf8_lossy(&out.stdout).trim().into()
}

impl KubeBox {
    fn start(name: &str, keep: bool) -> KubeBox {
        let base = Path::new(ROOT).join("target/head-to-head");
        std::fs::create_dir_all(&base).unwrap();
        let dir = base.join(format!("{name}-{}", std::process::id()));
        if dir.exists() {
            let _ = Command::new("bash")
                .arg(box_script())
                .arg("stop")
                .arg(&dir)
                .status();
            let _ = std::fs::remove_dir_all(&dir);
        }
        let bin = box_bin();
        let out = Command::new("bash")
            .arg(box_script())
            .env("NLC_KUBE_BOX_BIN", &bin)
            .arg("start")
            .arg(&dir)
            .output()
            .expect("running box.sh");
        assert!(
            out.status.success(),
            "box.sh start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env: BTreeMap<String, String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        KubeBox {
            server: env["BOX_SERVER"].clone(),
            ca: env["BOX_CA"].clone(),
            kubeconfig: env["BOX_KUBECONFIG"].clone().into(),
            audit: env["BOX_AUDIT_LOG"].clone().into(),
            bin,
            dir,
            keep,
        }
    }

    async fn admin(&self) -> kube::Client {
        let kc = Kubeconfig::read_from(&self.kubeconfig).expect("admin kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .expect("admin config");
        kube::Client::try_from(config).expect("admin client")
    }

    /// A ServiceAccount bound to cluster-admin and a kubeconfig with its token: the
    /// controller's identity, the same for both controllers.
    async fn controller_kubeconfig(&self, client: &kube::Client) -> PathBuf {
        create(
            client,
            "/api/v1/namespaces/kube-system/serviceaccounts",
            &json!({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": "h2h-controller", "namespace": "kube-system"}}),
        )
        .await;
        create(
            client,
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                    "metadata": {"name": "h2h-controller"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                    "subjects": [{"kind": "ServiceAccount", "name": "h2h-controller", "namespace": "kube-system"}]}),
        )
        .await;
        let out = Command::new("bash")
            .arg(box_script())
            .arg("token")
            .arg(&self.dir)
            .args(["kube-system", "h2h-controller"])
            .output()
            .expect("box.sh token");
        assert!(out.status.success(), "box.sh token failed");
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let token = std::fs::read_to_string(dir.join("token")).expect("token");
        let path = self.dir.join("controller.kubeconfig");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: box\n  cluster: {{server: \"{}\", certificate-authority: \"{}\"}}\nusers:\n- name: controller\n  user: {{token: \"{}\"}}\ncontexts:\n- name: box\n  context: {{cluster: box, user: controller}}\ncurrent-context: box\n",
                self.server,
                self.ca,
                token.trim()
            ),
        )
        .unwrap();
        path
    }
}

impl KubeBox {
    /// Begins or ends a control-plane fault with box.sh, off the runtime's threads (`up`
    /// waits until the restarted server is ready).
    async fn fault(&self, (verb, target): (&'static str, Option<&'static str>)) {
        let (script, dir, bin) = (box_script(), self.dir.clone(), self.bin.clone());
        let out = tokio::task::spawn_blocking(move || {
            let mut c = Command::new("bash");
            c.arg(script)
                .env("NLC_KUBE_BOX_BIN", bin)
                .arg(verb)
                .arg(dir);
            c.args(target);
            c.output()
        })
        .await
        .unwrap()
        .expect("running box.sh");
        assert!(
            out.status.success(),
            "box.sh {verb}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for KubeBox {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("box kept in {}", self.dir.display());
            return;
        }
        let _ = Command::new("bash")
            .arg(box_script())
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}

async fn create(client: &kube::Client, path: &str, body: &Value) {
    for attempt in 0.. {
        let request = http::Request::post(path)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body).unwrap())
            .unwrap();
        match client.request_text(request).await {
            Ok(_) => return,
            Err(e) if attempt < 5 => {
                log(&format!("POST {path}: {e}; again"));
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("POST {path}: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The fleet

fn conditions(now: Timestamp) -> Value {
    let t = format!("{:.0}", now.round(jiff::Unit::Second).unwrap_or(now));
    let c = |ty: &str, st: &str, reason: &str| {
        json!({"type": ty, "status": st, "reason": reason,
        "message": reason, "lastHeartbeatTime": t, "lastTransitionTime": t})
    };
    json!([
        c("MemoryPressure", "False", "KubeletHasSufficientMemory"),
        c("DiskPressure", "False", "KubeletHasNoDiskPressure"),
        c("PIDPressure", "False", "KubeletHasSufficientPID"),
        c("Ready", "True", "KubeletReady"),
    ])
}

/// A kubelet's request timeout and its retries' backoff (200 ms doubling to 7 s), so that a
/// hung or restarting API server looks to the fleet as it does to real kubelets.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const BACKOFF_FIRST: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(7);

#[derive(Default)]
struct FleetState {
    stopped: HashSet<usize>,
    /// renewTime of each node's last accepted renewal.
    renewed: HashMap<usize, Timestamp>,
    /// Each Lease's resourceVersion as last written, the precondition of its next renewal: a
    /// renewal abandoned during a fault and applied late then fails instead of moving
    /// renewTime back (kubelets update with the version they read, as here).
    versions: HashMap<usize, String>,
    /// Each accepted renewal: its node, its slot in the schedule, when it completed.
    done: Vec<(usize, Instant, Instant)>,
    /// When each failed attempt (timeout, error, conflict) failed.
    failed: Vec<Instant>,
    /// When a kubelet's status loop found its Ready condition not its own and restored it.
    restored: Vec<(usize, Instant)>,
}

struct Fleet {
    client: kube::Client,
    /// Seconds to create the nodes (with their Leases), and the pods.
    created_s: (f64, f64),
    state: Arc<Mutex<FleetState>>,
    kubelets: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for k in &self.kubelets {
            k.abort();
        }
    }
}

fn node_status(node: &str) -> Value {
    json!({"status": {
        "conditions": conditions(Timestamp::now()),
        "addresses": [{"type": "Hostname", "address": node}],
        "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
        "allocatable": {"cpu": "4", "memory": "16Gi", "pods": "110"},
        "nodeInfo": {"machineID": node, "systemUUID": node, "bootID": "boot",
            "kernelVersion": "6.1.0", "osImage": "Debian GNU/Linux 12 (bookworm)",
            "containerRuntimeVersion": "containerd://2.0.0", "kubeletVersion": "v1.37.2",
            "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64"}}})
}

async fn post_ready(client: &kube::Client, node: &str) {
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .patch_status(
            node,
            &PatchParams::default(),
            &Patch::Merge(node_status(node)),
        )
        .await
        .unwrap_or_else(|e| panic!("status of {node}: {e}"));
}

/// One renewal as a kubelet makes it: renewTime taken at each attempt, each attempt bounded by
/// the request timeout, failures retried with backoff until one is accepted or the node is
/// stopped.
async fn renew(client: &kube::Client, i: usize, state: &Mutex<FleetState>, slot: Instant) {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let name = node_name(i);
    let mut backoff = BACKOFF_FIRST;
    loop {
        let now = Timestamp::now();
        let mut patch = json!({"spec": {"renewTime": format!("{now:.6}")}});
        if let Some(v) = state.lock().unwrap().versions.get(&i) {
            patch["metadata"] = json!({ "resourceVersion": v });
        }
        let (pp, patch) = (PatchParams::default(), Patch::Merge(patch));
        match tokio::time::timeout(REQUEST_TIMEOUT, leases.patch(&name, &pp, &patch)).await {
            Ok(Ok(lease)) => {
                let mut s = state.lock().unwrap();
                s.renewed.insert(i, now);
                if let Some(v) = lease.metadata.resource_version {
                    s.versions.insert(i, v);
                }
                s.done.push((i, slot, Instant::now()));
                return;
            }
            Ok(Err(kube::Error::Api(status))) if status.is_conflict() => {
                state.lock().unwrap().failed.push(Instant::now());
                // Someone (an attempt applied late) wrote it: read the version again.
                if let Ok(Ok(lease)) =
                    tokio::time::timeout(REQUEST_TIMEOUT, leases.get(&name)).await
                    && let Some(v) = lease.metadata.resource_version
                {
                    state.lock().unwrap().versions.insert(i, v);
                }
            }
            _ => state.lock().unwrap().failed.push(Instant::now()),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
        if state.lock().unwrap().stopped.contains(&i) {
            return;
        }
    }
}

/// A kubelet's status loop, every 10 s: when the node's Ready condition is not the True it
/// writes (a controller marked it), it posts its own status again, as kubelets do.
async fn status_loop(
    client: kube::Client,
    i: usize,
    state: Arc<Mutex<FleetState>>,
    first: tokio::time::Instant,
) {
    let nodes: Api<Node> = Api::all(client.clone());
    let name = node_name(i);
    let mut next = first;
    loop {
        tokio::time::sleep_until(next).await;
        next += RENEW;
        if state.lock().unwrap().stopped.contains(&i) {
            continue;
        }
        let Ok(Ok(node)) = tokio::time::timeout(REQUEST_TIMEOUT, nodes.get(&name)).await else {
            continue;
        };
        let ready = node
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        if ready {
            continue;
        }
        let (pp, patch) = (PatchParams::default(), Patch::Merge(node_status(&name)));
        let post = nodes.patch_status(&name, &pp, &patch);
        if let Ok(Ok(_)) = tokio::time::timeout(REQUEST_TIMEOUT, post).await {
            state.lock().unwrap().restored.push((i, Instant::now()));
        }
    }
}

impl Fleet {
    /// Nodes (Ready, settled: no startup taint left), their Leases, then the pods; pods on
    /// `with_status` nodes are reported Running and Ready (the others stay as created: only
    /// the silent nodes' pods are ever marked not ready).
    async fn create(client: kube::Client, o: &Opts, with_status: &BTreeSet<usize>) -> Fleet {
        let t = Instant::now();
        create(
            &client,
            "/api/v1/namespaces",
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
        )
        .await;
        create(
            &client,
            &format!("/api/v1/namespaces/{NS}/serviceaccounts"),
            &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}),
        )
        .await;
        let state = Arc::new(Mutex::new(FleetState::default()));
        futures::stream::iter(0..o.nodes)
            .map(|i| {
                let client = client.clone();
                let state = Arc::clone(&state);
                let zone = format!("zone-{}", i % o.zones);
                async move {
                    let name = node_name(i);
                    create(&client, "/api/v1/nodes", &json!({"apiVersion": "v1", "kind": "Node",
                        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                            "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                            "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64",
                            "topology.kubernetes.io/zone": zone, "topology.kubernetes.io/region": "box"}}}))
                        .await;
                    post_ready(&client, &name).await;
                    // TaintNodesByCondition put not-ready:NoSchedule on the new node; a settled
                    // cluster's controller removed it long ago.
                    let nodes: Api<Node> = Api::all(client.clone());
                    nodes
                        .patch(&name, &PatchParams::default(), &Patch::Merge(json!({"spec": {"taints": null}})))
                        .await
                        .unwrap_or_else(|e| panic!("untainting {name}: {e}"));
                    let now = Timestamp::now();
                    create(&client, "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                        &json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                            "metadata": {"name": name, "namespace": "kube-node-lease"},
                            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                                     "renewTime": format!("{now:.6}")}}))
                        .await;
                    state.lock().unwrap().renewed.insert(i, now);
                }
            })
            .buffer_unordered(o.concurrency)
            .collect::<Vec<()>>()
            .await;
        log(&format!(
            "fleet: {} nodes in {:.1}s",
            o.nodes,
            t.elapsed().as_secs_f64()
        ));
        let nodes_s = t.elapsed().as_secs_f64();
        let mut fleet = Fleet {
            client: client.clone(),
            created_s: (nodes_s, 0.0),
            state,
            kubelets: vec![],
        };
        fleet.start_kubelets(o.nodes, o.fault().is_some());
        let t = Instant::now();
        let pods = (0..o.nodes).flat_map(|i| (0..o.pods).map(move |k| (i, k)));
        futures::stream::iter(pods)
            .map(|(i, k)| {
                let client = client.clone();
                let status = with_status.contains(&i);
                let tols = o.tolerations();
                async move {
                    let name = pod_name(i, k);
                    let mut tolerations = vec![];
                    if let Some(secs) = tols[k % tols.len()] {
                        if secs != 300 {
                            for key in [UNREACHABLE, NOT_READY] {
                                tolerations.push(json!({"key": key, "operator": "Exists",
                                    "effect": "NoExecute", "tolerationSeconds": secs}));
                            }
                        }
                    } else {
                        tolerations.push(json!({"operator": "Exists", "effect": "NoExecute"}));
                    }
                    create(&client, &format!("/api/v1/namespaces/{NS}/pods"), &json!({
                        "apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": name, "namespace": NS, "labels": {"app": format!("t{}", k % tols.len())}},
                        "spec": {"nodeName": node_name(i), "automountServiceAccountToken": false,
                            "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
                            "tolerations": tolerations}}))
                        .await;
                    if status {
                        let now = format!("{:.0}", Timestamp::now().round(jiff::Unit::Second).unwrap());
                        let c = |t: &str| json!({"type": t, "status": "True", "lastTransitionTime": now});
                        let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
                        pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({"status": {
                            "phase": "Running",
                            "conditions": [c("Initialized"), c("ContainersReady"), c("Ready"), c("PodScheduled")],
                            "hostIP": "10.0.0.1", "podIP": "10.1.0.1", "startTime": now,
                            "containerStatuses": [{"name": "app", "ready": true, "started": true,
                                "restartCount": 0, "image": "registry.k8s.io/pause:3.10", "imageID": "",
                                "state": {"running": {"startedAt": now}}}]}})))
                            .await
                            .unwrap_or_else(|e| panic!("status of {name}: {e}"));
                    }
                }
            })
            .buffer_unordered(o.concurrency)
            .collect::<Vec<()>>()
            .await;
        fleet.created_s.1 = t.elapsed().as_secs_f64();
        log(&format!(
            "fleet: {} pods in {:.1}s",
            o.nodes * o.pods,
            fleet.created_s.1
        ));
        fleet
    }

    /// One task per kubelet: node i renews at i/N of each 10 s period, on its own, so that
    /// a hung request delays no other kubelet; after a renewal that took longer than a period
    /// (retries), its schedule starts again from that renewal, as a kubelet's does. With
    /// `status`, each also runs its status loop (`status_loop`).
    fn start_kubelets(&mut self, n: usize, status: bool) {
        let start = tokio::time::Instant::now();
        for i in 0..n {
            let (client, state) = (self.client.clone(), Arc::clone(&self.state));
            let first = start + RENEW.mul_f64(i as f64 / n as f64);
            self.kubelets.push(tokio::spawn(async move {
                let mut slot = first;
                loop {
                    tokio::time::sleep_until(slot).await;
                    if !state.lock().unwrap().stopped.contains(&i) {
                        renew(&client, i, &state, slot.into_std()).await;
                    }
                    slot += RENEW;
                    let now = tokio::time::Instant::now();
                    if slot < now {
                        slot = now + RENEW;
                    }
                }
            }));
            if status {
                let (client, state) = (self.client.clone(), Arc::clone(&self.state));
                self.kubelets.push(tokio::spawn(status_loop(
                    client,
                    i,
                    state,
                    first + RENEW / 2,
                )));
            }
        }
    }

    fn stop(&self, nodes: &BTreeSet<usize>) {
        self.state.lock().unwrap().stopped.extend(nodes);
    }

    async fn resume(&self, i: usize) {
        self.state.lock().unwrap().stopped.remove(&i);
        renew(&self.client, i, &self.state, Instant::now()).await;
        post_ready(&self.client, &node_name(i)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The controller process and its samples

#[derive(Clone, Copy, Default)]
struct Sample {
    at: f64,
    rss_kib: u64,
    hwm_kib: u64,
    cpu_s: f64,
}

fn sample(pid: u32, started: Instant) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = rest[11].parse::<f64>().ok()? + rest[12].parse::<f64>().ok()?;
    Some(Sample {
        at: started.elapsed().as_secs_f64(),
        rss_kib: kib("VmRSS:"),
        hwm_kib: kib("VmHWM:"),
        cpu_s: ticks / clock_ticks(),
    })
}

fn clock_ticks() -> f64 {
    static T: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *T.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

struct Controller {
    which: &'static str,
    child: Child,
    started: Instant,
    log: PathBuf,
    admin: Option<String>,
    samples: Arc<Mutex<Vec<Sample>>>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Controller {
    fn start(which: &'static str, b: &KubeBox, kubeconfig: &Path, o: &Opts) -> Controller {
        let log_path = b.dir.join(format!("{which}.log"));
        let common = [
            format!("--node-monitor-period={}s", o.monitor),
            format!("--node-monitor-grace-period={}s", o.grace),
            "--node-startup-grace-period=60s".to_string(),
            format!("--node-eviction-rate={}", o.rate),
            format!("--secondary-node-eviction-rate={}", o.secondary_rate),
            format!("--large-cluster-size-threshold={}", o.large),
            format!("--unhealthy-zone-threshold={}", o.unhealthy),
            "--leader-elect=false".to_string(),
            format!("--kubeconfig={}", kubeconfig.display()),
        ];
        let (mut cmd, admin) = if which == "upstream" {
            let mut c = Command::new(b.bin.join("kube-controller-manager"));
            c.arg("--controllers=node-lifecycle-controller,taint-eviction-controller")
                .arg("--secure-port=0")
                .arg("--use-service-account-credentials=false");
            (c, None)
        } else {
            let addr = format!("127.0.0.1:{}", free_port());
            let mut c = Command::new(OURS);
            c.arg("run")
                .arg("--secure-address=")
                .arg(format!("--admin-address={addr}"));
            (c, Some(addr))
        };
        cmd.args(&common);
        // Both take kube-controller-manager's client-side rate-limit flags (defaults 20/30).
        if let Some(q) = o.qps {
            cmd.arg(format!("--kube-api-qps={q}"))
                .arg(format!("--kube-api-burst={}", q.ceil() as u64));
        }
        let out = std::fs::File::create(&log_path).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {which}: {e}"));
        let started = Instant::now();
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (pid, s) = (child.id(), Arc::clone(&samples));
        std::thread::spawn(move || {
            while let Some(x) = sample(pid, started) {
                s.lock().unwrap().push(x);
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        log(&format!("{which}: started pid {pid}: {cmd:?}"));
        Controller {
            which,
            child,
            started,
            log: log_path,
            admin,
            samples,
        }
    }

    /// Whether its caches are synced: ours says so on /readyz; kube-controller-manager logs
    /// "Caches are synced" once for each of its two controllers.
    fn synced(&self) -> bool {
        match &self.admin {
            Some(addr) => {
                let Ok(mut s) = std::net::TcpStream::connect(addr) else {
                    return false;
                };
                let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
                let _ = s.write_all(b"GET /readyz HTTP/1.0\r\nHost: x\r\n\r\n");
                let mut buf = String::new();
                let _ = s.read_to_string(&mut buf);
                buf.starts_with("HTTP/1.1 200") || buf.starts_with("HTTP/1.0 200")
            }
            None => {
                std::fs::read_to_string(&self.log)
                    .unwrap_or_default()
                    .matches("\"Caches are synced\"")
                    .count()
                    >= 2
            }
        }
    }

    fn now(&self) -> Sample {
        sample(self.child.id(), self.started)
            .unwrap_or_else(|| panic!("{} exited: see {}", self.which, self.log.display()))
    }

    fn stop(mut self) -> Vec<Sample> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.samples.lock().unwrap().clone()
    }
}

// ---------------------------------------------------------------------------------------------
// One run

struct Run {
    which: &'static str,
    sync_s: f64,
    after_sync: Sample,
    steady: Sample,
    steady_cpu_cores: f64,
    end: Sample,
    run_s: f64,
    peak_hwm_kib: u64,
    requests: BTreeMap<(String, String), u64>,
    /// Requests from the silence on, by kind (get, list, watch, write), and the nodes that went
    /// silent: what each lost node cost.
    after_silence: BTreeMap<&'static str, u64>,
    /// The same requests by the work they serve (`work_of`).
    work_after_silence: BTreeMap<&'static str, u64>,
    lost: usize,
    /// Per silent node: last renewal, Unknown, NoExecute taint (write, timeAdded), untaint.
    nodes: BTreeMap<usize, NodeTimes>,
    unknown: BTreeSet<String>,
    tainted: BTreeSet<String>,
    untainted: BTreeSet<String>,
    not_ready_pods: BTreeSet<String>,
    deleted: BTreeMap<String, Timestamp>,
    delete_attempts: u64,
    writes_to_healthy: u64,
    events: u64,
    /// "verb resource/subresource" of its writes to nodes and pods.
    write_verbs: BTreeSet<String>,
    event_groups: BTreeSet<String>,
    /// Its busiest 10 s in the audit log, requests a second.
    peak_rate: f64,
    fleet_lateness: Vec<f64>,
    fleet_failures: u64,
    /// How long the fleet took to create the nodes, and the pods.
    fleet_create_s: (f64, f64),
    silence_at: Timestamp,
    end_at: Timestamp,
    /// Fault scenarios: the fault, and the fleet under it.
    fault: Option<FaultRun>,
    /// What was written against live nodes (never expected): their marks and taints, their
    /// pods marked not ready, their pods deleted.
    live: BTreeMap<usize, NodeTimes>,
    live_not_ready: BTreeSet<String>,
    live_deleted: BTreeMap<String, Timestamp>,
}

struct FaultRun {
    begin: Timestamp,
    /// When it was over: thawed, or the restarted server ready.
    end: Timestamp,
    /// How long ending it took (`up` waits until the restarted server is ready).
    ending_s: f64,
    /// The fleet's failed renewal attempts during it and the 15 s after.
    failed_attempts: u64,
    /// Per live kubelet, its first accepted renewal after the end, seconds after it.
    back_after: Vec<f64>,
    never_back: usize,
    /// Kubelets that found their Ready condition not their own and restored it, seconds after
    /// the end.
    restored: Vec<(usize, f64)>,
}

fn secs_since_instant(a: Instant, b: Instant) -> f64 {
    if b >= a {
        b.duration_since(a).as_secs_f64()
    } else {
        -a.duration_since(b).as_secs_f64()
    }
}

#[derive(Default, Clone)]
struct NodeTimes {
    last_renewal: Option<Timestamp>,
    unknown: Option<Timestamp>,
    taint: Option<Timestamp>,
    time_added: Option<Timestamp>,
    untaint: Option<Timestamp>,
    /// When its kubelet came back (recovering nodes).
    back: Option<Timestamp>,
}

fn silent_nodes(o: &Opts) -> (BTreeSet<usize>, BTreeSet<usize>) {
    let per_zone = o.nodes / o.zones;
    if o.fault().is_some() {
        // One node, dead before the fault; every other kubelet lives throughout.
        return (BTreeSet::from([0]), BTreeSet::new());
    }
    if o.zone_outage() {
        // Zone 0 (nodes 0, Z, 2Z, …) loses `outage` of its nodes; none comes back, so that
        // the zone stays in its disrupted state for the whole run.
        let zone: Vec<usize> = (0..o.nodes).step_by(o.zones).collect();
        let take = (zone.len() as f64 * o.outage).round() as usize;
        return (zone.into_iter().take(take).collect(), BTreeSet::new());
    }
    let take = ((per_zone as f64 * o.silent).round() as usize).max(1);
    let mut silent = BTreeSet::new();
    for z in 0..o.zones {
        // Node i is in zone i % Z: the first `take` of each zone.
        silent.extend((0..take).map(|j| z + j * o.zones).filter(|&i| i < o.nodes));
    }
    // Every third silent node comes back.
    let recover = silent.iter().copied().step_by(3).collect();
    (silent, recover)
}

fn secs_since(a: Timestamp, b: Timestamp) -> f64 {
    (b.as_microsecond() - a.as_microsecond()) as f64 / 1e6
}

async fn run(which: &'static str, o: &Opts) -> Run {
    log(&format!("{which}: starting a box"));
    let b = KubeBox::start(which, o.keep);
    let client = b.admin().await;
    let kubeconfig = b.controller_kubeconfig(&client).await;
    let (silent, recover) = silent_nodes(o);
    // A fault scenario's pods are all Running and Ready, so that a not-ready mark on a live
    // node's pod shows in the audit log.
    let with_status = if o.fault().is_some() {
        (0..o.nodes).collect()
    } else {
        silent.clone()
    };
    let fleet = Fleet::create(client.clone(), o, &with_status).await;
    // A first round of renewals before the controller starts.
    tokio::time::sleep(RENEW).await;
    let c = Controller::start(which, &b, &kubeconfig, o);
    let deadline = Instant::now() + Duration::from_secs(600);
    while !c.synced() {
        assert!(
            Instant::now() < deadline,
            "{which} not synced after 600 s: see {}",
            c.log.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sync_s = c.started.elapsed().as_secs_f64();
    let after_sync = c.now();
    log(&format!(
        "{which}: synced after {sync_s:.2}s, RSS {} MiB; steady for {}s",
        after_sync.rss_kib / 1024,
        o.steady
    ));
    tokio::time::sleep(Duration::from_secs(o.steady)).await;
    let steady = c.now();
    let steady_cpu_cores = (steady.cpu_s - after_sync.cpu_s) / (steady.at - after_sync.at);
    let silence_at = Timestamp::now();
    fleet.stop(&silent);
    log(&format!(
        "{which}: {} nodes silent ({} come back 10 s after their taint)",
        silent.len(),
        recover.len()
    ));
    let mut last_renewal: BTreeMap<usize, Timestamp> = BTreeMap::new();
    let (returned, window) = if let Some(f) = o.fault() {
        // The dead node's kubelet stopped `lead` s before the fault; the fault lasts
        // `fault_seconds`; the run goes on `after` s past its end.
        tokio::time::sleep(Duration::from_secs(o.lead)).await;
        let begin = (Instant::now(), Timestamp::now());
        log(&format!("{which}: fault begins: {}", f.describe()));
        b.fault(f.begin()).await;
        tokio::time::sleep_until((begin.0 + Duration::from_secs(o.fault_seconds)).into()).await;
        let ending = Instant::now();
        b.fault(f.end()).await;
        let end = (Instant::now(), Timestamp::now());
        log(&format!(
            "{which}: fault ended ({:.1} s to end it); {} s more",
            ending.elapsed().as_secs_f64(),
            o.after
        ));
        tokio::time::sleep(Duration::from_secs(o.after)).await;
        let s = fleet.state.lock().unwrap();
        for i in &silent {
            last_renewal.insert(*i, s.renewed[i]);
        }
        (vec![], Some((begin, end, end.0 - ending)))
    } else {
        let per_zone_silent = silent.len().div_ceil(o.zones) as f64;
        // zone-outage: the disrupted zone's reduced rate would take far longer than a run; watch
        // it for 120 s.
        let taint_window = if o.zone_outage() {
            120.0
        } else {
            per_zone_silent / o.rate
        };
        let taints_by = o.grace as f64 + RENEW.as_secs_f64() + o.monitor as f64 + taint_window;
        // Each recovering kubelet comes back 10 s after its node's NoExecute taint (seen by
        // polling), well before its 30 s pods are due, whenever the zone's rate let it come.
        let give_up = Duration::from_secs_f64(taints_by + 10.0);
        let back = futures::future::join_all(recover.iter().map(|&i| {
            let fleet = &fleet;
            async move {
                let nodes: Api<Node> = Api::all(fleet.client.clone());
                let t = Instant::now();
                while t.elapsed() < give_up {
                    let tainted = nodes.get(&node_name(i)).await.ok().is_some_and(|n| {
                        n.spec
                            .and_then(|s| s.taints)
                            .unwrap_or_default()
                            .iter()
                            .any(|x| x.key == UNREACHABLE && x.effect == "NoExecute")
                    });
                    if tainted {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                tokio::time::sleep(Duration::from_secs(10)).await;
                let last = fleet.state.lock().unwrap().renewed[&i];
                fleet.resume(i).await;
                (i, last, Timestamp::now())
            }
        }));
        let end_after = taints_by + 75.0;
        let left = end_after - secs_since(silence_at, Timestamp::now());
        let (returned, _) = tokio::join!(
            back,
            tokio::time::sleep(Duration::from_secs_f64(left.max(0.0)))
        );
        log(&format!(
            "{which}: {} nodes came back on the way",
            returned.len()
        ));
        {
            let s = fleet.state.lock().unwrap();
            for i in &silent {
                last_renewal.insert(*i, s.renewed[i]);
            }
        }
        (returned, None)
    };
    let came_back: BTreeMap<usize, Timestamp> = returned.iter().map(|r| (r.0, r.2)).collect();
    last_renewal.extend(returned.iter().map(|r| (r.0, r.1)));
    let end_at = Timestamp::now();
    let end = c.now();
    let run_s = end.at;
    let samples = c.stop();
    let (fleet_lateness, fleet_failures, fault) = {
        let s = fleet.state.lock().unwrap();
        // The fleet's own lag is measured outside the fault (and the 15 s after it, while the
        // kubelets' retries land); the fault's effect on it is reported on its own.
        let span = window.map(|(b, e, _)| (b.0, e.0 + Duration::from_secs(15)));
        let in_fault = |t0: Instant, t1: Instant| span.is_some_and(|(a, b)| t1 >= a && t0 <= b);
        let lateness = s
            .done
            .iter()
            .filter(|(_, slot, at)| !in_fault(*slot, *at))
            .map(|(_, slot, at)| at.saturating_duration_since(*slot).as_secs_f64())
            .collect();
        let failures = s.failed.iter().filter(|t| !in_fault(**t, **t)).count() as u64;
        let fault = window.map(|(begin, end, ending)| {
            let first_back = |i: usize| {
                s.done
                    .iter()
                    .filter(|(n, _, at)| *n == i && *at >= end.0)
                    .map(|(_, _, at)| at.duration_since(end.0).as_secs_f64())
                    .reduce(f64::min)
            };
            let live: Vec<usize> = (0..o.nodes).filter(|i| !silent.contains(i)).collect();
            FaultRun {
                begin: begin.1,
                end: end.1,
                ending_s: ending.as_secs_f64(),
                failed_attempts: s.failed.len() as u64 - failures,
                back_after: live.iter().filter_map(|i| first_back(*i)).collect(),
                never_back: live.iter().filter(|i| first_back(**i).is_none()).count(),
                restored: s
                    .restored
                    .iter()
                    .map(|(i, at)| (*i, secs_since_instant(end.0, *at)))
                    .collect(),
            }
        });
        (lateness, failures, fault)
    };
    log(&format!("{which}: reading the audit log"));
    let mut r = Run {
        which,
        sync_s,
        after_sync,
        steady,
        steady_cpu_cores,
        end,
        run_s,
        peak_hwm_kib: samples
            .iter()
            .map(|s| s.hwm_kib)
            .max()
            .unwrap_or(0)
            .max(end.hwm_kib),
        requests: BTreeMap::new(),
        after_silence: BTreeMap::new(),
        work_after_silence: BTreeMap::new(),
        lost: 0,
        nodes: silent
            .iter()
            .map(|i| {
                (
                    *i,
                    NodeTimes {
                        last_renewal: Some(last_renewal[i]),
                        back: came_back.get(i).copied(),
                        ..NodeTimes::default()
                    },
                )
            })
            .collect(),
        unknown: BTreeSet::new(),
        tainted: BTreeSet::new(),
        untainted: BTreeSet::new(),
        not_ready_pods: BTreeSet::new(),
        deleted: BTreeMap::new(),
        delete_attempts: 0,
        writes_to_healthy: 0,
        events: 0,
        write_verbs: BTreeSet::new(),
        event_groups: BTreeSet::new(),
        peak_rate: 0.0,
        fleet_lateness,
        fleet_failures,
        fleet_create_s: fleet.created_s,
        silence_at,
        end_at,
        fault,
        live: BTreeMap::new(),
        live_not_ready: BTreeSet::new(),
        live_deleted: BTreeMap::new(),
    };
    drop(fleet);
    analyse(&mut r, &b.audit, &silent);
    // The audit log outlives the box, for checking a report's entries against it.
    let kept = b
        .dir
        .with_file_name(format!("{}-{which}.audit.log", o.scenario));
    if let Err(e) = std::fs::copy(&b.audit, &kept) {
        log(&format!("keeping the audit log: {e}"));
    }
    r
}

/// What one successful write of the controller did to a node or one of its pods.
enum Seen {
    Unknown,
    Tainted,
    Untainted,
    NotReady,
    Deleted,
}

/// Classifies a write, recording the node's first Unknown mark, NoExecute taint and untaint
/// in `t`.
fn observe(q: &audit::Request, t: &mut NodeTimes) -> Option<Seen> {
    match (q.resource.as_str(), q.subresource.as_str(), q.verb.as_str()) {
        ("nodes", "status", _)
            if t.unknown.is_none() && q.body.to_string().contains("\"Unknown\"") =>
        {
            t.unknown = Some(q.at);
            Some(Seen::Unknown)
        }
        ("nodes", "", _) => {
            let keys = audit::no_execute_keys(&q.body)?;
            if keys.iter().any(|k| k == UNREACHABLE) && t.taint.is_none() {
                t.taint = Some(q.at);
                t.time_added = q.body["spec"]["taints"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|x| x["key"] == UNREACHABLE && x["effect"] == "NoExecute")
                    .and_then(|x| x["timeAdded"].as_str())
                    .and_then(|s| s.parse().ok());
                Some(Seen::Tainted)
            } else if t.taint.is_some()
                && t.untaint.is_none()
                && !keys.iter().any(|k| k == UNREACHABLE)
            {
                t.untaint = Some(q.at);
                Some(Seen::Untainted)
            } else {
                None
            }
        }
        ("pods", "status", _) if conformance::is_not_ready_mark(&q.body) => Some(Seen::NotReady),
        ("pods", "", "delete") | ("pods", "eviction", _) => Some(Seen::Deleted),
        _ => None,
    }
}

/// The work a request serves, for the costs per unit of work: `None` for watches.
fn work_of(q: &audit::Request) -> Option<&'static str> {
    Some(
        match (q.verb.as_str(), q.resource.as_str(), q.subresource.as_str()) {
            ("watch", _, _) => return None,
            ("get", _, _) => "get",
            ("list", _, _) => "list",
            (_, "nodes", "status") => "node status",
            (_, "nodes", "") => "node",
            (_, "pods", "status") => "pod status",
            ("delete", "pods", "") | (_, "pods", "eviction") => "pod deletion",
            (_, "events", _) => "event",
            _ => "other",
        },
    )
}

/// The units a kind of work (`work_of`) is counted in, and how many of them a run did.
fn units_of(r: &Run, work: &str) -> (&'static str, usize) {
    let (marked, not_ready, deleted) = (r.unknown.len(), r.not_ready_pods.len(), r.deleted.len());
    match work {
        "node status" => ("node marked Unknown", marked),
        "pod status" => ("pod marked NotReady or deleted", not_ready + deleted),
        "pod deletion" => ("pod deleted", deleted),
        "event" => (
            "node marked, pod marked or deleted",
            marked + not_ready + deleted,
        ),
        // Taints on and off, reads, lists: per lost node.
        _ => ("lost node", r.lost),
    }
}

/// Requests from the silence on by the work they serve, per unit of that work; and what the
/// other side's unit costs would have spent on ours' work: the two did not do the same work
/// (one side may mark fewer nodes or delete fewer pods), so requests per lost node alone
/// compare unequal amounts of it.
fn per_unit_of_work(s: &mut String, ours: &Run, up: &Run) {
    writeln!(
        s,
        "\nRequests from the silence on by the work they serve, per unit of that work:\n\n\
         | work | unit | ours: requests / units = per unit | upstream: requests / units = per unit | ours/upstream |\n\
         |---|---|---|---|---|"
    )
    .unwrap();
    let works: BTreeSet<&str> = ours
        .work_after_silence
        .keys()
        .chain(up.work_after_silence.keys())
        .copied()
        .collect();
    let per_unit = |r: &Run, work: &str| {
        let requests = r.work_after_silence.get(work).copied().unwrap_or(0);
        let (_, units) = units_of(r, work);
        (requests, units, requests as f64 / units.max(1) as f64)
    };
    // Upstream's unit costs on ours' work.
    let mut up_on_ours = 0.0;
    for work in &works {
        let (unit, _) = units_of(ours, work);
        let (o_req, o_units, o_per) = per_unit(ours, work);
        let (u_req, u_units, u_per) = per_unit(up, work);
        up_on_ours += u_per * o_units as f64;
        let ratio = if u_per > 0.0 {
            format!("{:.2}×", o_per / u_per)
        } else {
            "–".into()
        };
        writeln!(
            s,
            "| {work} | {unit} | {o_req} / {o_units} = {o_per:.2} | {u_req} / {u_units} = {u_per:.2} | {ratio} |"
        )
        .unwrap();
    }
    let ours_all: u64 = ours.work_after_silence.values().sum();
    let lost = ours.lost.max(1) as f64;
    writeln!(
        s,
        "\nOn ours' work (its nodes marked, pods marked and deleted, lost nodes), requests per \
         lost node at each side's unit costs: ours {:.2}, upstream {:.2}, **{:.2}×**.",
        ours_all as f64 / lost,
        up_on_ours / lost,
        ours_all as f64 / up_on_ours.max(1.0)
    )
    .unwrap();
}

fn analyse(r: &mut Run, audit_log: &Path, silent: &BTreeSet<usize>) {
    r.lost = silent.len();
    let mut per_second: BTreeMap<i64, u64> = BTreeMap::new();
    for q in audit::read(audit_log) {
        if q.user != USER {
            continue;
        }
        // Watches are long-running: not what a client-side limit throttles.
        if q.verb != "watch" && q.at >= r.silence_at {
            *per_second.entry(q.at.as_second()).or_default() += 1;
        }
        let what = if q.verb == "list" || q.verb == "watch" || q.verb == "get" {
            q.what()
        } else {
            format!("{}{}", q.what(), if q.ok() { "" } else { " (failed)" })
        };
        *r.requests.entry((q.verb.clone(), what)).or_default() += 1;
        if q.at >= r.silence_at {
            let kind = match q.verb.as_str() {
                "get" => "get",
                "list" => "list",
                "watch" => "watch",
                _ => "write",
            };
            *r.after_silence.entry(kind).or_default() += 1;
            if let Some(work) = work_of(&q) {
                *r.work_after_silence.entry(work).or_default() += 1;
            }
        }
        if !q.is_write() {
            continue;
        }
        if q.resource == "events" {
            r.events += 1;
            r.event_groups.insert(q.api_group.clone());
            continue;
        }
        let node = match q.resource.as_str() {
            "nodes" => node_index(&q.name),
            "pods" => pod_node(&q.name),
            _ => None,
        };
        let Some(node) = node else { continue };
        let live = !silent.contains(&node);
        if live {
            r.writes_to_healthy += 1;
        }
        if !q.ok() {
            continue;
        }
        if live {
            let t = r.live.entry(node).or_default();
            match observe(&q, t) {
                Some(Seen::NotReady) => {
                    r.live_not_ready.insert(q.name.clone());
                }
                Some(Seen::Deleted) => {
                    r.live_deleted.entry(q.name.clone()).or_insert(q.at);
                }
                _ => {}
            }
            continue;
        }
        if matches!(q.resource.as_str(), "nodes" | "pods") && q.verb != "delete" {
            r.write_verbs.insert(format!("{} {}", q.verb, q.what()));
        }
        let t = r.nodes.entry(node).or_default();
        match observe(&q, t) {
            Some(Seen::Unknown) => {
                r.unknown.insert(q.name.clone());
            }
            Some(Seen::Tainted) => {
                r.tainted.insert(q.name.clone());
            }
            Some(Seen::Untainted) => {
                r.untainted.insert(q.name.clone());
            }
            Some(Seen::NotReady) => {
                r.not_ready_pods.insert(q.name.clone());
            }
            Some(Seen::Deleted) => {
                r.delete_attempts += 1;
                r.deleted.entry(q.name.clone()).or_insert(q.at);
            }
            None => {}
        }
    }
    // The busiest 10 s (a sliding window over whole seconds).
    if let (Some(&first), Some(&last)) = (per_second.keys().next(), per_second.keys().last()) {
        r.peak_rate = (first..=last)
            .map(|t| (t..t + 10).filter_map(|x| per_second.get(&x)).sum::<u64>())
            .max()
            .unwrap_or(0) as f64
            / 10.0;
    }
}

// ---------------------------------------------------------------------------------------------
// The report

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn dist(v: &[f64]) -> String {
    if v.is_empty() {
        return "–".into();
    }
    let mut v = v.to_vec();
    format!(
        "{:.2} / {:.2} / {:.2} (n={})",
        pct(&mut v, 0.5),
        pct(&mut v, 0.99),
        pct(&mut v, 1.0),
        v.len()
    )
}

struct Detection {
    /// Unknown after last renewal + grace.
    unknown_after_grace: Vec<f64>,
    /// First NoExecute taint after Unknown.
    taint_after_unknown: Vec<f64>,
    /// Per zone, the first NoExecute taint after its node's Unknown (no rate limit waited for).
    first_taint_in_zone: Vec<f64>,
    /// Spacing of consecutive taints within a zone.
    spacing: Vec<f64>,
    /// Deletion after due (timeAdded + toleration), per deleted pod.
    deletion_late: Vec<f64>,
    /// Deletion after due, due from the taint write's own audit time.
    deletion_late_write: Vec<f64>,
    wrong_deletions: Vec<String>,
    missing_deletions: Vec<String>,
}

fn detection(r: &Run, o: &Opts, recover: &BTreeSet<usize>) -> Detection {
    let mut d = Detection {
        unknown_after_grace: vec![],
        taint_after_unknown: vec![],
        first_taint_in_zone: vec![],
        spacing: vec![],
        deletion_late: vec![],
        deletion_late_write: vec![],
        wrong_deletions: vec![],
        missing_deletions: vec![],
    };
    let mut by_zone: BTreeMap<usize, Vec<Timestamp>> = BTreeMap::new();
    for (i, t) in &r.nodes {
        if let (Some(l), Some(u)) = (t.last_renewal, t.unknown) {
            d.unknown_after_grace
                .push(secs_since(l, u) - o.grace as f64);
        }
        if let (Some(u), Some(x)) = (t.unknown, t.taint) {
            d.taint_after_unknown.push(secs_since(u, x));
        }
        if let Some(x) = t.taint {
            by_zone.entry(i % o.zones).or_default().push(x);
        }
    }
    for z in 0..o.zones {
        let first = r
            .nodes
            .iter()
            .filter(|(i, t)| *i % o.zones == z && t.taint.is_some())
            .min_by_key(|(_, t)| t.taint);
        if let Some((
            _,
            NodeTimes {
                unknown: Some(u),
                taint: Some(x),
                ..
            },
        )) = first
        {
            d.first_taint_in_zone.push(secs_since(*u, *x));
        }
    }
    for ts in by_zone.values_mut() {
        ts.sort();
        d.spacing
            .extend(ts.windows(2).map(|w| secs_since(w[0], w[1])));
    }
    // Expected: every 30 s and 60 s pod of a silent node that did not come back, due before the
    // end of the run (less 5 s), deleted; nothing else.
    for (i, t) in &r.nodes {
        for k in 0..o.pods {
            let name = pod_name(*i, k);
            let tol = o.tolerations()[k % o.tolerations().len()];
            let due = match (t.time_added.or(t.taint), tol) {
                (Some(ta), Some(s)) => Some(ta + jiff::SignedDuration::from_secs(s as i64)),
                _ => None,
            };
            let due_write = match (t.taint, tol) {
                (Some(ta), Some(s)) => Some(ta + jiff::SignedDuration::from_secs(s as i64)),
                _ => None,
            };
            // A recovering node's pods are due for deletion only if they fell due well before
            // its kubelet came back (in this run: it comes back 10 s after it saw the taint,
            // later when that is late).
            let before_back = |d: Timestamp| {
                t.back.is_none_or(|b| secs_since(d, b) > 5.0) || !recover.contains(i)
            };
            let expected = due.is_some_and(|d| secs_since(d, r.end_at) > 5.0 && before_back(d));
            match (r.deleted.get(&name), expected) {
                (Some(at), true) => {
                    d.deletion_late.push(secs_since(due.unwrap(), *at));
                    d.deletion_late_write
                        .push(secs_since(due_write.unwrap(), *at));
                }
                (Some(at), false) => {
                    let early = due.is_none_or(|d| secs_since(d, *at) < -1.0);
                    let after_back = t.back.is_some_and(|b| *at > b);
                    if early || after_back {
                        d.wrong_deletions.push(name);
                    }
                }
                (None, true) => d.missing_deletions.push(name),
                (None, false) => {}
            }
        }
    }
    d
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn ratio(a: f64, b: f64) -> String {
    if b == 0.0 || !a.is_finite() || !b.is_finite() {
        "–".into()
    } else {
        format!("{:.2}", a / b)
    }
}

fn count(r: &Run, f: impl Fn(&str, &str) -> bool) -> u64 {
    r.requests
        .iter()
        .filter(|((v, w), _)| f(v, w))
        .map(|(_, n)| n)
        .sum()
}

fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// What the conformance classifier needs of one run; times in seconds after the silence.
fn side(r: &Run, d: &Detection, o: &Opts) -> conformance::Side {
    let rel = |t: Timestamp| secs_since(r.silence_at, t);
    let by_node = |f: fn(&NodeTimes) -> Option<Timestamp>| {
        r.nodes
            .iter()
            .filter_map(|(i, t)| f(t).map(|x| (node_name(*i), rel(x))))
            .collect::<BTreeMap<String, f64>>()
    };
    conformance::Side {
        unknown: by_node(|t| t.unknown),
        tainted: by_node(|t| t.taint),
        untainted: r.untainted.clone(),
        not_ready: r.not_ready_pods.clone(),
        deleted: r
            .deleted
            .iter()
            .map(|(p, t)| (p.clone(), rel(*t)))
            .collect(),
        came_back: by_node(|t| t.back),
        wrong_deletions: d.wrong_deletions.iter().cloned().collect(),
        missing_deletions: d.missing_deletions.iter().cloned().collect(),
        writes_to_healthy: r.writes_to_healthy,
        write_verbs: r.write_verbs.clone(),
        event_groups: r.event_groups.clone(),
        events: r.events,
        peak_rate: r.peak_rate,
        qps: o.qps_limit(),
        fault_end: r.fault.as_ref().map(|f| rel(f.end)),
        live_unknown: r
            .live
            .iter()
            .filter_map(|(i, t)| t.unknown.map(|x| (node_name(*i), rel(x))))
            .collect(),
        live_tainted: r
            .live
            .iter()
            .filter_map(|(i, t)| t.taint.map(|x| (node_name(*i), rel(x))))
            .collect(),
        live_not_ready: r.live_not_ready.clone(),
        live_deleted: r
            .live_deleted
            .iter()
            .map(|(p, t)| (p.clone(), rel(*t)))
            .collect(),
    }
}

fn scenario(o: &Opts, runs: &[&Run]) -> conformance::Scenario {
    let (silent, recover) = silent_nodes(o);
    conformance::Scenario {
        recovering: recover.iter().map(|i| node_name(*i)).collect(),
        outage: o.zone_outage().then(|| conformance::Outage {
            nodes: silent.iter().map(|i| node_name(*i)).collect(),
            zone_size: (0..o.nodes).step_by(o.zones).count(),
            unhealthy: o.unhealthy,
            large: o.large as usize,
            secondary: o.secondary_rate,
            monitor: o.monitor as f64,
            end: runs
                .iter()
                .map(|r| secs_since(r.silence_at, r.end_at))
                .fold(f64::INFINITY, f64::min),
        }),
        fault: o.fault().map(|_| conformance::Fault {
            dead: silent.iter().map(|i| node_name(*i)).collect(),
            grace: o.grace as f64,
            monitor: o.monitor as f64,
        }),
    }
}

/// `load` is /proc/loadavg as read when the command started (read here, it would be the end's).
fn report(o: &Opts, runs: &[Run], version: &str, started: Timestamp, load: &str) -> String {
    let (_, recover) = silent_nodes(o);
    let mut s = String::new();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    writeln!(
        s,
        "# Head to head: {} nodes × {} pods, {} zones\n",
        o.nodes, o.pods, o.zones
    )
    .unwrap();
    writeln!(s, "- command: `{}`", o.command()).unwrap();
    writeln!(
        s,
        "- started {} UTC; machine: {} × {cpu}, Linux {}; load before: {}",
        started.strftime("%Y-%m-%d %H:%M"),
        sh("nproc", &[]),
        sh("uname", &["-r"]),
        load
    )
    .unwrap();
    writeln!(
        s,
        "- kube-apiserver and kube-controller-manager {version} (tests/kube-box); ours {} ({})",
        sh("git", &["-C", ROOT, "rev-parse", "--short", "HEAD"]),
        env!("CARGO_PKG_VERSION")
    )
    .unwrap();
    writeln!(s, "- flags of both: grace {}s, monitor period {}s, startup grace 60s, eviction rate {}/s, secondary {}/s, large-cluster threshold {}, unhealthy-zone threshold {}, leader election off", o.grace, o.monitor, o.rate, o.secondary_rate, o.large, o.unhealthy).unwrap();
    let (silent, _) = silent_nodes(o);
    if let Some(f) = o.fault() {
        writeln!(s, "- scenario: {}: {}; steady {}s after sync, then one node's kubelet (node-00000) stops; {}s later the fault, for {}s; the run goes on {}s after it ends; every other kubelet renews on its own schedule throughout (each request bounded by a {}s timeout, failures retried with backoff from {}ms doubling to {}s) and restores its node's Ready condition within its 10 s status loop when it finds one it did not write; pods tolerate unreachable/not-ready for 0 s, 5 s, 30 s, 60 s and forever; each controller in a fresh box, one after the other\n", o.scenario, f.describe(), o.steady, o.lead, o.fault_seconds, o.after, REQUEST_TIMEOUT.as_secs(), BACKOFF_FIRST.as_millis(), BACKOFF_MAX.as_secs()).unwrap();
    } else if o.zone_outage() {
        writeln!(s, "- scenario: zone outage: steady {}s after sync; {} of zone-0's {} nodes silent ({:.0} %), none back, the other zones healthy; the zone's taints watched for 120 s; each controller in a fresh box, one after the other\n", o.steady, silent.len(), o.nodes.div_ceil(o.zones), o.outage * 100.0).unwrap();
    } else {
        writeln!(s, "- scenario: spread: steady {}s after sync; {} nodes silent ({} per zone), {} of them back 10 s after their NoExecute taint; each controller in a fresh box, one after the other\n", o.steady, silent.len(), silent.len() / o.zones.max(1), recover.len()).unwrap();
    }
    let (Some(ours), Some(up)) = (
        runs.iter().find(|r| r.which == "ours").or(runs.first()),
        runs.iter().find(|r| r.which == "upstream").or(runs.first()),
    ) else {
        return s;
    };
    if runs.len() == 1 {
        writeln!(
            s,
            "**One side only ({}): both columns are its run; the ratios mean nothing.**\n",
            runs[0].which
        )
        .unwrap();
    }
    let (dov, dup) = (detection(ours, o, &recover), detection(up, o, &recover));
    writeln!(
        s,
        "## Cost\n\n| | ours | upstream | ours/upstream |\n|---|---:|---:|---:|"
    )
    .unwrap();
    let mut row = |name: &str, a: f64, b: f64, prec: usize| {
        writeln!(s, "| {name} | {a:.prec$} | {b:.prec$} | {} |", ratio(a, b)).unwrap();
    };
    row("first sync after start (s)", ours.sync_s, up.sync_s, 2);
    row(
        "RSS after sync (MiB)",
        mib(ours.after_sync.rss_kib),
        mib(up.after_sync.rss_kib),
        1,
    );
    row(
        "RSS steady (MiB)",
        mib(ours.steady.rss_kib),
        mib(up.steady.rss_kib),
        1,
    );
    row(
        "RSS peak, VmHWM (MiB)",
        mib(ours.peak_hwm_kib),
        mib(up.peak_hwm_kib),
        1,
    );
    row(
        "CPU steady (cores)",
        ours.steady_cpu_cores,
        up.steady_cpu_cores,
        4,
    );
    row("CPU whole run (s)", ours.end.cpu_s, up.end.cpu_s, 2);
    row(
        "CPU whole run (cores)",
        ours.end.cpu_s / ours.run_s,
        up.end.cpu_s / up.run_s,
        4,
    );
    let reads = |r: &Run, verb: &'static str| count(r, move |v, _| v == verb) as f64;
    row("API: list", reads(ours, "list"), reads(up, "list"), 0);
    row("API: watch", reads(ours, "watch"), reads(up, "watch"), 0);
    row("API: get", reads(ours, "get"), reads(up, "get"), 0);
    let writes = |r: &Run| count(r, |v, _| !matches!(v, "list" | "watch" | "get")) as f64;
    row("API: writes", writes(ours), writes(up), 0);
    let all = |r: &Run| count(r, |_, _| true) as f64;
    row("API: all requests", all(ours), all(up), 0);
    // The same work on both sides: what each node that went silent cost, from the silence on.
    for kind in ["get", "list", "watch", "write"] {
        let per_lost =
            |r: &Run| r.after_silence.get(kind).copied().unwrap_or(0) as f64 / r.lost.max(1) as f64;
        row(
            &format!("API per lost node after the silence: {kind}"),
            per_lost(ours),
            per_lost(up),
            2,
        );
    }
    let per_lost_all =
        |r: &Run| r.after_silence.values().sum::<u64>() as f64 / r.lost.max(1) as f64;
    row(
        "API per lost node after the silence: all",
        per_lost_all(ours),
        per_lost_all(up),
        2,
    );
    per_unit_of_work(&mut s, ours, up);
    writeln!(s, "\nRequests by verb and resource (the controller's user in the audit log):\n\n| verb resource | ours | upstream |\n|---|---:|---:|").unwrap();
    let keys: BTreeSet<_> = ours.requests.keys().chain(up.requests.keys()).collect();
    for k in keys {
        writeln!(
            s,
            "| {} {} | {} | {} |",
            k.0,
            k.1,
            ours.requests.get(k).unwrap_or(&0),
            up.requests.get(k).unwrap_or(&0)
        )
        .unwrap();
    }
    writeln!(
        s,
        "\n## Detection (seconds; p50 / p99 / max)\n\n| | ours | upstream |\n|---|---|---|"
    )
    .unwrap();
    writeln!(
        s,
        "| Unknown after last renewal + grace ({}s) | {} | {} |",
        o.grace,
        dist(&dov.unknown_after_grace),
        dist(&dup.unknown_after_grace)
    )
    .unwrap();
    writeln!(
        s,
        "| first NoExecute taint after Unknown | {} | {} |",
        dist(&dov.taint_after_unknown),
        dist(&dup.taint_after_unknown)
    )
    .unwrap();
    writeln!(
        s,
        "| first NoExecute taint of each zone after its Unknown | {} | {} |\n| spacing of taints within a zone (rate {}/s) | {} | {} |",
        dist(&dov.first_taint_in_zone),
        dist(&dup.first_taint_in_zone),
        o.rate,
        dist(&dov.spacing),
        dist(&dup.spacing)
    )
    .unwrap();
    let smallest = |v: &[f64]| {
        v.iter()
            .copied()
            .min_by(f64::total_cmp)
            .map_or("–".into(), |m| format!("{m:.2}"))
    };
    writeln!(
        s,
        "| smallest gap between two taints of one zone (s) | {} | {} |",
        smallest(&dov.spacing),
        smallest(&dup.spacing)
    )
    .unwrap();
    writeln!(
        s,
        "| deletion after due (taint's timeAdded + toleration) | {} | {} |",
        dist(&dov.deletion_late),
        dist(&dup.deletion_late)
    )
    .unwrap();
    writeln!(
        s,
        "| deletion after due (taint write's audit time + toleration) | {} | {} |",
        dist(&dov.deletion_late_write),
        dist(&dup.deletion_late_write)
    )
    .unwrap();
    writeln!(
        s,
        "| fleet: renewal completion after its slot | {} | {} |",
        dist(&ours.fleet_lateness),
        dist(&up.fleet_lateness)
    )
    .unwrap();
    writeln!(
        s,
        "| fleet: failed renewals | {} | {} |",
        ours.fleet_failures, up.fleet_failures
    )
    .unwrap();
    writeln!(
        s,
        "| fleet: creating the nodes / the pods (s) | {:.0} / {:.0} | {:.0} / {:.0} |",
        ours.fleet_create_s.0, ours.fleet_create_s.1, up.fleet_create_s.0, up.fleet_create_s.1
    )
    .unwrap();
    // The fleet limits what is measured when a renewal completes so late that a detection
    // time could be the fleet's (more than 1 s at p99, or a monitor period at most), or fails.
    let fleet_limit = |r: &Run| {
        let mut v = r.fleet_lateness.clone();
        let (p99, max) = (pct(&mut v, 0.99), pct(&mut v, 1.0));
        if r.fleet_failures > 0 || p99 > 1.0 || max > o.monitor as f64 {
            format!(
                "**yes** (p99 {p99:.2} s, max {max:.2} s, {} failed)",
                r.fleet_failures
            )
        } else {
            format!("no (p99 {p99:.2} s, max {max:.2} s)")
        }
    };
    writeln!(
        s,
        "| fleet the limit? | {} | {} |",
        fleet_limit(ours),
        fleet_limit(up)
    )
    .unwrap();
    writeln!(s, "\n`timeAdded` has whole seconds, so a deletion may show up to 1 s early against it; the second line measures against the taint write itself.\n").unwrap();
    let rows = conformance::classify(
        &scenario(o, &[ours, up]),
        &side(ours, &dov, o),
        &side(up, &dup, o),
    );
    writeln!(s, "## Conformance (behaviour compared entry by entry)\n\nEach difference is classified by the rules of `benches/head_to_head/conformance.rs`; one that no rule explains is `unexplained (possible bug)`.\n\n| scenario × outcome | class | detail |\n|---|---|---|").unwrap();
    let name = if o.zone_outage() {
        "zone outage"
    } else {
        o.scenario.as_str()
    };
    for row in &rows {
        writeln!(
            s,
            "{}",
            row.markdown().replacen("| ", &format!("| {name}: "), 1)
        )
        .unwrap();
    }
    writeln!(
        s,
        "\nThe rules: {}.",
        conformance::RULES
            .iter()
            .map(|r| format!(
                "[{}](docs/differences.md#{}): {}",
                r.anchor, r.anchor, r.name
            ))
            .collect::<Vec<_>>()
            .join("; ")
    )
    .unwrap();
    writeln!(
        s,
        "\nBusiest 10 s after the silence: ours {:.1} requests/s, upstream {:.1} (client-side limit {} QPS). Delete requests / pods deleted: ours {} / {}, upstream {} / {}.",
        ours.peak_rate,
        up.peak_rate,
        o.qps_limit(),
        ours.delete_attempts,
        ours.deleted.len(),
        up.delete_attempts,
        up.deleted.len()
    )
    .unwrap();
    if o.fault().is_some() {
        fault_section(&mut s, o, ours, up);
    }
    if recover.is_empty() {
        return s;
    }
    writeln!(s, "\n## Recovered nodes (seconds after the NoExecute taint write)\n\n| node | ours: back / untainted / pods deleted | upstream: back / untainted / pods deleted |\n|---|---|---|").unwrap();
    for i in &recover {
        let cell = |r: &Run| {
            let t = r.nodes.get(i).cloned().unwrap_or_default();
            let rel = |x: Option<Timestamp>| match (t.taint, x) {
                (Some(a), Some(b)) => format!("{:.2}", secs_since(a, b)),
                _ => "–".into(),
            };
            let gone = r.deleted.keys().filter(|p| pod_node(p) == Some(*i)).count();
            format!("{} / {} / {gone}", rel(t.back), rel(t.untaint))
        };
        writeln!(s, "| {} | {} | {} |", node_name(*i), cell(ours), cell(up)).unwrap();
    }
    s
}

/// The fault scenarios' own table: the fault, the dead node against the fault's end, what was
/// written against live nodes, and the fleet under the fault.
fn fault_section(s: &mut String, o: &Opts, ours: &Run, up: &Run) {
    let (silent, _) = silent_nodes(o);
    writeln!(
        s,
        "\n## The fault (seconds after its end unless said)\n\n| | ours | upstream |\n|---|---|---|"
    )
    .unwrap();
    let mut row = |name: &str, f: &dyn Fn(&Run, &FaultRun) -> String| {
        let cell = |r: &Run| r.fault.as_ref().map_or("–".into(), |x| f(r, x));
        writeln!(s, "| {name} | {} | {} |", cell(ours), cell(up)).unwrap();
    };
    let at = |x: &FaultRun, t: Option<Timestamp>| {
        t.map_or("never".into(), |t| format!("{:+.2}", secs_since(x.end, t)))
    };
    row("began (UTC); lasted (s), of which ending it", &|_, x| {
        format!(
            "{}; {:.1}, {:.1}",
            x.begin.strftime("%H:%M:%S"),
            secs_since(x.begin, x.end),
            x.ending_s
        )
    });
    for i in &silent {
        let t = |r: &Run| r.nodes.get(i).cloned().unwrap_or_default();
        row(
            &format!("dead {}: kubelet stopped; last renewal", node_name(*i)),
            &|r, x| {
                format!(
                    "{}; {}",
                    at(x, Some(r.silence_at)),
                    at(x, t(r).last_renewal)
                )
            },
        );
        row(
            &format!("dead {}: marked Unknown", node_name(*i)),
            &|r, x| at(x, t(r).unknown),
        );
        row(
            &format!("dead {}: tainted unreachable:NoExecute", node_name(*i)),
            &|r, x| at(x, t(r).taint),
        );
        row(
            &format!("dead {}: pods deleted (of {})", node_name(*i), o.pods),
            &|r, x| {
                let mut d: Vec<f64> = r
                    .deleted
                    .iter()
                    .filter(|(p, _)| pod_node(p) == Some(*i))
                    .map(|(_, t)| secs_since(x.end, *t))
                    .collect();
                d.sort_by(f64::total_cmp);
                let times: Vec<String> = d.iter().map(|t| format!("{t:+.1}")).collect();
                format!("{} ({})", d.len(), times.join(", "))
            },
        );
    }
    let live_nodes = |r: &Run, x: &FaultRun, f: fn(&NodeTimes) -> Option<Timestamp>| {
        let mut v: Vec<f64> = r
            .live
            .values()
            .filter_map(f)
            .map(|t| secs_since(x.end, t))
            .collect();
        v.sort_by(f64::total_cmp);
        match (v.first(), v.last()) {
            (Some(a), Some(b)) => format!("**{}** ({a:+.2} … {b:+.2})", v.len()),
            _ => "0".into(),
        }
    };
    row("live nodes marked Unknown", &|r, x| {
        live_nodes(r, x, |t| t.unknown)
    });
    row("live nodes tainted unreachable:NoExecute", &|r, x| {
        live_nodes(r, x, |t| t.taint)
    });
    row("live nodes untainted", &|r, x| {
        live_nodes(r, x, |t| t.untaint)
    });
    row(
        "live nodes' pods marked not ready",
        &|r, _| match r.live_not_ready.len() {
            0 => "0".into(),
            n => format!("**{n}**"),
        },
    );
    row("live nodes' pods deleted", &|r, x| {
        let v: Vec<f64> = r
            .live_deleted
            .values()
            .map(|t| secs_since(x.end, *t))
            .collect();
        match v.len() {
            0 => "0".into(),
            n => format!(
                "**{n}** ({:+.2} … {:+.2})",
                v.iter().copied().fold(f64::INFINITY, f64::min),
                v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            ),
        }
    });
    row("kubelets that restored their Ready condition", &|_, x| {
        let v: Vec<f64> = x.restored.iter().map(|(_, t)| *t).collect();
        if v.is_empty() {
            "0".into()
        } else {
            format!("{} (p50 / p99 / max: {})", v.len(), dist(&v))
        }
    });
    row(
        "fleet: failed renewal attempts (during the fault and 15 s after)",
        &|_, x| x.failed_attempts.to_string(),
    );
    row(
        "fleet: each live kubelet's first renewal after the end (p50 / p99 / max)",
        &|_, x| {
            let mut t = dist(&x.back_after);
            if x.never_back > 0 {
                write!(t, "; **{} never**", x.never_back).unwrap();
            }
            t
        },
    );
}

fn main() {
    let o = Opts::parse();
    let started = Timestamp::now();
    let load = sh("cat", &["/proc/loadavg"]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let which: Vec<&'static str> = match o.only.as_deref() {
        None => vec!["upstream", "ours"],
        Some("ours") => vec!["ours"],
        Some("upstream") => vec!["upstream"],
        Some(x) => usage(&format!("--only {x}: ours or upstream")),
    };
    let version = sh(
        &box_bin().join("kube-apiserver").display().to_string(),
        &["--version"],
    );
    let mut runs = vec![];
    for w in which {
        runs.push(rt.block_on(run(w, &o)));
        let text = report(&o, &runs, &version, started, &load);
        if let Some(dir) = o.out.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(&o.out, &text).unwrap();
    }
    let text = std::fs::read_to_string(&o.out).unwrap();
    println!("{text}");
    log(&format!("report written to {}", o.out.display()));
}
