//! `explain pod|node` when no controller answers: the answer worked out from the cluster's
//! objects (every Node, the pods of the one node asked about) by the decision core itself
//! (`logic::explain::gather::replay`), with the controller's default settings, and marked
//! `source: ClusterState`, `role: NotReached`.

use super::ExplainError;
use crate::config::explain::Subject;
use crate::logic::explain::gather::{self, Sources};
use crate::logic::explain::{Envelope, NodeReport, PodReport, Role, Source};
use crate::logic::freshness::Guard;
use crate::logic::pod::PodFacts;
use crate::logic::view::ClusterView;
use crate::settings::Settings;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::ListParams;

/// Whether a question about `about` can be answered without a controller.
pub fn answers(about: Option<&Subject>) -> bool {
    matches!(about, Some(Subject::Pod { .. } | Subject::Node { .. }))
}

fn listing(what: &'static str) -> impl Fn(kube::Error) -> ExplainError {
    move |source| ExplainError::Listing { what, source }
}

/// (HTTP-like status, the answer's JSON): 200, or 404 when the pod or node does not exist.
pub async fn answer(
    client: &kube::Client,
    about: Option<&Subject>,
    leader: Option<String>,
) -> Result<(u16, String), ExplainError> {
    let now = jiff::Timestamp::now();
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
        _ => return Err(ExplainError::Usage("only pods and nodes".into())),
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
    if let Some(node) = &node_name {
        let pods: Api<Pod> = Api::all(client.clone());
        let on_node = ListParams::default().fields(&format!("spec.nodeName={node}"));
        view.pods = pods.list(&on_node).await.map_err(listing("pods"))?.items;
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
    let (json, found) = match (pod, node_name) {
        (Some(pod), _) => {
            let facts = pod.as_ref().map(PodFacts::from);
            let report: PodReport = sources.pod(facts.as_ref(), now);
            let found = report.pod.is_some();
            let envelope = Envelope::new(Source::ClusterState, now, controller.clone(), report);
            (serde_json::to_string_pretty(&envelope), found)
        }
        (None, Some(node)) => {
            let report: NodeReport = sources.node(&node, now);
            let found = report.node.is_some();
            let envelope = Envelope::new(Source::ClusterState, now, controller.clone(), report);
            (serde_json::to_string_pretty(&envelope), found)
        }
        (None, None) => return Err(ExplainError::Usage("only pods and nodes".into())),
    };
    let json = json.map_err(ExplainError::Decode)? + "\n";
    Ok((if found { 200 } else { 404 }, json))
}
