//! Tests of the API server faults that concern everyone (`api-hang`, `api-restart`) and of how
//! the simulated kubelets come through them.

use super::kubelet::{NODE_LEASE_NAMESPACE, phase_ms};
use super::scenario::{EventAction, Scenario};
use super::seam::SimCluster;
use super::store::{ApiState, Origin, Store};
use super::tests::{built, condition_status, event, node, running, scenario, settle};
use super::world::epoch;
use crate::cluster::{ApiError, Cluster};
use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use kube::runtime::watcher::Event;
use std::time::Duration;

fn renew_time(store: &Store, name: &str) -> Timestamp {
    let lease = store.get_lease(NODE_LEASE_NAMESPACE, name).unwrap();
    lease.spec.unwrap().renew_time.unwrap().0
}

/// Sleeps until 1 ms after `ms` past `t0` (the world acts at whole milliseconds).
async fn just_after(t0: tokio::time::Instant, ms: u64) {
    tokio::time::sleep_until(t0 + Duration::from_millis(ms + 1)).await;
}

fn at_ms(ms: u64) -> Timestamp {
    epoch() + SignedDuration::from_millis(ms as i64)
}

/// The kubelet's retry waits: 200 ms, doubling, at most 7 s.
fn retry_waits() -> impl Iterator<Item = u64> {
    std::iter::successors(Some(200u64), |w| Some((w * 2).min(7_000)))
}

/// One node whose Lease renews every 10 s and the fault `action` from `at_ms` for `duration`.
fn one_node_with(name: &str, action: EventAction, at_secs: u64) -> Scenario {
    let mut s = scenario(vec![node("a-0")], vec![]);
    s.duration = Duration::from_secs(600);
    s.events = vec![event(at_secs, name, action)];
    s
}

fn hang(secs: u64) -> EventAction {
    EventAction::ApiHang {
        duration: Duration::from_secs(secs),
    }
}

fn restart(secs: u64) -> EventAction {
    EventAction::ApiRestart {
        duration: Duration::from_secs(secs),
    }
}

#[tokio::test(start_paused = true)]
async fn a_hang_holds_requests_and_watches_then_answers_everything_at_once() {
    let store = built(&scenario(vec![node("a-0")], vec![]));
    let cluster = SimCluster::new(store.clone());
    let mut watch = cluster.watch_leases(NODE_LEASE_NAMESPACE);
    for _ in 0..3 {
        watch.next().await;
    }
    store.begin_hang();
    assert_eq!(store.api_state(), ApiState::Hung);
    let held = tokio::spawn({
        let cluster = cluster.clone();
        async move { cluster.get_node("a-0").await }
    });
    // The caller's own timeout fires: the request is neither answered nor failed.
    let timed_out = tokio::time::timeout(Duration::from_secs(5), cluster.get_node("a-0")).await;
    assert!(timed_out.is_err());
    let mut lease = store.get_lease(NODE_LEASE_NAMESPACE, "a-0").unwrap();
    lease.spec.as_mut().unwrap().holder_identity = Some("changed".into());
    store.replace_lease(&lease).unwrap();
    let mut opened_during = cluster.watch_nodes();
    let silent = tokio::time::timeout(Duration::from_secs(40), async {
        tokio::select! {
            e = watch.next() => e.map(|e| e.is_ok()),
            e = opened_during.next() => e.map(|e| e.is_ok()),
        }
    })
    .await;
    assert!(silent.is_err(), "a watch delivered during the hang");
    assert!(!held.is_finished());

    assert!(store.end_hang());
    assert_eq!(store.api_state(), ApiState::Up);
    assert!(held.await.unwrap().is_ok());
    assert!(matches!(watch.next().await, Some(Ok(Event::Apply(l)))
        if l.spec.as_ref().unwrap().holder_identity.as_deref() == Some("changed")));
    assert!(matches!(opened_during.next().await, Some(Ok(Event::Init))));
}

#[tokio::test(start_paused = true)]
async fn a_restart_refuses_requests_cuts_watches_and_resuming_them_is_gone_before_they_relist() {
    let store = built(&scenario(vec![node("a-0")], vec![]));
    let cluster = SimCluster::new(store.clone());
    let mut watch = cluster.watch_leases(NODE_LEASE_NAMESPACE);
    for _ in 0..3 {
        watch.next().await;
    }
    store.begin_restart();
    assert_eq!(store.api_state(), ApiState::Down);
    assert!(matches!(
        cluster.get_node("a-0").await,
        Err(ApiError::Unavailable(_))
    ));
    assert!(matches!(
        watch.next().await,
        Some(Err(ApiError::Unavailable(_)))
    ));
    store.end_restart();
    assert_eq!(store.api_state(), ApiState::Up);
    assert!(cluster.get_node("a-0").await.is_ok());
    assert!(matches!(watch.next().await, Some(Err(ApiError::Other(m))) if m.contains("410")));
    assert!(matches!(watch.next().await, Some(Ok(Event::Init))));
    assert!(matches!(watch.next().await, Some(Ok(Event::InitApply(_)))));
    assert!(matches!(watch.next().await, Some(Ok(Event::InitDone))));
}

#[tokio::test(start_paused = true)]
async fn an_outage_cuts_the_controller_alone_and_its_watches_resume_without_a_gone() {
    let store = built(&scenario(vec![node("a-0")], vec![]));
    let cluster = SimCluster::new(store.clone());
    let mut watch = cluster.watch_nodes();
    for _ in 0..3 {
        watch.next().await;
    }
    store.begin_outage();
    assert_eq!(store.api_state(), ApiState::Up, "kubelets still reach it");
    assert!(watch.next().await.unwrap().is_err());
    store.end_outage();
    assert!(matches!(watch.next().await, Some(Ok(Event::Init))));
}

#[tokio::test(start_paused = true)]
async fn a_restart_during_a_hang_fails_the_requests_it_held() {
    let store = built(&scenario(vec![node("a-0")], vec![]));
    let cluster = SimCluster::new(store.clone());
    store.begin_hang();
    let held = tokio::spawn({
        let cluster = cluster.clone();
        async move { cluster.get_node("a-0").await }
    });
    settle().await;
    store.begin_restart();
    assert!(matches!(held.await.unwrap(), Err(ApiError::Unavailable(_))));
    assert!(!store.end_hang(), "still restarting");
    store.end_restart();
    assert!(cluster.get_node("a-0").await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_refused_renewal_is_retried_after_200_ms_doubling_to_7_s_until_the_server_is_back() {
    let seed = 3;
    let phase = phase_ms(seed, "a-0", 1, 10_000);
    // The restart begins just before a renewal and lasts 40 s.
    let start = 10_000 + phase - 1;
    let end = start + 40_000;
    let mut s = one_node_with("api-restart", restart(40), 0);
    s.events[0].at = Duration::from_millis(start);
    let t0 = tokio::time::Instant::now();
    let store = running(&s, seed);
    just_after(t0, end - 2).await;
    assert_eq!(renew_time(&store, "a-0"), at_ms(phase), "nothing lands");
    // Attempts at the renewal's time, then after each wait; the first after the end lands.
    let mut attempt = start + 1;
    let mut waits = retry_waits();
    while attempt < end {
        attempt += waits.next().unwrap();
    }
    assert!(attempt <= end + 7_000);
    just_after(t0, attempt).await;
    assert_eq!(renew_time(&store, "a-0"), at_ms(attempt));
    // Then every renew interval from that success.
    just_after(t0, attempt + 10_000).await;
    assert_eq!(renew_time(&store, "a-0"), at_ms(attempt + 10_000));
}

#[tokio::test(start_paused = true)]
async fn a_renewal_held_when_a_hang_ends_lands_then_with_the_renew_time_it_was_built_with() {
    let seed = 5;
    let phase = phase_ms(seed, "a-0", 1, 10_000);
    let start = 10_000 + phase - 1;
    let end = start + 6_000;
    // Shorter than the request timeout: the renewal built at the hang's start is still held.
    let mut s = one_node_with("api-hang", hang(6), 0);
    s.events[0].at = Duration::from_millis(start);
    let t0 = tokio::time::Instant::now();
    let store = running(&s, seed);
    just_after(t0, end - 2).await;
    assert_eq!(
        renew_time(&store, "a-0"),
        at_ms(phase),
        "held until the end"
    );
    just_after(t0, end).await;
    assert_eq!(
        renew_time(&store, "a-0"),
        at_ms(start + 1),
        "landed at the end"
    );
    // The next renewal is a renew interval after it landed.
    just_after(t0, end + 10_000).await;
    assert_eq!(renew_time(&store, "a-0"), at_ms(end + 10_000));
}

#[tokio::test(start_paused = true)]
async fn a_renewal_that_times_out_in_a_hang_is_retried_and_the_last_one_sent_lands_at_its_end() {
    let seed = 9;
    let phase = phase_ms(seed, "a-0", 1, 10_000);
    let start = 10_000 + phase - 1;
    let end = start + 45_000;
    let mut s = one_node_with("api-hang", hang(45), 0);
    s.events[0].at = Duration::from_millis(start);
    let t0 = tokio::time::Instant::now();
    let store = running(&s, seed);
    // Each attempt waits 10 s for an answer, then the next follows after the backoff.
    let mut sent = start + 1;
    let mut waits = retry_waits();
    loop {
        let next = sent + 10_000 + waits.next().unwrap();
        if next >= end {
            break;
        }
        sent = next;
    }
    just_after(t0, end - 2).await;
    assert_eq!(renew_time(&store, "a-0"), at_ms(phase));
    just_after(t0, end).await;
    if sent + 10_000 > end {
        assert_eq!(
            renew_time(&store, "a-0"),
            at_ms(sent),
            "held, landed at the end"
        );
    } else {
        // The last attempt timed out; the retry after its backoff lands at once.
        assert_eq!(renew_time(&store, "a-0"), at_ms(phase));
    }
}

#[tokio::test(start_paused = true)]
async fn whatever_its_phase_a_lease_is_fresh_again_within_the_retry_cap_after_a_hang() {
    // A hang from 30 s to 75 s. A renewal held at the end was built at most a request timeout
    // before it; one backing off at the end lands by the cap of the backoff.
    let (mut held, mut backed_off) = (0, 0);
    for seed in 0..40 {
        let mut s = one_node_with("api-hang", hang(45), 30);
        s.duration = Duration::from_secs(120);
        let t0 = tokio::time::Instant::now();
        let store = running(&s, seed);
        just_after(t0, 75_000 + 7_000).await;
        let renewed = renew_time(&store, "a-0");
        assert!(
            renewed >= at_ms(75_000 - 10_000),
            "seed {seed}: renewed at {renewed}"
        );
        if renewed < at_ms(75_000) {
            held += 1;
        } else {
            backed_off += 1;
        }
    }
    assert!(
        held > 0 && backed_off > 0,
        "{held} held, {backed_off} backed off"
    );
}

#[tokio::test(start_paused = true)]
async fn a_running_kubelet_restores_ready_within_its_status_loop_after_a_restart() {
    let store = running(&one_node_with("api-restart", restart(45), 30), 0);
    tokio::time::sleep(Duration::from_secs(76)).await;
    // The controller marks the node Unknown as the server comes back.
    let mut n = store.get_node("a-0").unwrap();
    for c in n.status.as_mut().unwrap().conditions.as_mut().unwrap() {
        c.status = "Unknown".into();
    }
    store.replace_node_status(&n, Origin::Controller).unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let n = store.get_node("a-0").unwrap();
    assert_eq!(condition_status(&n, "Ready").as_deref(), Some("True"));
}

#[tokio::test(start_paused = true)]
async fn a_stopped_kubelet_neither_renews_nor_restores_ready_after_a_fault() {
    let mut s = one_node_with("api-hang", hang(45), 30);
    s.events.insert(
        0,
        event(
            20,
            "stop-heartbeat",
            EventAction::StopHeartbeat {
                nodes: vec!["a-0".into()],
            },
        ),
    );
    let store = running(&s, 0);
    tokio::time::sleep(Duration::from_secs(21)).await;
    let before = renew_time(&store, "a-0");
    tokio::time::sleep(Duration::from_secs(60)).await;
    let mut n = store.get_node("a-0").unwrap();
    for c in n.status.as_mut().unwrap().conditions.as_mut().unwrap() {
        c.status = "Unknown".into();
    }
    store.replace_node_status(&n, Origin::Controller).unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(renew_time(&store, "a-0"), before);
    let n = store.get_node("a-0").unwrap();
    assert_eq!(condition_status(&n, "Ready").as_deref(), Some("Unknown"));
}

fn label(node: &mut k8s_openapi::api::core::v1::Node, key: &str) {
    node.metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert(key.to_string(), "x".to_string());
}

#[tokio::test(start_paused = true)]
async fn over_http_a_hang_stalls_every_watch_and_a_restart_expires_older_versions() {
    use super::store::WatchPoll;
    let store = built(&scenario(vec![node("a-0")], vec![]));
    store.enable_watch_history(100);
    let before = store.resource_version();
    let opened = store.watch_mark();
    store.begin_hang();
    let opened_during = store.watch_mark();
    store
        .update_node("a-0", |n| label(n, "during-the-hang"))
        .unwrap();
    assert_eq!(store.poll_node_watch(&opened, before), WatchPoll::Stalled);
    assert_eq!(
        store.poll_node_watch(&opened_during, before),
        WatchPoll::Stalled
    );
    store.end_hang();
    assert!(matches!(
        store.poll_node_watch(&opened, before),
        WatchPoll::Events(events, _) if events.len() == 1
    ));

    let cursor = store.resource_version();
    store.begin_restart();
    assert_eq!(store.poll_node_watch(&opened, cursor), WatchPoll::Closed);
    store
        .update_node("a-0", |n| label(n, "during-the-restart"))
        .unwrap();
    store.end_restart();
    // The client watches again from its cursor: the fresh server no longer has it.
    let reopened = store.watch_mark();
    assert_eq!(store.poll_node_watch(&reopened, cursor), WatchPoll::Expired);
    let now = store.resource_version();
    assert_eq!(
        store.poll_node_watch(&reopened, now),
        WatchPoll::Events(Vec::new(), now)
    );
}

#[tokio::test(start_paused = true)]
async fn a_watch_cut_by_an_outage_that_ends_during_a_hang_relists_when_the_hang_ends() {
    let store = built(&scenario(vec![node("a-0")], vec![]));
    let cluster = SimCluster::new(store.clone());
    let mut watch = cluster.watch_leases(NODE_LEASE_NAMESPACE);
    for _ in 0..3 {
        watch.next().await;
    }
    store.begin_outage();
    assert!(watch.next().await.unwrap().is_err());
    store.begin_hang();
    store.end_outage();
    // The list the watch would re-list with is held by the hang: nothing yet.
    let held = tokio::time::timeout(Duration::from_secs(30), watch.next()).await;
    assert!(held.is_err());
    let mut lease = store.get_lease(NODE_LEASE_NAMESPACE, "a-0").unwrap();
    lease.spec.as_mut().unwrap().holder_identity = Some("renewed meanwhile".into());
    store.replace_lease(&lease).unwrap();
    store.end_hang();
    assert!(matches!(watch.next().await, Some(Ok(Event::Init))));
    assert!(matches!(watch.next().await, Some(Ok(Event::InitApply(l)))
        if l.spec.as_ref().unwrap().holder_identity.as_deref() == Some("renewed meanwhile")));
}
