"""Rankings → PPO on CartPole-v1 (``--agent rankings``, stages two and three of the human-feedback pipeline)
over seeds: the acceptance check of ``tamer.pipeline``.

    nice python experiments/rankings_cartpole.py --seeds 10 --workers 2

Every seed is ``tamer train --env CartPole-v1 --agent rankings`` with ``BASE`` below: a simulated person
who ranks by the true return (ties below 1.5 apart) and answers at random 10% of the time; K = 2 attempts
per query, each a 25-step window of an episode PPO played since the last round (no env steps of their own,
but round 0's), starting anywhere in an episode that ended in failure, so that a window reaching the pole's
fall is shorter (on CartPole every step pays +1: full windows tie under the true return, and a tie is
recorded as such); a budget of 480 pairs over 10 rounds, round r getting a share ∝ 1/(1 + r); an MLP
reward model r̂(s) of the state alone, its level kept (unit RMS); PPO (RL Zoo's CartPole settings) on r̂
alone for 80,000 env steps. For
each seed it prints the mean return of 10 evaluation episodes of the final policy (``tamer eval``: PPO's
sampled actions, no learning, other env seeds), the pairs, rankings and simulated human seconds used, PPO's
env steps and the attempts' env steps, the reward model's last held-out accuracy, and then how many seeds
reached ``--threshold``. Any config field can be set with ``--set field=value`` (repeatable).
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

BASE = {
    "env": "CartPole-v1",
    "agent": "rankings",
    "gamma": 0.98,
    "ppo_steps": 80_000,
    "ranker": "return",
    "ranker_error": 0.1,
    "ranker_tie": 1.5,
    "rank_k": 2,
    "rank_start": "rollouts",
    "rank_length": 25,
    "rank_rounds": 10,
    "rank_pairs": 480,
    "rank_decay": 1.0,
    "reward_model": "mlp",
    "reward_action": False,
    "reward_epochs": 3,
    "reward_random": 0.1,
    "reward_norm": "scale",
}


def run_seed(job: tuple[dict, int]) -> dict:
    from tamer.deep import configure_torch

    configure_torch(1)
    values, seed = job
    cfg = Config.from_dict({**values, "seed": seed})
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        rows = train(cfg, run, progress=False)
        evaluated = evaluate(run, episodes=10, seed=1000 + seed)
        with open(run / "rounds.csv", newline="") as f:
            rounds = list(csv.DictReader(f))
    last = rounds[-1]
    accuracies = [float(r["val_accuracy"]) for r in rounds if r["val_accuracy"] not in ("", "nan")]
    return {
        "seed": seed,
        "eval": float(np.mean(evaluated)),
        "last": float(np.mean([r["return"] for r in rows[-10:]])),
        "pairs": int(last["pairs"]),
        "rankings": int(last["rankings"]),
        "human_seconds": float(last["human_seconds"]),
        "ppo_steps": int(sum(r["length"] for r in rows)),
        "attempt_steps": int(last["attempt_steps"]),
        "val_accuracy": accuracies[-1] if accuracies else float("nan"),
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=10, help="Seeds 0..N-1 (default: 10).")
    parser.add_argument("--first", type=int, default=0, help="First seed (default: 0).")
    parser.add_argument("--workers", type=int, default=2, help="Processes (default: 2).")
    parser.add_argument("--threshold", type=float, default=475.0)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="Config overrides.")
    args = parser.parse_args()
    values = {**BASE, **parse_overrides(args.set)}
    jobs = [(values, seed) for seed in range(args.first, args.first + args.seeds)]
    started = time.perf_counter()
    if args.workers > 1:
        with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
            results = list(pool.imap(run_seed, jobs))
    else:
        results = [run_seed(job) for job in jobs]
    for r in results:
        steps = r["ppo_steps"] + r["attempt_steps"]
        print(
            f"seed {r['seed']}: eval (10 episodes) {r['eval']:.1f}; last 10 training episodes "
            f"{r['last']:.1f}; {r['pairs']} pairs in {r['rankings']} rankings, {r['human_seconds']:.0f} "
            f"human s; env steps {r['ppo_steps']} PPO + {r['attempt_steps']} attempts = {steps}; held-out "
            f"accuracy {r['val_accuracy']:.2f}; {r['seconds']:.0f} s",
            flush=True,
        )
    reached = sum(r["eval"] >= args.threshold for r in results)
    total_steps = max(r["ppo_steps"] + r["attempt_steps"] for r in results)
    changed = ", ".join(f"{k}={v}" for k, v in values.items() if BASE.get(k) != v)
    print(
        f"rankings -> PPO{f' ({changed})' if changed else ''}: {reached}/{len(results)} seeds with eval "
        f"mean >= {args.threshold:g}; eval mean {np.mean([r['eval'] for r in results]):.1f}; pairs max "
        f"{max(r['pairs'] for r in results)}; env steps max {total_steps} (PPO + attempts); human seconds "
        f"mean {np.mean([r['human_seconds'] for r in results]):.0f}; {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
