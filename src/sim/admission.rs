//! The API server's admission of a pod's tolerations: Kubernetes' DefaultTolerationSeconds
//! plugin and the tolerations the DaemonSet controller gives its pods.

use crate::logic::taints::{NO_EXECUTE, NOT_READY, UNREACHABLE};
use k8s_openapi::api::core::v1::Toleration;

/// The tolerations a pod is stored with: `declared`, then the DaemonSet controller's (for a
/// DaemonSet pod) or DefaultTolerationSeconds' (`None`: the plugin is off).
pub fn admit_tolerations(
    declared: &[Toleration],
    daemonset: bool,
    default_toleration_seconds: Option<i64>,
) -> Vec<Toleration> {
    let mut tolerations = declared.to_vec();
    for key in [NOT_READY, UNREACHABLE] {
        let ours = Toleration {
            key: Some(key.to_string()),
            operator: Some("Exists".to_string()),
            effect: Some(NO_EXECUTE.to_string()),
            ..Toleration::default()
        };
        if daemonset {
            // AddOrUpdateTolerationInPodSpec: replace an equal one (ignoring seconds), else append.
            let same = |t: &Toleration| {
                t.key == ours.key
                    && t.operator.as_deref().unwrap_or("Equal") == "Exists"
                    && t.effect == ours.effect
                    && t.value.as_deref().unwrap_or("").is_empty()
            };
            match tolerations.iter_mut().find(|t| same(t)) {
                Some(existing) => *existing = ours,
                None => tolerations.push(ours),
            }
        } else if let Some(seconds) = default_toleration_seconds
            && !tolerations.iter().any(|t| names_for_admission(t, key))
        {
            tolerations.push(Toleration {
                toleration_seconds: Some(seconds),
                ..ours
            });
        }
    }
    tolerations
}

/// Whether the DefaultTolerationSeconds plugin takes `t` as the pod's own toleration of
/// `key:NoExecute`: its key is that key or empty, its effect NoExecute or empty. Its operator,
/// value and seconds do not count, so an `Equal` toleration of another value keeps the
/// default away although it does not tolerate the taint.
fn names_for_admission(t: &Toleration, key: &str) -> bool {
    let key_matches = t.key.as_deref().is_none_or(|k| k.is_empty() || k == key);
    let effect_matches = t
        .effect
        .as_deref()
        .is_none_or(|e| e.is_empty() || e == NO_EXECUTE);
    key_matches && effect_matches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toleration(key: &str, operator: &str, effect: &str, seconds: Option<i64>) -> Toleration {
        Toleration {
            key: (!key.is_empty()).then(|| key.to_string()),
            operator: Some(operator.to_string()),
            effect: (!effect.is_empty()).then(|| effect.to_string()),
            toleration_seconds: seconds,
            value: None,
        }
    }

    #[test]
    fn admission_adds_the_default_tolerations_only_where_none_names_the_taint() {
        let added = admit_tolerations(&[], false, Some(300));
        assert_eq!(
            added,
            vec![
                toleration(
                    "node.kubernetes.io/not-ready",
                    "Exists",
                    "NoExecute",
                    Some(300)
                ),
                toleration(
                    "node.kubernetes.io/unreachable",
                    "Exists",
                    "NoExecute",
                    Some(300)
                ),
            ]
        );
        let own = vec![toleration(
            "node.kubernetes.io/unreachable",
            "Exists",
            "NoExecute",
            Some(30),
        )];
        let added = admit_tolerations(&own, false, Some(300));
        assert_eq!(added.len(), 2);
        assert_eq!(
            added[1].key.as_deref(),
            Some("node.kubernetes.io/not-ready")
        );
        let everything = vec![toleration("", "Exists", "", None)];
        assert_eq!(admit_tolerations(&everything, false, Some(300)), everything);
        assert!(admit_tolerations(&[], false, None).is_empty());
    }

    #[test]
    fn daemonset_pods_tolerate_both_taints_forever() {
        let own = vec![toleration(
            "node.kubernetes.io/unreachable",
            "Exists",
            "NoExecute",
            Some(30),
        )];
        let added = admit_tolerations(&own, true, Some(300));
        assert_eq!(
            added,
            vec![
                toleration(
                    "node.kubernetes.io/unreachable",
                    "Exists",
                    "NoExecute",
                    None
                ),
                toleration("node.kubernetes.io/not-ready", "Exists", "NoExecute", None),
            ]
        );
    }

    const NR: &str = "node.kubernetes.io/not-ready";
    const UR: &str = "node.kubernetes.io/unreachable";

    fn with_value(mut t: Toleration, value: &str) -> Toleration {
        t.value = Some(value.to_string());
        t
    }

    /// Which default tolerations admission adds to a pod declaring only `t`: (not-ready,
    /// unreachable).
    fn defaults_added(t: Toleration) -> (bool, bool) {
        let admitted = admit_tolerations(std::slice::from_ref(&t), false, Some(300));
        assert_eq!(admitted[0], t, "the declared toleration is kept as it is");
        let added = |key: &str| {
            admitted[1..]
                .iter()
                .any(|a| *a == toleration(key, "Exists", "NoExecute", Some(300)))
        };
        assert_eq!(
            admitted.len(),
            1 + usize::from(added(NR)) + usize::from(added(UR))
        );
        (added(NR), added(UR))
    }

    #[test]
    fn an_equal_toleration_of_another_value_keeps_the_default_away_as_the_real_plugin_does() {
        // The finding: the pod does not tolerate `unreachable` (no value), yet the
        // plugin sees a toleration of that key and effect and adds nothing for it.
        let t = with_value(toleration(UR, "Equal", "NoExecute", None), "x");
        assert_eq!(defaults_added(t), (true, false));
        let t = with_value(toleration(NR, "Equal", "NoExecute", Some(30)), "x");
        assert_eq!(defaults_added(t), (false, true));
    }

    #[test]
    fn an_empty_key_stands_for_both_keys_and_an_empty_effect_for_noexecute() {
        assert_eq!(
            defaults_added(toleration("", "Exists", "", None)),
            (false, false)
        );
        assert_eq!(
            defaults_added(toleration("", "Exists", "NoExecute", None)),
            (false, false)
        );
        assert_eq!(
            defaults_added(toleration(UR, "Exists", "", None)),
            (true, false)
        );
        assert_eq!(
            defaults_added(toleration(NR, "Exists", "", Some(5))),
            (false, true)
        );
    }

    #[test]
    fn another_effect_or_another_key_does_not_count() {
        for effect in ["NoSchedule", "PreferNoSchedule"] {
            assert_eq!(
                defaults_added(toleration(UR, "Exists", effect, None)),
                (true, true)
            );
            assert_eq!(
                defaults_added(toleration("", "Exists", effect, None)),
                (true, true)
            );
        }
        assert_eq!(
            defaults_added(toleration("example.com/other", "Exists", "NoExecute", None)),
            (true, true)
        );
        assert_eq!(
            defaults_added(toleration("example.com/other", "Exists", "", None)),
            (true, true)
        );
    }

    #[test]
    fn the_operator_the_value_and_the_seconds_do_not_count() {
        for operator in ["Exists", "Equal"] {
            for value in [None, Some(""), Some("x")] {
                for seconds in [None, Some(0), Some(-5), Some(30)] {
                    let mut t = toleration(UR, operator, "NoExecute", seconds);
                    t.value = value.map(str::to_string);
                    assert_eq!(defaults_added(t.clone()), (true, false), "{t:?}");
                }
            }
        }
        let mut no_operator = toleration(UR, "Equal", "NoExecute", None);
        no_operator.operator = None;
        assert_eq!(defaults_added(no_operator), (true, false));
    }

    #[test]
    fn an_absent_key_or_effect_is_an_empty_one() {
        let t = Toleration {
            operator: Some("Exists".into()),
            ..Toleration::default()
        };
        assert_eq!(defaults_added(t), (false, false));
        let t = Toleration {
            key: Some(UR.into()),
            ..Toleration::default()
        };
        assert_eq!(defaults_added(t), (true, false));
    }
}
