"""--retry-shrink: allocator failures re-tile the segment narrower via a (fake) tiler hook."""

import json

from rewriter.toolchain import dfc_driver
from rewriter.toolchain.dfc_driver import NO_TILER, compile_plan

from .hailo_sdk_standin import StandinSDK
from .plans import FakeRetile, wide_plan


def test_allocator_failure_retiles_and_compiles_pieces(tmp_path):
    out = wide_plan(tmp_path / "out", width=64)
    retile = FakeRetile()
    sdk = StandinSDK(allocator_max_width=32)
    summary = compile_plan(out, sdk=sdk, progress=None, retry_shrink=True, retile=retile)
    assert summary.ok
    assert retile.calls == [("hailo_1", 0.5)]
    first, *pieces = summary.results
    assert (first.status, first.failed_at, first.error_type) == ("retiled", "compile", "BackendAllocatorException")
    assert first.optimized and not first.compiled
    assert first.shrink == [{"attempt": 1, "step": "hailo_1", "factor": 0.5, "new_steps": ["hailo_1_p0", "hailo_1_p1"]}]
    assert [(p.segment, p.status, p.parent) for p in pieces] == [
        ("hailo_1_p0", "compiled", "hailo_1"),
        ("hailo_1_p1", "compiled", "hailo_1"),
    ]
    opt = sdk.calls_for("hailo_1_p0", "optimize")[0]
    assert opt["calib_shapes"] == {None: (1100, 1, 32, 4)}
    steps = {s["name"]: s for s in json.loads((out / "plan.json").read_text())["steps"]}
    assert "hailo_1" not in steps
    assert steps["hailo_1_p1"]["hef"] == "segments/hailo_1_p1.hef"
    assert steps["hailo_1_p1"]["compile_status"] == "compiled"
    saved = json.loads((out / "compile_summary.json").read_text())
    assert saved["segments"][0]["shrink"][0]["new_steps"] == ["hailo_1_p0", "hailo_1_p1"]


def test_shrinking_is_bounded_by_max_shrink(tmp_path):
    out = wide_plan(tmp_path / "out", width=64)
    retile = FakeRetile()
    summary = compile_plan(
        out, sdk=StandinSDK(allocator_max_width=4), progress=None, retry_shrink=True, retile=retile, max_shrink=2
    )
    assert not summary.ok
    # 64 -> 2 x 32 -> 4 x 16, then stop: 1 + 2 re-tilings, 7 segment rows
    assert len(retile.calls) == 3 and len(summary.results) == 7
    leaves = [r for r in summary.results if r.segment.count("_p") == 2]
    assert len(leaves) == 4 and all(r.status == "failed" for r in leaves)
    assert all(r.shrink[-1]["error"] == "max_shrink=2 reached" for r in leaves)


def test_no_tiler_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(dfc_driver, "default_retile", lambda: None)  # as long as rewriter.tiling lacks one
    out = wide_plan(tmp_path / "out", width=64)
    r = compile_plan(out, sdk=StandinSDK(allocator_max_width=32), progress=None, retry_shrink=True, retile=None).results
    # no tiler: the attempt says so instead of crashing
    assert len(r) == 1 and r[0].status == "failed" and r[0].shrink[0]["error"] == NO_TILER


def test_without_retry_shrink_nothing_is_retiled(tmp_path):
    out = wide_plan(tmp_path / "out", width=64)
    retile = FakeRetile()
    r = compile_plan(out, sdk=StandinSDK(allocator_max_width=32), progress=None, retile=retile).results
    assert retile.calls == [] and r[0].status == "failed" and r[0].shrink == []
