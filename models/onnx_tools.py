"""What the shipped models' training scripts share: calibration batches for onnxruntime's
static quantizer, a single-threaded session, and the int8 bytes a model's first
QuantizeLinear makes of its input (the samples our runtime takes)."""

import pathlib

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import CalibrationDataReader

CALIBRATION_SAMPLES = 200


class Calibration(CalibrationDataReader):
    """Feeds the first CALIBRATION_SAMPLES samples to the graph input `pixels`, one at a time."""

    def __init__(self, x: np.ndarray):
        self.rows = iter(x[:CALIBRATION_SAMPLES].astype(np.float32))

    def get_next(self):
        row = next(self.rows, None)
        return None if row is None else {"pixels": row[None]}


def opset17_model(graph: onnx.GraphProto) -> onnx.ModelProto:
    """`graph` as a checked opset-17, IR-8 model."""
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def session(path: pathlib.Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run(path: pathlib.Path, x: np.ndarray) -> np.ndarray:
    """The model's output for each sample of `x`, one sample at a time."""
    sess = session(path)
    return np.stack([sess.run(None, {"pixels": r[None].astype(np.float32)})[0][0] for r in x])


def quantize_input(path: pathlib.Path, x: np.ndarray) -> tuple[np.ndarray, float, int]:
    """The int8 bytes the model's first QuantizeLinear makes of `x`, computed by onnxruntime."""
    model = onnx.load(str(path))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    q = next(n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "pixels")
    scale, zp = inits[q.input[1]], inits[q.input[2]]
    node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"])
    graph = helper.make_graph(
        [node],
        "quantize_input",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("q", TensorProto.INT8, list(x.shape))],
        [numpy_helper.from_array(scale, "s"), numpy_helper.from_array(zp, "z")],
    )
    qmodel = opset17_model(graph)
    sess = ort.InferenceSession(qmodel.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x.astype(np.float32)})[0], float(scale), int(zp)
