"""Making environments: ``gym.make`` with our environments registered, refusing what TAMER cannot drive.

``env_id`` is anything ``gym.make`` takes, including gymnasium's ``package.module:Env-v0`` form, which imports
a user's module (registering its environments) first, optionally with the env's keyword arguments as Python
literals: ``FrozenLake-v1(is_slippery=False, map_name="8x8")``. Code that needs to know *which* environment it
got reads ``env.spec.id`` (the registered id), never the text the user typed.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from tamer.errors import ConfigError


def make_env(env_id: str, render_mode: str | None = None, max_steps: int = 0) -> gym.Env:
    """gym.make with our envs registered; a ConfigError (one line) for an unknown id, arguments the env
    refuses (whatever its constructor raises) or continuous actions."""
    import envs  # noqa: F401  (registers tamer/* environments)
    from tamer.plugins import parse_spec

    name, env_kwargs = parse_spec(env_id, "--env")
    kwargs: dict[str, Any] = {**env_kwargs, **({"max_episode_steps": max_steps} if max_steps else {})}
    try:
        env = gym.make(name, render_mode=render_mode, **kwargs)
    except (gym.error.Error, ImportError) as e:
        raise ConfigError(f"cannot make env {env_id!r}: {e}") from None
    except Exception as e:  # a user's env (or arguments it refuses) may fail in any way while it is built
        raise ConfigError(f"cannot make env {env_id!r}: {type(e).__name__}: {e}") from None
    if not isinstance(env.action_space, gym.spaces.Discrete):
        env.close()
        raise ConfigError(
            f"{env_id} has action space {env.action_space}; TAMER needs discrete actions "
            "(a Discrete space, one Ĥ value per action)"
        )
    return env


def env_name(env_id: str) -> str:
    """The registered id an ``--env`` text names, for lookups made without the env at hand: without its
    arguments and without a ``package.module:`` prefix (``pkg.mod:Env-v0(x=1)`` -> ``Env-v0``)."""
    from tamer.plugins import parse_spec

    return parse_spec(env_id, "--env")[0].rpartition(":")[2]


def env_id_of(env: gym.Env, fallback: str = "") -> str:
    """The registered id of ``env`` (what lookups by environment use), else ``fallback``."""
    spec = getattr(env, "spec", None) or getattr(env.unwrapped, "spec", None)
    return spec.id if spec is not None and spec.id else fallback
