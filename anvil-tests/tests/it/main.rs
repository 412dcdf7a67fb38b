//! End-to-end tests of the market against real anvil nodes (one per test, on port 0,
//! killed on drop): through the SDK, through `cast`, and with real `stp provider run`
//! nodes that get killed and lose their RPC endpoint.

mod attacks;
mod cast_job;
mod flaky_rpc;
mod gossip;
mod index;
mod lifecycle;
mod node;
mod pipeline;
mod post_jobs;
mod recovery;
mod serving;
mod support;
