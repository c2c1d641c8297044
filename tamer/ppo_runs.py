"""PPO runs: building ``tamer.ppo.PPO`` from a config, the policies it starts from or stays near, and the
vectorised loop of ``--agent rl --rl ppo``.

**The policy contract** (``--init RUN``, ``--reference RUN``; what a behaviour-cloning agent saves to hand its
policy to PPO): RUN is a run folder with ``config.json`` and ``model.npz``; ``model.npz`` holds an
``agent.torch`` blob (``tamer.deep.dumps``, which ``Agent.save`` writes) in which one part's dict (looked up
in the part ``rl`` first, then in every other part) has the key ``policy``: the ``state_dict`` of
``policy_net(cfg, env)`` for that run's config (its env's observation as ``make_encoder(cfg, env,
scale=False)`` gives it, its ``ppo_hidden`` sizes, one output logit per action), and optionally ``value``,
the value net's (``value_net(cfg, env)``). The run's env must have the same observation space and action
count as ours. ``--init`` needs our architecture (same ``--ppo-hidden``) and copies ``policy`` (and ``value``
when present); ``--reference`` is built from its own config and frozen. With ``--kl-coef`` > 0 and no
``--reference``, the ``--init`` run is the reference (InstructGPT: KL towards the supervised policy PPO
started from).

**Callbacks in the vectorised loop.** ``on_run_start``/``on_run_end`` once; ``on_step`` once per env step
(the ``--ppo-envs`` steps of one vector step in env order, after the learner has seen them and, at a
rollout's end, trained), so ``s.steps`` and ``Step.step`` count env steps as in the single-env loop;
``on_episode_end`` once per finished episode with the usual metrics row; checkpoints also save at the run's
end (its last update comes after the last episode's end). Episodes run in parallel, so they
are numbered in the order they finish (metrics.csv keeps one row per finished episode, in order; an episode
still running when the budget ends or a callback stops the run gets no row); ``Step.episode`` is the run's
episode counter at that step, and ``on_episode_start(s, e)`` is called when the counter moves to e. With
``--ppo-envs 1`` this is exactly the single-env loop's sequence. The progress bar counts env steps.
"""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from tamer.callbacks import Callback, Checkpoint, ProgressBar
from tamer.deep import (
    ObservationEncoder,
    configure_torch,
    loads,
    make_encoder,
    parse_hidden,
    pick_device,
)
from tamer.errors import ConfigError

if TYPE_CHECKING:
    from tamer.callbacks import CallbackList
    from tamer.session import Session

from tamer.ppo import PPO
from tamer.ppo_parts import make_net

# ---------------------------------------------------------------------------------------- 7. building


def policy_net(cfg, env: gym.Env, seed: int = 0) -> nn.Module:
    """The policy network PPO builds for ``cfg`` on ``env``: what a run's ``policy`` state dict must fit."""
    encoder = make_encoder(cfg, env, scale=False)
    n_actions = int(env.action_space.n)  # type: ignore[attr-defined]  # make_env checked it is Discrete
    return make_net(encoder, parse_hidden(cfg.ppo_hidden), n_actions, seed, 0.01)


def value_net(cfg, env: gym.Env, seed: int = 0) -> nn.Module:
    return make_net(make_encoder(cfg, env, scale=False), parse_hidden(cfg.ppo_hidden), 1, seed, 1.0)


def saved_policy(run: str, env: gym.Env, flag: str):
    """(the run's config, its ``policy`` state dict, its ``value`` state dict or None) under the contract of
    the module docstring; one-line ConfigErrors for everything that does not fit."""
    from tamer.config import Config
    from tamer.envs import make_env

    folder = Path(run)
    if not (folder / "config.json").is_file() or not (folder / "model.npz").is_file():
        raise ConfigError(f"{flag} {run}: not a run folder with config.json and model.npz")
    cfg = Config.load(folder / "config.json")
    try:
        with np.load(folder / "model.npz") as data:
            blob = loads(data["agent.torch"]) if "agent.torch" in data.files else {}
    except Exception as e:
        raise ConfigError(f"{flag} {run}: cannot read model.npz: {type(e).__name__}: {e}") from None
    names = ["rl", *(k for k in blob if k != "rl")]
    part = next((blob[k] for k in names if isinstance(blob.get(k), dict) and "policy" in blob[k]), None)
    if part is None:
        raise ConfigError(f"{flag} {run}: its model.npz holds no policy network (a 'policy' state dict)")
    theirs = make_env(cfg.env)
    try:
        if theirs.observation_space != env.observation_space or theirs.action_space != env.action_space:
            raise ConfigError(
                f"{flag} {run}: its policy was trained on {cfg.env} (observations "
                f"{theirs.observation_space}, actions {theirs.action_space}), which does not fit "
                f"observations {env.observation_space}, actions {env.action_space}"
            )
        return cfg, part["policy"], part.get("value"), theirs
    except BaseException:
        theirs.close()
        raise


def load_init(ppo: PPO, run: str, env: gym.Env) -> None:
    """``--init RUN``: start from the run's policy (and value net, when it saved one)."""
    _, policy, value, theirs = saved_policy(run, env, "--init")
    theirs.close()
    try:
        ppo.pi.load_state_dict(policy)
        if value is not None:
            ppo.vf.load_state_dict(value)
    except RuntimeError as e:
        raise ConfigError(
            f"--init {run}: its policy does not fit --ppo-hidden and this env: {str(e).splitlines()[0]}"
        ) from None


def load_reference(run: str, env: gym.Env, device: torch.device) -> nn.Module:
    """``--reference RUN``: the run's policy, built from its own config, frozen."""
    cfg, policy, _, theirs = saved_policy(run, env, "--reference")
    try:
        net = policy_net(cfg, theirs)
        net.load_state_dict(policy)
    except RuntimeError as e:
        raise ConfigError(
            f"--reference {run}: its policy does not fit its config: {str(e).splitlines()[0]}"
        ) from None
    finally:
        theirs.close()
    return net.to(device).requires_grad_(False).eval()


def make_ppo(cfg, env: gym.Env, n_actions: int) -> PPO:
    """PPO for ``--rl ppo``: the config's hyperparameters, ``--init`` weights and the KL reference."""
    configure_torch(cfg.torch_threads)
    encoder = make_encoder(cfg, env, scale=False)
    device = pick_device(cfg.device, images=encoder.is_image)
    ppo = PPO(
        encoder,
        n_actions,
        parse_hidden(cfg.ppo_hidden),
        cfg.ppo_n_steps,
        cfg.ppo_envs,
        cfg.ppo_batch,
        cfg.ppo_epochs,
        cfg.ppo_lr,
        cfg.ppo_clip,
        cfg.ppo_ent_coef,
        cfg.ppo_vf_coef,
        cfg.gamma,
        cfg.ppo_gae_lambda,
        cfg.ppo_max_grad_norm,
        cfg.ppo_anneal,
        cfg.ppo_steps,
        cfg.kl_coef,
        device,
        cfg.seed,
    )
    if cfg.init:
        load_init(ppo, cfg.init, env)
    reference = cfg.reference or cfg.init
    if cfg.kl_coef > 0:
        if not reference:
            raise ConfigError("--kl-coef > 0 needs a policy to stay near: --reference RUN (or --init RUN)")
        ppo.reference = load_reference(reference, env, device)
    elif cfg.reference:
        raise ConfigError("--reference is used only by the KL penalty: give --kl-coef > 0 too")
    return ppo


# ------------------------------------------------------------------------------------ 8. the vector loop


def vectorised(cfg) -> bool:
    """PPO alone (on the env's reward, or on a learned one) trains on several envs stepped together; PPO
    inside a blend runs the per-step body."""
    return (cfg.agent == "rl" and cfg.rl == "ppo") or cfg.agent == "rankings"


RewardHook = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""``reward(obs, actions, env_rewards)`` -> the rewards PPO learns from, one per env (``run_vectorised``)."""


class BatchEncoder:
    """The learner's encoder over a batch of observations (one per env). Stacked frames need one encoder per
    env, each restarted with its own env's episodes."""

    def __init__(self, encoder: ObservationEncoder, n_envs: int):
        self.encoder, self.episodes = encoder, [0] * n_envs
        self.per_env = None
        if encoder.is_image and encoder.frame_stack > 1:
            self.per_env = [copy.deepcopy(encoder) for _ in range(n_envs)]
            for i, e in enumerate(self.per_env):
                e.episode_clock = functools.partial(self.episodes.__getitem__, i)

    def __call__(self, obs) -> np.ndarray:
        e = self.encoder
        if e.kind == "vector":
            return (np.asarray(obs, dtype=np.float32) - e.center) * e.inv_half
        if e.kind == "onehot":
            return e._eye[np.asarray(obs).astype(np.int64) - e.start]
        if self.per_env is None:
            return np.stack([e.frame(o) for o in obs])
        return np.stack([enc(o) for enc, o in zip(self.per_env, obs, strict=True)])

    def one(self, i: int, obs) -> np.ndarray:
        return np.asarray(self.per_env[i](obs) if self.per_env is not None else self.encoder(obs))

    def new_episode(self, i: int) -> None:
        self.episodes[i] += 1


def make_vector_env(cfg, n_envs: int) -> gym.vector.SyncVectorEnv:
    """``n_envs`` copies of the config's env; an ended episode resets in the same step (its last
    observation in ``info["final_obs"]``), as Stable-Baselines3's vector envs do."""
    from tamer.envs import make_env

    return gym.vector.SyncVectorEnv(
        [functools.partial(make_env, cfg.env, None, cfg.max_steps)] * n_envs,
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )


def run_vectorised(s: Session, hooks: CallbackList, reward: RewardHook | None = None) -> list[dict]:
    """Train ``--agent rl --rl ppo``: ``--ppo-envs`` envs stepped together until ``--ppo-steps`` env steps
    (in whole rollouts, as SB3 counts them). Callbacks as the module docstring says. Returns metrics rows.

    ``reward(obs, actions, env_rewards)`` -> the rewards PPO learns from (obs: the raw observations the
    actions were taken in, one per env): how ``--agent rankings`` puts its learned r̂ in the env reward's
    place. Steps, metrics and callbacks keep the env's own reward."""
    from tamer.stepper import EpisodeTally, Step

    cfg, agent, ppo = s.cfg, s.agent, s.agent.rl
    n = cfg.ppo_envs
    total = -(-cfg.ppo_steps // ppo.capacity) * ppo.capacity  # whole rollouts
    hooks.callbacks[:] = [
        StepProgress(c, total) if isinstance(c, ProgressBar) else c for c in hooks.callbacks
    ]
    for c in hooks.callbacks:  # the last update comes after the last episode's end: save it too
        if isinstance(c, Checkpoint):
            c.at_end = True
    envs = make_vector_env(cfg, n)
    rows: list[dict] = []
    try:
        obs, _ = envs.reset(seed=cfg.seed)
        encode = BatchEncoder(ppo.encoder, n)
        xs = encode(obs)
        episode, stop = 0, False
        hooks.on_episode_start(s, episode)
        tallies = [EpisodeTally(0, 0, 0) for _ in range(n)]
        began = [(s.steps, time.perf_counter())] * n
        # human effort up to the last metrics row: none yet (what callbacks added at the run's start, such as
        # a first round of rankings, goes into the first row)
        reported: dict[str, float] = {}
        while not stop and (ppo.steps < total or ppo.pos):
            actions, logp, values = ppo.policy_step(xs, agent.rng)
            t_start = s.clock.now()
            obs_next, rewards, terminated, truncated, info = envs.step(actions)
            s.clock.tick()
            t_end = s.clock.now()
            ended = terminated | truncated
            final_values = None
            if truncated.any():  # a time limit, not the task's end: bootstrap from V(final observation)
                final_values = np.zeros(n, dtype=np.float32)
                for j in np.flatnonzero(truncated & ~terminated).tolist():
                    final_values[j] = ppo.value_batch(encode.one(j, info["final_obs"][j])[None])[0]
            for j in np.flatnonzero(ended).tolist():
                encode.new_episode(j)
            xs_next = encode(obs_next)
            learned = rewards if reward is None else reward(obs, actions, rewards)
            if ppo.record(xs, actions, logp, values, learned, terminated, truncated, final_values):
                ppo.finish(ppo.value_batch(xs_next))
            for i in range(n):
                s.steps += 1
                done = bool(ended[i])
                step = Step(
                    s.steps, episode, 0, t_start, t_end, int(actions[i]), float(rewards[i]),
                    bool(terminated[i]), bool(truncated[i]), obs[i],
                    info["final_obs"][i] if done else obs_next[i],
                )  # fmt: skip
                tallies[i].add(step, ())
                if done:
                    agent.end_episode()
                if hooks.on_step(s, step, ()) is False:
                    stop = True
                if done:
                    row = tallies[i].row("terminated" if terminated[i] else "truncated", 0)
                    steps0, t0 = began[i]
                    elapsed = time.perf_counter() - t0
                    row["episode"] = episode
                    row["steps_per_s"] = (s.steps - steps0) / elapsed if elapsed > 0 else 0.0
                    effort = getattr(s, "effort", {})  # the columns the per-step body adds, as it does
                    row.update({k: round(v - reported.get(k, 0.0), 6) for k, v in effort.items()})
                    reported = dict(effort)
                    rows.append(row)
                    if hooks.on_episode_end(s, row) is False:
                        stop = True
                    episode += 1
                    hooks.on_episode_start(s, episode)
                    tallies[i], began[i] = EpisodeTally(episode, 0, 0), (s.steps, time.perf_counter())
            obs, xs = obs_next, xs_next
    finally:
        envs.close()
    return rows


class StepProgress(Callback):
    """The run's progress bar, counted in env steps (episodes of parallel envs have no fixed number)."""

    def __init__(self, bar: ProgressBar, total: int):
        self.bar, self.last = bar.bar, 0
        self.bar.total = total

    def on_episode_end(self, s: Session, row: dict) -> None:
        self.bar.update(
            f"return {row['return']:.0f}  {row['steps_per_s']:.0f} steps/s", n=s.steps - self.last
        )
        self.last = s.steps

    def on_run_end(self, s: Session) -> None:
        self.bar.close()
