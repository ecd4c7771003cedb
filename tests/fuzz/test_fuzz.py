"""The fuzzer's fixed-seed CI run (long runs: tests/fuzz/run_fuzz.py), and proof that it can fail:
with confinement switched off it sees the reads outside, with a numeric bug planted it sees parity
failures, with a crash planted it sees crashes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from run_fuzz import fuzz_graphs, fuzz_plans

GRAPHS, MUTATIONS = 24, 250


def test_random_graphs_rewrite_and_check(tmp_path):
    summary = fuzz_graphs(seed=0, count=GRAPHS, workdir=tmp_path, modes=("shipped", "no-cost-rule"))
    assert summary["crashes"] == 0 and summary["parity_failures"] == 0, summary["failures"]
    assert summary["statuses"].get("ok", 0) >= GRAPHS - 2, summary["statuses"]
    assert {"Conv", "BatchNormalization", "Concat", "If", "Round", "MatMul"} <= set(summary["ops"]), summary["ops"]


def test_random_graphs_tiled(tmp_path):
    """Under strict tiling limits (a tensor sliced by two tiled stages once got the same slice name
    in both, and the plan was refused: issue 11)."""
    summary = fuzz_graphs(seed=0, count=12, workdir=tmp_path, modes=("tiled",))
    assert summary["crashes"] == 0 and summary["parity_failures"] == 0, summary["failures"]


def test_plan_mutations_never_read_outside_and_never_crash(tmp_path):
    summary = fuzz_plans(seed=0, count=MUTATIONS, workdir=tmp_path)
    assert summary["outside_reads"] == 0 and summary["tracebacks"] == 0, summary["failures"]
    # the mutations reach past the first checks: some plans load and run, most are refused
    assert summary["statuses"].get("accepted", 0) >= 10 and summary["statuses"].get("refused", 0) >= 100


def test_the_watch_sees_reads_outside_when_confinement_is_off(tmp_path, monkeypatch):
    from runtime import schema

    def unconfined(root, rel, where, real_root, dirs=None):
        path = root / rel
        if not path.is_file():
            raise schema.PlanError(f"{where}: {rel!r} not found")
        return path

    monkeypatch.setattr(schema, "confined", unconfined)
    monkeypatch.setattr(schema, "check_relative_path", lambda rel, where: rel)
    monkeypatch.setattr(schema.PlanSpec, "read_file", lambda self, path: Path(path).read_bytes())
    summary = fuzz_plans(seed=0, count=120, workdir=tmp_path)
    assert summary["outside_reads"] > 0
    reads = [path for f in summary["failures"] for path in f.get("outside", [])]
    assert any("canary" in path for path in reads)
    if summary["inotify"]:
        assert any(path.endswith("(inotify)") for path in reads)


def test_the_graph_fuzzer_sees_planted_bugs(tmp_path, monkeypatch):
    import rewriter.plan.writer as writer

    real = writer.write_segment_files

    def off_by_a_little(folder, steps):  # a numeric bug: every segment's first weight scaled
        from onnx import numpy_helper

        for step in steps:
            if step.model is not None and step.model.graph.initializer:
                init = step.model.graph.initializer[0]
                array = numpy_helper.to_array(init)
                if array.dtype == np.float32 and array.size > 1:
                    init.CopyFrom(numpy_helper.from_array(array * 1.01, init.name))
        real(folder, steps)

    monkeypatch.setattr(writer, "write_segment_files", off_by_a_little)
    assert fuzz_graphs(seed=0, count=8, workdir=tmp_path / "a")["parity_failures"] > 0
    monkeypatch.setattr(writer, "write_segment_files", real)

    import rewriter.partition.partitioner as partitioner

    def broken(*args, **kwargs):
        raise IndexError("planted")

    monkeypatch.setattr(partitioner, "merge_groups", broken)
    summary = fuzz_graphs(seed=0, count=3, workdir=tmp_path / "b")
    assert summary["crashes"] == 3 and "IndexError: planted" in summary["failures"][0]["detail"]


@pytest.mark.parametrize("index", range(3))
def test_generated_graphs_are_reproducible(index):
    from fuzz_graphs import GraphFuzzer

    a, b = GraphFuzzer(5).generate(index), GraphFuzzer(5).generate(index)
    assert a.model.SerializeToString() == b.model.SerializeToString()
