"""Issue 16's papercuts, each pinned: what a newcomer saw first (help text, `rules list`, a plan
check that wrote into the plan, a profile that printed its backend twice, late input errors)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import rewriter.pipeline
from rewriter.cli import main
from runtime import Plan, PlanError


def cli(capsys, *args):
    capsys.readouterr()
    rc = main([str(a) for a in args])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.fixture
def model(tmp_path):
    """A conv big enough for a Hailo segment (above the cost rule's 200k MACs) and a Transpose to
    the Squeeze of its size-1 H axis after it, which the plan runs as a host `view` step."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((16, 16, 1, 3)).astype(np.float32), "w")
    axes = numpy_helper.from_array(np.array([2], np.int64), "axes")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[0, 1, 0, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Squeeze", ["r", "axes"], ["y"], name="squeeze"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 1, 512])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 512])],
        [w, axes],
    )
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    np.save(tmp_path / "x.npy", rng.standard_normal((1, 16, 1, 512)).astype(np.float32))
    np.save(tmp_path / "calib.npy", rng.standard_normal((8, 16, 1, 512)).astype(np.float32))
    return path


def test_help_says_rules_repeat_and_the_default_target(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--rules FILE.rw" in text and "repeatable" in text.split("--rules FILE.rw", 1)[1].split("--rules-first")[0]
    assert "extra rule file" not in text
    assert "target.toml (default: hailo8)" in text  # --target says what it defaults to


def test_rules_list_fits_100_columns(capsys):
    from passes.helpers import HELPERS
    from rewriter.dsl import list_rules
    from rewriter.target import load_target

    rc, out, _ = cli(capsys, "rules", "list")
    assert rc == 0
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100, max(lines, key=len)
    listed = list_rules(load_target("hailo8").rule_files, HELPERS)
    longest = max(listed, key=lambda r: len(r[3]))
    assert len(longest[3]) > 100  # the case that used to make the table ~500 columns wide
    # every rule is listed and no summary loses a word: the wrapped pieces read back to the summary
    start = next(i for i, line in enumerate(lines) if line.startswith(longest[0] + " "))
    column = lines[0].index("summary")
    pieces = [lines[start][column:]] + [line[column:] for line in lines[start + 1 :] if line[:column].strip() == ""][
        :20
    ]
    joined = " ".join(pieces)
    assert " ".join(longest[3].split()) in joined
    assert {line.split()[0] for line in lines[2:] if line[:1].strip()} == {r[0] for r in listed}


def test_missing_calib_and_normalize_files_fail_before_loading(capsys, monkeypatch, model, tmp_path):
    def loaded(*a, **k):
        raise AssertionError("the model was loaded before the input files were checked")

    monkeypatch.setattr(rewriter.pipeline, "rewrite_to_plan", loaded)
    monkeypatch.setattr(rewriter.pipeline, "rewrite", loaded)
    rc, _, err = cli(capsys, model, "-o", tmp_path / "a.plan", "--calib", tmp_path / "nope.npy")
    assert rc == 2 and err.strip() == f"rewrite: error: no such calibration file: {tmp_path / 'nope.npy'}"
    for verb in ([], ["inspect"]):
        rc, _, err = cli(capsys, *verb, model, "--normalize", tmp_path / "nope.json")
        assert rc == 2 and err.strip() == f"rewrite: error: no such --normalize file: {tmp_path / 'nope.json'}"
    (tmp_path / "bad.json").write_text('{"mean": [0]}')
    rc, _, err = cli(capsys, "inspect", model, "--normalize", tmp_path / "bad.json")
    assert rc == 2 and "expected 'mean' and 'std'" in err
    assert not (tmp_path / "a.plan").exists() and not (tmp_path / "m.plan").exists()


def test_run_profile_prints_backend_once_and_shares_add_up(capsys, model, tmp_path):
    plan = tmp_path / "m.plan"
    assert cli(capsys, model, "-o", plan, "-q")[0] == 0
    assert any("view" in s for s in json.loads((plan / "plan.json").read_text())["steps"])  # a layout-only step
    rc, out, err = cli(capsys, "run", plan, "--input", f"x={tmp_path / 'x.npy'}", "--profile")
    assert rc == 0, err
    assert out.count("backend:") == 1, out
    shares = [
        float(line.split()[-1].rstrip("%"))
        for line in out.splitlines()
        if line.endswith("%") and not line.startswith("total")
    ]
    assert len(shares) >= 3 and sum(shares) == pytest.approx(100.0, abs=0.5), out  # steps + overhead


def test_last_profile_prints_as_a_table(model, tmp_path, capsys):
    plan_dir = tmp_path / "m.plan"
    assert cli(capsys, model, "-o", plan_dir, "-q")[0] == 0
    plan = Plan.load(plan_dir, backend="auto")
    plan.run({"x": np.load(tmp_path / "x.npy")}, profile=True)
    text = str(plan.last_profile)
    assert text.splitlines()[0].split() == ["step", "device", "kind", "ms", "share"]
    assert "RunProfile(" not in text and text.count("backend:") == 1 and plan.backend_name in text


def test_run_names_the_unexpected_key_too(model, tmp_path, capsys):
    plan_dir = tmp_path / "m.plan"
    assert cli(capsys, model, "-o", plan_dir, "-q")[0] == 0
    with pytest.raises(PlanError, match=r"missing input 'x' .*got unknown input\(s\) \['wrong'\]"):
        Plan.load(plan_dir).run({"wrong": np.load(tmp_path / "x.npy")})


def test_check_emulate_int8_writes_nothing_into_the_plan(capsys, monkeypatch, model, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    plan = tmp_path / "m.plan"
    rc, _, err = cli(capsys, model, "-o", plan, "--calib", tmp_path / "calib.npy", "-q")
    assert rc == 0, err

    def snapshot():
        return {str(p.relative_to(plan)): p.read_bytes() if p.is_file() else None for p in plan.rglob("*")}

    before = snapshot()
    assert any(name.startswith("calib/") for name in before)
    rc, out, err = cli(capsys, "check", plan, "--against", model, "--backend", "emulate-int8", "--samples", "1")
    assert rc in (0, 1), err
    assert "emulate-int8" in out
    assert snapshot() == before, "rewrite check wrote into the plan it checked"
    assert list((tmp_path / "cache").rglob("*.onnx")), "the quantized models go to the user's cache"
