//! The writer's tests: lanes, shared reads, cached copies, priority, backoff, against API doubles.

use super::lanes::Lane;
use super::queue::{FIRST_BACKOFF, MAX_BACKOFF, TOO_MANY_REQUESTS_BACKOFF, backoff};
use super::*;
use crate::cluster::{ApiError, Cluster};
use crate::logic::actions::SeenConditions;
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod, PodCondition, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

/// A node at resourceVersion 1, Ready=True with no heartbeat time.
fn ready_node(name: &str) -> Node {
    crate::testing::node(name).build()
}

mod lanes {
    use super::*;
    use crate::cluster::{Result, WatchStream};
    use crate::logic::actions::{EventRecord, ObjectRef};
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::core::v1::Node;
    use std::future::pending;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A cluster whose pod reads and event creations never answer, and whose node writes
    /// succeed at once; it counts calls.
    #[derive(Clone, Default)]
    struct StuckPods {
        pod_reads: Arc<AtomicUsize>,
        events: Arc<AtomicUsize>,
        node_status_writes: Arc<AtomicUsize>,
    }

    impl Cluster for StuckPods {
        async fn get_node(&self, name: &str) -> Result<Node> {
            Ok(ready_node(name))
        }
        async fn list_node_versions(&self) -> Result<Vec<crate::cluster::ObjectVersion>> {
            unreachable!("the writer does not list")
        }
        async fn patch_node_taints(&self, _: &str, _: &str, _: &[Taint]) -> Result<()> {
            Ok(())
        }
        async fn patch_node_labels(
            &self,
            _: &str,
            _: &str,
            _: &BTreeMap<String, String>,
        ) -> Result<()> {
            Ok(())
        }
        async fn patch_node_conditions(
            &self,
            _: &str,
            _: &str,
            _: &[k8s_openapi::api::core::v1::NodeCondition],
        ) -> Result<()> {
            self.node_status_writes.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        async fn get_pod(&self, _: &str, _: &str) -> Result<Pod> {
            self.pod_reads.fetch_add(1, Ordering::SeqCst);
            pending().await
        }
        async fn patch_pod_conditions(
            &self,
            _: &str,
            _: &str,
            _: &str,
            _: &[PodCondition],
        ) -> Result<()> {
            pending().await
        }
        async fn delete_pod(&self, _: &str, _: &str, _: &str) -> Result<()> {
            pending().await
        }
        async fn evict_pod(&self, _: &str, _: &str, _: &str) -> Result<()> {
            pending().await
        }
        async fn list_lease_versions(&self, _: &str) -> Result<Vec<crate::cluster::ObjectVersion>> {
            unreachable!("the writer does not list")
        }
        async fn get_lease(&self, _: &str, name: &str) -> Result<Lease> {
            Err(ApiError::NotFound(name.into()))
        }
        async fn create_lease(&self, lease: &Lease) -> Result<Lease> {
            Ok(lease.clone())
        }
        async fn replace_lease(&self, lease: &Lease) -> Result<Lease> {
            Ok(lease.clone())
        }
        async fn create_event(&self, _: &EventRecord, _: Timestamp) -> Result<()> {
            self.events.fetch_add(1, Ordering::SeqCst);
            pending().await
        }
        fn watch_nodes(&self) -> WatchStream<Node> {
            unreachable!("the writer does not watch")
        }
        fn watch_leases(&self, _: &str) -> WatchStream<Lease> {
            unreachable!("the writer does not watch")
        }
        fn watch_pods(&self) -> WatchStream<crate::cache::WatchedPod> {
            unreachable!("the writer does not watch")
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_flood_of_pod_writes_is_bounded_per_lane_and_node_writes_pass_it() {
        let cluster = StuckPods::default();
        let (_leader_tx, leader) = watch::channel(1u64);
        let clock: Arc<dyn Clock> = Arc::new(crate::clock::TokioClock::starting_at(
            "2025-01-01T00:00:00Z".parse().unwrap(),
        ));
        let writer = Writer::new(
            cluster.clone(),
            Arc::clone(&clock),
            Arc::new(Metrics::new()),
            &Settings::default(),
            leader,
            Tasks::default(),
        );
        let now = clock.now();
        let mut flood = vec![Action::MarkPodsNotReady {
            node: "n".into(),
            pods: (0..100)
                .map(|i| crate::logic::actions::PodId {
                    namespace: "default".into(),
                    name: format!("p-{i}"),
                    uid: format!("uid-{i}"),
                })
                .collect(),
            node_heartbeat: None,
            lease_renew: None,
            lease_version: None,
            now,
        }];
        for i in 0..100 {
            flood.push(Action::Event(EventRecord {
                component: crate::logic::actions::Component::NodeController,
                object: ObjectRef::pod("default", &format!("p-{i}"), None),
                event_type: crate::logic::actions::EventType::Warning,
                reason: "NodeNotReady".into(),
                message: "m".into(),
            }));
        }
        writer.submit(flood);
        writer.submit(vec![Action::MarkNodeUnknown {
            node: "n".into(),
            ready_heartbeat: None,
            lease_renew: None,
            now,
            seen: None,
        }]);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            cluster.pod_reads.load(Ordering::SeqCst),
            Lane::PodStatus.width(),
            "pod status attempts in flight are bounded by their lane"
        );
        assert_eq!(
            cluster.events.load(Ordering::SeqCst),
            Lane::Events.width(),
            "event attempts in flight are bounded by their lane"
        );
        assert_eq!(
            cluster.node_status_writes.load(Ordering::SeqCst),
            1,
            "the node's Unknown write did not wait behind the pods"
        );
    }
}

/// An API server double for the shared reads and the lanes' priority: objects in maps; each
/// call sees (or changes) them as they are when it starts and answers `LATENCY` of virtual
/// time later; every call is logged with when it started and ended.
mod api {
    use super::*;
    use crate::cluster::{Result, WatchStream};
    use crate::logic::actions::EventRecord;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::api::core::v1::{NodeSpec, PodSpec, Taint, Toleration};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
    use tokio::time::Instant;

    pub const LATENCY: Duration = Duration::from_millis(10);

    pub fn epoch() -> Timestamp {
        "2025-01-01T00:00:00Z".parse().unwrap()
    }

    /// One request: what (`"GET node"`, `"PATCH pod status"`, ...), on which object, when it
    /// started and ended (time since the double was made).
    #[derive(Clone, Debug)]
    pub struct Call {
        pub what: &'static str,
        pub object: String,
        pub start: Duration,
        pub end: Option<Duration>,
    }

    #[derive(Default)]
    struct Objects {
        nodes: BTreeMap<String, Node>,
        pods: BTreeMap<String, Pod>,
        leases: BTreeMap<String, Lease>,
        calls: Vec<Call>,
        /// Calls (by `what`) that fail with `Unavailable`, and how many more times.
        failing: BTreeMap<&'static str, usize>,
        /// Calls (by `what`) that fail with `TooManyRequests`, and how many more times.
        throttled: BTreeMap<&'static str, usize>,
        /// Calls (by `what`) that answer `NotFound`.
        missing: BTreeSet<&'static str>,
        /// Calls (by `what`) applied whose answer is lost (`Unavailable`), and how many more.
        lost: BTreeMap<&'static str, usize>,
        /// The conditions each conditions patch sent, as JSON, in order.
        conditions_sent: Vec<serde_json::Value>,
        /// Calls (by `what`) held this long before they reach the server, as a client-side
        /// rate limit holds a request waiting for its token.
        held: BTreeMap<&'static str, Duration>,
    }

    #[derive(Clone)]
    pub struct Api {
        objects: Arc<Mutex<Objects>>,
        start: Instant,
    }

    impl Api {
        pub fn new() -> Self {
            Api {
                objects: Arc::default(),
                start: Instant::now(),
            }
        }

        fn objects(&self) -> std::sync::MutexGuard<'_, Objects> {
            self.objects.lock().unwrap()
        }

        /// The conditions every node or pod conditions patch sent so far, as JSON.
        pub fn conditions_sent(&self) -> Vec<serde_json::Value> {
            self.objects().conditions_sent.clone()
        }

        /// Adds a node, Ready=True with no heartbeat time, and its Lease renewed at `epoch()`.
        pub fn add_node(&self, name: &str) {
            let node = super::ready_node(name);
            let mut lease = Lease::default();
            lease.metadata.name = Some(name.into());
            lease.spec = Some(LeaseSpec {
                renew_time: Some(MicroTime(epoch())),
                ..Default::default()
            });
            bump(&mut lease.metadata);
            let mut o = self.objects();
            o.nodes.insert(name.into(), node);
            o.leases.insert(name.into(), lease);
        }

        /// Sets the node's Ready status (its resourceVersion unchanged).
        pub fn set_node_ready(&self, name: &str, status: &str) {
            let mut o = self.objects();
            let node = o.nodes.get_mut(name).unwrap();
            for c in node
                .status
                .iter_mut()
                .flat_map(|s| s.conditions.iter_mut().flatten())
            {
                if c.type_ == "Ready" {
                    c.status = status.into();
                }
            }
        }

        /// Sets or clears the `unreachable` NoExecute taint, which no test pod tolerates, with
        /// Ready Unknown (or back to True) as the node lifecycle leaves it.
        pub fn set_unreachable(&self, name: &str, tainted: bool) {
            self.set_node_ready(name, if tainted { "Unknown" } else { "True" });
            let mut o = self.objects();
            let node = o.nodes.get_mut(name).unwrap();
            node.spec = Some(NodeSpec {
                taints: tainted.then(|| {
                    vec![Taint {
                        key: "node.kubernetes.io/unreachable".into(),
                        effect: "NoExecute".into(),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            });
            bump(&mut node.metadata);
        }

        /// Adds pods p-0, p-1, ... (`count` of them, as `add_pod` makes them) bound to `node`;
        /// returns their names.
        pub fn add_pods(&self, count: usize, node: &str) -> Vec<String> {
            let pods: Vec<String> = (0..count).map(|i| format!("p-{i}")).collect();
            for p in &pods {
                self.add_pod(p, node);
            }
            pods
        }

        /// Adds pod `default/name` (UID `uid-<name>`) bound to `node`, Ready=True.
        pub fn add_pod(&self, name: &str, node: &str) {
            let mut pod = Pod::default();
            pod.metadata.namespace = Some("default".into());
            pod.metadata.name = Some(name.into());
            pod.metadata.uid = Some(format!("uid-{name}"));
            pod.metadata.resource_version = Some("1".into());
            pod.spec = Some(PodSpec {
                node_name: Some(node.into()),
                ..Default::default()
            });
            pod.status = Some(k8s_openapi::api::core::v1::PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            });
            self.objects().pods.insert(format!("default/{name}"), pod);
        }

        /// The pod now tolerates every NoExecute taint for good (a write from elsewhere).
        pub fn tolerate_forever(&self, name: &str) {
            let mut o = self.objects();
            let pod = o.pods.get_mut(&format!("default/{name}")).unwrap();
            pod.spec.as_mut().unwrap().tolerations = Some(vec![Toleration {
                operator: Some("Exists".into()),
                effect: Some("NoExecute".into()),
                ..Default::default()
            }]);
            bump(&mut pod.metadata);
        }

        /// The pod tolerates nothing any more (a write from elsewhere).
        pub fn tolerate_nothing(&self, name: &str) {
            let mut o = self.objects();
            let pod = o.pods.get_mut(&format!("default/{name}")).unwrap();
            pod.spec.as_mut().unwrap().tolerations = None;
            bump(&mut pod.metadata);
        }

        /// The kubelet posts its Ready condition with this heartbeat.
        pub fn post_heartbeat(&self, name: &str, at: Timestamp) {
            let mut o = self.objects();
            let node = o.nodes.get_mut(name).unwrap();
            let conds = node.status.as_mut().unwrap().conditions.as_mut().unwrap();
            let ready = conds.iter_mut().find(|c| c.type_ == "Ready").unwrap();
            ready.last_heartbeat_time = Some(Time(at));
            bump(&mut node.metadata);
        }

        /// Sets the pod's Ready condition to `status` (a write from elsewhere).
        pub fn set_ready(&self, name: &str, status: &str) {
            let mut o = self.objects();
            let pod = o.pods.get_mut(&format!("default/{name}")).unwrap();
            let conds = pod.status.as_mut().unwrap().conditions.as_mut().unwrap();
            conds
                .iter_mut()
                .find(|c| c.type_ == "Ready")
                .unwrap()
                .status = status.into();
            bump(&mut pod.metadata);
        }

        /// Deletes the node's Lease (as for a kubelet that runs without one).
        pub fn delete_lease(&self, node: &str) {
            self.objects().leases.remove(node);
        }

        pub fn lease_count(&self) -> usize {
            self.objects().leases.len()
        }

        /// The resourceVersion of the node's Lease.
        pub fn lease_version(&self, node: &str) -> Option<String> {
            self.objects().leases[node]
                .metadata
                .resource_version
                .clone()
        }

        /// The node's kubelet renews its Lease at `at`.
        pub fn renew_lease(&self, node: &str, at: Timestamp) {
            let mut o = self.objects();
            let lease = o.leases.get_mut(node).unwrap();
            lease.spec.as_mut().unwrap().renew_time = Some(MicroTime(at));
            bump(&mut lease.metadata);
        }

        /// The pod carries the taint manager's DisruptionTarget condition already.
        pub fn set_disruption_target(&self, name: &str) {
            let mut o = self.objects();
            let pod = o.pods.get_mut(&format!("default/{name}")).unwrap();
            let conds = pod.status.as_mut().unwrap().conditions.as_mut().unwrap();
            conds.push(PodCondition {
                type_: "DisruptionTarget".into(),
                status: "True".into(),
                ..Default::default()
            });
            bump(&mut pod.metadata);
        }

        /// The next `times` calls of `what` are applied, but answer `Unavailable`.
        pub fn lose_answer(&self, what: &'static str, times: usize) {
            self.objects().lost.insert(what, times);
        }

        pub fn fail(&self, what: &'static str, times: usize) {
            self.objects().failing.insert(what, times);
        }

        /// The next `times` calls of `what` answer 429 Too Many Requests, not applied.
        pub fn throttle(&self, what: &'static str, times: usize) {
            self.objects().throttled.insert(what, times);
        }

        /// Calls of `what` wait `by` before they reach the double (and count as calls).
        /// Someone else deletes the pod.
        pub fn delete_pod_now(&self, name: &str) {
            self.objects().pods.remove(&format!("default/{name}"));
        }

        pub fn hold(&self, what: &'static str, by: Duration) {
            self.objects().held.insert(what, by);
        }

        pub fn remove_all(&self, what: &'static str) {
            self.objects().missing.insert(what);
        }

        pub fn node(&self, name: &str) -> Node {
            self.objects().nodes[name].clone()
        }

        pub fn pod(&self, name: &str) -> Option<Pod> {
            self.objects().pods.get(&format!("default/{name}")).cloned()
        }

        pub fn calls(&self) -> Vec<Call> {
            self.objects().calls.clone()
        }

        pub fn count(&self, what: &str) -> usize {
            self.calls().iter().filter(|c| c.what == what).count()
        }

        /// The calls of `what` on each object.
        pub fn count_by_object(&self, what: &str) -> BTreeMap<String, usize> {
            let mut by = BTreeMap::new();
            for c in self.calls().iter().filter(|c| c.what == what) {
                *by.entry(c.object.clone()).or_default() += 1;
            }
            by
        }

        async fn call<T>(
            &self,
            what: &'static str,
            object: &str,
            f: impl FnOnce(&mut Objects) -> Result<T>,
        ) -> Result<T> {
            let held = self.objects().held.get(what).copied();
            if let Some(held) = held {
                tokio::time::sleep(held).await;
            }
            let i;
            let result = {
                let mut o = self.objects();
                i = o.calls.len();
                o.calls.push(Call {
                    what,
                    object: object.into(),
                    start: self.start.elapsed(),
                    end: None,
                });
                let fail = take_one(&mut o.failing, what);
                let lost = take_one(&mut o.lost, what);
                let throttled = take_one(&mut o.throttled, what);
                if fail {
                    Err(ApiError::Unavailable("injected".into()))
                } else if throttled {
                    Err(ApiError::TooManyRequests("injected".into()))
                } else if o.missing.contains(what) {
                    Err(ApiError::NotFound(object.into()))
                } else if lost {
                    f(&mut o).and(Err(ApiError::Unavailable("answer lost".into())))
                } else {
                    f(&mut o)
                }
            };
            tokio::time::sleep(LATENCY).await;
            self.objects().calls[i].end = Some(self.start.elapsed());
            result
        }
    }

    /// Whether `what` has a fault left in `faults`; uses it up.
    fn take_one(faults: &mut BTreeMap<&'static str, usize>, what: &str) -> bool {
        match faults.get_mut(what) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }

    fn bump(meta: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) {
        let rv: u64 = meta
            .resource_version
            .as_deref()
            .unwrap_or("0")
            .parse()
            .unwrap();
        meta.resource_version = Some((rv + 1).to_string());
    }

    fn found<T: Clone>(map: &BTreeMap<String, T>, key: &str) -> Result<T> {
        map.get(key)
            .cloned()
            .ok_or_else(|| ApiError::NotFound(key.into()))
    }

    /// Replaces `key` in `map` if `new` carries its current resourceVersion.
    /// `object` with the conditions patch applied as kube-apiserver applies a strategic
    /// merge patch: conditions merged field by field on their type, the patch's
    /// resourceVersion taken (`replace` checks it).
    fn with_conditions<T, C>(object: &T, resource_version: &str, conditions: &[C]) -> T
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
        C: serde::Serialize,
    {
        use crate::sim::store::{PatchKind, apply_patch};
        let mut value = serde_json::to_value(object).unwrap();
        let patch = crate::cluster::conditions_patch(resource_version, conditions);
        apply_patch(&mut value, &patch, PatchKind::Strategic);
        serde_json::from_value(value).unwrap()
    }

    fn replace<T: kube::Resource + Clone>(
        map: &mut BTreeMap<String, T>,
        key: &str,
        new: &T,
    ) -> Result<T> {
        let old = map.get(key).ok_or_else(|| ApiError::NotFound(key.into()))?;
        if old.meta().resource_version != new.meta().resource_version {
            return Err(ApiError::Conflict(key.into()));
        }
        let mut new = new.clone();
        bump(new.meta_mut());
        map.insert(key.into(), new.clone());
        Ok(new)
    }

    impl Cluster for Api {
        async fn get_node(&self, name: &str) -> Result<Node> {
            self.call("GET node", name, |o| found(&o.nodes, name)).await
        }
        async fn list_node_versions(&self) -> Result<Vec<crate::cluster::ObjectVersion>> {
            unreachable!("the writer does not list")
        }
        async fn patch_node_taints(
            &self,
            name: &str,
            resource_version: &str,
            taints: &[Taint],
        ) -> Result<()> {
            self.call("PATCH node", name, |o| {
                let mut node = found(&o.nodes, name)?;
                node.metadata.resource_version = Some(resource_version.into());
                node.spec.get_or_insert_with(Default::default).taints =
                    Some(taints.to_vec()).filter(|t| !t.is_empty());
                replace(&mut o.nodes, name, &node).map(|_| ())
            })
            .await
        }
        async fn patch_node_labels(
            &self,
            name: &str,
            resource_version: &str,
            labels: &BTreeMap<String, String>,
        ) -> Result<()> {
            self.call("PATCH node", name, |o| {
                let mut node = found(&o.nodes, name)?;
                node.metadata.resource_version = Some(resource_version.into());
                let all = node.metadata.labels.get_or_insert_with(Default::default);
                all.extend(labels.clone());
                replace(&mut o.nodes, name, &node).map(|_| ())
            })
            .await
        }
        async fn patch_node_conditions(
            &self,
            name: &str,
            resource_version: &str,
            conditions: &[k8s_openapi::api::core::v1::NodeCondition],
        ) -> Result<()> {
            self.call("PATCH node status", name, |o| {
                o.conditions_sent.push(serde_json::json!(conditions));
                let node = with_conditions(&found(&o.nodes, name)?, resource_version, conditions);
                replace(&mut o.nodes, name, &node).map(|_| ())
            })
            .await
        }
        async fn get_pod(&self, namespace: &str, name: &str) -> Result<Pod> {
            let key = format!("{namespace}/{name}");
            self.call("GET pod", &key, |o| found(&o.pods, &key)).await
        }
        async fn patch_pod_conditions(
            &self,
            namespace: &str,
            name: &str,
            resource_version: &str,
            conditions: &[PodCondition],
        ) -> Result<()> {
            let key = format!("{namespace}/{name}");
            self.call("PATCH pod status", &key, |o| {
                o.conditions_sent.push(serde_json::json!(conditions));
                let pod = with_conditions(&found(&o.pods, &key)?, resource_version, conditions);
                replace(&mut o.pods, &key, &pod).map(|_| ())
            })
            .await
        }
        async fn delete_pod(&self, namespace: &str, name: &str, uid: &str) -> Result<()> {
            let key = format!("{namespace}/{name}");
            self.call("DELETE pod", &key, |o| {
                let live = found(&o.pods, &key)?;
                if live.metadata.uid.as_deref() != Some(uid) {
                    return Err(ApiError::Conflict(key.clone()));
                }
                o.pods.remove(&key);
                Ok(())
            })
            .await
        }
        async fn evict_pod(&self, _: &str, _: &str, _: &str) -> Result<()> {
            unreachable!("these tests delete")
        }
        async fn list_lease_versions(&self, _: &str) -> Result<Vec<crate::cluster::ObjectVersion>> {
            self.call("LIST lease versions", "", |o| {
                Ok(o.leases
                    .iter()
                    .map(|(name, lease)| crate::cluster::ObjectVersion {
                        name: name.clone(),
                        resource_version: lease
                            .metadata
                            .resource_version
                            .clone()
                            .unwrap_or_default(),
                    })
                    .collect())
            })
            .await
        }
        async fn get_lease(&self, _: &str, name: &str) -> Result<Lease> {
            self.call("GET lease", name, |o| found(&o.leases, name))
                .await
        }
        async fn create_lease(&self, _: &Lease) -> Result<Lease> {
            unreachable!("the writer does not hold leases")
        }
        async fn replace_lease(&self, _: &Lease) -> Result<Lease> {
            unreachable!("the writer does not hold leases")
        }
        async fn create_event(&self, e: &EventRecord, _: Timestamp) -> Result<()> {
            let about = format!("{}/{}/{}", e.object.namespace, e.object.name, e.reason);
            self.call("POST event", &about, |_| Ok(())).await
        }
        fn watch_nodes(&self) -> WatchStream<Node> {
            unreachable!("the writer does not watch")
        }
        fn watch_leases(&self, _: &str) -> WatchStream<Lease> {
            unreachable!("the writer does not watch")
        }
        fn watch_pods(&self) -> WatchStream<crate::cache::WatchedPod> {
            unreachable!("the writer does not watch")
        }
    }

    /// A writer on `api` that leads in term 1, and its metrics.
    pub fn writer(api: &Api) -> (Writer<Api>, Arc<Metrics>, watch::Sender<u64>) {
        let (leader_tx, leader) = watch::channel(1u64);
        let clock: Arc<dyn Clock> = Arc::new(crate::clock::TokioClock::starting_at(epoch()));
        let metrics = Arc::new(Metrics::new());
        let writer = Writer::new(
            api.clone(),
            clock,
            Arc::clone(&metrics),
            &Settings::default(),
            leader,
            Tasks::default(),
        );
        (writer, metrics, leader_tx)
    }

    /// A double with node n1 carrying the unreachable NoExecute taint and `count` pods on
    /// it, p-0, p-1, ...
    pub fn tainted_node_with_pods(count: usize) -> (Api, Vec<String>) {
        let api = Api::new();
        api.add_node("n1");
        api.set_unreachable("n1", true);
        let pods = api.add_pods(count, "n1");
        (api, pods)
    }

    pub fn evict(pod: &str, node: &str) -> Action {
        Action::EvictPod {
            namespace: "default".into(),
            name: pod.into(),
            uid: format!("uid-{pod}"),
            node: node.into(),
        }
    }

    /// Marks a pod NotReady on a decision that saw its node as `add_node` makes it.
    pub fn mark_not_ready(pod: &str, node: &str) -> Action {
        mark_pods_not_ready(&[pod.to_string()], node)
    }

    /// Marks these pods of `node` NotReady, one action for the node, as the monitor decides.
    pub fn mark_pods_not_ready(pods: &[String], node: &str) -> Action {
        Action::MarkPodsNotReady {
            node: node.into(),
            pods: pods
                .iter()
                .map(|p| crate::logic::actions::PodId {
                    namespace: "default".into(),
                    name: p.clone(),
                    uid: format!("uid-{p}"),
                })
                .collect(),
            node_heartbeat: None,
            lease_renew: Some(epoch()),
            lease_version: None,
            now: epoch(),
        }
    }

    pub fn label(node: &str) -> Action {
        Action::SetLabels {
            node: node.into(),
            labels: BTreeMap::from([("touched".to_string(), "yes".to_string())]),
        }
    }

    pub fn ready_status(pod: &Pod) -> Option<String> {
        let conditions = pod.status.as_ref()?.conditions.as_ref()?;
        let ready = conditions.iter().find(|c| c.type_ == "Ready")?;
        Some(ready.status.clone())
    }

    /// The most attempts on pods in progress at once, an attempt on a pod lasting from the
    /// start of its first call to the end of its last one.
    pub fn most_pod_attempts_at_once(calls: &[Call]) -> usize {
        let mut spans: BTreeMap<&str, (Duration, Duration)> = BTreeMap::new();
        for c in calls
            .iter()
            .filter(|c| c.what.ends_with("pod") || c.what == "PATCH pod status")
        {
            let end = c.end.unwrap_or(Duration::MAX);
            let span = spans.entry(&c.object).or_insert((c.start, end));
            span.0 = span.0.min(c.start);
            span.1 = span.1.max(end);
        }
        let mut edges: Vec<(Duration, i32)> = spans
            .values()
            .flat_map(|&(start, end)| [(start, 1), (end, -1)])
            .collect();
        // Ends before starts at the same instant: back to back is not at once.
        edges.sort();
        let (mut now, mut most) = (0i32, 0i32);
        for (_, d) in edges {
            now += d;
            most = most.max(now);
        }
        most as usize
    }

    /// Nothing left for any attempt to share, and no attempt running.
    pub fn forgot_everything(writer: &Writer<Api>) -> bool {
        let reads = writer.state.reads.lock().unwrap();
        reads.running.is_empty()
            && reads.nodes.len() == 0
            && reads.leases.len() == 0
            && reads.lease_list.is_none()
    }
}

mod shared_reads {
    use super::api::*;
    use super::*;

    fn retries(metrics: &Metrics, kind: &str) -> u64 {
        let series = format!("node_lifecycle_controller_write_retries_total{{kind=\"{kind}\"}} ");
        metrics
            .render()
            .lines()
            .find_map(|l| l.strip_prefix(series.as_str())?.parse().ok())
            .unwrap_or(0)
    }

    #[tokio::test(start_paused = true)]
    async fn no_pod_is_deleted_on_a_node_whose_live_ready_is_true_though_our_taint_is_still_on() {
        // As a stalled Node watch would leave it: the node came back, our taint not yet
        // removed, the eviction decided on the old copy.
        let (api, pods) = tainted_node_with_pods(3);
        api.set_node_ready("n1", "True");
        let (writer, _, _leader) = writer(&api);
        writer.submit(pods.iter().map(|p| evict(p, "n1")).collect());
        tokio::time::sleep(Duration::from_secs(2)).await;

        for p in &pods {
            assert!(api.pod(p).is_some(), "{p} kept");
        }
        assert_eq!(api.count("DELETE pod"), 0);
        assert_eq!(
            api.count("PATCH pod status"),
            0,
            "no DisruptionTarget either"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn thirty_evictions_from_one_node_falling_due_together_read_the_node_once() {
        let (api, pods) = tainted_node_with_pods(30);
        let (writer, _, _leader) = writer(&api);
        writer.submit(pods.iter().map(|p| evict(p, "n1")).collect());
        tokio::time::sleep(Duration::from_secs(2)).await;

        assert_eq!(api.count("GET node"), 1, "one read of n1 served all 30");
        for p in &pods {
            assert!(api.pod(p).is_none(), "{p} deleted");
        }
        let key = |p: &String| format!("default/{p}");
        let once: BTreeMap<String, usize> = pods.iter().map(|p| (key(p), 1)).collect();
        assert_eq!(api.count_by_object("GET pod"), once);
        assert_eq!(
            api.count_by_object("PATCH pod status"),
            once,
            "DisruptionTarget once each"
        );
        assert_eq!(
            api.count_by_object("DELETE pod"),
            once,
            "each deleted exactly once"
        );
        assert_eq!(api.calls().len(), 30 * 3 + 1, "down from 30 * 4");
        assert!(
            forgot_everything(&writer),
            "no read is kept once no attempt can use it"
        );
    }

    /// The API double's objects as they are now, as a cache would hold them.
    struct CopiesOf<'a>(&'a Api);

    impl Cached for CopiesOf<'_> {
        fn node(&self, name: &str) -> Option<Node> {
            Some(self.0.node(name))
        }
        fn pod(&self, _: &str, name: &str) -> Option<Pod> {
            self.0.pod(name)
        }
        fn leases(&self) -> usize {
            self.0.lease_count()
        }
    }

    /// A cache holding one pod's copy taken earlier.
    struct PodCopy(Option<Pod>);

    impl Cached for PodCopy {
        fn node(&self, _: &str) -> Option<Node> {
            None
        }
        fn pod(&self, _: &str, _: &str) -> Option<Pod> {
            self.0.clone()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn evictions_decided_on_cached_pods_do_not_read_them_and_share_one_node_read() {
        let (api, pods) = tainted_node_with_pods(30);
        let (writer, _, _leader) = writer(&api);
        let actions = pods.iter().map(|p| evict(p, "n1")).collect();
        writer.submit_seen(actions, &CopiesOf(&api));
        tokio::time::sleep(Duration::from_secs(2)).await;

        let calls: Vec<&'static str> = api.calls().iter().map(|c| c.what).collect();
        assert!(!calls.contains(&"GET pod"), "{calls:?}");
        assert_eq!(api.count("GET node"), 1, "one read of n1 served all 30");
        for p in &pods {
            assert!(api.pod(p).is_none(), "{p} deleted");
        }
        assert_eq!(calls.len(), 30 * 2 + 1, "down from 30 * 3 + 1");
        // Two round trips from the due time to the deletion (node read, condition) instead
        // of three.
        let first_delete = api
            .calls()
            .iter()
            .find(|c| c.what == "DELETE pod")
            .map(|c| c.start)
            .unwrap();
        assert_eq!(first_delete - api.calls()[0].start, LATENCY * 2);
    }

    #[tokio::test(start_paused = true)]
    async fn pods_marked_not_ready_from_cached_copies_are_not_read() {
        let api = Api::new();
        api.add_node("n1");
        let pods = api.add_pods(30, "n1");
        let (writer, _, _leader) = writer(&api);
        writer.submit_seen(vec![mark_pods_not_ready(&pods, "n1")], &CopiesOf(&api));
        tokio::time::sleep(Duration::from_secs(2)).await;
        for p in &pods {
            assert_eq!(ready_status(&api.pod(p).unwrap()).as_deref(), Some("False"));
        }
        assert_eq!(api.count("GET pod"), 0);
        assert_eq!(
            api.count("PATCH pod status"),
            30,
            "each marked exactly once"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_pod_mark_on_a_cached_copy_that_moved_is_refused_and_decided_on_the_live_pod() {
        let api = Api::new();
        api.add_node("n1");
        let pods = api.add_pods(1, "n1");
        let (writer, _, _leader) = writer(&api);
        let cached = api.pod(&pods[0]);
        api.tolerate_forever(&pods[0]);
        writer.submit_seen(vec![mark_pods_not_ready(&pods, "n1")], &PodCopy(cached));
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(
            ready_status(&api.pod(&pods[0]).unwrap()).as_deref(),
            Some("False")
        );
        assert_eq!(api.count("PATCH pod status"), 2, "refused, then written");
        assert_eq!(api.count("GET pod"), 1, "read after the refusal");
    }

    #[tokio::test(start_paused = true)]
    async fn a_pod_changed_since_the_cached_copy_refuses_the_write_and_is_read_again() {
        let (api, pods) = tainted_node_with_pods(1);
        let (writer, metrics, _leader) = writer(&api);
        let cached = api.pod(&pods[0]);
        // The pod now tolerates the taint for good: it must be kept.
        api.tolerate_forever(&pods[0]);
        writer.submit_seen(vec![evict(&pods[0], "n1")], &PodCopy(cached));
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(api.pod(&pods[0]).is_some(), "kept");
        assert_eq!(api.count("GET pod"), 1, "read after the refusal");
        assert_eq!(
            api.count("PATCH pod status"),
            1,
            "refused: the copy was outdated"
        );
        assert_eq!(api.count("DELETE pod"), 0);
        assert_eq!(retries(&metrics, "pod_delete"), 1, "one conflict, retried");
    }

    #[tokio::test(start_paused = true)]
    async fn a_cached_pod_that_tolerated_the_taint_is_read_live_before_it_is_kept() {
        let (api, pods) = tainted_node_with_pods(1);
        api.tolerate_forever(&pods[0]);
        let (writer, _, _leader) = writer(&api);
        let cached = CopiesOf(&api).pod("default", &pods[0]);
        // The toleration is gone by the time the eviction comes: the copy would keep the pod,
        // the live pod is due.
        api.tolerate_nothing(&pods[0]);
        writer.submit_seen(vec![evict(&pods[0], "n1")], &PodCopy(cached));
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(api.pod(&pods[0]).is_none(), "deleted");
        assert_eq!(api.count("GET pod"), 1, "read live once");
        assert_eq!(api.count("DELETE pod"), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cached_pod_with_its_disruption_target_already_set_is_read_again() {
        let (api, pods) = tainted_node_with_pods(1);
        api.set_disruption_target(&pods[0]);
        let (writer, _, _leader) = writer(&api);
        writer.submit_seen(vec![evict(&pods[0], "n1")], &CopiesOf(&api));
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(api.pod(&pods[0]).is_none(), "deleted");
        assert_eq!(api.count("GET pod"), 1, "the copy was not used");
        assert_eq!(api.count("PATCH pod status"), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn evictions_falling_due_together_share_a_node_read_though_they_start_rounds_apart() {
        let (api, pods) = tainted_node_with_pods(100);
        let (writer, _, _leader) = writer(&api);
        writer.submit(pods.iter().map(|p| evict(p, "n1")).collect());
        tokio::time::sleep(Duration::from_secs(5)).await;
        for p in &pods {
            assert!(api.pod(p).is_none(), "{p} deleted");
        }
        assert!(pods.len() > Lane::Evictions.width(), "several rounds");
        assert_eq!(api.count("GET node"), 1, "one read for the whole batch");
        assert!(forgot_everything(&writer));
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_change_seen_on_the_watch_stops_the_evictions_decided_on_an_older_read_of_it() {
        let (api, pods) = tainted_node_with_pods(100);
        let (writer, _, _leader) = writer(&api);
        writer.submit(pods.iter().map(|p| evict(p, "n1")).collect());
        // The first round has read n1 (tainted) and is writing; the node comes back and its
        // taint goes, and the watch says so: the writes not answered yet are abandoned, and
        // every eviction is decided again on n1 as it is now, read once more.
        tokio::time::sleep(LATENCY + LATENCY / 2).await;
        api.set_unreachable("n1", false);
        writer.node_changed("n1", None);
        tokio::time::sleep(Duration::from_secs(5)).await;
        let deleted = pods.iter().filter(|p| api.pod(p).is_none()).count();
        assert_eq!(
            deleted, 0,
            "none deleted after the watch showed the taint gone"
        );
        assert_eq!(api.count("DELETE pod"), 0, "no deletion sent");
        let rounds = pods.len().div_ceil(Lane::Evictions.width());
        let reads = api.count("GET node");
        assert!(
            (2..=rounds + 1).contains(&reads),
            "read again after the change, at most once per round of the lane: {reads}"
        );
        assert!(forgot_everything(&writer));
    }

    /// An eviction waiting for its turn (here: its DELETE held by the server, as a client-side
    /// limit would hold it) is abandoned when the watch shows its node changed, and decided
    /// again; a change of another node does not disturb it.
    #[tokio::test(start_paused = true)]
    async fn an_eviction_held_before_its_deletion_is_not_sent_once_its_node_changed() {
        let (api, pods) = tainted_node_with_pods(1);
        api.add_node("other");
        let (writer, _, _leader) = writer(&api);
        api.hold("DELETE pod", Duration::from_secs(1));
        writer.submit(vec![evict(&pods[0], "n1")]);
        // GET pod, GET n1, PATCH (DisruptionTarget), then the DELETE is held from 3 latencies.
        tokio::time::sleep(LATENCY * 3 + LATENCY / 4).await;
        writer.node_changed("other", None);
        tokio::time::sleep(LATENCY / 4).await;
        api.set_unreachable("n1", false);
        writer.node_changed("n1", None);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(api.pod(&pods[0]).is_some(), "kept");
        assert_eq!(
            api.count("PATCH pod status"),
            1,
            "the DisruptionTarget went before"
        );
        assert_eq!(
            api.count("DELETE pod"),
            0,
            "the held deletion never reached the server"
        );
        assert!(forgot_everything(&writer));
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_read_that_started_before_an_attempt_began_is_not_reused_by_it() {
        let api = Api::new();
        api.add_node("n1");
        api.set_unreachable("n1", true);
        for p in ["a", "b", "c"] {
            api.add_pod(p, "n1");
        }
        let (writer, _, _leader) = writer(&api);
        // a: GET pod at 0 ms, GET n1 at 10 ms (tainted), DELETE at 20 ms.
        writer.submit(vec![evict("a", "n1")]);
        tokio::time::sleep(Duration::from_millis(5)).await;
        // c begins at 5 ms, before a's read of n1 started: it may use that read.
        writer.submit(vec![evict("c", "n1")]);
        tokio::time::sleep(Duration::from_millis(7)).await;
        // At 12 ms the taint is gone; b begins at 15 ms, after a's read of n1 started (and
        // was answered with the taint), so it must read n1 itself and keep its pod.
        api.set_unreachable("n1", false);
        tokio::time::sleep(Duration::from_millis(3)).await;
        writer.submit(vec![evict("b", "n1")]);
        tokio::time::sleep(Duration::from_secs(1)).await;

        assert_eq!(
            api.count("GET node"),
            2,
            "a and c shared one read, b made its own"
        );
        assert!(api.pod("a").is_none());
        assert!(api.pod("c").is_none());
        assert!(
            api.pod("b").is_some(),
            "b saw the node as it was after b began"
        );
        assert_eq!(api.count("DELETE pod"), 2);
        assert!(forgot_everything(&writer));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_shared_node_read_is_retried_after_a_backoff_by_each_attempt_that_shared_it() {
        let (api, pods) = tainted_node_with_pods(30);
        api.fail("GET node", 1);
        let (writer, metrics, _leader) = writer(&api);
        writer.submit(pods.iter().map(|p| evict(p, "n1")).collect());

        tokio::time::sleep(FIRST_BACKOFF).await;
        assert_eq!(api.count("GET node"), 1, "the failed read was shared");
        assert_eq!(api.count("DELETE pod"), 0);
        assert_eq!(
            retries(&metrics, "pod_delete"),
            30,
            "unavailable: every attempt that shared the read backs off, as if it had read"
        );
        assert_eq!(api.count("GET pod"), 30, "no retry before the backoff");

        tokio::time::sleep(Duration::from_secs(2)).await;
        let once: BTreeMap<String, usize> =
            pods.iter().map(|p| (format!("default/{p}"), 1)).collect();
        assert_eq!(
            api.count_by_object("DELETE pod"),
            once,
            "each deleted exactly once"
        );
        assert_eq!(retries(&metrics, "pod_delete"), 30, "no further retries");
        let first_retry = api
            .calls()
            .iter()
            .filter(|c| c.what == "GET pod")
            .nth(30)
            .unwrap()
            .start;
        assert!(
            first_retry >= FIRST_BACKOFF,
            "retried after the backoff: {first_retry:?}"
        );
        assert!(
            api.count("GET node") < 30,
            "the retries share reads again: {}",
            api.count("GET node")
        );
        assert!(forgot_everything(&writer));
    }

    #[tokio::test(start_paused = true)]
    async fn a_shared_node_read_that_finds_the_node_gone_ends_every_eviction_that_shared_it() {
        let api = Api::new();
        let pods = api.add_pods(30, "n1");
        api.remove_all("GET node");
        let (writer, metrics, _leader) = writer(&api);
        writer.submit(pods.iter().map(|p| evict(p, "n1")).collect());
        tokio::time::sleep(Duration::from_secs(2)).await;

        assert_eq!(api.count("GET node"), 1);
        assert_eq!(
            api.count("DELETE pod"),
            0,
            "no node, no taint: nothing to evict for"
        );
        assert_eq!(
            retries(&metrics, "pod_delete"),
            0,
            "not found is not retried"
        );
        assert!(forgot_everything(&writer));
    }

    #[tokio::test(start_paused = true)]
    async fn each_pod_marked_not_ready_gets_its_warning_event_after_its_write_and_no_other_does() {
        let api = Api::new();
        api.add_node("n1");
        let pods: Vec<String> = ["a", "b", "c", "gone"].map(String::from).into();
        for p in &pods[..3] {
            api.add_pod(p, "n1");
        }
        api.set_ready("b", "False");
        let (writer, _, _leader) = writer(&api);
        writer.submit(vec![mark_pods_not_ready(&pods, "n1")]);
        tokio::time::sleep(Duration::from_secs(2)).await;

        let written = api.count_by_object("PATCH pod status");
        assert_eq!(
            written.keys().collect::<Vec<_>>(),
            ["default/a", "default/c"],
            "b was NotReady already, gone is gone"
        );
        let events = api.count_by_object("POST event");
        assert_eq!(
            events.keys().collect::<Vec<_>>(),
            ["default/a/NodeNotReady", "default/c/NodeNotReady"]
        );
        let calls = api.calls();
        for p in ["a", "c"] {
            let end_of_write = calls
                .iter()
                .find(|c| c.what == "PATCH pod status" && c.object == format!("default/{p}"))
                .and_then(|c| c.end)
                .unwrap();
            let event = calls
                .iter()
                .find(|c| c.what == "POST event" && c.object.starts_with(&format!("default/{p}/")))
                .unwrap();
            assert!(
                event.start >= end_of_write,
                "{p}'s Event only after its write"
            );
        }
    }

    /// Marks pod `a` of n1 NotReady after `fault` set up the double; asserts that the pod
    /// ends up marked with exactly one NodeNotReady Event.
    async fn mark_one_pod_after(fault: impl FnOnce(&Api)) -> Api {
        let api = Api::new();
        api.add_node("n1");
        api.add_pod("a", "n1");
        fault(&api);
        let (writer, _, _leader) = writer(&api);
        writer.submit(vec![mark_pods_not_ready(&["a".to_string()], "n1")]);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(
            ready_status(&api.pod("a").unwrap()).as_deref(),
            Some("False")
        );
        assert_eq!(
            api.count_by_object("POST event"),
            BTreeMap::from([("default/a/NodeNotReady".to_string(), 1)])
        );
        api
    }

    #[tokio::test(start_paused = true)]
    async fn a_pod_mark_whose_write_failed_records_its_event_once_as_upstream_does() {
        // The first PUT fails (not applied); the retry writes.
        let api = mark_one_pod_after(|api| api.fail("PATCH pod status", 1)).await;
        assert_eq!(api.count("PATCH pod status"), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pod_mark_whose_answer_was_lost_still_records_its_event() {
        // Applied, but the answer is lost: the retry finds the pod marked and writes nothing.
        let api = mark_one_pod_after(|api| api.lose_answer("PATCH pod status", 1)).await;
        assert_eq!(api.count("PATCH pod status"), 1);
        assert_eq!(api.count("GET pod"), 2, "the retry read the pod");
    }

    #[tokio::test(start_paused = true)]
    async fn a_pod_whose_mark_is_retrying_does_not_hold_up_the_marks_of_a_later_decision() {
        let api = Api::new();
        api.add_node("n1");
        api.add_pod("a", "n1");
        api.add_pod("b", "n1");
        api.fail("GET pod", 1);
        let (writer, _, _leader) = writer(&api);
        writer.submit(vec![mark_pods_not_ready(&["a".to_string()], "n1")]);
        tokio::time::sleep(LATENCY * 2).await;
        let mut later = mark_pods_not_ready(&["b".to_string()], "n1");
        if let Action::MarkPodsNotReady { now, .. } = &mut later {
            *now = crate::logic::time::add_secs(epoch(), 1);
        }
        writer.submit(vec![later]);
        tokio::time::sleep(Duration::from_secs(2)).await;

        let calls = api.calls();
        let b_written = calls
            .iter()
            .find(|c| c.what == "PATCH pod status" && c.object == "default/b")
            .and_then(|c| c.end)
            .unwrap();
        let a_read_again = calls
            .iter()
            .filter(|c| c.what == "GET pod" && c.object == "default/a")
            .nth(1)
            .unwrap()
            .start;
        assert!(
            b_written < a_read_again,
            "b written at {b_written:?}, before a's retry at {a_read_again:?}"
        );
        assert_eq!(
            ready_status(&api.pod("a").unwrap()).as_deref(),
            Some("False")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_pod_deleted_while_its_mark_waits_is_not_written_to_nor_read() {
        let api = Api::new();
        api.add_node("n1");
        let pods = api.add_pods(3, "n1");
        let (writer, _, _leader) = writer(&api);
        writer.submit_seen(vec![mark_pods_not_ready(&pods, "n1")], &CopiesOf(&api));
        // Before the marks' first attempts: p's eviction deleted it, and the watch said so.
        let gone = &pods[1];
        api.delete_pod_now(gone);
        writer.pod_gone(&format!("default/{gone}"));
        tokio::time::sleep(Duration::from_secs(2)).await;

        let key = format!("default/{gone}");
        assert!(!api.count_by_object("PATCH pod status").contains_key(&key));
        assert!(!api.count_by_object("GET pod").contains_key(&key));
        for p in [&pods[0], &pods[2]] {
            assert_eq!(ready_status(&api.pod(p).unwrap()).as_deref(), Some("False"));
        }
        assert_eq!(api.count("POST event"), 2, "no Event for the deleted pod");
        assert!(writer.state.lock_pod_news().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_pod_changed_while_its_mark_waits_is_marked_from_the_watchs_copy_without_a_refusal() {
        let api = Api::new();
        api.add_node("n1");
        let pods = api.add_pods(3, "n1");
        let (writer, _, _leader) = writer(&api);
        writer.submit_seen(vec![mark_pods_not_ready(&pods, "n1")], &CopiesOf(&api));
        // Before the marks' first attempts: p's eviction set its DisruptionTarget, and the
        // watch delivered the pod so changed.
        let changed = &pods[1];
        api.set_disruption_target(changed);
        writer.pod_changed(&format!("default/{changed}"), || api.pod(changed).unwrap());
        tokio::time::sleep(Duration::from_secs(2)).await;

        let once: BTreeMap<String, usize> =
            pods.iter().map(|p| (format!("default/{p}"), 1)).collect();
        assert_eq!(
            api.count_by_object("PATCH pod status"),
            once,
            "none refused"
        );
        assert_eq!(api.count("GET pod"), 0);
        for p in &pods {
            assert_eq!(ready_status(&api.pod(p).unwrap()).as_deref(), Some("False"));
        }
        assert!(writer.state.lock_pod_news().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_nodes_pods_are_not_marked_and_get_no_event_once_its_lease_is_renewed() {
        let api = Api::new();
        api.add_node("n1");
        let pods = api.add_pods(3, "n1");
        api.renew_lease("n1", crate::logic::time::add_secs(epoch(), 1));
        let (writer, _, _leader) = writer(&api);
        writer.submit(vec![mark_pods_not_ready(&pods, "n1")]);
        tokio::time::sleep(Duration::from_secs(2)).await;

        for p in &pods {
            assert_eq!(ready_status(&api.pod(p).unwrap()).as_deref(), Some("True"));
        }
        assert_eq!(api.count("PATCH pod status"), 0);
        assert_eq!(api.count("POST event"), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn marking_a_nodes_pods_not_ready_reads_its_lease_once_and_not_the_node() {
        let api = Api::new();
        api.add_node("n1");
        let pods = api.add_pods(30, "n1");
        let (writer, _, _leader) = writer(&api);
        writer.submit(vec![mark_pods_not_ready(&pods, "n1")]);
        tokio::time::sleep(Duration::from_secs(2)).await;

        for p in &pods {
            assert_eq!(ready_status(&api.pod(p).unwrap()).as_deref(), Some("False"));
        }
        let once: BTreeMap<String, usize> =
            pods.iter().map(|p| (format!("default/{p}"), 1)).collect();
        assert_eq!(
            api.count_by_object("PATCH pod status"),
            once,
            "each marked exactly once"
        );
        // 16 attempts in flight at a time (the lane's width): two rounds of 16 and 14, which
        // share the reads, as decided together.
        assert!(pods.len() > Lane::PodStatus.width());
        assert_eq!(
            api.count("GET node"),
            0,
            "the Lease and the Node watch answer for it"
        );
        assert_eq!(api.count("GET lease"), 1, "down from one per pod");
        assert!(forgot_everything(&writer));
    }

    #[tokio::test(start_paused = true)]
    async fn pods_are_not_marked_once_the_node_watch_shows_a_heartbeat_since_the_decision() {
        let api = Api::new();
        api.add_node("n1");
        let pods = api.add_pods(3, "n1");
        let (writer, _, _leader) = writer(&api);
        writer.submit(vec![mark_pods_not_ready(&pods, "n1")]);
        // The kubelet posts its Ready status; its Lease (renewed at `epoch()`, as the decision
        // saw) is not renewed yet.
        writer.node_changed("n1", Some(crate::logic::time::add_secs(epoch(), 1)));
        tokio::time::sleep(Duration::from_secs(2)).await;

        for p in &pods {
            assert_eq!(ready_status(&api.pod(p).unwrap()).as_deref(), Some("True"));
        }
        assert_eq!(api.count("PATCH pod status"), 0);
        assert_eq!(api.count("POST event"), 0);
        assert_eq!(api.count("GET node"), 0);
        assert!(
            writer.state.lock_node_news().is_empty(),
            "forgotten once done"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_change_other_than_a_heartbeat_does_not_stop_its_pods_marks() {
        let api = Api::new();
        api.add_node("n1");
        let pods = api.add_pods(3, "n1");
        let (writer, _, _leader) = writer(&api);
        writer.submit(vec![mark_pods_not_ready(&pods, "n1")]);
        // Our own Unknown mark landing, say: the heartbeat is the one the decision saw.
        writer.node_changed("n1", None);
        tokio::time::sleep(Duration::from_secs(2)).await;

        for p in &pods {
            assert_eq!(ready_status(&api.pod(p).unwrap()).as_deref(), Some("False"));
        }
        assert_eq!(api.count("GET node"), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_whose_lease_cannot_tell_is_read_live_before_its_pods_are_marked() {
        let api = Api::new();
        api.add_node("n1");
        api.delete_lease("n1");
        let pods = api.add_pods(3, "n1");
        api.post_heartbeat("n1", crate::logic::time::add_secs(epoch(), 1));
        let (writer, _, _leader) = writer(&api);
        writer.submit(vec![mark_pods_not_ready(&pods, "n1")]);
        tokio::time::sleep(Duration::from_secs(2)).await;

        assert_eq!(
            api.count("GET node"),
            1,
            "one read, shared by the three marks"
        );
        assert_eq!(
            api.count("PATCH pod status"),
            0,
            "the live node shows a heartbeat the watch had not delivered"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn marking_a_node_unknown_reads_the_node_and_the_lease_itself_not_through_a_pod_marks_slower_reads()
     {
        let api = Api::new();
        api.add_node("n1");
        api.add_pod("p", "n1");
        let (writer, _, _leader) = writer(&api);
        // The pod's attempt: GET pod at 0 ms, GET Lease at 10 ms, PATCH at 20 ms. The
        // node's attempt begins at 15 ms: it reads n1 (that copy is written back), and then
        // the Lease itself at 25 ms, though the pod's read of it was in flight: that read,
        // sent at the pod marks' priority, would make the Unknown mark wait in their line
        // under the client-side limit.
        writer.submit(vec![mark_not_ready("p", "n1")]);
        tokio::time::sleep(Duration::from_millis(15)).await;
        writer.submit(vec![Action::MarkNodeUnknown {
            node: "n1".into(),
            ready_heartbeat: None,
            lease_renew: Some(epoch()),
            now: epoch(),
            seen: None,
        }]);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let reads: Vec<(&str, Duration)> = api
            .calls()
            .iter()
            .filter(|c| c.what.starts_with("GET"))
            .map(|c| (c.what, c.start))
            .collect();
        let ms = Duration::from_millis;
        assert_eq!(
            reads,
            [
                ("GET pod", ms(0)),
                ("GET lease", ms(10)),
                ("GET node", ms(15)),
                ("GET lease", ms(25)),
            ]
        );
        assert_eq!(api.count("PATCH node status"), 1);
        assert_eq!(api.count("PATCH pod status"), 1);
        assert!(forgot_everything(&writer));
    }

    /// Issue 18: nothing a decision stamped with its time is sent later unchanged. A mark
    /// whose first write fails lands with the time of the write that lands.
    #[tokio::test(start_paused = true)]
    async fn a_retried_unknown_mark_says_when_it_landed_not_when_it_was_decided() {
        let api = Api::new();
        api.add_node("n1");
        // Four failures: the write that lands comes over a second after the decision (the
        // double keeps times in whole seconds, as the API does).
        api.fail("PATCH node status", 4);
        let (writer, _, _leader) = writer(&api);
        writer.submit(vec![mark_unknown_on("n1")]);
        tokio::time::sleep(Duration::from_secs(30)).await;
        let landed = api
            .calls()
            .into_iter()
            .filter(|c| c.what == "PATCH node status")
            .nth(4)
            .expect("a fifth attempt");
        let node = api.node("n1");
        let ready = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
            .expect("Ready");
        assert_eq!(ready.status, "Unknown");
        let stamped = ready.last_transition_time.as_ref().expect("stamped").0;
        let write_start = crate::logic::time::add(epoch(), landed.start);
        assert!(landed.start > Duration::from_secs(1), "{:?}", landed.start);
        assert!(
            stamped > epoch() && stamped <= write_start,
            "stamped {stamped}, decided {}, the landing write started at {write_start}",
            epoch()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_unknown_write_delay_runs_from_the_decision_to_the_accepted_write() {
        let api = Api::new();
        api.add_node("n1");
        let (writer, metrics, _leader) = writer(&api);
        // Decided at epoch(), when the writer's clock starts; GET node, GET Lease and the
        // PUT take 10 ms each.
        writer.submit(vec![Action::MarkNodeUnknown {
            node: "n1".into(),
            ready_heartbeat: None,
            lease_renew: Some(epoch()),
            now: epoch(),
            seen: None,
        }]);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(api.count("PATCH node status"), 1);
        let text = metrics.render();
        let value = |name: &str| -> f64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
                .unwrap_or_else(|| panic!("{name} in\n{text}"))
        };
        let prefix = "node_lifecycle_controller_unknown_write_delay_seconds";
        assert_eq!(value(&format!("{prefix}_count")), 1.0);
        let sum = value(&format!("{prefix}_sum"));
        assert!((sum - 0.030).abs() < 1e-6, "{sum}");
    }

    #[tokio::test(start_paused = true)]
    async fn node_writes_are_handed_over_before_the_other_writes_of_their_batch() {
        let api = Api::new();
        api.add_node("n1");
        api.add_node("n2");
        api.add_pod("p", "n1");
        let (writer, _, _leader) = writer(&api);
        writer.submit(vec![mark_not_ready("p", "n1"), mark_unknown_on("n2")]);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let calls = api.calls();
        assert_eq!(
            (calls[0].what, calls[0].object.as_str()),
            ("GET node", "n2")
        );
        assert_eq!(api.count("PATCH node status"), 1);
        assert_eq!(api.count("PATCH pod status"), 1);
    }

    /// An Unknown mark decided on `node` as the double holds it now.
    fn mark_unknown_seen(api: &Api, node: &str) -> Action {
        let live = api.node(node);
        Action::MarkNodeUnknown {
            node: node.into(),
            ready_heartbeat: None,
            lease_renew: Some(epoch()),
            now: epoch(),
            seen: Some(SeenConditions {
                resource_version: live.metadata.resource_version.clone().unwrap(),
                created: Some(epoch()),
                conditions: live.status.unwrap().conditions.unwrap(),
                lease_version: api.lease_version(node),
            }),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn unknown_marks_decided_together_confirm_their_leases_by_one_list_not_a_get_each() {
        let api = Api::new();
        let names: Vec<String> = (0..5).map(|i| format!("n{i}")).collect();
        for n in &names {
            api.add_node(n);
        }
        let marks: Vec<Action> = names.iter().map(|n| mark_unknown_seen(&api, n)).collect();
        // n3's kubelet renews after the decision, before the write.
        api.renew_lease("n3", crate::logic::time::add_secs(epoch(), 1));
        let (writer, _, _leader) = writer(&api);
        writer.submit_seen(marks, &CopiesOf(&api));
        tokio::time::sleep(Duration::from_secs(1)).await;

        assert_eq!(
            api.count("LIST lease versions"),
            1,
            "one list for five marks"
        );
        assert_eq!(api.count("GET lease"), 0);
        let ready: Vec<String> = names
            .iter()
            .map(|n| ready_of(&api.node(n)).into())
            .collect();
        assert_eq!(ready, ["Unknown", "Unknown", "Unknown", "True", "Unknown"]);
        assert!(forgot_everything(&writer));
    }

    #[tokio::test(start_paused = true)]
    async fn pod_marks_decided_with_many_unknown_marks_confirm_their_leases_by_the_marks_list() {
        let api = Api::new();
        let names: Vec<String> = (0..5).map(|i| format!("n{i}")).collect();
        let (mut actions, mut pod_marks) = (Vec::new(), Vec::new());
        for n in &names {
            api.add_node(n);
            let pods: Vec<String> = (0..2).map(|i| format!("{n}-p{i}")).collect();
            for p in &pods {
                api.add_pod(p, n);
            }
            actions.push(mark_unknown_seen(&api, n));
            let mut marks = mark_pods_not_ready(&pods, n);
            if let Action::MarkPodsNotReady { lease_version, .. } = &mut marks {
                *lease_version = api.lease_version(n);
            }
            pod_marks.push(marks);
        }
        actions.extend(pod_marks);
        // n3's kubelet renews after the decision, before the writes.
        api.renew_lease("n3", crate::logic::time::add_secs(epoch(), 1));
        let (writer, _, _leader) = writer(&api);
        writer.submit_seen(actions, &CopiesOf(&api));
        tokio::time::sleep(Duration::from_secs(2)).await;

        assert_eq!(
            api.count("LIST lease versions"),
            1,
            "one list for five node marks and their pods' marks"
        );
        assert_eq!(api.count("GET lease"), 1, "n3's, listed at another version");
        assert_eq!(api.count("GET node"), 0);
        for n in &names {
            let want = if n == "n3" { "True" } else { "False" };
            for i in 0..2 {
                let pod = api.pod(&format!("{n}-p{i}")).unwrap();
                assert_eq!(ready_status(&pod).as_deref(), Some(want), "{n}-p{i}");
            }
        }
        assert!(forgot_everything(&writer));
    }

    #[tokio::test(start_paused = true)]
    async fn an_unknown_mark_alone_reads_its_lease_rather_than_listing_them_all() {
        let api = Api::new();
        for n in ["n0", "n1"] {
            api.add_node(n);
        }
        let (writer, _, _leader) = writer(&api);
        writer.submit_seen(vec![mark_unknown_seen(&api, "n0")], &CopiesOf(&api));
        tokio::time::sleep(Duration::from_secs(1)).await;

        assert_eq!(api.count("LIST lease versions"), 0);
        assert_eq!(api.count("GET lease"), 1);
        assert_eq!(ready_of(&api.node("n0")), "Unknown");
    }

    fn ready_of(node: &Node) -> &str {
        crate::logic::conditions::ready_status(node).map_or("", |s| s.as_str())
    }

    #[tokio::test(start_paused = true)]
    async fn an_unknown_mark_patches_the_conditions_it_was_decided_on_without_reading_the_node() {
        let api = Api::new();
        api.add_node("n1");
        let (writer, _, _leader) = writer(&api);
        writer.submit(vec![mark_unknown_seen(&api, "n1")]);
        tokio::time::sleep(Duration::from_secs(1)).await;

        let calls: Vec<&str> = api.calls().iter().map(|c| c.what).collect();
        assert_eq!(calls, ["GET lease", "PATCH node status"]);
        let node = api.node("n1");
        assert_eq!(ready_of(&node), "Unknown");
        let conditions = node.status.unwrap().conditions.unwrap();
        let types: Vec<&str> = conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(
            types,
            ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"],
            "the conditions the kubelet never posted are added as on a read copy"
        );
        let never_posted = &conditions[1];
        assert_eq!(
            never_posted.last_heartbeat_time,
            Some(Time(epoch())),
            "with the creation time the decision saw as their heartbeat"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_unknown_mark_sends_only_the_fields_it_sets_of_the_conditions_it_changes() {
        let api = Api::new();
        api.add_node("n1");
        let heartbeat = crate::logic::time::add_secs(epoch(), -60);
        api.post_heartbeat("n1", heartbeat);
        let Action::MarkNodeUnknown {
            node,
            lease_renew,
            now,
            seen,
            ..
        } = mark_unknown_seen(&api, "n1")
        else {
            unreachable!()
        };
        let mark = Action::MarkNodeUnknown {
            node,
            ready_heartbeat: Some(heartbeat),
            lease_renew,
            now,
            seen,
        };
        let (writer, _, _leader) = writer(&api);
        writer.submit(vec![mark]);
        tokio::time::sleep(Duration::from_secs(1)).await;

        let sent = api.conditions_sent();
        assert_eq!(sent.len(), 1, "{sent:?}");
        let at = serde_json::json!(Time(epoch()));
        assert_eq!(
            sent[0][0],
            serde_json::json!({
                "type": "Ready",
                "status": "Unknown",
                "reason": "NodeStatusUnknown",
                "message": "Kubelet stopped posting node status.",
                "lastTransitionTime": at,
            }),
            "an existing condition: no heartbeat, nothing the mark does not set"
        );
        let added: Vec<&serde_json::Value> = sent[0].as_array().unwrap()[1..].iter().collect();
        assert_eq!(added.len(), 3, "{sent:?}");
        for c in added {
            assert_eq!(c["status"], "Unknown");
            assert_eq!(
                c["lastHeartbeatTime"], at,
                "an added condition is sent whole"
            );
        }
        let node = api.node("n1");
        let conditions = node.status.unwrap().conditions.unwrap();
        assert_eq!(
            conditions[0].last_heartbeat_time,
            Some(Time(heartbeat)),
            "the server keeps the heartbeat it had"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_pod_marked_not_ready_is_sent_only_its_ready_status_and_transition_time() {
        let api = Api::new();
        api.add_node("n1");
        api.add_pod("p", "n1");
        let (writer, _, _leader) = writer(&api);
        writer.submit(vec![mark_not_ready("p", "n1")]);
        tokio::time::sleep(Duration::from_secs(1)).await;

        assert_eq!(
            api.conditions_sent(),
            [serde_json::json!([{
                "type": "Ready",
                "status": "False",
                "lastTransitionTime": Time(epoch()),
            }])]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_changed_since_its_unknown_mark_was_decided_is_read_again_and_keeps_the_change()
    {
        let api = Api::new();
        api.add_node("n1");
        let mark = mark_unknown_seen(&api, "n1");
        // Written by someone else after the decision: the patch's resourceVersion is stale.
        api.set_unreachable("n1", true);
        api.set_node_ready("n1", "True");
        let (writer, metrics, _leader) = writer(&api);
        writer.submit(vec![mark]);
        tokio::time::sleep(Duration::from_secs(1)).await;

        let calls: Vec<&str> = api.calls().iter().map(|c| c.what).collect();
        assert_eq!(
            calls,
            [
                "GET lease",
                "PATCH node status",
                "GET node",
                "GET lease",
                "PATCH node status"
            ]
        );
        let node = api.node("n1");
        assert_eq!(ready_of(&node), "Unknown");
        assert!(
            node.spec.and_then(|s| s.taints).is_some(),
            "the other write was not undone"
        );
        assert_eq!(retries(&metrics, "node_status"), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_that_posted_a_heartbeat_since_the_decision_is_not_marked_after_a_refused_patch()
    {
        let api = Api::new();
        api.add_node("n1");
        let mark = mark_unknown_seen(&api, "n1");
        api.post_heartbeat("n1", crate::logic::time::add_secs(epoch(), 1));
        let (writer, _, _leader) = writer(&api);
        writer.submit(vec![mark]);
        tokio::time::sleep(Duration::from_secs(1)).await;

        assert_eq!(ready_of(&api.node("n1")), "True");
        let calls: Vec<&str> = api.calls().iter().map(|c| c.what).collect();
        assert_eq!(
            calls,
            ["GET lease", "PATCH node status", "GET node"],
            "the patch was refused, and the node as read shows the heartbeat"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_write_answered_429_is_retried_after_a_second_not_the_first_100_ms() {
        let api = Api::new();
        api.add_node("n1");
        api.throttle("PATCH node status", 2);
        let (writer, metrics, _leader) = writer(&api);
        writer.submit(vec![mark_unknown_on("n1")]);
        tokio::time::sleep(Duration::from_secs(10)).await;
        let patches: Vec<Call> = api
            .calls()
            .into_iter()
            .filter(|c| c.what == "PATCH node status")
            .collect();
        assert_eq!(patches.len(), 3, "two 429s, then applied");
        assert_eq!(ready_of(&api.node("n1")), "Unknown");
        assert_eq!(retries(&metrics, "node_status"), 2);
        for pair in patches.windows(2) {
            let gap = pair[1].start - pair[0].start;
            assert!(
                gap >= TOO_MANY_REQUESTS_BACKOFF,
                "retried {gap:?} after a 429"
            );
        }
    }

    fn mark_unknown_on(node: &str) -> Action {
        Action::MarkNodeUnknown {
            node: node.into(),
            ready_heartbeat: None,
            lease_renew: Some(epoch()),
            now: epoch(),
            seen: None,
        }
    }
}

mod priority {
    use super::api::*;
    use super::*;

    /// A taint change never waits for a permit behind a mass failure's Unknown marks: 40 marks
    /// held by the server (as a client-side limit holds them) fill the marks' lane, and the
    /// untaint of a node that came back, decided meanwhile, goes out at once.
    #[tokio::test(start_paused = true)]
    async fn a_taint_change_goes_out_while_the_lane_of_unknown_marks_is_full() {
        let api = Api::new();
        let nodes: Vec<String> = (0..40).map(|i| format!("n-{i}")).collect();
        for n in &nodes {
            api.add_node(n);
        }
        api.add_node("back");
        api.set_unreachable("back", true);
        api.hold("PATCH node status", Duration::from_secs(5));
        let (writer, _, _leader) = writer(&api);
        let mark = |n: &String| Action::MarkNodeUnknown {
            node: n.clone(),
            ready_heartbeat: None,
            lease_renew: Some(epoch()),
            now: epoch(),
            seen: None,
        };
        writer.submit(nodes.iter().map(mark).collect());
        tokio::time::sleep(Duration::from_millis(100)).await;
        writer.submit(vec![Action::ChangeTaints {
            node: "back".into(),
            change: crate::logic::taints::remove_no_execute(),
            purpose: crate::logic::actions::TaintPurpose::Recovery,
        }]);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let taints = api
            .node("back")
            .spec
            .and_then(|s| s.taints)
            .unwrap_or_default();
        assert!(
            taints.iter().all(|t| t.effect != "NoExecute"),
            "untainted within 100 ms although {} marks wait: {taints:?}",
            nodes.len()
        );
        assert_eq!(api.count("PATCH node status"), 0, "the marks still wait");
    }

    #[tokio::test(start_paused = true)]
    async fn pod_marks_yield_to_node_writes_and_still_finish_while_node_writes_keep_coming() {
        let api = Api::new();
        let nodes: Vec<String> = (0..400).map(|i| format!("n-{i}")).collect();
        for n in &nodes {
            api.add_node(n);
        }
        api.add_node("m");
        let pods = api.add_pods(40, "m");
        let (writer, _, _leader) = writer(&api);
        // A node write every 5 ms for 2 s, each two calls of 10 ms: the node lane is never
        // idle, though never full either.
        let stream = {
            let writer = writer.clone();
            let nodes = nodes.clone();
            tokio::spawn(async move {
                for n in &nodes {
                    writer.submit(vec![label(n)]);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(1)).await;
        writer.submit(vec![mark_pods_not_ready(&pods, "m")]);
        stream.await.unwrap();
        let stream_end = api.calls().last().unwrap().start;

        let calls = api.calls();
        let last_pod_write = calls
            .iter()
            .filter(|c| c.what == "PATCH pod status")
            .map(|c| c.end.unwrap())
            .max()
            .unwrap();
        assert!(
            last_pod_write < stream_end,
            "every pod was marked while node writes kept coming (no starvation): \
             last at {last_pod_write:?}, node writes until {stream_end:?}"
        );
        for p in &pods {
            assert_eq!(ready_status(&api.pod(p).unwrap()).as_deref(), Some("False"));
        }
        let most = most_pod_attempts_at_once(&calls);
        assert!(
            most <= Lane::PodStatus.width_while_yielding(),
            "pod marks kept to their yielding width: {most} at once"
        );

        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            api.count("PATCH pod status"),
            pods.len(),
            "each pod written once"
        );
        assert_eq!(
            api.count("PATCH node"),
            nodes.len(),
            "each node written once"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn pod_marks_use_their_full_width_while_a_node_write_only_backs_off() {
        let api = Api::new();
        api.add_node("n");
        api.add_node("m");
        let pods = api.add_pods(16, "m");
        api.fail("PATCH node", usize::MAX);
        let (writer, _, _leader) = writer(&api);
        writer.submit(vec![label("n")]);
        // GET and failed PUT by 20 ms; then it sleeps 100 ms or more.
        tokio::time::sleep(Duration::from_millis(30)).await;
        writer.submit(vec![mark_pods_not_ready(&pods, "m")]);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(api.count("PATCH node"), 1, "still backing off");
        assert_eq!(
            most_pod_attempts_at_once(&api.calls()),
            Lane::PodStatus.width(),
            "a backoff is not a reason to yield"
        );
        assert_eq!(api.count("PATCH pod status"), pods.len());
    }

    #[tokio::test(start_paused = true)]
    async fn events_wait_for_evictions_in_flight_then_go_at_full_width() {
        let (api, pods) = tainted_node_with_pods(32);
        let (writer, _, _leader) = writer(&api);
        let events: Vec<Action> = (0..16)
            .map(|i| {
                Action::Event(crate::logic::actions::EventRecord {
                    component: crate::logic::actions::Component::NodeController,
                    object: crate::logic::actions::ObjectRef::pod(
                        "default",
                        &format!("e-{i}"),
                        None,
                    ),
                    event_type: crate::logic::actions::EventType::Normal,
                    reason: "R".into(),
                    message: "m".into(),
                })
            })
            .collect();
        writer.submit(pods.iter().map(|p| evict(p, "n1")).collect());
        writer.submit(events);
        tokio::time::sleep(Duration::from_secs(1)).await;

        let calls = api.calls();
        let last_delete = calls
            .iter()
            .filter(|c| c.what == "DELETE pod")
            .map(|c| c.end.unwrap())
            .max()
            .unwrap();
        let event_starts: Vec<Duration> = calls
            .iter()
            .filter(|c| c.what == "POST event")
            .map(|c| c.start)
            .collect();
        assert_eq!(event_starts.len(), 16, "every event recorded once");
        let during = event_starts.iter().filter(|t| **t < last_delete).count();
        assert!(
            during <= 4,
            "one event at a time while evictions are in flight (4 rounds of 10 ms): {during}"
        );
        let after: Vec<_> = event_starts.iter().filter(|t| **t >= last_delete).collect();
        assert!(
            after.iter().filter(|t| ***t == *after[0]).count() == Lane::Events.width(),
            "then the lane's full width at once: {after:?}"
        );
    }
}

#[test]
fn backoff_doubles_and_is_capped() {
    let a = backoff(0, "k");
    let b = backoff(1, "k");
    assert!(a >= FIRST_BACKOFF && a <= FIRST_BACKOFF.mul_f64(1.25));
    assert!(b >= FIRST_BACKOFF * 2 && b <= (FIRST_BACKOFF * 2).mul_f64(1.25));
    let late = backoff(40, "k");
    assert!(late >= MAX_BACKOFF && late <= MAX_BACKOFF.mul_f64(1.25));
}

#[test]
fn backoff_is_the_same_for_the_same_key_and_attempt() {
    assert_eq!(backoff(3, "pod/a/b"), backoff(3, "pod/a/b"));
}
