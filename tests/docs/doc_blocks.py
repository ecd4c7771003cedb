"""Shell blocks of the project's Markdown docs, as the docs test runs them.

Conventions (docs/contributing.md says the same for authors):
* ```sh / ```bash: commands, run in order in one workspace per document (a `\\` line end continues
  a command; `#` comments are ignored).
* ```console: `$ command` lines are run; the lines after a command (up to the next `$`) are its
  expected output: each must appear in the real output, in order; `...` matches any text inside a
  line, and a line that is only `...` matches any number of lines.
* A word after the language marks the block: `illustrative` (syntax or a sketch: never run),
  `slow` (run only with DOCS_SLOW=1), `needs-fixtures` (skipped when ../shared/fixtures is absent),
  `needs-corpus` (skipped unless the packages of tests/corpus/requirements-nodeps.txt are installed).
* `pip install` lines are not run (the test environment is already installed); the extras they
  name must exist in pyproject.toml.
* Indented code blocks must not hold commands: a command is always in a fenced, marked block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

SHELL_LANGS = {"sh", "bash", "shell", "console"}
FLAGS = {"illustrative", "slow", "needs-fixtures", "needs-corpus"}
COMMAND_WORDS = ("rewrite ", "python ", "pip ", "bash ", "curl ", "dask ", "$ ")
_FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*(.*)$")


@dataclass
class Command:
    text: str
    line: int
    expected: list[str] = field(default_factory=list)  # console blocks only


@dataclass
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    flags: set[str]
    body: list[str]

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"

    def commands(self) -> list[Command]:
        if self.lang == "console":
            return _console_commands(self)
        out: list[Command] = []
        pending, start = "", 0
        for k, raw in enumerate(self.body, start=self.line + 1):
            line = raw.strip()
            if not pending and (not line or line.startswith("#")):
                continue
            if not pending:
                start = k
            if line.endswith("\\"):
                pending += line[:-1].rstrip() + " "
                continue
            out.append(Command((pending + line).strip(), start))
            pending = ""
        return out


def _console_commands(block: Block) -> list[Command]:
    out: list[Command] = []
    for k, raw in enumerate(block.body, start=block.line + 1):
        if raw.startswith("$ "):
            out.append(Command(raw[2:].strip(), k))
        elif out:
            out[-1].expected.append(raw.rstrip())
    for cmd in out:
        while cmd.expected and not cmd.expected[-1].strip():
            cmd.expected.pop()
    return out


def fenced_blocks(path: Path) -> list[Block]:
    lines = path.read_text().splitlines()
    blocks, k = [], 0
    while k < len(lines):
        m = _FENCE.match(lines[k])
        if not m:
            k += 1
            continue
        fence, info = m.group(2), m.group(3).split()
        end = k + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        lang = info[0].lower() if info else ""
        blocks.append(Block(path, k + 1, lang, set(info[1:]), lines[k + 1 : end]))
        k = end + 1
    return blocks


def shell_blocks(path: Path) -> list[Block]:
    return [b for b in fenced_blocks(path) if b.lang in SHELL_LANGS]


def indented_commands(path: Path) -> list[tuple[int, str]]:
    """Lines of indented code blocks (outside fences, after a blank line) that look like commands."""
    found, in_fence, prev_blank, in_block = [], False, True, False
    for k, line in enumerate(path.read_text().splitlines(), start=1):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        indented = line.startswith("    ") and line.strip()
        if indented and (prev_blank or in_block) and not line.lstrip().startswith(("-", "*", "|")):
            in_block = True
            if line.strip().startswith(COMMAND_WORDS):
                found.append((k, line.strip()))
        elif line.strip():
            in_block = False
        prev_blank = not line.strip()
    return found


def output_matches(expected: list[str], actual: str) -> str | None:
    """None when every expected line appears in `actual` in order (see module doc), else why not."""
    got = [" ".join(line.split()) for line in actual.splitlines()]
    pos = 0
    skip_any = False
    for want in expected:
        want_n = " ".join(want.split())
        if want_n == "...":
            skip_any = True
            continue
        pattern = re.compile("^" + ".*".join(re.escape(part) for part in want_n.split("...")) + "$")
        hit = next((i for i in range(pos, len(got)) if pattern.match(got[i])), None)
        if hit is None or (not skip_any and hit != pos and pos != 0):
            return f"expected line not found in order: {want!r}"
        pos, skip_any = hit + 1, False
    return None
