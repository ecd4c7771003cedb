"""Plan folder: plan.json contract, valid segments, determinism, atomic writes."""

from __future__ import annotations

import json

import onnx
import pytest
from fd_util import (
    ONNX_DATA,
    cli,
    conv_chain_model,
    cycle_trap_model,
    make_model,
    quiet_cli,
    read_plan,
    save,
    sha256,
    tree_bytes,
    vi,
    weight,
)
from onnx import helper

from rewriter.target import load_target


def _conv_gemm_model():
    nodes = [
        helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
        helper.make_node("Floor", ["p"], ["f"], name="floor"),
        helper.make_node("Flatten", ["f"], ["fl"], name="flatten"),
        helper.make_node("Gemm", ["fl", "G", "GB"], ["logits"], transB=1, name="gemm"),
    ]
    return make_model(
        nodes,
        [vi("x", [1, 3, 32, 32])],
        [vi("logits", [1, 10])],
        [weight("W", (16, 3, 3, 3)), weight("B", (16,)), weight("G", (10, 16 * 16 * 16)), weight("GB", (10,))],
    )


@pytest.fixture(scope="module")
def conv_plan(tmp_path_factory):
    import contextlib
    import io

    from rewriter.cli import main

    folder = tmp_path_factory.mktemp("plan")
    model = _conv_gemm_model()
    path = save(model, folder / "model.onnx")
    out = folder / "out.plan"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main([str(path), "--target", "hailo8", "-o", str(out)]) == 0
    return path, out, model


def _graph_outputs(path):
    model = onnx.load(str(path))
    return [(v.name, [d.dim_value for d in v.type.tensor_type.shape.dim]) for v in model.graph.output]


def test_plan_json_required_fields(conv_plan):
    _, out, model = conv_plan
    doc = read_plan(out)
    assert doc["format"] == "hailo-rewriter-plan" and doc["version"] == 3 and doc["target"] == "hailo8"
    assert doc["source"]["model"] == "model.onnx" and len(doc["source"]["sha256"]) == 64
    assert doc["inputs"] == [{"name": "x", "shape": [1, 3, 32, 32], "dtype": "float32"}]
    assert doc["outputs"] == [{"name": "logits", "shape": [1, 10], "dtype": "float32"}]
    assert doc["steps"]
    for step in doc["steps"]:
        assert {"name", "device", "kind", "model", "inputs", "outputs"} <= set(step)
        assert step["device"] in ("hailo", "host") and step["kind"] == "onnx"
        assert step["model"] == f"segments/{step['name']}.onnx"
        assert (out / step["model"]).is_file()
        assert doc["files"][step["model"]]["sha256"] == sha256(out / step["model"])
        for name, (_value, shape) in zip(step["outputs"], _graph_outputs(out / step["model"])):
            assert doc["tensors"][name] == {"shape": shape, "dtype": "float32"}, name
    assert [r["node"] for r in doc["placement"]] == ["conv", "relu", "pool", "floor", "flatten", "gemm"]


def test_plan_source_hash_is_the_model_file_hash(conv_plan):
    path, out, _ = conv_plan
    assert read_plan(out)["source"]["sha256"] == sha256(path)


def test_step_bindings_follow_segment_graph_io(conv_plan):
    _, out, _ = conv_plan
    doc = read_plan(out)
    for step in doc["steps"]:
        seg = onnx.load(str(out / step["model"]))
        assert [i.name for i in seg.graph.input] == step["inputs"]
        assert [o.name for o in seg.graph.output] == step["outputs"]
    produced = {t for s in doc["steps"] for t in s["outputs"]}
    assert {o["name"] for o in doc["outputs"]} <= produced


def test_segments_pass_full_check_with_static_shapes(conv_plan):
    _, out, _ = conv_plan
    for step in read_plan(out)["steps"]:
        seg = onnx.load(str(out / step["model"]))
        onnx.checker.check_model(seg, full_check=True)
        inferred = onnx.shape_inference.infer_shapes(seg, strict_mode=True)
        for value in list(inferred.graph.input) + list(inferred.graph.output) + list(inferred.graph.value_info):
            dims = value.type.tensor_type.shape.dim
            assert dims and all(d.HasField("dim_value") and d.dim_value > 0 for d in dims), value.name


def test_hailo_segments_hold_only_target_ops_and_ranks(conv_plan):
    _, out, _ = conv_plan
    target = load_target("hailo8")
    doc = read_plan(out)
    hailo = [s for s in doc["steps"] if s["device"] == "hailo"]
    assert hailo, "the conv part should be on hailo"
    for step in hailo:
        seg = onnx.shape_inference.infer_shapes(onnx.load(str(out / step["model"])), strict_mode=True)
        assert seg.opset_import[0].version == target.segment_opset
        inits = {t.name for t in seg.graph.initializer}
        ranks = {
            v.name: len(v.type.tensor_type.shape.dim)
            for v in list(seg.graph.input) + list(seg.graph.output) + list(seg.graph.value_info)
        }
        for node in seg.graph.node:
            assert node.op_type in target.ops, node.op_type
            allowed = target.ops[node.op_type].ranks
            for name in [n for n in node.input if n and n not in inits]:
                assert ranks[name] in allowed, (node.op_type, name, ranks[name])
            if node.op_type in ("Conv", "Relu", "MaxPool"):
                assert all(ranks[o] == 4 for o in node.output)


def test_plan_for_squeezenet_has_original_io_names(tmp_path, capsys):
    src = ONNX_DATA / "light" / "light_squeezenet.onnx"
    out = tmp_path / "sq.plan"
    rc, _, _ = cli(capsys, src, "-o", out, "-q")
    assert rc == 0
    doc = read_plan(out)
    original = onnx.load(str(src))
    inits = {t.name for t in original.graph.initializer}
    assert [i["name"] for i in doc["inputs"]] == [i.name for i in original.graph.input if i.name not in inits]
    assert [o["name"] for o in doc["outputs"]] == [o.name for o in original.graph.output]
    assert doc["outputs"][0]["shape"] == [1, 1000, 1, 1]


def test_plan_io_shapes_are_the_pinned_shapes(tmp_path, capsys):
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"]), helper.make_node("Relu", ["c"], ["y"])]
    model = make_model(nodes, [vi("x", ["N", 3, 16, 16])], [vi("y", ["N", 8, 14, 14])], [weight("W", (8, 3, 3, 3))])
    path = save(model, tmp_path / "dyn.onnx")
    out = tmp_path / "dyn.plan"
    assert cli(capsys, path, "-o", out, "-q")[0] == 0
    doc = read_plan(out)
    assert doc["inputs"][0]["shape"] == [1, 3, 16, 16]
    assert doc["outputs"][0]["shape"] == [1, 8, 14, 14]


# ---- determinism ---------------------------------------------------------------------------


@pytest.mark.parametrize("make", [cycle_trap_model, _conv_gemm_model])
def test_two_runs_are_byte_identical(tmp_path, capsys, make):
    path = save(make(), tmp_path / "m.onnx")
    assert cli(capsys, path, "-o", tmp_path / "a.plan", "-q")[0] == 0
    assert cli(capsys, path, "-o", tmp_path / "b.plan", "-q")[0] == 0
    a, b = tree_bytes(tmp_path / "a.plan"), tree_bytes(tmp_path / "b.plan")
    assert sorted(a) == sorted(b) and "plan.json" in a
    for rel in a:
        assert a[rel] == b[rel], rel


# ---- atomic output -------------------------------------------------------------------------


def test_failure_midway_leaves_nothing(tmp_path, capsys, monkeypatch):
    path = save(cycle_trap_model(), tmp_path / "m.onnx")
    before = sorted(p.name for p in tmp_path.iterdir())
    real = onnx.checker.check_model
    calls = []

    def flaky(model, *args, **kwargs):  # the writer checks each segment's serialized bytes
        calls.append(model)
        if len(calls) == 2:
            raise RuntimeError("disk on fire")
        return real(model, *args, **kwargs)

    monkeypatch.setattr(onnx.checker, "check_model", flaky)
    from rewriter.cli import main

    assert main([str(path), "-o", str(tmp_path / "out.plan"), "-q"]) == 3  # a bug, not the user's input
    err = capsys.readouterr().err
    assert err.startswith("rewrite: internal error") and "RuntimeError: disk on fire" in err and err.count("\n") == 1
    assert len(calls) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_failure_midway_keeps_previous_plan(tmp_path, capsys, monkeypatch):
    path = save(cycle_trap_model(), tmp_path / "m.onnx")
    out = tmp_path / "out.plan"
    assert cli(capsys, path, "-o", out, "-q")[0] == 0
    old = tree_bytes(out)

    def fail(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(onnx.checker, "check_model", fail)
    from rewriter.cli import main

    assert main([str(path), "-o", str(out), "-q"]) == 3
    assert tree_bytes(out) == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "out.plan"]


def test_existing_non_plan_folder_is_refused_and_untouched(tmp_path, capsys):
    path = save(conv_chain_model(), tmp_path / "m.onnx")
    out = tmp_path / "mine"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    rc, _, err = cli(capsys, path, "-o", out, "-q")
    assert rc != 0 and err.startswith("rewrite: error:") and "not a plan folder" in err
    assert [p.name for p in out.iterdir()] == ["precious.txt"]
    assert (out / "precious.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "mine"]


def test_existing_file_as_output_is_refused(tmp_path, capsys):
    path = save(conv_chain_model(), tmp_path / "m.onnx")
    out = tmp_path / "out.plan"
    out.write_text("a file")
    rc, _, err = cli(capsys, path, "-o", out, "-q")
    assert rc != 0 and "not a plan folder" in err
    assert out.read_text() == "a file"


def test_existing_plan_folder_is_replaced(tmp_path, capsys):
    path = save(conv_chain_model(), tmp_path / "m.onnx")
    out = tmp_path / "out.plan"
    assert cli(capsys, save(cycle_trap_model(), tmp_path / "other.onnx"), "-o", out, "-q")[0] == 0
    (out / "segments" / "stale.onnx").write_bytes(b"old")
    assert cli(capsys, path, "-o", out, "-q")[0] == 0
    assert not (out / "segments" / "stale.onnx").exists()
    assert read_plan(out)["format"] == "hailo-rewriter-plan"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "other.onnx", "out.plan"]


def test_input_model_never_modified(tmp_path, capsys):
    path = save(cycle_trap_model(), tmp_path / "m.onnx")
    digest, mtime = sha256(path), path.stat().st_mtime_ns
    assert cli(capsys, path, "-o", tmp_path / "out.plan", "-q")[0] == 0
    assert cli(capsys, "inspect", path, "-q")[0] == 0
    assert sha256(path) == digest and path.stat().st_mtime_ns == mtime


def test_default_output_is_model_plan_beside_the_model(tmp_path, capsys):
    path = save(conv_chain_model(), tmp_path / "net.onnx")
    rc, _, err = cli(capsys, path)
    assert rc == 0 and "plan written to" in err
    assert (tmp_path / "net.plan" / "plan.json").is_file()


def test_model_inside_output_plan_folder_is_never_deleted(tmp_path, capsys):
    out = tmp_path / "out.plan"
    out.mkdir()
    (out / "plan.json").write_text("{}")
    path = save(conv_chain_model(), out / "m.onnx")
    digest = sha256(path)
    rc, _, err = cli(capsys, path, "-o", out, "-q")
    assert path.is_file() and sha256(path) == digest
    assert rc != 0 and err.startswith("rewrite: error:")


# ---- plan.json as text ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "doc",
    [
        {},
        {"a": [], "b": {}, "c": None, "d": 'x\u00e9\n"', "e": 1.5e-7, "f": [1, [2, {"g": [3]}]]},
        {"steps": [{"name": "s", "inputs": ["x"], "tiles": {"count": 3}}], "files": {"a.onnx": {"bytes": 1}}},
    ],
)
def test_readable_json_reads_back_as_the_document(doc):
    from rewriter.plan.atomic import readable_json

    text = readable_json(doc)
    assert json.loads(text) == doc
    for line in text.splitlines()[1:-1]:  # every line below the top is a field or one whole item
        assert line.startswith("  ")


def test_plan_json_has_one_step_per_line(tmp_path):
    out = tmp_path / "out.plan"
    assert quiet_cli(str(save(conv_chain_model(), tmp_path / "m.onnx")), "-o", str(out)) == 0
    lines = (out / "plan.json").read_text().splitlines()
    doc = json.loads("\n".join(lines))
    start = lines.index('  "steps": [') + 1
    block = lines[start : start + len(doc["steps"])]
    assert [json.loads(ln.strip().rstrip(",")) for ln in block] == doc["steps"]
    assert lines[start + len(doc["steps"])].strip().startswith("]")


def test_a_short_segment_write_fails_the_run_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    """The validation takes the writer's hashes of the bytes it wrote instead of hashing the files
    again: a file that does not hold as many bytes as were written fails the run as our bug, and
    nothing is left behind."""
    from pathlib import Path

    path = save(cycle_trap_model(), tmp_path / "m.onnx")
    before = sorted(p.name for p in tmp_path.iterdir())
    real = Path.write_bytes

    def lossy(self, data):
        return real(self, data[:-1] if self.suffix == ".onnx" else data)  # a short write, unreported

    monkeypatch.setattr(Path, "write_bytes", lossy)
    from rewriter.cli import main

    assert main([str(path), "-o", str(tmp_path / "out.plan"), "-q"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("rewrite: internal error") and "were written" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_validation_compares_written_records_and_reads_every_other_file(conv_plan, monkeypatch, tmp_path):
    """validate(written=...) takes the writer's records of the bytes it wrote instead of reading the
    files again; a record that is not plan.json's, or a file whose size on disk is not the
    record's, is refused like a modified file; files without a record are read and hashed as
    Plan.load does."""
    from rewriter.plan.writer import signature
    from runtime import schema
    from runtime.errors import PlanError
    from runtime.validation import validate

    _, out, _ = conv_plan
    doc = json.loads((out / "plan.json").read_text())
    records = {rel: {"sha256": e["sha256"], "bytes": e["bytes"]} for rel, e in doc["files"].items()}
    known = {rel: signature(onnx.load(str(out / rel))) for rel in records}
    read = []
    real = schema.PlanSpec.read_file
    monkeypatch.setattr(schema.PlanSpec, "read_file", lambda self, p: read.append(p.name) or real(self, p))
    validate(out, known, records)
    assert read == []
    validate(out, known, {})
    assert sorted(read) == sorted(rel.split("/")[-1] for rel in records)
    read.clear()
    some = dict(list(records.items())[1:])  # records for all files but one: only that one is read
    validate(out, known, some)
    assert read == [rel.split("/")[-1] for rel in records if rel not in some]
    first = sorted(records)[0]
    stale = dict(records, **{first: {"sha256": "0" * 64, "bytes": records[first]["bytes"]}})
    with pytest.raises(PlanError, match=f"{first} does not match its sha256"):
        validate(out, known, stale)
    short = dict(records, **{first: {"sha256": records[first]["sha256"], "bytes": 1}})
    with pytest.raises(PlanError, match="does not match its sha256"):
        validate(out, known, short)
    import shutil

    copy = shutil.copytree(out, tmp_path / "copy.plan")
    with open(copy / first, "ab") as fh:  # the file on disk grew after its record was taken
        fh.write(b"\0")
    with pytest.raises(PlanError, match=f"{first} does not match its sha256"):
        validate(copy, known, records)
