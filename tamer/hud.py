"""The heads-up display of a live session (``tamer play``): what a person needs to judge the agent and to see
the effect of their keys.

The window is the environment's ``rgb_array`` frame, scaled up, with a panel beside it: episode, step,
return, the agent's pace, the feedback given, Ĥ(s, a) of every action as bars (and Q and β when an RL learner
runs) and the keys. A keypress flashes the frame's border green or red.

Drawing is kept off the per-frame budget: fonts are loaded once, every string is rendered once and reused,
the env frame is converted and scaled once per agent step (not per frame), and the panel is redrawn only
when something on it changes, so a frame where nothing changed costs two blits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pygame

PANEL_WIDTH = 360
MIN_HEIGHT = 480
PAD = 16
FLASH_SECONDS = 0.4
FLASH_WIDTH = 8

BACKGROUND = (18, 20, 24)
PANEL = (32, 35, 41)
TEXT = (230, 232, 236)
DIM = (150, 156, 166)
GOOD = (60, 200, 90)
BAD = (230, 70, 60)
ACCENT = (250, 200, 70)
BAR_TRACK = (52, 56, 64)

ACTION_NAMES: dict[str, tuple[str, ...]] = {
    "MountainCar-v0": ("push left", "no push", "push right"),
    "CartPole-v0": ("push left", "push right"),
    "CartPole-v1": ("push left", "push right"),
    "Acrobot-v1": ("torque -1", "torque 0", "torque +1"),
    "tamer/GridWorld-v0": ("up", "right", "down", "left"),
    "tamer/GridWorldPixels-v0": ("up", "right", "down", "left"),
}


def action_names(env_id: str, env, n: int) -> list[str]:
    """Names for the bars: the env's own ``action_names`` if it has them, ours for known envs (by registered
    id, whatever form ``env_id`` took), else numbers. (Q bars past these, a blend's extra actions such as "do
    what Ĥ says", are labelled "extra i".)"""
    from tamer.envs import env_id_of

    own = getattr(getattr(env, "unwrapped", env), "action_names", None)
    known = own or ACTION_NAMES.get(env_id_of(env, env_id), ())
    return [str(known[i]) if i < len(known) else f"action {i}" for i in range(n)]


@dataclass
class HudState:
    """What the panel shows; the frame loop updates it, the HUD only reads it."""

    title: str
    subtitle: str
    actions: list[str]
    episode: int = 0
    step: int = 0  # steps in this episode
    total_steps: int = 0
    ret: float = 0.0
    rate: float = 10.0
    paused: bool = False
    feedback: int = 0  # keypresses in this run of the session
    positive: int = 0  # this episode
    negative: int = 0
    last_value: float = 0.0
    last_time: float = -np.inf  # clock time of the last keypress, for the flash
    h: np.ndarray | None = None  # Ĥ(s, ·) in the state the agent acts in
    q: np.ndarray | None = None
    beta: float | None = None
    action: int | None = None
    frozen: bool = False  # Ĥ no longer learns (sequential TAMER+RL after its teaching phase)
    note: str = ""
    note_until: float = -np.inf


class Hud:
    """Draws a live session. ``frame_size`` is the env frame's (width, height), or None if it renders none."""

    def __init__(
        self,
        frame_size: tuple[int, int] | None,
        view_box: tuple[int, int],
        n_actions: int,
        n_q: int,
        show_beta: bool,
        legend: Sequence[tuple[str, str]],
        footer: str = "",
        demonstrating: bool = False,
    ):
        self.big = pygame.font.Font(None, 30)
        self.font = pygame.font.Font(None, 24)
        self.small = pygame.font.Font(None, 21)
        self.legend, self.footer, self.demonstrating = list(legend), footer, demonstrating
        self.n_actions, self.n_q, self.show_beta = n_actions, n_q, show_beta
        if frame_size is None:
            self.view_size = view_box
            self.scale = 0.0
        else:
            self.scale = min(view_box[0] / frame_size[0], view_box[1] / frame_size[1])
            self.view_size = (round(frame_size[0] * self.scale), round(frame_size[1] * self.scale))
        self.size = (self.view_size[0] + PANEL_WIDTH, max(self.view_size[1], self.panel_height(), MIN_HEIGHT))
        self.view = pygame.Surface(self.view_size)
        self.view.fill(BACKGROUND)
        self.source: pygame.Surface | None = None
        self.panel = pygame.Surface((PANEL_WIDTH, self.size[1]))
        self.panel_key: tuple | None = None
        self.texts: dict[tuple, pygame.Surface] = {}
        self.everything, self.view_changed, self.shown_paused = True, True, False
        self.border: tuple[int, int, int] | None = None  # the flash colour drawn around the view, if any
        self.fresh = False
        self.view_rect = pygame.Rect((0, 0), self.view_size)
        w, h, e = *self.view_size, FLASH_WIDTH
        self.edges = [pygame.Rect(0, 0, w, e), pygame.Rect(0, h - e, w, e), pygame.Rect(0, 0, e, h)]
        self.edges.append(pygame.Rect(w - e, 0, e, h))
        self.panel_changing: list[pygame.Rect] = []
        banner = self.big.render("PAUSED  (Space resumes)", True, ACCENT)
        self.paused_banner = pygame.Surface((banner.get_width() + 24, banner.get_height() + 12))
        self.paused_banner.fill((0, 0, 0))
        self.paused_banner.set_alpha(200)
        self.paused_banner.blit(banner, (12, 6))
        if frame_size is None:
            self.view.blit(
                self.font.render("this environment renders no rgb_array frames", True, DIM), (PAD, PAD)
            )

    def panel_height(self) -> int:
        rows = (
            9 + len(self.legend) + (self.n_actions + 1) + (self.n_q + 1 if self.n_q else 0) + self.show_beta
        )
        return 2 * PAD + rows * 24 + 40

    def set_frame(self, frame: np.ndarray | None) -> None:
        """Convert and scale an env frame (H, W, 3 uint8) into the cached view; once per agent step."""
        if frame is None or self.scale == 0.0:
            return
        h, w = frame.shape[:2]
        if self.source is None or self.source.get_size() != (w, h):
            self.source = pygame.Surface((w, h))
        pygame.surfarray.blit_array(self.source, frame.swapaxes(0, 1))
        if self.scale >= 2.0:  # pixel art stays crisp
            pygame.transform.scale(self.source, self.view_size, self.view)
        else:
            pygame.transform.smoothscale(self.source, self.view_size, self.view)
        self.view_changed = self.fresh = True

    def invalidate(self) -> None:
        """Redraw everything next frame (the window was exposed, or is new)."""
        self.everything = True

    def draw(self, screen: pygame.Surface, st: HudState, now: float) -> list[pygame.Rect]:
        """Draw what changed and return those rectangles for one ``display.update``.

        A push to the display server is the dearest part of a frame (a round trip: ~1 ms on a desktop, several
        on a busy X server), so a frame where nothing changed pushes nothing (the agent steps ~10 times a
        second, the window draws 60), a keypress's flash touches only the frame's edges, and a new env
        frame goes out with the new panel on the frame after the one that stepped the env, so the step's
        computing and its push never add up in one frame."""
        age = now - st.last_time
        border = (GOOD if st.last_value > 0 else BAD) if 0.0 <= age < FLASH_SECONDS else None
        if self.everything:
            screen.fill(BACKGROUND)
            if self.footer and self.size[1] - self.view_size[1] >= 24:
                screen.blit(self.text(self.footer, self.small, DIM), (PAD, self.view_size[1] + 8))
            self.draw_view(screen, st, border)
            self.render_panel(st, self.panel_key_of(st, now))
            screen.blit(self.panel, (self.view_size[0], 0))
            self.everything = False
            return [screen.get_rect()]
        if self.fresh:  # the env stepped this frame: push its frame next frame
            self.fresh = False
            return []
        dirty = []
        if self.view_changed or st.paused != self.shown_paused:
            dirty.append(self.draw_view(screen, st, border))
        elif border != self.border:  # a flash starts, changes colour or ends: only the edges change
            if border is not None:
                pygame.draw.rect(screen, border, self.view_rect, FLASH_WIDTH)
            else:
                for strip in self.edges:
                    screen.blit(self.view, strip, strip)
            self.border = border
            dirty.extend(self.edges)
        key = self.panel_key_of(st, now)
        if key != self.panel_key:
            self.render_panel(st, key)
            screen.blit(self.panel, (self.view_size[0], 0))
            dirty.extend(self.panel_changing)
        return dirty

    def draw_view(self, screen: pygame.Surface, st: HudState, border) -> pygame.Rect:
        screen.blit(self.view, (0, 0))
        if border is not None:
            pygame.draw.rect(screen, border, self.view_rect, FLASH_WIDTH)
        if st.paused:
            screen.blit(self.paused_banner, self.paused_banner.get_rect(center=self.view_rect.center))
        self.view_changed, self.shown_paused, self.border = False, st.paused, border
        return self.view_rect

    @staticmethod
    def panel_key_of(st: HudState, now: float) -> tuple:
        """Everything the panel shows: it is redrawn only when this changes."""
        note = st.note if now < st.note_until else ""
        return (
            st.episode, st.step, st.total_steps, st.ret, st.rate, st.paused, st.feedback, st.positive,
            st.negative, st.last_value, st.last_time > -np.inf, id(st.h), id(st.q), st.beta, st.action,
            st.frozen, note,
        )  # fmt: skip

    def text(self, s: str, font: pygame.font.Font, color: tuple[int, int, int]) -> pygame.Surface:
        key = (s, id(font), color)
        surface = self.texts.get(key)
        if surface is None:
            if len(self.texts) > 1024:  # numbers change every step; keep the cache bounded
                self.texts.clear()
            surface = self.texts[key] = font.render(s, True, color)
        return surface

    def put(self, s: str, x: int, y: int, font=None, color=TEXT) -> int:
        """Blit one string on the panel; returns its right edge."""
        surface = self.text(s, font or self.font, color)
        self.panel.blit(surface, (x, y))
        return x + surface.get_width()

    def render_panel(self, st: HudState, key: tuple) -> None:
        self.panel_key, note = key, key[-1]
        p, x = self.panel, PAD
        p.fill(PANEL)
        y = PAD
        self.put(st.title, x, y, self.big)
        y += 28
        self.put(st.subtitle, x, y, self.small, DIM)
        y += 30
        right = self.put("episode ", x, y, color=DIM)
        right = self.put(str(st.episode), right, y) + 18
        right = self.put("step ", right, y, color=DIM)
        self.put(f"{st.step}  ({st.total_steps} in all)", right, y)
        y += 24
        right = self.put("return ", x, y, color=DIM)
        self.put(f"{st.ret:.6g}", right, y)
        y += 24
        right = self.put("pace ", x, y, color=DIM)
        right = self.put(f"{st.rate:g} steps/s", right, y) + 12
        if st.paused:
            self.put("PAUSED", right, y, color=ACCENT)
        y += 24
        if self.demonstrating:  # the person's action (tamer play --demonstrate) instead of feedback
            right = self.put("action ", x, y, color=DIM)
            name = st.actions[st.action] if st.action is not None and st.action < len(st.actions) else "-"
            self.put(name, right, y - 3, self.big, ACCENT)
            y += 58
        else:
            y = self.feedback_rows(st, y)
        if self.n_actions:
            title = "Ĥ(s, a)  frozen" if st.frozen else "Ĥ(s, a)"
            y = self.bars(title, st.h, st.actions, self.n_actions, st.action, y, floor=1.0)
        if self.n_q:
            y = self.bars("Q(s, a)", st.q, st.actions, self.n_q, st.action, y + 8, floor=1e-9)
        if self.show_beta:
            right = self.put("β ", x, y + 4, color=DIM)
            self.put("-" if st.beta is None else f"{st.beta:.3g}", right, y + 4)
            y += 28
        y += 10
        changing_bottom = y  # below: the legend, which never changes
        pygame.draw.line(p, BAR_TRACK, (x, y), (PANEL_WIDTH - PAD, y))
        y += 10
        for keys, meaning in self.legend:
            self.put(keys, x, y, self.small, ACCENT)
            self.put(meaning, x + 130, y, self.small, TEXT)
            y += 22
        if note:
            self.put(note, x, self.size[1] - PAD - 20, self.small, ACCENT)
        left, note_top = self.view_size[0], self.size[1] - PAD - 24
        self.panel_changing = [
            pygame.Rect(left, 0, PANEL_WIDTH, changing_bottom),
            pygame.Rect(left, note_top, PANEL_WIDTH, self.size[1] - note_top),
        ]

    def feedback_rows(self, st: HudState, y: int) -> int:
        """The feedback counts and the last feedback; returns the y below them."""
        x = PAD
        right = self.put("feedback ", x, y, color=DIM)
        right = self.put(str(st.feedback), right, y) + 12
        right = self.put("this episode ", right, y, color=DIM)
        right = self.put(f"+{st.positive}", right, y, color=GOOD) + 8
        self.put(f"-{st.negative}", right, y, color=BAD)
        y += 24
        right = self.put("last ", x, y, color=DIM)
        if st.last_time > -np.inf:
            chip = pygame.Rect(right + 2, y + 1, 34, 17)
            pygame.draw.rect(self.panel, GOOD if st.last_value > 0 else BAD, chip, border_radius=4)
            label = self.text("+1" if st.last_value > 0 else "-1", self.small, BACKGROUND)
            self.panel.blit(label, label.get_rect(center=chip.center))
        else:
            self.put("none yet", right, y, color=DIM)
        return y + 34

    def bars(
        self,
        title: str,
        values: np.ndarray | None,
        names: Sequence[str],
        n: int,
        chosen: int | None,
        y: int,
        floor: float,
    ) -> int:
        """One bar per action around a zero line, scaled to the largest |value| (at least ``floor``)."""
        p, x = self.panel, PAD
        self.put(title, x, y, color=DIM)
        y += 24
        if values is None:
            return y + 22 * n
        bar_x, bar_w = PAD + 104, 150
        scale = max(floor, float(np.abs(values).max())) if values.size else floor
        mid = bar_x + bar_w // 2
        for i, v in enumerate(values):
            name = names[i] if i < len(names) else f"extra {i}"
            color = ACCENT if i == chosen else TEXT
            if i == chosen:
                pygame.draw.polygon(p, ACCENT, [(x - 10, y + 4), (x - 10, y + 14), (x - 4, y + 9)])
            self.put(name[:14], x, y, self.small, color)
            pygame.draw.rect(p, BAR_TRACK, (bar_x, y + 2, bar_w, 14))
            length = round(float(v) / scale * (bar_w // 2))
            if length > 0:
                pygame.draw.rect(p, GOOD, (mid, y + 2, length, 14))
            elif length < 0:
                pygame.draw.rect(p, BAD, (mid + length, y + 2, -length, 14))
            pygame.draw.line(p, DIM, (mid, y), (mid, y + 17))
            v = float(v)
            self.put(f"{v:+.3f}" if abs(v) < 100 else f"{v:+.0f}", bar_x + bar_w + 8, y, self.small, color)
            y += 22
        return y
