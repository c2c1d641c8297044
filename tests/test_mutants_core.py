"""Tests added to kill the mutants that survived the direct tests of the core modules (``make mutate``,
docs/mutation.md): credit assignment, features, Ĥ, the RL learner, blends, β schedules and feedback sources.

Every expected value here is worked out by hand in the test (or in its comment), never read back from the
code under test."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from gymnasium.spaces import Box, Discrete

from tamer.agents import Agent
from tamer.blends import HFeature, make_blend
from tamer.credit import CreditAssigner, GammaDelay, UniformDelay, VirtualClock, WallClock, make_delay
from tamer.errors import ConfigError
from tamer.features import RBF, OneHot, Phi, SubsetTileCoding, TileCoding, box_bounds, make_features
from tamer.feedback import (
    Feedback,
    FeedbackLog,
    NoTeacher,
    SimulatedTeacher,
    read_feedback_log,
    read_feedback_rows,
)
from tamer.models import LinearModel
from tamer.rl import EpsilonSchedule, LinearTD
from tamer.schedules import BetaSchedule, EpisodeExp, EpisodeLinear, RegionTraces, StepExp, make_schedule

# ---------------------------------------------------------------------------------------------- credit


def record_steps(assigner: CreditAssigner, n: int, rate: float = 10.0) -> None:
    """Steps x0, x1, ... of 1/rate seconds from t = 0, action i % 3."""
    for i in range(n):
        assigner.record(f"x{i}", i % 3, i / rate, (i + 1) / rate)


def test_uniform_cdf_by_hand():
    d = UniformDelay(0.2, 0.8)
    for delay, want in (
        (-1.0, 0.0),
        (0.1, 0.0),
        (0.2, 0.0),
        (0.35, 0.25),
        (0.5, 0.5),
        (0.8, 1.0),
        (3.0, 1.0),
    ):
        assert d.cdf(delay) == pytest.approx(want, abs=1e-12)


def test_immediate_credit_goes_to_the_step_on_screen():
    a = CreditAssigner(UniformDelay(0.2, 0.8), mode="immediate")
    record_steps(a, 5)  # [0, .1) [.1, .2) [.2, .3) [.3, .4) [.4, .5)
    assert a.assign(0.25) == (["x2"], [2], [1.0])
    assert a.assign(0.35) == (["x3"], [0], [1.0])
    assert a.assign(0.2) == (["x2"], [2], [1.0])  # a step is on screen from its start on
    assert a.assign(0.0) == (["x0"], [0], [1.0])
    assert a.assign(0.45) == (["x4"], [1], [1.0])
    assert a.assign(7.0) == (["x4"], [1], [1.0])  # after the last step ended: nothing newer was shown
    assert a.ignored == 0
    assert a.assign(-0.01) == ([], [], [])  # before the first step
    assert a.ignored == 1


def test_previous_credit_goes_to_the_step_before_the_one_on_screen():
    a = CreditAssigner(UniformDelay(0.2, 0.8), mode="previous")
    record_steps(a, 5)
    assert a.assign(0.25) == (["x1"], [1], [1.0])
    assert a.assign(0.35) == (["x2"], [2], [1.0])
    assert a.assign(0.1) == (["x0"], [0], [1.0])
    assert a.assign(7.0) == (["x3"], [0], [1.0])
    assert a.ignored == 0
    assert a.assign(0.05) == ([], [], [])  # during the first step: no step before it
    assert a.assign(-1.0) == ([], [], [])
    assert a.ignored == 2


@pytest.mark.parametrize("mode, kept", [("immediate", ["c"]), ("previous", ["b", "c"]), ("delay", ["c"])])
def test_one_step_modes_keep_their_steps_however_long_ago(mode, kept):
    """A paused live session: two steps, then one 100 s later. The delay mode drops what is older than its
    horizon (0.8 s + 1 s slack); "immediate" keeps the last step, "previous" the last two."""
    a = CreditAssigner(UniformDelay(0.2, 0.8), mode=mode)
    a.record("a", 0, 0.0, 0.1)
    a.record("b", 1, 0.1, 0.2)
    a.record("c", 2, 100.0, 100.1)
    assert [x for _, _, x, _ in a.steps] == kept
    if mode == "previous":
        assert a.assign(100.05) == (["b"], [1], [1.0])
    if mode == "immediate":
        assert a.assign(100.05) == (["c"], [2], [1.0])
        assert a.assign(50.0) == ([], [], []) and a.ignored == 1


def test_delay_mode_keeps_steps_until_they_end_a_horizon_before_the_newest_end():
    a = CreditAssigner(UniformDelay(0.2, 0.8), slack=0.45)  # horizon 1.25 s
    record_steps(a, 30)  # newest step ends at 3.0: steps ending after 1.75 stay, i.e. x17 .. x29
    assert [x for _, _, x, _ in a.steps] == [f"x{i}" for i in range(17, 30)]


def test_unknown_credit_mode_is_refused():
    with pytest.raises(ConfigError, match="unknown credit mode 'nearest'; known: delay, immediate, previous"):
        CreditAssigner(UniformDelay(), mode="nearest")


def test_wall_clock_counts_seconds_from_its_creation():
    clock = WallClock()
    first = clock.now()
    assert 0.0 <= first < 1.0
    time.sleep(0.02)
    clock.tick()  # nothing to count: the wall clock runs by itself
    second = clock.now()
    assert 0.015 <= second - first < 1.0


# ------------------------------------------------------------------------------------- feedback sources


def test_no_teacher_is_never_present_and_never_speaks():
    t = NoTeacher()
    assert t.present(0) is False
    t.observe(0, 0, 0.0, 0.1, 0)
    assert t.poll(math.inf) == []


# ------------------------------------------------------------------------------------------ RL learner


def test_linear_td_encodes_with_its_feature_map():
    td = LinearTD(OneHot(4, start=1), 2)
    phi = td.encode(3)
    assert phi.idx.tolist() == [2] and phi.val.tolist() == [1.0]


# ------------------------------------------------------------------------------------- blends' state


def test_h_feature_weight_is_saved_and_restored():
    blend = HFeature()
    assert np.isnan(blend.state_dict()["u"])  # not started: u is set from β on first use
    blend.u = 1.5
    other = HFeature()
    other.load_state_dict(blend.state_dict())
    assert other.u == 1.5 and type(other.u) is float
    other.load_state_dict({"u": np.array(np.nan)})
    assert other.u is None


# ---------------------------------------------------------------------------------------- β schedules


def test_region_traces_are_saved_and_restored():
    r = RegionTraces(2.0, 0.5, 4)
    r.on_step()
    r.on_feedback([Phi(np.array([0, 1]), np.ones(2))])  # traces of 0, 1 set to 1 at step 1
    r.on_step()
    r.on_episode()
    state = r.state_dict()
    assert state["counters"].tolist() == [2, 1, 1]
    assert state["trace"].tolist() == [1.0, 1.0, 0.0, 0.0] and state["set_at"].tolist() == [1, 1, 0, 0]
    other = RegionTraces(2.0, 0.5, 4)
    other.load_state_dict(state)
    assert (other.steps, other.episodes, other.since_feedback) == (2, 1, 1)
    # one step since the traces were set: β · 0.5 on features 0 and 1, 0 on the others
    assert other.value(Phi(np.array([0, 1]), np.ones(2))) == pytest.approx(1.0)
    assert other.value(Phi(np.array([1, 2]), np.ones(2))) == pytest.approx(0.5)
    state["trace"][0] = 7.0  # a copy was saved, not the live array
    assert r.trace[0] == 1.0


# ------------------------------------------------------------------------------------ delay densities


def gamma2_cdf(t: float, scale: float) -> float:
    """Closed-form CDF of Gamma(shape 2): 1 − e^(−t/θ)(1 + t/θ)."""
    return 0.0 if t <= 0 else 1.0 - math.exp(-t / scale) * (1.0 + t / scale)


def gamma2_quantile(p: float, scale: float) -> float:
    """The p-quantile of Gamma(shape 2), by bisection on the closed form (an independent reference)."""
    lo, hi = 0.0, 1000.0 * scale
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if gamma2_cdf(mid, scale) < p else (lo, mid)
    return hi


@pytest.mark.parametrize("scale", [0.28, 0.05, 2.0])
def test_gamma_history_ends_at_the_one_minus_tail_quantile(scale):
    g = GammaDelay(2.0, scale, tail=1e-4)
    assert g.max_delay == pytest.approx(gamma2_quantile(1 - 1e-4, scale), rel=1e-9)
    assert GammaDelay(2.0, scale, tail=0.05).max_delay == pytest.approx(
        gamma2_quantile(0.95, scale), rel=1e-9
    )


def test_gamma_defaults_are_shape_2_scale_028():
    g = GammaDelay()
    for t in (0.1, 0.28, 0.56, 1.5):
        assert g.cdf(t) == pytest.approx(gamma2_cdf(t, 0.28), rel=1e-10)
    assert g.max_delay == pytest.approx(gamma2_quantile(1 - 1e-4, 0.28), rel=1e-9)


@pytest.mark.parametrize("tail", [0.0, 1.0, 1.5, -0.1])
def test_gamma_tail_mass_outside_0_1_is_refused(tail):
    with pytest.raises(ConfigError, match=rf"^gamma tail mass must be in \(0, 1\), got {tail}$"):
        GammaDelay(tail=tail)


def test_make_delay_builds_the_named_density_with_its_parameters():
    u = make_delay("uniform", 0.1, 0.5, 3.0, 0.2)
    assert type(u) is UniformDelay and (u.min_delay, u.max_delay) == (0.1, 0.5)
    assert u.cdf(0.3) == pytest.approx(0.5)
    g = make_delay("gamma", 0.1, 0.5, 2.0, 0.2)
    assert type(g) is GammaDelay and g.min_delay == 0.0
    assert g.cdf(0.3) == pytest.approx(gamma2_cdf(0.3, 0.2), rel=1e-10)
    with pytest.raises(ConfigError, match="^unknown delay density 'normal'; known: uniform, gamma$"):
        make_delay("normal", 0.1, 0.5, 2.0, 0.2)


def test_credit_history_keeps_one_second_beyond_the_density_by_default():
    a = CreditAssigner(UniformDelay(0.2, 0.8))  # horizon 0.8 + 1 s
    record_steps(a, 12, rate=4.0)  # steps of 0.25 s; the newest ends at 3.0: those ending after 1.2 stay
    assert [x for _, _, x, _ in a.steps] == [f"x{i}" for i in range(4, 12)]


def test_virtual_clock_defaults_to_ten_steps_per_second_and_refuses_zero():
    clock = VirtualClock()
    for _ in range(10):
        clock.tick()
    assert clock.now() == 1.0
    with pytest.raises(ConfigError, match="^step rate must be > 0, got 0.0$"):
        VirtualClock(0.0)


# ------------------------------------------------------------------------------------------------ Ĥ


class Fixed:
    """A feature map returning the given Phi for each observation number (values ≠ 1 on purpose)."""

    def __init__(self, n_features: int, phis: dict):
        self.n_features, self.phis = n_features, phis

    def __call__(self, obs) -> Phi:
        return self.phis[obs]


PHI_A = Phi(np.array([0, 1]), np.array([2.0, 0.5]))  # ||φ||² = 4.25
PHI_B = Phi(np.array([1, 2]), np.array([1.0, 3.0]))  # ||φ||² = 10


def test_linear_model_default_step_size_is_0_2():
    model = LinearModel(OneHot(2), 2)
    x = model.encode(1)
    model.update([x], [1], [1.0], 1.0)
    assert model.predict(x).tolist() == [0.0, pytest.approx(0.2)]


def test_linear_model_step_on_features_of_any_scale():
    """From w = 0, one feedback with credit 1 and lr 1 puts Ĥ(s, a) exactly on h, whatever ||φ|| is; the
    weights move along φ: w_a = h·φ/||φ||²."""
    model = LinearModel(Fixed(3, {"a": PHI_A}), 2, lr=1.0)
    model.update([PHI_A], [1], [1.0], -2.0)
    np.testing.assert_allclose(model.w[1], [-2.0 * 2.0 / 4.25, -2.0 * 0.5 / 4.25, 0.0])
    assert model.w[0].tolist() == [0.0, 0.0, 0.0]
    assert model.predict(PHI_A)[1] == pytest.approx(-2.0)


def test_linear_model_batch_update_against_a_per_sample_reference():
    """A batch is one gradient step: every error is taken at the weights before the step (reference below,
    written sample by sample on dense vectors)."""
    w0 = np.array([[0.5, -1.0, 0.25], [1.0, 0.0, -0.5]])
    model = LinearModel(Fixed(3, {}), 2, lr=0.3)
    model.w[...] = w0
    xs, actions, credits, hs = [PHI_A, PHI_B], [0, 1], [1.0, 0.4], [1.0, -1.0]
    want = w0.copy()
    for x, a, c, h in zip(xs, actions, credits, hs, strict=True):
        f = np.zeros(3)
        f[x.idx] = x.val
        error = h - w0[a] @ f
        want[a] += 0.3 * c * error / (f @ f) * f
    model.update(xs, actions, credits, hs)
    np.testing.assert_allclose(model.w, want, rtol=1e-12)
    # the same action twice in one batch: both steps add up
    model.w[...] = w0
    model.update([PHI_A, PHI_B], [0, 0], [1.0, 1.0], 1.0)
    fa, fb = np.array([2.0, 0.5, 0.0]), np.array([0.0, 1.0, 3.0])
    both = w0[0] + 0.3 * (1 - w0[0] @ fa) / 4.25 * fa + 0.3 * (1 - w0[0] @ fb) / 10.0 * fb
    np.testing.assert_allclose(model.w[0], both, rtol=1e-12)


def test_linear_model_refuses_a_saved_model_of_another_shape():
    model = LinearModel(OneHot(4), 2)
    with pytest.raises(ConfigError, match=r"^saved model has shape \(2, 3\), this config needs \(2, 4\)$"):
        model.load_state_dict({"w": np.zeros((2, 3))})


# ------------------------------------------------------------------------------------------ RL learner


def test_epsilon_schedule_defaults_keep_epsilon_constant():
    s = EpsilonSchedule(0.3)
    s.step_episode(5)
    assert s.value == 0.3
    assert EpsilonSchedule().value == 0.0


def test_linear_td_defaults_are_the_papers_and_methods_are_checked():
    td = LinearTD(OneHot(3), 2)
    assert (td.method, td.lr, td.gamma, td.lam, td.q_init, td.trace_cutoff) == (
        "sarsa",
        0.5,
        1.0,
        0.9,
        0.0,
        1e-3,
    )
    with pytest.raises(ConfigError, match="^unknown linear RL method 'td0'; known: sarsa, qlearning$"):
        LinearTD(OneHot(3), 2, "td0")
    with pytest.raises(ConfigError, match=r"^saved Q has shape \(2, 2\), this config needs \(2, 3\)$"):
        td.load_state_dict({"w": np.zeros((2, 2)), "episode": np.array(0)})


def check_trace_bookkeeping(td: LinearTD) -> None:
    """The sparse traces: ``active`` lists exactly the nonzero traces, once each, all above the cutoff."""
    nonzero = np.flatnonzero(td.trace)
    assert sorted(td.active.tolist()) == nonzero.tolist()
    assert np.array_equal(td.is_active, td.trace != 0)
    assert np.all(td.trace[nonzero] > td.trace_cutoff)


@pytest.mark.parametrize("lam, cutoff", [(0.8, 1e-3), (0.0, 0.0), (0.5, 0.3)])
def test_sparse_traces_list_exactly_the_live_traces(lam, cutoff):
    phis = {0: PHI_A, 1: PHI_B, 2: Phi(np.array([2]), np.array([0.7]))}
    td = LinearTD(Fixed(3, phis), 2, "qlearning", lr=0.3, gamma=0.9, lam=lam, trace_cutoff=cutoff)
    rng = np.random.default_rng(0)
    for step in range(200):
        s, s2 = int(rng.integers(3)), int(rng.integers(3))
        end = step % 7 == 6
        a, a2, r = int(rng.integers(2)), None if end else int(rng.integers(2)), float(rng.normal())
        td.update(phis[s], a, r, phis[s2], a2, end and step % 2 == 0)
        check_trace_bookkeeping(td)
        if step % 50 == 49:
            td.end_episode()
            assert td.active.size == 0 and not td.trace.any() and not td.is_active.any()


# -------------------------------------------------------------------------------------------- features


def test_tile_coding_indices_by_hand():
    """2 dimensions over [0, 1]², 2 bins (3 tiles a side with the offset spill-over, 9 per tiling).

    Asymmetric offsets, 4 tilings: displacement (1, 3) → offsets (t/4, 3t/4 mod 1) = (0, 0), (.25, .75),
    (.5, .5), (.75, .25). At (0.3, 0.8), scaled (0.6, 1.6), the coordinates floor(scaled + offset) are
    (0, 1), (0, 2), (1, 2), (1, 1): indices 0+1·3, 0+2·3 + 9, 1+2·3 + 18, 1+1·3 + 27.
    Uniform offsets (t/4, t/4): (0, 1), (0, 1), (1, 2), (1, 2) → 3, 12, 25, 34."""
    asym = TileCoding([0.0, 0.0], [1.0, 1.0], tilings=4, bins=2)
    np.testing.assert_allclose(asym.offsets, [[0, 0], [0.25, 0.75], [0.5, 0.5], [0.75, 0.25]])
    assert asym([0.3, 0.8]).idx.tolist() == [3, 15, 25, 31]
    uni = TileCoding([0.0, 0.0], [1.0, 1.0], tilings=4, bins=2, offsets="uniform")
    np.testing.assert_allclose(uni.offsets, [[0, 0], [0.25, 0.25], [0.5, 0.5], [0.75, 0.75]])
    assert uni([0.3, 0.8]).idx.tolist() == [3, 12, 25, 34]
    # at the low corner every tiling's first tile; beyond the high corner the last one (coordinate = bins)
    assert asym([0.0, 0.0]).idx.tolist() == [0, 9, 18, 27]
    assert asym([-5.0, -5.0]).idx.tolist() == [0, 9, 18, 27]
    assert asym([9.0, 9.0]).idx.tolist() == [8, 17, 26, 35]
    assert asym.n_features == 36 and not asym.hashed


def test_tile_coding_on_a_box_away_from_the_origin():
    """The same grid moved to [-1, 1] × [2, 6]: the same relative point gets the same tiles."""
    tiles = TileCoding([-1.0, 2.0], [1.0, 6.0], tilings=4, bins=2)
    assert tiles([-1.0 + 0.3 * 2, 2.0 + 0.8 * 4]).idx.tolist() == [3, 15, 25, 31]


def test_tile_coding_defaults_and_the_hashing_threshold():
    tiles = TileCoding(np.zeros(3), np.ones(3))
    assert tiles.n_features == 8 * 9**3 and tiles(np.full(3, 0.5)).idx.shape == (8,)
    exact = TileCoding([0.0, 0.0], [1.0, 1.0], tilings=4, bins=2, max_size=36)  # fits exactly: no hashing
    assert not exact.hashed and exact([0.3, 0.8]).idx.tolist() == [3, 15, 25, 31]
    assert TileCoding([0.0, 0.0], [1.0, 1.0], tilings=4, bins=2, max_size=35).hashed


def test_hashed_tiles_spread_over_the_whole_table():
    """Hashed indices are integers in [0, max_size), one per tiling, and use odd slots as well as even ones
    (a multiplier that is even modulo a power-of-two table would waste half of it)."""
    tiles = TileCoding(np.zeros(6), np.ones(6), tilings=8, bins=8, max_size=4096)
    rng = np.random.default_rng(0)
    seen, distinct = set(), 0
    for _ in range(300):
        idx = tiles(rng.uniform(0, 1, 6)).idx
        assert idx.dtype.kind == "i" and idx.min() >= 0 and idx.max() < 4096
        distinct += len(set(idx.tolist())) == 8
        seen |= set(idx.tolist())
    assert distinct >= 280  # collisions are rare
    assert {i % 2 for i in seen} == {0, 1} and len(seen) > 1500


def test_subset_tile_coding_away_from_the_origin_and_at_its_edges():
    """Pairs of 3 dimensions over [-1, 1] × [2, 6] × [10, 11]: each pair is the full 2-d tiling of its two
    dimensions (checked against TileCoding, itself checked by hand above), uniform offsets passed through."""
    low, high = np.array([-1.0, 2.0, 10.0]), np.array([1.0, 6.0, 11.0])
    pairs = SubsetTileCoding(low, high, size=2, tilings=4, bins=2, offsets="uniform")
    for obs in ([0.2, 3.1, 10.9], [-1.0, 2.0, 10.0], [-7.0, 0.0, 5.0], [3.0, 9.0, 12.0]):
        obs = np.array(obs)
        got = pairs(obs).idx.reshape(3, 4)
        for g, dims in enumerate([(0, 1), (0, 2), (1, 2)]):
            full = TileCoding(low[list(dims)], high[list(dims)], tilings=4, bins=2, offsets="uniform")
            assert (got[g] - g * 36).tolist() == full(obs[list(dims)]).idx.tolist()
    assert pairs(low).idx.dtype == np.int64  # indices that can index a weight matrix
    assert LinearModel(pairs, 2).predict(pairs(low)).tolist() == [0.0, 0.0]
    assert pairs(low).idx.reshape(3, 4)[0].tolist() == [0, 9, 18, 27]
    assert pairs(high + 5).idx.reshape(3, 4)[0].tolist() == [8, 17, 26, 35]


def test_subset_tile_coding_defaults_and_sizes():
    low, high = np.zeros(3), np.ones(3)
    assert SubsetTileCoding(low, high).n_features == 3 * 8 * 81  # pairs, 8 tilings, 8 bins
    whole = SubsetTileCoding(low, high, size=3, tilings=2, bins=2)  # one subset: every dimension
    assert whole.n_features == 2 * 27 and whole.groups.tolist() == [[0, 1, 2]]
    with pytest.raises(ConfigError, match=r"^tile subsets need 1 <= size <= 3 \(the dimensions\), got 0$"):
        SubsetTileCoding(low, high, size=0)


@pytest.mark.parametrize(
    "low, high, message",
    [
        ([0.0, 0.0], [1.0], "two 1-d lists of equal length"),
        ([[0.0, 0.0]], [[1.0, 1.0]], "two 1-d lists of equal length"),
        ([0.0, -np.inf], [1.0, 1.0], "needs finite bounds"),
        ([0.0, 0.0], [1.0, np.inf], "needs finite bounds"),
        ([0.0, 1.0], [1.0, 1.0], "need high > low"),
        ([0.0, 2.0], [1.0, 1.0], "need high > low"),
    ],
)
def test_tile_bounds_are_checked(low, high, message):
    with pytest.raises(ConfigError, match=message):
        TileCoding(low, high)


def test_tile_bound_messages_in_full():
    with pytest.raises(
        ConfigError, match=r"^tile coding bounds must be two 1-d lists of equal length, got \["
    ):
        TileCoding([0.0, 0.0], [1.0])
    with pytest.raises(
        ConfigError, match=r", got low=\[0.0, 0.0\] high=\[1.0, inf\]; give them with --obs-low/--obs-high$"
    ):
        TileCoding([0.0, 0.0], [1.0, np.inf])
    with pytest.raises(
        ConfigError, match=r"^tile coding bounds need high > low, got low=\[0.0, 1.0\] high=\[1.0, 1.0\]$"
    ):
        TileCoding([0.0, 1.0], [1.0, 1.0])


def test_rbf_values_by_hand():
    """One dimension over [0, 2], 3 centres (unit positions 0, .5, 1; spacing .5), width 1 → σ = .5,
    1/(2σ²) = 2. At obs 0.5 (unit .25): squared distances .0625, .0625, .5625; then the bias 1."""
    rbf = RBF([0.0], [2.0], centers=3, width=1.0)
    phi = rbf([0.5])
    assert rbf.n_features == 4 and phi.idx.tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(phi.val, [math.exp(-0.125), math.exp(-0.125), math.exp(-1.125), 1.0])
    narrow = RBF([-1.0], [1.0], centers=3, width=0.5)  # σ = .25, 1/(2σ²) = 8; obs 0 is the middle centre
    np.testing.assert_allclose(
        narrow([0.5]).val, [math.exp(-8 * 0.5625), math.exp(-8 * 0.0625), math.exp(-8 * 0.0625), 1.0]
    )


def test_rbf_grid_over_two_dimensions_and_defaults():
    """Centres in row-major order: index i·n + j is the centre (grid[i], grid[j])."""
    rbf = RBF([0.0, 10.0], [1.0, 20.0], centers=3, width=1.0)
    assert rbf.n_features == 10
    phi = rbf([0.0, 15.0])  # the unit point (0, .5): centre index 1
    assert phi.val[1] == pytest.approx(1.0) and phi.val[3] < 1.0 and phi.val[-1] == 1.0
    default = RBF([0.0], [1.0])  # 5 centres, width 1: σ = .25, 1/(2σ²) = 8
    assert default.n_features == 6
    np.testing.assert_allclose(default([0.1]).val[:2], [math.exp(-8 * 0.01), math.exp(-8 * 0.0225)])


@pytest.mark.parametrize("low, high", [([0.0], [np.inf]), ([-np.inf], [0.0]), ([1.0], [1.0]), ([1.0], [0.0])])
def test_rbf_bounds_are_checked(low, high):
    with pytest.raises(ConfigError, match=r"^RBF needs finite bounds with high > low, got \["):
        RBF(low, high)


def test_make_features_builds_each_kind_with_its_options():
    box = Box(0.0, 1.0, (3,))
    dims = make_features(box, "Env-v0", kind="tile_dims", tilings=2, bins=3)
    assert (
        type(dims) is SubsetTileCoding
        and dims.groups.tolist() == [[0], [1], [2]]
        and dims.n_features == 3 * 2 * 4
    )
    pairs = make_features(box, "Env-v0", kind="tile_pairs", tilings=4, bins=3, offsets="uniform")
    assert pairs.groups.shape == (3, 2) and pairs.n_features == 3 * 4 * 16
    np.testing.assert_allclose(pairs.offsets, [[0, 0], [0.25, 0.25], [0.5, 0.5], [0.75, 0.75]])
    tiles = make_features(box, "Env-v0", kind="tile", tilings=4, bins=2, offsets="uniform")
    assert type(tiles) is TileCoding and tiles.n_features == 4 * 27
    np.testing.assert_allclose(tiles.offsets[1], [0.25, 0.25, 0.25])
    asym = make_features(Box(0.0, 1.0, (2,)), "Env-v0", tilings=4, bins=2)
    np.testing.assert_allclose(asym.offsets, [[0, 0], [0.25, 0.75], [0.5, 0.5], [0.75, 0.25]])
    rbf = make_features(Box(0.0, 2.0, (1,)), "Env-v0", kind="rbf", rbf_centers=3, rbf_width=0.5)
    assert type(rbf) is RBF and rbf.n_features == 4
    np.testing.assert_allclose(rbf([1.0]).val, [math.exp(-8 * 0.25), 1.0, math.exp(-8 * 0.25), 1.0])
    default_rbf = make_features(Box(0.0, 1.0, (1,)), kind="rbf")
    assert default_rbf.n_features == 6 and default_rbf([0.1]).val[0] == pytest.approx(math.exp(-8 * 0.01))
    onehot = make_features(Discrete(3, start=5))
    assert onehot(6).idx.tolist() == [1]


def test_make_features_refusals_in_full():
    with pytest.raises(
        ConfigError, match=r"^one-hot features need a Discrete observation space, Env-v0 has Box\("
    ):
        make_features(Box(0.0, 1.0, (2,)), "Env-v0", kind="onehot")
    with pytest.raises(
        ConfigError,
        match=r"^unknown features 'cubes'; known: auto, tile, tile_pairs, tile_dims, rbf, onehot$",
    ):
        make_features(Box(0.0, 1.0, (2,)), "Env-v0", kind="cubes")
    image = Box(0, 255, (4, 4, 3), np.uint8)
    with pytest.raises(
        ConfigError,
        match=r"^tile features need a 1-d Box observation space,  has Box\(.*\); "
        r"image observations need the neural model$",
    ):
        make_features(image, kind="tile")
    with pytest.raises(ConfigError, match="^rbf features need a 1-d Box"):
        make_features(Discrete(3), "Env-v0", kind="rbf")


# ---------------------------------------------------------------------------------------------- blends


class In:
    """One model's input for a hand-made state; ``val`` stands in for its features (||φ||² = 5)."""

    def __init__(self, name: str):
        self.name, self.val = name, np.array([1.0, 2.0])

    def __repr__(self) -> str:
        return self.name


H0, H1, H2, Q0, Q1, Q2 = (In(n) for n in ("h0", "h1", "h2", "q0", "q1", "q2"))
X0, X1, X2 = (H0, Q0), (H1, Q1), (H2, Q2)  # the agent's input: (Ĥ's, Q's)
H_OF = {H0: np.array([0.5, -1.0, 0.25]), H1: np.array([-0.5, 2.0, 0.0]), H2: np.array([0.0, 0.0, 0.0])}
Q_OF = {Q0: np.array([1.0, 2.0, 0.0]), Q1: np.array([0.5, 0.0, 3.0]), Q2: np.array([1.0, 1.0, 0.0])}


class TableH:
    def predict(self, hx):
        return H_OF[hx].copy()


class RecordingRL:
    """Q from a table; records every update in full; δ = 0.5 always."""

    gamma, lr = 0.9, 0.1

    def __init__(self, q=None, epsilon=0.0):
        self.q, self.epsilon, self.calls = q or Q_OF, epsilon, []

    def values(self, qx):
        return self.q[qx].copy()

    def update(self, x, action, reward, x_next, action_next, terminated, offset=0.0, offset_next=None):
        self.calls.append((x, action, reward, x_next, action_next, terminated, offset, offset_next))
        return 0.5


class PolicyRL(RecordingRL):
    """A policy learner (like PPO): acts itself."""

    def act(self, qx, rng):
        self.asked = (qx, rng)
        return 7


def blend_agent(name: str, rl=None, beta: float = 2.0, seed: int = 0) -> Agent:
    return Agent(TableH(), rl or RecordingRL(), make_blend(name), 3, np.random.default_rng(seed),
                 schedule=BetaSchedule(beta))  # fmt: skip


def one_call(a: Agent) -> tuple:
    (call,) = a.rl.calls
    return call


# Transition (s0, a=2, r=-1, s1, a'=1) and its terminal version (a'=None, terminated); β = 2, γ = 0.9.
# Ĥ(s0) = [.5, -1, .25], Ĥ(s1) = [-.5, 2, 0]: Ĥ(s0, 2) = .25, max Ĥ(s0) = .5, max Ĥ(s1) = 2.
EXPECTED = {
    "rl": (-1.0, -1.0),
    "action_biasing": (-1.0, -1.0),
    "control_sharing": (-1.0, -1.0),
    "reward_shaping": (-1.0 + 2 * 0.25, -1.0 + 2 * 0.25),
    "potential_shaping": (-1.0 + 2 * (0.9 * 2.0 - 0.5), -1.0 + 2 * (0.0 - 0.5)),  # Φ(terminal) = 0
    "h_as_reward": (2 * 0.25, 2 * 0.25),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("terminal", [False, True])
def test_blends_hand_the_learner_the_whole_transition(name, terminal):
    a = blend_agent(name)
    action_next = None if terminal else 1
    a.learn_reward(X0, 2, -1.0, X1, action_next, terminal)
    reward = EXPECTED[name][terminal]
    assert one_call(a) == (Q0, 2, pytest.approx(reward), Q1, action_next, terminal, 0.0, None)


@pytest.mark.parametrize("terminal", [False, True])
def test_q_augmentation_hands_over_beta_h_offsets_with_the_transition(terminal):
    a = blend_agent("q_augmentation")
    action_next = None if terminal else 1
    a.learn_reward(X0, 2, -1.0, X1, action_next, terminal)
    x, action, reward, x_next, got_next, got_terminal, offset, offset_next = one_call(a)
    assert (x, action, reward, x_next, got_next, got_terminal) == (Q0, 2, -1.0, Q1, action_next, terminal)
    assert offset == pytest.approx(2 * 0.25)
    np.testing.assert_allclose(offset_next, [-1.0, 4.0, 0.0])


@pytest.mark.parametrize("terminal", [False, True])
def test_h_feature_learns_its_weight_from_the_learners_td_error(terminal):
    """u starts at β = 2; δ = 0.5 (the stub's); u += lr·δ·Ĥ(s, a)/(||φ(s)||² + Ĥ(s, a)²) with Ĥ(s0, 2) = .25,
    ||φ||² = 5. Learning before any action is chosen also starts u at β."""
    a = blend_agent("h_feature")
    action_next = None if terminal else 1
    a.learn_reward(X0, 2, -1.0, X1, action_next, terminal)
    x, action, reward, x_next, got_next, got_terminal, offset, offset_next = one_call(a)
    assert (x, action, reward, x_next, got_next, got_terminal) == (Q0, 2, -1.0, Q1, action_next, terminal)
    assert offset == pytest.approx(2 * 0.25)
    np.testing.assert_allclose(offset_next, [-1.0, 4.0, 0.0])
    assert a.blend.u == pytest.approx(2.0 + 0.1 * 0.5 * 0.25 / (5.0 + 0.0625))


def test_extra_action_learns_the_learners_own_choices():
    """Before any action the learner's choices are (0, 0); an episode's last transition uses the current
    choice and no next one."""
    q4 = {Q0: np.array([1.0, 0.0, 0.0, -2.0]), Q1: np.array([2.0, 0.0, 0.0, 1.5])}
    a = blend_agent("extra_action", RecordingRL(q4), beta=1.0)
    a.learn_reward(X0, 2, -1.0, X1, 1, False)
    a.learn_reward(X0, 2, -1.0, X1, None, True)
    assert a.rl.calls == [(Q0, 0, -1.0, Q1, 0, False, 0.0, None), (Q0, 0, -1.0, Q1, None, True, 0.0, None)]
    # Q(s1) = [2, 0, 0, 1.5]: β = 1 added to the extra action makes it 2.5 > 2 (β alone would be 1 < 2)
    assert a.act(X1) == 1  # "do what Ĥ says": argmax Ĥ(s1) = 1
    assert a.blend.rl_actions == [0, 3]
    a.learn_reward(X1, 1, 0.0, X0, None, True)
    assert a.rl.calls[-1] == (Q1, 3, 0.0, Q0, None, True, 0.0, None)
    assert a.act(X0) == 0 and a.blend.rl_actions == [3, 0]  # Q(s0) + β on the extra action: [1, 0, 0, -1]
    a.learn_reward(X0, 0, 0.0, X1, 1, False)
    assert a.rl.calls[-1] == (Q0, 3, 0.0, Q1, 0, False, 0.0, None)


def test_blends_explore_at_the_learners_epsilon():
    """With ε = 1 every action comes up, for every blend that acts through the learner's ε."""
    for name in ("rl", "action_biasing", "q_augmentation", "h_feature", "reward_shaping"):
        a = blend_agent(name, RecordingRL(epsilon=1.0))
        assert {a.act(X0) for _ in range(200)} == {0, 1, 2}, name
    q4 = {Q0: np.array([0.0, 5.0, 0.0, 0.0])}
    a = blend_agent("extra_action", RecordingRL(q4, epsilon=1.0), beta=0.0)
    assert {a.act(X0) for _ in range(200)} == {0, 1, 2}  # the extra action means argmax Ĥ(s0) = 0


def test_blends_break_ties_at_random():
    """Q(s2) = [1, 1, 0], Ĥ(s2) = 0: actions 0 and 1 tie, and both are taken."""
    for name in ("rl", "action_biasing", "q_augmentation", "h_feature", "control_sharing"):
        a = blend_agent(name, beta=0.0)
        assert {a.act(X2) for _ in range(100)} == {0, 1}, name
    q4 = {Q2: np.array([0.0, 0.0, 0.0, 1.0])}  # the extra action wins and Ĥ(s2) ties everywhere
    a = blend_agent("extra_action", RecordingRL(q4), beta=0.0)
    assert {a.act(X2) for _ in range(100)} == {0, 1, 2}


def test_a_policy_learner_chooses_its_own_action():
    rl = PolicyRL()
    a = blend_agent("rl", rl)
    assert a.act(X0) == 7 and rl.asked[0] is Q0 and rl.asked[1] is a.rng


def test_h_as_reward_scales_h_by_beta():
    a = blend_agent("h_as_reward", beta=3.0)
    a.learn_reward(X1, 0, 100.0, X0, 1, False)  # Ĥ(s1, 0) = -0.5
    assert a.rl.calls[0][2] == pytest.approx(-1.5)


# ---------------------------------------------------------------------------------------- β schedules


class MySchedule(BetaSchedule):
    """A user's schedule: records what ``make_schedule`` built it with."""

    def __init__(self, beta, decay, n_features, offset=0.0):
        super().__init__(beta, decay)
        self.built = (beta, decay, n_features, offset)


class Silent:
    """A user's schedule with ``value`` only."""

    def __init__(self, beta):
        self.beta = beta

    def value(self, hx=None):
        return self.beta


class Nothing:
    def __init__(self):
        pass


def test_user_schedule_gets_beta_decay_and_n_features():
    s = make_schedule("tests.test_mutants_core:MySchedule(offset=0.5)", 2.0, 0.9, n_features=12)
    # the spec imports this module afresh as tests.test_mutants_core: compare by name
    assert type(s).__name__ == "MySchedule" and s.built == (2.0, 0.9, 12, 0.5)


def test_user_schedule_without_the_hooks_is_refused_naming_them():
    with pytest.raises(
        ConfigError,
        match=r"^beta schedule 'tests.test_mutants_core:Silent' lacks on_step\(\), on_episode\(\), "
        r"on_feedback\(\) \(subclass BetaSchedule\)$",
    ):
        make_schedule("tests.test_mutants_core:Silent", 1.0, 1.0)
    with pytest.raises(
        ConfigError, match=r"lacks value\(\), on_step\(\), on_episode\(\), on_feedback\(\) \("
    ):
        make_schedule("tests.test_mutants_core:Nothing", 1.0, 1.0)
    with pytest.raises(ConfigError, match=r"^cannot load beta schedule 'tests.test_mutants_core:Missing'"):
        make_schedule("tests.test_mutants_core:Missing", 1.0, 1.0)


def test_schedule_refusals_in_full():
    with pytest.raises(
        ConfigError,
        match=r"^unknown beta schedule 'cosine'; known: constant, episode_exp, episode_linear, step_exp, "
        r"feedback, region, or package.module:ClassName$",
    ):
        make_schedule("cosine", 1.0, 1.0)
    with pytest.raises(
        ConfigError, match=r"^the region beta schedule needs a linear Ĥ over features \(traces live there\)$"
    ):
        make_schedule("region", 1.0, 0.5)


def test_schedule_values_over_steps_and_episodes():
    assert EpisodeExp(2.0).decay == 1.0
    const = EpisodeExp(2.0)  # default decay 1: constant
    for _ in range(3):
        const.on_episode()
    assert const.value() == 2.0
    step = StepExp(2.0, 0.5)
    for _ in range(3):
        step.on_step()
    assert step.steps == 3 and step.value() == pytest.approx(0.25)
    lin = EpisodeLinear(2.0, 0.5)
    values = []
    for _ in range(6):
        values.append(lin.value())
        lin.on_episode()
    assert values == pytest.approx([2.0, 1.5, 1.0, 0.5, 0.0, 0.0])
    assert RegionTraces(2.0, 0.5, 4).value(None) == 0.0  # no features: no region


def test_region_traces_decay_from_when_they_were_set():
    r = RegionTraces(1.0, 0.5, 3)
    for _ in range(4):
        r.on_step()
    r.on_feedback([Phi(np.array([0]), np.ones(1))])  # set at step 4
    r.on_step()
    r.on_step()
    assert r.value(Phi(np.array([0]), np.ones(1))) == pytest.approx(0.25)  # two steps later
    assert r.value(Phi(np.array([0, 1]), np.array([3.0, 1.0]))) == pytest.approx(
        0.25 * 3 / 4
    )  # weighted mean


# ------------------------------------------------------------------------------------- feedback sources


def test_teacher_presence_by_episode():
    t = SimulatedTeacher(
        lambda obs: np.array([True]), UniformDelay(), np.random.default_rng(0), leave_after=3
    )
    assert [t.present(e) for e in range(6)] == [True, True, True, False, False, False]
    stays = SimulatedTeacher(lambda obs: np.array([True]), UniformDelay(), np.random.default_rng(0))
    assert stays.present(0) and stays.present(1000)


HEADER = "time,step,episode,value\n"


def test_feedback_rows_keep_step_and_episode(tmp_path):
    log = tmp_path / "feedback.csv"
    log.write_text(HEADER + "0.5,3,0,1.0\n0.5,4,1,-1.0\n2.25,9,2,1.0\n")  # equal times are in order
    assert read_feedback_rows(log) == [
        (Feedback(0.5, 1.0), 3, 0),
        (Feedback(0.5, -1.0), 4, 1),
        (Feedback(2.25, 1.0), 9, 2),
    ]


def test_a_torn_last_line_is_refused_unless_dropped(tmp_path):
    log = tmp_path / "feedback.csv"
    log.write_text(HEADER + "1.0,3,0,1.0\n2.0,4,0,-1")
    message = r":3: truncated line '2.0,4,0,-1' \(no end of line\)$"
    with pytest.raises(ConfigError, match=message):
        read_feedback_rows(log)
    with pytest.raises(ConfigError, match=message):
        read_feedback_log(log)
    assert read_feedback_rows(log, drop_torn=True) == [(Feedback(1.0, 1.0), 3, 0)]
    assert read_feedback_log(log, drop_torn=True) == [Feedback(1.0, 1.0)]
    log.write_text(HEADER + "1.0,3,0,1.0\n")  # nothing torn: nothing dropped
    assert read_feedback_log(log, drop_torn=True) == [Feedback(1.0, 1.0)]
    log.write_text("time,ste")  # torn in its header: nothing was logged
    assert read_feedback_log(log, drop_torn=True) == []
    log.write_text("")
    assert read_feedback_log(log, drop_torn=True) == []


def test_feedback_log_refusals_in_full(tmp_path):
    log = tmp_path / "feedback.csv"
    log.write_text(HEADER + "1.0,3,0,nan\n")
    with pytest.raises(ConfigError, match=r":2: time 1.0 is not finite or goes backwards$"):
        read_feedback_log(log)
    log.write_text(HEADER + "inf,3,0,1.0\n")
    with pytest.raises(ConfigError, match=r":2: time inf is not finite"):
        read_feedback_log(log)
    missing = tmp_path / "missing.csv"
    with pytest.raises(ConfigError, match=r"^cannot read feedback log .*missing.csv: \[Errno 2\]"):
        read_feedback_log(missing)


def test_feedback_log_overwrites_unless_appending(tmp_path):
    path = tmp_path / "feedback.csv"
    for append, want in ((False, [1.0]), (False, [2.0]), (True, [2.0, 3.0])):
        log = FeedbackLog(path, append=append) if append else FeedbackLog(path)
        log.write(Feedback(want[-1], want[-1]), 0, 0)
        log.close()
        assert [fb.value for fb in read_feedback_log(path)] == want


class OnlyAct:
    """A user's blend without ``learn``."""

    def act(self, agent, x):
        return 0


def test_user_blend_refusals_name_the_blend_and_the_known_ones():
    known = "tamer, rl, reward_shaping, q_augmentation, action_biasing, control_sharing, potential_shaping, "
    known += "h_feature, extra_action, q_init, h_as_reward"
    with pytest.raises(
        ConfigError, match=rf"^blend 'tests.test_mutants_core:OnlyAct' lacks learn\(\); known: {known}$"
    ):
        make_blend("tests.test_mutants_core:OnlyAct")
    with pytest.raises(
        ConfigError,
        match=rf"^cannot load blend 'tests.test_mutants_core:Missing': "
        rf"tests.test_mutants_core has no 'Missing'; known: {known}$",
    ):
        make_blend("tests.test_mutants_core:Missing")
    with pytest.raises(
        ConfigError, match=rf"^unknown blend 'nope'; known: {known}, or package.module:ClassName$"
    ):
        make_blend("nope")


def test_tamer_explores_at_the_agents_epsilon():
    a = Agent(TableH(), None, make_blend("tamer"), 3, np.random.default_rng(0), epsilon=1.0)
    assert {a.act(X0) for _ in range(200)} == {0, 1, 2}
    greedy_agent = Agent(TableH(), None, make_blend("tamer"), 3, np.random.default_rng(0))
    assert {greedy_agent.act(X0) for _ in range(20)} == {0}  # argmax Ĥ(s0)


def test_default_uniform_delay_is_0_2_to_0_8_seconds():
    d = UniformDelay()
    assert (d.min_delay, d.max_delay) == (0.2, 0.8) and d.cdf(0.5) == pytest.approx(0.5)


def test_simulated_teacher_defaults():
    t = SimulatedTeacher(lambda obs: np.array([True]), UniformDelay(), np.random.default_rng(0))
    assert (t.prob, t.error_rate, t.mode, t.fatigue, t.leave_after) == (0.5, 0.05, "both", 0.0, 0)


def test_box_bounds_fill_only_unusable_dimensions_from_the_defaults():
    """CartPole's defaults (±2.4, ±3, ±0.21, ±3.5) replace bounds that are infinite or 10⁶ and beyond."""
    space = Box(np.array([-1e7, -1e6, -np.inf, -1.0]), np.array([1e7, 1e6, np.inf, 1.0]), dtype=np.float64)
    low, high = box_bounds(space, "CartPole-v1")
    assert low.tolist() == [-2.4, -3.0, -0.21, -1.0] and high.tolist() == [2.4, 3.0, 0.21, 1.0]
    low, high = box_bounds(space, "Other-v0")  # no defaults for other environments
    assert low.tolist() == [-1e7, -1e6, -np.inf, -1.0]
    low, high = box_bounds(space, "Other-v0", "-1,-2,-3,-4", "1,2,3,4")
    assert low.tolist() == [-1.0, -2.0, -3.0, -4.0] and high.tolist() == [1.0, 2.0, 3.0, 4.0]


@pytest.mark.parametrize("which", ["low", "high"])
def test_user_bounds_refusals_name_the_option(which):
    box = Box(0.0, 1.0, (2,))
    other = "0,0" if which == "high" else "1,1"
    bad = {f"obs_{which}": "a,b", f"obs_{'high' if which == 'low' else 'low'}": other}
    with pytest.raises(ConfigError, match=rf"^--obs-{which} must be comma-separated numbers, got 'a,b'$"):
        make_features(box, "Custom-v0", **bad)
    short = {f"obs_{which}": "1", f"obs_{'high' if which == 'low' else 'low'}": other}
    with pytest.raises(ConfigError, match=rf"^--obs-{which} needs 2 values for Custom-v0, got 1$"):
        make_features(box, "Custom-v0", **short)


def test_pair_tiling_offsets_default_to_asymmetric():
    pairs = make_features(Box(0.0, 1.0, (5,)), "Env-v0", kind="tile_pairs", tilings=4, bins=2)
    np.testing.assert_allclose(pairs.offsets, [[0, 0], [0.25, 0.75], [0.5, 0.5], [0.75, 0.25]])


# ------------------------------------------- fast paths: each checked by hand, whichever path serves it


@pytest.mark.parametrize("as_array", [None, np.float64, np.float32])
@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")
def test_tile_indices_by_hand_for_lists_and_arrays(as_array):
    """The hand-checked tiles above, for an observation given as a list and as a float array (which may
    take a different code path), inside, on and beyond the box, away from the origin, and in 3 dimensions:
    3 dims over [0, 1]³, 2 tilings, 2 bins: offsets (0, 0, 0), (.5, .5, .5); strides 1, 3, 9; 27 per tiling.
    At (.3, .8, .55), scaled (.6, 1.6, 1.1): (0, 1, 1) → 12 and (1, 2, 1) → 16 + 27. At (-1, .8, 5),
    scaled (-2, 1.6, 10), clamped: (0, 1, 2) → 21 and (0, 2, 2) → 24 + 27."""

    def obs(*v):
        return list(v) if as_array is None else np.array(v, dtype=as_array)

    asym = TileCoding([0.0, 0.0], [1.0, 1.0], tilings=4, bins=2)
    assert asym(obs(0.3, 0.8)).idx.tolist() == [3, 15, 25, 31]
    assert asym(obs(0.0, 0.0)).idx.tolist() == [0, 9, 18, 27]
    assert asym(obs(-5.0, 0.3)).idx.tolist() == asym(obs(0.0, 0.3)).idx.tolist()
    assert asym(obs(0.3, 9.0)).idx.tolist() == asym(obs(0.3, 1.0)).idx.tolist()
    assert asym(obs(1.0, 1.0)).idx.tolist() == [8, 17, 26, 35]
    assert asym(obs(9.0, 9.0)).idx.tolist() == [8, 17, 26, 35]
    assert asym(obs(1e15, 1e15)).idx.tolist() == [8, 17, 26, 35]
    assert asym(obs(-1e15, -1e15)).idx.tolist() == [0, 9, 18, 27]
    for huge in (1e30, -1e30, np.inf, np.nan):  # beyond int64 once scaled: some valid tile, no crash
        idx = asym(obs(huge, 0.5)).idx
        assert len(set(idx.tolist())) == 4 and idx.min() >= 0 and idx.max() < 36
    moved = TileCoding([-1.0, 2.0], [1.0, 6.0], tilings=4, bins=2)
    assert moved(obs(-1.0 + 0.3 * 2, 2.0 + 0.8 * 4)).idx.tolist() == [3, 15, 25, 31]
    three = TileCoding([0.0, 0.0, 0.0], [1.0, 1.0, 1.0], tilings=2, bins=2)
    assert three(obs(0.3, 0.8, 0.55)).idx.tolist() == [12, 43]
    assert three(obs(-1.0, 0.8, 5.0)).idx.tolist() == [21, 51]
    assert three(obs(1e15, -1e15, 0.55)).idx.tolist() == [2 + 0 + 9, 2 + 0 + 9 + 27]
    phi = three(obs(0.3, 0.8, 0.55))
    assert phi.idx.dtype == np.int64 and phi.val.tolist() == [1.0, 1.0]


def test_the_values_of_tile_and_one_hot_features_are_read_only():
    """Every Phi of a map shares one array of ones: nobody may change it."""
    for phi in (
        TileCoding([0.0], [1.0], tilings=2, bins=2)(np.array([0.5])),
        TileCoding([0.0], [1.0], tilings=2, bins=2)([0.5]),
        SubsetTileCoding(np.zeros(2), np.ones(2), size=1, tilings=2, bins=2)([0.5, 0.5]),
        OneHot(3)(1),
    ):
        with pytest.raises(ValueError, match="read-only"):
            phi.val[0] = 2.0


def dense_step(w0: np.ndarray, xs, actions, credits, hs, lr: float) -> np.ndarray:
    """One credit-weighted gradient step written sample by sample on dense vectors; every error is taken at
    the weights before the step."""
    want = w0.copy()
    hs = [hs] * len(xs) if np.ndim(hs) == 0 else list(hs)
    for x, a, c, h in zip(xs, actions, credits, hs, strict=True):
        f = np.zeros(w0.shape[1])
        np.add.at(f, x.idx, x.val)
        want[a] += lr * c * (float(h) - w0[a] @ f) / (x.val @ x.val) * f
    return want


W0 = np.array([[0.5, -1.0, 0.25, 2.0], [1.0, 0.0, -0.5, 0.125]])


@pytest.mark.parametrize("hs", [1.0, -1, np.float64(0.5), [1.0, -1.0, 0.5], np.array([2.0, 0.0, -1.0])])
def test_linear_model_step_when_samples_share_their_values(hs):
    """Samples whose values are one shared array (tile coding's read-only ones; a map's own shared
    array, writable or not): the same step as the per-sample reference."""
    tiles = TileCoding([0.0], [1.0], tilings=2, bins=1)  # 2 tilings of 2 tiles: 4 features, values 1
    shared = np.array([2.0, 0.5])
    frozen = np.array([2.0, 0.5])
    frozen.flags.writeable = False
    cases = [
        [tiles(np.array(v)) for v in ([0.2], [0.7], [0.9])],
        [Phi(np.array(i), shared) for i in ([0, 1], [1, 2], [3, 0])],
        [Phi(np.array(i), frozen) for i in ([0, 1], [1, 2], [3, 0])],
    ]
    for xs in cases:
        model = LinearModel(Fixed(4, {}), 2, lr=0.3)
        model.w[...] = W0
        actions, credits = [0, 1, 0], [1.0, 0.5, 0.25]
        model.update(xs, actions, credits, hs)
        np.testing.assert_allclose(model.w, dense_step(W0, xs, actions, credits, hs, 0.3), rtol=1e-12)
        before = model.w.copy()  # a second step, from there: nothing remembered from the first misleads it
        model.update(xs, actions, credits, hs)
        np.testing.assert_allclose(model.w, dense_step(before, xs, actions, credits, hs, 0.3), rtol=1e-12)


def test_linear_model_step_after_a_shared_array_of_ones_changes():
    """A writable array that was all ones may not stay so: only read-only ones are taken on trust."""
    v = np.ones(2)
    xs = [Phi(np.array([0, 1]), v), Phi(np.array([1, 2]), v)]
    model = LinearModel(Fixed(4, {}), 2, lr=0.3)
    model.w[...] = W0
    model.update(xs, [0, 1], [1.0, 1.0], 1.0)
    v[:] = [2.0, 0.5]
    before = model.w.copy()
    model.update(xs, [0, 1], [1.0, 1.0], 1.0)
    np.testing.assert_allclose(model.w, dense_step(before, xs, [0, 1], [1.0, 1.0], 1.0, 0.3), rtol=1e-12)


# ------------------------------------------------------------------- credit: densities and histories


class SubUniform(UniformDelay):
    """A density of another class: credit assignment calls its ``credit`` (no inlined shortcut)."""


class SubGamma(GammaDelay):
    pass


def test_density_credit_is_the_overlap_integral():
    u = UniformDelay(0.2, 0.8)  # window [t_f - 0.8, t_f - 0.2]
    assert u.credit(1.05, 0.2, 0.3) == pytest.approx(0.05 / 0.6)
    assert u.credit(1.05, 0.3, 0.4) == pytest.approx(0.1 / 0.6)
    assert (
        u.credit(1.0, 0.0, 0.1) == 0.0 and u.credit(1.0, 0.9, 1.0) == 0.0 and u.credit(1.0, 0.5, 0.5) == 0.0
    )
    g = GammaDelay(2.0, 0.28)
    assert g.credit(2.0, 1.0, 1.1) == pytest.approx(gamma2_cdf(1.0, 0.28) - gamma2_cdf(0.9, 0.28), rel=1e-10)
    assert g.credit(2.0, 2.5, 2.6) == 0.0


@pytest.mark.parametrize("density", [UniformDelay(0.2, 0.8), SubUniform(0.2, 0.8)])
def test_uniform_credit_by_hand_including_the_oldest_step_kept(density):
    a = CreditAssigner(density)
    record_steps(a, 3)  # [0, .1) [.1, .2) [.2, .3); feedback at 0.5 judges [-.3, .3]: all three, 1/6 each
    xs, actions, credits = a.assign(0.5)
    assert (xs, actions) == (["x2", "x1", "x0"], [2, 1, 0]) and credits == pytest.approx([1 / 6] * 3)
    a.record("empty", 0, 0.35, 0.35)  # a zero-length step in the window gets nothing
    b = CreditAssigner(density)
    record_steps(b, 10)
    xs, actions, credits = b.assign(1.05)  # window [.25, .85]: x2 and x8 half, x3 .. x7 whole
    assert xs == [f"x{i}" for i in range(8, 1, -1)] and actions == [i % 3 for i in range(8, 1, -1)]
    assert credits == pytest.approx([0.05 / 0.6] + [0.1 / 0.6] * 5 + [0.05 / 0.6])
    assert a.assign(0.75)[0] == ["x2", "x1", "x0"]  # "empty" at .35 is inside [-.05, .55] but has no length


@pytest.mark.parametrize("density", [GammaDelay(2.0, 0.28), SubGamma(2.0, 0.28)])
def test_gamma_credit_by_hand_with_gaps_between_steps(density):
    """Steps with gaps, and the feedback after the last one ended: each gets F(t_f − start) − F(t_f − end)."""
    a = CreditAssigner(density)
    spans = [(0.0, 0.1), (0.2, 0.3), (0.3, 0.4), (0.6, 0.7)]
    for i, (s, e) in enumerate(spans):
        a.record(f"x{i}", i, s, e)
    xs, actions, credits = a.assign(1.0)
    assert xs == ["x3", "x2", "x1", "x0"] and actions == [3, 2, 1, 0]
    want = [gamma2_cdf(1.0 - s, 0.28) - gamma2_cdf(1.0 - e, 0.28) for s, e in reversed(spans)]
    assert credits == pytest.approx(want, rel=1e-10)


@pytest.mark.parametrize("density", [GammaDelay(2.0, 0.28), SubGamma(2.0, 0.28)])
def test_gamma_history_stops_at_the_step_that_ends_where_the_density_ends(density):
    t_f = 5.0
    oldest = t_f - density.max_delay
    a = CreditAssigner(density)
    a.record("old", 0, oldest - 0.1, oldest)  # ends exactly where the density's support ends: no credit
    a.record("mid", 1, 3.0, 3.1)
    a.record("new", 2, 4.0, 4.1)
    xs, _, credits = a.assign(t_f)
    assert xs == ["new", "mid"]
    assert credits == pytest.approx(
        [gamma2_cdf(1.0, 0.28) - gamma2_cdf(0.9, 0.28), gamma2_cdf(2.0, 0.28) - gamma2_cdf(1.9, 0.28)],
        rel=1e-10,
    )


def out_of_order(mode: str, last=(0.2, 0.3)) -> CreditAssigner:
    """Steps recorded out of time order (no clock does this, but nothing may go wrong): x0 [0, .1),
    x1 [.5, .6), then x2 starting before x1."""
    a = CreditAssigner(UniformDelay(0.2, 0.8), mode=mode)
    a.record("x0", 0, 0.0, 0.1)
    a.record("x1", 1, 0.5, 0.6)
    a.record("x2", 2, *last)
    return a


def test_a_history_out_of_time_order_is_searched_step_by_step():
    """Newest recorded first: skip steps starting at or after t_f − 0.2, stop at one ending at or before
    t_f − 0.8; "immediate" takes the most recently recorded step that had started."""
    a = out_of_order("delay")
    xs, actions, credits = a.assign(0.7)  # window [-.1, .5]: x2 and x0 whole, x1 starts at .5: nothing
    assert (xs, actions) == (["x2", "x0"], [2, 0]) and credits == pytest.approx([1 / 6, 1 / 6])
    b = out_of_order("immediate")
    assert b.assign(0.3)[0] == ["x2"] and b.assign(0.2)[0] == ["x2"] and b.assign(0.05)[0] == ["x0"]
    assert b.assign(-1.0) == ([], [], []) and b.ignored == 1
    assert out_of_order("previous").assign(0.55)[0] == ["x1"]
    assert out_of_order("immediate", last=(0.2, 0.7)).assign(0.3)[0] == ["x2"]  # starts earlier, ends later


def test_long_histories_keep_exactly_the_recent_steps_in_bounded_memory():
    a = CreditAssigner(UniformDelay(0.2, 0.8), slack=0.05)  # horizon 0.85 s: with 0.25 s steps, keep 4
    for i in range(1000):
        a.record(f"x{i}", i % 3, i / 4, (i + 1) / 4)
        assert [x for _, _, x, _ in a.steps] == [f"x{j}" for j in range(max(0, i - 3), i + 1)]
    assert len(a._starts) < 200  # the dropped steps are let go, not kept behind the live ones
    xs, _, credits = a.assign(1000 / 4)  # window [249.2, 249.8]: x999 .05 s of it, x998 and x997 whole,
    assert xs == ["x999", "x998", "x997", "x996"]  # x996 .05 s
    assert credits == pytest.approx([0.05 / 0.6, 0.25 / 0.6, 0.25 / 0.6, 0.05 / 0.6])


@pytest.mark.parametrize("as_array", [None, np.float64])
def test_tile_indices_by_hand_on_a_box_below_zero(as_array):
    """[-.5, 1.5]², 2 bins, 4 tilings (offsets as above). At (.7, 1.1), scaled (1.2, 1.6): coordinates
    (1, 1), (1, 2), (1, 2), (1, 1) → 1+3, 1+6 + 9, 1+6 + 18, 1+3 + 27."""
    tiles = TileCoding([-0.5, -0.5], [1.5, 1.5], tilings=4, bins=2)
    obs = [0.7, 1.1] if as_array is None else np.array([0.7, 1.1], dtype=as_array)
    assert tiles(obs).idx.tolist() == [4, 16, 25, 31]


def frozen(values) -> np.ndarray:
    a = np.array(values, dtype=np.float64)
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("val", [[1.0, 1.0, 1.0], [2.0, 0.5, 1.0], [-1.0, -1.0, -1.0]])
@pytest.mark.parametrize("read_only", [True, False])
def test_td_updates_when_states_share_their_values_match_the_reference(val, read_only):
    """States whose features share one values array (read-only, as tile coding's ones, or not): every
    update as the dense reference of tests/test_rl_updates.py; then the shared array changes (allowed when
    it is writable) and the updates still follow it."""
    from test_rl_updates import N_ACTIONS, N_FEATURES, DenseTD

    shared = frozen(val) if read_only else np.array(val, dtype=np.float64)
    states = [Phi(np.array(i), shared) for i in ([0, 1, 2], [3, 4, 5], [2, 6, 7], [8, 9, 10])]
    td = LinearTD(
        Fixed(N_FEATURES, dict(enumerate(states))), N_ACTIONS, "qlearning", lr=0.3, gamma=0.9, lam=0.8
    )
    ref = DenseTD("qlearning", 0.3, 0.9, 0.8)
    rng = np.random.default_rng(3)
    for step in range(80):
        if step == 40 and not read_only:
            shared[:] = [2.0, 0.5, 1.0]
        s, s2, a, a2 = (int(v) for v in rng.integers(0, [4, 4, N_ACTIONS, N_ACTIONS]))
        r, end = float(rng.normal()), step % 9 == 8
        got = td.update(states[s], a, r, states[s2], None if end else a2, end)
        assert got == pytest.approx(
            ref.update(states[s], a, r, states[s2], None if end else a2, end), rel=1e-12
        )
        np.testing.assert_allclose(td.w, ref.W, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("beta", [2, np.float64(2.0), 2.0])
def test_biased_action_choice_for_any_kind_of_beta(beta):
    """Q + β·Ĥ with β an int or a numpy float as well as a float: Q(s1) + 2Ĥ(s1) = [-.5, 4, 3] → 1,
    Q(s0) + 2Ĥ(s0) = [2, 0, .5] → 0."""
    for name in ("action_biasing", "q_augmentation"):
        a = Agent(
            TableH(),
            RecordingRL(),
            make_blend(name),
            3,
            np.random.default_rng(0),
            schedule=BetaSchedule(beta),
        )
        assert a.act(X1) == 1 and a.act(X0) == 0, name


def test_out_of_order_search_visits_every_step():
    a = CreditAssigner(UniformDelay(0.2, 0.8), mode="immediate")
    a.record("x0", 0, 0.5, 0.6)
    a.record("x1", 1, 0.0, 0.1)  # before x0: out of order
    a.record("x2", 2, 0.9, 1.0)
    assert a.assign(0.55)[0] == ["x1"]  # the most recently recorded step that had started
    assert a.assign(0.95)[0] == ["x2"]
