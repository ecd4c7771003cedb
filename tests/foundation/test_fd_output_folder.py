"""Output folders: only a plan folder is replaced, in one atomic exchange; a run killed at any point
leaves OUT as the old plan or the new one and the next run cleans up (or restores) what it left;
file-system refusals are one line with exit 2 and leave nothing half-written."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from fd_util import cli, conv_chain_model, cycle_trap_model, read_plan, save, tree_bytes

from rewriter.plan import atomic
from runtime import Plan

REPO = Path(__file__).resolve().parents[2]
REWRITE = [sys.executable, "-c", "import sys; from rewriter.cli.main import main; sys.exit(main())"]


def assert_one_line(rc, err, *fragments):
    assert rc == 2, err
    assert err.startswith("rewrite: error:") and err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


@pytest.fixture
def models(tmp_path):
    return save(conv_chain_model(), tmp_path / "a.onnx"), save(cycle_trap_model(), tmp_path / "b.onnx")


def made_by(out) -> str:
    return read_plan(out)["source"]["model"]


def leftovers(folder: Path, name: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{name}."))


# ---- what may be replaced -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "plan_json",
    [
        "junk\n",
        "{}",
        '{"format": "something-else", "version": 2}',
        '{"format": "hailo-rewriter-plan", "version": "2"}',
        "[" * 5000,
    ],
)
def test_folder_without_a_plan_of_this_format_is_never_replaced(tmp_path, capsys, models, plan_json):
    out = tmp_path / "F"
    out.mkdir()
    (out / "plan.json").write_text(plan_json)
    (out / "thesis.tex").write_text("years of work")
    rc, _, err = cli(capsys, models[0], "-o", out, "-q")
    assert_one_line(rc, err, "not a plan folder")
    assert sorted(p.name for p in out.iterdir()) == ["plan.json", "thesis.tex"]
    assert (out / "thesis.tex").read_text() == "years of work"


def test_a_plan_folder_holding_foreign_files_is_not_replaced(tmp_path, capsys, models):
    out = tmp_path / "P"
    assert cli(capsys, models[0], "-o", out, "-q")[0] == 0
    (out / "notes.txt").write_text("mine")
    before = tree_bytes(out)
    rc, _, err = cli(capsys, models[1], "-o", out, "-q")
    assert_one_line(rc, err, "holds files a plan does not (notes.txt)")
    assert tree_bytes(out) == before


def test_an_older_plan_and_an_empty_folder_are_replaced(tmp_path, capsys, models):
    out = tmp_path / "P"
    assert cli(capsys, models[0], "-o", out, "-q")[0] == 0
    doc = read_plan(out)
    doc["version"] = 1  # written by an older rewriter: still ours to replace
    (out / "plan.json").write_text(json.dumps(doc))
    assert cli(capsys, models[1], "-o", out, "-q")[0] == 0 and made_by(out) == "b.onnx"
    empty = tmp_path / "E"
    empty.mkdir()
    assert cli(capsys, models[1], "-o", empty, "-q")[0] == 0 and made_by(empty) == "b.onnx"


def test_a_symlink_is_not_replaced_by_a_folder(tmp_path, capsys, models):
    real = tmp_path / "real"
    assert cli(capsys, models[0], "-o", real, "-q")[0] == 0
    before = tree_bytes(real)
    link = tmp_path / "link"
    link.symlink_to(real)
    rc, _, err = cli(capsys, models[1], "-o", link, "-q")
    assert_one_line(rc, err, "symbolic link")
    assert link.is_symlink() and tree_bytes(real) == before


def test_dot_inside_a_plan_is_refused(tmp_path, capsys, models, monkeypatch):
    out = tmp_path / "P"
    assert cli(capsys, models[0], "-o", out, "-q")[0] == 0
    before = tree_bytes(out)
    monkeypatch.chdir(out)
    rc, _, err = cli(capsys, models[1], "-o", ".", "-q")
    assert_one_line(rc, err, "current folder")
    monkeypatch.chdir(out / "segments")
    rc, _, err = cli(capsys, models[1], "-o", "..", "-q")
    assert_one_line(rc, err, "current folder")
    assert tree_bytes(out) == before and leftovers(tmp_path, "P") == []


@pytest.mark.parametrize("where", ["under_file", "proc", "root"])
def test_unwritable_places_are_one_line(tmp_path, capsys, models, where):
    out = {"under_file": models[0] / "plan", "proc": Path("/proc/self/hailo.plan"), "root": Path("/")}[where]
    rc, _, err = cli(capsys, models[0], "-o", out, "-q")
    assert_one_line(rc, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.onnx", "b.onnx"]


# ---- file systems that refuse -------------------------------------------------------------------
@contextlib.contextmanager
def tmpfs(path: Path, size: str, readonly=False):
    """A small tmpfs at `path` (needs root; skips otherwise)."""
    path.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_disk_full_keeps_the_old_plan(tmp_path, capsys, models):
    with tmpfs(tmp_path / "mnt", "96k") as mnt:
        out = mnt / "P"
        assert cli(capsys, models[0], "-o", out, "-q")[0] == 0
        before = tree_bytes(out)
        free = os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize
        (mnt / "fill").write_bytes(b"\0" * max(free - 4096, 0))
        rc, _, err = cli(capsys, models[1], "-o", out, "-q")
        assert_one_line(rc, err, "No space left on device")
        assert tree_bytes(out) == before and leftovers(mnt, "P") == []


def test_read_only_file_system(tmp_path, capsys, models):
    with tmpfs(tmp_path / "mnt", "1m") as mnt:
        assert cli(capsys, models[0], "-o", mnt / "P", "-q")[0] == 0
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        rc, _, err = cli(capsys, models[1], "-o", mnt / "P", "-q")
        assert_one_line(rc, err, "Read-only file system")
        rc, _, err = cli(capsys, models[1], "-o", mnt / "Q", "-q")
        assert_one_line(rc, err, "Read-only file system")
        assert made_by(mnt / "P") == "a.onnx"


def run_rewrite(*args, limit_bytes=None, timeout=300):
    def limit():
        if limit_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run(
        [*REWRITE, *map(str, args)], capture_output=True, text=True, preexec_fn=limit, timeout=timeout, cwd=REPO
    )


def test_a_write_refused_midway_is_one_line_and_keeps_the_old_plan(tmp_path, models):
    """Any user can cap file sizes (RLIMIT_FSIZE): segment files then fail to write part-way (EFBIG)."""
    out = tmp_path / "P"
    assert run_rewrite(models[0], "-o", out, "-q").returncode == 0
    before = tree_bytes(out)
    r = run_rewrite(models[1], "-o", out, "-q", limit_bytes=1000)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "File too large" in r.stderr, r.stderr
    assert tree_bytes(out) == before and leftovers(tmp_path, "P") == []


def test_plan_json_has_the_permissions_of_the_other_files(tmp_path, capsys, models):
    old = os.umask(0o022)
    try:
        out = tmp_path / "P"
        assert cli(capsys, models[0], "-o", out, "-q")[0] == 0
    finally:
        os.umask(old)
    modes = {p.relative_to(out).as_posix(): p.stat().st_mode & 0o777 for p in [out, *out.rglob("*")]}
    assert modes["plan.json"] == 0o644
    assert {m for n, m in modes.items() if (out / n).is_file()} == {0o644}
    assert {m for n, m in modes.items() if (out / n).is_dir()} == {0o755}


# ---- the swap and killed runs ---------------------------------------------------------------------
def test_exchange_swaps_two_folders_atomically(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("A")
    (b / "x").write_text("B")
    if not atomic.exchange(a, b):
        pytest.skip("no RENAME_EXCHANGE on this system")
    assert (a / "x").read_text() == "B" and (b / "x").read_text() == "A"


KILLED_RUN = textwrap.dedent("""
    import os, sys, time, types
    from pathlib import Path
    from rewriter.plan import atomic, writer
    ready, point, *argv = sys.argv[1:]

    def hang(*args, **kwargs):
        Path(ready).write_text(str(os.getpid()))
        time.sleep(600)

    if point == "staging":          # segment files written, plan.json and validation not done
        writer.write_plan_json = hang
    elif point == "swapped":        # after the exchange, before the old plan is removed
        atomic.shutil = types.SimpleNamespace(rmtree=hang)
    elif point == "between_renames":  # the fallback without RENAME_EXCHANGE: OUT moved aside
        atomic.exchange = lambda a, b: False
        rename = os.rename

        def first_then_hang(a, b):
            rename(a, b)
            if ".old-" in str(b):
                hang()
        os.rename = first_then_hang
    from rewriter.cli.main import main
    sys.exit(main(argv))
""")


def kill_during(tmp_path, point, model, out):
    ready = tmp_path / f"ready-{point}"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, str(ready), point, str(model), "-o", str(out), "-q"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 300
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the run never reached {point}: {proc.stderr.read().decode()}")
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("point, expect", [("staging", "a.onnx"), ("swapped", "b.onnx"), ("between_renames", None)])
def test_kill_9_leaves_old_or_new_and_the_next_run_recovers(tmp_path, capsys, models, point, expect):
    out = tmp_path / "P"
    assert cli(capsys, models[0], "-o", out, "-q")[0] == 0
    old = tree_bytes(out)
    kill_during(tmp_path, point, models[1], out)
    stale = leftovers(tmp_path, "P")
    assert stale, "a killed run leaves its staging (or moved-aside) folder"
    if expect is None:
        assert not out.exists()  # only without RENAME_EXCHANGE
        restored = atomic.recover_leftovers(out)
        assert any("restored" in line for line in restored) and tree_bytes(out) == old
        assert leftovers(tmp_path, "P") == []
    else:
        assert made_by(out) == expect
        Plan.load(out)  # a complete plan, either way
    assert cli(capsys, models[1], "-o", out, "-q")[0] == 0  # the next run cleans up
    assert made_by(out) == "b.onnx" and leftovers(tmp_path, "P") == []


def test_a_live_run_s_staging_folder_is_left_alone(tmp_path, capsys, models):
    stage = tmp_path / f".P.tmp-{os.getpid()}-live"  # this process: alive
    stage.mkdir()
    dead = tmp_path / ".P.tmp-999999999-dead"  # no such process
    dead.mkdir()
    assert cli(capsys, models[0], "-o", tmp_path / "P", "-q")[0] == 0
    assert stage.exists() and not dead.exists()


def test_random_kills_never_lose_the_plan(tmp_path, models):
    """kill -9 the real CLI at random moments while it replaces OUT: OUT always loads, as the old or
    the new plan, and a final run leaves no litter."""
    import random

    rng = random.Random(1234)
    out = tmp_path / "P"
    assert run_rewrite(models[0], "-o", out, "-q").returncode == 0
    for k in range(4):
        proc = subprocess.Popen(
            [*REWRITE, str(models[k % 2]), "-o", str(out), "-q"],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.5, 4.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert made_by(out) in ("a.onnx", "b.onnx")
        Plan.load(out)
    assert run_rewrite(models[1], "-o", out, "-q").returncode == 0
    assert made_by(out) == "b.onnx" and leftovers(tmp_path, "P") == []
