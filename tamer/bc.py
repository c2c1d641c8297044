"""Behaviour cloning ("SFT", stage one of the human-feedback pipeline): a policy trained by cross-entropy on
demonstrated (observation, action) pairs.

Two policies, both answering the model interface the agent acts on (``encode``, ``predict`` -> one logit per
action, ``state_dict``): a linear softmax over the framework's features (tile coding, RBFs, one-hot), and a
network (``tamer.deep``'s MLP or CNN over the same observation encoder as the neural Ĥ). The agent acts
greedily on the logits, like TAMER on Ĥ. A policy learns only from demonstrations (``fit``); keypress
feedback, if any reaches it, is ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from tamer.callbacks import Callback
from tamer.demos import Demonstrations
from tamer.features import FeatureMap, Phi

if TYPE_CHECKING:
    from tamer.session import Session


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


class Policy:
    """What both policies share."""

    def encode(self, obs):
        raise NotImplementedError

    def predict(self, x) -> np.ndarray:
        raise NotImplementedError

    def update(self, xs: Sequence, actions: Sequence[int], credits: Sequence[float], hs) -> None:
        """Keypress feedback: a cloned policy does not learn from it."""

    def accuracy(self, demos: Demonstrations) -> float:
        """Fraction of demonstrated steps where the greedy policy takes the demonstrated action."""
        pairs = zip(demos.obs, demos.actions, strict=True)
        return float(np.mean([int(np.argmax(self.predict(self.encode(o)))) == a for o, a in pairs]))


def fit_rng(cfg) -> np.random.Generator:
    """The generator that shuffles a run's demonstrations: the same for ``tamer train --agent bc`` and a
    replayed demonstration session, so both fit the identical policy."""
    return np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(3,)))


class LinearPolicy(Policy):
    """π(a|s) = softmax_a(w_a · φ(s)), trained by minibatch gradient descent on the cross-entropy, the step
    normalised by ||φ||² as the other linear models' are (so ``lr`` means the same for every feature map)."""

    def __init__(
        self, features: FeatureMap, n_actions: int, lr: float = 0.5, epochs: int = 20, batch: int = 64
    ):
        self.features, self.n_actions = features, n_actions
        self.lr, self.epochs, self.batch = lr, epochs, batch
        self.w = np.zeros((n_actions, features.n_features))

    def encode(self, obs) -> Phi:
        return self.features(obs)

    def predict(self, x: Phi) -> np.ndarray:
        return self.w[:, x.idx] @ x.val

    def fit(self, demos: Demonstrations, rng: np.random.Generator) -> list[float]:
        """``epochs`` passes over the demonstrations in shuffled minibatches; returns the loss per epoch."""
        phis = [self.features(o) for o in demos.obs]
        idx, val = np.array([p.idx for p in phis]), np.array([p.val for p in phis])
        norm = (val * val).sum(axis=1)
        actions, n = demos.actions, len(demos)
        rows = np.arange(self.n_actions)[:, None, None]
        losses = []
        for _ in range(self.epochs):
            order, total = rng.permutation(n), 0.0
            for start in range(0, n, self.batch):
                b = order[start : start + self.batch]
                logits = (self.w[:, idx[b]] * val[b]).sum(axis=-1).T  # (batch, actions)
                logp = log_softmax(logits)
                total -= float(logp[np.arange(len(b)), actions[b]].sum())
                grad = np.exp(logp)
                grad[np.arange(len(b)), actions[b]] -= 1.0  # d(cross-entropy)/d(logits)
                step = -self.lr * grad.T[:, :, None] * (val[b] / norm[b, None])[None]
                np.add.at(self.w, (rows, idx[b][None]), step)
            losses.append(total / n)
        return losses

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"w": self.w.copy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        from tamer.errors import ConfigError

        if state["w"].shape != self.w.shape:
            raise ConfigError(f"saved policy has shape {state['w'].shape}, this config needs {self.w.shape}")
        self.w[...] = state["w"]


class NetPolicy(Policy):
    """π(a|s) = softmax(net(s)) with PPO's policy network (``tamer.ppo_runs.policy_net``: an MLP over
    vectors, the CNN over images), trained by Adam on the cross-entropy. Saved as the part dict
    ``{"policy": state_dict}``: the contract under which ``--rl ppo --init RUN`` starts from this policy and
    ``--kl-coef`` holds PPO near it."""

    def __init__(self, cfg, env, lr: float = 1e-3, epochs: int = 20, batch: int = 64):
        import torch

        from tamer.deep import CachedForward, configure_torch, make_encoder, pick_device
        from tamer.ppo_runs import policy_net

        configure_torch(cfg.torch_threads)
        self.torch, self.epochs, self.batch = torch, epochs, batch
        self.encoder = make_encoder(cfg, env, scale=False)
        self.device = pick_device(cfg.device, images=self.encoder.is_image)
        self.net = policy_net(cfg, env, seed=int(np.random.SeedSequence([cfg.seed, 4]).generate_state(1)[0]))
        self.net.to(self.device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=lr)
        self.forward = CachedForward(self.net, self.device)
        self.n_actions = int(env.action_space.n)

    def encode(self, obs) -> np.ndarray:
        return self.encoder(obs)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def fit(self, demos: Demonstrations, rng: np.random.Generator) -> list[float]:
        torch = self.torch
        xs = torch.from_numpy(np.stack([self.encoder(o) for o in demos.obs])).to(self.device)
        actions = torch.from_numpy(demos.actions).to(self.device)
        n, losses = len(demos), []
        for _ in range(self.epochs):
            order, total = rng.permutation(n), 0.0
            for start in range(0, n, self.batch):
                b = torch.from_numpy(order[start : start + self.batch]).to(self.device)
                loss = torch.nn.functional.cross_entropy(self.net(xs[b]), actions[b], reduction="sum")
                self.optimizer.zero_grad(set_to_none=True)
                (loss / len(b)).backward()
                self.optimizer.step()
                total += loss.item()
            losses.append(total / n)
        self.forward.clear()
        return losses

    def state_dict(self) -> dict:
        return {"policy": self.net.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        from tamer.errors import ConfigError

        try:
            self.net.load_state_dict(state["policy"])
        except (RuntimeError, KeyError) as e:
            raise ConfigError(f"saved policy does not fit this config: {str(e).splitlines()[0]}") from None
        self.optimizer.load_state_dict(state["optimizer"])
        self.forward.clear()


BC_LR = {"linear": 0.5, "mlp": 1e-3, "cnn": 1e-3}
"""Default step sizes: normalised SGD for the linear policy, Adam for the networks."""


def make_policy(cfg, env, features: FeatureMap | None):
    """The behaviour-cloning policy ``--agent bc --model linear|mlp|cnn`` names."""
    lr = cfg.bc_lr or BC_LR[cfg.model]
    if cfg.model == "linear":
        assert features is not None
        return LinearPolicy(features, int(env.action_space.n), lr, cfg.bc_epochs, cfg.bc_batch)
    return NetPolicy(cfg, env, lr, cfg.bc_epochs, cfg.bc_batch)


class CloneDemonstrations(Callback):
    """Stage one at a run's start: gather the demonstrations (a simulated demonstrator on ``--oracle``, or
    ``--demos PATH``: a ``tamer play --demonstrate`` session folder, its steps.csv, or a .npz), fit the policy
    on them, and count their cost as human effort (steps, and seconds at the teaching pace)."""

    def __init__(self):
        self.demos: Demonstrations | None = None
        self.losses: list[float] = []

    def on_run_start(self, s: Session) -> None:
        from tamer.demos import demonstrate, load_demonstrations
        from tamer.envs import make_env
        from tamer.oracles import make_oracle
        from tamer.session import step_rate

        cfg = s.cfg
        if cfg.demos:
            self.demos = load_demonstrations(cfg.demos, s.env.observation_space)
        else:
            env = make_env(cfg.env, max_steps=cfg.max_steps)
            try:
                rng = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(2,)))
                self.demos = demonstrate(
                    env,
                    make_oracle(cfg.oracle, env),
                    rng,
                    episodes=cfg.demo_episodes,
                    steps=cfg.demo_steps,
                    error_rate=cfg.demo_error,
                    step_rate=step_rate(cfg, env),
                    seed=cfg.seed + DEMO_SEED_OFFSET,
                )
            finally:
                env.close()
        self.losses = s.agent.h.fit(self.demos, fit_rng(cfg))
        s.effort["demo_steps"] += len(self.demos)
        s.effort["human_seconds"] += self.demos.seconds


DEMO_SEED_OFFSET = 1_000_000
"""The demonstrator's episodes are seeded seed + this, so they are not the episodes the policy is then
evaluated on."""
