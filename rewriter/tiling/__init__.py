"""Temporal tiling and channel blocking of hailo segments, stitched exactly on the host.

    new_steps, reports = tile_steps(steps, target.tiling, force=False)
    retile_segment(out_dir, step_name, factor=0.5)   # re-tile one hailo step of a written plan
See docs/tiling.md.
"""
from rewriter.tiling.tiler import TilingReport, tile_segment, tile_steps

__all__ = ["TilingReport", "tile_segment", "tile_steps", "retile_segment"]


def retile_segment(out_dir, step_name, factor=0.5):
    from rewriter.tiling.retile import retile_segment as _retile
    return _retile(out_dir, step_name, factor=factor)
