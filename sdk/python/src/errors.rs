//! Python exceptions for the Rust error types, with the messages the `stp` CLI prints.
//!
//! `StpError` is the base; a report is classified by the typed errors in its chain
//! (`MarketError`, the contract's decoded `JobEscrowErrors`, alloy's `TransportError`,
//! `ConsumerError`, `KernelError`), never by parsing its text.

use alloy::transports::TransportError;
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use stp_node::consumer::ConsumerError;
use stp_sdk::bindings::JobEscrow::JobEscrowErrors;
use stp_sdk::kernels::KernelError;
use stp_sdk::market::MarketError;

create_exception!(
    sharethepower,
    StpError,
    PyException,
    "Base of every ShareThePower error; its message is what the `stp` CLI prints."
);
create_exception!(
    sharethepower,
    RpcUnavailable,
    StpError,
    "The chain's JSON-RPC endpoint cannot be reached or failed to answer."
);
create_exception!(
    sharethepower,
    InsufficientFunds,
    StpError,
    "The wallet cannot pay the amount plus gas; nothing was sent."
);
create_exception!(
    sharethepower,
    ContractError,
    StpError,
    "The market contract rejected the call (a decoded custom error with its parameters)."
);
create_exception!(
    sharethepower,
    StakeTooLow,
    ContractError,
    "The stake is below the market's minimum, or less is free than the call needs."
);
create_exception!(
    sharethepower,
    JobNotFound,
    StpError,
    "No such job on this market (never posted, or already settled for the call)."
);
create_exception!(
    sharethepower,
    NoOutput,
    StpError,
    "The job settled without an agreed output (no quorum or unfilled: the bounty was refunded), or is not settled yet."
);
create_exception!(
    sharethepower,
    OutputCheckFailed,
    StpError,
    "The agreed output fails the consumer's own check against the input: do not use it."
);
create_exception!(
    sharethepower,
    DeploymentError,
    StpError,
    "The deployment file is missing or malformed, or is for another chain."
);

/// Adds the exception types to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("StpError", py.get_type::<StpError>())?;
    m.add("RpcUnavailable", py.get_type::<RpcUnavailable>())?;
    m.add("InsufficientFunds", py.get_type::<InsufficientFunds>())?;
    m.add("ContractError", py.get_type::<ContractError>())?;
    m.add("StakeTooLow", py.get_type::<StakeTooLow>())?;
    m.add("JobNotFound", py.get_type::<JobNotFound>())?;
    m.add("NoOutput", py.get_type::<NoOutput>())?;
    m.add("OutputCheckFailed", py.get_type::<OutputCheckFailed>())?;
    m.add("DeploymentError", py.get_type::<DeploymentError>())?;
    Ok(())
}

/// The exception for `report`, carrying the CLI's text of it.
pub(crate) fn to_py(report: eyre::Report) -> PyErr {
    let message = format!("{report:?}");
    let kind = classify(&report);
    kind(message)
}

type Make = fn(String) -> PyErr;

fn classify(report: &eyre::Report) -> Make {
    for cause in report.chain() {
        if let Some(e) = cause.downcast_ref::<MarketError>() {
            return of_market(e);
        }
        if let Some(e) = cause.downcast_ref::<ConsumerError>() {
            return of_consumer(e);
        }
        if cause.downcast_ref::<TransportError>().is_some() {
            return RpcUnavailable::new_err;
        }
        if cause.downcast_ref::<KernelError>().is_some() {
            return PyValueError::new_err;
        }
    }
    StpError::new_err
}

fn of_market(e: &MarketError) -> Make {
    match e {
        MarketError::Rpc(_) | MarketError::BadRpcUrl { .. } | MarketError::NotMined { .. } => {
            RpcUnavailable::new_err
        }
        MarketError::InsufficientFunds { .. } => InsufficientFunds::new_err,
        MarketError::DeploymentFile { .. } | MarketError::WrongChain { .. } => {
            DeploymentError::new_err
        }
        MarketError::AlreadySettled(_) => JobNotFound::new_err,
        MarketError::Reverted { error, .. } => of_revert(error),
        MarketError::RevertedWithData { .. }
        | MarketError::TxFailed { .. }
        | MarketError::NotFinalizableYet { .. } => ContractError::new_err,
        _ => StpError::new_err,
    }
}

fn of_revert(e: &JobEscrowErrors) -> Make {
    match e {
        JobEscrowErrors::StakeBelowMinimum(_) | JobEscrowErrors::StakeInsufficient(_) => {
            StakeTooLow::new_err
        }
        JobEscrowErrors::EscrowJobNotFound(_) => JobNotFound::new_err,
        _ => ContractError::new_err,
    }
}

fn of_consumer(e: &ConsumerError) -> Make {
    match e {
        ConsumerError::Shortfall(_) => InsufficientFunds::new_err,
        ConsumerError::NotPosted { .. } => JobNotFound::new_err,
        ConsumerError::NoOutput { .. } | ConsumerError::NotSettled { .. } => NoOutput::new_err,
        ConsumerError::CheckFailed { .. } => OutputCheckFailed::new_err,
    }
}
