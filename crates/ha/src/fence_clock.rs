//! When an agent must have fenced itself: the last moment, by its own
//! clock, at which its lease is certainly still alive at the station.
//!
//! In: the agent's clock at each keep-alive it sends, and which of them the
//! station acknowledged. Out: the fence deadline — after it, the agent's
//! singleton instances must be dead, because the station may expire the
//! lease and start a replacement elsewhere.
//!
//! Why the deadline is safe. Let `g` be the agent's clock when it sent the
//! newest acknowledged keep-alive. The leader renewed the lease after
//! receiving it, so after `g` in real time, for the full TTL by the
//! leader's clock; a new leader restarts every lease's clock (TTL plus an
//! election timeout) when it takes office, which is also after `g`. So the
//! station expires the lease no earlier than `TTL / (1 + ρ)` of real time
//! after `g`, its clock running at most ρ fast. The agent's clock runs at
//! least `1 - ρ` as fast as real time, so `D` of its own time is at most
//! `D / (1 - ρ)` of real time; it may therefore wait `D = TTL (1 - ρ) /
//! (1 + ρ)` after `g`, less the `margin` its kill needs (SIGKILL and the
//! kernel reaping the processes), and fences then. With ρ = 200 ppm and
//! TTL = 1 s, that is 999.6 ms minus the margin after `g`.

use serde::{Deserialize, Serialize};

/// Keep-alives sent and not yet acknowledged that the clock remembers;
/// older ones are forgotten (their acknowledgement would be superseded by
/// a newer one's anyway).
pub const IN_FLIGHT_LEN_MAX: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceClock {
    ttl_ms: u64,
    drift_ppm_max: u64,
    margin_ms: u64,
    /// Send times of keep-alives in flight, by sequence number.
    in_flight: Vec<(u64, u64)>,
    /// The send time of the newest acknowledged keep-alive (`g`).
    acked_sent_ms: Option<u64>,
}

impl FenceClock {
    /// A clock for a lease of `ttl_ms`, under the drift bound, fencing
    /// `margin_ms` early.
    pub fn new(ttl_ms: u64, drift_ppm_max: u64, margin_ms: u64) -> FenceClock {
        assert!(margin_ms < ttl_ms, "a margin of the whole TTL fences at once, always");
        assert!(drift_ppm_max < 1_000_000, "a clock may not stop");
        FenceClock { ttl_ms, drift_ppm_max, margin_ms, in_flight: Vec::new(), acked_sent_ms: None }
    }

    /// The grant itself counts as a keep-alive sent at `sent_ms`.
    pub fn sent(&mut self, seq: u64, sent_ms: u64) {
        if self.in_flight.len() >= IN_FLIGHT_LEN_MAX {
            self.in_flight.remove(0);
        }
        self.in_flight.push((seq, sent_ms));
    }

    /// The station renewed the lease for keep-alive `seq`.
    pub fn acknowledged(&mut self, seq: u64) {
        let Some(at) = self.in_flight.iter().position(|(s, _)| *s == seq) else { return };
        let (_, sent_ms) = self.in_flight[at];
        // Older keep-alives can only prove less: drop them with this one.
        self.in_flight.drain(..=at);
        self.acked_sent_ms = Some(self.acked_sent_ms.map_or(sent_ms, |g| g.max(sent_ms)));
    }

    /// The last moment (agent clock) the lease is certainly alive; `None`
    /// before the first acknowledgement (nothing may run yet).
    pub fn deadline_ms(&self) -> Option<u64> {
        let g = self.acked_sent_ms?;
        let rho = u128::from(self.drift_ppm_max);
        let safe = u128::from(self.ttl_ms) * (1_000_000 - rho) / (1_000_000 + rho);
        let safe = u64::try_from(safe).expect("below the TTL");
        Some(g + safe.saturating_sub(self.margin_ms))
    }

    /// Whether the agent must be fenced at `now_ms`.
    pub fn expired(&self, now_ms: u64) -> bool {
        self.deadline_ms().is_none_or(|deadline| now_ms >= deadline)
    }

    /// Forgets the lease (a new one is granted after fencing).
    pub fn reset(&mut self) {
        self.in_flight.clear();
        self.acked_sent_ms = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_counts_from_the_send_time_of_the_newest_acknowledged_keep_alive() {
        let mut clock = FenceClock::new(1_000, 200, 50);
        assert!(clock.expired(0), "nothing acknowledged yet: nothing may run");
        clock.sent(1, 100);
        clock.sent(2, 400);
        clock.acknowledged(1);
        // 1000 ms × (1 - 200 ppm) / (1 + 200 ppm) = 999.6 → 999, less the 50 ms margin.
        assert_eq!(clock.deadline_ms(), Some(100 + 949));
        clock.acknowledged(2);
        assert_eq!(clock.deadline_ms(), Some(400 + 949));
        assert!(!clock.expired(1_348) && clock.expired(1_349));
    }

    #[test]
    fn a_late_acknowledgement_of_an_older_keep_alive_moves_nothing_back() {
        let mut clock = FenceClock::new(1_000, 200, 50);
        clock.sent(1, 100);
        clock.sent(2, 400);
        clock.acknowledged(2);
        clock.acknowledged(1);
        assert_eq!(clock.deadline_ms(), Some(400 + 949), "1 was dropped with 2");
    }

    #[test]
    fn an_unknown_acknowledgement_proves_nothing() {
        let mut clock = FenceClock::new(1_000, 200, 50);
        clock.sent(1, 100);
        clock.acknowledged(7);
        assert_eq!(clock.deadline_ms(), None);
        clock.reset();
        clock.acknowledged(1);
        assert_eq!(clock.deadline_ms(), None, "forgotten by the reset");
    }

    #[test]
    fn in_flight_keep_alives_are_bounded() {
        let mut clock = FenceClock::new(1_000, 200, 50);
        for seq in 0..(IN_FLIGHT_LEN_MAX as u64 + 10) {
            clock.sent(seq, seq);
        }
        clock.acknowledged(0);
        assert_eq!(clock.deadline_ms(), None, "the oldest were forgotten");
        clock.acknowledged(IN_FLIGHT_LEN_MAX as u64 + 9);
        assert!(clock.deadline_ms().is_some());
    }
}
