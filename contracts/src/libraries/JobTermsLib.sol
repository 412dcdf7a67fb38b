// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IJobEscrow} from "../interfaces/IJobEscrow.sol";

/// @title JobTermsLib
/// @notice Packs a job spec's rule fields into the three words of `IJobEscrow.JobTerms` and
/// reads them back. Layout (bit 0 = least significant):
/// - `payment`: consumer (bits 96..255) | bounty (0..95);
/// - `rules`: revealDeadline (224..255) | commitDeadline (192..223) | postedAt (160..191,
///   the post's block timestamp) | postBlock (128..159, the post's block number) |
///   minReputation (112..127) | replicas (104..111) | quorum (96..103) | collateral (0..95);
///   postedAt and postBlock are set by the escrow (JobPosted's `draw` = postBlock << 32 |
///   postedAt);
/// - `detailsHash`: keccak256(abi.encode(kernelId, inputHash, inputSize, maxOutputSize,
///   inputLocation)).
/// Three words instead of ten ABI words: every call after postJob passes them back, and
/// the zero padding of the unpacked form was most of its calldata cost.
library JobTermsLib {
    uint256 private constant MASK96 = type(uint96).max;
    uint256 private constant MASK32 = type(uint32).max;

    /// @dev The terms of `spec` posted with `draw` = postBlock << 32 | postedAt; the caller
    /// checked that the deadlines, postBlock and postedAt fit 32 bits and minReputation 16.
    function pack(IJobEscrow.JobSpec calldata spec, uint256 draw)
        internal
        pure
        returns (IJobEscrow.JobTerms memory)
    {
        return IJobEscrow.JobTerms({
            payment: uint256(uint160(spec.consumer)) << 96 | spec.bounty,
            rules: uint256(spec.revealDeadline) << 224 | uint256(spec.commitDeadline) << 192
                | (draw & MASK32) << 160 | (draw >> 32) << 128 | uint256(spec.minReputation) << 112
                | uint256(spec.replicas) << 104 | uint256(spec.quorum) << 96 | spec.collateral,
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
        return (t.rules >> 96) & 0xff;
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
