"""The learner of a live session: the learning body (``tamer.stepper.Stepper``) with the session folder's
callbacks (``LiveLearner``), and the one background thread its jobs run on, in order (``Learner``).

Only the learner touches the agent while a session runs; the frame loop hands it finished steps and reads
back ``Thought``s (the next action and what the HUD shows about the state).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

from tamer.callbacks import Checkpoint, MetricsCsv, TeacherPhase
from tamer.feedback import Feedback
from tamer.live.session import LIVE_METRICS, SessionFolder, StepsCsv
from tamer.session import Session
from tamer.stepper import Step, Stepper

STATS = 1 << 14  # frames (and learner jobs) whose timings are kept, in a ring


class Thought(NamedTuple):
    """The learner's answer to the frame loop: the next action and what the HUD shows about the state."""

    action: int | None  # None: the episode is over
    h: np.ndarray | None
    q: np.ndarray | None
    beta: float | None
    frozen: bool


class SessionCheckpoint(Checkpoint):
    """model.npz with checkpoint.json saying what it holds: the last step, the run, its sha256, and ``late``:
    how many keypresses logged after that step (a crashed run's open step, handed over at a resume) it holds
    already, so a resume that ends before its first step does not make the next one teach them twice."""

    late = 0

    def on_step(self, s: Session, step: Step, feedback: Sequence[Feedback]) -> None:
        self.late = 0  # the late keys are now before the last step
        super().on_step(s, step, feedback)

    def record_data(self) -> dict:
        return {**super().record_data(), "late": self.late}


class LiveLearner:
    """What the learner does in a live session: the ``Stepper`` (the learning body of headless training and
    replay) with callbacks, in this order: the teacher's phases (part of the learning body), steps.csv,
    metrics.csv, and the checkpoint (model.npz at each episode's end, with checkpoint.json naming the last
    step it includes), so the files never run ahead of the model or behind it."""

    def __init__(
        self,
        s: Session,
        folder: SessionFolder,
        run: int = 0,
        applied: int = 0,
        append: bool = False,
        late: int = 0,
    ):
        """``run``: the session's run (0, +1 per resume); ``applied``: the last step the agent has learned
        from already (a resumed session's); ``append``: add to the folder's logs; ``late``: keypresses logged
        after ``applied`` that the agent holds already (``tamer.live.session.learn_late``)."""
        self.s = s
        self.checkpoint = SessionCheckpoint(
            folder.model, every_episodes=1, record=folder.checkpoint, at_end=False
        )
        self.checkpoint.last_step, self.checkpoint.run, self.checkpoint.late = applied, run, late
        self.stepper = Stepper(
            s,
            [
                TeacherPhase(),
                StepsCsv(folder.steps, append),
                MetricsCsv(folder.metrics, LIVE_METRICS, append),
                self.checkpoint,
            ],
        )

    def open(self) -> None:
        """Open the logs (before the first job)."""
        self.stepper.callbacks.on_run_start(self.s)

    def begin(self, episode: int, obs) -> Thought:
        return self.thought(self.stepper.begin_episode(episode, obs))

    def end(self, step: Step, feedback: Sequence[Feedback], ended: str | None = None) -> Thought:
        """Learn from a finished step and the keys handed over after it (``ended``: how a cut episode ended,
        "reset" or "quit"); at an episode's end its metrics row and the model are written."""
        return self.thought(self.stepper.end_step(step, feedback, ended))

    def save(self) -> None:
        """model.npz and checkpoint.json now (the checkpoint timer, the save key)."""
        self.checkpoint.save(self.s)

    def close(self, ended: str) -> None:
        """The run is over: the episode it stopped in gets its metrics row (``ended``: "quit", "error"), the
        logs are closed and the model saved."""
        saved = False
        try:
            saved = self.stepper.finish_episode(ended) is not None  # the episode's end saved the model
        finally:
            try:
                self.stepper.callbacks.on_run_end(self.s)
            finally:
                if not saved:
                    self.save()

    def thought(self, action: int | None) -> Thought:
        agent, x = self.s.agent, self.stepper.x
        h = agent.h_values(x) if agent.h is not None else None
        q = agent.q_values(x) if agent.rl is not None else None
        return Thought(action, h, q, agent.beta_at(x), agent.h_frozen)


class Learner:
    """Runs jobs one at a time in submission order: on one background thread, or inline. One worker means the
    order of updates is the order of submission, which is the order replay uses."""

    def __init__(self, threaded: bool):
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="tamer-learner") if threaded else None
        self.seconds = np.zeros(STATS)  # duration of each job, a ring
        self.jobs = 0

    def submit(self, fn: Callable, *args) -> Future:
        if self.pool is not None:
            return self.pool.submit(self.timed, fn, *args)
        future: Future = Future()
        try:
            future.set_result(self.timed(fn, *args))
        except Exception as e:  # raised in the frame loop when it collects the result, as with the thread
            future.set_exception(e)
        return future

    def timed(self, fn: Callable, *args):
        started = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.seconds[self.jobs % STATS] = time.perf_counter() - started
            self.jobs += 1

    def close(self) -> None:
        """Wait for every job already submitted."""
        if self.pool is not None:
            self.pool.shutdown(wait=True)

    def job_seconds(self) -> np.ndarray:
        return self.seconds[: min(self.jobs, STATS)].copy()
