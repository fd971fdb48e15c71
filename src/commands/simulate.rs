//! `simulate`: a scenario (a file, stdin, the built-in demo, or read from a cluster) run
//! against the simulated cluster and printed as a timeline, compared with other settings, or
//! `--serve`d to clients over HTTP.

use super::kubeconfig::{self, KubeconfigError};
use super::{USAGE, causes};
use crate::config::{FromClusterArgs, OutputFormat, SimulateArgs, settings_from_overrides};
use crate::sim::snapshot::SnapshotError;
use crate::sim::{self, scenario};
use std::io::{Read, Write};
use std::process::ExitCode;

/// Why the cluster could not be read for `--from-cluster`.
#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error(transparent)]
    Kubeconfig(#[from] KubeconfigError),
    #[error("building the API client")]
    Client(#[source] kube::Error),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

/// Runs `simulate`; errors are reported here, usage errors exit 2.
pub fn simulate(args: SimulateArgs) -> ExitCode {
    let SimulateArgs {
        scenario: path,
        output,
        seed,
        set,
        log_level,
        serve,
        kubeconfig_out,
        inject_conflicts,
        no_watch_list,
        from_cluster,
        from,
        compare_set,
    } = args;
    crate::logging::init(&log_level, false);
    let from_cluster = from_cluster.then_some(from);
    if let Some(addr) = serve.filter(|a| !a.ip().is_loopback()) {
        eprintln!(
            "error: --serve={addr}: the simulated API server has no authentication; serve it on \
             a loopback address (127.0.0.1:PORT or [::1]:PORT)"
        );
        return ExitCode::from(USAGE);
    }
    let (file, text) = match (from_cluster, path.as_deref()) {
        (Some(from), events) => match scenario_from_cluster(from, events, &set) {
            Ok(built) => built,
            Err(code) => return code,
        },
        (None, path) => match read_scenario(path) {
            Ok(read) => read,
            Err(code) => return code,
        },
    };
    let scenario = match scenario::parse(&text, &file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(USAGE);
        }
    };
    if let Some(addr) = serve {
        // The served cluster has no controller of its own: `controller:` and --set do not apply.
        let options = sim::serve::ServeOptions {
            inject_conflicts,
            watch_list: !no_watch_list,
            ..sim::serve::ServeOptions::default()
        };
        let served = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))
            .and_then(|runtime| {
                runtime
                    .block_on(sim::serve::serve(
                        &scenario,
                        seed,
                        addr,
                        kubeconfig_out.as_deref(),
                        None,
                        &options,
                    ))
                    .map_err(|e| e.to_string())
            });
        if inject_conflicts {
            eprintln!(
                "simulate --serve --inject-conflicts: answered {} write(s) with an injected 409 Conflict",
                options.injected_conflicts()
            );
        }
        let (streamed, refused) = (options.streamed_lists(), options.refused_watch_lists());
        if streamed + refused > 0 {
            eprintln!(
                "simulate --serve: served {streamed} streaming list(s), refused {refused} \
                 (--no-watch-list)"
            );
        }
        return match served {
            Ok(entries) => print_timeline(&entries, &scenario, output),
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let overrides: Vec<(String, String)> = scenario.controller.iter().cloned().chain(set).collect();
    let settings = match settings_from_overrides(&overrides) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {file}: controller: {e}");
            return ExitCode::from(USAGE);
        }
    };
    // The second run's settings are checked before anything runs.
    let compared = if compare_set.is_empty() {
        None
    } else {
        let changed: Vec<(String, String)> = overrides
            .iter()
            .cloned()
            .chain(compare_set.iter().cloned())
            .collect();
        match settings_from_overrides(&changed) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("error: --compare-set: {e}");
                return ExitCode::from(USAGE);
            }
        }
    };
    let entries = match sim::simulate(&scenario, settings, seed) {
        Ok(entries) => entries,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(changed) = compared else {
        return print_timeline(&entries, &scenario, output);
    };
    let other = match sim::simulate(&scenario, changed, seed) {
        Ok(entries) => entries,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let label = format!(
        "with {}",
        compare_set
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let runs = [
        sim::report::Run {
            label: "as is".to_string(),
            entries: &entries,
        },
        sim::report::Run {
            label,
            entries: &other,
        },
    ];
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let written = match output {
        OutputFormat::Html => {
            sim::report::write_html(&scenario, scenario.description.as_deref(), &runs, &mut out)
        }
        OutputFormat::Table => sim::report::write_compare_text(&scenario, &runs, &mut out),
        OutputFormat::Jsonl => sim::report::write_compare_jsonl(&runs, &mut out),
    };
    finish_output(written.and_then(|_| out.flush()))
}

/// The scenario's file name (for messages) and text: the built-in demo, stdin (`-`) or a file.
fn read_scenario(path: Option<&std::path::Path>) -> Result<(String, String), ExitCode> {
    Ok(match path {
        None => ("<built-in demo>".to_string(), scenario::DEMO.to_string()),
        Some(p) if p.as_os_str() == "-" => {
            let mut text = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut text) {
                eprintln!("error: cannot read the scenario from stdin: {e}");
                return Err(ExitCode::from(USAGE));
            }
            if text.trim().is_empty() {
                eprintln!(
                    "error: the scenario on stdin is empty (pipe a scenario file into `simulate -`, or leave out `-` for the built-in demo)"
                );
                return Err(ExitCode::from(USAGE));
            }
            ("-".to_string(), text)
        }
        Some(p) => match std::fs::read_to_string(p) {
            Ok(text) => (p.display().to_string(), text),
            Err(e) => {
                eprintln!("error: cannot read scenario {}: {e}", p.display());
                return Err(ExitCode::from(USAGE));
            }
        },
    })
}

/// Reads the cluster (list only) and builds the scenario text; `events` is the optional file of
/// events. Writes it to `--save-scenario` when asked. Returns the name to parse it under.
fn scenario_from_cluster(
    from: FromClusterArgs,
    events: Option<&std::path::Path>,
    set: &[(String, String)],
) -> Result<(String, String), ExitCode> {
    use sim::snapshot::{self, Change};
    let usage = |message: String| {
        eprintln!("error: {message}");
        ExitCode::from(USAGE)
    };
    let mut changes = Vec::new();
    for (change, all) in [(Change::Fail, &from.fail), (Change::Recover, &from.recover)] {
        for words in snapshot::group_words(all) {
            changes.push(snapshot::parse_change(change, &words).map_err(|e| usage(e.to_string()))?);
        }
    }
    for (name, value) in set {
        if let Err(e) = crate::config::check_override(name, value) {
            return Err(usage(format!("--set {name}={value}: {e}")));
        }
    }
    let events = match events {
        None => None,
        Some(path) => {
            let (name, text) = read_scenario(Some(path))?;
            Some((name, text))
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        })?;
    let read = runtime.block_on(async {
        let config = kubeconfig::load(from.kubeconfig.as_deref(), from.context.as_deref()).await?;
        let server = config.cluster_url.to_string();
        let client = kube::Client::try_from(config).map_err(ReadError::Client)?;
        eprintln!(
            "simulate --from-cluster: listing Nodes, Pods and PodDisruptionBudgets at {server}{} \
             (read-only: list requests only, nothing is written to the cluster)",
            from.context
                .as_deref()
                .map(|c| format!(" (context {c})"))
                .unwrap_or_default()
        );
        let snapshot = snapshot::read(&client).await?;
        Ok::<_, ReadError>((server, snapshot))
    });
    let (server, snapshot) = read.map_err(|e| {
        eprintln!("error: {}", causes(&e));
        match e {
            ReadError::Kubeconfig(k) if k.is_usage() => ExitCode::from(USAGE),
            _ => ExitCode::FAILURE,
        }
    })?;
    let source = from.context.clone().unwrap_or(server);
    let what_if = snapshot::WhatIf {
        changes: &changes,
        events_file: events.as_ref().map(|(n, t)| (n.as_str(), t.as_str())),
        duration: from.duration,
        set,
        source: &source,
    };
    let (text, notes) = snapshot::scenario_text(&snapshot, &what_if).map_err(|e| match e {
        SnapshotError::Usage(m) => usage(m),
        other => {
            eprintln!("error: {other}");
            ExitCode::FAILURE
        }
    })?;
    eprintln!(
        "simulate --from-cluster: read {} node(s), {} pod(s), {} PodDisruptionBudget(s)",
        snapshot.nodes.len(),
        snapshot.pods.len(),
        snapshot.pdbs.len()
    );
    for note in notes.0 {
        eprintln!("simulate --from-cluster: {note}");
    }
    match from.save_scenario {
        Some(path) => {
            if let Err(e) = std::fs::write(&path, &text) {
                return Err(usage(format!(
                    "--save-scenario={}: cannot write: {e}",
                    path.display()
                )));
            }
            eprintln!(
                "simulate --from-cluster: scenario written to {} (replay: simulate {})",
                path.display(),
                path.display()
            );
            Ok((path.display().to_string(), text))
        }
        None => Ok(("<scenario from the cluster>".to_string(), text)),
    }
}

fn print_timeline(
    entries: &[sim::Entry],
    scenario: &scenario::Scenario,
    output: OutputFormat,
) -> ExitCode {
    let description = scenario.description.as_deref();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let written = match output {
        OutputFormat::Jsonl => sim::write_jsonl(entries, &mut out),
        OutputFormat::Table => sim::write_table(entries, description, &mut out),
        OutputFormat::Html => {
            let runs = [sim::report::Run {
                label: "as is".to_string(),
                entries,
            }];
            sim::report::write_html(scenario, description, &runs, &mut out)
        }
    };
    finish_output(written.and_then(|_| out.flush()))
}

fn finish_output(written: std::io::Result<()>) -> ExitCode {
    match written {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`| head`) is not an error worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write the timeline: {e}");
            ExitCode::FAILURE
        }
    }
}
