// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {EscrowFixture} from "./utils/EscrowFixture.sol";
import {IJobEscrow} from "../src/interfaces/IJobEscrow.sol";
import {IStaking} from "../src/interfaces/IStaking.sol";

/// @notice Optimistic jobs: paid after the challenge window; a challenge escalates to m
/// fresh drawn replicas whose quorum decides. Every attack is written as who gained and who
/// lost: the honest party's balance and stake are asserted unchanged (or paid), never only
/// that the books balance.
abstract contract JobEscrowOptimisticTest is EscrowFixture {
    address internal dave;
    uint256 internal constant STAKE = 10 ether;

    function setUp() public override {
        super.setUp();
        dave = makeAddr("dave");
        _fund(dave, 100 ether);
        _stake(dave, STAKE);
        _stakeAll(STAKE);
    }

    /// @dev A k=1 optimistic spec whose collateral's slash covers the bond (3 x bounty).
    function _optSpec() internal view returns (IJobEscrow.JobSpec memory spec) {
        spec = _spec(1);
        spec.bounty = 1 ether;
        spec.collateral = 6 ether; // slash 50 % = 3 ether = bond
    }

    function _postOpt(IJobEscrow.JobSpec memory spec) internal returns (uint256 jobId) {
        uint256 total = _totalAsBlockFoundIt();
        vm.prank(spec.consumer);
        jobId = escrow.postOptimisticJob{value: _value(spec.bounty)}(spec);
        _record(jobId, spec, total);
        _drawOf[jobId] |= uint256(1) << 64;
        _sealPostBlock(jobId);
        _setPostHash(jobId, _findHash(jobId, _list(alice), _none()));
    }

    /// @dev alice takes the optimistic job's slot with `resultHash` in the clear.
    function _claim(uint256 jobId, bytes32 resultHash) internal {
        vm.prank(alice);
        escrow.commit(jobId, _terms(jobId), 0, resultHash);
        _slots[jobId].push(_key(alice, 0));
    }

    function _bond(uint256 jobId) internal view returns (uint256) {
        return _specOf[jobId].bounty * ESCALATION_REPLICAS;
    }

    /// @dev The consumer challenges `jobId`; records the escalation job the fixture's way
    /// (its spec as JobPosted carries it) and seals its block so that bob, carol and dave
    /// are drawn.
    function _challenge(uint256 jobId) internal returns (uint256 escId) {
        IJobEscrow.JobSpec memory parent = _specOf[jobId];
        uint256 total = _totalAsBlockFoundIt();
        vm.prank(consumer);
        escId = escrow.challenge{value: _value(_bond(jobId))}(
            jobId, parent, _drawOf[jobId], _key(alice, 0)
        );
        IJobEscrow.JobSpec memory e = _specOf[jobId]; // a second copy: parent stays as posted
        e.replicas = uint8(ESCALATION_REPLICAS);
        e.quorum = uint8(ESCALATION_REPLICAS / 2 + 1);
        e.bounty = uint96(_bond(jobId));
        e.commitDeadline = uint40(block.timestamp + (parent.commitDeadline - _postedAt[jobId]));
        e.revealDeadline =
            uint40(e.commitDeadline + (parent.revealDeadline - parent.commitDeadline));
        _record(escId, e, total);
        _drawOf[escId] |= uint256(2) << 64;
        _sealPostBlock(escId);
        _setPostHash(escId, _findHash(escId, _list(bob, carol, dave), _none()));
    }

    /// @dev bob, carol and dave commit `hashes` to escalation `escId` and reveal them, the
    /// last with `hashes[0]` as the quorum hint.
    function _judge(uint256 escId, bytes32[3] memory hashes) internal {
        _judgeUpToLast(escId, hashes);
        _revealHint(escId, dave, 0, hashes[2], hashes[0]);
    }

    function _judgeUpToLast(uint256 escId, bytes32[3] memory hashes) internal {
        address[3] memory who = [bob, carol, dave];
        for (uint256 i = 0; i < 3; ++i) {
            _commit(escId, who[i], 0, hashes[i]);
        }
        _reveal(escId, bob, 0, hashes[0]);
        _reveal(escId, carol, 0, hashes[1]);
    }

    function _afterWindow(uint256 jobId) internal {
        vm.warp(uint256(_specOf[jobId].revealDeadline) + CHALLENGE_WINDOW + 1);
    }

    // ------------------------------------------------------------ post rules

    function test_postOptimistic_needsOneReplicaAndACollateralThatCoversTheBond() public {
        IJobEscrow.JobSpec memory spec = _optSpec();
        spec.replicas = 3;
        spec.quorum = 2;
        vm.prank(consumer);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowInvalidSpec.selector, bytes32("replicas"))
        );
        escrow.postOptimisticJob{value: _value(spec.bounty)}(spec);
        spec = _optSpec();
        spec.collateral = 6 ether - 1; // its slash is 1 wei short of the bond
        vm.prank(consumer);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowInvalidSpec.selector, bytes32("collateral"))
        );
        escrow.postOptimisticJob{value: _value(spec.bounty)}(spec);
        (uint256 window, uint256 m) = escrow.optimisticParams();
        assertEq(window, CHALLENGE_WINDOW, "window");
        assertEq(m, ESCALATION_REPLICAS, "m");
    }

    // ------------------------------------------------------------ unchallenged

    function test_unchallenged_paysOnlyAfterTheWindow_withoutAReveal() public {
        uint256 jobId = _postOpt(_optSpec());
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaRevealed(jobId, alice, _good(jobId));
        _claim(jobId, _good(jobId));
        assertEq(
            uint256(escrow.replicaOf(jobId, alice, 0)),
            uint256(IJobEscrow.ReplicaStatus.Revealed),
            "uint256(escrow.replicaOf(jobId"
        );
        // No reveal step: the slot is revealed by its commit.
        vm.warp(_specOf[jobId].revealDeadline);
        bytes32 good = _good(jobId);
        IJobEscrow.JobTerms memory t = _terms(jobId);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrow.EscrowWrongReplicaStatus.selector,
                jobId,
                alice,
                IJobEscrow.ReplicaStatus.Revealed
            )
        );
        vm.prank(alice);
        escrow.reveal(jobId, t, 0, good, bytes32(0), new uint256[](0), 0);
        uint256 settles = uint256(_specOf[jobId].revealDeadline) + CHALLENGE_WINDOW;
        vm.warp(settles);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowNotFinalizable.selector, jobId, settles + 1)
        );
        escrow.finalize(jobId, t, _allSlots(jobId), good);
        vm.warp(settles + 1);
        _finalize(jobId, _good(jobId));
        assertEq(escrow.balanceOf(alice), 1 ether, "alice paid the bounty");
        assertEq(_stakedOf(alice), STAKE, "alice's stake whole");
        assertEq(_lockedOf(alice), 0, "collateral unlocked");
        assertEq(escrow.balanceOf(consumer), 0, "nothing back to the consumer");
    }

    // ------------------------------------------------------------ challenged

    function test_challengeOfAHonestResult_costsTheConsumerItsBond_paysTheDefendant() public {
        uint256 jobId = _postOpt(_optSpec());
        _claim(jobId, _good(jobId));
        uint256 consumerBefore = _assetBalance(consumer);
        uint256 escId = _challenge(jobId);
        assertEq(_assetBalance(consumer), consumerBefore - _bond(jobId), "bond escrowed");
        // The escalation's replicas hash under the parent's identity.
        _judge(escId, [_good(jobId), _good(jobId), _good(jobId)]);
        assertTrue(!_isLive(jobId), "parent settled by the escalation");
        assertTrue(!_isLive(escId), "not live");
        assertEq(escrow.balanceOf(alice), 1 ether, "defendant paid as if unchallenged");
        assertEq(_stakedOf(alice), STAKE, "defendant's stake whole");
        assertEq(_lockedOf(alice), 0, "_lockedOf(alice)");
        for (uint256 i = 0; i < 3; ++i) {
            address who = [bob, carol, dave][i];
            assertEq(escrow.balanceOf(who), 1 ether, "each judge paid a third of the bond");
            assertEq(_stakedOf(who), STAKE, "_stakedOf(who)");
        }
        assertEq(escrow.balanceOf(consumer), 0, "the bond is gone");
        assertEq(escrow.burned(), 0, "escrow.burned()");
    }

    function test_challengeOfALie_slashesTheDefendant_refundsBountyAndBond() public {
        uint256 jobId = _postOpt(_optSpec());
        _claim(jobId, _bad(jobId, 1));
        uint256 escId = _challenge(jobId);
        bytes32 good = _good(jobId);
        _judgeUpToLast(escId, [good, good, good]);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.JobFinalized(
            jobId, IJobEscrow.Outcome.Overturned, good, 0, _penalty(6 ether)
        );
        _revealHint(escId, dave, 0, good, good);
        assertEq(_stakedOf(alice), STAKE - _penalty(6 ether), "liar slashed");
        assertEq(escrow.balanceOf(alice), 0, "liar unpaid");
        (, uint256 slashed,,) = escrow.reputationOf(alice);
        assertEq(slashed, 1, "slashed");
        assertEq(
            escrow.balanceOf(consumer), 1 ether + _bond(jobId), "bounty and bond back, no more"
        );
        for (uint256 i = 0; i < 3; ++i) {
            address who = [bob, carol, dave][i];
            assertEq(escrow.balanceOf(who), 1 ether, "judges paid from the bond");
            assertEq(_stakedOf(who), STAKE, "_stakedOf(who)");
        }
        assertEq(escrow.burned(), _penalty(6 ether) - _bond(jobId), "the rest of the slash burned");
    }

    /// @dev The consumer's own stake (dave) sits on the escalation and lies against an
    /// honest defendant: the honest majority decides, the Sybil is slashed, the defendant
    /// is paid and the consumer lost its bond.
    function test_attack_consumerSybilOnTheEscalation_outvotedAndSlashed() public {
        uint256 jobId = _postOpt(_optSpec());
        _claim(jobId, _good(jobId));
        uint256 escId = _challenge(jobId);
        _judge(escId, [_good(jobId), _good(jobId), _bad(jobId, 2)]);
        assertEq(escrow.balanceOf(alice), 1 ether, "honest defendant paid");
        assertEq(_stakedOf(alice), STAKE, "honest defendant's stake whole");
        assertEq(escrow.balanceOf(bob), 1.5 ether, "honest judges share the bond");
        assertEq(escrow.balanceOf(carol), 1.5 ether, "escrow.balanceOf(carol)");
        assertEq(_stakedOf(dave), STAKE - _penalty(6 ether), "the Sybil judge slashed");
        assertEq(escrow.balanceOf(consumer), 0, "the consumer got nothing back");
    }

    /// @dev Self-dealing: the consumer's own identity (alice) takes its optimistic job, lies,
    /// and the consumer challenges, hoping to be paid out of its own slash or to drain the
    /// judges. The coalition gets back less than it put in (the slash beyond the bond is
    /// burned); the honest judges keep their stake and are paid the bond.
    function test_attack_consumerAndDefendantCollude_theCoalitionLosesTheJudgesArePaid() public {
        uint256 coalitionBefore = _assetBalance(consumer) + _stakedOf(alice);
        uint256 jobId = _postOpt(_optSpec());
        _claim(jobId, _bad(jobId, 1));
        uint256 escId = _challenge(jobId);
        bytes32 good = _good(jobId);
        _judge(escId, [good, good, good]);
        uint256 coalitionAfter = _assetBalance(consumer) + escrow.balanceOf(consumer)
            + _stakedOf(alice) + escrow.balanceOf(alice);
        assertEq(
            coalitionAfter,
            coalitionBefore - _penalty(6 ether),
            "the coalition loses the whole slash: the bond it gets back is its own"
        );
        for (uint256 i = 0; i < 3; ++i) {
            address who = [bob, carol, dave][i];
            assertEq(_stakedOf(who), STAKE, "honest judge's stake unchanged");
            assertEq(escrow.balanceOf(who), 1 ether, "honest judge paid its share of the bond");
        }
    }

    /// @dev A consumer that withholds the input from the escalation (nobody can commit)
    /// gains nothing: the bond comes back, the defendant is paid.
    function test_attack_escalationLeftUnfilled_paysTheDefendant() public {
        uint256 jobId = _postOpt(_optSpec());
        _claim(jobId, _good(jobId));
        uint256 escId = _challenge(jobId);
        vm.warp(uint256(_specOf[escId].commitDeadline) + 1);
        _finalize(escId, bytes32(0));
        assertEq(escrow.balanceOf(alice), 1 ether, "defendant paid");
        assertEq(_stakedOf(alice), STAKE, "_stakedOf(alice)");
        assertEq(_lockedOf(alice), 0, "_lockedOf(alice)");
        assertEq(
            escrow.balanceOf(consumer), _bond(jobId), "only the bond back: it paid for the work"
        );
        assertTrue(!_isLive(jobId), "not live");
    }

    /// @dev Escalation without a quorum (three different hashes): nobody is proven wrong,
    /// the defendant is paid, the bond is refunded, the judges who revealed are released.
    function test_escalationWithoutQuorum_paysTheDefendant_refundsTheBond() public {
        uint256 jobId = _postOpt(_optSpec());
        _claim(jobId, _bad(jobId, 1));
        uint256 escId = _challenge(jobId);
        _judge(escId, [_good(jobId), _bad(jobId, 2), _bad(jobId, 3)]);
        assertEq(escrow.balanceOf(alice), 1 ether, "escrow.balanceOf(alice)");
        assertEq(_stakedOf(alice), STAKE, "_stakedOf(alice)");
        assertEq(escrow.balanceOf(consumer), _bond(jobId), "escrow.balanceOf(consumer)");
        assertEq(
            _stakedOf(bob) + _stakedOf(carol) + _stakedOf(dave),
            3 * STAKE,
            "_stakedOf(bob) + _stakedOf(car"
        );
    }

    // ------------------------------------------------------------ challenge rules

    /// An escalation is judged by commit and reveal only: a judge cannot take its slots with
    /// commitResult (m > 1 slots), nor can the defendant; nobody is paid or slashed by trying.
    function test_attack_commitResultOnAnEscalation_isRefused() public {
        uint256 jobId = _postOpt(_optSpec());
        _claim(jobId, _good(jobId));
        uint256 escId = _challenge(jobId);
        IJobEscrow.JobTerms memory t = _terms(escId);
        address[2] memory who = [bob, alice];
        bytes32 result = _good(jobId);
        for (uint256 i = 0; i < 2; ++i) {
            vm.prank(who[i]);
            vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowNotSoloJob.selector, escId));
            escrow.commitResult(escId, t, 1, result);
        }
        assertEq(escrow.balanceOf(bob), 0, "bob is paid nothing");
        assertEq(_stakedOf(bob), STAKE, "bob's stake intact");
        assertEq(_stakedOf(alice), STAKE, "alice's stake intact");
    }

    function test_theDefendantCannotJudgeItself() public {
        uint256 jobId = _postOpt(_optSpec());
        _claim(jobId, _bad(jobId, 1));
        uint256 escId = _challenge(jobId);
        (bool eligible,,) = escrow.drawOf(escId, _terms(escId), alice);
        assertTrue(!eligible, "the draw excludes the defendant");
        (uint256 parent, address defendant, uint256 lane) = escrow.escalationOf(escId);
        assertEq(parent, jobId, "parent");
        assertEq(defendant, alice, "defendant");
        assertEq(lane, 0, "lane");
        IJobEscrow.JobTerms memory t = _terms(escId);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowExcluded.selector, escId, alice));
        escrow.commit(escId, t, 1, bytes32(uint256(1)));
    }

    function test_onlyTheConsumer_once_withinTheWindow_withTheBond() public {
        uint256 jobId = _postOpt(_optSpec());
        IJobEscrow.JobSpec memory spec = _specOf[jobId];
        uint256 draw = _drawOf[jobId];
        vm.prank(consumer);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowNotChallengeable.selector, jobId));
        escrow.challenge{value: _value(_bond(jobId))}(jobId, spec, draw, _key(alice, 0));
        _claim(jobId, _good(jobId));
        _fund(bob, 10 ether);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowNotConsumer.selector, jobId, bob));
        escrow.challenge{value: _value(_bond(jobId))}(jobId, spec, draw, _key(alice, 0));
        if (!_tokenMode()) {
            vm.prank(consumer);
            vm.expectRevert(
                abi.encodeWithSelector(
                    IJobEscrow.EscrowWrongValue.selector, _bond(jobId) - 1, _bond(jobId)
                )
            );
            escrow.challenge{value: _bond(jobId) - 1}(jobId, spec, draw, _key(alice, 0));
        }
        vm.prank(consumer);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowNotReplica.selector, jobId, bob, 0));
        escrow.challenge{value: _value(_bond(jobId))}(jobId, spec, draw, _key(bob, 0));
        uint256 closes = uint256(spec.revealDeadline) + CHALLENGE_WINDOW;
        vm.warp(closes + 1);
        vm.prank(consumer);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowChallengeClosed.selector, jobId, closes)
        );
        escrow.challenge{value: _value(_bond(jobId))}(jobId, spec, draw, _key(alice, 0));
        vm.warp(closes);
        uint256 escId = _challenge(jobId);
        vm.prank(consumer);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowNotChallengeable.selector, jobId));
        escrow.challenge{value: _value(_bond(jobId))}(jobId, spec, draw, _key(alice, 0));
        vm.warp(closes + 1);
        (IJobEscrow.JobTerms memory t, uint256[] memory slots) = (_terms(jobId), _allSlots(jobId));
        bytes32 good = _good(jobId);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowUnderChallenge.selector, jobId));
        escrow.finalize(jobId, t, slots, good);
        assertTrue(_isLive(escId), "live");
    }

    function test_aPlainJobCannotBeChallenged() public {
        uint256 jobId = _postWithHash(_spec(1), keccak256("h"));
        IJobEscrow.JobSpec memory spec = _specOf[jobId];
        vm.prank(consumer);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowNotChallengeable.selector, jobId));
        escrow.challenge{value: _value(3 ether)}(jobId, spec, _drawOf[jobId], _key(alice, 0));
        // Nor posing as optimistic: the terms hash binds the kind.
        vm.prank(consumer);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowJobNotFound.selector, jobId));
        escrow.challenge{value: _value(3 ether)}(
            jobId, spec, _drawOf[jobId] | uint256(1) << 64, _key(alice, 0)
        );
    }
}

contract JobEscrowOptimisticEthTest is JobEscrowOptimisticTest {
    function _tokenMode() internal pure override returns (bool) {
        return false;
    }
}

contract JobEscrowOptimisticTokenTest is JobEscrowOptimisticTest {
    function _tokenMode() internal pure override returns (bool) {
        return true;
    }
}
