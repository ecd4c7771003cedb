"""Write an output folder all at once: build it beside the destination, then swap it in."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from rewriter.errors import UserError

PLAN_MARKER = "plan.json"


@contextlib.contextmanager
def staged_dir(dest: Path):
    """Yields a fresh staging folder; on success it replaces `dest`, on failure it is removed.

    An existing `dest` is replaced only if it is a plan folder (holds plan.json), so a typo in -o
    never deletes a user's folder.
    """
    dest = Path(dest)
    if dest.exists() and not (dest.is_dir() and (dest / PLAN_MARKER).is_file()):
        raise UserError(f"output {dest} exists and is not a plan folder; choose another -o")
    dest.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    os.chmod(stage, 0o755)  # mkdtemp makes it private; a plan is an ordinary folder
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    old = None
    if dest.exists():
        old = dest.parent / f".{dest.name}.old-{os.getpid()}"
        os.replace(dest, old)
    os.replace(stage, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_json_atomic(path, data) -> None:
    """Write JSON to a temp file beside `path`, then os.replace: readers never see half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
