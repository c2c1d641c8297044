"""Credit assignment by time (Knox & Stone 2009).

A person's keypress arrives 0.2 s to several seconds after the event it judges. Each step occupies an
interval [t_start, t_end) of some clock; a feedback at time t_f gives the step the credit

    c = integral over [t_start, t_end) of f(t_f - t) dt = F(t_f - t_start) - F(t_f - t_end)

for a delay density f with CDF F. The clock is a wall clock when a person teaches and a virtual clock
(steps / step_rate) when a simulated teacher does, so the same code serves both.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left, bisect_right
from typing import Protocol

import numpy as np

from tamer.errors import ConfigError


class DelayDensity(Protocol):
    min_delay: float  # no mass below
    max_delay: float  # no (or negligible) mass above: history older than this is dropped

    def cdf(self, delay: float) -> float: ...

    def credit(self, t_feedback: float, t_start: float, t_end: float) -> float:
        """∫ f(t_feedback - t) dt over [t_start, t_end) = F(t_feedback - t_start) - F(t_feedback - t_end)."""
        ...

    def sample(self, rng: np.random.Generator) -> float: ...


class UniformDelay:
    """Uniform delay on [low, high]; the papers' default is [0.2, 0.8] s (Knox & Stone 2009)."""

    def __init__(self, low: float = 0.2, high: float = 0.8):
        self.min_delay, self.max_delay = low, high
        self._width = high - low
        self._inv_width = 1.0 / self._width

    def cdf(self, delay: float) -> float:
        return min(1.0, max(0.0, (delay - self.min_delay) * self._inv_width))

    def credit(self, t_feedback: float, t_start: float, t_end: float) -> float:
        # The CDF difference in closed form: the overlap of the step with [t_f - high, t_f - low].
        overlap = min(t_end, t_feedback - self.min_delay) - max(t_start, t_feedback - self.max_delay)
        return overlap * self._inv_width if overlap > 1e-12 else 0.0  # not float dust from t_f - 0.8

    def sample(self, rng: np.random.Generator) -> float:
        return self.from_unit(rng.random())

    def from_unit(self, u: float) -> float:
        """The delay for a uniform draw ``u`` in [0, 1): rng.uniform(low, high) is low + (high - low) * (the
        next double) in numpy's C code, so ``from_unit(rng.random())`` is that very number, without its
        argument handling (a third of a simulated teacher's step)."""
        return self.min_delay + self._width * u


def regularized_gamma_p(a: float, x: float) -> float:
    """P(a, x), the CDF of Gamma(shape=a, scale=1) at x (Numerical Recipes, sec. 6.2)."""
    if x <= 0.0:
        return 0.0
    log_prefactor = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1.0:  # series
        term = total = 1.0 / a
        n = a
        for _ in range(1000):
            n += 1.0
            term *= x / n
            total += term
            if abs(term) < abs(total) * 1e-16:
                break
        return total * math.exp(log_prefactor)
    tiny = 1e-300  # continued fraction for Q = 1 - P (modified Lentz)
    b = x + 1.0 - a
    c, d = 1.0 / tiny, 1.0 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return 1.0 - math.exp(log_prefactor) * h


class GammaDelay:
    """Gamma delay density with ``shape`` k and ``scale`` θ (seconds). The default k=2, θ=0.28 s puts the
    mode at 0.28 s and the mean at 0.56 s, close to the uniform [0.2, 0.8] window. Gamma has an infinite
    tail: history is kept until the tail mass beyond it falls below ``tail`` (the only approximation)."""

    def __init__(self, shape: float = 2.0, scale: float = 0.28, tail: float = 1e-4):
        if not 0 < tail < 1:
            raise ConfigError(f"gamma tail mass must be in (0, 1), got {tail}")
        self.shape, self.scale = shape, scale
        self.min_delay = 0.0
        lo, hi = 0.0, scale * (shape + 10.0)
        while self.cdf(hi) < 1.0 - tail:
            hi *= 2.0
        for _ in range(60):  # bisection for the (1 - tail) quantile
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if self.cdf(mid) < 1.0 - tail else (lo, mid)
        self.max_delay = hi

    def cdf(self, delay: float) -> float:
        return regularized_gamma_p(self.shape, delay / self.scale)

    def credit(self, t_feedback: float, t_start: float, t_end: float) -> float:
        return self.cdf(t_feedback - t_start) - self.cdf(t_feedback - t_end)

    def sample(self, rng: np.random.Generator) -> float:
        return rng.gamma(self.shape, self.scale)


def make_delay(kind: str, low: float, high: float, shape: float, scale: float) -> DelayDensity:
    if kind == "uniform":
        return UniformDelay(low, high)
    if kind == "gamma":
        return GammaDelay(shape, scale)
    raise ConfigError(f"unknown delay density {kind!r}; known: uniform, gamma")


class Clock(Protocol):
    """Seconds on the run's time line: virtual headless (steps / step rate), the wall clock live."""

    def now(self) -> float: ...

    def tick(self) -> None: ...


class VirtualClock:
    """Time for headless runs: each step lasts exactly 1/step_rate seconds."""

    def __init__(self, step_rate: float = 10.0):
        if not step_rate > 0:
            raise ConfigError(f"step rate must be > 0, got {step_rate}")
        self.step_rate, self.steps = step_rate, 0

    def now(self) -> float:
        return self.steps / self.step_rate  # no accumulated float error: replays see identical times

    def tick(self) -> None:
        self.steps += 1


class WallClock:
    """Seconds since the clock was made; a person's keypresses are stamped on the same scale."""

    def __init__(self):
        self.origin = time.perf_counter()

    def now(self) -> float:
        return time.perf_counter() - self.origin

    def tick(self) -> None:
        pass


CREDIT_MODES = ("delay", "immediate", "previous")


class CreditAssigner:
    """Keeps the recent steps (model input, action, interval) and spreads each feedback over them.

    ``slack`` keeps steps that long beyond the density's support, so feedback stamped slightly before the
    moment it is handed over (a live keypress seen one frame late) still finds its steps.

    ``mode`` (``--credit``): "delay" spreads each feedback by the delay density (above); the two modes of the
    original TAMER code give one step all the credit (c = 1), whatever the density:

    - "immediate": the step on screen when the feedback came, i.e. the latest step with t_start <= t_f
      (a feedback after the last recorded step ended goes to that step: nothing newer was shown);
    - "previous": the step before that one, the last step completed when the feedback came (Knox & Stone's
      Tetris, where placements are slow and a trainer judges the one just made while the next is shown).

    A feedback with no such step in the history (before the first step; for "previous", during the first
    step kept) is counted in ``ignored``. These modes keep the last two steps however long ago they ended
    (a paused live session), and otherwise trim the history like "delay".
    """

    def __init__(self, density: DelayDensity, slack: float = 1.0, mode: str = "delay"):
        if mode not in CREDIT_MODES:
            raise ConfigError(f"unknown credit mode {mode!r}; known: {', '.join(CREDIT_MODES)}")
        self.density, self.mode = density, mode
        # The history as parallel lists, the kept steps from index ``_lo`` on: appending and trimming cost
        # O(1) amortised per step (the dead prefix is deleted once it outweighs the rest), and with the times
        # in order a feedback finds its window by bisection, so it costs O(log n + steps in its window)
        # however long the history is.
        self._starts: list[float] = []
        self._ends: list[float] = []
        self._xs: list = []
        self._actions: list[int] = []
        self._lo = 0
        self._ordered = True  # every step starts and ends no earlier than the one before and ends >= start
        self.horizon = density.max_delay + slack
        self.keep = CREDIT_MODES.index(mode)  # steps never trimmed: 0 delay, 1 immediate, 2 previous
        self.ignored = 0  # feedback that found no step to credit

    @property
    def steps(self) -> list[tuple[float, float, object, int]]:
        """The kept steps, oldest first, as (t_start, t_end, x, action)."""
        lo = self._lo
        return list(zip(self._starts[lo:], self._ends[lo:], self._xs[lo:], self._actions[lo:], strict=True))

    def record(self, x, action: int, t_start: float, t_end: float) -> None:
        starts, ends = self._starts, self._ends
        if t_end < t_start or (ends and (t_start < starts[-1] or t_end < ends[-1])):
            self._ordered = False  # out of order (no clock does this): assign scans instead of bisecting
        starts.append(t_start)
        ends.append(t_end)
        self._xs.append(x)
        self._actions.append(action)
        cutoff, keep = t_end - self.horizon, self.keep
        lo, n = self._lo, len(ends)
        while n - lo > keep and ends[lo] <= cutoff:
            lo += 1
        if lo > 64 and 2 * lo > n:  # drop the dead prefix: O(n) once per n/2 steps
            del starts[:lo], ends[:lo], self._xs[:lo], self._actions[:lo]
            lo = 0
        self._lo = lo

    def assign(self, t_feedback: float) -> tuple[list, list[int], list[float]]:
        """The steps a feedback at ``t_feedback`` judges and their credits (positive, summing to <= 1),
        newest first."""
        if self.mode != "delay":
            return self._assign_one(t_feedback)
        density = self.density
        oldest, latest = t_feedback - density.max_delay, t_feedback - density.min_delay
        starts, ends, lo = self._starts, self._ends, self._lo
        # Newest first: skip the steps that start at or after ``latest``, stop at the first that ends at or
        # before ``oldest``. In time order the skipped ones are a suffix (found by bisection) and none of them
        # can end before ``oldest`` (t_end >= t_start >= latest >= oldest).
        i = bisect_left(starts, latest, lo) - 1 if self._ordered else len(starts) - 1
        xs, actions, credits = [], [], []
        kind = type(density)
        if kind is UniformDelay:  # UniformDelay.credit inlined: the same operations on the same floats
            assert isinstance(density, UniformDelay)
            inv_width = density._inv_width
            while i >= lo:
                t_start, t_end = starts[i], ends[i]
                if t_end <= oldest:
                    break
                if t_start < latest:
                    newest_end = latest if latest < t_end else t_end  # min(t_end, latest)
                    overlap = newest_end - (oldest if oldest > t_start else t_start)  # - max(...)
                    if overlap > 1e-12:  # not float dust from t_f - 0.8
                        xs.append(self._xs[i])
                        actions.append(self._actions[i])
                        credits.append(overlap * inv_width)
                i -= 1
        else:
            # c = F(t_f - t_start) - F(t_f - t_end); for Gamma, where F is costly, a step's F(t_f - t_start)
            # is the F(t_f - t_end) of the step before it when the two meet (the virtual clock's steps do):
            # each F is evaluated once, with the same argument, so the same value.
            shared = kind is GammaDelay
            cdf = density.cdf if shared else None
            credit = density.credit
            known_t, known_f = math.nan, 0.0  # the start of the last step credited and F(t_f - start)
            while i >= lo:
                t_start, t_end = starts[i], ends[i]
                if t_end <= oldest:
                    break
                if t_start < latest:
                    if shared:
                        assert cdf is not None
                        f_start = cdf(t_feedback - t_start)
                        f_end = known_f if t_end == known_t else cdf(t_feedback - t_end)
                        c = f_start - f_end
                        known_t, known_f = t_start, f_start
                    else:
                        c = credit(t_feedback, t_start, t_end)
                    if c > 0.0:
                        xs.append(self._xs[i])
                        actions.append(self._actions[i])
                        credits.append(c)
                i -= 1
        if not credits:
            self.ignored += 1
        return xs, actions, credits

    def _assign_one(self, t_feedback: float) -> tuple[list, list[int], list[float]]:
        """Credit 1 to one step: "immediate" or "previous" (see the class docstring)."""
        back = self.keep - 1  # steps back from the one on screen
        starts, lo = self._starts, self._lo
        if self._ordered:  # the newest step that started at or before t_f
            i = bisect_right(starts, t_feedback, lo) - 1
            found = i >= lo
        else:
            i, found = len(starts) - 1, False
            while i >= lo:
                if starts[i] <= t_feedback:
                    found = True
                    break
                i -= 1
        if found and i - back >= lo:
            return [self._xs[i - back]], [self._actions[i - back]], [1.0]
        self.ignored += 1
        return [], [], []
