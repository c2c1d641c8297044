"""PPO (Schulman et al. 2017) in torch: the policy-gradient learner of ``--rl ppo``, stage three of the
human-feedback pipeline (BACKGROUND.md: PPO on a learned reward, with a KL penalty towards a reference).

Read top to bottom like CleanRL's ``ppo.py``, as a library part:

1. schedules   lr and clip range fall linearly to 0 over ``--ppo-steps`` env steps (``--ppo-anneal linear``),
               at progress counted after each rollout, as Stable-Baselines3 does.
2. GAE(λ)      advantages from TD residuals δ_t = r_t + γ·(1 − terminated_t)·V(s_{t+1}) − V(s_t), summed
               with weight (γλ)^k up to the end of the episode or of the rollout. A truncated episode
               bootstraps from V(final observation); the rollout's last step from V(the next observation).
3. KL penalty  towards a reference policy, subtracted from the reward (below).
4. networks    separate policy and value nets, as SB3's default ``MlpPolicy`` (64, 64, tanh each), over the
               same observation encoders as the neural Ĥ and DQN (``tamer.deep.make_encoder``, raw vectors as
               SB3 reads them); images get ``tamer.deep``'s small CNN, one for each net. Orthogonal
               initialisation (gain √2, policy output 0.01, value output 1) under a forked, seeded torch RNG.
5. the update  clipped surrogate, value MSE, entropy bonus, advantages normalised per minibatch, gradient
               norm clipped, Adam (ε 1e-5), ``--ppo-epochs`` passes of shuffled ``--ppo-batch`` minibatches.
6. ``PPO``     the learner: a vector API (``policy_step``/``record``/``finish``) for the vectorised loop and
               the single-env learner interface of ``tamer.rl`` (``act``, ``update``, ...) for blends.
7. building    ``make_ppo`` from a config; ``--init`` and ``--reference`` runs (the policy contract below).
8. the loop    ``run_vectorised``: ``--agent rl --rl ppo`` steps ``--ppo-envs`` envs together.

**KL penalty, in the reward.** With ``--kl-coef β`` each step's reward becomes r − β·KL(π_old(·|s) ‖
π_ref(·|s)), computed when the step is collected, as InstructGPT's stage 3 does (there per token, with the
sampled token's log-ratio). It goes into the reward rather than the loss so that it flows through the returns:
the policy is pushed away from states where it must diverge from the reference, not only towards the
reference's action in the states it visits, and it is the objective "return minus β·KL of the trajectory"
that the papers optimise. With discrete actions we use the exact KL of the two action distributions at the
state rather than the sampled log-ratio: the same expectation, without its variance. The metrics' return
stays the env's own.

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

Reproducibility: weights initialised under ``torch.random.fork_rng`` seeded from ``--seed``; actions sampled
from the agent's numpy generator (inverse CDF), minibatches shuffled by the learner's own; the vector envs
reset with ``--seed`` (env i with seed + i). Same config and seed give the same numbers on CPU.
"""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from tamer.callbacks import Callback, Checkpoint, ProgressBar
from tamer.deep import (
    NetInput,
    ObservationEncoder,
    SmallCNN,
    configure_torch,
    loads,
    make_encoder,
    parse_hidden,
    pick_device,
    rng_state,
    set_rng_state,
)
from tamer.errors import ConfigError

if TYPE_CHECKING:
    from tamer.callbacks import CallbackList
    from tamer.session import Session

ADAM_EPS = 1e-5  # Stable-Baselines3's PPO optimiser setting


# ------------------------------------------------------------------------------------------ 1. schedules


def progress_remaining(steps: int, total: int) -> float:
    """1 at the start, 0 once ``total`` env steps are done (never below 0)."""
    return max(0.0, 1.0 - steps / total)


def annealed(value: float, steps: int, total: int, anneal: str) -> float:
    """``linear``: value · (1 − steps/total), floored at 0 (RL Zoo's ``lin_`` schedules); ``none``: value."""
    return value * progress_remaining(steps, total) if anneal == "linear" else value


# -------------------------------------------------------------------------------------------- 2. GAE(λ)


def gae(
    rewards: np.ndarray,
    values: np.ndarray,
    next_values: np.ndarray,
    terminated: np.ndarray,
    ended: np.ndarray,
    gamma: float,
    lam: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Advantages and λ-returns of a rollout; every array is (steps, envs).

    ``next_values[t]`` is V(s_{t+1}) of the state the step led to: the next row's value inside an episode,
    V(final observation) where the episode was truncated, V(next observation) at the rollout's last step.
    ``terminated`` cuts the bootstrap (V(terminal) = 0); ``ended`` (terminated or truncated) cuts the sum.
    """
    adv = np.zeros(values.shape, dtype=np.float32)
    running = np.zeros(values.shape[1:], dtype=np.float32)
    keep = (1.0 - terminated.astype(np.float32)) * gamma
    carry = (1.0 - ended.astype(np.float32)) * (gamma * lam)
    for t in range(len(rewards) - 1, -1, -1):
        delta = rewards[t] + keep[t] * next_values[t] - values[t]
        running = delta + carry[t] * running
        adv[t] = running
    return adv, adv + values


# -------------------------------------------------------------------------------------- 3. KL penalty


def categorical_kl(logp: np.ndarray | torch.Tensor, logp_ref: np.ndarray | torch.Tensor):
    """KL(π ‖ π_ref) = Σ_a π(a)·(log π(a) − log π_ref(a)) over the last axis, from log-probabilities."""
    if isinstance(logp, torch.Tensor):
        return (logp.exp() * (logp - logp_ref)).sum(-1)
    return (np.exp(logp) * (logp - logp_ref)).sum(-1)


# ------------------------------------------------------------------------------------------ 4. networks


def make_net(encoder: ObservationEncoder, hidden: Sequence[int], n_out: int, seed: int, out_gain: float):
    """A tanh MLP over vectors (SB3's ``MlpPolicy``; ``hidden`` may be empty: one linear layer), the small
    CNN of ``tamer.deep`` over images; orthogonal weights (gain √2, the output layer ``out_gain``), zero
    biases, drawn from a forked torch RNG seeded by ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if encoder.is_image:
            net: nn.Module = SmallCNN(encoder.shape, hidden, n_out)
        else:
            layers: list[nn.Module] = []
            n_in = int(np.prod(encoder.shape))
            for size in hidden:
                layers += [nn.Linear(n_in, size), nn.Tanh()]
                n_in = size
            layers.append(nn.Linear(n_in, n_out))
            net = nn.Sequential(*layers)
        weighted = [m for m in net.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
        for m in weighted:
            nn.init.orthogonal_(m.weight, out_gain if m is weighted[-1] else np.sqrt(2))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return net


def forward(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``net(x)``, for the tanh MLPs without nn.Module's per-call hooks (the same ops, so the same numbers):
    at CartPole's size that overhead is a good part of a step's cost."""
    if not isinstance(net, nn.Sequential):
        return net(x)
    for m in net:
        x = F.linear(x, m.weight, m.bias) if isinstance(m, nn.Linear) else torch.tanh(x)
    return x


def sample(logp: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One action per row of log-probabilities (rows, actions), by inverse CDF on one uniform draw each."""
    cdf = np.cumsum(np.exp(logp.astype(np.float64)), axis=1)
    u = rng.random(len(logp)) * cdf[:, -1]
    return np.minimum((u[:, None] >= cdf).sum(axis=1), logp.shape[1] - 1)


# ----------------------------------------------------------------------------------------- 5. the update


def adam(params: list[nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """Adam with SB3's ε, fused into one kernel where torch offers it (CPU since torch 2.4): a PPO step on
    these small nets is mostly per-tensor overhead."""
    try:
        return torch.optim.Adam(params, lr=lr, eps=ADAM_EPS, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr, eps=ADAM_EPS)


def ppo_loss(
    logits: torch.Tensor,
    values: torch.Tensor,
    actions: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    clip: float,
    ent_coef: float,
    vf_coef: float,
    normalize: bool = True,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The PPO loss of one minibatch and its parts:

    A     = (A − mean A) / (std A + 1e-8)             when ``normalize`` and the batch has > 1 sample
    ratio = exp(log π(a|s) − log π_old(a|s))
    L     = −mean(min(ratio·A, clip(ratio, 1 − ε, 1 + ε)·A))  − ent_coef·mean(H(π(·|s)))
            + vf_coef·mean((V(s) − R)²)
    """
    logp_all = F.log_softmax(logits, dim=-1)
    logp = logp_all.gather(1, actions.unsqueeze(1)).squeeze(1)
    if normalize and len(advantages) > 1:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    ratio = torch.exp(logp - old_logp)
    surrogate = torch.min(ratio * advantages, torch.clamp(ratio, 1.0 - clip, 1.0 + clip) * advantages)
    pg_loss = -surrogate.mean()
    v_loss = F.mse_loss(values, returns)
    loss = pg_loss + vf_coef * v_loss
    parts = {"pg_loss": pg_loss, "v_loss": v_loss, "ratio": ratio, "logp": logp}
    if ent_coef:
        entropy = -(logp_all.exp() * logp_all).sum(-1).mean()
        loss = loss - ent_coef * entropy
        parts["entropy"] = entropy
    return loss, parts


# ---------------------------------------------------------------------------------------- 6. the learner


class PPO:
    """The learner. A rollout holds ``n_steps × n_envs`` transitions; it is filled either by the vectorised
    loop (``policy_step`` → env step → ``record``, ``finish`` when full) laid out as (n_steps, n_envs), or one
    transition at a time through ``update`` (blends, the single-env learning body) laid out as
    (n_steps·n_envs, 1), so an update sees as many transitions either way.

    Single-env interface (that of ``tamer.rl``): ``act(x, rng)`` samples an action and remembers the
    behaviour policy's log-probabilities and V for ``x``; ``update(x, a, r, x', a', terminated)`` stores the
    transition with them and trains when the rollout is full. The first step of a rollout keeps the value and
    log-probability of the policy that chose it (the one before the update). ``values(x)`` gives log π(·|x),
    the policy's preferences (PPO has no Q): what a HUD or ``--oracle run:`` reads.
    """

    def __init__(
        self,
        encoder: ObservationEncoder,
        n_actions: int,
        hidden: Sequence[int] = (64, 64),
        n_steps: int = 32,
        n_envs: int = 8,
        batch_size: int = 256,
        epochs: int = 20,
        lr: float = 1e-3,
        clip: float = 0.2,
        ent_coef: float = 0.0,
        vf_coef: float = 0.5,
        gamma: float = 0.98,
        gae_lambda: float = 0.8,
        max_grad_norm: float = 0.5,
        anneal: str = "linear",
        total_steps: int = 100_000,
        kl_coef: float = 0.0,
        device: torch.device | str = "cpu",
        seed: int = 0,
    ):
        self.encoder, self.n_actions = encoder, n_actions
        self.n_steps, self.n_envs, self.batch_size, self.epochs = n_steps, n_envs, batch_size, epochs
        self.lr, self.clip, self.ent_coef, self.vf_coef = lr, clip, ent_coef, vf_coef
        self.gamma, self.gae_lambda, self.max_grad_norm = gamma, gae_lambda, max_grad_norm
        self.anneal, self.total_steps, self.kl_coef = anneal, total_steps, kl_coef
        self.device = torch.device(device)
        pi_seed, vf_seed, rng_seed = np.random.SeedSequence([seed, 3]).generate_state(3)
        self.pi = make_net(encoder, hidden, n_actions, int(pi_seed), 0.01).to(self.device)
        self.vf = make_net(encoder, hidden, 1, int(vf_seed), 1.0).to(self.device)
        self.params = [*self.pi.parameters(), *self.vf.parameters()]
        self.optimizer = adam(self.params, lr)
        self.reference: nn.Module | None = None  # frozen policy of the KL penalty
        self.rng = np.random.default_rng(int(rng_seed))
        self.steps = self.episode = self.n_updates = self.n_rollouts = 0
        self.last_stats: dict[str, float] = {}
        self.capacity = n_steps * n_envs
        self._layout(n_envs)
        self._acted: list[tuple] = []  # (x, log π(·|x), V(x)) of the last two states acted in

    # --- the rollout buffer

    def _layout(self, n_envs: int) -> None:
        """(capacity / n_envs, n_envs) arrays, fresh; only between rollouts."""
        t = self.capacity // n_envs
        shape, dtype = self.encoder.shape, self.encoder.dtype
        self.T, self.N, self.pos = t, n_envs, 0
        self.buf = {
            "x": np.zeros((t, n_envs, *shape), dtype=dtype),
            "a": np.zeros((t, n_envs), dtype=np.int64),
            "logp": np.zeros((t, n_envs), dtype=np.float32),
            "v": np.zeros((t, n_envs), dtype=np.float32),
            "r": np.zeros((t, n_envs), dtype=np.float32),
            "terminated": np.zeros((t, n_envs), dtype=bool),
            "ended": np.zeros((t, n_envs), dtype=bool),
            "v_final": np.zeros((t, n_envs), dtype=np.float32),  # V(final obs) where truncated
        }

    def _use(self, n_envs: int) -> None:
        if n_envs != self.N:
            if self.pos:
                raise ConfigError(f"PPO rollout laid out for {self.N} envs, asked to take {n_envs}")
            self._layout(n_envs)

    # --- the policy

    def _tensor(self, xs: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(xs)).to(self.device)

    def policy_step(self, xs: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """Actions sampled for a batch of encoded observations, with log π(·|x) and V(x) of each."""
        with torch.inference_mode():
            t = self._tensor(xs)
            logp = F.log_softmax(forward(self.pi, t), dim=-1).cpu().numpy()
            v = forward(self.vf, t).squeeze(-1).cpu().numpy()
        return sample(logp, rng), logp, v

    def value_batch(self, xs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return forward(self.vf, self._tensor(xs)).squeeze(-1).cpu().numpy()

    def log_probs(self, xs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return F.log_softmax(forward(self.pi, self._tensor(xs)), dim=-1).cpu().numpy()

    # --- collecting

    def kl_penalty(self, xs: np.ndarray, logp: np.ndarray) -> np.ndarray:
        """Per state: KL(π_old(·|s) ‖ π_ref(·|s)), the behaviour policy's ``logp`` against the reference."""
        assert self.reference is not None
        with torch.inference_mode():
            ref = F.log_softmax(forward(self.reference, self._tensor(xs)), dim=-1).cpu().numpy()
        return categorical_kl(logp.astype(np.float64), ref.astype(np.float64))

    def record(
        self,
        xs: np.ndarray,
        actions: np.ndarray,
        logp_all: np.ndarray,
        values: np.ndarray,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        final_values: np.ndarray | None = None,
    ) -> bool:
        """Store one step of every env (the KL penalty taken off the reward); True when it is full."""
        self._use(len(actions))
        b, t = self.buf, self.pos
        rewards = np.asarray(rewards, dtype=np.float64)
        if self.kl_coef and self.reference is not None:
            rewards = rewards - self.kl_coef * self.kl_penalty(xs, logp_all)
        b["x"][t] = xs
        b["a"][t] = actions
        b["logp"][t] = logp_all[np.arange(len(actions)), actions]
        b["v"][t] = values
        b["r"][t] = rewards
        b["terminated"][t] = terminated
        b["ended"][t] = np.logical_or(terminated, truncated)
        b["v_final"][t] = 0.0 if final_values is None else final_values
        self.pos += 1
        self.steps += len(actions)
        return self.pos == self.T

    def advantages(self, last_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """GAE over the full rollout; ``last_values``: V of the observations after its last step."""
        b = self.buf
        next_values = np.empty_like(b["v"])
        next_values[:-1] = b["v"][1:]
        next_values[-1] = last_values
        truncated = b["ended"] & ~b["terminated"]
        next_values[truncated] = b["v_final"][truncated]
        return gae(b["r"], b["v"], next_values, b["terminated"], b["ended"], self.gamma, self.gae_lambda)

    def finish(self, last_values: np.ndarray) -> dict[str, float]:
        """Close a full rollout: advantages, then the update; the buffer starts over."""
        adv, returns = self.advantages(last_values)
        stats = self.train(adv, returns)
        self.pos = 0
        self.n_rollouts += 1
        return stats

    # --- learning

    def current(self) -> tuple[float, float]:
        """(learning rate, clip range) at the current step."""
        return (
            annealed(self.lr, self.steps, self.total_steps, self.anneal),
            annealed(self.clip, self.steps, self.total_steps, self.anneal),
        )

    def train(self, adv: np.ndarray, returns: np.ndarray) -> dict[str, float]:
        """``epochs`` passes over the rollout in shuffled minibatches of ``batch_size``."""
        lr, clip = self.current()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        b, n = self.buf, self.T * self.N
        data = {
            "x": torch.from_numpy(b["x"].reshape(n, *self.encoder.shape)),
            "a": torch.from_numpy(b["a"].reshape(n)),
            "logp": torch.from_numpy(b["logp"].reshape(n)),
            "adv": torch.from_numpy(adv.reshape(n)),
            "ret": torch.from_numpy(returns.reshape(n)),
        }
        data = {k: v.to(self.device) for k, v in data.items()}
        for _ in range(self.epochs):
            order = self.rng.permutation(n)
            for start in range(0, n, self.batch_size):
                idx = torch.from_numpy(order[start : start + self.batch_size]).to(self.device)
                parts = self.learn_minibatch({k: v[idx] for k, v in data.items()}, clip)
        self.last_stats = self.stats(parts, clip, lr)
        return self.last_stats

    def learn_minibatch(self, mb: dict[str, torch.Tensor], clip: float) -> dict[str, torch.Tensor]:
        """One gradient step on a minibatch (keys x, a, logp, adv, ret); returns the loss's parts."""
        loss, parts = ppo_loss(
            forward(self.pi, mb["x"]),
            forward(self.vf, mb["x"]).squeeze(-1),
            mb["a"],
            mb["logp"],
            mb["adv"],
            mb["ret"],
            clip,
            self.ent_coef,
            self.vf_coef,
        )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
        self.optimizer.step()
        self.n_updates += 1
        parts["loss"], parts["old_logp"] = loss, mb["logp"]
        return parts

    @staticmethod
    def stats(parts: dict[str, torch.Tensor], clip: float, lr: float) -> dict[str, float]:
        """Of the last minibatch: losses, approximate KL to the rollout's policy, fraction clipped."""
        with torch.no_grad():
            ratio, log_ratio = parts["ratio"], parts["logp"] - parts["old_logp"]
            return {
                "loss": float(parts["loss"]),
                "pg_loss": float(parts["pg_loss"]),
                "v_loss": float(parts["v_loss"]),
                "entropy": float(parts["entropy"]) if "entropy" in parts else float("nan"),
                "approx_kl": float(((ratio - 1) - log_ratio).mean()),
                "clip_fraction": float(((ratio - 1).abs() > clip).float().mean()),
                "clip": clip,
                "lr": lr,
            }

    # --- the single-env learner interface (tamer.rl), for blends and the per-step learning body

    @property
    def epsilon(self) -> float:
        return 0.0  # explores by sampling its policy

    def encode(self, obs) -> NetInput:
        return self.encoder(obs)

    def values(self, x: np.ndarray) -> np.ndarray:
        """log π(·|x): the policy's preferences over actions (PPO has no Q values)."""
        return self.log_probs(np.asarray(x)[None])[0].astype(np.float64)

    def act(self, x: np.ndarray, rng: np.random.Generator) -> int:
        actions, logp, v = self.policy_step(np.asarray(x)[None], rng)
        self._acted = [(x, logp[0], float(v[0])), *self._acted[:1]]
        return int(actions[0])

    def _behaviour(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        for key, logp, v in self._acted:
            if key is x:
                return logp, v
        with torch.inference_mode():  # a state the learner did not act in (a blend's own choice)
            t = self._tensor(np.asarray(x)[None])
            logp = F.log_softmax(forward(self.pi, t), dim=-1).cpu().numpy()[0]
            return logp, float(forward(self.vf, t)[0, 0])

    def update(
        self,
        x: np.ndarray,
        action: int,
        reward: float,
        x_next: np.ndarray,
        action_next: int | None,
        terminated: bool,
        offset: float = 0.0,
        offset_next: np.ndarray | None = None,
    ) -> float:
        """Store (s, a, r) with the behaviour policy's numbers and train when the rollout is full; returns the
        TD error r + γ·V(s') − V(s). ``action_next`` None: the episode ended here (truncated unless
        ``terminated``: V(s') bootstraps). Offsets (Q augmentation) do not apply: PPO has no Q."""
        self._use(1)
        logp, v = self._behaviour(x)
        truncated = action_next is None and not terminated
        v_next = 0.0 if terminated else self._behaviour(x_next)[1]
        full = self.record(
            np.asarray(x)[None],
            np.array([action]),
            logp[None],
            np.array([v]),
            np.array([reward]),
            np.array([terminated]),
            np.array([truncated]),
            np.array([v_next]) if truncated else None,
        )
        if full:
            self.finish(np.array([v_next], dtype=np.float32))
        return float(reward) + self.gamma * v_next - v

    def end_episode(self) -> None:
        self.episode += 1

    def state_dict(self) -> dict:
        """Both nets, Adam's moments, the rollout so far and the shuffling RNG: a loaded learner continues
        exactly. The ``policy``/``value`` keys are the contract ``--init``/``--reference`` read."""
        return {
            "policy": self.pi.state_dict(),
            "value": self.vf.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "buffer": {k: torch.from_numpy(v.copy()) for k, v in self.buf.items()},
            "rng": rng_state(self.rng),
            "counters": [self.steps, self.episode, self.n_updates, self.n_rollouts, self.pos, self.N],
        }

    def load_state_dict(self, state: dict) -> None:
        try:
            self.pi.load_state_dict(state["policy"])
            self.vf.load_state_dict(state["value"])
        except (RuntimeError, KeyError) as e:
            raise ConfigError(
                f"saved PPO networks do not fit this config: {str(e).splitlines()[0]}"
            ) from None
        self.optimizer.load_state_dict(state["optimizer"])
        steps, self.episode, self.n_updates, self.n_rollouts, pos, n_envs = (
            int(v) for v in state["counters"]
        )
        self._layout(n_envs)
        for k, v in state["buffer"].items():
            if k in self.buf:
                if tuple(v.shape) != self.buf[k].shape:
                    raise ConfigError(
                        f"saved PPO rollout {k} has shape {tuple(v.shape)}, need {self.buf[k].shape}"
                    )
                self.buf[k][...] = v.numpy()
        self.steps, self.pos = steps, pos
        set_rng_state(self.rng, state["rng"])
        self._acted = []


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
    device = pick_device(cfg.device)
    ppo = PPO(
        make_encoder(cfg, env, scale=False),
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
    """PPO alone trains on several envs stepped together; PPO inside a blend runs the per-step body."""
    return cfg.agent == "rl" and cfg.rl == "ppo"


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


def run_vectorised(s: Session, hooks: CallbackList) -> list[dict]:
    """Train ``--agent rl --rl ppo``: ``--ppo-envs`` envs stepped together until ``--ppo-steps`` env steps
    (in whole rollouts, as SB3 counts them). Callbacks as the module docstring says. Returns metrics rows."""
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
        reported = dict(getattr(s, "effort", {}))  # human effort (none here) up to the last metrics row
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
            if ppo.record(xs, actions, logp, values, rewards, terminated, truncated, final_values):
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
