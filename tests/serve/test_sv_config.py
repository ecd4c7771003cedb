"""--output-names forms, USE_REAL_MODEL / --stub, option bounds."""

from pathlib import Path

import pytest

from runtime.errors import OptionError
from runtime.serve.config import ServeConfig, output_keys, stub_requested

OUTS = ["latent_embeddings", "scores"]


def test_default_keys_are_plan_output_names():
    assert output_keys(None, OUTS) == {"latent_embeddings": "latent_embeddings", "scores": "scores"}


def test_positional_names():
    assert output_keys("latent, motif_scores", OUTS) == {"latent_embeddings": "latent", "scores": "motif_scores"}


def test_pairs_rename_some_outputs():
    assert output_keys("scores=motif_scores", OUTS) == {
        "latent_embeddings": "latent_embeddings",
        "scores": "motif_scores",
    }


@pytest.mark.parametrize(
    "name, text",
    [
        ("keys.toml", '[outputs]\nlatent_embeddings = "latent"\nscores = "motif_scores"\n'),
        ("keys.toml", 'latent_embeddings = "latent"\nscores = "motif_scores"\n'),
        ("keys.json", '{"latent_embeddings": "latent", "scores": "motif_scores"}'),
    ],
)
def test_mapping_files(tmp_path: Path, name, text):
    f = tmp_path / name
    f.write_text(text)
    assert output_keys(str(f), OUTS) == {"latent_embeddings": "latent", "scores": "motif_scores"}


@pytest.mark.parametrize(
    "spec, says",
    [
        ("only_one", "1 name(s) for 2"),
        ("a,,", "3 name(s)"),
        ("nope=x", "not among the plan's outputs"),
        ("scores=latent_embeddings", "same key"),
        ("scores=", "bad pair"),
        ("missing.toml", "no such file"),
    ],
)
def test_bad_specs(spec, says):
    with pytest.raises(OptionError, match=says.replace("(", r"\(").replace(")", r"\)")):
        output_keys(spec, OUTS)


def test_bad_mapping_file(tmp_path):
    f = tmp_path / "k.json"
    f.write_text('{"scores": 3}')
    with pytest.raises(OptionError, match="must map"):
        output_keys(str(f), OUTS)
    f.write_text("{broken")
    with pytest.raises(OptionError, match="cannot read"):
        output_keys(str(f), OUTS)


@pytest.mark.parametrize("value, stub", [("0", True), ("false", True), ("Off", True), ("1", False), ("", False)])
def test_use_real_model_env(value, stub):
    got, why = stub_requested(False, {"USE_REAL_MODEL": value})
    assert got is stub and (why == f"USE_REAL_MODEL={value}" if stub else why == "")


def test_stub_flag_wins_and_env_absent():
    assert stub_requested(True, {}) == (True, "--stub")
    assert stub_requested(False, {}) == (False, "")


@pytest.mark.parametrize("field, value", [("workers", 0), ("threads", 0), ("queue_size", -1), ("port", 70000)])
def test_validate_bounds(field, value):
    with pytest.raises(OptionError):
        ServeConfig(plan=Path("p"), **{field: value}).validate()
