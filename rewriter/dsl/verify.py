"""Randomized differential testing of rules: build instances, rewrite, compare with onnxruntime."""
from __future__ import annotations

import collections
import time
from dataclasses import dataclass

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import onnxruntime as ort

from .driver import apply_rules
from .errors import RuleError
from .instances import InstanceBuilder, Reject
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

    def __str__(self) -> str:
        status = "ok  " if self.passed else "FAIL"
        return (f"{status} {self.rule}: {self.instances} instances, max abs {self.max_abs_err:.3g},"
                f" max rel {self.max_rel_err:.3g}  {self.message}").rstrip()


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


def verify_rule(rule, samples: int = 5, seed: int = 0, rtol: float = 1e-5, atol: float = 1e-6,
                max_attempts: int | None = None, time_budget: float = 30.0,
                allow_unbuilt: bool = False) -> VerifyResult:
    rng = np.random.default_rng(seed)
    builder = InstanceBuilder(rule, rng)
    rules = RuleSet([rule])
    reasons: collections.Counter = collections.Counter()
    done, max_abs, max_rel = 0, 0.0, 0.0
    attempts = max_attempts or samples * 60
    t0 = time.perf_counter()
    for _ in range(attempts):
        if done >= samples or time.perf_counter() - t0 > time_budget:
            break
        try:
            model, feeds = builder.build()
            onnx.checker.check_model(model)
            ref = _run(model, feeds)
        except Reject as e:
            reasons[str(e)] += 1
            continue
        except Exception as e:  # onnx checker / onnxruntime refused the draw
            reasons[f"invalid model: {_first_line(e)}"] += 1
            continue
        graph = gs.import_onnx(model)
        tracer = trace_rule(rule.name)
        try:
            events = apply_rules(graph, rules, tracer=tracer)
        except RuleError as e:
            return VerifyResult(rule.name, False, done + 1, max_abs, max_rel,
                                f"rewrite failed: {_first_line(e)}")
        if not events:  # where-clause (or shape constraints) not met by this draw
            why = next((ln for ln in tracer.lines() if "where" in ln or "attribute" in ln),
                       tracer.lines()[-1] if tracer.lines() else "rule did not fire")
            reasons[why.split("): ", 1)[-1]] += 1
            continue
        try:
            out = gs.export_onnx(graph)
            out.opset_import[0].version = model.opset_import[0].version
            onnx.checker.check_model(out)
            got = _run(out, feeds)
        except Exception as e:
            return VerifyResult(rule.name, False, done + 1, max_abs, max_rel,
                                f"rewritten model is invalid: {_first_line(e)}")
        for a, b in zip(ref, got):
            if a.shape != b.shape:
                return VerifyResult(rule.name, False, done + 1, max_abs, max_rel,
                                    f"output shape changed {list(a.shape)} -> {list(b.shape)}")
            if a.dtype.kind not in "fc":
                if not np.array_equal(a, b):
                    return VerifyResult(rule.name, False, done + 1, max_abs, max_rel,
                                        "integer/bool outputs differ")
                continue
            err = np.abs(a.astype(np.float64) - b.astype(np.float64))
            scale = max(1.0, float(np.abs(a).max()) if a.size else 1.0)
            err = np.where((np.isnan(a) & np.isnan(b)) | (a == b), 0.0, err)  # also equal infs
            if a.size:
                max_abs = max(max_abs, float(np.nanmax(err)))
                max_rel = max(max_rel, float(np.nanmax(err / (np.abs(a) + 1e-12))))
            both_nan = (np.isnan(a) & np.isnan(b)) | (a == b)
            if not np.all((err <= atol * scale + rtol * np.abs(a)) | both_nan):
                return VerifyResult(rule.name, False, done + 1, max_abs, max_rel,
                                    f"outputs differ on instance {done + 1}: max abs error "
                                    f"{float(np.nanmax(err)):.3g} (shape {list(a.shape)})")
        done += 1
    if done == 0:
        top = reasons.most_common(1)[0][0] if reasons else "no attempts"
        msg = f"not verified (could not build an instance: {top})"
        return VerifyResult(rule.name, allow_unbuilt, 0, 0.0, 0.0, msg)
    return VerifyResult(rule.name, True, done, max_abs, max_rel,
                        "" if done >= samples else f"only {done} of {samples} instances built")


def verify_rules(rules, samples: int = 5, seed: int = 0, allow_unbuilt: bool = False,
                 **kw) -> list[VerifyResult]:
    """Verify every rule; see verify_rule. Results are in rule-set order."""
    return [verify_rule(r, samples, seed + i, allow_unbuilt=allow_unbuilt, **kw)
            for i, r in enumerate(rules)]
