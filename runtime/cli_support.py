"""Helpers for the `rewrite run` / `rewrite check` commands (the CLI itself lives in rewriter/)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .parity import ParityRow, compare
from .profile import RunProfile
from .profile import format_profile as _format_profile


def load_inputs(pairs: list[str], plan) -> dict:
    """["NAME=path.npy", ...] -> {name: array} checked against the plan's inputs.

    A single bare "path.npy" is accepted when the plan has exactly one input. Arrays whose dtype
    differs from the plan's are cast only within the same kind (float64 -> float32, not float -> int).
    """
    specs = {t.name: t for t in plan.inputs}
    out: dict[str, np.ndarray] = {}
    for pair in pairs:
        if "=" in pair:
            name, _, path = pair.partition("=")
            name, path = name.strip(), path.strip()
        elif len(specs) == 1:
            name, path = next(iter(specs)), pair.strip()
        else:
            raise ValueError(f"bad input {pair!r}: expected NAME=path.npy (plan inputs: {', '.join(specs)})")
        if not name or not path:
            raise ValueError(f"bad input {pair!r}: expected NAME=path.npy")
        if name not in specs:
            raise ValueError(f"unknown input {name!r}; the plan's inputs are {', '.join(specs)}")
        if name in out:
            raise ValueError(f"input {name!r} given twice")
        p = Path(path)
        if not p.is_file():
            raise ValueError(f"input {name!r}: file {path} not found")
        arr = _read_array(p, name)
        t = specs[name]
        if not t.shape_matches(arr.shape):
            raise ValueError(f"input {name!r}: {path} has shape {list(arr.shape)}, the plan expects {list(t.shape)}")
        if arr.dtype != t.dtype:
            if not np.can_cast(arr.dtype, t.dtype, "same_kind"):
                raise ValueError(f"input {name!r}: {path} has dtype {arr.dtype}, the plan expects {t.dtype}")
            arr = arr.astype(t.dtype)
        out[name] = arr
    missing = [n for n in specs if n not in out]
    if missing:
        raise ValueError(f"missing input(s) {', '.join(missing)} (give NAME=path.npy)")
    return out


def _read_array(path: Path, name: str) -> np.ndarray:
    """An .npy file, or from an .npz archive the array named `name` (or its only array)."""
    problem = f"input {name!r}: cannot read {path} as .npy or .npz"
    try:
        with open(path, "rb") as fh:
            if fh.read(6) != b"\x93NUMPY" and not zipfile.is_zipfile(fh):  # numpy would try pickle
                raise ValueError(f"input {name!r}: cannot read {path}: not an .npy or .npz file")
    except OSError as e:
        raise ValueError(f"{problem} ({e.strerror or e})") from e
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            return data
        with data:
            arrays = {k: data[k] for k in data.files if k == name or len(data.files) == 1}
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise ValueError(f"{problem} ({e})") from e
    if not arrays:
        raise ValueError(f"input {name!r}: {path} holds arrays {data.files[:10]}, none named {name!r}")
    return arrays.get(name, next(iter(arrays.values())))


def format_profile(profile: RunProfile, with_backend: bool = True) -> str:
    """Table: step, device, kind, ms, share; then runtime overhead, total, engine/numpy split."""
    return _format_profile(profile, with_backend)


def parity(a: dict, b: dict) -> list[ParityRow]:
    """Rows (output, cosine, max_abs, max_rel) comparing `a` against the reference `b`."""
    return compare(a, b)
