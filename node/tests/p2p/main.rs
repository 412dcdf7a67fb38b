//! Integration tests of the p2p layer: real libp2p swarms on 127.0.0.1, in-process.

mod common;
mod garbage;
mod identify;
mod network;
mod providers;
mod swarm;
mod transfer;
