"""PPO (tamer.ppo): the update against hand-computed values, GAE against a direct sum, schedules, the KL
penalty, the vectorised loop, save/load, determinism, and the blends that refuse it. Tiny nets, few steps."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from tamer.callbacks import METRICS, Callback
from tamer.config import Config
from tamer.deep import ObservationEncoder
from tamer.errors import ConfigError
from tamer.ppo import PPO
from tamer.ppo_parts import annealed, categorical_kl, gae, ppo_loss
from tamer.ppo_runs import make_ppo
from tamer.session import build
from tamer.train import evaluate, run_episode, train

TINY = {"env": "CartPole-v1", "rl": "ppo", "gamma": 0.98, "ppo_hidden": "8", "ppo_epochs": 2}


def tiny_cfg(**values) -> Config:
    return Config.from_dict({**TINY, **values})


def box(n: int = 3) -> ObservationEncoder:
    return ObservationEncoder(gym.spaces.Box(-1.0, 1.0, (n,), np.float32), scale=False)


def linear_ppo(**kw) -> PPO:
    """A PPO whose policy and value are single linear layers (no hidden layer) with weights set by hand."""
    ppo = PPO(box(), 2, hidden=(), **kw)
    with torch.no_grad():
        ppo.pi[0].weight.copy_(torch.tensor([[0.5, -0.3, 0.2], [-0.4, 0.1, 0.6]]))
        ppo.pi[0].bias.zero_()
        ppo.vf[0].weight.copy_(torch.tensor([[0.3, 0.2, -0.1]]))
        ppo.vf[0].bias.fill_(0.1)
    return ppo


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# A batch of four chosen so that each case of the clipped surrogate occurs (ε = 0.2): ratio inside the range;
# ratio above 1 + ε with A > 0 (clipped: no gradient); ratio below 1 − ε with A < 0 (clipped); ratio above
# 1 + ε with A < 0 (min takes the unclipped term: gradient flows).
X = np.array([[0.5, 1.0, -0.5], [1.0, 0.0, 0.5], [-0.5, 0.5, 1.0], [0.2, -1.0, 0.3]], dtype=np.float32)
A = np.array([0, 1, 0, 1])
ADV = np.array([1.0, 2.0, -1.5, -0.5], dtype=np.float32)
RET = np.array([1.0, -0.5, 0.3, 2.0], dtype=np.float32)
RATIO_WANTED = np.array([1.1, 1.5, 0.6, 1.4])


def batch(ppo: PPO) -> dict[str, torch.Tensor]:
    logp = np.log(softmax(X @ ppo.pi[0].weight.detach().numpy().T))[np.arange(4), A]
    old = logp - np.log(RATIO_WANTED)  # so that the ratios come out as wanted
    return {
        "x": torch.from_numpy(X),
        "a": torch.from_numpy(A),
        "logp": torch.from_numpy(old.astype(np.float32)),
        "adv": torch.from_numpy(ADV),
        "ret": torch.from_numpy(RET),
    }


def by_hand(W, U, c, adv, clip, ent_coef, vf_coef, old_logp):
    """Loss and gradients (dL/dW of the policy, dL/dU of the value) of the PPO loss, written out."""
    pi = softmax(X @ W.T)
    logp = np.log(pi[np.arange(4), A])
    ratio = np.exp(logp - old_logp)
    unclipped, clipped = ratio * adv, np.clip(ratio, 1 - clip, 1 + clip) * adv
    surrogate = np.minimum(unclipped, clipped)
    v = X @ U[0] + c
    entropy = -(pi * np.log(pi)).sum(axis=1)
    loss = -surrogate.mean() + vf_coef * ((v - RET) ** 2).mean() - ent_coef * entropy.mean()
    # d(−min(...))/dW: only where the unclipped term is the smaller; d ratio/dW = ratio·(e_a − π)·xᵀ
    active = unclipped <= clipped
    onehot = np.eye(2)[A]
    g_pg = -((active * adv * ratio)[:, None, None] * (onehot - pi)[:, :, None] * X[:, None, :]).sum(0) / 4
    # entropy: dH/dz_k = −π_k (log π_k + H)
    dh_dz = -pi * (np.log(pi) + entropy[:, None])
    g_ent = -ent_coef * (dh_dz[:, :, None] * X[:, None, :]).sum(0) / 4
    g_v = vf_coef * (2 * (v - RET))[:, None] * X
    return loss, g_pg + g_ent, g_v.sum(0)[None] / 4, ratio, active


@pytest.mark.parametrize("normalize", [False, True])
def test_loss_and_gradient_against_hand_computation(normalize):
    ppo = linear_ppo()
    b = batch(ppo)
    W, U, c = (
        t.detach().numpy().astype(np.float64) for t in (ppo.pi[0].weight, ppo.vf[0].weight, ppo.vf[0].bias)
    )
    adv = (ADV - ADV.mean()) / (ADV.std(ddof=1) + 1e-8) if normalize else ADV.astype(np.float64)
    loss, gw, gu, ratio, active = by_hand(W, U, c, adv, 0.2, 0.01, 0.5, b["logp"].numpy().astype(np.float64))
    np.testing.assert_allclose(ratio, RATIO_WANTED, rtol=1e-5)
    if not normalize:  # the four cases of the clipped surrogate are all there
        assert list(active) == [True, False, False, True]
    got, parts = ppo_loss(
        ppo.pi(b["x"]),
        ppo.vf(b["x"]).squeeze(-1),
        b["a"],
        b["logp"],
        b["adv"],
        b["ret"],
        0.2,
        0.01,
        0.5,
        normalize,
    )
    got.backward()
    assert got.item() == pytest.approx(loss, rel=1e-5)
    np.testing.assert_allclose(ppo.pi[0].weight.grad.numpy(), gw, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(ppo.vf[0].weight.grad.numpy(), gu, rtol=1e-4, atol=1e-7)


def test_one_update_step_is_clipped_adam_by_hand():
    """learn_minibatch: the gradient by hand, its global norm clipped to max_grad_norm, then Adam's first
    step, which moves each weight by −lr·g/(|g| + ε)."""
    lr, max_norm = 0.01, 0.05
    ppo = linear_ppo(lr=lr, max_grad_norm=max_norm, ent_coef=0.0, vf_coef=0.5)
    b = batch(ppo)
    W0, U0, c0 = (
        t.detach().numpy().astype(np.float64).copy()
        for t in (ppo.pi[0].weight, ppo.vf[0].weight, ppo.vf[0].bias)
    )
    adv = (ADV - ADV.mean()) / (ADV.std(ddof=1) + 1e-8)
    _, gw, gu, ratio, active = by_hand(W0, U0, c0, adv, 0.2, 0.0, 0.5, b["logp"].numpy().astype(np.float64))
    pi = softmax(X @ W0.T)
    gb = -((active * adv * ratio)[:, None] * (np.eye(2)[A] - pi)).sum(0) / 4  # the policy's bias
    gc = np.array([0.5 * np.mean(2 * (X @ U0[0] + c0 - RET))])  # the value's bias
    norm = np.sqrt(sum((g**2).sum() for g in (gw, gb, gu, gc)))
    assert norm > max_norm  # so the clipping matters
    scale = max_norm / (norm + 1e-6)

    def moved(g):
        return -lr * (g * scale) / (np.abs(g * scale) + 1e-5)

    ppo.learn_minibatch(b, clip=0.2)
    got = [t.detach().numpy() for t in (ppo.pi[0].weight, ppo.pi[0].bias, ppo.vf[0].weight, ppo.vf[0].bias)]
    for g, before, grad in zip(got, (W0, 0.0, U0, c0), (gw, gb, gu, gc), strict=True):
        np.testing.assert_allclose(g, before + moved(grad), rtol=1e-5, atol=1e-6)


def test_gae_equals_the_direct_sum_of_discounted_td_residuals():
    rng = np.random.default_rng(3)
    T, N, gamma, lam = 7, 3, 0.9, 0.8
    r = rng.normal(size=(T, N)).astype(np.float32)
    v = rng.normal(size=(T, N)).astype(np.float32)
    terminated = np.zeros((T, N), dtype=bool)
    truncated = np.zeros((T, N), dtype=bool)
    terminated[2, 0] = terminated[6, 1] = True  # one mid-rollout, one at the rollout's last step
    truncated[4, 0] = truncated[3, 2] = True  # time limits: bootstrap from V(final observation)
    v_final = rng.normal(size=(T, N)).astype(np.float32)
    last = rng.normal(size=N).astype(np.float32)  # V(observation after the rollout)
    ended = terminated | truncated
    # V(s_{t+1}) written out: the next row inside an episode, V(final obs) at truncation, 0 at termination
    true_next = np.zeros((T, N))
    for t in range(T):
        for i in range(N):
            if terminated[t, i]:
                true_next[t, i] = 0.0
            elif truncated[t, i]:
                true_next[t, i] = v_final[t, i]
            else:
                true_next[t, i] = v[t + 1, i] if t + 1 < T else last[i]
    delta = r + gamma * true_next - v
    expected = np.zeros((T, N))
    for i in range(N):
        for t in range(T):
            k = t
            while True:
                expected[t, i] += (gamma * lam) ** (k - t) * delta[k, i]
                if ended[k, i] or k == T - 1:
                    break
                k += 1
    # the learner's path: record row by row, then advantages over the rollout
    ppo = PPO(box(1), 2, hidden=(4,), n_steps=T, n_envs=N, gamma=gamma, gae_lambda=lam)
    for t in range(T):
        logp = np.log(np.full((N, 2), 0.5, dtype=np.float32))
        ppo.record(
            np.zeros((N, 1), np.float32),
            np.zeros(N, np.int64),
            logp,
            v[t],
            r[t],
            terminated[t],
            truncated[t],
            v_final[t],
        )
    adv, ret = ppo.advantages(last)
    np.testing.assert_allclose(adv, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ret, expected + v, rtol=1e-5, atol=1e-5)
    # λ = γ = 1 over an episode that terminates: the advantage is the return to its end minus V (telescoping)
    nv = np.array([[v[1, 0]], [v[2, 0]], [123.0]], np.float32)  # V(terminal) is never used
    a1, _ = gae(r[:3, :1], v[:3, :1], nv, terminated[:3, :1], ended[:3, :1], 1.0, 1.0)
    np.testing.assert_allclose(a1[:, 0], np.cumsum(r[:3, 0][::-1])[::-1] - v[:3, 0], rtol=1e-5)


def test_learning_rate_and_clip_range_anneal_linearly():
    assert annealed(1e-3, 0, 1000, "linear") == 1e-3
    assert annealed(1e-3, 250, 1000, "linear") == pytest.approx(7.5e-4)
    assert annealed(0.2, 1000, 1000, "linear") == 0.0
    assert annealed(0.2, 1500, 1000, "linear") == 0.0  # the last rollout may overshoot: floored at 0
    assert annealed(0.2, 900, 1000, "none") == 0.2
    ppo = PPO(
        box(1), 2, hidden=(4,), n_steps=4, n_envs=2, batch_size=4, epochs=1, lr=1e-3, clip=0.2, total_steps=32
    )
    for _ in range(4):  # one rollout of 8 steps: progress counted after it (as SB3 does): 1 − 8/32
        half = np.log(np.full((2, 2), 0.5, np.float32))
        no = np.zeros(2, bool)
        ppo.record(np.zeros((2, 1), np.float32), np.zeros(2, np.int64), half, np.zeros(2), np.ones(2), no, no)
    stats = ppo.finish(np.zeros(2))
    assert stats["lr"] == pytest.approx(7.5e-4) and stats["clip"] == pytest.approx(0.15)
    assert ppo.optimizer.param_groups[0]["lr"] == pytest.approx(7.5e-4)


def test_kl_penalty_is_taken_off_the_reward():
    p, q = np.array([0.7, 0.2, 0.1]), np.array([0.5, 0.25, 0.25])
    by_hand = 0.7 * np.log(0.7 / 0.5) + 0.2 * np.log(0.2 / 0.25) + 0.1 * np.log(0.1 / 0.25)
    assert categorical_kl(np.log(p), np.log(q)) == pytest.approx(by_hand)
    assert float(categorical_kl(torch.log(torch.tensor(p)), torch.log(torch.tensor(q)))) == pytest.approx(
        by_hand
    )
    ppo = linear_ppo(n_steps=2, n_envs=2, kl_coef=0.5)
    ref = torch.nn.Linear(3, 2)
    with torch.no_grad():
        ref.weight.zero_()
        ref.bias.zero_()  # the uniform policy
    ppo.reference = ref
    xs = X[:2]
    _, logp, values = ppo.policy_step(xs, np.random.default_rng(0))
    ppo.record(xs, np.array([0, 1]), logp, values, np.array([1.0, 1.0]), np.zeros(2, bool), np.zeros(2, bool))
    pi = softmax(X[:2] @ ppo.pi[0].weight.detach().numpy().T)
    kl = (pi * np.log(pi / 0.5)).sum(axis=1)
    np.testing.assert_allclose(ppo.buf["r"][0], 1.0 - 0.5 * kl, rtol=1e-5)
    assert (kl > 0).all()


def test_kl_needs_a_reference_and_a_reference_needs_kl():
    env = gym.make("CartPole-v1")
    with pytest.raises(ConfigError, match="--reference RUN"):
        make_ppo(tiny_cfg(kl_coef=0.1), env, 2)
    with pytest.raises(ConfigError, match="--kl-coef"):
        make_ppo(tiny_cfg(reference="somewhere"), env, 2)
    env.close()


class Recorder(Callback):
    def __init__(self):
        self.steps, self.ends, self.starts, self.calls = [], [], [], []

    def on_run_start(self, s):
        self.calls.append("run_start")

    def on_episode_start(self, s, episode):
        self.starts.append(episode)

    def on_step(self, s, step, feedback):
        self.steps.append(step)

    def on_episode_end(self, s, row):
        self.ends.append(row)

    def on_run_end(self, s):
        self.calls.append("run_end")


VECTOR = {"agent": "rl", "ppo_envs": 3, "ppo_n_steps": 16, "ppo_batch": 16, "ppo_steps": 300, "max_steps": 20}


def test_vectorised_loop_shapes_callbacks_metrics_and_eval(tmp_path):
    rec = Recorder()
    cfg = tiny_cfg(**VECTOR)
    rows = train(cfg, tmp_path / "run", progress=False, callbacks=[rec])
    # 300 steps in whole rollouts of 3 × 16: 7 rollouts, 336 env steps, one on_step each, numbered 1..336
    assert [st.step for st in rec.steps] == list(range(1, 337))
    assert rec.calls == ["run_start", "run_end"]
    assert [r["episode"] for r in rows] == list(range(len(rows))) == [r["episode"] for r in rec.ends]
    assert rec.starts == list(range(len(rows) + 1))
    assert all(r["length"] <= 20 for r in rows) and sum(r["length"] for r in rows) <= 336
    lines = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert lines[0] == ",".join(METRICS) and len(lines) == len(rows) + 1
    s = build(cfg)
    ppo = s.agent.rl
    assert ppo.buf["x"].shape == (16, 3, 4) and ppo.buf["a"].shape == (16, 3)
    s.env.close()
    returns = evaluate(tmp_path / "run", episodes=2)
    assert len(returns) == 2 and all(0 < r <= 20 for r in returns)


def test_same_seed_same_numbers_different_seed_different():
    def run(seed):
        cfg = tiny_cfg(**{**VECTOR, "ppo_steps": 96}, seed=seed)
        s = build(cfg)
        from tamer.callbacks import CallbackList
        from tamer.ppo_runs import run_vectorised

        rows = run_vectorised(s, CallbackList())
        s.env.close()
        return [(r["return"], r["length"]) for r in rows], [p.detach().clone() for p in s.agent.rl.params]

    (ra, wa), (rb, wb), (rc, wc) = run(1), run(1), run(2)
    assert ra == rb and all(torch.equal(x, y) for x, y in zip(wa, wb, strict=True))
    assert ra != rc or not all(torch.equal(x, y) for x, y in zip(wa, wc, strict=True))


def test_save_load_continues_identically_in_the_per_step_body(tmp_path):
    cfg = tiny_cfg(
        agent="tamer+rl", blend="reward_shaping", ppo_envs=1, ppo_n_steps=24, ppo_batch=8, max_steps=30
    )
    a, twin = build(cfg), build(cfg)
    ra = [run_episode(a, e)["return"] for e in range(3)]
    assert ra == [run_episode(twin, e)["return"] for e in range(3)]
    assert a.agent.rl.n_rollouts >= 2 and a.agent.rl.pos > 0  # saved in the middle of a rollout
    path = tmp_path / "model.npz"
    a.agent.save(path)
    c = build(cfg)
    c.agent.load(path)
    assert (c.agent.rl.steps, c.agent.rl.pos, c.agent.rl.n_updates) == (
        a.agent.rl.steps, a.agent.rl.pos, a.agent.rl.n_updates,
    )  # fmt: skip
    # the rest of the session (env, teacher, agent's own RNG) is not the agent's to save: take a's
    c.env.close()
    c.env, c.source, c.credit, c.clock, c.steps = a.env, a.source, a.credit, a.clock, a.steps
    c.agent.rng.bit_generator.state = a.agent.rng.bit_generator.state
    assert [run_episode(c, e)["return"] for e in range(3, 6)] == [
        run_episode(twin, e)["return"] for e in range(3, 6)
    ]
    assert all(torch.equal(x, y) for x, y in zip(c.agent.rl.params, twin.agent.rl.params, strict=True))
    assert c.agent.rl.n_rollouts > a.agent.rl.n_rollouts  # it did train after the load
    c.env.close()
    twin.env.close()


@pytest.mark.parametrize("blend", ["reward_shaping", "potential_shaping", "h_as_reward"])
def test_reward_blends_run_ppo_acting_on_its_policy(blend):
    s = build(tiny_cfg(agent="tamer+rl", blend=blend, ppo_envs=1, ppo_n_steps=16, ppo_batch=8, max_steps=25))
    rows = [run_episode(s, e) for e in range(3)]
    assert all(r["length"] > 0 for r in rows) and s.agent.rl.n_rollouts >= 1
    assert s.agent.rl.steps == sum(r["length"] for r in rows)
    s.env.close()


@pytest.mark.parametrize(
    "blend", ["control_sharing", "action_biasing", "q_augmentation", "h_feature", "extra_action"]
)
def test_blends_needing_q_values_refuse_ppo_in_one_line(blend):
    with pytest.raises(ConfigError, match="needs the RL learner's Q values") as e:
        build(tiny_cfg(agent="tamer+rl", blend=blend))
    assert "\n" not in str(e.value)


def test_init_and_reference_read_a_saved_policy(tmp_path):
    cfg = tiny_cfg(**{**VECTOR, "ppo_steps": 48})
    train(cfg, tmp_path / "src", progress=False)
    saved = build(cfg)
    saved.agent.load(tmp_path / "src" / "model.npz")
    s = build(tiny_cfg(**{**VECTOR, "ppo_steps": 48}, seed=5, init=str(tmp_path / "src"), kl_coef=0.1))
    for x, y in zip(s.agent.rl.params, saved.agent.rl.params, strict=True):
        assert torch.equal(x, y)  # policy and value net copied
    xs = np.zeros((2, 4), np.float32)
    _, logp, _ = s.agent.rl.policy_step(xs, np.random.default_rng(0))
    np.testing.assert_allclose(s.agent.rl.kl_penalty(xs, logp), 0.0, atol=1e-6)  # the reference is the init
    with pytest.raises(ConfigError, match="does not fit"):
        build(tiny_cfg(agent="rl", env="Acrobot-v1", init=str(tmp_path / "src")))
    with pytest.raises(ConfigError, match="--ppo-hidden"):
        build(tiny_cfg(agent="rl", ppo_hidden="5", init=str(tmp_path / "src")))
    train(Config(env="CartPole-v1", agent="rl", episodes=1), tmp_path / "sarsa", progress=False)
    with pytest.raises(ConfigError, match="no policy network"):
        build(tiny_cfg(agent="rl", init=str(tmp_path / "sarsa")))
