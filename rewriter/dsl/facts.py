"""A read-only view of the target for `where:` clauses: `target.ops.Conv.group_split`,
`target.tiling.width`, `"Relu" in target.ops`.

Dataclass fields and dict keys read as attributes; tuples read as lists, paths as strings. A field
that does not exist is an error (the clause is false, with the reason in traces); an op the target
does not list reads as None, so `target.ops.Round == None` asks whether the target runs Round.
Nothing can be assigned through the view.
"""

from __future__ import annotations

import dataclasses
from pathlib import PurePath


class FactError(Exception):
    pass


class Facts:
    __slots__ = ("_obj", "_path")

    def __init__(self, obj, path: str = "target"):
        object.__setattr__(self, "_obj", obj)
        object.__setattr__(self, "_path", path)

    def __setattr__(self, key, value):
        raise AttributeError("target facts are read-only")

    def get(self, name: str):
        obj, path = self._obj, f"{self._path}.{name}"
        if isinstance(obj, dict):
            return wrap(obj.get(name), path)  # e.g. an op the target does not list: None
        if dataclasses.is_dataclass(obj) and name in {f.name for f in dataclasses.fields(obj)}:
            return wrap(getattr(obj, name), path)
        raise FactError(f"{self._path} has no fact '{name}' (known: {', '.join(self.keys())})")

    def keys(self) -> list[str]:
        obj = self._obj
        if isinstance(obj, dict):
            return sorted(obj)
        return [f.name for f in dataclasses.fields(obj)]

    def __contains__(self, key) -> bool:
        return key in self.keys()

    def __iter__(self):
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def __repr__(self) -> str:
        return f"<{self._path}>"


def wrap(value, path: str):
    if isinstance(value, dict) or dataclasses.is_dataclass(value):
        return Facts(value, path)
    if isinstance(value, tuple):
        return [wrap(v, path) for v in value]
    if isinstance(value, list):
        return [wrap(v, path) for v in value]
    if isinstance(value, PurePath):
        return str(value)
    return value
