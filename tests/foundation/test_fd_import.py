"""rewriter.ir.importer.import_model builds the graph gs.import_onnx builds: the same objects with
the same attributes in the same order, linked the same way, compared object by object on the test
models the onnx package ships, the field fixture, random DAGs of the fuzzer and hand-made corner
cases (each kind of value and attribute, and what only gs's importer reads); and it takes its own path for the
graphs `rewrite` works on, not gs's."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest
from fd_util import ONNX_DATA, TCN_MODEL, make_model, vi, weight
from fuzz_graphs import GraphFuzzer
from onnx import TensorProto, helper, numpy_helper
from onnx_graphsurgeon.ir.tensor import LazyValues
from onnx_graphsurgeon.util.misc import SynchronizedList

from rewriter.ir import importer
from rewriter.ir.importer import import_model


def _dump(graph: gs.Graph) -> list:
    """Everything that tells two imported graphs apart: graph fields, then every node and tensor
    (numbered in order of first sight, so links compare by position), attribute by attribute."""
    ids: dict[int, int] = {}
    objects: list = []

    def ref(obj) -> int:
        if id(obj) not in ids:
            ids[id(obj)] = len(objects)
            objects.append(obj)
        return ids[id(obj)]

    def value(v):
        if isinstance(v, SynchronizedList):
            return ("synced", v.field_name, v.parent_obj is not None, [ref(x) for x in v])
        if isinstance(v, LazyValues):
            return ("lazy", v.tensor.SerializeToString(), list(v.shape), v.dtype, v.nbytes)
        if isinstance(v, (gs.Tensor, gs.Node)):
            return ("ref", ref(v))
        if isinstance(v, OrderedDict):
            return ("odict", [(k, value(x)) for k, x in v.items()])
        if isinstance(v, (list, tuple)):
            return (type(v).__name__, [value(x) for x in v])
        if isinstance(v, np.dtype):
            return ("dtype", str(v))
        if isinstance(v, gs.Graph):  # a body (from gs's importer in both): its nodes and tensors too
            return ("graph", head(v))
        return (type(v).__name__, v)

    def head(graph: gs.Graph) -> list:
        return [
            graph.name,
            graph.doc_string,
            graph.opset,
            graph.producer_name,
            graph.producer_version,
            graph.ir_version,
            [(d.domain, d.version) for d in graph.import_domains or []],
            len(graph.functions),
            [ref(t) for t in graph.inputs],
            [ref(t) for t in graph.outputs],
            [ref(n) for n in graph.nodes],
        ]

    out = [head(graph)]
    done = 0
    while done < len(objects):  # walking an object numbers what it links to
        obj = objects[done]
        out.append((type(obj).__name__, [(k, value(v)) for k, v in vars(obj).items()]))
        done += 1
    return out


def _same(model: onnx.ModelProto) -> None:
    assert _dump(import_model(model)) == _dump(gs.import_onnx(model))


def _fast(model: onnx.ModelProto, monkeypatch) -> gs.Graph:
    """import_model on its own path: gs's importer is not called."""

    def refuse(_model):
        raise AssertionError("went to gs.import_onnx")

    with monkeypatch.context() as patch:
        patch.setattr(importer.gs, "import_onnx", refuse)
        return import_model(model)


def _onnx_test_models() -> list:
    return sorted(ONNX_DATA.glob("*/*/model.onnx"))


def test_onnx_test_models(monkeypatch):
    """The models converted from PyTorch and the simple ones onnx ships (140 in onnx 1.x wheels)."""
    paths = _onnx_test_models()
    assert len(paths) > 100
    own = 0
    for path in paths:
        model = onnx.load(path)
        _same(model)
        try:
            _fast(model, monkeypatch)
            own += 1
        except AssertionError:
            pass
    assert own > 0.7 * len(paths)  # most take the fast path; the rest are compared with gs's own


def test_fixture_and_fuzzer_graphs(monkeypatch):
    models = [onnx.load(TCN_MODEL)] if TCN_MODEL.is_file() else []
    fuzzer = GraphFuzzer(5)
    models += [fuzzer.generate(i).model for i in range(40)]
    for model in models:
        _same(model)
    inferred = [onnx.shape_inference.infer_shapes(m) for m in models[:12]]
    plain = 0
    for model in inferred:  # with value_info for every tensor, as load_graph imports them
        _same(model)
        if not any(a.type == onnx.AttributeProto.GRAPH for n in model.graph.node for a in n.attribute):
            _fast(model, monkeypatch)  # an If's bodies go to gs
            plain += 1
    assert plain >= 6


def _corner_model() -> onnx.ModelProto:
    """Repeated value_info (the later one completing the earlier), value_info of a weight and of a
    graph input, scalar and symbolic and unknown dims, omitted optional inputs, a tensor attribute,
    string attributes, a domain given and not, an unnamed node, an output that is an input, a
    weight name given twice."""
    y_partial = helper.make_value_info("y", helper.make_tensor_type_proto(TensorProto.FLOAT, None))
    y_full = vi("y", [1, 4, 1, 8])
    unknown = vi("u", ["N", None, 8])
    unknown.type.tensor_type.shape.dim[1].Clear()
    untyped = onnx.ValueInfoProto(name="v")
    nodes = [
        helper.make_node("Conv", ["x", "w", ""], ["y"], name="conv", pads=[0, 1, 0, 1], kernel_shape=[1, 3]),
        helper.make_node("Clip", ["y", "", "hi"], ["c"]),
        helper.make_node("Constant", [], ["k"], name="k", value=numpy_helper.from_array(np.float32(2.0), "kv")),
        helper.make_node("Mul", ["c", "k"], ["u"], name="mul", domain=""),
        helper.make_node("Identity", ["u"], ["v"], name="id"),
        helper.make_node(
            "StringNormalizer", ["s"], ["s2"], name="norm", case_change_action="LOWER", stopwords=["a", "b"]
        ),
        helper.make_node("Pad", ["v", "pads"], ["p", ""], name="pad", mode="constant"),
    ]
    inits = [weight("w", [4, 2, 1, 3]), numpy_helper.from_array(np.float32(6.0), "hi")]
    inits.append(numpy_helper.from_array(np.array([0, 0, 0, 0, 0, 0, 0, 0], np.int64), "pads"))
    inits.append(numpy_helper.from_array(np.float32(7.0), "hi"))  # a repeated name: the first one counts
    graph = helper.make_graph(
        nodes,
        "corners",
        [vi("x", [1, 2, 1, 8]), vi("s", [3], TensorProto.STRING), vi("hi", [])],
        [vi("p", None), vi("x", [1, 2, 1, 8]), vi("s2", None, TensorProto.STRING)],
        inits,
        doc_string="a graph",
        value_info=[y_partial, unknown, y_full, vi("w", [4, 2, 1, 3]), vi("x", [1, 2, 1, 8]), untyped, vi("k", [])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="hand")
    model.producer_version = "1.0"
    return model


def test_corner_cases(monkeypatch):
    model = _corner_model()
    _same(model)
    graph = _fast(model, monkeypatch)
    tensors = graph.tensors()
    assert tensors["y"].shape == [1, 4, 1, 8] and tensors["y"].dtype == np.float32  # completed by the later entry
    assert tensors["u"].shape == ["N", None, 8]
    assert tensors["v"].dtype is None and tensors["v"].shape is None
    assert isinstance(tensors["hi"], gs.Constant)  # an input that is a weight is not a graph input
    assert tensors["hi"].values == 6.0
    assert [t.name for t in graph.inputs] == ["x", "s"]
    clip = next(n for n in graph.nodes if n.op == "Clip")
    assert clip.inputs[1].name == "" and clip.inputs[1] is not graph.nodes[0].inputs[2]
    constant = next(n for n in graph.nodes if n.op == "Constant")
    assert isinstance(constant.attrs["value"], gs.Constant) and constant.attrs["value"].values == 2.0
    assert graph.nodes[0].domain is None and graph.nodes[3].domain == ""
    assert graph.nodes[5].attrs == OrderedDict(case_change_action="LOWER", stopwords=["a", "b"])
    assert graph.nodes[0].attrs["pads"] == [0, 1, 0, 1] and type(graph.nodes[0].attrs["pads"]) is list


def _with(model: onnx.ModelProto, edit) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    edit(copy)
    return copy


def _bfloat16_value(m):
    m.graph.value_info.append(vi("y2", [1], TensorProto.BFLOAT16))


def _sequence_value(m):
    m.graph.value_info.append(helper.make_tensor_sequence_value_info("seq", TensorProto.FLOAT, None))


def _no_default_opset(m):
    del m.opset_import[:]
    m.opset_import.append(helper.make_opsetid("custom.domain", 1))


def _sparse_weight(m):
    m.graph.sparse_initializer.append(
        helper.make_sparse_tensor(
            numpy_helper.from_array(np.array([1.5], np.float32), "sp"),
            numpy_helper.from_array(np.array([2], np.int64), "sp_idx"),
            [4],
        )
    )


def _body(m):
    branch = helper.make_graph([helper.make_node("Identity", ["x"], ["t"])], "b", [], [vi("t", None)])
    m.graph.node.append(helper.make_node("If", ["cond"], ["z"], name="if", then_branch=branch, else_branch=branch))


def _local_function(m):
    m.functions.append(
        helper.make_function("local", "F", ["a"], ["b"], [helper.make_node("Neg", ["a"], ["b"])], m.opset_import)
    )


def _float16_weight(m):
    m.graph.initializer.append(numpy_helper.from_array(np.ones(3, np.float16), "half"))


@pytest.mark.parametrize(
    "edit, fast",
    [
        (_bfloat16_value, False),
        (_sequence_value, False),
        (_no_default_opset, False),
        (_sparse_weight, False),
        (_body, False),
        (_local_function, False),
        (_float16_weight, True),
    ],
)
def test_what_only_gs_reads_goes_to_gs(edit, fast, monkeypatch):
    model = _with(_corner_model(), edit)
    _same(model)
    if fast:
        _fast(model, monkeypatch)
    else:
        with pytest.raises(AssertionError, match="went to gs"):
            _fast(model, monkeypatch)


def test_load_graph_imports_with_it(monkeypatch, tmp_path):
    """The pipeline's loader takes this importer (and so its fast path) for a plain model."""
    from rewriter.ir.load import load_graph

    model = make_model(
        [helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[1, 3], pads=[0, 1, 0, 1])],
        [vi("x", [1, 2, 1, 8])],
        [vi("y", [1, 4, 1, 8])],
        [weight("w", [4, 2, 1, 3])],
    )
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    calls = []
    real = importer._import
    monkeypatch.setattr(importer, "_import", lambda m: calls.append(m) or real(m))
    monkeypatch.setattr(importer.gs, "import_onnx", lambda m: pytest.fail("gs importer used"))
    graph, _ = load_graph(path)
    assert calls and [n.op for n in graph.nodes] == ["Conv"]
