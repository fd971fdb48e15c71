//! Routing and the non-watch endpoints of the served API.
//!
//! Served: `GET /version`; nodes (list, watch, get, PUT, PATCH, status get/PUT/PATCH); pods
//! (list and watch, all namespaces or one; get; status get/PUT/PATCH; DELETE with
//! UID/resourceVersion preconditions; policy/v1 eviction); coordination.k8s.io/v1 leases
//! (list, watch, create, get, PUT);
//! events.k8s.io/v1 events (create); authorization.k8s.io/v1 selfsubjectaccessreviews (create,
//! always allowed); discovery of those (`/api`, `/api/v1`, `/apis`, `/apis/{group}[/v1]`).
//! Anything else is 404 (unknown path) or 405 (known path, other verb).

use super::ServeOptions;
use super::discovery;
use super::pages::Pages;
use super::watch::{self, Listed, Served};
use crate::cluster::ApiError;
use crate::sim::store::{Origin, PatchKind, Store};
use crate::sim::timeline::EntryKind;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode, header};
use jiff::Timestamp;
use k8s_openapi::api::authorization::v1::{SelfSubjectAccessReview, SubjectAccessReviewStatus};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::api::policy::v1::Eviction;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, ObjectMeta, Time};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub(super) type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// Largest request body accepted.
const MAX_BODY: usize = 16 << 20;

const COORDINATION: &str = "coordination.k8s.io";

pub(crate) struct App {
    store: Store,
    options: ServeOptions,
    /// For the UIDs of created Events.
    counter: AtomicU64,
    /// Snapshots of paginated lists.
    pages: Pages,
    /// With `inject_conflicts`: the (write, object) pairs already answered with a conflict.
    conflicted: Mutex<BTreeSet<(Write, String)>>,
}

/// The kinds of writes `--inject-conflicts` answers 409 the first time, per object. A PUT and
/// a PATCH of the same object (or of its status) are one kind: the controller's patches took
/// the place of its PUTs, and count as they did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Write {
    /// PUT or PATCH of the object (metadata and spec).
    Object,
    /// PUT or PATCH of its status.
    Status,
    Delete,
    Eviction,
}

impl App {
    pub(crate) fn new(store: Store, options: ServeOptions) -> Self {
        App {
            store,
            options,
            counter: AtomicU64::new(0),
            pages: Pages::default(),
            conflicted: Mutex::new(BTreeSet::new()),
        }
    }

    /// `--inject-conflicts`: answers the first `write` to an existing object (`resource`
    /// "nodes" or "pods", `key` its name or ns/name) with a 409 Conflict, as kube-apiserver
    /// answers a write based on an outdated resourceVersion; nothing is applied.
    fn inject_conflict(
        &self,
        write: Write,
        resource: &str,
        key: &str,
        name: &str,
    ) -> Result<(), HttpError> {
        if !self.options.inject_conflicts {
            return Ok(());
        }
        let first = self
            .conflicted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((write, format!("{resource}/{key}")));
        if !first {
            return Ok(());
        }
        self.options
            .injected_conflicts
            .fetch_add(1, Ordering::Relaxed);
        tracing::info!(?write, resource, key, "injected a 409 Conflict");
        let mut error = HttpError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {resource} \"{name}\": the object has been \
                 modified; please apply your changes to the latest version and try again"
            ),
        );
        error.details = Some(serde_json::json!({ "name": name, "kind": resource }));
        Err(error)
    }
}

/// One refused request option, as a `metav1.StatusCause`.
#[derive(Debug)]
pub(super) struct FieldProblem {
    /// The query parameter (`resourceVersionMatch`).
    pub(super) field: &'static str,
    /// `FieldValueForbidden` or `FieldValueNotSupported`.
    pub(super) reason: &'static str,
    /// Upstream's text (`Forbidden: sendInitialEvents requires …`).
    pub(super) detail: String,
}

impl FieldProblem {
    pub(super) fn forbidden(field: &'static str, why: &str) -> Self {
        FieldProblem {
            field,
            reason: "FieldValueForbidden",
            detail: format!("Forbidden: {why}"),
        }
    }

    pub(super) fn not_supported(field: &'static str, value: &str, supported: &str) -> Self {
        FieldProblem {
            field,
            reason: "FieldValueNotSupported",
            detail: format!("Unsupported value: {value:?}: supported values: {supported:?}"),
        }
    }
}

/// An error answered as a `metav1.Status`.
#[derive(Debug)]
pub(super) struct HttpError {
    code: u16,
    reason: &'static str,
    message: String,
    /// The Status's `details` (name, kind), when known.
    details: Option<serde_json::Value>,
}

impl HttpError {
    pub(super) fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        HttpError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    pub(super) fn bad_request(message: impl Into<String>) -> Self {
        HttpError::new(400, "BadRequest", message)
    }

    /// kube-apiserver's 422 `Invalid` for request options (`apierrors.NewInvalid` on
    /// `ListOptions`): the message lists every problem as `field: detail`, bracketed when there
    /// are several, and `details.causes` names each field, so a client can tell which parameter
    /// was refused.
    pub(super) fn invalid_options(problems: &[FieldProblem]) -> Self {
        let errors: Vec<String> = problems
            .iter()
            .map(|p| format!("{}: {}", p.field, p.detail))
            .collect();
        let listed = match errors.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        };
        let mut error = HttpError::new(
            422,
            "Invalid",
            format!("ListOptions.meta.k8s.io \"\" is invalid: {listed}"),
        );
        let causes: Vec<serde_json::Value> = problems
            .iter()
            .map(|p| {
                serde_json::json!({
                    "reason": p.reason,
                    "message": p.detail,
                    "field": p.field,
                })
            })
            .collect();
        error.details = Some(serde_json::json!({
            "group": "meta.k8s.io",
            "kind": "ListOptions",
            "causes": causes,
        }));
        error
    }

    /// The `metav1.Status` answered.
    pub(super) fn status(&self) -> serde_json::Value {
        let mut status = status_json(self.code, self.reason, &self.message);
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }

    fn response(&self) -> Response<Body> {
        json_response(self.code, &self.status())
    }
}

impl From<ApiError> for HttpError {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::Conflict(m) if m.contains("already exists") => {
                HttpError::new(409, "AlreadyExists", m)
            }
            ApiError::Conflict(m) => HttpError::new(409, "Conflict", m),
            ApiError::NotFound(m) => HttpError::new(404, "NotFound", m),
            ApiError::TooManyRequests(m) => HttpError::new(429, "TooManyRequests", m),
            ApiError::Forbidden(m) => HttpError::new(403, "Forbidden", m),
            ApiError::Unavailable(m) => HttpError::new(503, "ServiceUnavailable", m),
            ApiError::Other(m) => HttpError::new(422, "Invalid", m),
        }
    }
}

/// A `metav1.Status`.
pub(super) fn status_json(code: u16, reason: &str, message: &str) -> serde_json::Value {
    let failed = code >= 300;
    let mut status = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": if failed { "Failure" } else { "Success" },
        "code": code,
    });
    if failed {
        status["reason"] = reason.into();
        status["message"] = message.into();
    }
    status
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

fn json_response<T: Serialize + ?Sized>(code: u16, value: &T) -> Response<Body> {
    let (code, body) = match serde_json::to_vec(value) {
        Ok(body) => (code, body),
        Err(e) => {
            let status = status_json(500, "InternalError", &format!("cannot encode: {e}"));
            (500, serde_json::to_vec(&status).unwrap_or_default())
        }
    };
    let mut response = Response::new(full(body));
    *response.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// The hyper service: never fails; errors are answered as Status objects.
pub(crate) async fn handle(
    app: Arc<App>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let method = request.method().as_str().to_string();
    let path = request.uri().path().to_string();
    let response = match route(&app, request).await {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(%method, %path, code = error.code, message = %error.message, "request failed");
            error.response()
        }
    };
    Ok(response)
}

/// The query string, decoded (a later repetition of a key wins).
pub(super) struct Query(BTreeMap<String, String>);

impl Query {
    pub(super) fn parse(query: &str) -> Result<Self, HttpError> {
        let mut map = BTreeMap::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            map.insert(percent_decode(k)?, percent_decode(v)?);
        }
        Ok(Query(map))
    }

    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub(super) fn flag(&self, key: &str) -> Result<bool, HttpError> {
        match self.get(key) {
            None | Some("" | "false" | "0") => Ok(false),
            Some("true" | "1") => Ok(true),
            Some(other) => Err(HttpError::bad_request(format!(
                "invalid value for {key}: {other:?} (expected true or false)"
            ))),
        }
    }

    pub(super) fn number(&self, key: &str) -> Result<Option<u64>, HttpError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|_| {
                HttpError::bad_request(format!(
                    "invalid value for {key}: {text:?} (expected a non-negative integer)"
                ))
            }),
        }
    }
}

fn percent_decode(text: &str) -> Result<String, HttpError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| HttpError::bad_request("malformed percent-encoding in URL"))?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| HttpError::bad_request("URL is not valid UTF-8"))
}

async fn read_body(body: Incoming) -> Result<Bytes, HttpError> {
    Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(|e| HttpError::bad_request(format!("cannot read the request body: {e}")))
}

async fn read_json<T: DeserializeOwned>(body: Incoming, what: &str) -> Result<T, HttpError> {
    let bytes = read_body(body).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| HttpError::bad_request(format!("cannot decode the {what} in the body: {e}")))
}

/// The patch type a PATCH's Content-Type names; 415 for those not served (JSON Patch, apply).
fn patch_kind(headers: &hyper::HeaderMap) -> Result<PatchKind, HttpError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/merge-patch+json") {
        Ok(PatchKind::Merge)
    } else if content_type.starts_with("application/strategic-merge-patch+json") {
        Ok(PatchKind::Strategic)
    } else {
        Err(HttpError::new(
            415,
            "UnsupportedMediaType",
            "the simulated API server takes only JSON merge patches and strategic merge \
             patches (Content-Type: application/merge-patch+json or \
             application/strategic-merge-patch+json)",
        ))
    }
}

/// Makes the body's name and namespace those of the URL (filling them in when missing).
fn check_identity(
    meta: &mut ObjectMeta,
    name: Option<&str>,
    namespace: Option<&str>,
) -> Result<(), HttpError> {
    if let Some(name) = name {
        match meta.name.as_deref() {
            None | Some("") => meta.name = Some(name.to_string()),
            Some(given) if given == name => {}
            Some(given) => {
                return Err(HttpError::bad_request(format!(
                    "the name of the object ({given}) does not match the name on the URL ({name})"
                )));
            }
        }
    }
    if let Some(namespace) = namespace {
        match meta.namespace.as_deref() {
            None | Some("") => meta.namespace = Some(namespace.to_string()),
            Some(given) if given == namespace => {}
            Some(_) => {
                return Err(HttpError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        }
    }
    Ok(())
}

fn ok<T: Serialize>(value: Result<T, ApiError>) -> Result<Response<Body>, HttpError> {
    Ok(json_response(200, &value?))
}

async fn route(app: &App, request: Request<Incoming>) -> Result<Response<Body>, HttpError> {
    let (parts, body) = request.into_parts();
    // A hung API server answers nothing until the hang ends, then everything at once.
    app.store.through_hang().await;
    if app.store.in_outage() {
        return Err(HttpError::new(
            503,
            "ServiceUnavailable",
            "simulated API outage: the API server is unavailable",
        ));
    }
    let query = Query::parse(parts.uri.query().unwrap_or(""))?;
    let segments: Vec<String> = parts
        .uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect::<Result<_, _>>()?;
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let store = &app.store;
    let method = parts.method.as_str();
    match (method, segments.as_slice()) {
        ("GET", ["version"]) => Ok(json_response(200, &version())),

        // ----- discovery -----
        ("GET", ["api"]) => {
            let host = parts
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("");
            Ok(json_response(200, &discovery::api_versions(host)))
        }
        ("GET", ["api", "v1"]) => Ok(json_response(200, &discovery::core_v1())),
        ("GET", ["apis"]) => Ok(json_response(200, &discovery::api_groups())),
        ("GET", ["apis", group]) if discovery::api_group(group).is_some() => {
            ok(discovery::api_group(group).ok_or_else(|| ApiError::NotFound(String::new())))
        }
        ("GET", ["apis", group, "v1"]) if discovery::group_v1(group).is_some() => {
            ok(discovery::group_v1(group).ok_or_else(|| ApiError::NotFound(String::new())))
        }

        // ----- nodes -----
        ("GET", ["api", "v1", "nodes"]) => list_or_watch::<Node>(app, None, &query, &parts.headers),
        ("GET", ["api", "v1", "nodes", name] | ["api", "v1", "nodes", name, "status"]) => {
            ok(store.get_node(name))
        }
        ("PUT", ["api", "v1", "nodes", name]) => {
            let mut node: Node = read_json(body, "Node").await?;
            check_identity(&mut node.metadata, Some(name), None)?;
            store.get_node(name)?;
            app.inject_conflict(Write::Object, "nodes", name, name)?;
            ok(store.replace_node(&node, Origin::Controller))
        }
        // A PATCH and a PUT of the same object (or of its status) are one kind of write for
        // --inject-conflicts: a conflict injected on either is not injected again.
        ("PATCH", ["api", "v1", "nodes", name, rest @ ..]) if matches!(rest, [] | ["status"]) => {
            let status = !rest.is_empty();
            let kind = patch_kind(&parts.headers)?;
            let patch: serde_json::Value = read_json(body, "patch").await?;
            store.get_node(name)?;
            let write = if status { Write::Status } else { Write::Object };
            app.inject_conflict(write, "nodes", name, name)?;
            ok(store.patch_node(name, &patch, kind, status, Origin::Controller))
        }
        ("PUT", ["api", "v1", "nodes", name, "status"]) => {
            let mut node: Node = read_json(body, "Node").await?;
            check_identity(&mut node.metadata, Some(name), None)?;
            store.get_node(name)?;
            app.inject_conflict(Write::Status, "nodes", name, name)?;
            ok(store.replace_node_status(&node, Origin::Controller))
        }

        // ----- PodDisruptionBudgets (from the scenario; listed only, in one page) -----
        ("GET", ["apis", "policy", "v1", "poddisruptionbudgets"]) => {
            Ok(json_response(200, &pdb_list(&store.pdbs(), None)))
        }
        (
            "GET",
            [
                "apis",
                "policy",
                "v1",
                "namespaces",
                ns,
                "poddisruptionbudgets",
            ],
        ) => Ok(json_response(200, &pdb_list(&store.pdbs(), Some(ns)))),

        // ----- pods -----
        ("GET", ["api", "v1", "pods"]) => list_or_watch::<Pod>(app, None, &query, &parts.headers),
        ("GET", ["api", "v1", "namespaces", ns, "pods"]) => {
            list_or_watch::<Pod>(app, Some(ns), &query, &parts.headers)
        }
        (
            "GET",
            ["api", "v1", "namespaces", ns, "pods", name]
            | ["api", "v1", "namespaces", ns, "pods", name, "status"],
        ) => ok(store.get_pod(ns, name)),
        ("PUT", ["api", "v1", "namespaces", ns, "pods", name, "status"]) => {
            let mut pod: Pod = read_json(body, "Pod").await?;
            check_identity(&mut pod.metadata, Some(name), Some(ns))?;
            store.get_pod(ns, name)?;
            app.inject_conflict(Write::Status, "pods", &format!("{ns}/{name}"), name)?;
            ok(store.replace_pod_status(&pod, Origin::Controller))
        }
        ("PATCH", ["api", "v1", "namespaces", ns, "pods", name, "status"]) => {
            let kind = patch_kind(&parts.headers)?;
            let patch: serde_json::Value = read_json(body, "patch").await?;
            store.get_pod(ns, name)?;
            app.inject_conflict(Write::Status, "pods", &format!("{ns}/{name}"), name)?;
            ok(store.patch_pod_status(ns, name, &patch, kind, Origin::Controller))
        }
        ("DELETE", ["api", "v1", "namespaces", ns, "pods", name]) => {
            let bytes = read_body(body).await?;
            let options: DeleteOptions = if bytes.iter().all(u8::is_ascii_whitespace) {
                DeleteOptions::default()
            } else {
                serde_json::from_slice(&bytes).map_err(|e| {
                    HttpError::bad_request(format!("cannot decode the DeleteOptions: {e}"))
                })?
            };
            let pod = store.get_pod(ns, name)?;
            app.inject_conflict(Write::Delete, "pods", &format!("{ns}/{name}"), name)?;
            let uid = check_preconditions(&pod, options.preconditions.as_ref())?;
            store.delete_pod(ns, name, &uid, Origin::Controller)?;
            Ok(json_response(200, &pod))
        }
        ("POST", ["api", "v1", "namespaces", ns, "pods", name, "eviction"]) => {
            let mut eviction: Eviction = read_json(body, "Eviction").await?;
            check_identity(&mut eviction.metadata, Some(name), Some(ns))?;
            let pod = store.get_pod(ns, name)?;
            app.inject_conflict(Write::Eviction, "pods", &format!("{ns}/{name}"), name)?;
            let preconditions = eviction
                .delete_options
                .as_ref()
                .and_then(|o| o.preconditions.as_ref());
            let uid = check_preconditions(&pod, preconditions)?;
            store.evict_pod(ns, name, &uid)?;
            Ok(json_response(201, &status_json(201, "", "")))
        }

        // ----- leases -----
        ("GET", ["apis", COORDINATION, "v1", "leases"]) => {
            list_or_watch::<Lease>(app, None, &query, &parts.headers)
        }
        ("GET", ["apis", COORDINATION, "v1", "namespaces", ns, "leases"]) => {
            list_or_watch::<Lease>(app, Some(ns), &query, &parts.headers)
        }
        ("POST", ["apis", COORDINATION, "v1", "namespaces", ns, "leases"]) => {
            let mut lease: Lease = read_json(body, "Lease").await?;
            check_identity(&mut lease.metadata, None, Some(ns))?;
            let created = store.create_lease(&lease)?;
            Ok(json_response(201, &created))
        }
        ("GET", ["apis", COORDINATION, "v1", "namespaces", ns, "leases", name]) => {
            ok(store.get_lease(ns, name))
        }
        ("PUT", ["apis", COORDINATION, "v1", "namespaces", ns, "leases", name]) => {
            let mut lease: Lease = read_json(body, "Lease").await?;
            check_identity(&mut lease.metadata, Some(name), Some(ns))?;
            ok(store.replace_lease(&lease))
        }

        // ----- events, access reviews -----
        ("POST", ["apis", "events.k8s.io", "v1", "namespaces", ns, "events"]) => {
            let mut event: K8sEvent = read_json(body, "Event").await?;
            check_identity(&mut event.metadata, None, Some(ns))?;
            record_event(app, &mut event);
            Ok(json_response(201, &event))
        }
        (
            "POST",
            [
                "apis",
                "authorization.k8s.io",
                "v1",
                "selfsubjectaccessreviews",
            ],
        ) => {
            let mut review: SelfSubjectAccessReview =
                read_json(body, "SelfSubjectAccessReview").await?;
            review.status = Some(SubjectAccessReviewStatus {
                allowed: true,
                reason: Some("the simulated cluster allows everything".to_string()),
                ..SubjectAccessReviewStatus::default()
            });
            Ok(json_response(201, &review))
        }

        (_, path) if known_path(path) => Err(HttpError::new(
            405,
            "MethodNotAllowed",
            format!("{method} is not supported on {}", parts.uri.path()),
        )),
        _ => Err(HttpError::new(
            404,
            "NotFound",
            format!(
                "the server could not find the requested resource ({method} {})",
                parts.uri.path()
            ),
        )),
    }
}

/// A PodDisruptionBudgetList of the scenario's budgets (in `namespace`, or all).
fn pdb_list(pdbs: &[crate::sim::scenario::PdbSpec], namespace: Option<&str>) -> serde_json::Value {
    use crate::sim::scenario::IntOrPercent;
    let value = |v: &IntOrPercent| match v {
        IntOrPercent::Int(i) => serde_json::json!(i),
        IntOrPercent::Percent(p) => serde_json::json!(format!("{p}%")),
    };
    let items: Vec<serde_json::Value> = pdbs
        .iter()
        .filter(|p| namespace.is_none_or(|ns| p.namespace == ns))
        .map(|p| {
            let mut spec = serde_json::json!({"selector": {"matchLabels": p.selector}});
            if let Some(v) = &p.max_unavailable {
                spec["maxUnavailable"] = value(v);
            }
            if let Some(v) = &p.min_available {
                spec["minAvailable"] = value(v);
            }
            serde_json::json!({
                "metadata": {"name": p.name, "namespace": p.namespace},
                "spec": spec,
            })
        })
        .collect();
    serde_json::json!({
        "kind": "PodDisruptionBudgetList",
        "apiVersion": "policy/v1",
        "metadata": {"resourceVersion": "1"},
        "items": items,
    })
}

fn known_path(path: &[&str]) -> bool {
    if let ["apis", group] | ["apis", group, "v1"] = path {
        return discovery::api_group(group).is_some();
    }
    matches!(
        path,
        ["version"]
            | ["api"]
            | ["api", "v1"]
            | ["apis"]
            | ["api", "v1", "nodes", ..]
            | ["api", "v1", "pods"]
            | ["api", "v1", "namespaces", _, "pods", ..]
            | ["apis", "policy", "v1", "poddisruptionbudgets"]
            | [
                "apis",
                "policy",
                "v1",
                "namespaces",
                _,
                "poddisruptionbudgets"
            ]
            | ["apis", COORDINATION, "v1", "leases"]
            | ["apis", COORDINATION, "v1", "namespaces", _, "leases", ..]
            | ["apis", "events.k8s.io", "v1", "namespaces", _, "events"]
            | [
                "apis",
                "authorization.k8s.io",
                "v1",
                "selfsubjectaccessreviews"
            ]
    )
}

/// Checks DeleteOptions preconditions against the stored pod; returns the UID precondition
/// (empty when none) for the store to check again atomically.
fn check_preconditions(
    pod: &Pod,
    preconditions: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Preconditions>,
) -> Result<String, HttpError> {
    let Some(p) = preconditions else {
        return Ok(String::new());
    };
    if let Some(rv) = p.resource_version.as_deref().filter(|rv| !rv.is_empty())
        && pod.metadata.resource_version.as_deref() != Some(rv)
    {
        return Err(HttpError::new(
            409,
            "Conflict",
            format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                pod.metadata.resource_version.as_deref().unwrap_or("")
            ),
        ));
    }
    Ok(p.uid.clone().unwrap_or_default())
}

/// Records an events.k8s.io/v1 Event in the timeline, as the simulator does, and fills in what
/// the API server sets.
fn record_event(app: &App, event: &mut K8sEvent) {
    let regarding = event.regarding.clone().unwrap_or_default();
    let kind = regarding.kind.unwrap_or_default();
    let name = regarding.name.unwrap_or_default();
    let object = match regarding.namespace.filter(|ns| !ns.is_empty()) {
        Some(ns) => format!("{kind}/{ns}/{name}"),
        None => format!("{kind}/{name}"),
    };
    app.store.record(EntryKind::Event {
        object,
        reason: event.reason.clone().unwrap_or_default(),
        event_type: event.type_.clone().unwrap_or_default(),
        message: event.note.clone().unwrap_or_default(),
    });
    let n = app.counter.fetch_add(1, Ordering::Relaxed) + 1;
    let meta = &mut event.metadata;
    if meta.name.as_deref().is_none_or(str::is_empty) {
        let prefix = meta
            .generate_name
            .clone()
            .unwrap_or_else(|| "event.".to_string());
        meta.name = Some(format!("{prefix}{n:x}"));
    }
    meta.uid = Some(format!("00000000-0000-4000-9000-{n:012x}"));
    meta.resource_version = Some(app.store.resource_version().to_string());
    meta.creation_timestamp = Some(Time(Timestamp::now()));
}

/// Whether the client asked for metadata only (`Accept: ...;as=PartialObjectMetadataList;...`),
/// as kube's `Api::list_metadata` and the controller's staleness guard do.
fn wants_metadata_only(headers: &hyper::HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("as=PartialObjectMetadataList"))
}

fn list_or_watch<K: Served>(
    app: &App,
    namespace: Option<&str>,
    query: &Query,
    headers: &hyper::HeaderMap,
) -> Result<Response<Body>, HttpError> {
    if query.flag("watch")? {
        return watch::response::<K>(&app.store, &app.options, namespace, query);
    }
    let scope = format!("{}/{}", K::KIND, namespace.unwrap_or_default());
    let (items, resource_version, start) = match query.get("continue").filter(|t| !t.is_empty()) {
        Some(token) => {
            let (rv, after) = parse_continue(token)?;
            let items = app.pages.find::<Arc<K::Item>>(&scope, rv).ok_or_else(|| {
                HttpError::new(
                    410,
                    "Expired",
                    format!("the continue token {token:?} is too old; list again"),
                )
            })?;
            let start = items.partition_point(|item| item.key() <= after);
            (items, rv, start)
        }
        None => {
            let (items, current) = K::list(&app.store, namespace);
            (Arc::new(items), current, 0)
        }
    };
    let mut end = items.len();
    let mut next = None;
    if let Some(limit) = query.number("limit")?.filter(|l| *l > 0)
        && let Ok(limit) = usize::try_from(limit)
        && items.len() - start > limit
    {
        end = start + limit;
        let (ns, name) = items[end - 1].key();
        next = Some(format!("{resource_version}:{ns}:{name}"));
        if start == 0 {
            app.pages.keep(scope, resource_version, Arc::clone(&items));
        }
    }
    let mut metadata = serde_json::json!({ "resourceVersion": resource_version.to_string() });
    if let Some(next) = next {
        metadata["continue"] = next.into();
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct List<I> {
        api_version: &'static str,
        kind: String,
        metadata: serde_json::Value,
        items: I,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct PartialObjectMetadata<'a> {
        api_version: &'static str,
        kind: &'static str,
        metadata: std::borrow::Cow<'a, ObjectMeta>,
    }
    let page = &items[start..end];
    if wants_metadata_only(headers) {
        let items: Vec<_> = page
            .iter()
            .map(|item| PartialObjectMetadata {
                api_version: "meta.k8s.io/v1",
                kind: "PartialObjectMetadata",
                metadata: item.metadata(),
            })
            .collect();
        return Ok(json_response(
            200,
            &List {
                api_version: "meta.k8s.io/v1",
                kind: "PartialObjectMetadataList".into(),
                metadata,
                items,
            },
        ));
    }
    let list = List {
        api_version: K::API_VERSION,
        kind: format!("{}List", K::KIND),
        metadata,
        items: page,
    };
    Ok(json_response(200, &list))
}

/// `rv:namespace:name` (namespace empty for cluster-scoped objects).
fn parse_continue(token: &str) -> Result<(u64, (String, String)), HttpError> {
    let invalid = || HttpError::bad_request(format!("invalid continue token {token:?}"));
    let mut parts = token.splitn(3, ':');
    let rv = parts
        .next()
        .and_then(|rv| rv.parse().ok())
        .ok_or_else(invalid)?;
    let ns = parts.next().ok_or_else(invalid)?;
    let name = parts.next().ok_or_else(invalid)?;
    Ok((rv, (ns.to_string(), name.to_string())))
}

fn version() -> serde_json::Value {
    serde_json::json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0-simulated",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
    })
}
