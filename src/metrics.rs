//! Prometheus metrics: upstream's names, labels and buckets kept exactly
//! (`node_collector_*`, `taint_eviction_controller_*`), ours prefixed `node_lifecycle_controller_`.
//!
//! Each component owns a group that registers its own metrics (the monitor's, the watches',
//! leadership's, the writer's; the API client's are `k8s::throttle::ThrottleMetrics`);
//! [`Metrics`] composes them on one registry per controller process (the simulator makes one
//! per simulated controller).

use prometheus::core::Collector;
use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder, exponential_buckets,
};

// Upstream help texts carry the stability prefix Kubernetes' component-base adds (`[ALPHA] `,
// `[STABLE] `), so our `# HELP` lines read as upstream's do.
const NODE_COLLECTOR: &str = "node_collector";
const TAINT_EVICTION: &str = "taint_eviction_controller";
const OURS: &str = "node_lifecycle_controller";
/// client-go's metrics have no subsystem of ours.
const CLIENT_GO: &str = "";

/// Upstream's taint-eviction latency buckets (5ms to 4m).
const POD_DELETION_BUCKETS: [f64; 12] = [
    0.005, 0.025, 0.1, 0.5, 1.0, 2.5, 10.0, 30.0, 60.0, 120.0, 180.0, 240.0,
];

/// Registers a collector and hands it back; names are fixed here, so a clash is a bug.
fn register<C: Collector + Clone + 'static>(registry: &Registry, collector: C) -> C {
    registry
        .register(Box::new(collector.clone()))
        .expect("metric names are unique within a registry");
    collector
}

/// Registers the metrics of one subsystem (`node_collector`, ours, ...).
struct Registrar<'a> {
    registry: &'a Registry,
    subsystem: &'static str,
}

impl<'a> Registrar<'a> {
    fn new(registry: &'a Registry, subsystem: &'static str) -> Self {
        Registrar {
            registry,
            subsystem,
        }
    }
    fn opts(&self, name: &str, help: &str) -> Opts {
        Opts::new(name, help).subsystem(self.subsystem)
    }
    fn histogram_opts(&self, name: &str, help: &str, buckets: Vec<f64>) -> HistogramOpts {
        HistogramOpts::new(name, help)
            .subsystem(self.subsystem)
            .buckets(buckets)
    }
    fn int_gauge(&self, name: &str, help: &str) -> IntGauge {
        let gauge = IntGauge::with_opts(self.opts(name, help)).expect("valid gauge");
        register(self.registry, gauge)
    }
    fn int_counter(&self, name: &str, help: &str) -> IntCounter {
        let counter = IntCounter::with_opts(self.opts(name, help)).expect("valid counter");
        register(self.registry, counter)
    }
    fn gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
        let gauge = GaugeVec::new(self.opts(name, help), labels).expect("valid gauge");
        register(self.registry, gauge)
    }
    fn int_gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        let gauge = IntGaugeVec::new(self.opts(name, help), labels).expect("valid gauge");
        register(self.registry, gauge)
    }
    fn int_counter_vec(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        let counter = IntCounterVec::new(self.opts(name, help), labels).expect("valid counter");
        register(self.registry, counter)
    }
    fn histogram(&self, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
        let histogram = Histogram::with_opts(self.histogram_opts(name, help, buckets))
            .expect("valid histogram");
        register(self.registry, histogram)
    }
    fn histogram_vec(
        &self,
        name: &str,
        help: &str,
        buckets: Vec<f64>,
        labels: &[&str],
    ) -> HistogramVec {
        let histogram = HistogramVec::new(self.histogram_opts(name, help, buckets), labels)
            .expect("valid histogram");
        register(self.registry, histogram)
    }
}

fn upstream_exponential(start: f64) -> Vec<f64> {
    exponential_buckets(start, 4.0, 8).expect("valid exponential buckets")
}

/// client-go's work-queue latency buckets: 10 ns to 1 000 s, ×10 apart.
fn workqueue_buckets() -> Vec<f64> {
    exponential_buckets(10e-9, 10.0, 12).expect("valid exponential buckets")
}

/// Every metric of one controller process, by the component that records it.
pub struct Metrics {
    registry: Registry,
    pub monitor: MonitorMetrics,
    pub watches: WatchMetrics,
    pub leadership: LeadershipMetrics,
    pub writer: WriterMetrics,
}

impl Metrics {
    /// Creates every component's metrics on a registry of their own.
    pub fn new() -> Self {
        let registry = Registry::new();
        // process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, ...: what
        // every Kubernetes component exposes about itself.
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("process metrics are registered once per registry");
        Metrics {
            monitor: MonitorMetrics::register(&registry),
            watches: WatchMetrics::register(&registry),
            leadership: LeadershipMetrics::register(&registry),
            writer: WriterMetrics::register(&registry),
            registry,
        }
    }
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
    /// Prometheus text exposition of everything registered.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding metric families we built ourselves into memory cannot fail.
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        String::from_utf8_lossy(&buf).into_owned()
    }
    /// Leadership lost: the gauges only the leader's passes keep up to date are cleared, so a
    /// standby does not go on showing the last leader's view.
    pub fn stood_down(&self) {
        self.monitor.stood_down();
        self.watches.stood_down();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The monitor's passes: upstream's `node_collector_*` zone metrics and pass durations, and
/// ours about the zones, the breaker and the input checks.
pub struct MonitorMetrics {
    zone_health: GaugeVec,
    zone_size: GaugeVec,
    unhealthy_nodes_in_zone: GaugeVec,
    evictions_total: IntCounterVec,
    update_node_health_duration: Histogram,
    update_all_nodes_health_duration: Histogram,
    zone_info: IntGaugeVec,
    tainting_pass_duration: Histogram,
    breaker_open: IntGauge,
    breaker_held_nodes_total: IntCounter,
    suspected_misconfiguration: IntGaugeVec,
}

impl MonitorMetrics {
    fn register(registry: &Registry) -> Self {
        let upstream = Registrar::new(registry, NODE_COLLECTOR);
        let ours = Registrar::new(registry, OURS);
        let zone = &["zone"];
        MonitorMetrics {
            zone_health: upstream.gauge_vec(
                "zone_health",
                "[ALPHA] Gauge measuring percentage of healthy nodes per zone.",
                zone,
            ),
            zone_size: upstream.gauge_vec(
                "zone_size",
                "[ALPHA] Gauge measuring number of registered Nodes per zones.",
                zone,
            ),
            unhealthy_nodes_in_zone: upstream.gauge_vec(
                "unhealthy_nodes_in_zone",
                "[ALPHA] Gauge measuring number of not Ready Nodes per zones.",
                zone,
            ),
            evictions_total: upstream.int_counter_vec(
                "evictions_total",
                "[STABLE] Number of Node evictions that happened since current instance of \
                 NodeController started.",
                zone,
            ),
            update_node_health_duration: upstream.histogram(
                "update_node_health_duration_seconds",
                "[ALPHA] Duration in seconds for NodeController to update the health of a \
                 single node.",
                upstream_exponential(0.001),
            ),
            update_all_nodes_health_duration: upstream.histogram(
                "update_all_nodes_health_duration_seconds",
                "[ALPHA] Duration in seconds for NodeController to update the health of all \
                 nodes.",
                upstream_exponential(0.01),
            ),
            zone_info: ours.int_gauge_vec(
                "zone_info",
                "1 for every zone the controller counts: the raw zone key of upstream's \
                 node_collector_* metrics (region, a NUL byte, zone) next to its \
                 readable parts, for joins on `zone`.",
                &["zone", "region", "zone_name"],
            ),
            tainting_pass_duration: ours.histogram(
                "tainting_pass_duration_seconds",
                "Duration in seconds of one pass over the NoExecute tainting queues.",
                exponential_buckets(0.00001, 4.0, 10).expect("valid exponential buckets"),
            ),
            breaker_open: ours.int_gauge(
                "breaker_open",
                "1 while NoExecute tainting is paused because too many nodes are not Ready.",
            ),
            breaker_held_nodes_total: ours.int_counter(
                "breaker_held_nodes_total",
                "NoExecute taints held back while the breaker was open.",
            ),
            suspected_misconfiguration: ours.int_gauge_vec(
                "suspected_misconfiguration",
                "1 while a start-up or running check finds the controller's inputs \
                 implausible (check=\"node_leases\": nodes exist but none has a Lease \
                 in --node-lease-namespace); Unknown marking is held back meanwhile.",
                &["check"],
            ),
        }
    }

    /// `node_collector_zone_size`, `node_collector_zone_health` (100·(size−unhealthy)/size, 100
    /// when size is 0) and `node_collector_unhealthy_nodes_in_zone` for the raw zone key.
    ///
    /// `node_lifecycle_controller_zone_info{zone,region,zone_name}` follows the zone: 1 while
    /// it has nodes, removed when it vanishes (size 0).
    pub fn set_zone_health(&self, zone_key: &str, size: usize, unhealthy: usize) {
        let (region, zone_name) = zone_key
            .split_once(crate::logic::zones::KEY_SEPARATOR)
            .unwrap_or(("", zone_key));
        let info = [zone_key, region, zone_name];
        if size == 0 {
            let _ = self.zone_info.remove_label_values(&info);
        } else {
            self.zone_info.with_label_values(&info).set(1);
        }
        let health = if size == 0 {
            100.0
        } else {
            100.0 * (size.saturating_sub(unhealthy)) as f64 / size as f64
        };
        self.zone_health.with_label_values(&[zone_key]).set(health);
        self.zone_size
            .with_label_values(&[zone_key])
            .set(size as f64);
        self.unhealthy_nodes_in_zone
            .with_label_values(&[zone_key])
            .set(unhealthy as f64);
    }
    /// Initialises `node_collector_evictions_total{zone}` to 0 when a zone is first seen.
    pub fn init_zone_evictions(&self, zone_key: &str) {
        self.evictions_total
            .with_label_values(&[zone_key])
            .inc_by(0);
    }
    /// `node_collector_evictions_total{zone}` += 1 (a NoExecute taint applied by the zone pass).
    pub fn inc_zone_evictions(&self, zone_key: &str) {
        self.evictions_total.with_label_values(&[zone_key]).inc();
    }
    /// `node_collector_update_node_health_duration_seconds` (buckets 0.001·4^k, k=0..7).
    pub fn observe_node_health_duration(&self, seconds: f64) {
        self.update_node_health_duration.observe(seconds);
    }
    /// `node_collector_update_all_nodes_health_duration_seconds` (buckets 0.01·4^k, k=0..7).
    pub fn observe_all_nodes_health_duration(&self, seconds: f64) {
        self.update_all_nodes_health_duration.observe(seconds);
    }
    /// `node_lifecycle_controller_tainting_pass_duration_seconds` (buckets 10µs·4^k, k=0..9).
    pub fn observe_tainting_pass_duration(&self, seconds: f64) {
        self.tainting_pass_duration.observe(seconds);
    }
    /// `node_lifecycle_controller_breaker_open` gauge and
    /// `node_lifecycle_controller_breaker_held_nodes_total` (NoExecute taints held back).
    pub fn set_breaker_open(&self, open: bool) {
        self.breaker_open.set(i64::from(open));
    }
    pub fn breaker_held_node(&self) {
        self.breaker_held_nodes_total.inc();
    }
    /// `node_lifecycle_controller_suspected_misconfiguration{check}` (1 while suspected).
    pub fn set_suspected_misconfiguration(&self, check: &'static str, suspected: bool) {
        self.suspected_misconfiguration
            .with_label_values(&[check])
            .set(i64::from(suspected));
    }
    /// Zone gauges and zone info removed; breaker and suspicions to 0.
    fn stood_down(&self) {
        self.zone_health.reset();
        self.zone_size.reset();
        self.unhealthy_nodes_in_zone.reset();
        self.zone_info.reset();
        self.breaker_open.set(0);
        self.set_suspected_misconfiguration("node_leases", false);
    }
}

/// The control loop's watches and caches.
pub struct WatchMetrics {
    cache_objects: IntGaugeVec,
    watch_stale: IntGaugeVec,
    watch_restarts_total: IntCounterVec,
    watch_events_total: IntCounterVec,
    api_outages_total: IntCounter,
}

impl WatchMetrics {
    fn register(registry: &Registry) -> Self {
        let ours = Registrar::new(registry, OURS);
        let resource = &["resource"];
        WatchMetrics {
            cache_objects: ours.int_gauge_vec(
                "cache_objects",
                "Objects held in the watch caches, by resource.",
                resource,
            ),
            watch_stale: ours.int_gauge_vec(
                "watch_stale",
                "1 while a watch is found to have stopped delivering, by resource.",
                resource,
            ),
            watch_restarts_total: ours.int_counter_vec(
                "watch_restarts_total",
                "Watches restarted because they went stale.",
                resource,
            ),
            watch_events_total: ours.int_counter_vec(
                "watch_events_total",
                "Watch events received (including the items of each list), by resource.",
                resource,
            ),
            api_outages_total: ours.int_counter(
                "api_outages_total",
                "Outages of the API server ended (requests failed or hung, heartbeat watches cut \
                 or stalled); after each, every node's grace period restarted.",
            ),
        }
    }

    /// `node_lifecycle_controller_cache_objects{resource}` (nodes, leases, pods).
    pub fn set_cache_size(&self, resource: &'static str, count: usize) {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        self.cache_objects.with_label_values(&[resource]).set(count);
    }
    /// `node_lifecycle_controller_watch_stale{resource}` gauge (1 while stale).
    pub fn set_stale(&self, resource: &'static str, stale: bool) {
        self.watch_stale
            .with_label_values(&[resource])
            .set(i64::from(stale));
    }
    /// `node_lifecycle_controller_watch_restarts_total{resource}` on each restart.
    pub fn restarted(&self, resource: &'static str) {
        self.watch_restarts_total
            .with_label_values(&[resource])
            .inc();
    }
    /// `node_lifecycle_controller_watch_events_total{resource}`.
    pub fn event(&self, resource: &'static str) {
        self.watch_events_total.with_label_values(&[resource]).inc();
    }
    /// `node_lifecycle_controller_api_outages_total`: an outage of the API server ended.
    pub fn outage_ended(&self) {
        self.api_outages_total.inc();
    }
    /// The staleness guard's verdicts are the leader's: back to 0.
    fn stood_down(&self) {
        for resource in ["nodes", "leases"] {
            self.set_stale(resource, false);
        }
    }
}

/// Leader election.
pub struct LeadershipMetrics {
    leader: IntGauge,
    leader_election_master_status: GaugeVec,
}

impl LeadershipMetrics {
    fn register(registry: &Registry) -> Self {
        LeadershipMetrics {
            leader: Registrar::new(registry, OURS).int_gauge(
                "leader",
                "1 while this process holds the leader lease, 0 while it stands by.",
            ),
            leader_election_master_status: Registrar::new(registry, CLIENT_GO).gauge_vec(
                "leader_election_master_status",
                "[ALPHA] Gauge of if the reporting system is master of the relevant lease, 0 \
                 indicates backup, 1 indicates master. 'name' is the string used to identify \
                 the lease. Please make sure to group by name.",
                &["name"],
            ),
        }
    }

    /// `node_lifecycle_controller_leader` gauge (1 leader, 0 standby).
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }
    /// client-go's `leader_election_master_status{name}` (1 leader, 0 standby), `name` being
    /// the Lease's name, as kube-controller-manager reports it with leader election on.
    pub fn set_election_status(&self, lease_name: &str, leader: bool) {
        self.leader_election_master_status
            .with_label_values(&[lease_name])
            .set(if leader { 1.0 } else { 0.0 });
    }
}

/// The writer: its API writes, upstream's `taint_eviction_controller_*` pod deletions, and
/// client-go's work-queue metrics (`workqueue_*`, label `name`) for its lanes, which a KCM
/// operator's dashboards graph for every controller's queues.
pub struct WriterMetrics {
    writes_total: IntCounterVec,
    write_retries_total: IntCounterVec,
    dropped_writes_total: IntCounterVec,
    unknown_write_delay: Histogram,
    pod_deletions_total: IntCounter,
    pod_deletion_duration: Histogram,
    pod_eviction_refusals_total: IntCounter,
    queue_depth: IntGaugeVec,
    queue_adds_total: IntCounterVec,
    queue_duration: HistogramVec,
    queue_work_duration: HistogramVec,
    queue_retries_total: IntCounterVec,
}

impl WriterMetrics {
    fn register(registry: &Registry) -> Self {
        let ours = Registrar::new(registry, OURS);
        let upstream = Registrar::new(registry, TAINT_EVICTION);
        let workqueue = Registrar::new(registry, "workqueue");
        let name = &["name"];
        WriterMetrics {
            writes_total: ours.int_counter_vec(
                "writes_total",
                "API writes made, by kind and outcome.",
                &["kind", "outcome"],
            ),
            write_retries_total: ours.int_counter_vec(
                "write_retries_total",
                "API writes retried after a failure, by kind.",
                &["kind"],
            ),
            dropped_writes_total: ours.int_counter_vec(
                "dropped_writes_total",
                "Writes decided but not made (not leader, dry run, or a zone taint back to its queue), by kind and reason.",
                &["kind", "reason"],
            ),
            unknown_write_delay: ours.histogram(
                "unknown_write_delay_seconds",
                "Seconds from the monitor pass that found a node's heartbeats expired to the \
                 API server accepting its Unknown conditions.",
                // Fine around the 100 ms that issue 5 aims at, so that a burst's slowest
                // writes show how far past it they are.
                vec![
                    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.5, 1.0, 2.5,
                    5.0, 10.0, 30.0,
                ],
            ),
            pod_deletions_total: upstream.int_counter(
                "pod_deletions_total",
                "[ALPHA] Total number of Pods deleted by TaintEvictionController since its \
                 start.",
            ),
            pod_deletion_duration: upstream.histogram(
                "pod_deletion_duration_seconds",
                "[ALPHA] Latency, in seconds, between the time when a taint effect has been \
                 activated for the Pod and its deletion via TaintEvictionController.",
                POD_DELETION_BUCKETS.to_vec(),
            ),
            pod_eviction_refusals_total: ours.int_counter(
                "pod_eviction_refusals_total",
                "Evictions refused by the Eviction API (429, a PodDisruptionBudget).",
            ),
            queue_depth: workqueue.int_gauge_vec(
                "depth",
                "[ALPHA] Current depth of workqueue",
                name,
            ),
            queue_adds_total: workqueue.int_counter_vec(
                "adds_total",
                "[ALPHA] Total number of adds handled by workqueue",
                name,
            ),
            queue_duration: workqueue.histogram_vec(
                "queue_duration_seconds",
                "[ALPHA] How long in seconds an item stays in workqueue before being requested.",
                workqueue_buckets(),
                name,
            ),
            queue_work_duration: workqueue.histogram_vec(
                "work_duration_seconds",
                "[ALPHA] How long in seconds processing an item from workqueue takes.",
                workqueue_buckets(),
                name,
            ),
            queue_retries_total: workqueue.int_counter_vec(
                "retries_total",
                "[ALPHA] Total number of retries handled by workqueue",
                name,
            ),
        }
    }

    /// `node_lifecycle_controller_writes_total{kind,outcome}`; kind e.g. `node_status`,
    /// `node_taints`, `node_labels`, `pod_status`, `pod_delete`, `pod_evict`, `event`, `lease`;
    /// outcome `ok` or an `ApiError::kind()`.
    pub fn write(&self, kind: &'static str, outcome: &'static str) {
        self.writes_total.with_label_values(&[kind, outcome]).inc();
    }
    /// `node_lifecycle_controller_write_retries_total{kind}`.
    pub fn write_retry(&self, kind: &'static str) {
        self.write_retries_total.with_label_values(&[kind]).inc();
    }
    /// `node_lifecycle_controller_dropped_writes_total{kind,reason}` += `count`; reason
    /// `not_leader`, `dry_run` or `requeued` (a zone taint that failed, back to its zone's queue).
    pub fn dropped_writes(&self, kind: &'static str, reason: &'static str, count: usize) {
        self.dropped_writes_total
            .with_label_values(&[kind, reason])
            .inc_by(count as u64);
    }
    /// `node_lifecycle_controller_unknown_write_delay_seconds`: what the controller adds to
    /// the monitor period before a silent node shows Unknown (its write queue and the API).
    pub fn observe_unknown_write_delay(&self, seconds: f64) {
        self.unknown_write_delay.observe(seconds);
    }
    /// `taint_eviction_controller_pod_deletions_total` += 1 and
    /// `taint_eviction_controller_pod_deletion_duration_seconds` observes `latency_seconds`
    /// (in seconds, not upstream's ×1e9; buckets 0.005,0.025,0.1,0.5,1,2.5,10,30,60,120,180,240).
    pub fn pod_deleted(&self, latency_seconds: f64) {
        self.pod_deletions_total.inc();
        self.pod_deletion_duration.observe(latency_seconds);
    }
    /// `node_lifecycle_controller_pod_eviction_refusals_total` (429 from the Eviction API).
    pub fn eviction_refused(&self) {
        self.pod_eviction_refusals_total.inc();
    }
    /// `workqueue_adds_total{name}` += 1 and `workqueue_depth{name}` += 1: an item waits.
    pub fn queue_added(&self, queue: &'static str) {
        self.queue_adds_total.with_label_values(&[queue]).inc();
        self.queue_depth.with_label_values(&[queue]).inc();
    }
    /// `workqueue_depth{name}` −= 1 and `workqueue_queue_duration_seconds{name}` observes how
    /// long the item waited; `waited` is `None` for an item that left without being worked on.
    pub fn queue_left(&self, queue: &'static str, waited: Option<f64>) {
        self.queue_depth.with_label_values(&[queue]).dec();
        if let Some(seconds) = waited {
            self.queue_duration
                .with_label_values(&[queue])
                .observe(seconds);
        }
    }
    /// `workqueue_work_duration_seconds{name}`: one attempt at an item.
    pub fn queue_worked(&self, queue: &'static str, seconds: f64) {
        self.queue_work_duration
            .with_label_values(&[queue])
            .observe(seconds);
    }
    /// `workqueue_retries_total{name}` += 1.
    pub fn queue_retry(&self, queue: &'static str) {
        self.queue_retries_total.with_label_values(&[queue]).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample line `name{labels} value` of a rendered exposition, if present.
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn render_shows_upstream_names_help_texts_and_types() {
        let m = Metrics::new();
        m.monitor.set_zone_health("region\0zone", 3, 1);
        m.monitor.init_zone_evictions("region\0zone");
        m.monitor.observe_node_health_duration(0.002);
        m.monitor.observe_all_nodes_health_duration(0.02);
        m.writer.pod_deleted(1.0);
        let text = m.render();
        for line in [
            "# HELP node_collector_zone_health [ALPHA] Gauge measuring percentage of healthy nodes per zone.",
            "# TYPE node_collector_zone_health gauge",
            "# HELP node_collector_zone_size [ALPHA] Gauge measuring number of registered Nodes per zones.",
            "# TYPE node_collector_zone_size gauge",
            "# HELP node_collector_unhealthy_nodes_in_zone [ALPHA] Gauge measuring number of not Ready Nodes per zones.",
            "# TYPE node_collector_unhealthy_nodes_in_zone gauge",
            "# HELP node_collector_evictions_total [STABLE] Number of Node evictions that happened since current instance of NodeController started.",
            "# TYPE node_collector_evictions_total counter",
            "# HELP node_collector_update_node_health_duration_seconds [ALPHA] Duration in seconds for NodeController to update the health of a single node.",
            "# TYPE node_collector_update_node_health_duration_seconds histogram",
            "# HELP node_collector_update_all_nodes_health_duration_seconds [ALPHA] Duration in seconds for NodeController to update the health of all nodes.",
            "# TYPE node_collector_update_all_nodes_health_duration_seconds histogram",
            "# HELP taint_eviction_controller_pod_deletions_total [ALPHA] Total number of Pods deleted by TaintEvictionController since its start.",
            "# TYPE taint_eviction_controller_pod_deletions_total counter",
            "# HELP taint_eviction_controller_pod_deletion_duration_seconds [ALPHA] Latency, in seconds, between the time when a taint effect has been activated for the Pod and its deletion via TaintEvictionController.",
            "# TYPE taint_eviction_controller_pod_deletion_duration_seconds histogram",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert_eq!(
            sample(&text, "node_collector_zone_size{zone=\"region\0zone\"}"),
            Some(3.0)
        );
        assert_eq!(
            sample(
                &text,
                "node_collector_unhealthy_nodes_in_zone{zone=\"region\0zone\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "node_collector_evictions_total{zone=\"region\0zone\"}"
            ),
            Some(0.0)
        );
    }

    #[test]
    fn histograms_use_upstream_buckets_exactly() {
        let m = Metrics::new();
        let text = m.render();
        let les = |name: &str| -> Vec<String> {
            let prefix = format!("{name}_bucket{{le=\"");
            text.lines()
                .filter_map(|l| {
                    l.strip_prefix(&prefix)?
                        .split('"')
                        .next()
                        .map(str::to_string)
                })
                .collect()
        };
        assert_eq!(
            les("node_collector_update_node_health_duration_seconds"),
            [
                "0.001", "0.004", "0.016", "0.064", "0.256", "1.024", "4.096", "16.384", "+Inf"
            ]
        );
        assert_eq!(
            les("node_collector_update_all_nodes_health_duration_seconds"),
            [
                "0.01", "0.04", "0.16", "0.64", "2.56", "10.24", "40.96", "163.84", "+Inf"
            ]
        );
        assert_eq!(
            les("taint_eviction_controller_pod_deletion_duration_seconds"),
            [
                "0.005", "0.025", "0.1", "0.5", "1", "2.5", "10", "30", "60", "120", "180", "240",
                "+Inf"
            ]
        );
    }

    #[test]
    fn zone_health_is_the_healthy_percentage_and_100_for_an_empty_zone() {
        let m = Metrics::new();
        m.monitor.set_zone_health("a", 4, 1);
        m.monitor.set_zone_health("", 0, 0);
        let text = m.render();
        assert_eq!(
            sample(&text, "node_collector_zone_health{zone=\"a\"}"),
            Some(75.0)
        );
        assert_eq!(
            sample(&text, "node_collector_zone_health{zone=\"\"}"),
            Some(100.0)
        );
        assert_eq!(
            sample(&text, "node_collector_zone_size{zone=\"\"}"),
            Some(0.0)
        );
    }

    #[test]
    fn deletion_latency_in_seconds_lands_in_its_bucket_not_in_inf() {
        let m = Metrics::new();
        m.writer.pod_deleted(7.0);
        let text = m.render();
        let bucket = |le: &str| {
            sample(
                &text,
                &format!(
                    "taint_eviction_controller_pod_deletion_duration_seconds_bucket{{le=\"{le}\"}}"
                ),
            )
        };
        assert_eq!(bucket("2.5"), Some(0.0));
        assert_eq!(bucket("10"), Some(1.0));
        assert_eq!(bucket("+Inf"), Some(1.0));
        assert_eq!(
            sample(
                &text,
                "taint_eviction_controller_pod_deletion_duration_seconds_sum"
            ),
            Some(7.0)
        );
        assert_eq!(
            sample(&text, "taint_eviction_controller_pod_deletions_total"),
            Some(1.0)
        );
    }

    #[test]
    fn zone_evictions_start_at_zero_and_count_up_without_being_reset_by_a_second_init() {
        let m = Metrics::new();
        m.monitor.init_zone_evictions("a");
        m.monitor.inc_zone_evictions("a");
        m.monitor.init_zone_evictions("a");
        assert_eq!(
            sample(&m.render(), "node_collector_evictions_total{zone=\"a\"}"),
            Some(1.0)
        );
    }

    #[test]
    fn our_metrics_are_prefixed_and_labelled() {
        let m = Metrics::new();
        m.leadership.set_leader(true);
        m.writer.write("node_status", "ok");
        m.writer.write("node_status", "conflict");
        m.writer.write_retry("pod_delete");
        m.writer.dropped_writes("event", "dry_run", 1);
        m.watches.set_cache_size("nodes", 12);
        m.watches.set_stale("leases", true);
        m.watches.restarted("leases");
        m.watches.outage_ended();
        m.monitor.set_breaker_open(true);
        m.monitor.breaker_held_node();
        m.writer.eviction_refused();
        let text = m.render();
        for (series, value) in [
            ("node_lifecycle_controller_leader", 1.0),
            (
                "node_lifecycle_controller_writes_total{kind=\"node_status\",outcome=\"ok\"}",
                1.0,
            ),
            (
                "node_lifecycle_controller_writes_total{kind=\"node_status\",outcome=\"conflict\"}",
                1.0,
            ),
            (
                "node_lifecycle_controller_write_retries_total{kind=\"pod_delete\"}",
                1.0,
            ),
            (
                "node_lifecycle_controller_dropped_writes_total{kind=\"event\",reason=\"dry_run\"}",
                1.0,
            ),
            (
                "node_lifecycle_controller_cache_objects{resource=\"nodes\"}",
                12.0,
            ),
            (
                "node_lifecycle_controller_watch_stale{resource=\"leases\"}",
                1.0,
            ),
            (
                "node_lifecycle_controller_watch_restarts_total{resource=\"leases\"}",
                1.0,
            ),
            ("node_lifecycle_controller_api_outages_total", 1.0),
            ("node_lifecycle_controller_breaker_open", 1.0),
            ("node_lifecycle_controller_breaker_held_nodes_total", 1.0),
            ("node_lifecycle_controller_pod_eviction_refusals_total", 1.0),
        ] {
            assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
        }
        m.leadership.set_leader(false);
        m.watches.set_stale("leases", false);
        let text = m.render();
        assert_eq!(sample(&text, "node_lifecycle_controller_leader"), Some(0.0));
        assert_eq!(
            sample(
                &text,
                "node_lifecycle_controller_watch_stale{resource=\"leases\"}"
            ),
            Some(0.0)
        );
    }

    #[test]
    fn each_instance_has_its_own_registry() {
        let a = Metrics::new();
        let b = Metrics::new();
        a.writer.pod_deleted(0.1);
        assert_eq!(
            sample(&b.render(), "taint_eviction_controller_pod_deletions_total"),
            Some(0.0)
        );
        assert_eq!(
            sample(&a.render(), "taint_eviction_controller_pod_deletions_total"),
            Some(1.0)
        );
    }

    #[test]
    fn every_zone_has_an_info_series_with_its_readable_parts_until_it_vanishes() {
        let m = Metrics::new();
        let key = format!("eu-west{}eu-west-1a", crate::logic::zones::KEY_SEPARATOR);
        m.monitor.set_zone_health(&key, 3, 0);
        let series = format!(
            "node_lifecycle_controller_zone_info{{region=\"eu-west\",zone=\"{key}\",zone_name=\"eu-west-1a\"}}"
        );
        assert_eq!(sample(&m.render(), &series), Some(1.0), "{}", m.render());
        m.monitor.set_zone_health(&key, 0, 0);
        assert_eq!(sample(&m.render(), &series), None);
    }

    #[test]
    fn the_writer_queues_show_as_client_go_workqueue_metrics() {
        let m = Metrics::new();
        m.writer.queue_added("writer_nodes");
        m.writer.queue_added("writer_nodes");
        m.writer.queue_left("writer_nodes", Some(0.002));
        m.writer.queue_worked("writer_nodes", 0.01);
        m.writer.queue_retry("writer_nodes");
        let text = m.render();
        let q = |name: &str| sample(&text, &format!("workqueue_{name}{{name=\"writer_nodes\"}}"));
        assert_eq!(q("depth"), Some(1.0));
        assert_eq!(q("adds_total"), Some(2.0));
        assert_eq!(q("retries_total"), Some(1.0));
        assert_eq!(q("queue_duration_seconds_count"), Some(1.0));
        assert_eq!(q("work_duration_seconds_count"), Some(1.0));
        assert!(text.contains("# HELP workqueue_depth [ALPHA] Current depth of workqueue"));
    }

    #[test]
    fn leader_election_status_is_reported_by_lease_name_as_client_go_does() {
        let m = Metrics::new();
        m.leadership
            .set_election_status("node-lifecycle-controller", true);
        let series = "leader_election_master_status{name=\"node-lifecycle-controller\"}";
        assert_eq!(sample(&m.render(), series), Some(1.0));
        m.leadership
            .set_election_status("node-lifecycle-controller", false);
        assert_eq!(sample(&m.render(), series), Some(0.0));
    }

    #[test]
    fn process_metrics_are_exposed() {
        let text = Metrics::new().render();
        assert!(sample(&text, "process_resident_memory_bytes").is_some_and(|v| v > 0.0));
        assert!(sample(&text, "process_cpu_seconds_total").is_some());
    }

    #[test]
    fn a_replica_that_stands_down_stops_showing_the_leaders_view() {
        let m = Metrics::new();
        m.monitor.set_zone_health("z", 4, 3);
        m.monitor.set_breaker_open(true);
        m.watches.set_stale("leases", true);
        m.monitor
            .set_suspected_misconfiguration("node_leases", true);
        m.stood_down();
        let text = m.render();
        assert_eq!(
            sample(&text, "node_collector_zone_size{zone=\"z\"}"),
            None,
            "{text}"
        );
        assert_eq!(
            sample(&text, "node_lifecycle_controller_breaker_open"),
            Some(0.0)
        );
        assert_eq!(
            sample(
                &text,
                "node_lifecycle_controller_watch_stale{resource=\"leases\"}"
            ),
            Some(0.0)
        );
        assert_eq!(
            sample(
                &text,
                "node_lifecycle_controller_suspected_misconfiguration{check=\"node_leases\"}"
            ),
            Some(0.0)
        );
    }
}
