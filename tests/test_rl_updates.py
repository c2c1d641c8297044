"""Every TD update of ``tamer.rl.LinearTD`` against a dense reference written here from the textbook.

The reference keeps the full weight matrix W (actions × features) and the full trace matrix E and does, per
transition (s, a, r, s', a') with features φ(s) (Sutton & Barto 2018, sec. 12.7; 1998, fig. 7.14):

    δ = r + γ·boot − (W[a]·φ(s) + q_init + offset)
        boot = 0                                     if s' is terminal
             = max_b Q'(s', b)                       if the episode was truncated (a' None) or Q-learning
             = Q'(s', a')                            Sarsa
        with Q'(s', ·) = W·φ(s') + q_init + offset_next
    E[a, active(φ(s))] = φ(s)[active]                replacing traces
    W += lr · δ / ||φ(s)||² · E
    E = 0 at the end of an episode, and (Watkins) after an exploratory a' (Q'(s', a') < max Q'(s', ·));
    otherwise E *= γλ, entries ≤ trace_cutoff dropped.

Features are random sparse vectors with values ≠ 1, so ||φ||² ≠ 1 and the step normalisation shows.
"""

from __future__ import annotations

import numpy as np
import pytest

from tamer.features import Phi
from tamer.rl import EpsilonSchedule, LinearTD, epsilon_greedy

N_FEATURES, N_ACTIONS = 12, 3


class RandomSparse:
    """A fixed set of states, each with a few active features of random positive value."""

    n_features = N_FEATURES

    def __init__(self, rng: np.random.Generator, n_states: int = 7, active: int = 4):
        self.states = []
        for _ in range(n_states):
            idx = np.sort(rng.choice(N_FEATURES, active, replace=False)).astype(np.int64)
            self.states.append(Phi(idx, rng.uniform(0.3, 1.7, active)))

    def __call__(self, obs) -> Phi:
        return self.states[int(obs)]


def dense(x: Phi) -> np.ndarray:
    f = np.zeros(N_FEATURES)
    f[x.idx] = x.val
    return f


class DenseTD:
    def __init__(self, method, lr, gamma, lam, q_init=0.0, cutoff=1e-3):
        self.method, self.lr, self.gamma, self.lam, self.q_init, self.cutoff = (
            method, lr, gamma, lam, q_init, cutoff,
        )  # fmt: skip
        self.W = np.zeros((N_ACTIONS, N_FEATURES))
        self.E = np.zeros((N_ACTIONS, N_FEATURES))
        self.cuts = self.keeps = 0

    def q(self, x: Phi) -> np.ndarray:
        return self.W @ dense(x) + self.q_init

    def update(self, x, a, r, x2, a2, terminated, offset=0.0, offset_next=None):
        f = dense(x)
        target = r
        if not terminated:
            qn = self.q(x2) + (0.0 if offset_next is None else offset_next)
            if a2 is None or self.method == "qlearning":
                target += self.gamma * qn.max()
            else:
                target += self.gamma * qn[a2]
        delta = target - (self.W[a] @ f + self.q_init + offset)
        self.E[a, f != 0] = f[f != 0]
        self.W += self.lr * delta / (f @ f) * self.E
        if terminated or a2 is None:
            self.E[:] = 0.0
        elif self.method == "qlearning" and qn[a2] < qn.max():
            self.E[:] = 0.0
            self.cuts += 1
        else:
            self.E *= self.gamma * self.lam
            self.E[self.E <= self.cutoff] = 0.0
            self.keeps += 1
        return delta


def check(td: LinearTD, ref: DenseTD, got_delta=None, want_delta=None):
    np.testing.assert_allclose(td.w, ref.W, rtol=1e-12, atol=1e-13)
    if got_delta is not None:
        assert got_delta == pytest.approx(want_delta, rel=1e-12, abs=1e-13)


def episodes(rng: np.random.Generator, n_steps: int, n_states: int):
    """Chained transitions (s' and a' of one are s and a of the next), episodes ending by termination or
    truncation at random."""
    s, a = int(rng.integers(n_states)), int(rng.integers(N_ACTIONS))
    for _ in range(n_steps):
        s2, r = int(rng.integers(n_states)), float(rng.normal())
        end = rng.random() < 0.15
        terminal = end and rng.random() < 0.5
        a2 = None if end else int(rng.integers(N_ACTIONS))
        yield s, a, r, s2, a2, terminal
        if end:
            s, a = int(rng.integers(n_states)), int(rng.integers(N_ACTIONS))
        else:
            s, a = s2, a2


@pytest.mark.parametrize("method", ["sarsa", "qlearning"])
@pytest.mark.parametrize(
    "lr, gamma, lam, q_init, cutoff",
    [
        (0.3, 0.9, 0.8, 0.0, 1e-3),
        (0.5, 1.0, 0.9, 0.0, 0.0),
        (0.2, 0.7, 0.5, 2.5, 1e-3),
        (0.4, 0.95, 0.0, -1.0, 1e-3),  # λ = 0: one-step TD
    ],
)
def test_updates_match_the_dense_reference(method, lr, gamma, lam, q_init, cutoff):
    rng = np.random.default_rng([len(method), int(lr * 10), int(lam * 10)])
    features = RandomSparse(rng)
    td = LinearTD(
        features, N_ACTIONS, method, lr=lr, gamma=gamma, lam=lam, q_init=q_init, trace_cutoff=cutoff
    )
    ref = DenseTD(method, lr, gamma, lam, q_init, cutoff)
    for s, a, r, s2, a2, term in episodes(rng, 250, len(features.states)):
        x, x2 = features(s), features(s2)
        td.values(x2)  # the loop asks for Q(s') while acting: the cached answer must not go stale
        delta = td.update(x, a, r, x2, a2, term)
        check(td, ref, delta, ref.update(x, a, r, x2, a2, term))
        np.testing.assert_allclose(td.values(x2), ref.q(x2), rtol=1e-12, atol=1e-13)
    if method == "qlearning" and lam > 0:
        assert ref.cuts > 20 and ref.keeps > 20  # both branches of Watkins's rule were exercised


@pytest.mark.parametrize("method", ["sarsa", "qlearning"])
def test_updates_with_blend_offsets_match_the_reference(method):
    """Q augmentation / Ĥ-as-a-feature pass offsets added to Q(s, a) and Q(s', ·): they enter δ, the
    bootstrap, and (Watkins) the decision whether a' was greedy."""
    rng = np.random.default_rng(7)
    features = RandomSparse(rng)
    td = LinearTD(features, N_ACTIONS, method, lr=0.3, gamma=0.9, lam=0.8, q_init=0.5)
    ref = DenseTD(method, 0.3, 0.9, 0.8, 0.5)
    for s, a, r, s2, a2, term in episodes(rng, 250, len(features.states)):
        x, x2 = features(s), features(s2)
        offset, offset_next = float(rng.normal()), rng.normal(size=N_ACTIONS) * 2
        delta = td.update(x, a, r, x2, a2, term, offset, offset_next)
        check(td, ref, delta, ref.update(x, a, r, x2, a2, term, offset, offset_next))


# ----------------------------------------------------------------------- small hand-made transitions


def two_states():
    """s0 and s1 share no feature; values are not 1 so ||φ||² = 4 + 0.25 = 4.25 for s0."""
    s0 = Phi(np.array([0, 1]), np.array([2.0, 0.5]))
    s1 = Phi(np.array([2, 3]), np.array([1.0, 1.5]))
    s2 = Phi(np.array([4]), np.array([1.0]))
    return s0, s1, s2


def learner(method="sarsa", **kw):
    kw = {"lr": 0.5, "gamma": 0.9, "lam": 0.8, **kw}
    return LinearTD(RandomSparse(np.random.default_rng(0)), N_ACTIONS, method, **kw)


def set_q(td: LinearTD, x: Phi, q) -> None:
    """Weights making Q(x, ·) = q (on x's first feature)."""
    td.w[:, x.idx[0]] = (np.asarray(q, dtype=float) - td.q_init) / x.val[0]
    td.invalidate()


@pytest.mark.parametrize("method", ["sarsa", "qlearning"])
def test_one_step_moves_q_by_lr_times_delta(method):
    """With no earlier trace, Q(s, a) moves by exactly lr·δ whatever ||φ|| is (the normalised step)."""
    s0, s1, _ = two_states()
    td = learner(method, lr=0.5)
    set_q(td, s1, [1.0, 3.0, 2.0])
    delta = td.update(s0, 1, 1.0, s1, 2, False)
    want = 1.0 + 0.9 * (2.0 if method == "sarsa" else 3.0)
    assert delta == pytest.approx(want)
    assert td.values(s0)[1] == pytest.approx(0.5 * want)
    assert td.values(s0)[[0, 2]].tolist() == [0.0, 0.0]
    np.testing.assert_allclose(td.w[1, [0, 1]], 0.5 * want / 4.25 * np.array([2.0, 0.5]))


@pytest.mark.parametrize("method", ["sarsa", "qlearning"])
def test_terminal_does_not_bootstrap_but_truncation_does(method):
    s0, s1, _ = two_states()
    for terminated, want in ((True, 1.0), (False, 1.0 + 0.9 * 3.0)):
        td = learner(method)
        set_q(td, s1, [1.0, 3.0, 2.0])
        # the episode ended (no next action); only a real termination cuts the return
        assert td.update(s0, 0, 1.0, s1, None, terminated) == pytest.approx(want)
        assert td.values(s0)[0] == pytest.approx(0.5 * want)
        # either way the episode is over: the next update moves only its own state's weights
        before = td.w.copy()
        td.update(s1, 0, 5.0, s0, 0, False)
        changed = np.nonzero((td.w != before).any(axis=0))[0]
        assert changed.tolist() == [2, 3]


def test_terminal_bootstrap_ignores_next_state_values_and_offsets():
    s0, s1, _ = two_states()
    td = learner("sarsa", q_init=3.0)
    set_q(td, s1, [10.0, 10.0, 10.0])
    delta = td.update(s0, 0, -1.0, s1, None, True, offset=0.5, offset_next=np.array([7.0, 7.0, 7.0]))
    assert delta == pytest.approx(-1.0 - 3.0 - 0.5)


def test_sarsa_follows_the_action_taken_q_learning_the_greedy_one():
    s0, s1, _ = two_states()
    for method, want in (("sarsa", 0.9 * 1.0), ("qlearning", 0.9 * 3.0)):
        td = learner(method)
        set_q(td, s1, [1.0, 3.0, 2.0])
        assert td.update(s0, 0, 0.0, s1, 0, False) == pytest.approx(want)


@pytest.mark.parametrize("next_action, cut", [(1, False), (0, True)])
def test_watkins_cuts_traces_after_an_exploratory_action(next_action, cut):
    """(s0, a=2) -> s1 where action 1 is greedy. After a greedy a' the next TD error still reaches s0
    through its trace (decayed by γλ); after an exploratory a' Watkins's Q(λ) cuts it, Sarsa(λ) never does."""
    s0, s1, s2 = two_states()
    for method in ("sarsa", "qlearning"):
        td = learner(method, lr=0.5, gamma=0.9, lam=0.8)
        set_q(td, s1, [1.0, 3.0, 2.0])
        td.update(s0, 2, 0.0, s1, next_action, False)
        w_s0 = td.w[2, [0, 1]].copy()
        delta = td.update(s1, next_action, 4.0, s2, None, True)
        moved = td.w[2, [0, 1]] - w_s0
        if method == "qlearning" and cut:
            assert np.all(moved == 0.0)
        else:
            # the trace of s0's features is γλ·φ(s0); the step is lr·δ/||φ(s1)||² (s1's norm: 1 + 2.25)
            np.testing.assert_allclose(moved, 0.5 * delta / 3.25 * 0.9 * 0.8 * np.array([2.0, 0.5]))


def test_watkins_decides_greediness_on_q_plus_offset():
    s0, s1, s2 = two_states()
    td = learner("qlearning")
    set_q(td, s1, [1.0, 3.0, 2.0])
    # with offsets action 0 is greedy in s1 (1 + 5 > 3): no cut, the bootstrap is 6
    assert td.update(s0, 2, 0.0, s1, 0, False, offset_next=np.array([5.0, 0.0, 0.0])) == pytest.approx(5.4)
    w_s0 = td.w[2, [0, 1]].copy()
    td.update(s1, 0, 5.0, s2, None, True)  # δ = 5 − Q(s1, 0) = 4 reaches s0 through its trace
    assert np.all(td.w[2, [0, 1]] != w_s0)


def test_gamma_and_lambda_scale_the_trace():
    """Two steps: the second TD error reaches the first state's weights scaled by exactly γλ."""
    s0, s1, s2 = two_states()
    for gamma, lam in ((1.0, 1.0), (0.5, 1.0), (1.0, 0.5), (0.6, 0.3)):
        td = learner("sarsa", lr=0.4, gamma=gamma, lam=lam, trace_cutoff=0.0)
        td.update(s0, 0, 0.0, s1, 0, False)  # all zero: δ = 0, only the trace is laid down
        assert np.all(td.w == 0.0)
        delta = td.update(s1, 0, 1.0, s2, None, True)
        assert delta == 1.0
        np.testing.assert_allclose(td.w[0, [0, 1]], 0.4 / 3.25 * gamma * lam * np.array([2.0, 0.5]))
        np.testing.assert_allclose(td.w[0, [2, 3]], 0.4 / 3.25 * np.array([1.0, 1.5]))


def test_traces_below_the_cutoff_are_dropped():
    s0, s1, s2 = two_states()
    td = learner("sarsa", lr=0.4, gamma=1.0, lam=0.1, trace_cutoff=0.15)
    td.update(s0, 0, 0.0, s1, 0, False)  # traces of s0 become 0.2 and 0.05: the second falls below 0.15
    td.update(s1, 0, 1.0, s2, None, True)
    assert td.w[0, 0] == pytest.approx(0.4 / 3.25 * 0.2) and td.w[0, 1] == 0.0


def test_replacing_traces_do_not_accumulate():
    """Visiting the same (s, a) twice sets its trace back to φ(s), it does not add φ(s) + γλφ(s)."""
    s0, _, s2 = two_states()
    td = learner("sarsa", lr=0.5, gamma=1.0, lam=1.0, trace_cutoff=0.0)
    td.update(s0, 0, 0.0, s0, 0, False)
    td.update(s0, 0, 1.0, s2, None, True)
    # from zero weights the first δ is 0; the second step is lr·δ·φ/||φ||² with δ = 1
    np.testing.assert_allclose(td.w[0, [0, 1]], 0.5 / 4.25 * np.array([2.0, 0.5]))


def test_q_init_is_added_to_every_value():
    s0, s1, _ = two_states()
    td = learner("sarsa", q_init=2.0, gamma=0.5)
    assert td.values(s0).tolist() == [2.0, 2.0, 2.0]
    # δ = r + γ·q_init − q_init: with γ < 1 the optimistic initial value shows in the TD error
    assert td.update(s0, 0, 0.0, s1, 1, False) == pytest.approx(0.5 * 2.0 - 2.0)
    assert td.values(s0)[0] == pytest.approx(2.0 + 0.5 * (-1.0))


def test_end_episode_clears_traces_and_steps_epsilon():
    s0, s1, s2 = two_states()
    td = learner("sarsa", epsilon=EpsilonSchedule(0.4, 0.5, 0.06))
    td.update(s0, 0, 0.0, s1, 0, False)  # a trace on s0, episode not over
    assert td.epsilon == 0.4
    td.end_episode()
    assert td.epsilon == pytest.approx(0.2)
    td.update(s1, 0, 1.0, s2, None, True)
    assert np.all(td.w[:, [0, 1]] == 0.0) and np.all(td.w[0, [2, 3]] != 0.0)


def test_epsilon_schedule_decays_per_episode_to_its_minimum():
    td = learner("sarsa", epsilon=EpsilonSchedule(0.5, 0.5, 0.1))
    seen = [td.epsilon]
    for _ in range(4):
        td.end_episode()
        seen.append(td.epsilon)
    assert seen == pytest.approx([0.5, 0.25, 0.125, 0.1, 0.1])
    other = learner("sarsa", epsilon=EpsilonSchedule(0.5, 0.5, 0.0))
    other.load_state_dict(td.state_dict())  # a resumed run continues the schedule where it was
    assert other.epsilon == pytest.approx(0.5 * 0.5**4)
    assert learner("sarsa").epsilon == 0.0


def test_epsilon_greedy_explores_at_rate_epsilon():
    rng = np.random.default_rng(0)
    q = np.array([0.0, 1.0, 0.5])
    assert {epsilon_greedy(q, 0.0, rng) for _ in range(200)} == {1}
    picks = np.array([epsilon_greedy(q, 0.3, rng) for _ in range(6000)])
    # greedy with probability 1 − ε + ε/3, each other action ε/3
    assert np.mean(picks == 0) == pytest.approx(0.1, abs=0.015)
    assert np.mean(picks == 1) == pytest.approx(0.8, abs=0.02)


@pytest.mark.parametrize("method", ["sarsa", "qlearning"])
def test_termination_ends_the_episode_even_when_a_next_action_is_passed(method):
    """A blend may hand over a' together with terminated=True: no bootstrap, and the traces are cleared
    (Q(λ) used to crash here, reading Q(s') that a terminal never computes)."""
    s0, s1, s2 = two_states()
    td = learner(method)
    set_q(td, s1, [1.0, 3.0, 2.0])
    assert td.update(s0, 0, 1.0, s1, 0, True) == pytest.approx(1.0)
    before = td.w.copy()
    td.update(s1, 0, 5.0, s2, None, True)
    assert np.all(td.w[:, [0, 1]] == before[:, [0, 1]])
