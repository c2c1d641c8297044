"""Make docs/live.png: a live session of TAMER+RL on Mountain Car, with a scripted "person" pressing keys.

    xvfb-run -s "-screen 0 1280x800x24" python docs/screenshot.py [--seconds 12] [--out docs/live.png]

Runs the real ``tamer play`` window (real clock, 60 fps, 10 steps/s) under a virtual X display. Every
``--press-every`` seconds the script posts Up when the agent's current action is one the Mountain Car oracle
approves and Down otherwise, as a person would, then saves the window as it is drawn.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import pygame  # noqa: E402

from tamer.config import Config  # noqa: E402
from tamer.envs import make_env  # noqa: E402
from tamer.live import LiveConfig, play  # noqa: E402
from tamer.oracles import make_oracle  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=12.0, help="Session length before the shot.")
    parser.add_argument("--press-every", type=float, default=0.3, help="Seconds between keypresses.")
    parser.add_argument("--out", default="docs/live.png", help="Where to save the PNG.")
    args = parser.parse_args()
    if not os.environ.get("DISPLAY"):
        sys.exit("screenshot.py: no DISPLAY; run it under xvfb-run (see the docstring)")
    env_id = "MountainCar-v0"
    cfg = Config(env=env_id, agent="tamer+rl", blend="control_sharing", q_init=-80.0, seed=0)
    oracle = make_oracle(env_id, make_env(env_id))
    fps = 60.0
    frames = int(args.seconds * fps)
    every = max(1, int(args.press_every * fps))

    def on_frame(loop, frame):
        step = loop.open_step  # the step on screen
        if frame % every == 0 and step is not None:
            k = pygame.K_UP if oracle(step.obs)[step.action] else pygame.K_DOWN
            pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=k, mod=0))
            pygame.event.post(pygame.event.Event(pygame.KEYUP, key=k, mod=0))
        if frame == frames - 1:  # the last frame was drawn at the end of the previous one
            pygame.image.save(pygame.display.get_surface(), str(out))

    out = Path(args.out).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # the HUD shows the session folder: a short relative one reads better
        play(Path("sessions") / "mountaincar", cfg, LiveConfig(fps=fps), max_frames=frames, on_frame=on_frame)
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
