"""`compile_plan` with the HEF cache and real compile processes (SDK stand-in as a module)."""

import json
import shutil

import pytest

from rewriter.toolchain.dfc_driver import compile_plan
from rewriter.toolchain.hef_cache import HefCache

from .plans import conv_segment, many_segments_plan, rehash


@pytest.fixture
def out(tmp_path):
    return many_segments_plan(tmp_path / "out", 4)


def run(out, standin, cache, **kw):
    lines = []
    summary = compile_plan(out, sdk_module=standin.module, cache=cache, jobs=2, progress=lines.append, **kw)
    return summary, lines


def statuses(summary):
    return {r.segment: r.status for r in summary.results}


def steps(out):
    return {s["name"]: s for s in json.loads((out / "plan.json").read_text())["steps"]}


def test_second_run_compiles_nothing_and_a_fresh_plan_copy_is_served_from_the_cache(tmp_path, out, standin):
    cache = HefCache(tmp_path / "cache")
    pristine = tmp_path / "pristine"
    shutil.copytree(out, pristine)
    first, _ = run(out, standin, cache)
    assert first.ok and set(statuses(first).values()) == {"compiled"}
    assert sorted(standin.compiled_nets()) == ["hailo_1", "hailo_2", "hailo_3", "hailo_4"]
    hefs = {r.segment: (out / r.hef).read_bytes() for r in first.results}
    assert len(cache.entries()) == 4

    standin.reset_log()
    again, _ = run(out, standin, cache)  # same plan: its HEFs are already there
    assert set(statuses(again).values()) == {"done"} and standin.compiled_nets() == []

    copy, lines = run(pristine, standin, cache)  # same inputs, no HEFs yet: all from the cache
    assert set(statuses(copy).values()) == {"cached"} and standin.compiled_nets() == []
    assert standin.calls().calls == []  # the SDK was not even asked to parse
    for r in copy.results:
        assert (pristine / r.hef).read_bytes() == hefs[r.segment]
        step = steps(pristine)[r.segment]
        assert step["compile_status"] == "compiled" and step["compile_key"] == r.compile_key
    assert any(line.startswith("[2/4] hailo_2: cached -> segments/hailo_2.hef") for line in lines)


def test_one_changed_segment_compiles_exactly_once(tmp_path, out, standin):
    cache = HefCache(tmp_path / "cache")
    run(out, standin, cache)
    standin.reset_log()
    conv_segment(out / "segments/hailo_3.onnx", width=8, prefix="h3_", weight=0.5)  # new weights
    rehash(out)
    summary, _ = run(out, standin, cache)
    assert standin.compiled_nets() == ["hailo_3"]
    assert statuses(summary) == {"hailo_1": "done", "hailo_2": "done", "hailo_3": "compiled", "hailo_4": "done"}
    assert len(cache.entries()) == 5


def test_changed_calibration_or_script_recompiles(tmp_path, out, standin):
    cache = HefCache(tmp_path / "cache")
    run(out, standin, cache)
    standin.reset_log()
    import numpy as np

    np.save(out / "calib/hailo_2.npy", np.load(out / "calib/hailo_2.npy") * 2)
    rehash(out)
    run(out, standin, cache)
    assert standin.compiled_nets() == ["hailo_2"]
    standin.reset_log()
    summary, _ = run(out, standin, cache, model_script_extra="context_switch_param(mode=enabled)\n")
    assert sorted(standin.compiled_nets()) == ["hailo_1", "hailo_2", "hailo_3", "hailo_4"] and summary.ok


def test_corrupt_cache_entry_is_recompiled(tmp_path, out, standin):
    cache = HefCache(tmp_path / "cache")
    pristine = tmp_path / "pristine"
    shutil.copytree(out, pristine)
    first, _ = run(out, standin, cache)
    key = next(r.compile_key for r in first.results if r.segment == "hailo_4")
    entry = next(e for e in cache.entries() if e.key == key)
    (entry.path / "hef").write_bytes(b"bit rot")
    standin.reset_log()
    warnings = []
    summary, _ = run(pristine, standin, HefCache(tmp_path / "cache", warn=warnings.append))
    assert standin.compiled_nets() == ["hailo_4"]
    assert statuses(summary)["hailo_4"] == "compiled" and statuses(summary)["hailo_1"] == "cached"
    assert len(warnings) == 1 and "corrupt" in warnings[0]
    assert (pristine / "segments/hailo_4.hef").read_bytes() == (out / "segments/hailo_4.hef").read_bytes()
    assert cache.get(key) == (out / "segments/hailo_4.hef").read_bytes()  # refilled


def test_edited_hef_in_the_plan_is_not_taken_as_done(tmp_path, out, standin):
    run(out, standin, None)
    (out / "segments/hailo_1.hef").write_bytes(b"edited")
    standin.reset_log()
    summary, _ = run(out, standin, None)
    assert standin.compiled_nets() == ["hailo_1"] and statuses(summary)["hailo_1"] == "compiled"


def test_failures_are_not_cached_and_a_new_dfc_version_recompiles(tmp_path, out, standin):
    cache = HefCache(tmp_path / "cache")
    standin.configure(parse_fail={"hailo_2": ["h2_conv"]})
    first, _ = run(out, standin, cache)
    assert statuses(first)["hailo_2"] == "failed" and len(cache.entries()) == 3
    assert "compile_key" not in steps(out)["hailo_2"]
    standin.configure()
    standin.reset_log()
    run(out, standin, cache)
    assert standin.compiled_nets() == ["hailo_2"]
    standin.configure(version="3.34.0-standin")
    standin.reset_log()
    run(out, standin, cache)
    assert len(standin.compiled_nets()) == 4
    assert {e.meta["dfc_version"] for e in cache.entries()} == {
        f"{standin.module} 3.33.0-standin",
        f"{standin.module} 3.34.0-standin",
    }
