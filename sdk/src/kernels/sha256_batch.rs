//! `sha256-batch`: SHA-256 of many messages of equal length, one message per invocation.
//!
//! Input (little-endian header): `u32 count, u32 len`, then `count` messages of `len`
//! bytes each, back to back. Output: `count` digests of 32 bytes each, in input order,
//! each the standard SHA-256 (FIPS 180-4) of its message.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

use super::reader::{Reader, grid_1d, le_words};
use super::{BindingDecl, BindingKind, BufferInit, DispatchPlan, KernelError, Result};

/// WGSL source of the kernel.
pub const WGSL: &str = include_str!("wgsl/sha256_batch.wgsl");
/// Invocations per workgroup.
pub const WORKGROUP: u32 = 64;
/// Longest accepted message: 257 blocks of 80 loop steps stay far below 65,535.
pub const MAX_MESSAGE_LEN: u32 = 16_384;
/// Most messages per job (a 2-D grid of 64-wide workgroups covers this easily).
pub const MAX_MESSAGES: u32 = 1 << 24;
/// Largest accepted total of message bytes.
pub const MAX_DATA_BYTES: u64 = 1 << 30;

/// Bindings: params (uniform), messages (read, packed bytes), digests (read_write, output).
pub const BINDINGS: &[BindingDecl] = &[
    BindingDecl {
        binding: 0,
        kind: BindingKind::Uniform,
    },
    BindingDecl {
        binding: 1,
        kind: BindingKind::StorageRead,
    },
    BindingDecl {
        binding: 2,
        kind: BindingKind::StorageReadWrite,
    },
];

/// A parsed input.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// Number of messages.
    pub count: u32,
    /// Length of each message in bytes.
    pub len: u32,
    /// All messages, back to back.
    pub data: &'a [u8],
}

impl Input<'_> {
    /// 64-byte compression blocks hashed in total (the benchmark's work unit).
    pub fn blocks(&self) -> u64 {
        self.count as u64 * blocks_per_message(self.len) as u64
    }

    /// The digest of message `index` alone, as [`cpu_reference`] computes it (sampled
    /// verification recomputes a few of them). Panics if `index >= count`.
    pub fn digest(&self, index: u32) -> [u8; 32] {
        assert!(index < self.count, "message {index} of {}", self.count);
        let (len, i) = (self.len as usize, index as usize);
        Sha256::digest(&self.data[i * len..(i + 1) * len]).into()
    }
}

/// Compression blocks of one padded message of `len` bytes.
pub fn blocks_per_message(len: u32) -> u32 {
    (len + 9).div_ceil(64)
}

/// Parses and validates an input; fails on truncated or trailing bytes.
pub fn parse(input: &[u8]) -> Result<Input<'_>> {
    let mut r = Reader::new(input);
    let (count, len) = (r.u32("message count")?, r.u32("message length")?);
    let bad = |reason: String| {
        Err(KernelError::InvalidParams {
            kernel: "sha256-batch",
            reason,
        })
    };
    if count == 0 || count > MAX_MESSAGES {
        return bad(format!(
            "message count must be 1..={MAX_MESSAGES}, got {count}"
        ));
    }
    if len > MAX_MESSAGE_LEN {
        return bad(format!(
            "message length must be at most {MAX_MESSAGE_LEN} bytes, got {len}"
        ));
    }
    let total = count as u64 * len as u64;
    if total > MAX_DATA_BYTES {
        return bad(format!(
            "messages total {total} bytes, more than {MAX_DATA_BYTES}"
        ));
    }
    let data = r.bytes("messages", total)?;
    r.finish()?;
    Ok(Input { count, len, data })
}

/// Encodes an input from messages that all have the same length.
pub fn encode_input<M: AsRef<[u8]>>(messages: &[M]) -> Result<Vec<u8>> {
    let len = messages.first().map_or(0, |m| m.as_ref().len());
    if messages.iter().any(|m| m.as_ref().len() != len) {
        let reason = "all messages must have the same length".to_owned();
        return Err(KernelError::InvalidParams {
            kernel: "sha256-batch",
            reason,
        });
    }
    let mut out = le_words(&[messages.len() as u32, len as u32]);
    for m in messages {
        out.extend_from_slice(m.as_ref());
    }
    parse(&out)?;
    Ok(out)
}

/// CPU reference (the `sha2` crate, an implementation independent of the WGSL).
pub fn cpu_reference(input: &[u8]) -> Result<Vec<u8>> {
    let Input { count, len, data } = parse(input)?;
    let mut out = Vec::with_capacity(count as usize * 32);
    if len == 0 {
        let empty = Sha256::digest([]);
        (0..count).for_each(|_| out.extend_from_slice(&empty));
    } else {
        data.chunks_exact(len as usize)
            .for_each(|m| out.extend_from_slice(&Sha256::digest(m)));
    }
    Ok(out)
}

pub(crate) fn plan<'a>(def: &'a super::KernelDef, input: &'a [u8]) -> Result<DispatchPlan<'a>> {
    let Input { count, len, data } = parse(input)?;
    let workgroups = grid_1d(count.div_ceil(WORKGROUP) as u64);
    let row_invocations = workgroups[0] * WORKGROUP;
    let output_len = count as u64 * 32;
    Ok(DispatchPlan {
        kernel: def.id,
        wgsl: Cow::Borrowed(def.wgsl),
        entry_point: Cow::Borrowed(def.entry_point),
        bindings: BINDINGS.to_vec(),
        buffers: vec![
            BufferInit::padded(
                BindingKind::Uniform,
                le_words(&[count, len, row_invocations, 0]),
            ),
            BufferInit::padded(BindingKind::StorageRead, Cow::Borrowed(data)),
            BufferInit::zeroed(BindingKind::StorageReadWrite, output_len),
        ],
        output_index: 2,
        output_len,
        workgroups,
    })
}
