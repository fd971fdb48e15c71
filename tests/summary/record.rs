//! What `cargo test` ran and skipped, said last: the test binaries that can skip something
//! (the real-cluster tier, the browser test) write one line each here, and `tests/zz_summary.rs`,
//! the last test binary cargo runs (binaries run in alphabetical order), prints them.
//!
//! The lines of one `cargo test` are kept apart from those of others by the process id of the
//! cargo that started the binaries (their parent), so a stale line of an earlier run is never
//! reported as this run's.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// How one part of the suite went.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// `ran` or `SKIPPED` (or `FAILED`).
    pub status: String,
    /// What it is (`real-cluster tier`, `html_report: the_demo_report_renders`).
    pub what: String,
    /// What ran, or why it was skipped.
    pub detail: String,
    /// For a skip: the one command that makes it run.
    pub enable: String,
}

/// This `cargo test`'s folder of lines.
fn folder(base: &Path, cargo: u32) -> PathBuf {
    base.join("test-summary").join(cargo.to_string())
}

fn base() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

/// Records an outcome for the summary of the `cargo test` that runs this binary. Best effort:
/// a line that cannot be written leaves the summary without it, never fails the test.
pub fn write(outcome: &Outcome) {
    write_in(&base(), std::os::unix::process::parent_id(), outcome);
}

pub fn write_in(base: &Path, cargo: u32, o: &Outcome) {
    let dir = folder(base, cargo);
    let _ = std::fs::create_dir_all(&dir);
    let clean = |s: &str| s.replace(['\t', '\n'], " ");
    let line = format!(
        "{}\t{}\t{}\t{}\n",
        clean(&o.status),
        clean(&o.what),
        clean(&o.detail),
        clean(&o.enable)
    );
    // One file per outcome, named after it: parallel tests of one binary never share a file.
    let name: String = o
        .what
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let _ = std::fs::write(dir.join(name), line);
}

/// The outcomes recorded under `cargo`, in the order of their names; the folder is removed.
pub fn take(base: &Path, cargo: u32) -> Vec<Outcome> {
    let dir = folder(base, cargo);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    let outcomes = files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .filter_map(|text| {
            let mut parts = text.trim_end_matches('\n').splitn(4, '\t');
            Some(Outcome {
                status: parts.next()?.to_string(),
                what: parts.next()?.to_string(),
                detail: parts.next()?.to_string(),
                enable: parts.next().unwrap_or_default().to_string(),
            })
        })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    // Lines of runs that never reached their summary (a failure stopped cargo, or the binary
    // ran alone) are of no use after a day.
    if let Ok(entries) = std::fs::read_dir(base.join("test-summary")) {
        for e in entries.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 24 * 3600);
            if old {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    outcomes
}

/// The parts that are not in `cargo test` at all, and how to run them.
pub const ELSEWHERE: &[(&str, &str)] = &[
    (
        "invariants over 2 000 more random scenarios (release build)",
        "NLC_INVARIANT_SEED=101 NLC_INVARIANT_SCENARIOS=2000 cargo test --release --test invariants",
    ),
    ("end-to-end tests on kind (Docker and kind)", "e2e/run.sh"),
];

/// The summary's text: every outcome, then what `cargo test` never runs.
pub fn render(outcomes: &[Outcome], real_cluster_reported: bool) -> String {
    let mut text = String::from(
        "\n== cargo test: what ran and what was skipped (docs/testing.md#tiers)\n\
         ran      every test binary above this summary, with its results (cargo stops at the \
         first that fails, unless --no-fail-fast)\n",
    );
    for o in outcomes {
        let status = if o.status == "ran" {
            "ran"
        } else {
            o.status.as_str()
        };
        text.push_str(&format!("{status:<8} {}: {}", o.what, o.detail));
        if !o.enable.is_empty() {
            text.push_str(&format!("\n         to run it: {}", o.enable));
        }
        text.push('\n');
    }
    if !real_cluster_reported {
        text.push_str(
            "not run  real-cluster tier: the real_cluster binary did not report in this run (a \
             filter such as --test left it out)\n         to run it: tests/kube-box/tier.sh\n",
        );
    }
    for (what, how) in ELSEWHERE {
        text.push_str(&format!(
            "not run  {what}: not part of cargo test\n         to run it: {how}\n"
        ));
    }
    let skipped = outcomes.iter().filter(|o| o.status != "ran").count();
    text.push_str(&format!(
        "== {} skipped or failed in this run{}\n",
        skipped,
        if skipped > 0 { " (see above)" } else { "" }
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = base().join(format!("summary-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_skip_is_reported_with_why_and_the_command_that_enables_it() {
        let dir = scratch("skip");
        write_in(
            &dir,
            42,
            &Outcome {
                status: "SKIPPED".into(),
                what: "real-cluster tier".into(),
                detail: "no helm".into(),
                enable: "tests/kube-box/tier.sh".into(),
            },
        );
        let outcomes = take(&dir, 42);
        let text = render(&outcomes, true);
        assert!(
            text.contains(
                "SKIPPED  real-cluster tier: no helm\n         to run it: tests/kube-box/tier.sh\n"
            ),
            "{text}"
        );
        assert!(
            text.ends_with("== 1 skipped or failed in this run (see above)\n"),
            "{text}"
        );
        assert!(take(&dir, 42).is_empty(), "the run's lines are taken once");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn another_cargo_runs_lines_are_not_this_ones() {
        let dir = scratch("other");
        let o = Outcome {
            status: "SKIPPED".into(),
            what: "html_report: x".into(),
            detail: "no chromium".into(),
            enable: String::new(),
        };
        write_in(&dir, 7, &o);
        assert!(take(&dir, 8).is_empty());
        assert_eq!(take(&dir, 7), vec![o]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_tier_that_did_not_report_is_said_not_run_never_passed() {
        let text = render(&[], false);
        assert!(text.contains("not run  real-cluster tier"), "{text}");
        assert!(text.contains("to run it: e2e/run.sh"), "{text}");
    }
}
