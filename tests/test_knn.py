"""The k-nearest-neighbour Ĥ: hand-computed predictions, the sample ring, saving, and runs through the
framework."""

import gymnasium as gym
import numpy as np
import pytest

from tamer.config import Config
from tamer.errors import ConfigError
from tamer.knn import KNNModel, ObservationScaler
from tamer.session import build
from tamer.tetris import TetrisFeatures, TetrisPhi
from tamer.train import train


class Identity:
    """Observations are already points (2-d)."""

    dims = 2

    def __call__(self, obs):
        return np.asarray(obs, dtype=float)


def model(k=2, capacity=100, n_actions=2) -> KNNModel:
    return KNNModel(Identity(), n_actions, k=k, capacity=capacity)


def test_prediction_is_the_credit_weighted_mean_of_the_k_nearest_of_the_action():
    m = model(k=2)
    m.update(
        [np.array([0.0, 0.0]), np.array([1.0, 0.0]), np.array([5.0, 5.0])], [0, 0, 0], [1.0, 0.25, 1.0], 1.0
    )
    m.update([np.array([0.1, 0.0])], [0], [0.5], -1.0)
    m.update([np.array([0.0, 0.0])], [1], [1.0], -0.5)
    # action 0 at (0.2, 0): nearest two are (0.1, 0) [c 0.5, h -1] and (0, 0) [c 1, h 1]
    # -> (0.5·-1 + 1·1) / 1.5 = 1/3; action 1 has one sample: -0.5
    assert np.allclose(m.predict(np.array([0.2, 0.0])), [1 / 3, -0.5])
    # at (0.9, 0): (1, 0) [c 0.25, h 1] and (0.1, 0) [c 0.5, h -1] -> (0.25 - 0.5) / 0.75
    assert np.allclose(m.predict(np.array([0.9, 0.0]))[0], -1 / 3)


def test_no_samples_means_no_opinion_and_fewer_than_k_use_all():
    m = model(k=5)
    assert m.predict(np.zeros(2)).tolist() == [0.0, 0.0]
    m.update([np.zeros(2), np.ones(2)], [1, 1], [1.0, 3.0], [1.0, -1.0])  # one h per sample
    assert np.allclose(m.predict(np.zeros(2)), [0.0, (1 - 3) / 4])


def test_zero_credit_is_not_stored_and_the_ring_drops_the_oldest():
    m = model(k=1, capacity=2)
    m.update([np.zeros(2)], [0], [0.0], 1.0)
    assert m.size == 0
    for i, h in enumerate((1.0, -1.0, 0.5)):
        m.update([np.full(2, float(i))], [0], [1.0], h)
    assert m.size == 2
    assert m.predict(np.zeros(2))[0] == -1.0  # (0, 0) was overwritten; (1, 1) is now nearest
    state = m.state_dict()
    assert state["h"].tolist() == [-1.0, 0.5]  # oldest first
    copy = model(k=1, capacity=2)
    copy.load_state_dict(state)
    assert np.allclose(copy.predict(np.zeros(2)), m.predict(np.zeros(2)))
    copy.update([np.full(2, 9.0)], [0], [1.0], 0.25)  # after loading, the oldest goes first
    assert copy.state_dict()["h"].tolist() == [0.5, 0.25]
    with pytest.raises(ConfigError, match="kNN"):
        KNNModel(Identity(), 2, k=1, capacity=2).load_state_dict({**state, "points": np.zeros((2, 3))})


def test_afterstate_samples_are_shared_by_the_actions():
    m = KNNModel(TetrisFeatures(), 3, k=1, capacity=10, relative=False)
    after = np.zeros((3, 47))
    after[:, 0] = [0.0, 1.0, 2.0]
    x = TetrisPhi(np.arange(47), np.zeros(47), after, np.zeros(3), np.zeros(3, dtype=bool))
    m.update([x], [2], [1.0], 1.0)  # the afterstate of action 2 (feature 0 = 2) was good
    m.update([x], [0], [1.0], -1.0)  # that of action 0 (feature 0 = 0) bad
    # action 1's afterstate (feature 0 = 1) is as near both; action 2's is the good sample itself
    pred = m.predict(x)
    assert pred[0] == -1.0 and pred[2] == 1.0


def test_observations_are_scaled_by_the_bounds():
    scaler = ObservationScaler(gym.make("MountainCar-v0").observation_space, "MountainCar-v0")
    assert np.allclose(scaler(np.array([-1.2, 0.0])), [0.0, 0.5], atol=1e-6)
    assert np.allclose(scaler(np.array([0.6, 0.07])), [1.0, 1.0], atol=1e-6)
    one_hot = ObservationScaler(gym.spaces.Discrete(4, start=1))
    assert one_hot(3).tolist() == [0, 0, 1, 0]
    with pytest.raises(ConfigError, match="knn"):
        ObservationScaler(gym.spaces.Box(0, 1, (2, 2)))


def test_selectable_from_the_config_and_runs(tmp_path):
    s = build(Config(model="knn", knn_k=7, knn_capacity=50))
    assert isinstance(s.agent.h, KNNModel) and s.agent.h.k == 7 and s.agent.h.capacity == 50
    s.env.close()
    rows = train(Config(model="knn", episodes=2, max_steps=100), out=tmp_path / "run", progress=False)
    assert sum(r["feedback"] for r in rows) > 0
    from tamer.train import evaluate

    assert len(evaluate(tmp_path / "run", episodes=1)) == 1  # saved samples load back
    rows = train(Config(env="tamer/GridWorld-v0", model="knn", episodes=2), progress=False)
    assert len(rows) == 2
