//! `node-lifecycle-controller run | simulate`: parse the command line, set up logging, dispatch.
//! Usage errors exit 2; other failures exit 1.

use anyhow::Context as _;
use clap::Parser;
use node_lifecycle_controller::admin::{self, Admin, Gate, Readiness};
use node_lifecycle_controller::clock::SystemClock;
use node_lifecycle_controller::config::{
    Cli, Command, LogFormat, OutputFormat, RunArgs, SimulateArgs, settings_from_overrides,
};
use node_lifecycle_controller::controller::{self, Context};
use node_lifecycle_controller::k8s::throttle::{Classifier, ThrottleLayer, ThrottleMetrics};
use node_lifecycle_controller::k8s::{KubeCluster, KubeReviewer, permissions};
use node_lifecycle_controller::metrics::Metrics;
use node_lifecycle_controller::settings::EvictionMode;
use node_lifecycle_controller::sim::{self, scenario};
use std::io::{Read, Write};
use std::process::ExitCode;
use std::sync::Arc;

const USAGE: u8 = 2;

/// mimalloc instead of the C library's allocator. Profiles of both `run` and `simulate --serve`
/// at 10 000 nodes spent a quarter to a third of their CPU in glibc's malloc and free (watch
/// events and requests are decoded into, and encoded from, many small short-lived strings), and
/// the container image links musl, whose allocator is slower still.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    match cli.command {
        Command::Simulate(args) => simulate(args),
        Command::Run(args) => match run(*Box::new(args)) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {}", causes(&e));
                ExitCode::FAILURE
            }
        },
    }
}

/// The error and its causes, `: `-separated, leaving out a cause whose text the message
/// before it already includes (kube's errors repeat their source in their own text).
fn causes(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}

fn init_logging(level: &str, format: LogFormat) {
    node_lifecycle_controller::logging::init(level, format == LogFormat::Json);
}

fn simulate(args: SimulateArgs) -> ExitCode {
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
        kubeconfig,
        context,
        fail,
        recover,
        duration,
        save_scenario,
        compare_set,
    } = args;
    init_logging(&log_level, LogFormat::Text);
    let from_cluster = from_cluster.then_some(FromCluster {
        kubeconfig,
        context,
        fail,
        recover,
        duration,
        save_scenario,
    });
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

/// The `--from-cluster` flags.
struct FromCluster {
    kubeconfig: Option<std::path::PathBuf>,
    context: Option<String>,
    fail: Vec<String>,
    recover: Vec<String>,
    duration: Option<std::time::Duration>,
    save_scenario: Option<std::path::PathBuf>,
}

/// Reads the cluster (list only) and builds the scenario text; `events` is the optional file of
/// events. Writes it to `--save-scenario` when asked. Returns the name to parse it under.
fn scenario_from_cluster(
    from: FromCluster,
    events: Option<&std::path::Path>,
    set: &[(String, String)],
) -> Result<(String, String), ExitCode> {
    use sim::snapshot::{self, Change, SnapshotError};
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
        if let Err(e) = node_lifecycle_controller::config::check_override(name, value) {
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
        let config = kube_config(from.kubeconfig.as_deref(), from.context.as_deref()).await?;
        let server = config.cluster_url.to_string();
        let client = kube::Client::try_from(config).context("building the API client")?;
        eprintln!(
            "simulate --from-cluster: listing Nodes, Pods and PodDisruptionBudgets at {server}{} \
             (read-only: list requests only, nothing is written to the cluster)",
            from.context
                .as_deref()
                .map(|c| format!(" (context {c})"))
                .unwrap_or_default()
        );
        let snapshot = snapshot::read(&client).await?;
        anyhow::Ok((server, snapshot))
    });
    let (server, snapshot) = read.map_err(|e| {
        eprintln!("error: {}", causes(&e));
        ExitCode::FAILURE
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

/// The client configuration from `--kubeconfig`/`--context`, or inferred (in-cluster, or
/// KUBECONFIG / ~/.kube/config).
async fn kube_config(
    kubeconfig: Option<&std::path::Path>,
    context: Option<&str>,
) -> anyhow::Result<kube::Config> {
    let opts = kube::config::KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    Ok(match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading --kubeconfig={}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &opts)
                .await
                .context("loading the kubeconfig")?
        }
        None if context.is_some() => kube::Config::from_kubeconfig(&opts)
            .await
            .context("loading the kubeconfig for --context")?,
        None => kube::Config::infer()
            .await
            .context("finding cluster credentials (in-cluster, or KUBECONFIG / ~/.kube/config)")?,
    })
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

fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let limits = match args.api_limits() {
        Ok(limits) => limits,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(USAGE));
        }
    };
    let RunArgs {
        flags,
        kubeconfig,
        context,
        admin_address,
        secure_address,
        tls_cert_file,
        tls_private_key_file,
        log_format,
        log_level,
        identity,
        initial_list,
        kube_api_qps: _,
        kube_api_burst: _,
    } = args;
    let settings = match flags.to_settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(USAGE));
        }
    };
    init_logging(&log_level, log_format);
    for warning in settings.warnings() {
        tracing::warn!("{warning}");
    }
    let identity = identity
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node-lifecycle-controller".to_string());
    // The secure port's certificate, before anything else: a file that cannot be used is a
    // mistake in the command line (exit 2), not a failure of the cluster.
    let tls = match secure_address.0 {
        None => None,
        Some(addr) => {
            let files = tls_cert_file
                .as_deref()
                .zip(tls_private_key_file.as_deref());
            let mut hosts = vec![identity.clone()];
            if !addr.ip().is_unspecified() {
                hosts.push(addr.ip().to_string());
            }
            // A self-signed certificate names only what it can (a DNS name or an address).
            hosts.retain(|h| {
                !h.is_empty()
                    && h.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':'))
            });
            match admin::load_tls(files, &hosts) {
                Ok(tls) => Some((addr, tls)),
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(ExitCode::from(USAGE));
                }
            }
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let config = kube_config(kubeconfig.as_deref(), context.as_deref()).await?;
        // The writer, the leader election and the watchers retry with their own bounded
        // backoff; kube's built-in retry of 429/503/504 (up to 15 times, minutes apart) would
        // hold a lease renewal or the staleness check far past their deadlines.
        let mut config = config;
        config.default_retry = false;
        // Outermost, so that every request the client sends takes a token (see k8s::throttle):
        // kube's own stack goes behind a buffer, which the throttle needs to be able to clone.
        let leader_lease = settings.leader_elect.then_some((
            settings.leader_elect_resource_namespace.as_str(),
            settings.leader_elect_resource_name.as_str(),
        ));
        let throttle_metrics = ThrottleMetrics::new();
        let throttle = ThrottleLayer::new(
            limits.qps.unwrap_or(-1.0),
            limits.burst,
            Classifier::new(leader_lease),
            throttle_metrics.clone(),
        );
        let client = kube::client::ClientBuilder::try_from(config)
            .context("building the API client")?
            .with_layer(&tower::buffer::BufferLayer::new(1024))
            .with_layer(&throttle)
            .build();
        match limits.qps {
            Some(qps) => tracing::info!(qps, burst = limits.burst, "API client rate limit"),
            None => tracing::info!("API client rate limit: none (--kube-api-qps is negative)"),
        }
        let version = client.apiserver_version().await.context(
            "cannot reach the API server (is the kubeconfig/context right, is the server up?)",
        )?;
        tracing::info!(server = %version.git_version, %identity, "connected to the API server");

        // Check RBAC once, up front, and name what is missing (a 403 per call later helps no one).
        let evict = settings.eviction_mode == EvictionMode::Evict;
        let wanted = permissions::required(
            &settings.node_lease_namespace,
            leader_lease,
            evict,
            tls.is_some(),
        );
        let readiness = Arc::new(Readiness::default());
        match permissions::missing(&client, &wanted).await {
            Ok(missing) if !missing.is_empty() => {
                let list: Vec<String> = missing.iter().map(|p| format!("  - {p}")).collect();
                anyhow::bail!(
                    "RBAC does not allow what the controller needs; grant these to its service account:\n{}",
                    list.join("\n")
                );
            }
            Ok(_) => {}
            // The server does not know these credentials (an expired token, a deleted service
            // account): every call after this would fail the same way.
            Err(kube::Error::Api(e)) if e.code == 401 => anyhow::bail!(
                "the API server rejects the credentials (401 Unauthorized: {}); check the \
                 kubeconfig, or the service account token mounted into the pod",
                e.message
            ),
            Err(e) => {
                tracing::error!(error = %e, "could not check RBAC permissions up front: not ready until a check succeeds");
                readiness.unverified(Some(e.to_string()));
                // Checked again in the background; readiness follows the answer.
                let (client, readiness) = (client.clone(), readiness.clone());
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                        match permissions::missing(&client, &wanted).await {
                            Ok(missing) if missing.is_empty() => {
                                tracing::info!("RBAC permissions checked: all granted");
                                readiness.unverified(None);
                                return;
                            }
                            Ok(missing) => {
                                let list: Vec<String> = missing.iter().map(ToString::to_string).collect();
                                tracing::error!(missing = %list.join(", "), "RBAC does not allow what the controller needs");
                                readiness.unverified(Some(format!("missing: {}", list.join(", "))));
                            }
                            Err(e) => readiness.unverified(Some(e.to_string())),
                        }
                    }
                });
            }
        }

        let metrics = Arc::new(Metrics::new());
        throttle_metrics
            .register(metrics.registry())
            .context("registering the API client's metrics")?;
        let endpoints = Arc::new(Admin {
            metrics: metrics.clone(),
            readiness: readiness.clone(),
        });
        if let Some(addr) = admin_address.0 {
            let listener = admin::bind("admin-address", addr).await?;
            tracing::info!(%addr, "serving /metrics and health over plain HTTP, without authentication");
            tokio::spawn(admin::serve_plain(listener, endpoints.clone()));
        }
        if let Some((addr, tls)) = tls {
            let listener = admin::bind("secure-address", addr).await?;
            let gate = Arc::new(Gate::new(Arc::new(KubeReviewer::new(client.clone()))));
            tracing::info!(
                %addr,
                self_signed_certificate = tls.self_signed,
                "serving HTTPS: health to anyone, /metrics to tokens allowed to get it"
            );
            tokio::spawn(async move { admin::serve_secure(listener, &tls, endpoints, gate).await });
        }

        let (shutdown_tx, shutdown) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("signal received: shutting down");
            let _ = shutdown_tx.send(true);
        });
        let cluster = KubeCluster::new(client, &settings.node_lease_namespace)
            .with_initial_list(initial_list.into());
        let ctx = Context {
            cluster,
            clock: Arc::new(SystemClock),
            settings,
            identity,
            hooks: readiness,
            metrics,
            shutdown,
        };
        controller::run(ctx).await.context("controller")?;
        Ok(ExitCode::SUCCESS)
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
