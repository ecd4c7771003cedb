"""compile_plan against the recording DFC stand-in (never the real DFC)."""

import hashlib
import json

import numpy as np
import pytest

from rewriter.toolchain.dfc_driver import compile_plan
from rewriter.toolchain.sdk import ToolchainMissing, is_allocator_failure
from runtime.errors import PlanError

from .hailo_sdk_standin import BackendAllocatorException, StandinSDK
from .plans import rehash, standard_plan


@pytest.fixture
def out(tmp_path):
    return standard_plan(tmp_path / "out")


def _steps(out):
    return {s["name"]: s for s in json.loads((out / "plan.json").read_text())["steps"]}


def test_calls_run_in_order_once_per_distinct_segment(out):
    sdk = StandinSDK()
    summary = compile_plan(out, sdk=sdk, progress=None)
    assert summary.ok
    assert [r.segment for r in summary.results] == ["hailo_1", "hailo_2", "hailo_3"]
    for net in ("hailo_1", "hailo_2", "hailo_3"):
        assert sdk.methods_for(net) == ["translate_onnx_model", "load_model_script", "optimize", "compile", "save_har"]
    # hailo_2 is shared by two steps: one translate only
    assert len([c for c in sdk.calls if c["method"] == "ClientRunner"]) == 3


def test_translate_gets_onnx_shapes_and_node_names(out):
    sdk = StandinSDK()
    compile_plan(out, sdk=sdk, progress=None)
    t1 = sdk.calls_for("hailo_1", "translate_onnx_model")[0]
    assert t1["net_input_shapes"] == {"x": [1, 4, 1, 16]}
    assert t1["start_node_names"] == ["h1_conv"] and t1["end_node_names"] == ["h1_relu"]
    assert t1["hw_arch"] == "hailo8" and t1["model_path"].endswith("/hailo_1.onnx")
    t3 = sdk.calls_for("hailo_3", "translate_onnx_model")[0]
    assert t3["start_node_names"] == ["add", "sig"]
    assert t3["end_node_names"] == ["sig", "relu"]  # graph output order z, y


def test_calibration_is_nhwc_float32_and_shared_tiles_are_merged(out):
    sdk = StandinSDK()
    compile_plan(out, sdk=sdk, progress=None)
    o1 = sdk.calls_for("hailo_1", "optimize")[0]
    assert o1["calib_shapes"] == {None: (1100, 1, 16, 4)} and o1["calib_dtypes"] == {None: "float32"}
    o2 = sdk.calls_for("hailo_2", "optimize")[0]
    assert o2["calib_shapes"] == {None: (1100, 1, 8, 4)}  # 600 + 500 windows of both tiles
    o3 = sdk.calls_for("hailo_3", "optimize")[0]
    assert o3["calib_keys"] == ["hailo_3/input_layer1", "hailo_3/input_layer2"]
    assert o3["calib_shapes"]["hailo_3/input_layer1"] == (64, 1, 8, 4)


def test_model_script_is_loaded(out):
    sdk = StandinSDK()
    compile_plan(
        out,
        sdk=sdk,
        progress=None,
        model_script_extra="context_switch_param(mode=enabled)\n",
        compile_settings={"optimization_level": 4},
    )
    script = sdk.calls_for("hailo_1", "load_model_script")[0]["script"]
    assert "model_optimization_flavor(optimization_level=4, compression_level=0, batch_size=8)" in script
    assert script.rstrip().endswith("context_switch_param(mode=enabled)")
    assert (out / "logs/hailo_1.alls").read_text() == script


def test_hef_written_and_recorded_for_every_step_of_the_model(out):
    compile_plan(out, sdk=StandinSDK(), progress=None)
    steps = _steps(out)
    data = (out / "segments/hailo_2.hef").read_bytes()
    for name in ("hailo_2a", "hailo_2b"):
        assert steps[name]["hef"] == "segments/hailo_2.hef"
        assert steps[name]["hef_sha256"] == hashlib.sha256(data).hexdigest()
        assert steps[name]["compile_status"] == "compiled"
    assert "hef" not in steps["host_0"]
    assert (out / "segments/hailo_1.har").exists()
    assert not list(out.glob("*.tmp")) and not list((out / "segments").glob("*.tmp"))


def test_progress_lines_name_segment_stage_and_calib_count(out):
    lines = []
    compile_plan(out, sdk=StandinSDK(), progress=lines.append)
    assert "[1/3] hailo_1: optimize (1100 calib windows)..." in lines
    assert any(l.startswith("[3/3] hailo_3: compile") for l in lines)
    assert lines[-1].splitlines()[0].split() == [
        "segment",
        "status",
        "parsed",
        "optimized",
        "compiled",
        "seconds",
        "error",
    ]


def test_parse_failure_is_isolated_to_its_segment(out):
    sdk = StandinSDK(parse_fail={"hailo_2": ["h2_conv"]})
    summary = compile_plan(out, sdk=sdk, progress=None)
    assert not summary.ok
    rows = {r.segment: r for r in summary.results}
    bad = rows["hailo_2"]
    assert (bad.status, bad.failed_at, bad.stage) == ("failed", "parse", "none")
    assert bad.error_type == "ParsingWithRecommendationException" and "h2_conv" in bad.error
    assert rows["hailo_1"].status == rows["hailo_3"].status == "compiled"
    log = (out / "logs/hailo_2.compile.log").read_text()
    assert "Traceback" in log and "ParsingWithRecommendationException" in log
    saved = json.loads((out / "compile_summary.json").read_text())
    assert saved["ok"] is False
    row = next(s for s in saved["segments"] if s["segment"] == "hailo_2")
    assert row["parsed"] is False and row["error_type"] == "ParsingWithRecommendationException"
    assert row["log"] == "logs/hailo_2.compile.log"
    steps = _steps(out)
    assert steps["hailo_2a"]["compile_status"] == "failed" and "hef_sha256" not in steps["hailo_2a"]
    assert steps["hailo_1"]["compile_status"] == "compiled"
    row = next(l for l in summary.table().splitlines() if l.startswith("hailo_2"))
    assert row.split()[:5] == ["hailo_2", "failed", "-", "-", "-"]
    assert row.split()[6] == "ParsingWithRecommendationException:"


def test_missing_calib_fails_with_hint_and_random_calib_warns(out):
    plan = json.loads((out / "plan.json").read_text())
    del plan["steps"][1]["calib"]
    (out / "plan.json").write_text(json.dumps(plan))
    r = compile_plan(out, sdk=StandinSDK(), progress=None).results[0]
    assert (r.status, r.failed_at, r.error_type) == ("failed", "prepare", "CalibError")
    assert "--calib" in r.error
    lines = []
    sdk = StandinSDK()
    r = compile_plan(out, sdk=sdk, progress=lines.append, use_random_calib=True).results[0]
    assert r.status == "compiled" and any("RANDOM" in w for w in r.warnings)
    assert any("WARNING RANDOM" in l for l in lines)
    assert sdk.calls_for("hailo_1", "optimize")[0]["calib_shapes"] == {None: (1024, 1, 16, 4)}


def test_calib_width_mismatch_is_caught_before_the_dfc(out):
    np.save(out / "calib/hailo_1.npy", np.zeros((8, 1, 15, 4), np.float32))
    rehash(out)
    sdk = StandinSDK()
    r = compile_plan(out, sdk=sdk, progress=None).results[0]
    assert r.failed_at == "prepare" and "width must match" in r.error
    assert sdk.calls_for("hailo_1") == []


def test_a_segment_swapped_after_rewrite_is_refused(out):
    """The DFC compiles what the rewriter wrote: a segment or calibration file whose bytes no longer
    match plan.json's `files` is a one-line plan error before anything compiles."""
    import shutil

    shutil.copy(out / "segments/hailo_1.onnx", out / "segments/hailo_3.onnx")
    with pytest.raises(PlanError, match="segments/hailo_3.onnx does not match its sha256"):
        compile_plan(out, sdk=StandinSDK(), progress=None)


def test_jobs_keep_plan_order(out):
    summary = compile_plan(out, sdk=StandinSDK(), progress=None, jobs=3)
    assert summary.ok and [r.segment for r in summary.results] == ["hailo_1", "hailo_2", "hailo_3"]


def test_missing_sdk_raises_toolchain_missing(out, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "hailo_sdk_client", None)  # import now fails
    with pytest.raises(ToolchainMissing, match="hailo_sdk_client .* is not installed.*--emit-script"):
        compile_plan(out, progress=None)


@pytest.mark.parametrize(
    "exc, want",
    [
        (BackendAllocatorException("x"), True),
        (RuntimeError("Compilation failed: Agent infeasible"), True),
        (RuntimeError("Mapping Failed (Timeout)"), True),
        (RuntimeError("allocation mapping timeout after 25m"), True),
        (RuntimeError("Timeout reading calibration"), False),
        (ValueError("Unsupported dimensions"), False),
    ],
)
def test_allocator_failure_classification(exc, want):
    assert is_allocator_failure(exc) is want
