"""Frame times of a live session with learning on, and what one step of learning costs.

    python benchmarks/live_latency.py [--env MountainCar-v0] [--seconds 20] [--model linear]
                                      [--feedback-rate 2] [--no-learn-in-thread]

Runs the real ``tamer play`` loop at the default rates (60 frames/s, the env's step rate: 10 steps/s on
Mountain Car) for ``--seconds`` of wall time while a simulated person presses the feedback keys (a Poisson
process of ``--feedback-rate`` presses per second, random sign) by posting pygame key events. It reports:

- frame work: seconds from a frame's start to the end of its flip (keys, stepping the env, drawing); this is
  what must fit in the 16.7 ms budget of 60 fps. Target: p99 below the budget;
- frame interval: start to start of consecutive frames (work plus the wait for the next frame);
- learner job: one step's learning on the learner thread (``Stepper.end_step``: record the step, credit and
  learn its keypresses, choose the next action, learn the reward; then the step's log line);
- the Ĥ update alone, per keypress: ``CreditAssigner.assign`` + ``Agent.learn_feedback`` over a full credit
  window, measured outside the loop.

Uses the display in $DISPLAY when there is one, else SDL's dummy driver (then nothing reaches a screen and
flip costs less than on a real display; run under ``xvfb-run`` for an X server in the loop).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("SDL_VIDEODRIVER")):
    os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from tamer.callbacks import TeacherPhase  # noqa: E402
from tamer.config import Config  # noqa: E402
from tamer.feedback import Feedback  # noqa: E402
from tamer.live import LiveConfig, play  # noqa: E402
from tamer.session import build  # noqa: E402
from tamer.stepper import Step, Stepper  # noqa: E402


def ms(values: np.ndarray) -> str:
    v = np.asarray(values) * 1e3
    return f"median {np.median(v):6.2f} ms   p99 {np.percentile(v, 99):6.2f} ms   max {v.max():6.2f} ms"


def live_session(cfg: Config, live: LiveConfig, seconds: float, feedback_rate: float, seed: int):
    import pygame

    rng = np.random.default_rng(seed)
    started: list[float] = []
    next_press = [0.0]
    held: list[int] = []

    def on_frame(loop, frame):
        now = time.perf_counter()
        if not started:
            started.append(now)
            next_press[0] = now + rng.exponential(1.0 / feedback_rate)
        for k in held:
            pygame.event.post(pygame.event.Event(pygame.KEYUP, key=k))
        held.clear()
        if now >= next_press[0]:
            k = pygame.K_UP if rng.random() < 0.5 else pygame.K_DOWN
            pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=k))
            held.append(k)
            next_press[0] = now + rng.exponential(1.0 / feedback_rate)
        if now - started[0] >= seconds:
            loop.quit = True

    with tempfile.TemporaryDirectory() as tmp:
        return play(Path(tmp) / "session", cfg, live, on_frame=on_frame)


def h_update_cost(cfg: Config, steps: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Per keypress: assign + learn_feedback with the credit window full; per step: Stepper.end_step with one
    keypress (what a learner job does apart from logging)."""
    s = build(cfg)
    stepper = Stepper(s, [TeacherPhase()])
    obs, _ = s.env.reset(seed=0)
    action = stepper.begin_episode(0, obs)
    period, update, step_cost = 1.0 / 10.0, [], []
    for i in range(steps):
        next_obs, reward, terminated, truncated, _ = s.env.step(action)
        t_start, t_end = i * period, (i + 1) * period
        step = Step(i + 1, 0, 0, t_start, t_end, action, float(reward), False, False, obs, next_obs)
        fb = Feedback((i + 1) * period, 1.0 if i % 2 else -1.0)
        t0 = time.perf_counter()
        action = stepper.end_step(step, [fb])
        step_cost.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        xs, actions, credits = s.credit.assign(fb.time)
        s.agent.learn_feedback(xs, actions, credits, fb.value)
        update.append(time.perf_counter() - t0)
        obs = next_obs
        if terminated or truncated:
            obs, _ = s.env.reset()
            action = stepper.begin_episode(0, obs)
    s.env.close()
    return np.array(update[100:]), np.array(step_cost[100:])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="MountainCar-v0")
    p.add_argument("--agent", default="tamer")
    p.add_argument("--model", default="linear", help="Ĥ model: linear, mlp")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--feedback-rate", type=float, default=2.0, help="keypresses per second")
    p.add_argument("--no-learn-in-thread", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    cfg = Config(env=args.env, agent=args.agent, model=args.model, seed=args.seed)
    live = LiveConfig(learn_in_thread=not args.no_learn_in_thread)
    budget = 1.0 / live.fps
    summary = live_session(cfg, live, args.seconds, args.feedback_rate, args.seed)
    work, interval = summary.frame_work[1:], summary.frame_interval  # frame 0 creates the window
    video = os.environ.get("SDL_VIDEODRIVER") or "x11"
    learner = "thread" if live.learn_in_thread else "inline"
    print(
        f"{args.agent} ({args.model} Ĥ) on {args.env}, {args.seconds:g} s at {live.fps:g} fps, "
        f"{summary.steps / args.seconds:.1f} steps/s, {summary.feedback} keypresses, learner {learner}, "
        f"video {video}"
    )
    print(f"  frame work      {ms(work)}   over {budget * 1e3:.1f} ms budget: {np.mean(work > budget):.2%}")
    print(f"  frame interval  {ms(interval)}   over 1.5x budget: {np.mean(interval > 1.5 * budget):.2%}")
    print(f"  learner job     {ms(summary.job_seconds)}   ({len(summary.job_seconds)} jobs)")
    update, step = h_update_cost(cfg)
    print(f"  Ĥ update / key  {ms(update)}   (assign + learn_feedback, credit window full)")
    print(f"  step w/ 1 key   {ms(step)}   (Stepper.end_step: record, credit, learn, act, learn reward)")
    ok = np.percentile(work, 99) < budget
    print(f"  p99 frame work {'below' if ok else 'ABOVE'} the {budget * 1e3:.1f} ms budget")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
