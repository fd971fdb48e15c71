//! The timelines of the example scenarios are pinned: any change in behaviour shows up as a
//! diff against `tests/golden/<example>.jsonl`. After an intended change, regenerate them with
//! `UPDATE_GOLDEN=1 cargo test --test examples` and review the diff.

mod common;

use std::path::Path;

fn check(name: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let yaml = std::fs::read_to_string(root.join("examples").join(format!("{name}.yaml")))
        .expect("example exists");
    let got = common::jsonl(&yaml);
    let golden = root.join("tests/golden").join(format!("{name}.jsonl"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &got).expect("golden written");
        return;
    }
    let want = std::fs::read_to_string(&golden)
        .unwrap_or_else(|_| panic!("missing {}; run UPDATE_GOLDEN=1", golden.display()));
    if got != want {
        let first = got.lines().zip(want.lines()).position(|(g, w)| g != w);
        panic!(
            "timeline of examples/{name}.yaml changed (first differing line: {first:?})\n--- got\n{got}\n--- want\n{want}"
        );
    }
}

macro_rules! examples {
    ($($test:ident => $name:literal),* $(,)?) => {
        $( #[test] fn $test() { check($name); } )*

        #[test]
        fn every_example_has_a_pinned_timeline() {
            let pinned = [$($name),*];
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
            for entry in std::fs::read_dir(root).expect("examples dir") {
                let path = entry.expect("entry").path();
                if path.extension().is_some_and(|e| e == "yaml") {
                    let stem = path.file_stem().unwrap().to_string_lossy().to_string();
                    assert!(pinned.contains(&stem.as_str()), "examples/{stem}.yaml has no test");
                }
            }
        }
    };
}

examples! {
    healthy_cluster => "healthy-cluster",
    node_lost_and_recovered => "node-lost-and-recovered",
    kubelet_reports_not_ready => "kubelet-reports-not-ready",
    partial_disruption_small_zone => "partial-disruption-small-zone",
    partial_disruption_large_zone => "partial-disruption-large-zone",
    full_zone_outage => "full-zone-outage",
    all_zones_down => "all-zones-down",
    tolerations => "tolerations",
    restart_mid_countdown => "restart-mid-countdown",
    stalled_lease_watch => "stalled-lease-watch",
    api_outage => "api-outage",
    api_hang => "api-hang",
    api_hang_after_a_node_died => "api-hang-after-a-node-died",
    api_restart => "api-restart",
    api_restart_after_a_node_died => "api-restart-after-a-node-died",
    pdb_evict_mode => "pdb-evict-mode",
    dry_run => "dry-run",
}
