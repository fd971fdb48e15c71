//! Small helpers for the controller's time arithmetic on `jiff::Timestamp`.

use jiff::{SignedDuration, Timestamp};
use std::time::Duration;

/// `t + d`, saturating at the end of representable time instead of failing.
pub fn add(t: Timestamp, d: Duration) -> Timestamp {
    let d = SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX);
    t.checked_add(d).unwrap_or(Timestamp::MAX)
}

/// `t + seconds` for a signed number of seconds (tolerationSeconds may be negative).
pub fn add_secs(t: Timestamp, seconds: i64) -> Timestamp {
    t.checked_add(SignedDuration::from_secs(seconds))
        .unwrap_or(if seconds < 0 {
            Timestamp::MIN
        } else {
            Timestamp::MAX
        })
}

/// The time elapsed from `earlier` to `later`, zero when `later` is not after `earlier`.
pub fn since(later: Timestamp, earlier: Timestamp) -> Duration {
    let d = later.duration_since(earlier);
    Duration::try_from(d).unwrap_or(Duration::ZERO)
}

/// The next whole second strictly after the whole second `t` falls in.
///
/// API timestamps (`metav1.Time`) are truncated to whole seconds, so the real instant behind a
/// timestamp `T` lies in `[T, T+1s)`. Counting from `floor(T) + 1s` can never start a countdown
/// early.
pub fn round_up_next_second(t: Timestamp) -> Timestamp {
    let floor = Timestamp::from_second(t.as_second()).unwrap_or(t);
    let floor = if floor > t {
        add_secs(floor, -1)
    } else {
        floor
    };
    add_secs(floor, 1)
}

/// Truncates to the whole second, as the API server does when it stores a `metav1.Time`.
pub fn truncate_to_second(t: Timestamp) -> Timestamp {
    let s = Timestamp::from_second(t.as_second()).unwrap_or(t);
    if s > t { add_secs(s, -1) } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn whole_second_timestamps_round_up_to_the_next_second() {
        assert_eq!(
            round_up_next_second(ts("2025-01-01T00:00:10Z")),
            ts("2025-01-01T00:00:11Z")
        );
        assert_eq!(
            round_up_next_second(ts("2025-01-01T00:00:10.25Z")),
            ts("2025-01-01T00:00:11Z")
        );
    }

    #[test]
    fn truncation_drops_the_fraction_of_a_second() {
        assert_eq!(
            truncate_to_second(ts("2025-01-01T00:00:10.9Z")),
            ts("2025-01-01T00:00:10Z")
        );
    }

    #[test]
    fn since_is_zero_when_the_order_is_reversed() {
        assert_eq!(
            since(ts("2025-01-01T00:00:10Z"), ts("2025-01-01T00:00:20Z")),
            Duration::ZERO
        );
        assert_eq!(
            since(ts("2025-01-01T00:00:20Z"), ts("2025-01-01T00:00:10Z")),
            Duration::from_secs(10)
        );
    }
}
