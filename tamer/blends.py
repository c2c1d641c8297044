"""Blending policies: how an agent combines Ĥ (the human reward model) and Q (the MDP reward learner).

A blend chooses an action from Q and Ĥ (``act``) and decides what the RL learner learns from (``learn``).
The techniques are those of Knox & Stone (AAMAS 2010, 2012); β is the agent's schedule value in the state.
A user's own blend is any class with this interface, named as ``package.module:ClassName``.
"""

from __future__ import annotations

import numpy as np

from tamer.agents import greedy
from tamer.errors import ConfigError
from tamer.plugins import construct, is_plugin, require_methods
from tamer.rl import epsilon_greedy

_F64 = np.dtype(np.float64)


class Blend:
    """Default behaviour: act ε-greedily on Q, learn Q from the MDP reward. Blends override what differs."""

    needs_h, needs_rl, extra_actions = True, True, 0
    policy_rl = False  # works with a policy learner (--rl ppo: acts from its own policy, has no Q values)

    def act(self, agent, x) -> int:
        own_policy = getattr(agent.rl, "act", None)
        if own_policy is not None:  # a policy learner samples its own action; value learners: ε-greedy on Q
            return own_policy(x[1], agent.rng)
        return epsilon_greedy(agent.q_values(x), agent.rl.epsilon, agent.rng)

    def learn(self, agent, x, action, reward, x_next, action_next, terminated) -> None:
        agent.rl.update(x[1], action, reward, x_next[1], action_next, terminated)

    def teacher_left(self, agent) -> None:
        pass


class Tamer(Blend):
    """Ĥ only: ε-greedy on Ĥ; the MDP reward is ignored (Knox & Stone 2009)."""

    needs_rl = False

    def act(self, agent, x) -> int:
        return epsilon_greedy(agent.h_values(x), agent.epsilon, agent.rng)

    def learn(self, agent, x, action, reward, x_next, action_next, terminated) -> None:
        pass


class RL(Blend):
    """Q only: the plain RL baseline; no Ĥ is built and feedback is ignored."""

    needs_h, policy_rl = False, True


class RewardShaping(Blend):
    """The RL learner learns from R' = R + β·Ĥ(s, a)."""

    policy_rl = True

    def learn(self, agent, x, action, reward, x_next, action_next, terminated) -> None:
        shaped = reward + agent.beta_at(x) * agent.h_values(x)[action]
        agent.rl.update(x[1], action, shaped, x_next[1], action_next, terminated)


def learn_residual(agent, x, action, reward, x_next, action_next, terminated, w, w_next):
    """Q learns the residual of Q + w·Ĥ: the TD error adds w·Ĥ(s, a) and w_next·Ĥ(s', ·) to Q's values.
    Returns (δ, Ĥ(s, ·))."""
    _, h = agent.values(x)
    _, h_next = agent.values(x_next)
    offset, offset_next = w * h[action], w_next * h_next
    delta = agent.rl.update(x[1], action, reward, x_next[1], action_next, terminated, offset, offset_next)
    return delta, h


class QAugmentation(Blend):
    """Act and bootstrap on Q'(s, a) = Q(s, a) + β·Ĥ(s, a); Q learns the residual."""

    def act(self, agent, x) -> int:
        q, h = agent.values(x)
        return epsilon_greedy(biased(q, agent.beta_at(x), h), agent.rl.epsilon, agent.rng)

    def learn(self, agent, x, action, reward, x_next, action_next, terminated) -> None:
        learn_residual(
            agent, x, action, reward, x_next, action_next, terminated, agent.beta_at(x), agent.beta_at(x_next)
        )


def biased(q: np.ndarray, beta, h: np.ndarray):
    """Q + β·Ĥ; for a float β and float64 values as a list (what ``greedy`` reads): for a handful of actions
    plain Python does the same two IEEE operations per action faster than two numpy calls. (Networks' float32
    values stay with numpy, which computes them in float32.)"""
    # (``is not _F64``: an identity test, cheaper than comparing dtypes; a float64 dtype that is not the
    # canonical object takes numpy's way, which computes the same values)
    if type(beta) is not float or q.dtype is not _F64 or h.dtype is not _F64:
        return q + beta * h
    return [qa + beta * ha for qa, ha in zip(q.tolist(), h.tolist(), strict=True)]


class ActionBiasing(Blend):
    """Q + β·Ĥ only when choosing actions; Q is learned from R alone."""

    def act(self, agent, x) -> int:
        q, h = agent.values(x)
        return epsilon_greedy(biased(q, agent.beta_at(x), h), agent.rl.epsilon, agent.rng)


class ControlSharing(Blend):
    """With probability min(β, 1) take argmax Ĥ, otherwise the RL learner's ε-greedy choice."""

    def act(self, agent, x) -> int:
        if agent.rng.random() < min(agent.beta_at(x), 1.0):
            return greedy(agent.h_values(x), agent.rng)
        return super().act(agent, x)


class PotentialShaping(Blend):
    """R' = R + β·(γΦ(s') − Φ(s)) with Φ(s) = max_a Ĥ(s, a), Φ(terminal) = 0: shaping that leaves the
    optimal policy unchanged (Ng et al. 1999)."""

    policy_rl = True

    def learn(self, agent, x, action, reward, x_next, action_next, terminated) -> None:
        phi = agent.h_values(x).max()
        phi_next = 0.0 if terminated else agent.h_values(x_next).max()
        shaped = reward + agent.beta_at(x) * (agent.rl.gamma * phi_next - phi)
        agent.rl.update(x[1], action, shaped, x_next[1], action_next, terminated)


class HFeature(Blend):
    """Ĥ(s, a) as an extra feature of Q: Q'(s, a) = Q(s, a) + u·Ĥ(s, a), its weight u learned by the same TD
    error as Q's weights; u starts at β (the schedule's first value)."""

    def __init__(self):
        self.u = None

    def weight(self, agent) -> float:
        if self.u is None:
            self.u = agent.schedule.beta
        return self.u

    def act(self, agent, x) -> int:
        q, h = agent.values(x)
        return epsilon_greedy(q + self.weight(agent) * h, agent.rl.epsilon, agent.rng)

    def learn(self, agent, x, action, reward, x_next, action_next, terminated) -> None:
        u = self.weight(agent)
        delta, h = learn_residual(agent, x, action, reward, x_next, action_next, terminated, u, u)
        val = x[1].val
        self.u = u + agent.rl.lr * delta * h[action] / (val @ val + h[action] ** 2)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"u": np.array(np.nan if self.u is None else self.u)}

    def load_state_dict(self, state) -> None:
        self.u = None if np.isnan(state["u"]) else float(state["u"])


class ExtraAction(Blend):
    """One more action for the RL learner, "do what Ĥ says" (argmax Ĥ); β biases its choice."""

    extra_actions = 1

    def __init__(self):
        self.rl_actions = [0, 0]  # the learner's own choices for the previous and the current step

    def act(self, agent, x) -> int:
        q = agent.q_values(x)
        q[-1] += agent.beta_at(x)
        choice = epsilon_greedy(q, agent.rl.epsilon, agent.rng)
        self.rl_actions = [self.rl_actions[1], choice]
        return greedy(agent.h_values(x), agent.rng) if choice == agent.n_actions else choice

    def learn(self, agent, x, action, reward, x_next, action_next, terminated) -> None:
        taken, following = self.rl_actions if action_next is not None else (self.rl_actions[1], None)
        agent.rl.update(x[1], taken, reward, x_next[1], following, terminated)


class QInit(Blend):
    """Q initialised from Ĥ: when the teacher leaves (the start of the RL phase in sequential mode, or
    episode ``leave_after`` in simultaneous mode) β·Ĥ's weights, with β as configured before any decay, are
    added to Q's. Needs both linear over the same features. Until then it acts like plain RL."""

    needs_linear = True

    def teacher_left(self, agent) -> None:
        agent.rl.w += agent.schedule.beta * agent.h.w
        agent.rl.invalidate()


class HAsReward(Blend):
    """The RL learner learns from β·Ĥ(s, a) alone, ignoring the MDP reward: non-myopic TAMER
    (Knox & Stone 2013) when γ > 0."""

    policy_rl = True

    def learn(self, agent, x, action, reward, x_next, action_next, terminated) -> None:
        reward_h = agent.beta_at(x) * agent.h_values(x)[action]
        agent.rl.update(x[1], action, reward_h, x_next[1], action_next, terminated)


BLENDS: dict[str, type] = {
    "tamer": Tamer,
    "rl": RL,
    "reward_shaping": RewardShaping,
    "q_augmentation": QAugmentation,
    "action_biasing": ActionBiasing,
    "control_sharing": ControlSharing,
    "potential_shaping": PotentialShaping,
    "h_feature": HFeature,
    "extra_action": ExtraAction,
    "q_init": QInit,
    "h_as_reward": HAsReward,
}


def make_blend(name: str):
    """A blend by registered name, or a user's class as ``package.module:ClassName`` (optionally with
    keyword arguments: ``package.module:ClassName(weight=0.5)``)."""
    known = ", ".join(BLENDS)
    if name in BLENDS:
        return BLENDS[name]()
    if not is_plugin(name):
        raise ConfigError(f"unknown blend {name!r}; known: {known}, or package.module:ClassName")
    try:
        blend = construct(name, "blend")
    except ConfigError as e:
        raise ConfigError(f"{e}; known: {known}") from None
    return require_methods(blend, ("act", "learn"), f"blend {name!r}", f"; known: {known}")
