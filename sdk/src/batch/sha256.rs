//! Splitting a `sha256-batch` input by ranges of messages.

use super::{Batch, BatchError, Result, SplitBy, ranges};
use crate::kernels::{KernelDef, sha256_batch};

/// Splits a `sha256-batch` input into ranges of messages (`Rows(r)`: `r` per chunk).
pub(super) fn split(def: &KernelDef, input: &[u8], by: SplitBy) -> Result<Batch> {
    let parsed = sha256_batch::parse(input).map_err(|source| BatchError::Input {
        kernel: def.name,
        source,
    })?;
    let len = parsed.len as usize;
    let parts = ranges::linear(parsed.count, by, def.name, "messages")?
        .into_iter()
        .map(|msgs| {
            let count = msgs.end - msgs.start;
            let data = &parsed.data[msgs.start as usize * len..msgs.end as usize * len];
            let mut chunk = Vec::with_capacity(8 + data.len());
            chunk.extend_from_slice(&count.to_le_bytes());
            chunk.extend_from_slice(&parsed.len.to_le_bytes());
            chunk.extend_from_slice(data);
            let label = format!("messages {}..{}", msgs.start, msgs.end);
            (chunk, label, count as u64 * 32)
        })
        .collect();
    Ok(Batch::concat(def.id, parts))
}
