//! Zones: keys, disruption states and the eviction rate each state allows.

use super::conditions::ConditionStatus;
use crate::settings::Settings;
use k8s_openapi::api::core::v1::Node;

pub const ZONE_BETA: &str = "failure-domain.beta.kubernetes.io/zone";
pub const ZONE_GA: &str = "topology.kubernetes.io/zone";
pub const REGION_BETA: &str = "failure-domain.beta.kubernetes.io/region";
pub const REGION_GA: &str = "topology.kubernetes.io/region";
/// Nodes with this label (any value) do not count in their zone's health.
pub const EXCLUDE_DISRUPTION: &str = "node.kubernetes.io/exclude-disruption";

/// Upstream's zone key: beta labels win when present (even empty); `""` when region and zone
/// are both empty, else `region + ":\x00:" + zone`.
pub fn zone_key(node: &Node) -> String {
    let labels = node.metadata.labels.as_ref();
    let pick = |beta: &str, ga: &str| -> String {
        labels
            .and_then(|l| l.get(beta).or_else(|| l.get(ga)))
            .cloned()
            .unwrap_or_default()
    };
    let zone = pick(ZONE_BETA, ZONE_GA);
    let region = pick(REGION_BETA, REGION_GA);
    if region.is_empty() && zone.is_empty() {
        String::new()
    } else {
        format!("{region}{KEY_SEPARATOR}{zone}")
    }
}

/// What separates region and zone inside a zone key (a NUL byte between colons).
pub const KEY_SEPARATOR: &str = ":\x00:";

/// A zone key as people read it: `zone`, `region/zone`, `region/`, or `""`.
pub fn display(zone_key: &str) -> String {
    match zone_key.split_once(KEY_SEPARATOR) {
        None => zone_key.to_string(),
        Some(("", zone)) => zone.to_string(),
        Some((region, "")) => format!("{region}/"),
        Some((region, zone)) => format!("{region}/{zone}"),
    }
}

/// Whether the node is excluded from zone health (`node.kubernetes.io/exclude-disruption`).
pub fn excluded(node: &Node) -> bool {
    node.metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(EXCLUDE_DISRUPTION))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ZoneState {
    Initial,
    Normal,
    PartialDisruption,
    FullDisruption,
}

impl ZoneState {
    pub fn as_str(self) -> &'static str {
        match self {
            ZoneState::Initial => "Initial",
            ZoneState::Normal => "Normal",
            ZoneState::PartialDisruption => "PartialDisruption",
            ZoneState::FullDisruption => "FullDisruption",
        }
    }
}

/// Upstream's `ComputeZoneState`: given each counted node's Ready status (`None` when it has no
/// Ready condition), returns the number not Ready (anything but `True`) and the state: no Ready
/// and some not Ready -> Full; more than 2 not Ready and a fraction >= threshold -> Partial;
/// else Normal.
pub fn compute_zone_state(
    ready: &[Option<ConditionStatus>],
    unhealthy_zone_threshold: f64,
) -> (usize, ZoneState) {
    let healthy = ready
        .iter()
        .filter(|r| **r == Some(ConditionStatus::True))
        .count();
    let not_ready = ready.len() - healthy;
    let state = if healthy == 0 && not_ready > 0 {
        ZoneState::FullDisruption
    } else if not_ready > 2 && not_ready as f64 / ready.len() as f64 >= unhealthy_zone_threshold {
        ZoneState::PartialDisruption
    } else {
        ZoneState::Normal
    };
    (not_ready, state)
}

/// The tainting rate (nodes/second) for a zone in `state` with `zone_size` counted nodes, when
/// not every zone is fully disrupted: Normal and Full -> node-eviction-rate; Partial ->
/// secondary rate when `zone_size > large-cluster-size-threshold`, else 0. `Initial` -> `None`
/// (the limiter is left as it is).
pub fn rate_for(state: ZoneState, zone_size: usize, settings: &Settings) -> Option<f64> {
    match state {
        ZoneState::Initial => None,
        ZoneState::Normal | ZoneState::FullDisruption => Some(settings.node_eviction_rate),
        ZoneState::PartialDisruption => {
            let large = u64::try_from(zone_size).unwrap_or(u64::MAX)
                > u64::from(settings.large_cluster_size_threshold);
            Some(if large {
                settings.secondary_node_eviction_rate
            } else {
                0.0
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::collections::BTreeMap;

    fn node(labels: &[(&str, &str)]) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some("n".to_string()),
                labels: if labels.is_empty() {
                    None
                } else {
                    Some(
                        labels
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect::<BTreeMap<_, _>>(),
                    )
                },
                ..ObjectMeta::default()
            },
            ..Node::default()
        }
    }

    #[test]
    fn a_node_without_topology_labels_has_the_empty_key() {
        assert_eq!(zone_key(&node(&[])), "");
        assert_eq!(zone_key(&node(&[("other", "x")])), "");
        assert_eq!(zone_key(&node(&[(ZONE_GA, ""), (REGION_GA, "")])), "");
    }

    #[test]
    fn the_key_joins_region_and_zone_with_a_nul_between_colons() {
        let n = node(&[(REGION_GA, "eu"), (ZONE_GA, "eu-1a")]);
        assert_eq!(zone_key(&n), "eu:\0:eu-1a");
    }

    #[test]
    fn a_zone_without_region_still_gets_the_separator() {
        assert_eq!(zone_key(&node(&[(ZONE_GA, "a")])), ":\0:a");
        assert_eq!(zone_key(&node(&[(REGION_GA, "r")])), "r:\0:");
    }

    #[test]
    fn beta_labels_win_over_ga_labels() {
        let n = node(&[
            (REGION_BETA, "rb"),
            (REGION_GA, "rg"),
            (ZONE_BETA, "zb"),
            (ZONE_GA, "zg"),
        ]);
        assert_eq!(zone_key(&n), "rb:\0:zb");
    }

    #[test]
    fn beta_zone_label_wins_even_when_empty() {
        let n = node(&[(ZONE_BETA, ""), (ZONE_GA, "zg"), (REGION_GA, "r")]);
        assert_eq!(zone_key(&n), "r:\0:");
        let n = node(&[(ZONE_BETA, ""), (ZONE_GA, "zg")]);
        assert_eq!(zone_key(&n), "");
    }

    #[test]
    fn beta_region_label_wins_even_when_empty() {
        let n = node(&[(REGION_BETA, ""), (REGION_GA, "rg"), (ZONE_GA, "z")]);
        assert_eq!(zone_key(&n), ":\0:z");
    }

    #[test]
    fn ga_labels_are_used_when_beta_labels_are_absent() {
        let n = node(&[(REGION_BETA, "rb"), (ZONE_GA, "zg")]);
        assert_eq!(zone_key(&n), "rb:\0:zg");
    }

    #[test]
    fn keys_display_as_people_read_them() {
        assert_eq!(display(""), "");
        assert_eq!(display(":\0:a"), "a");
        assert_eq!(display("r:\0:"), "r/");
        assert_eq!(display("r:\0:a"), "r/a");
    }

    #[test]
    fn a_key_without_separator_displays_as_it_is() {
        assert_eq!(display("plain"), "plain");
    }

    #[test]
    fn display_of_a_computed_key_round_trips_the_labels() {
        let n = node(&[(REGION_GA, "us-east"), (ZONE_GA, "us-east-1b")]);
        assert_eq!(display(&zone_key(&n)), "us-east/us-east-1b");
    }

    #[test]
    fn the_exclusion_label_excludes_whatever_its_value() {
        assert!(excluded(&node(&[(EXCLUDE_DISRUPTION, "")])));
        assert!(excluded(&node(&[(EXCLUDE_DISRUPTION, "false")])));
        assert!(!excluded(&node(&[])));
        assert!(!excluded(&node(&[(
            "node.kubernetes.io/exclude-from-external-load-balancers",
            ""
        )])));
    }

    #[test]
    fn an_empty_zone_is_normal() {
        assert_eq!(compute_zone_state(&[], 0.55), (0, ZoneState::Normal));
    }

    #[test]
    fn a_zone_with_no_ready_node_is_fully_disrupted() {
        assert_eq!(
            compute_zone_state(&[Some(ConditionStatus::False)], 0.55),
            (1, ZoneState::FullDisruption)
        );
        assert_eq!(
            compute_zone_state(
                &[
                    Some(ConditionStatus::Unknown),
                    None,
                    Some(ConditionStatus::False)
                ],
                0.55
            ),
            (3, ZoneState::FullDisruption)
        );
    }

    #[test]
    fn nodes_without_a_ready_condition_count_as_not_ready() {
        assert_eq!(
            compute_zone_state(&[None, Some(ConditionStatus::True)], 0.55),
            (1, ZoneState::Normal)
        );
        assert_eq!(
            compute_zone_state(&[None], 0.55),
            (1, ZoneState::FullDisruption)
        );
    }

    #[test]
    fn only_the_exact_status_true_counts_as_ready() {
        assert_eq!(
            compute_zone_state(
                &[Some(ConditionStatus::Other), Some(ConditionStatus::Other)],
                0.55
            ),
            (2, ZoneState::FullDisruption)
        );
    }

    #[test]
    fn partial_disruption_needs_more_than_two_unhealthy_nodes() {
        // 2 of 3 not ready: 67% >= 55% but only two.
        let two = [
            Some(ConditionStatus::False),
            Some(ConditionStatus::Unknown),
            Some(ConditionStatus::True),
        ];
        assert_eq!(compute_zone_state(&two, 0.55), (2, ZoneState::Normal));
        // 3 of 4 not ready: 75%.
        let three = [
            Some(ConditionStatus::False),
            Some(ConditionStatus::Unknown),
            None,
            Some(ConditionStatus::True),
        ];
        assert_eq!(
            compute_zone_state(&three, 0.55),
            (3, ZoneState::PartialDisruption)
        );
    }

    #[test]
    fn partial_disruption_needs_the_unhealthy_fraction_to_reach_the_threshold() {
        let mut ready = vec![Some(ConditionStatus::True); 7];
        ready.extend([Some(ConditionStatus::False); 3]);
        // 3/10 = 30%
        assert_eq!(compute_zone_state(&ready, 0.55), (3, ZoneState::Normal));
        assert_eq!(
            compute_zone_state(&ready, 0.3),
            (3, ZoneState::PartialDisruption)
        );
        assert_eq!(compute_zone_state(&ready, 0.31), (3, ZoneState::Normal));
    }

    #[test]
    fn a_fraction_exactly_at_the_threshold_is_partial() {
        let ready = [
            Some(ConditionStatus::True),
            Some(ConditionStatus::True),
            Some(ConditionStatus::True),
            None,
            None,
            None,
        ];
        assert_eq!(
            compute_zone_state(&ready, 0.5),
            (3, ZoneState::PartialDisruption)
        );
    }

    #[test]
    fn normal_and_fully_disrupted_zones_taint_at_the_eviction_rate() {
        let s = Settings::default();
        assert_eq!(rate_for(ZoneState::Normal, 3, &s), Some(0.1));
        assert_eq!(rate_for(ZoneState::FullDisruption, 3, &s), Some(0.1));
        assert_eq!(rate_for(ZoneState::FullDisruption, 500, &s), Some(0.1));
    }

    #[test]
    fn a_small_partially_disrupted_zone_stops_tainting() {
        let s = Settings::default();
        assert_eq!(rate_for(ZoneState::PartialDisruption, 10, &s), Some(0.0));
        assert_eq!(rate_for(ZoneState::PartialDisruption, 50, &s), Some(0.0));
    }

    #[test]
    fn a_partially_disrupted_zone_above_the_large_size_threshold_taints_at_the_secondary_rate() {
        let s = Settings::default();
        assert_eq!(rate_for(ZoneState::PartialDisruption, 51, &s), Some(0.01));
    }

    #[test]
    fn an_initial_zone_leaves_its_limiter_alone() {
        assert_eq!(rate_for(ZoneState::Initial, 10, &Settings::default()), None);
    }

    #[test]
    fn rates_follow_the_settings() {
        let s = Settings {
            node_eviction_rate: 2.5,
            secondary_node_eviction_rate: 0.5,
            large_cluster_size_threshold: 3,
            ..Settings::default()
        };
        assert_eq!(rate_for(ZoneState::Normal, 1, &s), Some(2.5));
        assert_eq!(rate_for(ZoneState::PartialDisruption, 4, &s), Some(0.5));
        assert_eq!(rate_for(ZoneState::PartialDisruption, 3, &s), Some(0.0));
    }

    #[test]
    fn states_have_their_upstream_names() {
        assert_eq!(ZoneState::Initial.as_str(), "Initial");
        assert_eq!(ZoneState::PartialDisruption.as_str(), "PartialDisruption");
    }
}
