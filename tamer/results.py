"""Gathering run folders into one tidy table: a row per run × episode, every config field a column."""

from __future__ import annotations

import csv
import json
from pathlib import Path

METRIC_TYPES = {
    "episode": int,
    "return": float,
    "length": int,
    "feedback": int,
    "ignored": int,
    "steps_per_s": float,
}


def read_run(run: Path, root: Path) -> list[dict]:
    cfg = json.loads((run / "config.json").read_text(encoding="utf-8"))
    condition = run.relative_to(root).parent.as_posix()
    rows = []
    with open(run / "metrics.csv", newline="", encoding="utf-8") as f:
        for metrics in csv.DictReader(f):
            row = {**cfg, "condition": condition, "run": run.relative_to(root).as_posix()}
            row.update({k: METRIC_TYPES.get(k, float)(v) for k, v in metrics.items()})
            rows.append(row)
    return rows


def gather(root: Path) -> list[dict]:
    """Every complete run below ``root`` (folders being written end in .partial and are skipped)."""
    rows = []
    for config in sorted(root.rglob("config.json")):
        if not any(part.endswith(".partial") for part in config.relative_to(root).parts):
            rows.extend(read_run(config.parent, root))
    return rows
