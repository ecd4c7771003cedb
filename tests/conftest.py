import sys
from pathlib import Path

# shared test helpers (tests/model_feeds.py) importable from every test folder
TESTS = str(Path(__file__).resolve().parent)
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)
