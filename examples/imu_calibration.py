"""Write synthetic IMU calibration windows: `python examples/imu_calibration.py -n 1100 -o calib.npy`.

Thin wrapper: the generator lives in examples/imu_synth.py (calibration filler for the examples,
not part of the compiler).
"""

import sys

from imu_synth import main  # the script's folder is on sys.path when run as a file

if __name__ == "__main__":
    sys.exit(main())
