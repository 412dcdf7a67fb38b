// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {EscrowFixture} from "./utils/EscrowFixture.sol";
import {FeeOnTransferToken} from "./utils/Tokens.sol";
import {JobEscrow} from "../src/JobEscrow.sol";
import {IJobEscrow} from "../src/interfaces/IJobEscrow.sol";
import {IStaking} from "../src/interfaces/IStaking.sol";

/// @notice The ten attacks of the protocol v2 issue, each as a test that now fails to
/// profit: the honest providers' worth (wallet + stake + credited balance) is unchanged or
/// grown, and the attacker's (the consumer and its Sybils) is not above what it put in.
/// alice, bob and carol are honest; the consumer controls `sybil1` and `sybil2`.
abstract contract JobEscrowAttacksTest is EscrowFixture {
    address internal sybil1;
    address internal sybil2;

    function setUp() public override {
        super.setUp();
        sybil1 = makeAddr("sybil1");
        sybil2 = makeAddr("sybil2");
        _fund(sybil1, 1000 ether);
        _fund(sybil2, 1000 ether);
    }

    /// @dev Wallet + bonded stake + credited balance, summed.
    function _worth(address[] memory who) internal view returns (uint256 total) {
        for (uint256 i = 0; i < who.length; ++i) {
            total += _assetBalance(who[i]) + _stakedOf(who[i]) + escrow.balanceOf(who[i]);
        }
    }

    function _honest() internal view returns (address[] memory) {
        return _list(alice, bob, carol);
    }

    function _attacker() internal view returns (address[] memory) {
        return _list(consumer, sybil1, sybil2);
    }

    /// @dev Stakes `amount` for each of `who`, then moves to the next block, so that jobs
    /// posted from now draw with it (bondedAt < postBlock).
    function _stakeEach(address[] memory who, uint256 amount) internal {
        for (uint256 i = 0; i < who.length; ++i) {
            _stake(who[i], amount);
        }
        _nextBlock();
    }

    /// @dev Both sides' worth did not move the wrong way.
    function _assertNoProfit(uint256 honestBefore, uint256 attackerBefore) internal view {
        assertGe(_worth(_honest()), honestBefore, "honest providers lose nothing");
        assertLe(_worth(_attacker()), attackerBefore, "the attacker gains nothing");
    }

    // 1. Withheld input: nobody can compute, so nobody commits; the job ends unfilled.
    function test_attack1_withheldInputCostsHonestNothing() public {
        _stakeAll(10 ether);
        uint256 honestBefore = _worth(_honest());
        uint256 attackerBefore = _worth(_attacker());
        uint256 jobId = _post(_spec(3));
        vm.warp(uint256(_specOf[jobId].commitDeadline) + 1);
        _finalize(jobId, bytes32(0));
        assertEq(escrow.balanceOf(consumer), _specOf[jobId].bounty, "refunded exactly its bounty");
        assertEq(escrow.burned(), 0, "nobody slashed");
        assertEq(_worth(_honest()), honestBefore, "honest unchanged");
        assertEq(_worth(_attacker()), attackerBefore, "attacker unchanged");
    }

    // 1b. Some replicas committed (they had the input), one never did: released, no penalty.
    function test_attack1_unfilledAfterSomeCommitsReleasesThem() public {
        _stakeAll(10 ether);
        uint256 honestBefore = _worth(_honest());
        uint256 attackerBefore = _worth(_attacker());
        uint256 jobId = _post(_spec(3));
        _commit(jobId, alice, 0, _good(jobId));
        _commit(jobId, bob, 0, _good(jobId));
        vm.warp(uint256(_specOf[jobId].commitDeadline) + 1);
        _finalize(jobId, bytes32(0));
        assertEq(_lockedOf(alice) + _lockedOf(bob), 0, "collateral released");
        assertEq(_worth(_honest()), honestBefore, "honest unchanged");
        _assertNoProfit(honestBefore, attackerBefore);
    }

    // 2. Unrealistic windows are refused at post.
    function test_attack2_unrealisticWindowsRejected() public {
        uint256 attackerBefore = _worth(_attacker());
        IJobEscrow.JobSpec memory s = _spec(3);
        s.revealDeadline = s.commitDeadline + 1;
        vm.prank(consumer);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrow.EscrowWindowTooShort.selector, bytes32("reveal"), 1, MIN_REVEAL
            )
        );
        escrow.postJob{value: _value(s.bounty)}(s);
        s = _spec(3);
        s.commitDeadline = uint40(block.timestamp + 1);
        vm.prank(consumer);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrow.EscrowWindowTooShort.selector, bytes32("commit"), 1, MIN_COMMIT
            )
        );
        escrow.postJob{value: _value(s.bounty)}(s);
        assertEq(_worth(_attacker()), attackerBefore, "nothing happened");
    }

    // 3. Far deadlines are refused; the longest allowed job frees collateral within the horizon.
    function test_attack3_farDeadlinesRejectedAndLocksBounded() public {
        _stakeAll(10 ether);
        uint256 honestBefore = _worth(_honest());
        IJobEscrow.JobSpec memory s = _spec(16);
        s.commitDeadline = type(uint32).max - 1 days;
        s.revealDeadline = type(uint32).max;
        vm.prank(consumer);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrow.EscrowDeadlineTooFar.selector,
                s.revealDeadline,
                block.timestamp + MAX_HORIZON
            )
        );
        escrow.postJob{value: _value(s.bounty)}(s);
        // The furthest allowed: never filled, alice's collateral is free by the horizon.
        s.commitDeadline = uint40(block.timestamp + MAX_HORIZON - MIN_REVEAL);
        s.revealDeadline = uint40(block.timestamp + MAX_HORIZON);
        uint256 jobId = _post(s);
        uint256 horizon = block.timestamp + MAX_HORIZON;
        _commit(jobId, alice, 0, _good(jobId));
        vm.warp(uint256(s.commitDeadline) + 1);
        assertLe(block.timestamp, horizon, "settled within the horizon");
        _finalize(jobId, bytes32(0));
        assertEq(_lockedOf(alice), 0, "released");
        assertEq(_worth(_honest()), honestBefore, "honest unchanged");
    }

    // 4. Sybil majority: when the Sybils do hold 2 of 3 slots, the honest replica is slashed
    // but the penalty is burned: the attacker nets minus nothing but its bounty's round trip.
    function test_attack4_sybilMajoritySlashIsBurnedAttackerNetsNothing() public {
        _stakeEach(_list(alice, sybil1, sybil2), 10 ether);
        uint256 aliceBefore = _worth(_list(alice));
        uint256 attackerBefore = _worth(_attacker());
        IJobEscrow.JobSpec memory s = _spec(3); // 3 * 10 / 30: all three drawn
        uint256 jobId = _post(s);
        bytes32 junk = _bad(jobId, 666);
        _commit(jobId, sybil1, 0, junk);
        _commit(jobId, sybil2, 0, junk);
        _commit(jobId, alice, 0, _good(jobId));
        _reveal(jobId, sybil1, 0, junk);
        _reveal(jobId, sybil2, 0, junk);
        _revealHint(jobId, alice, 0, _good(jobId), junk);
        uint256 penalty = _penalty(s.collateral);
        // Explicit books: the consumer paid the bounty, its Sybils got it back, the honest
        // penalty went nowhere.
        assertEq(escrow.balanceOf(consumer), 0, "no slash credited to the consumer");
        assertEq(
            escrow.balanceOf(sybil1) + escrow.balanceOf(sybil2), s.bounty, "Sybils: the bounty"
        );
        assertEq(escrow.burned(), penalty, "the honest penalty is burned");
        assertEq(_worth(_attacker()), attackerBefore, "attacker nets exactly zero");
        assertEq(_worth(_list(alice)), aliceBefore - penalty, "the honest loss is burned");
    }

    // 4b. The lot: a Sybil that was not drawn cannot take a slot.
    function test_attack4_sybilNotDrawnCannotTakeSlot() public {
        _stake(alice, 10 ether);
        _stake(bob, 10 ether);
        _stake(carol, 10 ether);
        _stake(sybil1, 10 ether);
        _stake(sybil2, 10 ether);
        _nextBlock();
        IJobEscrow.JobSpec memory s = _spec(1); // p = 1/5 each at first
        uint256 jobId = _postDrawing(s, _list(alice), _list(sybil1, sybil2));
        uint256 from = _eligibleFromRule(jobId, sybil1);
        IJobEscrow.JobTerms memory t = _terms(jobId);
        vm.prank(sybil1);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowNotDrawn.selector, jobId, sybil1, from)
        );
        escrow.commit(jobId, t, 0, bytes32(uint256(1)));
        _commit(jobId, alice, 0, _good(jobId)); // the drawn provider takes the only slot
        vm.warp(from);
        vm.prank(sybil1);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowJobFull.selector, jobId));
        escrow.commit(jobId, t, 0, bytes32(uint256(1)));
    }

    // 5. Unanimous quorum is refused; with the strict majority one Sybil cannot force
    // NoQuorum on k = 3, and is slashed instead.
    function test_attack5_unanimousQuorumRejectedOneSybilLoses() public {
        IJobEscrow.JobSpec memory s = _spec(3);
        s.quorum = 3;
        vm.prank(consumer);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowInvalidSpec.selector, bytes32("quorum"))
        );
        escrow.postJob{value: _value(s.bounty)}(s);
        _stakeEach(_list(alice, bob, sybil1), 10 ether);
        uint256 honestBefore = _worth(_list(alice, bob));
        uint256 attackerBefore = _worth(_attacker());
        uint256 jobId = _post(_spec(3));
        _commit(jobId, alice, 0, _good(jobId));
        _commit(jobId, bob, 0, _good(jobId));
        _commit(jobId, sybil1, 0, _bad(jobId, 1));
        _reveal(jobId, sybil1, 0, _bad(jobId, 1));
        _reveal(jobId, alice, 0, _good(jobId));
        _reveal(jobId, bob, 0, _good(jobId));
        assertEq(_worth(_list(alice, bob)), honestBefore + _specOf[jobId].bounty, "honest paid");
        assertEq(
            _worth(_attacker()),
            attackerBefore - _specOf[jobId].bounty - _penalty(_specOf[jobId].collateral),
            "the attacker pays the bounty and its Sybil's penalty"
        );
    }

    // 5b. k = 2 (quorum 2 = k): one drawn Sybil can force NoQuorum, unpunished, but gains
    // nothing: the consumer gets exactly its bounty back, the honest replica is released
    // with its stake (and serves no output for an unsettled job, P6).
    function test_attack5_pairJobOneSybilForcesNoQuorumGainsNothing() public {
        _stakeEach(_list(alice, sybil1), 10 ether);
        uint256 honestBefore = _worth(_honest());
        uint256 attackerBefore = _worth(_attacker());
        uint256 jobId = _post(_spec(2));
        _commit(jobId, alice, 0, _good(jobId));
        _commit(jobId, sybil1, 0, _bad(jobId, 1));
        _reveal(jobId, alice, 0, _good(jobId));
        vm.expectEmit(address(escrow));
        emit IJobEscrow.JobFinalized(jobId, IJobEscrow.Outcome.NoQuorum, bytes32(0), 0, 0);
        _reveal(jobId, sybil1, 0, _bad(jobId, 1));
        assertEq(_worth(_honest()), honestBefore, "honest released, stake intact");
        assertEq(_worth(_attacker()), attackerBefore, "attacker: its bounty back, no more");
    }

    // 6. Copy across jobs: job A's revealed hash is worthless in job B.
    function test_attack6_copiedHashLosesInAnotherJob() public {
        _stakeEach(_list(alice, bob, sybil1), 10 ether);
        bytes memory output = "the output of kernel K on input I";
        uint256 jobA = _post(_spec(3));
        bytes32 hashA = escrow.resultHashOf(jobA, output);
        _commit(jobA, alice, 0, hashA);
        _commit(jobA, bob, 0, hashA);
        _commit(jobA, sybil1, 0, hashA);
        _reveal(jobA, alice, 0, hashA);
        _reveal(jobA, bob, 0, hashA);
        _reveal(jobA, sybil1, 0, hashA); // hashA is public from here
        uint256 honestBefore = _worth(_list(alice, bob));
        uint256 attackerBefore = _worth(_attacker());
        uint256 jobB = _post(_spec(3)); // same kernel, same input
        bytes32 hashB = escrow.resultHashOf(jobB, output);
        assertNotEq(hashA, hashB, "bound to the job");
        _commit(jobB, sybil1, 1, hashA); // copied, not computed
        _commit(jobB, alice, 1, hashB);
        _commit(jobB, bob, 1, hashB);
        _reveal(jobB, sybil1, 1, hashA);
        _reveal(jobB, alice, 1, hashB);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.JobFinalized(
            jobB, IJobEscrow.Outcome.Completed, hashB, 2, _penalty(_specOf[jobB].collateral)
        );
        _reveal(jobB, bob, 1, hashB);
        assertEq(escrow.balanceOf(sybil1), _specOf[jobA].bounty / 3, "no pay for job B");
        _assertNoProfit(honestBefore, attackerBefore);
    }

    // 7. Reputation farming: self-posted jobs filled by the attacker's own small provider
    // count only where the lot drew it at the base rate.
    function test_attack7_selfPostedJobsEarnNoReputationUnlessDrawn() public {
        _stakeAll(10 ether);
        _stake(sybil1, MIN_STAKE); // 1 of 31
        _nextBlock();
        IJobEscrow.JobSpec memory s = _spec(1);
        s.bounty = 1;
        s.collateral = 0;
        uint256 drawnJobs;
        for (uint256 i = 0; i < 20; ++i) {
            s.commitDeadline = uint40(block.timestamp + 1 hours);
            s.revealDeadline = uint40(block.timestamp + 2 hours);
            uint256 jobId = _postWithHash(s, keccak256(abi.encode("farm", i)));
            if (_passes(jobId, _ticket(_seedOf(jobId), jobId, sybil1), sybil1, 0)) ++drawnJobs;
            (,, uint256 from) = escrow.drawOf(jobId, _terms(jobId), sybil1);
            assertGt(from, 0, "eligible by the deadline (256 / 31 > 1)");
            vm.warp(from);
            _commit(jobId, sybil1, 0, _good(jobId));
            _reveal(jobId, sybil1, 0, _good(jobId));
            vm.warp(block.timestamp + 1);
        }
        (uint256 completed,,,) = escrow.reputationOf(sybil1);
        assertEq(completed, drawnJobs, "only the jobs it was drawn for");
        assertLt(completed, 20, "not one point per self-posted job");
    }

    // 8. Lane steering: ids do not pick lanes; the provider does, and nobody else writes its
    // lanes. 100 filler jobs posted in between change nothing.
    function test_attack8_fillerJobsCannotSteerLanes() public {
        _stakeAll(10 ether);
        uint256 honestBefore = _worth(_honest());
        uint256 own = _post(_spec(3));
        _commit(own, alice, 0, _good(own));
        IJobEscrow.JobSpec memory filler = _spec(3);
        filler.bounty = 1;
        for (uint256 i = 0; i < 100; ++i) {
            _post(filler);
        }
        uint256 victim = _post(_spec(3));
        IJobEscrow.JobTerms memory t = _terms(victim);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowLaneBusy.selector, alice, 0, own));
        escrow.commit(victim, t, 0, bytes32(uint256(1)));
        _commit(victim, alice, 1, _good(victim)); // any free lane will do
        _commit(victim, bob, 0, _good(victim));
        _commit(victim, carol, 0, _good(victim));
        _reveal(victim, alice, 1, _good(victim));
        _reveal(victim, bob, 0, _good(victim));
        _reveal(victim, carol, 0, _good(victim));
        assertGe(_worth(_honest()), honestBefore, "honest paid, never blocked");
    }

    // 10. No unbonding delay; collateral stays locked and slashable until its job settles,
    // even after the provider took out all its free stake.
    function test_attack10_lockedCollateralCannotEscapeTheSlash() public {
        _stakeEach(_list(alice, bob, sybil1), 10 ether);
        uint256 jobId = _post(_spec(3));
        uint256 collateral = _specOf[jobId].collateral;
        _commit(jobId, alice, 0, _good(jobId));
        _commit(jobId, bob, 0, _good(jobId));
        _commit(jobId, sybil1, 0, _bad(jobId, 1));
        vm.prank(sybil1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IStaking.StakeInsufficient.selector, 10 ether - collateral, 10 ether
            )
        );
        escrow.unstake(10 ether);
        _unstake(sybil1, 10 ether - collateral); // the free stake leaves at once
        assertEq(_stakedOf(sybil1), collateral, "only the collateral is left");
        _reveal(jobId, alice, 0, _good(jobId));
        _reveal(jobId, bob, 0, _good(jobId));
        vm.warp(uint256(_specOf[jobId].revealDeadline) + 1); // the liar never reveals
        _finalize(jobId, _good(jobId));
        assertEq(_stakedOf(sybil1), collateral - _penalty(collateral), "slashed all the same");
        assertEq(escrow.burned(), _penalty(collateral), "burned");
    }
}

contract JobEscrowAttacksEthTest is JobEscrowAttacksTest {
    function _tokenMode() internal pure override returns (bool) {
        return false;
    }
}

contract JobEscrowAttacksTokenTest is JobEscrowAttacksTest {
    function _tokenMode() internal pure override returns (bool) {
        return true;
    }
}

/// @notice 9. Fee-on-transfer tokens: a market whose token starts charging a fee refuses new
/// deposits instead of booking them at face value, so the last staker out still gets out.
contract JobEscrowAttack9Test is EscrowFixture {
    FeeOnTransferToken internal fee;

    function _tokenMode() internal pure override returns (bool) {
        return false; // the fixture's TestToken is not used: this market runs on `fee`
    }

    function setUp() public override {
        super.setUp();
        fee = new FeeOnTransferToken(0); // exact until the fee is switched on
        IJobEscrow.Params memory p = _params();
        p.asset = address(fee);
        escrow = new JobEscrow(p);
        address[3] memory who = [alice, bob, consumer];
        for (uint256 i = 0; i < 3; ++i) {
            fee.mint(who[i], 100 ether);
            vm.prank(who[i]);
            fee.approve(address(escrow), type(uint256).max);
        }
    }

    function test_attack9_feeOnTransferDepositsRefusedLastStakerGetsOut() public {
        vm.prank(alice);
        escrow.stake(10 ether);
        fee.setFee(100); // 1 %
        uint256 delivered = fee.delivered(10 ether);
        vm.prank(bob);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowTokenNotExact.selector, 10 ether, delivered)
        );
        escrow.stake(10 ether);
        IJobEscrow.JobSpec memory s = _spec(1);
        delivered = fee.delivered(s.bounty);
        vm.prank(consumer);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowTokenNotExact.selector, s.bounty, delivered)
        );
        escrow.postJob(s);
        assertEq(fee.balanceOf(address(escrow)), escrow.totalStake(), "books = holdings");
        _unstake(alice, 10 ether); // the last staker gets out (the token's fee is its own)
        assertEq(fee.balanceOf(address(escrow)), 0, "nothing owed, nothing held");
        assertEq(escrow.totalStake(), 0, "no stake");
    }
}
