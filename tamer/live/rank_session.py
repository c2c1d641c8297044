"""Ranking sessions (``tamer rank``) without the window: the settings (``RankConfig``), the ranking a person
types (``RankInput``), the attempts of each query (``Attempts``), the session folder (``RankFolder``) and
the replay that retrains the reward model from the logged rankings (``replay_rankings``).

**Keys → ranking.** The K attempts are labelled 1..K on screen (left to right, top to bottom) and the
person presses their numbers best first; the log holds 0-based attempt indices (label − 1), so pressing
2, 1, 3 logs ``1>0>2`` (``tamer.rankings``' weak-order text). ``=`` between two numbers ties them (1 = 3 2
logs ``0=2>1``); the K-th number or Enter submits, Enter with attempts left unnumbered puts them last, tied
(2 Enter with K = 3 logs ``1>0=2``); Backspace undoes the last key of the query being typed (a submitted
ranking is final: it is on disk). With K = 2, Left / Right say the left / right attempt is better and ``=``
alone says they tie, each submitting at once. Space skips the query (a skipped ranking, logged with its
attempts).

**The folder** (``tamer.rankings.RankingLog``'s, plus the two settings files of every session)::

    config.json     the run's Config (the policy run's own with --policy; teacher "none"): env, seed, features
    live.json       the RankConfig (k, length, queries, policy, epsilon, reward model, window)
    rankings.csv    time,query,ranking,skipped,seconds: one flushed line per answer; ``time`` is the session
                    clock when it was given, ``seconds`` the person's time on the query (from its first frame
                    on screen to the answering key, pauses included)
    queries/qNNNNNN.npz  the attempts each line ranks (obs, actions, rewards, lengths, the shared reset seed),
                    written atomically before its line: a crash loses at most the answer being written

Query ``q``'s attempts are a function of the config's seed and ``q`` alone (its own random stream), so a
resumed session (query ids go on after the last logged one) shows the query it stopped at as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import gymnasium as gym
import numpy as np

from tamer.config import Config
from tamer.errors import ConfigError
from tamer.rankings import LOG_NAME, Query, RankedQuery, collect_attempts, read_log, read_rankings
from tamer.settings import Settings, knob

RESUME_GAP = 1.0  # seconds on the session clock between the last logged answer and a resumed run's start


@dataclass
class RankConfig(Settings):
    """Settings of a ranking session (live.json); the env, seed and features are the run's ``Config``."""

    KIND = "rank config"

    k: int = knob(3, "Attempts per query, ranked with the number keys 1..K.", ge=2, le=9)
    length: int = knob(
        50, "Steps per attempt (0 = the whole episode; an episode that ends sooner is shorter).", ge=0
    )
    queries: int = knob(
        20,
        "Queries in the session in all (skipped ones count); a resumed session goes on to this many.",
        ge=1,
    )
    policy: str = knob(
        "", "A saved run (tamer train --out) whose agent makes the attempts; empty: uniformly random actions."
    )
    epsilon: float = knob(
        0.2,
        "With --policy: chance of a uniformly random action per step, so the K attempts differ.",
        ge=0,
        le=1,
    )
    hold: float = knob(1.0, "Seconds the attempts' last frames stay before the playback loops.", ge=0)
    fps: float = knob(30.0, "Frames drawn per second (0 = as fast as possible).", ge=0)
    view_width: int = knob(960, "Width in pixels the K attempts are laid out in.", ge=64)
    view_height: int = knob(400, "Height in pixels the K attempts are laid out in.", ge=64)
    reward_model: Literal["auto", "linear", "mlp", "cnn"] = knob(
        "auto", "The reward model replay trains: auto = linear over the run's features (cnn for images)."
    )
    reward_epochs: int = knob(20, "Epochs of the reward model's training round in replay.", ge=1)
    reward_members: int = knob(1, "Ensemble members of the reward model.", ge=1)


FIXED = ("k", "length", "policy", "epsilon", "reward_model", "reward_epochs", "reward_members")
"""What a resumed session may not change: what its queries are made of and how replay trains."""


# --- the ranking being typed ------------------------------------------------------------------------------


class Answer(NamedTuple):
    order: tuple[tuple[int, ...], ...]  # groups of tied attempt indices, best first; () when skipped
    skipped: bool = False


def ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 < 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


class RankInput:
    """The keys typed for one query of K attempts: numbers (0-based attempt indices) and ``"="`` ties, in
    order. Each method is one key; it returns the ``Answer`` when that key submits, else None, and leaves a
    ``note`` for the window when the key is refused (``note`` is "" otherwise)."""

    def __init__(self, k: int):
        self.k, self.note = k, ""
        self.tokens: list[int | str] = []

    def placed(self) -> list[int]:
        return [t for t in self.tokens if isinstance(t, int)]

    def groups(self) -> list[list[int]]:
        groups: list[list[int]] = []
        for i, t in enumerate(self.tokens):
            if isinstance(t, int):
                if i and self.tokens[i - 1] == "=":
                    groups[-1].append(t)
                else:
                    groups.append([t])
        return groups

    def order(self) -> tuple[tuple[int, ...], ...]:
        """The typed groups, then the attempts not typed, tied last."""
        placed = set(self.placed())
        rest = [i for i in range(self.k) if i not in placed]
        return tuple(tuple(sorted(g)) for g in [*self.groups(), rest] if g)

    def number(self, i: int) -> Answer | None:
        self.note = ""
        if not 0 <= i < self.k:
            self.note = f"no attempt {i + 1}: this query has 1..{self.k}"
        elif i in self.placed():
            self.note = f"{i + 1} is ranked already (Backspace undoes)"
        else:
            self.tokens.append(i)
            if len(self.placed()) == self.k:
                return Answer(self.order())
        return None

    def tie(self) -> Answer | None:
        self.note = ""
        if self.k == 2 and not self.tokens:
            return Answer(((0, 1),))
        if not self.tokens or self.tokens[-1] == "=":
            self.note = "= goes between two numbers"
        else:
            self.tokens.append("=")
        return None

    def undo(self) -> None:
        self.note = "" if self.tokens else "nothing to undo"
        if self.tokens:
            self.tokens.pop()

    def enter(self) -> Answer | None:
        self.note = ""
        if not self.placed():
            self.note = "type a ranking first (Space skips)"
        elif self.tokens[-1] == "=":
            self.note = "= needs a number after it (or Backspace)"
        else:
            return Answer(self.order())
        return None

    def better(self, side: int) -> Answer | None:
        """K = 2: the left (0) or right (1) attempt is better."""
        self.note = ""
        if self.k != 2:
            self.note = "Left / Right rank pairs only (K = 2); type numbers"
            return None
        return Answer(((side,), (1 - side,)))

    def skip(self) -> Answer:
        self.note = ""
        return Answer((), True)

    def typed(self) -> str:
        """What has been typed, in the on-screen labels: "2 > 1 = 3", "2 =" while a tie waits."""
        out = ""
        for i, t in enumerate(self.tokens):
            if t == "=":
                out += " ="
            else:
                out += ("" if i == 0 else " " if self.tokens[i - 1] == "=" else " > ") + str(int(t) + 1)
        return out

    def badge(self, attempt: int) -> str:
        """Where the attempt stands in the ranking typed so far: "1st", "2nd=" (tied, or a tie typed after
        it), or ""."""
        groups = self.groups()
        for g, group in enumerate(groups):
            if attempt in group:
                tied = len(group) > 1 or (g == len(groups) - 1 and self.tokens[-1] == "=")
                return ordinal(g + 1) + ("=" if tied else "")
        return ""


# --- the attempts -----------------------------------------------------------------------------------------

Policy = Callable[[Any], int]


def load_policy(run: str, env_id: str | None = None) -> tuple[Config, Policy]:
    """A saved run's config and its agent acting greedily (``tamer eval``'s way: no learning, no
    exploration of its own). ``env_id`` given and different from the run's: refused."""
    from tamer.plugins import parse_spec
    from tamer.session import load_run

    overrides = {"teacher": "none", "epsilon": 0.0, "rl_epsilon": 0.0, "rl_epsilon_min": 0.0}
    overrides.update(init="", reference="", kl_coef=0.0)
    if not (Path(run) / "config.json").is_file():
        raise ConfigError(f"--policy {run} is not a run folder (no config.json)")
    s = load_run(Path(run), **overrides)
    s.env.close()
    if env_id is not None and parse_spec(env_id, "--env") != parse_spec(s.cfg.env, "--env"):
        raise ConfigError(f"--policy {run} acts in {s.cfg.env}, not --env {env_id}; drop --env")
    agent = s.agent
    return s.cfg, lambda obs: int(agent.act(agent.encode(obs)))


class Attempts:
    """Query ``q``'s K attempts from one shared ``reset(seed)`` (``collect_attempts``, ``start="shared"``):
    the policy's with probability ``epsilon`` of a random action per step, or uniformly random actions
    without a policy. Its random stream (the reset seed, the random actions) is seeded by (seed, q)."""

    def __init__(self, env: gym.Env, rank: RankConfig, seed: int, policy: Policy | None = None):
        self.env, self.rank, self.seed, self.policy = env, rank, seed, policy
        self.n = int(env.action_space.n)  # type: ignore[attr-defined]

    def __call__(self, query_id: int) -> Query:
        rng = np.random.default_rng([self.seed, 23, query_id])
        policy = self.policy or (lambda obs: int(rng.integers(self.n)))
        epsilon = self.rank.epsilon if self.policy is not None else 0.0
        return collect_attempts(
            self.env, policy, self.rank.k, rng, query_id=query_id, length=self.rank.length, epsilon=epsilon
        )


# --- the folder -------------------------------------------------------------------------------------------


def is_ranking_session(path: Path) -> bool:
    """A folder ``tamer rank`` wrote (its rankings log), as against a play session's."""
    path = Path(path)
    return (path / LOG_NAME).is_file() and not (path / "steps.csv").is_file()


class RankFolder:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.config, self.live, self.log = (
            self.path / "config.json",
            self.path / "live.json",
            self.path / LOG_NAME,
        )

    @classmethod
    def existing(cls, path: Path) -> RankFolder:
        folder = cls(Path(path))
        if not folder.path.is_dir():
            raise ConfigError(f"session folder {path} does not exist")
        if not (folder.config.is_file() and folder.live.is_file() and is_ranking_session(folder.path)):
            raise ConfigError(
                f"{path} is not a tamer rank session (it needs config.json, live.json, {LOG_NAME})"
            )
        return folder


@dataclass
class RankStart:
    """Where a run of a ranking session begins."""

    next_query: int = 0  # the id of the first query it shows
    answered: int = 0  # answers (skips included) logged so far
    clock: float = 0.0  # the session clock at its start


def rank_start(folder: RankFolder) -> RankStart:
    rankings = read_log(folder.log)
    if not rankings:
        return RankStart()
    return RankStart(
        max(r.query for r in rankings) + 1, len(rankings), max(r.time for r in rankings) + RESUME_GAP
    )


# --- replay: the reward model from the logged rankings ----------------------------------------------------


def make_reward_model(cfg: Config, env: gym.Env, rank: RankConfig):
    """The reward model of a session: linear over the run's features (``cfg``'s tile coding, RBFs or
    one-hot), or a network, seeded by the config's seed."""
    from tamer.deep import configure_torch
    from tamer.envs import env_id_of
    from tamer.features import default_model, make_features
    from tamer.reward_model import RewardModel

    configure_torch(cfg.torch_threads)
    space, n = env.observation_space, int(env.action_space.n)  # type: ignore[attr-defined]
    kind = rank.reward_model
    if kind == "auto":
        kind = "linear" if default_model(space) == "linear" else "cnn"
    features = None
    if kind == "linear":
        features = make_features(
            space, env_id_of(env, cfg.env), cfg.features, cfg.tilings, cfg.bins, cfg.tile_offsets,
            cfg.rbf_centers, cfg.rbf_width, cfg.obs_low, cfg.obs_high,
        )  # fmt: skip
    return RewardModel(
        space,
        n,
        kind,
        features=features,
        members=rank.reward_members,
        epochs=rank.reward_epochs,
        seed=cfg.seed,
    )


@dataclass
class RankReplay:
    """What ``replay_rankings`` read and trained."""

    rankings: int
    skipped: int
    attempts: int  # per query (K)
    seconds: float  # the person's time over all queries
    report: dict  # the training round's (RewardModel.fit)
    kind: str
    model: Any = field(repr=False)  # tamer.reward_model.RewardModel

    def summary(self, session: str | Path) -> str:
        r = self.report
        held = (
            f"held-out accuracy {r['val_accuracy']:.1%} over {r['val_pairs']} pairs"
            if r["val_pairs"]
            else "no held-out pair"
        )
        return (
            f"ranking session {session}: {self.rankings} rankings of {self.attempts} attempts "
            f"({self.skipped} skipped), {self.seconds:.1f} s of ranking\n"
            f"  reward model ({self.kind}, seeded by the config): trained on {r['rankings']} rankings, "
            f"{r['pairs']} pairs, {self.model.epochs} epochs; loss {r['loss']:.3f}, {held}"
        )

    def save_model(self, path: Path) -> None:
        from tamer.deep import dumps
        from tamer.io import write_atomic

        state = dumps(self.model.state_dict())
        write_atomic(Path(path), lambda tmp: np.savez(tmp, reward_model=state))


def replay_rankings(session_dir: Path) -> RankReplay:
    """Train the session's reward model from every logged ranking, in the order logged: one round of
    ``reward_epochs`` epochs from the config's seed, so the same session gives the same model every time."""
    from tamer.envs import make_env

    folder = RankFolder.existing(Path(session_dir))
    cfg, rank = Config.load(folder.config), RankConfig.load(folder.live)
    data: list[RankedQuery] = read_rankings(folder.path)
    env = make_env(cfg.env, None, cfg.max_steps)
    try:
        model = make_reward_model(cfg, env, rank)
    finally:
        env.close()
    report = model.fit(data)
    return RankReplay(
        len(data),
        sum(d.ranking.skipped for d in data),
        rank.k,
        float(sum(d.ranking.seconds for d in data)),
        report,
        model.kind,
        model,
    )


def check_resume(saved: RankConfig, given: RankConfig, session: Path) -> RankConfig:
    """A resumed session keeps what its queries are made of (``FIXED``); the window's settings and the
    number of queries may change."""
    changed = [f for f in FIXED if getattr(saved, f) != getattr(given, f)]
    if changed:
        flags = ", ".join("--" + f.replace("_", "-") for f in changed)
        raise ConfigError(f"--resume continues {session} with its own {', '.join(changed)}; drop {flags}")
    return given
