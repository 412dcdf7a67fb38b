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

    function cancel(uint256 jobId, IJobEscrow.JobTerms calldata terms) external {
        escrow.cancel(jobId, terms);
    }

    function withdraw() external {
        escrow.withdraw();
    }
}

/// @notice JobEscrow unit tests: every function's success and every revert, with the
/// timing edges of each deadline. Runs once per asset mode (see the contracts below).
abstract contract JobEscrowTest is EscrowFixture {
    bytes32 internal constant GOOD = keccak256("good output");
    bytes32 internal constant BAD = keccak256("bad output");

    IJobEscrow.JobSpec internal spec1;
    IJobEscrow.JobSpec internal spec3;

    function setUp() public override {
        super.setUp();
        _stake(alice, 10 ether);
        _stake(bob, 10 ether);
        _stake(carol, 10 ether);
        spec1 = _spec(1);
        spec3 = _spec(3);
    }

    // ---------------------------------------------------------------- deploy

    function test_constructor_setsParameters() public view {
        assertEq(escrow.asset(), assetAddr, "asset");
        assertEq(escrow.slashBps(), SLASH_BPS, "slashBps");
        assertEq(escrow.unbondingDelay(), UNBONDING, "unbondingDelay");
        assertEq(escrow.minStake(), MIN_STAKE, "minStake");
        assertEq(escrow.maxReplicas(), MAX_REPLICAS, "maxReplicas");
        assertEq(escrow.LANES(), 64, "lanes");
        assertEq(escrow.nextJobId(), 1, "first id");
    }

    function test_constructor_revertsOnMaxReplicasOutOfRange() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrow.EscrowParameterOutOfRange.selector, bytes32("maxReplicas"), 0
            )
        );
        new JobEscrow(assetAddr, SLASH_BPS, UNBONDING, MIN_STAKE, 0);
        vm.expectPartialRevert(IJobEscrow.EscrowParameterOutOfRange.selector);
        new JobEscrow(assetAddr, SLASH_BPS, UNBONDING, MIN_STAKE, 17);
        vm.expectPartialRevert(IStaking.StakeParameterOutOfRange.selector);
        new JobEscrow(assetAddr, 0, UNBONDING, MIN_STAKE, 3);
    }

    function test_receive_rejectsPlainEther() public {
        vm.deal(alice, 1 ether);
        vm.prank(alice);
        (bool ok,) = address(escrow).call{value: 1}("");
        assertTrue(!ok, "no receive: ether only comes with stake or postJob");
    }

    // ---------------------------------------------------------------- postJob

    function test_postJob_escrowsBountyAndEmitsSpec() public {
        uint256 before = _assetBalance(consumer);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.JobPosted(1, consumer, spec3);
        uint256 jobId = _post(spec3);
        assertEq(jobId, 1, "id");
        assertEq(escrow.nextJobId(), 2, "next id");
        assertEq(_assetBalance(consumer), before - spec3.bounty, "paid");
        assertEq(_heldBeyondStakes(), spec3.bounty, "held");
        (bytes24 h, uint8 c, uint8 m,) = escrow.jobState(jobId);
        assertEq(bytes32(h), bytes32(bytes24(escrow.specHashOf(spec3))), "spec hash");
        assertEq(uint256(c) + m, 0, "counters");
        assertEq(
            escrow.specHashOf(spec3), keccak256(abi.encode(_terms(spec3))), "spec hash encoding"
        );
        IJobEscrow.JobTerms memory t = escrow.termsOf(spec3);
        IJobEscrow.JobTerms memory mine = _terms(spec3);
        assertEq(t.payment, mine.payment, "payment word");
        assertEq(t.rules, mine.rules, "rules word");
        assertEq(t.detailsHash, mine.detailsHash, "details hash");
    }

    function _expectInvalid(IJobEscrow.JobSpec memory spec, bytes32 reason) internal {
        vm.prank(consumer);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowInvalidSpec.selector, reason));
        escrow.postJob{value: _value(spec.bounty)}(spec);
    }

    function test_postJob_revertsOnInvalidSpec() public {
        IJobEscrow.JobSpec memory s = _spec(3);
        s.consumer = alice;
        _expectInvalid(s, "consumer");
        s = _spec(3);
        s.bounty = 0;
        _expectInvalid(s, "bounty");
        s = _spec(3);
        s.replicas = 0;
        s.quorum = 0;
        _expectInvalid(s, "replicas");
        s = _spec(3);
        s.replicas = 17;
        s.quorum = 9;
        _expectInvalid(s, "replicas");
        s = _spec(3);
        s.quorum = 4;
        _expectInvalid(s, "quorum");
        s = _spec(4);
        s.quorum = 2; // half of 4 is not a majority
        _expectInvalid(s, "quorum");
        s = _spec(3);
        s.claimDeadline = uint40(block.timestamp);
        _expectInvalid(s, "deadlines");
        s = _spec(3);
        s.commitDeadline = s.claimDeadline;
        _expectInvalid(s, "deadlines");
        s = _spec(3);
        s.revealDeadline = s.commitDeadline;
        _expectInvalid(s, "deadlines");
        s = _spec(3);
        s.inputLocation = new bytes(257);
        _expectInvalid(s, "inputLocation");
        // The largest allowed values pass.
        s = _spec(16);
        s.quorum = 16;
        s.inputLocation = new bytes(256);
        s.claimDeadline = uint40(block.timestamp + 1);
        _post(s);
    }

    function test_postJob_revertsOnWrongValue() public {
        uint256 wrong = _tokenMode() ? 1 : spec3.bounty - 1;
        vm.deal(consumer, consumer.balance + 1);
        vm.prank(consumer);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrow.EscrowWrongValue.selector, wrong, _value(spec3.bounty)
            )
        );
        escrow.postJob{value: wrong}(spec3);
    }

    // ---------------------------------------------------------------- claim

    function test_claim_locksCollateral() public {
        uint256 jobId = _post(spec3);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaClaimed(jobId, alice);
        _claim(jobId, spec3, alice);
        assertEq(
            uint256(escrow.replicaOf(jobId, alice)),
            uint256(IJobEscrow.ReplicaStatus.Claimed),
            "status"
        );
        (, uint256 locked,,) = escrow.stakeOf(alice);
        assertEq(locked, spec3.collateral, "locked");
        (, uint8 claimed,,) = escrow.jobState(jobId);
        assertEq(claimed, 1, "claimed");
    }

    function test_claim_acceptsAtDeadlineRejectsAfter() public {
        uint256 jobId = _post(spec3);
        vm.warp(spec3.claimDeadline);
        _claim(jobId, spec3, alice);
        vm.warp(uint256(spec3.claimDeadline) + 1);
        vm.prank(bob);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrow.EscrowClaimClosed.selector, jobId, spec3.claimDeadline
            )
        );
        escrow.claim(jobId, _terms(spec3));
    }

    function test_claim_revertsOnUnknownJobOrWrongSpec() public {
        uint256 jobId = _post(spec3);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowJobNotFound.selector, jobId + 1));
        escrow.claim(jobId + 1, _terms(spec3));
        IJobEscrow.JobSpec memory other = _spec(3);
        other.bounty += 1;
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowJobNotFound.selector, jobId));
        escrow.claim(jobId, _terms(other));
    }

    function test_claim_revertsWhenFull() public {
        uint256 jobId = _post(spec1);
        _claim(jobId, spec1, alice);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowJobFull.selector, jobId));
        escrow.claim(jobId, _terms(spec1));
    }

    function test_claim_revertsOnSecondSlot() public {
        uint256 jobId = _post(spec3);
        _claim(jobId, spec3, alice);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowAlreadyClaimed.selector, jobId, alice)
        );
        escrow.claim(jobId, _terms(spec3));
    }

    function test_claim_revertsWithoutStakeOrReputation() public {
        IJobEscrow.JobSpec memory s = _spec(3);
        s.collateral = 11 ether;
        uint256 jobId = _post(s);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.StakeInsufficient.selector, 10 ether, 11 ether)
        );
        escrow.claim(jobId, _terms(s));
        s = _spec(3);
        s.minReputation = 1;
        jobId = _post(s);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakeReputationTooLow.selector, 0, 1));
        escrow.claim(jobId, _terms(s));
        address nobody = makeAddr("nobody");
        vm.prank(nobody);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakeBelowMinimum.selector, 0, MIN_STAKE));
        escrow.claim(jobId, _terms(s));
    }

    // ---------------------------------------------------------------- commit

    function test_commit_storesCommitment() public {
        uint256 jobId = _post(spec3);
        _claim(jobId, spec3, alice);
        bytes32 c = escrow.commitmentOf(jobId, alice, GOOD, _salt(alice));
        assertEq(c, keccak256(abi.encode(jobId, alice, GOOD, _salt(alice))), "commitment encoding");
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaCommitted(jobId, alice, c);
        vm.prank(alice);
        escrow.commit(jobId, _terms(spec3), c);
        assertEq(
            uint256(escrow.replicaOf(jobId, alice)),
            uint256(IJobEscrow.ReplicaStatus.Committed),
            "status"
        );
        (,, uint8 committed,) = escrow.jobState(jobId);
        assertEq(committed, 1, "committed");
    }

    function test_commit_acceptsAtDeadlineRejectsAfter() public {
        uint256 jobId = _post(spec3);
        _claim(jobId, spec3, alice);
        _claim(jobId, spec3, bob);
        _claim(jobId, spec3, carol);
        vm.warp(spec3.commitDeadline);
        _commit(jobId, spec3, alice, GOOD);
        vm.warp(uint256(spec3.commitDeadline) + 1);
        vm.prank(bob);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrow.EscrowCommitClosed.selector, jobId, spec3.commitDeadline
            )
        );
        escrow.commit(jobId, _terms(spec3), bytes32(0));
    }

    function test_commit_revertsForNonClaimerOrTwice() public {
        uint256 jobId = _post(spec3);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrow.EscrowWrongReplicaStatus.selector,
                jobId,
                alice,
                IJobEscrow.ReplicaStatus.None
            )
        );
        escrow.commit(jobId, _terms(spec3), GOOD);
        _claim(jobId, spec3, alice);
        _commit(jobId, spec3, alice, GOOD);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrow.EscrowWrongReplicaStatus.selector,
                jobId,
                alice,
                IJobEscrow.ReplicaStatus.Committed
            )
        );
        escrow.commit(jobId, _terms(spec3), GOOD);
    }

    function test_commit_revertsOnUnfilledJobAfterClaimDeadline() public {
        uint256 jobId = _post(spec3);
        _claim(jobId, spec3, alice);
        vm.warp(uint256(spec3.claimDeadline) + 1);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowJobUnfilled.selector, jobId));
        escrow.commit(jobId, _terms(spec3), GOOD);
    }

    function test_commit_revertsOnUnknownJob() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowJobNotFound.selector, 7));
        escrow.commit(7, _terms(spec3), GOOD);
    }

    // ---------------------------------------------------------------- reveal

    function _claimAll3(uint256 jobId) internal {
        _claim(jobId, spec3, alice);
        _claim(jobId, spec3, bob);
        _claim(jobId, spec3, carol);
    }

    function test_reveal_opensEarlyWhenAllCommitted() public {
        uint256 jobId = _post(spec3);
        _claimAll3(jobId);
        _commit(jobId, spec3, alice, GOOD);
        _commit(jobId, spec3, bob, GOOD);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrow.EscrowRevealNotOpen.selector, jobId, spec3.commitDeadline
            )
        );
        escrow.reveal(jobId, _terms(spec3), GOOD, _salt(alice), _none(), bytes32(0));
        _commit(jobId, spec3, carol, GOOD);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaRevealed(jobId, alice, GOOD);
        _reveal(jobId, spec3, alice, GOOD);
        assertEq(
            uint256(escrow.replicaOf(jobId, alice)),
            uint256(IJobEscrow.ReplicaStatus.Revealed),
            "status"
        );
    }

    function test_reveal_opensAfterCommitDeadline() public {
        uint256 jobId = _post(spec3);
        _claimAll3(jobId);
        _commit(jobId, spec3, alice, GOOD);
        vm.warp(spec3.commitDeadline);
        vm.prank(alice);
        vm.expectPartialRevert(IJobEscrow.EscrowRevealNotOpen.selector);
        escrow.reveal(jobId, _terms(spec3), GOOD, _salt(alice), _none(), bytes32(0));
        vm.warp(uint256(spec3.commitDeadline) + 1);
        _reveal(jobId, spec3, alice, GOOD);
    }

    function test_reveal_acceptsAtDeadlineRejectsAfter() public {
        uint256 jobId = _post(spec3);
        _claimAll3(jobId);
        _commit(jobId, spec3, alice, GOOD);
        _commit(jobId, spec3, bob, GOOD);
        vm.warp(spec3.revealDeadline);
        _reveal(jobId, spec3, alice, GOOD);
        vm.warp(uint256(spec3.revealDeadline) + 1);
        vm.prank(bob);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrow.EscrowRevealClosed.selector, jobId, spec3.revealDeadline
            )
        );
        escrow.reveal(jobId, _terms(spec3), GOOD, _salt(bob), _none(), bytes32(0));
    }

    function test_reveal_revertsOnWrongOpening() public {
        uint256 jobId = _post(spec1);
        _claim(jobId, spec1, alice);
        _commit(jobId, spec1, alice, GOOD);
        vm.startPrank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowCommitmentMismatch.selector, jobId, alice)
        );
        escrow.reveal(jobId, _terms(spec1), BAD, _salt(alice), _none(), bytes32(0));
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowCommitmentMismatch.selector, jobId, alice)
        );
        escrow.reveal(jobId, _terms(spec1), GOOD, bytes32(0), _none(), bytes32(0));
        vm.stopPrank();
    }

    function test_reveal_revertsWhenNotCommittedOrTwice() public {
        uint256 jobId = _post(spec3);
        _claimAll3(jobId);
        _commit(jobId, spec3, alice, GOOD);
        vm.warp(uint256(spec3.commitDeadline) + 1);
        vm.prank(bob);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrow.EscrowWrongReplicaStatus.selector,
                jobId,
                bob,
                IJobEscrow.ReplicaStatus.Claimed
            )
        );
        escrow.reveal(jobId, _terms(spec3), GOOD, _salt(bob), _none(), bytes32(0));
        _reveal(jobId, spec3, alice, GOOD);
        vm.prank(alice);
        vm.expectPartialRevert(IJobEscrow.EscrowWrongReplicaStatus.selector);
        escrow.reveal(jobId, _terms(spec3), GOOD, _salt(alice), _none(), bytes32(0));
    }

    function test_reveal_revertsOnUnfilledJob() public {
        uint256 jobId = _post(spec3);
        _claim(jobId, spec3, alice);
        _commit(jobId, spec3, alice, GOOD);
        vm.warp(uint256(spec3.commitDeadline) + 1);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowJobUnfilled.selector, jobId));
        escrow.reveal(jobId, _terms(spec3), GOOD, _salt(alice), _none(), bytes32(0));
    }

    function test_reveal_revertsOnUnknownJob() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowJobNotFound.selector, 9));
        escrow.reveal(9, _terms(spec3), GOOD, bytes32(0), _none(), bytes32(0));
    }

    // ---------------------------------------------------------------- last reveal settles

    function _revealed(uint256 jobId) internal view returns (uint8 revealed) {
        (,,, revealed) = escrow.jobState(jobId);
    }

    function _assertSettled(uint256 jobId, IJobEscrow.JobSpec memory spec) internal {
        (bytes24 h, uint8 c, uint8 m, uint8 r) = escrow.jobState(jobId);
        assertEq(uint256(bytes32(h)) + c + m + r, 0, "job deleted");
        for (uint256 i = 0; i < _claimers[jobId].length; ++i) {
            address p = _claimers[jobId][i];
            assertEq(uint256(escrow.replicaOf(jobId, p)), 0, "replica deleted");
            assertEq(escrow.laneJobOf(jobId, p), 0, "lane free");
        }
        // Settled: finalize has nothing left to do, before or after the deadlines.
        address[] memory all = _othersOf(jobId, address(0));
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowJobNotFound.selector, jobId));
        _finalize(jobId, spec, all, GOOD);
        vm.warp(uint256(spec.revealDeadline) + 1);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowJobNotFound.selector, jobId));
        _finalize(jobId, spec, all, GOOD);
    }

    function test_lastReveal_singleReplicaSettles() public {
        uint256 jobId = _post(spec1);
        _claim(jobId, spec1, alice);
        _commit(jobId, spec1, alice, GOOD);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaRevealed(jobId, alice, GOOD);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaSettled(jobId, alice, IStaking.Settlement.Completed, spec1.bounty, 0);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.JobFinalized(jobId, IJobEscrow.Outcome.Completed, GOOD, 1, 0);
        // No provider list: the only claimer is the caller.
        vm.prank(alice);
        escrow.reveal(jobId, _terms(spec1), GOOD, _salt(alice), _none(), bytes32(0));
        assertEq(escrow.balanceOf(alice), spec1.bounty, "earned");
        (, uint256 locked,,) = escrow.stakeOf(alice);
        assertEq(locked, 0, "unlocked");
        (uint256 completed,,,) = escrow.reputationOf(alice);
        assertEq(completed, 1, "completed");
        assertEq(escrow.balanceOf(consumer), 0, "nothing to the consumer");
        _assertSettled(jobId, spec1);
    }

    function test_lastReveal_dissenterSlashedToConsumer() public {
        uint256 jobId = _post(spec3);
        _claimAll3(jobId);
        _commit(jobId, spec3, alice, GOOD);
        _commit(jobId, spec3, bob, BAD);
        _commit(jobId, spec3, carol, GOOD);
        _reveal(jobId, spec3, alice, GOOD);
        assertEq(_revealed(jobId), 1, "one revealed");
        _reveal(jobId, spec3, bob, BAD);
        assertEq(_revealed(jobId), 2, "two revealed");
        uint256 penalty = spec3.collateral * SLASH_BPS / 10_000;
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaRevealed(jobId, carol, GOOD);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaSettled(
            jobId, alice, IStaking.Settlement.Completed, spec3.bounty / 2, 0
        );
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaSettled(jobId, bob, IStaking.Settlement.Slashed, 0, penalty);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaSettled(
            jobId, carol, IStaking.Settlement.Completed, spec3.bounty / 2, 0
        );
        vm.expectEmit(address(escrow));
        emit IJobEscrow.BalanceCredited(consumer, jobId, penalty);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.JobFinalized(jobId, IJobEscrow.Outcome.Completed, GOOD, 2, penalty);
        _reveal(jobId, spec3, carol, GOOD);
        assertEq(escrow.balanceOf(alice), spec3.bounty / 2, "alice half");
        assertEq(escrow.balanceOf(carol), spec3.bounty / 2, "carol half");
        assertEq(escrow.balanceOf(bob), 0, "bob nothing");
        assertEq(escrow.balanceOf(consumer), penalty, "consumer gets slash");
        (uint256 staked, uint256 locked,,) = escrow.stakeOf(bob);
        assertEq(staked, 10 ether - penalty, "bob slashed");
        assertEq(locked, 0, "bob unlocked");
        (, uint256 slashed,,) = escrow.reputationOf(bob);
        assertEq(slashed, 1, "bob slashed count");
        assertEq(_heldBeyondStakes(), spec3.bounty + penalty, "escrow holds credits");
        _assertSettled(jobId, spec3);
    }

    /// The dissenter reveals last: it names the quorum's hash (from ReplicaRevealed), or its
    /// reveal reverts, and it is slashed by its own reveal.
    function test_lastReveal_dissenterLastNeedsQuorumHash() public {
        uint256 jobId = _post(spec3);
        _claimAll3(jobId);
        _commit(jobId, spec3, alice, GOOD);
        _commit(jobId, spec3, bob, BAD);
        _commit(jobId, spec3, carol, GOOD);
        _reveal(jobId, spec3, alice, GOOD);
        _reveal(jobId, spec3, carol, GOOD);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowNotQuorumResult.selector, jobId, bytes32(0))
        );
        _reveal(jobId, spec3, bob, BAD);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowNotQuorumResult.selector, jobId, BAD)
        );
        _revealHint(jobId, spec3, bob, BAD, BAD);
        uint256 penalty = spec3.collateral * SLASH_BPS / 10_000;
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaRevealed(jobId, bob, BAD);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaSettled(
            jobId, alice, IStaking.Settlement.Completed, spec3.bounty / 2, 0
        );
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaSettled(jobId, bob, IStaking.Settlement.Slashed, 0, penalty);
        _revealHint(jobId, spec3, bob, BAD, GOOD);
        assertEq(escrow.balanceOf(carol), spec3.bounty / 2, "carol half");
        assertEq(escrow.balanceOf(consumer), penalty, "consumer gets slash");
        _assertSettled(jobId, spec3);
    }

    /// A hint is only read when the caller's own hash lacks the quorum: a winner's garbage
    /// hint is ignored, and so is a hint on a reveal that is not the last.
    function test_lastReveal_ignoresHintsItDoesNotNeed() public {
        uint256 jobId = _post(spec3);
        _claimAll3(jobId);
        _commit(jobId, spec3, alice, GOOD);
        _commit(jobId, spec3, bob, GOOD);
        _commit(jobId, spec3, carol, GOOD);
        address[] memory junk = _list(address(0xdead));
        vm.prank(bob);
        escrow.reveal(jobId, _terms(spec3), GOOD, _salt(bob), junk, BAD);
        vm.prank(carol);
        escrow.reveal(jobId, _terms(spec3), GOOD, _salt(carol), _none(), BAD);
        assertEq(_revealed(jobId), 2, "earlier reveals ignore the list");
        vm.expectEmit(address(escrow));
        emit IJobEscrow.JobFinalized(jobId, IJobEscrow.Outcome.Completed, GOOD, 3, 0);
        _revealHint(jobId, spec3, alice, GOOD, BAD);
        _assertSettled(jobId, spec3);
    }

    function test_lastReveal_noQuorumRefundsConsumer() public {
        uint256 jobId = _post(spec3);
        _claimAll3(jobId);
        _commit(jobId, spec3, alice, GOOD);
        _commit(jobId, spec3, bob, BAD);
        _commit(jobId, spec3, carol, keccak256("third"));
        _reveal(jobId, spec3, alice, GOOD);
        _reveal(jobId, spec3, bob, BAD);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaSettled(jobId, alice, IStaking.Settlement.Released, 0, 0);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaSettled(jobId, bob, IStaking.Settlement.Released, 0, 0);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaSettled(jobId, carol, IStaking.Settlement.Released, 0, 0);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.BalanceCredited(consumer, jobId, spec3.bounty);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.JobFinalized(jobId, IJobEscrow.Outcome.NoQuorum, bytes32(0), 0, 0);
        // Any hint without a quorum: ignored.
        _revealHint(jobId, spec3, carol, keccak256("third"), GOOD);
        assertEq(escrow.balanceOf(consumer), spec3.bounty, "refund");
        assertEq(
            escrow.balanceOf(alice) + escrow.balanceOf(bob) + escrow.balanceOf(carol),
            0,
            "no payout"
        );
        (uint256 staked, uint256 locked,,) = escrow.stakeOf(bob);
        assertEq(staked, 10 ether, "revealers not slashed");
        assertEq(locked, 0, "released");
        _assertSettled(jobId, spec3);
    }

    /// Whoever reveals last, the remainder goes to the lowest winning address: the caller is
    /// merged into the list at its place.
    function test_lastReveal_remainderGoesToFirstWinnerWhoeverIsLast() public {
        address[3] memory order = [alice, bob, carol];
        for (uint256 last = 0; last < 3; ++last) {
            IJobEscrow.JobSpec memory s = _spec(3);
            s.bounty = 10;
            uint256 jobId = _post(s);
            _claim(jobId, s, carol);
            _claim(jobId, s, alice);
            _claim(jobId, s, bob);
            for (uint256 i = 0; i < 3; ++i) {
                _commit(jobId, s, order[i], GOOD);
            }
            uint256[3] memory before =
                [escrow.balanceOf(alice), escrow.balanceOf(bob), escrow.balanceOf(carol)];
            for (uint256 i = 1; i <= 3; ++i) {
                _reveal(jobId, s, order[(last + i) % 3], GOOD);
            }
            assertEq(escrow.balanceOf(alice) - before[0], 4, "first winner gets remainder");
            assertEq(escrow.balanceOf(bob) - before[1], 3, "bob");
            assertEq(escrow.balanceOf(carol) - before[2], 3, "carol");
        }
    }

    function test_lastReveal_revertsOnWrongOthers() public {
        uint256 jobId = _post(spec3);
        _claimAll3(jobId);
        _commit(jobId, spec3, alice, GOOD);
        _commit(jobId, spec3, bob, GOOD);
        _commit(jobId, spec3, carol, GOOD);
        _reveal(jobId, spec3, alice, GOOD);
        _reveal(jobId, spec3, carol, GOOD);
        IJobEscrow.JobTerms memory t = _terms(spec3);
        bytes32 salt = _salt(bob);
        address stranger = address(uint160(carol) + 1);
        vm.startPrank(bob);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowWrongReplicaSet.selector, jobId, 0, 2)
        );
        escrow.reveal(jobId, t, GOOD, salt, _none(), bytes32(0));
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowWrongReplicaSet.selector, jobId, 3, 2)
        );
        escrow.reveal(jobId, t, GOOD, salt, _list(alice, bob, carol), bytes32(0));
        vm.expectPartialRevert(IJobEscrow.EscrowWrongReplicaSet.selector);
        escrow.reveal(jobId, t, GOOD, salt, _list(carol, alice), bytes32(0));
        vm.expectPartialRevert(IJobEscrow.EscrowWrongReplicaSet.selector);
        escrow.reveal(jobId, t, GOOD, salt, _list(alice, alice), bytes32(0));
        // The caller itself instead of another claimer, before or after its place.
        vm.expectPartialRevert(IJobEscrow.EscrowWrongReplicaSet.selector);
        escrow.reveal(jobId, t, GOOD, salt, _list(alice, bob), bytes32(0));
        vm.expectPartialRevert(IJobEscrow.EscrowWrongReplicaSet.selector);
        escrow.reveal(jobId, t, GOOD, salt, _list(bob, carol), bytes32(0));
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowNotReplica.selector, jobId, stranger)
        );
        escrow.reveal(jobId, t, GOOD, salt, _list(alice, stranger), bytes32(0));
        vm.stopPrank();
        assertEq(_revealed(jobId), 2, "still waiting for bob");
        _reveal(jobId, spec3, bob, GOOD);
        _assertSettled(jobId, spec3);
    }

    /// The caller the lowest or highest address: every mis-merge of it is caught.
    function test_lastReveal_revertsWhenCallerListedAtTheEdges() public {
        uint256 jobId = _post(spec3);
        _claimAll3(jobId);
        _commit(jobId, spec3, alice, GOOD);
        _commit(jobId, spec3, bob, GOOD);
        _commit(jobId, spec3, carol, GOOD);
        _reveal(jobId, spec3, bob, GOOD);
        _reveal(jobId, spec3, carol, GOOD);
        vm.prank(alice);
        vm.expectPartialRevert(IJobEscrow.EscrowWrongReplicaSet.selector);
        escrow.reveal(jobId, _terms(spec3), GOOD, _salt(alice), _list(alice, bob), bytes32(0));
        _reveal(jobId, spec3, alice, GOOD);
        _assertSettled(jobId, spec3);
    }

    /// Nothing in the winners' or dissenters' accounts can make the settling reveal revert:
    /// credits beyond 96 bits spill over, reputation counters saturate, and a dissenter whose
    /// whole free stake is unbonding is still slashed.
    function test_lastReveal_neverRevertsAtTheLimits() public {
        uint256 jobId = _post(spec3);
        _claimAll3(jobId);
        _commit(jobId, spec3, alice, GOOD);
        _commit(jobId, spec3, bob, BAD);
        _commit(jobId, spec3, carol, GOOD);
        // bob unbonds all its free stake: staked == locked.
        vm.prank(bob);
        escrow.requestUnstake(10 ether - spec3.collateral);
        uint256 max96 = type(uint96).max;
        // alice: balance one wei short of 96 bits, completed at uint32 max; bob: slashed and
        // missed at uint16 max; the consumer: balance one wei short of 96 bits.
        _setAccount(alice, max96 - 1, type(uint32).max, 0, 0);
        _setAccount(bob, 0, 0, type(uint16).max, type(uint16).max);
        _setAccount(consumer, max96 - 1, 0, 0, 0);
        _reveal(jobId, spec3, alice, GOOD);
        _reveal(jobId, spec3, carol, GOOD);
        _revealHint(jobId, spec3, bob, BAD, GOOD);
        uint256 penalty = spec3.collateral * SLASH_BPS / 10_000;
        assertEq(escrow.balanceOf(alice), max96 - 2 + spec3.bounty / 2, "alice spilled");
        assertEq(escrow.balanceOf(consumer), max96 - 2 + penalty, "consumer spilled");
        (uint256 completed,,,) = escrow.reputationOf(alice);
        assertEq(completed, type(uint32).max, "saturated");
        (, uint256 slashed, uint256 missed,) = escrow.reputationOf(bob);
        assertEq(slashed + missed, 2 * uint256(type(uint16).max), "saturated");
        (uint256 staked, uint256 locked, uint256 unbonding,) = escrow.stakeOf(bob);
        assertEq(staked, spec3.collateral - penalty, "slashed from the bonded collateral");
        assertEq(locked, 0, "unlocked");
        assertEq(unbonding, 10 ether - spec3.collateral, "unbonding untouched");
        _assertSettled(jobId, spec3);
    }

    /// @dev Overwrites `who`'s packed account word (keeping its locked collateral).
    function _setAccount(address who, uint256 raw, uint32 completed, uint16 slashed, uint16 missed)
        internal
    {
        bytes32 slot = keccak256(abi.encode(who, uint256(3))); // _accounts is slot 3
        uint256 word = uint256(vm.load(address(escrow), slot));
        uint256 locked = (word >> 96) & type(uint96).max;
        word = raw | locked << 96 | uint256(completed) << 192 | uint256(slashed) << 224
            | uint256(missed) << 240;
        vm.store(address(escrow), slot, bytes32(word));
    }

    // ---------------------------------------------------------------- finalize

    function test_finalize_filledWaitsForRevealDeadline() public {
        uint256 jobId = _post(spec3);
        _claimAll3(jobId);
        _commit(jobId, spec3, alice, GOOD);
        _commit(jobId, spec3, bob, GOOD);
        _commit(jobId, spec3, carol, GOOD);
        _reveal(jobId, spec3, alice, GOOD);
        _reveal(jobId, spec3, bob, GOOD);
        vm.warp(spec3.revealDeadline);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrow.EscrowNotFinalizable.selector, jobId, uint256(spec3.revealDeadline) + 1
            )
        );
        _finalize(jobId, spec3, _list(alice, bob, carol), GOOD);
        vm.warp(uint256(spec3.revealDeadline) + 1);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaSettled(
            jobId, carol, IStaking.Settlement.Missed, 0, spec3.collateral / 2
        );
        vm.expectEmit(address(escrow));
        emit IJobEscrow.BalanceCredited(consumer, jobId, spec3.collateral / 2);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.JobFinalized(
            jobId, IJobEscrow.Outcome.Completed, GOOD, 2, spec3.collateral / 2
        );
        _finalize(jobId, spec3, _list(alice, bob, carol), GOOD);
        assertEq(escrow.balanceOf(alice), spec3.bounty / 2, "alice half");
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowJobNotFound.selector, jobId));
        _finalize(jobId, spec3, _list(alice, bob, carol), GOOD);
    }

    function test_finalize_noShowMissedAfterRevealDeadline() public {
        uint256 jobId = _post(spec3);
        _claimAll3(jobId);
        _commit(jobId, spec3, alice, GOOD);
        _commit(jobId, spec3, carol, GOOD);
        vm.warp(uint256(spec3.commitDeadline) + 1);
        _reveal(jobId, spec3, alice, GOOD);
        _reveal(jobId, spec3, carol, GOOD);
        vm.warp(spec3.revealDeadline);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrow.EscrowNotFinalizable.selector, jobId, uint256(spec3.revealDeadline) + 1
            )
        );
        _finalize(jobId, spec3, _list(alice, bob, carol), GOOD);
        vm.warp(uint256(spec3.revealDeadline) + 1);
        _finalize(jobId, spec3, _list(alice, bob, carol), GOOD);
        (,, uint256 missed,) = escrow.reputationOf(bob);
        assertEq(missed, 1, "bob missed");
        assertEq(escrow.balanceOf(consumer), spec3.collateral / 2, "consumer gets slash");
    }

    function test_finalize_noQuorumAfterRevealDeadline() public {
        uint256 jobId = _post(spec3);
        _claimAll3(jobId);
        _commit(jobId, spec3, alice, GOOD);
        _commit(jobId, spec3, bob, BAD);
        vm.warp(uint256(spec3.commitDeadline) + 1);
        _reveal(jobId, spec3, alice, GOOD);
        _reveal(jobId, spec3, bob, BAD);
        vm.warp(uint256(spec3.revealDeadline) + 1);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.JobFinalized(
            jobId, IJobEscrow.Outcome.NoQuorum, bytes32(0), 0, spec3.collateral / 2
        );
        _finalize(jobId, spec3, _list(alice, bob, carol), GOOD);
        assertEq(
            escrow.balanceOf(consumer), spec3.bounty + spec3.collateral / 2, "refund and slash"
        );
        (uint256 staked,,,) = escrow.stakeOf(bob);
        assertEq(staked, 10 ether, "revealers not slashed");
    }

    function test_finalize_revertsOnNonQuorumHashWhenQuorumExists() public {
        uint256 jobId = _post(spec3);
        _claimAll3(jobId);
        _commit(jobId, spec3, alice, GOOD);
        _commit(jobId, spec3, carol, GOOD);
        vm.warp(uint256(spec3.commitDeadline) + 1);
        _reveal(jobId, spec3, alice, GOOD);
        _reveal(jobId, spec3, carol, GOOD);
        vm.warp(uint256(spec3.revealDeadline) + 1);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowNotQuorumResult.selector, jobId, BAD)
        );
        _finalize(jobId, spec3, _list(alice, bob, carol), BAD);
    }

    function test_finalize_unfilledRefundsAndReleases() public {
        uint256 jobId = _post(spec3);
        _claim(jobId, spec3, alice);
        vm.warp(spec3.claimDeadline);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrow.EscrowNotFinalizable.selector, jobId, uint256(spec3.claimDeadline) + 1
            )
        );
        _finalize(jobId, spec3, _list(alice), bytes32(0));
        vm.warp(uint256(spec3.claimDeadline) + 1);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.JobFinalized(jobId, IJobEscrow.Outcome.Unfilled, bytes32(0), 0, 0);
        _finalize(jobId, spec3, _list(alice), bytes32(0));
        assertEq(escrow.balanceOf(consumer), spec3.bounty, "refund");
        (uint256 staked, uint256 locked,,) = escrow.stakeOf(alice);
        assertEq(staked, 10 ether, "no slash");
        assertEq(locked, 0, "released");
    }

    function test_finalize_unclaimedRefunds() public {
        uint256 jobId = _post(spec3);
        vm.warp(uint256(spec3.claimDeadline) + 1);
        _finalize(jobId, spec3, new address[](0), bytes32(0));
        assertEq(escrow.balanceOf(consumer), spec3.bounty, "refund");
    }

    function test_finalize_revertsOnWrongReplicaSet() public {
        uint256 jobId = _post(spec3);
        _claimAll3(jobId);
        vm.warp(uint256(spec3.revealDeadline) + 1);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowWrongReplicaSet.selector, jobId, 1, 3)
        );
        _finalize(jobId, spec3, _list(alice), bytes32(0));
        vm.expectPartialRevert(IJobEscrow.EscrowWrongReplicaSet.selector);
        _finalize(jobId, spec3, _list(bob, alice, carol), bytes32(0));
        vm.expectPartialRevert(IJobEscrow.EscrowWrongReplicaSet.selector);
        _finalize(jobId, spec3, _list(alice, alice, carol), bytes32(0));
        address stranger = address(uint160(carol) + 1);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowNotReplica.selector, jobId, stranger)
        );
        _finalize(jobId, spec3, _list(alice, bob, stranger), bytes32(0));
    }

    function test_finalize_revertsTwice() public {
        uint256 jobId = _post(spec1);
        vm.warp(uint256(spec1.claimDeadline) + 1);
        _finalize(jobId, spec1, new address[](0), bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowJobNotFound.selector, jobId));
        _finalize(jobId, spec1, new address[](0), bytes32(0));
    }

    // ---------------------------------------------------------------- cancel

    function test_cancel_creditsRefund() public {
        uint256 jobId = _post(spec3);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.JobCancelled(jobId);
        vm.prank(consumer);
        escrow.cancel(jobId, _terms(spec3));
        assertEq(escrow.balanceOf(consumer), spec3.bounty, "refund credited");
        vm.prank(consumer);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowJobNotFound.selector, jobId));
        escrow.cancel(jobId, _terms(spec3));
    }

    function test_cancel_revertsForOthers() public {
        uint256 jobId = _post(spec3);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowNotConsumer.selector, jobId, alice));
        escrow.cancel(jobId, _terms(spec3));
    }

    function test_cancel_revertsAfterClaim() public {
        uint256 jobId = _post(spec3);
        _claim(jobId, spec3, alice);
        vm.prank(consumer);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowAlreadyClaimedJob.selector, jobId, 1)
        );
        escrow.cancel(jobId, _terms(spec3));
    }

    // ---------------------------------------------------------------- balances

    function _creditConsumer() internal returns (uint256 jobId) {
        jobId = _post(spec3);
        vm.prank(consumer);
        escrow.cancel(jobId, _terms(spec3));
    }

    // ---------------------------------------------------------------- lanes

    /// @dev Posts single-replica jobs until the next id shares lane `jobId % LANES` with
    /// `jobId`, and returns that next job's id.
    function _postUntilSameLane(uint256 jobId) internal returns (uint256 next) {
        while (escrow.nextJobId() % escrow.LANES() != jobId % escrow.LANES()) {
            _post(spec1);
        }
        next = _post(spec1);
    }

    function test_claim_revertsWhenLaneBusyThenReusesIt() public {
        uint256 first = _post(spec1);
        _claim(first, spec1, alice);
        uint256 twin = _postUntilSameLane(first);
        assertEq(twin, first + 64, "same lane");
        assertEq(escrow.laneJobOf(twin, alice), first, "lane holds the first job");
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowLaneBusy.selector, twin, alice, first)
        );
        escrow.claim(twin, _terms(spec1));
        assertEq(uint256(escrow.replicaOf(twin, alice)), 0, "no replica of the twin");
        _commit(first, spec1, alice, GOOD);
        _reveal(first, spec1, alice, GOOD); // the last reveal settles
        assertEq(escrow.laneJobOf(twin, alice), 0, "lane freed by settlement");
        _claim(twin, spec1, alice);
        assertEq(
            uint256(escrow.replicaOf(twin, alice)),
            uint256(IJobEscrow.ReplicaStatus.Claimed),
            "lane reused"
        );
        assertEq(uint256(escrow.replicaOf(first, alice)), 0, "old job gone from the lane");
    }

    function test_finalize_revertsForProviderOfAnotherJobInTheLane() public {
        uint256 first = _post(spec1);
        _claim(first, spec1, alice);
        uint256 twin = _postUntilSameLane(first);
        _claim(twin, spec1, bob);
        vm.warp(spec1.revealDeadline + 1);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowNotReplica.selector, twin, alice));
        escrow.finalize(twin, _terms(spec1), _list(alice), GOOD);
    }

    /// JobPosted carries the calldata: only the canonical encoding is accepted, and dirty
    /// padding after the input location is zeroed in the event.
    function test_postJob_acceptsOnlyCanonicalEncoding() public {
        IJobEscrow.JobSpec memory s = _spec(3);
        bytes memory data = abi.encodeCall(escrow.postJob, (s));
        bytes memory invalid =
            abi.encodeWithSelector(IJobEscrow.EscrowInvalidSpec.selector, bytes32("encoding"));
        vm.startPrank(consumer);
        // Trailing bytes.
        vm.expectRevert(invalid);
        _rawPost(bytes.concat(data, bytes32(0)), s.bounty);
        // The tuple one word further (a junk word after the head offset).
        bytes memory shifted = bytes.concat(
            bytes4(data), bytes32(uint256(0x40)), bytes32(0), _slice(data, 36, data.length)
        );
        vm.expectRevert(invalid);
        _rawPost(shifted, s.bounty);
        // Dirty padding: accepted, and the event holds the canonical encoding.
        bytes memory dirty = bytes.concat(data);
        dirty[dirty.length - 1] = 0xff;
        vm.expectEmit(address(escrow));
        emit IJobEscrow.JobPosted(1, consumer, s);
        _rawPost(dirty, s.bounty);
        vm.stopPrank();
        assertEq(escrow.nextJobId(), 2, "posted once");
    }

    function _rawPost(bytes memory data, uint256 bounty) internal {
        (bool ok, bytes memory ret) = address(escrow).call{value: _value(bounty)}(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 32), mload(ret))
            }
        }
    }

    function _slice(bytes memory b, uint256 from, uint256 to)
        internal
        pure
        returns (bytes memory out)
    {
        out = new bytes(to - from);
        for (uint256 i = from; i < to; ++i) {
            out[i - from] = b[i];
        }
    }

    function test_postJob_revertsOnDeadlinesBeyond32Bits() public {
        IJobEscrow.JobSpec memory s = _spec(1);
        s.revealDeadline = uint40(uint256(type(uint32).max) + 1);
        _expectInvalid(s, "deadlines");
    }

    // ---------------------------------------------------------------- balances

    function test_credit_beyond96BitsSpillsAndWithdraws() public {
        IJobEscrow.JobSpec memory s = _spec(1);
        s.bounty = type(uint96).max;
        _fund(consumer, 2 * uint256(s.bounty));
        uint256 a = _post(s);
        uint256 b = _post(s);
        vm.startPrank(consumer);
        escrow.cancel(a, _terms(s));
        escrow.cancel(b, _terms(s));
        vm.stopPrank();
        uint256 total = 2 * uint256(s.bounty);
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

    function test_withdraw_paysWholeBalance() public {
        _creditConsumer();
        uint256 before = _assetBalance(consumer);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.Withdrawn(consumer, spec3.bounty);
        vm.prank(consumer);
        escrow.withdraw();
        assertEq(_assetBalance(consumer), before + spec3.bounty, "paid");
        assertEq(escrow.balanceOf(consumer), 0, "balance");
        assertEq(_heldBeyondStakes(), 0, "only stakes left");
    }

    function test_withdraw_paysPartAmount() public {
        _creditConsumer();
        uint256 before = _assetBalance(consumer);
        vm.prank(consumer);
        escrow.withdraw(1 ether);
        assertEq(_assetBalance(consumer), before + 1 ether, "paid");
        assertEq(escrow.balanceOf(consumer), spec3.bounty - 1 ether, "rest");
    }

    function test_withdraw_revertsOnNothingOrTooMuch() public {
        vm.prank(alice);
        vm.expectRevert(IJobEscrow.EscrowNothingToWithdraw.selector);
        escrow.withdraw();
        vm.prank(alice);
        vm.expectRevert(IJobEscrow.EscrowNothingToWithdraw.selector);
        escrow.withdraw(0);
        _creditConsumer();
        vm.prank(consumer);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrow.EscrowInsufficientBalance.selector, spec3.bounty, spec3.bounty + 1
            )
        );
        escrow.withdraw(spec3.bounty + 1);
    }

    function test_openAccount_prepaysSlotWithoutBalance() public {
        vm.expectEmit(address(escrow));
        emit IJobEscrow.AccountOpened(alice, 3);
        vm.prank(alice);
        escrow.openAccount(3);
        assertEq(escrow.balanceOf(alice), 0, "still zero");
        assertEq(escrow.laneJobOf(1, alice), 0, "opened lanes are free");
        vm.prank(alice);
        escrow.openAccount(64); // idempotent for opened slots
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrow.EscrowParameterOutOfRange.selector, bytes32("lanes"), 65
            )
        );
        escrow.openAccount(65);
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
        IJobEscrow.JobSpec memory s = _spec(1);
        s.consumer = address(payee);
        vm.deal(address(this), s.bounty);
        uint256 jobId = payee.post{value: s.bounty}(s);
        payee.cancel(jobId, _terms(s));
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

contract JobEscrowEthTest is JobEscrowTest {
    function _tokenMode() internal pure override returns (bool) {
        return false;
    }
}

contract JobEscrowTokenTest is JobEscrowTest {
    function _tokenMode() internal pure override returns (bool) {
        return true;
    }
}
