//! Kernel identity: the SHA-256 of a canonical encoding of (WGSL, entry point, bindings).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::KernelError;

/// Domain tag that starts every canonical kernel encoding (version 1).
pub const KERNEL_ID_DOMAIN: &[u8] = b"stp-kernel-v1";

/// How a buffer is bound to the shader (all bindings live in group 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum BindingKind {
    /// `var<uniform>`: small parameters, size a multiple of 16.
    Uniform = 0,
    /// `var<storage, read>`.
    StorageRead = 1,
    /// `var<storage, read_write>`; the output binding must be of this kind.
    StorageReadWrite = 2,
}

impl BindingKind {
    /// Decodes the kind's wire byte.
    pub fn from_code(code: u32) -> Option<Self> {
        match code {
            0 => Some(Self::Uniform),
            1 => Some(Self::StorageRead),
            2 => Some(Self::StorageReadWrite),
            _ => None,
        }
    }

    /// The WGSL spelling of the address space, for listings.
    pub fn wgsl(self) -> &'static str {
        match self {
            Self::Uniform => "uniform",
            Self::StorageRead => "storage,read",
            Self::StorageReadWrite => "storage,read_write",
        }
    }
}

/// One binding of group 0: its `@binding(n)` index and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BindingDecl {
    /// The `@binding(n)` index.
    pub binding: u32,
    /// How the buffer is bound.
    pub kind: BindingKind,
}

/// The identity of a kernel: SHA-256 over [`canonical_encoding`]. Shown as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KernelId(pub [u8; 32]);

impl KernelId {
    /// Computes the id of (WGSL source, entry point, binding layout, output binding).
    pub fn compute(wgsl: &str, entry_point: &str, bindings: &[BindingDecl], output: u32) -> Self {
        Self(Sha256::digest(canonical_encoding(wgsl, entry_point, bindings, output)).into())
    }

    /// The raw 32 bytes (as stored on-chain).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// The canonical encoding hashed into a [`KernelId`]:
/// `"stp-kernel-v1"`, then `u32 LE len ‖ WGSL UTF-8`, `u32 LE len ‖ entry point UTF-8`,
/// `u32 LE binding count`, per binding (ascending index) `u32 LE index ‖ u8 kind`
/// (0 uniform, 1 storage read, 2 storage read_write), and `u32 LE output binding`.
pub fn canonical_encoding(
    wgsl: &str,
    entry_point: &str,
    bindings: &[BindingDecl],
    output: u32,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        KERNEL_ID_DOMAIN.len() + wgsl.len() + entry_point.len() + 16 + 5 * bindings.len(),
    );
    out.extend_from_slice(KERNEL_ID_DOMAIN);
    for text in [wgsl, entry_point] {
        out.extend_from_slice(&(text.len() as u32).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
    }
    out.extend_from_slice(&(bindings.len() as u32).to_le_bytes());
    for b in bindings {
        out.extend_from_slice(&b.binding.to_le_bytes());
        out.push(b.kind as u8);
    }
    out.extend_from_slice(&output.to_le_bytes());
    out
}

impl fmt::Display for KernelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KernelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KernelId({self})")
    }
}

impl FromStr for KernelId {
    type Err = KernelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.strip_prefix("0x").unwrap_or(s);
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(digits, &mut bytes).map_err(|_| KernelError::BadId {
            input: s.to_owned(),
        })?;
        Ok(Self(bytes))
    }
}

impl Serialize for KernelId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KernelId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// SHA-256 of a job's output bytes: the result hash providers commit to.
pub fn result_hash(output: &[u8]) -> [u8; 32] {
    Sha256::digest(output).into()
}
