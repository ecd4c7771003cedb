"""FAKE `hailo` command (stand-in for Hailo's DFC CLI) used by test_emit_script.

Records its argv (one JSON line per call to $HAILO_SHIM_LOG), checks the arguments the emitted
script passes, and creates the files the real CLI is reported to write in the current directory:
parser -> NAME.har, optimize -> NAME_optimized.har, compiler -> NAME.hef. Networks named in
$HAILO_SHIM_FAIL (comma-separated) fail at the parser.
"""

import json
import os
import sys
from pathlib import Path


def die(msg):
    print(f"fake hailo: {msg}", file=sys.stderr)
    sys.exit(1)


def flag_values(argv, flag):
    if flag not in argv:
        return None
    out = []
    for a in argv[argv.index(flag) + 1 :]:
        if a.startswith("--") or a == "-y":
            break
        out.append(a)
    return out


def main(argv):
    with open(os.environ["HAILO_SHIM_LOG"], "a") as fh:
        fh.write(json.dumps({"argv": argv, "cwd": os.getcwd()}) + "\n")
    if flag_values(argv, "--hw-arch") not in (["hailo8"], ["hailo8l"]):
        die(f"bad --hw-arch in {argv}")
    fails = set(filter(None, os.environ.get("HAILO_SHIM_FAIL", "").split(",")))
    cmd = argv[0]
    if cmd == "parser":
        if argv[1] != "onnx" or not Path(argv[2]).is_file() or "-y" not in argv:
            die(f"bad parser call {argv}")
        if not flag_values(argv, "--start-node-names") or not flag_values(argv, "--end-node-names"):
            die("missing node names")
        net = Path(argv[2]).stem
        if net in fails:
            die(f"ParsingWithRecommendationException: {net}")
        Path(f"{net}.har").write_text("har")
    elif cmd == "optimize":
        har = Path(argv[1])
        if not har.is_file():
            die(f"no {har} in {os.getcwd()}")
        calib = flag_values(argv, "--calib-set-path")
        if not ("--use-random-calib-set" in argv or (calib and Path(calib[0]).is_file())):
            die("no calibration set")
        if not Path(flag_values(argv, "--model-script")[0]).is_file():
            die("no model script")
        Path(f"{har.stem}_optimized.har").write_text("optimized")
    elif cmd == "compiler":
        har = Path(argv[1])
        if not har.is_file() or not har.stem.endswith("_optimized"):
            die(f"bad compiler input {har}")
        net = har.stem[: -len("_optimized")]
        Path(f"{net}.hef").write_bytes(f"HEF {net}".encode())
    else:
        die(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv[1:])
