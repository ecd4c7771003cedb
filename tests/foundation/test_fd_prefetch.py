"""The CLI reads the source model (and takes its sha256) on a second thread while the interpreter
imports: rewriter.ir.prefetch. The bytes and digest are those of the file, used only while the file
is still the one read, handed out once, and the CLI's plans are the ones a plain read gives."""

from __future__ import annotations

import os

import onnx
import pytest
from fd_util import conv_chain_model, quiet_cli, read_plan, save

from rewriter.ir import load as load_module
from rewriter.ir import prefetch
from rewriter.ir.load import read_model
from runtime.schema import file_entry


@pytest.fixture(autouse=True)
def fresh_registry():
    prefetch.forget()
    yield
    prefetch.forget()


def test_bytes_and_digest_are_the_files(tmp_path):
    path = save(conv_chain_model(), tmp_path / "m.onnx")
    prefetch.prefetch(path)
    assert prefetch.source_entry(path) == file_entry(path)
    assert prefetch.take_bytes(tmp_path / "." / "m.onnx") == path.read_bytes()  # any spelling of the path
    assert prefetch.take_bytes(path) is None  # handed out once: the caller owns the memory
    assert prefetch.source_entry(path) == file_entry(path)  # the digest stays


def test_a_file_changed_since_is_read_again(tmp_path):
    path = save(conv_chain_model(), tmp_path / "m.onnx")
    prefetch.prefetch(path)
    assert prefetch.source_entry(path) is not None  # the read is done
    save(conv_chain_model(channels=4), path)
    os.utime(path, ns=(1, 1))  # whatever the clock's resolution: another modification time
    assert prefetch.take_bytes(path) is None and prefetch.source_entry(path) is None
    model = read_model(path)  # read from the file as it is now
    assert model.graph.input[0].type.tensor_type.shape.dim[1].dim_value == 4


@pytest.mark.parametrize("what", ["missing", "folder"])
def test_no_file_no_prefetch(tmp_path, what):
    path = tmp_path / "m.onnx"
    if what == "folder":
        path.mkdir()
    prefetch.prefetch(path)
    assert prefetch.take_bytes(path) is None and prefetch.source_entry(path) is None


def test_read_model_takes_the_prefetched_bytes(tmp_path, monkeypatch):
    path = save(conv_chain_model(), tmp_path / "m.onnx")
    prefetch.prefetch(path)

    def no_file_read(*args, **kwargs):
        raise AssertionError("the file was read again")

    want = onnx.load_model_from_string(path.read_bytes())
    monkeypatch.setattr(load_module.onnx, "load", no_file_read)
    assert read_model(path) == want


def test_text_format_by_extension(tmp_path):
    """onnx.load picks the format from the extension; so does the prefetched path."""
    model = conv_chain_model()
    path = tmp_path / "m.textproto"
    onnx.save(model, path, format="textproto")
    prefetch.prefetch(path)
    assert read_model(path) == model


def test_cli_plan_records_the_files_digest(tmp_path, monkeypatch):
    path = save(conv_chain_model(), tmp_path / "m.onnx")
    monkeypatch.setattr(load_module.onnx, "load", lambda *a, **k: pytest.fail("the CLI read the model again"))
    assert quiet_cli(path, "-o", tmp_path / "out.plan") == 0
    source = read_plan(tmp_path / "out.plan")["source"]
    assert {k: source[k] for k in ("sha256", "bytes")} == file_entry(path)


def test_cli_errors_are_unchanged(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    assert quiet_cli(bad, "-o", tmp_path / "out.plan") == 2
    assert quiet_cli(tmp_path / "missing.onnx", "-o", tmp_path / "out2.plan") == 2
    assert not (tmp_path / "out.plan").exists() and not (tmp_path / "out2.plan").exists()


def test_the_record_is_of_the_bytes_converted(tmp_path):
    """Once the bytes are taken (and converted), the plan's source record is theirs even if the
    file changes before the plan is written."""
    path = save(conv_chain_model(), tmp_path / "m.onnx")
    before = file_entry(path)
    prefetch.prefetch(path)
    assert prefetch.take_bytes(path) is not None
    save(conv_chain_model(channels=4), path)
    os.utime(path, ns=(1, 1))
    assert prefetch.source_entry(path) == before != file_entry(path)


def test_the_cli_lets_go_of_what_it_prefetched(tmp_path):
    path = save(conv_chain_model(), tmp_path / "m.onnx")
    assert quiet_cli(path, "-o", tmp_path / "out.plan") == 0
    assert quiet_cli(tmp_path / "m.onnx", "--target", "no-such-target", "-o", tmp_path / "x.plan") == 2
    assert prefetch.source_entry(path) is None and prefetch.take_bytes(path) is None
