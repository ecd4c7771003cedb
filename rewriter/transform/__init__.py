"""Pass infrastructure: the pass manager and rule files as passes (the rule language is rewriter.dsl)."""
