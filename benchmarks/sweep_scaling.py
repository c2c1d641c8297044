"""Throughput of `tamer sweep` with 2 workers as a ratio to 1 worker, on the shipped Mountain Car sweep.

    python benchmarks/sweep_scaling.py [--experiment experiments/mountaincar_blends.toml] [--seeds 2]
                                       [--episodes 50] [--workers 2] [--repeats 2]

Runs the first ``--seeds`` seeds of every cell of the experiment (episodes cut to ``--episodes`` so a
measurement takes a minute, not an hour) through ``tamer.sweep.run_all`` into a fresh folder, once with 1
worker and once with ``--workers``, alternating, ``--repeats`` times; prints runs/s of each and the median
ratio. Both sides include everything a sweep does (process start-up, writing and renaming run folders).
Target (issue 5): >= 1.7 with 2 workers on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from tamer.sweep import load_experiment, run_all


def throughput(experiment: Path, seeds: int, episodes: int, workers: int) -> tuple[float, int]:
    runs_of = load_experiment(experiment, {"episodes": episodes}, seeds=seeds)
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as tmp:
        runs = runs_of.runs(Path(tmp))
        started = time.perf_counter()
        n = run_all(runs, Path(tmp), workers=workers, progress=False)
        return n / (time.perf_counter() - started), n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", type=Path, default=Path("experiments/mountaincar_blends.toml"))
    parser.add_argument("--seeds", type=int, default=2, help="Seeds per cell (default: 2).")
    parser.add_argument("--episodes", type=int, default=50, help="Episodes per run (default: 50).")
    parser.add_argument("--workers", type=int, default=2, help="Workers compared with 1 (default: 2).")
    parser.add_argument("--repeats", type=int, default=2, help="Alternating repeats (default: 2).")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; {args.experiment}, {args.seeds} seeds per cell, {args.episodes} episodes")
    ratios = []
    for repeat in range(args.repeats):
        one, n = throughput(args.experiment, args.seeds, args.episodes, 1)
        many, _ = throughput(args.experiment, args.seeds, args.episodes, args.workers)
        ratios.append(many / one)
        print(
            f"repeat {repeat + 1}: {n} runs; 1 worker {one:.2f} runs/s, {args.workers} workers "
            f"{many:.2f} runs/s, ratio {many / one:.2f}"
        )
    print(f"throughput ratio, {args.workers} workers / 1 worker (median): {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
