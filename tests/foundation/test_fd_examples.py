"""The README's main example runs end to end: build the TCN encoder, export, rewrite, check, run."""

import importlib.util
import json
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tcn_encoder.py"


def test_tcn_encoder_example(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("tcn_encoder_example", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert example.main(["--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "FAIL" not in printed and "latent_embeddings: shape [1, 64]" in printed
    doc = json.loads((tmp_path / "tcn_encoder.plan" / "plan.json").read_text())
    hailo = [s for s in doc["steps"] if s["device"] == "hailo"]
    assert len(hailo) == 1  # the nine convs and the head in one segment
