// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {EscrowFixture} from "./utils/EscrowFixture.sol";
import {JobEscrow} from "../src/JobEscrow.sol";
import {IJobEscrow} from "../src/interfaces/IJobEscrow.sol";
import {IStaking} from "../src/interfaces/IStaking.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

/// @notice A wallet contract that refuses ETH, or re-enters withdraw when paid.
contract Payee {
    JobEscrow internal immutable escrow;
    bool internal reenter;

    constructor(JobEscrow escrow_, bool reenter_) {
        escrow = escrow_;
        reenter = reenter_;
    }

    receive() external payable {
        if (!reenter) revert("no ETH");
        escrow.withdraw();
    }

    function post(IJobEscrow.JobSpec calldata spec) external payable returns (uint256) {
        return escrow.postJob{value: msg.value}(spec);
    }

    function withdraw() external {
        escrow.withdraw();
    }
}

/// @notice finalize on every deadline path (+-1 s), its replica list checks, and the pull
/// payouts (withdraw, openAccount, balances beyond 96 bits).
abstract contract JobEscrowFinalizeTest is EscrowFixture {
    function setUp() public override {
        super.setUp();
        _stakeAll(10 ether);
    }

    function test_finalize_unfilledWaitsForCommitDeadlineThenRefunds() public {
        uint256 jobId = _post(_spec(3));
        _commit(jobId, alice, 0, _good(jobId));
        _commit(jobId, bob, 4, _good(jobId));
        IJobEscrow.JobSpec memory s = _specOf[jobId];
        IJobEscrow.JobTerms memory t = _terms(jobId);
        uint256[] memory list = _allSlots(jobId);
        vm.warp(s.commitDeadline);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrow.EscrowNotFinalizable.selector, jobId, uint256(s.commitDeadline) + 1
            )
        );
        escrow.finalize(jobId, t, list, bytes32(0));
        vm.warp(uint256(s.commitDeadline) + 1);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaSettled(jobId, alice, IStaking.Settlement.Released, 0, 0);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaSettled(jobId, bob, IStaking.Settlement.Released, 0, 0);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.BalanceCredited(consumer, jobId, s.bounty);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.JobFinalized(jobId, IJobEscrow.Outcome.Unfilled, bytes32(0), 0, 0);
        vm.prank(makeAddr("anyone"));
        escrow.finalize(jobId, t, list, bytes32(0));
        assertEq(escrow.balanceOf(consumer), s.bounty, "refunded exactly the bounty");
        assertEq(_lockedOf(alice) + _lockedOf(bob), 0, "released");
        assertEq(_stakedOf(alice) + _stakedOf(bob), 20 ether, "no penalty");
        assertEq(escrow.laneJobOf(bob, 4), 0, "lane freed");
        (uint256 c, uint256 sl, uint256 m,) = escrow.reputationOf(alice);
        assertEq(c + sl + m, 0, "no reputation change");
        assertTrue(!_isLive(jobId), "settled");
    }

    function test_finalize_noCommitRefunds() public {
        uint256 jobId = _post(_spec(3));
        vm.warp(uint256(_specOf[jobId].commitDeadline) + 1);
        _finalize(jobId, bytes32(0));
        assertEq(escrow.balanceOf(consumer), _specOf[jobId].bounty, "refunded");
    }

    function test_finalize_filledWaitsForRevealDeadline() public {
        uint256 jobId = _post(_spec(3));
        bytes32 good = _good(jobId);
        _commit(jobId, alice, 0, good);
        _commit(jobId, bob, 0, good);
        _commit(jobId, carol, 0, good);
        _reveal(jobId, alice, 0, good);
        _reveal(jobId, bob, 0, good);
        IJobEscrow.JobSpec memory s = _specOf[jobId];
        IJobEscrow.JobTerms memory t = _terms(jobId);
        uint256[] memory list = _allSlots(jobId);
        uint256 notBefore = uint256(s.revealDeadline) + 1;
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowNotFinalizable.selector, jobId, notBefore)
        );
        escrow.finalize(jobId, t, list, good);
        vm.warp(s.revealDeadline);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowNotFinalizable.selector, jobId, notBefore)
        );
        escrow.finalize(jobId, t, list, good);
        vm.warp(notBefore);
        uint256 penalty = _penalty(s.collateral);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaSettled(jobId, alice, IStaking.Settlement.Completed, 1.5 ether, 0);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaSettled(jobId, bob, IStaking.Settlement.Completed, 1.5 ether, 0);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaSettled(jobId, carol, IStaking.Settlement.Missed, 0, penalty);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.JobFinalized(jobId, IJobEscrow.Outcome.Completed, good, 2, penalty);
        escrow.finalize(jobId, t, list, good);
        assertEq(escrow.burned(), penalty, "the no-show's penalty is burned");
        assertEq(escrow.balanceOf(consumer), 0, "not credited to the consumer");
        (,, uint256 missed,) = escrow.reputationOf(carol);
        assertEq(missed, 1, "missed");
    }

    function test_finalize_noQuorumAfterRevealDeadline() public {
        uint256 jobId = _post(_spec(3));
        _commit(jobId, alice, 0, _good(jobId));
        _commit(jobId, bob, 0, _bad(jobId, 1));
        _commit(jobId, carol, 0, _good(jobId));
        _reveal(jobId, alice, 0, _good(jobId));
        _reveal(jobId, bob, 0, _bad(jobId, 1));
        vm.warp(uint256(_specOf[jobId].revealDeadline) + 1);
        uint256 penalty = _penalty(_specOf[jobId].collateral);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaSettled(jobId, alice, IStaking.Settlement.Released, 0, 0);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaSettled(jobId, bob, IStaking.Settlement.Released, 0, 0);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaSettled(jobId, carol, IStaking.Settlement.Missed, 0, penalty);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.BalanceCredited(consumer, jobId, _specOf[jobId].bounty);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.JobFinalized(jobId, IJobEscrow.Outcome.NoQuorum, bytes32(0), 0, penalty);
        _finalize(jobId, keccak256("anything"));
        assertEq(escrow.balanceOf(consumer), _specOf[jobId].bounty, "only the bounty back");
        assertEq(escrow.burned(), penalty, "burned");
    }

    function test_finalize_revertsOnNonQuorumHashWhenQuorumExists() public {
        uint256 jobId = _post(_spec(3));
        bytes32 good = _good(jobId);
        bytes32 bad = _bad(jobId, 1);
        _commit(jobId, alice, 0, good);
        _commit(jobId, bob, 0, good);
        _commit(jobId, carol, 0, good);
        _reveal(jobId, alice, 0, good);
        _reveal(jobId, bob, 0, good);
        vm.warp(uint256(_specOf[jobId].revealDeadline) + 1);
        IJobEscrow.JobTerms memory t = _terms(jobId);
        uint256[] memory list = _allSlots(jobId);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowNotQuorumResult.selector, jobId, bad)
        );
        escrow.finalize(jobId, t, list, bad);
        escrow.finalize(jobId, t, list, good);
    }

    function test_finalize_revertsOnWrongReplicaSet() public {
        uint256 jobId = _post(_spec(3));
        _commit(jobId, alice, 0, _good(jobId));
        _commit(jobId, bob, 0, _good(jobId));
        vm.warp(uint256(_specOf[jobId].commitDeadline) + 1);
        IJobEscrow.JobTerms memory t = _terms(jobId);
        uint256 a = _key(alice, 0);
        uint256 b = _key(bob, 0);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowWrongReplicaSet.selector, jobId, 1, 2)
        );
        escrow.finalize(jobId, t, _keys(a), bytes32(0));
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowWrongReplicaSet.selector, jobId, 2, 2)
        );
        escrow.finalize(jobId, t, _keys(b, a), bytes32(0));
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowWrongReplicaSet.selector, jobId, 2, 2)
        );
        escrow.finalize(jobId, t, _keys(a, a), bytes32(0));
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowNotReplica.selector, jobId, carol, 0)
        );
        escrow.finalize(jobId, t, _keys(a, _key(carol, 0)), bytes32(0));
        escrow.finalize(jobId, t, _keys(a, b), bytes32(0));
    }

    /// A lane that now holds another job is not a slot of this one.
    function test_finalize_revertsForLaneOfAnotherJob() public {
        uint256 first = _post(_spec(3));
        uint256 second = _post(_spec(3));
        _commit(first, alice, 0, _good(first));
        _commit(second, bob, 0, _good(second));
        vm.warp(uint256(_specOf[second].commitDeadline) + 1);
        IJobEscrow.JobTerms memory t = _terms(second);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowNotReplica.selector, second, alice, 0)
        );
        escrow.finalize(second, t, _keys(_key(alice, 0)), bytes32(0));
    }

    function test_finalize_revertsTwice() public {
        uint256 jobId = _post(_spec(3));
        vm.warp(uint256(_specOf[jobId].commitDeadline) + 1);
        _finalize(jobId, bytes32(0));
        IJobEscrow.JobTerms memory t = _terms(jobId);
        uint256[] memory list = _allSlots(jobId);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowJobNotFound.selector, jobId));
        escrow.finalize(jobId, t, list, bytes32(0));
    }

    // ---------------------------------------------------------------- balances

    /// @dev Credits the consumer `bounty` through an unfilled job.
    function _refund(uint96 bounty) internal returns (uint256 jobId) {
        IJobEscrow.JobSpec memory s = _spec(3);
        s.bounty = bounty;
        _fund(consumer, bounty);
        jobId = _post(s);
        vm.warp(uint256(s.commitDeadline) + 1);
        _finalize(jobId, bytes32(0));
    }

    function test_withdraw_paysWholeBalance() public {
        _refund(3 ether);
        uint256 before = _assetBalance(consumer);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.Withdrawn(consumer, 3 ether);
        vm.prank(consumer);
        escrow.withdraw();
        assertEq(_assetBalance(consumer), before + 3 ether, "paid");
        assertEq(escrow.balanceOf(consumer), 0, "balance");
        assertEq(_assetBalance(address(escrow)), escrow.totalStake(), "only stakes left");
    }

    function test_withdraw_paysPartAmount() public {
        _refund(3 ether);
        uint256 before = _assetBalance(consumer);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.Withdrawn(consumer, 1 ether);
        vm.prank(consumer);
        escrow.withdraw(1 ether);
        assertEq(_assetBalance(consumer), before + 1 ether, "paid");
        assertEq(escrow.balanceOf(consumer), 2 ether, "rest");
    }

    function test_withdraw_revertsOnNothingOrTooMuch() public {
        vm.prank(alice);
        vm.expectRevert(IJobEscrow.EscrowNothingToWithdraw.selector);
        escrow.withdraw();
        vm.prank(alice);
        vm.expectRevert(IJobEscrow.EscrowNothingToWithdraw.selector);
        escrow.withdraw(0);
        _refund(3 ether);
        vm.prank(consumer);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrow.EscrowInsufficientBalance.selector, 3 ether, 3 ether + 1
            )
        );
        escrow.withdraw(3 ether + 1);
    }

    function test_credit_beyond96BitsSpillsAndWithdraws() public {
        uint96 max = type(uint96).max;
        _refund(max);
        _refund(max);
        uint256 total = 2 * uint256(max);
        assertEq(escrow.balanceOf(consumer), total, "both refunds credited");
        uint256 before = _assetBalance(consumer);
        vm.prank(consumer);
        escrow.withdraw(1 ether);
        assertEq(escrow.balanceOf(consumer), total - 1 ether, "partial, still beyond 96 bits");
        vm.prank(consumer);
        escrow.withdraw(total - 2 ether);
        assertEq(escrow.balanceOf(consumer), 1 ether, "back within 96 bits");
        vm.prank(consumer);
        escrow.withdraw();
        assertEq(escrow.balanceOf(consumer), 0, "empty");
        assertEq(_assetBalance(consumer), before + total, "all paid");
    }

    function test_openAccount_prepaysSlotAndLanesWithoutBalance() public {
        vm.expectEmit(address(escrow));
        emit IJobEscrow.AccountOpened(alice, 3);
        vm.prank(alice);
        escrow.openAccount(3);
        assertEq(escrow.balanceOf(alice), 0, "still zero");
        assertEq(escrow.laneJobOf(alice, 1), 0, "opened lanes are free");
        uint256 jobId = _post(_spec(3));
        _commit(jobId, alice, 2, _good(jobId));
        vm.prank(alice);
        escrow.openAccount(256); // idempotent, and leaves the busy lane alone
        assertEq(escrow.laneJobOf(alice, 2), jobId, "busy lane kept");
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrow.EscrowParameterOutOfRange.selector, bytes32("lanes"), 257
            )
        );
        escrow.openAccount(257);
        vm.prank(alice);
        vm.expectRevert(IJobEscrow.EscrowNothingToWithdraw.selector);
        escrow.withdraw();
    }

    function test_withdraw_revertsWhenEtherRefused() public {
        if (_tokenMode()) return; // ERC-20 transfers need no receiver cooperation
        _ethPayeeRefund(false);
    }

    function test_withdraw_reentrancyBlocked() public {
        if (_tokenMode()) return; // only ETH payouts call into the receiver
        _ethPayeeRefund(true);
    }

    /// @dev A contract consumer whose receive() refuses ETH or re-enters withdraw: the
    /// payout fails as a whole and the balance stays credited.
    function _ethPayeeRefund(bool reenter) internal {
        Payee payee = new Payee(escrow, reenter);
        IJobEscrow.JobSpec memory s = _spec(3);
        s.consumer = address(payee);
        vm.deal(address(this), s.bounty);
        uint256 total = _totalAsBlockFoundIt();
        uint256 jobId = payee.post{value: s.bounty}(s);
        _record(jobId, s, total);
        _sealPostBlock(jobId);
        vm.warp(uint256(s.commitDeadline) + 1);
        _finalize(jobId, bytes32(0));
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrow.EscrowEtherTransferFailed.selector, address(payee), s.bounty
            )
        );
        payee.withdraw();
        assertEq(escrow.balanceOf(address(payee)), s.bounty, "still credited");
        assertTrue(
            ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector != 0, "guard in use"
        );
    }
}

contract JobEscrowFinalizeEthTest is JobEscrowFinalizeTest {
    function _tokenMode() internal pure override returns (bool) {
        return false;
    }
}

contract JobEscrowFinalizeTokenTest is JobEscrowFinalizeTest {
    function _tokenMode() internal pure override returns (bool) {
        return true;
    }
}
