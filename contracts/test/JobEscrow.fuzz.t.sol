// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {EscrowFixture} from "./utils/EscrowFixture.sol";
import {IJobEscrow} from "../src/interfaces/IJobEscrow.sol";

/// @notice Fuzz tests on amounts, windows, replica counts, reveal orders, timing and the
/// draw (ETH mode; the asset only changes how funds move, which the unit tests cover in
/// both modes).
contract JobEscrowFuzzTest is EscrowFixture {
    function _tokenMode() internal pure override returns (bool) {
        return false;
    }

    /// @dev k providers in ascending address order, each staked 10 ether: with nobody else
    /// staked, k * share = 1 and all are drawn for any seed.
    function _providers(uint256 k) internal returns (address[] memory list) {
        list = new address[](k);
        for (uint256 i = 0; i < k; ++i) {
            list[i] = address(uint160(0x10000 + i));
            _fund(list[i], 10 ether);
            _stake(list[i], 10 ether);
        }
        _nextBlock();
    }

    function _answer(uint256 jobId, uint256 mask, uint256 i) internal view returns (bytes32) {
        return (mask >> i) & 1 == 1 ? _bad(jobId, i) : _good(jobId);
    }

    /// Any bounty, collateral, k = 1..16, set of dissenters (each with its own junk) and
    /// reveal order: the last reveal settles; a quorum's winners share the whole bounty to
    /// the wei and each dissenter's penalty is burned; without a quorum the consumer gets
    /// exactly its bounty back and nobody is slashed; the escrow holds exactly what it owes.
    function testFuzz_settlementConservesFunds(
        uint96 bounty,
        uint96 collateral,
        uint8 k,
        uint256 dissentMask,
        uint256 order,
        bytes32 postHash
    ) public {
        k = uint8(bound(k, 1, MAX_REPLICAS));
        if (k == 1) dissentMask = 0; // one replica's answer is the quorum's
        address[] memory list = _providers(k);
        IJobEscrow.JobSpec memory spec = _spec(k);
        spec.bounty = uint96(bound(bounty, 1, 100 ether));
        spec.collateral = uint96(bound(collateral, 0, 10 ether));
        _fund(consumer, spec.bounty);
        if (postHash == bytes32(0)) postHash = bytes32(uint256(1)); // no block hashes to zero
        uint256 jobId = _postWithHash(spec, postHash);
        uint256 honest;
        for (uint256 i = 0; i < k; ++i) {
            if ((dissentMask >> i) & 1 == 0) ++honest;
            _commit(jobId, list[i], i, _answer(jobId, dissentMask, i));
        }
        uint256 consumerBefore = escrow.balanceOf(consumer);
        for (uint256 n = 0; n < k; ++n) {
            uint256 i = (order % k + n) % k; // a rotation of the reveal order
            _revealHint(jobId, list[i], i, _answer(jobId, dissentMask, i), _good(jobId));
        }
        assertTrue(!_isLive(jobId), "settled by the last reveal");
        bool quorum = honest >= uint256(k) / 2 + 1;
        uint256 penalty = _penalty(spec.collateral);
        uint256 paid;
        for (uint256 i = 0; i < k; ++i) {
            paid += escrow.balanceOf(list[i]);
            assertEq(_lockedOf(list[i]), 0, "unlocked");
        }
        assertEq(paid, quorum ? spec.bounty : 0, "winners share the whole bounty");
        assertEq(escrow.burned(), quorum ? (k - honest) * penalty : 0, "penalties burned");
        assertEq(
            escrow.balanceOf(consumer) - consumerBefore,
            quorum ? 0 : spec.bounty,
            "the consumer gets its bounty back or nothing"
        );
        list = _append(list, consumer);
        assertEq(address(escrow).balance, _owed(list, 0), "held = stakes + credits + burned");
        assertEq(escrow.totalStake(), 10 ether * uint256(k) - escrow.burned(), "total stake");
    }

    /// Any set of replicas that never reveal: finalize after the reveal deadline settles,
    /// slashing exactly the no-shows and the dissenters if a quorum remains.
    function testFuzz_finalizeWithMissingReveals(
        uint8 k,
        uint256 dissentMask,
        uint256 missingMask,
        uint96 collateral
    ) public {
        k = uint8(bound(k, 1, MAX_REPLICAS));
        address[] memory list = _providers(k);
        missingMask &= (1 << k) - 1;
        if (missingMask == 0) missingMask = 1; // at least one never reveals
        IJobEscrow.JobSpec memory spec = _spec(k);
        spec.collateral = uint96(bound(collateral, 0, 10 ether));
        uint256 jobId = _post(spec);
        for (uint256 i = 0; i < k; ++i) {
            _commit(jobId, list[i], i, _answer(jobId, dissentMask, i));
        }
        uint256 honest;
        uint256 dissenters;
        uint256 missing;
        for (uint256 i = 0; i < k; ++i) {
            if ((missingMask >> i) & 1 == 1) {
                ++missing;
                continue;
            }
            if ((dissentMask >> i) & 1 == 1) ++dissenters;
            else ++honest;
            _reveal(jobId, list[i], i, _answer(jobId, dissentMask, i));
        }
        vm.warp(uint256(spec.revealDeadline) + 1);
        _finalize(jobId, _good(jobId));
        bool quorum = honest >= uint256(k) / 2 + 1;
        uint256 penalty = _penalty(spec.collateral);
        uint256 slashedCount = missing + (quorum ? dissenters : 0);
        assertEq(escrow.burned(), slashedCount * penalty, "no-shows (and losers) burned");
        assertEq(escrow.balanceOf(consumer), quorum ? 0 : spec.bounty, "refund iff no quorum");
        list = _append(list, consumer);
        assertEq(address(escrow).balance, _owed(list, 0), "held = stakes + credits + burned");
    }

    /// Any deadlines around the bounds: postJob accepts exactly the windows the rules allow,
    /// and otherwise reverts with the error naming the first broken rule.
    function testFuzz_postJobWindows(uint256 commitAt, uint256 revealAt) public {
        IJobEscrow.JobSpec memory spec = _spec(1);
        uint256 now_ = block.timestamp;
        commitAt = bound(commitAt, now_ - 10, now_ + MAX_HORIZON + 10);
        revealAt = bound(revealAt, now_ - 10, now_ + MAX_HORIZON + 10);
        spec.commitDeadline = uint40(commitAt);
        spec.revealDeadline = uint40(revealAt);
        uint256 commitWindow = commitAt > now_ ? commitAt - now_ : 0;
        uint256 revealWindow = revealAt > commitAt ? revealAt - commitAt : 0;
        if (commitWindow < MIN_COMMIT) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IJobEscrow.EscrowWindowTooShort.selector,
                    bytes32("commit"),
                    commitWindow,
                    MIN_COMMIT
                )
            );
        } else if (revealWindow < MIN_REVEAL) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IJobEscrow.EscrowWindowTooShort.selector,
                    bytes32("reveal"),
                    revealWindow,
                    MIN_REVEAL
                )
            );
        } else if (revealAt > now_ + MAX_HORIZON) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IJobEscrow.EscrowDeadlineTooFar.selector, revealAt, now_ + MAX_HORIZON
                )
            );
        }
        vm.prank(consumer);
        escrow.postJob{value: spec.bounty}(spec);
    }

    /// Any quorum for any k: only k / 2 + 1 is accepted.
    function testFuzz_postJobQuorum(uint8 k, uint8 q) public {
        k = uint8(bound(k, 1, MAX_REPLICAS));
        IJobEscrow.JobSpec memory spec = _spec(k);
        spec.quorum = q;
        if (2 * uint256(q) <= k || 2 * uint256(q - (q > 0 ? 1 : 0)) > k || q == 0) {
            vm.expectRevert(
                abi.encodeWithSelector(IJobEscrow.EscrowInvalidSpec.selector, bytes32("quorum"))
            );
        }
        vm.prank(consumer);
        escrow.postJob{value: spec.bounty}(spec);
    }

    /// Any commit time: accepted up to and including the commit deadline.
    function testFuzz_commitWindow(uint256 at) public {
        address[] memory list = _providers(1);
        IJobEscrow.JobSpec memory spec = _spec(1);
        uint256 jobId = _post(spec);
        at = bound(at, block.timestamp, uint256(spec.commitDeadline) + 100);
        vm.warp(at);
        IJobEscrow.JobTerms memory t = _terms(jobId);
        if (at > spec.commitDeadline) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IJobEscrow.EscrowCommitClosed.selector, jobId, spec.commitDeadline
                )
            );
        }
        vm.prank(list[0]);
        escrow.commit(jobId, t, 0, bytes32(uint256(1)));
    }

    /// Any reveal time on a filled job: accepted up to and including the reveal deadline.
    function testFuzz_revealWindow(uint256 at) public {
        address[] memory list = _providers(3);
        IJobEscrow.JobSpec memory spec = _spec(3);
        uint256 jobId = _post(spec);
        for (uint256 i = 0; i < 3; ++i) {
            _commit(jobId, list[i], 0, _good(jobId));
        }
        at = bound(at, block.timestamp, uint256(spec.revealDeadline) + 100);
        vm.warp(at);
        IJobEscrow.JobTerms memory t = _terms(jobId);
        bytes32 good = _good(jobId);
        bytes32 salt = _salt(jobId, list[0], 0);
        uint256[] memory none = new uint256[](0);
        if (at > spec.revealDeadline) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IJobEscrow.EscrowRevealClosed.selector, jobId, spec.revealDeadline
                )
            );
        }
        vm.prank(list[0]);
        escrow.reveal(jobId, t, 0, good, salt, none, bytes32(0));
    }

    /// Any finalize time: an unfilled job from commitDeadline + 1, a filled one (reveals
    /// missing) from revealDeadline + 1.
    function testFuzz_finalizeTiming(uint256 at, bool fill) public {
        address[] memory list = _providers(2);
        IJobEscrow.JobSpec memory spec = _spec(2);
        uint256 jobId = _post(spec);
        _commit(jobId, list[0], 0, _good(jobId));
        if (fill) _commit(jobId, list[1], 0, _good(jobId));
        uint256 deadline = fill ? spec.revealDeadline : spec.commitDeadline;
        at = bound(at, block.timestamp, deadline + 100);
        vm.warp(at);
        IJobEscrow.JobTerms memory t = _terms(jobId);
        uint256[] memory slots = _allSlots(jobId);
        bytes32 good = _good(jobId);
        if (at <= deadline) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IJobEscrow.EscrowNotFinalizable.selector, jobId, deadline + 1
                )
            );
        }
        escrow.finalize(jobId, t, slots, good);
    }

    /// Any seed, stakes and time: drawOf and commit agree with the rule restated here.
    function testFuzz_drawMatchesTheRule(
        bytes32 postHash,
        uint96 stakeA,
        uint96 stakeB,
        uint8 k,
        uint256 at
    ) public {
        address a = address(0xA0);
        _fund(a, 1000 ether);
        _fund(address(0xB0), 1000 ether);
        _stake(a, bound(stakeA, MIN_STAKE, 1000 ether));
        _stake(address(0xB0), bound(stakeB, MIN_STAKE, 1000 ether));
        _nextBlock();
        IJobEscrow.JobSpec memory spec = _spec(uint8(bound(k, 1, 3)));
        spec.collateral = 0;
        if (postHash == bytes32(0)) postHash = bytes32(uint256(1)); // no block hashes to zero
        uint256 jobId = _postWithHash(spec, postHash);
        vm.warp(bound(at, block.timestamp, spec.commitDeadline));
        _checkDraw(jobId, a);
    }

    function _checkDraw(uint256 jobId, address a) internal {
        IJobEscrow.JobTerms memory t = _terms(jobId);
        uint256 u = _ticket(_seedOf(jobId), jobId, a);
        uint256 steps = _stepsAt(block.timestamp, _postedAt[jobId], _specOf[jobId].commitDeadline);
        bool bonded = _bondedBefore(jobId, a);
        bool expected = bonded && _passes(jobId, u, a, steps);
        (bool eligible, bool drawn, uint256 from) = escrow.drawOf(jobId, t, a);
        assertEq(eligible, expected, "eligible per the rule");
        assertEq(drawn, bonded && _passes(jobId, u, a, 0), "drawn per the rule");
        assertEq(from, _eligibleFromSteps(jobId, a), "eligibleFrom per the rule");
        if (!expected) {
            vm.expectRevert(
                abi.encodeWithSelector(IJobEscrow.EscrowNotDrawn.selector, jobId, a, from)
            );
        }
        vm.prank(a);
        escrow.commit(jobId, t, 0, bytes32(uint256(1)));
    }

    /// Any number of blocks (0 to 3) between a stake and a post, each 0 to 12 seconds on (0:
    /// blocks sharing a timestamp): the numerator's rule (bondedAt < postBlock) and the
    /// denominator (the total as the post's block found it) agree. Stake from an earlier
    /// block is in both, whatever the seconds; stake from the post's block is in neither.
    function testFuzz_bondedBlockRuleMatchesTheDenominator(
        uint256 blocks,
        uint256 seconds_,
        uint96 amount,
        bytes32 postHash
    ) public {
        address[] memory list = _providers(1);
        address late = address(0xD0);
        uint256 staked = bound(amount, MIN_STAKE, 100 ether);
        _fund(late, staked);
        _stake(late, staked);
        blocks = bound(blocks, 0, 3);
        for (uint256 i = 0; i < blocks; ++i) {
            vm.roll(block.number + 1);
            vm.warp(block.timestamp + (seconds_ >> (8 * i)) % 13);
        }
        IJobEscrow.JobSpec memory spec = _spec(2); // two slots: one each
        spec.collateral = 0;
        if (postHash == bytes32(0)) postHash = bytes32(uint256(1)); // no block hashes to zero
        uint256 jobId = _postWithHash(spec, postHash);
        bool earlier = blocks > 0;
        assertEq(_bondedBefore(jobId, late), earlier, "bonded before iff an earlier block");
        (,,, uint256 drawTotal) = escrow.jobState(jobId);
        assertEq(
            drawTotal,
            _roundedTotal(10 ether + (earlier ? staked : 0)),
            "in the denominator iff in the numerator"
        );
        assertEq(_totalAtPost[jobId], 10 ether + (earlier ? staked : 0), "the model agrees");
        vm.warp(spec.commitDeadline); // all doublings: 8 * staked >= total, certain if bonded
        _checkDraw(jobId, list[0]);
        IJobEscrow.JobTerms memory t = _terms(jobId);
        (bool eligible,,) = escrow.drawOf(jobId, t, late);
        assertEq(eligible, earlier, "eligible at the deadline iff bonded before the post");
        if (!earlier) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IJobEscrow.EscrowStakeTooNew.selector,
                    jobId,
                    _postBlockOf(jobId),
                    _postBlockOf(jobId)
                )
            );
        }
        vm.prank(late);
        escrow.commit(jobId, t, 1, bytes32(uint256(2)));
    }

    /// Withdrawing any split of a balance pays exactly the balance in total.
    function testFuzz_withdrawSplits(uint96 bounty, uint256 first) public {
        IJobEscrow.JobSpec memory spec = _spec(1);
        spec.bounty = uint96(bound(bounty, 1, 100 ether));
        _fund(consumer, spec.bounty);
        uint256 jobId = _post(spec);
        vm.warp(uint256(spec.commitDeadline) + 1);
        _finalize(jobId, bytes32(0));
        first = bound(first, 1, spec.bounty);
        uint256 before = consumer.balance;
        vm.startPrank(consumer);
        escrow.withdraw(first);
        if (first < spec.bounty) escrow.withdraw();
        vm.stopPrank();
        assertEq(consumer.balance, before + spec.bounty, "paid in full");
        assertEq(escrow.balanceOf(consumer), 0, "nothing left");
    }

    function _append(address[] memory list, address extra)
        internal
        pure
        returns (address[] memory out)
    {
        out = new address[](list.length + 1);
        for (uint256 i = 0; i < list.length; ++i) {
            out[i] = list[i];
        }
        out[list.length] = extra;
    }
}
