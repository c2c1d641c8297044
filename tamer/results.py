"""Gathering run folders into one tidy table, and the statistics every summary and plot shares.

The table has one row per run × episode and every config field as a column, so any swept field can be a
plot's hue or a summary's grouping without knowing in advance which fields a sweep varied. Confidence
intervals, smoothing and episodes-to-threshold are computed here once; ``tamer.plots`` draws them.
"""

from __future__ import annotations

import csv
import json
import math
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from tamer.errors import ConfigError
from tamer.io import write_atomic

METRIC_TYPES = {
    "episode": int,
    "return": float,
    "length": int,
    "feedback": int,
    "ignored": int,
    "steps_per_s": float,
    "demo_steps": float,
    "human_seconds": float,
    "rankings": float,
    "pairs": float,
}
TIMING_COLUMNS = ("steps_per_s",)
"""Columns that differ between two runs of the same config and seed; left out when comparing tables."""
EFFORT_COLUMNS = ("feedback", "demo_steps", "human_seconds", "rankings", "pairs")
"""Human effort per episode, by kind (keypresses, demonstrated steps, the person's seconds, queries ranked,
pairs those rankings order)."""
DERIVED = tuple(f"{k}_total" for k in EFFORT_COLUMNS)
"""Computed while gathering: ``X_total`` is the run's X up to and including the episode (the human-effort axes
of plots); runs written before a column existed count it as 0."""
PARTIAL = ".partial"
"""Marks a run folder still being written (see ``tamer.sweep``); such folders are never read."""
EXPERIMENT_COPY = "experiment.toml"
"""The sweep's experiment file, copied into its results folder so the results say how they were made."""
CONFIDENCE = 0.95
N_BOOT = 2000


# --- gathering ---------------------------------------------------------------------------------------------


def read_run(run: Path, root: Path) -> list[dict]:
    """The rows of one finished run: its config, where it lives, and its metrics per episode."""
    try:
        cfg = json.loads((run / "config.json").read_text(encoding="utf-8"))
        with open(run / "metrics.csv", newline="", encoding="utf-8") as f:
            metrics = list(csv.DictReader(f))
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read run {run}: {e}") from None
    name = run.relative_to(root).as_posix()
    condition = run.relative_to(root).parent.as_posix()
    rows, totals = [], dict.fromkeys(EFFORT_COLUMNS, 0.0)
    for m in metrics:
        row = {"condition": condition, "run": name, **cfg}
        row.update({k: METRIC_TYPES.get(k, float)(v) for k, v in m.items() if v != ""})
        for k in EFFORT_COLUMNS:
            totals[k] += row.get(k, 0)
            row[f"{k}_total"] = type(row.get(k, 0))(totals[k])
        rows.append(row)
    return rows


def run_folders(root: Path) -> list[Path]:
    """Every finished run below ``root``: a folder with config.json that is not being written."""
    return [
        config.parent
        for config in sorted(root.rglob("config.json"))
        if not any(PARTIAL in part for part in config.relative_to(root).parts)
    ]


def gather(root: Path, runs: Iterable[Path] | None = None) -> list[dict]:
    """The tidy table of every finished run below ``root`` (or of just ``runs``), by run and episode."""
    if not root.is_dir():
        raise ConfigError(f"{root} is not a folder")
    rows = []
    for run in run_folders(root) if runs is None else sorted(runs):
        rows.extend(read_run(run, root))
    if not rows:
        raise ConfigError(f"{root} holds no finished runs (is it the --out folder of tamer sweep?)")
    return rows


def swept_fields(rows: Sequence[dict]) -> list[str]:
    """Config fields whose value differs between runs (the seed aside): what the sweep varied."""
    first = rows[0]
    seen: dict[str, set[str]] = {}  # field -> its values, as JSON
    # per-episode rows repeat their run's config: look at one row per run
    distinct = {row["run"]: row for row in rows}.values() if "run" in first else rows
    for row in distinct:
        for key, value in row.items():
            if key not in METRIC_TYPES and key not in DERIVED and key not in ("condition", "run", "seed"):
                seen.setdefault(key, set()).add(json.dumps(value))
    return [key for key in first if key in seen and len(seen[key]) > 1]


def columns(rows: Sequence[dict]) -> list[str]:
    """Column order for people: where the run is, what was swept, the metrics, then the rest of the config."""
    lead = ["condition", "run", "seed", *swept_fields(rows), *METRIC_TYPES, *DERIVED]
    names = dict.fromkeys(name for name in lead if name in rows[0])
    for row in rows:
        names.update(dict.fromkeys(row))
    return list(names)


def write_csv(rows: Sequence[dict], path: Path) -> Path:
    """Write a table atomically: a reader never sees half a file."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=columns(rows), restval="")
            writer.writeheader()
            writer.writerows(rows)

    write_atomic(path, write)
    return path


def without(rows: Sequence[dict], names: Iterable[str] = TIMING_COLUMNS) -> list[dict]:
    """The rows with the given columns dropped, to compare two tables that must agree but for timing."""
    drop = set(names)
    return [{k: v for k, v in row.items() if k not in drop} for row in rows]


# --- statistics shared by summaries and plots -------------------------------------------------------------


def bootstrap_ci(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """95% percentile bootstrap CI of the mean over axis 0 (runs), for every other index (e.g. episode).

    Seeded, so the same results give the same table and plot every time. With one run the interval is that
    run's value: there is nothing to resample.
    """
    samples = np.asarray(samples, dtype=float)
    n = samples.shape[0]
    picks = np.random.default_rng(0).integers(0, n, size=(N_BOOT, n))
    # how often each run is drawn per resample: the means as one product, with no resamples × runs × episodes
    # array (320 MB for 20 runs of 1000 episodes)
    counts = np.zeros((N_BOOT, n))
    np.add.at(counts, (np.arange(N_BOOT)[:, None], picks), 1.0)
    means = counts @ samples.reshape(n, -1) / n
    means = means.reshape((N_BOOT, *samples.shape[1:]))
    tail = 100 * (1 - CONFIDENCE) / 2
    return np.percentile(means, tail, axis=0), np.percentile(means, 100 - tail, axis=0)


def mean_ci(values: Sequence[float] | np.ndarray) -> tuple[float, float, float]:
    """Mean and 95% bootstrap CI of per-run values; NaNs if there are none."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return math.nan, math.nan, math.nan
    lo, hi = bootstrap_ci(values)
    return float(values.mean()), float(lo), float(hi)


def moving_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average over the last axis; the first points average what exists so far."""
    values = np.asarray(values, dtype=float)
    if window <= 1:
        return values
    cumsum = np.cumsum(values, axis=-1)
    n = values.shape[-1]
    shifted = np.concatenate([np.zeros(values.shape[:-1] + (window,)), cumsum[..., :-window]], axis=-1)
    counts = np.minimum(np.arange(1, n + 1), window)
    return (cumsum - shifted[..., :n]) / counts


def episodes_to_threshold(returns: np.ndarray, threshold: float, window: int = 1) -> np.ndarray:
    """Per run (row): how many episodes it took until the ``window``-episode moving mean of the return first
    reached ``threshold``; NaN for a run that never did. Only full windows count, so one lucky first
    episode is not taken for learning."""
    smoothed = moving_mean(np.atleast_2d(returns), window)
    reached = smoothed >= threshold
    reached[:, : min(window, smoothed.shape[1]) - 1] = False
    first = reached.argmax(axis=1).astype(float) + 1
    first[~reached.any(axis=1)] = math.nan
    return first


def censored(episodes: np.ndarray, budget: int) -> np.ndarray:
    """Episodes-to-threshold with runs that never reached it counted as the whole budget.

    The mean is then a lower bound for methods that often fail, rather than the flattering mean of only the
    runs that succeeded; tables say how many runs reached the threshold beside it.
    """
    return np.where(np.isnan(episodes), float(budget), episodes)


def threshold_stats(returns: np.ndarray, threshold: float, window: int) -> tuple[float, float, float, int]:
    """(mean, CI low, CI high) of censored episodes-to-threshold over runs, and how many runs reached it:
    what the summary table and the bar chart both show."""
    episodes = episodes_to_threshold(returns, threshold, window)
    mean, lo, hi = mean_ci(censored(episodes, returns.shape[1]))
    return mean, lo, hi, int((~np.isnan(episodes)).sum())


# --- grouping ---------------------------------------------------------------------------------------------


def hue_fields(hue: str | Sequence[str]) -> list[str]:
    return [h.strip() for h in hue.split(",")] if isinstance(hue, str) else list(hue)


def label_of(row: dict, fields: Sequence[str]) -> str:
    if len(fields) == 1:
        return str(row[fields[0]])
    return ", ".join(f"{f}={row[f]}" for f in fields)


def group_runs(
    rows: Sequence[dict], hue: str | Sequence[str] = "condition"
) -> dict[str, dict[str, list[dict]]]:
    """label -> run -> that run's rows in episode order. ``hue``: one column, or several joined by commas."""
    fields = hue_fields(hue)
    missing = [f for f in fields if f not in rows[0]]
    if missing:
        known = ", ".join(k for k in rows[0] if k not in ("run",))
        raise ConfigError(f"no column {missing[0]!r} in the results; columns: {known}")
    groups: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        groups[label_of(row, fields)][row["run"]].append(row)
    for runs in groups.values():
        for run_rows in runs.values():
            run_rows.sort(key=lambda r: r["episode"])
    return {label: dict(groups[label]) for label in sorted(groups)}


def matrix(runs: dict[str, list[dict]], column: str) -> np.ndarray:
    """(runs, episodes) array of one column, cut to the episodes every run has."""
    if column not in next(iter(runs.values()))[0]:
        raise ConfigError(f"no column {column!r} in the results")
    n = min(len(r) for r in runs.values())
    return np.array([[row[column] for row in r[:n]] for r in runs.values()], dtype=float)


# --- the summary table ------------------------------------------------------------------------------------


def default_threshold(root: Path | None, rows: Sequence[dict]) -> float | None:
    """The return that counts as solved: the experiment file's ``threshold``, else the environment's
    ``reward_threshold`` in its Gymnasium spec (MountainCar-v0: -110), else none."""
    copy = root / EXPERIMENT_COPY if root is not None else None
    if copy is not None and copy.exists():
        try:
            threshold = tomllib.loads(copy.read_text(encoding="utf-8")).get("threshold")
        except (OSError, tomllib.TOMLDecodeError):
            threshold = None
        if isinstance(threshold, int | float):
            return float(threshold)
    env_ids = {row.get("env") for row in rows}
    env_id = env_ids.pop() if len(env_ids) == 1 else None
    if env_id is None:
        return None
    import gymnasium as gym

    import envs  # noqa: F401  (registers tamer/* environments)
    from tamer.envs import env_name

    try:
        spec = gym.spec(env_name(env_id))  # the env's own, whatever arguments it was run with
    except (gym.error.Error, ConfigError):
        return None
    return None if spec.reward_threshold is None else float(spec.reward_threshold)


def run_speed(rows: Sequence[dict]) -> float:
    """Steps per second over a whole run: total steps over total time (not a mean of per-episode rates)."""
    seconds = sum(r["length"] / r["steps_per_s"] for r in rows if r["steps_per_s"] > 0)
    return sum(r["length"] for r in rows) / seconds if seconds > 0 else 0.0


def summarize(
    rows: Sequence[dict],
    by: str | Sequence[str] = "condition",
    threshold: float | None = None,
    last: int = 5,
    window: int = 1,
    spans: Sequence[tuple[int, int]] = (),
) -> list[dict]:
    """One row per condition: final return (mean of each run's last ``last`` episodes), the mean return
    over each span of episodes (first, last; counted from 1, inclusive), episodes until the
    ``window``-episode moving mean of the return reached ``threshold``, feedback given per run, steps/s.
    Every mean comes with its 95% bootstrap CI (``_lo``/``_hi``)."""
    table = []
    for label, runs in group_runs(rows, by).items():
        returns = matrix(runs, "return")
        k = max(1, min(last, returns.shape[1]))
        final = mean_ci(returns[:, -k:].mean(axis=1))
        span_means = {}
        for first, end in spans:
            if end > returns.shape[1]:
                raise ConfigError(f"--span {first}:{end}: runs of {label} have {returns.shape[1]} episodes")
            mean, lo, hi = mean_ci(returns[:, first - 1 : end].mean(axis=1))
            span_means.update(
                {
                    f"return_{first}_{end}": mean,
                    f"return_{first}_{end}_lo": lo,
                    f"return_{first}_{end}_hi": hi,
                }
            )
        feedback = mean_ci([sum(r["feedback"] for r in run_rows) for run_rows in runs.values()])
        entry = {
            "condition": label,
            "runs": len(runs),
            "episodes": returns.shape[1],
            "last": k,
            "final_return": final[0],
            "final_return_lo": final[1],
            "final_return_hi": final[2],
            **span_means,
            "threshold": threshold,
            "episodes_to_threshold": math.nan,
            "episodes_to_threshold_lo": math.nan,
            "episodes_to_threshold_hi": math.nan,
            "reached": 0,
            "feedback": feedback[0],
            "feedback_lo": feedback[1],
            "feedback_hi": feedback[2],
            "steps_per_s": float(np.mean([run_speed(run_rows) for run_rows in runs.values()])),
        }
        if threshold is not None:
            ett, lo, hi, reached = threshold_stats(returns, threshold, window)
            entry.update(
                episodes_to_threshold=ett,
                episodes_to_threshold_lo=lo,
                episodes_to_threshold_hi=hi,
                reached=reached,
            )
        table.append(entry)
    return table


def plus_minus(mean: float, lo: float, hi: float, digits: int = 1) -> str:
    """``mean ± half-width`` of the (possibly asymmetric) bootstrap interval; the CSV keeps both ends."""
    if math.isnan(mean):
        return "-"
    return f"{mean:.{digits}f} ± {(hi - lo) / 2:.{digits}f}"


def format_summary(summary: Sequence[dict], timing: bool = True) -> str:
    """The summary as an aligned text table (``timing=False`` leaves out steps/s, which varies run to run)."""
    if not summary:
        return ""
    first = summary[0]
    threshold = first["threshold"]
    spans = [
        k.removeprefix("return_").split("_")
        for k in first
        if k.startswith("return_") and not k.endswith(("_lo", "_hi"))
    ]
    headers = ["condition", "runs", f"final return (last {first['last']})"]
    headers += [f"return {a}-{b}" for a, b in spans]
    if threshold is not None:
        headers += [f"episodes to {threshold:g}", "reached"]
    headers += ["feedback/run"] + (["steps/s"] if timing else [])
    lines = []
    for s in summary:
        cells = [
            s["condition"],
            str(s["runs"]),
            plus_minus(s["final_return"], s["final_return_lo"], s["final_return_hi"]),
        ]
        for a, b in spans:
            key = f"return_{a}_{b}"
            cells.append(plus_minus(s[key], s[key + "_lo"], s[key + "_hi"]))
        if threshold is not None:
            cells += [
                plus_minus(
                    s["episodes_to_threshold"], s["episodes_to_threshold_lo"], s["episodes_to_threshold_hi"]
                ),
                f"{s['reached']}/{s['runs']}",
            ]
        cells += [plus_minus(s["feedback"], s["feedback_lo"], s["feedback_hi"], 0)]
        cells += [f"{s['steps_per_s']:.0f}"] if timing else []
        lines.append(cells)
    widths = [max(len(h), *(len(c[i]) for c in lines)) for i, h in enumerate(headers)]
    fmt = [str.ljust] + [str.rjust] * (len(headers) - 1)
    out = ["  ".join(f(h, w) for f, h, w in zip(fmt, headers, widths, strict=True))]
    out += ["  ".join(f(c, w) for f, c, w in zip(fmt, cells, widths, strict=True)) for cells in lines]
    return "\n".join(out)


def report(
    root: Path,
    csv_path: Path | None = None,
    by: str = "condition",
    threshold: float | None = None,
    last: int = 5,
    window: int = 1,
    runs: Iterable[Path] | None = None,
    spans: Sequence[tuple[int, int]] = (),
) -> tuple[list[dict], list[dict]]:
    """Gather ``root`` into results.csv, summarise it into summary.csv; returns (rows, summary)."""
    rows = gather(root, runs)
    threshold = threshold if threshold is not None else default_threshold(root, rows)
    summary = summarize(rows, by, threshold, last, window, spans)
    write_csv(rows, csv_path or root / "results.csv")
    write_csv(summary, root / "summary.csv")
    return rows, summary
