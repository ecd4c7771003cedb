import sys
from pathlib import Path

# Make the repo and this folder's helpers importable however pytest is started.
HERE = Path(__file__).resolve().parent
for p in (str(HERE.parents[1]), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)
