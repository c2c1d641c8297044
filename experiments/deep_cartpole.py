"""Learning measurements of the neural models, over seeds: Deep TAMER's return and feedback, and env steps
to a return threshold (DQN alone vs TAMER+RL with DQN).

    python experiments/deep_cartpole.py tamer --seeds 10 --episodes 40
    python experiments/deep_cartpole.py dqn --seeds 10 --episodes 5000 --max-steps 60000 --window 10 --stop
    python experiments/deep_cartpole.py tamer+rl --seeds 10 --episodes 5000 --max-steps 60000 --window 10 \
        --stop --set blend=control_sharing
    python experiments/deep_cartpole.py tamer --env tamer/GridWorldPixels-v0 --set model=cnn --seeds 10 \
        --episodes 30 --threshold 0.5

(the numbers these print are in the README, section "Deep TAMER and DQN"; add ``--workers 2``).

Any config field can be set with ``--set field=value`` (repeatable). For every seed it prints the mean return
of the last ``--window`` episodes, the feedback given, and the env steps (and feedback) at which the mean
return of the last ``--window`` episodes first reached ``--threshold``; then means and 95% intervals.
Runs stop early once the threshold is reached when ``--stop`` is given (steps-to-threshold measurements).
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import statistics
import time

import numpy as np

from tamer.config import Config
from tamer.session import build
from tamer.sweep import parse_overrides
from tamer.train import run_episode

PRESETS = {
    "tamer": {"agent": "tamer", "model": "mlp"},
    "dqn": {"agent": "rl", "rl": "dqn", "gamma": 0.99},
    "tamer+rl": {"agent": "tamer+rl", "model": "mlp", "rl": "dqn", "gamma": 0.99},
}


def run_seed(job: tuple[dict, int, int, int, float, int, bool]) -> dict:
    values, seed, episodes, max_steps, threshold, window, stop = job
    cfg = Config.from_dict({**values, "seed": seed, "episodes": episodes})
    s = build(cfg)
    returns, reached, reached_feedback = [], None, None
    try:
        for episode in range(episodes):
            returns.append(run_episode(s, episode)["return"])
            if reached is None and len(returns) >= window and np.mean(returns[-window:]) >= threshold:
                reached, reached_feedback = s.steps, s.feedback
                if stop:
                    break
            if max_steps and s.steps >= max_steps:
                break
    finally:
        s.env.close()
    return {
        "seed": seed,
        "last": float(np.mean(returns[-window:])),
        "episodes": len(returns),
        "steps": s.steps,
        "feedback": s.feedback,
        "reached": reached,
        "reached_feedback": reached_feedback,
    }


def interval(xs: list[float]) -> str:
    if not xs:
        return "n/a"
    if len(xs) == 1:
        return f"{xs[0]:.0f}"
    half = 1.96 * statistics.stdev(xs) / len(xs) ** 0.5
    return f"{statistics.mean(xs):.0f} ± {half:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("preset", choices=sorted(PRESETS))
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--max-steps", type=int, default=0, help="Stop a run after this many env steps.")
    parser.add_argument("--threshold", type=float, default=475.0)
    parser.add_argument("--window", type=int, default=5, help="Episodes averaged for 'last' and 'reached'.")
    parser.add_argument("--stop", action="store_true", help="End a run when it reaches the threshold.")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    args = parser.parse_args()
    values = {**PRESETS[args.preset], "env": args.env, **parse_overrides(args.set)}
    defaults = {f.name: f.default for f in dataclasses.fields(Config)}
    print("config (non-default):", {k: v for k, v in values.items() if defaults.get(k) != v})
    jobs = [
        (values, seed, args.episodes, args.max_steps, args.threshold, args.window, args.stop)
        for seed in range(args.seeds)
    ]
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        rows = pool.map(run_seed, jobs)
    for r in rows:
        print(
            f"seed {r['seed']}: last-{args.window} return {r['last']:.1f}, episodes {r['episodes']}, "
            f"steps {r['steps']}, feedback {r['feedback']}, reached {args.threshold:g} at step "
            f"{r['reached']} (feedback {r['reached_feedback']})"
        )
    reached = [r["reached"] for r in rows if r["reached"] is not None]
    print(
        f"{args.preset} on {args.env}, {len(rows)} seeds: last-{args.window} return "
        f"{interval([r['last'] for r in rows])}; feedback {interval([r['feedback'] for r in rows])}; "
        f"reached {args.threshold:g} in {len(reached)}/{len(rows)} seeds, at env step "
        f"{interval([float(x) for x in reached])} (median {statistics.median(reached) if reached else '-'}); "
        f"feedback until then {interval([float(r['reached_feedback']) for r in rows if r['reached']])}; "
        f"{time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
