// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {EscrowFixture} from "./utils/EscrowFixture.sol";
import {IJobEscrow} from "../src/interfaces/IJobEscrow.sol";

/// @notice Fuzz tests on amounts, deadlines, replica counts and orderings (ETH mode; the
/// asset only changes how funds move, which the unit tests cover in both modes).
contract JobEscrowFuzzTest is EscrowFixture {
    bytes32 internal constant GOOD_HASH = keccak256("good");

    function _tokenMode() internal pure override returns (bool) {
        return false;
    }

    /// @dev k providers in ascending address order, each staked.
    function _providers(uint256 k) internal returns (address[] memory list) {
        list = new address[](k);
        for (uint256 i = 0; i < k; ++i) {
            list[i] = address(uint160(0x10000 + i));
            _fund(list[i], 10 ether);
            _stake(list[i], 10 ether);
        }
    }

    /// Any bounty, replica count, quorum and set of dissenters: winners get the whole
    /// bounty to the wei, the consumer gets every penalty, the escrow holds exactly the
    /// credited total, and reveal order does not matter (the last reveal settles).
    function testFuzz_settlementConservesFunds(
        uint96 bounty,
        uint96 collateral,
        uint8 k,
        uint8 quorum,
        uint256 dissentMask,
        uint256 order
    ) public {
        k = uint8(bound(k, 1, MAX_REPLICAS));
        quorum = uint8(bound(quorum, k / 2 + 1, k));
        // With one replica whatever it reveals is the quorum result: call that one good.
        if (k == 1) dissentMask = 0;
        IJobEscrow.JobSpec memory spec = _spec(k);
        spec.bounty = uint96(bound(bounty, 1, 100 ether));
        spec.collateral = uint96(bound(collateral, 0, 10 ether));
        spec.quorum = quorum;
        _fund(consumer, spec.bounty);
        uint256 jobId = _post(spec);
        address[] memory list = _providers(k);
        uint256 honest;
        for (uint256 i = 0; i < k; ++i) {
            _claim(jobId, spec, list[i]);
            bool dissent = (dissentMask >> i) & 1 == 1;
            if (!dissent) ++honest;
            _commit(
                jobId, spec, list[i], dissent ? keccak256(abi.encode("bad", i)) : keccak256("good")
            );
        }
        for (uint256 n = 0; n < k; ++n) {
            uint256 i = (order % k + n) % k; // a rotation of the reveal order
            bool dissent = (dissentMask >> i) & 1 == 1;
            // The hint is only read by the last reveal, when its own hash is not the quorum's.
            _revealHint(
                jobId,
                spec,
                list[i],
                dissent ? keccak256(abi.encode("bad", i)) : keccak256("good"),
                keccak256("good")
            );
        }
        // The last reveal settled the job.
        (bytes24 live,,,) = escrow.jobState(jobId);
        assertEq(bytes32(live), bytes32(0), "settled by the last reveal");

        bool quorumReached = honest >= quorum;
        uint256 penalty = uint256(spec.collateral) * SLASH_BPS / 10_000;
        uint256 paid;
        for (uint256 i = 0; i < k; ++i) {
            paid += escrow.balanceOf(list[i]);
        }
        assertEq(paid, quorumReached ? spec.bounty : 0, "winners share the whole bounty");
        uint256 expectedConsumer = quorumReached ? (k - honest) * penalty : spec.bounty;
        assertEq(escrow.balanceOf(consumer), expectedConsumer, "consumer credit");
        assertEq(
            address(escrow).balance,
            paid + escrow.balanceOf(consumer) + _stakeHeld(list),
            "escrow holds stakes and credits"
        );
    }

    /// Whatever the replicas' accounts look like (free stake all unbonding, one wei of
    /// stake left beyond the collateral), the reveal that completes a job settles it:
    /// credits, unlocks and slashes cannot make it revert.
    function testFuzz_lastRevealNeverReverts(
        uint8 k,
        uint256 dissentMask,
        uint256 unbondMask,
        uint256 order,
        uint96 collateral
    ) public {
        k = uint8(bound(k, 1, MAX_REPLICAS));
        IJobEscrow.JobSpec memory spec = _spec(k);
        spec.collateral = uint96(bound(collateral, 0, 10 ether));
        uint256 jobId = _post(spec);
        address[] memory list = _providers(k);
        for (uint256 i = 0; i < k; ++i) {
            _claim(jobId, spec, list[i]);
            bytes32 r = (dissentMask >> i) & 1 == 1 ? keccak256(abi.encode("bad", i)) : GOOD_HASH;
            _commit(jobId, spec, list[i], r);
            (uint256 staked, uint256 locked,,) = escrow.stakeOf(list[i]);
            if ((unbondMask >> i) & 1 == 1 && staked > locked) {
                vm.prank(list[i]);
                escrow.requestUnstake(staked - locked);
            }
        }
        uint256 honest;
        for (uint256 n = 0; n < k; ++n) {
            uint256 i = (order % k + n) % k;
            bool dissent = (dissentMask >> i) & 1 == 1;
            if (!dissent) ++honest;
            _revealHint(
                jobId,
                spec,
                list[i],
                dissent ? keccak256(abi.encode("bad", i)) : GOOD_HASH,
                GOOD_HASH
            );
        }
        _assertSettledAndSolvent(jobId, spec, list, honest);
    }

    function _assertSettledAndSolvent(
        uint256 jobId,
        IJobEscrow.JobSpec memory spec,
        address[] memory list,
        uint256 honest
    ) internal view {
        (bytes24 live,,,) = escrow.jobState(jobId);
        assertEq(bytes32(live), bytes32(0), "settled by the last reveal");
        uint256 credited = escrow.balanceOf(consumer);
        for (uint256 i = 0; i < list.length; ++i) {
            (, uint256 locked,,) = escrow.stakeOf(list[i]);
            assertEq(locked, 0, "all collateral unlocked");
            credited += escrow.balanceOf(list[i]);
        }
        uint256 penalty = uint256(spec.collateral) * SLASH_BPS / 10_000;
        uint256 slashed = honest >= spec.quorum ? (list.length - honest) * penalty : 0;
        assertEq(credited, spec.bounty + slashed, "credits");
        assertEq(address(escrow).balance, credited + _stakeHeld(list), "escrow holds it all");
    }

    /// Any deadlines: postJob accepts exactly now < claim < commit < reveal.
    function testFuzz_postJobDeadlines(uint40 claimAt, uint40 commitAt, uint40 revealAt) public {
        IJobEscrow.JobSpec memory spec = _spec(1);
        spec.claimDeadline = uint40(bound(claimAt, START - 10, START + 10));
        spec.commitDeadline = uint40(bound(commitAt, START - 10, START + 20));
        spec.revealDeadline = uint40(bound(revealAt, START - 10, START + 30));
        bool valid = spec.claimDeadline > START && spec.commitDeadline > spec.claimDeadline
            && spec.revealDeadline > spec.commitDeadline;
        if (!valid) {
            vm.expectRevert(
                abi.encodeWithSelector(IJobEscrow.EscrowInvalidSpec.selector, bytes32("deadlines"))
            );
        }
        vm.prank(consumer);
        escrow.postJob{value: spec.bounty}(spec);
    }

    /// A reveal at any time succeeds exactly inside (commitDeadline, revealDeadline] when
    /// not every replica committed.
    function testFuzz_revealWindow(uint256 at) public {
        IJobEscrow.JobSpec memory spec = _spec(3);
        uint256 jobId = _post(spec);
        address[] memory list = _providers(3);
        for (uint256 i = 0; i < 3; ++i) {
            _claim(jobId, spec, list[i]);
        }
        _commit(jobId, spec, list[0], keccak256("good"));
        at = bound(at, block.timestamp, uint256(spec.revealDeadline) + 100);
        vm.warp(at);
        if (at <= spec.commitDeadline) {
            vm.expectPartialRevert(IJobEscrow.EscrowRevealNotOpen.selector);
        } else if (at > spec.revealDeadline) {
            vm.expectPartialRevert(IJobEscrow.EscrowRevealClosed.selector);
        }
        _reveal(jobId, spec, list[0], keccak256("good"));
    }

    /// Any claim time: claims succeed exactly up to and including the claim deadline.
    function testFuzz_claimWindow(uint256 at) public {
        IJobEscrow.JobSpec memory spec = _spec(1);
        uint256 jobId = _post(spec);
        address[] memory list = _providers(1);
        at = bound(at, block.timestamp, uint256(spec.claimDeadline) + 100);
        vm.warp(at);
        if (at > spec.claimDeadline) vm.expectPartialRevert(IJobEscrow.EscrowClaimClosed.selector);
        _claim(jobId, spec, list[0]);
    }

    /// Withdrawing any split of a balance pays exactly the balance in total.
    function testFuzz_withdrawSplits(uint96 bounty, uint256 first) public {
        IJobEscrow.JobSpec memory spec = _spec(1);
        spec.bounty = uint96(bound(bounty, 1, 100 ether));
        _fund(consumer, spec.bounty);
        uint256 jobId = _post(spec);
        vm.prank(consumer);
        escrow.cancel(jobId, _terms(spec));
        first = bound(first, 1, spec.bounty);
        uint256 before = consumer.balance;
        vm.startPrank(consumer);
        escrow.withdraw(first);
        if (first < spec.bounty) escrow.withdraw();
        vm.stopPrank();
        assertEq(consumer.balance, before + spec.bounty, "paid in full");
        assertEq(escrow.balanceOf(consumer), 0, "nothing left");
    }
}
