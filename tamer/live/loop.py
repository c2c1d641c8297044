"""The frame loop of a live session (main thread): keyboard, pacing, the environment, drawing.

It never touches the agent: it hands each finished step, with the keys pressed during it, to the learner
(``tamer.live.worker``) and starts the next step when the learner answers with the next action. In a
demonstration session the person's action keys (``ActionKeys``) choose each step's action when it starts,
and the learner's place is taken by a recorder that only logs (``tamer.live.demo``).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections import deque
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tamer.feedback import Feedback
from tamer.live.keys import COMMANDS, ActionKeys, KeyboardSource, KeyMap, LiveConfig
from tamer.live.session import Start
from tamer.live.worker import STATS, Learner, LiveLearner, Thought
from tamer.session import Session, step_rate
from tamer.stepper import Step

if TYPE_CHECKING:
    from tamer.hud import Hud, HudState
    from tamer.live.demo import DemoRecorder

RATES = (0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0)  # what [ and ] step through
KEY_POLL = 0.002  # seconds between keyboard reads while waiting for the next frame
ANSWER_WAIT = 0.004  # seconds a frame that ended a step waits for the learner's answer before drawing
PACE_STEPS = 20  # the HUD's pace: measured over the last this many step intervals


@dataclass
class Window:
    """What the loop draws on and reads the keys with."""

    hud: Hud
    st: HudState  # what the panel shows
    screen: Any  # the pygame display surface
    keymap: KeyMap


@dataclass
class LiveContext:
    """Everything the frame loop works with; ``tamer.live.play.play`` makes it."""

    s: Session  # the env, the session clock, the step count (the agent is the learner's)
    live: LiveConfig
    window: Window
    learner: LiveLearner | DemoRecorder  # the only code that touches the agent (or, demonstrating, logs)
    thread: Learner  # runs the learner's jobs in order: on its thread, or inline
    source: KeyboardSource  # the person's keys (also s.source)
    start: Start
    demo: ActionKeys | None = None  # demonstrating: the person's action keys choose the actions


@dataclass
class OpenStep:
    """The step on screen: the env has stepped, the step's interval is not closed yet."""

    t_start: float
    due: float  # when it ends, unless paused
    action: int
    obs: Any
    next_obs: Any
    reward: float
    terminated: bool
    truncated: bool

    def close(self, step: int, episode: int, run: int, t_end: float, cut: bool) -> Step:
        """The finished step; ``cut``: the person ended the episode with it (a truncation)."""
        return Step(
            step,
            episode,
            run,
            float(self.t_start),
            float(t_end),
            int(self.action),
            self.reward,
            self.terminated,
            self.truncated or cut,
            self.obs,
            self.next_obs,
        )


@dataclass
class Pace:
    """The agent's pace: steps per second asked for, the pause, the cadence steps keep, and the pace they
    really keep (``measured``, what the HUD shows: from the ends of the last ``PACE_STEPS`` steps)."""

    rate: float
    paused: bool = False
    remaining: float = 0.0  # while paused: what was left of the open step
    next_due: float = 0.0  # when the next step ends if it starts on the cadence
    t_next: float | None = None  # where the next step's interval starts (None: at its first action)
    last_end: float | None = None  # when the last step of this episode ended
    skip: bool = False  # the open step's interval says nothing of the pace (a pause, a cut)
    intervals: deque = dataclasses.field(default_factory=lambda: deque(maxlen=PACE_STEPS))

    @property
    def period(self) -> float:
        return 1.0 / self.rate

    def change(self, faster: bool) -> None:
        if faster:
            self.rate = next((r for r in RATES if r > self.rate * 1.0001), RATES[-1])
        else:
            self.rate = next((r for r in reversed(RATES) if r < self.rate * 0.9999), RATES[0])
        self.remaining = min(self.remaining, self.period)
        self.intervals.clear()  # measured afresh at the new rate

    def ended(self, t_end: float, episode_over: bool, cut: bool) -> None:
        """A step ended at ``t_end``: the time since the last one's end is one interval of the pace (not
        across a pause, a cut or an episode's reset)."""
        if self.last_end is not None and not (self.skip or cut):
            self.intervals.append(t_end - self.last_end)
        self.last_end, self.skip = (None if episode_over else t_end), False

    @property
    def measured(self) -> float:
        """Steps per second over the last intervals (3 significant digits); the rate asked for until two
        intervals at it have been measured."""
        total = sum(self.intervals)
        if len(self.intervals) < 2 or total <= 0:
            return self.rate
        return float(f"{len(self.intervals) / total:.3g}")


class FrameStats:
    """What the run did and how long its frames took (the last STATS frames, in rings)."""

    def __init__(self):
        self.frames = self.steps = self.episodes = 0  # steps and episodes ended in this run
        self.work = np.zeros(STATS)  # seconds of work per frame (events, stepping, drawing, flip)
        self.interval = np.zeros(STATS)  # seconds from one frame's start to the next's

    def add(self, started: float, finished: float, previous_start: float) -> None:
        i = self.frames % STATS
        self.work[i], self.interval[i] = finished - started, started - previous_start
        self.frames += 1


class LivePlay:
    """The frame loop. ``run`` draws, reads keys and steps until the person quits (``quit`` set: Esc, the
    window closed, Ctrl+C, ``max_frames``); ``finish`` then lets the learner finish and saves."""

    def __init__(self, ctx: LiveContext, on_frame: Callable[[LivePlay, int], None] | None = None):
        import pygame

        self.pg, self.on_frame = pygame, on_frame
        self.s, self.env, self.clock, self.live = ctx.s, ctx.s.env, ctx.s.clock, ctx.live
        w = ctx.window
        self.hud, self.st, self.screen, self.keymap = w.hud, w.st, w.screen, w.keymap
        self.learner, self.thread, self.source, self.demo = ctx.learner, ctx.thread, ctx.source, ctx.demo
        self.waiting = False  # demonstrating: the next step is to start when the person acts
        self.prompted = False  # the HUD asks for a key (no key yet, no no-op, no last action)
        self.run_index, self.episode = ctx.start.run, ctx.start.episode
        self.pace = Pace(step_rate(ctx.s.cfg, ctx.s.env))
        self.st.rate = self.pace.rate
        self.obs: Any = None  # the observation the next step starts from
        self.open_step: OpenStep | None = None
        self.held: set[int] = set()  # keys down now: a held key does not repeat
        self.quit = self.reset_requested = self.save_requested = False
        self.running = True
        self.think: Future | None = None  # the learner job whose answer the next step waits for
        self.chores: list[Future] = []  # saves
        self.next_checkpoint = self.clock.now() + ctx.live.checkpoint_every
        self.stats = FrameStats()
        self.frame_period = 1.0 / ctx.live.fps if ctx.live.fps > 0 else 0.0

    def run(self, first_obs, max_frames: int | None = None) -> None:
        frame_period = self.frame_period
        self.new_episode(first_obs)
        next_frame = last_start = time.perf_counter()
        early = False  # the last wait ended before its frame was due (a late learner answer came)
        while self.running:
            if self.on_frame is not None:
                self.on_frame(self, self.stats.frames)
            started = time.perf_counter()
            self.collect_events()
            self.advance()
            changed = self.hud.draw(self.screen, self.st, self.clock.now())
            if changed:
                self.pg.display.update(changed)
            finished = time.perf_counter()
            self.stats.add(started, finished, last_start)
            last_start = started
            if max_frames is not None and self.stats.frames >= max_frames:
                self.quit = True
            if frame_period:
                # late: no burst of frames to catch up; after an extra frame, the one that was due still is
                next_frame = max(next_frame + (0.0 if early else frame_period), finished)
                early = self.wait_until(next_frame)

    def wait_until(self, deadline: float) -> bool:
        """Sleep until the next frame in short slices, reading the keyboard between them, so a keypress is
        stamped within ~KEY_POLL of SDL receiving it rather than at the next frame. A learner answer that
        missed its frame (a slow model) ends the wait the moment it arrives: the next step starts, and is
        drawn, then (an extra frame) rather than a frame late, which would slow the agent below the pace
        asked for. Returns whether it ended early so."""
        while (remaining := deadline - time.perf_counter()) > 0:
            think = self.think
            if think is not None and not think.done():
                futures.wait([think], timeout=min(remaining, KEY_POLL))
                self.collect_events()
                if think.done():
                    return True
            else:
                time.sleep(min(remaining, KEY_POLL))
                self.collect_events()
        return False

    # --- keyboard: each command is a row of keys.COMMANDS naming its method here

    def collect_events(self) -> None:
        pg = self.pg
        events = pg.event.get()
        if not events:
            return
        now = self.clock.now()
        for e in events:
            if e.type == pg.KEYDOWN:
                if e.key in self.held:
                    continue
                self.held.add(e.key)
                command = self.keymap.command(e.key, getattr(e, "mod", 0))
                if command is not None:
                    getattr(self, COMMANDS[command].action)(e, now)
                elif self.demo is not None and e.key in self.demo.keys:
                    self.demo.press(e.key)
            elif e.type == pg.KEYUP:
                self.held.discard(e.key)
                if self.demo is not None:
                    self.demo.release(e.key)
            elif e.type == pg.QUIT:
                self.quit = True
            elif e.type == pg.WINDOWFOCUSLOST:
                self.held.clear()
                if self.demo is not None:
                    self.demo.clear()
            elif e.type == pg.WINDOWEXPOSED:
                self.hud.invalidate()

    def stamp(self, event, now: float) -> float:
        """The keypress's time on the session clock: the event's own SDL timestamp where pygame passes one
        on (and it is plausible), else the moment it was pumped."""
        ticks = getattr(event, "timestamp", None)
        if isinstance(ticks, int | float) and (sdl_now := self.pg.time.get_ticks()) > 0:  # 0: no SDL timer
            age = (sdl_now - ticks) / 1000.0
            if 0.0 <= age <= 1.0:
                return now - age
        return now

    def good(self, event, now: float) -> None:
        self.press(1.0, event, now)

    def bad(self, event, now: float) -> None:
        self.press(-1.0, event, now)

    def press(self, value: float, event, now: float) -> None:
        # logged now, with the step after which it is handed over: the open one (or the next to open)
        self.source.press(Feedback(self.stamp(event, now), value), self.s.steps + 1, self.episode)
        st = self.st
        st.feedback += 1
        st.positive += value > 0
        st.negative += value < 0
        st.last_value, st.last_time = value, now

    def toggle_pause(self, event, now: float) -> None:
        pace, step = self.pace, self.open_step
        pace.paused = self.st.paused = not pace.paused
        pace.skip = True  # the step open across the pause lasts what the pause lasts
        if pace.paused:
            pace.remaining = max(0.0, step.due - now) if step is not None else pace.period
        elif step is not None:
            step.due = now + pace.remaining

    def slower(self, event, now: float) -> None:
        self.change_rate(faster=False)

    def faster(self, event, now: float) -> None:
        self.change_rate(faster=True)

    def change_rate(self, faster: bool) -> None:
        pace, step = self.pace, self.open_step
        pace.change(faster)
        self.st.rate = pace.measured  # the new rate, until steps at it are measured
        if step is not None and not pace.paused:
            step.due = step.t_start + pace.period

    def request_reset(self, event, now: float) -> None:
        self.reset_requested = True

    def request_save(self, event, now: float) -> None:
        self.save_requested = True

    def request_quit(self, event, now: float) -> None:
        self.quit = True

    # --- stepping

    def advance(self) -> None:
        now = self.clock.now()
        self.poll()
        if self.quit:
            if self.open_step is not None:
                self.close_step(now, "quit")
            self.running = False
            return
        if self.save_requested:
            self.save_requested = False
            self.chores.append(self.thread.submit(self.learner.save))
            saved = "log saved" if self.demo is not None else "model saved"
            self.st.note, self.st.note_until = saved, now + 2.0
        if self.live.checkpoint_every and now >= self.next_checkpoint:
            self.next_checkpoint = now + self.live.checkpoint_every
            self.chores.append(self.thread.submit(self.learner.save))
        if self.waiting:
            self.reset_requested = False  # the episode has not begun: nothing to reset
            if not self.pace.paused:
                self.demonstrate()
        step = self.open_step
        # a step ends on the frame nearest its due time (frames jitter around their grid; the first frame
        # after it would lose a frame whenever the cadence and the frames line up), keeping the cadence
        due = step.due - self.frame_period / 2 if step is not None else 0.0
        if step is not None and (self.reset_requested or (not self.pace.paused and now >= due)):
            self.close_step(now, "reset" if self.reset_requested else None)
            self.reset_requested = False
            self.await_answer()  # the next step starts this frame, not the next one

    def await_answer(self) -> None:
        """Give the learner up to ANSWER_WAIT to answer (an inline one has; a linear model on the thread
        takes well under a millisecond), then start the next step: in the frame that ended the last one, so
        steps keep the pace asked for and are drawn as they start. A slower answer is taken up by the wait
        for the next frame as soon as it comes (``wait_until``)."""
        think = self.think
        if think is not None and not think.done():
            futures.wait([think], timeout=ANSWER_WAIT)
        self.poll()

    def poll(self) -> None:
        """Collect the learner's answers: raise its failures here, start the next step or episode."""
        if self.chores:
            for chore in self.chores:
                if chore.done():
                    chore.result()
            self.chores = [c for c in self.chores if not c.done()]
        if self.think is None or not self.think.done():
            return
        thought: Thought = self.think.result()
        self.think = None
        st = self.st
        st.h, st.q, st.beta, st.frozen = thought.h, thought.q, thought.beta, thought.frozen
        if self.quit or not self.running:
            return
        if thought.action is None:
            self.new_episode()
        elif self.demo is not None:
            self.waiting = True
            self.demonstrate()
        else:
            self.begin_step(thought.action)

    def demonstrate(self) -> None:
        """Start the next step with the person's action; with no key yet and nothing to fall back on (no
        no-op, no last action this episode) the step waits for the first key, and starts when it comes."""
        assert self.demo is not None
        action, st = self.demo.choose(), self.st
        if action is None:
            if not self.prompted:
                keys = " ".join(label for label, _ in self.demo.legend()[:-1])
                st.note, st.note_until, self.prompted = f"press {keys} to start", float("inf"), True
            return
        self.waiting = False
        if self.prompted:
            st.note_until, self.prompted = float("-inf"), False
            self.pace.t_next = None  # the step's interval starts when the person acts
        self.begin_step(action)

    def new_episode(self, obs=None) -> None:
        if obs is None:
            obs, _ = self.env.reset()
        self.obs, self.pace.t_next = obs, None
        if self.demo is not None:
            self.demo.new_episode()
        self.hud.set_frame(self.frame())
        st = self.st
        st.episode, st.step, st.ret, st.positive, st.negative = self.episode, 0, 0.0, 0, 0
        self.think = self.thread.submit(self.learner.begin, self.episode, obs)

    def frame(self) -> np.ndarray | None:
        """The env's picture now (made with render_mode "rgb_array": an array, or None)."""
        return self.env.render()  # type: ignore[return-value]

    def begin_step(self, action: int) -> None:
        now, pace = self.clock.now(), self.pace
        t_start = now if pace.t_next is None else pace.t_next
        next_obs, reward, terminated, truncated, _ = self.env.step(action)
        self.hud.set_frame(self.frame())
        # on time, the step ends on the cadence; behind a slow learner, it still shows for half a period
        due = max(t_start + pace.period if pace.t_next is None else pace.next_due, now + pace.period / 2)
        self.open_step = OpenStep(
            t_start, due, action, self.obs, next_obs, float(reward), bool(terminated), bool(truncated)
        )
        st = self.st
        st.action = action
        st.step += 1
        st.total_steps = self.s.steps + 1
        st.ret += float(reward)

    def close_step(self, now: float, cut: str | None) -> None:
        """End the open step at ``now`` and hand it, with the keys pressed during it, to the learner.
        ``cut`` ("reset", "quit") ends the episode with it, as a truncation."""
        opened, self.open_step = self.open_step, None
        assert opened is not None
        self.s.steps += 1
        self.stats.steps += 1
        step = opened.close(self.s.steps, self.episode, self.run_index, now, cut is not None)
        self.source.observe(step.obs, step.action, step.t_start, step.t_end, step.episode)
        keys = self.source.poll(now)
        self.think = self.thread.submit(self.learner.end, step, keys, cut)
        # keep the cadence: a step ends on the first frame after it is due, so the next counts from due time
        pace = self.pace
        on_time = cut is None and opened.due + pace.period > now
        pace.next_due = opened.due + pace.period if on_time else now + pace.period
        pace.ended(float(now), step.terminated or step.truncated, cut is not None)
        self.st.rate = pace.measured  # the HUD shows the pace the agent keeps, not the one asked for
        self.obs = opened.next_obs
        if step.terminated or step.truncated:
            ended = cut or ("terminated" if step.terminated else "truncated")
            self.stats.episodes += 1
            self.st.note, self.st.note_until = (
                f"episode {self.episode} ended ({ended}), return {self.st.ret:g}",
                now + 3,
            )
            self.episode += 1
            pace.t_next = None
        else:
            pace.t_next = float(now)

    def finish(self, error: BaseException | None) -> None:
        """However the loop ended (Esc, window closed, Ctrl+C, an exception): let the learner finish every job
        it was given, close the episode that was running, close the logs, save the model. The logs were
        flushed line by line."""
        self.thread.close()
        failure = None
        for job in (self.think, *self.chores):
            if job is not None and job.done() and job.exception() is not None:
                failure = failure or job.exception()
        try:
            self.learner.close("error" if (error or failure) else "quit")
        except Exception as e:
            if error is None and failure is None:
                raise
            print(f"tamer play: could not save the model after the error: {e}", file=sys.stderr)
        if error is None and failure is not None:
            raise failure
