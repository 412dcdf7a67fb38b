//! One sentence per custom error of `JobEscrow` (contracts/src/interfaces/IJobEscrow.sol
//! and IStaking.sol): what happened, with amounts in ETH or token units, and what to do.

use crate::bindings::JobEscrow::JobEscrowErrors as E;
use alloy::primitives::{B256, U256, utils::format_ether};
use alloy::sol_types::{SolError, SolInterface};

/// The contract's `MAX_REPLICAS_LIMIT`: no market allows more replicas.
const MAX_REPLICAS_LIMIT: u64 = 16;
/// The contract's `MAX_INPUT_LOCATION`, in bytes.
const MAX_INPUT_LOCATION: u64 = 256;
/// The contract's `MAX_OPEN_LANES`.
const MAX_OPEN_LANES: u64 = 256;
/// The contract's `MAX_HORIZON_LIMIT` (365 days), in seconds.
const MAX_HORIZON_LIMIT: u64 = 365 * 86_400;

/// What a market's amounts (stakes, bounties, collateral, balances) are counted in: both
/// have 18 decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AmountUnit {
    /// Native ETH.
    #[default]
    Ether,
    /// The market's ERC-20.
    Token,
}

impl std::fmt::Display for AmountUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Ether => "ETH",
            Self::Token => "tokens",
        })
    }
}

/// Formats an 18-decimal amount without trailing zeros ("0.5", "2", "0.000001").
pub fn format_amount(wei: U256) -> String {
    let s = format_ether(wei);
    match s.split_once('.') {
        Some((int, frac)) => {
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                int.to_string()
            } else {
                format!("{int}.{frac}")
            }
        }
        None => s,
    }
}

/// The text of a `bytes32` short string as the contract writes it (`"bounty"`), without
/// its zero padding; bytes that are not text are shown as hex.
pub fn text_of(word: &B256) -> String {
    let end = word.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    match std::str::from_utf8(&word[..end]) {
        Ok(s) if s.chars().all(|c| c.is_ascii_graphic() || c == ' ') => s.to_string(),
        _ => word.to_string(),
    }
}

/// The name of a custom error, e.g. `EscrowJobFull`.
pub(super) fn name(error: &E) -> &'static str {
    fn of<T: SolError>(_: &T) -> &'static str {
        T::SIGNATURE.split('(').next().unwrap_or(T::SIGNATURE)
    }
    match error {
        E::EscrowJobNotFound(e) => of(e),
        E::EscrowInvalidSpec(e) => of(e),
        E::EscrowWindowTooShort(e) => of(e),
        E::EscrowDeadlineTooFar(e) => of(e),
        E::EscrowWrongValue(e) => of(e),
        E::EscrowTokenNotExact(e) => of(e),
        E::EscrowCommitClosed(e) => of(e),
        E::EscrowJobFull(e) => of(e),
        E::EscrowDrawNotFixed(e) => of(e),
        E::EscrowDrawExpired(e) => of(e),
        E::EscrowNotDrawn(e) => of(e),
        E::EscrowStakeTooNew(e) => of(e),
        E::EscrowLaneBusy(e) => of(e),
        E::EscrowWrongReplicaStatus(e) => of(e),
        E::EscrowRevealNotOpen(e) => of(e),
        E::EscrowRevealClosed(e) => of(e),
        E::EscrowJobUnfilled(e) => of(e),
        E::EscrowCommitmentMismatch(e) => of(e),
        E::EscrowNotFinalizable(e) => of(e),
        E::EscrowWrongReplicaSet(e) => of(e),
        E::EscrowNotReplica(e) => of(e),
        E::EscrowNotQuorumResult(e) => of(e),
        E::EscrowInsufficientBalance(e) => of(e),
        E::EscrowNothingToWithdraw(e) => of(e),
        E::EscrowEtherTransferFailed(e) => of(e),
        E::EscrowParameterOutOfRange(e) => of(e),
        E::EscrowNotChallengeable(e) => of(e),
        E::EscrowNotConsumer(e) => of(e),
        E::EscrowChallengeClosed(e) => of(e),
        E::EscrowUnderChallenge(e) => of(e),
        E::EscrowExcluded(e) => of(e),
        E::EscrowBatchSize(e) => of(e),
        E::EscrowBatchSpecInvalid(e) => of(e),
        E::EscrowNotSoloJob(e) => of(e),
        E::StakeZeroAmount(e) => of(e),
        E::StakeWrongValue(e) => of(e),
        E::StakeAmountTooLarge(e) => of(e),
        E::StakeBelowMinimum(e) => of(e),
        E::StakeInsufficient(e) => of(e),
        E::StakeReputationTooLow(e) => of(e),
        E::StakeParameterOutOfRange(e) => of(e),
        E::ReentrancyGuardReentrantCall(e) => of(e),
        E::SafeERC20FailedOperation(e) => of(e),
    }
}

/// The custom error `error` that `call` reverted with, as a sentence with its fix, e.g.
/// "(StakeBelowMinimum) stake 0.01 ETH is below the market minimum 0.1 ETH; stake more with
/// `stp provider stake --amount <ETH>`".
pub fn describe_revert(call: &str, error: &E, unit: AmountUnit) -> String {
    format!("({}) {}", name(error), sentence(call, error, unit))
}

fn sentence(call: &str, error: &E, unit: AmountUnit) -> String {
    let a = |v: &U256| format!("{} {unit}", format_amount(*v));
    let eth = |v: &U256| format!("{} ETH", format_amount(*v));
    match error {
        E::EscrowJobNotFound(e) => format!(
            "no live job {} matches the terms sent: it was never posted, is settled already, or the spec differs from the posted one; see `stp job status {}`",
            e.jobId, e.jobId
        ),
        E::EscrowInvalidSpec(e) => invalid_spec(&text_of(&e.reason)),
        E::EscrowWindowTooShort(e) => {
            let w = text_of(&e.window);
            let flag = if w == "reveal" {
                "--reveal-secs"
            } else {
                "--commit-secs"
            };
            format!(
                "the {w} window is {} s, below the market's minimum of {} s; give the job a longer one ({flag} at least {}; `stp market info` shows the minimums)",
                e.length, e.minimum, e.minimum
            )
        }
        E::EscrowDeadlineTooFar(e) => format!(
            "the reveal deadline {} is beyond the market's horizon (the latest allowed now is {}, unix seconds); choose shorter windows (`stp market info` shows the horizon)",
            e.deadline, e.latest
        ),
        E::EscrowWrongValue(e) => format!(
            "the transaction sent {} but the job needs exactly {} (the bounty in an ETH market, 0 in a token market); post with `stp job post`, which sends the right value",
            eth(&e.sent),
            eth(&e.expected)
        ),
        E::EscrowTokenNotExact(e) => format!(
            "the token moved {} instead of {}: this market accepts only tokens that move exactly the amount asked (no fee-on-transfer or rebasing tokens)",
            a(&e.actual),
            a(&e.expected)
        ),
        E::EscrowNotChallengeable(e) => format!(
            "job {} cannot be challenged: only an optimistic job whose one slot is taken, and only once (see `stp job status {}`)",
            e.jobId, e.jobId
        ),
        E::EscrowNotConsumer(e) => format!(
            "only the consumer that posted job {} may challenge it, not {}",
            e.jobId, e.caller
        ),
        E::EscrowChallengeClosed(e) => format!(
            "the challenge window of job {} closed at {} (unix seconds): its result stands and it can be finalized",
            e.jobId, e.deadline
        ),
        E::EscrowUnderChallenge(e) => format!(
            "job {} is challenged: its escalation's settlement settles it (finalize the escalation job once its deadlines pass)",
            e.jobId
        ),
        E::EscrowExcluded(e) => format!(
            "provider {} is the defendant of escalation job {}: it cannot judge its own result",
            e.provider, e.jobId
        ),
        E::EscrowCommitClosed(e) => format!(
            "the commit window of job {} closed at {} (unix seconds): it takes no more replicas",
            e.jobId, e.deadline
        ),
        E::EscrowJobFull(e) => format!(
            "every replica slot of job {} is taken: it takes no more replicas",
            e.jobId
        ),
        E::EscrowNotSoloJob(e) => format!(
            "job {} has more than one replica, or is optimistic or an escalation: its slots are taken with a hidden commitment (commit, then reveal), not with the result in the clear",
            e.jobId
        ),
        E::EscrowDrawNotFixed(e) => format!(
            "the draw of job {} is fixed by its post block's hash, which no transaction in that block can read: commit from the next block on",
            e.jobId
        ),
        E::EscrowDrawExpired(e) => format!(
            "the hash of job {}'s post block {} is out of reach (older than 256 blocks, or 8191 with EIP-2935): the job takes no more slots and ends unfilled; finalize it to refund the bounty (`stp job finalize {}`)",
            e.jobId, e.postBlock, e.jobId
        ),
        E::EscrowNotDrawn(e) => {
            let when = if e.eligibleFrom.is_zero() {
                "it is not eligible before the commit deadline".to_string()
            } else {
                format!("it may commit from {} (unix seconds)", e.eligibleFrom)
            };
            format!(
                "the stake-weighted draw of job {} did not pick provider {} (yet): {when}",
                e.jobId, e.provider
            )
        }
        E::EscrowStakeTooNew(e) => format!(
            "the provider's stake grew in block {}, not before job {}'s post block {}: stake added in or after a job's post block does not count in its draw; wait for jobs posted later",
            e.bondedAt, e.jobId, e.postBlock
        ),
        E::EscrowLaneBusy(e) => format!(
            "lane {} of provider {} holds live job {}: commit in a free lane",
            e.lane, e.provider, e.busyJobId
        ),
        E::EscrowWrongReplicaStatus(e) => {
            let status = match e.status {
                0 => "holds no slot",
                1 => "has committed",
                2 => "has revealed",
                _ => "is in an unknown phase",
            };
            format!(
                "provider {} {status} in job {}, which is not the phase this call needs; see `stp job status {}`",
                e.provider, e.jobId, e.jobId
            )
        }
        E::EscrowRevealNotOpen(e) => format!(
            "reveals of job {} open once every slot is taken: {} of {} so far",
            e.jobId, e.committed, e.replicas
        ),
        E::EscrowRevealClosed(e) => format!(
            "the reveal window of job {} closed at {} (unix seconds); finalize it (`stp job finalize {}`)",
            e.jobId, e.deadline, e.jobId
        ),
        E::EscrowJobUnfilled(e) => format!(
            "job {} did not fill its replicas by the commit deadline: there is nothing to reveal; finalize it to release the collateral and refund the bounty (`stp job finalize {}`)",
            e.jobId, e.jobId
        ),
        E::EscrowCommitmentMismatch(e) => format!(
            "the revealed result and salt do not open provider {}'s commitment in job {}: reveal exactly what was committed",
            e.provider, e.jobId
        ),
        E::EscrowNotFinalizable(e) => format!(
            "job {} cannot be finalized before {} (unix seconds): a deadline must pass first; see `stp job status {}`",
            e.jobId, e.notBefore, e.jobId
        ),
        E::EscrowWrongReplicaSet(e) => format!(
            "the replica list for job {} has {} entries where {} are needed, each slot once in ascending order; rebuild it from the job's events (`stp job status {}`)",
            e.jobId, e.given, e.expected, e.jobId
        ),
        E::EscrowNotReplica(e) => format!(
            "lane {} of provider {} holds no slot of job {}",
            e.lane, e.provider, e.jobId
        ),
        E::EscrowNotQuorumResult(e) => format!(
            "another result hash, {}, reached job {}'s quorum: pass that one",
            e.resultHash, e.jobId
        ),
        E::EscrowInsufficientBalance(e) => format!(
            "withdrawing {} exceeds the credited balance of {}; see `stp payout balance`",
            a(&e.requested),
            a(&e.balance)
        ),
        E::EscrowNothingToWithdraw(_) => {
            "nothing is credited to this account: see `stp payout balance`".to_string()
        }
        E::EscrowEtherTransferFailed(e) => format!(
            "sending {} to {} failed: that address refuses ETH; withdraw from an account that accepts it",
            eth(&e.amount),
            e.to
        ),
        E::EscrowParameterOutOfRange(e) => parameter(&text_of(&e.name), &e.value, unit),
        E::StakeZeroAmount(_) => {
            format!("the amount is zero: {call} a positive amount (e.g. --amount 0.5)")
        }
        E::StakeWrongValue(e) => format!(
            "the transaction sent {} but the stake needs exactly {} (the amount in an ETH market, 0 in a token market); stake with `stp provider stake`, which sends the right value",
            eth(&e.sent),
            eth(&e.expected)
        ),
        E::StakeAmountTooLarge(e) => format!(
            "{} does not fit the stake accounting (at most 2^96-1 wei for a provider, 2^112-1 for the whole market): stake less",
            a(&e.amount)
        ),
        E::StakeBelowMinimum(e) if call == "unstake" => format!(
            "the stake left after unstaking, {}, would be below the market minimum {}: unstake everything free or leave at least the minimum",
            a(&e.staked),
            a(&e.minimum)
        ),
        E::StakeBelowMinimum(e) => format!(
            "stake {} is below the market minimum {}; stake more with `stp provider stake --amount <ETH>`",
            a(&e.staked),
            a(&e.minimum)
        ),
        E::StakeInsufficient(e) if call == "unstake" && e.available.is_zero() => format!(
            "no stake of this account is free (none staked, or all of it locked as collateral of live jobs) but {} was asked for: see `stp provider status`",
            a(&e.required)
        ),
        E::StakeInsufficient(e) if call == "unstake" => format!(
            "only {} of the stake is free (the rest is locked as collateral of live jobs) but {} was asked for: unstake at most the free stake, or wait for those jobs to settle",
            a(&e.available),
            a(&e.required)
        ),
        E::StakeInsufficient(e) => format!(
            "free stake {} does not cover the job's collateral {}: stake more with `stp provider stake --amount <ETH>` or wait for jobs to settle",
            a(&e.available),
            a(&e.required)
        ),
        E::StakeReputationTooLow(e) => format!(
            "reputation score {} is below the {} the job requires: this provider cannot take it",
            e.score, e.required
        ),
        E::StakeParameterOutOfRange(e) => parameter(&text_of(&e.name), &e.value, unit),
        E::EscrowBatchSize(e) => format!(
            "a postJobs batch holds {} specs: it must hold 1 to {}; split it into smaller batches",
            e.length, e.maximum
        ),
        E::EscrowBatchSpecInvalid(e) => match E::abi_decode(&e.reason) {
            Ok(inner) => format!(
                "spec {} of the batch is refused, so no job of it was posted: ({}) {}",
                e.index,
                name(&inner),
                sentence(call, &inner, unit)
            ),
            Err(_) => format!(
                "spec {} of the batch is refused (reason 0x{}), so no job of it was posted",
                e.index,
                alloy::primitives::hex::encode(&e.reason)
            ),
        },
        E::ReentrancyGuardReentrantCall(_) => {
            "the market was called again from inside one of its own calls (a contract receiving its ETH called back): call it from a plain account".to_string()
        }
        E::SafeERC20FailedOperation(e) => format!(
            "the token {} refused the transfer: check the wallet's token balance and its allowance to the market",
            e.token
        ),
    }
}

/// `EscrowInvalidSpec(reason)`: the field of the job spec and the rule it broke.
fn invalid_spec(reason: &str) -> String {
    let rule = match reason {
        "consumer" => {
            "the spec's consumer must be the wallet that posts it (`stp job post` sets it)"
                .to_string()
        }
        "bounty" => "the bounty is zero: pass --bounty greater than 0".to_string(),
        "replicas" => format!(
            "replicas must be between 1 and the market's maxReplicas (`stp market info` shows it; 16 on a devnet, never more than {MAX_REPLICAS_LIMIT}): pass a smaller --replicas"
        ),
        "quorum" => {
            "the quorum must be the strict majority of the replicas, replicas / 2 + 1".to_string()
        }
        "inputLocation" => format!(
            "the input location is longer than {MAX_INPUT_LOCATION} bytes: listen on fewer addresses"
        ),
        "minReputation" => {
            "--min-reputation must be at most 65535 (reputation scores are 16-bit)".to_string()
        }
        "encoding" => "the post call is not canonically ABI-encoded: post with `stp job post` or the SDK's post_job / post_jobs".to_string(),
        other => format!("its field {other:?} is out of range"),
    };
    format!("the job spec is invalid: {rule}")
}

/// `EscrowParameterOutOfRange` / `StakeParameterOutOfRange`: a deploy or call parameter and
/// its allowed range.
fn parameter(name: &str, value: &U256, unit: AmountUnit) -> String {
    let range = match name {
        "asset" => "is not a contract: pass the zero address for ETH or an ERC-20's address".into(),
        "slashBps" => "must be 1 to 10000 basis points".into(),
        "minStake" => format!(
            "({} {unit}) must be at least 1 wei and at most 2^96-1 wei",
            format_amount(*value)
        ),
        "maxReplicas" => format!("must be 1 to {MAX_REPLICAS_LIMIT}"),
        "minCommitWindow" | "minRevealWindow" => "must be at least 1 s".into(),
        "maxHorizon" => format!(
            "must be at least minCommitWindow + minRevealWindow and at most {MAX_HORIZON_LIMIT} s (365 days)"
        ),
        "lane" => "is out of range: lanes are numbered below 2^96".into(),
        "lanes" => format!("is too many: at most {MAX_OPEN_LANES} lanes open at once"),
        "draw" => "does not fit 64 bits (postBlock << 32 | postedAt)".into(),
        "block" => "is beyond 2^32: this market can take no more jobs".into(),
        _ => "is out of range".into(),
    };
    format!("{name} = {value} {range}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::JobEscrow;
    use crate::market::MarketError;
    use alloy::primitives::{Address, FixedBytes, utils::parse_ether};

    fn eth(s: &str) -> U256 {
        parse_ether(s).unwrap()
    }

    fn word(s: &str) -> FixedBytes<32> {
        let mut w = [0u8; 32];
        w[..s.len()].copy_from_slice(s.as_bytes());
        FixedBytes(w)
    }

    fn reverted(call: &'static str, error: E, unit: AmountUnit) -> String {
        MarketError::Reverted {
            call,
            error: Box::new(error),
            unit,
        }
        .to_string()
    }

    #[test]
    fn stake_below_minimum_is_shown_in_eth_with_the_fix() {
        let e = E::StakeBelowMinimum(JobEscrow::StakeBelowMinimum {
            staked: eth("0.01"),
            minimum: eth("1"),
        });
        assert_eq!(
            reverted("stake", e.clone(), AmountUnit::Ether),
            "stake reverted: (StakeBelowMinimum) stake 0.01 ETH is below the market minimum 1 ETH; stake more with `stp provider stake --amount <ETH>`"
        );
        let left = reverted("unstake", e, AmountUnit::Token);
        assert!(
            left.contains("the stake left after unstaking, 0.01 tokens, would be below the market minimum 1 tokens"),
            "{left}"
        );
        assert!(!left.contains("10000000000000000"), "{left}");
    }

    #[test]
    fn invalid_spec_reasons_are_text_with_their_limits() {
        let spec = |r: &str| {
            reverted(
                "postJob",
                E::EscrowInvalidSpec(JobEscrow::EscrowInvalidSpec { reason: word(r) }),
                AmountUnit::Ether,
            )
        };
        let bounty = spec("bounty");
        assert!(
            bounty.contains("the bounty is zero: pass --bounty"),
            "{bounty}"
        );
        assert!(!bounty.contains("0x626f756e7479"), "{bounty}");
        let replicas = spec("replicas");
        assert!(replicas.contains("maxReplicas"), "{replicas}");
        assert!(replicas.contains("16"), "{replicas}");
        assert!(spec("quorum").contains("replicas / 2 + 1"));
        assert!(spec("inputLocation").contains("256 bytes"));
        assert!(spec("minReputation").contains("65535"));
        assert!(spec("consumer").contains("the wallet that posts it"));
        assert!(spec("encoding").contains("canonically ABI-encoded"));
    }

    #[test]
    fn bytes32_reasons_decode_to_text_and_non_text_stays_hex() {
        assert_eq!(text_of(&word("bounty")), "bounty");
        assert_eq!(text_of(&word("")), "");
        let binary = B256::repeat_byte(0xff);
        assert_eq!(text_of(&binary), binary.to_string());
    }

    #[test]
    fn every_amount_of_every_error_is_in_units_not_wei() {
        let wei = eth("1.5");
        let a = Address::repeat_byte(0x11);
        let cases = [
            E::EscrowWrongValue(JobEscrow::EscrowWrongValue {
                sent: wei,
                expected: U256::ZERO,
            }),
            E::EscrowTokenNotExact(JobEscrow::EscrowTokenNotExact {
                expected: wei,
                actual: U256::ZERO,
            }),
            E::EscrowInsufficientBalance(JobEscrow::EscrowInsufficientBalance {
                balance: U256::ZERO,
                requested: wei,
            }),
            E::EscrowEtherTransferFailed(JobEscrow::EscrowEtherTransferFailed {
                to: a,
                amount: wei,
            }),
            E::StakeWrongValue(JobEscrow::StakeWrongValue {
                sent: wei,
                expected: U256::ZERO,
            }),
            E::StakeAmountTooLarge(JobEscrow::StakeAmountTooLarge { amount: wei }),
            E::StakeBelowMinimum(JobEscrow::StakeBelowMinimum {
                staked: U256::ZERO,
                minimum: wei,
            }),
            E::StakeInsufficient(JobEscrow::StakeInsufficient {
                available: U256::ZERO,
                required: wei,
            }),
        ];
        for e in cases {
            for call in ["stake", "unstake", "commit", "withdraw"] {
                let text = describe_revert(call, &e, AmountUnit::Ether);
                assert!(text.contains("1.5 ETH"), "{text}");
                assert!(!text.contains("1500000000000000000"), "{text}");
            }
        }
    }

    #[test]
    fn every_error_has_its_own_sentence() {
        let a = Address::repeat_byte(0x11);
        let n = U256::from(7);
        let all = [
            E::EscrowJobNotFound(JobEscrow::EscrowJobNotFound { jobId: n }),
            E::EscrowWindowTooShort(JobEscrow::EscrowWindowTooShort {
                window: word("reveal"),
                length: n,
                minimum: U256::from(10),
            }),
            E::EscrowDeadlineTooFar(JobEscrow::EscrowDeadlineTooFar {
                deadline: n,
                latest: n,
            }),
            E::EscrowCommitClosed(JobEscrow::EscrowCommitClosed {
                jobId: n,
                deadline: n,
            }),
            E::EscrowJobFull(JobEscrow::EscrowJobFull { jobId: n }),
            E::EscrowDrawNotFixed(JobEscrow::EscrowDrawNotFixed { jobId: n }),
            E::EscrowDrawExpired(JobEscrow::EscrowDrawExpired {
                jobId: n,
                postBlock: n,
            }),
            E::EscrowNotDrawn(JobEscrow::EscrowNotDrawn {
                jobId: n,
                provider: a,
                eligibleFrom: U256::ZERO,
            }),
            E::EscrowStakeTooNew(JobEscrow::EscrowStakeTooNew {
                jobId: n,
                bondedAt: n,
                postBlock: n,
            }),
            E::EscrowLaneBusy(JobEscrow::EscrowLaneBusy {
                provider: a,
                lane: n,
                busyJobId: n,
            }),
            E::EscrowWrongReplicaStatus(JobEscrow::EscrowWrongReplicaStatus {
                jobId: n,
                provider: a,
                status: 1,
            }),
            E::EscrowRevealNotOpen(JobEscrow::EscrowRevealNotOpen {
                jobId: n,
                committed: n,
                replicas: n,
            }),
            E::EscrowRevealClosed(JobEscrow::EscrowRevealClosed {
                jobId: n,
                deadline: n,
            }),
            E::EscrowJobUnfilled(JobEscrow::EscrowJobUnfilled { jobId: n }),
            E::EscrowCommitmentMismatch(JobEscrow::EscrowCommitmentMismatch {
                jobId: n,
                provider: a,
            }),
            E::EscrowNotFinalizable(JobEscrow::EscrowNotFinalizable {
                jobId: n,
                notBefore: n,
            }),
            E::EscrowWrongReplicaSet(JobEscrow::EscrowWrongReplicaSet {
                jobId: n,
                given: n,
                expected: n,
            }),
            E::EscrowNotReplica(JobEscrow::EscrowNotReplica {
                jobId: n,
                provider: a,
                lane: n,
            }),
            E::EscrowNotQuorumResult(JobEscrow::EscrowNotQuorumResult {
                jobId: n,
                resultHash: B256::repeat_byte(0xab),
            }),
            E::EscrowNothingToWithdraw(JobEscrow::EscrowNothingToWithdraw {}),
            E::EscrowParameterOutOfRange(JobEscrow::EscrowParameterOutOfRange {
                name: word("lanes"),
                value: U256::from(300),
            }),
            E::StakeZeroAmount(JobEscrow::StakeZeroAmount {}),
            E::StakeReputationTooLow(JobEscrow::StakeReputationTooLow {
                score: n,
                required: n,
            }),
            E::StakeParameterOutOfRange(JobEscrow::StakeParameterOutOfRange {
                name: word("slashBps"),
                value: U256::ZERO,
            }),
            E::ReentrancyGuardReentrantCall(JobEscrow::ReentrancyGuardReentrantCall {}),
            E::SafeERC20FailedOperation(JobEscrow::SafeERC20FailedOperation { token: a }),
            E::EscrowBatchSize(JobEscrow::EscrowBatchSize {
                length: U256::from(300),
                maximum: U256::from(256),
            }),
            E::EscrowBatchSpecInvalid(JobEscrow::EscrowBatchSpecInvalid {
                index: U256::from(3),
                reason: JobEscrow::EscrowInvalidSpec {
                    reason: word("bounty"),
                }
                .abi_encode()
                .into(),
            }),
        ];
        let mut seen = std::collections::HashSet::new();
        for e in &all {
            let text = sentence("commit", e, AmountUnit::Ether);
            assert!(!text.contains("000000000000"), "raw bytes32 in {text}");
            assert!(seen.insert(text.clone()), "two errors read alike: {text}");
            assert!(
                describe_revert("commit", e, AmountUnit::Ether)
                    .starts_with(&format!("({}) ", name(e)))
            );
        }
        let window = describe_revert("postJob", &all[1], AmountUnit::Ether);
        assert!(window.contains("--reveal-secs at least 10"), "{window}");
        let batch = describe_revert("postJobs", &all[all.len() - 1], AmountUnit::Ether);
        assert!(
            batch.contains("spec 3 of the batch is refused")
                && batch
                    .contains("(EscrowInvalidSpec) the job spec is invalid: the bounty is zero"),
            "{batch}"
        );
        let lanes = describe_revert("openAccount", &all[20], AmountUnit::Ether);
        assert!(
            lanes.contains("lanes = 300 is too many: at most 256"),
            "{lanes}"
        );
    }
}
