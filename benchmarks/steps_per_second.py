"""Headless env steps/s of TAMER and TAMER+RL on Mountain Car, as a ratio to the raw env in the same run.

    python benchmarks/steps_per_second.py [--env MountainCar-v0] [--steps 20000] [--repeats 5]

The raw reference steps the same ``gym.make`` env with pre-drawn random actions and nothing else. Each
measurement is repeated, interleaved with the reference, and the median ratio is printed: the machines are
shared and noisy, so only a ratio measured side by side means anything. Beside the ratio of wall-clock
steps/s, the ratio of steps per CPU second of the process (what other processes on a busy machine disturb
least: time the process was not running does not count). Targets (issue 2 and 3: 0.25 and 0.15; the
performance issue after them: 0.5 and 0.35): TAMER >= 0.5, TAMER+RL >= 0.35.
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


def raw_rates(env_id: str, steps: int) -> tuple[float, float]:
    """The raw env's steps per wall-clock second and per CPU second."""
    env = make_env(env_id)
    actions = np.random.default_rng(0).integers(env.action_space.n, size=steps).tolist()
    env.reset(seed=0)
    wall, cpu = time.perf_counter(), time.process_time()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            env.reset()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    env.close()
    return steps / wall, steps / cpu


def agent_rates(cfg: Config, steps: int) -> tuple[float, float]:
    """Whole episodes until ``steps`` env steps (act, teacher, credit, Ĥ and Q updates included): steps per
    wall-clock second and per CPU second."""
    s = build(cfg)
    wall, cpu = time.perf_counter(), time.process_time()
    episode = 0
    while s.steps < steps:
        run_episode(s, episode)
        episode += 1
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    s.env.close()
    return s.steps / wall, s.steps / cpu


def raw_steps_per_s(env_id: str, steps: int) -> float:
    return raw_rates(env_id, steps)[0]


def agent_steps_per_s(cfg: Config, steps: int) -> float:
    return agent_rates(cfg, steps)[0]


def measure(env_id: str, agents: dict[str, Config], steps: int, repeats: int) -> tuple[dict, dict, list]:
    """Per agent, the ratios to the raw env measured just before it, by wall clock and by CPU time, over
    ``repeats`` interleaved rounds; and the raw env's wall-clock rates."""
    wall: dict[str, list[float]] = {name: [] for name in agents}
    cpu: dict[str, list[float]] = {name: [] for name in agents}
    raw_all = []
    for _ in range(repeats):
        for name, cfg in agents.items():
            raw_wall, raw_cpu = raw_rates(env_id, steps)
            raw_all.append(raw_wall)
            agent_wall, agent_cpu = agent_rates(cfg, steps)
            wall[name].append(agent_wall / raw_wall)
            cpu[name].append(agent_cpu / raw_cpu)
    return wall, cpu, raw_all


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="MountainCar-v0")
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    agents = {
        "tamer": (Config(env=args.env, agent="tamer"), 0.5),
        "tamer+rl (action_biasing)": (Config(env=args.env, agent="tamer+rl", blend="action_biasing"), 0.35),
        "tamer+rl (control_sharing)": (Config(env=args.env, agent="tamer+rl", blend="control_sharing"), 0.35),
        "rl (sarsa)": (Config(env=args.env, agent="rl"), None),
    }
    wall, cpu, raw_all = measure(
        args.env, {name: cfg for name, (cfg, _) in agents.items()}, args.steps, args.repeats
    )
    print(f"{args.env}: raw env {statistics.median(raw_all):,.0f} steps/s (median of {len(raw_all)})")
    for name, (_, target) in agents.items():
        r, c = statistics.median(wall[name]), statistics.median(cpu[name])
        verdict = "" if target is None else f"  target >= {target}: {'ok' if r >= target else 'MISSED'}"
        runs = ", ".join(f"{v:.2f}" for v in wall[name])
        print(f"{name:28s} {r:.2f} x raw env, by CPU time {c:.2f}  (runs: {runs}){verdict}")


if __name__ == "__main__":
    main()
