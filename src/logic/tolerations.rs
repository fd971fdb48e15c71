//! Toleration matching, as the API server and upstream's taint manager define it.

use k8s_openapi::api::core::v1::{Taint, Toleration};

/// Whether `toleration` tolerates `taint`: effect empty or equal; key empty or equal; operator
/// `Exists`, `Equal`/empty with equal values, or the numeric `Lt`/`Gt` (KEP-5471, alpha since
/// Kubernetes 1.35 behind `TaintTolerationComparisonOperators`): the taint's value, an integer,
/// is less (greater) than the toleration's. A pod with such a toleration exists only if the API
/// server admitted it, so it is honoured whatever the gate says now: a pod the scheduler put on
/// a node because it tolerates the taint is never evicted for it.
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("") {
        "Exists" => true,
        "Equal" | "" => {
            toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        op @ ("Lt" | "Gt") => {
            let (Some(wanted), Some(actual)) = (
                decimal(toleration.value.as_deref().unwrap_or("")),
                decimal(taint.value.as_deref().unwrap_or("")),
            ) else {
                // Either value is not a decimal integer: no match, as the scheduler decides.
                return false;
            };
            if op == "Lt" {
                actual < wanted
            } else {
                actual > wanted
            }
        }
        // Operators this version does not know never match.
        _ => false,
    }
}

/// A decimal integer as Kubernetes' numeric toleration operators accept it: an optional `-`,
/// then digits without a leading zero (`0` itself aside), within 64 bits.
fn decimal(value: &str) -> Option<i64> {
    let digits = value.strip_prefix('-').unwrap_or(value);
    let plain = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if plain { value.parse().ok() } else { None }
}

/// For each taint in order, the first toleration that tolerates it (that one's
/// `tolerationSeconds` counts, even when a later one would also match). `None` when some taint
/// is not tolerated at all.
pub fn matching_tolerations<'a>(
    taints: &[Taint],
    tolerations: &'a [Toleration],
) -> Option<Vec<&'a Toleration>> {
    taints
        .iter()
        .map(|taint| tolerations.iter().find(|t| tolerates(t, taint)))
        .collect()
}

/// How long a pod may stay once a taint it tolerates is in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// No `tolerationSeconds`: tolerated forever.
    Forever,
    /// `tolerationSeconds`; zero or negative values count as 0 (evict at once).
    Seconds(i64),
}

/// The window of one toleration.
pub fn window(toleration: &Toleration) -> Window {
    match toleration.toleration_seconds {
        None => Window::Forever,
        Some(s) => Window::Seconds(s.max(0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, value: Option<&str>, effect: &str) -> Taint {
        Taint {
            key: key.to_string(),
            value: value.map(str::to_string),
            effect: effect.to_string(),
            time_added: None,
        }
    }

    fn no_execute(key: &str) -> Taint {
        taint(key, None, "NoExecute")
    }

    /// A toleration built field by field; every field starts unset.
    #[derive(Default)]
    struct Tol(Toleration);

    impl Tol {
        fn key(mut self, k: &str) -> Self {
            self.0.key = Some(k.to_string());
            self
        }
        fn op(mut self, o: &str) -> Self {
            self.0.operator = Some(o.to_string());
            self
        }
        fn value(mut self, v: &str) -> Self {
            self.0.value = Some(v.to_string());
            self
        }
        fn effect(mut self, e: &str) -> Self {
            self.0.effect = Some(e.to_string());
            self
        }
        fn secs(mut self, s: i64) -> Self {
            self.0.toleration_seconds = Some(s);
            self
        }
        fn build(self) -> Toleration {
            self.0
        }
    }

    fn tol() -> Tol {
        Tol::default()
    }

    fn valued(key: &str, value: &str) -> Taint {
        taint(key, Some(value), "NoExecute")
    }

    #[test]
    fn lt_tolerates_a_taint_whose_value_is_below_the_tolerations() {
        let t = tol().key("sla").op("Lt").value("950").build();
        assert!(tolerates(&t, &valued("sla", "900")));
        assert!(!tolerates(&t, &valued("sla", "950")));
        assert!(!tolerates(&t, &valued("sla", "999")));
        assert!(tolerates(&t, &valued("sla", "-5")));
    }

    #[test]
    fn gt_tolerates_a_taint_whose_value_is_above_the_tolerations() {
        let t = tol().key("error-budget-hours").op("Gt").value("1").build();
        assert!(tolerates(&t, &valued("error-budget-hours", "2")));
        assert!(!tolerates(&t, &valued("error-budget-hours", "1")));
        assert!(!tolerates(&t, &valued("error-budget-hours", "0")));
    }

    #[test]
    fn numeric_operators_never_match_values_that_are_not_decimal_integers() {
        let t = tol().key("sla").op("Gt").value("100").build();
        for value in ["high", "950.5", "0950", "+950", "", "99999999999999999999"] {
            assert!(!tolerates(&t, &valued("sla", value)), "{value:?}");
        }
        let odd = tol().key("sla").op("Lt").value("1e3").build();
        assert!(!tolerates(&odd, &valued("sla", "5")));
        // A taint without a value has nothing to compare.
        assert!(!tolerates(&t, &no_execute("sla")));
    }

    #[test]
    fn numeric_operators_still_need_the_key_and_effect_to_match() {
        let t = tol()
            .key("sla")
            .op("Lt")
            .value("950")
            .effect("NoSchedule")
            .build();
        assert!(!tolerates(&t, &valued("sla", "1")));
        let other = tol().key("other").op("Lt").value("950").build();
        assert!(!tolerates(&other, &valued("sla", "1")));
    }

    #[test]
    fn exists_with_the_same_key_and_effect_tolerates() {
        let t = tol().key("k").op("Exists").effect("NoExecute").build();
        assert!(tolerates(&t, &taint("k", Some("anything"), "NoExecute")));
    }

    #[test]
    fn exists_ignores_the_toleration_value() {
        let t = tol().key("k").op("Exists").value("other").build();
        assert!(tolerates(&t, &taint("k", Some("v"), "NoExecute")));
    }

    #[test]
    fn a_different_key_does_not_tolerate() {
        let t = tol().key("other").op("Exists").build();
        assert!(!tolerates(&t, &no_execute("k")));
    }

    #[test]
    fn an_empty_key_with_exists_tolerates_every_key() {
        let t = tol().op("Exists").build();
        assert!(tolerates(&t, &no_execute("a")));
        assert!(tolerates(&t, &taint("b", Some("v"), "NoSchedule")));
        let explicit_empty = tol().key("").op("Exists").build();
        assert!(tolerates(&explicit_empty, &no_execute("a")));
    }

    #[test]
    fn a_different_effect_does_not_tolerate() {
        let t = tol().key("k").op("Exists").effect("NoSchedule").build();
        assert!(!tolerates(&t, &no_execute("k")));
    }

    #[test]
    fn an_empty_effect_tolerates_every_effect() {
        let unset = tol().key("k").op("Exists").build();
        let empty = tol().key("k").op("Exists").effect("").build();
        for effect in ["NoExecute", "NoSchedule", "PreferNoSchedule"] {
            assert!(tolerates(&unset, &taint("k", None, effect)));
            assert!(tolerates(&empty, &taint("k", None, effect)));
        }
    }

    #[test]
    fn equal_needs_equal_values() {
        let t = tol().key("k").op("Equal").value("v").build();
        assert!(tolerates(&t, &taint("k", Some("v"), "NoExecute")));
        assert!(!tolerates(&t, &taint("k", Some("w"), "NoExecute")));
        assert!(!tolerates(&t, &taint("k", None, "NoExecute")));
    }

    #[test]
    fn an_unset_operator_means_equal() {
        let t = tol().key("k").value("v").build();
        assert!(tolerates(&t, &taint("k", Some("v"), "NoExecute")));
        assert!(!tolerates(&t, &taint("k", Some("w"), "NoExecute")));
        let empty_op = tol().key("k").op("").value("v").build();
        assert!(tolerates(&empty_op, &taint("k", Some("v"), "NoExecute")));
        assert!(!tolerates(&empty_op, &taint("k", Some("w"), "NoExecute")));
    }

    #[test]
    fn a_missing_value_equals_an_empty_value() {
        let no_value = tol().key("k").op("Equal").build();
        let empty_value = tol().key("k").op("Equal").value("").build();
        assert!(tolerates(&no_value, &taint("k", None, "NoExecute")));
        assert!(tolerates(&no_value, &taint("k", Some(""), "NoExecute")));
        assert!(tolerates(&empty_value, &taint("k", None, "NoExecute")));
        assert!(!tolerates(&no_value, &taint("k", Some("v"), "NoExecute")));
    }

    #[test]
    fn an_unknown_operator_never_tolerates() {
        let t = tol().key("k").op("Lt").value("5").build();
        assert!(!tolerates(&t, &taint("k", Some("5"), "NoExecute")));
    }

    #[test]
    fn every_taint_tolerated_gives_one_toleration_per_taint_in_order() {
        let taints = [no_execute("a"), no_execute("b")];
        let tols = [
            tol().key("b").op("Exists").secs(20).build(),
            tol().key("a").op("Exists").secs(10).build(),
        ];
        let matched = matching_tolerations(&taints, &tols).expect("all tolerated");
        assert_eq!(matched.len(), 2);
        assert!(std::ptr::eq(matched[0], &tols[1]));
        assert!(std::ptr::eq(matched[1], &tols[0]));
    }

    #[test]
    fn the_first_matching_toleration_counts_even_when_a_later_one_matches() {
        let taints = [no_execute("a")];
        let tols = [
            tol().key("a").op("Exists").secs(300).build(),
            tol().key("a").op("Exists").secs(5).build(),
        ];
        let matched = matching_tolerations(&taints, &tols).unwrap();
        assert_eq!(matched.len(), 1);
        assert!(std::ptr::eq(matched[0], &tols[0]));
        assert_eq!(window(matched[0]), Window::Seconds(300));
    }

    #[test]
    fn untolerated_taint_means_no_matching_list() {
        let taints = [no_execute("a"), no_execute("b")];
        let tols = [tol().key("a").op("Exists").build()];
        assert_eq!(matching_tolerations(&taints, &tols), None);
    }

    #[test]
    fn taints_without_any_tolerations_are_not_tolerated() {
        assert_eq!(matching_tolerations(&[no_execute("a")], &[]), None);
    }

    #[test]
    fn no_taints_give_an_empty_matching_list() {
        let tols = [tol().op("Exists").build()];
        assert_eq!(matching_tolerations(&[], &tols), Some(vec![]));
        assert_eq!(matching_tolerations(&[], &[]), Some(vec![]));
    }

    #[test]
    fn one_toleration_may_serve_several_taints() {
        let taints = [no_execute("a"), no_execute("b")];
        let tols = [tol().op("Exists").build()];
        let matched = matching_tolerations(&taints, &tols).unwrap();
        assert_eq!(matched.len(), 2);
        assert!(matched.iter().all(|m| std::ptr::eq(*m, &tols[0])));
    }

    #[test]
    fn no_toleration_seconds_is_forever() {
        assert_eq!(window(&tol().op("Exists").build()), Window::Forever);
    }

    #[test]
    fn positive_toleration_seconds_are_kept() {
        assert_eq!(window(&tol().secs(300).build()), Window::Seconds(300));
        assert_eq!(window(&tol().secs(1).build()), Window::Seconds(1));
    }

    #[test]
    fn zero_or_negative_toleration_seconds_count_as_zero() {
        assert_eq!(window(&tol().secs(0).build()), Window::Seconds(0));
        assert_eq!(window(&tol().secs(-5).build()), Window::Seconds(0));
        assert_eq!(window(&tol().secs(i64::MIN).build()), Window::Seconds(0));
    }
}
