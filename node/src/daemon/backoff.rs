//! Exponential backoff of chain polls while the RPC fails.

use std::time::Duration;

/// Longest wait between chain polls while the RPC keeps failing.
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Exponential backoff of chain polls while the RPC fails: doubles from the poll interval
/// up to [`MAX_BACKOFF`], back to every tick after one success.
pub(super) struct Backoff {
    base: Duration,
    wait: Duration,
    next: Option<tokio::time::Instant>,
}

impl Backoff {
    pub(super) fn new(base: Duration) -> Self {
        Self {
            base,
            wait: base,
            next: None,
        }
    }

    /// Whether a poll should be tried now.
    pub(super) fn due(&self) -> bool {
        self.next.is_none_or(|t| tokio::time::Instant::now() >= t)
    }

    /// Records a failure; returns how long until the next try.
    pub(super) fn failed(&mut self) -> Duration {
        let wait = self.wait;
        self.next = Some(tokio::time::Instant::now() + wait);
        self.wait = (self.wait * 2).min(MAX_BACKOFF);
        wait
    }

    /// Records a success; returns whether it ends a run of failures.
    pub(super) fn succeeded(&mut self) -> bool {
        self.wait = self.base;
        self.next.take().is_some()
    }
}
