"""A conversion imports numpy with one OpenBLAS thread (its worker threads spin for about 0.1 s of
CPU after numpy's import, on the core the prefetch and the writer use), unless the user chose a
number, and leaves OPENBLAS_NUM_THREADS as it found it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fd_util import conv_chain_model, save

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/task").is_dir() or (os.cpu_count() or 1) < 2, reason="counts threads in /proc (Linux)"
)

THREADS = "print(len(os.listdir('/proc/self/task')), os.environ.get('OPENBLAS_NUM_THREADS'))"


def python(code: str, **env) -> str:
    environ = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    environ.update(env)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def test_plain_numpy_starts_blas_workers():
    """What the conversion avoids: numpy alone starts OpenBLAS worker threads here."""
    threads, _ = python(f"import os, numpy; {THREADS}").split()
    assert int(threads) > 1


def test_one_blas_thread_and_the_environment_restored():
    code = f"import os; from rewriter.cli.main import import_numpy_with_one_blas_thread as f; f(); {THREADS}"
    assert python(code) == "1 None"


def test_the_users_choice_stands():
    code = (
        f"import os; from rewriter.cli.main import import_numpy_with_one_blas_thread as f; f(); import numpy; {THREADS}"
    )
    plain = python(f"import os, numpy; {THREADS}", OPENBLAS_NUM_THREADS="2")
    assert python(code, OPENBLAS_NUM_THREADS="2") == plain and plain.endswith(" 2")


def test_a_conversion_runs_with_one_thread_left(tmp_path):
    model = save(conv_chain_model(), tmp_path / "m.onnx")
    out = tmp_path / "out.plan"
    code = (
        "import os, sys, contextlib, io\n"
        "from rewriter.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main([{str(model)!r}, '-o', {str(out)!r}, '-q']) == 0\n"
        f"{THREADS}"
    )
    assert python(code) == "1 None"
    assert (out / "plan.json").is_file()
