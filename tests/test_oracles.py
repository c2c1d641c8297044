import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers tamer/* environments)
from tamer.oracles import ORACLES, evaluate_oracle, make_oracle, oracle_action

# Measured with evaluate_oracle(env_id, 20, seed=0): MountainCar -120.2, CartPole 500, Acrobot -78.8,
# GridWorld 1 (optimal). Thresholds leave margin so a gymnasium patch release does not break them.
THRESHOLDS = {"MountainCar-v0": -130.0, "CartPole-v1": 450.0, "Acrobot-v1": -100.0}


@pytest.mark.parametrize("env_id", sorted(THRESHOLDS))
def test_oracle_beats_threshold(env_id):
    mean, std = evaluate_oracle(env_id, episodes=20, seed=0)
    assert mean > THRESHOLDS[env_id], f"{env_id}: {mean:.1f} ± {std:.1f}"


@pytest.mark.parametrize("env_id", ["tamer/GridWorld-v0", "tamer/GridWorldPixels-v0"])
def test_gridworld_oracle_is_optimal(env_id):
    grid = gym.make(env_id).unwrapped
    optimal_return = 10.0 - (grid.distances[grid.start] - 1)  # -1 per step, +10 instead on the last one
    assert evaluate_oracle(env_id, episodes=5, seed=0) == (optimal_return, 0.0)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # CartPole-v0 is an old but valid alias
@pytest.mark.parametrize("env_id", sorted(ORACLES))
def test_masks_are_bool_read_only_and_approve_something(env_id):
    env = gym.make(env_id)
    oracle = make_oracle(env_id, env)
    obs, _ = env.reset(seed=0)
    for _ in range(10):
        mask = oracle(obs)
        assert mask.dtype == bool and mask.shape == (env.action_space.n,) and mask.any()
        assert not mask.flags.writeable
        obs, _, terminated, truncated, _ = env.step(oracle_action(mask))
        if terminated or truncated:
            break
    env.close()


def test_unknown_env_raises_value_error_listing_known_ids():
    with pytest.raises(ValueError, match=r"no oracle for env 'Pendulum-v1'; known: .*CartPole-v1"):
        make_oracle("Pendulum-v1", None)


def test_oracle_action_is_first_approved():
    assert oracle_action(np.array([False, True, True])) == 1


def test_pixel_oracle_judges_the_observed_state_not_the_env_state():
    # The teacher judges (obs, action) after env.step has run, as tamer.train does: the verdict must be
    # about obs, even though the env is already in the next cell.
    index_env, pixel_env = gym.make("tamer/GridWorld-v0"), gym.make("tamer/GridWorldPixels-v0")
    index_oracle = make_oracle("tamer/GridWorld-v0", index_env)
    pixel_oracle = make_oracle("tamer/GridWorldPixels-v0", pixel_env)
    cell, _ = index_env.reset(seed=0)
    pixels, _ = pixel_env.reset(seed=0)
    for action in (2, 2, 1, 1, 2, 1):
        next_cell, *_ = index_env.step(action)
        next_pixels, *_ = pixel_env.step(action)
        np.testing.assert_array_equal(pixel_oracle(pixels), index_oracle(cell))
        cell, pixels = next_cell, next_pixels


def test_oracles_work_through_wrappers():
    env = gym.wrappers.RecordEpisodeStatistics(gym.make("tamer/GridWorld-v0"))
    obs, _ = env.reset(seed=0)
    assert make_oracle("tamer/GridWorld-v0", env)(obs).tolist() == [False, False, True, False]
