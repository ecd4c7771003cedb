"""Each compile in its own process: time-outs kill it, a crash stays in its segment, and
--retry-shrink works across processes (the re-tiled plan is re-read)."""

import json
import os
import time

import pytest

from rewriter.toolchain.dfc_driver import compile_plan

from .plans import FakeRetile, many_segments_plan, wide_plan


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def compile_pids(standin, net):
    return {c["pid"] for c in standin.calls().calls_for(net, "compile")}


def test_time_out_kills_the_compile_and_the_others_finish(tmp_path, standin):
    out = many_segments_plan(tmp_path / "out", 3)
    standin.configure(hang=["hailo_2"])
    t0 = time.monotonic()
    # 15 s: far above a stand-in compile even on a loaded machine, far below the stand-in's hang
    summary = compile_plan(out, sdk_module=standin.module, jobs=3, timeout=15, progress=None)
    assert time.monotonic() - t0 < 120  # not the stand-in's hour
    rows = {r.segment: r for r in summary.results}
    bad = rows["hailo_2"]
    assert (bad.status, bad.failed_at, bad.error_type) == ("failed", "compile", "CompileTimeout")
    assert bad.parsed and bad.optimized and not bad.compiled and "killed" in bad.error
    assert rows["hailo_1"].status == rows["hailo_3"].status == "compiled"
    (pid,) = compile_pids(standin, "hailo_2")
    assert not alive(pid)
    step = {s["name"]: s for s in json.loads((out / "plan.json").read_text())["steps"]}["hailo_2"]
    assert step["compile_status"] == "failed" and "CompileTimeout" in step["compile_error"]


def test_a_crashing_compile_fails_only_its_segment(tmp_path, standin):
    out = many_segments_plan(tmp_path / "out", 3)
    standin.configure(crash=["hailo_1"])
    summary = compile_plan(out, sdk_module=standin.module, jobs=2, progress=None)
    rows = {r.segment: r for r in summary.results}
    assert rows["hailo_1"].status == "failed" and rows["hailo_1"].failed_at == "compile"
    assert "exited with code -9" in rows["hailo_1"].error or "code 9" in rows["hailo_1"].error
    assert rows["hailo_2"].status == rows["hailo_3"].status == "compiled"
    assert "compile process exited" in (out / "logs/hailo_1.compile.log").read_text()


def test_dfc_output_goes_to_the_segment_log(tmp_path, standin):
    out = many_segments_plan(tmp_path / "out", 1)
    standin.configure(parse_fail={"hailo_1": ["h1_conv"]})
    r = compile_plan(out, sdk_module=standin.module, progress=None).results[0]
    assert (r.status, r.failed_at, r.error_type) == ("failed", "parse", "ParsingWithRecommendationException")
    log = (out / "logs/hailo_1.compile.log").read_text()
    assert "Traceback" in log and "h1_conv" in log


def test_retry_shrink_across_processes_compiles_the_re_read_pieces(tmp_path, standin):
    out = wide_plan(tmp_path / "out", width=64)
    standin.configure(allocator_max_width=32)
    retile = FakeRetile()
    summary = compile_plan(out, sdk_module=standin.module, jobs=2, progress=None, retry_shrink=True, retile=retile)
    assert summary.ok and retile.calls == [("hailo_1", 0.5)]
    assert [(r.segment, r.status) for r in summary.results] == [
        ("hailo_1", "retiled"),
        ("hailo_1_p0", "compiled"),
        ("hailo_1_p1", "compiled"),
    ]
    steps = {s["name"]: s for s in json.loads((out / "plan.json").read_text())["steps"]}
    assert steps["hailo_1_p0"]["hef"] == "segments/hailo_1_p0.hef" and (out / "segments/hailo_1_p0.hef").is_file()
    assert standin.calls().calls_for("hailo_1_p1", "optimize")[0]["calib_shapes"] == {"null": [1100, 1, 32, 4]}


def test_a_compile_time_out_counts_as_an_allocator_failure_for_retry_shrink(tmp_path, standin):
    out = wide_plan(tmp_path / "out", width=64)
    standin.configure(hang=["hailo_1"])  # the wide segment hangs in compile(); its pieces do not
    summary = compile_plan(
        out, sdk_module=standin.module, jobs=2, timeout=15, progress=None, retry_shrink=True, retile=FakeRetile()
    )
    first = summary.results[0]
    assert (first.status, first.error_type) == ("retiled", "CompileTimeout")
    assert [r.status for r in summary.results[1:]] == ["compiled", "compiled"]


def test_sdk_version_comes_from_package_metadata_or_a_probe_process(standin, monkeypatch):
    import importlib.metadata

    from rewriter.toolchain import sdk
    from rewriter.toolchain.isolate import probe_version

    assert probe_version(standin.module) == f"{standin.module} 3.33.0-standin"  # imported in a probe process
    standin.configure(version="9.9")
    assert probe_version(standin.module) == f"{standin.module} 9.9"
    monkeypatch.setitem(sdk.KNOWN_DISTRIBUTIONS, "numpy", ("no-such-dist", "numpy"))
    assert probe_version("numpy") == f"numpy {importlib.metadata.version('numpy')}"  # metadata, no probe
    with pytest.raises(sdk.ToolchainMissing, match="hailo_sdk_client .* is not installed"):
        probe_version("hailo_sdk_client")
