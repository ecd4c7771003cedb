"""`rewrite compile` argparse verb: exit codes and one-line messages."""
import argparse
import json
import sys

import pytest

from rewriter.toolchain import compile_cli

from .hailo_sdk_standin import StandinSDK
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
    assert (a.out, a.hw_arch, a.jobs, a.model_script, a.retry_shrink, a.max_shrink, a.emit_script) == \
        ("OUT", None, 1, None, False, 2, False)


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


def test_exit_codes_with_standin(out, tmp_path, monkeypatch):
    script = tmp_path / "extra.alls"
    script.write_text("context_switch_param(mode=enabled)\n")
    sdk = StandinSDK()
    monkeypatch.setitem(sys.modules, "hailo_sdk_client", sdk)
    assert compile_cli.run(parse(out, "--model-script", script, "--jobs", "2")) == 0
    assert "context_switch_param" in sdk.calls_for("hailo_1", "load_model_script")[0]["script"]
    monkeypatch.setitem(sys.modules, "hailo_sdk_client", StandinSDK(parse_fail={"hailo_3": ["add"]}))
    assert compile_cli.run(parse(out)) == 1
    assert json.loads((out / "compile_summary.json").read_text())["ok"] is False


def test_bad_model_script_path_is_exit_2(out, capsys):
    assert compile_cli.run(parse(out, "--model-script", out / "missing.alls")) == 2
    assert "--model-script" in capsys.readouterr().err


def test_hw_arch_defaults_to_plan_target(out, monkeypatch):
    plan = json.loads((out / "plan.json").read_text())
    plan["target"] = "hailo8l"
    (out / "plan.json").write_text(json.dumps(plan))
    sdk = StandinSDK()
    monkeypatch.setitem(sys.modules, "hailo_sdk_client", sdk)
    compile_cli.run(parse(out))
    assert {c["hw_arch"] for c in sdk.calls if c["method"] == "ClientRunner"} == {"hailo8l"}


def test_compile_settings_come_from_the_target():
    from types import SimpleNamespace
    assert compile_cli.compile_settings_for(SimpleNamespace(compile={"optimization_level": 4})) == \
        {"optimization_level": 4}
    assert compile_cli.compile_settings_for(None) == {}
