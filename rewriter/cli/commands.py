"""The verbs behind the CLI; each returns an exit code. User mistakes raise UserError."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

from rewriter.errors import UserError


def parse_input_shapes(specs: list[str] | None) -> dict[str, list[int]]:
    """`["imu_window=1,100,9", ...]` -> {"imu_window": [1, 100, 9]}. Sizes are bounded by what a plan
    may hold (runtime.schema.MAX_ELEMENTS per tensor); one input given twice is an error."""
    from rewriter.ir.validate import MAX_DIM
    from runtime.schema import MAX_ELEMENTS

    shapes: dict[str, list[int]] = {}
    for spec in specs or []:
        name, sep, dims = spec.rpartition("=")
        try:
            values = [int(d) for d in dims.split(",")] if sep and name else None
        except ValueError:
            values = None
        if not values or any(v <= 0 for v in values):
            raise UserError(f"bad --input-shape {spec!r:.200}: expected NAME=D1,D2,... with positive integers")
        if max(values) > MAX_DIM or math.prod(values) > MAX_ELEMENTS:
            raise UserError(
                f"--input-shape {name}: {values} is larger than the rewriter accepts (at most {MAX_DIM} "
                f"per dimension, {MAX_ELEMENTS} elements per tensor)"
            )
        if name in shapes:
            raise UserError(f"--input-shape {name} given twice ({shapes[name]} and {values}): give each input once")
        shapes[name] = values
    return shapes


def _progress(args, message: str) -> None:
    if not getattr(args, "quiet", False):
        print(message, file=sys.stderr, flush=True)


def _options(args):
    from rewriter.ir.freeze import parse_freeze
    from rewriter.pipeline import RewriteOptions

    for path in args.rules:
        if not path.is_file():
            raise UserError(f"no such rule file: {path}")
    for flag in ("tile_channels", "tile_width"):
        value = getattr(args, flag)
        if value is not None and value <= 0:
            raise UserError(f"--{flag.replace('_', '-')} must be a positive integer, got {value}")
    for path in args.helpers:
        if not path.is_file():
            raise UserError(f"--helpers {path}: no such file")
    if args.normalize:  # a bad --normalize file fails before loading and passes, not after
        from passes.normalize_input import read_stats

        if not args.normalize.is_file():
            raise UserError(f"no such --normalize file: {args.normalize}")
        read_stats(args.normalize)
    return RewriteOptions(
        input_shapes=parse_input_shapes(args.input_shape),
        rule_files=list(args.rules),
        start_nodes=list(args.start_node),
        end_nodes=list(args.end_node),
        debug=args.debug,
        trace_rule=list(args.trace_rule),
        normalize=args.normalize,
        disabled_rules=list(args.disable_rule),
        helper_files=list(args.helpers),
        rules_first=args.rules_first,
        frozen=parse_freeze(args.freeze),
        keep_narrow_floats=args.keep_float16,
    )


def _target(args):
    from rewriter.target import load_target

    return load_target(args.target).with_tiling(args.tile_channels, args.tile_width)


def _rewrite(args):
    from rewriter.pipeline import rewrite

    target = _target(args)
    options = _options(args)
    if not args.model.is_file():
        raise UserError(f"no such model file: {args.model}")
    _progress(args, f"rewriting {args.model} for {target.name} ...")
    result = rewrite(args.model, target, options)
    _progress(args, "  " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in result.timings.items()))
    return target, result


def _report(args, result, doc) -> None:
    from rewriter.cli.summary import pass_summary, placement_summary

    if args.explain:
        print("Passes:")
        print(pass_summary(result.manager))
        for line in result.manager.explain():
            print(line)
    for name in dict.fromkeys(args.trace_rule):
        print(f"Trace of rule {name}:")
        for line in result.traces.get(name) or ["no candidate node: nothing in the graph has the rule's anchor op"]:
            print("  " + line)
    if args.json:
        print(
            json.dumps(
                {
                    "target": doc["target"],
                    "counts": doc["counts"],
                    "steps": doc["steps"],
                    "placement": doc["placement"],
                    "causes": doc.get("causes", []),
                    "widening": doc.get("widening"),
                },
                indent=2,
            )
        )
    else:
        print(placement_summary(doc))


def cmd_inspect(args) -> int:
    target, result = _rewrite(args)
    _report(args, result, result.document(target, args.model))
    return 0


def cmd_convert(args) -> int:
    from rewriter.pipeline import rewrite_to_plan

    out = args.output or args.model.with_name(args.model.stem + ".plan")
    if out.resolve() == args.model.resolve():
        raise UserError("-o must not be the model file itself")
    if out.resolve() in args.model.resolve().parents:
        raise UserError("-o must not be a folder that holds the model file")
    target = _target(args)
    options = _options(args)
    if not args.model.is_file():
        raise UserError(f"no such model file: {args.model}")
    calib = None
    if args.calib:
        from rewriter.plan.calibration import read_calibration_file

        calib = read_calibration_file(args.calib)  # before the expensive work: fail early
    _progress(args, f"rewriting {args.model} for {target.name} ...")
    result, doc, warnings = rewrite_to_plan(
        args.model, out, target, options, calib=calib, progress=lambda m: _progress(args, m)
    )
    _progress(args, "  " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in result.timings.items()))
    _report(args, result, doc)
    for line in warnings:
        print(line, file=sys.stderr)
    _progress(args, f"plan written to {out}")
    return 0


def _load_plan(path: Path, backend: str, **kwargs):
    from runtime import Plan

    if not (path / "plan.json").is_file():
        raise UserError(f"{path} is not a plan folder (no plan.json)")
    return Plan.load(path, backend=backend, **kwargs)


def cmd_run(args) -> int:
    from runtime.cli_support import format_profile, load_inputs

    plan = _load_plan(args.plan, args.backend)
    try:
        inputs = load_inputs(args.input, plan)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    if args.repeat < 1:
        raise UserError("--repeat must be at least 1")
    if args.save is not None:
        _check_save_folder(args.save)
    for _ in range(args.repeat):
        outputs = plan.run(inputs, profile=args.profile)
    print(f"backend: {plan.backend_name} ({plan.backend_reason})")
    for name, value in outputs.items():
        flat = np.asarray(value).ravel()
        preview = ", ".join(f"{v:.5g}" for v in flat[:6]) + (", ..." if flat.size > 6 else "")
        print(f"{name}: shape {list(value.shape)} {value.dtype} [{preview}]")
        if args.save:
            _save_output(args.save, name, value)
    if args.profile:
        print(format_profile(plan.last_profile, with_backend=False))  # the backend line is above
        sessions = len({s.model_path for s in plan.steps if s.model_path is not None})
        print(f"{'Plan.load:':<18}{plan.load_seconds * 1e3:9.3f} ms  ({sessions} model files)")
    return 0


def _check_save_folder(folder: Path) -> None:
    """--save DIR: a folder (made if missing); checked before the run so nothing is half saved."""
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--save {folder}: exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--save {folder}: cannot create the folder ({exc.strerror or exc})") from exc


def _save_output(folder: Path, name: str, value) -> None:
    path = folder / f"{''.join(c if c.isalnum() or c in '._-' else '_' for c in name)}.npy"
    try:
        np.save(path, value)
    except OSError as exc:
        raise UserError(f"--save: cannot write {path} ({exc.strerror or exc})") from exc


def cmd_check(args) -> int:
    from rewriter.cli.check import check_plan

    return check_plan(args)


def cmd_rules(args) -> int:
    from rewriter.cli.rules import rules_command

    return rules_command(args)


def cmd_compile(args) -> int:
    from rewriter.toolchain.compile_cli import run

    return run(args)


def cmd_cache(args) -> int:
    from rewriter.toolchain.cache_cli import run

    return run(args)


def cmd_serve(args) -> int:  # runtime/ only (a Pi-light install has it); OptionError maps to one line
    from runtime.serve.options import run

    return run(args)


def cmd_bench(args) -> int:
    from runtime.bench.options import run

    return run(args)
