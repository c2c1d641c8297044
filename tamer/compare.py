"""The question the framework exists for, in one call (``tamer compare``).

Trains each agent of ``AGENTS`` over several seeds with the default simulated teacher (through
``tamer.runner``: parallel, atomic per run, resumable), summarises the runs per agent and plots the learning
curves with 95% confidence bands beside the oracle's own return.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from tamer.config import Config
from tamer.envs import env_name
from tamer.errors import ConfigError
from tamer.io import refuse_to_replace
from tamer.runner import Run, run_all

AGENTS: dict[str, dict] = {
    "tamer": {"agent": "tamer"},
    "tamer+rl": {"agent": "tamer+rl", "blend": "control_sharing", "q_init": -80.0},
    "rl": {"agent": "rl", "teacher": "none"},
}
"""Agent name (its folder and legend label) -> config overrides on top of the defaults. TAMER+RL uses the
best blend of experiments/mountaincar_blends.toml: control sharing with a pessimistic initial Q (an
optimistic one makes the RL agent unlearn the teacher's policy once Ĥ stops steering)."""

SEEDS, EPISODES = 10, 100
"""Defaults sized so `make demo` runs in about 15 s on 2 cores, once installed."""

BC_RUN = "<bc>"
"""In a method's ``init``: the same seed's run of the ``bc`` method (trained first)."""
PPO = {"CartPole-v1": {"gamma": 0.98, "ppo_steps": 80_000}}
PPO["MountainCar-v0"] = {"gamma": 0.99, "ppo_steps": 40_000, "ppo_lr": 3e-4, "ppo_epochs": 10}
"""PPO's settings per env (experiments/rankings_*.py); other envs get CartPole's."""
RANKINGS = {  # experiments/rankings_*.py's designs
    "CartPole-v1": {
        "ranker": "return", "ranker_tie": 1.5, "reward_action": False,
        "rank_start": "rollouts", "rank_length": 25, "rank_pairs": 480, "reward_epochs": 3,
    },
    "MountainCar-v0": {
        "ranker": "oracle",
        "rank_start": "rollouts", "rank_length": 50, "rank_rounds": 5, "rank_pairs": 200, "reward_epochs": 10,
    },
}  # fmt: skip
"""The rankings pipeline's settings per env, the person's way of ranking included: on CartPole by how long
each attempt balanced (its return: what a person watching sees), on Mountain Car by the share of steps whose
action the oracle approves (every step pays −1, so returns of equal-length windows tie). Other envs get
``OTHER_RANKINGS``."""
OTHER_RANKINGS = {"ranker": "oracle", "rank_start": "rollouts", "rank_length": 25, "rank_pairs": 480}
PERSON = {"ranker_error": 0.1, "reward_random": 0.1, "reward_norm": "scale"}
FROM_BC = {"init": BC_RUN, "kl_coef": 0.3, "ppo_lr": 3e-4, "ppo_epochs": 10}  # gentler: the value net is new
METHODS: dict[str, dict] = {
    **AGENTS,
    "bc": {"agent": "bc", "model": "mlp", "demo_episodes": 10, "bc_epochs": 300},
    "ppo_from_bc": {"agent": "rl", "rl": "ppo", "teacher": "none", **FROM_BC},
    "rankings": {"agent": "rankings", "rl": "ppo", **PERSON},
    "bc_rankings": {"agent": "rankings", "rl": "ppo", **FROM_BC, **PERSON},
}
"""``--methods``: the agents above plus behaviour cloning (stage one), PPO from the BC policy on the env's
reward, rankings → PPO from scratch, and BC → rankings → PPO (the whole pipeline, KL-penalised towards the
BC policy): all with one simulated person, who teaches and demonstrates by the env's oracle and ranks as
``RANKINGS`` says, answering at random 10% of the time."""
BC_RANKINGS = {"CartPole-v1": {"rank_beta": 1.0}}
"""Per env, for BC → rankings → PPO: on CartPole the BC policy already balances, so its attempts' windows
tie under the return and r̂ learns little; with r̂ alone the KL penalty then makes ending an episode pay
(measured with an oracle-agreement ranker: one of two seeds fell from 500 to 42); PPO learns from the env's
reward + r̂ there."""


def method_fields(name: str, env: str) -> dict:
    env = env_name(env)  # the settings of the env, whatever arguments or module prefix it was given with
    fields = dict(METHODS[name])
    if fields.get("rl") == "ppo":
        fields = {**PPO.get(env, PPO["CartPole-v1"]), **fields}
    if fields["agent"] == "rankings":
        fields = {**RANKINGS.get(env, OTHER_RANKINGS), **fields}
    if name == "bc_rankings":
        fields.update(BC_RANKINGS.get(env, {}))
    return fields


def parse_methods(text: str) -> list[str]:
    """``default`` (the agents of ``AGENTS``), ``all`` (every method), or a comma-separated list."""
    if text in ("", "default"):
        return list(AGENTS)
    names = list(METHODS) if text == "all" else [m.strip() for m in text.split(",") if m.strip()]
    if not names:
        raise ConfigError(f"--methods {text!r} names no method; known: {', '.join(METHODS)}, default, all")
    unknown = [m for m in names if m not in METHODS]
    if unknown:
        alone = " (default and all stand alone, not in a list)" if unknown[0] in ("default", "all") else ""
        raise ConfigError(f"unknown method {unknown[0]!r}{alone}; known: {', '.join(METHODS)}, default, all")
    if any(METHODS[m].get("init") == BC_RUN for m in names) and "bc" not in names:
        names.insert(0, "bc")  # the policy they start from
    return list(dict.fromkeys(names))


def plan(
    env: str, out: Path, seeds: int, episodes: int, methods: list[str] | None = None, oracle: str = ""
) -> list[Run]:
    """The runs, methods that start from a BC run after every other run (``run_all`` then runs them as a
    second batch). ``oracle``: the simulated person's oracle (``--oracle``) for every run, where not the
    env's built-in one."""
    if methods is None:
        methods = list(AGENTS)
    runs = []
    for seed in range(seeds):
        for name in methods:
            fields = AGENTS[name] if methods == list(AGENTS) else method_fields(name, env)
            if fields.get("init") == BC_RUN:
                fields = {**fields, "init": str(out / "bc" / f"seed={seed}")}
            person = {"oracle": oracle} if oracle else {}
            cfg = Config.from_dict(
                {"env": env, "episodes": episodes, "seed": seed, **person, **fields},
                f"tamer.compare.AGENTS[{name!r}]",
            )
            runs.append(Run(cfg, out / name / f"seed={seed}"))
    return sorted(runs, key=lambda run: bool(run.cfg.init))  # stable: the default order is kept


@dataclass
class Comparison:
    rows: list[dict]  # the tidy table (tamer.results.gather), also in OUT/results.csv
    summary: list[dict]  # one row per agent (tamer.results.summarize), also in OUT/summary.csv
    oracle_mean: float | None  # the simulated teacher's own mean return (the plot's reference line); None: no
    # built-in oracle
    plots: list[Path]  # the plot files written
    effort: list[dict] | None = None  # human effort per run by method (``effort_table``), beyond the default


def compare(
    env: str,
    out: Path,
    seeds: int = SEEDS,
    episodes: int = EPISODES,
    workers: int = 0,
    overwrite: bool = False,
    backend: str = "local",
    progress: bool = True,
    methods: str = "default",
    oracle: str = "",
) -> Comparison:
    """Run (or resume) the comparison into ``out``: the runs, results.csv, summary.csv and the plot; with
    other ``methods`` than the default, also the return against the human seconds used (compare_effort.*)."""
    from tamer.oracles import evaluate_oracle
    from tamer.plots import learning_curves
    from tamer.results import report

    names = parse_methods(methods)
    runs = plan(env, out, seeds, episodes, names, oracle)  # every config checked before anything is deleted
    try:
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {out} is a file, not a folder; choose another --out")
        if overwrite and out.exists():
            refuse_to_replace(out)
            shutil.rmtree(out)
    except OSError as e:
        raise ConfigError(f"cannot write --out {out}: {e.strerror or e}") from None
    try:
        first = [run for run in runs if not run.cfg.init]  # BC before the runs that start from it
        for batch in (first, runs) if len(first) < len(runs) else (runs,):
            run_all(batch, out, workers, backend, progress)
    except ConfigError as e:
        raise ConfigError(f"{e} (or pass --overwrite)" if "holds" in str(e) else str(e)) from None
    rows, summary = report(out, runs=[run.out for run in runs])
    try:
        oracle_mean: float | None = evaluate_oracle(env, episodes=20, seed=10_000, spec=oracle)[0]
    except ConfigError:  # no built-in oracle (the methods compared needed none): no reference line
        oracle_mean = None
    reference = None if oracle_mean is None else ("oracle", oracle_mean)
    plots = learning_curves(
        rows,
        out / "compare",
        reference=reference,
        title=f"{env}: simulated teacher, {seeds} seeds, mean and 95% bootstrap CI",
        formats=("png", "pdf"),
    )
    if names == list(AGENTS):
        return Comparison(rows, summary, oracle_mean, plots)
    plots += learning_curves(
        rows,
        out / "compare_effort",
        x="human_seconds",
        window=10,
        reference=reference,
        title=f"{env}: return (10-episode mean) against the person's seconds, {seeds} seeds, 95% CI",
        formats=("png", "pdf"),
    )
    return Comparison(rows, summary, oracle_mean, plots, effort_table(rows))


def effort_table(rows: list[dict]) -> list[dict]:
    """Per method (condition): the mean per run of each kind of human effort and of env steps."""
    from tamer.results import EFFORT_COLUMNS, group_runs

    table = []
    for label, runs in group_runs(rows).items():
        per_run = [
            {k: sum(r.get(k, 0) for r in run) for k in (*EFFORT_COLUMNS, "length")} for run in runs.values()
        ]
        table.append(
            {"condition": label, **{k: sum(r[k] for r in per_run) / len(per_run) for k in per_run[0]}}
        )
    return table


def format_effort(table: list[dict]) -> str:
    headers = ["condition", "keypresses", "demo steps", "rankings", "pairs", "human s", "env steps"]
    keys = ["feedback", "demo_steps", "rankings", "pairs", "human_seconds", "length"]
    lines = [headers, *([row["condition"], *(f"{row[k]:.0f}" for k in keys)] for row in table)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
    text = [
        "  ".join(
            [line[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(line[1:], widths[1:], strict=True))]
        )
        for line in lines
    ]
    return "human effort and env steps per run (mean):\n" + "\n".join(text)
