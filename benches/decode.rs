//! The floor for a first sync: how long `serde_json` alone needs to decode the list pages the
//! controller downloads. `benches/http_scale.py` saves the exact pages `simulate --serve` answers
//! (`nodes-*.json`, `pods-*.json`, `leases-*.json`, 500 objects a page as kube's watcher asks)
//! and runs `cargo bench --bench decode -- DIR`.
//!
//! Three decodes of the same bytes, each the median of 5 runs: into `serde::de::IgnoredAny`
//! (parsing only: no JSON client can be faster), into `serde_json::Value`, and into the typed
//! `k8s_openapi` list (what kube does before the controller sees an object). For pods a fourth
//! line times the controller's own path for the same pages: kube's decode of the list into
//! the pod watch's digests, their interning and insertion into the pod cache, and the taint
//! manager's bookkeeping, as a first list does (no I/O, no async, one thread).

use k8s_openapi::List;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use node_lifecycle_controller::cache::PodCache;
use node_lifecycle_controller::k8s::pod_digest::PodDigest;
use node_lifecycle_controller::logic::eviction::TaintManager;
use node_lifecycle_controller::logic::view::ClusterView;
use serde::de::{DeserializeOwned, IgnoredAny};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const RUNS: usize = 5;

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; anything else is the directory.
    let Some(dir) = std::env::args().skip(1).find(|a| !a.starts_with("--")) else {
        println!(
            "decode: skipped: no directory of list pages given \
             (benches/http_scale.py saves them and runs `cargo bench --bench decode -- DIR`)"
        );
        return ExitCode::SUCCESS;
    };
    let dir = PathBuf::from(dir);
    let mut total = [Duration::ZERO; 3];
    for resource in ["nodes", "leases", "pods"] {
        let pages = match read_pages(&dir, resource) {
            Ok(pages) => pages,
            Err(e) => {
                eprintln!(
                    "decode: cannot read the {resource} pages in {}: {e}",
                    dir.display()
                );
                return ExitCode::FAILURE;
            }
        };
        let bytes: usize = pages.iter().map(Vec::len).sum();
        let times = match resource {
            "nodes" => decode_all::<Node>(&pages),
            "leases" => decode_all::<Lease>(&pages),
            _ => decode_all::<Pod>(&pages),
        };
        let times = match times {
            Ok(t) => t,
            Err(e) => {
                eprintln!("decode: a {resource} page is not a valid list: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!(
            "{resource:>6}: {} pages, {:.1} MiB: parse only {:.3}s, to Value {:.3}s, typed {:.3}s",
            pages.len(),
            bytes as f64 / (1 << 20) as f64,
            times[0].as_secs_f64(),
            times[1].as_secs_f64(),
            times[2].as_secs_f64(),
        );
        for (t, x) in total.iter_mut().zip(times) {
            *t += x;
        }
    }
    match controller_path(&dir) {
        Ok(t) => println!(
            "  pods: the controller's path (digest, cache, view): {:.3}s",
            t.as_secs_f64()
        ),
        Err(e) => {
            eprintln!("decode: a pods page is not a valid list: {e}");
            return ExitCode::FAILURE;
        }
    }
    println!(
        " total: parse only {:.3}s, to Value {:.3}s, typed {:.3}s",
        total[0].as_secs_f64(),
        total[1].as_secs_f64(),
        total[2].as_secs_f64()
    );
    ExitCode::SUCCESS
}

/// `DIR/{resource}-{i}.json` for i = 0, 1, … until one is missing.
fn read_pages(dir: &Path, resource: &str) -> std::io::Result<Vec<Vec<u8>>> {
    let mut pages = Vec::new();
    loop {
        let path = dir.join(format!("{resource}-{}.json", pages.len()));
        match std::fs::read(&path) {
            Ok(bytes) => pages.push(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !pages.is_empty() => {
                return Ok(pages);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Median times of the three decodes of every page.
fn decode_all<K: DeserializeOwned + k8s_openapi::ListableResource>(
    pages: &[Vec<u8>],
) -> serde_json::Result<[Duration; 3]> {
    Ok([
        median(|| decode::<IgnoredAny>(pages))?,
        median(|| decode::<serde_json::Value>(pages))?,
        median(|| decode::<List<K>>(pages))?,
    ])
}

fn decode<T: DeserializeOwned>(pages: &[Vec<u8>]) -> serde_json::Result<()> {
    for page in pages {
        let decoded: T = serde_json::from_slice(page)?;
        drop(std::hint::black_box(decoded));
    }
    Ok(())
}

/// Median time of the controller's path for every pods page: as kube decodes a list page
/// (UTF-8 text, then `serde_json`), then as the control loop applies each pod of a first list.
fn controller_path(dir: &Path) -> serde_json::Result<Duration> {
    let pages = read_pages(dir, "pods").map_err(serde_json::Error::io)?;
    median(|| {
        let mut view = ClusterView::<PodCache>::default();
        let mut taints = TaintManager::new();
        let now = jiff::Timestamp::UNIX_EPOCH;
        for page in &pages {
            let text = std::str::from_utf8(page).map_err(|e| {
                serde_json::Error::io(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
            })?;
            let list: kube::core::ObjectList<PodDigest> = serde_json::from_str(text)?;
            for digest in list.items {
                let (key, old) = view.pods.put(digest.into_watched());
                let old = old.as_ref().map(|o| o.facts());
                taints.pod_seen(old.as_ref(), &view.pods[&key].facts(), now, true);
            }
        }
        drop(std::hint::black_box(view));
        Ok(())
    })
}

fn median(mut f: impl FnMut() -> serde_json::Result<()>) -> serde_json::Result<Duration> {
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        f()?;
        times.push(started.elapsed());
    }
    times.sort();
    Ok(times[RUNS / 2])
}
