"""Plan: load a plan directory once, run it many times.

Per run the work is a flat loop over precompiled steps: gather inputs from a name -> array dict,
call the segment / stitch op, store outputs, drop tensors whose last consumer has run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .backends import BACKENDS, Backend, OrtBackend, Segment, choose_backend
from .calib import split_samples
from .errors import PlanError
from .profile import RunProfile, StepProfile
from .schema import PlanSpec, StepSpec, TensorSpec, last_uses, load_spec
from .stitch import make_stitch
from .tiles import TiledOp, batch_inputs, check_tiled_binding
from .validation import check_binding
from .view import ViewOp


@dataclass
class _Op:
    step: StepSpec
    runner: object  # Segment or StitchOp: .run(list) -> list
    is_stitch: bool
    free: list[str]


class Plan:
    def __init__(self, spec: PlanSpec, host: OrtBackend, accel: Backend, backend_name: str, reason: str):
        self.spec = spec
        self.backend_name = backend_name
        self.backend_reason = reason
        self._host, self._accel = host, accel
        self.last_profile: RunProfile | None = None
        self.load_seconds = 0.0
        free = last_uses(spec)
        self._ops: list[_Op] = []
        for step, dead in zip(spec.steps, free):
            if step.is_stitch:
                runner = make_stitch(step)
            elif step.device == "host" and step.raw.get("view") is not None:
                runner = ViewOp(step)  # a pure layout change: a numpy view, no session
            else:
                runner = (accel if step.device == "hailo" else host).open(step.model_path, step)
                if step.tiles is not None:
                    if hasattr(runner, "output_shapes"):  # what the writer's validation checks
                        check_tiled_binding(
                            step,
                            list(zip(runner.input_names, runner.input_shapes)),
                            list(zip(runner.output_names, runner.output_shapes)),
                            spec.tensors,
                        )
                    runner = TiledOp(step, runner, spec.tensors)
                else:
                    check_binding(step, runner.input_names, runner.output_names)
            self._ops.append(_Op(step, runner, step.is_stitch or isinstance(runner, ViewOp), dead))
        self._input_specs = {t.name: t for t in spec.inputs}
        try:
            self._input_checks = [(t.name, tuple(t.shape), np.dtype(t.dtype), t) for t in spec.inputs]
        except TypeError as e:
            raise PlanError(f"{spec.path}: bad input dtype ({e})") from e
        consumed = {t for s in spec.steps for t in s.inputs} | {t.name for t in spec.outputs}
        self._unused_inputs = [t.name for t in spec.inputs if t.name not in consumed]
        self._output_names = [t.name for t in spec.outputs]
        self._tensors = set(self._input_specs) | {t for s in spec.steps for t in s.outputs}
        self._compile()

    def _compile(self) -> None:
        """Flatten the ops into the tuples the run loop iterates over."""
        self._fast = [
            (op.runner.run, tuple(op.step.inputs), tuple(op.step.outputs), tuple(op.free)) for op in self._ops
        ]
        # What each step must produce, as plan.json declares it (checked after every step: a
        # swapped or stale segment file fails loudly instead of feeding garbage onward).
        declared = self.spec.tensors
        self._declared = [
            tuple((n, declared[n].shape, np.dtype(declared[n].dtype)) for n in op.step.outputs) for op in self._ops
        ]
        # Runners whose outputs may live in buffers reused across runs (stitch ops, hailo segments).
        self._buffer_owners = [
            op.runner for op in self._ops if op.is_stitch or type(op.runner).buffers is not Segment.buffers
        ]

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        out,
        backend: str = "auto",
        *,
        intra_op_num_threads: int | None = None,
        calibration: dict | None = None,
        hailo_timeout_ms: int = 10000,
        int8_cache_dir=None,
    ) -> Plan:
        """Load OUT/plan.json and open every segment (one session per distinct model file).

        backend: "auto" (hailo if hailo_platform imports and every hailo step's HEF exists, else
        onnxruntime), "onnxruntime", "hailo", or "emulate-int8". Host steps always use onnxruntime.
        calibration: {plan input: array (N, ...)} for emulate-int8 steps without a `calib` file.
        intra_op_num_threads: onnxruntime threads per session; None: 1 (no thread pool, see
        backends/ort_backend.py for why), 0: onnxruntime's default pool, without spinning.
        """
        if backend not in BACKENDS:
            raise PlanError(f"unknown backend {backend!r} (expected one of {', '.join(BACKENDS)})")
        t0 = time.perf_counter()
        spec = load_spec(out)
        name, reason = choose_backend(spec, backend)
        host = OrtBackend(intra_op_num_threads, reader=spec.read_file)
        if name == "onnxruntime":
            accel = host
        elif name == "hailo":
            from .backends.hailo_backend import HailoBackend

            accel = HailoBackend(timeout_ms=hailo_timeout_ms, reader=spec.read_file)
        else:
            from .backends.int8_emulation import Int8EmulationBackend

            capture = _Capture(spec, host, calibration)
            accel = Int8EmulationBackend(spec, host, capture, int8_cache_dir)
        try:
            plan = cls(spec, host, accel, name, reason)
        except BaseException:
            accel.close()
            raise
        plan.load_seconds = time.perf_counter() - t0  # validation, file checks, sessions / HEFs
        return plan

    def close(self) -> None:
        """Release sessions and (hailo) the configured models and the VDevice."""
        self._accel.close()
        self._host.close()
        self._ops = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- introspection ------------------------------------------------------------------------
    @property
    def inputs(self) -> list[TensorSpec]:
        return list(self.spec.inputs)

    @property
    def outputs(self) -> list[TensorSpec]:
        return list(self.spec.outputs)

    @property
    def steps(self) -> list[StepSpec]:
        return list(self.spec.steps)

    # ---- execution ----------------------------------------------------------------------------
    def _check_inputs(self, inputs: dict) -> dict:
        if not isinstance(inputs, dict):
            raise PlanError("plan.run expects a dict {input name: array}")
        env = {}
        for name, shape, dtype, t in self._input_checks:
            x = inputs.get(name)
            if x is None:
                unknown = [k for k in inputs if k not in self._input_specs]
                raise PlanError(
                    f"missing input {name!r} (shape {list(t.shape)}, {t.dtype})"
                    + (f"; got unknown input(s) {unknown}" if unknown else "")
                )
            if type(x) is not np.ndarray:
                x = np.asarray(x)
            if x.shape != shape and not t.shape_matches(x.shape):  # exact tuple compare first: cheap
                raise PlanError(f"input {name!r} has shape {list(x.shape)}, the plan expects {list(t.shape)}")
            if x.dtype != dtype:
                raise PlanError(f"input {name!r} has dtype {x.dtype}, the plan expects {t.dtype}")
            env[name] = x
        if len(inputs) != len(env):
            unknown = [k for k in inputs if k not in self._input_specs]
            raise PlanError(f"unknown input(s) {unknown}; the plan's inputs are {list(self._input_specs)}")
        for name in self._unused_inputs:
            del env[name]
        return env

    def run(self, inputs: dict, keep=None, profile: bool = False) -> dict:
        """Run the plan. Returns {output: array} in plan.json order, then the `keep` tensors.

        profile=True records per-step timings in `self.last_profile` (a RunProfile).
        Returned arrays never alias the runtime's reusable buffers.
        """
        t_start = time.perf_counter()
        keep = list(keep or ())
        if keep:
            unknown = [k for k in keep if k not in self._tensors]
            if unknown:
                raise PlanError(f"keep: unknown tensor(s) {unknown}")
        env = self._check_inputs(inputs)
        keep_set = set(keep)
        if profile:
            timings = self._run_profiled(env, keep_set)
        else:
            self._run_fast(env, keep_set)
        result = {n: env[n] for n in self._output_names}
        for n in keep:
            result.setdefault(n, env[n])
        self._detach(result)
        if profile:
            self.last_profile = self._make_profile(timings, time.perf_counter() - t_start)
        return result

    def _schedule(self, keep: set):
        """(run, input names, output names, names to drop) per step; cached for the no-keep case."""
        if not keep:
            return self._fast
        return [(r, i, o, tuple(n for n in f if n not in keep)) for r, i, o, f in self._fast]

    def _run_fast(self, env: dict, keep: set) -> None:
        # The hot loop: plain tuples and locals, ~1 us per step of Python on a desktop CPU.
        for (run, ins, _, free), declared in zip(self._schedule(keep), self._declared):
            res = run([env[n] for n in ins])
            for v, (n, shape, dtype) in zip(res, declared):
                if v.shape != shape or v.dtype != dtype:
                    self._bad_output(n, v, shape, dtype)
                env[n] = v
            for n in free:
                del env[n]

    def _bad_output(self, name: str, value, shape, dtype) -> None:
        step = next(op.step.name for op in self._ops if name in op.step.outputs)
        raise PlanError(
            f"step '{step}' produced {name!r} as {list(value.shape)} {value.dtype}, but plan.json "
            f"declares {list(shape)} {dtype} (segment file does not match the plan?)"
        )

    def _run_profiled(self, env: dict, keep: set) -> list[tuple[float, float, float]]:
        perf = time.perf_counter
        timings = []  # (wall, engine, stitching) per step; StepProfile objects are built after the clock stops
        for (run, ins, _, free), op, declared in zip(self._schedule(keep), self._ops, self._declared):
            args = [env[n] for n in ins]
            t0 = perf()
            res = run(args)
            wall = perf() - t0
            if op.is_stitch:
                timings.append((wall, 0.0, wall))
            else:  # a tiled step's gather and scatter are host stitching too
                timings.append((wall, op.runner.last_backend_seconds, getattr(op.runner, "last_stitch_seconds", 0.0)))
            for v, (n, shape, dtype) in zip(res, declared):
                if v.shape != shape or v.dtype != dtype:
                    self._bad_output(n, v, shape, dtype)
                env[n] = v
            for n in free:
                del env[n]
        return timings

    def _make_profile(self, timings, total: float) -> RunProfile:
        steps = [
            StepProfile(
                op.step.name,
                op.step.device,
                "view" if isinstance(op.runner, ViewOp) else op.step.kind,
                wall,
                eng,
                stitch,
            )
            for op, (wall, eng, stitch) in zip(self._ops, timings)
        ]
        return RunProfile(steps, total, self.backend_name)

    def _detach(self, result: dict) -> None:
        """Copy results that may alias a buffer the next run will overwrite (in place)."""
        bufs = [b for r in self._buffer_owners for b in r.buffers()]
        if not bufs:
            return
        for n, v in result.items():
            if not isinstance(v, np.ndarray):
                continue
            # numpy collapses view chains, so a view's .base is the array owning the memory.
            root = v if v.base is None else v.base
            if any(root is b for b in bufs) or (
                not isinstance(root, np.ndarray) and any(np.may_share_memory(v, b) for b in bufs)
            ):
                result[n] = v.copy()

    def run_batch(self, batch, keep=None, profile: bool = False) -> list[dict]:
        return [self.run(inputs, keep=keep, profile=profile) for inputs in batch]

    def __repr__(self):
        return f"Plan({str(self.spec.root)!r}, steps={len(self.spec.steps)}, backend={self.backend_name!r})"


class _Capture:
    """For emulate-int8: inputs each hailo step sees when the float plan runs on `calibration`.

    Runs lazily (only if some step has no calib file), once for all steps, reusing the host
    backend's sessions so the float models are loaded once.
    """

    def __init__(self, spec: PlanSpec, host: OrtBackend, calibration: dict | None):
        self.spec, self.host, self.calibration = spec, host, calibration
        self._captured: dict[str, list[list[np.ndarray]]] | None = None

    def __call__(self, step: StepSpec):
        if self.calibration is None:
            return None
        if self._captured is None:
            float_plan = Plan(self.spec, self.host, self.host, "onnxruntime", "calibration capture")
            wanted = [s for s in self.spec.hailo_steps if s.calib_path is None]
            keep = sorted({t for s in wanted for t in s.inputs})
            runs = [float_plan.run(feed, keep=keep) for feed in split_samples(self.calibration, self.spec.inputs)]
            self._captured = {
                s.name: [sample for r in runs for sample in self._samples(s, [r[t] for t in s.inputs])] for s in wanted
            }
        return self._captured.get(step.name)

    def _samples(self, step: StepSpec, xs: list) -> list[list[np.ndarray]]:
        """The model's inputs for one run of the plan: one sample, or one per time tile."""
        if step.tiles is None:
            return [xs]
        batch = batch_inputs(step, self.spec.tensors, xs)
        return [[b[t : t + 1] for b in batch] for t in range(step.tiles.frames)]
