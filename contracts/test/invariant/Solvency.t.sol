// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {InvariantMarket} from "./InvariantMarket.sol";
import {EscrowHandler} from "./EscrowHandler.sol";
import {TestToken} from "../../src/test/TestToken.sol";

/// @notice Solvency of a market under random operation sequences: the escrow holds exactly
/// stakes + escrowed bounties + credited balances + burned (collateral is part of stake);
/// the total stake is the sum of stakes; every stake figure, credit, lane and reputation
/// counter equals what the rules say; and no consumer is ever credited more than the
/// refunds of its own jobs (P1: no slash ever reaches a consumer).
abstract contract SolvencyInvariants is InvariantMarket {
    EscrowHandler internal handler;

    function _tokenMode() internal pure virtual returns (bool);

    function setUp() public {
        vm.warp(1_000_000);
        _deployMarket(_tokenMode());
        handler = new EscrowHandler(escrow, token);
        targetContract(address(handler));
    }

    function invariant_escrowHoldsExactlyWhatItOwes() public view {
        address[] memory all = handler.actors();
        uint256 owed = handler.ghostLiveBounties() + escrow.burned();
        for (uint256 i = 0; i < all.length; ++i) {
            (uint256 staked,,) = escrow.stakeOf(all[i]);
            owed += escrow.balanceOf(all[i]) + staked;
        }
        assertEq(_held(address(escrow)), owed, "held = stakes + bounties + credits + burned");
        assertEq(escrow.burned(), handler.ghostBurned(), "burned per model");
    }

    function invariant_totalStakeIsSumOfStakes() public view {
        address[] memory all = handler.actors();
        uint256 sum;
        for (uint256 i = 0; i < all.length; ++i) {
            (uint256 staked,,) = escrow.stakeOf(all[i]);
            sum += staked;
        }
        assertEq(escrow.totalStake(), sum, "totalStake = sum of stakes");
        assertEq(sum, handler.ghostTotalStake(), "total per model");
    }

    function invariant_stakesMatchTheModel() public view {
        address[] memory all = handler.actors();
        for (uint256 i = 0; i < all.length; ++i) {
            (uint256 staked, uint256 locked, uint256 bondedAt) = escrow.stakeOf(all[i]);
            assertLe(locked, staked, "locked within stake");
            assertEq(staked, handler.ghostStaked(all[i]), "staked per model");
            assertEq(locked, handler.ghostLocked(all[i]), "locked = open collateral");
            assertEq(bondedAt, handler.ghostBondedAt(all[i]), "bondedAt per model");
        }
    }

    function invariant_creditsMatchWhatIsOwed() public view {
        address[] memory all = handler.actors();
        for (uint256 i = 0; i < all.length; ++i) {
            assertEq(escrow.balanceOf(all[i]), handler.ghostOwed(all[i]), "credited = owed");
        }
    }

    /// P1: a consumer is only ever credited its own bounties back.
    function invariant_noConsumerCreditedBeyondItsRefunds() public view {
        for (uint256 i = 0; i < 2; ++i) {
            address c = handler.consumers(i);
            assertLe(
                escrow.balanceOf(c) + handler.withdrawn(c),
                handler.refunds(c),
                "consumer credits <= its refunds"
            );
        }
    }

    function invariant_liveJobsMatchTheModel() public view {
        assertTrue(handler.liveJobsMatch(), "live jobs per model");
    }

    function invariant_lanesMatchTheModel() public view {
        uint256[] memory lanes = handler.lanes();
        for (uint256 i = 0; i < 4; ++i) {
            address p = handler.providers(i);
            for (uint256 l = 0; l < lanes.length; ++l) {
                assertEq(escrow.laneJobOf(p, lanes[l]), handler.laneJob(p, lanes[l]), "lane");
            }
        }
    }

    function invariant_reputationMatchesTheModel() public view {
        for (uint256 i = 0; i < 4; ++i) {
            address p = handler.providers(i);
            (uint256 completed, uint256 slashed, uint256 missed,) = escrow.reputationOf(p);
            assertEq(completed, handler.ghostCompleted(p), "completed (drawn only)");
            assertEq(slashed, handler.ghostSlashed(p), "slashed");
            assertEq(missed, handler.ghostMissed(p), "missed");
        }
    }
}

contract SolvencyEthTest is SolvencyInvariants {
    function _tokenMode() internal pure override returns (bool) {
        return false;
    }
}

contract SolvencyTokenTest is SolvencyInvariants {
    function _tokenMode() internal pure override returns (bool) {
        return true;
    }
}

/// @notice The handler itself: a scripted run reaches a settlement with a slashed dissenter
/// (burned), a duplicate-slot Missed and an unfilled refund.
contract EscrowHandlerTest is InvariantMarket {
    function test_handler_scriptedRunSettles() public {
        vm.warp(1_000_000);
        _deployMarket(false);
        EscrowHandler h = new EscrowHandler(escrow, token);
        h.stake(0, 5 ether);
        h.stake(1, 5 ether);
        h.stake(2, 5 ether);
        // The next block, in the same second: the stakes are bonded before the post's block,
        // so they are in its draw (and its denominator).
        h.nextBlock(0);
        // k = 3 (1 + 2 % 4) with three equal stakes of 15: all drawn; bounty 3 ether.
        h.postJob(0, 2, 3 ether - 1, 1 ether, 0, 7);
        h.commit(0, 0, 0, 0, 1);
        h.commit(0, 1, 0, 0, 1);
        h.commit(0, 2, 4, 0, 1); // a wrong answer
        assertEq(h.sameSecondCommits(), 3, "stake from the previous block, same second, drawn");
        h.reveal(0, 0, 0);
        h.reveal(0, 1, 1); // not last: a junk hint is ignored
        h.reveal(0, 2, 0); // the dissenter reveals last and settles the job
        assertEq(h.outcomes(0), 1, "completed");
        assertEq(escrow.burned(), 0.5 ether, "the dissenter's penalty is burned");
        assertEq(escrow.burned(), h.ghostBurned(), "model");
        // A job nobody fills: refunded.
        h.postJob(1, 2, 2 ether - 1, 1 ether, 0, 8);
        for (uint256 i = 0; i < 3; ++i) {
            h.warp(239); // 1 + 239 % 240: four minutes each
        }
        h.finalize(0);
        assertEq(h.outcomes(2), 1, "unfilled");
        assertEq(h.refunds(h.consumers(1)), 2 ether, "refund tracked");
        // A provider taking two slots of one job.
        h.postJob(0, 2, 3 ether - 1, 0, 0, 9);
        h.commit(0, 0, 0, 0, 0);
        h.commit(0, 0, 0, 1, 0); // dup % 8 == 0: a second slot for the same provider
        assertEq(h.duplicateSlots(), 1, "duplicate slot taken");
        // One replica, its slot taken with the result in the clear: settled at once.
        h.postJob(1, 0, 2 ether, 1 ether, 0, 10);
        (uint256 minCommit,,) = escrow.windows();
        for (uint256 t = 0; t < 16 && h.calls(h.commitResult.selector) == 0; ++t) {
            for (uint256 seed = 0; seed < 4; ++seed) {
                h.commitResult(seed, t, 0, 2);
            }
            h.warp(minCommit / 16 - 2); // the handler warps 1 + dt % 240 seconds
        }
        assertEq(h.calls(h.commitResult.selector), 1, "a solo job taken by commitResult");
        assertEq(h.outcomes(0), 2, "and completed in the same call");
    }
}
