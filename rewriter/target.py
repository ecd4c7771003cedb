"""Target descriptions (rules/<name>/target.toml): what a Hailo segment may hold, as data."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from rewriter.errors import UserError

RULES_DIR = Path(__file__).resolve().parent.parent / "rules"
GROUP_POLICIES = ("dense", "dense_or_depthwise", "any")
GROUP_SPLITS = ("auto", "block_diagonal", "per_group")


@dataclass(frozen=True)
class OpConstraint:
    """What a target accepts of one op: ranks, constant inputs, attributes, groups."""

    ranks: tuple[int, ...]
    const_inputs: tuple[int, ...] = ()
    attrs: dict = field(default_factory=dict)
    groups: str = "any"
    output_ranks: tuple[int, ...] = ()
    group_split: str = "auto"
    block_diagonal_max_groups: int = 4
    within: str = ""  # only as part of this composite (rewriter/ir/composites.py), e.g. "gelu"

    def allows_conv(self, kind: str) -> bool:
        """Whether the `groups` policy admits a conv of this kind (rewriter.ir.opfacts.conv_kind)."""
        return kind == "dense" or self.groups == "any" or (kind == "depthwise" and self.groups == "dense_or_depthwise")


@dataclass(frozen=True)
class Resources:
    """The Hailo resource model the tiler packs against ([resources] in target.toml,
    docs/tiling.md). A layer's activation is counted per row of the dataflow: channels x width of
    every rank-4 tensor it reads or writes (H streams row by row and does not count)."""

    layer_row_values: int = 131072  # max channels x width of one layer's tensor
    max_width: int | None = None  # max W of any tensor (None: only the row budget limits W)
    min_tile_width: int = 64  # narrower tiles only when a stage's halo is smaller
    hef_weight_bytes: int = 24_000_000  # int8 weights of one tiled-stage HEF
    hef_layers: int = 96  # layers of one tiled-stage HEF


@dataclass(frozen=True)
class TilingLimits:
    """Resources plus the strict per-layer overrides ([tiling] channels / width, or
    --tile-channels / --tile-width): every conv <= `channels` in and out, every tensor <= `width`."""

    channels: int | None = None
    width: int | None = None
    resources: Resources = field(default_factory=Resources)

    @property
    def strict(self) -> bool:
        return self.channels is not None or self.width is not None


@dataclass(frozen=True)
class Target:
    """A target description (rules/<name>/target.toml): ops, limits, rule files, tiling."""

    name: str
    arch: str
    path: Path
    description: str
    segment_opset: int
    ranks: tuple[int, ...]
    dtypes: tuple[str, ...]
    ops: dict[str, OpConstraint]
    rule_files: tuple[Path, ...]
    tiling: TilingLimits
    roundtrip_macs: int
    compile: dict
    host_reasons: dict = field(default_factory=dict)  # op -> why it stays on the host

    def with_tiling(self, channels: int | None = None, width: int | None = None) -> Target:
        from dataclasses import replace

        tiling = replace(
            self.tiling, channels=channels or self.tiling.channels, width=width or self.tiling.width
        )  # strict overrides
        return replace(self, tiling=tiling)


def available_targets() -> list[str]:
    return sorted(p.parent.name for p in RULES_DIR.glob("*/target.toml"))


def resolve_target_path(spec: str) -> Path:
    candidate = Path(spec)
    if candidate.suffix == ".toml" or candidate.is_file():
        if not candidate.is_file():
            raise UserError(f"no such target file: {spec}")
        return candidate.resolve()
    builtin = RULES_DIR / spec / "target.toml"
    if not builtin.is_file():
        raise UserError(
            f"unknown target {spec!r}: built-in targets are {', '.join(available_targets())}, "
            "or pass a path to a target.toml"
        )
    return builtin


def load_target(spec: str) -> Target:
    path = resolve_target_path(spec)
    data = _read(path, ())
    try:
        return _build(path, data)
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{path}: bad target description: {exc}") from exc


def _read(path: Path, chain: tuple) -> dict:
    """The target's table with `extends = "parent"` resolved: the parent's tables, overlaid key by
    key with this file's (tables merge, other values replace); `exclude_ops` drops parent ops.
    Rule paths become absolute, so a child may extend a target in another folder."""
    if path in chain:
        raise UserError(f"{path}: 'extends' makes a cycle ({' -> '.join(p.parent.name for p in (*chain, path))})")
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not a valid target file: {exc}") from exc
    if isinstance(data.get("rules"), list):
        data["rules"] = [str((path.parent / rel).resolve()) for rel in data["rules"]]
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise UserError(f"{path}: 'extends' must name a target (or a path to its target.toml)")
    base = parent if parent.endswith(".toml") else None
    parent_path = (path.parent / base).resolve() if base else resolve_target_path(parent)
    merged = _read(parent_path, (*chain, path))
    for op in data.pop("exclude_ops", []):
        merged.get("ops", {}).pop(op, None)
    return _overlay(merged, data)


def _overlay(base: dict, top: dict) -> dict:
    out = dict(base)
    for key, value in top.items():
        out[key] = _overlay(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out


def _build(path: Path, data: dict) -> Target:
    segment = data.get("segment", {})
    ranks = tuple(segment.get("ranks", [4]))
    ops = {}
    for op, spec in data.get("ops", {}).items():
        groups = spec.get("groups", "any")
        if groups not in GROUP_POLICIES:
            raise ValueError(f"ops.{op}.groups must be one of {GROUP_POLICIES}, got {groups!r}")
        ops[op] = OpConstraint(
            ranks=tuple(spec.get("ranks", ranks)),
            const_inputs=tuple(spec.get("const_inputs", ())),
            attrs=dict(spec.get("attrs", {})),
            groups=groups,
            output_ranks=tuple(spec.get("output_ranks", ())),
            group_split=spec.get("group_split", "auto"),
            block_diagonal_max_groups=int(spec.get("block_diagonal_max_groups", 4)),
            within=str(spec.get("within", "")),
        )
        if ops[op].group_split not in GROUP_SPLITS:
            raise ValueError(f"ops.{op}.group_split must be one of {GROUP_SPLITS}")
    rule_files = []
    for rel in data.get("rules", []):
        rule_path = (path.parent / rel).resolve()
        if not rule_path.is_file():
            raise ValueError(f"rule file {Path(rel).name!r} listed in 'rules' does not exist")
        rule_files.append(rule_path)
    tiling = data.get("tiling", {})
    res = data.get("resources", {})
    unknown = set(res) - set(Resources.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown [resources] key(s) {sorted(unknown)}")
    resources = Resources(**{k: (None if k == "max_width" and not v else int(v)) for k, v in res.items()})
    if (
        min(
            v
            for v in (
                resources.layer_row_values,
                resources.min_tile_width,
                resources.hef_weight_bytes,
                resources.hef_layers,
            )
        )
        <= 0
    ):
        raise ValueError("[resources] values must be positive")
    return Target(
        name=data["name"],
        arch=data.get("arch", data["name"]),
        path=path,
        description=data.get("description", ""),
        segment_opset=int(segment.get("opset", 17)),
        ranks=ranks,
        dtypes=tuple(segment.get("dtypes", ["float32"])),
        ops=ops,
        rule_files=tuple(rule_files),
        tiling=TilingLimits(
            channels=_positive(tiling.get("channels"), "tiling.channels"),
            width=_positive(tiling.get("width"), "tiling.width"),
            resources=resources,
        ),
        roundtrip_macs=int(data.get("partition", {}).get("roundtrip_macs", 0)),
        compile=dict(data.get("compile", {})),
        host_reasons={str(k): str(v) for k, v in data.get("host_reasons", {}).items()},
    )


def _positive(value, key: str) -> int | None:
    if value is None:
        return None
    if int(value) <= 0:
        raise ValueError(f"{key} must be a positive integer")
    return int(value)
