"""Health figures that are easy to get wrong: plan identity and peak RSS after fork + exec."""

import hashlib
import subprocess
import sys

import numpy as np
from sv_helpers import REPO

from runtime.serve.health import peak_rss_mb, plan_identity
from runtime.serve.server import bind


def test_plan_identity(tmp_path):
    f = tmp_path / "plan.json"
    f.write_text('{"source": {"model": "enc.onnx"}}')
    assert plan_identity(f, {"source": {"model": "enc.onnx"}}) == (
        hashlib.sha256(f.read_bytes()).hexdigest(),
        "enc.onnx",
    )
    assert plan_identity(f, {})[1] is None


def test_peak_rss_of_a_child_is_its_own():
    """Linux keeps ru_maxrss across fork + exec: a server started by a big process must not report it."""
    ballast = np.ones(300 * 2**20 // 8)  # 300 MiB touched in this (parent) process
    assert peak_rss_mb() > 300
    r = subprocess.run(
        [sys.executable, "-c", "from runtime.serve.health import peak_rss_mb; print(peak_rss_mb())"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    del ballast
    assert float(r.stdout) < 150


def test_listening_socket_is_tcp_so_asyncio_sets_nodelay():
    """asyncio sets TCP_NODELAY on accepted sockets only when proto is TCP; without it keep-alive
    responses wait for the peer's delayed ACK (~40 ms each)."""
    import socket

    sock = bind("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()


def test_busy_port_is_a_one_line_error_before_the_plan_loads(tcn_plan, capsys, monkeypatch):
    from rewriter.cli import main as rewrite
    from runtime.serve import server

    def no_service(*args):
        raise AssertionError("the plan was loaded before the port was checked")

    monkeypatch.setattr(server, "Service", no_service)
    busy = bind("127.0.0.1", 0)
    try:
        assert rewrite(["serve", str(tcn_plan), "--port", str(busy.getsockname()[1])]) == 2
    finally:
        busy.close()
    err = capsys.readouterr().err
    assert "cannot listen on 127.0.0.1" in err and err.count("\n") == 1
