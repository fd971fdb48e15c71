//! The staleness guard's reads afresh (its rules: `logic::freshness`), in a task of their own:
//! the control loop goes on meanwhile, and their pages are decoded there, not in the loop.

use crate::cluster::{ApiError, Cluster, ObjectVersion};
use crate::logic::freshness::Heartbeats;
use futures::FutureExt;
use futures::future::BoxFuture;
use jiff::Timestamp;
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
    let cluster = cluster.clone();
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
    answers: tokio::task::JoinHandle<Answers>,
}

impl InFlight {
    pub fn spawn(
        started: Timestamp,
        what: Vec<Heartbeats>,
        reads: BoxFuture<'static, Answers>,
    ) -> Self {
        InFlight {
            started,
            what,
            answers: tokio::spawn(reads),
        }
    }
}

impl Drop for InFlight {
    /// Reads nobody waits for any more (leadership lost, the controller stopped) are cut off.
    fn drop(&mut self) {
        self.answers.abort();
    }
}

/// The answers of the reads in flight, if any (else never ready), with when they started.
pub async fn answers(reads: &mut Option<InFlight>) -> (Timestamp, Answers) {
    let Some(reads) = reads else {
        return std::future::pending().await;
    };
    let answers = (&mut reads.answers).await;
    (reads.started, reads.answers_of(answers))
}

/// The answers of the reads in flight if they have all come in, without waiting.
pub fn answered(reads: &mut Option<InFlight>) -> Option<(Timestamp, Answers)> {
    let reads = reads.as_mut()?;
    let answers = (&mut reads.answers).now_or_never()?;
    Some((reads.started, reads.answers_of(answers)))
}

impl InFlight {
    /// The task's answers, or a failed read of each resource if the task ended without them.
    fn answers_of(&self, joined: Result<Answers, tokio::task::JoinError>) -> Answers {
        match joined {
            Ok(answers) => answers,
            Err(ended) => self
                .what
                .iter()
                .map(|w| {
                    let e = ApiError::Other(format!("read afresh ended: {ended}"));
                    (*w, Err(e))
                })
                .collect(),
        }
    }
}
