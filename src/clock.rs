//! Where the loops get `now` from: the system clock in production, tokio's (pausable) clock in
//! the simulator and in tests. Decision code never reads a clock; it is handed `now`.

use jiff::Timestamp;
use std::time::Duration;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;

    /// The tokio instant at which `at` will be reached, for `sleep_until`.
    fn instant_at(&self, at: Timestamp) -> tokio::time::Instant {
        let now = self.now();
        let ahead = crate::logic::time::since(at, now);
        tokio::time::Instant::now() + ahead
    }
}

/// The machine's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// Virtual wall time: `epoch` plus the tokio time elapsed since `start`. With tokio's clock
/// paused (the simulator, `start_paused` tests) it advances only when every task waits.
#[derive(Clone, Copy, Debug)]
pub struct TokioClock {
    epoch: Timestamp,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// Starts counting from `epoch` at the current tokio instant.
    pub fn starting_at(epoch: Timestamp) -> Self {
        TokioClock {
            epoch,
            start: tokio::time::Instant::now(),
        }
    }

    /// Time elapsed since the start.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        crate::logic::time::add(self.epoch, self.start.elapsed())
    }
}
