"""PPO (Schulman et al. 2017) in torch: the policy-gradient learner of ``--rl ppo``, stage three of the
human-feedback pipeline (BACKGROUND.md: PPO on a learned reward, with a KL penalty towards a reference).

Read top to bottom like CleanRL's ``ppo.py``, as a library part: the update's pieces (schedules, GAE, KL,
networks, the clipped loss) are functions in ``tamer.ppo_parts``; ``PPO`` here collects rollouts and trains on
them (gradient norm clipped, Adam with ε 1e-5, ``--ppo-epochs`` passes of shuffled ``--ppo-batch``
minibatches), with a vector API (``policy_step``/``record``/``finish``) for the vectorised loop and the
single-env learner interface of ``tamer.rl`` (``act``, ``update``, ...) for blends. Building it from a config
and the vectorised loop are in ``tamer.ppo_runs``.

**KL penalty, in the reward.** With ``--kl-coef β`` each step's reward becomes r − β·KL(π_old(·|s) ‖
π_ref(·|s)), computed when the step is collected, as InstructGPT's stage 3 does (there per token, with the
sampled token's log-ratio). It goes into the reward rather than the loss so that it flows through the returns:
the policy is pushed away from states where it must diverge from the reference, not only towards the
reference's action in the states it visits, and it is the objective "return minus β·KL of the trajectory"
that the papers optimise. With discrete actions we use the exact KL of the two action distributions at the
state rather than the sampled log-ratio: the same expectation, without its variance. The metrics' return
stays the env's own.

Reproducibility: weights initialised under ``torch.random.fork_rng`` seeded from ``--seed``; actions sampled
from the agent's numpy generator (inverse CDF), minibatches shuffled by the learner's own; the vector envs
reset with ``--seed`` (env i with seed + i). Same config and seed give the same numbers on CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from tamer.deep import (
    NetInput,
    ObservationEncoder,
    rng_state,
    set_rng_state,
)
from tamer.errors import ConfigError

if TYPE_CHECKING:
    pass

from tamer.ppo_parts import adam, annealed, categorical_kl, forward, gae, make_net, ppo_loss, sample

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
