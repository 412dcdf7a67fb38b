//! The consumer's side of a job, as `stp job post --output` runs it and the Python SDK
//! (`sdk/python`) calls it: [`post`] checks the order against the market's rules, serves the
//! input over libp2p and posts the job; [`follow`] polls the chain until it is settled
//! (finalizing it once a deadline allows); [`fetch_output`] fetches the agreed output from
//! the winning providers and checks it against the on-chain hash; [`check_output`] checks
//! it against the input (Freivalds / sampled recomputation from `stp_sdk::verify`).
//!
//! Errors are `eyre` reports whose messages are the CLI's; the ones a caller may want to
//! branch on carry a typed [`ConsumerError`] or `stp_sdk::market::MarketError` in their
//! chain (`report.chain()` + `downcast_ref`).

pub mod batch;
mod check;
mod fetch;
mod follow;
mod model;
pub mod optimistic;
mod post;

pub use check::{check_output, judge, os_seed};
pub use fetch::{fetch_hash, fetch_output};
pub use follow::{Progress, follow, phase};
pub use model::ModelWork;
pub use post::{
    Order, Posted, Prepared, announce_posted, check_collateral, check_replicas, check_windows,
    post, prepare, prepare_many, resolve_kernel, send,
};

use stp_sdk::market::Outcome;

/// Consumer-side failures that callers branch on (the rest are plain report messages).
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// The wallet cannot pay an amount plus gas; nothing was sent.
    #[error("{0}")]
    Shortfall(String),
    /// The job id is not a job of this market.
    #[error("job {job_id} was never posted on this market ({escrow}); see `stp job list`")]
    NotPosted {
        /// The job asked for.
        job_id: u64,
        /// The market's escrow address.
        escrow: alloy::primitives::Address,
    },
    /// The job settled without an agreed output.
    #[error("job {job_id} ended {outcome:?}: there is no agreed output (the bounty was refunded)")]
    NoOutput {
        /// The job.
        job_id: u64,
        /// How it ended.
        outcome: Outcome,
    },
    /// The job is not settled yet.
    #[error("job {job_id} is not finalized yet; see `stp job status {job_id}`")]
    NotSettled {
        /// The job.
        job_id: u64,
    },
    /// The agreed output fails the consumer's own check against the input.
    #[error(
        "the agreed output of job {job_id} fails its check ({verdict}): the replicas that agreed on it computed it wrong; do not use it"
    )]
    CheckFailed {
        /// The job.
        job_id: u64,
        /// What was checked and how it failed.
        verdict: Box<stp_sdk::verify::Verdict>,
    },
}
