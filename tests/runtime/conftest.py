import sys
from pathlib import Path

# Make `runtime` importable however pytest is started, and this folder's helpers too.
ROOT = Path(__file__).resolve().parents[2]
for p in (str(ROOT), str(Path(__file__).resolve().parent)):
    if p not in sys.path:
        sys.path.insert(0, p)
