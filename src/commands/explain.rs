//! `status` and `explain`: ask the leading controller through the API server.
//!
//! The API server's service and pod proxies do not pass the caller's credentials on, so the
//! controller could not tell who asks. Instead the CLI opens a port-forward to the leader's pod
//! through the API server (the user's kubeconfig and RBAC: `get` on the election Lease,
//! `create` on pods/portforward), speaks TLS to the secure port inside that tunnel and presents
//! the user's own bearer token, which the controller reviews (TokenReview) and authorizes for
//! `get` on /debug/explain (SubjectAccessReview), as it does for /metrics. No new network path,
//! no new credential. docs/explain.md says why, and what it does not cover yet.

mod offline;
mod page;
mod render;

pub use page::{status_page, what_if_flags};

use super::USAGE;
use super::kubeconfig::{self, KubeconfigError};
use crate::config::explain::{
    ExplainArgs, ReachArgs, StatusArgs, StatusFormat, Subject, ViewFormat,
};
use crate::logic::explain::{Envelope, NodeReport, PodReport, SCHEMA, StatusReport, ZoneReport};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use secrecy::ExposeSecret;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

/// Asking the controller failed.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Kubeconfig(#[from] KubeconfigError),
    #[error("building the API client")]
    Client(#[source] kube::Error),
    #[error(
        "reading the election Lease {namespace}/{name} (is the controller installed there? \
         --namespace and --lease name it)"
    )]
    Lease {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("the election Lease {namespace}/{name} names no holder: no controller leads now")]
    NoLeader { namespace: String, name: String },
    #[error(
        "the kubeconfig's user has no bearer token (token or tokenFile): the controller's \
         secure port checks bearer tokens only (docs/explain.md#credentials)"
    )]
    NoToken,
    #[error("reading the kubeconfig's tokenFile {path}")]
    TokenFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("port-forwarding to pod {namespace}/{pod} port {port} through the API server")]
    PortForward {
        namespace: String,
        pod: String,
        port: u16,
        #[source]
        source: kube::Error,
    },
    #[error("reading {what} to work the answer out")]
    Listing {
        what: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("reading the deletion Events in namespace {namespace}")]
    Events {
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error("talking to the controller's secure port")]
    Io(#[source] std::io::Error),
    #[error("the controller's secure port answered no HTTP: {0:?}")]
    Http(String),
    #[error("the controller refused ({status}): {body}")]
    Refused { status: u16, body: String },
    #[error("the what-if of the --horizon ahead: {0}")]
    WhatIf(String),
    #[error("the controller's answer is not of schema {SCHEMA}")]
    Decode(#[source] serde_json::Error),
}

impl ExplainError {
    fn exit_code(&self) -> u8 {
        match self {
            ExplainError::Usage(_) => USAGE,
            ExplainError::Kubeconfig(e) if e.is_usage() => USAGE,
            _ => 1,
        }
    }
}

/// The longest what-if `status --output html` plays: virtual time is cheap, but every node's
/// kubelet renews its Lease every 10 s of it.
pub const HTML_HORIZON_MAX: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// `node-lifecycle-controller status`.
pub fn status(args: StatusArgs) -> ExitCode {
    let horizon = humantime::format_duration(args.horizon).to_string();
    let query = format!(
        "status&horizon={}",
        crate::config::explain::encode(&horizon)
    );
    let output = match args.output {
        StatusFormat::Table => ViewFormat::Table,
        StatusFormat::Json => ViewFormat::Json,
        StatusFormat::Html => {
            if args.horizon.is_zero() || args.horizon > HTML_HORIZON_MAX {
                return finish(Err(ExplainError::Usage(format!(
                    "--horizon={horizon}: with --output html the what-if plays the horizon, \
                     which must be above 0s and at most {}",
                    humantime::format_duration(HTML_HORIZON_MAX)
                ))));
            }
            return finish(status_html(&args.reach, &query, args.horizon));
        }
    };
    finish(ask_and_print(
        &args.reach,
        &query,
        output,
        |body| {
            let envelope: Envelope<StatusReport> = decode(body)?;
            Ok(render::status(&envelope))
        },
        Asked::Status {
            horizon: args.horizon,
        },
    ))
}

/// `node-lifecycle-controller explain pod|node|zone`.
pub fn explain(args: ExplainArgs) -> ExitCode {
    let query = match args.subject.query() {
        Ok(q) => q,
        Err(e) => return finish(Err(ExplainError::Usage(e))),
    };
    let subject = args.subject.clone();
    let about = Asked::About(args.subject.clone());
    finish(ask_and_print(
        &args.reach,
        &query,
        args.output,
        move |body| {
            Ok(match &subject {
                Subject::Pod { .. } => render::pod(&decode::<PodReport>(body)?),
                Subject::Node { .. } => render::node(&decode::<NodeReport>(body)?),
                Subject::Zone { .. } => render::zone(&decode::<ZoneReport>(body)?),
            })
        },
        about,
    ))
}

/// `status --output html`: the leader's answer, then the next `horizon` played by the what-if
/// engine from the cluster's Nodes and Pods, read with the same kubeconfig (`page`).
fn status_html(
    reach: &ReachArgs,
    query: &str,
    horizon: std::time::Duration,
) -> Result<(), ExplainError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ExplainError::Io)?;
    let page = runtime.block_on(async {
        let (client, token) = connect(reach).await?;
        let (status, body) = ask(&client, &token, reach, query).await?;
        if status != 200 {
            return Err(ExplainError::Refused {
                status,
                body: body.trim().to_string(),
            });
        }
        let answer: Envelope<StatusReport> = decode(&body)?;
        let snapshot = crate::sim::snapshot::read(&client)
            .await
            .map_err(|e| ExplainError::WhatIf(e.to_string()))?;
        let source = reach.context.as_deref().unwrap_or("the current context");
        page::status_page(&answer, &snapshot, horizon, source).map_err(ExplainError::WhatIf)
    })?;
    print!("{page}");
    Ok(())
}

fn decode<T: serde::de::DeserializeOwned>(body: &str) -> Result<Envelope<T>, ExplainError> {
    serde_json::from_str(body).map_err(ExplainError::Decode)
}

fn finish(result: Result<(), ExplainError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", super::causes(&e));
            ExitCode::from(e.exit_code())
        }
    }
}

/// What a person asked, for the answer worked out without a controller (`offline`).
pub enum Asked {
    Status { horizon: std::time::Duration },
    About(Subject),
}

/// Asks `query`, then prints the answer as JSON or through `table`. A 404 (nothing of that
/// name in the controller's cache) is printed too, and fails, unless `about` is a pod whose
/// deletion Events are found: then they are printed (to stderr with `-o json`). When no
/// controller can be reached, the question is answered from the cluster's objects instead
/// (`offline`), and says so.
fn ask_and_print(
    reach: &ReachArgs,
    query: &str,
    output: ViewFormat,
    table: impl FnOnce(&str) -> Result<String, ExplainError>,
    asked: Asked,
) -> Result<(), ExplainError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ExplainError::Io)?;
    runtime.block_on(async {
        let (client, token) = connect(reach).await?;
        let (status, body) = match ask(&client, &token, reach, query).await {
            Ok(answer) => answer,
            Err(e) if unreached(&e) => {
                eprintln!(
                    "no controller answered ({}): working the answer out from the cluster's objects",
                    super::causes(&e)
                );
                let leader = leader_of(&client, reach).await;
                offline::answer(&client, &asked, leader).await?
            }
            Err(e) => return Err(e),
        };
        if status != 200 && status != 404 {
            return Err(ExplainError::Refused {
                status,
                body: body.trim().to_string(),
            });
        }
        match output {
            ViewFormat::Json => print!("{body}"),
            ViewFormat::Table => print!("{}", table(&body)?),
        }
        if status == 200 {
            return Ok(());
        }
        if let Asked::About(Subject::Pod { pod }) = &asked
            && let Some((namespace, name)) = pod.split_once('/')
        {
            let events = deletion_events(&client, namespace, name).await?;
            if !events.is_empty() {
                let text = format!(
                    "\nIts deletion, as the controller's Events recorded it:\n{}",
                    events.join("")
                );
                match output {
                    ViewFormat::Json => eprint!("{text}"),
                    ViewFormat::Table => print!("{text}"),
                }
                return Ok(());
            }
        }
        Err(ExplainError::Refused {
            status,
            body: "not in the controller's cache".into(),
        })
    })
}

/// Whether the error means that no controller could be asked (rather than that it refused, or
/// that the question or the kubeconfig is wrong).
fn unreached(e: &ExplainError) -> bool {
    match e {
        ExplainError::NoLeader { .. }
        | ExplainError::PortForward { .. }
        | ExplainError::Io(_)
        | ExplainError::Http(_) => true,
        ExplainError::Lease { source, .. } => {
            matches!(source, kube::Error::Api(s) if s.code == 404)
        }
        ExplainError::Refused { status, .. } => *status == 503,
        _ => false,
    }
}

/// The holder of the election Lease, if it can be read.
async fn leader_of(client: &kube::Client, reach: &ReachArgs) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), &reach.namespace);
    let lease = leases.get_opt(&reach.lease).await.ok().flatten()?;
    lease.spec?.holder_identity.filter(|h| !h.is_empty())
}

/// The `TaintManagerEviction` Events of pod `namespace/name`, oldest first, one line each: what
/// decided its deletion (the marking Event carries the taint, toleration and due time).
async fn deletion_events(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Vec<String>, ExplainError> {
    use k8s_openapi::api::core::v1::Event;
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    let selector = format!(
        "involvedObject.kind=Pod,involvedObject.name={name},reason={}",
        crate::logic::eviction::EVICTION_REASON
    );
    let list = events
        .list(&kube::api::ListParams::default().fields(&selector))
        .await
        .map_err(|source| ExplainError::Events {
            namespace: namespace.to_string(),
            source,
        })?;
    let mut lines: Vec<(String, String)> = list
        .items
        .into_iter()
        // The field selector again, for a server that ignores it.
        .filter(|e| {
            e.involved_object.name.as_deref() == Some(name)
                && e.reason.as_deref() == Some(crate::logic::eviction::EVICTION_REASON)
        })
        .map(|e| {
            let at = e
                .event_time
                .map(|t| t.0.to_string())
                .or_else(|| e.last_timestamp.map(|t| t.0.to_string()))
                .or_else(|| e.first_timestamp.map(|t| t.0.to_string()))
                .unwrap_or_default();
            let message = e.message.unwrap_or_default();
            (at.clone(), format!("  {at}  {message}\n"))
        })
        .collect();
    lines.sort();
    Ok(lines.into_iter().map(|(_, l)| l).collect())
}

/// The user's bearer token from the kubeconfig.
fn bearer_token(config: &kube::Config) -> Result<String, ExplainError> {
    if let Some(token) = &config.auth_info.token {
        return Ok(token.expose_secret().trim().to_string());
    }
    if let Some(path) = &config.auth_info.token_file {
        let token = std::fs::read_to_string(path).map_err(|source| ExplainError::TokenFile {
            path: path.clone(),
            source,
        })?;
        return Ok(token.trim().to_string());
    }
    Err(ExplainError::NoToken)
}

/// The API client and the user's bearer token, from the kubeconfig.
async fn connect(reach: &ReachArgs) -> Result<(kube::Client, String), ExplainError> {
    let config = kubeconfig::load(reach.kubeconfig.as_deref(), reach.context.as_deref()).await?;
    let token = bearer_token(&config)?;
    let client = kube::Client::try_from(config).map_err(ExplainError::Client)?;
    Ok((client, token))
}

/// `GET /debug/explain?query` on the leader's secure port: (HTTP status, body).
async fn ask(
    client: &kube::Client,
    token: &str,
    reach: &ReachArgs,
    query: &str,
) -> Result<(u16, String), ExplainError> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), &reach.namespace);
    let lease = leases
        .get(&reach.lease)
        .await
        .map_err(|source| ExplainError::Lease {
            namespace: reach.namespace.clone(),
            name: reach.lease.clone(),
            source,
        })?;
    let holder = lease
        .spec
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty())
        .ok_or_else(|| ExplainError::NoLeader {
            namespace: reach.namespace.clone(),
            name: reach.lease.clone(),
        })?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &reach.namespace);
    let forwarding = |source| ExplainError::PortForward {
        namespace: reach.namespace.clone(),
        pod: holder.clone(),
        port: reach.port,
        source,
    };
    let mut forwarder = pods
        .portforward(&holder, &[reach.port])
        .await
        .map_err(forwarding)?;
    let stream = forwarder
        .take_stream(reach.port)
        .ok_or_else(|| ExplainError::Http("the port-forward opened no stream".into()))?;
    let answer = get_over_tls(stream, query, token).await;
    drop(forwarder);
    let (status, body) = answer?;
    if status == 503 {
        return Err(ExplainError::Refused { status, body });
    }
    Ok((status, body))
}

/// One HTTP/1.1 GET of /debug/explain?query over TLS on `stream`.
async fn get_over_tls(
    stream: tokio::io::DuplexStream,
    query: &str,
    token: &str,
) -> Result<(u16, String), ExplainError> {
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ExplainError::Io(std::io::Error::other(e)))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ThroughTheTunnel(provider)))
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").map_err(|e| ExplainError::Http(e.to_string()))?;
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .map_err(ExplainError::Io)?;
    let request = format!(
        "GET {}?{query} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Accept: application/json\r\nConnection: close\r\n\r\n",
        crate::admin::EXPLAIN_PATH
    );
    tls.write_all(request.as_bytes())
        .await
        .map_err(ExplainError::Io)?;
    let mut response = Vec::new();
    // The server closes after its answer (`Connection: close`); a TLS peer that closes
    // without close_notify has still sent the whole body (its length is checked below).
    if let Err(e) = tls.read_to_end(&mut response).await
        && e.kind() != std::io::ErrorKind::UnexpectedEof
    {
        return Err(ExplainError::Io(e));
    }
    parse_response(&String::from_utf8_lossy(&response))
}

/// (status, body) of an HTTP/1.1 response with a Content-Length body.
fn parse_response(text: &str) -> Result<(u16, String), ExplainError> {
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| ExplainError::Http(text.chars().take(80).collect()))?;
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ExplainError::Http(head.lines().next().unwrap_or("").to_string()))?;
    let length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())
            .flatten()
    });
    if length.is_some_and(|n| n != body.len()) {
        return Err(ExplainError::Http(format!(
            "a body of {} bytes, {} announced",
            body.len(),
            length.unwrap_or_default()
        )));
    }
    Ok((status, body.to_string()))
}

/// The secure port's certificate is self-signed by default, and the tunnel it is reached
/// through was opened by the API server to the pod the election Lease names, over the user's
/// authenticated connection: the certificate is not checked (the handshake's signature is).
#[derive(Debug)]
pub(crate) struct ThroughTheTunnel(pub(crate) Arc<CryptoProvider>);

impl ServerCertVerifier for ThroughTheTunnel {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, tokio_rustls::rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        tokio_rustls::rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        tokio_rustls::rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_gives_its_status_and_body() {
        let text = "HTTP/1.1 403 Forbidden\r\ncontent-length: 5\r\n\r\nnope\n";
        let (status, body) = parse_response(text).unwrap();
        assert_eq!((status, body.as_str()), (403, "nope\n"));
    }

    #[test]
    fn a_response_cut_short_is_an_error() {
        let text = "HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\n{}";
        assert!(matches!(parse_response(text), Err(ExplainError::Http(_))));
    }
}
