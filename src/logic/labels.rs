//! Keeping the deprecated beta OS/arch labels equal to the stable ones.

use k8s_openapi::api::core::v1::Node;
use std::collections::BTreeMap;

/// The beta labels to set: `beta.kubernetes.io/os` = `kubernetes.io/os` and
/// `beta.kubernetes.io/arch` = `kubernetes.io/arch`, where the stable label exists and the beta
/// one is missing or differs. `None` when nothing needs setting.
pub fn beta_label_updates(node: &Node) -> Option<BTreeMap<String, String>> {
    todo!("{node:?}")
}
