"""Build the DFC model script (.alls) for one segment from the target's `[compile]` settings.

`compile_settings` is a plain dict (the `[compile]` table of target.toml), so this module does not
depend on the target loader. Keys (all optional; a key set to None drops its command):

| key                          | default  | emitted as |
|------------------------------|----------|------------|
| optimization_level           | 2        | model_optimization_flavor(optimization_level, compression_level, batch..) |
| compression_level            | 0        | (same command) |
| calibration_batch_size       | 8        | batch_size of flavor and of model_optimization_config |
| calibset_size                | 1024     | model_optimization_config(calibration, batch_size=.., calibset_size=..) |
| compiler_optimization_level  | "max"    | performance_param(compiler_optimization_level=..) |
| allocator_timeout            | "25m"    | allocator_param(timeout=..) |
| resources                    | (below)  | resources_param(..) |
| extra                        | []       | lines appended verbatim |

`resources` defaults to {strategy="greedy", max_compute_utilization=0.8, max_memory_utilization=0.8}.

Command spellings follow Hailo's model zoo .alls files (see /work/shared/HAILO.md); they have not been
checked against a real DFC here.
"""

from __future__ import annotations

import re
from typing import NamedTuple

DEFAULT_COMPILE_SETTINGS: dict = {
    "optimization_level": 2,
    "compression_level": 0,
    "calibration_batch_size": 8,
    "calibset_size": 1024,
    "compiler_optimization_level": "max",
    "allocator_timeout": "25m",
    "resources": {"strategy": "greedy", "max_compute_utilization": 0.8, "max_memory_utilization": 0.8},
    "extra": [],
}

# Below this many calibration samples the DFC falls back to optimization level 0 (HAILO.md).
MIN_FULL_CALIB = 1024
LOW_CALIB_WARNING = "the DFC drops to optimization level 0 with fewer than 1024 calibration samples"

# A value must be one simple token: anything else could inject a second command into the script.
_TOKEN = re.compile(r"^[A-Za-z0-9_.+-]+$")


class ModelScript(NamedTuple):
    text: str
    warnings: list


def _token(key: str, value) -> str:
    if isinstance(value, bool):
        raise ValueError(f"compile setting {key}: expected a number or word, got {value!r}")
    text = str(value)
    if not _TOKEN.match(text):
        raise ValueError(f"compile setting {key}: {value!r} is not a plain token")
    return text


def _level(key: str, value, allowed) -> str:
    if value not in allowed:
        raise ValueError(f"compile setting {key}: {value!r} not in {sorted(map(str, allowed))}")
    return _token(key, value)


def merged_settings(compile_settings: dict | None) -> tuple[dict, list]:
    """Defaults overlaid with `compile_settings`; unknown keys are reported, not fatal."""
    settings = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULT_COMPILE_SETTINGS.items()}
    warnings = []
    for key, value in (compile_settings or {}).items():
        if key not in DEFAULT_COMPILE_SETTINGS:
            warnings.append(f"unknown [compile] setting {key!r} ignored (known: {', '.join(DEFAULT_COMPILE_SETTINGS)})")
            continue
        if key == "resources" and isinstance(value, dict):
            # A partial table overrides only the keys it names.
            settings["resources"] = {**DEFAULT_COMPILE_SETTINGS["resources"], **value}
        else:
            settings[key] = value
    return settings, warnings


def build_model_script(
    compile_settings: dict | None = None, n_calib: int | None = None, user_script: str | None = None
) -> ModelScript:
    """Model script text and warnings. `n_calib` is the number of calibration samples the segment
    will get; `user_script` (e.g. a --model-script file's text) is appended last so it can override."""
    s, warnings = merged_settings(compile_settings)
    lines = []
    batch = s["calibration_batch_size"]
    if s["optimization_level"] is not None or s["compression_level"] is not None:
        args = []
        if s["optimization_level"] is not None:
            args.append("optimization_level=" + _level("optimization_level", s["optimization_level"], range(5)))
        if s["compression_level"] is not None:
            args.append("compression_level=" + _level("compression_level", s["compression_level"], range(6)))
        if batch is not None:
            args.append("batch_size=" + _token("calibration_batch_size", batch))
        lines.append(f"model_optimization_flavor({', '.join(args)})")
    if batch is not None or s["calibset_size"] is not None:
        args = ["calibration"]
        if batch is not None:
            args.append("batch_size=" + _token("calibration_batch_size", batch))
        if s["calibset_size"] is not None:
            args.append("calibset_size=" + _token("calibset_size", s["calibset_size"]))
        lines.append(f"model_optimization_config({', '.join(args)})")
    if s["compiler_optimization_level"] is not None:
        level = _level("compiler_optimization_level", s["compiler_optimization_level"], ("max", 0, 1, 2))
        lines.append(f"performance_param(compiler_optimization_level={level})")
    if s["allocator_timeout"] is not None:
        lines.append(f"allocator_param(timeout={_token('allocator_timeout', s['allocator_timeout'])})")
    if s["resources"]:
        args = ", ".join(f"{k}={_token('resources.' + k, v)}" for k, v in s["resources"].items())
        lines.append(f"resources_param({args})")
    extra = s["extra"] or []
    if isinstance(extra, str):
        extra = [extra]
    lines.extend(str(line).rstrip() for line in extra)
    if user_script:
        lines.extend(user_script.rstrip().splitlines())

    if n_calib is not None:
        level = s["optimization_level"]
        if n_calib < MIN_FULL_CALIB and (level is None or level > 0):
            warnings.append(f"only {n_calib} calibration samples: {LOW_CALIB_WARNING}")
        size = s["calibset_size"]
        if size is not None and MIN_FULL_CALIB <= n_calib < int(size):
            warnings.append(f"calibset_size={size} but only {n_calib} samples are available")
    return ModelScript("\n".join(lines) + "\n", warnings)
