//! Being a good citizen of the API server: a client-side rate limit on every request the
//! controller makes (`--kube-api-qps`, `--kube-api-burst`, kube-controller-manager's flags and
//! defaults), in an order that puts the writes that matter first, and the server's own
//! back-pressure (429 with `Retry-After`) honoured.
//!
//! [`ThrottleLayer`] sits outermost in the `kube::Client`'s tower stack, so that nothing the
//! client sends bypasses it: reads, lists, watch starts, writes, Events, permission checks and
//! leader-election Lease renewals all take a token. A watch takes one when it starts; the
//! events it streams afterwards take none.
//!
//! When requests wait, the next token goes to the most urgent one waiting, by the [`Priority`]
//! its caller gave it (`Cluster::at`, carried as a request extension; a request without one is
//! a read): the leader Lease first (a renewal that waits too long ends leadership), then
//! NoExecute taints, NoSchedule taints, Unknown marks, the deletions that end evictions begun,
//! evictions (their node reads and DisruptionTarget patches), watch starts and lists,
//! pod NotReady marks, Events. So a mass failure's thousands of pod marks and Events queue
//! behind the limit while the nodes' marks, taints and the evictions go first; and pod marks
//! and Events never take the last half of the burst, so that a taint or an eviction that comes
//! while they queue finds a token at once.
//!
//! [`TokenBucket`] is the pure core (time passed in); [`Limiter`] runs it in tokio time.

use crate::cluster::Priority;
use futures::FutureExt;
use futures::future::BoxFuture;
use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use prometheus::{CounterVec, IntCounterVec, Opts, Registry};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;
use tower::{BoxError, Layer, Service, ServiceExt};

/// kube-controller-manager's `--kube-api-qps` default.
pub const DEFAULT_QPS: f64 = 20.0;
/// kube-controller-manager's `--kube-api-burst` default.
pub const DEFAULT_BURST: u32 = 30;
/// The longest a `Retry-After` is waited for; a longer one is waited this long.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
/// Retries of one request answered 429 with `Retry-After`; the next 429 goes to the caller
/// (whose own backoff takes over).
pub const MAX_RETRIES_429: u32 = 5;

/// A request waiting for a token.
pub type Ticket = u64;

/// A token bucket (`qps` tokens a second, at most `burst` kept) whose waiting requests are
/// served by [`Priority`], first-come first-served within one. Requests whose priority
/// `leaves_a_reserve` get a token only while more than half the burst would be left. Pure:
/// every call is given the time, as a duration since any fixed origin.
#[derive(Debug)]
pub struct TokenBucket {
    qps: f64,
    burst: f64,
    /// Tokens the requests that leave a reserve may not take.
    reserve: f64,
    tokens: f64,
    at: Duration,
    queues: [VecDeque<Ticket>; Priority::ALL.len()],
    next: Ticket,
}

/// Float slack when comparing token counts: a token due at an instant is there at that instant.
const EPSILON: f64 = 1e-9;

impl TokenBucket {
    /// A full bucket at `now`. `qps` must be positive and finite, `burst` at least 1.
    pub fn new(qps: f64, burst: u32, now: Duration) -> Self {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            qps,
            burst,
            reserve: (burst / 2.0).floor(),
            tokens: burst,
            at: now,
            queues: Default::default(),
            next: 0,
        }
    }

    fn refill(&mut self, now: Duration) {
        if now > self.at {
            let earned = (now - self.at).as_secs_f64() * self.qps;
            self.tokens = (self.tokens + earned).min(self.burst);
            self.at = now;
        }
    }

    /// Requests waiting.
    pub fn waiting(&self) -> usize {
        self.queues.iter().map(VecDeque::len).sum()
    }

    /// The tokens a request of `priority` needs in the bucket to be granted one.
    fn needs(&self, priority: Priority) -> f64 {
        if priority.leaves_a_reserve() {
            1.0 + self.reserve
        } else {
            1.0
        }
    }

    /// Asks for a token at `now`: `None` when it is granted at once (there is one for it and
    /// nobody as urgent waits, so that a newcomer never takes a token a waiting request is
    /// owed), else the ticket it waits with until [`TokenBucket::grant`] hands it out.
    pub fn take(&mut self, priority: Priority, now: Duration) -> Option<Ticket> {
        self.refill(now);
        let ahead = self.queues[..=priority as usize]
            .iter()
            .any(|q| !q.is_empty());
        if !ahead && self.tokens + EPSILON >= self.needs(priority) {
            self.tokens -= 1.0;
            return None;
        }
        self.next += 1;
        self.queues[priority as usize].push_back(self.next);
        Some(self.next)
    }

    /// Takes a waiting request out of line (it gave up); false if it was not waiting.
    pub fn cancel(&mut self, ticket: Ticket) -> bool {
        for queue in &mut self.queues {
            if let Some(i) = queue.iter().position(|t| *t == ticket) {
                queue.remove(i);
                return true;
            }
        }
        false
    }

    /// Gives back a token granted to a request that was gone by then.
    pub fn refund(&mut self) {
        self.tokens = (self.tokens + 1.0).min(self.burst);
    }

    /// The most urgent priority with a request waiting.
    fn first_waiting(&self) -> Option<Priority> {
        Priority::ALL
            .into_iter()
            .find(|p| !self.queues[*p as usize].is_empty())
    }

    /// Hands the tokens there are at `now` to waiting requests, most urgent first; returns the
    /// tickets granted, in order.
    pub fn grant(&mut self, now: Duration) -> Vec<Ticket> {
        self.refill(now);
        let mut granted = Vec::new();
        while let Some(priority) = self.first_waiting() {
            if self.tokens + EPSILON < self.needs(priority) {
                break;
            }
            if let Some(ticket) = self.queues[priority as usize].pop_front() {
                self.tokens -= 1.0;
                granted.push(ticket);
            }
        }
        granted
    }

    /// When the next waiting request can have a token (`None` when nobody waits).
    pub fn next_grant(&self) -> Option<Duration> {
        let priority = self.first_waiting()?;
        let missing = (self.needs(priority) - self.tokens).max(0.0);
        Some(self.at + Duration::from_secs_f64(missing / self.qps))
    }
}

/// A [`TokenBucket`] in tokio time: [`Limiter::acquire`] waits for a token. One task (spawned
/// at the first wait) hands tokens out as they come; it ends when the limiter is dropped.
pub struct Limiter {
    state: Mutex<LimiterState>,
    /// Wakes the task that hands tokens out: a request queued, or the limiter dropped.
    wake: Arc<Notify>,
    origin: Instant,
    driving: AtomicBool,
}

struct LimiterState {
    bucket: TokenBucket,
    waiters: HashMap<Ticket, oneshot::Sender<()>>,
}

impl Limiter {
    pub fn new(qps: f64, burst: u32) -> Arc<Self> {
        let origin = Instant::now();
        Arc::new(Limiter {
            state: Mutex::new(LimiterState {
                bucket: TokenBucket::new(qps, burst, Duration::ZERO),
                waiters: HashMap::new(),
            }),
            wake: Arc::new(Notify::new()),
            origin,
            driving: AtomicBool::new(false),
        })
    }

    fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.origin)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LimiterState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a token for a request of `priority`; true if it had to wait.
    pub async fn acquire(self: &Arc<Self>, priority: Priority) -> bool {
        let (ticket, granted) = {
            let mut state = self.lock();
            let now = self.now();
            let Some(ticket) = state.bucket.take(priority, now) else {
                return false;
            };
            let (tx, rx) = oneshot::channel();
            state.waiters.insert(ticket, tx);
            (ticket, rx)
        };
        if !self.driving.swap(true, Ordering::SeqCst) {
            tokio::spawn(drive(Arc::downgrade(self), Arc::clone(&self.wake)));
        }
        self.wake.notify_one();
        let mut waiting = Waiting {
            limiter: self,
            ticket: Some(ticket),
        };
        // The sender is dropped only with the limiter; the request then goes ahead.
        let _ = granted.await;
        waiting.ticket = None;
        true
    }

    /// Hands out the tokens there are; returns when the next one comes, if anyone waits.
    fn hand_out(&self) -> Option<Duration> {
        let mut state = self.lock();
        let now = self.now();
        for ticket in state.bucket.grant(now) {
            let sent = state
                .waiters
                .remove(&ticket)
                .is_some_and(|tx| tx.send(()).is_ok());
            if !sent {
                state.bucket.refund();
            }
        }
        state.bucket.next_grant()
    }
}

impl Drop for Limiter {
    fn drop(&mut self) {
        self.wake.notify_one();
    }
}

/// Takes a request out of line when its wait is abandoned (its future dropped: a timeout).
struct Waiting<'a> {
    limiter: &'a Limiter,
    ticket: Option<Ticket>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket {
            let mut state = self.limiter.lock();
            state.waiters.remove(&ticket);
            if !state.bucket.cancel(ticket) {
                // Granted meanwhile, not received: the token is not lost.
                state.bucket.refund();
            }
        }
    }
}

/// The task that hands tokens out while requests wait.
async fn drive(limiter: Weak<Limiter>, wake: Arc<Notify>) {
    loop {
        let woken = wake.notified();
        let (next, origin) = {
            let Some(limiter) = limiter.upgrade() else {
                return;
            };
            (limiter.hand_out(), limiter.origin)
        };
        match next {
            None => woken.await,
            Some(at) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(origin + at) => {}
                    _ = woken => {}
                }
            }
        }
    }
}

/// `node_lifecycle_controller_api_throttled_total{reason,class}` (`class`: the priority): requests held back by the
/// client-side limit (`reason="client"`, counted once per request that waited for a token) or
/// by the API server (`reason="server"`, a 429 with `Retry-After` waited for and retried);
/// `node_lifecycle_controller_api_throttled_seconds_total{reason}`: the time they waited.
#[derive(Clone)]
pub struct ThrottleMetrics {
    throttled: IntCounterVec,
    waited: CounterVec,
}

impl Default for ThrottleMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ThrottleMetrics {
    pub fn new() -> Self {
        let opts =
            |name: &str, help: &str| Opts::new(name, help).subsystem("node_lifecycle_controller");
        ThrottleMetrics {
            throttled: IntCounterVec::new(
                opts(
                    "api_throttled_total",
                    "API requests held back: by the client-side rate limit (reason=client) or \
                     by a 429 Too Many Requests with Retry-After (reason=server).",
                ),
                &["reason", "class"],
            )
            .expect("valid counter"),
            waited: CounterVec::new(
                opts(
                    "api_throttled_seconds_total",
                    "Seconds API requests waited: for a client-side token (reason=client) or \
                     for a 429's Retry-After (reason=server).",
                ),
                &["reason"],
            )
            .expect("valid counter"),
        }
    }

    /// Registers both counters into `registry` (the controller's `Metrics::registry()`).
    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.throttled.clone()))?;
        registry.register(Box::new(self.waited.clone()))
    }

    fn record(&self, reason: &'static str, priority: Priority, waited: Duration) {
        self.throttled
            .with_label_values(&[reason, priority.label()])
            .inc();
        self.waited
            .with_label_values(&[reason])
            .inc_by(waited.as_secs_f64());
    }

    /// Requests held back for `reason` (`client` or `server`) at `priority`.
    pub fn count(&self, reason: &str, priority: Priority) -> u64 {
        self.throttled
            .with_label_values(&[reason, priority.label()])
            .get()
    }
}

/// The rate limit and 429 handling of every request of a `kube::Client` (see the module doc).
#[derive(Clone)]
pub struct ThrottleLayer {
    limiter: Option<Arc<Limiter>>,
    metrics: ThrottleMetrics,
}

impl ThrottleLayer {
    /// `qps` tokens a second, up to `burst` at once; a negative `qps` means no client-side
    /// limit (as client-go's `-1`): 429s are still honoured.
    pub fn new(qps: f64, burst: u32, metrics: ThrottleMetrics) -> Self {
        ThrottleLayer {
            limiter: (qps > 0.0).then(|| Limiter::new(qps, burst)),
            metrics,
        }
    }
}

impl<S> Layer<S> for ThrottleLayer {
    type Service = Throttle<S>;

    fn layer(&self, inner: S) -> Throttle<S> {
        Throttle {
            inner,
            layer: self.clone(),
        }
    }
}

/// See [`ThrottleLayer`]. `S` must be `Clone` (a `tower::buffer::Buffer` around kube's stack):
/// requests wait here before they reach it.
#[derive(Clone)]
pub struct Throttle<S> {
    inner: S,
    layer: ThrottleLayer,
}

/// How long a 429 asks to wait, from its `Retry-After` (seconds; an HTTP date is not honoured),
/// capped at [`MAX_RETRY_AFTER`]. `None`: no usable `Retry-After`.
fn retry_after<B>(response: &Response<B>) -> Option<Duration> {
    if response.status() != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let seconds: u64 = response
        .headers()
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

/// A copy to send again, for requests a 429 may be retried for: all but evictions (whose 429
/// is a PodDisruptionBudget's answer, for the writer to count and retry with its own backoff,
/// not back-pressure) and requests whose body cannot be copied (kube's never are).
fn retry_copy(request: &Request<Body>) -> Option<Request<Body>> {
    if request.method() == Method::POST && request.uri().path().ends_with("/eviction") {
        return None;
    }
    let body = request.body().try_clone()?;
    let mut copy = Request::new(body);
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    *copy.extensions_mut() = request.extensions().clone();
    Some(copy)
}

impl<S, B> Service<Request<Body>> for Throttle<S>
where
    S: Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Send + 'static,
{
    type Response = Response<B>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response<B>, BoxError>>;

    /// Always ready: requests wait for their token, then for the inner service, in `call`'s
    /// future (the caller's task), not in the client's shared buffer.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        let layer = self.layer.clone();
        async move {
            let class = request
                .extensions()
                .get::<Priority>()
                .copied()
                .unwrap_or(Priority::Reads);
            let mut request = request;
            let mut retries = 0;
            loop {
                if let Some(limiter) = &layer.limiter {
                    let start = Instant::now();
                    if limiter.acquire(class).await {
                        layer.metrics.record("client", class, start.elapsed());
                    }
                }
                let copy = (retries < MAX_RETRIES_429)
                    .then(|| retry_copy(&request))
                    .flatten();
                let response = inner.clone().oneshot(request).await.map_err(Into::into)?;
                match (retry_after(&response), copy) {
                    (Some(delay), Some(copy)) => {
                        tracing::debug!(
                            method = %copy.method(),
                            path = copy.uri().path(),
                            retry_in = ?delay,
                            "429 Too Many Requests: retrying after the server's Retry-After"
                        );
                        layer.metrics.record("server", class, delay);
                        tokio::time::sleep(delay).await;
                        request = copy;
                        retries += 1;
                    }
                    _ => return Ok(response),
                }
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_full_bucket_grants_its_burst_at_once_then_one_token_per_interval() {
        let mut bucket = TokenBucket::new(10.0, 3, ms(0));
        for _ in 0..3 {
            assert_eq!(
                bucket.take(Priority::Reads, ms(0)),
                None,
                "within the burst"
            );
        }
        let t = bucket
            .take(Priority::Reads, ms(0))
            .expect("the fourth waits");
        assert_eq!(bucket.next_grant(), Some(ms(100)));
        assert!(bucket.grant(ms(99)).is_empty(), "not before 1/qps");
        assert_eq!(bucket.grant(ms(100)), vec![t]);
        assert_eq!(bucket.next_grant(), None);
    }

    #[test]
    fn tokens_do_not_pile_up_beyond_the_burst() {
        let mut bucket = TokenBucket::new(10.0, 2, ms(0));
        // An hour idle earns no more than the burst.
        let later = Duration::from_secs(3600);
        assert_eq!(bucket.take(Priority::Reads, later), None);
        assert_eq!(bucket.take(Priority::Reads, later), None);
        assert!(bucket.take(Priority::Reads, later).is_some());
    }

    #[test]
    fn a_waiting_leader_lease_renewal_takes_the_next_token_before_earlier_writes_and_reads() {
        let mut bucket = TokenBucket::new(10.0, 1, ms(0));
        assert_eq!(bucket.take(Priority::Reads, ms(0)), None);
        let event = bucket.take(Priority::Events, ms(1)).unwrap();
        let read = bucket.take(Priority::Reads, ms(2)).unwrap();
        let delete = bucket.take(Priority::Evictions, ms(3)).unwrap();
        let renewal = bucket.take(Priority::LeaderLease, ms(4)).unwrap();
        let order: Vec<Ticket> = [100, 200, 300, 400]
            .into_iter()
            .flat_map(|at| bucket.grant(ms(at)))
            .collect();
        assert_eq!(order, vec![renewal, delete, read, event]);
    }

    #[test]
    fn requests_of_one_class_get_tokens_in_the_order_they_came() {
        let mut bucket = TokenBucket::new(100.0, 5, ms(0));
        for _ in 0..5 {
            assert_eq!(bucket.take(Priority::Evictions, ms(0)), None);
        }
        let tickets: Vec<Ticket> = (0..5)
            .map(|_| bucket.take(Priority::Evictions, ms(0)).unwrap())
            .collect();
        let granted = bucket.grant(ms(50));
        assert_eq!(
            granted, tickets,
            "5 tokens in 50 ms at 100 qps, first come first served"
        );
    }

    #[test]
    fn a_newcomer_does_not_take_a_token_a_waiting_request_is_owed() {
        let mut bucket = TokenBucket::new(10.0, 1, ms(0));
        assert_eq!(bucket.take(Priority::Evictions, ms(0)), None);
        let waiting = bucket.take(Priority::Evictions, ms(0)).unwrap();
        // At 100 ms the token is there but not handed out yet: a newcomer queues.
        let newcomer = bucket.take(Priority::Reads, ms(100));
        assert!(newcomer.is_some(), "queued, not granted");
        assert_eq!(bucket.grant(ms(100)), vec![waiting]);
    }

    #[test]
    fn a_request_that_gives_up_leaves_the_line() {
        let mut bucket = TokenBucket::new(10.0, 1, ms(0));
        assert_eq!(bucket.take(Priority::Reads, ms(0)), None);
        let gone = bucket.take(Priority::LeaderLease, ms(0)).unwrap();
        let stays = bucket.take(Priority::Reads, ms(0)).unwrap();
        assert!(bucket.cancel(gone));
        assert!(!bucket.cancel(gone), "only once");
        assert_eq!(bucket.grant(ms(100)), vec![stays]);
    }

    // --- the layer, in tokio's paused time ---

    /// What the mock server saw: (method, path, when).
    type Log = Arc<Mutex<Vec<(String, String, Instant)>>>;

    /// A mock API server answering each request with `answer(n, path)`, `n` counting from 0.
    fn server(
        answer: impl Fn(usize, &str) -> Response<String> + Clone + Send + Sync + 'static,
    ) -> (
        impl Service<Request<Body>, Response = Response<String>, Error = BoxError, Future = impl Send>
        + Clone
        + Send
        + 'static,
        Log,
    ) {
        let log: Log = Arc::default();
        let seen = Arc::clone(&log);
        let service = tower::service_fn(move |request: Request<Body>| {
            let answer = answer.clone();
            let seen = Arc::clone(&seen);
            async move {
                let path = request.uri().path().to_string();
                let n = {
                    let mut seen = seen.lock().unwrap();
                    seen.push((request.method().to_string(), path.clone(), Instant::now()));
                    seen.len() - 1
                };
                Ok::<_, BoxError>(answer(n, &path))
            }
        });
        (service, log)
    }

    fn ok() -> Response<String> {
        Response::new("{}".to_string())
    }

    fn too_many(retry_after: Option<&str>) -> Response<String> {
        let mut response = Response::new("{}".to_string());
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, seconds.parse().unwrap());
        }
        response
    }

    fn request(method: Method, path: &str) -> Request<Body> {
        let mut request = Request::new(Body::from(b"{}".to_vec()));
        *request.method_mut() = method;
        *request.uri_mut() = path.parse().unwrap();
        request
    }

    /// A request its caller sent at `priority` (as `KubeCluster::at` does).
    fn at(priority: Priority, method: Method, path: &str) -> Request<Body> {
        let mut request = request(method, path);
        request.extensions_mut().insert(priority);
        request
    }

    fn layer(qps: f64, burst: u32) -> (ThrottleLayer, ThrottleMetrics) {
        let metrics = ThrottleMetrics::new();
        (ThrottleLayer::new(qps, burst, metrics.clone()), metrics)
    }

    fn offsets(log: &Log, start: Instant) -> Vec<Duration> {
        log.lock()
            .unwrap()
            .iter()
            .map(|(_, _, at)| *at - start)
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn requests_beyond_the_burst_are_sent_at_the_qps_rate() {
        let (throttle, metrics) = layer(10.0, 2);
        let (inner, log) = server(|_, _| ok());
        let service = throttle.layer(inner);
        let start = Instant::now();
        let calls = (0..5).map(|_| {
            service
                .clone()
                .oneshot(request(Method::GET, "/api/v1/nodes/a"))
        });
        for result in futures::future::join_all(calls).await {
            assert_eq!(result.unwrap().status(), StatusCode::OK);
        }
        assert_eq!(
            offsets(&log, start),
            vec![ms(0), ms(0), ms(100), ms(200), ms(300)]
        );
        assert_eq!(metrics.count("client", Priority::Reads), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn the_read_before_a_deletion_goes_before_reads_that_waited_longer() {
        let (throttle, _) = layer(10.0, 1);
        let (inner, log) = server(|_, _| ok());
        let service = throttle.layer(inner);
        let start = Instant::now();
        // Ten reads of no particular urgency (the first takes the only token), then a read for
        // an eviction.
        let marks = futures::future::join_all((0..10).map(|i| {
            service.clone().oneshot(request(
                Method::GET,
                &format!("/api/v1/namespaces/default/pods/m{i}"),
            ))
        }));
        let eviction = async {
            tokio::time::sleep(ms(50)).await;
            service
                .clone()
                .oneshot(at(
                    Priority::Evictions,
                    Method::GET,
                    "/api/v1/namespaces/default/pods/due",
                ))
                .await
        };
        let (_, due) = futures::future::join(marks, eviction).await;
        assert_eq!(due.unwrap().status(), StatusCode::OK);
        let sent = log.lock().unwrap().clone();
        let due_at = sent
            .iter()
            .find(|(_, path, _)| path.ends_with("/pods/due"))
            .map(|(_, _, at)| *at - start)
            .expect("sent");
        assert_eq!(due_at, ms(100), "the next token after the first: {sent:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_limit_nothing_waits() {
        let (throttle, metrics) = layer(-1.0, 1);
        let (inner, log) = server(|_, _| ok());
        let service = throttle.layer(inner);
        let start = Instant::now();
        let calls = (0..50).map(|_| {
            service
                .clone()
                .oneshot(request(Method::GET, "/api/v1/nodes/a"))
        });
        futures::future::join_all(calls).await;
        assert!(offsets(&log, start).iter().all(|at| at.is_zero()));
        assert_eq!(metrics.count("client", Priority::Reads), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_pod_marks_and_events_waits_behind_taints_marks_deletions_and_the_leader_lease()
     {
        let (throttle, _) = layer(10.0, 1);
        let (inner, log) = server(|_, _| ok());
        let service = throttle.layer(inner);
        let mut calls = Vec::new();
        // 20 pod marks and Events first (the first takes the only token)...
        for i in 0..10 {
            let mark = format!("/api/v1/namespaces/default/pods/p{i}/status");
            calls.push(
                service
                    .clone()
                    .oneshot(at(Priority::PodMarks, Method::PATCH, &mark)),
            );
            let event = "/apis/events.k8s.io/v1/namespaces/default/events";
            calls.push(
                service
                    .clone()
                    .oneshot(at(Priority::Events, Method::POST, event)),
            );
        }
        let background = futures::future::join_all(calls);
        let urgent = async {
            // ...then, while they wait, in reverse order of urgency: a deletion, an Unknown
            // mark, a NoExecute taint and a lease renewal.
            tokio::time::sleep(ms(150)).await;
            let calls = [
                (
                    Priority::Evictions,
                    Method::DELETE,
                    "/api/v1/namespaces/default/pods/web-1",
                ),
                (
                    Priority::NodeMarks,
                    Method::PATCH,
                    "/api/v1/nodes/a-1/status",
                ),
                (Priority::NoExecute, Method::PATCH, "/api/v1/nodes/a-2"),
                (
                    Priority::LeaderLease,
                    Method::PUT,
                    "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/nlc",
                ),
            ]
            .map(|(p, method, path)| service.clone().oneshot(at(p, method, path)));
            futures::future::join_all(calls).await
        };
        let (background, urgent) = futures::future::join(background, urgent).await;
        for result in background.into_iter().chain(urgent) {
            assert_eq!(result.unwrap().status(), StatusCode::OK);
        }
        let log = log.lock().unwrap();
        let order: Vec<&str> = log.iter().map(|(_, path, _)| path.as_str()).collect();
        // Token 1 at 0 (a mark), token 2 at 100 ms (an Event), then at 200 to 500 ms the four
        // that came at 150 ms, most urgent first.
        assert_eq!(
            &order[2..6],
            [
                "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/nlc",
                "/api/v1/nodes/a-2",
                "/api/v1/nodes/a-1/status",
                "/api/v1/namespaces/default/pods/web-1",
            ]
        );
        assert_eq!(log[2].2 - log[0].2, ms(200));
        assert_eq!(log.len(), 24);
    }

    #[test]
    fn pod_marks_and_events_leave_half_the_burst_to_the_rest() {
        let mut bucket = TokenBucket::new(10.0, 6, ms(0));
        let granted_at_once = (0..6)
            .filter(|_| bucket.take(Priority::PodMarks, ms(0)).is_none())
            .count();
        assert_eq!(granted_at_once, 3, "three of six tokens, the reserve kept");
        // A taint that comes while they wait has a token at once, and so do two more.
        for _ in 0..3 {
            assert_eq!(bucket.take(Priority::NoExecute, ms(1)), None);
        }
        assert!(bucket.take(Priority::NoExecute, ms(1)).is_some());
        // The taint's ticket has the next token; then the marks wait until the bucket holds
        // the reserve of 3 and one more.
        assert_eq!(bucket.grant(ms(100)).len(), 1);
        assert!(
            bucket.grant(ms(400)).is_empty(),
            "3 tokens: only the reserve"
        );
        assert_eq!(bucket.grant(ms(500)).len(), 1, "one above the reserve");
    }

    #[test]
    fn a_burst_of_one_keeps_no_reserve() {
        let mut bucket = TokenBucket::new(10.0, 1, ms(0));
        assert_eq!(bucket.take(Priority::Events, ms(0)), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_whose_wait_is_abandoned_leaves_its_token_to_the_next() {
        let (throttle, _) = layer(10.0, 1);
        let (inner, log) = server(|_, _| ok());
        let service = throttle.layer(inner);
        let start = Instant::now();
        service
            .clone()
            .oneshot(request(Method::GET, "/api/v1/nodes/a"))
            .await
            .unwrap();
        // A lease renewal that gives up after 50 ms (the leader's own timeout).
        let renew = service.clone().oneshot(request(
            Method::PUT,
            "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/nlc",
        ));
        assert!(tokio::time::timeout(ms(50), renew).await.is_err());
        service
            .clone()
            .oneshot(request(Method::GET, "/api/v1/nodes/b"))
            .await
            .unwrap();
        assert_eq!(offsets(&log, start), vec![ms(0), ms(100)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_with_retry_after_is_sent_again_after_that_delay_capped_at_ten_seconds() {
        let (throttle, metrics) = layer(-1.0, 1);
        let (inner, log) = server(|n, _| match n {
            0 => too_many(Some("3")),
            1 => too_many(Some("3600")),
            _ => ok(),
        });
        let service = throttle.layer(inner);
        let start = Instant::now();
        let response = service
            .oneshot(at(
                Priority::NodeMarks,
                Method::PATCH,
                "/api/v1/nodes/a-1/status",
            ))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            offsets(&log, start),
            vec![ms(0), ms(3000), ms(13_000)],
            "3 s as asked, then 10 s instead of an hour"
        );
        assert_eq!(metrics.count("server", Priority::NodeMarks), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_retried_takes_a_new_token() {
        let (throttle, _) = layer(1.0, 1);
        let (inner, log) = server(|n, _| if n == 0 { too_many(Some("0")) } else { ok() });
        let service = throttle.layer(inner);
        let start = Instant::now();
        service
            .oneshot(request(Method::GET, "/api/v1/nodes/a"))
            .await
            .unwrap();
        assert_eq!(offsets(&log, start), vec![ms(0), ms(1000)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_goes_to_the_caller_without_retry_after_for_an_eviction_or_after_five_retries() {
        let (throttle, metrics) = layer(-1.0, 1);
        let (inner, log) = server(|_, path| {
            if path.ends_with("/a") {
                too_many(None)
            } else {
                too_many(Some("1"))
            }
        });
        let service = throttle.layer(inner);
        let no_hint = service
            .clone()
            .oneshot(request(Method::GET, "/api/v1/nodes/a"))
            .await
            .unwrap();
        assert_eq!(no_hint.status(), StatusCode::TOO_MANY_REQUESTS);
        let eviction = service
            .clone()
            .oneshot(request(
                Method::POST,
                "/api/v1/namespaces/default/pods/web-1/eviction",
            ))
            .await
            .unwrap();
        assert_eq!(eviction.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(log.lock().unwrap().len(), 2, "neither was sent again");

        let start = Instant::now();
        let persistent = service
            .oneshot(request(Method::GET, "/api/v1/nodes/b"))
            .await
            .unwrap();
        assert_eq!(persistent.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(log.lock().unwrap().len(), 2 + 1 + 5, "five retries");
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        assert_eq!(metrics.count("server", Priority::Reads), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_kube_client_built_with_the_layer_rate_limits_its_calls() {
        use k8s_openapi::api::core::v1::Node;
        let (throttle, _) = layer(5.0, 1);
        let (inner, log) = server(|_, _| {
            Response::new(r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"a"}}"#.into())
        });
        let client = kube::client::ClientBuilder::new(inner, "default")
            .with_layer(&throttle)
            .build();
        let nodes: kube::Api<Node> = kube::Api::all(client);
        let start = Instant::now();
        for _ in 0..3 {
            nodes.get("a").await.unwrap();
        }
        assert_eq!(offsets(&log, start), vec![ms(0), ms(200), ms(400)]);
    }
}
