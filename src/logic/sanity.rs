//! Checks that the controller's inputs make sense before it trusts them to mark nodes Unknown.
//!
//! A wrong `--node-lease-namespace` looks, to the health rules, exactly like every kubelet
//! dying at once: no node has a Lease, so each is judged on its Node status heartbeat alone,
//! which a kubelet with a Lease posts only every few minutes. Marking them all Unknown would
//! empty every Service's endpoints. Every kubelet since Kubernetes 1.17 renews a Lease, so a
//! cluster where nodes exist and not one of them has a Lease is taken for a misconfiguration.

use super::time;
use super::view::ClusterView;
use jiff::Timestamp;
use std::time::Duration;

/// The "no node has a Lease" check over time.
///
/// While it holds, the monitor pass marks nothing Unknown (as when a watch may be stale). It is
/// reported as a suspected misconfiguration once it has held for a whole grace period, so a
/// node that registers a moment before its kubelet creates its Lease raises no alarm.
#[derive(Clone, Debug, Default)]
pub struct LeaseCheck {
    /// Since when no node has had a Lease (`None`: some node has one, or there are no nodes).
    blind_since: Option<Timestamp>,
    /// Whether the suspicion has been reported (so it is reported once per episode).
    reported: bool,
}

/// The verdict of one check.
#[derive(Clone, Debug, PartialEq)]
pub struct LeaseVerdict {
    /// Hold back Unknown marking: no node has a Lease.
    pub hold: bool,
    /// The suspicion, once it has lasted a grace period: what to tell the operator.
    pub suspected: Option<String>,
    /// The suspicion started (`Some(true)`) or ended (`Some(false)`) with this check.
    pub changed: Option<bool>,
}

/// Whether at least one node has a Lease of the same name in the cache.
pub fn some_node_has_a_lease<P>(view: &ClusterView<P>) -> bool {
    // Walk the smaller map and look names up in the other: at 10k nodes either is cheap, and
    // in the normal case the first name hits.
    if view.leases.len() <= view.nodes.len() {
        view.leases.keys().any(|name| view.nodes.contains_key(name))
    } else {
        view.nodes.keys().any(|name| view.leases.contains_key(name))
    }
}

impl LeaseCheck {
    /// Whether a suspicion is reported and not yet over.
    pub fn reported(&self) -> bool {
        self.reported
    }

    /// Judges the cached view at `now`; `namespace` names `--node-lease-namespace` in the message.
    pub fn judge<P>(
        &mut self,
        view: &ClusterView<P>,
        now: Timestamp,
        grace: Duration,
        namespace: &str,
    ) -> LeaseVerdict {
        let blind = !view.nodes.is_empty() && !some_node_has_a_lease(view);
        if !blind {
            let changed = self.reported.then_some(false);
            *self = LeaseCheck::default();
            return LeaseVerdict {
                hold: false,
                suspected: None,
                changed,
            };
        }
        let since = *self.blind_since.get_or_insert(now);
        let lasted = time::since(now, since) >= grace;
        let suspected = lasted.then(|| {
            format!(
                "none of the {} nodes has a Lease in namespace {namespace:?} (for {}): is \
                 --node-lease-namespace right? Kubelets renew theirs in kube-node-lease. \
                 Nothing is marked Unknown until a node's Lease is seen",
                view.nodes.len(),
                humantime::format_duration(Duration::from_secs(time::since(now, since).as_secs())),
            )
        });
        let changed = (lasted && !self.reported).then_some(true);
        self.reported |= lasted;
        LeaseVerdict {
            hold: true,
            suspected,
            changed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::core::v1::Node;

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs as i64).unwrap()
    }

    fn view(nodes: &[&str], leases: &[&str]) -> ClusterView<()> {
        let mut v = ClusterView::default();
        for n in nodes {
            let mut node = Node::default();
            node.metadata.name = Some(n.to_string());
            v.nodes.insert(n.to_string(), node);
        }
        for l in leases {
            let mut lease = Lease::default();
            lease.metadata.name = Some(l.to_string());
            v.leases.insert(l.to_string(), lease);
        }
        v
    }

    const GRACE: Duration = Duration::from_secs(50);

    #[test]
    fn a_cluster_whose_nodes_have_leases_is_trusted() {
        let mut c = LeaseCheck::default();
        let v = view(&["a", "b", "c"], &["b"]);
        let verdict = c.judge(&v, at(0), GRACE, "kube-node-lease");
        assert!(!verdict.hold);
        assert_eq!(verdict.suspected, None);
    }

    #[test]
    fn leases_of_other_names_do_not_count() {
        let mut c = LeaseCheck::default();
        let v = view(&["a", "b"], &["x", "y", "z"]);
        assert!(c.judge(&v, at(0), GRACE, "ns").hold);
    }

    #[test]
    fn an_empty_cluster_is_not_suspicious() {
        let mut c = LeaseCheck::default();
        assert!(!c.judge(&view(&[], &[]), at(0), GRACE, "ns").hold);
    }

    #[test]
    fn no_lease_at_all_holds_back_at_once_but_is_reported_only_after_a_grace_period() {
        let mut c = LeaseCheck::default();
        let v = view(&["a", "b"], &[]);
        let first = c.judge(&v, at(0), GRACE, "kube-node-leases");
        assert!(first.hold);
        assert_eq!(first.suspected, None);
        assert_eq!(first.changed, None);
        assert_eq!(
            c.judge(&v, at(49), GRACE, "kube-node-leases").suspected,
            None
        );

        let reported = c.judge(&v, at(50), GRACE, "kube-node-leases");
        assert!(reported.hold);
        assert_eq!(reported.changed, Some(true));
        let message = reported.suspected.unwrap();
        assert!(message.contains("none of the 2 nodes"), "{message}");
        assert!(message.contains("\"kube-node-leases\""), "{message}");
        assert!(message.contains("--node-lease-namespace"), "{message}");

        let later = c.judge(&v, at(60), GRACE, "kube-node-leases");
        assert_eq!(later.changed, None, "reported once per episode");
        assert!(later.suspected.is_some());
    }

    #[test]
    fn the_first_lease_ends_the_suspicion_and_says_so_once() {
        let mut c = LeaseCheck::default();
        c.judge(&view(&["a"], &[]), at(0), GRACE, "ns");
        c.judge(&view(&["a"], &[]), at(60), GRACE, "ns");
        let cleared = c.judge(&view(&["a"], &["a"]), at(61), GRACE, "ns");
        assert!(!cleared.hold);
        assert_eq!(cleared.changed, Some(false));
        assert_eq!(
            c.judge(&view(&["a"], &["a"]), at(62), GRACE, "ns").changed,
            None
        );
        // A new episode waits a whole grace period again.
        assert_eq!(
            c.judge(&view(&["a"], &[]), at(70), GRACE, "ns").suspected,
            None
        );
    }

    #[test]
    fn a_short_gap_ends_without_a_report() {
        let mut c = LeaseCheck::default();
        c.judge(&view(&["a"], &[]), at(0), GRACE, "ns");
        let back = c.judge(&view(&["a"], &["a"]), at(5), GRACE, "ns");
        assert_eq!(back.changed, None);
    }
}
