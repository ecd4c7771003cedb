"""A `rewrite compile` killed mid-run resumes where it stopped (no HEF cache involved)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .plans import many_segments_plan

TESTS = Path(__file__).resolve().parents[1]


def compiled_steps(out):
    try:
        plan = json.loads((out / "plan.json").read_text())
    except (OSError, ValueError):
        return set()
    return {s["name"] for s in plan["steps"] if s.get("compile_status") == "compiled"}


def wait_for(predicate, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def rewrite_compile(out, standin, log):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    cmd = [
        sys.executable,
        "-m",
        "rewriter.cli",
        "compile",
        str(out),
        "--sdk-module",
        standin.module,
        "--no-cache",
        "--jobs",
        "1",
    ]
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def test_killed_compile_resumes_where_it_stopped(tmp_path, standin):
    out = many_segments_plan(tmp_path / "out", 4)
    standin.configure(sleep=1.5, hang=["hailo_3"])  # the third compile would never end
    with open(tmp_path / "first.log", "w") as log:
        proc = rewrite_compile(out, standin, log)
        try:
            assert wait_for(lambda: len(compiled_steps(out)) >= 2), (tmp_path / "first.log").read_text()
            assert wait_for(lambda: len(standin.compiled_nets()) >= 3)  # hailo_3 is in compile()
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    done_before = compiled_steps(out)
    assert done_before == {"hailo_1", "hailo_2"}
    orphan = max(c["pid"] for c in standin.calls().calls if c["method"] == "compile")
    assert wait_for(lambda: not alive(orphan), 10), "the compile process outlived its `rewrite compile`"
    rows = {r["segment"]: r for r in json.loads((out / "compile_summary.json").read_text())["segments"]}
    assert rows["hailo_1"]["status"] == rows["hailo_2"]["status"] == "compiled"  # written as it went
    assert rows["hailo_4"]["status"] == "pending"  # not even prepared: --jobs 1

    standin.configure(sleep=1.5)
    standin.reset_log()
    with open(tmp_path / "second.log", "w") as log:
        proc = rewrite_compile(out, standin, log)
        assert proc.wait(120) == 0, (tmp_path / "second.log").read_text()
    assert standin.compiled_nets() == ["hailo_3", "hailo_4"]
    rows = {r["segment"]: r["status"] for r in json.loads((out / "compile_summary.json").read_text())["segments"]}
    assert rows == {"hailo_1": "done", "hailo_2": "done", "hailo_3": "compiled", "hailo_4": "compiled"}
    assert compiled_steps(out) == {"hailo_1", "hailo_2", "hailo_3", "hailo_4"}
    assert "2 compiled, 0 cached, 2 done, 0 failed" in (tmp_path / "second.log").read_text()


def test_ctrl_c_kills_the_running_compiles_and_keeps_the_record(tmp_path, standin):
    out = many_segments_plan(tmp_path / "out", 3)
    standin.configure(hang=["hailo_1", "hailo_2", "hailo_3"])
    with open(tmp_path / "run.log", "w") as log:
        proc = rewrite_compile(out, standin, log)
        try:
            assert wait_for(lambda: len(standin.compiled_nets()) >= 1)  # a compile is under way
        finally:
            proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 130
    assert "rewrite: interrupted" in (tmp_path / "run.log").read_text()
    pids = {c["pid"] for c in standin.calls().calls}
    assert wait_for(lambda: not any(alive(p) for p in pids), 10)
    rows = json.loads((out / "compile_summary.json").read_text())["segments"]
    assert rows[0]["segment"] == "hailo_1" and rows[0]["status"] == "running"
