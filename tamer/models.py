"""Models of the human's reward, Ĥ(s, a).

One interface for every model, so agents, credit assignment and sessions do not care which one runs:
``encode`` turns an observation into the model's input once per step (features for the linear model, a
tensor-ready array for a network), ``predict`` gives Ĥ for every action, ``update`` takes a batch of
(input, action, credit, h) from credit assignment.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from tamer.errors import ConfigError
from tamer.features import FeatureMap, LinearValues, Phi

_I64 = np.dtype(np.int64)


class HumanRewardModel(Protocol):
    n_actions: int

    def encode(self, obs): ...

    def predict(self, x) -> np.ndarray: ...

    def update(self, xs: Sequence, actions: Sequence[int], credits: Sequence[float], hs) -> None: ...

    def state_dict(self) -> dict[str, np.ndarray]: ...

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None: ...


class LinearModel:
    """Ĥ(s, a) = w_a · φ(s): one weight vector per action over a feature map (Knox & Stone 2009).

    Trained by credit-weighted gradient descent on (h - Ĥ)², one step per feedback. The step is
    normalised by ||φ||² (so ``lr`` means the same for tile coding, RBFs and one-hot: with lr=1 and credit 1
    a sample's prediction lands exactly on h).
    """

    def __init__(self, features: FeatureMap, n_actions: int, lr: float = 0.2):
        self.features, self.n_actions, self.lr = features, n_actions, lr
        self.w = np.zeros((n_actions, features.n_features))
        self._ones: np.ndarray | None = None  # the read-only all-ones values of the feature map, once seen
        self._ones_norm = 0.0  # and their ||φ||²
        self._values = LinearValues()
        self._row_offsets: dict[tuple, np.ndarray] = {}  # a batch's actions -> its column of action * n

    def encode(self, obs) -> Phi:
        return self.features(obs)

    def predict(self, x: Phi) -> np.ndarray:
        return self._values(self.w, x)  # self.w[:, x.idx] @ x.val

    def update(self, xs: Sequence[Phi], actions: Sequence[int], credits: Sequence[float], hs) -> None:
        """One gradient step on Σ credit·(h − Ĥ(s, a))² over the batch; ``hs`` is one h for the whole batch
        (one feedback) or one per sample. Vectorised: a feedback credits ~6 steps, and one numpy pass over
        all of them is cheaper than six small ones."""
        if not xs:
            return
        val0 = xs[0].val
        for x in xs:
            if x.val is not val0:
                break
        else:  # one values array shared by every sample (tile coding, one-hot)
            self._update_shared(xs, actions, credits, hs, val0)
            return
        idx = np.array([x.idx for x in xs])
        val = np.array([x.val for x in xs])
        rows = np.asarray(actions)[:, None]
        error = np.asarray(hs, dtype=np.float64) - (self.w[rows, idx] * val).sum(axis=1)
        step = self.lr * np.asarray(credits) * error / (val * val).sum(axis=1)
        np.add.at(self.w, (rows, idx), step[:, None] * val)

    def _update_shared(self, xs, actions, credits, hs, val: np.ndarray) -> None:
        """``update`` when every sample's values are the one array ``val``: the same arithmetic in fewer
        numpy calls (``val`` broadcast instead of stacked, its ||φ||² summed once: a row of the stacked
        array sums exactly as ``val`` does; the step size per sample in plain Python floats, the same IEEE
        operations in the same order). Values of exactly 1 (tile coding) multiply nothing: x·1 is x."""
        w = self.w.reshape(-1)  # a flat view: one index per weight, gathered and added to with 1-d calls
        flat = np.array([x.idx for x in xs])
        if flat.dtype is not _I64:  # another feature map's narrower ints: int64, as a sum with ints gives
            flat = flat.astype(np.int64)
        flat += self._offsets(actions)  # + action * n per row: w[rows, idx] is w.reshape(-1)[flat]
        if val is self._ones:
            ones, norm = True, self._ones_norm
        else:
            ones, norm = bool((val == 1.0).all()), float(np.add.reduce(val * val))
            if ones and not val.flags.writeable:  # a feature map's read-only ones (tile coding): remembered
                self._ones, self._ones_norm = val, norm
        gathered = w.take(flat)
        sums = np.add.reduce(gathered if ones else gathered * val, axis=1)
        lr = self.lr
        if type(hs) is float or np.ndim(hs) == 0:
            h = float(hs)
            step = [lr * c * (h - s) / norm for c, s in zip(credits, sums.tolist(), strict=True)]
        else:
            error = (np.asarray(hs, dtype=np.float64) - sums).tolist()
            step = [lr * c * e / norm for c, e in zip(credits, error, strict=True)]
        steps = np.array(step)[:, None]
        np.add.at(w, flat, steps if ones else steps * val)  # in the same order as at (rows, idx)

    def _offsets(self, actions: Sequence[int]) -> np.ndarray:
        """The column (action * n for each of ``actions``), remembered per sequence of actions: a feedback
        credits a handful of steps, so a few thousand sequences recur (the memo is emptied beyond 4096)."""
        key = tuple(actions)
        column = self._row_offsets.get(key)
        if column is None:
            if len(self._row_offsets) >= 4096:
                self._row_offsets.clear()
            n = self.w.shape[1]
            column = self._row_offsets[key] = np.array([a * n for a in actions], dtype=np.int64)[:, None]
        return column

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"w": self.w.copy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        if state["w"].shape != self.w.shape:
            raise ConfigError(f"saved model has shape {state['w'].shape}, this config needs {self.w.shape}")
        self.w[...] = state["w"]
