//! `run`: the controller against a real cluster. Flags are checked before anything connects
//! (a wrong one exits 2); then the client, the RBAC check, the admin endpoints and the signals
//! are set up and the controller runs until a signal.

use super::USAGE;
use super::kubeconfig::{self, KubeconfigError};
use super::rbac::{self, RbacError};
use super::signals;
use crate::admin::{self, Admin, AdminError, Gate, Readiness, Tls};
use crate::clock::SystemClock;
use crate::config::{LogFormat, RunArgs};
use crate::controller::{self, Context};
use crate::k8s::throttle::{ThrottleLayer, ThrottleMetrics};
use crate::k8s::{KubeCluster, KubeReviewer, permissions};
use crate::metrics::Metrics;
use crate::settings::EvictionMode;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

/// Why `run` stopped before the controller could run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("starting the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    Kubeconfig(#[from] KubeconfigError),
    #[error("building the API client")]
    Client(#[source] kube::Error),
    #[error("cannot reach the API server (is the kubeconfig/context right, is the server up?)")]
    Unreachable(#[source] kube::Error),
    #[error(transparent)]
    Rbac(#[from] RbacError),
    #[error("registering the API client's metrics")]
    Metrics(#[source] prometheus::Error),
    #[error(transparent)]
    Admin(#[from] AdminError),
}

impl RunError {
    /// 2 when the command line named a kubeconfig or context that cannot be used (a usage
    /// error, as a bad flag value), else 1 (the cluster or the machine failed).
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Kubeconfig(k) if k.is_usage() => USAGE,
            _ => 1,
        }
    }
}

/// Runs the controller; a usage error is reported here and comes back as exit code 2.
pub fn run(args: RunArgs) -> Result<ExitCode, RunError> {
    let usage = |e: &dyn std::fmt::Display| {
        eprintln!("error: {e}");
        Ok(ExitCode::from(USAGE))
    };
    let (given, limits) = match args.api_limits() {
        Ok(limits) => (limits, limits.envelope()),
        Err(e) => return usage(&e),
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
        Err(e) => return usage(&e),
    };
    crate::logging::init(&log_level, log_format == LogFormat::Json);
    for warning in settings.warnings() {
        tracing::warn!("{warning}");
    }
    let identity = identity_or_hostname(identity);
    // The secure port's certificate, before anything else: a file that cannot be used is a
    // mistake in the command line (exit 2), not a failure of the cluster.
    let tls = match secure_address.0 {
        None => None,
        Some(addr) => {
            let files = tls_cert_file
                .as_deref()
                .zip(tls_private_key_file.as_deref());
            match admin::load_tls(files, &certificate_hosts(&identity, addr)) {
                Ok(tls) => Some((addr, tls)),
                Err(e) => return usage(&e),
            }
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(RunError::Runtime)?;
    runtime.block_on(async move {
        let mut config = kubeconfig::load(kubeconfig.as_deref(), context.as_deref()).await?;
        // The writer, the leader election and the watchers retry with their own bounded
        // backoff; kube's built-in retry of 429/503/504 (up to 15 times, minutes apart) would
        // hold a lease renewal or the staleness check far past their deadlines.
        config.default_retry = false;
        let leader_lease = settings.leader_elect.then_some((
            settings.leader_elect_resource_namespace.as_str(),
            settings.leader_elect_resource_name.as_str(),
        ));
        // Outermost, so that every request the client sends takes a token (see k8s::throttle):
        // kube's own stack goes behind a buffer, which the throttle needs to be able to clone.
        let throttle_metrics = ThrottleMetrics::new();
        let throttle = ThrottleLayer::new(
            limits.qps.unwrap_or(-1.0),
            limits.burst,
            throttle_metrics.clone(),
        );
        let client = kube::client::ClientBuilder::try_from(config)
            .map_err(RunError::Client)?
            .with_layer(&tower::buffer::BufferLayer::new(1024))
            .with_layer(&throttle)
            .build();
        match limits.qps {
            Some(qps) => tracing::info!(
                qps,
                burst = limits.burst,
                per_controller_qps = given.qps,
                per_controller_burst = given.burst,
                "API client rate limit: the node lifecycle and taint eviction controllers' \
                 envelopes together"
            ),
            None => tracing::info!("API client rate limit: none (--kube-api-qps is negative)"),
        }
        let version = client
            .apiserver_version()
            .await
            .map_err(RunError::Unreachable)?;
        tracing::info!(server = %version.git_version, %identity, "connected to the API server");

        let evict = settings.eviction_mode == EvictionMode::Evict;
        let wanted = permissions::required(
            &settings.node_lease_namespace,
            leader_lease,
            evict,
            tls.is_some(),
        );
        let readiness = Arc::new(Readiness::default());
        rbac::check(&client, wanted, &readiness).await?;

        let metrics = Arc::new(Metrics::new());
        throttle_metrics
            .register(metrics.registry())
            .map_err(RunError::Metrics)?;
        // `/debug/explain` is served on the secure port only (it names pods and nodes).
        let (questions, inbox) = controller::questions::channel();
        let secure = tls.is_some();
        let endpoints = Arc::new(Admin {
            metrics: metrics.clone(),
            readiness: readiness.clone(),
            questions: secure.then_some(questions),
        });
        serve_admin(admin_address.0, tls, endpoints, &client).await?;

        let cluster = KubeCluster::new(client, &settings.node_lease_namespace)
            .with_initial_list(initial_list.into());
        let ctx = Context {
            cluster,
            clock: Arc::new(SystemClock),
            settings,
            identity,
            observer: readiness,
            metrics,
            shutdown: signals::shutdown_on_signal(),
        };
        controller::run_answering(ctx, secure.then_some(inbox)).await;
        Ok(ExitCode::SUCCESS)
    })
}

/// `--identity`, else the pod's name (HOSTNAME, /etc/hostname).
fn identity_or_hostname(identity: Option<String>) -> String {
    identity
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node-lifecycle-controller".to_string())
}

/// What a self-signed certificate for the secure port names: what it can of the identity and
/// the address (a DNS name or an address).
fn certificate_hosts(identity: &str, addr: SocketAddr) -> Vec<String> {
    let mut hosts = vec![identity.to_string()];
    if !addr.ip().is_unspecified() {
        hosts.push(addr.ip().to_string());
    }
    hosts.retain(|h| {
        !h.is_empty()
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':'))
    });
    hosts
}

/// Starts the admin endpoints: plain HTTP on `--admin-address`, HTTPS on `--secure-address`.
async fn serve_admin(
    plain: Option<SocketAddr>,
    secure: Option<(SocketAddr, Tls)>,
    endpoints: Arc<Admin>,
    client: &kube::Client,
) -> Result<(), AdminError> {
    if let Some(addr) = plain {
        let listener = admin::bind("admin-address", addr).await?;
        tracing::info!(%addr, "serving /metrics and health over plain HTTP, without authentication");
        tokio::spawn(admin::serve_plain(listener, endpoints.clone()));
    }
    if let Some((addr, tls)) = secure {
        let listener = admin::bind("secure-address", addr).await?;
        let gate = Arc::new(Gate::new(Arc::new(KubeReviewer::new(client.clone()))));
        tracing::info!(
            %addr,
            self_signed_certificate = tls.self_signed,
            "serving HTTPS: health to anyone, /metrics to tokens allowed to get it"
        );
        tokio::spawn(async move { admin::serve_secure(listener, &tls, endpoints, gate).await });
    }
    Ok(())
}
