//! Job announcements from gossipsub, trusted only as far as the chain confirms them.
//!
//! [`ChainCheck`] is the p2p layer's validation hook: an announcement for this market
//! whose fields disagree with the job's `JobPosted` spec on-chain is rejected (the
//! publisher loses gossip score); one for a job the chain does not show (yet), or for
//! another market, is ignored without forwarding. Only accepted announcements reach the
//! daemon, which reads the spec from the chain again before it considers the job.

use futures::future::BoxFuture;
use stp_sdk::market::{JobSpec, Market, announced_job_id, is_for, matches_chain};
use stp_sdk::p2p::JobAnnouncement;

use crate::p2p::{AnnouncementCheck, Verdict};

/// Checks announcements against the market's on-chain job history.
#[derive(Debug, Clone)]
pub struct ChainCheck {
    market: Market,
}

impl ChainCheck {
    /// A check against `market`'s deployment.
    pub fn new(market: Market) -> Self {
        Self { market }
    }
}

impl AnnouncementCheck for ChainCheck {
    fn check(&self, ann: JobAnnouncement) -> BoxFuture<'static, Verdict> {
        let market = self.market.clone();
        Box::pin(async move { verdict(&market, &ann).await })
    }
}

/// The verdict on `ann` against `market`'s chain state.
pub async fn verdict(market: &Market, ann: &JobAnnouncement) -> Verdict {
    verify(market, ann).await.0
}

/// The verdict on `ann`, with the job's on-chain spec when it is accepted and still open.
pub async fn verify(market: &Market, ann: &JobAnnouncement) -> (Verdict, Option<(u64, JobSpec)>) {
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
    if !matches_chain(ann, market.deployment(), job_id, &spec) {
        return (Verdict::Reject, None);
    }
    if history.outcome.is_some() {
        return (Verdict::Ignore, None);
    }
    (Verdict::Accept, Some((job_id, spec)))
}
