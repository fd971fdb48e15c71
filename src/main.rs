//! `node-lifecycle-controller run | simulate`: parse the command line, set up logging, dispatch.
//! Usage errors exit 2; other failures exit 1.

use anyhow::Context as _;
use clap::Parser;
use node_lifecycle_controller::admin::{self, Readiness};
use node_lifecycle_controller::clock::SystemClock;
use node_lifecycle_controller::config::{
    Cli, Command, LogFormat, OutputFormat, RunArgs, SimulateArgs, settings_from_overrides,
};
use node_lifecycle_controller::controller::{self, Context};
use node_lifecycle_controller::k8s::throttle::{Classifier, ThrottleLayer, ThrottleMetrics};
use node_lifecycle_controller::k8s::{KubeCluster, permissions};
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
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn init_logging(level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
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
    } = args;
    init_logging(&log_level, LogFormat::Text);
    let (file, text) = match path.as_deref() {
        None => ("<built-in demo>".to_string(), scenario::DEMO.to_string()),
        Some(p) if p.as_os_str() == "-" => {
            let mut text = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut text) {
                eprintln!("error: cannot read the scenario from stdin: {e}");
                return ExitCode::from(USAGE);
            }
            ("-".to_string(), text)
        }
        Some(p) => match std::fs::read_to_string(p) {
            Ok(text) => (p.display().to_string(), text),
            Err(e) => {
                eprintln!("error: cannot read scenario {}: {e}", p.display());
                return ExitCode::from(USAGE);
            }
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
            Ok(entries) => print_timeline(&entries, scenario.description.as_deref(), output),
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
    let entries = match sim::simulate(&scenario, settings, seed) {
        Ok(entries) => entries,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    print_timeline(&entries, scenario.description.as_deref(), output)
}

fn print_timeline(
    entries: &[sim::Entry],
    description: Option<&str>,
    output: OutputFormat,
) -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let written = match output {
        OutputFormat::Jsonl => sim::write_jsonl(entries, &mut out),
        OutputFormat::Table => sim::write_table(entries, description, &mut out),
    };
    match written.and_then(|_| out.flush()) {
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
    let identity = identity
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node-lifecycle-controller".to_string());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let config = match kubeconfig {
            Some(path) => {
                let kc = kube::config::Kubeconfig::read_from(&path)
                    .with_context(|| format!("reading --kubeconfig={}", path.display()))?;
                let opts = kube::config::KubeConfigOptions {
                    context: context.clone(),
                    ..Default::default()
                };
                kube::Config::from_custom_kubeconfig(kc, &opts)
                    .await
                    .context("loading the kubeconfig")?
            }
            None if context.is_some() => {
                let opts = kube::config::KubeConfigOptions {
                    context: context.clone(),
                    ..Default::default()
                };
                kube::Config::from_kubeconfig(&opts)
                    .await
                    .context("loading the kubeconfig for --context")?
            }
            None => kube::Config::infer().await.context(
                "finding cluster credentials (in-cluster, or KUBECONFIG / ~/.kube/config)",
            )?,
        };
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
        let wanted = permissions::required(&settings.node_lease_namespace, leader_lease, evict);
        match permissions::missing(&client, &wanted).await {
            Ok(missing) if !missing.is_empty() => {
                let list: Vec<String> = missing.iter().map(|p| format!("  - {p}")).collect();
                anyhow::bail!(
                    "RBAC does not allow what the controller needs; grant these to its service account:\n{}",
                    list.join("\n")
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not check RBAC permissions up front; going on"),
        }

        let metrics = Arc::new(Metrics::new());
        throttle_metrics
            .register(metrics.registry())
            .context("registering the API client's metrics")?;
        let readiness = Arc::new(Readiness::default());
        let listener = tokio::net::TcpListener::bind(admin_address)
            .await
            .with_context(|| format!("binding --admin-address={admin_address}"))?;
        tokio::spawn(admin::serve(listener, metrics.clone(), readiness.clone()));

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
