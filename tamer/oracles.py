"""Oracles for simulated teachers: which actions a competent human trainer would approve of in a state.

An oracle is a callable ``obs -> np.ndarray[bool]`` (one entry per discrete action). The simulated teacher
(``tamer.feedback.SimulatedTeacher``) calls it on every step it judges, so the oracles here do plain Python
float math on a few observation elements and return one of a handful of precomputed, read-only masks:
no allocation per call beyond unpacking the observation. Callers must not write to the returned mask.

``ORACLES`` maps an env id to a factory that takes the (possibly wrapped) env and returns its oracle;
the factory gets the env because some oracles need to know the env (the grid world's layout), not because
they look at its current state: the teacher judges the observation it is given, which is the state *before*
the step, while the env has already moved on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from tamer.errors import ConfigError

Oracle = Callable[[Any], np.ndarray]


def _one_hot_masks(n: int) -> tuple[np.ndarray, ...]:
    """One read-only mask per action approving only that action; shared by every call of an oracle."""
    masks = []
    for a in range(n):
        m = np.zeros(n, dtype=bool)
        m[a] = True
        m.flags.writeable = False
        masks.append(m)
    return tuple(masks)


def mountain_car_oracle(env: gym.Env | None = None) -> Oracle:
    """Energy pumping: push the way the car is already moving, so every swing climbs higher.

    At zero velocity (only the first step of an episode, in practice) push right: measured over 20 seeds it
    gives -120 ± 3, while pushing left first gives -124 ± 34 (some starts then need an extra swing).
    """
    left, _, right = _one_hot_masks(3)

    def oracle(obs) -> np.ndarray:
        return left if float(obs[1]) < 0.0 else right

    return oracle


# Gains of the CartPole controller on (x, x_dot, theta, theta_dot); push right when the sum is positive.
# The pole terms balance; the small cart terms keep the cart from drifting off the track (their positive
# sign is the usual non-minimum-phase one: to bring the cart back left the pole must first lean left,
# so the cart is pushed right first). Balances all 500 steps on every one of 100 seeds tried.
CARTPOLE_GAINS = (0.05, 0.2, 1.0, 0.3)


def cartpole_oracle(env: gym.Env | None = None) -> Oracle:
    """Linear state feedback: push towards the side the pole leans/falls, corrected for cart drift."""
    left, right = _one_hot_masks(2)
    kx, kv, kth, kw = CARTPOLE_GAINS

    def oracle(obs) -> np.ndarray:
        x, v, th, w = obs.tolist()
        return right if kx * x + kv * v + kth * th + kw * w > 0.0 else left

    return oracle


# Acrobot: torque on the elbow in the sign of theta2_dot + ACROBOT_K1 * theta1_dot. Following the elbow's
# own swing pumps energy into the chain; the shoulder term (tuned over 100 seeds, k1 in [-3, 0.2]) makes it
# swing up in fewer pumps: k1=-0.5 -> -79 mean return, k1=0 -> -84, k1>0 sometimes never swings up.
ACROBOT_K1 = -0.5


def acrobot_oracle(env: gym.Env | None = None) -> Oracle:
    """Energy pumping: full torque with the elbow's swing (see ACROBOT_K1); never approves zero torque."""
    negative, _, positive = _one_hot_masks(3)
    k1 = ACROBOT_K1

    def oracle(obs) -> np.ndarray:
        return positive if float(obs[5]) + k1 * float(obs[4]) > 0.0 else negative

    return oracle


def gridworld_oracle(env: gym.Env) -> Oracle:
    """Approve the actions on a shortest hazard-free path from the observed cell (BFS, precomputed)."""
    return env.unwrapped.optimal_actions


def gridworld_pixels_oracle(env: gym.Env) -> Oracle:
    """As ``gridworld_oracle``, reading the agent's cell out of the pixel observation.

    Privileged: the oracle knows the env's layout and palette (through ``env.unwrapped``), which a learner
    must not; that is what makes it a teacher. It takes the agent's position from the image it is asked
    about rather than from ``env.unwrapped``'s current state, because the teacher judges a step after the
    env has taken it: the env's state is then the *next* cell, and judging the action there would be wrong.
    """
    grid = env.unwrapped
    cell_from_pixels, optimal = grid.cell_from_pixels, grid.optimal_actions

    def oracle(obs) -> np.ndarray:
        return optimal(cell_from_pixels(obs))

    return oracle


ORACLES: dict[str, Callable[[gym.Env], Oracle]] = {
    "MountainCar-v0": mountain_car_oracle,
    "CartPole-v0": cartpole_oracle,
    "CartPole-v1": cartpole_oracle,
    "Acrobot-v1": acrobot_oracle,
    "tamer/GridWorld-v0": gridworld_oracle,
    "tamer/GridWorldPixels-v0": gridworld_pixels_oracle,
}


def make_oracle(env_id: str, env: gym.Env) -> Oracle:
    """The oracle for ``env_id``, built for ``env``; a ConfigError so the CLI can report it in one line."""
    factory = ORACLES.get(env_id)
    if factory is None:
        raise ConfigError(f"no oracle for env {env_id!r}; known: {', '.join(sorted(ORACLES))}")
    return factory(env)


def oracle_action(mask: np.ndarray) -> int:
    """The first approved action: a deterministic policy from an oracle, to measure how good it is."""
    return int(np.flatnonzero(mask)[0])


def evaluate_oracle(env_id: str, episodes: int = 20, seed: int = 0) -> tuple[float, float]:
    """Mean and standard deviation of the return of the oracle's policy, episodes seeded seed..seed+n-1.

    The reference line a learning curve is compared with: a TAMER agent trained by this teacher can at
    best match it.
    """
    from tamer.train import make_env

    env = make_env(env_id)
    try:
        oracle = make_oracle(env_id, env)
        returns = []
        for i in range(episodes):
            obs, _ = env.reset(seed=seed + i)
            total, done = 0.0, False
            while not done:
                obs, reward, terminated, truncated, _ = env.step(oracle_action(oracle(obs)))
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
    finally:
        env.close()
    return float(np.mean(returns)), float(np.std(returns))
