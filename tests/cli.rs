//! The binary as a user meets it: the README's main command, and clear errors with exit code 2
//! for bad scenarios, flags and the files or contexts they name, 1 for a cluster that fails
//! (never a panic; docs/user-guide.md#exit-codes).

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_node-lifecycle-controller"))
}

fn simulate_stdin(yaml: &str, extra: &[&str]) -> Output {
    let mut child = bin()
        .args(["simulate", "-"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    child.wait_with_output().expect("binary finishes")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn simulate_without_a_file_runs_the_built_in_demo() {
    let out = bin()
        .args(["simulate", "--output", "jsonl"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let last = text.lines().last().unwrap();
    assert!(last.contains("\"type\":\"Summary\""));
    assert!(
        text.contains("\"type\":\"PodDeleted\""),
        "the demo shows an eviction"
    );
    assert!(
        text.contains("\"type\":\"TaintRemoved\""),
        "the demo shows a recovery"
    );
}

#[test]
fn the_table_output_ends_with_a_summary() {
    let out = bin().args(["simulate"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Summary"));
}

#[test]
fn malformed_scenarios_exit_2_with_the_file_line_and_field() {
    let cases: &[(&str, &str)] = &[
        (
            "duration: 5m\nnodes:\n  - name: a\n    zone: [unclosed\n",
            "-:4: nodes[0].zone",
        ),
        ("duration: 5m\nnodes:\n  - {name: a, zone: z\n", "-:"),
        ("duration: 5m\nnodes:\n  - name: a\n    zonee: z\n", "zonee"),
        (
            "duration: 5m\nnodes:\n  - name: a\n    ready: maybe\n",
            "ready",
        ),
        ("duration: -5m\n", "duration"),
        (
            "duration: 5m\nevents:\n  - {at: 1m, action: explode}\n",
            "explode",
        ),
        ("duration: lots\n", "duration"),
        ("", "is empty"),
    ];
    for (yaml, needle) in cases {
        let out = simulate_stdin(yaml, &[]);
        assert_eq!(out.status.code(), Some(2), "for {yaml:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(needle),
            "error for {yaml:?} should mention {needle}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn bad_controller_settings_exit_2_naming_the_flag_and_value() {
    let yaml = "duration: 1m\ncontroller:\n  node-eviction-rate: -1\n";
    let out = simulate_stdin(yaml, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("node-eviction-rate"),
        "{}",
        stderr(&out)
    );

    let out = simulate_stdin("duration: 1m\n", &["--set", "node-monitor-grace-period=1s"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("node-monitor-grace-period"),
        "{}",
        stderr(&out)
    );

    let out = simulate_stdin("duration: 1m\n", &["--set", "kubeconfig=/x"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn removed_upstream_flags_are_refused_with_an_explanation() {
    let out = bin()
        .args(["run", "--pod-eviction-timeout=5m"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("toleration"), "{}", stderr(&out));
}

#[test]
fn run_rejects_invalid_flags_before_touching_any_cluster() {
    let out = bin()
        .args([
            "run",
            "--unhealthy-zone-threshold=1.5",
            "--kubeconfig=/nonexistent",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--unhealthy-zone-threshold=1.5"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_unreadable_tls_certificate_exits_2_naming_the_flag_before_touching_any_cluster() {
    let out = bin()
        .args([
            "run",
            "--tls-cert-file=/nonexistent/tls.crt",
            "--tls-private-key-file=/nonexistent/tls.key",
            "--kubeconfig=/nonexistent",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--tls-cert-file=/nonexistent/tls.crt"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("kubeconfig"), "{}", stderr(&out));
}

#[test]
fn a_tls_certificate_without_its_key_is_a_usage_error() {
    let out = bin()
        .args(["run", "--tls-cert-file=/etc/hostname"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--tls-private-key-file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn serving_the_simulated_api_beyond_loopback_is_a_usage_error() {
    let o = bin()
        .args(["simulate", "--serve", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("--serve=0.0.0.0:0") && err.contains("loopback"),
        "{err}"
    );
}

#[test]
fn an_empty_scenario_on_stdin_says_so() {
    let o = simulate_stdin("", &[]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("the scenario on stdin is empty"), "{err}");
}

#[test]
fn an_event_after_the_scenarios_duration_is_an_error_naming_it() {
    let o = simulate_stdin(
        "duration: 1m\nnodes:\n  - name: a\nevents:\n  - {at: 2m, action: stop-heartbeat, nodes: [a]}\n",
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("events[0].at") && err.contains("after the scenario's duration (1m)"),
        "{err}"
    );
}

#[test]
fn an_unreadable_kubeconfig_is_a_usage_error_naming_the_flag_and_its_path_once() {
    for command in [
        &["run"][..],
        &["simulate", "--from-cluster", "--fail", "zone=a"][..],
    ] {
        let o = bin()
            .args(command)
            .args(["--kubeconfig", "/nonexistent/kubeconfig"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{command:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains("error: --kubeconfig=/nonexistent/kubeconfig: cannot read it: No such file or directory"),
            "{command:?}: {err}"
        );
        assert_eq!(err.matches("/nonexistent/kubeconfig").count(), 1, "{err}");
    }
}

/// A kubeconfig in a fresh directory whose one context, `box`, points at `server`.
fn kubeconfig(name: &str, server: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: box\n  cluster: {{server: \"{server}\"}}\n\
             users:\n- name: u\n  user: {{token: t}}\ncontexts:\n- name: box\n  context: {{cluster: box, user: u}}\n\
             current-context: box\n"
        ),
    )
    .unwrap();
    path
}

#[test]
fn a_context_the_kubeconfig_lacks_is_a_usage_error_listing_its_contexts() {
    let path = kubeconfig("context", "https://127.0.0.1:1");
    for command in [
        &["run"][..],
        &["simulate", "--from-cluster", "--fail", "zone=a"][..],
    ] {
        let o = bin()
            .args(command)
            .arg("--kubeconfig")
            .arg(&path)
            .args(["--context", "prod"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{command:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(&format!(
                "error: --context=prod: the kubeconfig {} has no context of that name (its contexts: box)",
                path.display()
            )),
            "{command:?}: {err}"
        );
        assert!(!err.contains("current context"), "{err}");
    }
}

#[test]
fn a_server_that_cannot_be_reached_is_a_runtime_failure_exit_1() {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let path = kubeconfig("unreachable", "https://127.0.0.1:1");
    for command in [
        &["run", "--secure-address="][..],
        &["simulate", "--from-cluster", "--fail", "zone=a"][..],
    ] {
        let o = bin()
            .args(command)
            .arg("--kubeconfig")
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{command:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("Connection refused"),
            "{command:?}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn a_boolean_flag_with_its_value_as_a_separate_word_says_to_write_it_with_equals() {
    for (flag, value) in [("--leader-elect", "false"), ("--dry-run", "true")] {
        let o = bin()
            .args(["run", flag, value, "--kubeconfig=/nonexistent"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.starts_with(&format!(
                "error: {flag} takes its value after '=': write {flag}={value}"
            )),
            "{err}"
        );
    }
    // Any other stray word keeps clap's own message.
    let o = bin().args(["run", "--dry-run", "maybe"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unexpected argument 'maybe'"),
        "{}",
        stderr(&o)
    );
}
