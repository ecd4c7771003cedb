"""compile.sh never runs what a name holds: names from a tampered plan.json are refused, and names the
script must carry (the model's node names, passed to the Hailo CLI) are quoted, so the exact bytes
reach the CLI and nothing else runs. Checked by running the script with the fake `hailo` CLI."""

import json
import subprocess

import pytest
from plan_steps import onnx_step

from rewriter.cli import main
from rewriter.toolchain import emit_script
from rewriter.toolchain.emit_script import emit_compile_script
from runtime.schema import load_spec

from .plans import conv_segment, nhwc_calib, standard_plan, write_plan_json
from .test_emit_script import calls, run_script, shim  # noqa: F401 - shim is a fixture


def payloads(pwned):
    """Shell that would create a file under `pwned` if it were ever executed rather than quoted."""
    return [
        f"a\ntouch {pwned}/newline\n#",
        f"b\r\ntouch {pwned}/crlf",
        f"$(touch {pwned}/subst)",
        f"`touch {pwned}/backtick`",
        f"c'; touch {pwned}/quote; echo '",
        f'd"; touch {pwned}/dquote; echo "',
        f"e; touch {pwned}/semicolon",
    ]


@pytest.fixture
def pwned(tmp_path):
    folder = tmp_path / "pwned"
    folder.mkdir()
    return folder


def test_tampered_step_names_are_refused_in_one_line(tmp_path, pwned, capsys):
    for k, payload in enumerate(payloads(pwned)):
        out = standard_plan(tmp_path / f"plan{k}")
        doc = json.loads((out / "plan.json").read_text())
        doc["steps"][1]["name"] = payload
        (out / "plan.json").write_text(json.dumps(doc))
        rc = main(["compile", str(out), "--emit-script"])
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith("rewrite") and err.count("\n") == 1, err
        assert "step name" in err
        assert not (out / "compile" / "compile.sh").exists()
    assert list(pwned.iterdir()) == []


def test_tampered_model_path_is_refused(tmp_path, capsys):
    out = standard_plan(tmp_path / "plan")
    doc = json.loads((out / "plan.json").read_text())
    doc["steps"][1]["model"] = "segments/hailo_1.onnx\ntouch /tmp/x"
    (out / "plan.json").write_text(json.dumps(doc))
    assert main(["compile", str(out), "--emit-script"]) == 2
    assert "must be relative to the plan folder" in capsys.readouterr().err


def node_name_plan(out, names):
    """One hailo step whose segment's Conv and Relu carry hostile node names (node names are the
    model's own, not plan.json's: they must reach the CLI exactly)."""
    (out / "segments").mkdir(parents=True)
    (out / "calib").mkdir()
    conv_segment(out / "segments/hailo_1.onnx", width=16)
    import onnx

    model = onnx.load(str(out / "segments/hailo_1.onnx"))
    model.graph.node[0].name, model.graph.node[1].name = names
    onnx.save(model, str(out / "segments/hailo_1.onnx"))
    nhwc_calib(out / "calib/hailo_1.npy", 64, 4, 16)
    write_plan_json(
        out,
        [onnx_step("hailo_1", ["x"], ["y"], calib="calib/hailo_1.npy")],
    )
    return out


@pytest.mark.parametrize("k", range(len(payloads("P")) - 1))
def test_hostile_node_names_reach_the_cli_verbatim_and_run_nothing(tmp_path, pwned, shim, k):  # noqa: F811
    first, second = payloads(pwned)[k], payloads(pwned)[k + 1]
    out = node_name_plan(tmp_path / "plan", (first, second))
    emitted = emit_compile_script(out, "hailo8")
    subprocess.run(["bash", "-n", str(emitted.script)], check=True)
    log = tmp_path / "hailo.log"
    r = run_script(emitted.script, shim, log)
    assert r.returncode == 0, r.stderr
    assert list(pwned.iterdir()) == []
    parser = calls(log)[0]
    assert parser[parser.index("--start-node-names") + 1] == first
    assert parser[parser.index("--end-node-names") + 1] == second
    # the script recorded the HEF the way `rewrite compile` does: listed in `files`, verified on load
    spec = load_spec(out)
    assert spec.steps[0].hef_path is not None and spec.steps[0].compile_status == "compiled"
    spec.verify_file(spec.steps[0].hef_path)


def test_script_quotes_names_even_if_the_plan_check_were_bypassed(tmp_path, pwned, shim, monkeypatch):  # noqa: F811
    """Defence in depth: with the schema's name check skipped, step names land only in comments and
    quoted words, never on a shell line of their own."""
    out = standard_plan(tmp_path / "plan")
    doc = json.loads((out / "plan.json").read_text())
    hostile = payloads(pwned)
    for step, payload in zip(doc["steps"], hostile):
        step["name"] = payload
    monkeypatch.setattr(emit_script, "load_plan", lambda _: doc)
    emitted = emit_compile_script(out, "hailo8")
    subprocess.run(["bash", "-n", str(emitted.script)], check=True)
    text = emitted.script.read_text()
    assert all(line.startswith("#") for line in text.splitlines() if "touch" in line and "# ---" in line)
    run_script(emitted.script, shim, tmp_path / "hailo.log")
    assert list(pwned.iterdir()) == []


def test_odd_hw_arch_is_refused(tmp_path, pwned):
    from rewriter.errors import UserError

    out = standard_plan(tmp_path / "plan")
    with pytest.raises(UserError, match="not a plain name"):
        emit_compile_script(out, f"hailo8$(touch {pwned}/arch)")
    assert not (out / "compile" / "compile.sh").exists()
