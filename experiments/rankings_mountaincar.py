"""BC → rankings → PPO on Mountain Car (the three stages of the human-feedback pipeline, one simulated
person): the acceptance check of ``--agent rankings --init RUN``.

    nice python experiments/rankings_mountaincar.py --seeds 10 --workers 2

Per seed, two runs, each the ``tamer train`` of its config:

1. stage one, ``BC``: ``--agent bc --model mlp`` on a simulated demonstrator (the built-in Mountain Car
   oracle, 5% random actions; its steps and seconds are the demonstrations' human effort);
2. stages two and three, ``RANKINGS``: ``--agent rankings --init <the BC run>`` with the KL penalty towards
   it: PPO starts from the cloned policy; a simulated person on the same oracle ranks K attempts by the
   share of their steps whose action it approves (``--ranker oracle``), 10% of answers at random; the reward
   model learns from all rankings so far each round and PPO optimises r̂.

For each seed it prints the evaluation return (10 episodes, other env seeds; BC acts greedily, PPO samples
its policy) of the BC policy and of the final PPO policy, the pairs, rankings and human seconds used by each
stage, and then the mean over seeds against the oracle's own return (``tamer oracle``: −120.2) and the 15%
band around it. ``--set FIELD=VALUE`` overrides the rankings run, ``--bc FIELD=VALUE`` the BC run.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import tempfile
import time
from pathlib import Path

import numpy as np

from tamer.config import Config
from tamer.sweep import parse_overrides
from tamer.train import evaluate, train

ORACLE = -120.2  # tamer oracle --env MountainCar-v0 (20 episodes)
BC = {
    "env": "MountainCar-v0",
    "agent": "bc",
    "model": "mlp",
    "episodes": 1,
    "demo_episodes": 10,
    "bc_epochs": 300,
}
RANKINGS = {
    "env": "MountainCar-v0",
    "agent": "rankings",
    "gamma": 0.99,
    "ppo_steps": 40_000,
    "ppo_lr": 3e-4,
    "ppo_epochs": 10,
    "kl_coef": 0.3,
    "ranker": "oracle",
    "ranker_error": 0.1,
    "rank_k": 2,
    "rank_start": "rollouts",
    "rank_length": 50,
    "rank_rounds": 5,
    "rank_pairs": 200,
    "reward_model": "mlp",
    "reward_norm": "scale",
    "reward_epochs": 10,
    "reward_random": 0.1,
}


def run_seed(job: tuple[dict, dict, int]) -> dict:
    from tamer.deep import configure_torch

    configure_torch(1)
    bc_values, values, seed = job
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        bc_run, run = Path(tmp) / "bc", Path(tmp) / "rankings"
        bc_rows = train(Config.from_dict({**bc_values, "seed": seed}), bc_run, progress=False)
        bc_eval = evaluate(bc_run, episodes=10, seed=1000 + seed)
        rows = train(Config.from_dict({**values, "seed": seed, "init": str(bc_run)}), run, progress=False)
        final = evaluate(run, episodes=10, seed=1000 + seed)
        with open(run / "rounds.csv", newline="") as f:
            rounds = list(csv.DictReader(f))
    last = rounds[-1]
    return {
        "seed": seed,
        "bc": float(np.mean(bc_eval)),
        "final": float(np.mean(final)),
        "demo_steps": int(sum(r["demo_steps"] for r in bc_rows)),
        "demo_seconds": float(sum(r["human_seconds"] for r in bc_rows)),
        "pairs": int(last["pairs"]),
        "rankings": int(last["rankings"]),
        "rank_seconds": float(last["human_seconds"]),
        "ppo_steps": int(sum(r["length"] for r in rows)),
        "attempt_steps": int(last["attempt_steps"]),
        "val_accuracy": float(last["val_accuracy"] or "nan"),
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=10, help="Seeds 0..N-1 (default: 10).")
    parser.add_argument("--first", type=int, default=0, help="First seed (default: 0).")
    parser.add_argument("--workers", type=int, default=2, help="Processes (default: 2).")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="Rankings run.")
    parser.add_argument("--bc", action="append", default=[], metavar="FIELD=VALUE", help="BC run.")
    args = parser.parse_args()
    bc_values = {**BC, **parse_overrides(args.bc)}
    values = {**RANKINGS, **parse_overrides(args.set)}
    jobs = [(bc_values, values, seed) for seed in range(args.first, args.first + args.seeds)]
    started = time.perf_counter()
    if args.workers > 1:
        with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
            results = list(pool.imap(run_seed, jobs))
    else:
        results = [run_seed(job) for job in jobs]
    for r in results:
        print(
            f"seed {r['seed']}: BC {r['bc']:.1f} -> rankings->PPO {r['final']:.1f} (eval, 10 episodes); "
            f"demos {r['demo_steps']} steps {r['demo_seconds']:.0f} s; rankings {r['pairs']} pairs in "
            f"{r['rankings']} rankings {r['rank_seconds']:.0f} s; env steps {r['ppo_steps']} PPO + "
            f"{r['attempt_steps']} attempts; held-out accuracy {r['val_accuracy']:.2f}; {r['seconds']:.0f} s",
            flush=True,
        )
    final = np.array([r["final"] for r in results])
    half = 1.96 * final.std(ddof=1) / np.sqrt(len(final)) if len(final) > 1 else float("nan")
    band = ORACLE * 1.15
    changed = ", ".join(f"{k}={v}" for k, v in values.items() if RANKINGS.get(k) != v)
    demos, ranks = (np.mean([r[k] for r in results]) for k in ("demo_seconds", "rank_seconds"))
    print(
        f"BC -> rankings -> PPO{f' ({changed})' if changed else ''}: final eval mean {final.mean():.1f} ± "
        f"{half:.1f} over {len(final)} seeds (BC alone {np.mean([r['bc'] for r in results]):.1f}); oracle "
        f"{ORACLE}, within 15% means >= {band:.1f}: {'yes' if final.mean() >= band else 'no'}; "
        f"{int((final >= band).sum())}/{len(final)} seeds; pairs {np.mean([r['pairs'] for r in results]):.0f}"
        f", human seconds {demos + ranks:.0f} (demos {demos:.0f} + rankings {ranks:.0f}) per seed; "
        f"{time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
