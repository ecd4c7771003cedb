"""Where compile jobs run. Every executor has the same small surface:

    dfc_version() -> str            the DFC version string jobs will be compiled with (cache key)
    submit(job, emit, har_dest)     -> concurrent.futures.Future[WorkerResult]
    capacity                        how many jobs to keep submitted at once
    close(cancel=False)

`LocalExecutor` (the default): one process per job on this machine, N at a time, with a time-out.
`InlineExecutor`: in this process with an SDK object; for tests of the DFC call sequence and for
debugging (no isolation, no time-out). The Dask executor is in dask_executor.py.
"""

from __future__ import annotations

import shutil
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from .compile_worker import run_job
from .isolate import kill_all, probe_version, run_isolated


class ExecutorError(RuntimeError):
    """The executor cannot run (no scheduler, no workers, dask missing): a user-facing error."""


class InlineExecutor:
    name = "inline"

    def __init__(self, sdk, jobs: int = 1):
        self.sdk = sdk
        self.capacity = max(1, jobs)
        self._pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="compile")

    def dfc_version(self) -> str:
        return f"{getattr(self.sdk, '__name__', type(self.sdk).__name__)} {getattr(self.sdk, '__version__', '?')}"

    def _run(self, job, emit, har_dest):
        with tempfile.TemporaryDirectory(prefix="hailo-compile-") as tmp:
            res = run_job(job, self.sdk, Path(tmp), emit, save_har=har_dest is not None, dfc_version=self.dfc_version())
            if res.har:
                shutil.move(res.har, har_dest)
                res.har = str(har_dest)
            return res

    def submit(self, job, emit=None, har_dest=None) -> Future:
        return self._pool.submit(self._run, job, emit, har_dest)

    def close(self, cancel: bool = False) -> None:
        self._pool.shutdown(wait=not cancel, cancel_futures=cancel)


class LocalExecutor:
    name = "local"

    def __init__(self, sdk_module: str, jobs: int = 1, timeout_s: float | None = None):
        self.sdk_module = sdk_module
        self.timeout_s = timeout_s
        self.capacity = max(1, jobs)
        # Threads only wait on the compile processes; the work happens in those.
        self._pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="compile")

    def dfc_version(self) -> str:
        return probe_version(self.sdk_module)

    def submit(self, job, emit=None, har_dest=None) -> Future:
        return self._pool.submit(run_isolated, job, self.sdk_module, self.timeout_s, emit, har_dest)

    def close(self, cancel: bool = False) -> None:
        if cancel:
            kill_all()
        self._pool.shutdown(wait=not cancel, cancel_futures=cancel)
