"""Experiment sweeps: a TOML file names a base config and a grid over any config field; every cell × seed is
one training run, run in parallel processes (or as Ray tasks), each into its own folder.

Each run is written under a temporary name (``seed=3.partial-…``) and renamed into place only when
complete, and a run counts as done exactly when its final folder exists. So a sweep killed at any moment,
even by SIGKILL, leaves no half-written run where a finished one is expected, and running it again redoes
only what is missing. The folder names come from the swept values (``blend=action_biasing,beta=0.5/seed=3``),
so people can read them and a restarted sweep finds the same runs.

An experiment file::

    description = "What the sweep asks."
    seeds = 20                # 0..19, or a list: seeds = [1, 5, 9]
    threshold = -150.0        # optional: the return that counts as solved, for episodes-to-threshold

    [base]                    # config fields shared by every run (tamer.config.Config)
    env = "MountainCar-v0"
    episodes = 40

    [grid]                    # every combination of these values is one cell
    beta = [0.5, 1.0]

    [[variants]]              # optional alternatives, each crossed with [grid]; a list sweeps within it
    agent = "tamer+rl"
    blend = ["action_biasing", "control_sharing"]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import glob
import hashlib
import itertools
import logging
import multiprocessing
import os
import re
import shutil
import signal
import sys
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tamer.config import Config, check_field, coerce
from tamer.errors import ConfigError
from tamer.progress import Progress
from tamer.results import EXPERIMENT_COPY, PARTIAL

TOP_KEYS = ("description", "seeds", "threshold", "base", "grid", "variants")
BACKENDS = ("local", "ray")
FIELDS = {f.name: f for f in dataclasses.fields(Config)}
LOCK = ".sweep.lock"
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass
class Run:
    cfg: Config
    out: Path


@dataclass
class Cell:
    """One point of the grid: the values that make it (its folder name) and the config they give."""

    name: str
    values: dict[str, Any]
    cfg: Config


@dataclass
class Experiment:
    path: Path
    description: str
    seeds: list[int]
    cells: list[Cell]
    text: str  # the file as read, copied into the results folder

    def runs(self, out: Path) -> list[Run]:
        """Seed-major, so a sweep stopped early has every cell at the same number of seeds."""
        return [
            Run(dataclasses.replace(cell.cfg, seed=seed), out / cell.name / f"seed={seed}")
            for seed in self.seeds
            for cell in self.cells
        ]

    def check(self) -> None:
        """Check every cell so a bad value stops the sweep before it starts rather than when its first run
        reaches a worker, hours in: the config's own validation, the env id registered, the plug-ins it
        names importable. Cheap: no env, model or agent is built."""
        for seed in self.seeds:  # each run's config is its cell's with the seed replaced
            try:
                check_field(Config, FIELDS["seed"], seed)
            except ConfigError as e:
                raise ConfigError(f"{self.path}: seeds: {e}") from None
        seen: set[tuple[str, str]] = set()
        for cell in self.cells:
            try:
                cell.cfg.validate()
                for what, name in [("env", cell.cfg.env), *plugin_specs(cell.cfg)]:
                    if (what, name) not in seen:
                        (check_env_id if what == "env" else check_plugin)(name, what)
                        seen.add((what, name))
            except ConfigError as e:
                raise ConfigError(f"{self.path}, cell {cell.name}: {e}") from None


def check_env_id(env_id: str, what: str = "env") -> None:
    """That ``env_id`` is registered (after our envs, and the module of a ``package.module:Env-v0`` id, are
    imported), without making the env; else one line with the nearest registered id."""
    import importlib

    import gymnasium as gym

    import envs  # noqa: F401  (registers tamer/* environments)

    module, sep, name = env_id.rpartition(":")
    if sep:
        try:
            importlib.import_module(module)
        except Exception as e:  # a user's module may fail in any way while it is imported
            raise ConfigError(f"cannot make {what} {env_id!r}: {type(e).__name__}: {e}") from None
    try:
        gym.spec(name)
    except gym.error.Error:
        close = difflib.get_close_matches(name, list(gym.registry), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"cannot make env {env_id!r}: no such registered environment{hint}") from None


def plugin_specs(cfg: Config) -> list[tuple[str, str]]:
    """(what, spec) of every ``package.module:Name`` plug-in the run would load."""
    specs = []
    if cfg.agent == "tamer+rl":
        specs += [("blend", cfg.blend), ("beta schedule", cfg.beta_schedule)]
    if cfg.agent != "rl" and cfg.teacher != "none":
        specs.append(("teacher", cfg.teacher))
        if cfg.teacher == "oracle" and not cfg.oracle.startswith("run:"):
            specs.append(("oracle", cfg.oracle))
    for name in ("callback", "callbacks"):  # comma-separated; commas inside (k=v, ...) belong to a spec
        text, depth, start = getattr(cfg, name, ""), 0, 0
        for i, ch in enumerate(text + ","):
            depth += (ch == "(") - (ch == ")")
            if ch == "," and depth == 0:
                specs.append(("callback", text[start:i].strip()))
                start = i + 1
    return [(what, spec) for what, spec in specs if ":" in spec]


def check_plugin(spec: str, what: str) -> None:
    """That the module of ``package.module:Name(k=v, ...)`` imports and holds ``Name`` (nothing is built)."""
    import importlib

    target = spec.partition("(")[0].strip()
    module_name, _, attr = target.partition(":")
    try:
        obj = importlib.import_module(module_name.strip())
    except Exception as e:  # a user's module may fail in any way while it is imported
        raise ConfigError(f"cannot load {what} {spec!r}: {type(e).__name__}: {e}") from None
    for part in attr.strip().split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"cannot load {what} {spec!r}: {module_name} has no {attr!r}")
        obj = getattr(obj, part)


# --- reading an experiment file ---------------------------------------------------------------------------


def check_fields(table: dict, where: str, lists: bool | None) -> None:
    """Names and types of one table's fields, as ``Config.from_dict`` checks them, but naming the table.
    ``lists``: True = every value is a list of values to sweep, False = none is, None = either."""
    for name, value in table.items():
        if name not in FIELDS:
            close = difflib.get_close_matches(name, FIELDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: unknown config field {name!r}{hint}")
        if isinstance(value, list):
            if lists is False:
                raise ConfigError(f"{where}: field {name!r} is a list; sweep over it in [grid] instead")
            if not value:
                raise ConfigError(f"{where}: field {name!r} has an empty list of values")
        elif lists is True:
            raise ConfigError(f"{where}: field {name!r} must be a list of values to sweep, got {value!r}")
        for v in value if isinstance(value, list) else [value]:
            coerce(name, v, type(FIELDS[name].default), where)


def parse_value(text: str) -> Any:
    """A ``--set`` value in TOML syntax (1, 0.5, true, "x"); a bare word is taken as a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    overrides = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set needs FIELD=VALUE, got {item!r}")
        overrides[name.strip().replace("-", "_")] = parse_value(value.strip())
    return overrides


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def cell_name(values: dict[str, Any]) -> str:
    """A folder name people can read, from the swept values; characters a path cannot hold become '_',
    and a name too long for a file system keeps its start and a hash of the whole."""
    if not values:
        return "base"
    name = ",".join(f"{k}={format_value(v)}" for k, v in values.items())
    name = re.sub(r"[/\\:*?\"<>|\x00-\x1f]", "_", name)
    if name.startswith("."):
        name = "_" + name[1:]
    if len(name.encode()) > 150:
        name = name[:110] + "~" + hashlib.sha1(name.encode()).hexdigest()[:10]
    return name


def read_seeds(data: dict, grid: dict, base: dict, where: str) -> list[int]:
    seeds = data.get("seeds")
    if "seed" in grid:
        if seeds is not None:
            raise ConfigError(f"{where}: give seeds either as top-level seeds or as seed in [grid], not both")
        seeds = grid.pop("seed")
    if seeds is None:
        return [base.get("seed", Config.seed)]
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ConfigError(f"{where}: seeds must be >= 1, got {seeds}")
        return list(range(seeds))
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
    ):
        raise ConfigError(f"{where}: seeds must be a count (20) or a list of ints ([1, 2, 3]), got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{where}: seeds {seeds} repeat a seed")
    return seeds


def load_experiment(
    path: Path, overrides: dict[str, Any] | None = None, seeds: int | None = None
) -> Experiment:
    """Read and check an experiment file. Every mistake (TOML syntax, an unknown field, a wrong type, a
    value out of range) is one ``ConfigError`` line naming the file, and the field where there is one."""
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except OSError as e:
        raise ConfigError(f"cannot read experiment {path}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: TOML syntax error: {e}") from None
    for key in data:
        if key not in TOP_KEYS:
            hint = " (config fields go in [base], [grid] or [[variants]])" if key in FIELDS else ""
            raise ConfigError(f"{path}: unknown top-level key {key!r}{hint}; known: {', '.join(TOP_KEYS)}")
    base, grid, variants = data.get("base", {}), dict(data.get("grid", {})), data.get("variants", [{}])
    if not isinstance(base, dict) or not isinstance(grid, dict):
        raise ConfigError(f"{path}: base and grid must be tables ([base], [grid])")
    if not isinstance(variants, list) or not all(isinstance(v, dict) for v in variants):
        raise ConfigError(f"{path}: variants must be an array of tables ([[variants]])")
    check_fields(base, f"{path} [base]", lists=False)
    check_fields(grid, f"{path} [grid]", lists=True)
    for i, variant in enumerate(variants, 1):
        check_fields(variant, f"{path} [[variants]] #{i}", lists=None)
        if "seed" in variant:
            raise ConfigError(f"{path} [[variants]] #{i}: give seeds as top-level seeds, not per variant")
        if clash := sorted(set(variant) & set(grid)):
            raise ConfigError(f"{path} [[variants]] #{i}: field {clash[0]!r} is also swept in [grid]")
    if overrides:
        check_fields(overrides, "--set", lists=False)
        for name in overrides:
            if name in grid or any(name in v for v in variants):
                raise ConfigError(f"--set {name}: {path} sweeps over {name!r}; edit the file instead")
        base = {**base, **overrides}
    seed_list = read_seeds(data, grid, base, str(path)) if seeds is None else list(range(seeds))
    threshold = data.get("threshold")
    if threshold is not None and (not isinstance(threshold, int | float) or isinstance(threshold, bool)):
        raise ConfigError(f"{path}: threshold must be a number, got {threshold!r}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"{path}: description must be a string")
    return Experiment(
        path,
        description,
        seed_list,
        make_cells(path, base, grid, variants),
        text,
    )


def make_cells(path: Path, base: dict, grid: dict, variants: list[dict]) -> list[Cell]:
    cells: dict[str, Cell] = {}
    for variant in variants:
        keys = [*variant, *grid]
        options = {**{k: v if isinstance(v, list) else [v] for k, v in variant.items()}, **grid}
        for combo in itertools.product(*(options[k] for k in keys)):
            values = dict(zip(keys, combo, strict=True))
            name = cell_name(values)
            try:
                cfg = Config.from_dict({**base, **values}, str(path))
            except ConfigError as e:
                message = str(e)
                raise ConfigError(
                    message if message.startswith(str(path)) else f"{path}, cell {name}: {message}"
                ) from None
            values = {k: getattr(cfg, k) for k in values}  # as typed: beta = 1 and beta = 1.0 are one cell
            name = cell_name(values)
            if name in cells:
                raise ConfigError(
                    f"{path}: two cells are both {name!r}; remove the repeated value or variant"
                )
            cells[name] = Cell(name, values, cfg)
    return list(cells.values())


# --- running ----------------------------------------------------------------------------------------------


def partial_path(out: Path) -> Path:
    """A name no other attempt uses, so a worker orphaned by a killed sweep never writes into a folder the
    restarted sweep is writing."""
    return out.with_name(f"{out.name}{PARTIAL}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def publish(partial: Path, out: Path) -> None:
    """Rename a complete run into place: the one step that makes it count as done."""
    try:
        os.rename(partial, out)
    except OSError:
        if not (out / "config.json").exists():
            raise
        shutil.rmtree(partial, ignore_errors=True)  # finished meanwhile by another attempt: same numbers


def execute(run: Run) -> Run:
    """Train one run into a temporary folder and rename it into place when done. Module-level, so
    'spawn' workers find it by name."""
    from tamer.train import train

    partial = partial_path(run.out)
    try:
        train(run.cfg, partial, overwrite=True, progress=False)
    except ConfigError as e:
        shutil.rmtree(partial, ignore_errors=True)
        raise ConfigError(f"{run.out}: {e}") from None
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    publish(partial, run.out)
    return run


def train_files(cfg: Config) -> dict[str, bytes]:
    """A run's files, trained in a private temporary folder. For Ray: a worker on another machine need not
    see the driver's disk; the driver writes the files and publishes the run like a local worker does."""
    import tempfile

    from tamer.train import train

    with tempfile.TemporaryDirectory(prefix="tamer-run-") as tmp:
        out = Path(tmp) / "run"
        train(cfg, out, progress=False)
        return {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}


def write_run(files: dict[str, bytes], out: Path) -> None:
    partial = partial_path(out)
    partial.mkdir(parents=True)
    for name, data in files.items():
        (partial / name).write_bytes(data)
    publish(partial, out)


def finished(run: Run) -> bool:
    """Whether ``run`` is done, refusing a finished run made from a different config: an edited experiment
    must not silently mix old and new runs in one table."""
    if not run.out.exists():  # checked first: a run appears complete, by one rename, or not at all
        return False
    config = run.out / "config.json"
    if not config.exists():
        if any(run.out.iterdir()):
            raise ConfigError(f"{run.out} holds files but no finished run; move it away and run again")
        return False
    saved, wanted = Config.load(config).to_dict(), run.cfg.to_dict()
    for name, value in wanted.items():
        if saved.get(name) != value:
            raise ConfigError(
                f"{run.out} holds a finished run with {name}={saved.get(name)!r}, but this "
                f"sweep asks for {value!r}; choose another --out or remove the old runs"
            )
    return True


def clean_partials(runs: Sequence[Run]) -> None:
    """Remove what killed attempts left behind (we hold the lock, so nothing is writing them)."""
    for run in runs:
        for stale in run.out.parent.glob(glob.escape(run.out.name) + PARTIAL + "*"):
            shutil.rmtree(stale, ignore_errors=True)


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """One sweep at a time per results folder. The OS drops the lock when its holder dies, however it dies,
    so a killed sweep never blocks the restart."""
    root.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, the rest still holds
        yield
        return
    with open(root / LOCK, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(
                f"another sweep is writing to {root}; wait for it or choose another --out"
            ) from None
        yield


@contextlib.contextmanager
def single_threaded_numerics() -> Iterator[None]:
    """Workers inherit one thread each for BLAS/OpenMP/torch: N processes × N threads on N cores would
    oversubscribe the machine and lose the scaling a pool is for."""
    saved = {name: os.environ.get(name) for name in THREAD_VARS}
    for name in THREAD_VARS:
        os.environ.setdefault(name, "1")
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def worker_init(parent: int) -> None:
    """Ctrl-C is the sweep's to handle (it stops the pool); and a worker dies with the sweep: orphaned by a
    SIGKILL, it would go on training runs that the restarted sweep redoes anyway."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)


def run_local(todo: Sequence[Run], workers: int, done: Callable[[Run], None]) -> None:
    """A pool of 'spawn' processes (no state inherited from the parent, the same on every OS); with one
    worker, in this process, where a debugger can follow."""
    if workers == 1 or len(todo) == 1:
        for run in todo:
            done(execute(run))
        return
    with single_threaded_numerics():
        pool = multiprocessing.get_context("spawn").Pool(
            min(workers, len(todo)), initializer=worker_init, initargs=(os.getpid(),)
        )
    try:
        for run in pool.imap_unordered(execute, todo):
            done(run)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def start_ray(ray, workers: int) -> None:
    """Connect to the cluster at RAY_ADDRESS, shipping our code to it; else start a local instance."""
    options = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
    if address := os.environ.get("RAY_ADDRESS"):
        import envs
        import tamer

        ray.init(address=address, runtime_env={"py_modules": [tamer, envs]}, **options)
    else:
        ray.init(num_cpus=workers or None, **options)


def run_ray(todo: Sequence[Run], workers: int, done: Callable[[Run], None]) -> None:
    """The same runs as Ray tasks; at most ``workers`` at once (0: as many as the cluster fits)."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--backend ray needs Ray: pip install 'tamer[ray]'") from None
    started = not ray.is_initialized()
    if started:
        start_ray(ray, workers)
    task = ray.remote(num_cpus=1)(train_files)
    queue, pending = list(reversed(todo)), {}
    limit = workers or len(todo)
    try:
        while queue or pending:
            while queue and len(pending) < limit:
                run = queue.pop()
                pending[task.remote(run.cfg)] = run
            ready, _ = ray.wait(list(pending), num_returns=1)
            run = pending.pop(ready[0])
            try:
                files = ray.get(ready[0])
            except ray.exceptions.RayTaskError as e:
                if isinstance(e.cause, ConfigError):
                    raise ConfigError(f"{run.out}: {e.cause}") from None
                raise
            write_run(files, run.out)
            done(run)
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()


def run_all(
    runs: Sequence[Run],
    root: Path,
    workers: int = 0,
    backend: str = "local",
    progress: bool = True,
    prepare: Callable[[], None] | None = None,
) -> int:
    """Run every run not already finished, into folders below ``root``; returns how many ran now.
    ``workers`` 0 means one per core (local) or as many as the cluster fits (ray). ``prepare`` runs first,
    under the same lock (no other sweep can come between it and the runs)."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    if workers < 0:
        raise ConfigError(f"--workers must be >= 0, got {workers}")
    if backend == "local":
        workers = workers or os.cpu_count() or 1
    with locked(root):
        if prepare is not None:
            prepare()
        todo = [run for run in runs if not finished(run)]
        clean_partials(runs)
        if not todo:
            return 0
        bar = Progress(len(runs), "sweep", enabled=progress)
        if len(todo) < len(runs):
            bar.update(f"{len(runs) - len(todo)} already done", n=len(runs) - len(todo))

        def done(run: Run) -> None:
            bar.update(run.out.relative_to(root).as_posix())

        try:
            (run_ray if backend == "ray" else run_local)(todo, workers, done)
        finally:
            bar.close()
    return len(todo)


def write_experiment_copy(exp: Experiment, root: Path, notes: Sequence[str] = ()) -> None:
    root.mkdir(parents=True, exist_ok=True)
    text = exp.text + "".join(f"\n# {note}" for note in notes) + ("\n" if notes else "")
    tmp = root / (EXPERIMENT_COPY + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, root / EXPERIMENT_COPY)


# --- commands ---------------------------------------------------------------------------------------------


def default_out(experiment: Path) -> Path:
    return Path("results") / experiment.stem


def cmd_sweep(args: argparse.Namespace) -> int:
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

    compare(
        args.env,
        Path(args.out),
        seeds=args.seeds,
        episodes=args.episodes,
        workers=args.workers,
        overwrite=args.overwrite,
        backend=args.backend,
        progress=not args.quiet,
    )
    return 0


def check_positive(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name} must be >= 1, got {getattr(args, name)}")


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
    from tamer.compare import EPISODES, SEEDS

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
        "--x", default="episode", help="x axis: episode, or a per-episode column (default: episode)."
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
    p.add_argument("--episodes", type=int, default=EPISODES, help=f"Episodes per run (default: {EPISODES}).")
    p.add_argument("--overwrite", action="store_true", help="Replace what --out holds instead of resuming.")
    add_backend_arguments(p)
    p.set_defaults(run=cmd_compare)
