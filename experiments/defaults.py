"""Do the defaults serve every built-in environment? TAMER with nothing but ``env`` and ``seed`` set.

    python experiments/defaults.py [--envs ID ...] [--seeds 10] [--workers 2] [--last 5] [--per-seed]
                                   [--set FIELD=VALUE ...]

For each built-in environment: TAMER with the default config and the default simulated teacher, over
``--seeds`` seeds and the default number of episodes, against the teacher's own oracle (``tamer oracle
--env ID``: 20 episodes from seed 0). Prints one row per environment: the oracle's mean return, TAMER's
mean return over the last ``--last`` episodes (per seed, then over seeds) ± the half-width of a normal-
approximation 95% interval (1.96·s/√n over seeds), TAMER/oracle and TAMER − oracle, how many seeds end
within 5% of the oracle (last-episodes mean >= oracle − 0.05·|oracle|), and the wall time of the
environment's runs. A config that cannot run shows its error in the row. ``--set`` changes a config field
for every environment (to measure an alternative to a default).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one BLAS thread per worker, as tamer sweep does

import numpy as np  # noqa: E402

from tamer.config import Config  # noqa: E402
from tamer.errors import ConfigError  # noqa: E402
from tamer.oracles import evaluate_oracle  # noqa: E402

ENVS = (
    "MountainCar-v0",
    "CartPole-v1",
    "Acrobot-v1",
    "tamer/GridWorld-v0",
    "tamer/GridWorldPixels-v0",
    "tamer/Tetris-v0",
)


def run(args: tuple[str, int, dict]) -> list[float] | str:
    """One seed's returns per episode, or the one-line error a run with this config stops with."""
    from tamer.train import train

    env, seed, overrides = args
    try:
        return [row["return"] for row in train(Config(env=env, seed=seed, **overrides), progress=False)]
    except ConfigError as e:
        return f"error: {e}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--envs", nargs="+", default=list(ENVS))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--last", type=int, default=5, help="episodes at the end to average (default: 5)")
    parser.add_argument("--per-seed", action="store_true", help="print each seed's mean too")
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="change a config field")
    args = parser.parse_args()
    defaults = Config()
    overrides = {}
    for item in args.set:
        name, _, value = item.partition("=")
        overrides[name] = type(getattr(defaults, name))(value)
    print(
        f"TAMER, default config (episodes={Config().episodes}), seeds 0-{args.seeds - 1}; mean of the last "
        f"{args.last} episodes ± 95% CI half-width (normal approx., 1.96·s/√n over seeds)"
        + "".join(f"; {k}={v}" for k, v in overrides.items())
    )
    header = f"{'env':<26} {'oracle':>8} {'TAMER':>17} {'ratio':>6} {'diff':>8} {'near':>6} {'seconds':>8}"
    print(header + "\n" + "-" * len(header), flush=True)
    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.workers, mp_context=context) as pool:
        for env in args.envs:
            oracle, _ = evaluate_oracle(env, episodes=20, seed=0)
            t0 = time.perf_counter()
            results = list(pool.map(run, [(env, s, overrides) for s in range(args.seeds)]))
            seconds = time.perf_counter() - t0
            errors = [r for r in results if isinstance(r, str)]
            if errors:
                print(f"{env:<26} {oracle:>8.1f} {errors[0]}", flush=True)
                continue
            late = np.array([np.mean(r[-args.last :]) for r in results])
            mean, half = late.mean(), 1.96 * late.std(ddof=1) / np.sqrt(late.size)
            ratio = mean / oracle if oracle else float("nan")
            near = f"{int(np.sum(late >= oracle - 0.05 * abs(oracle)))}/{late.size}"
            print(
                f"{env:<26} {oracle:>8.1f} {mean:>8.1f} ± {half:>6.1f} {ratio:>6.2f} {mean - oracle:>+8.1f} "
                f"{near:>6} {seconds:>8.1f}",
                flush=True,
            )
            if args.per_seed:
                print("  per seed: " + " ".join(f"{v:.1f}" for v in late), flush=True)
    print(f"total {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
