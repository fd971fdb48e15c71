//! Command-line flags (named like kube-controller-manager's) and their validation.
//!
//! [`Cli`] is the whole command line. Every behaviour flag lives in [`ControllerFlags`], which
//! `run` flattens into its arguments and `simulate` reaches through a scenario's `controller:`
//! block and `--set FLAG=VALUE` ([`settings_from_overrides`]). [`ControllerFlags::to_settings`] is
//! the only place that validates them: upstream validates nothing, we refuse nonsense with an
//! error that names the flag and the value. Usage errors exit 2 (clap does so itself; `main` maps
//! [`ConfigError`] to 2).

use crate::settings::{EvictionMode, InitialList, Settings};
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

pub mod explain;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// client-go's `JitterFactor`: the renew deadline must be longer than this × the retry period.
const LEADER_ELECTION_JITTER_FACTOR: f64 = 1.2;

/// Flags of `run` that configure the process or its connection; they mean nothing to `simulate`.
const PROCESS_FLAGS: &[&str] = &[
    "kubeconfig",
    "context",
    "admin-address",
    "secure-address",
    "tls-cert-file",
    "tls-private-key-file",
    "log-format",
    "log-level",
    "identity",
    "initial-list",
    "kube-api-qps",
    "kube-api-burst",
];

/// A command line or a controller setting that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A value that parses but breaks a rule (`requirement` completes the sentence).
    #[error("--{flag}={value} {requirement}")]
    Invalid {
        flag: &'static str,
        value: String,
        requirement: String,
    },
    /// A flag upstream removed; `replacement` says what took over its job.
    #[error("--{flag} was removed in Kubernetes 1.27 and is not supported: {replacement}")]
    Removed {
        flag: &'static str,
        replacement: &'static str,
    },
    /// A process or connection flag given to `simulate` (scenario `controller:` or `--set`).
    #[error(
        "--{flag} is a process/connection flag of `run` and does not apply to simulate; \
         only controller behaviour flags can be set there"
    )]
    NotForSimulate { flag: String },
    /// A name that is no controller flag.
    #[error(
        "unknown controller flag --{flag} (see `node-lifecycle-controller run --help` for the \
         behaviour flags)"
    )]
    UnknownFlag { flag: String },
    /// The value could not be parsed (clap's message).
    #[error("{0}")]
    Usage(String),
}

/// A Kubernetes node lifecycle controller: watches node heartbeats, marks silent nodes Unknown,
/// taints them and evicts the pods that do not tolerate it, as kube-controller-manager's
/// node-lifecycle and taint-eviction controllers do.
#[derive(Debug, Clone, Parser)]
#[command(name = "node-lifecycle-controller", version, args_override_self = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once at start; boxing the larger variant would only complicate matching.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run the controller against a Kubernetes cluster.
    Run(RunArgs),
    /// Run the controller in virtual time against a simulated cluster described by a scenario
    /// file, and print the timeline of what happened.
    Simulate(SimulateArgs),
    /// Ask the running controller for its zones, unhealthy nodes and the deletions ahead
    /// (through the API server, with your kubeconfig; docs/explain.md).
    Status(explain::StatusArgs),
    /// Ask the running controller when and why it deletes a pod, or why not; or about a node
    /// or a zone (docs/explain.md).
    Explain(explain::ExplainArgs),
}

/// How pods are removed once their toleration window is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EvictionModeArg {
    /// DELETE the pod, as upstream does (PodDisruptionBudgets are not consulted).
    Delete,
    /// POST a policy/v1 Eviction, so PodDisruptionBudgets are honoured.
    Evict,
}

impl From<EvictionModeArg> for EvictionMode {
    fn from(mode: EvictionModeArg) -> Self {
        match mode {
            EvictionModeArg::Delete => EvictionMode::Delete,
            EvictionModeArg::Evict => EvictionMode::Evict,
        }
    }
}

/// How each watch gets its first full state (`--initial-list`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InitialListArg {
    /// Paginated lists, then a watch (kube's and client-go's default).
    Paged,
    /// Streaming lists (KEP-3157 "WatchList"), falling back to paged lists where refused.
    Streaming,
}

impl From<InitialListArg> for InitialList {
    fn from(mode: InitialListArg) -> Self {
        match mode {
            InitialListArg::Paged => InitialList::Paged,
            InitialListArg::Streaming => InitialList::Streaming,
        }
    }
}

/// Every behaviour flag of the controller, named and defaulted as kube-controller-manager's.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct ControllerFlags {
    /// How often node health is checked: the period of the monitor pass that marks silent nodes
    /// Unknown and queues them for tainting. Same as kube-controller-manager's flag (upstream
    /// default 5s).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "5s",
        value_parser = parse_duration,
        allow_hyphen_values = true
    )]
    pub node_monitor_period: Duration,

    /// How long a node that has a Ready condition may stay silent (no Lease renewal, no status
    /// update) before it is marked Unknown. Must not be shorter than --node-monitor-period. Same as
    /// kube-controller-manager's flag (upstream default 50s since 1.32, 40s before).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "50s",
        value_parser = parse_duration,
        allow_hyphen_values = true
    )]
    pub node_monitor_grace_period: Duration,

    /// How long a node that has no Ready condition yet (still starting) may stay silent before it
    /// is marked Unknown. Must not be shorter than --node-monitor-period. Same as
    /// kube-controller-manager's flag (upstream default 1m).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "1m",
        value_parser = parse_duration,
        allow_hyphen_values = true
    )]
    pub node_startup_grace_period: Duration,

    /// Nodes per second that get a NoExecute taint in a healthy zone (and in a fully disrupted zone
    /// while some other zone is not fully disrupted). Same as kube-controller-manager's flag
    /// (upstream default 0.1).
    #[arg(
        long,
        value_name = "RATE",
        default_value_t = 0.1,
        allow_negative_numbers = true
    )]
    pub node_eviction_rate: f64,

    /// Nodes per second that get a NoExecute taint in a partially disrupted zone larger than
    /// --large-cluster-size-threshold (smaller zones: 0). Same as kube-controller-manager's flag
    /// (upstream default 0.01).
    #[arg(
        long,
        value_name = "RATE",
        default_value_t = 0.01,
        allow_negative_numbers = true
    )]
    pub secondary_node_eviction_rate: f64,

    /// Zones with more nodes than this use --secondary-node-eviction-rate when partially disrupted;
    /// smaller zones stop tainting. Compared with the zone's size, as upstream does. Same as
    /// kube-controller-manager's flag (upstream default 50).
    #[arg(long, value_name = "NODES", default_value_t = 50)]
    pub large_cluster_size_threshold: u32,

    /// Fraction of not-Ready nodes (at least 3) above which a zone is partially disrupted, in [0,
    /// 1]. Same as kube-controller-manager's flag (upstream default 0.55).
    #[arg(
        long,
        value_name = "FRACTION",
        default_value_t = 0.55,
        allow_negative_numbers = true
    )]
    pub unhealthy_zone_threshold: f64,

    /// Take part in leader election and act only while holding the lease, so that several replicas
    /// can run. Use --leader-elect=false to act alone. Same as kube-controller-manager's flag
    /// (upstream default true).
    #[arg(
        long,
        value_name = "BOOL",
        default_value_t = true,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub leader_elect: bool,

    /// How long a leader's lease is valid without renewal; a standby waits this long before taking
    /// over a silent leader's lease. Same as kube-controller-manager's flag (upstream default 15s).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "15s",
        value_parser = parse_duration,
        allow_hyphen_values = true
    )]
    pub leader_elect_lease_duration: Duration,

    /// How long the leader keeps retrying to renew its lease before it gives up leadership. Must be
    /// shorter than --leader-elect-lease-duration and longer than 1.2 × --leader-elect-retry-period
    /// (client-go's rule). Same as kube-controller-manager's flag (upstream default 10s).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "10s",
        value_parser = parse_duration,
        allow_hyphen_values = true
    )]
    pub leader_elect_renew_deadline: Duration,

    /// How long to wait between attempts to acquire or renew the lease. Same as
    /// kube-controller-manager's flag (upstream default 2s).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "2s",
        value_parser = parse_duration,
        allow_hyphen_values = true
    )]
    pub leader_elect_retry_period: Duration,

    /// Name of the coordination/v1 Lease used for leader election. Like kube-controller-manager's
    /// --leader-elect-resource-name (whose default is kube-controller-manager); ours is
    /// node-lifecycle-controller, so that both can run side by side while migrating.
    #[arg(long, value_name = "NAME", default_value = "node-lifecycle-controller")]
    pub leader_elect_resource_name: String,

    /// Namespace of the leader election Lease. Same as kube-controller-manager's flag (upstream
    /// default kube-system).
    #[arg(long, value_name = "NAMESPACE", default_value = "kube-system")]
    pub leader_elect_resource_namespace: String,

    /// Namespace holding the kubelets' node Leases (one per node, named like the node). Upstream
    /// hard-codes kube-node-lease.
    #[arg(long, value_name = "NAMESPACE", default_value = "kube-node-lease")]
    pub node_lease_namespace: String,

    /// Watch, decide, log and count metrics, but write nothing to the cluster (no status, taints,
    /// deletions, evictions or Events). No upstream equivalent; off by default.
    #[arg(
        long,
        value_name = "BOOL",
        default_value_t = false,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub dry_run: bool,

    /// How pods are removed when their toleration of a NoExecute taint runs out: `delete` (as
    /// upstream's taint-eviction controller) or `evict` (the policy/v1 Eviction API, honouring
    /// PodDisruptionBudgets; a refused eviction is retried with backoff).
    #[arg(long, value_name = "MODE", value_enum, default_value_t = EvictionModeArg::Delete)]
    pub eviction_mode: EvictionModeArg,

    /// Breaker: when more than this fraction (in [0, 1]) of all nodes is not Ready, stop adding
    /// NoExecute taints cluster-wide (marking nodes Unknown goes on). No upstream equivalent; off
    /// when not given.
    #[arg(long, value_name = "FRACTION", allow_negative_numbers = true)]
    pub max_unhealthy_fraction: Option<f64>,

    /// Removed upstream in 1.27; refused (use tolerations with tolerationSeconds).
    #[arg(long, value_name = "DURATION", hide = true, allow_hyphen_values = true)]
    pub pod_eviction_timeout: Option<String>,

    /// Removed upstream in 1.27; refused (the taint manager is always on).
    #[arg(
        long,
        value_name = "BOOL",
        hide = true,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub enable_taint_manager: Option<String>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Arguments of `run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub flags: ControllerFlags,

    /// Path to a kubeconfig file. Without it (and without KUBECONFIG), the in-cluster service
    /// account is used, falling back to ~/.kube/config.
    #[arg(long, value_name = "PATH", env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use (default: the current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// Address (host:port) of the plain-HTTP admin server: /metrics, /healthz, /readyz and
    /// /livez, all without authentication. Empty (the default): not served.
    #[arg(long, value_name = "ADDR", default_value = "", value_parser = parse_listen_address)]
    pub admin_address: ListenAddress,

    /// Address (host:port) of the HTTPS server, as kube-controller-manager's secure port:
    /// /healthz, /readyz and /livez to anyone; /metrics to a bearer token that the API server
    /// authenticates (TokenReview) and authorizes for `get` on the non-resource URL /metrics
    /// (SubjectAccessReview). Empty: not served.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "0.0.0.0:10257",
        value_parser = parse_listen_address
    )]
    pub secure_address: ListenAddress,

    /// PEM certificate (chain, leaf first) the secure port serves. Without it and
    /// --tls-private-key-file, a self-signed certificate is generated in memory at start.
    #[arg(long, value_name = "PATH", requires = "tls_private_key_file")]
    pub tls_cert_file: Option<PathBuf>,

    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert-file.
    #[arg(long, value_name = "PATH", requires = "tls_cert_file")]
    pub tls_private_key_file: Option<PathBuf>,

    /// Log format.
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter, in RUST_LOG syntax (`info`, `node_lifecycle_controller=debug,kube=warn`).
    #[arg(
        long,
        value_name = "FILTER",
        env = "RUST_LOG",
        default_value = "info",
        value_parser = parse_log_filter
    )]
    pub log_level: String,

    /// This replica's identity in leader election (default: the host name).
    #[arg(long, value_name = "NAME", env = "POD_NAME")]
    pub identity: Option<String>,

    /// How the Node, Lease and Pod watches get their first full state, and re-list after a 410
    /// Gone: `paged` lists (pages of 500, one request after another) or `streaming` lists
    /// (KEP-3157 "WatchList": one watch streams the current objects, so that decoding overlaps
    /// with the server's encoding; Kubernetes 1.32 and 1.34+ serve them by default, 1.33 only
    /// with its WatchList feature gate on). A streaming list the API server refuses (422 or 400)
    /// logs a warning and that watch uses paged lists for the life of the process. Default
    /// `streaming`, as client-go's informers since 1.35.
    #[arg(long, value_name = "MODE", value_enum, default_value_t = InitialListArg::Streaming)]
    pub initial_list: InitialListArg,

    /// Requests per second, on average, per controller, as kube-controller-manager's flag means
    /// it (default 20): kube-controller-manager gives each controller its own client and limit,
    /// and this process does the work of two (node lifecycle and taint eviction), so its one
    /// limiter allows twice this (40 at the default). Every request takes a token (reads,
    /// lists, watch starts, writes, Events, leader-election Lease renewals). When requests
    /// wait, the leader Lease goes first, then node writes and pod deletions or evictions, then
    /// reads, then pod status marks and Events. A negative value turns the client-side limit
    /// off (as client-go's -1); 0 is refused.
    #[arg(
        long,
        value_name = "QPS",
        default_value_t = crate::k8s::throttle::DEFAULT_QPS,
        allow_negative_numbers = true
    )]
    pub kube_api_qps: f64,

    /// Requests that may go at once, above --kube-api-qps, after a quiet spell (the token
    /// bucket's size), per controller as kube-controller-manager's flag (default 30); at least
    /// 1. The process's one bucket holds twice this (60 at the default).
    #[arg(
        long,
        value_name = "N",
        default_value_t = i64::from(crate::k8s::throttle::DEFAULT_BURST),
        allow_negative_numbers = true
    )]
    pub kube_api_burst: i64,
}

/// The client-side rate limit of the API client (`--kube-api-qps`, `--kube-api-burst`), as
/// given: per controller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ApiLimits {
    /// Requests per second; `None`: no client-side limit (a negative `--kube-api-qps`).
    pub qps: Option<f64>,
    pub burst: u32,
}

/// The kube-controller-manager controllers whose work this process does (node lifecycle and
/// taint eviction), each of which has a client and a limit of its own there.
pub const CONTROLLERS: u32 = 2;

impl ApiLimits {
    /// The process's one limiter: the sum of the two controllers' envelopes, so that a
    /// deployment with kube-controller-manager's flags gets the budget the two built-in
    /// controllers had together (40 QPS, burst 60 at the defaults).
    pub fn envelope(self) -> ApiLimits {
        ApiLimits {
            qps: self.qps.map(|q| q * f64::from(CONTROLLERS)),
            burst: self.burst.saturating_mul(CONTROLLERS),
        }
    }
}

impl RunArgs {
    /// Validates `--kube-api-qps` and `--kube-api-burst`.
    pub fn api_limits(&self) -> Result<ApiLimits, ConfigError> {
        let qps = self.kube_api_qps;
        if !qps.is_finite() || qps == 0.0 {
            return Err(invalid(
                "kube-api-qps",
                qps,
                "must be a finite number of requests per second above 0 (or negative, for no \
                 client-side limit)",
            ));
        }
        let burst = self.kube_api_burst;
        let Some(burst) = u32::try_from(burst).ok().filter(|b| *b >= 1) else {
            return Err(invalid(
                "kube-api-burst",
                burst,
                "must be a whole number of requests, 1 or more",
            ));
        };
        Ok(ApiLimits {
            qps: (qps > 0.0).then_some(qps),
            burst,
        })
    }
}

/// A listening address that may be turned off: `--flag=` (empty) means "do not serve".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenAddress(pub Option<SocketAddr>);

fn parse_listen_address(value: &str) -> Result<ListenAddress, String> {
    if value.trim().is_empty() {
        return Ok(ListenAddress(None));
    }
    value.parse::<SocketAddr>().map(|a| ListenAddress(Some(a))).map_err(|_| {
        format!("{value:?} is not host:port (an IP address and a port, e.g. 0.0.0.0:10257), nor empty to turn it off")
    })
}

/// Output format of `simulate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A human-readable timeline followed by a summary.
    Table,
    /// One JSON object per line, nothing else on stdout.
    Jsonl,
    /// One self-contained HTML page (swimlanes per zone, summary tables), on stdout.
    Html,
}

/// Arguments of `simulate`.
#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// Scenario file (YAML); `-` reads it from stdin. Without it, a built-in demo runs.
    #[arg(value_name = "SCENARIO")]
    pub scenario: Option<PathBuf>,

    /// Output format.
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,

    /// Seed for everything random in the simulation (kubelet phases, retry jitter); the output
    /// depends only on the scenario and the seed.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,

    /// Override a controller flag of the scenario, e.g. `--set node-monitor-grace-period=20s`
    /// (the flag's long name without `--`). Repeatable; later ones win.
    #[arg(long = "set", value_name = "FLAG=VALUE", value_parser = parse_set)]
    pub set: Vec<(String, String)>,

    /// Log filter (to stderr), in RUST_LOG syntax.
    #[arg(long, value_name = "FILTER", default_value = "error", value_parser = parse_log_filter)]
    pub log_level: String,

    /// Serve the simulated cluster over the Kubernetes HTTP API on ADDR (a loopback address,
    /// e.g. 127.0.0.1:6443), in real time and without a controller of its own, so that `run` can
    /// be pointed at it; prints the timeline of what it applied when the scenario ends.
    #[arg(long, value_name = "ADDR")]
    pub serve: Option<SocketAddr>,

    /// With --serve: write a kubeconfig for the served cluster to PATH.
    #[arg(long, value_name = "PATH", requires = "serve")]
    pub kubeconfig_out: Option<PathBuf>,

    /// With --serve: answer the first write of each kind (PUT, status PUT, DELETE, eviction POST)
    /// to each Node and each Pod with 409 Conflict, without applying it, as if another client had
    /// written first; later writes are served normally. Lease and Event writes (leader election,
    /// kubelets, recorded Events) are not affected. The number of conflicts answered is printed
    /// to stderr at exit.
    #[arg(long, requires = "serve")]
    pub inject_conflicts: bool,

    /// With --serve: refuse streaming lists (watches with sendInitialEvents, KEP-3157
    /// "WatchList") with 422 Invalid, as Kubernetes 1.33 does with its WatchList feature gate
    /// off by default; for trying `run --initial-list=streaming`'s fallback to paged lists. The
    /// numbers of streaming lists served and refused are printed to stderr at exit.
    #[arg(long, requires = "serve")]
    pub no_watch_list: bool,

    /// Run the scenario a second time with this controller flag changed (FLAG=VALUE, as
    /// --set; repeatable) and report both runs side by side (table: the two summaries and the
    /// difference; jsonl: both timelines, each line with its `run`; html: both, and a delta).
    #[arg(long = "compare-set", value_name = "FLAG=VALUE", value_parser = parse_set, conflicts_with = "serve")]
    pub compare_set: Vec<(String, String)>,

    /// Build the scenario's starting state from a real cluster: its Nodes, Pods and
    /// PodDisruptionBudgets, read with list requests only (nothing is written to the cluster).
    /// SCENARIO, if given, is then a file of events only (docs/what-if.md).
    #[arg(long, conflicts_with = "serve")]
    pub from_cluster: bool,

    #[command(flatten)]
    pub from: FromClusterArgs,
}

/// The `--from-cluster` options of `simulate`.
#[derive(Debug, Clone, Args)]
pub struct FromClusterArgs {
    /// With --from-cluster: the kubeconfig to read (default: KUBECONFIG or ~/.kube/config, or
    /// in-cluster credentials).
    #[arg(long, value_name = "PATH", requires = "from_cluster")]
    pub kubeconfig: Option<PathBuf>,

    /// With --from-cluster: the kubeconfig context to use.
    #[arg(long, value_name = "NAME", requires = "from_cluster")]
    pub context: Option<String>,

    /// With --from-cluster: nodes whose kubelets stop, `zone=ZONE[,ZONE...]` or
    /// `nodes=NAME[,NAME...]`, then optionally `at=DURATION` (default 30s). Repeatable.
    #[arg(long, value_name = "WHICH [at=DURATION]", num_args = 1..=2, requires = "from_cluster")]
    pub fail: Vec<String>,

    /// With --from-cluster: nodes whose kubelets come back, `zone=...` or `nodes=...`, then
    /// `at=DURATION`. Repeatable.
    #[arg(long, value_name = "WHICH at=DURATION", num_args = 1..=2, requires = "from_cluster")]
    pub recover: Vec<String>,

    /// With --from-cluster: virtual time to run (default: the events file's, else 15m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "from_cluster")]
    pub duration: Option<Duration>,

    /// With --from-cluster: also write the scenario (the cluster's state and the events) to
    /// FILE, which `simulate FILE` replays identically without access to the cluster.
    #[arg(long, value_name = "FILE", requires = "from_cluster")]
    pub save_scenario: Option<PathBuf>,
}

/// What to say when a boolean flag is given its value as a word of its own
/// (`--leader-elect false`): the flag takes an optional value only after `=`, so clap reads
/// `false` as a stray argument and its own message does not say why.
pub fn separate_bool_value(args: &[std::ffi::OsString]) -> Option<String> {
    let command = Cli::command();
    let bool_flags: Vec<String> = command
        .get_subcommands()
        .flat_map(|sub| sub.get_arguments())
        .filter(|a| {
            a.get_value_names()
                .is_some_and(|names| names.iter().any(|n| n.as_str() == "BOOL"))
        })
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect();
    args.windows(2).find_map(|pair| {
        let (flag, value) = (pair[0].to_str()?, pair[1].to_str()?);
        (bool_flags.iter().any(|f| f == flag) && matches!(value, "true" | "false")).then(|| {
            format!(
                "{flag} takes its value after '=': write {flag}={value} (a separate                  '{value}' is read as another argument)"
            )
        })
    })
}

/// Parses a humantime duration (`50s`, `1m`, `1m30s`); refuses negative ones with a clear message.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed.starts_with('-') {
        return Err(format!(
            "negative durations are not allowed (got {trimmed:?})"
        ));
    }
    humantime::parse_duration(trimmed)
        .map_err(|e| format!("{e}; expected a duration such as 5s, 1m or 1m30s"))
}

/// Checks that a log filter parses; keeps it as text.
fn parse_log_filter(text: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(text)
        .map(|_| text.to_string())
        .map_err(|e| format!("not a valid log filter: {e}"))
}

/// Parses a `--set` value: `FLAG=VALUE`, FLAG being a long flag name (a leading `--` is tolerated).
pub fn parse_set(s: &str) -> Result<(String, String), String> {
    let Some((name, value)) = s.split_once('=') else {
        return Err(format!(
            "expected FLAG=VALUE (e.g. node-monitor-grace-period=20s), got {s:?}"
        ));
    };
    let name = name.trim();
    let name = name.strip_prefix("--").unwrap_or(name);
    if name.is_empty() {
        return Err(format!("missing the flag name before '=' in {s:?}"));
    }
    Ok((name.to_string(), value.to_string()))
}

/// Formats a duration as humantime does, without spaces (`1m30s`).
fn show(d: Duration) -> String {
    humantime::format_duration(d).to_string().replace(' ', "")
}

fn invalid(
    flag: &'static str,
    value: impl ToString,
    requirement: impl Into<String>,
) -> ConfigError {
    ConfigError::Invalid {
        flag,
        value: value.to_string(),
        requirement: requirement.into(),
    }
}

fn check_fraction(flag: &'static str, value: f64) -> Result<(), ConfigError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(invalid(flag, value, "must be a fraction between 0 and 1"))
    }
}

fn check_rate(flag: &'static str, value: f64) -> Result<(), ConfigError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(invalid(
            flag,
            value,
            "must be a finite number of nodes per second, 0 or more",
        ))
    }
}

fn check_name(flag: &'static str, value: &str) -> Result<(), ConfigError> {
    if value.trim().is_empty() {
        Err(invalid(flag, format!("{value:?}"), "must not be empty"))
    } else {
        Ok(())
    }
}

/// A namespace name (an RFC 1123 label): what the API server would refuse, refused at start
/// rather than as a 404 or 422 on every request.
fn check_namespace(flag: &'static str, value: &str) -> Result<(), ConfigError> {
    check_name(flag, value)?;
    let edges_ok = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let valid = value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && edges_ok(value.bytes().next())
        && edges_ok(value.bytes().last());
    if valid {
        Ok(())
    } else {
        Err(invalid(
            flag,
            value,
            "must be a namespace name: at most 63 lower-case letters, digits and '-', \
             starting and ending with a letter or digit",
        ))
    }
}

impl ControllerFlags {
    /// Refuses the flags upstream removed (they are accepted by the parser only for this).
    fn check_removed(&self) -> Result<(), ConfigError> {
        if self.pod_eviction_timeout.is_some() {
            return Err(ConfigError::Removed {
                flag: "pod-eviction-timeout",
                replacement: "pods are evicted by NoExecute taints; set how long a pod stays on \
                              an unreachable or not-ready node with tolerations and their \
                              tolerationSeconds (the API server adds 300s by default)",
            });
        }
        if self.enable_taint_manager.is_some() {
            return Err(ConfigError::Removed {
                flag: "enable-taint-manager",
                replacement: "the taint manager (taint-eviction controller) is always on; \
                              pods are evicted according to their tolerations",
            });
        }
        Ok(())
    }

    /// Validates the flags and turns them into [`Settings`].
    pub fn to_settings(&self) -> Result<Settings, ConfigError> {
        self.check_removed()?;
        let ControllerFlags {
            node_monitor_period,
            node_monitor_grace_period,
            node_startup_grace_period,
            node_eviction_rate,
            secondary_node_eviction_rate,
            large_cluster_size_threshold,
            unhealthy_zone_threshold,
            leader_elect,
            leader_elect_lease_duration,
            leader_elect_renew_deadline,
            leader_elect_retry_period,
            leader_elect_resource_name,
            leader_elect_resource_namespace,
            node_lease_namespace,
            dry_run,
            eviction_mode,
            max_unhealthy_fraction,
            pod_eviction_timeout: _,
            enable_taint_manager: _,
        } = self.clone();

        if node_monitor_period.is_zero() {
            return Err(invalid(
                "node-monitor-period",
                show(node_monitor_period),
                "must be longer than 0s",
            ));
        }
        if node_monitor_grace_period < node_monitor_period {
            return Err(invalid(
                "node-monitor-grace-period",
                show(node_monitor_grace_period),
                format!(
                    "must not be shorter than --node-monitor-period={}",
                    show(node_monitor_period)
                ),
            ));
        }
        if node_startup_grace_period < node_monitor_period {
            return Err(invalid(
                "node-startup-grace-period",
                show(node_startup_grace_period),
                format!(
                    "must not be shorter than --node-monitor-period={}",
                    show(node_monitor_period)
                ),
            ));
        }
        check_rate("node-eviction-rate", node_eviction_rate)?;
        check_rate("secondary-node-eviction-rate", secondary_node_eviction_rate)?;
        check_fraction("unhealthy-zone-threshold", unhealthy_zone_threshold)?;
        if let Some(fraction) = max_unhealthy_fraction {
            check_fraction("max-unhealthy-fraction", fraction)?;
        }
        if leader_elect_retry_period.is_zero() {
            return Err(invalid(
                "leader-elect-retry-period",
                show(leader_elect_retry_period),
                "must be longer than 0s",
            ));
        }
        if leader_elect_renew_deadline >= leader_elect_lease_duration {
            return Err(invalid(
                "leader-elect-renew-deadline",
                show(leader_elect_renew_deadline),
                format!(
                    "must be shorter than --leader-elect-lease-duration={}",
                    show(leader_elect_lease_duration)
                ),
            ));
        }
        let jittered_retry = leader_elect_retry_period.mul_f64(LEADER_ELECTION_JITTER_FACTOR);
        if leader_elect_renew_deadline <= jittered_retry {
            return Err(invalid(
                "leader-elect-renew-deadline",
                show(leader_elect_renew_deadline),
                format!(
                    "must be longer than 1.2 × --leader-elect-retry-period={} ({})",
                    show(leader_elect_retry_period),
                    show(jittered_retry)
                ),
            ));
        }
        check_name("leader-elect-resource-name", &leader_elect_resource_name)?;
        check_namespace(
            "leader-elect-resource-namespace",
            &leader_elect_resource_namespace,
        )?;
        check_namespace("node-lease-namespace", &node_lease_namespace)?;

        Ok(Settings {
            node_monitor_period,
            node_monitor_grace_period,
            node_startup_grace_period,
            node_eviction_rate,
            secondary_node_eviction_rate,
            large_cluster_size_threshold,
            unhealthy_zone_threshold,
            leader_elect,
            leader_elect_lease_duration,
            leader_elect_renew_deadline,
            leader_elect_retry_period,
            leader_elect_resource_name,
            leader_elect_resource_namespace,
            node_lease_namespace,
            dry_run,
            eviction_mode: eviction_mode.into(),
            max_unhealthy_fraction,
        })
    }
}

/// The controller flags alone, for `simulate`'s overrides.
#[derive(Debug, Parser)]
#[command(name = "controller", args_override_self = true)]
struct OverrideParser {
    #[command(flatten)]
    flags: ControllerFlags,
}

/// Long names of every [`ControllerFlags`] argument (removed ones included).
fn controller_flag_names() -> Vec<String> {
    OverrideParser::command()
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_string))
        .filter(|name| name != "help" && name != "version")
        .collect()
}

/// Parses `(name, value)` pairs as controller flags (later wins), without cross-flag validation.
fn parse_overrides(overrides: &[(String, String)]) -> Result<ControllerFlags, ConfigError> {
    let known = controller_flag_names();
    let mut argv = vec!["controller".to_string()];
    for (name, value) in overrides {
        let name = name.trim();
        let name = name.strip_prefix("--").unwrap_or(name);
        if PROCESS_FLAGS.contains(&name) {
            return Err(ConfigError::NotForSimulate {
                flag: name.to_string(),
            });
        }
        if !known.iter().any(|k| k == name) {
            return Err(ConfigError::UnknownFlag {
                flag: name.to_string(),
            });
        }
        argv.push(format!("--{name}={value}"));
    }
    let parsed = OverrideParser::try_parse_from(argv).map_err(|e| {
        let rendered = e.render().to_string();
        let first = rendered.lines().next().unwrap_or_default();
        let mut message = first.strip_prefix("error: ").unwrap_or(first).to_string();
        // The allowed values, when clap lists them (an enum flag such as --eviction-mode).
        if let Some(values) = rendered
            .lines()
            .find_map(|l| l.trim().strip_prefix("[possible values: "))
        {
            message.push_str(&format!("; allowed: {}", values.trim_end_matches(']')));
        }
        ConfigError::Usage(message)
    })?;
    parsed.flags.check_removed()?;
    Ok(parsed.flags)
}

/// Checks one controller setting on its own (name known and allowed, value parses); the rules
/// that relate several flags are checked by [`settings_from_overrides`].
pub fn check_override(name: &str, value: &str) -> Result<(), ConfigError> {
    parse_overrides(&[(name.to_string(), value.to_string())]).map(|_| ())
}

/// Settings from `simulate`'s overrides: the scenario's `controller:` entries followed by the
/// `--set` pairs, as (long flag name without `--`, value); later entries win. Process and
/// connection flags are refused, as are unknown names.
pub fn settings_from_overrides(overrides: &[(String, String)]) -> Result<Settings, ConfigError> {
    parse_overrides(overrides)?.to_settings()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn run_flags(args: &[&str]) -> Result<ControllerFlags, clap::Error> {
        let mut argv = vec!["node-lifecycle-controller", "run"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv)?;
        match cli.command {
            Command::Run(run) => Ok(run.flags),
            _ => panic!("parsed as another command"),
        }
    }

    fn settings(args: &[&str]) -> Result<Settings, ConfigError> {
        run_flags(args).expect("flags parse").to_settings()
    }

    fn error_text(args: &[&str]) -> String {
        settings(args).expect_err("must be refused").to_string()
    }

    #[test]
    fn command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_equal_upstream_settings() {
        assert_eq!(settings(&[]).unwrap(), Settings::default());
    }

    #[test]
    fn no_overrides_give_default_settings() {
        assert_eq!(settings_from_overrides(&[]).unwrap(), Settings::default());
    }

    #[test]
    fn every_flag_is_read_into_settings() {
        let s = settings(&[
            "--node-monitor-period=2s",
            "--node-monitor-grace-period=1m30s",
            "--node-startup-grace-period=2m",
            "--node-eviction-rate=0.5",
            "--secondary-node-eviction-rate=0.05",
            "--large-cluster-size-threshold=10",
            "--unhealthy-zone-threshold=0.4",
            "--leader-elect=false",
            "--leader-elect-lease-duration=30s",
            "--leader-elect-renew-deadline=20s",
            "--leader-elect-retry-period=5s",
            "--leader-elect-resource-name=nlc",
            "--leader-elect-resource-namespace=ops",
            "--node-lease-namespace=leases",
            "--dry-run",
            "--eviction-mode=evict",
            "--max-unhealthy-fraction=0.3",
        ])
        .unwrap();
        assert_eq!(
            s,
            Settings {
                node_monitor_period: Duration::from_secs(2),
                node_monitor_grace_period: Duration::from_secs(90),
                node_startup_grace_period: Duration::from_secs(120),
                node_eviction_rate: 0.5,
                secondary_node_eviction_rate: 0.05,
                large_cluster_size_threshold: 10,
                unhealthy_zone_threshold: 0.4,
                leader_elect: false,
                leader_elect_lease_duration: Duration::from_secs(30),
                leader_elect_renew_deadline: Duration::from_secs(20),
                leader_elect_retry_period: Duration::from_secs(5),
                leader_elect_resource_name: "nlc".into(),
                leader_elect_resource_namespace: "ops".into(),
                node_lease_namespace: "leases".into(),
                dry_run: true,
                eviction_mode: EvictionMode::Evict,
                max_unhealthy_fraction: Some(0.3),
            }
        );
    }

    #[test]
    fn leader_elect_accepts_bare_flag_and_explicit_values() {
        assert!(settings(&["--leader-elect"]).unwrap().leader_elect);
        assert!(settings(&["--leader-elect=true"]).unwrap().leader_elect);
        assert!(!settings(&["--leader-elect=false"]).unwrap().leader_elect);
        assert!(run_flags(&["--leader-elect=maybe"]).is_err());
    }

    #[test]
    fn dry_run_accepts_explicit_false() {
        assert!(!settings(&["--dry-run=false"]).unwrap().dry_run);
    }

    #[test]
    fn repeated_flag_keeps_the_last_value() {
        let s = settings(&["--node-eviction-rate=0.2", "--node-eviction-rate=0.3"]).unwrap();
        assert_eq!(s.node_eviction_rate, 0.3);
    }

    #[test]
    fn negative_duration_is_a_usage_error_naming_the_problem() {
        let err = run_flags(&["--node-monitor-period=-5s"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(err.to_string().contains("negative"), "{err}");
        let err = run_flags(&["--node-monitor-grace-period", "-5s"]).unwrap_err();
        assert!(err.to_string().contains("negative"), "{err}");
    }

    #[test]
    fn garbage_duration_is_a_usage_error() {
        let err = run_flags(&["--node-monitor-grace-period=soon"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(
            err.to_string().contains("node-monitor-grace-period"),
            "{err}"
        );
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn durations_accept_compound_humantime() {
        let s = settings(&["--node-monitor-grace-period=1m30s"]).unwrap();
        assert_eq!(s.node_monitor_grace_period, Duration::from_secs(90));
    }

    #[test]
    fn zero_monitor_period_is_refused() {
        assert_eq!(
            error_text(&["--node-monitor-period=0s"]),
            "--node-monitor-period=0s must be longer than 0s"
        );
    }

    #[test]
    fn grace_period_shorter_than_monitor_period_is_refused_naming_both() {
        assert_eq!(
            error_text(&["--node-monitor-grace-period=3s"]),
            "--node-monitor-grace-period=3s must not be shorter than --node-monitor-period=5s"
        );
    }

    #[test]
    fn grace_period_equal_to_monitor_period_is_accepted() {
        assert!(settings(&["--node-monitor-grace-period=5s"]).is_ok());
    }

    #[test]
    fn startup_grace_period_shorter_than_monitor_period_is_refused() {
        assert_eq!(
            error_text(&[
                "--node-monitor-period=10s",
                "--node-startup-grace-period=5s"
            ]),
            "--node-startup-grace-period=5s must not be shorter than --node-monitor-period=10s"
        );
    }

    #[test]
    fn renew_deadline_not_below_lease_duration_is_refused() {
        assert_eq!(
            error_text(&["--leader-elect-renew-deadline=15s"]),
            "--leader-elect-renew-deadline=15s must be shorter than \
             --leader-elect-lease-duration=15s"
        );
    }

    #[test]
    fn renew_deadline_not_above_jittered_retry_period_is_refused() {
        let text = error_text(&[
            "--leader-elect-retry-period=5s",
            "--leader-elect-renew-deadline=6s",
        ]);
        assert_eq!(
            text,
            "--leader-elect-renew-deadline=6s must be longer than 1.2 × \
             --leader-elect-retry-period=5s (6s)"
        );
        assert!(
            settings(&[
                "--leader-elect-retry-period=5s",
                "--leader-elect-renew-deadline=7s"
            ])
            .is_ok()
        );
    }

    #[test]
    fn zero_retry_period_is_refused() {
        assert!(
            error_text(&["--leader-elect-retry-period=0s"])
                .starts_with("--leader-elect-retry-period=0s")
        );
    }

    #[test]
    fn negative_or_non_finite_rates_are_refused() {
        assert_eq!(
            error_text(&["--node-eviction-rate=-0.1"]),
            "--node-eviction-rate=-0.1 must be a finite number of nodes per second, 0 or more"
        );
        assert!(error_text(&["--node-eviction-rate", "-1"]).starts_with("--node-eviction-rate=-1"));
        assert!(
            error_text(&["--secondary-node-eviction-rate=NaN"])
                .starts_with("--secondary-node-eviction-rate=NaN")
        );
        assert!(error_text(&["--node-eviction-rate=inf"]).starts_with("--node-eviction-rate=inf"));
        assert!(settings(&["--node-eviction-rate=0"]).is_ok());
    }

    #[test]
    fn thresholds_outside_zero_to_one_are_refused() {
        assert_eq!(
            error_text(&["--unhealthy-zone-threshold=1.5"]),
            "--unhealthy-zone-threshold=1.5 must be a fraction between 0 and 1"
        );
        assert!(
            error_text(&["--unhealthy-zone-threshold=-0.1"])
                .starts_with("--unhealthy-zone-threshold=-0.1")
        );
        assert!(
            error_text(&["--unhealthy-zone-threshold=NaN"])
                .starts_with("--unhealthy-zone-threshold=NaN")
        );
        assert!(settings(&["--unhealthy-zone-threshold=1"]).is_ok());
        assert!(settings(&["--unhealthy-zone-threshold=0"]).is_ok());
    }

    #[test]
    fn max_unhealthy_fraction_outside_zero_to_one_is_refused() {
        assert_eq!(
            error_text(&["--max-unhealthy-fraction=2"]),
            "--max-unhealthy-fraction=2 must be a fraction between 0 and 1"
        );
        assert!(
            error_text(&["--max-unhealthy-fraction=-0.5"])
                .starts_with("--max-unhealthy-fraction=-0.5")
        );
        assert_eq!(
            settings(&["--max-unhealthy-fraction=0.5"])
                .unwrap()
                .max_unhealthy_fraction,
            Some(0.5)
        );
    }

    #[test]
    fn empty_lease_namespace_is_refused() {
        assert!(error_text(&["--node-lease-namespace="]).starts_with("--node-lease-namespace="));
    }

    #[test]
    fn a_namespace_the_api_server_would_refuse_is_refused_naming_the_flag_and_value() {
        for bad in [
            "Kube-Node-Lease",
            "kube_node_lease",
            "-leases",
            "leases-",
            &"a".repeat(64),
        ] {
            let text = error_text(&[&format!("--node-lease-namespace={bad}")]);
            assert!(
                text.starts_with(&format!("--node-lease-namespace={bad}"))
                    && text.contains("namespace name"),
                "{text}"
            );
        }
        let text = error_text(&["--leader-elect-resource-namespace=Kube System"]);
        assert!(
            text.starts_with("--leader-elect-resource-namespace=Kube System"),
            "{text}"
        );
        assert!(settings(&["--node-lease-namespace=kube-node-lease-2"]).is_ok());
    }

    #[test]
    fn an_override_with_a_value_not_allowed_lists_the_allowed_ones() {
        let e = settings_from_overrides(&pairs(&[("eviction-mode", "drain")]))
            .expect_err("drain is not a mode")
            .to_string();
        assert!(
            e.contains("'drain'") && e.contains("allowed: delete, evict"),
            "{e}"
        );
    }

    #[test]
    fn negative_cluster_size_threshold_is_a_usage_error() {
        assert!(run_flags(&["--large-cluster-size-threshold=-1"]).is_err());
    }

    #[test]
    fn unknown_eviction_mode_is_a_usage_error() {
        assert!(run_flags(&["--eviction-mode=drain"]).is_err());
    }

    #[test]
    fn removed_pod_eviction_timeout_is_refused_pointing_to_tolerations() {
        let text = error_text(&["--pod-eviction-timeout=5m"]);
        assert!(
            text.starts_with("--pod-eviction-timeout was removed"),
            "{text}"
        );
        assert!(text.contains("tolerationSeconds"), "{text}");
    }

    #[test]
    fn removed_enable_taint_manager_is_refused_saying_it_is_always_on() {
        for args in [["--enable-taint-manager"], ["--enable-taint-manager=false"]] {
            let text = error_text(&args);
            assert!(
                text.starts_with("--enable-taint-manager was removed"),
                "{text}"
            );
            assert!(text.contains("always on"), "{text}");
        }
    }

    #[test]
    fn removed_flags_are_hidden_from_help() {
        let help = Cli::command()
            .find_subcommand_mut("run")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(!help.contains("pod-eviction-timeout"));
        assert!(!help.contains("enable-taint-manager"));
        assert!(help.contains("node-monitor-grace-period"));
    }

    #[test]
    fn run_has_process_flags_with_defaults() {
        let cli =
            Cli::try_parse_from(["nlc", "run", "--context=prod", "--log-format=json"]).unwrap();
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.context.as_deref(), Some("prod"));
        assert_eq!(run.log_format, LogFormat::Json);
        assert_eq!(run.admin_address, ListenAddress(None));
        assert_eq!(
            run.secure_address,
            ListenAddress(Some("0.0.0.0:10257".parse::<SocketAddr>().unwrap()))
        );
        assert_eq!(run.tls_cert_file, None);
    }

    #[test]
    fn an_empty_address_turns_a_server_off_and_any_other_must_be_host_and_port() {
        let run = run_args(&["--secure-address=", "--admin-address=127.0.0.1:8080"]).unwrap();
        assert_eq!(run.secure_address, ListenAddress(None));
        assert_eq!(
            run.admin_address,
            ListenAddress(Some("127.0.0.1:8080".parse().unwrap()))
        );
        let err = run_args(&["--secure-address=localhost"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("--secure-address"), "{err}");
    }

    #[test]
    fn a_certificate_without_its_key_or_a_key_without_its_certificate_is_a_usage_error() {
        for flag in ["--tls-cert-file=/c.pem", "--tls-private-key-file=/k.pem"] {
            let err = run_args(&[flag]).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
            assert_eq!(err.exit_code(), 2);
        }
        let both = run_args(&["--tls-cert-file=/c.pem", "--tls-private-key-file=/k.pem"]).unwrap();
        assert_eq!(both.tls_cert_file.as_deref(), Some(Path::new("/c.pem")));
    }

    fn run_args(args: &[&str]) -> Result<RunArgs, clap::Error> {
        let mut argv = vec!["nlc", "run"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv)?.command {
            Command::Run(run) => Ok(run),
            _ => panic!("parsed as another command"),
        }
    }

    #[test]
    fn initial_list_defaults_to_streaming_and_accepts_paged() {
        assert_eq!(
            run_args(&[]).unwrap().initial_list,
            InitialListArg::Streaming
        );
        let streaming = run_args(&["--initial-list=streaming"])
            .unwrap()
            .initial_list;
        assert_eq!(InitialList::from(streaming), InitialList::Streaming);
        let paged = run_args(&["--initial-list", "paged"]).unwrap().initial_list;
        assert_eq!(InitialList::from(paged), InitialList::Paged);
    }

    #[test]
    fn an_unknown_initial_list_mode_is_a_usage_error_naming_the_flag_the_value_and_the_modes() {
        for bad in ["--initial-list=stream", "--initial-list=Streaming"] {
            let err = run_args(&[bad]).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue, "{bad}");
            assert_eq!(err.exit_code(), 2);
            let text = err.to_string();
            assert!(text.contains("--initial-list"), "{text}");
            let value = bad.split_once('=').map(|(_, v)| v).unwrap_or_default();
            assert!(text.contains(&format!("'{value}'")), "{text}");
            assert!(
                text.contains("paged") && text.contains("streaming"),
                "{text}"
            );
        }
    }

    #[test]
    fn initial_list_is_a_connection_flag_that_simulate_refuses() {
        let err = settings_from_overrides(&pairs(&[("initial-list", "streaming")])).unwrap_err();
        assert_eq!(
            err,
            ConfigError::NotForSimulate {
                flag: "initial-list".into()
            }
        );
    }

    fn api_limits(args: &[&str]) -> Result<ApiLimits, ConfigError> {
        run_args(args).unwrap().api_limits()
    }

    #[test]
    fn the_api_client_is_limited_to_20_qps_with_bursts_of_30_by_default_as_kube_controller_manager()
    {
        assert_eq!(
            api_limits(&[]),
            Ok(ApiLimits {
                qps: Some(20.0),
                burst: 30
            })
        );
        assert_eq!(
            api_limits(&["--kube-api-qps=50.5", "--kube-api-burst=100"]),
            Ok(ApiLimits {
                qps: Some(50.5),
                burst: 100
            })
        );
    }

    #[test]
    fn the_process_limiter_holds_both_controllers_envelopes_40_and_60_at_the_defaults() {
        assert_eq!(
            api_limits(&[]).unwrap().envelope(),
            ApiLimits {
                qps: Some(40.0),
                burst: 60
            }
        );
        assert_eq!(
            api_limits(&["--kube-api-qps=7.5", "--kube-api-burst=1"])
                .unwrap()
                .envelope(),
            ApiLimits {
                qps: Some(15.0),
                burst: 2
            }
        );
        assert_eq!(
            api_limits(&["--kube-api-qps=-1"]).unwrap().envelope().qps,
            None
        );
    }

    #[test]
    fn a_negative_kube_api_qps_turns_the_client_side_limit_off_as_client_go_does() {
        assert_eq!(api_limits(&["--kube-api-qps=-1"]).unwrap().qps, None);
    }

    #[test]
    fn a_zero_or_not_finite_qps_and_a_burst_below_one_are_refused_naming_flag_and_value() {
        for (args, start) in [
            (["--kube-api-qps=0"], "--kube-api-qps=0 must be"),
            (["--kube-api-qps=NaN"], "--kube-api-qps=NaN must be"),
            (["--kube-api-qps=inf"], "--kube-api-qps=inf must be"),
            (["--kube-api-burst=0"], "--kube-api-burst=0 must be"),
            (["--kube-api-burst=-3"], "--kube-api-burst=-3 must be"),
        ] {
            let text = api_limits(&args).unwrap_err().to_string();
            assert!(text.starts_with(start), "{args:?}: {text}");
        }
    }

    #[test]
    fn kube_api_qps_and_burst_are_connection_flags_that_simulate_refuses() {
        for flag in ["kube-api-qps", "kube-api-burst"] {
            let err = settings_from_overrides(&pairs(&[(flag, "5")])).unwrap_err();
            assert_eq!(err, ConfigError::NotForSimulate { flag: flag.into() });
        }
    }

    #[test]
    fn run_refuses_bad_admin_address_and_log_filter() {
        assert!(Cli::try_parse_from(["nlc", "run", "--admin-address=nowhere"]).is_err());
        assert!(Cli::try_parse_from(["nlc", "run", "--log-level=[[["]).is_err());
    }

    #[test]
    fn simulate_parses_scenario_output_seed_and_sets() {
        let cli = Cli::try_parse_from([
            "nlc",
            "simulate",
            "-",
            "--output=jsonl",
            "--seed=7",
            "--set",
            "node-monitor-grace-period=20s",
            "--set=dry-run=true",
        ])
        .unwrap();
        let Command::Simulate(sim) = cli.command else {
            panic!("not simulate")
        };
        assert_eq!(sim.scenario, Some(PathBuf::from("-")));
        assert_eq!(sim.output, OutputFormat::Jsonl);
        assert_eq!(sim.seed, 7);
        assert_eq!(
            sim.set,
            pairs(&[("node-monitor-grace-period", "20s"), ("dry-run", "true")])
        );
        assert_eq!(sim.log_level, "error");
    }

    #[test]
    fn simulate_defaults_to_the_demo_and_a_table() {
        let cli = Cli::try_parse_from(["nlc", "simulate"]).unwrap();
        let Command::Simulate(sim) = cli.command else {
            panic!("not simulate")
        };
        assert_eq!(sim.scenario, None);
        assert_eq!(sim.output, OutputFormat::Table);
        assert_eq!(sim.seed, 0);
        assert!(sim.set.is_empty());
    }

    #[test]
    fn set_without_equals_is_a_usage_error() {
        assert!(Cli::try_parse_from(["nlc", "simulate", "--set", "dry-run"]).is_err());
    }

    #[test]
    fn parse_set_splits_at_the_first_equals() {
        assert_eq!(
            parse_set("leader-elect-resource-name=a=b"),
            Ok(("leader-elect-resource-name".into(), "a=b".into()))
        );
        assert_eq!(
            parse_set("--dry-run=true"),
            Ok(("dry-run".into(), "true".into()))
        );
        assert!(parse_set("=5s").is_err());
        assert!(parse_set("dry-run").is_err());
    }

    #[test]
    fn overrides_apply_in_order_and_later_wins() {
        let s = settings_from_overrides(&pairs(&[
            ("node-monitor-grace-period", "50s"),
            ("node-eviction-rate", "0.2"),
            ("node-monitor-grace-period", "20s"),
            ("leader-elect", "false"),
            ("dry-run", "true"),
            ("eviction-mode", "evict"),
        ]))
        .unwrap();
        assert_eq!(s.node_monitor_grace_period, Duration::from_secs(20));
        assert_eq!(s.node_eviction_rate, 0.2);
        assert!(!s.leader_elect);
        assert!(s.dry_run);
        assert_eq!(s.eviction_mode, EvictionMode::Evict);
    }

    #[test]
    fn overrides_accept_every_controller_flag() {
        let values = [
            ("node-monitor-period", "5s"),
            ("node-monitor-grace-period", "50s"),
            ("node-startup-grace-period", "1m"),
            ("node-eviction-rate", "0.1"),
            ("secondary-node-eviction-rate", "0.01"),
            ("large-cluster-size-threshold", "50"),
            ("unhealthy-zone-threshold", "0.55"),
            ("leader-elect", "true"),
            ("leader-elect-lease-duration", "15s"),
            ("leader-elect-renew-deadline", "10s"),
            ("leader-elect-retry-period", "2s"),
            ("leader-elect-resource-name", "node-lifecycle-controller"),
            ("leader-elect-resource-namespace", "kube-system"),
            ("node-lease-namespace", "kube-node-lease"),
            ("dry-run", "false"),
            ("eviction-mode", "delete"),
        ];
        assert_eq!(
            settings_from_overrides(&pairs(&values)).unwrap(),
            Settings::default()
        );
        let mut names: Vec<&str> = values.iter().map(|(n, _)| *n).collect();
        names.extend([
            "max-unhealthy-fraction",
            "pod-eviction-timeout",
            "enable-taint-manager",
        ]);
        names.sort_unstable();
        let mut known = controller_flag_names();
        known.sort_unstable();
        assert_eq!(known, names);
    }

    #[test]
    fn overrides_refuse_process_flags_as_not_for_simulate() {
        for name in PROCESS_FLAGS {
            let err = settings_from_overrides(&pairs(&[(name, "x")])).unwrap_err();
            assert_eq!(
                err,
                ConfigError::NotForSimulate {
                    flag: name.to_string()
                }
            );
            assert!(err.to_string().contains("does not apply to simulate"));
        }
    }

    #[test]
    fn process_flags_are_exactly_the_run_flags_that_are_not_controller_flags() {
        let controller = controller_flag_names();
        let run = Cli::command();
        let run = run.find_subcommand("run").unwrap();
        let mut process: Vec<&str> = run
            .get_arguments()
            .filter_map(|a| a.get_long())
            .filter(|n| !controller.iter().any(|c| c == n))
            .collect();
        process.sort_unstable();
        let mut expected = PROCESS_FLAGS.to_vec();
        expected.sort_unstable();
        assert_eq!(process, expected);
    }

    #[test]
    fn overrides_refuse_unknown_names_naming_them() {
        let err = settings_from_overrides(&pairs(&[("node-grace", "5s")])).unwrap_err();
        assert_eq!(
            err,
            ConfigError::UnknownFlag {
                flag: "node-grace".into()
            }
        );
        assert!(err.to_string().contains("--node-grace"));
        assert!(settings_from_overrides(&pairs(&[("help", "true")])).is_err());
    }

    #[test]
    fn overrides_report_unparsable_values_naming_the_flag() {
        let err = settings_from_overrides(&pairs(&[("node-eviction-rate", "fast")])).unwrap_err();
        let ConfigError::Usage(text) = &err else {
            panic!("{err:?}")
        };
        assert!(text.contains("node-eviction-rate"), "{text}");
        assert!(text.contains("fast"), "{text}");
        assert!(!text.contains('\n'));
    }

    #[test]
    fn overrides_are_validated_together() {
        let err =
            settings_from_overrides(&pairs(&[("node-monitor-grace-period", "3s")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--node-monitor-grace-period=3s must not be shorter than --node-monitor-period=5s"
        );
        assert!(
            settings_from_overrides(&pairs(&[
                ("node-monitor-grace-period", "3s"),
                ("node-monitor-period", "1s"),
            ]))
            .is_ok()
        );
    }

    #[test]
    fn overrides_refuse_removed_flags() {
        let err = settings_from_overrides(&pairs(&[("pod-eviction-timeout", "5m")])).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Removed {
                flag: "pod-eviction-timeout",
                ..
            }
        ));
        assert!(check_override("enable-taint-manager", "true").is_err());
    }

    #[test]
    fn check_override_checks_one_value_alone() {
        assert!(check_override("node-monitor-grace-period", "20s").is_ok());
        assert!(check_override("node-monitor-grace-period", "-20s").is_err());
        assert!(check_override("kubeconfig", "/x").is_err());
    }
}
