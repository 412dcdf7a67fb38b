//! The model graph and its binary encoding (`.stpm`).
//!
//! All integers little-endian. The encoding is canonical (one model, one byte string), so
//! the model id, SHA-256 of the bytes, names the model:
//!
//! ```text
//! "STPM"  u32 version (= 1)
//! u32 tensor count, per tensor:
//!     u8 dtype (0 int8, 1 int32)  u8 rank (1..=4)  rank × u32 dims
//!     u8 constant (0/1); if 1: the data, elements × dtype size bytes, row-major
//! u32 input tensor
//! u32 output count, per output: u32 tensor
//! u32 op count, per op: u8 op code, then its fields:
//!     1 fully-connected  u32 input, weights, bias, output; i32 input_zp, weight_zp
//!     2 requantize       u32 input, output; i32 multiplier; u8 shift; i32 output_zp;
//!                        i8 act_min, act_max
//!     3 max-pool-2d      u32 input, output; u8 kernel_h, kernel_w, stride_h, stride_w
//!     4 avg-pool-2d      (as max-pool-2d)
//!     5 reshape          u32 input, output
//!     6 argmax           u32 input, output
//!     7 conv-2d          u32 input, filter, bias, output; i32 input_zp, filter_zp;
//!                        u8 stride_h, stride_w, pad_top, pad_left, pad_bottom, pad_right
//!     8 add              u32 a, b, output; i32 a_zp, b_zp; u8 left_shift;
//!                        i32 a_multiplier; u8 a_shift; i32 b_multiplier; u8 b_shift;
//!                        i32 multiplier; u8 shift; i32 output_zp; i8 act_min, act_max
//! ```
//!
//! Shapes are per sample: a run over a batch of `B` inputs gives every activation tensor a
//! leading batch dimension of `B`, and constants are shared by the whole batch.

use super::ModelError;
use super::fixedpoint::Requant;

/// The magic bytes a model file starts with.
pub const MAGIC: &[u8; 4] = b"STPM";
/// The format version this build writes and reads.
pub const VERSION: u32 = 1;

/// Element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// Signed 8-bit, one byte per element.
    I8,
    /// Signed 32-bit, four little-endian bytes per element.
    I32,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> u64 {
        match self {
            Self::I8 => 1,
            Self::I32 => 4,
        }
    }

    /// The name used in messages and listings.
    pub fn name(self) -> &'static str {
        match self {
            Self::I8 => "int8",
            Self::I32 => "int32",
        }
    }

    pub(super) fn code(self) -> u8 {
        match self {
            Self::I8 => 0,
            Self::I32 => 1,
        }
    }
}

/// One tensor of the graph: a constant (weights, bias) or an activation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tensor {
    /// Element type.
    pub dtype: DType,
    /// Per-sample shape, 1 to 4 dimensions, each at least 1.
    pub shape: Vec<u32>,
    /// The values of a constant (`elements × dtype size` bytes); `None` for activations.
    pub data: Option<Vec<u8>>,
}

impl Tensor {
    /// Number of elements (product of the shape, saturating).
    pub fn elements(&self) -> u64 {
        self.shape
            .iter()
            .fold(1u64, |n, &d| n.saturating_mul(d as u64))
    }

    /// Bytes of one sample of this tensor.
    pub fn bytes(&self) -> u64 {
        self.elements() * self.dtype.size()
    }
}

/// Window and stride of a 2-D pool over an NHWC int8 tensor (no padding: "valid").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool2d {
    /// Window height, `1..=16`.
    pub kernel_h: u8,
    /// Window width, `1..=16`.
    pub kernel_w: u8,
    /// Vertical stride, `1..=16`.
    pub stride_h: u8,
    /// Horizontal stride, `1..=16`.
    pub stride_w: u8,
}

/// Strides and zero padding of a 2-D convolution over NHWC tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dGeometry {
    /// Vertical stride, `1..=16`.
    pub stride_h: u8,
    /// Horizontal stride, `1..=16`.
    pub stride_w: u8,
    /// Rows of padding above, `0..=16`.
    pub pad_top: u8,
    /// Columns of padding on the left, `0..=16`.
    pub pad_left: u8,
    /// Rows of padding below, `0..=16`.
    pub pad_bottom: u8,
    /// Columns of padding on the right, `0..=16`.
    pub pad_right: u8,
}

/// A fixed-point scale `multiplier · 2⁻³¹ · 2⁻ˢʰⁱᶠᵗ` (as in [`Requant`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    /// `1..=i32::MAX`.
    pub multiplier: i32,
    /// Right shift, `0..=31`.
    pub shift: u8,
}

/// One integer-only operation. Tensor operands are indices into [`Model::tensors`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `out[n] = bias[n] + Σₖ (in[k] − input_zp)·(w[n][k] − weight_zp)`: int8 input `[K]`,
    /// constant int8 weights `[N, K]` (TFLite layout), constant int32 bias `[N]`, int32
    /// output `[N]`, accumulated in wrapping i32 (K ≤ 16,384 keeps the sum itself exact).
    FullyConnected {
        /// Activation, int8 `[K]`.
        input: u32,
        /// Constant int8 `[N, K]`.
        weights: u32,
        /// Constant int32 `[N]`.
        bias: u32,
        /// int32 `[N]`.
        output: u32,
        /// Input zero point, `-128..=127`.
        input_zero_point: i32,
        /// Weight zero point, `-128..=127` (0 for TFLite's symmetric int8 weights).
        weight_zero_point: i32,
    },
    /// int32 → int8, element-wise, by [`Requant::apply`]; same shape in and out.
    Requantize {
        /// int32 tensor.
        input: u32,
        /// int8 tensor of the same shape.
        output: u32,
        /// The fixed-point parameters.
        requant: Requant,
    },
    /// Maximum over each window of an int8 `[H, W, C]` tensor → `[OH, OW, C]`,
    /// `OH = (H − kernel_h) / stride_h + 1` (likewise OW).
    MaxPool2d {
        /// int8 `[H, W, C]`.
        input: u32,
        /// int8 `[OH, OW, C]`.
        output: u32,
        /// Window and stride.
        pool: Pool2d,
    },
    /// Mean over each window, as TFLite's int8 reference rounds it: with `s` the window's
    /// sum and `n` its size, `(s + n/2) / n` if `s > 0`, else `(s − n/2) / n`, both
    /// divisions truncating (round half away from zero). Shapes as [`Op::MaxPool2d`].
    AvgPool2d {
        /// int8 `[H, W, C]`.
        input: u32,
        /// int8 `[OH, OW, C]`.
        output: u32,
        /// Window and stride.
        pool: Pool2d,
    },
    /// Same bytes, another shape with as many elements (metadata only, no kernel).
    Reshape {
        /// Any tensor.
        input: u32,
        /// Same dtype and element count.
        output: u32,
    },
    /// 2-D convolution, TFLite layouts: int8 input `[H, W, Cin]` (NHWC per sample),
    /// constant int8 filter `[Cout, KH, KW, Cin]` (OHWI), constant int32 bias `[Cout]`,
    /// int32 output `[OH, OW, Cout]` with
    /// `OH = (H + pad_top + pad_bottom − KH) / stride_h + 1` (likewise OW), and
    /// `out[y][x][o] = bias[o] + Σ (in − input_zp)·(f − filter_zp)` over the window's taps
    /// inside the input: padding counts as the input zero point (contributes 0), as in
    /// TFLite. `KH·KW·Cin ≤ 16,384`, `KH, KW ≤ 32`. Wrapping i32.
    Conv2d {
        /// int8 `[H, W, Cin]`.
        input: u32,
        /// Constant int8 `[Cout, KH, KW, Cin]`.
        filter: u32,
        /// Constant int32 `[Cout]`.
        bias: u32,
        /// int32 `[OH, OW, Cout]`.
        output: u32,
        /// Input zero point, `-128..=127`.
        input_zero_point: i32,
        /// Filter zero point, `-128..=127`.
        filter_zero_point: i32,
        /// Strides and padding.
        geometry: Conv2dGeometry,
    },
    /// Quantized element-wise add of two int8 tensors of one shape, as TFLite's int8 add:
    /// `sa = MBQM((a − a_zp)·2^left_shift, a_scale)`, likewise `sb`, then
    /// `out = clamp(MBQM(sa + sb, requant) + output_zp, act_min, act_max)` ([`Requant`]
    /// applied to the wrapping sum). `left_shift ≤ 22` keeps every step within i32.
    Add {
        /// int8 tensor.
        a: u32,
        /// int8 tensor of the same shape.
        b: u32,
        /// int8 tensor of the same shape.
        output: u32,
        /// Zero point of `a`, `-128..=127`.
        a_zero_point: i32,
        /// Zero point of `b`, `-128..=127`.
        b_zero_point: i32,
        /// Left shift applied to both inputs first (TFLite uses 20), `0..=22`.
        left_shift: u8,
        /// Scale of `a`.
        a_scale: Scale,
        /// Scale of `b`.
        b_scale: Scale,
        /// Output scale, zero point and activation range.
        requant: Requant,
    },
    /// Index of the largest element of an int8 or int32 `[C]` tensor (`C ≤ 16,384`); the
    /// first maximum wins on ties. Output int32 `[1]`.
    Argmax {
        /// int8 or int32 `[C]`.
        input: u32,
        /// int32 `[1]`.
        output: u32,
    },
}

impl Op {
    /// Short name, as in `stp model info`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::FullyConnected { .. } => "fully-connected",
            Self::Requantize { .. } => "requantize",
            Self::MaxPool2d { .. } => "max-pool-2d",
            Self::AvgPool2d { .. } => "avg-pool-2d",
            Self::Reshape { .. } => "reshape",
            Self::Argmax { .. } => "argmax",
            Self::Conv2d { .. } => "conv-2d",
            Self::Add { .. } => "add",
        }
    }

    /// The tensors the op reads, in operand order.
    pub fn inputs(&self) -> Vec<u32> {
        match *self {
            Self::FullyConnected {
                input,
                weights,
                bias,
                ..
            } => vec![input, weights, bias],
            Self::Conv2d {
                input,
                filter,
                bias,
                ..
            } => vec![input, filter, bias],
            Self::Add { a, b, .. } => vec![a, b],
            Self::Requantize { input, .. }
            | Self::MaxPool2d { input, .. }
            | Self::AvgPool2d { input, .. }
            | Self::Reshape { input, .. }
            | Self::Argmax { input, .. } => vec![input],
        }
    }

    /// The tensor the op writes.
    pub fn output(&self) -> u32 {
        match *self {
            Self::FullyConnected { output, .. }
            | Self::Requantize { output, .. }
            | Self::MaxPool2d { output, .. }
            | Self::AvgPool2d { output, .. }
            | Self::Reshape { output, .. }
            | Self::Argmax { output, .. }
            | Self::Conv2d { output, .. }
            | Self::Add { output, .. } => output,
        }
    }
}

/// A graph of integer-only ops over int8/int32 tensors. Build one, then check it with
/// [`super::ValidModel::new`]; files are read with [`super::ValidModel::decode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    /// Every tensor: constants, the input, intermediates and outputs.
    pub tensors: Vec<Tensor>,
    /// The int8 input tensor (fed one sample at a time, batched).
    pub input: u32,
    /// The tensors returned by a run, in order.
    pub outputs: Vec<u32>,
    /// The ops, in dataflow order.
    pub ops: Vec<Op>,
}

pub(super) fn too_large(what: impl Into<String>, value: u64, limit: u64) -> ModelError {
    ModelError::TooLarge {
        what: what.into(),
        value,
        limit,
    }
}
