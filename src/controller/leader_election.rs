//! Leader election on a coordination.k8s.io Lease, driven by the pure `logic::leader::Elector`.
//!
//! The leader renews every retry period; a leader that has not renewed within the renew
//! deadline stops acting at once (the `watch` channel the writer reads flips to false). On
//! shutdown a leader releases the lease so a standby takes over without waiting for expiry.

use crate::clock::Clock;
use crate::cluster::{ApiError, Cluster};
use crate::logic::leader::{Decision, Elector, LeaseRecord};
use crate::metrics::Metrics;
use crate::settings::Settings;
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

pub fn record_of(lease: &Lease) -> LeaseRecord {
    let spec = lease.spec.clone().unwrap_or_default();
    LeaseRecord {
        holder: spec.holder_identity.filter(|h| !h.is_empty()),
        lease_duration: Duration::from_secs(spec.lease_duration_seconds.unwrap_or(0).max(0) as u64),
        acquire_time: spec.acquire_time.map(|t| t.0),
        renew_time: spec.renew_time.map(|t| t.0),
        transitions: spec.lease_transitions.unwrap_or(0),
    }
}

fn apply_record(lease: &mut Lease, record: &LeaseRecord) {
    lease.spec = Some(LeaseSpec {
        holder_identity: record.holder.clone(),
        lease_duration_seconds: Some(record.lease_duration.as_secs().min(i32::MAX as u64) as i32),
        acquire_time: record.acquire_time.map(MicroTime),
        renew_time: record.renew_time.map(MicroTime),
        lease_transitions: Some(record.transitions),
        ..Default::default()
    });
}

/// `call`, or `Unavailable` when it takes longer than `limit`.
async fn bounded<T>(
    limit: Duration,
    call: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    tokio::time::timeout(limit, call)
        .await
        .unwrap_or_else(|_| Err(ApiError::Unavailable(format!("no answer within {limit:?}"))))
}

/// What the leader election learns of the API server, for the outage rule
/// (docs/differences.md#control-plane-outages): a standby has no other requests to go by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contact {
    /// A request sent at this time failed as unavailable, or was answered late.
    Unanswered(Timestamp),
    /// The first prompt answer after those, at this time.
    Answered(Timestamp),
}

/// Tells the control loop about the API server's answers, on changes only.
struct ContactReport {
    tx: mpsc::UnboundedSender<Contact>,
    slow: Duration,
    away: bool,
}

impl ContactReport {
    /// A request sent at `sent` came back at `now`; `unavailable`: it failed as unavailable.
    fn heard(&mut self, sent: Timestamp, now: Timestamp, unavailable: bool) {
        let late = crate::logic::time::since(now, sent) > self.slow;
        let contact = if unavailable || late {
            (!self.away).then_some(Contact::Unanswered(sent))
        } else {
            self.away.then_some(Contact::Answered(now))
        };
        if let Some(contact) = contact {
            self.away = matches!(contact, Contact::Unanswered(_));
            let _ = self.tx.send(contact);
        }
    }
}

pub struct LeaderLoop<C: Cluster> {
    pub cluster: C,
    pub clock: Arc<dyn Clock>,
    pub settings: Settings,
    pub identity: String,
    pub metrics: Arc<Metrics>,
    /// The leadership term: 0 while not leading, a new number each time the lease is won, so
    /// that a loss and a win in between two looks are never mistaken for "still leading".
    pub leader: watch::Sender<u64>,
    pub shutdown: watch::Receiver<bool>,
    /// Terms handed out so far.
    pub terms: std::sync::atomic::AtomicU64,
    /// Where the API server's answers to the election's requests are reported.
    pub contact: mpsc::UnboundedSender<Contact>,
    /// Who holds the Lease as last read (`None`: nobody, or not read yet).
    pub holder: watch::Sender<Option<String>>,
}

impl<C: Cluster> LeaderLoop<C> {
    /// Runs until shutdown; then releases the lease if held.
    pub async fn run(mut self) {
        let s = &self.settings;
        let (ns, name) = (
            s.leader_elect_resource_namespace.clone(),
            s.leader_elect_resource_name.clone(),
        );
        self.metrics.leadership.set_election_status(&name, false);
        let mut elector = Elector::new(&self.identity, s.leader_elect_lease_duration);
        let mut last_renew: Option<Timestamp> = None;
        let mut contact = ContactReport {
            tx: self.contact.clone(),
            slow: crate::logic::freshness::slow_answer(s.node_monitor_grace_period),
            away: false,
        };
        let unavailable = |r: &Result<_, ApiError>| matches!(r, Err(ApiError::Unavailable(_)));
        loop {
            let now = self.clock.now();
            // A hung request must not keep a leader acting past its renew deadline: every call
            // is bounded by the time left until the deadline.
            let budget = match last_renew {
                Some(at) => {
                    let used = crate::logic::time::since(now, at);
                    s.leader_elect_renew_deadline
                        .saturating_sub(used)
                        .max(Duration::from_millis(100))
                }
                None => s.leader_elect_renew_deadline,
            };
            let read = bounded(budget, self.cluster.get_lease(&ns, &name)).await;
            contact.heard(now, self.clock.now(), unavailable(&read));
            let read = match read {
                Ok(lease) => Some(Some(lease)),
                Err(ApiError::NotFound(_)) => Some(None),
                Err(e) => {
                    warn!(error = %e, "cannot read the leader lease");
                    None
                }
            };
            let mut renewed = false;
            if let Some(existing) = read {
                let current = existing.as_ref().map(record_of);
                let holder = current.as_ref().and_then(|r| r.holder.clone());
                self.holder.send_if_modified(|h| {
                    let changed = *h != holder;
                    *h = holder;
                    changed
                });
                match elector.decide(current.as_ref(), now) {
                    Decision::Write(record) => {
                        let sent = self.clock.now();
                        let result = match existing {
                            Some(mut lease) => {
                                apply_record(&mut lease, &record);
                                bounded(budget, self.cluster.replace_lease(&lease)).await
                            }
                            None => {
                                let mut lease = Lease::default();
                                lease.metadata.name = Some(name.clone());
                                lease.metadata.namespace = Some(ns.clone());
                                apply_record(&mut lease, &record);
                                bounded(budget, self.cluster.create_lease(&lease)).await
                            }
                        };
                        contact.heard(sent, self.clock.now(), unavailable(&result));
                        match result {
                            Ok(_) => {
                                self.metrics.writer.write("lease", "ok");
                                renewed = true;
                                last_renew = Some(now);
                            }
                            Err(e) => {
                                self.metrics.writer.write("lease", e.kind());
                                warn!(error = %e, "cannot write the leader lease");
                            }
                        }
                    }
                    Decision::Follow { holder } => {
                        if *self.leader.borrow() != 0 {
                            warn!(%holder, "another replica holds the lease: standing down");
                        }
                        last_renew = None;
                        self.set_leader(false);
                    }
                }
            }
            if renewed {
                self.set_leader(true);
            } else if let Some(at) = last_renew
                && Elector::renew_deadline_passed(
                    at,
                    self.clock.now(),
                    self.settings.leader_elect_renew_deadline,
                )
            {
                warn!(
                    "could not renew the leader lease within the renew deadline: stopping all writes"
                );
                last_renew = None;
                self.set_leader(false);
            }
            let wait = self.settings.leader_elect_retry_period;
            tokio::select! {
                biased;
                _ = self.shutdown.changed() => break,
                _ = tokio::time::sleep(wait) => {}
            }
            if *self.shutdown.borrow() {
                break;
            }
        }
        self.release(&elector, &ns, &name).await;
    }

    fn set_leader(&self, leader: bool) {
        let term = *self.leader.borrow();
        if (term != 0) != leader {
            info!(identity = %self.identity, leader, "leadership changed");
            self.metrics.leadership.set_leader(leader);
            self.metrics
                .leadership
                .set_election_status(&self.settings.leader_elect_resource_name, leader);
            let next = if leader {
                self.terms
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    + 1
            } else {
                0
            };
            let _ = self.leader.send(next);
        }
    }

    async fn release(&self, elector: &Elector, ns: &str, name: &str) {
        let was_leader = *self.leader.borrow() != 0;
        self.set_leader(false);
        if !was_leader {
            return;
        }
        if let Ok(mut lease) = self.cluster.get_lease(ns, name).await
            && let Some(record) = elector.release(&record_of(&lease), self.clock.now())
        {
            apply_record(&mut lease, &record);
            match self.cluster.replace_lease(&lease).await {
                Ok(_) => info!("released the leader lease"),
                Err(e) => warn!(error = %e, "could not release the leader lease"),
            }
        }
    }
}
