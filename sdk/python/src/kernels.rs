//! Built-in kernel inputs and output layouts, from `stp_sdk::kernels` (the encoders and
//! validators the CLI and the providers use). A bad shape or parameter is a `ValueError`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use stp_sdk::kernels::{
    self, Builtin, KernelId, mandelbrot, matmul_i8,
    matmul_u32::{self, MatmulShape},
    sha256_batch,
};

/// Adds the kernel functions to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(encode_matmul_u32, m)?)?;
    m.add_function(wrap_pyfunction!(encode_matmul_i8, m)?)?;
    m.add_function(wrap_pyfunction!(encode_sha256_batch, m)?)?;
    m.add_function(wrap_pyfunction!(encode_mandelbrot, m)?)?;
    m.add_function(wrap_pyfunction!(output_layout, m)?)?;
    m.add_function(wrap_pyfunction!(builtin_kernels, m)?)?;
    m.add_function(wrap_pyfunction!(kernel_id, m)?)?;
    Ok(())
}

fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// The kernel named `name` (`matmul-u32`) or with this 64-hex id (a custom kernel's too).
pub(crate) fn resolve(name: &str) -> PyResult<KernelId> {
    stp_node::consumer::resolve_kernel(name).map_err(value_error)
}

fn le_u32(what: &str, bytes: &[u8]) -> PyResult<Vec<u32>> {
    if !bytes.len().is_multiple_of(4) {
        return Err(value_error(format!(
            "{what} holds {} bytes, not whole little-endian uint32 elements",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// matmul-u32 input: A (M×K) and B (K×N) as little-endian uint32 bytes, row-major.
#[pyfunction]
fn encode_matmul_u32<'py>(
    py: Python<'py>,
    m: u32,
    k: u32,
    n: u32,
    a: &[u8],
    b: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let (a, b) = (le_u32("A", a)?, le_u32("B", b)?);
    let input = matmul_u32::encode_input(MatmulShape { m, k, n }, &a, &b).map_err(value_error)?;
    Ok(PyBytes::new(py, &input))
}

/// matmul-i8 input: A (M×K) and B (K×N) as int8 bytes, row-major.
#[pyfunction]
fn encode_matmul_i8<'py>(
    py: Python<'py>,
    m: u32,
    k: u32,
    n: u32,
    a: &[u8],
    b: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let as_i8 = |v: &[u8]| v.iter().map(|&x| x as i8).collect::<Vec<_>>();
    let input = matmul_i8::encode_input(MatmulShape { m, k, n }, &as_i8(a), &as_i8(b))
        .map_err(value_error)?;
    Ok(PyBytes::new(py, &input))
}

/// sha256-batch input: messages of one length.
#[pyfunction]
fn encode_sha256_batch<'py>(
    py: Python<'py>,
    messages: Vec<Vec<u8>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let input = sha256_batch::encode_input(&messages).map_err(value_error)?;
    Ok(PyBytes::new(py, &input))
}

/// mandelbrot-fixed input: a `width × height` tile centred on (`cx`, `cy`) spanning `span`.
#[pyfunction]
fn encode_mandelbrot<'py>(
    py: Python<'py>,
    width: u32,
    height: u32,
    cx: f64,
    cy: f64,
    span: f64,
    max_iter: u32,
) -> PyResult<Bound<'py, PyBytes>> {
    let tile = mandelbrot::Tile::centered(width, height, cx, cy, span, max_iter);
    Ok(PyBytes::new(py, &tile.encode().map_err(value_error)?))
}

/// The NumPy dtype name and shape of a built-in kernel's output for `input`; `None` for a
/// custom kernel (its output is plain bytes).
#[pyfunction]
pub(crate) fn output_layout(
    kernel: &str,
    input: &[u8],
) -> PyResult<Option<(&'static str, Vec<usize>)>> {
    let id = resolve(kernel)?;
    layout(&id, input).map_err(value_error)
}

/// [`output_layout`] for a resolved kernel.
pub(crate) fn layout(
    id: &KernelId,
    input: &[u8],
) -> kernels::Result<Option<(&'static str, Vec<usize>)>> {
    let Some(def) = kernels::builtin(id) else {
        return Ok(None);
    };
    let dims = |a: u32, b: u32| vec![a as usize, b as usize];
    Ok(Some(match def.builtin {
        Builtin::MatmulU32 => {
            let s = matmul_u32::parse(input)?.shape;
            ("uint32", dims(s.m, s.n))
        }
        Builtin::MatmulI8 => {
            let s = matmul_i8::parse(input)?.shape;
            ("int32", dims(s.m, s.n))
        }
        Builtin::Sha256Batch => ("uint8", dims(sha256_batch::parse(input)?.count, 32)),
        Builtin::Mandelbrot => {
            let t = mandelbrot::parse(input)?;
            ("uint8", vec![t.height as usize, t.width as usize, 4])
        }
    }))
}

/// The built-in kernels: (name, 64-hex id, summary, input layout, output layout).
#[pyfunction]
fn builtin_kernels() -> Vec<(
    &'static str,
    String,
    &'static str,
    &'static str,
    &'static str,
)> {
    kernels::builtin_kernels()
        .iter()
        .map(|d| {
            (
                d.name,
                d.id.to_string(),
                d.summary,
                d.input_layout,
                d.output_layout,
            )
        })
        .collect()
}

/// The 64-hex id of a kernel given by name or id.
#[pyfunction]
fn kernel_id(kernel: &str) -> PyResult<String> {
    Ok(resolve(kernel)?.to_string())
}
