//! Whether this process acts: it leads (the leader election's term) and its caches synced.
//! A term that ended voids what was decided in it, even if the lease was won back since.

use tokio::sync::watch;

pub struct Leadership {
    /// The leadership term from the leader election: 0 while not leading.
    term: watch::Receiver<u64>,
    /// Leader with synced caches: the passes run and actions are written.
    acting: bool,
    /// The term the current acting state belongs to.
    acting_term: u64,
}

impl Leadership {
    pub fn new(term: watch::Receiver<u64>) -> Self {
        Leadership {
            term,
            acting: false,
            acting_term: 0,
        }
    }

    pub fn acting(&self) -> bool {
        self.acting
    }

    pub fn leading(&self) -> bool {
        *self.term.borrow() != 0
    }

    /// Waits for the term to change (or its sender to go).
    pub async fn changed(&mut self) {
        let _ = self.term.changed().await;
    }

    /// Takes the new term into account; returns whether acting stopped because the term it
    /// belonged to ended.
    pub fn stepped_down(&mut self) -> bool {
        let term = *self.term.borrow_and_update();
        let ended = self.acting && term != self.acting_term;
        if ended {
            self.acting = false;
        }
        ended
    }

    /// Whether acting can start now.
    pub fn can_start(&self, synced: bool) -> bool {
        !self.acting && self.leading() && synced
    }

    /// Starts acting in the current term.
    pub fn start(&mut self) {
        self.acting = true;
        self.acting_term = *self.term.borrow();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acting_waits_for_both_the_lease_and_the_caches() {
        let (tx, rx) = watch::channel(0);
        let leadership = Leadership::new(rx);
        assert!(!leadership.can_start(true), "not leading");
        tx.send(1).unwrap();
        assert!(!leadership.can_start(false), "caches not synced");
        assert!(leadership.can_start(true));
    }

    #[test]
    fn a_lost_term_stops_acting_even_when_the_lease_was_won_back_since() {
        let (tx, rx) = watch::channel(1);
        let mut leadership = Leadership::new(rx);
        leadership.start();
        tx.send(0).unwrap();
        tx.send(2).unwrap();
        assert!(leadership.stepped_down());
        assert!(!leadership.acting());
        assert!(leadership.can_start(true), "acts again in the new term");
    }

    #[test]
    fn a_repeated_look_at_the_same_term_keeps_acting() {
        let (_tx, rx) = watch::channel(3);
        let mut leadership = Leadership::new(rx);
        leadership.start();
        assert!(!leadership.stepped_down());
        assert!(leadership.acting());
    }
}
