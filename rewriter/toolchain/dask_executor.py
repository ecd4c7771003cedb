"""`--executor dask`: compile jobs on a Dask distributed cluster (machines with the DFC installed).

A job travels as plain data (ONNX bytes, calibration arrays, model script, settings); on the worker
it runs in its own compile process with the time-out (isolate.run_isolated), and the HEF bytes come
back to the client, which writes them into the plan and the cache. Stage events travel as Dask
events on TOPIC. A worker that dies mid-job is replaced by the scheduler and its job re-run
(up to distributed.scheduler.allowed-failures times); an exception on the worker side is retried
`retries` times. Workers need `hailo-rewriter[cluster]` installed next to hailo_sdk_client.
"""

from __future__ import annotations

import socket
import threading
import uuid
from concurrent.futures import Future

from .executors import ExecutorError
from .isolate import probe_version, run_isolated
from .sdk import ToolchainMissing

TOPIC = "hailo-rewriter-compile"
NEEDS_DASK = "--executor dask needs dask.distributed: pip install 'hailo-rewriter[cluster]'"


def compile_on_worker(job, sdk_module: str, timeout_s, job_id: str):
    """The Dask task: runs on a worker."""
    from distributed import get_worker

    worker = get_worker()

    def emit(stage, message):
        worker.log_event(TOPIC, {"job": job_id, "stage": stage, "message": message})

    res = run_isolated(job, sdk_module, timeout_s, emit)
    res.log.insert(0, f"ran on Dask worker {worker.address} (host {socket.gethostname()})")
    return res


_versions: dict = {}  # per worker process: a probe costs an SDK import


def worker_version(sdk_module: str) -> dict:
    """Runs on every worker. Memoized for the worker's life; should the SDK change under a running
    worker, each compile still reports the version it really used and the client does not cache
    a HEF whose version differs from its key's."""
    if sdk_module not in _versions:
        try:
            _versions[sdk_module] = {"version": probe_version(sdk_module)}
        except ToolchainMissing as exc:
            return {"error": str(exc)}
    return _versions[sdk_module]


class DaskExecutor:
    name = "dask"

    def __init__(
        self,
        scheduler: str | None,
        sdk_module: str,
        timeout_s: float | None = None,
        jobs: int = 1,
        retries: int = 2,
        client=None,
        connect_timeout_s: float = 20,
    ):
        """`scheduler` tcp://HOST:8786, or None for a LocalCluster of `jobs` worker processes here;
        `client` an existing distributed.Client (not closed by close())."""
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:
            raise ExecutorError(NEEDS_DASK) from exc
        self.sdk_module, self.timeout_s, self.retries = sdk_module, timeout_s, retries
        self._cluster = None
        self._own_client = client is None
        if client is not None:
            self.client = client
        elif scheduler:
            try:
                self.client = Client(scheduler, timeout=f"{connect_timeout_s}s")
            except (OSError, TimeoutError, ValueError) as exc:
                raise ExecutorError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc
        else:
            self._cluster = LocalCluster(
                n_workers=max(1, jobs), threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
            )
            self.client = Client(self._cluster)
        self._emitters: dict = {}
        self._lock = threading.Lock()
        self._futures: set = set()
        self.client.subscribe_topic(TOPIC, self._on_event)

    def dfc_version(self) -> str:
        answers = self.client.run(worker_version, self.sdk_module)
        if not answers:
            raise ExecutorError(
                "the Dask scheduler has no workers: start `dask worker tcp://HOST:8786` inside Hailo's container"
            )
        missing = {w: a["error"] for w, a in answers.items() if "error" in a}
        if missing:
            worker, error = next(iter(missing.items()))
            raise ToolchainMissing(
                f"{len(missing)} of {len(answers)} Dask workers cannot import the DFC (e.g. {worker}: {error})"
            )
        versions = {a["version"] for a in answers.values()}
        if len(versions) > 1:
            raise ExecutorError(
                f"Dask workers have different DFC versions {sorted(versions)}: "
                "a HEF must not depend on which worker built it"
            )
        return versions.pop()

    @property
    def capacity(self) -> int:
        """Twice the cluster's threads, so a worker finds its next job waiting."""
        return 2 * max(1, sum(self.client.nthreads().values()))

    def _on_event(self, event) -> None:
        _, msg = event
        emit = self._emitters.get(msg.get("job"))
        if emit:
            emit(msg.get("stage"), msg.get("message", ""))

    def submit(self, job, emit=None, har_dest=None) -> Future:
        """`har_dest` is ignored: HARs stay out of the network traffic (they are for debugging)."""
        job_id = uuid.uuid4().hex
        if emit:
            self._emitters[job_id] = emit
        done: Future = Future()
        remote = self.client.submit(
            compile_on_worker,
            job,
            self.sdk_module,
            self.timeout_s,
            job_id,
            key=f"hailo-compile-{job.segment}-{job_id[:8]}",
            pure=False,
            retries=self.retries,
        )
        with self._lock:
            self._futures.add(remote)

        def finished(fut):
            self._emitters.pop(job_id, None)
            with self._lock:
                self._futures.discard(fut)
            try:
                done.set_result(fut.result())
            except BaseException as exc:  # noqa: BLE001 -- KilledWorker, CancelledError: the driver reports it
                done.set_exception(exc)

        remote.add_done_callback(finished)
        return done

    def close(self, cancel: bool = False) -> None:
        if cancel:
            with self._lock:
                pending = list(self._futures)
            if pending:
                self.client.cancel(pending)
        self.client.unsubscribe_topic(TOPIC)
        if self._own_client:
            self.client.close()
            if self._cluster is not None:
                self._cluster.close()
