"""Shared helpers for the hailo8 rule-file / pass tests: build small models, rewrite them with the
CLI, run the plan with the runtime, compare with onnxruntime on the original model, and expose the
plan's segments for structural assertions."""

from __future__ import annotations

import io
import json
import re
import zlib
from collections import Counter
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from model_feeds import random_feeds  # noqa: F401  (re-exported for the tests here)
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "rules" / "hailo8"
HAILO8_TOML = RULES / "target.toml"
ONNX_CASES = Path(onnx.__file__).resolve().parent / "backend" / "test" / "data" / "pytorch-converted"
TCN_MODEL = (REPO / ".." / "shared" / "fixtures" / "tcn_encoder" / "tcn_encoder_for_edgeinfer.onnx").resolve()

RTOL = 1e-5
ATOL_SCALE = 1e-5


# ------------------------------------------------------------------ model building
def vi(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def const(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def weight(name, shape, seed=0, scale=0.5):
    rng = np.random.default_rng([zlib.crc32(name.encode()), seed])
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def ints(name, values):
    return numpy_helper.from_array(np.asarray(values, np.int64), name)


def make_model(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)  # fills outputs given as None
    onnx.checker.check_model(model, full_check=True)
    return model


def bn_inits(prefix, c, seed=0):
    rng = np.random.default_rng([zlib.crc32(prefix.encode()), seed])
    return [
        const(f"{prefix}_s", rng.uniform(0.5, 1.5, c).astype(np.float32)),
        const(f"{prefix}_b", rng.standard_normal(c).astype(np.float32)),
        const(f"{prefix}_m", rng.standard_normal(c).astype(np.float32)),
        const(f"{prefix}_v", rng.uniform(0.5, 2.0, c).astype(np.float32)),
    ]


def torch_export(module, example, path, input_names=("x",), output_names=("y",), opset=17, dynamo=False, **kw):
    """TorchScript export at `opset`, or (dynamo=True) torch's default exporter at its own opset."""
    import warnings

    import torch

    module.eval()
    if not dynamo:
        kw["opset_version"] = opset
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            example,
            str(path),
            dynamo=dynamo,
            input_names=list(input_names),
            output_names=list(output_names),
            **kw,
        )
    return Path(path)


# ------------------------------------------------------------------ running


def ort_run(model, feeds) -> dict:
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else Path(model).read_bytes()
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feeds)))


def assert_close(got, ref, name="", rtol=RTOL, atol_scale=ATOL_SCALE):
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.shape == ref.shape, f"{name}: shape {got.shape} != {ref.shape}"
    scale = float(np.abs(ref).max()) if ref.size else 0.0
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=atol_scale * max(scale, 1e-30), err_msg=name)


def cosine(a, b) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-300))


@dataclass
class Result:
    out: Path
    doc: dict
    segments: dict  # step name -> shape-inferred ModelProto
    outputs: dict  # plan outputs
    ref: dict  # onnxruntime on the original model
    feeds: dict
    steps: list = field(default_factory=list)

    def steps_on(self, device):
        return [s for s in self.doc["steps"] if s["device"] == device]

    @property
    def hailo(self) -> list:
        return [self.segments[s["name"]] for s in self.steps_on("hailo")]

    @property
    def host(self) -> list:
        return [self.segments[s["name"]] for s in self.steps_on("host") if s["name"] in self.segments]

    def ops(self, device=None) -> Counter:
        c = Counter()
        for s in self.doc["steps"]:
            if (device is None or s["device"] == device) and s["name"] in self.segments:
                c.update(n.op_type for n in self.segments[s["name"]].graph.node)
        return c

    def step_of_node(self, op=None, name=None) -> list[str]:
        """Names of the steps that hold nodes of `op` (or named `name`)."""
        out = []
        for s in self.doc["steps"]:
            m = self.segments.get(s["name"])
            if m is None:
                continue
            if any((op is None or n.op_type == op) and (name is None or n.name == name) for n in m.graph.node):
                out.append(s["name"])
        return out

    def placement(self) -> dict:
        return {row["node"]: row for row in self.doc.get("placement", [])}


def rewrite_and_run(
    model,
    tmp_path: Path,
    feeds: dict | None = None,
    target="hailo8",
    extra_args=(),
    seed=0,
    compare=True,
    rtol=RTOL,
    atol_scale=ATOL_SCALE,
    name="model",
    expected: dict | None = None,
) -> Result:
    """Write `model` (ModelProto or path), `rewrite` it to a plan, run the plan and compare every
    output with onnxruntime on the original model (or with `expected` {output: array})."""
    from rewriter.cli import main
    from runtime import Plan

    tmp_path = Path(tmp_path)
    if isinstance(model, onnx.ModelProto):
        src = tmp_path / f"{name}.onnx"
        onnx.save(model, str(src))
        proto = model
    else:
        src = Path(model)
        proto = onnx.load(str(src))
    out = tmp_path / f"{name}.plan"
    with redirect_stdout(io.StringIO()):
        code = main([str(src), "--target", str(target), "-o", str(out), "-q", *map(str, extra_args)])
    assert code == 0, f"rewrite exited with {code}"
    doc = json.loads((out / "plan.json").read_text())
    segments = {}
    for s in doc["steps"]:
        if s.get("model"):
            m = onnx.load(str(out / s["model"]))
            segments[s["name"]] = onnx.shape_inference.infer_shapes(m, strict_mode=True)
    feeds = random_feeds(proto, seed) if feeds is None else feeds
    ref = ort_run(proto, feeds) if expected is None else expected
    with Plan.load(out, backend="onnxruntime") as plan:
        outputs = plan.run(feeds)
    if compare:
        assert set(outputs) == set(ref), f"plan outputs {sorted(outputs)} != model outputs {sorted(ref)}"
        for k in ref:
            assert_close(outputs[k], ref[k], k, rtol, atol_scale)
    return Result(out, doc, segments, outputs, ref, feeds, doc["steps"])


# ------------------------------------------------------------------ structural checks
def _value_infos(model: onnx.ModelProto):
    g = model.graph
    inits = {t.name for t in g.initializer}
    for v in list(g.input) + list(g.output) + list(g.value_info):
        if v.name not in inits and v.type.HasField("tensor_type"):
            yield v


def tensor_ranks(model: onnx.ModelProto) -> dict:
    return {
        v.name: len(v.type.tensor_type.shape.dim) for v in _value_infos(model) if v.type.tensor_type.HasField("shape")
    }


def assert_hailo_clean(res: Result, allow_rank2=True):
    """Every Hailo segment: no rank-3 tensor, no BatchNormalization, Conv groups in {1, C_in},
    ConvTranspose group 1."""
    assert res.steps_on("hailo"), "no hailo segment"
    for step in res.steps_on("hailo"):
        m = res.segments[step["name"]]
        ranks = tensor_ranks(m)
        bad = {k: r for k, r in ranks.items() if r == 3 or (r not in (2, 4) if allow_rank2 else r != 4)}
        assert not bad, f"{step['name']}: tensors of unexpected rank {bad}"
        shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in _value_infos(m)}
        for n in m.graph.node:
            assert n.op_type != "BatchNormalization", f"{step['name']}: BatchNormalization {n.name}"
            if n.op_type in ("Conv", "ConvTranspose"):
                group = next((a.i for a in n.attribute if a.name == "group"), 1)
                if group != 1:
                    assert n.op_type == "Conv", f"grouped ConvTranspose {n.name} on hailo"
                    assert group == shapes[n.input[0]][1], f"grouped (not depthwise) Conv {n.name}"


def backend_case(name):
    d = ONNX_CASES / name
    if not (d / "model.onnx").is_file():
        pytest.skip(f"onnx backend case {name} not shipped")
    model = onnx.load(str(d / "model.onnx"))
    inp = numpy_helper.to_array(onnx.load_tensor(str(d / "test_data_set_0" / "input_0.pb")))
    out = numpy_helper.to_array(onnx.load_tensor(str(d / "test_data_set_0" / "output_0.pb")))
    return d / "model.onnx", model, inp, out


def custom_target(
    tmp_path: Path, replacements: dict | None = None, roundtrip_macs: int | None = 0, name="target.toml"
) -> Path:
    """A copy of hailo8's target.toml in tmp_path (rule paths made absolute), with text
    `replacements` {old: new} applied and, by default, roundtrip_macs = 0 so tiny test models are
    not sent to the host as "too small"."""
    text = HAILO8_TOML.read_text()
    block = re.search(r"^rules = \[.*?\]", text, re.S | re.M).group(0)
    names = re.findall(r'"([^"]+)"', block)
    text = text.replace(block, "rules = [" + ", ".join(f'"{(RULES / r).as_posix()}"' for r in names) + "]")
    if roundtrip_macs is not None:
        old = next(line for line in text.splitlines() if line.startswith("roundtrip_macs"))
        text = text.replace(old, f"roundtrip_macs = {roundtrip_macs}")
    for old, new in (replacements or {}).items():
        assert old in text, f"{old!r} not in target.toml"
        text = text.replace(old, new)
    path = Path(tmp_path) / name
    path.write_text(text)
    return path
