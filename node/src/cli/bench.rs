//! `stp bench ...`: benchmarks that print figures (never timed assertions).

use clap::Subcommand;

use super::bench_p2p::BenchP2pArgs;

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Blob transfer throughput: libp2p (TCP+noise+yamux, verified) vs a plain TCP socket.
    P2p(BenchP2pArgs),
}

impl BenchCommand {
    /// Runs the chosen benchmark.
    pub fn run(self) -> eyre::Result<()> {
        match self {
            BenchCommand::P2p(args) => args.run(),
        }
    }
}
