"""Demonstrations and behaviour cloning: the demonstrator, the cross-entropy step by hand, the runs, the human
effort they count."""

import numpy as np
import pytest

from tamer.bc import LinearPolicy
from tamer.config import Config
from tamer.demos import Demonstrations, demonstrate, load_demonstrations
from tamer.envs import make_env
from tamer.errors import ConfigError
from tamer.features import OneHot
from tamer.oracles import make_oracle
from tamer.train import train


def test_one_cross_entropy_step_by_hand():
    policy = LinearPolicy(OneHot(3), 2, lr=0.5, epochs=1, batch=8)
    demos = Demonstrations(np.array([0, 0, 2]), np.array([1, 1, 0]), np.zeros(3, dtype=int), 0.3)
    losses = policy.fit(demos, np.random.default_rng(0))
    # one minibatch; at w = 0 every logit is 0, p = (0.5, 0.5); d loss / d logits = p - onehot(action);
    # ||φ||² = 1, so w[a, s] -= lr·Σ (p_a - [a = action]) over the samples in state s
    np.testing.assert_allclose(policy.w, [[-0.5, 0.0, 0.25], [0.5, 0.0, -0.25]])
    assert losses == [pytest.approx(np.log(2))]
    assert policy.accuracy(demos) == 1.0


def test_the_demonstrator_follows_the_oracle_within_its_error_rate_and_budget():
    env = make_env("MountainCar-v0")
    oracle = make_oracle("", env)
    exact = demonstrate(env, oracle, np.random.default_rng(0), episodes=2, error_rate=0.0, step_rate=10.0)
    assert all(oracle(o)[a] for o, a in zip(exact.obs, exact.actions, strict=True))
    assert exact.n_episodes == 2 and exact.seconds == pytest.approx(len(exact) / 10.0)
    noisy = demonstrate(env, oracle, np.random.default_rng(0), episodes=20, error_rate=0.3)
    wrong = np.mean([not oracle(o)[a] for o, a in zip(noisy.obs, noisy.actions, strict=True)])
    assert wrong == pytest.approx(0.3 * 2 / 3, abs=0.03)  # a random action is right one time in three
    capped = demonstrate(env, oracle, np.random.default_rng(0), episodes=5, steps=150)
    assert len(capped) == 150 and capped.n_episodes == 2  # 150 steps: one whole episode and part of the next


def test_demonstrations_round_trip_and_bad_files_are_one_line(tmp_path):
    demos = Demonstrations(np.arange(6.0).reshape(3, 2), np.array([0, 1, 0]), np.array([0, 0, 1]), 1.5)
    demos.save(tmp_path / "d.npz")
    back = load_demonstrations(tmp_path / "d.npz", None)
    np.testing.assert_array_equal(back.obs, demos.obs)
    assert back.actions.tolist() == [0, 1, 0] and back.seconds == 1.5
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="cannot read demonstrations"):
        load_demonstrations(tmp_path / "junk.npz", None)
    with pytest.raises(ConfigError, match="no demonstrations at"):
        load_demonstrations(tmp_path / "nothing", None)


def test_bc_from_five_demonstrated_episodes_drives_mountain_car_near_the_oracle(tmp_path):
    rows = train(Config(agent="bc", episodes=5, seed=3), tmp_path / "bc", progress=False)
    mean = np.mean([r["return"] for r in rows])
    assert mean >= -120.2 * 1.1, mean  # the oracle's own return is -120.2
    # the demonstrations are the run's human effort, counted in its first row only
    assert rows[0]["demo_steps"] > 400 and rows[0]["human_seconds"] == pytest.approx(
        rows[0]["demo_steps"] / 10
    )
    assert all(r["demo_steps"] == 0 and r["human_seconds"] == 0 and r["feedback"] == 0 for r in rows[1:])
    again = train(Config(agent="bc", episodes=5, seed=3), progress=False)
    assert [r["return"] for r in again] == [r["return"] for r in rows]  # same seed, same numbers


def test_cloning_a_random_demonstrator_fails_where_cloning_the_oracle_succeeds():
    """The threshold above means something: the same agent cloning random play never gets up the hill."""
    rows = train(Config(agent="bc", episodes=3, seed=3, demo_error=1.0), progress=False)
    assert np.mean([r["return"] for r in rows]) < -180


def test_keypress_teaching_costs_its_steps_at_the_teaching_pace_while_the_teacher_is_there():
    rows = train(Config(episodes=4, leave_after=2, max_steps=50, step_rate=5.0), progress=False)
    assert [r["human_seconds"] for r in rows] == [pytest.approx(10.0)] * 2 + [0.0, 0.0]
    assert all(r["demo_steps"] == 0 for r in rows)
    plain = train(Config(agent="rl", episodes=2, max_steps=50), progress=False)
    assert all(r["human_seconds"] == 0 for r in plain)


def test_bc_reads_a_recorded_demonstration_file(tmp_path):
    env = make_env("MountainCar-v0")
    demos = demonstrate(env, make_oracle("", env), np.random.default_rng(1), episodes=4, step_rate=5.0)
    demos.save(tmp_path / "demos.npz")
    rows = train(Config(agent="bc", episodes=3, demos=str(tmp_path / "demos.npz")), progress=False)
    assert rows[0]["demo_steps"] == len(demos) and rows[0]["human_seconds"] == pytest.approx(demos.seconds)
    assert np.mean([r["return"] for r in rows]) > -150
