"""Building a run from its config: the env, the agent (Ĥ and/or an RL learner, a blend, β's schedule), the
teacher, credit assignment and the clock, each seeded from ``cfg.seed``.

Headless training, live play, replay, evaluation and the run-based oracle all build through ``build``, so
one config always means one agent.
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import gymnasium as gym
import numpy as np

from tamer.agents import Agent, ScaleNormalizer
from tamer.blends import Tamer, make_blend
from tamer.config import Config
from tamer.credit import Clock, CreditAssigner, VirtualClock, make_delay
from tamer.envs import env_id_of, make_env
from tamer.errors import ConfigError
from tamer.features import FeatureMap, default_model, make_features
from tamer.feedback import FeedbackReplay, FeedbackSource, NoTeacher, SimulatedTeacher, read_feedback_log
from tamer.models import HumanRewardModel, LinearModel
from tamer.plugins import construct, is_plugin, require_methods
from tamer.rl import EpsilonSchedule, LinearTD
from tamer.schedules import make_schedule
from tamer.tetris import tetris_features

EFFORT = ("demo_steps", "human_seconds", "rankings", "pairs")
"""Human effort besides keypresses (the metrics' ``feedback``): demonstrated steps, the person's time in
seconds (a demonstration costs its steps at the teaching pace, and so does every step taught by keypresses
while the teacher is there, real or simulated; a ranking, what ``tamer.rankings.TimeCost`` says), queries
ranked (``rankings``, skipped ones included: the person looked at them) and the pairs those rankings order
(``pairs``: K(K-1)/2 per ranking that was not skipped, a tie counted as a pair: it says two are equal)."""


@dataclass
class Session:
    """Everything a run needs, built from one config; what every callback hook receives."""

    cfg: Config
    env: gym.Env
    agent: Agent
    source: FeedbackSource
    credit: CreditAssigner
    clock: Clock
    steps: int = 0  # env steps over the whole run
    feedback: int = 0  # feedback handed to the agent over the whole run
    effort: dict[str, float] = field(default_factory=lambda: dict.fromkeys(EFFORT, 0.0))
    """Human input used so far, by kind (see ``EFFORT``); metrics rows report what each episode added."""


def build(cfg: Config, render_mode: str | None = None, clock: Clock | None = None) -> Session:
    """Seeds everything from cfg.seed: one stream each for the agent and the teacher, and the env's reset."""
    cfg.validate()
    env = make_env(cfg.env, render_mode, cfg.max_steps)
    try:
        agent_seed, teacher_seed = np.random.SeedSequence(cfg.seed).spawn(2)
        agent = make_agent(cfg, env, np.random.default_rng(agent_seed))
        source = make_source(cfg, env, np.random.default_rng(teacher_seed))
        delay = make_delay(cfg.delay, cfg.delay_min, cfg.delay_max, cfg.gamma_shape, cfg.gamma_scale)
    except BaseException:
        env.close()
        raise
    credit = CreditAssigner(delay, mode=cfg.credit)
    return Session(cfg, env, agent, source, credit, clock or VirtualClock(step_rate(cfg, env)))


# Teaching paces (steps per second) of built-in environments whose metadata declares none. CartPole's right
# push flips every few steps: at 10 steps/s a 0.2-0.8 s reaction window spreads each feedback over ~6 steps
# and TAMER ends at 363 ± 111 (experiments/defaults.py, 10 seeds, last 5 of 20 episodes); at 4 steps/s it
# balances all 500 steps on 30 of 30 seeds (1 and 2 steps/s learn faster still, 5 steps/s ends at 499.5).
TEACHING_STEP_RATES = {"CartPole-v0": 4.0, "CartPole-v1": 4.0}


def step_rate(cfg: Config, env: gym.Env) -> float:
    """Steps per second: the config's, else the env's own teaching pace (its metadata's, else ours in
    TEACHING_STEP_RATES), else 1 for a tabular env (Discrete observations: moves judged one at a time, as
    on our grid world), else 10 (Mountain Car's).

    The pace matters for credit: with feedback delays of 0.2-0.8 s, steps much shorter than that share each
    feedback with their neighbours, which blurs Ĥ where neighbouring steps deserve opposite judgements
    (measured on CliffWalking-v1 and Taxi-v4 in experiments/run_oracle.py: TAMER ends at -1017 and -341 at
    10 steps/s, at -13 and +7.7 at 1 step/s)."""
    tabular = isinstance(env.observation_space, gym.spaces.Discrete)
    default = TEACHING_STEP_RATES.get(env_id_of(env, cfg.env), 1.0 if tabular else 10.0)
    return cfg.step_rate or float(env.unwrapped.metadata.get("teaching_step_rate", default))


def make_h(cfg: Config, env: gym.Env, features: FeatureMap | None, n_actions: int) -> HumanRewardModel:
    """The model of human reward Ĥ named by the config (``features`` is None for neural models)."""
    if cfg.model == "knn":
        from tamer.knn import make_knn

        return make_knn(cfg, env, features, n_actions)
    if getattr(features, "afterstate", False):  # Tetris: one w over each placement's afterstate
        from tamer.tetris import AfterstateLinear

        return AfterstateLinear(features, n_actions, cfg.h_lr)  # type: ignore[arg-type]
    if cfg.model != "linear":
        from tamer.deep import make_neural_h  # torch is imported only by runs that use it

        return make_neural_h(cfg, env, n_actions)
    assert features is not None
    return LinearModel(features, n_actions, cfg.h_lr)


def make_rl(cfg: Config, env: gym.Env, features: FeatureMap | None, n_actions: int):
    """The MDP-reward learner named by the config (``n_actions`` includes a blend's extra actions)."""
    if cfg.rl == "dqn":
        from tamer.dqn import make_dqn

        return make_dqn(cfg, env, n_actions)
    if cfg.rl == "ppo":
        from tamer.ppo_runs import make_ppo

        return make_ppo(cfg, env, n_actions)
    assert features is not None
    epsilon = EpsilonSchedule(cfg.rl_epsilon, cfg.rl_epsilon_decay, cfg.rl_epsilon_min)
    if getattr(features, "afterstate", False):  # Tetris: Q(s, a) = r(s, a) + w · φ(after(s, a))
        from tamer.tetris import AfterstateTD

        args = (cfg.rl, cfg.rl_lr, cfg.gamma, cfg.lam, cfg.q_init, epsilon)
        return AfterstateTD(features, n_actions, *args)  # type: ignore[arg-type]
    return LinearTD(features, n_actions, cfg.rl, cfg.rl_lr, cfg.gamma, cfg.lam, cfg.q_init, epsilon)


def make_agent(cfg: Config, env: gym.Env, rng: np.random.Generator) -> Agent:
    """Ĥ and/or an RL learner over one shared feature map, the blend, and β's schedule."""
    if cfg.model == "auto":  # linear, or the CNN for image observations
        cfg = dataclasses.replace(cfg, model=default_model(env.observation_space))
    if cfg.agent == "rankings":  # PPO on a learned reward (tamer.pipeline): the RL agent's parts
        cfg = dataclasses.replace(cfg, rl="ppo")
    n = int(env.action_space.n)  # type: ignore[attr-defined]  # Space has no .n; make_env checked Discrete
    blend = make_blend(
        {"tamer": "tamer", "rl": "rl", "bc": "tamer", "rankings": "rl"}.get(cfg.agent, cfg.blend)
    )
    needs_h, needs_rl = getattr(blend, "needs_h", True), getattr(blend, "needs_rl", True)
    linear_h, linear_rl = needs_h and cfg.model == "linear", needs_rl and cfg.rl not in ("dqn", "ppo")
    if needs_rl and cfg.rl == "ppo" and not getattr(blend, "policy_rl", False):
        raise ConfigError(
            f"--blend {cfg.blend} cannot run with --rl ppo: it needs the RL learner's Q values (to compare "
            "or add Ĥ to them, or to act ε-greedily on them) and PPO has none; with ppo use reward_shaping, "
            "potential_shaping or h_as_reward"
        )
    if getattr(blend, "needs_linear", False) and not (linear_h and linear_rl):
        raise ConfigError(f"{cfg.blend} needs Ĥ and Q linear over the same features (--model linear, no dqn)")
    features = None  # built only for a linear part: image observations have none
    if linear_h or linear_rl:
        features = tetris_features(cfg, env) or make_features(
            env.observation_space,
            env_id_of(env, cfg.env),
            cfg.features,
            cfg.tilings,
            cfg.bins,
            cfg.tile_offsets,
            cfg.rbf_centers,
            cfg.rbf_width,
            cfg.obs_low,
            cfg.obs_high,
        )
    h = make_h(cfg, env, features, n) if needs_h and cfg.agent != "bc" else None
    if cfg.agent == "bc":  # a cloned policy in Ĥ's place: the agent acts greedily on its logits
        from tamer.bc import make_policy

        h = make_policy(cfg, env, features)
    rl = make_rl(cfg, env, features, n + getattr(blend, "extra_actions", 0)) if needs_rl else None
    schedule = normalizer = None
    if h is not None and rl is not None:
        n_features = features.n_features if linear_h and features is not None else None
        schedule = make_schedule(cfg.beta_schedule, cfg.beta, cfg.beta_decay, n_features)
        normalizer = ScaleNormalizer() if cfg.normalize == "q_range" else None
    if cfg.mode == "sequential" and rl is not None and h is not None:
        blend = Tamer()  # the RL phase's blend takes over when the teacher leaves (callbacks.TeacherPhase)
    agent = Agent(h, rl, blend, n, rng, cfg.epsilon, schedule, normalizer)
    for part in (h, rl):  # stacked frames restart with each episode
        encoder: Any = getattr(part, "encoder", None)
        if hasattr(encoder, "episode_clock"):
            encoder.episode_clock = lambda: agent.episode
    return agent


def make_source(cfg: Config, env: gym.Env, rng: np.random.Generator) -> FeedbackSource:
    """Where the run's human reward comes from: a simulated teacher on an oracle, a replayed log, nobody, or
    a user's source (``package.module:Class``, built with the ``cfg``, ``env`` and ``rng`` it asks for)."""
    if cfg.teacher == "none" or cfg.agent in ("rl", "bc", "rankings"):
        return NoTeacher()
    if cfg.teacher == "replay":
        return FeedbackReplay(read_feedback_log(cfg.feedback_log))
    if is_plugin(cfg.teacher):
        source = construct(cfg.teacher, "teacher", cfg=cfg, env=env, rng=rng)
        return require_methods(
            source, ("observe", "poll"), f"teacher {cfg.teacher!r}", " (see tamer.feedback)"
        )
    from tamer.oracles import make_oracle

    delay = make_delay(cfg.delay, cfg.delay_min, cfg.delay_max, cfg.gamma_shape, cfg.gamma_scale)
    return SimulatedTeacher(
        make_oracle(cfg.oracle, env, cfg.oracle_margin),
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


def restore(s: Session, model: Path | BinaryIO) -> None:
    """Load a saved agent, back in the phase it was saved in (sequential runs past their TAMER phase act
    with the RL phase's blend). ``model``: a path or a binary file object holding an agent's ``save``."""
    s.agent.load(model)
    if s.cfg.mode == "sequential" and s.agent.h_frozen:
        s.agent.blend = make_blend(s.cfg.blend)


def transplant(agent: Agent, target: Session) -> None:
    """Give ``target`` (a freshly built session) the saved state of ``agent``: what loading a checkpoint
    does, without the file."""
    buffer = io.BytesIO()
    agent.save(buffer)
    buffer.seek(0)
    restore(target, buffer)


def load_run(run_dir: Path, **overrides: Any) -> Session:
    """A saved run's session, its model loaded: ``run_dir`` holds the config.json and model.npz that
    ``tamer train --out`` writes. ``overrides`` replace config fields (e.g. teacher="none")."""
    cfg = Config.load(Path(run_dir) / "config.json")
    model = Path(run_dir) / "model.npz"
    if not model.is_file():
        raise ConfigError(f"{run_dir} has no model.npz (was the run interrupted before its first episode?)")
    for name, value in overrides.items():
        setattr(cfg, name, value)
    s = build(cfg)
    try:
        restore(s, model)
    except BaseException:
        s.env.close()
        raise
    return s
