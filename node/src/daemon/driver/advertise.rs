//! What the node tells others about the shared input parts it holds, and what it knows of
//! the parts of jobs waiting for it: the provider record lists the parts the part cache
//! holds (re-published when that set changes, at most every [`ADVERTISE_EVERY`]), and the
//! part hints of announced jobs rank the jobs that compete for a free slot
//! ([`crate::daemon::prefer`]).

use std::time::Duration;

use stp_sdk::p2p::{ContentHash, MAX_ADVERTISED_PARTS, ProviderRecord};

use super::Driver;
use crate::daemon::prefer::PartsHeld;
use crate::store::now_secs;

/// Shortest time between two publications of the provider record for a change of the
/// parts held (a batch's chunks reuse the same parts: one publication, not one per chunk).
const ADVERTISE_EVERY: Duration = Duration::from_secs(5);

/// The provider record as last published, and when.
#[derive(Debug)]
pub(super) struct Advertised {
    record: ProviderRecord,
    at: tokio::time::Instant,
}

impl Driver {
    /// Takes `record`, just published, as the base of the records published when the
    /// parts held change.
    pub(in crate::daemon) fn advertise_from(&mut self, record: ProviderRecord) {
        self.advertised = Some(Advertised {
            record,
            at: tokio::time::Instant::now(),
        });
    }

    /// Publishes the provider record again if the set of parts the cache holds changed
    /// since the last publication and [`ADVERTISE_EVERY`] has passed; the publication runs
    /// in a task of its own (a DHT put can take seconds).
    pub(super) async fn advertise_parts(&mut self) {
        let Some(last) = &self.advertised else {
            return;
        };
        if last.at.elapsed() < ADVERTISE_EVERY {
            return;
        }
        let parts = self.parts.recent(MAX_ADVERTISED_PARTS).await;
        if same_set(&parts, &last.record.parts) {
            return;
        }
        let mut record = last.record.clone();
        record.parts = parts;
        record.published_at = now_secs().max(record.published_at);
        tracing::info!(
            parts = record.parts.len(),
            "parts held changed; publishing the provider record"
        );
        let p2p = self.p2p.clone();
        let published = record.clone();
        tokio::spawn(async move {
            match p2p.put_provider_record(&published).await {
                Ok(()) => tracing::debug!("provider record re-published"),
                Err(e) => {
                    tracing::debug!(error = %e, "provider record held locally, not replicated yet")
                }
            }
        });
        self.advertised = Some(Advertised {
            record,
            at: tokio::time::Instant::now(),
        });
    }

    /// Records the part hints of an accepted announcement of `job_id`.
    pub(super) fn record_hints(&mut self, job_id: u64, hints: Vec<ContentHash>) {
        if !hints.is_empty() {
            tracing::info!(
                job = job_id,
                parts = hints.len(),
                "part hints of an announced job"
            );
        }
        self.hints.record(job_id, hints);
    }

    /// How many of `job_id`'s hinted parts this node's blob store holds.
    pub(super) fn parts_held(&self, job_id: u64) -> PartsHeld {
        self.hints.held(job_id, |h| self.p2p.has_blob(h))
    }
}

/// Whether `a` and `b` hold the same hashes (in any order).
fn same_set(a: &[ContentHash], b: &[ContentHash]) -> bool {
    a.len() == b.len() && a.iter().all(|h| b.contains(h))
}

#[cfg(test)]
mod tests {
    use super::same_set;

    #[test]
    fn a_new_order_of_the_same_parts_is_no_change() {
        let (a, b, c) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        assert!(same_set(&[a, b], &[b, a]));
        assert!(!same_set(&[a, b], &[a, c]));
        assert!(!same_set(&[a], &[a, b]));
        assert!(same_set(&[], &[]));
    }
}
