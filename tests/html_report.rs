//! `simulate --output html` in a real headless browser (Chromium from Debian's packages): the
//! demo's page renders with no console message, and a screenshot is taken. Skipped only when
//! Chromium is absent and CI is unset; under CI a missing Chromium is a failure.

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
