//! Batches: a workload split into chunks (`stp_sdk::batch`), each posted as its own job,
//! followed together, re-posted when it ends without an output, and aggregated once every
//! chunk's agreed output is fetched and checked.
//!
//! A chunk attempt that ends unfilled (nobody took every slot), without a quorum (the
//! replicas disagreed, or too few revealed), or whose agreed output fails the consumer's
//! check is re-posted, up to the batch's attempt limit; the refunded bounty of the failed
//! attempt is withdrawn to the wallet before the new one is paid. Every change is written
//! to the batch's [`Manifest`] on disk first.

mod manifest;
mod round;

use std::path::Path;
use std::time::Duration;

use alloy::primitives::{B256, U256};
use eyre::bail;
use stp_sdk::batch::parts::{self, Shared};
use stp_sdk::batch::{Batch, Chunk, merkle};
use stp_sdk::kernels::job_name;
use stp_sdk::market::{EventKind, JobSpec, MAX_POST_BATCH, Market};

pub use manifest::{Attempt, ChunkPhase, ChunkState, Manifest, PendingPost, Posting};

use super::post::{Order, Posted, announce_posted, prepare_many};
use crate::cli::common::{paying, shortfall};

use crate::p2p::P2pClient;
use stp_sdk::p2p::Naming;

/// What a consumer asks for: a split workload and the terms of each chunk's job.
#[derive(Debug, Clone)]
pub struct BatchOrder {
    /// The terms every chunk is posted with (its `input` is ignored: each chunk has its own).
    pub terms: Order,
    /// The chunks and how their outputs aggregate.
    pub batch: Batch,
    /// The chunks' parts inputs and the blobs they share (`stp_sdk::batch::parts`), when
    /// shared data travels by hash: each provider fetches a shared blob once.
    pub shared: Option<Shared>,
    /// Postings a chunk may use in all (at least 1).
    pub max_attempts: u32,
    /// Check each chunk's agreed output against its input (`stp_sdk::verify`).
    pub verify: bool,
    /// Follow until every chunk is verified; without it, return once every chunk's input
    /// is taken (no re-posting then).
    pub wait: bool,
    /// Time between chain polls.
    pub poll: Duration,
}

impl BatchOrder {
    /// Chunk `i`'s job order.
    fn order(&self, i: usize) -> Order {
        Order {
            input: self.batch.chunks[i].input.clone(),
            served: self.shared.as_ref().map(|s| s.inputs[i].clone()),
            ..self.terms.clone()
        }
    }
}

/// A change to one chunk, passed to the progress callback of [`run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// An attempt was posted as this job.
    Posted(u64),
    /// Every slot of the current attempt is taken.
    Running,
    /// Its output is fetched and checked.
    Verified,
    /// The current attempt failed for this reason and the chunk was posted again.
    Retried(String),
    /// The last attempt failed for this reason; the chunk is given up.
    Failed(String),
}

/// A batch that ran: its record and, once every chunk is verified, the aggregate output.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The batch's record (also on disk).
    pub manifest: Manifest,
    /// The aggregate output (`None` when not waited for).
    pub output: Option<Vec<u8>>,
}

/// Checks the order, posts every chunk, follows them (re-posting failed ones) and returns
/// the verified aggregate; `on(manifest, chunk index, change)` is called for every change
/// once it is on disk under `dir`.
pub async fn run(
    m: &Market,
    p2p: &P2pClient,
    order: &BatchOrder,
    dir: &Path,
    mut on: impl FnMut(&Manifest, usize, &Change),
) -> eyre::Result<Finished> {
    check(m, order).await?;
    recover_posting(m, dir).await?;
    for blob in order.shared.iter().flat_map(|s| &s.blobs) {
        p2p.add_blob(blob.clone(), Naming::Blake3).await?;
    }
    let from_block = m.block_number().await?;
    let posted = post_chunks(m, p2p, order, &all(order), |specs| {
        Posting {
            from_block,
            manifest: template(order, specs),
        }
        .save(dir)
    })
    .await?;
    let man = manifest(order, &posted);
    // Tests crash here, paid for and not recorded: `STP_CONSUMER_FAULT=crash-after-paying`.
    #[cfg(feature = "fault-injection")]
    if std::env::var("STP_CONSUMER_FAULT").is_ok_and(|f| f == "crash-after-paying") {
        tracing::warn!("fault injection: exiting now");
        std::process::exit(137);
    }
    man.save(dir)?;
    Posting::remove(dir)?;
    announce(m, p2p, order, &posted).await;
    for (i, p) in posted.iter().enumerate() {
        on(&man, i, &Change::Posted(p.job_id));
    }
    follow(m, p2p, order, man, dir, on).await
}

/// How [`resume`] follows a batch.
#[derive(Debug, Clone, Copy)]
pub struct Resume {
    /// Time between chain polls.
    pub poll: Duration,
    /// Gossip re-posted chunks to connected providers (useful once bootstrapped).
    pub announce: bool,
}

/// Takes up batch `man` where its record left off (after the consumer stopped or
/// crashed): its chunks' inputs and verified outputs come from `p2p`'s blob store, where
/// [`run`] kept them. Follows it as [`run`] does, until every chunk is verified.
pub async fn resume(
    m: &Market,
    p2p: &P2pClient,
    man: Manifest,
    how: Resume,
    dir: &Path,
    on: impl FnMut(&Manifest, usize, &Change),
) -> eyre::Result<Finished> {
    let order = order_of(p2p, &man, how)?;
    follow(m, p2p, &order, man, dir, on).await
}

/// The order batch `man` was posted with, its chunk inputs read from `p2p`'s blob store.
fn order_of(p2p: &P2pClient, man: &Manifest, how: Resume) -> eyre::Result<BatchOrder> {
    let kernel = stp_sdk::kernels::KernelId(man.kernel_id.0);
    let store = p2p.store();
    let missing = |c: &ChunkState, e: String| {
        eyre::eyre!(
            "the input of chunk {} ({}) is not in this consumer's blob store ({e}); resume with the --data-dir that posted the batch",
            c.index,
            c.label
        )
    };
    let mut chunks = Vec::with_capacity(man.chunks.len());
    let mut served = Vec::with_capacity(man.chunks.len());
    for c in &man.chunks {
        let stored = store
            .read(&c.input_hash.0)
            .map_err(|e| missing(c, e.to_string()))?;
        let input = if parts::is_parts(&stored) {
            let segments = parts::decode(&stored).map_err(|e| missing(c, e.to_string()))?;
            parts::resolve(&segments, |h| store.read(h).ok())
                .map_err(|e| missing(c, e.to_string()))?
        } else {
            stored.clone()
        };
        chunks.push(Chunk {
            index: c.index,
            input,
            label: c.label.clone(),
        });
        served.push(stored);
    }
    let shared = served.iter().any(|s| parts::is_parts(s)).then(|| Shared {
        inputs: served,
        blobs: Vec::new(),
    });
    Ok(BatchOrder {
        terms: Order {
            kernel,
            input: Vec::new(),
            served: None,
            replicas: man.replicas,
            bounty: man.bounty_per_chunk,
            collateral: man.collateral,
            force: true,
            min_reputation: man.min_reputation,
            commit_secs: man.commit_secs,
            reveal_secs: man.reveal_secs,
            max_output: None,
            announce: how.announce,
            optimistic: false,
        },
        batch: Batch {
            kernel,
            chunks,
            assembly: man.assembly.clone(),
        },
        shared,
        max_attempts: man.max_attempts,
        verify: man.verify,
        wait: true,
        poll: how.poll,
    })
}

/// Follows batch `man` until every chunk is verified (or, without `order.wait`, until
/// every chunk's input is taken), re-posting failed chunks, and assembles the output.
async fn follow(
    m: &Market,
    p2p: &P2pClient,
    order: &BatchOrder,
    mut man: Manifest,
    dir: &Path,
    mut on: impl FnMut(&Manifest, usize, &Change),
) -> eyre::Result<Finished> {
    let _lock = man.lock(dir)?;
    take_up_pending(m, &mut man, dir, &mut on).await?;
    let block_secs = m.block_time_estimate(8).await?;
    let mut round = round::Round::new(order.batch.chunks.len(), round::patience(block_secs));
    loop {
        let done = round.step(m, p2p, order, &mut man, dir, &mut on).await?;
        if done || (!order.wait && round.inputs_taken(&man)) {
            break;
        }
        tokio::time::sleep(order.poll).await;
    }
    let failed: Vec<String> = man
        .chunks
        .iter()
        .filter(|c| c.phase == ChunkPhase::Failed)
        .map(|c| format!("chunk {} ({})", c.index, c.label))
        .collect();
    if !failed.is_empty() {
        bail!(
            "batch {}: {} of {} chunks failed every one of their {} attempts ({}); see `stp batch status {}`",
            man.batch_id,
            failed.len(),
            man.chunks.len(),
            order.max_attempts,
            failed.join(", "),
            man.batch_id
        );
    }
    if !order.wait {
        return Ok(Finished {
            manifest: man,
            output: None,
        });
    }
    let output = round::assemble(p2p, order, &mut man)?;
    man.save(dir)?;
    Ok(Finished {
        manifest: man,
        output: Some(output),
    })
}

fn all(order: &BatchOrder) -> Vec<usize> {
    (0..order.batch.chunks.len()).collect()
}

/// Checks every chunk against the kernel and the market's rules, and the wallet against
/// the first attempt of every chunk, before anything is paid.
async fn check(m: &Market, order: &BatchOrder) -> eyre::Result<()> {
    if order.batch.chunks.is_empty() {
        bail!("the batch has no chunks");
    }
    if order.max_attempts == 0 {
        bail!("--max-attempts must be at least 1");
    }
    if order.batch.chunks.len() > MAX_POST_BATCH {
        bail!(
            "{} chunks: a batch has at most {MAX_POST_BATCH} (one postJobs transaction); split it into fewer, larger chunks",
            order.batch.chunks.len()
        );
    }
    if order.terms.optimistic {
        bail!("batches post plain jobs (replicated); --optimistic is for single jobs");
    }
    for (i, c) in order.batch.chunks.iter().enumerate() {
        order
            .order(i)
            .output_bound()
            .map_err(|e| e.wrap_err(format!("chunk {i} ({})", c.label)))?;
    }
    order.order(0).check(m).await?;
    let total = order.terms.bounty * U256::from(order.batch.chunks.len());
    if let Some(short) = shortfall(m, "bounties of every chunk", total).await? {
        return Err(super::ConsumerError::Shortfall(short).into());
    }
    Ok(())
}

/// Serves chunks `which` (at most [`MAX_POST_BATCH`]) and posts them in one `postJobs`
/// transaction, one job each, in order; `before_paying` records their specs first. They are not gossiped yet: the caller records
/// them first ([`announce`]).
async fn post_chunks(
    m: &Market,
    p2p: &P2pClient,
    order: &BatchOrder,
    which: &[usize],
    before_paying: impl FnOnce(&[JobSpec]) -> eyre::Result<()>,
) -> eyre::Result<Vec<Posted>> {
    if which.len() > MAX_POST_BATCH {
        bail!(
            "{} chunks to post at once; at most {MAX_POST_BATCH}",
            which.len()
        );
    }
    let orders: Vec<Order> = which.iter().map(|&i| order.order(i)).collect();
    let ready = prepare_many(m, p2p, &orders).await?;
    let specs: Vec<JobSpec> = ready.iter().map(|r| r.spec.clone()).collect();
    before_paying(&specs)?;
    let total = order.terms.bounty * U256::from(which.len());
    let jobs = paying(m, "bounties", total, m.post_jobs(specs)).await?;
    Ok(ready
        .into_iter()
        .zip(jobs)
        .map(|(r, job)| r.into_posted(job))
        .collect())
}

/// What an earlier `stp batch post` in `dir` left when it crashed between paying for its
/// batch and recording it: the batch, found on-chain, is recorded now and this run stops
/// (follow it with `stp batch resume`); a post that never landed is forgotten.
async fn recover_posting(m: &Market, dir: &Path) -> eyre::Result<()> {
    let Some(posting) = Posting::load(dir)? else {
        return Ok(());
    };
    let head = m.block_number().await?;
    let posted = jobs_posted(m, posting.from_block, head).await?;
    let Some(man) = posting.recover(m.account(), &posted) else {
        tracing::info!("an earlier batch post from this --data-dir never landed; forgetting it");
        return Posting::remove(dir);
    };
    man.save(dir)?;
    Posting::remove(dir)?;
    bail!(
        "an earlier `stp batch post` from this --data-dir paid for batch {} ({} chunks) and stopped before recording it; it is recorded now, nothing was posted this time: follow it with `stp batch resume {}`",
        man.batch_id,
        man.chunks.len(),
        man.batch_id
    )
}

/// `(job id, post block, spec)` of every job posted in blocks `from..=to`, oldest first.
async fn jobs_posted(m: &Market, from: u64, to: u64) -> eyre::Result<Vec<(u64, u64, JobSpec)>> {
    Ok(m.events(from, to)
        .await?
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::JobPosted {
                job_id,
                spec,
                post_block,
                ..
            } => Some((job_id, post_block, spec)),
            _ => None,
        })
        .collect())
}

/// A re-posting a crashed consumer sent but did not record: its jobs, found on-chain, become
/// the chunks' current attempts (see [`Manifest::adopt`]).
async fn take_up_pending(
    m: &Market,
    man: &mut Manifest,
    dir: &Path,
    on: &mut impl FnMut(&Manifest, usize, &Change),
) -> eyre::Result<()> {
    let Some(pending) = &man.pending_post else {
        return Ok(());
    };
    let head = m.block_number().await?;
    let posted = jobs_posted(m, pending.from_block, head).await?;
    let adopted = man.adopt(m.account(), &posted);
    man.save(dir)?;
    for index in adopted {
        let i = index as usize;
        let job = man.chunks[i].current().job_id;
        tracing::info!(
            chunk = index,
            job,
            "took up a re-posting recorded only on-chain"
        );
        on(man, i, &Change::Posted(job));
    }
    Ok(())
}

/// Gossips posted chunk jobs to connected providers (when the order says so).
async fn announce(m: &Market, p2p: &P2pClient, order: &BatchOrder, posted: &[Posted]) {
    if order.terms.announce {
        for job in posted {
            announce_posted(m, p2p, job).await;
        }
    }
}

fn manifest(order: &BatchOrder, posted: &[Posted]) -> Manifest {
    let specs: Vec<JobSpec> = posted.iter().map(|p| p.spec.clone()).collect();
    let mut man = template(order, &specs);
    man.batch_id = posted[0].job_id;
    for (c, p) in man.chunks.iter_mut().zip(posted) {
        c.attempts = vec![Attempt {
            job_id: p.job_id,
            post_block: p.post_block,
            failed: None,
        }];
    }
    man
}

/// The record of a batch about to be posted with `specs`: no id and no attempts yet.
fn template(order: &BatchOrder, specs: &[JobSpec]) -> Manifest {
    let chunks = order
        .batch
        .chunks
        .iter()
        .zip(specs)
        .map(|(c, spec)| ChunkState {
            index: c.index,
            label: c.label.clone(),
            input_hash: spec.inputHash,
            phase: ChunkPhase::Posted,
            attempts: Vec::new(),
            result_hash: None,
            output_blob: None,
        })
        .collect();
    Manifest {
        batch_id: 0,
        kernel_id: B256::from(order.batch.kernel.0),
        kernel: {
            let first = order.batch.chunks.first().map_or(&[][..], |c| &c.input[..]);
            job_name(&order.batch.kernel, first).into_owned()
        },
        replicas: order.terms.replicas,
        bounty_per_chunk: order.terms.bounty,
        collateral: order.terms.collateral,
        min_reputation: order.terms.min_reputation,
        commit_secs: order.terms.commit_secs,
        reveal_secs: order.terms.reveal_secs,
        verify: order.verify,
        max_attempts: order.max_attempts,
        assembly: order.batch.assembly.clone(),
        chunks,
        merkle_root: None,
        output_hash: None,
        pending_post: None,
    }
}

/// The Merkle root of the chunks' result hashes, in chunk order (`stp_sdk::batch::merkle`).
pub fn merkle_root(man: &Manifest) -> Option<B256> {
    let leaves: Option<Vec<[u8; 32]>> = man
        .chunks
        .iter()
        .map(|c| c.result_hash.map(|h| h.0))
        .collect();
    leaves.map(|l| B256::from(merkle::root(&l)))
}
