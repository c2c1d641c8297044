"""Oracles for simulated teachers: which actions a competent human trainer would approve of in a state.

An oracle is a callable ``obs -> np.ndarray[bool]`` (one entry per discrete action). The simulated teacher
(``tamer.feedback.SimulatedTeacher``) calls it on every step it judges, so the oracles here do plain Python
float math on a few observation elements and return one of a handful of precomputed, read-only masks:
no allocation per call beyond unpacking the observation. Callers must not write to the returned mask.

``make_oracle(spec, env)`` builds the one a config's ``oracle`` field names: the env's built-in oracle, a
user's factory, a saved run's model (``run:PATH``) or the env's own immediate reward (``reward``).

``ORACLES`` maps an env's registered id to a factory that takes the (possibly wrapped) env and returns its
oracle; the factory gets the env because some oracles need to know the env (the grid world's layout), not
because they look at its current state: the teacher judges the observation it is given, which is the state
*before* the step, while the env has already moved on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from tamer.envs import env_id_of, make_env
from tamer.errors import ConfigError

Oracle = Callable[[Any], np.ndarray]

# Default of --oracle-margin (Config.oracle_margin) for run:PATH oracles, see margin_mask. Measured with the
# teachers of experiments/run_oracle.py, TAMER's mean return over the last 20% of its episodes: Acrobot (DQN
# teacher, 10 seeds x 100 episodes) -90.1 at margin 0, -93.7 at 0.05, -92.7 at 0.1 (a weaker DQN teacher,
# 6 seeds x 50 episodes: -148 at 0, -160 at 0.1, -322 at 0.25, which often approves two of three actions);
# Taxi (Sarsa teacher, 6 seeds x 1000 episodes) 6.68, 6.78, 6.61 at 0, 0.05, 0.1 and 6.27 at 0.25. Approving
# only the best is as good as any margin measured, and the simplest to explain.
DEFAULT_MARGIN = 0.0


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
    """Approve the actions on a shortest hazard-free path from the observed cell (BFS, precomputed); for
    either grid world, whichever observations it was made with (``obs_type``, also given as an argument)."""
    grid: Any = env.unwrapped  # envs.gridworld.GridWorldEnv
    return gridworld_pixels_oracle(env) if grid.obs_type == "pixels" else grid.optimal_actions


def gridworld_pixels_oracle(env: gym.Env) -> Oracle:
    """As ``gridworld_oracle``, reading the agent's cell out of the pixel observation.

    Privileged: the oracle knows the env's layout and palette (through ``env.unwrapped``), which a learner
    must not; that is what makes it a teacher. It takes the agent's position from the image it is asked
    about rather than from ``env.unwrapped``'s current state, because the teacher judges a step after the
    env has taken it: the env's state is then the *next* cell, and judging the action there would be wrong.
    """
    grid: Any = env.unwrapped
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
    "tamer/GridWorldPixels-v0": gridworld_oracle,
    "tamer/Tetris-v0": lambda env: __import__("tamer.tetris", fromlist=["x"]).tetris_oracle(env),
}


def make_oracle(spec: str, env: gym.Env, margin: float = DEFAULT_MARGIN) -> Oracle:
    """The oracle ``spec`` names, built for ``env``; every failure is one ConfigError line.

    - ``""``: the built-in oracle of the env, looked up by its registered id (``env.spec.id``, so
      ``gymnasium.envs.classic_control:MountainCar-v0`` or a wrapped env finds ``MountainCar-v0``'s);
    - an id in ``ORACLES`` (e.g. ``"CartPole-v1"``): that built-in oracle, for an env that shares its
      observations;
    - ``"package.module:function"``: a user's factory ``function(env) -> oracle``, as those in ``ORACLES``;
    - ``"run:PATH"``: a saved run's model (``run_oracle``; ``margin`` is ``--oracle-margin``);
    - ``"reward"``: the env's own immediate reward, one step ahead (``reward_oracle``; toy-text envs).
    """
    if spec.startswith("run:"):
        return run_oracle(spec[len("run:") :], env, margin)
    if spec == "reward":
        return reward_oracle(env)
    if spec in ORACLES:
        return ORACLES[spec](env)
    if ":" in spec:
        return user_oracle(spec, env)
    if spec:
        raise ConfigError(
            f"unknown oracle {spec!r}; give run:PATH, reward, package.module:function, "
            f"a built-in id ({', '.join(sorted(ORACLES))}), or nothing for the env's own"
        )
    env_id = env_id_of(env) if env is not None else ""
    factory = ORACLES.get(env_id)
    if factory is None:
        name = repr(env_id) if env_id else "this env (it has no registered id)"
        raise ConfigError(
            f"no built-in oracle for {name} (built-in: {', '.join(sorted(ORACLES))}); give one with "
            "--oracle run:PATH (a run folder from `tamer train --agent rl --out PATH` on this env), "
            "--oracle reward (the env's immediate reward, toy-text envs), or --oracle package.module:function"
        )
    return factory(env)


def user_oracle(spec: str, env: gym.Env) -> Oracle:
    """A user's ``package.module:function``, called with the env like the factories in ``ORACLES``."""
    from tamer.plugins import load_object

    factory = load_object(spec, "oracle")
    if not callable(factory):
        raise ConfigError(f"oracle {spec!r} is not callable (expected a function env -> oracle)")
    try:
        oracle = factory(env)
    except ConfigError:
        raise
    except Exception as e:  # a user's code may fail in any way
        raise ConfigError(f"oracle {spec!r} failed when built: {type(e).__name__}: {e}") from None
    if not callable(oracle):
        raise ConfigError(
            f"oracle {spec!r} returned {type(oracle).__name__}, not an oracle (a callable obs -> bool mask)"
        )
    return oracle


def margin_mask(values: np.ndarray, margin: float) -> np.ndarray:
    """Approve the actions whose value is within ``margin``·(max − min) of the best (ties always pass).

    Relative to the state's spread of values, so one margin means the same on any reward scale: 0 keeps the
    best action(s) only, 1 approves everything, and a state whose actions are all valued the same (one the
    run never visited) approves every action: the teacher has no opinion there, so nothing is punished."""
    values = np.asarray(values, dtype=np.float64)
    best = values.max()
    mask = values >= best - margin * (best - values.min())
    mask.flags.writeable = False
    return mask


def run_oracle(path: str | Path, env: gym.Env, margin: float = DEFAULT_MARGIN) -> Oracle:
    """A teacher who knows what a saved run learned: ``tamer train --out PATH`` (config.json + model.npz).

    The run's agent is rebuilt from its config over ``env``'s spaces and its model loaded. It approves the
    actions within ``margin`` of the best (``margin_mask``) by the run's own values: Q for ``--agent rl``
    (linear Sarsa/Q(λ) or DQN) and for ``tamer+rl`` (its RL learner, over the env's actions: what the
    run keeps once the teacher is gone), Ĥ for ``--agent tamer``. It reads only the observation it is given.
    A run's own feedback source is never built, so a run that was itself taught by ``run:`` loads nothing
    more. Stacked image frames (``--frame-stack`` > 1) need the episode's past frames, which a judgement of
    one observation does not have: refused.
    """
    from tamer.config import Config
    from tamer.session import make_agent  # here: tamer.session imports this module (and is heavy)

    if not 0.0 <= margin <= 1.0:
        raise ConfigError(f"oracle margin must be in [0, 1], got {margin}")
    run = Path(path)
    if not (run / "config.json").is_file():
        raise ConfigError(f"--oracle run:{path}: {run} is not a run folder (no config.json)")
    if not (run / "model.npz").is_file():
        raise ConfigError(f"--oracle run:{path}: {run} has no model.npz (did the run finish an episode?)")
    cfg = Config.load(run / "config.json")
    if cfg.frame_stack > 1:
        raise ConfigError(f"--oracle run:{path}: a run with --frame-stack > 1 cannot judge one observation")
    run_env = make_env(cfg.env)
    try:
        theirs = run_env.observation_space, run_env.action_space
    finally:
        run_env.close()
    ours = env.observation_space, env.action_space
    if theirs != ours:
        raise ConfigError(
            f"--oracle run:{path}: the run was trained on {cfg.env} (observations {theirs[0]}, actions "
            f"{theirs[1]}), which does not fit {env_id_of(env, 'this env')} (observations {ours[0]}, "
            f"actions {ours[1]})"
        )
    actions = ours[1]
    assert isinstance(actions, gym.spaces.Discrete)  # as the run's, from make_env
    n = int(actions.n)
    agent = make_agent(cfg, env, np.random.default_rng(0))
    try:
        agent.load(run / "model.npz")
    except ConfigError as e:
        raise ConfigError(f"--oracle run:{path}: {e} (was it trained on another env?)") from None
    except Exception as e:  # a corrupt or truncated file
        raise ConfigError(f"--oracle run:{path}: cannot load model.npz: {type(e).__name__}: {e}") from None
    if cfg.agent == "tamer":
        part, values = agent.h, agent.h.predict
    else:
        part, values = agent.rl, agent.rl.values
    encode = part.encode

    def oracle(obs) -> np.ndarray:
        return margin_mask(values(encode(obs))[:n], margin)

    return oracle


def reward_oracle(env: gym.Env) -> Oracle:
    """Approve the actions with the best expected immediate reward from the observed state, one step ahead.

    Needs the env's transition table ``env.unwrapped.P[s][a] = [(prob, next_state, reward, done), ...]``
    (gymnasium's toy-text envs: FrozenLake, CliffWalking, Taxi) and Discrete observations; anything else is
    refused. Myopic: it is a good teacher only where the immediate reward already tells good actions from bad.
    On Taxi it catches illegal pick-ups/drop-offs (-10) and rewards the right drop-off (+20), on CliffWalking
    it forbids stepping off the cliff (-100), and everywhere else every action costs the same -1, so it
    approves them all: it teaches what not to do, not the way to the goal. Where rewards are sparse
    (FrozenLake: 0 until the goal) it approves nearly everything and teaches nearly nothing; for a real policy
    use ``run:PATH``.
    """
    table = getattr(env.unwrapped, "P", None)
    space, actions = env.observation_space, env.action_space
    discrete = isinstance(space, gym.spaces.Discrete) and isinstance(actions, gym.spaces.Discrete)
    if not isinstance(table, dict) or not discrete:
        raise ConfigError(
            "--oracle reward needs a toy-text env (Discrete observations and a transition table "
            f"env.unwrapped.P); {env_id_of(env, type(env.unwrapped).__name__)} has none: "
            "use --oracle run:PATH"
        )
    assert isinstance(space, gym.spaces.Discrete) and isinstance(actions, gym.spaces.Discrete)
    n, start = int(actions.n), int(space.start)
    masks = []
    for s in range(start, start + int(space.n)):
        expected = [sum(p * float(r) for p, _, r, *_ in table[s][a]) for a in range(n)]
        masks.append(margin_mask(np.round(expected, 9), 0.0))  # rounded: sums of probabilities tie

    def oracle(obs) -> np.ndarray:
        return masks[int(obs) - start]

    return oracle


def oracle_action(mask: np.ndarray) -> int:
    """The first approved action: a deterministic policy from an oracle, to measure how good it is."""
    return int(np.flatnonzero(mask)[0])


# Episodes of an env without a time limit of its own (CliffWalking) end here when evaluating an oracle: a
# deterministic policy from a myopic oracle (``reward``) can walk in circles for ever.
EVAL_MAX_STEPS = 1000


def evaluate_oracle(
    env_id: str,
    episodes: int = 20,
    seed: int = 0,
    spec: str = "",
    margin: float = DEFAULT_MARGIN,
    max_steps: int = 0,
) -> tuple[float, float]:
    """Mean and standard deviation of the return of the oracle's policy (``oracle_action``: its first
    approved action), episodes seeded seed..seed+n-1. ``spec`` names the oracle as ``make_oracle`` takes it;
    ``max_steps`` caps episodes (0: the env's own limit, else ``EVAL_MAX_STEPS``).

    The reference line a learning curve is compared with: a TAMER agent trained by this teacher can at
    best match it.
    """
    env = make_env(env_id, max_steps=max_steps)
    if not max_steps and env.spec is not None and env.spec.max_episode_steps is None:
        env.close()
        env = make_env(env_id, max_steps=EVAL_MAX_STEPS)
    try:
        oracle = make_oracle(spec, env, margin)
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
