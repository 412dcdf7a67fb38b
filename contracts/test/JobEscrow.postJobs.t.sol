// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {BatchFixture} from "./utils/BatchFixture.sol";
import {Vm} from "./utils/Vm.sol";
import {IJobEscrow} from "../src/interfaces/IJobEscrow.sol";

/// @notice postJobs: consecutive ids, one JobPosted per job byte for byte as postJob emits
/// it, the sum escrowed, every spec rule with the refused index named, the value, the batch
/// bounds, the canonical encoding; a fuzzed batch whose every job settles.
abstract contract JobEscrowPostJobsTest is BatchFixture {
    function test_postJobs_postsConsecutiveJobsAndEscrowsTheSum() public {
        _stakeAll(10 ether);
        IJobEscrow.JobSpec[] memory specs = _batch(11);
        specs[3].replicas = 3; // plain jobs of any replica count
        specs[3].quorum = 2;
        uint256 first = _post(_spec(1)) + 1; // ids continue the counter
        uint256 draw = block.number << 32 | block.timestamp;
        uint256 paidBefore = _assetBalance(consumer);
        uint256 heldBefore = _assetBalance(address(escrow));
        vm.recordLogs();
        vm.prank(consumer);
        uint256 got = escrow.postJobs{value: _value(_sum(specs))}(specs);
        Vm.Log[] memory logs = _escrowLogs(vm.getRecordedLogs());
        assertEq(got, first, "first id");
        assertEq(escrow.nextJobId(), first + 11, "next id");
        assertEq(_assetBalance(consumer), paidBefore - _sum(specs), "the sum paid");
        assertEq(_assetBalance(address(escrow)), heldBefore + _sum(specs), "the sum held");
        assertEq(logs.length, specs.length, "one escrow log per job, nothing else");
        for (uint256 i = 0; i < specs.length; ++i) {
            _assertPosted(logs[i], first + i, draw, specs[i]);
            (bytes24 h, uint8 c, uint8 r, uint256 drawTotal) = escrow.jobState(first + i);
            bytes32 full = keccak256(abi.encode(_termsFor(specs[i], draw)));
            assertEq(bytes32(h), bytes32(bytes24(full)), "stored terms hash prefix");
            assertEq(uint256(c) + r, 0, "counters");
            assertEq(drawTotal, _roundedTotal(30 ether), "the total stake at the post");
        }
    }

    /// @dev The escrow's logs among `logs` (the token's Transfer logs left out).
    function _escrowLogs(Vm.Log[] memory logs) internal view returns (Vm.Log[] memory mine) {
        mine = new Vm.Log[](logs.length);
        uint256 n = 0;
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].emitter == address(escrow)) mine[n++] = logs[i];
        }
        assembly ("memory-safe") {
            mstore(mine, n)
        }
    }

    /// JobPosted(jobId, consumer, draw, spec) with abi.encode(spec) as data: what postJob
    /// emits (see test_postJob_escrowsBountyAndEmitsDrawAndSpec).
    function _assertPosted(Vm.Log memory log, uint256 id, uint256 draw, IJobEscrow.JobSpec memory s)
        internal
        view
    {
        assertEq(log.emitter, address(escrow), "emitter");
        assertEq(log.topics.length, 4, "three indexed fields");
        assertEq(log.topics[0], IJobEscrow.JobPosted.selector, "JobPosted");
        assertEq(uint256(log.topics[1]), id, "jobId");
        assertEq(log.topics[2], bytes32(uint256(uint160(s.consumer))), "consumer");
        assertEq(uint256(log.topics[3]), draw, "draw");
        assertEq(keccak256(log.data), keccak256(abi.encode(s)), "data = abi.encode(spec)");
    }

    /// The log of a batched job equals the log postJob emits for the same spec in the same
    /// block, to the byte (padding after inputLocation zeroed in both).
    function test_postJobs_logEqualsPostJobLog() public {
        IJobEscrow.JobSpec[] memory specs = _batch(1);
        specs[0].inputLocation = _location(33);
        vm.recordLogs();
        vm.prank(consumer);
        escrow.postJob{value: _value(specs[0].bounty)}(specs[0]);
        vm.prank(consumer);
        uint256 id = escrow.postJobs{value: _value(specs[0].bounty)}(specs);
        Vm.Log[] memory logs = _escrowLogs(vm.getRecordedLogs());
        assertEq(logs.length, 2, "two posts");
        assertEq(keccak256(logs[1].data), keccak256(logs[0].data), "same data");
        assertEq(logs[1].topics[3], logs[0].topics[3], "same draw");
        assertEq(uint256(logs[1].topics[1]), id, "the batch's id");
    }

    function test_postJobs_revertsWholeBatchOnABadSpecAtItsIndex() public {
        uint256[3] memory at = [uint256(0), 4, 7];
        for (uint256 j = 0; j < at.length; ++j) {
            IJobEscrow.JobSpec[] memory specs = _batch(8);
            specs[at[j]].bounty = 0;
            _expectBatchRevert(
                specs,
                abi.encodeWithSelector(
                    IJobEscrow.EscrowBatchSpecInvalid.selector,
                    at[j],
                    abi.encodeWithSelector(IJobEscrow.EscrowInvalidSpec.selector, bytes32("bounty"))
                )
            );
        }
        // Each postJob rule, with postJob's own error as the reason.
        IJobEscrow.JobSpec[] memory bad = _batch(3);
        bad[1].quorum = 2;
        _expectSpecRevert(bad, 1, _invalid("quorum"));
        bad = _batch(3);
        bad[2].replicas = uint8(MAX_REPLICAS + 1);
        bad[2].quorum = bad[2].replicas / 2 + 1;
        _expectSpecRevert(bad, 2, _invalid("replicas"));
        bad = _batch(3);
        bad[1].inputLocation = _location(257);
        _expectSpecRevert(bad, 1, _invalid("inputLocation"));
        bad = _batch(3);
        bad[0].minReputation = 65_536;
        _expectSpecRevert(bad, 0, _invalid("minReputation"));
        bad = _batch(3);
        bad[2].commitDeadline = uint40(block.timestamp + MIN_COMMIT - 1);
        _expectSpecRevert(
            bad,
            2,
            abi.encodeWithSelector(
                IJobEscrow.EscrowWindowTooShort.selector,
                bytes32("commit"),
                MIN_COMMIT - 1,
                MIN_COMMIT
            )
        );
        bad = _batch(3);
        bad[1].revealDeadline = uint40(block.timestamp + MAX_HORIZON + 1);
        _expectSpecRevert(
            bad,
            1,
            abi.encodeWithSelector(
                IJobEscrow.EscrowDeadlineTooFar.selector,
                block.timestamp + MAX_HORIZON + 1,
                block.timestamp + MAX_HORIZON
            )
        );
    }

    function _invalid(bytes32 reason) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IJobEscrow.EscrowInvalidSpec.selector, reason);
    }

    /// @dev The batch reverts naming `index` with `reason`, which is exactly what postJob
    /// reverts with for that spec; nothing was posted or paid.
    function _expectSpecRevert(
        IJobEscrow.JobSpec[] memory specs,
        uint256 index,
        bytes memory reason
    ) internal {
        _expectBatchRevert(
            specs, abi.encodeWithSelector(IJobEscrow.EscrowBatchSpecInvalid.selector, index, reason)
        );
        vm.expectRevert(reason);
        vm.prank(consumer);
        escrow.postJob{value: _value(specs[index].bounty)}(specs[index]);
    }

    function _expectBatchRevert(IJobEscrow.JobSpec[] memory specs, bytes memory err) internal {
        uint256 next = escrow.nextJobId();
        uint256 paid = _assetBalance(consumer);
        vm.expectRevert(err);
        vm.prank(consumer);
        escrow.postJobs{value: _value(_sum(specs))}(specs);
        assertEq(escrow.nextJobId(), next, "no job posted");
        assertEq(_assetBalance(consumer), paid, "nothing paid");
    }

    function test_postJobs_revertsOnWrongValue() public {
        IJobEscrow.JobSpec[] memory specs = _batch(5);
        uint256 sum = _sum(specs);
        vm.deal(consumer, consumer.balance + sum + 1); // ETH to send in token mode too
        uint256 expected = _value(sum);
        uint256[3] memory sent = _tokenMode() ? [uint256(1), sum, 0] : [sum - 1, sum + 1, 0];
        for (uint256 j = 0; j < (_tokenMode() ? 2 : 3); ++j) {
            vm.expectRevert(
                abi.encodeWithSelector(IJobEscrow.EscrowWrongValue.selector, sent[j], expected)
            );
            vm.prank(consumer);
            escrow.postJobs{value: sent[j]}(specs);
        }
        assertEq(escrow.nextJobId(), 1, "nothing posted");
    }

    function test_postJobs_revertsOnEmptyAndOverTheBound() public {
        assertEq(escrow.MAX_BATCH(), 256, "the bound");
        _expectBatchRevert(
            new IJobEscrow.JobSpec[](0),
            abi.encodeWithSelector(IJobEscrow.EscrowBatchSize.selector, 0, 256)
        );
        _expectBatchRevert(
            _batch(257), abi.encodeWithSelector(IJobEscrow.EscrowBatchSize.selector, 257, 256)
        );
    }

    function test_postJobs_takesTheFullBound() public {
        uint256 first = _postBatch(_batch(256));
        assertEq(escrow.nextJobId(), first + 256, "256 jobs");
        assertTrue(_isLive(first + 255), "the last is live");
    }

    /// Only the canonical encoding is taken (the event copies the calldata): trailing bytes,
    /// a spec not where the canonical encoding puts it, a moved inputLocation.
    function test_postJobs_revertsOnNonCanonicalEncoding() public {
        IJobEscrow.JobSpec[] memory specs = _batch(3);
        specs[2].inputLocation = "";
        bytes memory data = abi.encodeCall(IJobEscrow.postJobs, (specs));
        uint256 value = _value(_sum(specs));
        _expectRawRevert(bytes.concat(data, bytes32(0)), value, _invalid("encoding"));
        // Spec 1's offset (word 3 after the selector) points one word further on.
        bytes memory moved = bytes.concat(data);
        _addToWord(moved, 4 + 3 * 32, 32);
        _expectRawRevert(moved, value, _batchInvalid(1, _invalid("encoding")));
        // The last spec's inputLocation offset (word 12 of its tuple, the tuple's last word
        // but its empty location's length) points one word on, to an appended zero length.
        bytes memory far = bytes.concat(data, bytes32(0));
        _addToWord(far, data.length - 2 * 32, 32);
        _expectRawRevert(far, value, _batchInvalid(2, _invalid("encoding")));
        (bool ok,) = _call(data, value);
        assertTrue(ok, "the canonical encoding is taken");
    }

    function _batchInvalid(uint256 index, bytes memory reason)
        internal
        pure
        returns (bytes memory)
    {
        return abi.encodeWithSelector(IJobEscrow.EscrowBatchSpecInvalid.selector, index, reason);
    }

    function _addToWord(bytes memory data, uint256 at, uint256 delta) internal pure {
        assembly ("memory-safe") {
            let p := add(add(data, 0x20), at)
            mstore(p, add(mload(p), delta))
        }
    }

    function _call(bytes memory data, uint256 value) internal returns (bool ok, bytes memory ret) {
        vm.prank(consumer);
        (ok, ret) = address(escrow).call{value: value}(data);
    }

    function _expectRawRevert(bytes memory data, uint256 value, bytes memory err) internal {
        (bool ok, bytes memory ret) = _call(data, value);
        assertTrue(!ok, "reverts");
        assertEq(keccak256(ret), keccak256(err), "with the error");
    }

    /// A batch of n one-replica jobs with random bounties: the sum is escrowed, and every
    /// job settles as a single post would: its provider is credited its bounty, stakes are
    /// untouched, and the escrow holds exactly what it owes at each step.
    function testFuzz_postJobs_escrowsTheSumAndEveryJobSettles(uint256 n, uint256 seed) public {
        _stakeAll(10 ether);
        n = bound(n, 1, 24);
        IJobEscrow.JobSpec[] memory specs = _batch(n);
        for (uint256 i = 0; i < n; ++i) {
            specs[i].bounty = uint96(bound(uint256(keccak256(abi.encode(seed, i))), 1, 10 ether));
        }
        uint256 sum = _sum(specs);
        _fund(consumer, sum);
        uint256 first = _postBatch(specs);
        address[] memory all = _list(alice, bob, carol);
        assertEq(_assetBalance(address(escrow)), _owed(all, sum), "the sum escrowed");
        _warpAllEligible(first);
        uint256[3] memory earned;
        for (uint256 i = 0; i < n; ++i) {
            _runOne(first + i, all[i % 3], i / 3);
            earned[i % 3] += specs[i].bounty;
            sum -= specs[i].bounty;
            assertEq(_assetBalance(address(escrow)), _owed(all, sum), "held = owed");
            assertTrue(!_isLive(first + i), "settled");
        }
        for (uint256 p = 0; p < 3; ++p) {
            assertEq(escrow.balanceOf(all[p]), earned[p], "each provider paid its bounties");
            assertEq(_stakedOf(all[p]), 10 ether, "stake untouched");
            assertEq(_lockedOf(all[p]), 0, "collateral released");
        }
    }
}

contract JobEscrowPostJobsEthTest is JobEscrowPostJobsTest {
    function _tokenMode() internal pure override returns (bool) {
        return false;
    }
}

contract JobEscrowPostJobsTokenTest is JobEscrowPostJobsTest {
    function _tokenMode() internal pure override returns (bool) {
        return true;
    }
}
