//! `status` and `explain pod|node|zone` when no controller answers: the answer worked out from
//! the cluster's objects (every Node; the pods of the one node asked about, or every pod for
//! `status`) by the decision core itself
//! (`logic::explain::gather::replay`), with the controller's default settings, and marked
//! `source: ClusterState`, `role: NotReached`.

use super::{Asked, ExplainError};
use crate::config::explain::Subject;
use crate::logic::explain::gather::{self, Sources};
use crate::logic::explain::{
    Envelope, NodeReport, PodReport, Role, Source, StatusReport, ZoneReport,
};
use crate::logic::freshness::Guard;
use crate::logic::pod::PodFacts;
use crate::logic::view::ClusterView;
use crate::settings::Settings;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::ListParams;

fn listing(what: &'static str) -> impl Fn(kube::Error) -> ExplainError {
    move |source| ExplainError::Listing { what, source }
}

/// (HTTP-like status, the answer's JSON): 200, or 404 when the pod, node or zone does not
/// exist.
pub async fn answer(
    client: &kube::Client,
    asked: &Asked,
    leader: Option<String>,
) -> Result<(u16, String), ExplainError> {
    let now = jiff::Timestamp::now();
    let about = match asked {
        Asked::About(subject) => Some(subject),
        Asked::Status { .. } => None,
    };
    // The pod asked about, and the node whose pods are read (`None`: every pod, for `status`;
    // none at all for a zone).
    let (pod, node_name) = match about {
        Some(Subject::Pod { pod }) => {
            let (namespace, name) = pod.split_once('/').unwrap_or(("default", pod));
            let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
            let found = pods.get_opt(name).await.map_err(listing("the pod"))?;
            let node = found
                .as_ref()
                .and_then(|p| p.spec.as_ref()?.node_name.clone());
            (Some(found), node)
        }
        Some(Subject::Node { name }) => (None, Some(name.clone())),
        // A zone's state and queue come from its nodes alone.
        Some(Subject::Zone { .. }) | None => (None, None),
    };
    let mut view: ClusterView<Vec<Pod>> = ClusterView::default();
    let nodes: Api<Node> = Api::all(client.clone());
    for node in nodes
        .list(&ListParams::default())
        .await
        .map_err(listing("nodes"))?
        .items
    {
        if let Some(name) = node.metadata.name.clone() {
            view.nodes.insert(name, node);
        }
    }
    let pods: Api<Pod> = Api::all(client.clone());
    if let Some(node) = &node_name {
        let on_node = ListParams::default().fields(&format!("spec.nodeName={node}"));
        view.pods = pods.list(&on_node).await.map_err(listing("pods"))?.items;
    } else if about.is_none() {
        view.pods = pods
            .list(&ListParams::default())
            .await
            .map_err(listing("pods"))?
            .items;
    }
    let settings = Settings::default();
    let (monitor, taint_manager) = gather::replay(&view, now, &settings);
    let controller = gather::controller(
        Role::NotReached { leader },
        &settings,
        &Guard::default(),
        true,
        &monitor,
    );
    let sources = Sources {
        view: &view,
        monitor: &monitor,
        taint_manager: &taint_manager,
        controller: &controller,
    };
    let at_source = Source::ClusterState;
    let (json, found) = match asked {
        Asked::Status { horizon } => {
            let mut report: StatusReport = sources.status(now, *horizon);
            report.deletions = sources.deletions_by_answers(now, *horizon);
            let envelope = Envelope::new(at_source, now, controller.clone(), report);
            (serde_json::to_string_pretty(&envelope), true)
        }
        Asked::About(Subject::Pod { .. }) => {
            let pod = pod.flatten();
            let facts = pod.as_ref().map(PodFacts::from);
            let report: PodReport = sources.pod(facts.as_ref(), now);
            let found = report.pod.is_some();
            let envelope = Envelope::new(at_source, now, controller.clone(), report);
            (serde_json::to_string_pretty(&envelope), found)
        }
        Asked::About(Subject::Node { name }) => {
            let report: NodeReport = sources.node(name, now);
            let found = report.node.is_some();
            let envelope = Envelope::new(at_source, now, controller.clone(), report);
            (serde_json::to_string_pretty(&envelope), found)
        }
        Asked::About(Subject::Zone { name }) => {
            let report: ZoneReport = sources.zone(name, now);
            let found = report.zone.is_some();
            let envelope = Envelope::new(at_source, now, controller.clone(), report);
            (serde_json::to_string_pretty(&envelope), found)
        }
    };
    let json = json.map_err(ExplainError::Decode)? + "\n";
    Ok((if found { 200 } else { 404 }, json))
}
