//! The API client's configuration from `--kubeconfig`/`--context`, or inferred.

use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError as KubeError};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    /// The file `--kubeconfig` names cannot be read or is no kubeconfig.
    #[error("--kubeconfig={}: {why}", path.display())]
    Read { path: PathBuf, why: String },
    /// The kubeconfig has no context of the name `--context` gives.
    #[error("--context={context}: {where_} has no context of that name (its contexts: {known})")]
    NoSuchContext {
        context: String,
        where_: String,
        known: String,
    },
    /// The kubeconfig the flags chose was read but cannot be used (a missing certificate...).
    #[error("{flags}: {why}")]
    Load { flags: String, why: String },
    #[error("finding cluster credentials (in-cluster, or KUBECONFIG / ~/.kube/config)")]
    Infer(#[source] kube::config::InferConfigError),
}

impl KubeconfigError {
    /// Whether the command line named what cannot be used (exit 2), rather than nothing being
    /// found where credentials are looked for without flags (a runtime failure, exit 1).
    pub fn is_usage(&self) -> bool {
        !matches!(self, KubeconfigError::Infer(_))
    }
}

/// kube's text for a failure to read a file says the path again, quoted twice; the flag's
/// message names the path already, so only the cause is kept.
fn why(e: &KubeError) -> String {
    match e {
        KubeError::ReadConfig(io, _) => format!("cannot read it: {io}"),
        KubeError::Parse(_) => format!("not a kubeconfig: {e}"),
        other => super::causes(other),
    }
}

/// The configuration of `kubeconfig` (at `context`), or inferred (in-cluster, or KUBECONFIG /
/// ~/.kube/config) when no file is named.
pub async fn load(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<kube::Config, KubeconfigError> {
    let (kc, where_) = match (kubeconfig, context) {
        (Some(path), _) => {
            let kc = Kubeconfig::read_from(path).map_err(|e| KubeconfigError::Read {
                path: path.to_path_buf(),
                why: why(&e),
            })?;
            (kc, format!("the kubeconfig {}", path.display()))
        }
        (None, Some(context)) => {
            let kc = Kubeconfig::read().map_err(|e| KubeconfigError::Load {
                flags: format!("--context={context}"),
                why: format!(
                    "no kubeconfig to take it from (KUBECONFIG, ~/.kube/config): {}",
                    why(&e)
                ),
            })?;
            (
                kc,
                "the kubeconfig (KUBECONFIG or ~/.kube/config)".to_string(),
            )
        }
        (None, None) => return kube::Config::infer().await.map_err(KubeconfigError::Infer),
    };
    if let Some(context) = context
        && !kc.contexts.iter().any(|c| c.name == context)
    {
        let known: Vec<&str> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
        return Err(KubeconfigError::NoSuchContext {
            context: context.to_string(),
            where_,
            known: if known.is_empty() {
                "none".into()
            } else {
                known.join(", ")
            },
        });
    }
    let opts = KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    let flags = match (kubeconfig, context) {
        (Some(path), Some(c)) => format!("--kubeconfig={} --context={c}", path.display()),
        (Some(path), None) => format!("--kubeconfig={}", path.display()),
        (None, c) => format!("--context={}", c.unwrap_or_default()),
    };
    kube::Config::from_custom_kubeconfig(kc, &opts)
        .await
        .map_err(|e| KubeconfigError::Load {
            flags,
            why: why(&e),
        })
}
