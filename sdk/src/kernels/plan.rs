//! What a GPU backend needs to run one job: shader, bindings, buffer contents, dispatch.

use std::borrow::Cow;

use super::{BindingDecl, BindingKind, KernelId};

/// The initial contents of one buffer: `data` followed by zeros up to `size` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferInit<'a> {
    /// Buffer size in bytes, a multiple of 4 (16 for uniforms), at least 4.
    pub size: u64,
    /// Initial bytes, `data.len() <= size`.
    pub data: Cow<'a, [u8]>,
}

impl<'a> BufferInit<'a> {
    /// A buffer holding `data`, padded with zeros to the alignment its kind requires.
    pub fn padded(kind: BindingKind, data: impl Into<Cow<'a, [u8]>>) -> Self {
        let data = data.into();
        Self {
            size: padded_size(kind, data.len() as u64),
            data,
        }
    }

    /// A zero-filled buffer of at least `len` bytes (padded like [`BufferInit::padded`]).
    pub fn zeroed(kind: BindingKind, len: u64) -> Self {
        Self {
            size: padded_size(kind, len),
            data: Cow::Borrowed(&[]),
        }
    }
}

/// Rounds a buffer length up to what wgpu accepts for the binding kind.
pub fn padded_size(kind: BindingKind, len: u64) -> u64 {
    let align = if kind == BindingKind::Uniform { 16 } else { 4 };
    len.max(1).div_ceil(align) * align
}

/// One fully described dispatch. Produced by [`super::plan`] for built-in and custom kernels
/// alike, so the GPU runtime has a single code path.
#[derive(Debug, Clone)]
pub struct DispatchPlan<'a> {
    /// The kernel's id (pipeline cache key).
    pub kernel: KernelId,
    /// WGSL module source.
    pub wgsl: Cow<'a, str>,
    /// Compute entry point.
    pub entry_point: Cow<'a, str>,
    /// Group-0 bindings in ascending order.
    pub bindings: Vec<BindingDecl>,
    /// One buffer per binding, same order as `bindings`.
    pub buffers: Vec<BufferInit<'a>>,
    /// Index into `bindings` of the buffer read back as output.
    pub output_index: usize,
    /// Output length in bytes: the first `output_len` bytes of the output buffer.
    pub output_len: u64,
    /// Workgroups dispatched in x, y, z.
    pub workgroups: [u32; 3],
}

impl DispatchPlan<'_> {
    /// Total bytes of all buffers the job allocates on the device (output read-back included).
    pub fn device_bytes(&self) -> u64 {
        self.buffers.iter().map(|b| b.size).sum::<u64>() + self.output_len
    }

    /// Total number of workgroups.
    pub fn total_workgroups(&self) -> u64 {
        self.workgroups.iter().map(|&w| w as u64).product()
    }
}
