"""Tetris as TAMER's papers played it: one step per piece placement (Knox & Stone, ICDL 2008 / K-CAP 2009).

The board is the standard 10 columns by 20 rows, the pieces the seven tetrominoes (I O T S Z J L), drawn
uniformly and independently from ``self.np_random`` (so ``reset(seed=...)`` fixes a game's whole sequence).

**Actions** are ``Discrete(40)``: ``action = 10 * rotation + column``, rotation 0-3 clockwise quarter turns
from the spawn orientation, column 0-9 the board column of the piece's leftmost cell. The piece drops
straight down from above the board in that orientation and column (no slides or tucks under overhangs,
as in the papers' placement agents). Every action is valid, and what an odd one means is fixed:

- a column where the rotated piece would stick out of the right wall is moved left to the nearest column
  where it fits (``column = min(column, 10 - width)``), so e.g. the vertical I piece has 10 distinct
  columns and the horizontal one 7, actions 7, 8 and 9 repeating 6;
- rotations that give the same shape (all four for O, 0/2 and 1/3 for I, S and Z) are the same placement.

So every action places the piece somewhere; none is a no-op, none is refused.

**Reward** is the number of lines the placement clears (0-4). **Termination**: the placement leaves part of
the piece above the top row (row 20), i.e. it did not fit on the board (lines are not cleared first). The
cells that fit are drawn and the game ends. **Truncation**: ``max_pieces`` placements (default 500; 0 = no
cap) end the game: a good player (a Dellacherie-style evaluation clears hundreds of thousands of lines)
never tops out, and an experiment needs games of bounded length. With ``max_pieces`` pieces a game clears at
most ``0.4 * max_pieces`` lines (each piece brings 4 cells, a line takes 10).

**Observation**: a flat ``Box(0, 1, (207,), float32)``: the 200 board cells (``obs[10 * row + col]``,
row 0 the *bottom* row, 1 = filled), then a one-hot of the current piece (``obs[200 + piece]``, piece ids
0 I, 1 O, 2 T, 3 S, 4 Z, 5 J, 6 L). Everything a placement policy needs, and a flat Box so every feature map,
network and tool of the framework accepts it; ``tamer.tetris`` reads it back into a board and a piece.

``afterstates(board, piece)`` computes the boards after every one of the 40 placements at once (numpy,
vectorised over the actions); ``tamer.tetris`` builds the 46 features and the Dellacherie/El-Tetris
evaluations on it, and ``step`` makes exactly the same placement (tested).

**Rendering** (``rgb_array``, numpy only; ``human`` through pygame): the board with the piece just placed
outlined in white (the placement a trainer is judging), the current piece (the one to place next) in the
panel on the right, and the lines cleared, pieces placed and score (lines weighted 1/3/5/8 for 1-4 at once)
so far. ``metadata["teaching_step_rate"]`` is 1: a placement a second, slow enough for a trainer to judge
each one.

**Keys for demonstrating** (``tamer play --env tamer/Tetris-v0 --demonstrate``; ``get_keys_to_action``):
the digit keys 1 2 ... 9 0 drop the piece unrotated in column 1 ... 10; holding Z, X or C with a digit
rotates it one, two or three quarter turns clockwise first (Z+4: one turn, column 4). None of these keys is
one of the live window's command keys (space, [, ], r, Ctrl+S, Esc).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.window import FrameWindow

ROWS, COLS = 20, 10
N_PIECES, N_ROTATIONS = 7, 4
N_ACTIONS = N_ROTATIONS * COLS
PIECE_NAMES = ("I", "O", "T", "S", "Z", "J", "L")

# Spawn orientations, top row first ('#' filled).
SHAPES: dict[str, tuple[str, ...]] = {
    "I": ("####",),
    "O": ("##", "##"),
    "T": (".#.", "###"),
    "S": (".##", "##."),
    "Z": ("##.", ".##"),
    "J": ("#..", "###"),
    "L": ("..#", "###"),
}

# Colours of the pieces' cells (a placed cell keeps its piece's colour), in PIECE_NAMES order.
PIECE_COLORS = np.array(
    [
        (0, 190, 220),  # I cyan
        (235, 200, 0),  # O yellow
        (160, 60, 200),  # T purple
        (60, 190, 60),  # S green
        (220, 50, 50),  # Z red
        (40, 80, 220),  # J blue
        (240, 140, 20),  # L orange
    ],
    dtype=np.uint8,
)
BACKGROUND = (25, 25, 35)
GRID = (45, 45, 58)
PANEL = (15, 15, 20)
TEXT = (230, 230, 230)
HIGHLIGHT = (255, 255, 255)
# Score per placement by lines cleared at once (the classic 1/3/5/8 of Tetris guideline "line clear" values).
SCORE = (0, 1, 3, 5, 8)


def _orientation_cells(rows: tuple[str, ...]) -> np.ndarray:
    """(4, 2) int array of (row from the bottom, column from the left) of a shape drawn top row first."""
    h = len(rows)
    return np.array(
        [(h - 1 - i, j) for i, line in enumerate(rows) for j, ch in enumerate(line) if ch == "#"],
        dtype=np.int64,
    )


def _rotations(rows: tuple[str, ...]) -> list[np.ndarray]:
    grid = np.array([[ch == "#" for ch in line] for line in rows])
    out = []
    for _ in range(N_ROTATIONS):
        out.append(_orientation_cells(tuple("".join("#" if v else "." for v in r) for r in grid)))
        grid = np.rot90(grid, -1)  # a clockwise quarter turn
    return out


def _placement_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per piece and action: the rows (from the piece's bottom) and board columns of its 4 cells, with the
    column clamped so the piece fits (see the module docstring), and the piece's height."""
    rows = np.zeros((N_PIECES, N_ACTIONS, 4), dtype=np.int64)
    cols = np.zeros((N_PIECES, N_ACTIONS, 4), dtype=np.int64)
    height = np.zeros((N_PIECES, N_ACTIONS), dtype=np.int64)
    for p, name in enumerate(PIECE_NAMES):
        for r, cells in enumerate(_rotations(SHAPES[name])):
            width = int(cells[:, 1].max()) + 1
            for c in range(COLS):
                a = r * COLS + c
                left = min(c, COLS - width)
                rows[p, a], cols[p, a] = cells[:, 0], cells[:, 1] + left
                height[p, a] = int(cells[:, 0].max()) + 1
    for table in (rows, cols, height):
        table.flags.writeable = False
    return rows, cols, height


CELL_ROWS, CELL_COLS, PIECE_HEIGHT = _placement_tables()


def column_heights(board: np.ndarray) -> np.ndarray:
    """Heights of the columns of one board (rows, cols) or a stack of boards (..., rows, cols): the row
    above the column's highest filled cell (0 for an empty column); row 0 is the bottom."""
    n_rows = board.shape[-2]
    top = n_rows - np.argmax(board[..., ::-1, :], axis=-2)
    return np.where(board.any(axis=-2), top, 0)


class Afterstates(NamedTuple):
    """The result of each of the 40 placements of a piece on a board (vectorised over actions)."""

    boards: np.ndarray  # (40, 20, 10) bool: the board after the placement and its line clears
    lines: np.ndarray  # (40,) lines cleared
    over: np.ndarray  # (40,) bool: the piece did not fit (game over); boards then hold the cells that fit
    base: np.ndarray  # (40,) row of the piece's bottom after dropping
    rows: np.ndarray  # (40, 4) rows of the piece's cells (before line clears)
    eroded: np.ndarray  # (40,) cells of the piece in the cleared lines (Dellacherie's "eroded piece cells")


def afterstates(board: np.ndarray, piece: int) -> Afterstates:
    """Every placement of ``piece`` on ``board`` ((20, 10) bool, row 0 the bottom) at once."""
    rows_off, cols = CELL_ROWS[piece], CELL_COLS[piece]  # (40, 4)
    heights = column_heights(board)
    base = (heights[cols] - rows_off).max(axis=1)  # lowest row where every cell is above its column
    rows = base[:, None] + rows_off
    over = (rows >= ROWS).any(axis=1)
    n = rows.shape[0]
    padded = np.zeros((n, ROWS + 4, COLS), dtype=bool)
    padded[:, :ROWS] = board
    padded[np.arange(n)[:, None], rows, cols] = True
    # (40, 24); rows above the board are never full (the piece has 4 cells)
    full = np.asarray(padded.all(axis=2))
    full[over] = False  # a piece that does not fit clears nothing: the game is over
    lines = full.sum(axis=1)
    eroded = full[np.arange(n)[:, None], rows].sum(axis=1) * lines
    order = np.argsort(full, axis=1, kind="stable")  # kept rows first, in order, then the cleared ones
    cleared = np.take_along_axis(padded, order[:, :, None], axis=1)
    cleared[np.arange(ROWS + 4)[None, :] >= (ROWS + 4 - lines)[:, None]] = False
    return Afterstates(cleared[:, :ROWS], lines, over, base, rows, eroded)


def decode(obs: np.ndarray) -> tuple[np.ndarray, int]:
    """(board (20, 10) bool, piece id) of an observation."""
    obs = np.asarray(obs)
    return obs[: ROWS * COLS].reshape(ROWS, COLS) > 0.5, int(np.argmax(obs[ROWS * COLS :]))


# A 3x5 pixel font for the panel's text: digits and the few capitals it uses.
_FONT_ROWS = {
    "0": ("###", "#.#", "#.#", "#.#", "###"),
    "1": (".#.", "##.", ".#.", ".#.", "###"),
    "2": ("###", "..#", "###", "#..", "###"),
    "3": ("###", "..#", ".##", "..#", "###"),
    "4": ("#.#", "#.#", "###", "..#", "..#"),
    "5": ("###", "#..", "###", "..#", "###"),
    "6": ("###", "#..", "###", "#.#", "###"),
    "7": ("###", "..#", ".#.", ".#.", ".#."),
    "8": ("###", "#.#", "###", "#.#", "###"),
    "9": ("###", "#.#", "###", "..#", "###"),
    "A": (".#.", "#.#", "###", "#.#", "#.#"),
    "C": ("###", "#..", "#..", "#..", "###"),
    "E": ("###", "#..", "##.", "#..", "###"),
    "G": ("###", "#..", "#.#", "#.#", "###"),
    "I": ("###", ".#.", ".#.", ".#.", "###"),
    "L": ("#..", "#..", "#..", "#..", "###"),
    "M": ("#.#", "###", "###", "#.#", "#.#"),
    "N": ("##.", "#.#", "#.#", "#.#", "#.#"),
    "O": ("###", "#.#", "#.#", "#.#", "###"),
    "P": ("##.", "#.#", "##.", "#..", "#.."),
    "R": ("##.", "#.#", "##.", "#.#", "#.#"),
    "S": ("###", "#..", "###", "..#", "###"),
    "T": ("###", ".#.", ".#.", ".#.", ".#."),
    "V": ("#.#", "#.#", "#.#", "#.#", ".#."),
    "X": ("#.#", "#.#", ".#.", "#.#", "#.#"),
    "Y": ("#.#", "#.#", ".#.", ".#.", ".#."),
    " ": ("...", "...", "...", "...", "..."),
}
FONT = {ch: np.array([[c == "#" for c in row] for row in rows]) for ch, rows in _FONT_ROWS.items()}


def draw_text(frame: np.ndarray, text: str, y: int, x: int, scale: int = 2, color=TEXT) -> None:
    """Draw ``text`` (digits and the capitals in FONT; others as blanks) with its top-left at (y, x)."""
    for ch in text.upper():
        glyph = FONT.get(ch, FONT[" "])
        big = np.repeat(np.repeat(glyph, scale, axis=0), scale, axis=1)
        h, w = big.shape
        region = frame[y : y + h, x : x + w]
        region[big[: region.shape[0], : region.shape[1]]] = color
        x += (glyph.shape[1] + 1) * scale


class TetrisEnv(FrameWindow, gym.Env):
    """Tetris, one step per placement (see the module docstring).

    Args:
        max_pieces: placements per game before it is truncated; 0 = no cap.
        render_mode: None, "rgb_array" or "human".
        cell: pixels per board cell in the rendered frame.
    """

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": 4, "teaching_step_rate": 1.0}
    window_caption = "tamer Tetris"

    def __init__(self, max_pieces: int = 500, render_mode: str | None = None, cell: int = 24):
        if max_pieces < 0:
            raise ValueError(f"max_pieces must be >= 0 (0 = no cap), got {max_pieces}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}"
            )
        if cell < 6:
            raise ValueError(f"cell needs at least 6 px, got {cell}")
        self.max_pieces, self.render_mode, self.cell = int(max_pieces), render_mode, int(cell)
        self.action_space = spaces.Discrete(N_ACTIONS)
        self.observation_space = spaces.Box(0.0, 1.0, (ROWS * COLS + N_PIECES,), np.float32)
        self.action_names = [f"rot {a // COLS} col {a % COLS + 1}" for a in range(N_ACTIONS)]
        self.colors = np.zeros((ROWS, COLS), dtype=np.int8)  # 0 empty, else piece id + 1
        self.piece = 0
        self.pieces = self.lines = self.score = 0
        self.last_cells: np.ndarray | None = None  # (row, col) of the piece just placed, for rendering
        self.screen: Any = None
        self.clock: Any = None

    @property
    def board(self) -> np.ndarray:
        return self.colors > 0

    # ---- gym API --------------------------------------------------------------------------------------

    def _obs(self) -> np.ndarray:
        obs = np.zeros(ROWS * COLS + N_PIECES, dtype=np.float32)
        obs[: ROWS * COLS] = self.board.reshape(-1)
        obs[ROWS * COLS + self.piece] = 1.0
        return obs

    def _info(self) -> dict[str, Any]:
        return {"lines": self.lines, "pieces": self.pieces, "score": self.score}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.colors[...] = 0
        self.pieces = self.lines = self.score = 0
        self.last_cells = None
        self.piece = int(self.np_random.integers(N_PIECES))
        if self.render_mode == "human":
            self.render()
        return self._obs(), self._info()

    def step(self, action):
        assert self.action_space.contains(action), f"{action!r} ({type(action)}) is not a valid action"
        action, piece = int(action), self.piece
        rows_off, cols = CELL_ROWS[piece, action], CELL_COLS[piece, action]
        board = self.board
        heights = column_heights(board)
        base = int((heights[cols] - rows_off).max())
        rows = base + rows_off
        fits = rows < ROWS
        self.colors[rows[fits], cols[fits]] = piece + 1
        self.pieces += 1
        if not fits.all():  # topped out: the game is over, nothing is cleared
            self.last_cells = np.stack([rows[fits], cols[fits]], axis=1)
            return self._end_step(0, True)
        full = np.flatnonzero(self.board.all(axis=1))
        lines = int(full.size)
        if lines:
            kept = np.delete(self.colors, full, axis=0)
            self.colors[...] = 0
            self.colors[: kept.shape[0]] = kept
            # the placed cells that survive, moved down by the cleared lines below them
            survive = ~np.isin(rows, full)
            shift = (full[None, :] < rows[:, None]).sum(axis=1)
            self.last_cells = np.stack([(rows - shift)[survive], cols[survive]], axis=1)
        else:
            self.last_cells = np.stack([rows, cols], axis=1)
        self.lines += lines
        self.score += SCORE[lines]
        return self._end_step(lines, False)

    def _end_step(self, lines: int, terminated: bool):
        truncated = not terminated and self.max_pieces > 0 and self.pieces >= self.max_pieces
        if not terminated:
            self.piece = int(self.np_random.integers(N_PIECES))
        if self.render_mode == "human":
            self.render()
        return self._obs(), float(lines), terminated, truncated, self._info()

    # ---- rendering ------------------------------------------------------------------------------------

    def _draw(self) -> np.ndarray:
        s = self.cell
        panel_w = 6 * s
        frame = np.empty((ROWS * s, COLS * s + panel_w, 3), dtype=np.uint8)
        frame[:, : COLS * s] = BACKGROUND
        frame[:, COLS * s :] = PANEL
        board = frame[:, : COLS * s]
        board[::s, :] = GRID
        board[:, ::s] = GRID
        for r, c in zip(*np.nonzero(self.colors), strict=True):
            y, x = (ROWS - 1 - r) * s, c * s
            board[y + 1 : y + s - 1, x + 1 : x + s - 1] = PIECE_COLORS[self.colors[r, c] - 1]
        if self.last_cells is not None:  # the placement being judged: a white outline round each cell
            for r, c in self.last_cells:
                y, x = (ROWS - 1 - int(r)) * s, int(c) * s
                for sl in (
                    (slice(y, y + 2), slice(x, x + s)),
                    (slice(y + s - 2, y + s), slice(x, x + s)),
                    (slice(y, y + s), slice(x, x + 2)),
                    (slice(y, y + s), slice(x + s - 2, x + s)),
                ):
                    board[sl] = HIGHLIGHT
        # the panel: the piece to place next, then lines, pieces and score
        px, scale = COLS * s + s // 2, max(1, s // 8)
        draw_text(frame, "NEXT", s // 2, px, scale)
        cells = CELL_ROWS[self.piece, 0], CELL_COLS[self.piece, 0]
        top = s // 2 + 7 * scale + s // 2
        h = int(PIECE_HEIGHT[self.piece, 0])
        for r, c in zip(*cells, strict=True):
            y, x = top + (h - 1 - int(r)) * s, px + int(c) * s
            frame[y + 1 : y + s - 1, x + 1 : x + s - 1] = PIECE_COLORS[self.piece]
        y = top + 3 * s
        for label, value in (("LINES", self.lines), ("PIECES", self.pieces), ("SCORE", self.score)):
            draw_text(frame, label, y, px, scale)
            draw_text(frame, str(value), y + 7 * scale, px, scale)
            y += 16 * scale + s // 2
        return frame

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            assert self.spec is not None
            gym.logger.warn(
                "You are calling render method without specifying any render mode. "
                f'You can specify the render_mode at initialization, e.g. gym.make("{self.spec.id}", '
                'render_mode="rgb_array")'
            )
            return None
        frame = self._draw()
        if self.render_mode == "rgb_array":
            return frame
        self._render_human(frame)
        return None

    def get_keys_to_action(self) -> dict[tuple[str, ...], int]:
        """Digits 1..0 drop unrotated in columns 1..10; Z, X, C held with a digit add 1, 2, 3 clockwise
        quarter turns (gymnasium.utils.play's convention: tuples of keys held together -> action)."""
        digits = "1234567890"
        keys: dict[tuple[str, ...], int] = {}
        for c, d in enumerate(digits):
            keys[(d,)] = c
            for r, k in enumerate("zxc", start=1):
                keys[(k, d)] = r * COLS + c
        return keys
