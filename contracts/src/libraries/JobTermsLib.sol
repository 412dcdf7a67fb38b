// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IJobEscrow} from "../interfaces/IJobEscrow.sol";

/// @title JobTermsLib
/// @notice Packs a job spec's rule fields into the three words of `IJobEscrow.JobTerms` and
/// reads them back. Layout (bit 0 = least significant):
/// - `payment`: consumer (bits 96..255) | bounty (0..95);
/// - `rules`: revealDeadline (208..239) | commitDeadline (176..207) | postedAt (144..175,
///   the post's block timestamp, set by the escrow) | minReputation (112..143) | quorum
///   (104..111) | replicas (96..103) | collateral (0..95);
/// - `detailsHash`: keccak256(abi.encode(kernelId, inputHash, inputSize, maxOutputSize,
///   inputLocation)).
/// Three words instead of ten ABI words: every call after postJob passes them back, and
/// the zero padding of the unpacked form was most of its calldata cost.
library JobTermsLib {
    uint256 private constant MASK96 = type(uint96).max;
    uint256 private constant MASK32 = type(uint32).max;

    /// @dev The terms of `spec` posted at `postedAt_`; the caller checked that the deadlines
    /// and `postedAt_` fit 32 bits.
    function pack(IJobEscrow.JobSpec calldata spec, uint256 postedAt_)
        internal
        pure
        returns (IJobEscrow.JobTerms memory)
    {
        return IJobEscrow.JobTerms({
            payment: uint256(uint160(spec.consumer)) << 96 | spec.bounty,
            rules: uint256(spec.revealDeadline) << 208 | uint256(spec.commitDeadline) << 176
                | postedAt_ << 144 | uint256(spec.minReputation) << 112 | uint256(spec.quorum)
                << 104 | uint256(spec.replicas) << 96 | spec.collateral,
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
        return (t.rules >> 96) & 0xff;
    }

    function quorum(IJobEscrow.JobTerms calldata t) internal pure returns (uint256) {
        return (t.rules >> 104) & 0xff;
    }

    function minReputation(IJobEscrow.JobTerms calldata t) internal pure returns (uint256) {
        return (t.rules >> 112) & MASK32;
    }

    function postedAt(IJobEscrow.JobTerms calldata t) internal pure returns (uint256) {
        return (t.rules >> 144) & MASK32;
    }

    function commitDeadline(IJobEscrow.JobTerms calldata t) internal pure returns (uint256) {
        return (t.rules >> 176) & MASK32;
    }

    function revealDeadline(IJobEscrow.JobTerms calldata t) internal pure returns (uint256) {
        return (t.rules >> 208) & MASK32;
    }
}
