"""Native helpers: Python functions rule files call by name, and the registry that holds them.

The DSL knows no helper of its own: whoever runs rules (the target's passes, `rules verify`, a test)
passes a `HelperRegistry`, and `--helpers FILE.py` adds the functions that FILE marks with
`@helper`. The registry knows each helper's signature, so a call with the wrong number of
arguments (or an argument of a declared kind that cannot fit) is a load error at file:line:col.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import RuleError

#: argument kinds a helper may declare: a graph value (tensor), a constant tensor (the helper gets
#: its numpy array), an attribute / literal / computed number or list, or anything
KINDS = ("value", "const", "attr", "any")
_MARK = "__rule_helper__"


@dataclass(frozen=True)
class HelperSpec:
    """A native helper rules may call, with its arity and parameter kinds."""

    name: str
    fn: Callable
    min_args: int
    max_args: int | None  # None: variadic
    params: tuple[str, ...]  # positional parameter names, for messages and docs
    kinds: tuple[str, ...] | None  # per positional parameter, when declared
    symbolic: object = None  # the prover's twin: True (works on object arrays) or a callable
    doc: str = ""

    @property
    def signature(self) -> str:
        sig = inspect.signature(self.fn)
        parts = []
        for p in sig.parameters.values():
            if p.kind == p.VAR_POSITIONAL:
                parts.append(f"*{p.name}")
            elif p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                parts.append(p.name if p.default is p.empty else f"{p.name}={p.default!r}")
        return f"{self.name}({', '.join(parts)})"

    def arity_error(self, n: int) -> str | None:
        if n >= self.min_args and (self.max_args is None or n <= self.max_args):
            return None
        if self.max_args is None:
            want = f"at least {self.min_args}"
        elif self.min_args == self.max_args:
            want = str(self.min_args)
        else:
            want = f"{self.min_args} to {self.max_args}"
        return f"helper '{self.name}' takes {want} argument{'s' if want != '1' else ''} ({self.signature}), got {n}"


def spec_of(name: str, fn: Callable, kinds=None, symbolic=None) -> HelperSpec:
    sig = inspect.signature(fn)
    positional = [p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    variadic = any(p.kind == p.VAR_POSITIONAL for p in sig.parameters.values())
    required = sum(1 for p in positional if p.default is p.empty)
    if kinds is not None:
        kinds = tuple(kinds)
        bad = [k for k in kinds if k not in KINDS]
        if bad or len(kinds) != len(positional):
            raise ValueError(
                f"helper {name!r}: kinds {kinds} must name one of {KINDS} for each of "
                f"its {len(positional)} positional parameters"
            )
    doc = (inspect.getdoc(fn) or "").strip().split("\n\n")[0].replace("\n", " ")
    return HelperSpec(
        name,
        fn,
        required,
        None if variadic else len(positional),
        tuple(p.name for p in positional),
        kinds,
        symbolic,
        doc,
    )


def helper(name: str | Callable | None = None, *, kinds: Iterable[str] | None = None, symbolic=None):
    """Mark a function as a rule helper (`@helper`, `@helper("name")`,
    `@helper("name", kinds=("const", "attr"))`). A marked function is registered by
    `HelperRegistry.add_module` / `--helpers FILE.py`; marking alone changes nothing global."""

    def deco(fn: Callable, helper_name: str | None = None) -> Callable:
        setattr(fn, _MARK, spec_of(helper_name or fn.__name__, fn, kinds, symbolic))
        return fn

    if callable(name):
        return deco(name)
    return lambda fn: deco(fn, name)


class HelperRegistry(Mapping):
    """name -> function, plus each helper's HelperSpec (`spec(name)`)."""

    def __init__(self, specs: Iterable[HelperSpec] = ()):
        self._specs: dict[str, HelperSpec] = {}
        for s in specs:
            self.add(s)

    def __getitem__(self, name: str) -> Callable:
        return self._specs[name].fn

    def __iter__(self):
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def spec(self, name: str) -> HelperSpec:
        return self._specs[name]

    def specs(self) -> list[HelperSpec]:
        return [self._specs[k] for k in sorted(self._specs)]

    def add(self, spec: HelperSpec, origin: str = "") -> None:
        old = self._specs.get(spec.name)
        if old is not None and old.fn is not spec.fn:
            where = f" ({origin})" if origin else ""
            raise ValueError(f"native helper {spec.name!r} registered twice{where}")
        self._specs[spec.name] = spec

    def register(self, name: str, fn: Callable, kinds=None, symbolic=None) -> Callable:
        self.add(spec_of(name, fn, kinds, symbolic))
        return fn

    def add_module(self, module, origin: str = "") -> int:
        """Register every function of `module` marked with @helper; returns how many."""
        n = 0
        for value in vars(module).values():
            spec = getattr(value, _MARK, None)
            if isinstance(spec, HelperSpec) and spec.fn is value:
                self.add(spec, origin)
                n += 1
        return n

    def merged(self, other: HelperRegistry, origin: str = "") -> HelperRegistry:
        out = HelperRegistry(self._specs.values())
        for s in other.specs():
            out.add(s, origin)
        return out


def load_helper_file(path: str | Path, base: HelperRegistry | None = None) -> HelperRegistry:
    """`--helpers FILE.py`: import FILE and add its @helper functions to (a copy of) `base`.
    A missing file, an import error, no marked helper or a name clash is a RuleError (one line)."""
    path = Path(path)
    if not path.is_file():
        raise RuleError(f"--helpers {path}: no such file")
    mod_name = f"rewriter_user_helpers_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise RuleError(f"--helpers {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code: report, don't crash
        sys.modules.pop(mod_name, None)
        raise RuleError(f"--helpers {path}: import failed: {type(exc).__name__}: {exc}") from exc
    extra = HelperRegistry()
    try:
        found = extra.add_module(module, str(path))
        if not found:
            raise RuleError(f"--helpers {path}: no function is marked with @helper (from rewriter.dsl import helper)")
        return (base or HelperRegistry()).merged(extra, str(path))
    except ValueError as exc:
        raise RuleError(f"--helpers {path}: {exc}") from exc


def markdown_table(registry: HelperRegistry) -> str:
    """The helper table of docs/dsl.md, generated from a registry (a test keeps them in sync)."""
    rows = ["| helper | meaning |", "|---|---|"]
    for s in registry.specs():
        rows.append(f"| `{s.signature}` | {s.doc.replace('|', '/')} |")
    return "\n".join(rows)
