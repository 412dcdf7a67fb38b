//! Job announcements from gossipsub, trusted only as far as the chain confirms them.
//!
//! [`ChainCheck`] is the p2p layer's validation hook: an announcement for this market
//! whose fields disagree with the job's `JobPosted` spec on-chain is rejected (the
//! publisher loses gossip score); one for a job the chain does not show (yet), or for
//! another market, is ignored without forwarding. Only accepted announcements reach the
//! daemon, which takes the spec the check read from the chain (never the announcement's
//! fields) and considers the job.
//!
//! Each check reads the job's history from the RPC endpoint, so checks are deduplicated
//! by job id: while one announcement of a job is being checked, others of the same job
//! are ignored, and for a while after, they are judged from what that read found without
//! reading again. (How many checks a peer can cause, and how many run at once, the p2p
//! layer bounds before asking.)

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use stp_sdk::market::{
    Deployment, JobKind, JobSpec, Market, announced_job_id, is_for, matches_chain,
};
use stp_sdk::p2p::JobAnnouncement;
use tokio::time::Instant;

use crate::p2p::{AnnouncementCheck, Verdict};

/// Specs of accepted announcements kept for the daemon to pick up.
const VERIFIED_CAP: usize = 256;
/// Jobs whose last read [`Checked`] keeps at most.
const CHECKED_CAP: usize = 1024;
/// How long a read that found the job posted answers later announcements of it.
const POSTED_TTL: Duration = Duration::from_secs(60);
/// How long a read that did not find the job (or failed) does: only long enough to
/// collapse a burst of copies. Job ids are sequential, so anyone can announce the next one
/// before it is posted; a long hold would let them mute its honest announcement (the
/// chain watcher still finds the job, later).
const UNKNOWN_TTL: Duration = Duration::from_secs(2);

/// Checks announcements against the market's on-chain job history; clones share the specs
/// of the jobs they accepted, so the daemon does not read them from the chain again.
#[derive(Debug, Clone)]
pub struct ChainCheck {
    market: Market,
    verified: Arc<Mutex<Verified>>,
    checked: Arc<Mutex<Checked<Facts>>>,
}

/// What one read of the chain found about an announced job.
#[derive(Debug, Clone)]
enum Facts {
    /// Not on-chain (yet, from where we stand), or our RPC failed.
    Unknown,
    /// Posted with this spec, at this block timestamp and number; `settled` once it has an
    /// outcome.
    Posted {
        spec: Box<JobSpec>,
        posted_at: u64,
        post_block: u64,
        kind: JobKind,
        settled: bool,
    },
}

impl Facts {
    fn ttl(&self) -> Duration {
        match self {
            Self::Unknown => UNKNOWN_TTL,
            Self::Posted { .. } => POSTED_TTL,
        }
    }
}

/// Per announced job id: a read under way, or what the last read found until it expires
/// (generic only so it can be tested on plain values).
#[derive(Debug)]
struct Checked<T> {
    entries: HashMap<u64, Entry<T>>,
}

#[derive(Debug)]
enum Entry<T> {
    Reading,
    Read { facts: T, until: Instant },
}

/// What [`Checked::lookup`] says to do about an announcement of a job.
#[derive(Debug, PartialEq, Eq)]
enum Lookup<T> {
    /// Read the chain (the job is now marked as being read).
    Read,
    /// Another read of the job is under way.
    Reading,
    /// A fresh read found this.
    Known(T),
}

impl<T> Default for Checked<T> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
        }
    }
}

impl<T: Clone> Checked<T> {
    fn lookup(&mut self, job_id: u64, now: Instant) -> Lookup<T> {
        match self.entries.get(&job_id) {
            Some(Entry::Reading) => return Lookup::Reading,
            Some(Entry::Read { facts, until }) if now < *until => {
                return Lookup::Known(facts.clone());
            }
            Some(Entry::Read { .. }) | None => {}
        }
        if !self.entries.contains_key(&job_id) && self.entries.len() >= CHECKED_CAP {
            self.evict(now);
        }
        self.entries.insert(job_id, Entry::Reading);
        Lookup::Read
    }

    /// Drops expired reads, then, if still full, the one closest to expiry. Reads under way
    /// stay (the p2p layer caps how many run).
    fn evict(&mut self, now: Instant) {
        self.entries.retain(|_, e| {
            matches!(e, Entry::Reading) || matches!(e, Entry::Read { until, .. } if now < *until)
        });
        if self.entries.len() >= CHECKED_CAP {
            let soonest = self
                .entries
                .iter()
                .filter_map(|(id, e)| match e {
                    Entry::Read { until, .. } => Some((*until, *id)),
                    Entry::Reading => None,
                })
                .min();
            if let Some((_, id)) = soonest {
                self.entries.remove(&id);
            }
        }
    }

    fn finish(&mut self, job_id: u64, facts: T, until: Instant) {
        self.entries.insert(job_id, Entry::Read { facts, until });
    }

    /// A read ended without a result (its check was dropped): the next announcement reads.
    fn abandon(&mut self, job_id: u64) {
        if matches!(self.entries.get(&job_id), Some(Entry::Reading)) {
            self.entries.remove(&job_id);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the chain holds about `job_id`, read with `read` unless a read of it is under way
/// (then `None`) or a fresh one is held in `checked` (then that, without reading).
async fn facts_once<T, Fut>(
    checked: Arc<Mutex<Checked<T>>>,
    job_id: u64,
    ttl: impl Fn(&T) -> Duration,
    read: impl FnOnce() -> Fut,
) -> Option<T>
where
    T: Clone,
    Fut: Future<Output = T>,
{
    match lock(&checked).lookup(job_id, Instant::now()) {
        Lookup::Known(facts) => return Some(facts),
        Lookup::Reading => return None,
        Lookup::Read => {}
    }
    struct Abandon<T: Clone>(Option<(Arc<Mutex<Checked<T>>>, u64)>);
    impl<T: Clone> Drop for Abandon<T> {
        fn drop(&mut self) {
            if let Some((checked, job_id)) = self.0.take() {
                lock(&checked).abandon(job_id);
            }
        }
    }
    let mut abandon = Abandon(Some((checked.clone(), job_id)));
    let facts = read().await;
    abandon.0 = None;
    let until = Instant::now() + ttl(&facts);
    lock(&checked).finish(job_id, facts.clone(), until);
    Some(facts)
}

/// A job as the chain posted it: its spec and the post's block timestamp, number and kind.
pub(super) type PostedSpec = (JobSpec, (u64, u64, JobKind));

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
            checked: Arc::default(),
        }
    }

    /// The on-chain spec (and post time) of an announced job this check accepted, if it
    /// still holds it.
    pub fn take_verified(&self, job_id: u64) -> Option<PostedSpec> {
        self.verified().take(job_id)
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, Verified> {
        lock(&self.verified)
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
            if !is_for(&ann, this.market.deployment()) {
                return Verdict::Ignore;
            }
            let Some(job_id) = announced_job_id(&ann) else {
                return Verdict::Reject;
            };
            let read = || read_facts(&this.market, job_id);
            let Some(facts) = facts_once(this.checked.clone(), job_id, Facts::ttl, read).await
            else {
                // Another announcement of this job is being checked; that one decides.
                return Verdict::Ignore;
            };
            let (verdict, spec) = judge(this.market.deployment(), &ann, job_id, &facts);
            if let Some(spec) = spec {
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
pub(super) async fn verify(
    market: &Market,
    ann: &JobAnnouncement,
) -> (Verdict, Option<(u64, PostedSpec)>) {
    if !is_for(ann, market.deployment()) {
        return (Verdict::Ignore, None);
    }
    let Some(job_id) = announced_job_id(ann) else {
        return (Verdict::Reject, None);
    };
    let facts = read_facts(market, job_id).await;
    let (verdict, spec) = judge(market.deployment(), ann, job_id, &facts);
    (verdict, spec.map(|s| (job_id, s)))
}

/// How far back a check looks for an announced job's post: announcements are for live
/// jobs, and a job posted earlier than this was found by the chain watcher long ago (it is
/// ignored here, not punished).
const ANNOUNCED_WITHIN_BLOCKS: u64 = 4096;

/// One read of the job's history: two bounded requests, however long the chain's history.
async fn read_facts(market: &Market, job_id: u64) -> Facts {
    let Ok(head) = market.block_number().await else {
        return Facts::Unknown;
    };
    let from = head.saturating_sub(ANNOUNCED_WITHIN_BLOCKS);
    match market.job_history_since(job_id, from).await {
        Ok(history) => match history.spec {
            Some(spec) => Facts::Posted {
                spec: Box::new(spec),
                posted_at: history.posted_at,
                post_block: history.post_block,
                kind: history.kind,
                settled: history.outcome.is_some(),
            },
            None => Facts::Unknown,
        },
        // Our RPC failing is not the publisher's fault.
        Err(_) => Facts::Unknown,
    }
}

/// The verdict on `ann` (for job `job_id` of `deployment`) from what the chain holds, with
/// the on-chain spec and post time when it is accepted.
fn judge(
    deployment: &Deployment,
    ann: &JobAnnouncement,
    job_id: u64,
    facts: &Facts,
) -> (Verdict, Option<PostedSpec>) {
    let Facts::Posted {
        spec,
        posted_at,
        post_block,
        kind,
        settled,
    } = facts
    else {
        // Not on-chain (yet, from where we stand): don't pass it on, don't punish.
        return (Verdict::Ignore, None);
    };
    if !matches_chain(ann, deployment, job_id, spec, *posted_at) {
        return (Verdict::Reject, None);
    }
    if *settled {
        return (Verdict::Ignore, None);
    }
    let spec = JobSpec::clone(spec);
    (
        Verdict::Accept,
        Some((spec, (*posted_at, *post_block, *kind))),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use tokio::sync::oneshot;

    use super::*;

    /// `facts_once` for `job_id` with a read that counts itself and answers `job_id * 10`
    /// once `release` fires (at once without one).
    async fn read_counted(
        checked: &Arc<Mutex<Checked<u64>>>,
        reads: &Arc<AtomicU32>,
        job_id: u64,
        release: Option<oneshot::Receiver<()>>,
    ) -> Option<u64> {
        let reads = reads.clone();
        let read = move || async move {
            reads.fetch_add(1, Ordering::SeqCst);
            if let Some(release) = release {
                let _ = release.await;
            }
            job_id * 10
        };
        facts_once(checked.clone(), job_id, |_| Duration::from_secs(60), read).await
    }

    #[tokio::test(start_paused = true)]
    async fn a_job_is_read_once_while_being_read_or_fresh_and_again_once_stale() {
        let checked = Arc::new(Mutex::new(Checked::<u64>::default()));
        let reads = Arc::new(AtomicU32::new(0));
        let (release, released) = oneshot::channel();
        let first = tokio::spawn({
            let (checked, reads) = (checked.clone(), reads.clone());
            async move { read_counted(&checked, &reads, 7, Some(released)).await }
        });
        while reads.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            read_counted(&checked, &reads, 7, None).await,
            None,
            "being checked: not checked again"
        );
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        assert_eq!(
            read_counted(&checked, &reads, 8, None).await,
            Some(80),
            "another job is read"
        );
        assert_eq!(reads.load(Ordering::SeqCst), 2);

        release.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Some(70));
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(read_counted(&checked, &reads, 7, None).await, Some(70));
        assert_eq!(
            reads.load(Ordering::SeqCst),
            2,
            "checked: answered without a read"
        );

        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(read_counted(&checked, &reads, 7, None).await, Some(70));
        assert_eq!(reads.load(Ordering::SeqCst), 3, "stale: read again");
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_check_lets_the_next_announcement_read() {
        let checked = Arc::new(Mutex::new(Checked::<u64>::default()));
        let reads = Arc::new(AtomicU32::new(0));
        let (_never, pending) = oneshot::channel();
        let stuck = tokio::spawn({
            let (checked, reads) = (checked.clone(), reads.clone());
            async move { read_counted(&checked, &reads, 7, Some(pending)).await }
        });
        while reads.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        stuck.abort();
        let _ = stuck.await;
        assert_eq!(read_counted(&checked, &reads, 7, None).await, Some(70));
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn checked_jobs_are_bounded_and_reads_under_way_are_kept() {
        let mut c = Checked::<u64>::default();
        let now = Instant::now();
        assert_eq!(
            c.lookup(0, now),
            Lookup::Read,
            "still being read at the end"
        );
        for id in 1..(CHECKED_CAP as u64 + 10) {
            assert_eq!(c.lookup(id, now), Lookup::Read);
            c.finish(id, id, now + Duration::from_secs(id));
        }
        assert_eq!(c.entries.len(), CHECKED_CAP);
        assert_eq!(c.lookup(0, now), Lookup::Reading);
        assert_eq!(
            c.lookup(1, now),
            Lookup::Read,
            "the soonest to expire went first"
        );
        let last = CHECKED_CAP as u64 + 9;
        assert_eq!(c.lookup(last, now), Lookup::Known(last));
    }

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
