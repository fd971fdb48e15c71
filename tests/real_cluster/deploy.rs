//! Deploying as users do: `helm install` of the chart into the box (the chart creates the RBAC,
//! ServiceAccount, PDB, Service and Deployment), then a stand-in for the kubelet that runs the
//! Deployment's pods: it reads the Deployment back from the API server and starts the image's
//! entrypoint (from the Dockerfile) with the pod's command/args and env exactly as rendered,
//! `$(VAR)` references expanded as the kubelet does, the ServiceAccount's token mounted where a
//! pod has it (`/var/run/secrets/kubernetes.io/serviceaccount`, in a mount namespace of its own)
//! and `KUBERNETES_SERVICE_HOST`/`PORT` pointing at the box.

use crate::kube_box::{KubeBox, ROOT};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, EnvVar};
use kube::api::{Api, ListParams};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const NAMESPACE: &str = "kube-system";
pub const RELEASE: &str = "node-lifecycle-controller";
/// The binary the image would hold (built by cargo for this test run).
const BIN: &str = env!("CARGO_BIN_EXE_node-lifecycle-controller");
/// Where the Dockerfile puts the binary.
const IMAGE_BIN: &str = "/usr/local/bin/node-lifecycle-controller";

/// `$NLC_HELM`, else the pinned helm that `tests/kube-box/helm.sh` installed, else `helm`.
fn helm() -> PathBuf {
    if let Ok(h) = std::env::var("NLC_HELM") {
        return h.into();
    }
    let pinned = Command::new("bash")
        .arg(Path::new(ROOT).join("tests/kube-box/helm.sh"))
        .arg("--cached")
        .output();
    match pinned {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().into(),
        _ => "helm".into(),
    }
}

/// Whether a helm binary can be run (the tier's precondition).
pub fn helm_available() -> Result<(), String> {
    match Command::new(helm()).arg("version").output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!("{} version: {}", helm().display(), o.status)),
        Err(e) => Err(format!(
            "no helm ({}: {e}); tests/kube-box/helm.sh installs the pinned one, or set NLC_HELM",
            helm().display()
        )),
    }
}

/// `helm install` of the chart with the tier's values and `set` (`--set k=v`).
pub fn helm_install(kbox: &KubeBox, set: &[&str]) {
    let mut cmd = Command::new(helm());
    cmd.args(["install", RELEASE])
        .arg(Path::new(ROOT).join("charts/node-lifecycle-controller"))
        .args(["--namespace", NAMESPACE, "--kubeconfig"])
        .arg(&kbox.kubeconfig)
        .arg("--values")
        .arg(Path::new(ROOT).join("tests/real_cluster/values.yaml"));
    for s in set {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().expect("helm runs");
    assert!(
        out.status.success(),
        "helm install failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The image's ENTRYPOINT and CMD (exec form) in the Dockerfile's last stage.
fn image_config() -> (Vec<String>, Vec<String>) {
    let text = std::fs::read_to_string(Path::new(ROOT).join("Dockerfile")).expect("Dockerfile");
    let (mut entrypoint, mut cmd) = (Vec::new(), Vec::new());
    for line in text.lines() {
        if line.starts_with("FROM ") {
            (entrypoint, cmd) = (Vec::new(), Vec::new());
        } else if let Some(v) = line.strip_prefix("ENTRYPOINT ") {
            entrypoint = serde_json::from_str(v.trim()).expect("ENTRYPOINT in exec form");
            cmd.clear();
        } else if let Some(v) = line.strip_prefix("CMD ") {
            cmd = serde_json::from_str(v.trim()).expect("CMD in exec form");
        }
    }
    assert!(
        !entrypoint.is_empty(),
        "the Dockerfile's last stage has no ENTRYPOINT"
    );
    (entrypoint, cmd)
}

/// Kubernetes' `$(VAR)` expansion in command and args: defined variables are replaced, `$$`
/// escapes, anything else is left as written.
fn expand(s: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(t) = tail.strip_prefix("$$") {
            out.push('$');
            rest = t;
        } else if let Some(end) = tail.strip_prefix("$(").and_then(|t| t.find(')')) {
            let name = &tail[2..2 + end];
            match env.get(name) {
                Some(v) => out.push_str(v),
                None => out.push_str(&tail[..3 + end]),
            }
            rest = &tail[3 + end..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// One pod of the Deployment, run as a process.
pub struct Replica {
    pub pod: String,
    child: Child,
}

impl Replica {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status();
    }

    /// Waits up to `seconds` for the process to end; whether it did.
    pub fn wait_exit(&mut self, seconds: u64) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        None
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The rendered Deployment's pod template container and ServiceAccount.
async fn read_deployment(client: &kube::Client) -> (Container, String) {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let list = deployments
        .list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={RELEASE}")))
        .await
        .expect("list deployments");
    let d = list
        .items
        .into_iter()
        .next()
        .expect("helm created the Deployment");
    let spec = d.spec.expect("spec").template.spec.expect("pod spec");
    let sa = spec
        .service_account_name
        .clone()
        .unwrap_or_else(|| "default".into());
    (spec.containers.into_iter().next().expect("a container"), sa)
}

/// Starts pod number `index` of the Deployment (IP 127.77.`net`.`index + 1`).
pub async fn start_replica(kbox: &KubeBox, client: &kube::Client, net: u8, index: u8) -> Replica {
    let (container, sa) = read_deployment(client).await;
    let pod = format!("{RELEASE}-5f7d8c9b6-r{index}");
    let ip = format!("127.77.{net}.{}", index + 1);
    let mut env = BTreeMap::new();
    for EnvVar {
        name,
        value,
        value_from,
    } in container.env.clone().unwrap_or_default()
    {
        let v = match (value, value_from.and_then(|f| f.field_ref)) {
            (Some(v), _) => expand(&v, &env),
            (None, Some(f)) => match f.field_path.as_str() {
                "metadata.name" => pod.clone(),
                "metadata.namespace" => NAMESPACE.to_string(),
                "status.podIP" | "status.podIPs" => ip.clone(),
                other => panic!("the stand-in kubelet does not resolve fieldRef {other}"),
            },
            (None, None) => panic!("env {name}: only values and fieldRefs are resolved"),
        };
        env.insert(name, v);
    }
    let (entrypoint, cmd) = image_config();
    let mut argv: Vec<String> = match &container.command {
        Some(command) => command.iter().map(|c| expand(c, &env)).collect(),
        None => entrypoint,
    };
    let args = container.args.clone().unwrap_or(cmd);
    argv.extend(args.iter().map(|a| expand(a, &env)));
    assert_eq!(argv[0], IMAGE_BIN, "the pod runs what the image holds");
    argv[0] = BIN.to_string();

    let sa_dir = kbox.service_account_dir(NAMESPACE, &sa);
    let log = std::fs::File::create(kbox.logs.join(format!("{pod}.log"))).expect("log file");
    let mount = "mkdir -p /var/run/secrets/kubernetes.io/serviceaccount && \
                 mount --bind \"$0\" /var/run/secrets/kubernetes.io/serviceaccount && exec \"$@\"";
    let child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", mount])
        .arg(&sa_dir)
        .args(&argv)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", "/home/nonroot")
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", kbox.port.to_string())
        .envs(&env)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("the replica starts");
    Replica { pod, child }
}
