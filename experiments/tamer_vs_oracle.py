"""Issue 2's acceptance check: TAMER with the default simulated teacher against the oracle it learns from.

    python experiments/tamer_vs_oracle.py [--env MountainCar-v0] [--seeds 10] [--episodes 10]

Default teacher: 10 steps/s virtual, feedback on half the steps, uniform 0.2-0.8 s delay, 5% errors.
Prints TAMER's mean return over episodes 6-10 (all seeds), the oracle's own mean return, and their ratio.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from tamer.config import Config
from tamer.oracles import evaluate_oracle
from tamer.train import train


def returns(args: tuple[str, int, int]) -> list[float]:
    env, seed, episodes = args
    return [row["return"] for row in train(Config(env=env, seed=seed, episodes=episodes), progress=False)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="MountainCar-v0")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--episodes", type=int, default=10)
    args = parser.parse_args()
    with ProcessPoolExecutor() as pool:
        runs = np.array(list(pool.map(returns, [(args.env, s, args.episodes) for s in range(args.seeds)])))
    late = runs[:, 5:].mean(axis=1)  # episodes 6..end, per seed
    oracle, oracle_std = evaluate_oracle(args.env, episodes=100, seed=10_000)
    print(
        f"{args.env}, {args.seeds} seeds: mean return per episode "
        + " ".join(f"{m:.0f}" for m in runs.mean(0))
    )
    spread = f"seeds from {late.min():.1f} to {late.max():.1f}"
    print(f"TAMER, episodes 6-{args.episodes}: {late.mean():.1f} ({spread})")
    print(f"oracle (100 episodes): {oracle:.1f} ± {oracle_std:.1f}")
    print(f"TAMER / oracle = {late.mean() / oracle:.3f} (within 15% means <= 1.15 for negative returns)")


if __name__ == "__main__":
    main()
