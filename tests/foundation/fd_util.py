"""Shared helpers for the foundation tests: tiny models, targets, CLI calls, parity checks."""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from model_feeds import random_feeds  # noqa: F401  (re-exported for the tests here)
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parents[2]
ONNX_DATA = Path(onnx.__file__).resolve().parent / "backend" / "test" / "data"
SHARED_FIXTURES = (REPO / ".." / "shared" / "fixtures").resolve()
TCN_DIR = SHARED_FIXTURES / "tcn_encoder"
TCN_MODEL = TCN_DIR / "tcn_encoder_for_edgeinfer.onnx"
HAILO8_TOML = REPO / "rules" / "hailo8" / "target.toml"

MIN_COSINE = 0.99999
MAX_REL = 1e-4


def needs_tcn():
    if not TCN_MODEL.is_file():
        pytest.skip(f"TCN fixture not present at {TCN_DIR}")
    return TCN_MODEL


def vi(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def weight(name, shape, seed=0, scale=0.1):
    rng = np.random.default_rng([zlib.crc32(name.encode()), seed])
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def make_model(nodes, inputs, outputs, inits=(), opset=17, ir_version=8, check=True):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version  # onnxruntime reads IR <= 13 only
    if check:
        onnx.checker.check_model(model, full_check=True)
    return model


def save(model, path) -> Path:
    path = Path(path)
    onnx.save(model, str(path))
    return path


def ort_run(model, feeds) -> dict:
    src = str(model) if isinstance(model, (str, Path)) else model.SerializeToString()
    sess = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds)))


def plan_run(out, feeds) -> dict:
    from runtime import Plan

    return Plan.load(Path(out), backend="onnxruntime").run(feeds)


def assert_parity(got: dict, want: dict):
    assert set(got) == set(want), (sorted(got), sorted(want))
    for name, ref in want.items():
        out = np.asarray(got[name])
        assert out.shape == ref.shape, (name, out.shape, ref.shape)
        a, b = out.astype(np.float64).ravel(), ref.astype(np.float64).ravel()
        scale = float(np.abs(b).max()) or 1.0
        assert float(np.abs(a - b).max()) <= MAX_REL * scale, name
        denom = np.linalg.norm(a) * np.linalg.norm(b)
        cosine = float(a @ b / denom) if denom else 1.0
        assert cosine >= MIN_COSINE, (name, cosine)


def assert_tight(got, want, rtol=1e-5, atol_rel=1e-6):
    want = np.asarray(want)
    scale = float(np.abs(want).max()) or 1.0
    np.testing.assert_allclose(np.asarray(got), want, rtol=rtol, atol=atol_rel * scale)


def cli(capsys, *args):
    from rewriter.cli import main

    capsys.readouterr()
    rc = main([str(a) for a in args])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def quiet_cli(*args) -> int:
    """`rewrite ARGS` in this process, its output swallowed (module fixtures have no capsys)."""
    import contextlib
    import io

    from rewriter.cli import main

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main([str(a) for a in args])


def target_toml(tmp_path, name="custom", edit=None, rules_empty=True) -> Path:
    """Copy rules/hailo8/target.toml into tmp_path (as <name>.toml) and apply `edit(text) -> text`."""
    text = HAILO8_TOML.read_text()
    if rules_empty:
        text, n = re.subn(r"^rules\s*=\s*\[[^\]]*\]", "rules = []", text, count=1, flags=re.M)
        assert n == 1
    if edit is not None:
        text = edit(text)
    path = Path(tmp_path) / f"{name}.toml"
    path.write_text(text)
    return path


def no_cost_rule(text: str) -> str:
    text, n = re.subn(r"^roundtrip_macs\s*=\s*\d+", "roundtrip_macs = 0", text, flags=re.M)
    assert n == 1
    return text


def drop_op(op: str):
    def edit(text: str) -> str:
        # remove the [ops.OP] table header and its keys (up to the next table)
        new, n = re.subn(rf"^\[ops\.{op}\][^\n]*\n(?:(?!\[)[^\n]*\n)*", "", text, flags=re.M)
        assert n == 1, op
        return new

    return edit


def read_plan(out) -> dict:
    return json.loads((Path(out) / "plan.json").read_text())


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def tree_bytes(folder) -> dict:
    folder = Path(folder)
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---- small models ---------------------------------------------------------------------------


def conv_chain_model(channels=8, size=32, n=3, names=("conv",)):
    """x -> [Conv3x3 pad1 -> Relu] * n -> y, every conv big enough for the cost rule."""
    nodes, inits, prev = [], [], "x"
    for i in range(n):
        inits.append(weight(f"W{i}", (channels, channels, 3, 3)))
        inits.append(weight(f"B{i}", (channels,)))
        nodes.append(helper.make_node("Conv", [prev, f"W{i}", f"B{i}"], [f"c{i}"], pads=[1, 1, 1, 1], name=f"conv{i}"))
        out = "y" if i == n - 1 else f"r{i}"
        nodes.append(helper.make_node("Relu", [f"c{i}"], [out], name=f"relu{i}"))
        prev = out
    shape = [1, channels, size, size]
    return make_model(nodes, [vi("x", shape)], [vi("y", shape)], inits)


def cycle_trap_model(channels=8, size=32):
    """Hailo A -> host H -> hailo Add, and A -> hailo B -> Add: A and Add may not share a segment."""
    shape = [1, channels, size, size]
    w = lambda n: weight(n, (channels, channels, 3, 3))  # noqa: E731
    nodes = [
        helper.make_node("Conv", ["x", "WA"], ["a"], pads=[1, 1, 1, 1], name="convA"),
        helper.make_node("Floor", ["a"], ["h"], name="floorH"),
        helper.make_node("Conv", ["a", "WB"], ["b"], pads=[1, 1, 1, 1], name="convB"),
        helper.make_node("Add", ["h", "b"], ["s"], name="add"),
        helper.make_node("Conv", ["s", "WC"], ["y"], pads=[1, 1, 1, 1], name="convC"),
    ]
    return make_model(nodes, [vi("x", shape)], [vi("y", shape)], [w("WA"), w("WB"), w("WC")])
