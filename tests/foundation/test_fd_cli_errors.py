"""The CLI's error contract, case by case: a user's mistake is one line and exit 2, a failed
`rewrite check` exit 1, a bug one line saying it is an internal error with exit 3 (the traceback
with --verbose)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fd_util import cli, conv_chain_model, make_model, quiet_cli, read_plan, save, vi
from onnx import helper


def assert_one_line(rc, err, *fragments):
    assert rc == 2, err
    assert err.startswith("rewrite: error:") and err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


@pytest.fixture(scope="module")
def tiled(tmp_path_factory):
    """A tiled plan (the chain tiled to width 16: batched tiled steps), its model and an input."""
    folder = tmp_path_factory.mktemp("cli_errors")
    model = save(conv_chain_model(), folder / "m.onnx")
    out = folder / "m.plan"
    assert quiet_cli(model, "-o", out, "--tile-width", "16", "-q") == 0
    x = np.random.default_rng(0).standard_normal((1, 8, 32, 32)).astype(np.float32)
    np.save(folder / "x.npy", x)
    return model, out, folder, x


def edited_copy(tmp_path, out, fn):
    import shutil

    copy = tmp_path / "edited.plan"
    shutil.copytree(out, copy)
    doc = read_plan(copy)
    fn(doc)
    (copy / "plan.json").write_text(json.dumps(doc))
    return copy


# ---- internal errors ------------------------------------------------------------------------------------
def test_a_bug_is_an_internal_error_with_exit_3(tmp_path, capsys, monkeypatch):
    import rewriter.partition.partitioner as partitioner

    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(partitioner, "place_nodes", broken)
    path = save(conv_chain_model(), tmp_path / "m.onnx")
    rc, _, err = cli(capsys, path, "-o", tmp_path / "o", "-q")
    assert rc == 3 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("rewrite: internal error") and "KeyError: 'a bug'" in err and "--verbose" in err
    rc, _, err = cli(capsys, path, "-o", tmp_path / "o", "-q", "--verbose")
    assert rc == 3 and "Traceback" in err and "in broken" in err
    assert not (tmp_path / "o").exists()


def test_a_recursion_error_deep_inside_is_an_internal_error(tmp_path, capsys, monkeypatch):
    import rewriter.pipeline as pipeline

    def deep(*args, **kwargs):
        return deep()

    monkeypatch.setattr(pipeline, "load_graph", deep)
    rc, _, err = cli(capsys, save(conv_chain_model(), tmp_path / "m.onnx"), "-o", tmp_path / "o", "-q")
    assert rc == 3 and "RecursionError" in err and err.count("\n") == 1


# ---- rewrite run -----------------------------------------------------------------------------------------
def test_run_reads_npz_inputs(tiled, capsys):
    model, out, folder, x = tiled
    np.savez(folder / "named.npz", x=x)
    np.savez(folder / "single.npz", anything=x)
    want = cli(capsys, "run", out, "--input", f"x={folder / 'x.npy'}")[1]
    for arg in (f"x={folder / 'named.npz'}", str(folder / "named.npz"), str(folder / "single.npz")):
        rc, text, err = cli(capsys, "run", out, "--input", arg)
        assert rc == 0 and text == want, err


def test_run_input_errors_are_one_line(tiled, capsys):
    model, out, folder, x = tiled
    np.savez(folder / "two.npz", a=x, b=x)
    (folder / "junk.npy").write_text("not numpy\n")
    (folder / "trunc.npz").write_bytes((folder / "two.npz").read_bytes()[:100])
    cases = {"two.npz": "none named 'x'", "junk.npy": "not an .npy or .npz file", "trunc.npz": "cannot read"}
    for name, fragment in cases.items():
        rc, _, err = cli(capsys, "run", out, "--input", f"x={folder / name}")
        assert_one_line(rc, err, fragment)


def test_save_onto_an_existing_file_is_one_line(tiled, capsys, tmp_path):
    model, out, folder, x = tiled
    target = tmp_path / "results"
    target.write_text("keep")
    rc, _, err = cli(capsys, "run", out, "--input", f"x={folder / 'x.npy'}", "--save", target)
    assert_one_line(rc, err, "--save", "not a folder")
    assert target.read_text() == "keep"
    rc, _, err = cli(capsys, "run", out, "--input", f"x={folder / 'x.npy'}", "--save", tmp_path / "new" / "dir")
    assert rc == 0, err
    assert np.load(tmp_path / "new" / "dir" / "y.npy").shape == (1, 8, 32, 32)


# ---- rewrite check ----------------------------------------------------------------------------------------
def test_check_against_another_model_is_one_line(tiled, capsys, tmp_path):
    model, out, folder, x = tiled
    other_names = save(
        make_model([helper.make_node("Relu", ["a"], ["y"])], [vi("a", [1, 8, 32, 32])], [vi("y", [1, 8, 32, 32])]),
        tmp_path / "names.onnx",
    )
    other_shape = save(conv_chain_model(size=16), tmp_path / "shape.onnx")
    other_output = save(
        make_model([helper.make_node("Relu", ["x"], ["z"])], [vi("x", [1, 8, 32, 32])], [vi("z", [1, 8, 32, 32])]),
        tmp_path / "output.onnx",
    )
    for path, fragment in (
        (other_names, "its inputs are ['a']"),
        (other_shape, "its input 'x' has shape"),
        (other_output, "its outputs are ['z']"),
    ):
        rc, _, err = cli(capsys, "check", out, "--against", path)
        assert_one_line(rc, err, f"--against {path} does not match the plan", fragment)
    rc, text, err = cli(capsys, "check", out, "--against", model)
    assert rc == 0, text + err


def test_failed_parity_is_exit_1(tiled, capsys, tmp_path):
    """The same interface with other weights: a real parity failure, exit 1 (not a user error)."""
    model, out, folder, x = tiled
    other = save(conv_chain_model(), tmp_path / "other.onnx")
    import onnx

    m = onnx.load(str(other))
    m.graph.initializer[0].raw_data = (np.frombuffer(m.graph.initializer[0].raw_data, np.float32) * 2).tobytes()
    onnx.save(m, str(other))
    rc, text, _ = cli(capsys, "check", out, "--against", other)
    assert rc == 1 and "FAIL" in text


# ---- tampered plan.json through the CLI ----------------------------------------------------------------
def first(doc, kind):
    return next(s for s in doc["steps"] if s["kind"] == kind)


def tiles(doc):
    """The `tiles` object of the plan's first tiled step."""
    return next(s["tiles"] for s in doc["steps"] if "tiles" in s)


TAMPERED = {
    "tile_start_1e11": (lambda d: tiles(d)["inputs"][0].update(start=100_000_000_000), "'start' must be an integer"),
    "tile_start_float": (lambda d: tiles(d)["inputs"][0].update(start=1e11), "'start' must be an integer"),
    "view_not_object": (lambda d: first(d, "onnx").update(view="reshape"), "'view' must be an object"),
    "view_reshape_text": (lambda d: first(d, "onnx").update(view={"reshape": [1, "8", 32]}), "view.reshape"),
    "view_transpose_text": (
        lambda d: first(d, "onnx").update(view={"reshape": [1, 8], "transpose": "10"}),
        "view.transpose",
    ),
    "count_text": (lambda d: tiles(d).update(count="3"), "'count' must be an integer"),
    "inputs_not_list": (lambda d: first(d, "onnx").update(inputs="x"), "'inputs' must be a list"),
    "shape_bool": (lambda d: d["inputs"][0].update(shape=[True, 8, 32, 32]), "'shape' must be a list"),
    "model_absolute": (lambda d: first(d, "onnx").update(model="/etc/passwd"), "must be relative"),
    "model_dotdot": (lambda d: first(d, "onnx").update(model="../m.onnx"), "no '..'"),
    "version_1": (lambda d: d.update(version=1), "version 1 is not supported"),
}


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_tampered_plan_json_is_one_line_for_run_and_check(tiled, capsys, tmp_path, case):
    model, out, folder, x = tiled
    fn, fragment = TAMPERED[case]
    copy = edited_copy(tmp_path, out, fn)
    rc, _, err = cli(capsys, "run", copy, "--input", f"x={folder / 'x.npy'}")
    assert_one_line(rc, err, fragment)
    rc, _, err = cli(capsys, "check", copy, "--against", model)
    assert_one_line(rc, err, fragment)


def test_deeply_nested_plan_json_is_one_line(tiled, capsys, tmp_path):
    bad = tmp_path / "nested.plan"
    bad.mkdir()
    (bad / "plan.json").write_text("[" * 200_000 + "]" * 200_000)
    rc, _, err = cli(capsys, "run", bad, "--input", "x=x.npy")
    assert_one_line(rc, err, "nested too deeply")


# ---- --calib --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "windows, fragment",
    [
        (np.zeros((0, 8, 32, 32), np.float32), "0 windows"),
        (np.full((4, 8, 32, 32), np.nan, np.float32), "NaN"),
        (np.full((4, 8, 32, 32), np.inf, np.float32), "infinite"),
    ],
)
def test_bad_calibration_is_one_line_before_any_work(tmp_path, capsys, windows, fragment):
    path = save(conv_chain_model(), tmp_path / "m.onnx")
    np.save(tmp_path / "calib.npy", windows)
    rc, _, err = cli(capsys, path, "-o", tmp_path / "o", "--calib", tmp_path / "calib.npy", "-q")
    assert_one_line(rc, err, "--calib", fragment)
    assert not (tmp_path / "o").exists()


# ---- hostile rule files ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content, fragment",
    [
        ("# r\u00e9gle\n".encode("latin-1"), "not UTF-8"),
        (
            (
                "rule deep:\n    match:\n        y = Relu(x)\n    where:\n        " + "not " * 20000 + "true\n"
                "    rewrite:\n        y = Relu(x)\n"
            ).encode(),
            "nested more than",
        ),
    ],
)
def test_hostile_rule_files_are_one_line(tmp_path, capsys, content, fragment):
    rules = tmp_path / "hostile.rw"
    rules.write_bytes(content)
    path = save(conv_chain_model(), tmp_path / "m.onnx")
    for args in (
        [path, "-o", tmp_path / "o", "--rules", rules, "-q"],
        ["rules", "list", rules],
        ["rules", "verify", rules],
    ):
        rc, _, err = cli(capsys, *args)
        assert_one_line(rc, err, "hostile.rw:", fragment)
    assert not (tmp_path / "o").exists()
