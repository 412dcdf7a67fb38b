//! `stp job post --optimistic` (and `--verify`): the consumer's side of an optimistic job.
//! Its one replica's output is fetched as soon as it committed, checked against the input,
//! and challenged if the check fails; the escalation's verdict is reported with the
//! verification receipt.

use std::path::Path;
use std::time::Duration;

use alloy::primitives::U256;
use clap::ValueEnum;
use eyre::{WrapErr, bail};
use serde::Serialize;
use stp_sdk::kernels::{KernelId, kernel_name};
use stp_sdk::market::{Challenge, JobHistory, Market, Outcome};

use super::common::{format_amount, out, out_json, unit};
use super::job_post::{PostArgs, Posted};
use super::receipt::Receipt;
use crate::consumer::{self, Order, optimistic};
use crate::p2p::P2pClient;

/// How `stp job post` checks an output against its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VerifyMode {
    /// The kernel's own check (none for custom kernels).
    Auto,
    /// Freivalds' check (matmul-u32, matmul-i8).
    Freivalds,
    /// Sampled recomputation (sha256-batch, mandelbrot-fixed, model jobs).
    Sample,
    /// No check: only the replicas' hash agreement.
    None,
}

/// The challenge of an optimistic job, as `--json` reports it.
#[derive(Debug, Serialize)]
pub struct ChallengeReport {
    /// The escalation job the challenge posted.
    escalation_id: u64,
    /// The bond escrowed.
    #[serde(serialize_with = "super::common::ser_wei")]
    bond: U256,
    /// How the challenged job ended.
    outcome: Outcome,
}

impl PostArgs {
    /// Whether the output is checked against the input.
    pub(super) fn checks(&self) -> bool {
        !self.no_check && self.verify != VerifyMode::None
    }

    /// Refuses a `--verify` method the kernel has no check of.
    pub(super) fn verify_mode_fits(&self, kernel: &KernelId) -> eyre::Result<()> {
        let name = kernel_name(kernel);
        let fits = match self.verify {
            VerifyMode::Auto | VerifyMode::None => true,
            VerifyMode::Freivalds => matches!(&*name, "matmul-u32" | "matmul-i8"),
            VerifyMode::Sample => {
                self.model.is_some() || matches!(&*name, "sha256-batch" | "mandelbrot-fixed")
            }
        };
        if !fits {
            bail!(
                "--verify {:?} does not apply to kernel {name}: Freivalds checks matmul-u32 and matmul-i8, sampling checks sha256-batch, mandelbrot-fixed and models (use --verify auto)",
                self.verify
            );
        }
        if self.optimistic && !self.checks() {
            tracing::warn!(
                "an optimistic job whose output is not checked is never challenged: its one replica's result is taken as it is"
            );
        }
        Ok(())
    }

    /// Follows optimistic job `job` after its post: the claimed output, its check, and a
    /// challenge when the check fails.
    pub(super) async fn follow_optimistic(
        &self,
        m: &Market,
        p2p: &P2pClient,
        order: &Order,
        job: &consumer::Posted,
        mut posted: Posted,
    ) -> eyre::Result<()> {
        let poll = Duration::from_secs_f64(self.poll_secs.clamp(0.05, 60.0));
        let h = self
            .follow(m, p2p, &job.spec, (job.job_id, job.post_block), false)
            .await?;
        if let Some((outcome, _)) = h.outcome {
            posted.outcome = Some(outcome);
            return self.report(posted, &format!("job {} ended: {outcome:?}", job.job_id));
        }
        let (hash, output) = optimistic::fetch_claimed(m, p2p, &h).await?;
        self.say(format!(
            "fetched the claimed output of job {} (result {hash})",
            job.job_id
        ));
        let verdict = match self.checks() {
            true => Some(optimistic::judge(
                job.job_id,
                &order.kernel,
                &order.input,
                &output,
            )?),
            false => None,
        };
        let mut receipt = Receipt::of(&h, hash, verdict.clone());
        posted.check = verdict.clone();
        match verdict {
            Some(v) if !v.passed() && v.outcome != stp_sdk::verify::Outcome::NotChecked => {
                self.say(format!("check FAILED: {v}; challenging job {}", job.job_id));
                let (c, settled, corrected) = self.challenge(m, p2p, &h, job.post_block).await?;
                posted.outcome = settled.outcome.map(|(o, _)| o);
                posted.challenge = Some(ChallengeReport {
                    escalation_id: c.escalation_id,
                    bond: c.bond,
                    outcome: posted.outcome.unwrap_or(Outcome::Completed),
                });
                if let Some(right) = corrected {
                    receipt.result_hash = right.hash;
                    receipt.escalation_agreeing = Some(right.agreeing);
                    self.write_output(&right.output)?;
                    posted.result_hash = Some(right.hash);
                }
            }
            _ => {
                self.write_output(&output)?;
                posted.result_hash = Some(hash);
                if self.wait {
                    let done =
                        consumer::follow(m, (job.job_id, job.post_block), true, poll, |_| {})
                            .await?;
                    posted.outcome = done.outcome.map(|(o, _)| o);
                }
            }
        }
        posted.output = self.output.clone();
        self.say(format!("receipt: {receipt}"));
        posted.receipt = Some(receipt);
        let ended = posted.outcome.map_or(String::new(), |o| {
            format!("job {} ended: {o:?}", job.job_id)
        });
        self.report(posted, &ended)
    }

    /// Challenges `h`, follows its escalation to the end and fetches the corrected output
    /// if the escalation overturned the claimed one.
    async fn challenge(
        &self,
        m: &Market,
        p2p: &P2pClient,
        h: &JobHistory,
        post_block: u64,
    ) -> eyre::Result<(Challenge, JobHistory, Option<optimistic::Corrected>)> {
        let (c, from) = optimistic::challenge(m, h).await?;
        self.say(format!(
            "challenged job {} (tx {}): escalation job {} recomputes it; bond {} {}",
            c.job_id,
            c.tx,
            c.escalation_id,
            format_amount(c.bond),
            unit(m.deployment())
        ));
        let poll = Duration::from_secs_f64(self.poll_secs.clamp(0.05, 60.0));
        let settled = optimistic::follow_escalation(m, &c, (from, post_block), poll, |p| {
            tracing::debug!(%p, "escalation");
        })
        .await?;
        let corrected = optimistic::fetch_corrected(m, p2p, &c, &settled, from).await?;
        match settled.outcome {
            Some((Outcome::Overturned, right)) => self.say(format!(
                "job {} overturned: the escalation's quorum computed {right}; its replica was slashed, the bounty and the bond are credited back (`stp payout claim`)",
                c.job_id
            )),
            Some((outcome, _)) => self.say(format!(
                "job {} stands ({outcome:?}): the escalation did not overturn it; the bond paid the escalation's replicas",
                c.job_id
            )),
            None => {}
        }
        Ok((c, settled, corrected))
    }

    fn write_output(&self, output: &[u8]) -> eyre::Result<()> {
        let Some(path) = &self.output else {
            return Ok(());
        };
        std::fs::write(path, output).wrap_err_with(|| format!("writing {}", path.display()))?;
        self.say(format!("wrote {}", Path::new(path).display()));
        Ok(())
    }

    fn say(&self, line: String) {
        if !self.json {
            out(line);
        }
    }

    fn report(&self, posted: Posted, line: &str) -> eyre::Result<()> {
        if self.json {
            return out_json(&posted);
        }
        if !line.is_empty() {
            out(line);
        }
        Ok(())
    }
}
