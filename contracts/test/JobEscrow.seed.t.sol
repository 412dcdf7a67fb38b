// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {EscrowFixture} from "./utils/EscrowFixture.sol";
import {IJobEscrow} from "../src/interfaces/IJobEscrow.sol";
import {DrawLib} from "../src/libraries/DrawLib.sol";

/// @notice Exposes DrawLib's total encoding (internal functions) to the tests.
contract DrawTotalHarness {
    function encode(uint256 total) external pure returns (uint48) {
        return DrawLib.encodeTotal(total);
    }

    function decode(uint48 encoded) external pure returns (uint256) {
        return DrawLib.decodeTotal(encoded);
    }
}

/// @notice The draw's inputs fixed at the post: the seed is the post block's hash, readable
/// from the next block on (EscrowDrawNotFixed before) while BLOCKHASH or the EIP-2935
/// history contract serves it (EscrowDrawExpired after); the denominator is the total stake
/// at the post as a 48-bit float (40-bit mantissa, rounded up).
abstract contract JobEscrowSeedTest is EscrowFixture {
    /// @dev EIP-2935's history contract: its address, system caller and runtime code (the
    /// system call at the start of block n stores the hash of block n - 1 in slot
    /// (n - 1) % 8191; a read of block b answers for n - 8191 <= b < n).
    address internal constant HISTORY = 0x0000F90827F1C53a10cb7A02335B175320002935;
    address internal constant SYSTEM = 0xffffFFFfFFffffffffffffffFfFFFfffFFFfFFfE;
    bytes internal constant HISTORY_CODE =
        hex"3373fffffffffffffffffffffffffffffffffffffffe14604657602036036042575f35600143038111604257611fff81430311604257611fff9006545f5260205ff35b5f5ffd5b5f35611fff60014303065500";

    function setUp() public override {
        super.setUp();
        _stakeAll(10 ether);
    }

    function test_historyContract_isAbsentUnderForge() public view {
        assertEq(escrow.BLOCK_HASH_HISTORY(), HISTORY, "EIP-2935 address");
        assertEq(HISTORY.code.length, 0, "forge's prague EVM deploys no history contract");
    }

    /// In the post's own block the hash that fixes the draw does not exist yet: commits
    /// revert with EscrowDrawNotFixed (checked before the slots) and drawOf says "a second
    /// later"; from the next block on the draw is known.
    function test_commit_revertsInThePostBlock() public {
        IJobEscrow.JobSpec memory s = _spec(3);
        uint256 jobId = _postInBlock(s);
        IJobEscrow.JobTerms memory t = _terms(jobId);
        bytes32 c = _commitment(jobId, alice, 0, _good(jobId));
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.EscrowDrawNotFixed.selector, jobId));
        escrow.commit(jobId, t, 0, c);
        (bool eligible, bool drawn, uint256 from) = escrow.drawOf(jobId, t, alice);
        assertTrue(!eligible && !drawn, "not known in the post's block");
        assertEq(from, block.timestamp + 1, "ask again a second later");
        _sealPostBlock(jobId);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReplicaCommitted(jobId, alice, 0, c, true);
        vm.prank(alice);
        escrow.commit(jobId, t, 0, c);
    }

    /// BLOCKHASH serves the last 256 blocks: at 256 blocks after the post the draw still
    /// holds, at 257 (no history contract) the job can no longer take slots and ends
    /// unfilled, its committers released.
    function test_commit_revertsOnceThePostBlockHashIsOutOfReach() public {
        IJobEscrow.JobSpec memory s = _spec(3);
        uint256 jobId = _post(s);
        uint256 postBlock = _drawOf[jobId] >> 32;
        IJobEscrow.JobTerms memory t = _terms(jobId);
        vm.roll(postBlock + 256);
        _commit(jobId, alice, 0, _good(jobId));
        vm.roll(postBlock + 257);
        bytes32 c = _commitment(jobId, bob, 0, _good(jobId));
        vm.prank(bob);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowDrawExpired.selector, jobId, postBlock)
        );
        escrow.commit(jobId, t, 0, c);
        (bool eligible, bool drawn, uint256 from) = escrow.drawOf(jobId, t, bob);
        assertTrue(!eligible && !drawn && from == 0, "drawOf: out of reach");
        vm.warp(uint256(s.commitDeadline) + 1);
        _finalize(jobId, bytes32(0));
        assertEq(_lockedOf(alice), 0, "the committer released");
        assertEq(escrow.balanceOf(consumer), s.bounty, "the bounty refunded");
    }

    /// With the EIP-2935 history contract (etched here, filled by its system call as a
    /// prague client does at the start of the block after the post), the draw is read from
    /// it past BLOCKHASH's 256 blocks and holds for 8191 blocks.
    function test_commit_readsTheHistoryContractFor8191Blocks() public {
        vm.etch(HISTORY, HISTORY_CODE);
        IJobEscrow.JobSpec memory s = _spec(3);
        uint256 jobId = _post(s); // now in the block after the post
        uint256 postBlock = _drawOf[jobId] >> 32;
        vm.prank(SYSTEM);
        (bool ok,) = HISTORY.call(abi.encode(_seedOf(jobId)));
        assertTrue(ok, "system call stores the parent hash");
        IJobEscrow.JobTerms memory t = _terms(jobId);
        vm.roll(postBlock + 257);
        (bool eligible, bool drawn,) = escrow.drawOf(jobId, t, alice);
        assertTrue(eligible && drawn, "from the history contract");
        _commit(jobId, alice, 0, _good(jobId));
        vm.roll(postBlock + 8191);
        _commit(jobId, bob, 0, _good(jobId));
        vm.roll(postBlock + 8192);
        bytes32 c = _commitment(jobId, carol, 0, _good(jobId));
        vm.prank(carol);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowDrawExpired.selector, jobId, postBlock)
        );
        escrow.commit(jobId, t, 0, c);
    }

    /// A history contract that answers a wrong hash is not what the chain runs; but one that
    /// answers with the wrong length or reverts leaves the draw expired, never fixed by junk.
    function test_commit_treatsABrokenHistoryAnswerAsExpired() public {
        vm.etch(HISTORY, hex"60016000f3"); // returns one byte
        uint256 jobId = _post(_spec(3));
        uint256 postBlock = _drawOf[jobId] >> 32;
        vm.roll(postBlock + 300);
        IJobEscrow.JobTerms memory t = _terms(jobId);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowDrawExpired.selector, jobId, postBlock)
        );
        escrow.commit(jobId, t, 0, bytes32(uint256(1)));
    }

    /// The seed is the post block's hash: the same providers are drawn differently by
    /// different hashes, exactly as the restated ticket says.
    function test_drawOf_followsThePostBlockHash() public {
        IJobEscrow.JobSpec memory s = _spec(1);
        uint256 jobId = _post(s);
        IJobEscrow.JobTerms memory t = _terms(jobId);
        uint256 changes;
        bool last;
        for (uint256 i = 0; i < 32; ++i) {
            _setPostHash(jobId, keccak256(abi.encode("hash", i)));
            (, bool drawn,) = escrow.drawOf(jobId, t, alice);
            assertEq(drawn, _passes(jobId, _ticket(_seedOf(jobId), jobId, alice), alice, 0), "rule");
            if (i > 0 && drawn != last) ++changes;
            last = drawn;
        }
        assertGt(changes, 0, "the hash decides");
    }

    // ---------------------------------------------------------------- total encoding

    function test_jobState_drawTotalIsRoundedUp() public {
        _stake(alice, 1); // total 30e18 + 1: 65 bits
        _nextBlock();
        uint256 total = escrow.totalStake();
        uint256 jobId = _post(_spec(3));
        (,,, uint256 drawTotal) = escrow.jobState(jobId);
        assertEq(drawTotal, _roundedTotal(total), "rounded per the rule");
        assertEq(drawTotal % 2 ** 25, 0, "40 significant bits of 65");
        assertGt(drawTotal, total, "up");
    }

    function testFuzz_encodeTotal_roundsUpWithin2PowMinus39(uint256 total, uint8 shift) public {
        DrawTotalHarness h = new DrawTotalHarness();
        total = bound(total, 0, type(uint128).max) >> bound(shift, 0, 127);
        uint256 decoded = h.decode(h.encode(total));
        assertGe(decoded, total, "never below the total");
        assertEq(decoded, _roundedTotal(total), "as the rule restates it");
        if (total < 2 ** 40) assertEq(decoded, total, "exact below 2^40");
        else assertLt((decoded - total) * 2 ** 39, total, "relative error < 2^-39");
        assertEq(h.decode(h.encode(decoded)), decoded, "a decoded total encodes to itself");
    }

    function test_encodeTotal_edges() public {
        DrawTotalHarness h = new DrawTotalHarness();
        assertEq(h.decode(h.encode(0)), 0, "zero");
        assertEq(h.decode(h.encode(2 ** 40 - 1)), 2 ** 40 - 1, "largest exact");
        assertEq(h.decode(h.encode(2 ** 40)), 2 ** 40, "2^40");
        assertEq(h.decode(h.encode(2 ** 40 + 1)), 2 ** 40 + 2, "first rounding");
        // A mantissa that rounds up to 2^40 carries into the exponent.
        assertEq(h.decode(h.encode(2 ** 41 - 1)), 2 ** 41, "carry");
        assertEq(h.decode(h.encode(type(uint128).max)), 2 ** 128, "largest total");
        assertEq(uint256(h.encode(2 ** 41 - 1)), 2 << 40 | 2 ** 39, "exponent 2, mantissa 2^39");
    }
}

contract JobEscrowSeedEthTest is JobEscrowSeedTest {
    function _tokenMode() internal pure override returns (bool) {
        return false;
    }
}

contract JobEscrowSeedTokenTest is JobEscrowSeedTest {
    function _tokenMode() internal pure override returns (bool) {
        return true;
    }
}
