"""Instructions a whole `rewrite` process executes (valgrind's cachegrind), where wall time on a
shared machine is too noisy to show a change of a few percent: the count is the same run after run.

    python benchmarks/bench_instructions.py [--model M.onnx] [--tree OTHER_CHECKOUT] [--onnxslim]

Without --model it exports the full-size ConvTasNet example (examples/convtasnet.py, 16,000 samples).
--tree counts the same command with another checkout's code (an A/B of a change: `git worktree add
/tmp/base HEAD~1`); --onnxslim counts `onnxslim` on the same file too. Instructions are not time:
memory traffic, page faults and the second thread's overlap are not in them (docs/tiling.md gives
both). Needs valgrind; slow (about 50x the process's own time).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def count(cmd: list[str], cwd: Path) -> int:
    """Instructions executed by the process `cmd` (run in `cwd`; its threads included)."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "cachegrind.log"
        valgrind = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        subprocess.run([*valgrind, f"--log-file={log}", *cmd], cwd=cwd, check=True, stdout=subprocess.DEVNULL, env=env)
        refs = re.findall(r"I\s+refs:\s+([\d,]+)", log.read_text())
    if not refs:
        raise RuntimeError(f"cachegrind printed no instruction count for {cmd}")
    return sum(int(r.replace(",", "")) for r in refs)


def _example(folder: Path) -> Path:
    spec = importlib.util.spec_from_file_location("convtasnet_example", ROOT / "examples" / "convtasnet.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.export(folder / "example.onnx", 16000, conv1d=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="an ONNX file (default: the full-size ConvTasNet example)")
    ap.add_argument("--tree", type=Path, help="another checkout of this repository to count as well")
    ap.add_argument("--onnxslim", action="store_true", help="also count onnxslim on the same file")
    args = ap.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: no instruction counts (apt install valgrind)")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = args.model.resolve() if args.model else _example(tmp)
        trees = [("this tree", ROOT)] + ([("--tree", args.tree.resolve())] if args.tree else [])
        figures = {}
        for label, tree in trees:
            # `python -m` from the checkout runs its code (the current folder comes first on sys.path);
            # a warm-up run first, so both counts include a filled rule-parse cache
            cmd = [sys.executable, "-m", "rewriter.cli", str(model), "-o", str(tmp / "plan"), "-q"]
            subprocess.run(cmd, cwd=tree, check=True, stdout=subprocess.DEVNULL)
            figures[label] = count(cmd, tree)
        if args.onnxslim:
            slim = shutil.which("onnxslim")
            if slim is None:
                print("onnxslim not installed (pip install onnxslim)")
            else:
                figures["onnxslim"] = count([slim, str(model), str(tmp / "slim.onnx")], tmp)
    base = figures["this tree"]
    for label, n in figures.items():
        print(f"{label:10s} {n / 1e9:7.3f} G instructions  {n / base:6.3f}x this tree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
