"""``play``: a live session in a pygame window, from the display check to the last save.

pygame is imported only here (when play runs) and by the modules it drives (the key map, the frame loop and
the HUD), never by importing ``tamer.live``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tamer.config import Config
from tamer.errors import ConfigError
from tamer.live.demo import DemoRecorder
from tamer.live.keys import ActionKeys, KeyboardSource, KeyMap, LiveConfig, legend
from tamer.live.loop import LiveContext, LivePlay, Window
from tamer.live.replay import ALL, replay_session
from tamer.live.session import (
    MAX_LOGGED_OBS,
    SessionClock,
    SessionFolder,
    Start,
    learn_late,
    open_keys,
    read_feedback_steps,
    resume_point,
)
from tamer.live.worker import STATS, Learner, LiveLearner
from tamer.session import Session, build, restore, transplant
from tamer.stepper import Step

NO_DISPLAY = (
    "no display for the pygame window (DISPLAY is not set and SDL found no video device); train headless "
    "with `tamer train` and a simulated teacher, or run play under a virtual display: xvfb-run tamer play ..."
)


@dataclass
class PlaySummary:
    path: Path
    run: int
    steps: int  # this run
    feedback: int
    episodes: int  # ended in this run
    frames: int
    frame_work: np.ndarray  # seconds of work per frame (the last STATS frames)
    frame_interval: np.ndarray  # seconds between frame starts
    job_seconds: np.ndarray  # seconds per learner job
    demonstrate: bool = False  # a demonstration session (the steps are the person's actions)


def play(
    session_dir: Path,
    cfg: Config | None = None,
    live: LiveConfig | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    max_frames: int | None = None,
    on_frame: Callable[[LivePlay, int], None] | None = None,
    clock=None,
) -> PlaySummary:
    """Run a live session in a window until the person quits (or ``max_frames``). ``resume`` continues the
    session in ``session_dir`` (its config unless ``cfg`` is given). ``on_frame(loop, frame)`` is called at
    the start of every frame (tests post key events from it); ``clock`` replaces the session's wall clock.
    With ``live.demonstrate`` the person drives the agent with the action keys and the steps are logged
    (``tamer.live.demo``); a session stays what it began as."""
    session_dir = Path(session_dir)
    folder = SessionFolder.existing(session_dir) if resume else SessionFolder(session_dir)
    if resume:
        cfg = cfg or Config.load(folder.config)
        live = live or (LiveConfig.load(folder.live) if folder.live.is_file() else LiveConfig())
        if live.demonstrate != folder.demonstration():
            kind = "a demonstration" if folder.demonstration() else "a teaching"
            raise ConfigError(
                f"{session_dir} is {kind} session and --resume continues it as one; drop "
                f"--{'no-' if live.demonstrate is False else ''}demonstrate"
            )
    if cfg is None:
        raise ConfigError("a new session needs a config")
    cfg = dataclasses.replace(cfg, teacher="none").validate()  # the person is the teacher
    live = (live or LiveConfig()).validate()
    pygame = open_display()  # before any file is written: no display, no empty session folder
    s = source = None
    hold = contextlib.ExitStack()
    try:
        keymap = KeyMap(live)
        s = build(cfg, render_mode="rgb_array")
        demo = action_keys(s, keymap) if live.demonstrate else None  # or refused, before any file is written
        hold.enter_context(folder.claim(resume, overwrite))  # one process per session, until it ends
        start, rows = resume_point(folder, s.env.observation_space) if resume else (Start(), [])
        s.clock = clock or SessionClock(start.clock)
        s.steps = start.steps
        late = 0
        if resume:
            if demo is None:  # a demonstration session has no agent to restore
                late = restore_agent(folder, cfg, s, rows)
        else:
            cfg.save(folder.config)
        live.save(folder.live)
        source = s.source = KeyboardSource(folder.feedback, append=resume)
        obs, _ = s.env.reset(seed=cfg.seed + start.run)
        window = make_window(pygame, s, live, keymap, obs, session_dir, demo)
        if demo is None:
            learner: LiveLearner | DemoRecorder = LiveLearner(
                s, folder, start.run, start.applied, resume, late
            )
        else:
            learner = DemoRecorder(s, folder, start.run, append=resume)
        thread = Learner(live.learn_in_thread and demo is None)  # a recorder's writes run inline
        loop = LivePlay(LiveContext(s, live, window, learner, thread, source, start, demo), on_frame)
        error: BaseException | None = None
        previous = install_sigint(loop)
        try:
            learner.open()
            loop.run(obs, max_frames)
        except BaseException as e:
            error = e
            saved = "the steps are" if demo is not None else "the feedback log and the model are"
            print(
                f"tamer play: stopped by {type(e).__name__}; {saved} saved in {session_dir}", file=sys.stderr
            )
            raise
        finally:
            try:
                loop.finish(error)
            finally:
                if previous is not None:
                    signal.signal(signal.SIGINT, previous)
    finally:
        try:
            if source is not None:
                source.close()
            if s is not None:
                s.env.close()
            pygame.display.quit()
        finally:
            hold.close()  # the session is free again
    stats = loop.stats
    n = min(stats.frames, STATS)
    return PlaySummary(
        session_dir,
        start.run,
        stats.steps,
        loop.st.feedback,
        stats.episodes,
        stats.frames,
        stats.work[:n].copy(),
        stats.interval[1:n].copy(),
        thread.job_seconds(),
        demo is not None,
    )


def open_display(size: tuple[int, int] = (1, 1)):
    """Initialise pygame's display, or refuse in one line where there is none. SDL falls back to an invisible
    "offscreen" driver when it finds no display, so that counts as none unless asked for by name (tests set
    SDL_VIDEODRIVER=dummy)."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame

    asked = os.environ.get("SDL_VIDEODRIVER", "")
    if (
        sys.platform.startswith("linux")
        and not asked
        and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    ):
        raise ConfigError(NO_DISPLAY)
    try:
        pygame.display.init()
    except pygame.error as e:
        raise ConfigError(f"{NO_DISPLAY} [SDL: {e}]") from None
    if not asked and pygame.display.get_driver() in ("offscreen", "dummy"):
        pygame.display.quit()
        raise ConfigError(NO_DISPLAY)
    pygame.font.init()
    return pygame


def restore_agent(folder: SessionFolder, cfg: Config, s: Session, rows: list[Step]) -> int:
    """Give a resumed session's agent everything the session taught: model.npz when it is the one
    checkpoint.json describes and covers the whole log, else (missing, unreadable, another file, killed
    before it could save) the agent rebuilt by replaying the log, with a one-line note, so nothing taught is
    lost. A model.npz that is readable but not this config's agent (other parts, other shapes) is refused
    in one line: never an agent left blank or half loaded. Then the keypresses of the step that never ended
    are taught (``tamer.live.session.learn_late``). Returns how many of those keypresses the agent holds
    (checkpoint.json's ``late``)."""
    last = rows[-1].step if rows else 0
    problem = folder.model_problem(last)
    if folder.model.is_file() and folder.model_unreadable() is None:  # does it fit the config?
        try:
            restore(s, folder.model)
        except ConfigError as e:
            where = "" if str(folder.model) in str(e) else f"{folder.model}: "
            raise ConfigError(
                f"{where}{e}: it does not fit this session's config.json, so it is not this session's model; "
                "move it away and --resume rebuilds the agent from the logs"
            ) from None
    keys = open_keys(read_feedback_steps(folder.feedback), rows)
    if problem is None:
        record = folder.checkpoint_record()
        held = min(record["late"] if record is not None else 0, len(keys))
        return held + learn_late(s, rows, keys[held:])
    if not rows and not folder.model.is_file():
        return 0  # nothing was taught yet: the fresh agent is the session's
    print(f"tamer play: {problem}; rebuilding the agent by replaying the log", file=sys.stderr)
    report = replay_session(folder.path, cfg, late=ALL)
    transplant(report.session.agent, s)
    report.session.env.close()
    return report.late_at_end


def action_keys(s: Session, keymap: KeyMap) -> ActionKeys:
    """A demonstration session's action keys, or a one-line refusal: the env has none, one is a command's,
    or its observations are too large for steps.csv (the demonstrations are the observations)."""
    from tamer.hud import action_names

    n = int(s.env.action_space.n)  # type: ignore[attr-defined]
    keys = ActionKeys.of_env(s.env, s.cfg.env, action_names(s.cfg.env, s.env, n))
    keys.check_free(keymap)
    size = int(np.prod(s.env.observation_space.shape or (1,)))
    if size > MAX_LOGGED_OBS:
        raise ConfigError(
            f"{s.cfg.env}: observations of {size} values are not logged (at most {MAX_LOGGED_OBS}), and "
            "demonstrations are made of them; --demonstrate needs a smaller observation"
        )
    return keys


def make_window(
    pygame,
    s: Session,
    live: LiveConfig,
    keymap: KeyMap,
    obs,
    session_dir: Path,
    demo: ActionKeys | None = None,
) -> Window:
    from tamer.hud import Hud, HudState, action_names

    agent, cfg = s.agent, s.cfg
    frame: np.ndarray | None = s.env.render()  # type: ignore[assignment]  # render_mode "rgb_array"
    x = agent.encode(obs)  # pure calls, before the learner starts: what the panel must make room for
    n = int(s.env.action_space.n)  # type: ignore[attr-defined]  # make_env checked Discrete
    teaching = demo is None  # a demonstration shows the person's action, not the agent's values
    keys = legend(live) if demo is None else [*demo.legend(), *legend(live)]
    hud = Hud(
        None if frame is None else (int(frame.shape[1]), int(frame.shape[0])),
        (live.view_width, live.view_height),
        n if agent.h is not None and teaching else 0,
        len(agent.q_values(x)) if agent.rl is not None and teaching else 0,
        agent.beta_at(x) is not None and teaching,
        keys,
        footer=f"session {session_dir}  (everything is saved there as it happens)",
        demonstrating=not teaching,
    )
    if demo is None:
        title = f"TAMER · {cfg.env}"
        subtitle = cfg.agent + (f" · {cfg.blend}" if cfg.agent == "tamer+rl" else "") + f" · seed {cfg.seed}"
    else:
        title, subtitle = f"demonstrating · {cfg.env}", f"no key: {demo.no_key_meaning()} · seed {cfg.seed}"
    st = HudState(title=title, subtitle=subtitle, actions=action_names(cfg.env, s.env, n))
    screen = pygame.display.set_mode(hud.size)
    mode = "play --demonstrate" if demo is not None else "play"
    pygame.display.set_caption(f"tamer {mode}: {cfg.env}  ({session_dir})")
    pygame.key.set_repeat()  # no repeats: a held key is one keypress
    pygame.event.set_blocked(None)
    pygame.event.set_allowed(
        [pygame.QUIT, pygame.KEYDOWN, pygame.KEYUP, pygame.WINDOWFOCUSLOST, pygame.WINDOWEXPOSED]
    )
    return Window(hud, st, screen, keymap)


def install_sigint(loop: LivePlay):
    """Ctrl+C in the terminal quits like Esc (a second one interrupts at once). Only the main thread can."""

    def on_sigint(signum, frame):
        if loop.quit:
            raise KeyboardInterrupt
        loop.quit = True

    try:
        return signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not the main thread
        return None
