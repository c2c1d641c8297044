import math

import numpy as np
import pytest

from tamer.credit import CreditAssigner, GammaDelay, UniformDelay, VirtualClock, regularized_gamma_p
from tamer.errors import ConfigError


def gamma2_cdf(t: float, scale: float) -> float:
    """Closed form CDF of Gamma(shape=2): 1 - e^(-t/θ)(1 + t/θ)."""
    return 0.0 if t <= 0 else 1.0 - math.exp(-t / scale) * (1.0 + t / scale)


def steps(assigner: CreditAssigner, n: int, rate: float = 10.0):
    for i in range(n):
        assigner.record(f"x{i}", i % 3, i / rate, (i + 1) / rate)


def test_uniform_credit_matches_hand_integrals():
    # Steps of 0.1 s: [0,0.1), [0.1,0.2), ... Feedback at t=1.0 with delay ~ U[0.2, 0.8] judges events in
    # [0.2, 0.8]: six full steps [0.2,0.3) .. [0.7,0.8) each get 0.1/0.6; nothing else.
    a = CreditAssigner(UniformDelay(0.2, 0.8))
    steps(a, 10)
    xs, actions, credits = a.assign(1.0)
    assert sorted(xs) == [f"x{i}" for i in range(2, 8)]
    assert credits == pytest.approx([1 / 6] * 6)
    assert actions == [i % 3 for i in range(7, 1, -1)]


def test_uniform_credit_partial_overlap():
    # Feedback at 1.05: window [0.25, 0.85]. Step [0.2,0.3) gets 0.05/0.6, steps [0.3..0.8) get 0.1/0.6,
    # step [0.8,0.9) gets 0.05/0.6. Sum is 1.
    a = CreditAssigner(UniformDelay(0.2, 0.8))
    steps(a, 10)
    xs, _, credits = a.assign(1.05)
    by_step = dict(zip(xs, credits, strict=True))
    assert by_step["x2"] == pytest.approx(0.05 / 0.6)
    assert by_step["x8"] == pytest.approx(0.05 / 0.6)
    for i in range(3, 8):
        assert by_step[f"x{i}"] == pytest.approx(0.1 / 0.6)
    assert sum(credits) == pytest.approx(1.0)


def test_gamma_credit_matches_hand_integrals():
    scale = 0.28
    a = CreditAssigner(GammaDelay(2.0, scale))
    steps(a, 30)
    t_f = 2.0
    xs, _, credits = a.assign(t_f)
    by_step = dict(zip(xs, credits, strict=True))
    for i in range(0, 20):
        t0, t1 = i * 0.1, (i + 1) * 0.1
        expected = gamma2_cdf(t_f - t0, scale) - gamma2_cdf(t_f - t1, scale)
        if f"x{i}" in by_step:
            assert by_step[f"x{i}"] == pytest.approx(expected, rel=1e-9, abs=1e-12)
        else:  # only steps beyond the kept tail are missing
            assert expected < 1e-4
    assert sum(credits) == pytest.approx(gamma2_cdf(t_f, scale), rel=1e-9)  # the run starts at 0


def test_regularized_gamma_against_closed_forms():
    for x in (0.01, 0.5, 1.0, 2.9, 3.1, 10.0, 40.0):
        assert regularized_gamma_p(1.0, x) == pytest.approx(1 - math.exp(-x), rel=1e-12)
        assert regularized_gamma_p(2.0, x) == pytest.approx(gamma2_cdf(x, 1.0), rel=1e-10, abs=1e-15)
        assert regularized_gamma_p(0.5, x) == pytest.approx(math.erf(math.sqrt(x)), rel=1e-10)


def test_several_feedbacks_in_one_step_each_credited():
    a = CreditAssigner(UniformDelay(0.2, 0.8))
    steps(a, 10)
    first, second = a.assign(0.95), a.assign(1.0)
    assert first[2] and second[2]
    assert sum(first[2]) == pytest.approx(1.0) and sum(second[2]) == pytest.approx(1.0)


def test_feedback_with_no_eligible_step_is_ignored_and_counted():
    a = CreditAssigner(UniformDelay(0.2, 0.8))
    assert a.assign(0.5) == ([], [], [])  # nothing recorded yet
    steps(a, 3)  # steps end at 0.3
    assert a.assign(0.15)[2] == []  # events judged would be before t=0
    assert a.ignored == 2


def test_history_is_trimmed_where_density_has_no_mass():
    a = CreditAssigner(UniformDelay(0.2, 0.8), slack=0.0)
    steps(a, 100)
    assert len(a.steps) == 8  # steps ending within 0.8 s of the newest end (10.0)
    assert all(t_end > 10.0 - 0.8 for _, t_end, _, _ in a.steps)
    g = CreditAssigner(GammaDelay(2.0, 0.28), slack=0.0)
    steps(g, 200)
    assert g.density.max_delay == pytest.approx(3.35, abs=0.1)  # 1e-4 tail quantile
    assert len(g.steps) < 40


def test_virtual_clock_has_no_drift():
    clock = VirtualClock(10.0)
    for _ in range(1000):
        clock.tick()
    assert clock.now() == 100.0


@pytest.mark.parametrize(
    "make",
    [
        lambda: VirtualClock(0.0),
        lambda: VirtualClock(-5.0),
    ],
)
def test_bad_parameters_are_refused(make):
    with pytest.raises(ConfigError):
        make()


def test_sampled_delays_follow_density():
    rng = np.random.default_rng(0)
    u = UniformDelay(0.2, 0.8)
    samples = np.array([u.sample(rng) for _ in range(2000)])
    assert samples.min() >= 0.2 and samples.max() <= 0.8
    g = GammaDelay(2.0, 0.28)
    samples = np.array([g.sample(rng) for _ in range(4000)])
    assert samples.mean() == pytest.approx(0.56, rel=0.05)
