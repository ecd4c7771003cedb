"""Write an output folder all at once: build it beside the destination, then swap it in.

* Only a plan folder is ever replaced: its plan.json is a document of this format and it holds nothing
  but what the rewriter and the toolchain write (PLAN_ENTRIES); a symbolic link is never replaced.
* The swap is one atomic exchange of the two folders (Linux renameat2 RENAME_EXCHANGE, macOS
  renamex_np RENAME_SWAP), so OUT is at every instant either the old plan or the new one. Where the
  exchange is not available (another OS, a file system without it) two renames are used, and a run
  killed between them leaves the old plan in `.NAME.old-PID-*`, which the next run restores.
* Leftovers of killed runs (`.NAME.tmp-PID-*`, `.NAME.old-PID-*`) whose process is gone are removed
  by the next run that writes NAME.
* Files get the usual permissions (0666 and 0777 less the umask), like any file the user writes.
* Failures of the file system (read-only, full, not a folder, no permission) are one-line UserErrors,
  and nothing half-written stays behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import json
import os
import platform
import shutil
import tempfile
from pathlib import Path

from rewriter.errors import UserError
from runtime.errors import PlanError
from runtime.schema import FORMAT, read_plan_json

PLAN_MARKER = "plan.json"
PLAN_ENTRIES = frozenset({PLAN_MARKER, "segments", "calib", "compile", "logs"})
_KINDS = ("tmp", "old")

# errno values of a write that mean "this file system will not take the plan", not a bug
_WRITE_ERRORS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.EIO,
    errno.EFBIG,
    errno.ENAMETOOLONG,
}


# ---- atomic rename primitives -------------------------------------------------------------------
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2  # Linux renameat2 flag
_RENAME_SWAP = 2  # macOS renamex_np flag


def _swap_function():
    """f(a: bytes, b: bytes) -> 0 | -1 (errno set) swapping two paths atomically, or None."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    system = platform.system()
    if system == "Darwin" and hasattr(libc, "renamex_np"):
        fn = libc.renamex_np
        fn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint]
        return lambda a, b: fn(a, b, _RENAME_SWAP)
    if system == "Linux" and hasattr(libc, "renameat2"):  # glibc >= 2.28
        fn = libc.renameat2
        fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        return lambda a, b: fn(_AT_FDCWD, a, _AT_FDCWD, b, _RENAME_EXCHANGE)
    return None


_SWAP = _swap_function()


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap the paths a and b (both must exist). False when this system cannot."""
    if _SWAP is None:
        return False
    if _SWAP(os.fsencode(a), os.fsencode(b)) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):  # kernel or file system without it
        return False
    raise OSError(err, os.strerror(err), str(b))


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# ---- leftovers of interrupted runs --------------------------------------------------------------
def _leftover_prefix(name: str, kind: str) -> str:
    return f".{name}.{kind}-"


def _owner_alive(entry: str, prefix: str) -> bool:
    pid = entry[len(prefix) :].split("-", 1)[0]
    if not pid.isdigit():
        return False  # not ours (or an older rewriter's): nobody is writing it any more
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def recover_leftovers(dest: Path) -> list[str]:
    """Clean up after runs that were killed while writing `dest`: restore the old plan if `dest`
    went missing between two renames, remove staging folders and temp files whose process is gone.
    Returns what was done, one line per action."""
    parent = dest.parent
    if not parent.is_dir():
        return []
    stale: dict[str, list[Path]] = {kind: [] for kind in _KINDS}
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return []
    for entry in entries:
        for kind in _KINDS:
            prefix = _leftover_prefix(dest.name, kind)
            if entry.name.startswith(prefix) and not _owner_alive(entry.name, prefix):
                stale[kind].append(Path(entry.path))
    done = []
    if not dest.exists() and not dest.is_symlink():
        olds = sorted(
            (p for p in stale["old"] if _plan_document(p / PLAN_MARKER)), key=lambda p: p.stat().st_mtime, reverse=True
        )
        if olds:
            os.rename(olds[0], dest)
            stale["old"].remove(olds[0])
            done.append(f"restored {dest} from {olds[0].name} (left by an interrupted run)")
    for path in stale["tmp"] + stale["old"]:
        _remove(path)
        done.append(f"removed {path.name} (left by an interrupted run)")
    return done


# ---- what may be replaced -----------------------------------------------------------------------
def _plan_document(path: Path) -> bool:
    """plan.json of this format (any version: a plan an older rewriter wrote may be replaced)."""
    if path.is_symlink() or not path.is_file():
        return False
    try:
        doc, _, _ = read_plan_json(path)
    except PlanError:
        return False
    return (
        isinstance(doc, dict)
        and doc.get("format") == FORMAT
        and isinstance(doc.get("version"), int)
        and not isinstance(doc.get("version"), bool)
    )


def _ours(name: str) -> bool:
    return name in PLAN_ENTRIES or name.startswith(_leftover_prefix(PLAN_MARKER, "tmp"))


def check_replaceable(dest: Path) -> None:
    """Raise UserError unless `dest` is absent, an empty folder, or a plan folder."""
    if dest.is_symlink():
        raise UserError(f"output {dest} is a symbolic link; give the folder itself (a link is never replaced)")
    if not dest.exists():
        return
    if not dest.is_dir():
        raise UserError(f"output {dest} exists and is not a plan folder (it is a file); choose another -o")
    cwd = Path.cwd().resolve()
    if cwd == dest.resolve() or dest.resolve() in cwd.parents:
        raise UserError(f"output {dest} is the current folder (or holds it); run from elsewhere or choose another -o")
    names = sorted(os.listdir(dest))
    if not names:
        return
    if not _plan_document(dest / PLAN_MARKER):
        raise UserError(
            f"output {dest} exists and is not a plan folder (no plan.json of this format); choose another -o"
        )
    foreign = [n for n in names if not _ours(n)]
    if foreign:
        raise UserError(
            f"output {dest} holds files a plan does not ({', '.join(foreign[:3])}"
            f"{', ...' if len(foreign) > 3 else ''}); not replacing it: choose another -o"
        )


# ---- writing ------------------------------------------------------------------------------------
def _write_error(dest: Path, exc: OSError) -> UserError:
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(dest) else ""
    return UserError(f"cannot write {dest}: {exc.strerror or exc}{where}")


def _swap_in(stage: Path, dest: Path) -> None:
    if not dest.exists():
        os.rename(stage, dest)
        return
    if exchange(stage, dest):
        shutil.rmtree(stage, ignore_errors=True)  # stage now holds the old plan
        return
    old = Path(tempfile.mkdtemp(prefix=_leftover_prefix(dest.name, "old") + f"{os.getpid()}-", dir=dest.parent))
    os.rename(dest, old)  # replaces the empty folder mkdtemp made; recover_leftovers undoes a kill after this
    os.rename(stage, dest)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staged_dir(dest: Path):
    """Yields a fresh staging folder beside `dest`; on success it replaces `dest`, on failure it is
    removed. See the module doc for what may be replaced and how."""
    dest = Path(os.path.abspath(dest))
    if not dest.name:
        raise UserError(f"output {dest} is not a folder name; choose another -o")
    existing = next(p for p in dest.parents if p.exists())
    if not existing.is_dir():
        raise UserError(f"cannot write {dest}: {existing} is a file, not a folder")
    try:
        recover_leftovers(dest)
        check_replaceable(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=_leftover_prefix(dest.name, "tmp") + f"{os.getpid()}-", dir=dest.parent))
        os.chmod(stage, 0o777 & ~_umask())  # mkdtemp makes it private; a plan is an ordinary folder
    except OSError as exc:
        raise _write_error(dest, exc) from exc
    try:
        yield stage
    except OSError as exc:
        shutil.rmtree(stage, ignore_errors=True)
        if exc.errno in _WRITE_ERRORS:
            raise _write_error(dest, exc) from exc
        raise
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    try:
        _swap_in(stage, dest)
    except OSError as exc:
        shutil.rmtree(stage, ignore_errors=True)
        raise _write_error(dest, exc) from exc


def readable_json(data) -> str:
    """JSON for files people open (plan.json): the top-level object's fields one per line, and the
    items of a list or object under them one per line, each item on one line. Each line is
    encoded by json's C encoder: `indent=` would select its pure-Python one, 20x slower on a
    large plan."""
    item = functools.partial(json.dumps, ensure_ascii=True)
    if not isinstance(data, dict):
        return item(data)

    def member(value) -> str:
        if isinstance(value, list) and value:
            return "[\n" + ",\n".join(f"    {item(v)}" for v in value) + "\n  ]"
        if isinstance(value, dict) and value:
            return "{\n" + ",\n".join(f"    {item(k)}: {item(v)}" for k, v in value.items()) + "\n  }"
        return item(value)

    if not data:
        return "{}"
    return "{\n" + ",\n".join(f"  {item(k)}: {member(v)}" for k, v in data.items()) + "\n}"


def write_json_atomic(path, data) -> None:
    """Write JSON to a temp file beside `path`, then os.replace: readers never see half a file.
    The file gets the permissions of any file the user writes (0666 less the umask)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=_leftover_prefix(path.name, "tmp") + f"{os.getpid()}-", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w") as fh:
            fh.write(readable_json(data) + "\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
