import sys
from pathlib import Path

# shared test helpers (tests/model_feeds.py), the fuzzer's graph generator (tests/fuzz/fuzz_graphs.py)
# and the examples' modules (examples/imu_synth.py) importable from every test folder
TESTS = Path(__file__).resolve().parent
for folder in (TESTS, TESTS / "fuzz", TESTS.parent / "examples"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


def pytest_configure(config):
    """Caches (parsed rules, int8 emulation) go to one folder per test session, not the user's home."""
    import os
    import tempfile

    os.environ.setdefault("XDG_CACHE_HOME", tempfile.mkdtemp(prefix="hailo-rewriter-test-cache-"))
