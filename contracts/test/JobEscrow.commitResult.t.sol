// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {BatchFixture} from "./utils/BatchFixture.sol";
import {IJobEscrow} from "../src/interfaces/IJobEscrow.sol";
import {IStaking} from "../src/interfaces/IStaking.sol";

/// @notice commitResult: the lone replica of a one-replica plain job commits its result hash
/// in the clear and the job settles in the same transaction. Every test compares it with the
/// two-transaction path (commit, then the reveal that settles) or shows that a job with more
/// than one slot, an optimistic job or an escalation cannot be taken this way; attacks assert
/// who gained and who lost.
abstract contract JobEscrowCommitResultTest is BatchFixture {
    /// @dev What one settlement changed for alice, the consumer and the market.
    struct Books {
        uint256 credit; // alice's withdrawable balance
        uint256 staked;
        uint256 locked;
        uint256 completed;
        uint256 consumerCredit;
        uint256 held; // the escrow's asset balance
        uint256 totalStake;
        uint256 burned;
    }

    function setUp() public override {
        super.setUp();
        _stakeAll(10 ether);
    }

    function _books() internal view returns (Books memory b) {
        b.credit = escrow.balanceOf(alice);
        (b.staked, b.locked,) = escrow.stakeOf(alice);
        (b.completed,,,) = escrow.reputationOf(alice);
        b.consumerCredit = escrow.balanceOf(consumer);
        b.held = _assetBalance(address(escrow));
        b.totalStake = escrow.totalStake();
        b.burned = escrow.burned();
    }

    /// @dev A one-replica job alice is drawn for at the base rate.
    function _soloJob() internal returns (uint256) {
        return _postDrawing(_spec(1), _list(alice), _none());
    }

    function _commitResult(uint256 jobId, address provider, uint256 lane, bytes32 resultHash)
        internal
    {
        IJobEscrow.JobTerms memory t = _terms(jobId);
        _noteBlockStart();
        vm.prank(provider);
        escrow.commitResult(jobId, t, lane, resultHash);
    }

    function _assertSameBooks(Books memory a, Books memory b) internal pure {
        assertEq(a.credit, b.credit, "provider credit");
        assertEq(a.staked, b.staked, "provider stake");
        assertEq(a.locked, b.locked, "provider locked collateral");
        assertEq(a.completed, b.completed, "provider completions");
        assertEq(a.consumerCredit, b.consumerCredit, "consumer credit");
        assertEq(a.held, b.held, "escrow holdings");
        assertEq(a.totalStake, b.totalStake, "total stake");
        assertEq(a.burned, b.burned, "burned");
    }

    function _delta(Books memory before, Books memory afterwards)
        internal
        pure
        returns (Books memory d)
    {
        d.credit = afterwards.credit - before.credit;
        d.staked = before.staked - afterwards.staked;
        d.locked = afterwards.locked - before.locked;
        d.completed = afterwards.completed - before.completed;
        d.consumerCredit = afterwards.consumerCredit - before.consumerCredit;
        d.held = afterwards.held - before.held;
        d.totalStake = before.totalStake - afterwards.totalStake;
        d.burned = afterwards.burned - before.burned;
    }

    // ------------------------------------------------------------ the settlement

    /// The same job, settled by commit + reveal and by commitResult: every balance, stake,
    /// lock, completion count and the market's totals move by exactly the same amounts, the
    /// job is gone and the lane is free again.
    function test_commitResult_settlesExactlyAsCommitThenReveal() public {
        Books memory b0 = _books();
        uint256 a = _soloJob();
        _runOne(a, alice, 0);
        Books memory b1 = _books();
        uint256 b = _soloJob();
        _commitResult(b, alice, 0, _good(b));
        Books memory b2 = _books();
        Books memory viaReveal = _delta(b0, b1);
        viaReveal.held -= _specOf[a].bounty; // each post adds its bounty to the holdings
        Books memory viaCommitResult = _delta(b1, b2);
        viaCommitResult.held -= _specOf[b].bounty;
        _assertSameBooks(viaReveal, viaCommitResult);
        assertEq(viaCommitResult.credit, _specOf[b].bounty, "the whole bounty to alice");
        assertEq(viaCommitResult.completed, 1, "a drawn completion counts");
        assertEq(b2.locked, 0, "nothing stays locked");
        (bytes24 specHash,,,) = escrow.jobState(b);
        assertEq(bytes32(specHash), bytes32(0), "the job is settled and gone");
        assertEq(escrow.laneJobOf(alice, 0), 0, "the lane is free");
    }

    /// The events say what commit, reveal and the settlement say, in one transaction.
    function test_commitResult_emitsCommitRevealSettlementAndFinalization() public {
        uint256 jobId = _soloJob();
        bytes32 result = _good(jobId);
        uint256 bounty = _specOf[jobId].bounty;
        IJobEscrow.JobTerms memory t = _terms(jobId);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaCommitted(jobId, alice, 0, result, true);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaRevealed(jobId, alice, result);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaSettled(jobId, alice, IStaking.Settlement.Completed, bounty, 0);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.JobFinalized(jobId, IJobEscrow.Outcome.Completed, result, 1, 0);
        vm.prank(alice);
        escrow.commitResult(jobId, t, 0, result);
    }

    // ------------------------------------------------------------ what it refuses

    /// A job with three slots cannot be taken and settled by one provider: bob and carol,
    /// who commit honestly, keep their slots, stakes and pay.
    function test_attack_commitResultOnAMultiReplicaJob_isRefused() public {
        uint256 jobId = _postDrawing(_spec(3), _list(alice, bob, carol), _none());
        IJobEscrow.JobTerms memory t = _terms(jobId);
        bytes32 lie = _bad(jobId, 1);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowNotSoloJob.selector, jobId));
        escrow.commitResult(jobId, t, 0, lie);
        (bytes24 specHash, uint8 committed,,) = escrow.jobState(jobId);
        assertTrue(specHash != bytes24(0), "the job is still live");
        assertEq(committed, 0, "no slot taken");
        _commit(jobId, alice, 0, _good(jobId));
        _commit(jobId, bob, 0, _good(jobId));
        _commit(jobId, carol, 0, _good(jobId));
        _reveal(jobId, alice, 0, _good(jobId));
        _reveal(jobId, bob, 0, _good(jobId));
        _reveal(jobId, carol, 0, _good(jobId));
        uint256 share = _specOf[jobId].bounty / 3;
        assertEq(escrow.balanceOf(bob), share, "bob paid his share");
        assertEq(escrow.balanceOf(carol), share, "carol paid her share");
        assertEq(_stakedOf(bob), 10 ether, "bob's stake intact");
        assertEq(_stakedOf(carol), 10 ether, "carol's stake intact");
    }

    /// An optimistic job keeps its challenge window: commitResult cannot settle it early
    /// and so cannot cut the consumer's right to challenge.
    function test_attack_commitResultOnAnOptimisticJob_isRefused() public {
        IJobEscrow.JobSpec memory spec = _spec(1);
        spec.collateral = 6 ether; // its slash covers the bond of 3 x bounty
        spec.bounty = 1 ether;
        uint256 total = _totalAsBlockFoundIt();
        vm.prank(consumer);
        uint256 jobId = escrow.postOptimisticJob{value: _value(spec.bounty)}(spec);
        _record(jobId, spec, total);
        _drawOf[jobId] |= uint256(1) << 64;
        _sealPostBlock(jobId);
        _setPostHash(jobId, _findHash(jobId, _list(alice), _none()));
        IJobEscrow.JobTerms memory t = _terms(jobId);
        bytes32 lie = _bad(jobId, 1);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowNotSoloJob.selector, jobId));
        escrow.commitResult(jobId, t, 0, lie);
        assertEq(escrow.balanceOf(alice), 0, "alice is paid nothing");
    }

    /// Once alice took the slot with a hidden commitment, nobody (not she in another lane,
    /// not bob) can settle the job with commitResult; her reveal settles it as before.
    function test_attack_commitResultAfterACommit_findsTheJobFull() public {
        uint256 jobId = _postDrawing(_spec(1), _list(alice, bob), _none());
        _commit(jobId, alice, 0, _good(jobId));
        IJobEscrow.JobTerms memory t = _terms(jobId);
        address[2] memory who = [alice, bob];
        uint256[2] memory lanes = [uint256(1), 0];
        for (uint256 i = 0; i < 2; ++i) {
            bytes32 lie = _bad(jobId, i);
            vm.prank(who[i]);
            vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowJobFull.selector, jobId));
            escrow.commitResult(jobId, t, lanes[i], lie);
        }
        _reveal(jobId, alice, 0, _good(jobId));
        assertEq(escrow.balanceOf(alice), _specOf[jobId].bounty, "alice paid");
        assertEq(escrow.balanceOf(bob), 0, "bob gained nothing");
        assertEq(_stakedOf(alice), 10 ether, "alice's stake intact");
    }

    /// A settled job cannot be settled again: a second commitResult finds no job, and the
    /// consumer is not charged twice nor alice paid twice.
    function test_commitResult_twice_findsNoJob() public {
        uint256 jobId = _soloJob();
        _commitResult(jobId, alice, 0, _good(jobId));
        IJobEscrow.JobTerms memory t = _terms(jobId);
        bytes32 again = _good(jobId);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowJobNotFound.selector, jobId));
        escrow.commitResult(jobId, t, 1, again);
        assertEq(escrow.balanceOf(alice), _specOf[jobId].bounty, "paid once");
    }

    /// The commit rules hold: not drawn, after the deadline, a busy lane, wrong terms.
    function test_commitResult_keepsTheCommitRules() public {
        uint256 jobId = _postDrawing(_spec(1), _list(alice), _list(bob));
        IJobEscrow.JobTerms memory t = _terms(jobId);
        bytes32 result = _good(jobId);
        vm.prank(bob);
        vm.expectPartialRevert(IJobEscrow.EscrowNotDrawn.selector);
        escrow.commitResult(jobId, t, 0, result);
        // alice's lane 0 holds another live job.
        uint256 other = _postDrawing(_spec(3), _list(alice, bob, carol), _none());
        _commit(other, alice, 0, _good(other));
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowLaneBusy.selector, alice, 0, other));
        escrow.commitResult(jobId, t, 0, result);
        IJobEscrow.JobTerms memory forged = _terms(jobId);
        forged.payment += 1; // a bounty one wei higher than posted
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowJobNotFound.selector, jobId));
        escrow.commitResult(jobId, forged, 1, result);
        vm.warp(_specOf[jobId].commitDeadline + 1);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrow.EscrowCommitClosed.selector, jobId, _specOf[jobId].commitDeadline
            )
        );
        escrow.commitResult(jobId, t, 1, result);
        assertEq(escrow.balanceOf(alice), 0, "no refused call paid anything");
        assertEq(_lockedOf(alice), 1 ether, "only the other job's collateral is locked");
    }

    /// Fuzz: any bounty and collateral a solo job may carry, any result hash: alice is
    /// credited exactly the bounty, her stake and the market's totals do not move, nothing
    /// stays locked, and the escrow holds the bounty until she withdraws it.
    function testFuzz_commitResult_paysExactlyTheBounty(
        uint96 bounty,
        uint96 collateral,
        bytes32 result
    ) public {
        bounty = uint96(bound(bounty, 1, 100 ether));
        collateral = uint96(bound(collateral, 0, 10 ether));
        IJobEscrow.JobSpec memory spec = _spec(1);
        (spec.bounty, spec.collateral) = (bounty, collateral);
        _fund(consumer, bounty);
        uint256 jobId = _postDrawing(spec, _list(alice), _none());
        Books memory before = _books();
        _commitResult(jobId, alice, 0, result);
        Books memory d = _delta(before, _books());
        assertEq(d.credit, bounty, "credited the bounty");
        assertEq(d.staked, 0, "stake unchanged");
        assertEq(d.locked, 0, "nothing left locked");
        assertEq(d.consumerCredit, 0, "no refund: the job completed");
        assertEq(d.held, 0, "the escrow keeps the bounty until withdrawn");
        assertEq(d.totalStake + d.burned, 0, "nothing slashed or burned");
        uint256 wallet = _assetBalance(alice);
        vm.prank(alice);
        escrow.withdraw();
        assertEq(_assetBalance(alice), wallet + bounty, "and withdraws it");
    }
}

contract JobEscrowCommitResultEthTest is JobEscrowCommitResultTest {
    function _tokenMode() internal pure override returns (bool) {
        return false;
    }
}

contract JobEscrowCommitResultTokenTest is JobEscrowCommitResultTest {
    function _tokenMode() internal pure override returns (bool) {
        return true;
    }
}
