"""Rankings (stage two of the human-feedback pipeline): the agent makes K attempts, a person ranks them best
to worst, and the rankings are recorded so a reward model (``tamer.reward_model``) can learn from them.

Parts with one call each, as ``imitation``'s preference comparisons, so a person and a simulated person are
interchangeable:

- ``collect_attempts(env, policy, k, rng)`` -> ``Query``: K ``Segment``s of (observation, action, reward),
  from a shared start (``start="shared"``: the same reset seed for every attempt, optionally after a shared
  replayed prefix) or cut from the policy's own episodes (``start="own"``); of M candidates, K are chosen at
  random or by the disagreement of a reward-model ensemble (``select_attempts``).
- a ranker, ``ranker(query, rng)`` -> ``Ranking``: ``SimulatedRanker`` (by the true return, by an oracle's
  agreement with the attempt's actions, or by a user's function; with BPref's knobs), ``RecordedRanker``
  (answers from a log), or a person's interface with the same call.
- ``RankingLog``: records each ranking (one CSV line) and the attempts it ranks (one ``.npz`` per query,
  written atomically before the line), and ``read_rankings`` reads them back, so a replay retrains the same r̂.

A ranking is a *weak order*: groups of tied attempts, best group first, written ``2>0=3>1``. Every pair of a
ranking is a training pair (``Ranking.pairs``): target 1 for "first better", 0.5 for a tie (BPref's
"equal" answer; a tie says the two are equally good, which is information, so it is kept, not dropped).
Human effort is counted separately in rankings, pairs and seconds (``TimeCost``).
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import gymnasium as gym
import numpy as np

from tamer.errors import ConfigError
from tamer.io import AppendLog, write_atomic

Policy = Callable[[Any], int]

# ------------------------------------------------------------------------------------------------ attempts


@dataclass(frozen=True, eq=False)
class Segment:
    """One attempt: T consecutive steps of one episode (a fixed-length clip, or the whole episode)."""

    obs: np.ndarray  # (T, *observation shape): the observation each action was taken in
    actions: np.ndarray  # (T,) int64
    rewards: np.ndarray  # (T,) float64, the env's own reward

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def env_return(self) -> float:
        return float(self.rewards.sum())


@dataclass(frozen=True, eq=False)
class Query:
    """K attempts to rank; ``seed`` is the reset seed they share (-1: cut from the policy's own episodes)."""

    id: int
    attempts: tuple[Segment, ...]
    seed: int = -1

    @property
    def lengths(self) -> list[int]:
        return [len(s) for s in self.attempts]


def _play(env: gym.Env, policy: Policy, rng, seed: int, limit: int, epsilon: float, forced=()) -> Segment:
    """One episode from ``reset(seed)``: the ``forced`` actions first, then the policy's (with probability
    ``epsilon`` a uniformly random one instead), until the episode ends or ``limit`` steps (0: no limit)."""
    n = int(env.action_space.n)  # type: ignore[attr-defined]
    obs, _ = env.reset(seed=seed)
    observations: list[np.ndarray] = []
    actions: list[int] = []
    rewards: list[float] = []
    done = False
    while not done and not (limit and len(actions) >= limit):
        t = len(actions)
        if t < len(forced):
            action = int(forced[t])
        elif epsilon and rng.random() < epsilon:
            action = int(rng.integers(n))
        else:
            action = int(policy(obs))
        observations.append(np.array(obs, copy=True))
        actions.append(action)
        obs, reward, terminated, truncated, _ = env.step(action)
        rewards.append(float(reward))
        done = terminated or truncated
    if not actions:
        raise ConfigError("an attempt took no step (the env ended at reset?)")
    return Segment(np.stack(observations), np.array(actions, dtype=np.int64), np.array(rewards))


def _cut(segment: Segment, start: int, length: int) -> Segment:
    end = start + length if length else len(segment)
    return Segment(segment.obs[start:end], segment.actions[start:end], segment.rewards[start:end])


def collect_attempts(
    env: gym.Env,
    policy: Policy,
    k: int,
    rng: np.random.Generator,
    *,
    query_id: int = 0,
    length: int = 0,
    start: str = "shared",
    seed: int | None = None,
    prefix: int = 0,
    epsilon: float = 0.0,
    candidates: int = 0,
    model=None,
) -> Query:
    """K attempts of ``policy`` (any callable obs -> action) for one query.

    - ``length``: steps per attempt; 0 = the whole episode. An episode that ends sooner gives a shorter one.
    - ``start="shared"``: every attempt from ``env.reset(seed)`` with one seed (``seed``, else drawn from
      ``rng``), so the K attempts answer the same situation; with ``prefix`` > 0 the first candidate's first
      ``prefix`` actions are replayed by the others and the attempts are the steps after them (a shared
      mid-episode state; refused if the env does not come back to the same observation). ``start="own"``: for
      envs that cannot be reset to a chosen state, each attempt is a random window of ``length`` steps of its
      own episode of the policy (each from a seed drawn from ``rng``).
    - ``epsilon``: probability of a uniformly random action per step; a deterministic policy (a greedy BC
      policy) from a shared start would otherwise make K identical attempts.
    - ``candidates`` M > K: M attempts are made and K chosen (``select_attempts``): by the disagreement of
      ``model`` (an ensemble with ``member_returns``), else at random.
    """
    if k < 2:
        raise ConfigError(f"a ranking needs at least 2 attempts, got k={k}")
    if start not in ("shared", "own"):
        raise ConfigError(f"unknown attempt start {start!r}; known: shared, own")
    m = max(k, candidates)
    if start == "shared":
        seed = int(rng.integers(2**31)) if seed is None else int(seed)
        limit = prefix + length if length else 0
        first = _play(env, policy, rng, seed, limit, epsilon)
        if prefix and len(first) <= prefix:
            raise ConfigError(f"the episode ended within the shared prefix of {prefix} steps")
        forced = first.actions[:prefix]
        runs = [first] + [_play(env, policy, rng, seed, limit, epsilon, forced) for _ in range(m - 1)]
        if prefix and any(
            len(r) <= prefix or not np.array_equal(r.obs[prefix], first.obs[prefix]) for r in runs
        ):
            raise ConfigError(
                "replaying the prefix did not reach the same state: use start='own' for this env"
            )
        attempts = [_cut(r, prefix, length) for r in runs]
    else:
        seed = -1
        attempts = []
        for _ in range(m):
            run = _play(env, policy, rng, int(rng.integers(2**31)), 0, epsilon)
            window = min(length, len(run)) if length else len(run)
            attempts.append(_cut(run, int(rng.integers(len(run) - window + 1)), window))
    chosen = select_attempts(attempts, k, rng, model) if m > k else np.arange(k)
    return Query(query_id, tuple(attempts[i] for i in chosen), seed)


def disagreement(model, segments: Sequence[Segment]) -> np.ndarray:
    """Per segment, the variance over ensemble members of its predicted return, each member's returns
    centred over the segments first (Bradley–Terry fixes r̂ only up to a constant per member, so raw
    returns would mix the members' arbitrary offsets into the spread)."""
    returns = np.asarray(model.member_returns(segments), dtype=np.float64)  # (members, segments)
    returns = returns - returns.mean(axis=1, keepdims=True)
    return returns.var(axis=0)


def select_attempts(segments: Sequence[Segment], k: int, rng: np.random.Generator, model=None) -> np.ndarray:
    """Indices (ascending) of the K of M segments to rank: the K with the largest ensemble disagreement
    (Christiano et al. 2017) where ``model`` has two or more members, else K at random."""
    if model is None or getattr(model, "n_members", 1) < 2:
        return np.sort(rng.choice(len(segments), size=k, replace=False))
    spread = disagreement(model, segments)
    return np.sort(np.lexsort((rng.random(len(spread)), -spread))[:k])  # equal spreads in random order


# ------------------------------------------------------------------------------------------------ rankings


class Ranking(NamedTuple):
    """One person's answer to a query: ``order`` holds groups of tied attempt indices, best group first;
    a skipped query has an empty order. ``seconds``: the person's time on it; ``time``: when it was given."""

    query: int
    order: tuple[tuple[int, ...], ...]
    skipped: bool = False
    seconds: float = 0.0
    time: float = 0.0

    def pairs(self) -> list[tuple[int, int, float]]:
        """All K(K−1)/2 pairs (i, j, P(i better than j)) in ranking order: 1 across groups, 0.5 within one."""
        flat = [(i, g) for g, group in enumerate(self.order) for i in group]
        return [(i, j, 1.0 if gi != gj else 0.5) for p, (i, gi) in enumerate(flat) for j, gj in flat[p + 1 :]]

    def text(self) -> str:
        return ">".join("=".join(str(i) for i in group) for group in self.order)


def parse_order(text: str) -> tuple[tuple[int, ...], ...]:
    """``"2>0=3>1"`` -> ((2,), (0, 3), (1,)); ``""`` -> ()."""
    if not text.strip():
        return ()
    order = tuple(tuple(sorted(int(i) for i in group.split("="))) for group in text.split(">"))
    flat = [i for group in order for i in group]
    if len(set(flat)) != len(flat) or min(flat) < 0:
        raise ValueError(f"ranking {text!r} names an attempt twice or a negative one")
    return order


class RankedQuery(NamedTuple):
    query: Query
    ranking: Ranking


class Ranker(Protocol):
    """A person, a simulated person or a recording: ranks a query's attempts."""

    def __call__(self, query: Query, rng: np.random.Generator) -> Ranking: ...


# ------------------------------------------------------------------------------------------ simulated rankers


@dataclass(frozen=True)
class TimeCost:
    """Seconds a person needs for one query: ``base + per_attempt·K + Σ_i T_i / step_rate``: reading the
    query and giving the answer, placing each attempt in the order, and watching every attempt at the
    teaching pace (``step_rate`` steps/s, the demonstrations' default). The defaults make a pair of 15-step
    clips 1 + 1 + 3 = 5 s, the upper end of the 3-5 s per comparison Christiano et al. (2017) report."""

    base: float = 1.0
    per_attempt: float = 0.5
    step_rate: float = 10.0

    def __call__(self, lengths: Sequence[int]) -> float:
        return self.base + self.per_attempt * len(lengths) + float(sum(lengths)) / self.step_rate


def myopic_weights(n: int, gamma: float) -> np.ndarray:
    """γ^(T−1−t) for t = 0..T−1: the last step weighs 1, earlier ones less (BPref's myopic teacher)."""
    return gamma ** np.arange(n - 1, -1, -1, dtype=np.float64)


def true_return(segment: Segment, gamma: float = 1.0) -> float:
    """The env's return of the attempt, Σ_t γ^(T−1−t) r_t."""
    return float(myopic_weights(len(segment), gamma) @ segment.rewards)


class OracleAgreement:
    """The (myopically weighted) fraction of steps where the oracle approves the action taken: a value for
    envs whose returns tie (Mountain Car pays −1 every step of a fixed-length clip)."""

    def __init__(self, oracle: Callable[[Any], np.ndarray]):
        self.oracle = oracle

    def __call__(self, segment: Segment, gamma: float = 1.0) -> float:
        approved = np.array(
            [bool(self.oracle(o)[a]) for o, a in zip(segment.obs, segment.actions, strict=True)], float
        )
        w = myopic_weights(len(segment), gamma)
        return float(w @ approved / w.sum())


def tie_groups(values: np.ndarray, margin: float) -> list[np.ndarray]:
    """Attempts whose values differ by less than ``margin`` are tied, chained (single linkage: a~b and b~c
    tie all three), so the ties form a weak order. Groups in ascending value; margin 0: no ties."""
    order = np.argsort(values, kind="stable")
    if margin <= 0:
        return [order[i : i + 1] for i in range(len(order))]
    cuts = np.flatnonzero(np.diff(values[order]) >= margin) + 1
    return np.split(order, cuts)


@dataclass
class SimulatedRanker:
    """A simulated person who ranks attempts by ``value(segment, gamma)``, with BPref's knobs (Lee et al.
    2021), applied in this order:

    - ``skip_below``: a query whose every attempt is valued below it is skipped (nobody can tell which of
      several failures is better);
    - ``error_rate``: with this probability the answer is a uniformly random strict ranking;
    - ``tie_margin``: attempts valued closer than this are tied (``tie_groups``);
    - ``beta``: rationality; the groups are ordered by a Plackett–Luce draw with scores β·value (for two
      attempts, P(a first) = σ(β(v_a − v_b)), the Bradley–Terry choice); β = inf ranks by value, equal
      values in random order; β = 0 ranks at random;
    - ``gamma``: myopia, step t of T weighted γ^(T−1−t) (1 = not myopic);
    - ``cost``: the seconds each query takes (``TimeCost``).
    """

    value: Callable[[Segment, float], float] = true_return
    beta: float = math.inf
    error_rate: float = 0.0
    tie_margin: float = 0.0
    skip_below: float = -math.inf
    gamma: float = 1.0
    cost: TimeCost = field(default_factory=TimeCost)

    def __post_init__(self):
        if not (self.beta >= 0 and 0.0 <= self.error_rate <= 1.0 and self.tie_margin >= 0):
            raise ConfigError("ranker needs beta >= 0, 0 <= error_rate <= 1 and tie_margin >= 0")
        if not 0.0 < self.gamma <= 1.0:
            raise ConfigError(f"ranker myopia gamma must be in (0, 1], got {self.gamma}")

    def values(self, query: Query) -> np.ndarray:
        return np.array([self.value(s, self.gamma) for s in query.attempts], dtype=np.float64)

    def __call__(self, query: Query, rng: np.random.Generator) -> Ranking:
        values, seconds = self.values(query), self.cost(query.lengths)
        if np.all(values < self.skip_below):
            return Ranking(query.id, (), True, seconds)
        if self.error_rate and rng.random() < self.error_rate:
            return Ranking(query.id, tuple((int(i),) for i in rng.permutation(len(values))), False, seconds)
        groups = tie_groups(values, self.tie_margin)
        scores = np.array([values[g].mean() for g in groups])
        if math.isinf(self.beta):
            ranked = np.lexsort((rng.random(len(groups)), -scores))  # equal scores in random order
        else:  # Plackett–Luce by the Gumbel-max trick: argsort of β·s + Gumbel noise
            ranked = np.argsort(-(self.beta * scores + rng.gumbel(size=len(groups))), kind="stable")
        order = tuple(tuple(sorted(int(i) for i in groups[g])) for g in ranked)
        return Ranking(query.id, order, False, seconds)


def make_ranker(
    kind: str = "return", env: gym.Env | None = None, oracle: str = "", **knobs
) -> SimulatedRanker:
    """A simulated ranker by ``kind``: ``return`` (the env's true return), ``oracle`` (agreement with
    ``tamer.oracles.make_oracle(oracle, env)``: the teacher and demonstrator's oracles), or
    ``package.module:function`` (a user's ``function(segment) -> float``; myopia does not apply to it).
    ``knobs`` are ``SimulatedRanker``'s (beta, error_rate, tie_margin, skip_below, gamma, cost)."""
    value: Callable[[Segment, float], float]
    if kind == "return":
        value = true_return
    elif kind == "oracle":
        from tamer.oracles import make_oracle

        if env is None:
            raise ConfigError("an oracle ranker needs the env its oracle judges")
        value = OracleAgreement(make_oracle(oracle, env))
    elif ":" in kind:
        from tamer.plugins import load_object

        fn = load_object(kind, "ranking value")
        if not callable(fn):
            raise ConfigError(
                f"ranking value {kind!r} is not callable (expected a function segment -> float)"
            )

        def value(segment: Segment, gamma: float = 1.0) -> float:
            return float(fn(segment))

    else:
        raise ConfigError(f"unknown ranker {kind!r}; known: return, oracle, package.module:function")
    return SimulatedRanker(value, **knobs)


class RecordedRanker:
    """Answers each query with the ranking recorded for its id (a replayed person)."""

    def __init__(self, rankings: Sequence[Ranking]):
        self.by_query = {r.query: r for r in rankings}

    def __call__(self, query: Query, rng: np.random.Generator | None = None) -> Ranking:
        try:
            return self.by_query[query.id]
        except KeyError:
            raise ConfigError(f"no recorded ranking for query {query.id}") from None


# ------------------------------------------------------------------------------------------------ recording

LOG_NAME, QUERIES = "rankings.csv", "queries"
HEADER = "time,query,ranking,skipped,seconds"


def query_path(folder: Path, query_id: int) -> Path:
    return Path(folder) / QUERIES / f"q{query_id:06d}.npz"


def save_query(query: Query, path: Path) -> None:
    def write(tmp: Path) -> None:
        a = query.attempts
        np.savez(
            tmp,
            obs=np.concatenate([s.obs for s in a]),
            actions=np.concatenate([s.actions for s in a]),
            rewards=np.concatenate([s.rewards for s in a]),
            lengths=np.array(query.lengths, dtype=np.int64),
            id=query.id,
            seed=query.seed,
        )

    write_atomic(Path(path), write)


def load_query(path: Path) -> Query:
    try:
        with np.load(path) as d:
            obs, actions, rewards = d["obs"], d["actions"].astype(np.int64), d["rewards"].astype(np.float64)
            lengths, qid, seed = d["lengths"], int(d["id"]), int(d["seed"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise ConfigError(f"cannot read query {path}: {e}") from None
    if not len(obs) == len(actions) == len(rewards) == int(lengths.sum()):
        raise ConfigError(f"query {path}: obs, actions, rewards and lengths disagree")
    cuts = np.cumsum(lengths)[:-1]
    parts = zip(np.split(obs, cuts), np.split(actions, cuts), np.split(rewards, cuts), strict=True)
    return Query(qid, tuple(Segment(o, a, r) for o, a, r in parts), seed)


class RankingLog:
    """Records rankings in ``folder``: ``queries/qNNNNNN.npz`` per query (atomic, written first) and one
    flushed line of ``rankings.csv`` per ranking (``time,query,ranking,skipped,seconds``), so a crash loses
    at most the ranking being written. ``append=True`` continues a log (cutting a torn last line first).
    ``time`` is the ranking's own when it has one, else the sum of the recorded human seconds."""

    def __init__(self, folder: Path, append: bool = False):
        self.folder = Path(folder)
        (self.folder / QUERIES).mkdir(parents=True, exist_ok=True)
        self.log = AppendLog(self.folder / LOG_NAME, HEADER, append=append)
        self.clock = sum(r.seconds for r in read_log(self.folder / LOG_NAME)) if append else 0.0

    def record(self, query: Query, ranking: Ranking) -> Ranking:
        if ranking.query != query.id:
            raise ConfigError(f"ranking of query {ranking.query} recorded with query {query.id}")
        save_query(query, query_path(self.folder, query.id))
        self.clock += ranking.seconds
        ranking = ranking._replace(time=ranking.time or self.clock)
        self.log.write_line(
            f"{ranking.time:.6f},{query.id},{ranking.text()},{int(ranking.skipped)},{ranking.seconds:.6f}"
        )
        return ranking

    def close(self) -> None:
        self.log.close()

    def __enter__(self) -> RankingLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_log(path: Path) -> list[Ranking]:
    """The rankings of a ``rankings.csv``; a torn last line (no newline: the writer died) is ignored, any
    other bad line is a ConfigError naming it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read rankings {path}: {e}") from None
    lines = text.split("\n")[:-1]  # the piece after the last newline is empty or torn
    if not lines or lines[0] != HEADER:
        raise ConfigError(f"{path} is not a rankings log (header {HEADER!r})")
    rankings = []
    for n, line in enumerate(lines[1:], start=2):
        try:
            time, query, order, skipped, seconds = line.split(",")
            ranking = Ranking(int(query), parse_order(order), bool(int(skipped)), float(seconds), float(time))
        except ValueError as e:
            raise ConfigError(f"{path}, line {n}: bad ranking {line!r} ({e})") from None
        rankings.append(ranking)
    return rankings


def read_rankings(folder: Path) -> list[RankedQuery]:
    """Every recorded ranking with the query it ranks, in the order recorded."""
    folder = Path(folder)
    out = []
    for ranking in read_log(folder / LOG_NAME):
        path = query_path(folder, ranking.query)
        if not path.is_file():
            raise ConfigError(f"{folder}: ranking of query {ranking.query} has no {path.name}")
        query = load_query(path)
        if any(i >= len(query.attempts) for g in ranking.order for i in g):
            raise ConfigError(f"{folder}: ranking of query {ranking.query} names an attempt it lacks")
        out.append(RankedQuery(query, ranking))
    return out
