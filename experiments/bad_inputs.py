"""Print the table of bad inputs that tests/test_bad_inputs.py checks: input, the one line the CLI answers
with, and its exit code (2 for each). Temporary paths are shown as <tmp>.

    python experiments/bad_inputs.py                       # every case
    python experiments/bad_inputs.py --only "train --seed -1"
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_bad_inputs import CASES, run_case  # noqa: E402  (the cases live beside their test)

from tamer.config import Config  # noqa: E402
from tamer.train import train  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], help="Just this case (its input); repeatable.")
    args = parser.parse_args()
    cases = [c for c in CASES if not args.only or c.name in args.only]
    print("| input | message | exit code |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "trained"
        train(Config(env="tamer/GridWorld-v0", episodes=1), run, progress=False)
        os.environ["TAMER_TEST_RUN"] = str(run)
        for i, case in enumerate(cases):
            folder = Path(tmp) / str(i)
            folder.mkdir()
            try:
                code, _, err = run_case(case, folder)
            finally:
                if (folder / "ro").exists():
                    (folder / "ro").chmod(0o700)
            message = err.strip().replace(str(folder), "<tmp>").replace("|", "\\|")
            for prefix in ("tamer: error: ", "tamer train: error: "):
                message = message.removeprefix(prefix)
            print(f"| {case.name} | {message} | {code} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
