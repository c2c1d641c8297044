"""β schedules: how much weight a blend gives Ĥ, and how that weight fades (Knox & Stone 2010, 2012).

A schedule answers ``value(hx)`` (β in the state whose Ĥ input is ``hx``) and is told of every learning step,
every episode end and every feedback. Most ignore the state; ``region`` keeps β local to where the teacher
gave feedback recently, with eligibility traces over the feature space, as in the original TAMER+RL code.
"""

from __future__ import annotations

import numpy as np

from tamer.errors import ConfigError
from tamer.plugins import construct, is_plugin, require_methods


class BetaSchedule:
    """Constant β; the subclasses override ``value`` and the hooks they need."""

    def __init__(self, beta: float, decay: float = 1.0):
        self.beta, self.decay = beta, decay
        self.steps = self.episodes = self.since_feedback = 0

    def value(self, hx=None) -> float:
        return self.beta

    def on_step(self) -> None:
        self.steps += 1
        self.since_feedback += 1

    def on_episode(self) -> None:
        self.episodes += 1

    def on_feedback(self, hxs) -> None:
        self.since_feedback = 0

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"counters": np.array([self.steps, self.episodes, self.since_feedback])}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.steps, self.episodes, self.since_feedback = (int(v) for v in state["counters"])


class EpisodeExp(BetaSchedule):
    """β · decay^episode (decay 1 = constant)."""

    def value(self, hx=None) -> float:
        return self.beta * self.decay**self.episodes


class EpisodeLinear(BetaSchedule):
    """max(0, β − decay · episode)."""

    def value(self, hx=None) -> float:
        return max(0.0, self.beta - self.decay * self.episodes)


class StepExp(BetaSchedule):
    """β · decay^step, counting learning steps over the whole run."""

    def value(self, hx=None) -> float:
        return self.beta * self.decay**self.steps


class FeedbackDecay(BetaSchedule):
    """β · decay^(steps since the last feedback): Ĥ's influence falls while the teacher is silent and comes
    back when feedback resumes."""

    def value(self, hx=None) -> float:
        return self.beta * self.decay**self.since_feedback


class RegionTraces(BetaSchedule):
    """β(s) = β · mean trace of s's active features. A feedback sets the traces of the features of the steps
    it credits to 1; traces decay by ``decay`` per step. Decay is applied lazily (each trace remembers the
    step it was set), so a step costs O(active features)."""

    def __init__(self, beta: float, decay: float, n_features: int):
        super().__init__(beta, decay)
        self.trace = np.zeros(n_features)
        self.set_at = np.zeros(n_features, dtype=np.int64)

    def value(self, hx=None) -> float:
        if hx is None:
            return 0.0
        idx, val = hx
        current = self.trace[idx] * self.decay ** (self.steps - self.set_at[idx])
        return self.beta * float(current @ val) / float(val.sum())

    def on_feedback(self, hxs) -> None:
        super().on_feedback(hxs)
        for idx, _ in hxs:
            self.trace[idx] = 1.0
            self.set_at[idx] = self.steps

    def state_dict(self) -> dict[str, np.ndarray]:
        return {**super().state_dict(), "trace": self.trace.copy(), "set_at": self.set_at.copy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        super().load_state_dict(state)
        self.trace[...], self.set_at[...] = state["trace"], state["set_at"]


SCHEDULES = {
    "constant": BetaSchedule,
    "episode_exp": EpisodeExp,
    "episode_linear": EpisodeLinear,
    "step_exp": StepExp,
    "feedback": FeedbackDecay,
    "region": RegionTraces,
}


def make_schedule(kind: str, beta: float, decay: float, n_features: int | None = None) -> BetaSchedule:
    """A schedule by name, or a user's class as ``package.module:ClassName``: built with the ``beta``,
    ``decay`` and ``n_features`` its signature asks for (plus keyword arguments given in the spec); it needs
    ``value(hx)`` and the hooks of ``BetaSchedule`` (subclass it for the defaults)."""
    if is_plugin(kind):
        schedule = construct(kind, "beta schedule", beta=beta, decay=decay, n_features=n_features)
        hooks = ("value", "on_step", "on_episode", "on_feedback")
        return require_methods(schedule, hooks, f"beta schedule {kind!r}", " (subclass BetaSchedule)")
    if kind not in SCHEDULES:
        raise ConfigError(
            f"unknown beta schedule {kind!r}; known: {', '.join(SCHEDULES)}, or package.module:ClassName"
        )
    if kind == "region":
        if n_features is None:
            raise ConfigError("the region beta schedule needs a linear Ĥ over features (traces live there)")
        return RegionTraces(beta, decay, n_features)
    return SCHEDULES[kind](beta, decay)
