//! The simulator's admission against the real one: pods with tolerations of every shape are
//! created in the box, and the tolerations kube-apiserver stored (after DefaultTolerationSeconds)
//! are compared field by field with what `sim::admission::admit_tolerations` gives the same
//! declared tolerations. No chart, no fleet: admission is all this looks at.

use crate::fleet::{NOT_READY, UNREACHABLE, ensure_namespace};
use crate::kube_box::KubeBox;
use crate::scenarios::Scenario;
use k8s_openapi::api::core::v1::{Pod, Toleration};
use kube::api::{Api, PostParams};
use node_lifecycle_controller::sim::admission::admit_tolerations;
use serde_json::json;

pub const ALL: &[Scenario] = &[Scenario {
    name: "admission_matches_the_simulator",
    run: |_| {
        Box::pin(async {
            admission_matches_the_simulator().await;
            None
        })
    },
}];

const NAMESPACE: &str = "admission";
/// The box's kube-apiserver runs DefaultTolerationSeconds with its defaults.
const DEFAULT_SECONDS: i64 = 300;

fn t(
    key: &str,
    operator: Option<&str>,
    value: Option<&str>,
    effect: &str,
    seconds: Option<i64>,
) -> Toleration {
    Toleration {
        key: (!key.is_empty()).then(|| key.to_string()),
        operator: operator.map(str::to_string),
        value: value.map(str::to_string),
        effect: (!effect.is_empty()).then(|| effect.to_string()),
        toleration_seconds: seconds,
    }
}

/// Every shape of declared tolerations the plugin's rule tells apart, each one a pod: empty
/// and absent keys and effects, Exists and Equal (and no operator), values, and seconds
/// absent, zero, negative and positive.
fn shapes() -> Vec<(&'static str, Vec<Toleration>)> {
    let (ur, nr, other) = (UNREACHABLE, NOT_READY, "example.com/other");
    let ex = Some("Exists");
    let eq = Some("Equal");
    vec![
        ("none", vec![]),
        ("empty-key-empty-effect", vec![t("", ex, None, "", None)]),
        (
            "empty-key-noexecute",
            vec![t("", ex, None, "NoExecute", Some(60))],
        ),
        (
            "empty-key-noschedule",
            vec![t("", ex, None, "NoSchedule", None)],
        ),
        ("unreachable-empty-effect", vec![t(ur, ex, None, "", None)]),
        (
            "unreachable-exists",
            vec![t(ur, ex, None, "NoExecute", None)],
        ),
        (
            "unreachable-zero",
            vec![t(ur, ex, None, "NoExecute", Some(0))],
        ),
        (
            "unreachable-negative",
            vec![t(ur, ex, None, "NoExecute", Some(-5))],
        ),
        (
            "unreachable-30",
            vec![t(ur, ex, None, "NoExecute", Some(30))],
        ),
        (
            "unreachable-equal-x",
            vec![t(ur, eq, Some("x"), "NoExecute", None)],
        ),
        (
            "unreachable-equal-empty",
            vec![t(ur, eq, Some(""), "NoExecute", Some(10))],
        ),
        (
            "unreachable-no-operator-x",
            vec![t(ur, None, Some("x"), "NoExecute", None)],
        ),
        (
            "unreachable-noschedule",
            vec![t(ur, ex, None, "NoSchedule", None)],
        ),
        (
            "unreachable-prefernoschedule",
            vec![t(ur, ex, None, "PreferNoSchedule", None)],
        ),
        (
            "not-ready-equal-x-60",
            vec![t(nr, eq, Some("x"), "NoExecute", Some(60))],
        ),
        ("not-ready-empty-effect", vec![t(nr, ex, None, "", None)]),
        (
            "other-key-noexecute",
            vec![t(other, ex, None, "NoExecute", None)],
        ),
        (
            "other-key-equal-empty-effect",
            vec![t(other, eq, Some("v"), "", None)],
        ),
        (
            "both-keys-20",
            vec![
                t(ur, ex, None, "NoExecute", Some(20)),
                t(nr, ex, None, "NoExecute", Some(20)),
            ],
        ),
        (
            "unreachable-zero-and-not-ready-equal-y",
            vec![
                t(ur, ex, None, "NoExecute", Some(0)),
                t(nr, eq, Some("y"), "", None),
            ],
        ),
    ]
}

/// A field as Go's JSON leaves it: an empty string is the same as none.
fn field(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// The differences between two toleration lists, field by field ("" when they agree).
fn differences(real: &[Toleration], simulated: &[Toleration]) -> String {
    let mut out = String::new();
    if real.len() != simulated.len() {
        out.push_str(&format!(
            "{} tolerations stored, the simulator has {}; ",
            real.len(),
            simulated.len()
        ));
    }
    for (i, (r, s)) in real.iter().zip(simulated).enumerate() {
        let pairs = [
            ("key", field(&r.key), field(&s.key)),
            ("operator", field(&r.operator), field(&s.operator)),
            ("value", field(&r.value), field(&s.value)),
            ("effect", field(&r.effect), field(&s.effect)),
        ];
        for (name, real, sim) in pairs {
            if real != sim {
                out.push_str(&format!("[{i}].{name}: real {real:?}, simulated {sim:?}; "));
            }
        }
        if r.toleration_seconds != s.toleration_seconds {
            out.push_str(&format!(
                "[{i}].tolerationSeconds: real {:?}, simulated {:?}; ",
                r.toleration_seconds, s.toleration_seconds
            ));
        }
    }
    for extra in real.iter().skip(simulated.len()) {
        out.push_str(&format!("only stored: {extra:?}; "));
    }
    for extra in simulated.iter().skip(real.len()) {
        out.push_str(&format!("only simulated: {extra:?}; "));
    }
    out
}

async fn admission_matches_the_simulator() {
    let name = "admission_matches_the_simulator";
    let kbox = KubeBox::start(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    let client = kbox.admin().await;
    ensure_namespace(&client, NAMESPACE).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let mut mismatches = Vec::new();
    let shapes = shapes();
    for (shape, declared) in &shapes {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": shape},
            "spec": {
                "automountServiceAccountToken": false,
                "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
                "tolerations": declared,
            },
        }))
        .expect("a pod");
        let stored = pods
            .create(&PostParams::default(), &pod)
            .await
            .unwrap_or_else(|e| panic!("{name}: creating the pod {shape}: {e}"));
        let real = stored.spec.and_then(|s| s.tolerations).unwrap_or_default();
        let simulated = admit_tolerations(declared, false, Some(DEFAULT_SECONDS));
        let diff = differences(&real, &simulated);
        if !diff.is_empty() {
            mismatches.push(format!("{shape}: {diff}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{name} ({}): the simulator's admission differs from the real one for {} of {} shapes:\n{}",
        kbox.version,
        mismatches.len(),
        shapes.len(),
        mismatches.join("\n")
    );
    println!(
        "real_cluster: {name}: {} toleration shapes admitted alike by {} and the simulator",
        shapes.len(),
        kbox.version
    );
}
