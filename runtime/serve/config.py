"""What `rewrite serve` was asked to do, and the mapping from plan outputs to response keys."""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import OptionError

STUB_ENV = "USE_REAL_MODEL"  # the seed sidecar's switch: USE_REAL_MODEL=0 serves stub outputs


@dataclass
class ServeConfig:
    plan: Path
    host: str = "127.0.0.1"
    port: int = 9000
    backend: str = "auto"  # Plan.load backend for the hailo steps
    threads: int = 1  # onnxruntime intra-op threads per session (1: no pool to spin)
    workers: int = 1  # plan instances, each on its own thread (one device: 1)
    queue_size: int = 16  # requests waiting beyond the running ones before 503
    max_body_bytes: int = 1 << 20  # larger bodies get 413 unread
    stub: bool = False  # deterministic stub outputs, no plan run
    stub_reason: str = ""
    fallback: bool = True  # hailo run failure -> reload the plan on onnxruntime
    warmup_runs: int = 3
    output_names: str | None = None  # --output-names SPEC (see output_keys)

    def validate(self) -> None:
        for name, low in (("threads", 1), ("workers", 1), ("queue_size", 0), ("max_body_bytes", 1), ("warmup_runs", 0)):
            if getattr(self, name) < low:
                raise OptionError(f"--{name.replace('_', '-')} must be at least {low}, got {getattr(self, name)}")
        if not 0 <= self.port <= 65535:
            raise OptionError(f"--port must be 0..65535, got {self.port}")


def stub_requested(flag: bool, environ=os.environ) -> tuple[bool, str]:
    """(serve stubs?, why) from --stub and USE_REAL_MODEL (0/false/no/off mean stubs)."""
    if flag:
        return True, "--stub"
    value = environ.get(STUB_ENV)
    if value is not None and value.strip().lower() in ("0", "false", "no", "off"):
        return True, f"{STUB_ENV}={value}"
    return False, ""


def output_keys(spec: str | None, plan_outputs: list[str]) -> dict[str, str]:
    """Response key per plan output, from --output-names.

    SPEC is one of: `latent,motif_scores` (one key per plan output, in plan.json order);
    `latent_embeddings=latent` (pairs; outputs not named keep their name); or a .toml / .json file
    holding that mapping as a flat table ({plan output: key}, TOML: top level or an [outputs] table).
    """
    if not spec:
        return {n: n for n in plan_outputs}
    path = Path(spec)
    if path.suffix.lower() in (".toml", ".json"):
        mapping = _read_mapping(path)
    elif "=" in spec:
        mapping = {}
        for pair in spec.split(","):
            name, sep, key = (s.strip() for s in pair.partition("="))
            if not sep or not name or not key:
                raise OptionError(f"--output-names: bad pair {pair!r} (expected PLAN_OUTPUT=KEY)")
            mapping[name] = key
    else:
        keys = [k.strip() for k in spec.split(",")]
        if len(keys) != len(plan_outputs) or not all(keys):
            raise OptionError(
                f"--output-names: {len(keys)} name(s) for {len(plan_outputs)} plan output(s) {plan_outputs}"
            )
        mapping = dict(zip(plan_outputs, keys))
    unknown = [n for n in mapping if n not in plan_outputs]
    if unknown:
        raise OptionError(f"--output-names: {unknown} not among the plan's outputs {plan_outputs}")
    keys = {n: mapping.get(n, n) for n in plan_outputs}
    if len(set(keys.values())) != len(keys):
        raise OptionError(f"--output-names: two outputs map to the same key ({keys})")
    return keys


def _read_mapping(path: Path) -> dict[str, str]:
    try:
        text = path.read_text()
        doc = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except FileNotFoundError:
        raise OptionError(f"--output-names: no such file {path}") from None
    except (OSError, ValueError) as e:  # TOMLDecodeError and JSONDecodeError are ValueErrors
        raise OptionError(f"--output-names: cannot read {path}: {e}") from e
    if isinstance(doc, dict) and isinstance(doc.get("outputs"), dict):
        doc = doc["outputs"]
    if not isinstance(doc, dict) or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in doc.items()):
        raise OptionError(f"--output-names: {path} must map plan output names to response keys (strings)")
    return dict(doc)
