// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Test} from "../utils/Test.sol";
import {JobEscrow} from "../../src/JobEscrow.sol";
import {IJobEscrow} from "../../src/interfaces/IJobEscrow.sol";
import {TestToken} from "../../src/test/TestToken.sol";

/// @notice The market the invariant suites and their handler tests run against: 50 %
/// slash, 1 ETH minimum stake, up to 8 replicas, 10 min / 5 min minimum windows, a 1 day
/// horizon, a 1 hour challenge window and 3-replica escalations; native ETH or a TestToken.
abstract contract InvariantMarket is Test {
    JobEscrow internal escrow;
    TestToken internal token;

    /// @dev Deploys the market (and its token when `tokenMode`) into `escrow` and `token`.
    function _deployMarket(bool tokenMode) internal {
        if (tokenMode) token = new TestToken("Test USD", "TUSD");
        escrow = _newMarket(token);
    }

    /// @dev A fresh market of these rules in `asset` (address 0: native ETH).
    function _newMarket(TestToken asset) internal returns (JobEscrow) {
        return new JobEscrow(
            IJobEscrow.Params({
                asset: address(asset),
                slashBps: 5000,
                minStake: 1 ether,
                maxReplicas: 8,
                minCommitWindow: 10 minutes,
                minRevealWindow: 5 minutes,
                maxHorizon: 1 days,
                challengeWindow: 1 hours,
                escalationReplicas: 3
            })
        );
    }

    /// @dev What `who` holds of the market's asset.
    function _held(address who) internal view returns (uint256) {
        return address(token) != address(0) ? token.balanceOf(who) : who.balance;
    }
}
