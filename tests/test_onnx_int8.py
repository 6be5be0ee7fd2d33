"""Products on int8 weights kept int8 (voxlive/backends/onnx_int8.py), on a small decoder
built as Moonshine's is: weights dequantised at the top (Cast, Mul, Add: w = (q + k) *
scale), an If whose branches multiply by them, a token embedding looked up with Gather
and reused, transposed, as the output projection."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="onnx rewrites the graph (embedded extra)")
onnxruntime = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from voxlive.backends.onnx_int8 import int8_matmuls  # noqa: E402

VOCAB, WIDTH = 50, 16


def dequantised(name: str, q: np.ndarray, scale: float, steps: int) -> tuple[list, list]:
    nodes = [
        helper.make_node("Cast", [f"{name}_q"], [f"{name}_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", [f"{name}_f", f"{name}_scale"], [f"{name}_s"]),
        helper.make_node("Add", [f"{name}_s", f"{name}_offset"], [name]),
    ]
    arrays = [numpy_helper.from_array(q, f"{name}_q"),
              numpy_helper.from_array(np.array([scale], np.float32), f"{name}_scale"),
              numpy_helper.from_array(np.array([steps * scale], np.float32), f"{name}_offset")]
    return nodes, arrays


def small_decoder() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    nodes, arrays = [], []
    for name, shape, steps in (("embedding", (VOCAB, WIDTH), 3), ("layer", (WIDTH, WIDTH), -2)):
        more_nodes, more_arrays = dequantised(
            name, rng.integers(-100, 100, shape, dtype=np.int8), 0.01, steps)
        nodes += more_nodes
        arrays += more_arrays

    def branch(name: str, extra: list) -> onnx.GraphProto:
        body = [helper.make_node("Gather", ["embedding", "ids"], [f"{name}_x"], axis=0),
                helper.make_node("MatMul", [f"{name}_x", "layer"], [f"{name}_h"]),
                *extra(f"{name}_h", f"{name}_h2"),
                helper.make_node("Transpose", ["embedding"], [f"{name}_t"], perm=[1, 0]),
                helper.make_node("MatMul", [f"{name}_h2", f"{name}_t"], [f"{name}_logits"])]
        return helper.make_graph(body, name, [], [helper.make_tensor_value_info(
            f"{name}_logits", TensorProto.FLOAT, ["batch", "length", VOCAB])])

    first = branch("first", lambda x, y: [helper.make_node("Identity", [x], [y])])
    cached = branch("cached", lambda x, y: [helper.make_node("Relu", [x], [y])])
    nodes.append(helper.make_node("If", ["use_cache"], ["logits"], then_branch=cached,
                                  else_branch=first))
    graph = helper.make_graph(
        nodes, "decoder",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "length"]),
         helper.make_tensor_value_info("use_cache", TensorProto.BOOL, [1])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "length", VOCAB])],
        arrays)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    return model


def run(model: onnx.ModelProto, use_cache: bool) -> np.ndarray:
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    ids = np.array([[1, 7, 42]], np.int64)
    (logits,) = session.run(None, {"ids": ids, "use_cache": np.array([use_cache])})
    return logits


def test_products_on_int8_weights_give_the_same_answers() -> None:
    original = small_decoder()
    rewritten = small_decoder()

    changed = int8_matmuls(rewritten)

    assert changed == 6  # per branch: the lookup, the layer, the output projection
    onnx.checker.check_model(rewritten)
    for use_cache in (False, True):
        want, got = run(original, use_cache), run(rewritten, use_cache)
        # The activations are quantised per product: close, and the same best tokens.
        assert np.abs(got - want).max() < 0.05 * np.abs(want).max()
        np.testing.assert_array_equal(got.argmax(-1), want.argmax(-1))


def test_the_float_copies_of_the_weights_are_gone() -> None:
    model = small_decoder()
    int8_matmuls(model)

    assert [n.op_type for n in model.graph.node] == ["If"]
    branch_ops = {n.op_type for a in model.graph.node[0].attribute for n in a.g.node}
    assert "DynamicQuantizeMatMul" in branch_ops
    assert "MatMul" not in branch_ops and "Transpose" not in branch_ops
    float_weights = [t.name for t in model.graph.initializer
                     if t.data_type == TensorProto.FLOAT and t.dims and np.prod(t.dims) > 1]
    assert float_weights == []


def test_a_weight_used_another_way_keeps_its_float_path() -> None:
    model = small_decoder()
    body = model.graph.node[-1].attribute[0].g
    body.node.append(helper.make_node("Add", ["layer", "layer"], ["doubled"]))

    int8_matmuls(model)

    top = [n.output[0] for n in model.graph.node]
    assert "layer" in top and "embedding" not in top
