//! Content-addressed parts: a job input that references shared blobs by hash instead of
//! carrying them, so data every chunk of a batch needs (the B of every matmul row block)
//! travels to each provider once and is cached by hash across chunks and jobs.
//!
//! A parts input is what the job's `inputHash` names and what providers fetch first; the
//! kernel runs on its *resolved* input: the segments concatenated in order, each blob
//! fetched by (and checked against) its BLAKE3 hash ([`crate::p2p::input_hash`]) and size.
//!
//! Layout (little-endian):
//!
//! ```text
//! "STPPART1"                     8 bytes
//! u32 count                      1..=MAX_SEGMENTS
//! count x segment:
//!   u8 0, u32 len, len bytes     inline bytes
//!   u8 1, [u8; 32] blake3, u64 size   a blob, fetched by hash
//! ```
//!
//! Nothing may follow the last segment, and the resolved input is at most
//! [`MAX_RESOLVED`] bytes, so a provider knows the whole cost from the small parts input
//! before it fetches any blob.

use super::{Batch, Chunk};
use crate::kernels::{Builtin, builtin, matmul_i8, matmul_u32};
use crate::model::job;
use crate::p2p::input_hash;

/// The first bytes of a parts input.
pub const MAGIC: &[u8; 8] = b"STPPART1";
/// Most segments in one parts input.
pub const MAX_SEGMENTS: u32 = 64;
/// Largest resolved input, in bytes (1 GiB).
pub const MAX_RESOLVED: u64 = 1 << 30;

/// Why a parts input is not valid, or does not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartsError {
    /// Truncated, trailing bytes, an unknown segment kind or a count out of range.
    #[error("malformed parts input: {0}")]
    Malformed(String),
    /// The resolved input would be larger than [`MAX_RESOLVED`].
    #[error("the parts resolve to {size} bytes, more than the {MAX_RESOLVED}-byte limit")]
    TooLarge {
        /// Declared resolved size.
        size: u64,
    },
    /// A blob is not at hand (not cached and not fetched).
    #[error("part {} ({size} bytes) is not available", hex(hash))]
    Missing {
        /// Its SHA-256.
        hash: [u8; 32],
        /// Its declared size.
        size: u64,
    },
    /// A blob's bytes do not match its hash or declared size.
    #[error(
        "part {} does not match its hash and size ({size} bytes declared, {actual} got)",
        hex(hash)
    )]
    Mismatch {
        /// Its SHA-256.
        hash: [u8; 32],
        /// Its declared size.
        size: u64,
        /// Size of the bytes at hand.
        actual: u64,
    },
}

fn hex(hash: &[u8; 32]) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// One segment of a parts input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment<'a> {
    /// Bytes carried in the parts input itself.
    Inline(&'a [u8]),
    /// A blob fetched by its SHA-256.
    Blob {
        /// Its SHA-256.
        hash: [u8; 32],
        /// Its size in bytes.
        size: u64,
    },
}

/// True if `input` starts like a parts input.
pub fn is_parts(input: &[u8]) -> bool {
    input.starts_with(MAGIC)
}

/// Encodes `segments` as a parts input.
pub fn encode(segments: &[Segment<'_>]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&(segments.len() as u32).to_le_bytes());
    for s in segments {
        match s {
            Segment::Inline(bytes) => {
                out.push(0);
                out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
                out.extend_from_slice(bytes);
            }
            Segment::Blob { hash, size } => {
                out.push(1);
                out.extend_from_slice(hash);
                out.extend_from_slice(&size.to_le_bytes());
            }
        }
    }
    out
}

/// Decodes and bounds-checks a parts input.
pub fn decode(input: &[u8]) -> Result<Vec<Segment<'_>>, PartsError> {
    let bad = |why: &str| PartsError::Malformed(why.to_owned());
    let rest = input
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("no STPPART1 header"))?;
    let (count, mut rest) = take::<4>(rest).ok_or_else(|| bad("truncated count"))?;
    let count = u32::from_le_bytes(count);
    if count == 0 || count > MAX_SEGMENTS {
        return Err(bad(&format!(
            "{count} segments (1..={MAX_SEGMENTS} allowed)"
        )));
    }
    let mut segments = Vec::with_capacity(count as usize);
    let mut total = 0u64;
    for i in 0..count {
        let (&kind, after) = rest.split_first().ok_or_else(|| bad("truncated segment"))?;
        let (segment, after) = match kind {
            0 => {
                let (len, after) = take::<4>(after).ok_or_else(|| bad("truncated length"))?;
                let len = u32::from_le_bytes(len) as usize;
                if after.len() < len {
                    return Err(bad(&format!("segment {i} is cut short")));
                }
                let (bytes, after) = after.split_at(len);
                (Segment::Inline(bytes), after)
            }
            1 => {
                let (hash, after) = take::<32>(after).ok_or_else(|| bad("truncated hash"))?;
                let (size, after) = take::<8>(after).ok_or_else(|| bad("truncated size"))?;
                let size = u64::from_le_bytes(size);
                (Segment::Blob { hash, size }, after)
            }
            k => return Err(bad(&format!("segment {i} has unknown kind {k}"))),
        };
        total = total.saturating_add(match segment {
            Segment::Inline(b) => b.len() as u64,
            Segment::Blob { size, .. } => size,
        });
        segments.push(segment);
        rest = after;
    }
    if !rest.is_empty() {
        return Err(bad(&format!("{} bytes after the last segment", rest.len())));
    }
    if total > MAX_RESOLVED {
        return Err(PartsError::TooLarge { size: total });
    }
    Ok(segments)
}

fn take<const N: usize>(b: &[u8]) -> Option<([u8; N], &[u8])> {
    let head = b.get(..N)?;
    Some((head.try_into().ok()?, &b[N..]))
}

/// The size of the resolved input (inline bytes plus declared blob sizes).
pub fn resolved_len(segments: &[Segment<'_>]) -> u64 {
    segments
        .iter()
        .map(|s| match s {
            Segment::Inline(b) => b.len() as u64,
            Segment::Blob { size, .. } => *size,
        })
        .sum()
}

/// The blobs `segments` reference, in order: (SHA-256, size).
pub fn blobs(segments: &[Segment<'_>]) -> Vec<([u8; 32], u64)> {
    segments
        .iter()
        .filter_map(|s| match s {
            Segment::Blob { hash, size } => Some((*hash, *size)),
            Segment::Inline(_) => None,
        })
        .collect()
}

/// The distinct blobs a parts input references, in order of first reference: what a job
/// announcement carries as its part hints. Empty for an input that is not a parts input
/// (or not a valid one).
pub fn referenced(input: &[u8]) -> Vec<[u8; 32]> {
    let Ok(segments) = decode(input) else {
        return Vec::new();
    };
    let mut out: Vec<[u8; 32]> = Vec::new();
    for (hash, _) in blobs(&segments) {
        if !out.contains(&hash) {
            out.push(hash);
        }
    }
    out
}

/// The resolved input: every segment in order, each blob taken from `blob(hash)` and
/// checked against its hash and size.
pub fn resolve(
    segments: &[Segment<'_>],
    mut blob: impl FnMut(&[u8; 32]) -> Option<Vec<u8>>,
) -> Result<Vec<u8>, PartsError> {
    let mut out = Vec::new();
    for s in segments {
        match *s {
            Segment::Inline(bytes) => out.extend_from_slice(bytes),
            Segment::Blob { hash, size } => {
                let bytes = blob(&hash).ok_or(PartsError::Missing { hash, size })?;
                if bytes.len() as u64 != size || input_hash(&bytes) != hash {
                    return Err(PartsError::Mismatch {
                        hash,
                        size,
                        actual: bytes.len() as u64,
                    });
                }
                out.extend_from_slice(&bytes);
            }
        }
    }
    Ok(out)
}

/// A batch whose chunks reference shared data by hash.
#[derive(Debug, Clone)]
pub struct Shared {
    /// Each chunk's parts input (what its job posts), in chunk order.
    pub inputs: Vec<Vec<u8>>,
    /// The shared blobs, each once (serve them before posting).
    pub blobs: Vec<Vec<u8>>,
}

/// Factors the data every chunk of `batch` carries out into shared blobs: for the matmul
/// kernels, B (each chunk becomes its header and rows of A inline, plus B by hash); for a
/// model batch, the model file.
/// `None` for kernels whose chunks share nothing, or a batch of one chunk.
pub fn share(batch: &Batch) -> Option<Shared> {
    if batch.chunks.len() < 2 {
        return None;
    }
    if batch.chunks.iter().all(|c| job::is_model_job(&c.input)) {
        return share_model(batch);
    }
    let def = builtin(&batch.kernel)?;
    let b_len = |c: &Chunk| match def.builtin {
        Builtin::MatmulU32 => matmul_u32::parse(&c.input).ok().map(|i| i.b.len()),
        Builtin::MatmulI8 => matmul_i8::parse(&c.input).ok().map(|i| i.b.len()),
        Builtin::Sha256Batch | Builtin::Mandelbrot => None,
    };
    let first = &batch.chunks[0];
    let len = b_len(first)?;
    let shared = &first.input[first.input.len() - len..];
    let hash = input_hash(shared);
    let mut inputs = Vec::with_capacity(batch.chunks.len());
    for c in &batch.chunks {
        let (own, tail) = c.input.split_at(c.input.len() - b_len(c)?);
        if tail != shared {
            return None;
        }
        inputs.push(encode(&[
            Segment::Inline(own),
            Segment::Blob {
                hash,
                size: len as u64,
            },
        ]));
    }
    Some(Shared {
        inputs,
        blobs: vec![shared.to_vec()],
    })
}

/// A model batch's chunks with the model file as one blob (header and samples inline).
fn share_model(batch: &Batch) -> Option<Shared> {
    let (model, _) = job::split(&batch.chunks[0].input)?;
    let (hash, size) = (input_hash(model), model.len() as u64);
    let mut inputs = Vec::with_capacity(batch.chunks.len());
    for c in &batch.chunks {
        let (own, samples) = job::split(&c.input)?;
        if own != model {
            return None;
        }
        inputs.push(encode(&[
            Segment::Inline(&job::header(size)),
            Segment::Blob { hash, size },
            Segment::Inline(samples),
        ]));
    }
    Some(Shared {
        inputs,
        blobs: vec![model.to_vec()],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{SplitBy, split};
    use crate::kernels::find_kernel;

    fn matmul(m: u32, k: u32, n: u32) -> Vec<u8> {
        let mut input = Vec::new();
        for v in [m, k, n] {
            input.extend_from_slice(&v.to_le_bytes());
        }
        for i in 0..(m * k + k * n) {
            input.extend_from_slice(&i.wrapping_mul(2_654_435_761).to_le_bytes());
        }
        input
    }

    #[test]
    fn shared_matmul_chunks_resolve_to_the_plain_chunks() {
        let kernel = find_kernel("matmul-u32").unwrap().id;
        let batch = split(&kernel, &matmul(10, 4, 6), SplitBy::Chunks(3)).unwrap();
        let shared = share(&batch).unwrap();
        assert_eq!(shared.blobs.len(), 1);
        assert_eq!(shared.blobs[0].len(), 4 * 6 * 4);
        let store =
            |h: &[u8; 32]| (input_hash(&shared.blobs[0]) == *h).then(|| shared.blobs[0].clone());
        for (c, parts) in batch.chunks.iter().zip(&shared.inputs) {
            assert!(is_parts(parts));
            assert!(parts.len() < c.input.len());
            let segments = decode(parts).unwrap();
            assert_eq!(blobs(&segments), [(input_hash(&shared.blobs[0]), 96)]);
            assert_eq!(resolve(&segments, store).unwrap(), c.input);
        }
    }

    #[test]
    fn kernels_without_shared_data_are_not_factored() {
        let kernel = find_kernel("sha256-batch").unwrap().id;
        let mut input = 4u32.to_le_bytes().to_vec();
        input.extend_from_slice(&3u32.to_le_bytes());
        input.extend_from_slice(&[1u8; 12]);
        assert!(share(&split(&kernel, &input, SplitBy::Chunks(2)).unwrap()).is_none());
        let mm = find_kernel("matmul-i8").unwrap().id;
        let one = split(&mm, &matmul(2, 2, 2)[..12 + 8], SplitBy::Chunks(1));
        assert!(one.is_err() || share(&one.unwrap()).is_none());
    }

    #[test]
    fn a_wrong_or_missing_blob_does_not_resolve() {
        let data = vec![9u8; 40];
        let hash = input_hash(&data);
        let parts = encode(&[Segment::Inline(b"hd"), Segment::Blob { hash, size: 40 }]);
        let segments = decode(&parts).unwrap();
        assert_eq!(
            resolve(&segments, |_| None),
            Err(PartsError::Missing { hash, size: 40 })
        );
        let err = resolve(&segments, |_| Some(vec![8u8; 40])).unwrap_err();
        assert!(
            matches!(err, PartsError::Mismatch { actual: 40, .. }),
            "{err}"
        );
        let err = resolve(&segments, |_| Some(vec![9u8; 39])).unwrap_err();
        assert!(
            matches!(err, PartsError::Mismatch { actual: 39, .. }),
            "{err}"
        );
        let mut whole = b"hd".to_vec();
        whole.extend_from_slice(&data);
        assert_eq!(resolve(&segments, |_| Some(data.clone())).unwrap(), whole);
    }

    #[test]
    fn referenced_lists_each_blob_once_and_nothing_for_plain_inputs() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let input = encode(&[
            Segment::Blob { hash: a, size: 4 },
            Segment::Inline(b"x"),
            Segment::Blob { hash: b, size: 4 },
            Segment::Blob { hash: a, size: 4 },
        ]);
        assert_eq!(referenced(&input), vec![a, b]);
        assert!(referenced(b"plain input").is_empty());
        assert!(
            referenced(&input[..input.len() - 1]).is_empty(),
            "malformed"
        );
    }

    #[test]
    fn malformed_and_oversized_parts_are_refused() {
        let hash = [1u8; 32];
        let ok = encode(&[Segment::Blob { hash, size: 5 }]);
        assert!(decode(&ok).is_ok());
        for bad in [
            b"STPPART1".to_vec(),
            encode(&[]),
            ok[..ok.len() - 1].to_vec(),
            [ok.clone(), vec![0]].concat(),
            b"NOTPARTS\x01\0\0\0".to_vec(),
        ] {
            assert!(
                matches!(decode(&bad), Err(PartsError::Malformed(_))),
                "{bad:?}"
            );
        }
        let mut unknown = MAGIC.to_vec();
        unknown.extend_from_slice(&1u32.to_le_bytes());
        unknown.push(7);
        assert!(matches!(decode(&unknown), Err(PartsError::Malformed(_))));
        let huge = encode(&[
            Segment::Blob {
                hash,
                size: MAX_RESOLVED,
            },
            Segment::Inline(b"x"),
        ]);
        assert_eq!(
            decode(&huge),
            Err(PartsError::TooLarge {
                size: MAX_RESOLVED + 1
            })
        );
        let many: Vec<Segment<'_>> = (0..=MAX_SEGMENTS).map(|_| Segment::Inline(b"")).collect();
        assert!(matches!(
            decode(&encode(&many)),
            Err(PartsError::Malformed(_))
        ));
    }
}
