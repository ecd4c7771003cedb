"""SIGTERM (systemd stop, docker stop) while requests are in flight: every accepted request is
answered, then the process exits 0. The server is a real `rewrite serve` subprocess."""

import threading
import time

import httpx
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from rt_helpers import write_plan
from sv_helpers import ServerProcess


def slow_plan(tmp_path, layers=8, rows=1024, width=512):
    """x [1, 8] -> Tile to [rows, width] -> `layers` x (MatMul width^2, Tanh) -> mean: 2 GMAC, ~0.2 s a run."""
    rng = np.random.default_rng(0)

    def weight(name, shape):
        return numpy_helper.from_array((rng.standard_normal(shape) / np.sqrt(shape[0])).astype(np.float32), name)

    inits = [weight("W0", (8, width)), numpy_helper.from_array(np.array([rows, 1], np.int64), "reps")]
    nodes = [helper.make_node("MatMul", ["x", "W0"], ["h0"]), helper.make_node("Tile", ["h0", "reps"], ["t0"])]
    for i in range(layers):
        inits.append(weight(f"W{i + 1}", (width, width)))
        nodes += [
            helper.make_node("MatMul", [f"t{i}", f"W{i + 1}"], [f"m{i}"]),
            helper.make_node("Tanh", [f"m{i}"], [f"t{i + 1}"]),
        ]
    nodes.append(helper.make_node("ReduceMean", [f"t{layers}"], ["y"], axes=[0], keepdims=1))
    graph = helper.make_graph(
        nodes,
        "slow",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, width])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 9
    (tmp_path / "segments").mkdir()
    onnx.save(model, str(tmp_path / "segments" / "slow.onnx"))
    steps = [
        {
            "name": "host_0",
            "device": "host",
            "kind": "onnx",
            "model": "segments/slow.onnx",
            "inputs": ["x"],
            "outputs": ["y"],
        }
    ]
    return write_plan(tmp_path, [("x", [1, 8])], [("y", [1, width])], steps)


def test_sigterm_answers_in_flight_requests_then_exits_0(tmp_path):
    plan = slow_plan(tmp_path)
    server = ServerProcess(str(plan), "--queue", "8")
    client = httpx.Client(timeout=60)
    results, errors = {}, []

    def post(i):
        try:
            results[i] = client.post(server.url + "/infer", json={"x": [float(i)] * 8})
        except httpx.HTTPError as e:  # reported below
            errors.append(e)

    try:
        threads = [threading.Thread(target=post, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while client.get(server.url + "/healthz").json()["queue_depth"] < 3:  # one running, two queued
            assert time.monotonic() < deadline, "requests never were in flight together"
            time.sleep(0.002)
    except BaseException:
        server.proc.kill()
        raise
    code, err = server.stop()
    for t in threads:
        t.join(60)
    assert code == 0, err
    assert not errors, errors
    assert [results[i].status_code for i in range(3)] == [200] * 3
    assert all(np.shape(results[i].json()["y"]) == (512,) for i in range(3))
    assert "stopped" in err and "Traceback" not in err
    with pytest.raises(httpx.TransportError):  # the port is closed
        httpx.get(server.url + "/healthz", timeout=2)
