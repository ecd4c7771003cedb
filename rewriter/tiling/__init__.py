"""Tiling of hailo segments that exceed the target's resource model: one model (one HEF) per
time-local stage with its channel blocks side by side, all time tiles run as one batched device
call, gathered and scattered by the runtime; exact up to float32 rounding.

    new_steps, reports = tile_steps(steps, target.tiling)
    retile_segment(out_dir, step_name, factor=0.5)   # re-tile one hailo step of a written plan
See docs/tiling.md.
"""

from rewriter.tiling.tiler import TilingReport, tile_segment, tile_steps

__all__ = ["TilingReport", "tile_segment", "tile_steps", "retile_segment"]


def retile_segment(out_dir, step_name, factor=0.5):
    from rewriter.tiling.retile import retile_segment as _retile

    return _retile(out_dir, step_name, factor=factor)
