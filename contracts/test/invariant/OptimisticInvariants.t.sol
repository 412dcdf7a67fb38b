// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {InvariantMarket} from "./InvariantMarket.sol";
import {OptimisticHandler} from "./OptimisticHandler.sol";
import {TestToken} from "../../src/test/TestToken.sol";

/// @notice Optimistic jobs and challenges under random sequences of the whole life (post,
/// claim, challenge, judge, reveal, finalize, withdraw, time): the escrow stays solvent, no
/// consumer is credited more than it paid in (P1), an honest defendant facing an honest
/// majority is never slashed and always paid, a lying one judged by an honest majority is
/// always slashed with the slash minus the bond burned, a challenged parent settles only
/// with its escalation, and locked collateral and lanes follow the open slots. Each
/// invariant holds the contract against the handler's model.
abstract contract OptimisticInvariants is InvariantMarket {
    OptimisticHandler internal handler;

    function _tokenMode() internal pure virtual returns (bool);

    function setUp() public {
        vm.warp(1_000_000);
        vm.roll(100);
        _deployMarket(_tokenMode());
        handler = new OptimisticHandler(escrow, token);
        targetContract(address(handler));
    }

    /// Solvency: held = stakes + live bounties and bonds + credited balances + burned.
    function invariant_solvency() public view {
        address[] memory all = handler.actors();
        uint256 owed = handler.ghostEscrowed() + handler.ghostBurned();
        for (uint256 i = 0; i < all.length; ++i) {
            (uint256 staked,,) = escrow.stakeOf(all[i]);
            assertEq(staked, handler.ghostStaked(all[i]), "staked per model");
            assertEq(escrow.balanceOf(all[i]), handler.ghostOwed(all[i]), "credited per model");
            owed += handler.ghostStaked(all[i]) + handler.ghostOwed(all[i]);
        }
        assertEq(escrow.burned(), handler.ghostBurned(), "burned per model");
        assertEq(_held(address(escrow)), owed, "held = stakes + escrowed + credits + burned");
        assertEq(escrow.totalStake(), _sumStakes(all), "totalStake = sum of stakes");
    }

    /// P1: a consumer is never credited more than it paid in for its own jobs, in total and
    /// job by job.
    function invariant_P1_consumerNeverCreditedBeyondWhatItPaid() public view {
        for (uint256 c = 0; c < 2; ++c) {
            address who = handler.consumers(c);
            assertLe(
                escrow.balanceOf(who) + handler.withdrawn(who),
                handler.paidIn(who),
                "consumer credits <= bounties + bonds it paid"
            );
        }
        uint256 n = handler.parentCount();
        for (uint256 i = 0; i < n; ++i) {
            OptimisticHandler.Parent memory p = handler.parentOf(i);
            uint256 paid = handler.parentBounty(i) * (p.esc == 0 ? 1 : 4);
            assertLe(p.consumerCredit, paid, "a job's credits <= its bounty (+ bond)");
        }
    }

    /// An honest defendant is never slashed when the escalation's drawn majority is honest
    /// (or nobody challenged it), and is paid its bounty once settled.
    function invariant_honestDefendantPaidUnderAnHonestMajority() public view {
        uint256 n = handler.parentCount();
        for (uint256 i = 0; i < n; ++i) {
            OptimisticHandler.Parent memory p = handler.parentOf(i);
            if (!p.honest || p.status != OptimisticHandler.Status.Settled) continue;
            (,, uint256 honestCommits,) = handler.escalationOf(i);
            if (p.esc != 0 && honestCommits < 2) continue; // a lying majority may win
            assertEq(p.slashObserved, 0, "honest defendant never slashed");
            assertEq(p.paidObserved, handler.parentBounty(i), "honest defendant paid its bounty");
            (uint256 staked, uint256 locked,) = escrow.stakeOf(p.defendant);
            assertLe(locked, staked, "locked within stake");
        }
    }

    /// A lying defendant judged by an honest majority (a quorum revealed the honest hash) is
    /// always slashed, unpaid, and its slash minus the bond is burned.
    function invariant_liarJudgedByAnHonestMajorityIsSlashed() public view {
        uint256 n = handler.parentCount();
        for (uint256 i = 0; i < n; ++i) {
            OptimisticHandler.Parent memory p = handler.parentOf(i);
            if (p.honest || p.status != OptimisticHandler.Status.Settled || p.esc == 0) continue;
            (,,, uint256 honestReveals) = handler.escalationOf(i);
            if (honestReveals < 2) continue;
            uint256 penalty = handler.penaltyOf(i);
            uint256 bond = 3 * handler.parentBounty(i);
            assertEq(p.slashObserved, penalty, "liar slashed");
            assertEq(p.paidObserved, 0, "liar unpaid");
            assertEq(p.burnedObserved, penalty - bond, "slash minus bond burned");
            assertEq(p.consumerCredit, handler.parentBounty(i) + bond, "bounty + bond back");
        }
    }

    /// Every settlement did what the model says: paid (bounty, no slash) or overturned
    /// (penalty, no pay).
    function invariant_settlementsPerModel() public view {
        uint256 n = handler.parentCount();
        for (uint256 i = 0; i < n; ++i) {
            OptimisticHandler.Parent memory p = handler.parentOf(i);
            if (p.status != OptimisticHandler.Status.Settled) continue;
            if (p.settledBy == OptimisticHandler.SettledBy.Unfilled) continue;
            bool overturned = p.consumerCredit > (p.esc == 0 ? 0 : 3 * handler.parentBounty(i));
            assertEq(p.slashObserved, overturned ? handler.penaltyOf(i) : 0, "slash");
            assertEq(p.paidObserved, overturned ? 0 : handler.parentBounty(i), "pay");
        }
    }

    /// A challenged parent is never finalized except by its escalation's settlement: while
    /// the escalation is live the parent is live and marked challenged; once settled, it was
    /// settled by the escalation.
    function invariant_challengedParentSettlesOnlyWithItsEscalation() public view {
        uint256 n = handler.parentCount();
        for (uint256 i = 0; i < n; ++i) {
            OptimisticHandler.Parent memory p = handler.parentOf(i);
            (bytes24 live,, uint8 revealed,) = escrow.jobState(p.id);
            bool settled = p.status == OptimisticHandler.Status.Settled;
            assertEq(live == bytes24(0), settled, "live per model");
            if (p.esc == 0) continue;
            (uint256 escId, bool escLive,,) = handler.escalationOf(i);
            (bytes24 escHash,,,) = escrow.jobState(escId);
            assertEq(escHash != bytes24(0), escLive, "escalation live per model");
            if (escLive) {
                assertTrue(!settled, "the parent outlives no escalation");
                assertEq(uint256(revealed), 255, "marked challenged");
                (uint256 parentId, address defendant,) = escrow.escalationOf(escId);
                assertEq(parentId, p.id, "escalation's parent");
                assertEq(defendant, p.defendant, "escalation's defendant");
            } else {
                assertTrue(settled, "settled with its escalation");
                assertTrue(
                    p.settledBy == OptimisticHandler.SettledBy.Escalation,
                    "settled by the escalation only"
                );
            }
        }
    }

    /// Locked collateral equals the open slots' collateral; every lane holds the job the
    /// model says; reputation counters follow the settlements.
    function invariant_lockedLanesAndReputationPerModel() public view {
        uint256 lanes = handler.laneCount();
        for (uint256 i = 0; i < 5; ++i) {
            address p = handler.providers(i);
            (uint256 staked, uint256 locked, uint256 bondedAt) = escrow.stakeOf(p);
            assertLe(locked, staked, "locked within stake");
            assertEq(locked, handler.ghostLocked(p), "locked = open slots' collateral");
            assertEq(bondedAt, handler.ghostBondedAt(p), "bondedAt per model");
            for (uint256 l = 0; l < lanes; ++l) {
                assertEq(escrow.laneJobOf(p, l), handler.laneJob(p, l), "lane per model");
            }
            (uint256 completed, uint256 slashed, uint256 missed,) = escrow.reputationOf(p);
            assertEq(completed, handler.ghostCompleted(p), "completed (drawn only)");
            assertEq(slashed, handler.ghostSlashed(p), "slashed");
            assertEq(missed, handler.ghostMissed(p), "missed");
        }
    }

    function _sumStakes(address[] memory all) internal view returns (uint256 sum) {
        for (uint256 i = 0; i < all.length; ++i) {
            (uint256 staked,,) = escrow.stakeOf(all[i]);
            sum += staked;
        }
    }
}

/// forge-config: default.invariant.runs = 16
/// forge-config: default.invariant.depth = 128
contract OptimisticInvariantsEthTest is OptimisticInvariants {
    function _tokenMode() internal pure override returns (bool) {
        return false;
    }
}

/// forge-config: default.invariant.runs = 16
/// forge-config: default.invariant.depth = 128
contract OptimisticInvariantsTokenTest is OptimisticInvariants {
    function _tokenMode() internal pure override returns (bool) {
        return true;
    }
}

/// @notice The handler itself, scripted: a lie overturned by an honest escalation, an honest
/// result upheld, an unfilled escalation, an unchallenged payout and an unfilled job.
contract OptimisticHandlerTest is InvariantMarket {
    OptimisticHandler internal h;

    function setUp() public {
        vm.warp(1_000_000);
        vm.roll(100);
        _deployMarket(false);
        h = new OptimisticHandler(escrow, token);
    }

    /// @dev Three judges (plan bytes 0x10-0x13: honest, revealing; no quota) commit and
    /// reveal.
    function _honestJudges() internal {
        uint256 before = h.calls(h.judge.selector);
        h.judge(0, 0, 1 << 248 | 0x13121110, 0);
        assertEq(h.calls(h.judge.selector), before + 3, "three judges committed");
        h.revealJudge(0, 0, 2); // 1 + 2 % 3: all three
    }

    function test_handler_scriptedLifeSettlesEveryWay() public {
        // A lie (honesty 0), challenged and overturned by three honest judges.
        h.postOptimistic(0, 1 ether, 0, 0);
        h.claim(0, 0, 0, 0);
        h.challenge(0);
        _honestJudges();
        assertEq(h.outcomes(3), 1, "overturned");
        OptimisticHandler.Parent memory p = h.parentOf(0);
        assertEq(p.slashObserved, h.penaltyOf(0), "liar slashed");
        assertEq(p.burnedObserved, h.penaltyOf(0) - 3 ether, "slash minus bond burned");
        assertEq(escrow.balanceOf(h.consumers(0)), 4 ether, "bounty + bond back");
        // An honest result (honesty 1), challenged and upheld.
        h.postOptimistic(1, 1 ether, 0, 0);
        h.claim(0, 1, 1, 0);
        h.challenge(0);
        _honestJudges();
        assertEq(h.outcomes(2), 1, "upheld");
        assertEq(h.parentOf(1).paidObserved, 1 ether, "honest defendant paid");
        // Challenged, nobody judges: the escalation ends unfilled, the defendant is paid.
        h.postOptimistic(0, 1 ether, 0, 0);
        h.claim(0, 2, 1, 0);
        h.challenge(0);
        h.finalizeParent(0); // refused: under challenge
        assertEq(h.underChallengeRefusals(), 1, "a challenged parent is not finalizable");
        for (uint256 i = 0; i < 8; ++i) {
            h.warp(15 minutes);
        }
        h.finalizeEscalation(0);
        assertEq(h.unfilledEscalations(), 1, "unfilled escalation");
        assertEq(h.outcomes(2), 2, "upheld again");
        // Unchallenged: paid after the window; and a job nobody claims: refunded.
        h.postOptimistic(0, 1 ether, 0, 0);
        h.claim(0, 3, 1, 0);
        h.postOptimistic(1, 1 ether, 0, 0);
        for (uint256 i = 0; i < 12; ++i) {
            h.warp(15 minutes);
        }
        h.finalizeParent(0);
        h.finalizeParent(0);
        assertEq(h.outcomes(1), 1, "unchallenged paid");
        assertEq(h.outcomes(0), 1, "unfilled refunded");
        h.withdraw(1, 0, true);
        assertEq(escrow.balanceOf(h.consumers(0)), 0, "withdrawn");
    }

    /// @dev Random walks over every action (fixed seeds): together they reach every way a
    /// parent settles, lying majorities, unrevealed and skipped judges, refused finalizes.
    function test_handler_randomWalksReachEveryOutcome() public {
        uint256[14] memory seen;
        for (uint256 w = 0; w < 6; ++w) {
            OptimisticHandler r =
                new OptimisticHandler(_newMarket(TestToken(address(0))), TestToken(address(0)));
            for (uint256 step = 0; step < 128; ++step) {
                _act(r, uint256(keccak256(abi.encode(w, step))));
            }
            seen[0] += r.outcomes(0);
            seen[1] += r.outcomes(1);
            seen[2] += r.outcomes(2);
            seen[3] += r.outcomes(3);
            seen[4] += r.unfilledEscalations();
            seen[5] += r.lyingMajorities();
            seen[6] += r.underChallengeRefusals();
            seen[7] += r.skippedJudges();
            seen[8] += r.unrevealedJudges();
            seen[9] += r.parentCount();
            seen[10] += r.calls(r.challenge.selector);
            seen[11] += r.calls(r.judge.selector);
            seen[12] += r.calls(r.claim.selector);
            seen[13] += r.calls(r.revealJudge.selector);
        }
        emit log_named_uint("unfilled", seen[0]);
        emit log_named_uint("paid unchallenged", seen[1]);
        emit log_named_uint("upheld", seen[2]);
        emit log_named_uint("overturned", seen[3]);
        emit log_named_uint("unfilled escalations", seen[4]);
        emit log_named_uint("lying majorities", seen[5]);
        emit log_named_uint("under-challenge refusals", seen[6]);
        emit log_named_uint("skipped judges", seen[7]);
        emit log_named_uint("unrevealed judges", seen[8]);
        emit log_named_uint("parents", seen[9]);
        emit log_named_uint("claims", seen[12]);
        emit log_named_uint("challenges", seen[10]);
        emit log_named_uint("judge commits", seen[11]);
        emit log_named_uint("judge reveals", seen[13]);
        string[10] memory names = [
            "an unfilled job",
            "an unchallenged payout",
            "an upheld challenge",
            "an overturned lie",
            "an unfilled escalation",
            "a lying majority",
            "a refused finalize under challenge",
            "a judge that never commits",
            "a judge that never reveals",
            "a post"
        ];
        for (uint256 i = 0; i < 10; ++i) {
            assertGt(seen[i], 0, names[i]);
        }
    }

    function _act(OptimisticHandler r, uint256 seed) internal {
        uint256 a = seed % 11;
        uint256 x = seed >> 8;
        uint256 y = uint256(keccak256(abi.encode(seed, 1)));
        uint256 z = uint256(keccak256(abi.encode(seed, 2)));
        if (a == 0) r.postOptimistic(x, y, z, y >> 64);
        else if (a == 1) r.claim(x, y, z, y >> 64);
        else if (a == 2) r.challenge(x);
        else if (a == 3) r.judge(x, y, z, y >> 64);
        else if (a == 4) r.revealJudge(x, y, z);
        else if (a == 5) r.finalizeParent(x);
        else if (a == 6) r.finalizeEscalation(x);
        else if (a == 7) r.withdraw(x, y, x % 2 == 0);
        else if (a == 8) r.topUp(x, y);
        else if (a == 9) r.warp(x);
        else r.nextBlock(x);
    }
}
