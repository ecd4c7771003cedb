"""Helpers for the sidecar tests: the real TCN encoder fixture (or, without ../shared, the same architecture
exported from examples/tcn_encoder.py), IMU-like windows, and a real
uvicorn server on 127.0.0.1 (a free port) in a thread or a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
# ../shared from the main checkout, ../../shared from a worktree under /work/wt
MODEL_NAME = "tcn_encoder_for_edgeinfer.onnx"


def _exported_encoder() -> Path:
    """Without ../shared (a bare clone): the same architecture exported from examples/tcn_encoder.py
    (seeded weights) with a z-score config, made once per user in the temp dir, so the sidecar tests
    run everywhere. The export runs in a child process: torch stays out of this one."""
    folder = Path(tempfile.gettempdir()) / f"hailo-rewriter-tests-{os.getuid()}" / "tcn_encoder"
    if not (folder / MODEL_NAME).is_file():
        folder.mkdir(parents=True, exist_ok=True)
        staged = folder / f".{os.getpid()}.onnx"
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
                "sys.path.insert(0, sys.argv[1] + '/examples'); "
                "from tcn_encoder import export; export(Path(sys.argv[2]))",
                str(REPO),
                str(staged),
            ],
            check=True,
            capture_output=True,
        )
        config = {"normalization": {"mean": [0.0, 0.0, 9.8] + [0.0] * 6, "std": [4.0, 4.0, 2.5] + [1.0] * 6}}
        (folder / "model_config.json").write_text(json.dumps(config))
        os.replace(staged, folder / MODEL_NAME)
    return folder


FIXTURE = (
    next(
        (
            d / "fixtures" / "tcn_encoder"
            for d in (REPO.parent / "shared", REPO.parent.parent / "shared")
            if (d / "fixtures" / "tcn_encoder" / MODEL_NAME).is_file()
        ),
        None,
    )
    or _exported_encoder()
)
TCN_MODEL = FIXTURE / MODEL_NAME


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
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rewriter.cli", "serve", *args, "--port", "0"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
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
