//! Typed alloy bindings to the ShareThePower contracts, generated at compile time from the
//! forge artifacts in `sdk/artifacts/` (ABI + bytecode; refreshed by
//! `scripts/sync-artifacts`, checked against a fresh build by `scripts/test-contracts`).
//!
//! - [`JobEscrow`]: the whole market: provider stakes and reputation, jobs, commit-reveal,
//!   settlement, payouts.
//! - [`TestToken`]: an ERC-20 with public `mint`, for tests and devnets only.
//!
//! Contract errors decode with
//! `err.as_decoded_interface_error::<JobEscrow::JobEscrowErrors>()`.

// What `sol!` generates carries no docs; the contracts' NatSpec documents it.
#![allow(missing_docs)]

alloy::sol!(
    #[allow(clippy::too_many_arguments)]
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    JobEscrow,
    "artifacts/JobEscrow.json"
);

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    TestToken,
    "artifacts/TestToken.json"
);

#[cfg(test)]
mod tests {
    use alloy::primitives::{Address, B256, U256, address, b256, keccak256};
    use alloy::sol_types::SolValue;

    /// `JobEscrow.commitmentOf` is keccak256(abi.encode(jobId, provider, resultHash, salt)).
    /// Known-answer vector produced with Foundry's cast, independently of this crate:
    /// `cast keccak $(cast abi-encode "f(uint256,address,bytes32,bytes32)" 42 \
    ///   0x70997970C51812dc3A010C7d01b50e0d17dc79C8 \
    ///   0x2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824 \
    ///   0x1111111111111111111111111111111111111111111111111111111111111111)`
    /// (resultHash = sha256("hello")).
    #[test]
    fn commitment_encoding_matches_cast_vector() {
        let provider: Address = address!("70997970C51812dc3A010C7d01b50e0d17dc79C8");
        let result_hash = b256!("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        let salt = B256::repeat_byte(0x11);
        let encoded = (U256::from(42u64), provider, result_hash, salt).abi_encode();
        assert_eq!(
            keccak256(encoded),
            b256!("7cc16e14923f4e377243ddf124d117bed26bc69b98bf93700ee2372318773cc7")
        );
    }

    /// The generated call type carries the ABI the contract was compiled with.
    #[test]
    fn commitment_of_selector_matches_signature() {
        use alloy::sol_types::SolCall;
        assert_eq!(
            super::JobEscrow::commitmentOfCall::SIGNATURE,
            "commitmentOf(uint256,address,bytes32,bytes32)"
        );
    }
}

#[cfg(test)]
mod spec_tests {
    use super::IJobEscrow::JobSpec;
    use alloy::primitives::{Address, B256, Bytes, U256, aliases::U96, keccak256};
    use alloy::sol_types::SolValue;

    /// The struct the contract hashes is the one the bindings encode: a non-trivial spec
    /// encodes to the 15 head words + the inputLocation tail that abi.encode(spec) gives.
    #[test]
    fn job_spec_encodes_as_a_dynamic_tuple() {
        let spec = JobSpec {
            consumer: Address::repeat_byte(0xaa),
            kernelId: B256::repeat_byte(1),
            inputHash: B256::repeat_byte(2),
            inputSize: 4096,
            maxOutputSize: 4096,
            bounty: U96::from(3u64),
            collateral: U96::from(1u64),
            replicas: 3,
            quorum: 2,
            minReputation: 0,
            commitDeadline: alloy::primitives::aliases::U40::from(20u64),
            revealDeadline: alloy::primitives::aliases::U40::from(30u64),
            inputLocation: Bytes::from_static(b"peer"),
        };
        let encoded = spec.abi_encode();
        // offset word + 13 fields + length word + one data word.
        assert_eq!(encoded.len(), 32 * 16);
        assert_eq!(U256::from_be_slice(&encoded[..32]), U256::from(32u64));
        assert_ne!(keccak256(&encoded), B256::ZERO);
    }
}
