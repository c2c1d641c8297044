"""Every method on the human-effort axis, on CartPole-v1 and Mountain Car: the README's figure and table.

    nice python experiments/human_effort_compare.py [--seeds 10] [--workers 2] [--out results/human_effort]

For each env, ``tamer compare --methods all`` (``tamer.compare.METHODS``): TAMER and TAMER+RL taught by
keypresses, plain RL (no person), behaviour cloning from demonstrations, PPO from the BC policy,
rankings → PPO, and BC → rankings → PPO, all with one simulated person: the env's built-in oracle teaches and
demonstrates (5% errors); the person ranks (10% random answers) CartPole's attempts by how long they
balanced and Mountain Car's by the share of their actions the oracle approves (``tamer.compare.RANKINGS``);
every run counts what that person did in seconds (``human_seconds``: keypress teaching costs its steps while
the teacher watches, at the env's teaching pace; a demonstration costs its steps at that pace; a ranking
costs watching its attempts plus a decision, see ``tamer.rankings``). Resumable: runs already in ``--out``
are kept.

Writes ``--out``/human_effort.png (one panel per env: for x seconds of the person's time, the 10-episode mean
return of the last episode by which at most x had been spent, mean and 95% bootstrap band over seeds, drawn
from where every seed has begun; a method that stops costing effort goes on flat at its final return) and
``--out``/human_effort.md (the table, also printed): per method the return of its last 10 episodes, the
person's seconds in all, and the seconds until the 10-episode mean first reached the env's target
(``TARGETS``: CartPole's 475, the threshold of every CartPole criterion here; Mountain Car's -138, within 15%
of the oracle's -120), median over the seeds that reached it, with how many did.
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from tamer.compare import compare
from tamer.io import write_atomic
from tamer.plots import save, style
from tamer.results import bootstrap_ci, episodes_to_threshold, group_runs, mean_ci, moving_mean

ENVS = ("CartPole-v1", "MountainCar-v0")
TARGETS = {"CartPole-v1": 475.0, "MountainCar-v0": -138.0}
WINDOW = 10
ORDER = ("rl", "tamer", "tamer+rl", "bc", "ppo_from_bc", "rankings", "bc_rankings")
NAMES = {
    "rl": "RL alone (no person)",
    "tamer": "TAMER (keypresses)",
    "tamer+rl": "TAMER+RL (keypresses)",
    "bc": "BC (demonstrations)",
    "ppo_from_bc": "BC → PPO",
    "rankings": "rankings → PPO",
    "bc_rankings": "BC → rankings → PPO",
}


def seconds_to_target(runs: dict[str, list[dict]], target: float) -> list[float]:
    """Per run, the person's seconds so far at the episode where the 10-episode mean first reached
    ``target``; NaN where it never did."""
    out = []
    for run in runs.values():  # each on its own episodes: PPO's runs differ in how many they have
        returns = np.array([row["return"] for row in run], dtype=float)
        first = episodes_to_threshold(returns, target, WINDOW)[0]
        out.append(math.nan if math.isnan(first) else float(run[int(first) - 1]["human_seconds_total"]))
    return out


def table(env: str, rows: list[dict], oracle: float) -> list[str]:
    groups = group_runs(rows)
    lines = [
        f"**{env}** (oracle {oracle:.1f}; target {TARGETS[env]:g})",
        "",
        "| method | return, last 10 episodes | person's seconds in all | seconds to target (runs) |",
        "|---|---|---|---|",
    ]
    for name in (n for n in ORDER if n in groups):
        runs = groups[name]
        last = [float(np.mean([r["return"] for r in run[-WINDOW:]])) for run in runs.values()]
        spent = [run[-1]["human_seconds_total"] for run in runs.values()]
        mean, lo, hi = mean_ci(last)
        reached = [s for s in seconds_to_target(runs, TARGETS[env]) if not math.isnan(s)]
        to_target = f"{statistics.median(reached):,.0f} ({len(reached)}/{len(runs)})" if reached else "—"
        cells = [NAMES[name], f"{mean:.1f} [{lo:.1f}, {hi:.1f}]", f"{statistics.mean(spent):,.0f}", to_target]
        lines.append(f"| {' | '.join(cells)} |")
    return lines


def at_effort(runs: dict[str, list[dict]], grid: np.ndarray) -> np.ndarray:
    """(runs, grid) the 10-episode mean return of each run at the last episode by which the person had spent
    at most x seconds (NaN before its first episode): what that much effort bought, learning done without
    further effort included (PPO between rounds of rankings, RL after the teacher left)."""
    out = np.full((len(runs), grid.size), np.nan)
    for i, run in enumerate(runs.values()):
        spent = np.array([row["human_seconds_total"] for row in run], dtype=float)
        returns = moving_mean(np.array([row["return"] for row in run], dtype=float), WINDOW)
        last = np.searchsorted(spent, grid, side="right") - 1
        out[i, last >= 0] = returns[last[last >= 0]]
    return out


def panel(ax, env: str, rows: list[dict], oracle: float) -> None:
    groups = group_runs(rows)
    top = max(row["human_seconds_total"] for row in rows)
    grid = np.concatenate([[0.0], np.geomspace(1.0, top, 400)])
    for i, name in enumerate(ORDER):
        if name not in groups:
            continue
        ys = at_effort(groups[name], grid)
        every = ~np.isnan(ys).any(axis=0)  # from where every run has begun
        ys, xs = ys[:, every], grid[every]
        lo, hi = bootstrap_ci(ys)
        label = f"{NAMES[name]} (n={ys.shape[0]})"
        ax.plot(xs, ys.mean(axis=0), lw=2, label=label, **style(i))
        ax.fill_between(xs, lo, hi, color=style(i)["color"], alpha=0.15, lw=0)
    ax.axhline(oracle, color="0.35", ls="--", lw=1.2, label="the oracle (the simulated person)")
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlim(0, top)
    ax.set_title(env)
    ax.set_xlabel("the person's seconds (0, then log scale)")
    ax.grid(alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=10, help="Seeds 0..N-1 per method and env (default 10).")
    parser.add_argument("--workers", type=int, default=2, help="Processes running the runs (default 2).")
    parser.add_argument(
        "--out", type=Path, default=Path("results/human_effort"), help="Where (default results/human_effort)."
    )
    args = parser.parse_args()
    fig = Figure(figsize=(12, 5), layout="constrained")
    axes = fig.subplots(1, len(ENVS))
    text = []
    for ax, env in zip(axes, ENVS, strict=True):
        result = compare(env, args.out / env, seeds=args.seeds, workers=args.workers, methods="all")
        assert result.oracle_mean is not None  # both envs have a built-in oracle
        panel(ax, env, result.rows, result.oracle_mean)
        text += [*table(env, result.rows, result.oracle_mean), ""]
    axes[0].set_ylabel(f"return ({WINDOW}-episode mean) once that much was spent")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=4, frameon=False, fontsize=9)
    fig.suptitle(f"Every method against the person's effort, {args.seeds} seeds, mean and 95% bootstrap CI")
    written = save(fig, args.out / "human_effort", ("png",))
    write_atomic(args.out / "human_effort.md", "\n".join(text))
    print("\n".join(text))
    print(f"figure: {', '.join(map(str, written))}; table: {args.out / 'human_effort.md'}")


if __name__ == "__main__":
    main()
