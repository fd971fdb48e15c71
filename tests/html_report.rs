//! `simulate --output html` and `status --output html` in a real headless browser (Chromium
//! from Debian's packages): the demo's page renders with no console message, and a screenshot
//! is taken; the status page's tables and lanes are drawn where and as they should be. Skipped
//! only when Chromium is absent and CI is unset; under CI a missing Chromium is a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_node-lifecycle-controller"))
}

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|p| p.is_file())
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false")
}

#[path = "summary/record.rs"]
mod record;

/// Chromium, or `None` (and a note) when a test may be skipped here; either way, a line for
/// the summary that `cargo test` prints last.
fn browser_or_skip(test: &str) -> Option<PathBuf> {
    let outcome = |status: &str, detail: &str, enable: &str| {
        record::write(&record::Outcome {
            status: status.into(),
            what: format!("html_report: {test}"),
            detail: detail.into(),
            enable: enable.into(),
        })
    };
    match chromium() {
        Some(c) => {
            outcome("ran", &format!("in {}", c.display()), "");
            Some(c)
        }
        None if ci() => {
            panic!("{test}: chromium is not installed, and CI is set: .ci/run installs it")
        }
        None => {
            eprintln!(
                "{test}: SKIPPED: no chromium on PATH (apt-get install chromium); CI fails instead"
            );
            outcome(
                "SKIPPED",
                "no chromium on PATH (the report's browser test)",
                "apt-get install chromium",
            );
            None
        }
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nlc-html-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Renders `page` headless; returns Chromium's stderr (console messages are logged there).
fn render(chromium: &Path, page: &Path, screenshot: &Path) -> String {
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--hide-scrollbars",
            "--window-size=1000,800",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(format!("file://{}", page.display()))
        .current_dir(page.parent().expect("a directory"))
        .output()
        .expect("chromium runs");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "chromium failed: {stderr}");
    stderr
}

/// Console messages of the page (`CONSOLE(line)] "message"`), errors included.
fn console_messages(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .collect()
}

#[test]
fn the_demo_report_renders_in_a_headless_browser_without_a_console_message() {
    let Some(chromium) = browser_or_skip("the_demo_report_renders") else {
        return;
    };
    let dir = scratch("demo");
    let out = bin()
        .args(["simulate", "--output", "html"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = dir.join("demo.html");
    std::fs::write(&page, &out.stdout).unwrap();
    let screenshot = dir.join("demo.png");
    let stderr = render(&chromium, &page, &screenshot);
    assert_eq!(console_messages(&stderr), Vec::<&str>::new(), "{stderr}");
    let png = std::fs::read(&screenshot).expect("a screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "screenshot of {} bytes",
        png.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_console_check_catches_a_page_that_logs_an_error() {
    let Some(chromium) = browser_or_skip("the_console_check_catches") else {
        return;
    };
    let dir = scratch("broken");
    let page = dir.join("broken.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><script>console.error('broken'); nothing();</script></body></html>",
    )
    .unwrap();
    let stderr = render(&chromium, &page, &dir.join("broken.png"));
    assert!(!console_messages(&stderr).is_empty(), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_report_references_no_http_or_https_address() {
    let out = bin()
        .args(["simulate", "--output", "html"])
        .output()
        .unwrap();
    let html = String::from_utf8(out.stdout).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    for forbidden in [
        "http://",
        "https://",
        "<script src",
        "<link",
        "url(",
        "@import",
    ] {
        assert!(!html.contains(forbidden), "the page contains {forbidden:?}");
    }
}

/// The page of `status --output html` for the recorded answer in tests/status-page/ (a leader's
/// `status` at 12:00:00: zone eu/zone-a Normal with a-1 lost and tainted `unreachable` since
/// 11:59:10; eu/zone-b PartialDisruption, three of its four nodes lost and its tainting paused;
/// three deletions ahead) and the cluster's objects as the CLI lists them at that instant.
fn status_page_of_the_recording() -> String {
    use node_lifecycle_controller::logic::explain::{Envelope, StatusReport};
    use node_lifecycle_controller::sim::snapshot::Snapshot;
    let answer: Envelope<StatusReport> =
        serde_json::from_str(include_str!("status-page/answer.json")).expect("the answer");
    let cluster: serde_json::Value =
        serde_json::from_str(include_str!("status-page/cluster.json")).expect("the cluster");
    let snapshot = Snapshot {
        nodes: serde_json::from_value(cluster["nodes"].clone()).expect("nodes"),
        pods: serde_json::from_value(cluster["pods"].clone()).expect("pods"),
        pdbs: vec![],
        taken_at: serde_json::from_value(cluster["takenAt"].clone()).expect("takenAt"),
    };
    node_lifecycle_controller::commands::explain::status_page(
        &answer,
        &snapshot,
        std::time::Duration::from_secs(3600),
        "recording",
    )
    .expect("the page")
}

#[test]
fn the_status_page_shows_the_leaders_zones_nodes_and_deletions_and_the_next_hour_agrees() {
    let html = status_page_of_the_recording();
    let row = |cells: &[&str]| format!("<tr><td>{}</td></tr>", cells.join("</td><td>"));
    // The leader's answer: its zones, with state, rate, queue and next release.
    for zone in [
        row(&["eu/zone-a", "Normal", "0.1", "0", "-"]),
        row(&["eu/zone-b", "PartialDisruption", "0", "3", "-"]),
    ] {
        assert!(html.contains(&zone), "no zone row {zone} in {html}");
    }
    // Its unhealthy nodes: the tainted one, and the three held back by their paused zone.
    let a1 = row(&[
        "a-1",
        "eu/zone-a",
        "Unknown",
        "2026-06-01T11:59:05Z",
        "node.kubernetes.io/unreachable since 2026-06-01T11:59:10Z",
        "4 (4)",
        "-",
    ]);
    assert!(html.contains(&a1), "no row {a1}");
    for b in ["b-0", "b-1", "b-2"] {
        let row = row(&[
            b,
            "eu/zone-b",
            "Unknown",
            "2026-06-01T11:59:40Z",
            "-",
            "2 (2)",
            "zone paused",
        ]);
        assert!(html.contains(&row), "no row {row}");
    }
    // Its deletions ahead (the leader saw the taint appear at 11:59:10 and counts from then,
    // plus 300 s or 900 s), each beside the time the next hour's what-if deletes the pod at:
    // a second later, as the what-if reads timeAdded from the API, whole seconds, and counts
    // from the next second, as a controller starting then would.
    for (due, pod, what_if) in [
        (
            "2026-06-01T12:04:10Z (in 4m 10s)",
            "shop/cart-0",
            "2026-06-01T12:04:11Z",
        ),
        (
            "2026-06-01T12:04:10Z (in 4m 10s)",
            "shop/web-1",
            "2026-06-01T12:04:11Z",
        ),
        (
            "2026-06-01T12:14:10Z (in 14m 10s)",
            "shop/cache-0",
            "2026-06-01T12:14:11Z",
        ),
    ] {
        let what_if = format!("{what_if} (+1.0s from the due time)");
        let deletion = row(&[due, pod, "a-1", &what_if]);
        assert!(html.contains(&deletion), "no row {deletion}");
    }
    // The next hour: those three pods and no other deleted, zone-b's nodes never tainted, the
    // only replicas of cart and cache lost; on the what-if report's own page.
    assert!(html.contains("<h2>The next 1h: what-if from the cluster's state</h2>"));
    assert!(
        html.contains("<tr><th>pods deleted</th><td class=\"n\">3</td></tr>"),
        "{html}"
    );
    assert!(
        html.contains("<td>251.0s</td>"),
        "first deletion 251 s after 12:00:00"
    );
    assert!(
        html.contains("<td>851.0s</td>"),
        "last deletion 851 s after 12:00:00"
    );
    assert!(
        html.contains("never tainted</th><td>b-0, b-1, b-2</td>"),
        "{html}"
    );
    assert!(
        html.contains("<p>shop/ReplicaSet/cart-5c9, shop/StatefulSet/cache</p>"),
        "{html}"
    );
    assert!(html.contains("<h3>zone eu/zone-b — 4 node(s)</h3>"));
    assert!(html.contains("Flags as the answer shows them: --node-eviction-rate=0.1;"));
    for forbidden in ["http://", "https://", "<script", "<link", "url(", "@import"] {
        assert!(!html.contains(forbidden), "the page contains {forbidden:?}");
    }
}

/// What the browser drew, measured by a script added to a copy of the page (the page itself
/// has none): the visible text, and the a-1 lane's shapes with their place and colour.
const PROBE: &str = r#"<script>
const svgOf = e => e.closest('svg').getBoundingClientRect();
const unknown = [...document.querySelectorAll('svg rect.unknown')]
  .filter(e => e.querySelector('title').textContent.startsWith('a-1: Unknown'));
const lane = unknown[0].getBoundingClientRect();
const inLane = e => { const r = e.getBoundingClientRect();
  return e.closest('svg') === unknown[0].closest('svg') && r.top >= lane.top && r.bottom <= lane.bottom; };
const box = e => { const r = e.getBoundingClientRect(), s = svgOf(e);
  return {x: Math.round(r.left - s.left), w: Math.round(r.width), fill: getComputedStyle(e).fill}; };
const probe = {
  text: document.body.innerText,
  unknown: unknown.map(box),
  taint: [...document.querySelectorAll('svg rect.taint')].filter(inLane).map(box),
  deletions: [...document.querySelectorAll('svg line.del')].map(box),
};
const pre = document.createElement('pre');
pre.id = 'nlc-probe';
pre.textContent = JSON.stringify(probe);
document.body.appendChild(pre);
</script>"#;

/// The probe's findings from Chromium's DOM after the page loaded.
fn probe(chromium: &Path, page: &Path) -> serde_json::Value {
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--window-size=1000,800",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&out.stdout);
    let json = dom
        .split_once("<pre id=\"nlc-probe\">")
        .and_then(|(_, rest)| rest.split_once("</pre>"))
        .map(|(json, _)| {
            json.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&amp;", "&")
        })
        .unwrap_or_else(|| {
            panic!(
                "no probe in the DOM: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    serde_json::from_str(&json).expect("the probe's JSON")
}

#[test]
fn the_status_page_draws_its_tables_and_the_lost_nodes_lane_in_a_headless_browser() {
    let Some(chromium) = browser_or_skip("the_status_page_draws") else {
        return;
    };
    let dir = scratch("status");
    let html = status_page_of_the_recording();
    let page = dir.join("status.html");
    std::fs::write(&page, &html).unwrap();
    let stderr = render(&chromium, &page, &dir.join("status.png"));
    assert_eq!(console_messages(&stderr), Vec::<&str>::new(), "{stderr}");

    let probed = dir.join("probed.html");
    std::fs::write(&probed, html.replace("</body>", &format!("{PROBE}</body>"))).unwrap();
    let p = probe(&chromium, &probed);
    // The text as laid out: table cells come tab-separated, one row a line.
    let text = p["text"].as_str().unwrap();
    for line in [
        "eu/zone-b\tPartialDisruption\t0\t3\t-",
        "b-1\teu/zone-b\tUnknown\t2026-06-01T11:59:40Z\t-\t2 (2)\tzone paused",
        "2026-06-01T12:14:10Z (in 14m 10s)\tshop/cache-0\ta-1\t2026-06-01T12:14:11Z (+1.0s from the due time)",
        "nodes unhealthy, never tainted\tb-0, b-1, b-2",
    ] {
        assert!(text.contains(line), "{line:?} not drawn in {text}");
    }
    // a-1 is Unknown (grey) across the whole hour, its NoExecute taint (purple) too, from the
    // lane's start (150 px) to the axis' end (960 px).
    let shape = |kind: &str| p[kind][0].clone();
    assert_eq!(shape("unknown")["fill"], "rgb(189, 189, 189)", "{p}");
    assert_eq!(shape("unknown")["x"], 150, "{p}");
    assert_eq!(shape("unknown")["w"], 810, "{p}");
    assert_eq!(shape("taint")["fill"], "rgb(106, 27, 154)", "{p}");
    assert_eq!(shape("taint")["w"], 810, "{p}");
    // Three deletion ticks: two at 251 s and one at 851 s of 3600 (150 + t / 3600 × 810 px).
    let mut ticks: Vec<i64> = p["deletions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["x"].as_i64().unwrap())
        .collect();
    ticks.sort();
    assert_eq!(ticks.len(), 3, "{p}");
    for (tick, t) in ticks.iter().zip([251.0, 251.0, 851.0]) {
        let want = 150.0 + t / 3600.0 * 810.0;
        assert!(
            (*tick as f64 - want).abs() <= 2.0,
            "tick at {tick}, {want} wanted: {p}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
