"""Content-addressed HEF cache: a segment's HEF is stored under the hash of what determines it.

Key = sha256 of `key_inputs(job, dfc_version)`: the segment ONNX bytes, each calibration array's
bytes + shape + dtype (in input order), the model script text, the merged [compile] settings, the
hw_arch, the DFC network name (it is inside the HEF), the DFC version string and CACHE_FORMAT.

Layout: ROOT/v1/ab/<key>/{hef, meta.json}. An entry is built in a temp folder beside its final
place and published with one rename, so it appears whole or not at all; whoever publishes first
wins and the others drop their copy (same key, equivalent HEF). Entries are never modified; a read
checks the HEF's sha256 against meta.json and drops a corrupt entry (with a warning). Nothing is
ever unpickled. Files get the user's umask (not mkstemp's 0600), so a cache folder shared by a
group (setgid folder + umask 002) works for every member. A read touches the entry's folder mtime:
`prune` evicts the least recently used first.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

CACHE_FORMAT = 1
CACHE_ENV = "HAILO_REWRITER_CACHE"
HEF_NAME = "hef"
META_NAME = "meta.json"
STALE_TEMP_S = 24 * 3600  # a temp folder this old is a crashed writer's: prune removes it


def default_cache_root() -> Path:
    """$HAILO_REWRITER_CACHE, else $XDG_CACHE_HOME/hailo-rewriter/hef (~/.cache/hailo-rewriter/hef)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hailo-rewriter" / "hef"


def _sha256(data) -> str:
    return hashlib.sha256(data).hexdigest()


def key_inputs(job, dfc_version: str) -> dict:
    """What the key is made of, as digests (stored in meta.json so an entry explains itself)."""
    return {
        "format": CACHE_FORMAT,
        "onnx_sha256": _sha256(job.model_bytes),
        "calib": [
            {"shape": list(a.shape), "dtype": a.dtype.str, "sha256": _sha256(memoryview(a).cast("B"))}
            for a in job.calib
        ],
        "script_sha256": _sha256(job.script.encode()),
        "settings": job.settings,
        "hw_arch": job.hw_arch,
        "net": job.net,
        "dfc_version": dfc_version,
    }


def compile_key(inputs: dict) -> str:
    return _sha256(json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@dataclass
class CacheEntry:
    key: str
    path: Path
    meta: dict  # {} when meta.json is unreadable
    size: int  # bytes on disk (HEF + meta)
    last_used: float  # epoch seconds (folder mtime)

    @property
    def created(self) -> float:
        return float(self.meta.get("created", self.last_used))


class HefCache:
    def __init__(self, root=None, warn=None):
        self.root = Path(root).expanduser() if root else default_cache_root()
        self.base = self.root / f"v{CACHE_FORMAT}"
        self.warn = warn or (lambda msg: print(f"warning: {msg}", file=sys.stderr))

    def _entry(self, key: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{64}", key):
            raise ValueError(f"not a cache key: {key!r}")
        return self.base / key[:2] / key

    # -- read ----------------------------------------------------------------------------------------
    def get(self, key: str) -> bytes | None:
        """The HEF for `key`, or None (missing, being pruned, or corrupt: then dropped)."""
        folder = self._entry(key)
        try:
            meta = json.loads((folder / META_NAME).read_text())
            data = (folder / HEF_NAME).read_bytes()
        except FileNotFoundError:
            return None
        except PermissionError as exc:  # another user's entry in a badly shared folder: not corrupt
            self.warn(f"HEF cache entry {key[:16]} not readable ({exc.strerror}): compiling instead")
            return None
        except (OSError, ValueError) as exc:
            self._drop(folder, f"unreadable ({type(exc).__name__}: {exc})")
            return None
        if not isinstance(meta, dict) or meta.get("key") != key or meta.get("hef_sha256") != _sha256(data):
            self._drop(folder, "HEF does not match its recorded sha256")
            return None
        try:
            os.utime(folder)  # last use, for LRU pruning; another user's entry may refuse it
        except OSError:
            pass
        return data

    # -- write ---------------------------------------------------------------------------------------
    def put(self, key: str, hef: bytes, meta: dict) -> bool:
        """Publish an entry; False if one already exists (the first writer wins)."""
        folder = self._entry(key)
        if (folder / META_NAME).is_file():
            return False
        mask = _umask()
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key[:16]}.", suffix=".tmp", dir=folder.parent))
        try:
            os.chmod(tmp, 0o777 & ~mask)
            record = {
                **meta,
                "format": CACHE_FORMAT,
                "key": key,
                "hef_size": len(hef),
                "hef_sha256": _sha256(hef),
                "created": time.time(),
            }
            for name, data in ((HEF_NAME, hef), (META_NAME, (json.dumps(record, indent=2) + "\n").encode())):
                fd = os.open(tmp / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 & ~mask)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
            try:
                os.rename(tmp, folder)  # atomic; fails if another writer published first
            except OSError:
                if (folder / META_NAME).is_file():
                    return False
                raise
            return True
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    # -- listing and removal -------------------------------------------------------------------------
    def entries(self) -> list[CacheEntry]:
        found = []
        for folder in sorted(self.base.glob("??/*")):
            if folder.name.startswith(".") or not folder.is_dir():
                continue
            try:
                meta = json.loads((folder / META_NAME).read_text())
            except (OSError, ValueError):
                meta = {}
            try:
                size = sum(f.stat().st_size for f in folder.iterdir())
                found.append(
                    CacheEntry(
                        folder.name, folder, meta if isinstance(meta, dict) else {}, size, folder.stat().st_mtime
                    )
                )
            except FileNotFoundError:  # pruned meanwhile
                continue
        return found

    def _remove(self, folder: Path) -> bool:
        """Rename out of the way first (readers then see a clean miss), then delete."""
        trash = folder.with_name(f".{folder.name[:16]}.{os.getpid()}.{time.monotonic_ns()}.trash")
        try:
            os.rename(folder, trash)
        except FileNotFoundError:
            return False
        except OSError as exc:
            self.warn(f"cannot remove cache entry {folder}: {exc.strerror or exc}")
            return False
        shutil.rmtree(trash, ignore_errors=True)
        return True

    def _drop(self, folder: Path, why: str) -> None:
        self.warn(f"HEF cache entry {folder.name[:16]} is corrupt ({why}): dropped, the segment is recompiled")
        self._remove(folder)

    def prune(
        self, older_than_days: float | None = None, max_size: int | None = None, everything: bool = False
    ) -> list[CacheEntry]:
        """Remove entries unused for `older_than_days`, then least recently used ones until the cache
        holds at most `max_size` bytes (or all with `everything`); also stale temp folders.
        Returns the removed entries."""
        entries = sorted(self.entries(), key=lambda e: e.last_used)
        now = time.time()
        doomed = []
        if everything:
            doomed = entries
        else:
            if older_than_days is not None:
                doomed = [e for e in entries if now - e.last_used > older_than_days * 86400]
            if max_size is not None:
                kept = [e for e in entries if e not in doomed]
                total = sum(e.size for e in kept)
                for e in kept:
                    if total <= max_size:
                        break
                    doomed.append(e)
                    total -= e.size
        removed = [e for e in doomed if self._remove(e.path)]
        for leftover in self.base.glob("??/.*"):  # a live writer's temp folder is young: keep it
            try:
                stale = leftover.name.endswith(".trash") or now - leftover.stat().st_mtime > STALE_TEMP_S
            except FileNotFoundError:
                continue
            if stale:
                shutil.rmtree(leftover, ignore_errors=True)
        return removed


def parse_size(text: str) -> int:
    """'500M', '10G', '1.5GB', '123' (bytes) -> bytes (powers of 1024)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not m:
        raise ValueError(f"size {text!r}: expected a number with an optional K/M/G/T suffix")
    return int(float(m.group(1)) * 1024 ** " KMGT".index(m.group(2).upper() or " "))
