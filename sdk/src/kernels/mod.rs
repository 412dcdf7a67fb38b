//! Deterministic compute kernels: WGSL sources, their identities, input/output byte layouts,
//! input encoders and plain-Rust CPU references.
//!
//! Providers are compared by the SHA-256 of their output bytes, so every built-in kernel
//! uses integer arithmetic only, never reads out of bounds and keeps each invocation's loops
//! far below 65,535 iterations; its CPU reference produces the very same bytes.
//!
//! A job is fully determined by `(kernel id, input bytes)`: shapes and parameters live in a
//! small little-endian header at the start of the input (see each kernel's module). A
//! [`custom`] kernel travels inside its input as an envelope whose id is computed like a
//! built-in's, so a provider can check it against the job's on-chain kernel id first.
//!
//! This module has no GPU dependency: consumers verify results on the CPU alone. The
//! provider node turns a [`DispatchPlan`] into wgpu calls.

mod error;
mod id;
mod plan;
mod reader;

pub mod custom;
pub mod mandelbrot;
pub mod matmul_i8;
pub mod matmul_u32;
pub mod sample;
pub mod sha256_batch;

use std::borrow::Cow;
use std::sync::OnceLock;

use crate::model;

pub use error::{KernelError, Result};
pub use id::{
    BindingDecl, BindingKind, KERNEL_ID_DOMAIN, KernelId, canonical_encoding, result_hash,
};
pub use plan::{BufferInit, DispatchPlan, padded_size};

/// Which built-in kernel a [`KernelDef`] describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Builtin {
    /// [`matmul_u32`].
    MatmulU32,
    /// [`matmul_i8`].
    MatmulI8,
    /// [`sha256_batch`].
    Sha256Batch,
    /// [`mandelbrot`].
    Mandelbrot,
}

/// A built-in kernel: its code, identity and documented byte layouts.
#[derive(Debug, Clone)]
pub struct KernelDef {
    /// Which kernel this is.
    pub builtin: Builtin,
    /// Short name used on the command line, e.g. `matmul-u32`.
    pub name: &'static str,
    /// One line on what it computes.
    pub summary: &'static str,
    /// The kernel id (SHA-256 of the canonical encoding).
    pub id: KernelId,
    /// WGSL module source.
    pub wgsl: &'static str,
    /// Compute entry point.
    pub entry_point: &'static str,
    /// Group-0 bindings.
    pub bindings: &'static [BindingDecl],
    /// Binding index of the output buffer.
    pub output_binding: u32,
    /// Input byte layout.
    pub input_layout: &'static str,
    /// Output byte layout.
    pub output_layout: &'static str,
    /// What one unit of benchmark work is.
    pub work_unit: &'static str,
}

#[allow(clippy::too_many_arguments)]
fn def(
    builtin: Builtin,
    name: &'static str,
    summary: &'static str,
    wgsl: &'static str,
    bindings: &'static [BindingDecl],
    input_layout: &'static str,
    output_layout: &'static str,
    work_unit: &'static str,
) -> KernelDef {
    let output_binding = bindings.last().map_or(0, |b| b.binding);
    let id = KernelId::compute(wgsl, "main", bindings, output_binding);
    KernelDef {
        builtin,
        name,
        summary,
        id,
        wgsl,
        entry_point: "main",
        bindings,
        output_binding,
        input_layout,
        output_layout,
        work_unit,
    }
}

/// The built-in kernels, in a fixed order.
pub fn builtin_kernels() -> &'static [KernelDef] {
    static DEFS: OnceLock<Vec<KernelDef>> = OnceLock::new();
    DEFS.get_or_init(|| {
        vec![
            def(
                Builtin::MatmulU32,
                "matmul-u32",
                "wrapping u32 matrix multiply C = A x B, tiled 16x16 in workgroup memory",
                matmul_u32::WGSL,
                matmul_u32::BINDINGS,
                "u32 M, K, N; A: M*K u32; B: K*N u32 (little-endian, row-major; K <= 16384)",
                "C: M*N u32 (little-endian, row-major), wrapping sums of products",
                "multiply-add",
            ),
            def(
                Builtin::MatmulI8,
                "matmul-i8",
                "int8 x int8 -> int32 matrix multiply (quantized inference), tiled 16x16",
                matmul_i8::WGSL,
                matmul_i8::BINDINGS,
                "u32 M, K, N; A: M*K i8; B: K*N i8 (little-endian header, row-major; K <= 16384)",
                "C: M*N i32 (little-endian, row-major)",
                "multiply-add",
            ),
            def(
                Builtin::Sha256Batch,
                "sha256-batch",
                "SHA-256 of many equal-length messages, one per invocation",
                sha256_batch::WGSL,
                sha256_batch::BINDINGS,
                "u32 count, u32 len (<= 16384); count messages of len bytes, back to back",
                "count digests of 32 bytes, in input order",
                "64-byte block",
            ),
            def(
                Builtin::Mandelbrot,
                "mandelbrot-fixed",
                "Mandelbrot tile in Q5.27 fixed point with an iteration cap, as RGBA8 pixels",
                mandelbrot::WGSL,
                mandelbrot::BINDINGS,
                "u32 width, height; i32 x_min, y_min, step (Q5.27); u32 max_iter (<= 16384); 24 bytes",
                "width*height RGBA8 pixels, row-major from y_min; black = inside the set",
                "pixel",
            ),
        ]
    })
}

/// The built-in kernel with this id, if any.
pub fn builtin(id: &KernelId) -> Option<&'static KernelDef> {
    builtin_kernels().iter().find(|d| d.id == *id)
}

/// Looks a built-in kernel up by name (`matmul-u32`) or by hex id.
pub fn find_kernel(name_or_id: &str) -> Result<&'static KernelDef> {
    let by_id = name_or_id
        .parse::<KernelId>()
        .ok()
        .and_then(|id| builtin(&id));
    by_id
        .or_else(|| builtin_kernels().iter().find(|d| d.name == name_or_id))
        .ok_or_else(|| KernelError::UnknownName {
            query: name_or_id.to_owned(),
        })
}

/// Decodes a custom envelope and checks that it hashes to `kernel`.
pub fn custom_job<'a>(kernel: &KernelId, input: &'a [u8]) -> Result<custom::CustomJob<'a>> {
    if !custom::is_envelope(input) {
        return Err(KernelError::UnknownKernel { id: *kernel });
    }
    let job = custom::decode(input)?;
    let actual = job.kernel_id();
    if actual != *kernel {
        return Err(KernelError::KernelIdMismatch {
            expected: *kernel,
            actual,
        });
    }
    Ok(job)
}

/// The model job `(kernel, input)` is, if its input is one ([`crate::model::job`]): a
/// model runs as a graph of kernels, not as one [`DispatchPlan`].
pub fn model_job<'a>(
    kernel: &KernelId,
    input: &'a [u8],
) -> Option<Result<model::job::ModelJob<'a>>> {
    (builtin(kernel).is_none() && model::job::is_model_job(input))
        .then(|| model::job::decode(kernel, input))
}

/// Plans a job: validates the input against the kernel and returns everything a GPU
/// backend needs. Fails before anything large is allocated. A model job has no single plan
/// ([`model_job`]; its ops are planned one by one with [`crate::model::gpu::plan_op`]).
pub fn plan<'a>(kernel: &KernelId, input: &'a [u8]) -> Result<DispatchPlan<'a>> {
    if let Some(job) = model_job(kernel, input) {
        job?;
        return Err(KernelError::BadEnvelope {
            reason: "a model job runs op by op; plan its ops with model::gpu::plan_op".into(),
        });
    }
    let Some(def) = builtin(kernel) else {
        return custom_job(kernel, input)?.into_plan();
    };
    match def.builtin {
        Builtin::MatmulU32 => matmul_u32::plan(def, input),
        Builtin::MatmulI8 => matmul_i8::plan(def, input),
        Builtin::Sha256Batch => sha256_batch::plan(def, input),
        Builtin::Mandelbrot => mandelbrot::plan(def, input),
    }
}

/// Size in bytes of the output a valid job produces (checked against the job's bound).
pub fn max_output_size(kernel: &KernelId, input: &[u8]) -> Result<u64> {
    if let Some(job) = model_job(kernel, input) {
        return Ok(job?.output_len());
    }
    Ok(plan(kernel, input)?.output_len)
}

/// Runs the CPU reference of a built-in kernel or a model job. Custom kernels have none:
/// [`KernelError::NoCpuReference`].
pub fn cpu_reference(kernel: &KernelId, input: &[u8]) -> Result<Vec<u8>> {
    if let Some(job) = model_job(kernel, input) {
        return Ok(job?.cpu_reference()?);
    }
    let Some(def) = builtin(kernel) else {
        custom_job(kernel, input)?;
        return Err(KernelError::NoCpuReference { id: *kernel });
    };
    match def.builtin {
        Builtin::MatmulU32 => matmul_u32::cpu_reference(input),
        Builtin::MatmulI8 => matmul_i8::cpu_reference(input),
        Builtin::Sha256Batch => sha256_batch::cpu_reference(input),
        Builtin::Mandelbrot => mandelbrot::cpu_reference(input),
    }
}

/// Units of work in a job, in the kernel's [`KernelDef::work_unit`] (benchmarks divide
/// this by seconds). Custom kernels count invocations' workgroups, model jobs samples.
pub fn work_units(kernel: &KernelId, input: &[u8]) -> Result<u64> {
    if let Some(job) = model_job(kernel, input) {
        return Ok(u64::from(job?.batch));
    }
    let Some(def) = builtin(kernel) else {
        return Ok(plan(kernel, input)?.total_workgroups());
    };
    Ok(match def.builtin {
        Builtin::MatmulU32 => matmul_u32::parse(input)?.shape.macs(),
        Builtin::MatmulI8 => matmul_i8::parse(input)?.shape.macs(),
        Builtin::Sha256Batch => sha256_batch::parse(input)?.blocks(),
        Builtin::Mandelbrot => {
            let t = mandelbrot::parse(input)?;
            t.width as u64 * t.height as u64
        }
    })
}

/// A short name for a kernel id: the built-in's name, or `custom`.
pub fn kernel_name(kernel: &KernelId) -> Cow<'static, str> {
    builtin(kernel).map_or(Cow::Borrowed("custom"), |d| Cow::Borrowed(d.name))
}

/// A short name for a job: its kernel's ([`kernel_name`]), or `model` for a model job.
pub fn job_name(kernel: &KernelId, input: &[u8]) -> Cow<'static, str> {
    match model_job(kernel, input) {
        Some(_) => Cow::Borrowed("model"),
        None => kernel_name(kernel),
    }
}
