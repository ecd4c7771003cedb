"""Write synthetic IMU calibration windows: python examples/imu_calibration.py -n 1100 -o calib.npy

Thin wrapper: the generator lives in rewriter/toolchain/imu_synth.py.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from rewriter.toolchain.imu_synth import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
