"""Teachers for environments without a hand-written oracle: ``--oracle run:PATH`` (a saved RL run's Q).

    python experiments/run_oracle.py [--out results/run_oracle] [--seeds 10] [--workers 2] [--only NAME ...]

Per task: (a) train plain RL once (seed 0) into ``OUT/teachers/NAME`` (kept and reused while its
config.json is unchanged), measure its greedy return (``tamer.train.evaluate``, episodes seeded from 10000);
(b) train TAMER with ``teacher="oracle", oracle="run:OUT/teachers/NAME"`` over ``--seeds`` seeds and print
its mean return over the last episodes against the teacher's own, whether it is within 15%, and the first
episode at which the seeds' mean return over a trailing window is within 15%. Tasks:

- ``cliff``: CliffWalking-v1 (no time limit of its own: 200 steps here), Sarsa(0) over one-hot features.
- ``taxi``: Taxi-v4, Sarsa(0) over one-hot features.
- ``acrobot``: Acrobot-v1, a DQN teacher (``rl="dqn", gamma=0.99``, RL Zoo's Acrobot settings, 200
  episodes, ~30k steps, ~2 min on one core); the reference is TAMER taught by the hand-written Acrobot
  oracle, same seeds and episodes, and the check is TAMER(DQN teacher) within 15% of TAMER(hand-written).

Toy-text tasks teach at ``step_rate=1`` (one step per second, as the grid world does): at the default 10
steps/s each feedback's 0.2-0.8 s delay window spans ~6 steps, and on a grid neighbouring steps deserve
opposite judgements (measured with 4 seeds: CliffWalking -1017 at 10 steps/s vs -13 at 1 step/s after 30
episodes; Taxi -341 vs +0.9 after 100 episodes).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one BLAS thread per worker

import numpy as np  # noqa: E402

from tamer.config import Config  # noqa: E402

WITHIN = 0.15


@dataclass
class Task:
    name: str
    teacher: dict  # the plain-RL run that becomes the teacher (seed 0)
    tamer: dict  # TAMER's config, less seed and oracle
    last: int  # TAMER's return: mean over each seed's last ``last`` episodes
    window: int  # trailing window for "episodes until within 15%"
    teacher_episodes: int = 100  # greedy episodes measuring the teacher
    reference: str = "teacher"  # or "builtin": TAMER taught by the env's hand-written oracle
    notes: list[str] = field(default_factory=list)


DQN_ACROBOT = dict(  # RL Zoo's Acrobot-v1 DQN, on the framework's DQN
    rl="dqn",
    gamma=0.99,
    dqn_lr=6.3e-4,
    dqn_batch=128,
    dqn_train_freq=4,
    dqn_gradient_steps=4,
    dqn_target_period=250,
    dqn_epsilon_end=0.1,
    dqn_epsilon_steps=12000,
)

TASKS = {
    "cliff": Task(
        "cliff",
        teacher=dict(env="CliffWalking-v1", agent="rl", episodes=300, max_steps=200, lam=0.0),
        tamer=dict(env="CliffWalking-v1", agent="tamer", episodes=30, max_steps=200, step_rate=1.0),
        last=10,
        window=3,
        teacher_episodes=10,
    ),
    "taxi": Task(
        "taxi",
        teacher=dict(env="Taxi-v4", agent="rl", episodes=3000, lam=0.0),
        tamer=dict(env="Taxi-v4", agent="tamer", episodes=2000, step_rate=1.0),
        last=200,
        window=100,
    ),
    "acrobot": Task(
        "acrobot",
        teacher=dict(env="Acrobot-v1", agent="rl", episodes=200, **DQN_ACROBOT),
        tamer=dict(env="Acrobot-v1", agent="tamer", episodes=100),
        last=20,
        window=10,
        reference="builtin",
    ),
}


def train_teacher(args: tuple[dict, str, int]) -> tuple[float, float, float, bool]:
    """Train (or reuse) the teacher run; its greedy mean and std return, seconds spent, and whether reused."""
    from tamer.train import evaluate, train

    fields, out, episodes = args
    out_path = Path(out)
    cfg = Config(seed=0, **fields)
    started = time.perf_counter()
    saved = out_path / "config.json"
    reused = saved.is_file() and (out_path / "model.npz").is_file() and Config.load(saved) == cfg
    if not reused:
        train(cfg, out_path, overwrite=True, progress=False)
    returns = evaluate(out_path, episodes, seed=10_000)
    return float(np.mean(returns)), float(np.std(returns)), time.perf_counter() - started, reused


def train_tamer(args: tuple[dict, int, str]) -> list[float]:
    from tamer.train import train

    fields, seed, oracle = args
    return [r["return"] for r in train(Config(seed=seed, oracle=oracle, **fields), progress=False)]


def within(value: float, reference: float) -> bool:
    return abs(value - reference) <= WITHIN * abs(reference)


def first_within(curve: np.ndarray, reference: float, window: int) -> int | None:
    """The first episode (1-based) at which the trailing ``window``-episode mean is within 15%."""
    for end in range(window, len(curve) + 1):
        if within(float(curve[end - window : end].mean()), reference):
            return end
    return None


def tamer_runs(pool, task: Task, oracle: str, seeds: int) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    runs = np.array(list(pool.map(train_tamer, [(task.tamer, s, oracle) for s in range(seeds)])))
    return runs, time.perf_counter() - started


def summary(runs: np.ndarray, last: int) -> str:
    per_seed = runs[:, -last:].mean(axis=1)
    half = 1.96 * per_seed.std(ddof=1) / np.sqrt(len(per_seed)) if len(per_seed) > 1 else 0.0
    return f"{per_seed.mean():.2f} ± {half:.2f}"


def report(task: Task, runs: np.ndarray, reference: float, what: str, seconds: float) -> None:
    final = float(runs[:, -task.last :].mean())
    episodes = runs.shape[1]
    reached = first_within(runs.mean(axis=0), reference, task.window)
    when = (
        f"first within 15% at episode {reached} ({task.window}-episode trailing mean over seeds)"
        if reached
        else "never within 15%"
    )
    print(
        f"  TAMER, mean of episodes {episodes - task.last + 1}-{episodes} over {len(runs)} seeds: "
        f"{summary(runs, task.last)} vs {what} {reference:.2f}: "
        f"{'WITHIN' if within(final, reference) else 'NOT within'} 15% "
        f"({(final - reference) / abs(reference):+.1%}); {when}; {seconds:.0f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="results/run_oracle", help="Where the teacher runs are kept.")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2, choices=(1, 2))
    parser.add_argument("--only", nargs="+", choices=sorted(TASKS), default=sorted(TASKS))
    args = parser.parse_args()
    tasks = [TASKS[name] for name in ("cliff", "taxi", "acrobot") if name in args.only]
    total = time.perf_counter()
    context = multiprocessing.get_context("spawn")  # workers import torch afresh (forking it is unsafe)
    with ProcessPoolExecutor(args.workers, mp_context=context) as pool:
        teacher_dirs = {t.name: str(Path(args.out) / "teachers" / t.name) for t in tasks}
        teachers = dict(
            zip(
                [t.name for t in tasks],
                pool.map(
                    train_teacher, [(t.teacher, teacher_dirs[t.name], t.teacher_episodes) for t in tasks]
                ),
                strict=True,
            )
        )
        for task in tasks:
            mean, std, seconds, reused = teachers[task.name]
            env = task.tamer["env"]
            print(
                f"{env}: teacher {teacher_dirs[task.name]} ({task.teacher['agent']} "
                f"{task.teacher.get('rl', 'sarsa')}, {task.teacher['episodes']} episodes, "
                f"{'reused' if reused else f'trained+evaluated in {seconds:.0f} s'}): greedy return "
                f"{mean:.2f} ± {std:.2f} over {task.teacher_episodes} episodes",
                flush=True,
            )
            runs, seconds = tamer_runs(pool, task, f"run:{teacher_dirs[task.name]}", args.seeds)
            if task.reference == "teacher":
                report(task, runs, mean, "the teacher's greedy return", seconds)
                continue
            from tamer.oracles import evaluate_oracle

            builtin, builtin_seconds = tamer_runs(pool, task, "", args.seeds)
            own, _ = evaluate_oracle(env, 100, seed=10_000)
            reference = float(builtin[:, -task.last :].mean())
            print(
                f"  hand-written oracle's own return {own:.2f}; TAMER taught by it, episodes "
                f"{task.tamer['episodes'] - task.last + 1}-{task.tamer['episodes']}: "
                f"{summary(builtin, task.last)} ({builtin_seconds:.0f} s)"
            )
            report(task, runs, reference, "TAMER taught by the hand-written oracle", seconds)
    print(f"total {time.perf_counter() - total:.0f} s with {args.workers} workers")


if __name__ == "__main__":
    main()
