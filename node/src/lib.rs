//! # stp-node
//!
//! The ShareThePower provider daemon and the `stp` command-line tool, built on
//! [`stp_sdk`]. One module per stage of a job's journey through a provider:
//! [`daemon`] (chain watcher, scheduler, job driver), [`p2p`] (announcements, discovery,
//! verified blob transfer), [`exec`] (wgpu kernels in a killable worker), [`store`]
//! (durable job state), [`consumer`] (posting a job, following it, fetching and checking
//! its output: what `stp job post` and the Python SDK share), [`explorer`] (the web
//! explorer `stp explorer` serves) and [`cli`] (the `stp` commands).

pub mod cli;
pub mod consumer;
pub mod daemon;
pub mod exec;
pub mod explorer;
pub mod p2p;
pub mod store;
