"""A k-nearest-neighbour model of human reward (``--model knn``), behind the interface of ``tamer.models``.

Knox & Stone used one for Cart Pole in TAMER+RL: instead of fitting weights, Ĥ remembers every credited
feedback as a sample (point, action, h, credit) and predicts

    Ĥ(s, a) = Σ c_i h_i / Σ c_i   over the k samples nearest to s (Euclidean), among those of action a,

the credit-weighted mean of the k nearest labels (fewer than k samples: all of them; none: 0, no opinion).
A step that a feedback credits with 0.1 counts a tenth as much as one it credits fully.

The point is:

- on Tetris (``--features tetris``, or ``auto`` there): the 47 afterstate features of the placement
  (``tamer.tetris``), relative to the current board's as the linear afterstate Ĥ reads them; samples are
  shared by all actions (a placement's judgement does not depend on which action index made it), and
  Ĥ(s, a) looks up the neighbours of a's afterstate;
- otherwise the observation, scaled to [0, 1] per dimension by the bounds tile coding uses
  (``tamer.features.box_bounds``: the space's, ``--obs-low/--obs-high``, or our defaults), or a one-hot of
  a ``Discrete`` observation; samples are kept per action.

At most ``capacity`` samples are kept (``--knn-capacity``); beyond that the oldest are overwritten.

``--knn-k`` defaults to 60, measured on Mountain Car with the default teacher (experiments/tetris.py's
check, 10 seeds, mean return of episodes 6-10, oracle -119.5): k 3 -> -200, 5 -> -181, 20 -> -132,
40 -> -129, 60 -> -124, 100 -> -124 (the linear Ĥ: -130). Small k follows single mistaken or mis-credited
labels; each feedback there is spread over about 6 steps of 0.1 s.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np

from tamer.errors import ConfigError
from tamer.features import box_bounds


class ObservationScaler:
    """Observation -> point in [0, 1]^d (a Box) or a one-hot vector (Discrete)."""

    def __init__(self, space: gym.Space, env_id: str = "", obs_low: str = "", obs_high: str = ""):
        if isinstance(space, gym.spaces.Discrete):
            self.n, self.start, self.discrete = int(space.n), int(space.start), True
            self.dims = self.n
            return
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
            raise ConfigError(
                f"--model knn needs a 1-d Box or a Discrete observation space (or --features tetris), "
                f"{env_id or 'this env'} has {space}"
            )
        low, high = box_bounds(space, env_id, obs_low, obs_high)
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))) or np.any(high <= low):
            raise ConfigError(
                f"--model knn scales observations by finite bounds, got low={low.tolist()} "
                f"high={high.tolist()}; give them with --obs-low/--obs-high"
            )
        self.low, self.inv_span, self.discrete = low, 1.0 / (high - low), False
        self.dims = low.size

    def __call__(self, obs) -> np.ndarray:
        if self.discrete:
            out = np.zeros(self.n)
            out[int(obs) - self.start] = 1.0
            return out
        return (np.asarray(obs, dtype=np.float64).reshape(-1) - self.low) * self.inv_span


class KNNModel:
    """Ĥ as the credit-weighted mean of the k nearest feedback samples (see the module docstring).

    ``encoder`` maps an observation to the model input: ``ObservationScaler`` (per-action samples) or the
    Tetris feature map (``afterstate`` True: one pool of afterstate samples)."""

    def __init__(self, encoder, n_actions: int, k: int = 60, capacity: int = 20000, relative: bool = True):
        if k < 1 or capacity < 1:
            raise ConfigError(f"--model knn needs k >= 1 and capacity >= 1, got {k} and {capacity}")
        self.encoder, self.n_actions, self.k, self.capacity = encoder, n_actions, k, capacity
        self.afterstate = bool(getattr(encoder, "afterstate", False))
        self.relative = (
            relative  # Tetris: afterstate features minus the board's (tamer.tetris.AfterstateLinear)
        )
        self.features = encoder if self.afterstate else None  # a Tetris map is shared with the RL learner
        self.dims = encoder.n_features if self.afterstate else encoder.dims
        self.points = np.zeros((capacity, self.dims))
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.h = np.zeros(capacity)
        self.credit = np.zeros(capacity)
        self.size = 0  # samples held
        self.next = 0  # where the next sample goes (a ring once full)

    def encode(self, obs):
        return self.encoder(obs)

    def _afterstates(self, x) -> np.ndarray:
        return x.relative() if self.relative else x.after

    def _mean_of_nearest(self, d2: np.ndarray, h: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Per row of distances (q, n): the credit-weighted mean h of the k nearest samples."""
        n = d2.shape[1]
        if n == 0:
            return np.zeros(d2.shape[0])
        if n > self.k:
            nearest = np.argpartition(d2, self.k - 1, axis=1)[:, : self.k]
        else:
            nearest = np.broadcast_to(np.arange(n), (d2.shape[0], n))
        cs = c[nearest]
        return (cs * h[nearest]).sum(axis=1) / cs.sum(axis=1)

    def predict(self, x) -> np.ndarray:
        n = self.size
        pts, h, c = self.points[:n], self.h[:n], self.credit[:n]
        if self.afterstate:
            q = self._afterstates(x)  # (actions, d)
            d2 = (q * q).sum(1)[:, None] + (pts * pts).sum(1)[None, :] - 2.0 * q @ pts.T
            return self._mean_of_nearest(d2, h, c)
        d2 = ((pts - x) ** 2).sum(axis=1)
        out = np.zeros(self.n_actions)
        acts = self.actions[:n]
        for a in range(self.n_actions):
            mine = acts == a
            if mine.any():
                out[a] = self._mean_of_nearest(d2[mine][None, :], h[mine], c[mine])[0]
        return out

    def update(self, xs: Sequence, actions: Sequence[int], credits: Sequence[float], hs) -> None:
        """Store each credited step as a sample; ``hs`` is one h for the batch or one per sample."""
        hs = np.broadcast_to(np.asarray(hs, dtype=np.float64), (len(xs),))
        for x, a, c, h in zip(xs, actions, credits, hs, strict=True):
            if c <= 0.0:
                continue
            i = self.next
            self.points[i] = self._afterstates(x)[a] if self.afterstate else x
            self.actions[i], self.h[i], self.credit[i] = int(a), float(h), float(c)
            self.next = (i + 1) % self.capacity
            self.size = min(self.size + 1, self.capacity)

    def state_dict(self) -> dict[str, np.ndarray]:
        n = self.size
        order = (np.arange(n) + (self.next if n == self.capacity else 0)) % self.capacity  # oldest first
        return {
            "points": self.points[order].copy(),
            "actions": self.actions[order].copy(),
            "h": self.h[order].copy(),
            "credit": self.credit[order].copy(),
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        points = np.asarray(state["points"])
        if points.ndim != 2 or points.shape[1] != self.dims:
            raise ConfigError(
                f"saved kNN samples have shape {points.shape}, this config needs (n, {self.dims})"
            )
        n = min(points.shape[0], self.capacity)
        keep = slice(points.shape[0] - n, None)  # the newest, if the capacity shrank
        self.points[:n], self.actions[:n] = points[keep], np.asarray(state["actions"])[keep]
        self.h[:n], self.credit[:n] = np.asarray(state["h"])[keep], np.asarray(state["credit"])[keep]
        self.size, self.next = n, n % self.capacity


def make_knn(cfg, env: gym.Env, features, n_actions: int) -> KNNModel:
    """The kNN Ĥ of a config: over Tetris afterstates when the feature map is Tetris's, else observations."""
    from tamer.tetris import tetris_features

    encoder = features if getattr(features, "afterstate", False) else tetris_features(cfg, env)
    if encoder is None:
        from tamer.envs import env_id_of

        encoder = ObservationScaler(env.observation_space, env_id_of(env, cfg.env), cfg.obs_low, cfg.obs_high)
    return KNNModel(encoder, n_actions, cfg.knn_k, cfg.knn_capacity)
