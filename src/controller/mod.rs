//! The async side: the control loop that owns the caches and dispatches to `logic`, the
//! watches that feed it, the writer that applies its actions, and the leader election.
//!
//! ```text
//! watch (one task per resource) ─▶ inbox ─▶ event_loop ─▶ reflector ─▶ caches (ClusterView)
//!                                             │ timers: monitor pass, tainting pass, evictions
//!                                             ├─▶ logic (pure) ─▶ actions ─▶ writer ─▶ API
//!                                             └─▶ observer (metrics, /readyz, timeline)
//! leader_election ─▶ leadership term ─▶ event_loop (acts only while leading) and writer
//! ```
//!
//! All of it stops when `run`'s future is dropped.

mod event_loop;
mod fresh_reads;
mod leader_election;
mod leadership;
mod lean_node;
pub mod observer;
pub mod questions;
mod reflector;
pub mod tasks;
mod watch;
pub mod writer;

use crate::clock::Clock;
use crate::cluster::Cluster;
use crate::metrics::Metrics;
use crate::settings::Settings;
use event_loop::EventLoop;
pub use observer::{NoObserver, Observer};
use std::sync::Arc;
use tasks::Tasks;
use tokio::sync::watch as tokio_watch;
use tracing::Instrument;
use writer::Writer;

/// Everything one controller process needs.
pub struct Context<C: Cluster> {
    pub cluster: C,
    pub clock: Arc<dyn Clock>,
    pub settings: Settings,
    /// Leader-election identity (pod name or hostname).
    pub identity: String,
    /// Where reports go besides the metrics (`/readyz`, the simulator's timeline).
    pub observer: Arc<dyn Observer>,
    pub metrics: Arc<Metrics>,
    /// Becomes `true` on SIGTERM/SIGINT: stop taking work, release the lease, return.
    pub shutdown: tokio_watch::Receiver<bool>,
}

/// Runs the controller until shutdown. Dropping the future (the simulator's
/// `restart-controller`) stops everything at once and releases nothing.
pub async fn run<C: Cluster>(ctx: Context<C>) {
    run_answering(ctx, None).await
}

/// [`run`], answering `status` and `explain` questions (the admin port's `/debug/explain`).
pub async fn run_answering<C: Cluster>(
    ctx: Context<C>,
    questions: Option<tokio::sync::mpsc::Receiver<questions::Question>>,
) {
    let Context {
        cluster,
        clock,
        settings,
        identity,
        observer,
        metrics,
        shutdown,
    } = ctx;
    let observer: Arc<dyn Observer> = Arc::new(observer::Fanout(vec![
        metrics.clone() as Arc<dyn Observer>,
        observer,
    ]));
    let tasks = Tasks::default();
    let _guard = tasks.abort_on_drop();

    // Leadership term (0: not leading); without leader election this process leads for good.
    let (leader_tx, leader_rx) = tokio_watch::channel(u64::from(!settings.leader_elect));
    let (contact_tx, contact_rx) = tokio::sync::mpsc::unbounded_channel();
    // Who holds the election Lease, for a standby's answers.
    let (holder_tx, holder_rx) = tokio_watch::channel(None);
    metrics.leadership.set_leader(!settings.leader_elect);
    let leader_done = if settings.leader_elect {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let leader_loop = leader_election::LeaderLoop {
            cluster: cluster.at(crate::cluster::Priority::LeaderLease),
            clock: clock.clone(),
            settings: settings.clone(),
            identity: identity.clone(),
            metrics: metrics.clone(),
            leader: leader_tx,
            shutdown: shutdown.clone(),
            terms: Default::default(),
            contact: contact_tx,
            holder: holder_tx,
        };
        tasks.spawn(
            async move {
                leader_loop.run().await;
                let _ = done_tx.send(());
            }
            .instrument(tracing::info_span!("leader_election", identity = %identity)),
        );
        Some(done_rx)
    } else {
        // Leader for good: keep the sender, so the receiver never reports a closed channel.
        tasks.spawn(async move {
            leader_tx.closed().await;
        });
        None
    };

    let writer = Writer::new(
        cluster.clone(),
        clock.clone(),
        metrics.clone(),
        &settings,
        leader_rx.clone(),
        tasks.clone(),
    );
    let mut event_loop = EventLoop::new(
        cluster,
        clock,
        settings,
        observer,
        metrics,
        writer,
        tasks,
        (leader_rx, contact_rx),
    );
    if let Some(questions) = questions {
        event_loop.answer_questions(questions::Inbox {
            questions,
            holder: holder_rx,
        });
    }
    event_loop
        .run(shutdown)
        .instrument(tracing::info_span!("controller", identity = %identity))
        .await;
    if let Some(done) = leader_done {
        let _ = done.await;
    }
}
