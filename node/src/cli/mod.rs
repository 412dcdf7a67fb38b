//! The `stp` command line: one module per subcommand, each an `XArgs` clap struct with
//! `run(self)`. Output meant for the user goes to stdout (`--json` where offered); logs go
//! through `tracing` to stderr.

pub mod batch;
pub mod bench;
pub mod bench_model;
pub mod bench_p2p;
pub mod bench_scale;
pub mod bench_verify;
pub mod check;
pub mod common;
pub mod devnet;
pub mod exec_worker;
pub mod explorer;
pub mod index;
pub mod job;
pub mod job_optimistic;
pub mod job_post;
pub mod kernel;
pub mod market;
pub mod model;
pub mod payout;
pub mod provider;
pub mod provider_config;
pub mod provider_list;
pub mod provider_run;
pub mod receipt;

use clap::{Args, Parser, Subcommand};

/// `stp --version`: the version, and the build's optional features (a build with
/// `fault-injection` is for tests and demos, never for a real market).
const LONG_VERSION: &str = if cfg!(feature = "fault-injection") {
    concat!(env!("CARGO_PKG_VERSION"), "\nfeatures: fault-injection")
} else {
    concat!(env!("CARGO_PKG_VERSION"), "\nfeatures: none")
};

/// ShareThePower: GPU compute you can verify, paid on-chain.
#[derive(Debug, Parser)]
#[command(name = "stp", version, long_version = LONG_VERSION, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Logging options shared by every subcommand.
    #[command(flatten)]
    pub log: LogArgs,
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: Command,
}

/// `stp market` subcommands.
#[derive(Debug, Args)]
pub struct MarketCommand {
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: MarketSub,
}

/// What `stp market` can show.
#[derive(Debug, Subcommand)]
pub enum MarketSub {
    /// The market's deploy rules and totals.
    Info(market::MarketArgs),
}

/// Logging options shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log filter, e.g. `info`, `stp_node=debug` (also read from `RUST_LOG`).
    #[arg(long, global = true, env = "RUST_LOG", default_value = "info")]
    pub log_level: String,
    /// Emit logs as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    pub log_json: bool,
}

/// The `stp` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a local development chain with the market deployed (`stp devnet up`).
    Devnet(devnet::DevnetArgs),
    /// Run a provider node, stake, and show a provider's standing.
    Provider(provider::ProviderArgs),
    /// Post jobs, follow them and fetch their verified outputs.
    Job(job::JobArgs),
    /// Split a workload into chunks run on many providers at once (`stp batch post`).
    Batch(batch::BatchArgs),
    /// Show and withdraw credited earnings and refunds.
    Payout(payout::PayoutArgs),
    /// Show the market's rules and totals (`stp market info`).
    Market(MarketCommand),
    /// Inspect and run compute kernels.
    Kernel(kernel::KernelArgs),
    /// Quantized integer-only models: inspect, run (GPU or CPU), synthesize.
    Model(model::ModelArgs),
    /// Benchmarks.
    Bench(bench::BenchArgs),
    /// Serve the read-only web explorer (jobs, providers, earnings, network; live).
    Explorer(explorer::ExplorerArgs),
    /// Kernel worker process (started by the executor).
    #[command(hide = true)]
    ExecWorker(exec_worker::ExecWorkerArgs),
}

impl Cli {
    /// The `--config` file of `stp provider run`, if given.
    pub fn config_file(&self) -> Option<std::path::PathBuf> {
        match &self.command {
            Command::Provider(provider::ProviderArgs {
                command: provider::ProviderCommand::Run(run),
            }) => run.config.clone(),
            _ => None,
        }
    }

    /// Runs the chosen subcommand.
    pub fn run(self) -> eyre::Result<()> {
        match self.command {
            Command::Devnet(a) => a.run(),
            Command::Provider(a) => a.run(),
            Command::Job(a) => a.run(),
            Command::Batch(a) => a.run(),
            Command::Payout(a) => a.run(),
            Command::Market(MarketCommand {
                command: MarketSub::Info(a),
            }) => block_on(a.run()),
            // The worker is plain blocking I/O on stdin/stdout: no async runtime.
            Command::ExecWorker(args) => args.run(),
            Command::Kernel(args) => block_on(args.run()),
            Command::Model(args) => args.run(),
            Command::Bench(args) => block_on(args.run()),
            Command::Explorer(args) => block_on(args.run()),
        }
    }
}

/// Runs an async subcommand on a multi-threaded tokio runtime.
fn block_on(command: impl std::future::Future<Output = eyre::Result<()>>) -> eyre::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(command)
}

/// Makes `stp`'s errors print as the message and its causes, which is all a user error
/// needs: eyre's default report adds a backtrace whenever `RUST_BACKTRACE` is set, which
/// people set for panics. A backtrace is captured only with `RUST_LIB_BACKTRACE=1`;
/// panics still follow `RUST_BACKTRACE`.
pub fn install_error_report() {
    // Fails only if a hook is already installed, which then stays.
    let _ = eyre::set_hook(Box::new(|_| {
        let wanted = std::env::var_os("RUST_LIB_BACKTRACE").is_some_and(|v| v != "0");
        Box::new(ErrorReport {
            backtrace: wanted.then(std::backtrace::Backtrace::force_capture),
        })
    }));
}

/// How an `eyre::Report` prints: the error, "Caused by" its sources, and a backtrace only
/// if one was asked for.
struct ErrorReport {
    backtrace: Option<std::backtrace::Backtrace>,
}

impl eyre::EyreHandler for ErrorReport {
    fn debug(
        &self,
        error: &(dyn std::error::Error + 'static),
        f: &mut std::fmt::Formatter<'_>,
    ) -> std::fmt::Result {
        if f.alternate() {
            return std::fmt::Debug::fmt(error, f);
        }
        write!(f, "{error}")?;
        let causes = std::iter::successors(error.source(), |e| e.source());
        for (i, cause) in causes.enumerate() {
            if i == 0 {
                write!(f, "\n\nCaused by:")?;
            }
            write!(f, "\n    {i}: {cause}")?;
        }
        if let Some(backtrace) = &self.backtrace {
            write!(f, "\n\nStack backtrace:\n{backtrace}")?;
        }
        Ok(())
    }
}

/// Installs the global tracing subscriber: logs to stderr, human or JSON.
pub fn init_tracing(args: &LogArgs) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(&args.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: log files and pipes get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    if args.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Formats `report` through `handler`, as `{:?}` of a report does.
    struct Shown<'a>(&'a ErrorReport, &'a eyre::Report);

    impl std::fmt::Display for Shown<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            let error: &(dyn std::error::Error + Send + Sync + 'static) = self.1.as_ref();
            eyre::EyreHandler::debug(self.0, error, f)
        }
    }

    #[test]
    fn error_reports_show_the_cause_chain_and_a_backtrace_only_when_asked() {
        let report = eyre::eyre!("connection refused")
            .wrap_err("cannot reach the chain")
            .wrap_err("connecting to the market");
        let plain = ErrorReport { backtrace: None };
        assert_eq!(
            Shown(&plain, &report).to_string(),
            "connecting to the market\n\nCaused by:\n    0: cannot reach the chain\n    1: connection refused"
        );
        let single = eyre::eyre!("--replicas must be at least 1");
        assert_eq!(
            Shown(&plain, &single).to_string(),
            "--replicas must be at least 1"
        );
        let traced = ErrorReport {
            backtrace: Some(std::backtrace::Backtrace::force_capture()),
        };
        assert!(
            Shown(&traced, &single)
                .to_string()
                .contains("Stack backtrace:")
        );
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("stp").chain(args.iter().copied()))
    }

    #[test]
    fn job_post_parses_amounts_and_defaults() {
        let cli = parse(&[
            "job",
            "post",
            "--kernel",
            "matmul-u32",
            "--input",
            "in.bin",
            "--replicas",
            "3",
            "--bounty",
            "0.5",
            "--bootstrap",
            "/ip4/127.0.0.1/tcp/1",
        ])
        .unwrap();
        let Command::Job(job::JobArgs {
            command: job::JobCommand::Post(post),
        }) = cli.command
        else {
            panic!("parsed into the wrong command");
        };
        assert_eq!(post.terms.replicas, 3);
        assert_eq!(post.bounty, common::parse_amount("0.5").unwrap());
        assert_eq!(
            post.terms.commit_secs, None,
            "windows default to the chain's at run time"
        );
        assert!(!post.wait);
        assert!(
            parse(&[
                "job", "post", "--kernel", "x", "--input", "f", "--bounty", "-1"
            ])
            .is_err()
        );
        assert!(
            parse(&[
                "job",
                "post",
                "--kernel",
                "x",
                "--input",
                "f",
                "--bootstrap",
                "nope"
            ])
            .is_err()
        );
    }

    #[test]
    fn wallet_flags_exclude_each_other() {
        let both = parse(&[
            "payout",
            "claim",
            "--private-key",
            "0x01",
            "--keystore",
            "k.json",
        ]);
        assert_eq!(
            both.unwrap_err().kind(),
            clap::error::ErrorKind::ArgumentConflict
        );
        let password_alone = parse(&["payout", "claim", "--password", "pw"]);
        assert!(password_alone.is_err());
        assert!(
            parse(&["provider", "stake"]).is_err(),
            "--amount is required"
        );
        assert!(parse(&["provider", "status", "--address", "0x12"]).is_err());
    }
}
