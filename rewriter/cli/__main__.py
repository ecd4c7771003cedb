from rewriter.cli.main import run

run()
