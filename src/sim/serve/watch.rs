//! Watches over HTTP: chunked, newline-delimited JSON `WatchEvent`s.
//!
//! A watch from resourceVersion N replays the store's history after N, then follows new changes.
//! Without a resourceVersion (or with "0") it starts with an ADDED event per current object. A
//! resourceVersion older than the history kept ends the watch with an ERROR event carrying a
//! 410 `Expired` Status (what kube-apiserver does, and what makes clients re-list). An API outage
//! cuts open watches (the connection is closed mid-stream); a stall keeps the watches open before
//! it silent (no events, no bookmarks, no timeout) until it ends.
//!
//! Streaming lists (KEP-3157 "WatchList"): `sendInitialEvents=true` with
//! `resourceVersionMatch=NotOlderThan` and `allowWatchBookmarks=true` starts with an ADDED event
//! per current object, then a BOOKMARK annotated `k8s.io/initial-events-end: "true"` carrying the
//! resourceVersion of that state, then the changes after it. Options that do not go together are
//! refused with 422 `Invalid` naming the parameter, as kube-apiserver's validation does; with
//! [`ServeOptions::watch_list`] off (`--no-watch-list`), `sendInitialEvents` itself is refused
//! that way, as by a 1.33 server with the WatchList feature gate off.
//!
//! The initial objects are a snapshot taken when the watch is opened, but they are serialized
//! only as the body is polled, a few hundred KiB per frame: the client decodes the first frames
//! while later ones are encoded, instead of waiting for all of them (hundreds of MB for 300 000
//! pods) to be built first.

use super::ServeOptions;
use super::api::{Body, FieldProblem, HttpError, Query, status_json};
use crate::sim::store::stored_pod::StoredPod;
use crate::sim::store::{Store, WatchEventType, WatchMark, WatchPoll};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Bytes, Frame};
use hyper::{Response, StatusCode, header};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;

/// kube-apiserver's --min-request-timeout: a watch without timeoutSeconds lasts about this long.
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

/// The initial ADDED events are sent in frames of about this size (a few hundred pods, a
/// thousand leases): large enough that framing costs nothing, small enough that the client
/// starts decoding at once and the server never holds much more than one frame.
const INITIAL_FRAME_BYTES: usize = 256 * 1024;

/// The annotation of the bookmark that ends a streaming list's initial events.
const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";

/// A served resource type.
pub(super) trait Served:
    Serialize
    + Clone
    + Send
    + Sync
    + 'static
    + k8s_openapi::Resource
    + k8s_openapi::Metadata<Ty = ObjectMeta>
{
    /// How the store lists the objects: pods in its compact form, others as they are.
    type Item: Listed;
    /// The objects and the resourceVersion they are current at, shared with the store where
    /// it keeps them shared (nodes, pods), so that listing 300 000 of them copies no object.
    fn list(store: &Store, namespace: Option<&str>) -> (Vec<Arc<Self::Item>>, u64);
    fn poll(
        store: &Store,
        mark: &WatchMark,
        namespace: Option<&str>,
        since: u64,
    ) -> WatchPoll<Self>;
}

/// What a list (or a watch's initial events) serves of an object: itself, serialized when sent.
pub(super) trait Listed: Serialize + Send + Sync + 'static {
    fn metadata(&self) -> Cow<'_, ObjectMeta>;

    /// (namespace or "", name): the store's listing order.
    fn key(&self) -> (String, String) {
        let meta = self.metadata();
        (
            meta.namespace.clone().unwrap_or_default(),
            meta.name.clone().unwrap_or_default(),
        )
    }
}

impl Listed for Node {
    fn metadata(&self) -> Cow<'_, ObjectMeta> {
        Cow::Borrowed(&self.metadata)
    }
}

impl Listed for Lease {
    fn metadata(&self) -> Cow<'_, ObjectMeta> {
        Cow::Borrowed(&self.metadata)
    }
}

impl Listed for StoredPod {
    fn metadata(&self) -> Cow<'_, ObjectMeta> {
        Cow::Owned(self.to_pod().metadata)
    }

    fn key(&self) -> (String, String) {
        (
            self.namespace().unwrap_or_default().to_string(),
            self.name().to_string(),
        )
    }
}

impl Served for Node {
    type Item = Node;
    fn list(store: &Store, _: Option<&str>) -> (Vec<Arc<Self>>, u64) {
        store.list_nodes_at()
    }
    fn poll(store: &Store, mark: &WatchMark, _: Option<&str>, since: u64) -> WatchPoll<Self> {
        store.poll_node_watch(mark, since)
    }
}

impl Served for Pod {
    type Item = StoredPod;
    fn list(store: &Store, namespace: Option<&str>) -> (Vec<Arc<StoredPod>>, u64) {
        store.list_pods_at(namespace)
    }
    fn poll(store: &Store, mark: &WatchMark, ns: Option<&str>, since: u64) -> WatchPoll<Self> {
        store.poll_pod_watch(mark, ns, since)
    }
}

impl Served for Lease {
    type Item = Lease;
    fn list(store: &Store, namespace: Option<&str>) -> (Vec<Arc<Self>>, u64) {
        let (leases, rv) = store.list_leases_at(namespace);
        (leases.into_iter().map(Arc::new).collect(), rv)
    }
    fn poll(store: &Store, mark: &WatchMark, ns: Option<&str>, since: u64) -> WatchPoll<Self> {
        store.poll_lease_watch(mark, ns, since)
    }
}

/// Appends one `WatchEvent` line to `buffer`.
fn write_line<T: Serialize>(buffer: &mut Vec<u8>, kind: &str, object: &T) {
    #[derive(Serialize)]
    struct WatchEvent<'a, T> {
        #[serde(rename = "type")]
        kind: &'a str,
        object: &'a T,
    }
    // Serializing our own objects into memory cannot fail; an object that somehow did would
    // leave a partial line, so it is cut off and skipped rather than corrupting the stream.
    let start = buffer.len();
    if serde_json::to_writer(&mut *buffer, &WatchEvent { kind, object }).is_err() {
        buffer.truncate(start);
        return;
    }
    buffer.push(b'\n');
}

fn line<T: Serialize>(kind: &str, object: &T) -> Bytes {
    let mut bytes = Vec::new();
    write_line(&mut bytes, kind, object);
    Bytes::from(bytes)
}

/// The current objects a watch starts with, serialized frame by frame as the body is polled.
struct Initial<K: Served> {
    objects: std::vec::IntoIter<Arc<K::Item>>,
    /// A streaming list: end with the initial-events-end bookmark.
    end_bookmark: bool,
}

impl<K: Served> Initial<K> {
    /// The next frame of ADDED events (at least one object, about [`INITIAL_FRAME_BYTES`]), or
    /// `None` once every object was sent.
    fn frame(&mut self) -> Option<Bytes> {
        let mut buffer = Vec::with_capacity(INITIAL_FRAME_BYTES + INITIAL_FRAME_BYTES / 8);
        for object in self.objects.by_ref() {
            write_line(&mut buffer, WatchEventType::Added.as_str(), &object);
            if buffer.len() >= INITIAL_FRAME_BYTES {
                break;
            }
        }
        (!buffer.is_empty()).then(|| Bytes::from(buffer))
    }
}

struct WatchState<K: Served> {
    store: Store,
    namespace: Option<String>,
    mark: WatchMark,
    cursor: u64,
    deadline: Instant,
    bookmarks: bool,
    bookmark_interval: Duration,
    next_bookmark: Instant,
    changes: tokio::sync::watch::Receiver<u64>,
    initial: Option<Initial<K>>,
    pending: VecDeque<Bytes>,
    done: bool,
}

impl<K: Served> WatchState<K> {
    fn bookmark(&mut self) {
        let object = serde_json::json!({
            "kind": K::KIND,
            "apiVersion": K::API_VERSION,
            "metadata": { "resourceVersion": self.cursor.to_string() },
        });
        self.pending.push_back(line("BOOKMARK", &object));
    }

    /// The bookmark that ends a streaming list: the state just sent is that of `cursor`.
    fn initial_events_end(&mut self) {
        let object = serde_json::json!({
            "kind": K::KIND,
            "apiVersion": K::API_VERSION,
            "metadata": {
                "resourceVersion": self.cursor.to_string(),
                "annotations": { INITIAL_EVENTS_END: "true" },
            },
        });
        self.pending.push_back(line("BOOKMARK", &object));
    }

    async fn next(&mut self) -> Option<Result<Frame<Bytes>, std::io::Error>> {
        loop {
            if let Some(bytes) = self.pending.pop_front() {
                return Some(Ok(Frame::data(bytes)));
            }
            if let Some(initial) = &mut self.initial {
                if let Some(bytes) = initial.frame() {
                    return Some(Ok(Frame::data(bytes)));
                }
                let end_bookmark = initial.end_bookmark;
                self.initial = None;
                if end_bookmark {
                    self.initial_events_end();
                }
                continue;
            }
            if self.done {
                return None;
            }
            self.changes.borrow_and_update();
            let poll = K::poll(
                &self.store,
                &self.mark,
                self.namespace.as_deref(),
                self.cursor,
            );
            let stalled = match poll {
                WatchPoll::Closed => {
                    self.done = true;
                    return Some(Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "simulated API outage: watch cut",
                    )));
                }
                WatchPoll::Expired => {
                    let status = status_json(
                        410,
                        "Expired",
                        &format!(
                            "too old resource version: {} ({})",
                            self.cursor,
                            self.store.resource_version()
                        ),
                    );
                    self.pending.push_back(line("ERROR", &status));
                    self.done = true;
                    continue;
                }
                WatchPoll::Stalled => true,
                WatchPoll::Events(events, cursor) => {
                    self.cursor = cursor;
                    if !events.is_empty() {
                        for (kind, object) in &events {
                            self.pending.push_back(line(kind.as_str(), object));
                        }
                        self.next_bookmark = Instant::now() + self.bookmark_interval;
                        continue;
                    }
                    false
                }
            };
            let now = Instant::now();
            if !stalled {
                if now >= self.deadline {
                    if self.bookmarks {
                        self.bookmark();
                    }
                    self.done = true;
                    continue;
                }
                if self.bookmarks && now >= self.next_bookmark {
                    self.bookmark();
                    self.next_bookmark = now + self.bookmark_interval;
                    continue;
                }
            }
            let wake = if self.bookmarks {
                self.deadline.min(self.next_bookmark)
            } else {
                self.deadline
            };
            tokio::select! {
                changed = self.changes.changed() => {
                    if changed.is_err() {
                        self.done = true;
                    }
                }
                _ = tokio::time::sleep_until(wake), if !stalled => {}
            }
        }
    }
}

/// Where a watch starts, from its options.
#[derive(Debug, PartialEq)]
enum Start {
    /// After this resourceVersion (the current one when `None`), without initial events.
    After(Option<u64>),
    /// With the current objects as ADDED events, then the changes after them. A streaming list
    /// (`end_bookmark`) marks the end of those with a bookmark, and asks for a state not older
    /// than `not_older_than`.
    Current {
        end_bookmark: bool,
        not_older_than: Option<u64>,
    },
}

/// Checks the watch options as kube-apiserver's `ValidateListOptions` does for a watch, and
/// says where the watch starts. `watch_list`: whether streaming lists are served (the
/// WatchList feature gate).
fn start_of(query: &Query, watch_list: bool) -> Result<Start, HttpError> {
    let since = match query.get("resourceVersion") {
        None | Some("" | "0") => None,
        Some(rv) => Some(
            rv.parse::<u64>()
                .map_err(|_| HttpError::bad_request(format!("invalid resourceVersion {rv:?}")))?,
        ),
    };
    let send_initial = match query.get("sendInitialEvents") {
        None => None,
        Some(_) => Some(query.flag("sendInitialEvents")?),
    };
    let version_match = query.get("resourceVersionMatch").filter(|m| !m.is_empty());
    let bookmarks = query.flag("allowWatchBookmarks")?;
    let mut problems = Vec::new();
    if let Some(send) = send_initial {
        if version_match != Some("NotOlderThan") {
            problems.push(FieldProblem::forbidden(
                "resourceVersionMatch",
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        if !watch_list {
            problems.push(FieldProblem::forbidden(
                "sendInitialEvents",
                "sendInitialEvents is forbidden for watch unless the WatchList feature gate is \
                 enabled",
            ));
        }
        // Without bookmarks the end of the initial events could not be told; refused outright
        // rather than streaming a list whose end never comes.
        if send && !bookmarks {
            problems.push(FieldProblem::forbidden(
                "allowWatchBookmarks",
                "sendInitialEvents requires setting allowWatchBookmarks to true",
            ));
        }
    }
    if let Some(version_match) = version_match {
        if send_initial.is_none() {
            problems.push(FieldProblem::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
            ));
        }
        if version_match != "NotOlderThan" {
            problems.push(FieldProblem::not_supported(
                "resourceVersionMatch",
                version_match,
                "NotOlderThan",
            ));
        }
    }
    if !problems.is_empty() {
        return Err(HttpError::invalid_options(&problems));
    }
    // The semantics of kube-apiserver's watch with each combination (Kubernetes' "API
    // concepts", resourceVersion semantics for watch): a streaming list sends the current state
    // (at least as new as the resourceVersion given); `sendInitialEvents=false` starts from the
    // resourceVersion given (from now without one); a legacy watch starts with the current state
    // without a resourceVersion, from it otherwise.
    Ok(match (send_initial, since) {
        (Some(true), since) => Start::Current {
            end_bookmark: true,
            not_older_than: since,
        },
        (Some(false), since) => Start::After(since),
        (None, Some(rv)) => Start::After(Some(rv)),
        (None, None) => Start::Current {
            end_bookmark: false,
            not_older_than: None,
        },
    })
}

/// Answers a `?watch=true` request.
pub(super) fn response<K: Served>(
    store: &Store,
    options: &ServeOptions,
    namespace: Option<&str>,
    query: &Query,
) -> Result<Response<Body>, HttpError> {
    let start = start_of(query, options.watch_list).inspect_err(|_| {
        if !options.watch_list && query.get("sendInitialEvents").is_some() {
            options.refused_watch_lists.fetch_add(1, Ordering::Relaxed);
        }
    })?;
    let timeout = query
        .number("timeoutSeconds")?
        .map_or(DEFAULT_WATCH_TIMEOUT, Duration::from_secs);
    let bookmarks = query.flag("allowWatchBookmarks")?;
    let changes = store.subscribe_changes();
    let mark = store.watch_mark();
    let (cursor, initial) = match start {
        Start::After(rv) => (rv.unwrap_or_else(|| store.resource_version()), None),
        Start::Current {
            end_bookmark,
            not_older_than,
        } => {
            let (objects, rv) = K::list(store, namespace);
            // kube-apiserver waits a few seconds for its cache to reach a resourceVersion from
            // the future, then gives up with this; the store is always current, so at once.
            if let Some(wanted) = not_older_than.filter(|wanted| *wanted > rv) {
                return Err(HttpError::new(
                    504,
                    "Timeout",
                    format!("Too large resource version: {wanted}, current: {rv}"),
                ));
            }
            if end_bookmark {
                options.streamed_lists.fetch_add(1, Ordering::Relaxed);
            }
            let initial = Initial {
                objects: objects.into_iter(),
                end_bookmark,
            };
            (rv, Some(initial))
        }
    };
    let now = Instant::now();
    let state = WatchState::<K> {
        store: store.clone(),
        namespace: namespace.map(str::to_string),
        mark,
        cursor,
        deadline: now + timeout,
        bookmarks,
        bookmark_interval: options.bookmark_interval,
        next_bookmark: now + options.bookmark_interval,
        changes,
        initial,
        pending: VecDeque::new(),
        done: false,
    };
    let stream = futures::stream::unfold(state, |mut state| async move {
        state.next().await.map(|item| (item, state))
    });
    let mut response = Response::new(StreamBody::new(stream).boxed_unsync());
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(text: &str) -> Query {
        Query::parse(text).expect("query parses")
    }

    const STREAMING: &str = "watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan\
                             &allowWatchBookmarks=true";

    /// The 422 Status and the fields its causes name.
    fn refusal(text: &str, watch_list: bool) -> (serde_json::Value, Vec<String>) {
        let status = start_of(&query(text), watch_list)
            .expect_err("refused")
            .status();
        let fields = status["details"]["causes"]
            .as_array()
            .map(|causes| {
                causes
                    .iter()
                    .map(|c| c["field"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default();
        (status, fields)
    }

    #[test]
    fn a_streaming_list_starts_with_the_current_state_whatever_the_resource_version() {
        for rv in ["", "&resourceVersion=", "&resourceVersion=0"] {
            assert_eq!(
                start_of(&query(&format!("{STREAMING}{rv}")), true).expect("served"),
                Start::Current {
                    end_bookmark: true,
                    not_older_than: None
                },
                "{rv}"
            );
        }
        assert_eq!(
            start_of(&query(&format!("{STREAMING}&resourceVersion=42")), true).expect("served"),
            Start::Current {
                end_bookmark: true,
                not_older_than: Some(42)
            }
        );
    }

    #[test]
    fn legacy_watches_and_watches_without_initial_events_start_where_they_did() {
        let start = |text: &str| start_of(&query(text), true).expect("served");
        assert_eq!(
            start("watch=true"),
            Start::Current {
                end_bookmark: false,
                not_older_than: None
            }
        );
        assert_eq!(
            start("watch=true&resourceVersion=0"),
            Start::Current {
                end_bookmark: false,
                not_older_than: None
            }
        );
        assert_eq!(start("watch=true&resourceVersion=7"), Start::After(Some(7)));
        let no_initial = "watch=true&sendInitialEvents=false&resourceVersionMatch=NotOlderThan";
        assert_eq!(start(no_initial), Start::After(None));
        assert_eq!(
            start(&format!("{no_initial}&resourceVersion=7")),
            Start::After(Some(7))
        );
    }

    #[test]
    fn a_streaming_list_without_resource_version_match_is_invalid_naming_it() {
        let (status, fields) = refusal(
            "watch=true&sendInitialEvents=true&allowWatchBookmarks=true",
            true,
        );
        assert_eq!(status["code"], 422);
        assert_eq!(status["reason"], "Invalid");
        assert_eq!(
            status["message"],
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: \
             sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
        );
        assert_eq!(fields, ["resourceVersionMatch"]);
        assert_eq!(
            status["details"]["causes"][0]["reason"],
            "FieldValueForbidden"
        );
    }

    #[test]
    fn a_streaming_list_without_bookmarks_is_invalid_naming_allow_watch_bookmarks() {
        let (status, fields) = refusal(
            "watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan",
            true,
        );
        assert_eq!(status["code"], 422);
        assert_eq!(fields, ["allowWatchBookmarks"]);
    }

    #[test]
    fn with_watch_list_off_send_initial_events_is_invalid_naming_it() {
        let (status, fields) = refusal(STREAMING, false);
        assert_eq!(status["code"], 422);
        assert_eq!(status["reason"], "Invalid");
        assert_eq!(fields, ["sendInitialEvents"]);
        assert!(
            status["message"]
                .as_str()
                .unwrap_or_default()
                .contains("WatchList feature gate"),
            "{status}"
        );
        // Legacy watches are served as before.
        assert!(start_of(&query("watch=true&resourceVersion=0"), false).is_ok());
    }

    #[test]
    fn several_problems_are_all_listed_in_brackets() {
        let (status, fields) = refusal(
            "watch=true&sendInitialEvents=true&resourceVersionMatch=Exact",
            false,
        );
        assert_eq!(
            fields,
            [
                "resourceVersionMatch",
                "sendInitialEvents",
                "allowWatchBookmarks",
                "resourceVersionMatch"
            ]
        );
        let message = status["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("ListOptions.meta.k8s.io \"\" is invalid: [resourceVersionMatch:"),
            "{message}"
        );
        assert!(
            message.ends_with(r#"Unsupported value: "Exact": supported values: "NotOlderThan"]"#),
            "{message}"
        );
    }

    #[test]
    fn resource_version_match_on_a_watch_without_send_initial_events_is_invalid() {
        let (status, fields) = refusal(
            "watch=true&resourceVersionMatch=NotOlderThan&resourceVersion=0",
            true,
        );
        assert_eq!(status["code"], 422);
        assert_eq!(fields, ["resourceVersionMatch"]);
    }

    fn lease(i: usize) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(format!("lease-{i:05}")),
                namespace: Some("kube-node-lease".into()),
                resource_version: Some(i.to_string()),
                ..ObjectMeta::default()
            },
            ..Lease::default()
        }
    }

    #[test]
    fn initial_objects_are_sent_in_frames_of_whole_lines_in_order() {
        let count = 20_000;
        let mut initial = Initial::<Lease> {
            objects: (0..count)
                .map(|i| Arc::new(lease(i)))
                .collect::<Vec<_>>()
                .into_iter(),
            end_bookmark: true,
        };
        let mut frames = Vec::new();
        while let Some(frame) = initial.frame() {
            frames.push(frame);
        }
        assert!(frames.len() > 1, "one frame for {count} leases");
        let mut names = Vec::new();
        for frame in &frames {
            assert!(frame.ends_with(b"\n"), "a frame ends with a whole line");
            // At most one object over the target size.
            assert!(frame.len() < INITIAL_FRAME_BYTES + 1024, "{}", frame.len());
            for text in std::str::from_utf8(frame).expect("utf-8").lines() {
                let event: serde_json::Value = serde_json::from_str(text).expect("one JSON line");
                assert_eq!(event["type"], "ADDED");
                names.push(
                    event["object"]["metadata"]["name"]
                        .as_str()
                        .map(str::to_string),
                );
            }
        }
        let expected: Vec<_> = (0..count).map(|i| Some(format!("lease-{i:05}"))).collect();
        assert_eq!(names, expected);
        assert!(initial.frame().is_none(), "nothing after the last frame");
    }
}
