"""``tamer rank``: a person ranks the K attempts of each query in a pygame window, and every ranking goes to
the session folder with the attempts it ranks (``tamer.rankings.RankingLog``), from which ``tamer replay``
retrains the reward model. The keys, the folder and the replay are in ``tamer.live.rank_session``.

The window plays the K attempts side by side, all from their first step at once, at the config's
``--step-rate`` (else the env's teaching pace), and loops them after the longest has ended and ``--hold``
seconds have passed; a shorter attempt holds its last frame. The frames are the env's ``rgb_array`` frames,
recorded (scaled to their tile) while the attempts are collected; the log keeps what re-renders them (the
shared reset seed and the actions). A panel beside them shows the query (i of n), the playback step, the
ranking typed so far, the keys, and a note when an answer is saved.

Time per query is the session clock (``SessionClock``: seconds since the session began, continued by
``--resume``) from the query's first frame on screen to the key that answers it, pauses included; the time of
collecting the attempts is not the person's and is left out.
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from tamer.config import Config
from tamer.errors import ConfigError
from tamer.live.rank_session import (
    Answer,
    Attempts,
    RankConfig,
    RankFolder,
    RankInput,
    RankStart,
    check_resume,
    load_policy,
    rank_start,
)
from tamer.rankings import Query, Ranking, RankingLog

KEY_POLL = 0.002  # seconds between keyboard reads while waiting for the next frame
GAP, LABEL = 10, 34  # pixels between tiles; the label row above each
NOTE_SECONDS = 2.5

# (pygame key constants, method, argument): the number keys and the keypad's, then the rest. Fixed.
KEYS: list[tuple[tuple[str, ...], str, int | None]] = [
    *(((f"K_{i}", f"K_KP{i}"), "number", i - 1) for i in range(1, 10)),
    (("K_EQUALS", "K_KP_EQUALS"), "tie", None),
    (("K_LEFT",), "better", 0),
    (("K_RIGHT",), "better", 1),
    (("K_BACKSPACE",), "undo", None),
    (("K_RETURN", "K_KP_ENTER"), "enter", None),
    (("K_SPACE",), "skip", None),
    (("K_p",), "toggle_pause", None),
    (("K_ESCAPE",), "request_quit", None),
]


def legend(k: int) -> list[tuple[str, str]]:
    rows = [(f"1 .. {k}", "best to worst, in order"), ("=", "ties the numbers either side")]
    if k == 2:
        rows = [("Left Right", "left / right is better"), ("=", "tie"), ("1 2", "or rank by number")]
    return [
        *rows,
        ("Backspace", "undo the last key"),
        ("Enter", "submit (the rest tie last)" if k > 2 else "submit"),
        ("Space", "skip this query"),
        ("P", "pause / play"),
        ("Esc", "quit (all is saved)"),
    ]


@dataclass
class RankSummary:
    path: Path
    answered: int  # this run, skips included
    skipped: int  # this run
    logged: int  # in the session
    queries: int  # the session's target
    frames: int


class FrameRecorder(gym.Wrapper):
    """Keeps every frame of every episode played through it (``keep`` scales each as it comes)."""

    def __init__(self, env: gym.Env, keep: Callable[[Any], Any]):
        super().__init__(env)
        self.keep = keep
        self.clips: list[list[Any]] = []

    def reset(self, **kwargs):
        out = self.env.reset(**kwargs)
        self.clips.append([self.keep(self.env.render())])
        return out

    def step(self, action):
        out = self.env.step(action)
        self.clips[-1].append(self.keep(self.env.render()))
        return out


@dataclass
class Shown:
    """The query on screen: its attempts, their frames, the keys typed, when it appeared."""

    query: Query
    clips: list[list[Any]]  # per attempt, T_i + 1 scaled frames (before each step, and after the last)
    input: RankInput
    shown_at: float | None = None  # session clock at its first frame on screen


class RankHud:
    """The K tiles, laid out 1..K left to right (K ≤ 3 in a row, 4 in 2x2, else rows of 3), and the panel."""

    def __init__(self, pygame, k: int, frame_size: tuple[int, int], box: tuple[int, int], footer: str):
        from tamer.hud import MIN_HEIGHT, PAD, PANEL_WIDTH

        self.pg, self.k, self.footer = pygame, k, footer
        self.big, self.font, self.small = (pygame.font.Font(None, s) for s in (30, 24, 21))
        self.huge = pygame.font.Font(None, 40)
        cols = k if k <= 3 else 2 if k == 4 else 3
        rows = math.ceil(k / cols)
        cell = (box[0] // cols, box[1] // rows)
        scale = min((cell[0] - 2 * GAP) / frame_size[0], (cell[1] - LABEL - GAP) / frame_size[1])
        self.tile = (max(1, round(frame_size[0] * scale)), max(1, round(frame_size[1] * scale)))
        dx, dy = (cell[0] - self.tile[0]) // 2, max(GAP, (cell[1] - LABEL - self.tile[1]) // 2)
        self.cells = [((i % cols) * cell[0] + dx, (i // cols) * cell[1] + dy) for i in range(k)]
        self.view = (cols * cell[0], rows * cell[1])
        self.legend = legend(k)
        panel = 2 * PAD + 24 * (10 + len(self.legend))
        self.size = (self.view[0] + PANEL_WIDTH, max(self.view[1] + 32, panel, MIN_HEIGHT))
        self.shown: tuple | None = None

    def scale(self, frame: np.ndarray):
        pg = self.pg
        source = pg.surfarray.make_surface(np.ascontiguousarray(frame[..., :3]).swapaxes(0, 1))
        if self.tile[0] >= 2 * source.get_width():  # pixel art stays crisp
            return pg.transform.scale(source, self.tile)
        return pg.transform.smoothscale(source, self.tile)

    def invalidate(self) -> None:
        self.shown = None

    def draw(self, screen, play: RankPlay, now: float) -> bool:
        """Redraw the window if anything on it changed; returns whether it did."""
        from tamer.hud import ACCENT, BACKGROUND, BAR_TRACK, DIM, PAD, PANEL, TEXT

        shown, st = play.shown, play
        note = st.note if now < st.note_until else ""
        frames = tuple(play.frame_index(i) for i in range(self.k)) if shown else ()
        typed = shown.input.typed() if shown else ""
        key = (id(shown), frames, typed, shown.input.note if shown else "", st.paused, note, st.answered)
        if key == self.shown:
            return False
        self.shown = key
        screen.fill(BACKGROUND)
        put = lambda s, x, y, font=None, color=TEXT: screen.blit(  # noqa: E731
            (font or self.font).render(s, True, color), (x, y)
        )
        if shown is not None:
            for i, (x, y) in enumerate(self.cells):
                clip = shown.clips[i]
                label = str(i + 1) + ({0: "  (Left)", 1: "  (Right)"}[i] if self.k == 2 else "")
                put(label, x, y, self.big, ACCENT if shown.input.badge(i) else TEXT)
                badge = shown.input.badge(i)
                if badge:
                    put(badge, x + self.tile[0] - 60, y + 2, self.big, ACCENT)
                f = frames[i]
                screen.blit(clip[f], (x, y + LABEL))
                if f == len(clip) - 1:
                    put(f"ended, {len(clip) - 1} steps", x + 80, y + 6, self.small, DIM)
        if self.view[1] + 28 <= self.size[1]:
            put(self.footer, PAD, self.size[1] - 26, self.small, DIM)
        x0 = self.view[0]
        self.pg.draw.rect(screen, PANEL, (x0, 0, self.size[0] - x0, self.size[1]))
        x, y = x0 + PAD, PAD
        put(play.title, x, y, self.big)
        put(play.subtitle, x, y + 28, self.small, DIM)
        y += 60
        n = min(st.answered + 1, st.rank.queries)
        put(f"query {n} of {st.rank.queries}", x, y)
        if shown is not None:
            put(f"(id {shown.query.id})", x + 170, y + 2, self.small, DIM)
            y += 24
            longest = max(len(c) for c in shown.clips) - 1
            put(f"step {min(max(frames), longest)} of {longest}", x, y, color=DIM)
            if st.paused:
                put("PAUSED", x + 170, y, color=ACCENT)
            y += 34
            put("your ranking", x, y, color=DIM)
            put(typed or "-", x, y + 22, self.huge, ACCENT if typed else DIM)
            y += 62
            hint = shown.input.note or ("Enter submits; the rest tie last" if typed and self.k > 2 else "")
            put(hint, x, y, self.small, ACCENT if shown.input.note else DIM)
        y = max(y + 30, PAD + 24 * 9)
        self.pg.draw.line(screen, BAR_TRACK, (x, y), (self.size[0] - PAD, y))
        y += 10
        for keys, meaning in self.legend:
            put(keys, x, y, self.small, ACCENT)
            put(meaning, x + 110, y, self.small)
            y += 22
        if note:
            put(note, x, self.size[1] - PAD - 20, self.small, ACCENT)
        return True


@dataclass
class RankContext:
    """Everything the frame loop works with; ``rank`` makes it."""

    screen: Any  # the pygame display surface
    hud: RankHud
    clock: Any  # the session clock: now()
    rank: RankConfig
    log: RankingLog
    attempts: Attempts  # query id -> Query, played through the recorder
    recorder: FrameRecorder
    rate: float  # playback steps per second
    title: str
    subtitle: str
    start: RankStart


class RankPlay:
    """The frame loop of a ranking session: keys, playback, the log. ``run`` goes until the person quits
    (Esc, the window closed, Ctrl+C), the session has its ``queries`` answers, or ``max_frames``."""

    def __init__(self, pygame, ctx: RankContext, on_frame: Callable[[RankPlay, int], None] | None = None):
        self.pg, self.on_frame = pygame, on_frame
        self.screen, self.hud, self.clock, self.rank = ctx.screen, ctx.hud, ctx.clock, ctx.rank
        self.log, self.attempts, self.recorder, self.rate = ctx.log, ctx.attempts, ctx.recorder, ctx.rate
        self.title, self.subtitle = ctx.title, ctx.subtitle
        start = ctx.start
        self.next_id, self.answered = start.next_query, start.answered
        self.run_answered = self.run_skipped = self.frames = 0
        self.keys: dict[int, tuple[str, int | None]] = {}
        for names, method, arg in KEYS:
            for name in names:
                self.keys[getattr(pygame, name)] = (method, arg)
        self.shown: Shown | None = None
        self.held: set[int] = set()
        self.quit, self.running, self.paused = False, True, False
        self.position, self.last = 0.0, None  # playback position in steps; clock at the last advance
        self.note, self.note_until = "", -math.inf

    def run(self, max_frames: int | None = None) -> None:
        period = 1.0 / self.rank.fps if self.rank.fps > 0 else 0.0
        next_frame = time.perf_counter()
        while self.running:
            if self.on_frame is not None:
                self.on_frame(self, self.frames)
            self.collect_events()
            self.advance()
            if self.hud.draw(self.screen, self, self.clock.now()):
                self.pg.display.flip()
            self.frames += 1
            if max_frames is not None and self.frames >= max_frames:
                self.running = False
            if period:
                next_frame = max(next_frame + period, time.perf_counter())
                while (left := next_frame - time.perf_counter()) > 0:
                    time.sleep(min(left, KEY_POLL))

    # --- keys

    def collect_events(self) -> None:
        pg = self.pg
        events = pg.event.get()
        if not events:
            return
        now = self.clock.now()
        for e in events:
            if e.type == pg.KEYDOWN and e.key not in self.held:
                self.held.add(e.key)
                method, arg = self.keys.get(e.key, (None, None))
                if method in ("toggle_pause", "request_quit"):
                    getattr(self, method)()
                elif method is not None and self.shown is not None:
                    typed = self.shown.input
                    answer = getattr(typed, method)(*(() if arg is None else (arg,)))
                    if answer is not None:
                        self.submit(answer, now)
            elif e.type == pg.KEYUP:
                self.held.discard(e.key)
            elif e.type == pg.QUIT:
                self.quit = True
            elif e.type == pg.WINDOWFOCUSLOST:
                self.held.clear()
            elif e.type == pg.WINDOWEXPOSED:
                self.hud.invalidate()

    def toggle_pause(self) -> None:
        self.paused = not self.paused

    def request_quit(self) -> None:
        self.quit = True

    def submit(self, answer: Answer, now: float) -> None:
        """Log the answer with its attempts (the attempts' file first, then the line, flushed); the next
        query comes in ``advance``. Keys after it in the same read are for a query not yet on screen:
        dropped (``shown`` is None until then)."""
        shown = self.shown
        assert shown is not None and shown.shown_at is not None
        seconds = max(0.0, now - shown.shown_at)
        ranking = Ranking(shown.query.id, answer.order, answer.skipped, seconds, now)
        self.log.record(shown.query, ranking)
        self.shown, self.next_id = None, shown.query.id + 1
        self.answered += 1
        self.run_answered += 1
        self.run_skipped += answer.skipped
        said = (
            "skipped"
            if answer.skipped
            else "ranked " + " > ".join(" = ".join(str(i + 1) for i in group) for group in answer.order)
        )
        self.note, self.note_until = f"saved: query {self.answered} {said}", now + NOTE_SECONDS

    # --- playback

    def advance(self) -> None:
        if self.quit:
            self.running = False
            return
        if self.shown is None:
            if self.answered >= self.rank.queries:
                self.running = False
                return
            self.recorder.clips = []
            query = self.attempts(self.next_id)
            clips, self.recorder.clips = self.recorder.clips, []
            if len(clips) != len(query.attempts) or any(
                len(c) != len(a) + 1 for c, a in zip(clips, query.attempts, strict=False)
            ):
                raise RuntimeError("the recorded frames do not match the attempts")
            self.shown = Shown(query, clips, RankInput(self.rank.k))
            self.position, self.last = 0.0, None
        now = self.clock.now()
        shown = self.shown
        if shown.shown_at is None:
            shown.shown_at = now
        if self.last is not None and not self.paused:
            self.position += (now - self.last) * self.rate
            loop = max(len(c) for c in shown.clips) + self.rank.hold * self.rate
            self.position %= loop
        self.last = now

    def frame_index(self, attempt: int) -> int:
        assert self.shown is not None
        return min(int(self.position), len(self.shown.clips[attempt]) - 1)


def rank(
    session_dir: Path,
    cfg: Config | None = None,
    rank_cfg: RankConfig | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    max_frames: int | None = None,
    on_frame: Callable[[RankPlay, int], None] | None = None,
    clock=None,
) -> RankSummary:
    """A ranking session in a window until the person quits, the session has ``queries`` answers, or
    ``max_frames``. ``resume`` continues the session in ``session_dir`` (its config; of ``rank_cfg`` only
    the window's settings and ``queries`` may differ). ``on_frame(loop, frame)`` runs at the start of every
    frame (tests post keys from it); ``clock`` replaces the session's wall clock."""
    from tamer.envs import make_env
    from tamer.live.play import install_sigint, open_display
    from tamer.live.session import SessionClock, claim_folder
    from tamer.session import step_rate

    session_dir = Path(session_dir)
    start = RankStart()
    if resume:
        folder = RankFolder.existing(session_dir)
        saved = RankConfig.load(folder.live)
        rank_cfg = check_resume(saved, rank_cfg, session_dir) if rank_cfg is not None else saved
        cfg = cfg or Config.load(folder.config)
        start = rank_start(folder)
    if cfg is None or rank_cfg is None:
        raise ConfigError("a new ranking session needs a config and a rank config")
    rank_cfg = rank_cfg.validate()
    cfg = Config(**{**cfg.to_dict(), "teacher": "none"}).validate()
    pygame = open_display()  # before any file is written: no display, no empty session folder
    env = log = None
    hold = contextlib.ExitStack()
    try:
        policy = None
        if rank_cfg.policy:
            policy = load_policy(rank_cfg.policy, cfg.env)[1]
        env = make_env(cfg.env, "rgb_array", cfg.max_steps)
        env.reset(seed=cfg.seed)
        first = env.render()
        if not isinstance(first, np.ndarray) or first.ndim != 3:
            raise ConfigError(f"{cfg.env} renders no rgb_array frames: there is nothing to rank by eye")
        title = f"ranking · {cfg.env}"
        who = f"policy {rank_cfg.policy} (ε {rank_cfg.epsilon:g})" if rank_cfg.policy else "random actions"
        footer = f"session {session_dir}  (every answer is saved there as it is given)"
        hud = RankHud(
            pygame,
            rank_cfg.k,
            (first.shape[1], first.shape[0]),
            (rank_cfg.view_width, rank_cfg.view_height),
            footer,
        )
        hold.enter_context(claim_folder(session_dir, resume, overwrite))  # one process per session
        if not resume:
            cfg.save(session_dir / "config.json")
        rank_cfg.save(session_dir / "live.json")
        log = RankingLog(session_dir, append=resume)
        screen = pygame.display.set_mode(hud.size)
        pygame.display.set_caption(f"tamer rank: {cfg.env}  ({session_dir})")
        pygame.key.set_repeat()
        pygame.event.set_blocked(None)
        pygame.event.set_allowed(
            [pygame.QUIT, pygame.KEYDOWN, pygame.KEYUP, pygame.WINDOWFOCUSLOST, pygame.WINDOWEXPOSED]
        )
        recorder = FrameRecorder(env, hud.scale)
        attempts = Attempts(recorder, rank_cfg, cfg.seed, policy)
        ctx = RankContext(
            screen, hud, clock or SessionClock(start.clock), rank_cfg, log, attempts, recorder,
            step_rate(cfg, env), title, f"{who} · seed {cfg.seed}", start,
        )  # fmt: skip
        loop = RankPlay(pygame, ctx, on_frame)
        previous = install_sigint(loop)  # type: ignore[arg-type]  # it sets loop.quit
        try:
            loop.run(max_frames)
        except BaseException as e:
            print(
                f"tamer rank: stopped by {type(e).__name__}; the {loop.answered} answers given are saved in "
                f"{session_dir}",
                file=sys.stderr,
            )
            raise
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
    finally:
        if log is not None:
            log.close()
        if env is not None:
            env.close()
        pygame.display.quit()
        hold.close()
    return RankSummary(
        session_dir, loop.run_answered, loop.run_skipped, loop.answered, rank_cfg.queries, loop.frames
    )
