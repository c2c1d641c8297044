import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers tamer/* environments)
from tamer.config import Config
from tamer.errors import ConfigError
from tamer.oracles import (
    ORACLES,
    cartpole_oracle,
    evaluate_oracle,
    make_oracle,
    margin_mask,
    oracle_action,
)

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
    oracle = make_oracle("", env)
    obs, _ = env.reset(seed=0)
    for _ in range(10):
        mask = oracle(obs)
        assert mask.dtype == bool and mask.shape == (env.action_space.n,) and mask.any()
        assert not mask.flags.writeable
        obs, _, terminated, truncated, _ = env.step(oracle_action(mask))
        if terminated or truncated:
            break
    env.close()


def test_oracle_action_is_first_approved():
    assert oracle_action(np.array([False, True, True])) == 1


def test_pixel_oracle_judges_the_observed_state_not_the_env_state():
    # The teacher judges (obs, action) after env.step has run, as tamer.train does: the verdict must be
    # about obs, even though the env is already in the next cell.
    index_env, pixel_env = gym.make("tamer/GridWorld-v0"), gym.make("tamer/GridWorldPixels-v0")
    index_oracle = make_oracle("", index_env)
    pixel_oracle = make_oracle("", pixel_env)
    cell, _ = index_env.reset(seed=0)
    pixels, _ = pixel_env.reset(seed=0)
    for action in (2, 2, 1, 1, 2, 1):
        next_cell, *_ = index_env.step(action)
        next_pixels, *_ = pixel_env.step(action)
        np.testing.assert_array_equal(pixel_oracle(pixels), index_oracle(cell))
        cell, pixels = next_cell, next_pixels


# --------------------------------------------------------------------- the built-in oracle, by registered id


def test_builtin_oracle_is_found_by_registered_id_through_wrappers_and_module_spelling():
    env = gym.wrappers.RecordEpisodeStatistics(gym.make("gymnasium.envs.classic_control:CartPole-v1"))
    obs, _ = env.reset(seed=0)
    reference = cartpole_oracle(env)
    for _ in range(5):
        assert make_oracle("", env)(obs).tolist() == reference(obs).tolist()
        obs, *_ = env.step(0)
    grid = gym.wrappers.RecordEpisodeStatistics(gym.make("tamer/GridWorld-v0"))
    obs, _ = grid.reset(seed=0)
    assert make_oracle("", grid)(obs).tolist() == [False, False, True, False]


def test_a_builtin_id_names_that_oracle_for_another_env():
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=0)
    assert make_oracle("CartPole-v0", env)(obs).tolist() == cartpole_oracle()(obs).tolist()


def one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message, message
    return message


def test_no_builtin_oracle_says_how_to_give_one():
    with pytest.raises(ConfigError) as e:
        make_oracle("", gym.make("Taxi-v4"))
    message = one_line(e)
    assert "no built-in oracle for 'Taxi-v4'" in message
    for way in ("--oracle run:PATH", "--oracle reward", "--oracle package.module:function"):
        assert way in message


# --------------------------------------------------------------------------------------- a user's oracle

USER_MODULE = """
import numpy as np
from tamer.errors import ConfigError

NOT_CALLABLE = 3

def always_first(env):
    mask = np.zeros(env.action_space.n, dtype=bool)
    mask[0] = True
    return lambda obs: mask

def broken(env):
    raise RuntimeError("no layout")

def returns_a_number(env):
    return 7
"""


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "my_oracles.py").write_text(USER_MODULE)
    (tmp_path / "my_broken_oracles.py").write_text("raise ImportError('needs pygame 3')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_oracles"


def test_user_oracle_factory_gets_the_env(user_module):
    env = gym.make("Taxi-v4")
    obs, _ = env.reset(seed=0)
    assert make_oracle(f"{user_module}:always_first", env)(obs).tolist() == [True] + [False] * 5


@pytest.mark.parametrize(
    "name, message",
    [
        ("my_oracles:missing", "cannot load oracle 'my_oracles:missing'"),
        ("my_broken_oracles:f", "cannot load oracle 'my_broken_oracles:f': ImportError: needs pygame 3"),
        ("no_such_module_xyz:f", "cannot load oracle 'no_such_module_xyz:f'"),
        ("my_oracles:NOT_CALLABLE", "is not callable"),
        ("my_oracles:broken", "failed when built: RuntimeError: no layout"),
        ("my_oracles:returns_a_number", "returned int, not an oracle"),
    ],
)
def test_bad_user_oracle_is_one_line(user_module, name, message):
    with pytest.raises(ConfigError) as e:
        make_oracle(name, gym.make("CartPole-v1"))
    assert message in one_line(e)


# ------------------------------------------------------------------------------------------- run:PATH


def test_margin_is_a_fraction_of_the_states_value_spread():
    q = np.array([-13.0, -15.0, -113.0, -14.0])  # best -13, spread 100
    assert margin_mask(q, 0.0).tolist() == [True, False, False, False]
    assert margin_mask(q, 0.01).tolist() == [True, False, False, True]  # within 1 of the best
    assert margin_mask(q, 0.02).tolist() == [True, True, False, True]  # within 2
    assert margin_mask(q, 1.0).tolist() == [True, True, True, True]
    assert margin_mask(np.array([2.0, 5.0, 5.0]), 0.0).tolist() == [False, True, True]  # ties pass
    assert margin_mask(np.zeros(3), 0.0).tolist() == [True, True, True]  # no opinion: nothing punished
    assert not margin_mask(q, 0.0).flags.writeable


def hand_made_run(path, q: np.ndarray, **fields):
    """A run folder (config.json + model.npz) for CliffWalking whose linear Q is exactly ``q`` (actions x
    states; one-hot features, so Q(s, a) = w[a, s] + q_init)."""
    from tamer.session import make_agent

    cfg = Config(env="CliffWalking-v1", agent="rl", **fields)
    env = gym.make(cfg.env)
    agent = make_agent(cfg, env, np.random.default_rng(0))
    agent.rl.w[...] = q - cfg.q_init
    path.mkdir()
    cfg.save(path / "config.json")
    agent.save(path / "model.npz")
    return env


def test_run_oracle_approves_within_margin_of_hand_computed_q(tmp_path):
    rng = np.random.default_rng(1)
    q = rng.uniform(-20.0, 0.0, size=(4, 48))
    q[:, 36] = [-14.0, -113.0, -13.0, -15.0]  # the start state: 0 up, 1 right (the cliff), 2 down, 3 left
    env = hand_made_run(tmp_path / "run", q, q_init=-5.0)
    for margin in (0.0, 0.01, 0.02, 0.3, 1.0):
        oracle = make_oracle(f"run:{tmp_path / 'run'}", env, margin)
        for s in range(48):
            spread = q[:, s].max() - q[:, s].min()
            expected = [v >= q[:, s].max() - margin * spread for v in q[:, s]]
            assert oracle(s).tolist() == expected, (margin, s)
    oracle = make_oracle(f"run:{tmp_path / 'run'}", env, 0.01)
    assert oracle(36).tolist() == [True, False, True, False]


def test_run_oracle_from_a_trained_run_judges_the_given_observation(tmp_path):
    from tamer.train import train

    out = tmp_path / "sarsa"
    train(Config(env="CliffWalking-v1", agent="rl", episodes=3, max_steps=100, lam=0.0), out, progress=False)
    w = np.load(out / "model.npz")["rl.w"]
    env = gym.make("CliffWalking-v1")
    oracle = make_oracle(f"run:{out}", env)
    obs, _ = env.reset(seed=0)
    for action in (0, 2, 0, 1, 1):  # the oracle reads obs, never the env's state, which has moved on
        next_obs, *_ = env.step(action)
        assert oracle(obs).tolist() == margin_mask(w[:, obs], 0.0).tolist()
        obs = next_obs
    assert len({tuple(oracle(s).tolist()) for s in range(48)}) > 1  # it learned something to judge by


def test_run_oracle_of_a_tamer_run_reads_h(tmp_path):
    from tamer.train import train

    out = tmp_path / "tamer"
    train(Config(env="tamer/GridWorld-v0", agent="tamer", episodes=2), out, progress=False)
    w = np.load(out / "model.npz")["h.w"]
    oracle = make_oracle(f"run:{out}", gym.make("tamer/GridWorld-v0"))
    assert np.abs(w).sum() > 0
    for s in range(w.shape[1]):
        assert oracle(s).tolist() == margin_mask(w[:, s], 0.0).tolist()


def test_run_oracle_of_a_dqn_run_reads_q(tmp_path):
    pytest.importorskip("torch")
    from tamer.train import train

    out = tmp_path / "dqn"
    cfg = Config(env="CartPole-v1", agent="rl", rl="dqn", episodes=1, dqn_hidden="8", dqn_buffer=500)
    train(cfg, out, progress=False)
    env = gym.make("CartPole-v1")
    oracle = make_oracle(f"run:{out}", env, 1.0)
    obs, _ = env.reset(seed=0)
    assert oracle(obs).tolist() == [True, True]  # margin 1 approves every action
    mask = make_oracle(f"run:{out}", env)(obs)
    assert mask.dtype == bool and mask.shape == (2,) and mask.any()


def test_a_tamer_run_can_teach_from_a_saved_run(tmp_path):
    from tamer.train import train

    teacher = tmp_path / "teacher"
    hand_made_run(teacher, np.tile([[-2.0], [-1.0], [-3.0], [-4.0]], 48))  # always right
    rows = train(
        Config(env="CliffWalking-v1", episodes=2, max_steps=30, step_rate=1.0, oracle=f"run:{teacher}"),
        progress=False,
    )
    assert sum(r["feedback"] for r in rows) > 0


# --------------------------------------------------------------------------------------------- reward


def test_reward_oracle_on_toy_text():
    cliff = make_oracle("reward", gym.make("CliffWalking-v1"))
    assert cliff(36).tolist() == [True, False, True, True]  # right from the start falls off the cliff
    assert cliff(0).tolist() == [True, True, True, True]  # -1 whatever it does
    lake = make_oracle("reward", gym.make("FrozenLake-v1", is_slippery=False))
    assert lake(14).tolist() == [False, False, True, False]  # right reaches the goal
    slippery = make_oracle("reward", gym.make("FrozenLake-v1"))
    assert slippery(14).tolist() == [False, True, True, True]  # 1/3 of a goal each: expected rewards tie
    taxi = gym.make("Taxi-v4")
    obs, _ = taxi.reset(seed=0)
    mask = make_oracle("reward", taxi)(obs)
    assert mask[:4].all() and not mask[4:].any()  # moving costs -1; pick-up/drop-off here is illegal (-10)


def test_tamer_oracle_cli_takes_an_oracle(capsys):
    from tamer.cli import main

    assert main(["oracle", "--env", "CliffWalking-v1", "--oracle", "reward", "--episodes", "1"]) == 0
    assert "oracle reward on CliffWalking-v1: mean return -1000.0" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------- bad specs


@pytest.mark.parametrize(
    "spec, env_id, message",
    [
        ("Pendulum", "CartPole-v1", "unknown oracle 'Pendulum'"),
        ("", "Pendulum-v1", "no built-in oracle for 'Pendulum-v1'"),
        ("reward", "CartPole-v1", "--oracle reward needs a toy-text env"),
        ("run:{tmp}/nowhere", "CliffWalking-v1", "is not a run folder (no config.json)"),
        ("run:{tmp}/no_model", "CliffWalking-v1", "has no model.npz"),
        (
            "run:{tmp}/run",
            "Taxi-v4",
            "trained on CliffWalking-v1 (observations Discrete(48), actions Discrete(4))",
        ),
        ("run:{tmp}/run", "CartPole-v1", "which does not fit CartPole-v1 (observations Box("),
    ],
)
def test_bad_spec_is_one_config_error_line(tmp_path, spec, env_id, message):
    hand_made_run(tmp_path / "run", np.zeros((4, 48)))
    (tmp_path / "no_model").mkdir()
    Config(env="CliffWalking-v1").save(tmp_path / "no_model" / "config.json")
    with pytest.raises(ConfigError) as e:
        make_oracle(spec.format(tmp=tmp_path), gym.make(env_id))
    assert message in one_line(e)


def test_margin_out_of_range_is_refused(tmp_path):
    env = hand_made_run(tmp_path / "run", np.zeros((4, 48)))
    with pytest.raises(ConfigError) as e:
        make_oracle(f"run:{tmp_path / 'run'}", env, 1.5)
    assert "oracle margin must be in [0, 1], got 1.5" in one_line(e)


def test_oracles_module_does_not_import_the_training_loop():
    import subprocess
    import sys

    code = "import sys, tamer.oracles; assert not {'tamer.train', 'tamer.session'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)
