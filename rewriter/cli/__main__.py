import sys

from rewriter.cli.main import main

sys.exit(main())
