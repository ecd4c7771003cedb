"""The source model's bytes and sha256, read on a second thread while the interpreter is still
importing numpy, onnx and the compiler (a quarter of a second of one core in a `rewrite` process).

The CLI starts `prefetch(path)` as soon as it has parsed its arguments; `read_model` and the plan's
source record then `take` the bytes and the digest instead of reading the file (twice) themselves.
File reads and hashlib release the GIL, so the imports do not wait for them. Both are only used if
the file is still the one that was read (same device, inode, size and modification time), and any
failure of the thread just means the file is read as before, where a user's mistake (no such file,
no permission) gets its usual message. Imports only the standard library and the plan schema (no
numpy): the CLI imports this before anything heavy.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from runtime.schema import bytes_entry

_pending: dict[str, _Read] = {}
_lock = threading.Lock()


def _identity(st: os.stat_result) -> tuple:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


class _Read:
    """One file read, then hashed, on a daemon thread (it must never keep a failing CLI alive).
    The bytes are handed out as soon as they are read: a big model is parsed while it is hashed."""

    def __init__(self, path: str):
        self.path = path
        self.data: bytes | None = None
        self.entry: dict | None = None
        self.identity: tuple | None = None
        self.taken = False  # the bytes were converted: the record is theirs, whatever the file is now
        self._read, self._hashed = threading.Event(), threading.Event()
        threading.Thread(target=self._run, name="prefetch", daemon=True).start()

    def _run(self) -> None:
        data = None
        try:
            with open(self.path, "rb") as fh:
                identity = _identity(os.fstat(fh.fileno()))
                data = fh.read()
            if len(data) == identity[2]:  # else written to while read: read it again later
                self.data, self.identity = data, identity
        except (OSError, MemoryError, ValueError):
            pass  # the caller reads the file itself and reports what is wrong
        finally:
            self._read.set()
        try:
            if self.identity is not None:
                self.entry = bytes_entry(data)
        finally:
            self._hashed.set()

    def _current(self, done: threading.Event) -> bool:
        """`done` has happened, the read was complete, and the file at the path is still the one read."""
        done.wait()
        if self.identity is None:
            return False
        try:
            return _identity(os.stat(self.path)) == self.identity
        except OSError:
            return False

    def take(self) -> bytes | None:
        if self.taken or not self._current(self._read):
            return None
        data, self.data, self.taken = self.data, None, True
        return data

    def record(self) -> dict | None:
        if self.taken:
            self._hashed.wait()
        elif not self._current(self._hashed):
            return None
        return None if self.entry is None else dict(self.entry)


def _key(path: str | os.PathLike) -> str:
    return os.path.realpath(os.fspath(path))


def prefetch(path: str | os.PathLike) -> None:
    """Start reading `path` (a regular file) in the background; a no-op for anything else."""
    try:
        if not Path(path).is_file():
            return
        key = _key(path)
    except (OSError, ValueError):
        return
    with _lock:
        if key not in _pending:
            _pending[key] = _Read(key)


def _pending_read(path: str | os.PathLike) -> _Read | None:
    with _lock:
        return _pending.get(_key(path))


def take_bytes(path: str | os.PathLike) -> bytes | None:
    """The file's prefetched bytes (handed out once: the caller owns the memory from now on), or
    None when nothing was prefetched or the file changed since."""
    read = _pending_read(path)
    return None if read is None else read.take()


def source_entry(path: str | os.PathLike) -> dict | None:
    """{"sha256", "bytes"} of the prefetched file (runtime.schema.file_entry's record), or None."""
    read = _pending_read(path)
    return None if read is None else read.record()


def forget(path: str | os.PathLike | None = None) -> None:
    """Drop what was prefetched of `path` (the CLI, when its command is done), or of every file."""
    with _lock:
        if path is None:
            _pending.clear()
        else:
            _pending.pop(_key(path), None)
