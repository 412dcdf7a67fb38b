//! The hook through which the node decides whether a well-formed job announcement is
//! valid (e.g. the job exists on-chain with these parameters) before it is forwarded.

use futures::future::BoxFuture;
use stp_sdk::p2p::JobAnnouncement;

/// Outcome of checking an announcement; maps onto gossipsub's validation results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: deliver to the node and forward to other peers.
    Accept,
    /// Invalid: drop, and lower the sender's gossipsub score.
    Reject,
    /// Not useful (e.g. stale) but not malicious: drop without penalty.
    Ignore,
}

/// Checks announcements that decoded correctly. Implemented by the daemon against chain
/// state; runs off the event loop, so it may await RPC calls.
pub trait AnnouncementCheck: Send + Sync + 'static {
    /// Returns the verdict for `ann`.
    fn check(&self, ann: JobAnnouncement) -> BoxFuture<'static, Verdict>;
}

/// Accepts every announcement that passes format and size validation.
#[derive(Debug, Clone, Copy, Default)]
pub struct AcceptWellFormed;

impl AnnouncementCheck for AcceptWellFormed {
    fn check(&self, _ann: JobAnnouncement) -> BoxFuture<'static, Verdict> {
        Box::pin(futures::future::ready(Verdict::Accept))
    }
}
