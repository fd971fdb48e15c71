//! Read-only views of the monitor's memory, for `status` and `explain` (`logic::explain`).
//! Nothing here changes what the passes decide.

use super::{Monitor, decided_ready};
use crate::logic::conditions::ConditionStatus;
use crate::logic::health::NodeSummary;
use crate::logic::rate_limit::ZoneQueue;
use crate::logic::zones::ZoneState;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Node;

impl Monitor {
    /// Every zone (raw key), its state and its tainting queue, in key order.
    pub fn zones(&self) -> impl Iterator<Item = (&str, ZoneState, &ZoneQueue)> {
        self.zones
            .iter()
            .map(|(key, z)| (key.as_str(), z.state, &z.queue))
    }

    /// Whether the `--max-unhealthy-fraction` breaker is open, with what the last pass
    /// counted: nodes not Ready, all nodes counted.
    pub fn breaker(&self) -> (bool, usize, usize) {
        let (not_ready, counted, _) = self.breaker_counts;
        (self.breaker_open, not_ready, counted)
    }

    /// Whether every zone is fully disrupted (no NoExecute taint is added anywhere).
    pub fn all_zones_down(&self) -> bool {
        self.all_zones_down
    }

    /// The node's Ready status as the controller decided it: Unknown once it marked it so,
    /// even before that write shows in the cache.
    pub fn decided_ready(&self, node: &Node) -> Option<ConditionStatus> {
        let name = node.metadata.name.as_deref().unwrap_or_default();
        decided_ready(self.marked_unknown.get(name), &NodeSummary::of(node))
    }

    /// Whether the node carries our NoExecute taint `key`, counting one asked for in the last
    /// few seconds as there.
    pub fn has_no_execute(&self, node: &Node, key: &str, now: Timestamp) -> bool {
        let name = node.metadata.name.as_deref().unwrap_or_default();
        self.has_taint(name, &NodeSummary::of(node), key, now)
    }
}
