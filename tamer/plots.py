"""Plots with readable defaults: mean curves with 95% bootstrap bands, colour-blind-safe colours.

Figures are built with ``matplotlib.figure.Figure`` rather than pyplot, so plotting needs no display and no
backend switch (headless machines, CI, a notebook's own backend all keep working). The statistics come from
``tamer.results``, so a plot and the summary table always agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from tamer.errors import ConfigError
from tamer.results import (
    EFFORT_COLUMNS,
    bootstrap_ci,
    group_runs,
    matrix,
    moving_mean,
    threshold_stats,
)

# Okabe & Ito (2008): distinguishable under the common forms of colour blindness. Yellow last: it is faint
# on white. Past eight conditions the line style changes too, so no two curves look alike.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442"]
LINESTYLES = ["-", "--", ":", "-."]
FORMATS = ("png", "pdf", "svg")
KINDS = ("curves", "threshold", "feedback")


def style(i: int) -> dict:
    return {"color": PALETTE[i % len(PALETTE)], "ls": LINESTYLES[i // len(PALETTE) % len(LINESTYLES)]}


def figure(height: float = 4.5) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(8.5, height), layout="constrained")
    ax = fig.add_subplot()
    ax.grid(alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def save(fig: Figure, path: Path, formats: Sequence[str] | None = None) -> list[Path]:
    """Save in each format; ``path`` is a stem, or a file whose suffix is the format when none are given."""
    if path.suffix.lstrip(".") in FORMATS:
        formats = formats or (path.suffix.lstrip("."),)
        path = path.with_suffix("")
    formats = formats or ("png",)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ConfigError(f"unknown plot format {unknown[0]!r}; known: {', '.join(FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        target = path.with_name(f"{path.name}.{fmt}")
        fig.savefig(target, dpi=150, metadata={"Date": None} if fmt in ("pdf", "svg") else None)
        written.append(target)
    return written


def display_label(label: str) -> str:
    """A condition's folder name as a legend reads best: ``agent=tamer+rl,blend=action_biasing,beta=0.5``
    -> ``tamer+rl · action_biasing · beta=0.5`` (agent and blend names say what they are)."""
    parts = []
    for part in label.split(","):
        name, sep, value = part.partition("=")
        if sep and name in ("agent", "blend"):
            parts.append(value)
        elif part == "teacher=none":
            parts.append("no teacher")
        else:
            parts.append(part)
    return " · ".join(parts)


def legend(fig: Figure, ax: Axes) -> None:
    """Below the axes, so it never hides data and long condition names do not squeeze the plot; as many
    columns as the longest label allows, and the figure grows by the legend's rows."""
    handles, labels = ax.get_legend_handles_labels()
    longest = max((len(label) for label in labels), default=1)
    ncols = max(1, min(len(labels), int(fig.get_figwidth() // (0.075 * longest + 0.7))))
    rows = -(-len(labels) // ncols)
    fig.set_figheight(fig.get_figheight() + 0.2 * max(0, rows - 2))
    fig.legend(handles, labels, loc="outside lower center", ncols=ncols, frameon=False, fontsize=9)


AXES = ("episode", *EFFORT_COLUMNS)
"""The x axes ``--x`` names: episodes, or the human effort so far by kind (keypresses, demonstrated steps,
the person's seconds, rankings, ranked pairs), any of which reads its ``*_total`` column."""
EFFORT_LABELS = {
    "feedback_total": "feedback given so far",
    "demo_steps_total": "demonstrated steps so far",
    "human_seconds_total": "human seconds so far",
    "rankings_total": "rankings so far",
    "pairs_total": "ranked pairs so far",
}


def x_column(x: str) -> str:
    """The column an x axis reads: a kind of human effort means its running total, anything else itself."""
    return f"{x}_total" if x in EFFORT_COLUMNS else x


def axis_label(name: str) -> str:
    return {**EFFORT_LABELS, "steps_per_s": "steps per second"}.get(name, name.replace("_", " "))


def learning_curves(
    rows: list[dict],
    path: Path,
    x: str = "episode",
    y: str = "return",
    hue: str = "condition",
    window: int = 1,
    reference: tuple[str, float] | None = None,
    title: str = "",
    formats: Sequence[str] | None = None,
) -> list[Path]:
    """Mean of ``y`` per condition with a shaded 95% bootstrap band, smoothed by a ``window``-episode moving
    mean. ``x`` is ``episode``, a kind of human effort (``human_seconds``, ``feedback``, ``demo_steps``,
    ``rankings``, ``pairs``: its total so far), or any per-episode column (e.g. ``feedback_total``), averaged
    over runs."""
    x = x_column(x)
    fig, ax = figure()
    groups = group_runs(rows, hue)
    for i, (label, runs) in enumerate(groups.items()):
        ys = moving_mean(matrix(runs, y), window)
        xs = (
            np.arange(1, ys.shape[1] + 1)
            if x == "episode"
            else matrix(runs, x)[:, : ys.shape[1]].mean(axis=0)
        )
        lo, hi = bootstrap_ci(ys)
        marker: dict[str, Any] = {} if x == "episode" else {"marker": ".", "markersize": 4}
        ax.plot(
            xs,
            ys.mean(axis=0),
            lw=2,
            label=f"{display_label(label)} (n={ys.shape[0]})",
            **style(i),
            **marker,
        )
        ax.fill_between(xs, lo, hi, color=style(i)["color"], alpha=0.18, lw=0)
    if reference is not None:
        ax.axhline(reference[1], color="0.35", ls="--", lw=1.2, label=f"{reference[0]} ({reference[1]:.0f})")
    ax.set_xlabel(axis_label(x))
    ax.set_ylabel(axis_label(y) + (f" ({window}-episode moving mean)" if window > 1 else ""))
    fig.suptitle(title or f"{axis_label(y)} by {axis_label(x)}: mean and 95% bootstrap CI")
    legend(fig, ax)
    return save(fig, path, formats)


def return_vs_feedback(
    rows: list[dict],
    path: Path,
    y: str = "return",
    hue: str = "condition",
    window: int = 1,
    title: str = "",
    formats: Sequence[str] | None = None,
) -> list[Path]:
    """Return against the feedback given so far: how much of a teacher's effort each method needs."""
    return learning_curves(
        rows,
        path,
        "feedback_total",
        y,
        hue,
        window,
        title=title or f"{axis_label(y)} against feedback given: mean and 95% bootstrap CI",
        formats=formats,
    )


def threshold_bars(
    rows: list[dict],
    path: Path,
    threshold: float,
    hue: str = "condition",
    window: int = 1,
    title: str = "",
    formats: Sequence[str] | None = None,
) -> list[Path]:
    """Episodes until the return reached ``threshold`` per condition, mean and 95% bootstrap CI; runs that
    never reached it count as the whole budget (see ``tamer.results.censored``), marked by k/n reached."""
    groups = group_runs(rows, hue)
    fig, ax = figure(height=max(2.5, 0.55 * len(groups) + 1.5))
    labels, right = list(groups), 1.0
    for i, runs in enumerate(groups.values()):
        returns = matrix(runs, "return")
        mean, lo, hi, reached = threshold_stats(returns, threshold, window)
        ax.barh(
            i,
            mean,
            xerr=[[max(0.0, mean - lo)], [max(0.0, hi - mean)]],
            color=style(i)["color"],
            alpha=0.85,
            capsize=4,
            error_kw={"lw": 1.2},
        )
        ax.annotate(f" {reached}/{len(runs)} reached", (hi, i), va="center", fontsize=9)
        right = max(right, hi)
    ax.set_yticks(range(len(labels)), [display_label(label) for label in labels])
    ax.invert_yaxis()
    ax.set_xlim(0, right * 1.35)  # room for the "k/n reached" notes
    smoothed = f"\n({window}-episode moving mean)" if window > 1 else ""
    ax.set_xlabel(f"episodes until return ≥ {threshold:g}{smoothed}")
    fig.suptitle(title or "episodes to threshold: mean and 95% bootstrap CI")
    return save(fig, path, formats)


def plot_all(
    rows: list[dict],
    out: Path,
    kinds: Sequence[str] = KINDS,
    x: str = "episode",
    y: str = "return",
    hue: str = "condition",
    window: int = 1,
    threshold: float | None = None,
    formats: Sequence[str] = ("png", "pdf"),
    title: str = "",
) -> list[Path]:
    """Every plot kind asked for, into ``out``; the threshold plot is skipped when there is no threshold."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ConfigError(f"unknown plot kind {unknown[0]!r}; known: {', '.join(KINDS)}")
    written = []
    if "curves" in kinds:
        written += learning_curves(rows, out / f"{y}_by_{x}", x, y, hue, window, title=title, formats=formats)
    if "threshold" in kinds and threshold is not None:
        written += threshold_bars(
            rows, out / "episodes_to_threshold", threshold, hue, window, formats=formats
        )
    if "feedback" in kinds:
        written += return_vs_feedback(rows, out / f"{y}_by_feedback", y, hue, window, formats=formats)
    return written
