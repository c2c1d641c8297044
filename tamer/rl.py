"""Learners of the MDP reward: linear Sarsa(λ) and Q(λ) over the same sparse features as Ĥ.

Every RL learner answers: ``encode(obs)``, ``values(x)`` (Q of every action), ``update(...)`` for one
transition (returning the TD error), ``end_episode()``, ``epsilon`` (the current exploration rate) and
``state_dict``/``load_state_dict``. ``update`` takes optional offsets added to Q(s, a) and to Q(s', ·), which
is how Q augmentation and Ĥ-as-a-feature let the learner bootstrap on Q + β·Ĥ without knowing of Ĥ.
"""

from __future__ import annotations

import numpy as np

from tamer.agents import greedy
from tamer.errors import ConfigError
from tamer.features import FeatureMap, LinearValues, Phi

F64 = np.dtype(np.float64)


class EpsilonSchedule:
    """ε decayed per episode: max(minimum, start · decay^episode)."""

    def __init__(self, start: float = 0.0, decay: float = 1.0, minimum: float = 0.0):
        self.start, self.decay, self.minimum = start, decay, minimum
        self.value = start

    def step_episode(self, episode: int) -> None:
        self.value = max(self.minimum, self.start * self.decay**episode)


class TDLearner:
    """What a linear TD learner of weights ``w`` keeps across episodes, shared by ``LinearTD`` and
    ``tamer.tetris.AfterstateTD``: the ε schedule, the episode count, saving and loading ``w``. Subclasses
    give ``clear_traces`` and ``invalidate`` (forget anything cached from ``w``)."""

    w: np.ndarray
    episode: int
    schedule: EpsilonSchedule

    @property
    def epsilon(self) -> float:
        return self.schedule.value

    def clear_traces(self, active: np.ndarray | None = None) -> None:
        raise NotImplementedError

    def invalidate(self) -> None:
        raise NotImplementedError

    def end_episode(self) -> None:
        self.clear_traces()
        self.episode += 1
        self.schedule.step_episode(self.episode)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"w": self.w.copy(), "episode": np.array(self.episode)}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        if state["w"].shape != self.w.shape:
            raise ConfigError(f"saved Q has shape {state['w'].shape}, this config needs {self.w.shape}")
        self.w[...] = state["w"]
        self.invalidate()
        self.episode = int(state["episode"])
        self.schedule.step_episode(self.episode)


class LinearTD(TDLearner):
    """Sarsa(λ) (``method="sarsa"``) or Watkins's Q(λ) (``"qlearning"``) with replacing traces.

    The learner of the TAMER+RL papers (Knox & Stone 2010, 2012): tile coding, α=0.5/tilings, λ=0.9, γ=1
    on Mountain Car (Sutton & Barto 2018, sec. 10.1 and 12.7). Traces are sparse: only the indices with a
    trace above ``trace_cutoff`` are kept, so a step costs O(active features), not O(all weights). The step
    size is normalised by ||φ||², like Ĥ's, so ``lr`` means the same for every feature map.
    """

    def __init__(
        self,
        features: FeatureMap,
        n_actions: int,
        method: str = "sarsa",
        lr: float = 0.5,
        gamma: float = 1.0,
        lam: float = 0.9,
        q_init: float = 0.0,
        epsilon: EpsilonSchedule | None = None,
        trace_cutoff: float = 1e-3,
    ):
        if method not in ("sarsa", "qlearning"):
            raise ConfigError(f"unknown linear RL method {method!r}; known: sarsa, qlearning")
        self.features, self.n_actions, self.method = features, n_actions, method
        self.lr, self.gamma, self.lam, self.trace_cutoff = lr, gamma, lam, trace_cutoff
        self.n = features.n_features
        self.w = np.zeros((n_actions, self.n))
        self.q_init = q_init  # Q(s, a) = w_a · φ(s) + q_init: optimistic values explore without ε
        self._w = self.w.reshape(-1)  # flat view for trace updates
        # action * n as int64 0-d arrays: ``idx + offset[action]`` is the same int64 sum as ``action * n +
        # idx``, without numpy's slower handling of a Python int operand
        self._offsets = [np.array(a * self.n, dtype=np.int64) for a in range(n_actions)]
        self.trace = np.zeros(n_actions * self.n)
        self.active = np.empty(0, dtype=np.int64)  # indices with a nonzero trace
        self.is_active = np.zeros(n_actions * self.n, dtype=bool)  # so adding to ``active`` needs no sort
        self.schedule = epsilon or EpsilonSchedule()
        self.episode = 0
        self._cached_x: Phi | None = None  # the φ(s) whose Q(s, ·) is _cached_q; None: nothing cached
        self._ones: np.ndarray | None = None  # the feature map's read-only values of 1, once seen
        self._linear = LinearValues()
        self._cached_q: np.ndarray = np.empty(0)
        self._constants_for: tuple[float, float] | None = None  # see _constants
        self._constant_arrays = (np.empty(()), np.empty(()))

    def encode(self, obs) -> Phi:
        return self.features(obs)

    def values(self, x: Phi) -> np.ndarray:
        return self._values(x).copy()

    def _values(self, x: Phi) -> np.ndarray:
        """Q(s, ·), not copied (callers must not write to it). The loop asks for Q(s') when acting and again
        when bootstrapping; the last answer is remembered until the weights change."""
        if x is not self._cached_x:
            self._cached_x, self._cached_q = x, self._linear(self.w, x) + self.q_init  # w[:, idx] @ val + ...
        return self._cached_q

    def update(
        self,
        x: Phi,
        action: int,
        reward: float,
        x_next: Phi | None,
        action_next: int | None,
        terminated: bool,
        offset: float = 0.0,
        offset_next: np.ndarray | None = None,
    ) -> float:
        """One TD(λ) step on (s, a, r, s', a'); returns δ. ``action_next`` None means the episode ended."""
        idx, val = x.idx, x.val
        flat = idx + self._offsets[action]  # action * n + idx: where Q(s, a)'s weights sit in the flat view
        # Q(s, a) = w[action, idx] @ val: ``take`` gathers the same contiguous vector and ``dot`` reaches the
        # same BLAS dot product as ``@``, at less cost
        q_sa = self._w.take(flat).dot(val) if val.dtype is F64 else self.w[action, idx] @ val
        delta = reward - (q_sa + self.q_init + offset)
        if not terminated and x_next is not None:
            q_next = self._values(x_next)
            if offset_next is not None:
                q_next = q_next + offset_next
            if self.method == "qlearning" or action_next is None:
                greedy_next = q_next.max()
                bootstrap = greedy_next
            else:  # Sarsa bootstraps on the action taken: no max needed
                bootstrap = q_next[action_next]
            delta += self.gamma * bootstrap
        trace, is_active = self.trace, self.is_active
        trace[flat] = val  # replacing traces
        new = flat[~is_active[flat]]  # a step usually brings a few new indices: no test of "none" first
        if new.size:
            is_active[new] = True
            active = np.concatenate((self.active, new))
        else:
            active = self.active
        if val is self._ones:  # ||φ||² of values 1: their count, exactly what the dot product sums to
            norm = float(val.size)
        else:
            norm = val @ val
            if not val.flags.writeable and norm == val.size and bool((val == 1.0).all()):
                self._ones = val  # a feature map's read-only array of ones, remembered
        traces = trace[active]  # read once: the weight update leaves the traces as they are
        self._w[active] += (self.lr * delta / norm) * traces
        self.invalidate()
        if action_next is None or terminated:  # the episode is over (q_next is not computed at a terminal)
            self.clear_traces(active)
        elif self.method == "qlearning" and q_next[action_next] < greedy_next:
            self.clear_traces(active)  # Watkins: an exploratory action cuts the trace
        else:
            # traces * (γλ) and > cutoff, in place, with the two scalars as float64 0-d arrays: the same
            # IEEE products and comparisons as with the Python floats, which numpy handles more slowly
            decay, cutoff = self._constants()
            decayed = np.multiply(traces, decay, out=traces)  # (the traces are float64: np.zeros)
            keep = decayed > cutoff
            trace[active] = decayed
            if np.count_nonzero(keep) == keep.size:
                self.active = active
            else:  # traces that fell to the cutoff are dropped (an index's copies all keep or all go)
                dropped = active[~keep]
                trace[dropped] = 0.0
                is_active[dropped] = False
                self.active = active[keep]
        return float(delta)

    def _constants(self) -> tuple[np.ndarray, np.ndarray]:
        """(γλ, trace cutoff) as float64 0-d arrays, made again if either attribute changed."""
        values = (self.gamma * self.lam, self.trace_cutoff)
        if values != self._constants_for:
            self._constants_for = values
            self._constant_arrays = (np.array(values[0], dtype=F64), np.array(values[1], dtype=F64))
        return self._constant_arrays

    def invalidate(self) -> None:
        """Forget the cached Q(s'); call after changing ``w`` from outside (e.g. initialising Q from Ĥ)."""
        self._cached_x = None

    def clear_traces(self, active: np.ndarray | None = None) -> None:
        active = self.active if active is None else active
        self.trace[active] = 0.0
        self.is_active[active] = False
        self.active = np.empty(0, dtype=np.int64)


def epsilon_greedy(values: np.ndarray | list[float], epsilon: float, rng: np.random.Generator) -> int:
    if epsilon and rng.random() < epsilon:
        return int(rng.integers(len(values)))
    return greedy(values, rng)
