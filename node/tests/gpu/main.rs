//! GPU tests on whatever adapter exists (Mesa lavapipe / llvmpipe in CI): GPU bytes equal
//! CPU-reference bytes for every built-in kernel on Vulkan and GL, known answers on the
//! GPU, quantized models op by op, and the executor's handling of bad input, deadlines and concurrency.
//!
//! Without an adapter these tests fail when `CI=true` and skip with a message otherwise.

mod cli;
mod executor;
mod fuel;
mod fuel_driver;
mod fuel_groups;
mod kernels;
mod model;
mod model_cli;
mod model_onnx;
mod support;
