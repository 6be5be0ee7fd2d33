"""ONNX Runtime's ORT-format model files read back as plain ONNX.

Why: an ORT-format file is a graph that was optimised once, for a small runtime, and is
run as it is: onnxruntime applies no further optimisation when it loads one. The Moonshine
files that pip ships (stt_moonshine.py) keep their weights as int8 and dequantise them
with a Cast, a Mul and an Add per weight at the top of the graph, so every decoder step
dequantised all 81 weights again: about 100 ms a token on this project's 2-core machine,
the whole transcription's time. Read back as ONNX, the graph can be rewritten to run its
products on the int8 weights (onnx_int8.py) and optimised by onnxruntime at load: a step
then costs a few milliseconds (measured: README "Hearing").

The flatbuffer classes are onnxruntime's own (onnxruntime.tools.ort_format_model); the
protobuf is built with the `onnx` package. The conversion runs once, in a child process,
into voxlive's model cache (beside the reassembled models: parted.py), and later starts
load the cached file: building the protobuf in Python leaves ~300 MB of freed but retained
heap behind (measured for Moonshine's 42 MB decoder), which a daemon should not carry.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from voxlive.backends.parted import cache_root, locked

ORT_SUFFIX = ".ort"
CONVERT_TIMEOUT_S = 300
log = logging.getLogger(__name__)


def cached_onnx(path: Path) -> Path:
    """The ONNX file (products on int8 weights: onnx_int8.py) made from the ORT-format file
    `path`, converted on first use; named by the source's sha256, so a changed source is
    converted again and a half-written file is never read."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    folder = cache_root() / "onnx"
    target = folder / f"{path.stem}-{digest}.onnx"
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with locked(folder / f"{target.name}.lock"):
        if target.is_file():  # another process converted it while this one waited
            return target
        log.warning("converting %s to ONNX in %s (once; later starts reuse it)", path, folder)
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=folder)
        os.close(fd)
        try:
            done = subprocess.run(
                [sys.executable, "-m", "voxlive.backends.ort_format", str(path), temp],
                capture_output=True, text=True, timeout=CONVERT_TIMEOUT_S, check=False)
            if done.returncode != 0:
                why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
                raise ValueError(f"could not convert {path} to ONNX: {why}")
            os.chmod(temp, 0o644)
            os.replace(temp, target)
        finally:
            Path(temp).unlink(missing_ok=True)
    return target


def main(argv: list[str] | None = None) -> int:
    """The child process of `cached_onnx`: SOURCE.ort -> TARGET (ONNX, int8 products)."""
    from voxlive.backends.onnx_int8 import int8_matmuls

    parser = argparse.ArgumentParser(description="an ORT-format model as ONNX")
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    args = parser.parse_args(argv)
    model = read_ort(args.source)
    int8_matmuls(model)
    args.target.write_bytes(model.SerializeToString())
    return 0


def read_ort(path: Path) -> Any:
    """The ONNX model (an onnx ModelProto) of an ORT-format file."""
    from onnx import helper
    from onnxruntime.tools.ort_format_model.ort_flatbuffers_py.fbs import InferenceSession

    data = path.read_bytes()
    if not InferenceSession.InferenceSession.InferenceSessionBufferHasIdentifier(data, 0):
        raise ValueError(f"{path} is not an ORT-format model file")
    model = InferenceSession.InferenceSession.GetRootAsInferenceSession(data, 0).Model()
    opsets = [helper.make_opsetid(_text(model.OpsetImport(i).Domain()),
                                  model.OpsetImport(i).Version())
              for i in range(model.OpsetImportLength())]
    return helper.make_model(_graph(model.Graph(), "main"), opset_imports=opsets,
                             ir_version=model.IrVersion())


def _text(value: bytes | None) -> str:
    return value.decode() if value is not None else ""


def _graph(graph: Any, name: str) -> Any:
    """A GraphProto (If's branches are graphs too, read the same way)."""
    from onnx import helper

    args = {_text(graph.NodeArgs(i).Name()): graph.NodeArgs(i)
            for i in range(graph.NodeArgsLength())}
    nodes = []
    for i in range(graph.NodesLength()):
        node = graph.Nodes(i)
        proto = helper.make_node(
            _text(node.OpType()),
            [_text(node.Inputs(j)) for j in range(node.InputsLength())],
            [_text(node.Outputs(j)) for j in range(node.OutputsLength())],
            name=_text(node.Name()), domain=_text(node.Domain()) or None)
        proto.attribute.extend(_attribute(node.Attributes(j))
                               for j in range(node.AttributesLength()))
        nodes.append(proto)
    weights = [_tensor(graph.Initializers(i)) for i in range(graph.InitializersLength())]
    constant = {w.name for w in weights}
    inputs = [_value_info(args[_text(graph.Inputs(i))]) for i in range(graph.InputsLength())
              if _text(graph.Inputs(i)) not in constant]
    outputs = [_value_info(args[_text(graph.Outputs(i))])
               for i in range(graph.OutputsLength())]
    return helper.make_graph(nodes, name, inputs, outputs, weights)


def _tensor(tensor: Any) -> Any:
    from onnx import TensorProto, helper

    dims = [tensor.Dims(i) for i in range(tensor.DimsLength())]
    if tensor.StringDataLength():
        strings = [tensor.StringData(i) for i in range(tensor.StringDataLength())]
        return helper.make_tensor(_text(tensor.Name()), tensor.DataType(), dims, strings)
    proto = TensorProto(name=_text(tensor.Name()), data_type=tensor.DataType())
    proto.dims.extend(dims)
    if tensor.RawDataLength():
        proto.raw_data = tensor.RawDataAsNumpy().tobytes()
    return proto


def _value_info(arg: Any) -> Any:
    from onnx import TypeProto, helper
    from onnxruntime.tools.ort_format_model.ort_flatbuffers_py.fbs import (
        DimensionValueType,
        TensorTypeAndShape,
        TypeInfoValue,
    )

    name, kind = _text(arg.Name()), arg.Type()
    if kind is None or kind.ValueType() != TypeInfoValue.TypeInfoValue.tensor_type:
        return helper.make_value_info(name, TypeProto())
    tensor = TensorTypeAndShape.TensorTypeAndShape()
    tensor.Init(kind.Value().Bytes, kind.Value().Pos)
    shape = tensor.Shape()
    dims: list[int | str | None] | None = None
    if shape is not None:
        dims = []
        for i in range(shape.DimLength()):
            value = shape.Dim(i).Value()
            if value is None or value.DimType() == DimensionValueType.DimensionValueType.UNKNOWN:
                dims.append(None)
            elif value.DimType() == DimensionValueType.DimensionValueType.VALUE:
                dims.append(value.DimValue())
            else:
                dims.append(_text(value.DimParam()))
    return helper.make_tensor_value_info(name, tensor.ElemType(), dims)


def _attribute(attribute: Any) -> Any:
    from onnx import AttributeProto, helper
    from onnxruntime.tools.ort_format_model.ort_flatbuffers_py.fbs.AttributeType import (
        AttributeType,
    )

    name, kind = _text(attribute.Name()), attribute.Type()
    a = attribute
    if kind == AttributeType.FLOAT:
        return helper.make_attribute(name, a.F())
    if kind == AttributeType.INT:
        return helper.make_attribute(name, a.I())
    if kind == AttributeType.STRING:
        return helper.make_attribute(name, a.S())
    if kind == AttributeType.TENSOR:
        return helper.make_attribute(name, _tensor(a.T()))
    if kind == AttributeType.GRAPH:
        return helper.make_attribute(name, _graph(a.G(), name))
    if kind == AttributeType.FLOATS:
        return helper.make_attribute(name, [a.Floats(i) for i in range(a.FloatsLength())],
                                     attr_type=AttributeProto.FLOATS)
    if kind == AttributeType.INTS:
        return helper.make_attribute(name, [a.Ints(i) for i in range(a.IntsLength())],
                                     attr_type=AttributeProto.INTS)
    if kind == AttributeType.STRINGS:
        return helper.make_attribute(name, [a.Strings(i) for i in range(a.StringsLength())],
                                     attr_type=AttributeProto.STRINGS)
    if kind == AttributeType.TENSORS:
        return helper.make_attribute(name, [_tensor(a.Tensors(i))
                                            for i in range(a.TensorsLength())])
    if kind == AttributeType.GRAPHS:
        return helper.make_attribute(name, [_graph(a.Graphs(i), name)
                                            for i in range(a.GraphsLength())])
    raise ValueError(f"an attribute of a type ONNX cannot hold here: {name} ({kind})")


if __name__ == "__main__":
    raise SystemExit(main())
