"""Running many training runs at once: in parallel processes (or as Ray tasks), each into its own folder.

Each run is written under a temporary name (``seed=3.partial-…``) and renamed into place only when
complete, and a run counts as done exactly when its final folder exists. So a sweep killed at any moment,
even by SIGKILL, leaves no half-written run where a finished one is expected, and running it again redoes
only what is missing. ``tamer.sweep`` makes the runs of an experiment file, ``tamer.compare`` its own.

A worker killed from outside (the OOM killer's SIGKILL) is noticed at once: the sweep says which run it was
on, in one line, and runs it again in a fresh worker; a run whose worker dies ``MAX_ATTEMPTS`` times stops
the sweep with one line (the finished runs are kept, and the same command resumes).
"""

from __future__ import annotations

import contextlib
import glob
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import sys
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tamer.config import Config
from tamer.errors import ConfigError, RunError
from tamer.io import locked as lock_folder
from tamer.progress import Progress
from tamer.results import PARTIAL

BACKENDS = ("local", "ray")
LOCK = ".sweep.lock"
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
MAX_ATTEMPTS = 3  # tries of a run whose worker dies (killed from outside) before the sweep stops

log = logging.getLogger(__name__)


@dataclass
class Run:
    cfg: Config
    out: Path


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
    """A run's files by their paths inside the run folder (subfolders too: the rankings pipeline's
    ``rankings/``), trained in a private temporary folder. For Ray: a worker on another machine need not
    see the driver's disk; the driver writes the files and publishes the run like a local worker does."""
    import tempfile

    from tamer.train import train

    with tempfile.TemporaryDirectory(prefix="tamer-run-") as tmp:
        out = Path(tmp) / "run"
        train(cfg, out, progress=False)
        return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def write_run(files: dict[str, bytes], out: Path) -> None:
    partial = partial_path(out)
    partial.mkdir(parents=True)
    for name, data in files.items():
        (partial / name).parent.mkdir(parents=True, exist_ok=True)
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
    so a killed sweep never blocks the restart. A folder that cannot be made or written is one line."""
    stack = contextlib.ExitStack()
    try:
        if root.exists() and not root.is_dir():
            raise ConfigError(f"--out {root} is a file, not a folder; choose another --out")
        root.mkdir(parents=True, exist_ok=True)
        if not os.access(root, os.W_OK):
            raise PermissionError(13, "Permission denied")
        busy = f"another sweep is writing to {root}; wait for it or choose another --out"
        stack.enter_context(lock_folder(root, LOCK, busy))
    except OSError as e:
        raise ConfigError(f"cannot write --out {root}: {e.strerror or e}") from None
    with stack:
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
    SIGKILL, it would go on training runs that the restarted sweep redoes anyway. Warnings of the library
    read as the CLI shows them (``tamer: ...``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logger = logging.getLogger("tamer")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("tamer: %(message)s"))
        logger.addHandler(handler)
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)


def worker_main(conn: Any, parent: int) -> None:
    """A pool worker: trains the runs the sweep sends, one at a time, answering each with ("done", None, "")
    or ("failed", exception, traceback); None (or the sweep gone) ends it."""
    worker_init(parent)
    while True:
        try:
            run = conn.recv()
        except (EOFError, OSError):
            return
        if run is None:
            return
        try:
            execute(run)
            reply: tuple = ("done", None, "")
        except BaseException as e:  # the sweep decides; a worker reports
            reply = ("failed", e, traceback.format_exc())
        try:
            conn.send(reply)
        except Exception:  # an exception that does not pickle: its text
            conn.send(("failed", RuntimeError(f"{type(reply[1]).__name__}: {reply[1]}"), reply[2]))


class RemoteTraceback(Exception):
    """The worker's traceback, as the cause of the exception it raised."""

    def __str__(self) -> str:
        return str(self.args[0])


class Worker:
    """One spawned worker process, its end of the pipe and the run it is on (None when idle)."""

    def __init__(self, ctx: Any):
        self.conn, child = ctx.Pipe()
        with single_threaded_numerics():
            self.process = ctx.Process(target=worker_main, args=(child, os.getpid()), daemon=True)
            self.process.start()
        child.close()
        self.run: Run | None = None

    def give(self, run: Run) -> bool:
        """Hand ``run`` over; False if the worker is already gone."""
        try:
            self.conn.send(run)
        except OSError:
            return False
        self.run = run
        return True

    def reply(self) -> tuple | None:
        """The worker's answer about its run, or None when it died without one."""
        if not self.conn.poll():
            return None
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            return None

    def how_it_died(self) -> str:
        self.process.join(timeout=5)
        code = self.process.exitcode
        if code is not None and code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else f"signal {-code}"
            return f"killed by {name}" + (", out of memory?" if -code == signal.SIGKILL else "")
        return f"exit code {code}"

    def stop(self, now: bool) -> None:
        if now:
            self.process.kill()
        else:
            with contextlib.suppress(OSError):
                self.conn.send(None)
        self.process.join(timeout=None if now else 10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


def run_local(todo: Sequence[Run], workers: int, done: Callable[[Run], None]) -> None:
    """A pool of 'spawn' processes (no state inherited from the parent, the same on every OS), each on one
    run at a time; with one worker, in this process, where a debugger can follow. The sweep watches each
    busy worker's process as well as its pipe, so a worker that dies (SIGKILL from the OOM killer) is
    noticed at once: one warning naming its run, which runs again (a fresh worker, a fresh partial folder)
    up to MAX_ATTEMPTS times in all; then RunError stops the sweep."""
    if workers == 1 or len(todo) == 1:
        for run in todo:
            done(execute(run))
        return
    ctx = multiprocessing.get_context("spawn")
    queue, attempts = deque(todo), {id(run): 0 for run in todo}
    pool: list[Worker] = []
    failed = True
    try:
        pool += [Worker(ctx) for _ in range(min(workers, len(todo)))]
        while queue or any(w.run is not None for w in pool):
            for i, w in enumerate(pool):
                while w.run is None and queue:
                    if w.give(queue[0]):
                        attempts[id(queue.popleft())] += 1
                    else:  # died while idle: its run never started
                        w.stop(now=True)
                        w = pool[i] = Worker(ctx)
            busy = [w for w in pool if w.run is not None]
            ready = multiprocessing.connection.wait(
                [w.conn for w in busy] + [w.process.sentinel for w in busy]
            )
            for i, w in enumerate(pool):
                if w.run is None or (w.conn not in ready and w.process.sentinel not in ready):
                    continue
                run, answer = w.run, w.reply()
                w.run = None
                if answer is not None:
                    status, error, remote = answer
                    if status == "failed":
                        if not isinstance(error, ConfigError):
                            error.__cause__ = RemoteTraceback(remote)
                        raise error
                    done(run)
                    continue
                dead = w.how_it_died()
                for stale in run.out.parent.glob(f"{glob.escape(run.out.name)}{PARTIAL}-{w.process.pid}-*"):
                    shutil.rmtree(stale, ignore_errors=True)  # its attempt: nothing writes there any more
                w.stop(now=True)
                if attempts[id(run)] >= MAX_ATTEMPTS:
                    raise RunError(
                        f"{run.out}: its worker died {attempts[id(run)]} times ({dead}); sweep stopped, the "
                        "finished runs are kept: run the same command again to resume"
                    )
                log.warning(
                    f"{run.out}: its worker died ({dead}); running it again "
                    f"(attempt {attempts[id(run)] + 1} of {MAX_ATTEMPTS})"
                )
                queue.appendleft(run)
                pool[i] = Worker(ctx)
        failed = False
    finally:
        for w in pool:
            w.stop(now=failed)


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
    task = ray.remote(num_cpus=1, max_retries=MAX_ATTEMPTS - 1)(train_files)  # retried if its worker dies
    queue, pending = list(reversed(todo)), dict[Any, Run]()
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
                    raise type(e.cause)(f"{run.out}: {e.cause}") from None
                raise
            except ray.exceptions.RayError as e:  # its worker died MAX_ATTEMPTS times, or the node did
                raise RunError(
                    f"{run.out}: its Ray task was lost ({type(e).__name__}: a worker killed, out of "
                    "memory?); sweep stopped, the finished runs are kept: the same command resumes"
                ) from None
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
