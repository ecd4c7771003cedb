"""--emit-script: the generated compile.sh is valid bash and, with a fake `hailo` on PATH, runs end to end."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rewriter.toolchain.emit_script import emit_compile_script

from .plans import standard_plan

FAKE = Path(__file__).with_name("fake_hailo_cli.py")


@pytest.fixture
def out(tmp_path):
    out = standard_plan(tmp_path / "out")
    emit_compile_script(out, "hailo8", {"calibset_size": 1024}, "context_switch_param(mode=enabled)\n")
    return out


@pytest.fixture
def shim(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    hailo = bindir / "hailo"
    hailo.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE} "$@"\n')
    hailo.chmod(0o755)
    return bindir


def run_script(script: Path, shim: Path, log: Path, fail=""):
    env = dict(os.environ, PATH=f"{shim}:{os.environ['PATH']}", HAILO_SHIM_LOG=str(log), HAILO_SHIM_FAIL=fail)
    env.pop("PLAN_DIR", None)
    return subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, cwd="/")


def calls(log: Path):
    return [json.loads(l)["argv"] for l in log.read_text().splitlines()]


def test_files_are_written_and_script_is_valid_bash(out):
    cdir = out / "compile"
    assert sorted(p.name for p in cdir.iterdir()) == [
        "README.txt",
        "compile.sh",
        "hailo_1.alls",
        "hailo_2.alls",
        "hailo_2.calib.npy",
        "hailo_3.alls",
        "hailo_3.calib.npz",
        "planfmt",
        "record_hefs.py",
    ]
    # the recorder updates plan.json with the runtime's own schema module, copied byte for byte
    import runtime.schema

    assert (cdir / "planfmt" / "schema.py").read_bytes() == Path(runtime.schema.__file__).read_bytes()
    assert os.access(cdir / "compile.sh", os.X_OK)
    subprocess.run(["bash", "-n", str(cdir / "compile.sh")], check=True)
    text = (cdir / "compile.sh").read_text()
    assert "set -euo pipefail" in text and 'dirname "$0"' in text and "/tmp" in text
    assert "context_switch_param(mode=enabled)" in (cdir / "hailo_1.alls").read_text()
    # tiles sharing hailo_2 are calibrated on both tiles' windows
    assert np.load(cdir / "hailo_2.calib.npy").shape == (1100, 1, 8, 4)
    assert sorted(np.load(cdir / "hailo_3.calib.npz").files) == ["hailo_3/input_layer1", "hailo_3/input_layer2"]


def test_runs_end_to_end_from_a_copy_with_fake_cli(out, shim, tmp_path):
    copy = tmp_path / "tmpcopy" / "plan"  # users copy the plan to /tmp in the container
    shutil.copytree(out, copy)
    log = tmp_path / "hailo.log"
    r = run_script(copy / "compile" / "compile.sh", shim, log)
    assert r.returncode == 0, r.stderr
    assert "3 compiled" in r.stdout and "0 failed" in r.stdout
    for net in ("hailo_1", "hailo_2", "hailo_3"):
        assert (copy / f"segments/{net}.hef").read_bytes() == f"HEF {net}".encode()
        assert not (out / f"segments/{net}.hef").exists()  # the original was not touched
    steps = {s["name"]: s for s in json.loads((copy / "plan.json").read_text())["steps"]}
    digest = hashlib.sha256(b"HEF hailo_2").hexdigest()
    assert steps["hailo_2b"]["hef_sha256"] == digest and steps["hailo_2b"]["compile_status"] == "compiled"
    assert "compile_status" not in steps["host_0"]

    argv = calls(log)
    assert len(argv) == 9 and [a[0] for a in argv] == ["parser", "optimize", "compiler"] * 3
    p1, o1, c1 = argv[:3]
    assert p1 == [
        "parser",
        "onnx",
        str(copy / "segments/hailo_1.onnx"),
        "--hw-arch",
        "hailo8",
        "--start-node-names",
        "h1_conv",
        "--end-node-names",
        "h1_relu",
        "-y",
    ]
    assert o1 == [
        "optimize",
        "hailo_1.har",
        "--hw-arch",
        "hailo8",
        "--calib-set-path",
        str(copy / "calib/hailo_1.npy"),
        "--model-script",
        str(copy / "compile/hailo_1.alls"),
    ]
    assert c1 == ["compiler", "hailo_1_optimized.har", "--hw-arch", "hailo8"]
    p3, o3 = argv[6:8]
    assert p3[p3.index("--start-node-names") + 1 : p3.index("--end-node-names")] == ["add", "sig"]
    assert p3[p3.index("--end-node-names") + 1 : -1] == ["sig", "relu"]
    assert o3[o3.index("--calib-set-path") + 1] == str(copy / "compile/hailo_3.calib.npz")
    # the CLI works in compile/build, not in the plan dir
    assert {json.loads(l)["cwd"] for l in log.read_text().splitlines()} == {str(copy / "compile/build")}


def test_the_recorded_plan_loads_and_a_broken_one_is_left_alone(out, shim, tmp_path):
    """compile.sh's recorder writes a plan the runtime loads with its HEFs listed and hashed; a
    plan.json that fails the schema meanwhile is not rewritten and the script exits 1."""
    from runtime.schema import load_spec

    r = run_script(out / "compile" / "compile.sh", shim, tmp_path / "ok.log")
    assert r.returncode == 0, r.stderr
    spec = load_spec(out)
    for step in spec.hailo_steps:
        spec.verify_file(step.hef_path)  # listed in `files` with its sha256
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    doc = json.loads((broken / "plan.json").read_text())
    doc["steps"][1]["model"] = "../outside.onnx"
    (broken / "plan.json").write_text(json.dumps(doc))
    before = (broken / "plan.json").read_bytes()
    r = run_script(broken / "compile" / "compile.sh", shim, tmp_path / "broken.log")
    assert r.returncode == 1 and "record_hefs: plan.json not updated" in r.stderr
    assert (broken / "plan.json").read_bytes() == before


def test_failed_segment_does_not_stop_the_others(out, shim, tmp_path):
    log = tmp_path / "hailo.log"
    r = run_script(out / "compile" / "compile.sh", shim, log, fail="hailo_2")
    assert r.returncode == 1
    assert "2 compiled: hailo_1 hailo_3" in r.stdout and "1 failed: hailo_2" in r.stdout
    assert (out / "segments/hailo_3.hef").exists() and not (out / "segments/hailo_2.hef").exists()
    assert "ParsingWithRecommendationException" in (out / "compile/logs/hailo_2.log").read_text()
    steps = {s["name"]: s for s in json.loads((out / "plan.json").read_text())["steps"]}
    assert steps["hailo_2a"]["compile_status"] == "failed"


def test_hw_arch_override_and_missing_cli(out, shim, tmp_path):
    env = dict(os.environ, PATH="/usr/bin:/bin", HAILO_SHIM_LOG=str(tmp_path / "l"))
    r = subprocess.run(["bash", str(out / "compile/compile.sh")], env=env, capture_output=True, text=True)
    assert r.returncode == 2 and "AI Software Suite container" in r.stderr
    emit_compile_script(out, "hailo8l")
    log = tmp_path / "hailo.log"
    assert run_script(out / "compile/compile.sh", shim, log).returncode == 0
    assert all(a[a.index("--hw-arch") + 1] == "hailo8l" for a in calls(log))


def test_segment_without_calib_is_reported_failed(out, shim, tmp_path):
    plan = json.loads((out / "plan.json").read_text())
    del plan["steps"][1]["calib"]
    (out / "plan.json").write_text(json.dumps(plan))
    emitted = emit_compile_script(out, "hailo8")
    assert any("no calibration data for hailo_1" in w for w in emitted.warnings)
    log = tmp_path / "hailo.log"
    r = run_script(emitted.script, shim, log)
    assert r.returncode == 1 and "1 failed: hailo_1" in r.stdout and "--calib" in r.stderr
    assert all("hailo_1" not in " ".join(a) for a in calls(log))
    emitted = emit_compile_script(out, "hailo8", use_random_calib=True)
    assert run_script(emitted.script, shim, log).returncode == 0
    assert "--use-random-calib-set" in calls(log)[-8]
