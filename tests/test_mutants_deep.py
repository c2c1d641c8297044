"""Tests added to kill the mutants that survived the direct tests of the neural parts (``make mutate``,
docs/mutation.md): devices, encoders, networks, the cached forward pass, replay buffers, Deep TAMER's Ĥ
and DQN.

Expected values are worked out by hand in the test (or its comment), or come from a reference built here
from torch's own layers, never from the code under test."""

from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from tamer.config import Config
from tamer.deep import (
    MLP,
    CachedForward,
    NeuralModel,
    ObservationEncoder,
    ReplayBuffer,
    SmallCNN,
    configure_torch,
    dumps,
    loads,
    make_encoder,
    make_net,
    make_neural_h,
    parse_hidden,
    pick_device,
)
from tamer.dqn import DQN, make_dqn
from tamer.envs import make_env
from tamer.errors import ConfigError

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")


def params(net: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


# ---------------------------------------------------------------------------------------------- devices


def test_pick_device_by_name():
    assert pick_device("cpu", images=False) == torch.device("cpu")
    assert pick_device("auto", images=True) == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="^unknown device 'tpu'; known: cpu, cuda, auto$"):
        pick_device("tpu", images=True)
    with pytest.raises(ConfigError, match="^unknown device 'CPU'"):
        pick_device("CPU", images=True)


@no_cuda
def test_asking_for_cuda_without_it_is_refused():
    with pytest.raises(
        ConfigError, match="^--device cuda, but torch sees no CUDA device; use --device cpu or auto$"
    ):
        pick_device("cuda", images=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_when_present():
    assert pick_device("cuda", images=False) == torch.device("cuda")
    model = NeuralModel(ObservationEncoder(gym.spaces.Box(-1.0, 1.0, (2,))), 2, (8,), device="cuda")
    x = model.encode(np.array([0.5, -0.5]))
    model.update([x], [1], [1.0], 1.0)
    assert model.predict(x).shape == (2,)
    assert loads(dumps({"t": torch.ones(2, device="cuda")}))["t"].device == torch.device("cpu")
    dqn = small_dqn(device="cuda")
    for x, a, r, x2, a2, done, off, off2 in transitions(12):
        dqn.update(dqn.encode(x), a, r, dqn.encode(x2), a2, done, off, off2)
    assert dqn.n_updates == 6 and dqn.values(dqn.encode(x)).shape == (2,)


def test_parse_hidden():
    assert parse_hidden("64, 32") == (64, 32)
    assert parse_hidden("8,,4,") == (8, 4)
    assert parse_hidden("1") == (1,)
    for text in ("0", "", "4,0", " , "):
        with pytest.raises(
            ConfigError, match=f"^hidden sizes must be one or more integers >= 1, got '{text}'$"
        ):
            parse_hidden(text)
    with pytest.raises(ConfigError, match="^hidden sizes must be comma-separated integers, got 'a,b'$"):
        parse_hidden("a,b")


def test_configure_torch_sets_the_thread_count():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        configure_torch(1)
        assert torch.get_num_threads() == 1
        configure_torch(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


class NotATensor:
    pass


def test_loads_reads_tensors_only():
    """Saved models are read with ``weights_only``: a file holding arbitrary objects is refused."""
    back = loads(dumps({"w": torch.arange(3.0), "n": 4, "rng": {"state": 5}}))
    assert torch.equal(back["w"], torch.arange(3.0)) and back["n"] == 4 and back["rng"] == {"state": 5}
    with pytest.raises(pickle.UnpicklingError):
        loads(dumps({"evil": NotATensor()}))


# ------------------------------------------------------------------------------------------- encoders


def test_vector_encoder_scales_known_bounds_to_minus_one_one():
    """Bounds [0, 2] × [10, 30]: centres 1 and 20, half-widths 1 and 10."""
    enc = ObservationEncoder(gym.spaces.Box(np.array([0.0, 10.0]), np.array([2.0, 30.0]), dtype=np.float64))
    x = enc(np.array([2.0, 25.0]))
    assert x.dtype == np.float32 and x.tolist() == [1.0, 0.5]
    raw = ObservationEncoder(
        gym.spaces.Box(np.array([0.0, 10.0]), np.array([2.0, 30.0]), dtype=np.float64), scale=False
    )
    assert raw(np.array([2.0, 25.0])).tolist() == [2.0, 25.0]
    # bounds given override the space's
    given = ObservationEncoder(
        gym.spaces.Box(-1.0, 1.0, (2,)), bounds=(np.array([0.0, 0.0]), np.array([4.0, 8.0]))
    )
    assert given(np.array([4.0, 2.0])).tolist() == [1.0, -0.5]


@pytest.mark.filterwarnings("ignore:invalid value encountered in add:RuntimeWarning")  # -inf + inf
def test_vector_encoder_leaves_dimensions_without_usable_bounds_alone():
    """Infinite on either side, equal, or 10⁶ and wider: centre 0, scale 1 (the observation as it is)."""
    low = np.array([-np.inf, 0.0, -1.0, 3.0, -1e7, 0.0, -2.0], dtype=np.float64)
    high = np.array([np.inf, np.inf, 1.0, 3.0, 1e7, 1e6, 2.0], dtype=np.float64)
    enc = ObservationEncoder(gym.spaces.Box(low, high, dtype=np.float64))
    obs = np.array([5.0, 6.0, 0.5, 7.0, 8.0, 9.0, 1.0])
    np.testing.assert_allclose(enc(obs), [5.0, 6.0, 0.5, 7.0, 8.0, 9.0, 0.5])


def test_one_hot_encoder_is_float32_and_counts_from_start():
    enc = ObservationEncoder(gym.spaces.Discrete(3, start=2))
    x = enc(3)
    assert x.dtype == np.float32 and x.tolist() == [0.0, 1.0, 0.0]
    model = NeuralModel(enc, 2, (4,))
    assert model.predict(enc(4)).shape == (2,)  # float32 input fits the float32 network


def test_image_encoder_shapes_and_pooling_by_hand():
    """A 5×7 grey image pooled by 2: the last row and column are cut, each output pixel is the rounded mean
    of a 2×2 block."""
    img = np.arange(35, dtype=np.uint8).reshape(5, 7)
    enc = ObservationEncoder(gym.spaces.Box(0, 255, (5, 7), np.uint8), downsample=2)
    assert enc.shape == (1, 2, 3)
    want = [[(0 + 1 + 7 + 8) / 4, (2 + 3 + 9 + 10) / 4, (4 + 5 + 11 + 12) / 4]]
    want.append([v + 14 for v in want[0]])
    assert enc(img).tolist() == [np.round(want).tolist()]
    assert ObservationEncoder(gym.spaces.Box(0, 255, (8, 6, 3), np.uint8)).shape == (3, 8, 6)  # no pooling
    grey = ObservationEncoder(gym.spaces.Box(0, 255, (4, 4), np.uint8))
    assert grey.shape == (1, 4, 4) and grey(np.full((4, 4), 9, np.uint8)).shape == (1, 4, 4)
    one = ObservationEncoder(gym.spaces.Box(0, 255, (3, 5, 3), np.uint8), downsample=3)  # 3 px: one row
    assert one.shape == (3, 1, 1)
    assert ObservationEncoder(gym.spaces.Box(0, 255, (5, 3, 3), np.uint8), downsample=3).shape == (3, 1, 1)


def test_image_encoder_refusals_in_full():
    with pytest.raises(ConfigError, match="^images of 2x6 px cannot be downsampled by 3$"):
        ObservationEncoder(gym.spaces.Box(0, 255, (2, 6, 3), np.uint8), downsample=3)
    with pytest.raises(ConfigError, match="^images of 6x2 px cannot be downsampled by 3$"):
        ObservationEncoder(gym.spaces.Box(0, 255, (6, 2, 3), np.uint8), downsample=3)
    with pytest.raises(ConfigError, match=r"^--frame-stack > 1 is for image observations only$"):
        ObservationEncoder(gym.spaces.Discrete(3), frame_stack=2)
    with pytest.raises(
        ConfigError,
        match=r"^neural models read Discrete, 1-d Box or image \(H, W\[, C\]\) observations, not ",
    ):
        ObservationEncoder(gym.spaces.MultiBinary([3, 3]))


def test_frame_stacking_without_an_episode_clock():
    enc = ObservationEncoder(gym.spaces.Box(0, 255, (2, 2), np.uint8), frame_stack=2)
    first = enc(np.full((2, 2), 1, np.uint8))
    assert first.shape == (2, 2, 2) and np.all(first == 1)  # a new episode starts from a still picture
    second = enc(np.full((2, 2), 5, np.uint8))
    assert second[0].tolist() == [[1, 1], [1, 1]] and second[1].tolist() == [[5, 5], [5, 5]]


def test_make_encoder_uses_the_configs_bounds():
    """CartPole's position and angle from its space (±4.8, ±0.419), the velocities from our defaults (±3,
    ±3.5); bounds given in the config win; DQN reads raw observations."""
    env = gym.make("CartPole-v1")
    enc = make_encoder(Config(env="CartPole-v1"), env)
    np.testing.assert_allclose(
        enc(np.array([2.4, 1.5, 0.2, -3.5])), [0.5, 0.5, 0.2 / 0.41887903, -1.0], rtol=1e-6
    )
    given = make_encoder(Config(env="CartPole-v1", obs_low="-1,-2,-1,-1", obs_high="1,2,1,3"), env)
    np.testing.assert_allclose(given(np.array([0.5, 1.0, 0.25, 3.0])), [0.5, 0.5, 0.25, 1.0])
    raw = make_encoder(Config(env="CartPole-v1"), env, scale=False)
    assert raw(np.array([2.4, 1.5, 0.2, -3.5])).tolist() == pytest.approx([2.4, 1.5, 0.2, -3.5])
    dqn = make_dqn(Config(env="CartPole-v1", rl="dqn", dqn_hidden="4"), env, 2)
    assert dqn.encode(np.array([2.4, 1.5, 0.2, -3.5])).tolist() == pytest.approx([2.4, 1.5, 0.2, -3.5])


# ------------------------------------------------------------------------------------------- networks


def test_mlp_layers():
    mlp = MLP(4, (8, 6), 2)
    linears = [m for m in mlp.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(4, 8), (8, 6), (6, 2)]
    assert [type(m).__name__ for m in mlp.body] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]


def test_only_the_output_layer_starts_at_zero():
    enc = ObservationEncoder(gym.spaces.Box(-1.0, 1.0, (3,)))
    net = make_net(enc, (8, 8), 2, seed=0)
    w = [m.weight for m in net.modules() if isinstance(m, nn.Linear)]
    assert w[0].abs().sum() > 0 and w[1].abs().sum() > 0 and w[2].abs().sum() == 0
    dqn = DQN(enc, 2, (8,), seed=0)  # DQN keeps torch's default initialisation
    assert all(m.weight.abs().sum() > 0 for m in dqn.q.modules() if isinstance(m, nn.Linear))


def test_small_cnn_architecture():
    """3×3 convolutions 16, 32, 32 channels, strides 1, 2, 2, padding 1, ReLU after each, average-pooled to
    at most 6×6 (ceil(side/4)), then the MLP head; pixels are scaled to [0, 1]."""
    cnn = SmallCNN((3, 24, 20), (8,), 4)
    convs = [m for m in cnn.convs if isinstance(m, nn.Conv2d)]
    assert [(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding) for m in convs] == [
        (3, 16, (3, 3), (1, 1), (1, 1)),
        (16, 32, (3, 3), (2, 2), (1, 1)),
        (32, 32, (3, 3), (2, 2), (1, 1)),
    ]
    kinds = [type(m).__name__ for m in cnn.convs]
    assert kinds == ["Conv2d", "ReLU", "Conv2d", "ReLU", "Conv2d", "ReLU", "AdaptiveAvgPool2d", "Flatten"]
    assert cnn.convs[6].output_size == (6, 5)  # min(6, ceil(24/4)), min(6, ceil(20/4))
    assert cnn.head.body[0].in_features == 32 * 6 * 5
    assert SmallCNN((1, 12, 9), (8,), 4).convs[6].output_size == (3, 3)
    assert SmallCNN((1, 84, 84), (8,), 4).convs[6].output_size == (6, 6)
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2, 3, 24, 20), dtype=np.uint8))
    with torch.no_grad():
        want = cnn.head(cnn.convs(x.float() / 255.0))
        torch.testing.assert_close(cnn(x), want)


# -------------------------------------------------------------------------------------- cached forward


class CountingNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.lin(x)


def test_cached_forward_remembers_the_last_two_inputs_until_cleared():
    net = CountingNet()
    fwd = CachedForward(net, torch.device("cpu"))
    a, b, c = (np.array(v, dtype=np.float32) for v in ([1, 0], [0, 1], [1, 1]))
    first_a = fwd(a)
    assert first_a.dtype == np.float64
    fwd(b)
    np.testing.assert_array_equal(fwd(a), first_a)
    fwd(b)
    assert net.calls == 2
    fwd(c)  # a is forgotten now
    fwd(a)
    assert net.calls == 4
    fwd.clear()
    with torch.no_grad():
        net.lin.bias += 1.0
    np.testing.assert_allclose(fwd(c), net.lin(torch.from_numpy(c)).detach().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fwd(a), first_a + 1.0, rtol=1e-6, atol=1e-6)
    assert net.calls == 6


# --------------------------------------------------------------------------------------- replay buffers


def test_replay_buffer_refusals_in_full():
    buf = ReplayBuffer(4, {"v": ((3,), np.float32)})
    buf.add(v=np.ones((4, 3), np.float32))
    small = ReplayBuffer(2, {"v": ((3,), np.float32)})
    with pytest.raises(ConfigError, match="^saved buffer holds 4 rows, this config's capacity is 2$"):
        small.load_state_dict(buf.state_dict())
    narrow = ReplayBuffer(4, {"v": ((2,), np.float32)})
    with pytest.raises(ConfigError, match=r"^saved buffer column v has rows \(3,\), need \(2,\)$"):
        narrow.load_state_dict(buf.state_dict())


# ------------------------------------------------------------------------------------------- Deep TAMER


def box2():
    return ObservationEncoder(gym.spaces.Box(-1.0, 1.0, (2,)))


def test_neural_h_defaults():
    model = NeuralModel(box2(), 3)
    assert model.optimizer.param_groups[0]["lr"] == 1e-3
    assert (model.buffer.capacity, model.batch_size, model.updates, model.n_updates) == (10_000, 32, 1, 0)
    assert [m.out_features for m in model.net.modules() if isinstance(m, nn.Linear)] == [64, 64, 3]
    assert same(params(model.net), params(NeuralModel(box2(), 3, seed=0).net))
    assert not same(params(model.net), params(NeuralModel(box2(), 3, seed=1).net))


def test_neural_h_stores_what_it_is_given_and_counts_its_steps():
    model = NeuralModel(box2(), 3, (8,), batch_size=2, updates=3)
    xs = [model.encode(np.array(v)) for v in ([0.5, -0.5], [0.25, 0.0])]
    model.update(xs, [2, 0], [0.3, 0.7], [1.0, -1.0])
    d = model.buffer.data
    np.testing.assert_array_equal(d["x"][:2], np.stack(xs))
    assert d["a"][:2].tolist() == [2, 0] and d["h"][:2].tolist() == [1.0, -1.0]
    np.testing.assert_allclose(d["c"][:2], [0.3, 0.7])
    assert model.n_updates == 3
    model.update(xs[:1], [1], [1.0], -1.0)  # one h for the whole feedback
    assert d["h"][2] == -1.0 and model.n_updates == 6


def test_neural_h_is_deterministic_for_a_seed():
    """Minibatches are drawn from the model's own seeded generator: the same updates give the same net."""

    def trained(seed):
        model = NeuralModel(box2(), 2, (8,), lr=0.01, batch_size=3, updates=2, seed=seed)
        rng = np.random.default_rng(9)
        for _ in range(10):
            model.update([model.encode(rng.uniform(-1, 1, 2)) for _ in range(2)], [0, 1], [0.5, 0.5], 1.0)
        return params(model.net)

    assert same(trained(3), trained(3))


def test_neural_h_and_dqn_draw_their_weights_from_different_streams():
    enc = box2()
    h, q = NeuralModel(enc, 2, (8,), seed=0), DQN(enc, 2, (8,), seed=0)
    assert not torch.equal(h.net.body[0].weight, q.q.body[0].weight)


def test_neural_h_state_round_trip_and_refusal():
    model = NeuralModel(box2(), 2, (8,), batch_size=2, updates=2)
    x = model.encode(np.array([0.5, 0.5]))
    model.update([x], [1], [1.0], 1.0)
    other = NeuralModel(box2(), 2, (8,), batch_size=2, updates=2, seed=5)
    other.load_state_dict(loads(dumps(model.state_dict())))
    assert other.n_updates == 2 and other.buffer.size == 1
    np.testing.assert_array_equal(other.predict(x), model.predict(x))
    wide = NeuralModel(box2(), 2, (16,))
    with pytest.raises(
        ConfigError,
        match=r"^saved Ĥ network does not fit this config: Error\(s\) in loading state_dict for MLP:$",
    ):
        wide.load_state_dict(model.state_dict())


def test_make_neural_h_refuses_a_model_that_does_not_fit_and_passes_the_seed():
    env = gym.make("CartPole-v1")
    with pytest.raises(
        ConfigError,
        match=r"^--model cnn does not fit CartPole-v1's observations Box\(.*\); use mlp \(or linear\)$",
    ):
        make_neural_h(Config(env="CartPole-v1", model="cnn"), env, 2)
    pixels = make_env("tamer/GridWorldPixels-v0")
    with pytest.raises(ConfigError, match=r"observations Box\(.*\); use cnn$"):
        make_neural_h(Config(env="tamer/GridWorldPixels-v0", model="mlp"), pixels, 4)

    def hidden(seed):
        return (
            make_neural_h(Config(env="CartPole-v1", model="mlp", h_hidden="8", seed=seed), env, 2)
            .net.body[0]
            .weight
        )

    assert torch.equal(hidden(3), hidden(3)) and not torch.equal(hidden(3), hidden(0))


# -------------------------------------------------------------------------------------------------- DQN


def test_dqn_defaults():
    """RL Zoo's CartPole settings (the config's defaults)."""
    enc = ObservationEncoder(gym.spaces.Box(-1.0, 1.0, (4,)), scale=False)
    d = DQN(enc, 2)
    assert d.optimizer.param_groups[0]["lr"] == 2.3e-3
    assert (d.gamma, d.buffer.capacity, d.batch_size, d.learning_starts) == (0.99, 50_000, 64, 1000)
    assert (d.train_freq, d.gradient_steps, d.target_period) == (256, 128, 10)
    assert (d.eps_start, d.eps_end, d.eps_steps) == (1.0, 0.04, 8000)
    assert [m.out_features for m in d.q.modules() if isinstance(m, nn.Linear)] == [256, 256, 2]
    assert same(params(d.q), params(DQN(enc, 2, seed=0).q)) and not same(
        params(d.q), params(DQN(enc, 2, seed=1).q)
    )
    assert not any(p.requires_grad for p in d.target.parameters())  # the target net is never trained
    assert (d.steps, d.episode, d.n_updates) == (0, 0, 0)


def small_dqn(seed: int = 0, **kw) -> DQN:
    kw = {"lr": 0.01, "gamma": 0.9, "batch_size": 4, "learning_starts": 5, "train_freq": 3,
          "gradient_steps": 3, "target_period": 5, "eps_steps": 10, **kw}  # fmt: skip
    return DQN(ObservationEncoder(gym.spaces.Box(-1.0, 1.0, (2,))), 2, (8,), seed=seed, **kw)


def transitions(n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    for i in range(n):
        x, x2 = (rng.uniform(-1, 1, 2).astype(np.float32) for _ in range(2))
        yield (
            x,
            int(rng.integers(2)),
            float(rng.normal()),
            x2,
            int(rng.integers(2)),
            i % 4 == 3,
            float(rng.normal()),
            rng.normal(size=2).astype(np.float32),
        )


def test_dqn_stores_each_transition_as_given():
    d = small_dqn(learning_starts=10**6)
    rows = list(transitions(4))  # the last one terminal
    for x, a, r, x2, a2, done, off, off2 in rows:
        d.update(d.encode(x), a, r, d.encode(x2), a2, done, off, off2)
    d.update(d.encode(rows[0][0]), 1, 0.5, d.encode(rows[0][3]), None, False)  # no offsets: zeros
    b = d.buffer.data
    for i, (x, a, r, x2, _, done, off, off2) in enumerate(rows):
        np.testing.assert_array_equal(b["x"][i], x)
        np.testing.assert_array_equal(b["x_next"][i], x2)
        assert (b["a"][i], b["done"][i]) == (a, float(done))
        assert b["r"][i] == pytest.approx(r) and b["offset"][i] == pytest.approx(off)
        np.testing.assert_allclose(b["offset_next"][i], off2)
    assert b["offset"][4] == 0.0 and b["offset_next"][4].tolist() == [0.0, 0.0]
    assert b["done"][:5].tolist() == [0.0, 0.0, 0.0, 1.0, 0.0]


def test_dqn_counts_steps_updates_and_episodes():
    """learning_starts 5, train_freq 3, gradient_steps 3: rounds at steps 6, 9, 12 → 9 gradient steps."""
    d = small_dqn()
    for x, a, r, x2, a2, done, off, off2 in transitions(14):
        d.update(d.encode(x), a, r, d.encode(x2), a2, done, off, off2)
    assert (d.steps, d.n_updates) == (14, 9)
    d.end_episode()
    d.end_episode()
    assert d.episode == 2


def test_dqn_is_deterministic_for_a_seed_and_resumes_exactly():
    """A DQN saved mid-run (the online net changed since the target was last copied) and loaded into another
    continues exactly as the original: same nets, same minibatches, and the target is copied on schedule."""
    steps = list(transitions(23))
    a, b = small_dqn(), small_dqn()
    for x, act, r, x2, a2, done, off, off2 in steps[:9]:  # training rounds at steps 6 and 9
        a.update(a.encode(x), act, r, a.encode(x2), a2, done, off, off2)
        b.update(b.encode(x), act, r, b.encode(x2), a2, done, off, off2)
    assert same(params(a.q), params(b.q)) and a.target_stale
    a.end_episode()
    c = small_dqn(seed=7)
    c.load_state_dict(loads(dumps(a.state_dict())))
    assert (c.steps, c.episode, c.n_updates) == (9, 1, 6)
    assert same(params(c.q), params(a.q)) and same(params(c.target), params(a.target))
    for x, act, r, x2, a2, done, off, off2 in steps[9:10]:  # step 10: a target period, no training
        a.update(a.encode(x), act, r, a.encode(x2), a2, done, off, off2)
        c.update(c.encode(x), act, r, c.encode(x2), a2, done, off, off2)
    assert same(params(c.target), params(c.q))  # copied: the online net had changed since the last copy
    for x, act, r, x2, a2, done, off, off2 in steps[10:]:
        a.update(a.encode(x), act, r, a.encode(x2), a2, done, off, off2)
        c.update(c.encode(x), act, r, c.encode(x2), a2, done, off, off2)
    assert same(params(c.q), params(a.q)) and same(params(c.target), params(a.target))
    assert c.buffer.size == a.buffer.size == 23 and c.n_updates == a.n_updates


def test_dqn_refuses_a_saved_network_of_another_shape():
    wide = DQN(ObservationEncoder(gym.spaces.Box(-1.0, 1.0, (2,))), 2, (16,))
    with pytest.raises(
        ConfigError,
        match=r"^saved DQN network does not fit this config: Error\(s\) in loading state_dict for MLP:$",
    ):
        wide.load_state_dict(small_dqn().state_dict())


def test_make_dqn_passes_the_seed():
    env = gym.make("CartPole-v1")

    def weights(seed):
        return (
            make_dqn(Config(env="CartPole-v1", rl="dqn", dqn_hidden="8", seed=seed), env, 2).q.body[0].weight
        )

    assert torch.equal(weights(4), weights(4)) and not torch.equal(weights(4), weights(0))


def test_replay_buffer_numbers_its_rows_and_hands_out_those_held():
    """Capacity 4: row t sits in slot t % 4, and the last ``size`` rows are held."""
    buf = ReplayBuffer(4, {"v": ((), np.float32)})
    buf.add(v=np.array([0.0, 1.0, 2.0], np.float32))
    assert (buf.total, buf.size) == (3, 3)
    assert buf.rows(0, 3)["v"].tolist() == [0.0, 1.0, 2.0] and buf.rows(1, 2)["v"].tolist() == [1.0]
    buf.add(v=np.array([3.0, 4.0, 5.0], np.float32))  # rows 4 and 5 overwrite slots 0 and 1
    assert (buf.total, buf.size, buf.pos) == (6, 4, 2)
    assert buf.rows(2, 6)["v"].tolist() == [2.0, 3.0, 4.0, 5.0]  # wraps around the ring
    assert buf.rows(4, 6)["v"].tolist() == [4.0, 5.0] and buf.rows(6, 6)["v"].tolist() == []
    with pytest.raises(ValueError, match=r"^rows 1\.\.3 are not held \(rows 2\.\.6\)$"):
        buf.rows(1, 3)
    with pytest.raises(ValueError, match="not held"):
        buf.rows(3, 7)
    with pytest.raises(ValueError, match="not held"):
        buf.rows(5, 4)
    other = ReplayBuffer(4, {"v": ((), np.float32)})
    other.load_state_dict(
        {k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in buf.state_dict().items()}
    )
    assert (other.total, other.loads) == (6, 1) and other.rows(2, 6)["v"].tolist() == [2.0, 3.0, 4.0, 5.0]
    other.load_state_dict(buf.state_dict())  # tensors this time; a second load is counted
    assert (other.total, other.loads) == (6, 2)
    other.add(v=np.array([6.0], np.float32))  # row 6 goes to slot 2, after row 5
    assert other.rows(3, 7)["v"].tolist() == [3.0, 4.0, 5.0, 6.0]
    part = ReplayBuffer(4, {"v": ((), np.float32)})
    part.load_state_dict(ReplayBuffer(4, {"v": ((), np.float32)}).state_dict())
    assert (part.total, part.size, part.loads) == (0, 0, 1)


def test_state_dicts_hand_over_the_buffer_itself_when_asked():
    model, d = NeuralModel(box2(), 2, (4,)), small_dqn()
    for part in (model, d):
        assert part.state_dict(rows=False)["buffer"] is part.buffer
        assert part.state_dict()["buffer"]["size"] == 0
