"""Helpers for the sidecar tests: where the real TCN encoder fixture is, IMU-like windows, and a real
uvicorn server on 127.0.0.1 (a free port) in a thread or a subprocess."""
from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
# ../shared from the main checkout, ../../shared from a worktree under /work/wt
FIXTURE = next((d / "fixtures" / "tcn_encoder" for d in (REPO.parent / "shared", REPO.parent.parent / "shared")
                if (d / "fixtures" / "tcn_encoder").is_dir()), REPO.parent / "shared" / "fixtures" / "tcn_encoder")
TCN_MODEL = FIXTURE / "tcn_encoder_for_edgeinfer.onnx"


def window(seed: int = 0, shape=(100, 9)) -> np.ndarray:
    """A raw IMU-like window: gravity on az, noise elsewhere."""
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    x[..., 2] += 9.8
    return x


@contextlib.contextmanager
def live_server(service):
    """Serve `service` with uvicorn on 127.0.0.1 (free port) in a thread; yields the base URL."""
    from runtime.serve.server import bind, make_server
    sock = bind("127.0.0.1", 0)
    server = make_server(service)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        wait_healthy(url)
        yield url
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
        service.close()
        assert not thread.is_alive(), "server thread did not stop"


def wait_healthy(url: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            r = httpx.get(f"{url}/healthz", timeout=5)
            if r.status_code == 200:
                return r.json()
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not become healthy in {timeout} s")
        time.sleep(0.05)


class ServerProcess:
    """`rewrite serve PLAN --port 0 ...` as a subprocess; the URL is read from its first line."""

    def __init__(self, *args: str, env: dict | None = None):
        self.proc = subprocess.Popen([sys.executable, "-m", "rewriter.cli", "serve", *args, "--port", "0"],
                                     cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, **(env or {})})
        line = self.proc.stderr.readline()
        m = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
        if not m:
            self.proc.kill()
            raise AssertionError(f"server did not start: {line}{self.proc.stderr.read()}")
        self.url = m.group(1)
        wait_healthy(self.url)

    def stop(self, sig=None, timeout: float = 30.0) -> tuple[int, str]:
        import signal
        self.proc.send_signal(sig or signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        return self.proc.returncode, err
