//! Quantized models (`stp_sdk::model`): a model file's description, model-job inputs and
//! the layouts of their outputs, and the CPU reference run. Bad files and samples of the
//! wrong size are `ValueError`s.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use stp_sdk::model::{DType, ValidModel, job, run_cpu};

use crate::kernels::resolve;

/// Adds the model functions to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(model_info, m)?)?;
    m.add_function(wrap_pyfunction!(encode_model_job, m)?)?;
    m.add_function(wrap_pyfunction!(model_output_layout, m)?)?;
    m.add_function(wrap_pyfunction!(run_model_cpu, m)?)?;
    m.add_function(wrap_pyfunction!(import_onnx, m)?)?;
    Ok(())
}

fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn decode(file: &[u8]) -> PyResult<ValidModel> {
    ValidModel::decode(file).map_err(|e| value_error(format!("not a valid model: {e}")))
}

fn dtype(d: DType) -> &'static str {
    match d {
        DType::I8 => "int8",
        DType::I32 => "int32",
    }
}

/// One tensor's NumPy dtype and per-sample shape.
type Layout = (&'static str, Vec<usize>);

fn layouts(model: &ValidModel) -> Vec<Layout> {
    let m = model.model();
    m.outputs
        .iter()
        .map(|&o| {
            let t = &m.tensors[o as usize];
            (
                dtype(t.dtype),
                t.shape.iter().map(|&d| d as usize).collect(),
            )
        })
        .collect()
}

/// (model id, kernel id of its jobs, input shape per sample, outputs' layouts).
#[pyfunction]
fn model_info(file: &[u8]) -> PyResult<(String, String, Vec<usize>, Vec<Layout>)> {
    let model = decode(file)?;
    let input = model.input().shape.iter().map(|&d| d as usize).collect();
    Ok((
        model.id().to_string(),
        job::kernel_id(&model.id()).to_string(),
        input,
        layouts(&model),
    ))
}

/// A model job's input: the model file and int8 samples, checked against each other.
#[pyfunction]
fn encode_model_job<'py>(
    py: Python<'py>,
    file: &[u8],
    samples: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let model = decode(file)?;
    model.batch_of(samples).map_err(value_error)?;
    Ok(PyBytes::new(py, &job::encode(file, samples)))
}

/// For a model job: the batch size and each output's layout; `None` for any other job.
#[pyfunction]
fn model_output_layout(kernel: &str, input: &[u8]) -> PyResult<Option<(u32, Vec<Layout>)>> {
    let id = resolve(kernel)?;
    let Some(decoded) = stp_sdk::kernels::model_job(&id, input) else {
        return Ok(None);
    };
    let j = decoded.map_err(value_error)?;
    Ok(Some((j.batch, layouts(&j.model))))
}

/// The model's outputs over `samples` on the CPU reference (the bytes every provider must
/// return), concatenated in order.
#[pyfunction]
fn run_model_cpu<'py>(
    py: Python<'py>,
    file: &[u8],
    samples: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let model = decode(file)?;
    let out = py
        .detach(|| run_cpu(&model, samples))
        .map_err(value_error)?;
    Ok(PyBytes::new(py, &out.to_bytes()))
}

/// Imports an int8 QDQ ONNX model: (the model file's bytes, the largest relative error of
/// the float scales' conversion to integer multipliers and shifts).
#[pyfunction]
fn import_onnx<'py>(py: Python<'py>, onnx: &[u8]) -> PyResult<(Bound<'py, PyBytes>, f64)> {
    let imported = stp_sdk::model::onnx::import(onnx)
        .map_err(|e| value_error(format!("cannot import the ONNX model: {e}")))?;
    let file = imported.model.model().encode();
    Ok((PyBytes::new(py, &file), imported.max_scale_error()))
}
