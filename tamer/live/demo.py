"""Demonstration sessions (``tamer play --demonstrate``): the person drives the agent with the action keys
(``tamer.live.keys.ActionKeys``) instead of rewarding it, and every step is logged; ``tamer replay`` then
trains a behaviour-cloning policy (``tamer.bc.LinearPolicy``) from the logged steps.

The session folder is a play session's: ``live.json`` says ``"demonstrate": true`` (fixed for the session's
life, so ``--resume`` continues demonstrating and ``replay`` knows what to do), ``steps.csv`` holds every
step (t_start, t_end, the person's action, obs, next_obs) as it happens, ``metrics.csv`` a row per episode,
``feedback.csv`` only its header (there are no feedback keys), and there is no model.npz: nothing is learned
live. Without learning there is no learner thread either: the ``DemoRecorder`` that takes the learner's
place writes each step's line (flushed) inline on the frame loop, which costs a write and a flush.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tamer.callbacks import CallbackList, MetricsCsv
from tamer.config import Config
from tamer.feedback import Feedback
from tamer.live.session import LIVE_METRICS, SessionFolder, StepsCsv
from tamer.live.worker import Thought
from tamer.session import EFFORT, Session, build
from tamer.stepper import EpisodeTally, Step

PERSON = Thought(-1, None, None, None, False)  # "go on": the person chooses the next action, not the learner


class DemoRecorder:
    """The learner's place (``LiveLearner``'s interface) in a demonstration session: it learns nothing and
    chooses nothing; it writes steps.csv (a line per step, flushed) and metrics.csv (a row per episode) and
    answers ``PERSON`` (go on) or an action of None (the episode is over)."""

    def __init__(self, s: Session, folder: SessionFolder, run: int = 0, append: bool = False):
        self.s, self.run = s, run
        self.steps_csv = StepsCsv(folder.steps, append)
        self.metrics_csv = MetricsCsv(folder.metrics, LIVE_METRICS, append)
        self.callbacks = CallbackList([self.steps_csv, self.metrics_csv])
        self.tally: EpisodeTally | None = None
        self.seconds = 0.0  # the person's time in this episode: its steps' intervals

    def open(self) -> None:
        self.callbacks.on_run_start(self.s)

    def begin(self, episode: int, obs) -> Thought:
        self.callbacks.on_episode_start(self.s, episode)
        self.tally, self.seconds = EpisodeTally(episode, self.run, 0), 0.0
        return PERSON

    def end(self, step: Step, feedback: Sequence[Feedback], ended: str | None = None) -> Thought:
        assert self.tally is not None, "end before begin"
        self.tally.run = step.run
        self.tally.add(step, feedback)
        self.seconds += step.t_end - step.t_start
        self.callbacks.on_step(self.s, step, feedback)
        if not (step.terminated or step.truncated):
            return PERSON
        self.finish_episode(ended or ("terminated" if step.terminated else "truncated"))
        return Thought(None, None, None, None, False)

    def finish_episode(self, ended: str) -> None:
        tally, self.tally = self.tally, None
        if tally is not None and tally.length:
            row = tally.row(ended, 0)  # every step was demonstrated, and took the person its interval
            row.update(dict.fromkeys(EFFORT, 0))  # every effort column; a demonstration's are these two:
            row.update(demo_steps=tally.length, human_seconds=round(self.seconds, 6))
            self.callbacks.on_episode_end(self.s, row)

    def save(self) -> None:
        """The save key and the checkpoint timer: the logs (flushed line by line) onto the disk now."""
        for log in (self.steps_csv.log, self.metrics_csv.log):
            if log is not None and not log.file.closed:
                os.fsync(log.file.fileno())

    def close(self, ended: str) -> None:
        """The episode the run stopped in gets its metrics row; the logs are closed (and synced)."""
        try:
            self.finish_episode(ended)
        finally:
            self.callbacks.on_run_end(self.s)


# --- replay: behaviour cloning from a demonstration session ----------------------------------------------


@dataclass
class DemoReport:
    """What ``replay_demonstrations`` trained, and how well the policy reproduces the person's actions."""

    steps: int
    episodes: int
    runs: int
    seconds: float  # the person's time, summed over the steps
    counts: dict[str, int]  # demonstrated steps per action
    accuracy: float  # fraction of steps where the greedy policy takes the demonstrated action
    losses: list[float]  # mean cross-entropy per epoch
    policy: object = field(repr=False)  # tamer.bc.LinearPolicy

    def summary(self, session: str | Path) -> str:
        counts = ", ".join(f"{name} {n}" for name, n in self.counts.items())
        return (
            f"demonstration session {session}: {self.steps} steps in {self.episodes} episodes, {self.runs} "
            f"run(s), {self.seconds:.1f} s of demonstrating ({counts})\n"
            f"  behaviour cloning (a linear policy over the run's features, {len(self.losses)} epochs, "
            f"seeded by the config): loss {self.losses[0]:.3f} -> {self.losses[-1]:.3f}; the policy takes"
            f" the demonstrated action at {self.accuracy:.1%} of the steps"
        )

    def save_policy(self, path: Path) -> None:
        from tamer.io import write_atomic

        state = self.policy.state_dict()  # type: ignore[attr-defined]
        write_atomic(Path(path), lambda tmp: np.savez(tmp, **state))


def replay_demonstrations(session_dir: Path, cfg: Config | None = None) -> DemoReport:
    """Train the behaviour-cloning policy of a demonstration session from its steps.csv: the policy
    ``tamer train --agent bc --demos SESSION`` fits (``--model`` linear over the run's features, mlp or
    cnn), with the same shuffling seed, so the same session gives the same weights every time."""
    from tamer.bc import fit_rng
    from tamer.demos import load_demonstrations

    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    from tamer.hud import action_names  # imports pygame (no display needed)

    folder = SessionFolder.existing(Path(session_dir))
    cfg = dataclasses.replace(cfg or Config.load(folder.config), agent="bc", demos=str(folder.path))
    s = build(cfg)
    try:
        demos = load_demonstrations(folder.path, s.env.observation_space)
        n = int(s.env.action_space.n)  # type: ignore[attr-defined]
        names = action_names(cfg.env, s.env, n)
    finally:
        s.env.close()
    policy = s.agent.h
    losses = policy.fit(demos, fit_rng(cfg))
    counts = np.bincount(demos.actions, minlength=n)
    return DemoReport(
        len(demos),
        demos.n_episodes,
        len(np.unique(demos.episodes // 1_000_000)),  # load_demonstrations numbers episodes run * 1e6 + ep
        demos.seconds,
        {names[a]: int(counts[a]) for a in range(n) if counts[a]},
        policy.accuracy(demos),
        losses,
        policy,
    )
