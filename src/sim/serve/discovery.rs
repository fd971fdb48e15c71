//! Discovery, as kube-apiserver answers it (the legacy, unaggregated documents): `/api`,
//! `/api/v1`, `/apis`, `/apis/{group}` and `/apis/{group}/v1`, listing exactly the resources
//! and verbs served, so that discovery clients (`kubectl --kubeconfig FILE get nodes`,
//! `kube::Discovery`) work against the simulated cluster.

use serde_json::{Value, json};

/// The API groups served, each at version v1 only.
const GROUPS: &[&str] = &[
    "coordination.k8s.io",
    "policy",
    "events.k8s.io",
    "authorization.k8s.io",
];

/// One APIResource: `name` (with `/subresource`), namespaced, kind, verbs, short names.
fn resource(
    name: &str,
    namespaced: bool,
    kind: &str,
    verbs: &[&str],
    short_names: &[&str],
) -> Value {
    let mut r = json!({
        "name": name,
        "singularName": if name.contains('/') { "" } else { kind_singular(kind) },
        "namespaced": namespaced,
        "kind": kind,
        "verbs": verbs,
    });
    if !short_names.is_empty() {
        r["shortNames"] = json!(short_names);
    }
    r
}

fn kind_singular(kind: &str) -> &'static str {
    match kind {
        "Node" => "node",
        "Pod" => "pod",
        "Lease" => "lease",
        "Event" => "event",
        "SelfSubjectAccessReview" => "selfsubjectaccessreview",
        "PodDisruptionBudget" => "poddisruptionbudget",
        _ => "",
    }
}

/// `GET /api`.
pub(super) fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    })
}

/// `GET /api/v1`.
pub(super) fn core_v1() -> Value {
    let mut eviction = resource("pods/eviction", true, "Eviction", &["create"], &[]);
    eviction["group"] = "policy".into();
    eviction["version"] = "v1".into();
    resource_list(
        "v1",
        vec![
            resource(
                "nodes",
                false,
                "Node",
                &["get", "list", "update", "watch"],
                &["no"],
            ),
            resource("nodes/status", false, "Node", &["get", "update"], &[]),
            {
                let mut pods = resource(
                    "pods",
                    true,
                    "Pod",
                    &["delete", "get", "list", "watch"],
                    &["po"],
                );
                pods["categories"] = json!(["all"]);
                pods
            },
            eviction,
            resource("pods/status", true, "Pod", &["get", "update"], &[]),
        ],
    )
}

fn group_version(group: &str) -> Value {
    json!({"groupVersion": format!("{group}/v1"), "version": "v1"})
}

fn group(group: &str) -> Value {
    json!({
        "name": group,
        "versions": [group_version(group)],
        "preferredVersion": group_version(group),
    })
}

/// `GET /apis`.
pub(super) fn api_groups() -> Value {
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": GROUPS.iter().map(|g| group(g)).collect::<Vec<_>>(),
    })
}

/// `GET /apis/{group}`, or `None` for a group not served.
pub(super) fn api_group(name: &str) -> Option<Value> {
    GROUPS.contains(&name).then(|| {
        let mut g = group(name);
        g["kind"] = "APIGroup".into();
        g["apiVersion"] = "v1".into();
        g
    })
}

/// `GET /apis/{group}/v1`, or `None` for a group not served.
pub(super) fn group_v1(name: &str) -> Option<Value> {
    let resources = match name {
        "coordination.k8s.io" => vec![resource(
            "leases",
            true,
            "Lease",
            &["create", "get", "list", "update", "watch"],
            &[],
        )],
        // Evictions are served as the pods/eviction subresource of the core group. Budgets
        // come from the scenario and are only listed (for `simulate --from-cluster`).
        "policy" => vec![resource(
            "poddisruptionbudgets",
            true,
            "PodDisruptionBudget",
            &["list"],
            &["pdb"],
        )],
        "events.k8s.io" => vec![resource("events", true, "Event", &["create"], &["ev"])],
        "authorization.k8s.io" => vec![resource(
            "selfsubjectaccessreviews",
            false,
            "SelfSubjectAccessReview",
            &["create"],
            &[],
        )],
        _ => return None,
    };
    Some(resource_list(&format!("{name}/v1"), resources))
}

fn resource_list(group_version: &str, resources: Vec<Value>) -> Value {
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    })
}
