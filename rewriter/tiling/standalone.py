"""`rewrite MODEL --tile-channels N --tile-width W` as a function (tests, examples, benchmarks)."""
from __future__ import annotations

from pathlib import Path

from rewriter.pipeline import RewriteOptions, rewrite
from rewriter.plan.writer import write_plan
from rewriter.target import load_target


def rewrite_tiled(model: Path, out: Path, target: str = "hailo8", channels: int | None = None,
                  width: int | None = None, force: bool | None = None):
    """Rewrite, tile (force when a limit is given, like the CLI flags), write the plan.
    Returns (plan document, tiling reports)."""
    tgt = load_target(target).with_tiling(channels, width)
    force = (channels is not None or width is not None) if force is None else force
    result = rewrite(Path(model), tgt, RewriteOptions(force_tiling=force))
    doc = result.document(tgt, Path(model))
    write_plan(Path(out), doc, result.steps)
    return doc, result.tiling
