//! Recipes of the documentation, run as written against the box: the "try it on a real API
//! server in five minutes" tour (`tests/kube-box/try-it.sh`, docs/user-guide.md) and the
//! metrics grant without the chart (docs/serving.md#without-the-chart). Also the check that
//! docs/testing.md lists exactly the scenarios registered here.

use crate::kube_box::{KubeBox, ROOT};
use crate::scenarios::Scenario;
use crate::scrape;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

pub const ALL: &[Scenario] = &[
    Scenario {
        name: "try_it_on_a_real_api_server",
        run: |net| {
            Box::pin(async move {
                tokio::task::spawn_blocking(move || try_it_on_a_real_api_server(net))
                    .await
                    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
                None
            })
        },
    },
    Scenario {
        name: "metrics_reader_without_the_chart",
        run: |net| {
            Box::pin(async move {
                metrics_reader_without_the_chart(net).await;
                None
            })
        },
    },
];

/// The `nth` (from 0) fenced block of `lang` after `anchor` (`<a id="...">`) in `doc`.
fn block_after(doc: &str, anchor: &str, lang: &str, nth: usize) -> String {
    let text = std::fs::read_to_string(Path::new(ROOT).join(doc))
        .unwrap_or_else(|e| panic!("reading {doc}: {e}"));
    let from = text
        .find(&format!("<a id=\"{anchor}\"></a>"))
        .unwrap_or_else(|| panic!("{doc} has no anchor {anchor}"));
    let mut rest = &text[from..];
    let fence = format!("```{lang}\n");
    for _ in 0..nth {
        let at = rest
            .find(&fence)
            .unwrap_or_else(|| panic!("{doc}: too few blocks after #{anchor}"));
        let after = &rest[at + fence.len()..];
        rest = &after[after.find("```").expect("the block ends") + 3..];
    }
    let start = rest
        .find(&format!("```{lang}\n"))
        .unwrap_or_else(|| panic!("{doc}: no ```{lang} block after #{anchor}"))
        + lang.len()
        + 4;
    let end = rest[start..].find("```").expect("the block ends") + start;
    rest[start..end].to_string()
}

/// The commands of a shell block: lines joined at trailing `\`, without comments.
fn commands(block: &str) -> Vec<String> {
    block
        .replace("\\\n", " ")
        .lines()
        .map(|l| l.split(" # ").next().unwrap_or_default())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `tests/kube-box/try-it.sh`, as docs/user-guide.md tells a user to run it, with this run's
/// binaries: it must succeed (each of its steps checks what it shows), and it must have run every
/// command of the guide's block.
fn try_it_on_a_real_api_server(_net: u8) {
    let name = "try_it_on_a_real_api_server";
    // The fake kubelets are an example (`cargo test` builds examples, `--test real_cluster`
    // alone does not): built here when missing, next to this test binary's target directory.
    let target = std::env::current_exe()
        .expect("test binary path")
        .parent()
        .and_then(Path::parent)
        .expect("target/debug")
        .to_path_buf();
    let fleet = target.join("examples/live-cluster");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = Command::new(&cargo)
        .args(["build", "--quiet", "--locked", "--example", "live-cluster"])
        .current_dir(ROOT)
        .status()
        .expect("cargo runs");
    assert!(
        built.success() && fleet.exists(),
        "{name}: building the live-cluster example"
    );
    let dir = Path::new(ROOT)
        .join("target/real-cluster")
        .join(format!("try-it-{}", std::process::id()));
    let _ = Command::new("bash")
        .arg(Path::new(ROOT).join("tests/kube-box/live-cluster.sh"))
        .arg("stop")
        .arg(&dir)
        .output();
    let port = free_port();
    let nlc = env!("CARGO_BIN_EXE_node-lifecycle-controller");
    let out = Command::new("bash")
        .arg(Path::new(ROOT).join("tests/kube-box/try-it.sh"))
        .arg(&dir)
        .env("NLC_BIN", nlc)
        .env("NLC_LIVE_CLUSTER_BIN", &fleet)
        .env(
            "NLC_KUBE_BOX_BIN",
            crate::BOX_BIN.get().expect("box binaries"),
        )
        .env("NLC_TRY_IT_PORT", port.to_string())
        .env_remove("KUBECONFIG")
        .output()
        .expect("try-it.sh runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{name}: try-it.sh failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // What the script ran, in the guide's terms: its directory, port and binary as there.
    let ran: Vec<String> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("$ "))
        .map(|l| {
            l.replace(&dir.display().to_string(), "target/try-it")
                .replace(&format!("127.0.0.1:{port}"), "127.0.0.1:10258")
                .replace(nlc, "target/debug/node-lifecycle-controller")
        })
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let guide = commands(&block_after(
        "docs/user-guide.md",
        "try-it-on-a-real-api-server",
        "sh",
        1,
    ));
    let shown: Vec<&String> = guide
        .iter()
        .filter(|c| !c.starts_with("tests/kube-box/try-it.sh"))
        .collect();
    assert!(
        shown.len() >= 8,
        "{name}: the guide's block has {} commands",
        shown.len()
    );
    for command in shown {
        assert!(
            ran.contains(command),
            "{name}: the guide says `{command}`, try-it.sh did not run it; it ran:\n{}",
            ran.join("\n")
        );
    }
    println!(
        "real_cluster: {name}: try-it.sh ran the guide's {} steps and its checks passed",
        guide.len()
    );
    assert!(
        !dir.exists(),
        "{name}: try-it.sh left {} behind",
        dir.display()
    );
}

/// docs/serving.md's grant without the chart, run as written: the controller started outside
/// the chart (admin credentials, so that it may review tokens), a scraper refused (403) until
/// the doc's two commands have run, then allowed (200, once the 10 s cache of the refusal ends).
async fn metrics_reader_without_the_chart(_net: u8) {
    let name = "metrics_reader_without_the_chart";
    let kbox = KubeBox::start(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    let client = kbox.admin().await;
    // A free port of its own: the binary runs outside the chart, on no replica's address.
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let log = std::fs::File::create(kbox.logs.join("controller.log")).expect("log");
    let mut controller = Command::new(env!("CARGO_BIN_EXE_node-lifecycle-controller"))
        .args(["run", "--leader-elect=false", "--identity=recipes"])
        .arg(format!("--secure-address={addr}"))
        .arg("--kubeconfig")
        .arg(&kbox.kubeconfig)
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("the controller starts");
    let _stop = Killer(&mut controller);

    let create = |path: &'static str, body: Value| {
        let client = client.clone();
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
        "/api/v1/namespaces",
        json!({"metadata": {"name": "monitoring"}}),
    )
    .await;
    create(
        "/api/v1/namespaces/monitoring/serviceaccounts",
        json!({"metadata": {"name": "my-scraper"}}),
    )
    .await;
    let token = std::fs::read_to_string(
        kbox.service_account_dir("monitoring", "my-scraper")
            .join("token"),
    )
    .expect("token");
    let scrape = || async {
        scrape::https_get(addr, "/metrics", Some(token.trim()))
            .await
            .ok()
            .map(|(status, _)| status)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let before = loop {
        if let Some(status) = scrape().await {
            break status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name}: the secure port never answered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(before, 403, "{name}: a scraper without the grant");

    let recipe = block_after("docs/serving.md", "without-the-chart", "sh", 0);
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &recipe])
        .current_dir(ROOT)
        .env("KUBECONFIG", &kbox.kubeconfig)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{name}: docs/serving.md's commands failed:\n{recipe}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The refusal is cached for 10 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let waited = tokio::time::Instant::now();
    loop {
        if scrape().await == Some(200) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name}: /metrics still refused 15 s after docs/serving.md's commands"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "real_cluster: {name}: 403 before docs/serving.md's commands, 200 {:.1}s after",
        waited.elapsed().as_secs_f64()
    );
}

struct Killer<'a>(&'a mut std::process::Child);

impl Drop for Killer<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// docs/testing.md's table of scenarios names exactly the registered ones, and the scenarios
/// `.ci/run` leaves out against 1.34 are named where the doc says so: checked from the code, so
/// that neither a new scenario nor a count in prose goes stale.
pub fn check_docs(registered: &[&str]) -> Result<(), String> {
    let path = Path::new(ROOT).join("docs/testing.md");
    let doc = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let table = doc
        .split("**What it shows**")
        .nth(1)
        .ok_or("docs/testing.md: no **What it shows** table")?;
    let mut listed = BTreeSet::new();
    for line in table
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
    {
        let first = line.split('|').nth(1).unwrap_or_default();
        listed.extend(first.split('`').skip(1).step_by(2).map(str::to_string));
    }
    let code: BTreeSet<String> = registered.iter().map(|s| s.to_string()).collect();
    let missing: Vec<&String> = code.difference(&listed).collect();
    let unknown: Vec<&String> = listed.difference(&code).collect();
    if !missing.is_empty() || !unknown.is_empty() {
        return Err(format!(
            "docs/testing.md's scenario table: not listed {missing:?}; listed but not registered {unknown:?}"
        ));
    }
    // .ci/run's run against 1.34: the `--skip NAME`s of the line after the 1.34 box is built.
    let ci = std::fs::read_to_string(Path::new(ROOT).join(".ci/run")).map_err(|e| e.to_string())?;
    let old = ci
        .split("NLC_KUBE_BOX_BIN=\"$old_box\"")
        .nth(1)
        .ok_or(".ci/run: no run against the 1.34 box")?;
    let command: String = old
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let skipped: BTreeSet<String> = command
        .split("--skip")
        .skip(1)
        .filter_map(|s| s.split_whitespace().next())
        .map(|s| s.trim_end_matches('\\').to_string())
        .collect();
    let sentence = doc
        .split("<a id=\"against-1-34\"></a>")
        .nth(1)
        .and_then(|s| s.split("\n\n").next())
        .ok_or("docs/testing.md: no paragraph at #against-1-34")?;
    let named: BTreeSet<String> = sentence
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|n| code.contains(*n))
        .map(str::to_string)
        .collect();
    if named != skipped {
        return Err(format!(
            "docs/testing.md#against-1-34 names {named:?} as left out against 1.34, .ci/run skips {skipped:?}"
        ));
    }
    if let Some(gone) = skipped.iter().find(|s| !code.contains(*s)) {
        return Err(format!(
            ".ci/run skips {gone} against 1.34, which is no scenario"
        ));
    }
    Ok(())
}
