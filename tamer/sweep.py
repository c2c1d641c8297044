"""Running many training runs in parallel, each into its own folder, written atomically.

A run trains into ``<out>.partial`` and is renamed to ``<out>`` only when complete, so a killed sweep
never leaves a half-written run where a finished one is expected, and a restart redoes only what is missing.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tamer.config import Config
from tamer.progress import Progress


@dataclass
class Run:
    cfg: Config
    out: Path


def execute(run: Run) -> Path:
    """Train one run into a temporary folder and rename it into place when done."""
    from tamer.train import train

    partial = run.out.with_name(run.out.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    train(run.cfg, partial, progress=False)
    os.replace(partial, run.out)
    return run.out


def run_all(runs: list[Run], workers: int = 0) -> list[Path]:
    """Run what is not already complete; ``workers`` 0 means one process per core."""
    todo = [r for r in runs if not (r.out / "config.json").exists()]
    workers = workers or os.cpu_count() or 1
    bar = Progress(len(runs), "runs")
    bar.update(f"{len(runs) - len(todo)} already done", n=len(runs) - len(todo))
    for run in todo:
        run.out.parent.mkdir(parents=True, exist_ok=True)
    try:
        if workers == 1:
            for run in todo:
                execute(run)
                bar.update(run.out.name)
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for done in pool.map(execute, todo):
                    bar.update(done.name)
    finally:
        bar.close()
    return [r.out for r in runs]
