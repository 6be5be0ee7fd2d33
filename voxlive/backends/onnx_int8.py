"""Keep an ONNX model's int8 weights int8: matrix products on them run as int8 kernels.

Why: Moonshine's files (stt_moonshine.py) store each weight as int8 with one scale and an
offset that is a whole number of steps, and turn it back into float32 at the top of the
graph (Cast, Mul, Add). Left so, onnxruntime either redoes that for all weights at every
decoder step (the ORT-format file as shipped: ~100 ms a token here) or, once the graph is
plain ONNX (ort_format.py), folds it into float32 weights at load: fast, but the weights
then take 4 times the memory (~450 MB resident for Moonshine base). Here each product
on such a weight becomes onnxruntime's DynamicQuantizeMatMul (com.microsoft) on the int8
weight itself, and the token embedding's lookup dequantises only the rows it gathers.
The weights are stored shifted to uint8 (u = q + 128, the zero point likewise): on a CPU
without VNNI (AVX2 only, as here) onnxruntime's uint8 x int8 kernel adds pairs of products
in 16 bits and saturates on large weights, its uint8 x uint8 kernel does not.
Measured on the 2-core machine (one thread): encoder 56 ms and a decoder step 6 ms, against
102 ms and 14 ms with float32 weights, and ~110 MB resident against ~450; the activations
are quantised per product, which changed no transcript of the quality set (README
"Hearing").

Rewritten: MatMul(x, w), MatMul(x, Transpose(w)) (the output projection, which shares
the embedding's weight) and Gather(w, ids), in the graph and in its If branches. A weight
used any other way keeps its float32 path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

MS_DOMAIN = "com.microsoft"


@dataclass(frozen=True)
class Int8Weight:
    """w = (q + steps) * scale: the int8 initializer, the scale's name, the offset in steps."""

    quantized: str
    scale: str
    steps: int
    made: tuple[str, ...]  # the outputs of the Cast, Mul and Add that dequantise it

    @property
    def zero_point(self) -> str:
        return f"{self.quantized}_uint8_zero_point"


def int8_matmuls(model: Any) -> int:
    """Rewrite `model` (an onnx ModelProto) in place; returns how many nodes changed."""
    from onnx import AttributeProto, helper, numpy_helper

    graph = model.graph
    weights = _int8_weights(graph)
    if not weights:
        return 0
    arrays = {t.name: t for t in graph.initializer}
    added: dict[str, np.ndarray] = {}
    transposed: dict[str, Int8Weight] = {}  # Transpose(w)'s output -> w
    still_float: set[str] = set()
    changed = 0

    def unsigned(weight: Int8Weight) -> str:
        name = f"{weight.quantized}_uint8"
        if name not in added:
            q = numpy_helper.to_array(arrays[weight.quantized]).astype(np.int16)
            added[name] = (q + 128).astype(np.uint8)
            added[weight.zero_point] = np.array([128 - weight.steps], np.uint8)
        return name

    def matmul(node: Any, weight: Int8Weight, quantized: str) -> Any:
        return helper.make_node("DynamicQuantizeMatMul",
                                [node.input[0], quantized, weight.scale, weight.zero_point],
                                list(node.output), name=node.name, domain=MS_DOMAIN)

    def rewrite(body: Any) -> None:
        nonlocal changed
        nodes = []
        for node in body.node:
            for attribute in node.attribute:
                if attribute.type == AttributeProto.GRAPH:
                    rewrite(attribute.g)
            first = weights.get(node.input[0]) if node.input else None
            second = weights.get(node.input[1]) if len(node.input) > 1 else None
            if (node.op_type == "Transpose" and first is not None and _swaps_2d(node)
                    and _only_multiplied(node.output[0], body)):
                transposed[node.output[0]] = first
                continue
            if node.op_type == "MatMul" and node.input[1] in transposed:
                weight = transposed[node.input[1]]
                name = f"{weight.quantized}_uint8_transposed"
                if name not in added:
                    added[name] = added[unsigned(weight)].T.copy()
                nodes.append(matmul(node, weight, name))
            elif node.op_type == "MatMul" and second is not None:
                nodes.append(matmul(node, second, unsigned(second)))
            elif node.op_type == "Gather" and first is not None:
                nodes += _gather_dequantised(node, first, unsigned(first), added)
            else:
                still_float.update(i for i in node.input if i in weights)
                nodes.append(node)
                continue
            changed += 1
        del body.node[:]
        body.node.extend(nodes)

    rewrite(graph)
    unused = {n for name, w in weights.items() if name not in still_float for n in w.made}
    kept = [n for n in graph.node if n.output[0] not in unused]
    del graph.node[:]
    graph.node.extend(kept)
    graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in added.items())
    # The int8 originals, now stored shifted to uint8: gone unless a float path reads them.
    used = _names_read(graph)
    originals = {w.quantized for w in weights.values()} - used
    remaining = [t for t in graph.initializer if t.name not in originals]
    del graph.initializer[:]
    graph.initializer.extend(remaining)
    if not any(o.domain == MS_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    return changed


def _int8_weights(graph: Any) -> dict[str, Int8Weight]:
    """The graph's Cast(int8) -> Mul(scale) -> Add(offset) chains whose offset is a whole
    number of steps, by the name of the float weight they make."""
    from onnx import TensorProto, numpy_helper

    arrays = {t.name: t for t in graph.initializer}
    made_by = {n.output[0]: n for n in graph.node if n.output}
    found = {}
    for add in graph.node:
        if add.op_type != "Add" or add.input[1] not in arrays:
            continue
        mul = made_by.get(add.input[0])
        if mul is None or mul.op_type != "Mul" or mul.input[1] not in arrays:
            continue
        cast = made_by.get(mul.input[0])
        if (cast is None or cast.op_type != "Cast" or cast.input[0] not in arrays
                or arrays[cast.input[0]].data_type != TensorProto.INT8):
            continue
        scale = numpy_helper.to_array(arrays[mul.input[1]])
        offset = numpy_helper.to_array(arrays[add.input[1]])
        if scale.size != 1 or offset.size != 1 or float(scale.ravel()[0]) == 0.0:
            continue
        steps = float(offset.ravel()[0]) / float(scale.ravel()[0])
        if abs(steps - round(steps)) > 1e-3 or not -127 <= round(steps) <= 128:
            continue
        found[add.output[0]] = Int8Weight(cast.input[0], mul.input[1], round(steps),
                                          (cast.output[0], mul.output[0], add.output[0]))
    return found


def _names_read(graph: Any) -> set[str]:
    """Every name a node of `graph` or of its subgraphs reads."""
    from onnx import AttributeProto

    names: set[str] = set()
    for node in graph.node:
        names.update(node.input)
        for attribute in node.attribute:
            if attribute.type == AttributeProto.GRAPH:
                names |= _names_read(attribute.g)
    return names


def _only_multiplied(name: str, body: Any) -> bool:
    """Is `name` used only as the weight of MatMuls in `body`?"""
    uses = [(n.op_type, i) for n in body.node for i, x in enumerate(n.input) if x == name]
    return bool(uses) and all(use == ("MatMul", 1) for use in uses)


def _swaps_2d(node: Any) -> bool:
    perm = [list(a.ints) for a in node.attribute if a.name == "perm"]
    return perm in ([], [[1, 0]])


def _gather_dequantised(node: Any, weight: Int8Weight, unsigned: str,
                        added: dict[str, np.ndarray]) -> list:
    """Gather the rows of the uint8 weight, then dequantise them: (u + steps - 128) * scale."""
    from onnx import TensorProto, helper

    out = node.output[0]
    steps = f"{weight.quantized}_uint8_steps"
    added[steps] = np.array(weight.steps - 128, np.float32)
    axis = [a.i for a in node.attribute if a.name == "axis"]
    return [
        helper.make_node("Gather", [unsigned, node.input[1]], [f"{out}_int8"],
                         name=node.name, axis=axis[0] if axis else 0),
        helper.make_node("Cast", [f"{out}_int8"], [f"{out}_float"], to=TensorProto.FLOAT),
        helper.make_node("Add", [f"{out}_float", steps], [f"{out}_shifted"]),
        helper.make_node("Mul", [f"{out}_shifted", weight.scale], [out]),
    ]
