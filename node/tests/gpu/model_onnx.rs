//! The shipped digits model imported with `stp model import` (the real binary), then run
//! on the GPU over part of the committed held-out set: the same bytes as the CPU reference.

use std::path::PathBuf;
use std::process::Command;

use stp_node::exec::model::run_gpu;
use stp_sdk::model::{ValidModel, run_cpu};

use super::support::runtime;

/// Held-out samples run on the GPU (of 450; the CPU test runs them all).
const SAMPLES: usize = 64;

fn digits(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../models/digits")
        .join(name)
}

fn imported(dir: &std::path::Path) -> ValidModel {
    let stpm = dir.join("digits.stpm");
    let out = Command::new(env!("CARGO_BIN_EXE_stp"))
        .args(["model", "import", "--json", "--output"])
        .arg(&stpm)
        .arg(digits("digits_int8.onnx"))
        .output()
        .expect("stp runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["max_scale_error"].as_f64().unwrap() < 1e-8,
        "{report}"
    );
    assert_eq!(report["scales"].as_array().unwrap().len(), 2);
    ValidModel::decode(&std::fs::read(&stpm).unwrap()).unwrap()
}

fn digits_on(backends: &str) {
    let dir = tempfile::tempdir().unwrap();
    let model = imported(dir.path());
    let Some(mut rt) = runtime(backends) else {
        return;
    };
    let input = std::fs::read(digits("heldout_input.bin")).unwrap();
    let part = &input[..SAMPLES * 64];
    let (gpu, _) = run_gpu(&mut rt, &model, part).unwrap();
    let cpu = run_cpu(&model, part).unwrap();
    assert_eq!(gpu, cpu, "{backends}: GPU and CPU bytes differ");
    assert_eq!(gpu.outputs[1].len(), SAMPLES * 4);
}

#[test]
fn imported_digits_gpu_equals_cpu_on_vulkan() {
    digits_on("vulkan");
}

#[test]
fn imported_digits_gpu_equals_cpu_on_gl() {
    digits_on("gl");
}

#[test]
fn import_errors_name_the_file_and_keep_going() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("half.onnx");
    let bytes = std::fs::read(digits("digits_int8.onnx")).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_stp"))
        .args(["model", "import", "--output"])
        .arg(dir.path().join("x.stpm"))
        .arg(&bad)
        .output()
        .expect("stp runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("cannot import") && err.contains("not a readable ONNX file"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// The convolutional digits model (`models/digits_cnn/`, QOperator form) on the GPU over
/// part of its held-out set: the CPU reference's bytes (conv, pools, flatten, FC).
fn cnn_on(backends: &str) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/digits_cnn");
    let onnx = std::fs::read(root.join("digits_cnn_qop.onnx")).unwrap();
    let model = stp_sdk::model::onnx::import(&onnx).unwrap().model;
    let Some(mut rt) = runtime(backends) else {
        return;
    };
    let input = std::fs::read(root.join("heldout_input.bin")).unwrap();
    let part = &input[..SAMPLES * 64];
    let (gpu, _) = run_gpu(&mut rt, &model, part).unwrap();
    assert_eq!(
        gpu,
        run_cpu(&model, part).unwrap(),
        "{backends}: GPU and CPU bytes differ"
    );
}

#[test]
fn imported_cnn_gpu_equals_cpu_on_vulkan() {
    cnn_on("vulkan");
}

#[test]
fn imported_cnn_gpu_equals_cpu_on_gl() {
    cnn_on("gl");
}
