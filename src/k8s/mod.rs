//! The production side of the seam: `Cluster` on `kube::Client`.

mod error;
mod kube_cluster;
pub mod permissions;
pub mod pod_digest;
mod review;
#[cfg(test)]
mod tests;
pub mod throttle;
mod watch_backoff;

pub use error::{api_error, watch_error};
pub use kube_cluster::KubeCluster;
pub use review::KubeReviewer;
