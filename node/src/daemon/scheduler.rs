//! Is this job for me? Pure decisions on a job's spec and the provider's situation, so
//! they can be tested without a chain. Besides "can I and does it pay", the scheduler
//! refuses what no honest operator would accept: collateral out of proportion to the
//! bounty, and windows this node cannot meet (its fetch estimate and the chain's block
//! time). Whether the job's draw picks this node is asked of the chain afterwards.

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
    /// The commit deadline has passed.
    CommitClosed,
    /// The collateral is out of proportion to the bounty share (or above the cap).
    CollateralTooHigh {
        /// The job's collateral per replica.
        collateral: U256,
        /// The most this node accepts for the job's share.
        limit: U256,
    },
    /// A window is too short for this node to meet.
    WindowTooShort {
        /// `commit` (time left to fetch, run and commit) or `reveal`.
        window: &'static str,
        /// Seconds the job gives.
        secs: u64,
        /// Seconds this node needs.
        needed: u64,
    },
    /// Too many jobs in flight already.
    AtCapacity,
    /// The input or the output bound exceeds what this node's executor accepts.
    TooLarge {
        /// The job's input size.
        input: u64,
        /// The job's output bound.
        output: u64,
    },
    /// Now is outside the hours the provider shares its GPU.
    OutsideSchedule,
}

impl Skip {
    /// The metric label of the reason (`stp_jobs_refused_total{reason}`).
    pub fn label(&self) -> &'static str {
        match self {
            Self::BelowPriceFloor { .. } => "below_price_floor",
            Self::NotEnoughFreeStake { .. } => "not_enough_free_stake",
            Self::BelowMinStake => "below_min_stake",
            Self::ReputationTooLow => "reputation_too_low",
            Self::CommitClosed => "commit_closed",
            Self::CollateralTooHigh { .. } => "collateral_too_high",
            Self::WindowTooShort { .. } => "window_too_short",
            Self::AtCapacity => "at_capacity",
            Self::TooLarge { .. } => "too_large",
            Self::OutsideSchedule => "outside_schedule",
        }
    }
}

/// Seconds kept in hand before the commit deadline for the commit transaction itself.
pub const COMMIT_MARGIN_SECS: u64 = 3;
/// Input bytes per second assumed for the fetch when judging a commit window.
const ASSUMED_FETCH_RATE: u64 = 10 << 20;

/// What this node accepts as collateral: at most `ratio` times the bounty share per
/// replica, and never more than `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollateralPolicy {
    /// Most collateral per unit of bounty share.
    pub ratio: u64,
    /// Most collateral per job, whatever the bounty.
    pub cap: U256,
}

impl CollateralPolicy {
    /// `stp provider run`'s default `--max-collateral-ratio`.
    pub const DEFAULT_RATIO: u64 = 20;
    /// `stp provider run`'s default `--max-collateral`, in ETH or token units.
    pub const DEFAULT_CAP: &str = "1";

    /// The policy of a provider node run with the default flags.
    pub fn default_flags() -> Self {
        Self {
            ratio: Self::DEFAULT_RATIO,
            cap: alloy::primitives::utils::parse_ether(Self::DEFAULT_CAP).expect("constant parses"),
        }
    }

    /// The most collateral accepted for a job paying `share` per replica.
    pub fn limit(&self, share: U256) -> U256 {
        share.saturating_mul(U256::from(self.ratio)).min(self.cap)
    }
}

/// When the provider shares its GPU: daily windows in UTC, e.g. `22:00-07:00,12:00-13:00`
/// (a window may wrap past midnight). Empty: always.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule {
    /// (start, end) in minutes after midnight UTC; end exclusive, may be < start.
    windows: Vec<(u32, u32)>,
}

impl Schedule {
    /// Whether unix time `now` falls inside a window.
    pub fn is_open(&self, now: u64) -> bool {
        if self.windows.is_empty() {
            return true;
        }
        let minute = u32::try_from(now % 86_400 / 60).unwrap_or(0);
        self.windows.iter().any(|&(start, end)| {
            if start <= end {
                (start..end).contains(&minute)
            } else {
                minute >= start || minute < end
            }
        })
    }
}

impl std::str::FromStr for Schedule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let minutes = |hm: &str| -> Result<u32, String> {
            let (h, m) = hm
                .trim()
                .split_once(':')
                .ok_or_else(|| format!("`{hm}` is not HH:MM"))?;
            let (h, m): (u32, u32) = (
                h.parse().map_err(|_| format!("bad hour in `{hm}`"))?,
                m.parse().map_err(|_| format!("bad minute in `{hm}`"))?,
            );
            if h > 24 || m > 59 || (h == 24 && m > 0) {
                return Err(format!("`{hm}` is not a time of day"));
            }
            Ok(h * 60 + m)
        };
        let mut windows = Vec::new();
        for w in s.split(',').filter(|w| !w.trim().is_empty()) {
            let (a, b) = w
                .split_once('-')
                .ok_or_else(|| format!("`{w}` is not a window like 22:00-07:00"))?;
            windows.push((minutes(a)?, minutes(b)?));
        }
        Ok(Self { windows })
    }
}

/// What the scheduler knows about the provider when a job shows up.
#[derive(Debug, Clone)]
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
    /// Largest input the executor accepts (bytes).
    pub max_input_bytes: u64,
    /// Largest output the executor accepts (bytes).
    pub max_output_bytes: u64,
    /// When the GPU is shared.
    pub schedule: Schedule,
    /// What collateral is acceptable.
    pub collateral: CollateralPolicy,
    /// The chain's block time estimate (seconds).
    pub block_time: u64,
}

/// Seconds this node needs between now and the commit deadline: fetch the input (at an
/// assumed rate), run the kernel (at least a second), and get the commit mined.
pub fn commit_window_needed(input_size: u64, block_time: u64) -> u64 {
    COMMIT_MARGIN_SECS + 1 + input_size.div_ceil(ASSUMED_FETCH_RATE) + 2 * block_time
}

/// Seconds this node needs between the commit deadline and the reveal deadline to get a
/// reveal mined.
fn reveal_window_needed(block_time: u64) -> u64 {
    2 + 3 * block_time
}

/// Decides whether to work on `spec`.
pub fn consider(spec: &JobSpec, view: &ProviderView) -> Result<(), Skip> {
    if spec.commit_deadline() < view.now {
        return Err(Skip::CommitClosed);
    }
    if view.in_flight >= view.max_concurrent {
        return Err(Skip::AtCapacity);
    }
    if !view.schedule.is_open(view.now) {
        return Err(Skip::OutsideSchedule);
    }
    if spec.inputSize > view.max_input_bytes || spec.maxOutputSize > view.max_output_bytes {
        return Err(Skip::TooLarge {
            input: spec.inputSize,
            output: spec.maxOutputSize,
        });
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
    let limit = view.collateral.limit(share);
    if collateral > limit {
        return Err(Skip::CollateralTooHigh { collateral, limit });
    }
    check_windows(spec, view)
}

fn check_windows(spec: &JobSpec, view: &ProviderView) -> Result<(), Skip> {
    let left = spec.commit_deadline().saturating_sub(view.now);
    let needed = commit_window_needed(spec.inputSize, view.block_time);
    if left < needed {
        return Err(Skip::WindowTooShort {
            window: "commit",
            secs: left,
            needed,
        });
    }
    let reveal = spec
        .reveal_deadline()
        .saturating_sub(spec.commit_deadline());
    let needed = reveal_window_needed(view.block_time);
    if reveal < needed {
        return Err(Skip::WindowTooShort {
            window: "reveal",
            secs: reveal,
            needed,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{B256, Bytes};

    fn spec(bounty: u64, replicas: u8, collateral: u64, commit_deadline: u64) -> JobSpec {
        JobSpec {
            consumer: Default::default(),
            kernelId: B256::ZERO,
            inputHash: B256::ZERO,
            inputSize: 0,
            maxOutputSize: 0,
            bounty: alloy::primitives::Uint::from(bounty),
            collateral: alloy::primitives::Uint::from(collateral),
            replicas,
            quorum: replicas / 2 + 1,
            minReputation: 0,
            commitDeadline: alloy::primitives::Uint::from(commit_deadline),
            revealDeadline: alloy::primitives::Uint::from(commit_deadline + 20),
            inputLocation: Bytes::new(),
        }
    }

    fn view() -> ProviderView {
        ProviderView {
            stake: StakeInfo {
                staked: U256::from(1000),
                locked: U256::from(400),
                bonded_at: 0,
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
            max_input_bytes: 1000,
            max_output_bytes: 1000,
            schedule: Schedule::default(),
            collateral: CollateralPolicy {
                ratio: 10,
                cap: U256::from(10_000),
            },
            block_time: 1,
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
    fn refuses_collateral_out_of_proportion_to_the_bounty() {
        // Share 100 at ratio 10: up to 1000 is fine, 1001 is not.
        assert_eq!(consider(&spec(300, 3, 600, 150), &view()), Ok(()));
        let v = ProviderView {
            stake: StakeInfo {
                staked: U256::from(100_000),
                locked: U256::ZERO,
                bonded_at: 0,
            },
            price_floor: U256::ZERO,
            ..view()
        };
        assert_eq!(consider(&spec(300, 3, 1000, 150), &v), Ok(()));
        assert_eq!(
            consider(&spec(300, 3, 1001, 150), &v),
            Err(Skip::CollateralTooHigh {
                collateral: U256::from(1001),
                limit: U256::from(1000)
            })
        );
        // The griefing job: a dust bounty against a large collateral.
        let dust = consider(&spec(3, 3, 900, 150), &v).unwrap_err();
        assert_eq!(dust.label(), "collateral_too_high");
        // The cap holds whatever the bounty.
        let capped = consider(&spec(30_000, 1, 10_001, 150), &v).unwrap_err();
        assert!(
            matches!(capped, Skip::CollateralTooHigh { limit, .. } if limit == U256::from(10_000))
        );
    }

    #[test]
    fn refuses_windows_it_cannot_meet() {
        // now 100, block time 1: the commit needs 3 + 1 + 0 + 2 = 6 s, the reveal 5 s.
        assert_eq!(consider(&spec(300, 3, 600, 106), &view()), Ok(()));
        assert_eq!(
            consider(&spec(300, 3, 600, 105), &view()),
            Err(Skip::WindowTooShort {
                window: "commit",
                secs: 5,
                needed: 6
            })
        );
        let mut tight = spec(300, 3, 600, 150);
        tight.revealDeadline = alloy::primitives::Uint::from(151u64);
        assert_eq!(
            consider(&tight, &view()),
            Err(Skip::WindowTooShort {
                window: "reveal",
                secs: 1,
                needed: 5
            })
        );
        // 12 s blocks need far more.
        let slow = ProviderView {
            block_time: 12,
            ..view()
        };
        assert!(matches!(
            consider(&spec(300, 3, 600, 120), &slow),
            Err(Skip::WindowTooShort {
                window: "commit",
                ..
            })
        ));
        // A large input needs time to arrive: 100 MiB at 10 MiB/s.
        let mut big = spec(300, 3, 600, 112);
        big.inputSize = 100 << 20;
        let roomy = ProviderView {
            max_input_bytes: u64::MAX,
            ..view()
        };
        assert!(matches!(
            consider(&big, &roomy),
            Err(Skip::WindowTooShort {
                window: "commit",
                needed: 16,
                ..
            })
        ));
    }

    #[test]
    fn skips_closed_full_capacity_and_low_reputation() {
        assert_eq!(
            consider(&spec(300, 1, 1, 99), &view()),
            Err(Skip::CommitClosed)
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

    #[test]
    fn skips_jobs_too_large_for_the_executor() {
        let mut big = spec(300, 1, 1, 150);
        big.inputSize = 1001;
        assert_eq!(
            consider(&big, &view()),
            Err(Skip::TooLarge {
                input: 1001,
                output: 0
            })
        );
        big.inputSize = 10;
        big.maxOutputSize = 1001;
        assert!(matches!(
            consider(&big, &view()),
            Err(Skip::TooLarge { .. })
        ));
    }

    #[test]
    fn schedule_windows_wrap_midnight_and_gate_claims() {
        let night: Schedule = "22:00-07:00, 12:00-13:00".parse().unwrap();
        let at = |h: u64, m: u64| 19_000 * 86_400 + h * 3600 + m * 60;
        assert!(night.is_open(at(23, 0)));
        assert!(night.is_open(at(6, 59)));
        assert!(!night.is_open(at(7, 0)));
        assert!(night.is_open(at(12, 30)));
        assert!(!night.is_open(at(13, 0)));
        assert!(!night.is_open(at(21, 59)));
        assert!(Schedule::default().is_open(at(15, 0)));
        for bad in ["22:00", "25:00-01:00", "10:60-11:00", "ab:cd-01:00"] {
            assert!(bad.parse::<Schedule>().is_err(), "{bad}");
        }
        let closed = ProviderView {
            now: at(15, 0),
            schedule: night,
            ..view()
        };
        assert_eq!(
            consider(&spec(300, 1, 1, at(16, 0)), &closed),
            Err(Skip::OutsideSchedule)
        );
    }
}
