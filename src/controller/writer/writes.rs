//! One attempt at each kind of write: read the live object, ask `logic::recheck` whether the
//! write is still wanted and what it is, then write only that, guarded by what was read.

use super::job::{Job, Write};
use super::queue::Attempt;
use super::reads::{Batch, Seq};
use super::{PodNews, WriterState, pod_key};
use crate::cluster::{ApiError, Cluster, Priority};
use crate::logic::actions::{PodId, SeenConditions, TaintChange, TaintPurpose};
use crate::logic::recheck::{self, SilenceSeen};
use crate::logic::{conditions, monitor};
use crate::settings::EvictionMode;
use futures::FutureExt;
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;
use std::sync::Arc;
use tracing::{debug, info, warn};

impl<C: Cluster> WriterState<C> {
    /// Records the outcome of one API call and classifies it.
    pub(super) fn outcome<T>(
        &self,
        kind: &'static str,
        result: Result<T, ApiError>,
    ) -> Result<T, Attempt> {
        match result {
            Ok(v) => {
                self.metrics.writer.write(kind, "ok");
                Ok(v)
            }
            Err(e) => {
                self.metrics.writer.write(kind, e.kind());
                Err(match e {
                    ApiError::Conflict(_) => Attempt::Conflict,
                    ApiError::NotFound(_) => Attempt::Done,
                    other => Attempt::Retry(other),
                })
            }
        }
    }

    /// A read; NotFound means the action has nothing left to do.
    pub(super) fn read<T>(result: Result<T, ApiError>) -> Result<T, Attempt> {
        result.map_err(|e| match e {
            ApiError::NotFound(_) => Attempt::Done,
            other => Attempt::Retry(other),
        })
    }

    /// One attempt at `write`; `first` when no attempt at it was made before;
    /// `event_recorded` whether an earlier attempt at a pod mark handed over its Event.
    pub(super) async fn attempt(
        self: &Arc<Self>,
        write: &Write,
        first: bool,
        event_recorded: &mut bool,
    ) -> Attempt {
        let batch = match write {
            Write::Evict { batch, .. }
            | Write::PodNotReady { batch, .. }
            | Write::NodeUnknown { batch, .. } => batch.as_ref(),
            _ => None,
        };
        let running = self.start_attempt(batch.filter(|_| first).map(Batch::seq));
        let since = running.since;
        // Every request of the attempt goes at the write's priority, its reads included.
        let cluster = self.cluster.at(write.priority());
        let cluster = &cluster;
        let r = match write {
            Write::NodeUnknown {
                node,
                seen_alive,
                decided,
                seen,
                batch,
            } => {
                let seen = seen.as_ref().filter(|_| first);
                let by_list = first && batch.is_some();
                self.mark_node_unknown(cluster, node, *seen_alive, *decided, seen, since, by_list)
                    .await
            }
            Write::Taints {
                node,
                change,
                purpose,
                seen,
            } => {
                let seen = seen.as_deref().filter(|_| first);
                self.change_taints(cluster, node, change, purpose, seen)
                    .await
            }
            Write::Labels { node, labels } => self.set_labels(cluster, node, labels).await,
            Write::PodNotReady {
                pod,
                node,
                seen_alive,
                seen,
                lease_listed,
                ..
            } => {
                // The watch's latest copy, if the pod changed since the decision (an eviction
                // of it went first); none at all once it is deleted.
                match first.then(|| self.news(pod)).flatten() {
                    Some(PodNews::Gone) => {
                        debug!(pod = %pod_key(pod), "deleted since the decision: not marking it");
                        Ok(())
                    }
                    news => {
                        let newer = match news {
                            Some(PodNews::Changed(newer)) => Some(newer),
                            _ => None,
                        };
                        // As for evictions: the cached copy serves a first attempt whose
                        // write it can guard.
                        let seen = newer.as_deref().or(seen.as_deref()).filter(|seen| {
                            first && recheck::can_guard_a_write(seen, &pod.uid, node)
                        });
                        let lease_listed = lease_listed.as_deref().filter(|_| first);
                        self.mark_pod_not_ready(
                            cluster,
                            pod,
                            (node, lease_listed),
                            *seen_alive,
                            seen,
                            since,
                            event_recorded,
                        )
                        .await
                    }
                }
            }
            Write::Evict {
                pod, node, seen, ..
            } => {
                // The cached copy serves the first attempt only, and only when its writes can
                // be guarded: it has a resourceVersion, it is this pod on this node, and it
                // has no DisruptionTarget yet (the condition's patch carries the version).
                let seen = seen.as_deref().filter(|seen| {
                    first
                        && recheck::can_guard_a_write(seen, &pod.uid, node)
                        && !recheck::has_disruption_target(seen)
                });
                self.evict_pod(
                    cluster,
                    &pod.namespace,
                    &pod.name,
                    &pod.uid,
                    node,
                    seen.cloned(),
                    since,
                )
                .await
            }
            Write::Event(record) => {
                let now = self.clock.now();
                match cluster.create_event(record, now).await {
                    Ok(()) => {
                        self.metrics.writer.write("event", "ok");
                        Ok(())
                    }
                    Err(e) => {
                        self.metrics.writer.write("event", e.kind());
                        Err(Attempt::Retry(e))
                    }
                }
            }
        };
        match r {
            Ok(()) => Attempt::Done,
            Err(a) => a,
        }
    }

    /// Marks the node's conditions Unknown. The first attempt starts from the conditions the
    /// decision saw (`seen`) and patches them guarded by their resourceVersion: if the node
    /// changed since, the patch is refused and the retry reads the node (its own read, not a
    /// shared one: its resourceVersion guards the write). Only the marked conditions are sent,
    /// merged by type on the server. `by_list`: the Lease is confirmed unchanged by the list
    /// of Lease versions the pass's marks share, rather than read.
    #[allow(clippy::too_many_arguments)]
    async fn mark_node_unknown(
        &self,
        cluster: &C,
        name: &str,
        seen_alive: SilenceSeen,
        decided: Timestamp,
        seen: Option<&SeenConditions>,
        since: Seq,
        by_list: bool,
    ) -> Result<(), Attempt> {
        let node = match seen {
            Some(seen) => seen.as_node(name),
            None => Self::read(cluster.get_node(name).await)?,
        };
        let listed = match seen {
            Some(seen) if by_list && !seen_alive.heartbeat_posted(&node) => {
                let version = seen.lease_version.as_deref();
                self.lease_unchanged_by_list(name, version, since, Priority::NodeMarks)
                    .await
            }
            _ => None,
        };
        let silent = match listed {
            Some(unchanged) => unchanged,
            None => {
                self.still_silent(&node, seen_alive, since, Priority::NodeMarks)
                    .await?
            }
        };
        if !silent {
            debug!(
                node = name,
                "kubelet posted or renewed its lease since the decision: not marking Unknown"
            );
            return Ok(());
        }
        let version = resource_version(&node.metadata).to_owned();
        // Stamped at this attempt, not at the decision: a retry that lands after an outage
        // says when the conditions changed on the server.
        let Some(mark) = conditions::unknown_mark(node, self.clock.now()) else {
            return Ok(());
        };
        let written = cluster
            .patch_node_conditions(name, &version, &mark.conditions)
            .await;
        self.outcome("node_status", written)?;
        self.metrics.writer.observe_unknown_write_delay(
            crate::logic::time::since(self.clock.now(), decided).as_secs_f64(),
        );
        info!(
            node = name,
            conditions = mark.changed.join(","),
            reason =
                "no Lease renewal or Ready heartbeat for longer than --node-monitor-grace-period",
            "marked node conditions Unknown"
        );
        Ok(())
    }

    /// Whether the live node shows no sign of life since the decision (`recheck::SilenceSeen`).
    /// The Lease is only read, so one read of it serves every attempt that began before it
    /// started; it is not read at all when the node posted a heartbeat.
    async fn still_silent(
        &self,
        node: &Node,
        seen: SilenceSeen,
        since: Seq,
        priority: Priority,
    ) -> Result<bool, Attempt> {
        if seen.heartbeat_posted(node) {
            return Ok(false);
        }
        let name = node.metadata.name.as_deref().unwrap_or("");
        let lease = self.live_lease(name, since, priority).await?;
        Ok(seen.still_silent(node, lease.as_deref()))
    }

    /// The node's Lease read live (shared, `shared_lease`); `None` when there is none.
    async fn live_lease(
        &self,
        node: &str,
        since: Seq,
        priority: Priority,
    ) -> Result<Option<Arc<Lease>>, Attempt> {
        match self.shared_lease(node, since, priority).await {
            Ok(lease) => Ok(Some(lease)),
            Err(ApiError::NotFound(_)) => Ok(None),
            Err(e) => Err(Attempt::Retry(e)),
        }
    }

    /// Whether a node whose pods' marks wait is still silent: its Lease read live (shared with
    /// the other marks of its pods) is renewed no later than the decision saw, and its Ready
    /// heartbeat, as the Node watch last showed it, is the one the decision saw. A kubelet that
    /// is back renews its Lease, so the node itself is read live only when its Lease cannot
    /// tell (there is none, or it has no renewTime) or the watch's news of it are not kept.
    /// `lease_listed`: the Lease's version the decision saw, when the pass's Unknown marks
    /// share a list of Lease versions; that list, if it shows the Lease at that version and
    /// the watch no change of it since the list began, answers for the Lease without a GET
    /// (anything else, and the Lease is read).
    async fn pods_node_still_silent(
        &self,
        node: &str,
        seen_alive: SilenceSeen,
        since: Seq,
        lease_listed: Option<&str>,
    ) -> Result<bool, Attempt> {
        if let (Some(version), Some(heartbeat)) = (lease_listed, self.watched_heartbeat(node)) {
            if heartbeat != seen_alive.heartbeat {
                return Ok(false);
            }
            let listed =
                self.lease_unchanged_by_list(node, Some(version), since, Priority::PodMarks);
            if listed.await == Some(true) {
                return Ok(true);
            }
        }
        let lease = self.live_lease(node, since, Priority::PodMarks).await?;
        let renew = lease.as_deref().and_then(recheck::lease_renew_time);
        match self.watched_heartbeat(node) {
            Some(heartbeat) if renew.is_some() => {
                Ok(heartbeat == seen_alive.heartbeat && renew == seen_alive.lease_renew)
            }
            _ => {
                // Only read, so shared with the other attempts on this node's pods.
                let (_, live) =
                    Self::read(self.shared_node(node, since, Priority::PodMarks).await)?;
                Ok(seen_alive.still_silent(&live, lease.as_deref()))
            }
        }
    }

    /// Changes the node's taints as the node calls for now: the first attempt decides on the
    /// cached node the decision saw (`seen`) and writes guarded by its resourceVersion, so a
    /// node that moved since refuses the patch (409) and the retry reads it live, as upstream
    /// reads after a failed write. A cached copy can justify a write, never the lack of one:
    /// when it calls for none, the live node decides.
    async fn change_taints(
        &self,
        cluster: &C,
        name: &str,
        change: &TaintChange,
        purpose: &TaintPurpose,
        seen: Option<&Node>,
    ) -> Result<(), Attempt> {
        let now = self.clock.now();
        let from_cache = seen.and_then(|node| {
            recheck::taints_to_write(node, change, purpose, now)
                .map(|write| (resource_version(&node.metadata).to_owned(), write))
        });
        let (version, write) = match from_cache {
            Some(found) => found,
            None => {
                let node = Self::read(cluster.get_node(name).await)?;
                match recheck::taints_to_write(&node, change, purpose, self.clock.now()) {
                    Some(write) => (resource_version(&node.metadata).to_owned(), write),
                    None => {
                        debug!(
                            node = name,
                            reason = purpose.reason(),
                            "taint change no longer wanted on the live node"
                        );
                        return Ok(());
                    }
                }
            }
        };
        let written = cluster
            .patch_node_taints(name, &version, &write.taints)
            .await;
        self.outcome("node_taints", written)?;
        info!(
            node = name,
            added = write.change.added(),
            removed = write.change.removed(),
            reason = purpose.reason(),
            "changed node taints"
        );
        if let TaintPurpose::ZoneEviction { zone } = purpose {
            self.metrics.monitor.inc_zone_evictions(zone);
            self.restamp_if_held(cluster, name, &write.change.add).await;
        }
        Ok(())
    }

    /// A zone's NoExecute taint is stamped (`timeAdded`) when it is sent. If the API server
    /// held the write (a hang) and answered after that second was over, the stamp would start
    /// its pods' countdowns before the taint existed: for a process that sees it appear that
    /// is taken care of (`logic::eviction`), not for one that lists it after a restart. So the
    /// stamp is moved to the answer, on the live node, guarded by its resourceVersion. Best
    /// effort: one attempt (the next write of the node's taints decides them afresh anyway).
    async fn restamp_if_held(&self, cluster: &C, name: &str, added: &[Taint]) {
        let answered = self.clock.now();
        let held = recheck::held_stamps(added, answered);
        if held.is_empty() {
            return;
        }
        let Ok(node) = cluster.get_node(name).await else {
            return;
        };
        let Some(taints) = recheck::restamped(&node, &held, answered) else {
            return;
        };
        let written = cluster
            .patch_node_taints(name, resource_version(&node.metadata), &taints)
            .await;
        match written {
            Ok(()) => info!(
                node = name,
                "a held taint write: its timeAdded moved to when it landed"
            ),
            Err(e) => warn!(node = name, error = %e, "could not move a held taint's timeAdded"),
        }
    }

    async fn set_labels(
        &self,
        cluster: &C,
        name: &str,
        wanted: &BTreeMap<String, String>,
    ) -> Result<(), Attempt> {
        let node = Self::read(cluster.get_node(name).await)?;
        let changes = recheck::labels_to_set(&node, wanted);
        if !changes.is_empty() {
            let written = cluster
                .patch_node_labels(name, resource_version(&node.metadata), &changes)
                .await;
            self.outcome("node_labels", written)?;
            let shown: Vec<String> = changes.iter().map(|(k, v)| format!("{k}={v}")).collect();
            info!(
                node = name,
                labels = shown.join(","),
                reason = "the beta OS and architecture labels follow the GA ones",
                "set node labels"
            );
        }
        Ok(())
    }

    /// The live pod, if it is still the one the decision was about (same UID, same node).
    async fn same_pod(
        &self,
        cluster: &C,
        namespace: &str,
        name: &str,
        uid: &str,
        node: &str,
    ) -> Result<Option<Pod>, Attempt> {
        let pod = Self::read(cluster.get_pod(namespace, name).await)?;
        Ok(recheck::same_binding(&pod, uid, node).then_some(pod))
    }

    /// Marks the pod Ready=False if its node is still silent, and hands over its Event once
    /// the write may have landed. The pod is the cached copy the decision saw (`seen`), whose
    /// resourceVersion guards the write, or read live; a copy already marked is read live
    /// before the mark is dropped.
    #[allow(clippy::too_many_arguments)]
    async fn mark_pod_not_ready(
        self: &Arc<Self>,
        cluster: &C,
        pod_id: &PodId,
        (node, lease_listed): (&str, Option<&str>),
        seen_alive: SilenceSeen,
        seen: Option<&Pod>,
        since: Seq,
        event_recorded: &mut bool,
    ) -> Result<(), Attempt> {
        let PodId {
            namespace,
            name,
            uid,
        } = pod_id;
        let seen = seen.filter(|pod| recheck::pod_not_ready_mark(pod, self.clock.now()).is_some());
        let pod = match seen {
            Some(pod) => pod.clone(),
            None => match self.same_pod(cluster, namespace, name, uid, node).await? {
                Some(pod) => pod,
                None => return Ok(()),
            },
        };
        if !self
            .pods_node_still_silent(node, seen_alive, since, lease_listed)
            .await?
        {
            debug!(
                node,
                "node showed a sign of life since the decision: not marking its pod NotReady"
            );
            return Ok(());
        }
        // This attempt's time, as for the node's conditions.
        let Some(mark) = recheck::pod_not_ready_mark(&pod, self.clock.now()) else {
            return Ok(());
        };
        let marked = [mark];
        let written = cluster
            .patch_pod_conditions(namespace, name, resource_version(&pod.metadata), &marked)
            .await;
        // After the write, as upstream (which records it unless the pod is gone): the pod
        // existed and was marked, or may have been (an answer lost on the way still recorded
        // it; the retry would find the pod marked and write nothing). Not after a conflict: the
        // write was refused and its retry records the Event. Once per mark.
        let may_have_landed =
            !matches!(written, Err(ApiError::NotFound(_) | ApiError::Conflict(_)));
        if may_have_landed && !std::mem::replace(event_recorded, true) {
            self.enqueue(Job::from(monitor::pod_not_ready_event(
                namespace, name, uid,
            )));
        }
        self.outcome("pod_status", written)?;
        info!(
            pod = %format!("{namespace}/{name}"),
            node,
            reason = "its node stopped reporting (heartbeats older than the grace period)",
            "marked pod NotReady"
        );
        Ok(())
    }

    /// Evicts the pod, if it is still due, re-checked on its live node and on the live pod or
    /// (`seen`) the cached copy the decision was taken on, whose write is guarded by its
    /// resourceVersion: a pod that changed since refuses the DisruptionTarget patch (409) and
    /// the retry reads it live. The node is the question ("has it come back?"), and no pod
    /// precondition answers it: it is read live, once for the evictions of one node that fall
    /// due together.
    #[allow(clippy::too_many_arguments)]
    async fn evict_pod(
        &self,
        cluster: &C,
        namespace: &str,
        name: &str,
        uid: &str,
        node_name: &str,
        seen: Option<Pod>,
        since: Seq,
    ) -> Result<(), Attempt> {
        let started = self.clock.now();
        let from_cache = seen.is_some();
        let mut pod = match seen {
            Some(pod) => {
                // The node is read next. Evictions falling due together share that read if
                // they began before it started; without a read of the pod first, this one
                // would start it before the others of its batch had begun. Let them begin.
                for _ in 0..2 {
                    tokio::task::yield_now().await;
                }
                pod
            }
            None => match self
                .same_pod(cluster, namespace, name, uid, node_name)
                .await?
            {
                Some(pod) => pod,
                None => return Ok(()),
            },
        };
        if pod.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        // docs/differences.md#deletions-are-never-dropped: the node must still carry a NoExecute taint the pod does not
        // tolerate forever (kubernetes#139992). Only read, so shared with the other evictions
        // from this node: when its pods fall due together, one GET serves them all.
        let (read, node) = Self::read(
            self.shared_node(node_name, since, Priority::Evictions)
                .await,
        )?;
        let now = self.clock.now();
        let mut due = recheck::due_on_live_taints(&pod, &node, now);
        if !due && from_cache {
            // A cached copy is only as good as a fresh read when a write guarded by its
            // resourceVersion follows; a decision to keep the pod has none, so the live pod
            // decides (its tolerations may have been raised and lowered again since).
            pod = match self
                .same_pod(cluster, namespace, name, uid, node_name)
                .await?
            {
                Some(pod) if pod.metadata.deletion_timestamp.is_none() => pod,
                _ => return Ok(()),
            };
            due = recheck::due_on_live_taints(&pod, &node, now);
        }
        if !due {
            info!(pod = %format!("{namespace}/{name}"), "no longer due for eviction: keeping it");
            return Ok(());
        }
        // Both writes are abandoned if the node changes meanwhile (its taint coming off), and
        // the attempt decides again on it (`unless_node_changed`).
        let changed = || {
            debug!(
                pod = %format!("{namespace}/{name}"),
                node = node_name,
                "the node changed before the eviction was sent: deciding again"
            );
            Attempt::Conflict
        };
        if !recheck::has_disruption_target(&pod) {
            let target = [recheck::disruption_target(now)];
            let version = resource_version(&pod.metadata);
            let patch = cluster.patch_pod_conditions(namespace, name, version, &target);
            let written = self
                .unless_node_changed(node_name, read, patch)
                .await
                .ok_or_else(changed)?;
            self.outcome("pod_status", written)?;
        }
        // Ahead of the next evictions' first requests (`Priority::Deletions`).
        let cluster = cluster.at(Priority::Deletions);
        let (write_kind, removal) = match self.eviction_mode {
            EvictionMode::Delete => (
                "pod_delete",
                cluster.delete_pod(namespace, name, uid).boxed(),
            ),
            EvictionMode::Evict => ("pod_evict", cluster.evict_pod(namespace, name, uid).boxed()),
        };
        let result = self
            .unless_node_changed(node_name, read, removal)
            .await
            .ok_or_else(changed)?;
        if let Err(ApiError::TooManyRequests(_)) = &result {
            // Logged once, with its retry, by `apply`.
            self.metrics.writer.eviction_refused();
        }
        // A conflict (409) is retried at once like any other: the next attempt reads the live
        // pod again and stops there if its UID precondition failed (a different pod of that
        // name now exists). Taking any 409 as that case would drop a deletion that was only
        // refused because the object was being written concurrently.
        self.outcome(write_kind, result)?;
        self.metrics
            .writer
            .pod_deleted(crate::logic::time::since(self.clock.now(), started).as_secs_f64());
        let (verb, via) = match self.eviction_mode {
            EvictionMode::Delete => ("deleted pod", "DELETE"),
            EvictionMode::Evict => ("evicted pod", "the Eviction API"),
        };
        info!(
            pod = %format!("{namespace}/{name}"),
            node = node_name,
            via,
            reason = "it does not tolerate its node's NoExecute taints any longer",
            "{verb}"
        );
        Ok(())
    }
}

/// The resourceVersion a patch is guarded by: the one of the object the decision was taken on.
fn resource_version(meta: &ObjectMeta) -> &str {
    meta.resource_version.as_deref().unwrap_or_default()
}
