// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Test} from "../utils/Test.sol";
import {EscrowHandler} from "./EscrowHandler.sol";
import {JobEscrow} from "../../src/JobEscrow.sol";
import {TestToken} from "../../src/test/TestToken.sol";

/// @notice Solvency of a market under random operation sequences: the escrow holds exactly
/// stakes + unbonding + escrowed bounties + credited balances (collateral is part of stake),
/// and every stake figure and credited balance equals what the rules say.
abstract contract SolvencyInvariants is Test {
    EscrowHandler internal handler;
    JobEscrow internal escrow;
    TestToken internal token;

    function _tokenMode() internal pure virtual returns (bool);

    function setUp() public {
        vm.warp(1_000_000);
        if (_tokenMode()) token = new TestToken("Test USD", "TUSD");
        escrow = new JobEscrow(address(token), 5000, 1 days, 1 ether, 8);
        handler = new EscrowHandler(escrow, token);
        targetContract(address(handler));
    }

    function _held(address who) internal view returns (uint256) {
        return _tokenMode() ? token.balanceOf(who) : who.balance;
    }

    function invariant_escrowHoldsStakesBountiesAndCredits() public view {
        address[] memory all = handler.actors();
        uint256 owed = handler.ghostLiveBounties();
        for (uint256 i = 0; i < all.length; ++i) {
            (uint256 staked,, uint256 unbonding,) = escrow.stakeOf(all[i]);
            owed += escrow.balanceOf(all[i]) + staked + unbonding;
        }
        assertEq(_held(address(escrow)), owed, "escrow solvency");
    }

    function invariant_stakesMatchTheModel() public view {
        address[] memory all = handler.actors();
        for (uint256 i = 0; i < all.length; ++i) {
            (uint256 staked, uint256 locked, uint256 unbonding,) = escrow.stakeOf(all[i]);
            assertLe(locked, staked, "locked within stake");
            assertEq(staked, handler.ghostStaked(all[i]), "staked per model");
            assertEq(locked, handler.ghostLocked(all[i]), "locked = open collateral");
            assertEq(unbonding, handler.ghostUnbonding(all[i]), "unbonding per model");
        }
    }

    /// Live jobs' counters match the model, no fully revealed job is left live, settled jobs
    /// are deleted.
    function invariant_liveJobsMatchTheModel() public view {
        assertTrue(handler.liveJobsMatch(), "live jobs per model");
    }

    function invariant_creditsMatchWhatIsOwed() public view {
        address[] memory all = handler.actors();
        for (uint256 i = 0; i < all.length; ++i) {
            assertEq(escrow.balanceOf(all[i]), handler.ghostOwed(all[i]), "credited = owed");
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

/// @notice The handler itself: a scripted run reaches a multi-winner settlement.
contract EscrowHandlerTest is Test {
    function test_handler_scriptedJobSettles() public {
        vm.warp(1_000_000);
        JobEscrow escrow = new JobEscrow(address(0), 5000, 1 days, 1 ether, 8);
        EscrowHandler h = new EscrowHandler(escrow, TestToken(address(0)));
        h.stake(0, 5 ether);
        h.stake(1, 5 ether);
        h.stake(2, 5 ether);
        h.postJob(0, 2, 3 ether, 1 ether, 0); // k = 3, quorum 2
        h.claim(0, 0);
        h.claim(0, 1);
        h.claim(0, 2);
        h.commit(0, 0, 0);
        h.commit(0, 1, 0);
        h.commit(0, 2, 4); // wrong answer
        h.reveal(0, 0, 0);
        h.reveal(0, 1, 1); // not last: a junk hint is ignored
        h.reveal(0, 2, 0); // the dissenter reveals last and settles the job
        assertEq(h.settledByReveal(), 1, "settled by the last reveal");
        assertEq(h.settledByDissentingReveal(), 1, "by the dissenter");
        h.finalize(0); // nothing live: a no-op
        assertEq(h.finalizedByWinners(2), 1, "two winners");
    }
}
