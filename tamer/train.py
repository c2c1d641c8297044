"""Headless training: build the parts a config names, then run the per-step loop.

The loop (``run_episode``) is the whole algorithm in one place: observe, act, step, record the step's time
interval, hand over the feedback whose time has come, credit it to recent steps, update Ĥ, update Q.
"""

from __future__ import annotations

import csv
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np

from tamer.agents import Agent, ScaleNormalizer
from tamer.blends import Tamer, make_blend
from tamer.config import Config
from tamer.credit import CreditAssigner, VirtualClock, make_delay
from tamer.errors import ConfigError
from tamer.features import FeatureMap, make_features
from tamer.feedback import FeedbackLog, FeedbackReplay, NoTeacher, SimulatedTeacher, read_feedback_log
from tamer.models import LinearModel
from tamer.oracles import make_oracle
from tamer.progress import Progress
from tamer.rl import EpsilonSchedule, LinearTD
from tamer.schedules import make_schedule

METRICS = ("episode", "return", "length", "feedback", "ignored", "steps_per_s")


def make_env(env_id: str, render_mode: str | None = None, max_steps: int = 0) -> gym.Env:
    """gym.make with our envs registered, refusing what TAMER cannot drive."""
    import envs  # noqa: F401  (registers tamer/* environments)

    kwargs = {"max_episode_steps": max_steps} if max_steps else {}
    try:
        env = gym.make(env_id, render_mode=render_mode, **kwargs)
    except (gym.error.Error, ImportError) as e:
        raise ConfigError(f"cannot make env {env_id!r}: {e}") from None
    if not isinstance(env.action_space, gym.spaces.Discrete):
        env.close()
        raise ConfigError(
            f"{env_id} has action space {env.action_space}; TAMER needs discrete actions "
            "(a Discrete space, one Ĥ value per action)"
        )
    return env


def make_h(cfg: Config, env: gym.Env, features: FeatureMap | None, n_actions: int):
    """The model of human reward Ĥ named by the config (``features`` is None for neural models)."""
    if cfg.model != "linear":
        from tamer.deep import make_neural_h  # torch is imported only by runs that use it

        return make_neural_h(cfg, env, n_actions)
    return LinearModel(features, n_actions, cfg.h_lr)


def make_rl(cfg: Config, env: gym.Env, features: FeatureMap | None, n_actions: int):
    """The MDP-reward learner named by the config (``n_actions`` includes a blend's extra actions)."""
    if cfg.rl == "dqn":
        from tamer.deep import make_dqn

        return make_dqn(cfg, env, n_actions)
    epsilon = EpsilonSchedule(cfg.rl_epsilon, cfg.rl_epsilon_decay, cfg.rl_epsilon_min)
    return LinearTD(features, n_actions, cfg.rl, cfg.rl_lr, cfg.gamma, cfg.lam, cfg.q_init, epsilon)


def make_agent(cfg: Config, env: gym.Env, rng: np.random.Generator) -> Agent:
    """Ĥ and/or an RL learner over one shared feature map, the blend, and β's schedule."""
    n = int(env.action_space.n)
    blend = make_blend({"tamer": "tamer", "rl": "rl"}.get(cfg.agent, cfg.blend))
    needs_h, needs_rl = getattr(blend, "needs_h", True), getattr(blend, "needs_rl", True)
    linear_h, linear_rl = needs_h and cfg.model == "linear", needs_rl and cfg.rl != "dqn"
    if getattr(blend, "needs_linear", False) and not (linear_h and linear_rl):
        raise ConfigError(f"{cfg.blend} needs Ĥ and Q linear over the same features (--model linear, no dqn)")
    features = None  # built only for a linear part: image observations have none
    if linear_h or linear_rl:
        features = make_features(
            env.observation_space,
            cfg.env,
            cfg.features,
            cfg.tilings,
            cfg.bins,
            cfg.tile_offsets,
            cfg.rbf_centers,
            cfg.rbf_width,
            cfg.obs_low,
            cfg.obs_high,
        )
    h = make_h(cfg, env, features, n) if getattr(blend, "needs_h", True) else None
    rl = (
        make_rl(cfg, env, features, n + getattr(blend, "extra_actions", 0))
        if getattr(blend, "needs_rl", True)
        else None
    )
    schedule = normalizer = None
    if h is not None and rl is not None:
        n_features = features.n_features if linear_h else None  # region traces live on Ĥ's features
        schedule = make_schedule(cfg.beta_schedule, cfg.beta, cfg.beta_decay, n_features)
        normalizer = ScaleNormalizer() if cfg.normalize == "q_range" else None
    if cfg.mode == "sequential" and rl is not None and h is not None:
        blend = Tamer()  # the RL phase's blend takes over in start_episode
    agent = Agent(h, rl, blend, n, rng, cfg.epsilon, schedule, normalizer)
    for part in (h, rl):  # stacked frames restart with each episode
        if hasattr(getattr(part, "encoder", None), "episode_clock"):
            part.encoder.episode_clock = lambda: agent.episode
    return agent


def make_source(cfg: Config, env: gym.Env, rng: np.random.Generator):
    if cfg.teacher == "none" or cfg.agent == "rl":
        return NoTeacher()
    if cfg.teacher == "replay":
        return FeedbackReplay(read_feedback_log(cfg.feedback_log))
    delay = make_delay(cfg.delay, cfg.delay_min, cfg.delay_max, cfg.gamma_shape, cfg.gamma_scale)
    return SimulatedTeacher(
        make_oracle(cfg.env, env),
        delay,
        rng,
        cfg.feedback_prob,
        cfg.error_rate,
        cfg.feedback_mode,
        cfg.fatigue,
        teacher_leaves(cfg),
    )


def teacher_leaves(cfg: Config) -> int:
    """The episode from which no feedback comes (0 = never): sequential mode ends teaching after
    --h-episodes."""
    if cfg.mode == "sequential" and cfg.agent == "tamer+rl":
        return min(cfg.h_episodes, cfg.leave_after) if cfg.leave_after else cfg.h_episodes
    return cfg.leave_after


def start_episode(s: Session, episode: int) -> None:
    """Phase changes at an episode's start: the teacher leaving (and, in sequential mode, the RL phase
    beginning with the configured blend)."""
    if episode == 0 or episode != teacher_leaves(s.cfg) or s.agent.rl is None or s.agent.h is None:
        return
    s.agent.teacher_left(make_blend(s.cfg.blend) if s.cfg.mode == "sequential" else None)


@dataclass
class Session:
    """Everything a run needs, built from one config."""

    cfg: Config
    env: gym.Env
    agent: Agent
    source: object
    credit: CreditAssigner
    clock: object
    log: FeedbackLog | None = None
    steps: int = 0  # env steps over the whole run
    feedback: int = 0  # feedback handed to the agent over the whole run


def build(cfg: Config, render_mode: str | None = None, clock=None) -> Session:
    """Seeds everything from cfg.seed: one stream each for the agent and the teacher, and the env's reset."""
    cfg.validate()
    env = make_env(cfg.env, render_mode, cfg.max_steps)
    agent_seed, teacher_seed = np.random.SeedSequence(cfg.seed).spawn(2)
    agent = make_agent(cfg, env, np.random.default_rng(agent_seed))
    source = make_source(cfg, env, np.random.default_rng(teacher_seed))
    delay = make_delay(cfg.delay, cfg.delay_min, cfg.delay_max, cfg.gamma_shape, cfg.gamma_scale)
    return Session(cfg, env, agent, source, CreditAssigner(delay), clock or VirtualClock(step_rate(cfg, env)))


def step_rate(cfg: Config, env: gym.Env) -> float:
    """Steps per second: the config's, else the env's own teaching pace, else 10 (Mountain Car's).

    The pace matters for credit: with feedback delays of 0.2-0.8 s, steps much shorter than that share each
    feedback with their neighbours, which blurs Ĥ where neighbouring steps deserve opposite judgements."""
    return cfg.step_rate or float(env.unwrapped.metadata.get("teaching_step_rate", 10.0))


def run_episode(s: Session, episode: int, learn: bool = True) -> dict:
    """One episode of the loop; returns its metrics."""
    env, agent, source, credit, clock = s.env, s.agent, s.source, s.credit, s.clock
    if learn:
        start_episode(s, episode)
    obs, _ = env.reset(seed=s.cfg.seed if episode == 0 else None)
    x = agent.encode(obs)
    action = agent.act(x)
    total, length, given, ignored_before = 0.0, 0, 0, credit.ignored
    started = time.perf_counter()
    while True:
        t_start = clock.now()
        obs_next, reward, terminated, truncated, _ = env.step(action)
        clock.tick()
        t_end = clock.now()
        s.steps += 1
        length += 1
        total += float(reward)
        if learn:
            credit.record(x, action, t_start, t_end)
            source.observe(obs, action, t_start, t_end, episode)
            for fb in source.poll(t_end):
                xs, actions, credits = credit.assign(fb.time)
                agent.learn_feedback(xs, actions, credits, fb.value)
                if s.log is not None:
                    s.log.write(fb, s.steps, episode)
                given += 1
        done = terminated or truncated
        x_next = agent.encode(obs_next)
        action_next = None if done else agent.act(x_next)
        if learn:
            agent.learn_reward(x, action, float(reward), x_next, action_next, terminated)
        if done:
            break
        obs, x, action = obs_next, x_next, action_next
    agent.end_episode()
    s.feedback += given
    elapsed = time.perf_counter() - started
    return {
        "episode": episode,
        "return": total,
        "length": length,
        "feedback": given,
        "ignored": credit.ignored - ignored_before,
        "steps_per_s": length / elapsed if elapsed > 0 else 0.0,
    }


def prepare_out(out: Path, overwrite: bool) -> None:
    """Refuse to mix two runs in one folder unless asked to replace the old one."""
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise ConfigError(f"{out} already holds files; choose another --out or pass --overwrite")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def save_atomic(agent: Agent, path: Path) -> None:
    tmp = path.with_name(path.stem + ".tmp.npz")
    agent.save(tmp)
    os.replace(tmp, path)


def train(cfg: Config, out: Path | None = None, overwrite: bool = False, progress: bool = True) -> list[dict]:
    """Train for cfg.episodes. With ``out``: config.json first, then per episode a flushed metrics.csv row,
    every feedback in feedback.csv as it is given, and model.npz, so a killed run keeps what it did."""
    s = build(cfg)
    rows: list[dict] = []
    metrics_file = writer = None
    if out is not None:
        prepare_out(out, overwrite)
        cfg.save(out / "config.json")
        metrics_file = open(out / "metrics.csv", "w", newline="", encoding="utf-8")  # noqa: SIM115
        writer = csv.DictWriter(metrics_file, fieldnames=METRICS)
        writer.writeheader()
        s.log = FeedbackLog(out / "feedback.csv")
    bar = Progress(cfg.episodes, f"{cfg.agent} {cfg.env} seed {cfg.seed}", enabled=progress)
    try:
        for episode in range(cfg.episodes):
            row = run_episode(s, episode)
            rows.append(row)
            if writer is not None:
                writer.writerow(row)
                metrics_file.flush()
                save_atomic(s.agent, out / "model.npz")
            bar.update(
                f"return {row['return']:.0f}  feedback {row['feedback']}  {row['steps_per_s']:.0f} steps/s"
            )
    finally:
        bar.close()
        if metrics_file is not None:
            metrics_file.close()
        if s.log is not None:
            s.log.close()
        s.env.close()
    return rows


def restore(s: Session, model) -> None:
    """Load a saved agent, back in the phase it was saved in (sequential runs past their TAMER phase act
    with the RL phase's blend). ``model``: a path or a binary file object holding an agent's ``save``."""
    s.agent.load(model)
    if s.cfg.mode == "sequential" and s.agent.h_frozen:
        s.agent.blend = make_blend(s.cfg.blend)


def evaluate(run_dir: Path, episodes: int = 10, seed: int | None = None) -> list[float]:
    """Greedy returns of a saved run's model, learning switched off."""
    cfg = Config.load(run_dir / "config.json")
    model = run_dir / "model.npz"
    if not model.exists():
        raise ConfigError(f"{run_dir} has no model.npz (was the run interrupted before its first episode?)")
    if seed is not None:
        cfg.seed = seed
    cfg.teacher, cfg.epsilon, cfg.rl_epsilon, cfg.rl_epsilon_min = "none", 0.0, 0.0, 0.0
    s = build(cfg)
    restore(s, model)
    try:
        return [run_episode(s, episode, learn=False)["return"] for episode in range(episodes)]
    finally:
        s.env.close()
