"""Calibration propagation: run the plan on the user's calibration windows and write, for every
Hailo step, the inputs that step sees, in the layout the DFC's optimize() wants (NHWC float32)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from rewriter.errors import UserError
from rewriter.plan.writer import write_plan_json

MIN_RECOMMENDED = 1024  # below this the DFC lowers its optimization level


def read_calibration_file(path: Path) -> dict:
    """The arrays of a --calib file, checked before any work starts: {None: array} for .npy (one
    model input), {name: array} for .npz. Windows must be numeric, finite, at least one."""
    if not path.is_file():
        raise UserError(f"no such calibration file: {path}")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                arrays = {name: z[name] for name in z.files}
        else:
            arrays = {None: np.load(path, allow_pickle=False)}
    except (OSError, ValueError, EOFError) as exc:
        raise UserError(f"--calib {path}: cannot read it as .npy/.npz ({str(exc).splitlines()[0]})") from exc
    for name, arr in arrays.items():
        label = f"--calib {path}" + (f"[{name}]" if name else "")
        if arr.dtype.kind not in "fiu" or arr.ndim < 1:
            raise UserError(f"{label}: expected numeric windows (N, ...), got {arr.dtype} {list(arr.shape)}")
        if arr.shape[0] == 0:
            raise UserError(f"{label}: holds 0 windows")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise UserError(f"{label}: holds NaN or infinite values")
    return arrays


def fit_calibration(arrays: dict, inputs: list[dict], label: str = "--calib") -> dict[str, np.ndarray]:
    """(N, *input shape) float32 per plan input from read_calibration_file's arrays."""
    if None in arrays:
        if len(inputs) != 1:
            raise UserError(f"{label}: the model has {len(inputs)} inputs; give an .npz keyed by input name")
        arrays = {inputs[0]["name"]: arrays[None]}
    missing = [i["name"] for i in inputs if i["name"] not in arrays]
    if missing:
        raise UserError(f"{label}: no array for input(s) {', '.join(missing)} (has {sorted(arrays)})")
    fitted = {}
    for spec in inputs:
        arr = arrays[spec["name"]]
        per_sample = list(spec["shape"][1:])
        if list(arr.shape[1:]) != per_sample and list(arr.shape[1:]) != list(spec["shape"]):
            raise UserError(f"{label}: {spec['name']} has shape {list(arr.shape)}, expected (N, "
                            f"{', '.join(map(str, per_sample))}) windows in the model's input layout")
        fitted[spec["name"]] = arr.reshape((arr.shape[0], *spec["shape"])).astype(np.float32)
    counts = {a.shape[0] for a in fitted.values()}
    if len(counts) != 1:
        raise UserError(f"{label}: inputs have different sample counts {sorted(counts)}")
    return fitted


def to_nhwc(batch: np.ndarray) -> np.ndarray:
    """(N, 1, C, H, W) or (N, 1, C) stacked samples -> (N, H, W, C) / (N, C)."""
    batch = batch.reshape(batch.shape[0], *batch.shape[2:])
    return np.ascontiguousarray(batch.transpose(0, 2, 3, 1)) if batch.ndim == 4 else batch


def propagate(plan_dir: Path, doc: dict, arrays: dict, progress) -> list[str]:
    """Writes calib/<step>.npy|.npz into plan_dir and sets steps[i].calib in `doc` (and plan.json).
    `arrays` come from read_calibration_file."""
    from runtime import Plan
    calib = fit_calibration(arrays, doc["inputs"])
    plan = Plan.load(plan_dir, backend="onnxruntime")
    hailo = [s for s in doc["steps"] if s["device"] == "hailo"]
    wanted = sorted({name for s in hailo for name in s["inputs"]} - {i["name"] for i in doc["inputs"]})
    count = next(iter(calib.values())).shape[0]
    captured: dict[str, list] = {}
    for k in range(count):
        feeds = {name: arr[k] for name, arr in calib.items()}  # arrays are (N, *input shape)
        result = plan.run(feeds, keep=wanted)
        for name in wanted:
            captured.setdefault(name, []).append(np.array(result[name]))
        for name in calib:
            captured.setdefault(name, []).append(feeds[name])
        if count >= 10 and (k + 1) % max(1, count // 10) == 0:
            progress(f"  calibration: {k + 1}/{count} windows")
    (plan_dir / "calib").mkdir(exist_ok=True)
    for step in hailo:
        arrays = {name: to_nhwc(np.stack(captured[name])) for name in step["inputs"]}
        if len(arrays) == 1:
            rel = f"calib/{step['name']}.npy"
            np.save(plan_dir / rel, next(iter(arrays.values())))
        else:
            rel = f"calib/{step['name']}.npz"
            np.savez(plan_dir / rel, **arrays)
        step["calib"] = rel
    write_plan_json(plan_dir, doc)
    warnings = []
    if count < MIN_RECOMMENDED:
        warnings.append(f"warning: {count} calibration windows < {MIN_RECOMMENDED}: the DFC lowers its "
                        "optimization level with fewer")
    return warnings


def stderr_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
