//! The production side of the seam: `Cluster` on `kube::Client`.
