"""The pieces of PPO's update (Schulman et al. 2017), as plain functions ``tamer.ppo.PPO`` composes:

1. schedules   lr and clip range fall linearly to 0 over ``--ppo-steps`` env steps (``--ppo-anneal linear``),
               at progress counted after each rollout, as Stable-Baselines3 does.
2. GAE(λ)      advantages from TD residuals δ_t = r_t + γ·(1 − terminated_t)·V(s_{t+1}) − V(s_t), summed
               with weight (γλ)^k up to the end of the episode or of the rollout. A truncated episode
               bootstraps from V(final observation); the rollout's last step from V(the next observation).
3. KL          between two action distributions, for the penalty towards a reference policy.
4. networks    separate policy and value nets, as SB3's default ``MlpPolicy`` (64, 64, tanh each), over the
               same observation encoders as the neural Ĥ and DQN (``tamer.deep.make_encoder``, raw vectors as
               SB3 reads them); images get ``tamer.deep``'s small CNN, one for each net. Orthogonal
               initialisation (gain √2, policy output 0.01, value output 1) under a forked, seeded torch RNG.
5. the loss    clipped surrogate, value MSE, entropy bonus, advantages normalised per minibatch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from tamer.deep import (
    ObservationEncoder,
    SmallCNN,
)

if TYPE_CHECKING:
    pass

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
