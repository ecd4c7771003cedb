"""Load any ONNX model into a normalized onnx-graphsurgeon graph.

Normalization: the model checked (structure, sizes), external data resolved, local functions
inlined, opset converted to WORKING_OPSET (rewriter/ir/opset.py), unknown dims made symbolic and
pinned, --freeze inputs made constants, constants folded (ConstantOfShape / Shape / Gather / Cast
chains become initializers, constant Ifs inlined), shapes inferred. Identity / Dropout removal are
rules (rules/common/passthrough.rw); dead nodes a pass (passes/remove_dead.py).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import onnx
import onnx.inliner
import onnx_graphsurgeon as gs
from onnx import shape_inference
from onnx_graphsurgeon.logger import G_LOGGER

from rewriter.errors import UserError
from rewriter.ir import annotations
from rewriter.ir.build import dims_only, is_large_float_proto
from rewriter.ir.control_flow import constant_if, if_hint, inline_constant_ifs
from rewriter.ir.edit import remove_dead_nodes
from rewriter.ir.export import export_model
from rewriter.ir.freeze import freeze_inputs
from rewriter.ir.importer import import_model
from rewriter.ir.layout_eval import evaluate
from rewriter.ir.opfacts import RANDOM_OPS
from rewriter.ir.opset import convert_model, default_opset
from rewriter.ir.padding import make_pads_explicit
from rewriter.ir.prefetch import take_bytes
from rewriter.ir.quiet_ort import quiet_onnxruntime
from rewriter.ir.scope import proto_has_body
from rewriter.ir.validate import check_sizes, check_structure

G_LOGGER.severity = G_LOGGER.ERROR  # its folding chatter is not for our users

WORKING_OPSET = 17


def read_model(path: str | os.PathLike) -> onnx.ModelProto:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no such model file: {path}")
    try:
        data = take_bytes(path)  # read while the interpreter imported onnx (the CLI's prefetch)
        if data is None:
            model = onnx.load(str(path), load_external_data=False)
        else:  # the format onnx.load infers from the file's extension
            fmt = onnx.serialization.registry.get_format_from_file_extension(path.suffix)
            model = onnx.load_model_from_string(data, format=fmt or "protobuf")
            del data
    except Exception as exc:  # protobuf raises DecodeError and friends
        raise UserError(f"{path} is not an ONNX model ({type(exc).__name__})") from exc
    if not model.graph.node and not model.graph.output:
        raise UserError(f"{path} is not an ONNX model (empty graph)")
    try:
        onnx.external_data_helper.load_external_data_for_model(model, str(path.parent))
    except (OSError, ValueError, onnx.checker.ValidationError) as exc:
        raise UserError(f"{path}: cannot read its external data: {exc}") from exc
    return model


def convert_opset(model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    """The model at `opset`: onnx's converter upwards, our sound adapters downwards (rewriter.ir.opset)."""
    return convert_model(model, opset)


def unknown_dims_as_symbolic(model: onnx.ModelProto) -> None:
    """Exporters mark unknown dims differently: a dim_param, no value at all, or (Paddle2ONNX) a
    dim_value of -1 or 0. Make the last kind a dim_param too, so it is dynamic (pinnable with
    --input-shape) rather than a fixed, impossible size."""
    values = list(model.graph.input) + list(model.graph.output) + list(model.graph.value_info)
    for value in values:
        tensor = value.type.tensor_type
        if not value.type.HasField("tensor_type") or not tensor.HasField("shape"):
            continue
        for axis, dim in enumerate(tensor.shape.dim):
            if dim.HasField("dim_value") and dim.dim_value <= 0:
                dim.Clear()
                dim.dim_param = f"{value.name}_dim{axis}"


def _fix_legacy_prelu_slopes(model: onnx.ModelProto) -> None:
    """Opset-6 PRelu applied a 1-D slope per channel; from opset 7 it broadcasts numpy-style (over
    the last axis), and the version converter leaves the slope as it is. Reshape it to [C, 1, ...]."""
    inferred = shape_inference.infer_shapes(model)
    ranks = {
        v.name: len(v.type.tensor_type.shape.dim) for v in list(inferred.graph.value_info) + list(inferred.graph.input)
    }
    inits = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != "PRelu" or len(node.input) < 2 or node.input[1] not in inits:
            continue
        slope = inits[node.input[1]]
        rank = ranks.get(node.input[0], 0)
        if len(slope.dims) == 1 and slope.dims[0] > 1 and rank > 2:
            dims = [slope.dims[0]] + [1] * (rank - 2)
            slope.dims[:] = dims
            for value in model.graph.input:  # IR<4 models declare initializers as inputs too
                if value.name == slope.name:
                    value.type.tensor_type.shape.Clear()
                    for d in dims:
                        value.type.tensor_type.shape.dim.add().dim_value = d


def _drop_initializer_inputs(model: onnx.ModelProto) -> None:
    """IR<4 models list weights as graph inputs too; they are constants for us."""
    inits = {t.name for t in model.graph.initializer}
    keep = [i for i in model.graph.input if i.name not in inits]
    del model.graph.input[:]
    model.graph.input.extend(keep)


def pin_input_shapes(model: onnx.ModelProto, shapes: dict[str, list[int]]) -> None:
    inits = {t.name for t in model.graph.initializer}
    inputs = {i.name: i for i in model.graph.input if i.name not in inits}
    unknown = sorted(set(shapes) - set(inputs))
    if unknown:
        raise UserError(f"--input-shape names no model input: {', '.join(unknown)} (inputs: {', '.join(inputs)})")
    for name, value in inputs.items():
        dims = value.type.tensor_type.shape.dim
        if name in shapes:
            wanted = shapes[name]
            if len(wanted) != len(dims):
                raise UserError(f"--input-shape {name}: model input has rank {len(dims)}, got {len(wanted)} dims")
            for dim, size in zip(dims, wanted):
                if dim.HasField("dim_value") and dim.dim_value != size:
                    raise UserError(f"--input-shape {name}: dim {dim.dim_value} is fixed by the model, got {size}")
                dim.Clear()
                dim.dim_value = size
            continue
        for axis, dim in enumerate(dims):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                continue
            if axis == 0:  # batch 1 by default
                dim.Clear()
                dim.dim_value = 1
                continue
            label = dim.dim_param or "?"
            raise UserError(
                f"input {name!r} dim {axis} ({label}) is unknown: pin it with "
                f"--input-shape {name}=" + ",".join(str(d.dim_value) if d.dim_value > 0 else "N" for d in dims)
            )


def infer_shapes(model: onnx.ModelProto, strict: bool = False, consume: bool = False) -> onnx.ModelProto:
    """onnx shape inference without copying the weights into it and back: inference reads the dims
    of large float initializers, never their values. `consume`: the caller drops `model`, which
    is then given the inferred shapes and returned: inference runs on a copy of the graph whose
    large float initializers are dims only, and its value_info/outputs are moved over (no copy
    of the weights at all: 14 ms for the 20 MB example ConvTasNet, against 91 ms for onnx's
    inference of the whole model and 20 ms for emptying and refilling the weights). Models with
    bodies (If/Loop/Scan: their inferred shapes live in the bodies) and `consume=False` take the
    emptying route."""
    if consume and not any(proto_has_body(n) for n in model.graph.node):
        try:
            out = shape_inference.infer_shapes(dims_only(model), strict_mode=strict, data_prop=True)
        except Exception as exc:
            raise UserError(f"shape inference failed: {str(exc).splitlines()[0]}") from exc
        for field in ("input", "output", "value_info"):
            del getattr(model.graph, field)[:]
            getattr(model.graph, field).extend(getattr(out.graph, field))
        return model
    weights = {}
    for t in model.graph.initializer:
        if is_large_float_proto(t):
            weights[t.name] = t.raw_data
            t.raw_data = b""
    try:
        out = shape_inference.infer_shapes(model, strict_mode=strict, data_prop=True)
    except BaseException as exc:
        _put_back(model, weights)  # the caller keeps its model after an error
        if isinstance(exc, Exception):
            raise UserError(f"shape inference failed: {str(exc).splitlines()[0]}") from exc
        raise
    if not consume:
        _put_back(model, weights)
    _put_back(out, weights)
    return out


def _put_back(model: onnx.ModelProto, weights: dict[str, bytes]) -> None:
    for t in model.graph.initializer:
        if t.name in weights:
            t.raw_data = weights[t.name]


def foldable(graph: gs.Graph) -> bool:
    """Anything constant folding could change: Shape/Constant nodes, all-constant inputs (random ops
    aside: they are never folded), If nodes with a constant condition."""
    return any(
        n.op in ("Shape", "Constant", "Size")
        or constant_if(n)
        or (n.op not in RANDOM_OPS and n.inputs and all(isinstance(t, gs.Constant) for t in n.inputs))
        for n in graph.nodes
    )


# layout ops of constants, evaluated in numpy by inline_constants (others: onnxruntime's folding)
_FOLDED_LAYOUT = frozenset({"Unsqueeze", "Squeeze", "Reshape", "Transpose"})


def inline_constants(graph: gs.Graph) -> bool:
    """Constant nodes become the constants they hold and Identities of constants are bypassed:
    what folding makes of them, without copying the graph through onnxruntime (the exporters put
    hundreds of them in a model; when nothing else is foldable, folding is skipped altogether).
    Layout ops of constants (a rule's Unsqueeze of a weight) are evaluated in numpy, and so are
    Shape (its start and end too) and Size of a value whose shape is static (torchaudio's group
    norm reshapes back to Shape(x)): onnx-graphsurgeon's folding would copy the graph for them and
    the model would go through another export, inference and import. True if it changed anything."""
    outputs = {t.name for t in graph.outputs}
    changed = False
    for node in graph.nodes:
        if len(node.outputs) != 1 or node.outputs[0].name in outputs:
            continue
        out = node.outputs[0]
        if node.op == "Constant" and set(node.attrs) == {"value"} and isinstance(node.attrs["value"], gs.Constant):
            node.outputs.clear()
            out.to_constant(node.attrs["value"].values)
        elif node.op in _FOLDED_LAYOUT and node.inputs and all(isinstance(t, gs.Constant) for t in node.inputs):
            values = evaluate(node.op, [t.values for t in node.inputs], node.attrs)  # a rule's Unsqueeze of a weight
            if values is None:
                continue
            node.outputs.clear()
            node.inputs.clear()
            out.to_constant(values)
        elif node.op in ("Shape", "Size") and len(node.inputs) == 1 and static_shape(node.inputs[0].shape):
            dims = [int(d) for d in node.inputs[0].shape]
            if node.op == "Size":
                values = np.array(math.prod(dims), dtype=np.int64)
            else:  # start and end as Python slices them: negative from the back, clamped to the rank
                end = node.attrs.get("end")
                values = np.array(dims[int(node.attrs.get("start", 0)) : None if end is None else int(end)], np.int64)
            node.outputs.clear()
            out.to_constant(values)
        elif node.op == "Identity" and len(node.inputs) == 1 and isinstance(node.inputs[0], gs.Constant):
            for consumer in list(out.outputs):
                for k, t in enumerate(consumer.inputs):
                    if t is out:
                        consumer.inputs[k] = node.inputs[0]
            node.outputs.clear()
            node.inputs.clear()
        else:
            continue
        changed = True
    if changed:
        remove_dead_nodes(graph)
    return changed


def static_shape(shape) -> bool:
    """Every dim known: an integer, not negative (an unknown shape, None, is not static)."""
    return shape is not None and all(isinstance(d, (int, np.integer)) and d >= 0 for d in shape)


def _all_static(graph: gs.Graph) -> bool:
    return all(static_shape(t.shape) for t in graph.tensors().values() if isinstance(t, gs.Variable))


def fold_constants(graph: gs.Graph) -> gs.Graph:
    """Fold every subgraph whose inputs are all constants into initializers (onnxruntime evaluates),
    then inline the Ifs whose condition became constant. Random ops are never folded (their output
    changes on every run), nor anything computed from them. Subgraphs are folded once inlined."""
    if not foldable(graph):  # gs copies the whole graph to fold: skip when there is nothing
        return graph
    # gs folds a Shape to its input's whole shape, blind to opset 15's start and end: while such a
    # Shape is left (inline_constants folds those of static inputs), gs folds no Shape at all
    sliced = any(n.op == "Shape" and (n.attrs.get("start", 0) != 0 or "end" in n.attrs) for n in graph.nodes)
    with quiet_onnxruntime():  # gs evaluates what it cannot fold itself with onnxruntime
        graph.fold_constants(
            fold_shapes=not sliced,
            error_ok=True,
            flatten_subgraphs=False,
            recurse_subgraphs=False,
            should_exclude_node=lambda node: node.op in RANDOM_OPS,
        )
    inline_constant_ifs(graph)
    return remove_dead_nodes(graph)


def check_static(graph: gs.Graph) -> None:
    for tensor in graph.tensors().values():
        if isinstance(tensor, gs.Variable) and tensor.shape is not None:
            if not static_shape(tensor.shape):
                producer = tensor.inputs[0].name if tensor.inputs else "a graph input"
                raise UserError(
                    f"tensor {tensor.name!r} (from {producer}) has a dynamic shape "
                    f"{list(tensor.shape)} after folding: pin the inputs with --input-shape" + if_hint(graph, tensor)
                )


def graph_from_model(model: onnx.ModelProto) -> gs.Graph:
    return import_model(model)  # gs.import_onnx(model), made faster


def model_from_graph(
    graph: gs.Graph, opset: int | None = None, deferred: dict[str, gs.Constant] | None = None
) -> onnx.ModelProto:
    """gs.export_onnx(graph, do_type_check=False), weights copied once (`deferred`: large float
    weights as dims only, listed there; see export_model)."""
    model = export_model(graph, deferred)
    annotations.stamp(model, graph.nodes)
    if opset is not None:
        del model.opset_import[:]
        model.opset_import.append(onnx.helper.make_opsetid("", opset))
    return model


def load_graph(
    path: str | os.PathLike,
    input_shapes: dict[str, list[int]] | None = None,
    opset: int = WORKING_OPSET,
    frozen: dict[str, list[str]] | None = None,
    widen=None,
) -> tuple[gs.Graph, onnx.ModelProto]:
    """Returns (normalized graph, original model as read: its large float initializers as dims
    only, since what the plan takes from it is names, inputs and outputs: a copy of the weights
    less). `frozen` inputs become constants. `widen` (rewriter.ir.widen.TargetWidening) may
    change the model's float types once its shapes are inferred, before anything is folded."""
    model = read_model(path)
    check_structure(model)
    original = dims_only(model)
    if model.functions:  # model-local functions (some exporters write them): plain nodes for the rules
        model = onnx.inliner.inline_local_functions(model)
    unknown_dims_as_symbolic(model)
    pin_input_shapes(model, input_shapes or {})
    check_sizes(model)  # before anything allocates or enumerates along a declared dim
    if frozen:
        freeze_inputs(model, frozen)
    if default_opset(model) < 7:
        _fix_legacy_prelu_slopes(model)
    model = convert_opset(model, opset)  # the converter wants IR<4 weights still listed as inputs
    _drop_initializer_inputs(model)
    model = infer_shapes(model, consume=True)
    if widen is not None:
        model = widen(model)
    check_sizes(model)
    graph = graph_from_model(model)
    if inline_constants(graph) and not foldable(graph) and not _all_static(graph):
        # often all there is to fold (then the loop below is skipped); inferred again with the
        # constants' values, as the loop does
        graph = graph_from_model(infer_shapes(model_from_graph(graph), consume=True))
    while foldable(graph):  # folding can expose shapes that make more nodes foldable (Pad of a Pad's Shape)
        count = len(graph.nodes)
        model = infer_shapes(model_from_graph(fold_constants(graph)), consume=True)
        check_sizes(model)
        graph = graph_from_model(model)
        if len(graph.nodes) == count:
            break
    make_pads_explicit(graph)
    name_nodes(graph)  # before the static check, whose message names the producer
    check_static(graph)
    return graph, original


def name_nodes(graph: gs.Graph) -> None:
    """Give every node a unique, deterministic name (summaries, --end-node and rules refer to them)."""
    seen: set[str] = set()
    for i, node in enumerate(graph.nodes):
        name = node.name or f"{node.op}_{i}"
        while name in seen:
            name = f"{name}_{i}"
        node.name = name
        seen.add(name)
