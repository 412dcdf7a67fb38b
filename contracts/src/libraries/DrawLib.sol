// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title DrawLib
/// @notice The stake-weighted lot of protocol v2 (see IJobEscrow's notes): who may take a
/// slot of a job, and when. Pure arithmetic, no division on the hot path:
///     ticket u = uint64(keccak256(abi.encode(seed, jobId, provider)))
///     eligible at steps s  <=>  u * totalStake < replicas * staked * 2^(64 + s)
///     s(t) = DOUBLINGS * (t - postedAt) / (commitDeadline - postedAt), capped at DOUBLINGS
/// so a provider with stake share f is eligible with probability min(1, replicas * f * 2^s).
/// Bounds: u < 2^64 and totalStake < 2^128 keep the left side below 2^192; replicas <= 16
/// and staked < 2^96 keep the right side below 2^172.
library DrawLib {
    /// @notice How many times the eligibility threshold doubles over the commit window.
    uint256 internal constant DOUBLINGS = 8;

    /// @dev The provider's ticket for the job, uniform in [0, 2^64).
    function ticket(uint256 seed, uint256 jobId, address provider) internal pure returns (uint256) {
        return uint64(uint256(keccak256(abi.encode(seed, jobId, provider))));
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
