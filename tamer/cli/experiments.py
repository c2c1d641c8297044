"""The experiment commands: ``sweep``, ``results``, ``plot`` and ``compare``.

Only argument handling and printing live here; the work is done by the libraries ``tamer.sweep``,
``tamer.runner``, ``tamer.results``, ``tamer.plots`` and ``tamer.compare`` (matplotlib is imported only when
a command plots). Errors are raised as ``ConfigError``; ``tamer.cli.main`` turns them into one line and
exit code 2.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from tamer.compare import EPISODES, SEEDS
from tamer.errors import ConfigError
from tamer.runner import BACKENDS


def default_out(experiment: Path) -> Path:
    return Path("results") / experiment.stem


def cmd_sweep(args: argparse.Namespace) -> int:
    from tamer.runner import finished, run_all
    from tamer.sweep import load_experiment, parse_overrides, write_experiment_copy

    path = Path(args.experiment)
    overrides = parse_overrides(args.set)
    exp = load_experiment(path, overrides, args.seeds)
    root = Path(args.out) if args.out else default_out(path)
    runs = exp.runs(root)
    exp.check()
    if args.dry_run:
        print(f"{path}: {len(exp.cells)} cells × {len(exp.seeds)} seeds = {len(runs)} runs into {root}")
        if exp.description:
            print(f"  {exp.description}")
        n_done = 0
        for run in runs:
            is_done = finished(run)
            n_done += is_done
            print(f"  {'done' if is_done else 'todo'}  {run.out.relative_to(root).as_posix()}")
        print(f"{n_done} done, {len(runs) - n_done} to run")
        return 0
    notes = [f"run with --set {k}={v!r}" for k, v in overrides.items()]
    notes += [f"run with --seeds {args.seeds}"] if args.seeds else []
    started = time.perf_counter()
    ran = run_all(
        runs,
        root,
        args.workers,
        args.backend,
        progress=not args.quiet,
        prepare=lambda: write_experiment_copy(exp, root, notes),
    )
    print(
        f"{len(runs)} runs in {root} ({ran} run now, {len(runs) - ran} already done) in "
        f"{time.perf_counter() - started:.0f}s; next: tamer results {root}"
    )
    return 0


def cmd_results(args: argparse.Namespace) -> int:
    from tamer.results import format_summary, report

    check_positive(args, "last", "window")
    check_finite(args, "threshold")
    root = Path(args.folder)
    spans = [parse_span(text) for text in args.span]
    rows, summary = report(
        root,
        Path(args.csv) if args.csv else None,
        args.by,
        args.threshold,
        args.last,
        args.window,
        spans=spans,
    )
    print(format_summary(summary))
    print(
        f"{len(rows)} rows from {summary and sum(s['runs'] for s in summary)} runs written to "
        f"{args.csv or root / 'results.csv'}; summary in {root / 'summary.csv'}"
    )
    return 0


def parse_span(text: str) -> tuple[int, int]:
    first, sep, end = text.partition(":")
    if not (sep and first.isdigit() and end.isdigit() and 1 <= int(first) <= int(end)):
        raise ConfigError(f"--span needs FIRST:LAST episodes counted from 1, e.g. 1:20, got {text!r}")
    return int(first), int(end)


def cmd_plot(args: argparse.Namespace) -> int:
    from tamer.plots import KINDS, plot_all
    from tamer.results import default_threshold, gather

    check_positive(args, "window")
    check_finite(args, "threshold")
    root = Path(args.folder)
    rows = gather(root)
    threshold = args.threshold if args.threshold is not None else default_threshold(root, rows)
    formats = [f.strip().lower() for f in args.format.split(",") if f.strip()]
    kinds = KINDS if args.kind == "all" else [args.kind]
    written = plot_all(
        rows,
        Path(args.out) if args.out else root / "plots",
        kinds,
        args.x,
        args.y,
        args.hue,
        args.window,
        threshold,
        formats,
        args.title,
    )
    for path in written:
        print(path)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from tamer.compare import compare
    from tamer.results import format_summary

    out = Path(args.out)
    result = compare(
        args.env,
        out,
        seeds=args.seeds,
        episodes=args.episodes,
        workers=args.workers,
        overwrite=args.overwrite,
        backend=args.backend,
        progress=not args.quiet,
        methods=args.methods,
        oracle=args.oracle,
    )
    print(format_summary(result.summary))
    if result.effort is not None:
        from tamer.compare import format_effort

        print(format_effort(result.effort))
    if result.oracle_mean is not None:
        print(f"oracle (the simulated teacher's own policy): mean return {result.oracle_mean:.1f}")
    print(f"plot written to {result.plots[0]}; table in {out / 'results.csv'}")
    return 0


def check_positive(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name} must be >= 1, got {getattr(args, name)}")


def check_finite(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        value = getattr(args, name)
        if value is not None and not math.isfinite(value):
            raise ConfigError(f"--{name} must be a finite number, got {value}")


def add_backend_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="Runs at once (default: one per core; with Ray, as many as the cluster fits).",
    )
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="local",
        help="local: a process pool on this machine (default); ray: Ray tasks on the cluster at "
        "RAY_ADDRESS, or a local Ray instance (pip install 'tamer[ray]').",
    )
    p.add_argument("--quiet", action="store_true", help="No progress bar.")


def add_commands(sub) -> None:
    p = sub.add_parser(
        "sweep",
        help="Run every cell × seed of an experiment file in parallel; resumable.",
        description="Run an experiment file (TOML: [base] config, [grid] of values, seeds) into "
        "OUT/<cell>/seed=N, one folder per run, each written atomically: a killed sweep rerun with the same "
        "command redoes only the unfinished runs.",
    )
    p.add_argument("experiment", help="Experiment file, e.g. experiments/mountaincar_blends.toml.")
    p.add_argument("--out", help="Results folder (default: results/<experiment file name>).")
    p.add_argument("--dry-run", action="store_true", help="List the runs and which are done; run nothing.")
    p.add_argument("--seeds", type=int, default=None, help="Use seeds 0..N-1 instead of the file's.")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="Override a [base] field, value in TOML syntax (bare words are strings); repeatable.",
    )
    add_backend_arguments(p)
    p.set_defaults(run=cmd_sweep)

    p = sub.add_parser(
        "results",
        help="Gather a sweep into one CSV and print a summary per condition.",
        description="Write FOLDER/results.csv (one row per run × episode, every config field a column) and "
        "FOLDER/summary.csv, and print per condition: final return, episodes to threshold, feedback given "
        "and steps/s, each mean ± half-width of its 95%% bootstrap CI.",
    )
    p.add_argument("folder", help="Results folder of tamer sweep.")
    p.add_argument("--csv", help="Where to write the table (default: FOLDER/results.csv).")
    p.add_argument(
        "--by",
        default="condition",
        help="Column(s) to group by, comma-separated (default: condition, one per sweep cell).",
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="Return that counts as solved (default: the experiment's, else the env's).",
    )
    p.add_argument(
        "--last", type=int, default=5, help="Final return = mean of each run's last N episodes (default: 5)."
    )
    p.add_argument(
        "--window",
        type=int,
        default=1,
        help="Threshold counts as reached when the N-episode moving mean reaches it (default: 1).",
    )
    p.add_argument(
        "--span",
        action="append",
        default=[],
        metavar="FIRST:LAST",
        help="Also show the mean return over episodes FIRST..LAST (from 1, inclusive); repeatable.",
    )
    p.set_defaults(run=cmd_results)

    p = sub.add_parser(
        "plot",
        help="Learning curves, episodes to threshold, return against feedback (PNG, PDF, SVG).",
        description="Plot a results folder: mean curves with shaded 95%% bootstrap bands, episodes to "
        "threshold as bars with CIs, and return against the feedback given. Needs no display.",
    )
    p.add_argument("folder", help="Results folder of tamer sweep.")
    p.add_argument(
        "--x",
        default="episode",
        help="x axis: episode; human effort so far: human_seconds, feedback (keypresses), demo_steps, "
        "rankings, pairs; or any per-episode column (default: episode).",
    )
    p.add_argument("--y", default="return", help="y axis column (default: return).")
    p.add_argument(
        "--hue",
        default="condition",
        help="Column(s) that colour the curves, comma-separated, e.g. blend or agent,blend "
        "(default: condition, one curve per sweep cell).",
    )
    p.add_argument("--window", type=int, default=1, help="Moving mean over N episodes (default: 1, none).")
    p.add_argument(
        "--kind",
        choices=("all", "curves", "threshold", "feedback"),
        default="all",
        help="Which plot (default: all).",
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="Return that counts as solved (default: the experiment's, else the env's).",
    )
    p.add_argument("--format", default="png,pdf", help="Comma-separated: png, pdf, svg (default: png,pdf).")
    p.add_argument("--out", help="Folder for the plots (default: FOLDER/plots).")
    p.add_argument("--title", default="", help="Title of the learning-curve plot.")
    p.set_defaults(run=cmd_plot)

    p = sub.add_parser(
        "compare",
        help="TAMER vs TAMER+RL vs plain RL with the default simulated teacher; plot.",
        description="Train each agent of tamer.compare.AGENTS over several seeds with the default simulated "
        "teacher, print a summary table and write OUT/compare.png. Reruns resume.",
    )
    p.add_argument("--env", default="MountainCar-v0", help="Environment id (default: MountainCar-v0).")
    p.add_argument(
        "--out", default="runs/compare", help="Folder for the runs and the plot (default: runs/compare)."
    )
    p.add_argument("--seeds", type=int, default=SEEDS, help=f"Seeds per agent (default: {SEEDS}).")
    p.add_argument(
        "--episodes",
        type=int,
        default=EPISODES,
        help=f"Episodes per run (default: {EPISODES}); PPO-based methods run their env-step budget instead.",
    )
    p.add_argument("--overwrite", action="store_true", help="Replace what --out holds instead of resuming.")
    p.add_argument(
        "--methods",
        default="default",
        help="default: tamer, tamer+rl, rl; all: also bc, ppo_from_bc, rankings, bc_rankings (the human-"
        "feedback pipeline's stages, one simulated person); or a comma-separated list. Beyond the default, "
        "also plots the return against the person's seconds (OUT/compare_effort.png) and prints the effort.",
    )
    p.add_argument(
        "--oracle",
        default="",
        help="The simulated person's oracle where the env has no built-in one (as tamer train's --oracle: "
        "run:PATH, reward, package.module:function).",
    )
    add_backend_arguments(p)
    p.set_defaults(run=cmd_compare)
