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

import numpy as np

from tamer.demos import Demonstrations
from tamer.features import FeatureMap, Phi


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


class LinearPolicy:
    """π(a|s) = softmax_a(w_a · φ(s)), trained by minibatch gradient descent on the cross-entropy, the step
    normalised by ||φ||² as the other linear models' are (so ``lr`` means the same for every feature map)."""

    def __init__(self, features: FeatureMap, n_actions: int, lr: float = 0.5, epochs: int = 20, batch: int = 64):
        self.features, self.n_actions = features, n_actions
        self.lr, self.epochs, self.batch = lr, epochs, batch
        self.w = np.zeros((n_actions, features.n_features))

    def encode(self, obs) -> Phi:
        return self.features(obs)

    def predict(self, x: Phi) -> np.ndarray:
        return self.w[:, x.idx] @ x.val

    def update(self, xs: Sequence, actions: Sequence[int], credits: Sequence[float], hs) -> None:
        """Keypress feedback: a cloned policy does not learn from it."""

    def fit(self, demos: Demonstrations, rng: np.random.Generator) -> list[float]:
        """``epochs`` passes over the demonstrations in shuffled minibatches; returns the mean loss per epoch."""
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

    def accuracy(self, demos: Demonstrations) -> float:
        """Fraction of demonstrated steps where the greedy policy takes the demonstrated action."""
        hits = [int(np.argmax(self.predict(self.features(o)))) == a for o, a in zip(demos.obs, demos.actions)]
        return float(np.mean(hits))

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"w": self.w.copy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        from tamer.errors import ConfigError

        if state["w"].shape != self.w.shape:
            raise ConfigError(f"saved policy has shape {state['w'].shape}, this config needs {self.w.shape}")
        self.w[...] = state["w"]
