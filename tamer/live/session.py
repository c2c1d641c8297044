"""The session folder of ``tamer play`` and its formats (the layout is in ``tamer.live``'s docstring): where
each file is, steps.csv written (a callback of the learner) and read back, the feedback log with its step
numbers, the session clock, and where a resumed session starts."""

from __future__ import annotations

import contextlib
import json
import shutil
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tamer.callbacks import METRICS, Callback
from tamer.credit import CreditAssigner, WallClock
from tamer.errors import ConfigError
from tamer.feedback import Feedback, read_feedback_rows
from tamer.io import AppendLog, complete_lines, file_sha256, locked, refuse_to_replace
from tamer.live.keys import LiveConfig
from tamer.session import Session
from tamer.stepper import Step

STEPS_HEADER = "step,episode,run,t_start,t_end,action,reward,terminated,truncated,obs,next_obs"
LIVE_METRICS = (*METRICS, "seconds", "positive", "negative", "ended", "run")
MAX_LOGGED_OBS = 4096  # observations with more values (images) are not written to steps.csv
RESUME_GAP = 1.0  # seconds between the end of one run and the start of the next on the session clock
LOCK = ".lock"  # the session's lock file: held by the one process writing the session


class SessionFolder:
    """Where a session's files live."""

    def __init__(self, path: Path):
        self.path = path
        self.config, self.live = path / "config.json", path / "live.json"
        self.feedback, self.steps, self.metrics = (
            path / "feedback.csv",
            path / "steps.csv",
            path / "metrics.csv",
        )
        self.model, self.checkpoint = path / "model.npz", path / "checkpoint.json"

    @classmethod
    def existing(cls, path: Path) -> SessionFolder:
        folder = cls(Path(path))
        if not folder.path.is_dir():
            raise ConfigError(f"session folder {path} does not exist")
        if not (folder.config.is_file() and folder.steps.is_file() and folder.feedback.is_file()):
            raise ConfigError(
                f"{path} is not a tamer play session (it needs config.json, steps.csv, feedback.csv)"
            )
        return folder

    def demonstration(self) -> bool:
        """Whether the session was recorded with ``--demonstrate`` (its live.json says so)."""
        if not self.live.is_file():
            return False
        return LiveConfig.load(self.live).demonstrate

    def checkpoint_record(self) -> dict | None:
        """checkpoint.json (what model.npz covers: ``step``, ``run``, ``late``, ``sha256``), or None if there
        is no model or no readable record."""
        if not (self.model.is_file() and self.checkpoint.is_file()):
            return None
        try:
            record = json.loads(self.checkpoint.read_text(encoding="utf-8"))
            record["step"], record["late"] = int(record["step"]), int(record.get("late", 0))
            return record
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def checkpoint_step(self) -> int | None:
        """The last step model.npz includes, or None if there is no model."""
        record = self.checkpoint_record()
        return None if record is None else record["step"]

    def model_unreadable(self) -> str | None:
        """Why model.npz cannot be read at all (empty, not an npz, a damaged archive), or None."""
        try:
            with zipfile.ZipFile(self.model) as archive:
                bad = archive.testzip()  # every member's CRC
            if bad is not None:
                raise zipfile.BadZipFile(f"member {bad} is damaged")
        except (OSError, zipfile.BadZipFile, EOFError, ValueError) as e:
            reason = " ".join(f"{type(e).__name__}: {e}".split())
            return f"model.npz is unreadable ({reason})"
        from tamer.rowstore import rows_problem

        problem = rows_problem(self.model)  # a replay buffer's side file missing, short or altered
        return None if problem is None else f"model.npz is unreadable ({problem})"

    def model_problem(self, last_step: int) -> str | None:
        """Why model.npz cannot stand for the agent of a session whose log ends at ``last_step`` (None: it
        can). It is missing, unreadable (empty, not an npz, a damaged archive), not the file checkpoint.json
        describes (another sha256: a model copied in, or a kill between the two files' renames), or it
        covers fewer steps than the log (a kill before the last save). Whether it fits the config is the
        load's to say (``tamer.agents.Agent.load``)."""
        if not self.model.is_file():
            return "there is no model.npz"
        unreadable = self.model_unreadable()
        if unreadable is not None:
            return unreadable
        record = self.checkpoint_record()
        if record is None:
            return "model.npz has no checkpoint.json saying what it covers"
        if "sha256" in record and record["sha256"] != file_sha256(self.model):
            return "model.npz is not the file checkpoint.json describes (its sha256 differs)"
        if record["step"] != last_step:
            return f"model.npz covers step {record['step']} but the log goes to step {last_step}"
        return None

    def claim(self, resume: bool, overwrite: bool = False) -> contextlib.AbstractContextManager[None]:
        """Hold the session for a block (``claim_folder``)."""
        return claim_folder(self.path, resume, overwrite)


@contextlib.contextmanager
def claim_folder(path: Path, resume: bool, overwrite: bool = False) -> Iterator[None]:
    """Hold a session folder for the block: one process at a time plays, resumes, ranks in or rewrites a
    session (its ``.lock``; the OS drops the lock when its holder dies, however it dies). A second is refused
    in one line. A new session's folder is made, or emptied with ``overwrite`` (``tamer.train.prepare_out``'s
    rules: a file or an unwritable place is refused, so is a folder holding files without ``overwrite``)."""
    path = Path(path)
    busy = (
        f"{path} is in use: another tamer process (play, rank or replay --out) holds it; wait for it to "
        "end, or choose another session"
    )
    stack = contextlib.ExitStack()
    try:
        if not resume:
            if path.exists() and not path.is_dir():
                raise ConfigError(f"--out {path} is a file, not a folder; choose another --out")
            held = path.is_dir() and any(p.name != LOCK for p in path.iterdir())
            if held and not overwrite:
                raise ConfigError(f"{path} already holds files; choose another --out or pass --overwrite")
            if held:
                refuse_to_replace(path)
        stack.enter_context(locked(path, LOCK, busy))
        if not resume:
            for old in path.iterdir():  # --overwrite: the old session goes, the lock we hold stays
                if old.name != LOCK:
                    shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
    except OSError as e:
        stack.close()
        where = "--out " if not resume else ""
        raise ConfigError(f"cannot write {where}{path}: {e.strerror or e}") from None
    except BaseException:
        stack.close()
        raise
    with stack:
        yield


# --- steps.csv -------------------------------------------------------------------------------------------


def format_obs(obs) -> str:
    values = np.asarray(obs).ravel()
    return "" if values.size > MAX_LOGGED_OBS else " ".join(map(repr, values.tolist()))


def parse_obs(text: str, space):
    """Back to the space's dtype and shape, bit for bit (the floats were written with repr)."""
    if not text:
        return None
    dtype = np.dtype(space.dtype) if space.dtype is not None else np.dtype(np.float64)
    parse = int if dtype.kind in "iub" else float
    return np.array([parse(v) for v in text.split(" ")], dtype=dtype).reshape(space.shape)


class StepsCsv(Callback):
    """steps.csv: one flushed line per step, written once the agent has learned from it (floats by repr, so
    replay reads back the very numbers)."""

    def __init__(self, path: Path, append: bool = False):
        self.path, self.append = Path(path), append
        self.log: AppendLog | None = None

    def on_run_start(self, s: Session) -> None:
        self.log = AppendLog(self.path, STEPS_HEADER, self.append)

    def on_step(self, s: Session, step: Step, feedback: Sequence[Feedback]) -> None:
        assert self.log is not None
        self.log.write_line(format_step(step))

    def on_run_end(self, s: Session) -> None:
        if self.log is not None:
            self.log.close()


def format_step(r: Step) -> str:
    return (
        f"{r.step},{r.episode},{r.run},{r.t_start!r},{r.t_end!r},{r.action},{r.reward!r},"
        f"{int(r.terminated)},{int(r.truncated)},{format_obs(r.obs)},{format_obs(r.next_obs)}"
    )


def flag(text: str) -> bool:
    return text == "1"


STEP_COLUMNS: tuple[Callable[[str], object], ...] = (int, int, int, float, float, int, float, flag, flag)
"""The converters of steps.csv's columns before obs and next_obs."""


def read_steps(path: Path, space) -> list[Step]:
    """steps.csv back as steps. A last line without its newline (the process was killed while writing it)
    is dropped: that step's learner job had not finished either (the model never covers it). Steps must go
    forwards (in number, and in run): a log two processes wrote at once is refused, never replayed."""
    try:
        lines = complete_lines(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from None
    if not lines:  # empty, or killed while writing the header: no step was logged
        return []
    if lines[0] != STEPS_HEADER:
        raise ConfigError(f"{path}:1: not a steps log (expected header {STEPS_HEADER!r})")
    rows: list[Step] = []
    for number, line in enumerate(lines[1:], start=2):
        f = line.split(",")
        try:
            if len(f) != 11:
                raise ValueError
            values = [convert(v) for convert, v in zip(STEP_COLUMNS, f[:9], strict=True)]
            row = Step._make([*values, parse_obs(f[9], space), parse_obs(f[10], space)])
        except ValueError:
            raise ConfigError(f"{path}:{number}: expected {STEPS_HEADER}, got {line[:200]!r}") from None
        if rows and (row.step <= rows[-1].step or row.run < rows[-1].run or row.t_start < rows[-1].t_end):
            raise ConfigError(
                f"{path}:{number}: step {row.step} (run {row.run}) does not follow step {rows[-1].step} (run "
                f"{rows[-1].run}): two processes wrote this session at once, or it was edited; it cannot be "
                "replayed"
            )
        rows.append(row)
    return rows


def read_feedback_steps(path: Path) -> list[tuple[Feedback, int]]:
    """The feedback log with each keypress's ``step`` (after which step it is handed over); a torn last line
    (the process was killed while writing it) is left out."""
    return [(fb, step) for fb, step, _ in read_feedback_rows(path, drop_torn=True)]


# --- keypresses of a step that never ended ---------------------------------------------------------------


def open_keys(feedback: Sequence[tuple[Feedback, int]], rows: Sequence[Step]) -> list[Feedback]:
    """The keypresses logged after the last logged step: pressed during a step that never ended (a crash,
    a kill) or that ended without its line reaching steps.csv; the live agent never learned them."""
    last = rows[-1].step if rows else 0
    return [fb for fb, step in feedback if step > last]


def learn_late(s: Session, rows: Sequence[Step], keys: Sequence[Feedback]) -> int:
    """Teach ``s.agent`` the keypresses of a step that never ended, as a resumed session does before its
    first step (and replay at the same point): each credited by its time, through the session's delay
    density, over the logged steps it judges (the last ones of the last run with steps, encoded by the agent
    as the learner did), then learned as any keypress. The open step itself was never logged, so the part of
    a key's delay window that falls in it credits nothing. Returns how many keys were handed over.

    Why then, and not with the resumed run's first step: credit is by time, and a resumed run's steps start
    after everything logged (``RESUME_GAP`` later), so no key of the crashed run could reach one of them;
    its steps are the ones the person was judging."""
    if not keys or not rows:
        return 0
    base = s.credit
    credit = CreditAssigner(base.density, slack=base.horizon - base.density.max_delay, mode=base.mode)
    run, oldest = rows[-1].run, min(fb.time for fb in keys) - base.horizon
    first = len(rows) - 1  # back to every step of the run a key's window can reach, and at least 3 steps
    while (
        first > 0 and rows[first - 1].run == run and (rows[first - 1].t_end > oldest or len(rows) - first < 3)
    ):
        first -= 1
    for r in rows[first:]:
        credit.record(s.agent.encode(r.obs), r.action, r.t_start, r.t_end)
    for fb in keys:
        xs, actions, credits = credit.assign(fb.time)
        s.agent.learn_feedback(xs, actions, credits, fb.value)
    return len(keys)


# --- time and resuming -----------------------------------------------------------------------------------


class SessionClock(WallClock):
    """The session's wall clock: keypress stamps and step intervals both read it. A resumed session starts at
    ``start`` (where the last run stopped, plus a gap), so the session's times never go backwards."""

    def __init__(self, start: float = 0.0):
        super().__init__()
        self.origin -= start


@dataclass
class Start:
    """Where a run begins: a new session (all zero) or a resumed one."""

    run: int = 0
    episode: int = 0
    steps: int = 0  # steps (and keypress step numbers) already used in the session
    clock: float = 0.0  # session clock at the start
    applied: int = 0  # the last step in steps.csv: what the agent has learned from


def resume_point(folder: SessionFolder, space) -> tuple[Start, list[Step]]:
    """Where the next run of a session starts, and the steps logged so far."""
    rows = read_steps(folder.steps, space)
    feedback = read_feedback_steps(folder.feedback)
    last_time = max([r.t_end for r in rows[-1:]] + [fb.time for fb, _ in feedback[-1:]] + [0.0])
    steps = max([r.step for r in rows[-1:]] + [step for _, step in feedback[-1:]] + [0])
    start = Start(
        run=rows[-1].run + 1 if rows else 1,
        episode=rows[-1].episode + 1 if rows else 0,
        steps=steps,
        clock=last_time + RESUME_GAP,
        applied=rows[-1].step if rows else 0,
    )
    return start, rows
