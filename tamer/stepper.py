"""The per-step learning body, shared by headless training, live play and replay.

One call per episode start and one per finished step, always in this order::

    begin_episode: phase changes (the teacher leaving), encode the observation, choose the first action
    end_step:      record the step's time interval for credit, credit each feedback handed over after it
                   and update Ĥ, encode the next observation, choose the next action, learn the MDP reward,
                   close the episode if it ended

Headless training makes these calls with the env it steps and a simulated teacher's feedback; the live
learner thread makes them as a person's steps end; replay makes them with a session's logged steps and
keypresses. Because all three go through this class, a replay reproduces the live agent exactly and a
headless run's steps and feedback fed through the live path give the identical model (tested).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

import numpy as np

from tamer.callbacks import Callback, CallbackList
from tamer.errors import RunError
from tamer.feedback import Feedback

if TYPE_CHECKING:
    from tamer.session import Session


class Step(NamedTuple):
    """One finished step: what the env did and when (on the run's clock). A line of a session's steps.csv."""

    step: int  # over the whole run (or session), from 1
    episode: int
    run: int  # 0 for headless runs and a session's first play, +1 per --resume
    t_start: float
    t_end: float
    action: int
    reward: float
    terminated: bool
    truncated: bool  # also True when a person reset the episode or quit during it
    obs: Any
    next_obs: Any


class EpisodeTally:
    """Counts of one episode, for the metrics row written when it ends."""

    def __init__(self, episode: int, run: int, ignored: int):
        self.episode, self.run, self.ignored_start = episode, run, ignored
        self.ret, self.length, self.feedback, self.positive, self.negative = 0.0, 0, 0, 0, 0
        self.t_first = self.t_last = 0.0
        self.started = time.perf_counter()

    def add(self, step: Step, feedback: Sequence[Feedback]) -> None:
        if not self.length:
            self.t_first = step.t_start
        self.length += 1
        self.ret += step.reward
        self.t_last = step.t_end
        if feedback:
            self.feedback += len(feedback)
            for fb in feedback:
                self.positive += fb.value > 0
                self.negative += fb.value < 0

    def row(self, ended: str, ignored: int) -> dict:
        """Every column a metrics file may want; ``seconds`` is on the run's clock (virtual headless: the
        simulated person's time), ``steps_per_s`` by the wall clock (how fast the code ran)."""
        elapsed = time.perf_counter() - self.started
        return {
            "episode": self.episode,
            "return": self.ret,
            "length": self.length,
            "feedback": self.feedback,
            "ignored": ignored - self.ignored_start,
            "steps_per_s": self.length / elapsed if elapsed > 0 else 0.0,
            "seconds": round(self.t_last - self.t_first, 3),
            "positive": self.positive,
            "negative": self.negative,
            "ended": ended,
            "run": self.run,
        }


def finite_check(obs) -> Callable[[Any], bool] | None:
    """A cheap test that an observation like ``obs`` holds no NaN or ±inf, chosen once per episode: None
    when there is nothing to check (integers cannot be non-finite; dicts and tuples are not looked into). A
    few floats go through one Python sum, cheaper than a numpy call at that size (numpy confirms a sum that
    overflowed); more, through one numpy call."""
    if type(obs) is not np.ndarray or obs.dtype.kind != "f":
        return None
    if obs.ndim == 1 and obs.size <= 64:
        return lambda o: math.isfinite(sum(o.tolist())) or bool(np.isfinite(o).all())
    return lambda o: bool(np.isfinite(o).all())


def not_finite(what: str, value) -> str:
    flat = np.ravel(value)
    text = ", ".join(f"{v:.6g}" for v in flat[:8].tolist()) + (", ..." if flat.size > 8 else "")
    text = text if np.ndim(value) == 0 else f"[{text}]"
    return f"the env's {what} is not finite ({text}); the run stops before the model learns from it"


class Stepper:
    """The learning body of one session (see the module docstring). ``learn=False`` only acts (evaluation):
    no credit, no updates, no phase changes. ``callbacks`` see every step and episode; ``stop`` turns True
    when one of them returns False, and the driver then stops after the current step."""

    obs_check: Callable[[Any], bool] | None = None  # finite_check of the episode's first observation

    def __init__(self, s: Session, callbacks: Sequence[Callback] = (), learn: bool = True):
        self.s, self.learn = s, learn
        self.callbacks = CallbackList(callbacks)
        self.x: Any = None
        self.tally: EpisodeTally | None = None
        self.stop = False
        self.last_row: dict | None = None  # the metrics row of the last episode that ended
        self.effort_reported = dict(s.effort)  # human effort up to the last metrics row
        self.teaching = False  # a teacher is there this episode: its steps cost human time

    def begin_episode(self, episode: int, obs) -> int:
        """Start ``episode`` from ``obs``; returns the first action."""
        s = self.s
        if self.learn:
            self.callbacks.on_episode_start(s, episode)
        present = getattr(s.source, "present", None)
        self.teaching = self.learn and (present is None or bool(present(episode)))
        self.obs_check = check = finite_check(obs)
        if check is not None and not check(obs):
            raise RunError(f"episode {episode}, at reset: {not_finite('observation', obs)}")
        self.x = s.agent.encode(obs)
        self.tally = EpisodeTally(episode, 0, s.credit.ignored)
        try:
            return s.agent.act(self.x)
        except RunError as e:  # the model's values turned non-finite (tamer.agents.greedy)
            raise RunError(f"episode {episode}, first action: {e}") from None

    def end_step(self, step: Step, feedback: Sequence[Feedback] = (), ended: str | None = None) -> int | None:
        """Learn from a finished step and the feedback handed over after it; returns the next action, or None
        when the episode is over (``ended`` names how, for the metrics: "reset", "quit", ...)."""
        _, _, run, t_start, t_end, action, reward, terminated, truncated, _, next_obs = step
        s = self.s
        agent = s.agent
        check = self.obs_check
        if not math.isfinite(reward) or (check is not None and not check(next_obs)):
            self.refuse(step)
        x = self.x
        if self.learn:
            credit = s.credit
            credit.record(x, action, t_start, t_end)
            for fb in feedback:
                xs, actions, credits = credit.assign(fb.time)
                agent.learn_feedback(xs, actions, credits, fb.value)
        done = terminated or truncated
        x_next = agent.encode(next_obs)
        try:
            action_next = None if done else agent.act(x_next)
        except RunError as e:  # the model's values turned non-finite (tamer.agents.greedy)
            raise RunError(f"{self.where(step)}: {e}") from None
        if self.learn:
            agent.learn_reward(x, action, reward, x_next, action_next, terminated)
        self.x = x_next
        if feedback:
            s.feedback += len(feedback)
        if self.teaching:
            s.effort["human_seconds"] += t_end - t_start
        tally = self.tally
        assert tally is not None, "end_step before begin_episode"
        tally.run = run
        tally.add(step, feedback)
        if done:
            agent.end_episode()
        if self.callbacks.on_step(s, step, feedback) is False:
            self.stop = True
        if done:
            self.finish_episode(ended or ("terminated" if terminated else "truncated"))
        return action_next

    def refuse(self, step: Step) -> NoReturn:
        bad = ("reward", step.reward) if not math.isfinite(step.reward) else ("observation", step.next_obs)
        raise RunError(f"{self.where(step)}: {not_finite(*bad)}")

    def where(self, step: Step) -> str:
        """'episode 3, step 17': the step of its episode (counted from 1) that ``step`` is."""
        return f"episode {step.episode}, step {(self.tally.length if self.tally else 0) + 1}"

    def finish_episode(self, ended: str) -> dict | None:
        """Hand the episode's metrics row to the callbacks and forget the episode: at its end, or when a run
        stops inside it (a stop, a quit between steps, a crash; the agent is then left mid-episode, as a
        resumed session or a replay expects). Returns the row, or None if no step was taken."""
        tally, self.tally = self.tally, None
        if tally is None or not tally.length:
            return None
        row = self.last_row = tally.row(ended, self.s.credit.ignored)
        effort, reported = self.s.effort, self.effort_reported
        row.update({k: round(v - reported.get(k, 0.0), 6) for k, v in effort.items()})
        self.effort_reported = dict(effort)
        if self.callbacks.on_episode_end(self.s, row) is False:
            self.stop = True
        return row
