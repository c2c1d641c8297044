import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401  (registers tamer/* environments)
from envs.gridworld import DEFAULT_LAYOUT, GridWorldEnv

UP, RIGHT, DOWN, LEFT = range(4)

# S . G      Start top-left, goal top-right; the wall and hazard make the long way round from the bottom
# . # H      row unambiguous, and the hazard sits next to the goal so a shortcut would be fatal.
# . . .
SMALL = ["S.G", ".#H", "..."]


@pytest.mark.parametrize("env_id", ["tamer/GridWorld-v0", "tamer/GridWorldPixels-v0"])
def test_check_env_passes_without_warnings(env_id):
    env = gym.make(env_id, render_mode="rgb_array")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
    env.close()


def test_registration_is_idempotent():
    import importlib

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        importlib.reload(envs)
    assert gym.spec("tamer/GridWorldPixels-v0").kwargs == {"obs_type": "pixels"}
    assert gym.spec("tamer/GridWorld-v0").max_episode_steps == 100


def test_observation_and_render_shapes():
    env = GridWorldEnv(obs_type="pixels", render_mode="rgb_array")
    obs, info = env.reset(seed=0)
    assert obs.shape == (6 * 4, 6 * 4, 3) and obs.dtype == np.uint8
    assert info["position"] == (0, 0)
    frame = env.render()
    assert frame.shape == (6 * 32, 6 * 32, 3) and frame.dtype == np.uint8
    index_env = GridWorldEnv(layout=SMALL)
    assert index_env.observation_space == gym.spaces.Discrete(9)
    assert index_env.reset(seed=0)[0] == 0


@pytest.mark.parametrize(
    "layout, message",
    [
        ([], "non-empty"),
        (["S.G", ".."], "same length"),
        (["S.X", "..G"], "unknown cell"),
        (["..G", "..."], "exactly one start"),
        (["S.S", "..G"], "exactly one start"),
        (["S..", "..."], "at least one goal"),
        (["S#G", "##."], "no path"),
        (["SHG", "H.."], "no path"),
    ],
)
def test_bad_layout_raises_value_error(layout, message):
    with pytest.raises(ValueError, match=message):
        GridWorldEnv(layout=layout)


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="obs_type"):
        GridWorldEnv(obs_type="rgb")
    with pytest.raises(ValueError, match="slip"):
        GridWorldEnv(slip=1.5)


def test_walls_and_border_block_moves():
    env = GridWorldEnv(layout=SMALL)
    env.reset(seed=0)
    obs, reward, terminated, truncated, _ = env.step(UP)  # border
    assert (obs, reward, terminated, truncated) == (0, -1.0, False, False)
    env.step(DOWN)
    obs, *_ = env.step(RIGHT)  # wall at (1, 1)
    assert obs == 3


def test_goal_and_hazard_end_the_episode():
    env = GridWorldEnv(layout=SMALL)
    env.reset(seed=0)
    assert env.step(RIGHT)[1:4] == (-1.0, False, False)
    obs, reward, terminated, truncated, _ = env.step(RIGHT)
    assert (obs, reward, terminated, truncated) == (2, 10.0, True, False)

    env.reset(seed=0)
    for action in (DOWN, DOWN, RIGHT, RIGHT):
        env.step(action)
    obs, reward, terminated, truncated, _ = env.step(UP)  # (2, 2) -> hazard at (1, 2)
    assert (obs, reward, terminated, truncated) == (5, -10.0, True, False)


def test_optimal_actions_on_small_layout():
    env = GridWorldEnv(layout=SMALL)
    expected_distance = [[2, 1, 0], [3, -1, -1], [4, 5, 6]]
    np.testing.assert_array_equal(env.distances, expected_distance)
    assert env.optimal_actions(0).tolist() == [False, True, False, False]  # S: right
    assert env.optimal_actions(3).tolist() == [True, False, False, False]  # (1, 0): up
    assert env.optimal_actions(7).tolist() == [False, False, False, True]  # (2, 1): left, not up the wall
    assert env.optimal_actions(8).tolist() == [False, False, False, True]  # (2, 2): left, not up the hazard
    # Cells cut off from the goal: every action except those into a hazard is approved.
    cut_off = GridWorldEnv(layout=["S.G", "###", "H.."])
    assert cut_off.distances[2, 2] == -1
    assert cut_off.optimal_actions(8).tolist() == [True, True, True, True]
    assert cut_off.optimal_actions(7).tolist() == [True, True, True, False]


def test_optimal_actions_mask_is_read_only():
    mask = GridWorldEnv().optimal_actions(0)
    with pytest.raises(ValueError):
        mask[0] = True


def test_slip_is_seeded():
    def trajectory(seed):
        env = GridWorldEnv(slip=0.5)
        env.reset(seed=seed)
        return [env.step(RIGHT)[0] for _ in range(20)]

    assert trajectory(3) == trajectory(3)
    assert trajectory(3) != [GridWorldEnv().next_cell[0, RIGHT]] * 20  # slipped at least once


def test_default_layout_follows_optimal_actions_to_goal():
    env = GridWorldEnv(layout=DEFAULT_LAYOUT)
    obs, _ = env.reset(seed=0)
    total, terminated, steps = 0.0, False, 0
    while not terminated:
        obs, reward, terminated, _, _ = env.step(int(np.flatnonzero(env.optimal_actions(obs))[0]))
        total += reward
        steps += 1
    assert steps == env.distances[env.start] and total == 11 - steps


def test_cell_from_pixels_reads_the_agent_position():
    env = GridWorldEnv(obs_type="pixels")
    obs, _ = env.reset(seed=0)
    for action in (DOWN, DOWN, RIGHT, RIGHT, DOWN):
        assert env.cell_from_pixels(obs) == env.cell
        obs, *_ = env.step(action)
    assert env.cell_from_pixels(obs) == env.cell


def test_human_render_imports_pygame_lazily(monkeypatch):
    import sys

    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    env = GridWorldEnv(layout=SMALL, render_mode="human")
    env.reset(seed=0)
    env.step(RIGHT)
    assert "pygame" in sys.modules and env.screen is not None
    env.close()


def test_env_arguments_in_the_env_id_reach_the_env():
    """``Id(k=literal, ...)``: the env is made with those arguments, and its registered id is still the
    plain one (what oracle lookups read)."""
    from tamer.envs import make_env

    env = make_env('tamer/GridWorld-v0(layout=["S.G", ".#H", "..."], slip=0.0)')
    assert env.spec is not None and env.spec.id == "tamer/GridWorld-v0"
    assert (env.unwrapped.rows, env.unwrapped.cols) == (3, 3)
    plain = make_env("FrozenLake-v1")
    fixed = make_env("FrozenLake-v1(is_slippery=False)")
    assert len(plain.unwrapped.P[0][2]) == 3  # slippery: three outcomes per action
    assert fixed.unwrapped.P[0][2] == [(1.0, 1, 0.0, False)]  # as asked: one


@pytest.mark.parametrize(
    ("env_id", "says"),
    [
        ("FrozenLake-v1(bogus=1)", "TypeError"),  # the constructor refuses an argument
        ("FrozenLake-v1(is_slippery=)", "name=literal"),
        ("CartPole-v1(x=open('f'))", "name=literal"),  # only literals, nothing evaluated
        ("tamer/GridWorld-v0(layout=['S'])", "ValueError"),  # the env's own check
    ],
)
def test_env_arguments_the_env_refuses_are_one_line(env_id, says, capsys):
    from tamer.cli import main

    assert main(["train", "--env", env_id, "--episodes", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err, err


def test_env_arguments_in_sweeps_compare_and_results(tmp_path):
    """Every lookup by env id sees through the arguments: a sweep validates and runs the env, compare gives
    it the env's own settings, the results table its reward threshold."""
    from tamer.cli import main
    from tamer.compare import method_fields
    from tamer.results import default_threshold

    sweep = tmp_path / "x.toml"
    sweep.write_text(
        '[base]\nepisodes = 2\n[grid]\nenv = ["FrozenLake-v1(is_slippery=False)", "FrozenLake-v1"]\n'
        'oracle = ["reward"]\n'
    )
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert len(list((tmp_path / "out").glob("*is_slippery=False*"))) == 1
    assert method_fields("rankings", "MountainCar-v0(goal_velocity=0.0)") == method_fields(
        "rankings", "MountainCar-v0"
    )
    assert method_fields("rankings", "CartPole-v1(sutton_barto_reward=False)")["ranker"] == "return"
    rows = [{"env": "CartPole-v1(sutton_barto_reward=False)"}]
    assert default_threshold(None, rows) == default_threshold(None, [{"env": "CartPole-v1"}]) == 475.0


@pytest.mark.parametrize(
    ("env_id", "says"),
    [
        ('FrozenLake-v1(**{"is_slippery": False})', "only name=value"),  # would silently drop the arguments
        ("FrozenLake-v1(is_slippery=False, is_slippery=True)", "'is_slippery' given twice"),
        ('FrozenLake-v1(is_slippery=False)(map_name="4x4")', "one group of arguments"),  # the first was lost
        ("FrozenLake-v1(is_slippery=False", "unbalanced parentheses"),
        ("FrozenLake-v1(is_slippery=len)", "is_slippery= is not a literal"),
    ],
)
def test_env_arguments_that_would_be_silently_lost_are_refused(env_id, says):
    from tamer.envs import make_env
    from tamer.errors import ConfigError

    with pytest.raises(ConfigError, match=says):
        make_env(env_id)


def test_session_folder_names_from_env_ids_with_arguments():
    from tamer.cli import folder_safe

    assert folder_safe('FrozenLake-v1(map_name="8x8", is_slippery=False)') == (
        "FrozenLake-v1(map_name=-8x8-,-is_slippery=False)"
    )
    assert folder_safe("tamer/GridWorld-v0") == "tamer-GridWorld-v0"
