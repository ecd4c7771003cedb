"""Fixtures for the sidecar tests (helpers in sv_helpers.py): the real TCN encoder rewritten to a plan."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for p in (str(HERE.parents[1]), str(HERE), str(HERE.parents[1] / "tests" / "runtime")):  # runtime's helpers, stand-in
    if p not in sys.path:
        sys.path.insert(0, p)

from sv_helpers import FIXTURE, TCN_MODEL  # noqa: E402


@pytest.fixture(scope="session")
def tcn_plan(tmp_path_factory) -> Path:
    """The real TCN encoder rewritten for hailo8 with its z-score as a host step (raw windows in)."""
    if not TCN_MODEL.is_file():
        pytest.skip(f"TCN fixture not present at {FIXTURE}")
    from rewriter.cli import main as rewrite

    out = tmp_path_factory.mktemp("serve") / "tcn.plan"
    assert (
        rewrite(
            [
                str(TCN_MODEL),
                "--target",
                "hailo8",
                "--normalize",
                str(FIXTURE / "model_config.json"),
                "-o",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    return out
