"""Headless training: a session built from a config, driven episode by episode through the learning body.

``run_episode`` is the loop, top to bottom: act, step the env, let the teacher see the step and hand over
the feedback whose time has come, then the learning body (``tamer.stepper.Stepper``: credit each feedback
to recent steps, update Ĥ, choose the next action, update Q). Files, progress and stops are callbacks.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from tamer.callbacks import (
    METRICS,
    Callback,
    CallbackList,
    Checkpoint,
    FeedbackCsv,
    MetricsCsv,
    ProgressBar,
    TeacherPhase,
    user_callbacks,
)
from tamer.config import Config
from tamer.errors import ConfigError
from tamer.io import refuse_to_replace
from tamer.session import Session, build, load_run
from tamer.stepper import Step, Stepper

__all__ = ["METRICS", "evaluate", "prepare_out", "run_episode", "train"]

log = logging.getLogger(__name__)
new_step = tuple.__new__


def run_episode(s: Session, episode: int, stepper: Stepper | None = None) -> dict:
    """One episode (cut short if a callback stops the run); returns its metrics row. Without ``stepper``,
    the learning body with the teacher's phases and no other callback."""
    stepper = stepper or Stepper(s, [TeacherPhase()])
    env, source, clock = s.env, s.source, s.clock
    obs, _ = env.reset(seed=s.cfg.seed if episode == 0 else None)
    action: int | None = stepper.begin_episode(episode, obs)
    while action is not None:
        t_start = clock.now()
        obs_next, reward, terminated, truncated, _ = env.step(action)
        clock.tick()
        t_end = clock.now()
        s.steps += 1
        feedback = []
        if stepper.learn:
            source.observe(obs, action, t_start, t_end, episode)
            feedback = source.poll(t_end)
        r = float(reward)
        fields = (s.steps, episode, 0, t_start, t_end, action, r, terminated, truncated, obs, obs_next)
        step = new_step(Step, fields)  # Step(*fields) without the Python-level __new__ of a NamedTuple
        action = stepper.end_step(step, feedback)
        if stepper.stop and action is not None:
            stepper.finish_episode("stopped")
            break
        obs = obs_next
    assert stepper.last_row is not None
    return stepper.last_row


def prepare_out(out: Path, overwrite: bool) -> None:
    """Refuse to mix two runs in one folder unless asked to replace the old one; a path that is a file or
    cannot be written (read-only, a name too long, ...) is one ConfigError line, and nothing is created."""
    try:
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {out} is a file, not a folder; choose another --out")
        if out.exists() and any(out.iterdir()):
            if not overwrite:
                raise ConfigError(f"{out} already holds files; choose another --out or pass --overwrite")
            refuse_to_replace(out)
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
        if not os.access(out, os.W_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as e:
        raise ConfigError(f"cannot write --out {out}: {e.strerror or e}") from None


def run_callbacks(
    cfg: Config, out: Path | None, progress: bool, extra: Sequence[Callback] = ()
) -> list[Callback]:
    """A headless run's callbacks, in order: the teacher's phases (part of the learning body), then with
    ``out`` the metrics row, the feedback log and the checkpoint (so a checkpoint never runs ahead of the
    metrics), the progress bar, the config's ``--callback`` plug-ins and ``extra``."""
    callbacks: list[Callback] = [TeacherPhase()]
    if cfg.agent == "bc":
        from tamer.bc import CloneDemonstrations

        callbacks.append(CloneDemonstrations())
    if cfg.init:  # PPO from another run's policy: that run's human effort is part of this one's
        from tamer.pipeline_parts import InheritedEffort

        callbacks.append(InheritedEffort())
    if out is not None:
        callbacks += [MetricsCsv(out / "metrics.csv"), FeedbackCsv(out / "feedback.csv")]
        callbacks.append(Checkpoint(out / "model.npz", every_episodes=1, at_end=False))
    callbacks.append(ProgressBar(cfg.episodes, f"{cfg.agent} {cfg.env} seed {cfg.seed}", enabled=progress))
    callbacks += user_callbacks(cfg.callback, cfg=cfg, out=out)
    return [*callbacks, *extra]


def train(
    cfg: Config,
    out: Path | None = None,
    overwrite: bool = False,
    progress: bool = True,
    callbacks: Sequence[Callback] = (),
) -> list[dict]:
    """Train for cfg.episodes (or until a callback stops the run); returns the metrics rows. With ``out``:
    config.json first, then per episode a flushed metrics.csv row, every feedback in feedback.csv as it is
    given, and model.npz, so a killed run keeps what it did."""
    s = build(cfg)
    if cfg.agent == "tamer" and cfg.teacher == "none":
        log.warning("--agent tamer with --teacher none cannot learn: Ĥ gets no feedback and stays untrained")
    try:
        hooks = CallbackList(run_callbacks(cfg, out, progress, callbacks))
        if out is not None:
            prepare_out(out, overwrite)
            try:
                cfg.save(out / "config.json")
            except OSError as e:
                raise ConfigError(f"cannot write {out / 'config.json'}: {e.strerror or e}") from None
    except BaseException:
        s.env.close()
        raise
    stepper = Stepper(s, hooks.callbacks)
    rows: list[dict] = []
    try:
        hooks.on_run_start(s)
        if cfg.agent == "rankings":  # rounds of rankings and r̂, PPO on r̂ between them (tamer.pipeline)
            from tamer.pipeline import train_rankings

            rows = train_rankings(s, hooks, out)
        elif cfg.agent == "rl" and cfg.rl == "ppo":  # PPO alone: several envs stepped together
            from tamer.ppo_runs import run_vectorised

            rows = run_vectorised(s, hooks)
        else:
            for episode in range(cfg.episodes):
                rows.append(run_episode(s, episode, stepper))
                if stepper.stop:
                    break
    finally:
        try:
            hooks.on_run_end(s)
        finally:
            s.env.close()
    return rows


def evaluate(run_dir: Path, episodes: int = 10, seed: int | None = None) -> list[float]:
    """Greedy returns of a saved run's model, learning switched off."""
    overrides = {"teacher": "none", "epsilon": 0.0, "rl_epsilon": 0.0, "rl_epsilon_min": 0.0}
    overrides.update(init="", reference="", kl_coef=0.0)  # PPO: the saved model holds the weights
    if seed is not None:
        overrides["seed"] = seed
    s = load_run(run_dir, **overrides)
    stepper = Stepper(s, learn=False)
    try:
        return [run_episode(s, episode, stepper)["return"] for episode in range(episodes)]
    finally:
        s.env.close()
