//! The RBAC check at start: name what is missing once, up front (a 403 per call later helps
//! no one); when the check itself fails, stay unready and check again in the background.

use crate::admin::Readiness;
use crate::k8s::permissions::{self, Permission};
use std::sync::Arc;
use std::time::Duration;

/// How often a check that could not be made is tried again.
const RECHECK: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum RbacError {
    #[error(
        "RBAC does not allow what the controller needs; grant these to its service account:\n{}",
        missing.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
    )]
    Missing { missing: Vec<Permission> },
    /// The server does not know these credentials (an expired token, a deleted service
    /// account): every call after this would fail the same way.
    #[error(
        "the API server rejects the credentials (401 Unauthorized: {0}); check the \
         kubeconfig, or the service account token mounted into the pod"
    )]
    Unauthorized(String),
}

/// Fails when permissions are missing or the credentials are rejected; when the check cannot
/// be made, `readiness` says so until a later check succeeds.
pub async fn check(
    client: &kube::Client,
    wanted: Vec<Permission>,
    readiness: &Arc<Readiness>,
) -> Result<(), RbacError> {
    match permissions::missing(client, &wanted).await {
        Ok(missing) if !missing.is_empty() => Err(RbacError::Missing { missing }),
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 401 => Err(RbacError::Unauthorized(e.message)),
        Err(e) => {
            tracing::error!(error = %e, "could not check RBAC permissions up front: not ready until a check succeeds");
            readiness.unverified(Some(e.to_string()));
            tokio::spawn(recheck(client.clone(), wanted, readiness.clone()));
            Ok(())
        }
    }
}

async fn recheck(client: kube::Client, wanted: Vec<Permission>, readiness: Arc<Readiness>) {
    loop {
        tokio::time::sleep(RECHECK).await;
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
}
