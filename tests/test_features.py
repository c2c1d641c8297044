"""The defaults each built-in environment gets with nothing but --env: feature map, bounds, Ĥ model, pace.

Hand-checked values (no learning); ``experiments/defaults.py`` measures what they give.
"""

import math

import numpy as np
import pytest
from gymnasium.spaces import Box, Discrete

from tamer.config import Config
from tamer.envs import make_env
from tamer.errors import ConfigError
from tamer.features import (
    OneHot,
    SubsetTileCoding,
    TileCoding,
    default_features,
    default_model,
    make_features,
)
from tamer.session import step_rate


def defaults_for(env_id: str):
    """(feature map or None, model, steps per second) that a default config gives ``env_id``."""
    cfg = Config(env=env_id)
    env = make_env(env_id)
    try:
        space = env.observation_space
        model = default_model(space)
        features = make_features(space, env_id) if model == "linear" else None
        return features, model, step_rate(cfg, env)
    finally:
        env.close()


def test_mountain_car_keeps_full_tile_coding_8x8_with_8_tilings():
    features, model, rate = defaults_for("MountainCar-v0")
    assert type(features) is TileCoding and model == "linear" and rate == 10.0
    np.testing.assert_allclose(features.low, [-1.2, -0.07], rtol=1e-6)
    np.testing.assert_allclose(features.scale, [8 / 1.8, 8 / 0.14], rtol=1e-6)
    assert features.n_features == 8 * 9**2 and not features.hashed


def test_cartpole_full_tile_coding_space_bounds_known_velocities_and_a_slower_pace():
    features, model, rate = defaults_for("CartPole-v1")
    assert type(features) is TileCoding and model == "linear"
    # x and θ from the space (±4.8 m, ±0.419 rad = 24°), the unbounded velocities from DEFAULT_BOUNDS
    high = [4.8, 3.0, math.radians(24), 3.5]
    np.testing.assert_allclose(features.low, [-h for h in high], rtol=1e-6)
    np.testing.assert_allclose(features.scale, [8 / (2 * h) for h in high], rtol=1e-6)
    assert features.n_features == 8 * 9**4 and not features.hashed  # 52,488 tiles, no hashing
    assert rate == 4.0  # TEACHING_STEP_RATES: at 10 steps/s each feedback blurs over ~6 steps


def test_acrobot_six_dims_get_tile_coding_over_every_pair():
    features, model, rate = defaults_for("Acrobot-v1")
    assert type(features) is SubsetTileCoding and model == "linear" and rate == 10.0
    assert features.groups.shape == (15, 2)  # C(6, 2) pairs
    assert features.n_features == 15 * 8 * 9**2  # 9,720 tiles instead of 8·9^6 hashed into 2^18
    high = [1, 1, 1, 1, 4 * math.pi, 9 * math.pi]  # the space's bounds
    np.testing.assert_allclose(features.low, [-h for h in high], rtol=1e-6)
    phi = features(np.zeros(6))
    assert phi.idx.shape == (15 * 8,) and np.all(phi.val == 1.0)
    assert len(set(phi.idx.tolist())) == 120 and phi.idx.max() < features.n_features


def test_grid_worlds_one_hot_and_the_cnn_for_pixels():
    features, model, rate = defaults_for("tamer/GridWorld-v0")
    assert type(features) is OneHot and features.n_features == 36 and model == "linear" and rate == 1.0
    features, model, rate = defaults_for("tamer/GridWorldPixels-v0")
    assert features is None and model == "cnn" and rate == 1.0
    assert Config().model == "auto" and Config().features == "auto"


def test_auto_choices_by_space_shape():
    assert default_features(Discrete(3)) == "onehot"
    kinds = [default_features(Box(-1, 1, (d,))) for d in (1, 4, 5, 12)]
    assert kinds == ["tile", "tile", "tile_pairs", "tile_pairs"]
    assert default_model(Box(0, 255, (24, 24, 3), np.uint8)) == "cnn"
    assert default_model(Box(0, 255, (84, 84), np.uint8)) == "cnn"
    assert default_model(Box(-1, 1, (6,))) == default_model(Discrete(3)) == "linear"


def test_pair_tiling_is_a_full_tiling_per_pair():
    low, high = np.zeros(3), np.array([1.0, 2.0, 4.0])
    pairs = SubsetTileCoding(low, high, size=2, tilings=4, bins=5)
    obs = np.array([0.3, 1.1, 2.9])
    phi = pairs(obs).idx.reshape(3, 4)  # pairs (0, 1), (0, 2), (1, 2); 4 tilings each
    for g, dims in enumerate([(0, 1), (0, 2), (1, 2)]):
        full = TileCoding(low[list(dims)], high[list(dims)], tilings=4, bins=5)
        np.testing.assert_array_equal(phi[g] - g * full.n_features, full(obs[list(dims)]).idx)
    moved = pairs(obs + np.array([0.0, 0.0, 1.5])).idx.reshape(3, 4)  # only dimension 2 moves
    np.testing.assert_array_equal(moved[0], phi[0])
    assert not set(moved[1]) & set(phi[1]) and not set(moved[2]) & set(phi[2])
    singles = SubsetTileCoding(low, high, size=1, tilings=4, bins=5)
    assert singles.n_features == 3 * 4 * 6 and singles(obs).idx.shape == (12,)
    with pytest.raises(ConfigError, match="size"):
        SubsetTileCoding(low, high, size=4)


@pytest.mark.parametrize("hashed", [False, True])
def test_values_far_outside_the_box_land_in_the_edge_tiles(hashed):
    """Beyond the box every value shares the edge tile of its side, however far: ±1e30 (past int64 once
    scaled) as much as a value one tile out. (Before the clamp +1e30 overflowed to the low corner.)"""
    tc = TileCoding([-1.0, -1.0], [1.0, 1.0], tilings=4, bins=4, max_size=16 if hashed else 1 << 18)
    assert tc.hashed == hashed
    for far, near in (([1e30, -1e30], [1.6, -1.6]), ([-1e30, 1e30], [-1.6, 1.6]), ([1e30, 0.3], [1.6, 0.3])):
        np.testing.assert_array_equal(tc(np.array(far)).idx, tc(np.array(near)).idx)
    assert not np.array_equal(tc(np.array([1e30, 1e30])).idx, tc(np.array([-1e30, -1e30])).idx)
    pairs = SubsetTileCoding([-1.0] * 3, [1.0] * 3, size=2, tilings=2, bins=4)
    np.testing.assert_array_equal(
        pairs(np.array([1e30, -1e30, 0.0])).idx, pairs(np.array([1.6, -1.6, 0.0])).idx
    )


def test_env_arguments_keep_the_envs_defaults():
    """An env named with arguments is still that env to every lookup by id: bounds, pace, oracle."""
    from tamer.session import build

    plain, given = (build(Config(env=e)) for e in ("CartPole-v1", "CartPole-v1(sutton_barto_reward=False)"))
    for s in (plain, given):
        np.testing.assert_array_equal(s.agent.h.features.low, plain.agent.h.features.low)
        np.testing.assert_array_equal(s.agent.h.features.scale, plain.agent.h.features.scale)
        assert s.clock.step_rate == 4.0
        s.env.close()
    assert given.env.unwrapped._sutton_barto_reward is False
