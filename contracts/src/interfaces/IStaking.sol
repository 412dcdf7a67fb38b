// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title ShareThePower provider staking and reputation (part of the market's JobEscrow)
/// @notice Providers stake the market's asset (native ETH or one ERC-20, fixed at deploy).
/// Stake is `free` (usable as job collateral), `locked` (collateral of claimed jobs) or
/// `unbonding` (requested out; withdrawable after the unbonding delay). Only the escrow's own
/// job rules lock, release or slash collateral and write reputation: there is no other
/// caller and no admin. Collateral locked in a job stays locked and slashable until that job
/// settles, whether or not its owner has started unbonding: unbonding only takes free stake.
interface IStaking {
    /// @notice How a replica's collateral was settled when its job ended.
    /// @dev Released: unlocked, no reputation change (job unfilled, or no quorum but
    /// revealed). Completed: unlocked, paid its bounty share, `completed` + 1. Slashed:
    /// revealed a losing result; `slashBps` of the collateral is taken, the rest unlocked,
    /// `slashed` + 1. Missed: never committed or revealed; slashed like `Slashed`, `missed` + 1.
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
    /// @notice The amount does not fit the 96-bit stake accounting.
    error StakeAmountTooLarge(uint256 amount);
    /// @notice The provider's stake is below the market's minimum.
    error StakeBelowMinimum(uint256 staked, uint256 minimum);
    /// @notice Not enough free stake: `available` is free, `required` was asked for.
    error StakeInsufficient(uint256 available, uint256 required);
    /// @notice The provider's reputation score is below what the job requires.
    error StakeReputationTooLow(uint256 score, uint256 required);
    /// @notice The unbonding delay has not passed yet.
    error StakeStillUnbonding(uint256 releaseAt, uint256 nowTime);
    /// @notice There is no unbonding stake to withdraw.
    error StakeNothingUnbonding();
    /// @notice A deploy parameter is outside its allowed range.
    error StakeParameterOutOfRange(bytes32 name, uint256 value);
    /// @notice Sending native ETH failed.
    error StakeEtherTransferFailed(address to, uint256 amount);

    /// @notice `provider` added `amount`; its bonded stake is now `staked`.
    event Staked(address indexed provider, uint256 amount, uint256 staked);
    /// @notice `provider` moved `amount` of free stake to unbonding; `unbonding` in total,
    /// withdrawable from `releaseAt`.
    event UnstakeRequested(
        address indexed provider, uint256 amount, uint256 unbonding, uint256 releaseAt
    );
    /// @notice `provider` withdrew `amount` of unbonded stake to its wallet.
    event StakeWithdrawn(address indexed provider, uint256 amount);

    /// @notice Bonded stake, locked collateral and unbonding stake of `provider`.
    /// @return staked Bonded stake (includes `locked`, excludes `unbonding`).
    /// @return locked Collateral of claimed, unsettled jobs.
    /// @return unbonding Stake requested out, not yet withdrawn.
    /// @return releaseAt Timestamp from which `unbonding` can be withdrawn (0 if none).
    function stakeOf(address provider)
        external
        view
        returns (uint256 staked, uint256 locked, uint256 unbonding, uint256 releaseAt);

    /// @notice Reputation counters and score of `provider`.
    /// @return completed Jobs in which it was a winning replica.
    /// @return slashed Jobs in which it revealed a losing result.
    /// @return missed Jobs in which it never committed or never revealed.
    /// @return score `completed - 3 * slashed - missed`, floored at zero.
    function reputationOf(address provider)
        external
        view
        returns (uint256 completed, uint256 slashed, uint256 missed, uint256 score);

    /// @notice Adds `amount` to the caller's bonded stake. ETH mode: send exactly `amount`
    /// as msg.value. ERC-20 mode: approve the escrow first. The resulting stake must be at
    /// least `minStake`.
    function stake(uint256 amount) external payable;

    /// @notice Moves `amount` of the caller's free stake to unbonding and restarts the
    /// unbonding clock for everything unbonding.
    function requestUnstake(uint256 amount) external;

    /// @notice Sends all of the caller's unbonding stake to it once the delay has passed.
    function withdrawStake() external;

    /// @notice Seconds between requestUnstake and withdrawStake.
    function unbondingDelay() external view returns (uint256);
    /// @notice Minimum bonded stake to stake and to claim jobs.
    function minStake() external view returns (uint256);
}
