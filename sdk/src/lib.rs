//! # stp-sdk
//!
//! The library every ShareThePower tool builds on: consumers use it to post jobs and
//! verify outputs, and the provider node (`stp-node`) uses it for everything that must
//! agree byte for byte between the two sides.
//!
//! - [`bindings`]: typed alloy bindings generated from the forge artifacts of the
//!   contracts, so Rust and Solidity cannot drift apart silently.
//! - [`market`]: the on-chain operations of consumers and providers, views, event scans
//!   and decoded contract errors.
//! - [`kernels`]: deterministic compute kernels (WGSL + CPU references), kernel ids and
//!   input/output byte layouts, so a consumer can verify any result without a GPU.
//! - [`model`]: quantized integer-only models (`.stpm`): a small graph format, its ops'
//!   CPU references and WGSL kernels, bit-identical on every backend.
//! - [`batch`]: workloads split into chunk jobs of one kernel, the chunks' outputs
//!   assembled into the whole (a PNG for images), and a Merkle root over their results.
//! - [`verify`]: checks of a returned output that cost far less than recomputing it
//!   (Freivalds for the matmuls, sampled recomputation for the others) and their receipts.
//! - [`p2p`]: wire types shared with the provider network (job announcements, provider
//!   records, blob manifests).
//!
//! ## Example: post a job, wait for its outcome, check the result
//!
//! ```no_run
//! use alloy::primitives::{B256, Bytes, aliases::{U40, U96}, utils::parse_ether};
//! use stp_sdk::kernels::{cpu_reference, find_kernel};
//! use stp_sdk::market::{Deployment, JobSpec, Market, Outcome};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let signer = std::env::var("STP_PRIVATE_KEY")?.parse()?;
//! let deployment = Deployment::load("deployments/31337.json".as_ref())?;
//! let market = Market::connect("http://127.0.0.1:8545", signer, deployment).await?;
//!
//! let kernel = find_kernel("matmul-u32")?;
//! let input = std::fs::read("in.bin")?;
//! let expected = cpu_reference(&kernel.id, &input)?; // what honest GPUs must return
//! let now = market.now().await?;
//! let spec = JobSpec {
//!     consumer: market.account(),
//!     kernelId: B256::from(kernel.id.0),
//!     inputHash: B256::from(stp_sdk::p2p::input_hash(&input)), // BLAKE3
//!     inputSize: input.len() as u64,
//!     maxOutputSize: expected.len() as u64,
//!     bounty: U96::saturating_from(parse_ether("0.03")?),
//!     collateral: U96::saturating_from(parse_ether("0.1")?),
//!     replicas: 3,
//!     quorum: 2, // the strict majority of 3
//!     minReputation: 0,
//!     // Windows the market allows (its minimums: `market.windows()`).
//!     commitDeadline: U40::from(now + 180),
//!     revealDeadline: U40::from(now + 240),
//!     // Where providers fetch the input: multiaddrs of a libp2p node serving it
//!     // (`stp job post` runs one for you).
//!     inputLocation: Bytes::from_static(b"/ip4/127.0.0.1/tcp/4001/p2p/12D3KooW..."),
//! };
//! let job_id = market.post_job(spec).await?.job_id;
//! let (outcome, result_hash) = loop {
//!     if let Some(done) = market.job_history(job_id).await?.outcome {
//!         break done;
//!     }
//!     tokio::time::sleep(std::time::Duration::from_secs(1)).await;
//! };
//! assert_eq!(outcome, Outcome::Completed);
//! // The replicas agreed on sha256(job identity ++ output): the result blob fetched from any
//! // of them must hash to it, and here its output also equals the local CPU reference.
//! assert_eq!(result_hash, market.result_domain(job_id).result_hash(&expected));
//! # Ok(())
//! # }
//! ```

pub mod batch;
pub mod bindings;
pub mod kernels;
pub mod market;
pub mod model;
pub mod p2p;
pub mod verify;
