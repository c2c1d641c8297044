"""Neural Ĥ (Deep TAMER) and DQN: shapes, learning direction, save/load, determinism. Tiny nets, few steps."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from tamer.config import Config
from tamer.deep import NeuralModel, ObservationEncoder, ReplayBuffer, dumps, loads
from tamer.dqn import DQN
from tamer.errors import ConfigError
from tamer.session import build
from tamer.train import run_episode

TINY = {"h_hidden": "16", "dqn_hidden": "16", "dqn_learning_starts": 20, "dqn_train_freq": 4}


def tiny_cfg(**values) -> Config:
    return Config.from_dict({**TINY, **values})


def test_encoder_kinds_and_shapes():
    vec = ObservationEncoder(gym.spaces.Box(-1.0, 1.0, (3,)))
    x = vec(np.array([1.0, 0.0, -1.0]))
    assert x.shape == (3,) and x.dtype == np.float32 and x.val.dtype == np.float64
    onehot = ObservationEncoder(gym.spaces.Discrete(4))
    assert onehot(2).tolist() == [0, 0, 1, 0]
    img = ObservationEncoder(gym.spaces.Box(0, 255, (8, 6, 3), np.uint8), downsample=2, frame_stack=3)
    episode = [0]
    img.episode_clock = lambda: episode[0]
    frame = np.full((8, 6, 3), 200, np.uint8)
    first = img(frame)
    assert first.shape == (9, 4, 3) and first.dtype == np.uint8 and np.all(first == 200)
    second = img(np.zeros_like(frame))
    assert np.all(second[:6] == 200) and np.all(second[6:] == 0)  # newest frame last
    episode[0] = 1
    assert np.all(img(np.zeros_like(frame)) == 0)  # a new episode restarts the stack
    with pytest.raises(ConfigError):
        ObservationEncoder(gym.spaces.Box(-1.0, 1.0, (3,)), frame_stack=2)


def test_neural_h_credit_weighted_update_moves_towards_h():
    model = NeuralModel(ObservationEncoder(gym.spaces.Box(-1.0, 1.0, (2,))), 3, (16,), lr=1e-2, seed=0)
    x = model.encode(np.array([0.5, -0.5]))
    assert model.predict(x).shape == (3,) and np.all(model.predict(x) == 0.0)  # zero output layer
    for _ in range(30):
        model.update([x], [1], [1.0], 1.0)
    after = model.predict(x)
    assert after[1] > 0.5 and abs(after[0]) < after[1]
    big = NeuralModel(ObservationEncoder(gym.spaces.Box(-1.0, 1.0, (2,))), 3, (16,), lr=1e-2, seed=0)
    small = NeuralModel(ObservationEncoder(gym.spaces.Box(-1.0, 1.0, (2,))), 3, (16,), lr=1e-2, seed=0)
    big.update([x], [1], [1.0], -1.0)
    small.update([x], [1], [0.01], -1.0)
    assert big.predict(x)[1] < small.predict(x)[1] < 0.0  # Adam's first step is sign-driven: both move
    assert model.buffer.size == 30


def test_cnn_h_on_images():
    space = gym.spaces.Box(0, 255, (12, 12, 3), np.uint8)
    model = NeuralModel(ObservationEncoder(space), 4, (8,), lr=1e-2, batch_size=4, updates=2, seed=1)
    x = model.encode(np.random.default_rng(0).integers(0, 255, (12, 12, 3), dtype=np.uint8))
    model.update([x, x], [0, 3], [0.5, 0.5], [1.0, -1.0])
    h = model.predict(x)
    assert h.shape == (4,) and h[0] > 0 > h[3]


def test_replay_buffer_wraps_and_round_trips():
    buf = ReplayBuffer(3, {"v": ((2,), np.float32)})
    buf.add(v=np.arange(8, dtype=np.float32).reshape(4, 2))
    assert buf.size == 3 and buf.pos == 1 and buf.data["v"][0].tolist() == [6, 7]
    other = ReplayBuffer(3, {"v": ((2,), np.float32)})
    other.load_state_dict(loads(dumps(buf.state_dict())))
    np.testing.assert_array_equal(other.data["v"], buf.data["v"])
    with pytest.raises(ConfigError):
        ReplayBuffer(2, {"v": ((2,), np.float32)}).load_state_dict(buf.state_dict())


def test_dqn_learns_a_one_step_bandit_and_uses_offsets():
    """State-free two-armed bandit: action 1 pays 1, action 0 pays 0; every step terminates."""
    encoder = ObservationEncoder(gym.spaces.Box(-1.0, 1.0, (1,)))
    dqn = DQN(
        encoder,
        2,
        (16,),
        lr=1e-2,
        buffer_size=100,
        batch_size=16,
        learning_starts=10,
        train_freq=1,
        gradient_steps=1,
        target_period=5,
        eps_steps=50,
        seed=0,
    )
    x = dqn.encode(np.zeros(1))
    rng = np.random.default_rng(0)
    for _ in range(300):
        a = int(rng.integers(2))
        dqn.update(x, a, float(a), x, None, True)
    q = dqn.values(x)
    assert q[1] == pytest.approx(1.0, abs=0.15) and q[0] == pytest.approx(0.0, abs=0.15)
    assert dqn.epsilon == pytest.approx(0.04)
    # an offset of 1 on Q(s, a) means the net itself learns the residual: 0 for action 1
    for _ in range(300):
        dqn.update(x, 1, 1.0, x, None, True, offset=1.0)
    assert dqn.values(x)[1] == pytest.approx(0.0, abs=0.2)
    delta = dqn.update(x, 0, 0.0, x, 0, False, offset_next=np.array([0.0, 10.0]))
    assert delta > 5.0  # the bootstrap uses max(Q(s') + offset')


@pytest.mark.parametrize(
    "values",
    [
        {"agent": "tamer", "model": "mlp"},
        {"agent": "rl", "rl": "dqn", "gamma": 0.99},
        {"agent": "tamer+rl", "model": "mlp", "rl": "dqn", "blend": "q_augmentation"},
        {"agent": "tamer+rl", "model": "mlp", "rl": "dqn", "blend": "h_feature"},
        {"agent": "tamer+rl", "model": "linear", "rl": "dqn", "blend": "extra_action"},
        {"agent": "tamer+rl", "model": "mlp", "rl": "sarsa", "blend": "reward_shaping"},
    ],
)
def test_every_combination_runs_in_the_training_loop(values):
    s = build(tiny_cfg(env="CartPole-v1", episodes=2, **values))
    rows = [run_episode(s, e) for e in range(2)]
    assert all(r["length"] > 0 for r in rows)
    s.env.close()


def test_acting_does_not_change_the_cached_q_values():
    s = build(tiny_cfg(env="CartPole-v1", agent="tamer+rl", model="mlp", rl="dqn", blend="extra_action"))
    x = s.agent.encode(s.env.reset(seed=0)[0])
    before = s.agent.q_values(x).copy()
    s.agent.act(x)  # extra_action adds β to the last action's Q on its own copy
    assert np.array_equal(s.agent.q_values(x), before)
    s.env.close()


def test_neural_h_refuses_what_it_cannot_do():
    with pytest.raises(ConfigError, match="region"):
        build(tiny_cfg(env="CartPole-v1", agent="tamer+rl", model="mlp", rl="dqn", beta_schedule="region"))
    with pytest.raises(ConfigError, match="cnn"):
        build(tiny_cfg(env="CartPole-v1", model="cnn"))


def run(cfg: Config, episodes: int, s=None):
    s = s or build(cfg)
    returns = [run_episode(s, e)["return"] for e in range(episodes)]
    return s, returns


def test_same_seed_same_numbers_and_save_load_continues_exactly(tmp_path):
    cfg = tiny_cfg(
        env="CartPole-v1",
        agent="tamer+rl",
        model="mlp",
        rl="dqn",
        gamma=0.99,
        blend="q_augmentation",
        episodes=6,
    )
    a, ra = run(cfg, 3)
    b, rb = run(cfg, 3)
    assert ra == rb
    np.testing.assert_array_equal(
        a.agent.h.predict(a.agent.h.encode(np.zeros(4))), b.agent.h.predict(b.agent.h.encode(np.zeros(4)))
    )
    path = tmp_path / "model.npz"
    a.agent.save(path)
    c = build(cfg)
    c.agent.load(path)
    for name in ("steps", "n_updates", "episode"):
        assert getattr(c.agent.rl, name) == getattr(a.agent.rl, name)
    assert c.agent.h.buffer.size == a.agent.h.buffer.size > 0
    # the rest of the session (env, teacher, agent's own RNG) is not the agent's to save: copy it over
    c.env, c.source, c.credit, c.clock, c.steps = a.env, a.source, a.credit, a.clock, a.steps
    c.agent.rng.bit_generator.state = a.agent.rng.bit_generator.state
    x = a.agent.encode(np.array([0.01, 0.0, 0.02, 0.0]))
    np.testing.assert_array_equal(
        a.agent.q_values(x), c.agent.q_values(c.agent.encode(np.array([0.01, 0.0, 0.02, 0.0])))
    )
    b_more = [run_episode(b, e)["return"] for e in range(3, 5)]
    c_more = [run_episode(c, e)["return"] for e in range(3, 5)]
    assert b_more == c_more
    np.testing.assert_array_equal(b.agent.rl.values(x), c.agent.rl.values(x))
    np.testing.assert_array_equal(b.agent.h.predict(x[0]), c.agent.h.predict(x[0]))


def test_cnn_runs_on_gridworld_pixels_and_saves(tmp_path):
    from tamer.train import train

    cfg = tiny_cfg(env="tamer/GridWorldPixels-v0", model="cnn", episodes=1, max_steps=15, h_batch=4)
    rows = train(cfg, tmp_path / "run", progress=False)
    assert len(rows) == 1
    s = build(cfg)
    s.agent.load(tmp_path / "run" / "model.npz")
    assert s.agent.h.buffer.size > 0
