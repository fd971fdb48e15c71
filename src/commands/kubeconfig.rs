//! The API client's configuration from `--kubeconfig`/`--context`, or inferred.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    #[error("reading --kubeconfig={}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("loading the kubeconfig")]
    Load(#[source] kube::config::KubeconfigError),
    #[error("loading the kubeconfig for --context")]
    Context(#[source] kube::config::KubeconfigError),
    #[error("finding cluster credentials (in-cluster, or KUBECONFIG / ~/.kube/config)")]
    Infer(#[source] kube::config::InferConfigError),
}

/// The configuration of `kubeconfig` (at `context`), or inferred (in-cluster, or KUBECONFIG /
/// ~/.kube/config) when no file is named.
pub async fn load(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<kube::Config, KubeconfigError> {
    let opts = kube::config::KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    Ok(match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path).map_err(|source| {
                KubeconfigError::Read {
                    path: path.to_path_buf(),
                    source,
                }
            })?;
            kube::Config::from_custom_kubeconfig(kc, &opts)
                .await
                .map_err(KubeconfigError::Load)?
        }
        None if context.is_some() => kube::Config::from_kubeconfig(&opts)
            .await
            .map_err(KubeconfigError::Context)?,
        None => kube::Config::infer()
            .await
            .map_err(KubeconfigError::Infer)?,
    })
}
