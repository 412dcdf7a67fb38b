//! A tiny, strict big-endian binary codec shared by the wire types: every read is bounds
//! checked against the input and against a caller-given cap, so decoding never panics and
//! never allocates more than the input already holds.

use super::WireError;

/// Appends fixed-width and length-prefixed fields to a byte vector.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Self::default()
    }
    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn u128(&mut self, v: u128) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn raw(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }
    /// A byte string prefixed by its length as one byte (callers enforce `len <= 255`).
    pub(crate) fn bytes8(&mut self, field: &'static str, v: &[u8]) -> Result<(), WireError> {
        let len = u8::try_from(v.len()).map_err(|_| WireError::FieldTooLong {
            field,
            len: v.len(),
            max: 255,
        })?;
        self.u8(len);
        self.raw(v);
        Ok(())
    }
    /// A list of 32-byte hashes prefixed by its count as one byte; more than `max` is a
    /// [`WireError::TooManyItems`].
    pub(crate) fn hashes8(
        &mut self,
        field: &'static str,
        v: &[[u8; 32]],
        max: usize,
    ) -> Result<(), WireError> {
        if v.len() > max.min(255) {
            return Err(WireError::TooManyItems {
                field,
                count: v.len(),
                max,
            });
        }
        self.u8(v.len() as u8);
        for h in v {
            self.raw(h);
        }
        Ok(())
    }
    pub(crate) fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads fields back, failing with [`WireError::Truncated`] instead of panicking.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.buf.len() < n {
            return Err(WireError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.array::<1>()?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    pub(crate) fn u128(&mut self) -> Result<u128, WireError> {
        Ok(u128::from_be_bytes(self.array()?))
    }
    /// A one-byte-length-prefixed byte string of at most `max` bytes.
    /// A list (`field`) of at most `max_items` byte strings (`item`) of at most `max_len`
    /// bytes each, its length in one byte: how addresses travel.
    pub(crate) fn list8(
        &mut self,
        (field, item): (&'static str, &'static str),
        max_items: usize,
        max_len: usize,
    ) -> Result<Vec<Vec<u8>>, WireError> {
        let count = usize::from(self.u8()?);
        if count > max_items {
            return Err(WireError::TooManyItems {
                field,
                count,
                max: max_items,
            });
        }
        (0..count).map(|_| self.bytes8(item, max_len)).collect()
    }

    pub(crate) fn bytes8(&mut self, field: &'static str, max: usize) -> Result<Vec<u8>, WireError> {
        let len = usize::from(self.u8()?);
        if len > max {
            return Err(WireError::FieldTooLong { field, len, max });
        }
        Ok(self.take(len)?.to_vec())
    }
    /// A one-byte-length-prefixed UTF-8 string of at most `max` bytes.
    pub(crate) fn string8(&mut self, field: &'static str, max: usize) -> Result<String, WireError> {
        String::from_utf8(self.bytes8(field, max)?).map_err(|_| WireError::InvalidUtf8 { field })
    }
    /// A list of at most `max` 32-byte hashes, its count in one byte.
    pub(crate) fn hashes8(
        &mut self,
        field: &'static str,
        max: usize,
    ) -> Result<Vec<[u8; 32]>, WireError> {
        let count = usize::from(self.u8()?);
        if count > max {
            return Err(WireError::TooManyItems { field, count, max });
        }
        (0..count).map(|_| self.array()).collect()
    }
    /// Fails with [`WireError::TrailingBytes`] if anything is left unread.
    pub(crate) fn finish(self) -> Result<(), WireError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(WireError::TrailingBytes(self.buf.len()))
        }
    }
}
