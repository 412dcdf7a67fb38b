//! Cutting `total` units into consecutive ranges.

use std::ops::Range;

use super::{BatchError, Result, SplitBy};

/// `n` ranges covering `0..total`, as even as possible: the first `total % n` get one more.
pub(super) fn even(
    total: u32,
    n: u32,
    what: &'static str,
    unit: &'static str,
) -> Result<Vec<Range<u32>>> {
    if n == 0 {
        return Err(BatchError::Zero { what });
    }
    if n > total {
        return Err(BatchError::TooManyChunks {
            chunks: n as u64,
            units: total as u64,
            unit,
        });
    }
    let (base, extra) = (total / n, total % n);
    let mut start = 0;
    Ok((0..n)
        .map(|i| {
            let len = base + u32::from(i < extra);
            let range = start..start + len;
            start += len;
            range
        })
        .collect())
}

/// Ranges of `size` units covering `0..total`; the last holds the remainder.
pub(super) fn fixed(total: u32, size: u32, what: &'static str) -> Result<Vec<Range<u32>>> {
    if size == 0 {
        return Err(BatchError::Zero { what });
    }
    Ok((0..total.div_ceil(size))
        .map(|i| i * size..total.min((i + 1).saturating_mul(size)))
        .collect())
}

/// The ranges of a one-dimensional split (`Chunks` or `Rows`); `Tiles` is refused.
pub(super) fn linear(
    total: u32,
    by: SplitBy,
    kernel: &'static str,
    unit: &'static str,
) -> Result<Vec<Range<u32>>> {
    match by {
        SplitBy::Chunks(n) => even(total, n, "chunks", unit),
        SplitBy::Rows(r) => fixed(total, r, "rows per chunk"),
        SplitBy::Tiles { .. } => Err(BatchError::UnsupportedSplit {
            kernel,
            by: by.to_string(),
            hint: "split it by chunks=N or rows=N",
        }),
    }
}
