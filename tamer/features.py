"""Feature maps: observation -> sparse linear features (indices, values).

Every map returns ``Phi(idx, val)``: the indices of the active features and their values, so a linear model
reads ``W[a, idx] @ val`` and an update touches only the active weights. Tile coding activates one tile per
tiling (values 1); RBFs are dense (every index active); one-hot activates one index.
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import Literal, NamedTuple, Protocol

import gymnasium as gym
import numpy as np

from tamer.errors import ConfigError


class Phi(NamedTuple):
    idx: np.ndarray  # int64 indices of active features
    val: np.ndarray  # float64 values, same length


_phi = tuple.__new__  # _phi(Phi, (idx, val)): a Phi without the Python-level __new__ of a NamedTuple


def read_only(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


_F64 = np.dtype(np.float64)


class LinearValues:
    """``w[:, x.idx] @ x.val`` (a linear model's value of every action), the same numbers at a third of
    the cost: the columns are gathered by ``take`` into a reused Fortran-ordered buffer, the very layout
    that ``w[:, idx]`` produces, and multiplied by ``ndarray.dot``, which hands that layout to the same BLAS
    gemv call (same routine, shape, strides and scalars) as ``@``, whose own dispatch costs more than the
    product. Anything but 1-d indices and float64 values goes the plain way. Not for two threads at once
    (the buffer is shared; a model is not thread-safe anyway)."""

    def __init__(self):
        self.buffers: dict[tuple[int, int], np.ndarray] = {}

    def __call__(self, w: np.ndarray, x: Phi) -> np.ndarray:
        idx, val = x.idx, x.val
        if val.dtype is not _F64 or idx.ndim != 1 or w.dtype is not _F64 or w.ndim != 2:
            return w[:, idx] @ val
        key = (idx.shape[0], w.shape[0])
        buf = self.buffers.get(key)
        if buf is None:
            buf = self.buffers[key] = np.empty(key).T
        return w.take(idx, 1, out=buf).dot(val)


class FeatureMap(Protocol):
    n_features: int

    def __call__(self, obs) -> Phi: ...


# Bounds for classic-control dimensions that Gymnasium leaves unbounded (velocities), from the ranges
# a balancing or swinging episode visits in practice. Used only where the user gives none, and only for the
# unbounded dimensions: CartPole's position and angle keep the space's ±4.8 m and ±0.42 rad, twice the
# termination limits (±2.4 m, ±0.21 rad), on purpose. The termination limits were measured and learn more
# slowly (experiments/defaults.py, 30 seeds, mean return over all 20 episodes: 395 against 416 at 5 steps/s,
# 432 against 452 at 3, 471 against 482 at 2; both reach 500 at the end): with 8 bins over the reachable
# range instead of 4, each tile generalises over less, and Ĥ has few labels. Velocity ranges tighter than
# these (±1.5/±2, ±1/±1.5) were slower still; the oracle's own trajectories stay within ±0.41 and ±0.54.
DEFAULT_BOUNDS: dict[str, tuple[list[float], list[float]]] = {
    "CartPole-v1": ([-2.4, -3.0, -0.21, -3.5], [2.4, 3.0, 0.21, 3.5]),
    "CartPole-v0": ([-2.4, -3.0, -0.21, -3.5], [2.4, 3.0, 0.21, 3.5]),
}


def tile_box(low, high) -> tuple[np.ndarray, np.ndarray]:
    """Tile coding's bounds as float arrays, checked: 1-d, equal length, finite, high > low."""
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    if low.shape != high.shape or low.ndim != 1:
        raise ConfigError(f"tile coding bounds must be two 1-d lists of equal length, got {low} and {high}")
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise ConfigError(
            f"tile coding needs finite bounds, got low={low.tolist()} high={high.tolist()}; "
            "give them with --obs-low/--obs-high"
        )
    if np.any(high <= low):
        raise ConfigError(f"tile coding bounds need high > low, got low={low.tolist()} high={high.tolist()}")
    return low, high


class TileCoding:
    """Vectorised tile coding (Sutton & Barto 2018, sec. 9.5.4) over a bounded box.

    ``tilings`` grids of ``bins`` tiles per dimension, each shifted by a fraction of a tile. ``offsets=
    "asymmetric"`` uses displacement (1, 3, 5, ...) per dimension (Miller & Glanz), which avoids the diagonal
    artefacts of uniform offsets. When the full table would exceed ``max_size`` tiles, tile indices are hashed
    into ``max_size`` slots (collisions are rare and harmless for the default sizes).
    """

    def __init__(
        self,
        low,
        high,
        tilings: int = 8,
        bins: int = 8,
        offsets: str = "asymmetric",
        max_size: int = 1 << 18,
    ):
        low, high = tile_box(low, high)
        dims = low.size
        self.low, self.tilings, self.bins = low, tilings, bins
        self.scale = bins / (high - low)
        displacement = np.arange(1, 2 * dims, 2) if offsets == "asymmetric" else np.ones(dims)
        self.offsets = (
            np.arange(tilings)[:, None] * displacement[None, :] / tilings
        ) % 1.0  # (tilings, dims)
        side = (
            bins + 1
        )  # offsets shift a tiling by up to one tile, so each needs one extra tile per dimension
        self.strides = side ** np.arange(dims, dtype=np.int64)
        per_tiling = int(side**dims)
        self.base = np.arange(tilings, dtype=np.int64) * per_tiling
        self.side = side
        self.hashed = tilings * per_tiling > max_size
        self.n_features = max_size if self.hashed else tilings * per_tiling
        self._ones = read_only(np.ones(tilings))  # every Phi shares it: models may rely on it being all 1
        # The plain-Python path (``_tiles``): the same float operations on Python floats, integer math for
        # the tile indices. Not hashed (the table is small, so no int64 product can overflow) and bins small
        # enough that x + offset never rounds up to the next integer.
        self._fast = not self.hashed and bins < 1 << 20
        self._low, self._scale = low.tolist(), self.scale.tolist()
        self._rows = [(int(b), *o) for b, o in zip(self.base.tolist(), self.offsets.tolist(), strict=True)]
        self._strides = self.strides.tolist()
        self._shape = (dims,)

    def __call__(self, obs) -> Phi:
        if type(obs) is np.ndarray and self._fast and obs.shape == self._shape and obs.dtype.kind == "f":
            idx = self._tiles(obs.tolist())
            if idx is not None:
                return _phi(Phi, (np.array(idx, dtype=np.int64), self._ones))
        return self._numpy(obs)

    def _tiles(self, obs: list[float]) -> list[int] | None:
        """The tile of each tiling, in plain Python: for a low-dimensional observation a few float and int
        operations per tiling cost less than the numpy calls of ``_numpy``, with identical results (the same
        IEEE operations, then exact integers). None (use ``_numpy``) for non-finite or huge values."""
        if len(obs) == 2:  # the common case (Mountain Car) unrolled
            v0, v1 = obs
            (l0, l1), (k0, k1) = self._low, self._scale
            s0, s1 = (v0 - l0) * k0, (v1 - l1) * k1
            if 0.0 <= s0 < self.bins and 0.0 <= s1 < self.bins:  # inside the box: nothing to clamp
                floor, side = math.floor, self.side
                return [b + floor(s0 + o0) + floor(s1 + o1) * side for b, o0, o1 in self._rows]
        bins, floor = self.bins, math.floor
        scaled = [(v - lo) * k for v, lo, k in zip(obs, self._low, self._scale, strict=True)]
        for s in scaled:
            if not -4.0e18 < s < 4.0e18:  # NaN, ±inf, beyond int64: numpy's own conversion decides
                return None
        strides = self._strides
        out = []
        for base, *offsets in self._rows:
            i = base
            for s, o, stride in zip(scaled, offsets, strides, strict=True):
                c = floor(s + o)
                i += (0 if c < 0 else bins if c > bins else c) * stride
            out.append(i)
        return out

    def _numpy(self, obs) -> Phi:
        scaled = (np.asarray(obs, dtype=np.float64) - self.low) * self.scale
        # Held within a tile of the box first: beyond it every value lands in the edge tile anyway, and
        # values past ±9.2e18 would otherwise overflow the int64 cast (to the low corner, even for +1e30).
        scaled = np.minimum(np.maximum(scaled, -1.0), self.bins + 1.0)
        coords = np.floor(scaled + self.offsets).astype(np.int64)  # (tilings, dims)
        np.minimum(np.maximum(coords, 0, out=coords), self.bins, out=coords)  # np.clip is 3x slower
        idx = coords @ self.strides + self.base
        if self.hashed:
            idx = (idx * 2654435761) % self.n_features
        return Phi(idx, self._ones)


class SubsetTileCoding:
    """Tile coding over every subset of ``size`` dimensions, side by side (Sutton & Barto 2018, sec. 9.5.4:
    tilings that ignore some dimensions): ``tilings`` tilings of ``bins`` tiles per dimension for each
    subset, one tile active per tiling per subset. ``size=2`` (pairs) can learn any function of two
    dimensions and sums of such functions; ``size=1`` an additive function of the dimensions. The table has
    C(d, size)·tilings·(bins+1)^size tiles instead of tilings·(bins+1)^d, so nothing is hashed and each tile
    is visited far more often than a tile of a full grid over many dimensions, which is what lets a linear
    Ĥ learn from a few hundred feedbacks in 6-d Acrobot (see ``make_features``).
    """

    def __init__(
        self, low, high, size: int = 2, tilings: int = 8, bins: int = 8, offsets: str = "asymmetric"
    ):
        low, high = tile_box(low, high)
        if not 1 <= size <= low.size:
            raise ConfigError(f"tile subsets need 1 <= size <= {low.size} (the dimensions), got {size}")
        grid = TileCoding(low[:size], high[:size], tilings, bins, offsets)  # one subset's offsets and strides
        self.groups = np.array(list(combinations(range(low.size), size)), dtype=np.int64)  # (G, size)
        self.low, self.bins, self.scale = low, bins, bins / (high - low)
        self.offsets, self.strides = grid.offsets, grid.strides  # (tilings, size), (size,)
        per_tiling = int(grid.side**size)
        self.base = np.arange(len(self.groups) * tilings, dtype=np.int64).reshape(-1, tilings) * per_tiling
        self.n_features = int(self.base.size) * per_tiling
        self._ones = read_only(np.ones(self.base.size))

    def __call__(self, obs) -> Phi:
        scaled = (np.asarray(obs, dtype=np.float64) - self.low) * self.scale
        scaled = np.minimum(np.maximum(scaled, -1.0), self.bins + 1.0)  # held near the box, as TileCoding's
        scaled = scaled[self.groups]  # (G, size)
        coords = np.floor(scaled[:, None, :] + self.offsets).astype(np.int64)  # (G, tilings, size)
        np.minimum(np.maximum(coords, 0, out=coords), self.bins, out=coords)
        return Phi((coords @ self.strides + self.base).ravel(), self._ones)


class RBF:
    """Gaussian radial basis functions on a regular grid of ``centers`` per dimension, widths relative to the
    spacing of the grid, over the same bounded box as tile coding. Dense: every feature is active."""

    def __init__(self, low, high, centers: int = 5, width: float = 1.0):
        low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))) or np.any(high <= low):
            raise ConfigError(
                f"RBF needs finite bounds with high > low, got {low.tolist()} and {high.tolist()}"
            )
        self.low, self.span = low, high - low
        grid = np.linspace(0.0, 1.0, centers)
        mesh = np.meshgrid(*([grid] * low.size), indexing="ij")
        self.centers = np.stack([m.ravel() for m in mesh], axis=1)  # (n, dims) in unit box
        self.inv_two_var = 1.0 / (2.0 * (width / (centers - 1)) ** 2)
        self.n_features = self.centers.shape[0] + 1  # + bias
        self._idx = np.arange(self.n_features)

    def __call__(self, obs) -> Phi:
        unit = (np.asarray(obs, dtype=np.float64) - self.low) / self.span
        d2 = ((self.centers - unit) ** 2).sum(axis=1)
        return Phi(self._idx, np.append(np.exp(-d2 * self.inv_two_var), 1.0))


class OneHot:
    """One feature per state of a ``Discrete`` space: a tabular model."""

    def __init__(self, n: int, start: int = 0):
        self.n_features, self.start = n, start
        self._one = read_only(np.ones(1))
        self._idx = [np.array([i], dtype=np.int64) for i in range(n)]

    def __call__(self, obs) -> Phi:
        return Phi(self._idx[int(obs) - self.start], self._one)


def _parse_bounds(text: str, name: str) -> list[float] | None:
    if not text:
        return None
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"{name} must be comma-separated numbers, got {text!r}") from None


def box_bounds(space: gym.spaces.Box, env_id: str, obs_low: str = "", obs_high: str = ""):
    """Bounds for a Box: the user's where given, else the space's, else our defaults for known envs."""
    low, high = space.low.astype(np.float64).ravel(), space.high.astype(np.float64).ravel()
    if env_id in DEFAULT_BOUNDS:
        dl, dh = (np.array(b, dtype=np.float64) for b in DEFAULT_BOUNDS[env_id])
        low = np.where(np.isfinite(low) & (np.abs(low) < 1e6), low, dl)
        high = np.where(np.isfinite(high) & (np.abs(high) < 1e6), high, dh)
    user_low, user_high = _parse_bounds(obs_low, "--obs-low"), _parse_bounds(obs_high, "--obs-high")
    for user, name in ((user_low, "--obs-low"), (user_high, "--obs-high")):
        if user is not None and len(user) != low.size:
            raise ConfigError(f"{name} needs {low.size} values for {env_id}, got {len(user)}")
    if user_low is not None:
        low = np.array(user_low)
    if user_high is not None:
        high = np.array(user_high)
    return low, high


# Full tile coding up to this many dimensions, every pair of dimensions above (a full grid over d dimensions
# has (bins+1)^d tiles per tiling: far more than a few hundred feedbacks can fill). Measured with
# experiments/defaults.py (TAMER, default teacher, mean of the last 5 of 20 episodes, 30 seeds): on 6-d
# Acrobot (oracle -79) a full grid (8 tilings of 9^6 tiles, hashed) reaches -166 ± 11, with 4 or 3 bins
# -124 / -117, RBFs with 3 centres per dimension -134; pairs -85 ± 3 (with 6 or 12 bins -89 / -93), each
# dimension alone -89 ± 5. On 4-d CartPole the full grid beats pairs (500 against 483 at the end, 431
# against 333 over all 20 episodes, at 4 steps/s).
FULL_TILING_MAX_DIMS = 4


def is_image(space: gym.Space) -> bool:
    """An image observation: a Box of shape (H, W) or (H, W, C), what the CNN reads (``tamer.deep``)."""
    return isinstance(space, gym.spaces.Box) and len(space.shape) in (2, 3)


def default_features(space: gym.Space) -> str:
    """What ``--features auto`` means for ``space``: onehot, tile or tile_pairs."""
    if isinstance(space, gym.spaces.Discrete):
        return "onehot"
    if isinstance(space, gym.spaces.Box) and len(space.shape) == 1 and space.shape[0] > FULL_TILING_MAX_DIMS:
        return "tile_pairs"
    return "tile"


def default_model(space: gym.Space) -> Literal["linear", "cnn"]:
    """What ``--model auto`` means for ``space``: the CNN for image observations (tile coding over pixel
    values makes no sense), else the linear model over ``--features``."""
    return "cnn" if is_image(space) else "linear"


def make_features(
    space: gym.Space,
    env_id: str = "",
    kind: str = "auto",
    tilings: int = 8,
    bins: int = 8,
    offsets: str = "asymmetric",
    rbf_centers: int = 5,
    rbf_width: float = 1.0,
    obs_low: str = "",
    obs_high: str = "",
) -> FeatureMap:
    """The feature map for an observation space. ``auto``: one-hot for Discrete; for a Box, tile coding up to
    ``FULL_TILING_MAX_DIMS`` dimensions and tile coding over every pair of dimensions above."""
    if kind == "auto":
        kind = default_features(space)
    if kind == "onehot":
        if not isinstance(space, gym.spaces.Discrete):
            raise ConfigError(f"one-hot features need a Discrete observation space, {env_id} has {space}")
        return OneHot(int(space.n), int(space.start))
    if kind not in ("tile", "tile_pairs", "tile_dims", "rbf"):
        raise ConfigError(f"unknown features {kind!r}; known: auto, tile, tile_pairs, tile_dims, rbf, onehot")
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise ConfigError(
            f"{kind} features need a 1-d Box observation space, {env_id} has {space}; "
            "image observations need the neural model"
        )
    low, high = box_bounds(space, env_id, obs_low, obs_high)
    if kind == "tile":
        return TileCoding(low, high, tilings=tilings, bins=bins, offsets=offsets)
    if kind in ("tile_pairs", "tile_dims"):
        size = 2 if kind == "tile_pairs" else 1
        return SubsetTileCoding(low, high, size, tilings=tilings, bins=bins, offsets=offsets)
    return RBF(low, high, centers=rbf_centers, width=rbf_width)
