//! A batch's record on the consumer's disk: which job each chunk's attempts were, how each
//! ended, and what was verified. Written after every change (to a temporary file, then
//! renamed over the old one), so a crash leaves the last whole record and
//! `stp batch status` can read it back.

use std::path::{Path, PathBuf};

use alloy::primitives::{Address, B256, U256};
use eyre::WrapErr;
use serde::{Deserialize, Serialize};
use stp_sdk::batch::Assembly;
use stp_sdk::market::JobSpec;

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

/// A re-posting being paid for and not yet recorded: on disk before the `postJobs` is sent,
/// so a consumer that crashes before it records the new jobs finds them on-chain when it
/// resumes ([`Manifest::adopt`]) instead of paying for the chunks a second time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingPost {
    /// The chain's head before the transaction was sent: its jobs are in a later block.
    pub from_block: u64,
    /// The chunks it posts, in order.
    pub chunks: Vec<u32>,
}

/// A batch whose first `postJobs` is being paid for: `batches/posting.json`, on disk
/// before the transaction is sent and removed once the batch's record is written. A
/// consumer that crashed in between finds the batch on-chain from it
/// ([`Posting::recover`]) instead of losing track of what it paid for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posting {
    /// The chain's head before the transaction was sent.
    pub from_block: u64,
    /// The batch's record to be: every field but the id, and chunks without attempts.
    pub manifest: Manifest,
}

impl Posting {
    /// Where the posting record of consumer directory `dir` is kept.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("batches").join("posting.json")
    }

    /// Writes the record (a temporary file renamed over the path).
    pub fn save(&self, dir: &Path) -> eyre::Result<()> {
        write_json(&Self::path(dir), self)
    }

    /// The record left by a `stp batch post` that did not finish, if any.
    pub fn load(dir: &Path) -> eyre::Result<Option<Self>> {
        let path = Self::path(dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .wrap_err_with(|| format!("reading {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).wrap_err_with(|| format!("reading {}", path.display())),
        }
    }

    /// Removes the record (once the batch's own record is on disk, or the post is known
    /// not to have landed).
    pub fn remove(dir: &Path) -> eyre::Result<()> {
        let path = Self::path(dir);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).wrap_err_with(|| format!("removing {}", path.display()))
            }
            _ => Ok(()),
        }
    }

    /// The batch's record if its `postJobs` landed: `posted` are the `(job id, post block,
    /// spec)` of the jobs posted since `from_block`, oldest first, and the batch is the
    /// first run of consecutive ids, one per chunk in order, each posted by `consumer` with
    /// the batch's kernel and that chunk's input hash.
    pub fn recover(&self, consumer: Address, posted: &[(u64, u64, JobSpec)]) -> Option<Manifest> {
        let chunks = &self.manifest.chunks;
        let ours = |(id, _, spec): &(u64, u64, JobSpec), first: u64, i: usize| {
            *id == first + i as u64
                && spec.consumer == consumer
                && spec.kernelId == self.manifest.kernel_id
                && spec.inputHash == chunks[i].input_hash
        };
        let start = (0..posted.len()).find(|&s| {
            posted.len() - s >= chunks.len()
                && (0..chunks.len()).all(|i| ours(&posted[s + i], posted[s].0, i))
        })?;
        let mut man = self.manifest.clone();
        man.batch_id = posted[start].0;
        for (c, (id, block, _)) in man.chunks.iter_mut().zip(&posted[start..]) {
            c.phase = ChunkPhase::Posted;
            c.attempts = vec![Attempt {
                job_id: *id,
                post_block: *block,
                failed: None,
            }];
        }
        Some(man)
    }
}

/// Writes `value` as JSON to `path`: to a temporary file, synced, then renamed over it.
fn write_json(path: &Path, value: &impl Serialize) -> eyre::Result<()> {
    let parent = path.parent().expect("a batch record has a directory");
    std::fs::create_dir_all(parent).wrap_err_with(|| format!("creating {}", parent.display()))?;
    let tmp = path.with_extension("json.tmp");
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut file, &serde_json::to_vec_pretty(value)?)?;
        // On disk before it replaces the old record: a power cut leaves one or the other.
        file.sync_all()
    };
    write().wrap_err_with(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).wrap_err_with(|| format!("writing {}", path.display()))
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
    /// A re-posting sent but not yet recorded (see [`PendingPost`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_post: Option<PendingPost>,
}

impl Manifest {
    /// The record of batch `id` in the consumer's directory `dir`.
    pub fn path(dir: &Path, id: u64) -> PathBuf {
        dir.join("batches").join(format!("{id}.json"))
    }

    /// Writes the record (a temporary file renamed over the old one).
    pub fn save(&self, dir: &Path) -> eyre::Result<()> {
        write_json(&Self::path(dir, self.batch_id), self)
    }

    /// Takes the batch's lock (`<id>.lock` beside its record) for as long as the returned
    /// file is open: only one process follows a batch, and pays for its re-posts, at a time.
    pub fn lock(&self, dir: &Path) -> eyre::Result<std::fs::File> {
        let path = Self::path(dir, self.batch_id).with_extension("lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .wrap_err_with(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => eyre::bail!(
                "batch {} is being followed by another process (it holds {}): let that one finish, or stop it before resuming",
                self.batch_id,
                path.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(e).wrap_err_with(|| format!("locking {}", path.display()))
            }
        }
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

    /// Takes up the jobs of the pending re-posting from `posted`, the `(job id, post block,
    /// spec)` of every job posted since its `from_block`, oldest first: each pending chunk
    /// adopts the first job that is not one of its attempts already and whose spec is its
    /// own (posted by `consumer`, this batch's kernel, the chunk's input hash); a job is
    /// adopted once. Clears the pending record and returns the chunks that adopted a job;
    /// the others were not posted and are posted again as their failed attempt requires.
    pub fn adopt(&mut self, consumer: Address, posted: &[(u64, u64, JobSpec)]) -> Vec<u32> {
        let Some(pending) = self.pending_post.take() else {
            return Vec::new();
        };
        let mut taken = std::collections::HashSet::new();
        let mut adopted = Vec::new();
        for index in pending.chunks {
            let Some(c) = self.chunks.iter_mut().find(|c| c.index == index) else {
                continue;
            };
            let found = posted.iter().find(|(id, _, spec)| {
                !taken.contains(id)
                    && !c.attempts.iter().any(|a| a.job_id == *id)
                    && spec.consumer == consumer
                    && spec.kernelId == self.kernel_id
                    && spec.inputHash == c.input_hash
            });
            if let Some((id, block, _)) = found {
                taken.insert(*id);
                c.attempts.push(Attempt {
                    job_id: *id,
                    post_block: *block,
                    failed: None,
                });
                c.phase = ChunkPhase::Posted;
                adopted.push(index);
            }
        }
        adopted
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
            pending_post: None,
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
    fn only_one_process_follows_a_batch_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let man = manifest();
        man.save(dir.path()).unwrap();
        let held = man.lock(dir.path()).unwrap();
        let err = man.lock(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("batch 3 is being followed by another process"),
            "{err}"
        );
        drop(held);
        man.lock(dir.path())
            .expect("free again once the holder is gone");
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

    fn posted(id: u64, consumer: Address, kernel: B256, input: u8) -> (u64, u64, JobSpec) {
        let spec = JobSpec {
            consumer,
            kernelId: kernel,
            inputHash: B256::repeat_byte(input),
            inputSize: 0,
            maxOutputSize: 0,
            bounty: Default::default(),
            collateral: Default::default(),
            replicas: 1,
            quorum: 1,
            minReputation: 0,
            commitDeadline: Default::default(),
            revealDeadline: Default::default(),
            inputLocation: Default::default(),
        };
        (id, id + 100, spec)
    }

    /// A consumer crashed between paying for a re-posting and recording it: on resume each
    /// pending chunk takes up its own job (matched by consumer, kernel and input), a job
    /// another consumer posted with the same input is not taken, a job already an attempt is
    /// not taken twice, and a chunk whose job never landed is left to be posted again.
    #[test]
    fn a_pending_reposting_adopts_its_own_jobs_once_after_a_crash() {
        let mut man = manifest();
        let me = Address::repeat_byte(0xc0);
        let other = Address::repeat_byte(0xee);
        let k = man.kernel_id;
        man.chunks[1].attempts[0].failed = Some("unfilled".into());
        man.pending_post = Some(PendingPost {
            from_block: 40,
            chunks: vec![0, 1],
        });
        let dir = tempfile::tempdir().unwrap();
        man.save(dir.path()).unwrap();
        let mut back = Manifest::load(dir.path(), 3).unwrap();
        assert_eq!(
            back.pending_post, man.pending_post,
            "the pending record is kept"
        );
        let on_chain = [
            posted(5, me, k, 0),          // chunk 0's current attempt: not taken again
            posted(8, other, k, 1),       // another consumer's job with chunk 1's input
            posted(9, me, B256::ZERO, 1), // another kernel
            posted(10, me, k, 1),         // chunk 1's re-posting
        ];
        let adopted = back.adopt(me, &on_chain);
        assert_eq!(adopted, [1], "only chunk 1's job landed");
        assert_eq!(back.chunks[1].current().job_id, 10);
        assert_eq!(back.chunks[1].current().post_block, 110);
        assert_eq!(back.chunks[1].phase, ChunkPhase::Posted);
        assert_eq!(back.chunks[0].attempts.len(), 2, "chunk 0 unchanged");
        assert!(back.pending_post.is_none(), "cleared");
        assert!(
            back.adopt(me, &on_chain).is_empty(),
            "nothing pending any more"
        );
    }

    /// A consumer crashed between paying for a batch's first postJobs and writing its
    /// record: the next run finds the batch on-chain from the posting record (a run of
    /// consecutive jobs of its own with the chunks' inputs, in order), not a lookalike
    /// posted by someone else nor one with its chunks out of order.
    #[test]
    fn a_batch_paid_for_but_not_recorded_is_found_on_chain() {
        let dir = tempfile::tempdir().unwrap();
        let mut template = manifest();
        template.batch_id = 0;
        for c in &mut template.chunks {
            c.attempts.clear();
        }
        let posting = Posting {
            from_block: 40,
            manifest: template,
        };
        posting.save(dir.path()).unwrap();
        let back = Posting::load(dir.path()).unwrap().expect("kept");
        assert_eq!(back, posting);
        let me = Address::repeat_byte(0xc0);
        let other = Address::repeat_byte(0xee);
        let k = posting.manifest.kernel_id;
        let on_chain = [
            posted(6, other, k, 0), // someone else's jobs with the same inputs
            posted(7, other, k, 1),
            posted(8, me, k, 1), // ours, out of order
            posted(9, me, k, 0),
            posted(10, me, k, 0), // the batch
            posted(11, me, k, 1),
        ];
        let man = back.recover(me, &on_chain).expect("found");
        assert_eq!(man.batch_id, 10);
        let jobs: Vec<u64> = man.chunks.iter().map(|c| c.current().job_id).collect();
        assert_eq!(jobs, [10, 11]);
        assert!(back.recover(me, &on_chain[..5]).is_none(), "not landed");
        man.save(dir.path()).unwrap();
        assert_eq!(
            Manifest::load(dir.path(), 10).unwrap(),
            man,
            "a whole record"
        );
        Posting::remove(dir.path()).unwrap();
        assert!(Posting::load(dir.path()).unwrap().is_none());
        Posting::remove(dir.path()).expect("removing nothing is fine");
    }

    #[test]
    fn a_missing_record_says_where_it_looked() {
        let dir = tempfile::tempdir().unwrap();
        let err = Manifest::load(dir.path(), 9).unwrap_err().to_string();
        assert!(err.contains("no record of batch 9"), "{err}");
        assert!(err.contains("--data-dir"), "{err}");
    }
}
