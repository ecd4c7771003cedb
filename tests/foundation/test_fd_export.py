"""rewriter/ir/export.export_model writes the very message onnx-graphsurgeon's export_onnx writes
(do_type_check=False), byte for byte, while encoding each weight in place: on a graph holding every
kind of constant and value gs knows (loaded lazily, rewritten to numpy in each dtype, converted on
export, sparse, a graph output), bodies, a local function and model fields; and on graphs the rule
passes rewrote (the field fixture, random DAGs of the fuzzer)."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest
from fd_util import TCN_MODEL
from fuzz_graphs import GraphFuzzer
from onnx import TensorProto, helper, numpy_helper

from rewriter.ir.export import export_model


def _same_as_gs(make_graph) -> bytes:
    """Export two equal graphs (gs's exporter renames the TensorProtos of lazily loaded constants in
    place): ours must be gs's message."""
    ours = export_model(make_graph()).SerializeToString(deterministic=True)
    theirs = gs.export_onnx(make_graph(), do_type_check=False).SerializeToString(deterministic=True)
    assert ours == theirs
    return ours


def _source_model() -> onnx.ModelProto:
    """Weights as stored (lazy in gs), a sparse initializer, an If with bodies, a local function."""
    rng = np.random.default_rng(3)  # each call builds the same model
    then_out = helper.make_tensor_value_info("t", TensorProto.FLOAT, [1, 4, 1, 8])
    else_out = helper.make_tensor_value_info("e", TensorProto.FLOAT, [1, 4, 1, 8])
    then_g = helper.make_graph([helper.make_node("Relu", ["y"], ["t"])], "then", [], [then_out])
    else_g = helper.make_graph([helper.make_node("Neg", ["y"], ["e"])], "else", [], [else_out])
    func = helper.make_function(
        "local.fn", "Twice", ["a"], ["b"], [helper.make_node("Add", ["a", "a"], ["b"])], [helper.make_opsetid("", 17)]
    )
    nodes = [
        helper.make_node("Conv", ["x", "w", "bias"], ["y"], name="conv", pads=[0, 1, 0, 1], kernel_shape=[1, 3]),
        helper.make_node("If", ["cond"], ["z"], name="if", then_branch=then_g, else_branch=else_g),
        helper.make_node("Twice", ["z"], ["out"], name="twice", domain="local.fn"),
        helper.make_node("MatMul", ["flat", "sp"], ["mm"], name="mm"),
    ]
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 2, 1, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "bias"),
        numpy_helper.from_array(np.array(True), "cond"),
    ]
    sparse = helper.make_sparse_tensor(
        numpy_helper.from_array(np.array([1.5, -2.0], np.float32), "sp"),
        numpy_helper.from_array(np.array([1, 6], np.int64), "sp_idx"),
        [3, 3],
    )
    graph = helper.make_graph(
        nodes,
        "source",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2, 1, 8]),
            helper.make_tensor_value_info("flat", TensorProto.FLOAT, [2, 3]),
        ],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None), helper.make_tensor_value_info("mm", 1, None)],
        inits,
        doc_string="a graph with a doc string",
        value_info=[helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4, 1, 8])],
        sparse_initializer=[sparse],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local.fn", 1)],
        functions=[func],
        producer_name="exporter-test",
        producer_version="9",
    )
    model.ir_version = 8
    return model


def _every_kind_of_tensor() -> gs.Graph:
    rng = np.random.default_rng(4)
    graph = gs.import_onnx(_source_model())
    y = graph.tensors()["y"]
    arrays = {
        "f32 (non-contiguous)": rng.standard_normal((6, 4)).astype(np.float32)[::2].T,
        "f16": rng.standard_normal((3, 5)).astype(np.float16),
        "f64": rng.standard_normal(4),
        "i64 0-d": np.int64(7),
        "i32": np.arange(-3, 3, dtype=np.int32),
        "i8": np.arange(-2, 2, dtype=np.int8),
        "u8": np.arange(5, dtype=np.uint8),
        "bool": rng.random(6) > 0.5,
        "empty": np.zeros((0, 2), np.float32),
        "u64 (gs's route)": np.arange(3, dtype=np.uint64),
    }
    for i, (label, value) in enumerate(arrays.items()):
        const = gs.Constant(f"c{i}_{label.split()[0]}", np.asarray(value))
        graph.nodes.append(gs.Node("Identity", f"id{i}", inputs=[const], outputs=[gs.Variable(f"v{i}")]))
    own = gs.Constant("own_dtype", rng.standard_normal(4).astype(np.float32), export_dtype=np.dtype(np.float32))
    external = gs.Constant("located", np.ones(2, np.float32), data_location=TensorProto.DEFAULT)
    unnamed = gs.Constant("", np.ones(3, np.float32))
    out_const = gs.Constant("const_out", np.arange(4, dtype=np.float32))
    shaped_only = gs.Variable("shaped_only", dtype=None, shape=[1, 4, 1, 8])
    typed_only = gs.Variable("typed_only", dtype=np.float32, shape=None)
    unknown = gs.Variable("unknown")
    seq = gs.Variable("seq", dtype=np.float32)
    seq.type = "sequence_type"
    graph.nodes += [
        gs.Node("Add", "bf", inputs=[own, external], outputs=[shaped_only]),
        gs.Node("Mul", "un", inputs=[unnamed, shaped_only], outputs=[typed_only]),
        gs.Node("Relu", "r2", inputs=[typed_only], outputs=[unknown]),
        gs.Node("SequenceConstruct", "sq", inputs=[y], outputs=[seq]),
    ]
    graph.outputs.append(out_const)
    return graph


def test_a_graph_with_every_kind_of_tensor():
    data = _same_as_gs(_every_kind_of_tensor)
    model = onnx.ModelProto.FromString(data)
    assert len(model.graph.sparse_initializer) == 1 and len(model.functions) == 1
    assert model.producer_name == "exporter-test" and model.ir_version == 8
    assert {"w", "c0_f32", "own_dtype", "const_out"} <= {t.name for t in model.graph.initializer}


def test_weights_rewritten_to_numpy_are_encoded_in_place(monkeypatch):
    """The numpy weights go through add_initializer, not gs's make_tensor: the saving is real."""
    from onnx_graphsurgeon.exporters import onnx_exporter

    made = []
    real = onnx_exporter.constant_to_onnx_tensor
    monkeypatch.setattr(onnx_exporter, "constant_to_onnx_tensor", lambda t: made.append(t.name) or real(t))
    graph = _every_kind_of_tensor()
    for t in graph.tensors().values():
        if isinstance(t, gs.Constant) and t.name in ("w", "bias"):
            t.values = t.values * 2  # rewritten: now a numpy array
    export_model(graph)
    assert set(made) == {"c9_u64", "located"}  # gs's route only where its encoding differs


def test_a_constant_exported_as_another_dtype_goes_through_gs():
    """gs converts on export (bfloat16 from float32 where onnx offers the converter): ours hands
    such a constant to gs, which gives the same result or refuses alike."""

    def build():
        g = _every_kind_of_tensor()
        rng = np.random.default_rng(5)
        bf16 = gs.Constant("as_bf16", rng.standard_normal(4).astype(np.float32), export_dtype=ml_dtypes.bfloat16)
        g.nodes.append(gs.Node("Identity", "to_bf16", inputs=[bf16], outputs=[gs.Variable("bf")]))
        return g

    try:
        theirs = gs.export_onnx(build(), do_type_check=False).SerializeToString(deterministic=True)
    except AssertionError as exc:  # this onnx has no float32 -> bfloat16 converter for gs
        with pytest.raises(AssertionError, match=str(exc).split(".")[0]):
            export_model(build())
    else:
        assert export_model(build()).SerializeToString(deterministic=True) == theirs


@pytest.mark.parametrize("ir_version", [None, 10])
def test_model_fields(ir_version):
    def build():
        g = gs.Graph(
            nodes=[], inputs=[gs.Variable("x", np.float32, [2])], outputs=[], name="bare", opset=18, doc_string=""
        )
        g.outputs = [g.inputs[0]]
        g.ir_version = ir_version
        return g

    _same_as_gs(build)


def test_graphs_the_passes_rewrote(tmp_path):
    """The fixture and random DAGs (convs of every kind, BN, skips, layout ops, Round, If) after the
    hailo8 rule passes: rewritten weights, new constants, renamed tensors."""
    from rewriter.pipeline import RewriteOptions, rewrite
    from rewriter.target import load_target

    target = load_target("hailo8")
    paths = [TCN_MODEL] if TCN_MODEL.is_file() else []
    fuzzer = GraphFuzzer(11)
    for index in range(8):
        paths.append(tmp_path / f"g{index}.onnx")
        onnx.save(fuzzer.generate(index).model, paths[-1])
    rewritten = 0
    for path in paths:
        model = _same_as_gs(lambda p=path: rewrite(p, target, RewriteOptions()).graph)
        rewritten += any(n.op_type == "Conv" and n.name != "conv" for n in onnx.ModelProto.FromString(model).graph.node)
    assert rewritten >= 4
