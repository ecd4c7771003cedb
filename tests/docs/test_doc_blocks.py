"""The docs test's parser and output matcher (doc_blocks.py) behave as its conventions say."""

from pathlib import Path

from doc_blocks import indented_commands, output_matches, shell_blocks


def write(tmp_path, text) -> Path:
    p = tmp_path / "doc.md"
    p.write_text(text)
    return p


def test_blocks_commands_continuations_and_flags(tmp_path):
    doc = write(
        tmp_path,
        "intro\n\n```sh\n# comment\nrewrite a.onnx \\\n  -o out\n\npython x.py\n```\n\n"
        "```sh illustrative\nrewrite MODEL [-o OUT]\n```\n\n```python\nprint(1)\n```\n",
    )
    blocks = shell_blocks(doc)
    assert [(b.lang, b.flags) for b in blocks] == [("sh", set()), ("sh", {"illustrative"})]
    assert [(c.text, c.line) for c in blocks[0].commands()] == [("rewrite a.onnx -o out", 5), ("python x.py", 8)]


def test_console_blocks_carry_expected_output(tmp_path):
    doc = write(
        tmp_path, "```console\n$ rewrite x.onnx\nPlacement ...: 3 segments\n...\nplan written\n\n$ ls\nplan\n```\n"
    )
    a, b = shell_blocks(doc)[0].commands()
    assert a.text == "rewrite x.onnx" and a.expected == ["Placement ...: 3 segments", "...", "plan written"]
    assert b.expected == ["plan"]


def test_output_matching():
    out = "Placement for hailo8: 3 segments\nstep  device\nhost_0  host\nplan written to x\n"
    assert output_matches(["Placement ...: 3 segments", "step device"], out) is None
    assert output_matches(["Placement ...: 3 segments", "...", "plan written to x"], out) is None
    assert output_matches(["Placement ...: 4 segments"], out) is not None
    assert output_matches(["step device", "plan written to x"], out) is not None  # not consecutive, no '...'
    assert output_matches(["plan written to x", "step device"], out) is not None  # order matters


def test_indented_commands_are_found(tmp_path):
    doc = write(tmp_path, "Text\n\n    rewrite m.onnx\n\n- a list\n    continued\n\n```sh\n    rewrite fine\n```\n")
    assert indented_commands(doc) == [(3, "rewrite m.onnx")]
