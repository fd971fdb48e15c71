//! The admin HTTP endpoint: `/metrics` (Prometheus text format), `/healthz` and `/readyz`.
//!
//! A deliberately tiny HTTP/1.1 responder (one request per connection, GET only): the three
//! endpoints need nothing more, and it keeps a server framework out of the dependency set.

use crate::controller::Hooks;
use crate::logic::zones::ZoneState;
use crate::metrics::Metrics;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tracing::{debug, warn};

/// What `/readyz` reports, kept up to date through the controller's hooks.
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

impl Hooks for Readiness {
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

/// The response for a request path: (status line, content type, body).
pub fn respond(
    path: &str,
    metrics: &Metrics,
    readiness: &Readiness,
) -> (&'static str, &'static str, String) {
    match path {
        "/metrics" => ("200 OK", "text/plain; version=0.0.4", metrics.render()),
        "/healthz" => ("200 OK", "text/plain", "ok\n".to_string()),
        "/readyz" => {
            let (ready, body) = readiness.report();
            (
                if ready {
                    "200 OK"
                } else {
                    "503 Service Unavailable"
                },
                "text/plain",
                body,
            )
        }
        _ => ("404 Not Found", "text/plain", "not found\n".to_string()),
    }
}

/// Serves until the listener fails.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, readiness: Arc<Readiness>) {
    loop {
        let (mut socket, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "admin listener failed");
                return;
            }
        };
        let metrics = metrics.clone();
        let readiness = readiness.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut len = 0;
            // Read until the end of the request head (or the buffer is full).
            while len < buf.len() {
                match socket.read(&mut buf[len..]).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => len += n,
                }
                if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            let head = String::from_utf8_lossy(&buf[..len]);
            let mut words = head.split_whitespace();
            let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            let path = path.split('?').next().unwrap_or("");
            debug!(%peer, method, path, "admin request");
            let (status, content_type, body) = if method == "GET" {
                respond(path, &metrics, &readiness)
            } else {
                (
                    "405 Method Not Allowed",
                    "text/plain",
                    "only GET\n".to_string(),
                )
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readyz_is_unavailable_until_the_caches_sync_and_says_why() {
        let r = Readiness::default();
        let m = Metrics::new();
        let (status, _, body) = respond("/readyz", &m, &r);
        assert_eq!(status, "503 Service Unavailable");
        assert!(body.contains("not synced"));
        r.readiness(true, false);
        r.watch_stale("leases", true);
        let (status, _, body) = respond("/readyz", &m, &r);
        assert_eq!(status, "200 OK");
        assert!(body.contains("role: standby"));
        assert!(body.contains("watch leases: stale"));
    }

    #[test]
    fn readyz_is_unavailable_while_a_misconfiguration_is_suspected_and_names_it() {
        let r = Readiness::default();
        let m = Metrics::new();
        r.readiness(true, true);
        r.suspicion("node_leases", Some("none of the 3 nodes has a Lease"));
        let (status, _, body) = respond("/readyz", &m, &r);
        assert_eq!(status, "503 Service Unavailable");
        assert!(
            body.contains("suspected misconfiguration (node_leases): none of the 3 nodes"),
            "{body}"
        );
        r.suspicion("node_leases", None);
        assert_eq!(respond("/readyz", &m, &r).0, "200 OK");
    }

    #[test]
    fn readyz_is_unavailable_when_the_credentials_could_not_be_checked() {
        let r = Readiness::default();
        let m = Metrics::new();
        r.readiness(true, true);
        r.unverified(Some("401 Unauthorized".into()));
        let (status, _, body) = respond("/readyz", &m, &r);
        assert_eq!(status, "503 Service Unavailable");
        assert!(
            body.contains("not verified at start-up: 401 Unauthorized"),
            "{body}"
        );
        r.unverified(None);
        assert_eq!(respond("/readyz", &m, &r).0, "200 OK");
    }

    #[test]
    fn metrics_are_served_in_prometheus_text_format() {
        let m = Metrics::new();
        m.init_zone_evictions("z");
        let (status, ctype, body) = respond("/metrics", &m, &Readiness::default());
        assert_eq!(status, "200 OK");
        assert!(ctype.starts_with("text/plain"));
        assert!(body.contains("node_collector_evictions_total"));
    }
}
