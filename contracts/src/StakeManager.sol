// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IStakeManager} from "./interfaces/IStakeManager.sol";

/// @title StakeManager
/// @notice Provider stakes and reputation of one ShareThePower market. Created by its
/// JobEscrow, which becomes the only account allowed to lock, settle and slash.
/// @dev One storage slot per provider holds stake, locked collateral and reputation
/// counters, so a claim or a settlement touches a single slot. Unbonding stake lives in a
/// second slot that only unstaking touches.
contract StakeManager is IStakeManager, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice Largest unbonding delay a market can be deployed with.
    uint256 public constant MAX_UNBONDING_DELAY = 365 days;
    uint256 private constant BPS = 10_000;

    struct Account {
        uint96 staked; // bonded stake, includes `locked`
        uint96 locked; // collateral of unsettled jobs
        uint32 completed;
        uint16 slashed;
        uint16 missed;
    }

    struct Unbonding {
        uint96 amount;
        uint40 releaseAt;
    }

    address private immutable _asset;
    address private immutable _escrow;
    uint256 private immutable _slashBps;
    uint256 private immutable _unbondingDelay;
    uint256 private immutable _minStake;

    mapping(address provider => Account) private _accounts;
    mapping(address provider => Unbonding) private _unbonding;

    /// @param asset_ address(0) for native ETH, else the ERC-20 (must be a contract).
    /// @param slashBps_ 1..10_000. @param unbondingDelay_ 1..MAX_UNBONDING_DELAY seconds.
    /// @param minStake_ > 0 and < 2^96.
    constructor(address asset_, uint256 slashBps_, uint256 unbondingDelay_, uint256 minStake_) {
        if (asset_ != address(0) && asset_.code.length == 0) {
            revert StakeParameterOutOfRange("asset", uint256(uint160(asset_)));
        }
        if (slashBps_ == 0 || slashBps_ > BPS) {
            revert StakeParameterOutOfRange("slashBps", slashBps_);
        }
        if (unbondingDelay_ == 0 || unbondingDelay_ > MAX_UNBONDING_DELAY) {
            revert StakeParameterOutOfRange("unbondingDelay", unbondingDelay_);
        }
        if (minStake_ == 0 || minStake_ > type(uint96).max) {
            revert StakeParameterOutOfRange("minStake", minStake_);
        }
        _asset = asset_;
        _escrow = msg.sender;
        _slashBps = slashBps_;
        _unbondingDelay = unbondingDelay_;
        _minStake = minStake_;
    }

    modifier onlyEscrow() {
        if (msg.sender != _escrow) revert StakeNotEscrow(msg.sender);
        _;
    }

    /// @inheritdoc IStakeManager
    function stake(uint256 amount) external payable nonReentrant {
        if (amount == 0) revert StakeZeroAmount();
        uint256 expectedValue = _asset == address(0) ? amount : 0;
        if (msg.value != expectedValue) revert StakeWrongValue(msg.value, expectedValue);
        Account storage account = _accounts[msg.sender];
        uint256 staked = account.staked + amount;
        if (staked > type(uint96).max) revert StakeAmountTooLarge(amount);
        if (staked < _minStake) revert StakeBelowMinimum(staked, _minStake);
        account.staked = uint96(staked);
        emit Staked(msg.sender, amount, staked);
        if (_asset != address(0)) {
            IERC20(_asset).safeTransferFrom(msg.sender, address(this), amount);
        }
    }

    /// @inheritdoc IStakeManager
    function requestUnstake(uint256 amount) external nonReentrant {
        if (amount == 0) revert StakeZeroAmount();
        Account storage account = _accounts[msg.sender];
        uint256 free = account.staked - account.locked;
        if (amount > free) revert StakeInsufficient(free, amount);
        Unbonding storage unbonding = _unbonding[msg.sender];
        uint256 total = unbonding.amount + amount;
        if (total > type(uint96).max) revert StakeAmountTooLarge(total);
        uint256 releaseAt = block.timestamp + _unbondingDelay;
        // amount <= free <= staked < 2^96 and total < 2^96 (checked): the casts are exact.
        account.staked -= uint96(amount);
        unbonding.amount = uint96(total);
        unbonding.releaseAt = uint40(releaseAt);
        emit UnstakeRequested(msg.sender, amount, total, releaseAt);
    }

    /// @inheritdoc IStakeManager
    function withdrawStake() external nonReentrant {
        Unbonding memory unbonding = _unbonding[msg.sender];
        if (unbonding.amount == 0) revert StakeNothingUnbonding();
        if (block.timestamp < unbonding.releaseAt) {
            revert StakeStillUnbonding(unbonding.releaseAt, block.timestamp);
        }
        delete _unbonding[msg.sender];
        emit StakeWithdrawn(msg.sender, unbonding.amount);
        if (_asset == address(0)) {
            (bool ok,) = msg.sender.call{value: unbonding.amount}("");
            if (!ok) revert StakeEtherTransferFailed(msg.sender, unbonding.amount);
        } else {
            IERC20(_asset).safeTransfer(msg.sender, unbonding.amount);
        }
    }

    /// @inheritdoc IStakeManager
    function lock(address provider, uint256 collateral, uint256 minReputation) external onlyEscrow {
        Account memory account = _accounts[provider];
        if (account.staked < _minStake) revert StakeBelowMinimum(account.staked, _minStake);
        uint256 score = _score(account);
        if (score < minReputation) revert StakeReputationTooLow(score, minReputation);
        uint256 free = account.staked - account.locked;
        if (collateral > free) revert StakeInsufficient(free, collateral);
        // locked + collateral <= staked < 2^96: the cast is exact.
        uint256 locked = account.locked + collateral;
        _accounts[provider].locked = uint96(locked);
        emit CollateralLocked(provider, collateral, locked);
    }

    /// @inheritdoc IStakeManager
    function settle(address[] calldata providers, Outcome[] calldata outcomes, uint256 collateral)
        external
        onlyEscrow
        returns (uint256 slashedTotal)
    {
        if (providers.length != outcomes.length) {
            revert StakeLengthMismatch(providers.length, outcomes.length);
        }
        uint256 penalty = collateral * _slashBps / BPS;
        for (uint256 i = 0; i < providers.length; ++i) {
            slashedTotal += _settleOne(providers[i], outcomes[i], collateral, penalty);
        }
        if (slashedTotal > 0) _sendToEscrow(slashedTotal);
    }

    function _settleOne(address provider, Outcome outcome, uint256 collateral, uint256 penalty)
        private
        returns (uint256 slashed)
    {
        Account storage account = _accounts[provider];
        // The escrow settles exactly the collateral it locked for this provider, so
        // locked >= collateral and staked >= locked >= penalty.
        account.locked -= uint96(collateral);
        if (outcome == Outcome.Completed) {
            account.completed = _inc32(account.completed);
        } else if (outcome != Outcome.Released) {
            slashed = penalty;
            account.staked -= uint96(penalty);
            if (outcome == Outcome.Slashed) account.slashed = _inc16(account.slashed);
            else account.missed = _inc16(account.missed);
        }
        emit CollateralSettled(provider, outcome, collateral, slashed);
    }

    /// @inheritdoc IStakeManager
    function stakeOf(address provider)
        external
        view
        returns (uint256 staked, uint256 locked, uint256 unbonding, uint256 releaseAt)
    {
        Account memory account = _accounts[provider];
        Unbonding memory pending = _unbonding[provider];
        return (account.staked, account.locked, pending.amount, pending.releaseAt);
    }

    /// @inheritdoc IStakeManager
    function reputationOf(address provider)
        external
        view
        returns (uint256 completed, uint256 slashed, uint256 missed, uint256 score)
    {
        Account memory account = _accounts[provider];
        return (account.completed, account.slashed, account.missed, _score(account));
    }

    /// @inheritdoc IStakeManager
    function asset() external view returns (address) {
        return _asset;
    }

    /// @inheritdoc IStakeManager
    function escrow() external view returns (address) {
        return _escrow;
    }

    /// @inheritdoc IStakeManager
    function slashBps() external view returns (uint256) {
        return _slashBps;
    }

    /// @inheritdoc IStakeManager
    function unbondingDelay() external view returns (uint256) {
        return _unbondingDelay;
    }

    /// @inheritdoc IStakeManager
    function minStake() external view returns (uint256) {
        return _minStake;
    }

    function _score(Account memory account) private pure returns (uint256) {
        uint256 penalty = 3 * uint256(account.slashed) + account.missed;
        return account.completed > penalty ? account.completed - penalty : 0;
    }

    /// @dev Reputation counters saturate instead of overflowing.
    function _inc32(uint32 value) private pure returns (uint32) {
        return value == type(uint32).max ? value : value + 1;
    }

    function _inc16(uint16 value) private pure returns (uint16) {
        return value == type(uint16).max ? value : value + 1;
    }

    /// @dev Slashed collateral goes to the escrow, which credits it to the consumer.
    function _sendToEscrow(uint256 amount) private {
        if (_asset == address(0)) {
            (bool ok,) = _escrow.call{value: amount}("");
            if (!ok) revert StakeEtherTransferFailed(_escrow, amount);
        } else {
            IERC20(_asset).safeTransfer(_escrow, amount);
        }
    }
}
