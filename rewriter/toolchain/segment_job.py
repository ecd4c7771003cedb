"""One segment's compile job as plain data: everything the DFC needs, nothing that points into the
plan folder, so it can run in another process or on another machine (Dask workers).

`prepare_job` builds it on the client (reads the ONNX and calibration files, generates the model
script); `write_job_dir` / `read_job_dir` hand it to a compile subprocess through a private folder
(.onnx, .npy without pickle, job.json).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import calib as calib_mod
from .model_script import build_model_script, merged_settings
from .plan_io import Segment

JOB_FILE = "job.json"


@dataclass
class SegmentJob:
    segment: str  # plan segment name (model file stem)
    net: str  # DFC network name (embedded in the HEF)
    model_bytes: bytes  # the segment ONNX file
    input_names: list
    input_shapes: list  # NCHW, same order as input_names
    start_nodes: list
    end_nodes: list
    calib: list  # float32 NHWC arrays, one per input
    script: str  # model script text (.alls)
    hw_arch: str
    settings: dict = field(default_factory=dict)  # merged [compile] settings (part of the cache key)
    warnings: list = field(default_factory=list)  # from preparing (calibration, settings)

    @property
    def calib_windows(self) -> int:
        return int(self.calib[0].shape[0])

    @property
    def model_file(self) -> str:
        """File name the DFC parser gets (its messages name it)."""
        return f"{self.segment}.onnx"


def prepare_job(
    out_dir, seg: Segment, hw_arch: str, compile_settings: dict, user_script: str | None, use_random_calib: bool
) -> SegmentJob:
    """Read what the DFC needs for `seg`. Raises CalibError / SegmentError / ValueError (bad settings)."""
    from .segment_io import inspect_segment, net_name_for  # onnx import: client side only

    out_dir = Path(out_dir)
    model_path = out_dir / seg.model
    io = inspect_segment(model_path)
    warnings = []
    if seg.calibs:
        arrays = calib_mod.load_calibration(out_dir, seg.calibs, io)
    elif use_random_calib:
        n = int((compile_settings or {}).get("calibset_size") or 1024)
        arrays = calib_mod.random_calibration(io, n)
        warnings.append(
            f"RANDOM calibration data ({n} samples): the HEF will run but its "
            "quantization is not representative; do not ship it"
        )
    else:
        raise calib_mod.CalibError(f"steps {seg.steps} have no 'calib' in plan.json: " + calib_mod.NO_CALIB_HINT)
    script, script_warnings = build_model_script(compile_settings, int(arrays[0].shape[0]), user_script)
    settings, _ = merged_settings(compile_settings)
    return SegmentJob(
        segment=seg.name,
        net=net_name_for(seg.name),
        model_bytes=model_path.read_bytes(),
        input_names=list(io.input_names),
        input_shapes=[list(s) for s in io.input_shapes],
        start_nodes=list(io.start_nodes),
        end_nodes=list(io.end_nodes),
        calib=[np.ascontiguousarray(a) for a in arrays],
        script=script,
        hw_arch=hw_arch,
        settings=settings,
        warnings=warnings + list(script_warnings),
    )


def write_job_dir(job: SegmentJob, folder: Path) -> None:
    folder = Path(folder)
    (folder / job.model_file).write_bytes(job.model_bytes)
    for i, arr in enumerate(job.calib):
        np.save(folder / f"calib_{i}.npy", arr, allow_pickle=False)
    meta = {
        k: getattr(job, k)
        for k in (
            "segment",
            "net",
            "input_names",
            "input_shapes",
            "start_nodes",
            "end_nodes",
            "script",
            "hw_arch",
            "settings",
            "warnings",
        )
    }
    meta["n_calib"] = len(job.calib)
    (folder / JOB_FILE).write_text(json.dumps(meta))


def read_job_dir(folder: Path) -> SegmentJob:
    folder = Path(folder)
    meta = json.loads((folder / JOB_FILE).read_text())
    calib = [np.load(folder / f"calib_{i}.npy", allow_pickle=False) for i in range(meta.pop("n_calib"))]
    return SegmentJob(model_bytes=(folder / f"{meta['segment']}.onnx").read_bytes(), calib=calib, **meta)
