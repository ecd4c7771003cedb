"""Run the app on uvicorn; `serve(config)` is `rewrite serve`.

Graceful shutdown: on SIGTERM (systemd stop, docker stop) or SIGINT uvicorn stops accepting, answers
the requests it has, then the app's lifespan drains the queue and closes the plan. uvicorn re-raises
the signal after that so the default action would kill the process; we install a handler that
swallows it, so a clean shutdown exits 0.
"""

from __future__ import annotations

import signal
import socket
import sys
import threading

import uvicorn

from ..errors import OptionError
from .app import create_app
from .config import ServeConfig
from .service import PlanLoader, Service, load_plan

GRACEFUL_SHUTDOWN_S = 30  # uvicorn's bound on waiting for in-flight requests


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free port); bound before uvicorn starts so the port is known."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio sets TCP_NODELAY on accepted sockets only then, and without it
    # every keep-alive response waits ~40 ms (Nagle vs delayed ACK; measured, see docs/serve.md).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    return sock


def make_server(service: Service) -> uvicorn.Server:
    config = uvicorn.Config(
        create_app(service),
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    return uvicorn.Server(config)


def serve(config: ServeConfig, plan_loader: PlanLoader = load_plan, log=sys.stderr) -> int:
    try:  # before loading the plan: a busy port fails in a moment, not after the warm-up
        sock = bind(config.host, config.port)
    except OSError as e:
        raise OptionError(f"cannot listen on {config.host}:{config.port}: {e.strerror or e}") from e
    try:
        service = Service(config, plan_loader)
    except BaseException:
        sock.close()
        raise
    host, port = sock.getsockname()[:2]
    health = service.health()
    print(
        f"serving {config.plan} on http://{host}:{port} (backend {health['backend']}: {health['backend_reason']})",
        file=log,
        flush=True,
    )
    server = make_server(service)
    if threading.current_thread() is threading.main_thread():
        # uvicorn re-raises the signal after its graceful shutdown; end normally instead of dying by it.
        signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        service.close()
    print("stopped", file=log, flush=True)
    return 0
