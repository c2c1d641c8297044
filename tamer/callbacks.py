"""Callbacks: what happens around the learning body without being part of it (after Stable-Baselines3).

The loop only calls the hooks; logging, checkpoints, progress, the teacher's phases and early stops live
here, and a user adds behaviour by passing callbacks (``train(cfg, out, callbacks=[...])`` in Python,
``--callback package.module:Class`` or ``--callback 'package.module:Class(threshold=-130)'`` on the command
line). Every hook receives the run's ``Session`` (``s.cfg``, ``s.env``, ``s.agent``, ``s.source``,
``s.steps``, ``s.feedback``, ``s.effort``); ``on_step`` and ``on_episode_end`` returning False stop the run
after the current step.

Hooks, in the order a run calls them::

    on_run_start(s)                      once, before the first episode
    on_episode_start(s, episode)         before the episode's first action
    on_step(s, step, feedback)           after the agent learned from a step (a ``tamer.stepper.Step``) and
                                         the feedback handed over after it
    on_episode_end(s, row)               with the episode's metrics row (return, length, feedback, ...)
    on_run_end(s)                        once, however the run ends (also on an exception)
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tamer.io import AppendLog, file_sha256, save_agent, write_json_atomic
from tamer.progress import Progress

if TYPE_CHECKING:
    from tamer.feedback import Feedback, FeedbackLog
    from tamer.session import Session
    from tamer.stepper import Step

METRICS = (
    "episode", "return", "length", "feedback", "ignored", "steps_per_s", "demo_steps", "human_seconds",
    "rankings", "pairs",
)  # fmt: skip
"""The columns of a headless run's metrics.csv: ``feedback`` counts keypresses handed to the agent,
``demo_steps`` demonstrated steps, ``human_seconds`` the person's time, ``rankings`` queries ranked and
``pairs`` the pairs they order (``tamer.session.EFFORT``)."""
HOOKS = ("on_run_start", "on_episode_start", "on_step", "on_episode_end", "on_run_end")


class Callback:
    """Every hook does nothing; override the ones you need."""

    def on_run_start(self, s: Session) -> None:
        pass

    def on_episode_start(self, s: Session, episode: int) -> None:
        pass

    def on_step(self, s: Session, step: Step, feedback: Sequence[Feedback]) -> bool | None:
        return None

    def on_episode_end(self, s: Session, row: dict) -> bool | None:
        return None

    def on_run_end(self, s: Session) -> None:
        pass


class CallbackList(Callback):
    """Calls each callback in order; a stop (False) from any of them stops the run, the rest still run."""

    def __init__(self, callbacks: Iterable[Callback] = ()):
        self.callbacks = list(callbacks)

    def on_run_start(self, s: Session) -> None:
        for c in self.callbacks:
            c.on_run_start(s)

    def on_episode_start(self, s: Session, episode: int) -> None:
        for c in self.callbacks:
            c.on_episode_start(s, episode)

    def on_step(self, s: Session, step: Step, feedback: Sequence[Feedback]) -> bool | None:
        stop = None
        for c in self.callbacks:  # every step: a plain loop, no list
            if c.on_step(s, step, feedback) is False:
                stop = False
        return stop

    def on_episode_end(self, s: Session, row: dict) -> bool | None:
        return False if [c for c in self.callbacks if c.on_episode_end(s, row) is False] else None

    def on_run_end(self, s: Session) -> None:
        errors = []
        for c in self.callbacks:  # every one gets to close its files, even if another fails
            try:
                c.on_run_end(s)
            except Exception as e:
                errors.append(e)
        if errors:
            raise errors[0]


class TeacherPhase(Callback):
    """The teacher's phases: from episode ``leaves`` on there is no teacher (``--leave-after``, or the end of
    sequential mode's ``--h-episodes``); the agent is told at that episode's start (sequential mode then
    freezes Ĥ and switches to the configured blend; ``q_init`` copies Ĥ into Q). Part of the learning body:
    live play and replay run it too, so they reproduce headless phases exactly."""

    def on_episode_start(self, s: Session, episode: int) -> None:
        from tamer.session import teacher_leaves  # noqa: PLC0415 (session builds this callback)

        if episode == 0 or episode != teacher_leaves(s.cfg) or s.agent.rl is None or s.agent.h is None:
            return
        from tamer.blends import make_blend

        s.agent.teacher_left(make_blend(s.cfg.blend) if s.cfg.mode == "sequential" else None)


class MetricsCsv(Callback):
    """One flushed CSV row per episode: ``columns`` of the stepper's metrics row."""

    def __init__(self, path: Path, columns: Sequence[str] = METRICS, append: bool = False):
        self.path, self.columns, self.append = Path(path), tuple(columns), append
        self.log: AppendLog | None = None

    def on_run_start(self, s: Session) -> None:
        self.log = AppendLog(self.path, ",".join(self.columns), self.append)

    def on_episode_end(self, s: Session, row: dict) -> None:
        assert self.log is not None
        self.log.write_line(",".join(str(row[k]) for k in self.columns))

    def on_run_end(self, s: Session) -> None:
        if self.log is not None:
            self.log.close()


class FeedbackCsv(Callback):
    """Every feedback as it was handed to the agent (time,step,episode,value), one flushed line each: the log
    ``--teacher replay`` replays."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.log: FeedbackLog | None = None

    def on_run_start(self, s: Session) -> None:
        from tamer.feedback import FeedbackLog

        self.log = FeedbackLog(self.path)

    def on_step(self, s: Session, step: Step, feedback: Sequence[Feedback]) -> None:
        for fb in feedback:
            assert self.log is not None
            self.log.write(fb, step.step, step.episode)

    def on_run_end(self, s: Session) -> None:
        if self.log is not None:
            self.log.close()


class Checkpoint(Callback):
    """Saves the agent (one atomic ``model.npz``) every ``every_episodes`` episodes and/or every
    ``every_seconds`` seconds of wall time (checked after each step), and at the run's end. With
    ``record``, also writes ``{"step": last step included, "run": ..., "sha256": the model file's}`` there,
    atomically, after the model: how a live session knows whether its model covers its whole log, and that
    the model.npz it finds is the one the record describes."""

    def __init__(
        self,
        path: Path,
        every_episodes: int = 1,
        every_seconds: float = 0.0,
        record: Path | None = None,
        at_end: bool = True,
    ):
        self.path, self.record = Path(path), record
        self.every_episodes, self.every_seconds, self.at_end = every_episodes, every_seconds, at_end
        self.episodes, self.last_step, self.run = 0, 0, 0
        self.due = time.monotonic() + every_seconds

    def save(self, s: Session) -> None:
        save_agent(s.agent, self.path)
        if self.record is not None:
            write_json_atomic(self.record, {**self.record_data(), "sha256": file_sha256(self.path)})
        self.due = time.monotonic() + self.every_seconds

    def record_data(self) -> dict:
        """What the record says the model covers (besides the model file's ``sha256``, which a reader checks
        so that a model.npz the record does not describe is never taken for it)."""
        return {"step": self.last_step, "run": self.run}

    def on_step(self, s: Session, step: Step, feedback: Sequence[Feedback]) -> None:
        self.last_step, self.run = step.step, step.run
        if self.every_seconds and time.monotonic() >= self.due:
            self.save(s)

    def on_episode_end(self, s: Session, row: dict) -> None:
        self.episodes += 1
        if self.every_episodes and self.episodes % self.every_episodes == 0:
            self.save(s)

    def on_run_end(self, s: Session) -> None:
        if self.at_end:
            self.save(s)


class ProgressBar(Callback):
    """The progress bar on stderr, one tick per episode."""

    def __init__(self, total: int, label: str, enabled: bool = True):
        self.bar = Progress(total, label, enabled=enabled)

    def on_episode_end(self, s: Session, row: dict) -> None:
        self.bar.update(
            f"return {row['return']:.0f}  feedback {row['feedback']}  {row['steps_per_s']:.0f} steps/s"
        )

    def on_run_end(self, s: Session) -> None:
        self.bar.close()


class StopAtReturn(Callback):
    """Stops the run once the mean return of the last ``window`` episodes reaches ``threshold``
    (``--callback 'tamer.callbacks:StopAtReturn(threshold=-130, window=10)'``)."""

    def __init__(self, threshold: float, window: int = 10):
        if not window >= 1:
            from tamer.errors import ConfigError

            raise ConfigError(f"StopAtReturn: window must be >= 1, got {window}")
        self.threshold, self.window = float(threshold), int(window)
        self.returns: deque[float] = deque(maxlen=self.window)
        self.reached_at: int | None = None

    def on_episode_end(self, s: Session, row: dict) -> bool | None:
        self.returns.append(float(row["return"]))
        if len(self.returns) == self.window and sum(self.returns) / self.window >= self.threshold:
            self.reached_at = int(row["episode"])
            return False
        return None


def user_callbacks(specs: str, **context: Any) -> list[Callback]:
    """The callbacks a config's ``callback`` field names (comma-separated ``package.module:Class`` specs,
    each optionally with keyword arguments in parentheses)."""
    from tamer.plugins import construct, split_specs

    out = []
    for spec in split_specs(specs):
        cb = construct(spec, "callback", **context)
        if not any(callable(getattr(cb, h, None)) for h in HOOKS):
            from tamer.errors import ConfigError

            raise ConfigError(f"callback {spec!r} has none of the hooks {', '.join(HOOKS)}")
        out.append(cb if isinstance(cb, Callback) else _Adapter(cb))
    return out


class _Adapter(Callback):
    """A duck-typed callback (any object with some of the hooks) behind the full interface."""

    def __init__(self, inner: Any):
        for name in HOOKS:
            hook = getattr(inner, name, None)
            if callable(hook):
                setattr(self, name, hook)
