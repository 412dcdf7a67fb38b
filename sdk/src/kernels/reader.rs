//! Bounds-checked little-endian reading of untrusted input headers.

use super::{KernelError, Result};

/// Reads little-endian fields from an input, never past its end.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn bytes(&mut self, what: &'static str, len: u64) -> Result<&'a [u8]> {
        let available = (self.buf.len() - self.pos) as u64;
        if len > available {
            return Err(KernelError::Truncated {
                what,
                needed: len,
                available,
            });
        }
        let start = self.pos;
        self.pos += len as usize;
        Ok(&self.buf[start..self.pos])
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32> {
        let b = self.bytes(what, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn i32(&mut self, what: &'static str) -> Result<i32> {
        Ok(self.u32(what)? as i32)
    }

    /// Fails when bytes are left after the last field.
    pub(crate) fn finish(self) -> Result<()> {
        let extra = (self.buf.len() - self.pos) as u64;
        if extra > 0 {
            return Err(KernelError::TrailingBytes { extra });
        }
        Ok(())
    }
}

/// Packs u32 words little-endian (the layout of every built-in uniform block).
pub(crate) fn le_words(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// Splits `total` 1-D workgroups into a 2-D grid within the 65,535 per-dimension limit.
/// Returns `[x, y, 1]`; invocations past `total * size` must check their index.
pub(crate) fn grid_1d(total: u64) -> [u32; 3] {
    const MAX: u64 = 65_535;
    if total <= MAX {
        return [total.max(1) as u32, 1, 1];
    }
    let y = total.div_ceil(MAX);
    [MAX as u32, y.min(u32::MAX as u64) as u32, 1]
}
