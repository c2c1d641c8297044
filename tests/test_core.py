"""Features, Ĥ, teachers, replay and the training loop."""

import numpy as np
import pytest
from gymnasium.spaces import Box, Discrete

from tamer.config import Config
from tamer.credit import UniformDelay
from tamer.errors import ConfigError
from tamer.features import RBF, OneHot, TileCoding, make_features
from tamer.feedback import Feedback, FeedbackReplay, SimulatedTeacher, read_feedback_log
from tamer.models import LinearModel
from tamer.oracles import evaluate_oracle
from tamer.session import build
from tamer.train import run_episode, train


def test_tile_coding_activates_one_tile_per_tiling_and_generalises_locally():
    tiles = TileCoding([0.0, 0.0], [1.0, 1.0], tilings=8, bins=4)
    a, near, far = tiles([0.5, 0.5]), tiles([0.52, 0.5]), tiles([0.0, 1.0])
    assert a.idx.shape == (8,) and np.all(a.val == 1.0)
    assert len(set(a.idx.tolist())) == 8  # one per tiling, distinct
    assert a.idx.max() < tiles.n_features
    assert len(set(a.idx) & set(near.idx)) >= 6
    assert not set(a.idx) & set(far.idx)
    clipped = tiles([5.0, -5.0])  # outside the box: clipped to the edge tiles, no crash
    np.testing.assert_array_equal(clipped.idx, tiles([1.0, 0.0]).idx)


def test_tile_coding_hashes_large_tables():
    tiles = TileCoding(np.zeros(6), np.ones(6), tilings=8, bins=8, max_size=4096)
    assert tiles.hashed and tiles.n_features == 4096
    assert tiles(np.full(6, 0.3)).idx.max() < 4096


def test_rbf_and_one_hot():
    rbf = RBF([0.0], [1.0], centers=5)
    phi = rbf([0.5])
    assert phi.val.shape == (6,) and phi.val[2] == pytest.approx(1.0) and phi.val[-1] == 1.0
    one = OneHot(4)
    assert one(2).idx.tolist() == [2] and one.n_features == 4


def test_default_features_per_space_and_bounds():
    assert isinstance(make_features(Discrete(5)), OneHot)
    box = Box(np.array([-1.0, -np.inf]), np.array([1.0, np.inf]))
    with pytest.raises(ConfigError, match="--obs-low"):
        make_features(box, "Custom-v0")
    tiles = make_features(box, "Custom-v0", obs_low="-1,-3", obs_high="1,3")
    assert isinstance(tiles, TileCoding)
    assert isinstance(make_features(Box(-1, 1, (4,)), "CartPole-v1"), TileCoding)
    cartpole = Box(np.array([-4.8, -np.inf, -0.42, -np.inf]), np.array([4.8, np.inf, 0.42, np.inf]))
    assert isinstance(make_features(cartpole, "CartPole-v1"), TileCoding)  # velocities from our defaults
    with pytest.raises(ConfigError, match="needs 2 values"):
        make_features(box, "Custom-v0", obs_low="-1", obs_high="1,3")


def test_linear_model_credit_weighted_update_moves_towards_h():
    model = LinearModel(OneHot(3), n_actions=2, lr=0.5)
    x = model.encode(1)
    model.update([x], [0], [1.0], 1.0)
    assert model.predict(x)[0] == pytest.approx(0.5) and model.predict(x)[1] == 0.0
    model.update([x, x], [0, 1], [0.2, 0.2], -1.0)
    assert model.predict(x)[0] == pytest.approx(0.5 + 0.5 * 0.2 * (-1.5))
    assert model.predict(model.encode(0)).tolist() == [0.0, 0.0]  # other states untouched


def test_simulated_teacher_probability_errors_modes_and_leaving():
    rng = np.random.default_rng(0)
    approve_0 = np.array([True, False])

    def judge(**kw):
        teacher = SimulatedTeacher(lambda obs: approve_0, UniformDelay(), rng, **kw)
        for step in range(2000):
            teacher.observe(None, step % 2, step / 10, (step + 1) / 10, episode=step // 200)
        return [fb.value for fb in teacher.poll(1e9)]

    fair = judge(prob=0.5, error_rate=0.0)
    assert len(fair) == pytest.approx(1000, rel=0.1) and sum(fair) == pytest.approx(0, abs=100)
    noisy = judge(prob=1.0, error_rate=0.2)  # judging action 0 (+1) and 1 (-1) alternately, 20% flipped
    assert len(noisy) == 2000
    assert judge(prob=1.0, error_rate=0.0, mode="positive") == [1.0] * 1000
    assert judge(prob=1.0, error_rate=0.0, mode="negative") == [-1.0] * 1000
    assert len(judge(prob=1.0, error_rate=0.0, leave_after=3)) == 600
    tired = judge(prob=1.0, error_rate=0.0, fatigue=20.0)  # halves every 20 s of the 200 s run
    assert len(tired) < 2000 * 20 / 200 * 1.3 / np.log(2)


def test_teacher_feedback_arrives_after_the_delay():
    teacher = SimulatedTeacher(
        lambda obs: np.array([True]),
        UniformDelay(0.2, 0.8),
        np.random.default_rng(0),
        prob=1.0,
        error_rate=0.0,
    )
    teacher.observe(None, 0, 1.0, 1.1, 0)
    assert teacher.poll(1.19) == []
    (fb,) = teacher.poll(1.8)
    assert 1.2 <= fb.time <= 1.8 and fb.value == 1.0


def test_replay_source_hands_over_in_time_order():
    replay = FeedbackReplay([Feedback(0.5, 1.0), Feedback(0.5, -1.0), Feedback(2.0, 1.0)])
    assert replay.poll(0.4) == []
    assert [f.value for f in replay.poll(1.0)] == [1.0, -1.0]
    assert replay.poll(1.5) == [] and len(replay.poll(2.0)) == 1


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "not a feedback log"),
        ("time,step,episode,value\n1.0,3,0,1.0\n2.0,4,0", ":3: truncated line"),
        ("time,step,episode,value\n1.0,3,0\n", ":2: expected time,step,episode,value"),
        (
            "time,step,episode,value\n2.0,3,0,1.0\n1.0,4,0,1.0\n",
            ":3: time 1.0 is not finite or goes backwards",
        ),
        ("time,step,episode,value\nx,3,0,1.0\n", ":2: expected"),
    ],
)
def test_bad_feedback_logs_name_the_line(tmp_path, text, message):
    log = tmp_path / "feedback.csv"
    log.write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_feedback_log(log)


def test_replaying_a_runs_log_reproduces_its_h_exactly(tmp_path):
    cfg = Config(env="MountainCar-v0", episodes=3, seed=7)
    train(cfg, tmp_path / "live", progress=False)
    replayed = Config(
        env="MountainCar-v0",
        episodes=3,
        seed=7,
        teacher="replay",
        feedback_log=str(tmp_path / "live" / "feedback.csv"),
    )
    train(replayed, tmp_path / "replay", progress=False)
    live, again = (np.load(tmp_path / d / "model.npz")["h.w"] for d in ("live", "replay"))
    assert np.abs(live).sum() > 0
    np.testing.assert_array_equal(live, again)
    assert (tmp_path / "live" / "metrics.csv").read_text().split("\n")[1].split(",")[:5] == (
        tmp_path / "replay" / "metrics.csv"
    ).read_text().split("\n")[1].split(",")[:5]


def test_same_seed_same_numbers_and_different_seed_differs():
    def returns(seed, agent="tamer"):
        return [
            (r["return"], r["feedback"], r["ignored"])
            for r in train(
                Config(episodes=3, seed=seed, agent=agent, blend="control_sharing"), progress=False
            )
        ]

    assert returns(3) == returns(3)
    assert returns(3, "tamer+rl") == returns(3, "tamer+rl")
    assert returns(3) != returns(4)


def test_tamer_learns_mountain_car_from_the_simulated_teacher():
    """3 seeds × 8 episodes with the default teacher: episodes 6-8 within 15% of the oracle's return."""
    oracle, _ = evaluate_oracle("MountainCar-v0", episodes=10)
    late = [
        np.mean([r["return"] for r in train(Config(episodes=8, seed=s), progress=False)[5:]])
        for s in range(3)
    ]
    assert np.mean(late) >= oracle * 1.15, (late, oracle)


def test_feedback_before_any_eligible_step_is_counted_not_fatal():
    cfg = Config(episodes=1, seed=0)
    s = build(cfg)
    s.source = FeedbackReplay([Feedback(0.0, 1.0), Feedback(0.05, -1.0)])  # before any step has begun
    row = run_episode(s, 0)
    assert row["feedback"] == 2 and row["ignored"] == 2
