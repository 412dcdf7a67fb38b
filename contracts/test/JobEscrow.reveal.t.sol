// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {EscrowFixture} from "./utils/EscrowFixture.sol";
import {IJobEscrow} from "../src/interfaces/IJobEscrow.sol";
import {IStaking} from "../src/interfaces/IStaking.sol";

/// @notice reveal: when it opens and closes (+-1 s), what it checks, and the last reveal's
/// settlement (payouts, burned slashes, refunds, duplicate slots, replica lists).
/// Three equally staked providers and k = 3: all drawn (see JobEscrow.commit.t.sol).
abstract contract JobEscrowRevealTest is EscrowFixture {
    uint256 internal job3;

    function setUp() public override {
        super.setUp();
        _stakeAll(10 ether);
        job3 = _post(_spec(3));
    }

    function _fill(uint256 jobId, bytes32 a, bytes32 b, bytes32 c) internal {
        _commit(jobId, alice, 0, a);
        _commit(jobId, bob, 0, b);
        _commit(jobId, carol, 0, c);
    }

    /// @dev `p` reveals `resultHash` with `salt` from `lane` of `jobId`, listing `others`
    /// (no quorum hash), and the call must revert with `err`.
    function _revealReverts(
        uint256 jobId,
        address p,
        uint256 lane,
        bytes32 resultHash,
        bytes32 salt,
        uint256[] memory others,
        bytes memory err
    ) internal {
        IJobEscrow.JobTerms memory t = _terms(jobId);
        vm.prank(p);
        vm.expectRevert(err);
        escrow.reveal(jobId, t, lane, resultHash, salt, others, bytes32(0));
    }

    function _noSlots() internal pure returns (uint256[] memory) {
        return new uint256[](0);
    }

    function _wrongStatus(uint256 jobId, address p, IJobEscrow.ReplicaStatus status)
        internal
        pure
        returns (bytes memory)
    {
        return
            abi.encodeWithSelector(IJobEscrow.EscrowWrongReplicaStatus.selector, jobId, p, status);
    }

    function _wrongSet(uint256 listed, uint256 expected) internal view returns (bytes memory) {
        return
            abi.encodeWithSelector(
                IJobEscrow.EscrowWrongReplicaSet.selector, job3, listed, expected
            );
    }

    function test_reveal_opensOnceAllSlotsAreTaken() public {
        bytes32 good = _good(job3);
        _commit(job3, alice, 0, good);
        _commit(job3, bob, 0, good);
        IJobEscrow.JobTerms memory t = _terms(job3);
        bytes32 salt = _salt(job3, alice, 0);
        uint256[] memory none = _noSlots();
        _revealReverts(
            job3,
            alice,
            0,
            good,
            salt,
            none,
            abi.encodeWithSelector(IJobEscrow.EscrowRevealNotOpen.selector, job3, 2, 3)
        );
        _commit(job3, carol, 0, good);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaRevealed(job3, alice, good);
        vm.prank(alice);
        escrow.reveal(job3, t, 0, good, salt, none, bytes32(0)); // not last: no list needed
        assertEq(
            uint256(escrow.replicaOf(job3, alice, 0)),
            uint256(IJobEscrow.ReplicaStatus.Revealed),
            "revealed"
        );
        (, uint8 committed, uint8 revealed,) = escrow.jobState(job3);
        assertEq(committed, 3, "committed");
        assertEq(revealed, 1, "revealed count");
    }

    function test_reveal_revertsOnUnfilledJobAfterCommitDeadline() public {
        bytes32 good = _good(job3);
        _commit(job3, alice, 0, good);
        bytes32 salt = _salt(job3, alice, 0);
        vm.warp(_specOf[job3].commitDeadline);
        _revealReverts(
            job3,
            alice,
            0,
            good,
            salt,
            _noSlots(),
            abi.encodeWithSelector(IJobEscrow.EscrowRevealNotOpen.selector, job3, 1, 3)
        );
        vm.warp(uint256(_specOf[job3].commitDeadline) + 1);
        _revealReverts(
            job3,
            alice,
            0,
            good,
            salt,
            _noSlots(),
            abi.encodeWithSelector(IJobEscrow.EscrowJobUnfilled.selector, job3)
        );
    }

    function test_reveal_acceptsAtDeadlineRejectsAfter() public {
        bytes32 good = _good(job3);
        _fill(job3, good, good, good);
        vm.warp(_specOf[job3].revealDeadline);
        _reveal(job3, alice, 0, good);
        vm.warp(uint256(_specOf[job3].revealDeadline) + 1);
        _revealReverts(
            job3,
            bob,
            0,
            good,
            _salt(job3, bob, 0),
            _others(job3, bob, 0),
            abi.encodeWithSelector(
                IJobEscrow.EscrowRevealClosed.selector, job3, _specOf[job3].revealDeadline
            )
        );
    }

    function test_reveal_revertsOnWrongOpening() public {
        bytes32 good = _good(job3);
        _fill(job3, good, good, good);
        bytes32 salt = _salt(job3, alice, 0);
        bytes memory mismatch =
            abi.encodeWithSelector(IJobEscrow.EscrowCommitmentMismatch.selector, job3, alice);
        _revealReverts(job3, alice, 0, _bad(job3, 0), salt, _noSlots(), mismatch);
        _revealReverts(job3, alice, 0, good, bytes32(uint256(salt) ^ 1), _noSlots(), mismatch);
    }

    function test_reveal_revertsWhenNotCommittedOrTwice() public {
        bytes32 good = _good(job3);
        _fill(job3, good, good, good);
        bytes32 salt = _salt(job3, alice, 0);
        // A lane holding no slot of the job.
        _revealReverts(
            job3,
            alice,
            1,
            good,
            salt,
            _noSlots(),
            _wrongStatus(job3, alice, IJobEscrow.ReplicaStatus.None)
        );
        _reveal(job3, alice, 0, good);
        _revealReverts(
            job3,
            alice,
            0,
            good,
            salt,
            _noSlots(),
            _wrongStatus(job3, alice, IJobEscrow.ReplicaStatus.Revealed)
        );
    }

    function test_reveal_revertsOnUnknownJob() public {
        IJobEscrow.JobTerms memory t = _terms(job3);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowJobNotFound.selector, 42));
        escrow.reveal(42, t, 0, bytes32(0), bytes32(0), _noSlots(), bytes32(0));
    }

    // ---------------------------------------------------------------- the last reveal

    function test_lastReveal_singleReplicaSettles() public {
        IJobEscrow.JobSpec memory s = _spec(1);
        uint256 jobId = _postDrawing(s, _list(alice), _none());
        bytes32 good = _good(jobId);
        _commit(jobId, alice, 7, good);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaRevealed(jobId, alice, good);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaSettled(jobId, alice, IStaking.Settlement.Completed, s.bounty, 0);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.JobFinalized(jobId, IJobEscrow.Outcome.Completed, good, 1, 0);
        _reveal(jobId, alice, 7, good);
        assertTrue(!_isLive(jobId), "settled and deleted");
        assertEq(escrow.laneJobOf(alice, 7), 0, "lane freed");
        assertEq(_lockedOf(alice), 0, "collateral unlocked");
        assertEq(escrow.balanceOf(alice), s.bounty, "paid");
        (uint256 completed,,, uint256 score) = escrow.reputationOf(alice);
        assertEq(completed, 1, "completed");
        assertEq(score, 1, "score");
    }

    /// The dissenter is slashed and the penalty burned: nobody is credited it (P1).
    function test_lastReveal_dissenterSlashedAndBurned() public {
        bytes32 good = _good(job3);
        bytes32 bad = _bad(job3, 1);
        _fill(job3, good, good, bad);
        uint256 penalty = _penalty(_specOf[job3].collateral);
        uint256 share = uint256(_specOf[job3].bounty) / 2;
        uint256 totalBefore = escrow.totalStake();
        _reveal(job3, alice, 0, good);
        _reveal(job3, carol, 0, bad);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaSettled(job3, alice, IStaking.Settlement.Completed, share, 0);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaSettled(job3, bob, IStaking.Settlement.Completed, share, 0);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaSettled(job3, carol, IStaking.Settlement.Slashed, 0, penalty);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.JobFinalized(job3, IJobEscrow.Outcome.Completed, good, 2, penalty);
        _reveal(job3, bob, 0, good);
        assertEq(escrow.burned(), penalty, "burned");
        assertEq(escrow.totalStake(), totalBefore - penalty, "out of the total stake");
        assertEq(_stakedOf(carol), 10 ether - penalty, "carol's stake");
        assertEq(escrow.balanceOf(consumer), 0, "nothing to the consumer");
        assertEq(escrow.balanceOf(carol), 0, "nothing to the dissenter");
        (, uint256 slashed,, uint256 score) = escrow.reputationOf(carol);
        assertEq(slashed, 1, "slashed count");
        assertEq(score, 0, "score");
        assertEq(
            _assetBalance(address(escrow)),
            _owed(_list(alice, bob, carol), 0),
            "held = stakes + credits + burned"
        );
    }

    function test_lastReveal_dissenterLastNeedsQuorumHash() public {
        bytes32 good = _good(job3);
        bytes32 bad = _bad(job3, 1);
        _fill(job3, good, good, bad);
        _reveal(job3, alice, 0, good);
        _reveal(job3, bob, 0, good);
        _revealReverts(
            job3,
            carol,
            0,
            bad,
            _salt(job3, carol, 0),
            _others(job3, carol, 0),
            abi.encodeWithSelector(IJobEscrow.EscrowNotQuorumResult.selector, job3, bytes32(0))
        );
        vm.expectEmit(address(escrow));
        emit IJobEscrow.JobFinalized(
            job3, IJobEscrow.Outcome.Completed, good, 2, _penalty(_specOf[job3].collateral)
        );
        _revealHint(job3, carol, 0, bad, good);
    }

    function test_lastReveal_noQuorumRefundsConsumer() public {
        _fill(job3, _good(job3), _bad(job3, 1), _bad(job3, 2));
        _reveal(job3, alice, 0, _good(job3));
        _reveal(job3, bob, 0, _bad(job3, 1));
        uint96 bounty = _specOf[job3].bounty;
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaSettled(job3, alice, IStaking.Settlement.Released, 0, 0);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaSettled(job3, bob, IStaking.Settlement.Released, 0, 0);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaSettled(job3, carol, IStaking.Settlement.Released, 0, 0);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.BalanceCredited(consumer, job3, bounty);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.JobFinalized(job3, IJobEscrow.Outcome.NoQuorum, bytes32(0), 0, 0);
        _reveal(job3, carol, 0, _bad(job3, 2));
        assertEq(escrow.balanceOf(consumer), bounty, "refunded exactly the bounty");
        assertEq(escrow.burned(), 0, "nobody slashed");
        assertEq(_stakedOf(alice) + _stakedOf(bob) + _stakedOf(carol), 30 ether, "stakes intact");
    }

    function test_lastReveal_remainderGoesToLowestWinnerWhoeverIsLast() public {
        IJobEscrow.JobSpec memory s = _spec(3);
        s.bounty = 3 ether + 2; // share 1 ether, remainder 2 wei
        uint256 jobId = _post(s);
        bytes32 good = _good(jobId);
        _fill(jobId, good, good, good);
        _reveal(jobId, carol, 0, good);
        _reveal(jobId, bob, 0, good);
        _reveal(jobId, alice, 0, good);
        assertEq(escrow.balanceOf(alice), 1 ether + 2, "lowest key gets the remainder");
        assertEq(escrow.balanceOf(bob), 1 ether, "share");
        assertEq(escrow.balanceOf(carol), 1 ether, "share");
    }

    function test_lastReveal_revertsOnWrongOthers() public {
        bytes32 good = _good(job3);
        _fill(job3, good, good, good);
        _reveal(job3, alice, 0, good);
        _reveal(job3, bob, 0, good);
        bytes32 salt = _salt(job3, carol, 0);
        uint256 a = _key(alice, 0);
        uint256 b = _key(bob, 0);
        uint256 c = _key(carol, 0);
        _revealReverts(job3, carol, 0, good, salt, _keys(a), _wrongSet(1, 2));
        _revealReverts(job3, carol, 0, good, salt, _keys(a, b, c), _wrongSet(3, 2));
        _revealReverts(job3, carol, 0, good, salt, _keys(b, a), _wrongSet(2, 2)); // not ascending
        _revealReverts(job3, carol, 0, good, salt, _keys(a, a), _wrongSet(2, 2)); // repeated
        _revealReverts(job3, carol, 0, good, salt, _keys(a, c), _wrongSet(2, 2)); // the caller
        _revealReverts(
            job3,
            carol,
            0,
            good,
            salt,
            _keys(a, _key(bob, 1)),
            abi.encodeWithSelector(IJobEscrow.EscrowNotReplica.selector, job3, bob, 1)
        );
        _reveal(job3, carol, 0, good);
        assertTrue(!_isLive(job3), "the right list settles");
    }

    /// The lowest slot revealing last and listing itself (before a higher slot) is refused.
    function test_lastReveal_revertsWhenCallerListedBeforeOthers() public {
        bytes32 good = _good(job3);
        _fill(job3, good, good, good);
        _reveal(job3, bob, 0, good);
        _reveal(job3, carol, 0, good);
        uint256[] memory list = _keys(_key(alice, 0), _key(carol, 0));
        _revealReverts(job3, alice, 0, good, _salt(job3, alice, 0), list, _wrongSet(2, 2));
    }

    /// A lane that holds another live job is no slot of this one.
    function test_reveal_revertsFromLaneOfAnotherJob() public {
        uint256 other = _post(_spec(3));
        _commit(other, alice, 1, _good(other));
        bytes32 good = _good(job3);
        _fill(job3, good, good, good);
        _revealReverts(
            job3,
            alice,
            1,
            good,
            _salt(job3, alice, 1),
            _noSlots(),
            _wrongStatus(job3, alice, IJobEscrow.ReplicaStatus.None)
        );
    }

    /// A provider holding two slots of one job gets both settled Missed, and neither counts
    /// toward the quorum: here bob's lone good reveal is no quorum, so the consumer is
    /// refunded and bob released.
    function test_lastReveal_duplicateSlotsSettledMissed() public {
        bytes32 good = _good(job3);
        _commit(job3, alice, 0, good);
        _commit(job3, alice, 1, good);
        _commit(job3, bob, 0, good);
        uint256 penalty = _penalty(_specOf[job3].collateral);
        _reveal(job3, alice, 0, good);
        _reveal(job3, alice, 1, good);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaSettled(job3, alice, IStaking.Settlement.Missed, 0, penalty);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaSettled(job3, alice, IStaking.Settlement.Missed, 0, penalty);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaSettled(job3, bob, IStaking.Settlement.Released, 0, 0);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.BalanceCredited(consumer, job3, _specOf[job3].bounty);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.JobFinalized(job3, IJobEscrow.Outcome.NoQuorum, bytes32(0), 0, 2 * penalty);
        _reveal(job3, bob, 0, good);
        assertEq(escrow.burned(), 2 * penalty, "both duplicates burned");
        (,, uint256 missed,) = escrow.reputationOf(alice);
        assertEq(missed, 2, "missed twice");
        assertEq(_stakedOf(bob), 10 ether, "bob untouched");
    }

    /// With enough others, the duplicates do not stop an honest quorum: k = 5, q = 3, alice
    /// holds two slots with junk, bob, carol and dave agree.
    function test_lastReveal_duplicatesDoNotBlockHonestQuorum() public {
        address dave = makeAddr("dave");
        _fund(dave, 10 ether);
        _stake(dave, 10 ether);
        _nextBlock();
        uint256 jobId = _post(_spec(5)); // 5 * 10 / 40 > 1: all drawn
        bytes32 good = _good(jobId);
        bytes32 junk = _bad(jobId, 9);
        _commit(jobId, alice, 0, junk);
        _commit(jobId, alice, 1, junk);
        _commit(jobId, bob, 0, good);
        _commit(jobId, carol, 0, good);
        _commit(jobId, dave, 0, good);
        _reveal(jobId, alice, 0, junk);
        _reveal(jobId, alice, 1, junk);
        _reveal(jobId, bob, 0, good);
        _reveal(jobId, carol, 0, good);
        uint256 penalty = _penalty(_specOf[jobId].collateral);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.JobFinalized(jobId, IJobEscrow.Outcome.Completed, good, 3, 2 * penalty);
        _reveal(jobId, dave, 0, good);
        uint256 paid = escrow.balanceOf(bob) + escrow.balanceOf(carol) + escrow.balanceOf(dave);
        assertEq(paid, _specOf[jobId].bounty, "the honest three share the bounty");
    }
}

contract JobEscrowRevealEthTest is JobEscrowRevealTest {
    function _tokenMode() internal pure override returns (bool) {
        return false;
    }
}

contract JobEscrowRevealTokenTest is JobEscrowRevealTest {
    function _tokenMode() internal pure override returns (bool) {
        return true;
    }
}
