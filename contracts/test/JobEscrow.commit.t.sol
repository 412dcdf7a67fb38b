// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {EscrowFixture} from "./utils/EscrowFixture.sol";
import {IJobEscrow} from "../src/interfaces/IJobEscrow.sol";
import {IStaking} from "../src/interfaces/IStaking.sol";

/// @notice commit (slot + commitment in one transaction) and lanes. Three providers with
/// equal stake and k = 3: each one's threshold is 3 * share = 1, so every one is drawn for
/// every seed (the draw itself is tested in JobEscrow.draw.t.sol).
abstract contract JobEscrowCommitTest is EscrowFixture {
    function setUp() public override {
        super.setUp();
        _stakeAll(10 ether);
    }

    function test_commit_locksCollateralAndEmits() public {
        uint256 jobId = _post(_spec(3));
        bytes32 c = _commitment(jobId, alice, 5, _good(jobId));
        IJobEscrow.JobTerms memory t = _terms(jobId);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaCommitted(jobId, alice, 5, c, true);
        vm.prank(alice);
        escrow.commit(jobId, t, 5, c);
        assertEq(
            uint256(escrow.replicaOf(jobId, alice, 5)),
            uint256(IJobEscrow.ReplicaStatus.Committed),
            "status"
        );
        assertEq(uint256(escrow.replicaOf(jobId, alice, 4)), 0, "only that lane");
        assertEq(escrow.laneJobOf(alice, 5), jobId, "lane holds the job");
        assertEq(_lockedOf(alice), 1 ether, "collateral locked");
        assertEq(_stakedOf(alice), 10 ether, "stake unchanged");
        (, uint8 committed, uint8 revealed,) = escrow.jobState(jobId);
        assertEq(committed, 1, "committed");
        assertEq(revealed, 0, "revealed");
    }

    function test_commit_acceptsAtDeadlineRejectsAfter() public {
        IJobEscrow.JobSpec memory s = _spec(3);
        uint256 jobId = _post(s);
        vm.warp(s.commitDeadline);
        _commit(jobId, alice, 0, _good(jobId));
        vm.warp(uint256(s.commitDeadline) + 1);
        IJobEscrow.JobTerms memory t = _terms(jobId);
        vm.prank(bob);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowCommitClosed.selector, jobId, s.commitDeadline)
        );
        escrow.commit(jobId, t, 0, bytes32(uint256(1)));
    }

    function test_commit_revertsOnUnknownJobOrWrongTerms() public {
        uint256 jobId = _post(_spec(3));
        IJobEscrow.JobTerms memory t = _terms(jobId);
        vm.startPrank(alice);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowJobNotFound.selector, 99));
        escrow.commit(99, t, 0, bytes32(uint256(1)));
        IJobEscrow.JobTerms memory wrong = _terms(jobId);
        wrong.payment -= 1; // a smaller bounty
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowJobNotFound.selector, jobId));
        escrow.commit(jobId, wrong, 0, bytes32(uint256(1)));
        wrong = _termsFor(_specOf[jobId], _drawOf[jobId] + 1); // another post time
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowJobNotFound.selector, jobId));
        escrow.commit(jobId, wrong, 0, bytes32(uint256(1)));
        wrong = _termsFor(_specOf[jobId], _drawOf[jobId] + (1 << 32)); // another post block
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowJobNotFound.selector, jobId));
        escrow.commit(jobId, wrong, 0, bytes32(uint256(1)));
        wrong = _terms(jobId);
        wrong.detailsHash = keccak256("other input");
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowJobNotFound.selector, jobId));
        escrow.commit(jobId, wrong, 0, bytes32(uint256(1)));
        vm.stopPrank();
    }

    function test_commit_revertsWhenFull() public {
        uint256 jobId = _post(_spec(3));
        _commit(jobId, alice, 0, _good(jobId));
        _commit(jobId, bob, 0, _good(jobId));
        _commit(jobId, carol, 0, _good(jobId));
        IJobEscrow.JobTerms memory t = _terms(jobId);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowJobFull.selector, jobId));
        escrow.commit(jobId, t, 1, bytes32(uint256(1)));
    }

    function test_commit_revertsWithoutMinimumStake() public {
        address dave = makeAddr("dave");
        uint256 jobId = _post(_spec(3));
        IJobEscrow.JobTerms memory t = _terms(jobId);
        vm.prank(dave);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakeBelowMinimum.selector, 0, MIN_STAKE));
        escrow.commit(jobId, t, 0, bytes32(uint256(1)));
    }

    function test_commit_revertsOnLowReputation() public {
        IJobEscrow.JobSpec memory s = _spec(3);
        s.minReputation = 1;
        uint256 jobId = _post(s);
        IJobEscrow.JobTerms memory t = _terms(jobId);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakeReputationTooLow.selector, 0, 1));
        escrow.commit(jobId, t, 0, bytes32(uint256(1)));
    }

    function test_commit_revertsOnInsufficientFreeStake() public {
        IJobEscrow.JobSpec memory s = _spec(3);
        s.collateral = 6 ether;
        uint256 first = _post(s);
        uint256 second = _post(s);
        _commit(first, alice, 0, _good(first));
        IJobEscrow.JobTerms memory t = _terms(second);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.StakeInsufficient.selector, 4 ether, 6 ether)
        );
        escrow.commit(second, t, 1, bytes32(uint256(1)));
    }

    // ---------------------------------------------------------------- lanes

    function test_commit_acceptsAnyLaneBelowLimit() public {
        uint256 limit = escrow.LANE_LIMIT();
        uint256[4] memory lanes = [uint256(0), 1, 123_456_789, limit - 1];
        for (uint256 i = 0; i < lanes.length; ++i) {
            uint256 jobId = _post(_spec(3));
            _commit(jobId, alice, lanes[i], _good(jobId));
            assertEq(escrow.laneJobOf(alice, lanes[i]), jobId, "lane holds its job");
        }
        uint256 other = _post(_spec(3));
        IJobEscrow.JobTerms memory t = _terms(other);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrow.EscrowParameterOutOfRange.selector, bytes32("lane"), limit
            )
        );
        escrow.commit(other, t, limit, bytes32(uint256(1)));
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrow.EscrowParameterOutOfRange.selector, bytes32("lane"), type(uint256).max
            )
        );
        escrow.commit(other, t, type(uint256).max, bytes32(uint256(1)));
    }

    function test_commit_revertsOnBusyLaneThenReusesItAfterSettlement() public {
        uint256 first = _post(_spec(3));
        uint256 second = _post(_spec(3));
        _commit(first, alice, 3, _good(first));
        IJobEscrow.JobTerms memory t2 = _terms(second);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowLaneBusy.selector, alice, 3, first));
        escrow.commit(second, t2, 3, bytes32(uint256(1)));
        // The same job again in the same lane: busy with this job.
        IJobEscrow.JobTerms memory t1 = _terms(first);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowLaneBusy.selector, alice, 3, first));
        escrow.commit(first, t1, 3, bytes32(uint256(1)));
        // Another provider's lane 3 is its own.
        _commit(second, bob, 3, _good(second));
        // Settle the first job (unfilled): alice's lane 3 is free again.
        vm.warp(_specOf[first].commitDeadline + 1);
        _finalize(first, bytes32(0));
        assertEq(escrow.laneJobOf(alice, 3), 0, "lane freed by settlement");
        assertEq(uint256(escrow.replicaOf(first, alice, 3)), 0, "old job gone");
        // A fresh job reuses it.
        uint256 third = _post(_spec(3));
        _commit(third, alice, 3, _good(third));
        assertEq(escrow.laneJobOf(alice, 3), third, "lane reused");
    }

    /// A provider works 70 jobs at once, one per lane, while others post filler jobs in
    /// between: no conflict (job ids do not pick lanes; the provider does).
    function test_commit_manyLiveJobsAtOnceWithoutConflict() public {
        uint256 n = 70;
        IJobEscrow.JobSpec memory s = _spec(3);
        s.collateral = 0.1 ether;
        uint256[] memory ids = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            ids[i] = _post(s);
            _post(s); // a filler job nobody takes
            _commit(ids[i], alice, i, _good(ids[i]));
        }
        for (uint256 i = 0; i < n; ++i) {
            assertEq(escrow.laneJobOf(alice, i), ids[i], "each lane holds its own job");
            assertTrue(_isLive(ids[i]), "still live");
        }
        assertEq(_lockedOf(alice), n * 0.1 ether, "collateral of every job locked");
    }
}

contract JobEscrowCommitEthTest is JobEscrowCommitTest {
    function _tokenMode() internal pure override returns (bool) {
        return false;
    }
}

contract JobEscrowCommitTokenTest is JobEscrowCommitTest {
    function _tokenMode() internal pure override returns (bool) {
        return true;
    }
}
