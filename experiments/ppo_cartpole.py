"""PPO alone on CartPole-v1 with the default PPO settings (RL Zoo's set) over seeds: the acceptance check of
``--rl ppo``.

    python experiments/ppo_cartpole.py --seeds 10 --workers 2
    python experiments/ppo_cartpole.py --seeds 10 --workers 2 --set ppo_steps=50000

Every seed is ``tamer train --env CartPole-v1 --agent rl --rl ppo --gamma 0.98`` (1e5 env steps), through the
framework's vectorised loop. For each seed it prints the env step at which the mean return of the last 10
finished episodes first reached 475 (during training, the stochastic policy), the mean of the last 10 training
episodes, and the mean return of 10 evaluation episodes of the final policy (``tamer eval``: sampled actions,
no learning, a different env seed); then how many seeds reached 475 and the median env step they did it at.
Any config field can be set with ``--set field=value`` (repeatable).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from tamer.callbacks import Callback
from tamer.config import Config
from tamer.sweep import parse_overrides
from tamer.train import evaluate, train

BASE = {"env": "CartPole-v1", "agent": "rl", "rl": "ppo", "gamma": 0.98}


class Reached(Callback):
    """The env step at which the mean return of the last ``window`` episodes first reached ``threshold``."""

    def __init__(self, threshold: float, window: int):
        self.threshold, self.window, self.returns, self.reached = threshold, window, [], None

    def on_episode_end(self, s, row: dict) -> None:
        self.returns.append(row["return"])
        recent = self.returns[-self.window :]
        if self.reached is None and len(recent) == self.window and np.mean(recent) >= self.threshold:
            self.reached = s.steps


def run_seed(job: tuple[dict, int, float, int]) -> dict:
    values, seed, threshold, window = job
    cfg = Config.from_dict({**values, "seed": seed})
    watch = Reached(threshold, window)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        train(cfg, Path(tmp) / "run", progress=False, callbacks=[watch])
        evaluated = evaluate(Path(tmp) / "run", episodes=10, seed=1000 + seed)
    return {
        "seed": seed,
        "reached": watch.reached,
        "last": float(np.mean(watch.returns[-window:])),
        "eval": float(np.mean(evaluated)),
        "episodes": len(watch.returns),
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=10, help="Seeds 0..N-1 (default: 10).")
    parser.add_argument("--workers", type=int, default=1, help="Processes (default: 1).")
    parser.add_argument("--threshold", type=float, default=475.0)
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="Config overrides.")
    args = parser.parse_args()
    values = {**BASE, **parse_overrides(args.set)}
    jobs = [(values, seed, args.threshold, args.window) for seed in range(args.seeds)]
    started = time.perf_counter()
    if args.workers > 1:
        with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
            results = list(pool.imap(run_seed, jobs))
    else:
        results = [run_seed(job) for job in jobs]
    for r in results:
        print(
            f"seed {r['seed']}: last-{args.window} mean {args.threshold:g} at env step {r['reached']}; "
            f"last {args.window} training episodes {r['last']:.1f}; eval (10 episodes) {r['eval']:.1f}; "
            f"{r['episodes']} episodes, {r['seconds']:.0f} s",
            flush=True,
        )
    reached = [r["reached"] for r in results if r["reached"] is not None]
    print(
        f"PPO ({', '.join(f'{k}={v}' for k, v in values.items())}): {len(reached)}/{len(results)} "
        f"seeds reached a last-{args.window} mean of {args.threshold:g}"
        + (
            f", median env step {statistics.median(reached):.0f} ({min(reached)}-{max(reached)})"
            if reached
            else ""
        )
        + f"; eval mean {np.mean([r['eval'] for r in results]):.1f}; {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
