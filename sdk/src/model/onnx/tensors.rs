//! Reading ONNX initializers: element type, dims and values (raw or typed storage).

use super::OnnxError;
use super::proto::TensorProto;

/// ONNX `TensorProto.DataType` codes the importer reads.
pub(super) mod data_type {
    /// float32.
    pub(in super::super) const FLOAT: i32 = 1;
    /// uint8.
    pub(in super::super) const UINT8: i32 = 2;
    /// int8.
    pub(in super::super) const INT8: i32 = 3;
    /// int32.
    pub(in super::super) const INT32: i32 = 6;
    /// int64 (shapes).
    pub(in super::super) const INT64: i32 = 7;
}

/// An initializer's values, widened to i32 (int8 / int32) or kept as f32.
#[derive(Debug, Clone)]
pub(super) enum ConstValues {
    /// int8 or int32 values (int64 ones saturated to i32: they are shapes).
    Int(Vec<i32>),
    /// float32 values.
    Float(Vec<f32>),
}

/// An initializer: its ONNX element type, dims and values.
#[derive(Debug, Clone)]
pub(super) struct Const {
    pub(super) data_type: i32,
    pub(super) dims: Vec<i64>,
    pub(super) values: ConstValues,
}

fn bad(name: &str, detail: String) -> OnnxError {
    OnnxError::Unsupported {
        node: name.to_owned(),
        detail,
    }
}

impl Const {
    /// Decodes an initializer of type float, int8, uint8 or int32.
    pub(super) fn from_proto(t: &TensorProto) -> Result<Self, OnnxError> {
        let elements = t
            .dims
            .iter()
            .try_fold(1i64, |n, &d| {
                n.checked_mul(d).filter(|_| (1..=1 << 24).contains(&d))
            })
            .filter(|&n| n <= 1 << 28)
            .ok_or_else(|| {
                bad(
                    t.name(),
                    format!(
                        "dims {:?} out of range (each 1 to 2^24, 2^28 elements in all)",
                        t.dims
                    ),
                )
            })? as usize;
        let raw = t.raw_data();
        let values = match t.data_type() {
            data_type::FLOAT if !raw.is_empty() => ConstValues::Float(
                raw.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            data_type::FLOAT => ConstValues::Float(t.float_data.clone()),
            data_type::INT8 if !raw.is_empty() => {
                ConstValues::Int(raw.iter().map(|&b| b as i8 as i32).collect())
            }
            data_type::UINT8 if !raw.is_empty() => {
                ConstValues::Int(raw.iter().map(|&b| b as i32).collect())
            }
            data_type::INT32 if !raw.is_empty() => ConstValues::Int(
                raw.chunks_exact(4)
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            data_type::INT8 | data_type::UINT8 | data_type::INT32 => {
                ConstValues::Int(t.int32_data.clone())
            }
            data_type::INT64 => {
                let wide: Vec<i64> = if raw.is_empty() {
                    t.int64_data.clone()
                } else {
                    raw.chunks_exact(8)
                        .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                        .collect()
                };
                let narrow = |v: i64| v.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
                ConstValues::Int(wide.into_iter().map(narrow).collect())
            }
            other => {
                return Err(bad(
                    t.name(),
                    format!(
                        "initializer element type {other} is not float, int8, uint8, int32 or int64"
                    ),
                ));
            }
        };
        let len = match &values {
            ConstValues::Int(v) => v.len(),
            ConstValues::Float(v) => v.len(),
        };
        if len != elements {
            return Err(bad(
                t.name(),
                format!(
                    "initializer holds {len} values, its dims {:?} need {elements}",
                    t.dims
                ),
            ));
        }
        Ok(Self {
            data_type: t.data_type(),
            dims: t.dims.clone(),
            values,
        })
    }

    /// The single value of a scalar (or one-element) float initializer.
    pub(super) fn scalar_f32(&self, name: &str) -> Result<f32, OnnxError> {
        match &self.values {
            ConstValues::Float(v) if v.len() == 1 => Ok(v[0]),
            _ => Err(bad(
                name,
                format!(
                    "a per-tensor float scale is needed, found dims {:?} (per-channel scales are not supported)",
                    self.dims
                ),
            )),
        }
    }

    /// The single value of a scalar (or one-element) integer initializer.
    pub(super) fn scalar_int(&self, name: &str) -> Result<i32, OnnxError> {
        match &self.values {
            ConstValues::Int(v) if v.len() == 1 => Ok(v[0]),
            _ => Err(bad(
                name,
                format!(
                    "a per-tensor integer zero point is needed, found dims {:?}",
                    self.dims
                ),
            )),
        }
    }
}
