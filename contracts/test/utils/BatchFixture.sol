// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {EscrowFixture} from "./EscrowFixture.sol";
import {IJobEscrow} from "../../src/interfaces/IJobEscrow.sol";

/// @notice Helpers for postJobs batches on top of EscrowFixture: specs that differ per index,
/// a batch post that records every job as the single-post helpers do, and a one-replica
/// lifecycle per job.
abstract contract BatchFixture is EscrowFixture {
    /// @dev `n` valid one-replica specs of `consumer`, each with its own input, bounty
    /// (1 ether + i gwei) and inputLocation length (i * 7 % 70 bytes: empty, under, at and
    /// over a 32-byte word).
    function _batch(uint256 n) internal view returns (IJobEscrow.JobSpec[] memory specs) {
        specs = new IJobEscrow.JobSpec[](n);
        for (uint256 i = 0; i < n; ++i) {
            specs[i] = _spec(1);
            specs[i].inputHash = keccak256(abi.encode("chunk", i));
            specs[i].bounty = uint96(1 ether + i * 1 gwei);
            specs[i].inputLocation = _location(i * 7 % 70);
        }
    }

    function _location(uint256 length) internal pure returns (bytes memory b) {
        b = new bytes(length);
        for (uint256 i = 0; i < length; ++i) {
            b[i] = bytes1(uint8(0x41 + i % 26));
        }
    }

    function _sum(IJobEscrow.JobSpec[] memory specs) internal pure returns (uint256 sum) {
        for (uint256 i = 0; i < specs.length; ++i) {
            sum += specs[i].bounty;
        }
    }

    /// @dev Posts `specs` in one postJobs call by their consumer (paying the sum), records
    /// every job, seals the post's block and moves to the next one.
    function _postBatch(IJobEscrow.JobSpec[] memory specs) internal returns (uint256 first) {
        uint256 total = _totalAsBlockFoundIt();
        vm.prank(specs[0].consumer);
        first = escrow.postJobs{value: _value(_sum(specs))}(specs);
        for (uint256 i = 0; i < specs.length; ++i) {
            _record(first + i, specs[i], total);
        }
        bytes32 hash = keccak256(abi.encode("block hash", block.number));
        for (uint256 i = 0; i < specs.length; ++i) {
            _setPostHash(first + i, hash);
        }
        vm.roll(block.number + 1);
    }

    /// @dev Moves to the second at which the threshold of `jobId` (posted in an earlier
    /// block) has doubled twice: among three providers holding at least a fourth of the
    /// total stake each, every one is then eligible even for one replica (4 * 1/4 >= 1).
    function _warpAllEligible(uint256 jobId) internal {
        uint256 postedAt = _postedAt[jobId];
        uint256 window = _specOf[jobId].commitDeadline - postedAt;
        vm.warp(postedAt + (2 * window + DOUBLINGS - 1) / DOUBLINGS);
    }

    /// @dev `provider` commits the good result of one-replica job `jobId` in `lane` and
    /// reveals it, which settles the job.
    function _runOne(uint256 jobId, address provider, uint256 lane) internal {
        _commit(jobId, provider, lane, _good(jobId));
        _reveal(jobId, provider, lane, _good(jobId));
    }
}
