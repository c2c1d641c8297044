"""TAMER on Tetris, the published result (Knox & Stone, ICDL 2008 / K-CAP 2009), and the kNN Ĥ's check.

    nice python experiments/tetris.py [--seeds 10] [--tamer-games 20] [--sarsa-games 200] [--workers 2]

1. Acceptance: TAMER, linear Ĥ over the 46 afterstate features (``--features tetris``, relative to the
   board), previous-step credit (``--credit previous``), a simulated teacher approving placements within
   5% of the best under Dellacherie's evaluation, 5% errors, feedback on half the placements, one
   placement a second; the teacher judges a placement when it lands (``tamer.tetris.PlacementTeacher``,
   the timing previous-step credit assumes). Prints the mean lines per game for each game over the seeds;
   the paper: "more than 50 lines by its third game".
2. Sarsa(λ) on the same afterstate features and the env's reward (lines), same seeds, ``--sarsa-games``
   games (α 0.5, γ 0.9, λ 0.5, greedy: the best of a small grid over α 0.05-0.5, γ 0.8-0.99, λ 0-0.5,
   ε 0-0.05, 2 seeds × 100 games each), and the plot of both learning curves: docs/tetris.png.
3. Context, 3 games each: the same TAMER with the framework's default ``SimulatedTeacher`` (which sees a
   step at a moment uniform over its interval, so at one placement a second half of its feedback lands in
   the placement's own step) under previous, immediate and delay-density credit, and with absolute instead
   of relative afterstate features.
4. kNN Ĥ on Mountain Car against the linear Ĥ and the oracle (experiments/tamer_vs_oracle.py's check:
   episodes 6-10, 10 seeds; within 15% means TAMER/oracle <= 1.15).

Every game is capped at 500 pieces (the env's default ``max_pieces``): at most 200 lines.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from tamer.config import Config
from tamer.oracles import evaluate_oracle
from tamer.results import bootstrap_ci
from tamer.train import train

ENV = "tamer/Tetris-v0"
TEACHER = "tamer.tetris:PlacementTeacher"
TAMER = {"env": ENV, "credit": "previous", "teacher": TEACHER, "error_rate": 0.05, "features": "tetris"}
SARSA = {"env": ENV, "agent": "rl", "features": "tetris", "rl_lr": 0.5, "gamma": 0.9, "lam": 0.5}
CONTEXT = {
    "built-in teacher, previous credit": {**TAMER, "teacher": "oracle"},
    "built-in teacher, immediate credit": {**TAMER, "teacher": "oracle", "credit": "immediate"},
    "built-in teacher, delay credit (uniform 0.2-0.8 s)": {**TAMER, "teacher": "oracle", "credit": "delay"},
    "placement teacher, absolute afterstate features": {**TAMER, "absolute": True},
}


def run(args: tuple[dict, int, int]) -> list[float]:
    """Returns per game (episode) of one seed."""
    import tamer.tetris

    fields, seed, games = args
    fields = dict(fields)
    init = tamer.tetris.AfterstateLinear.__init__
    defaults = init.__defaults__
    if fields.pop("absolute", False):  # the Ĥ over φ(after) itself, not φ(after) − φ(s)
        init.__defaults__ = (0.2, False)
    try:
        return [row["return"] for row in train(Config(seed=seed, episodes=games, **fields), progress=False)]
    finally:
        init.__defaults__ = defaults


def runs(pool, fields: dict, seeds: int, games: int) -> np.ndarray:
    return np.array(list(pool.map(run, [(fields, s, games) for s in range(seeds)])))


def ci(values: np.ndarray) -> str:
    low, high = bootstrap_ci(values[:, None])
    return f"{values.mean():.1f} [{low[0]:.1f}, {high[0]:.1f}]"


def plot(tamer: np.ndarray, sarsa: np.ndarray, teacher: float, path: Path) -> None:
    from tamer.plots import figure, legend, save, style

    fig, ax = figure()
    for i, (label, data) in enumerate(
        (("TAMER (simulated teacher, previous-step credit)", tamer), ("Sarsa(λ), env reward", sarsa))
    ):
        games = np.arange(1, data.shape[1] + 1)
        low, high = bootstrap_ci(data)
        ax.plot(games, data.mean(0), label=label, lw=1.6, **style(i))
        ax.fill_between(games, low, high, alpha=0.2, color=style(i)["color"], lw=0)
    ax.axhline(teacher, color="0.4", ls=":", lw=1, label=f"the teacher's own policy ({teacher:.0f})")
    ax.set_xscale("log")
    ax.set_xlabel("game")
    ax.set_ylabel("lines per game (cap 500 pieces: at most 200)")
    ax.set_title(f"Tetris: TAMER vs Sarsa(λ) over the 46 afterstate features, {tamer.shape[0]} seeds, 95% CI")
    legend(fig, ax)
    save(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--tamer-games", type=int, default=20)
    parser.add_argument("--sarsa-games", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--plot", default="docs/tetris.png")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: sarsa, context, knn")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        t0 = time.perf_counter()
        tamer = runs(pool, TAMER, args.seeds, args.tamer_games)
        print(f"1. TAMER, {args.seeds} seeds ({time.perf_counter() - t0:.0f} s): mean lines per game by game")
        print("   " + " ".join(f"{m:.1f}" for m in tamer.mean(0)))
        print(f"   game 3: {ci(tamer[:, 2])} (95% bootstrap CI); per seed {tamer[:, 2].astype(int).tolist()}")
        print(f"   acceptance (game 3 mean >= 50): {'PASS' if tamer[:, 2].mean() >= 50 else 'FAIL'}")
        teacher, _ = evaluate_oracle(ENV, episodes=10, seed=10_000)
        print(
            f"   the teacher's own policy (first approved placement, 10 games): {teacher:.1f} lines per game"
        )
        if "sarsa" not in skip:
            t0 = time.perf_counter()
            sarsa = runs(pool, SARSA, args.seeds, args.sarsa_games)
            print(
                f"2. Sarsa(λ), {args.seeds} seeds, {args.sarsa_games} games "
                f"({time.perf_counter() - t0:.0f} s)"
            )
            blocks = sarsa[:, : sarsa.shape[1] // 10 * 10].reshape(len(sarsa), -1, 10).mean(axis=(0, 2))
            print(
                "   mean lines per game over games 1-10, 11-20, ...: " + " ".join(f"{m:.1f}" for m in blocks)
            )
            for g in (3, 10, 20, 50, 100, args.sarsa_games):
                if g <= sarsa.shape[1]:
                    print(f"   game {g}: {ci(sarsa[:, g - 1])}")
            reach = [int(np.argmax(r >= 50)) + 1 if (r >= 50).any() else None for r in sarsa]
            print(f"   first game with >= 50 lines, per seed: {reach}")
            plot(tamer, sarsa, teacher, Path(args.plot))
            print(f"   plot: {args.plot}")
        if "context" not in skip:
            print("3. TAMER variants, 3 games each: mean lines per game 1 2 3")
            for label, fields in CONTEXT.items():
                data = runs(pool, fields, args.seeds, 3)
                print(
                    f"   {label}: "
                    + " ".join(f"{m:.1f}" for m in data.mean(0))
                    + f"; game 3 {ci(data[:, 2])}"
                )
        if "knn" not in skip:
            oracle, _ = evaluate_oracle("MountainCar-v0", episodes=100, seed=10_000)
            print(f"4. Mountain Car, {args.seeds} seeds, episodes 6-10; oracle (100 episodes) {oracle:.1f}")
            for label, fields in (("linear Ĥ", {"model": "linear"}), ("kNN Ĥ", {"model": "knn"})):
                data = runs(pool, {"env": "MountainCar-v0", **fields}, args.seeds, 10)
                late = data[:, 5:].mean(axis=1)
                print(f"   {label}: {ci(late)}, TAMER/oracle = {late.mean() / oracle:.3f} (<= 1.15 passes)")
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
