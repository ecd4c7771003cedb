"""Run fuzz cases and classify what happened.

Graphs (fuzz_graphs.py) go through `rewrite` and `rewrite check`, in-process through the CLI's
main(), each under a time bound:
  ok        plan written, check passed
  refused   one-line user error (exit 2) from `rewrite`: listed for review, not a crash
  crash     anything else: exit 3 (internal error), a traceback, a multi-line error, a hang,
            a plan that `rewrite check` refuses
  parity    `rewrite check` exit 1 on a model that should be exact; models with Round are judged
            element by element instead (a Round may flip where its input sits on a .5 boundary,
            which float reassociation legitimately moves): a flip away from a boundary, or any
            mismatch when nothing flipped, is a parity failure; a flip at a boundary is `rounding`
Plan mutations (fuzz_plans.py) go through Plan.load and a run, with every file open watched:
  accepted / refused (PlanError)   fine
  traceback                        any other exception
  outside                          a file outside the plan folder was opened (audit hook on
                                   Python's open, inotify on the canary files for opens by
                                   onnxruntime's C++ or anything else)
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import signal
import struct
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
GRAPH_TIMEOUT = 300
PLAN_TIMEOUT = 60


class Hang(BaseException):
    """Raised by the alarm: BaseException, so `except Exception` in the code under test lets it pass."""


@contextlib.contextmanager
def time_bound(seconds: int):
    def alarm(*_):
        raise Hang(f"no result after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run_cli(args: list, timeout: int = GRAPH_TIMEOUT) -> tuple[int | None, str, str]:
    """(exit code, stdout, stderr) of `rewrite ARGS` run in this process; exit code None and the
    traceback in stderr when something escaped main() or the time bound hit."""
    from rewriter.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), time_bound(timeout):
            rc = main([str(a) for a in args])
    except Hang as exc:
        return None, out.getvalue(), f"hang: {exc}"
    except BaseException:  # noqa: BLE001 - SystemExit from argparse, anything main let through
        return None, out.getvalue(), err.getvalue() + traceback.format_exc()
    return rc, out.getvalue(), err.getvalue()


def one_line_user_error(rc, err: str) -> bool:
    return rc == 2 and err.startswith("rewrite: error:") and err.count("\n") == 1 and "Traceback" not in err


def first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    if "Traceback" in text:
        return lines[-1][:300]
    return lines[0][:300]


# ---- graphs -----------------------------------------------------------------------------------------
def fuzz_target(workdir: Path) -> Path:
    """hailo8 without the cost rule, so that small random graphs get Hailo segments too."""
    import re

    src = REPO / "rules" / "hailo8" / "target.toml"
    text = re.sub(r"^roundtrip_macs\s*=\s*\d+", "roundtrip_macs = 0", src.read_text(), count=1, flags=re.M)
    text = re.sub(r'^name\s*=\s*"hailo8"', 'name = "hailo8-fuzz"', text, count=1, flags=re.M)
    text = re.sub(
        r"^rules\s*=\s*\[([^\]]*)\]",
        lambda m: (
            "rules = ["
            + ", ".join(f'"{src.parent / r.strip().strip(chr(34))}"' for r in m.group(1).split(",") if r.strip())
            + "]"
        ),
        text,
        count=1,
        flags=re.M,
    )
    path = workdir / "hailo8-fuzz.toml"
    path.write_text(text)
    return path


MODES = ("shipped", "no-cost-rule", "tiled")


def rewrite_args(gen, workdir: Path, modes=MODES) -> list:
    """Per case, one of the modes: the hailo8 target as shipped; without the cost rule (small
    graphs get Hailo segments too); without it and with tiling limits small enough that most
    graphs are tiled."""
    mode = MODES.index(modes[gen.index % len(modes)])
    if mode == 0:
        return []
    args = ["--target", fuzz_target(workdir)]
    if mode == 2:
        args += ["--tile-channels", str(8 * (1 + gen.index % 4)), "--tile-width", str(8 + gen.index % 29)]
    return args


def check_graph(gen, workdir: Path, modes=MODES) -> dict:
    import onnx

    workdir.mkdir(parents=True, exist_ok=True)
    model_path = workdir / f"{gen.name}.onnx"
    onnx.save(gen.model, str(model_path))
    plan = workdir / f"{gen.name}.plan"
    args = rewrite_args(gen, workdir, modes)
    rc, _, err = run_cli([model_path, "-o", plan, "-q", *args])
    if rc != 0:
        status = "refused" if one_line_user_error(rc, err) else "crash"
        return {
            "status": status,
            "stage": "rewrite",
            "detail": first_line(err),
            "ops": gen.ops,
            "args": [str(a) for a in args],
        }
    rc, out, err = run_cli(["check", plan, "--against", model_path, "--samples", "2"])
    if rc == 0:
        return {"status": "ok", "ops": gen.ops}
    if rc == 1:
        if gen.rounded:
            return judge_rounding(gen, plan) | {"ops": gen.ops}
        return {"status": "parity", "stage": "check", "detail": out.strip().splitlines()[-2:], "ops": gen.ops}
    return {"status": "crash", "stage": "check", "detail": first_line(err), "ops": gen.ops}


def judge_rounding(gen, plan_dir: Path, samples: int = 2) -> dict:
    """Element-wise verdict for a model with Round (see the module doc)."""
    import onnxruntime as ort
    from fuzz_graphs import random_inputs

    from runtime import Plan

    session = ort.InferenceSession(gen.model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    plan = Plan.load(plan_dir, backend="onnxruntime")
    boundary_flips = 0
    for seed in range(samples):
        feeds = random_inputs(gen.model, seed)
        want = dict(zip(names, session.run(names, feeds)))
        got = plan.run(feeds)
        for pre, post in gen.rounded:
            flipped = got[post] != want[post]
            if not flipped.any():
                continue
            frac = np.abs(np.abs(want[pre][flipped]) % 1.0 - 0.5)
            if (frac > 1e-3).any():
                return {"status": "parity", "stage": "round", "detail": f"{post} differs away from a .5 boundary"}
            boundary_flips += int(flipped.sum())
        if boundary_flips:
            continue
        for name in names:
            a, b = np.asarray(got[name], np.float64), np.asarray(want[name], np.float64)
            scale = float(np.abs(b).max()) or 1.0
            if float(np.abs(a - b).max()) > 1e-4 * scale:
                return {"status": "parity", "stage": "round", "detail": f"{name} differs with no Round flipped"}
    return {"status": "rounding" if boundary_flips else "ok", "detail": f"{boundary_flips} flips at .5"}


# ---- watching file opens ------------------------------------------------------------------------------
class _Inotify:
    """Opens of any file in the watched folders, by any code (C++ included); Linux only."""

    IN_ACCESS, IN_OPEN = 0x1, 0x20

    def __init__(self, folders: list[Path]):
        self.fd = -1
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
            for folder in folders:
                if libc.inotify_add_watch(self.fd, os.fsencode(folder), self.IN_OPEN | self.IN_ACCESS) < 0:
                    raise OSError(ctypes.get_errno(), "inotify_add_watch")
        except (OSError, AttributeError):
            self.fd = -1

    @property
    def available(self) -> bool:
        return self.fd >= 0

    def drain(self) -> list[str]:
        names = []
        while self.fd >= 0:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            offset = 0
            while offset < len(data):
                _, _, _, length = struct.unpack_from("iIII", data, offset)
                raw = data[offset + 16 : offset + 16 + length]
                names.append(raw.rstrip(b"\0").decode(errors="replace"))
                offset += 16 + length
        return names


class OpenWatch:
    """Records the files opened while armed that lie outside the allowed folders."""

    def __init__(self, canary: Path, allowed: list[Path]):
        self.allowed = (
            [str(Path(p).resolve()) for p in allowed]
            + [str(Path(p).resolve()) for p in {sys.prefix, sys.base_prefix, REPO}]
            + ["/proc", "/dev", "/sys"]
        )
        # onnxruntime.quantization's own working folder (emulate-int8): files it wrote itself
        self.own_temp = os.path.join(os.path.realpath(tempfile.gettempdir()), "ort.quant.")
        self.canary = canary
        self.inotify = _Inotify([canary] + [p for p in canary.iterdir() if p.is_dir()])
        self.armed_for: Path | None = None
        self.seen: list[str] = []
        sys.addaudithook(self._hook)

    def _hook(self, event, args):
        if self.armed_for is None or event != "open" or not args or not isinstance(args[0], (str, bytes, os.PathLike)):
            return
        path = os.path.abspath(os.fsdecode(args[0]))
        real = os.path.realpath(path)
        inside = str(self.armed_for)
        for candidate in {path, real}:
            if candidate == inside or candidate.startswith(inside + os.sep):
                continue
            if candidate.startswith(self.own_temp):
                continue
            if not any(candidate == a or candidate.startswith(a + os.sep) for a in self.allowed):
                self.seen.append(candidate)
                return

    @contextlib.contextmanager
    def armed(self, folder: Path):
        self.inotify.drain()
        self.seen = []
        self.armed_for = Path(folder).resolve()
        try:
            yield
        finally:
            self.armed_for = None
        self.seen += [f"{self.canary}/{name} (inotify)" for name in self.inotify.drain()]


def check_plan(
    folder: Path,
    watch: OpenWatch,
    backend: str = "onnxruntime",
    int8_cache: Path | None = None,
    calibration: dict | None = None,
) -> dict:
    from runtime import Plan, PlanError

    result = {"status": "accepted"}
    try:
        with watch.armed(folder), time_bound(PLAN_TIMEOUT):
            plan = Plan.load(folder, backend=backend, int8_cache_dir=int8_cache, calibration=calibration)
            rng = np.random.default_rng(0)
            feeds = {t.name: rng.standard_normal(t.shape).astype(t.dtype) for t in plan.inputs}
            plan.run(feeds)
            plan.close()
    except PlanError as exc:
        result = {"status": "refused", "detail": first_line(str(exc))}
    except (Exception, Hang):  # noqa: BLE001 - anything else is what the fuzzer is looking for
        result = {"status": "traceback", "detail": first_line(traceback.format_exc())}
    if watch.seen:
        result["outside"] = sorted(set(watch.seen))
    return result
