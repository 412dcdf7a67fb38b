"""A small convolutional digits classifier, quantized to int8 in both of onnxruntime's
formats (QDQ pairs and QOperator ops), with the held-out set and onnxruntime's outputs.

The network: Conv 3x3 (8 filters, padding 1) -> Relu -> MaxPool 2x2 -> Conv 3x3 (16
filters, padding 1) -> Relu -> MaxPool 2x2 -> Flatten -> Gemm (10 classes). Its two
convolutions are fixed pseudo-random filters (seeded); the Gemm is trained on their
features (a logistic regression on scikit-learn's bundled 8x8 digits, the split of
../digits/train.py), so it is a real, if simple, classifier.

Deterministic: `python train.py` (with ../digits/requirements.txt installed) rewrites every
committed file of this folder byte for byte.

Outputs (next to this script):
- digits_cnn_qdq.onnx       int8, QuantizeLinear / DequantizeLinear pairs around float ops
- digits_cnn_qop.onnx       int8, QLinearConv / MaxPool / QGemm (onnxruntime's QOperator form)
- heldout_input.bin         the held-out samples as the int8 models' input bytes (64 a sample)
- heldout_labels.bin        their true labels, one byte each
- heldout_ort_qdq.bin, heldout_ort_qop.bin         onnxruntime's class for each, one byte each
- heldout_ort_qdq_logits.bin, heldout_ort_qop_logits.bin   its int8 logits (10 a sample)
- summary.json              accuracies and the input quantization parameters
"""

import json
import pathlib
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from onnx_tools import Calibration, opset17_model, quantize_input, run  # noqa: E402

SEED = 0


def conv(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """NCHW 3x3 convolution with padding 1, stride 1."""
    n, c, h, wd = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((n, w.shape[0], h, wd))
    for dy in range(3):
        for dx in range(3):
            patch = padded[:, :, dy : dy + h, dx : dx + wd]
            out += np.einsum("nchw,oc->nohw", patch, w[:, :, dy, dx])
    return out + b[None, :, None, None]


def pool(x: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def features(x: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
    y = pool(np.maximum(conv(x, params["conv1.weight"], params["conv1.bias"]), 0))
    y = pool(np.maximum(conv(y, params["conv2.weight"], params["conv2.bias"]), 0))
    return y.reshape(len(x), -1)


def float_graph(params: dict[str, np.ndarray]) -> onnx.ModelProto:
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in params.items()]
    nodes = [
        helper.make_node("Conv", ["pixels", "conv1.weight", "conv1.bias"], ["conv1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv1"], ["relu1"], name="relu1"),
        helper.make_node("MaxPool", ["relu1"], ["pool1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["pool1", "conv2.weight", "conv2.bias"], ["conv2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv2"], ["relu2"], name="relu2"),
        helper.make_node("MaxPool", ["relu2"], ["pool2"], name="pool2", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["pool2"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "digits_cnn",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
        inits,
    )
    return opset17_model(graph)


def output_qparams(path: pathlib.Path) -> tuple[float, int]:
    """Scale and zero point of the int8 logits the float output is dequantized from."""
    model = onnx.load(str(path))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    last = next(n for n in model.graph.node if "logits" in n.output)
    return float(inits[last.input[1]]), int(inits[last.input[2]])


def main() -> None:
    digits = load_digits()
    images = digits.images[:, None, :, :]
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=0.25, random_state=SEED, stratify=digits.target
    )
    rng = np.random.default_rng(SEED)
    params = {
        "conv1.weight": rng.normal(0, 0.3, (8, 1, 3, 3)),
        "conv1.bias": rng.normal(0, 0.1, 8),
        "conv2.weight": rng.normal(0, 0.15, (16, 8, 3, 3)),
        "conv2.bias": rng.normal(0, 0.1, 16),
    }
    readout = LogisticRegression(max_iter=5000, C=0.5)
    readout.fit(features(x_train, params), y_train)
    params["fc.weight"] = readout.coef_
    params["fc.bias"] = readout.intercept_
    float_path = HERE / "digits_cnn_float.onnx.tmp"
    onnx.save(float_graph(params), str(float_path))
    float_pred = np.argmax(run(float_path, x_test), axis=1)
    summary = {
        "train_samples": int(len(y_train)),
        "heldout_samples": int(len(y_test)),
        "float_onnx_accuracy": round(float(np.mean(float_pred == y_test)), 6),
    }
    for form, fmt in (("qdq", QuantFormat.QDQ), ("qop", QuantFormat.QOperator)):
        path = HERE / f"digits_cnn_{form}.onnx"
        quantize_static(
            str(float_path),
            str(path),
            Calibration(x_train),
            quant_format=fmt,
            per_channel=False,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
        )
        scale, zp = output_qparams(path)
        int8_logits = (np.rint(run(path, x_test) / scale) + zp).astype(np.int8)
        pred = np.argmax(int8_logits, axis=1)
        (HERE / f"heldout_ort_{form}.bin").write_bytes(pred.astype(np.uint8).tobytes())
        (HERE / f"heldout_ort_{form}_logits.bin").write_bytes(int8_logits.tobytes())
        summary[f"int8_{form}_onnxruntime_accuracy"] = round(float(np.mean(pred == y_test)), 6)
    q_input, in_scale, in_zp = quantize_input(HERE / "digits_cnn_qdq.onnx", x_test)
    (HERE / "heldout_input.bin").write_bytes(q_input.astype(np.int8).tobytes())
    (HERE / "heldout_labels.bin").write_bytes(y_test.astype(np.uint8).tobytes())
    float_path.unlink()
    summary["input_scale"] = in_scale
    summary["input_zero_point"] = in_zp
    (HERE / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
