"""`rewrite` ends with os._exit (no interpreter teardown): nothing it prints or writes may be lost,
exit codes are those main() returns, and REWRITER_FULL_EXIT=1 (or a tracer) gives the same run
with a normal exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from fd_util import conv_chain_model, save

from runtime.plan import Plan


def run_cli(*args, full_exit=False):
    env = dict(os.environ)
    env.pop("REWRITER_FULL_EXIT", None)
    env.pop("PYTHONUNBUFFERED", None)  # buffered output, as a user's shell gives: what a missing flush loses
    if full_exit:
        env["REWRITER_FULL_EXIT"] = "1"
    argv = [sys.executable, "-m", "rewriter.cli", *map(str, args)]
    return subprocess.run(argv, capture_output=True, text=True, env=env)


@pytest.mark.parametrize("full_exit", [False, True], ids=["fast-exit", "full-exit"])
def test_everything_printed_and_written_survives_the_exit(tmp_path, full_exit):
    model = save(conv_chain_model(n=40), tmp_path / "m.onnx")  # a long table and a long JSON
    out = tmp_path / "out.plan"
    proc = run_cli(model, "-o", out, "--json", full_exit=full_exit)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)  # the whole document, to its last brace
    assert len(summary["placement"]) >= 40 and summary["steps"] and summary["counts"]["device_calls"] == 1
    Plan.load(out).close()
    table = run_cli(model, "-o", tmp_path / "again.plan", full_exit=full_exit)
    assert table.returncode == 0 and table.stdout.rstrip().splitlines()[-1].startswith("Per inference:")
    assert table.stderr.rstrip().endswith(f"plan written to {tmp_path / 'again.plan'}")


@pytest.mark.parametrize("full_exit", [False, True], ids=["fast-exit", "full-exit"])
def test_exit_codes_are_main_s(tmp_path, full_exit):
    missing = run_cli(tmp_path / "missing.onnx", "-o", tmp_path / "o.plan", full_exit=full_exit)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "no such model file" in missing.stderr
    usage = run_cli("--no-such-flag", full_exit=full_exit)  # argparse's own exit
    assert usage.returncode == 2 and "usage" in usage.stderr
    assert not (tmp_path / "o.plan").exists()


@pytest.mark.parametrize(
    "argv, collecting",
    [
        (["m.onnx"], False),
        (["inspect", "m.onnx"], False),
        ([], False),
        (["serve", "p"], True),
        (["compile", "p"], True),
    ],
)
def test_only_short_lived_conversions_run_without_the_cyclic_collector(argv, collecting):
    """A conversion ends with os._exit, so its cycles are never worth collecting; a server or a
    compile lives long and keeps the collector (main() replaced: only the entry's policy is run)."""
    probe = (
        "import gc, sys\n"
        "import rewriter.cli\n"
        "m = sys.modules['rewriter.cli.main']\n"
        "m.main = lambda: print('collecting' if gc.isenabled() else 'paused') or 0\n"
        f"sys.argv = ['rewrite'] + {argv!r}\n"
        "m.run()\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ("collecting" if collecting else "paused")
