"""Each blend's defining formula on a hand-made Q and Ĥ, and a smoke test that each learns."""

import numpy as np
import pytest

from tamer.agents import Agent, ScaleNormalizer
from tamer.blends import BLENDS, make_blend
from tamer.config import Config
from tamer.errors import ConfigError
from tamer.features import OneHot
from tamer.models import LinearModel
from tamer.rl import LinearTD
from tamer.schedules import BetaSchedule
from tamer.train import train


class State(str):
    """A hand-made state: the stubs look values up by its name; ``val`` stands in for its features."""

    val = np.ones(1)


S0, S1 = State("s0"), State("s1")
Q = {S0: np.array([1.0, 2.0, 0.0]), S1: np.array([0.5, 0.0, 3.0])}
H = {S0: np.array([1.0, -1.0, 0.5]), S1: np.array([-1.0, 2.0, 0.0])}


class StubH:
    def predict(self, x):
        return H[x].copy()


class StubRL:
    gamma, lr, epsilon = 0.9, 0.1, 0.0

    def __init__(self, q=Q):
        self.q, self.calls = q, []

    def values(self, x):
        return self.q[x].copy()

    def update(self, x, action, reward, x_next, action_next, terminated, offset=0.0, offset_next=None):
        self.calls.append(
            dict(
                x=x,
                action=action,
                reward=reward,
                action_next=action_next,
                offset=offset,
                offset_next=offset_next,
                terminated=terminated,
            )
        )
        return 0.5


def agent(blend: str, beta: float = 2.0, rl=None, seed: int = 0) -> Agent:
    return Agent(
        StubH(),
        rl or StubRL(),
        make_blend(blend),
        3,
        np.random.default_rng(seed),
        schedule=BetaSchedule(beta),
    )


def x(state):
    return (state, state)


def learn(a: Agent, reward=-1.0, action=1, action_next=2, terminated=False):
    a.learn_reward(x(S0), action, reward, x(S1), action_next, terminated)
    return a.rl.calls[-1]


def test_tamer_acts_on_h_and_rl_on_q():
    assert agent("tamer").act(x(S0)) == 0  # argmax H[S0]
    assert agent("rl").act(x(S0)) == 1  # argmax Q[S0]


def test_reward_shaping_learns_from_r_plus_beta_h():
    call = learn(agent("reward_shaping", beta=2.0), reward=-1.0, action=1)
    assert call["reward"] == pytest.approx(-1.0 + 2.0 * H[S0][1])
    assert call["offset"] == 0.0 and call["offset_next"] is None


def test_q_augmentation_acts_and_bootstraps_on_q_plus_beta_h():
    a = agent("q_augmentation", beta=2.0)
    assert a.act(x(S0)) == 0  # Q + 2H = [3, 0, 1]
    call = learn(a, action=2)
    assert call["reward"] == -1.0
    assert call["offset"] == pytest.approx(2.0 * H[S0][2])
    np.testing.assert_allclose(call["offset_next"], 2.0 * H[S1])


def test_action_biasing_acts_on_q_plus_beta_h_but_learns_from_r():
    a = agent("action_biasing", beta=2.0)
    assert a.act(x(S0)) == 0 and a.act(x(S1)) == 1  # S1: Q + 2H = [-1.5, 4, 3]
    call = learn(a)
    assert call["reward"] == -1.0 and call["offset"] == 0.0 and call["offset_next"] is None


@pytest.mark.parametrize("beta, expected_h_share", [(0.0, 0.0), (1.0, 1.0), (5.0, 1.0), (0.3, 0.3)])
def test_control_sharing_follows_h_with_probability_min_beta_1(beta, expected_h_share):
    a = agent("control_sharing", beta=beta)
    choices = np.array([a.act(x(S0)) for _ in range(4000)])
    assert set(choices) <= {0, 1}  # argmax H = 0, argmax Q = 1
    assert (choices == 0).mean() == pytest.approx(expected_h_share, abs=0.03)


def test_potential_shaping_adds_gamma_phi_next_minus_phi():
    call = learn(agent("potential_shaping", beta=2.0), reward=-1.0)
    phi, phi_next = H[S0].max(), H[S1].max()
    assert call["reward"] == pytest.approx(-1.0 + 2.0 * (0.9 * phi_next - phi))
    terminal = learn(agent("potential_shaping", beta=2.0), reward=-1.0, terminated=True, action_next=None)
    assert terminal["reward"] == pytest.approx(-1.0 - 2.0 * phi)  # Φ(terminal) = 0


def test_h_feature_weight_starts_at_beta_and_learns_by_td_error():
    rl = StubRL()
    a = agent("h_feature", beta=2.0, rl=rl)
    assert a.act(x(S0)) == 0  # Q + 2H
    call = learn(a, action=1)
    assert call["offset"] == pytest.approx(2.0 * H[S0][1])
    np.testing.assert_allclose(call["offset_next"], 2.0 * H[S1])
    h = H[S0][1]
    assert a.blend.u == pytest.approx(2.0 + 0.1 * 0.5 * h / (1.0 + h**2))  # u += lr·δ·h / (|φ|² + h²)


def test_extra_action_follows_h_and_learns_the_learners_own_choice():
    rl = StubRL({S0: np.array([0.0, 0.0, 0.0, 1.0]), S1: np.array([5.0, 0.0, 0.0, 0.0])})
    a = agent("extra_action", beta=0.0, rl=rl)
    assert a.act(x(S0)) == 0  # the extra action (index 3) wins and means argmax H[S0] = 0
    assert a.act(x(S1)) == 0  # the learner's own action 0
    call = learn(a, action=0, action_next=0)
    assert call["action"] == 3 and call["action_next"] == 0
    beta_pulls = agent("extra_action", beta=10.0, rl=StubRL({S1: np.array([5.0, 0.0, 0.0, 0.0])}))
    assert beta_pulls.act(x(S1)) == 1  # β biases towards "do what Ĥ says": argmax H[S1] = 1


def test_h_as_reward_learns_from_beta_h_alone():
    call = learn(agent("h_as_reward", beta=2.0), reward=-100.0, action=0)
    assert call["reward"] == pytest.approx(2.0 * H[S0][0])


def test_q_init_adds_beta_h_to_q_when_the_teacher_leaves():
    features = OneHot(4)
    h, rl = LinearModel(features, 2), LinearTD(features, 2)
    h.w[:] = [[1.0, 2.0, 3.0, 4.0], [-1.0, 0.0, 1.0, 0.0]]
    rl.w[:] = 0.5
    a = Agent(h, rl, make_blend("q_init"), 2, np.random.default_rng(0), schedule=BetaSchedule(2.0))
    a.teacher_left()
    np.testing.assert_allclose(rl.w, 0.5 + 2.0 * h.w)


def test_scale_normalisation_matches_h_spread_to_q_spread():
    norm = ScaleNormalizer(rate=1.0)
    scaled = norm(np.array([0.5, -1.0]), np.array([-200.0, -170.0]))  # spreads 1.5 and 30
    np.testing.assert_allclose(scaled, [10.0, -20.0])
    slow = ScaleNormalizer(rate=0.5)
    slow(np.array([0.0, 1.0]), np.array([0.0, 10.0]))  # spreads move halfway: 0.5 and 5
    np.testing.assert_allclose(slow(np.array([0.0, 1.0]), np.array([0.0, 10.0])), [0.0, 10.0])


class MyBlend:
    """A user's blend: always action 2."""

    def act(self, agent, x):
        return 2

    def learn(self, agent, x, action, reward, x_next, action_next, terminated):
        pass


def test_user_blend_from_a_module_path():
    assert agent("tests.test_blends:MyBlend").act(x(S0)) == 2


@pytest.mark.parametrize(
    "name", ["nope", "no.such.module:Blend", "tests.test_blends:Missing", "tamer.errors:ConfigError"]
)
def test_bad_blend_names_list_the_known_blends(name):
    with pytest.raises(ConfigError, match="known: tamer, rl, reward_shaping"):
        make_blend(name)


RANDOM_GRIDWORLD_RETURN = -39.5  # uniform random actions, mean over 200 episodes


@pytest.mark.parametrize("blend", sorted(set(BLENDS) - {"tamer", "rl"}))
def test_every_blend_learns_something_on_a_tiny_budget(blend):
    """GridWorld, 30 episodes, teacher leaves after 10: episodes 21-30 beat a random policy by a margin,
    averaged over 3 seeds. Ĥ-as-reward keeps its teacher: a frozen Ĥ as the only reward has positive
    circuits the agent loops around (Knox & Stone 2013)."""
    late = []
    for seed in range(3):
        cfg = Config(
            env="tamer/GridWorld-v0",
            agent="tamer+rl",
            blend=blend,
            episodes=30,
            seed=seed,
            leave_after=0 if blend == "h_as_reward" else 10,
            rl_epsilon=0.05,
            gamma=0.9 if blend == "h_as_reward" else 1.0,
        )
        late.append(np.mean([r["return"] for r in train(cfg, progress=False)][-10:]))
    assert np.mean(late) > RANDOM_GRIDWORLD_RETURN + 12, late


def test_beta_schedules():
    from tamer.features import Phi
    from tamer.schedules import make_schedule

    exp, lin, step = (
        make_schedule(k, 2.0, d)
        for k, d in (("episode_exp", 0.5), ("episode_linear", 0.5), ("step_exp", 0.5))
    )
    for s in (exp, lin, step):
        s.on_episode(), s.on_episode(), s.on_step()
    assert exp.value() == 0.5 and lin.value() == 1.0 and step.value() == 1.0
    fb = make_schedule("feedback", 2.0, 0.5)
    fb.on_step(), fb.on_step()
    assert fb.value() == 0.5
    fb.on_feedback([])
    assert fb.value() == 2.0  # back as soon as the teacher speaks
    region = make_schedule("region", 2.0, 0.5, n_features=4)
    taught, elsewhere = Phi(np.array([0, 1]), np.ones(2)), Phi(np.array([2, 3]), np.ones(2))
    region.on_feedback([taught])
    assert region.value(taught) == 2.0 and region.value(elsewhere) == 0.0
    region.on_step()
    assert region.value(taught) == 1.0  # fades per step
    half = Phi(np.array([1, 2]), np.ones(2))
    assert region.value(half) == 0.5
    with pytest.raises(ConfigError, match="beta must be >= 0"):  # the config's bound (tests/test_config.py)
        Config(agent="tamer+rl", beta_schedule="constant", beta=-1.0).validate()
    with pytest.raises(ConfigError, match="unknown beta schedule"):
        make_schedule("cosine", 1.0, 1.0)


def test_sequential_mode_teaches_first_then_freezes_h_and_switches_blend(tmp_path):
    from tamer.session import build
    from tamer.train import evaluate, run_episode

    cfg = Config(
        env="tamer/GridWorld-v0",
        agent="tamer+rl",
        blend="action_biasing",
        mode="sequential",
        h_episodes=3,
        episodes=6,
        seed=0,
    )
    s = build(cfg)
    rows = [run_episode(s, e) for e in range(cfg.episodes)]
    assert all(r["feedback"] > 0 for r in rows[:3]) and all(r["feedback"] == 0 for r in rows[4:])
    assert s.agent.h_frozen and type(s.agent.blend).__name__ == "ActionBiasing"
    frozen = s.agent.h.w.copy()
    s.agent.learn_feedback([s.agent.encode(0)], [0], [1.0], 1.0)
    np.testing.assert_array_equal(s.agent.h.w, frozen)
    train(cfg, tmp_path / "run", progress=False)
    assert len(evaluate(tmp_path / "run", episodes=2)) == 2
