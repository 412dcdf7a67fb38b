//! Which gossiped announcements this node spends an [`AnnouncementCheck`] on (each one
//! may cost chain reads): a token bucket per peer that delivered them, and a cap on the
//! checks running at once. Announcements refused here are ignored (not forwarded, no
//! penalty).
//!
//! The bucket is keyed by the delivering peer, not the announcement's author: an author is
//! a key anyone can mint per message, a connection is not.
//!
//! [`AnnouncementCheck`]: super::AnnouncementCheck

use std::collections::HashMap;
use std::time::Duration;

use libp2p::PeerId;
use tokio::time::Instant;

use super::config::Limits;

/// Peers whose buckets are kept before full ones are forgotten (a full bucket is the same
/// as none).
const MAX_TRACKED_PEERS: usize = 10_000;

/// Why an announcement is not checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The delivering peer has used up its tokens.
    RateLimited,
    /// [`Limits::max_concurrent_checks`] checks are running.
    Busy,
}

/// Per-peer token buckets and the cap on concurrent checks.
#[derive(Debug)]
pub(crate) struct Admission {
    burst: f64,
    per_sec: f64,
    max_concurrent: usize,
    buckets: HashMap<PeerId, Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Admission {
    pub(crate) fn new(limits: &Limits) -> Self {
        let burst = f64::from(limits.announcements_per_window.max(1));
        let window = limits.announce_window.max(Duration::from_millis(1));
        Self {
            burst,
            per_sec: burst / window.as_secs_f64(),
            max_concurrent: limits.max_concurrent_checks.max(1),
            buckets: HashMap::new(),
        }
    }

    /// Whether an announcement `peer` delivered at `now` may be checked while `running`
    /// checks are under way; takes one of `peer`'s tokens if so.
    pub(crate) fn admit(
        &mut self,
        peer: PeerId,
        running: usize,
        now: Instant,
    ) -> Result<(), Refused> {
        if running >= self.max_concurrent {
            return Err(Refused::Busy);
        }
        if self.buckets.len() >= MAX_TRACKED_PEERS {
            let (burst, per_sec) = (self.burst, self.per_sec);
            self.buckets
                .retain(|_, b| b.refilled(burst, per_sec, now) < burst);
        }
        let bucket = self.buckets.entry(peer).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        bucket.tokens = bucket.refilled(self.burst, self.per_sec, now);
        bucket.last = now;
        // A token refilled in several steps may fall short of 1.0 by rounding.
        if bucket.tokens < 1.0 - 1e-9 {
            return Err(Refused::RateLimited);
        }
        bucket.tokens = (bucket.tokens - 1.0).max(0.0);
        Ok(())
    }
}

impl Bucket {
    fn refilled(&self, burst: f64, per_sec: f64, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        (self.tokens + elapsed * per_sec).min(burst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(burst: u32, window: Duration, max_concurrent: usize) -> Admission {
        Admission::new(&Limits {
            announcements_per_window: burst,
            announce_window: window,
            max_concurrent_checks: max_concurrent,
            ..Limits::default()
        })
    }

    #[tokio::test(start_paused = true)]
    async fn each_peer_gets_a_burst_then_tokens_at_the_refill_rate() {
        let mut a = admission(3, Duration::from_secs(3), 100);
        let (flooder, other) = (PeerId::random(), PeerId::random());
        for _ in 0..3 {
            assert_eq!(a.admit(flooder, 0, Instant::now()), Ok(()));
        }
        assert_eq!(
            a.admit(flooder, 0, Instant::now()),
            Err(Refused::RateLimited)
        );
        assert_eq!(
            a.admit(other, 0, Instant::now()),
            Ok(()),
            "buckets are per peer"
        );

        tokio::time::advance(Duration::from_millis(999)).await;
        assert_eq!(
            a.admit(flooder, 0, Instant::now()),
            Err(Refused::RateLimited)
        );
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(
            a.admit(flooder, 0, Instant::now()),
            Ok(()),
            "one token a second"
        );
        assert_eq!(
            a.admit(flooder, 0, Instant::now()),
            Err(Refused::RateLimited)
        );

        // A long silence refills up to the burst, never beyond.
        tokio::time::advance(Duration::from_secs(3600)).await;
        for _ in 0..3 {
            assert_eq!(a.admit(flooder, 0, Instant::now()), Ok(()));
        }
        assert_eq!(
            a.admit(flooder, 0, Instant::now()),
            Err(Refused::RateLimited)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_check_starts_beyond_the_concurrency_cap_and_busy_costs_no_token() {
        let mut a = admission(2, Duration::from_secs(60), 4);
        let peer = PeerId::random();
        assert_eq!(a.admit(peer, 4, Instant::now()), Err(Refused::Busy));
        assert_eq!(a.admit(peer, 5, Instant::now()), Err(Refused::Busy));
        assert_eq!(a.admit(peer, 3, Instant::now()), Ok(()));
        assert_eq!(
            a.admit(peer, 0, Instant::now()),
            Ok(()),
            "the refusals cost nothing"
        );
        assert_eq!(a.admit(peer, 0, Instant::now()), Err(Refused::RateLimited));
    }

    #[tokio::test(start_paused = true)]
    async fn default_limits_are_small() {
        let mut a = Admission::new(&Limits::default());
        let peer = PeerId::random();
        let admitted = (0..100)
            .filter(|_| a.admit(peer, 0, Instant::now()).is_ok())
            .count();
        assert_eq!(
            admitted,
            Limits::default().announcements_per_window as usize
        );
        assert!(admitted <= 8, "{admitted}");
        assert!(Limits::default().max_concurrent_checks <= 16);
    }
}
