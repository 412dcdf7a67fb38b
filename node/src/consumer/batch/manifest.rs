//! A batch's record on the consumer's disk: which job each chunk's attempts were, how each
//! ended, and what was verified. Written after every change (to a temporary file, then
//! renamed over the old one), so a crash leaves the last whole record and
//! `stp batch status` can read it back.

use std::path::{Path, PathBuf};

use alloy::primitives::{B256, U256};
use eyre::WrapErr;
use serde::{Deserialize, Serialize};
use stp_sdk::batch::Assembly;

/// Where a chunk stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChunkPhase {
    /// Its latest attempt is posted; providers are drawn and fetch its input.
    Posted,
    /// Every slot of its latest attempt is taken: replicas compute, commit and reveal.
    Running,
    /// Its agreed output was fetched, matched the on-chain hash and passed the check.
    Verified,
    /// Every attempt failed; the batch cannot complete.
    Failed,
}

/// One posting of a chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// The job.
    pub job_id: u64,
    /// The block it was posted in (where following it starts).
    pub post_block: u64,
    /// Why it did not give the chunk's output, once it ended without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// One chunk of the batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkState {
    /// Its position in the batch (and in the aggregate).
    pub index: u32,
    /// What part of the workload it is, e.g. `tile 2,3`.
    pub label: String,
    /// SHA-256 of its input.
    pub input_hash: B256,
    /// Where it stands.
    pub phase: ChunkPhase,
    /// Its postings, oldest first; the last one is current.
    pub attempts: Vec<Attempt>,
    /// The agreed, verified result hash (once verified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_hash: Option<B256>,
    /// SHA-256 of its verified output, kept in the consumer's blob store (once verified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_blob: Option<B256>,
}

impl ChunkState {
    /// The current attempt.
    pub fn current(&self) -> &Attempt {
        self.attempts
            .last()
            .expect("a chunk has at least one attempt")
    }
}

/// A batch: its chunks, how they aggregate and what came out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The batch's id: the job id of its first chunk's first attempt.
    pub batch_id: u64,
    /// The kernel every chunk runs.
    pub kernel_id: B256,
    /// Its short name (`custom` for custom kernels).
    pub kernel: String,
    /// Replicas per chunk.
    pub replicas: u8,
    /// Bounty per chunk attempt, in wei (token units in ERC-20 mode).
    pub bounty_per_chunk: U256,
    /// Collateral each replica locks, in wei (token units in ERC-20 mode).
    pub collateral: U256,
    /// Minimum reputation score of a replica.
    pub min_reputation: u32,
    /// Commit window asked for (seconds; the chain's safe default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_secs: Option<u64>,
    /// Reveal window asked for (seconds; the chain's safe default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reveal_secs: Option<u64>,
    /// Whether each chunk's output is checked against its input.
    pub verify: bool,
    /// Postings a chunk may use before the batch gives up on it.
    pub max_attempts: u32,
    /// How the chunks' outputs aggregate.
    pub assembly: Assembly,
    /// The chunks, in order.
    pub chunks: Vec<ChunkState>,
    /// Merkle root of the chunks' result hashes (`stp_sdk::batch::merkle`), once all are
    /// verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merkle_root: Option<B256>,
    /// SHA-256 of the aggregate output, once assembled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_hash: Option<B256>,
}

impl Manifest {
    /// The record of batch `id` in the consumer's directory `dir`.
    pub fn path(dir: &Path, id: u64) -> PathBuf {
        dir.join("batches").join(format!("{id}.json"))
    }

    /// Writes the record (a temporary file renamed over the old one).
    pub fn save(&self, dir: &Path) -> eyre::Result<()> {
        let path = Self::path(dir, self.batch_id);
        let parent = path.parent().expect("a batch record has a directory");
        std::fs::create_dir_all(parent)
            .wrap_err_with(|| format!("creating {}", parent.display()))?;
        let tmp = path.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut file, &serde_json::to_vec_pretty(self)?)?;
            // On disk before it replaces the old record: a power cut leaves one or the other.
            file.sync_all()
        };
        write().wrap_err_with(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).wrap_err_with(|| format!("writing {}", path.display()))
    }

    /// Reads the record of batch `id` from `dir`.
    pub fn load(dir: &Path, id: u64) -> eyre::Result<Self> {
        let path = Self::path(dir, id);
        let bytes = std::fs::read(&path).wrap_err_with(|| {
            format!(
                "no record of batch {id} at {} (batches are recorded by the consumer that posted them: pass its --data-dir)",
                path.display()
            )
        })?;
        let man: Self = serde_json::from_slice(&bytes)
            .wrap_err_with(|| format!("reading {}", path.display()))?;
        let whole = !man.chunks.is_empty()
            && man.chunks.iter().all(|c| !c.attempts.is_empty())
            && man.assembly.chunk_count() == man.chunks.len();
        if !whole {
            eyre::bail!(
                "{} is not a whole batch record (no chunks, a chunk without an attempt, or chunks that do not match its assembly)",
                path.display()
            );
        }
        Ok(man)
    }

    /// Chunks that needed more than one attempt.
    pub fn retried(&self) -> impl Iterator<Item = &ChunkState> {
        self.chunks.iter().filter(|c| c.attempts.len() > 1)
    }

    /// How many chunks are in `phase`.
    pub fn count(&self, phase: ChunkPhase) -> usize {
        self.chunks.iter().filter(|c| c.phase == phase).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stp_sdk::batch::{SplitBy, split};
    use stp_sdk::kernels::find_kernel;

    fn manifest() -> Manifest {
        let kernel = find_kernel("sha256-batch").unwrap().id;
        let mut input = Vec::new();
        input.extend_from_slice(&5u32.to_le_bytes());
        input.extend_from_slice(&4u32.to_le_bytes());
        input.extend_from_slice(&[7u8; 20]);
        let batch = split(&kernel, &input, SplitBy::Chunks(2)).unwrap();
        let chunk = |index: u32, attempts: Vec<Attempt>| ChunkState {
            index,
            label: batch.chunks[index as usize].label.clone(),
            input_hash: B256::repeat_byte(index as u8),
            phase: ChunkPhase::Posted,
            attempts,
            result_hash: None,
            output_blob: None,
        };
        let attempt = |job_id, failed: Option<&str>| Attempt {
            job_id,
            post_block: job_id + 10,
            failed: failed.map(str::to_owned),
        };
        Manifest {
            batch_id: 3,
            kernel_id: B256::from(kernel.0),
            kernel: "sha256-batch".into(),
            replicas: 3,
            bounty_per_chunk: U256::from(1_000u64),
            collateral: U256::ZERO,
            min_reputation: 0,
            commit_secs: Some(30),
            reveal_secs: None,
            verify: true,
            max_attempts: 3,
            assembly: batch.assembly.clone(),
            chunks: vec![
                chunk(0, vec![attempt(3, Some("no quorum")), attempt(5, None)]),
                chunk(1, vec![attempt(4, None)]),
            ],
            merkle_root: None,
            output_hash: None,
        }
    }

    #[test]
    fn a_record_reads_back_as_written_and_counts_its_retries() {
        let dir = tempfile::tempdir().unwrap();
        let man = manifest();
        man.save(dir.path()).unwrap();
        let back = Manifest::load(dir.path(), 3).unwrap();
        assert_eq!(back, man);
        assert_eq!(back.chunks[0].current().job_id, 5);
        assert_eq!(back.retried().map(|c| c.index).collect::<Vec<_>>(), [0]);
        assert_eq!(back.count(ChunkPhase::Posted), 2);
        // Rewriting leaves no temporary file behind.
        man.save(dir.path()).unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path().join("batches"))
            .unwrap()
            .collect();
        assert_eq!(files.len(), 1);
    }

    #[test]
    fn a_broken_record_is_refused_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let mut man = manifest();
        man.chunks[1].attempts.clear();
        man.save(dir.path()).unwrap();
        let err = Manifest::load(dir.path(), 3).unwrap_err().to_string();
        assert!(err.contains("not a whole batch record"), "{err}");
        let mut man = manifest();
        man.chunks.pop();
        man.save(dir.path()).unwrap();
        assert!(
            Manifest::load(dir.path(), 3).is_err(),
            "fewer chunks than its assembly"
        );
    }

    #[test]
    fn a_missing_record_says_where_it_looked() {
        let dir = tempfile::tempdir().unwrap();
        let err = Manifest::load(dir.path(), 9).unwrap_err().to_string();
        assert!(err.contains("no record of batch 9"), "{err}");
        assert!(err.contains("--data-dir"), "{err}");
    }
}
