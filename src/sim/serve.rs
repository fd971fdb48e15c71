//! `simulate --serve`: the simulated cluster served over the Kubernetes HTTP API, in real time,
//! so that the production controller (`run`, with `kube::Client`) can be pointed at it.
//!
//! The store, the kubelets and the scenario are those of [`super::simulate`]; no controller runs
//! inside (`restart-controller` does nothing). Every request goes through the store's semantics
//! and the timeline records what the served API applied, as in virtual time. The served subset
//! is what the controller calls (see `api`), with Kubernetes' status codes and watch protocol.

mod api;
mod discovery;
mod pages;
mod watch;

use super::kubelet::millis;
use super::scenario::Scenario;
use super::world::World;
use super::{Entry, Store, finish_timeline};
use crate::clock::TokioClock;
use hyper_util::rt::TokioIo;
use jiff::Timestamp;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// Errors of `simulate --serve`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "--serve accepts only a loopback address (such as 127.0.0.1:6443 or [::1]:6443), not {0}: \
         the simulated API server has no authentication"
    )]
    NotLoopback(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot write the kubeconfig {}: {source}", path.display())]
    Kubeconfig {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Tuning of the served API (tests shrink the history to provoke 410 Gone).
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Changes kept per resource for watches resuming from a resourceVersion; a watch from an
    /// older one gets an `Expired` (410) error event and must re-list.
    pub watch_history: usize,
    /// An idle watch that asked for bookmarks gets one this often.
    pub bookmark_interval: Duration,
    /// `--inject-conflicts`: the first write of each kind (PUT or PATCH, status PUT or PATCH,
    /// DELETE, eviction POST) to each Node and each Pod is answered 409 Conflict without being
    /// applied, as if another client had written first. Leases and Events are not affected.
    pub inject_conflicts: bool,
    /// How many injected conflicts were answered (shared: read it after serving).
    pub injected_conflicts: Arc<AtomicU64>,
    /// Streaming lists (`sendInitialEvents`, KEP-3157 "WatchList") are served, as by
    /// Kubernetes 1.32 and 1.34+. Off (`--no-watch-list`), a watch with `sendInitialEvents` is
    /// answered 422 `Invalid`, as by 1.33, whose WatchList feature gate is off by default.
    pub watch_list: bool,
    /// How many streaming lists were started (shared: read it after serving).
    pub streamed_lists: Arc<AtomicU64>,
    /// How many watches were refused because they asked for a streaming list while
    /// `watch_list` is off (shared).
    pub refused_watch_lists: Arc<AtomicU64>,
}

impl ServeOptions {
    /// The number of injected 409 Conflict answers so far.
    pub fn injected_conflicts(&self) -> u64 {
        self.injected_conflicts.load(Ordering::Relaxed)
    }

    /// The number of streaming lists started so far.
    pub fn streamed_lists(&self) -> u64 {
        self.streamed_lists.load(Ordering::Relaxed)
    }

    /// The number of streaming lists refused (with `watch_list` off) so far.
    pub fn refused_watch_lists(&self) -> u64 {
        self.refused_watch_lists.load(Ordering::Relaxed)
    }
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            watch_history: 10_000,
            bookmark_interval: Duration::from_secs(5),
            inject_conflicts: false,
            injected_conflicts: Arc::new(AtomicU64::new(0)),
            watch_list: true,
            streamed_lists: Arc::new(AtomicU64::new(0)),
            refused_watch_lists: Arc::new(AtomicU64::new(0)),
        }
    }
}

/// Serves `scenario` (kubelet phases from `seed`) on `addr`, a loopback address, in real time
/// for the scenario's duration (or `until`), writing a kubeconfig for clients to
/// `kubeconfig_out`. Returns the timeline, ending with its `Summary`, as `simulate` does.
pub async fn serve(
    scenario: &Scenario,
    seed: u64,
    addr: SocketAddr,
    kubeconfig_out: Option<&Path>,
    until: Option<Duration>,
    options: &ServeOptions,
) -> Result<Vec<Entry>, Error> {
    if !addr.ip().is_loopback() {
        return Err(Error::NotLoopback(addr));
    }
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen {
            addr: addr.to_string(),
            source,
        })?;
    serve_on(listener, scenario, seed, kubeconfig_out, until, options).await
}

/// [`serve`] on a listener bound by the caller (e.g. to port 0).
pub async fn serve_on(
    listener: TcpListener,
    scenario: &Scenario,
    seed: u64,
    kubeconfig_out: Option<&Path>,
    until: Option<Duration>,
    options: &ServeOptions,
) -> Result<Vec<Entry>, Error> {
    let addr = listener.local_addr().map_err(|source| Error::Listen {
        addr: "the given listener".to_string(),
        source,
    })?;
    if !addr.ip().is_loopback() {
        return Err(Error::NotLoopback(addr));
    }
    if let Some(path) = kubeconfig_out {
        write_kubeconfig(path, addr).map_err(|source| Error::Kubeconfig {
            path: path.to_path_buf(),
            source,
        })?;
    }
    let duration = until.unwrap_or(scenario.duration);
    let clock = TokioClock::starting_at(Timestamp::now());
    let store = Store::new(clock);
    store.enable_watch_history(options.watch_history);
    let world = World::new(scenario, seed, store.clone(), None);
    let world_task = tokio::spawn(world.run());
    let app = Arc::new(api::App::new(store.clone(), options.clone()));
    tracing::info!(%addr, ?duration, "serving the simulated cluster");

    let mut connections = JoinSet::new();
    let end = tokio::time::sleep(duration);
    tokio::pin!(end);
    loop {
        tokio::select! {
            _ = &mut end => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // As kube-apiserver's (Go's default): without it, Nagle's algorithm holds
                    // a watch event back while the previous one is unacknowledged, and delayed
                    // ACKs make that tens of milliseconds.
                    if let Err(error) = stream.set_nodelay(true) {
                        tracing::debug!(%error, "cannot set TCP_NODELAY");
                    }
                    let app = Arc::clone(&app);
                    connections.spawn(async move {
                        let service = hyper::service::service_fn(move |request| {
                            api::handle(Arc::clone(&app), request)
                        });
                        if let Err(error) = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                        {
                            tracing::debug!(%error, "connection ended");
                        }
                    });
                }
                Err(error) => {
                    // E.g. out of file descriptors: wait a little rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    world_task.abort();
    connections.shutdown().await;
    Ok(finish_timeline(store.timeline(), millis(duration)))
}

/// Writes a kubeconfig whose current context points at `http://addr` with a dummy token,
/// atomically (a reader polling for the file never sees half of it).
fn write_kubeconfig(path: &Path, addr: SocketAddr) -> std::io::Result<()> {
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
  - name: simulated
    cluster:
      server: http://{addr}
users:
  - name: simulated
    user:
      token: simulated-cluster-token
contexts:
  - name: simulated
    context:
      cluster: simulated
      user: simulated
current-context: simulated
"
    );
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}
