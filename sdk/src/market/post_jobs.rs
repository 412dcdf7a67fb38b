//! Many plain jobs in one transaction: the escrow's `postJobs`.

use super::{JobKind, JobSpec, JobSpecExt, Market, MarketError, PostedJob, Result};
use super::{job_id_u64, split_draw};
use crate::bindings::JobEscrow;
use alloy::primitives::U256;
use alloy::rpc::types::TransactionReceipt;

/// Most specs one `postJobs` call takes (the contract's `MAX_BATCH`).
pub const MAX_POST_BATCH: usize = 256;

impl Market {
    /// Posts `specs` as plain jobs in one transaction (`postJobs`; every `consumer` is set
    /// to this account), escrowing the sum of their bounties (approving the ERC-20 first in
    /// token mode). The jobs come back in the order of `specs`, read from the receipt's
    /// `JobPosted` logs: consecutive ids, one block and draw. The contract refuses the
    /// whole batch if one spec is bad ([`MarketError::Reverted`] with
    /// `EscrowBatchSpecInvalid`, naming its index and postJob's reason) and an empty batch
    /// or one of more than [`MAX_POST_BATCH`] specs (`EscrowBatchSize`).
    pub async fn post_jobs(&self, mut specs: Vec<JobSpec>) -> Result<Vec<PostedJob>> {
        let mut sum = U256::ZERO;
        for spec in &mut specs {
            spec.consumer = self.account;
            sum += spec.bounty_amount();
        }
        self.approve_if_token(sum).await?;
        let call = self
            .escrow
            .postJobs(specs.clone())
            .value(self.native_value(sum));
        let receipt = self.txs.send("postJobs", call).await?;
        posted_in(&receipt, specs.len())
    }
}

/// The `expected` jobs a postJobs `receipt` posted, in log order; an error unless they are
/// exactly that many with consecutive ids.
fn posted_in(receipt: &TransactionReceipt, expected: usize) -> Result<Vec<PostedJob>> {
    let jobs: Vec<PostedJob> = receipt
        .inner
        .logs()
        .iter()
        .filter_map(|l| l.log_decode::<JobEscrow::JobPosted>().ok())
        .map(|l| {
            let (post_block, posted_at) = split_draw(l.inner.data.draw);
            let job_id = job_id_u64(l.inner.data.jobId).ok_or_else(|| {
                MarketError::Unexpected(format!("job id {} out of range", l.inner.data.jobId))
            })?;
            Ok(PostedJob {
                job_id,
                tx: receipt.transaction_hash,
                posted_at,
                post_block,
                kind: JobKind::Plain,
            })
        })
        .collect::<Result<_>>()?;
    let consecutive = jobs.windows(2).all(|w| w[1].job_id == w[0].job_id + 1);
    if jobs.len() != expected || !consecutive {
        return Err(MarketError::Unexpected(format!(
            "postJobs receipt holds {} JobPosted logs (consecutive: {consecutive}), expected {expected}",
            jobs.len()
        )));
    }
    Ok(jobs)
}
