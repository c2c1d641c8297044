"""Plots with readable defaults: mean curves with 95% bootstrap bands, colour-blind-safe colours."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless machines have no display; files only
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

# Okabe & Ito (2008), distinguishable under the common forms of colour blindness.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def bootstrap_ci(samples: np.ndarray, n_boot: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """95% percentile bootstrap CI of the mean over axis 0 (runs), for each column (x value)."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, samples.shape[0], size=(n_boot, samples.shape[0]))
    means = samples[picks].mean(axis=1)
    return np.percentile(means, 2.5, axis=0), np.percentile(means, 97.5, axis=0)


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average over the last axis (the first points average what exists so far)."""
    if window <= 1:
        return values
    cumsum = np.cumsum(values, axis=-1)
    shifted = np.concatenate([np.zeros(values.shape[:-1] + (window,)), cumsum[..., :-window]], axis=-1)
    counts = np.minimum(np.arange(1, values.shape[-1] + 1), window)
    return (cumsum - shifted[..., : values.shape[-1]]) / counts


def curves(rows: list[dict], x: str, y: str, hue: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """For each hue value: the x values and a (runs, x) array of y, over the x values every run has."""
    by_run: dict[str, dict[str, dict]] = defaultdict(lambda: defaultdict(dict))
    for row in rows:
        by_run[str(row[hue])][row["run"]][row[x]] = row[y]
    out = {}
    for label, runs in by_run.items():
        xs = sorted(set.intersection(*(set(r) for r in runs.values())))
        out[label] = (np.array(xs), np.array([[r[v] for v in xs] for r in runs.values()], dtype=float))
    return out


def learning_curves(
    rows: list[dict],
    path: Path,
    x: str = "episode",
    y: str = "return",
    hue: str = "agent",
    window: int = 1,
    reference: tuple[str, float] | None = None,
    title: str = "",
) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    for color, (label, (xs, ys)) in zip(PALETTE, sorted(curves(rows, x, y, hue).items()), strict=False):
        ys = smooth(ys, window)
        lo, hi = bootstrap_ci(ys)
        ax.plot(
            xs + 1 if x == "episode" else xs,
            ys.mean(axis=0),
            color=color,
            lw=2,
            label=f"{label} (n={ys.shape[0]})",
        )
        ax.fill_between(xs + 1 if x == "episode" else xs, lo, hi, color=color, alpha=0.2, lw=0)
    if reference is not None:
        ax.axhline(reference[1], color="0.4", ls="--", lw=1.2, label=f"{reference[0]} ({reference[1]:.0f})")
    ax.set_xlabel(x.replace("_", " "))
    ax.set_ylabel(y.replace("_", " ") + (f" ({window}-pt moving mean)" if window > 1 else ""))
    ax.set_title(title or f"{y} by {x}: mean and 95% bootstrap CI")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
