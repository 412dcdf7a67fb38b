//! The `stp kernel` commands end to end through the real binary.

use std::path::Path;
use std::process::{Command, Output};

use stp_sdk::kernels::{self, find_kernel, result_hash};

fn stp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stp"))
        .args(args)
        .output()
        .expect("stp runs")
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

#[test]
fn kernel_list_json_names_every_builtin_with_its_id() {
    let out = stp(&["kernel", "list", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.len(), kernels::builtin_kernels().len());
    for (entry, def) in list.iter().zip(kernels::builtin_kernels()) {
        assert_eq!(entry["name"], def.name);
        assert_eq!(entry["id"], def.id.to_string());
    }
}

#[test]
fn kernel_input_then_run_prints_the_reference_hash_and_a_ppm() {
    let dir = tempfile::tempdir().unwrap();
    let (input, output, ppm) = (
        path(dir.path(), "in"),
        path(dir.path(), "out"),
        path(dir.path(), "m.ppm"),
    );
    let made = stp(&[
        "kernel",
        "input",
        "mandelbrot-fixed",
        "--width",
        "32",
        "--height",
        "24",
        "--output",
        &input,
    ]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let run = stp(&[
        "kernel",
        "run",
        "mandelbrot-fixed",
        "--input",
        &input,
        "--output",
        &output,
        "--backend",
        "auto",
        "--ppm",
        &ppm,
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let input_bytes = std::fs::read(&input).unwrap();
    let reference =
        kernels::cpu_reference(&find_kernel("mandelbrot-fixed").unwrap().id, &input_bytes).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        hex::encode(result_hash(&reference))
    );
    assert_eq!(std::fs::read(&output).unwrap(), reference);
    let image = std::fs::read(&ppm).unwrap();
    assert!(image.starts_with(b"P6\n32 24\n255\n"));
    assert_eq!(image.len(), b"P6\n32 24\n255\n".len() + 32 * 24 * 3);
}

#[test]
fn kernel_run_on_bad_input_fails_with_a_message_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let input = path(dir.path(), "bad");
    std::fs::write(&input, [1, 0, 0, 0, 1, 0]).unwrap();
    let run = stp(&[
        "kernel",
        "run",
        "matmul-u32",
        "--input",
        &input,
        "--output",
        &path(dir.path(), "o"),
        "--backend",
        "cpu",
    ]);
    assert_eq!(
        run.status.code(),
        Some(1),
        "an error exit, not a panic (101)"
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("input truncated"), "{stderr}");
    let unknown = stp(&[
        "kernel",
        "run",
        "matmul-f64",
        "--input",
        &input,
        "--output",
        "o",
    ]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown kernel"));
}
