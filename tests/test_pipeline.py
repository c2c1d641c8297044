"""The rankings pipeline (tamer.pipeline, ``--agent rankings``): one round end to end on a tiny budget, the
reward hook of the vectorised loop, the round schedule, determinism, a replay of recorded rankings, the
human-effort axes of plots and compare's methods. Tiny nets, few steps."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from tamer.callbacks import METRICS, CallbackList
from tamer.config import Config
from tamer.deep import loads
from tamer.errors import ConfigError
from tamer.pipeline import ROUND_COLUMNS, RankingPipeline, make_pipeline
from tamer.pipeline_parts import LearnedReward, RolloutAttempts, RoundSchedule, pairs_of
from tamer.ppo_runs import run_vectorised
from tamer.rankings import Ranking, make_ranker, read_rankings
from tamer.results import gather
from tamer.schedules import BetaSchedule
from tamer.session import EFFORT, build
from tamer.train import evaluate, train

TINY = {
    "env": "CartPole-v1",
    "agent": "rankings",
    "gamma": 0.98,
    "ppo_hidden": "8",
    "ppo_epochs": 2,
    "ppo_envs": 2,
    "ppo_n_steps": 16,
    "ppo_batch": 32,
    "ppo_steps": 128,  # 4 rollouts of 32 steps
    "rank_rounds": 2,
    "rank_queries": 2,
    "rank_k": 3,
    "rank_length": 10,
    "reward_hidden": "8",
    "reward_epochs": 2,
}


def tiny_cfg(**values) -> Config:
    return Config.from_dict({**TINY, **values})


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def reward_state(run: Path) -> dict:
    with np.load(run / "reward_model.npz") as data:
        return loads(data["reward_model"])


def same_state(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_state(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same_state(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, float) and np.isnan(a):
        return isinstance(b, float) and np.isnan(b)
    return bool(a == b)


# --- one round end to end ---------------------------------------------------------------------------------


def test_rounds_end_to_end_files_shapes_and_effort(tmp_path: Path):
    run = tmp_path / "run"
    rows = train(tiny_cfg(), run, progress=False)
    rounds = read_csv(run / "rounds.csv")
    assert list(rounds[0]) == list(ROUND_COLUMNS) and [r["round"] for r in rounds] == ["0", "1"]
    data = read_rankings(run / "rankings")  # every query with its ranking, K attempts of <= 10 steps each
    assert len(data) == 4 and [d.query.id for d in data] == [0, 1, 2, 3]
    for d in data:
        assert len(d.query.attempts) == 3 and all(1 <= n <= 10 for n in d.query.lengths)
        assert d.query.attempts[0].obs.shape == (len(d.query.attempts[0]), 4)
        assert sorted(i for g in d.ranking.order for i in g) == [0, 1, 2]
    pairs = sum(pairs_of(d.ranking) for d in data)
    seconds = sum(d.ranking.seconds for d in data)
    assert pairs == 4 * 3  # K(K-1)/2 per ranking, none skipped
    assert int(rounds[-1]["pairs"]) == pairs and int(rounds[-1]["rankings"]) == 4
    assert float(rounds[-1]["human_seconds"]) == pytest.approx(seconds)
    assert 0.0 <= float(rounds[0]["val_accuracy"]) <= 1.0 or rounds[0]["val_accuracy"] == "nan"
    assert int(rounds[1]["env_steps"]) == 64  # round 1 after 2 of the 4 rollouts
    # the metrics: every episode row has the effort columns, and their sums are the rounds' totals
    header = (run / "metrics.csv").read_text().splitlines()[0]
    assert header == ",".join(METRICS) and {"rankings", "pairs"} <= set(EFFORT)
    assert sum(r["pairs"] for r in rows) == pairs and sum(r["rankings"] for r in rows) == 4
    assert sum(r["human_seconds"] for r in rows) == pytest.approx(seconds)
    assert rows[0]["pairs"] == 6  # round 0's two queries, in the first episode's row
    table = gather(tmp_path)
    assert table[-1]["pairs_total"] == pairs and table[-1]["rankings_total"] == 4
    assert np.isfinite(evaluate(run, episodes=1)).all()  # the saved PPO acts


def test_skipped_queries_cost_seconds_but_no_pairs(tmp_path: Path):
    run = tmp_path / "run"
    rows = train(tiny_cfg(ranker_skip=1e6), run, progress=False)  # every attempt below: all skipped
    last = read_csv(run / "rounds.csv")[-1]
    assert (last["rankings"], last["skipped"], last["pairs"], last["train_pairs"]) == ("4", "4", "0", "")
    assert sum(r["pairs"] for r in rows) == 0 and sum(r["human_seconds"] for r in rows) > 0


def test_pairs_of_counts_ties_and_not_skips():
    assert pairs_of(Ranking(0, ((2,), (0, 1)))) == 3
    assert pairs_of(Ranking(0, ((0,), (1,), (2,), (3,)))) == 6
    assert pairs_of(Ranking(0, (), skipped=True)) == 0


# --- the round schedule ------------------------------------------------------------------------------------


def test_schedule_spends_the_pair_budget_decaying_and_spreads_rounds_over_rollouts():
    s = RoundSchedule.make(rounds=5, rollouts=10, k=3, pairs=100, decay=1.0)
    assert sum(s.queries) == 33 and list(s.queries) == sorted(s.queries, reverse=True)
    assert s.queries[0] > s.queries[-1] and s.after == (0, 2, 4, 6, 8)
    assert RoundSchedule.make(3, 4, 2, per_round=7).queries == (7, 7, 7)
    assert RoundSchedule.make(4, 8, 2, pairs=8, decay=0.0).queries == (2, 2, 2, 2)
    with pytest.raises(ConfigError, match="buys no query"):
        RoundSchedule.make(2, 4, 4, pairs=5)


# --- the reward hook in the vector loop ---------------------------------------------------------------------


class Constant:
    """A reward model that says 0.25 for every step."""

    def __call__(self, obs, actions):
        assert len(obs) == len(actions) == 2
        return np.full(len(actions), 0.25)


def test_vector_loop_learns_from_the_hook_and_reports_the_env_return():
    s = build(tiny_cfg())
    learned = []
    finish = s.agent.rl.finish

    def spy(last_values):
        learned.append(s.agent.rl.buf["r"].copy())
        return finish(last_values)

    s.agent.rl.finish = spy
    try:
        rows = run_vectorised(s, CallbackList(), reward=LearnedReward(Constant()))
    finally:
        s.env.close()
    assert len(learned) == 4 and all(np.all(r == np.float32(0.25)) for r in learned)
    assert rows and all(r["return"] == r["length"] for r in rows)  # CartPole's own +1 per step
    hooked = LearnedReward(Constant(), beta=2.0, schedule=BetaSchedule(2.0))
    assert np.allclose(hooked(np.zeros((2, 4)), [0, 1], [1.0, 1.0]), [1.5, 1.5])  # MDP + β·r̂


# --- determinism and replay --------------------------------------------------------------------------------


def test_same_seed_same_numbers(tmp_path: Path):
    a, b = tmp_path / "a", tmp_path / "b"
    cfg = tiny_cfg(rank_start="rollouts", reward_members=2, rank_candidates=4)
    rows_a, rows_b = (train(cfg, out, progress=False) for out in (a, b))
    drop = lambda rows: [{k: v for k, v in r.items() if k != "steps_per_s"} for r in rows]  # noqa: E731
    assert drop(rows_a) == drop(rows_b)
    assert (a / "rounds.csv").read_text() == (b / "rounds.csv").read_text()
    assert (a / "rankings" / "rankings.csv").read_text() == (b / "rankings" / "rankings.csv").read_text()
    assert same_state(reward_state(a), reward_state(b))
    c = tmp_path / "c"
    train(tiny_cfg(rank_start="rollouts", reward_members=2, rank_candidates=4, seed=1), c, progress=False)
    assert (a / "rankings" / "rankings.csv").read_text() != (c / "rankings" / "rankings.csv").read_text()


def test_replayed_rankings_retrain_the_identical_reward_model(tmp_path: Path):
    first, replay = tmp_path / "first", tmp_path / "replay"
    train(tiny_cfg(ranker_error=0.3), first, progress=False)
    rows = train(tiny_cfg(ranker="recorded", rank_log=str(first / "rankings")), replay, progress=False)
    assert same_state(reward_state(first), reward_state(replay))
    drop = ("attempt_steps",)  # the replay makes no attempts of its own
    a, b = read_csv(first / "rounds.csv"), read_csv(replay / "rounds.csv")
    assert [{k: v for k, v in r.items() if k not in drop} for r in a] == [
        {k: v for k, v in r.items() if k not in drop} for r in b
    ]
    assert sum(r["pairs"] for r in rows) == int(a[-1]["pairs"])


def test_round_alone_with_any_policy(tmp_path: Path):
    """Stage two without PPO: the parts as imitation composes them, a random policy making the attempts."""
    cfg = tiny_cfg()
    s = build(cfg)
    try:
        pipeline = make_pipeline(cfg, s.env, rollouts=4)
        rng = np.random.default_rng(0)
        report = pipeline.round(lambda obs: int(rng.integers(2)))
        assert report["queries"] == 2 and report["pairs"] == 6 and report["attempt_steps"] > 0
        assert len(pipeline.dataset) == 2 and isinstance(pipeline, RankingPipeline)
        r_hat = pipeline.reward(np.zeros((3, 4), np.float32), np.array([0, 1, 0]), np.ones(3))
        assert r_hat.shape == (3,) and np.isfinite(r_hat).all()
        pipeline.close()
    finally:
        s.env.close()


def test_rollout_attempts_cut_windows_of_played_episodes():
    from tamer.envs import make_env
    from tamer.stepper import Step

    attempts = RolloutAttempts(make_env("CartPole-v1"), 2, np.random.default_rng(0), length=5, warmup=50)
    obs = np.zeros(4)
    for episode, n in enumerate((3, 8, 12)):  # three episodes ended by failure, env 0
        for t in range(n):
            attempts.observe(0, Step(t + 1, episode, 0, 0.0, 0.0, t % 2, 1.0, t == n - 1, False, obs, obs))
    queries = attempts(None, 4, first_id=10)
    assert [q.id for q in queries] == [10, 11, 12, 13] and attempts.steps == 0  # no env steps of their own
    assert all(1 <= n <= 5 for q in queries for n in q.lengths)
    assert any(n < 5 for q in queries for n in q.lengths)  # windows reaching an episode's end are shorter
    assert attempts(lambda o: 0, 1)[0].lengths and attempts.steps >= 50  # pool spent: it plays its own
    attempts.close()


def test_bc_then_rankings_from_it_carries_the_demonstrations_effort(tmp_path: Path):
    """Stage one, then two and three from its policy (--init, KL towards it): the BC run's human effort
    comes out in the first metrics row, so the run's totals are those of the whole pipeline."""
    bc = tmp_path / "bc"
    bc_cfg = {"env": "CartPole-v1", "agent": "bc", "model": "mlp", "ppo_hidden": "8", "episodes": 1}
    bc_rows = train(Config.from_dict({**bc_cfg, "demo_episodes": 1, "bc_epochs": 2}), bc, progress=False)
    rows = train(tiny_cfg(init=str(bc), kl_coef=0.1), tmp_path / "run", progress=False)
    demo_steps = sum(r["demo_steps"] for r in bc_rows)
    assert demo_steps > 0 and rows[0]["demo_steps"] == demo_steps
    ranked = float(read_csv(tmp_path / "run" / "rounds.csv")[-1]["human_seconds"])
    bc_seconds = sum(r["human_seconds"] for r in bc_rows)
    assert sum(r["human_seconds"] for r in rows) == pytest.approx(bc_seconds + ranked)


def test_config_refuses_what_would_be_ignored():
    with pytest.raises(ConfigError, match="--ranker recorded needs --rank-log"):
        tiny_cfg(ranker="recorded")
    with pytest.raises(ConfigError, match="--rank-log is read only by --ranker recorded"):
        tiny_cfg(rank_log="somewhere")
    with pytest.raises(ConfigError, match="rank-candidates must be 0 or >= rank-k"):
        tiny_cfg(rank_candidates=2)


def test_oracle_ranker_prefers_the_oracles_actions():
    from tamer.envs import make_env
    from tamer.rankings import Query, Segment

    env = make_env("MountainCar-v0")
    ranker = make_ranker("oracle", env)
    obs = np.array([[-0.5, 0.01]] * 4)  # moving right: the oracle pushes right
    good, bad = (
        Segment(obs, np.full(4, 2), np.full(4, -1.0)),
        Segment(obs, np.zeros(4, int), np.full(4, -1.0)),
    )
    assert ranker(Query(0, (bad, good)), np.random.default_rng(0)).order == ((1,), (0,))
    env.close()


# --- plots and compare --------------------------------------------------------------------------------------


def test_plot_on_the_human_effort_axes(tmp_path: Path):
    from tamer.cli import main
    from tamer.plots import x_column

    train(tiny_cfg(), tmp_path / "rankings" / "seed=0", progress=False)
    for x in ("human_seconds", "pairs", "rankings", "feedback", "demo_steps", "episode"):
        assert main(["plot", str(tmp_path), "--x", x, "--kind", "curves", "--format", "png"]) == 0
        assert (tmp_path / "plots" / f"return_by_{x}.png").stat().st_size > 1000
    assert x_column("pairs") == "pairs_total" and x_column("length") == "length"


def test_compare_methods_plan_bc_first_and_keep_the_default():
    from tamer.compare import AGENTS, METHODS, parse_methods, plan

    assert parse_methods("default") == list(AGENTS)
    assert parse_methods("bc_rankings") == ["bc", "bc_rankings"]
    assert set(parse_methods("all")) == set(METHODS)
    with pytest.raises(ConfigError, match="unknown method 'nope'"):
        parse_methods("nope")
    runs = plan("CartPole-v1", Path("out"), 2, 5, parse_methods("all"))
    inits = [r.cfg.init for r in runs]
    assert inits.index("out/bc/seed=0") > max(i for i, r in enumerate(runs) if r.out.parent.name == "bc")
    by_name = {r.out.parent.name: r.cfg for r in runs}
    assert by_name["bc_rankings"].agent == "rankings" and by_name["bc_rankings"].ranker == "return"
    assert by_name["rankings"].ranker_error == 0.1 and by_name["rankings"].rank_length == 25
    mountain_car = {r.out.parent.name: r.cfg for r in plan("MountainCar-v0", Path("out"), 1, 5, ["rankings"])}
    assert mountain_car["rankings"].ranker == "oracle" and mountain_car["rankings"].rank_pairs == 200
    assert plan("Acrobot-v1", Path("out"), 1, 5, ["rankings"])[0].cfg.ranker == "oracle"
    given = plan("FrozenLake-v1", Path("out"), 1, 5, ["tamer", "bc"], oracle="reward")
    assert [r.cfg.oracle for r in given] == ["reward", "reward"]  # compare --oracle: the person of every run
    default = plan("MountainCar-v0", Path("out"), 1, 5)
    assert [r.out.parent.name for r in default] == list(AGENTS)


def test_a_ray_task_ships_the_run_folder_whole_subfolders_included(tmp_path: Path):
    """``train_files`` (what a Ray task returns) and ``write_run`` (what the driver writes) keep the rankings
    pipeline's ``rankings/`` folder: a swept rankings run replays the same from either backend."""
    from tamer.runner import train_files, write_run

    files = train_files(tiny_cfg())
    assert any(name.startswith("rankings/") for name in files), sorted(files)
    local = tmp_path / "local"
    train(tiny_cfg(), local, progress=False)
    shipped = tmp_path / "shipped"
    write_run(files, shipped)
    local_files = sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file())
    assert sorted(files) == local_files
    assert (shipped / "rankings").is_dir()
    for name in local_files:
        if name.endswith((".json", ".csv")) and name != "metrics.csv":  # metrics.csv holds wall-clock speed
            assert (shipped / name).read_bytes() == (local / name).read_bytes(), name
