//! Typed bindings to the ShareThePower contracts, generated at compile time from the forge
//! artifacts in `sdk/artifacts/` (ABI and bytecode), so the Rust side cannot drift from the
//! Solidity sources silently.

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    JobEscrow,
    "artifacts/JobEscrow.json"
);

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    StakeManager,
    "artifacts/StakeManager.json"
);

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    TestToken,
    "artifacts/TestToken.json"
);
