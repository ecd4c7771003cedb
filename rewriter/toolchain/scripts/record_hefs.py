"""Record compile.sh's results in plan.json: run by compile.sh inside Hailo's container, where this
project is not installed. `--emit-script` writes this file into compile/ with copies of the runtime's
plan schema (runtime/schema.py, runtime/errors.py) as the package `planfmt` beside it, so the plan
format has one owner here too: the document is changed with schema.record_compile and validated with
schema.parse_spec before it atomically replaces plan.json.

usage: python3 record_hefs.py PLAN_DIR   (reads PLAN_DIR/compile/status.tsv: MODEL<TAB>compiled|failed)
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from planfmt import schema  # noqa: E402  (the copy beside this script)
from planfmt.errors import PlanError  # noqa: E402


def main(plan_dir: str) -> int:
    status_path = os.path.join(plan_dir, "compile", "status.tsv")
    with open(status_path) as fh:
        status = dict(line.rstrip("\n").split("\t")[:2] for line in fh if line.strip())
    try:
        doc, path, _ = schema.read_plan_json(plan_dir)
        for model, result in status.items():
            hef = os.path.splitext(model)[0] + ".hef" if result == "compiled" else None
            schema.record_compile(doc, schema.Path(plan_dir), model, hef)
        schema.parse_spec(doc, path)
    except (PlanError, OSError) as exc:
        print(f"record_hefs: plan.json not updated: {exc}", file=sys.stderr)
        return 1
    tmp = str(path) + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(doc, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
