"""Docs that run: every shell block in README.md and docs/*.md is executed (conventions in
doc_blocks.py), so a documented command or printed sample that drifts from the program fails here."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from doc_blocks import FLAGS, indented_commands, output_matches, shell_blocks

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# the field's fixtures (../shared/fixtures beside the checkout; REWRITER_FIXTURES names another place)
FIXTURES = Path(os.environ.get("REWRITER_FIXTURES") or ROOT.parent / "shared" / "fixtures")
CORPUS_REQUIREMENTS = ROOT / "tests" / "corpus" / "requirements-nodeps.txt"
EXTRAS = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
TIMEOUT = 900


def _documents_with_commands():
    return [p for p in DOCS if any(b.commands() and "illustrative" not in b.flags for b in shell_blocks(p))]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_commands_are_in_marked_fenced_blocks(doc):
    stray = indented_commands(doc)
    assert not stray, f"{doc.name}: commands in indented blocks (fence them as ```sh): {stray[:5]}"
    for block in shell_blocks(doc):
        unknown = block.flags - FLAGS
        assert not unknown, f"{block.where}: unknown block flags {sorted(unknown)}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_pip_install_lines_name_existing_extras(doc):
    for block in shell_blocks(doc):
        for cmd in block.commands():
            for extras in re.findall(r"\[([A-Za-z0-9_,.-]+)\]", cmd.text if "pip install" in cmd.text else ""):
                missing = set(extras.split(",")) - EXTRAS
                assert not missing, f"{block.where}: pip extras {sorted(missing)} not in pyproject.toml"


def _workspace(tmp_path: Path) -> Path:
    """A copy of the repository's examples, rules, docs, benchmarks and tests (the fuzzer and some
    benchmarks use the tests' helpers), with ../shared beside it when it exists."""
    ws = tmp_path / "repo"
    for name in ("examples", "rules", "docs", "benchmarks", "tests"):
        shutil.copytree(ROOT / name, ws / name, ignore=shutil.ignore_patterns("__pycache__", "out", "*.plan"))
    for name in ("README.md", "pyproject.toml"):
        shutil.copy(ROOT / name, ws / name)
    if FIXTURES.is_dir():
        (tmp_path / "shared").symlink_to(FIXTURES.parent, target_is_directory=True)
    return ws


def _corpus_installed() -> bool:
    """Every package tests/corpus exports models from is installed (.ci/run installs them)."""
    names = [
        line.split("==")[0].strip()
        for line in CORPUS_REQUIREMENTS.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    try:
        for name in names:
            importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _env() -> dict:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(ROOT)  # examples import the checkout's packages, as from a clone
    return env


@pytest.mark.parametrize("doc", _documents_with_commands(), ids=lambda p: p.name)
def test_documented_commands_run(doc, tmp_path):
    ws = _workspace(tmp_path)
    env = _env()
    ran = 0
    for block in shell_blocks(doc):
        if "illustrative" in block.flags:
            continue
        if "slow" in block.flags and not os.environ.get("DOCS_SLOW"):
            continue
        if "needs-fixtures" in block.flags and not FIXTURES.is_dir():
            continue
        if "needs-corpus" in block.flags and not _corpus_installed():
            continue
        for cmd in block.commands():
            if cmd.text.startswith("pip install") or " pip install " in cmd.text:
                continue  # the environment is installed; test_pip_install_lines_name_existing_extras
            r = subprocess.run(
                ["bash", "-o", "pipefail", "-c", cmd.text],
                cwd=ws,
                env=env,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            )
            where = f"{doc.name}:{cmd.line}: `{cmd.text}`"
            assert r.returncode == 0, f"{where} exited {r.returncode}\n{r.stdout[-1500:]}\n{r.stderr[-1500:]}"
            if cmd.expected:
                why = output_matches(cmd.expected, r.stdout)
                assert why is None, (
                    f"{where}: printed output drifted from the docs: {why}\n--- got:\n" + r.stdout[-2500:]
                )
            ran += 1
    assert ran or not FIXTURES.is_dir(), f"{doc.name}: no command ran"
