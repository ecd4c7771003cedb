import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for p in (str(HERE.parents[1]), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)


@pytest.fixture
def target(tmp_path):
    """hailo8's target with roundtrip_macs = 0 (tiny test models stay on hailo)."""
    from util import custom_target

    return custom_target(tmp_path)
