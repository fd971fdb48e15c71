//! One cluster in a box per scenario: `tests/kube-box/box.sh start` (etcd + kube-apiserver on
//! loopback), stopped again by `Drop`, also when the scenario panics. On a failure the box's
//! logs (apiserver, etcd, audit, controllers) are copied to `target/real-cluster-artifacts/`.

use kube::config::{KubeConfigOptions, Kubeconfig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

pub struct KubeBox {
    pub name: String,
    pub dir: PathBuf,
    pub port: u16,
    pub kubeconfig: PathBuf,
    pub audit_log: PathBuf,
    pub version: String,
    /// Where the box keeps the logs of the processes the scenario starts (controllers).
    pub logs: PathBuf,
}

fn script() -> PathBuf {
    Path::new(ROOT).join("tests/kube-box/box.sh")
}

impl KubeBox {
    /// Starts a box for the scenario `name` under `target/real-cluster/`.
    pub fn start(name: &str) -> Result<KubeBox, String> {
        let base = Path::new(ROOT).join("target/real-cluster");
        std::fs::create_dir_all(&base).map_err(|e| format!("creating {}: {e}", base.display()))?;
        let dir = base.join(format!("{name}-{}", std::process::id()));
        if dir.exists() {
            // A box of an earlier run of this process id that was not stopped: stop it first.
            let _ = Command::new("bash")
                .arg(script())
                .arg("stop")
                .arg(&dir)
                .status();
            let _ = std::fs::remove_dir_all(&dir);
        }
        let out = Command::new("bash")
            .arg(script())
            .env(
                "NLC_KUBE_BOX_BIN",
                crate::BOX_BIN.get().expect("box binaries resolved"),
            )
            .arg("start")
            .arg(&dir)
            .output()
            .map_err(|e| format!("running box.sh: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "box.sh start failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let env: BTreeMap<String, String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let get = |k: &str| {
            env.get(k)
                .cloned()
                .ok_or_else(|| format!("box.sh start printed no {k}"))
        };
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
        Ok(KubeBox {
            name: name.to_string(),
            port: get("BOX_PORT")?
                .parse()
                .map_err(|e| format!("BOX_PORT: {e}"))?,
            kubeconfig: get("BOX_KUBECONFIG")?.into(),
            audit_log: get("BOX_AUDIT_LOG")?.into(),
            version: get("BOX_VERSION")?,
            logs,
            dir,
        })
    }

    /// A client with the admin's credentials.
    pub async fn admin(&self) -> kube::Client {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig).expect("admin kubeconfig reads");
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .expect("admin kubeconfig is valid");
        kube::Client::try_from(config).expect("admin client")
    }

    /// A ServiceAccount's credentials laid out as a kubelet mounts them (token, ca.crt,
    /// namespace), from the TokenRequest API.
    pub fn service_account_dir(&self, namespace: &str, name: &str) -> PathBuf {
        let out = Command::new("bash")
            .arg(script())
            .args(["token"])
            .arg(&self.dir)
            .args([namespace, name])
            .output()
            .expect("box.sh token runs");
        assert!(
            out.status.success(),
            "box.sh token {namespace} {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    }

    /// A control-plane fault (`box.sh freeze|thaw DIR etcd|kube-apiserver`, `down|up DIR`),
    /// run off the async workers: `up` waits for the restarted server to be ready, and a
    /// blocked worker would delay the fleet's kubelets.
    pub async fn fault(&self, verb: &'static str, process: Option<&'static str>) {
        let dir = self.dir.clone();
        let name = self.name.clone();
        let out = tokio::task::spawn_blocking(move || {
            Command::new("bash")
                .arg(script())
                .arg(verb)
                .arg(&dir)
                .args(process)
                .output()
        })
        .await
        .expect("join")
        .expect("box.sh runs");
        assert!(
            out.status.success(),
            "{name}: box.sh {verb} {}: {}",
            process.unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Whether this release has the 1.37 fields the "no data lost" scenario plants.
    pub fn is_at_least(&self, minor: u32) -> bool {
        self.version
            .trim_start_matches('v')
            .split('.')
            .nth(1)
            .and_then(|m| m.parse::<u32>().ok())
            .is_some_and(|m| m >= minor)
    }
}

impl Drop for KubeBox {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let keep = Path::new(ROOT)
                .join("target/real-cluster-artifacts")
                .join(&self.name);
            let _ = std::fs::remove_dir_all(&keep);
            let _ = std::fs::create_dir_all(&keep);
            for file in ["kube-apiserver.log", "etcd.log", "audit.log"] {
                let _ = std::fs::copy(self.dir.join(file), keep.join(file));
            }
            if let Ok(entries) = std::fs::read_dir(&self.logs) {
                for e in entries.flatten() {
                    let _ = std::fs::copy(e.path(), keep.join(e.file_name()));
                }
            }
            eprintln!("{}: logs kept in {}", self.name, keep.display());
        }
        let status = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(&self.dir)
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!(
                "{}: box.sh stop {} failed: {status:?}",
                self.name,
                self.dir.display()
            );
        }
    }
}
