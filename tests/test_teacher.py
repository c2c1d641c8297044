"""The simulated teacher's statistics: error rate, feedback probability, modes, fatigue, leaving, and the
timing of its feedback (delay density, the moment of the step it reacts to, hand-over by ``poll``).

Rates are checked over thousands of judged steps against binomial tolerances (4.5 standard errors; the
seeds are fixed, so the tests are deterministic)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tamer.credit import GammaDelay, UniformDelay
from tamer.feedback import SimulatedTeacher

N = 20_000
EYE = np.eye(2, dtype=bool)


def oracle(obs) -> np.ndarray:
    """Approves exactly the action whose number is the observation."""
    return EYE[int(obs)]


class FixedDelay:
    """Every feedback comes exactly ``delay`` after the moment it reacts to."""

    def __init__(self, delay: float):
        self.delay = self.min_delay = self.max_delay = delay

    def sample(self, rng) -> float:
        return self.delay


def teacher(seed=0, delay=None, **kw) -> SimulatedTeacher:
    kw = {"prob": 1.0, "error_rate": 0.0, **kw}
    return SimulatedTeacher(oracle, delay or UniformDelay(), np.random.default_rng(seed), **kw)


def binomial_close(k: int, n: int, p: float) -> None:
    tol = 4.5 * math.sqrt(p * (1 - p) / n)
    assert abs(k / n - p) <= tol, f"{k}/{n} = {k / n:.4f}, expected {p} ± {tol:.4f}"


def judge_steps(t: SimulatedTeacher, n: int, obs=0, action=0, t0=0.0, width=0.1, episode=0) -> list[float]:
    """``n`` steps of ``width`` seconds from ``t0``; returns the values of every feedback they produce."""
    for i in range(n):
        t.observe(obs, action, t0 + i * width, t0 + (i + 1) * width, episode)
    return [fb.value for fb in t.poll(math.inf)]


@pytest.mark.parametrize("error_rate", [0.0, 0.1, 0.3, 1.0])
def test_error_rate_flips_that_fraction_of_judgements(error_rate):
    good = judge_steps(teacher(1, error_rate=error_rate), N, obs=0, action=0)  # approved action
    bad = judge_steps(teacher(2, error_rate=error_rate), N, obs=0, action=1)  # disapproved action
    assert len(good) == len(bad) == N and set(good + bad) <= {-1.0, 1.0}
    binomial_close(good.count(-1.0), N, error_rate)
    binomial_close(bad.count(1.0), N, error_rate)


def test_the_oracle_judges_the_observation_it_is_shown():
    t = teacher()
    for obs in (0, 1):
        for action in (0, 1):
            t.observe(obs, action, 0.0, 0.1, 0)
            (fb,) = t.poll(math.inf)
            assert fb.value == (1.0 if obs == action else -1.0)


@pytest.mark.parametrize("prob", [0.0, 0.05, 0.3, 0.5, 1.0])
def test_feedback_probability_per_step(prob):
    t = teacher(3, prob=prob, error_rate=0.2)
    values = judge_steps(t, N)
    assert t.given == len(values)
    binomial_close(len(values), N, prob)


@pytest.mark.parametrize("mode, sign", [("positive", 1.0), ("negative", -1.0)])
def test_positive_and_negative_only_teachers_keep_their_sign_after_errors(mode, sign):
    """The mode filters what the teacher believes (after its error): a praise-only teacher also praises
    the bad actions it mistakes for good ones."""
    prob, error_rate = 0.8, 0.25
    for action in (0, 1):
        t = teacher(4 + action, prob=prob, error_rate=error_rate, mode=mode)
        values = judge_steps(t, N, obs=0, action=action)
        assert set(values) == {sign} and t.given == len(values)
        believes_good = 1 - error_rate if action == 0 else error_rate
        binomial_close(len(values), N, prob * (believes_good if sign > 0 else 1 - believes_good))


def test_fatigue_halves_the_feedback_probability_every_half_life():
    fatigue, prob, n = 5.0, 0.8, 10_000
    for halvings in (0, 1, 2, 3):
        t = teacher(10 + halvings, prob=prob, fatigue=fatigue)
        start = halvings * fatigue  # zero-length steps all at this moment of the run's clock
        values = judge_steps(t, n, t0=start, width=0.0)
        binomial_close(len(values), n, prob * 0.5**halvings)
    # tireless: the probability stays
    late = teacher(20, prob=prob, fatigue=0.0)
    binomial_close(len(judge_steps(late, n, t0=1000.0, width=0.0)), n, prob)


def test_fatigue_decays_continuously_between_halvings():
    fatigue, prob, n = 4.0, 1.0, 10_000
    t = teacher(21, prob=prob, fatigue=fatigue)
    binomial_close(len(judge_steps(t, n, t0=2.0, width=0.0)), n, 2**-0.5)


def test_teacher_leaves_from_episode_leave_after_on():
    t = teacher(leave_after=3)
    counts = []
    for episode in range(6):
        counts.append(len(judge_steps(t, 50, t0=10.0 * episode, episode=episode)))
    assert counts == [50, 50, 50, 0, 0, 0]
    stays = teacher(leave_after=0)
    assert len(judge_steps(stays, 50, episode=1000)) == 50


def delays(t: SimulatedTeacher, n: int, width: float, spacing: float = 10.0) -> np.ndarray:
    """Feedback time minus each step's start, for ``n`` steps far apart (so each feedback is matched to its
    step by the time alone)."""
    for i in range(n):
        t.observe(0, 0, i * spacing, i * spacing + width, 0)
    times = np.array([fb.time for fb in t.poll(math.inf)])
    assert len(times) == n
    return times - np.floor(times / spacing) * spacing


def test_uniform_delay_after_the_moment_seen():
    d = delays(teacher(30, delay=UniformDelay(0.2, 0.8)), 5000, width=0.0)
    assert d.min() >= 0.2 - 1e-9 and d.max() <= 0.8 + 1e-9
    assert d.min() < 0.21 and d.max() > 0.79
    assert d.mean() == pytest.approx(0.5, abs=4.5 * 0.6 / math.sqrt(12 * 5000))
    assert d.var() == pytest.approx(0.36 / 12, rel=0.1)


def test_gamma_delay_has_mean_k_theta():
    k, theta, n = 3.0, 0.2, 5000
    d = delays(teacher(31, delay=GammaDelay(k, theta)), n, width=0.0)
    assert d.min() > 0
    assert d.mean() == pytest.approx(k * theta, abs=4.5 * math.sqrt(k * theta**2 / n))
    assert d.var() == pytest.approx(k * theta**2, rel=0.15)


def test_the_teacher_reacts_to_a_moment_uniform_over_the_step():
    """With a fixed delay, feedback time − delay − step start is uniform over the step's interval."""
    width = 0.4
    moment = delays(teacher(32, delay=FixedDelay(0.5)), 4000, width=width) - 0.5
    assert moment.min() >= -1e-9 and moment.max() <= width + 1e-9
    assert moment.min() < 0.01 and moment.max() > width - 0.01
    assert moment.mean() == pytest.approx(width / 2, abs=4.5 * width / math.sqrt(12 * 4000))
    # with the uniform density the two add: mean 0.5 + width/2 after the step's start
    d = delays(teacher(33, delay=UniformDelay(0.2, 0.8)), 4000, width=width)
    assert d.min() >= 0.2 - 1e-9 and d.max() <= 0.8 + width + 1e-9
    assert d.mean() == pytest.approx(0.5 + width / 2, abs=0.02)


def test_poll_hands_over_feedback_only_once_its_time_has_come():
    t = teacher(40, prob=0.7, error_rate=0.1)
    step, now, last_poll, handed = 0.1, 0.0, -math.inf, []
    for i in range(3000):
        t.observe(i % 2, 0, i * step, (i + 1) * step, 0)
        now = (i + 1) * step
        got = t.poll(now)
        times = [fb.time for fb in got]
        assert all(last_poll < x <= now for x in times)  # not early, and nothing held back past its time
        assert times == sorted(times)
        handed += got
        last_poll = now
    rest = t.poll(math.inf)
    assert all(fb.time > now for fb in rest)
    assert len(handed) + len(rest) == t.given and len(handed) > 1500
    assert t.poll(math.inf) == []  # handed over once


def test_poll_at_exactly_the_feedback_time_hands_it_over():
    t = teacher(delay=FixedDelay(0.5))
    t.observe(0, 0, 1.0, 1.0, 0)  # a zero-length step: the feedback is due at exactly 1.5
    t.observe(0, 1, 2.0, 2.0, 0)  # due at 2.5
    assert t.poll(1.4999) == []
    assert [(fb.time, fb.value) for fb in t.poll(1.5)] == [(1.5, 1.0)]
    assert t.poll(2.0) == []
    assert [(fb.time, fb.value) for fb in t.poll(3.0)] == [(2.5, -1.0)]


def test_feedback_from_interleaved_steps_comes_out_in_time_order():
    """Delays differ, so a later step's feedback can be due before an earlier one's."""
    t = teacher(41, delay=UniformDelay(0.0, 2.0))
    for i in range(200):
        t.observe(0, i % 2, i * 0.05, (i + 1) * 0.05, 0)
    times = [fb.time for fb in t.poll(math.inf)]
    assert len(times) == 200 and times == sorted(times)
