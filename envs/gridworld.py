"""A small grid world made for teaching by hand.

Classic-control tasks are hard to judge at a glance; a grid world is not: a person can see at once whether
a move brings the agent nearer the goal. The grid is small so that an episode takes seconds, and the layout
is a list of strings so a user can draw their own task:

    'S' start (exactly one)   'G' goal (one or more)   'H' hazard   '#' wall   '.' free

Actions are Discrete(4): 0 up, 1 right, 2 down, 3 left; moving into a wall or off the grid leaves the agent
where it is. Every step costs -1; reaching a goal ends the episode with +10 (instead of -1), stepping on a
hazard ends it with -10. With ``slip`` > 0 the chosen action is replaced, with that probability, by one drawn
uniformly from all four (so it may still be the chosen one).

Observations are the agent's cell index (``obs_type="index"``, for tabular and one-hot learners) or a tiny
RGB image (``obs_type="pixels"``, ``pixels_per_cell`` px per cell, for a CNN).

The env follows gymnasium's classic-control conventions (see ``mountain_car.py``): ``reset`` seeds
``self.np_random`` through ``super().reset``, ``step`` returns the 5-tuple, "rgb_array" renders with numpy
only and pygame is imported only for "human".
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.window import FrameWindow

DEFAULT_LAYOUT: tuple[str, ...] = (
    "S.....",
    ".##.H.",
    "...#..",
    ".H...#",
    "..#H..",
    ".....G",
)

CELL_CHARS = "SGH#."

# (row, col) offsets for actions 0 up, 1 right, 2 down, 3 left.
MOVES: tuple[tuple[int, int], ...] = ((-1, 0), (0, 1), (1, 0), (0, -1))

# Colours. The agent's blue is unlike every cell colour in its blue-minus-red margin, which is how
# ``cell_from_pixels`` finds it in a pixel observation.
COLORS: dict[str, tuple[int, int, int]] = {
    ".": (235, 235, 225),
    "S": (235, 235, 225),
    "#": (60, 60, 70),
    "H": (210, 50, 50),
    "G": (60, 180, 75),
}
AGENT_COLOR = (40, 90, 230)
GRID_LINE_COLOR = (200, 200, 190)


def parse_layout(layout: Sequence[str] | str) -> np.ndarray:
    """Check a layout and return it as a 2-d array of single characters.

    A multi-line string is accepted too (one row per line) because that is how a layout reads in a config
    file. Raises ValueError naming what is wrong, since a typo in a hand-drawn grid is the likely mistake.
    """
    if isinstance(layout, str):
        layout = [line.strip() for line in layout.strip().splitlines()]
    if isinstance(layout, np.ndarray):
        layout = ["".join(map(str, row)) for row in layout]
    rows = list(layout)
    if not rows or not all(isinstance(r, str) for r in rows):
        raise ValueError(f"layout must be a non-empty list of strings, got {layout!r}")
    width = len(rows[0])
    if width == 0:
        raise ValueError("layout rows must not be empty")
    for i, row in enumerate(rows):
        if len(row) != width:
            raise ValueError(
                f"layout rows must all have the same length: row 0 has {width} cells, row {i} ({row!r}) has "
                f"{len(row)}"
            )
        bad = sorted(set(row) - set(CELL_CHARS))
        if bad:
            raise ValueError(
                f"layout row {i} ({row!r}) has unknown cell(s) {bad}; use 'S' start, 'G' goal, 'H' hazard, "
                "'#' wall, '.' free"
            )
    grid = np.array([list(r) for r in rows], dtype="<U1")
    n_start, n_goal = int((grid == "S").sum()), int((grid == "G").sum())
    if n_start != 1:
        raise ValueError(f"layout needs exactly one start 'S', found {n_start}")
    if n_goal < 1:
        raise ValueError("layout needs at least one goal 'G', found none")
    return grid


def _neighbour(grid: np.ndarray, r: int, c: int, action: int) -> tuple[int, int]:
    """The cell an action leads to: walls and the border stop the agent where it is."""
    dr, dc = MOVES[action]
    nr, nc = r + dr, c + dc
    if 0 <= nr < grid.shape[0] and 0 <= nc < grid.shape[1] and grid[nr, nc] != "#":
        return nr, nc
    return r, c


def goal_distances(grid: np.ndarray) -> np.ndarray:
    """Steps from each cell to the nearest goal without entering a hazard or wall (-1: no such path).

    Breadth-first search backwards from the goals. Moves are reversible (a wall or border only ever cancels
    a move), so a cell's neighbours are also its predecessors. Hazards and walls are never expanded.
    """
    rows, cols = grid.shape
    dist = np.full((rows, cols), -1, dtype=np.int64)
    queue: deque[tuple[int, int]] = deque()
    for r, c in zip(*np.nonzero(grid == "G"), strict=True):
        dist[r, c] = 0
        queue.append((int(r), int(c)))
    while queue:
        r, c = queue.popleft()
        if grid[r, c] == "H":
            continue
        for a in range(4):
            nr, nc = _neighbour(grid, r, c, a)
            if dist[nr, nc] < 0 and grid[nr, nc] not in "HG#":
                dist[nr, nc] = dist[r, c] + 1
                queue.append((nr, nc))
    return dist


class GridWorldEnv(FrameWindow, gym.Env):
    """Grid world for TAMER: a task a human trainer can judge at a glance.

    Args:
        layout: rows of 'S', 'G', 'H', '#', '.' (see the module docstring); defaults to a 6x6 maze.
        obs_type: "index" (Discrete(rows*cols), cell = row*cols + col) or "pixels" (uint8 RGB image).
        slip: probability that the action is replaced by a uniformly random one.
        render_mode: None, "rgb_array" or "human".
        pixels_per_cell: cell size of the "pixels" observation.
        render_cell: cell size of the rendered frame.
    """

    # teaching_step_rate (steps/s) is the pace tamer trains and shows this env at (tamer.train reads it):
    # about one step per second, so a trainer's 0.2-0.8 s reaction lands on the step being judged instead of
    # being smeared over the several steps a 10 Hz pace would fit into that window.
    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": 8, "teaching_step_rate": 1.0}
    window_caption = "tamer GridWorld"

    def __init__(
        self,
        layout: Sequence[str] | str | None = None,
        obs_type: str = "index",
        slip: float = 0.0,
        render_mode: str | None = None,
        pixels_per_cell: int = 4,
        render_cell: int = 32,
    ):
        self.grid = parse_layout(DEFAULT_LAYOUT if layout is None else layout)
        self.rows, self.cols = self.grid.shape
        if obs_type not in ("index", "pixels"):
            raise ValueError(f"obs_type must be 'index' or 'pixels', got {obs_type!r}")
        if not 0.0 <= slip <= 1.0:
            raise ValueError(f"slip must be a probability in [0, 1], got {slip}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}"
            )
        if pixels_per_cell < 3 or render_cell < 3:
            raise ValueError(
                f"cells need at least 3 px, got pixels_per_cell={pixels_per_cell}, render_cell={render_cell}"
            )
        self.obs_type, self.slip, self.render_mode = obs_type, float(slip), render_mode
        self.pixels_per_cell, self.render_cell = int(pixels_per_cell), int(render_cell)

        (sr,), (sc,) = np.nonzero(self.grid == "S")
        self.start = (int(sr), int(sc))
        self.distances = goal_distances(self.grid)
        if self.distances[self.start] < 0:
            raise ValueError(
                "layout has no path from 'S' to a 'G' that avoids hazards 'H' and walls '#'; "
                "every episode would end without reaching the goal"
            )
        # Transition table: next_cell[cell, action], precomputed so step() is a lookup.
        n = self.rows * self.cols
        self.next_cell = np.array(
            [
                [self._index(*_neighbour(self.grid, r, c, a)) for a in range(4)]
                for r in range(self.rows)
                for c in range(self.cols)
            ],
            dtype=np.int64,
        )
        self.kinds = self.grid.reshape(-1)
        self._optimal = self._optimal_masks()

        self.action_space = spaces.Discrete(4)
        if obs_type == "index":
            self.observation_space: spaces.Space = spaces.Discrete(n)
        else:
            p = self.pixels_per_cell
            self.observation_space = spaces.Box(0, 255, (self.rows * p, self.cols * p, 3), np.uint8)
        self._backgrounds: dict[int, np.ndarray] = {}
        self._agent_sprites: dict[tuple[int, bool], np.ndarray] = {}
        # Centre pixel of each cell in a pixel observation, for cell_from_pixels.
        p = self.pixels_per_cell
        ys, xs = np.divmod(np.arange(n), self.cols)
        self._centres = (ys * p + p // 2, xs * p + p // 2)

        self.cell = self._index(*self.start)
        self.screen: Any = None
        self.clock: Any = None

    # ---- geometry -------------------------------------------------------------------------------------

    def _index(self, r: int, c: int) -> int:
        return r * self.cols + c

    def position(self, cell: int | None = None) -> tuple[int, int]:
        """(row, col) of a cell index (default: the agent's cell)."""
        r, c = divmod(self.cell if cell is None else int(cell), self.cols)
        return r, c

    def _optimal_masks(self) -> np.ndarray:
        """One read-only bool row per cell; see ``optimal_actions``."""
        masks = np.zeros((self.rows * self.cols, 4), dtype=bool)
        dist = self.distances.reshape(-1)
        for cell in range(self.rows * self.cols):
            nxt = self.next_cell[cell]
            d = dist[cell]
            if d > 0:
                # BFS guarantees some neighbour is one step nearer; hazards/walls have distance -1.
                masks[cell] = dist[nxt] == d - 1
            else:
                # Goal, hazard, wall, or cut off from every goal: nothing is "shortest", so approve whatever
                # does not walk into a hazard (at worst everything, if every move does).
                safe = self.kinds[nxt] != "H"
                masks[cell] = safe if safe.any() else True
        masks.flags.writeable = False
        return masks

    def optimal_actions(self, cell_index: int) -> np.ndarray:
        """Bool mask over the 4 actions: those on a shortest hazard-free path to a goal.

        Precomputed, so this is a lookup (the simulated teacher calls it every step). In a cell with no path
        to a goal the mask holds every action that does not step onto a hazard. The returned array is a
        read-only view; copy it before changing it.
        """
        return self._optimal[int(cell_index)]

    # ---- gym API --------------------------------------------------------------------------------------

    def _obs(self) -> int | np.ndarray:
        if self.obs_type == "index":
            return int(self.cell)
        return self._draw(self.pixels_per_cell, circle=False)

    def _info(self) -> dict[str, Any]:
        return {"position": self.position(), "distance": int(self.distances.reshape(-1)[self.cell])}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.cell = self._index(*self.start)
        if self.render_mode == "human":
            self.render()
        return self._obs(), self._info()

    def step(self, action: int):
        assert self.action_space.contains(action), f"{action!r} ({type(action)}) is not a valid action"
        action = int(action)
        if self.slip > 0.0 and self.np_random.random() < self.slip:
            action = int(self.np_random.integers(4))
        self.cell = int(self.next_cell[self.cell, action])
        kind = self.kinds[self.cell]
        if kind == "G":
            reward, terminated = 10.0, True
        elif kind == "H":
            reward, terminated = -10.0, True
        else:
            reward, terminated = -1.0, False
        if self.render_mode == "human":
            self.render()
        return self._obs(), reward, terminated, False, self._info()

    # ---- pixels ---------------------------------------------------------------------------------------

    def cell_from_pixels(self, obs: np.ndarray) -> int:
        """The agent's cell index read back from a pixel observation (the cell whose centre is agent blue).

        Lets a pixel-based oracle judge the state in the observation itself rather than the env's current
        state, which has moved on by the time a teacher judges the step that led there.
        """
        centres = obs[self._centres]  # (cells, 3)
        blueness = centres[:, 2].astype(np.int16) - centres[:, 0]
        return int(blueness.argmax())

    def _background(self, scale: int) -> np.ndarray:
        """The static grid at ``scale`` px per cell, cached (only the agent moves)."""
        bg = self._backgrounds.get(scale)
        if bg is None:
            colors = np.array([[COLORS[ch] for ch in row] for row in self.grid], dtype=np.uint8)
            bg = np.repeat(np.repeat(colors, scale, axis=0), scale, axis=1)
            if scale >= 16:  # grid lines only where they are visible; they would swamp a 4 px cell
                bg[::scale, :] = GRID_LINE_COLOR
                bg[:, ::scale] = GRID_LINE_COLOR
            bg.flags.writeable = False
            self._backgrounds[scale] = bg
        return bg

    def _sprite(self, scale: int, circle: bool) -> np.ndarray:
        """Bool (scale, scale) mask of the agent's shape within a cell: a circle, or an inset square."""
        key = (scale, circle)
        sprite = self._agent_sprites.get(key)
        if sprite is None:
            if circle:
                yy, xx = np.mgrid[:scale, :scale] + 0.5
                radius = scale * 0.35
                sprite = (yy - scale / 2) ** 2 + (xx - scale / 2) ** 2 <= radius**2
            else:
                inset = scale // 4
                sprite = np.zeros((scale, scale), dtype=bool)
                sprite[inset : scale - inset, inset : scale - inset] = True
            self._agent_sprites[key] = sprite
        return sprite

    def _draw(self, scale: int, circle: bool) -> np.ndarray:
        frame = self._background(scale).copy()
        r, c = self.position()
        cell = frame[r * scale : (r + 1) * scale, c * scale : (c + 1) * scale]
        cell[self._sprite(scale, circle)] = AGENT_COLOR
        return frame

    # ---- rendering ------------------------------------------------------------------------------------

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            assert self.spec is not None
            gym.logger.warn(
                "You are calling render method without specifying any render mode. "
                f'You can specify the render_mode at initialization, e.g. gym.make("{self.spec.id}", '
                'render_mode="rgb_array")'
            )
            return None
        frame = self._draw(self.render_cell, circle=True)
        if self.render_mode == "rgb_array":
            return frame
        return self._render_human(frame)

    def get_keys_to_action(self) -> dict[tuple[int, ...], int]:
        """Arrow keys for gymnasium.utils.play."""
        import pygame

        return {(pygame.K_UP,): 0, (pygame.K_RIGHT,): 1, (pygame.K_DOWN,): 2, (pygame.K_LEFT,): 3}
