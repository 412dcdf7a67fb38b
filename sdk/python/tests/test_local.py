"""The parts that need no chain: kernel inputs and output layouts, the progress display."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import sharethepower as stp
from sharethepower._progress import Progress


def test_builtin_kernels_are_listed_with_their_ids():
    kernels = {k["name"]: k for k in stp.kernels.builtin()}
    assert {"matmul-u32", "matmul-i8", "sha256-batch", "mandelbrot-fixed"} <= set(kernels)
    for name, k in kernels.items():
        assert len(k["id"]) == 64 and stp._native.kernel_id(name) == k["id"]


def test_output_layouts_follow_the_input():
    u = np.ones((5, 7), dtype=np.uint32)
    i = np.ones((3, 4), dtype=np.int8)
    cases = [
        (stp.kernels.matmul_u32(u, u.T), np.uint32, (5, 5)),
        (stp.kernels.matmul_i8(i, i.T), np.int32, (3, 3)),
        (stp.kernels.sha256_batch(np.zeros((11, 8), dtype=np.uint8)), np.uint8, (11, 32)),
        (stp.kernels.mandelbrot_fixed(16, 8, max_iter=32), np.uint8, (8, 16, 4)),
    ]
    for ki, dtype, shape in cases:
        assert ki.output_dtype == np.dtype(dtype) and ki.output_shape == shape, ki


def test_inputs_are_laid_out_by_the_rust_encoder():
    a = np.array([[1, 2]], dtype=np.uint32)
    b = np.array([[3], [4]], dtype=np.uint32)
    words = np.frombuffer(stp.kernels.matmul_u32(a, b).data, dtype="<u4")
    assert words.tolist() == [1, 2, 1, 1, 2, 3, 4]  # M, K, N, then A and B row-major


def test_kernel_limits_are_checked_in_rust():
    with pytest.raises(ValueError, match="invalid sha256-batch parameters"):
        stp.kernels.sha256_batch([b"x" * 20_000])
    with pytest.raises(ValueError, match="max_iter"):
        stp.kernels.mandelbrot_fixed(8, 8, max_iter=0)
    with pytest.raises(ValueError, match="no built-in kernel named"):
        stp.kernels.KernelInput("no-such-kernel", b"").output_shape


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_redraws_in_a_terminal_and_writes_changes_elsewhere():
    log = io.StringIO()
    p = Progress(log)
    for msg in ["job 1: Open", "job 1: Open", "job 1: Settled"]:
        p(msg, "Open", 0, 0, 3)
    p.close("job 1: completed")
    lines = log.getvalue().splitlines()
    assert len(lines) == 3 and lines[0].endswith("job 1: Open") and "\r" not in log.getvalue()
    tty = _Tty()
    p = Progress(tty)
    p("job 1: Open - slots 0/3", "Open", 0, 0, 3)
    p("job 1: Settled", "Settled", 3, 3, 3)
    p.close("job 1: completed")
    out = tty.getvalue()
    assert out.count("\r") == 3 and out.endswith("\n") and "job 1: completed" in out


DIGITS = Path(__file__).resolve().parents[3] / "models" / "digits"


def test_the_shipped_digits_model_imports_and_scores_on_the_cpu_reference():
    model = stp.Model.from_onnx(DIGITS / "digits_int8.onnx")
    assert len(model.id) == 64 and model.kernel_id != model.id
    assert model.import_error is not None and model.import_error < 1e-6
    assert model.input_shape == (64,)
    x = np.fromfile(DIGITS / "heldout_input.bin", dtype=np.int8).reshape(-1, 64)
    labels = np.fromfile(DIGITS / "heldout_labels.bin", dtype=np.uint8)
    outputs = model.run(x)
    classes = next(o for o in outputs if o.dtype == np.int32 and o.shape == (450, 1))[:, 0]
    assert (classes == labels).mean() > 0.95
    ort = np.fromfile(DIGITS / "heldout_ort.bin", dtype=np.uint8)
    assert (classes == ort).mean() >= 0.995, "agrees with onnxruntime"
    one = model.run(x[7])
    assert all(np.array_equal(a[0], b[7]) for a, b in zip(one, outputs)), "a sample alone runs alike"


def test_model_samples_of_the_wrong_dtype_or_shape_are_value_errors(tmp_path):
    model = stp.Model.from_onnx(DIGITS / "digits_int8.onnx")
    with pytest.raises(ValueError, match="int8"):
        model.job(np.zeros((3, 64), dtype=np.float32))
    with pytest.raises(ValueError, match="expected \\(batch, 64\\)"):
        model.job(np.zeros((3, 63), dtype=np.int8))
    with pytest.raises(ValueError, match="not a valid model"):
        stp.Model.from_bytes(b"STPM not really")
    path = tmp_path / "digits.stpm"
    model.save(path)
    assert stp.Model.load(path) == model.__class__.from_bytes(model.data)
    job = model.job(np.zeros((2, 64), dtype=np.int8))
    assert job.kernel == model.kernel_id and job.output_dtype is None
