// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {BatchFixture} from "./utils/BatchFixture.sol";
import {FeeOnTransferToken, HookToken, ISendHook} from "./utils/Tokens.sol";
import {JobEscrow} from "../src/JobEscrow.sol";
import {IJobEscrow} from "../src/interfaces/IJobEscrow.sol";

/// @notice Attacks on postJobs, each asserting who gained and who lost: a bounty sum above
/// 96 bits paid short, a consumer posting in another consumer's name, and batched jobs
/// settled with a dishonest replica, paying each honest provider exactly what single posts
/// pay. (Token markets: fee-on-transfer and re-entering tokens, below.)
abstract contract JobEscrowPostJobsAttacksTest is BatchFixture {
    uint256 internal constant MAX96 = type(uint96).max;

    /// Two bounties of 2^96 - 1: their sum needs 97 bits. A consumer paying the sum cut to
    /// 96 bits, or one wei short, posts nothing; paying it in full escrows all of it, and the
    /// provider that does both jobs is credited and withdraws all of it.
    function test_attack_bountySumAbove96BitsIsPaidInFull() public {
        _stakeAll(10 ether);
        IJobEscrow.JobSpec[] memory specs = _batch(2);
        (specs[0].bounty, specs[1].bounty) = (uint96(MAX96), uint96(MAX96));
        uint256 sum = 2 * MAX96;
        _fund(consumer, sum);
        uint256 consumerBefore = _assetBalance(consumer);
        uint256 held = _assetBalance(address(escrow));
        if (_tokenMode()) {
            vm.prank(consumer);
            token.approve(address(escrow), sum - 1); // the allowance falls short by one
            vm.expectRevert();
            vm.prank(consumer);
            escrow.postJobs(specs);
            vm.prank(consumer);
            token.approve(address(escrow), type(uint256).max);
        } else {
            uint256[2] memory short = [sum % 2 ** 96, sum - 1];
            for (uint256 j = 0; j < 2; ++j) {
                vm.expectRevert(
                    abi.encodeWithSelector(IJobEscrow.EscrowWrongValue.selector, short[j], sum)
                );
                vm.prank(consumer);
                escrow.postJobs{value: short[j]}(specs);
            }
        }
        assertEq(_assetBalance(consumer), consumerBefore, "short payments cost nothing");
        assertEq(escrow.nextJobId(), 1, "and post nothing");
        uint256 first = _postBatch(specs);
        assertEq(_assetBalance(address(escrow)), held + sum, "all 97 bits escrowed");
        assertEq(_assetBalance(consumer), consumerBefore - sum, "the consumer paid the sum");
        _warpAllEligible(first);
        _runOne(first, alice, 0);
        _runOne(first + 1, alice, 1);
        assertEq(escrow.balanceOf(alice), sum, "credited both bounties (beyond 96 bits)");
        uint256 wallet = _assetBalance(alice);
        vm.prank(alice);
        escrow.withdraw();
        assertEq(_assetBalance(alice), wallet + sum, "and withdraws all of it");
        assertEq(_assetBalance(address(escrow)), held, "the escrow keeps only the stakes");
    }

    /// A consumer slips a spec naming another consumer (who approved the escrow and holds
    /// funds) into its batch, at any index: the whole batch reverts, the victim is charged
    /// nothing and gets no job in its name; the attacker pays nothing.
    function test_attack_postingInAnotherConsumersName() public {
        address victim = makeAddr("victim");
        _fund(victim, 100 ether);
        address attacker = makeAddr("attacker");
        _fund(attacker, 100 ether);
        for (uint256 at = 0; at < 3; ++at) {
            IJobEscrow.JobSpec[] memory specs = _batch(3);
            for (uint256 i = 0; i < 3; ++i) {
                specs[i].consumer = i == at ? victim : attacker;
            }
            vm.expectRevert(
                abi.encodeWithSelector(
                    IJobEscrow.EscrowBatchSpecInvalid.selector,
                    at,
                    abi.encodeWithSelector(
                        IJobEscrow.EscrowInvalidSpec.selector, bytes32("consumer")
                    )
                )
            );
            vm.prank(attacker);
            escrow.postJobs{value: _value(_sum(specs))}(specs);
        }
        assertEq(_assetBalance(victim), 100 ether, "the victim is charged nothing");
        assertEq(_assetBalance(attacker), 100 ether, "the attacker pays nothing");
        assertEq(escrow.nextJobId(), 1, "no job in anyone's name");
    }

    /// The same three 3-replica specs posted one by one and as one batch, each job run the
    /// same way (carol reveals a wrong hash, alice and bob the right one; each commits once
    /// every provider is eligible): every provider's
    /// credit and stake move by exactly the same amounts on both paths.
    function test_attack_batchedJobsSettleExactlyAsSinglePosts() public {
        _stakeAll(10 ether);
        IJobEscrow.JobSpec[] memory specs = _batch(3);
        for (uint256 i = 0; i < 3; ++i) {
            (specs[i].replicas, specs[i].quorum) = (3, 2);
            specs[i].bounty = uint96(3 ether + i); // the remainder goes to the lowest address
        }
        address[] memory all = _list(alice, bob, carol);
        uint256[6] memory before = _books(all);
        for (uint256 i = 0; i < 3; ++i) {
            uint256 jobId = _post(specs[i]);
            _warpAllEligible(jobId); // carol's slashed stake shrinks her base odds
            _runWithLiar(jobId, i);
        }
        uint256[6] memory single = _delta(before, _books(all));
        before = _books(all);
        uint256 first = _postBatch(specs);
        _warpAllEligible(first);
        for (uint256 i = 0; i < 3; ++i) {
            _runWithLiar(first + i, 3 + i);
        }
        uint256[6] memory batched = _delta(before, _books(all));
        for (uint256 j = 0; j < 6; ++j) {
            assertEq(batched[j], single[j], "the same credit and stake moves");
        }
        uint256 b = 3 ether;
        uint256 shares = b / 2 + (b + 1) / 2 + (b + 2) / 2;
        assertEq(single[0], shares + 1, "alice: half of each bounty and the odd wei");
        assertEq(single[1], shares, "bob: half of each bounty");
        assertEq(single[5], 3 * _penalty(1 ether), "carol: slashed on each job");
        assertEq(single[3] + single[4], 0, "the honest stakes are untouched");
    }

    /// @dev Credits of alice, bob, carol, then their stakes.
    function _books(address[] memory all) internal view returns (uint256[6] memory b) {
        for (uint256 p = 0; p < 3; ++p) {
            (b[p], b[3 + p]) = (escrow.balanceOf(all[p]), _stakedOf(all[p]));
        }
    }

    /// @dev Credit gains and stake losses from `a` to `b`.
    function _delta(uint256[6] memory a, uint256[6] memory b)
        internal
        pure
        returns (uint256[6] memory d)
    {
        for (uint256 p = 0; p < 3; ++p) {
            (d[p], d[3 + p]) = (b[p] - a[p], a[3 + p] - b[3 + p]);
        }
    }

    function _runWithLiar(uint256 jobId, uint256 lane) internal {
        _commit(jobId, carol, lane, _bad(jobId, 1));
        _commit(jobId, alice, lane, _good(jobId));
        _commit(jobId, bob, lane, _good(jobId));
        _reveal(jobId, carol, lane, _bad(jobId, 1));
        _reveal(jobId, alice, lane, _good(jobId));
        _reveal(jobId, bob, lane, _good(jobId)); // last: settles
        assertTrue(!_isLive(jobId), "settled");
    }
}

contract JobEscrowPostJobsAttacksEthTest is JobEscrowPostJobsAttacksTest {
    function _tokenMode() internal pure override returns (bool) {
        return false;
    }
}

contract JobEscrowPostJobsAttacksTokenTest is JobEscrowPostJobsAttacksTest {
    function _tokenMode() internal pure override returns (bool) {
        return true;
    }
}

/// @notice A consumer contract that re-enters the escrow from its token's sender hook with
/// `reentry` (calldata for the escrow), once, and bubbles up any revert.
contract ReenteringConsumer is ISendHook {
    JobEscrow internal immutable _escrow;
    bytes internal _reentry;
    bool internal _entered;

    constructor(JobEscrow escrow, HookToken token) {
        _escrow = escrow;
        token.approve(address(escrow), type(uint256).max);
    }

    function post(IJobEscrow.JobSpec[] calldata specs, bytes calldata reentry) external {
        (_reentry, _entered) = (reentry, false);
        _escrow.postJobs(specs);
    }

    function beforeSend(address, uint256) external {
        if (_entered || _reentry.length == 0) return;
        _entered = true;
        (bool ok, bytes memory ret) = address(_escrow).call(_reentry);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 0x20), mload(ret))
            }
        }
    }
}

/// @notice Token markets whose token is not exact: a fee-on-transfer token, and a token with
/// a sender hook through which the consumer re-enters the escrow.
contract JobEscrowPostJobsTokenAttacksTest is BatchFixture {
    function _tokenMode() internal pure override returns (bool) {
        return false; // the fixture's TestToken is not used: each test deploys its market
    }

    function _market(address asset) internal returns (JobEscrow market) {
        IJobEscrow.Params memory p = _params();
        p.asset = asset;
        market = new JobEscrow(p);
    }

    /// A 1 % fee token: the escrow would receive less than the sum it books, so the batch
    /// reverts; the consumer keeps its tokens and the escrow holds nothing.
    function test_attack_feeOnTransferBatchRefused() public {
        FeeOnTransferToken fee = new FeeOnTransferToken(100);
        JobEscrow market = _market(address(fee));
        fee.mint(consumer, 100 ether);
        vm.prank(consumer);
        fee.approve(address(market), type(uint256).max);
        IJobEscrow.JobSpec[] memory specs = _batch(4);
        uint256 sum = _sum(specs);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowTokenNotExact.selector, sum, fee.delivered(sum))
        );
        vm.prank(consumer);
        market.postJobs(specs);
        assertEq(fee.balanceOf(consumer), 100 ether, "the consumer keeps its tokens");
        assertEq(fee.balanceOf(address(market)), 0, "the escrow holds nothing");
        assertEq(market.nextJobId(), 1, "nothing posted");
    }

    /// The consumer's hook re-enters with a second batch (or a single post) of the same sum
    /// before its outer transfer moves: were the outer check fooled, one payment would fund
    /// two batches. The outer pull sees both transfers (2x the sum) and reverts, undoing
    /// the inner post: nobody is owed anything, the consumer keeps every token.
    function test_attack_reenteringTokenHookFundsOneBatchOnly() public {
        HookToken hook = new HookToken();
        JobEscrow market = _market(address(hook));
        ReenteringConsumer attacker = new ReenteringConsumer(market, hook);
        hook.mint(address(attacker), 100 ether);
        IJobEscrow.JobSpec[] memory specs = _batch(2);
        for (uint256 i = 0; i < 2; ++i) {
            specs[i].consumer = address(attacker);
        }
        uint256 sum = _sum(specs);
        IJobEscrow.JobSpec memory one = _batch(1)[0]; // a copy, not specs[0]
        (one.consumer, one.bounty) = (address(attacker), uint96(sum));
        bytes[2] memory reentries = [
            abi.encodeCall(IJobEscrow.postJobs, (specs)), abi.encodeCall(IJobEscrow.postJob, (one))
        ];
        for (uint256 j = 0; j < 2; ++j) {
            vm.expectRevert(
                abi.encodeWithSelector(IJobEscrow.EscrowTokenNotExact.selector, sum, 2 * sum)
            );
            attacker.post(specs, reentries[j]);
        }
        assertEq(hook.balanceOf(address(attacker)), 100 ether, "the attacker keeps its tokens");
        assertEq(hook.balanceOf(address(market)), 0, "the escrow holds nothing");
        assertEq(market.nextJobId(), 1, "neither post stands");
        // Without re-entry the same batch posts and is paid exactly.
        attacker.post(specs, "");
        assertEq(hook.balanceOf(address(market)), sum, "one batch, one sum");
        assertEq(market.nextJobId(), 3, "two jobs");
    }
}
