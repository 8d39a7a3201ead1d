//! The minimum-rate rule, one for every class and the only bound on a client once its head is in:
//! while the server waits on a client — to send its request body, or to take its response — the
//! client must move at least `--min-rate` bytes a second, counted over each `--min-rate-period` of
//! waiting; one that moves less is dropped, as Apache's `MinRate` and nginx's `send_timeout` drop it.
//! With `--min-rate 0` a period must still move something. Only time spent waiting on the client
//! counts: a slow app (a server-sent-events stream with a long pause) is never the client's fault.
//!
//! Not here: what waiting is (the drivers tell, [`Pace::record`]).

use crate::sys::scoreboard::Lane;
use std::net::IpAddr;
use std::time::Duration;

/// `--min-rate` and `--min-rate-period`.
#[derive(Clone, Copy, Debug)]
pub struct MinRate {
    /// Bytes a second; 0 asks only that each period moves something.
    pub bytes: u64,
    pub period: Duration,
}

/// How one connection has kept up while the server waited on it.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Pace {
    waited: Duration,
    moved: u64,
    /// The server has waited on the client at least once: bytes count from then on. What moved
    /// before (a response filling the socket's buffers at once) cost the client nothing.
    begun: bool,
}

impl Pace {
    /// Records `waited` more time spent waiting on the client, during which it moved `moved` bytes.
    /// `true` once a whole period of waiting has moved less than the minimum; a period that moved
    /// enough starts the next one.
    pub fn record(&mut self, waited: Duration, moved: u64, rule: MinRate) -> bool {
        self.begun |= !waited.is_zero();
        if !self.begun {
            return false;
        }
        self.waited += waited;
        self.moved += moved;
        if self.waited < rule.period {
            return false;
        }
        let owed = rule.bytes.saturating_mul(rule.period.as_secs().max(1)).max(1);
        let slow = self.moved < owed;
        *self = Pace { begun: true, ..Pace::default() };
        slow
    }

    /// Waiting time left in the current period: a wait on the client need not last longer before
    /// the rule is checked.
    pub fn left(&self, rule: MinRate) -> Duration {
        rule.period.saturating_sub(self.waited)
    }
}

/// Logs and counts a client the rule dropped while the server waited on it `taking` (its response,
/// or sending its body).
pub(super) fn dropped(lane: Option<&Lane>, rule: MinRate, taking: &str, peer: Option<IpAddr>) {
    let peer = peer.map_or_else(|| "unix".to_string(), |ip| ip.to_string());
    tracing::info!(
        "Dropped a client {taking} slower than --min-rate ({} B/s over {:?}): ip={peer}",
        rule.bytes,
        rule.period
    );
    if let Some(lane) = lane {
        lane.dropped_too_slow();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: MinRate = MinRate { bytes: 100, period: Duration::from_secs(10) };

    #[test]
    fn a_client_slower_than_the_minimum_over_a_period_of_waiting_is_too_slow() {
        let mut pace = Pace::default();
        // 999 bytes over 10 s of waiting, in pieces: one byte short of 100 B/s.
        for _ in 0..9 {
            assert!(!pace.record(Duration::from_secs(1), 111, RULE));
        }
        assert_eq!(pace.left(RULE), Duration::from_secs(1));
        assert!(pace.record(Duration::from_secs(1), 0, RULE));
    }

    #[test]
    fn a_period_that_moved_enough_starts_the_next_and_time_not_waiting_never_counts() {
        let mut pace = Pace::default();
        assert!(!pace.record(Duration::from_secs(10), 1000, RULE));
        assert_eq!(pace.left(RULE), RULE.period);
        // However long the app takes between waits, only the waits are measured.
        assert!(!pace.record(Duration::from_secs(5), 0, RULE));
        assert!(pace.record(Duration::from_secs(5), 999, RULE));
    }

    #[test]
    fn what_moved_before_the_first_wait_earns_nothing() {
        let mut pace = Pace::default();
        // A burst into empty socket buffers, then a client that takes nothing for a whole period.
        assert!(!pace.record(Duration::ZERO, 10_000_000, RULE));
        assert!(pace.record(RULE.period, 0, RULE));
    }

    #[test]
    fn no_minimum_still_asks_for_progress() {
        let any = MinRate { bytes: 0, ..RULE };
        assert!(!Pace::default().record(Duration::from_secs(3600), 1, any));
        assert!(Pace::default().record(Duration::from_secs(10), 0, any));
    }
}
