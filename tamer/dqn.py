"""DQN (Mnih et al. 2015) as the MDP-reward learner of TAMER+RL, built from ``tamer.deep``'s parts (encoder,
networks, replay buffer, cached forward passes), with the learner interface of ``tamer.rl``.

Offsets that blends pass (Q augmentation, Ĥ as a feature) are stored with each transition and added to
Q(s, a) and Q(s', ·). Same conventions as ``tamer.deep``: one torch thread by default, inference under
``torch.inference_mode`` on zero-copy inputs, weights initialised under a forked torch RNG seeded from the
config's seed, minibatches drawn from the model's own numpy Generator.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from tamer.deep import (
    CachedForward,
    NetInput,
    ObservationEncoder,
    ReplayBuffer,
    configure_torch,
    make_encoder,
    make_net,
    parse_hidden,
    pick_device,
    rng_state,
    set_rng_state,
)
from tamer.errors import ConfigError

MAX_GRAD_NORM = 10.0  # DQN's gradient clipping, Stable-Baselines3's default


class DQN:
    """Deep Q-learning (Mnih et al. 2015) as the MDP-reward learner of TAMER+RL.

    One env step: store (s, a, r, s', terminated, offset, offset') in the replay buffer; every
    ``train_freq`` steps after ``learning_starts``, take ``gradient_steps`` Adam steps on minibatches with
    the Huber loss between Q(s, a) + offset and r + γ·max_a' (Q_target(s', a') + offset'[a']); copy the
    online net into the target net every ``target_period`` steps. ε falls linearly from ``eps_start`` to
    ``eps_end`` over ``eps_steps`` steps. Truncated episodes bootstrap (only ``terminated`` cuts the return).

    ``update`` returns the transition's TD error under the online net (blends such as ``h_feature`` learn
    from it); it reuses the forward passes made when acting, so it costs nothing extra most steps.
    """

    row_buffers = ("buffer",)  # state_dict(rows=False) keys holding a ReplayBuffer (tamer.rowstore)

    def __init__(
        self,
        encoder: ObservationEncoder,
        n_actions: int,
        hidden: Sequence[int] = (256, 256),
        lr: float = 2.3e-3,
        gamma: float = 0.99,
        buffer_size: int = 50_000,
        batch_size: int = 64,
        learning_starts: int = 1000,
        train_freq: int = 256,
        gradient_steps: int = 128,
        target_period: int = 10,
        eps_start: float = 1.0,
        eps_end: float = 0.04,
        eps_steps: int = 8000,
        device: torch.device | str = "cpu",
        seed: int = 0,
    ):
        self.encoder, self.n_actions = encoder, n_actions
        self.lr, self.gamma = lr, gamma
        self.batch_size, self.learning_starts = batch_size, learning_starts
        self.train_freq, self.gradient_steps, self.target_period = train_freq, gradient_steps, target_period
        self.eps_start, self.eps_end, self.eps_steps = eps_start, eps_end, eps_steps
        self.device = torch.device(device)
        net_seed, rng_seed = np.random.SeedSequence([seed, 2]).generate_state(2)
        self.q = make_net(encoder, hidden, n_actions, int(net_seed), zero_output=False).to(self.device)
        self.target = copy.deepcopy(self.q).requires_grad_(False)
        self.target_stale = False  # the online net changed since the last copy
        self.optimizer = torch.optim.Adam(self.q.parameters(), lr=lr)
        self.rng = np.random.default_rng(int(rng_seed))
        shape, dtype = encoder.shape, encoder.dtype
        self.buffer = ReplayBuffer(
            buffer_size,
            {
                "x": (shape, dtype),
                "x_next": (shape, dtype),
                "a": ((), np.int64),
                "r": ((), np.float32),
                "done": ((), np.float32),
                "offset": ((), np.float32),
                "offset_next": ((n_actions,), np.float32),
            },
        )
        self.forward = CachedForward(self.q, self.device)
        self.steps = self.episode = self.n_updates = 0
        self._zeros = np.zeros(n_actions, dtype=np.float32)

    @property
    def epsilon(self) -> float:
        if self.steps >= self.eps_steps:
            return self.eps_end
        return self.eps_start + (self.eps_end - self.eps_start) * self.steps / self.eps_steps

    def encode(self, obs) -> NetInput:
        return self.encoder(obs)

    def values(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

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
        """Store the transition and learn on schedule; returns δ = r + γ·max(Q(s')+o') − (Q(s, a)+o)."""
        off_next = self._zeros if offset_next is None else offset_next
        q = self.forward(x)
        bootstrap = 0.0 if terminated else self.gamma * float((self.forward(x_next) + off_next).max())
        delta = float(reward) + bootstrap - (float(q[action]) + offset)
        self.buffer.add(
            x=x[None],
            x_next=x_next[None],
            a=(action,),
            r=(reward,),
            done=(float(terminated),),
            offset=(offset,),
            offset_next=off_next[None],
        )
        self.steps += 1
        if self.steps >= self.learning_starts and self.steps % self.train_freq == 0:
            for _ in range(self.gradient_steps):
                self.train_step()
        if self.steps % self.target_period == 0 and self.target_stale:
            self.target.load_state_dict(self.q.state_dict())
            self.target_stale = False
        return delta

    def train_step(self) -> float:
        slots = self.rng.integers(self.buffer.size, size=self.batch_size)
        b = self.buffer.batch(slots, self.device)
        with torch.no_grad():
            q_next = (self.target(b["x_next"]) + b["offset_next"]).max(dim=1).values
            target = b["r"] + self.gamma * (1.0 - b["done"]) * q_next
        q = self.q(b["x"]).gather(1, b["a"].unsqueeze(1)).squeeze(1) + b["offset"]
        loss = F.smooth_l1_loss(q, target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.q.parameters(), MAX_GRAD_NORM)
        self.optimizer.step()
        self.target_stale = True
        self.forward.clear()
        self.n_updates += 1
        return loss.item()

    def end_episode(self) -> None:
        self.episode += 1

    def state_dict(self, rows: bool = True) -> dict:
        """Everything a resumed run needs; ``rows=False``: the replay buffer itself instead of a copy of its
        rows (``Agent.save`` then saves only the rows added since its last save)."""
        return {
            "q": self.q.state_dict(),
            "target": self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "buffer": self.buffer.state_dict() if rows else self.buffer,
            "rng": rng_state(self.rng),
            "counters": [self.steps, self.episode, self.n_updates],
        }

    def load_state_dict(self, state: dict) -> None:
        try:
            self.q.load_state_dict(state["q"])
            self.target.load_state_dict(state["target"])
        except (RuntimeError, KeyError) as e:
            raise ConfigError(
                f"saved DQN network does not fit this config: {str(e).splitlines()[0]}"
            ) from None
        self.optimizer.load_state_dict(state["optimizer"])
        self.buffer.load_state_dict(state["buffer"])
        set_rng_state(self.rng, state["rng"])
        self.steps, self.episode, self.n_updates = (int(v) for v in state["counters"])
        self.target_stale = True  # copying an up-to-date target again changes nothing
        self.forward.clear()


def make_dqn(cfg, env: gym.Env, n_actions: int) -> DQN:
    """DQN for ``--rl dqn``: an MLP over vectors, the CNN over images."""
    configure_torch(cfg.torch_threads)
    encoder = make_encoder(cfg, env, scale=False)
    return DQN(
        encoder,
        n_actions,
        parse_hidden(cfg.dqn_hidden),
        cfg.dqn_lr,
        cfg.gamma,
        cfg.dqn_buffer,
        cfg.dqn_batch,
        cfg.dqn_learning_starts,
        cfg.dqn_train_freq,
        cfg.dqn_gradient_steps,
        cfg.dqn_target_period,
        cfg.dqn_epsilon_start,
        cfg.dqn_epsilon_end,
        cfg.dqn_epsilon_steps,
        pick_device(cfg.device, images=encoder.is_image),
        cfg.seed,
    )
