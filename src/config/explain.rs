//! The flags of `status` and `explain` (docs/explain.md): what to ask, and how to reach the
//! leader through the API server with the user's own kubeconfig.

use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// How to find and reach the controller that answers.
#[derive(Debug, Clone, Args)]
pub struct ReachArgs {
    /// The kubeconfig to use (default: KUBECONFIG or ~/.kube/config, or in-cluster
    /// credentials). Its bearer token is what the controller checks.
    #[arg(long, value_name = "PATH", global = true)]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use (default: its current context).
    #[arg(long, value_name = "NAME", global = true)]
    pub context: Option<String>,

    /// The namespace of the controller's pods and of its election Lease.
    #[arg(long, value_name = "NS", default_value = "kube-system", global = true)]
    pub namespace: String,

    /// The name of the controller's election Lease (its --leader-elect-resource-name).
    #[arg(
        long,
        value_name = "NAME",
        default_value = "node-lifecycle-controller",
        global = true
    )]
    pub lease: String,

    /// The controller's secure port (the port of its --secure-address).
    #[arg(long, value_name = "PORT", default_value_t = 10257, global = true)]
    pub port: u16,
}

/// How answers are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ViewFormat {
    /// Tables and sentences for people.
    Table,
    /// The answer as the controller gives it (schema nlc.explain/v1).
    Json,
}

/// How `status` is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFormat {
    /// Tables for people.
    Table,
    /// The answer as the controller gives it (schema nlc.explain/v1).
    Json,
    /// One self-contained HTML page: the answer, then the next --horizon played from the
    /// cluster's Nodes and Pods (read with your kubeconfig) by the what-if engine.
    Html,
}

/// Arguments of `status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// List the deletions due within this time from now (with `-o html`, also how long the
    /// what-if plays).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = super::parse_duration)]
    pub horizon: Duration,

    #[arg(short = 'o', long, value_name = "FORMAT", value_enum, default_value_t = StatusFormat::Table)]
    pub output: StatusFormat,

    #[command(flatten)]
    pub reach: ReachArgs,
}

/// What `explain` is about.
#[derive(Debug, Clone, Subcommand)]
pub enum Subject {
    /// When the controller deletes this pod, and what decides it; or why it will not.
    Pod {
        /// NAMESPACE/NAME.
        #[arg(value_name = "NAMESPACE/NAME")]
        pod: String,
    },
    /// The node's state, its taints, why it is not tainted yet, and its pods.
    Node { name: String },
    /// The zone's state, rate and queue, and its nodes that are not Ready.
    Zone {
        /// As `status` shows it: `zone`, `region/zone`, or "" for nodes without zone labels.
        name: String,
    },
}

/// Arguments of `explain`.
#[derive(Debug, Clone, Args)]
pub struct ExplainArgs {
    #[command(subcommand)]
    pub subject: Subject,

    #[arg(short = 'o', long, value_name = "FORMAT", value_enum, default_value_t = ViewFormat::Table, global = true)]
    pub output: ViewFormat,

    #[command(flatten)]
    pub reach: ReachArgs,
}

impl Subject {
    /// The `/debug/explain` query that asks about it; a pod not given as NAMESPACE/NAME is a
    /// usage error naming the value.
    pub fn query(&self) -> Result<String, String> {
        Ok(match self {
            Subject::Pod { pod } => {
                match pod.split_once('/') {
                    Some((ns, name))
                        if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {}
                    _ => {
                        return Err(format!(
                            "explain pod {pod:?}: expected NAMESPACE/NAME, e.g. default/web-0"
                        ));
                    }
                }
                format!("pod={}", encode(pod))
            }
            Subject::Node { name } => format!("node={}", encode(name)),
            Subject::Zone { name } => format!("zone={}", encode(name)),
        })
    }
}

/// A query parameter's value with everything but unreserved characters %-escaped.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
