"""Live teaching: a person watches the agent in a pygame window and presses keys to reward it.

``tamer play`` runs ``tamer.train.run_episode``'s loop with a person as the teacher and the wall clock as
the clock. Two threads share the work:

- The **frame loop** (main thread) draws at ``--fps``, reads the keyboard between frames (every 2 ms while
  it waits for the next frame), steps the environment when the agent's step is due (``--step-rate``, which
  ``[`` and ``]`` change), and logs each keypress to ``feedback.csv`` the moment it is read.
- The **learner** (one background thread; ``--no-learn-in-thread`` runs it inline) makes every call that
  touches the agent, one job at a time in the order ``run_episode`` makes them: record the step's interval,
  credit each keypress of the step (``CreditAssigner.assign``), update Ĥ, choose the next action, update Q.
  A slow model therefore delays the agent's next step, never a frame.

**Time.** Keypresses and step intervals read one clock (``SessionClock``, seconds since the session began).
pygame 2 does not pass on SDL's event timestamp (its KEYDOWN carries key, mod, unicode, scancode, window), so
a keypress is stamped when the loop pumps it from SDL's queue: at most ~2 ms late while the loop waits for the
next frame, at most one frame's work late otherwise. Where an event does carry a ``timestamp`` (ms on
``pygame.time.get_ticks``'s scale) that is used instead. A step's interval runs from the end of the previous
step (or the first action of an episode) to the moment the loop ends it; a keypress is handed over when the
step it was pressed in ends, so every step its delay window can reach has been recorded.

**The session folder**, written as things happen so that Esc, closing the window, Ctrl+C or an exception
lose nothing that was logged (each line is flushed; the model is saved on every exit path)::

    config.json      the run's Config (teacher "none": the person is the teacher)
    live.json        the LiveConfig (rates, keys)
    feedback.csv     time,step,episode,value: one line per keypress, written when it is read; ``step`` is
                     the step after which it is handed to the agent
    steps.csv        one line per step, written once the learner has applied it: step, episode, run,
                     t_start, t_end, action, reward, terminated, truncated, obs, next_obs (floats by repr)
    metrics.csv      one row per episode (train's columns plus seconds, positive, negative, ended, run)
    model.npz        the agent, saved at each episode's end, every --checkpoint-every s, on Ctrl+S, on exit
    checkpoint.json  the last step model.npz includes

**Replay** (``tamer replay SESSION``) builds the agent from config.json and makes the learner's calls again
(``Teaching``, shared with play) with the logged steps and keypresses, so it reproduces Ĥ exactly; a resumed
session (``tamer play --resume``, a new "run") starts from a freshly built agent loading the saved state,
and replay does the same at each run boundary. Keypresses logged during a step that never ended (a crash)
were never handed to the agent; replay counts and skips them.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import signal
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from tamer.config import Config, Settings, add_config_arguments, config_from_args, knob
from tamer.credit import WallClock
from tamer.errors import ConfigError
from tamer.callbacks import METRICS, TeacherPhase
from tamer.feedback import Feedback, FeedbackLog, read_feedback_log
from tamer.io import AppendLog
from tamer.io import save_agent as save_atomic
from tamer.session import Session, build, restore, step_rate
from tamer.train import prepare_out

if TYPE_CHECKING:
    from tamer.hud import Hud

COMMANDS = ("good", "bad", "pause", "slower", "faster", "reset", "save", "quit")
MEANINGS = {
    "good": "good (+1)",
    "bad": "bad (-1)",
    "pause": "pause / resume",
    "slower": "slower agent",
    "faster": "faster agent",
    "reset": "reset episode",
    "save": "save model now",
    "quit": "save and quit",
}
RATES = (0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0)  # what [ and ] step through
KEY_POLL = 0.002  # seconds between keyboard reads while waiting for the next frame
STATS = 1 << 14  # frames (and learner jobs) whose timings are kept, in a ring
MAX_LOGGED_OBS = 4096  # observations with more values (images) are not written to steps.csv
RESUME_GAP = 1.0  # seconds between the end of one run and the start of the next on the session clock
NO_DISPLAY = (
    "no display for the pygame window (DISPLAY is not set and SDL found no video device); train headless "
    "with `tamer train` and a simulated teacher, or run play under a virtual display: xvfb-run tamer play ..."
)


@dataclass
class LiveConfig(Settings):
    """Settings of the live window; the agent, its model and the credit window are the run's ``Config``."""

    KIND = "live config"

    fps: float = knob(
        60.0, "Frames drawn per second (0 = as fast as possible); the agent's pace is --step-rate."
    )
    view_width: int = knob(720, "Width in pixels the environment's frame is scaled to fit.")
    view_height: int = knob(480, "Height in pixels the environment's frame is scaled to fit.")
    checkpoint_every: float = knob(
        30.0,
        "Seconds between model checkpoints (also saved at each episode's end, on the save key and on exit).",
    )
    learn_in_thread: bool = knob(
        True,
        "Learn and choose actions on a background thread, so a slow model delays the agent, never a frame.",
    )
    keys_good: str = knob(
        "up,w,=", "Keys giving reward +1: pygame key names, comma-separated; ctrl+ for Ctrl."
    )
    keys_bad: str = knob("down,s,-", "Keys giving reward -1.")
    keys_pause: str = knob(
        "space", "Pause / resume the agent (keys still count, credited to the frozen step)."
    )
    keys_slower: str = knob("[", "Slower agent (fewer steps per second).")
    keys_faster: str = knob("]", "Faster agent.")
    keys_reset: str = knob("r", "End the episode now and start a new one.")
    keys_save: str = knob("ctrl+s", "Save the model now.")
    keys_quit: str = knob("escape", "Save everything and quit (so do closing the window and Ctrl+C).")

    def validate(self) -> LiveConfig:
        if self.fps < 0:
            raise ConfigError(f"fps must be >= 0, got {self.fps}")
        if self.view_width < 32 or self.view_height < 32:
            raise ConfigError(f"view size must be at least 32x32, got {self.view_width}x{self.view_height}")
        if self.checkpoint_every < 0:
            raise ConfigError(f"checkpoint-every must be >= 0, got {self.checkpoint_every}")
        return self


def key_specs(live: LiveConfig, command: str) -> list[str]:
    return [k.strip() for k in getattr(live, "keys_" + command).split(",") if k.strip()]


def split_ctrl(spec: str) -> tuple[bool, str]:
    """ "ctrl+s" -> (True, "s"), "s" -> (False, "s")."""
    ctrl = spec.lower().startswith("ctrl+") and len(spec) > 5
    return ctrl, spec[5:] if ctrl else spec


def key_label(spec: str) -> str:
    """How a key spec reads on screen: "ctrl+s" -> "Ctrl+S", "escape" -> "Esc", "w" -> "W"."""
    ctrl, name = split_ctrl(spec)
    label = {"escape": "Esc"}.get(name.lower()) or (name.upper() if len(name) == 1 else name.title())
    return ("Ctrl+" if ctrl else "") + label


def legend(live: LiveConfig) -> list[tuple[str, str]]:
    """(keys, meaning) lines for the HUD and --help; slower and faster share a line."""
    labels = {c: " ".join(key_label(s) for s in key_specs(live, c)) for c in COMMANDS}
    lines = []
    for command in COMMANDS:
        if not labels[command] or (command == "faster" and labels["slower"]):
            continue
        if command == "slower" and labels["faster"]:
            lines.append((f"{labels['slower']} {labels['faster']}", "slower / faster agent"))
        else:
            lines.append((labels[command], MEANINGS[command]))
    return lines


def keys_help(live: LiveConfig | None = None) -> str:
    rows = legend(live or LiveConfig())
    width = max(len(keys) for keys, _ in rows)
    return "keys (remap with --keys-*):\n" + "\n".join(
        f"  {keys:<{width}}  {meaning}" for keys, meaning in rows
    )


class KeyMap:
    """Key (and Ctrl) -> command. A binding without ctrl+ does not fire while Ctrl is held, so Ctrl+S saves
    without also counting as the "s" key's -1."""

    def __init__(self, live: LiveConfig):
        import pygame

        self.ctrl = pygame.KMOD_CTRL
        self.table: dict[tuple[int, bool], str] = {}
        for command in COMMANDS:
            for spec in key_specs(live, command):
                ctrl, name = split_ctrl(spec)
                try:
                    code = pygame.key.key_code(name)
                except ValueError:
                    raise ConfigError(
                        f"--keys-{command}: unknown key {name!r} (pygame key names: up, w, =, space, ...)"
                    ) from None
                if (code, ctrl) in self.table:
                    raise ConfigError(
                        f"key {spec!r} is bound twice: to {self.table[code, ctrl]} and {command}"
                    )
                self.table[code, ctrl] = command

    def command(self, key: int, mod: int) -> str | None:
        return self.table.get((key, bool(mod & self.ctrl)))


class SessionClock(WallClock):
    """The session's wall clock: keypress stamps and step intervals both read it. A resumed session starts at
    ``start`` (where the last run stopped, plus a gap), so the session's times never go backwards."""

    def __init__(self, start: float = 0.0):
        super().__init__()
        self.origin -= start


# --- the session folder ---------------------------------------------------------------------------------

STEPS_HEADER = "step,episode,run,t_start,t_end,action,reward,terminated,truncated,obs,next_obs"
LIVE_METRICS = (*METRICS, "seconds", "positive", "negative", "ended", "run")


class StepRecord(NamedTuple):
    """One step as the learner applied it; a line of steps.csv."""

    step: int  # over the whole session, from 1
    episode: int
    run: int  # 0 for the first play of a session, +1 per --resume
    t_start: float
    t_end: float
    action: int
    reward: float
    terminated: bool
    truncated: bool  # also True when the person reset the episode or quit during it
    obs: Any
    next_obs: Any


def format_obs(obs) -> str:
    values = np.asarray(obs).ravel()
    return "" if values.size > MAX_LOGGED_OBS else " ".join(map(repr, values.tolist()))


def parse_obs(text: str, space):
    """Back to the space's dtype and shape, bit for bit (the floats were written with repr)."""
    if not text:
        return None
    dtype = np.dtype(space.dtype) if space.dtype is not None else np.dtype(np.float64)
    parse = int if dtype.kind in "iub" else float
    return np.array([parse(v) for v in text.split(" ")], dtype=dtype).reshape(space.shape)


class StepLog(AppendLog):
    def __init__(self, path: Path, append: bool = False):
        super().__init__(path, STEPS_HEADER, append)

    def write(self, r: StepRecord) -> None:
        self.write_line(
            f"{r.step},{r.episode},{r.run},{r.t_start!r},{r.t_end!r},{r.action},{r.reward!r},"
            f"{int(r.terminated)},{int(r.truncated)},{format_obs(r.obs)},{format_obs(r.next_obs)}"
        )


class MetricsLog(AppendLog):
    def __init__(self, path: Path, append: bool = False):
        super().__init__(path, ",".join(LIVE_METRICS), append)

    def write(self, row: dict) -> None:
        self.write_line(",".join(str(row[k]) for k in LIVE_METRICS))


def flag(text: str) -> bool:
    return text == "1"


STEP_COLUMNS = (int, int, int, float, float, int, float, flag, flag)  # the columns before obs, next_obs


def read_steps(path: Path, space) -> list[StepRecord]:
    """steps.csv back as records. A last line without its newline (the process was killed while writing it)
    is dropped: that step's learner job had not finished either."""
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from None
    if lines[0] != STEPS_HEADER:
        raise ConfigError(f"{path}:1: not a steps log (expected header {STEPS_HEADER!r})")
    rows = []
    for number, line in enumerate(lines[1:-1], start=2):
        f = line.split(",")
        try:
            if len(f) != 11:
                raise ValueError
            values = [convert(v) for convert, v in zip(STEP_COLUMNS, f[:9], strict=True)]
            rows.append(StepRecord(*values, parse_obs(f[9], space), parse_obs(f[10], space)))
        except ValueError:
            raise ConfigError(f"{path}:{number}: expected {STEPS_HEADER}, got {line[:200]!r}") from None
    return rows


def read_feedback_steps(path: Path) -> list[tuple[Feedback, int]]:
    """The feedback log with each keypress's ``step`` (after which step it was handed over)."""
    events = read_feedback_log(path)  # checks the format and the order of times
    lines = path.read_text(encoding="utf-8").split("\n")[1:-1]
    return [(fb, int(line.split(",")[1])) for fb, line in zip(events, lines, strict=True)]


class SessionFolder:
    """Where a session's files live (layout in the module docstring)."""

    def __init__(self, path: Path):
        self.path = path
        self.config, self.live = path / "config.json", path / "live.json"
        self.feedback, self.steps, self.metrics = (
            path / "feedback.csv",
            path / "steps.csv",
            path / "metrics.csv",
        )
        self.model, self.checkpoint = path / "model.npz", path / "checkpoint.json"

    @classmethod
    def existing(cls, path: Path) -> SessionFolder:
        folder = cls(Path(path))
        if not folder.path.is_dir():
            raise ConfigError(f"session folder {path} does not exist")
        if not (folder.config.is_file() and folder.steps.is_file() and folder.feedback.is_file()):
            raise ConfigError(
                f"{path} is not a tamer play session (it needs config.json, steps.csv, feedback.csv)"
            )
        return folder

    def checkpoint_step(self) -> int | None:
        """The last step model.npz includes, or None if there is no model."""
        if not (self.model.is_file() and self.checkpoint.is_file()):
            return None
        try:
            return int(json.loads(self.checkpoint.read_text(encoding="utf-8"))["step"])
        except (OSError, ValueError, KeyError, TypeError):
            return None


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def transplant(source, target: Session) -> None:
    """Give ``target`` (a freshly built session) the saved state of the agent ``source``: what loading a
    checkpoint does, without the file."""
    buffer = io.BytesIO()
    source.save(buffer)
    buffer.seek(0)
    restore(target, buffer)


# --- the learner's side ----------------------------------------------------------------------------------


class Teaching:
    """The agent's side of a session, one call per step, in ``tamer.train.run_episode``'s order.

    Play makes these calls on the learner thread as steps end; replay makes them with the logged steps and
    keypresses. Both going through this class is what makes a replay reproduce Ĥ exactly.
    """

    def __init__(self, s: Session):
        self.s, self.x = s, None

    def begin_episode(self, episode: int, obs) -> int:
        TeacherPhase().on_episode_start(self.s, episode)
        self.x = self.s.agent.encode(obs)
        return self.s.agent.act(self.x)

    def end_step(self, r: StepRecord, feedback: Sequence[Feedback]) -> int | None:
        """Record the step, credit and learn each keypress handed over after it, choose the next action and
        learn the MDP reward; returns the next action, or None when the episode is over."""
        agent, credit = self.s.agent, self.s.credit
        credit.record(self.x, r.action, r.t_start, r.t_end)
        for fb in feedback:
            xs, actions, credits = credit.assign(fb.time)
            agent.learn_feedback(xs, actions, credits, fb.value)
        done = r.terminated or r.truncated
        x_next = agent.encode(r.next_obs)
        action_next = None if done else agent.act(x_next)
        agent.learn_reward(self.x, r.action, r.reward, x_next, action_next, r.terminated)
        if done:
            agent.end_episode()
        self.x = x_next
        return action_next


class Thought(NamedTuple):
    """The learner's answer to the frame loop: the next action and what the HUD shows about the state."""

    action: int | None  # None: the episode is over
    h: np.ndarray | None
    q: np.ndarray | None
    beta: float | None
    frozen: bool


class EpisodeTally:
    def __init__(self, episode: int, run: int, ignored: int):
        self.episode, self.run, self.ignored_start = episode, run, ignored
        self.ret, self.length, self.positive, self.negative = 0.0, 0, 0, 0
        self.t_first = self.t_last = 0.0

    def add(self, r: StepRecord, feedback: Sequence[Feedback]) -> None:
        if not self.length:
            self.t_first = r.t_start
        self.length += 1
        self.ret += r.reward
        self.t_last = r.t_end
        for fb in feedback:
            self.positive += fb.value > 0
            self.negative += fb.value < 0

    def row(self, ended: str, ignored: int) -> dict:
        seconds = self.t_last - self.t_first
        return {
            "episode": self.episode,
            "return": self.ret,
            "length": self.length,
            "feedback": self.positive + self.negative,
            "ignored": ignored - self.ignored_start,
            "steps_per_s": round(self.length / seconds, 3) if seconds > 0 else 0.0,
            "seconds": round(seconds, 3),
            "positive": self.positive,
            "negative": self.negative,
            "ended": ended,
            "run": self.run,
        }


class LiveLearner:
    """What the learner thread does in a live session: ``Teaching`` plus the files that must agree with the
    model (steps.csv, metrics.csv, model.npz, checkpoint.json). Only this object touches the agent while the
    session runs."""

    def __init__(
        self,
        teaching: Teaching,
        folder: SessionFolder,
        steps: StepLog,
        metrics: MetricsLog,
        run: int,
        last_step: int,
    ):
        self.teaching, self.folder, self.steps, self.metrics = teaching, folder, steps, metrics
        self.run, self.last_step = run, last_step
        self.tally: EpisodeTally | None = None

    def begin(self, episode: int, obs) -> Thought:
        action = self.teaching.begin_episode(episode, obs)
        self.tally = EpisodeTally(episode, self.run, self.teaching.s.credit.ignored)
        return self.thought(action)

    def end(self, r: StepRecord, feedback: list[Feedback], ended: str) -> Thought:
        action = self.teaching.end_step(r, feedback)
        self.steps.write(r)
        self.last_step = r.step
        self.tally.add(r, feedback)
        if action is None:
            self.close_episode(ended)
            self.save()
        return self.thought(action)

    def close_episode(self, ended: str) -> None:
        if self.tally is not None and self.tally.length:
            self.metrics.write(self.tally.row(ended, self.teaching.s.credit.ignored))
        self.tally = None

    def save(self) -> None:
        save_atomic(self.teaching.s.agent, self.folder.model)
        write_json_atomic(self.folder.checkpoint, {"step": self.last_step, "run": self.run})

    def thought(self, action: int | None) -> Thought:
        agent, x = self.teaching.s.agent, self.teaching.x
        h = agent.h_values(x) if agent.h is not None else None
        q = agent.q_values(x) if agent.rl is not None else None
        return Thought(action, h, q, agent.beta_at(x), agent.h_frozen)


class Learner:
    """Runs jobs one at a time in submission order: on one background thread, or inline. One worker means the
    order of updates is the order of submission, which is the order replay uses."""

    def __init__(self, threaded: bool):
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="tamer-learner") if threaded else None
        self.seconds = np.zeros(STATS)  # duration of each job, a ring
        self.jobs = 0

    def submit(self, fn: Callable, *args) -> Future:
        if self.pool is not None:
            return self.pool.submit(self.timed, fn, *args)
        future: Future = Future()
        try:
            future.set_result(self.timed(fn, *args))
        except Exception as e:  # raised in the frame loop when it collects the result, as with the thread
            future.set_exception(e)
        return future

    def timed(self, fn: Callable, *args):
        started = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.seconds[self.jobs % STATS] = time.perf_counter() - started
            self.jobs += 1

    def close(self) -> None:
        """Wait for every job already submitted."""
        if self.pool is not None:
            self.pool.shutdown(wait=True)


# --- the frame loop --------------------------------------------------------------------------------------


@dataclass
class Start:
    """Where a run begins: a new session (all zero) or a resumed one."""

    run: int = 0
    episode: int = 0
    steps: int = 0  # steps (and keypress step numbers) already used in the session
    clock: float = 0.0  # session clock at the start


class LivePlay:
    """The frame loop (main thread): keyboard, pacing, the environment, drawing. It never touches the agent;
    it hands each finished step to the learner and starts the next when the learner answers."""

    def __init__(
        self,
        s: Session,
        live: LiveConfig,
        keymap: KeyMap,
        hud: Hud,
        hud_state,
        screen,
        side: LiveLearner,
        learner: Learner,
        log: FeedbackLog,
        start: Start,
        first_obs,
        on_frame: Callable[[LivePlay, int], None] | None = None,
    ):
        import pygame

        self.pg = pygame
        self.s, self.env, self.clock, self.live = s, s.env, s.clock, live
        self.keymap, self.hud, self.st, self.screen = keymap, hud, hud_state, screen
        self.side, self.learner, self.log, self.on_frame = side, learner, log, on_frame
        self.run_index, self.episode, self.first_obs = start.run, start.episode, first_obs
        self.rate = step_rate(s.cfg, s.env)
        self.period = 1.0 / self.rate
        self.st.rate = self.rate
        # the open step (env.step done, interval not yet closed)
        self.step_open = False
        self.t_start = self.due = self.next_due = 0.0
        self.t_next: float | None = None  # where the next step's interval starts (None: at its first action)
        self.obs = self.next_obs = None
        self.action: int | None = None
        self.reward, self.terminated, self.truncated = 0.0, False, False
        self.keys: list[
            Feedback
        ] = []  # pressed since the last step ended; handed over when the open one ends
        self.last_key_time = -np.inf
        self.held: set[int] = set()
        self.paused, self.remaining = False, 0.0
        self.quit = self.reset_requested = self.save_requested = False
        self.running = True
        self.think: Future | None = None  # the learner job whose answer the next step waits for
        self.chores: list[Future] = []  # saves
        self.next_checkpoint = self.clock.now() + live.checkpoint_every
        self.frames = 0
        self.work = np.zeros(STATS)  # seconds of work per frame (events, stepping, drawing, flip)
        self.interval = np.zeros(STATS)  # seconds from one frame's start to the next's
        self.run_steps = self.run_episodes = 0

    def run(self, max_frames: int | None = None) -> None:
        pg = self.pg
        frame_period = 1.0 / self.live.fps if self.live.fps > 0 else 0.0
        self.new_episode(self.first_obs)
        next_frame = last_start = time.perf_counter()
        while self.running:
            if self.on_frame is not None:
                self.on_frame(self, self.frames)
            started = time.perf_counter()
            self.collect_events()
            self.advance()
            changed = self.hud.draw(self.screen, self.st, self.clock.now())
            if changed:
                pg.display.update(changed)
            finished = time.perf_counter()
            i = self.frames % STATS
            self.work[i] = finished - started
            self.interval[i] = started - last_start
            last_start = started
            self.frames += 1
            if max_frames is not None and self.frames >= max_frames:
                self.quit = True
            if frame_period:
                next_frame = max(next_frame + frame_period, finished)  # late: no burst of frames to catch up
                self.wait_until(next_frame)

    def wait_until(self, deadline: float) -> None:
        """Sleep until the next frame in short slices, reading the keyboard between them, so a keypress is
        stamped within ~KEY_POLL of SDL receiving it rather than at the next frame."""
        while (remaining := deadline - time.perf_counter()) > 0:
            time.sleep(min(remaining, KEY_POLL))
            self.collect_events()

    # --- keyboard

    def collect_events(self) -> None:
        pg = self.pg
        events = pg.event.get()
        if not events:
            return
        now = self.clock.now()
        for e in events:
            if e.type == pg.KEYDOWN:
                if e.key in self.held:  # a held key does not repeat
                    continue
                self.held.add(e.key)
                command = self.keymap.command(e.key, getattr(e, "mod", 0))
                if command is not None:
                    self.on_command(command, e, now)
            elif e.type == pg.KEYUP:
                self.held.discard(e.key)
            elif e.type == pg.QUIT:
                self.quit = True
            elif e.type == pg.WINDOWFOCUSLOST:
                self.held.clear()
            elif e.type == pg.WINDOWEXPOSED:
                self.hud.invalidate()

    def stamp(self, event, now: float) -> float:
        """The keypress's time on the session clock: the event's own SDL timestamp where pygame passes one
        on (and it is plausible), else the moment it was pumped; never before the previous keypress."""
        ticks, t = getattr(event, "timestamp", None), now
        if isinstance(ticks, int | float) and (sdl_now := self.pg.time.get_ticks()) > 0:  # 0: no SDL timer
            age = (sdl_now - ticks) / 1000.0
            if 0.0 <= age <= 1.0:
                t = now - age
        return max(t, self.last_key_time)

    def on_command(self, command: str, event, now: float) -> None:
        st = self.st
        if command in ("good", "bad"):
            value = 1.0 if command == "good" else -1.0
            fb = Feedback(float(self.stamp(event, now)), value)
            self.last_key_time = fb.time
            self.keys.append(fb)
            self.log.write(
                fb, self.s.steps + 1, self.episode
            )  # on disk now: the step it will be handed after
            st.feedback += 1
            st.positive += value > 0
            st.negative += value < 0
            st.last_value, st.last_time = value, now
        elif command == "pause":
            self.paused = st.paused = not self.paused
            if self.paused:
                self.remaining = max(0.0, self.due - now) if self.step_open else self.period
            elif self.step_open:
                self.due = now + self.remaining
        elif command in ("slower", "faster"):
            if command == "faster":
                self.rate = next((r for r in RATES if r > self.rate * 1.0001), RATES[-1])
            else:
                self.rate = next((r for r in reversed(RATES) if r < self.rate * 0.9999), RATES[0])
            self.period, st.rate = 1.0 / self.rate, self.rate
            self.remaining = min(self.remaining, self.period)
            if self.step_open and not self.paused:
                self.due = self.t_start + self.period
        elif command == "reset":
            self.reset_requested = True
        elif command == "save":
            self.save_requested = True
        elif command == "quit":
            self.quit = True

    # --- stepping

    def advance(self) -> None:
        now = self.clock.now()
        self.poll()
        if self.quit:
            if self.step_open:
                self.close_step(now, "quit")
            self.running = False
            return
        if self.save_requested:
            self.save_requested = False
            self.chores.append(self.learner.submit(self.side.save))
            self.st.note, self.st.note_until = "model saved", now + 2.0
        if self.live.checkpoint_every and now >= self.next_checkpoint:
            self.next_checkpoint = now + self.live.checkpoint_every
            self.chores.append(self.learner.submit(self.side.save))
        if self.step_open and (self.reset_requested or (not self.paused and now >= self.due)):
            self.close_step(now, "reset" if self.reset_requested else None)
            self.reset_requested = False
            self.poll()  # an inline learner has answered already: the next step starts this frame

    def poll(self) -> None:
        """Collect the learner's answers: raise its failures here, start the next step or episode."""
        if self.chores:
            for chore in self.chores:
                if chore.done():
                    chore.result()
            self.chores = [c for c in self.chores if not c.done()]
        if self.think is None or not self.think.done():
            return
        thought, self.think = self.think.result(), None
        st = self.st
        st.h, st.q, st.beta, st.frozen = thought.h, thought.q, thought.beta, thought.frozen
        if self.quit or not self.running:
            return
        if thought.action is None:
            self.new_episode()
        else:
            self.action = st.action = thought.action
            self.begin_step()

    def new_episode(self, obs=None) -> None:
        if obs is None:
            obs, _ = self.env.reset()
        self.obs, self.t_next = obs, None
        self.hud.set_frame(self.env.render())
        st = self.st
        st.episode, st.step, st.ret, st.positive, st.negative = self.episode, 0, 0.0, 0, 0
        self.think = self.learner.submit(self.side.begin, self.episode, obs)

    def begin_step(self) -> None:
        now = self.clock.now()
        self.t_start = now if self.t_next is None else self.t_next
        self.next_obs, reward, terminated, truncated, _ = self.env.step(self.action)
        self.reward, self.terminated, self.truncated = float(reward), bool(terminated), bool(truncated)
        self.hud.set_frame(self.env.render())
        # on time, the step ends on the cadence; behind a slow learner, it still shows for half a period
        self.due = max(
            self.t_start + self.period if self.t_next is None else self.next_due, now + self.period / 2
        )
        self.step_open = True
        st = self.st
        st.step += 1
        st.total_steps = self.s.steps + 1
        st.ret += self.reward

    def close_step(self, now: float, cut: str | None) -> None:
        """End the open step at ``now`` and hand it, with the keypresses made during it, to the learner.
        ``cut`` ("reset", "quit") ends the episode with it, as a truncation."""
        self.s.steps += 1
        self.run_steps += 1
        r = StepRecord(
            self.s.steps,
            self.episode,
            self.run_index,
            float(self.t_start),
            float(now),
            int(self.action),
            self.reward,
            self.terminated,
            self.truncated or cut is not None,
            self.obs,
            self.next_obs,
        )
        keys, self.keys = self.keys, []
        self.s.feedback += len(keys)
        ended = cut or ("terminated" if self.terminated else "truncated")
        self.think = self.learner.submit(self.side.end, r, keys, ended)
        self.step_open = False
        # keep the cadence: a step ends on the first frame after it is due, so the next counts from due time
        on_time = cut is None and self.due + self.period > now
        self.next_due = self.due + self.period if on_time else now + self.period
        self.obs = self.next_obs
        if r.terminated or r.truncated:
            self.run_episodes += 1
            self.st.note, self.st.note_until = (
                f"episode {self.episode} ended ({ended}), return {self.st.ret:g}",
                now + 3,
            )
            self.episode += 1
            self.t_next = None
        else:
            self.t_next = float(now)

    def finish(self, error: BaseException | None) -> None:
        """However the loop ended (Esc, window closed, Ctrl+C, an exception): let the learner finish every job
        it was given, close the episode that was running, save the model. The logs were flushed line by line.
        """
        self.learner.close()
        failure = None
        for job in (self.think, *self.chores):
            if job is not None and job.done() and job.exception() is not None:
                failure = failure or job.exception()
        try:
            self.side.close_episode("error" if (error or failure) else "quit")
            self.side.save()
        except Exception as e:
            if error is None and failure is None:
                raise
            print(f"tamer play: could not save the model after the error: {e}", file=sys.stderr)
        if error is None and failure is not None:
            raise failure


# --- play ------------------------------------------------------------------------------------------------


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


def resume_point(folder: SessionFolder, space) -> tuple[Start, list[StepRecord]]:
    rows = read_steps(folder.steps, space)
    feedback = read_feedback_steps(folder.feedback)
    last_time = max([r.t_end for r in rows[-1:]] + [fb.time for fb, _ in feedback[-1:]] + [0.0])
    steps = max([r.step for r in rows[-1:]] + [step for _, step in feedback[-1:]] + [0])
    start = Start(
        run=rows[-1].run + 1 if rows else 1,
        episode=rows[-1].episode + 1 if rows else 0,
        steps=steps,
        clock=last_time + RESUME_GAP,
    )
    return start, rows


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
    the start of every frame (tests post key events from it); ``clock`` replaces the session's wall clock."""
    session_dir = Path(session_dir)
    folder = SessionFolder.existing(session_dir) if resume else SessionFolder(session_dir)
    if resume:
        cfg = cfg or Config.load(folder.config)
        live = live or (LiveConfig.load(folder.live) if folder.live.is_file() else LiveConfig())
    if cfg is None:
        raise ConfigError("a new session needs a config")
    cfg = dataclasses.replace(cfg, teacher="none").validate()  # the person is the teacher
    live = (live or LiveConfig()).validate()
    pygame = open_display()  # before any file is written: no display, no empty session folder
    s = logs = None
    try:
        keymap = KeyMap(live)
        s = build(cfg, render_mode="rgb_array")
        start, rows = resume_point(folder, s.env.observation_space) if resume else (Start(), [])
        s.clock = clock or SessionClock(start.clock)
        s.steps = start.steps
        if resume:
            restore_agent(folder, cfg, s, rows)
        else:
            prepare_out(session_dir, overwrite)
            cfg.save(folder.config)
        live.save(folder.live)
        logs = (
            FeedbackLog(folder.feedback, append=resume),
            StepLog(folder.steps, append=resume),
            MetricsLog(folder.metrics, append=resume),
        )
        obs, _ = s.env.reset(seed=cfg.seed + start.run)
        frame = s.env.render()
        hud, st, screen = make_window(pygame, s, live, frame, obs, session_dir)
        side = LiveLearner(Teaching(s), folder, logs[1], logs[2], start.run, start.steps)
        learner = Learner(live.learn_in_thread)
        loop = LivePlay(s, live, keymap, hud, st, screen, side, learner, logs[0], start, obs, on_frame)
        error: BaseException | None = None
        previous = install_sigint(loop)
        try:
            loop.run(max_frames)
        except BaseException as e:
            error = e
            print(
                f"tamer play: stopped by {type(e).__name__}; the feedback log and the model are saved in "
                f"{session_dir}",
                file=sys.stderr,
            )
            raise
        finally:
            try:
                loop.finish(error)
            finally:
                if previous is not None:
                    signal.signal(signal.SIGINT, previous)
    finally:
        for log in logs or ():
            log.close()
        if s is not None:
            s.env.close()
        pygame.display.quit()
    n = min(loop.frames, STATS)
    return PlaySummary(
        session_dir,
        start.run,
        loop.run_steps,
        loop.st.feedback,
        loop.run_episodes,
        loop.frames,
        loop.work[:n].copy(),
        loop.interval[1:n].copy(),
        learner.seconds[: min(learner.jobs, STATS)].copy(),
    )


def restore_agent(folder: SessionFolder, cfg: Config, s: Session, rows: list[StepRecord]) -> None:
    """Load the saved agent; if model.npz does not cover the whole log (the process was killed before it could
    save), rebuild it by replaying the log instead, so nothing taught is lost."""
    last = rows[-1].step if rows else 0
    saved = folder.checkpoint_step()
    if saved == last or (not rows and folder.model.is_file()):
        restore(s, folder.model)
    elif rows:
        print(
            f"tamer play: model.npz covers step {saved or 0} but the log goes to step {last}; rebuilding the "
            "agent by replaying the log",
            file=sys.stderr,
        )
        report = replay_session(folder.path, cfg)
        transplant(report.session.agent, s)
        report.session.env.close()


def make_window(pygame, s: Session, live: LiveConfig, frame, obs, session_dir: Path):
    from tamer.hud import Hud, HudState, action_names

    agent = s.agent
    x = agent.encode(obs)  # pure calls, before the learner starts: what the panel must make room for
    show_beta = agent.beta_at(x) is not None
    n = int(s.env.action_space.n)
    n_q = len(agent.q_values(x)) if agent.rl is not None else 0
    frame_size = None if frame is None else (int(frame.shape[1]), int(frame.shape[0]))
    hud = Hud(
        frame_size,
        (live.view_width, live.view_height),
        n if agent.h is not None else 0,
        n_q,
        show_beta,
        legend(live),
        footer=f"session {session_dir}  (everything is saved there as it happens)",
    )
    cfg = s.cfg
    subtitle = cfg.agent + (f" · {cfg.blend}" if cfg.agent == "tamer+rl" else "") + f" · seed {cfg.seed}"
    st = HudState(title=f"TAMER · {cfg.env}", subtitle=subtitle, actions=action_names(cfg.env, s.env, n))
    screen = pygame.display.set_mode(hud.size)
    pygame.display.set_caption(f"tamer play: {cfg.env}  ({session_dir})")
    pygame.key.set_repeat()  # no repeats: a held key is one keypress
    pygame.event.set_blocked(None)
    pygame.event.set_allowed(
        [pygame.QUIT, pygame.KEYDOWN, pygame.KEYUP, pygame.WINDOWFOCUSLOST, pygame.WINDOWEXPOSED]
    )
    return hud, st, screen


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


# --- replay ----------------------------------------------------------------------------------------------


@dataclass
class ReplayReport:
    steps: int
    episodes: int
    runs: int
    feedback: int  # handed to the agent
    orphans: int  # logged during a step that never ended (a crash): never handed over
    same_actions: int  # steps where the replayed agent chose the logged action
    last_step: int
    checkpoint_step: int | None  # the last step model.npz includes
    diffs: dict[str, float] | None  # max |replayed - saved| per part (h, rl, ...); None without model.npz
    session: Session  # the replayed agent

    @property
    def h_diff(self) -> float | None:
        return (self.diffs or {}).get("h")

    @property
    def exact(self) -> bool:
        """Ĥ (or, without Ĥ, everything saved) matches the saved model exactly."""
        if self.diffs is None:
            return False
        h = self.h_diff
        return h == 0.0 if h is not None else all(d == 0.0 for d in self.diffs.values())


def max_difference(a, b) -> float:
    """Largest absolute difference between two saved states (nested dicts and lists of arrays, tensors,
    numbers); inf where their structure differs, 0 for equal non-numeric leaves."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return float("inf")
        return max((max_difference(a[k], b[k]) for k in a), default=0.0)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        if len(a) != len(b):
            return float("inf")
        return max((max_difference(x, y) for x, y in zip(a, b, strict=True)), default=0.0)
    if isinstance(a, int) and isinstance(b, int):  # exactly, RNG states too (beyond a float's precision)
        return 0.0 if a == b else float(abs(a - b)) if abs(a - b) < 2**53 else float("inf")
    if hasattr(a, "detach") and hasattr(b, "detach"):  # torch tensors, without importing torch here
        a, b = a.detach().cpu().numpy(), b.detach().cpu().numpy()
    try:
        x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    except (TypeError, ValueError):
        return 0.0 if type(a) is type(b) and a == b else float("inf")
    if x.shape != y.shape:
        return float("inf")
    return float(np.abs(x - y).max()) if x.size else 0.0


def agent_state(agent) -> dict:
    """Everything an agent saves, by part ("h", "rl", ...), as the parts' own state dicts."""
    parts = agent.parts()
    state = {name: part.state_dict() for name, part in parts.items() if hasattr(part, "state_dict")}
    state["agent"] = {"episode": agent.episode, "h_frozen": agent.h_frozen}
    return state


def state_diffs(agent, cfg: Config, model: Path) -> dict[str, float]:
    """Max |replayed - saved| per part of the agent, the saved one loaded into a freshly built agent."""
    saved = build(cfg)
    saved.env.close()
    saved.agent.load(model)
    mine, theirs = agent_state(agent), agent_state(saved.agent)
    return {k: max_difference(mine.get(k), theirs.get(k)) for k in sorted(set(mine) | set(theirs))}


def replay_session(session_dir: Path, cfg: Config | None = None) -> ReplayReport:
    """Retrain offline from a session's logs: the same ``Teaching`` calls as live, with the logged steps and
    keypresses, in the same order; then compare with the saved model."""
    folder = SessionFolder.existing(Path(session_dir))
    cfg = cfg or Config.load(folder.config)
    s = build(cfg)
    rows = read_steps(folder.steps, s.env.observation_space)
    if any(r.obs is None or r.next_obs is None for r in rows):
        s.env.close()
        raise ConfigError(
            f"{session_dir}: observations larger than {MAX_LOGGED_OBS} values were not logged, so "
            "this session cannot be replayed"
        )
    pending: dict[int, list[Feedback]] = defaultdict(list)
    for fb, step in read_feedback_steps(folder.feedback):
        pending[step].append(fb)
    teaching, previous, chosen = Teaching(s), None, None
    same = handed = episodes = runs = 0
    for r in rows:
        if previous is None or r.run != previous.run:
            runs += 1
            if previous is not None:  # a resumed run starts from a fresh agent that loaded the saved state
                fresh = build(cfg)
                transplant(s.agent, fresh)
                s.env.close()
                s, teaching = fresh, Teaching(fresh)
        if previous is None or r.run != previous.run or r.episode != previous.episode:
            episodes += 1
            chosen = teaching.begin_episode(r.episode, r.obs)
        same += chosen == r.action
        feedback = pending.pop(r.step, [])
        handed += len(feedback)
        chosen = teaching.end_step(r, feedback)
        previous = r
    s.env.close()
    diffs = state_diffs(s.agent, cfg, folder.model) if folder.model.is_file() else None
    return ReplayReport(
        len(rows),
        episodes,
        runs,
        handed,
        sum(map(len, pending.values())),
        same,
        rows[-1].step if rows else 0,
        folder.checkpoint_step(),
        diffs,
        s,
    )


# --- commands --------------------------------------------------------------------------------------------


def default_session_dir(env_id: str) -> Path:
    return Path("sessions") / f"{time.strftime('%Y%m%d-%H%M%S')}-{env_id.replace('/', '-')}"


def cmd_play(args: argparse.Namespace) -> int:
    if args.resume:
        folder = SessionFolder.existing(Path(args.resume))
        changed = [
            "--" + f.name.replace("_", "-")
            for f in dataclasses.fields(Config)
            if getattr(args, f.name, None) is not None and f.name != "step_rate"
        ]
        if changed or args.config or args.out:
            given = ", ".join(changed + ["--config"] * bool(args.config) + ["--out"] * bool(args.out))
            raise ConfigError(
                f"--resume continues {args.resume} with its own config (one config per session, "
                f"so replay can reproduce it); drop {given}"
            )
        cfg = config_from_args(args, Config.load(folder.config))
        saved_live = LiveConfig.load(folder.live) if folder.live.is_file() else None
        live = config_from_args(args, saved_live, cls=LiveConfig)
        path = folder.path
    else:
        cfg = config_from_args(args, Config.load(Path(args.config)) if args.config else None)
        live = config_from_args(args, None, cls=LiveConfig)
        path = Path(args.out) if args.out else default_session_dir(cfg.env)
    summary = play(path, cfg, live, resume=bool(args.resume), overwrite=args.overwrite)
    print(
        f"session {path}: {summary.steps} steps, {summary.feedback} keypresses, {summary.episodes} episodes "
        f"ended this run; continue with `tamer play --resume {path}`, check with `tamer replay {path}`"
    )
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    report = replay_session(Path(args.session))
    print(
        f"replayed {args.session}: {report.steps} steps in {report.episodes} episodes, {report.runs} run(s), "
        f"{report.feedback} keypresses handed to the agent"
    )
    if report.orphans:
        print(
            f"  {report.orphans} keypress(es) logged during a step that never ended (the session stopped on "
            "an error): never given to the agent, skipped"
        )
    if report.steps:
        print(
            f"  the replayed agent chose the logged action at {report.same_actions} of {report.steps} steps"
        )
    if report.diffs is None:
        print("  no model.npz to compare with")
    else:
        h = report.h_diff
        if h is not None:
            verdict = "matches model.npz exactly" if h == 0.0 else "differs from model.npz"
            print(f"  Ĥ {verdict} (max |difference| {h:.3g})")
        others = {k: d for k, d in report.diffs.items() if k != "h"}
        differing = [k for k, d in others.items() if d != 0.0]
        if others:
            print(
                "  rest of the saved agent ("
                + ", ".join(others)
                + "): "
                + ("exact" if not differing else "differs in " + ", ".join(differing))
            )
        if report.checkpoint_step is not None and report.checkpoint_step != report.last_step:
            print(
                f"  note: model.npz covers step {report.checkpoint_step} but the log goes to step "
                f"{report.last_step} (the session was killed before it could save); rebuild it with "
                f"`tamer replay {args.session} --out {Path(args.session) / 'model.npz'}`"
            )
    if args.out:
        out = Path(args.out)
        save_atomic(report.session.agent, out)
        if (
            out.resolve() == (Path(args.session) / "model.npz").resolve()
        ):  # repaired in place: resume loads it
            write_json_atomic(out.with_name("checkpoint.json"), {"step": report.last_step})
        print(f"  replayed model written to {out}")
    return 0 if report.exact else 1


def add_commands(sub) -> None:
    """Add ``play`` and ``replay`` to the CLI (pygame is imported only when play runs)."""
    formatter = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "play",
        help="Teach live: watch the agent in a window and press keys to reward it.",
        description="Teach an agent live. The window shows the environment, Ĥ(s, a) of every action (and Q "
        "and β for tamer+rl) and your feedback; every keypress, step and checkpoint goes to the session "
        "folder as it happens. Every config field is a flag (the simulated teacher's are unused: you are "
        "the teacher). --step-rate sets the agent's pace.",
        epilog=keys_help(),
        formatter_class=formatter,
    )
    p.add_argument("--out", help="Session folder to create (default: sessions/<date>-<time>-<env>).")
    p.add_argument("--overwrite", action="store_true", help="Replace what --out holds.")
    p.add_argument(
        "--resume", metavar="SESSION", help="Continue this session (its config; live flags apply)."
    )
    p.add_argument("--config", help="Start from this config.json (flags given override it).")
    add_config_arguments(p)
    add_config_arguments(p, cls=LiveConfig)
    p.set_defaults(run=cmd_play)

    p = sub.add_parser(
        "replay",
        help="Retrain a play session offline from its logs and check that it reproduces the saved Ĥ.",
        description="Rebuild the agent of a `tamer play` session from its config, steps and feedback logs, "
        "making the same updates in the same order as live, and compare it with the saved model.npz. Exit "
        "code 0 when Ĥ matches exactly, 1 otherwise.",
    )
    p.add_argument("session", help="Session folder written by tamer play.")
    p.add_argument("--out", help="Also write the replayed model to this .npz file.")
    p.set_defaults(run=cmd_replay)
