"""`rewrite compile` argparse verb: exit codes and one-line messages."""

import argparse
import json
import sys

import pytest

from rewriter.toolchain import compile_cli

from .plans import standard_plan


def parse(*argv):
    p = argparse.ArgumentParser()
    compile_cli.add_arguments(p)
    return p.parse_args([str(a) for a in argv])


@pytest.fixture
def out(tmp_path):
    return standard_plan(tmp_path / "out")


def test_defaults():
    a = parse("OUT")
    assert (a.out, a.hw_arch, a.jobs, a.model_script, a.retry_shrink, a.max_shrink, a.emit_script) == (
        "OUT",
        None,
        1,
        None,
        False,
        2,
        False,
    )
    assert (a.executor, a.scheduler, a.timeout, a.cache, a.no_cache, a.sdk_module) == (
        "local",
        None,
        None,
        None,
        False,
        None,
    )


def test_default_timeout_is_the_allocator_timeout_plus_an_hour():
    assert compile_cli.timeout_seconds(None, {}) == 25 * 60 + 3600  # target default "25m"
    assert compile_cli.timeout_seconds(None, {"allocator_timeout": "2h"}) == 2 * 3600 + 3600
    assert compile_cli.timeout_seconds(None, {"allocator_timeout": 90}) == 90 + 3600
    assert compile_cli.timeout_seconds(1.5, {}) == 90
    assert compile_cli.timeout_seconds(0, {}) is None  # --timeout 0: never


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--timeout", "-1"], "--timeout must be >= 0"),
        (["--scheduler", "tcp://127.0.0.1:8786"], "--scheduler needs --executor dask"),
    ],
)
def test_bad_executor_options_are_user_errors(out, capsys, argv, message):
    assert compile_cli.run(parse(out, *argv)) == 2
    assert message in capsys.readouterr().err


def test_missing_plan_is_a_user_error(tmp_path, capsys):
    assert compile_cli.run(parse(tmp_path / "nope")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("rewrite compile: ") and "no plan.json" in err[-1]


def test_no_sdk_without_emit_script_is_exit_2(out, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "hailo_sdk_client", None)
    assert compile_cli.run(parse(out)) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "hailo_sdk_client (Hailo Dataflow Compiler) is not installed" in last and "--emit-script" in last


def test_emit_script_needs_no_sdk(out, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "hailo_sdk_client", None)
    assert compile_cli.run(parse(out, "--emit-script", "--hw-arch", "hailo8l")) == 0
    assert 'HW_ARCH="${HW_ARCH:-hailo8l}"' in (out / "compile/compile.sh").read_text()
    assert "/tmp" in capsys.readouterr().out


def test_exit_codes_with_standin(out, tmp_path, standin, capsys):
    script = tmp_path / "extra.alls"
    script.write_text("context_switch_param(mode=enabled)\n")
    cache = ["--cache", tmp_path / "cache"]
    assert (
        compile_cli.run(parse(out, "--model-script", script, "--jobs", "2", "--sdk-module", standin.module, *cache))
        == 0
    )
    assert "context_switch_param" in standin.calls().calls_for("hailo_1", "load_model_script")[0]["script"]
    assert "finished in" in capsys.readouterr().out
    standin.configure(parse_fail={"hailo_3": ["add"]}, version="another")  # new DFC: nothing is reused
    assert compile_cli.run(parse(out, "--sdk-module", standin.module, *cache)) == 1
    assert json.loads((out / "compile_summary.json").read_text())["ok"] is False


def test_bad_model_script_path_is_exit_2(out, capsys):
    assert compile_cli.run(parse(out, "--model-script", out / "missing.alls")) == 2
    assert "--model-script" in capsys.readouterr().err


def test_hw_arch_defaults_to_plan_target(out, standin, monkeypatch):
    plan = json.loads((out / "plan.json").read_text())
    plan["target"] = "hailo8l"
    (out / "plan.json").write_text(json.dumps(plan))
    monkeypatch.setenv("HAILO_REWRITER_SDK_MODULE", standin.module)  # the hook as an environment variable
    assert compile_cli.run(parse(out, "--no-cache")) == 0
    assert {c["hw_arch"] for c in standin.calls().calls if c["method"] == "ClientRunner"} == {"hailo8l"}


def test_compile_settings_come_from_the_target():
    from types import SimpleNamespace

    assert compile_cli.compile_settings_for(SimpleNamespace(compile={"optimization_level": 4})) == {
        "optimization_level": 4
    }
    assert compile_cli.compile_settings_for(None) == {}
