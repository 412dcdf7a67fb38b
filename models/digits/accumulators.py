"""The first layer's int32 accumulators for the held-out set, in NumPy from the ONNX file's
integers: acc[n] = bias[n] + sum_k (x[k] - x_zp) * (w[n][k] - w_zp), in int64 then checked
to fit int32. Writes heldout_fc1_acc.bin (int32 little-endian, 32 per sample), which the
Rust tests compare with the imported model's accumulators byte for byte.

Deterministic: `python accumulators.py` (after train.py) rewrites the committed file.
"""

import pathlib

import numpy as np
import onnx
from onnx import numpy_helper

HERE = pathlib.Path(__file__).resolve().parent


def main() -> None:
    model = onnx.load(str(HERE / "digits_int8.onnx"))
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    x = np.frombuffer((HERE / "heldout_input.bin").read_bytes(), dtype=np.int8).reshape(-1, 64)
    x = x.astype(np.int64) - int(init["pixels_zero_point"])
    w = init["fc1.weight_quantized"].astype(np.int64) - int(init["fc1.weight_zero_point"])
    bias = init["fc1.bias_quantized"].astype(np.int64)
    acc = x @ w.T + bias
    assert np.all(np.abs(acc) < 2**31), "accumulators must fit int32"
    (HERE / "heldout_fc1_acc.bin").write_bytes(acc.astype("<i4").tobytes())
    print(f"{acc.shape[0]} samples x {acc.shape[1]} accumulators, range {acc.min()}..{acc.max()}")


if __name__ == "__main__":
    main()
