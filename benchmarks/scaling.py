"""Costs against the size of the work: what a step, a feedback and a checkpoint cost as the step rate, the
credit window, the feature count and the replay buffer grow.

    python benchmarks/scaling.py [--steps 6000] [--only credit,features,checkpoint]

Three tables, measured in this process (the machines are shared and noisy: compare rows of one run). Per-step
costs are CPU time of this process per env step, env step included (what other processes on a shared
machine disturb least); checkpoints are wall-clock (they wait for the disk).

- **credit**: TAMER on Mountain Car with the default simulated teacher (a feedback on half the steps) at
  10, 30 and 60 steps/s and three delay windows (uniform 0.2-0.8 s, uniform 0.2-4.2 s, Gamma(2, 0.28 s) kept
  to its 1e-4 tail, 3.3 s). A feedback credits every step in its window, so its cost grows with the steps
  in the window (rate × window); what must not grow is the cost per credited step (``us/credited``) and
  the per-step cost without feedback. ``kept`` is the credit history's length.
- **features**: the learning body's cost per step (no checkpoint) of TAMER and TAMER+RL (action biasing,
  Sarsa(λ)) with tile coding of 8, 63 and 180 bins (648, 32,768 and 262,088 features per action): it
  depends on the active features (8 per step, and Sarsa's live ``traces``: those of the last ~65 steps,
  more with finer tiles), not on the total. ``save ms`` is one checkpoint of that agent (every
  weight, once per episode: that one is the model's size).
- **checkpoint**: one ``model.npz`` save (``tamer.io.save_agent``, what the Checkpoint callback does after
  each episode) of a DQN whose replay buffer holds N rows, after 200 new rows since the last save; CartPole
  vectors and 24×24 RGB grid-world images. ``written`` is the bytes the save wrote.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tamer.callbacks import Callback, TeacherPhase
from tamer.config import Config
from tamer.session import build
from tamer.stepper import Stepper
from tamer.train import run_episode

ENV = "MountainCar-v0"


def per_step(cfg: Config, steps: int, callbacks=()) -> tuple[float, object]:
    """Microseconds of CPU time per env step of whole episodes (act, teacher, credit, updates; CPU time,
    which other processes on a shared machine disturb least), and the session."""
    s = build(cfg)
    stepper = Stepper(s, [TeacherPhase(), *callbacks])
    episode = 0
    started = time.process_time()
    while s.steps < steps:
        run_episode(s, episode, stepper)
        episode += 1
    elapsed = time.process_time() - started
    s.env.close()
    return elapsed / s.steps * 1e6, s


class ActiveTraces(Callback):
    """The mean number of Sarsa(λ)'s live traces after a step: the weights each step updates."""

    def __init__(self):
        self.total = self.steps = 0

    def on_step(self, s, step, feedback) -> None:
        self.total += len(s.agent.rl.active)
        self.steps += 1


def credited_per_feedback(cfg: Config, steps: int) -> tuple[float, float]:
    """Mean steps credited per feedback and feedback per step, counted on a run of their own."""
    s = build(cfg)
    assign, counts = s.credit.assign, []

    def counting(t):
        out = assign(t)
        counts.append(len(out[0]))
        return out

    s.credit.assign = counting  # type: ignore[method-assign]
    episode = 0
    while s.steps < steps:
        run_episode(s, episode)
        episode += 1
    s.env.close()
    return (statistics.mean(counts) if counts else 0.0), len(counts) / s.steps


def credit_table(steps: int) -> None:
    print("credit: TAMER, Mountain Car, µs per step against step rate and delay window")
    head = ("rate", "window", "us/step", "fb/step", "credited", "us/credited", "kept")
    print("{:>5} {:>22} {:>9} {:>8} {:>9} {:>12} {:>5}".format(*head))
    windows = {
        "uniform 0.2-0.8 s": {"delay": "uniform", "delay_min": 0.2, "delay_max": 0.8},
        "uniform 0.2-4.2 s": {"delay": "uniform", "delay_min": 0.2, "delay_max": 4.2},
        "gamma(2, 0.28 s)": {"delay": "gamma"},
    }
    base: dict[float, float] = {}
    for rate in (10.0, 30.0, 60.0):
        quiet = Config(env=ENV, agent="tamer", step_rate=rate, teacher="none")
        base[rate], _ = per_step(quiet, steps)  # the same agent with no feedback: the per-step floor
        for name, fields in windows.items():
            cfg = Config(env=ENV, agent="tamer", step_rate=rate, **fields)
            us, s = per_step(cfg, steps)
            credited, fb_rate = credited_per_feedback(cfg, steps // 2)
            per_credit = (us - base[rate]) / (fb_rate * credited) if fb_rate and credited else float("nan")
            kept = len(s.credit.steps)
            row = (rate, name, us, fb_rate, credited, per_credit, kept)
            print("{:5.0f} {:>22} {:9.1f} {:8.2f} {:9.1f} {:12.2f} {:5d}".format(*row))
    print(f"(no feedback at all: {', '.join(f'{r:.0f}/s {v:.1f} us' for r, v in base.items())})")


def save_ms(agent, repeats: int = 3, between=None) -> tuple[float, int]:
    """Median milliseconds of ``save_agent`` into a fresh folder (``between`` runs before each save but the
    first, which is not counted), and the bytes the last save wrote."""
    from tamer.io import save_agent

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.npz"
        save_agent(agent, path)
        times, written = [], 0
        for _ in range(repeats):
            if between is not None:
                between()
            before = {p: p.stat().st_size for p in Path(tmp).iterdir()}
            started = time.perf_counter()
            save_agent(agent, path)
            times.append((time.perf_counter() - started) * 1e3)
            after = {p: p.stat().st_size for p in Path(tmp).iterdir()}
            written = sum(
                size - before.get(p, 0) if p.name != "model.npz" else size for p, size in after.items()
            )
        return statistics.median(times), written


def features_table(steps: int) -> None:
    print("features: µs per step against the total feature count (8 active per step)")
    head = ("bins", "features", "TAMER us/step", "TAMER+RL us/step", "traces", "save ms")
    print("{:>5} {:>9} {:>14} {:>17} {:>7} {:>8}".format(*head))
    for bins in (8, 63, 180):
        n = 8 * (bins + 1) ** 2
        tamer_us, _ = per_step(Config(env=ENV, agent="tamer", bins=bins), steps)
        rl_cfg = Config(env=ENV, agent="tamer+rl", blend="action_biasing", bins=bins)
        traces = ActiveTraces()
        rl_us, s = per_step(rl_cfg, steps, [traces])
        ms, _ = save_ms(s.agent)
        print(
            f"{bins:5d} {n:9,d} {tamer_us:14.1f} {rl_us:17.1f} {traces.total / traces.steps:7.0f} {ms:8.1f}"
        )


def fill(buffer, rows: int, rng: np.random.Generator) -> None:
    """``rows`` random transitions added to a replay buffer, in batches."""
    done = 0
    while done < rows:
        n = min(1000, rows - done)
        batch = {}
        for name, a in buffer.data.items():
            shape = (n, *a.shape[1:])
            if a.dtype == np.uint8:
                batch[name] = rng.integers(0, 256, shape, dtype=np.uint8)
            elif a.dtype.kind == "i":
                batch[name] = rng.integers(0, 2, shape)
            else:
                batch[name] = rng.standard_normal(shape).astype(a.dtype)
        buffer.add(**batch)
        done += n


def checkpoint_table(sizes: list[int]) -> None:
    print("checkpoint: one model.npz save of DQN, 200 rows added since the last, against the buffer's rows")
    print(f"{'obs':>22} {'rows':>7} {'save ms':>9} {'written MB':>11}")
    for env, label in (("CartPole-v1", "CartPole vectors"), ("tamer/GridWorldPixels-v0", "24x24x3 images")):
        for rows in sizes:
            cfg = Config(env=env, agent="rl", rl="dqn", dqn_buffer=max(sizes) + 1000)
            s = build(cfg)
            rng = np.random.default_rng(0)
            buffer = s.agent.rl.buffer
            fill(buffer, rows, rng)
            ms, written = save_ms(s.agent, between=lambda b=buffer, r=rng: fill(b, 200, r))
            s.env.close()
            print(f"{label:>22} {rows:7,d} {ms:9.1f} {written / 1e6:11.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=6000, help="env steps per measurement")
    parser.add_argument("--only", default="credit,features,checkpoint")
    parser.add_argument("--rows", default="1000,10000,50000", help="replay buffer sizes")
    args = parser.parse_args()
    only = set(args.only.split(","))
    if "credit" in only:
        credit_table(args.steps)
        print()
    if "features" in only:
        features_table(args.steps)
        print()
    if "checkpoint" in only:
        checkpoint_table([int(v) for v in args.rows.split(",")])
    sys.stdout.flush()


if __name__ == "__main__":
    main()
