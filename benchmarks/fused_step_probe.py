"""How fast could one TAMER step be? A feasibility probe for the speed targets, not part of the framework.

    pip install -c constraints.txt -e ".[bench]"      # numba (and stable-baselines3), benchmark-only
    python benchmarks/fused_step_probe.py [--steps 20000] [--repeats 5]

The framework's TAMER step on Mountain Car runs at about 0.32 of the raw env's steps/s
(``benchmarks/steps_per_second.py``; target 0.5): a chain of small numpy calls, each 0.3–1 µs, whose order of
arithmetic the same-numbers rule fixes. This probe fuses the same work into one numba-compiled call per step
(record the step; credit a feedback over the steps in its 0.2–0.8 s window by the uniform delay density and
update Ĥ; tile-code the next observation, 8 tilings of 8×8 with asymmetric offsets; evaluate Ĥ and act
greedily), with the simulated teacher in Python as in the framework (a feedback on half the steps, +1 where
the oracle agrees). It prints its steps/s as a ratio to the raw env measured alternately in the same run,
median of ``--repeats`` (and by CPU time, which other load disturbs least). It is not bit-exact with the
framework (its sums run in loop order, where the framework's go through BLAS's gemv and numpy's pairwise sums)
and leaves out ties, ε, errors and the metrics: it measures what a compiled step would cost, to decide whether
one is worth building.
"""

from __future__ import annotations

import argparse
import heapq
import math
import statistics
import sys
import time

import gymnasium as gym
import numpy as np
from steps_per_second import raw_rates  # the reference every speed ratio here is measured against

try:
    from numba import njit
except ImportError:
    sys.exit('fused_step_probe: needs numba: pip install -c constraints.txt -e ".[bench]"')

TILINGS, BINS, HISTORY = 8, 8, 64
LOW, HIGH = np.array([-1.2, -0.07]), np.array([0.6, 0.07])
SCALE = BINS / (HIGH - LOW)
OFFSETS = ((np.arange(TILINGS)[:, None] * np.array([1, 3])[None, :]) / TILINGS) % 1.0
SIDE = BINS + 1
N_FEATURES = TILINGS * SIDE * SIDE


@njit(cache=True)
def tiles(o0: float, o1: float, out: np.ndarray) -> None:
    s0, s1 = (o0 - LOW[0]) * SCALE[0], (o1 - LOW[1]) * SCALE[1]
    for k in range(TILINGS):
        c0, c1 = math.floor(s0 + OFFSETS[k, 0]), math.floor(s1 + OFFSETS[k, 1])
        c0 = 0 if c0 < 0 else (BINS if c0 > BINS else c0)
        c1 = 0 if c1 < 0 else (BINS if c1 > BINS else c1)
        out[k] = k * SIDE * SIDE + c0 + c1 * SIDE


@njit(cache=True)
def fused_step(w, hist_idx, hist_a, hist_t0, hist_t1, count, o0, o1, action, t0, t1, fb_t, fb_v, lr):
    """Record the step that ended, learn from a feedback (fb_t NaN: none), encode ``(o0, o1)``, act."""
    n = count[0]
    cur = n % HISTORY
    hist_a[cur], hist_t0[cur], hist_t1[cur] = action, t0, t1
    count[0] = n + 1
    if fb_t == fb_t:
        oldest, latest = fb_t - 0.8, fb_t - 0.2
        for j in range(min(n + 1, HISTORY)):
            i = (n - j) % HISTORY
            start, end = hist_t0[i], hist_t1[i]
            if end <= oldest:
                break
            if start < latest:
                overlap = min(end, latest) - max(start, oldest)
                if overlap > 1e-12:
                    a, predicted = hist_a[i], 0.0
                    for k in range(TILINGS):
                        predicted += w[a, hist_idx[i, k]]
                    change = lr * (overlap / 0.6) * (fb_v - predicted) / TILINGS
                    for k in range(TILINGS):
                        w[a, hist_idx[i, k]] += change
    nxt = (n + 1) % HISTORY
    tiles(o0, o1, hist_idx[nxt])
    best, best_a = -math.inf, 0
    for a in range(w.shape[0]):
        value = 0.0
        for k in range(TILINGS):
            value += w[a, hist_idx[nxt, k]]
        if value > best:
            best, best_a = value, a
    return best_a


def fused_rate(steps: int, seed: int) -> tuple[float, float]:
    env = gym.make("MountainCar-v0")
    w, count = np.zeros((3, N_FEATURES)), np.zeros(1, np.int64)
    hist_idx, hist_a = np.zeros((HISTORY, TILINGS), np.int64), np.zeros(HISTORY, np.int64)
    hist_t0, hist_t1 = np.zeros(HISTORY), np.zeros(HISTORY)
    obs, _ = env.reset(seed=seed)
    tiles(float(obs[0]), float(obs[1]), hist_idx[0])
    units = np.random.default_rng(seed).random(3 * steps).tolist()
    action, t, pending = 1, 0.0, []
    started, cpu = time.perf_counter(), time.process_time()
    for s in range(steps):
        t0 = t
        obs_next, _, terminated, truncated, _ = env.step(action)
        t += 0.1
        if (
            units[3 * s] < 0.5
        ):  # the teacher: half the steps, +1 where the oracle (push with the velocity) agrees
            good = action == (0 if obs[1] < 0 else 2)
            late = t0 + 0.1 * units[3 * s + 1] + 0.2 + 0.6 * units[3 * s + 2]
            heapq.heappush(pending, (late, s, 1.0 if good else -1.0))
        fb_t, fb_v = math.nan, 0.0
        if pending and pending[0][0] <= t:
            fb_t, _, fb_v = heapq.heappop(pending)
        if terminated or truncated:
            obs_next, _ = env.reset()
        o0, o1 = float(obs_next[0]), float(obs_next[1])
        action = fused_step(
            w, hist_idx, hist_a, hist_t0, hist_t1, count, o0, o1, action, t0, t, fb_t, fb_v, 0.2
        )
        obs = obs_next
    rates = steps / (time.perf_counter() - started), steps / (time.process_time() - cpu)
    env.close()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    fused_rate(2000, 0)  # compile (or load numba's cache) first
    wall, cpu = [], []
    for rep in range(args.repeats):  # the raw env just before each: only side-by-side ratios mean anything
        raw, fused = raw_rates("MountainCar-v0", args.steps), fused_rate(args.steps, rep)
        wall.append(fused[0] / raw[0])
        cpu.append(fused[1] / raw[1])
    print(
        f"fused TAMER step (numba) / raw MountainCar-v0: median {statistics.median(wall):.2f}, by CPU time "
        f"{statistics.median(cpu):.2f} (runs: {', '.join(f'{r:.2f}' for r in wall)}); the framework's own: "
        "benchmarks/steps_per_second.py"
    )


if __name__ == "__main__":
    main()
