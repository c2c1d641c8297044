"""Demonstrations: a person (or a simulated one) plays, and every (episode, observation, action) is kept.

Where they come from, each giving the same ``Demonstrations``:

- ``demonstrate``: a simulated demonstrator that plays with an oracle (any of ``tamer.oracles``: built-in,
  a user's function, a saved run), taking one of the actions the oracle approves of, and with probability
  ``error_rate`` a uniformly random action instead, until its episode count or step budget is spent;
- a live session recorded with ``tamer play --demonstrate`` (its ``steps.csv`` holds every step's time,
  observation and the person's action);
- a file written by ``Demonstrations.save`` (``.npz``).

Human effort is counted in steps and in seconds at the teaching pace: a person needs 1/step_rate seconds to
demonstrate one step, whether they are real or simulated.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np

from tamer.errors import ConfigError
from tamer.io import write_atomic


@dataclass
class Demonstrations:
    """Steps of demonstrated play, in order; ``seconds`` is the human time they took."""

    obs: np.ndarray  # (steps, *observation shape)
    actions: np.ndarray  # (steps,) int64
    episodes: np.ndarray  # (steps,) the episode each step belongs to
    seconds: float

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def n_episodes(self) -> int:
        return len(np.unique(self.episodes))

    def save(self, path: Path) -> None:
        def write(tmp: Path) -> None:
            np.savez(tmp, obs=self.obs, actions=self.actions, episodes=self.episodes, seconds=self.seconds)

        write_atomic(Path(path), write)

    @classmethod
    def load(cls, path: Path) -> Demonstrations:
        try:
            with np.load(path) as data:
                obs, actions = data["obs"], data["actions"].astype(np.int64)
                episodes, seconds = data["episodes"].astype(np.int64), float(data["seconds"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            raise ConfigError(f"cannot read demonstrations {path}: {e}") from None
        if not (len(obs) == len(actions) == len(episodes)):
            raise ConfigError(f"demonstrations {path}: obs, actions and episodes differ in length")
        return cls(obs, actions, episodes, seconds)


def demonstrate(
    env: gym.Env,
    oracle,
    rng: np.random.Generator,
    *,
    episodes: int = 5,
    steps: int = 0,
    error_rate: float = 0.0,
    step_rate: float = 10.0,
    seed: int = 0,
) -> Demonstrations:
    """A simulated demonstrator plays ``episodes`` episodes (seeded ``seed``, ``seed`` + 1, ...) or until
    ``steps`` steps (0 = no budget), whichever ends first; an episode cut by the budget is kept as far as it
    went. Each step: an approved action chosen at random, or with probability ``error_rate`` any action."""
    n = int(env.action_space.n)  # type: ignore[attr-defined]
    obs_list: list[np.ndarray] = []
    actions: list[int] = []
    episode_ids: list[int] = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        done = False
        while not done and not (steps and len(actions) >= steps):
            approved = np.flatnonzero(oracle(obs))
            if rng.random() < error_rate or not len(approved):
                action = int(rng.integers(n))
            else:
                action = int(approved[rng.integers(len(approved))]) if len(approved) > 1 else int(approved[0])
            obs_list.append(np.array(obs, copy=True))
            actions.append(action)
            episode_ids.append(episode)
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
        if steps and len(actions) >= steps:
            break
    if not actions:
        raise ConfigError("the demonstrator gave no steps (episodes and step budget must be >= 1)")
    return Demonstrations(
        np.stack(obs_list), np.array(actions, dtype=np.int64), np.array(episode_ids), len(actions) / step_rate
    )


def load_demonstrations(source: str | Path, space: gym.Space) -> Demonstrations:
    """Demonstrations from a ``.npz`` file, a ``tamer play --demonstrate`` session folder or its steps.csv."""
    path = Path(source)
    if path.is_dir():
        path = path / "steps.csv"
    if not path.is_file():
        raise ConfigError(f"no demonstrations at {source} (a .npz file, a session folder or its steps.csv)")
    if path.suffix == ".npz":
        return Demonstrations.load(path)
    from tamer.live import read_steps

    rows = read_steps(path, space)
    if not rows:
        raise ConfigError(f"{path} holds no steps")
    if any(r.obs is None for r in rows):
        raise ConfigError(f"{path}: observations too large to be logged; demonstrations need them")
    seconds = sum(r.t_end - r.t_start for r in rows)
    episode_ids = np.array([r.run * 1_000_000 + r.episode for r in rows])
    return Demonstrations(
        np.stack([np.asarray(r.obs) for r in rows]),
        np.array([r.action for r in rows], dtype=np.int64),
        episode_ids,
        float(seconds),
    )
