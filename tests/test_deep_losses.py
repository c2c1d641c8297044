"""The losses of the neural models, checked against references written here.

- Neural Ĥ: one gradient step minimises mean over the minibatch of credit·(h − Ĥ(s, a))², the minibatch
  being the feedback's new samples plus a draw from the feedback buffer.
- DQN: Huber loss between Q(s, a) + offset and r + γ·(1 − terminated)·max_a' (Q_target(s', a') + offset'),
  with the *target* network, gradient norm clipped at 10, the target copied every ``target_period`` steps.

To see the gradient itself (Adam's first step is ~ lr·sign(g), blind to scale), the optimizer is replaced by
a spy that records the gradients it is asked to apply; separately, whole Adam steps are compared with
``torch.optim.Adam`` run on the reference loss."""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from tamer.config import Config
from tamer.deep import make_neural_h
from tamer.dqn import MAX_GRAD_NORM, make_dqn


class Spy(torch.optim.SGD):
    """SGD that records, for every step, the gradients it was given (after any clipping)."""

    def __init__(self, params, lr=0.0):
        super().__init__(params, lr=lr)
        self.grads: list[list[torch.Tensor]] = []

    def step(self, closure=None):
        self.grads.append([p.grad.detach().clone() for g in self.param_groups for p in g["params"]])
        return super().step(closure)


def cartpole():
    return gym.make("CartPole-v1")


def randomise(net: nn.Module, seed: int, scale: float = 0.5) -> None:
    """Nonzero weights everywhere (Ĥ's output layer starts at zero, which would hide the hidden layers)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)


def params(net: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def assert_same(a: list[torch.Tensor], b: list[torch.Tensor], rtol=1e-5, atol=1e-7) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, rtol=rtol, atol=atol)


def reference_grads(net: nn.Module, loss_fn) -> tuple[float, list[torch.Tensor]]:
    ref = copy.deepcopy(net)
    loss = loss_fn(ref)
    grads = torch.autograd.grad(loss, list(ref.parameters()))
    return float(loss.detach()), list(grads)


# ------------------------------------------------------------------------------------------- neural Ĥ


def neural_h(**kw):
    cfg = Config.from_dict(
        {
            "env": "CartPole-v1",
            "model": "mlp",
            "h_hidden": "8",
            "h_net_lr": 0.01,
            "h_batch": 4,
            "h_updates": 1,
            **kw,
        }
    )
    model = make_neural_h(cfg, cartpole(), 2)
    randomise(model.net, 0)
    model.forward.clear()
    return model


def states(model, n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    return [model.encode(rng.uniform(-0.1, 0.1, 4) * [20, 10, 1, 10]) for _ in range(n)]


def h_loss(xs, actions, credits, hs):
    """mean_i c_i·(h_i − Ĥ(s_i, a_i))², written out sample by sample."""

    def loss(net):
        terms = []
        for x, a, c, h in zip(xs, actions, credits, hs, strict=True):
            pred = net(torch.as_tensor(np.asarray(x, dtype=np.float32)))[a]
            terms.append(c * (h - pred) ** 2)
        return torch.stack(terms).mean()

    return loss


def buffer_rows(model, slots):
    d = model.buffer.data
    return (
        [d["x"][i] for i in slots],
        [int(d["a"][i]) for i in slots],
        [float(d["c"][i]) for i in slots],
        [float(d["h"][i]) for i in slots],
    )


def test_neural_h_loss_is_the_credit_weighted_squared_error():
    model = neural_h()
    xs = states(model, 6, 1)
    credits = [0.0, 0.1, 0.25, 0.5, 0.9, 1.0]
    model.buffer.add(
        x=np.stack(xs), a=np.array([0, 1, 1, 0, 1, 0]), c=np.array(credits), h=np.array([1, -1, 1, -1, 1, 1])
    )
    model.optimizer = spy = Spy(model.net.parameters())
    slots = np.array([5, 0, 3, 3, 1, 4, 2])  # duplicates count twice, as a sampled minibatch does
    want_loss, want_grads = reference_grads(model.net, h_loss(*buffer_rows(model, slots)))
    assert model.train_on(slots) == pytest.approx(want_loss, rel=1e-5)
    assert_same(spy.grads[0], want_grads)
    assert all(g.abs().sum() > 0 for g in want_grads)  # every layer gets a gradient


def test_a_sample_with_zero_credit_does_not_move_the_net():
    model = neural_h()
    before = params(model.net)
    x = states(model, 1, 2)[0]
    model.update([x], [1], [0.0], 1.0)  # the only sample in the buffer: the whole minibatch has credit 0
    assert_same(params(model.net), before, rtol=0, atol=0)
    # beside a credited sample it changes nothing either: same gradient as without it (up to the mean's 1/n)
    model = neural_h()
    xs = states(model, 2, 3)
    model.buffer.add(x=np.stack(xs), a=np.array([0, 1]), c=np.array([0.0, 0.7]), h=np.array([1.0, -1.0]))
    model.optimizer = spy = Spy(model.net.parameters())
    model.train_on(np.array([0, 1]))
    _, alone = reference_grads(model.net, h_loss([xs[1]], [1], [0.7], [-1.0]))
    assert_same(spy.grads[0], [g / 2 for g in alone])


def test_neural_h_update_trains_on_the_new_samples_plus_a_buffer_minibatch():
    model = neural_h(h_updates=3)
    model.update(states(model, 5, 4), [0, 1, 0, 1, 0], [0.2, 0.4, 0.6, 0.8, 1.0], 1.0)  # earlier feedback
    # lr 0: the net stays put, so every gradient is taken at the same point
    model.optimizer = spy = Spy(model.net.parameters())
    xs = states(model, 3, 5)
    rng = copy.deepcopy(model.rng)
    model.update(xs, [1, 0, 1], [0.3, 0.5, 0.2], -1.0)
    new = np.arange(5, 8)  # where the new samples went in the buffer
    size = model.buffer.size
    assert size == 8
    batches = [np.concatenate([new, rng.integers(size, size=4)])] + [
        rng.integers(size, size=4) for _ in range(2)
    ]
    assert len(spy.grads) == 3
    for got, slots in zip(spy.grads, batches, strict=True):
        assert_same(got, reference_grads(model.net, h_loss(*buffer_rows(model, slots)))[1])


def test_neural_h_adam_steps_match_torch_adam_on_the_reference_loss():
    model = neural_h(h_updates=1, h_batch=3)
    ref = copy.deepcopy(model.net)
    ref_opt = torch.optim.Adam(ref.parameters(), lr=0.01)
    for step in range(3):  # several steps: Adam's moments, and gradients that must not accumulate
        xs = states(model, 2, 10 + step)
        rng = copy.deepcopy(model.rng)
        credits, h = [0.3, 0.8], (1.0 if step % 2 else -1.0)
        model.update(xs, [step % 2, 1], credits, h)
        size = model.buffer.size
        slots = np.concatenate([[size - 2, size - 1], rng.integers(size, size=min(3, size))])
        ref_opt.zero_grad()
        h_loss(*buffer_rows(model, slots))(ref).backward()
        ref_opt.step()
        assert_same(params(model.net), params(ref), rtol=1e-5, atol=1e-6)
    x = xs[0]
    np.testing.assert_allclose(
        model.predict(x), ref(torch.as_tensor(np.asarray(x))).detach().numpy(), rtol=1e-5
    )


# ------------------------------------------------------------------------------------------------- DQN


def dqn(**kw):
    cfg = Config.from_dict(
        {
            "env": "CartPole-v1",
            "rl": "dqn",
            "gamma": 0.9,
            "dqn_hidden": "8",
            "dqn_batch": 6,
            "dqn_learning_starts": 10**6,  # no training unless a test asks for it
            "dqn_train_freq": 1,
            "dqn_gradient_steps": 1,
            "dqn_target_period": 3,
            **kw,
        }
    )
    return make_dqn(cfg, cartpole(), 2)


def fill(agent, n: int, seed: int, scale: float = 1.0) -> None:
    """Random transitions with offsets; every third one terminal."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        x, x2 = (agent.encode(rng.normal(size=4).astype(np.float32) * scale) for _ in range(2))
        agent.update(
            x, int(rng.integers(2)), float(rng.normal() * 3), x2, int(rng.integers(2)), i % 3 == 0,
            float(rng.normal()), rng.normal(size=2),
        )  # fmt: skip


def huber(d: torch.Tensor) -> torch.Tensor:
    return torch.where(d.abs() < 1.0, 0.5 * d**2, d.abs() - 0.5)


def dqn_loss(agent, slots, target_net):
    b = {k: torch.from_numpy(v[slots]) for k, v in agent.buffer.data.items()}
    terms = []
    for i in range(len(slots)):
        target = b["r"][i]
        if b["done"][i] == 0.0:
            with torch.no_grad():
                target = target + agent.gamma * (target_net(b["x_next"][i]) + b["offset_next"][i]).max()

        def term(net, i=i, target=target):
            return huber(net(b["x"][i])[b["a"][i]] + b["offset"][i] - target)

        terms.append(term)

    def loss(net):
        return torch.stack([t(net) for t in terms]).mean()

    with torch.no_grad():
        q = agent.q(b["x"]).gather(1, b["a"].unsqueeze(1)).squeeze(1) + b["offset"]
        best_next = (target_net(b["x_next"]) + b["offset_next"]).max(dim=1).values
        targets = b["r"] + agent.gamma * (1 - b["done"]) * best_next
    return loss, (q - targets).abs()


def clipped(grads: list[torch.Tensor]) -> list[torch.Tensor]:
    norm = torch.sqrt(sum((g**2).sum() for g in grads))
    return [g * min(1.0, MAX_GRAD_NORM / (float(norm) + 1e-6)) for g in grads], float(norm)


@pytest.mark.parametrize("scale", [1.0, 30.0])  # 30: large inputs, gradient norm above the clip
def test_dqn_step_is_huber_towards_the_target_network_without_bootstrap_at_terminals(scale):
    agent = dqn()
    fill(agent, 30, 0, scale)
    randomise(agent.q, 1, 0.3)  # the online net now differs from the target net
    agent.forward.clear()
    agent.optimizer = spy = Spy(agent.q.parameters())
    slots = copy.deepcopy(agent.rng).integers(agent.buffer.size, size=agent.batch_size)
    done = agent.buffer.data["done"][slots]
    assert 0 < done.sum() < len(slots)  # terminal and non-terminal transitions in the batch
    loss_fn, errors = dqn_loss(agent, slots, agent.target)
    if scale == 1.0:
        assert (errors < 1).any() and (errors > 1).any()  # TD errors on both sides of the Huber kink
    want_loss, want_grads = reference_grads(agent.q, loss_fn)
    assert agent.train_step() == pytest.approx(want_loss, rel=1e-5)
    want, norm = clipped(want_grads)
    assert (norm > MAX_GRAD_NORM) == (scale > 1.0)
    assert_same(spy.grads[0], want, rtol=1e-4, atol=1e-6)


def test_dqn_td_errors_cross_the_huber_kink_and_it_matters():
    """A batch of one terminal transition: |δ| < 1 gives δ²/2, |δ| > 1 gives |δ| − 1/2 (not δ²/2)."""
    for delta in (0.5, 4.0, -6.0):
        agent = dqn(dqn_batch=1)
        x = agent.encode(np.zeros(4, dtype=np.float32))
        agent.update(x, 1, float(agent.values(x)[1]) + delta, x, None, True)
        want = 0.5 * delta**2 if abs(delta) < 1 else abs(delta) - 0.5
        assert agent.train_step() == pytest.approx(want, rel=1e-4)


def test_dqn_update_returns_the_td_error_bootstrapping_only_without_termination():
    agent = dqn()
    x, x2 = (
        agent.encode(np.array(v, dtype=np.float32)) for v in ([0.1, 0.2, 0.0, -0.1], [0.3, -0.2, 0.05, 0.1])
    )
    q, q2 = agent.values(x), agent.values(x2)
    off_next = np.array([0.5, -2.0])
    assert agent.update(x, 0, 1.0, x2, 1, True, 0.25, off_next) == pytest.approx(1.0 - q[0] - 0.25, rel=1e-6)
    truncated = agent.update(x, 0, 1.0, x2, None, False, 0.25, off_next)  # episode cut short: bootstrap
    assert truncated == pytest.approx(1.0 + 0.9 * (q2 + off_next).max() - q[0] - 0.25, rel=1e-6)
    assert agent.buffer.data["done"][:2].tolist() == [1.0, 0.0]


def test_dqn_copies_the_online_net_into_the_target_every_target_period_steps():
    period = 3
    agent = dqn(dqn_learning_starts=4, dqn_target_period=period)
    rng = np.random.default_rng(5)
    snapshot = params(agent.target)
    copies = 0
    for step in range(1, 20):
        x, x2 = (agent.encode(rng.normal(size=4).astype(np.float32)) for _ in range(2))
        agent.update(x, int(rng.integers(2)), float(rng.normal()), x2, 0, False)
        assert agent.steps == step
        online, target = params(agent.q), params(agent.target)
        if step >= 4 and step % period == 0:
            assert_same(target, online, rtol=0, atol=0)  # copied after this step's training
            snapshot, copies = target, copies + 1
        else:
            assert_same(target, snapshot, rtol=0, atol=0)
            if step >= 4:
                assert any(not torch.equal(a, b) for a, b in zip(online, target, strict=True))
    assert copies == 5  # steps 6, 9, 12, 15, 18


def test_dqn_epsilon_falls_linearly_per_step():
    agent = dqn(dqn_epsilon_start=1.0, dqn_epsilon_end=0.1, dqn_epsilon_steps=10)
    x = agent.encode(np.zeros(4, dtype=np.float32))
    seen = []
    for _ in range(12):
        seen.append(agent.epsilon)
        agent.update(x, 0, 0.0, x, 0, False)
    assert seen == pytest.approx([1.0 - 0.09 * i for i in range(10)] + [0.1, 0.1])
