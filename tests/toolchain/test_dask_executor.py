"""--executor dask on a LocalCluster of worker *processes* (one per module: it takes seconds to start).
The SDK stand-in runs inside each worker's compile processes, configured through a file."""

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

from rewriter.toolchain import compile_cli
from rewriter.toolchain.dfc_driver import compile_plan
from rewriter.toolchain.executors import ExecutorError
from rewriter.toolchain.hef_cache import HefCache
from rewriter.toolchain.sdk import ToolchainMissing

from . import hailo_sdk_standin
from .conftest import ModuleStandin
from .plans import conv_segment, many_segments_plan, rehash
from .test_compile_cli import parse

distributed = pytest.importorskip("distributed")
DaskExecutor = pytest.importorskip("rewriter.toolchain.dask_executor").DaskExecutor
TESTS = str(Path(__file__).resolve().parents[1])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Workers inherit the environment they start with: the stand-in's config file and tests/ path."""
    folder = tmp_path_factory.mktemp("dask-standin")
    patch = pytest.MonkeyPatch()
    patch.setenv(hailo_sdk_standin.CONFIG_ENV, str(folder / "standin.json"))
    patch.setenv("PYTHONPATH", os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")]))
    standin = ModuleStandin(folder)
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )
    client = distributed.Client(cluster)
    yield cluster, client, standin
    client.close()
    cluster.close()
    patch.undo()


@pytest.fixture
def dask(cluster):
    _, client, standin = cluster
    client.wait_for_workers(2, timeout=60)  # a killed worker is being replaced by its nanny
    standin.configure()
    standin.reset_log()
    executor = DaskExecutor(None, standin.module, timeout_s=120, client=client)
    yield executor, standin
    executor.close()


def statuses(summary):
    return {r.segment: r.status for r in summary.results}


def test_segments_compile_on_workers_and_the_cache_is_consulted_on_the_client(tmp_path, dask):
    executor, standin = dask
    standin.configure(sleep=1)  # long enough for the stage events to arrive meanwhile
    out = many_segments_plan(tmp_path / "out", 4)
    pristine = tmp_path / "pristine"
    shutil.copytree(out, pristine)
    cache = HefCache(tmp_path / "cache")
    lines = []
    first = compile_plan(out, executor=executor, cache=cache, progress=lines.append)
    assert first.ok and set(statuses(first).values()) == {"compiled"}
    assert sorted(standin.compiled_nets()) == ["hailo_1", "hailo_2", "hailo_3", "hailo_4"]
    assert os.getpid() not in {c["pid"] for c in standin.calls().calls}
    assert "ran on Dask worker tcp://127.0.0.1:" in (out / "logs/hailo_2.compile.log").read_text()
    for i in range(1, 5):  # stage events travelled from the workers
        assert f"[{i}/4] hailo_{i}: compile (hailo8)..." in lines
    assert len(cache.entries()) == 4 and all(r.har is None for r in first.results)  # HARs stay remote

    standin.reset_log()
    copy = compile_plan(pristine, executor=executor, cache=cache, progress=None)
    assert set(statuses(copy).values()) == {"cached"} and standin.calls().calls == []
    for r in copy.results:
        assert (pristine / r.hef).read_bytes() == (out / r.hef).read_bytes()

    conv_segment(pristine / "segments/hailo_2.onnx", width=8, prefix="h2_", weight=-1.0)
    rehash(pristine)
    again = compile_plan(pristine, executor=executor, cache=cache, progress=None)
    assert standin.compiled_nets() == ["hailo_2"]
    assert statuses(again) == {"hailo_1": "done", "hailo_2": "compiled", "hailo_3": "done", "hailo_4": "done"}


def test_a_worker_killed_mid_compile_is_replaced_and_its_segment_rerun(tmp_path, dask, cluster):
    executor, standin = dask
    _, client, _ = cluster
    standin.configure(sleep=4)
    out = many_segments_plan(tmp_path / "out", 2)
    result = {}
    thread = threading.Thread(
        target=lambda: result.setdefault("summary", compile_plan(out, executor=executor, cache=None, progress=None))
    )
    thread.start()
    deadline = time.monotonic() + 60
    while "hailo_1" not in standin.compiled_nets():  # hailo_1 is inside compile() on some worker
        assert time.monotonic() < deadline
        time.sleep(0.05)
    (victim,) = [w for w, keys in client.processing().items() if any("hailo-compile-hailo_1-" in k for k in keys)]
    pid = client.run(os.getpid, workers=[victim])[victim]
    first_compile_pid = standin.calls().calls_for("hailo_1", "compile")[0]["pid"]
    os.kill(pid, signal.SIGKILL)
    thread.join(120)
    summary = result["summary"]
    assert summary.ok and statuses(summary) == {"hailo_1": "compiled", "hailo_2": "compiled"}
    assert len(standin.calls().calls_for("hailo_1", "compile")) == 2  # run again elsewhere
    try:
        os.kill(first_compile_pid, 0)
        orphan = True
    except ProcessLookupError:
        orphan = False
    assert not orphan, "the killed worker's compile process is still running"
    assert json.loads((out / "compile_summary.json").read_text())["ok"] is True


def test_cli_with_a_scheduler_address(tmp_path, dask, cluster):
    _, standin = dask
    local_cluster, _, _ = cluster
    out = many_segments_plan(tmp_path / "out", 2)
    argv = [
        "--executor",
        "dask",
        "--scheduler",
        local_cluster.scheduler_address,
        "--sdk-module",
        standin.module,
        "--cache",
        tmp_path / "cache",
    ]
    assert compile_cli.run(parse(out, *argv)) == 0
    assert sorted(standin.compiled_nets()) == ["hailo_1", "hailo_2"]
    standin.reset_log()
    assert compile_cli.run(parse(out, *argv)) == 0 and standin.compiled_nets() == []


def test_workers_without_the_sdk_are_reported(dask, cluster):
    _, client, _ = cluster
    with pytest.raises(ToolchainMissing, match="2 of 2 Dask workers cannot import the DFC"):
        DaskExecutor(None, "no_such_sdk_module", client=client).dfc_version()


def test_unreachable_scheduler_is_an_executor_error():
    with pytest.raises(ExecutorError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        DaskExecutor("tcp://127.0.0.1:9", "hailo_sdk_client", connect_timeout_s=1)
