"""Stage one's acceptance: behaviour cloning from a simulated demonstrator, and PPO started from it.

    python experiments/bc_ppo.py --seeds 10 --workers 2

1. BC from 5 episodes of a simulated demonstrator with 5% errors (``--agent bc``), 10 evaluation episodes per
   seed: CartPole-v1 (linear softmax over tile coding, and PPO's MLP policy) and MountainCar-v0 (linear),
   against the oracle's own return.
2. On CartPole-v1, PPO started from the BC MLP policy (``--rl ppo --init RUN``) with a KL penalty towards it
   (``--kl-coef``), against PPO from scratch: the env step at which the mean return of the last 10 training
   episodes first reached 475 (``StopAtReturn`` stops the run there), per seed, with medians and a bootstrap
   95% CI of the median.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path

import numpy as np

from tamer.callbacks import StopAtReturn
from tamer.config import Config
from tamer.oracles import evaluate_oracle
from tamer.train import train

BC = {"agent": "bc", "episodes": 10, "demo_episodes": 5, "demo_error": 0.05}
PPO = {"env": "CartPole-v1", "agent": "rl", "rl": "ppo", "gamma": 0.98}


def bc_return(job: tuple[dict, int]) -> float:
    fields, seed = job
    rows = train(Config.from_dict({**BC, **fields, "seed": seed}), progress=False)
    return float(np.mean([r["return"] for r in rows]))


def steps_to_475(job: tuple[float, int]) -> dict:
    """PPO from scratch (kl < 0) or from a freshly cloned BC policy with KL coefficient ``kl``."""
    kl, seed = job
    with tempfile.TemporaryDirectory() as tmp:
        fields = dict(PPO)
        if kl >= 0:
            bc = Path(tmp) / "bc"
            train(
                Config.from_dict({**BC, "env": "CartPole-v1", "model": "mlp", "seed": seed}),
                bc,
                progress=False,
            )
            fields.update(init=str(bc), kl_coef=kl)
        stop = StopAtReturn(threshold=475, window=10)
        started = time.perf_counter()
        rows = train(Config.from_dict({**fields, "seed": seed}), progress=False, callbacks=[stop])
        return {
            "seed": seed,
            "steps": None if stop.reached_at is None else sum(r["length"] for r in rows),
            "seconds": time.perf_counter() - started,
        }


def median_ci(values: list[float], rng: np.random.Generator, n: int = 2000) -> tuple[float, float, float]:
    x = np.asarray(values, dtype=float)
    boots = np.median(rng.choice(x, size=(n, len(x))), axis=1)
    return float(np.median(x)), float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--kl-coef", type=float, default=0.1)
    args = p.parse_args()
    seeds = list(range(args.seeds))
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        print(
            f"1. BC from {BC['demo_episodes']} demonstrated episodes, {BC['demo_error']:.0%} errors, "
            f"{BC['episodes']} evaluation episodes per seed, {args.seeds} seeds"
        )
        for env, model in (("CartPole-v1", "linear"), ("CartPole-v1", "mlp"), ("MountainCar-v0", "linear")):
            returns = pool.map(bc_return, [({"env": env, "model": model}, s) for s in seeds])
            oracle, _ = evaluate_oracle(env, episodes=20, seed=10_000)
            mean = float(np.mean(returns))
            verdict = (
                f"{sum(r >= 475 for r in returns)}/{len(returns)} seeds >= 475"
                if env.startswith("CartPole")
                else f"mean / oracle {mean / oracle:.3f}, within 10%: {mean >= oracle * 1.1}"
            )
            print(
                f"  {env:15s} {model:6s} mean {np.mean(returns):7.1f}  min {min(returns):7.1f}  "
                f"oracle {oracle:7.1f}  {verdict}"
            )
        print("2. CartPole-v1: env steps until the last 10 training episodes average 475 (stop there)")
        rng = np.random.default_rng(0)
        for label, kl in (("PPO from scratch", -1.0), (f"PPO from BC, KL {args.kl_coef}", args.kl_coef)):
            results = pool.map(steps_to_475, [(kl, s) for s in seeds])
            steps = [r["steps"] for r in results if r["steps"] is not None]
            med, lo, hi = median_ci(steps, rng) if steps else (float("nan"),) * 3
            print(
                f"  {label:22s} reached on {len(steps)}/{len(results)} seeds; median {med:,.0f} env steps "
                f"(95% CI {lo:,.0f}-{hi:,.0f}); per seed {[r['steps'] for r in results]}"
            )
    print(f"{time.perf_counter() - started:.0f} s on {args.workers} workers")


if __name__ == "__main__":
    main()
