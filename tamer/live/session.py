"""The session folder of ``tamer play`` and its formats (the layout is in ``tamer.live``'s docstring): where
each file is, steps.csv written (a callback of the learner) and read back, the feedback log with its step
numbers, the session clock, and where a resumed session starts."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tamer.callbacks import METRICS, Callback
from tamer.credit import WallClock
from tamer.errors import ConfigError
from tamer.feedback import Feedback, read_feedback_log
from tamer.io import AppendLog
from tamer.live.keys import LiveConfig
from tamer.session import Session
from tamer.stepper import Step

STEPS_HEADER = "step,episode,run,t_start,t_end,action,reward,terminated,truncated,obs,next_obs"
LIVE_METRICS = (*METRICS, "seconds", "positive", "negative", "ended", "run")
MAX_LOGGED_OBS = 4096  # observations with more values (images) are not written to steps.csv
RESUME_GAP = 1.0  # seconds between the end of one run and the start of the next on the session clock


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

    def checkpoint_step(self) -> int | None:
        """The last step model.npz includes, or None if there is no model."""
        if not (self.model.is_file() and self.checkpoint.is_file()):
            return None
        try:
            return int(json.loads(self.checkpoint.read_text(encoding="utf-8"))["step"])
        except (OSError, ValueError, KeyError, TypeError):
            return None


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
    is dropped: that step's learner job had not finished either."""
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from None
    if lines[0] != STEPS_HEADER:
        raise ConfigError(f"{path}:1: not a steps log (expected header {STEPS_HEADER!r})")
    rows = []
    for number, line in enumerate(lines[1:-1], start=2):
        f = line.split(",")
        try:
            if len(f) != 11:
                raise ValueError
            values = [convert(v) for convert, v in zip(STEP_COLUMNS, f[:9], strict=True)]
            rows.append(Step._make([*values, parse_obs(f[9], space), parse_obs(f[10], space)]))
        except ValueError:
            raise ConfigError(f"{path}:{number}: expected {STEPS_HEADER}, got {line[:200]!r}") from None
    return rows


def read_feedback_steps(path: Path) -> list[tuple[Feedback, int]]:
    """The feedback log with each keypress's ``step`` (after which step it was handed over)."""
    events = read_feedback_log(path)  # checks the format and the order of times
    lines = path.read_text(encoding="utf-8").split("\n")[1:-1]
    return [(fb, int(line.split(",")[1])) for fb, line in zip(events, lines, strict=True)]


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
