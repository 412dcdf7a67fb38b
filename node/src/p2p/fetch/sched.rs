//! Which chunk to ask which source for next: the pure scheduling state of one fetch.
//!
//! Every source's have-map is known (refreshed every [`Limits::have_refresh`]), and so is
//! how many sources hold each chunk. A worker of source `S` picks, in this order:
//! 1. chunks only `S` holds that `S` has not uploaded to anyone yet ("fresh"): the origin
//!    of a blob sends each chunk to one fetcher first;
//! 2. chunks others hold too, rarest first, unless a source several times faster than
//!    `S` (or one not measured yet) holds it, or `S` has been seen sending that chunk to
//!    someone else before and another holder has not: a slow origin is not asked for what
//!    the swarm already has;
//! 3. chunks only `S` holds but already uploaded to someone else, only once the fetch has
//!    made no progress for [`STARVE_AFTER`] (that someone should have served them by then).
//!
//! After [`STARVE_AFTER`] without progress the "ask someone else" rules of 2 are waived
//! too, so no combination of marks can leave a held chunk unfetched.
//!
//! Ties go by a per-fetch rotation of the chunk order, so fetchers that start together
//! begin at different places. Ranges are contiguous and sized to about a second of the
//! source's measured rate.
//!
//! [`Limits::have_refresh`]: crate::p2p::Limits::have_refresh

use std::collections::HashMap;
use std::time::Duration;

use libp2p::PeerId;
use tokio::time::Instant;

use crate::p2p::error::Offence;

/// A source at most this many times slower than another holder of a chunk may still be
/// asked for it.
const SLOW_FACTOR: f64 = 4.0;
/// No progress for this long lets workers take chunks their source already sent elsewhere.
pub(super) const STARVE_AFTER: Duration = Duration::from_secs(5);
/// Weight of the newest sample in a source's rate estimate.
const RATE_ALPHA: f64 = 0.3;
/// Chunks asked for from a source whose rate is not measured yet: one, so that fetchers
/// starting together at a slow origin do not all claim many chunks before anyone learns
/// what the others took.
const FIRST_BATCH: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Chunk {
    Missing,
    InFlight,
    Done,
}

/// What the fetch knows about one source.
#[derive(Debug, Default)]
pub(super) struct SourceView {
    /// Its last have-map (`None`: not asked yet).
    pub have: Option<Vec<bool>>,
    /// Chunks it is uploading to someone else now (by its last have-map).
    pub served: Vec<bool>,
    /// Chunks it has been seen uploading to someone else at any refresh: once a slow
    /// source has sent a chunk away, that chunk is fetched from whoever else holds it.
    pub sent_away: Vec<bool>,
    /// When the have-map was last refreshed.
    pub refreshed: Option<Instant>,
    /// A worker is refreshing the have-map now.
    pub refreshing: bool,
    /// Bytes per second per stream (EWMA), once measured.
    pub rate: Option<f64>,
    /// Banned or dropped: its workers stop and its chunks no longer count.
    pub gone: bool,
    /// Have-map answers "not found" in a row (a peer that has not begun its own fetch).
    pub not_found: u32,
}

/// The scheduling state of one fetch.
#[derive(Debug)]
pub(super) struct Sched {
    pub chunks: Vec<Chunk>,
    /// Live sources holding each chunk (by their last have-maps).
    holders: Vec<u16>,
    pub sources: HashMap<PeerId, SourceView>,
    offset: usize,
    pub in_flight: usize,
    pub missing: usize,
    pub last_progress: Instant,
    /// Since when nothing has been in flight (`None` while something is).
    pub idle_since: Option<Instant>,
    pub last_error: String,
    pub banned: Vec<(PeerId, Offence)>,
    pub per_peer: Vec<(PeerId, usize)>,
}

impl Sched {
    /// State for a blob whose chunks `have` are already on disk; `offset` rotates the
    /// tie-breaking order.
    pub(super) fn new(have: &[bool], offset: usize, now: Instant) -> Self {
        let chunks: Vec<Chunk> = have
            .iter()
            .map(|h| if *h { Chunk::Done } else { Chunk::Missing })
            .collect();
        let missing = chunks.iter().filter(|c| **c == Chunk::Missing).count();
        Self {
            holders: vec![0; chunks.len()],
            offset: offset % chunks.len().max(1),
            chunks,
            sources: HashMap::new(),
            in_flight: 0,
            missing,
            last_progress: now,
            idle_since: Some(now),
            last_error: String::new(),
            banned: Vec::new(),
            per_peer: Vec::new(),
        }
    }

    /// Adds a source; false if it is known already or the fetch has `max` sources.
    pub(super) fn add_source(&mut self, peer: PeerId, max: usize) -> bool {
        if self.sources.contains_key(&peer) || self.sources.len() >= max {
            return false;
        }
        self.sources.insert(peer, SourceView::default());
        true
    }

    /// Sources that are still usable.
    pub(super) fn live_sources(&self) -> usize {
        self.sources.values().filter(|s| !s.gone).count()
    }

    /// Records a fresh have-map of `peer`.
    pub(super) fn set_have(
        &mut self,
        peer: PeerId,
        have: Vec<bool>,
        served: Vec<bool>,
        now: Instant,
    ) {
        let Some(s) = self.sources.get_mut(&peer) else {
            return;
        };
        s.refreshing = false;
        s.refreshed = Some(now);
        if s.gone || have.len() != self.chunks.len() {
            return;
        }
        if let Some(old) = s.have.take() {
            for (h, had) in self.holders.iter_mut().zip(old) {
                *h -= u16::from(had);
            }
        }
        for (h, has) in self.holders.iter_mut().zip(&have) {
            *h += u16::from(*has);
        }
        if s.sent_away.len() != served.len() {
            s.sent_away = vec![false; served.len()];
        }
        for (away, now_sending) in s.sent_away.iter_mut().zip(&served) {
            *away |= *now_sending;
        }
        s.have = Some(have);
        s.served = served;
    }

    /// Stops using `peer`.
    pub(super) fn drop_source(&mut self, peer: PeerId) {
        if let Some(s) = self.sources.get_mut(&peer)
            && !s.gone
        {
            s.gone = true;
            if let Some(old) = s.have.take() {
                for (h, had) in self.holders.iter_mut().zip(old) {
                    *h -= u16::from(had);
                }
            }
        }
    }

    /// The next range to ask `peer` for (marked in flight), or `None` for now.
    pub(super) fn pick(
        &mut self,
        peer: PeerId,
        max_count: u32,
        chunk_size: u32,
        now: Instant,
    ) -> Option<(u32, u32)> {
        let s = self.sources.get(&peer)?;
        let have = s.have.as_ref()?;
        if s.gone {
            return None;
        }
        let faster: Vec<&Vec<bool>> = match s.rate {
            None => Vec::new(),
            Some(mine) => self
                .sources
                .iter()
                .filter(|(p, o)| **p != peer && !o.gone)
                .filter(|(_, o)| o.rate.is_none_or(|r| r > SLOW_FACTOR * mine))
                .filter_map(|(_, o)| o.have.as_ref())
                .collect(),
        };
        let starving = now.duration_since(self.last_progress) >= STARVE_AFTER;
        // Other live holders' maps, with what each was seen sending away.
        let others: Vec<(&Vec<bool>, &Vec<bool>)> = self
            .sources
            .iter()
            .filter(|(p, o)| **p != peer && !o.gone)
            .filter_map(|(_, o)| o.have.as_ref().map(|h| (h, &o.sent_away)))
            .collect();
        let tier = |c: usize| -> Option<u8> {
            if self.chunks[c] != Chunk::Missing || !have[c] {
                return None;
            }
            if self.holders[c] > 1 {
                let sent_away = s.sent_away.get(c).copied().unwrap_or(false)
                    && others
                        .iter()
                        .any(|(h, away)| h[c] && !away.get(c).copied().unwrap_or(false));
                let elsewhere = sent_away || faster.iter().any(|f| f[c]);
                (starving || !elsewhere).then_some(1)
            } else if !s.served.get(c).copied().unwrap_or(false) {
                Some(0)
            } else {
                starving.then_some(2)
            }
        };
        let n = self.chunks.len();
        let mut best: Option<((u8, u16, usize), usize)> = None;
        for c in 0..n {
            if let Some(t) = tier(c) {
                let key = (t, self.holders[c], (c + n - self.offset) % n);
                if best.is_none_or(|(b, _)| key < b) {
                    best = Some((key, c));
                }
            }
        }
        let ((t, _, _), first) = best?;
        let count = match s.rate {
            None => FIRST_BATCH,
            Some(r) => (r / f64::from(chunk_size.max(1))) as u32,
        }
        .clamp(1, max_count.max(1));
        let mut end = first + 1;
        while end < n && end - first < count as usize && tier(end) == Some(t) {
            end += 1;
        }
        for c in &mut self.chunks[first..end] {
            *c = Chunk::InFlight;
        }
        self.in_flight += end - first;
        self.idle_since = None;
        Some((first as u32, (end - first) as u32))
    }

    /// Chunk `index` arrived verified from `peer`.
    pub(super) fn chunk_done(&mut self, peer: PeerId, index: usize, now: Instant) {
        if self.chunks[index] == Chunk::InFlight {
            self.chunks[index] = Chunk::Done;
            self.in_flight -= 1;
            self.missing -= 1;
        }
        self.last_progress = now;
        self.note_idle(now);
        match self.per_peer.iter_mut().find(|(p, _)| *p == peer) {
            Some((_, n)) => *n += 1,
            None => self.per_peer.push((peer, 1)),
        }
    }

    /// Chunks `start..end` were not delivered: back to missing.
    pub(super) fn requeue(&mut self, start: usize, end: usize, now: Instant) {
        for c in &mut self.chunks[start..end] {
            if *c == Chunk::InFlight {
                *c = Chunk::Missing;
                self.in_flight -= 1;
            }
        }
        self.note_idle(now);
    }

    fn note_idle(&mut self, now: Instant) {
        if self.in_flight == 0 && self.idle_since.is_none() {
            self.idle_since = Some(now);
        }
    }

    /// Books a delivery-rate sample of `peer`.
    pub(super) fn record_rate(&mut self, peer: PeerId, bytes: usize, took: Duration) {
        let sample = bytes as f64 / took.as_secs_f64().max(1e-6);
        if let Some(s) = self.sources.get_mut(&peer) {
            s.rate = Some(match s.rate {
                None => sample,
                Some(r) => r + RATE_ALPHA * (sample - r),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u32 = 1 << 20;

    fn sched(n: usize) -> (Sched, Instant) {
        let now = Instant::now();
        (Sched::new(&vec![false; n], 0, now), now)
    }

    #[test]
    fn origin_sends_fresh_chunks_first_and_leaves_held_ones_to_faster_peers() {
        let (mut s, now) = sched(8);
        let (origin, peer) = (PeerId::random(), PeerId::random());
        s.add_source(origin, 8);
        s.add_source(peer, 8);
        let mut served = vec![false; 8];
        served[0] = true; // chunk 0 went to someone else already
        s.set_have(origin, vec![true; 8], served, now);
        let mut peer_has = vec![false; 8];
        peer_has[1] = true;
        peer_has[2] = true;
        s.set_have(peer, peer_has, vec![false; 8], now);
        s.record_rate(origin, MIB as usize, Duration::from_secs(1));
        s.record_rate(peer, 100 * MIB as usize, Duration::from_secs(1));
        // The origin is asked for fresh chunk 3 (not 0: sent elsewhere; not 1-2: the
        // much faster peer has them), one chunk at its rate of 1 chunk/s.
        assert_eq!(s.pick(origin, 16, MIB, now), Some((3, 1)));
        // The peer gets what it has.
        assert_eq!(s.pick(peer, 16, MIB, now), Some((1, 2)));
        // Once nothing lands for a while, chunk 0 may come from the origin after all.
        for _ in 4..8 {
            assert!(s.pick(origin, 1, MIB, now).is_some());
        }
        assert_eq!(s.pick(origin, 16, MIB, now), None);
        assert_eq!(s.pick(origin, 16, MIB, now + STARVE_AFTER), Some((0, 1)));
        assert_eq!(s.in_flight, 8);
    }

    #[test]
    fn equal_sources_share_the_work_and_requeued_chunks_come_back() {
        let (mut s, now) = sched(64);
        let (a, b) = (PeerId::random(), PeerId::random());
        for p in [a, b] {
            s.add_source(p, 8);
            s.set_have(p, vec![true; 64], vec![false; 64], now);
            s.record_rate(p, 8 * MIB as usize, Duration::from_secs(1));
        }
        assert_eq!(s.pick(a, 16, MIB, now), Some((0, 8)));
        assert_eq!(s.pick(b, 16, MIB, now), Some((8, 8)));
        s.requeue(4, 8, now);
        assert_eq!(s.in_flight, 12);
        assert_eq!(s.pick(b, 16, MIB, now), Some((4, 4)), "gap refilled first");
        s.chunk_done(a, 0, now);
        assert_eq!((s.missing, s.in_flight), (63, 15));
    }

    #[test]
    fn a_chunk_a_source_sent_away_is_fetched_from_another_holder() {
        let (mut s, now) = sched(2);
        let (origin, peer) = (PeerId::random(), PeerId::random());
        s.add_source(origin, 8);
        s.add_source(peer, 8);
        // Equal rates, so only the "sent away" history steers chunk 0 to the peer.
        s.record_rate(origin, MIB as usize, Duration::from_secs(1));
        s.record_rate(peer, MIB as usize, Duration::from_secs(1));
        s.set_have(origin, vec![true; 2], vec![true, false], now);
        s.set_have(origin, vec![true; 2], vec![false, false], now);
        s.set_have(peer, vec![true, false], vec![false; 2], now);
        assert_eq!(s.pick(origin, 4, MIB, now), Some((1, 1)));
        assert_eq!(s.pick(origin, 4, MIB, now), None);
        assert_eq!(s.pick(peer, 4, MIB, now), Some((0, 1)));
    }

    #[test]
    fn holders_that_all_sent_a_chunk_away_still_serve_it() {
        let (mut s, now) = sched(1);
        let (a, b) = (PeerId::random(), PeerId::random());
        for p in [a, b] {
            s.add_source(p, 8);
            s.record_rate(p, MIB as usize, Duration::from_secs(1));
            s.set_have(p, vec![true], vec![true], now);
        }
        assert_eq!(s.pick(a, 1, MIB, now), Some((0, 1)));
    }

    #[test]
    fn a_dropped_source_no_longer_counts_as_a_holder() {
        let (mut s, now) = sched(4);
        let (slow, fast) = (PeerId::random(), PeerId::random());
        s.add_source(slow, 8);
        s.add_source(fast, 8);
        s.set_have(slow, vec![true; 4], vec![true; 4], now);
        s.set_have(fast, vec![true; 4], vec![false; 4], now);
        s.record_rate(slow, 1, Duration::from_secs(1));
        assert_eq!(
            s.pick(slow, 4, MIB, now),
            None,
            "the fast source has it all"
        );
        s.drop_source(fast);
        assert_eq!(s.live_sources(), 1);
        // Only the slow source holds them now; all were sent elsewhere, so wait first.
        assert_eq!(s.pick(slow, 4, MIB, now), None);
        assert_eq!(s.pick(slow, 4, MIB, now + STARVE_AFTER), Some((0, 1)));
        assert!(!s.add_source(fast, 8), "known already");
    }
}
