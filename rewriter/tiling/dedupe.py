"""One segment file per distinct tile model: identical bytes -> one file, compiled once."""
from __future__ import annotations

import hashlib

import onnx


class ModelFiles:
    def __init__(self, prefix: str):
        self.prefix = prefix
        self.by_hash: dict[str, tuple[onnx.ModelProto, str]] = {}

    def add(self, model: onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
        """The shared model object and its `segments/...onnx` file for this model's content."""
        key = hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest()
        if key not in self.by_hash:
            self.by_hash[key] = (model, f"segments/{self.prefix}_m{len(self.by_hash)}.onnx")
        return self.by_hash[key]

    def __len__(self) -> int:
        return len(self.by_hash)
