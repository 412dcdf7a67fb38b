"""Inputs of the built-in kernels, built from NumPy arrays.

Shapes and dtypes are checked here (``ValueError`` before anything is sent); the bytes are
laid out by the Rust encoders the CLI and the providers use (``stp_sdk::kernels``), which
check the kernel limits again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from . import _native


@dataclass(frozen=True)
class KernelInput:
    """A kernel and an input laid out for it; ``market.post`` takes it as its only argument."""

    kernel: str
    """Kernel name (``matmul-u32``) or 64-hex id."""
    data: bytes = field(repr=False)
    """The input bytes."""

    @property
    def output_dtype(self) -> np.dtype | None:
        """The NumPy dtype of the output, ``None`` for a custom kernel (plain bytes)."""
        layout = _native.output_layout(self.kernel, self.data)
        return None if layout is None else np.dtype(layout[0])

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        """The shape of the output, ``None`` for a custom kernel (plain bytes)."""
        layout = _native.output_layout(self.kernel, self.data)
        return None if layout is None else tuple(layout[1])


def _matrix(name: str, x: object, dtype: type) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype != np.dtype(dtype):
        raise ValueError(
            f"{name} has dtype {arr.dtype}, the kernel takes {np.dtype(dtype)}: convert it with "
            f"{name}.astype(np.{np.dtype(dtype).name}) if its values fit"
        )
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix, got shape {arr.shape}")
    return arr


def _pair(a: object, b: object, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    a2, b2 = _matrix("a", a, dtype), _matrix("b", b, dtype)
    if a2.shape[1] != b2.shape[0]:
        raise ValueError(
            f"a is {a2.shape[0]}x{a2.shape[1]} and b is {b2.shape[0]}x{b2.shape[1]}: "
            "a's columns must equal b's rows"
        )
    return a2, b2


def matmul_u32(a: np.ndarray, b: np.ndarray) -> KernelInput:
    """C = A @ B over uint32 with wrapping (mod 2**32) sums of products.

    ``a`` is M×K, ``b`` is K×N, both ``np.uint32``; the output is an M×N ``np.uint32`` array.
    """
    a2, b2 = _pair(a, b, np.uint32)
    (m, k), n = a2.shape, b2.shape[1]
    le = np.dtype("<u4")
    data = _native.encode_matmul_u32(
        m, k, n, np.ascontiguousarray(a2, le).tobytes(), np.ascontiguousarray(b2, le).tobytes()
    )
    return KernelInput("matmul-u32", data)


def matmul_i8(a: np.ndarray, b: np.ndarray) -> KernelInput:
    """C = A @ B of int8 matrices with int32 results (quantized inference).

    ``a`` is M×K, ``b`` is K×N, both ``np.int8``; the output is an M×N ``np.int32`` array.
    """
    a2, b2 = _pair(a, b, np.int8)
    (m, k), n = a2.shape, b2.shape[1]
    data = _native.encode_matmul_i8(
        m, k, n, np.ascontiguousarray(a2).tobytes(), np.ascontiguousarray(b2).tobytes()
    )
    return KernelInput("matmul-i8", data)


def sha256_batch(messages: Iterable[bytes] | np.ndarray) -> KernelInput:
    """SHA-256 of many messages of one length (a list of bytes, or a 2-D ``np.uint8`` array
    with one message per row); the output is a count×32 ``np.uint8`` array of digests."""
    if isinstance(messages, np.ndarray):
        if messages.dtype != np.uint8 or messages.ndim != 2:
            raise ValueError(
                f"messages as an array must be 2-D uint8 (one message per row), got "
                f"{messages.dtype} with shape {messages.shape}"
            )
        msgs: list[bytes] = [row.tobytes() for row in messages]
    else:
        msgs = [bytes(m) for m in messages]
    if not msgs:
        raise ValueError("sha256_batch needs at least one message")
    lengths = {len(m) for m in msgs}
    if len(lengths) != 1:
        raise ValueError(f"all messages must have the same length, got lengths {sorted(lengths)}")
    return KernelInput("sha256-batch", _native.encode_sha256_batch(msgs))


def mandelbrot_fixed(
    width: int, height: int, cx: float = -0.5, cy: float = 0.0, span: float = 3.0, max_iter: int = 256
) -> KernelInput:
    """A ``width``×``height`` Mandelbrot tile centred on (cx, cy) spanning ``span``, in Q5.27
    fixed point; the output is a height×width×4 ``np.uint8`` RGBA array."""
    return KernelInput(
        "mandelbrot-fixed", _native.encode_mandelbrot(width, height, cx, cy, span, max_iter)
    )


def builtin() -> list[dict[str, str]]:
    """The built-in kernels: name, id, summary, input and output layouts."""
    keys = ("name", "id", "summary", "input_layout", "output_layout")
    return [dict(zip(keys, k)) for k in _native.builtin_kernels()]


__all__ = ["KernelInput", "builtin", "mandelbrot_fixed", "matmul_i8", "matmul_u32", "sha256_batch"]
