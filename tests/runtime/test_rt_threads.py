"""onnxruntime thread settings of a plan's sessions: 1 thread by default (no pool whose spinning
workers fight the next session for the cores), non-spinning pools on request; same results."""

import numpy as np
import pytest
from rt_helpers import conv_model, rand, write_plan

from runtime import Plan


def two_session_plan(tmp_path):
    conv_model(tmp_path / "segments" / "a.onnx", 2, 4, 6, 6, seed=1, names=("x", "t"))
    conv_model(tmp_path / "segments" / "b.onnx", 4, 3, 6, 6, seed=2, names=("t", "y"))
    steps = [
        {"name": n, "device": "host", "kind": "onnx", "model": f"segments/{n}.onnx", "inputs": [i], "outputs": [o]}
        for n, i, o in (("a", "x", "t"), ("b", "t", "y"))
    ]
    return write_plan(tmp_path, [("x", [1, 2, 6, 6])], [("y", [1, 3, 6, 6])], steps)


def spinning_entry(opts):
    try:
        return opts.get_session_config_entry("session.intra_op.allow_spinning")
    except RuntimeError:  # not set: onnxruntime's default (spinning allowed)
        return None


@pytest.mark.parametrize(
    "threads, want_threads, spinning",
    [
        (None, 1, None),  # default: one thread, no pool to spin
        (1, 1, None),
        (2, 2, "0"),
        (0, 0, "0"),  # onnxruntime's pool size, made non-spinning
    ],
)
def test_session_threads_and_spinning(tmp_path, threads, want_threads, spinning):
    out = two_session_plan(tmp_path)
    plan = Plan.load(out, backend="onnxruntime", intra_op_num_threads=threads)
    opts = plan._host.options
    assert opts.intra_op_num_threads == want_threads
    assert spinning_entry(opts) == spinning
    x = rand(1, 2, 6, 6, seed=3)
    ref = Plan.load(out, backend="onnxruntime", intra_op_num_threads=1).run({"x": x})["y"]
    np.testing.assert_allclose(plan.run({"x": x})["y"], ref, rtol=1e-6, atol=1e-7)
