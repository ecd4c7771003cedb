"""`rewrite bench`: contract file, gates, JSON keys, exit codes; in process and against a live server."""

import json
import shutil
from pathlib import Path

import httpx
import pytest
from sv_helpers import REPO, TCN_MODEL, live_server

from rewriter.cli import main as rewrite
from runtime.bench.contract import SECTIONS, Contract, gates, load_contract
from runtime.errors import OptionError
from runtime.serve.config import ServeConfig
from runtime.serve.service import Service

KEYS = {"p50_ms", "p95_ms", "p99_ms", "windows_per_s", "rss_mb", "passed"}


def test_example_contract_file_holds_the_defaults():
    """examples/contract.toml documents every key with the built-in default (HAILO.md's contract)."""
    path = REPO / "examples" / "contract.toml"
    assert load_contract(path) == Contract()
    text = path.read_text()
    for section, keys in SECTIONS.items():
        assert f"[{section}]" in text and all(k in text for k in keys)
    c = Contract()
    assert (c.p95_ms, c.windows_per_s, c.rss_mb, c.onnx_vs_pytorch, c.hailo_vs_onnx) == (50, 20, 512, 0.99, 0.95)


@pytest.mark.parametrize(
    "text, says",
    [
        ("[latency]\np95 = 10\n", "unknown key 'p95'"),
        ("[speed]\nx = 1\n", "unknown section [speed]"),
        ("[latency]\np95_ms = 'fast'\n", "must be a number"),
        ("[latency]\np95_ms = -1\n", "must be a number"),
        ("[latency\n", "cannot read"),
    ],
)
def test_bad_contract_files(tmp_path, text, says):
    f = tmp_path / "c.toml"
    f.write_text(text)
    with pytest.raises(OptionError) as info:
        load_contract(f)
    assert says in str(info.value)


def test_gates_choose_the_cosine_limit_by_backend_and_zero_switches_off():
    result = {
        "p95_ms": 10.0,
        "windows_per_s": 100.0,
        "rss_mb": 100.0,
        "cosine": {"y": 0.97},
        "overhead": {"p95_ratio": 1.1},
        "backend": "hailo",
    }
    by_name = {g.name: g for g in gates(Contract(), result)}
    assert by_name["cosine vs ONNX (hailo_vs_onnx)"].passed  # 0.97 >= 0.95 on the device
    assert not gates(Contract(), {**result, "backend": "onnxruntime"})[3].passed  # float plan: 0.99999
    assert all(g.passed for g in by_name.values())
    off = gates(Contract(p95_ms=0, p95_ratio_vs_onnx=0), result)
    assert "p95 latency" not in {g.name for g in off} and not any(g.name.startswith("p95 /") for g in off)
    assert not gates(Contract(), {**result, "windows_per_s": 19.9})[1].passed


def run_bench(capsys, *args):
    code = rewrite(["bench", *map(str, args), "--json", "-q"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_in_process_on_the_tcn_plan(tcn_plan, capsys):
    code, doc = run_bench(capsys, tcn_plan, "--against", TCN_MODEL, "--requests", 300, "--concurrency", 2)
    assert KEYS <= set(doc) and doc["mode"] == "in-process" and doc["backend"] == "onnxruntime"
    assert doc["p50_ms"] <= doc["p95_ms"] <= doc["p99_ms"]
    assert doc["cosine"]["latent_embeddings"] > 0.99999
    assert doc["reference"]["threads"] == 1 and "p95_ratio" in doc["overhead"]
    assert doc["overhead"]["runtime_us_per_inference"] > 0
    assert doc["concurrent"]["clients"] == 2 and doc["concurrent"]["windows_per_s"] > 0
    assert {g["name"] for g in doc["gates"]} >= {
        "p95 latency",
        "throughput",
        "peak RSS",
        "cosine vs ONNX (plan_vs_onnx)",
        "p95 / bare onnxruntime p95",
    }
    assert code == (0 if doc["passed"] else 1) and doc["passed"] == all(g["passed"] for g in doc["gates"])


def test_a_failing_gate_exits_1(tcn_plan, tmp_path, capsys):
    strict = tmp_path / "strict.toml"
    # rss off: in process, the figure is this pytest process's peak (torch and all)
    strict.write_text("[latency]\np95_ms = 0.001\n[throughput]\nwindows_per_s = 1e9\n[memory]\nrss_mb = 0\n")
    code, doc = run_bench(capsys, tcn_plan, "--contract", strict, "--requests", 50, "--concurrency", 1)
    assert code == 1 and doc["passed"] is False
    failed = {g["name"] for g in doc["gates"] if not g["passed"]}
    assert failed == {"p95 latency", "throughput"}
    assert "peak RSS" not in {g["name"] for g in doc["gates"]}
    assert "concurrent" not in doc  # --concurrency 1: single stream only


def test_table_for_people(tcn_plan, capsys):
    rewrite(["bench", str(tcn_plan), "--requests", "30", "--concurrency", "1", "-q"])
    out = capsys.readouterr().out
    assert "single stream" in out and "runtime overhead" in out and "gate" in out
    assert "PASSED" in out or "FAILED" in out


def test_against_a_live_server(tcn_plan, capsys):
    service = Service(ServeConfig(plan=tcn_plan, output_names="latent"))
    with live_server(service) as url:
        _, doc = run_bench(
            capsys, tcn_plan, "--url", url, "--against", TCN_MODEL, "--requests", 100, "--concurrency", 3
        )
        peak = httpx.get(url + "/healthz").json()["peak_rss_mb"]
    assert KEYS <= set(doc) and doc["mode"] == "url" and doc["backend"] == "onnxruntime"
    assert doc["status_counts"] == {"200": 200} and doc["failed_requests"] == 0
    assert doc["cosine"]["latent_embeddings"] > 0.99999  # matched by position under the renamed key
    assert 0 < doc["rss_mb"] <= peak  # the server's (this pytest process here), from /healthz


def test_failed_requests_fail_the_bench(tcn_plan, capsys, tmp_path):
    wrong = Path(tmp_path / "other.plan")  # a plan whose input the server does not take
    wrong.mkdir()
    doc = json.loads((tcn_plan / "plan.json").read_text())
    doc["inputs"][0]["shape"] = [1, 50, 9]
    (wrong / "plan.json").write_text(json.dumps(doc))
    shutil.copytree(tcn_plan / "segments", wrong / "segments")  # a plan may not reach outside its folder
    service = Service(ServeConfig(plan=tcn_plan))
    with live_server(service) as url:
        code, doc = run_bench(capsys, wrong, "--url", url, "--requests", 10, "--concurrency", 1, "--warmup", 0)
    assert code == 1 and doc["failed_requests"] == 10 and doc["status_counts"] == {"422": 10}


@pytest.mark.parametrize(
    "args, says",
    [
        (["--requests", "0"], "--requests must be at least 1"),
        (["--url", "ftp://x"], "--url must look like"),
        (["--url", "http://127.0.0.1:9"], "no sidecar answering"),
        (["--against", "missing.onnx"], "no such model file"),
        (["--contract", "missing.toml"], "no such file"),
    ],
)
def test_user_errors_are_one_line_exit_2(tcn_plan, capsys, args, says):
    assert rewrite(["bench", str(tcn_plan), *args]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err and err.count("\n") == 1


def test_not_a_plan_folder(tmp_path, capsys):
    assert rewrite(["bench", str(tmp_path)]) == 2
    assert "plan.json not found" in capsys.readouterr().err
