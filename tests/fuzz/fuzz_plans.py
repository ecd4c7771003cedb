"""Random mutations of valid plan folders, reproducible from (seed, index).

Base plans are written by `rewrite` from fuzz graphs: with Hailo steps, tiled (slice/concat stitch
steps), with calibration files, with an If. A mutation copies one base and applies 1-3 edits:
to plan.json (any value replaced by a hostile one: paths out of the folder, huge and negative
numbers, wrong types, control characters, deep nesting; keys deleted or added; steps duplicated,
dropped, reordered; a step pointed at another segment file) and to the files (a segment or calib
file replaced by a symlink to the canary outside the folder, `segments/` a symlink, files
truncated or swapped, plan.json a symlink). Half of the time `files` is then re-hashed, as someone
who edits the folder could, so that the checks behind the hashes are exercised too.
A canary folder outside every plan holds the targets; opening any of them is a read outside.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path

import numpy as np
from fuzz_graphs import GraphFuzzer
from fuzz_harness import run_cli

EVIL = [
    None,
    True,
    False,
    -1,
    0,
    1,
    2**63,
    -(2**63),
    10**11,
    1e11,
    1e308,
    -0.0,
    float("nan"),
    "",
    "x",
    "0",
    "a\nb",
    "\x00",
    "\u202e",
    "host",
    "hailo",
    "onnx",
    "slice",
    "float64",
    "int64",
    "../../canary/canary.onnx",
    "@CANARY@/canary.onnx",
    "segments/../../canary/canary.onnx",
    "segments/../plan.json",
    "/etc/passwd",
    "/proc/self/environ",
    "segments",
    ".",
    "..",
    "plan.json",
    "x" * 5000,
    [],
    {},
    [1, 2],
    [[1]],
    {"a": 1},
    [-1, 3],
    [0],
    [2**30, 2**30],
    [1, 1, 1, 1, 1, 1, 1, 1, 1],
]


DEEP = "@DEEP@"  # replaced in the written text by 3,000 nested lists (json.dumps would recurse)


class PlanMutator:
    def __init__(self, seed: int, workdir: Path, n_bases: int = 4):
        self.seed = seed
        self.workdir = Path(workdir)
        self.canary = self.workdir / "canary"
        self.bases = self._bases(n_bases)
        self._canary()

    # ---- bases and canary ----------------------------------------------------------------------------
    def _bases(self, wanted: int) -> list[Path]:
        """Plans with hailo steps, stitch steps (tiling), calibration and an If, from fuzz graphs."""
        fuzzer = GraphFuzzer(self.seed + 7919)
        bases, kinds = [], set()
        folder = self.workdir / "bases"
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(200):
            if len(bases) >= wanted:
                break
            gen = fuzzer.generate(index)
            import onnx

            model = folder / f"{gen.name}.onnx"
            onnx.save(gen.model, str(model))
            plan = folder / f"{gen.name}.plan"
            args = [model, "-o", plan, "-q"]
            shape = [d.dim_value for d in gen.model.graph.input[0].type.tensor_type.shape.dim]
            if len(gen.model.graph.input) == 1 and len(bases) % 2 == 1:
                np.save(
                    folder / f"{gen.name}.npy",
                    np.random.default_rng(index).standard_normal((4, *shape[1:])).astype(np.float32),
                )
                args += ["--calib", folder / f"{gen.name}.npy"]
            if len(bases) == 2:
                args += ["--tile-width", "8"]
            if run_cli(args)[0] != 0:
                continue
            doc = json.loads((plan / "plan.json").read_text())
            kind = (
                any(s["device"] == "hailo" for s in doc["steps"]),
                any(s.get("kind") != "onnx" for s in doc["steps"]),
                "If" in gen.ops,
            )
            if kind in kinds and index < 150:
                continue
            kinds.add(kind)
            bases.append(plan)
        return bases

    def _canary(self) -> None:
        """Files outside every plan that mutations point at: valid-looking, so only confinement stops them."""
        (self.canary / "segments").mkdir(parents=True, exist_ok=True)
        base = self.bases[0]
        doc = json.loads((base / "plan.json").read_text())
        model = next(s["model"] for s in doc["steps"] if s.get("model"))
        shutil.copy(base / model, self.canary / "canary.onnx")
        for f in (base / "segments").iterdir():
            shutil.copy(f, self.canary / "segments" / f.name)
        np.save(self.canary / "canary.npy", np.zeros((4, 1, 2, 2), np.float32))
        shutil.copy(base / "plan.json", self.canary / "plan.json")

    # ---- one mutation ---------------------------------------------------------------------------------
    def mutate(self, index: int) -> tuple[Path, list[str]]:
        rng = np.random.default_rng([self.seed, index])
        base = self.bases[int(rng.integers(len(self.bases)))]
        folder = self.workdir / "cases" / f"m{index}"
        if folder.exists():
            shutil.rmtree(folder)
        shutil.copytree(base, folder, symlinks=True)
        doc = json.loads((folder / "plan.json").read_text())
        done = []
        for _ in range(int(rng.integers(1, 4))):
            op = str(rng.choice(JSON_OPS + FILE_OPS, p=WEIGHTS))
            done.append(op + ": " + str(MUTATIONS[op](self, rng, doc, folder)))
        if rng.random() < 0.5 and isinstance(doc, dict):
            from runtime.schema import file_entry

            # the attacker keeps the hashes consistent (for files in the folder or the canary only)
            doc["files"] = {rel: file_entry(path) for rel, path in self._hashable(doc, folder)}
            done.append("files re-hashed")
        if not (folder / "plan.json").is_symlink():
            text = json.dumps(doc, allow_nan=True).replace(json.dumps(DEEP), "[" * 3000 + "]" * 3000)
            (folder / "plan.json").write_text(text)
        return folder, done

    # ---- plan.json edits ------------------------------------------------------------------------------
    def _paths(self, doc) -> list[tuple]:
        """Every (container, key) in the document."""
        out, stack = [], [doc]
        while stack:
            node = stack.pop()
            items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
            for k, v in items:
                out.append((node, k))
                if isinstance(v, (dict, list)):
                    stack.append(v)
        return out

    def set_value(self, rng, doc, folder):
        node, key = self._paths(doc)[int(rng.integers(len(self._paths(doc))))]
        value = copy.deepcopy(EVIL[int(rng.integers(len(EVIL)))]) if rng.random() < 0.85 else DEEP
        if isinstance(value, str):
            value = value.replace("@CANARY@", str(self.canary))
        node[key] = value
        return f"{key!r} = {str(value)[:40]!r}"

    def delete_key(self, rng, doc, folder):
        dicts = [(n, k) for n, k in self._paths(doc) if isinstance(n, dict)] or [(doc, "steps")]
        node, key = dicts[int(rng.integers(len(dicts)))]
        node.pop(key, None)
        return repr(key)

    def add_key(self, rng, doc, folder):
        dicts = [n for n, _ in self._paths(doc) if isinstance(n, dict)] + [doc]
        node = dicts[int(rng.integers(len(dicts)))]
        key = str(
            rng.choice(
                [
                    "model",
                    "calib",
                    "hef",
                    "view",
                    "tile",
                    "pad",
                    "axis",
                    "start",
                    "end",
                    "compile_status",
                    "kind",
                    "device",
                    "x",
                ]
            )
        )
        node[key] = copy.deepcopy(EVIL[int(rng.integers(len(EVIL)))])
        return f"{key!r} = {str(node[key])[:40]!r}"

    def shuffle_steps(self, rng, doc, folder):
        steps = doc.get("steps")
        if not isinstance(steps, list) or not steps:
            return "no steps"
        how = rng.integers(4)
        i = int(rng.integers(len(steps)))
        if how == 0:
            steps.insert(int(rng.integers(len(steps) + 1)), copy.deepcopy(steps[i]))
            return f"step {i} duplicated"
        if how == 1:
            steps.pop(i)
            return f"step {i} dropped"
        if how == 2:
            j = int(rng.integers(len(steps)))
            steps[i], steps[j] = steps[j], steps[i]
            return f"steps {i} and {j} swapped"
        steps.reverse()
        return "steps reversed"

    def retarget_model(self, rng, doc, folder):
        steps = doc.get("steps") if isinstance(doc.get("steps"), list) else []
        steps = [s for s in steps if isinstance(s, dict) and s.get("model")]
        files = sorted(str(p.relative_to(folder)) for p in (folder / "segments").glob("*.onnx"))
        if not steps or not files:
            return "nothing to retarget"
        step = steps[int(rng.integers(len(steps)))]
        step["model"] = files[int(rng.integers(len(files)))]
        return f"{step.get('name')} -> {step['model']}"

    def tensor_decl(self, rng, doc, folder):
        table = doc.get("tensors")
        if not isinstance(table, dict) or not table:
            return "no tensors"
        name = sorted(table)[int(rng.integers(len(table)))]
        entry = table[name]
        if isinstance(entry, dict) and isinstance(entry.get("shape"), list) and entry["shape"] and rng.random() < 0.6:
            k = int(rng.integers(len(entry["shape"])))
            entry["shape"][k] = (
                max(1, int(entry["shape"][k]) + int(rng.choice([-1, 1, 7])))
                if isinstance(entry["shape"][k], int)
                else 1
            )
            return f"{name} shape {entry['shape']}"
        if isinstance(entry, dict):
            entry["dtype"] = str(rng.choice(["float64", "float16", "int8", "int64", "bool"]))
        return f"{name} dtype"

    # ---- file edits -----------------------------------------------------------------------------------
    def _referenced(self, doc, folder) -> list[Path]:
        """Regular files inside `folder` the steps name (never anything a hostile path reaches: the
        fuzzer must not write outside its own folders)."""
        inside = []
        for rel in _named_paths(doc):
            path = folder / rel
            try:
                if (
                    path.is_file()
                    and not path.is_symlink()
                    and not path.parent.is_symlink()
                    and path.resolve().is_relative_to(folder.resolve())
                ):
                    inside.append(path)
            except OSError:  # a name too long for the file system: not a file to edit
                continue
        return inside

    def _hashable(self, doc, folder):
        for rel in _named_paths(doc):
            path = folder / rel
            try:
                real = path.resolve() if path.exists() else None
            except OSError:  # a name too long for the file system: nothing to hash
                real = None
            if (
                real
                and real.is_file()
                and (real.is_relative_to(folder.resolve()) or real.is_relative_to(self.canary.resolve()))
            ):
                yield rel, real

    def symlink_out(self, rng, doc, folder):
        files = self._referenced(doc, folder)
        if not files:
            return "no file"
        victim = files[int(rng.integers(len(files)))]
        target = self.canary / ("canary.npy" if victim.suffix in (".npy", ".npz") else "canary.onnx")
        victim.unlink()
        victim.symlink_to(target if rng.random() < 0.5 else os.path.relpath(target, victim.parent))
        return f"{victim.relative_to(folder)} -> {target}"

    def symlink_segments(self, rng, doc, folder):
        if (folder / "segments").is_symlink():
            (folder / "segments").unlink()
        else:
            shutil.rmtree(folder / "segments")
        (folder / "segments").symlink_to(self.canary / "segments")
        return "segments/ -> canary"

    def symlink_plan_json(self, rng, doc, folder):
        (folder / "plan.json").unlink()
        (folder / "plan.json").symlink_to(self.canary / "plan.json")
        return "plan.json -> canary"

    def damage_file(self, rng, doc, folder):
        files = self._referenced(doc, folder)
        if len(files) < 1:
            return "no file"
        a = files[int(rng.integers(len(files)))]
        if rng.random() < 0.5 and len(files) > 1:
            b = files[int(rng.integers(len(files)))]
            da, db = a.read_bytes(), b.read_bytes()
            a.write_bytes(db)
            b.write_bytes(da)
            return f"{a.name} <-> {b.name}"
        data = a.read_bytes()
        a.write_bytes(data[: int(rng.integers(0, max(1, len(data))))])
        return f"{a.name} truncated"


JSON_OPS = ["set_value", "delete_key", "add_key", "shuffle_steps", "retarget_model", "tensor_decl"]
FILE_OPS = ["symlink_out", "symlink_segments", "symlink_plan_json", "damage_file"]
WEIGHTS = np.array([30, 10, 10, 8, 6, 8, 10, 3, 2, 8], float)
WEIGHTS /= WEIGHTS.sum()
MUTATIONS = {name: getattr(PlanMutator, name) for name in JSON_OPS + FILE_OPS}


def _named_paths(doc) -> list[str]:
    """The paths the steps of a (possibly mangled) plan document name, by the schema's own list."""
    from runtime.schema import referenced_files

    if not isinstance(doc, dict) or not isinstance(doc.get("steps"), list):
        return []
    return sorted(set(referenced_files(doc)))
