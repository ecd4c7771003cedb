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
    """(N, *input shape) per plan input from read_calibration_file's arrays, in the input's type
    (float32 unless the plan says otherwise: a float16 model takes float16 windows)."""
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
            raise UserError(
                f"{label}: {spec['name']} has shape {list(arr.shape)}, expected (N, "
                f"{', '.join(map(str, per_sample))}) windows in the model's input layout"
            )
        fitted[spec["name"]] = arr.reshape((arr.shape[0], *spec["shape"])).astype(spec.get("dtype", "float32"))
    counts = {a.shape[0] for a in fitted.values()}
    if len(counts) != 1:
        raise UserError(f"{label}: inputs have different sample counts {sorted(counts)}")
    return fitted


def to_nhwc(batch: np.ndarray) -> np.ndarray:
    """(N, 1, C, H, W) or (N, 1, C) stacked samples -> (N, H, W, C) / (N, C) float32."""
    batch = batch.reshape(batch.shape[0], *batch.shape[2:]).astype(np.float32, copy=False)
    return np.ascontiguousarray(batch.transpose(0, 2, 3, 1)) if batch.ndim == 4 else batch


MAX_FRAMES = 1024  # per step: the DFC's default calibset_size; tiled steps see many frames per window


def capture(
    plan, samples: list[dict], steps, progress=None, max_frames: int = MAX_FRAMES, seed: int = 0
) -> dict[str, list[np.ndarray]]:
    """Run `plan` (a runtime Plan) on each feed of `samples` and return, per step of `steps` (its
    StepSpecs), the inputs its MODEL sees: (frames, H, W, C) float32 per model input. A tiled step
    sees one frame per time tile and batch entry (its windows and masks); when all samples hold
    more than `max_frames` of them, a fixed random subset is kept (untiled steps keep every window)."""
    from runtime.tiles import batch_inputs

    plan_inputs = {t.name for t in plan.inputs}
    keep = sorted({t for s in steps for t in s.inputs} - plan_inputs)
    frames = {s.name: (s.tiles.frames if s.tiles is not None else 1) for s in steps}
    rng = np.random.default_rng(seed)
    chosen = {}
    for s in steps:  # which frames of which run each step keeps
        total = frames[s.name] * len(samples)
        small = total <= max_frames or frames[s.name] == 1
        pick = np.arange(total) if small else np.sort(rng.choice(total, max_frames, replace=False))
        chosen[s.name] = np.split(
            pick % frames[s.name], np.searchsorted(pick // frames[s.name], np.arange(1, len(samples)))
        )
    got: dict[str, list[list[np.ndarray]]] = {s.name: [] for s in steps}
    for k, feeds in enumerate(samples):
        env = {**feeds, **plan.run(feeds, keep=keep)}
        for s in steps:
            xs = [env[t] for t in s.inputs]
            batch = batch_inputs(s, plan.spec.tensors, xs) if s.tiles is not None else xs
            got[s.name].append([to_nhwc(np.asarray(b)[chosen[s.name][k]][:, None]) for b in batch])
        if progress and len(samples) >= 10 and (k + 1) % max(1, len(samples) // 10) == 0:
            progress(f"  calibration: {k + 1}/{len(samples)} windows")
    return {name: [np.concatenate(parts) for parts in zip(*runs)] for name, runs in got.items()}


def write_calib(plan_dir: Path, step: dict, names: list[str], arrays: list[np.ndarray]) -> None:
    """calib/<step>.npy (one model input) or .npz keyed by the model's input names; sets step["calib"]."""
    (plan_dir / "calib").mkdir(exist_ok=True)
    if len(arrays) == 1:
        rel = f"calib/{step['name']}.npy"
        np.save(plan_dir / rel, arrays[0])
    else:
        rel = f"calib/{step['name']}.npz"
        np.savez(plan_dir / rel, **dict(zip(names, arrays)))
    step["calib"] = rel


def model_input_names(plan, spec) -> list[str]:
    """The graph input names of a hailo step's model (tiled steps bind by position in `tiles`)."""
    if spec.tiles is None:
        return list(spec.inputs)
    from runtime.backends.ort_backend import read_signature

    return [n for n, _ in read_signature(spec.model_path, plan.spec.read_file)[0]]


def propagate(plan_dir: Path, doc: dict, arrays: dict, progress) -> list[str]:
    """Writes calib/<step>.npy|.npz into plan_dir and sets steps[i].calib in `doc` (and plan.json).
    `arrays` come from read_calibration_file."""
    from runtime import Plan

    calib = fit_calibration(arrays, doc["inputs"])
    plan = Plan.load(plan_dir, backend="onnxruntime")
    count = next(iter(calib.values())).shape[0]
    samples = [{name: arr[k] for name, arr in calib.items()} for k in range(count)]  # (N, *input shape)
    hailo = plan.spec.hailo_steps
    captured = capture(plan, samples, hailo, progress)
    entries = {s["name"]: s for s in doc["steps"]}
    for spec in hailo:
        write_calib(plan_dir, entries[spec.name], model_input_names(plan, spec), captured[spec.name])
    plan.close()
    write_plan_json(plan_dir, doc)
    warnings = []
    if count < MIN_RECOMMENDED:
        warnings.append(
            f"warning: {count} calibration windows < {MIN_RECOMMENDED}: the DFC lowers its "
            "optimization level with fewer"
        )
    return warnings


def stderr_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
