"""Randomized differential testing of rules: build instances, rewrite, compare with onnxruntime.

Instances cycle through the value regimes of instances.py (normal, wide, boundary) and through
every op of the rule's op variables. A failing rule comes with a counter-example: the instance's
shapes, attributes and worst element, saved as an ONNX model plus an .npz of its inputs (and the
outputs before / after the rewrite) so it can be replayed.
"""

from __future__ import annotations

import collections
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import onnxruntime as ort

from .driver import apply_rules
from .errors import RuleError
from .float64 import reference64
from .instances import REGIMES, InstanceBuilder, Reject
from .rules import RuleSet
from .trace import trace_rule

ort.set_default_logger_severity(3)  # invalid random draws are expected; keep stderr quiet


@dataclass
class VerifyResult:
    rule: str
    passed: bool
    instances: int
    max_abs_err: float
    max_rel_err: float
    message: str
    counterexample: dict | None = field(default=None, repr=False)
    max_scaled_err: float = 0.0  # error / max(1, max |output|): comparable across value regimes

    def __str__(self) -> str:
        status = "ok  " if self.passed else "FAIL"
        head = (
            f"{status} {self.rule}: {self.instances} instances, max abs {self.max_abs_err:.3g},"
            f" max rel {self.max_rel_err:.3g}  {self.message}"
        ).rstrip()
        return head + "".join(f"\n       {line}" for line in describe(self.counterexample))


def describe(cx: dict | None) -> list[str]:
    """Lines that show a counter-example to a person."""
    if not cx:
        return []
    lines = []
    if cx.get("ops"):
        lines.append("ops: " + ", ".join(f"{k} = {v}" for k, v in cx["ops"].items()))
    lines.append("inputs: " + ", ".join(f"{n} {s} {d}" for n, (s, d) in cx["inputs"].items()))
    for name, value in cx.get("constants", {}).items():
        lines.append(f"constant {name} = {value}")
    for node, attrs in cx.get("attributes", {}).items():
        if attrs:
            lines.append(f"{node} attributes: " + ", ".join(f"{k}={v}" for k, v in attrs.items()))
    if cx.get("worst"):
        lines.append("worst: " + cx["worst"])
    if cx.get("model"):
        lines.append(f"saved: {cx['model']} (inputs and outputs in {cx['data']})")
    return lines


def _run(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    opts = ort.SessionOptions()
    opts.log_severity_level = 4  # invalid random draws fail at run time too: not an error
    # no graph optimizations: compare our rewrite, not onnxruntime's own fusions
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def _first_line(e: Exception) -> str:
    s = str(e).strip().splitlines()
    return (s[0] if s else type(e).__name__)[:300]


def _tolerance(dtype, rtol: float, atol: float) -> tuple[float, float]:
    """Tolerances scaled to the element type: float16 keeps about 3 decimal digits."""
    eps = float(np.finfo(dtype).eps) if np.dtype(dtype).kind == "f" else 0.0
    return max(rtol, 8 * eps), max(atol, 8 * eps)


def _show(a: np.ndarray) -> str:
    a = np.asarray(a)
    if a.size <= 8:
        return np.array2string(a.reshape(-1), precision=8, separator=", ")
    return f"{list(a.shape)} in [{float(np.min(a)):.6g}, {float(np.max(a)):.6g}]"


def _counterexample(model: onnx.ModelProto, feeds: dict, ops: dict, ref=None, got=None, worst: str = "") -> dict:
    g = model.graph
    cx = {
        "ops": dict(ops),
        "inputs": {vi.name: (list(np.shape(feeds[vi.name])), str(np.asarray(feeds[vi.name]).dtype)) for vi in g.input},
        "constants": {t.name: _show(onnx.numpy_helper.to_array(t)) for t in g.initializer},
        "attributes": {
            n.name or f"{n.op_type}#{i}": {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
            for i, n in enumerate(g.node)
        },
        "worst": worst,
    }
    cx["_model"], cx["_feeds"], cx["_ref"], cx["_got"] = model, feeds, ref, got
    return cx


def _worst(feeds: dict, a: np.ndarray, b: np.ndarray, err: np.ndarray, name: str) -> str:
    idx = np.unravel_index(int(np.nanargmax(np.where(np.isnan(err), np.inf, err))), err.shape)
    text = f"{name}{list(map(int, idx))}: {float(a[idx]):.9g} before, {float(b[idx]):.9g} after the rewrite"
    same = [
        f"{k}{list(map(int, idx))} = {float(np.asarray(v)[idx]):.9g}"
        for k, v in feeds.items()
        if np.shape(v) == a.shape
    ]
    return text + (f", at input {', '.join(same)}" if same else "")


def save_counterexample(cx: dict, folder: Path, rule: str) -> None:
    """Write the instance as ONNX + .npz (inputs; outputs as expected/NAME and rewritten/NAME)."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", rule)
    model_path, data_path = folder / f"{stem}.onnx", folder / f"{stem}.npz"
    onnx.save(cx["_model"], str(model_path))
    arrays = {k: np.asarray(v) for k, v in cx["_feeds"].items()}
    outs = [o.name for o in cx["_model"].graph.output]
    for prefix, values in (("expected", cx.get("_ref")), ("rewritten", cx.get("_got"))):
        for name, v in zip(outs, values or []):
            arrays[f"{prefix}/{name}"] = np.asarray(v)
    np.savez(data_path, **arrays)
    cx["model"], cx["data"] = str(model_path), str(data_path)


def verify_rule(
    rule,
    samples: int = 5,
    seed: int = 0,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    max_attempts: int | None = None,
    time_budget: float = 30.0,
    allow_unbuilt: bool = False,
    target=None,
    counterexamples: str | Path | None = None,
) -> VerifyResult:
    """Test `rule` on random instances: at least `samples`, and at least one per op of its op
    variables. `target` gives the facts `where:` may read; a failing instance is saved under
    `counterexamples` (default: a new temporary folder)."""
    if rule.pins_only:  # annotations only: no value can change
        return VerifyResult(rule.name, True, 0, 0.0, 0.0, "host pins only: values unchanged")
    rng = np.random.default_rng(seed)
    builder = InstanceBuilder(rule, rng)
    assignments = builder.op_assignments()
    built = [0] * len(assignments)
    samples = max(samples, len(assignments))
    rules = RuleSet([rule])
    reasons: collections.Counter = collections.Counter()
    done, max_abs, max_rel, max_scaled = 0, 0.0, 0.0, 0.0
    arbitrated = 0  # instances whose float32 outputs differed within what float64 shows is rounding
    attempts = max_attempts or samples * 60
    t0 = time.perf_counter()

    def fail(message: str, cx: dict) -> VerifyResult:
        folder = Path(counterexamples) if counterexamples else Path(tempfile.mkdtemp(prefix="rule-cx-"))
        save_counterexample(cx, folder, rule.name)
        return VerifyResult(rule.name, False, done + 1, max_abs, max_rel, message, cx)

    for attempt in range(attempts):
        if done >= samples or time.perf_counter() - t0 > time_budget:
            break
        # the op choice with the fewest instances yet (ties in turn), so every op gets some
        pick = min(range(len(assignments)), key=lambda i: (built[i], (i - attempt) % len(assignments)))
        ops = assignments[pick]
        try:
            model, feeds = builder.build(REGIMES[done % len(REGIMES)], ops)
            onnx.checker.check_model(model)
            ref = _run(model, feeds)
        except Reject as e:
            reasons[str(e)] += 1
            continue
        except Exception as e:  # noqa: BLE001  (onnx checker / onnxruntime refused the draw)
            reasons[f"invalid model: {_first_line(e)}"] += 1
            continue
        graph = gs.import_onnx(model)
        tracer = trace_rule(rule.name)
        try:
            events = apply_rules(graph, rules, tracer=tracer, target=target)
        except RuleError as e:
            return fail(f"rewrite failed: {_first_line(e)}", _counterexample(model, feeds, ops, ref))
        if not events:  # where-clause (or shape constraints) not met by this draw
            why = next(
                (ln for ln in tracer.lines() if "where" in ln or "attribute" in ln),
                tracer.lines()[-1] if tracer.lines() else "rule did not fire",
            )
            reasons[why.split("): ", 1)[-1]] += 1
            continue
        try:
            out = gs.export_onnx(graph)
            out.opset_import[0].version = model.opset_import[0].version
            onnx.checker.check_model(out)
            got = _run(out, feeds)
        except Exception as e:  # noqa: BLE001  (checker or onnxruntime, any type)
            if "NOT_IMPLEMENTED" in str(e):  # onnxruntime lacks a kernel for this type: not the rule's fault
                reasons[f"onnxruntime cannot run the rewrite: {_first_line(e)}"] += 1
                continue
            return fail(f"rewritten model is invalid: {_first_line(e)}", _counterexample(model, feeds, ops, ref))
        exact = None  # the instance in float64, computed when a float32 comparison fails
        excused = False  # some output of this instance passed on the float64 result
        for k, (o, a, b) in enumerate(zip(model.graph.output, ref, got)):
            if a.shape != b.shape or a.dtype != b.dtype:
                return fail(
                    f"output {o.name} changed from {list(a.shape)} {a.dtype} to {list(b.shape)} {b.dtype}",
                    _counterexample(model, feeds, ops, ref, got),
                )
            if a.dtype.kind not in "fc":
                if not np.array_equal(a, b):
                    return fail("integer/bool outputs differ", _counterexample(model, feeds, ops, ref, got))
                continue
            r_tol, a_tol = _tolerance(a.dtype, rtol, atol)
            a64, b64 = a.astype(np.float64), b.astype(np.float64)
            same = (np.isnan(a64) & np.isnan(b64)) | (a64 == b64)  # also equal infs
            with np.errstate(invalid="ignore"):  # inf - inf where only one side is inf: NaN, not same
                err = np.where(same, 0.0, np.abs(a64 - b64))
            finite = np.abs(a64[np.isfinite(a64)])
            scale = max(1.0, float(finite.max()) if finite.size else 1.0)
            rel = err / (np.abs(a64) + 1e-12)
            if not np.all(np.isnan(err)):  # (nanmax warns on an all-NaN array: outputs NaN on both sides)
                max_abs = max(max_abs, float(np.nanmax(err)))
                max_scaled = max(max_scaled, float(np.nanmax(err)) / scale)
            if not np.all(np.isnan(rel)):
                max_rel = max(max_rel, float(np.nanmax(rel)))
            bad = ~((err <= a_tol * scale + r_tol * np.abs(a64)) | same)
            if np.any(bad):
                if exact is None:
                    exact = reference64(model, feeds) or []
                if exact:  # the original's own rounding, or the rule? the float64 instance says
                    bad &= ~_rewrite_as_close(b64, exact[k].astype(np.float64), r_tol, a_tol, scale)
                    if not np.any(bad):
                        excused = True
                        continue
                worst = _worst(feeds, a64, b64, np.where(bad, err, 0.0), o.name)
                return fail(
                    f"outputs differ on instance {done + 1} ({REGIMES[done % len(REGIMES)]} "
                    f"values): max abs error {float(np.nanmax(np.where(bad, err, 0))):.3g} "
                    f"(shape {list(a.shape)})",
                    _counterexample(model, feeds, ops, ref, got, worst),
                )
        done += 1
        arbitrated += excused
        built[pick] += 1
    if done == 0:
        top = reasons.most_common(1)[0][0] if reasons else "no attempts"
        msg = f"not verified (could not build an instance: {top})"
        return VerifyResult(rule.name, allow_unbuilt, 0, 0.0, 0.0, msg)
    notes = [] if done >= samples else [f"only {done} of {samples} instances built"]
    if arbitrated:
        notes.append(
            f"{arbitrated} instance(s) judged against float64: onnxruntime's float32 original was "
            "off by more than the tolerance, the rewrite within it of the float64 result"
        )
    return VerifyResult(rule.name, True, done, max_abs, max_rel, "; ".join(notes), max_scaled_err=max_scaled)


def _rewrite_as_close(b: np.ndarray, exact: np.ndarray, rtol: float, atol: float, scale: float):
    """Elements where the rewrite's float32 result `b` is within tolerance of the float64 result:
    there the original's float32 result is the one off (a rewrite exact in real numbers that loses
    precision in float32 stays out of tolerance, and fails)."""
    return np.abs(b - exact) <= atol * scale + rtol * np.abs(exact)


def verify_rules(rules, samples: int = 5, seed: int = 0, allow_unbuilt: bool = False, **kw) -> list[VerifyResult]:
    """Verify every rule; see verify_rule. Results are in rule-set order."""
    with np.errstate(all="ignore"):  # extreme values overflow in helpers and comparisons by design
        return [verify_rule(r, samples, seed + i, allow_unbuilt=allow_unbuilt, **kw) for i, r in enumerate(rules)]
