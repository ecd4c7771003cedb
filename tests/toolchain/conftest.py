"""Fixtures for compiles that run in other processes: the SDK stand-in as a module."""

from __future__ import annotations

import pytest

from . import hailo_sdk_standin


class ModuleStandin:
    """The stand-in SDK *module* (`--sdk-module toolchain.hailo_sdk_standin`), configured through a
    file, recording the calls of every compile process to a JSON-lines log."""

    module = hailo_sdk_standin.__name__

    def __init__(self, folder):
        self.config = folder / "standin.json"
        self.log_path = folder / "standin_calls.jsonl"
        self.configure()

    def configure(self, **config) -> None:
        hailo_sdk_standin.configure(self.config, log=str(self.log_path), **config)

    def calls(self) -> hailo_sdk_standin.CallLog:
        return hailo_sdk_standin.read_log(self.log_path)

    def compiled_nets(self) -> list:
        """Networks compile() was called for, in call order."""
        return [c["net"] for c in self.calls().calls if c["method"] == "compile"]

    def reset_log(self) -> None:
        self.log_path.unlink(missing_ok=True)


@pytest.fixture
def standin(tmp_path, monkeypatch):
    monkeypatch.setenv(hailo_sdk_standin.CONFIG_ENV, str(tmp_path / "standin.json"))
    return ModuleStandin(tmp_path)


@pytest.fixture(autouse=True)
def _private_hef_cache(tmp_path, monkeypatch):
    """No test touches the user's ~/.cache."""
    monkeypatch.setenv("HAILO_REWRITER_CACHE", str(tmp_path / "default-hef-cache"))
