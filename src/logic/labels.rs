//! Keeping the deprecated beta OS/arch labels equal to the stable ones.

use k8s_openapi::api::core::v1::Node;
use std::collections::BTreeMap;

/// The stable OS label.
pub const OS: &str = "kubernetes.io/os";
/// The deprecated beta OS label.
pub const BETA_OS: &str = "beta.kubernetes.io/os";
/// The stable architecture label.
pub const ARCH: &str = "kubernetes.io/arch";
/// The deprecated beta architecture label.
pub const BETA_ARCH: &str = "beta.kubernetes.io/arch";

/// The beta labels to set: `beta.kubernetes.io/os` = `kubernetes.io/os` and
/// `beta.kubernetes.io/arch` = `kubernetes.io/arch`, where the stable label exists and the beta
/// one is missing or differs. `None` when nothing needs setting.
pub fn beta_label_updates(node: &Node) -> Option<BTreeMap<String, String>> {
    let labels = node.metadata.labels.as_ref()?;
    let updates: BTreeMap<String, String> = [(OS, BETA_OS), (ARCH, BETA_ARCH)]
        .into_iter()
        .filter_map(|(stable, beta)| {
            let value = labels.get(stable)?;
            (labels.get(beta) != Some(value)).then(|| (beta.to_string(), value.clone()))
        })
        .collect();
    (!updates.is_empty()).then_some(updates)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(labels: &[(&str, &str)]) -> Node {
        let mut n = Node::default();
        n.metadata.name = Some("n1".to_string());
        n.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        n
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn missing_beta_labels_are_copied_from_the_stable_ones() {
        let n = node(&[(OS, "linux"), (ARCH, "amd64")]);
        assert_eq!(
            beta_label_updates(&n),
            Some(map(&[(BETA_OS, "linux"), (BETA_ARCH, "amd64")]))
        );
    }

    #[test]
    fn differing_beta_labels_are_overwritten_with_the_stable_value() {
        let n = node(&[
            (OS, "linux"),
            (BETA_OS, "windows"),
            (ARCH, "arm64"),
            (BETA_ARCH, "arm64"),
        ]);
        assert_eq!(beta_label_updates(&n), Some(map(&[(BETA_OS, "linux")])));
    }

    #[test]
    fn only_the_arch_label_is_set_when_only_it_is_out_of_step() {
        let n = node(&[
            (OS, "linux"),
            (BETA_OS, "linux"),
            (ARCH, "arm64"),
            (BETA_ARCH, "amd64"),
        ]);
        assert_eq!(beta_label_updates(&n), Some(map(&[(BETA_ARCH, "arm64")])));
    }

    #[test]
    fn matching_beta_labels_need_nothing() {
        let n = node(&[
            (OS, "linux"),
            (BETA_OS, "linux"),
            (ARCH, "amd64"),
            (BETA_ARCH, "amd64"),
        ]);
        assert_eq!(beta_label_updates(&n), None);
    }

    #[test]
    fn a_node_without_labels_needs_nothing() {
        assert_eq!(beta_label_updates(&Node::default()), None);
        assert_eq!(beta_label_updates(&node(&[])), None);
    }

    #[test]
    fn without_a_stable_label_the_beta_one_is_left_alone() {
        let n = node(&[(BETA_OS, "linux"), (BETA_ARCH, "amd64"), ("other", "x")]);
        assert_eq!(beta_label_updates(&n), None);
    }

    #[test]
    fn an_empty_stable_value_is_still_copied() {
        let n = node(&[(OS, "")]);
        assert_eq!(beta_label_updates(&n), Some(map(&[(BETA_OS, "")])));
    }
}
