"""The `rewrite` command line (verbs in rewriter/cli/commands.py)."""

from rewriter.cli.main import main, run

__all__ = ["main", "run"]
