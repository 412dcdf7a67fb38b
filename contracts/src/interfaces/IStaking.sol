// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title ShareThePower provider staking and reputation (part of the market's JobEscrow)
/// @notice Providers stake the market's asset (native ETH or one exact-transfer ERC-20, fixed
/// at deploy). Stake is `free` or `locked` (collateral of jobs the provider committed to).
/// Stake weighs in the draw of each job's replicas (see IJobEscrow): a provider's chance to
/// be eligible is proportional to its share of all bonded stake, counted only if it was
/// bonded before the job was posted.
///
/// Unstaking (v2): there is no unbonding delay. Only collateral is ever slashable, and
/// collateral stays locked, so slashable, until the job it was locked for settles; free
/// stake can be taken out at once with `unstake`. (A delay on free stake would add no
/// security: nothing but job collateral is ever slashed.) Only the escrow's own job rules
/// lock, release or slash collateral and write reputation: there is no admin.
interface IStaking {
    /// @notice How a replica's collateral was settled when its job ended.
    /// @dev Released: unlocked, no reputation change (job unfilled, or no quorum but
    /// revealed). Completed: unlocked, paid its bounty share, `completed` + 1 if it was drawn
    /// at the base rate (see IJobEscrow). Slashed: revealed a losing result; `slashBps` of the
    /// collateral is burned, the rest unlocked, `slashed` + 1. Missed: committed but never
    /// revealed, or held two slots of one job; slashed like `Slashed`, `missed` + 1.
    enum Settlement {
        Released,
        Completed,
        Slashed,
        Missed
    }

    /// @notice The amount must be greater than zero.
    error StakeZeroAmount();
    /// @notice msg.value must equal the amount in ETH mode and be zero in ERC-20 mode.
    error StakeWrongValue(uint256 sent, uint256 expected);
    /// @notice The amount does not fit the stake accounting (96 bits a provider, 112 bits the
    /// market's total).
    error StakeAmountTooLarge(uint256 amount);
    /// @notice The provider's stake is below the market's minimum.
    error StakeBelowMinimum(uint256 staked, uint256 minimum);
    /// @notice Not enough free stake: `available` is free, `required` was asked for.
    error StakeInsufficient(uint256 available, uint256 required);
    /// @notice The provider's reputation score is below what the job requires.
    error StakeReputationTooLow(uint256 score, uint256 required);
    /// @notice A deploy parameter is outside its allowed range.
    error StakeParameterOutOfRange(bytes32 name, uint256 value);

    /// @notice `provider` added `amount`; its bonded stake is now `staked`, bonded in block
    /// `bondedAt`: it is in the draw of jobs posted in later blocks.
    event Staked(address indexed provider, uint256 amount, uint256 staked, uint256 bondedAt);
    /// @notice `provider` took `amount` of free stake out to its wallet; `staked` is left.
    event Unstaked(address indexed provider, uint256 amount, uint256 staked);

    /// @notice Bonded stake and locked collateral of `provider`.
    /// @return staked Bonded stake (includes `locked`).
    /// @return locked Collateral of committed, unsettled jobs.
    /// @return bondedAt The block in which its stake last grew: it is drawn only for jobs
    /// posted in later blocks.
    function stakeOf(address provider)
        external
        view
        returns (uint256 staked, uint256 locked, uint256 bondedAt);

    /// @notice All bonded stake of the market (what a post takes as its draw's denominator,
    /// as its block found it); at most 2^112 - 1.
    function totalStake() external view returns (uint256);

    /// @notice Reputation counters and score of `provider`.
    /// @return completed Jobs it won as a replica it was drawn for at the base rate.
    /// @return slashed Jobs in which it revealed a losing result.
    /// @return missed Jobs in which it committed but never revealed.
    /// @return score `completed - 3 * slashed - missed`, floored at zero.
    function reputationOf(address provider)
        external
        view
        returns (uint256 completed, uint256 slashed, uint256 missed, uint256 score);

    /// @notice Adds `amount` to the caller's bonded stake. ETH mode: send exactly `amount`
    /// as msg.value. ERC-20 mode: approve the escrow first; the token must move exactly
    /// `amount`. The resulting stake must be at least `minStake`.
    function stake(uint256 amount) external payable;

    /// @notice Sends `amount` of the caller's free (unlocked) stake to it now. What is left
    /// must be zero or at least `minStake`.
    function unstake(uint256 amount) external;

    /// @notice Minimum bonded stake to stake and to commit to jobs.
    function minStake() external view returns (uint256);
}
