"""Stages two and three of the human-feedback pipeline as one loop (``--agent rankings``): rankings of the
policy's own attempts train a reward model r̂, and PPO optimises r̂; the two repeat in rounds.

Per round: collect K attempts per query from the current policy (PPO's sampling policy), have them ranked
(a simulated person on the same oracles as the teacher and the demonstrator, or the recorded rankings of a
``tamer rank`` session), add them to the data, retrain r̂ on all of it (validation accuracy per round),
then PPO learns from r̂ (or from the env's reward + β·r̂) for its share of env steps: ``--ppo-steps``
divided over ``--rank-rounds``. With ``--init RUN`` PPO starts from a behaviour-cloning run's policy (stage
one) and with ``--kl-coef`` it is penalised for leaving it (InstructGPT; ``tamer.ppo_runs``).

Factored like ``imitation``'s ``PreferenceComparisons``: the parts are injected, each has one call and is
usable alone, and a person and a simulated person are interchangeable:

- attempts ``attempts(policy, n, first_id, model) -> list[Query]``: ``PolicyAttempts`` (K attempts per
  query of any policy, ``tamer.rankings.collect_attempts``: whole episodes or clips, from a shared reset
  seed or windows of their own episodes, chosen by the ensemble's disagreement from M candidates),
  ``RolloutAttempts`` (``--rank-start rollouts``: windows of the episodes PPO played since the last round,
  no env steps of their own; a window may reach its episode's failure and be shorter, which is what tells
  CartPole's attempts apart) or ``RecordedAttempts`` (the next n queries of a ranking log);
- ranker ``ranker(query, rng) -> Ranking``: ``tamer.rankings``' ``SimulatedRanker``, ``RecordedRanker``, or
  a person's window with the same call;
- recorder (optional): a ``RankingLog`` that keeps every query and its ranking, so the run replays
  (``--ranker recorded --rank-log RUN/rankings``) into the identical reward model;
- reward model ``fit(data) -> report``: ``tamer.reward_model.RewardModel``;
- ``RoundSchedule``: the queries of each round and the PPO rollouts after which each round comes;
- the learner: PPO in ``tamer.ppo_runs.run_vectorised``, whose reward hook is ``LearnedReward``.

``RankingPipeline.round(policy)`` is stage two once, with any policy; ``RankingPipeline.train(s, hooks)`` is
the whole pipeline on a session's PPO. **Human effort** is counted per round and in the run's metrics:
queries ranked (``rankings``, skipped ones included), the pairs they order (``pairs``: K(K-1)/2 per ranking
not skipped; a tie is a pair, it says two attempts are equal) and the person's seconds
(``tamer.rankings.TimeCost`` at the run's teaching pace). **Files** (with ``--out``): ``rounds.csv`` (a line
per round: queries, rankings, skipped, pairs and human seconds so far, r̂'s training and validation
numbers, PPO's env steps so far, the mean env return of the episodes since the last round, β),
``rankings/`` (``rankings.csv`` and ``queries/``, a ranking log) and ``reward_model.npz`` (after every round).
Env steps spent on attempts are counted apart from PPO's (``attempt_steps``). A run from ``--init RUN``
also carries RUN's human effort (``pipeline_parts.InheritedEffort``): BC → rankings → PPO costs the
demonstrations too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from tamer.callbacks import Callback
from tamer.errors import ConfigError
from tamer.pipeline_parts import (
    LearnedReward,
    PolicyAttempts,
    RecordedAttempts,
    RolloutAttempts,
    RoundSchedule,
    pairs_of,
    sampling_policy,
)
from tamer.rankings import (
    Query,
    RankedQuery,
    Ranker,
    RankingLog,
    RecordedRanker,
    TimeCost,
    make_ranker,
    read_rankings,
)

if TYPE_CHECKING:
    from tamer.callbacks import CallbackList
    from tamer.config import Config
    from tamer.io import AppendLog
    from tamer.pipeline_parts import Policy
    from tamer.reward_model import RewardModel
    from tamer.session import Session
    from tamer.stepper import Step

ROUND_COLUMNS = (
    "round", "queries", "rankings", "skipped", "pairs", "human_seconds", "train_pairs", "val_pairs",
    "val_accuracy", "loss", "env_steps", "attempt_steps", "episodes", "mean_return", "beta",
)  # fmt: skip
"""``rounds.csv``: the round (from 0), its queries, then totals so far (rankings, skipped, pairs, human
seconds), r̂'s fit (pairs trained on, held-out pairs and accuracy, last-epoch loss; empty when the round
brought nothing to learn from), PPO's env steps and the attempts' env steps so far, the episodes PPO finished
since the last round and their mean env return, and β of MDP + β·r̂ (0: r̂ alone)."""


# ------------------------------------------------------------------------------------------------ pipeline


class RankingPipeline(Callback):
    """Stages two and three with their parts injected (see the module docstring)."""

    def __init__(
        self,
        attempts,
        ranker: Ranker,
        reward_model: RewardModel,
        schedule: RoundSchedule,
        rng: np.random.Generator,
        recorder: RankingLog | None = None,
        reward: LearnedReward | None = None,
        out: Path | None = None,
    ):
        self.attempts, self.ranker, self.reward_model = attempts, ranker, reward_model
        self.schedule, self.rng, self.recorder = schedule, rng, recorder
        self.reward = reward or LearnedReward(reward_model)
        self.out = out
        self.dataset: list[RankedQuery] = []
        self.reports: list[dict] = []
        self.next_id = 0
        self.totals = {"rankings": 0, "skipped": 0, "pairs": 0, "human_seconds": 0.0}
        self.returns: list[float] = []  # env returns of PPO's episodes since the last round
        self.log: AppendLog | None = None
        self.s: Session | None = None

    # --- stage two, one round: usable alone with any policy

    def sample(self, policy: Policy | None, n: int) -> list[Query]:
        """K attempts for each of ``n`` queries from ``policy``."""
        queries = self.attempts(policy, n, self.next_id, self.reward_model)
        self.next_id += len(queries)
        return queries

    def gather(self, queries: Sequence[Query]) -> list[RankedQuery]:
        """The ranker's answer to each query, recorded with the query when there is a recorder."""
        ranked = []
        for query in queries:
            ranking = self.ranker(query, self.rng)
            if self.recorder is not None:
                ranking = self.recorder.record(query, ranking)
            ranked.append(RankedQuery(query, ranking))
        return ranked

    def round(self, policy: Policy | None, env_steps: int = 0) -> dict:
        """Stage two once: sample the round's queries from ``policy``, rank them, add them to the data and
        retrain r̂ on all of it. Returns the round's report (``ROUND_COLUMNS``)."""
        r = len(self.reports)
        queries = self.sample(policy, self.schedule.queries[r] if r < self.schedule.rounds else 0)
        ranked = self.gather(queries)
        self.dataset.extend(ranked)
        learnable = any(not d.ranking.skipped and d.ranking.pairs() for d in ranked)
        fit = self.reward_model.fit(self.dataset) if learnable else None
        return self.report(r, ranked, fit, env_steps)

    def report(self, r: int, ranked: Sequence[RankedQuery], fit: dict | None, env_steps: int) -> dict:
        t = self.totals
        t["rankings"] += len(ranked)
        t["skipped"] += sum(d.ranking.skipped for d in ranked)
        t["pairs"] += sum(pairs_of(d.ranking) for d in ranked)
        t["human_seconds"] += float(sum(d.ranking.seconds for d in ranked))
        nan = math.nan
        report = {
            "round": r,
            "queries": len(ranked),
            **t,
            "train_pairs": fit["pairs"] if fit else "",
            "val_pairs": fit["val_pairs"] if fit else "",
            "val_accuracy": fit["val_accuracy"] if fit else nan,
            "loss": fit["loss"] if fit else nan,
            "env_steps": env_steps,
            "attempt_steps": self.attempts.steps,
            "episodes": len(self.returns),
            "mean_return": float(np.mean(self.returns)) if self.returns else nan,
            "beta": self.reward.beta,
        }
        self.reports.append(report)
        self.returns = []
        self.reward.on_round()
        return report

    # --- the whole pipeline on a session's PPO

    def train(self, s: Session, hooks: CallbackList) -> list[dict]:
        """Round 0 with PPO's starting policy, then PPO optimises r̂ (``LearnedReward``, the vectorised
        loop's reward hook; the metrics keep the env's return) and each further round comes when PPO has
        finished its share of rollouts (so no rollout mixes two reward models), until ``--ppo-steps``."""
        from tamer.ppo_runs import run_vectorised

        if s.steps:
            raise ConfigError("the rankings pipeline starts a session's PPO: this one has taken steps")
        self.s = s
        self.policy = sampling_policy(s.agent.rl, self.rng)
        self.begin_round()
        hooks.callbacks.append(self)
        return run_vectorised(s, hooks, reward=self.reward)

    def begin_round(self) -> None:
        assert self.s is not None
        s, before = self.s, dict(self.totals)
        report = self.round(self.policy, s.steps)
        for kind in ("rankings", "pairs", "human_seconds"):  # the run's human effort, into its metrics
            s.effort[kind] = s.effort.get(kind, 0.0) + self.totals[kind] - before[kind]
        self.write(report)

    def on_step(self, s: Session, step: Step, feedback) -> None:
        ppo = s.agent.rl
        observe = getattr(self.attempts, "observe", None)
        if observe is not None:  # the vector loop hands over its envs' steps in env order
            observe((s.steps - 1) % ppo.N, step)
        if step.terminated or step.truncated:
            self.reward.on_episode()
        r = len(self.reports)
        rollout_end = ppo.pos == 0 and s.steps % ppo.N == 0
        while rollout_end and r < self.schedule.rounds and ppo.n_rollouts >= self.schedule.after[r]:
            self.begin_round()
            r += 1

    def on_episode_end(self, s: Session, row: dict) -> None:
        self.returns.append(float(row["return"]))

    # --- files

    def write(self, report: dict) -> None:
        if self.out is None:
            return
        from tamer.deep import dumps
        from tamer.io import AppendLog, write_atomic

        if self.log is None:
            self.log = AppendLog(self.out / "rounds.csv", ",".join(ROUND_COLUMNS))
        self.log.write_line(",".join(str(report[k]) for k in ROUND_COLUMNS))
        state = dumps(self.reward_model.state_dict())
        write_atomic(self.out / "reward_model.npz", lambda tmp: np.savez(tmp, reward_model=state))

    def close(self) -> None:
        """Closes the round log, the recorder and the attempts' env; again is a no-op."""
        if self.log is not None:
            self.log.close()
        if self.recorder is not None:
            self.recorder.close()
        if self.attempts is not None:
            self.attempts.close()
            self.attempts = None

    def on_run_end(self, s: Session) -> None:
        self.close()


# ------------------------------------------------------------------------------------------------ building


def load_reward_model(path: Path, model: RewardModel) -> RewardModel:
    """``model`` with the state a run's ``reward_model.npz`` holds."""
    from tamer.deep import loads

    with np.load(path) as data:
        model.load_state_dict(loads(data["reward_model"]))
    return model


def make_reward_model(cfg: Config, env: gym.Env) -> RewardModel:
    """The reward model ``--reward-*`` describes, seeded by the config's seed."""
    from tamer.deep import configure_torch, parse_hidden, pick_device
    from tamer.envs import env_id_of
    from tamer.features import make_features
    from tamer.reward_model import RewardModel

    configure_torch(cfg.torch_threads)
    space, n = env.observation_space, int(env.action_space.n)  # type: ignore[attr-defined]
    kind = cfg.reward_model
    if kind == "auto":
        image = isinstance(space, gym.spaces.Box) and len(space.shape) in (2, 3)
        kind = "linear" if isinstance(space, gym.spaces.Discrete) else "cnn" if image else "mlp"
    features = encoder = None
    if kind != "linear":  # the env's bounds where known (CartPole's unbounded velocities get tile coding's)
        from tamer.deep import make_encoder

        encoder = make_encoder(cfg, env, scale=False)
    if kind == "linear":
        features = make_features(
            space, env_id_of(env, cfg.env), cfg.features, cfg.tilings, cfg.bins, cfg.tile_offsets,
            cfg.rbf_centers, cfg.rbf_width, cfg.obs_low, cfg.obs_high,
        )  # fmt: skip
    center = cfg.reward_norm == "center" or (cfg.reward_norm == "auto" and cfg.rank_length > 0)
    return RewardModel(
        space,
        n,
        kind,
        features=features,
        encoder=encoder,
        hidden=parse_hidden(cfg.reward_hidden),
        members=cfg.reward_members,
        lr=cfg.reward_lr,
        epochs=cfg.reward_epochs,
        random_answer=cfg.reward_random,
        center=center,
        use_action=cfg.reward_action,
        device=pick_device(cfg.device, images=encoder is not None and encoder.is_image),
        seed=cfg.seed,
    )


def make_simulated_ranker(cfg: Config, env: gym.Env):
    """The simulated person ``--ranker`` and its knobs describe, watching at the run's teaching pace."""
    from tamer.session import step_rate

    return make_ranker(
        cfg.ranker,
        env,
        cfg.oracle,
        beta=math.inf if cfg.ranker_beta == 0 else cfg.ranker_beta,
        error_rate=cfg.ranker_error,
        tie_margin=cfg.ranker_tie,
        skip_below=cfg.ranker_skip,
        gamma=cfg.ranker_gamma,
        cost=TimeCost(step_rate=step_rate(cfg, env)),
    )


def make_pipeline(cfg: Config, env: gym.Env, rollouts: int, out: Path | None = None) -> RankingPipeline:
    """Every part from the config: attempts from the run's own env (or the recorded queries of
    ``--rank-log``), the ranker, the reward model, the schedule over ``rollouts`` PPO rollouts, the recorder
    and round log in ``out``, and the reward hook with β's schedule. Random streams seeded by the config."""
    from tamer.envs import make_env
    from tamer.schedules import make_schedule

    if cfg.frame_stack != 1:
        raise ConfigError("--agent rankings judges single observations: --frame-stack must be 1")
    attempts_rng, ranker_rng = (
        np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(7, i))) for i in range(2)
    )
    ranker: Ranker
    if cfg.ranker == "recorded":
        recorded = read_rankings(Path(cfg.rank_log))
        if not recorded:
            raise ConfigError(f"--rank-log {cfg.rank_log} holds no rankings")
        attempts: Any = RecordedAttempts([d.query for d in recorded])
        ranker = RecordedRanker([d.ranking for d in recorded])
    else:
        ranker = make_simulated_ranker(cfg, env)
        env_own = make_env(cfg.env, None, cfg.max_steps)
        if cfg.rank_start == "rollouts":
            attempts = RolloutAttempts(
                env_own, cfg.rank_k, attempts_rng, cfg.rank_length, cfg.rank_candidates,
                warmup=cfg.ppo_steps // cfg.rank_rounds,
            )  # fmt: skip
        else:
            attempts = PolicyAttempts(
                env_own, cfg.rank_k, attempts_rng, cfg.rank_length, cfg.rank_start, cfg.rank_epsilon,
                cfg.rank_candidates,
            )  # fmt: skip
    try:
        model = make_reward_model(cfg, env)
        schedule = RoundSchedule.make(
            cfg.rank_rounds, rollouts, cfg.rank_k, cfg.rank_queries, cfg.rank_pairs, cfg.rank_decay
        )
        beta = make_schedule(cfg.rank_beta_schedule, cfg.rank_beta, cfg.rank_beta_decay)
        recorder = RankingLog(out / "rankings") if out is not None else None
    except BaseException:
        attempts.close()
        raise
    reward = LearnedReward(model, cfg.rank_beta, beta)
    return RankingPipeline(attempts, ranker, model, schedule, ranker_rng, recorder, reward, out)


def train_rankings(s: Session, hooks: CallbackList, out: Path | None = None) -> list[dict]:
    """``tamer train --agent rankings``: the pipeline from the session's config on its PPO."""
    ppo = s.agent.rl
    rollouts = -(-s.cfg.ppo_steps // ppo.capacity)
    pipeline = make_pipeline(s.cfg, s.env, rollouts, out)
    try:
        return pipeline.train(s, hooks)
    finally:
        pipeline.close()
