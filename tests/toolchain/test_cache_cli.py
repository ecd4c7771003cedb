"""`rewrite cache list|prune` through the real CLI entry point."""

import json
import os
import time

import pytest

from rewriter.cli import main
from rewriter.toolchain.hef_cache import HefCache


@pytest.fixture
def cache(tmp_path):
    cache = HefCache(tmp_path / "c")
    now = time.time()
    for i, age_days in enumerate((10, 3, 0)):
        key = f"{i:x}" * 64
        cache.put(
            key,
            b"H" * (1000 * (i + 1)),
            {"segment": f"hailo_{i}", "hw_arch": "hailo8", "dfc_version": "hailo-dataflow-compiler 3.33.0"},
        )
        os.utime(cache.base / key[:2] / key, (now - age_days * 86400,) * 2)
    return cache


def test_list_text_and_json(cache, capsys):
    assert main(["cache", "list", "--cache", str(cache.root)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in out[:3]] == ["hailo_0", "hailo_1", "hailo_2"]  # least recently used first
    assert "hailo-dataflow-compiler 3.33.0" in out[0] and out[-1].startswith("3 entries, ")
    assert main(["cache", "list", "--json", "--cache", str(cache.root)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["root"] == str(cache.root)
    assert [(e["segment"], e["hef_size"], e["valid"]) for e in doc["entries"]] == [
        ("hailo_0", 1000, True),
        ("hailo_1", 2000, True),
        ("hailo_2", 3000, True),
    ]


def test_list_uses_the_environment_variable(cache, capsys, monkeypatch):
    monkeypatch.setenv("HAILO_REWRITER_CACHE", str(cache.root))
    assert main(["cache", "list", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["entries"]) == 3


def test_prune_older_than_then_max_size_then_all(cache, capsys):
    root = str(cache.root)
    assert main(["cache", "prune", "--older-than", "5", "--cache", root]) == 0
    assert capsys.readouterr().out.startswith("removed 1 entries")
    assert sorted(e.meta["segment"] for e in cache.entries()) == ["hailo_1", "hailo_2"]
    assert main(["cache", "prune", "--max-size", "3.5K", "--cache", root]) == 0
    assert [e.meta["segment"] for e in cache.entries()] == ["hailo_2"]  # the older one went
    assert main(["cache", "prune", "--all", "--cache", root]) == 0
    assert cache.entries() == []


@pytest.mark.parametrize(
    "argv, message",
    [
        (["prune"], "prune needs --older-than DAYS, --max-size SIZE or --all"),
        (["prune", "--max-size", "big"], "--max-size: size 'big'"),
        (["prune", "--older-than", "-1"], "--older-than must be >= 0"),
    ],
)
def test_prune_user_errors(cache, capsys, argv, message):
    assert main(["cache", *argv, "--cache", str(cache.root)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rewrite cache: ") and message in err and len(err.splitlines()) == 1
    assert len(cache.entries()) == 3
