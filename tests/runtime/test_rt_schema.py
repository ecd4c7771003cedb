"""Plan format v2 (runtime/schema.py): paths confined to the plan folder, files verified by sha256,
every tensor declared and checked, names and sizes bounded."""

import json
import os

import numpy as np
import pytest
from rt_helpers import affine_model, rand, refresh, write_plan

from runtime import Plan, PlanError, validate


def plan(tmp_path, steps=None, **extra):
    affine_model(tmp_path / "segments/m.onnx", [1, 3], 2.0, 1.0)
    steps = steps or [{"name": "s0", "kind": "onnx", "model": "segments/m.onnx", "inputs": ["x"], "outputs": ["y"]}]
    return write_plan(tmp_path, [("x", [1, 3])], [("y", [1, 3])], steps, **extra)


def edit(out, fn):
    doc = json.loads((out / "plan.json").read_text())
    fn(doc)
    (out / "plan.json").write_text(json.dumps(doc))


def test_valid_plan_loads_and_validates(tmp_path):
    out = plan(tmp_path)
    assert validate(out).files["segments/m.onnx"].size == (out / "segments/m.onnx").stat().st_size
    np.testing.assert_allclose(Plan.load(out).run({"x": np.ones((1, 3), np.float32)})["y"], 3.0)


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "../m.onnx",
        "segments/../../m.onnx",
        "./segments/m.onnx",
        "segments//m.onnx",
        ".hidden.onnx",
        "seg ments/m.onnx",
        "segments\\m.onnx",
    ],
)
def test_paths_must_be_plain_and_relative(tmp_path, path):
    out = plan(tmp_path)
    edit(out, lambda d: d["steps"][0].update(model=path))
    with pytest.raises(PlanError, match="must be relative to the plan folder"):
        Plan.load(out)


def test_symlinked_file_leaving_the_plan_is_refused(tmp_path):
    outside = tmp_path / "outside.onnx"
    affine_model(outside, [1, 3], 5.0, 0.0)
    out = plan(tmp_path / "p")
    (out / "segments/m.onnx").unlink()
    os.symlink(outside, out / "segments/m.onnx")
    refresh(out)  # even with a matching hash
    with pytest.raises(PlanError, match="resolves outside the plan folder"):
        Plan.load(out)


def test_symlinked_segments_folder_is_refused(tmp_path):
    out = plan(tmp_path / "p")
    elsewhere = tmp_path / "elsewhere"
    (out / "segments").rename(elsewhere)
    os.symlink(elsewhere, out / "segments")
    with pytest.raises(PlanError, match="resolves outside the plan folder"):
        Plan.load(out)


def test_modified_segment_is_detected(tmp_path):
    out = plan(tmp_path)
    affine_model(out / "segments/m.onnx", [1, 3], 7.0, 0.0)  # same I/O, other weights
    with pytest.raises(PlanError, match="segments/m.onnx does not match its sha256"):
        Plan.load(out)


def test_unlisted_file_is_refused(tmp_path):
    out = plan(tmp_path)
    edit(out, lambda d: d["files"].clear())
    with pytest.raises(PlanError, match="model file 'segments/m.onnx' is not listed in 'files'"):
        Plan.load(out)


def test_undeclared_and_misdeclared_tensors(tmp_path):
    out = plan(tmp_path)
    edit(out, lambda d: d["tensors"].clear())
    with pytest.raises(PlanError, match="produces tensor 'y', which 'tensors' does not declare"):
        Plan.load(out)
    out = plan(tmp_path / "b")
    edit(out, lambda d: d["tensors"]["y"].update(shape=[1, 4]))
    with pytest.raises(
        PlanError, match="plan output 'y' is declared \\[1, 3\\] float32 but its producer makes \\[1, 4\\]"
    ):
        Plan.load(out)


def test_swapped_segment_is_caught_at_run_time(tmp_path):
    """A segment file replaced (and re-hashed) by one with other outputs: the step's result does not
    match plan.json's declaration, and the run says so instead of passing it on."""
    out = plan(tmp_path)
    from onnx import helper
    from rt_helpers import save_model

    save_model(
        out / "segments/m.onnx", [helper.make_node("Cast", ["x"], ["y"], to=11)], [("x", [1, 3])], [("y", [1, 3])]
    )
    import onnx

    m = onnx.load(str(out / "segments/m.onnx"))
    m.graph.output[0].type.tensor_type.elem_type = 11
    onnx.save(m, str(out / "segments/m.onnx"))
    refresh(out)
    p = Plan.load(out)
    with pytest.raises(
        PlanError, match="step 's0' produced 'y' as \\[1, 3\\] float64, but plan.json declares \\[1, 3\\] float32"
    ):
        p.run({"x": rand(1, 3)})


def test_stitch_steps_are_checked_against_declarations(tmp_path):
    out = plan(
        tmp_path,
        [
            {"name": "s0", "kind": "onnx", "model": "segments/m.onnx", "inputs": ["x"], "outputs": ["t"]},
            {"name": "cut", "kind": "slice", "inputs": ["t"], "outputs": ["u"], "axis": 1, "start": 0, "end": 2},
            {"name": "pad", "kind": "slice", "inputs": ["u"], "outputs": ["y"], "axis": 1, "start": 0, "end": 3},
        ],
    )
    Plan.load(out)
    edit(out, lambda d: d["steps"][1].update(end=100_000_000))  # a huge allocation asked for
    with pytest.raises(PlanError, match="step 'cut': produces shape \\[1, 100000000\\] but 'tensors' declares"):
        Plan.load(out)


@pytest.mark.parametrize("name", ["host_0\nrm -rf /", "a b", "", "x" * 300, "$(id)", "-rf"])
def test_step_names_follow_the_pattern(tmp_path, name):
    out = plan(tmp_path)
    edit(out, lambda d: d["steps"][0].update(name=name))
    with pytest.raises(PlanError, match="step name .* must match"):
        Plan.load(out)


def test_tensor_names_without_control_characters(tmp_path):
    out = plan(tmp_path)
    edit(out, lambda d: d["steps"][0].update(outputs=["y\n"]))
    with pytest.raises(PlanError, match="without control characters"):
        Plan.load(out)


def test_deeply_nested_and_oversized_plan_json(tmp_path):
    (tmp_path / "plan.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(PlanError, match="nested too deeply"):
        Plan.load(tmp_path)
    with open(tmp_path / "plan.json", "wb") as fh:
        fh.truncate((64 << 20) + 1)
    with pytest.raises(PlanError, match="larger than 64 MiB"):
        Plan.load(tmp_path)


def test_huge_declared_shape_is_refused(tmp_path):
    out = plan(tmp_path)
    edit(out, lambda d: d["inputs"][0].update(shape=[1, 2**40]))
    with pytest.raises(PlanError, match="integers|elements"):
        Plan.load(out)


def test_failed_compile_status_keeps_auto_on_onnxruntime(tmp_path):
    out = plan(
        tmp_path,
        [
            {
                "name": "s0",
                "kind": "onnx",
                "device": "hailo",
                "model": "segments/m.onnx",
                "inputs": ["x"],
                "outputs": ["y"],
                "compile_status": "failed",
            }
        ],
    )
    import sys
    import types

    from runtime.backends import choose_backend
    from runtime.schema import load_spec

    sys.modules["hailo_platform"] = types.ModuleType("hailo_platform")  # importable, but the step failed
    try:
        name, reason = choose_backend(load_spec(out), "auto")
    finally:
        del sys.modules["hailo_platform"]
    assert name == "onnxruntime" and "compile failed for step(s) s0" in reason


def test_confined_with_resolved_folders_answers_as_resolving_each_path(tmp_path):
    """schema.confined resolves each folder once per plan (`dirs`) and lstats only the file: the
    same answer, or the same refusal, as resolving every path in full, for plain files, files that
    are symlinks (inside and outside), a folder that is a symlink (inside and outside), a folder
    where a file should be, and missing files, in any order."""
    from runtime import schema

    root = tmp_path / "p"
    (root / "segments").mkdir(parents=True)
    (tmp_path / "out").mkdir()
    for name in ("a.onnx", "b.onnx"):
        (root / "segments" / name).write_bytes(b"x")
    (tmp_path / "out" / "c.onnx").write_bytes(b"y")
    os.symlink(root / "segments" / "a.onnx", root / "segments" / "inside.onnx")
    os.symlink(tmp_path / "out" / "c.onnx", root / "segments" / "outside.onnx")
    os.symlink(root / "segments", root / "alias")
    os.symlink(tmp_path / "out", root / "away")
    (root / "segments" / "dir.onnx").mkdir()
    rels = [
        "segments/a.onnx",
        "segments/inside.onnx",
        "segments/outside.onnx",
        "segments/dir.onnx",
        "segments/missing.onnx",
        "alias/b.onnx",
        "alias/outside.onnx",
        "away/c.onnx",
        "b.onnx",
    ]
    real_root = root.resolve()

    def answer(rel, dirs):
        try:
            return schema.confined(root, rel, "w", real_root, dirs)
        except PlanError as exc:
            return str(exc)

    want = {rel: answer(rel, None) for rel in rels}
    assert want["segments/inside.onnx"] == real_root / "segments" / "a.onnx"
    assert "outside" in want["segments/outside.onnx"] and "not a file" in want["segments/dir.onnx"]
    for order in (rels, rels[::-1]):
        dirs = {}
        assert {rel: answer(rel, dirs) for rel in order} == want
