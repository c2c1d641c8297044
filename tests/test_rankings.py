"""Attempts, simulated rankers and their knobs, recorded rankings (tamer.rankings).

Knob frequencies are checked over thousands of seeded draws against binomial tolerances (4.5 standard errors;
the seeds are fixed, so the tests are deterministic)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tamer.envs import make_env
from tamer.errors import ConfigError
from tamer.oracles import make_oracle, oracle_action
from tamer.rankings import (
    OracleAgreement,
    Query,
    Ranking,
    RankingLog,
    RecordedRanker,
    Segment,
    SimulatedRanker,
    TimeCost,
    collect_attempts,
    disagreement,
    make_ranker,
    myopic_weights,
    parse_order,
    read_rankings,
    select_attempts,
    tie_groups,
    true_return,
)

N = 4000


def binomial_close(k: int, n: int, p: float) -> None:
    tol = 4.5 * math.sqrt(p * (1 - p) / n)
    assert abs(k / n - p) <= tol, f"{k}/{n} = {k / n:.4f}, expected {p} ± {tol:.4f}"


def segment(rewards, obs=None, actions=None) -> Segment:
    rewards = np.asarray(rewards, dtype=np.float64)
    t = len(rewards)
    obs = np.zeros((t, 2), np.float32) if obs is None else np.asarray(obs)
    actions = np.zeros(t, np.int64) if actions is None else np.asarray(actions, np.int64)
    return Segment(obs, actions, rewards)


def query_of_returns(*returns, qid: int = 0) -> Query:
    """A query whose attempt i has one step with reward returns[i]."""
    return Query(qid, tuple(segment([r]) for r in returns))


# ----------------------------------------------------------------------------------------------- rankings


def test_pairs_of_a_ranking_of_three_in_order():
    r = Ranking(0, parse_order("0>2>1"))
    assert r.pairs() == [(0, 2, 1.0), (0, 1, 1.0), (2, 1, 1.0)]
    tied = Ranking(0, parse_order("3>0=2>1"))
    assert tied.order == ((3,), (0, 2), (1,)) and tied.text() == "3>0=2>1"
    assert len(tied.pairs()) == 6 and (0, 2, 0.5) in tied.pairs() and (3, 1, 1.0) in tied.pairs()
    assert parse_order("") == () and Ranking(0, (), True).pairs() == []
    with pytest.raises(ValueError):
        parse_order("0>0")


# ----------------------------------------------------------------------------------------------- attempts


def test_shared_start_attempts_start_alike_and_differ_after():
    env = make_env("MountainCar-v0")
    rng = np.random.default_rng(0)
    q = collect_attempts(env, lambda o: int(rng.integers(3)), 3, rng, query_id=7, length=15)
    assert q.id == 7 and q.seed >= 0 and q.lengths == [15, 15, 15]
    assert all(np.array_equal(s.obs[0], q.attempts[0].obs[0]) for s in q.attempts)
    assert not np.array_equal(q.attempts[0].actions, q.attempts[1].actions)
    # a shared mid-episode start: the prefix is replayed, the attempts are the steps after it
    p = collect_attempts(env, lambda o: int(rng.integers(3)), 3, rng, length=5, prefix=20, seed=3)
    first_obs = [s.obs[0] for s in p.attempts]
    assert all(np.array_equal(o, first_obs[0]) for o in first_obs)
    assert not np.array_equal(first_obs[0], env.reset(seed=3)[0])  # not the reset state: 20 steps on
    # a deterministic policy needs epsilon to make different attempts
    greedy = collect_attempts(env, lambda o: 2, 2, rng, length=10, epsilon=0.5)
    assert not np.array_equal(greedy.attempts[0].actions, greedy.attempts[1].actions)


def test_own_state_attempts_and_whole_episodes():
    env = make_env("MountainCar-v0", max_steps=30)
    rng = np.random.default_rng(1)
    own = collect_attempts(env, lambda o: int(rng.integers(3)), 3, rng, length=10, start="own")
    assert own.seed == -1 and own.lengths == [10, 10, 10]
    assert not np.array_equal(own.attempts[0].obs[0], own.attempts[1].obs[0])
    whole = collect_attempts(env, lambda o: 0, 2, rng)
    assert whole.lengths == [30, 30] and whole.attempts[0].env_return == -30.0
    rest = collect_attempts(env, lambda o: 0, 2, rng, prefix=5)  # the rest of the episode after 5 steps
    assert rest.lengths == [25, 25]
    with pytest.raises(ConfigError):
        collect_attempts(env, lambda o: 0, 1, rng)


class FakeEnsemble:
    """Members that agree on every segment except by the segment's first reward times the member index."""

    n_members = 3

    def member_returns(self, segments):
        spread = np.array([s.rewards[0] for s in segments])
        return np.stack([5.0 * m + m * spread for m in range(self.n_members)])  # offsets 5m are ignored


def test_selection_by_ensemble_disagreement():
    segments = [segment([v]) for v in (0.0, 3.0, -1.0, 0.5, 2.0)]
    spread = disagreement(FakeEnsemble(), segments)
    assert np.argmax(spread) == 1 and np.argmin(spread) == 3  # centred: far from the mean spreads most
    assert select_attempts(segments, 2, np.random.default_rng(0), FakeEnsemble()).tolist() == [1, 2]
    chosen = select_attempts(segments, 3, np.random.default_rng(0))  # no model: at random
    assert len(set(chosen.tolist())) == 3


# ----------------------------------------------------------------------------------------------- rankers


@pytest.mark.parametrize("beta", [0.5, 2.0])
def test_rationality_orders_a_pair_with_bradley_terry_probability(beta):
    ranker, rng = SimulatedRanker(beta=beta), np.random.default_rng(2)
    q, delta = query_of_returns(1.0, 0.4), 0.6
    first = sum(ranker(q, rng).order[0] == (0,) for _ in range(N))
    binomial_close(first, N, 1 / (1 + math.exp(-beta * delta)))


def test_perfect_rationality_and_equal_values():
    rng = np.random.default_rng(3)
    assert all(
        SimulatedRanker()(query_of_returns(1, 3, 2), rng).order == ((1,), (2,), (0,)) for _ in range(20)
    )
    firsts = [SimulatedRanker()(query_of_returns(1, 1), rng).order[0] for _ in range(N)]
    binomial_close(firsts.count((0,)), N, 0.5)  # equal values, no margin: a fair coin, not index order


def test_error_rate_gives_a_random_ranking_that_often():
    rng = np.random.default_rng(4)
    ranker = SimulatedRanker(error_rate=0.3)
    wrong = sum(ranker(query_of_returns(0, 1, 2), rng).order != ((2,), (1,), (0,)) for _ in range(N))
    binomial_close(wrong, N, 0.3 * 5 / 6)  # a random ranking is right 1 time in 6


def test_ties_below_the_margin():
    assert [g.tolist() for g in tie_groups(np.array([0.0, 0.06, 1.0]), 0.1)] == [[0, 1], [2]]
    assert len(tie_groups(np.array([0.0, 0.08, 0.16, 1.0]), 0.1)) == 2  # chained: a~b, b~c
    rng = np.random.default_rng(5)
    r = SimulatedRanker(tie_margin=0.1)(query_of_returns(0.0, 0.06, 1.0), rng)
    assert r.order == ((2,), (0, 1)) and r.text() == "2>0=1"
    assert sorted(r.pairs()) == [(0, 1, 0.5), (2, 0, 1.0), (2, 1, 1.0)]


def test_skips_when_every_attempt_is_below_the_threshold():
    rng = np.random.default_rng(6)
    ranker = SimulatedRanker(skip_below=0.0, cost=TimeCost(base=2.0, per_attempt=0.0, step_rate=1.0))
    skipped = ranker(query_of_returns(-1.0, -2.0, qid=4), rng)
    assert skipped.skipped and skipped.order == () and skipped.query == 4 and skipped.seconds == 4.0
    assert not ranker(query_of_returns(-1.0, 0.5), rng).skipped


def test_myopia_weights_later_steps_more():
    assert myopic_weights(3, 0.5).tolist() == [0.25, 0.5, 1.0]
    early, late = segment([4.0, 0.0, 0.0]), segment([0.0, 0.0, 2.0])
    assert true_return(early) == 4.0 and true_return(early, 0.5) == 1.0 and true_return(late, 0.5) == 2.0
    q, rng = Query(0, (early, late)), np.random.default_rng(7)
    assert SimulatedRanker()(q, rng).order == ((0,), (1,))
    assert SimulatedRanker(gamma=0.5)(q, rng).order == ((1,), (0,))  # the myopic person remembers the end
    agree = OracleAgreement(lambda o: np.array([True, False]))
    seg = segment([0, 0, 0], actions=[1, 1, 0])
    assert agree(seg) == pytest.approx(1 / 3) and agree(seg, 0.5) == pytest.approx(1 / 1.75)


def test_time_cost_formula():
    assert TimeCost()([15, 15]) == pytest.approx(1.0 + 2 * 0.5 + 30 / 10.0)
    assert TimeCost(base=0.0, per_attempt=1.0, step_rate=5.0)([10, 20, 30]) == pytest.approx(3 + 12)


def test_oracle_ranker_prefers_the_oracles_own_actions_where_returns_tie():
    env = make_env("MountainCar-v0")
    oracle, rng = make_oracle("", env), np.random.default_rng(8)
    good = collect_attempts(env, lambda o: oracle_action(oracle(o)), 2, rng, length=20, seed=1)
    bad = collect_attempts(env, lambda o: 1, 2, rng, length=20, seed=1)  # "no push": never approved
    q = Query(0, (bad.attempts[0], good.attempts[0]))
    assert q.attempts[0].env_return == q.attempts[1].env_return == -20.0  # the true return cannot tell
    ranker = make_ranker("oracle", env)
    assert ranker.values(q).tolist() == [0.0, 1.0] and ranker(q, rng).order == ((1,), (0,))


def test_make_ranker_kinds(tmp_path, monkeypatch):
    (tmp_path / "my_values.py").write_text("def minus_length(segment):\n    return -float(len(segment))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    rng = np.random.default_rng(9)
    user = make_ranker("my_values:minus_length", beta=math.inf)
    q = Query(0, (segment([0.0] * 5), segment([0.0] * 2)))
    assert user(q, rng).order == ((1,), (0,))
    assert make_ranker("return", error_rate=0.1).error_rate == 0.1
    for bad in ("nope", "my_values:missing"):
        with pytest.raises(ConfigError):
            make_ranker(bad)
    with pytest.raises(ConfigError):
        SimulatedRanker(gamma=0.0)


# ---------------------------------------------------------------------------------------------- recording


def recorded_example(folder) -> list:
    rng = np.random.default_rng(10)
    q0 = Query(0, (segment([1.0, 2.0], obs=np.ones((2, 2), np.float32), actions=[1, 0]), segment([0.5])), 4)
    q1 = query_of_returns(0.0, 0.05, 3.0, qid=1)
    q2 = query_of_returns(-1.0, -2.0, qid=2)
    ranker = SimulatedRanker(tie_margin=0.1, skip_below=-0.5)
    with RankingLog(folder) as log:
        return [(q, log.record(q, ranker(q, rng))) for q in (q0, q1, q2)]


def test_recorded_rankings_round_trip(tmp_path):
    written = recorded_example(tmp_path)
    back = read_rankings(tmp_path)
    assert [b.ranking for b in back] == [r for _, r in written]
    assert back[1].ranking.text() == "2>0=1" and back[2].ranking.skipped
    assert back[2].ranking.time == pytest.approx(sum(r.seconds for _, r in written))  # the human clock
    for (q, _), b in zip(written, back, strict=True):
        assert b.query.id == q.id and b.query.seed == q.seed
        for s, t in zip(q.attempts, b.query.attempts, strict=True):
            assert np.array_equal(s.obs, t.obs) and np.array_equal(s.actions, t.actions)
            assert np.array_equal(s.rewards, t.rewards) and s.obs.dtype == t.obs.dtype
    replay = RecordedRanker([b.ranking for b in back])
    assert replay(written[1][0]) == written[1][1]


def test_a_torn_last_line_is_ignored_and_cut_before_appending(tmp_path):
    recorded_example(tmp_path)
    with open(tmp_path / "rankings.csv", "a") as f:
        f.write("12.5,3,1>")  # the writer died mid-line
    assert len(read_rankings(tmp_path)) == 3
    with RankingLog(tmp_path, append=True) as log:
        log.record(query_of_returns(2.0, 1.0, qid=3), Ranking(3, ((0,), (1,)), seconds=1.0))
    back = read_rankings(tmp_path)
    assert len(back) == 4 and back[3].ranking.order == ((0,), (1,))
    with open(tmp_path / "rankings.csv", "a") as f:
        f.write("x,y\n1,2,3,4,5\n")  # a complete bad line is an error, not silently dropped
    with pytest.raises(ConfigError):
        read_rankings(tmp_path)
