"""The plan format: plan.json parsed and validated into typed, read-only specs. The one authority on
the format: the rewriter validates every plan it writes with this module, the runtime loads with it,
the toolchain edits plans through it. Pure standard library (no numpy, no onnxruntime), so the Pi
and the compiler share it.

Version 2 (docs/design.md has the full contract):
* every path (`model`, `calib`, `hef`) is relative, made of plain name characters, resolves inside
  the plan folder (symlinks leaving it are refused) and is listed in `files` with its sha256 and
  size; files are verified when read (`PlanSpec.read_file`);
* every tensor a step produces is declared in `tensors` (shape, dtype): stitch steps are checked
  against the declarations at load, every step's outputs at run time;
* step names follow STEP_NAME; tensor names are non-empty text without control characters;
* plan.json is bounded in size and nesting.

Version 3 adds batched tiled steps (`tiles`, below); version-2 plans (without it) still load.
A hailo onnx step with `tiles` runs its model ONCE with a batch of `count` time tiles instead of
binding its tensors positionally (docs/design.md, "Tiled steps"):
* `tiles.inputs`, one per model graph input, in order: a window of a plan tensor
  `{"tensor", "channels": [c0, c1], "start", "step", "width"}` (tile t reads W positions
  [start + t*step, start + t*step + width) of channels [c0, c1), zeros outside the tensor), or a
  0/1 mask `{"mask": {"length", "start", "step", "width", "height"}}` (1 where those positions lie
  in [0, length));
* `tiles.outputs`, one per model graph output: `{"tensor", "channels": [c0, c1], "width", "length"}`,
  tile t writes W positions [t*width, (t+1)*width) of those channels, cropped to the tensor's W
  (`length`, as declared in `tensors`); the blocks of
  one tensor cover its channels exactly once and `count` tiles cover its width (the last may
  stick out).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import PlanError

FORMAT = "hailo-rewriter-plan"
VERSION = 3
READS = (2, 3)  # versions this runtime loads (2: no `tiles`)
STITCH_KINDS = ("slice", "concat", "sum")
KINDS = ("onnx",) + STITCH_KINDS
DEVICES = ("host", "hailo")
DTYPES = (
    "float32",
    "float16",
    "float64",
    "int8",
    "uint8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "uint64",
    "bool",
)
COMPILE_STATUSES = ("compiled", "failed")
PATH_FIELDS = ("model", "calib", "hef")

MAX_PLAN_BYTES = 64 << 20  # plan.json itself
MAX_ELEMENTS = 1 << 28  # any one tensor (1 GiB of float32): a bound on what a plan may allocate
MAX_NAME = 1024
STEP_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,199}")
_PATH_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,199}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class TensorSpec:
    """A plan tensor: name, static shape and dtype name."""

    name: str
    shape: tuple
    dtype: str

    def shape_matches(self, shape) -> bool:
        return tuple(shape) == self.shape


@dataclass(frozen=True)
class FileEntry:
    """A file the plan references: path inside the plan folder, sha256, size in bytes."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Window:
    """Model input: W positions [start + t*step, + width) of channels [c0, c1) of `tensor`."""

    tensor: str
    c0: int
    c1: int
    start: int
    step: int
    width: int


@dataclass(frozen=True)
class Mask:
    """Model input [tiles, 1, height, width]: 1 where start + t*step + j lies in [0, length)."""

    length: int
    start: int
    step: int
    width: int
    height: int


@dataclass(frozen=True)
class Block:
    """Model output: tile t is W positions [t*width, (t+1)*width) of channels [c0, c1) of `tensor`."""

    tensor: str
    c0: int
    c1: int
    width: int
    length: int  # the tensor's W: tiles are cropped to it


@dataclass(frozen=True)
class Tiles:
    """How a batched tiled step runs: its tile count, input windows or masks, output blocks."""

    count: int
    inputs: tuple  # Window | Mask, one per model graph input
    outputs: tuple  # Block, one per model graph output
    batch: int = 1  # N of the step's [N, C, H, W] tensors (all equal): the model runs N*count frames

    @property
    def frames(self) -> int:
        """Model batch per run: frame b*count + t is tile t of batch entry b."""
        return self.batch * self.count


@dataclass
class StepSpec:
    """One validated plan step, its model path resolved inside the plan folder."""

    name: str
    kind: str
    device: str
    inputs: list[str]
    outputs: list[str]
    raw: dict = field(repr=False)  # the step's JSON object, for kind-specific fields (axis, view, tile...)
    model_path: Path | None = None  # resolved, confined to the plan folder
    hef_path: Path | None = None
    calib_path: Path | None = None
    tiles: Tiles | None = None  # batched time tiles (version 3)

    @property
    def is_stitch(self) -> bool:
        return self.kind in STITCH_KINDS

    @property
    def compile_status(self) -> str | None:
        return self.raw.get("compile_status")


@dataclass
class PlanSpec:
    """A validated plan.json: its steps, tensors, files and folder."""

    root: Path
    path: Path
    target: str | None
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    tensors: dict[str, TensorSpec]  # every plan input and every tensor a step produces
    files: dict[str, FileEntry]
    steps: list[StepSpec]
    doc: dict = field(repr=False, default_factory=dict)
    sha256: str = ""  # of plan.json's bytes
    real_root: Path | None = field(repr=False, default=None)  # root with symlinks resolved
    _real: dict = field(repr=False, default_factory=dict)  # path -> resolved path (each costs lstats)

    def __post_init__(self):
        if self.real_root is None:
            self.real_root = self.root.resolve()
        for step in self.steps:  # confined() resolved these already
            for real in (step.model_path, step.calib_path, step.hef_path):
                if real is not None:
                    self._real[real] = real

    def resolve(self, path) -> Path:
        """`path` with symlinks resolved, remembered: the file's bytes are verified against
        plan.json on every read, so a resolution needs no repeating."""
        path = Path(path)
        real = self._real.get(path)
        if real is None:
            real = path.resolve()
            self._real[path] = self._real[real] = real
        return real

    @property
    def hailo_steps(self) -> list[StepSpec]:
        return [s for s in self.steps if s.kind == "onnx" and s.device == "hailo"]

    def read_file(self, path: Path) -> bytes:
        """The bytes of a file the plan lists, verified against its sha256 (read once: no window
        between the check and the use)."""
        rel, entry = self._listed(path)
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            raise PlanError(f"{self.path}: cannot read {rel} ({e.strerror or e})") from e
        self._same(rel, entry, len(data), hashlib.sha256(data).hexdigest())
        return data

    def verify_file(self, path: Path, written: dict | None = None) -> None:
        """`path` holds the bytes plan.json lists for it. `written`: the file's {"sha256", "bytes"}
        record hashed from the bytes its writer has just written into it: compared with plan.json's,
        and the file's size on disk with both, instead of reading and hashing the file again."""
        if written is None:
            self.read_file(path)
            return
        rel, entry = self._listed(path)
        try:
            size = Path(path).stat().st_size
        except OSError as e:
            raise PlanError(f"{self.path}: cannot read {rel} ({e.strerror or e})") from e
        self._same(rel, entry, written["bytes"], written["sha256"])  # the record is plan.json's
        self._same(rel, entry, size, written["sha256"])  # and the file on disk has its size

    def _listed(self, path: Path) -> tuple[str, FileEntry]:
        rel = self.resolve(path).relative_to(self.real_root).as_posix()
        entry = self.files.get(rel)
        if entry is None:
            raise PlanError(f"{self.path}: {rel} is not listed in 'files'")
        return rel, entry

    def _same(self, rel: str, entry: FileEntry, size: int, sha256: str) -> None:
        if size != entry.size or sha256 != entry.sha256:
            raise PlanError(
                f"{self.path}: {rel} does not match its sha256 in plan.json "
                "(modified or corrupted since the plan was written)"
            )


# ---- reading --------------------------------------------------------------------------------------
def plan_json_path(out) -> Path:
    out = Path(out)
    return out if out.suffix == ".json" and out.is_file() else out / "plan.json"


def read_plan_json(out) -> tuple[dict, Path, bytes]:
    """(document, path, raw bytes) of OUT/plan.json, bounded in size and nesting."""
    path = plan_json_path(out)
    if not path.is_file():
        raise PlanError(f"{path}: plan.json not found")
    if path.is_symlink() and not path.resolve().is_relative_to(path.parent.resolve()):
        raise PlanError(f"{path}: a symbolic link leaving the plan folder; plan.json must be the folder's own")
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_PLAN_BYTES + 1)
    except OSError as e:
        raise PlanError(f"{path}: cannot read ({e.strerror or e})") from e
    if len(raw) > MAX_PLAN_BYTES:
        raise PlanError(f"{path}: larger than {MAX_PLAN_BYTES >> 20} MiB; not a plan this runtime reads")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except RecursionError as e:
        raise PlanError(f"{path}: not valid JSON (nested too deeply)") from e
    except (UnicodeDecodeError, ValueError) as e:
        raise PlanError(f"{path}: not valid JSON ({e})") from e
    return doc, path, raw


def load_spec(out) -> PlanSpec:
    """Read OUT/plan.json (or the given .json path) and validate it."""
    doc, path, raw = read_plan_json(out)
    spec = parse_spec(doc, path)
    spec.sha256 = hashlib.sha256(raw).hexdigest()
    return spec


def parse_spec(doc, path: Path) -> PlanSpec:
    where = str(path)
    if not isinstance(doc, dict):
        raise PlanError(f"{where}: top level must be a JSON object")
    if doc.get("format") != FORMAT:
        raise PlanError(f"{where}: format is {doc.get('format')!r}, expected {FORMAT!r}")
    version = doc.get("version")
    if version not in READS:
        hint = (
            " (written by an older rewriter: run `rewrite` again)"
            if isinstance(version, int) and version < VERSION
            else ""
        )
        raise PlanError(
            f"{where}: version {version!r} is not supported (this runtime reads versions "
            f"{', '.join(map(str, READS))}){hint}"
        )
    root = path.parent
    real_root = root.resolve()
    inputs = [_tensor(t, f"{where}: inputs[{i}]") for i, t in enumerate(_list(doc, "inputs", where))]
    outputs = [_tensor(t, f"{where}: outputs[{i}]") for i, t in enumerate(_list(doc, "outputs", where))]
    if not inputs:
        raise PlanError(f"{where}: plan has no inputs")
    if not outputs:
        raise PlanError(f"{where}: plan has no outputs")
    tensors = _tensors(doc, where)
    files = _files(doc, where)
    raw_steps = _list(doc, "steps", where)
    if not raw_steps:
        raise PlanError(f"{where}: plan has no steps")
    dirs: dict[str, Path] = {}  # folder (relative) -> resolved, for confined(): most files share one
    steps = [_step(s, i, root, real_root, files, where, dirs) for i, s in enumerate(raw_steps)]
    declared = _check_dataflow(inputs, outputs, tensors, steps, where)
    for step in steps:
        if step.is_stitch:
            _check_stitch_shapes(step, declared, f"{where}: step '{step.name}'")
        elif "view" in step.raw:
            _check_view_shapes(step, declared, f"{where}: step '{step.name}'")
        if step.tiles is not None:
            if version < 3:
                raise PlanError(f"{where}: step '{step.name}': 'tiles' needs plan format version 3")
            _check_tiles_shapes(step, declared, f"{where}: step '{step.name}'")
    target = doc.get("target")
    return PlanSpec(
        root=root,
        real_root=real_root,
        path=path,
        target=target if isinstance(target, str) else None,
        inputs=inputs,
        outputs=outputs,
        tensors=declared,
        files=files,
        steps=steps,
        doc=doc,
    )


def _list(doc, key, where):
    value = doc.get(key)
    if not isinstance(value, list):
        raise PlanError(f"{where}: '{key}' must be a list")
    return value


def check_tensor_name(name, where: str) -> str:
    if not isinstance(name, str) or not name or len(name) > MAX_NAME or _CONTROL.search(name):
        raise PlanError(
            f"{where}: tensor name {name!r:.80} must be non-empty text of at most {MAX_NAME} "
            "characters without control characters"
        )
    return name


def check_step_name(name, where: str) -> str:
    if not isinstance(name, str) or not STEP_NAME.fullmatch(name):
        raise PlanError(f"{where}: step name {name!r:.80} must match {STEP_NAME.pattern}")
    return name


def _shape(shape, where) -> tuple:
    if (
        not isinstance(shape, list)
        or len(shape) > 8
        or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= MAX_ELEMENTS for d in shape)
    ):
        raise PlanError(f"{where}: 'shape' must be a list of at most 8 non-negative integers")
    if math.prod(shape) > MAX_ELEMENTS:
        raise PlanError(f"{where}: shape {shape} has more than {MAX_ELEMENTS} elements")
    return tuple(shape)


def _dtype(value, where) -> str:
    if value not in DTYPES:
        raise PlanError(f"{where}: dtype {value!r:.40} is not one of {', '.join(DTYPES)}")
    return value


def _tensor(t, where) -> TensorSpec:
    if not isinstance(t, dict):
        raise PlanError(f"{where}: must be an object with name, shape, dtype")
    name = check_tensor_name(t.get("name"), where)
    return TensorSpec(name, _shape(t.get("shape"), f"{where} ({name})"), _dtype(t.get("dtype"), f"{where} ({name})"))


def _tensors(doc, where) -> dict[str, TensorSpec]:
    table = doc.get("tensors")
    if not isinstance(table, dict):
        raise PlanError(f"{where}: 'tensors' must be an object {{name: {{shape, dtype}}}}")
    out = {}
    for name, t in table.items():
        at = f"{where}: tensors[{name!r:.80}]"
        check_tensor_name(name, at)
        if not isinstance(t, dict):
            raise PlanError(f"{at}: must be an object with shape and dtype")
        out[name] = TensorSpec(name, _shape(t.get("shape"), at), _dtype(t.get("dtype"), at))
    return out


def check_relative_path(rel, where: str) -> str:
    """Plain relative POSIX paths only: no absolute path, no '..', no hidden or odd characters."""
    if not isinstance(rel, str) or len(rel) > MAX_NAME:
        raise PlanError(f"{where}: path must be a string")
    parts = rel.split("/")
    if rel.startswith("/") or not all(_PATH_PART.fullmatch(p) for p in parts) or ".." in parts:
        raise PlanError(
            f"{where}: path {rel!r:.80} must be relative to the plan folder, made of "
            "letters, digits, '_', '-', '.' (no '..', no absolute path)"
        )
    return rel  # (the pattern admits no empty, '.' or '..' part: already its own normal form)


def confined(root: Path, rel: str, where: str, real_root: Path, dirs: dict | None = None) -> Path:
    """root/rel, which must exist and (after resolving symlinks) lie inside root (`real_root`:
    root resolved, once per plan). `dirs` {folder relative to root: resolved}: folders resolved for
    earlier files of the same plan; a file that is not itself a symlink then resolves to its
    resolved folder / its name, with one lstat instead of one per path component."""
    path = root / rel
    folder, _, name = rel.rpartition("/")
    try:
        real = None
        if dirs is not None:
            if folder not in dirs:
                dirs[folder] = (root / folder).resolve(strict=True)
            st = os.lstat(dirs[folder] / name)
            if not stat.S_ISLNK(st.st_mode):
                real = dirs[folder] / name
                is_file = stat.S_ISREG(st.st_mode)
        if real is None:
            real = path.resolve(strict=True)
            is_file = real.is_file()
    except (OSError, RuntimeError) as e:
        raise PlanError(f"{where}: {rel!r} not found in the plan folder") from e
    if not real.is_relative_to(real_root):
        raise PlanError(f"{where}: {rel!r} resolves outside the plan folder (symlink?)")
    if not is_file:
        raise PlanError(f"{where}: {rel!r} is not a file")
    return real


def _files(doc, where) -> dict[str, FileEntry]:
    table = doc.get("files")
    if not isinstance(table, dict):
        raise PlanError(f"{where}: 'files' must be an object {{path: {{sha256, bytes}}}}")
    out = {}
    for rel, entry in table.items():
        at = f"{where}: files[{rel!r:.80}]"
        rel = check_relative_path(rel, at)
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("sha256"), str)
            or not _SHA256.fullmatch(entry["sha256"])
        ):
            raise PlanError(f"{at}: needs 'sha256' (64 lowercase hex digits)")
        size = entry.get("bytes")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise PlanError(f"{at}: needs 'bytes' (file size)")
        out[rel] = FileEntry(rel, entry["sha256"], size)
    return out


def _step(s, index, root: Path, real_root: Path, files: dict, where, dirs: dict | None = None) -> StepSpec:
    if not isinstance(s, dict):
        raise PlanError(f"{where}: steps[{index}] must be an object")
    name = check_step_name(s.get("name"), f"{where}: steps[{index}]")
    at = f"{where}: step '{name}'"
    kind = s.get("kind", "onnx")
    if kind not in KINDS:
        raise PlanError(f"{at}: unknown kind {kind!r:.40} (expected one of {', '.join(KINDS)})")
    device = s.get("device", "host")
    if device not in DEVICES:
        raise PlanError(f"{at}: unknown device {device!r:.40} (expected host or hailo)")
    ins, outs = s.get("inputs"), s.get("outputs")
    for key, val in (("inputs", ins), ("outputs", outs)):
        if not isinstance(val, list):
            raise PlanError(f"{at}: '{key}' must be a list of tensor names")
        for t in val:
            check_tensor_name(t, f"{at}: {key}")
    if not outs:
        raise PlanError(f"{at}: has no outputs")
    if len(set(outs)) != len(outs):
        raise PlanError(f"{at}: lists an output twice")
    step = StepSpec(name=name, kind=kind, device=device, inputs=list(ins), outputs=list(outs), raw=s)
    if kind == "onnx":
        if not isinstance(s.get("model"), str):  # absent, null or not a path
            raise PlanError(f"{at}: onnx step needs 'model' (path relative to the plan directory)")
        status = s.get("compile_status")
        if status is not None and status not in COMPILE_STATUSES:
            raise PlanError(f"{at}: compile_status {status!r:.40} is not one of {', '.join(COMPILE_STATUSES)}")
        for key in PATH_FIELDS:
            if s.get(key) is None:
                continue
            rel = check_relative_path(s[key], f"{at}: '{key}'")
            if key == "hef" and (rel not in files or not (root / rel).is_symlink() and not (root / rel).exists()):
                continue  # not compiled, not recorded by `rewrite compile`, or not copied: never run unverified
            if rel not in files:
                raise PlanError(f"{at}: {key} file {rel!r} is not listed in 'files'")
            setattr(step, f"{key}_path", confined(root, rel, f"{at}: {key} file", real_root, dirs))
        if "view" in s:
            _check_view(s["view"], at)
        if "tiles" in s:
            if device != "hailo":
                raise PlanError(f"{at}: 'tiles' is for hailo steps")
            step.tiles = _tiles(s["tiles"], step, at)
    else:
        if device != "host":
            raise PlanError(f"{at}: stitch step '{kind}' must run on the host")
        _check_stitch(step, at)
    return step


def _int(s, key, at, minimum=None, bound=MAX_ELEMENTS):
    v = s.get(key)
    if (
        not isinstance(v, int)
        or isinstance(v, bool)
        or not -bound <= v <= bound
        or (minimum is not None and v < minimum)
    ):
        raise PlanError(
            f"{at}: '{key}' must be an integer"
            + (f" >= {minimum}" if minimum is not None else "")
            + f" of magnitude at most {bound}"
        )
    return v


def _ints(obj, keys, at, minimum=None):
    return [_int(obj, k, at, minimum) for k in keys]


def _channels(b, at) -> tuple[int, int]:
    c = b.get("channels")
    if not (
        isinstance(c, list)
        and len(c) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in c)
        and 0 <= c[0] < c[1] <= MAX_ELEMENTS
    ):
        raise PlanError(f"{at}: 'channels' must be [c0, c1] with 0 <= c0 < c1")
    return c[0], c[1]


def _tiles(t, step: StepSpec, at: str) -> Tiles:
    """The structure of a `tiles` object; shapes are checked against `tensors` in _check_tiles_shapes."""
    at = f"{at}: tiles"
    if not isinstance(t, dict) or not isinstance(t.get("inputs"), list) or not isinstance(t.get("outputs"), list):
        raise PlanError(f"{at}: must be an object with count, inputs and outputs lists")
    count = _int(t, "count", at, minimum=1)
    inputs, outputs = [], []
    for k, b in enumerate(t["inputs"]):
        where = f"{at}.inputs[{k}]"
        if not isinstance(b, dict):
            raise PlanError(f"{where}: must be an object")
        if "mask" in b:
            m = b["mask"]
            if not isinstance(m, dict):
                raise PlanError(f"{where}: 'mask' must be an object")
            length, width, height = _ints(m, ("length", "width", "height"), where, minimum=1)
            start, stride = _int(m, "start", where), _int(m, "step", where, minimum=0)
            inputs.append(Mask(length, start, stride, width, height))
            continue
        name = b.get("tensor")
        if name not in step.inputs:
            raise PlanError(f"{where}: tensor {name!r:.80} is not one of the step's inputs")
        c0, c1 = _channels(b, where)
        start, stride, width = _int(b, "start", where), _int(b, "step", where, 0), _int(b, "width", where, 1)
        inputs.append(Window(name, c0, c1, start, stride, width))
    for k, b in enumerate(t["outputs"]):
        where = f"{at}.outputs[{k}]"
        if not isinstance(b, dict) or b.get("tensor") not in step.outputs:
            raise PlanError(f"{where}: must name one of the step's outputs in 'tensor'")
        c0, c1 = _channels(b, where)
        outputs.append(Block(b["tensor"], c0, c1, _int(b, "width", where, 1), _int(b, "length", where, 1)))
    unread = set(step.inputs) - {b.tensor for b in inputs if isinstance(b, Window)}
    unwritten = set(step.outputs) - {b.tensor for b in outputs}
    if unread or unwritten:
        raise PlanError(
            f"{at}: step inputs {sorted(unread)} not read / outputs {sorted(unwritten)} not written by any binding"
        )
    if not outputs:
        raise PlanError(f"{at}: no outputs")
    return Tiles(count, tuple(inputs), tuple(outputs))


def _check_tiles_shapes(step: StepSpec, declared: dict[str, TensorSpec], at: str) -> None:
    """Windows read existing channels of rank-4 tensors; each output tensor is covered exactly; all
    tensors share one batch N (recorded as tiles.batch)."""
    t = step.tiles
    batches = {declared[x].shape[0] for x in step.inputs + step.outputs if len(declared[x].shape) == 4}
    if len(batches) != 1:
        raise PlanError(f"{at}: tiled tensors must be rank 4 with one batch size, got {sorted(batches)}")
    t = step.tiles = replace(t, batch=batches.pop())
    for b in t.inputs:
        if isinstance(b, Mask):
            size = b.height * b.width
        else:
            shape = declared[b.tensor].shape
            if len(shape) != 4 or b.c1 > shape[1]:
                raise PlanError(f"{at}: window of {b.tensor!r} reads channels [{b.c0}, {b.c1}) of shape {list(shape)}")
            size = (b.c1 - b.c0) * shape[2] * b.width
        if t.frames * size > MAX_ELEMENTS:
            raise PlanError(f"{at}: a batched input holds more than {MAX_ELEMENTS} elements")
    for name in step.outputs:
        shape = declared[name].shape
        blocks = sorted((b for b in t.outputs if b.tensor == name), key=lambda b: b.c0)
        if len(shape) != 4:
            raise PlanError(f"{at}: tiled output {name!r} must be [N, C, H, W], 'tensors' declares {list(shape)}")
        edges = [0] + [e for b in blocks for e in (b.c0, b.c1)] + [shape[1]]
        if any(edges[k] != edges[k + 1] for k in range(0, len(edges), 2)):
            raise PlanError(f"{at}: the blocks of {name!r} do not cover its {shape[1]} channels exactly once")
        for b in blocks:
            if b.length != shape[3]:
                raise PlanError(f"{at}: a block of {name!r} says length {b.length}, 'tensors' declares W {shape[3]}")
            if not (t.count - 1) * b.width < shape[3] <= t.count * b.width:
                raise PlanError(f"{at}: {t.count} tiles of width {b.width} do not fit {name!r}'s width {shape[3]}")
            if t.frames * (b.c1 - b.c0) * shape[2] * b.width > MAX_ELEMENTS:
                raise PlanError(f"{at}: a batched output holds more than {MAX_ELEMENTS} elements")


def _check_view(view, at) -> None:
    if not isinstance(view, dict) or not isinstance(view.get("reshape"), list):
        raise PlanError(f"{at}: 'view' must be an object with a 'reshape' list")
    _shape(view["reshape"], f"{at}: view.reshape")
    perm = view.get("transpose")
    if perm is not None and (
        not isinstance(perm, list)
        or sorted(perm) != list(range(len(view["reshape"])))
        or not all(isinstance(p, int) for p in perm)
    ):
        raise PlanError(f"{at}: view.transpose must be a permutation of the reshaped axes")


def _check_stitch(step: StepSpec, at):
    s = step.raw
    if len(step.outputs) != 1:
        raise PlanError(f"{at}: {step.kind} step must have exactly one output")
    if not step.inputs:
        raise PlanError(f"{at}: {step.kind} step has no inputs")
    if step.kind == "slice":
        if len(step.inputs) != 1:
            raise PlanError(f"{at}: slice step takes exactly one input")
        _int(s, "axis", at, bound=8)
        start, end = _int(s, "start", at), _int(s, "end", at)
        if end <= start:
            raise PlanError(f"{at}: slice end ({end}) must be greater than start ({start})")
        pad = s.get("pad")
        if pad is not None and not (
            isinstance(pad, list)
            and len(pad) == 2
            and all(isinstance(p, int) and not isinstance(p, bool) and 0 <= p <= MAX_ELEMENTS for p in pad)
        ):
            raise PlanError(f"{at}: 'pad' must be [left, right] non-negative integers")
    elif step.kind == "concat":
        _int(s, "axis", at, bound=8)


def _axis(axis: int, rank: int, at: str) -> int:
    if not -rank <= axis < rank:
        raise PlanError(f"{at}: axis {axis} out of range for rank {rank}")
    return axis % rank


def stitch_output_shape(step: StepSpec, shapes: list[tuple], at: str) -> tuple:
    """The shape a stitch step produces from input shapes (the runtime does exactly this)."""
    s = step.raw
    if step.kind == "slice":
        (shape,) = shapes
        axis = _axis(s["axis"], len(shape), at)
        start, end = s["start"], s["end"]
        lo, hi = max(start, 0), min(end, shape[axis])
        if hi <= lo:
            raise PlanError(f"{at}: window [{start}, {end}) does not overlap the input (length {shape[axis]})")
        if s.get("pad") is not None and list(s["pad"]) != [lo - start, end - hi]:
            raise PlanError(
                f"{at}: pad {s['pad']} disagrees with window [{start}, {end}) on length "
                f"{shape[axis]} (expected {[lo - start, end - hi]})"
            )
        return shape[:axis] + (end - start,) + shape[axis + 1 :]
    if step.kind == "concat":
        first = shapes[0]
        axis = _axis(s["axis"], len(first), at)
        for other in shapes[1:]:
            if len(other) != len(first) or other[:axis] + other[axis + 1 :] != first[:axis] + first[axis + 1 :]:
                raise PlanError(f"{at}: cannot concatenate shapes {[list(x) for x in shapes]} on axis {axis}")
        return first[:axis] + (sum(x[axis] for x in shapes),) + first[axis + 1 :]
    rank = max(len(x) for x in shapes)  # sum: numpy broadcasting
    padded = [(1,) * (rank - len(x)) + tuple(x) for x in shapes]
    out = []
    for dims in zip(*padded):
        sizes = {d for d in dims if d != 1}
        if len(sizes) > 1:
            raise PlanError(f"{at}: cannot add shapes {[list(x) for x in shapes]}")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def _check_stitch_shapes(step: StepSpec, declared: dict[str, TensorSpec], at: str) -> None:
    ins = [declared[t] for t in step.inputs]
    shape = stitch_output_shape(step, [t.shape for t in ins], at)
    out = declared[step.outputs[0]]
    if shape != out.shape:
        raise PlanError(f"{at}: produces shape {list(shape)} but 'tensors' declares {out.name!r} as {list(out.shape)}")
    dtypes = {t.dtype for t in ins}
    if len(dtypes) != 1 or out.dtype not in dtypes:
        raise PlanError(f"{at}: inputs of dtype {sorted(dtypes)} cannot make {out.name!r} of dtype {out.dtype}")


def _check_view_shapes(step: StepSpec, declared: dict[str, TensorSpec], at: str) -> None:
    """A view step (reshape, then transpose) must turn its declared input into its declared output."""
    if len(step.inputs) != 1 or len(step.outputs) != 1:
        raise PlanError(f"{at}: a view step has one input and one output")
    src, dst = declared[step.inputs[0]], declared[step.outputs[0]]
    view = step.raw["view"]
    shape = tuple(view["reshape"])
    if math.prod(shape) != math.prod(src.shape) or src.dtype != dst.dtype:
        raise PlanError(f"{at}: cannot view {list(src.shape)} {src.dtype} as {list(shape)}")
    if "transpose" in view:
        shape = tuple(shape[p] for p in view["transpose"])
    if shape != dst.shape:
        raise PlanError(f"{at}: the view makes {list(shape)} but 'tensors' declares {dst.name!r} as {list(dst.shape)}")


def _check_dataflow(inputs, outputs, tensors, steps, where) -> dict[str, TensorSpec]:
    """Every consumed tensor is defined earlier, defined once and declared; plan outputs are produced
    and agree with their declarations. Returns name -> spec of every tensor of the plan."""
    defined: dict[str, str] = {}
    declared: dict[str, TensorSpec] = {}
    for t in inputs:
        if t.name in defined:
            raise PlanError(f"{where}: plan input {t.name!r} listed twice")
        defined[t.name] = "plan input"
        declared[t.name] = t
    names = set()
    for step in steps:
        if step.name in names:
            raise PlanError(f"{where}: step name {step.name!r} used twice")
        names.add(step.name)
        for t in step.inputs:
            if t not in defined:
                raise PlanError(
                    f"{where}: step '{step.name}' consumes tensor {t!r}, which is neither a plan "
                    f"input nor produced by an earlier step"
                )
        for t in step.outputs:
            if t in defined:
                raise PlanError(f"{where}: step '{step.name}' produces tensor {t!r}, already produced by {defined[t]}")
            if t not in tensors:
                raise PlanError(f"{where}: step '{step.name}' produces tensor {t!r}, which 'tensors' does not declare")
            defined[t] = f"step '{step.name}'"
            declared[t] = tensors[t]
    seen = set()
    for t in outputs:
        if t.name in seen:
            raise PlanError(f"{where}: plan output {t.name!r} listed twice")
        seen.add(t.name)
        if t.name not in defined:
            raise PlanError(f"{where}: plan output {t.name!r} is not produced by any step")
        if declared[t.name] != t:
            got = declared[t.name]
            raise PlanError(
                f"{where}: plan output {t.name!r} is declared {list(t.shape)} {t.dtype} but its "
                f"producer makes {list(got.shape)} {got.dtype}"
            )
    return declared


def last_uses(spec: PlanSpec) -> list[list[str]]:
    """For step i: tensors that can be dropped right after it (last consumer, or unused producer).

    Plan outputs are never dropped. Plan inputs nobody consumes are dropped by the caller.
    """
    keep = {t.name for t in spec.outputs}
    last: dict[str, int] = {}
    for i, step in enumerate(spec.steps):
        for t in step.outputs:
            last[t] = i  # an unconsumed output dies where it is born
        for t in step.inputs:
            last[t] = i
    free: list[list[str]] = [[] for _ in spec.steps]
    for t, i in last.items():
        if t not in keep:
            free[i].append(t)
    return free


# ---- writing (used by the rewriter and the toolchain; pure data, no I/O but hashing) ------------
def file_entry(path: Path) -> dict:
    """The `files` record of a file: {"sha256": ..., "bytes": ...}."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return {"sha256": digest.hexdigest(), "bytes": size}


def referenced_files(doc: dict) -> list[str]:
    """Every path the steps of a plan document name, in first-use order."""
    seen = dict.fromkeys(
        s[k] for s in doc.get("steps", []) if isinstance(s, dict) for k in PATH_FIELDS if isinstance(s.get(k), str)
    )
    return list(seen)


def bytes_entry(data: bytes) -> dict:
    """The `files` record of bytes about to be written as a file."""
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def refresh_files(doc: dict, root: Path, known: dict | None = None) -> dict:
    """Set doc["files"] to the hashes of the files its steps reference (under root); returns doc.
    `known` ({path: record}) holds records of files the caller has just written from memory, so
    they are not read back to be hashed (the validation that follows compares them with these
    records and the files' sizes; Plan.load reads and hashes every file)."""
    known = known or {}
    doc["files"] = {
        rel: known[rel] if rel in known else file_entry(Path(root) / rel)
        for rel in sorted(referenced_files(doc))
        if rel in known or (Path(root) / rel).is_file()
    }
    return doc


def record_compile(doc: dict, root: Path, model: str, hef: str | None) -> int:
    """Record the DFC's result for the Hailo model file `model` on every step that runs it: `hef`
    (a path under root, hashed into `hef_sha256`) and compile_status "compiled", or, with hef None,
    "failed" and no HEF. Refreshes `files`; returns how many steps changed. `rewrite compile`'s
    driver and the recorder that `--emit-script` writes beside compile.sh both use it."""
    changed = 0
    for step in doc.get("steps", []):
        if not (isinstance(step, dict) and step.get("model") == model and step.get("device") == "hailo"):
            continue
        if hef is None:
            step.pop("hef", None)
            step.pop("hef_sha256", None)
            step["compile_status"] = "failed"
        else:
            step.update(hef=hef, hef_sha256=file_entry(Path(root) / hef)["sha256"], compile_status="compiled")
        changed += 1
    refresh_files(doc, root)
    return changed
