"""Trains the digits classifier, writes its float ONNX graph, quantizes it to int8 (QDQ)
with onnxruntime, and writes the held-out set and onnxruntime's predictions for it.

Deterministic: `python train.py` (with requirements.txt installed) rewrites every
committed file of this folder byte for byte.

Outputs (next to this script):
- digits_int8.onnx        the int8 QDQ model (per-tensor scales, int8 activations)
- heldout_input.bin       the held-out samples as the int8 model's input bytes (64 a sample)
- heldout_labels.bin      their true labels, one byte each
- heldout_ort.bin         onnxruntime's predicted class for each, one byte each
- heldout_ort_logits.bin  onnxruntime's int8 logits for each (10 a sample)
- summary.json            accuracies and the input quantization parameters
"""

import json
import pathlib
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from onnx_tools import Calibration, opset17_model, quantize_input, run  # noqa: E402

SEED = 0
HIDDEN = 32


def float_graph(mlp: MLPClassifier) -> onnx.ModelProto:
    """Gemm + Relu + Gemm, weights in Gemm's transB layout ([out, in])."""
    (w1, w2), (b1, b2) = mlp.coefs_, mlp.intercepts_
    inits = [
        numpy_helper.from_array(w1.T.astype(np.float32), "fc1.weight"),
        numpy_helper.from_array(b1.astype(np.float32), "fc1.bias"),
        numpy_helper.from_array(w2.T.astype(np.float32), "fc2.weight"),
        numpy_helper.from_array(b2.astype(np.float32), "fc2.bias"),
    ]
    nodes = [
        helper.make_node("Gemm", ["pixels", "fc1.weight", "fc1.bias"], ["fc1"], name="fc1", transB=1),
        helper.make_node("Relu", ["fc1"], ["relu1"], name="relu1"),
        helper.make_node("Gemm", ["relu1", "fc2.weight", "fc2.bias"], ["logits"], name="fc2", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "digits_mlp",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
        inits,
    )
    return opset17_model(graph)


def int8_logits(path: pathlib.Path, x: np.ndarray) -> np.ndarray:
    """The int8 values the int8 model's last DequantizeLinear turned into its float output."""
    model = onnx.load(str(path))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    scale, zp = inits["logits_scale"], int(inits["logits_zero_point"])
    return (np.rint(run(path, x) / scale) + zp).astype(np.int8)


def main() -> None:
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=0.25, random_state=SEED, stratify=digits.target
    )
    mlp = MLPClassifier(hidden_layer_sizes=(HIDDEN,), max_iter=1000, random_state=SEED)
    mlp.fit(x_train, y_train)
    float_path = HERE / "digits_float.onnx.tmp"
    int8_path = HERE / "digits_int8.onnx"
    onnx.save(float_graph(mlp), str(float_path))
    quantize_static(
        str(float_path),
        str(int8_path),
        Calibration(x_train),
        quant_format=QuantFormat.QDQ,
        per_channel=False,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
    )
    float_pred = np.argmax(run(float_path, x_test), axis=1)
    float_path.unlink()
    int8_out = int8_logits(int8_path, x_test)
    int8_pred = np.argmax(int8_out, axis=1)
    q_input, in_scale, in_zp = quantize_input(int8_path, x_test)
    (HERE / "heldout_input.bin").write_bytes(q_input.astype(np.int8).tobytes())
    (HERE / "heldout_labels.bin").write_bytes(y_test.astype(np.uint8).tobytes())
    (HERE / "heldout_ort.bin").write_bytes(int8_pred.astype(np.uint8).tobytes())
    (HERE / "heldout_ort_logits.bin").write_bytes(int8_out.tobytes())
    summary = {
        "train_samples": int(len(y_train)),
        "heldout_samples": int(len(y_test)),
        "sklearn_accuracy": round(float(mlp.score(x_test, y_test)), 6),
        "float_onnx_accuracy": round(float(np.mean(float_pred == y_test)), 6),
        "int8_onnxruntime_accuracy": round(float(np.mean(int8_pred == y_test)), 6),
        "input_scale": in_scale,
        "input_zero_point": in_zp,
    }
    (HERE / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
