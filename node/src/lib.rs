//! # stp-node
//!
//! The ShareThePower provider daemon and the `stp` command-line tool, built on
//! [`stp_sdk`]. One module per stage of a job's journey through a provider.

pub mod cli;
pub mod exec;
