//! `status --output html`: the leader's answer and the next hour on the what-if report's page.
//!
//! The answer holds the zones, the nodes that are not Ready or tainted and the deletions the
//! leader has scheduled; it does not hold what a what-if starts from (the healthy nodes, every
//! pod's tolerations and owner, the PodDisruptionBudgets), and carrying those in it would make
//! every `status` cost the control loop a copy of the cluster. So the next hour is played from
//! the cluster's objects as the CLI reads them with the user's kubeconfig (list only, as
//! `simulate --from-cluster` does), by the what-if engine, with the flags the answer shows,
//! and drawn below the answer by the what-if report's renderer. Each deletion the leader holds
//! is set beside the time the what-if deletes that pod at, so a difference shows.

use super::render;
use crate::logic::explain::{Controller, Envelope, Removal, StatusReport, Upcoming, ZoneView};
use crate::sim::report::{self, Run, esc};
use crate::sim::snapshot::{self, Snapshot, WhatIf};
use crate::sim::timeline::format_seconds;
use crate::sim::{self, EntryKind, scenario};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// The seed of the what-if (`simulate`'s default).
const SEED: u64 = 0;

/// The controller flags of the what-if: those the answer shows (dry run, eviction mode, the
/// breaker, the zone rates a Normal or a large PartialDisruption zone runs at). The others are
/// the controller's defaults: the answer does not carry them.
pub fn what_if_flags(c: &Controller, zones: &[ZoneView]) -> Vec<(String, String)> {
    let mut flags = Vec::new();
    let mut set = |flag: &str, value: String| flags.push((flag.to_string(), value));
    if c.dry_run {
        set("dry-run", "true".into());
    }
    if c.removal == Removal::Evict {
        set("eviction-mode", "evict".into());
    }
    if let Some(fraction) = c.breaker.max_unhealthy_fraction {
        set("max-unhealthy-fraction", fraction.to_string());
    }
    if !c.all_zones_fully_disrupted {
        let rate = |state: &str| {
            zones
                .iter()
                .find(|z| z.state == state && z.rate_per_second > 0.0)
                .map(|z| z.rate_per_second.to_string())
        };
        if let Some(r) = rate("Normal") {
            set("node-eviction-rate", r);
        }
        if let Some(r) = rate("PartialDisruption") {
            set("secondary-node-eviction-rate", r);
        }
    }
    flags
}

/// The page: `answer` (the leader's `status`), then the next `horizon` played from `snapshot`
/// (read from `source`, a context or a server, named on the page). `Err`: why the what-if could
/// not run.
pub fn status_page(
    answer: &Envelope<StatusReport>,
    snapshot: &Snapshot,
    horizon: Duration,
    source: &str,
) -> Result<String, String> {
    let flags = what_if_flags(&answer.controller, &answer.answer.zones);
    let what_if = WhatIf {
        duration: Some(horizon),
        set: &flags,
        source,
        ..WhatIf::default()
    };
    let (text, notes) = snapshot::scenario_text(snapshot, &what_if).map_err(|e| e.to_string())?;
    let scenario =
        scenario::parse(&text, "<the cluster's state>").map_err(|e| format!("the what-if: {e}"))?;
    let settings = crate::config::settings_from_overrides(&scenario.controller)
        .map_err(|e| format!("the what-if's flags: {e}"))?;
    let entries = sim::simulate(&scenario, settings, SEED).map_err(|e| e.to_string())?;

    let mut deleted: BTreeMap<&str, u64> = BTreeMap::new();
    for entry in &entries {
        if let EntryKind::PodDeleted { pod, .. } = &entry.kind {
            deleted.entry(pod.as_str()).or_insert(entry.t_ms);
        }
    }
    let horizon_text = humantime::format_duration(horizon).to_string();
    let what_if_at = |d: &Upcoming| match deleted.get(d.pod.as_str()) {
        Some(ms) => {
            let at = snapshot.taken_at + jiff::SignedDuration::from_millis(*ms as i64);
            let shift = at.duration_since(d.due_at).as_millis();
            let sign = if shift < 0 { "-" } else { "+" };
            format!(
                "{} ({sign}{}s from the due time)",
                at.round(jiff::Unit::Second).unwrap_or(at),
                format_seconds(shift.unsigned_abs() as u64)
            )
        }
        None => format!("not within {horizon_text}"),
    };
    let mut before = render::status_html(answer, &what_if_at);
    let _ = write!(
        before,
        "<h2>The next {}: what-if from the cluster's state</h2>\n<p>Played in virtual time \
         with the controller's own code from the Nodes and Pods read with your kubeconfig at {} \
         (0s on the axes; list requests only), nothing changing meanwhile: no kubelet stops or \
         comes back. Flags as the answer shows them: {}; the others at their defaults (the \
         answer does not carry them).</p>\n",
        esc(&horizon_text),
        esc(&snapshot
            .taken_at
            .round(jiff::Unit::Second)
            .unwrap_or(snapshot.taken_at)
            .to_string()),
        if flags.is_empty() {
            "none set".to_string()
        } else {
            esc(&flags
                .iter()
                .map(|(k, v)| format!("--{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "))
        },
    );
    for note in &notes.0 {
        let _ = writeln!(before, "<p>Left out: {}</p>", esc(note));
    }
    let title = format!("node-lifecycle-controller status, {}", answer.now);
    let runs = [Run {
        label: "as is".to_string(),
        entries: &entries,
    }];
    let mut page = Vec::new();
    report::write_html_after(&scenario, Some(&title), &before, &runs, &mut page)
        .map_err(|e| e.to_string())?;
    String::from_utf8(page).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logic::explain::{BreakerView, GuardView, Role};

    fn controller() -> Controller {
        Controller {
            role: Role::Leader,
            dry_run: false,
            removal: Removal::Delete,
            guard: GuardView::default(),
            breaker: BreakerView::default(),
            all_zones_fully_disrupted: false,
        }
    }

    fn zone(name: &str, state: &str, rate: f64) -> ZoneView {
        ZoneView {
            zone: name.into(),
            state: state.into(),
            rate_per_second: rate,
            queued: vec![],
            next_release: None,
        }
    }

    #[test]
    fn the_what_if_runs_with_the_flags_the_answer_shows_and_defaults_for_the_rest() {
        let mut c = controller();
        assert!(what_if_flags(&c, &[]).is_empty());
        c.dry_run = true;
        c.removal = Removal::Evict;
        c.breaker.max_unhealthy_fraction = Some(0.3);
        let zones = [
            zone("a", "FullDisruption", 0.0),
            zone("b", "Normal", 0.2),
            zone("c", "PartialDisruption", 0.02),
        ];
        let flags: Vec<String> = what_if_flags(&c, &zones)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(
            flags,
            [
                "dry-run=true",
                "eviction-mode=evict",
                "max-unhealthy-fraction=0.3",
                "node-eviction-rate=0.2",
                "secondary-node-eviction-rate=0.02"
            ]
        );
        for (flag, value) in what_if_flags(&c, &zones) {
            crate::config::check_override(&flag, &value)
                .unwrap_or_else(|e| panic!("{flag}={value}: {e}"));
        }
    }

    #[test]
    fn a_paused_zone_gives_no_rate_to_the_what_if() {
        let mut c = controller();
        let zones = [zone("a", "Normal", 0.1)];
        c.all_zones_fully_disrupted = true;
        assert!(what_if_flags(&c, &zones).is_empty());
        let zones = [zone("a", "PartialDisruption", 0.0)];
        c.all_zones_fully_disrupted = false;
        assert!(what_if_flags(&c, &zones).is_empty());
    }
}
