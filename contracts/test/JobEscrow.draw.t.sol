// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {EscrowFixture} from "./utils/EscrowFixture.sol";
import {IJobEscrow} from "../src/interfaces/IJobEscrow.sol";
import {IStaking} from "../src/interfaces/IStaking.sol";

/// @notice The stake-weighted lot: who may commit and when, checked against the rule restated
/// in the fixture (ticket, threshold, doublings), the drawn flag and reputation.
/// alice, bob and carol stake 10 each (total 30): at k = 1 each is drawn with p = 1/3.
abstract contract JobEscrowDrawTest is EscrowFixture {
    function setUp() public override {
        super.setUp();
        _stakeAll(10 ether);
    }

    function test_drawOf_matchesTheRuleOverTheWindow() public {
        IJobEscrow.JobSpec memory s = _spec(1);
        uint256 jobId = _postFailing(s, alice, 0);
        IJobEscrow.JobTerms memory t = _terms(jobId);
        uint256 u = _ticket(_seedOf(jobId), jobId, alice);
        uint256 from = _eligibleFromRule(jobId, alice);
        assertEq(from, _eligibleFromSteps(jobId, alice), "second by second = step by step");
        assertGt(from, _postedAt[jobId], "not drawn at the base rate");
        uint256 window = s.commitDeadline - _postedAt[jobId];
        for (uint256 i = 0; i <= 16; ++i) {
            uint256 at = _postedAt[jobId] + window * i / 16;
            vm.warp(at);
            (bool eligible, bool drawn, uint256 eligibleFrom) = escrow.drawOf(jobId, t, alice);
            uint256 steps = _stepsAt(at, _postedAt[jobId], s.commitDeadline);
            assertEq(eligible, _passes(jobId, u, alice, steps), "eligible per the rule");
            assertEq(eligible, at >= from, "eligible from eligibleFrom on");
            assertEq(drawn, false, "never drawn at the base rate");
            assertEq(eligibleFrom, from, "eligibleFrom per the rule");
        }
    }

    function test_commit_revertsWhenNotDrawnUntilEligibleFrom() public {
        uint256 jobId = _postFailing(_spec(1), alice, 0);
        uint256 from = _eligibleFromRule(jobId, alice);
        IJobEscrow.JobTerms memory t = _terms(jobId);
        bytes32 c = _commitment(jobId, alice, 0, _good(jobId));
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowNotDrawn.selector, jobId, alice, from)
        );
        escrow.commit(jobId, t, 0, c);
        vm.warp(from - 1);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowNotDrawn.selector, jobId, alice, from)
        );
        escrow.commit(jobId, t, 0, c);
        vm.warp(from);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaCommitted(jobId, alice, 0, c, false);
        vm.prank(alice);
        escrow.commit(jobId, t, 0, c);
    }

    /// Only stake bonded in a block before the post's is in the draw (bondedAt < postBlock,
    /// block numbers: the denominator's clock). Stake bonded in the post's own block, or
    /// topped up after it, is not, whatever the seconds say.
    function test_commit_revertsWhenStakeTooNew() public {
        uint256 jobId = _postInBlock(_spec(3));
        uint256 postBlock = _postBlockOf(jobId);
        // Staked in the post's block (after the post, a later second): not before it.
        address dave = makeAddr("dave");
        _fund(dave, 10 ether);
        vm.warp(block.timestamp + 10);
        _stake(dave, 10 ether);
        _sealPostBlock(jobId);
        IJobEscrow.JobTerms memory t = _terms(jobId);
        vm.prank(dave);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrow.EscrowStakeTooNew.selector, jobId, postBlock, postBlock
            )
        );
        escrow.commit(jobId, t, 0, bytes32(uint256(1)));
        (bool eligible, bool drawn, uint256 from) = escrow.drawOf(jobId, t, dave);
        assertTrue(!eligible && !drawn && from == 0, "drawOf: dave not in the draw");
        assertEq(_eligibleFromRule(jobId, dave), 0, "nor per the rule");
        // A top-up in a later block takes alice out of this job's draw too.
        vm.roll(postBlock + 10);
        _stake(alice, 1 ether);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrow.EscrowStakeTooNew.selector, jobId, postBlock + 10, postBlock
            )
        );
        escrow.commit(jobId, t, 0, bytes32(uint256(1)));
        (eligible, drawn, from) = escrow.drawOf(jobId, t, alice);
        assertTrue(!eligible && !drawn && from == 0, "drawOf: not in the draw");
        // Stake bonded before the post's block is in it.
        _commit(jobId, bob, 0, _good(jobId));
    }

    /// A provider with a small share (1 of 31, k = 1: p = 1/31 at first) becomes eligible as
    /// the threshold doubles: by the last eighth of the window, 256/31 > 1 makes it certain.
    function test_commit_wideningMakesSmallShareEligible() public {
        address dave = makeAddr("dave");
        _fund(dave, MIN_STAKE);
        _stake(dave, MIN_STAKE);
        _nextBlock();
        IJobEscrow.JobSpec memory s = _spec(1);
        uint256 jobId = _postFailing(s, dave, 0);
        uint256 u = _ticket(_seedOf(jobId), jobId, dave);
        assertTrue(_passes(jobId, u, dave, DOUBLINGS), "certain at the last step");
        uint256 from = _eligibleFromRule(jobId, dave);
        assertGt(from, _postedAt[jobId], "not drawn at first");
        uint256 window = s.commitDeadline - _postedAt[jobId];
        assertLe(from, _postedAt[jobId] + window * (DOUBLINGS - 3) / DOUBLINGS, "by 2^5/31 > 1");
        vm.warp(from);
        bytes32 c = _commitment(jobId, dave, 0, _good(jobId));
        IJobEscrow.JobTerms memory t = _terms(jobId);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaCommitted(jobId, dave, 0, c, false);
        vm.prank(dave);
        escrow.commit(jobId, t, 0, c);
    }

    /// Not eligible even at the deadline: eligibleFrom is 0.
    function test_commit_notEligibleAtAllReportsZero() public {
        address eve = makeAddr("eve");
        _fund(eve, MIN_STAKE);
        _stake(eve, MIN_STAKE);
        _stake(alice, 990 ether); // total 1021: eve's last-step chance is 256/1021
        _nextBlock();
        IJobEscrow.JobSpec memory s = _spec(1);
        uint256 jobId = _postFailing(s, eve, DOUBLINGS);
        assertEq(_eligibleFromRule(jobId, eve), 0, "never, per the rule");
        vm.warp(s.commitDeadline);
        IJobEscrow.JobTerms memory t = _terms(jobId);
        vm.prank(eve);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowNotDrawn.selector, jobId, eve, 0));
        escrow.commit(jobId, t, 0, bytes32(uint256(1)));
    }

    /// k providers holding all the stake equally: k * share = 1, drawn for any seed.
    function test_drawOf_fullShareAlwaysDrawn() public {
        for (uint256 r = 0; r < 20; ++r) {
            uint256 jobId = _postWithHash(_spec(3), keccak256(abi.encode(r)));
            IJobEscrow.JobTerms memory t = _terms(jobId);
            address[3] memory p = [alice, bob, carol];
            for (uint256 i = 0; i < 3; ++i) {
                (bool eligible, bool drawn, uint256 from) = escrow.drawOf(jobId, t, p[i]);
                assertTrue(eligible && drawn, "drawn");
                assertEq(from, _postedAt[jobId], "from the post");
            }
        }
    }

    function test_drawOf_revertsOnUnknownJob() public {
        uint256 jobId = _post(_spec(1));
        IJobEscrow.JobTerms memory t = _terms(jobId);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowJobNotFound.selector, jobId + 1));
        escrow.drawOf(jobId + 1, t, alice);
    }

    /// Completed work counts in reputation only where the provider was drawn at the base
    /// rate; it is paid either way.
    function test_settle_completedCountsOnlyWhenDrawn() public {
        IJobEscrow.JobSpec memory s = _spec(1);
        uint256 drawnJob = _postDrawing(s, _list(alice), _none());
        uint256 widenedJob = _postFailing(s, alice, 0);
        _commit(drawnJob, alice, 0, _good(drawnJob));
        vm.warp(_eligibleFromRule(widenedJob, alice));
        bytes32 c = _commitment(widenedJob, alice, 1, _good(widenedJob));
        IJobEscrow.JobTerms memory t = _terms(widenedJob);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaCommitted(widenedJob, alice, 1, c, false);
        vm.prank(alice);
        escrow.commit(widenedJob, t, 1, c);
        _slots[widenedJob].push(_key(alice, 1));

        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaSettled(drawnJob, alice, IStaking.Settlement.Completed, s.bounty, 0);
        _reveal(drawnJob, alice, 0, _good(drawnJob));
        (uint256 completed,,, uint256 score) = escrow.reputationOf(alice);
        assertEq(completed, 1, "drawn work counts");
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaSettled(
            widenedJob, alice, IStaking.Settlement.Completed, s.bounty, 0
        );
        _reveal(widenedJob, alice, 1, _good(widenedJob));
        (completed,,, score) = escrow.reputationOf(alice);
        assertEq(completed, 1, "work it was not drawn for does not");
        assertEq(score, 1, "score");
        assertEq(escrow.balanceOf(alice), 2 * uint256(s.bounty), "paid for both");
    }
}

contract JobEscrowDrawEthTest is JobEscrowDrawTest {
    function _tokenMode() internal pure override returns (bool) {
        return false;
    }
}

contract JobEscrowDrawTokenTest is JobEscrowDrawTest {
    function _tokenMode() internal pure override returns (bool) {
        return true;
    }
}

/// @notice A 30 % Sybil group over many jobs (P4). Ten providers of 10 ether each: three
/// Sybils, seven honest; k = 3, so each is drawn at the base rate with p = 3 * 0.1 = 0.3.
/// Model (documented): every provider commits as soon as it is eligible and has a result; a
/// Sybil commits the very second it is eligible (it computes nothing, it commits junk), an
/// honest provider needs `COMPUTE` seconds (fetch + run), and at equal times a Sybil goes
/// first (it front-runs). The first three commits take the slots. A job in which the Sybils
/// hold >= 2 slots is a Sybil majority; with v1's first-come slots the group got one in every
/// job it posted. Three variants of the race:
/// - lazy (the model above): an honest node starts computing once eligible, ready at
///   eligibleFrom + COMPUTE;
/// - eager: an honest node starts computing at the post whenever drawOf gives it an
///   eligibleFrom inside the window (known from the post on), ready at
///   max(eligibleFrom, postedAt + COMPUTE);
/// - no edge (a baseline, not an attack): Sybils too need COMPUTE, ties are broken at
///   random, so the slots go as the draw alone decides.
/// Eligibility only changes at the eight step boundaries, so every provider made eligible by
/// one widening step is eligible in the same second: the free slots then go to whoever
/// commits first, which is whoever computes nothing. The measured gap between "lazy" or
/// "eager" and "no edge" is that head start.
contract SybilSimulationTest is EscrowFixture {
    uint256 internal constant JOBS = 2000;
    uint256 internal constant PROVIDERS = 10;
    uint256 internal constant SYBILS = 3;
    uint256 internal constant WINDOW = 1 hours;
    uint256 internal constant COMPUTE = WINDOW / 16; // half of the first doubling's step
    uint256 internal constant LAZY = 0;
    uint256 internal constant EAGER = 1;
    uint256 internal constant NO_EDGE = 2;

    address[PROVIDERS] internal providers; // Sybils first

    function _tokenMode() internal pure override returns (bool) {
        return false;
    }

    function setUp() public override {
        super.setUp();
        for (uint256 i = 0; i < PROVIDERS; ++i) {
            providers[i] = address(uint160(0x5000 + i));
            _fund(providers[i], 10 ether);
            _stake(providers[i], 10 ether);
        }
        _nextBlock();
    }

    /// The model of the issue: a 30 % Sybil group gets a majority far less often than v1's
    /// certainty (a loose bound: the head start of the widening steps puts it above the
    /// binomial tail, see the contract's notes).
    function test_draw_sybilMajorityRateUnderTheLot() public {
        uint256 lazy = _simulate(LAZY, "lazy honest nodes");
        assertLt(lazy * 100, JOBS * 40, "far below v1's certainty");
        assertGt(lazy * 100, JOBS * 15, "the simulation does measure majorities");
    }

    /// Starting the compute at the post does not remove the head start: the ties at each
    /// widening step go to the Sybils.
    function test_draw_sybilMajorityRateWithEagerHonestNodes() public {
        uint256 eager = _simulate(EAGER, "eager honest nodes");
        assertLt(eager * 100, JOBS * 40, "far below v1's certainty");
    }

    /// Without a speed edge the lot alone decides: near the binomial tail (below it, as
    /// slots are drawn without replacement). The gap to the runs above is the head start.
    function test_draw_sybilMajorityRateWithoutSpeedEdge() public {
        uint256 fair = _simulate(NO_EDGE, "no speed edge");
        assertLt(fair * 1000, JOBS * 250, "near P(X>=2) = 0.216");
        assertGt(fair * 1000, JOBS * 150, "near P(X>=2) = 0.216");
    }

    function _simulate(uint256 mode, string memory label) internal returns (uint256 majorities) {
        IJobEscrow.JobSpec memory s = _spec(3);
        s.bounty = 1;
        s.collateral = 0;
        uint256 drawnAtBase;
        uint256 unfilled;
        // 2000 jobs cost ~1e9 gas, near forge's per-test limit (more without the optimizer,
        // under coverage): the simulation is a measurement, not a gas figure.
        vm.pauseGasMetering();
        for (uint256 j = 0; j < JOBS; ++j) {
            s.commitDeadline = uint40(block.timestamp + WINDOW);
            s.revealDeadline = uint40(block.timestamp + WINDOW + MIN_REVEAL);
            uint256 jobId = _postWithHash(s, keccak256(abi.encode("sim", j)));
            (uint256 sybilSlots, uint256 filled, uint256 drawn) = _race(jobId, mode);
            drawnAtBase += drawn;
            if (filled < 3) ++unfilled;
            if (sybilSlots >= 2) ++majorities;
            vm.warp(block.timestamp + 1);
        }
        vm.resumeGasMetering();
        // P(X >= 2) for X ~ Bin(3, 3/10), in thousandths: 3 p^2 (1 - p) + p^3.
        uint256 theory = (3 * 9 * 7 + 27) * JOBS / 1000;
        emit log_named_string(
            string.concat("sybil majority rate (30% stake, k=3, ", label, ")"),
            string.concat(
                "measured ",
                _ratio(majorities, JOBS),
                " vs binomial P(X>=2), X~Bin(3,0.3) = ",
                _ratio(theory, JOBS),
                " over ",
                vm.toString(JOBS),
                " jobs"
            )
        );
        emit log_named_string("drawn at the base rate per job", _ratio(drawnAtBase, JOBS));
        emit log_named_uint("unfilled jobs", unfilled);
        assertGt(drawnAtBase * 10, JOBS * 27, "about k = 3 drawn per job");
        assertLt(drawnAtBase * 10, JOBS * 33, "about k = 3 drawn per job");
    }

    /// @dev Runs one job's race for its three slots under the model; returns the Sybils'
    /// slots, the slots filled and how many providers were drawn at the base rate.
    function _race(uint256 jobId, uint256 mode)
        internal
        returns (uint256 sybilSlots, uint256 filled, uint256 drawnAtBase)
    {
        IJobEscrow.JobTerms memory t = _terms(jobId);
        uint256 deadline = _specOf[jobId].commitDeadline;
        uint256 computed = block.timestamp + COMPUTE; // an eager node's result is ready
        uint256[PROVIDERS] memory ready;
        for (uint256 i = 0; i < PROVIDERS; ++i) {
            (, bool drawn, uint256 from) = escrow.drawOf(jobId, t, providers[i]);
            if (drawn) ++drawnAtBase;
            if (from == 0) ready[i] = type(uint256).max;
            else if (i < SYBILS && mode != NO_EDGE) ready[i] = from;
            else if (mode == EAGER) ready[i] = from > computed ? from : computed;
            else ready[i] = from + COMPUTE;
        }
        for (; filled < 3; ++filled) {
            uint256 best = PROVIDERS;
            for (uint256 i = 0; i < PROVIDERS; ++i) {
                // Strictly earlier wins; at equal times a Sybil (lower index) goes first,
                // except without a speed edge, where ties are broken at random.
                if (ready[i] > deadline) continue;
                if (
                    best == PROVIDERS || ready[i] < ready[best]
                        || (mode == NO_EDGE
                            && ready[i] == ready[best]
                            && _coin(jobId, i) < _coin(jobId, best))
                ) best = i;
            }
            if (best == PROVIDERS) break;
            if (ready[best] > block.timestamp) vm.warp(ready[best]);
            vm.prank(providers[best]);
            escrow.commit(jobId, t, jobId, bytes32(uint256(1)));
            ready[best] = type(uint256).max;
            if (best < SYBILS) ++sybilSlots;
        }
    }

    function _coin(uint256 jobId, uint256 i) internal pure returns (uint256) {
        return uint256(keccak256(abi.encode("tie", jobId, i)));
    }

    /// @dev `num / den` as "0.xyz".
    function _ratio(uint256 num, uint256 den) internal pure returns (string memory) {
        uint256 milli = (num * 1000 + den / 2) / den;
        bytes memory digits = bytes(vm.toString(milli + 1000)); // "1xyz"
        digits[0] = bytes1(uint8(48 + milli / 1000));
        return string.concat(string(_slice(digits, 0, 1)), ".", string(_slice(digits, 1, 4)));
    }
}
