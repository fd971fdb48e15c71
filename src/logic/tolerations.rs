//! Toleration matching, as the API server and upstream's taint manager define it.

use k8s_openapi::api::core::v1::{Taint, Toleration};

/// Whether `toleration` tolerates `taint`: effect empty or equal; key empty or equal; operator
/// `Exists`, or `Equal`/empty with equal values.
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    todo!("{toleration:?} {taint:?}")
}

/// For each taint in order, the first toleration that tolerates it (that one's
/// `tolerationSeconds` counts, even when a later one would also match). `None` when some taint
/// is not tolerated at all.
pub fn matching_tolerations<'a>(
    taints: &[Taint],
    tolerations: &'a [Toleration],
) -> Option<Vec<&'a Toleration>> {
    todo!("{taints:?} {tolerations:?}")
}

/// How long a pod may stay once a taint it tolerates is in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// No `tolerationSeconds`: tolerated forever.
    Forever,
    /// `tolerationSeconds`; zero or negative values count as 0 (evict at once).
    Seconds(i64),
}

/// The window of one toleration.
pub fn window(toleration: &Toleration) -> Window {
    todo!("{toleration:?}")
}
