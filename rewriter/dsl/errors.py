"""Errors of the rule language: positioned syntax/load errors and driver errors."""

from __future__ import annotations

from rewriter.errors import UserError


class RuleError(UserError):
    """A rule could not be applied (non-convergence, helper failure, bad rewrite)."""


class RuleSyntaxError(RuleError):
    """A load-time error. str() is `file:line:col: message` + the source line + a caret."""

    shows_source = True  # the CLI prints the source line and caret below the one-line message

    def __init__(self, message: str, file: str = "<string>", line: int = 0, col: int = 0, source_line: str = ""):
        self.message, self.file, self.line, self.col = message, file, line, col
        self.source_line = source_line
        super().__init__(self._render())

    def _render(self) -> str:
        head = f"{self.file}:{self.line}:{self.col}: {self.message}"
        if not self.source_line:
            return head
        caret = " " * max(self.col - 1, 0) + "^"
        return f"{head}\n{self.source_line}\n{caret}"

    def __str__(self) -> str:
        return self._render()


def located(message: str, file: str, text: str, line: int, col: int) -> RuleSyntaxError:
    """Build a RuleSyntaxError quoting line `line` (1-based) of `text`."""
    lines = text.splitlines()
    src = lines[line - 1] if 0 < line <= len(lines) else ""
    return RuleSyntaxError(message, file, line, col, src)
