"""The reward model r̂ learned from rankings (tamer.reward_model): the Bradley–Terry loss and the all-pairs
batching by hand, recovering a known reward, ensembles, normalisation, save/load, replay, determinism."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from tamer.deep import configure_torch, dumps, loads
from tamer.envs import make_env
from tamer.errors import ConfigError
from tamer.features import RBF, OneHot
from tamer.rankings import (
    Query,
    RankedQuery,
    Ranking,
    RankingLog,
    Segment,
    SimulatedRanker,
    collect_attempts,
    make_ranker,
    parse_order,
    read_rankings,
)
from tamer.reward_model import RewardModel, bradley_terry_loss, ranking_batch

configure_torch(1)  # tiny nets: a second thread only adds synchronisation (and the CI box has 2 cores)

SPACE = gym.spaces.Box(-1.0, 1.0, (2,))
FEATURES = RBF(SPACE.low, SPACE.high, centers=4)
W_TRUE = np.random.default_rng(123).normal(size=(2, FEATURES.n_features))


def true_reward(obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
    return np.array([W_TRUE[a, FEATURES(o).idx] @ FEATURES(o).val for o, a in zip(obs, actions, strict=True)])


def random_steps(rng, n: int, scale: float = 1.0, shift: float = 0.0):
    obs = rng.uniform(-1.0, 1.0, (n, 2))
    return (obs * scale + shift).astype(np.float32), rng.integers(2, size=n), obs


def linear_data(n: int, seed: int = 0, k: int = 3, length: int = 10, scale=1.0, shift=0.0, **knobs):
    """``n`` queries of ``k`` random segments ranked by their return under the known linear reward (the
    observations given to the model are ``scale``·s + ``shift``, the reward reads s)."""
    rng, ranker, data = np.random.default_rng(seed), SimulatedRanker(**knobs), []
    for i in range(n):
        segments = []
        for _ in range(k):
            obs, actions, raw = random_steps(rng, length, scale, shift)
            segments.append(Segment(obs, actions, true_reward(raw, actions)))
        q = Query(i, tuple(segments))
        data.append(RankedQuery(q, ranker(q, rng)))
    return data


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Rank correlation (no ties in continuous data): Pearson's r of the ranks."""
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    return float(np.corrcoef(rx, ry)[0, 1])


def held_out_correlation(model: RewardModel, scale=1.0, shift=0.0) -> float:
    obs, actions, raw = random_steps(np.random.default_rng(99), 400, scale, shift)
    return spearman(model(obs, actions), true_reward(raw, actions))


# --------------------------------------------------------------------------------------------------- loss


def test_all_pairs_of_each_ranking_in_one_batch():
    batch = ranking_batch([Ranking(0, parse_order("0>2>1")), Ranking(1, parse_order("1=0"))], [3, 2])
    assert batch.better.tolist() == [0, 0, 2, 3] and batch.worse.tolist() == [2, 1, 1, 4]
    assert batch.target.tolist() == [1.0, 1.0, 1.0, 0.5]
    assert batch.weight.tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 1.0])  # each ranking weighs one


def test_bradley_terry_loss_by_hand():
    b = ranking_batch([Ranking(0, parse_order("0>2>1"))], [3])
    returns = torch.tensor([2.0, 0.0, 1.0])
    args = [torch.from_numpy(v) for v in b]
    # pairs (0,2), (0,1), (2,1): differences 1, 2, 1
    by_hand = (2 * math.log1p(math.exp(-1)) + math.log1p(math.exp(-2))) / 3
    assert bradley_terry_loss(returns, *args).item() == pytest.approx(by_hand, rel=1e-6)
    # two rankings: the mean of each ranking's mean; a tie costs -log σ(Δ)/2 - log σ(-Δ)/2
    b2 = ranking_batch([Ranking(0, parse_order("0>2>1")), Ranking(1, parse_order("0=1"))], [3, 2])
    returns2 = torch.tensor([2.0, 0.0, 1.0, 1.0, 0.0])
    tie = 0.5 * math.log1p(math.exp(-1)) + 0.5 * math.log1p(math.exp(1))
    loss2 = bradley_terry_loss(returns2, *[torch.from_numpy(v) for v in b2]).item()
    assert loss2 == pytest.approx((by_hand + tie) / 2, rel=1e-6)
    # Christiano's 10% random answers: P = 0.9 σ(Δ) + 0.05, which bounds the loss of a reversed pair
    eps = 0.1
    sig = lambda d: 1 / (1 + math.exp(-d))  # noqa: E731
    mixed = -sum(math.log(0.9 * sig(d) + 0.05) for d in (1, 2, 1)) / 3
    assert bradley_terry_loss(returns, *args, random_answer=eps).item() == pytest.approx(mixed, rel=1e-6)
    one_pair = torch.tensor([-100.0, 0.0]), torch.tensor([0]), torch.tensor([1]), torch.tensor([1.0])
    assert bradley_terry_loss(*one_pair).item() == pytest.approx(100.0, rel=1e-3)  # a confident mistake
    assert bradley_terry_loss(*one_pair, random_answer=eps).item() == pytest.approx(
        -math.log(eps / 2), rel=1e-4
    )


def test_loss_gradient_of_a_linear_model_by_hand():
    """r̂(s, a) = w[a·3 + s] over one-hot states: R_i = w·c_i for the (state, action) counts c_i of segment
    i, and dL/dw = Σ_p (w_p / Σw) (σ(R_b − R_w) − t_p) (c_b − c_w)."""
    model = RewardModel(gym.spaces.Discrete(3), 2, "linear", features=OneHot(3), val_fraction=0.0)
    w = np.array([0.3, -0.2, 0.5, 0.1, 0.0, -0.4])
    with torch.no_grad():
        model.members[0].table.weight.copy_(torch.tensor(w, dtype=torch.float32)[:, None])
    segs = [([0, 1], [1, 0]), ([2, 2, 0], [0, 1, 1]), ([1], [1])]  # (states, actions)
    counts = np.zeros((3, 6))
    for i, (s, a) in enumerate(segs):
        np.add.at(counts[i], np.array(a) * 3 + np.array(s), 1.0)
    q = Query(0, tuple(Segment(np.array(s), np.array(a), np.zeros(len(s))) for s, a in segs))
    ranking = Ranking(0, parse_order("2>0=1"))
    loss = model.loss([RankedQuery(q, ranking)])
    loss.backward()
    returns = counts @ w
    grad = np.zeros(6)
    for b, v, t in ranking.pairs():
        sigma = 1 / (1 + math.exp(-(returns[b] - returns[v])))
        grad += (sigma - t) * (counts[b] - counts[v]) / 3
    assert loss.item() == pytest.approx(
        np.mean(
            [
                -t * math.log(1 / (1 + math.exp(-(returns[b] - returns[v]))))
                - (1 - t) * math.log(1 / (1 + math.exp(returns[b] - returns[v])))
                for b, v, t in ranking.pairs()
            ]
        ),
        rel=1e-5,
    )
    assert model.members[0].table.weight.grad[:, 0].numpy() == pytest.approx(grad, abs=1e-6)


# ------------------------------------------------------------------------------------------------ learning


def test_linear_model_recovers_a_known_linear_reward():
    data = linear_data(200)
    model = RewardModel(SPACE, 2, "linear", features=FEATURES, epochs=10, seed=0)
    report = model.fit(data)
    assert held_out_correlation(model) >= 0.95
    assert report["val_pairs"] > 0 and report["val_accuracy"] >= 0.85 and model.history == [report]
    assert report["rankings"] + report["val_rankings"] == 200 and report["pairs"] == 3 * report["rankings"]


def test_mlp_normalises_inputs_and_outputs():
    """Observations on a scale of 100 around 50: the running statistics bring them back to unit scale."""
    data = linear_data(120, seed=1, scale=100.0, shift=50.0)
    model = RewardModel(SPACE, 2, "mlp", hidden=(32, 32), epochs=8, seed=0, norm_states=500)
    first = model.fit(data[:60])
    model.fit(data)  # a second round: only the new queries are folded into the statistics
    all_obs = np.concatenate([s.obs for d in data for s in d.query.attempts]).astype(np.float64)
    assert model.obs_stats.count == len(all_obs)
    assert model.obs_stats.mean == pytest.approx(all_obs.mean(axis=0), rel=1e-6)
    assert model.obs_stats.var == pytest.approx(all_obs.var(axis=0), rel=1e-6)
    assert len(model.history) == 2 and model.history[0] == first
    assert held_out_correlation(model, 100.0, 50.0) >= 0.9
    # r̂ is centred and scaled over the most recent 500 steps of the data (calibrated after each round)
    recent = [s for d in data[::-1] for s in d.query.attempts[::-1]][:50]
    r = model(np.concatenate([s.obs for s in recent]), np.concatenate([s.actions for s in recent]))
    assert abs(r.mean()) < 1e-6 and r.std() == pytest.approx(1.0, rel=1e-6)
    obs, actions, _ = random_steps(np.random.default_rng(5), 64, 100.0, 50.0)
    model.calibrate(obs, actions)  # PPO's own states
    assert abs(model(obs, actions).mean()) < 1e-6 and model(obs, actions).std() == pytest.approx(1.0)


def test_ensemble_members_bootstrap_and_choose_queries():
    data = linear_data(60, seed=2)
    model = RewardModel(SPACE, 2, "linear", features=FEATURES, members=3, epochs=3, seed=0)
    model.fit(data)
    segments = [s for d in data[:4] for s in d.query.attempts]
    returns = model.member_returns(segments)
    assert returns.shape == (3, 12) and not np.allclose(returns[0], returns[1])  # different resamples
    mean = model(np.concatenate([s.obs for s in segments]), np.concatenate([s.actions for s in segments]))
    assert mean.shape == (120,)
    env = make_env("MountainCar-v0")  # any 2-d Box env serves the selection's mechanics
    rng = np.random.default_rng(0)
    q = collect_attempts(env, lambda o: int(rng.integers(2)), 2, rng, length=5, candidates=6, model=model)
    assert len(q.attempts) == 2


def test_cnn_reward_model_on_pixels():
    env = make_env("tamer/GridWorldPixels-v0")
    rng = np.random.default_rng(3)
    ranker = make_ranker("oracle", env)
    data = []
    for i in range(4):
        q = collect_attempts(env, lambda o: int(rng.integers(4)), 3, rng, query_id=i, length=6)
        data.append(RankedQuery(q, ranker(q, rng)))
    model = RewardModel(env.observation_space, 4, "cnn", hidden=(16,), epochs=1, val_fraction=0.0, seed=0)
    report = model.fit(data)
    assert math.isfinite(report["loss"]) and math.isnan(report["val_accuracy"])
    obs = np.stack([s.obs[0] for s in data[0].query.attempts])
    assert model(obs, np.array([0, 1, 2])).shape == (3,)
    with pytest.raises(ConfigError):
        RewardModel(SPACE, 2, "cnn")
    with pytest.raises(ConfigError):
        RewardModel(SPACE, 2, "transformer")


def test_skipped_queries_are_not_learned_from():
    data = linear_data(3, skip_below=math.inf)  # every query skipped
    assert all(d.ranking.skipped for d in data)
    with pytest.raises(ConfigError):
        RewardModel(SPACE, 2, "linear", features=FEATURES).fit(data)
    mixed = data + linear_data(5, seed=4)
    report = RewardModel(SPACE, 2, "linear", features=FEATURES, val_fraction=0.0, epochs=1).fit(mixed)
    assert report["skipped"] == 3 and report["rankings"] == 5


# ------------------------------------------------------------------------------------ determinism, replay


def same_state(a: RewardModel, b: RewardModel) -> bool:
    for ma, mb in zip(a.members, b.members, strict=True):
        sa, sb = ma.state_dict(), mb.state_dict()
        if sa.keys() != sb.keys() or not all(torch.equal(sa[k], sb[k]) for k in sa):
            return False
    return (a.offset, a.scale, a.history) == (b.offset, b.scale, b.history)


def mlp(seed: int = 0) -> RewardModel:
    return RewardModel(SPACE, 2, "mlp", hidden=(16,), members=2, epochs=2, seed=seed)


def test_same_seed_same_model_and_save_load_continues_exactly():
    data = linear_data(30, seed=5)
    a, b, c = mlp(), mlp(), mlp(seed=1)
    a.fit(data)
    b.fit(data)
    c.fit(data)
    assert same_state(a, b) and not same_state(a, c)
    restored = mlp(seed=7)
    restored.load_state_dict(loads(dumps(a.state_dict())))
    assert same_state(restored, a)
    more = linear_data(10, seed=6)
    a.fit(data + more)
    restored.fit(data + more)  # Adam's moments, generators and statistics came back too
    assert same_state(restored, a)
    with pytest.raises(ConfigError):
        RewardModel(SPACE, 2, "mlp", hidden=(16,), members=3).load_state_dict(a.state_dict())


def test_a_replayed_log_retrains_the_identical_model(tmp_path):
    data = linear_data(25, seed=7, tie_margin=0.3, error_rate=0.1)
    with RankingLog(tmp_path) as log:
        for d in data:
            log.record(d.query, d.ranking)
    replayed = read_rankings(tmp_path)
    assert [d.ranking.order for d in replayed] == [d.ranking.order for d in data]
    a, b = mlp(), mlp()
    a.fit(data)
    b.fit(replayed)
    assert same_state(a, b)
