//! `stp model synth|info|input|run` end to end through the real binary: the GPU and the
//! CPU reference print the same outputs and hash, and bad files and inputs get clear errors.

use std::path::Path;
use std::process::{Command, Output};

use stp_sdk::model::{ValidModel, run_cpu};

use super::support::runtime;

fn stp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stp"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("stp runs")
}

fn ok(args: &[&str]) -> serde_json::Value {
    let out = stp(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stp {args:?} failed: {err}");
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

fn refused(args: &[&str]) -> String {
    let out = stp(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "stp {args:?} succeeded");
    assert!(!err.contains("panicked"), "stp {args:?} panicked: {err}");
    err
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

#[test]
fn synth_info_input_run_agree_on_gpu_and_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let (m, x) = (path(dir.path(), "m.stpm"), path(dir.path(), "x.bin"));
    ok(&[
        "model", "synth", "--layers", "64,32,10", "--seed", "9", "--output", &m,
    ]);
    let model = ValidModel::decode(&std::fs::read(&m).unwrap()).unwrap();
    let info = ok(&["model", "info", &m, "--json"]);
    assert_eq!(info["id"], model.id().to_string());
    assert_eq!(info["ops"].as_array().map(Vec::len), Some(5));
    ok(&["model", "input", &m, "--batch", "3", "--output", &x]);
    let input = std::fs::read(&x).unwrap();
    let expected = hex::encode(run_cpu(&model, &input).unwrap().sha256());
    let cpu = ok(&[
        "model",
        "run",
        &m,
        "--input",
        &x,
        "--backend",
        "cpu",
        "--json",
    ]);
    assert_eq!(cpu["sha256"], expected);
    assert_eq!(cpu["batch"], 3);
    if runtime("vulkan").is_none() {
        return;
    }
    let gpu = ok(&[
        "model",
        "run",
        &m,
        "--input",
        &x,
        "--backend",
        "gpu",
        "--wgpu-backends",
        "vulkan",
        "--json",
    ]);
    assert_eq!(gpu["sha256"], expected);
    assert_eq!(gpu["outputs"], cpu["outputs"]);
}

#[test]
fn bad_model_files_and_inputs_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (m, x) = (path(dir.path(), "m.stpm"), path(dir.path(), "x.bin"));
    ok(&["model", "synth", "--layers", "16,4", "--output", &m]);
    std::fs::write(&x, [0u8; 15]).unwrap();
    let err = refused(&["model", "run", &m, "--input", &x, "--backend", "cpu"]);
    assert!(
        err.contains("not a positive multiple of the model's 16-byte sample"),
        "{err}"
    );

    let bytes = std::fs::read(&m).unwrap();
    let cut = path(dir.path(), "cut.stpm");
    std::fs::write(&cut, &bytes[..bytes.len() - 3]).unwrap();
    let err = refused(&["model", "info", &cut]);
    assert!(
        err.contains("is not a valid model") && err.contains("truncated"),
        "{err}"
    );

    let junk = path(dir.path(), "junk.stpm");
    std::fs::write(&junk, b"not a model").unwrap();
    let err = refused(&["model", "run", &junk, "--input", &x]);
    assert!(err.contains("STPM"), "{err}");

    let err = refused(&["model", "synth", "--layers", "16", "--output", &m]);
    assert!(err.contains("2 to 32 layer sizes"), "{err}");
}

/// `stp bench model` measures a synthetic model, a model file and the shipped ONNX
/// classifier at each batch size and says the GPU's output equals the CPU reference's on
/// every row.
#[test]
fn bench_model_compares_gpu_and_cpu_on_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let m = path(dir.path(), "m.stpm");
    ok(&["model", "synth", "--layers", "16,8,4", "--output", &m]);
    let digits = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../models/digits/digits_int8.onnx"
    );
    let report = ok(&[
        "bench",
        "model",
        "--model",
        "synth:8,4",
        "--model",
        &m,
        "--model",
        digits,
        "--batches",
        "1,5",
        "--runs",
        "1",
        "--json",
    ]);
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 6, "{report}");
    for row in rows {
        assert_eq!(row["outputs_match"], true, "{report}");
        assert!(row["cpu_inferences_per_second"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(rows[2]["model"], m.as_str());
    let err = refused(&["bench", "model", "--model", "synth:8,x"]);
    assert!(
        err.contains("layer widths are comma-separated integers"),
        "{err}"
    );
}
