"""`tamer compare`: the question the framework exists for, as one command.

Trains each agent over several seeds with the default simulated teacher and plots the learning curves
with 95% confidence bands, beside the oracle's own return.
"""

from __future__ import annotations

from pathlib import Path

from tamer.config import Config
from tamer.oracles import evaluate_oracle
from tamer.plots import learning_curves
from tamer.results import gather
from tamer.sweep import Run, run_all
from tamer.train import prepare_out

AGENTS = {"tamer": {"agent": "tamer"}}


def compare(
    env: str, out: Path, seeds: int = 10, episodes: int = 20, workers: int = 0, overwrite: bool = False
) -> Path:
    prepare_out(out, overwrite)
    runs = [
        Run(Config(env=env, episodes=episodes, seed=seed, **fields).validate(), out / name / f"seed{seed}")
        for name, fields in AGENTS.items()
        for seed in range(seeds)
    ]
    run_all(runs, workers)
    oracle_mean, _ = evaluate_oracle(env, episodes=20, seed=10_000)
    table = gather(out)
    plot = out / "compare.png"
    learning_curves(
        table,
        plot,
        hue="condition",
        reference=("oracle", oracle_mean),
        title=f"{env}: simulated teacher, {seeds} seeds",
    )
    print(f"oracle mean return {oracle_mean:.1f}")
    for name in AGENTS:
        rows = [r for r in table if r["condition"] == name]
        last = [r["return"] for r in rows if r["episode"] >= episodes - 5]
        print(f"{name}: mean return over the last 5 episodes {sum(last) / len(last):.1f}")
    print(f"plot written to {plot}")
    return plot
