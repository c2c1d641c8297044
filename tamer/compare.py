"""The question the framework exists for, in one call (``tamer compare``).

Trains each agent of ``AGENTS`` over several seeds with the default simulated teacher (through
``tamer.runner``: parallel, atomic per run, resumable), summarises the runs per agent and plots the learning
curves with 95% confidence bands beside the oracle's own return.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from tamer.config import Config
from tamer.errors import ConfigError
from tamer.runner import Run, run_all

AGENTS: dict[str, dict] = {
    "tamer": {"agent": "tamer"},
    "tamer+rl": {"agent": "tamer+rl", "blend": "control_sharing", "q_init": -80.0},
    "rl": {"agent": "rl", "teacher": "none"},
}
"""Agent name (its folder and legend label) -> config overrides on top of the defaults. TAMER+RL uses the
best blend of experiments/mountaincar_blends.toml: control sharing with a pessimistic initial Q (an
optimistic one makes the RL agent unlearn the teacher's policy once Ĥ stops steering)."""

SEEDS, EPISODES = 10, 100
"""Defaults sized so `make demo` runs in about 15 s on 2 cores, once installed."""


def plan(env: str, out: Path, seeds: int, episodes: int) -> list[Run]:
    runs = []
    for seed in range(seeds):
        for name, fields in AGENTS.items():
            cfg = Config.from_dict(
                {"env": env, "episodes": episodes, "seed": seed, **fields}, f"tamer.compare.AGENTS[{name!r}]"
            )
            runs.append(Run(cfg, out / name / f"seed={seed}"))
    return runs


@dataclass
class Comparison:
    rows: list[dict]  # the tidy table (tamer.results.gather), also in OUT/results.csv
    summary: list[dict]  # one row per agent (tamer.results.summarize), also in OUT/summary.csv
    oracle_mean: float  # the simulated teacher's own mean return: the reference line of the plot
    plots: list[Path]  # the plot files written


def compare(
    env: str,
    out: Path,
    seeds: int = SEEDS,
    episodes: int = EPISODES,
    workers: int = 0,
    overwrite: bool = False,
    backend: str = "local",
    progress: bool = True,
) -> Comparison:
    """Run (or resume) the comparison into ``out``: the runs, results.csv, summary.csv and the plot."""
    from tamer.oracles import evaluate_oracle
    from tamer.plots import learning_curves
    from tamer.results import report

    if overwrite and out.exists():
        shutil.rmtree(out)
    runs = plan(env, out, seeds, episodes)
    try:
        run_all(runs, out, workers, backend, progress)
    except ConfigError as e:
        raise ConfigError(f"{e} (or pass --overwrite)" if "holds" in str(e) else str(e)) from None
    rows, summary = report(out, runs=[run.out for run in runs])
    oracle_mean, _ = evaluate_oracle(env, episodes=20, seed=10_000)
    plots = learning_curves(
        rows,
        out / "compare",
        reference=("oracle", oracle_mean),
        title=f"{env}: simulated teacher, {seeds} seeds, mean and 95% bootstrap CI",
        formats=("png", "pdf"),
    )
    return Comparison(rows, summary, oracle_mean, plots)
