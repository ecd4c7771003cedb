"""Shared test helpers: build models from ONNX text, rewrite them, compare with onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import onnxruntime as ort
from model_feeds import random_feeds  # noqa: F401  (re-exported for the tests here)

from passes.helpers import HELPERS
from rewriter.dsl import apply_rules, load_rule_files, parse_rules

DATA = Path(__file__).parent / "data"


def examples():
    return load_rule_files([DATA / "examples.rw"], HELPERS)


def model(text: str, inits: dict | None = None) -> onnx.ModelProto:
    """Parse ONNX text; `inits` (name -> array) become initializers."""
    m = onnx.parser.parse_model(text)
    for name, arr in (inits or {}).items():
        m.graph.initializer.append(onnx.numpy_helper.from_array(np.asarray(arr), name))
    onnx.checker.check_model(m)
    return m


def run(m: onnx.ModelProto, feeds: dict) -> dict:
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feeds)))


def rewrite(m: onnx.ModelProto, rules, **kw):
    g = gs.import_onnx(m)
    events = apply_rules(g, rules, **kw)
    out = gs.export_onnx(g)
    out.opset_import[0].version = m.opset_import[0].version
    onnx.checker.check_model(out)
    return out, events, g


def assert_same(m1, m2, seed: int = 0, rtol=1e-5, atol=1e-6):
    feeds = random_feeds(m1, seed)
    a, b = run(m1, feeds), run(m2, feeds)
    assert list(a) == list(b), "graph output names changed"
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=rtol, atol=atol * max(1.0, np.abs(a[k]).max()))


def ops(m: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in m.graph.node]


def weights(seed: int = 0, **shapes) -> dict:
    """Random float32 initializers; names starting with 'var' get positive values."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in shapes.items():
        v = rng.standard_normal(shape).astype(np.float32)
        out[name] = np.abs(v) + 0.5 if name.startswith("var") else v
    return out


def rules(text: str):
    return parse_rules(text, "test.rw", HELPERS)


def matching_graphs(seed: int, count: int) -> list[tuple[gs.Graph, set[int]]]:
    """(graph, ids of its outputs) of `count` random graphs (convs of every kind, BN, pools,
    activations, layout ops, Round, If) and of the field fixture when ../shared holds it: what the
    matcher's equivalence tests run every rule over."""
    from fuzz_graphs import GraphFuzzer

    models = [GraphFuzzer(seed).generate(i).model for i in range(count)]
    fixture = (
        Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "tcn_encoder" / "tcn_encoder_for_edgeinfer.onnx"
    )
    if fixture.exists():
        models.append(onnx.load(str(fixture)))
    graphs = [gs.import_onnx(m) for m in models]
    return [(g, {id(t) for t in g.outputs}) for g in graphs]
