use crate::bindings::JobEscrow;
use std::path::PathBuf;

/// Errors talking to the market contracts.
#[derive(Debug, thiserror::Error)]
pub enum MarketError {
    /// The RPC endpoint could not be reached or answered with an error.
    #[error("RPC error: {0} (is the node at --rpc-url / ETH_RPC_URL up?)")]
    Rpc(String),
    /// A contract rejected the call; `name` is the decoded custom error.
    #[error("{call} reverted: {name}{hint}")]
    Reverted {
        /// The contract function called.
        call: &'static str,
        /// The decoded custom error with its parameters.
        name: String,
        /// What the user can do about it (may be empty).
        hint: String,
    },
    /// The transaction was mined but failed.
    #[error("{call} transaction {tx} failed on-chain")]
    TxFailed {
        /// The contract function called.
        call: &'static str,
        /// The failed transaction.
        tx: alloy::primitives::TxHash,
    },
    /// The deployment file is missing or malformed.
    #[error("deployment file {path}: {reason} (deploy with `scripts/deploy` or `stp devnet up`)")]
    DeploymentFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The deployment file is for another chain than the RPC serves.
    #[error("deployment is for chain {deployment} but the RPC serves chain {rpc}")]
    WrongChain {
        /// Chain id in the deployment file.
        deployment: u64,
        /// Chain id reported by the RPC.
        rpc: u64,
    },
    /// The job was already settled (or never posted): nothing to finalize.
    #[error("job {0} is already settled (or was never posted): nothing to finalize")]
    AlreadySettled(u64),
    /// The job cannot be finalized yet.
    #[error(
        "job {job_id} can be finalized from {from} (unix seconds): a deadline must pass first; see `stp job status {job_id}`"
    )]
    NotFinalizableYet {
        /// The job.
        job_id: u64,
        /// The first second at which finalize is allowed.
        from: u64,
    },
    /// The node refused to take the transaction (e.g. the account cannot pay for it).
    #[error("{call}: the node refused the transaction: {reason}")]
    TxRefused {
        /// The contract function called.
        call: &'static str,
        /// The node's reason.
        reason: String,
    },
    /// Our transaction's nonce was used by another transaction (sent elsewhere with the
    /// same key): ours will never be mined. Whatever it did must be read from the chain.
    #[error("{call}: transaction with nonce {nonce} was replaced by another sent with this key")]
    TxDropped {
        /// The contract function called.
        call: &'static str,
        /// The nonce it had.
        nonce: u64,
    },
    /// A value read from the chain does not fit what the protocol allows.
    #[error("unexpected chain data: {0}")]
    Unexpected(String),
}

/// Result type of market operations.
pub type Result<T, E = MarketError> = std::result::Result<T, E>;

impl MarketError {
    /// Turns a contract-call error into a typed error with the decoded custom error.
    pub(crate) fn from_contract(call: &'static str, err: alloy::contract::Error) -> Self {
        if let Some(e) = err.as_decoded_interface_error::<JobEscrow::JobEscrowErrors>() {
            let name = format!("{e:?}");
            return Self::Reverted {
                call,
                hint: hint_for(&name),
                name,
            };
        }
        if let Some(data) = err.as_revert_data() {
            return Self::Reverted {
                call,
                name: format!("revert data {data}"),
                hint: String::new(),
            };
        }
        Self::Rpc(err.to_string())
    }

    /// Whether retrying the same call later may succeed (transport trouble, not a revert).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Rpc(_))
    }

    /// Whether the chain rejected the call (a revert, or a mined transaction that failed),
    /// as opposed to not being reachable: retrying the same call will not help.
    pub fn is_rejection(&self) -> bool {
        matches!(self, Self::Reverted { .. } | Self::TxFailed { .. })
    }

    /// The decoded custom error's name, e.g. `EscrowJobFull`, if the call reverted.
    pub fn revert_name(&self) -> Option<&str> {
        match self {
            Self::Reverted { name, .. } => name.split(['(', ' ']).next(),
            _ => None,
        }
    }
}

fn hint_for(name: &str) -> String {
    let hint = if name.starts_with("StakeBelowMinimum") {
        "; stake more with `stp provider stake --amount <ETH>`"
    } else if name.starts_with("StakeInsufficient") {
        "; free stake does not cover the job's collateral: stake more or wait for jobs to settle"
    } else if name.starts_with("StakeReputationTooLow") {
        "; the job requires a higher reputation score than this provider has"
    } else if name.starts_with("EscrowLaneBusy") {
        "; that lane holds another live job of this provider: commit in a free lane"
    } else if name.starts_with("EscrowNotDrawn") {
        "; the job's stake-weighted draw did not pick this provider (yet): eligibleFrom says when it may commit (0: not in this job)"
    } else if name.starts_with("EscrowStakeTooNew") {
        "; stake added in or after a job's post block does not count in its draw: wait for later jobs"
    } else if name.starts_with("EscrowWindowTooShort") {
        "; give the job longer windows (see `stp job post --help`; the market's minimums are in `stp market info`)"
    } else if name.starts_with("EscrowDeadlineTooFar") {
        "; the reveal deadline is beyond the market's horizon: choose shorter windows"
    } else if name.starts_with("EscrowTokenNotExact") {
        "; this market accepts only tokens that move exactly the amount asked (no fee-on-transfer or rebasing tokens)"
    } else if name.starts_with("EscrowNothingToWithdraw") {
        "; nothing is credited to this account: see `stp payout balance`"
    } else if name.starts_with("EscrowNotFinalizable") {
        "; a deadline must pass first: see `stp job status`"
    } else {
        ""
    };
    hint.to_string()
}
