//! How long a failed watch waits before it tries again: from 200 ms, doubling, at most 1 s,
//! back to 200 ms after any event.
//!
//! kube's default (0.8 s doubling to 30 s) grows through an outage of the API server, so after a
//! 45 s restart the Node and Pod watches came back 17-30 s after the server did: the controller
//! could not see its own taints, and the outage it had to wait out was that much longer
//! (docs/differences.md#control-plane-outages). Three watches retrying once a second cost the
//! server next to nothing, and each attempt takes a token of the client-side rate limit.

use kube::runtime::utils::Backoff;
use std::time::Duration;

const FIRST: Duration = Duration::from_millis(200);
const MOST: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug)]
pub struct WatchBackoff {
    next: Duration,
}

impl Default for WatchBackoff {
    fn default() -> Self {
        WatchBackoff { next: FIRST }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    /// Never gives up: a watch that stopped for good would leave the caches to go stale.
    fn next(&mut self) -> Option<Duration> {
        let wait = self.next;
        self.next = (wait * 2).min(MOST);
        Some(wait)
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_from_200_ms_to_at_most_a_second_and_start_over_after_a_reset() {
        let mut b = WatchBackoff::default();
        let waits: Vec<u64> = b.by_ref().take(6).map(|d| d.as_millis() as u64).collect();
        assert_eq!(waits, [200, 400, 800, 1000, 1000, 1000]);
        b.reset();
        assert_eq!(b.next(), Some(FIRST));
    }
}
