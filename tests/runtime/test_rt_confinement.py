"""What the fuzzer found in the runtime: a plan.json symlinked out of the folder was read, and
emulate-int8 had onnxruntime.quantization re-read the plan's segment by path and write a
`-inferred` file beside it."""

import os
import sys

import numpy as np
import pytest
from plan_steps import onnx_step
from rt_helpers import conv_model, rand, write_plan

from runtime import Plan, PlanError


def small_plan(folder):
    conv_model(folder / "segments/hailo_1.onnx", 3, 4, 6, 6)
    return write_plan(
        folder,
        [("x", [1, 3, 6, 6])],
        [("y", [1, 4, 6, 6])],
        [onnx_step("hailo_1", ["x"], ["y"])],
    )


def test_plan_json_linked_out_of_the_folder_is_refused(tmp_path):
    real = small_plan(tmp_path / "real")
    other = tmp_path / "other"
    (other / "segments").mkdir(parents=True)
    (other / "segments/hailo_1.onnx").write_bytes((real / "segments/hailo_1.onnx").read_bytes())
    (other / "plan.json").symlink_to(real / "plan.json")
    with pytest.raises(PlanError, match="symbolic link leaving the plan folder"):
        Plan.load(other)
    inside = tmp_path / "real" / "plan.v2.json"  # a link within the folder is the folder's own
    os.replace(real / "plan.json", inside)
    (real / "plan.json").symlink_to(inside.name)
    Plan.load(real).run({"x": rand(1, 3, 6, 6)})


class Writes:
    """Files opened for writing under `folder`, and files opened by onnxruntime.quantization."""

    def __init__(self):
        self.folder = None
        self.seen = []
        sys.addaudithook(self)

    def __call__(self, event, args):
        if self.folder is None or event != "open" or not isinstance(args[0], (str, bytes, os.PathLike)):
            return
        path, mode, flags = os.path.realpath(os.fsdecode(args[0])), args[1], args[2]
        writing = (mode and any(c in mode for c in "wax+")) or (flags and flags & (os.O_WRONLY | os.O_RDWR))
        if writing and path.startswith(self.folder):
            self.seen.append(path)


WRITES = Writes()


def test_emulate_int8_never_writes_into_the_plan(tmp_path, tmp_path_factory, monkeypatch):
    out = small_plan(tmp_path / "plan")
    import onnxruntime.quantization as q

    given = []
    real = q.quantize_static
    monkeypatch.setattr(q, "quantize_static", lambda model, *a, **k: (given.append(model), real(model, *a, **k))[1])
    WRITES.folder = os.path.realpath(out)
    try:
        plan = Plan.load(
            out,
            backend="emulate-int8",
            calibration={"x": np.stack([rand(1, 3, 6, 6, seed=i) for i in range(8)])},
            int8_cache_dir=tmp_path_factory.mktemp("int8"),
        )
        plan.run({"x": rand(1, 3, 6, 6)})
    finally:
        WRITES.folder = None
    assert given and not any(os.path.realpath(g).startswith(os.path.realpath(out)) for g in given)
    assert WRITES.seen == []
