"""The content-addressed HEF cache on its own: keys, atomic entries, corruption, pruning, sharing."""

import json
import multiprocessing
import os
import stat
import time

import numpy as np
import pytest

from rewriter.toolchain.hef_cache import HefCache, compile_key, key_inputs, parse_size
from rewriter.toolchain.segment_job import SegmentJob


def job(**change) -> SegmentJob:
    fields = {
        "segment": "hailo_1",
        "net": "hailo_1",
        "model_bytes": b"onnx-bytes",
        "input_names": ["x"],
        "input_shapes": [[1, 4, 1, 8]],
        "start_nodes": ["conv"],
        "end_nodes": ["relu"],
        "calib": [np.arange(64, dtype=np.float32).reshape(2, 1, 8, 4)],
        "script": "allocator_param(timeout=25m)\n",
        "hw_arch": "hailo8",
        "settings": {"optimization_level": 2, "resources": {"strategy": "greedy"}},
    }
    fields.update(change)
    return SegmentJob(**fields)


def key(j=None, version="dfc 3.33.0"):
    return compile_key(key_inputs(j or job(), version))


@pytest.mark.parametrize(
    "change",
    [
        {"model_bytes": b"onnx-bytez"},
        {"calib": [np.arange(64, dtype=np.float32).reshape(2, 1, 8, 4) + 1]},
        {"calib": [np.arange(64, dtype=np.float32).reshape(4, 1, 4, 4)]},  # same bytes, other shape
        {"calib": [np.arange(64, dtype=np.float32).reshape(2, 1, 8, 4).view(np.int32)]},  # same bytes, dtype
        {"calib": [np.arange(64, dtype=np.float32).reshape(2, 1, 8, 4)] * 2},  # one more input
        {"script": "allocator_param(timeout=30m)\n"},
        {"settings": {"optimization_level": 3, "resources": {"strategy": "greedy"}}},
        {"hw_arch": "hailo8l"},
        {"net": "hailo_2"},
    ],
)
def test_every_key_input_changes_the_key(change):
    assert key(job(**change)) != key()


def test_key_ignores_what_does_not_reach_the_dfc():
    assert key(job(segment="renamed_file", warnings=["w"])) == key()
    reordered = {"resources": {"strategy": "greedy"}, "optimization_level": 2}  # canonical JSON
    assert key(job(settings=reordered)) == key()
    assert key(version="dfc 3.34.0") != key()


def test_put_get_round_trip_and_metadata(tmp_path):
    cache = HefCache(tmp_path / "c")
    k = key()
    assert cache.get(k) is None
    assert (
        cache.put(
            k,
            b"HEF",
            {"segment": "hailo_1", "dfc_version": "dfc 3.33.0", "key_inputs": key_inputs(job(), "dfc 3.33.0")},
        )
        is True
    )
    assert cache.get(k) == b"HEF"
    assert cache.put(k, b"OTHER", {}) is False  # the first writer wins
    assert cache.get(k) == b"HEF"
    (entry,) = cache.entries()
    assert entry.key == k and entry.meta["segment"] == "hailo_1" and entry.meta["hef_size"] == 3
    assert entry.meta["key_inputs"]["calib"][0]["shape"] == [2, 1, 8, 4]
    assert compile_key(entry.meta["key_inputs"]) == k  # an entry explains its own key
    assert not [p for p in (tmp_path / "c").rglob("*") if p.name.startswith(".")]  # no temp left


def test_files_follow_the_umask_not_mkstemp_private_modes(tmp_path):
    old = os.umask(0o002)  # a group-shared cache
    try:
        cache = HefCache(tmp_path / "c")
        cache.put(key(), b"HEF", {})
    finally:
        os.umask(old)
    (entry,) = cache.entries()
    assert stat.S_IMODE(entry.path.stat().st_mode) == 0o775
    assert stat.S_IMODE((entry.path / "hef").stat().st_mode) == 0o664


@pytest.mark.parametrize("damage", ["flip", "truncate", "meta"])
def test_corrupt_entry_is_dropped_with_a_warning(tmp_path, damage):
    warnings = []
    cache = HefCache(tmp_path / "c", warn=warnings.append)
    k = key()
    cache.put(k, b"HEF-BYTES", {})
    folder = cache.entries()[0].path
    if damage == "flip":
        (folder / "hef").write_bytes(b"HEF-BYTEZ")
    elif damage == "truncate":
        (folder / "hef").write_bytes(b"HEF")
    else:
        (folder / "meta.json").write_text("{not json")
    assert cache.get(k) is None
    assert len(warnings) == 1 and "corrupt" in warnings[0] and k[:16] in warnings[0]
    assert not folder.exists() and cache.entries() == []
    assert cache.put(k, b"HEF-BYTES", {}) is True and cache.get(k) == b"HEF-BYTES"


def test_prune_by_age_size_and_all(tmp_path):
    cache = HefCache(tmp_path / "c")
    keys = [key(job(model_bytes=bytes([i]))) for i in range(4)]
    now = time.time()
    for age, k in zip((40, 30, 20, 0), keys):  # days since last use
        cache.put(k, b"x" * 1000, {})
        folder = cache.entries()[[e.key for e in cache.entries()].index(k)].path
        os.utime(folder, (now - age * 86400, now - age * 86400))
    removed = cache.prune(older_than_days=35)
    assert [e.key for e in removed] == [keys[0]]
    size = {e.key: e.size for e in cache.entries()}
    removed = cache.prune(max_size=size[keys[2]] + size[keys[3]])  # least recently used go first
    assert [e.key for e in removed] == [keys[1]]
    assert sorted(e.key for e in cache.entries()) == sorted(keys[2:])
    assert cache.get(keys[2]) == b"x" * 1000  # a hit refreshes the last use ...
    cache.prune(max_size=size[keys[2]])
    assert [e.key for e in cache.entries()] == [keys[2]]  # ... so the other one went
    cache.prune(everything=True)
    assert cache.entries() == []


def test_prune_removes_stale_temp_folders_only(tmp_path):
    cache = HefCache(tmp_path / "c")
    cache.put(key(), b"HEF", {})
    parent = cache.entries()[0].path.parent
    stale, fresh = parent / ".abc.stale.tmp", parent / ".abc.fresh.tmp"
    stale.mkdir()
    fresh.mkdir()
    os.utime(stale, (time.time() - 3 * 86400,) * 2)
    cache.prune(older_than_days=1)
    assert not stale.exists() and fresh.exists()  # a live writer's temp folder stays


def test_parse_size():
    assert parse_size("123") == 123
    assert parse_size("500M") == 500 * 2**20
    assert parse_size("1.5GB") == int(1.5 * 2**30)
    assert parse_size("2g") == 2 * 2**30
    with pytest.raises(ValueError):
        parse_size("lots")


def _hammer(root, worker: int, rounds: int, queue) -> None:
    """Write 4 keys over and over (2 shared by every worker, 2 its own) and read them back."""
    cache = HefCache(root, warn=lambda msg: queue.put(("warning", msg)))
    shared = [key(job(model_bytes=b"shared-%d" % i)) for i in range(2)]
    own = [key(job(model_bytes=b"own-%d-%d" % (worker, i))) for i in range(2)]
    for r in range(rounds):
        for k in shared + own:
            data = (k * 500).encode()  # a few tens of KB, the same for one key
            cache.put(k, data, {"round": r, "worker": worker})
            got = cache.get(k)
            if got is not None and got != data:
                queue.put(("bad read", k))
        if r % 5 == 0:
            cache.prune(max_size=len(shared) * 40000)  # prunes race with readers and writers
    queue.put(("done", worker))


def test_concurrent_writers_readers_and_pruners_never_see_a_partial_entry(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_hammer, args=(tmp_path / "c", w, 25, queue)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    messages = []
    while not queue.empty():
        messages.append(queue.get())
    assert sorted(m for m in messages if m[0] == "done") == [("done", w) for w in range(4)]
    assert [m for m in messages if m[0] != "done"] == []  # no bad read, no "corrupt" warning
    cache = HefCache(tmp_path / "c")
    for entry in cache.entries():
        assert cache.get(entry.key) == (entry.key * 500).encode()
    assert not [p for p in (tmp_path / "c").rglob(".*")]  # no temp or trash folder left
    assert json.loads((cache.entries()[0].path / "meta.json").read_text())["format"] == 1


def test_an_unreadable_entry_is_a_miss_not_a_corruption(tmp_path, monkeypatch):
    warnings = []
    cache = HefCache(tmp_path / "c", warn=warnings.append)
    k = key()
    cache.put(k, b"HEF", {})
    real_read = type(tmp_path).read_bytes

    def denied(path):
        if path.name == "hef":
            raise PermissionError(13, "Permission denied", str(path))
        return real_read(path)

    with monkeypatch.context() as m:
        m.setattr(type(tmp_path), "read_bytes", denied)  # root ignores file modes: simulate it
        assert cache.get(k) is None
    assert len(warnings) == 1 and "not readable" in warnings[0]
    assert cache.get(k) == b"HEF"  # still there: nothing was dropped
