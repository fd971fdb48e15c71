//! Zones: keys, disruption states and the eviction rate each state allows.

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
    todo!("{node:?}")
}

/// A zone key as people read it: `zone`, `region/zone`, `region/`, or `""`.
pub fn display(zone_key: &str) -> String {
    todo!("{zone_key}")
}

/// Whether the node is excluded from zone health (`node.kubernetes.io/exclude-disruption`).
pub fn excluded(node: &Node) -> bool {
    todo!("{node:?}")
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
pub fn compute_zone_state(ready: &[Option<&str>], unhealthy_zone_threshold: f64) -> (usize, ZoneState) {
    todo!("{ready:?} {unhealthy_zone_threshold}")
}

/// The tainting rate (nodes/second) for a zone in `state` with `zone_size` counted nodes, when
/// not every zone is fully disrupted: Normal and Full -> node-eviction-rate; Partial ->
/// secondary rate when `zone_size > large-cluster-size-threshold`, else 0. `Initial` -> `None`
/// (the limiter is left as it is).
pub fn rate_for(state: ZoneState, zone_size: usize, settings: &Settings) -> Option<f64> {
    todo!("{state:?} {zone_size} {settings:?}")
}
