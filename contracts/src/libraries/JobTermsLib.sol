// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IJobEscrow} from "../interfaces/IJobEscrow.sol";

/// @title JobTermsLib
/// @notice Packs a job spec's rule fields into the three words of `IJobEscrow.JobTerms` and
/// reads them back. Layout (bit 0 = least significant):
/// - `payment`: consumer (bits 96..255) | bounty (0..95);
/// - `rules`: revealDeadline (224..255) | commitDeadline (192..223) | postedAt (160..191,
///   the post's block timestamp) | postBlock (128..159, the post's block number) |
///   minReputation (112..127) | replicas (104..111) | kind (102..103) | quorum (96..101) |
///   collateral (0..95); postedAt, postBlock and the kind are set by the escrow (JobPosted's
///   `draw` = kind << 64 | postBlock << 32 | postedAt; kind: OPTIMISTIC or ESCALATION bit);
/// - `detailsHash`: keccak256(abi.encode(kernelId, inputHash, inputSize, maxOutputSize,
///   inputLocation)).
/// Three words instead of ten ABI words: every call after postJob passes them back, and
/// the zero padding of the unpacked form was most of its calldata cost.
library JobTermsLib {
    uint256 private constant MASK96 = type(uint96).max;
    uint256 private constant MASK32 = type(uint32).max;
    /// @dev `draw`'s kind bits (above its 64 bits of block and time).
    uint256 internal constant OPTIMISTIC = 1;
    uint256 internal constant ESCALATION = 2;
    uint256 private constant KIND_SHIFT = 102;

    /// @dev The terms of `spec` posted with `draw` = kind << 64 | postBlock << 32 | postedAt;
    /// the caller checked that the deadlines, postBlock and postedAt fit 32 bits,
    /// minReputation 16, the quorum 6 and the kind 2.
    function pack(IJobEscrow.JobSpec calldata spec, uint256 draw)
        internal
        pure
        returns (IJobEscrow.JobTerms memory)
    {
        return IJobEscrow.JobTerms({
            payment: uint256(uint160(spec.consumer)) << 96 | spec.bounty,
            rules: uint256(spec.revealDeadline) << 224 | uint256(spec.commitDeadline) << 192
                | (draw & MASK32) << 160 | (draw >> 32 & MASK32) << 128
                | uint256(spec.minReputation) << 112 | uint256(spec.replicas) << 104 | (draw >> 64)
                << KIND_SHIFT | uint256(spec.quorum) << 96 | spec.collateral,
            detailsHash: keccak256(
                abi.encode(
                    spec.kernelId,
                    spec.inputHash,
                    spec.inputSize,
                    spec.maxOutputSize,
                    spec.inputLocation
                )
            )
        });
    }

    /// @dev The terms of escalation job `e` (the challenged job's spec with the escalation's
    /// deadlines, replicas, quorum and bounty) posted with `draw`: `parent`'s minimum
    /// reputation, collateral and details.
    function escalate(IJobEscrow.JobTerms memory parent, IJobEscrow.JobSpec memory e, uint256 draw)
        internal
        pure
        returns (IJobEscrow.JobTerms memory)
    {
        uint256 kept = parent.rules & (uint256(0xffff) << 112 | MASK96);
        return IJobEscrow.JobTerms({
            payment: uint256(uint160(e.consumer)) << 96 | e.bounty,
            rules: uint256(e.revealDeadline) << 224 | uint256(e.commitDeadline) << 192
                | (draw & MASK32) << 160 | (draw >> 32 & MASK32) << 128 | kept | uint256(e.replicas)
                << 104 | (draw >> 64) << KIND_SHIFT | uint256(e.quorum) << 96,
            detailsHash: parent.detailsHash
        });
    }

    function consumer(IJobEscrow.JobTerms calldata t) internal pure returns (address) {
        return address(uint160(t.payment >> 96));
    }

    function bounty(IJobEscrow.JobTerms calldata t) internal pure returns (uint256) {
        return t.payment & MASK96;
    }

    function collateral(IJobEscrow.JobTerms calldata t) internal pure returns (uint256) {
        return t.rules & MASK96;
    }

    function replicas(IJobEscrow.JobTerms calldata t) internal pure returns (uint256) {
        return (t.rules >> 104) & 0xff;
    }

    function quorum(IJobEscrow.JobTerms calldata t) internal pure returns (uint256) {
        return (t.rules >> 96) & 0x3f;
    }

    /// @dev An optimistic job: paid after a challenge window (see IJobEscrow.challenge).
    function optimistic(IJobEscrow.JobTerms calldata t) internal pure returns (bool) {
        return (t.rules >> KIND_SHIFT) & OPTIMISTIC != 0;
    }

    /// @dev An escalation job: m replicas recomputing a challenged optimistic job.
    function escalation(IJobEscrow.JobTerms calldata t) internal pure returns (bool) {
        return (t.rules >> KIND_SHIFT) & ESCALATION != 0;
    }

    function minReputation(IJobEscrow.JobTerms calldata t) internal pure returns (uint256) {
        return (t.rules >> 112) & 0xffff;
    }

    function postBlock(IJobEscrow.JobTerms calldata t) internal pure returns (uint256) {
        return (t.rules >> 128) & MASK32;
    }

    function postedAt(IJobEscrow.JobTerms calldata t) internal pure returns (uint256) {
        return (t.rules >> 160) & MASK32;
    }

    function commitDeadline(IJobEscrow.JobTerms calldata t) internal pure returns (uint256) {
        return (t.rules >> 192) & MASK32;
    }

    function revealDeadline(IJobEscrow.JobTerms calldata t) internal pure returns (uint256) {
        return t.rules >> 224;
    }
}
