"""Environments of our own, registered with Gymnasium on import (``import envs``).

Registration is guarded so importing this module twice (or after another module registered the same ids)
does not make Gymnasium warn about overriding an existing environment.
"""

from __future__ import annotations

import gymnasium

_REGISTRATIONS: dict[str, dict] = {
    "tamer/GridWorld-v0": {},
    "tamer/GridWorldPixels-v0": {"obs_type": "pixels"},
}

for _env_id, _kwargs in _REGISTRATIONS.items():
    if _env_id not in gymnasium.registry:
        gymnasium.register(
            id=_env_id, entry_point="envs.gridworld:GridWorldEnv", max_episode_steps=100, kwargs=_kwargs
        )

# Tetris ends a game itself (top-out, or its max_pieces cap as a truncation): no TimeLimit on top.
if "tamer/Tetris-v0" not in gymnasium.registry:
    gymnasium.register(id="tamer/Tetris-v0", entry_point="envs.tetris:TetrisEnv")
