//! End-to-end tests of the market through the SDK against real anvil nodes (one per test,
//! on port 0, killed on drop).

mod lifecycle;
mod support;
