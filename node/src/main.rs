//! `stp`: the ShareThePower command-line tool.

use clap::Parser;
use stp_node::cli::Cli;

fn main() -> eyre::Result<()> {
    let cli = Cli::parse();
    stp_node::cli::init_tracing(&cli.log);
    cli.run()
}
