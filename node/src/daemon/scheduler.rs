//! Is this job for me? Pure decisions on a job's spec and the provider's situation, so
//! they can be tested without a chain.

use alloy::primitives::U256;
use stp_sdk::market::{JobSpec, JobSpecExt, Reputation, StakeInfo};

/// Why the scheduler passed on a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// The bounty share per replica is below the provider's price floor.
    BelowPriceFloor {
        /// Share per replica.
        share: U256,
        /// The floor.
        floor: U256,
    },
    /// Free stake does not cover the job's collateral.
    NotEnoughFreeStake {
        /// Free stake.
        free: U256,
        /// Needed.
        collateral: U256,
    },
    /// Total stake is below the market minimum.
    BelowMinStake,
    /// The job requires more reputation than the provider has.
    ReputationTooLow,
    /// The claim deadline has passed.
    ClaimClosed,
    /// Too many jobs in flight already.
    AtCapacity,
}

/// What the scheduler knows about the provider when a job shows up.
#[derive(Debug, Clone, Copy)]
pub struct ProviderView {
    /// Current stake.
    pub stake: StakeInfo,
    /// Current reputation.
    pub reputation: Reputation,
    /// Market minimum stake.
    pub min_stake: U256,
    /// Smallest acceptable bounty share per replica.
    pub price_floor: U256,
    /// Jobs in flight now.
    pub in_flight: usize,
    /// Most jobs in flight at once.
    pub max_concurrent: usize,
    /// Chain time now.
    pub now: u64,
}

/// Decides whether to claim `spec`.
pub fn consider(spec: &JobSpec, view: &ProviderView) -> Result<(), Skip> {
    if spec.claim_deadline() < view.now {
        return Err(Skip::ClaimClosed);
    }
    if view.in_flight >= view.max_concurrent {
        return Err(Skip::AtCapacity);
    }
    let share = spec.bounty_amount() / U256::from(spec.replicas.max(1));
    if share < view.price_floor {
        return Err(Skip::BelowPriceFloor {
            share,
            floor: view.price_floor,
        });
    }
    if view.stake.staked < view.min_stake {
        return Err(Skip::BelowMinStake);
    }
    let free = view.stake.staked.saturating_sub(view.stake.locked);
    let collateral = spec.collateral_amount();
    if free < collateral {
        return Err(Skip::NotEnoughFreeStake { free, collateral });
    }
    if view.reputation.score < u64::from(spec.minReputation) {
        return Err(Skip::ReputationTooLow);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{B256, Bytes};

    fn spec(bounty: u64, replicas: u8, collateral: u64, claim_deadline: u64) -> JobSpec {
        JobSpec {
            consumer: Default::default(),
            kernelId: B256::ZERO,
            inputHash: B256::ZERO,
            inputSize: 0,
            maxOutputSize: 0,
            bounty: alloy::primitives::Uint::from(bounty),
            collateral: alloy::primitives::Uint::from(collateral),
            replicas,
            quorum: replicas,
            minReputation: 0,
            claimDeadline: alloy::primitives::Uint::from(claim_deadline),
            commitDeadline: alloy::primitives::Uint::from(claim_deadline + 10),
            revealDeadline: alloy::primitives::Uint::from(claim_deadline + 20),
            inputLocation: Bytes::new(),
        }
    }

    fn view() -> ProviderView {
        ProviderView {
            stake: StakeInfo {
                staked: U256::from(1000),
                locked: U256::from(400),
                unbonding: U256::ZERO,
                release_at: 0,
            },
            reputation: Reputation {
                completed: 0,
                slashed: 0,
                missed: 0,
                score: 10,
            },
            min_stake: U256::from(100),
            price_floor: U256::from(50),
            in_flight: 0,
            max_concurrent: 2,
            now: 100,
        }
    }

    #[test]
    fn takes_a_paying_job_it_can_cover() {
        assert_eq!(consider(&spec(300, 3, 600, 150), &view()), Ok(()));
    }

    #[test]
    fn skips_share_below_floor() {
        let err = consider(&spec(120, 3, 10, 150), &view()).unwrap_err();
        assert_eq!(
            err,
            Skip::BelowPriceFloor {
                share: U256::from(40),
                floor: U256::from(50)
            }
        );
    }

    #[test]
    fn skips_when_collateral_exceeds_free_stake() {
        let err = consider(&spec(300, 1, 601, 150), &view()).unwrap_err();
        assert_eq!(
            err,
            Skip::NotEnoughFreeStake {
                free: U256::from(600),
                collateral: U256::from(601)
            }
        );
    }

    #[test]
    fn skips_closed_full_capacity_and_low_reputation() {
        assert_eq!(
            consider(&spec(300, 1, 1, 99), &view()),
            Err(Skip::ClaimClosed)
        );
        let busy = ProviderView {
            in_flight: 2,
            ..view()
        };
        assert_eq!(
            consider(&spec(300, 1, 1, 150), &busy),
            Err(Skip::AtCapacity)
        );
        let mut demanding = spec(300, 1, 1, 150);
        demanding.minReputation = 11;
        assert_eq!(consider(&demanding, &view()), Err(Skip::ReputationTooLow));
    }
}
