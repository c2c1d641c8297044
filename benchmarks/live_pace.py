"""The agent's real pace in a live session against the requested ``--step-rate``, measured from steps.csv.

    python benchmarks/live_pace.py [--rates 10 30 60] [--seconds 5] [--fps 60] [--env MountainCar-v0]
                                   [--no-learn-in-thread]

Runs the real ``tamer play`` loop (the learner on its thread, the wall clock, ``--fps`` frames/s) for
``--seconds`` at each requested rate, with no keys pressed, then reads the session's steps.csv and reports
the pace the agent kept: steps per second of the session clock between the first and the last step's end,
within episodes (the reset between two episodes is not a step). It also shows what the HUD said at the end
(the measured pace of the last steps). Credit assignment runs on those step intervals, so a live session at
another pace than the same config headless credits differently. Target: measured/requested within 5%.

Uses SDL's dummy video driver unless a display is set (then flip costs what the display makes it cost).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("SDL_VIDEODRIVER")):
    os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from tamer.config import Config  # noqa: E402
from tamer.live import LiveConfig, play, read_steps  # noqa: E402
from tamer.session import build  # noqa: E402

TARGET = 0.05  # measured/requested within 5%


def measured_pace(path: Path, space) -> tuple[float, int]:
    """Steps per second within episodes (first to last step's end of each), and the steps counted."""
    rows = read_steps(path, space)
    steps = seconds = 0.0
    for episode in sorted({r.episode for r in rows}):
        ends = [r.t_end for r in rows if r.episode == episode]
        if len(ends) >= 2:
            steps += len(ends) - 1
            seconds += ends[-1] - ends[0]
    return (steps / seconds if seconds > 0 else 0.0), len(rows)


def run(cfg: Config, live: LiveConfig, seconds: float) -> tuple[float, int, float]:
    """(measured pace, steps, the pace the HUD showed last)."""
    shown = [0.0]
    started: list[float] = []

    def on_frame(loop, frame):
        now = time.perf_counter()
        if not started:
            started.append(now)
        shown[0] = loop.st.rate
        if now - started[0] >= seconds:
            loop.quit = True

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "session"
        play(folder, cfg, live, on_frame=on_frame)
        s = build(cfg)
        space = s.env.observation_space
        s.env.close()
        pace, steps = measured_pace(folder / "steps.csv", space)
    return pace, steps, shown[0]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rates", type=float, nargs="+", default=[10.0, 30.0, 60.0])
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--fps", type=float, default=60.0)
    p.add_argument("--env", default="MountainCar-v0")
    p.add_argument("--no-learn-in-thread", action="store_true")
    args = p.parse_args()
    live = LiveConfig(fps=args.fps, learn_in_thread=not args.no_learn_in_thread, checkpoint_every=0.0)
    video = os.environ.get("SDL_VIDEODRIVER") or "x11"
    learner = "inline" if args.no_learn_in_thread else "thread"
    print(f"{args.env}, {args.fps:g} fps, {args.seconds:g} s per rate, learner {learner}, video {video}")
    ok = True
    for rate in args.rates:
        cfg = Config(env=args.env, step_rate=rate, max_steps=1_000_000)  # one long episode: no resets
        pace, steps, shown = run(cfg, live, args.seconds)
        ratio = pace / rate
        good = abs(ratio - 1.0) <= TARGET
        ok &= good
        print(
            f"  requested {rate:5g} steps/s   measured {pace:7.2f}   measured/requested {ratio:6.3f}   "
            f"({steps} steps; HUD showed {shown:g})   {'ok' if good else 'OFF TARGET'}"
        )
    print(f"target: within {TARGET:.0%} of the requested pace: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
