//! `custom`: a consumer-supplied WGSL module, carried with its data in one envelope.
//!
//! Envelope (little-endian):
//! ```text
//! b"STPCUST1"
//! u32 wgsl_len,  wgsl_len bytes of UTF-8 WGSL
//! u32 entry_len, entry_len bytes of UTF-8 entry point name
//! u32 binding_count (1..=8), then per binding, in strictly ascending index order:
//!     u32 binding index, u32 kind (0 uniform, 1 storage read, 2 storage read_write),
//!     u32 size (bytes, 1..), u32 init_len (<= size), init_len bytes of initial data
//!     (the rest of the buffer is zero)
//! u32 output binding index (must name a storage read_write binding)
//! u32 workgroups_x, u32 workgroups_y, u32 workgroups_z (each >= 1)
//! ```
//! The kernel id is [`KernelId::compute`] over (WGSL, entry point, bindings, output binding),
//! exactly as for built-ins; buffer sizes, data and dispatch size are part of the job input.
//! Output: the first `size` bytes of the output binding after the dispatch.
//!
//! Loop budget: providers run a custom kernel with its loops metered. Each invocation has
//! [`LOOP_BUDGET`] loop passes for all its loops together: a pass is each start of a loop
//! body (a `for` loop of `n` iterations takes `n + 1`: the last pass finds the condition
//! false), and each loop in code the invocation skips (the other side of an `if`, the rest
//! of a loop pass after `break`, ...) costs one. An invocation that needs more stops, and
//! the job fails the same way on every GPU, so no provider commits a result. A loop with no
//! `break`, `return` or `break if` is rejected before it runs. The budget is small because
//! Mesa's software driver caps loops per SIMD group of invocations, not per invocation (see
//! [`LOOP_BUDGET`]). Keep per-invocation loops short and dispatch more workgroups.

use std::borrow::Cow;

use super::plan::padded_size;
use super::reader::Reader;
use super::{BindingDecl, BindingKind, BufferInit, DispatchPlan, KernelError, KernelId, Result};

/// Magic bytes that start every custom-kernel envelope.
pub const MAGIC: &[u8; 8] = b"STPCUST1";
/// Most bindings a custom kernel may declare.
pub const MAX_BINDINGS: usize = 8;
/// Longest accepted WGSL source in bytes.
pub const MAX_WGSL_LEN: u32 = 1 << 20;
/// Loop passes one invocation of a custom kernel may make, over all its loops and the
/// functions it calls.
///
/// Sized so that a whole SIMD group of invocations stays under Mesa's software-driver cap:
/// - Mesa (lavapipe Vulkan and llvmpipe GL) keeps one counter per SIMD group, not per
///   invocation, and silently ends the group's loops after 65,535 passes, all loops
///   together (a group passes a loop as long as any of its lanes runs it, and once through a
///   loop that none runs);
/// - a group is 8 consecutive invocations on the machines measured (Mesa 22.3 on an
///   AVX-512 CPU; setting `LP_NATIVE_VECTOR_WIDTH` to 128, 512 or 1024 changed nothing
///   there). Mesa's default vector is at most 256 bits "until 512 is as correct and not
///   slower", so 512-bit vectors on AVX-512, 16 lanes of `u32`, are the widest plausible;
/// - the group's passes are at most the sum of its lanes' metered passes: every loop
///   instance the group runs has a lane that runs it or is charged one pass for skipping it
///   (see the meter), and a group's passes through one instance are the most any lane makes;
/// - so 16 lanes of `LOOP_BUDGET` passes each make at most 16 x 4,000 = 64,000 group passes:
///   below 65,535, with 1,535 (2.3 %) to spare for the pass in which an exhausted lane finds
///   its fuel empty and sets the flag, and any pass through a loop that the charges
///   undercount. 65,535 / 16 = 4,095 would leave none.
///
/// A kernel within this budget therefore computes the true values on Mesa as on any GPU,
/// whatever its neighbouring invocations do, and one beyond it fails identically everywhere.
pub const LOOP_BUDGET: u32 = 4_000;

/// One buffer of a custom job: its binding and initial contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomBuffer<'a> {
    /// Binding index and kind.
    pub decl: BindingDecl,
    /// Size in bytes (the output length, for the output binding).
    pub size: u32,
    /// Initial data (`len <= size`); the remainder is zero.
    pub init: Cow<'a, [u8]>,
}

/// A decoded custom-kernel job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomJob<'a> {
    /// WGSL module source.
    pub wgsl: Cow<'a, str>,
    /// Compute entry point.
    pub entry_point: Cow<'a, str>,
    /// Buffers in ascending binding order.
    pub buffers: Vec<CustomBuffer<'a>>,
    /// Binding index of the output buffer.
    pub output_binding: u32,
    /// Workgroups dispatched in x, y, z.
    pub workgroups: [u32; 3],
}

fn bad<T>(reason: impl Into<String>) -> Result<T> {
    Err(KernelError::BadEnvelope {
        reason: reason.into(),
    })
}

impl<'a> CustomJob<'a> {
    /// The binding layout (what the kernel id covers).
    pub fn bindings(&self) -> Vec<BindingDecl> {
        self.buffers.iter().map(|b| b.decl).collect()
    }

    /// The kernel id of this module, entry point and layout.
    pub fn kernel_id(&self) -> KernelId {
        KernelId::compute(
            &self.wgsl,
            &self.entry_point,
            &self.bindings(),
            self.output_binding,
        )
    }

    /// Index into `buffers` of the output buffer.
    fn output_index(&self) -> Result<usize> {
        let Some(i) = self
            .buffers
            .iter()
            .position(|b| b.decl.binding == self.output_binding)
        else {
            return bad(format!(
                "output binding {} is not declared",
                self.output_binding
            ));
        };
        if self.buffers[i].decl.kind != BindingKind::StorageReadWrite {
            return bad(format!(
                "output binding {} must be storage read_write",
                self.output_binding
            ));
        }
        Ok(i)
    }

    /// Checks the structural rules of the envelope (not the WGSL: the GPU compiler does that).
    pub fn validate(&self) -> Result<()> {
        if self.wgsl.len() as u64 > MAX_WGSL_LEN as u64 {
            return bad(format!("WGSL source is longer than {MAX_WGSL_LEN} bytes"));
        }
        if self.entry_point.is_empty() {
            return bad("the entry point name is empty");
        }
        if self.buffers.is_empty() || self.buffers.len() > MAX_BINDINGS {
            return bad(format!(
                "a custom kernel needs 1..={MAX_BINDINGS} bindings, got {}",
                self.buffers.len()
            ));
        }
        if self
            .buffers
            .windows(2)
            .any(|w| w[0].decl.binding >= w[1].decl.binding)
        {
            return bad("bindings must be listed in strictly ascending index order");
        }
        for b in &self.buffers {
            if b.size == 0 || b.init.len() > b.size as usize {
                return bad(format!(
                    "binding {}: size must be >= 1 and >= its initial data",
                    b.decl.binding
                ));
            }
        }
        if self.workgroups.contains(&0) {
            return bad("each workgroup count must be at least 1");
        }
        self.output_index().map(|_| ())
    }

    /// Encodes the job as an envelope (after validating it).
    pub fn encode(&self) -> Result<Vec<u8>> {
        self.validate()?;
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&(self.wgsl.len() as u32).to_le_bytes());
        out.extend_from_slice(self.wgsl.as_bytes());
        out.extend_from_slice(&(self.entry_point.len() as u32).to_le_bytes());
        out.extend_from_slice(self.entry_point.as_bytes());
        out.extend_from_slice(&(self.buffers.len() as u32).to_le_bytes());
        for b in &self.buffers {
            for v in [
                b.decl.binding,
                b.decl.kind as u32,
                b.size,
                b.init.len() as u32,
            ] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&b.init);
        }
        for v in [
            self.output_binding,
            self.workgroups[0],
            self.workgroups[1],
            self.workgroups[2],
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        Ok(out)
    }

    /// The job as a dispatch plan for the GPU runtime.
    pub fn into_plan(self) -> Result<DispatchPlan<'a>> {
        let output_index = self.output_index()?;
        let kernel = self.kernel_id();
        let bindings = self.bindings();
        let output_len = self.buffers[output_index].size as u64;
        let buffers = self
            .buffers
            .into_iter()
            .map(|b| BufferInit {
                size: padded_size(b.decl.kind, b.size as u64),
                data: b.init,
            })
            .collect();
        Ok(DispatchPlan {
            kernel,
            wgsl: self.wgsl,
            entry_point: self.entry_point,
            bindings,
            buffers,
            output_index,
            output_len,
            workgroups: self.workgroups,
        })
    }
}

/// Whether `input` starts with the custom-envelope magic.
pub fn is_envelope(input: &[u8]) -> bool {
    input.starts_with(MAGIC)
}

fn utf8<'a>(bytes: &'a [u8], what: &str) -> Result<&'a str> {
    std::str::from_utf8(bytes).or_else(|_| bad(format!("{what} is not valid UTF-8")))
}

/// Decodes and validates an envelope (borrowing from `input`).
pub fn decode(input: &[u8]) -> Result<CustomJob<'_>> {
    if !is_envelope(input) {
        return bad("input does not start with the magic bytes STPCUST1");
    }
    let mut r = Reader::new(&input[MAGIC.len()..]);
    let wgsl_len = r.u32("WGSL length")?;
    if wgsl_len > MAX_WGSL_LEN {
        return bad(format!("WGSL source is longer than {MAX_WGSL_LEN} bytes"));
    }
    let wgsl = utf8(r.bytes("WGSL source", wgsl_len as u64)?, "the WGSL source")?;
    let entry_len = r.u32("entry point length")?;
    let entry_point = utf8(r.bytes("entry point", entry_len as u64)?, "the entry point")?;
    let count = r.u32("binding count")? as usize;
    if count == 0 || count > MAX_BINDINGS {
        return bad(format!(
            "a custom kernel needs 1..={MAX_BINDINGS} bindings, got {count}"
        ));
    }
    let mut buffers = Vec::with_capacity(count);
    for _ in 0..count {
        let binding = r.u32("binding index")?;
        let code = r.u32("binding kind")?;
        let Some(kind) = BindingKind::from_code(code) else {
            return bad(format!(
                "binding {binding}: unknown kind {code} (0 uniform, 1 storage read, 2 storage read_write)"
            ));
        };
        let size = r.u32("buffer size")?;
        let init_len = r.u32("initial data length")?;
        let init = r.bytes("initial data", init_len as u64)?;
        buffers.push(CustomBuffer {
            decl: BindingDecl { binding, kind },
            size,
            init: Cow::Borrowed(init),
        });
    }
    let output_binding = r.u32("output binding")?;
    let workgroups = [
        r.u32("workgroups x")?,
        r.u32("workgroups y")?,
        r.u32("workgroups z")?,
    ];
    r.finish()?;
    let job = CustomJob {
        wgsl: Cow::Borrowed(wgsl),
        entry_point: Cow::Borrowed(entry_point),
        buffers,
        output_binding,
        workgroups,
    };
    job.validate()?;
    Ok(job)
}
