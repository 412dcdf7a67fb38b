//! `stp batch post | status`: a workload split into chunks, run as one job per chunk on
//! many providers, failed chunks re-posted, the verified outputs aggregated.

use std::path::{Path, PathBuf};
use std::time::Duration;

use alloy::primitives::U256;
use clap::{Args, Subcommand};
use eyre::{WrapErr, bail, eyre};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use stp_sdk::batch::{Batch, SplitBy, encode_png, parts, split, split_custom};
use stp_sdk::kernels::{KernelId, builtin};
use stp_sdk::market::lifecycle::Phase;

use super::common::{
    ChainArgs, block_on, format_amount, out, out_json, parse_positive_amount, unit,
};
use super::job::P2pArgs;
use super::job_post::TermsArgs;
use crate::consumer::batch::{self, BatchOrder, Change, ChunkPhase, Manifest};
use crate::consumer::{ModelWork, Order, phase, resolve_kernel};

/// Split a workload into chunks and run them as jobs on many providers at once.
#[derive(Debug, Args)]
pub struct BatchArgs {
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: BatchCommand,
}

/// Batch subcommands.
#[derive(Debug, Subcommand)]
pub enum BatchCommand {
    /// Split the input into chunks, post one job per chunk, follow them (re-posting a chunk
    /// whose job ends unfilled, without quorum or with an output that fails its check) and
    /// write the aggregate of the verified outputs.
    ///
    /// Splitting: matmul-u32 / matmul-i8 by row blocks of A, sha256-batch by message
    /// ranges, mandelbrot-fixed by tiles (written as a PNG when --output ends in .png),
    /// custom kernels one chunk per --input (every input an envelope of the same kernel),
    /// a --model's samples by ranges of samples (the model file travels once per provider).
    ///
    /// Examples:
    ///   stp batch post --kernel mandelbrot-fixed --input view.bin --tiles 8x8 \
    ///       --replicas 3 --bounty 0.003 --collateral 0.001 --wait --output view.png
    ///   stp batch post --kernel matmul-u32 --input ab.bin --chunk-rows 64 --wait --output c.bin
    ///   stp batch post --model digits.stpm --input heldout.bin --chunks 8 --replicas 3 \
    ///       --collateral 0.001 --wait --output predictions.bin
    #[command(verbatim_doc_comment)]
    Post(Box<BatchPostArgs>),
    /// Show a batch this consumer posted: each chunk's phase, attempts and current job
    /// (from the batch's record in --data-dir, refreshed from the chain).
    ///
    /// Example: stp batch status 7 --json
    #[command(verbatim_doc_comment)]
    Status(BatchStatusArgs),
    /// Take up a batch where it was left (the consumer stopped or crashed): follow its
    /// chunks' jobs, re-post failed ones and write the aggregate. Chunk inputs and verified
    /// outputs come from the blob store of the consumer that posted it (--data-dir).
    ///
    /// Example: stp batch resume 7 --output view.png
    #[command(verbatim_doc_comment)]
    Resume(BatchResumeArgs),
}

impl BatchArgs {
    /// Runs the subcommand.
    pub fn run(self) -> eyre::Result<()> {
        match self.command {
            BatchCommand::Post(a) => block_on(a.run()),
            BatchCommand::Status(a) => block_on(a.run()),
            BatchCommand::Resume(a) => block_on(a.run()),
        }
    }
}

/// Options of `stp batch post`.
#[derive(Debug, Args)]
pub struct BatchPostArgs {
    /// Kernel name (`stp kernel list`) or 64-hex id of a custom kernel.
    #[arg(long, required_unless_present = "model", conflicts_with = "model")]
    pub kernel: Option<String>,
    /// Run this quantized model (`.stpm`, see `stp model`) over the samples in --input,
    /// split by samples (--chunks N or --chunk-rows SAMPLES); providers fetch the model
    /// file once, by hash, for all the chunks they run.
    #[arg(long, value_name = "MODEL")]
    pub model: Option<PathBuf>,
    /// The workload, laid out as the kernel expects; custom kernels: repeat it, one custom
    /// envelope per chunk; with --model, int8 samples back to back.
    #[arg(long, value_name = "FILE", required = true)]
    pub input: Vec<PathBuf>,
    /// Split into this many chunks (as even as the workload allows; mandelbrot: a grid of
    /// tiles as close to square as the number allows).
    #[arg(long, conflicts_with_all = ["chunk_rows", "tiles"])]
    pub chunks: Option<u32>,
    /// Rows per chunk: rows of A (matmul), messages (sha256-batch), pixel rows
    /// (mandelbrot strips); the last chunk may be smaller.
    #[arg(long, conflicts_with = "tiles")]
    pub chunk_rows: Option<u32>,
    /// mandelbrot-fixed: COLSxROWS tiles, e.g. 8x8.
    #[arg(long, value_parser = parse_tiles)]
    pub tiles: Option<(u32, u32)>,
    /// Bounty per chunk (ETH units, tokens in ERC-20 mode), split among its winners.
    #[arg(long, default_value = "0.001", value_parser = parse_positive_amount)]
    pub bounty: U256,
    /// The terms every chunk's job is offered on.
    #[command(flatten)]
    pub terms: TermsArgs,
    /// Postings a chunk may use in all before the batch gives up on it.
    #[arg(long, default_value_t = 3)]
    pub max_attempts: u32,
    /// Follow the batch until every chunk is verified, re-posting failed chunks. Without
    /// it the command returns once every chunk's input is taken (nothing is re-posted).
    #[arg(long)]
    pub wait: bool,
    /// Write the aggregate output here (implies --wait); `.png` for a mandelbrot image.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Keep only the hash agreement of each chunk (skip the check against its input).
    #[arg(long)]
    pub no_check: bool,
    /// Carry the data every chunk needs (matmul's B) inside each chunk's input. By default
    /// it is served once as a blob that chunk inputs reference by hash, so each provider
    /// fetches it once across all the chunks (and jobs) it runs.
    #[arg(long)]
    pub inline_parts: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Seconds between chain polls.
    #[arg(long, default_value_t = 1.0, value_parser = super::common::parse_poll_secs)]
    pub poll_secs: f64,
    /// libp2p options for moving inputs and outputs.
    #[command(flatten)]
    pub p2p: P2pArgs,
    /// Chain, wallet and deployment options.
    #[command(flatten)]
    pub chain: ChainArgs,
}

fn parse_tiles(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("expected COLSxROWS such as 8x8, got {s:?}");
    let (c, r) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let (c, r) = (c.parse().map_err(|_| bad())?, r.parse().map_err(|_| bad())?);
    if c == 0 || r == 0 {
        return Err(bad());
    }
    Ok((c, r))
}

/// What `stp batch post --json` prints.
#[derive(Debug, Serialize)]
struct Report<'a> {
    #[serde(flatten)]
    manifest: &'a Manifest,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<&'a Path>,
}

impl BatchPostArgs {
    /// Runs `stp batch post`.
    pub async fn run(self) -> eyre::Result<()> {
        let batch = self.split()?;
        let kernel = batch.kernel;
        let wait = self.wait || self.output.is_some();
        let shared = (!self.inline_parts).then(|| parts::share(&batch)).flatten();
        let order = BatchOrder {
            terms: self.terms(kernel),
            batch,
            shared,
            max_attempts: self.max_attempts,
            verify: !self.no_check,
            wait,
            poll: Duration::from_secs_f64(self.poll_secs.clamp(0.05, 60.0)),
        };
        let m = self.chain.market().await?;
        if !self.json {
            out(format!(
                "batch of {} chunks: {} x{} each, bounty {} {} per chunk",
                order.batch.chunks.len(),
                self.what(),
                self.terms.replicas,
                format_amount(self.bounty),
                unit(m.deployment())
            ));
        }
        let p2p = self.p2p.spawn().await?;
        let bar = progress(order.batch.chunks.len(), self.json);
        let run = batch::run(&m, &p2p, &order, &self.p2p.data_dir, |man, i, change| {
            show(&bar, man, i, change);
        });
        let finished = until_interrupted(run, &bar, &p2p).await?;
        finish(&finished, self.output.as_deref(), self.json)
    }

    /// What the chunks run, for people: the kernel's name or the model file.
    fn what(&self) -> String {
        match (&self.model, &self.kernel) {
            (Some(model), _) => format!("model {}", model.display()),
            (None, kernel) => kernel.clone().unwrap_or_default(),
        }
    }

    fn split(&self) -> eyre::Result<Batch> {
        let read = |p: &PathBuf| {
            std::fs::read(p).wrap_err_with(|| format!("reading --input {}", p.display()))
        };
        if let Some(model) = &self.model {
            let [path] = self.input.as_slice() else {
                bail!(
                    "a model's batch takes one --input (all the samples), not {}",
                    self.input.len()
                );
            };
            let by = match (self.chunks, self.chunk_rows) {
                (Some(n), _) => SplitBy::Chunks(n),
                (_, Some(r)) => SplitBy::Rows(r),
                _ => bail!("say how to split the samples: --chunks N or --chunk-rows SAMPLES"),
            };
            return ModelWork::read(model, path)?.split(by);
        }
        let kernel = &resolve_kernel(self.kernel.as_deref().unwrap_or_default())?;
        if builtin(kernel).is_none() {
            let inputs = self.input.iter().map(read).collect::<eyre::Result<_>>()?;
            return Ok(split_custom(inputs)?);
        }
        let [path] = self.input.as_slice() else {
            bail!(
                "a built-in kernel's batch takes one --input (the whole workload), not {}",
                self.input.len()
            );
        };
        let by = match (self.chunks, self.chunk_rows, self.tiles) {
            (Some(n), _, _) => SplitBy::Chunks(n),
            (_, Some(r), _) => SplitBy::Rows(r),
            (_, _, Some((cols, rows))) => SplitBy::Tiles { cols, rows },
            _ => bail!(
                "say how to split: --chunks N, --chunk-rows R or (mandelbrot-fixed) --tiles COLSxROWS"
            ),
        };
        Ok(split(kernel, &read(path)?, by)?)
    }

    fn terms(&self, kernel: KernelId) -> Order {
        Order {
            announce: !self.p2p.bootstrap.is_empty(),
            ..self.terms.order(kernel, Vec::new(), self.bounty)
        }
    }
}

/// Runs `run` until it ends or Ctrl-C, then stops the bar and the p2p node.
async fn until_interrupted(
    run: impl std::future::Future<Output = eyre::Result<batch::Finished>>,
    bar: &ProgressBar,
    p2p: &crate::p2p::P2pClient,
) -> eyre::Result<batch::Finished> {
    let result = tokio::select! {
        r = run => r,
        _ = tokio::signal::ctrl_c() => Err(eyre!(
            "interrupted: stopped serving inputs; the chunks' jobs stay on-chain (`stp batch status`, `stp batch resume`)"
        )),
    };
    bar.finish_and_clear();
    p2p.shutdown().await;
    result
}

/// Writes the aggregate to `output` (if any) and prints the report.
fn finish(finished: &batch::Finished, output: Option<&Path>, json: bool) -> eyre::Result<()> {
    if let (Some(path), Some(bytes)) = (output, &finished.output) {
        write_output(path, &finished.manifest, bytes)?;
    }
    report(&finished.manifest, output, json)
}

fn report(man: &Manifest, output: Option<&Path>, json: bool) -> eyre::Result<()> {
    if json {
        return out_json(&Report {
            manifest: man,
            output,
        });
    }
    out(format!(
        "batch {}: {} of {} chunks verified",
        man.batch_id,
        man.count(ChunkPhase::Verified),
        man.chunks.len()
    ));
    for c in man.retried() {
        let why: Vec<String> = c
            .attempts
            .iter()
            .filter_map(|a| a.failed.as_ref().map(|f| format!("job {}: {f}", a.job_id)))
            .collect();
        out(format!(
            "  chunk {} ({}) took {} attempts: {}",
            c.index,
            c.label,
            c.attempts.len(),
            why.join("; ")
        ));
    }
    if let Some(root) = man.merkle_root {
        out(format!("merkle root of the chunk results: {root}"));
    }
    if let (Some(path), Some(hash)) = (output, man.output_hash) {
        out(format!(
            "wrote {} (sha256 of the aggregate {hash})",
            path.display()
        ));
    }
    Ok(())
}

/// Options of `stp batch resume`.
#[derive(Debug, Args)]
pub struct BatchResumeArgs {
    /// The batch id (the job id of its first chunk, as `stp batch post` printed it).
    pub id: u64,
    /// Write the aggregate output here; `.png` for a mandelbrot image.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Seconds between chain polls.
    #[arg(long, default_value_t = 1.0, value_parser = super::common::parse_poll_secs)]
    pub poll_secs: f64,
    /// libp2p options (its --data-dir must be the one that posted the batch).
    #[command(flatten)]
    pub p2p: P2pArgs,
    /// Chain, wallet and deployment options.
    #[command(flatten)]
    pub chain: ChainArgs,
}

impl BatchResumeArgs {
    /// Runs `stp batch resume`.
    pub async fn run(self) -> eyre::Result<()> {
        let man = Manifest::load(&self.p2p.data_dir, self.id)?;
        let m = self.chain.market().await?;
        if m.account() != self.consumer(&m, &man).await? {
            bail!(
                "batch {} was posted by another account: resume it with that account's key",
                self.id
            );
        }
        if self.p2p.bootstrap.is_empty() {
            tracing::warn!(
                "no --bootstrap: outputs can only be fetched from providers that connect to this node; pass a provider's address"
            );
        }
        let p2p = self.p2p.spawn().await?;
        let bar = progress(man.chunks.len(), self.json);
        bar.set_position(man.count(ChunkPhase::Verified) as u64);
        let poll = Duration::from_secs_f64(self.poll_secs.clamp(0.05, 60.0));
        let run = batch::resume(
            &m,
            &p2p,
            man,
            batch::Resume {
                poll,
                announce: !self.p2p.bootstrap.is_empty(),
            },
            &self.p2p.data_dir,
            |man, i, change| {
                show(&bar, man, i, change);
            },
        );
        let finished = until_interrupted(run, &bar, &p2p).await?;
        finish(&finished, self.output.as_deref(), self.json)
    }

    /// The consumer of the batch's first job.
    async fn consumer(
        &self,
        m: &stp_sdk::market::Market,
        man: &Manifest,
    ) -> eyre::Result<alloy::primitives::Address> {
        let a = man.chunks[0].attempts[0].clone();
        let h = m.job_history_since(a.job_id, a.post_block).await?;
        h.spec
            .map(|s| s.consumer)
            .ok_or_else(|| eyre!("job {} of batch {} is not on this chain", a.job_id, self.id))
    }
}

/// Writes the aggregate: a PNG for an image written to a `.png` path, else the raw bytes.
fn write_output(path: &Path, man: &Manifest, bytes: &[u8]) -> eyre::Result<()> {
    let png = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    let data = match (png, man.assembly.image()) {
        (true, Some((w, h))) => encode_png(w, h, bytes)?,
        (true, None) => bail!(
            "--output {} ends in .png, but {} outputs are not an image",
            path.display(),
            man.kernel
        ),
        (false, _) => bytes.to_vec(),
    };
    std::fs::write(path, data).wrap_err_with(|| format!("writing --output {}", path.display()))
}

fn progress(len: usize, hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} chunks verified {msg}")
            .unwrap_or(ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn show(bar: &ProgressBar, man: &Manifest, i: usize, change: &Change) {
    let c = &man.chunks[i];
    let line = match change {
        Change::Posted(job) => format!("posted as job {job} (attempt {})", c.attempts.len()),
        Change::Running => "running: every slot taken".to_owned(),
        Change::Verified => format!(
            "verified: result {}",
            c.result_hash.map(|h| h.to_string()).unwrap_or_default()
        ),
        Change::Retried(why) => format!("retried: {why}"),
        Change::Failed(why) => format!("failed: {why}"),
    };
    bar.println(format!("chunk {} ({}): {line}", c.index, c.label));
    bar.set_position(man.count(ChunkPhase::Verified) as u64);
    bar.set_message(format!(
        "- running {}, retried {}",
        man.count(ChunkPhase::Running),
        man.retried().count()
    ));
}

/// Options of `stp batch status`.
#[derive(Debug, Args)]
pub struct BatchStatusArgs {
    /// The batch id (the job id of its first chunk, as `stp batch post` printed it).
    pub id: u64,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Directory of the consumer that posted the batch (its records are in `batches/`).
    #[arg(long, env = "STP_CONSUMER_DIR", default_value = ".stp/consumer")]
    pub data_dir: PathBuf,
    /// Chain, wallet and deployment options.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// One chunk in `stp batch status`.
#[derive(Debug, Serialize)]
struct ChunkView<'a> {
    #[serde(flatten)]
    chunk: &'a batch::ChunkState,
    /// The current job's phase on the chain's clock.
    job_phase: Phase,
}

impl BatchStatusArgs {
    /// Runs `stp batch status`.
    pub async fn run(self) -> eyre::Result<()> {
        let man = Manifest::load(&self.data_dir, self.id)?;
        let m = self.chain.market().await?;
        let now = m.now().await?;
        let mut views = Vec::with_capacity(man.chunks.len());
        for c in &man.chunks {
            let a = c.current();
            let h = m.job_history_since(a.job_id, a.post_block).await?;
            views.push(ChunkView {
                chunk: c,
                job_phase: phase(&h, now),
            });
        }
        if self.json {
            #[derive(Serialize)]
            struct Status<'a> {
                #[serde(flatten)]
                manifest: &'a Manifest,
                chunks: Vec<ChunkView<'a>>,
            }
            return out_json(&Status {
                manifest: &man,
                chunks: views,
            });
        }
        out(format!(
            "batch {}: {} chunks of {} x{}, {} verified, {} failed",
            man.batch_id,
            man.chunks.len(),
            man.kernel,
            man.replicas,
            man.count(ChunkPhase::Verified),
            man.count(ChunkPhase::Failed)
        ));
        for v in &views {
            let c = v.chunk;
            out(format!(
                "  chunk {:>3} {:<16} {:<9} job {:>5} ({:?}), attempts {}",
                c.index,
                c.label,
                format!("{:?}", c.phase).to_lowercase(),
                c.current().job_id,
                v.job_phase,
                c.attempts.len()
            ));
        }
        if let Some(root) = man.merkle_root {
            out(format!("merkle root {root}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn tiles_parse_as_cols_by_rows() {
        assert_eq!(parse_tiles("8x8"), Ok((8, 8)));
        assert_eq!(parse_tiles("4X2"), Ok((4, 2)));
        for bad in ["8", "0x4", "ax2", "3x", ""] {
            assert!(parse_tiles(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn split_options_exclude_each_other() {
        let parse = |extra: &[&str]| {
            let mut args = vec!["stp", "batch", "post", "--kernel", "k", "--input", "f"];
            args.extend_from_slice(extra);
            crate::cli::Cli::try_parse_from(args)
        };
        assert!(parse(&["--tiles", "2x2"]).is_ok());
        assert!(parse(&["--chunks", "4", "--tiles", "2x2"]).is_err());
        assert!(parse(&["--chunks", "4", "--chunk-rows", "2"]).is_err());
    }
}
