//! The real-cluster tier: the controller deployed as users deploy it (the Helm chart, the
//! image's command line, the chart's RBAC) against a real kube-apiserver and etcd built from
//! Kubernetes' own sources (`tests/kube-box/`), driven by a fake kubelet fleet. Every scenario
//! gets a box of its own and asserts on what the API server holds and on its audit log.
//!
//! A test binary without libtest's harness, so that it says itself what it ran and what it
//! skipped: `cargo test --test real_cluster [-- NAME...]`. Its preconditions are the box's
//! binaries (`NLC_KUBE_BOX_BIN`, or a build cached by `tests/kube-box/build.sh`), helm and
//! `unshare`. Without them it prints `SKIPPED` and why, and exits 0, except under CI (`CI` set),
//! where a skipped tier is a failure. A scenario that cannot run against this release (the
//! fields of `no_data_lost` are 1.37's) is reported skipped, never ok, and under CI fails too. `NLC_REAL_CLUSTER_JOBS` (default 3): boxes at once.

#[path = "../summary/record.rs"]
mod record;

mod admission;
mod audit;
mod deploy;
mod faults;
mod fleet;
mod kube_box;
mod recipes;
mod scenarios;
mod scrape;

use std::process::{Command, ExitCode};
use std::time::Instant;

fn preconditions() -> Result<String, String> {
    let bin = match std::env::var("NLC_KUBE_BOX_BIN") {
        Ok(b) => b,
        Err(_) => {
            let build = std::path::Path::new(kube_box::ROOT).join("tests/kube-box/build.sh");
            let out = Command::new("bash")
                .arg(&build)
                .arg("--cached")
                .output()
                .map_err(|e| format!("running {}: {e}", build.display()))?;
            if !out.status.success() {
                return Err(format!(
                    "no kube-box binaries: run tests/kube-box/build.sh (Go and the Go module \
                     proxy) or set NLC_KUBE_BOX_BIN ({})",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        }
    };
    for tool in ["etcd", "kube-apiserver"] {
        let path = std::path::Path::new(&bin).join(tool);
        if !path.exists() {
            return Err(format!("NLC_KUBE_BOX_BIN={bin} has no {tool}"));
        }
    }
    deploy::helm_available()?;
    let unshare = Command::new("unshare")
        .args(["--mount", "true"])
        .status()
        .map_err(|e| format!("unshare: {e}"))?;
    if !unshare.success() {
        return Err(
            "unshare --mount fails: the stand-in kubelet needs mount namespaces (root)".into(),
        );
    }
    Ok(bin)
}

/// The box's binaries, passed to `box.sh` by every scenario.
pub static BOX_BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn main() -> ExitCode {
    // NAME... runs the scenarios whose names contain one of them; `--skip NAME` leaves out
    // those that contain it (as libtest's flags); other flags (`--nocapture`...) are ignored.
    let (mut filters, mut skips) = (Vec::new(), Vec::new());
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--skip" {
            skips.extend(args.next());
        } else if !a.starts_with('-') {
            filters.push(a);
        }
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    let registered: Vec<&scenarios::Scenario> = scenarios::ALL
        .iter()
        .chain(recipes::ALL)
        .chain(faults::ALL)
        .chain(admission::ALL)
        .collect();
    let names: Vec<&str> = registered.iter().map(|s| s.name).collect();
    if let Err(e) = recipes::check_docs(&names) {
        println!("real_cluster: FAILED: {e}");
        summary("FAILED", e);
        return ExitCode::FAILURE;
    }
    let bin = match preconditions() {
        Ok(bin) => bin,
        Err(why) => {
            println!("real_cluster: SKIPPED: {why}");
            summary("SKIPPED", why);
            if ci {
                println!("real_cluster: a skipped tier fails under CI");
                return ExitCode::FAILURE;
            }
            return ExitCode::SUCCESS;
        }
    };
    let _ = BOX_BIN.set(bin.clone());
    let chosen: Vec<&scenarios::Scenario> = registered
        .into_iter()
        .filter(|s| filters.is_empty() || filters.iter().any(|f| s.name.contains(f.as_str())))
        .filter(|s| !skips.iter().any(|f| s.name.contains(f.as_str())))
        .collect();
    let jobs: usize = std::env::var("NLC_REAL_CLUSTER_JOBS")
        .ok()
        .and_then(|j| j.parse().ok())
        .filter(|&j| j > 0)
        .unwrap_or(3);
    println!(
        "real_cluster: {} scenario(s), {jobs} at a time, kube-box binaries in {bin}",
        chosen.len()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let started = Instant::now();
    let results = runtime.block_on(async {
        let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(jobs));
        let mut tasks = Vec::new();
        for (i, s) in chosen.iter().enumerate() {
            let limit = limit.clone();
            let run = s.run;
            let name = s.name;
            tasks.push((
                name,
                tokio::spawn(async move {
                    let _permit = limit.acquire().await.expect("semaphore");
                    let t = Instant::now();
                    println!("real_cluster: {name} ... started");
                    let skipped = run(i as u8 + 1).await;
                    (t.elapsed(), skipped)
                }),
            ));
        }
        let mut results = Vec::new();
        for (name, task) in tasks {
            results.push((name, task.await));
        }
        results
    });
    let (mut passed, mut skipped, mut failed) = (0, 0, 0);
    let mut skipped_names = Vec::new();
    for (name, result) in results {
        match result {
            Ok((elapsed, None)) => {
                passed += 1;
                println!(
                    "real_cluster: {name} ... ok ({:.0}s)",
                    elapsed.as_secs_f64()
                )
            }
            Ok((_, Some(why))) => {
                skipped += 1;
                skipped_names.push(format!("{name}: {why}"));
                println!("real_cluster: {name} ... SKIPPED: {why}");
            }
            Err(e) => {
                failed += 1;
                let msg = panic_text(e);
                println!("real_cluster: {name} ... FAILED: {msg}");
            }
        }
    }
    println!(
        "real_cluster: {passed} passed, {skipped} skipped, {failed} failed, in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    let status = match (failed, skipped) {
        (0, 0) => "ran",
        (0, _) => "SKIPPED",
        _ => "FAILED",
    };
    summary(
        status,
        format!(
            "{} scenario(s) against the box in {bin}: {passed} passed, {skipped} skipped{}, \
             {failed} failed",
            chosen.len(),
            if skipped_names.is_empty() {
                String::new()
            } else {
                format!(" ({})", skipped_names.join("; "))
            }
        ),
    );
    if failed > 0 || (ci && skipped > 0) {
        if failed == 0 {
            println!("real_cluster: a skipped scenario fails under CI");
        }
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The tier's line in the summary that `cargo test` prints last (tests/zz_summary.rs).
fn summary(status: &str, detail: String) {
    record::write(&record::Outcome {
        status: status.into(),
        what: "real-cluster tier".into(),
        detail,
        enable: if status == "ran" {
            String::new()
        } else {
            "tests/kube-box/tier.sh (installs helm, builds the box, runs the tier)".into()
        },
    });
}

/// The message a scenario panicked with.
fn panic_text(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic without a message".into()),
        Err(e) => e.to_string(),
    }
}
