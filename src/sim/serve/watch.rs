//! Watches over HTTP: chunked, newline-delimited JSON `WatchEvent`s.
//!
//! A watch from resourceVersion N replays the store's history after N, then follows new changes.
//! Without a resourceVersion (or with "0") it starts with an ADDED event per current object. A
//! resourceVersion older than the history kept ends the watch with an ERROR event carrying a
//! 410 `Expired` Status (what kube-apiserver does, and what makes clients re-list). An API outage
//! cuts open watches (the connection is closed mid-stream); a stall keeps the watches open before
//! it silent (no events, no bookmarks, no timeout) until it ends.

use super::ServeOptions;
use super::api::{Body, HttpError, Query, status_json};
use crate::sim::store::{Store, WatchEventType, WatchMark, WatchPoll};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Bytes, Frame};
use hyper::{Response, StatusCode, header};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// kube-apiserver's --min-request-timeout: a watch without timeoutSeconds lasts about this long.
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

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
    fn list(store: &Store, namespace: Option<&str>) -> (Vec<Self>, u64);
    fn poll(
        store: &Store,
        mark: &WatchMark,
        namespace: Option<&str>,
        since: u64,
    ) -> WatchPoll<Self>;
}

impl Served for Node {
    fn list(store: &Store, _: Option<&str>) -> (Vec<Self>, u64) {
        store.list_nodes_at()
    }
    fn poll(store: &Store, mark: &WatchMark, _: Option<&str>, since: u64) -> WatchPoll<Self> {
        store.poll_node_watch(mark, since)
    }
}

impl Served for Pod {
    fn list(store: &Store, namespace: Option<&str>) -> (Vec<Self>, u64) {
        store.list_pods_at(namespace)
    }
    fn poll(store: &Store, mark: &WatchMark, ns: Option<&str>, since: u64) -> WatchPoll<Self> {
        store.poll_pod_watch(mark, ns, since)
    }
}

impl Served for Lease {
    fn list(store: &Store, namespace: Option<&str>) -> (Vec<Self>, u64) {
        store.list_leases_at(namespace)
    }
    fn poll(store: &Store, mark: &WatchMark, ns: Option<&str>, since: u64) -> WatchPoll<Self> {
        store.poll_lease_watch(mark, ns, since)
    }
}

/// (namespace or "", name): the store's listing order.
pub(super) fn key<K: k8s_openapi::Metadata<Ty = ObjectMeta>>(object: &K) -> (String, String) {
    let meta = object.metadata();
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

fn line<T: Serialize>(kind: &str, object: &T) -> Bytes {
    #[derive(Serialize)]
    struct WatchEvent<'a, T> {
        #[serde(rename = "type")]
        kind: &'a str,
        object: &'a T,
    }
    let mut bytes = serde_json::to_vec(&WatchEvent { kind, object }).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

struct WatchState<K> {
    store: Store,
    namespace: Option<String>,
    mark: WatchMark,
    cursor: u64,
    deadline: Instant,
    bookmarks: bool,
    bookmark_interval: Duration,
    next_bookmark: Instant,
    changes: tokio::sync::watch::Receiver<u64>,
    pending: VecDeque<Bytes>,
    done: bool,
    _kind: std::marker::PhantomData<fn() -> K>,
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

    async fn next(&mut self) -> Option<Result<Frame<Bytes>, std::io::Error>> {
        loop {
            if let Some(bytes) = self.pending.pop_front() {
                return Some(Ok(Frame::data(bytes)));
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

/// Answers a `?watch=true` request.
pub(super) fn response<K: Served>(
    store: &Store,
    options: &ServeOptions,
    namespace: Option<&str>,
    query: &Query,
) -> Result<Response<Body>, HttpError> {
    let since = match query.get("resourceVersion") {
        None | Some("" | "0") => None,
        Some(rv) => Some(
            rv.parse::<u64>()
                .map_err(|_| HttpError::bad_request(format!("invalid resourceVersion {rv:?}")))?,
        ),
    };
    let timeout = query
        .number("timeoutSeconds")?
        .map_or(DEFAULT_WATCH_TIMEOUT, Duration::from_secs);
    let bookmarks = query.flag("allowWatchBookmarks")?;
    let changes = store.subscribe_changes();
    let mark = store.watch_mark();
    let mut pending = VecDeque::new();
    let cursor = match since {
        Some(rv) => rv,
        None => {
            let (objects, rv) = K::list(store, namespace);
            pending.extend(
                objects
                    .iter()
                    .map(|o| line(WatchEventType::Added.as_str(), o)),
            );
            rv
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
        pending,
        done: false,
        _kind: std::marker::PhantomData,
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
