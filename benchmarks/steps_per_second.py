"""Headless env steps/s of TAMER and TAMER+RL on Mountain Car, as a ratio to the raw env in the same run.

    python benchmarks/steps_per_second.py [--env MountainCar-v0] [--steps 20000] [--repeats 3]

The raw reference steps the same ``gym.make`` env with pre-drawn random actions and nothing else. Each
measurement is repeated, interleaved with the reference, and the median ratio is printed: the machines are
shared and noisy, so only a ratio measured side by side means anything. Targets (issues 2 and 3):
TAMER >= 0.25, TAMER+RL >= 0.15.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from tamer.config import Config
from tamer.envs import make_env
from tamer.session import build
from tamer.train import run_episode


def raw_steps_per_s(env_id: str, steps: int) -> float:
    env = make_env(env_id)
    actions = np.random.default_rng(0).integers(env.action_space.n, size=steps).tolist()
    env.reset(seed=0)
    started = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            env.reset()
    elapsed = time.perf_counter() - started
    env.close()
    return steps / elapsed


def agent_steps_per_s(cfg: Config, steps: int) -> float:
    """Whole episodes until ``steps`` env steps: act, teacher, credit, Ĥ and Q updates included."""
    s = build(cfg)
    started = time.perf_counter()
    episode = 0
    while s.steps < steps:
        run_episode(s, episode)
        episode += 1
    elapsed = time.perf_counter() - started
    s.env.close()
    return s.steps / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="MountainCar-v0")
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    agents = {
        "tamer": (Config(env=args.env, agent="tamer"), 0.25),
        "tamer+rl (action_biasing)": (Config(env=args.env, agent="tamer+rl", blend="action_biasing"), 0.15),
        "tamer+rl (control_sharing)": (Config(env=args.env, agent="tamer+rl", blend="control_sharing"), 0.15),
        "rl (sarsa)": (Config(env=args.env, agent="rl"), None),
    }
    ratios: dict[str, list[float]] = {name: [] for name in agents}
    raw_all = []
    for _ in range(args.repeats):
        for name, (cfg, _) in agents.items():
            raw = raw_steps_per_s(args.env, args.steps)
            raw_all.append(raw)
            ratios[name].append(agent_steps_per_s(cfg, args.steps) / raw)
    print(f"{args.env}: raw env {statistics.median(raw_all):,.0f} steps/s (median of {len(raw_all)})")
    for name, (_, target) in agents.items():
        r = statistics.median(ratios[name])
        verdict = "" if target is None else f"  target >= {target}: {'ok' if r >= target else 'MISSED'}"
        print(f"{name:28s} {r:.2f} x raw env  (runs: {', '.join(f'{v:.2f}' for v in ratios[name])}){verdict}")


if __name__ == "__main__":
    main()
