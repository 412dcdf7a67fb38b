//! [`MarketError`]: what can go wrong talking to the market, typed so callers branch on
//! variants (the contract's decoded [`JobEscrowErrors`], alloy's [`TransportError`]), and
//! displayed as sentences a person can act on (amounts in ETH or token units, the fix).

mod revert;

use crate::bindings::JobEscrow::JobEscrowErrors;
use alloy::primitives::{Bytes, TxHash};
use alloy::providers::PendingTransactionError;
use alloy::transports::{RpcError, TransportError};
use std::path::PathBuf;

pub use revert::{AmountUnit, describe_revert, format_amount, text_of};

/// Errors talking to the market contracts.
#[derive(Debug, thiserror::Error)]
pub enum MarketError {
    /// The RPC endpoint could not be reached or answered with an error.
    #[error("RPC error: {0} (is the node at --rpc-url / ETH_RPC_URL up?)")]
    Rpc(TransportError),
    /// The RPC URL does not parse.
    #[error("bad RPC URL {url:?}: {reason}")]
    BadRpcUrl {
        /// The URL as given.
        url: String,
        /// Why it does not parse.
        reason: String,
    },
    /// The node refused the transaction because the sending wallet cannot pay its value
    /// plus gas. Retrying helps only once the wallet is funded.
    #[error(
        "the wallet cannot pay for {call}: the node refused it for insufficient funds (the value sent plus gas exceeds the wallet's balance); fund the wallet or ask for less"
    )]
    InsufficientFunds {
        /// The contract function called.
        call: &'static str,
        /// The node's answer.
        source: TransportError,
    },
    /// A contract rejected the call with one of its custom errors.
    #[error("{call} reverted: {}", describe_revert(.call, .error, *.unit))]
    Reverted {
        /// The contract function called.
        call: &'static str,
        /// The decoded custom error with its parameters.
        error: Box<JobEscrowErrors>,
        /// The unit the error's amounts are shown in.
        unit: AmountUnit,
    },
    /// A contract rejected the call with data that is none of its custom errors.
    #[error("{call} reverted with undecoded data {data}")]
    RevertedWithData {
        /// The contract function called.
        call: &'static str,
        /// The raw revert data.
        data: Bytes,
    },
    /// The call could not be built or its answer decoded (e.g. the address holds no
    /// contract, or the ABI does not match the deployed one).
    #[error("{call} could not be completed (does --deployment point at this chain's JobEscrow?)")]
    Call {
        /// The contract function called.
        call: &'static str,
        /// alloy's error.
        source: Box<alloy::contract::Error>,
    },
    /// The transaction was mined but failed.
    #[error("{call} transaction {tx} failed on-chain")]
    TxFailed {
        /// The contract function called.
        call: &'static str,
        /// The failed transaction.
        tx: TxHash,
    },
    /// The transaction was sent but not mined, even after paying more for it.
    #[error(
        "{call}: transaction {tx} not mined after {bumps} fee bumps (is the chain producing blocks?)"
    )]
    NotMined {
        /// The contract function called.
        call: &'static str,
        /// The first transaction sent.
        tx: TxHash,
        /// How many times the fees were raised.
        bumps: usize,
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

impl From<TransportError> for MarketError {
    fn from(e: TransportError) -> Self {
        Self::Rpc(e)
    }
}

impl MarketError {
    /// Turns a contract-call error into a typed error: the decoded custom error, the node's
    /// refusal for insufficient funds, or the transport error as alloy reported it.
    pub(crate) fn from_contract(call: &'static str, err: alloy::contract::Error) -> Self {
        if let Some(error) = err.as_decoded_interface_error::<JobEscrowErrors>() {
            return Self::Reverted {
                call,
                error: Box::new(error),
                unit: AmountUnit::Ether,
            };
        }
        if let Some(data) = err.as_revert_data() {
            return Self::RevertedWithData { call, data };
        }
        match err {
            alloy::contract::Error::TransportError(e)
            | alloy::contract::Error::PendingTransactionError(
                PendingTransactionError::TransportError(e),
            ) => Self::from_send(call, e),
            source => Self::Call {
                call,
                source: Box::new(source),
            },
        }
    }

    /// Classifies a transport error met while sending `call`.
    pub(crate) fn from_send(call: &'static str, e: TransportError) -> Self {
        if is_insufficient_funds(&e) {
            Self::InsufficientFunds { call, source: e }
        } else {
            Self::Rpc(e)
        }
    }

    /// Whether retrying the same call later may succeed (transport trouble, not a revert).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Rpc(_) | Self::NotMined { .. } => true,
            // Waiting for the receipt failed, not the transaction.
            Self::Call { source, .. } => {
                matches!(**source, alloy::contract::Error::PendingTransactionError(_))
            }
            _ => false,
        }
    }

    /// Whether the chain rejected the call (a revert, or a mined transaction that failed),
    /// as opposed to not being reachable: retrying the same call will not help.
    pub fn is_rejection(&self) -> bool {
        matches!(
            self,
            Self::Reverted { .. } | Self::RevertedWithData { .. } | Self::TxFailed { .. }
        )
    }

    /// The decoded custom error, if the call reverted with one: match on its variants,
    /// e.g. `Some(JobEscrowErrors::EscrowJobFull(_))`.
    pub fn revert(&self) -> Option<&JobEscrowErrors> {
        match self {
            Self::Reverted { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The transport error, if the RPC endpoint failed or refused the call.
    pub fn transport(&self) -> Option<&TransportError> {
        match self {
            Self::Rpc(e) | Self::InsufficientFunds { source: e, .. } => Some(e),
            _ => None,
        }
    }

    /// Shows the amounts of a decoded revert in `unit` (a market's errors come out in ETH;
    /// a token market's caller says so with this).
    pub fn in_unit(self, unit: AmountUnit) -> Self {
        match self {
            Self::Reverted { call, error, .. } => Self::Reverted { call, error, unit },
            other => other,
        }
    }
}

/// Whether the node refused a transaction because its sender cannot pay value plus gas.
/// JSON-RPC has no standard code for it: geth, reth and anvil all say "insufficient funds"
/// (geth: "insufficient funds for gas * price + value").
fn is_insufficient_funds(e: &TransportError) -> bool {
    match e {
        RpcError::ErrorResp(payload) => payload
            .message
            .to_ascii_lowercase()
            .contains("insufficient funds"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::JobEscrow;
    use alloy::transports::TransportErrorKind;

    fn node_says(message: &'static str) -> TransportError {
        let payload = serde_json::json!({ "code": -32003, "message": message });
        RpcError::ErrorResp(serde_json::from_value(payload).expect("an error payload"))
    }

    #[test]
    fn the_nodes_insufficient_funds_is_not_an_outage() {
        let e = MarketError::from_contract(
            "stake",
            node_says("Insufficient funds for gas * price + value").into(),
        );
        assert!(
            matches!(e, MarketError::InsufficientFunds { call: "stake", .. }),
            "{e}"
        );
        assert!(!e.is_transient() && !e.is_rejection());
        let text = e.to_string();
        assert!(text.contains("fund the wallet or ask for less"), "{text}");
        assert!(!text.contains("is the node"), "{text}");
        assert!(e.transport().is_some());
    }

    #[test]
    fn transport_trouble_stays_alloys_error_and_is_transient() {
        let down = MarketError::from_contract(
            "commit",
            TransportErrorKind::custom_str("connection refused").into(),
        );
        assert!(
            matches!(down, MarketError::Rpc(RpcError::Transport(_))),
            "{down}"
        );
        assert!(down.is_transient() && !down.is_rejection());
        assert!(down.to_string().contains("--rpc-url"), "{down}");
        let other = MarketError::from_contract("commit", node_says("nonce too low").into());
        assert!(
            matches!(other, MarketError::Rpc(RpcError::ErrorResp(_))),
            "{other}"
        );
    }

    #[test]
    fn a_revert_keeps_the_typed_contract_error() {
        let e = MarketError::Reverted {
            call: "commit",
            error: Box::new(JobEscrowErrors::EscrowJobFull(JobEscrow::EscrowJobFull {
                jobId: alloy::primitives::U256::from(3),
            })),
            unit: AmountUnit::Ether,
        };
        assert!(e.is_rejection() && !e.is_transient());
        assert!(matches!(
            e.revert(),
            Some(JobEscrowErrors::EscrowJobFull(f)) if f.jobId == alloy::primitives::U256::from(3)
        ));
        assert_eq!(
            e.to_string(),
            "commit reverted: (EscrowJobFull) every replica slot of job 3 is taken: it takes no more replicas"
        );
        assert!(MarketError::AlreadySettled(3).revert().is_none());
    }
}
