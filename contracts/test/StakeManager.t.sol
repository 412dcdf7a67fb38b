// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {EscrowFixture} from "./utils/EscrowFixture.sol";
import {StakeManager} from "../src/StakeManager.sol";
import {IStakeManager} from "../src/interfaces/IStakeManager.sol";

/// @notice StakeManager unit tests. This test contract deploys its own StakeManager so it
/// is the escrow and can call lock/settle directly.
abstract contract StakeManagerTest is EscrowFixture {
    StakeManager internal sm;
    uint256 internal received;

    receive() external payable {
        received += msg.value;
    }

    function setUp() public override {
        super.setUp();
        sm = new StakeManager(assetAddr, SLASH_BPS, UNBONDING, MIN_STAKE);
        if (_tokenMode()) {
            vm.prank(alice);
            token.approve(address(sm), type(uint256).max);
        }
    }

    function _smStake(address who, uint256 amount) internal {
        vm.prank(who);
        sm.stake{value: _value(amount)}(amount);
    }

    function _outcomes(IStakeManager.Outcome o)
        internal
        pure
        returns (IStakeManager.Outcome[] memory l)
    {
        l = new IStakeManager.Outcome[](1);
        l[0] = o;
    }

    function test_constructor_setsParameters() public view {
        assertEq(sm.asset(), assetAddr, "asset");
        assertEq(sm.escrow(), address(this), "escrow");
        assertEq(sm.slashBps(), SLASH_BPS, "slashBps");
        assertEq(sm.unbondingDelay(), UNBONDING, "unbondingDelay");
        assertEq(sm.minStake(), MIN_STAKE, "minStake");
    }

    function test_constructor_revertsOnOutOfRangeParameters() public {
        bytes4 sel = IStakeManager.StakeParameterOutOfRange.selector;
        vm.expectPartialRevert(sel);
        new StakeManager(assetAddr, 0, UNBONDING, MIN_STAKE);
        vm.expectPartialRevert(sel);
        new StakeManager(assetAddr, 10_001, UNBONDING, MIN_STAKE);
        vm.expectPartialRevert(sel);
        new StakeManager(assetAddr, SLASH_BPS, 0, MIN_STAKE);
        vm.expectPartialRevert(sel);
        new StakeManager(assetAddr, SLASH_BPS, 365 days + 1, MIN_STAKE);
        vm.expectPartialRevert(sel);
        new StakeManager(assetAddr, SLASH_BPS, UNBONDING, 0);
        vm.expectPartialRevert(sel);
        new StakeManager(assetAddr, SLASH_BPS, UNBONDING, uint256(type(uint96).max) + 1);
        vm.expectPartialRevert(sel);
        new StakeManager(address(0xBEEF), SLASH_BPS, UNBONDING, MIN_STAKE);
        // Bounds themselves are accepted.
        new StakeManager(assetAddr, 10_000, 365 days, type(uint96).max);
    }

    function test_stake_creditsBondedStake() public {
        uint256 before = _assetBalance(alice);
        vm.expectEmit(address(sm));
        emit IStakeManager.Staked(alice, 2 ether, 2 ether);
        _smStake(alice, 2 ether);
        (uint256 staked, uint256 locked, uint256 unbonding, uint256 releaseAt) = sm.stakeOf(alice);
        assertEq(staked, 2 ether, "staked");
        assertEq(locked + unbonding + releaseAt, 0, "nothing else");
        assertEq(_assetBalance(alice), before - 2 ether, "paid");
        assertEq(_assetBalance(address(sm)), 2 ether, "held");
    }

    function test_stake_revertsOnZero() public {
        vm.prank(alice);
        vm.expectRevert(IStakeManager.StakeZeroAmount.selector);
        sm.stake(0);
    }

    function test_stake_revertsOnWrongValue() public {
        uint256 wrong = _tokenMode() ? 1 : 2 ether - 1;
        uint256 expected = _value(2 ether);
        vm.deal(alice, alice.balance + 1);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(IStakeManager.StakeWrongValue.selector, wrong, expected)
        );
        sm.stake{value: wrong}(2 ether);
    }

    function test_stake_revertsBelowMinimum() public {
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(
                IStakeManager.StakeBelowMinimum.selector, MIN_STAKE - 1, MIN_STAKE
            )
        );
        sm.stake{value: _value(MIN_STAKE - 1)}(MIN_STAKE - 1);
    }

    function test_stake_revertsAbove96Bits() public {
        uint256 huge = uint256(type(uint96).max) + 1;
        _fund(alice, huge);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.StakeAmountTooLarge.selector, huge));
        sm.stake{value: _value(huge)}(huge);
    }

    function test_requestUnstake_movesFreeStakeToUnbonding() public {
        _smStake(alice, 3 ether);
        vm.expectEmit(address(sm));
        emit IStakeManager.UnstakeRequested(alice, 1 ether, 1 ether, block.timestamp + UNBONDING);
        vm.prank(alice);
        sm.requestUnstake(1 ether);
        (uint256 staked,, uint256 unbonding, uint256 releaseAt) = sm.stakeOf(alice);
        assertEq(staked, 2 ether, "staked");
        assertEq(unbonding, 1 ether, "unbonding");
        assertEq(releaseAt, block.timestamp + UNBONDING, "releaseAt");
    }

    function test_requestUnstake_restartsClock() public {
        _smStake(alice, 3 ether);
        vm.prank(alice);
        sm.requestUnstake(1 ether);
        vm.warp(block.timestamp + 1 days);
        vm.prank(alice);
        sm.requestUnstake(1 ether);
        (,, uint256 unbonding, uint256 releaseAt) = sm.stakeOf(alice);
        assertEq(unbonding, 2 ether, "unbonding");
        assertEq(releaseAt, block.timestamp + UNBONDING, "releaseAt");
    }

    function test_requestUnstake_revertsOnZero() public {
        vm.prank(alice);
        vm.expectRevert(IStakeManager.StakeZeroAmount.selector);
        sm.requestUnstake(0);
    }

    function test_requestUnstake_cannotTakeLockedStake() public {
        _smStake(alice, 3 ether);
        sm.lock(alice, 2 ether, 0);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(IStakeManager.StakeInsufficient.selector, 1 ether, 2 ether)
        );
        sm.requestUnstake(2 ether);
    }

    function test_withdrawStake_paysAtReleaseTime() public {
        _smStake(alice, 3 ether);
        vm.prank(alice);
        sm.requestUnstake(3 ether);
        uint256 before = _assetBalance(alice);
        vm.warp(block.timestamp + UNBONDING);
        vm.expectEmit(address(sm));
        emit IStakeManager.StakeWithdrawn(alice, 3 ether);
        vm.prank(alice);
        sm.withdrawStake();
        assertEq(_assetBalance(alice), before + 3 ether, "paid out");
        (uint256 staked,, uint256 unbonding, uint256 releaseAt) = sm.stakeOf(alice);
        assertEq(staked + unbonding + releaseAt, 0, "cleared");
    }

    function test_withdrawStake_revertsOneSecondEarly() public {
        _smStake(alice, 3 ether);
        vm.prank(alice);
        sm.requestUnstake(1 ether);
        uint256 releaseAt = block.timestamp + UNBONDING;
        vm.warp(releaseAt - 1);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(
                IStakeManager.StakeStillUnbonding.selector, releaseAt, releaseAt - 1
            )
        );
        sm.withdrawStake();
    }

    function test_withdrawStake_revertsWithNothingUnbonding() public {
        vm.prank(alice);
        vm.expectRevert(IStakeManager.StakeNothingUnbonding.selector);
        sm.withdrawStake();
    }

    function test_lock_locksCollateral() public {
        _smStake(alice, 3 ether);
        vm.expectEmit(address(sm));
        emit IStakeManager.CollateralLocked(alice, 2 ether, 2 ether);
        sm.lock(alice, 2 ether, 0);
        (, uint256 locked,,) = sm.stakeOf(alice);
        assertEq(locked, 2 ether, "locked");
    }

    function test_lock_revertsForNonEscrow() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.StakeNotEscrow.selector, alice));
        sm.lock(alice, 1, 0);
    }

    function test_lock_revertsBelowMinimumStake() public {
        vm.expectRevert(
            abi.encodeWithSelector(IStakeManager.StakeBelowMinimum.selector, 0, MIN_STAKE)
        );
        sm.lock(alice, 0, 0);
    }

    function test_lock_revertsOnLowReputation() public {
        _smStake(alice, 3 ether);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.StakeReputationTooLow.selector, 0, 1));
        sm.lock(alice, 1 ether, 1);
    }

    function test_lock_revertsOnInsufficientFreeStake() public {
        _smStake(alice, 3 ether);
        sm.lock(alice, 2 ether, 0);
        vm.expectRevert(
            abi.encodeWithSelector(IStakeManager.StakeInsufficient.selector, 1 ether, 2 ether)
        );
        sm.lock(alice, 2 ether, 0);
    }

    function test_settle_completedUnlocksAndCounts() public {
        _smStake(alice, 3 ether);
        sm.lock(alice, 2 ether, 0);
        vm.expectEmit(address(sm));
        emit IStakeManager.CollateralSettled(alice, IStakeManager.Outcome.Completed, 2 ether, 0);
        uint256 slashed =
            sm.settle(_list(alice), _outcomes(IStakeManager.Outcome.Completed), 2 ether);
        assertEq(slashed, 0, "nothing slashed");
        (uint256 staked, uint256 locked,,) = sm.stakeOf(alice);
        assertEq(staked, 3 ether, "staked");
        assertEq(locked, 0, "unlocked");
        (uint256 completed,,, uint256 score) = sm.reputationOf(alice);
        assertEq(completed, 1, "completed");
        assertEq(score, 1, "score");
    }

    function test_settle_slashedAndMissedPayEscrow() public {
        _smStake(alice, 3 ether);
        sm.lock(alice, 2 ether, 0);
        sm.lock(alice, 1 ether, 0);
        uint256 before = _assetBalance(address(this));
        uint256 a = sm.settle(_list(alice), _outcomes(IStakeManager.Outcome.Slashed), 2 ether);
        uint256 b = sm.settle(_list(alice), _outcomes(IStakeManager.Outcome.Missed), 1 ether);
        assertEq(a, 1 ether, "half of 2");
        assertEq(b, 0.5 ether, "half of 1");
        assertEq(_assetBalance(address(this)), before + 1.5 ether, "sent to escrow");
        (uint256 staked, uint256 locked,,) = sm.stakeOf(alice);
        assertEq(staked, 1.5 ether, "staked");
        assertEq(locked, 0, "unlocked");
        (, uint256 slashedCount, uint256 missed, uint256 score) = sm.reputationOf(alice);
        assertEq(slashedCount, 1, "slashed");
        assertEq(missed, 1, "missed");
        assertEq(score, 0, "score floors at zero");
    }

    function test_settle_releasedChangesNothingElse() public {
        _smStake(alice, 3 ether);
        sm.lock(alice, 2 ether, 0);
        sm.settle(_list(alice), _outcomes(IStakeManager.Outcome.Released), 2 ether);
        (uint256 staked, uint256 locked,,) = sm.stakeOf(alice);
        assertEq(staked, 3 ether, "staked");
        assertEq(locked, 0, "unlocked");
        (uint256 c, uint256 s, uint256 m,) = sm.reputationOf(alice);
        assertEq(c + s + m, 0, "no counters");
    }

    function test_settle_slashesStakeOfUnbondingProvider() public {
        _smStake(alice, 3 ether);
        sm.lock(alice, 2 ether, 0);
        vm.prank(alice);
        sm.requestUnstake(1 ether);
        sm.settle(_list(alice), _outcomes(IStakeManager.Outcome.Missed), 2 ether);
        (uint256 staked, uint256 locked, uint256 unbonding,) = sm.stakeOf(alice);
        assertEq(staked, 1 ether, "collateral slashed while unbonding");
        assertEq(locked, 0, "unlocked");
        assertEq(unbonding, 1 ether, "unbonding untouched");
    }

    function test_settle_revertsForNonEscrow() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.StakeNotEscrow.selector, alice));
        sm.settle(_list(alice), _outcomes(IStakeManager.Outcome.Completed), 0);
    }

    function test_settle_revertsOnLengthMismatch() public {
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.StakeLengthMismatch.selector, 3, 1));
        sm.settle(_list(alice, bob, carol), _outcomes(IStakeManager.Outcome.Completed), 0);
    }

    function test_reputation_scoreSubtractsPenalties() public {
        _smStake(alice, 100 ether);
        for (uint256 i = 0; i < 5; ++i) {
            sm.lock(alice, 0, 0);
            sm.settle(_list(alice), _outcomes(IStakeManager.Outcome.Completed), 0);
        }
        sm.lock(alice, 0, 0);
        sm.settle(_list(alice), _outcomes(IStakeManager.Outcome.Slashed), 0);
        (uint256 c, uint256 s,, uint256 score) = sm.reputationOf(alice);
        assertEq(c, 5, "completed");
        assertEq(s, 1, "slashed");
        assertEq(score, 2, "5 - 3");
        sm.lock(alice, 0, 2);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.StakeReputationTooLow.selector, 2, 3));
        sm.lock(alice, 0, 3);
    }

    function testFuzz_stakeUnstakeWithdraw(uint256 amount, uint256 out, uint256 wait) public {
        amount = bound(amount, MIN_STAKE, 500 ether);
        out = bound(out, 1, amount);
        wait = bound(wait, 0, 2 * UNBONDING);
        _smStake(alice, amount);
        vm.prank(alice);
        sm.requestUnstake(out);
        uint256 before = _assetBalance(alice);
        vm.warp(block.timestamp + wait);
        vm.prank(alice);
        if (wait < UNBONDING) vm.expectPartialRevert(IStakeManager.StakeStillUnbonding.selector);
        sm.withdrawStake();
        uint256 paid = wait < UNBONDING ? 0 : out;
        assertEq(_assetBalance(alice), before + paid, "payout");
        (uint256 staked,,,) = sm.stakeOf(alice);
        assertEq(staked, amount - out, "remaining stake");
        assertEq(_assetBalance(address(sm)), amount - paid, "custody");
    }
}

contract StakeManagerEthTest is StakeManagerTest {
    function _tokenMode() internal pure override returns (bool) {
        return false;
    }
}

contract StakeManagerTokenTest is StakeManagerTest {
    function _tokenMode() internal pure override returns (bool) {
        return true;
    }
}
