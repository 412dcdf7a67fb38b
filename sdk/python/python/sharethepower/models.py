"""Quantized integer-only models (``.stpm``): NumPy samples in, NumPy outputs out.

A model runs as an ordinary job whose kernel id names it; providers fetch the model file
once, by hash, and every GPU returns the very bytes of the CPU reference. Shapes and dtypes
are checked here and in Rust (``ValueError`` before anything is sent).

>>> import numpy as np, sharethepower as stp                          # doctest: +SKIP
>>> model = stp.Model.load("digits.stpm")                             # doctest: +SKIP
>>> x = np.fromfile("heldout_input.bin", dtype=np.int8).reshape(-1, *model.input_shape)  # doctest: +SKIP
>>> job = market.post(model.job(x), replicas=3, bounty="0.03")       # doctest: +SKIP
>>> logits, classes = job.output()                                    # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from . import _native
from .kernels import KernelInput


def split_outputs(data: bytes, batch: int, layouts: list[tuple[str, list[int]]]) -> tuple[np.ndarray, ...]:
    """The model outputs in ``data`` (each output over the whole batch, in order) as arrays
    of shape ``(batch, *per_sample_shape)``."""
    arrays, at = [], 0
    for dtype, shape in layouts:
        dt = np.dtype(dtype).newbyteorder("<")
        count = batch * int(np.prod(shape))
        arr = np.frombuffer(data, dtype=dt, count=count, offset=at)
        arrays.append(arr.astype(dtype).reshape((batch, *shape)))
        at += count * dt.itemsize
    if at != len(data):
        raise ValueError(f"{len(data)} bytes are not {batch} samples of this model's outputs ({at} bytes)")
    return tuple(arrays)


@dataclass(frozen=True)
class Model:
    """A model file, validated by the Rust runtime."""

    data: bytes = field(repr=False)
    """The ``.stpm`` bytes."""
    id: str = ""
    """The model id: SHA-256 of the file, 64 hex digits."""
    kernel_id: str = ""
    """The kernel id of jobs that run it."""
    input_shape: tuple[int, ...] = ()
    """One sample's shape (int8)."""
    outputs: tuple[tuple[str, tuple[int, ...]], ...] = ()
    """Each output's dtype and per-sample shape."""
    import_error: float | None = None
    """For a model imported from ONNX: the largest relative error of its scales' conversion."""

    @classmethod
    def from_bytes(cls, data: bytes) -> "Model":
        """A model from its file's bytes (``ValueError`` if they are not a valid model)."""
        model_id, kernel_id, shape, outputs = _native.model_info(bytes(data))
        return cls(
            bytes(data),
            model_id,
            kernel_id,
            tuple(shape),
            tuple((d, tuple(s)) for d, s in outputs),
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Model":
        """Reads a ``.stpm`` file (``stp model import`` writes one from an int8 ONNX model)."""
        with open(path, "rb") as f:
            return cls.from_bytes(f.read())

    @classmethod
    def from_onnx(cls, path: str | os.PathLike[str]) -> "Model":
        """Imports an int8 ONNX model (QDQ pairs, as onnxruntime's quantizer writes them);
        ``ValueError`` names an unsupported op. ``import_error`` says how far the float
        scales moved when they became integer multipliers and shifts."""
        with open(path, "rb") as f:
            data, error = _native.import_onnx(f.read())
        model = cls.from_bytes(data)
        object.__setattr__(model, "import_error", error)
        return model

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the ``.stpm`` file."""
        with open(path, "wb") as f:
            f.write(self.data)

    def _samples(self, x: object) -> tuple[bytes, int]:
        arr = np.asarray(x)
        if arr.dtype != np.int8:
            raise ValueError(
                f"samples have dtype {arr.dtype}, the model takes int8: quantize them first "
                "(the model's input scale and zero point)"
            )
        if arr.shape == self.input_shape:
            arr = arr.reshape((1, *self.input_shape))
        if arr.ndim < 1 or arr.shape[1:] != self.input_shape:
            raise ValueError(
                f"samples have shape {arr.shape}, expected (batch, {', '.join(map(str, self.input_shape))})"
            )
        return np.ascontiguousarray(arr).tobytes(), arr.shape[0]

    def job(self, x: np.ndarray) -> KernelInput:
        """The job of this model over the int8 samples ``x`` (shape ``(batch, *input_shape)``
        or one sample): pass it to ``Market.post``; its ``output()`` is a tuple of arrays."""
        data, _ = self._samples(x)
        return KernelInput(self.kernel_id, _native.encode_model_job(self.data, data))

    def run(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        """Runs the model here on the CPU reference: the outputs every provider must return,
        one array of shape ``(batch, *shape)`` per output."""
        data, batch = self._samples(x)
        out = _native.run_model_cpu(self.data, data)
        return split_outputs(out, batch, [(d, list(s)) for d, s in self.outputs])


__all__ = ["Model", "split_outputs"]
