//! The verification receipt `stp job post` prints for every job: what was checked (the
//! hash agreement of the replicas, the consumer's own check of the output with its
//! false-accept bound, an optimistic job's challenge), how confident that makes it, and
//! what the check cost in time.

use std::fmt;

use alloy::primitives::B256;
use serde::Serialize;
use stp_sdk::market::{JobHistory, JobKind};
use stp_sdk::verify::Verdict;

/// What a job's result rests on.
#[derive(Debug, Clone, Serialize)]
pub struct Receipt {
    /// Which rules the job followed (`plain`, `optimistic`).
    pub kind: JobKind,
    /// The result hash the receipt is about.
    pub result_hash: B256,
    /// Replicas that revealed it.
    pub agreeing: usize,
    /// Replicas the job asked for.
    pub replicas: u8,
    /// The consumer's own check of the output against the input, if one ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<Verdict>,
    /// For a challenged optimistic job: how many escalation replicas agreed on the final
    /// result hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalation_agreeing: Option<usize>,
}

impl Receipt {
    /// The receipt of `h` for `result_hash`, with the consumer's `check` if it ran.
    pub fn of(h: &JobHistory, result_hash: B256, check: Option<Verdict>) -> Self {
        Self {
            kind: h.kind,
            result_hash,
            agreeing: h.revealers_of(result_hash).len(),
            replicas: h.spec.as_ref().map_or(0, |s| s.replicas),
            check,
            escalation_agreeing: None,
        }
    }
}

impl fmt::Display for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            JobKind::Optimistic => write!(f, "optimistic: 1 replica claimed {}", self.result_hash)?,
            _ => write!(
                f,
                "{} of {} replicas agreed on {}",
                self.agreeing, self.replicas, self.result_hash
            )?,
        }
        if let Some(n) = self.escalation_agreeing {
            write!(f, "; challenged: {n} escalation replicas agreed on it")?;
        }
        match &self.check {
            Some(v) => write!(f, "; checked {v}"),
            None => write!(f, "; output not checked against the input"),
        }
    }
}
