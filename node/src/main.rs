//! `stp`: the ShareThePower command-line tool.

use clap::Parser;
use stp_node::cli::Cli;

fn main() -> eyre::Result<()> {
    stp_node::cli::install_error_report();
    let mut cli = Cli::parse();
    if let Some(path) = cli.config_file() {
        // SAFETY: nothing else runs yet: no runtime, no other thread.
        #[allow(unsafe_code, reason = "applying --config sets environment variables")]
        unsafe {
            stp_node::cli::provider_config::apply(&path)?
        };
        // Parse again so the file's values fill what flags and environment left unset.
        cli = Cli::parse();
    }
    stp_node::cli::init_tracing(&cli.log);
    cli.run()
}
