//! # stp-sdk
//!
//! The library every ShareThePower tool builds on: consumers use it to post jobs and
//! verify outputs, and the provider node (`stp-node`) uses it for everything that must
//! agree byte for byte between the two sides.
//!
//! - [`bindings`]: typed alloy bindings generated from the forge artifacts of the
//!   contracts, so Rust and Solidity cannot drift apart silently.

pub mod bindings;
