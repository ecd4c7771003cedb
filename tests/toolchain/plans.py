"""Build small plans by hand (design.md format) for the toolchain tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from plan_steps import onnx_step

from rewriter.plan.document import finalize
from rewriter.toolchain.plan_io import load_plan, write_plan
from runtime import schema


def conv_segment(path: Path, c_in=4, c_out=4, width=16, prefix="", weight=1.0) -> None:
    """[1, c_in, 1, W] -> Conv 1x1 -> Relu -> [1, c_out, 1, W]; node names `{prefix}conv`, `{prefix}relu`;
    every weight is `weight`."""
    w = numpy_helper.from_array(np.full((c_out, c_in, 1, 1), weight, np.float32), "w")
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["h"], name=f"{prefix}conv", kernel_shape=[1, 1]),
            helper.make_node("Relu", ["h"], ["y"], name=f"{prefix}relu"),
        ],
        "seg",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c_in, 1, width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, c_out, 1, width])],
        [w],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def two_input_segment(path: Path, c=4, width=8) -> None:
    """a, b [1, c, 1, W] -> Add (`add`) -> Relu (`relu`) -> y, and Sigmoid(b) (`sig`) -> z."""
    shape = [1, c, 1, width]
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["a", "b"], ["s"], name="add"),
            helper.make_node("Relu", ["s"], ["y"], name="relu"),
            helper.make_node("Sigmoid", ["b"], ["z"], name="sig"),
        ],
        "seg2",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in ("a", "b")],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in ("z", "y")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def nhwc_calib(path: Path, n, c, width, seed=0) -> None:
    np.save(path, np.random.default_rng(seed).standard_normal((n, 1, width, c)).astype(np.float32))


def write_plan_json(out: Path, steps: list, target="hailo8", outputs=(("y", [1, 4, 1, 16]),), width=16) -> None:
    plan = {
        "format": "hailo-rewriter-plan",
        "version": 2,
        "target": target,
        "source": {"model": "model.onnx", "sha256": "0" * 64},
        "inputs": [{"name": "x", "shape": [1, 4, 1, width], "dtype": "float32"}],
        "outputs": [{"name": n, "shape": s, "dtype": "float32"} for n, s in outputs],
        "steps": steps,
    }
    finalize(plan, out)
    (out / "plan.json").write_text(json.dumps(plan, indent=2))


def standard_plan(out: Path, n_calib=1100) -> Path:
    """host_0; hailo_1 (W=16); hailo_2 shared by two tile steps with their own calib; hailo_3 two inputs."""
    (out / "segments").mkdir(parents=True)
    (out / "calib").mkdir()
    conv_segment(out / "segments/host_0.onnx", width=16, prefix="h0_")
    conv_segment(out / "segments/hailo_1.onnx", width=16, prefix="h1_")
    conv_segment(out / "segments/hailo_2.onnx", c_in=4, c_out=4, width=8, prefix="h2_")
    two_input_segment(out / "segments/hailo_3.onnx")
    nhwc_calib(out / "calib/hailo_1.npy", n_calib, 4, 16)
    nhwc_calib(out / "calib/hailo_2a.npy", 600, 4, 8, seed=1)
    nhwc_calib(out / "calib/hailo_2b.npy", 500, 4, 8, seed=2)
    rng = np.random.default_rng(3)
    np.savez(
        out / "calib/hailo_3.npz",
        a=rng.standard_normal((64, 1, 8, 4)).astype(np.float32),
        b=rng.standard_normal((64, 1, 8, 4)).astype(np.float32),
    )
    write_plan_json(
        out,
        [
            onnx_step("host_0", ["x"], ["t0"], device="host"),
            onnx_step("hailo_1", ["t0"], ["t1"], calib="calib/hailo_1.npy"),
            {
                "name": "cut_a",
                "device": "host",
                "kind": "slice",
                "inputs": ["t1"],
                "outputs": ["t1a"],
                "axis": 3,
                "start": 0,
                "end": 8,
            },
            {
                "name": "cut_b",
                "device": "host",
                "kind": "slice",
                "inputs": ["t1"],
                "outputs": ["t1b"],
                "axis": 3,
                "start": 8,
                "end": 16,
            },
            {
                "name": "hailo_2a",
                "device": "hailo",
                "kind": "onnx",
                "model": "segments/hailo_2.onnx",
                "inputs": ["t1a"],
                "outputs": ["t2a"],
                "calib": "calib/hailo_2a.npy",
            },
            {
                "name": "hailo_2b",
                "device": "hailo",
                "kind": "onnx",
                "model": "segments/hailo_2.onnx",
                "inputs": ["t1b"],
                "outputs": ["t2b"],
                "calib": "calib/hailo_2b.npy",
            },
            {
                "name": "hailo_3",
                "device": "hailo",
                "kind": "onnx",
                "model": "segments/hailo_3.onnx",
                "inputs": ["t2a", "t2b"],
                "outputs": ["z", "y"],
                "calib": "calib/hailo_3.npz",
            },
        ],
        outputs=(("y", [1, 4, 1, 8]), ("z", [1, 4, 1, 8])),
    )
    return out


def many_segments_plan(out: Path, n: int, n_calib=16) -> Path:
    """`n` distinct one-step hailo segments hailo_1..hailo_n (different weights), each with its calib."""
    (out / "segments").mkdir(parents=True)
    (out / "calib").mkdir()
    steps = []
    for i in range(1, n + 1):
        conv_segment(out / f"segments/hailo_{i}.onnx", width=8, prefix=f"h{i}_", weight=float(i))
        nhwc_calib(out / f"calib/hailo_{i}.npy", n_calib, 4, 8, seed=i)
        steps.append(
            {
                "name": f"hailo_{i}",
                "device": "hailo",
                "kind": "onnx",
                "model": f"segments/hailo_{i}.onnx",
                "inputs": ["x" if i == 1 else f"t{i - 1}"],
                "outputs": ["y" if i == n else f"t{i}"],
                "calib": f"calib/hailo_{i}.npy",
            }
        )
    write_plan_json(out, steps, outputs=(("y", [1, 4, 1, 8]),), width=8)
    return out


def wide_plan(out: Path, width=64) -> Path:
    """One hailo step over a W=`width` conv: the allocator stand-in rejects it when too wide."""
    (out / "segments").mkdir(parents=True)
    (out / "calib").mkdir()
    conv_segment(out / "segments/hailo_1.onnx", width=width)
    nhwc_calib(out / "calib/hailo_1.npy", 1100, 4, width)
    write_plan_json(
        out,
        [onnx_step("hailo_1", ["x"], ["y"], calib="calib/hailo_1.npy")],
        outputs=(("y", [1, 4, 1, width]),),
        width=width,
    )
    return out


class FakeRetile:
    """Stand-in for the tiler's retile_segment: splits a step's W in two narrower segment files,
    slices its calibration to match and replaces the step by two pieces + a concat."""

    def __init__(self):
        self.calls = []

    def __call__(self, out_dir, step_name, factor=0.5):
        self.calls.append((step_name, factor))
        out_dir = Path(out_dir)
        plan = load_plan(out_dir)
        i = next(k for k, s in enumerate(plan["steps"]) if s["name"] == step_name)
        step = plan["steps"][i]
        model = onnx.load(str(out_dir / step["model"]))
        width = model.graph.input[0].type.tensor_type.shape.dim[3].dim_value
        piece = max(1, int(width * factor))
        calib = np.load(out_dir / step["calib"])
        new = []
        for k in range(2):
            name = f"{step_name}_p{k}"
            conv_segment(out_dir / f"segments/{name}.onnx", width=piece, prefix=f"{name}_")
            np.save(out_dir / f"calib/{name}.npy", calib[:, :, k * piece : (k + 1) * piece, :])
            new.append(
                {
                    "name": name,
                    "device": "hailo",
                    "kind": "onnx",
                    "model": f"segments/{name}.onnx",
                    "inputs": step["inputs"],
                    "outputs": [f"{name}_y"],
                    "calib": f"calib/{name}.npy",
                }
            )
        concat = {
            "name": f"{step_name}_cat",
            "device": "host",
            "kind": "concat",
            "inputs": [s["outputs"][0] for s in new],
            "outputs": step["outputs"],
            "axis": 3,
        }
        plan["steps"][i : i + 1] = new + [concat]
        write_plan(out_dir, finalize(plan, out_dir))
        return [s["name"] for s in new]


def rehash(out: Path) -> None:
    """Record the current bytes of the plan's files in plan.json, as re-running `rewrite` would after
    a segment or calibration file changed (the toolchain refuses files that fail their hash)."""
    plan = json.loads((out / "plan.json").read_text())
    schema.refresh_files(plan, out)
    (out / "plan.json").write_text(json.dumps(plan, indent=2))
