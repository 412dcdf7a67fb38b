//! Job announcements from gossipsub, trusted only as far as the chain confirms them.
//!
//! [`ChainCheck`] is the p2p layer's validation hook: an announcement for this market
//! whose fields disagree with the job's `JobPosted` spec on-chain is rejected (the
//! publisher loses gossip score); one for a job the chain does not show (yet), or for
//! another market, is ignored without forwarding. Only accepted announcements reach the
//! daemon, which takes the spec the check read from the chain (never the announcement's
//! fields) and considers the job.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use stp_sdk::market::{JobSpec, Market, announced_job_id, is_for, matches_chain};
use stp_sdk::p2p::JobAnnouncement;

use crate::p2p::{AnnouncementCheck, Verdict};

/// Specs of accepted announcements kept for the daemon to pick up.
const VERIFIED_CAP: usize = 256;

/// Checks announcements against the market's on-chain job history; clones share the specs
/// of the jobs they accepted, so the daemon does not read them from the chain again.
#[derive(Debug, Clone)]
pub struct ChainCheck {
    market: Market,
    verified: Arc<Mutex<Verified>>,
}

/// A job as the chain posted it: its spec and the post's block timestamp and number.
pub type PostedSpec = (JobSpec, (u64, u64));

/// Recently accepted jobs' specs (generic only so it can be tested on plain values).
#[derive(Debug)]
struct Verified<T = PostedSpec> {
    specs: HashMap<u64, T>,
    order: VecDeque<u64>,
}

impl<T> Default for Verified<T> {
    fn default() -> Self {
        Self {
            specs: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl ChainCheck {
    /// A check against `market`'s deployment.
    pub fn new(market: Market) -> Self {
        Self {
            market,
            verified: Arc::default(),
        }
    }

    /// The on-chain spec (and post time) of an announced job this check accepted, if it
    /// still holds it.
    pub fn take_verified(&self, job_id: u64) -> Option<PostedSpec> {
        self.verified().take(job_id)
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, Verified> {
        self.verified.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<T> Verified<T> {
    /// Holds `spec`, dropping the oldest beyond [`VERIFIED_CAP`].
    fn insert(&mut self, job_id: u64, spec: T) {
        if self.specs.insert(job_id, spec).is_none() {
            self.order.push_back(job_id);
        }
        while self.order.len() > VERIFIED_CAP {
            if let Some(old) = self.order.pop_front() {
                self.specs.remove(&old);
            }
        }
    }

    fn take(&mut self, job_id: u64) -> Option<T> {
        self.order.retain(|id| *id != job_id);
        self.specs.remove(&job_id)
    }
}

impl AnnouncementCheck for ChainCheck {
    fn check(&self, ann: JobAnnouncement) -> BoxFuture<'static, Verdict> {
        let this = self.clone();
        Box::pin(async move {
            let (verdict, found) = verify(&this.market, &ann).await;
            if let Some((job_id, spec)) = found {
                this.verified().insert(job_id, spec);
            }
            verdict
        })
    }
}

/// The verdict on `ann` against `market`'s chain state.
pub async fn verdict(market: &Market, ann: &JobAnnouncement) -> Verdict {
    verify(market, ann).await.0
}

/// The verdict on `ann`, with the job's on-chain spec and post time when it is accepted and
/// still open.
pub async fn verify(
    market: &Market,
    ann: &JobAnnouncement,
) -> (Verdict, Option<(u64, PostedSpec)>) {
    if !is_for(ann, market.deployment()) {
        return (Verdict::Ignore, None);
    }
    let Some(job_id) = announced_job_id(ann) else {
        return (Verdict::Reject, None);
    };
    let history = match market.job_history(job_id).await {
        Ok(h) => h,
        // Our RPC failing is not the publisher's fault.
        Err(_) => return (Verdict::Ignore, None),
    };
    let Some(spec) = history.spec else {
        // Not on-chain (yet, from where we stand): don't pass it on, don't punish.
        return (Verdict::Ignore, None);
    };
    if !matches_chain(ann, market.deployment(), job_id, &spec, history.posted_at) {
        return (Verdict::Reject, None);
    }
    if history.outcome.is_some() {
        return (Verdict::Ignore, None);
    }
    let posted = (history.posted_at, history.post_block);
    (Verdict::Accept, Some((job_id, (spec, posted))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verified_specs_are_taken_once_and_bounded() {
        let mut v = Verified::<u64>::default();
        for id in 0..(VERIFIED_CAP as u64 + 10) {
            v.insert(id, id * 2);
        }
        assert!(v.take(0).is_none(), "the oldest were dropped");
        assert!(v.take(9).is_none());
        assert_eq!(v.take(10), Some(20));
        assert!(v.take(10).is_none(), "taken once");
        assert_eq!(v.specs.len(), VERIFIED_CAP - 1);
        assert_eq!(v.order.len(), VERIFIED_CAP - 1);
    }
}
