"""The parts of the rankings pipeline (``tamer.pipeline``) besides the pipeline itself, each usable alone:
the round schedule, the three sources of attempts (a policy's own play, PPO's rollouts, a recording), PPO's
sampling policy as a function, and the reward hook PPO learns from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from tamer.callbacks import Callback
from tamer.errors import ConfigError
from tamer.rankings import Query, Ranking, Segment, collect_attempts, select_attempts

if TYPE_CHECKING:
    from tamer.stepper import Step

Policy = Callable[[Any], int]


def pairs_of(ranking: Ranking) -> int:
    """Pairs a ranking orders, ties included (a tie is an answer: the two are equal); a skip orders none."""
    if ranking.skipped:
        return 0
    n = sum(len(group) for group in ranking.order)
    return n * (n - 1) // 2


# ------------------------------------------------------------------------------------------------ schedule


@dataclass(frozen=True)
class RoundSchedule:
    """``queries[r]``: queries asked in round r; ``after[r]``: PPO rollouts finished before round r comes
    (0 for round 0: before PPO's first step)."""

    queries: tuple[int, ...]
    after: tuple[int, ...]

    @property
    def rounds(self) -> int:
        return len(self.queries)

    @staticmethod
    def shares(total: int, weights: Sequence[float] | np.ndarray) -> tuple[int, ...]:
        """``total`` split in proportion to ``weights``, in whole numbers summing to ``total`` (largest
        remainders first, earlier rounds first among equals)."""
        w = np.asarray(weights, dtype=np.float64)
        exact = total * w / w.sum()
        base = np.floor(exact).astype(np.int64)
        left = total - int(base.sum())
        order = np.lexsort((np.arange(len(w)), -(exact - base)))
        base[order[:left]] += 1
        return tuple(int(v) for v in base)

    @classmethod
    def make(
        cls, rounds: int, rollouts: int, k: int, per_round: int = 0, pairs: int = 0, decay: float = 0.0
    ) -> RoundSchedule:
        """``per_round`` queries every round, or a budget of ``pairs`` (K(K−1)/2 per query) split over the
        rounds ∝ 1/(1 + decay·r); the rounds spread evenly over PPO's ``rollouts``."""
        if pairs:
            per_query = k * (k - 1) // 2
            total = pairs // per_query
            if total < 1:
                raise ConfigError(
                    f"--rank-pairs {pairs} buys no query of {k} attempts ({per_query} pairs each)"
                )
            queries = cls.shares(total, 1.0 / (1.0 + decay * np.arange(rounds)))
        else:
            queries = (per_round,) * rounds
        after = tuple(int(round(r * rollouts / rounds)) for r in range(rounds))
        return cls(queries, after)


# ------------------------------------------------------------------------------------------------ attempts


class StepCounter(gym.Wrapper):
    """Counts the env steps taken through it (the attempts' cost in env steps)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.steps = 0

    def step(self, action):
        self.steps += 1
        return self.env.step(action)


class PolicyAttempts:
    """K attempts per query of whatever policy it is given (``tamer.rankings.collect_attempts``, with the
    run's ``--rank-*`` settings), from its own env and random stream; ``steps`` counts the env steps taken."""

    def __init__(
        self,
        env: gym.Env,
        k: int,
        rng: np.random.Generator,
        length: int = 0,
        start: str = "shared",
        epsilon: float = 0.0,
        candidates: int = 0,
    ):
        self.env = StepCounter(env)
        self.k, self.rng, self.length, self.start = k, rng, length, start
        self.epsilon, self.candidates = epsilon, candidates

    @property
    def steps(self) -> int:
        return self.env.steps

    def __call__(self, policy: Policy, n: int, first_id: int = 0, model=None) -> list[Query]:
        return [
            collect_attempts(
                self.env,
                policy,
                self.k,
                self.rng,
                query_id=first_id + i,
                length=self.length,
                start=self.start,
                epsilon=self.epsilon,
                candidates=self.candidates,
                model=model,
            )  # fmt: skip
            for i in range(n)
        ]

    def close(self) -> None:
        self.env.close()


class RolloutAttempts:
    """Attempts cut from the episodes PPO plays anyway (``--rank-start rollouts``), so ranking costs no env
    steps of its own, as Christiano et al. (2017) cut their clips from the agent's own trajectories. The
    vectorised loop's steps are handed to ``observe`` (env by env); each finished episode joins the pool of
    the round, and a query is K of the pool's episodes (whole, or a random window of ``length`` steps of
    each), drawn at random, or the K of M candidates the reward ensemble disagrees on most. Each round
    draws from the episodes finished since the one before. While fewer than K are there (round 0, before
    PPO's first step), the policy plays episodes in ``env`` (its steps counted in ``steps``) until there are
    K and ``warmup`` steps of them: about what a round's pool holds later."""

    def __init__(
        self,
        env: gym.Env,
        k: int,
        rng: np.random.Generator,
        length: int = 0,
        candidates: int = 0,
        warmup: int = 0,
    ):
        self.env = StepCounter(env)
        self.k, self.rng, self.length, self.candidates, self.warmup = k, rng, length, candidates, warmup
        self.playing: dict[int, list[tuple[Any, int, float]]] = {}  # env -> the steps of its episode so far
        self.pool: list[tuple[Segment, bool]] = []  # finished episodes, and whether each terminated

    @property
    def steps(self) -> int:
        return self.env.steps

    def observe(self, env: int, step: Step) -> None:
        self.add(env, step.obs, step.action, step.reward, step.terminated, step.truncated)

    def add(self, env: int, obs, action: int, reward: float, terminated: bool, truncated: bool) -> None:
        steps = self.playing.setdefault(env, [])
        steps.append((obs, action, reward))
        if terminated or truncated:
            o, a, r = zip(*steps, strict=True)
            self.pool.append(
                (Segment(np.stack(o), np.array(a, dtype=np.int64), np.array(r)), bool(terminated))
            )
            self.playing[env] = []

    def play(self, policy: Policy) -> None:
        """Episodes of ``policy`` into the pool until it holds K of them and ``warmup`` steps were taken."""
        start = self.env.steps
        while len(self.pool) < self.k or self.env.steps - start < self.warmup:
            obs, _ = self.env.reset(seed=int(self.rng.integers(2**31)))
            done = False
            while not done:
                action = int(policy(obs))
                obs_next, reward, terminated, truncated, _ = self.env.step(action)
                self.add(-1, np.array(obs, copy=True), action, float(reward), terminated, truncated)
                obs, done = obs_next, terminated or truncated

    def window(self, segment: Segment, terminated: bool) -> Segment:
        """The whole episode, or ``length`` steps of it from a random start. An episode that ended in
        failure (terminated) may end a window early (start anywhere: the window shows the episode's end,
        and is shorter); one cut by the time limit gives full windows only (its end is no event)."""
        if not self.length or len(segment) <= self.length and not terminated:
            return segment
        last = len(segment) - 1 if terminated else len(segment) - self.length
        start = int(self.rng.integers(last + 1))
        end = start + self.length
        return Segment(segment.obs[start:end], segment.actions[start:end], segment.rewards[start:end])

    def __call__(self, policy: Policy, n: int, first_id: int = 0, model=None) -> list[Query]:
        if n and len(self.pool) < self.k:
            self.play(policy)
        pool, self.pool = self.pool, []
        m = min(max(self.k, self.candidates), len(pool))
        queries = []
        for q in range(n):
            segments = [self.window(*pool[i]) for i in self.rng.choice(len(pool), size=m, replace=False)]
            chosen = select_attempts(segments, self.k, self.rng, model) if m > self.k else range(self.k)
            queries.append(Query(first_id + q, tuple(segments[i] for i in chosen)))
        return queries

    def close(self) -> None:
        self.env.close()


class RecordedAttempts:
    """The queries of a ranking log, in the order recorded, the next ``n`` at each call (the policy is not
    asked: the attempts were made when the log was). When the log runs out, no more queries."""

    steps = 0

    def __init__(self, queries: Sequence[Query]):
        self.queries, self.next = list(queries), 0

    def __call__(self, policy: Policy | None, n: int, first_id: int = 0, model=None) -> list[Query]:
        out = self.queries[self.next : self.next + n]
        self.next += len(out)
        return out

    def close(self) -> None:
        pass


def sampling_policy(ppo, rng: np.random.Generator) -> Policy:
    """PPO's sampling policy as a function obs -> action, drawing from ``rng`` (not the learner's own
    stream, so PPO's run does not depend on how many attempts were made)."""
    from tamer.ppo_parts import sample

    def act(obs) -> int:
        return int(sample(ppo.log_probs(np.asarray(ppo.encoder(obs))[None]), rng)[0])

    return act


# ------------------------------------------------------------------------------------------------ reward


class LearnedReward:
    """The reward PPO learns from, for a batch of steps: r̂(s, a) (``beta`` 0), or the env's reward +
    β·r̂(s, a) with β from a ``tamer.schedules`` schedule (told of every step, episode and round)."""

    def __init__(self, model, beta: float = 0.0, schedule=None):
        self.model, self.schedule = model, schedule if beta else None

    @property
    def beta(self) -> float:
        return float(self.schedule.value()) if self.schedule is not None else 0.0

    def __call__(self, obs, actions, env_rewards) -> np.ndarray:
        r_hat = self.model(np.asarray(obs), np.asarray(actions))
        if self.schedule is None:
            return r_hat
        out = np.asarray(env_rewards, dtype=np.float64) + self.beta * r_hat
        for _ in range(len(r_hat)):
            self.schedule.on_step()
        return out

    def on_episode(self) -> None:
        if self.schedule is not None:
            self.schedule.on_episode()

    def on_round(self) -> None:
        if self.schedule is not None:
            self.schedule.on_feedback(())


class InheritedEffort(Callback):
    """A run that starts from another run's policy (``--init RUN``) carries that run's human effort: BC →
    PPO cost the demonstrations too. At the run's start, the ``--init`` run's effort totals (its metrics'
    ``tamer.session.EFFORT`` columns) are added to the session's, so they come out in the first metrics
    row, and the run's totals on a human-effort axis are those of every stage that made it."""

    def on_run_start(self, s) -> None:
        import csv

        path = Path(s.cfg.init) / "metrics.csv"
        if not path.is_file():
            return
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        for kind in s.effort:
            s.effort[kind] += sum(float(r.get(kind) or 0.0) for r in rows)
