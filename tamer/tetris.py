"""Tetris for TAMER: the 46 features of Knox & Stone's Tetris agent over afterstates, the hand-tuned board
evaluations of Dellacherie and El-Tetris, the simulated teacher's oracle built on them, and the afterstate
models (a linear Ĥ and Sarsa(λ)/Q(λ)) that read the features (Knox & Stone, ICDL 2008 / K-CAP 2009).

**The 46 features** of a board (``board_features``, in this order): the 10 column heights, the maximum
height, the 9 absolute differences of adjacent heights, the number of holes (empty cells below their
column's top), the maximum well depth and the sum of the well depths (a column's well depth is how far it
lies below the lower of its two neighbours, a wall counting as a neighbour of height 20; 0 if it is not
below both), then the squares of those 23. ``TetrisFeatures`` divides the 23 by 20 (the board's height)
before squaring, so every feature is of order 1 (holes and the sum of wells can exceed 1), and appends a
constant 1 (a bias: Ĥ's level, the same for every action), so ``n_features`` is 47.

**Afterstates.** In the papers Ĥ(s, a) is a function of the board *after* placing the piece with a (and
clearing lines): one weight vector scores every placement. The framework's models are per action
(``w[a] · φ(s)``), so the feature map hands over both, in one ``TetrisPhi``:

- ``after``: a (40, 47) matrix, the features of each action's afterstate, with ``lines`` (lines each
  placement clears) and ``over`` (placements that top out);
- ``idx``/``val``: the current board's own 47 features as a plain sparse ``Phi``, so a per-action model
  (``tamer.models.LinearModel``, ``tamer.rl.LinearTD``, β's region schedule) still runs on it.

``tamer.session`` builds the afterstate models whenever the feature map is this one: ``AfterstateLinear`` for
``--model linear`` (Ĥ(s, a) = w · φ(after(s, a)), one shared w, the same normalised gradient step as
``LinearModel``) and ``AfterstateTD`` for ``--rl sarsa/qlearning`` (Q(s, a) = r(s, a) + w · φ(after(s, a)):
the lines a placement clears are known before it is made, and the weights learn the afterstate's value,
Sutton & Barto's afterstate formulation). The kNN Ĥ (``tamer.knn``) reads ``after`` too.

**Evaluations.** ``dellacherie_features``: landing height (the middle of the placed piece), eroded piece
cells (lines cleared × the piece's cells in them), row transitions (filled/empty changes along each of
the 20 rows, the walls filled), column transitions (along each column, the floor filled, nothing counted
above the top row), holes, and cumulative wells (for every run of n well cells, empty cells whose left
and right are filled or a wall, 1 + 2 + ... + n). ``EVALUATIONS`` weights them: Dellacherie's hand-tuned
(-1, 1, -1, -1, -4, -1) and El-Tetris's (El-Ashi 2011, tuned by particle swarm). A placement that tops out
is worth -inf.

**The teacher** (``tetris_oracle``; ``tamer.oracles.ORACLES["tamer/Tetris-v0"]``) approves the placements
whose evaluation lies within ``margin`` of the best, relative to the spread over the placements that fit:
v >= best - margin·(best - worst). Placements that top out are never approved (unless every one does).
The rest of the teacher (how often it judges, its errors and delay) is ``tamer.feedback.SimulatedTeacher``'s.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np

from envs.tetris import COLS, N_ACTIONS, PIECE_HEIGHT, ROWS, Afterstates, afterstates, column_heights, decode
from tamer.errors import ConfigError
from tamer.feedback import SimulatedTeacher
from tamer.rl import EpsilonSchedule, TDLearner

N_BASE = 23  # heights (10), max height, differences (9), holes, max well, sum of wells
N_TETRIS_FEATURES = 2 * N_BASE + 1  # the 46 and a bias
FEATURE_NAMES = (
    [f"height {c + 1}" for c in range(COLS)]
    + ["max height"]
    + [f"|h{c + 1} - h{c + 2}|" for c in range(COLS - 1)]
    + ["holes", "max well depth", "sum of wells"]
)
FEATURE_NAMES = FEATURE_NAMES + [f"({n})^2" for n in FEATURE_NAMES] + ["bias"]
FEATURE_SCALE = float(ROWS)

TETRIS_ENV_IDS = ("tamer/Tetris-v0",)

# Weights of (landing height, eroded piece cells, row transitions, column transitions, holes, wells).
EVALUATIONS: dict[str, np.ndarray] = {
    "dellacherie": np.array([-1.0, 1.0, -1.0, -1.0, -4.0, -1.0]),
    "eltetris": np.array(
        [
            -4.500158825082766,
            3.4181268101392694,
            -3.2178882868487753,
            -9.348695305445199,
            -7.899265427351652,
            -3.3855972247263626,
        ]
    ),
}
# Teacher's default margin (relative to the spread of the placements' values); see experiments/tetris.py.
DEFAULT_TETRIS_MARGIN = 0.05


# ---- features --------------------------------------------------------------------------------------------


def board_features(boards: np.ndarray) -> np.ndarray:
    """The 23 raw features (unscaled, see the module docstring) of a board (20, 10) or boards (n, 20, 10)."""
    boards = np.asarray(boards, dtype=bool)
    single = boards.ndim == 2
    boards = boards[None] if single else boards
    heights = column_heights(boards)  # (n, 10)
    holes = heights.sum(axis=1) - boards.sum(axis=(1, 2))
    walls = np.full((heights.shape[0], 1), ROWS)
    padded = np.concatenate((walls, heights, walls), axis=1)
    depth = np.maximum(np.minimum(padded[:, :-2], padded[:, 2:]) - heights, 0)
    out = np.concatenate(
        (
            heights,
            heights.max(axis=1, keepdims=True),
            np.abs(np.diff(heights, axis=1)),
            holes[:, None],
            depth.max(axis=1, keepdims=True),
            depth.sum(axis=1, keepdims=True),
        ),
        axis=1,
    ).astype(np.float64)
    return out[0] if single else out


def scaled_features(raw: np.ndarray) -> np.ndarray:
    """The 23 raw features (…, 23) -> the model's 47: raw/20, their squares, and a constant 1."""
    x = np.asarray(raw, dtype=np.float64) / FEATURE_SCALE
    return np.concatenate((x, x * x, np.ones(x.shape[:-1] + (1,))), axis=-1)


class TetrisPhi(NamedTuple):
    """A Tetris state as the models read it (see the module docstring)."""

    idx: np.ndarray  # the current board's features, as a sparse Phi (all 47 indices)
    val: np.ndarray
    after: np.ndarray  # (40, 47): each placement's afterstate features
    lines: np.ndarray  # (40,) lines each placement clears
    over: np.ndarray  # (40,) bool: the placement tops out

    def relative(self) -> np.ndarray:
        """(40, 47): each afterstate's features minus the current board's, the bias kept."""
        out = self.after - self.val
        out[:, -1] = self.after[:, -1]
        return out


class _Cache:
    """The last few observations' afterstates: the feature map and the teacher's oracle look at the same
    observation every step, and computing 40 placements twice would double the cost of a step."""

    def __init__(self, size: int = 4):
        self.size = size
        self.items: OrderedDict[bytes, tuple[np.ndarray, int, Afterstates]] = OrderedDict()

    def __call__(self, obs) -> tuple[np.ndarray, int, Afterstates]:
        obs = np.asarray(obs)
        key = obs.tobytes()
        hit = self.items.get(key)
        if hit is None:
            board, piece = decode(obs)
            hit = self.items[key] = (board, piece, afterstates(board, piece))
            if len(self.items) > self.size:
                self.items.popitem(last=False)
        return hit


placements = _Cache()


class TetrisFeatures:
    """The feature map of ``--features tetris``: observation -> ``TetrisPhi`` (afterstate features).

    ``gain`` multiplies every feature but the bias; ``bias`` is the constant feature's value."""

    afterstate = True  # tamer.session builds the afterstate models over this map
    n_features = N_TETRIS_FEATURES
    names = tuple(FEATURE_NAMES)

    def __init__(self, gain: float = 1.0, bias: float = 1.0):
        self.gain, self.bias = gain, bias
        self._idx = np.arange(N_TETRIS_FEATURES)

    def _scale(self, raw: np.ndarray) -> np.ndarray:
        x = scaled_features(raw)
        x[..., :-1] *= self.gain
        x[..., -1] = self.bias
        return x

    def __call__(self, obs) -> TetrisPhi:
        board, _, after = placements(obs)
        state = self._scale(board_features(board))
        return TetrisPhi(self._idx, state, self._scale(board_features(after.boards)), after.lines, after.over)


def check_tetris_space(space: gym.Space, env_id: str = "") -> None:
    n = ROWS * COLS + 7
    if not isinstance(space, gym.spaces.Box) or space.shape != (n,):
        raise ConfigError(
            f"--features tetris reads tamer/Tetris-v0's observations (a Box of {n}: board and piece), "
            f"{env_id or 'this env'} has {space}"
        )


def is_tetris(env_id: str) -> bool:
    return env_id in TETRIS_ENV_IDS


def tetris_features(cfg, env: gym.Env) -> Any:
    """The Tetris feature map when the config asks for it (``--features tetris``, or ``auto`` on Tetris);
    None otherwise (``tamer.session`` then builds the usual feature maps)."""
    from tamer.envs import env_id_of

    if cfg.features == "auto" and is_tetris(env_id_of(env, cfg.env)) or cfg.features == "tetris":
        check_tetris_space(env.observation_space, env_id_of(env, cfg.env))
        return TetrisFeatures()
    return None


# ---- hand-tuned evaluations and the teacher ---------------------------------------------------------------


def dellacherie_features(after: Afterstates, piece: int) -> np.ndarray:
    """(40, 6): landing height, eroded piece cells, row transitions, column transitions, holes, cumulative
    wells of each placement (see the module docstring)."""
    boards = after.boards
    n = boards.shape[0]
    landing = after.base + (PIECE_HEIGHT[piece] - 1) / 2.0
    walled = np.ones((n, ROWS, COLS + 2), dtype=bool)
    walled[:, :, 1:-1] = boards
    row_trans = (walled[:, :, 1:] != walled[:, :, :-1]).sum(axis=(1, 2))
    floored = np.ones((n, ROWS + 1, COLS), dtype=bool)
    floored[:, 1:] = boards
    col_trans = (floored[:, 1:] != floored[:, :-1]).sum(axis=(1, 2))
    holes = column_heights(boards).sum(axis=1) - boards.sum(axis=(1, 2))
    well = ~boards & walled[:, :, :-2] & walled[:, :, 2:]  # (n, 20, 10) empty, both sides filled
    run = np.zeros((n, COLS), dtype=np.int64)
    wells = np.zeros(n, dtype=np.int64)
    for r in range(ROWS - 1, -1, -1):  # top down: a run of k well cells adds 1 + 2 + ... + k
        run = (run + 1) * well[:, r]
        wells += run.sum(axis=1)
    return np.stack([landing, after.eroded, row_trans, col_trans, holes, wells], axis=1).astype(np.float64)


def evaluate(board: np.ndarray, piece: int, weights: str | np.ndarray = "dellacherie") -> np.ndarray:
    """(40,) value of each placement of ``piece`` on ``board`` under an evaluation (-inf: tops out)."""
    w = EVALUATIONS[weights] if isinstance(weights, str) else np.asarray(weights, dtype=np.float64)
    after = afterstates(board, piece)
    return _values(after, piece, w)


def _values(after: Afterstates, piece: int, w: np.ndarray) -> np.ndarray:
    values = dellacherie_features(after, piece) @ w
    return np.where(after.over, -np.inf, values)


def approve(values: np.ndarray, margin: float) -> np.ndarray:
    """The placements within ``margin``·(best − worst) of the best, over those that fit; all of them when
    every placement tops out (there is nothing better to say)."""
    fits = np.isfinite(values)
    if not fits.any():
        return np.ones(values.shape, dtype=bool)
    best, worst = values[fits].max(), values[fits].min()
    return fits & (values >= best - margin * (best - worst) - 1e-9)


def tetris_oracle(
    env: gym.Env | None = None, margin: float = DEFAULT_TETRIS_MARGIN, weights: str = "dellacherie"
):
    """The simulated Tetris teacher's oracle: obs -> bool mask of the approved placements (read-only)."""
    if not 0.0 <= margin <= 1.0:
        raise ConfigError(f"Tetris oracle margin must be in [0, 1], got {margin}")
    if weights not in EVALUATIONS:
        raise ConfigError(f"unknown Tetris evaluation {weights!r}; known: {', '.join(EVALUATIONS)}")
    w = EVALUATIONS[weights]

    def oracle(obs) -> np.ndarray:
        _, piece, after = placements(obs)
        mask = approve(_values(after, piece, w), margin)
        mask.flags.writeable = False
        return mask

    return oracle


def eltetris_oracle(env: gym.Env | None = None):
    """As ``tetris_oracle`` with El-Tetris's weights (``--oracle tamer.tetris:eltetris_oracle``)."""
    return tetris_oracle(env, weights="eltetris")


class PlacementTeacher(SimulatedTeacher):
    """The simulated teacher of Knox & Stone's Tetris timing: it judges a placement once it has landed.

    In the original the agent's placement is decided when its step starts and the piece drops while the step
    lasts, so a trainer sees the result at the step's *end* and presses a key 0.2-0.8 s later, while the
    next placement is under way; that is why the papers credit the previous step. ``SimulatedTeacher``
    instead sees a step at a moment uniform over its interval (a continuous-control step is on screen the
    whole time), which at one placement a second sends half its feedback into the step itself and half
    into the next, so previous-step credit would be wrong half the time. This teacher is
    ``SimulatedTeacher`` with the moment seen moved to the step's end; everything else (the oracle, the
    probability of judging, errors, delay density, fatigue, leaving) is the config's, as for the built-in
    teacher. ``--teacher tamer.tetris:PlacementTeacher`` (``(margin=0.1, weights="eltetris")`` to change
    the oracle; ``--oracle`` given wins)."""

    def __init__(
        self,
        cfg,
        env: gym.Env,
        rng: np.random.Generator,
        margin: float = DEFAULT_TETRIS_MARGIN,
        weights: str = "dellacherie",
    ):
        from tamer.credit import make_delay
        from tamer.oracles import make_oracle
        from tamer.session import teacher_leaves

        oracle = make_oracle(cfg.oracle, env) if cfg.oracle else tetris_oracle(env, margin, weights)
        delay = make_delay(cfg.delay, cfg.delay_min, cfg.delay_max, cfg.gamma_shape, cfg.gamma_scale)
        super().__init__(
            oracle,
            delay,
            rng,
            cfg.feedback_prob,
            cfg.error_rate,
            cfg.feedback_mode,
            cfg.fatigue,
            teacher_leaves(cfg),
        )

    def observe(self, obs, action: int, t_start: float, t_end: float, episode: int) -> None:
        super().observe(obs, action, t_end, t_end, episode)  # seen when the piece lands: the step's end


def best_placement(obs, weights: str = "dellacherie") -> int:
    """The best placement under an evaluation (first of ties): the teacher's own policy."""
    _, piece, after = placements(obs)
    return int(np.argmax(_values(after, piece, EVALUATIONS[weights])))


# ---- afterstate models ------------------------------------------------------------------------------------


class AfterstateLinear:
    """Ĥ(s, a) = w · φ(after(s, a)): one weight vector shared by every placement (the papers' model).

    ``relative`` (the default) reads each afterstate's features minus the current board's (the bias kept):
    for any w the placements of one state rank exactly as over the afterstate features themselves (the
    difference is w · φ(s), the same for every action), but the regression fits far better, because a
    teacher judges a placement against the other placements of the same board, not against boards in
    general: the afterstate features carry the board's level, which the labels do not (measured in
    experiments/tetris.py). ``update`` is ``LinearModel``'s: one gradient step on Σ credit·(h − Ĥ)² per
    feedback, normalised by ||φ||², so ``lr`` means the same as for the per-action model."""

    def __init__(self, features: TetrisFeatures, n_actions: int, lr: float = 0.2, relative: bool = True):
        self.features, self.n_actions, self.lr, self.relative = features, n_actions, lr, relative
        self.w = np.zeros(features.n_features)

    def encode(self, obs) -> TetrisPhi:
        return self.features(obs)

    def inputs(self, x: TetrisPhi) -> np.ndarray:
        """(40, 47): what w scores for each placement."""
        return x.relative() if self.relative else x.after

    def predict(self, x: TetrisPhi) -> np.ndarray:
        return self.inputs(x) @ self.w

    def update(self, xs: Sequence[TetrisPhi], actions: Sequence[int], credits: Sequence[float], hs) -> None:
        if not xs:
            return
        phi = np.array([self.inputs(x)[a] for x, a in zip(xs, actions, strict=True)])
        error = np.asarray(hs, dtype=np.float64) - phi @ self.w
        norm = np.maximum((phi * phi).sum(axis=1), 1e-12)  # all-zero features (bias 0) change nothing
        self.w += (self.lr * np.asarray(credits) * error / norm) @ phi

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"w": self.w.copy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        if state["w"].shape != self.w.shape:
            raise ConfigError(f"saved model has shape {state['w'].shape}, this config needs {self.w.shape}")
        self.w[...] = state["w"]


class AfterstateTD(TDLearner):
    """Sarsa(λ) (or Watkins's Q(λ)) on afterstates: Q(s, a) = r(s, a) + w · φ(after(s, a)) + q_init.

    The TD error is the usual δ = r + γ Q(s', a') − Q(s, a); with Q(s, a) = r(s, a) + V(after) that is
    γ Q(s', a') − V(after): w learns the value of an afterstate. Traces accumulate (the features are dense
    and real-valued, so replacing traces do not apply) and the step is normalised by ||φ||² like
    ``tamer.rl.LinearTD``'s, so ``--rl-lr`` means the same. The interface is LinearTD's, blends included.
    """

    def __init__(
        self,
        features: TetrisFeatures,
        n_actions: int,
        method: str = "sarsa",
        lr: float = 0.5,
        gamma: float = 1.0,
        lam: float = 0.9,
        q_init: float = 0.0,
        epsilon=None,
    ):
        if method not in ("sarsa", "qlearning"):
            raise ConfigError(f"unknown linear RL method {method!r}; known: sarsa, qlearning")
        if n_actions != N_ACTIONS:
            raise ConfigError(
                f"afterstate RL has one value per placement ({N_ACTIONS}), not {n_actions} actions"
            )
        self.features, self.n_actions, self.method = features, n_actions, method
        self.lr, self.gamma, self.lam, self.q_init = lr, gamma, lam, q_init
        self.n = features.n_features
        self.w = np.zeros(self.n)
        self.trace = np.zeros(self.n)
        self.schedule = epsilon or EpsilonSchedule()
        self.episode = 0

    def encode(self, obs) -> TetrisPhi:
        return self.features(obs)

    def values(self, x: TetrisPhi) -> np.ndarray:
        return x.lines + x.after @ self.w + self.q_init

    def update(
        self,
        x: TetrisPhi,
        action: int,
        reward: float,
        x_next: TetrisPhi | None,
        action_next: int | None,
        terminated: bool,
        offset: float = 0.0,
        offset_next: np.ndarray | None = None,
    ) -> float:
        phi = x.after[action]
        delta = reward - (x.lines[action] + phi @ self.w + self.q_init + offset)
        cut = False
        if not terminated and x_next is not None:
            q_next = self.values(x_next)
            if offset_next is not None:
                q_next = q_next + offset_next
            greedy_next = q_next.max()
            use_greedy = self.method == "qlearning" or action_next is None
            delta += self.gamma * (greedy_next if use_greedy else q_next[action_next])
            cut = self.method == "qlearning" and action_next is not None and q_next[action_next] < greedy_next
        self.trace = self.gamma * self.lam * self.trace + phi
        self.w += (self.lr * delta / (phi @ phi)) * self.trace
        if action_next is None or terminated or cut:
            self.trace[...] = 0.0
        return float(delta)

    def invalidate(self) -> None:
        pass  # nothing cached

    def clear_traces(self, active: np.ndarray | None = None) -> None:
        self.trace[...] = 0.0
