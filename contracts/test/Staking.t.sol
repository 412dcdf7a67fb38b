// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {EscrowFixture} from "./utils/EscrowFixture.sol";
import {JobEscrow} from "../src/JobEscrow.sol";
import {IStaking} from "../src/interfaces/IStaking.sol";
import {IJobEscrow} from "../src/interfaces/IJobEscrow.sol";

/// @notice Staking unit tests: stake, unstake, withdraw and the deploy checks of the
/// staking parameters. Locking, slashing and reputation are driven by jobs and tested in
/// JobEscrow.t.sol.
abstract contract StakingTest is EscrowFixture {
    JobEscrow internal sm;

    function setUp() public override {
        super.setUp();
        sm = escrow;
    }

    function _smStake(address who, uint256 amount) internal {
        vm.prank(who);
        sm.stake{value: _value(amount)}(amount);
    }

    function test_constructor_revertsOnOutOfRangeParameters() public {
        bytes4 sel = IStaking.StakeParameterOutOfRange.selector;
        vm.expectPartialRevert(sel);
        new JobEscrow(assetAddr, 0, UNBONDING, MIN_STAKE, 3);
        vm.expectPartialRevert(sel);
        new JobEscrow(assetAddr, 10_001, UNBONDING, MIN_STAKE, 3);
        vm.expectPartialRevert(sel);
        new JobEscrow(assetAddr, SLASH_BPS, 0, MIN_STAKE, 3);
        vm.expectPartialRevert(sel);
        new JobEscrow(assetAddr, SLASH_BPS, 365 days + 1, MIN_STAKE, 3);
        vm.expectPartialRevert(sel);
        new JobEscrow(assetAddr, SLASH_BPS, UNBONDING, 0, 3);
        vm.expectPartialRevert(sel);
        new JobEscrow(assetAddr, SLASH_BPS, UNBONDING, uint256(type(uint96).max) + 1, 3);
        vm.expectPartialRevert(sel);
        new JobEscrow(address(0xBEEF), SLASH_BPS, UNBONDING, MIN_STAKE, 3);
        // Bounds themselves are accepted.
        new JobEscrow(assetAddr, 10_000, 365 days, type(uint96).max, 3);
    }

    function test_stake_creditsBondedStake() public {
        uint256 before = _assetBalance(alice);
        vm.expectEmit(address(sm));
        emit IStaking.Staked(alice, 2 ether, 2 ether);
        _smStake(alice, 2 ether);
        (uint256 staked, uint256 locked, uint256 unbonding, uint256 releaseAt) = sm.stakeOf(alice);
        assertEq(staked, 2 ether, "staked");
        assertEq(locked + unbonding + releaseAt, 0, "nothing else");
        assertEq(_assetBalance(alice), before - 2 ether, "paid");
        assertEq(_assetBalance(address(sm)), 2 ether, "held");
    }

    function test_stake_revertsOnZero() public {
        vm.prank(alice);
        vm.expectRevert(IStaking.StakeZeroAmount.selector);
        sm.stake(0);
    }

    function test_stake_revertsOnWrongValue() public {
        uint256 wrong = _tokenMode() ? 1 : 2 ether - 1;
        uint256 expected = _value(2 ether);
        vm.deal(alice, alice.balance + 1);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakeWrongValue.selector, wrong, expected));
        sm.stake{value: wrong}(2 ether);
    }

    function test_stake_revertsBelowMinimum() public {
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.StakeBelowMinimum.selector, MIN_STAKE - 1, MIN_STAKE)
        );
        sm.stake{value: _value(MIN_STAKE - 1)}(MIN_STAKE - 1);
    }

    function test_stake_revertsAbove96Bits() public {
        uint256 huge = uint256(type(uint96).max) + 1;
        _fund(alice, huge);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakeAmountTooLarge.selector, huge));
        sm.stake{value: _value(huge)}(huge);
    }

    function test_requestUnstake_movesFreeStakeToUnbonding() public {
        _smStake(alice, 3 ether);
        vm.expectEmit(address(sm));
        emit IStaking.UnstakeRequested(alice, 1 ether, 1 ether, block.timestamp + UNBONDING);
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

    /// @dev Locks `collateral` of `provider`'s stake the only way there is: claiming a job.
    function _lockByClaim(address provider, uint96 collateral) internal returns (uint256 jobId) {
        IJobEscrow.JobSpec memory spec = _spec(1);
        spec.collateral = collateral;
        jobId = _post(spec);
        _claim(jobId, spec, provider);
    }

    function test_settle_slashesStakeOfUnbondingProvider() public {
        _smStake(alice, 3 ether);
        IJobEscrow.JobSpec memory spec = _spec(1);
        spec.collateral = 2 ether;
        uint256 jobId = _post(spec);
        _claim(jobId, spec, alice);
        vm.prank(alice);
        sm.requestUnstake(1 ether);
        vm.warp(spec.revealDeadline + 1);
        _finalize(jobId, spec, _list(alice), bytes32(0)); // never committed: missed
        (uint256 staked, uint256 locked, uint256 unbonding,) = sm.stakeOf(alice);
        assertEq(staked, 1 ether, "collateral slashed while unbonding");
        assertEq(locked, 0, "unlocked");
        assertEq(unbonding, 1 ether, "unbonding untouched");
        (,, uint256 missed, uint256 score) = sm.reputationOf(alice);
        assertEq(missed, 1, "missed");
        assertEq(score, 0, "score floors at zero");
    }

    function test_reputation_scoreSubtractsPenalties() public {
        _smStake(alice, 100 ether);
        _smStake(bob, 100 ether);
        for (uint256 i = 0; i < 4; ++i) {
            IJobEscrow.JobSpec memory ok = _spec(1);
            uint256 id = _post(ok);
            _claim(id, ok, alice);
            _commit(id, ok, alice, "good");
            _reveal(id, ok, alice, "good"); // the last reveal settles
        }
        // Three replicas, alice the dissenter: slashed once.
        IJobEscrow.JobSpec memory s3 = _spec(3);
        _stake(carol, 10 ether);
        uint256 jobId = _post(s3);
        _claim(jobId, s3, alice);
        _claim(jobId, s3, bob);
        _claim(jobId, s3, carol);
        _commit(jobId, s3, alice, "bad");
        _commit(jobId, s3, bob, "good");
        _commit(jobId, s3, carol, "good");
        _reveal(jobId, s3, alice, "bad");
        _reveal(jobId, s3, bob, "good");
        _reveal(jobId, s3, carol, "good"); // the last reveal settles
        (uint256 c, uint256 sl,, uint256 score) = sm.reputationOf(alice);
        assertEq(c, 4, "completed");
        assertEq(sl, 1, "slashed");
        assertEq(score, 1, "4 - 3");
        IJobEscrow.JobSpec memory picky = _spec(1);
        picky.minReputation = 2;
        uint256 pickyId = _post(picky);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakeReputationTooLow.selector, 1, 2));
        escrow.claim(pickyId, _terms(picky));
    }

    function test_requestUnstake_revertsOnZero() public {
        vm.prank(alice);
        vm.expectRevert(IStaking.StakeZeroAmount.selector);
        sm.requestUnstake(0);
    }

    function test_requestUnstake_cannotTakeLockedStake() public {
        _smStake(alice, 3 ether);
        _lockByClaim(alice, 2 ether);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.StakeInsufficient.selector, 1 ether, 2 ether)
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
        emit IStaking.StakeWithdrawn(alice, 3 ether);
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
            abi.encodeWithSelector(IStaking.StakeStillUnbonding.selector, releaseAt, releaseAt - 1)
        );
        sm.withdrawStake();
    }

    function test_withdrawStake_revertsWithNothingUnbonding() public {
        vm.prank(alice);
        vm.expectRevert(IStaking.StakeNothingUnbonding.selector);
        sm.withdrawStake();
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
        if (wait < UNBONDING) vm.expectPartialRevert(IStaking.StakeStillUnbonding.selector);
        sm.withdrawStake();
        uint256 paid = wait < UNBONDING ? 0 : out;
        assertEq(_assetBalance(alice), before + paid, "payout");
        (uint256 staked,,,) = sm.stakeOf(alice);
        assertEq(staked, amount - out, "remaining stake");
        assertEq(_assetBalance(address(sm)), amount - paid, "custody");
    }
}

contract StakingEthTest is StakingTest {
    function _tokenMode() internal pure override returns (bool) {
        return false;
    }
}

contract StakingTokenTest is StakingTest {
    function _tokenMode() internal pure override returns (bool) {
        return true;
    }
}
