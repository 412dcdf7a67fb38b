//! The model ops as WGSL kernels: one [`DispatchPlan`] per op of a run, so the node's
//! generic GPU path runs them. A model is several dispatches, one after another; each
//! op's output is read back and uploaded again as the next op's input (constants are
//! uploaded with every dispatch that reads them).
//!
//! Every kernel reads only indices it has checked against its tensors' sizes, writes whole
//! 32-bit words (four int8 values per invocation, so no two invocations share one), and
//! loops over bounds that are the same for every invocation of a dispatch (uniform
//! parameters). Mesa's software driver counts loop passes per SIMD group and stops the
//! group after 65,535; a group of lanes in step passes each loop as often as one lane, so
//! the most any model kernel makes is `K + 1 ≤ 16,385` (fully-connected, argmax: bounded
//! by [`super::Limits::max_reduction`]) and about 1,200 for a 16 × 16 pool window.

use std::borrow::Cow;
use std::sync::OnceLock;

use crate::kernels::{BindingDecl, BindingKind, BufferInit, DispatchPlan, KernelId};

use super::fixedpoint::{
    multiply_by_quantized_multiplier, rounding_divide_by_pot, saturating_rounding_doubling_high_mul,
};
use super::format::{DType, Model, Op};
use super::run::Values;
use super::validate::{conv_output, pool_output};

/// Invocations per workgroup of every model kernel.
const WORKGROUP: u64 = 64;

/// The kernels of the model ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelKernel {
    /// [`Op::FullyConnected`].
    FullyConnected,
    /// [`Op::Requantize`].
    Requantize,
    /// [`Op::MaxPool2d`] and [`Op::AvgPool2d`].
    Pool2d,
    /// [`Op::Argmax`].
    Argmax,
    /// [`Op::Conv2d`].
    Conv2d,
    /// [`Op::Add`].
    Add,
    /// Test probe of the fixed-point helpers ([`probe_plan`]).
    FixedPointProbe,
}

/// One model kernel: its WGSL (the shared fixed-point helpers first), bindings and id.
#[derive(Debug, Clone)]
pub struct ModelKernelDef {
    /// Which kernel.
    pub kind: ModelKernel,
    /// WGSL module source.
    pub wgsl: &'static str,
    /// Group-0 bindings; the last is the output.
    pub bindings: &'static [BindingDecl],
    /// Its kernel id (computed like a built-in kernel's).
    pub id: KernelId,
}

const fn decl(binding: u32, kind: BindingKind) -> BindingDecl {
    BindingDecl { binding, kind }
}

const UNARY: &[BindingDecl] = &[
    decl(0, BindingKind::Uniform),
    decl(1, BindingKind::StorageRead),
    decl(2, BindingKind::StorageReadWrite),
];
const BINARY: &[BindingDecl] = &[
    decl(0, BindingKind::Uniform),
    decl(1, BindingKind::StorageRead),
    decl(2, BindingKind::StorageRead),
    decl(3, BindingKind::StorageReadWrite),
];
const FC: &[BindingDecl] = &[
    decl(0, BindingKind::Uniform),
    decl(1, BindingKind::StorageRead),
    decl(2, BindingKind::StorageRead),
    decl(3, BindingKind::StorageRead),
    decl(4, BindingKind::StorageReadWrite),
];

macro_rules! with_helpers {
    ($file:literal) => {
        concat!(include_str!("wgsl/fixedpoint.wgsl"), include_str!($file))
    };
}

/// Every model kernel, in a fixed order.
pub fn model_kernels() -> &'static [ModelKernelDef] {
    static DEFS: OnceLock<Vec<ModelKernelDef>> = OnceLock::new();
    DEFS.get_or_init(|| {
        let def = |kind, wgsl: &'static str, bindings: &'static [BindingDecl]| ModelKernelDef {
            kind,
            wgsl,
            bindings,
            id: KernelId::compute(wgsl, "main", bindings, bindings.len() as u32 - 1),
        };
        vec![
            def(
                ModelKernel::FullyConnected,
                with_helpers!("wgsl/fully_connected.wgsl"),
                FC,
            ),
            def(
                ModelKernel::Requantize,
                with_helpers!("wgsl/requantize.wgsl"),
                UNARY,
            ),
            def(ModelKernel::Pool2d, with_helpers!("wgsl/pool.wgsl"), UNARY),
            def(
                ModelKernel::Argmax,
                with_helpers!("wgsl/argmax.wgsl"),
                UNARY,
            ),
            def(ModelKernel::Conv2d, with_helpers!("wgsl/conv2d.wgsl"), FC),
            def(ModelKernel::Add, with_helpers!("wgsl/add.wgsl"), BINARY),
            def(
                ModelKernel::FixedPointProbe,
                with_helpers!("wgsl/fixedpoint_probe.wgsl"),
                UNARY,
            ),
        ]
    })
}

/// The definition of one model kernel.
pub fn model_kernel(kind: ModelKernel) -> &'static ModelKernelDef {
    model_kernels()
        .iter()
        .find(|d| d.kind == kind)
        .unwrap_or(&model_kernels()[0])
}

/// True for the id of a model kernel (trusted like a built-in: bounded, never metered).
pub fn is_model_kernel(id: &KernelId) -> bool {
    model_kernels().iter().any(|d| d.id == *id)
}

/// Workgroups for `items` invocations: x up to 65,535, the rest in y.
fn dispatch(items: u64) -> [u32; 3] {
    let groups = items.div_ceil(WORKGROUP).max(1);
    let x = groups.min(65_535);
    [x as u32, groups.div_ceil(x) as u32, 1]
}

fn params(words: &[u32]) -> BufferInit<'static> {
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    BufferInit::padded(BindingKind::Uniform, bytes)
}

fn storage(data: &[u8]) -> BufferInit<'_> {
    BufferInit::padded(BindingKind::StorageRead, Cow::Borrowed(data))
}

fn plan<'a>(
    kind: ModelKernel,
    mut buffers: Vec<BufferInit<'a>>,
    output_len: u64,
    items: u64,
) -> DispatchPlan<'a> {
    let def = model_kernel(kind);
    buffers.push(BufferInit::zeroed(
        BindingKind::StorageReadWrite,
        output_len,
    ));
    DispatchPlan {
        kernel: def.id,
        wgsl: Cow::Borrowed(def.wgsl),
        entry_point: Cow::Borrowed("main"),
        bindings: def.bindings.to_vec(),
        output_index: buffers.len() - 1,
        buffers,
        output_len,
        workgroups: dispatch(items),
    }
}

/// The dispatch that computes `op` of a validated `model` from `values`; `None` for a
/// reshape (no kernel: its bytes pass through).
pub fn plan_op<'a>(model: &Model, op: &Op, values: &'a Values<'_>) -> Option<DispatchPlan<'a>> {
    plan_op_with(model, op, values.batch(), |t| values.get(t))
}

/// [`plan_op`] over a batch of `batch` samples, with each operand tensor's bytes from
/// `get`. Its buffers are, in order: the parameters (binding 0), one per operand in
/// [`Op::inputs`] order, then the output; a runtime that keeps a tensor on the device
/// binds it in place of the (then empty) bytes `get` gives for it.
pub fn plan_op_with<'a>(
    model: &Model,
    op: &Op,
    batch: u32,
    get: impl Fn(u32) -> &'a [u8],
) -> Option<DispatchPlan<'a>> {
    let batch = batch as u64;
    let shape = |t: u32| &model.tensors[t as usize].shape;
    let (kind, params, output_len, items) = match *op {
        Op::FullyConnected {
            input,
            bias,
            input_zero_point,
            weight_zero_point,
            ..
        } => {
            let (k, n) = (shape(input)[0], shape(bias)[0]);
            let p = params(&[
                batch as u32,
                k,
                n,
                input_zero_point as u32,
                weight_zero_point as u32,
            ]);
            let items = batch * n as u64;
            (ModelKernel::FullyConnected, p, items * 4, items)
        }
        Op::Requantize {
            input, requant: q, ..
        } => {
            let count = batch * model.tensors[input as usize].elements();
            let p = params(&[
                count as u32,
                q.multiplier as u32,
                q.shift as u32,
                q.output_zero_point as u32,
                q.act_min as i32 as u32,
                q.act_max as i32 as u32,
            ]);
            (ModelKernel::Requantize, p, count, count.div_ceil(4))
        }
        Op::MaxPool2d { input, pool, .. } | Op::AvgPool2d { input, pool, .. } => {
            let s = shape(input);
            let [oh, ow, c] = pool_output(s, pool)?;
            let average = u32::from(matches!(op, Op::AvgPool2d { .. }));
            let p = params(&[
                batch as u32,
                s[0],
                s[1],
                s[2],
                oh,
                ow,
                pool.kernel_h as u32,
                pool.kernel_w as u32,
                pool.stride_h as u32,
                pool.stride_w as u32,
                average,
            ]);
            let count = batch * oh as u64 * ow as u64 * c as u64;
            (ModelKernel::Pool2d, p, count, count.div_ceil(4))
        }
        Op::Argmax { input, .. } => {
            let is_i32 = u32::from(model.tensors[input as usize].dtype == DType::I32);
            let p = params(&[batch as u32, shape(input)[0], is_i32]);
            (ModelKernel::Argmax, p, batch * 4, batch)
        }
        Op::Conv2d {
            input,
            filter,
            input_zero_point,
            filter_zero_point,
            geometry: g,
            ..
        } => {
            let (s, f) = (shape(input), shape(filter));
            let [oh, ow, cout] = conv_output(s, f, g)?;
            let p = params(&[
                batch as u32,
                s[0],
                s[1],
                s[2],
                oh,
                ow,
                cout,
                f[1],
                f[2],
                g.stride_h as u32,
                g.stride_w as u32,
                g.pad_top as u32,
                g.pad_left as u32,
                input_zero_point as u32,
                filter_zero_point as u32,
            ]);
            let items = batch * oh as u64 * ow as u64 * cout as u64;
            (ModelKernel::Conv2d, p, items * 4, items)
        }
        Op::Add {
            a,
            a_zero_point,
            b_zero_point,
            left_shift,
            a_scale,
            b_scale,
            requant: q,
            ..
        } => {
            let count = batch * model.tensors[a as usize].elements();
            let p = params(&[
                count as u32,
                a_zero_point as u32,
                b_zero_point as u32,
                left_shift as u32,
                a_scale.multiplier as u32,
                a_scale.shift as u32,
                b_scale.multiplier as u32,
                b_scale.shift as u32,
                q.multiplier as u32,
                q.shift as u32,
                q.output_zero_point as u32,
                q.act_min as i32 as u32,
                q.act_max as i32 as u32,
            ]);
            (ModelKernel::Add, p, count, count.div_ceil(4))
        }
        Op::Reshape { .. } => return None,
    };
    // The operands in `Op::inputs` order, after the parameters: the layout a runtime that
    // binds device-resident tensors relies on.
    let mut buffers = vec![params];
    buffers.extend(op.inputs().into_iter().map(|t| storage(get(t))));
    Some(plan(kind, buffers, output_len, items))
}

/// A dispatch of the fixed-point probe over `(x, multiplier, shift)` cases (shift ≤ 31):
/// per case five u32 words, the 64-bit product `x·multiplier` (low, high),
/// `SaturatingRoundingDoublingHighMul`, `RoundingDivideByPOT(x, shift)` and
/// `MultiplyByQuantizedMultiplier`. [`probe_cpu`] gives the expected bytes.
pub fn probe_plan(cases: &[(i32, i32, u32)]) -> DispatchPlan<'static> {
    let words: Vec<u32> = cases
        .iter()
        .flat_map(|&(x, m, s)| [x as u32, m as u32, s, 0])
        .collect();
    let data: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let bufs = vec![
        params(&[cases.len() as u32]),
        BufferInit::padded(BindingKind::StorageRead, data),
    ];
    let n = cases.len() as u64;
    plan(ModelKernel::FixedPointProbe, bufs, n * 20, n)
}

/// The bytes [`probe_plan`] must return, from 64-bit CPU arithmetic.
pub fn probe_cpu(cases: &[(i32, i32, u32)]) -> Vec<u8> {
    cases
        .iter()
        .flat_map(|&(x, m, s)| {
            let p = (x as i64).wrapping_mul(m as i64) as u64;
            [
                p as u32,
                (p >> 32) as u32,
                saturating_rounding_doubling_high_mul(x, m) as u32,
                rounding_divide_by_pot(x, s) as u32,
                multiply_by_quantized_multiplier(x, m, s) as u32,
            ]
        })
        .flat_map(u32::to_le_bytes)
        .collect()
}
