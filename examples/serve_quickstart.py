"""Serve a plan and call it, the way a client on the Pi would: start `rewrite serve PLAN --port 0`
(a free port, printed on stderr), read the input shapes from GET /healthz, POST a window of zeros to
/infer, print what came back, stop the server with SIGTERM (its graceful shutdown).

    python examples/serve_quickstart.py examples/out/tcn_encoder.plan

Standard library and numpy only: a client needs nothing of this project.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np


def start_server(plan: Path) -> tuple[subprocess.Popen, str]:
    """`rewrite serve` on 127.0.0.1 and a free port; returns the process and its base URL."""
    server = subprocess.Popen(
        [sys.executable, "-m", "rewriter.cli", "serve", str(plan), "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in server.stderr:  # "serving PLAN on http://HOST:PORT (backend ...)"
        found = re.search(r"on (http://\S+) \(backend", line)
        if found:  # keep reading its log so a full pipe never blocks the server
            threading.Thread(target=server.stderr.read, daemon=True).start()
            return server, found.group(1)
    server.wait()
    raise SystemExit(f"rewrite serve exited with code {server.returncode} before serving")


def get_json(url: str, body: dict | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=30) as r:
        return r.status, json.loads(r.read())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plan", type=Path)
    args = parser.parse_args(argv)
    server, url = start_server(args.plan)
    try:
        deadline = time.monotonic() + 60
        while True:  # warm-up runs happen before the socket answers; wait for /healthz
            try:
                _, health = get_json(f"{url}/healthz")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        # /healthz gives each field's shapes as text, "[100, 9] or [1, 100, 9]": the first is a window
        shapes_in = {
            name: json.loads(re.match(r"\[[^\]]*\]", text).group(0)) for name, text in health["inputs"].items()
        }
        status, answer = get_json(f"{url}/infer", {name: np.zeros(shape).tolist() for name, shape in shapes_in.items()})
        shapes = {name: list(np.shape(value)) for name, value in answer.items()}
        print(f"GET /healthz -> status {health['status']}, backend {health['backend']}")
        print(f"POST /infer -> {status}: {json.dumps(shapes)}")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
