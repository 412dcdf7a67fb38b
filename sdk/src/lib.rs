//! # stp-sdk
//!
//! The library every ShareThePower tool builds on: consumers use it to post jobs and
//! verify outputs, and the provider node (`stp-node`) uses it for everything that must
//! agree byte for byte between the two sides.
//!
//! - [`bindings`]: typed alloy bindings generated from the forge artifacts of the
//!   contracts, so Rust and Solidity cannot drift apart silently.
//! - [`market`]: the on-chain operations of consumers and providers, views, event scans
//!   and decoded contract errors.
//! - [`kernels`]: deterministic compute kernels (WGSL + CPU references), kernel ids and
//!   input/output byte layouts, so a consumer can verify any result without a GPU.
//! - [`p2p`]: wire types shared with the provider network (job announcements, provider
//!   records, blob manifests).

pub mod bindings;
pub mod kernels;
pub mod market;
pub mod p2p;
