// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {EscrowFixture} from "./utils/EscrowFixture.sol";
import {Test} from "./utils/Test.sol";
import {FeeOnTransferToken, RebasingToken} from "./utils/Tokens.sol";
import {JobEscrow} from "../src/JobEscrow.sol";
import {IJobEscrow} from "../src/interfaces/IJobEscrow.sol";
import {IStaking} from "../src/interfaces/IStaking.sol";

/// @notice Staking: stake, immediate unstake of free stake (no unbonding delay in v2),
/// locked collateral, reputation score. Job-driven locking and slashing are in the job tests.
abstract contract StakingTest is EscrowFixture {
    function test_stake_creditsBondedStakeAndTotal() public {
        uint256 before = _assetBalance(alice);
        vm.expectEmit(address(escrow));
        emit IStaking.Staked(alice, 2 ether, 2 ether, block.number);
        _stake(alice, 2 ether);
        (uint256 staked, uint256 locked, uint256 bondedAt) = escrow.stakeOf(alice);
        assertEq(staked, 2 ether, "staked");
        assertEq(locked, 0, "locked");
        assertEq(bondedAt, block.number, "bondedAt: the block, not the time");
        assertEq(escrow.totalStake(), 2 ether, "total");
        assertEq(_assetBalance(alice), before - 2 ether, "paid");
        assertEq(_assetBalance(address(escrow)), 2 ether, "held");
        vm.roll(block.number + 5);
        vm.expectEmit(address(escrow));
        emit IStaking.Staked(alice, 1, 2 ether + 1, block.number);
        _stake(alice, 1); // a top-up above the minimum: any amount, and a new bondedAt
        (,, bondedAt) = escrow.stakeOf(alice);
        assertEq(bondedAt, block.number, "bondedAt moves with every top-up");
        // The clock alone does not move it: a top-up later in the same block keeps the
        // block's number, and a block that shares the previous one's second gets its own.
        vm.warp(block.timestamp + 5);
        _stake(alice, 1);
        (,, bondedAt) = escrow.stakeOf(alice);
        assertEq(bondedAt, block.number, "the same block, a later second: the same bondedAt");
        vm.roll(block.number + 1);
        _stake(alice, 1);
        (,, bondedAt) = escrow.stakeOf(alice);
        assertEq(bondedAt, block.number, "the next block, the same second: the next bondedAt");
    }

    function test_stake_revertsOnZero() public {
        vm.prank(alice);
        vm.expectRevert(IStaking.StakeZeroAmount.selector);
        escrow.stake(0);
    }

    function test_stake_revertsOnWrongValue() public {
        uint256 wrong = _tokenMode() ? 1 : 2 ether - 1;
        vm.deal(alice, alice.balance + 1);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.StakeWrongValue.selector, wrong, _value(2 ether))
        );
        escrow.stake{value: wrong}(2 ether);
    }

    function test_stake_revertsBelowMinimum() public {
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.StakeBelowMinimum.selector, MIN_STAKE - 1, MIN_STAKE)
        );
        escrow.stake{value: _value(MIN_STAKE - 1)}(MIN_STAKE - 1);
    }

    function test_stake_revertsAbove96Bits() public {
        uint256 amount = uint256(type(uint96).max) + 1;
        _fund(alice, amount);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakeAmountTooLarge.selector, amount));
        escrow.stake{value: _value(amount)}(amount);
    }

    function test_unstake_paysFreeStakeAtOnce() public {
        _stake(alice, 5 ether);
        (,, uint256 bondedAt) = escrow.stakeOf(alice);
        uint256 before = _assetBalance(alice);
        vm.expectEmit(address(escrow));
        emit IStaking.Unstaked(alice, 2 ether, 3 ether);
        vm.prank(alice);
        escrow.unstake(2 ether);
        assertEq(_assetBalance(alice), before + 2 ether, "paid in the same transaction");
        assertEq(_stakedOf(alice), 3 ether, "staked");
        assertEq(escrow.totalStake(), 3 ether, "total");
        (,, uint256 after_) = escrow.stakeOf(alice);
        assertEq(after_, bondedAt, "unstaking keeps bondedAt");
        vm.prank(alice);
        escrow.unstake(3 ether); // a full exit is allowed
        assertEq(_stakedOf(alice), 0, "out");
        assertEq(_assetBalance(address(escrow)), 0, "nothing held");
    }

    function test_unstake_revertsOnZero() public {
        vm.prank(alice);
        vm.expectRevert(IStaking.StakeZeroAmount.selector);
        escrow.unstake(0);
    }

    function test_unstake_revertsLeavingLessThanMinimum() public {
        _stake(alice, 2 ether);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.StakeBelowMinimum.selector, MIN_STAKE - 1, MIN_STAKE)
        );
        escrow.unstake(1 ether + 1);
    }

    function test_unstake_cannotTakeLockedCollateral() public {
        _stakeAll(10 ether);
        uint256 jobId = _post(_spec(3));
        _commit(jobId, alice, 0, _good(jobId));
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.StakeInsufficient.selector, 9 ether, 10 ether)
        );
        escrow.unstake(10 ether);
        vm.prank(alice);
        escrow.unstake(8 ether); // the free part, leaving 2 >= minimum
        assertEq(_stakedOf(alice), 2 ether, "collateral stays");
        assertEq(_lockedOf(alice), 1 ether, "locked");
    }

    /// score = completed - 3 * slashed - missed, floored at zero.
    function test_reputation_scoreSubtractsPenalties() public {
        _stakeAll(10 ether);
        for (uint256 i = 0; i < 4; ++i) {
            uint256 j = _post(_spec(3));
            _commit(j, alice, 0, _good(j));
            _commit(j, bob, 0, _good(j));
            _commit(j, carol, 0, _good(j));
            _reveal(j, alice, 0, _good(j));
            _reveal(j, bob, 0, _good(j));
            _reveal(j, carol, 0, _good(j));
        }
        (uint256 completed,,, uint256 score) = escrow.reputationOf(carol);
        assertEq(completed, 4, "four drawn completions");
        assertEq(score, 4, "score");
        uint256 jobId = _post(_spec(3));
        _commit(jobId, alice, 0, _good(jobId));
        _commit(jobId, bob, 0, _good(jobId));
        _commit(jobId, carol, 0, _bad(jobId, 1));
        _reveal(jobId, alice, 0, _good(jobId));
        _reveal(jobId, bob, 0, _good(jobId));
        _revealHint(jobId, carol, 0, _bad(jobId, 1), _good(jobId));
        uint256 slashed;
        (completed, slashed,, score) = escrow.reputationOf(carol);
        assertEq(slashed, 1, "slashed");
        assertEq(score, completed - 3 * slashed, "4 - 3");
        // Twice: carol commits and never reveals.
        for (uint256 n = 0; n < 2; ++n) {
            jobId = _post(_spec(3));
            _commit(jobId, alice, 0, _good(jobId));
            _commit(jobId, bob, 0, _good(jobId));
            _commit(jobId, carol, 0, _good(jobId));
            _reveal(jobId, alice, 0, _good(jobId));
            _reveal(jobId, bob, 0, _good(jobId));
            vm.warp(uint256(_specOf[jobId].revealDeadline) + 1);
            _finalize(jobId, _good(jobId));
        }
        uint256 missed;
        (completed, slashed, missed, score) = escrow.reputationOf(carol);
        assertEq(missed, 2, "missed twice");
        assertEq(score, 0, "4 - 3 - 2 floors at zero");
    }

    function testFuzz_stakeUnstake(uint256 amount, uint256 out) public {
        amount = bound(amount, MIN_STAKE, 500 ether);
        _stake(alice, amount);
        out = bound(out, 1, amount);
        uint256 rest = amount - out;
        uint256 before = _assetBalance(alice);
        if (rest != 0 && rest < MIN_STAKE) {
            vm.expectRevert(
                abi.encodeWithSelector(IStaking.StakeBelowMinimum.selector, rest, MIN_STAKE)
            );
        }
        vm.prank(alice);
        escrow.unstake(out);
        bool ok = rest == 0 || rest >= MIN_STAKE;
        assertEq(_stakedOf(alice), ok ? rest : amount, "staked");
        assertEq(_assetBalance(alice), ok ? before + out : before, "paid");
        assertEq(escrow.totalStake(), _stakedOf(alice), "total");
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

/// @notice Only exact-transfer ERC-20s (P8): a fee-on-transfer token and a share-based
/// rebasing token are refused on every pull (stake, postJob) and, where the escrow's balance
/// does not drop by exactly the amount, on every send (unstake, withdraw).
contract ExactTransferTest is Test {
    address internal alice = address(0xA11CE);

    function _params(address asset) internal pure returns (IJobEscrow.Params memory p) {
        p.asset = asset;
        p.slashBps = 5000;
        p.minStake = 1 ether;
        p.maxReplicas = 16;
        p.minCommitWindow = 10 minutes;
        p.minRevealWindow = 5 minutes;
        p.maxHorizon = 1 days;
        p.challengeWindow = 1 hours;
        p.escalationReplicas = 3;
    }

    function _spec(address who) internal view returns (IJobEscrow.JobSpec memory s) {
        s.consumer = who;
        s.bounty = 3 ether;
        s.collateral = 1 ether;
        s.replicas = 1;
        s.quorum = 1;
        s.commitDeadline = uint40(block.timestamp + 1 hours);
        s.revealDeadline = uint40(block.timestamp + 2 hours);
    }

    function test_stake_revertsOnFeeOnTransferToken() public {
        FeeOnTransferToken fee = new FeeOnTransferToken(100); // 1 %
        JobEscrow escrow = new JobEscrow(_params(address(fee)));
        fee.mint(alice, 10 ether);
        vm.startPrank(alice);
        fee.approve(address(escrow), type(uint256).max);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrow.EscrowTokenNotExact.selector, 2 ether, fee.delivered(2 ether)
            )
        );
        escrow.stake(2 ether);
        IJobEscrow.JobSpec memory s = _spec(alice);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrow.EscrowTokenNotExact.selector, s.bounty, fee.delivered(s.bounty)
            )
        );
        escrow.postJob(s);
        vm.stopPrank();
        assertEq(fee.balanceOf(address(escrow)), 0, "nothing booked");
    }

    function test_stake_revertsOnRebasingToken() public {
        RebasingToken reb = new RebasingToken();
        JobEscrow escrow = new JobEscrow(_params(address(reb)));
        reb.mint(alice, 10 ether);
        reb.rebase(1.1e18);
        vm.startPrank(alice);
        reb.approve(address(escrow), type(uint256).max);
        (, uint256 credited) = reb.moved(reb.sharesOf(alice), 0, 2 ether);
        assertTrue(credited != 2 ether, "the rounding makes the transfer inexact");
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowTokenNotExact.selector, 2 ether, credited)
        );
        escrow.stake(2 ether);
        IJobEscrow.JobSpec memory s = _spec(alice);
        (, credited) = reb.moved(reb.sharesOf(alice), 0, s.bounty);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowTokenNotExact.selector, s.bounty, credited)
        );
        escrow.postJob(s);
        vm.stopPrank();
    }

    /// Stake taken while the token moved exactly, then a rebase: unstake and withdraw
    /// revert instead of paying out a different amount than the books take off.
    function test_unstake_revertsWhenTokenNoLongerExact() public {
        RebasingToken reb = new RebasingToken();
        JobEscrow escrow = new JobEscrow(_params(address(reb)));
        reb.mint(alice, 10 ether);
        vm.startPrank(alice);
        reb.approve(address(escrow), type(uint256).max);
        escrow.stake(5 ether); // index 1: exact
        vm.stopPrank();
        reb.rebase(1.5e18);
        (uint256 debited,) = reb.moved(reb.sharesOf(address(escrow)), reb.sharesOf(alice), 1 ether);
        assertTrue(debited != 1 ether, "inexact now");
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowTokenNotExact.selector, 1 ether, debited)
        );
        escrow.unstake(1 ether);
        (uint256 staked,,) = escrow.stakeOf(alice);
        assertEq(staked, 5 ether, "books unchanged");
    }

    /// The same on withdraw: a refund credited while exact, then a rebase.
    function test_withdraw_revertsWhenTokenNoLongerExact() public {
        RebasingToken reb = new RebasingToken();
        JobEscrow escrow = new JobEscrow(_params(address(reb)));
        reb.mint(alice, 10 ether);
        IJobEscrow.JobSpec memory s = _spec(alice);
        vm.startPrank(alice);
        reb.approve(address(escrow), type(uint256).max);
        uint256 jobId = escrow.postJob(s);
        uint256 draw = vm.getBlockNumber() << 32 | vm.getBlockTimestamp();
        vm.warp(uint256(s.commitDeadline) + 1);
        escrow.finalize(jobId, escrow.termsOf(s, draw), new uint256[](0), 0);
        vm.stopPrank();
        assertEq(escrow.balanceOf(alice), s.bounty, "refund credited");
        uint256 debited = s.bounty;
        for (uint256 index = 1.1e18; debited == s.bounty; index += 0.1e18) {
            reb.rebase(index); // the first index at which this transfer rounds
            (debited,) = reb.moved(reb.sharesOf(address(escrow)), reb.sharesOf(alice), s.bounty);
        }
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowTokenNotExact.selector, s.bounty, debited)
        );
        escrow.withdraw();
        assertEq(escrow.balanceOf(alice), s.bounty, "still credited");
    }
}
