"""Disk cache of parsed rule files: parsing the hailo8 rule set with lark costs ~0.7 s, more than
rewriting a 1,000-node model, and rule files rarely change. Keyed by the grammar, the text and the
file name (positions in errors name the file), so an edited file or grammar is parsed anew.
The cache is an optimization only: any failure to read or write it falls back to parsing."""
from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from pathlib import Path

CACHE_VERSION = b"2"  # 2: DSL v2 syntax trees


def cache_dir() -> Path | None:
    if os.environ.get("REWRITER_NO_CACHE"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hailo-rewriter" / "rules"


def _key(grammar: str, text: str, filename: str) -> str:
    digest = hashlib.sha256(CACHE_VERSION)
    for part in (grammar, filename, text):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def cached_parse(parse, grammar: str, text: str, filename: str):
    """`parse(text, filename)` through the cache. Only successful parses are cached."""
    folder = cache_dir()
    if folder is None:
        return parse(text, filename)
    path = folder / f"{_key(grammar, text, filename)}.pickle"
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh)
    except Exception:  # missing, stale or unreadable: parse
        pass
    result = parse(text, filename)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, delete=False) as fh:
            pickle.dump(result, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(fh.name, path)
    except Exception:
        pass
    return result
