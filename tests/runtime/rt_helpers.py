"""Build small segment models and plan directories by hand for the runtime tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def save_model(path: Path, nodes, inputs, outputs, inits=()):
    """inputs/outputs: [(name, shape)], float32."""
    vi = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s))
    graph = helper.make_graph(
        nodes,
        path.stem,
        [vi(*i) for i in inputs],
        [vi(*o) for o in outputs],
        initializer=[numpy_helper.from_array(np.asarray(a, np.float32), n) for n, a in inits],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def conv_model(path: Path, cin, cout, h, w, k=3, seed=0, relu=True, names=("x", "y")):
    """Conv (same padding) [+ Relu]: [1,cin,h,w] -> [1,cout,h,w]."""
    rng = np.random.default_rng(seed)
    wt = rng.standard_normal((cout, cin, k, k)).astype(np.float32) / np.sqrt(cin * k * k)
    b = rng.standard_normal(cout).astype(np.float32) * 0.1
    x, y = names
    mid = "c" if relu else y
    nodes = [helper.make_node("Conv", [x, "W", "B"], [mid], pads=[k // 2] * 4)]
    if relu:
        nodes.append(helper.make_node("Relu", [mid], [y]))
    return save_model(path, nodes, [(x, [1, cin, h, w])], [(y, [1, cout, h, w])], [("W", wt), ("B", b)])


def affine_model(path: Path, shape, scale, bias, names=("a", "b")):
    """y = x * scale + bias (elementwise), handy for checking positional binding."""
    x, y = names
    nodes = [helper.make_node("Mul", [x, "S"], ["m"]), helper.make_node("Add", ["m", "Bz"], [y])]
    return save_model(path, nodes, [(x, shape)], [(y, shape)], [("S", np.float32(scale)), ("Bz", np.float32(bias))])


def write_plan(out: Path, inputs, outputs, steps, finalize=True, **extra) -> Path:
    """inputs/outputs: [(name, shape)] or dicts; steps: list of step dicts. `tensors` and `files`
    are derived from the segment files (rewriter.plan.document.finalize) unless given in `extra`
    or finalize=False (a deliberately broken plan)."""
    from rewriter.plan.document import finalize as complete

    as_t = lambda t: t if isinstance(t, dict) else {"name": t[0], "shape": list(t[1]), "dtype": "float32"}
    doc = {
        "format": "hailo-rewriter-plan",
        "version": 2,
        "target": "hailo8",
        "source": {"model": "model.onnx", "sha256": "0" * 64},
        "inputs": [as_t(t) for t in inputs],
        "outputs": [as_t(t) for t in outputs],
        "steps": steps,
    }
    out.mkdir(parents=True, exist_ok=True)
    if finalize:
        complete(doc, out, strict=False)
    doc.update(extra)
    (out / "plan.json").write_text(json.dumps(doc, indent=1))
    return out


def refresh(out: Path) -> None:
    """Re-hash the plan's files after a test replaced one on purpose (plan.json lists every hash)."""
    from runtime.schema import refresh_files

    doc = json.loads((out / "plan.json").read_text())
    (out / "plan.json").write_text(json.dumps(refresh_files(doc, out), indent=1))


def ort_run(path, *xs):
    import onnxruntime as ort

    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(None, {i.name: x for i, x in zip(s.get_inputs(), xs)})


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
