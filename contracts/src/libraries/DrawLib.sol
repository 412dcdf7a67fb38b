// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/// @title DrawLib
/// @notice The stake-weighted lot of protocol v2 (see IJobEscrow's notes): who may take a
/// slot of a job, and when. Pure arithmetic, no division on the hot path:
///     ticket u = uint64(keccak256(abi.encode(postBlockHash, jobId, provider)))
///     eligible at steps s  <=>  u * totalStake < replicas * staked * 2^(64 + s)
///     s(t) = DOUBLINGS * (t - postedAt) / (commitDeadline - postedAt), capped at DOUBLINGS
/// so a provider with stake share f is eligible with probability min(1, replicas * f * 2^s).
/// totalStake is the market's total as the post's block found it, stored per job as a 48-bit float (40-bit
/// mantissa, rounded up: a relative error below 2^-39, never in a provider's favour).
/// Bounds: u < 2^64 and totalStake < 2^129 keep the left side below 2^193; replicas <= 16
/// and staked < 2^96 keep the right side below 2^172.
library DrawLib {
    /// @notice How many times the eligibility threshold doubles over the commit window.
    uint256 internal constant DOUBLINGS = 8;

    uint256 private constant MANTISSA_BITS = 40;

    /// @dev The provider's ticket for the job, uniform in [0, 2^64).
    function ticket(bytes32 postBlockHash, uint256 jobId, address provider)
        internal
        pure
        returns (uint256)
    {
        return uint64(uint256(keccak256(abi.encode(postBlockHash, jobId, provider))));
    }

    /// @dev `total` as exponent (high 8 bits) and 40-bit mantissa, rounded up.
    function encodeTotal(uint256 total) internal pure returns (uint48) {
        uint256 bits = total == 0 ? 0 : Math.log2(total) + 1;
        uint256 exponent = bits > MANTISSA_BITS ? bits - MANTISSA_BITS : 0;
        uint256 mantissa = total >> exponent;
        if (mantissa << exponent < total) ++mantissa;
        if (mantissa == 2 ** MANTISSA_BITS) (mantissa, exponent) = (mantissa >> 1, exponent + 1);
        // exponent <= 128 - 40 + 1 for a total below 2^128, mantissa < 2^40: both fit.
        return uint48(exponent << MANTISSA_BITS | mantissa);
    }

    /// @dev The total `encodeTotal` stored (>= the total it was given).
    function decodeTotal(uint48 encoded) internal pure returns (uint256) {
        return (uint256(encoded) & (2 ** MANTISSA_BITS - 1)) << (uint256(encoded) >> MANTISSA_BITS);
    }

    /// @dev Threshold doublings in force at `time` for a window [postedAt, commitDeadline]
    /// (commitDeadline > postedAt, checked at post).
    function steps(uint256 time, uint256 postedAt, uint256 commitDeadline)
        internal
        pure
        returns (uint256)
    {
        if (time <= postedAt) return 0;
        uint256 elapsed = time - postedAt;
        uint256 window = commitDeadline - postedAt;
        return elapsed >= window ? DOUBLINGS : elapsed * DOUBLINGS / window;
    }

    /// @dev `eligible` at `s` doublings, and `drawn` at the base rate (s = 0).
    function check(uint256 u, uint256 totalStake, uint256 replicas, uint256 staked, uint256 s)
        internal
        pure
        returns (bool eligible, bool drawn)
    {
        uint256 lhs = u * totalStake;
        uint256 base = replicas * staked << 64;
        return (lhs < base << s, lhs < base);
    }

    /// @dev The first second at which the ticket is eligible, 0 if not even at DOUBLINGS.
    function eligibleFrom(
        uint256 u,
        uint256 totalStake,
        uint256 replicas,
        uint256 staked,
        uint256 postedAt,
        uint256 commitDeadline
    ) internal pure returns (uint256) {
        uint256 lhs = u * totalStake;
        uint256 base = replicas * staked << 64;
        uint256 window = commitDeadline - postedAt;
        for (uint256 s = 0; s <= DOUBLINGS; ++s) {
            if (lhs < base << s) {
                // The smallest t with s(t) >= s: elapsed * DOUBLINGS >= s * window.
                return postedAt + (s * window + DOUBLINGS - 1) / DOUBLINGS;
            }
        }
        return 0;
    }
}
