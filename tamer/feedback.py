"""Where human reward comes from: a simulated teacher, a replayed recording, or (see ``tamer.live``) a person.

Every source answers two calls: ``observe`` is shown each step as it happens (a simulated teacher judges
it; a person or a recording ignores it) and ``poll(now)`` hands over the feedback whose time has come.
A feedback is a time on the run's clock and a value (+1 good, -1 bad for keys and simulated teachers).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np

from tamer.credit import DelayDensity, UniformDelay
from tamer.errors import ConfigError
from tamer.io import AppendLog


class Feedback(NamedTuple):
    time: float
    value: float


class FeedbackSource(Protocol):
    """``observe`` sees each step as it happens; ``poll(now)`` hands over the feedback whose time has come.
    A source may also say whether its person is there in an episode (``present(episode) -> bool``; without
    it, they are): the steps of such episodes count as human time in the metrics."""

    def observe(self, obs, action: int, t_start: float, t_end: float, episode: int) -> None: ...

    def poll(self, now: float) -> list[Feedback]: ...


class NoTeacher:
    """The source for plain RL runs: nobody gives feedback."""

    def present(self, episode: int) -> bool:
        return False

    def observe(self, obs, action: int, t_start: float, t_end: float, episode: int) -> None:
        pass

    def poll(self, now: float) -> list[Feedback]:
        return []


class SimulatedTeacher:
    """A teacher who knows a good policy (an oracle) and judges the agent's steps the way people do.

    Each step is judged with probability ``prob`` (decaying with ``fatigue``: halved every ``fatigue``
    seconds of the run's clock; 0 = tireless): +1 if the oracle approves the action, -1 if not, flipped with
    probability ``error_rate``. ``mode`` "positive"/"negative" keeps only that sign (teachers who only praise
    or only punish). The feedback arrives after a delay drawn from ``delay``. ``leave_after`` > 0 stops all
    feedback from that episode on (counting from 0), as when a teacher walks away.
    """

    def __init__(
        self,
        oracle: Callable[[object], np.ndarray],
        delay: DelayDensity,
        rng: np.random.Generator,
        prob: float = 0.5,
        error_rate: float = 0.05,
        mode: str = "both",
        fatigue: float = 0.0,
        leave_after: int = 0,
    ):
        # the ranges of prob, error_rate, mode, fatigue and leave_after are the config's (tamer.config.Config)
        self.oracle, self.delay, self.rng = oracle, delay, rng
        self.prob, self.error_rate, self.mode = prob, error_rate, mode
        self.fatigue, self.leave_after = fatigue, leave_after
        self.pending: list[tuple[float, int, float]] = []  # heap of (time, sequence, value)
        self.given = 0
        # With a uniform delay every draw is one uniform double from ``rng``, and ``rng.random(n)`` gives the
        # very doubles that n calls of ``rng.random()`` would, in the same order: they are taken in blocks,
        # a fraction of the cost per draw. (A Gamma delay draws from the same stream its own way: one at a
        # time then.) The teacher owns ``rng``: nothing else may draw from it.
        self._blocks = type(delay) is UniformDelay
        self._unit = self._buffered if self._blocks else rng.random
        self._block: list[float] = []

    def present(self, episode: int) -> bool:
        return not (self.leave_after and episode >= self.leave_after)

    def observe(self, obs, action: int, t_start: float, t_end: float, episode: int) -> None:
        if self.leave_after and episode >= self.leave_after:
            return
        prob = self.prob * math.exp2(-t_start / self.fatigue) if self.fatigue else self.prob
        unit = self._unit
        if unit() >= prob:
            return
        good = bool(self.oracle(obs)[action])
        if unit() < self.error_rate:
            good = not good
        if (self.mode == "positive" and not good) or (self.mode == "negative" and good):
            return
        self.given += 1
        # The person reacts to a moment while the step is on screen, uniform over its interval: the same
        # generative model credit assignment inverts. (Timing from t_start would put half of every
        # feedback's credit on the step before.)
        seen = t_start + unit() * (t_end - t_start)
        delay = self.delay
        if self._blocks:
            late = delay.from_unit(unit())  # type: ignore[attr-defined]  # a UniformDelay
        else:
            late = delay.sample(self.rng)
        heapq.heappush(self.pending, (seen + late, self.given, 1.0 if good else -1.0))

    def _buffered(self) -> float:
        """The next ``rng.random()``, from a block drawn ahead."""
        block = self._block
        if not block:
            block.extend(reversed(self.rng.random(256).tolist()))  # pop() takes them in the order drawn
        return block.pop()

    def poll(self, now: float) -> list[Feedback]:
        pending, out = self.pending, []
        while pending and pending[0][0] <= now:
            t, _, value = heapq.heappop(pending)
            out.append(Feedback(t, value))
        return out


class FeedbackReplay:
    """Replays a recorded feedback log with its original timing."""

    def __init__(self, events: list[Feedback]):
        self.events, self.next = events, 0

    def observe(self, obs, action: int, t_start: float, t_end: float, episode: int) -> None:
        pass

    def poll(self, now: float) -> list[Feedback]:
        start, events = self.next, self.events
        end = start
        while end < len(events) and events[end].time <= now:
            end += 1
        self.next = end
        return events[start:end]


LOG_HEADER = "time,step,episode,value"


class FeedbackLog(AppendLog):
    """Append-only CSV of feedback as it is handed to the agent, one flushed line per feedback, so a crash
    loses nothing that was logged. Times are written with repr() so a replay reads back the same floats."""

    def __init__(self, path: Path, append: bool = False):
        super().__init__(path, LOG_HEADER, append)

    def write(self, feedback: Feedback, step: int, episode: int) -> None:
        self.write_line(f"{feedback.time!r},{step},{episode},{feedback.value!r}")


def read_feedback_log(path: str | Path, drop_torn: bool = False) -> list[Feedback]:
    """Read a feedback log, refusing (with the line number) anything unreadable or cut short; with
    ``drop_torn`` a torn last line (no end of line: its writer died while writing it) is left out instead, as
    a live session's log is read (``AppendLog`` cuts it before appending)."""
    return [fb for fb, _, _ in read_feedback_rows(path, drop_torn)]


def read_feedback_rows(path: str | Path, drop_torn: bool = False) -> list[tuple[Feedback, int, int]]:
    """``read_feedback_log`` with each line's step and episode: (feedback, step, episode)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read feedback log {path}: {e}") from None
    if drop_torn:
        text = text[: text.rfind("\n") + 1]  # without the torn piece after the last newline
        if not text:  # empty, or torn in its header: nothing was logged
            return []
    lines = text.split("\n")
    if lines[0].strip() != LOG_HEADER:
        raise ConfigError(f"{path}:1: not a feedback log (expected header {LOG_HEADER!r})")
    if lines[-1] != "":
        raise ConfigError(f"{path}:{len(lines)}: truncated line {lines[-1]!r} (no end of line)")
    rows, last = [], -math.inf
    for number, line in enumerate(lines[1:-1], start=2):
        fields = line.split(",")
        try:
            if len(fields) != 4:
                raise ValueError
            t, step, episode, value = float(fields[0]), int(fields[1]), int(fields[2]), float(fields[3])
        except ValueError:
            raise ConfigError(f"{path}:{number}: expected time,step,episode,value, got {line!r}") from None
        if not (math.isfinite(t) and math.isfinite(value)) or t < last:
            raise ConfigError(f"{path}:{number}: time {t} is not finite or goes backwards")
        last = t
        rows.append((Feedback(t, value), step, episode))
    return rows
