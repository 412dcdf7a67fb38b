// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {EscrowFixture} from "./utils/EscrowFixture.sol";
import {JobEscrow} from "../src/JobEscrow.sol";
import {IJobEscrow} from "../src/interfaces/IJobEscrow.sol";
import {IStaking} from "../src/interfaces/IStaking.sol";

/// @notice F2's attacker: a consumer contract that evaluates its Sybils' tickets for the next
/// job in the post's own transaction and posts only when they are drawn for a majority of
/// the slots (else it reverts: nothing is lost). It reads the only seed that transaction
/// can see for the post block, blockhash(block.number), and records it; after posting it
/// also asks drawOf, as a contract that tried to check the lot afterwards would.
contract GrindingConsumer {
    JobEscrow internal immutable escrow;
    address[] internal sybils;
    bytes32 public seenSeed;
    bool public seenEligible;
    uint256 public seenEligibleFrom;

    constructor(JobEscrow escrow_, address[] memory sybils_) {
        escrow = escrow_;
        sybils = sybils_;
    }

    function postIfFavourable(IJobEscrow.JobSpec calldata spec)
        external
        payable
        returns (uint256 jobId)
    {
        bytes32 seed = blockhash(block.number); // the post block's hash, as far as it can tell
        jobId = escrow.nextJobId();
        uint256 total = escrow.totalStake();
        uint256 drawn;
        for (uint256 i = 0; i < sybils.length; ++i) {
            (uint256 staked,,) = escrow.stakeOf(sybils[i]);
            uint256 u = uint64(uint256(keccak256(abi.encode(seed, jobId, sybils[i]))));
            if (u * total < (spec.replicas * staked) << 64) ++drawn;
        }
        require(2 * drawn > spec.replicas, "unfavourable seed: try the next block");
        escrow.postJob{value: msg.value}(spec);
        uint256 draw = block.number << 32 | block.timestamp;
        (seenEligible,, seenEligibleFrom) =
            escrow.drawOf(jobId, escrow.termsOf(spec, draw), sybils[0]);
        seenSeed = seed;
    }
}

/// @notice F3's attacker: a consumer contract that borrows a huge amount (a flash loan),
/// stakes it, posts its job and unstakes it again, all in one transaction, so that the
/// job's draw would divide by a total that is almost all its own (and out of the draw by
/// bondedAt): every honest provider's odds would fall to nearly nothing.
contract FlashStakingConsumer {
    JobEscrow internal immutable escrow;

    constructor(JobEscrow escrow_) {
        escrow = escrow_;
    }

    /// @dev msg.value is the loan plus the bounty; the loan comes back here by the unstake
    /// (repaying the lender is out of the escrow's sight).
    function stakePostUnstake(IJobEscrow.JobSpec calldata spec, uint256 loan)
        external
        payable
        returns (uint256 jobId)
    {
        escrow.stake{value: loan}(loan);
        jobId = escrow.postJob{value: spec.bounty}(spec);
        escrow.unstake(loan);
    }

    receive() external payable {}
}

/// @notice The two attacks a review found on the v2 draw (F1, F2), now closed: each test runs
/// the attack and asserts it no longer changes anyone's odds.
///
/// F1 (closed). The draw once divided by the live `totalStake()`: stake bonded after a post
/// (excluded from the numerator by the bondedAt rule) still grew the denominator, so anyone
/// could un-draw the providers the lot drew by staking into a fresh address, and let its
/// Sybils in at the widening steps by unstaking. The job now stores the total stake at the
/// post, and the draw divides by that.
///
/// F2 (closed). The seed was `block.prevrandao` of the post's own transaction, so a consumer
/// contract saw it before committing to the post (GrindingConsumer). The seed is now the
/// post block's hash, which no transaction in that block can read.
///
/// F3 (closed). With the total taken at the post, a consumer could still stake a flash loan,
/// post and unstake in one transaction (FlashStakingConsumer): the job's denominator then
/// held the loan. The post now takes the total as its block found it: stake moved by
/// earlier transactions of the same block (stake, unstake, slashing) does not count.
/// Stake added in an earlier block does count: whoever holds the capital across a block
/// boundary can dilute a post's draw (the price is holding it). That is ordinary stake,
/// then: bonded before the post, it is in the draw itself (a slot it takes locks collateral
/// and must be served, or is slashed; a slot it leaves waits for the widening steps), and it
/// lowers every other provider's base odds by the same factor, so it shifts no odds between
/// them. Where consecutive blocks can share a timestamp (some L2s), stake from the previous
/// block was once in the denominator but not in the draw (the numerator's rule compared
/// timestamps, bondedAt == postedAt); both now count blocks (bondedAt < postBlock), so that
/// stake is in the draw too: see test_attackF3_sameTimestampBlockStakeIsInTheDraw.
abstract contract JobEscrowDrawAttacksTest is EscrowFixture {
    address internal sybil1;
    address internal sybil2;
    address internal whale;

    function setUp() public override {
        super.setUp();
        sybil1 = makeAddr("sybil1");
        sybil2 = makeAddr("sybil2");
        whale = makeAddr("whale");
        _fund(sybil1, 100 ether);
        _fund(sybil2, 100 ether);
        _fund(whale, 100_000 ether);
    }

    /// F1: a provider the lot drew stays drawn whatever others stake after the post; the new
    /// stake is itself out of the draw.
    function test_attackF1_stakeAddedAfterPostCannotUndrawAProvider() public {
        _stakeAll(10 ether);
        uint256 jobId = _postDrawing(_spec(1), _list(alice), _none());
        IJobEscrow.JobTerms memory t = _terms(jobId);
        _assertDrawnFromThePost(jobId, alice, "drawn at the post");
        _stake(whale, 10_000 ether); // after the post: 99.7 % of the live total
        _assertDrawnFromThePost(jobId, alice, "still drawn: later stake changes nobody's odds");
        (,,, uint256 drawTotal) = escrow.jobState(jobId);
        assertEq(drawTotal, _roundedTotal(30 ether), "the denominator is the total at the post");
        vm.prank(whale);
        vm.expectPartialRevert(IJobEscrow.EscrowStakeTooNew.selector);
        escrow.commit(jobId, t, 0, bytes32(uint256(1)));
        bytes32 c = _commitment(jobId, alice, 0, _good(jobId));
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaCommitted(jobId, alice, 0, c, true);
        _commit(jobId, alice, 0, _good(jobId));
    }

    /// F1, the other way: stake withdrawn after the post does not raise anyone's odds either
    /// (with a live denominator carol would be certain once alice and bob leave).
    function test_attackF1_stakeRemovedAfterPostCannotDrawAProvider() public {
        _stakeAll(10 ether);
        uint256 jobId = _postDrawing(_spec(1), _none(), _list(carol));
        IJobEscrow.JobTerms memory t = _terms(jobId);
        (, bool before, uint256 fromBefore) = escrow.drawOf(jobId, t, carol);
        assertTrue(!before, "not drawn at the post");
        _unstake(alice, 10 ether);
        _unstake(bob, 10 ether);
        (bool eligible, bool drawn, uint256 from) = escrow.drawOf(jobId, t, carol);
        assertTrue(!eligible && !drawn, "still not drawn");
        assertEq(from, fromBefore, "same eligibleFrom");
        assertEq(from, _eligibleFromRule(jobId, carol), "per the rule, at the post's total");
    }

    /// F1, the full attack: three honest providers drawn at the base rate, two Sybils not.
    /// The consumer's whale stakes right after the post and unstakes when the Sybils widen
    /// in. The honest commits are no longer refused while it is inflated, the honest
    /// providers fill the job and are paid; the Sybils find it full.
    function test_attackF1_stakeInflationNoLongerLetsUndrawnSybilsIn() public {
        _stakeAll(10 ether);
        _stake(sybil1, 10 ether);
        _stake(sybil2, 10 ether);
        _nextBlock();
        uint256 honestBefore = _stakedOf(alice) + escrow.balanceOf(alice);
        IJobEscrow.JobSpec memory s = _spec(3);
        uint256 jobId = _postDrawing(s, _list(alice, bob, carol), _list(sybil1, sybil2));
        uint256 from1 = _eligibleFromRule(jobId, sybil1);
        uint256 from2 = _eligibleFromRule(jobId, sybil2);
        assertTrue(from1 > 0 && from2 > 0, "the Sybils widen in before the deadline");
        _stake(whale, 50_000 ether); // right after the post, before any honest commit
        _commit(jobId, alice, 0, _good(jobId)); // refused under F1, accepted now
        _commit(jobId, bob, 0, _good(jobId));
        _commit(jobId, carol, 0, _good(jobId));
        vm.warp(from1 < from2 ? from2 : from1); // both Sybils eligible from here
        _unstake(whale, 50_000 ether);
        IJobEscrow.JobTerms memory t = _terms(jobId);
        bytes32 junk = _commitment(jobId, sybil1, 0, _bad(jobId, 666));
        vm.prank(sybil1);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowJobFull.selector, jobId));
        escrow.commit(jobId, t, 0, junk);
        _reveal(jobId, alice, 0, _good(jobId));
        _reveal(jobId, bob, 0, _good(jobId));
        _reveal(jobId, carol, 0, _good(jobId));
        assertEq(
            _stakedOf(alice) + escrow.balanceOf(alice),
            honestBefore + s.bounty / 3,
            "the drawn honest provider is paid"
        );
        (uint256 completed,,,) = escrow.reputationOf(alice);
        assertEq(completed, 1, "and credited as drawn");
    }

    /// F2, inside the post's transaction: the post block's hash reads as zero there, drawOf
    /// answers "not fixed, a second later", and the seed the job uses is the hash the block
    /// gets once sealed, which the grinder could not read.
    function test_attackF2_consumerCannotReadItsJobsSeed() public {
        address[] memory sybils = _sybilNetwork();
        GrindingConsumer grinder = new GrindingConsumer(escrow, sybils);
        vm.deal(address(this), 10 ether);
        IJobEscrow.JobSpec memory s = _grinderSpec(address(grinder));
        uint256 total = _totalAsBlockFoundIt();
        uint256 jobId;
        // Its prediction for seed 0 favours it only for some job ids: find one.
        for (uint256 i = 0; jobId == 0 && i < 64; ++i) {
            try grinder.postIfFavourable{value: 1}(s) returns (uint256 id) {
                jobId = id;
            } catch {
                _burnJobId(s); // another consumer's post takes that id
            }
        }
        assertGt(jobId, 0, "setup: the grinder posts once its (zero) seed looks favourable");
        _record(jobId, s, total);
        assertEq(grinder.seenSeed(), bytes32(0), "the post block's hash reads as zero in it");
        assertTrue(!grinder.seenEligible(), "drawOf cannot evaluate the draw in the post's tx");
        assertEq(grinder.seenEligibleFrom(), block.timestamp + 1, "a second later");
        _sealPostBlock(jobId);
        assertNotEq(_seedOf(jobId), grinder.seenSeed(), "the seed used is not the seed read");
        assertEq(blockhash(_drawOf[jobId] >> 32), _seedOf(jobId), "it is the sealed hash");
        for (uint256 i = 0; i < sybils.length; ++i) {
            (, bool drawn,) = escrow.drawOf(jobId, _terms(jobId), sybils[i]);
            assertEq(
                drawn,
                _passes(jobId, _ticket(_seedOf(jobId), jobId, sybils[i]), sybils[i], 0),
                "drawn by the sealed hash"
            );
        }
    }

    /// F2 over many blocks: a 30 % Sybil group (3 of 10 equal stakes) posting through
    /// GrindingConsumer got its majority in every job it posted; its prediction now says
    /// nothing about the lot, so it gets one at about the binomial tail (0.216; the bound
    /// here is the loose 0.35).
    function test_attackF2_grindingConsumerGetsNoMoreThanTheLot() public {
        address[] memory sybils = _sybilNetwork();
        GrindingConsumer grinder = new GrindingConsumer(escrow, sybils);
        vm.deal(address(this), 1000 ether);
        IJobEscrow.JobSpec memory s = _grinderSpec(address(grinder));
        uint256 posted;
        uint256 majorities;
        vm.pauseGasMetering();
        for (uint256 b = 0; b < 400; ++b) {
            vm.warp(block.timestamp + 12);
            vm.prevrandao(keccak256(abi.encode("randao", b)));
            s.commitDeadline = uint40(block.timestamp + 1 hours);
            s.revealDeadline = uint40(block.timestamp + 2 hours);
            uint256 total = _totalAsBlockFoundIt();
            try grinder.postIfFavourable{value: 1}(s) returns (uint256 jobId) {
                ++posted;
                _record(jobId, s, total);
                // The block is sealed after every transaction in it: its hash is new.
                _sealPostBlock(jobId);
                _setPostHash(jobId, keccak256(abi.encode("sealed block", b)));
                // The drawn Sybils commit first, before any honest compute.
                uint256 taken;
                for (uint256 i = 0; i < 3 && taken < 2; ++i) {
                    (, bool drawn,) = escrow.drawOf(jobId, _terms(jobId), sybils[i]);
                    if (!drawn) continue;
                    _commit(jobId, sybils[i], jobId, _bad(jobId, 666));
                    ++taken;
                }
                if (taken >= 2) ++majorities;
            } catch {
                _burnJobId(s);
                vm.roll(block.number + 1);
            }
        }
        vm.resumeGasMetering();
        emit log_named_uint("jobs posted by the grinding consumer", posted);
        emit log_named_uint("of which Sybil majorities", majorities);
        assertGt(posted, 40, "setup: the grinder finds seeds it likes");
        assertLt(majorities * 100, posted * 35, "a consumer cannot choose its own job's lot");
        assertGt(majorities * 100, posted * 10, "the Sybils still get the lot's share");
    }

    /// F3: a flash-loaned stake, staked, posted against and unstaked in one transaction, is
    /// not in the job's denominator: it is the total before that transaction, and an honest
    /// provider that was certain (k * staked >= total) stays certain and is drawn.
    function test_attackF3_flashStakeInThePostTxDoesNotDilute() public {
        _stakeAll(10 ether); // 3 replicas against 30 ether: each provider is certain
        uint256 loan = 1_000_000_000 ether;
        FlashStakingConsumer flash = new FlashStakingConsumer(escrow);
        vm.deal(address(this), loan + 3 ether);
        IJobEscrow.JobSpec memory s = _spec(3);
        s.consumer = address(flash);
        uint256 before = escrow.totalStake();
        assertEq(_totalAsBlockFoundIt(), before, "setup: nothing moved in this block yet");
        uint256 jobId = flash.stakePostUnstake{value: loan + s.bounty}(s, loan);
        _record(jobId, s, before);
        _sealPostBlock(jobId);
        assertEq(escrow.totalStake(), before, "the loan is gone again");
        assertEq(_stakedOf(address(flash)), 0, "the consumer keeps no stake");
        assertEq(address(flash).balance, loan, "and has the loan back in hand");
        (,,, uint256 drawTotal) = escrow.jobState(jobId);
        assertEq(drawTotal, _roundedTotal(before), "the total before the consumer's tx");
        // Counted, the loan would have cut each provider's chance to 3e-8.
        assertLt(
            (3 * 10 ether << 64) / _roundedTotal(before + loan),
            uint256(2 ** 64) / 1_000_000,
            "the loan would have made the honest a long shot"
        );
        address[3] memory honest = [alice, bob, carol];
        for (uint256 i = 0; i < 3; ++i) {
            _assertDrawnFromThePost(jobId, honest[i], "certain before the loan, certain now");
            assertEq(_eligibleFromRule(jobId, honest[i]), _postedAt[jobId], "per the rule");
        }
        bytes32 c = _commitment(jobId, alice, 0, _good(jobId));
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaCommitted(jobId, alice, 0, c, true);
        _commit(jobId, alice, 0, _good(jobId));
    }

    /// F3, spread over transactions of the post's block: stake the whale adds earlier in the
    /// post's block, and what it takes out again in it, do not count either way.
    function test_attackF3_stakeMovedEarlierInThePostBlockDoesNotCount() public {
        _stakeAll(10 ether);
        _stake(whale, 50_000 ether); // an earlier transaction of the post's block
        uint256 jobId = _post(_spec(3));
        (,,, uint256 drawTotal) = escrow.jobState(jobId);
        assertEq(drawTotal, _roundedTotal(30 ether), "not the whale's stake");
        assertEq(_totalAtPost[jobId], 30 ether, "the model agrees");
        _assertDrawnFromThePost(jobId, alice, "alice stays certain");
        // The next block finds the whale's stake; it leaves in that block before a post.
        _unstake(whale, 50_000 ether);
        uint256 next = _post(_spec(3));
        (,,, uint256 nextTotal) = escrow.jobState(next);
        assertEq(nextTotal, _roundedTotal(50_030 ether), "as the block found it: with the whale");
        assertEq(escrow.totalStake(), 30 ether, "though it left before the post");
        assertEq(_totalAtPost[next], 50_030 ether, "the model agrees");
        _assertDrawMatchesTheRule(next, _list(alice, bob, carol));
    }

    /// F3's limit: stake added in an EARLIER block counts. Whoever holds the capital across
    /// the block boundary dilutes the post's draw; the stake is then in the draw itself and
    /// every other provider's threshold falls by the same factor (their relative odds stay).
    function test_attackF3_stakeFromAnEarlierBlockDoesDilute() public {
        _stakeAll(10 ether);
        _stake(whale, 970 ether); // held across the block boundary: 97 % of the total
        _nextBlock();
        uint256 jobId = _post(_spec(3));
        (,,, uint256 drawTotal) = escrow.jobState(jobId);
        assertEq(drawTotal, _roundedTotal(1000 ether), "the whale's stake counts");
        _unstake(whale, 970 ether); // leaving after the post changes nothing
        (,,, uint256 after_) = escrow.jobState(jobId);
        assertEq(after_, drawTotal, "the stored denominator stays");
        // Each honest threshold is (k * staked) / total: 30 / 1000 instead of 30 / 30, the
        // same factor of 1000 / 30 for all three.
        address[] memory honest = _list(alice, bob, carol);
        _assertDrawMatchesTheRule(jobId, honest);
        uint256 base = (3 * _stakedOf(alice) << 64) / drawTotal;
        for (uint256 i = 0; i < 3; ++i) {
            assertEq((3 * _stakedOf(honest[i]) << 64) / drawTotal, base, "lowered alike");
        }
    }

    /// F3 where consecutive blocks share a timestamp (some L2s), closed: stake from the
    /// previous block, same second, once counted in the post's denominator but was never in
    /// its draw (the numerator's rule followed timestamps), so it diluted every provider's
    /// odds at no risk. Both rules now follow blocks: that stake is bonded before the post's
    /// block, so it is in the draw (here certain, 3 * 970 / 1000 > 1), the slot it takes locks
    /// collateral it cannot take out, and an unserved slot is slashed.
    function test_attackF3_sameTimestampBlockStakeIsInTheDraw() public {
        _stakeAll(10 ether);
        _stake(whale, 970 ether);
        uint256 stakedIn = block.number;
        uint256 stakedAt = block.timestamp;
        vm.roll(block.number + 1); // the next block, in the same second
        IJobEscrow.JobSpec memory s = _spec(3);
        uint256 jobId = _post(s);
        assertEq(_postedAt[jobId], stakedAt, "setup: posted in the second of the stake");
        assertEq(_postBlockOf(jobId), stakedIn + 1, "setup: in the next block");
        (,,, uint256 drawTotal) = escrow.jobState(jobId);
        assertEq(drawTotal, _roundedTotal(1000 ether), "in the denominator");
        assertTrue(_bondedBefore(jobId, whale), "bonded before the post's block");
        _assertDrawnFromThePost(jobId, whale, "and in the draw: eligible per the rule");
        assertEq(_eligibleFromRule(jobId, whale), _postedAt[jobId], "per the rule");
        _assertDrawMatchesTheRule(jobId, _list(alice, bob, carol));
        // It takes a slot like any drawn provider: its collateral is locked.
        bytes32 c = _commitment(jobId, whale, 0, _good(jobId));
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaCommitted(jobId, whale, 0, c, true);
        _commit(jobId, whale, 0, _good(jobId));
        assertEq(_lockedOf(whale), s.collateral, "collateral locked");
        vm.prank(whale);
        vm.expectPartialRevert(IStaking.StakeInsufficient.selector);
        escrow.unstake(970 ether); // it cannot leave at once
        // The honest fill the job as the threshold widens; the whale never reveals.
        vm.warp(s.commitDeadline);
        _commit(jobId, alice, 0, _good(jobId));
        _commit(jobId, bob, 0, _good(jobId));
        _reveal(jobId, alice, 0, _good(jobId));
        _reveal(jobId, bob, 0, _good(jobId));
        vm.warp(uint256(s.revealDeadline) + 1);
        _finalize(jobId, _good(jobId));
        uint256 penalty = _penalty(s.collateral);
        assertEq(escrow.burned(), penalty, "the unserved slot is slashed");
        assertEq(_stakedOf(whale), 970 ether - penalty, "out of the whale's stake");
        (,, uint256 missed,) = escrow.reputationOf(whale);
        assertEq(missed, 1, "and counted missed");
    }

    /// F3, slashing: a settlement that burns stake earlier in the post's block does not
    /// change the post's denominator, and a post before the slash keeps its own.
    function test_attackF3_slashInThePostBlockDoesNotChangeTheDenominator() public {
        _stakeAll(10 ether);
        uint256 job1 = _post(_spec(3)); // three certain providers
        _commit(job1, alice, 0, _good(job1));
        _commit(job1, bob, 0, _good(job1));
        _commit(job1, carol, 0, _bad(job1, 1));
        _nextBlock();
        _reveal(job1, alice, 0, _good(job1));
        _reveal(job1, carol, 0, _bad(job1, 1));
        uint256 before = _postInBlock(_spec(3)); // posted before the slash, same block
        _reveal(job1, bob, 0, _good(job1)); // the last reveal slashes carol
        uint256 penalty = _penalty(_specOf[job1].collateral);
        assertEq(escrow.burned(), penalty, "setup: carol slashed and burned");
        assertEq(escrow.totalStake(), 30 ether - penalty, "setup: out of the total");
        uint256 afterSlash = _postInBlock(_spec(3)); // after the slash, same block
        _sealPostBlock(before);
        _setPostHash(afterSlash, _postHashOf[before]);
        (,,, uint256 d1) = escrow.jobState(before);
        (,,, uint256 d2) = escrow.jobState(afterSlash);
        assertEq(d1, _roundedTotal(30 ether), "posted before the slash");
        assertEq(d2, _roundedTotal(30 ether), "posted after it: the block's starting total");
        assertEq(_totalAtPost[afterSlash], 30 ether, "the model agrees");
        _assertDrawMatchesTheRule(afterSlash, _list(alice, bob, carol));
        uint256 later = _post(_spec(3)); // the next block finds the slash
        (,,, uint256 d3) = escrow.jobState(later);
        assertEq(d3, _roundedTotal(30 ether - penalty), "the next block counts the burn");
    }

    /// The total stake is capped at 2^112 - 1 (the Counter's field): a stake past it
    /// reverts, one up to it is taken. 2^16 maximal stakes would reach it, so the test
    /// sets the stored total near the cap (the layout is checked first).
    function test_stake_totalPast2pow112Reverts() public {
        _stakeAll(10 ether);
        bytes32 word = vm.load(address(escrow), bytes32(0));
        assertEq(uint64(uint256(word)), escrow.nextJobId(), "slot 0: nextJobId, low 64 bits");
        assertEq(uint112(uint256(word) >> 64), escrow.totalStake(), "then the total stake");
        uint256 cap = 2 ** 112 - 1;
        uint256 high = uint256(word) >> 176 << 176;
        uint256 nearCap = cap - 1 ether;
        vm.store(address(escrow), bytes32(0), bytes32(high | nearCap << 64 | uint64(uint256(word))));
        assertEq(escrow.totalStake(), nearCap, "setup: 1 ether below the cap");
        _stake(alice, 1 ether); // exactly to the cap
        assertEq(escrow.totalStake(), cap, "up to 2^112 - 1 is taken");
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakeAmountTooLarge.selector, 1));
        escrow.stake{value: 1}(1);
        assertEq(escrow.totalStake(), cap, "unchanged");
        assertEq(_stakedOf(bob), 10 ether, "bob's stake unchanged");
    }

    /// @dev drawOf agrees with the rule (at the job's recorded total) for each of `ps`.
    function _assertDrawMatchesTheRule(uint256 jobId, address[] memory ps) internal view {
        for (uint256 i = 0; i < ps.length; ++i) {
            (bool eligible,, uint256 from) = escrow.drawOf(jobId, _terms(jobId), ps[i]);
            uint256 rule = _eligibleFromRule(jobId, ps[i]);
            assertEq(from, rule, "eligibleFrom per the rule");
            if (rule != 0 && rule <= block.timestamp) {
                assertTrue(eligible, "eligible per the rule");
            }
        }
    }

    function _assertDrawnFromThePost(uint256 jobId, address p, string memory message)
        internal
        view
    {
        (bool eligible, bool drawn, uint256 from) = escrow.drawOf(jobId, _terms(jobId), p);
        assertTrue(eligible && drawn, message);
        assertEq(from, _postedAt[jobId], message);
    }

    /// @dev Ten providers of 10 ether each; the first three are the Sybils.
    function _sybilNetwork() internal returns (address[] memory sybils) {
        sybils = new address[](3);
        for (uint256 i = 0; i < 10; ++i) {
            address p = address(uint160(0x5000 + i));
            _fund(p, 10 ether);
            _stake(p, 10 ether);
            if (i < 3) sybils[i] = p;
        }
        _nextBlock();
    }

    function _grinderSpec(address grinder) internal view returns (IJobEscrow.JobSpec memory s) {
        s = _spec(3);
        s.consumer = grinder;
        s.bounty = 1;
        s.collateral = 0;
    }

    /// @dev Someone else posts (so the next job id differs for the grinder's next try).
    function _burnJobId(IJobEscrow.JobSpec memory grinderSpec) internal {
        IJobEscrow.JobSpec memory other = _spec(1);
        other.bounty = 1;
        other.commitDeadline = grinderSpec.commitDeadline;
        other.revealDeadline = grinderSpec.revealDeadline;
        _fund(consumer, 1);
        vm.prank(consumer);
        escrow.postJob{value: _value(1)}(other);
    }
}

contract JobEscrowDrawAttacksEthTest is JobEscrowDrawAttacksTest {
    function _tokenMode() internal pure override returns (bool) {
        return false;
    }
}
