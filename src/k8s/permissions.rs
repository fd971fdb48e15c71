//! A start-up check of the RBAC permissions the controller needs, so that a missing verb is
//! reported once, clearly (verb, resource, namespace), instead of as a stream of 403s.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};

/// One permission: verb on group/resource(/subresource), in a namespace or cluster-wide.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permission {
    pub verb: &'static str,
    pub group: &'static str,
    pub resource: &'static str,
    pub subresource: Option<&'static str>,
    /// `None`: cluster-wide.
    pub namespace: Option<String>,
    /// The one object the call is about, when RBAC may grant it by name (`resourceNames`): the
    /// review must name it, or a grant limited to it reads as a refusal.
    pub name: Option<String>,
    /// The code path that needs it.
    pub why: &'static str,
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut resource = match self.subresource {
            Some(sub) => format!("{}/{}", self.resource, sub),
            None => self.resource.to_string(),
        };
        if let Some(name) = &self.name {
            resource = format!("{resource} {name:?}");
        }
        let group = if self.group.is_empty() {
            String::new()
        } else {
            format!(".{}", self.group)
        };
        match &self.namespace {
            Some(ns) => write!(
                f,
                "{} {}{} in namespace {} ({})",
                self.verb, resource, group, ns, self.why
            ),
            None => write!(
                f,
                "{} {}{} cluster-wide ({})",
                self.verb, resource, group, self.why
            ),
        }
    }
}

/// Every permission the controller uses with these settings.
/// `leader`: the leader-election Lease's namespace and name; `secure_serving`: whether the
/// secure port (`--secure-address`) authenticates and authorizes its scrapers.
pub fn required(
    node_lease_namespace: &str,
    leader: Option<(&str, &str)>,
    evict: bool,
    secure_serving: bool,
) -> Vec<Permission> {
    let p = |verb, group, resource, subresource, namespace: Option<&str>, why| Permission {
        verb,
        group,
        resource,
        subresource,
        namespace: namespace.map(str::to_string),
        name: None,
        why,
    };
    let mut all = vec![
        p("list", "", "nodes", None, None, "node cache"),
        p("watch", "", "nodes", None, None, "node cache"),
        p(
            "get",
            "",
            "nodes",
            None,
            None,
            "fresh read before each node write",
        ),
        p("patch", "", "nodes", None, None, "taints and beta labels"),
        p(
            "patch",
            "",
            "nodes",
            Some("status"),
            None,
            "marking conditions Unknown",
        ),
        p("list", "", "pods", None, None, "pod cache"),
        p("watch", "", "pods", None, None, "pod cache"),
        p("get", "", "pods", None, None, "re-check before eviction"),
        p(
            "patch",
            "",
            "pods",
            Some("status"),
            None,
            "Ready=False and DisruptionTarget",
        ),
        p("delete", "", "pods", None, None, "taint eviction"),
        p(
            "list",
            "coordination.k8s.io",
            "leases",
            None,
            Some(node_lease_namespace),
            "node heartbeats",
        ),
        p(
            "watch",
            "coordination.k8s.io",
            "leases",
            None,
            Some(node_lease_namespace),
            "node heartbeats",
        ),
        p(
            "get",
            "coordination.k8s.io",
            "leases",
            None,
            Some(node_lease_namespace),
            "fresh read of a node's Lease before marking it Unknown",
        ),
        p("create", "events.k8s.io", "events", None, None, "Events"),
        p(
            "patch",
            "events.k8s.io",
            "events",
            None,
            None,
            "repeated Events",
        ),
    ];
    if evict {
        all.push(p(
            "create",
            "",
            "pods",
            Some("eviction"),
            None,
            "--eviction-mode=evict",
        ));
    }
    if secure_serving {
        all.push(p(
            "create",
            "authentication.k8s.io",
            "tokenreviews",
            None,
            None,
            "--secure-address: authenticating /metrics scrapers",
        ));
        all.push(p(
            "create",
            "authorization.k8s.io",
            "subjectaccessreviews",
            None,
            None,
            "--secure-address: authorizing /metrics scrapers",
        ));
    }
    if let Some((ns, name)) = leader {
        for verb in ["get", "create", "update"] {
            let mut lease = p(
                verb,
                "coordination.k8s.io",
                "leases",
                None,
                Some(ns),
                "leader election",
            );
            // Create cannot be limited to a name (the object does not exist yet when RBAC is
            // asked); get and update of the one Lease can, and the chart grants them so.
            if verb != "create" {
                lease.name = Some(name.to_string());
            }
            all.push(lease);
        }
    }
    all
}

/// The permissions the API server says this identity lacks. Errors of the review itself are
/// returned as `Err` (the caller may then just go on and let the calls speak for themselves).
pub async fn missing(
    client: &kube::Client,
    wanted: &[Permission],
) -> Result<Vec<Permission>, kube::Error> {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let mut missing = Vec::new();
    for w in wanted {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(w.verb.to_string()),
                    group: Some(w.group.to_string()),
                    resource: Some(w.resource.to_string()),
                    subresource: w.subresource.map(str::to_string),
                    namespace: w.namespace.clone(),
                    name: w.name.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let answer = api.create(&PostParams::default(), &review).await?;
        if !answer.status.is_some_and(|s| s.allowed) {
            missing.push(w.clone());
        }
    }
    Ok(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eviction_and_leader_permissions_are_required_only_when_used() {
        let base = required("kube-node-lease", None, false, false);
        assert!(!base.iter().any(|p| p.subresource == Some("eviction")));
        assert!(!base.iter().any(|p| p.why == "leader election"));
        let full = required("kube-node-lease", Some(("kube-system", "nlc")), true, false);
        assert!(full.iter().any(|p| p.subresource == Some("eviction")));
        assert_eq!(
            full.iter().filter(|p| p.why == "leader election").count(),
            3
        );
    }

    #[test]
    fn the_leader_lease_is_named_for_get_and_update_but_not_for_create() {
        let all = required(
            "kube-node-lease",
            Some(("kube-system", "nlc")),
            false,
            false,
        );
        let named: Vec<(&str, Option<&str>)> = all
            .iter()
            .filter(|p| p.why == "leader election")
            .map(|p| (p.verb, p.name.as_deref()))
            .collect();
        assert_eq!(
            named,
            [
                ("get", Some("nlc")),
                ("create", None),
                ("update", Some("nlc"))
            ]
        );
    }

    #[test]
    fn a_permission_reads_as_verb_resource_and_scope() {
        let p = &required("kube-node-lease", None, false, false)[3];
        assert_eq!(
            p.to_string(),
            "patch nodes cluster-wide (taints and beta labels)"
        );
        let lease = required("kube-node-lease", None, false, false)
            .into_iter()
            .find(|p| p.resource == "leases")
            .unwrap();
        assert_eq!(
            lease.to_string(),
            "list leases.coordination.k8s.io in namespace kube-node-lease (node heartbeats)"
        );
    }

    #[test]
    fn token_and_access_reviews_are_required_only_with_secure_serving() {
        let reviews = |secure| {
            required("kube-node-lease", None, false, secure)
                .into_iter()
                .filter(|p| p.resource.ends_with("reviews"))
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
        };
        assert!(reviews(false).is_empty());
        assert_eq!(
            reviews(true),
            [
                "create tokenreviews.authentication.k8s.io cluster-wide (--secure-address: \
                 authenticating /metrics scrapers)",
                "create subjectaccessreviews.authorization.k8s.io cluster-wide \
                 (--secure-address: authorizing /metrics scrapers)"
            ]
        );
    }
}
