"""The per-step fast paths give the very numbers of the plain code they replace, bit for bit: tile coding in
plain Python, the linear models' values and updates in fewer numpy calls, credit by bisection, the
teacher's uniform draws taken in blocks, Sarsa(λ)'s trace bookkeeping."""

from __future__ import annotations

import numpy as np

from tamer.credit import CreditAssigner, GammaDelay, UniformDelay
from tamer.features import LinearValues, Phi, TileCoding, read_only
from tamer.feedback import SimulatedTeacher
from tamer.models import LinearModel
from tamer.rl import LinearTD


class Size:
    def __init__(self, n: int):
        self.n_features = n


def test_tile_coding_in_python_matches_numpy_everywhere():
    rng = np.random.default_rng(0)
    for dims, tilings, bins, offsets in (
        (2, 8, 8, "asymmetric"),
        (1, 4, 5, "uniform"),
        (4, 8, 4, "asymmetric"),
    ):
        low = rng.uniform(-2, 0, dims)
        tiles = TileCoding(low, low + rng.uniform(0.5, 3, dims), tilings, bins, offsets)
        obs = rng.uniform(low - 1, low + 4, (2000, dims))
        obs[::5] = low  # on the edges and corners of tiles
        with np.errstate(invalid="ignore"):  # numpy's own cast of NaN, which both paths then make
            for o in (*obs, *obs.astype(np.float32), np.full(dims, np.nan), np.full(dims, 1e300)):
                assert np.array_equal(tiles(o).idx, tiles._numpy(o).idx)


def test_linear_values_match_the_matrix_product():
    rng = np.random.default_rng(1)
    values = LinearValues()
    for _ in range(2000):
        w = rng.standard_normal((3, 50)) * 10.0 ** rng.uniform(-5, 5, (3, 50))
        idx = rng.integers(0, 50, int(rng.integers(1, 20)))
        val = rng.standard_normal(idx.size) if rng.random() < 0.5 else np.ones(idx.size)
        assert np.array_equal(values(w, Phi(idx, val)), w[:, idx] @ val)


def test_h_update_with_shared_values_matches_the_general_update():
    rng = np.random.default_rng(2)
    ones = read_only(np.ones(8))
    for shared in (ones, rng.standard_normal(8)):
        fast, plain = LinearModel(Size(60), 3, lr=0.3), LinearModel(Size(60), 3, lr=0.3)
        for _ in range(300):
            k = int(rng.integers(1, 10))
            idx = [rng.integers(0, 60, 8) for _ in range(k)]  # repeats across and within samples
            actions, credits = rng.integers(0, 3, k).tolist(), rng.uniform(0, 0.3, k).tolist()
            h = float(rng.choice([-1.0, 1.0])) if rng.random() < 0.8 else rng.standard_normal(k)
            fast.update([Phi(i, shared) for i in idx], actions, credits, h)
            plain.update(
                [Phi(i, shared.copy()) for i in idx], actions, credits, h
            )  # distinct arrays: general
            assert np.array_equal(fast.w, plain.w)


def test_credit_by_bisection_matches_a_scan_of_the_history():
    rng = np.random.default_rng(3)

    class PlainUniform(UniformDelay):  # not the class itself: assign calls its credit() as it used to
        pass

    class PlainGamma(GammaDelay):
        pass

    for fast_density, plain_density in (
        (UniformDelay(0.2, 0.8), PlainUniform(0.2, 0.8)),
        (GammaDelay(), PlainGamma()),
    ):
        for mode in ("delay", "immediate", "previous"):
            fast, plain = CreditAssigner(fast_density, mode=mode), CreditAssigner(plain_density, mode=mode)
            plain._ordered = False  # scans from the newest step, as before bisection
            for step in range(600):
                t0, t1 = step / 30.0, (step + 1) / 30.0
                fast.record(step, step % 3, t0, t1)
                plain.record(step, step % 3, t0, t1)
                if rng.random() < 0.5:
                    t = t1 - rng.uniform(-0.1, 4.0)
                    assert fast.assign(t) == plain.assign(t)
            assert fast.steps == plain.steps and fast.ignored == plain.ignored


def test_teacher_draws_in_blocks_the_numbers_it_drew_one_by_one():
    class OneByOne(UniformDelay):  # another class: the teacher draws one at a time, with rng.uniform
        def sample(self, rng):
            return rng.uniform(self.min_delay, self.max_delay)

    def oracle(obs):
        return np.array([obs > 0, obs <= 0])

    teachers = [
        SimulatedTeacher(oracle, delay, np.random.default_rng(4), prob=0.6, error_rate=0.1, fatigue=30.0)
        for delay in (UniformDelay(0.2, 0.8), OneByOne(0.2, 0.8))
    ]
    given = [[], []]
    for step in range(3000):
        for teacher, out in zip(teachers, given, strict=True):
            teacher.observe(np.sin(step), step % 2, step / 10, (step + 1) / 10, 0)
            out.extend(teacher.poll((step + 1) / 10))
    assert given[0] == given[1] and len(given[0]) > 200


def reference_sarsa_update(td: LinearTD, x, action, reward, x_next, action_next, terminated) -> float:
    """LinearTD.update as it was before its fast path (Sarsa and Q(λ), no offsets)."""
    idx, val = x.idx, x.val
    delta = reward - (td.w[action, idx] @ val + td.q_init)
    if not terminated and x_next is not None:
        q_next = td.w[:, x_next.idx] @ x_next.val + td.q_init
        greedy_next = q_next.max()
        delta += td.gamma * (
            greedy_next if td.method == "qlearning" or action_next is None else q_next[action_next]
        )
    flat = action * td.n + idx
    td.trace[flat] = val
    new = flat[~td.is_active[flat]]
    td.is_active[new] = True
    active = np.concatenate((td.active, new))
    td._w[active] += (td.lr * delta / (val @ val)) * td.trace[active]
    if action_next is None or terminated or (td.method == "qlearning" and q_next[action_next] < greedy_next):
        td.clear_traces(active)
    else:
        decayed = td.trace[active] * (td.gamma * td.lam)
        keep = decayed > td.trace_cutoff
        td.trace[active] = np.where(keep, decayed, 0.0)
        td.is_active[active[~keep]] = False
        td.active = active[keep]
    return float(delta)


def test_sarsa_and_q_lambda_updates_match_the_plain_update():
    rng = np.random.default_rng(5)
    ones = read_only(np.ones(4))
    for method in ("sarsa", "qlearning"):
        for values in ("ones", "other"):
            fast, plain = (LinearTD(Size(40), 3, method, lr=0.4, gamma=0.99, q_init=-1.0) for _ in range(2))

            def phi(values=values):
                val = ones if values == "ones" else rng.standard_normal(4)
                return Phi(rng.integers(0, 40, 4), val)

            x = phi()
            for _ in range(1500):
                x_next, action = phi(), int(rng.integers(3))
                action_next = None if rng.random() < 0.02 else int(rng.integers(3))
                fast.values(x_next)
                got = fast.update(x, action, -1.0, x_next, action_next, False)
                want = reference_sarsa_update(plain, x, action, -1.0, x_next, action_next, False)
                assert (
                    got == want
                    and np.array_equal(fast.w, plain.w)
                    and np.array_equal(fast.trace, plain.trace)
                )
                x = x_next


def test_h_update_row_offsets_memo_matches_the_general_update_when_emptied_and_with_narrow_ints():
    """The memo of action columns (emptied past 4096 action sequences) and int32 indices (widened before the
    columns are added) change nothing."""
    rng = np.random.default_rng(7)
    ones = read_only(np.ones(4))
    fast, plain = LinearModel(Size(40), 4, lr=0.5), LinearModel(Size(40), 4, lr=0.5)
    for _ in range(6000):  # far more distinct action sequences than the memo keeps
        k = int(rng.integers(1, 9))
        idx = [rng.integers(0, 40, 4).astype(np.int32 if rng.random() < 0.3 else np.int64) for _ in range(k)]
        actions, credits = rng.integers(0, 4, k).tolist(), rng.uniform(0, 0.3, k).tolist()
        h = 1.0 if rng.random() < 0.5 else -1.0
        fast.update([Phi(i, ones) for i in idx], actions, credits, h)
        plain.update([Phi(i.astype(np.int64), ones.copy()) for i in idx], actions, credits, h)  # general
        assert np.array_equal(fast.w, plain.w)
    assert 0 < len(fast._row_offsets) <= 4096
