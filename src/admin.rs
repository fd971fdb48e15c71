//! The admin endpoints: `/metrics` (Prometheus text format), `/healthz`, `/livez` and `/readyz`,
//! on up to two servers (hyper, HTTP/1.1):
//!
//! - the secure port (`--secure-address`, on by default), HTTPS as kube-controller-manager's:
//!   the health endpoints are open to anyone (probes), `/metrics` needs a bearer token that the
//!   API server authenticates (TokenReview) and authorizes for `get` on the non-resource URL
//!   `/metrics` (SubjectAccessReview). Both answers are cached for [`REVIEW_TTL`], so that a
//!   scraper every few seconds costs no API call each time. The certificate is
//!   `--tls-cert-file`/`--tls-private-key-file`, or one generated in memory at start.
//! - the plain port (`--admin-address`, off by default): the same endpoints over HTTP, without
//!   authentication.
//!
//! The reviews go through the [`Reviewer`] trait: `k8s::KubeReviewer` asks the API server, the
//! tests a fake.

use crate::controller::Observer;
use crate::controller::questions::{Ask, Questions};
use crate::logic::zones::ZoneState;
use crate::metrics::Metrics;
use futures::future::BoxFuture;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tracing::{debug, warn};

/// How long an answer of a TokenReview or a SubjectAccessReview is reused (yes or no), as
/// kube-controller-manager's delegated authentication and authorization cache them (10 s each).
pub const REVIEW_TTL: Duration = Duration::from_secs(10);
/// At most this many cached answers of each kind; past it the expired ones are dropped, and if
/// none is, all (a flood of made-up tokens cannot grow the process without bound).
const CACHE_CAP: usize = 4096;
/// How long a client may take to send a request head, or to finish the TLS handshake.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Setting up the admin servers failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A certificate or key file that cannot be read or holds no usable PEM.
    #[error("--{flag}={}: {source}", path.display())]
    Pem {
        flag: &'static str,
        path: PathBuf,
        source: tokio_rustls::rustls::pki_types::pem::Error,
    },
    /// The certificate and the key do not make a usable pair.
    #[error(
        "--tls-cert-file={} and --tls-private-key-file={}: {source}",
        cert.display(),
        key.display()
    )]
    KeyPair {
        cert: PathBuf,
        key: PathBuf,
        source: tokio_rustls::rustls::Error,
    },
    /// Generating the self-signed certificate failed.
    #[error("generating a self-signed serving certificate: {0}")]
    SelfSigned(String),
    /// A listening address that cannot be bound.
    #[error("binding --{flag}={addr}: {source}")]
    Bind {
        flag: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A TokenReview or SubjectAccessReview that got no answer.
#[derive(Debug, thiserror::Error)]
#[error("{review}: {source}")]
pub struct ReviewError {
    pub review: &'static str,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Who a token belongs to, as a TokenReview says (and a SubjectAccessReview is asked about).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct User {
    pub name: String,
    pub uid: Option<String>,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// The seam to the API server's authentication and authorization.
pub trait Reviewer: Send + Sync {
    /// The user of a bearer token; `Ok(None)` when the token is not valid.
    fn authenticate<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<User>, ReviewError>>;
    /// Whether `user` may `verb` the non-resource URL `path`.
    fn authorize<'a>(
        &'a self,
        user: &'a User,
        verb: &'a str,
        path: &'a str,
    ) -> BoxFuture<'a, Result<bool, ReviewError>>;
}
/// What `/readyz` reports, kept up to date through the controller's observer.
#[derive(Default)]
pub struct Readiness {
    state: Mutex<ReadyState>,
}

#[derive(Default)]
struct ReadyState {
    synced: bool,
    leader: bool,
    stale: BTreeSet<&'static str>,
    breaker_open: bool,
    /// Suspected misconfigurations by check, with what was found.
    suspected: std::collections::BTreeMap<&'static str, String>,
    /// Why the start-up RBAC check could not run, if it could not.
    unverified: Option<String>,
}

impl Readiness {
    /// `(ready, body)`: ready once every cache has synced (leader or warm standby); the body
    /// gives the details, including a stale watch or an open breaker.
    pub fn report(&self) -> (bool, String) {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut body = String::new();
        body.push_str(if s.synced {
            "caches: synced\n"
        } else {
            "caches: not synced yet\n"
        });
        body.push_str(if s.leader {
            "role: leader\n"
        } else {
            "role: standby\n"
        });
        for r in &s.stale {
            body.push_str(&format!(
                "watch {r}: stale (restarted; holding back Unknown marking)\n"
            ));
        }
        if s.breaker_open {
            body.push_str(
                "breaker: open (NoExecute tainting paused by --max-unhealthy-fraction)\n",
            );
        }
        for (check, detail) in &s.suspected {
            body.push_str(&format!("suspected misconfiguration ({check}): {detail}\n"));
        }
        if let Some(why) = &s.unverified {
            body.push_str(&format!("credentials: not verified at start-up: {why}\n"));
        }
        // Not ready while something is wrong that only an operator can fix: a rollout stops
        // there, and `kubectl get pods` shows it.
        let ready = s.synced && s.suspected.is_empty() && s.unverified.is_none();
        (ready, body)
    }

    /// The check of the credentials' permissions could not run or found some missing (`why`;
    /// `None`: it passed): until it passes, the process is not ready.
    pub fn unverified(&self, why: Option<String>) {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .unverified = why;
    }
}

impl Observer for Readiness {
    fn zone_state(&self, _zone: &str, _state: ZoneState) {}

    fn readiness(&self, synced: bool, leader: bool) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.synced = synced;
        s.leader = leader;
    }

    fn watch_stale(&self, resource: &'static str, stale: bool) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if stale {
            s.stale.insert(resource);
        } else {
            s.stale.remove(resource);
        }
    }

    fn suspicion(&self, check: &'static str, detail: Option<&str>) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match detail {
            Some(d) => s.suspected.insert(check, d.to_string()),
            None => s.suspected.remove(check),
        };
    }

    fn breaker(&self, open: bool) {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .breaker_open = open;
    }
}

/// What one request gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: String,
}

impl Reply {
    fn text(status: StatusCode, body: impl Into<String>) -> Reply {
        Reply {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }
}

/// The endpoints' content, whoever asks: (status, content type, body) for a path.
pub fn respond(path: &str, metrics: &Metrics, readiness: &Readiness) -> Reply {
    match path {
        "/metrics" => Reply {
            status: StatusCode::OK,
            content_type: "text/plain; version=0.0.4",
            body: metrics.render(),
        },
        "/healthz" | "/livez" => Reply::text(StatusCode::OK, "ok\n"),
        "/readyz" => {
            let (ready, body) = readiness.report();
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            Reply::text(status, body)
        }
        _ => Reply::text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// What the secure port decided about a request for `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Access {
    Allowed,
    /// No bearer token, or one the API server does not accept (or could not be asked about).
    Unauthenticated,
    Forbidden(String),
    /// The SubjectAccessReview failed.
    Unknown,
}

struct Cached<T> {
    until: Instant,
    value: T,
}

/// A small map of answers that expire.
struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, Cached<V>>>,
}

impl<K: std::hash::Hash + Eq, V: Clone> TtlCache<K, V> {
    fn new() -> Self {
        TtlCache {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|c| c.until > Instant::now())
            .map(|c| c.value.clone())
    }

    fn put(&self, key: K, value: V, ttl: Duration) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CACHE_CAP {
            entries.retain(|_, c| c.until > now);
            if entries.len() >= CACHE_CAP {
                entries.clear();
            }
        }
        entries.insert(
            key,
            Cached {
                until: now + ttl,
                value,
            },
        );
    }
}

/// Delegated authentication and authorization of the secure port's `/metrics`, with caches.
pub struct Gate {
    reviewer: Arc<dyn Reviewer>,
    ttl: Duration,
    /// Token → its user (`None`: not a valid token).
    users: TtlCache<String, Option<User>>,
    /// (user, verb, path) → allowed.
    decisions: TtlCache<(User, &'static str, &'static str), bool>,
}

impl Gate {
    pub fn new(reviewer: Arc<dyn Reviewer>) -> Gate {
        Gate::with_ttl(reviewer, REVIEW_TTL)
    }

    pub fn with_ttl(reviewer: Arc<dyn Reviewer>, ttl: Duration) -> Gate {
        Gate {
            reviewer,
            ttl,
            users: TtlCache::new(),
            decisions: TtlCache::new(),
        }
    }

    /// May the bearer of this `Authorization` header `get` `path`?
    async fn check(&self, authorization: Option<&str>, path: &'static str) -> Access {
        let Some(token) = authorization.and_then(bearer_token) else {
            return Access::Unauthenticated;
        };
        let user = match self.users.get(&token.to_string()) {
            Some(user) => user,
            None => match self.reviewer.authenticate(token).await {
                Ok(user) => {
                    self.users.put(token.to_string(), user.clone(), self.ttl);
                    user
                }
                Err(e) => {
                    // As the API server does: an authenticator that fails is a 401 (not cached).
                    warn!(error = %e, path, "cannot authenticate a request");
                    return Access::Unauthenticated;
                }
            },
        };
        let Some(user) = user else {
            return Access::Unauthenticated;
        };
        let key = (user, "get", path);
        let allowed = match self.decisions.get(&key) {
            Some(allowed) => allowed,
            None => match self.reviewer.authorize(&key.0, "get", path).await {
                Ok(allowed) => {
                    self.decisions.put(key.clone(), allowed, self.ttl);
                    allowed
                }
                Err(e) => {
                    warn!(error = %e, user = %key.0.name, path, "cannot authorize a request");
                    return Access::Unknown;
                }
            },
        };
        if allowed {
            Access::Allowed
        } else {
            Access::Forbidden(key.0.name)
        }
    }
}

/// The token of `Authorization: Bearer <token>` (the scheme in any case, as the API server).
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The reply refusing a request for `path` that the gate does not allow, if it does not.
async fn refusal(gate: &Gate, authorization: Option<&str>, path: &'static str) -> Option<Reply> {
    match gate.check(authorization, path).await {
        Access::Allowed => None,
        Access::Unauthenticated => Some(Reply::text(StatusCode::UNAUTHORIZED, "Unauthorized\n")),
        Access::Forbidden(user) => Some(Reply::text(
            StatusCode::FORBIDDEN,
            format!("forbidden: User {user:?} cannot get path \"{path}\"\n"),
        )),
        Access::Unknown => Some(Reply::text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the authorization check failed\n",
        )),
    }
}

/// The admin endpoints, shared by both servers.
pub struct Admin {
    pub metrics: Arc<Metrics>,
    pub readiness: Arc<Readiness>,
    /// Where `/debug/explain` questions go (`None`: not served).
    pub questions: Option<Questions>,
}

/// The non-resource URL of `status` and `explain` (its own, so RBAC grants it apart from
/// `/metrics`). Served on the secure port only.
pub const EXPLAIN_PATH: &str = "/debug/explain";

/// A `/debug/explain` query that asks nothing this controller answers.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BadQuestion {
    #[error("ask one of ?status, ?pod=NAMESPACE/NAME, ?node=NAME, ?zone=NAME (got {0:?})")]
    Nothing(String),
    #[error("{name}={value:?}: {why}")]
    Value {
        name: &'static str,
        value: String,
        why: &'static str,
    },
}

/// `%XX` escapes and `+` of a query parameter, decoded (a bad escape is kept as it is).
fn decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The question a `/debug/explain` query asks: `status` (with `horizon`, a duration such as
/// `30m`, 1 hour by default), `pod=NAMESPACE/NAME`, `node=NAME` or `zone=NAME`.
pub fn parse_question(query: &str) -> Result<Ask, BadQuestion> {
    let params: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect();
    let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let named = |name: &'static str, value: &String| {
        if value.is_empty() {
            Err(BadQuestion::Value {
                name,
                value: value.clone(),
                why: "empty",
            })
        } else {
            Ok(value.clone())
        }
    };
    if let Some(pod) = get("pod") {
        let Some((namespace, name)) = pod
            .split_once('/')
            .filter(|(n, p)| !n.is_empty() && !p.is_empty())
        else {
            return Err(BadQuestion::Value {
                name: "pod",
                value: pod.clone(),
                why: "expected NAMESPACE/NAME",
            });
        };
        return Ok(Ask::Pod {
            namespace: namespace.to_string(),
            name: name.to_string(),
        });
    }
    if let Some(node) = get("node") {
        return Ok(Ask::Node {
            name: named("node", node)?,
        });
    }
    if let Some(zone) = get("zone") {
        // `""` is a real zone (nodes without zone labels): allowed.
        return Ok(Ask::Zone { name: zone.clone() });
    }
    if get("status").is_some() || query.is_empty() {
        let horizon = match get("horizon") {
            None => Duration::from_secs(3600),
            Some(h) => humantime::parse_duration(h).map_err(|_| BadQuestion::Value {
                name: "horizon",
                value: h.clone(),
                why: "expected a duration such as 30m or 2h",
            })?,
        };
        return Ok(Ask::Status { horizon });
    }
    Err(BadQuestion::Nothing(query.to_string()))
}

fn json(status: StatusCode, body: String) -> Reply {
    Reply {
        status,
        content_type: "application/json",
        body,
    }
}

impl Admin {
    /// The answer to `method target` (a path, and maybe `?query`); with a `gate` (the secure
    /// port), `/metrics` and `/debug/explain` need the bearer token in `authorization` to be
    /// allowed to get them.
    pub async fn answer(
        &self,
        gate: Option<&Gate>,
        method: &Method,
        target: &str,
        authorization: Option<&str>,
    ) -> Reply {
        if method != Method::GET {
            return Reply::text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
        }
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        if path == EXPLAIN_PATH {
            let Some(gate) = gate else {
                return Reply::text(
                    StatusCode::NOT_FOUND,
                    "/debug/explain is served on the secure port only\n",
                );
            };
            if let Some(refused) = refusal(gate, authorization, EXPLAIN_PATH).await {
                return refused;
            }
            return self.explain(query).await;
        }
        if path == "/metrics"
            && let Some(gate) = gate
            && let Some(refused) = refusal(gate, authorization, "/metrics").await
        {
            return refused;
        }
        respond(path, &self.metrics, &self.readiness)
    }

    /// `/debug/explain?query`, for a caller already allowed.
    async fn explain(&self, query: &str) -> Reply {
        let ask = match parse_question(query) {
            Ok(ask) => ask,
            Err(e) => return Reply::text(StatusCode::BAD_REQUEST, format!("{e}\n")),
        };
        let Some(questions) = &self.questions else {
            return Reply::text(
                StatusCode::SERVICE_UNAVAILABLE,
                "this process answers no questions\n",
            );
        };
        match questions.ask(ask).await {
            Ok(answer) => {
                let (body, found) = answer.to_json();
                let status = if found {
                    StatusCode::OK
                } else {
                    StatusCode::NOT_FOUND
                };
                json(status, body)
            }
            Err(e) => Reply::text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
        }
    }

    async fn handle(
        self: Arc<Self>,
        gate: Option<Arc<Gate>>,
        request: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
        let authorization = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
        debug!(method = %request.method(), path, "admin request");
        let reply = self
            .answer(gate.as_deref(), request.method(), path, authorization)
            .await;
        let mut response = Response::new(Full::new(Bytes::from(reply.body)));
        *response.status_mut() = reply.status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(reply.content_type));
        if reply.status == StatusCode::UNAUTHORIZED {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        Ok(response)
    }
}

/// Binds `addr` for the server of `--flag`.
pub async fn bind(flag: &'static str, addr: SocketAddr) -> Result<TcpListener, AdminError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| AdminError::Bind { flag, addr, source })
}

async fn serve_connection<S>(io: S, admin: Arc<Admin>, gate: Option<Arc<Gate>>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service =
        hyper::service::service_fn(move |request| admin.clone().handle(gate.clone(), request));
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(CLIENT_TIMEOUT)
        .serve_connection(TokioIo::new(io), service)
        .await;
    if let Err(e) = served {
        debug!(error = %e, "admin connection ended with an error");
    }
}

/// Serves plain HTTP (`--admin-address`) until the listener fails.
pub async fn serve_plain(listener: TcpListener, admin: Arc<Admin>) {
    loop {
        let (socket, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "admin listener failed");
                return;
            }
        };
        tokio::spawn(serve_connection(socket, admin.clone(), None));
    }
}

/// Serves HTTPS (`--secure-address`) until the listener fails.
pub async fn serve_secure(listener: TcpListener, tls: &Tls, admin: Arc<Admin>, gate: Arc<Gate>) {
    let acceptor = TlsAcceptor::from(tls.config.clone());
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "secure listener failed");
                return;
            }
        };
        let (acceptor, admin, gate) = (acceptor.clone(), admin.clone(), gate.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(CLIENT_TIMEOUT, acceptor.accept(socket)).await {
                Ok(Ok(stream)) => serve_connection(stream, admin, Some(gate)).await,
                Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

/// The secure port's TLS configuration.
pub struct Tls {
    pub config: Arc<ServerConfig>,
    /// The leaf certificate served.
    pub certificate: CertificateDer<'static>,
    /// Whether it was generated at start (no `--tls-cert-file`).
    pub self_signed: bool,
}

/// The TLS configuration of the secure port: the certificate and key files, or without them a
/// self-signed certificate for `localhost` and `hosts` (IP addresses or DNS names) made now.
pub fn load_tls(files: Option<(&Path, &Path)>, hosts: &[String]) -> Result<Tls, AdminError> {
    let (chain, key, self_signed) = match files {
        Some((cert, key)) => {
            fn pem(
                flag: &'static str,
                path: &Path,
            ) -> impl FnOnce(tokio_rustls::rustls::pki_types::pem::Error) -> AdminError
            {
                let path = path.to_path_buf();
                move |source| AdminError::Pem { flag, path, source }
            }
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(pem("tls-cert-file", cert))?;
            if chain.is_empty() {
                return Err(pem("tls-cert-file", cert)(
                    tokio_rustls::rustls::pki_types::pem::Error::NoItemsFound,
                ));
            }
            let private =
                PrivateKeyDer::from_pem_file(key).map_err(pem("tls-private-key-file", key))?;
            (chain, private, false)
        }
        None => {
            let mut names = vec!["localhost".to_string()];
            names.extend(hosts.iter().filter(|h| !h.is_empty()).cloned());
            names.dedup();
            let generated = rcgen::generate_simple_self_signed(names)
                .map_err(|e| AdminError::SelfSigned(e.to_string()))?;
            let key = PrivatePkcs8KeyDer::from(generated.signing_key.serialize_der());
            (vec![generated.cert.der().clone()], key.into(), true)
        }
    };
    let certificate = chain[0].clone();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|source| match files {
            Some((cert, key)) => AdminError::KeyPair {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
                source,
            },
            None => AdminError::SelfSigned(source.to_string()),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Tls {
        config: Arc::new(config),
        certificate,
        self_signed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls::ClientConfig;
    use tokio_rustls::rustls::pki_types::ServerName;

    /// Tokens "reader" (allowed /metrics) and "nobody" (authenticated, not allowed); any other
    /// token is not valid. Counts the reviews it is asked for.
    #[derive(Default)]
    struct FakeReviewer {
        authentications: AtomicUsize,
        authorizations: AtomicUsize,
    }

    impl Reviewer for FakeReviewer {
        fn authenticate<'a>(
            &'a self,
            token: &'a str,
        ) -> BoxFuture<'a, Result<Option<User>, ReviewError>> {
            self.authentications.fetch_add(1, Ordering::SeqCst);
            let user = matches!(token, "reader" | "nobody" | "explainer").then(|| User {
                name: format!("system:serviceaccount:monitoring:{token}"),
                groups: vec!["system:serviceaccounts".into()],
                ..User::default()
            });
            Box::pin(async move { Ok(user) })
        }

        fn authorize<'a>(
            &'a self,
            user: &'a User,
            verb: &'a str,
            path: &'a str,
        ) -> BoxFuture<'a, Result<bool, ReviewError>> {
            self.authorizations.fetch_add(1, Ordering::SeqCst);
            let allowed = verb == "get"
                && ((user.name.ends_with(":reader") && path == "/metrics")
                    || (user.name.ends_with(":explainer") && path == EXPLAIN_PATH));
            Box::pin(async move { Ok(allowed) })
        }
    }

    fn admin() -> Admin {
        let metrics = Arc::new(Metrics::new());
        metrics.monitor.init_zone_evictions("z");
        Admin {
            metrics,
            readiness: Arc::new(Readiness::default()),
            questions: None,
        }
    }

    /// `admin()` with a control loop's stand-in that answers every question from an empty
    /// cluster, as a leader that has seen nothing would.
    fn explaining_admin() -> Admin {
        let (questions, mut inbox) = crate::controller::questions::channel();
        tokio::spawn(async move {
            use crate::controller::questions::{Memory, answer};
            let view = crate::logic::view::ClusterView::default();
            let (monitor, taint_manager) = Default::default();
            let settings = crate::settings::Settings::default();
            let guard = Default::default();
            while let Some(q) = inbox.recv().await {
                let memory = Memory {
                    view: &view,
                    monitor: &monitor,
                    taint_manager: &taint_manager,
                    settings: &settings,
                    guard: &guard,
                    trusted: true,
                    role: crate::logic::explain::Role::Leader,
                };
                let now = crate::testing::at(0);
                let _ = q.reply.send(answer(&q.ask, &memory, now));
            }
        });
        Admin {
            questions: Some(questions),
            ..admin()
        }
    }

    #[tokio::test]
    async fn explain_needs_its_own_grant_and_the_refusal_names_the_path() {
        let admin = explaining_admin();
        let (_, gate) = gate();
        let reader = get(&admin, &gate, "/debug/explain?status", Some("reader")).await;
        assert_eq!(reader.status, StatusCode::FORBIDDEN);
        assert_eq!(
            reader.body,
            "forbidden: User \"system:serviceaccount:monitoring:reader\" cannot get path \"/debug/explain\"\n"
        );
        let anonymous = get(&admin, &gate, "/debug/explain?status", None).await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
        // And the explain grant is no grant of /metrics.
        let metrics = get(&admin, &gate, "/metrics", Some("explainer")).await;
        assert_eq!(metrics.status, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn an_allowed_caller_gets_the_loops_answer_as_json_of_the_schema() {
        let admin = explaining_admin();
        let (_, gate) = gate();
        let status = get(&admin, &gate, "/debug/explain?status", Some("explainer")).await;
        assert_eq!(status.status, StatusCode::OK, "{}", status.body);
        assert_eq!(status.content_type, "application/json");
        let json: serde_json::Value = serde_json::from_str(&status.body).unwrap();
        assert_eq!(json["schema"], crate::logic::explain::SCHEMA);
        assert_eq!(json["controller"]["role"]["state"], "Leader");
        assert_eq!(json["zones"], serde_json::json!([]));
        let missing = get(
            &admin,
            &gate,
            "/debug/explain?pod=default%2Fnowhere",
            Some("explainer"),
        )
        .await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        let json: serde_json::Value = serde_json::from_str(&missing.body).unwrap();
        assert_eq!(json["pod"], serde_json::Value::Null);
    }

    #[tokio::test]
    async fn a_question_that_asks_nothing_known_is_a_bad_request_naming_the_parameter() {
        let admin = explaining_admin();
        let (_, gate) = gate();
        let bad = get(
            &admin,
            &gate,
            "/debug/explain?pod=justaname",
            Some("explainer"),
        )
        .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert!(bad.body.contains("pod=\"justaname\""), "{}", bad.body);
        let horizon = get(
            &admin,
            &gate,
            "/debug/explain?status&horizon=soon",
            Some("explainer"),
        )
        .await;
        assert_eq!(horizon.status, StatusCode::BAD_REQUEST);
        assert!(
            horizon.body.contains("horizon=\"soon\""),
            "{}",
            horizon.body
        );
    }

    #[tokio::test]
    async fn the_plain_port_does_not_serve_explain() {
        let admin = explaining_admin();
        let reply = admin
            .answer(None, &Method::GET, "/debug/explain?status", None)
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
    }

    #[test]
    fn queries_parse_into_questions() {
        assert_eq!(
            parse_question("zone=eu-west%2Fa").unwrap(),
            Ask::Zone {
                name: "eu-west/a".into()
            }
        );
        assert_eq!(
            parse_question("status&horizon=10m").unwrap(),
            Ask::Status {
                horizon: Duration::from_secs(600)
            }
        );
        assert_eq!(
            parse_question("node=n-1").unwrap(),
            Ask::Node { name: "n-1".into() }
        );
        assert!(matches!(
            parse_question("what"),
            Err(BadQuestion::Nothing(_))
        ));
    }

    fn gate() -> (Arc<FakeReviewer>, Gate) {
        let fake = Arc::new(FakeReviewer::default());
        (fake.clone(), Gate::new(fake))
    }

    async fn get(admin: &Admin, gate: &Gate, path: &str, token: Option<&str>) -> Reply {
        let header = token.map(|t| format!("Bearer {t}"));
        admin
            .answer(Some(gate), &Method::GET, path, header.as_deref())
            .await
    }

    #[test]
    fn readyz_is_unavailable_until_the_caches_sync_and_says_why() {
        let r = Readiness::default();
        let m = Metrics::new();
        let reply = respond("/readyz", &m, &r);
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(reply.body.contains("not synced"));
        r.readiness(true, false);
        r.watch_stale("leases", true);
        let reply = respond("/readyz", &m, &r);
        assert_eq!(reply.status, StatusCode::OK);
        assert!(reply.body.contains("role: standby"));
        assert!(reply.body.contains("watch leases: stale"));
    }

    #[test]
    fn readyz_is_unavailable_while_a_misconfiguration_is_suspected_and_names_it() {
        let r = Readiness::default();
        let m = Metrics::new();
        r.readiness(true, true);
        r.suspicion("node_leases", Some("none of the 3 nodes has a Lease"));
        let Reply { status, body, .. } = respond("/readyz", &m, &r);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            body.contains("suspected misconfiguration (node_leases): none of the 3 nodes"),
            "{body}"
        );
        r.suspicion("node_leases", None);
        assert_eq!(respond("/readyz", &m, &r).status, StatusCode::OK);
    }

    #[test]
    fn readyz_is_unavailable_when_the_credentials_could_not_be_checked() {
        let r = Readiness::default();
        let m = Metrics::new();
        r.readiness(true, true);
        r.unverified(Some("401 Unauthorized".into()));
        let Reply { status, body, .. } = respond("/readyz", &m, &r);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            body.contains("not verified at start-up: 401 Unauthorized"),
            "{body}"
        );
        r.unverified(None);
        assert_eq!(respond("/readyz", &m, &r).status, StatusCode::OK);
    }

    #[test]
    fn metrics_are_served_in_prometheus_text_format() {
        let m = Metrics::new();
        m.monitor.init_zone_evictions("z");
        let reply = respond("/metrics", &m, &Readiness::default());
        assert_eq!(reply.status, StatusCode::OK);
        assert!(reply.content_type.starts_with("text/plain"));
        assert!(reply.body.contains("node_collector_evictions_total"));
    }

    #[tokio::test]
    async fn metrics_on_the_secure_port_without_a_token_or_with_a_bad_one_are_unauthorized() {
        let (admin, (fake, gate)) = (admin(), gate());
        let none = get(&admin, &gate, "/metrics", None).await;
        assert_eq!(none.status, StatusCode::UNAUTHORIZED);
        assert!(!none.body.contains("node_collector"));
        let basic = admin
            .answer(
                Some(&gate),
                &Method::GET,
                "/metrics",
                Some("Basic cmVhZGVy"),
            )
            .await;
        assert_eq!(basic.status, StatusCode::UNAUTHORIZED);
        assert_eq!(fake.authentications.load(Ordering::SeqCst), 0);
        let bad = get(&admin, &gate, "/metrics", Some("made-up")).await;
        assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
        assert_eq!(fake.authentications.load(Ordering::SeqCst), 1);
        assert_eq!(fake.authorizations.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn metrics_on_the_secure_port_are_forbidden_to_a_user_without_the_grant() {
        let (admin, (_, gate)) = (admin(), gate());
        let reply = get(&admin, &gate, "/metrics", Some("nobody")).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert!(
            reply
                .body
                .contains("system:serviceaccount:monitoring:nobody"),
            "{}",
            reply.body
        );
        assert!(!reply.body.contains("node_collector"));
    }

    #[tokio::test]
    async fn metrics_on_the_secure_port_are_served_to_a_user_allowed_to_get_them() {
        let (admin, (_, gate)) = (admin(), gate());
        let reply = get(&admin, &gate, "/metrics", Some("reader")).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(reply.body.contains("node_collector_evictions_total"));
        // The scheme is case-insensitive, as the API server's.
        let lower = admin
            .answer(Some(&gate), &Method::GET, "/metrics", Some("bearer reader"))
            .await;
        assert_eq!(lower.status, StatusCode::OK);
    }

    #[tokio::test]
    async fn health_endpoints_on_the_secure_port_are_open_without_a_token() {
        let (admin, (fake, gate)) = (admin(), gate());
        admin.readiness.readiness(true, true);
        for path in ["/healthz", "/livez", "/readyz"] {
            let reply = get(&admin, &gate, path, None).await;
            assert_eq!(reply.status, StatusCode::OK, "{path}");
        }
        assert_eq!(fake.authentications.load(Ordering::SeqCst), 0);
        let post = admin
            .answer(Some(&gate), &Method::POST, "/healthz", None)
            .await;
        assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
    }

    #[tokio::test]
    async fn the_plain_port_serves_metrics_without_authentication() {
        let admin = admin();
        let reply = admin.answer(None, &Method::GET, "/metrics", None).await;
        assert_eq!(reply.status, StatusCode::OK);
    }

    #[tokio::test(start_paused = true)]
    async fn review_answers_are_reused_for_ten_seconds_then_asked_again() {
        let (admin, (fake, gate)) = (admin(), gate());
        let calls = |f: &FakeReviewer| {
            (
                f.authentications.load(Ordering::SeqCst),
                f.authorizations.load(Ordering::SeqCst),
            )
        };
        for _ in 0..5 {
            assert_eq!(
                get(&admin, &gate, "/metrics", Some("reader")).await.status,
                StatusCode::OK
            );
            assert_eq!(
                get(&admin, &gate, "/metrics", Some("nobody")).await.status,
                StatusCode::FORBIDDEN
            );
            assert_eq!(
                get(&admin, &gate, "/metrics", Some("made-up")).await.status,
                StatusCode::UNAUTHORIZED
            );
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        // Three tokens authenticated once each; two users authorized once each.
        assert_eq!(calls(&fake), (3, 2));
        tokio::time::advance(REVIEW_TTL).await;
        get(&admin, &gate, "/metrics", Some("reader")).await;
        assert_eq!(calls(&fake), (4, 3));
    }

    /// `GET path` over TLS: (the server's certificate, the whole response).
    async fn https_get(addr: SocketAddr, path: &str) -> (CertificateDer<'static>, String) {
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(crate::commands::explain::ThroughTheTunnel(
                provider,
            )))
            .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = ServerName::IpAddress(addr.ip().into());
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .unwrap();
        let certificate = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
        let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        tls.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        let _ = tls.read_to_string(&mut response).await;
        (certificate, response)
    }

    #[tokio::test]
    async fn without_certificate_files_the_secure_port_serves_a_self_signed_certificate() {
        let tls = load_tls(None, &["127.0.0.1".into()]).unwrap();
        assert!(tls.self_signed);
        let listener = bind("secure-address", "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (_, gate) = gate();
        let served = tls.certificate.clone();
        tokio::spawn(async move {
            serve_secure(listener, &tls, Arc::new(admin()), Arc::new(gate)).await
        });
        let (certificate, health) = https_get(addr, "/healthz").await;
        assert_eq!(certificate, served);
        assert!(health.starts_with("HTTP/1.1 200 OK"), "{health}");
        assert!(health.ends_with("ok\n"), "{health}");
        let (_, metrics) = https_get(addr, "/metrics").await;
        assert!(metrics.starts_with("HTTP/1.1 401"), "{metrics}");
        assert!(
            metrics
                .to_ascii_lowercase()
                .contains("www-authenticate: bearer")
        );
    }

    #[test]
    fn certificate_files_are_served_and_a_missing_one_is_an_error_naming_its_flag() {
        let dir = std::env::temp_dir().join(format!("nlc-admin-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
        std::fs::write(&cert, generated.cert.pem()).unwrap();
        std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
        let tls = load_tls(Some((&cert, &key)), &[]).unwrap();
        assert!(!tls.self_signed);
        assert_eq!(&tls.certificate, generated.cert.der());

        let missing = dir.join("missing.crt");
        let err = load_tls(Some((&missing, &key)), &[]).err().unwrap();
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("--tls-cert-file={}", missing.display())),
            "{text}"
        );
        let err = load_tls(Some((&cert, &cert)), &[]).err().unwrap();
        assert!(
            err.to_string().starts_with("--tls-private-key-file="),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
