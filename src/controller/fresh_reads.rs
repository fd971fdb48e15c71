//! The staleness guard's reads afresh (its rules: `logic::freshness`), in a task of their own:
//! the control loop goes on meanwhile, and their pages are decoded there, not in the loop.

use crate::clock::Clock;
use crate::cluster::{ApiError, Cluster, ObjectVersion};
use crate::logic::freshness::Heartbeats;
use futures::FutureExt;
use futures::future::BoxFuture;
use jiff::Timestamp;
use std::sync::Arc;
use std::time::Duration;

/// What the reads found: each watch's objects with the versions the API server listed.
pub type Answers = Vec<(Heartbeats, Result<Vec<ObjectVersion>, ApiError>)>;

/// Reads of the names and versions of `what`, each bounded by `limit` (a slow answer counts
/// as a failed one, so the pass it holds back comes in time).
pub fn read<C: Cluster>(
    cluster: &C,
    lease_namespace: &str,
    what: Vec<Heartbeats>,
    limit: Duration,
) -> BoxFuture<'static, Answers> {
    // At the NoExecute taints' priority: the tainting pass waits for these answers.
    let cluster = cluster.at(crate::cluster::Priority::NoExecute);
    let namespace = lease_namespace.to_string();
    async move {
        let read = |w: Heartbeats| {
            let (cluster, namespace) = (&cluster, &namespace);
            async move {
                let list = async {
                    match w {
                        Heartbeats::Leases => cluster.list_lease_versions(namespace).await,
                        Heartbeats::Nodes => cluster.list_node_versions().await,
                    }
                };
                let answer = tokio::time::timeout(limit, list).await.unwrap_or_else(|_| {
                    Err(ApiError::Unavailable(format!("no answer within {limit:?}")))
                });
                (w, answer)
            }
        };
        futures::future::join_all(what.into_iter().map(read)).await
    }
    .boxed()
}

/// Reads in flight: the monitor pass that asked for them runs once they are answered.
pub struct InFlight {
    /// When they started.
    pub started: Timestamp,
    /// What is read, for answers that never come (the task ended).
    pub what: Vec<Heartbeats>,
    /// The answers, with when they came (taken in the task: a busy loop must not make a
    /// prompt answer look slow).
    answers: tokio::task::JoinHandle<(Answers, Timestamp)>,
}

/// When reads afresh were sent and answered.
pub type Span = (Timestamp, Timestamp);

impl InFlight {
    pub fn spawn(
        clock: Arc<dyn Clock>,
        what: Vec<Heartbeats>,
        reads: BoxFuture<'static, Answers>,
    ) -> Self {
        InFlight {
            started: clock.now(),
            what,
            answers: tokio::spawn(async move {
                let answers = reads.await;
                (answers, clock.now())
            }),
        }
    }
}

impl Drop for InFlight {
    /// Reads nobody waits for any more (leadership lost, the controller stopped) are cut off.
    fn drop(&mut self) {
        self.answers.abort();
    }
}

/// The answers of the reads in flight, if any (else never ready), with when they were sent
/// and answered.
pub async fn answers(reads: &mut Option<InFlight>, clock: &dyn Clock) -> (Span, Answers) {
    let Some(reads) = reads else {
        return std::future::pending().await;
    };
    let answers = (&mut reads.answers).await;
    reads.answers_of(answers, clock)
}

/// The answers of the reads in flight if they have all come in, without waiting.
pub fn answered(reads: &mut Option<InFlight>, clock: &dyn Clock) -> Option<(Span, Answers)> {
    let reads = reads.as_mut()?;
    let answers = (&mut reads.answers).now_or_never()?;
    Some(reads.answers_of(answers, clock))
}

impl InFlight {
    /// The task's answers, or a failed read of each resource if the task ended without them.
    fn answers_of(
        &self,
        joined: Result<(Answers, Timestamp), tokio::task::JoinError>,
        clock: &dyn Clock,
    ) -> (Span, Answers) {
        match joined {
            Ok((answers, at)) => ((self.started, at), answers),
            Err(ended) => {
                let answers = self
                    .what
                    .iter()
                    .map(|w| {
                        let e = ApiError::Other(format!("read afresh ended: {ended}"));
                        (*w, Err(e))
                    })
                    .collect();
                ((self.started, clock.now()), answers)
            }
        }
    }
}
