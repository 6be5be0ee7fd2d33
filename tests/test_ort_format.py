"""ORT-format files read back as ONNX (voxlive/backends/ort_format.py), on a small graph
built the way Moonshine's files are: int8 weights dequantised at the top by Cast, Mul and
Add, and an If whose branches use them from the outer scope. onnxruntime itself writes the
ORT-format file, so the test reads what the runtime writes, not what we think it writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="onnx reads ORT-format models back (embedded extra)")
onnxruntime = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from voxlive.backends.ort_format import read_ort  # noqa: E402


def onnx_bytes(path: Path) -> bytes:
    return read_ort(path).SerializeToString()


def moonshine_like_model() -> bytes:
    rng = np.random.default_rng(0)
    weights = rng.integers(-127, 127, (4, 3), dtype=np.int8)
    top = [
        helper.make_node("Cast", ["w_int8"], ["w_float"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["w_float", "scale"], ["w_scaled"]),
        helper.make_node("Add", ["w_scaled", "offset"], ["w"]),
    ]
    first = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["first_out"])], "first", [],
        [helper.make_tensor_value_info("first_out", TensorProto.FLOAT, ["batch", 3])])
    cached = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["product"]),
         helper.make_node("Relu", ["product"], ["cached_out"])], "cached", [],
        [helper.make_tensor_value_info("cached_out", TensorProto.FLOAT, ["batch", 3])])
    graph = helper.make_graph(
        [*top, helper.make_node("If", ["use_cache"], ["y"], then_branch=cached,
                                else_branch=first)],
        "moonshine_like",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4]),
         helper.make_tensor_value_info("use_cache", TensorProto.BOOL, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [numpy_helper.from_array(weights, "w_int8"),
         numpy_helper.from_array(np.array(0.02, np.float32), "scale"),
         numpy_helper.from_array(np.array(-0.01, np.float32), "offset")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    return model.SerializeToString()


def write_ort_format(model: bytes, path: Path) -> None:
    options = onnxruntime.SessionOptions()
    options.optimized_model_filepath = str(path)
    # As Moonshine's files were written: the dequantising nodes kept, not folded.
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.add_session_config_entry("session.save_model_format", "ORT")
    onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def run(model: bytes | str, x: np.ndarray, use_cache: bool) -> np.ndarray:
    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": x, "use_cache": np.array([use_cache])})
    return y


def test_an_ort_format_file_read_back_computes_what_the_original_does(tmp_path: Path) -> None:
    original = moonshine_like_model()
    ort_file = tmp_path / "model.ort"
    write_ort_format(original, ort_file)
    x = np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32)

    back = onnx_bytes(ort_file)

    read = onnx.load_from_string(back)
    onnx.checker.check_model(read)
    assert [n.op_type for n in read.graph.node] == ["Cast", "Mul", "Add", "If"]
    for use_cache in (False, True):  # both branches of the If, and the weights they share
        np.testing.assert_allclose(run(back, x, use_cache), run(original, x, use_cache),
                                   rtol=1e-6)
    assert not np.allclose(run(back, x, True), run(back, x, False))
    folded = onnxruntime.InferenceSession(back, providers=["CPUExecutionProvider"])
    assert [i.name for i in folded.get_inputs()] == ["x", "use_cache"]


def test_a_file_of_another_format_is_refused_clearly(tmp_path: Path) -> None:
    plain = tmp_path / "model.onnx"
    plain.write_bytes(moonshine_like_model())
    with pytest.raises(ValueError, match="not an ORT-format model file"):
        onnx_bytes(plain)


def test_the_conversion_is_made_once_into_the_cache_and_reused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    from voxlive.backends import ort_format

    monkeypatch.setenv("VOXLIVE_CACHE_DIR", str(tmp_path / "cache"))
    ort_file = tmp_path / "model.ort"
    write_ort_format(moonshine_like_model(), ort_file)
    x = np.random.default_rng(2).standard_normal((2, 4)).astype(np.float32)

    converted = ort_format.cached_onnx(ort_file)

    assert converted.parent == tmp_path / "cache" / "onnx" and converted.suffix == ".onnx"
    np.testing.assert_allclose(run(str(converted), x, True),
                               run(moonshine_like_model(), x, True), rtol=0.05, atol=0.05)

    def no_second_conversion(*args: object, **kwargs: object) -> None:
        raise AssertionError("converted again")

    monkeypatch.setattr(subprocess, "run", no_second_conversion)
    assert ort_format.cached_onnx(ort_file) == converted


def test_a_file_that_cannot_be_converted_leaves_nothing_half_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from voxlive.backends import ort_format

    monkeypatch.setenv("VOXLIVE_CACHE_DIR", str(tmp_path / "cache"))
    broken = tmp_path / "broken.ort"
    broken.write_bytes(b"not a model at all")

    with pytest.raises(ValueError, match="could not convert .*broken.ort"):
        ort_format.cached_onnx(broken)
    assert not [p for p in (tmp_path / "cache" / "onnx").iterdir() if p.suffix != ".lock"]
